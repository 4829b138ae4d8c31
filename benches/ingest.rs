//! `ingest`: issue 16's ingestion benchmark. One tlogd (the release binary by default), written to by the same
//! number of closed-loop clients in three ways, alternating in the same run:
//!
//! 1. gRPC `SubmitBatch` of the events' canonical JSON (the client canonicalises);
//! 2. HTTP `POST /v1/events` of the events as a JSON array (tlogd canonicalises and answers JSON receipts);
//! 3. HTTP `POST /v1/k8s/audit` of the events as an audit `EventList` (tlogd canonicalises, answers a count).
//!
//! Each run writes new events (no de-duplication), every answer is checked cheaply (receipt or entry counts) and
//! one request in `--verify-every` fully (its first receipt verified with the client crate against the log's key
//! and the event's canonical JSON). Reported: the median over the repeats of events/s and of the per-run median
//! request latency, and each HTTP path's throughput as a ratio of gRPC's.
//!
//! ```sh
//! cargo build --release --workspace --bins
//! cargo bench --workspace --bench ingest -- --repeats 3 --seconds 10
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::{Value, json};
use tlog_checkpoint::VerifierKey;
use tlog_proto::v1;
use tlog_suite::bench::{self, Rounds, median};
use tlog_suite::{Rpc, Tlogd, profile_dir};

#[derive(Parser, Debug, Clone)]
#[command(
    name = "ingest",
    about = "JSON events over HTTP (and the Kubernetes audit webhook) next to gRPC SubmitBatch"
)]
struct Args {
    /// Events per request.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Approximate bytes of an event's canonical JSON.
    #[arg(long, default_value_t = 256)]
    event_bytes: usize,
    /// Fully verify one request's first receipt in this many.
    #[arg(long, default_value_t = 50)]
    verify_every: u64,
    /// The tlogd to run (default: target/release/tlogd).
    #[arg(long)]
    tlogd: Option<PathBuf>,
    /// Run tlogd without fsync.
    #[arg(long)]
    no_sync: bool,
    #[command(flatten)]
    rounds: Rounds,
}

type Res<T> = Result<T, String>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Path {
    Grpc,
    Events,
    K8s,
}

impl Path {
    fn name(self) -> &'static str {
        match self {
            Path::Grpc => "gRPC SubmitBatch (canonical JSON)",
            Path::Events => "HTTP POST /v1/events (JSON array)",
            Path::K8s => "HTTP POST /v1/k8s/audit (EventList)",
        }
    }
}

/// A pseudo-random u64 from two counters (splitmix64).
fn mix(a: u64, b: u64) -> u64 {
    let mut z = a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_add(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Event `i` of request `n` of client `c` in run `tag`: an audit-event-shaped object, unique, padded with
/// incompressible hex to about `bytes` bytes of canonical JSON.
fn event(tag: u64, c: usize, n: u64, i: usize, bytes: usize) -> Value {
    let pad_len = bytes.saturating_sub(150);
    let mut pad = String::with_capacity(pad_len + 16);
    let mut k = 0u64;
    while pad.len() < pad_len {
        pad.push_str(&format!(
            "{:016x}",
            mix(mix(tag, n), (c as u64) << 32 | i as u64 ^ k << 20)
        ));
        k += 1;
    }
    pad.truncate(pad_len);
    json!({
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "auditID": format!("{tag:08x}-{c:04x}-{n:08x}-{i:04x}"),
        "verb": "update",
        "user": {"username": format!("writer-{c}")},
        "objectRef": {"resource": "configmaps", "namespace": "bench", "name": pad},
    })
}

fn jcs(v: &Value) -> Vec<u8> {
    serde_json_canonicalizer::to_vec(v).expect("a finite JSON value")
}

/// One client's results.
#[derive(Default)]
struct Tally {
    events: u64,
    latencies_ms: Vec<f64>,
    verified: u64,
}

struct Target {
    grpc: String,
    http: String,
    key: VerifierKey,
}

async fn connect(addr: &str) -> Res<Rpc> {
    Ok(Rpc::connect(addr.to_string())
        .await
        .map_err(|e| e.to_string())?
        .max_decoding_message_size(256 << 20)
        .max_encoding_message_size(256 << 20))
}

fn verify(key: &VerifierKey, receipt: tlog_client::Receipt, entry: &[u8]) -> Res<()> {
    tlog_client::verify_receipt(key, &receipt, Some(entry))
        .map(drop)
        .map_err(|e| format!("receipt does not verify: {e}"))
}

/// One request of `events` on `path`; checks the answer (and verifies its first receipt when `full`).
async fn request(
    path: Path,
    target: &Target,
    rpc: &mut Rpc,
    http: &reqwest::Client,
    events: &[Value],
    full: bool,
) -> Res<bool> {
    let n = events.len();
    match path {
        Path::Grpc => {
            let entries: Vec<Vec<u8>> = events.iter().map(jcs).collect();
            let first = entries[0].clone();
            let receipts = rpc
                .submit_batch(v1::SubmitBatchRequest {
                    entries,
                    client_tag: 0,
                    shared_checkpoint: false,
                    multiproof: false,
                })
                .await
                .map_err(|e| e.to_string())?
                .into_inner()
                .receipts;
            if receipts.len() != n {
                return Err(format!("{} receipts for {n} entries", receipts.len()));
            }
            if full {
                let receipt = tlog_client::Receipt::try_from(receipts[0].clone())
                    .map_err(|e| e.to_string())?;
                verify(&target.key, receipt, &first)?;
            }
        }
        Path::Events => {
            let answer: Value = post(http, &format!("{}/v1/events", target.http), events).await?;
            let receipts = answer["receipts"].as_array().ok_or("no receipts")?;
            if receipts.len() != n {
                return Err(format!("{} receipts for {n} events", receipts.len()));
            }
            if full {
                let receipt: tlog_client::Receipt =
                    serde_json::from_value(receipts[0].clone()).map_err(|e| e.to_string())?;
                verify(&target.key, receipt, &jcs(&events[0]))?;
            }
        }
        Path::K8s => {
            let list = json!({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {}, "items": events});
            let answer: Value = post(http, &format!("{}/v1/k8s/audit", target.http), &list).await?;
            if answer["entries"] != n {
                return Err(format!("{answer} for {n} events"));
            }
        }
    }
    Ok(full && path != Path::K8s)
}

async fn post<T: serde::Serialize + ?Sized>(
    http: &reqwest::Client,
    url: &str,
    body: &T,
) -> Res<Value> {
    let body = serde_json::to_vec(body).map_err(|e| e.to_string())?;
    let response = http
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let bytes = response.bytes().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!(
            "{url}: {status}: {}",
            String::from_utf8_lossy(&bytes)
        ));
    }
    serde_json::from_slice(&bytes).map_err(|e| e.to_string())
}

/// Closed-loop writers on `path` for `seconds`: events/s, the median request latency, and requests verified.
async fn run(path: Path, target: &Arc<Target>, args: &Args, tag: u64) -> Res<(f64, f64, u64)> {
    let end = Instant::now() + Duration::from_secs_f64(args.rounds.seconds);
    let counter = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for c in 0..args.rounds.clients {
        let mut rpc = connect(&target.grpc).await?;
        let http =
            tlog_client::http::http_client(Duration::from_secs(60)).map_err(|e| e.to_string())?;
        let (target, args, counter) = (target.clone(), args.clone(), counter.clone());
        tasks.push(tokio::spawn(async move {
            let mut t = Tally::default();
            let mut n = 0u64;
            while Instant::now() < end {
                let events: Vec<Value> = (0..args.batch)
                    .map(|i| event(tag, c, n, i, args.event_bytes))
                    .collect();
                let full = counter.fetch_add(1, Ordering::Relaxed) % args.verify_every.max(1) == 0;
                let started = Instant::now();
                let verified = request(path, &target, &mut rpc, &http, &events, full).await?;
                t.latencies_ms
                    .push(started.elapsed().as_secs_f64() * 1000.0);
                t.events += args.batch as u64;
                t.verified += u64::from(verified);
                n += 1;
            }
            Ok::<Tally, String>(t)
        }));
    }
    let started = Instant::now();
    let mut all = Tally::default();
    for task in tasks {
        let t = task.await.map_err(|e| e.to_string())??;
        all.events += t.events;
        all.verified += t.verified;
        all.latencies_ms.extend(t.latencies_ms);
    }
    let secs = started.elapsed().as_secs_f64();
    Ok((
        all.events as f64 / secs,
        median(&mut all.latencies_ms),
        all.verified,
    ))
}

async fn bench(args: Args) -> Res<()> {
    let bin = args
        .tlogd
        .clone()
        .unwrap_or_else(|| profile_dir().join("tlogd"));
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut flags = vec!["--max-batch-entries", "4096"];
    if args.no_sync {
        flags.push("--no-sync");
    }
    let tlogd = Tlogd::launch(
        &bin,
        &dir.path().join("data"),
        &flags,
        Some(&dir.path().join("tlogd.log")),
    )?;
    let target = Arc::new(Target {
        grpc: tlogd.addr.clone(),
        http: tlogd.http.clone().ok_or("tlogd serves no HTTP")?,
        key: VerifierKey::parse(&tlogd.vkey).map_err(|e| e.to_string())?,
    });
    let paths = [Path::Grpc, Path::Events, Path::K8s];
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); paths.len()];
    let mut p50s: Vec<Vec<f64>> = vec![Vec::new(); paths.len()];
    let mut verified = 0;
    for r in 0..args.rounds.repeats {
        for (k, &path) in paths.iter().enumerate() {
            let tag = (r * paths.len() + k) as u64 + 1;
            let (rate, p50, v) = run(path, &target, &args, tag).await?;
            eprintln!(
                "ingest: round {}: {}: {rate:.0} events/s, p50 {p50:.2} ms",
                r + 1,
                path.name()
            );
            rates[k].push(rate);
            p50s[k].push(p50);
            verified += v;
        }
    }
    tlogd.stop();
    let grpc = median(&mut rates[0].clone());
    println!(
        "\n{} clients, {} events per request, ~{} bytes per event, fsync {}, {} x {} s per path (medians)\n",
        args.rounds.clients,
        args.batch,
        args.event_bytes,
        if args.no_sync { "off" } else { "on" },
        args.rounds.repeats,
        args.rounds.seconds
    );
    println!("| path | events/s | request p50 ms | vs gRPC |");
    println!("|---|--:|--:|--:|");
    for (k, path) in paths.iter().enumerate() {
        let rate = median(&mut rates[k]);
        println!(
            "| {} | {rate:.0} | {:.2} | {:.2}x |",
            path.name(),
            median(&mut p50s[k]),
            rate / grpc
        );
    }
    println!("\n{verified} receipts verified in full, every answer counted");
    Ok(())
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let tlogd = args
        .tlogd
        .clone()
        .unwrap_or_else(|| profile_dir().join("tlogd"));
    if bench::skip_plain_run("ingest", &[&tlogd]) {
        return std::process::ExitCode::SUCCESS;
    }
    bench::run("ingest", bench(args))
}
