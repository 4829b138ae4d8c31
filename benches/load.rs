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

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Parser, ValueEnum};
use rocksdb::{DB, Options, WriteBatch, WriteOptions};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tlog_checkpoint::{SignedCheckpoint, VerifierKey, verify_checkpoint};
use tlog_client::{Receipt, verify_receipt};
use tlog_core::{LeafIndex, TreeSize, leaf_hash, verify_consistency, verify_inclusion};
use tlog_proto::v1::{self, get_inclusion_proof_request::Leaf};
use tlog_proto::{hash_from_bytes, hashes_from_bytes};
use tokio::sync::{Semaphore, mpsc};
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::transport::{Channel, Endpoint};

type Res<T> = Result<T, String>;
type Rpc = v1::log_client::LogClient<Channel>;

/// Client id of the entries written by the prefill; entry `p` of the prefill sits at index `base + p`.
const PREFILL_CLIENT: u32 = u32::MAX;
/// Client id of the raw baselines' entries.
const RAW_CLIENT: u32 = u32::MAX - 1;
/// tlogd's default `max_batch_entries`: the largest group commit it forms, and the largest request it takes.
const SERVER_MAX_BATCH: usize = 4096;
/// Receipts of a 4096-entry batch are ~4 MiB, tonic's default limit; raise it well above.
const MAX_MESSAGE: usize = 256 << 20;
/// Open loop: requests in flight at most. Below tlogd's default queue (1024 submissions), so an overloaded server
/// shows up as late requests (counted from when they were due) rather than as RESOURCE_EXHAUSTED.
const OPEN_LOOP_IN_FLIGHT: usize = 1000;
/// Stream messages in flight during the prefill, of SERVER_MAX_BATCH entries each.
const PREFILL_WINDOW: usize = 4;

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Unary Submit, one entry per call (batch is 1).
    Submit,
    /// SubmitBatch, --batch entries per call.
    Batch,
    /// SubmitStream: --batch entries per message, --window messages in flight per client.
    Stream,
    /// GetInclusionProof by leaf index, uniform over the prefilled entries.
    InclusionIndex,
    /// GetInclusionProof by leaf hash, uniform over the prefilled entries.
    InclusionHash,
    /// GetConsistencyProof from a random size the prefill saw published to the latest.
    Consistency,
    /// SubmitBatch writers (--clients, --batch) and inclusion-by-index readers (--readers) at the same time.
    Mixed,
    /// Only the raw baselines.
    Baselines,
}

impl Mode {
    fn reads(self) -> bool {
        matches!(
            self,
            Mode::InclusionIndex | Mode::InclusionHash | Mode::Consistency | Mode::Mixed
        )
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum Suite {
    /// Every write mode, then proof reads and a mixed run on a 1M-entry log: a few minutes.
    Standard,
    /// Proof reads on a 10M-entry log (the prefill alone takes minutes).
    Large,
}

#[derive(Parser, Debug)]
#[command(
    name = "load",
    about = "End-to-end tlogd benchmark: real gRPC load, sampled receipt verification, same-run raw baselines"
)]
struct Args {
    /// What to run (ignored with --suite).
    #[arg(long, value_enum, default_value_t = Mode::Batch)]
    mode: Mode,
    /// Run a whole suite instead of one --mode.
    #[arg(long, value_enum)]
    suite: Option<Suite>,
    /// Concurrent clients, each on its own connection (writers in mixed mode).
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// Entries per SubmitBatch call or stream message.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Stream messages in flight per client (stream mode).
    #[arg(long, default_value_t = 8)]
    window: usize,
    /// Inclusion-by-index readers in mixed mode (default 16).
    #[arg(long)]
    readers: Option<usize>,
    /// Seconds per run (default 10; without a limit when only --entries is given).
    #[arg(long)]
    duration: Option<f64>,
    /// Stop after this many entries (write modes) or proofs (read modes).
    #[arg(long)]
    entries: Option<u64>,
    /// Open loop: offer this many entries/s (submit and batch modes); latency counts from when a request was due.
    #[arg(long)]
    rate: Option<f64>,
    /// Share this many connections among the clients (default: one connection per client), as clients behind a
    /// gateway would; HTTP/2 multiplexes their calls.
    #[arg(long)]
    connections: Option<usize>,
    /// Drive a running server (e.g. http://127.0.0.1:7400) instead of starting tlogd; needs --vkey.
    #[arg(long, requires = "vkey")]
    target: Option<String>,
    /// The target's verifier key, or a file holding it (e.g. data/log.vkey).
    #[arg(long)]
    vkey: Option<String>,
    /// Entries to append before proof reads (default 1,000,000 for read modes on a started tlogd, else 0).
    #[arg(long)]
    prefill: Option<u64>,
    /// Prefill with fsync on. By default a started tlogd is restarted with --no-sync for the prefill only.
    #[arg(long)]
    prefill_sync: bool,
    /// Run tlogd (and the raw RocksDB baseline) without fsync.
    #[arg(long)]
    no_sync: bool,
    /// Bytes per entry.
    #[arg(long, default_value_t = 256)]
    entry_bytes: usize,
    /// Fully verify one answer in this many (plus each client's first and last receipt).
    #[arg(long, default_value_t = 100)]
    verify_every: u64,
    /// Seconds per baseline measurement.
    #[arg(long, default_value_t = 2.0)]
    baseline_secs: f64,
    /// Skip the baselines.
    #[arg(long)]
    no_baselines: bool,
    /// The tlogd binary (default: next to this benchmark's target folder, target/release/tlogd).
    #[arg(long)]
    tlogd: Option<PathBuf>,
    /// Print JSON instead of markdown; `--json=FILE` writes JSON to FILE and still prints markdown.
    #[arg(long, num_args = 0..=1, default_missing_value = "-", require_equals = true)]
    json: Option<String>,
    /// Added by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// One measured run.
#[derive(Clone, Debug)]
struct Scenario {
    mode: Mode,
    clients: usize,
    batch: usize,
    window: usize,
    readers: usize,
    rate: Option<f64>,
    /// Connections shared by the clients; None: one each.
    connections: Option<usize>,
}

impl Scenario {
    fn name(&self) -> String {
        match self.connections {
            Some(n) => format!(
                "{} over {n} connection{}",
                self.base_name(),
                if n == 1 { "" } else { "s" }
            ),
            None => self.base_name(),
        }
    }

    fn base_name(&self) -> String {
        let c = self.clients;
        let open = |s: String| match self.rate {
            Some(r) => format!("{s}, open loop {} entries/s", thousands(r)),
            None => s,
        };
        match self.mode {
            Mode::Submit => open(format!("Submit, {c} clients")),
            Mode::Batch => open(format!("SubmitBatch {}, {c} clients", self.batch)),
            Mode::Stream => format!(
                "SubmitStream {}/msg, {} in flight, {c} clients",
                self.batch, self.window
            ),
            Mode::InclusionIndex => format!("inclusion by index, {c} clients"),
            Mode::InclusionHash => format!("inclusion by hash, {c} clients"),
            Mode::Consistency => format!("consistency, {c} clients"),
            Mode::Mixed => format!(
                "mixed: SubmitBatch {} × {c} + {} index readers",
                self.batch, self.readers
            ),
            Mode::Baselines => "baselines".into(),
        }
    }

    fn writes(&self) -> bool {
        matches!(
            self.mode,
            Mode::Submit | Mode::Batch | Mode::Stream | Mode::Mixed
        )
    }

    /// Entries the server could at best commit in one synced write under this load: what the raw RocksDB baseline
    /// writes per batch. Open loop compares latency with a single synced write instead.
    fn raw_batch(&self) -> Option<usize> {
        let in_flight = match self.mode {
            _ if self.rate.is_some() => return Some(1),
            Mode::Submit => self.clients,
            Mode::Batch | Mode::Mixed => self.clients * self.batch,
            Mode::Stream => self.clients * self.batch * self.window,
            _ => return None,
        };
        Some(in_flight.clamp(1, SERVER_MAX_BATCH))
    }

    /// Clients whose empty-RPC round trip is the matching baseline.
    fn rpc_clients(&self) -> Option<usize> {
        match self.mode {
            Mode::Baselines => None,
            Mode::Mixed => Some(self.clients + self.readers),
            _ => Some(self.clients),
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Entries

/// Entry `seq` of `client` in run `run`: unique, so de-duplication never short-cuts a write, with incompressible
/// filler, so compression does not flatter the disk bytes per entry. Deterministic, so a sampled receipt can be
/// checked against its entry without keeping every entry.
fn make_entry(run: u64, client: u32, seq: u64, size: usize) -> Vec<u8> {
    let mut e = Vec::with_capacity(size + 8);
    e.extend_from_slice(&run.to_be_bytes());
    e.extend_from_slice(&client.to_be_bytes());
    e.extend_from_slice(&seq.to_be_bytes());
    let mut x = (run ^ (u64::from(client) << 32) ^ seq.wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1;
    while e.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        e.extend_from_slice(&x.to_le_bytes());
    }
    e.truncate(size);
    e
}

/// Bytes of the (run, client, seq) prefix that makes entries unique.
const ENTRY_PREFIX: usize = 20;

/// xorshift64*: uniform enough for picking indices, and cheap.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        ((u128::from(self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)) * u128::from(n)) >> 64) as u64
    }
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

// ---------------------------------------------------------------------------------------------------------------
// The server under test

/// A `tlogd` this benchmark started; killed when dropped.
struct Tlogd {
    child: Child,
    addr: String,
    vkey: String,
}

impl Tlogd {
    fn start(bin: &Path, data: &Path, no_sync: bool, log: &Path) -> Res<Tlogd> {
        let stderr = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| format!("creating {}: {e}", log.display()))?;
        let mut cmd = Command::new(bin);
        cmd.arg("--data")
            .arg(data)
            .args(["--listen", "127.0.0.1:0"]);
        if no_sync {
            cmd.arg("--no-sync");
        }
        let mut child = cmd
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", bin.display()))?;
        let stdout = child.stdout.take().ok_or("tlogd: no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let (mut vkey, mut addr) = (None, None);
        for line in lines.by_ref() {
            let Ok(line) = line else { break };
            if let Some(v) = line.strip_prefix("tlogd: verifier key ") {
                vkey = Some(v.to_string());
            } else if let Some(a) = line.strip_prefix("tlogd: listening on ") {
                addr = Some(format!("http://{a}"));
                break;
            }
        }
        // Keep draining stdout so a later print can never fail on a closed pipe.
        std::thread::spawn(move || lines.for_each(drop));
        match (addr, vkey) {
            (Some(addr), Some(vkey)) => Ok(Tlogd { child, addr, vkey }),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                let said = std::fs::read_to_string(log).unwrap_or_default();
                Err(format!(
                    "tlogd did not start; its log ({}):\n{said}",
                    log.display()
                ))
            }
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM (tlogd finishes the batch in flight), then wait.
    fn stop(mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Tlogd {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The server the clients talk to: a started tlogd on a temporary folder, or `--target`.
struct Server {
    addr: String,
    key: VerifierKey,
    proc: Option<Tlogd>,
    /// Temporary folder holding `data/` and `tlogd.log`.
    dir: Option<tempfile::TempDir>,
    bin: PathBuf,
    no_sync: bool,
}

impl Server {
    fn spawn(bin: &Path, no_sync: bool) -> Res<Server> {
        let dir = tempfile::Builder::new()
            .prefix("tlog-load-")
            .tempdir()
            .map_err(|e| format!("creating a temporary folder: {e}"))?;
        let proc = Tlogd::start(
            bin,
            &dir.path().join("data"),
            no_sync,
            &dir.path().join("tlogd.log"),
        )?;
        let key = parse_vkey(&proc.vkey)?;
        Ok(Server {
            addr: proc.addr.clone(),
            key,
            proc: Some(proc),
            dir: Some(dir),
            bin: bin.to_path_buf(),
            no_sync,
        })
    }

    fn target(addr: &str, vkey: &str) -> Res<Server> {
        let text = match std::fs::read_to_string(vkey) {
            Ok(t) => t.trim().to_string(),
            Err(_) => vkey.to_string(),
        };
        Ok(Server {
            addr: addr.to_string(),
            key: parse_vkey(&text)?,
            proc: None,
            dir: None,
            bin: PathBuf::new(),
            no_sync: false,
        })
    }

    fn data(&self) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.path().join("data"))
    }

    /// Restarts a started tlogd on the same data with another sync setting (the log key stays).
    fn restart(&mut self, no_sync: bool) -> Res<()> {
        let (Some(proc), Some(dir)) = (self.proc.take(), self.dir.as_ref()) else {
            return Ok(());
        };
        proc.stop();
        let proc = Tlogd::start(
            &self.bin,
            &dir.path().join("data"),
            no_sync,
            &dir.path().join("tlogd.log"),
        )?;
        self.addr = proc.addr.clone();
        self.no_sync = no_sync;
        self.proc = Some(proc);
        Ok(())
    }

    fn stats(&self, tree_size: u64) -> Option<ServerStats> {
        let proc = self.proc.as_ref()?;
        let pid = proc.pid().to_string();
        let data = self.data()?;
        Some(ServerStats {
            cpu: 0.0,
            rss_kib: proc_status_kib(&pid, "VmRSS:").unwrap_or(0),
            hwm_kib: proc_status_kib(&pid, "VmHWM:").unwrap_or(0),
            disk_bytes: dir_bytes(&data),
            tree_size,
        })
    }

    fn cpu_secs(&self) -> Option<f64> {
        proc_cpu_secs(&self.proc.as_ref()?.pid().to_string())
    }

    fn stop(mut self) {
        if let Some(p) = self.proc.take() {
            p.stop();
        }
    }
}

fn parse_vkey(text: &str) -> Res<VerifierKey> {
    VerifierKey::parse(text.trim()).map_err(|e| format!("verifier key {text:?}: {e}"))
}

/// A `VmRSS:`-style line of /proc/<pid>/status, in KiB.
fn proc_status_kib(pid: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// User + system CPU seconds of a process (`self` or a pid) from /proc/<pid>/stat.
fn proc_cpu_secs(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // /proc reports USER_HZ ticks, which Linux fixes at 100 for user space.
    Some(ticks as f64 / 100.0)
}

fn dir_bytes(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

async fn connect(addr: &str) -> Res<Rpc> {
    let channel = Endpoint::from_shared(addr.to_string())
        .map_err(|e| format!("bad target address {addr}: {e}"))?
        .connect()
        .await
        .map_err(|e| format!("connecting to {addr}: {e}"))?;
    Ok(v1::log_client::LogClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE))
}

/// `n` clients over `connections` connections (one each when None).
async fn connect_all(addr: &str, n: usize, connections: Option<usize>) -> Res<Vec<Rpc>> {
    let mut shared = Vec::new();
    for _ in 0..connections.unwrap_or(n).min(n) {
        shared.push(connect(addr).await?);
    }
    Ok((0..n).map(|i| shared[i % shared.len()].clone()).collect())
}

/// The latest checkpoint, signature verified.
async fn latest(rpc: &mut Rpc, key: &VerifierKey) -> Res<SignedCheckpoint> {
    let wire = rpc
        .get_checkpoint(v1::GetCheckpointRequest {
            min_size: 0,
            size: 0,
        })
        .await
        .map_err(|s| format!("GetCheckpoint: {s}"))?
        .into_inner();
    verify_checkpoint(key, &wire.note).map_err(|e| format!("GetCheckpoint answer: {e}"))
}

// ---------------------------------------------------------------------------------------------------------------
// Checking answers

#[derive(Default, Debug)]
struct Checks {
    verified: u64,
    failures: u64,
    first_failure: Option<String>,
}

impl Checks {
    fn fail(&mut self, what: String) {
        self.failures += 1;
        self.first_failure.get_or_insert(what);
    }

    fn merge(&mut self, o: Checks) {
        self.verified += o.verified;
        self.failures += o.failures;
        if self.first_failure.is_none() {
            self.first_failure = o.first_failure;
        }
    }
}

/// Checks answers: cheap structural checks on every one, full cryptographic verification of a sample.
struct Verifier {
    key: VerifierKey,
    every: u64,
    seen: u64,
    /// The last checkpoint whose signatures were verified: receipts of one batch share it.
    cached: Option<SignedCheckpoint>,
    checks: Checks,
}

impl Verifier {
    fn new(key: &VerifierKey, every: u64) -> Verifier {
        Verifier {
            key: key.clone(),
            every,
            seen: 0,
            cached: None,
            checks: Checks::default(),
        }
    }

    fn sampled(&mut self) -> bool {
        self.seen += 1;
        self.seen.is_multiple_of(self.every)
    }

    /// Every write receipt: a new entry (never a duplicate) inside its checkpoint's tree; `force` or the sample
    /// verifies it fully against `entry()`.
    fn write_receipt(&mut self, r: &v1::Receipt, force: bool, entry: impl FnOnce() -> Vec<u8>) {
        let size = r.checkpoint.as_ref().map_or(0, |c| c.size);
        if r.duplicate {
            self.checks
                .fail(format!("receipt {} marks a new entry duplicate", r.index));
        }
        if r.index >= size {
            self.checks.fail(format!(
                "receipt index {} outside its checkpoint's tree of {size}",
                r.index
            ));
        }
        if self.sampled() || force {
            match Receipt::try_from(r.clone()) {
                Ok(receipt) => {
                    let entry = entry();
                    self.full(&receipt, Some(&entry));
                }
                Err(e) => self.checks.fail(format!("receipt {}: {e}", r.index)),
            }
        }
    }

    /// Full verification; counts the outcome and returns the verified checkpoint's size.
    fn full(&mut self, receipt: &Receipt, entry: Option<&[u8]>) -> Option<u64> {
        match self.check(receipt, entry) {
            Ok(size) => {
                self.checks.verified += 1;
                Some(size)
            }
            Err(e) => {
                self.checks
                    .fail(format!("receipt {}: {e}", receipt.index.0));
                None
            }
        }
    }

    /// `tlog_client::verify_receipt` (checkpoint signature and cosignature, leaf hash of the entry, inclusion
    /// proof). A checkpoint byte-identical to the last verified one is not verified again: only the leaf hash and
    /// the proof are, exactly as `LogClient` does for the receipts of one batch.
    fn check(&mut self, receipt: &Receipt, entry: Option<&[u8]>) -> Res<u64> {
        if let Some(cp) = &self.cached
            && cp.note == receipt.checkpoint
        {
            if let Some(e) = entry
                && leaf_hash(e) != receipt.leaf_hash
            {
                return Err("leaf hash is not the entry's".into());
            }
            verify_inclusion(
                &receipt.leaf_hash,
                receipt.index,
                cp.checkpoint.size,
                &receipt.inclusion_proof,
                &cp.checkpoint.root,
            )
            .map_err(|e| e.to_string())?;
            return Ok(cp.checkpoint.size.0);
        }
        let verified = verify_receipt(&self.key, receipt, entry).map_err(|e| e.to_string())?;
        let size = verified.checkpoint().checkpoint.size.0;
        self.cached = Some(verified.checkpoint().clone());
        Ok(size)
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Load

/// What a worker measured.
#[derive(Default)]
struct Tally {
    /// Per answered request, microseconds.
    lat_us: Vec<u32>,
    /// Entries acknowledged, or proofs answered.
    ops: u64,
    requests: u64,
    errors: u64,
    first_error: Option<String>,
    checks: Checks,
}

impl Tally {
    fn record(&mut self, latency: Duration, ops: usize) {
        self.lat_us
            .push(latency.as_micros().min(u128::from(u32::MAX)) as u32);
        self.ops += ops as u64;
        self.requests += 1;
    }

    fn error(&mut self, what: String) {
        self.errors += 1;
        self.first_error.get_or_insert(what);
    }

    fn merge(&mut self, o: Tally) {
        self.lat_us.extend(o.lat_us);
        self.ops += o.ops;
        self.requests += o.requests;
        self.errors += o.errors;
        if self.first_error.is_none() {
            self.first_error = o.first_error;
        }
        self.checks.merge(o.checks);
    }
}

/// When workers stop: a deadline and/or a shared budget of entries or proofs.
struct Stop {
    deadline: Option<Instant>,
    budget: Option<AtomicU64>,
}

impl Stop {
    fn new(duration: Option<f64>, budget: Option<u64>) -> Stop {
        Stop {
            deadline: duration.map(|s| Instant::now() + Duration::from_secs_f64(s)),
            budget: budget.map(AtomicU64::new),
        }
    }

    /// Claims up to `want` units of work; 0 means stop.
    fn claim(&self, want: usize) -> usize {
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return 0;
        }
        let want = want as u64;
        match &self.budget {
            None => want as usize,
            Some(b) => b
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                    (left > 0).then(|| left - left.min(want))
                })
                .map_or(0, |left| left.min(want) as usize),
        }
    }
}

/// Shared by the workers of one run.
struct Ctx {
    run: u64,
    entry_bytes: usize,
    key: VerifierKey,
    verify_every: u64,
}

impl Ctx {
    fn entry(&self, client: u32, seq: u64) -> Vec<u8> {
        make_entry(self.run, client, seq, self.entry_bytes)
    }

    fn verifier(&self) -> Verifier {
        Verifier::new(&self.key, self.verify_every)
    }
}

/// A write worker's receipt bookkeeping.
struct WriteChecks {
    v: Verifier,
    /// The last receipt seen and its entry's sequence number, verified at the end.
    last: Option<(v1::Receipt, u64)>,
    /// Prefill: each receipt's index must be `base + seq`, and each checkpoint seen is kept.
    expect_base: Option<u64>,
    checkpoints: BTreeMap<u64, String>,
}

impl WriteChecks {
    fn new(ctx: &Ctx, expect_base: Option<u64>) -> WriteChecks {
        WriteChecks {
            v: ctx.verifier(),
            last: None,
            expect_base,
            checkpoints: BTreeMap::new(),
        }
    }

    /// Checks the receipts of `n` entries starting at sequence number `seq0` of `client`.
    fn receipts(
        &mut self,
        ctx: &Ctx,
        client: u32,
        seq0: u64,
        n: usize,
        mut receipts: Vec<v1::Receipt>,
    ) {
        if receipts.len() != n {
            self.v
                .checks
                .fail(format!("{n} entries got {} receipts", receipts.len()));
            return;
        }
        let mut previous = None;
        for (k, r) in receipts.iter().enumerate() {
            let seq = seq0 + k as u64;
            if previous.is_some_and(|p| r.index <= p) {
                self.v
                    .checks
                    .fail("receipt indices not increasing within a request".into());
            }
            previous = Some(r.index);
            if let Some(base) = self.expect_base
                && r.index != base + seq
            {
                self.v.checks.fail(format!(
                    "prefill entry {seq} got index {}, expected {}",
                    r.index,
                    base + seq
                ));
            }
            let first = self.last.is_none() && k == 0;
            self.v.write_receipt(r, first, || ctx.entry(client, seq));
        }
        if self.expect_base.is_some()
            && let Some(cp) = receipts.first().and_then(|r| r.checkpoint.as_ref())
            && let Ok(note) = String::from_utf8(cp.note.clone())
        {
            self.checkpoints.insert(cp.size, note);
        }
        self.last = receipts.pop().map(|r| (r, seq0 + n as u64 - 1));
    }

    fn finish(mut self, ctx: &Ctx, client: u32) -> (Checks, BTreeMap<u64, String>) {
        if let Some((r, seq)) = self.last.take() {
            self.v.write_receipt(&r, true, || ctx.entry(client, seq));
        }
        (self.v.checks, self.checkpoints)
    }
}

/// Gives up on a worker whose server keeps failing, rather than spinning.
const MAX_CONSECUTIVE_ERRORS: u32 = 100;

/// Closed loop: one Submit or SubmitBatch call at a time.
async fn write_closed(
    mut rpc: Rpc,
    ctx: Arc<Ctx>,
    stop: Arc<Stop>,
    client: u32,
    unary: bool,
    batch: usize,
) -> Tally {
    let mut t = Tally::default();
    let mut checks = WriteChecks::new(&ctx, None);
    let (mut seq, mut consecutive) = (0u64, 0);
    loop {
        let n = stop.claim(if unary { 1 } else { batch });
        if n == 0 {
            break;
        }
        let seq0 = seq;
        seq += n as u64;
        let mut entries: Vec<Vec<u8>> =
            (0..n as u64).map(|k| ctx.entry(client, seq0 + k)).collect();
        let start = Instant::now();
        let answer = if unary {
            let entry = entries.pop().unwrap_or_default();
            rpc.submit(v1::SubmitRequest { entry })
                .await
                .map(|r| vec![r.into_inner()])
        } else {
            rpc.submit_batch(v1::SubmitBatchRequest {
                entries,
                client_tag: 0,
            })
            .await
            .map(|r| r.into_inner().receipts)
        };
        let latency = start.elapsed();
        match answer {
            Ok(receipts) => {
                consecutive = 0;
                t.record(latency, n);
                checks.receipts(&ctx, client, seq0, n, receipts);
            }
            Err(s) => {
                t.error(format!("{}: {}", s.code(), s.message()));
                consecutive += 1;
                if consecutive >= MAX_CONSECUTIVE_ERRORS {
                    break;
                }
            }
        }
    }
    t.checks = checks.finish(&ctx, client).0;
    t
}

/// A request sent on a stream and not yet answered.
struct Sent {
    tag: u64,
    at: Instant,
    seq0: u64,
    n: usize,
}

/// The sending half of a SubmitStream call.
struct StreamSender {
    tx: Option<mpsc::Sender<v1::SubmitBatchRequest>>,
    in_flight: VecDeque<Sent>,
    tag: u64,
    seq: u64,
}

impl StreamSender {
    /// Sends until `window` messages are in flight; closes the request stream when the run is over.
    fn fill(&mut self, ctx: &Ctx, stop: &Stop, client: u32, batch: usize, window: usize) {
        while self.in_flight.len() < window {
            let Some(tx) = &self.tx else { return };
            let n = stop.claim(batch);
            if n == 0 {
                self.tx = None;
                return;
            }
            let seq0 = self.seq;
            let entries = (0..n as u64).map(|k| ctx.entry(client, seq0 + k)).collect();
            let message = v1::SubmitBatchRequest {
                entries,
                client_tag: self.tag,
            };
            // The channel holds `window` messages, so this cannot be full while fewer are in flight.
            if tx.try_send(message).is_err() {
                self.tx = None;
                return;
            }
            self.in_flight.push_back(Sent {
                tag: self.tag,
                at: Instant::now(),
                seq0,
                n,
            });
            self.tag += 1;
            self.seq += n as u64;
        }
    }
}

/// One SubmitStream call per client with `window` messages in flight. With `expect_base` (the prefill), receipt
/// indices must follow the stream order from `base`, and the checkpoints seen are returned.
async fn write_stream(
    mut rpc: Rpc,
    ctx: Arc<Ctx>,
    stop: Arc<Stop>,
    client: u32,
    (batch, window): (usize, usize),
    expect_base: Option<u64>,
) -> (Tally, BTreeMap<u64, String>) {
    let mut t = Tally::default();
    let mut checks = WriteChecks::new(&ctx, expect_base);
    let (tx, rx) = mpsc::channel(window.max(1));
    let mut s = StreamSender {
        tx: Some(tx),
        in_flight: VecDeque::new(),
        tag: 0,
        seq: 0,
    };
    // The first window is queued before the call opens, so no ordering of headers and body can deadlock.
    s.fill(&ctx, &stop, client, batch, window);
    match rpc.submit_stream(ReceiverStream::new(rx)).await {
        Ok(responses) => {
            let mut responses = responses.into_inner();
            while !s.in_flight.is_empty() {
                match responses.message().await {
                    Ok(Some(answer)) => {
                        let Some(sent) = s.in_flight.pop_front() else {
                            break;
                        };
                        t.record(sent.at.elapsed(), sent.n);
                        if answer.client_tag != sent.tag {
                            checks.v.checks.fail(format!(
                                "stream answer tagged {} for request {}",
                                answer.client_tag, sent.tag
                            ));
                        }
                        checks.receipts(&ctx, client, sent.seq0, sent.n, answer.receipts);
                        s.fill(&ctx, &stop, client, batch, window);
                    }
                    Ok(None) => {
                        t.error(format!(
                            "stream ended with {} requests unanswered",
                            s.in_flight.len()
                        ));
                        break;
                    }
                    Err(e) => {
                        t.error(format!("{}: {}", e.code(), e.message()));
                        break;
                    }
                }
            }
        }
        Err(e) => t.error(format!("{}: {}", e.code(), e.message())),
    }
    let (c, checkpoints) = checks.finish(&ctx, client);
    t.checks = c;
    (t, checkpoints)
}

/// An answered open-loop request.
struct Done {
    latency: Duration,
    client: u32,
    seq0: u64,
    n: usize,
    answer: Result<Vec<v1::Receipt>, tonic::Status>,
}

/// Open loop: requests leave on a fixed schedule whatever the answers do, and each latency counts from when its
/// request was due, so a stalled server shows up in the tail instead of slowing the offered load
/// (no coordinated omission).
async fn write_open(
    rpcs: Vec<Rpc>,
    ctx: Arc<Ctx>,
    stop: Arc<Stop>,
    (unary, batch): (bool, usize),
    rate: f64,
) -> Tally {
    let batch = if unary { 1 } else { batch };
    let per_request = Duration::from_secs_f64(batch as f64 / rate);
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
    let collector = {
        let ctx = ctx.clone();
        let clients = rpcs.len();
        tokio::spawn(async move {
            let mut t = Tally::default();
            let mut checks: Vec<WriteChecks> =
                (0..clients).map(|_| WriteChecks::new(&ctx, None)).collect();
            while let Some(d) = done_rx.recv().await {
                match d.answer {
                    Ok(receipts) => {
                        t.record(d.latency, d.n);
                        checks[d.client as usize].receipts(&ctx, d.client, d.seq0, d.n, receipts);
                    }
                    Err(s) => t.error(format!("{}: {}", s.code(), s.message())),
                }
            }
            for (client, c) in checks.into_iter().enumerate() {
                t.checks.merge(c.finish(&ctx, client as u32).0);
            }
            t
        })
    };
    let in_flight = Arc::new(Semaphore::new(OPEN_LOOP_IN_FLIGHT));
    let mut seqs = vec![0u64; rpcs.len()];
    let start = tokio::time::Instant::now();
    for k in 0u64.. {
        let due = start + per_request.mul_f64(k as f64);
        // Returns at once when already due; the timer's 1 ms tick sends small bursts, each timed from its due time.
        tokio::time::sleep_until(due).await;
        let n = stop.claim(batch);
        if n == 0 {
            break;
        }
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            break;
        };
        let client = (k % rpcs.len() as u64) as usize;
        let seq0 = seqs[client];
        seqs[client] += n as u64;
        let mut rpc = rpcs[client].clone();
        let (ctx, done_tx) = (ctx.clone(), done_tx.clone());
        tokio::spawn(async move {
            let mut entries: Vec<Vec<u8>> = (0..n as u64)
                .map(|i| ctx.entry(client as u32, seq0 + i))
                .collect();
            let answer = if unary {
                let entry = entries.pop().unwrap_or_default();
                rpc.submit(v1::SubmitRequest { entry })
                    .await
                    .map(|r| vec![r.into_inner()])
            } else {
                rpc.submit_batch(v1::SubmitBatchRequest {
                    entries,
                    client_tag: 0,
                })
                .await
                .map(|r| r.into_inner().receipts)
            };
            let latency = due.elapsed();
            drop(permit);
            let _ = done_tx.send(Done {
                latency,
                client: client as u32,
                seq0,
                n,
                answer,
            });
        });
    }
    drop(done_tx);
    collector.await.unwrap_or_else(|e| {
        let mut t = Tally::default();
        t.error(format!("open-loop collector failed: {e}"));
        t
    })
}

/// What the run knows about the log's contents: the prefill's entries and the checkpoints it saw.
struct Known {
    /// Run id of the prefill entries; None when this run did not write them (then entries are not checked).
    run: Option<u64>,
    entry_bytes: usize,
    /// Index of the first prefill entry; `count` entries follow.
    base: u64,
    count: u64,
    /// Published (size, signed note) pairs, ascending.
    checkpoints: Vec<(u64, String)>,
}

impl Known {
    fn entry(&self, index: u64) -> Option<Vec<u8>> {
        self.run
            .map(|run| make_entry(run, PREFILL_CLIENT, index - self.base, self.entry_bytes))
    }
}

#[derive(Copy, Clone, PartialEq, Eq)]
enum ReadKind {
    Index,
    Hash,
    Consistency,
}

/// Closed-loop proof reads. Index and hash reads pick a uniform prefill entry; consistency reads prove from a
/// random size the prefill saw published (not the newest) to the latest checkpoint.
async fn read_closed(
    mut rpc: Rpc,
    ctx: Arc<Ctx>,
    stop: Arc<Stop>,
    known: Arc<Known>,
    kind: ReadKind,
    client: u32,
) -> Tally {
    let mut t = Tally::default();
    let mut v = ctx.verifier();
    let mut rng = Rng::new(ctx.run ^ (u64::from(client) << 20) ^ 0xA5);
    let mut old_roots: BTreeMap<u64, SignedCheckpoint> = BTreeMap::new();
    let mut consecutive = 0;
    let olds = known.checkpoints.len().saturating_sub(1) as u64;
    while stop.claim(1) == 1 {
        let first = t.requests == 0;
        let start = Instant::now();
        let outcome = match kind {
            ReadKind::Index | ReadKind::Hash => {
                let index = known.base + rng.below(known.count);
                let entry = known.entry(index);
                let leaf = match (&entry, kind) {
                    (Some(e), ReadKind::Hash) => Leaf::LeafHash(leaf_hash(e).0.to_vec()),
                    _ => Leaf::Index(index),
                };
                let answer = rpc
                    .get_inclusion_proof(v1::GetInclusionProofRequest {
                        leaf: Some(leaf),
                        tree_size: 0,
                    })
                    .await;
                let latency = start.elapsed();
                answer.map(|proof| {
                    let proof = proof.into_inner();
                    t.record(latency, 1);
                    check_inclusion(&mut v, proof, index, entry.as_deref(), first);
                })
            }
            ReadKind::Consistency => {
                let (old_size, old_note) = &known.checkpoints[rng.below(olds) as usize];
                let answer = rpc
                    .get_consistency_proof(v1::GetConsistencyProofRequest {
                        old_size: *old_size,
                        new_size: 0,
                    })
                    .await;
                let latency = start.elapsed();
                answer.map(|proof| {
                    t.record(latency, 1);
                    check_consistency(&mut v, &mut old_roots, proof.into_inner(), old_note, first);
                })
            }
        };
        match outcome {
            Ok(()) => consecutive = 0,
            Err(s) => {
                t.error(format!("{}: {}", s.code(), s.message()));
                consecutive += 1;
                if consecutive >= MAX_CONSECUTIVE_ERRORS {
                    break;
                }
            }
        }
    }
    t.checks = v.checks;
    t
}

/// Checks every answer is for the leaf asked; verifies the sample (and `force`: each reader's first answer) fully.
fn check_inclusion(
    v: &mut Verifier,
    proof: v1::InclusionProof,
    index: u64,
    entry: Option<&[u8]>,
    force: bool,
) {
    if proof.index != index {
        v.checks.fail(format!(
            "asked for leaf {index}, got a proof for {}",
            proof.index
        ));
        return;
    }
    if !v.sampled() && !force {
        return;
    }
    let tree_size = proof.tree_size;
    let receipt = (|| {
        let cp = proof.checkpoint.ok_or("no checkpoint")?;
        Ok::<_, String>(Receipt {
            index: LeafIndex(proof.index),
            leaf_hash: hash_from_bytes("leaf_hash", &proof.leaf_hash).map_err(|e| e.to_string())?,
            checkpoint: String::from_utf8(cp.note).map_err(|_| "checkpoint note not UTF-8")?,
            inclusion_proof: hashes_from_bytes("hashes", &proof.hashes)
                .map_err(|e| e.to_string())?,
            duplicate: false,
        })
    })();
    match receipt {
        Ok(receipt) => {
            if let Some(size) = v.full(&receipt, entry)
                && size != tree_size
            {
                v.checks.fail(format!(
                    "proof says tree size {tree_size}, its checkpoint {size}"
                ));
            }
        }
        Err(e) => v.checks.fail(format!("inclusion proof of {index}: {e}")),
    }
}

fn check_consistency(
    v: &mut Verifier,
    old_roots: &mut BTreeMap<u64, SignedCheckpoint>,
    proof: v1::ConsistencyProof,
    old_note: &str,
    force: bool,
) {
    if !v.sampled() && !force {
        return;
    }
    let result = (|| {
        let old = match old_roots.get(&proof.old_size) {
            Some(cp) => cp.clone(),
            None => {
                let cp = verify_checkpoint(&v.key, old_note.as_bytes())
                    .map_err(|e| format!("old checkpoint: {e}"))?;
                old_roots.insert(proof.old_size, cp.clone());
                cp
            }
        };
        let note = proof.checkpoint.ok_or("no checkpoint")?.note;
        let new = verify_checkpoint(&v.key, &note).map_err(|e| format!("new checkpoint: {e}"))?;
        if old.checkpoint.size != TreeSize(proof.old_size)
            || new.checkpoint.size != TreeSize(proof.new_size)
        {
            return Err(format!(
                "proof for sizes {}..{} came with checkpoints {}..{}",
                proof.old_size, proof.new_size, old.checkpoint.size.0, new.checkpoint.size.0
            ));
        }
        let hashes = hashes_from_bytes("hashes", &proof.hashes).map_err(|e| e.to_string())?;
        verify_consistency(
            old.checkpoint.size,
            new.checkpoint.size,
            &hashes,
            &old.checkpoint.root,
            &new.checkpoint.root,
        )
        .map_err(|e| e.to_string())
    })();
    match result {
        Ok(()) => v.checks.verified += 1,
        Err(e) => v.checks.fail(format!(
            "consistency {}..{}: {e}",
            proof.old_size, proof.new_size
        )),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Baselines, measured in the same process on the same machine

#[derive(Clone, Copy, Debug)]
struct Rate {
    per_sec: f64,
    p50_us: u32,
    p99_us: u32,
}

#[derive(Default)]
struct Baselines {
    /// sha2 leaf hashes (0x00 || entry) per second, one thread.
    sha2: Option<f64>,
    /// Raw RocksDB entries/s and per-write latency by batch size.
    raw: BTreeMap<usize, Rate>,
    /// Empty RPC round trips/s and latency by concurrent clients.
    rpc: BTreeMap<usize, Rate>,
}

fn sha2_baseline(entry_bytes: usize, secs: f64, run: u64) -> f64 {
    let entries: Vec<Vec<u8>> = (0..4096)
        .map(|i| make_entry(run, RAW_CLIENT, i, entry_bytes))
        .collect();
    let (start, mut n, mut sink) = (Instant::now(), 0u64, 0u8);
    while start.elapsed().as_secs_f64() < secs {
        for e in &entries {
            let h = Sha256::new().chain_update([0u8]).chain_update(e).finalize();
            sink ^= h[0];
        }
        n += entries.len() as u64;
    }
    std::hint::black_box(sink);
    n as f64 / start.elapsed().as_secs_f64()
}

/// Synced write batches of `batch` entries, each the entry under its 8-byte index plus a 40-byte index row (the
/// 32-byte leaf hash mapping to the index): the bytes the log must write per entry, without the tree, checkpoint,
/// signing or RPC. Leaf hashes are computed outside the timed part.
fn raw_rocksdb_baseline(
    db: &DB,
    batch: usize,
    sync: bool,
    secs: f64,
    (run, next): (u64, &mut u64),
    entry_bytes: usize,
) -> Res<Rate> {
    let mut write = WriteOptions::default();
    write.set_sync(sync);
    let (mut timed, mut entries, mut lat) = (Duration::ZERO, 0u64, Vec::new());
    let wall = Instant::now();
    while wall.elapsed().as_secs_f64() < secs || lat.len() < 3 {
        let rows: Vec<(Vec<u8>, [u8; 32])> = (0..batch)
            .map(|i| {
                let e = make_entry(run, RAW_CLIENT, *next + i as u64, entry_bytes);
                let h = leaf_hash(&e).0;
                (e, h)
            })
            .collect();
        let start = Instant::now();
        let mut wb = WriteBatch::default();
        for (i, (entry, hash)) in rows.iter().enumerate() {
            let index = (*next + i as u64).to_be_bytes();
            wb.put(index, entry);
            wb.put(hash, index);
        }
        db.write_opt(wb, &write)
            .map_err(|e| format!("raw RocksDB write: {e}"))?;
        let took = start.elapsed();
        timed += took;
        lat.push(took.as_micros() as u32);
        entries += batch as u64;
        *next += batch as u64;
    }
    lat.sort_unstable();
    Ok(Rate {
        per_sec: entries as f64 / timed.as_secs_f64(),
        p50_us: percentile(&lat, 50.0),
        p99_us: percentile(&lat, 99.0),
    })
}

/// Empty gRPC round trips: the standard health `Check` on an in-process tonic server with its own 2-thread runtime
/// (tlogd's shape), from `clients` closed-loop clients, each on its own connection.
async fn rpc_baseline(clients: usize, secs: f64) -> Res<Rate> {
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let (addr_tx, addr_rx) = std::sync::mpsc::channel::<Res<std::net::SocketAddr>>();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = std::thread::spawn(move || {
        let rt = match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                let _ = addr_tx.send(Err(format!("baseline server runtime: {e}")));
                return;
            }
        };
        rt.block_on(async move {
            let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
                Ok(l) => l,
                Err(e) => {
                    let _ = addr_tx.send(Err(format!("baseline server bind: {e}")));
                    return;
                }
            };
            let _ = addr_tx.send(listener.local_addr().map_err(|e| e.to_string()));
            let (_reporter, health) = tonic_health::server::health_reporter();
            let _ = tonic::transport::Server::builder()
                .add_service(health)
                .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                    let _ = stop_rx.await;
                })
                .await;
        });
    });
    let addr = addr_rx
        .recv()
        .map_err(|_| "baseline server did not start".to_string())??;
    let mut tasks = Vec::new();
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let wall = Instant::now();
    for _ in 0..clients {
        let channel = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| e.to_string())?
            .connect()
            .await
            .map_err(|e| format!("baseline connect: {e}"))?;
        let mut client = HealthClient::new(channel);
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while Instant::now() < deadline {
                let start = Instant::now();
                if client
                    .check(HealthCheckRequest {
                        service: String::new(),
                    })
                    .await
                    .is_err()
                {
                    break;
                }
                lat.push(start.elapsed().as_micros() as u32);
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.map_err(|e| format!("baseline client: {e}"))?);
    }
    let secs = wall.elapsed().as_secs_f64();
    let _ = stop_tx.send(());
    let _ = tokio::task::spawn_blocking(move || server.join()).await;
    lat.sort_unstable();
    Ok(Rate {
        per_sec: lat.len() as f64 / secs,
        p50_us: percentile(&lat, 50.0),
        p99_us: percentile(&lat, 99.0),
    })
}

async fn measure_baselines(args: &Args, scenarios: &[Scenario], run: u64) -> Res<Baselines> {
    let mut b = Baselines::default();
    if args.no_baselines {
        return Ok(b);
    }
    let secs = args.baseline_secs;
    eprintln!("load: baseline sha2 leaf hashing");
    b.sha2 = Some(sha2_baseline(args.entry_bytes, secs.min(1.0), run));
    let batches: BTreeSet<usize> = scenarios.iter().filter_map(Scenario::raw_batch).collect();
    if !batches.is_empty() {
        let dir = tempfile::Builder::new()
            .prefix("tlog-load-raw-")
            .tempdir()
            .map_err(|e| format!("creating a temporary folder: {e}"))?;
        let mut opts = Options::default();
        opts.create_if_missing(true);
        let db = DB::open(&opts, dir.path()).map_err(|e| format!("raw RocksDB open: {e}"))?;
        let mut next = 0;
        for k in batches {
            eprintln!("load: baseline raw RocksDB write batch of {k}");
            let r = raw_rocksdb_baseline(
                &db,
                k,
                !args.no_sync,
                secs,
                (run, &mut next),
                args.entry_bytes,
            )?;
            b.raw.insert(k, r);
        }
    }
    let clients: BTreeSet<usize> = scenarios.iter().filter_map(Scenario::rpc_clients).collect();
    for c in clients {
        eprintln!("load: baseline empty RPC, {c} clients");
        b.rpc.insert(c, rpc_baseline(c, secs).await?);
    }
    Ok(b)
}

// ---------------------------------------------------------------------------------------------------------------
// Runs

/// One side (writes or reads) of a run.
#[derive(Clone, Debug)]
struct Measured {
    ops: u64,
    requests: u64,
    secs: f64,
    p50_us: u32,
    p99_us: u32,
    p999_us: u32,
    max_us: u32,
    errors: u64,
    first_error: Option<String>,
    verified: u64,
    failures: u64,
    first_failure: Option<String>,
}

impl Measured {
    fn new(mut t: Tally, secs: f64) -> Measured {
        t.lat_us.sort_unstable();
        Measured {
            ops: t.ops,
            requests: t.requests,
            secs,
            p50_us: percentile(&t.lat_us, 50.0),
            p99_us: percentile(&t.lat_us, 99.0),
            p999_us: percentile(&t.lat_us, 99.9),
            max_us: t.lat_us.last().copied().unwrap_or(0),
            errors: t.errors,
            first_error: t.first_error,
            verified: t.checks.verified,
            failures: t.checks.failures,
            first_failure: t.checks.first_failure,
        }
    }

    fn rate(&self) -> f64 {
        self.ops as f64 / self.secs
    }

    fn rps(&self) -> f64 {
        self.requests as f64 / self.secs
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[derive(Clone, Debug, Default)]
struct ServerStats {
    /// CPU cores used on average during the run.
    cpu: f64,
    rss_kib: u64,
    hwm_kib: u64,
    disk_bytes: u64,
    tree_size: u64,
}

struct Outcome {
    sc: Scenario,
    /// Tree size at the start of the run.
    log_size: u64,
    write: Option<Measured>,
    read: Option<Measured>,
    server: Option<ServerStats>,
    client_cpu: f64,
}

impl Outcome {
    fn failures(&self) -> u64 {
        self.write
            .iter()
            .chain(&self.read)
            .map(|m| m.failures)
            .sum()
    }
}

struct Settings {
    duration: Option<f64>,
    entries: Option<u64>,
    entry_bytes: usize,
    verify_every: u64,
}

/// Runs one scenario against `server` and checks afterwards that the tree grew by exactly the entries acknowledged.
async fn run_scenario(
    server: &Server,
    sc: &Scenario,
    known: Option<&Arc<Known>>,
    run: u64,
    set: &Settings,
) -> Res<Outcome> {
    eprintln!("load: {}", sc.name());
    let ctx = Arc::new(Ctx {
        run,
        entry_bytes: set.entry_bytes,
        key: server.key.clone(),
        verify_every: set.verify_every,
    });
    let mut control = connect(&server.addr).await?;
    let before = latest(&mut control, &server.key).await?.checkpoint.size.0;
    let writers_n = if sc.writes() { sc.clients } else { 0 };
    let writers = connect_all(&server.addr, writers_n, sc.connections).await?;
    let readers_n = match sc.mode {
        Mode::Mixed => sc.readers,
        Mode::InclusionIndex | Mode::InclusionHash | Mode::Consistency => sc.clients,
        _ => 0,
    };
    let readers = connect_all(&server.addr, readers_n, sc.connections).await?;
    let known = match (known, readers_n) {
        (_, 0) => None,
        (Some(k), _) => Some(k.clone()),
        (None, _) => return Err(format!("{} needs a prefilled log", sc.name())),
    };
    let stop = Arc::new(Stop::new(set.duration, set.entries));
    let (cpu0, self0) = (server.cpu_secs(), proc_cpu_secs("self"));
    let start = Instant::now();

    let mut write_tasks = Vec::new();
    let mut read_tasks = Vec::new();
    match sc.mode {
        Mode::Submit | Mode::Batch if sc.rate.is_some() => {
            let rate = sc.rate.unwrap_or(1.0);
            let unary = sc.mode == Mode::Submit;
            let (ctx, stop) = (ctx.clone(), stop.clone());
            let batch = sc.batch;
            write_tasks.push(tokio::spawn(async move {
                write_open(writers, ctx, stop, (unary, batch), rate).await
            }));
        }
        Mode::Submit | Mode::Batch | Mode::Mixed => {
            let unary = sc.mode == Mode::Submit;
            for (i, rpc) in writers.into_iter().enumerate() {
                let (ctx, stop, batch) = (ctx.clone(), stop.clone(), sc.batch);
                write_tasks.push(tokio::spawn(write_closed(
                    rpc, ctx, stop, i as u32, unary, batch,
                )));
            }
        }
        Mode::Stream => {
            for (i, rpc) in writers.into_iter().enumerate() {
                let (ctx, stop, shape) = (ctx.clone(), stop.clone(), (sc.batch, sc.window));
                write_tasks.push(tokio::spawn(async move {
                    write_stream(rpc, ctx, stop, i as u32, shape, None).await.0
                }));
            }
        }
        _ => {}
    }
    if let Some(known) = &known {
        let kind = match sc.mode {
            Mode::InclusionHash => ReadKind::Hash,
            Mode::Consistency => ReadKind::Consistency,
            _ => ReadKind::Index,
        };
        for (i, rpc) in readers.into_iter().enumerate() {
            let (ctx, stop, known) = (ctx.clone(), stop.clone(), known.clone());
            read_tasks.push(tokio::spawn(read_closed(
                rpc, ctx, stop, known, kind, i as u32,
            )));
        }
    }
    let (mut w, mut r) = (Tally::default(), Tally::default());
    for t in write_tasks {
        w.merge(t.await.map_err(|e| format!("writer failed: {e}"))?);
    }
    for t in read_tasks {
        r.merge(t.await.map_err(|e| format!("reader failed: {e}"))?);
    }
    let secs = start.elapsed().as_secs_f64();
    let (cpu1, self1) = (server.cpu_secs(), proc_cpu_secs("self"));
    let after = latest(&mut control, &server.key).await?.checkpoint.size.0;

    // Every acknowledged entry is new, so the tree must have grown by exactly that many (at least, on a target other
    // writers may share, or after errors whose writes may have landed).
    if sc.writes() {
        let grown = after.saturating_sub(before);
        let exact = server.proc.is_some() && w.errors == 0;
        if (exact && grown != w.ops) || grown < w.ops {
            w.checks.fail(format!(
                "tree grew by {grown} entries but {} were acknowledged",
                w.ops
            ));
        }
    }
    let mut stats = server.stats(after);
    if let (Some(s), Some(a), Some(b)) = (stats.as_mut(), cpu0, cpu1) {
        s.cpu = (b - a) / secs;
    }
    let client_cpu = match (self0, self1) {
        (Some(a), Some(b)) => (b - a) / secs,
        _ => 0.0,
    };
    Ok(Outcome {
        sc: sc.clone(),
        log_size: before,
        write: sc.writes().then(|| Measured::new(w, secs)),
        read: (readers_n > 0).then(|| Measured::new(r, secs)),
        server: stats,
        client_cpu,
    })
}

/// Appends `n` entries with one pipelined SubmitStream of maximal messages, checking that they land in stream order
/// from the current size, and returns what the proof reads need. A started tlogd runs with --no-sync for the
/// prefill only (unless --prefill-sync), then restarts with the run's sync setting.
async fn prefill(server: &mut Server, n: u64, run: u64, set: &Settings, sync: bool) -> Res<Known> {
    let restart = server.proc.is_some() && !sync && !server.no_sync;
    let run_sync = server.no_sync;
    if restart {
        server.restart(true)?;
    }
    let mut rpc = connect(&server.addr).await?;
    let base = latest(&mut rpc, &server.key).await?.checkpoint.size.0;
    eprintln!(
        "load: prefilling {} entries{}",
        thousands(n as f64),
        if restart { " (tlogd --no-sync)" } else { "" }
    );
    let ctx = Arc::new(Ctx {
        run,
        entry_bytes: set.entry_bytes,
        key: server.key.clone(),
        verify_every: set.verify_every,
    });
    let start = Instant::now();
    let stop = Arc::new(Stop::new(None, Some(n)));
    let (t, checkpoints) = write_stream(
        rpc,
        ctx,
        stop,
        PREFILL_CLIENT,
        (SERVER_MAX_BATCH, PREFILL_WINDOW),
        Some(base),
    )
    .await;
    let secs = start.elapsed().as_secs_f64();
    if t.errors > 0 || t.checks.failures > 0 || t.ops != n {
        return Err(format!(
            "prefill failed after {} entries: {}",
            t.ops,
            t.first_error
                .or(t.checks.first_failure)
                .unwrap_or_else(|| "stopped early".into())
        ));
    }
    eprintln!(
        "load: prefilled {} entries in {secs:.1} s ({}/s), {} receipts verified",
        thousands(n as f64),
        thousands(n as f64 / secs),
        t.checks.verified
    );
    if restart {
        server.restart(run_sync)?;
    }
    Ok(Known {
        run: Some(run),
        entry_bytes: set.entry_bytes,
        base,
        count: n,
        checkpoints: checkpoints.into_iter().collect(),
    })
}

/// Reads against a log this run did not fill: indices only (entries unknown, so by-hash and consistency reads need
/// --prefill).
async fn existing(server: &Server, entry_bytes: usize) -> Res<Known> {
    let mut rpc = connect(&server.addr).await?;
    let size = latest(&mut rpc, &server.key).await?.checkpoint.size.0;
    Ok(Known {
        run: None,
        entry_bytes,
        base: 0,
        count: size,
        checkpoints: Vec::new(),
    })
}

// ---------------------------------------------------------------------------------------------------------------
// Plans

struct Plan {
    /// Write scenarios, each on a fresh log.
    writes: Vec<Scenario>,
    /// Entries to prefill, then the read (and mixed) scenarios on that log.
    prefill: u64,
    reads: Vec<Scenario>,
}

impl Plan {
    fn all(&self) -> impl Iterator<Item = &Scenario> {
        self.writes.iter().chain(&self.reads)
    }
}

fn sc(mode: Mode, clients: usize, batch: usize) -> Scenario {
    Scenario {
        mode,
        clients,
        batch,
        window: 8,
        readers: 16,
        rate: None,
        connections: None,
    }
}

fn plan(args: &Args) -> Res<Plan> {
    match args.suite {
        Some(Suite::Standard) => {
            let open = Scenario {
                rate: Some(10_000.0),
                ..sc(Mode::Submit, 64, 1)
            };
            Ok(Plan {
                writes: vec![
                    sc(Mode::Submit, 64, 1),
                    Scenario {
                        connections: Some(1),
                        ..sc(Mode::Submit, 64, 1)
                    },
                    sc(Mode::Batch, 64, 1),
                    sc(Mode::Batch, 8, 100),
                    sc(Mode::Batch, 4, 1000),
                    sc(Mode::Stream, 4, 100),
                    open,
                ],
                prefill: args.prefill.unwrap_or(1_000_000),
                reads: vec![
                    sc(Mode::InclusionIndex, 16, 1),
                    sc(Mode::InclusionHash, 16, 1),
                    sc(Mode::Consistency, 16, 1),
                    sc(Mode::Mixed, 4, 100),
                ],
            })
        }
        Some(Suite::Large) => Ok(Plan {
            writes: vec![],
            prefill: args.prefill.unwrap_or(10_000_000),
            reads: vec![
                sc(Mode::InclusionIndex, 16, 1),
                sc(Mode::InclusionHash, 16, 1),
                sc(Mode::Consistency, 16, 1),
            ],
        }),
        None => {
            let s = Scenario {
                mode: args.mode,
                clients: args.clients,
                batch: if args.mode == Mode::Submit {
                    1
                } else {
                    args.batch
                },
                window: args.window,
                readers: args.readers.unwrap_or(16),
                rate: args.rate,
                connections: args.connections,
            };
            if args.rate.is_some() && !matches!(args.mode, Mode::Submit | Mode::Batch) {
                return Err("--rate (open loop) applies to --mode submit and --mode batch".into());
            }
            let default_prefill = if args.target.is_none() && args.mode.reads() {
                1_000_000
            } else {
                0
            };
            let prefill = args.prefill.unwrap_or(default_prefill);
            Ok(match args.mode {
                Mode::Baselines => Plan {
                    writes: vec![],
                    prefill: 0,
                    reads: vec![],
                },
                m if m.reads() => Plan {
                    writes: vec![],
                    prefill,
                    reads: vec![s],
                },
                _ => Plan {
                    writes: vec![s],
                    prefill,
                    reads: vec![],
                },
            })
        }
    }
}

fn validate(args: &Args) -> Res<()> {
    let positive = |v: usize, name: &str| {
        if v == 0 {
            Err(format!("--{name} must be at least 1"))
        } else {
            Ok(())
        }
    };
    positive(args.clients, "clients")?;
    positive(args.batch, "batch")?;
    positive(args.window, "window")?;
    if args.connections == Some(0) {
        return Err("--connections must be at least 1".into());
    }
    if args.readers == Some(0) {
        return Err("--readers must be at least 1".into());
    }
    if args.batch > SERVER_MAX_BATCH {
        return Err(format!(
            "--batch {} exceeds tlogd's default request limit of {SERVER_MAX_BATCH} entries",
            args.batch
        ));
    }
    if args.verify_every == 0 {
        return Err("--verify-every must be at least 1".into());
    }
    if !(ENTRY_PREFIX..=65_535).contains(&args.entry_bytes) {
        return Err(format!(
            "--entry-bytes must be between {ENTRY_PREFIX} (room for a unique prefix) and 65535"
        ));
    }
    for (v, name) in [
        (args.duration, "duration"),
        (args.rate, "rate"),
        (Some(args.baseline_secs), "baseline-secs"),
    ] {
        if let Some(v) = v
            && !(v.is_finite() && v > 0.0)
        {
            return Err(format!("--{name} must be a positive number"));
        }
    }
    if args.entries == Some(0) {
        return Err("--entries must be at least 1".into());
    }
    Ok(())
}

/// target/<profile>/tlogd next to this benchmark (target/<profile>/deps/load-<hash>).
fn default_tlogd() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.parent()?.join("tlogd"))
}

// ---------------------------------------------------------------------------------------------------------------
// Reporting

fn thousands(x: f64) -> String {
    let s = format!("{:.0}", x.max(0.0));
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn ms(us: u32) -> String {
    format!("{:.2}", f64::from(us) / 1000.0)
}

/// `a / b` with enough digits that small ratios (a batch request against an empty RPC) do not print as 0.00.
fn ratio(a: f64, b: f64) -> String {
    if b <= 0.0 {
        return "–".into();
    }
    let r = a / b;
    match r {
        r if r >= 10.0 => format!("{r:.0}×"),
        r if r >= 0.1 => format!("{r:.2}×"),
        r if r >= 0.001 => format!("{r:.3}×"),
        r => format!("{r:.1e}×"),
    }
}

fn mib(kib: u64) -> String {
    format!("{:.0}", kib as f64 / 1024.0)
}

struct Report {
    outcomes: Vec<Outcome>,
    baselines: Baselines,
    prefill: Option<(u64, f64)>,
    machine: Machine,
    command: String,
    sync: bool,
    entry_bytes: usize,
}

struct Machine {
    cpus: usize,
    model: String,
    load_before: String,
    load_after: String,
    kernel: String,
    /// `git describe` of the tree the binaries were built from, if known.
    commit: String,
}

fn machine(load_before: String) -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split(':').nth(1))
        .unwrap_or("unknown")
        .trim()
        .to_string();
    Machine {
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        model,
        load_before,
        load_after: loadavg(),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_string(),
        commit: git_commit(),
    }
}

/// The source tree's commit, marked `-dirty` when tracked files differ from it: which code was measured.
fn git_commit() -> String {
    Command::new("git")
        .args(["describe", "--always", "--dirty", "--abbrev=10"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// One table row per side of an outcome.
struct Row {
    name: String,
    result: String,
    p50: String,
    p99: String,
    p999: String,
    raw: String,
    sha2: String,
    rpc: String,
    checked: String,
}

fn rows(o: &Outcome, b: &Baselines) -> Vec<Row> {
    let mut rows = Vec::new();
    let checked = |m: &Measured| {
        let mut s = format!("{} ✓ / {} ✗", m.verified, m.failures);
        if m.errors > 0 {
            s += &format!(", {} errors", m.errors);
        }
        s
    };
    let rpc_base = o.sc.rpc_clients().and_then(|c| b.rpc.get(&c));
    if let Some(w) = &o.write {
        let raw = match (o.sc.raw_batch(), o.sc.rate) {
            (Some(k), Some(_)) => b.raw.get(&k).map(|r| {
                format!(
                    "p99 {} of a synced write (k=1)",
                    ratio(f64::from(w.p99_us), f64::from(r.p99_us))
                )
            }),
            (Some(k), None) => b
                .raw
                .get(&k)
                .map(|r| format!("{} of k={k}", ratio(w.rate(), r.per_sec))),
            _ => None,
        };
        let name = if o.sc.mode == Mode::Mixed {
            format!("{} — writes", o.sc.name())
        } else {
            o.sc.name()
        };
        let result = match o.sc.rate {
            Some(r) => format!(
                "{} entries/s (offered {})",
                thousands(w.rate()),
                thousands(r)
            ),
            None => format!("{} entries/s", thousands(w.rate())),
        };
        rows.push(Row {
            name,
            result,
            p50: ms(w.p50_us),
            p99: ms(w.p99_us),
            p999: ms(w.p999_us),
            raw: raw.unwrap_or_else(|| "–".into()),
            sha2: b.sha2.map_or("–".into(), |s| ratio(w.rate(), s)),
            rpc: rpc_base.map_or("–".into(), |r| ratio(w.rps(), r.per_sec)),
            checked: checked(w),
        });
    }
    if let Some(r) = &o.read {
        let name = if o.sc.mode == Mode::Mixed {
            format!("{} — reads", o.sc.name())
        } else {
            format!("{} @ {} entries", o.sc.name(), thousands(o.log_size as f64))
        };
        rows.push(Row {
            name,
            result: format!("{} proofs/s", thousands(r.rate())),
            p50: ms(r.p50_us),
            p99: ms(r.p99_us),
            p999: ms(r.p999_us),
            raw: "–".into(),
            sha2: "–".into(),
            rpc: rpc_base.map_or("–".into(), |x| ratio(r.rps(), x.per_sec)),
            checked: checked(r),
        });
    }
    rows
}

/// The issue's targets, judged from whichever outcomes measured them.
struct Target {
    goal: &'static str,
    measured: Option<String>,
    met: Option<bool>,
}

fn targets(r: &Report) -> Vec<Target> {
    let find = |f: &dyn Fn(&Outcome) -> bool| r.outcomes.iter().find(|o| f(o));
    let mut out = Vec::new();
    let batch = find(&|o: &Outcome| {
        o.sc.mode == Mode::Batch && o.sc.batch == 1000 && o.sc.clients >= 2 && o.sc.rate.is_none()
    })
    .and_then(|o| o.write.as_ref());
    out.push(Target {
        goal: "SubmitBatch 1000, several clients: ≥150,000 entries/s",
        measured: batch.map(|w| format!("{} entries/s", thousands(w.rate()))),
        met: batch.map(|w| w.rate() >= 150_000.0),
    });
    let unary = find(&|o: &Outcome| {
        o.sc.mode == Mode::Submit
            && o.sc.clients == 64
            && o.sc.rate.is_none()
            && o.sc.connections.is_none()
    })
    .and_then(|o| o.write.as_ref());
    out.push(Target {
        goal: "unary Submit, 64 clients: ≥20,000 entries/s",
        measured: unary.map(|w| format!("{} entries/s", thousands(w.rate()))),
        met: unary.map(|w| w.rate() >= 20_000.0),
    });
    let open = find(&|o: &Outcome| o.sc.rate == Some(10_000.0)).and_then(|o| o.write.as_ref());
    out.push(Target {
        goal: "ack p99 at an offered 10,000 entries/s: <20 ms",
        measured: open.map(|w| {
            format!(
                "p99 {} ms (p99.9 {} ms) at {} entries/s",
                ms(w.p99_us),
                ms(w.p999_us),
                thousands(w.rate())
            )
        }),
        met: open.map(|w| w.p99_us < 20_000),
    });
    let proofs = r
        .outcomes
        .iter()
        .filter(|o| o.sc.mode == Mode::InclusionIndex)
        .max_by_key(|o| o.log_size);
    let proofs_m = proofs.and_then(|o| o.read.as_ref().map(|m| (o.log_size, m)));
    out.push(Target {
        goal: "inclusion by index at 10M entries: ≥20,000 proofs/s",
        measured: proofs_m.map(|(size, m)| {
            format!(
                "{} proofs/s at {} entries",
                thousands(m.rate()),
                thousands(size as f64)
            )
        }),
        met: proofs_m.and_then(|(size, m)| (size >= 10_000_000).then_some(m.rate() >= 20_000.0)),
    });
    out
}

fn markdown(r: &Report) -> String {
    let mut s = String::new();
    let m = &r.machine;
    s += &format!(
        "Machine: {} CPUs, {}, Linux {}; load average {} before, {} after. Source {}. Entries {} bytes, fsync {}.\n\n",
        m.cpus,
        m.model,
        m.kernel,
        m.load_before,
        m.load_after,
        m.commit,
        r.entry_bytes,
        if r.sync { "on" } else { "OFF" }
    );
    s += &format!("Command: `{}`\n\n", r.command);
    if let Some((n, secs)) = r.prefill {
        s += &format!(
            "Prefill: {} entries in {secs:.1} s ({} entries/s).\n\n",
            thousands(n as f64),
            thousands(n as f64 / secs)
        );
    }
    if !r.outcomes.is_empty() {
        s += "| run | result | p50 ms | p99 ms | p99.9 ms | vs raw RocksDB | vs sha2 | vs empty RPC | checked | tlogd CPU | load CPU | RSS / peak MiB | disk B/entry |\n";
        s += "|---|---|--:|--:|--:|---|--:|--:|---|--:|--:|--:|--:|\n";
        for o in &r.outcomes {
            let server = o.server.as_ref();
            let rows = rows(o, &r.baselines);
            let n = rows.len();
            for (i, row) in rows.into_iter().enumerate() {
                // Process figures belong to the whole run: print them on its last row.
                let last = i + 1 == n;
                let cell = |f: &dyn Fn(&ServerStats) -> String| match server {
                    Some(st) if last => f(st),
                    _ => String::new(),
                };
                s += &format!(
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                    row.name,
                    row.result,
                    row.p50,
                    row.p99,
                    row.p999,
                    row.raw,
                    row.sha2,
                    row.rpc,
                    row.checked,
                    cell(&|st| format!("{:.2}", st.cpu)),
                    if last {
                        format!("{:.2}", o.client_cpu)
                    } else {
                        String::new()
                    },
                    cell(&|st| format!("{} / {}", mib(st.rss_kib), mib(st.hwm_kib))),
                    cell(&|st| {
                        if st.tree_size == 0 {
                            "–".into()
                        } else {
                            format!("{:.0}", st.disk_bytes as f64 / st.tree_size as f64)
                        }
                    }),
                );
            }
        }
        s += "\n";
    }
    let b = &r.baselines;
    if b.sha2.is_some() || !b.raw.is_empty() || !b.rpc.is_empty() {
        s += "Baselines, same run, same machine:\n\n| baseline | rate | p50 ms | p99 ms |\n|---|--:|--:|--:|\n";
        if let Some(h) = b.sha2 {
            s += &format!(
                "| sha2 leaf hash (0x00 ‖ entry), 1 thread | {} entries/s | | |\n",
                thousands(h)
            );
        }
        for (k, x) in &b.raw {
            s += &format!(
                "| raw RocksDB write batch k={k} (entry + 40-byte index row), sync {} | {} entries/s | {} | {} |\n",
                if r.sync { "on" } else { "off" },
                thousands(x.per_sec),
                ms(x.p50_us),
                ms(x.p99_us)
            );
        }
        for (c, x) in &b.rpc {
            s += &format!(
                "| empty tonic RPC (health Check), {c} clients | {} RPCs/s | {} | {} |\n",
                thousands(x.per_sec),
                ms(x.p50_us),
                ms(x.p99_us)
            );
        }
        s += "\n";
    }
    let t = targets(r);
    if t.iter().any(|t| t.measured.is_some()) {
        s += "| target | measured | met |\n|---|---|---|\n";
        for t in t.iter().filter(|t| t.measured.is_some()) {
            s += &format!(
                "| {} | {} | {} |\n",
                t.goal,
                t.measured.as_deref().unwrap_or(""),
                match t.met {
                    Some(true) => "yes",
                    Some(false) => "**no**",
                    None => "n/a at this log size",
                }
            );
        }
        s += "\n";
    }
    for o in &r.outcomes {
        for (side, m) in [("writes", &o.write), ("reads", &o.read)] {
            let Some(m) = m else { continue };
            if let Some(e) = &m.first_error {
                s += &format!("- {} {side}: first error: {e}\n", o.sc.name());
            }
            if let Some(e) = &m.first_failure {
                s += &format!("- {} {side}: VERIFICATION FAILED: {e}\n", o.sc.name());
            }
        }
    }
    s
}

fn measured_json(m: &Measured) -> Value {
    json!({
        "ops": m.ops, "requests": m.requests, "secs": m.secs, "rate": m.rate(), "requests_per_sec": m.rps(),
        "latency_us": {"p50": m.p50_us, "p99": m.p99_us, "p99_9": m.p999_us, "max": m.max_us},
        "errors": m.errors, "first_error": m.first_error,
        "verified": m.verified, "failures": m.failures, "first_failure": m.first_failure,
    })
}

fn to_json(r: &Report) -> Value {
    let rate = |x: &Rate| json!({"per_sec": x.per_sec, "p50_us": x.p50_us, "p99_us": x.p99_us});
    let b = &r.baselines;
    let outcomes: Vec<Value> = r
        .outcomes
        .iter()
        .map(|o| {
            let raw = o.sc.raw_batch().and_then(|k| b.raw.get(&k).map(|x| (k, x)));
            let rpc = o
                .sc
                .rpc_clients()
                .and_then(|c| b.rpc.get(&c).map(|x| (c, x)));
            let ratios = json!({
                "write_vs_raw_rocksdb": o.write.as_ref().zip(raw).filter(|_| o.sc.rate.is_none()).map(|(w, (_, x))| w.rate() / x.per_sec),
                "ack_p99_vs_raw_write_p99": o.write.as_ref().zip(raw).filter(|_| o.sc.rate.is_some()).map(|(w, (_, x))| f64::from(w.p99_us) / f64::from(x.p99_us.max(1))),
                "write_vs_sha2": o.write.as_ref().zip(b.sha2).map(|(w, h)| w.rate() / h),
                "write_requests_vs_empty_rpc": o.write.as_ref().zip(rpc).map(|(w, (_, x))| w.rps() / x.per_sec),
                "reads_vs_empty_rpc": o.read.as_ref().zip(rpc).map(|(m, (_, x))| m.rps() / x.per_sec),
            });
            let readers = (o.sc.mode == Mode::Mixed).then_some(o.sc.readers);
            json!({
                "name": o.sc.name(),
                "mode": format!("{:?}", o.sc.mode).to_lowercase(),
                "clients": o.sc.clients, "batch": o.sc.batch, "window": o.sc.window,
                "readers": readers,
                "offered_rate": o.sc.rate,
                "log_size_at_start": o.log_size,
                "writes": o.write.as_ref().map(measured_json),
                "reads": o.read.as_ref().map(measured_json),
                "raw_rocksdb_batch": raw.map(|(k, _)| k),
                "empty_rpc_clients": rpc.map(|(c, _)| c),
                "ratios": ratios,
                "server": o.server.as_ref().map(|s| json!({
                    "cpu_cores": s.cpu, "rss_kib": s.rss_kib, "peak_rss_kib": s.hwm_kib,
                    "disk_bytes": s.disk_bytes, "tree_size": s.tree_size,
                    "disk_bytes_per_entry": if s.tree_size > 0 { Some(s.disk_bytes as f64 / s.tree_size as f64) } else { None },
                })),
                "load_generator_cpu_cores": o.client_cpu,
            })
        })
        .collect();
    json!({
        "machine": {
            "cpus": r.machine.cpus, "model": r.machine.model, "kernel": r.machine.kernel,
            "load_before": r.machine.load_before, "load_after": r.machine.load_after,
            "source": r.machine.commit,
        },
        "command": r.command,
        "entry_bytes": r.entry_bytes,
        "fsync": r.sync,
        "prefill": r.prefill.map(|(n, s)| json!({"entries": n, "secs": s})),
        "baselines": {
            "sha2_leaf_hashes_per_sec": b.sha2,
            "raw_rocksdb": b.raw.iter().map(|(k, x)| (k.to_string(), rate(x))).collect::<serde_json::Map<_, _>>(),
            "empty_rpc": b.rpc.iter().map(|(c, x)| (c.to_string(), rate(x))).collect::<serde_json::Map<_, _>>(),
        },
        "results": outcomes,
        "targets": targets(r).iter().map(|t| json!({"goal": t.goal, "measured": t.measured, "met": t.met})).collect::<Vec<_>>(),
    })
}

// ---------------------------------------------------------------------------------------------------------------

async fn run(args: Args) -> Res<Report> {
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
            let bin = args
                .tlogd
                .clone()
                .or_else(default_tlogd)
                .unwrap_or_default();
            if !bin.is_file() {
                return Err(format!(
                    "no tlogd at {}: run `cargo build --release --workspace --bins` first, or pass --tlogd PATH \
                     or --target ADDR",
                    bin.display()
                ));
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
    if !plan.reads.is_empty() || plan.prefill > 0 {
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
            return Err("proof reads need entries: pass --prefill N".into());
        }
        for (i, s) in plan.reads.iter().enumerate() {
            if known.run.is_none() && matches!(s.mode, Mode::InclusionHash | Mode::Consistency) {
                return Err(format!(
                    "{} needs entries and checkpoints this run wrote: pass --prefill N",
                    s.name()
                ));
            }
            if s.mode == Mode::Consistency && known.checkpoints.len() < 2 {
                return Err(
                    "consistency reads need at least two published sizes: prefill more".into(),
                );
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
    // A plain `cargo bench` runs every bench with only `--bench`: without a built tlogd, skip rather than fail it.
    let plain = std::env::args().skip(1).all(|a| a == "--bench");
    if plain && args.target.is_none() && !default_tlogd().is_some_and(|p| p.is_file()) {
        eprintln!("load: skipped (no target/release/tlogd; see BENCHMARKS.md)");
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
