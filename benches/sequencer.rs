//! Entries/s appended through the sequencer (256-byte entries, fsync on, de-duplication on) at batch sizes
//! 1, 64, 1024 and 4096, next to a raw RocksDB write batch of the same bytes with the same sync setting, measured in
//! the same run (the target: at least half the raw rate at batch 1024).

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rocksdb::{DB, Options, WriteBatch, WriteOptions};
use tlog_checkpoint::SignerKey;
use tlog_server::clock::SystemClock;
use tlog_server::log::recover;
use tlog_server::sequencer::{Sequencer, SequencerConfig};
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

fn raw_rocksdb(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = Options::default();
    opts.create_if_missing(true);
    let db = DB::open(&opts, dir.path()).unwrap();
    let mut sync = WriteOptions::default();
    sync.set_sync(true);
    let mut group = c.benchmark_group("raw_rocksdb_write_batch");
    group
        .measurement_time(Duration::from_secs(4))
        .sample_size(10);
    let mut next = 0u64;
    for batch in BATCHES {
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(BenchmarkId::from_parameter(batch), &batch, |b, &batch| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let rows = entries(&mut next, batch);
                    let start = Instant::now();
                    // Same bytes as the log writes per entry: the 256-byte entry by index plus a 40-byte index row.
                    let mut wb = WriteBatch::default();
                    for (i, row) in rows.iter().enumerate() {
                        let index = (next + i as u64).to_be_bytes();
                        wb.put(index, row);
                        wb.put([&row[..32]].concat(), index);
                    }
                    db.write_opt(wb, &sync).unwrap();
                    total += start.elapsed();
                }
                total
            })
        });
    }
    group.finish();
}

fn sequencer(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        RocksStore::open(RocksBackend::open(dir.path(), &RocksOptions::default()).unwrap())
            .unwrap(),
    );
    let key = SignerKey::from_seed("bench.example/log", [1; 32]).unwrap();
    let recovered = recover(store.as_ref(), &key, &SystemClock).unwrap();
    let config = SequencerConfig {
        max_batch_entries: 4096,
        ..SequencerConfig::default()
    };
    let (handle, _task) = Sequencer::new(
        store,
        key,
        Arc::new(SystemClock),
        recovered.frontier,
        recovered.latest,
        config,
    )
    .spawn()
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("sequencer_append");
    group
        .measurement_time(Duration::from_secs(4))
        .sample_size(10);
    let mut next = 1u64 << 40;
    for batch in BATCHES {
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(BenchmarkId::from_parameter(batch), &batch, |b, &batch| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let rows = entries(&mut next, batch);
                    let start = Instant::now();
                    rt.block_on(handle.submit(rows)).unwrap();
                    total += start.elapsed();
                }
                total
            })
        });
    }
    group.finish();
}

criterion_group!(benches, raw_rocksdb, sequencer);
criterion_main!(benches);
