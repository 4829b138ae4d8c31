//! `tlog-witness`: a C2SP tlog-witness serving `POST <prefix>/add-checkpoint` for the configured logs.
//!
//! `tlog-witness --data ./witness-data --log <log vkey>` witnesses one log whose origin is its key's name; a TOML
//! file (`--config`) can list any number of `[[log]]`s with several keys each. The first run creates the
//! witness key (`witness.key`, mode 0600) and writes `witness.vkey`, the cosigner key logs and clients trust.
//! The first line on stdout is `listening on ADDR`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tlog_witness::config::{DEFAULT_DATA_DIR, FileConfig, parse_log_key};
use tlog_witness::{LogConfig, WitnessConfig, serve};

#[derive(Parser, Debug)]
#[command(
    name = "tlog-witness",
    version,
    about = "A C2SP tlog-witness: checks each log checkpoint's consistency with the last it cosigned, then cosigns it",
    after_help = "\
The first line on stdout is `listening on ADDR`. State is one file per log in <data>/state/; a damaged one stops
the witness from starting rather than let it forget what it cosigned.

Exit status:
  0  stopped by SIGINT or SIGTERM
  1  could not start or serve (key file, state, I/O)
  2  usage or configuration error"
)]
struct Args {
    /// Data folder: the witness key (witness.key), its cosigner key (witness.vkey) and state/ [default: witness-data].
    #[arg(long, env = "TLOG_WITNESS_DATA")]
    data: Option<PathBuf>,
    /// TOML config file ([[log]] origin = "...", keys = ["vkey", ...]; and any flag below); flags override it.
    #[arg(long, env = "TLOG_WITNESS_CONFIG")]
    config: Option<PathBuf>,
    /// Name of a new witness key, e.g. witness.example.com/w1 [default: witness.localhost/<random>]. An existing
    /// key keeps its name.
    #[arg(long)]
    name: Option<String>,
    /// A log verifier key to witness, its origin being the key name (repeatable; adds to the config's logs).
    #[arg(long = "log", value_name = "VKEY")]
    logs: Vec<String>,
    /// Address to listen on (port 0 picks a free port) [default: 127.0.0.1:7380].
    #[arg(long, env = "TLOG_WITNESS_LISTEN")]
    listen: Option<SocketAddr>,
    /// Submission prefix: requests go to POST <prefix>/add-checkpoint (empty or /path).
    #[arg(long)]
    prefix: Option<String>,
    /// Largest request body in bytes; larger ones get 413 [default: 65536].
    #[arg(long)]
    max_body_bytes: Option<usize>,
    /// Longest a request may take, in seconds; slower ones get 503 [default: 10].
    #[arg(long, value_name = "SECS")]
    request_timeout_secs: Option<u64>,
    /// Log as JSON lines.
    #[arg(long)]
    log_json: bool,
}

fn config(args: Args) -> tlog_witness::Result<WitnessConfig> {
    let file = match &args.config {
        Some(path) => FileConfig::read(path)?,
        None => FileConfig::default(),
    };
    let mut logs = file.logs()?;
    for key in &args.logs {
        logs.push(LogConfig::from_key(parse_log_key(key)?));
    }
    let defaults = WitnessConfig::default();
    Ok(WitnessConfig {
        data_dir: args
            .data
            .or(file.data)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
        name: args.name.or(file.name),
        logs,
        listen: args.listen.or(file.listen).unwrap_or(defaults.listen),
        prefix: args.prefix.or(file.prefix).unwrap_or(defaults.prefix),
        max_body_bytes: args
            .max_body_bytes
            .or(file.max_body_bytes)
            .unwrap_or(defaults.max_body_bytes),
        request_timeout: args
            .request_timeout_secs
            .or(file.request_timeout_secs)
            .map_or(defaults.request_timeout, Duration::from_secs),
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let json = args.log_json;
    let config = match config(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tlog-witness: {e}");
            return ExitCode::from(2);
        }
    };
    tlog_daemon::init_logging(json);
    let data = config.data_dir.clone();
    let result = serve(
        config,
        |s| {
            // First line: tests and scripts read the bound address from it.
            println!("listening on {}", s.addr);
            if s.created_key {
                println!(
                    "created a new witness key in {}",
                    data.join(tlog_witness::keyfile::KEY_FILE).display()
                );
            }
            println!("cosigner key {}", s.cosigner_key);
            for (origin, size) in &s.logs {
                println!("witnessing {origin} (cosigned size {size})");
            }
            tracing::info!(addr = %s.addr, key = %s.cosigner_key, "serving");
        },
        tlog_daemon::shutdown_logged(""),
    )
    .await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tlog-witness: {e}");
            match e {
                tlog_witness::Error::Config(_) => ExitCode::from(2),
                _ => ExitCode::FAILURE,
            }
        }
    }
}
