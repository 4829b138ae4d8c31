//! Scale run for the storage issue: appends N (default 10,000,000) 256-byte entries through the sequencer in
//! batches of 4096 with fsync on, and reports the append rate per million entries, the process RSS and the disk
//! bytes per entry. Run: `cargo bench -p tlog-suite --bench scale` (TLOG_SCALE_ENTRIES=N to change N).
//! Targets: RSS under 256 MiB, disk under entry size + 150 bytes per entry, rate at 10M within 20% of 1M.

use std::sync::Arc;
use std::time::Instant;

use tlog_checkpoint::SignerKey;
use tlog_server::log::{LogOptions, SequencerConfig, open};
use tlog_storage::{Column, Hash, LogStore, RocksBackend, RocksOptions, RocksStore};

const ENTRY_BYTES: usize = 256;
const BATCH: usize = 4096;

/// A 256-byte entry of pseudo-random bytes (xorshift from its index): incompressible, like hashes and signatures in
/// real audit events, so the disk figure is not flattered by LZ4.
fn entry(index: u64) -> Vec<u8> {
    let seed = index.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    tlog_suite::incompressible_entry(&index.to_be_bytes(), seed, ENTRY_BYTES)
}

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn disk_bytes(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .map(|dir| {
            dir.filter_map(Result::ok)
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => disk_bytes(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// CPU seconds used so far by this process's threads, summed by thread name (sequencer, RocksDB's flush and
/// compaction pools, the submitting thread), from /proc/self/task/*/schedstat; also the run-queue wait.
fn thread_cpu() -> std::collections::BTreeMap<String, (f64, f64)> {
    let mut out = std::collections::BTreeMap::new();
    for task in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
        let mut f = stat
            .split_whitespace()
            .map(|v| v.parse::<f64>().unwrap_or(0.0) / 1e9);
        let (run, wait) = (f.next().unwrap_or(0.0), f.next().unwrap_or(0.0));
        let e = out.entry(name.trim().to_string()).or_insert((0.0, 0.0));
        e.0 += run;
        e.1 += wait;
    }
    out
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let total: u64 = std::env::var("TLOG_SCALE_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let dir = tempfile::tempdir_in(std::env::var("TLOG_SCALE_DIR").unwrap_or_else(|_| ".".into()))
        .unwrap();
    let store = Arc::new(
        RocksStore::open(RocksBackend::open(dir.path(), &RocksOptions::default()).unwrap())
            .unwrap(),
    );
    let key = SignerKey::from_seed("bench.example/scale", [3; 32]).unwrap();
    let options = LogOptions {
        sequencer: SequencerConfig {
            max_batch_entries: BATCH,
            ..SequencerConfig::default()
        },
        ..LogOptions::default()
    };
    let (handle, _reader, task) = open(store.clone(), key, options).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    println!("| entries | rate of the last million (entries/s) | RSS (MiB) | disk bytes/entry |");
    println!("|---|---|---|---|");
    let mut next = 0u64;
    let (mut mark, mut marked) = (Instant::now(), 0u64);
    let mut rates = Vec::new();
    let mut cpu = thread_cpu();
    while next < total {
        let n = BATCH.min((total - next) as usize);
        let entries: Vec<Vec<u8>> = (0..n).map(|i| entry(next + i as u64)).collect();
        rt.block_on(handle.submit(entries)).unwrap();
        let before = next;
        next += n as u64;
        if next / 1_000_000 != before / 1_000_000 || next == total {
            let rate = (next - marked) as f64 / mark.elapsed().as_secs_f64();
            rates.push((next, rate));
            println!(
                "| {next} | {rate:.0} | {:.1} | {:.1} |",
                rss_bytes() as f64 / (1 << 20) as f64,
                disk_bytes(dir.path()) as f64 / next as f64
            );
            if std::env::var_os("TLOG_SCALE_STATS").is_some() {
                let now = thread_cpu();
                let line: Vec<String> = now
                    .iter()
                    .map(|(k, v)| {
                        let b = cpu.get(k).copied().unwrap_or((0.0, 0.0));
                        format!("{k} {:.2}/{:.2}", v.0 - b.0, v.1 - b.1)
                    })
                    .collect();
                println!("cpu/wait s: {}", line.join(", "));
                cpu = now;
            }
            (mark, marked) = (Instant::now(), next);
        }
    }
    drop(handle);
    task.wait();
    // The figures above are taken while flushes and compactions run (obsolete files not yet deleted, memtables in
    // the WAL). Also report the log at rest: wait (at most a minute) until RocksDB has no background work left.
    let db = store.backend().db();
    let settled = Instant::now();
    let busy = |name: &str| db.property_int_value(name).ok().flatten().unwrap_or(0) > 0;
    while settled.elapsed().as_secs() < 60
        && (busy("rocksdb.num-running-compactions")
            || busy("rocksdb.num-running-flushes")
            || busy("rocksdb.compaction-pending"))
    {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    println!(
        "at rest after {:.1} s: RSS {:.1} MiB, disk {:.1} bytes/entry",
        settled.elapsed().as_secs_f64(),
        rss_bytes() as f64 / (1 << 20) as f64,
        disk_bytes(dir.path()) as f64 / total as f64
    );
    // Where the bytes are: live SST data per column family, and everything else (WAL, manifests, logs).
    let mut sst_total = 0;
    // With TLOG_SCALE_STATS: RocksDB's write-stall counters, then each column's compaction table.
    let stats = std::env::var_os("TLOG_SCALE_STATS").is_some();
    if stats && let Ok(Some(text)) = db.property_value("rocksdb.stats") {
        for line in text.lines().filter(|l| l.to_lowercase().contains("stall")) {
            println!("{line}");
        }
    }
    for column in Column::ALL {
        let sst = db
            .cf_handle(column.name())
            .and_then(|cf| {
                db.property_int_value_cf(&cf, "rocksdb.total-sst-files-size")
                    .ok()
                    .flatten()
            })
            .unwrap_or(0);
        sst_total += sst;
        if stats
            && let Some(table) = db.cf_handle(column.name()).and_then(|cf| {
                db.property_value_cf(&cf, "rocksdb.cfstats-no-file-histogram")
                    .ok()
                    .flatten()
            })
        {
            println!("{table}");
        }
        println!(
            "column {:<12} {:>8.1} SST bytes/entry",
            column.name(),
            sst as f64 / total as f64
        );
    }
    println!(
        "other files (WAL, memtable not yet flushed, manifest, logs) {:.1} bytes/entry",
        disk_bytes(dir.path()).saturating_sub(sst_total) as f64 / total as f64
    );
    if let (Some(first), Some(last)) = (rates.first(), rates.last()) {
        println!("rate at {} vs {}: {:.2}", last.0, first.0, last.1 / first.1);
    }
    println!(
        "entry size {ENTRY_BYTES} bytes; disk target < {} bytes/entry",
        ENTRY_BYTES + 150
    );
    // A restarted log loads its leaf filter from the leaf index (tlogd does it on a background thread): time that.
    drop(store);
    let reopened =
        RocksStore::open(RocksBackend::open(dir.path(), &RocksOptions::default()).unwrap())
            .unwrap();
    let load = Instant::now();
    reopened.load_leaf_filter().unwrap();
    assert_eq!(reopened.leaf_indices(&[Hash([0; 32])]).unwrap(), [None]);
    println!(
        "leaf filter load after reopen: {:.1} s",
        load.elapsed().as_secs_f64()
    );
}
