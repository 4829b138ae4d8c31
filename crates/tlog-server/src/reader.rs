//! Serving reads from the store: checkpoints by size, inclusion and consistency proofs (one batched node read
//! each, following the core's proof plans), entries by range, and receipts for a committed batch.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tlog_checkpoint::{SignedCheckpoint, VerifierKey, verify_checkpoint};
use tlog_core::{Hash, LeafIndex, NodeId, ProofPlan, TreeSize, consistency_plan, inclusion_plan};
use tlog_storage::LogStore;

use crate::error::{Error, Result};
use crate::sequencer::{Committed, SequencerHandle};

/// Read limits.
#[derive(Clone, Debug)]
pub struct ReadLimits {
    /// Most entries returned by one entries read.
    pub max_entries_per_read: u64,
    /// Historical checkpoints kept parsed in memory.
    pub checkpoint_cache: usize,
}

impl Default for ReadLimits {
    fn default() -> Self {
        ReadLimits {
            max_entries_per_read: 1000,
            checkpoint_cache: 1024,
        }
    }
}

/// Read access to a log; cheap to clone.
pub struct LogReader<S> {
    store: Arc<S>,
    sequencer: SequencerHandle,
    verifier: VerifierKey,
    limits: ReadLimits,
    /// Parsed historical checkpoints by size (bounded: cleared when full).
    checkpoints: Arc<Mutex<HashMap<u64, Arc<SignedCheckpoint>>>>,
}

impl<S> Clone for LogReader<S> {
    fn clone(&self) -> Self {
        LogReader {
            store: self.store.clone(),
            sequencer: self.sequencer.clone(),
            verifier: self.verifier.clone(),
            limits: self.limits.clone(),
            checkpoints: self.checkpoints.clone(),
        }
    }
}

impl<S: LogStore> LogReader<S> {
    pub fn new(
        store: Arc<S>,
        sequencer: SequencerHandle,
        verifier: VerifierKey,
        limits: ReadLimits,
    ) -> Self {
        LogReader {
            store,
            sequencer,
            verifier,
            limits,
            checkpoints: Arc::default(),
        }
    }

    pub fn limits(&self) -> &ReadLimits {
        &self.limits
    }

    /// The newest signed checkpoint.
    pub fn latest(&self) -> Arc<SignedCheckpoint> {
        self.sequencer.latest()
    }

    /// The signed checkpoint published for exactly `size`; 0 means the latest.
    pub fn checkpoint(&self, size: TreeSize) -> Result<Arc<SignedCheckpoint>> {
        let latest = self.latest();
        if size.0 == 0 || size == latest.checkpoint.size {
            return Ok(latest);
        }
        if size > latest.checkpoint.size {
            return Err(Error::OutOfRange(format!(
                "tree size {} is beyond the log's size {}",
                size.0, latest.checkpoint.size.0
            )));
        }
        let mut cache = self.checkpoints.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(cp) = cache.get(&size.0) {
            return Ok(cp.clone());
        }
        drop(cache);
        let note = self.store.checkpoint(size)?.ok_or_else(|| {
            Error::NotFound(format!(
                "the log never published a checkpoint for tree size {}",
                size.0
            ))
        })?;
        // Stored checkpoints were signed by this log; checking them again catches on-disk corruption.
        let cp = Arc::new(verify_checkpoint(&self.verifier, &note).map_err(|e| {
            Error::Internal(format!(
                "stored checkpoint for size {} does not verify: {e}",
                size.0
            ))
        })?);
        cache = self.checkpoints.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= self.limits.checkpoint_cache {
            cache.clear();
        }
        cache.insert(size.0, cp.clone());
        Ok(cp)
    }

    fn fold(&self, plans: &[ProofPlan]) -> Result<Vec<Vec<Hash>>> {
        // One batched read for all plans' nodes.
        let mut ids: Vec<NodeId> = plans
            .iter()
            .flat_map(|p| p.node_ids().iter().copied())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let hashes = self.store.nodes(&ids)?;
        let by_id: HashMap<NodeId, Hash> = ids.into_iter().zip(hashes).collect();
        plans
            .iter()
            .map(|plan| {
                let mine = plan
                    .node_ids()
                    .iter()
                    .map(|id| {
                        by_id
                            .get(id)
                            .copied()
                            .ok_or(Error::Store(tlog_storage::StoreError::MissingNode(*id)))
                    })
                    .collect::<Result<Vec<Hash>>>()?;
                Ok(plan.build(&mine)?)
            })
            .collect()
    }

    /// The leaf hash stored for `index` (which must be in the tree).
    pub fn leaf_hash(&self, index: LeafIndex) -> Result<Hash> {
        let mut hashes = self.store.nodes(&[NodeId::leaf(index.0)])?;
        hashes
            .pop()
            .ok_or(Error::Store(tlog_storage::StoreError::MissingNode(
                NodeId::leaf(index.0),
            )))
    }

    /// Inclusion proof of leaf `index` in the published tree `size` (0 = latest).
    pub fn inclusion(
        &self,
        index: LeafIndex,
        size: TreeSize,
    ) -> Result<(Vec<Hash>, Arc<SignedCheckpoint>)> {
        let cp = self.checkpoint(size)?;
        let size = cp.checkpoint.size;
        if index.0 >= size.0 {
            return Err(Error::OutOfRange(format!(
                "leaf index {} is not below tree size {}",
                index.0, size.0
            )));
        }
        let plan = inclusion_plan(index, size)?;
        let proof = self
            .fold(std::slice::from_ref(&plan))?
            .pop()
            .unwrap_or_default();
        Ok((proof, cp))
    }

    /// Inclusion proof of the leaf with hash `leaf` in the published tree `size` (0 = latest).
    pub fn inclusion_by_hash(
        &self,
        leaf: &Hash,
        size: TreeSize,
    ) -> Result<(LeafIndex, Vec<Hash>, Arc<SignedCheckpoint>)> {
        let index = self
            .store
            .leaf_indices(std::slice::from_ref(leaf))?
            .pop()
            .flatten()
            .ok_or_else(|| {
                Error::NotFound(format!("no entry with leaf hash {leaf} is in the log"))
            })?;
        let (proof, cp) = self.inclusion(index, size).map_err(|e| match e {
            Error::OutOfRange(_) => Error::NotFound(format!(
                "the entry with leaf hash {leaf} has index {} and is not in tree size {}",
                index.0, size.0
            )),
            other => other,
        })?;
        Ok((index, proof, cp))
    }

    /// Consistency proof between published sizes `old` and `new` (new 0 = latest).
    pub fn consistency(
        &self,
        old: TreeSize,
        new: TreeSize,
    ) -> Result<(Vec<Hash>, Arc<SignedCheckpoint>)> {
        let cp = self.checkpoint(new)?;
        let new = cp.checkpoint.size;
        if old.0 == 0 || old > new {
            return Err(Error::InvalidArgument(format!(
                "consistency needs 0 < old size <= new size, got {} and {}",
                old.0, new.0
            )));
        }
        if old != new {
            // The old size must be one the log signed, so the proof links two published checkpoints.
            self.checkpoint(old)?;
        }
        let plan = consistency_plan(old, new)?;
        let proof = self
            .fold(std::slice::from_ref(&plan))?
            .pop()
            .unwrap_or_default();
        Ok((proof, cp))
    }

    /// Entries `[start, end)`, at most the read limit; `end` must not exceed the latest size.
    pub fn entries(&self, start: LeafIndex, end: LeafIndex) -> Result<Vec<Vec<u8>>> {
        let size = self.latest().checkpoint.size.0;
        if start.0 >= end.0 {
            return Err(Error::InvalidArgument(format!(
                "empty or reversed range [{}, {})",
                start.0, end.0
            )));
        }
        if end.0 > size {
            return Err(Error::OutOfRange(format!(
                "range end {} is beyond the log's size {size}",
                end.0
            )));
        }
        if end.0 - start.0 > self.limits.max_entries_per_read {
            return Err(Error::InvalidArgument(format!(
                "range of {} entries exceeds the limit of {} per read",
                end.0 - start.0,
                self.limits.max_entries_per_read
            )));
        }
        Ok(self.store.entries(start, end)?)
    }

    /// Inclusion proofs of every entry of a committed submission against its checkpoint, in one batched read.
    pub fn receipt_proofs(&self, committed: &Committed) -> Result<Vec<Vec<Hash>>> {
        let size = committed.checkpoint.checkpoint.size;
        let plans = committed
            .assigned
            .iter()
            .map(|a| inclusion_plan(a.index, size))
            .collect::<Result<Vec<_>, _>>()?;
        self.fold(&plans)
    }
}
