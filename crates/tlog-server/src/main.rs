//! `tlogd`: the tlog log server.
//!
//! `tlogd --data ./data` starts a log on the embedded RocksDB in `./data`, creating its key (and an origin, unless
//! `--origin` names one) on first run and printing the verifier key clients need. It serves gRPC, and C2SP
//! `tlog-tiles` over HTTP on a second address (`--http-listen`, off with `--no-http`). `tlogd verify --data ./data`
//! checks a stopped log's integrity (see [`tlog_storage::fsck`]); `tlogd info --data ./data` says which log a data
//! folder holds, without starting the server.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Deserialize;
use tlog_checkpoint::{SignerKey, VerifierKey};
use tlog_server::archiving::ArchiveConfig;
use tlog_server::datadir;
use tlog_server::server::{ServerConfig, serve};
use tlog_server::witnessing::{WitnessEndpoint, WitnessingConfig};
use tlog_storage::fsck::{self, FsckError};
use tlog_storage::{RocksBackend, RocksStore};

/// The version and the git commit of the build (`unknown` outside a git checkout; see build.rs).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("TLOG_GIT_COMMIT"),
    ")"
);

#[derive(Parser, Debug)]
#[command(
    name = "tlogd",
    version = VERSION,
    about = "tlog: a verifiable audit log server (RFC 9162 tree, C2SP checkpoints)",
    long_about = "tlog: a verifiable audit log server (RFC 9162 tree, C2SP checkpoints).\n\n\
        Without a subcommand, serves the log in --data over gRPC, and its C2SP tlog-tiles (checkpoint, tiles, \
        entry bundles) over HTTP on --http-listen, where it also takes JSON audit events (POST /v1/events),         Kubernetes audit webhook batches (POST /v1/k8s/audit) and serves /metrics. `tlogd verify --data DIR` checks a stopped \
        log's integrity instead.",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: Args,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check a stored log offline: every entry, leaf-index row, tree node and signed checkpoint.
    #[command(after_help = "\
Recomputes every leaf hash from the stored entries and checks the leaf index, recomputes every tree node and
compares it with the stored tiles (interior rows and partial edge tiles included), and verifies every stored
signed checkpoint with the log's key against the root recomputed at its size. Reads the database read-only, as
it was when the check started, in bounded chunks. It can run beside a server, but the server's compactions may
then remove files under it (exit status 2); stop the server for a reliable check.

Exit status:
  0  the log is intact
  1  integrity failure: the first damaged entry index, node (level, index), tile or checkpoint size is named
  2  usage or I/O error: the log could not be checked")]
    Verify(VerifyArgs),
    /// Say which log a data folder holds (origin, verifier key, creation, tree size, latest checkpoint) without
    /// starting the server.
    #[command(after_help = "\
Reads <data>/README (written when the log was created) and the store, read-only. It can run beside a server.

Exit status:
  0  printed
  2  usage or I/O error (no log in the folder, unreadable files)")]
    Info(InfoArgs),
    /// Set up (or check) the S3 archive's bucket: Object Lock with a COMPLIANCE default retention.
    #[command(subcommand)]
    Archive(ArchiveCommand),
    /// Rebuild a log's data folder from its S3 archive (disaster recovery), then check it like `tlogd verify`.
    #[command(after_help = "\
Reads the archived checkpoint (verified with the key), downloads every archived entry (each checked against its
level-0 tile, authenticated by an inclusion proof against the checkpoint) and appends them in order to a new
log in --data, signed with --key (the log's private key: the archive holds only public data). The rebuilt tree
must have the archived root at the archived size; then every entry, node and checkpoint of the new folder is
checked as `tlogd verify` does. Endpoint and credentials come from the AWS environment.

Exit status:
  0  restored and verified
  1  the archive or the restored log failed verification
  2  usage or I/O error")]
    Restore(RestoreArgs),
    /// Erase a subject's private payloads (crypto-shredding) in a stopped log: destroy its data key and payload
    /// rows, append an erasure entry, and purge the rows from the database files.
    #[command(after_help = "\
The erasure entry (tlog-erasure-v1: subject and time) is appended and signed like any entry, in the same atomic
write that replaces the subject's data key by a tombstone and deletes its payload rows; the database files are then
compacted so that the deleted bytes leave them. A running server does the same with the EraseSubject RPC (admin
scope). See docs/private.md.

Exit status:
  0  erased
  1  the subject was already erased
  2  usage or I/O error (e.g. a server is running on the folder)")]
    Erase(EraseArgs),
}

#[derive(clap::Args, Debug)]
struct EraseArgs {
    /// The subject id to erase.
    #[arg(long)]
    subject: String,
    /// Data folder of the log.
    #[arg(long, env = "TLOGD_DATA", default_value = "data")]
    data: PathBuf,
    /// Signing key file (default <data>/log.key).
    #[arg(long, env = "TLOGD_KEY")]
    key: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
struct RestoreArgs {
    /// The archive: s3://bucket/prefix.
    #[arg(long, value_name = "S3_URL")]
    from: String,
    /// Data folder to create (must not hold a log yet).
    #[arg(long)]
    data: PathBuf,
    /// The log's signing key file (copied to <data>/log.key).
    #[arg(long)]
    key: PathBuf,
}

#[derive(Subcommand, Debug)]
enum ArchiveCommand {
    /// Create the bucket with Object Lock enabled, or find it, and give it a COMPLIANCE default retention of
    /// --retention-days when it has none. Fails when the bucket has no Object Lock or a weaker retention.
    #[command(after_help = "\
Endpoint, region and credentials come from the AWS environment: AWS_ENDPOINT_URL (an S3-compatible store),
AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_ALLOW_HTTP=true for plain HTTP.
COMPLIANCE retention cannot be shortened or removed by anyone, the account's root included, until it expires.

Exit status:
  0  the bucket enforces the retention
  2  it does not, or it could not be reached")]
    Init(ArchiveInitArgs),
}

#[derive(clap::Args, Debug)]
struct ArchiveInitArgs {
    /// The archive: s3://bucket/prefix (only the bucket matters here).
    #[arg(long, env = "TLOGD_ARCHIVE")]
    archive: String,
    /// Default retention of every archived object, in days.
    #[arg(long, default_value_t = 3650)]
    retention_days: u32,
}

#[derive(clap::Args, Debug)]
struct InfoArgs {
    /// Data folder of the log (RocksDB in <data>/db).
    #[arg(long, env = "TLOGD_DATA", default_value = "data")]
    data: PathBuf,
}

#[derive(clap::Args, Debug)]
struct VerifyArgs {
    /// Data folder of the log (RocksDB in <data>/db).
    #[arg(long, env = "TLOGD_DATA", default_value = "data")]
    data: PathBuf,
    /// Verifier key file (default <data>/log.vkey, else derived from <data>/log.key).
    #[arg(long)]
    vkey: Option<PathBuf>,
    /// Without a terminal, print a progress line every this many entries.
    #[arg(long, default_value_t = 1_000_000)]
    progress_every: u64,
}

#[derive(clap::Args, Debug)]
struct Args {
    /// Data folder: RocksDB database, signing key (log.key) and verifier key (log.vkey).
    #[arg(long, env = "TLOGD_DATA", default_value = "data")]
    data: PathBuf,
    /// TOML config file; flags override its values.
    #[arg(long, env = "TLOGD_CONFIG")]
    config: Option<PathBuf>,
    /// Address to serve gRPC on (port 0 picks a free port).
    #[arg(long, env = "TLOGD_LISTEN")]
    listen: Option<SocketAddr>,
    /// Address to serve plain HTTP on: C2SP tlog-tiles (/checkpoint, /tile/...), POST /v1/events, POST
    /// /v1/k8s/audit and /metrics (default 127.0.0.1:7401; port 0 picks a free port).
    #[arg(long, env = "TLOGD_HTTP_LISTEN")]
    http_listen: Option<SocketAddr>,
    /// Serve no HTTP (overrides --http-listen and the config file).
    #[arg(long)]
    no_http: bool,
    /// A witness to ask for C2SP tlog-witness cosignatures: its cosigner key, `=`, its submission URL
    /// (repeatable), e.g. `w1.example+01234567+BASE64=https://w1.example/witness`.
    #[arg(long = "witness", value_name = "KEY=URL")]
    witnesses: Vec<String>,
    /// Cosignatures a checkpoint needs before it is published as witnessed (default: every witness).
    #[arg(long, value_name = "K")]
    witness_quorum: Option<usize>,
    /// The log's origin, e.g. example.com/audit (new logs only; default: tlog.localhost/<random>).
    #[arg(long, env = "TLOGD_ORIGIN")]
    origin: Option<String>,
    /// Signing key file (default <data>/log.key; created if missing).
    #[arg(long, env = "TLOGD_KEY")]
    key: Option<PathBuf>,
    /// A bearer token and its scopes, SCOPE[,SCOPE...]=TOKEN with scopes write, read-private, admin (repeatable),
    /// e.g. `read-private,admin=s3cret`. See docs/private.md.
    #[arg(long = "token", value_name = "SCOPES=TOKEN")]
    tokens: Vec<String>,
    /// A file of scoped tokens, one SCOPE[,SCOPE...]=TOKEN a line (blank lines and # comments skipped); keeps
    /// tokens off the command line.
    #[arg(long, env = "TLOGD_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// Bearer token allowed to write (repeatable). Without any write-scoped token, writes are open.
    #[arg(
        long = "write-token",
        env = "TLOGD_WRITE_TOKENS",
        value_delimiter = ','
    )]
    write_tokens: Vec<String>,
    /// Largest entry in bytes.
    #[arg(long)]
    max_entry_bytes: Option<usize>,
    /// Most entries per sequencer batch (one synced write, one signature).
    #[arg(long)]
    max_batch_entries: Option<usize>,
    /// Longest a batch waits for more entries, in milliseconds (0: write at once).
    #[arg(long)]
    max_batch_delay_ms: Option<u64>,
    /// Submissions that may wait for the sequencer before clients get RESOURCE_EXHAUSTED.
    #[arg(long)]
    queue_capacity: Option<usize>,
    /// Do not fsync the write-ahead log (unsafe: acknowledged entries can be lost on power failure).
    #[arg(long)]
    no_sync: bool,
    /// Free bytes the data folder's filesystem must keep: writes that would leave less are refused with
    /// RESOURCE_EXHAUSTED ("disk full") and resume by themselves once space is freed; 0 = off [default: 256 MiB]
    #[arg(long)]
    min_free_bytes: Option<u64>,
    /// TLS certificate chain (PEM); needs --tls-key.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM); needs --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Log as JSON lines.
    #[arg(long)]
    log_json: bool,
    /// Re-verify the whole stored log in the background every SECS seconds (0 or absent: off). The result is
    /// logged and published as the gRPC health of service tlog.v1.Scrub (NOT_SERVING once damage is found).
    #[arg(long, value_name = "SECS")]
    scrub_interval: Option<u64>,
    /// Archive the log to S3-compatible object storage: s3://bucket/prefix (endpoint, region and credentials
    /// from the AWS environment; set the bucket up first with `tlogd archive init`).
    #[arg(long, env = "TLOGD_ARCHIVE", value_name = "S3_URL")]
    archive: Option<String>,
    /// Most entries the log may be ahead of its archive before writes get RESOURCE_EXHAUSTED.
    #[arg(long, value_name = "ENTRIES")]
    archive_max_lag: Option<u64>,
    /// Shortest time between two checkpoint publications to the archive, in milliseconds.
    #[arg(long, value_name = "MS")]
    archive_interval_ms: Option<u64>,
    /// Run as a read replica of the log archived at s3://bucket/prefix (endpoint, region and credentials from the
    /// AWS environment, as for --archive): serve its read API from the archive, following new checkpoints; no
    /// data folder is used and writes are refused. Needs --replica-vkey.
    #[arg(
        long,
        env = "TLOGD_REPLICA_OF",
        value_name = "S3_URL",
        requires = "replica_vkey"
    )]
    replica_of: Option<String>,
    /// The replicated log's verifier key file (its log.vkey): every adopted checkpoint must verify with it.
    #[arg(long, value_name = "FILE")]
    replica_vkey: Option<PathBuf>,
    /// How often a replica reads the archive's checkpoint, in milliseconds [default: 2000]
    #[arg(long, value_name = "MS")]
    replica_poll_ms: Option<u64>,
    /// Most bytes of full tiles and entry bundles a replica caches [default: 256 MiB]
    #[arg(long, value_name = "BYTES")]
    replica_cache_bytes: Option<u64>,
}

/// The TOML config file. Every field is optional; see README for an example.
#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data: Option<PathBuf>,
    listen: Option<SocketAddr>,
    http_listen: Option<SocketAddr>,
    /// `false` serves no HTTP.
    http: Option<bool>,
    max_http_reads: Option<usize>,
    /// Largest request body of JSON and Kubernetes audit ingestion.
    max_ingest_body_bytes: Option<usize>,
    /// `KEY=URL` of each witness, as `--witness` takes them.
    witnesses: Option<Vec<String>>,
    witness_quorum: Option<usize>,
    witness_timeout_ms: Option<u64>,
    witness_interval_ms: Option<u64>,
    origin: Option<String>,
    key: Option<PathBuf>,
    write_tokens: Option<Vec<String>>,
    /// `SCOPES=TOKEN` of each scoped token, as `--token` takes them.
    tokens: Option<Vec<String>>,
    token_file: Option<PathBuf>,
    max_entry_bytes: Option<usize>,
    max_request_entries: Option<usize>,
    max_entries_range: Option<u64>,
    /// Most leaf indices in one GetMultiProof call.
    max_multiproof_indices: Option<usize>,
    max_entries_per_read: Option<u64>,
    max_checkpoint_wait_secs: Option<u64>,
    max_message_bytes: Option<usize>,
    max_batch_entries: Option<usize>,
    max_batch_bytes: Option<usize>,
    max_batch_delay_ms: Option<u64>,
    queue_capacity: Option<usize>,
    dedup: Option<bool>,
    sync: Option<bool>,
    block_cache_bytes: Option<usize>,
    write_buffer_bytes: Option<usize>,
    direct_io: Option<bool>,
    leaf_filter_bytes: Option<usize>,
    upper_tile_cache_bytes: Option<usize>,
    read_threads: Option<usize>,
    min_free_bytes: Option<u64>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    scrub_interval_secs: Option<u64>,
    /// `s3://bucket/prefix`, as `--archive` takes it.
    archive: Option<String>,
    archive_max_lag: Option<u64>,
    archive_interval_ms: Option<u64>,
}

fn config(args: Args) -> Result<(ServerConfig, bool), String> {
    let file: FileConfig = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read config {}: {e}", path.display()))?;
            toml::from_str(&text).map_err(|e| format!("config {}: {e}", path.display()))?
        }
        None => FileConfig::default(),
    };
    let mut c = ServerConfig::default();
    // A --data given on the command line wins; otherwise the file's, otherwise the default.
    let data_from_flag = std::env::args().any(|a| a == "--data" || a.starts_with("--data="))
        || std::env::var_os("TLOGD_DATA").is_some();
    c.data_dir = if data_from_flag {
        args.data
    } else {
        file.data.unwrap_or(args.data)
    };
    c.listen = args.listen.or(file.listen).unwrap_or(c.listen);
    c.http_listen = if args.no_http || file.http == Some(false) {
        None
    } else {
        args.http_listen.or(file.http_listen).or(c.http_listen)
    };
    c.http.max_concurrent_reads = file.max_http_reads.unwrap_or(c.http.max_concurrent_reads);
    c.ingest.max_body_bytes = file
        .max_ingest_body_bytes
        .unwrap_or(c.ingest.max_body_bytes);
    let witnesses = if args.witnesses.is_empty() {
        file.witnesses.unwrap_or_default()
    } else {
        args.witnesses
    };
    if !witnesses.is_empty() {
        let witnesses = witnesses
            .iter()
            .map(|w| WitnessEndpoint::parse(w))
            .collect::<Result<Vec<_>, _>>()?;
        let quorum = args
            .witness_quorum
            .or(file.witness_quorum)
            .unwrap_or(witnesses.len());
        let mut witnessing = WitnessingConfig::new(witnesses, quorum);
        if let Some(ms) = file.witness_timeout_ms {
            witnessing.timeout = Duration::from_millis(ms);
        }
        if let Some(ms) = file.witness_interval_ms {
            witnessing.min_interval = Duration::from_millis(ms);
        }
        witnessing.validate()?;
        c.witnessing = Some(witnessing);
    } else if args.witness_quorum.or(file.witness_quorum).is_some() {
        return Err("a witness quorum needs witnesses (--witness KEY=URL)".into());
    }
    c.origin = args.origin.or(file.origin);
    c.key_file = args.key.or(file.key);
    c.write_tokens = if args.write_tokens.is_empty() {
        file.write_tokens.unwrap_or_default()
    } else {
        args.write_tokens
    };
    let mut specs = if args.tokens.is_empty() {
        file.tokens.unwrap_or_default()
    } else {
        args.tokens
    };
    if let Some(path) = args.token_file.or(file.token_file) {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read token file {}: {e}", path.display()))?;
        specs.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(String::from),
        );
    }
    c.scoped_tokens = specs
        .iter()
        .map(|spec| tlog_server::validate::parse_scoped_token(spec))
        .collect::<Result<_, _>>()?;
    c.log.max_entry_bytes = args
        .max_entry_bytes
        .or(file.max_entry_bytes)
        .unwrap_or(c.log.max_entry_bytes);
    c.log.max_request_entries = file
        .max_request_entries
        .unwrap_or(c.log.max_request_entries);
    c.service.max_entries_range = file
        .max_entries_range
        .unwrap_or(c.service.max_entries_range);
    c.service.max_multiproof_indices = file
        .max_multiproof_indices
        .unwrap_or(c.service.max_multiproof_indices);
    c.log.read.max_entries_per_read = file
        .max_entries_per_read
        .unwrap_or(c.log.read.max_entries_per_read);
    if let Some(s) = file.max_checkpoint_wait_secs {
        c.service.max_checkpoint_wait = Duration::from_secs(s);
    }
    c.max_message_bytes = file.max_message_bytes.unwrap_or(c.max_message_bytes);
    c.log.sequencer.max_batch_entries = args
        .max_batch_entries
        .or(file.max_batch_entries)
        .unwrap_or(c.log.sequencer.max_batch_entries);
    c.log.sequencer.max_batch_bytes = file
        .max_batch_bytes
        .unwrap_or(c.log.sequencer.max_batch_bytes);
    if let Some(ms) = args.max_batch_delay_ms.or(file.max_batch_delay_ms) {
        c.log.sequencer.max_delay = Duration::from_millis(ms);
    }
    c.log.sequencer.queue_capacity = args
        .queue_capacity
        .or(file.queue_capacity)
        .unwrap_or(c.log.sequencer.queue_capacity);
    c.log.sequencer.dedup = file.dedup.unwrap_or(c.log.sequencer.dedup);
    c.rocks.sync = !args.no_sync && file.sync.unwrap_or(true);
    c.rocks.block_cache_bytes = file.block_cache_bytes.unwrap_or(c.rocks.block_cache_bytes);
    c.rocks.write_buffer_bytes = file
        .write_buffer_bytes
        .unwrap_or(c.rocks.write_buffer_bytes);
    c.rocks.direct_io = file.direct_io.unwrap_or(c.rocks.direct_io);
    c.leaf_filter_bytes = file.leaf_filter_bytes.unwrap_or(c.leaf_filter_bytes);
    c.upper_tile_cache_bytes = file
        .upper_tile_cache_bytes
        .unwrap_or(c.upper_tile_cache_bytes);
    c.service.read_threads = file.read_threads.unwrap_or(c.service.read_threads);
    c.rocks.min_free_bytes = args
        .min_free_bytes
        .or(file.min_free_bytes)
        .unwrap_or(c.rocks.min_free_bytes);
    c.tls = match (
        args.tls_cert.or(file.tls_cert),
        args.tls_key.or(file.tls_key),
    ) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        _ => return Err("TLS needs both a certificate (tls_cert) and a key (tls_key)".into()),
    };
    c.scrub_interval = args
        .scrub_interval
        .or(file.scrub_interval_secs)
        .filter(|&s| s > 0)
        .map(Duration::from_secs);
    if let Some(url) = args.archive.or(file.archive) {
        let location = tlog_archive::s3::S3Location::parse(&url).map_err(|e| e.to_string())?;
        let s3 = tlog_archive::s3::S3Config::from_env().map_err(|e| e.to_string())?;
        let mut archive = ArchiveConfig::new(location, s3);
        archive.max_lag = args
            .archive_max_lag
            .or(file.archive_max_lag)
            .unwrap_or(archive.max_lag);
        if let Some(ms) = args.archive_interval_ms.or(file.archive_interval_ms) {
            archive.interval = Duration::from_millis(ms);
        }
        c.archive = Some(archive);
    }
    if c.log.max_entry_bytes == 0
        || c.log.sequencer.max_batch_entries == 0
        || c.log.max_request_entries == 0
        || c.http.max_concurrent_reads == 0
        || c.ingest.max_body_bytes == 0
        || c.rocks.write_buffer_bytes == 0
    {
        return Err(
            "limits must be positive (max_entry_bytes, max_batch_entries, max_request_entries, max_http_reads, max_ingest_body_bytes, write_buffer_bytes)"
                .into(),
        );
    }
    Ok((c, args.log_json))
}

/// jemalloc, for tlogd and the RocksDB inside it (it replaces `malloc`), configured at build time in
/// `.cargo/config.toml` to give freed pages back to the system within about a second, from one arena.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Verify(args)) => verify(args),
        Some(Command::Info(args)) => info(args),
        Some(Command::Archive(ArchiveCommand::Init(args))) => archive_init(args),
        Some(Command::Restore(args)) => match restore(&args) {
            Ok(()) => verify(VerifyArgs {
                data: args.data,
                vkey: None,
                progress_every: 1_000_000,
            }),
            Err((code, e)) => {
                eprintln!("tlogd restore: error: {e}");
                ExitCode::from(code)
            }
        },
        Some(Command::Erase(args)) => erase(args),
        None if cli.serve.replica_of.is_some() => replica(cli.serve),
        None => server(cli.serve),
    }
}

/// `tlogd --replica-of`: a read replica serving the archive of a log.
#[tokio::main]
async fn replica(args: Args) -> ExitCode {
    use tlog_server::replica::{self, ReplicaConfig};
    let (url, vkey_file) = (args.replica_of.clone(), args.replica_vkey.clone());
    let (poll_ms, cache_bytes) = (args.replica_poll_ms, args.replica_cache_bytes);
    let setup = || -> Result<(ReplicaConfig, bool), String> {
        let (url, vkey_file) = (url.unwrap_or_default(), vkey_file.unwrap_or_default());
        let (server, json) = config(args)?;
        if server.archive.is_some() {
            return Err("a read replica does not archive: drop --archive".into());
        }
        let location = tlog_archive::s3::S3Location::parse(&url).map_err(|e| e.to_string())?;
        let s3 = tlog_archive::s3::S3Config::from_env().map_err(|e| e.to_string())?;
        let text = std::fs::read_to_string(&vkey_file)
            .map_err(|e| format!("reading {}: {e}", vkey_file.display()))?;
        let key = VerifierKey::parse(text.trim()).map_err(|e| {
            format!(
                "{} is not a signed-note verifier key: {e}",
                vkey_file.display()
            )
        })?;
        let mut c = ReplicaConfig::new(location, s3, key);
        if let Some(ms) = poll_ms {
            c.poll_interval = Duration::from_millis(ms.max(1));
        }
        c.cache_bytes = cache_bytes.unwrap_or(c.cache_bytes);
        c.listen = server.listen;
        c.http_listen = server.http_listen;
        c.http = server.http;
        c.service = server.service;
        c.read = server.log.read;
        c.max_message_bytes = server.max_message_bytes;
        c.tls = server.tls;
        Ok((c, json))
    };
    let (config, json) = match setup() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tlogd: {e}");
            return ExitCode::from(2);
        }
    };
    tlog_daemon::init_logging(json);
    let location = config.location.to_string();
    let vkey = config.key.to_string();
    let result = replica::serve(
        config,
        |s| {
            println!("tlogd: read replica of {location}");
            println!("tlogd: origin {}", s.origin);
            println!("tlogd: verifier key {vkey}");
            println!("tlogd: tree size {}", s.tree_size);
            match s.http_addr {
                Some(http) => println!("tlogd: http listening on {http}"),
                None => println!("tlogd: http off"),
            }
            println!("tlogd: listening on {}", s.addr);
        },
        tlog_daemon::shutdown_logged(""),
    )
    .await;
    tlog_daemon::exit_status("tlogd", result)
}

/// `tlogd erase`: exit 0 erased, 1 already erased, 2 could not erase.
#[tokio::main]
async fn erase(args: EraseArgs) -> ExitCode {
    tlog_daemon::init_logging(false);
    let config = ServerConfig {
        data_dir: args.data.clone(),
        key_file: args.key,
        ..ServerConfig::default()
    };
    if !args.data.join("db").exists() {
        eprintln!("tlogd erase: error: {} holds no log", args.data.display());
        return ExitCode::from(2);
    }
    let result = match tlog_server::server::Server::open(config) {
        Ok(server) => server.erase(&args.subject).await,
        Err(e) => Err(e),
    };
    match result {
        Ok((index, at)) => {
            println!(
                "tlogd erase: subject {} erased at {} (erasure entry {index})",
                args.subject,
                tlog_server::private::rfc3339(at)
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tlogd erase: error: {e}");
            let already = matches!(
                &e,
                tlog_server::Error::Private(tlog_server::private::PrivateError::Erased { .. })
            );
            ExitCode::from(if already { 1 } else { 2 })
        }
    }
}

/// `tlogd archive init`: exit 0 the bucket enforces the retention, 2 it does not or could not be reached.
#[tokio::main]
async fn archive_init(args: ArchiveInitArgs) -> ExitCode {
    use tlog_archive::s3;
    let result = async {
        let location = s3::S3Location::parse(&args.archive)?;
        let config = s3::S3Config::from_env()?;
        s3::init_bucket(&config, &location.bucket, args.retention_days)
            .await
            .map(|retention| (location, retention))
    }
    .await;
    match result {
        Ok((location, retention)) => {
            println!(
                "tlogd archive init: bucket {} has Object Lock, default retention {} for {} days",
                location.bucket, retention.mode, retention.days
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tlogd archive init: error: {e}");
            ExitCode::from(2)
        }
    }
}

/// Entries appended per submission while restoring.
const RESTORE_CHUNK: u64 = 4096;

/// `tlogd restore`, up to the rebuilt folder: `Err((exit code, why))`.
#[tokio::main]
async fn restore(args: &RestoreArgs) -> Result<(), (u8, String)> {
    use tlog_archive::s3;
    use tlog_client::TileClient;
    use tlog_core::LeafIndex;
    let usage = |e: String| (2, e);
    let text = std::fs::read_to_string(&args.key)
        .map_err(|e| usage(format!("reading {}: {e}", args.key.display())))?;
    let key = SignerKey::parse_private(text.trim())
        .map_err(|e| usage(format!("{}: {e}", args.key.display())))?;
    if args.data.join("db").exists() {
        return Err(usage(format!(
            "{} already holds a log; restore into an empty folder",
            args.data.display()
        )));
    }
    let location = s3::S3Location::parse(&args.from).map_err(|e| usage(e.to_string()))?;
    let config = s3::S3Config::from_env().map_err(|e| usage(e.to_string()))?;
    let store = s3::object_store(&config, &location.bucket).map_err(|e| usage(e.to_string()))?;
    let tiles = TileClient::new(
        tlog_archive::ArchiveTiles::new(store, &location.prefix),
        key.verifier(),
    );
    let archived = tiles
        .checkpoint()
        .await
        .map_err(|e| (1, format!("archived checkpoint: {e}")))?;
    let size = archived.checkpoint.size.0;
    println!(
        "tlogd restore: archive {} holds {size} entries, root {}",
        args.from, archived.checkpoint.root
    );

    std::fs::create_dir_all(&args.data)
        .map_err(|e| usage(format!("creating {}: {e}", args.data.display())))?;
    write_key_files(&args.data, &key).map_err(usage)?;
    let store = RocksBackend::open(args.data.join("db"), &Default::default())
        .and_then(RocksStore::open)
        .map_err(|e| usage(format!("opening the new store: {e}")))?;
    let mut options = tlog_server::log::LogOptions::default();
    // The archive's order is the log: entries are appended as they are, repeats included.
    options.sequencer.dedup = false;
    options.max_request_entries = RESTORE_CHUNK as usize;
    let (appender, reader, shutdown) =
        tlog_server::log::open(std::sync::Arc::new(store), key, options)
            .map_err(|e| usage(format!("opening the new log: {e}")))?;
    let mut at = 0;
    while at < size {
        let end = size.min(at + RESTORE_CHUNK);
        let entries = tiles
            .entries(LeafIndex(at), LeafIndex(end), &archived)
            .await
            .map_err(|e| (1, format!("archived entries [{at}, {end}): {e}")))?;
        let committed = appender
            .submit(entries)
            .await
            .map_err(|e| usage(format!("appending entries [{at}, {end}): {e}")))?;
        if committed.assigned.first().map(|a| a.index.0) != Some(at) {
            return Err((
                1,
                format!("entries [{at}, {end}) were not appended in order"),
            ));
        }
        at = end;
    }
    let latest = reader.latest();
    drop((appender, reader));
    tokio::task::spawn_blocking(move || shutdown.wait())
        .await
        .map_err(|e| usage(e.to_string()))?;
    if latest.checkpoint.size.0 != size || latest.checkpoint.root != archived.checkpoint.root {
        return Err((
            1,
            format!(
                "the rebuilt tree (size {}, root {}) is not the archived one",
                latest.checkpoint.size.0, latest.checkpoint.root
            ),
        ));
    }
    println!(
        "tlogd restore: {} rebuilt: size {size}, root {} (the archived root)",
        args.data.display(),
        latest.checkpoint.root
    );
    Ok(())
}

/// `<data>/log.key` (mode 0600) and `<data>/log.vkey`, as a new log has them.
fn write_key_files(data: &Path, key: &SignerKey) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = data.join("log.key");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| format!("creating {}: {e}", path.display()))?;
    writeln!(file, "{}", key.to_private_string())
        .map_err(|e| format!("writing {}: {e}", path.display()))?;
    let vkey = data.join("log.vkey");
    std::fs::write(&vkey, format!("{}\n", key.verifier()))
        .map_err(|e| format!("writing {}: {e}", vkey.display()))
}

/// `tlogd info`: exit 0 printed, 2 could not read the folder.
fn info(args: InfoArgs) -> ExitCode {
    match print_info(&args.data) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tlogd info: error: {e}");
            ExitCode::from(2)
        }
    }
}

fn print_info(data: &Path) -> Result<(), Box<dyn std::error::Error>> {
    use tlog_storage::LogStore;
    let readme = datadir::read_readme(data)
        .map_err(|e| format!("reading {}: {e}", datadir::readme_path(data).display()))?;
    let (store, key) = open_stopped(data, None).map_err(|e| match e {
        OpenFailure::Usage(message) => message,
        OpenFailure::Store(e) => e.to_string(),
    })?;
    let unknown = |s: Option<&String>| {
        s.filter(|s| !s.is_empty())
            .cloned()
            .unwrap_or_else(|| "unknown (no README in the folder)".into())
    };
    println!("data folder:  {}", data.display());
    println!("origin:       {}", key.name());
    println!("verifier key: {}", key);
    println!(
        "created:      {}",
        unknown(readme.as_ref().map(|r| &r.created))
    );
    println!(
        "created by:   {}",
        unknown(readme.as_ref().map(|r| &r.created_by))
    );
    println!("this tlogd:   {VERSION}");
    match store.latest_checkpoint()? {
        Some((size, note)) => {
            println!("tree size:    {size}");
            println!("latest checkpoint:");
            print!("{}", String::from_utf8_lossy(&note));
        }
        None => println!("tree size:    0 (no checkpoint yet)"),
    }
    Ok(())
}

/// `tlogd verify`: exit 0 intact, 1 integrity failure, 2 could not check.
fn verify(args: VerifyArgs) -> ExitCode {
    let usage = |message: String| {
        eprintln!("tlogd verify: error: {message}");
        ExitCode::from(2)
    };
    let fail = |e: FsckError| match e {
        FsckError::Corrupt(_) => {
            println!("tlogd verify: FAILED: {e}");
            ExitCode::from(1)
        }
        _ => usage(e.to_string()),
    };
    let (store, key) = match open_stopped(&args.data, args.vkey.as_deref()) {
        Ok(opened) => opened,
        Err(OpenFailure::Usage(message)) => return usage(message),
        Err(OpenFailure::Store(e)) => return fail(e),
    };
    println!(
        "tlogd verify: checking {} (origin {})",
        args.data.display(),
        key.name()
    );
    let started = Instant::now();
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{wide_bar}] {pos}/{len} entries ({per_sec}, eta {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    });
    let every = args.progress_every.max(1);
    let mut next_line = every;
    let result = fsck::check(
        &store,
        &key,
        &fsck::Options::at_rest(),
        &mut |done, total| {
            match &bar {
                Some(bar) => {
                    bar.set_length(total);
                    bar.set_position(done);
                }
                None if done >= next_line || done == total => {
                    eprintln!("tlogd verify: {done}/{total} entries checked");
                    next_line = (done / every + 1) * every;
                }
                None => {}
            }
            true
        },
    );
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    match result {
        Ok(v) => {
            println!(
                "tlogd verify: OK: tree size {} root {}: {} entries, {} tree nodes and {} signed checkpoints verified in {:.1}s",
                v.tree_size,
                v.root,
                v.tree_size,
                v.nodes,
                v.checkpoints,
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// Why a data folder could not be opened for `tlogd verify` and `tlogd info`.
enum OpenFailure {
    /// Nothing to open, or the key files are missing or unreadable.
    Usage(String),
    /// The store itself failed to open (a damaged file is corruption).
    Store(FsckError),
}

/// Opens the log in `data` read-only (`<data>/db`), with its verifier key (see [`verifier_key`]).
fn open_stopped(
    data: &Path,
    vkey_file: Option<&Path>,
) -> Result<(RocksStore, VerifierKey), OpenFailure> {
    let db = data.join("db");
    if !db.is_dir() {
        return Err(OpenFailure::Usage(format!(
            "no log database in {} (expected {})",
            data.display(),
            db.display()
        )));
    }
    let key = verifier_key(data, vkey_file).map_err(OpenFailure::Usage)?;
    let store = RocksBackend::open_read_only(&db)
        .and_then(RocksStore::open)
        .map_err(|e| OpenFailure::Store(e.into()))?;
    Ok((store, key))
}

/// The log's verifier key for `tlogd verify`: from `vkey_file`, else `<data>/log.vkey`, else derived from
/// `<data>/log.key`.
fn verifier_key(data: &Path, vkey_file: Option<&Path>) -> Result<VerifierKey, String> {
    let read =
        |p: &Path| std::fs::read_to_string(p).map_err(|e| format!("reading {}: {e}", p.display()));
    let parse_vkey = |p: &Path| {
        VerifierKey::parse(read(p)?.trim())
            .map_err(|e| format!("{} is not a signed-note verifier key: {e}", p.display()))
    };
    let default_vkey = data.join("log.vkey");
    match vkey_file {
        Some(p) => parse_vkey(p),
        None if default_vkey.exists() => parse_vkey(&default_vkey),
        None => {
            let p = data.join("log.key");
            SignerKey::parse_private(&read(&p)?)
                .map(|key| key.verifier())
                .map_err(|e| format!("{} is not a signed-note private key: {e}", p.display()))
        }
    }
}

#[tokio::main]
async fn server(args: Args) -> ExitCode {
    let (config, json) = match config(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tlogd: {e}");
            return ExitCode::from(2);
        }
    };
    tlog_daemon::init_logging(json);

    let data = config.data_dir.clone();
    let witnessing = config.witnessing.clone();
    let archive = config.archive.as_ref().map(|a| a.location.to_string());
    let result = serve(
        config,
        |s| {
            if s.created_key {
                println!(
                    "tlogd: created a new log key in {}",
                    data.join("log.key").display()
                );
            }
            println!("tlogd: origin {}", s.origin);
            println!("tlogd: verifier key {}", s.verifier_key);
            println!("tlogd: tree size {}", s.tree_size);
            // Before the gRPC line, which launchers wait for as the last one.
            match s.http_addr {
                Some(http) => println!("tlogd: http listening on {http}"),
                None => println!("tlogd: http off"),
            }
            if let Some(w) = &witnessing {
                println!(
                    "tlogd: witnesses {} (quorum {})",
                    w.witnesses
                        .iter()
                        .map(|w| w.key.name())
                        .collect::<Vec<_>>()
                        .join(", "),
                    w.quorum
                );
            }
            if let Some(archive) = &archive {
                println!("tlogd: archiving to {archive}");
            }
            println!("tlogd: listening on {}", s.addr);
        },
        tlog_daemon::shutdown_logged("finishing the batch in flight"),
    )
    .await;
    tlog_daemon::exit_status("tlogd", result)
}
