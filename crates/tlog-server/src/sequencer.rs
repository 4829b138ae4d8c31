//! The sequencer: the one task that owns the tree frontier and the signing key.
//!
//! Submitters send entries through a bounded channel. The sequencer takes everything queued (up to the batch
//! limits), de-duplicates, assigns indices, extends the frontier, signs the new checkpoint and writes entries,
//! index rows, tree nodes and the signed checkpoint in ONE durable store write. Only then does it answer each
//! waiting submitter — so an acknowledged entry is always durable and covered by a signed checkpoint (group
//! commit: an idle log writes a lone entry at once; a busy log's batches grow by themselves).
//!
//! A failed write answers the whole batch with the error and leaves the in-memory frontier as it was; the
//! signature made for it is dropped unpublished, and the next batch starts from the same state. Whether the
//! failed batch reached the disk is not known after an I/O error (a failed fsync may or may not have written
//! it): RocksDB then refuses every later write until the database is reopened, so no batch is ever written on
//! top of one whose fate is unknown, and a restart recovers whatever the disk holds (see SECURITY.md, "A failing
//! disk"). Refusals before anything is written (the free-space reserve) leave the store as it was.
//!
//! The answer carries the nodes the batch completed and the frontier it extended ([`BatchNodes`]): every
//! inclusion proof of a new entry at the batch's size is made of those, so receipts need no read of the store.
//!
//! Submissions are checked once, by [`Appender::enqueue`] with the [`validate`](crate::validate) rules; the
//! sequencer itself relies on that.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use tlog_checkpoint::{Checkpoint, MAX_TIMESTAMP, SignedCheckpoint, SignerKey, sign_checkpoint};
use tlog_core::{
    CompactRange, Hash, LeafIndex, NodeId, inclusion_proofs_from_multi, leaf_hash,
    multi_inclusion_plan, range_nodes,
};
use tlog_storage::{AppendBatch, LogStore};
use tokio::sync::{mpsc, oneshot, watch};

use crate::clock::Clock;
use crate::error::{Error, Result, StoreFailure, store_failure};
use crate::log::Recovered;
use crate::metrics::Metrics;
use crate::private::{self, Opening, Vault, VaultBatch};
use crate::validate::{self, DEFAULT_MAX_REQUEST_BYTES, DEFAULT_MAX_REQUEST_ENTRIES, RequestError};

/// Submissions that may wait for the sequencer by default.
pub const DEFAULT_QUEUE_CAPACITY: usize = 1024;

/// Batching and queueing limits of the sequencer.
#[derive(Clone, Debug)]
pub struct SequencerConfig {
    /// Most entries written in one batch (one synced write, one signature).
    pub max_batch_entries: usize,
    /// Most entry bytes written in one batch.
    pub max_batch_bytes: usize,
    /// How long a batch may wait for more submissions after the first one arrived (0: write at once).
    pub max_delay: Duration,
    /// Submissions (requests) that may wait in the queue; beyond it submitters get [`Error::QueueFull`].
    pub queue_capacity: usize,
    /// Give an entry already in the log its existing index instead of appending it again.
    pub dedup: bool,
}

impl Default for SequencerConfig {
    fn default() -> Self {
        SequencerConfig {
            max_batch_entries: DEFAULT_MAX_REQUEST_ENTRIES,
            max_batch_bytes: DEFAULT_MAX_REQUEST_BYTES,
            max_delay: Duration::ZERO,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            dedup: true,
        }
    }
}

/// What one submission may hold; checked by [`Appender::enqueue`] before it is queued.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SubmissionLimits {
    pub max_entry_bytes: usize,
    /// At most the sequencer's batch size, so every accepted submission fits in one batch.
    pub max_request_entries: usize,
    /// The sequencer's batch byte limit.
    pub max_request_bytes: usize,
}

/// Builds the hasher of the in-batch de-duplication map. Its keys are SHA-256 leaf hashes, already uniform, so
/// mixing their words with a per-process random key does the job of SipHash (see BENCHMARKS.md for its cost) for
/// much less; the key keeps anyone from grinding entries into one bucket.
#[derive(Clone, Copy)]
struct LeafHashing(u64);

impl LeafHashing {
    fn new() -> Self {
        LeafHashing(RandomState::new().hash_one(0x746c_6f67_u64))
    }
}

impl BuildHasher for LeafHashing {
    type Hasher = LeafHasher;
    fn build_hasher(&self) -> LeafHasher {
        LeafHasher(self.0)
    }
}

struct LeafHasher(u64);

impl Hasher for LeafHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0 ^ u64::from_le_bytes(word))
                .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                .rotate_left(31);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Where one submitted entry ended up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Assigned {
    pub index: LeafIndex,
    pub leaf_hash: Hash,
    /// The entry was already in the log; `index` is its earlier position.
    pub duplicate: bool,
}

/// The answer to a submission: one [`Assigned`] per entry, in order, and the signed checkpoint covering them all.
#[derive(Clone, Debug)]
pub struct Committed {
    pub assigned: Vec<Assigned>,
    pub checkpoint: Arc<SignedCheckpoint>,
    /// The nodes of the batch that wrote the entries (none when every entry was already in the log).
    pub(crate) nodes: Option<Arc<BatchNodes>>,
    /// For an erasure ([`Appender::erase`]): the time in its erasure entry, Unix seconds.
    pub erased_at: Option<u64>,
}

impl Committed {
    /// The distinct entries of the submission, by increasing index, with their leaf hashes: what its multiproof
    /// proves (an entry submitted twice, or already in the log, shares its index).
    pub fn proven_leaves(&self) -> Vec<(LeafIndex, Hash)> {
        let mut leaves: Vec<(LeafIndex, Hash)> = self
            .assigned
            .iter()
            .map(|a| (a.index, a.leaf_hash))
            .collect();
        leaves.sort_unstable_by_key(|(index, _)| *index);
        leaves.dedup_by_key(|(index, _)| *index);
        leaves
    }

    /// The multiproof of [`proven_leaves`](Self::proven_leaves) against [`checkpoint`](Self::checkpoint), from
    /// the nodes the sequencer held; `None` when it needs a node older than the batch (an entry the log already
    /// held), which only the store has.
    pub fn multiproof_in_memory(&self, leaves: &[(LeafIndex, Hash)]) -> Option<Result<Vec<Hash>>> {
        let nodes = self.nodes.as_ref()?;
        let indices: Vec<LeafIndex> = leaves.iter().map(|(index, _)| *index).collect();
        let plan = match multi_inclusion_plan(&indices, self.checkpoint.checkpoint.size) {
            Ok(plan) => plan,
            Err(e) => return Some(Err(e.into())),
        };
        let hashes = plan
            .node_ids()
            .iter()
            .map(|id| nodes.get(*id))
            .collect::<Option<Vec<Hash>>>()?;
        Some(plan.build(&hashes).map_err(Into::into))
    }

    /// Each entry's inclusion proof against [`checkpoint`](Self::checkpoint), in submission order, expanded from
    /// the multiproof of `leaves` (as [`proven_leaves`](Self::proven_leaves) gives them).
    pub fn proofs_from_multi(
        &self,
        leaves: &[(LeafIndex, Hash)],
        multiproof: &[Hash],
    ) -> Result<Vec<Vec<Hash>>> {
        let proofs =
            inclusion_proofs_from_multi(self.checkpoint.checkpoint.size, leaves, multiproof)
                .map_err(tlog_core::CoreError::from)?;
        // Usually each entry is new, in order: the proofs are already in submission order.
        let in_order = self.assigned.len() == leaves.len()
            && self
                .assigned
                .iter()
                .zip(leaves)
                .all(|(a, (index, _))| a.index == *index);
        if in_order {
            return Ok(proofs);
        }
        Ok(self
            .assigned
            .iter()
            .map(|a| {
                // Every assigned index is among the leaves: they were made from them.
                let at = leaves.partition_point(|(index, _)| *index < a.index);
                proofs[at].clone()
            })
            .collect())
    }

    /// Inclusion proofs of every entry against [`checkpoint`](Self::checkpoint), from the nodes the sequencer
    /// held; `None` when some proof needs a node older than the batch, which only the store has.
    pub fn proofs_in_memory(&self) -> Option<Result<Vec<Vec<Hash>>>> {
        let leaves = self.proven_leaves();
        Some(
            self.multiproof_in_memory(&leaves)?
                .and_then(|multi| self.proofs_from_multi(&leaves, &multi)),
        )
    }
}

/// The tree nodes one batch's inclusion proofs are made of: the frontier the batch extended (the perfect subtrees
/// left of its first entry) and every node the batch completed, leaves included. Shared by every submitter of
/// the batch; the lookup table is built by the first one that needs it, not on the sequencer's thread.
#[derive(Debug)]
pub(crate) struct BatchNodes {
    frontier: Vec<(NodeId, Hash)>,
    completed: Vec<(NodeId, Hash)>,
    by_id: OnceLock<HashMap<NodeId, Hash>>,
}

impl BatchNodes {
    fn get(&self, id: NodeId) -> Option<Hash> {
        self.by_id
            .get_or_init(|| {
                self.frontier
                    .iter()
                    .chain(&self.completed)
                    .copied()
                    .collect()
            })
            .get(&id)
            .copied()
    }
}

struct Submission {
    entries: Vec<Vec<u8>>,
    bytes: usize,
    reply: oneshot::Sender<Result<Committed>>,
    /// Private submissions: the opening of each entry, in order (empty for public entries).
    openings: Vec<Opening>,
    /// An erasure of this subject; its entry is made by the sequencer (`entries` is empty). Sequenced in a batch
    /// of its own.
    erase: Option<Vec<u8>>,
}

/// A queued submission's answer, to be awaited.
pub struct Pending(oneshot::Receiver<Result<Committed>>);

impl Pending {
    /// Waits until the submission is durable and signed (or failed).
    pub async fn wait(self) -> Result<Committed> {
        self.0.await.map_err(|_| Error::Closed)?
    }
}

/// The submitters' side of the log (the sequencer's queue); cheap to clone. The sequencer stops once every
/// `Appender` is dropped, after writing what was queued.
#[derive(Clone)]
pub struct Appender {
    tx: mpsc::Sender<Submission>,
    latest: watch::Receiver<Arc<SignedCheckpoint>>,
    limits: SubmissionLimits,
    queue_capacity: usize,
    metrics: Metrics,
    /// Set on a read replica's appender: every submission is refused with [`Error::ReadReplica`] naming it.
    read_only_of: Option<Arc<str>>,
}

impl Appender {
    /// The appender of a read replica of `primary`: it queues nothing (no sequencer runs behind it) and refuses
    /// every submission with [`Error::ReadReplica`], so the service and the HTTP ingestion routes answer writes
    /// with one clear status; `latest` is the replica's newest adopted checkpoint.
    pub(crate) fn read_only(latest: watch::Receiver<Arc<SignedCheckpoint>>, primary: &str) -> Self {
        // A closed queue: nothing can be sent even if a caller skipped the refusal.
        let (tx, _) = mpsc::channel(1);
        Appender {
            tx,
            latest,
            limits: SubmissionLimits {
                max_entry_bytes: validate::DEFAULT_MAX_ENTRY_BYTES,
                max_request_entries: DEFAULT_MAX_REQUEST_ENTRIES,
                max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            },
            queue_capacity: 0,
            metrics: Metrics::new(),
            read_only_of: Some(primary.into()),
        }
    }

    /// Queues entries as one unit (they get consecutive indices unless de-duplicated) and waits until they are
    /// durable and signed. Fails fast with [`Error::QueueFull`] instead of queueing without bound.
    pub async fn submit(&self, entries: Vec<Vec<u8>>) -> Result<Committed> {
        self.enqueue(entries)?.wait().await
    }

    /// Checks entries against the log's limits and queues them now, without waiting: submissions enqueued one
    /// after another are sequenced in that order.
    pub fn enqueue(&self, entries: Vec<Vec<u8>>) -> Result<Pending> {
        if let Some(primary) = &self.read_only_of {
            return Err(Error::ReadReplica {
                primary: primary.clone(),
            });
        }
        let limits = &self.limits;
        let metrics = self.metrics.sequencer();
        let bytes: usize = entries.iter().map(Vec::len).sum();
        validate::check_entries(&entries, limits.max_request_entries, limits.max_entry_bytes)
            .and_then(|()| validate::check_request_bytes(bytes, limits.max_request_bytes))
            .inspect_err(|_| {
                metrics.rejected_invalid.inc();
            })?;
        self.send(entries, bytes, Vec::new(), None)
    }

    /// Queues private payloads `(subject, payload)`: each becomes a private entry committing to it under a fresh
    /// salt, and the sequencer stores the payload sealed with the entry (see [`crate::private`]).
    pub fn enqueue_private(&self, items: Vec<(Vec<u8>, Vec<u8>)>) -> Result<Pending> {
        let limits = &self.limits;
        let metrics = self.metrics.sequencer();
        let mut entries = Vec::with_capacity(items.len());
        let mut openings = Vec::with_capacity(items.len());
        let mut bytes = 0;
        let checked = (|| {
            if items.is_empty() {
                return Err(RequestError::NoEntries.into());
            }
            for (index, (subject, payload)) in items.into_iter().enumerate() {
                if payload.len() > limits.max_entry_bytes {
                    return Err(RequestError::EntryTooLarge {
                        index,
                        len: payload.len(),
                        limit: limits.max_entry_bytes,
                    }
                    .into());
                }
                let (entry, opening) = private::commit(&subject, payload)?;
                bytes += entry.len() + opening.payload.len();
                entries.push(entry);
                openings.push(opening);
            }
            validate::check_entries(&entries, limits.max_request_entries, limits.max_entry_bytes)?;
            validate::check_request_bytes(bytes, limits.max_request_bytes)?;
            Ok(())
        })();
        if let Err(e) = checked {
            metrics.rejected_invalid.inc();
            return Err(e);
        }
        self.send(entries, bytes, openings, None)
    }

    /// Erases `subject` (crypto-shredding, see [`crate::private`]) and waits until its erasure entry is durable and
    /// signed; [`Committed::erased_at`] says when. The store still has to purge the deleted rows from its files
    /// ([`LogStore::purge_erased`]).
    pub async fn erase(&self, subject: Vec<u8>) -> Result<Committed> {
        tlog_core::private::check_subject(&subject).map_err(private::PrivateError::from)?;
        self.send(Vec::new(), 0, Vec::new(), Some(subject))?
            .wait()
            .await
    }

    fn send(
        &self,
        entries: Vec<Vec<u8>>,
        bytes: usize,
        openings: Vec<Opening>,
        erase: Option<Vec<u8>>,
    ) -> Result<Pending> {
        let metrics = self.metrics.sequencer();
        let (reply, answer) = oneshot::channel();
        // Counted before the send so the sequencer's decrement never comes first.
        metrics.queue_depth.inc();
        self.tx
            .try_send(Submission {
                entries,
                bytes,
                reply,
                openings,
                erase,
            })
            .map_err(|e| {
                metrics.queue_depth.dec();
                match e {
                    mpsc::error::TrySendError::Full(_) => {
                        metrics.rejected_queue_full.inc();
                        Error::QueueFull(self.queue_capacity)
                    }
                    mpsc::error::TrySendError::Closed(_) => Error::Closed,
                }
            })?;
        Ok(Pending(answer))
    }

    /// What one submission may hold.
    pub(crate) fn limits(&self) -> SubmissionLimits {
        self.limits
    }

    /// The newest signed checkpoint.
    pub fn latest(&self) -> Arc<SignedCheckpoint> {
        self.latest.borrow().clone()
    }

    /// A receiver of every newly published checkpoint (the reader's view of the sequencer).
    pub(crate) fn watch(&self) -> watch::Receiver<Arc<SignedCheckpoint>> {
        self.latest.clone()
    }
}

/// The sequencer's state: the only owner of the frontier and the signing key.
pub(crate) struct Sequencer<S> {
    store: Arc<S>,
    key: SignerKey,
    origin: String,
    clock: Arc<dyn Clock>,
    frontier: CompactRange,
    latest: Arc<SignedCheckpoint>,
    config: SequencerConfig,
    hashing: LeafHashing,
    /// Whether the last batch was refused for a full disk: the log says so once when it happens and once when
    /// writes resume, not at every refused batch.
    disk_full: bool,
    metrics: Metrics,
    /// Data keys of private payloads; `None` when the log has no key wrapper (private submissions refused).
    vault: Option<Vault>,
}

impl<S: LogStore> Sequencer<S> {
    /// Starts a sequencer continuing from a recovered state on its own thread (its blocking, fsync-bound writes
    /// never stall the gRPC workers). Only [`crate::log::open`] calls this.
    // The log's parts, each owned from here on by the sequencer thread; a struct for them would only be unpacked.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn spawn(
        store: Arc<S>,
        key: SignerKey,
        clock: Arc<dyn Clock>,
        recovered: Recovered,
        config: SequencerConfig,
        limits: SubmissionLimits,
        metrics: Metrics,
        vault: Option<Vault>,
    ) -> Result<(Appender, thread::JoinHandle<()>)> {
        let latest = Arc::new(recovered.latest);
        let sequencer = Sequencer {
            store,
            key,
            origin: latest.checkpoint.origin.clone(),
            clock,
            frontier: recovered.frontier,
            latest,
            config,
            hashing: LeafHashing::new(),
            disk_full: false,
            metrics,
            vault,
        };
        sequencer.start(limits)
    }

    fn start(self, limits: SubmissionLimits) -> Result<(Appender, thread::JoinHandle<()>)> {
        let (tx, rx) = mpsc::channel(self.config.queue_capacity.max(1));
        let (latest_tx, latest_rx) = watch::channel(self.latest.clone());
        let handle = Appender {
            tx,
            latest: latest_rx,
            limits,
            queue_capacity: self.config.queue_capacity,
            metrics: self.metrics.clone(),
            read_only_of: None,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|source| Error::Io {
                context: "starting the sequencer runtime".into(),
                source,
            })?;
        let thread = thread::Builder::new()
            .name("tlog-sequencer".into())
            .spawn(move || runtime.block_on(self.run(rx, latest_tx)))
            .map_err(|source| Error::Io {
                context: "starting the sequencer thread".into(),
                source,
            })?;
        Ok((handle, thread))
    }

    async fn run(
        mut self,
        mut rx: mpsc::Receiver<Submission>,
        latest_tx: watch::Sender<Arc<SignedCheckpoint>>,
    ) {
        let mut carried: Option<Submission> = None;
        loop {
            let first = match carried.take() {
                Some(s) => s,
                None => match rx.recv().await {
                    Some(s) => {
                        self.metrics.sequencer().queue_depth.dec();
                        s
                    }
                    None => return,
                },
            };
            // An erasure is a batch of its own: what it deletes is then simply everything stored before it.
            let alone = first.erase.is_some();
            let mut batch = vec![first];
            let (mut entries, mut bytes) = (batch[0].entries.len(), batch[0].bytes);
            let deadline = tokio::time::Instant::now() + self.config.max_delay;
            loop {
                if alone {
                    break;
                }
                let next = match rx.try_recv() {
                    Ok(s) => s,
                    Err(mpsc::error::TryRecvError::Empty) if !self.config.max_delay.is_zero() => {
                        match tokio::time::timeout_at(deadline, rx.recv()).await {
                            Ok(Some(s)) => s,
                            _ => break,
                        }
                    }
                    Err(_) => break,
                };
                self.metrics.sequencer().queue_depth.dec();
                if entries + next.entries.len() > self.config.max_batch_entries
                    || bytes + next.bytes > self.config.max_batch_bytes
                    || next.erase.is_some()
                {
                    carried = Some(next);
                    break;
                }
                entries += next.entries.len();
                bytes += next.bytes;
                batch.push(next);
            }
            let started = Instant::now();
            self.process(batch, &latest_tx);
            self.metrics
                .sequencer()
                .busy_seconds
                .inc_by(started.elapsed().as_secs_f64());
        }
    }

    /// Sequences one batch of submissions and answers them.
    fn process(
        &mut self,
        batch: Vec<Submission>,
        latest_tx: &watch::Sender<Arc<SignedCheckpoint>>,
    ) {
        let mut replies = Vec::with_capacity(batch.len());
        let mut entries = Vec::new();
        let mut openings: Vec<Option<Opening>> = Vec::new();
        let mut erasure = None;
        for s in batch {
            if let Err(e) = self.admit(&s) {
                let _ = s.reply.send(Err(e));
                continue;
            }
            let private = !s.openings.is_empty();
            let mut n = s.entries.len();
            if private {
                openings.resize_with(entries.len(), || None);
                openings.extend(s.openings.into_iter().map(Some));
            }
            entries.extend(s.entries);
            if let Some(subject) = s.erase {
                // Checkpoint times never go backwards, and neither do erasure times.
                let at = self.clock.now_unix().max(self.latest.timestamp);
                match private::erasure_entry(&subject, at) {
                    Ok(entry) => {
                        entries.push(entry);
                        erasure = Some((subject, at));
                        n = 1;
                    }
                    Err(e) => {
                        let _ = s.reply.send(Err(e.into()));
                        continue;
                    }
                }
            }
            replies.push((s.reply, n));
        }
        if replies.is_empty() {
            return;
        }
        openings.resize_with(entries.len(), || None);
        let erased_at = erasure.as_ref().map(|(_, at)| *at);
        let outcome = self.sequence(entries, openings, erasure);
        let (mut assigned, nodes) = match outcome {
            Ok((assigned, checkpoint, nodes)) => {
                if std::mem::take(&mut self.disk_full) {
                    tracing::info!("disk space available again: writes resumed");
                }
                if !Arc::ptr_eq(&checkpoint, &self.latest) {
                    self.latest = checkpoint;
                    latest_tx.send_replace(self.latest.clone());
                }
                (assigned.into_iter(), nodes)
            }
            Err(e) => {
                let full = matches!(&e, Error::Store(s) if store_failure(s) == StoreFailure::Full);
                if full && !self.disk_full {
                    tracing::warn!(error = %e, "disk full: writes refused until space is freed; reads go on");
                }
                self.disk_full = full;
                self.metrics.sequencer().batch_failures.inc();
                // Every submitter of the batch gets the same answer; storage failing is retryable.
                let shared = match e {
                    Error::Store(e)
                        if matches!(
                            store_failure(&e),
                            StoreFailure::Transient | StoreFailure::Full
                        ) =>
                    {
                        Ok(Arc::new(e))
                    }
                    other => Err(Arc::new(other)),
                };
                for (reply, _) in replies {
                    let _ = reply.send(Err(match &shared {
                        Ok(e) => Error::Unavailable(e.clone()),
                        Err(e) => Error::BatchFailed(e.clone()),
                    }));
                }
                return;
            }
        };
        for (reply, n) in replies {
            let mine: Vec<Assigned> = assigned.by_ref().take(n).collect();
            let _ = reply.send(Ok(Committed {
                assigned: mine,
                checkpoint: self.latest.clone(),
                nodes: nodes.clone(),
                erased_at,
            }));
        }
    }

    /// Whether a private submission or an erasure may go into the batch: the log takes private payloads, and
    /// their subject is not erased.
    fn admit(&mut self, s: &Submission) -> Result<()> {
        if s.openings.is_empty() && s.erase.is_none() {
            return Ok(());
        }
        let vault = self
            .vault
            .as_mut()
            .ok_or(private::PrivateError::NotConfigured)?;
        for subject in s
            .openings
            .iter()
            .map(|o| &o.subject)
            .chain(s.erase.as_ref())
        {
            vault.check_not_erased(self.store.as_ref(), subject)?;
        }
        Ok(())
    }

    /// Assigns indices, writes and signs. On error nothing changed (store, frontier, latest checkpoint).
    #[allow(clippy::type_complexity)]
    fn sequence(
        &mut self,
        entries: Vec<Vec<u8>>,
        openings: Vec<Option<Opening>>,
        erasure: Option<(Vec<u8>, u64)>,
    ) -> Result<(
        Vec<Assigned>,
        Arc<SignedCheckpoint>,
        Option<Arc<BatchNodes>>,
    )> {
        let hashes: Vec<Hash> = entries.iter().map(|e| leaf_hash(e)).collect();
        // An erasure entry is always appended: the deletions it carries must be written.
        let dedup = self.config.dedup && erasure.is_none();
        let existing = if dedup {
            self.store.leaf_indices(&hashes)?
        } else {
            vec![None; hashes.len()]
        };

        let start = self.frontier.size();
        let mut next = start.0;
        let mut in_batch: HashMap<Hash, LeafIndex, LeafHashing> =
            HashMap::with_capacity_and_hasher(entries.len(), self.hashing);
        let mut assigned = Vec::with_capacity(entries.len());
        let mut batch = AppendBatch {
            start,
            ..AppendBatch::default()
        };
        let mut vault_batch = VaultBatch::default();
        for (((entry, hash), old), opening) in
            entries.into_iter().zip(hashes).zip(existing).zip(openings)
        {
            let earlier = old.or_else(|| {
                if dedup {
                    in_batch.get(&hash).copied()
                } else {
                    None
                }
            });
            if let Some(index) = earlier {
                assigned.push(Assigned {
                    index,
                    leaf_hash: hash,
                    duplicate: true,
                });
                continue;
            }
            let index = LeafIndex(next);
            next += 1;
            in_batch.insert(hash, index);
            if let Some(opening) = opening {
                let vault = self
                    .vault
                    .as_mut()
                    .ok_or(private::PrivateError::NotConfigured)?;
                let row = vault.seal(
                    self.store.as_ref(),
                    &mut vault_batch,
                    &opening,
                    index,
                    &hash,
                    &mut batch.subject_keys,
                )?;
                batch.payloads.push(row);
            }
            assigned.push(Assigned {
                index,
                leaf_hash: hash,
                duplicate: false,
            });
            batch.entries.push(entry);
            batch.leaf_hashes.push(hash);
        }
        let metrics = self.metrics.sequencer();
        let new = batch.entries.len() as u64;
        let duplicates = assigned.len() as u64 - new;
        if batch.entries.is_empty() {
            // Everything was already in the log: the current checkpoint covers it.
            metrics.duplicates.inc_by(duplicates);
            return Ok((assigned, self.latest.clone(), None));
        }

        if let Some((subject, at)) = erasure {
            // The key record becomes the tombstone and every payload row goes, with the erasure entry.
            let index = start;
            batch.subject_keys.push((
                subject.clone(),
                private::KeyRecord::Erased {
                    at,
                    index: LeafIndex(index.0),
                }
                .encode(),
            ));
            batch.erase_payloads_of.push(subject.clone());
            Vault::erase(&mut vault_batch, &subject, at, LeafIndex(index.0));
        }

        let mut frontier = self.frontier.clone();
        frontier.extend(batch.leaf_hashes.iter().copied(), |id, h| {
            batch.nodes.push((id, h))
        })?;
        // Checkpoint times never go backwards, even if the clock does; a clock beyond the largest time a
        // cosignature can carry is read as that time instead of stopping the log.
        let timestamp = self
            .clock
            .now_unix()
            .min(MAX_TIMESTAMP)
            .max(self.latest.timestamp);
        let checkpoint = Checkpoint::new(self.origin.clone(), frontier.size(), frontier.root())?;
        let signed = sign_checkpoint(&self.key, &checkpoint, timestamp)?;
        batch.checkpoint = signed.note.clone().into_bytes();
        let commit = Instant::now();
        self.store.append(&batch)?;
        if let Some(vault) = self.vault.as_mut() {
            vault.commit(vault_batch);
        }
        metrics
            .commit_seconds
            .observe(commit.elapsed().as_secs_f64());
        metrics.entries.inc_by(new);
        metrics.duplicates.inc_by(duplicates);
        metrics
            .bytes
            .inc_by(batch.entries.iter().map(|e| e.len() as u64).sum());
        metrics.batches.inc();
        metrics.batch_entries.observe(new as f64);

        let nodes = BatchNodes {
            frontier: range_nodes(0, start.0)
                .into_iter()
                .zip(self.frontier.hashes().iter().copied())
                .collect(),
            completed: batch.nodes,
            by_id: OnceLock::new(),
        };
        self.frontier = frontier;
        Ok((assigned, Arc::new(signed), Some(Arc::new(nodes))))
    }
}
