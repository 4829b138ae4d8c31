//! Crash test: the real `tlogd` (RocksDB in a temp dir, port 0) is SIGKILLed at random moments while concurrent
//! submitters (tlog-client: unary, batch and `SubmitStream`), a checkpoint reader and a proof and entry reader run,
//! then restarted. After each cycle:
//!
//! - the server restarted by itself (recovery accepted the store as the kill left it);
//! - every acknowledged entry is at the index its receipt named, with the same bytes;
//! - every signed checkpoint ever handed out (receipts and GetCheckpoint) is a prefix of the newest log: its root
//!   is recomputed from the downloaded entries at its size, and the entries rebuild the newest root;
//! - the checkpoints handed out since the last check, and the previous newest one, are proven consistent with
//!   the newest by RFC 9162 consistency proofs verified with the client (older ones follow by transitivity:
//!   they were proven consistent with an earlier newest one, which is proven consistent with this one);
//! - no two handed-out checkpoints share a size with different roots, and no acknowledged size was rolled back.
//!
//! After the last cycle, `tlogd verify` must pass on the data folder as the last kill left it.
//!
//! The test cannot pass having checked nothing: each cycle must acknowledge at least [`MIN_ACKS_PER_CYCLE`]
//! entries before its kill, a client that cannot connect fails it, and only the server going away or pushing
//! back counts as "not acknowledged": a receipt or checkpoint that fails verification fails the run.
//!
//! `TLOG_CRASH_CYCLES` sets the cycle count (default 3, for CI); `TLOG_CRASH_SEED` replays a run (the seed is
//! printed). `scripts/crash-test.sh` runs 50 cycles. `TLOG_CRASH_FULL_CHECK_EVERY=N` downloads the whole log only
//! every N cycles and after the last one (default 1: every cycle); in between, a cycle proves the newest
//! checkpoint consistent with the last one checked and downloads only what follows it, so that a long soak
//! (`scripts/soak.sh`, 1,000 cycles) does not spend its time re-reading millions of entries.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tlog_checkpoint::{SignedCheckpoint, VerifierKey};
use tlog_client::{ClientError, LogClient};
use tlog_core::testing::SplitMix64;
use tlog_core::{CompactRange, Hash, LeafIndex, TreeSize, empty_root, leaf_hash};
use tlog_suite::{Tlogd, tlogd_verify};
use tonic::Code;

/// Everything the log handed out, as the clients saw it.
#[derive(Default)]
struct Seen {
    /// Acknowledged entries: index → bytes.
    acked: BTreeMap<u64, Vec<u8>>,
    /// Handed-out checkpoints by size; a second root for a size is a fork and fails the test at once.
    checkpoints: BTreeMap<u64, SignedCheckpoint>,
    /// Sizes handed out since the last check (to be proven consistent with the next newest checkpoint).
    unproven: Vec<u64>,
}

impl Seen {
    fn checkpoint(&mut self, cp: &SignedCheckpoint) {
        let size = cp.checkpoint.size.0;
        match self.checkpoints.get(&size) {
            Some(old) => assert_eq!(
                old.checkpoint.root, cp.checkpoint.root,
                "two handed-out checkpoints of size {size} with different roots:\n{}\n{}",
                old.note, cp.note
            ),
            None => {
                self.checkpoints.insert(size, cp.clone());
                self.unproven.push(size);
            }
        }
    }

    fn ack(&mut self, index: LeafIndex, entry: Vec<u8>) {
        if let Some(old) = self.acked.insert(index.0, entry.clone()) {
            panic!(
                "index {} acknowledged twice: {:?} and {:?}",
                index.0,
                String::from_utf8_lossy(&old),
                String::from_utf8_lossy(&entry)
            );
        }
    }
}

/// Entries that must be acknowledged in each cycle before its kill: a cycle that acknowledged nothing would check
/// nothing.
const MIN_ACKS_PER_CYCLE: usize = 50;

/// Whether a failed call is the server going away or pushing back: then nothing was acknowledged and nothing is
/// promised. Anything else, above all an answer that fails verification (a bad proof or signature in a receipt,
/// a checkpoint of another key), is a broken promise and fails the test.
fn not_acknowledged(e: &ClientError) -> bool {
    match e {
        ClientError::Transport(_) => true,
        ClientError::Rpc(s) => matches!(
            s.code(),
            Code::Unavailable | Code::Unknown | Code::Cancelled | Code::ResourceExhausted
        ),
        _ => false,
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// Submits unique entries until `stop` (at random: unary, a batch of 2..=16, or a `SubmitStream` call of 2..=4
/// batches of 1..=8); records what was acknowledged.
async fn submitter(
    addr: String,
    key: VerifierKey,
    name: String,
    seed: u64,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
) {
    let client = LogClient::connect(&addr, key)
        .await
        .unwrap_or_else(|e| panic!("submitter {name} could not connect to {addr}: {e}"));
    let mut rng = SplitMix64(seed);
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let (count, stream) = match rng.range(0, 2) {
            0 => (1, None),
            1 => (rng.range(2, 16), None),
            _ => {
                let sizes: Vec<u64> = (0..rng.range(2, 4)).map(|_| rng.range(1, 8)).collect();
                (sizes.iter().sum(), Some(sizes))
            }
        };
        let entries: Vec<Vec<u8>> = (n..n + count)
            .map(|i| format!("{{\"crash\":\"{name}\",\"n\":{i}}}").into_bytes())
            .collect();
        n += count;
        let result = match stream {
            None if count == 1 => client.submit(&entries[0]).await.map(|r| vec![r]),
            None => client.submit_batch(&entries).await,
            Some(sizes) => {
                let mut rest = entries.clone();
                let batches: Vec<Vec<Vec<u8>>> = sizes
                    .iter()
                    .map(|&k| rest.drain(..k as usize).collect())
                    .collect();
                client
                    .submit_stream(batches)
                    .await
                    .map(|per_batch| per_batch.into_iter().flatten().collect())
            }
        };
        match result {
            Ok(receipts) => {
                let mut seen = seen.lock().unwrap();
                for (receipt, entry) in receipts.iter().zip(entries) {
                    assert!(!receipt.duplicate(), "unique entry reported as duplicate");
                    seen.ack(receipt.index(), entry);
                    seen.checkpoint(receipt.checkpoint());
                }
            }
            Err(e) if not_acknowledged(&e) => tokio::time::sleep(Duration::from_millis(5)).await,
            Err(e) => panic!("submitter {name}: a bad answer from the log: {e}"),
        }
    }
}

/// Reads the latest checkpoint (GetCheckpoint) until `stop`, recording each one handed out.
async fn reader(addr: String, key: VerifierKey, stop: Arc<AtomicBool>, seen: Arc<Mutex<Seen>>) {
    let mut client = LogClient::connect(&addr, key)
        .await
        .unwrap_or_else(|e| panic!("reader could not connect to {addr}: {e}"));
    while !stop.load(Ordering::Relaxed) {
        match client.checkpoint().await {
            Ok(cp) => seen.lock().unwrap().checkpoint(&cp),
            Err(e) if not_acknowledged(&e) => tokio::time::sleep(Duration::from_millis(5)).await,
            Err(e) => panic!("reader: a bad checkpoint from the log: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
}

/// Reads what the log already acknowledged until `stop`: inclusion proofs of random acknowledged indices against
/// the latest checkpoint, and short entry ranges, each verified by the client (a proof that fails verification,
/// or an entry that differs from the acknowledged bytes, fails the run).
async fn proof_reader(
    addr: String,
    key: VerifierKey,
    seed: u64,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
) {
    let client = LogClient::connect(&addr, key)
        .await
        .unwrap_or_else(|e| panic!("proof reader could not connect to {addr}: {e}"));
    let mut rng = SplitMix64(seed);
    while !stop.load(Ordering::Relaxed) {
        let pick = {
            let seen = seen.lock().unwrap();
            match seen.acked.keys().next_back() {
                Some(&last) => {
                    let index = rng.range(0, last);
                    seen.acked.get(&index).map(|e| (index, e.clone()))
                }
                None => None,
            }
        };
        let Some((index, entry)) = pick else {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        };
        match client.inclusion_by_index(LeafIndex(index), None).await {
            Ok(proof) => {
                assert_eq!(
                    proof.leaf_hash(),
                    leaf_hash(&entry),
                    "proof reader: index {index} proven for another entry"
                );
                seen.lock().unwrap().checkpoint(proof.checkpoint());
            }
            Err(e) if not_acknowledged(&e) => {}
            Err(e) => panic!("proof reader: a bad inclusion proof for index {index}: {e}"),
        }
        match client
            .entries_vec(LeafIndex(index), LeafIndex(index + 1))
            .await
        {
            Ok(got) => assert_eq!(
                got,
                vec![entry],
                "proof reader: entry {index} differs from the acknowledged bytes"
            ),
            Err(e) if not_acknowledged(&e) => {}
            Err(e) => panic!("proof reader: reading entry {index} failed: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
}

/// Totals of the checks made after each cycle.
#[derive(Default)]
struct Totals {
    acked_checks: u64,
    checkpoint_root_checks: u64,
    consistency_proofs: u64,
}

/// The log as the last check verified it: its size, newest checkpoint and tree (for incremental checks).
#[derive(Default)]
struct Verified {
    newest: Option<SignedCheckpoint>,
    tree: CompactRange,
}

/// Checks the restarted server against everything handed out so far (see the module docs). A `full` check
/// downloads the whole log; otherwise the newest checkpoint is proven consistent with the one the last check
/// verified (so the prefix it covers is unchanged, entries and roots alike) and only the entries past it are
/// downloaded. Every entry acknowledged since the last check lies past it: the log was at that size when the
/// clients started again.
async fn check(
    server: &Tlogd,
    key: &VerifierKey,
    seen: &mut Seen,
    verified: &mut Verified,
    full: bool,
    totals: &mut Totals,
) -> u64 {
    let mut client = LogClient::connect(&server.addr, key.clone()).await.unwrap();
    let newest = client.checkpoint().await.unwrap();
    seen.checkpoint(&newest);
    let size = newest.checkpoint.size.0;
    let largest = seen.checkpoints.keys().next_back().copied().unwrap_or(0);
    assert!(
        largest <= size,
        "rolled back: checkpoint of size {largest} was handed out, the restarted log has {size}"
    );

    let start = match (&verified.newest, full) {
        (Some(old), false) => {
            let old_size = old.checkpoint.size.0;
            if old_size > 0 && old_size < size {
                client
                    .consistency(old, Some(TreeSize(size)))
                    .await
                    .unwrap_or_else(|e| {
                        panic!("the last checked checkpoint (size {old_size}) is not consistent with size {size}: {e}")
                    });
                totals.consistency_proofs += 1;
            }
            old_size
        }
        _ => {
            verified.tree = CompactRange::new();
            0
        }
    };

    // Download the log from `start` and rebuild the root at every handed-out size past it.
    let mut entries: Vec<Vec<u8>> = Vec::new();
    let page = 100_000u64;
    let mut at = start;
    while at < size {
        let end = size.min(at + page);
        let chunk = client
            .entries_vec(LeafIndex(at), LeafIndex(end))
            .await
            .unwrap();
        assert_eq!(chunk.len() as u64, end - at);
        entries.extend(chunk);
        at = end;
    }
    for (&index, bytes) in seen.acked.range(start..) {
        let stored = entries.get((index - start) as usize).unwrap_or_else(|| {
            panic!("acknowledged entry {index} is missing: the log has {size} entries")
        });
        assert_eq!(
            stored,
            bytes,
            "acknowledged entry {index} changed: {:?} became {:?}",
            String::from_utf8_lossy(bytes),
            String::from_utf8_lossy(stored)
        );
        totals.acked_checks += 1;
    }
    let tree = &mut verified.tree;
    let mut roots: BTreeMap<u64, Hash> = BTreeMap::from([(0, empty_root()), (start, tree.root())]);
    let wanted: Vec<u64> = seen
        .checkpoints
        .range(start + 1..)
        .map(|(s, _)| *s)
        .collect();
    let mut next = wanted.iter().peekable();
    for e in &entries {
        tree.append(leaf_hash(e), |_, _| {}).unwrap();
        let s = tree.size().0;
        while next.next_if(|&&w| w < s).is_some() {}
        if next.next_if(|&&w| w == s).is_some() {
            roots.insert(s, tree.root());
        }
    }
    assert_eq!(
        tree.root(),
        newest.checkpoint.root,
        "entries do not rebuild the newest root"
    );
    for (s, cp) in seen.checkpoints.range(start..) {
        assert_eq!(
            roots.get(s),
            Some(&cp.checkpoint.root),
            "handed-out checkpoint of size {s} is not a prefix of the log:\n{}",
            cp.note
        );
        totals.checkpoint_root_checks += 1;
    }

    // Consistency proofs, verified by the client, from each newly handed-out checkpoint to the newest.
    for s in std::mem::take(&mut seen.unproven) {
        if s == 0 || s == size {
            continue;
        }
        let old = &seen.checkpoints[&s];
        let proven = client
            .consistency(old, Some(TreeSize(size)))
            .await
            .unwrap_or_else(|e| {
                panic!("checkpoint of size {s} not consistent with size {size}: {e}")
            });
        assert_eq!(proven.new.checkpoint.root, newest.checkpoint.root);
        totals.consistency_proofs += 1;
    }
    verified.newest = Some(newest);
    size
}

fn start(data: &Path, first: bool) -> Tlogd {
    let args: &[&str] = if first {
        &["--origin", "example.com/crash"]
    } else {
        &[]
    };
    Tlogd::try_start(data, args)
        .unwrap_or_else(|e| panic!("tlogd did not restart by itself after the kill:\n{e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill() {
    let cycles = env_u64("TLOG_CRASH_CYCLES").unwrap_or(3);
    let seed = env_u64("TLOG_CRASH_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    println!("crash test: {cycles} cycles, seed {seed} (replay with TLOG_CRASH_SEED={seed})");
    let began = Instant::now();
    let mut rng = SplitMix64(seed);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut totals = Totals::default();
    let mut verified = Verified::default();
    let full_every = env_u64("TLOG_CRASH_FULL_CHECK_EVERY").unwrap_or(1).max(1);

    let mut server = start(&data, true);
    let key = VerifierKey::parse(&server.vkey).unwrap();
    for cycle in 0..cycles {
        let cycle_start = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for s in 0..3 {
            tasks.push(tokio::spawn(submitter(
                server.addr.clone(),
                key.clone(),
                format!("c{cycle}s{s}"),
                rng.next_u64(),
                stop.clone(),
                seen.clone(),
            )));
        }
        tasks.push(tokio::spawn(reader(
            server.addr.clone(),
            key.clone(),
            stop.clone(),
            seen.clone(),
        )));
        tasks.push(tokio::spawn(proof_reader(
            server.addr.clone(),
            key.clone(),
            rng.next_u64(),
            stop.clone(),
            seen.clone(),
        )));
        let acked_before = seen.lock().unwrap().acked.len();
        let run = Duration::from_millis(rng.range(50, 1500));
        tokio::time::sleep(run).await;
        // Not before the cycle has acknowledged its minimum (a slow machine may need longer than the draw).
        let deadline = Instant::now() + Duration::from_secs(60);
        while seen.lock().unwrap().acked.len() < acked_before + MIN_ACKS_PER_CYCLE {
            assert!(
                Instant::now() < deadline,
                "cycle {}: fewer than {MIN_ACKS_PER_CYCLE} entries acknowledged in 60 s",
                cycle + 1
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let killed_after = cycle_start.elapsed();
        let pid = server.pid();
        server.kill();
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            tokio::time::timeout(Duration::from_secs(30), t)
                .await
                .expect("a client hung after the kill")
                .unwrap();
        }

        server = start(&data, false);
        // The clients are done: the record leaves the lock while the (async) check runs.
        let mut record = std::mem::take(&mut *seen.lock().unwrap());
        let before = record.acked.len();
        let full = cycle + 1 == cycles || (cycle + 1) % full_every == 0;
        let size = check(&server, &key, &mut record, &mut verified, full, &mut totals).await;
        println!(
            "cycle {}/{cycles}: killed pid {pid} after {} ms; restarted at size {size}; {} acknowledged entries, {} \
             checkpoints handed out so far: all present and consistent",
            cycle + 1,
            killed_after.as_millis(),
            before,
            record.checkpoints.len()
        );
        *seen.lock().unwrap() = record;
    }
    server.kill();

    // The log as the last kill left it passes the offline integrity check.
    let (code, text) = tlogd_verify(&data);
    assert!(code == 0, "tlogd verify after the crashes:\n{text}");

    let seen = seen.lock().unwrap();
    println!("{}", text.trim_end());
    println!(
        "crash test totals: {cycles} cycles; {} acknowledged entries checked ({} checks over all cycles); \
         {} checkpoints checked ({} root checks, {} consistency proofs verified); seed {seed}; {:.1}s",
        seen.acked.len(),
        totals.acked_checks,
        seen.checkpoints.len(),
        totals.checkpoint_root_checks,
        totals.consistency_proofs,
        began.elapsed().as_secs_f64()
    );
}
