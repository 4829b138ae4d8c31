//! A verifying reader of C2SP `tlog-tiles` logs: checkpoint, proofs, roots and entries built locally from hash
//! tiles and entry bundles, and checked against signed checkpoints before anything is returned.
//!
//! The transport is a [`TileSource`]: `http::HttpTiles` (feature `http`) reads
//! `<prefix>/checkpoint` and `<prefix>/tile/...` over HTTP, [`MemoryTiles`] serves a map (tests, mirrors).
//! [`TileClient`] does the rest with tlog-core's plans: `inclusion_plan` / `consistency_plan` / `root_plan` name
//! the nodes, [`node_in_tile`] says which tile slice holds each, the tiles a proof needs are fetched in parallel
//! (at most [`TileClient::with_parallelism`] at a time), [`fold_tile_hashes`] turns slices into node hashes and
//! `ProofPlan::build` into the RFC 9162 proof, which tlog-core's verifiers check against the checkpoint root.
//!
//! Tiles are read at the width they have in the tree of a *verified* checkpoint (the spec: a client "MUST NOT
//! fetch arbitrary partial tiles without verifying a checkpoint with a size that requires their existence"); a
//! partial tile the log no longer serves is cut from the full tile ("MAY fetch the full tile ... as a fallback").
//! Full tiles never change, so they are cached (bounded, oldest out first); a tile that took part in a failed
//! verification is evicted, so one bad answer does not poison later ones.
//!
//! Tiles are unsigned: nothing read from them is trusted until a proof through them reaches a signed root. Entries
//! are checked against level-0 tiles, which are themselves authenticated by the inclusion proof of their first leaf
//! (built from the same tile, so the proof covers every hash in it).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::{StreamExt, TryStreamExt, stream};
use tlog_checkpoint::{Checkpoint, SignedCheckpoint, VerifierKey};
use tlog_core::tiles::{TILE_WIDTH, Tile, fold_tile_hashes, node_in_tile};
use tlog_core::{
    CompactRange, Hash, LeafIndex, NodeId, ProofPlan, TreeSize, consistency_plan, inclusion_plan,
    leaf_hash, root_plan, verify_consistency, verify_inclusion,
};

use crate::checkpoint::{check_extends, check_root, tree_of};
use crate::{ClientError, Receipt, TrustedLog, VerifiedReceipt, WitnessPolicy};

/// Tiles fetched at once by default.
pub const DEFAULT_PARALLELISM: usize = 16;
/// Full hash tiles kept by default (8 KiB each: 8 MiB).
pub const DEFAULT_CACHE_TILES: usize = 1024;

/// Where tiles come from: the `<prefix>/checkpoint` and `<prefix>/<tile path>` resources of one log.
pub trait TileSource: Send + Sync {
    /// The body of a hash tile or entry bundle, decoded from any HTTP content encoding. A resource the source
    /// does not have is [`ClientError::TileNotFound`].
    fn fetch(&self, tile: &Tile) -> impl Future<Output = Result<Vec<u8>, ClientError>> + Send;

    /// The body of `<prefix>/checkpoint`: the latest signed note.
    fn checkpoint(&self) -> impl Future<Output = Result<Vec<u8>, ClientError>> + Send;
}

impl<S: TileSource> TileSource for Arc<S> {
    fn fetch(&self, tile: &Tile) -> impl Future<Output = Result<Vec<u8>, ClientError>> + Send {
        S::fetch(self, tile)
    }

    fn checkpoint(&self) -> impl Future<Output = Result<Vec<u8>, ClientError>> + Send {
        S::checkpoint(self)
    }
}

/// Tiles in memory, by path: a [`TileSource`] for tests and for serving a copy. It serves exactly what was put
/// in, and counts fetches.
#[derive(Debug, Default)]
pub struct MemoryTiles {
    files: Mutex<HashMap<String, Vec<u8>>>,
    checkpoint: Mutex<Vec<u8>>,
    fetches: std::sync::atomic::AtomicUsize,
}

impl MemoryTiles {
    /// An empty source (no checkpoint, no tiles).
    pub fn new() -> Self {
        MemoryTiles::default()
    }

    /// Sets the body of `<prefix>/checkpoint`.
    pub fn set_checkpoint(&self, note: impl Into<Vec<u8>>) {
        *self
            .checkpoint
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = note.into();
    }

    /// Stores `body` at `path` (a tile path below the prefix).
    pub fn insert(&self, path: impl Into<String>, body: impl Into<Vec<u8>>) {
        self.files
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(path.into(), body.into());
    }

    /// Removes what is stored at `path`, returning it.
    pub fn remove(&self, path: &str) -> Option<Vec<u8>> {
        self.files
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(path)
    }

    /// How many tiles and bundles have been fetched.
    pub fn fetches(&self) -> usize {
        self.fetches.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl TileSource for MemoryTiles {
    async fn fetch(&self, tile: &Tile) -> Result<Vec<u8>, ClientError> {
        self.fetches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = tile.path();
        let files = self.files.lock().unwrap_or_else(PoisonError::into_inner);
        files
            .get(&path)
            .cloned()
            .ok_or(ClientError::TileNotFound { path })
    }

    async fn checkpoint(&self) -> Result<Vec<u8>, ClientError> {
        let note = self
            .checkpoint
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if note.is_empty() {
            return Err(ClientError::TileNotFound {
                path: "checkpoint".into(),
            });
        }
        Ok(note)
    }
}

/// Full hash tiles by coordinates, first in first out once `capacity` is reached.
#[derive(Debug)]
struct TileCache {
    capacity: usize,
    /// The tiles, and their order of arrival.
    inner: Mutex<(TileMap, VecDeque<Tile>)>,
}

impl TileCache {
    fn new(capacity: usize) -> Self {
        TileCache {
            capacity,
            inner: Mutex::new((HashMap::new(), VecDeque::new())),
        }
    }

    fn get(&self, tile: &Tile) -> Option<Arc<[Hash]>> {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.0.get(tile).cloned()
    }

    fn put(&self, tile: Tile, hashes: Arc<[Hash]>) {
        if !tile.is_full() || self.capacity == 0 {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let (map, order) = &mut *inner;
        if map.insert(tile, hashes).is_none() {
            order.push_back(tile);
        }
        while map.len() > self.capacity {
            match order.pop_front() {
                Some(old) => {
                    map.remove(&old);
                }
                None => break,
            }
        }
    }

    fn evict<'a>(&self, tiles: impl IntoIterator<Item = &'a Tile>) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let (map, order) = &mut *inner;
        for tile in tiles {
            if map.remove(tile).is_some() {
                order.retain(|t| t != tile);
            }
        }
    }
}

/// Hash tiles fetched for one operation, by coordinates at their width in the tree read.
type TileMap = HashMap<Tile, Arc<[Hash]>>;

/// A verifying client of a tiled log (see the [module documentation](self)).
#[derive(Debug)]
pub struct TileClient<S> {
    source: S,
    key: VerifierKey,
    policy: WitnessPolicy,
    cache: TileCache,
    parallelism: usize,
}

impl<S: TileSource> TileClient<S> {
    /// A client of the log whose checkpoints `key` signs, reading from `source`.
    pub fn new(source: S, key: VerifierKey) -> Self {
        TileClient {
            source,
            key,
            policy: WitnessPolicy::none(),
            cache: TileCache::new(DEFAULT_CACHE_TILES),
            parallelism: DEFAULT_PARALLELISM,
        }
    }

    /// Requires witness cosignatures on every checkpoint [`checkpoint`](Self::checkpoint) returns.
    pub fn with_policy(mut self, policy: WitnessPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// At most `n` (at least 1) tiles in flight at once.
    pub fn with_parallelism(mut self, n: usize) -> Self {
        self.parallelism = n.max(1);
        self
    }

    /// Keeps at most `tiles` full hash tiles (0: no cache).
    pub fn with_cache_capacity(mut self, tiles: usize) -> Self {
        self.cache = TileCache::new(tiles);
        self
    }

    /// The log's verifier key.
    pub fn key(&self) -> &VerifierKey {
        &self.key
    }

    /// The witness policy checkpoints are verified with.
    pub fn policy(&self) -> &WitnessPolicy {
        &self.policy
    }

    /// The tile source.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// Fetches `<prefix>/checkpoint` and verifies it with the log key and the witness policy.
    pub async fn checkpoint(&self) -> Result<SignedCheckpoint, ClientError> {
        let note = self.source.checkpoint().await?;
        self.policy.verify(&self.key, &note)
    }

    /// The hashes of `nodes` (complete nodes of the tree of `tree` leaves), read from the tiles of that tree.
    /// Unverified: tiles are unsigned; pass the result through a proof to a signed root.
    pub async fn node_hashes(
        &self,
        nodes: &[NodeId],
        tree: TreeSize,
    ) -> Result<Vec<Hash>, ClientError> {
        let tiles = self.tiles_for(nodes, tree).await?;
        hashes_from(&tiles, nodes, tree)
    }

    /// The RFC 9162 inclusion proof of leaf `index` in the tree of `size`, built from the tiles of the tree of
    /// `tree` leaves (`size <= tree`). Unverified; [`prove_inclusion`](Self::prove_inclusion) verifies.
    pub async fn inclusion_proof(
        &self,
        index: LeafIndex,
        size: TreeSize,
        tree: TreeSize,
    ) -> Result<Vec<Hash>, ClientError> {
        check_within(size, tree)?;
        let plan = inclusion_plan(index, size).map_err(core_error)?;
        self.build(&plan, tree).await
    }

    /// The RFC 9162 consistency proof from size `old` to size `new` (`0 < old <= new <= tree`), built from the
    /// tiles of the tree of `tree` leaves. Unverified; [`prove_consistency`](Self::prove_consistency) verifies.
    pub async fn consistency_proof(
        &self,
        old: TreeSize,
        new: TreeSize,
        tree: TreeSize,
    ) -> Result<Vec<Hash>, ClientError> {
        check_within(new, tree)?;
        let plan = consistency_plan(old, new).map_err(core_error)?;
        self.build(&plan, tree).await
    }

    async fn build(&self, plan: &ProofPlan, tree: TreeSize) -> Result<Vec<Hash>, ClientError> {
        let hashes = self.node_hashes(plan.node_ids(), tree).await?;
        plan.build(&hashes).map_err(core_error)
    }

    /// Proves leaf `index` is in the tree of `checkpoint` (already verified) from its tiles: the leaf hash is read
    /// from the level-0 tile, the proof built and verified against the checkpoint root. Returned as a receipt.
    pub async fn prove_inclusion(
        &self,
        index: LeafIndex,
        checkpoint: &SignedCheckpoint,
    ) -> Result<VerifiedReceipt, ClientError> {
        let size = checkpoint.checkpoint.size;
        let plan = inclusion_plan(index, size).map_err(core_error)?;
        let leaf = NodeId::new(0, index.0);
        let mut nodes = vec![leaf];
        nodes.extend_from_slice(plan.node_ids());
        let tiles = self.tiles_for(&nodes, size).await?;
        let hashes = hashes_from(&tiles, &nodes, size)?;
        let proof = plan.build(&hashes[1..]).map_err(core_error)?;
        let receipt = Receipt {
            index,
            leaf_hash: hashes[0],
            checkpoint: checkpoint.note.clone(),
            inclusion_proof: proof,
            duplicate: false,
        };
        let verified = crate::receipt::verify_receipt_against(checkpoint.clone(), &receipt, None);
        if verified.is_err() {
            self.cache.evict(tiles.keys());
        }
        verified
    }

    /// Proves that the tree of `new` extends the tree of `old` (both verified checkpoints) with a consistency
    /// proof built from `new`'s tiles, and returns the proof. Equal sizes with different roots are a
    /// [`ClientError::Fork`]; a proof that fails because `new`'s tree has another root at `old`'s size is one too
    /// (the tiles' root for that size, linked to `new`'s signed root by the same proof).
    pub async fn prove_consistency(
        &self,
        old: &SignedCheckpoint,
        new: &SignedCheckpoint,
    ) -> Result<Vec<Hash>, ClientError> {
        let (old_tree, new_tree) = (tree_of(&old.checkpoint), tree_of(&new.checkpoint));
        if old_tree.0.0 == 0 || old_tree.0 >= new_tree.0 {
            crate::checkpoint::check_forward(old_tree, new_tree, &[])?;
            return Ok(Vec::new());
        }
        let plan = consistency_plan(old_tree.0, new_tree.0).map_err(core_error)?;
        let tiles = self.tiles_for(plan.node_ids(), new_tree.0).await?;
        let proof = plan
            .build(&hashes_from(&tiles, plan.node_ids(), new_tree.0)?)
            .map_err(core_error)?;
        if let Err(e) = check_extends(old_tree, new_tree, &proof) {
            let fork = self.fork_behind(old_tree, new_tree, &proof).await;
            self.cache.evict(tiles.keys());
            return Err(fork.unwrap_or(e));
        }
        Ok(proof)
    }

    /// When a consistency proof from `old` fails: if the tiles of `new`'s tree give another root for `old`'s size
    /// and the same proof links that root to `new`'s signed root, `new`'s tree forked from `old`.
    async fn fork_behind(
        &self,
        (old_size, old_root): (TreeSize, Hash),
        (new_size, new_root): (TreeSize, Hash),
        proof: &[Hash],
    ) -> Option<ClientError> {
        let plan = root_plan(old_size);
        let root = self.build(&plan, new_size).await.ok()?.pop()?;
        let linked = verify_consistency(old_size, new_size, proof, &root, &new_root).is_ok();
        (linked && root != old_root).then_some(ClientError::Fork {
            size: old_size,
            trusted_root: old_root,
            new_root: root,
        })
    }

    /// The root of the tree of `size` leaves, rebuilt from the tiles of `checkpoint`'s tree and verified: equal to
    /// the checkpoint root at its own size, linked to it by a consistency proof below.
    pub async fn root_at(
        &self,
        size: TreeSize,
        checkpoint: &SignedCheckpoint,
    ) -> Result<Hash, ClientError> {
        let (tree, signed_root) = tree_of(&checkpoint.checkpoint);
        check_within(size, tree)?;
        let root_nodes = root_plan(size);
        let proof_plan = if size.0 == 0 || size == tree {
            None
        } else {
            Some(consistency_plan(size, tree).map_err(core_error)?)
        };
        let mut nodes = root_nodes.node_ids().to_vec();
        if let Some(plan) = &proof_plan {
            nodes.extend_from_slice(plan.node_ids());
        }
        let tiles = self.tiles_for(&nodes, tree).await?;
        let hashes = hashes_from(&tiles, &nodes, tree)?;
        let (root_hashes, proof_hashes) = hashes.split_at(root_nodes.node_ids().len());
        let root = root_nodes.build(root_hashes).map_err(core_error)?[0];
        let checked = match &proof_plan {
            None if size == tree => check_extends((tree, signed_root), (tree, root), &[]),
            None => Ok(()), // the empty tree's root is SHA-256("") in every log
            Some(plan) => {
                let proof = plan.build(proof_hashes).map_err(core_error)?;
                verify_consistency(size, tree, &proof, &root, &signed_root)
                    .map_err(ClientError::ConsistencyProofInvalid)
            }
        };
        if let Err(e) = checked {
            self.cache.evict(tiles.keys());
            return Err(e);
        }
        Ok(root)
    }

    /// Entries `[start, end)` of the tree of `checkpoint` (verified), from entry bundles, each checked against
    /// the leaf hash of its level-0 tile, which is authenticated by an inclusion proof against the checkpoint.
    pub async fn entries(
        &self,
        start: LeafIndex,
        end: LeafIndex,
        checkpoint: &SignedCheckpoint,
    ) -> Result<Vec<Vec<u8>>, ClientError> {
        let size = checkpoint.checkpoint.size;
        if start.0 > end.0 || end.0 > size.0 {
            return Err(ClientError::InvalidRequest(
                "entries [start, end) must be inside the checkpoint's tree",
            ));
        }
        if start == end {
            return Ok(Vec::new());
        }
        let first = start.0 / TILE_WIDTH;
        let last = (end.0 - 1) / TILE_WIDTH;
        // Level-0 tiles, and the nodes of the inclusion proof of each tile's first leaf.
        let mut nodes = Vec::new();
        let mut plans = Vec::new();
        for n in first..=last {
            let plan = inclusion_plan(LeafIndex(n * TILE_WIDTH), size).map_err(core_error)?;
            nodes.push(NodeId::new(0, n * TILE_WIDTH));
            nodes.extend_from_slice(plan.node_ids());
            plans.push(plan);
        }
        let (tiles, bundles) = futures_util::future::try_join(
            self.tiles_for(&nodes, size),
            self.bundles(first..=last, size),
        )
        .await?;
        let authenticated = self.authenticate_leaf_tiles(&tiles, &nodes, &plans, checkpoint);
        if let Err(e) = authenticated {
            self.cache.evict(tiles.keys());
            return Err(e);
        }
        let mut out = Vec::with_capacity((end.0 - start.0) as usize);
        for (n, bundle) in (first..).zip(bundles) {
            let leaf_tile = tile_at(&tiles, Tile::hashes_at(0, n, size))?;
            for (i, entry) in bundle.into_iter().enumerate() {
                let index = n * TILE_WIDTH + i as u64;
                if index < start.0 || index >= end.0 {
                    continue;
                }
                let entry_hash = leaf_hash(&entry);
                let tile_hash = leaf_tile[i];
                if entry_hash != tile_hash {
                    return Err(ClientError::EntryMismatch {
                        index,
                        entry_hash,
                        tile_hash,
                    });
                }
                out.push(entry);
            }
        }
        Ok(out)
    }

    /// Checks each level-0 tile in `tiles` named by `nodes` (a leaf, then its inclusion plan, per tile) by the
    /// inclusion proof of its first leaf, built from the same tiles.
    fn authenticate_leaf_tiles(
        &self,
        tiles: &TileMap,
        nodes: &[NodeId],
        plans: &[ProofPlan],
        checkpoint: &SignedCheckpoint,
    ) -> Result<(), ClientError> {
        let (size, root) = tree_of(&checkpoint.checkpoint);
        let mut rest = nodes;
        for plan in plans {
            let (mine, tail) = rest.split_at(1 + plan.node_ids().len());
            rest = tail;
            let hashes = hashes_from(tiles, mine, size)?;
            let proof = plan.build(&hashes[1..]).map_err(core_error)?;
            verify_inclusion(&hashes[0], LeafIndex(mine[0].index), size, &proof, &root)
                .map_err(ClientError::InclusionProofInvalid)?;
        }
        Ok(())
    }

    /// Downloads the entries `[frontier.size, checkpoint.size)` from entry bundles and checks that, appended to
    /// `frontier`, they rebuild `checkpoint`'s root; returns the extended frontier. Bundles are fetched in
    /// parallel and hashed in order, so memory stays `O(parallelism * bundle)`.
    pub async fn audit_entries(
        &self,
        frontier: &CompactRange,
        checkpoint: &Checkpoint,
    ) -> Result<CompactRange, ClientError> {
        let (start, end) = (frontier.size().0, checkpoint.size.0);
        if end < start {
            return Err(ClientError::CheckpointOlderThanTrusted {
                trusted_size: frontier.size(),
                new_size: checkpoint.size,
            });
        }
        let mut tree = frontier.clone();
        if start < end {
            let first = start / TILE_WIDTH;
            let last = (end - 1) / TILE_WIDTH;
            let mut bundles = stream::iter(first..=last)
                .map(|n| self.bundle(n, checkpoint.size))
                .buffered(self.parallelism);
            while let Some((n, bundle)) = bundles.try_next().await? {
                let skip = start.saturating_sub(n * TILE_WIDTH) as usize;
                tree.extend(bundle.iter().skip(skip).map(|e| leaf_hash(e)), |_, _| {})
                    .map_err(core_error)?;
            }
        }
        check_root(&tree, checkpoint)?;
        Ok(tree)
    }

    /// The index of the first leaf with `hash` in the tree of `checkpoint` (verified), found by scanning its level-0
    /// tiles (tiles have no index by hash), with the inclusion proof verified. `None` when no tile holds it.
    pub async fn find_leaf(
        &self,
        hash: &Hash,
        checkpoint: &SignedCheckpoint,
    ) -> Result<Option<VerifiedReceipt>, ClientError> {
        let size = checkpoint.checkpoint.size;
        let tiles = size.0.div_ceil(TILE_WIDTH);
        let mut scan = stream::iter(0..tiles)
            .map(|n| async move {
                let tile = Tile::hashes_at(0, n, size).ok_or(ClientError::InvalidRequest(
                    "a level-0 tile outside the tree",
                ))?;
                let hashes = self.hash_tile(tile).await?;
                Ok::<_, ClientError>((n, hashes))
            })
            .buffered(self.parallelism);
        while let Some((n, hashes)) = scan.try_next().await? {
            if let Some(i) = hashes.iter().position(|h| h == hash) {
                let index = LeafIndex(n * TILE_WIDTH + i as u64);
                return self.prove_inclusion(index, checkpoint).await.map(Some);
            }
        }
        Ok(None)
    }

    /// Moves `trusted` to `new` (a verified checkpoint) with a consistency proof built from `new`'s tiles; see
    /// [`TrustedLog::advance`] for the rules and [`prove_consistency`](Self::prove_consistency) for forks.
    pub async fn advance(
        &self,
        trusted: &mut TrustedLog,
        new: SignedCheckpoint,
    ) -> Result<(), ClientError> {
        if !trusted.needs_proof(new.checkpoint.size) {
            return trusted.advance(new, &[]);
        }
        let old = trusted
            .latest()
            .cloned()
            .ok_or(ClientError::InvalidRequest(
                "a non-empty trusted tree has a checkpoint",
            ))?;
        let proof = self.prove_consistency(&old, &new).await?;
        trusted.advance(new, &proof)
    }

    /// Cross-checks a checkpoint from elsewhere (the log's gRPC API, another mirror) against the tiles of
    /// `checkpoint` (this source's, verified): a tree of the same size must have the same root, a smaller one the
    /// root the tiles give for its size, and a larger one must extend `checkpoint` (by a proof the caller gets
    /// elsewhere: tiles of a tree larger than this source's checkpoint do not exist yet). A disagreement is the
    /// [`ClientError::Fork`] the two signed notes prove.
    pub async fn cross_check(
        &self,
        other: &SignedCheckpoint,
        checkpoint: &SignedCheckpoint,
    ) -> Result<(), ClientError> {
        let (size, other_root) = tree_of(&other.checkpoint);
        if size > checkpoint.checkpoint.size {
            return Ok(());
        }
        let root = self.root_at(size, checkpoint).await?;
        if root != other_root {
            return Err(ClientError::Fork {
                size,
                trusted_root: other_root,
                new_root: root,
            });
        }
        Ok(())
    }

    /// Fetches (or takes from the cache) every tile holding a slice of `nodes` in the tree of `tree` leaves.
    async fn tiles_for(&self, nodes: &[NodeId], tree: TreeSize) -> Result<TileMap, ClientError> {
        let wanted: BTreeSet<Tile> = nodes
            .iter()
            .map(|&node| locate(node, tree).map(|(tile, _)| tile))
            .collect::<Result<_, _>>()?;
        stream::iter(wanted)
            .map(|tile| async move { Ok::<_, ClientError>((tile, self.hash_tile(tile).await?)) })
            .buffer_unordered(self.parallelism)
            .try_collect()
            .await
    }

    /// One hash tile, checked for length: from the cache, the source, or (for a partial tile the source no longer
    /// has) cut from the full tile.
    async fn hash_tile(&self, tile: Tile) -> Result<Arc<[Hash]>, ClientError> {
        if let Some(hashes) = self.cache.get(&tile) {
            return Ok(hashes);
        }
        let hashes: Arc<[Hash]> = match self.source.fetch(&tile).await {
            Ok(body) => parse_hashes(&tile, &body)?.into(),
            Err(ClientError::TileNotFound { .. }) if !tile.is_full() => {
                let full = Tile {
                    width: TILE_WIDTH as u16,
                    ..tile
                };
                let hashes: Arc<[Hash]> =
                    parse_hashes(&full, &self.source.fetch(&full).await?)?.into();
                self.cache.put(full, hashes.clone());
                hashes[..usize::from(tile.width)].into()
            }
            Err(e) => return Err(e),
        };
        self.cache.put(tile, hashes.clone());
        Ok(hashes)
    }

    /// The entry bundles `indices` at their width in the tree of `size`, in order.
    async fn bundles(
        &self,
        indices: std::ops::RangeInclusive<u64>,
        size: TreeSize,
    ) -> Result<Vec<Vec<Vec<u8>>>, ClientError> {
        stream::iter(indices)
            .map(|n| async move { Ok::<_, ClientError>(self.bundle(n, size).await?.1) })
            .buffered(self.parallelism)
            .try_collect()
            .await
    }

    /// Entry bundle `n` at its width in the tree of `size`, checked to hold exactly that many entries; a partial
    /// bundle the source no longer has is cut from the full one.
    async fn bundle(&self, n: u64, size: TreeSize) -> Result<(u64, Vec<Vec<u8>>), ClientError> {
        let tile = Tile::entries_at(n, size).ok_or(ClientError::InvalidRequest(
            "an entry bundle outside the tree",
        ))?;
        let entries = match self.source.fetch(&tile).await {
            Ok(body) => parse_entries(&tile, &body)?,
            Err(ClientError::TileNotFound { .. }) if !tile.is_full() => {
                let full = Tile {
                    width: TILE_WIDTH as u16,
                    ..tile
                };
                let mut entries = parse_entries(&full, &self.source.fetch(&full).await?)?;
                entries.truncate(usize::from(tile.width));
                entries
            }
            Err(e) => return Err(e),
        };
        Ok((n, entries))
    }
}

fn parse_hashes(tile: &Tile, body: &[u8]) -> Result<Vec<Hash>, ClientError> {
    tile.parse_hashes(body)
        .map_err(|source| ClientError::BadTile {
            path: tile.path(),
            source,
        })
}

fn parse_entries(tile: &Tile, body: &[u8]) -> Result<Vec<Vec<u8>>, ClientError> {
    let entries = tile
        .parse_entries(body)
        .map_err(|source| ClientError::BadTile {
            path: tile.path(),
            source,
        })?;
    Ok(entries.into_iter().map(<[u8]>::to_vec).collect())
}

/// Where `node` lies in the tiles of the tree of `tree` leaves.
fn locate(node: NodeId, tree: TreeSize) -> Result<(Tile, std::ops::Range<usize>), ClientError> {
    node_in_tile(node, tree).ok_or(ClientError::InvalidRequest(
        "a proof node outside the tree whose tiles are read",
    ))
}

fn tile_at(tiles: &TileMap, tile: Option<Tile>) -> Result<&Arc<[Hash]>, ClientError> {
    tile.and_then(|t| tiles.get(&t))
        .ok_or(ClientError::InvalidRequest("a tile that was not fetched"))
}

/// The hashes of `nodes` from fetched tiles.
fn hashes_from(
    tiles: &TileMap,
    nodes: &[NodeId],
    tree: TreeSize,
) -> Result<Vec<Hash>, ClientError> {
    nodes
        .iter()
        .map(|&node| {
            let (tile, range) = locate(node, tree)?;
            let hashes = tile_at(tiles, Some(tile))?;
            // Widths are checked when a tile is parsed, so the slice is in range; checked all the same.
            hashes
                .get(range)
                .and_then(fold_tile_hashes)
                .ok_or(ClientError::InvalidRequest("a node slice outside its tile"))
        })
        .collect()
}

fn check_within(size: TreeSize, tree: TreeSize) -> Result<(), ClientError> {
    if size > tree {
        return Err(ClientError::InvalidRequest(
            "a proof for a tree larger than the one whose tiles are read",
        ));
    }
    Ok(())
}

/// Plan errors are bad sizes or indices the caller passed.
fn core_error(e: tlog_core::CoreError) -> ClientError {
    match e {
        tlog_core::CoreError::Invalid(v) => ClientError::InvalidProofRequest(v),
        _ => ClientError::InvalidRequest("proof plan and tile hashes disagree"),
    }
}
