//! The sequencer: the one task that owns the tree frontier and the signing key.
//!
//! Submitters send entries through a bounded channel. The sequencer takes everything queued (up to the batch
//! limits), de-duplicates, assigns indices, extends the frontier, signs the new checkpoint and writes entries,
//! index rows, tree nodes and the signed checkpoint in ONE durable store write. Only then does it answer each
//! waiting submitter — so an acknowledged entry is always durable and covered by a signed checkpoint (group
//! commit: an idle log writes a lone entry at once; a busy log's batches grow by themselves).
//!
//! A failed write answers the whole batch with the error and leaves both the store and the in-memory frontier as
//! they were; the signature made for it is dropped unpublished, and the next batch starts from the same state.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use tlog_checkpoint::{Checkpoint, SignedCheckpoint, SignerKey, sign_checkpoint};
use tlog_core::{CompactRange, Hash, LeafIndex, leaf_hash};
use tlog_storage::{AppendBatch, LogStore};
use tokio::sync::{mpsc, oneshot, watch};

use crate::clock::Clock;
use crate::error::{Error, Result};

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
            max_batch_entries: 4096,
            max_batch_bytes: 16 << 20,
            max_delay: Duration::ZERO,
            queue_capacity: 1024,
            dedup: true,
        }
    }
}

/// Builds the hasher of the in-batch de-duplication map. Its keys are SHA-256 leaf hashes, already uniform, so
/// mixing their words with a per-process random key does the job of SipHash (a tenth of the sequencer's CPU at
/// batch 4096) for much less; the key keeps anyone from grinding entries into one bucket.
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
}

struct Submission {
    entries: Vec<Vec<u8>>,
    bytes: usize,
    reply: oneshot::Sender<Result<Committed>>,
}

/// A queued submission's answer, to be awaited.
pub struct Pending(oneshot::Receiver<Result<Committed>>);

impl Pending {
    /// Waits until the submission is durable and signed (or failed).
    pub async fn wait(self) -> Result<Committed> {
        self.0.await.map_err(|_| Error::Closed)?
    }
}

/// The submitters' side of the sequencer; cheap to clone.
#[derive(Clone)]
pub struct SequencerHandle {
    tx: mpsc::Sender<Submission>,
    latest: watch::Receiver<Arc<SignedCheckpoint>>,
    max_batch_entries: usize,
    max_batch_bytes: usize,
    queue_capacity: usize,
}

impl SequencerHandle {
    /// Queues entries as one unit (they get consecutive indices unless de-duplicated) and waits until they are
    /// durable and signed. Fails fast with [`Error::QueueFull`] instead of queueing without bound.
    pub async fn submit(&self, entries: Vec<Vec<u8>>) -> Result<Committed> {
        self.enqueue(entries)?.wait().await
    }

    /// Queues entries now, without waiting: submissions enqueued one after another are sequenced in that order.
    pub fn enqueue(&self, entries: Vec<Vec<u8>>) -> Result<Pending> {
        let bytes: usize = entries.iter().map(Vec::len).sum();
        if entries.is_empty() {
            return Err(Error::InvalidArgument("no entries to submit".into()));
        }
        if entries.len() > self.max_batch_entries || bytes > self.max_batch_bytes {
            return Err(Error::InvalidArgument(format!(
                "{} entries of {bytes} bytes exceed the batch limit of {} entries / {} bytes",
                entries.len(),
                self.max_batch_entries,
                self.max_batch_bytes
            )));
        }
        let (reply, answer) = oneshot::channel();
        self.tx
            .try_send(Submission {
                entries,
                bytes,
                reply,
            })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => Error::QueueFull(self.queue_capacity),
                mpsc::error::TrySendError::Closed(_) => Error::Closed,
            })?;
        Ok(Pending(answer))
    }

    /// The newest signed checkpoint.
    pub fn latest(&self) -> Arc<SignedCheckpoint> {
        self.latest.borrow().clone()
    }

    /// A receiver that sees every newly published checkpoint.
    pub fn subscribe(&self) -> watch::Receiver<Arc<SignedCheckpoint>> {
        self.latest.clone()
    }
}

/// The sequencer's state: the only owner of the frontier and the signing key.
pub struct Sequencer<S> {
    store: Arc<S>,
    key: SignerKey,
    origin: String,
    clock: Arc<dyn Clock>,
    frontier: CompactRange,
    latest: Arc<SignedCheckpoint>,
    config: SequencerConfig,
    hashing: LeafHashing,
}

/// A running sequencer thread; dropping every [`SequencerHandle`] lets it finish the batch in flight and stop.
pub struct SequencerTask {
    thread: Option<thread::JoinHandle<()>>,
}

impl SequencerTask {
    /// Waits until the sequencer has written its last batch and stopped.
    pub fn join(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl<S: LogStore> Sequencer<S> {
    /// A sequencer continuing from a recovered state (see [`crate::log::open_log`]).
    pub fn new(
        store: Arc<S>,
        key: SignerKey,
        clock: Arc<dyn Clock>,
        frontier: CompactRange,
        latest: SignedCheckpoint,
        config: SequencerConfig,
    ) -> Self {
        let origin = latest.checkpoint.origin.clone();
        Sequencer {
            store,
            key,
            origin,
            clock,
            frontier,
            latest: Arc::new(latest),
            config,
            hashing: LeafHashing::new(),
        }
    }

    /// Starts the sequencer on its own thread (its blocking, fsync-bound writes never stall the gRPC workers).
    pub fn spawn(self) -> Result<(SequencerHandle, SequencerTask)> {
        let (tx, rx) = mpsc::channel(self.config.queue_capacity.max(1));
        let (latest_tx, latest_rx) = watch::channel(self.latest.clone());
        let handle = SequencerHandle {
            tx,
            latest: latest_rx,
            max_batch_entries: self.config.max_batch_entries,
            max_batch_bytes: self.config.max_batch_bytes,
            queue_capacity: self.config.queue_capacity,
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
        Ok((
            handle,
            SequencerTask {
                thread: Some(thread),
            },
        ))
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
                    Some(s) => s,
                    None => return,
                },
            };
            let mut batch = vec![first];
            let (mut entries, mut bytes) = (batch[0].entries.len(), batch[0].bytes);
            let deadline = tokio::time::Instant::now() + self.config.max_delay;
            loop {
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
                if entries + next.entries.len() > self.config.max_batch_entries
                    || bytes + next.bytes > self.config.max_batch_bytes
                {
                    carried = Some(next);
                    break;
                }
                entries += next.entries.len();
                bytes += next.bytes;
                batch.push(next);
            }
            self.process(batch, &latest_tx);
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
        for s in batch {
            replies.push((s.reply, s.entries.len()));
            entries.extend(s.entries);
        }
        let outcome = self.sequence(entries);
        let mut assigned = match outcome {
            Ok((assigned, checkpoint)) => {
                if !Arc::ptr_eq(&checkpoint, &self.latest) {
                    self.latest = checkpoint;
                    latest_tx.send_replace(self.latest.clone());
                }
                assigned.into_iter()
            }
            Err(e) => {
                // Every submitter of the batch gets the same answer; storage failures are retryable.
                let message = e.to_string();
                let retryable = matches!(e, Error::Store(tlog_storage::StoreError::Backend(_)));
                for (reply, _) in replies {
                    let _ = reply.send(Err(if retryable {
                        Error::Unavailable(message.clone())
                    } else {
                        Error::Internal(message.clone())
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
            }));
        }
    }

    /// Assigns indices, writes and signs. On error nothing changed (store, frontier, latest checkpoint).
    fn sequence(
        &mut self,
        entries: Vec<Vec<u8>>,
    ) -> Result<(Vec<Assigned>, Arc<SignedCheckpoint>)> {
        let hashes: Vec<Hash> = entries.iter().map(|e| leaf_hash(e)).collect();
        let existing = if self.config.dedup {
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
        for ((entry, hash), old) in entries.into_iter().zip(hashes).zip(existing) {
            let earlier = old.or_else(|| {
                if self.config.dedup {
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
            assigned.push(Assigned {
                index,
                leaf_hash: hash,
                duplicate: false,
            });
            batch.entries.push(entry);
            batch.leaf_hashes.push(hash);
        }
        if batch.entries.is_empty() {
            // Everything was already in the log: the current checkpoint covers it.
            return Ok((assigned, self.latest.clone()));
        }

        let mut frontier = self.frontier.clone();
        frontier.extend(batch.leaf_hashes.iter().copied(), |id, h| {
            batch.nodes.push((id, h))
        })?;
        // Checkpoint times never go backwards, even if the clock does.
        let timestamp = self.clock.now_unix().max(self.latest.timestamp);
        let checkpoint = Checkpoint::new(self.origin.clone(), frontier.size(), frontier.root())?;
        let signed = sign_checkpoint(&self.key, &checkpoint, timestamp)?;
        batch.checkpoint = signed.note.clone().into_bytes();
        self.store.append(&batch)?;

        self.frontier = frontier;
        Ok((assigned, Arc::new(signed)))
    }
}
