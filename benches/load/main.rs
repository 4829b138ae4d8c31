//! `load`: the end-to-end benchmark of `tlogd` (issue 5).
//!
//! It starts `target/release/tlogd` on a temporary folder (or drives a running server with `--target`), loads it
//! over real gRPC from N concurrent clients, checks every answer cheaply and verifies a sample of them fully (a
//! benchmark that accepts wrong answers measures nothing), and prints each result next to raw baselines measured
//! in the same run on the same machine: a synced RocksDB write batch of the same bytes, sha2 leaf hashing of the
//! same entries, and an empty tonic RPC round trip with as many clients.
//!
//! ```sh
//! cargo build --release --workspace --bins
//! cargo bench --workspace --bench load -- --suite standard            # what scripts/bench.sh runs
//! cargo bench --workspace --bench load -- --mode batch --clients 4 --batch 1000 --duration 10
//! cargo bench --workspace --bench load -- --mode submit --clients 64 --rate 10000 --json=out.json
//! ```
//!
//! Ack latency is the time from sending a write (or, in open loop, from when it was due) to its answer; tlogd
//! answers only once the entry is durable and covered by a signed checkpoint, so that is the ack. See
//! BENCHMARKS.md for results and method.

mod args;
mod baselines;
mod entries;
mod error;
mod huge;
mod launch;
mod metrics;
mod plan;
mod report;
mod runs;
mod verify;
mod workers;

use std::fs::File;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use tlog_proto::v1;
use tonic::transport::Channel;

use crate::args::{Args, Mode, Suite, validate};
use crate::baselines::measure_baselines;
use crate::entries::now_nanos;
use crate::error::{LoadError, Res};
use crate::launch::{Server, default_tlogd};
use crate::plan::{Scenario, plan};
use crate::report::{Report, loadavg, machine, markdown, to_json};
use crate::runs::{Outcome, Settings, existing, prefill, run_scenario};

pub(crate) type Rpc = v1::log_client::LogClient<Channel>;

/// Client id of the entries written by the prefill; entry `p` of the prefill sits at index `base + p`.
pub(crate) const PREFILL_CLIENT: u32 = u32::MAX;
/// Client id of the raw baselines' entries.
pub(crate) const RAW_CLIENT: u32 = u32::MAX - 1;
/// tlogd's default `max_batch_entries`: the largest group commit it forms, and the largest request it takes.
pub(crate) const SERVER_MAX_BATCH: usize = 4096;
/// Receipts of a 4096-entry batch are ~4 MiB, tonic's default limit; raise it well above.
pub(crate) const MAX_MESSAGE: usize = 256 << 20;
/// Open loop: requests in flight at most. Below tlogd's default queue (1024 submissions), so an overloaded server
/// shows up as late requests (counted from when they were due) rather than as RESOURCE_EXHAUSTED.
pub(crate) const OPEN_LOOP_IN_FLIGHT: usize = 1000;
/// Stream messages in flight during the prefill, of SERVER_MAX_BATCH entries each.
pub(crate) const PREFILL_WINDOW: usize = 4;

pub(crate) async fn run(args: Args) -> Res<Report> {
    validate(&args)?;
    let plan = plan(&args)?;
    let load_before = loadavg();
    let run0 = now_nanos();
    let set = Settings {
        duration: match (args.duration, args.entries) {
            (Some(d), _) => Some(d),
            (None, Some(_)) => None,
            (None, None) => Some(10.0),
        },
        entries: args.entries,
        entry_bytes: args.entry_bytes,
        verify_every: args.verify_every,
    };
    let bin = match &args.target {
        Some(_) => PathBuf::new(),
        None => {
            let bin = args.tlogd.clone().unwrap_or_else(default_tlogd);
            if !bin.is_file() {
                return Err(LoadError::NoTlogd(bin));
            }
            bin
        }
    };
    let scenarios: Vec<Scenario> = plan.all().cloned().collect();
    let baselines = measure_baselines(&args, &scenarios, run0).await?;
    let start_server = || match &args.target {
        Some(addr) => Server::target(addr, args.vkey.as_deref().unwrap_or_default()),
        None => Server::spawn(&bin, args.no_sync),
    };

    let mut outcomes = Vec::new();
    for (i, s) in plan.writes.iter().enumerate() {
        let server = start_server()?;
        let outcome = run_scenario(&server, s, None, run0 + 1 + i as u64, &set).await;
        server.stop();
        outcomes.push(outcome?);
    }
    let mut prefill_done = None;
    let mut huge_done = None;
    if args.suite == Some(Suite::Huge) {
        let mut server = start_server()?;
        let h = huge::run(&mut server, &plan, &set, run0, &mut outcomes).await;
        server.stop();
        let h = h?;
        prefill_done = Some(h.prefill);
        huge_done = Some(h);
    } else if !plan.reads.is_empty() || plan.prefill > 0 {
        let mut server = start_server()?;
        let known = if plan.prefill > 0 {
            let start = Instant::now();
            let k = prefill(
                &mut server,
                plan.prefill,
                run0 + 1000,
                &set,
                args.prefill_sync,
            )
            .await?;
            prefill_done = Some((plan.prefill, start.elapsed().as_secs_f64()));
            k
        } else {
            existing(&server, args.entry_bytes).await?
        };
        let known = Arc::new(known);
        if known.count == 0 && !plan.reads.is_empty() {
            return Err(LoadError::Plan(
                "proof reads need entries: pass --prefill N".into(),
            ));
        }
        for (i, s) in plan.reads.iter().enumerate() {
            if known.run.is_none() && matches!(s.mode, Mode::InclusionHash | Mode::Consistency) {
                return Err(LoadError::Plan(format!(
                    "{} needs entries and checkpoints this run wrote: pass --prefill N",
                    s.name()
                )));
            }
            if s.mode == Mode::Consistency && known.checkpoints.len() < 2 {
                return Err(LoadError::Plan(
                    "consistency reads need at least two published sizes: prefill more".into(),
                ));
            }
            outcomes
                .push(run_scenario(&server, s, Some(&known), run0 + 2000 + i as u64, &set).await?);
        }
        server.stop();
    }
    Ok(Report {
        outcomes,
        baselines,
        prefill: prefill_done,
        huge: huge_done,
        machine: machine(load_before),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        sync: !args.no_sync,
        entry_bytes: args.entry_bytes,
    })
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    if args.target.is_none() && tlog_suite::bench::skip_plain_run("load", &[&default_tlogd()]) {
        return ExitCode::SUCCESS;
    }
    let json_out = args.json.clone();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("load: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let report = match rt.block_on(run(args)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("load: {e}");
            return ExitCode::FAILURE;
        }
    };
    let failures: u64 = report.outcomes.iter().map(Outcome::failures).sum();
    match json_out.as_deref() {
        Some("-") => println!("{:#}", to_json(&report)),
        Some(path) => {
            print!("{}", markdown(&report));
            let text = format!("{:#}\n", to_json(&report));
            if let Err(e) = File::create(path)
                .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
            {
                eprintln!("load: writing {path}: {e}");
                return ExitCode::FAILURE;
            }
        }
        None => print!("{}", markdown(&report)),
    }
    if failures > 0 {
        eprintln!("load: {failures} answers FAILED verification: the numbers above are void");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
