//! The `tlog.v1.Log` gRPC service: validates requests, hands work to the sequencer or the reader, and maps errors
//! to gRPC status codes (see [`status`]).

// gRPC handlers and their helpers answer with tonic's `Status`, whatever its size.
#![allow(clippy::result_large_err)]

use std::pin::Pin;
use std::time::Duration;

use tlog_checkpoint::SignedCheckpoint as Signed;
use tlog_core::{LeafIndex, TreeSize};
use tlog_proto::v1::{
    ConsistencyProof, EntriesPage, GetCheckpointRequest, GetConsistencyProofRequest,
    GetEntriesRequest, GetInclusionProofRequest, InclusionProof, Receipt, SignedCheckpoint,
    SubmitBatchRequest, SubmitBatchResponse, SubmitRequest, WatchCheckpointsRequest,
};
use tlog_proto::validate::{self, LeafRef};
use tlog_proto::{Log, hash_to_bytes, hashes_to_bytes};
use tlog_storage::{LogStore, StoreError};
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::error::Error;
use crate::reader::LogReader;
use crate::sequencer::{Committed, Pending, SequencerHandle};

/// Request limits enforced before any work is done.
#[derive(Clone, Debug)]
pub struct ServiceLimits {
    /// Largest entry accepted (65,535 by default, the C2SP tlog-tiles entry-bundle limit).
    pub max_entry_bytes: usize,
    /// Most entries in one SubmitBatch request or stream message.
    pub max_request_entries: usize,
    /// Most entries one GetEntries call may ask for (served in pages).
    pub max_entries_range: u64,
    /// Longest GetCheckpoint{min_size} wait.
    pub max_checkpoint_wait: Duration,
    /// Stream messages in flight per SubmitStream (pipelining bound).
    pub stream_in_flight: usize,
}

impl Default for ServiceLimits {
    fn default() -> Self {
        ServiceLimits {
            max_entry_bytes: 65_535,
            max_request_entries: 4096,
            max_entries_range: 1_000_000,
            max_checkpoint_wait: Duration::from_secs(30),
            stream_in_flight: 64,
        }
    }
}

pub use tlog_proto::validate::WriteTokens;

/// Checks a submission against the limits before it is queued.
fn check_entries(limits: &ServiceLimits, entries: &[Vec<u8>]) -> Result<(), Status> {
    validate::check_entries(entries, limits.max_request_entries, limits.max_entry_bytes)
        .map_err(Status::from)
}

/// The gRPC status for a log error.
pub fn status(e: Error) -> Status {
    match e {
        Error::InvalidArgument(m) => Status::invalid_argument(m),
        Error::OutOfRange(m) => Status::out_of_range(m),
        Error::NotFound(m) => Status::not_found(m),
        Error::QueueFull(_) => Status::resource_exhausted(e.to_string()),
        Error::Closed | Error::Unavailable(_) | Error::Store(StoreError::Backend(_)) => {
            Status::unavailable(e.to_string())
        }
        other => Status::internal(other.to_string()),
    }
}

fn signed_to_proto(cp: &Signed) -> SignedCheckpoint {
    SignedCheckpoint {
        note: cp.note.clone().into_bytes(),
        size: cp.checkpoint.size.0,
        root_hash: hash_to_bytes(&cp.checkpoint.root),
        timestamp_unix: cp.timestamp,
    }
}

/// The service; generic over the store so tests can run it on memory.
pub struct LogService<S> {
    sequencer: SequencerHandle,
    reader: LogReader<S>,
    limits: ServiceLimits,
    tokens: WriteTokens,
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

impl<S: LogStore> LogService<S> {
    pub fn new(
        sequencer: SequencerHandle,
        reader: LogReader<S>,
        limits: ServiceLimits,
        tokens: WriteTokens,
    ) -> Self {
        LogService {
            sequencer,
            reader,
            limits,
            tokens,
        }
    }

    /// Submits validated entries and builds their receipts.
    async fn submit_entries(
        sequencer: &SequencerHandle,
        reader: &LogReader<S>,
        entries: Vec<Vec<u8>>,
    ) -> Result<Vec<Receipt>, Status> {
        let pending = sequencer.enqueue(entries).map_err(status)?;
        Self::receipts(reader, pending).await
    }

    /// Waits for a queued submission and builds its receipts.
    async fn receipts(reader: &LogReader<S>, pending: Pending) -> Result<Vec<Receipt>, Status> {
        let committed: Committed = pending.wait().await.map_err(status)?;
        let proofs = reader.receipt_proofs(&committed).map_err(status)?;
        let checkpoint = signed_to_proto(&committed.checkpoint);
        Ok(committed
            .assigned
            .iter()
            .zip(proofs)
            .map(|(a, proof)| Receipt {
                index: a.index.0,
                leaf_hash: hash_to_bytes(&a.leaf_hash),
                checkpoint: Some(checkpoint.clone()),
                inclusion_proof: hashes_to_bytes(&proof),
                duplicate: a.duplicate,
            })
            .collect())
    }
}

#[tonic::async_trait]
impl<S: LogStore> Log for LogService<S> {
    async fn submit(&self, request: Request<SubmitRequest>) -> Result<Response<Receipt>, Status> {
        self.tokens.check(&request)?;
        let entries = vec![request.into_inner().entry];
        check_entries(&self.limits, &entries)?;
        let mut receipts = Self::submit_entries(&self.sequencer, &self.reader, entries).await?;
        receipts
            .pop()
            .map(Response::new)
            .ok_or_else(|| Status::internal("no receipt for the entry"))
    }

    async fn submit_batch(
        &self,
        request: Request<SubmitBatchRequest>,
    ) -> Result<Response<SubmitBatchResponse>, Status> {
        self.tokens.check(&request)?;
        let SubmitBatchRequest {
            entries,
            client_tag,
        } = request.into_inner();
        check_entries(&self.limits, &entries)?;
        let receipts = Self::submit_entries(&self.sequencer, &self.reader, entries).await?;
        Ok(Response::new(SubmitBatchResponse {
            receipts,
            client_tag,
        }))
    }

    type SubmitStreamStream = BoxStream<SubmitBatchResponse>;

    async fn submit_stream(
        &self,
        request: Request<Streaming<SubmitBatchRequest>>,
    ) -> Result<Response<Self::SubmitStreamStream>, Status> {
        self.tokens.check(&request)?;
        let mut incoming = request.into_inner();
        let (out_tx, out_rx) = mpsc::channel(self.limits.stream_in_flight.max(1));
        // Pipelined but ordered: each message is submitted as soon as it arrives, and its answer is queued in
        // arrival order; the bounded queue limits how many are in flight.
        let (order_tx, mut order_rx) = mpsc::channel::<
            tokio::task::JoinHandle<Result<SubmitBatchResponse, Status>>,
        >(self.limits.stream_in_flight.max(1));
        let (sequencer, reader) = (self.sequencer.clone(), self.reader.clone());
        let limits = self.limits.clone();
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
                let SubmitBatchRequest {
                    entries,
                    client_tag,
                } = message;
                // Queued here, in stream order, so the stream's entries are sequenced in the order sent.
                let queued = check_entries(&limits, &entries)
                    .and_then(|()| sequencer.enqueue(entries).map_err(status));
                let reader = reader.clone();
                let task = tokio::spawn(async move {
                    let receipts = Self::receipts(&reader, queued?).await?;
                    Ok(SubmitBatchResponse {
                        receipts,
                        client_tag,
                    })
                });
                if order_tx.send(task).await.is_err() {
                    break;
                }
            }
        });
        tokio::spawn(async move {
            while let Some(task) = order_rx.recv().await {
                let answer = task
                    .await
                    .unwrap_or_else(|e| Err(Status::internal(format!("submit task failed: {e}"))));
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
        let GetCheckpointRequest { min_size, size } = request.into_inner();
        if size != 0 {
            let cp = self.reader.checkpoint(TreeSize(size)).map_err(status)?;
            return Ok(Response::new(signed_to_proto(&cp)));
        }
        let mut watch = self.sequencer.subscribe();
        let wait = async {
            loop {
                let cp = watch.borrow_and_update().clone();
                if cp.checkpoint.size.0 >= min_size {
                    return Ok(cp);
                }
                if watch.changed().await.is_err() {
                    return Err(Status::unavailable("the log is shutting down"));
                }
            }
        };
        let cp = tokio::time::timeout(self.limits.max_checkpoint_wait, wait)
            .await
            .map_err(|_| {
                Status::deadline_exceeded(format!(
                    "the log did not reach size {min_size} within {:?}",
                    self.limits.max_checkpoint_wait
                ))
            })??;
        Ok(Response::new(signed_to_proto(&cp)))
    }

    type WatchCheckpointsStream = BoxStream<SignedCheckpoint>;

    async fn watch_checkpoints(
        &self,
        _request: Request<WatchCheckpointsRequest>,
    ) -> Result<Response<Self::WatchCheckpointsStream>, Status> {
        let stream = tokio_stream::wrappers::WatchStream::new(self.sequencer.subscribe());
        let stream = tokio_stream::StreamExt::map(stream, |cp| Ok(signed_to_proto(&cp)));
        Ok(Response::new(Box::pin(stream)))
    }

    async fn get_inclusion_proof(
        &self,
        request: Request<GetInclusionProofRequest>,
    ) -> Result<Response<InclusionProof>, Status> {
        let GetInclusionProofRequest { leaf, tree_size } = request.into_inner();
        let size = TreeSize(tree_size);
        let (index, hashes, cp) = match validate::inclusion_leaf(leaf.as_ref())? {
            LeafRef::Index(index) => {
                let (proof, cp) = self.reader.inclusion(index, size).map_err(status)?;
                (index, proof, cp)
            }
            LeafRef::Hash(hash) => self.reader.inclusion_by_hash(&hash, size).map_err(status)?,
        };
        // The leaf hash is read from the tree (level-0 node), not recomputed, so a by-index answer carries it.
        let leaf_hash = self.reader.leaf_hash(index).map_err(status)?;
        Ok(Response::new(InclusionProof {
            index: index.0,
            tree_size: cp.checkpoint.size.0,
            leaf_hash: hash_to_bytes(&leaf_hash),
            hashes: hashes_to_bytes(&hashes),
            checkpoint: Some(signed_to_proto(&cp)),
        }))
    }

    async fn get_consistency_proof(
        &self,
        request: Request<GetConsistencyProofRequest>,
    ) -> Result<Response<ConsistencyProof>, Status> {
        let GetConsistencyProofRequest { old_size, new_size } = request.into_inner();
        let (hashes, cp) = self
            .reader
            .consistency(TreeSize(old_size), TreeSize(new_size))
            .map_err(status)?;
        Ok(Response::new(ConsistencyProof {
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
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

impl<S> Clone for LogService<S> {
    fn clone(&self) -> Self {
        LogService {
            sequencer: self.sequencer.clone(),
            reader: self.reader.clone(),
            limits: self.limits.clone(),
            tokens: self.tokens.clone(),
        }
    }
}
