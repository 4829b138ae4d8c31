//! Serving reads from the store: checkpoints by size, inclusion and consistency proofs (one batched node read
//! each, following the core's proof plans), entries by range, C2SP `tlog-tiles` hash tiles and entry bundles, and
//! the receipts of entries the sequencer's answer alone cannot prove.
//!
//! Every method may read the store and verify signatures, so it blocks: async callers run it on the blocking pool
//! (see `service`). Requests reach it already checked by [`crate::validate`]; what it checks itself depends on the
//! log's state (sizes it published, leaves it holds).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tlog_checkpoint::{SignedCheckpoint, VerifierKey, verify_checkpoint};
use tlog_core::tiles::{TILE_WIDTH, Tile, TileKind, encode_bundle};
use tlog_core::{
    HASH_SIZE, Hash, LeafIndex, NodeId, ProofPlan, TreeSize, consistency_plan, inclusion_plan,
    multi_inclusion_plan,
};
use tlog_storage::{LogStore, ReadTier, StoreError};
use tokio::sync::watch;

use crate::error::{Error, Result};
use crate::sequencer::Committed;
use crate::validate::LeafRef;

/// Most entries one store read returns by default (a `GetEntries` call is served in pages of this size).
pub const DEFAULT_MAX_ENTRIES_PER_READ: u64 = 1000;
/// Historical checkpoints kept parsed in memory by default.
pub const DEFAULT_CHECKPOINT_CACHE: usize = 1024;
/// Sizes remembered by default as ones the log published a checkpoint for (8 bytes each, about 1 MiB in all).
pub const DEFAULT_PUBLISHED_CACHE: usize = 1 << 16;

/// Read limits.
#[derive(Clone, Debug)]
pub struct ReadLimits {
    /// Most entries returned by one entries read.
    pub max_entries_per_read: u64,
    /// Historical checkpoints kept parsed in memory.
    pub checkpoint_cache: usize,
    /// Sizes remembered as published, for consistency proofs from them.
    pub published_cache: usize,
    /// Serve consistency proofs from any old size up to the new one, not only from sizes this reader holds a
    /// signed checkpoint of. A read replica holds only the checkpoints it adopted from the archive, not every one
    /// the primary signed; the client holds the old checkpoint and checks the proof against it either way.
    pub consistency_from_any_size: bool,
}

impl Default for ReadLimits {
    fn default() -> Self {
        ReadLimits {
            max_entries_per_read: DEFAULT_MAX_ENTRIES_PER_READ,
            checkpoint_cache: DEFAULT_CHECKPOINT_CACHE,
            published_cache: DEFAULT_PUBLISHED_CACHE,
            consistency_from_any_size: false,
        }
    }
}

/// An inclusion proof as served: the leaf, its proof and the checkpoint it leads to.
pub struct InclusionAnswer {
    pub index: LeafIndex,
    /// Read from the tree (the level-0 node), not recomputed, so a by-index answer carries it too.
    pub leaf_hash: Hash,
    pub proof: Vec<Hash>,
    pub checkpoint: Arc<SignedCheckpoint>,
}

/// Read access to a log; cheap to clone. Made by [`crate::log::open`].
pub struct LogReader<S> {
    store: Arc<S>,
    latest: watch::Receiver<Arc<SignedCheckpoint>>,
    verifier: VerifierKey,
    limits: ReadLimits,
    /// Parsed historical checkpoints by size (bounded: cleared when full).
    checkpoints: Arc<Mutex<HashMap<u64, Arc<SignedCheckpoint>>>>,
    /// Sizes a checkpoint was found stored for (bounded: cleared when full).
    published: Arc<Mutex<HashSet<u64>>>,
}

impl<S> Clone for LogReader<S> {
    fn clone(&self) -> Self {
        LogReader {
            store: self.store.clone(),
            latest: self.latest.clone(),
            verifier: self.verifier.clone(),
            limits: self.limits.clone(),
            checkpoints: self.checkpoints.clone(),
            published: self.published.clone(),
        }
    }
}

impl<S: LogStore> LogReader<S> {
    pub(crate) fn new(
        store: Arc<S>,
        latest: watch::Receiver<Arc<SignedCheckpoint>>,
        verifier: VerifierKey,
        limits: ReadLimits,
    ) -> Self {
        LogReader {
            store,
            latest,
            verifier,
            limits,
            checkpoints: Arc::default(),
            published: Arc::default(),
        }
    }

    pub fn limits(&self) -> &ReadLimits {
        &self.limits
    }

    /// The key the log's checkpoints verify with.
    pub fn verifier(&self) -> &VerifierKey {
        &self.verifier
    }

    /// Memory the store holds, by part.
    pub fn memory(&self) -> Vec<tlog_storage::MemoryPart> {
        self.store.memory()
    }

    /// The newest signed checkpoint.
    pub fn latest(&self) -> Arc<SignedCheckpoint> {
        self.latest.borrow().clone()
    }

    /// A receiver that sees every newly published checkpoint.
    pub fn subscribe(&self) -> watch::Receiver<Arc<SignedCheckpoint>> {
        self.latest.clone()
    }

    /// The signed checkpoint published for exactly `size`; 0 means the latest.
    pub fn checkpoint(&self, size: TreeSize) -> Result<Arc<SignedCheckpoint>> {
        self.checkpoint_in(size, ReadTier::Any).map(answered)
    }

    /// The checkpoint for `size` (0: the latest) if it is the latest or a recently read one; an error beyond the
    /// latest.
    fn checkpoint_in_memory(&self, size: TreeSize) -> Result<Option<Arc<SignedCheckpoint>>> {
        let latest = self.latest();
        if size.0 == 0 || size == latest.checkpoint.size {
            return Ok(Some(latest));
        }
        if size > latest.checkpoint.size {
            return Err(Error::SizeBeyondLog {
                size: size.0,
                latest: latest.checkpoint.size.0,
            });
        }
        let cache = self.checkpoints.lock().unwrap_or_else(|p| p.into_inner());
        Ok(cache.get(&size.0).cloned())
    }

    /// [`LogReader::checkpoint`] within `tier`: the latest and recently read ones come from memory.
    fn checkpoint_in(
        &self,
        size: TreeSize,
        tier: ReadTier,
    ) -> Result<Option<Arc<SignedCheckpoint>>> {
        if let Some(cp) = self.checkpoint_in_memory(size)? {
            return Ok(Some(cp));
        }
        if tier == ReadTier::Memory {
            return Ok(None);
        }
        let note = self
            .store
            .checkpoint(size)?
            .ok_or(Error::NoCheckpoint(size.0))?;
        // Stored checkpoints were signed by this log; checking them again catches on-disk corruption.
        let cp = Arc::new(verify_checkpoint(&self.verifier, &note).map_err(|source| {
            Error::StoredCheckpoint {
                size: size.0,
                source,
            }
        })?);
        let mut cache = self.checkpoints.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= self.limits.checkpoint_cache {
            cache.clear();
        }
        cache.insert(size.0, cp.clone());
        Ok(Some(cp))
    }

    /// Whether the log published a checkpoint for `size` (an error if it did not); `false` when that is not
    /// known from memory and `tier` is [`ReadTier::Memory`]. Only the existence counts: unlike
    /// [`LogReader::checkpoint_in`], a stored note is not parsed and its signature not checked (that costs more
    /// than the proof), since it is not served.
    fn published_in(&self, size: TreeSize, tier: ReadTier) -> Result<bool> {
        if self.checkpoint_in_memory(size)?.is_some()
            || self
                .published
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(&size.0)
        {
            return Ok(true);
        }
        if tier == ReadTier::Memory {
            return Ok(false);
        }
        self.store
            .checkpoint(size)?
            .ok_or(Error::NoCheckpoint(size.0))?;
        let mut published = self.published.lock().unwrap_or_else(|p| p.into_inner());
        if published.len() >= self.limits.published_cache {
            published.clear();
        }
        published.insert(size.0);
        Ok(true)
    }

    /// The hashes of `ids`, in one batched read within `tier`.
    fn nodes_in(
        &self,
        mut ids: Vec<NodeId>,
        tier: ReadTier,
    ) -> Result<Option<HashMap<NodeId, Hash>>> {
        ids.sort_unstable();
        ids.dedup();
        let Some(hashes) = self.store.nodes_in(&ids, tier)? else {
            return Ok(None);
        };
        Ok(Some(ids.into_iter().zip(hashes).collect()))
    }

    fn node(nodes: &HashMap<NodeId, Hash>, id: NodeId) -> Result<Hash> {
        nodes
            .get(&id)
            .copied()
            .ok_or(Error::Store(StoreError::MissingNode(id)))
    }

    fn prove(plan: &ProofPlan, nodes: &HashMap<NodeId, Hash>) -> Result<Vec<Hash>> {
        let mine = plan
            .node_ids()
            .iter()
            .map(|id| Self::node(nodes, *id))
            .collect::<Result<Vec<Hash>>>()?;
        Ok(plan.build(&mine)?)
    }

    /// The proof `plan` describes, its nodes read in one batch within `tier`.
    fn prove_in(&self, plan: &ProofPlan, tier: ReadTier) -> Result<Option<Vec<Hash>>> {
        let Some(nodes) = self.nodes_in(plan.node_ids().to_vec(), tier)? else {
            return Ok(None);
        };
        Self::prove(plan, &nodes).map(Some)
    }

    /// The multiproof of `indices` (strictly increasing, each below `tree`) in the tree of size `tree`.
    fn multiproof_in(
        &self,
        indices: &[LeafIndex],
        tree: TreeSize,
        tier: ReadTier,
    ) -> Result<Option<Vec<Hash>>> {
        self.prove_in(&multi_inclusion_plan(indices, tree)?, tier)
    }

    /// Inclusion proof of a leaf (by index or by leaf hash) in the published tree `size` (0 = latest), with the
    /// leaf hash stored for it; the proof's nodes and the leaf come from one batched read.
    pub fn inclusion(&self, leaf: LeafRef, size: TreeSize) -> Result<InclusionAnswer> {
        self.inclusion_in(leaf, size, ReadTier::Any).map(answered)
    }

    /// [`LogReader::inclusion`] within `tier`: `None` when the answer is not all in memory and `tier` is
    /// [`ReadTier::Memory`].
    pub fn inclusion_in(
        &self,
        leaf: LeafRef,
        size: TreeSize,
        tier: ReadTier,
    ) -> Result<Option<InclusionAnswer>> {
        let index = match leaf {
            LeafRef::Index(index) => index,
            LeafRef::Hash(hash) => {
                let Some(mut found) = self
                    .store
                    .leaf_indices_in(std::slice::from_ref(&hash), tier)?
                else {
                    return Ok(None);
                };
                found.pop().flatten().ok_or(Error::UnknownLeaf(hash))?
            }
        };
        let checkpoint = self.checkpoint_in(size, tier).and_then(|cp| match cp {
            Some(cp) if index.0 >= cp.checkpoint.size.0 => Err(Error::LeafBeyondSize {
                index: index.0,
                size: cp.checkpoint.size.0,
            }),
            cp => Ok(cp),
        });
        let checkpoint = match (leaf, checkpoint) {
            // A leaf the log holds, asked about in a tree it is not in (or a size the log never reached).
            (
                LeafRef::Hash(hash),
                Err(Error::LeafBeyondSize { .. } | Error::SizeBeyondLog { .. }),
            ) => {
                return Err(Error::LeafNotInSize {
                    leaf: hash,
                    index: index.0,
                    size: size.0,
                });
            }
            (_, checkpoint) => match checkpoint? {
                Some(cp) => cp,
                None => return Ok(None),
            },
        };
        let tree = checkpoint.checkpoint.size;
        let plan = inclusion_plan(index, tree)?;
        let leaf_id = NodeId::leaf(index.0);
        let ids = plan.node_ids().iter().copied().chain([leaf_id]).collect();
        let Some(nodes) = self.nodes_in(ids, tier)? else {
            return Ok(None);
        };
        Ok(Some(InclusionAnswer {
            index,
            leaf_hash: Self::node(&nodes, leaf_id)?,
            proof: Self::prove(&plan, &nodes)?,
            checkpoint,
        }))
    }

    /// Consistency proof between published sizes `old` and `new` (new 0 = latest).
    pub fn consistency(
        &self,
        old: TreeSize,
        new: TreeSize,
    ) -> Result<(Vec<Hash>, Arc<SignedCheckpoint>)> {
        self.consistency_in(old, new, ReadTier::Any).map(answered)
    }

    /// [`LogReader::consistency`] within `tier`: `None` when the answer is not all in memory and `tier` is
    /// [`ReadTier::Memory`].
    pub fn consistency_in(
        &self,
        old: TreeSize,
        new: TreeSize,
        tier: ReadTier,
    ) -> Result<Option<(Vec<Hash>, Arc<SignedCheckpoint>)>> {
        let Some(cp) = self.checkpoint_in(new, tier)? else {
            return Ok(None);
        };
        let new = cp.checkpoint.size;
        if old.0 == 0 || old > new {
            return Err(Error::ConsistencySizes {
                old: old.0,
                new: new.0,
            });
        }
        // The old size must be one the log signed, so the proof links two published checkpoints.
        if old != new && !self.limits.consistency_from_any_size && !self.published_in(old, tier)? {
            return Ok(None);
        }
        Ok(self
            .prove_in(&consistency_plan(old, new)?, tier)?
            .map(|proof| (proof, cp)))
    }

    /// Multiproof of `indices` (strictly increasing, already checked by [`crate::validate`]) in the published tree
    /// `size` (0 = latest): all its nodes come from one batched read.
    pub fn multi_inclusion_in(
        &self,
        indices: &[LeafIndex],
        size: TreeSize,
        tier: ReadTier,
    ) -> Result<Option<(Vec<Hash>, Arc<SignedCheckpoint>)>> {
        let Some(cp) = self.checkpoint_in(size, tier)? else {
            return Ok(None);
        };
        let tree = cp.checkpoint.size;
        // Increasing: the last index is the largest.
        if let Some(last) = indices.last().filter(|last| last.0 >= tree.0) {
            return Err(Error::LeafBeyondSize {
                index: last.0,
                size: tree.0,
            });
        }
        Ok(self
            .multiproof_in(indices, tree, tier)?
            .map(|proof| (proof, cp)))
    }

    /// Entries `[start, end)`: a range already checked against the log's size and the read limit.
    pub fn entries(&self, start: LeafIndex, end: LeafIndex) -> Result<Vec<Vec<u8>>> {
        Ok(self.store.entries(start, end)?)
    }

    /// The opening of the private entry at `index`, decrypted with `wrapper`'s data key (see [`crate::private`]).
    pub fn private_payload(
        &self,
        wrapper: &dyn crate::private::KeyWrapper,
        index: LeafIndex,
    ) -> Result<crate::private::Opened> {
        let size = self.latest().checkpoint.size.0;
        if index.0 >= size {
            return Err(Error::LeafBeyondSize {
                index: index.0,
                size,
            });
        }
        crate::private::read_payload(self.store.as_ref(), wrapper, index)
    }

    /// Purges the rows erasures deleted from the store's files ([`LogStore::purge_erased`]).
    pub fn purge_erased(&self) -> Result<()> {
        Ok(self.store.purge_erased()?)
    }

    /// Checks that a signed checkpoint covers `tile` at its width: the latest signed tree is at least
    /// [`Tile::min_tree_size`]. That serves every tile of every published size (a partial tile of an older size is
    /// a prefix of the wider one stored now) and nothing beyond what the log signed.
    fn covered(&self, tile: &Tile) -> Result<()> {
        let size = self.latest().checkpoint.size.0;
        match tile.min_tree_size() {
            Some(min) if min <= size => Ok(()),
            _ => Err(Error::TileBeyondLog {
                path: tile.path(),
                size,
            }),
        }
    }

    /// The C2SP body of `tile` (uncompressed), if a signed checkpoint covers it: a hash tile's first `width`
    /// hashes, read from the stored tile (which may be wider: the tree grew, or the sequencer stored a batch it
    /// has not published yet); an entry bundle's `width` entries, each after its big-endian `uint16` length.
    pub fn tile(&self, tile: &Tile) -> Result<Vec<u8>> {
        self.covered(tile)?;
        match tile.kind {
            TileKind::Hashes(level) => {
                let len = usize::from(tile.width) * HASH_SIZE;
                match self.store.tile(level, tile.index)? {
                    Some(mut body) if body.len() >= len => {
                        body.truncate(len);
                        Ok(body)
                    }
                    _ => Err(Error::TileNotStored { path: tile.path() }),
                }
            }
            TileKind::Entries => {
                // Covered: the bundle's end is at most the tree size, so this neither overflows nor reads
                // past the stored entries.
                let start = tile.index * TILE_WIDTH;
                let end = start + u64::from(tile.width);
                let entries = self.store.entries(LeafIndex(start), LeafIndex(end))?;
                encode_bundle(&entries).map_err(|source| Error::Bundle {
                    path: tile.path(),
                    source,
                })
            }
        }
    }

    /// The multiproof of a committed submission's `leaves` ([`Committed::proven_leaves`]) against its checkpoint,
    /// in one batched read (for submissions [`Committed::multiproof_in_memory`] cannot prove: entries the log
    /// already held).
    pub fn receipt_multiproof(
        &self,
        committed: &Committed,
        leaves: &[(LeafIndex, Hash)],
    ) -> Result<Vec<Hash>> {
        let indices: Vec<LeafIndex> = leaves.iter().map(|(index, _)| *index).collect();
        let tree = committed.checkpoint.checkpoint.size;
        self.multiproof_in(&indices, tree, ReadTier::Any)
            .map(answered)
    }

    /// Inclusion proofs of every entry of a committed submission against its checkpoint, from the store.
    pub fn receipt_proofs(&self, committed: &Committed) -> Result<Vec<Vec<Hash>>> {
        let leaves = committed.proven_leaves();
        let multi = self.receipt_multiproof(committed, &leaves)?;
        committed.proofs_from_multi(&leaves, &multi)
    }
}

/// The answer of a read within [`ReadTier::Any`], which always answers (only [`ReadTier::Memory`] declines).
pub(crate) fn answered<T>(answer: Option<T>) -> T {
    answer.expect("a read within ReadTier::Any always answers")
}
