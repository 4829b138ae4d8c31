//! The `tlog.v1.Log` gRPC service: thin. It checks what only the request can tell ([`crate::validate`]: tokens,
//! ranges, the leaf), hands the work to its owner (the [`Appender`] for writes; the [`LogReader`] for reads, from
//! memory on the async worker or, when a read would wait for the disk, on the blocking pool) and maps every error
//! to a gRPC status in one function, [`status`].

// gRPC handlers and their helpers answer with tonic's `Status`, whatever its size.
#![allow(clippy::result_large_err)]

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tlog_checkpoint::SignedCheckpoint as Signed;
use tlog_core::{Hash, LeafIndex, TreeSize};
use tlog_proto::v1::{
    ConsistencyProof, EntriesPage, EraseSubjectRequest, EraseSubjectResponse, GetCheckpointRequest,
    GetConsistencyProofRequest, GetEntriesRequest, GetInclusionProofRequest, GetMultiProofRequest,
    GetPrivatePayloadRequest, InclusionProof, MultiProof, PrivatePayloadOpening, Receipt,
    SignedCheckpoint, SubmitBatchRequest, SubmitBatchResponse, SubmitPrivateRequest, SubmitRequest,
    WatchCheckpointsRequest,
};
use tlog_proto::{Log, hash_to_bytes, hashes_to_bytes};
use tlog_storage::{LogStore, ReadTier, StoreError};
use tokio::sync::{mpsc, watch};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Request, Response, Status, Streaming};

use crate::archiving::ArchiveGate;
use crate::error::{Error, Result};
use crate::log::{Appender, Committed, LogReader, Pending};
use crate::metrics::{Metrics, ProofKind};
use crate::private::{self, KeyWrapper};
use crate::read_pool::{DEFAULT_READ_THREADS, ReadPool};
use crate::reader::answered;
use crate::validate::{self, LeafRef, RequestError, Scope, WriteTokens};

/// Most entries one `GetEntries` call may ask for by default (served in pages).
pub const DEFAULT_MAX_ENTRIES_RANGE: u64 = 1_000_000;
/// Longest a `GetCheckpoint{min_size}` call waits by default.
pub const DEFAULT_MAX_CHECKPOINT_WAIT: Duration = Duration::from_secs(30);
/// Most leaf indices one `GetMultiProof` call may ask for by default. Its answer then stays well under the default
/// message size limit: at most about `32 * indices * log2(size / indices)` bytes of hashes, under 10 MiB for this
/// many indices in a tree of 2^40 leaves.
pub const DEFAULT_MAX_MULTIPROOF_INDICES: usize = 16_384;
/// Messages in flight per `SubmitStream` by default.
pub const DEFAULT_STREAM_IN_FLIGHT: usize = 64;

/// Limits of the gRPC calls themselves (the log's own limits are in [`crate::log::LogOptions`]).
#[derive(Clone, Debug)]
pub struct ServiceLimits {
    /// Most entries one GetEntries call may ask for (served in pages).
    pub max_entries_range: u64,
    /// Longest GetCheckpoint{min_size} wait.
    pub max_checkpoint_wait: Duration,
    /// Stream messages in flight per SubmitStream (pipelining bound).
    pub stream_in_flight: usize,
    /// Most leaf indices in one GetMultiProof call.
    pub max_multiproof_indices: usize,
    /// Threads serving the proof reads that miss memory (see [`crate::read_pool`]).
    pub read_threads: usize,
}

impl Default for ServiceLimits {
    fn default() -> Self {
        ServiceLimits {
            max_entries_range: DEFAULT_MAX_ENTRIES_RANGE,
            max_checkpoint_wait: DEFAULT_MAX_CHECKPOINT_WAIT,
            stream_in_flight: DEFAULT_STREAM_IN_FLIGHT,
            max_multiproof_indices: DEFAULT_MAX_MULTIPROOF_INDICES,
            read_threads: DEFAULT_READ_THREADS,
        }
    }
}

/// The gRPC status for a log error.
pub fn status(e: Error) -> Status {
    Status::new(code(&e), e.to_string())
}

/// The gRPC code of a log error: the one place errors become codes (HTTP ingestion answers with it too).
pub fn code(e: &Error) -> Code {
    match e {
        Error::Request(r) => r.code(),
        Error::Private(p) => p.code(),
        Error::SizeBeyondLog { .. } | Error::LeafBeyondSize { .. } => Code::OutOfRange,
        Error::ConsistencySizes { .. } | Error::WitnessedWithSize => Code::InvalidArgument,
        Error::NotWitnessed | Error::ReadReplica { .. } => Code::FailedPrecondition,
        Error::Store(StoreError::Unsupported(_)) => Code::Unimplemented,
        Error::NoWitnessedCheckpoint => Code::Unavailable,
        Error::NoCheckpoint(_) | Error::UnknownLeaf(_) | Error::LeafNotInSize { .. } => {
            Code::NotFound
        }
        Error::CheckpointWait { .. } => Code::DeadlineExceeded,
        // gRPC's code for "the entire file system is out of space" as much as for a full queue.
        Error::QueueFull(_) | Error::ArchiveLag { .. } => Code::ResourceExhausted,
        e if e.is_disk_full() => Code::ResourceExhausted,
        e if e.is_unavailable() => Code::Unavailable,
        e if e.is_data_loss() => Code::DataLoss,
        _ => Code::Internal,
    }
}

fn signed_to_proto(cp: &Signed) -> SignedCheckpoint {
    SignedCheckpoint {
        note: cp.note.clone().into_bytes(),
        size: cp.checkpoint.size.0,
        root_hash: hash_to_bytes(&cp.checkpoint.root),
        timestamp_unix: cp.timestamp,
        archived_size: 0,
    }
}

/// Logs a refused call: which, the scope it needed and why (never the token).
pub(crate) fn denied(rpc: &str, scope: Scope, reason: &RequestError) {
    tracing::warn!(rpc, scope = scope.name(), reason = %reason, "access denied");
}

/// Runs blocking reader work (store reads, signature checks) on the blocking pool, off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work).await?
}

/// A request's metadata (for the write token) apart from its message (moved out, not copied).
fn split<T>(request: Request<T>) -> (Request<()>, T) {
    let (metadata, extensions, message) = request.into_parts();
    (Request::from_parts(metadata, extensions, ()), message)
}

/// How a `SubmitBatch` or `SubmitStream` answer carries its checkpoint and proofs, as its request asked
/// (`SubmitBatchRequest.shared_checkpoint`, `.multiproof`); the default is what clients older than both get: the
/// checkpoint and an inclusion proof in every receipt.
#[derive(Clone, Copy, Debug, Default)]
struct AnswerShape {
    shared_checkpoint: bool,
    multiproof: bool,
}

impl AnswerShape {
    fn of(request: &SubmitBatchRequest) -> Self {
        AnswerShape {
            shared_checkpoint: request.shared_checkpoint,
            multiproof: request.multiproof,
        }
    }
}

/// A committed submission's multiproof: its distinct entries ([`Committed::proven_leaves`]) and the hashes that
/// prove them against its checkpoint.
pub(crate) struct CommittedProof {
    pub committed: Committed,
    pub leaves: Vec<(LeafIndex, Hash)>,
    pub multiproof: Vec<Hash>,
}

impl CommittedProof {
    /// Each entry's own inclusion proof, in submission order.
    pub fn proofs(&self) -> Result<Vec<Vec<Hash>>> {
        self.committed
            .proofs_from_multi(&self.leaves, &self.multiproof)
    }
}

/// Waits for a queued submission and proves its entries against the checkpoint it got, with one multiproof: from
/// the nodes the sequencer committed when it can, else (entries the log already held) from one store read on the
/// blocking pool.
pub(crate) async fn committed_multiproof<S: LogStore>(
    reader: &LogReader<S>,
    pending: Pending,
) -> Result<CommittedProof> {
    let committed: Committed = pending.wait().await?;
    let leaves = committed.proven_leaves();
    match committed.multiproof_in_memory(&leaves) {
        Some(multiproof) => Ok(CommittedProof {
            multiproof: multiproof?,
            committed,
            leaves,
        }),
        None => {
            let reader = reader.clone();
            blocking(move || {
                let multiproof = reader.receipt_multiproof(&committed, &leaves)?;
                Ok(CommittedProof {
                    committed,
                    leaves,
                    multiproof,
                })
            })
            .await
        }
    }
}

/// Waits for a queued submission and proves each of its entries against the checkpoint it got.
pub(crate) async fn committed_proofs<S: LogStore>(
    reader: &LogReader<S>,
    pending: Pending,
) -> Result<(Committed, Vec<Vec<Hash>>)> {
    let proved = committed_multiproof(reader, pending).await?;
    let proofs = proved.proofs()?;
    Ok((proved.committed, proofs))
}

fn answer<T>(result: Result<T>) -> Result<Response<T>, Status> {
    result.map(Response::new).map_err(status)
}

/// The service over an opened log; generic over the store so tests can run it on memory.
pub struct LogService<S> {
    appender: Appender,
    reader: LogReader<S>,
    limits: ServiceLimits,
    tokens: WriteTokens,
    /// The newest witnessed checkpoint, when the log has witnesses.
    witnessed: Option<watch::Receiver<Option<Arc<Signed>>>>,
    /// The archive's progress, when the log has one: writes are refused while it lags too far.
    archive: Option<ArchiveGate>,
    /// Where proofs served are recorded.
    metrics: Metrics,
    /// Unwraps the data keys of private payloads, when the log takes them.
    private: Option<Arc<dyn KeyWrapper>>,
    /// Threads for proof reads that miss memory.
    reads: ReadPool,
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

impl<S: LogStore> LogService<S> {
    pub fn new(
        appender: Appender,
        reader: LogReader<S>,
        limits: ServiceLimits,
        tokens: WriteTokens,
    ) -> Result<Self> {
        let reads = ReadPool::new(limits.read_threads)?;
        Ok(LogService {
            appender,
            reader,
            limits,
            tokens,
            witnessed: None,
            archive: None,
            metrics: Metrics::new(),
            private: None,
            reads,
        })
    }

    /// Serves private payloads (`GetPrivatePayload`), decrypting them with data keys `wrapper` unwraps.
    pub fn with_private(mut self, wrapper: Arc<dyn KeyWrapper>) -> Self {
        self.private = Some(wrapper);
        self
    }

    /// Checks that the request carries a token with `scope`; every refusal is logged with the call and the
    /// reason (never the token).
    fn authorize<T>(&self, request: &Request<T>, scope: Scope, rpc: &'static str) -> Result<()> {
        self.tokens
            .check_scope(request, scope)
            .inspect_err(|e| denied(rpc, scope, e))
            .map_err(Error::from)
    }

    /// Refuses writes (`RESOURCE_EXHAUSTED`) while the archive behind `gate` lags too far, and reports the
    /// archived size in `GetCheckpoint` answers.
    pub fn with_archive(mut self, gate: ArchiveGate) -> Self {
        self.archive = Some(gate);
        self
    }

    /// Whether the archive (if any) lets `entries` in now; checked before the sequencer takes any work.
    fn archive_allows_writes(
        gate: Option<&ArchiveGate>,
        appender: &Appender,
        entries: &[Vec<u8>],
    ) -> Result<()> {
        match gate {
            Some(gate) => gate.check(appender.latest().checkpoint.size.0, entries.len() as u64),
            None => Ok(()),
        }
    }

    /// Records the proofs served in `metrics` (by default, in a registry of its own that nothing serves).
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    fn observe_proof<T>(&self, kind: ProofKind, started: Instant, result: &Result<T>) {
        self.metrics
            .proofs()
            .observe(kind, started.elapsed(), result.is_ok());
    }

    /// Serves `GetCheckpoint{witnessed}` from this source of witnessed checkpoints (notes with their witnesses'
    /// cosignature lines).
    pub fn with_witnessed(mut self, witnessed: watch::Receiver<Option<Arc<Signed>>>) -> Self {
        self.witnessed = Some(witnessed);
        self
    }

    fn witnessed(&self) -> Result<Arc<Signed>> {
        let source = self.witnessed.as_ref().ok_or(Error::NotWitnessed)?;
        let latest = source.borrow().clone();
        latest.ok_or(Error::NoWitnessedCheckpoint)
    }

    /// Waits for a queued submission and builds its answer in the `shape` the request asked for.
    async fn receipts(
        reader: &LogReader<S>,
        pending: Pending,
        shape: AnswerShape,
    ) -> Result<SubmitBatchResponse> {
        let proved = committed_multiproof(reader, pending).await?;
        let checkpoint = signed_to_proto(&proved.committed.checkpoint);
        let (proofs, multiproof) = if shape.multiproof {
            let multiproof = MultiProof {
                tree_size: proved.committed.checkpoint.checkpoint.size.0,
                hashes: hashes_to_bytes(&proved.multiproof),
                checkpoint: None,
            };
            (Vec::new(), Some(multiproof))
        } else {
            (proved.proofs()?, None)
        };
        let mut proofs = proofs.into_iter();
        let shared = shape.shared_checkpoint || shape.multiproof;
        let receipts = proved
            .committed
            .assigned
            .iter()
            .map(|a| Receipt {
                index: a.index.0,
                leaf_hash: hash_to_bytes(&a.leaf_hash),
                checkpoint: (!shared).then(|| checkpoint.clone()),
                inclusion_proof: proofs.next().map_or_else(Vec::new, |p| hashes_to_bytes(&p)),
                duplicate: a.duplicate,
            })
            .collect();
        Ok(SubmitBatchResponse {
            receipts,
            client_tag: 0,
            checkpoint: shared.then_some(checkpoint),
            multiproof,
        })
    }

    async fn submit_entries(
        &self,
        request: &Request<()>,
        entries: Vec<Vec<u8>>,
        rpc: &'static str,
        shape: AnswerShape,
    ) -> Result<SubmitBatchResponse> {
        self.authorize(request, Scope::Write, rpc)?;
        private::check_public(&entries)?;
        Self::archive_allows_writes(self.archive.as_ref(), &self.appender, &entries)?;
        let pending = self.appender.enqueue(entries)?;
        Self::receipts(&self.reader, pending, shape).await
    }

    /// A proof read: answered on the async worker when all it needs is in memory (the latest checkpoint, nodes in
    /// RocksDB's block cache or memtables: no I/O, no waiting), otherwise on the read threads. Handing every read
    /// to them costs a thread hand-off each way per request, more than the read itself when it hits the cache.
    async fn read<T: Send + 'static>(
        &self,
        work: impl Fn(&LogReader<S>, ReadTier) -> Result<Option<T>> + Send + 'static,
    ) -> Result<T> {
        if let Some(answer) = work(&self.reader, ReadTier::Memory)? {
            return Ok(answer);
        }
        let reader = self.reader.clone();
        self.reads
            .run(move || work(&reader, ReadTier::Any).map(answered))
            .await
    }

    async fn checkpoint_at_least(&self, min_size: u64) -> Result<std::sync::Arc<Signed>> {
        let mut watch = self.reader.subscribe();
        let wait = async {
            loop {
                let cp = watch.borrow_and_update().clone();
                if cp.checkpoint.size.0 >= min_size {
                    return Ok(cp);
                }
                if watch.changed().await.is_err() {
                    return Err(Error::Closed);
                }
            }
        };
        let waited = self.limits.max_checkpoint_wait;
        tokio::time::timeout(waited, wait)
            .await
            .map_err(|_| Error::CheckpointWait { min_size, waited })?
    }

    fn entries_stream(&self, start: u64, end: u64) -> Result<BoxStream<EntriesPage>> {
        let size = self.reader.latest().checkpoint.size.0;
        validate::check_entries_range(start, end, size, self.limits.max_entries_range)?;
        let page = self.reader.limits().max_entries_per_read.max(1);
        let reader = self.reader.clone();
        // Two pages buffered at most: a slow reader holds back the producer instead of growing memory.
        let (tx, rx) = mpsc::channel(2);
        tokio::task::spawn_blocking(move || {
            let mut at = start;
            while at < end {
                let to = end.min(at + page);
                let result = reader
                    .entries(LeafIndex(at), LeafIndex(to))
                    .map(|entries| EntriesPage { start: at, entries })
                    .map_err(status);
                let failed = result.is_err();
                if tx.blocking_send(result).is_err() || failed {
                    return;
                }
                at = to;
            }
        });
        Ok(Box::pin(ReceiverStream::new(rx)))
    }
}

#[tonic::async_trait]
impl<S: LogStore> Log for LogService<S> {
    async fn submit(&self, request: Request<SubmitRequest>) -> Result<Response<Receipt>, Status> {
        let (request, SubmitRequest { entry }) = split(request);
        let answered = self
            .submit_entries(&request, vec![entry], "Submit", AnswerShape::default())
            .await;
        answer(answered.and_then(|mut a| a.receipts.pop().ok_or(Error::NoReceipt)))
    }

    async fn submit_batch(
        &self,
        request: Request<SubmitBatchRequest>,
    ) -> Result<Response<SubmitBatchResponse>, Status> {
        let (request, message) = split(request);
        let shape = AnswerShape::of(&message);
        let SubmitBatchRequest {
            entries,
            client_tag,
            ..
        } = message;
        let answered = self
            .submit_entries(&request, entries, "SubmitBatch", shape)
            .await;
        answer(answered.map(|a| SubmitBatchResponse { client_tag, ..a }))
    }

    type SubmitStreamStream = BoxStream<SubmitBatchResponse>;

    async fn submit_stream(
        &self,
        request: Request<Streaming<SubmitBatchRequest>>,
    ) -> Result<Response<Self::SubmitStreamStream>, Status> {
        self.authorize(&request, Scope::Write, "SubmitStream")
            .map_err(status)?;
        let mut incoming = request.into_inner();
        let (out_tx, out_rx) = mpsc::channel(self.limits.stream_in_flight.max(1));
        // Pipelined but ordered: each message is submitted as soon as it arrives, and its answer is queued in
        // arrival order; the bounded queue limits how many are in flight.
        let (order_tx, mut order_rx) = mpsc::channel::<
            tokio::task::JoinHandle<Result<SubmitBatchResponse, Status>>,
        >(self.limits.stream_in_flight.max(1));
        let (appender, reader) = (self.appender.clone(), self.reader.clone());
        let archive = self.archive.clone();
        tokio::spawn(async move {
            loop {
                let message = match incoming.message().await {
                    Ok(Some(m)) => m,
                    Ok(None) => break,
                    Err(e) => {
                        let _ = order_tx.send(tokio::spawn(async move { Err(e) })).await;
                        break;
                    }
                };
                let shape = AnswerShape::of(&message);
                let SubmitBatchRequest {
                    entries,
                    client_tag,
                    ..
                } = message;
                // Queued here, in stream order, so the stream's entries are sequenced in the order sent.
                let queued = private::check_public(&entries)
                    .map_err(Error::from)
                    .and_then(|()| {
                        Self::archive_allows_writes(archive.as_ref(), &appender, &entries)
                    })
                    .and_then(|()| appender.enqueue(entries));
                let reader = reader.clone();
                let task = tokio::spawn(async move {
                    let answered = Self::receipts(&reader, queued.map_err(status)?, shape)
                        .await
                        .map_err(status)?;
                    Ok(SubmitBatchResponse {
                        client_tag,
                        ..answered
                    })
                });
                if order_tx.send(task).await.is_err() {
                    break;
                }
            }
        });
        tokio::spawn(async move {
            while let Some(task) = order_rx.recv().await {
                let answer = task.await.unwrap_or_else(|e| Err(status(e.into())));
                let failed = answer.is_err();
                if out_tx.send(answer).await.is_err() || failed {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(out_rx))))
    }

    async fn get_checkpoint(
        &self,
        request: Request<GetCheckpointRequest>,
    ) -> Result<Response<SignedCheckpoint>, Status> {
        let GetCheckpointRequest {
            min_size,
            size,
            witnessed,
        } = request.into_inner();
        let cp = if witnessed {
            if size != 0 || min_size != 0 {
                Err(Error::WitnessedWithSize)
            } else {
                self.witnessed()
            }
        } else if size != 0 {
            let reader = self.reader.clone();
            blocking(move || reader.checkpoint(TreeSize(size))).await
        } else {
            self.checkpoint_at_least(min_size).await
        };
        let archived_size = self.archive.as_ref().map_or(0, ArchiveGate::archived_size);
        answer(cp.map(|cp| SignedCheckpoint {
            archived_size,
            ..signed_to_proto(&cp)
        }))
    }

    type WatchCheckpointsStream = BoxStream<SignedCheckpoint>;

    async fn watch_checkpoints(
        &self,
        _request: Request<WatchCheckpointsRequest>,
    ) -> Result<Response<Self::WatchCheckpointsStream>, Status> {
        let stream = tokio_stream::wrappers::WatchStream::new(self.reader.subscribe());
        let stream = tokio_stream::StreamExt::map(stream, |cp| Ok(signed_to_proto(&cp)));
        Ok(Response::new(Box::pin(stream)))
    }

    async fn get_inclusion_proof(
        &self,
        request: Request<GetInclusionProofRequest>,
    ) -> Result<Response<InclusionProof>, Status> {
        let GetInclusionProofRequest { leaf, tree_size } = request.into_inner();
        let started = Instant::now();
        let proof = match validate::inclusion_leaf(leaf.as_ref()) {
            // By hash, the leaf-index row is a random key, seldom in the block cache: a memory attempt would mostly
            // decline after doing most of the lookup, which the read pool then does again (BENCHMARKS.md, issue 13).
            Ok(leaf @ LeafRef::Hash(_)) => {
                let reader = self.reader.clone();
                self.reads
                    .run(move || reader.inclusion(leaf, TreeSize(tree_size)))
                    .await
            }
            Ok(leaf) => {
                self.read(move |r, tier| r.inclusion_in(leaf, TreeSize(tree_size), tier))
                    .await
            }
            Err(e) => Err(e.into()),
        };
        self.observe_proof(ProofKind::Inclusion, started, &proof);
        answer(proof.map(|p| InclusionProof {
            index: p.index.0,
            tree_size: p.checkpoint.checkpoint.size.0,
            leaf_hash: hash_to_bytes(&p.leaf_hash),
            hashes: hashes_to_bytes(&p.proof),
            checkpoint: Some(signed_to_proto(&p.checkpoint)),
        }))
    }

    async fn get_consistency_proof(
        &self,
        request: Request<GetConsistencyProofRequest>,
    ) -> Result<Response<ConsistencyProof>, Status> {
        let GetConsistencyProofRequest { old_size, new_size } = request.into_inner();
        let started = Instant::now();
        let proof = self
            .read(move |r, tier| r.consistency_in(TreeSize(old_size), TreeSize(new_size), tier))
            .await;
        self.observe_proof(ProofKind::Consistency, started, &proof);
        answer(proof.map(|(hashes, cp): (Vec<Hash>, _)| ConsistencyProof {
            old_size,
            new_size: cp.checkpoint.size.0,
            hashes: hashes_to_bytes(&hashes),
            checkpoint: Some(signed_to_proto(&cp)),
        }))
    }

    type GetEntriesStream = BoxStream<EntriesPage>;

    async fn get_entries(
        &self,
        request: Request<GetEntriesRequest>,
    ) -> Result<Response<Self::GetEntriesStream>, Status> {
        let GetEntriesRequest { start, end } = request.into_inner();
        answer(self.entries_stream(start, end))
    }

    async fn get_multi_proof(
        &self,
        request: Request<GetMultiProofRequest>,
    ) -> Result<Response<MultiProof>, Status> {
        let GetMultiProofRequest { indices, tree_size } = request.into_inner();
        let proof =
            match validate::check_multi_indices(&indices, self.limits.max_multiproof_indices) {
                Ok(indices) => {
                    self.read(move |r, tier| {
                        r.multi_inclusion_in(&indices, TreeSize(tree_size), tier)
                    })
                    .await
                }
                Err(e) => Err(e.into()),
            };
        answer(proof.map(|(hashes, cp)| MultiProof {
            tree_size: cp.checkpoint.size.0,
            hashes: hashes_to_bytes(&hashes),
            checkpoint: Some(signed_to_proto(&cp)),
        }))
    }

    async fn submit_private(
        &self,
        request: Request<SubmitPrivateRequest>,
    ) -> Result<Response<SubmitBatchResponse>, Status> {
        let (request, SubmitPrivateRequest { payloads }) = split(request);
        let result = async {
            self.authorize(&request, Scope::Write, "SubmitPrivate")?;
            if self.private.is_none() {
                return Err(private::PrivateError::NotConfigured.into());
            }
            let items: Vec<(Vec<u8>, Vec<u8>)> = payloads
                .into_iter()
                .map(|p| (p.subject.into_bytes(), p.payload))
                .collect();
            let placeholders = vec![Vec::new(); items.len()];
            Self::archive_allows_writes(self.archive.as_ref(), &self.appender, &placeholders)?;
            let pending = self.appender.enqueue_private(items)?;
            Self::receipts(&self.reader, pending, AnswerShape::default()).await
        }
        .await;
        answer(result)
    }

    async fn get_private_payload(
        &self,
        request: Request<GetPrivatePayloadRequest>,
    ) -> Result<Response<PrivatePayloadOpening>, Status> {
        let (request, GetPrivatePayloadRequest { index }) = split(request);
        let result = async {
            self.authorize(&request, Scope::ReadPrivate, "GetPrivatePayload")?;
            let wrapper = self
                .private
                .clone()
                .ok_or(private::PrivateError::NotConfigured)?;
            let reader = self.reader.clone();
            let opened =
                blocking(move || reader.private_payload(wrapper.as_ref(), LeafIndex(index)))
                    .await?;
            Ok(PrivatePayloadOpening {
                index: opened.index.0,
                entry: opened.entry,
                subject: String::from_utf8_lossy(&opened.subject).into_owned(),
                salt: opened.salt,
                payload: opened.payload,
            })
        }
        .await;
        answer(result)
    }

    async fn erase_subject(
        &self,
        request: Request<EraseSubjectRequest>,
    ) -> Result<Response<EraseSubjectResponse>, Status> {
        let (request, EraseSubjectRequest { subject }) = split(request);
        let result = async {
            self.authorize(&request, Scope::Admin, "EraseSubject")?;
            if self.private.is_none() {
                return Err(private::PrivateError::NotConfigured.into());
            }
            let committed = self.appender.erase(subject.clone().into_bytes()).await?;
            let erased_at = committed.erased_at.unwrap_or_default();
            let checkpoint = signed_to_proto(&committed.checkpoint);
            let proof = match committed.proofs_in_memory() {
                Some(proofs) => proofs?.pop().unwrap_or_default(),
                None => Vec::new(),
            };
            let assigned = *committed.assigned.first().ok_or(Error::NoReceipt)?;
            tracing::info!(
                subject,
                erased_at,
                index = assigned.index.0,
                "subject erased"
            );
            // The rows are deleted already; now make sure their bytes leave the store's files. A crash before
            // this is caught up at the next start.
            let reader = self.reader.clone();
            blocking(move || reader.purge_erased()).await?;
            Ok(EraseSubjectResponse {
                receipt: Some(Receipt {
                    index: assigned.index.0,
                    leaf_hash: hash_to_bytes(&assigned.leaf_hash),
                    checkpoint: Some(checkpoint),
                    inclusion_proof: hashes_to_bytes(&proof),
                    duplicate: false,
                }),
                erased_at_unix: erased_at,
            })
        }
        .await;
        answer(result)
    }
}

impl<S> Clone for LogService<S> {
    fn clone(&self) -> Self {
        LogService {
            appender: self.appender.clone(),
            reader: self.reader.clone(),
            limits: self.limits.clone(),
            tokens: self.tokens.clone(),
            witnessed: self.witnessed.clone(),
            archive: self.archive.clone(),
            metrics: self.metrics.clone(),
            private: self.private.clone(),
            reads: self.reads.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tlog_storage::{BackendError, BackendErrorKind, Corruption, StoreError};

    use super::*;
    use crate::validate::RequestError;

    fn backend(kind: BackendErrorKind) -> StoreError {
        StoreError::Backend(BackendError::new(kind, "the backend's message"))
    }

    #[test]
    fn storage_failing_is_unavailable() {
        for kind in [
            BackendErrorKind::Io,
            BackendErrorKind::Busy,
            BackendErrorKind::Other,
        ] {
            for e in [
                Error::Store(backend(kind)),
                Error::Unavailable(Arc::new(backend(kind))),
            ] {
                assert_eq!(status(e).code(), Code::Unavailable, "{kind:?}");
            }
        }
        assert_eq!(status(Error::Closed).code(), Code::Unavailable);
    }

    #[test]
    fn damaged_stored_data_is_data_loss() {
        let corrupt = || StoreError::Corrupt(Corruption::MissingEntry { index: 1, size: 2 });
        for e in [
            Error::Store(backend(BackendErrorKind::Corruption)),
            Error::Store(corrupt()),
            Error::Store(StoreError::MissingNode(tlog_core::NodeId::new(0, 1))),
            Error::BatchFailed(Arc::new(Error::Store(corrupt()))),
        ] {
            let s = status(e);
            assert_eq!(s.code(), Code::DataLoss, "{}", s.message());
        }
    }

    #[test]
    fn a_backend_refusing_the_request_is_internal() {
        let s = status(Error::Store(backend(BackendErrorKind::Invalid)));
        assert_eq!(s.code(), Code::Internal);
        assert!(
            s.message().contains("the backend's message"),
            "{}",
            s.message()
        );
    }

    #[test]
    fn request_errors_keep_their_code_and_message() {
        let e = RequestError::UnknownToken;
        let s = status(e.clone().into());
        assert_eq!(s.code(), e.code());
        assert_eq!(s.message(), e.to_string());
    }

    #[test]
    fn log_state_errors_have_their_documented_codes() {
        for (e, code) in [
            (Error::QueueFull(4), Code::ResourceExhausted),
            (
                Error::SizeBeyondLog { size: 9, latest: 3 },
                Code::OutOfRange,
            ),
            (
                Error::LeafBeyondSize { index: 3, size: 3 },
                Code::OutOfRange,
            ),
            (Error::NoCheckpoint(2), Code::NotFound),
            (Error::UnknownLeaf(tlog_core::Hash([1; 32])), Code::NotFound),
            (
                Error::ConsistencySizes { old: 0, new: 3 },
                Code::InvalidArgument,
            ),
            (
                Error::CheckpointWait {
                    min_size: 9,
                    waited: Duration::from_secs(1),
                },
                Code::DeadlineExceeded,
            ),
            (Error::NotWitnessed, Code::FailedPrecondition),
            (Error::NoWitnessedCheckpoint, Code::Unavailable),
            (Error::WitnessedWithSize, Code::InvalidArgument),
            (
                Error::ReadReplica {
                    primary: "s3://b/p".into(),
                },
                Code::FailedPrecondition,
            ),
            (
                Error::Store(StoreError::Unsupported("no index by leaf hash".into())),
                Code::Unimplemented,
            ),
        ] {
            let what = e.to_string();
            assert_eq!(status(e).code(), code, "{what}");
        }
    }
}
