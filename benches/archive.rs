//! `archive`: issue 14's benchmarks, end to end with the real `tlogd` on a local SeaweedFS (started by
//! scripts/seaweedfs.sh, as the tests do), in one run:
//!
//! 1. **archive under load**: SubmitBatch writers for `--seconds`; the log's ingest rate (and, as its baseline,
//!    the same writers against a tlogd without an archive, after), the archive's rate (archived entries per
//!    second), the archive's lag in entries sampled every 100 ms (p50, p99, max), the time the archive takes to
//!    catch up once the writers stop, and the CPU tlogd and SeaweedFS spend (cores while writing, microseconds per
//!    entry archived in the catch-up);
//! 2. **restore**: `tlogd restore` of that archive into an empty folder, entries per second (its final full
//!    verification timed apart);
//! 3. **replica next to primary**: a `tlogd --replica-of` caught up with the archive, then gRPC inclusion proofs
//!    by random index for `--seconds` with `--readers` concurrent readers, against the primary and against the
//!    replica, alternately, one answer in `--verify-every` verified against the primary's signed root.
//!
//! ```sh
//! cargo build --release --workspace --bins
//! cargo bench --workspace --bench archive -- --seconds 30 --writers 8
//! # a short run on the debug build, to see it work (figures meaningless):
//! cargo build --workspace --bins && cargo test --workspace --bench archive -- --seconds 2 --readers 2
//! ```
//!
//! Results and method: BENCHMARKS.md, "Archive and replicas".

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use tlog_archive::testing::SeaweedFs;
use tlog_core::{Hash, LeafIndex, TreeSize, verify_inclusion};
use tlog_proto::v1::{self, get_inclusion_proof_request::Leaf};
use tlog_proto::{hash_from_bytes, hashes_from_bytes};
use tlog_suite::archive::init_archive;
use tlog_suite::{Rpc, Tlogd, bench, bin, incompressible_entry};

#[derive(Parser, Debug, Clone)]
#[command(
    name = "archive",
    about = "tlogd archiving to S3 under load, restore rate, replica proofs next to the primary's"
)]
struct Args {
    /// Seconds of the write run and of each proof run.
    #[arg(long, default_value_t = 30.0)]
    seconds: f64,
    /// SubmitBatch writers (each on its own connection).
    #[arg(long, default_value_t = 8)]
    writers: usize,
    /// Entries per SubmitBatch call.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Bytes per entry.
    #[arg(long, default_value_t = 128)]
    entry_bytes: usize,
    /// The archive's publication interval (`--archive-interval-ms`).
    #[arg(long, default_value_t = 1000)]
    archive_interval_ms: u64,
    /// Concurrent readers of each proof run.
    #[arg(long, default_value_t = 16)]
    readers: usize,
    /// Proof runs per server (primary and replica alternate).
    #[arg(long, default_value_t = 2)]
    repeats: usize,
    /// Fully verify one answer in this many.
    #[arg(long, default_value_t = 100)]
    verify_every: u64,
    /// Skip the restore.
    #[arg(long)]
    no_restore: bool,
    /// Added by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

type Res<T> = Result<T, String>;

async fn connect(tlogd: &Tlogd) -> Res<Rpc> {
    Ok(Rpc::connect(tlogd.addr.clone())
        .await
        .map_err(|e| format!("connecting to {}: {e}", tlogd.addr))?
        .max_decoding_message_size(64 << 20))
}

async fn checkpoint(rpc: &mut Rpc) -> Res<v1::SignedCheckpoint> {
    Ok(rpc
        .get_checkpoint(v1::GetCheckpointRequest::default())
        .await
        .map_err(|e| format!("GetCheckpoint: {e}"))?
        .into_inner())
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// What the write run measured.
struct ArchiveRun {
    ingested: u64,
    seconds: f64,
    archived_during: u64,
    lag: Vec<u64>,
    catch_up: Duration,
    size: u64,
    /// CPU seconds of (tlogd, SeaweedFS) while the writers ran, and during the catch-up.
    cpu_during: (f64, f64),
    cpu_catch_up: (f64, f64),
}

/// CPU seconds so far of tlogd and of the SeaweedFS it archives to.
fn cpu(primary: &Tlogd, server: &SeaweedFs) -> (f64, f64) {
    let of = |pid: Option<u32>| {
        pid.and_then(|p| bench::cpu_secs(&p.to_string()))
            .unwrap_or(f64::NAN)
    };
    (of(Some(primary.pid())), of(server.pid()))
}

fn minus(a: (f64, f64), b: (f64, f64)) -> (f64, f64) {
    (a.0 - b.0, a.1 - b.1)
}

/// `args.writers` closed-loop SubmitBatch writers against `tlogd` until `stop`; entries acknowledged go to `written`.
async fn spawn_writers(
    args: &Args,
    tlogd: &Tlogd,
    stop: &Arc<AtomicBool>,
    written: &Arc<AtomicU64>,
) -> Res<Vec<tokio::task::JoinHandle<Res<()>>>> {
    let mut writers = Vec::new();
    for w in 0..args.writers {
        let mut rpc = connect(tlogd).await?;
        let (stop, written, batch, bytes) =
            (stop.clone(), written.clone(), args.batch, args.entry_bytes);
        writers.push(tokio::spawn(async move {
            let mut seed = (w as u64) << 40;
            while !stop.load(Ordering::Relaxed) {
                let entries = (0..batch)
                    .map(|i| incompressible_entry(b"archive-bench", seed + i as u64, bytes))
                    .collect();
                seed += batch as u64;
                match rpc
                    .submit_batch(v1::SubmitBatchRequest {
                        entries,
                        client_tag: 0,
                        shared_checkpoint: false,
                        multiproof: false,
                    })
                    .await
                {
                    Ok(_) => {
                        written.fetch_add(batch as u64, Ordering::Relaxed);
                    }
                    // Pushback (the queue, or the archive's lag limit): back off briefly and go on.
                    Err(s) if s.code() == tonic::Code::ResourceExhausted => {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err(s) => return Err(format!("SubmitBatch: {s}")),
                }
            }
            Ok(())
        }));
    }
    Ok(writers)
}

async fn join(writers: Vec<tokio::task::JoinHandle<Res<()>>>) -> Res<()> {
    for writer in writers {
        writer.await.map_err(|e| e.to_string())??;
    }
    Ok(())
}

/// The same writers for `args.seconds` against a tlogd without an archive: the ingest rate archiving is compared
/// with, in entries/s.
async fn ingest_without_archive(args: &Args, dir: &Path) -> Res<f64> {
    let tlogd = Tlogd::launch_with_env(
        &bin("tlogd"),
        &dir.join("plain"),
        &[],
        Some(&dir.join("plain.log")),
        &[],
    )?;
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let writers = spawn_writers(args, &tlogd, &stop, &written).await?;
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(args.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let seconds = started.elapsed().as_secs_f64();
    join(writers).await?;
    let rate = written.load(Ordering::Relaxed) as f64 / seconds;
    tokio::task::spawn_blocking(move || tlogd.stop())
        .await
        .map_err(|e| e.to_string())?;
    Ok(rate)
}

/// Writers for `args.seconds` while the archive's lag is sampled, then the wait until it has everything.
async fn archive_under_load(args: &Args, primary: &Tlogd, server: &SeaweedFs) -> Res<ArchiveRun> {
    let mut sampler = connect(primary).await?;
    let start_archived = checkpoint(&mut sampler).await?.archived_size;
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let writers = spawn_writers(args, primary, &stop, &written).await?;
    let started = Instant::now();
    let cpu_started = cpu(primary, server);
    let run = Duration::from_secs_f64(args.seconds);
    let mut lag = Vec::new();
    let mut last = checkpoint(&mut sampler).await?;
    while started.elapsed() < run {
        tokio::time::sleep(Duration::from_millis(100)).await;
        last = checkpoint(&mut sampler).await?;
        lag.push(last.size.saturating_sub(last.archived_size));
    }
    stop.store(true, Ordering::Relaxed);
    let seconds = started.elapsed().as_secs_f64();
    join(writers).await?;
    let archived_during = last.archived_size - start_archived;
    let stopped = Instant::now();
    let cpu_stopped = cpu(primary, server);
    let size = loop {
        let cp = checkpoint(&mut sampler).await?;
        if cp.archived_size == cp.size {
            break cp.size;
        }
        if stopped.elapsed() > Duration::from_secs(600) {
            return Err(format!(
                "the archive did not catch up: {} of {}",
                cp.archived_size, cp.size
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let cpu_caught_up = cpu(primary, server);
    lag.sort_unstable();
    Ok(ArchiveRun {
        cpu_during: minus(cpu_stopped, cpu_started),
        cpu_catch_up: minus(cpu_caught_up, cpu_stopped),
        ingested: written.load(Ordering::Relaxed),
        seconds,
        archived_during,
        lag,
        catch_up: stopped.elapsed(),
        size,
    })
}

/// `tlogd restore` of the archive into `data`: (seconds of the rebuild, seconds of the whole command).
fn restore(server: &SeaweedFs, url: &str, key: &Path, data: &Path) -> Res<(f64, f64)> {
    let started = Instant::now();
    let mut child = Command::new(bin("tlogd"))
        .args(["restore", "--from", url, "--data"])
        .arg(data)
        .arg("--key")
        .arg(key)
        .envs(server.env())
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("tlogd restore: {e}"))?;
    // The rebuild ends at its "rebuilt" line; the verification follows.
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut rebuilt = None;
    use std::io::BufRead;
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.map_err(|e| e.to_string())?;
        if line.contains("rebuilt") && rebuilt.is_none() {
            rebuilt = Some(started.elapsed().as_secs_f64());
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("tlogd restore failed: {status}"));
    }
    let total = started.elapsed().as_secs_f64();
    Ok((rebuilt.unwrap_or(total), total))
}

/// Inclusion proofs by random index in the tree of `size` for `seconds` with `readers` readers; proofs/s.
async fn proofs(args: &Args, server: &Tlogd, size: u64, root: Hash) -> Res<f64> {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::new();
    for r in 0..args.readers {
        let mut rpc = connect(server).await?;
        let (stop, done, every) = (stop.clone(), done.clone(), args.verify_every.max(1));
        readers.push(tokio::spawn(async move {
            // A small xorshift: the same sequence of indices on every run.
            let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ (r as u64 + 1);
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let index = x % size;
                let p = rpc
                    .get_inclusion_proof(v1::GetInclusionProofRequest {
                        leaf: Some(Leaf::Index(index)),
                        tree_size: size,
                    })
                    .await
                    .map_err(|e| format!("GetInclusionProof({index}): {e}"))?
                    .into_inner();
                n += 1;
                if n.is_multiple_of(every) {
                    let leaf = hash_from_bytes("leaf", &p.leaf_hash).map_err(|e| e.to_string())?;
                    let hashes =
                        hashes_from_bytes("hashes", &p.hashes).map_err(|e| e.to_string())?;
                    verify_inclusion(&leaf, LeafIndex(index), TreeSize(size), &hashes, &root)
                        .map_err(|e| format!("proof of {index}: {e}"))?;
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<(), String>(())
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(args.seconds)).await;
    let counted = done.load(Ordering::Relaxed);
    let seconds = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        reader.await.map_err(|e| e.to_string())??;
    }
    Ok(counted as f64 / seconds)
}

async fn run(args: Args) -> Res<()> {
    let server = SeaweedFs::start();
    let url = init_archive(&server, "bench");
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let log = |name: &str| dir.path().join(format!("{name}.log"));
    let interval = args.archive_interval_ms.to_string();
    let primary = Tlogd::launch_with_env(
        &bin("tlogd"),
        &dir.path().join("primary"),
        &["--archive", &url, "--archive-interval-ms", &interval],
        Some(&log("primary")),
        &server.env(),
    )?;
    println!("## Archive and replicas\n");
    println!(
        "{} writers x {} entries of {} bytes per SubmitBatch, archive interval {} ms, {} s runs\n",
        args.writers, args.batch, args.entry_bytes, args.archive_interval_ms, args.seconds
    );

    let a = archive_under_load(&args, &primary, &server).await?;
    let plain = ingest_without_archive(&args, dir.path()).await?;
    let ingest = a.ingested as f64 / a.seconds;
    println!("| archive under load | |\n|---|---|");
    println!(
        "| log ingest | {ingest:.0} entries/s ({:.2}x of {plain:.0}/s without the archive, same writers) |",
        ingest / plain
    );
    println!(
        "| archived during the run | {:.0} entries/s |",
        a.archived_during as f64 / a.seconds
    );
    println!(
        "| lag (entries) p50 / p99 / max | {} / {} / {} |",
        percentile(&a.lag, 0.5),
        percentile(&a.lag, 0.99),
        a.lag.last().copied().unwrap_or(0)
    );
    println!(
        "| catch-up after the writers stop | {:.2} s |",
        a.catch_up.as_secs_f64()
    );
    println!(
        "| CPU while writing (cores): tlogd / SeaweedFS | {:.2} / {:.2} |",
        a.cpu_during.0 / a.seconds,
        a.cpu_during.1 / a.seconds
    );
    let behind = (a.size - a.archived_during) as f64;
    println!(
        "| CPU per entry archived in the catch-up (µs): tlogd / SeaweedFS | {:.2} / {:.2} |",
        a.cpu_catch_up.0 * 1e6 / behind,
        a.cpu_catch_up.1 * 1e6 / behind
    );
    println!("| archived tree | {} entries |\n", a.size);

    if !args.no_restore {
        let (rebuilt, total) = restore(
            &server,
            &url,
            &primary.data.join("log.key"),
            &dir.path().join("restored"),
        )?;
        println!("| restore | |\n|---|---|");
        println!(
            "| rebuild (download, check, append) | {:.0} entries/s ({:.2} s) |",
            a.size as f64 / rebuilt,
            rebuilt
        );
        println!("| with the final verification | {total:.2} s |\n");
    }

    let vkey = dir.path().join("log.vkey");
    std::fs::write(&vkey, format!("{}\n", primary.vkey)).map_err(|e| e.to_string())?;
    let vkey = vkey.to_str().ok_or("temporary path is not UTF-8")?;
    let replica = Tlogd::launch_with_env(
        &bin("tlogd"),
        &dir.path().join("replica"),
        &["--replica-of", &url, "--replica-vkey", vkey],
        Some(&log("replica")),
        &server.env(),
    )?;
    let mut rpc = connect(&replica).await?;
    let cp = rpc
        .get_checkpoint(v1::GetCheckpointRequest {
            min_size: a.size,
            ..Default::default()
        })
        .await
        .map_err(|e| format!("the replica did not catch up: {e}"))?
        .into_inner();
    let root = hash_from_bytes("root", &cp.root_hash).map_err(|e| e.to_string())?;
    let (mut on_primary, mut on_replica) = (Vec::new(), Vec::new());
    for _ in 0..args.repeats.max(1) {
        on_primary.push(proofs(&args, &primary, cp.size, root).await?);
        on_replica.push(proofs(&args, &replica, cp.size, root).await?);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (p, r) = (median(&mut on_primary), median(&mut on_replica));
    println!(
        "| inclusion proofs by index, {} readers, tree of {} | proofs/s |\n|---|---|",
        args.readers, cp.size
    );
    println!("| primary | {p:.0} |");
    println!("| replica (from the archive) | {r:.0} ({:.2}x) |", r / p);
    replica.stop();
    primary.stop();
    Ok(())
}

fn main() {
    let args = Args::parse();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    if let Err(e) = runtime.block_on(run(args)) {
        eprintln!("archive bench: {e}");
        std::process::exit(1);
    }
}
