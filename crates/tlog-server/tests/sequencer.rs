//! The sequencer against real stores: reference roots over 100,000 entries, failure injection, de-duplication,
//! pushback and recovery.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tlog_checkpoint::{SignerKey, verify_checkpoint};
use tlog_core::{
    CompactRange, Hash, LeafIndex, NodeId, TreeSize, consistency_plan, inclusion_plan, leaf_hash,
    verify_consistency, verify_inclusion,
};
use tlog_server::log::{Appender, LogOptions, SequencerConfig, Shutdown, open};
use tlog_server::{Error, ManualClock};
use tlog_storage::conformance::entry;
use tlog_storage::{
    AppendBatch, LogStore, MemoryBackend, MemoryStore, RocksBackend, RocksOptions, RocksStore,
    StoreError,
};

// tlog-core's naive RFC 9162 reference, shared rather than written again.
use tlog_core::testing::reference;

const ORIGIN: &str = "example.com/test-log";

fn key() -> SignerKey {
    SignerKey::from_seed(ORIGIN, [7; 32]).unwrap()
}

fn options(sequencer: SequencerConfig) -> LogOptions {
    LogOptions {
        sequencer,
        clock: Arc::new(ManualClock::new(1_700_000_000)),
        ..LogOptions::default()
    }
}

fn start<S: LogStore>(store: Arc<S>, config: SequencerConfig) -> (Appender, Shutdown) {
    let (appender, _reader, shutdown) = open(store, key(), options(config)).unwrap();
    (appender, shutdown)
}

/// RFC 9162 MTH straight from the definition (independent of tlog-core's compact range).
fn naive_root(leaves: &[Hash]) -> Hash {
    Hash(reference::Rfc::new(leaves.iter().map(|h| h.0).collect()).mth(0, leaves.len()))
}

fn rocks(dir: &std::path::Path) -> Arc<RocksStore> {
    Arc::new(RocksStore::open(RocksBackend::open(dir, &RocksOptions::default()).unwrap()).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_thousand_entries_in_uneven_batches_match_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let store = rocks(dir.path());
    let (seq, task) = start(store.clone(), SequencerConfig::default());
    let vkey = key().verifier();

    let mut reference = CompactRange::new();
    let mut leaves = Vec::new();
    let mut published = Vec::new();
    let sizes = [1u64, 7, 256, 1000, 3, 4096, 1, 2, 255, 257, 999, 4000];
    let mut next = 0u64;
    let mut round = 0;
    while next < 100_000 {
        let len = sizes[round % sizes.len()].min(100_000 - next);
        round += 1;
        let committed = seq
            .submit((next..next + len).map(entry).collect())
            .await
            .unwrap();
        for (i, a) in committed.assigned.iter().enumerate() {
            assert_eq!(
                a.index,
                LeafIndex(next + i as u64),
                "indices are consecutive"
            );
            assert!(!a.duplicate);
            reference.append(a.leaf_hash, |_, _| {}).unwrap();
            leaves.push(a.leaf_hash);
        }
        next += len;
        let cp = &committed.checkpoint;
        assert_eq!(cp.checkpoint.size, TreeSize(next));
        assert_eq!(cp.checkpoint.root, reference.root(), "root at size {next}");
        // The note handed out verifies, and is exactly what the store holds for that size.
        verify_checkpoint(&vkey, cp.note.as_bytes()).unwrap();
        assert_eq!(
            store.checkpoint(TreeSize(next)).unwrap().unwrap(),
            cp.note.as_bytes()
        );
        published.push((next, cp.checkpoint.root));
    }
    for &(size, root) in published.iter().step_by(7) {
        assert_eq!(
            naive_root(&leaves[..size as usize]),
            root,
            "naive MTH at size {size}"
        );
    }
    // Sampled proofs at many published sizes verify with the core verifier.
    for (k, &(size, root)) in published.iter().enumerate().step_by(3) {
        for index in [0, size / 2, size - 1, (k as u64 * 7919) % size] {
            let plan = inclusion_plan(LeafIndex(index), TreeSize(size)).unwrap();
            let proof = plan.build(&store.nodes(plan.node_ids()).unwrap()).unwrap();
            verify_inclusion(
                &leaves[index as usize],
                LeafIndex(index),
                TreeSize(size),
                &proof,
                &root,
            )
            .unwrap();
        }
        for &(old, old_root) in published[..=k].iter().step_by(5) {
            let plan = consistency_plan(TreeSize(old), TreeSize(size)).unwrap();
            let proof = plan.build(&store.nodes(plan.node_ids()).unwrap()).unwrap();
            verify_consistency(TreeSize(old), TreeSize(size), &proof, &old_root, &root).unwrap();
        }
    }
    drop(seq);
    task.wait();
    // Reopen: recovery rebuilds the same root from the stored nodes (opening refuses a root that differs from
    // the signed one) and accepts the stored signature.
    drop(store);
    let (seq, reader, task) = open(
        rocks(dir.path()),
        key(),
        options(SequencerConfig::default()),
    )
    .unwrap();
    let latest = reader.latest();
    assert_eq!(latest.checkpoint.root, reference.root());
    assert_eq!(latest.checkpoint.size, TreeSize(100_000));
    drop(seq);
    task.wait();
}

/// A store wrapper for failure injection: its appends fail while `failing` is set (as a full disk would), and
/// wait while `gate` is held (to keep the sequencer busy).
struct TestStore<S> {
    inner: S,
    failing: AtomicBool,
    gate: std::sync::Mutex<()>,
}

impl<S> TestStore<S> {
    fn new(inner: S) -> Self {
        TestStore {
            inner,
            failing: AtomicBool::new(false),
            gate: Default::default(),
        }
    }
}

impl<S: LogStore> LogStore for TestStore<S> {
    fn tree_size(&self) -> Result<TreeSize, StoreError> {
        self.inner.tree_size()
    }
    fn append(&self, batch: &AppendBatch) -> Result<(), StoreError> {
        let _open = self.gate.lock().unwrap_or_else(|p| p.into_inner());
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError::Backend(tlog_storage::BackendError::new(
                tlog_storage::BackendErrorKind::Io,
                "injected: No space left on device",
            )));
        }
        self.inner.append(batch)
    }
    fn entries(&self, start: LeafIndex, end: LeafIndex) -> Result<Vec<Vec<u8>>, StoreError> {
        self.inner.entries(start, end)
    }
    fn nodes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, StoreError> {
        self.inner.nodes(ids)
    }
    fn leaf_indices(&self, leaf_hashes: &[Hash]) -> Result<Vec<Option<LeafIndex>>, StoreError> {
        self.inner.leaf_indices(leaf_hashes)
    }
    fn checkpoint(&self, size: TreeSize) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.checkpoint(size)
    }
    fn latest_checkpoint(&self) -> Result<Option<(TreeSize, Vec<u8>)>, StoreError> {
        self.inner.latest_checkpoint()
    }
    fn checkpoints_from(
        &self,
        from: TreeSize,
        limit: usize,
    ) -> Result<Vec<(TreeSize, Vec<u8>)>, StoreError> {
        self.inner.checkpoints_from(from, limit)
    }
    fn tile(&self, level: u8, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.tile(level, index)
    }
    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.meta(key)
    }
    fn set_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.inner.set_meta(key, value)
    }
    fn subject_key(&self, subject: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.subject_key(subject)
    }
    fn payload(&self, subject: &[u8], index: LeafIndex) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.payload(subject, index)
    }
    fn purge_erased(&self) -> Result<(), StoreError> {
        self.inner.purge_erased()
    }
    fn purge_pending(&self) -> Result<bool, StoreError> {
        self.inner.purge_pending()
    }
}

#[tokio::test]
async fn a_failed_write_answers_the_batch_with_an_error_and_signs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(TestStore::new(
        RocksStore::open(RocksBackend::open(dir.path(), &RocksOptions::default()).unwrap())
            .unwrap(),
    ));
    let (seq, task) = start(store.clone(), SequencerConfig::default());
    let first = seq.submit((0..10).map(entry).collect()).await.unwrap();
    let before = seq.latest();
    assert_eq!(before.checkpoint.size, TreeSize(10));

    store.failing.store(true, Ordering::SeqCst);
    let (a, b) = tokio::join!(
        seq.submit(vec![entry(10)]),
        seq.submit(vec![entry(11), entry(12)])
    );
    for r in [a.map(|_| ()), b.map(|_| ())] {
        assert!(
            matches!(r, Err(Error::Unavailable(ref e)) if e.to_string().contains("No space left")),
            "{r:?}"
        );
    }
    // Nothing was signed or published, and the store is exactly as it was.
    assert_eq!(seq.latest().note, before.note);
    assert_eq!(store.tree_size().unwrap(), TreeSize(10));
    assert_eq!(
        store.latest_checkpoint().unwrap().unwrap().1,
        first.checkpoint.note.as_bytes()
    );
    assert!(store.leaf_indices(&[leaf_hash(&entry(10))]).unwrap()[0].is_none());

    // Writes work again: the next batch continues at index 10, with no gap.
    store.failing.store(false, Ordering::SeqCst);
    let next = seq.submit(vec![entry(20), entry(21)]).await.unwrap();
    assert_eq!(next.assigned[0].index, LeafIndex(10));
    assert_eq!(next.assigned[1].index, LeafIndex(11));
    assert_eq!(next.checkpoint.checkpoint.size, TreeSize(12));
    let mut reference = CompactRange::new();
    reference
        .extend(
            (0..10)
                .map(|i| leaf_hash(&entry(i)))
                .chain([20, 21].map(|i| leaf_hash(&entry(i)))),
            |_, _| {},
        )
        .unwrap();
    assert_eq!(next.checkpoint.checkpoint.root, reference.root());
    drop(seq);
    task.wait();
}

#[tokio::test]
async fn duplicates_get_their_existing_index() {
    let store = Arc::new(MemoryStore::open(MemoryBackend::new()).unwrap());
    let (seq, task) = start(store.clone(), SequencerConfig::default());
    let first = seq
        .submit(vec![entry(1), entry(2), entry(1)])
        .await
        .unwrap();
    let idx: Vec<(u64, bool)> = first
        .assigned
        .iter()
        .map(|a| (a.index.0, a.duplicate))
        .collect();
    assert_eq!(idx, vec![(0, false), (1, false), (0, true)]);
    assert_eq!(first.checkpoint.checkpoint.size, TreeSize(2));
    let again = seq.submit(vec![entry(2)]).await.unwrap();
    assert_eq!(
        (again.assigned[0].index, again.assigned[0].duplicate),
        (LeafIndex(1), true)
    );
    assert_eq!(
        again.checkpoint.note, first.checkpoint.note,
        "nothing new: the same checkpoint covers it"
    );
    drop(seq);
    task.wait();

    // With de-duplication off, the same bytes are appended again.
    let store = Arc::new(MemoryStore::open(MemoryBackend::new()).unwrap());
    let (seq, task) = start(
        store,
        SequencerConfig {
            dedup: false,
            ..SequencerConfig::default()
        },
    );
    let c = seq.submit(vec![entry(1), entry(1)]).await.unwrap();
    assert_eq!(
        c.assigned.iter().map(|a| a.index.0).collect::<Vec<_>>(),
        vec![0, 1]
    );
    drop(seq);
    task.wait();
}

#[tokio::test]
async fn receipts_are_proved_from_the_batch_the_sequencer_committed() {
    let store = Arc::new(MemoryStore::open(MemoryBackend::new()).unwrap());
    let (seq, reader, task) = open(store, key(), options(SequencerConfig::default())).unwrap();
    let mut next = 0;
    // Batches that start and end inside and at the edges of perfect subtrees.
    for len in [1u64, 1, 2, 5, 8, 13, 64, 3, 200] {
        let committed = seq
            .submit((next..next + len).map(entry).collect())
            .await
            .unwrap();
        next += len;
        let in_memory = committed
            .proofs_in_memory()
            .expect("new entries are proved from the batch's nodes")
            .unwrap();
        assert_eq!(in_memory, reader.receipt_proofs(&committed).unwrap());
        let size = committed.checkpoint.checkpoint.size;
        for (a, proof) in committed.assigned.iter().zip(&in_memory) {
            verify_inclusion(
                &a.leaf_hash,
                a.index,
                size,
                proof,
                &committed.checkpoint.checkpoint.root,
            )
            .unwrap();
        }
    }
    // An entry the log already held needs older nodes: only the store has them.
    let again = seq.submit(vec![entry(3), entry(1000)]).await.unwrap();
    assert!(again.assigned[0].duplicate);
    assert!(again.proofs_in_memory().is_none());
    drop(seq);
    task.wait();
}

// The lock is held on purpose while awaiting: it blocks the sequencer's own thread, not this task.
#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_pushes_back_and_queued_entries_are_group_committed() {
    let store = Arc::new(TestStore::new(
        MemoryStore::open(MemoryBackend::new()).unwrap(),
    ));
    let (seq, task) = start(
        store.clone(),
        SequencerConfig {
            queue_capacity: 4,
            ..SequencerConfig::default()
        },
    );
    let held = store.gate.lock().unwrap();
    // The first submission occupies the sequencer (blocked in its write); four more fill the queue.
    let mut waiting = vec![tokio::spawn({
        let seq = seq.clone();
        async move { seq.submit(vec![entry(0)]).await }
    })];
    tokio::time::sleep(Duration::from_millis(100)).await;
    for i in 1..5 {
        let seq = seq.clone();
        waiting.push(tokio::spawn(
            async move { seq.submit(vec![entry(i)]).await },
        ));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let refused = seq.submit(vec![entry(99)]).await;
    assert!(matches!(refused, Err(Error::QueueFull(4))), "{refused:?}");
    drop(held);
    let mut sizes = Vec::new();
    for w in waiting {
        sizes.push(w.await.unwrap().unwrap().checkpoint.checkpoint.size.0);
    }
    // The four queued submissions went out together in one batch, under one checkpoint.
    assert_eq!(sizes, vec![1, 5, 5, 5, 5]);
    drop(seq);
    task.wait();
}

#[tokio::test]
async fn oversized_submissions_are_refused_before_queueing() {
    let store = Arc::new(MemoryStore::open(MemoryBackend::new()).unwrap());
    let (seq, task) = start(
        store,
        SequencerConfig {
            max_batch_entries: 3,
            max_batch_bytes: 100,
            ..SequencerConfig::default()
        },
    );
    assert!(matches!(
        seq.submit(vec![]).await,
        Err(Error::Request(ref e)) if e.code() == tonic::Code::InvalidArgument
    ));
    assert!(matches!(
        seq.submit((0..4).map(entry).collect()).await,
        Err(Error::Request(ref e)) if e.code() == tonic::Code::InvalidArgument
    ));
    assert!(matches!(
        seq.submit(vec![vec![1; 101]]).await,
        Err(Error::Request(ref e)) if e.code() == tonic::Code::InvalidArgument
    ));
    assert_eq!(seq.latest().checkpoint.size, TreeSize(0));
    drop(seq);
    task.wait();
}

#[tokio::test]
async fn recovery_refuses_a_store_that_disagrees_with_its_signature() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = rocks(dir.path());
        let (seq, task) = start(store, SequencerConfig::default());
        seq.submit((0..300).map(entry).collect()).await.unwrap();
        drop(seq);
        task.wait();
    }
    // Another key (same origin) is refused, naming both keys.
    let other = SignerKey::from_seed(ORIGIN, [8; 32]).unwrap();
    let err = open(
        rocks(dir.path()),
        other,
        options(SequencerConfig::default()),
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("was written with key"), "{err}");

    // A tampered frontier node makes the recomputed root disagree with the signed one. Tile 0/1 holds leaves
    // 256..300 (width 44: rows of 44, 22, 11, 5, 2, 1 hashes); row 5's one hash is the level-5 node over 256..288.
    let store = rocks(dir.path());
    let backend = store.backend();
    let key_bytes = tlog_storage::tile::TileId { level: 0, index: 1 }.key();
    let mut tile = backend
        .get_raw(tlog_storage::Column::Tiles, &key_bytes)
        .unwrap()
        .unwrap();
    tile[(44 + 22 + 11 + 5 + 2) * 32] ^= 1;
    backend
        .put_raw(tlog_storage::Column::Tiles, &key_bytes, &tile)
        .unwrap();
    drop(store);
    let err = open(
        rocks(dir.path()),
        key(),
        options(SequencerConfig::default()),
    )
    .err()
    .unwrap();
    assert!(
        err.to_string().contains("the stored tree nodes give"),
        "{err}"
    );
}

/// Serves the real gRPC service over `store` on a loopback port, as `tlogd` does, and returns a raw client.
async fn grpc<S: LogStore>(
    store: Arc<S>,
    config: SequencerConfig,
) -> (tlog_proto::LogClient<tonic::transport::Channel>, Shutdown) {
    use tlog_server::validate::WriteTokens;
    use tlog_server::{LogService, ServiceLimits};

    let (appender, reader, task) = open(store, key(), options(config)).unwrap();
    let service = LogService::new(
        appender,
        reader,
        ServiceLimits::default(),
        WriteTokens::default(),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(tlog_proto::LogServer::new(service))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let client = tlog_proto::LogClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    (client, task)
}

fn submit_request(i: u64) -> tlog_proto::v1::SubmitRequest {
    tlog_proto::v1::SubmitRequest { entry: entry(i) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_store_is_unavailable_over_grpc_until_it_recovers() {
    let store = Arc::new(TestStore::new(
        MemoryStore::open(MemoryBackend::new()).unwrap(),
    ));
    let (mut rpc, _task) = grpc(store.clone(), SequencerConfig::default()).await;
    rpc.submit(submit_request(0)).await.unwrap();

    store.failing.store(true, Ordering::SeqCst);
    let status = rpc.submit(submit_request(1)).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(status.message().contains("No space left"), "{status:?}");
    // Reads keep working while writes fail.
    let cp = rpc
        .get_checkpoint(tlog_proto::v1::GetCheckpointRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cp.size, 1);

    store.failing.store(false, Ordering::SeqCst);
    let receipt = rpc.submit(submit_request(1)).await.unwrap().into_inner();
    assert_eq!(receipt.index, 1, "no gap after the failure");
}

// The lock is held on purpose while awaiting: it blocks the sequencer's own thread, not this task.
#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_is_resource_exhausted_over_grpc() {
    let store = Arc::new(TestStore::new(
        MemoryStore::open(MemoryBackend::new()).unwrap(),
    ));
    let (rpc, _task) = grpc(
        store.clone(),
        SequencerConfig {
            queue_capacity: 2,
            ..SequencerConfig::default()
        },
    )
    .await;
    let held = store.gate.lock().unwrap();
    // One submission blocks the sequencer in its write, two more fill the queue; the next is pushed back.
    let mut waiting = Vec::new();
    for i in 0..3 {
        let mut rpc = rpc.clone();
        waiting.push(tokio::spawn(
            async move { rpc.submit(submit_request(i)).await },
        ));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = rpc.clone().submit(submit_request(9)).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    drop(held);
    for w in waiting {
        w.await.unwrap().unwrap();
    }
    // Pushback lost nothing: the three accepted entries are in, the refused one is not.
    let cp = rpc
        .clone()
        .get_checkpoint(tlog_proto::v1::GetCheckpointRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cp.size, 3);
}
