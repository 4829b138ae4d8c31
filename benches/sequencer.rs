//! Entries/s appended through the sequencer (256-byte entries, fsync on, de-duplication on) at batch sizes
//! 1, 64, 1024 and 4096, next to a raw RocksDB write batch of the same bytes with the same sync setting (the issue's
//! target: at least half the raw rate at batch 1024).
//!
//! The machine is shared and fsync times swing by 10x under load, so the two are measured in alternating rounds
//! (raw write, sequencer batch, raw write, ...) on the same disk, and each side reports its median round: both see
//! the same noise, and the ratio stays meaningful when the absolute numbers do not.
//! Run: `cargo bench --workspace --bench sequencer` (`TLOG_BENCH_SECS` = seconds per batch size, default 6).

use std::sync::Arc;
use std::time::{Duration, Instant};

use rocksdb::{DB, Options, WriteBatch, WriteOptions};
use tlog_checkpoint::SignerKey;
use tlog_server::log::{LogOptions, open};
use tlog_storage::{RocksBackend, RocksOptions, RocksStore};

const ENTRY_BYTES: usize = 256;
const BATCHES: [usize; 4] = [1, 64, 1024, 4096];

/// Unique 256-byte entries: a counter followed by filler.
fn entries(next: &mut u64, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|_| {
            *next += 1;
            let mut e = vec![0x5a; ENTRY_BYTES];
            e[..8].copy_from_slice(&next.to_be_bytes());
            e
        })
        .collect()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

fn main() {
    let secs: u64 = std::env::var("TLOG_BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    let dir = tempfile::tempdir_in(".").unwrap();

    // Raw baseline: the same entry bytes plus a 40-byte index row per entry, one synced write batch.
    let mut opts = Options::default();
    opts.create_if_missing(true);
    let raw = DB::open(&opts, dir.path().join("raw")).unwrap();
    let mut sync = WriteOptions::default();
    sync.set_sync(true);

    let store = Arc::new(
        RocksStore::open(
            RocksBackend::open(dir.path().join("log"), &RocksOptions::default()).unwrap(),
        )
        .unwrap(),
    );
    let key = SignerKey::from_seed("bench.example/log", [1; 32]).unwrap();
    let (handle, _reader, task) = open(store, key, LogOptions::default()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    println!("| batch | rounds | raw RocksDB (entries/s) | sequencer (entries/s) | ratio |");
    println!("|---|---|---|---|---|");
    let (mut raw_next, mut seq_next) = (0u64, 1u64 << 40);
    for batch in BATCHES {
        let (mut raw_times, mut seq_times) = (Vec::new(), Vec::new());
        let started = Instant::now();
        let mut round = 0;
        while started.elapsed() < Duration::from_secs(secs) || round < 10 {
            let rows = entries(&mut raw_next, batch);
            let t = Instant::now();
            let mut wb = WriteBatch::default();
            for (i, row) in rows.iter().enumerate() {
                let index = (raw_next + i as u64).to_be_bytes();
                wb.put(index, row);
                wb.put([&row[..32]].concat(), index);
            }
            raw.write_opt(wb, &sync).unwrap();
            let raw_time = t.elapsed();

            let rows = entries(&mut seq_next, batch);
            let t = Instant::now();
            rt.block_on(handle.submit(rows)).unwrap();
            let seq_time = t.elapsed();
            // The first rounds warm caches and open files; they are not counted.
            if round >= 3 {
                raw_times.push(raw_time);
                seq_times.push(seq_time);
            }
            round += 1;
        }
        let rate = |d: Duration| batch as f64 / d.as_secs_f64();
        let (raw_rate, seq_rate) = (rate(median(raw_times)), rate(median(seq_times)));
        println!(
            "| {batch} | {} | {raw_rate:.0} | {seq_rate:.0} | {:.2} |",
            round - 3,
            seq_rate / raw_rate
        );
    }
    drop(handle);
    task.wait();
}
