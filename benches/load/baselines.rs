//! Baselines, measured in the same process on the same machine: sha2 leaf hashing, raw RocksDB write batches and
//! empty tonic round trips.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use rocksdb::{DB, Options, WriteBatch, WriteOptions};
use sha2::{Digest, Sha256};
use tlog_core::leaf_hash;
use tokio_stream::wrappers::TcpListenerStream;

use crate::RAW_CLIENT;
use crate::args::Args;
use crate::entries::make_entry;
use crate::error::{LoadError, Res};
use crate::launch::{channel, temp_dir};
use crate::plan::Scenario;
use crate::runs::{joined, percentile};

#[derive(Clone, Copy, Debug)]
pub(crate) struct Rate {
    pub(crate) per_sec: f64,
    pub(crate) p50_us: u32,
    pub(crate) p99_us: u32,
}

#[derive(Default)]
pub(crate) struct Baselines {
    /// sha2 leaf hashes (0x00 || entry) per second, one thread.
    pub(crate) sha2: Option<f64>,
    /// Raw RocksDB entries/s and per-write latency by batch size.
    pub(crate) raw: BTreeMap<usize, Rate>,
    /// Empty RPC round trips/s and latency by concurrent clients.
    pub(crate) rpc: BTreeMap<usize, Rate>,
}

pub(crate) fn sha2_baseline(entry_bytes: usize, secs: f64, run: u64) -> f64 {
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
pub(crate) fn raw_rocksdb_baseline(
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
        db.write_opt(wb, &write)?;
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
pub(crate) async fn rpc_baseline(clients: usize, secs: f64) -> Res<Rate> {
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
                let _ = addr_tx.send(Err(LoadError::Io {
                    what: "baseline server runtime",
                    source: e,
                }));
                return;
            }
        };
        rt.block_on(async move {
            let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
                Ok(l) => l,
                Err(e) => {
                    let _ = addr_tx.send(Err(LoadError::Io {
                        what: "baseline server bind",
                        source: e,
                    }));
                    return;
                }
            };
            let _ = addr_tx.send(listener.local_addr().map_err(|source| LoadError::Io {
                what: "baseline server address",
                source,
            }));
            let (_reporter, health) = tonic_health::server::health_reporter();
            let _ = tonic::transport::Server::builder()
                .add_service(health)
                .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                    let _ = stop_rx.await;
                })
                .await;
        });
    });
    let addr = addr_rx.recv().map_err(|_| LoadError::Io {
        what: "baseline server",
        source: std::io::Error::other("did not start"),
    })??;
    // Every client connects before the clock starts: the rate is of round trips, not of connection set-up.
    let mut connected = Vec::with_capacity(clients);
    for _ in 0..clients {
        connected.push(HealthClient::new(channel(&format!("http://{addr}")).await?));
    }
    let mut tasks = Vec::new();
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let wall = Instant::now();
    for mut client in connected {
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
        lat.extend(joined("baseline client", t).await?);
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

pub(crate) async fn measure_baselines(
    args: &Args,
    scenarios: &[Scenario],
    run: u64,
) -> Res<Baselines> {
    let mut b = Baselines::default();
    if args.no_baselines {
        return Ok(b);
    }
    let secs = args.baseline_secs;
    eprintln!("load: baseline sha2 leaf hashing");
    b.sha2 = Some(sha2_baseline(args.entry_bytes, secs.min(1.0), run));
    // Before the raw RocksDB baselines, so nothing they leave running (flushes, compactions, writeback) can share the
    // cores with these round trips.
    let clients: BTreeSet<usize> = scenarios.iter().filter_map(Scenario::rpc_clients).collect();
    for c in clients {
        eprintln!("load: baseline empty RPC, {c} clients ({BASELINE_REPEATS} runs, median)");
        let mut runs = Vec::with_capacity(BASELINE_REPEATS);
        for _ in 0..BASELINE_REPEATS {
            runs.push(rpc_baseline(c, secs).await?);
        }
        b.rpc.insert(c, median(runs));
    }
    let batches: BTreeSet<usize> = scenarios.iter().filter_map(Scenario::raw_batch).collect();
    if !batches.is_empty() {
        let dir = temp_dir("tlog-load-raw-")?;
        let mut opts = Options::default();
        opts.create_if_missing(true);
        let db = DB::open(&opts, dir.path())?;
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
    Ok(b)
}

/// Runs of each empty-RPC baseline; the median one is reported. The round trips share the cores with whatever else
/// the machine runs, and a single short run can read a third low, moving every ratio taken against it.
const BASELINE_REPEATS: usize = 3;

/// The run with the median rate (its latencies with it).
fn median(mut runs: Vec<Rate>) -> Rate {
    runs.sort_by(|a, b| a.per_sec.total_cmp(&b.per_sec));
    runs[runs.len() / 2]
}
