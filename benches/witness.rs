//! `witness`: issue 17's benchmarks, end to end with the release binaries (`tlogd`, `tlog-witness`):
//!
//! 1. ack throughput of SubmitBatch writers with witnessing off and on (three local witnesses, quorum 2),
//!    alternating off/on in the same run, medians of the repeats, and the ratio on/off;
//! 2. with witnessing on, the lag from each checkpoint the log publishes to the first witnessed checkpoint that
//!    covers it (GetCheckpoint{witnessed} polled every 2 ms), p50/p99;
//! 3. on one prefilled log, C2SP tiles served over HTTP (full level-0 hash tiles and entry bundles, random) next to
//!    gRPC inclusion proofs by index, each for the same time with the same number of concurrent readers.
//!
//! ```sh
//! cargo build --release --workspace --bins
//! cargo bench --workspace --bench witness -- --repeats 3 --seconds 10 --prefill 1000000
//! ```
//!
//! Every answer is checked cheaply (receipt counts, tile and bundle sizes) and one in `--verify-every` fully (an
//! inclusion proof against the signed root). Results and method: BENCHMARKS.md.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use tlog_checkpoint::{SignerKey, verify_checkpoint};
use tlog_core::tiles::Tile;
use tlog_core::{Hash, LeafIndex, TreeSize, leaf_hash, verify_inclusion};
use tlog_proto::v1;
use tlog_suite::bench::{self, Rounds, median, percentile};
use tlog_suite::{Rpc, Tlogd, incompressible_entry, profile_dir};
use tokio::sync::Mutex;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "witness",
    about = "tlogd with and without witnesses; tiles over HTTP next to gRPC proofs"
)]
struct Args {
    /// Entries per SubmitBatch call.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Bytes per entry.
    #[arg(long, default_value_t = 256)]
    entry_bytes: usize,
    /// Witnesses started for the "on" runs.
    #[arg(long, default_value_t = 3)]
    witnesses: usize,
    /// Cosignatures a checkpoint needs.
    #[arg(long, default_value_t = 2)]
    quorum: usize,
    /// Entries in the log the read runs use (0 skips the read runs).
    #[arg(long, default_value_t = 1_000_000)]
    prefill: u64,
    /// Concurrent readers of each read run.
    #[arg(long, default_value_t = 16)]
    readers: usize,
    /// Fully verify one answer in this many.
    #[arg(long, default_value_t = 100)]
    verify_every: u64,
    /// Off/on pairs of write runs; SubmitBatch writers.
    #[command(flatten)]
    rounds: Rounds,
}

type Res<T> = Result<T, String>;

fn bin(name: &str) -> PathBuf {
    profile_dir().join(name)
}

/// A `tlog-witness` process, killed when dropped.
struct WitnessProc {
    child: Child,
    url: String,
    key: String,
}

impl Drop for WitnessProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_witness(dir: &Path, n: usize, log_vkey: &str) -> Res<WitnessProc> {
    let mut child = Command::new(bin("tlog-witness"))
        .arg("--data")
        .arg(dir.join(format!("witness{n}")))
        .args(["--name", &format!("witness{n}.bench"), "--log", log_vkey])
        .args(["--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting tlog-witness: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (mut url, mut key) = (None, None);
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line.map_err(|e| e.to_string())?;
        if let Some(a) = line.strip_prefix("listening on ") {
            url = Some(format!("http://{a}"));
        } else if let Some(k) = line.strip_prefix("cosigner key ") {
            key = Some(k.to_string());
        }
        if url.is_some() && key.is_some() {
            break;
        }
    }
    std::thread::spawn(move || lines.for_each(drop));
    match (url, key) {
        (Some(url), Some(key)) => Ok(WitnessProc { child, url, key }),
        _ => Err("tlog-witness did not print its address and key".into()),
    }
}

/// A log in `dir` (its key written first, so witnesses can be told it), with `witnesses` witnesses.
fn start_log(dir: &Path, witnesses: usize, quorum: usize) -> Res<(Tlogd, Vec<WitnessProc>)> {
    use std::os::unix::fs::PermissionsExt;
    let data = dir.join("data");
    std::fs::create_dir_all(&data).map_err(|e| e.to_string())?;
    let mut seed = [0u8; 32];
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?;
    seed[..16].copy_from_slice(&now.as_nanos().to_le_bytes());
    let key = SignerKey::from_seed("bench.example/witnessed", seed).map_err(|e| e.to_string())?;
    let key_path = data.join("log.key");
    std::fs::write(&key_path, key.to_private_string()).map_err(|e| e.to_string())?;
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| e.to_string())?;
    let vkey = key.verifier().to_string();
    let procs = (1..=witnesses)
        .map(|n| start_witness(dir, n, &vkey))
        .collect::<Res<Vec<_>>>()?;
    let mut args: Vec<String> = Vec::new();
    for w in &procs {
        args.extend(["--witness".into(), format!("{}={}", w.key, w.url)]);
    }
    if witnesses > 0 {
        args.extend(["--witness-quorum".into(), quorum.to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let tlogd = Tlogd::launch(&bin("tlogd"), &data, &args, Some(&dir.join("tlogd.log")))?;
    Ok((tlogd, procs))
}

async fn connect(addr: &str) -> Res<Rpc> {
    Ok(Rpc::connect(addr.to_string())
        .await
        .map_err(|e| e.to_string())?
        .max_decoding_message_size(256 << 20)
        .max_encoding_message_size(256 << 20))
}

/// Closed-loop SubmitBatch writers for `seconds`; returns acknowledged entries per second.
async fn write_load(addr: &str, args: &Args, tag: u64, seconds: f64) -> Res<f64> {
    let acked = Arc::new(AtomicU64::new(0));
    let end = Instant::now() + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::new();
    for c in 0..args.rounds.clients {
        let mut rpc = connect(addr).await?;
        let (acked, batch, bytes) = (acked.clone(), args.batch, args.entry_bytes);
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < end {
                let prefix = format!("{tag}/{c}/{n}/");
                let entries: Vec<Vec<u8>> = (0..batch as u64)
                    .map(|i| incompressible_entry(prefix.as_bytes(), i, bytes))
                    .collect();
                let request = v1::SubmitBatchRequest {
                    entries,
                    client_tag: 0,
                    shared_checkpoint: false,
                    multiproof: false,
                };
                let receipts = rpc
                    .submit_batch(request)
                    .await
                    .map_err(|e| e.to_string())?
                    .into_inner()
                    .receipts;
                if receipts.len() != batch {
                    return Err(format!("{} receipts for {batch} entries", receipts.len()));
                }
                acked.fetch_add(batch as u64, Ordering::Relaxed);
                n += 1;
            }
            Ok::<(), String>(())
        }));
    }
    let started = Instant::now();
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    Ok(acked.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

/// Watches the log's checkpoints and polls its witnessed checkpoint until `stop`; returns each log checkpoint's
/// lag to the first witnessed checkpoint covering it, in milliseconds.
async fn lag_sampler(addr: String, stop: Arc<AtomicU64>) -> Res<Vec<f64>> {
    let mut watch_rpc = connect(&addr).await?;
    let mut poll_rpc = connect(&addr).await?;
    let published: Arc<Mutex<Vec<(u64, Instant)>>> = Arc::default();
    let watcher = {
        let published = published.clone();
        tokio::spawn(async move {
            let Ok(stream) = watch_rpc
                .watch_checkpoints(v1::WatchCheckpointsRequest {})
                .await
            else {
                return;
            };
            let mut stream = stream.into_inner();
            while let Ok(Some(cp)) = stream.message().await {
                published.lock().await.push((cp.size, Instant::now()));
            }
        })
    };
    let mut witnessed: Vec<(u64, Instant)> = Vec::new();
    while stop.load(Ordering::Relaxed) == 0 {
        let request = v1::GetCheckpointRequest {
            witnessed: true,
            ..Default::default()
        };
        if let Ok(cp) = poll_rpc.get_checkpoint(request).await {
            let size = cp.into_inner().size;
            if witnessed.last().is_none_or(|&(s, _)| size > s) {
                witnessed.push((size, Instant::now()));
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    watcher.abort();
    let published = published.lock().await.clone();
    Ok(published
        .iter()
        .filter(|(size, _)| *size > 0)
        .filter_map(|&(size, at)| {
            let (_, seen) = witnessed.iter().find(|(s, _)| *s >= size)?;
            Some(seen.saturating_duration_since(at).as_secs_f64() * 1000.0)
        })
        .collect())
}

/// Random reads for `seconds` by `readers` tasks; `read(i, n)` does the n-th read of reader i and returns the
/// bytes it moved. Returns reads/s and bytes/s.
async fn read_load<F, Fut>(readers: usize, seconds: f64, read: F) -> Res<(f64, f64)>
where
    F: Fn(usize, u64) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = Res<u64>> + Send,
{
    let (count, bytes) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let end = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..readers)
        .map(|i| {
            let (count, bytes, read) = (count.clone(), bytes.clone(), read.clone());
            tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < end {
                    bytes.fetch_add(read(i, n).await?, Ordering::Relaxed);
                    count.fetch_add(1, Ordering::Relaxed);
                    n += 1;
                }
                Ok::<(), String>(())
            })
        })
        .collect();
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    let secs = started.elapsed().as_secs_f64();
    Ok((
        count.load(Ordering::Relaxed) as f64 / secs,
        bytes.load(Ordering::Relaxed) as f64 / secs,
    ))
}

/// A pseudo-random u64 from two counters (splitmix64).
fn mix(a: u64, b: u64) -> u64 {
    let mut z = a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_add(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

async fn reads(args: &Args) -> Res<()> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (tlogd, _witnesses) = start_log(dir.path(), 0, 0)?;
    let started = Instant::now();
    let mut prefill = args.clone();
    prefill.rounds.clients = 4;
    prefill.batch = 4000;
    // Each call writes new entries (its own tag): the log de-duplicates, so repeats would not grow it.
    let mut tag = 1 << 40;
    while latest_size(&tlogd.addr).await? < args.prefill {
        write_load(&tlogd.addr, &prefill, tag, 5.0).await?;
        tag += 1;
    }
    let mut rpc = connect(&tlogd.addr).await?;
    let cp = rpc
        .get_checkpoint(v1::GetCheckpointRequest::default())
        .await
        .map_err(|e| e.to_string())?
        .into_inner();
    let vkey = tlog_checkpoint::VerifierKey::parse(&tlogd.vkey).map_err(|e| e.to_string())?;
    let signed = verify_checkpoint(&vkey, &cp.note).map_err(|e| e.to_string())?;
    let size = signed.checkpoint.size.0;
    let root = signed.checkpoint.root;
    println!(
        "prefilled {size} entries in {:.0} s\n",
        started.elapsed().as_secs_f64()
    );

    // gRPC inclusion proofs by index, one in verify_every checked against the signed root.
    let conns: Vec<Rpc> = {
        let mut v = Vec::new();
        for _ in 0..4 {
            v.push(connect(&tlogd.addr).await?);
        }
        v
    };
    let every = args.verify_every;
    let grpc = read_load(args.readers, args.rounds.seconds, move |i, n| {
        let mut rpc = conns[i % conns.len()].clone();
        async move {
            let index = mix(i as u64, n) % size;
            let request = v1::GetInclusionProofRequest {
                leaf: Some(v1::get_inclusion_proof_request::Leaf::Index(index)),
                tree_size: size,
            };
            let proof = rpc
                .get_inclusion_proof(request)
                .await
                .map_err(|e| e.to_string())?
                .into_inner();
            if n.is_multiple_of(every) {
                let path: Vec<Hash> = proof
                    .hashes
                    .iter()
                    .map(|h| Hash::from_slice(h).ok_or("bad hash"))
                    .collect::<Result<_, _>>()?;
                let leaf = Hash::from_slice(&proof.leaf_hash).ok_or("bad leaf")?;
                verify_inclusion(&leaf, LeafIndex(index), TreeSize(size), &path, &root)
                    .map_err(|e| format!("inclusion proof of {index}: {e}"))?;
            }
            // The proof's hashes: what a verifier needs moved.
            Ok(32 * (proof.hashes.len() as u64 + 1))
        }
    })
    .await?;

    let http_url = tlogd.http.clone().ok_or("tlogd serves no HTTP")?;
    let client =
        tlog_client::http::http_client(Duration::from_secs(30)).map_err(|e| e.to_string())?;
    let full_tiles = size / 256;
    let grpc_addr = tlogd.addr.clone();
    let tile_read = |bundles: bool| {
        let (client, url, grpc_addr) = (client.clone(), http_url.clone(), grpc_addr.clone());
        move |i: usize, n: u64| {
            let (client, url, grpc_addr) = (client.clone(), url.clone(), grpc_addr.clone());
            async move {
                let index = mix(i as u64 + 1000, n) % full_tiles;
                let tile = if bundles {
                    Tile::entries_at(index, TreeSize(size))
                } else {
                    Tile::hashes_at(0, index, TreeSize(size))
                }
                .ok_or("no such tile")?;
                let body = client
                    .get(format!("{url}/{}", tile.path()))
                    .send()
                    .await
                    .map_err(|e| e.to_string())?
                    .error_for_status()
                    .map_err(|e| e.to_string())?
                    .bytes()
                    .await
                    .map_err(|e| e.to_string())?;
                if bundles {
                    tile.parse_entries(&body).map_err(|e| e.to_string())?;
                } else {
                    let hashes = tile.parse_hashes(&body).map_err(|e| e.to_string())?;
                    if n.is_multiple_of(every) {
                        // The tile's first hash is the leaf hash of entry 256*index: check it over gRPC.
                        let entry = tlog_suite::first_page(
                            &mut connect(&grpc_addr).await?,
                            index * 256,
                            index * 256 + 1,
                        )
                        .await
                        .ok_or("no entry")?
                        .entries;
                        if leaf_hash(&entry[0]) != hashes[0] {
                            return Err(format!("tile {} disagrees with entry", tile.path()));
                        }
                    }
                }
                Ok(body.len() as u64)
            }
        }
    };
    let hash_tiles = read_load(args.readers, args.rounds.seconds, tile_read(false)).await?;
    let bundles = read_load(args.readers, args.rounds.seconds, tile_read(true)).await?;
    println!(
        "| {size} entries, {} readers, {} s each | reads/s | MB/s |",
        args.readers, args.rounds.seconds
    );
    println!("|---|---:|---:|");
    println!(
        "| gRPC GetInclusionProof by index | {:.0} | {:.1} |",
        grpc.0,
        grpc.1 / 1e6
    );
    println!(
        "| HTTP full level-0 hash tiles (8 KiB) | {:.0} | {:.1} |",
        hash_tiles.0,
        hash_tiles.1 / 1e6
    );
    println!(
        "| HTTP full entry bundles (256 entries, gzip on the wire, MB/s decoded) | {:.0} | {:.1} |",
        bundles.0,
        bundles.1 / 1e6
    );
    println!(
        "\nhash tiles / inclusion proofs: {:.2}x",
        hash_tiles.0 / grpc.0
    );
    tlogd.stop();
    Ok(())
}

async fn latest_size(addr: &str) -> Res<u64> {
    let mut rpc = connect(addr).await?;
    Ok(rpc
        .get_checkpoint(v1::GetCheckpointRequest::default())
        .await
        .map_err(|e| e.to_string())?
        .into_inner()
        .size)
}

async fn writes(args: &Args) -> Res<()> {
    let mut off = Vec::new();
    let mut on = Vec::new();
    let mut lags = Vec::new();
    for r in 0..args.rounds.repeats {
        for witnessed in [false, true] {
            let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
            let n = if witnessed { args.witnesses } else { 0 };
            let (tlogd, _witnesses) = start_log(dir.path(), n, args.quorum)?;
            let stop = Arc::new(AtomicU64::new(0));
            let sampler =
                witnessed.then(|| tokio::spawn(lag_sampler(tlogd.addr.clone(), stop.clone())));
            let rate = write_load(
                &tlogd.addr,
                args,
                r as u64 * 2 + u64::from(witnessed),
                args.rounds.seconds,
            )
            .await?;
            // Let the last checkpoints be witnessed before the sampler stops.
            tokio::time::sleep(Duration::from_millis(500)).await;
            stop.store(1, Ordering::Relaxed);
            if let Some(s) = sampler {
                lags.extend(s.await.map_err(|e| e.to_string())??);
            }
            println!(
                "run {r} witnessing {}: {rate:.0} entries/s",
                if witnessed { "on " } else { "off" }
            );
            if witnessed {
                on.push(rate)
            } else {
                off.push(rate)
            }
            tlogd.stop();
        }
    }
    lags.sort_by(f64::total_cmp);
    let (off, on) = (median(&mut off), median(&mut on));
    println!();
    println!(
        "| {} writers x {} entries, {} B, {} s, {} repeats (medians) | entries/s |",
        args.rounds.clients, args.batch, args.entry_bytes, args.rounds.seconds, args.rounds.repeats
    );
    println!("|---|---:|");
    println!("| witnessing off | {off:.0} |");
    println!(
        "| witnessing on ({} witnesses, quorum {}) | {on:.0} |",
        args.witnesses, args.quorum
    );
    println!("| on / off | {:.2}x |", on / off);
    println!();
    println!(
        "lag from log checkpoint to witnessed checkpoint over {} checkpoints: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        lags.len(),
        percentile(&lags, 0.5),
        percentile(&lags, 0.99),
        lags.last().copied().unwrap_or(f64::NAN)
    );
    println!();
    Ok(())
}

fn main() -> std::process::ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return std::process::ExitCode::from(2);
        }
    };
    if bench::skip_plain_run("witness", &[&bin("tlogd"), &bin("tlog-witness")]) {
        return std::process::ExitCode::SUCCESS;
    }
    bench::run("witness", async {
        writes(&args).await?;
        if args.prefill > 0 {
            reads(&args).await?;
        }
        Ok(())
    })
}
