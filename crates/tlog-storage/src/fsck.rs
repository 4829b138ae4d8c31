//! The integrity check of a stored log (`tlogd verify` runs it on a store at rest, the server's scrub on its live
//! store).
//!
//! The check trusts nothing derived: it streams the stored entries in bounded chunks, recomputes every leaf hash
//! and every tree node with a [`CompactRange`] (whose visitor reports each node as it completes), and compares
//! them with the leaf-hash index and with every node stored in the tiles (interior rows and partial edge tiles
//! included). Every stored signed checkpoint must verify with the log's key and carry the root recomputed at its
//! size. Memory is `O(chunk + log n)`, whatever the log's size. It reads through the store's own readers, so the
//! layout is known in one place.
//!
//! The first disagreement found, in log order, ends the check with a [`Corruption`] naming the entry index, node
//! (level, index), tile or checkpoint size at fault.
//!
//! Known gap: leaf-index rows are looked up from the entries, so a stray leaf-index row whose hash matches no
//! entry is not found (reading the whole index back would double the cost).

use std::collections::VecDeque;

use tlog_checkpoint::{VerifierKey, verify_checkpoint};
use tlog_core::{
    CompactRange, CoreError, Hash, LeafIndex, NodeId, TreeSize, empty_root, leaf_hash,
};

use crate::identity::check_identity;
use crate::tile::{self, NodeSlot, TILE_HEIGHT, TILE_WIDTH, TileId};
use crate::tiled::{Backend, LeafRow};
use crate::{BackendErrorKind, Corruption, LogStore, StoreError, TiledStore};

/// Entries read and checked per step by default.
pub const DEFAULT_CHUNK_ENTRIES: usize = 1024;
/// Stored checkpoints read ahead per page.
const CHECKPOINT_PAGE: usize = 256;

/// How much of the store must belong to the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The store is at rest (`tlogd verify`): it must hold exactly the log of its latest checkpoint — no entries
    /// or tiles beyond it, every edge tile exactly as wide as that size makes it.
    AtRest,
    /// The store may be growing under a running server (the scrub): the log is checked up to its size when the
    /// check starts, and rows a newer batch added are tolerated.
    Live,
}

/// Options of a check.
#[derive(Clone, Debug)]
pub struct Options {
    pub scope: Scope,
    /// Entries read and checked per step; memory is this many entries plus their nodes and tiles.
    pub chunk_entries: usize,
}

impl Options {
    /// A check of a store at rest.
    pub fn at_rest() -> Self {
        Options {
            scope: Scope::AtRest,
            chunk_entries: DEFAULT_CHUNK_ENTRIES,
        }
    }

    /// A check of a store a running server may be appending to.
    pub fn live() -> Self {
        Options {
            scope: Scope::Live,
            ..Self::at_rest()
        }
    }
}

/// What a passed check covered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// Size of the tree checked (the latest checkpoint's).
    pub tree_size: u64,
    /// Root of that tree, recomputed from the entries.
    pub root: Hash,
    /// Tree nodes recomputed and found in the tiles (leaves included).
    pub nodes: u64,
    /// Signed checkpoints verified.
    pub checkpoints: u64,
}

/// Why a check did not pass.
#[derive(Debug, thiserror::Error)]
pub enum FsckError {
    /// The store is damaged or inconsistent, or belongs to another log.
    #[error("integrity failure: {0}")]
    Corrupt(Corruption),
    /// The store could not be read.
    #[error("storage: {0}")]
    Store(StoreError),
    /// Tree arithmetic refused the log's size (beyond `u64`).
    #[error("tree: {0}")]
    Core(#[from] CoreError),
    /// The caller's progress callback asked the check to stop.
    #[error("check cancelled")]
    Cancelled,
}

impl From<Corruption> for FsckError {
    fn from(c: Corruption) -> Self {
        FsckError::Corrupt(c)
    }
}

impl From<StoreError> for FsckError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Corrupt(c) => FsckError::Corrupt(c),
            // A damaged file is the log's integrity, not an I/O hiccup.
            StoreError::Backend(b) if b.kind == BackendErrorKind::Corruption => {
                FsckError::Corrupt(Corruption::Backend(b))
            }
            other => FsckError::Store(other),
        }
    }
}

/// Checks a log's store against its verifier key; see the module docs. `progress(done, total)` is called after
/// every chunk; returning `false` stops the check with [`FsckError::Cancelled`].
pub fn check<B: Backend>(
    store: &TiledStore<B>,
    key: &VerifierKey,
    options: &Options,
    progress: &mut dyn FnMut(u64, u64) -> bool,
) -> Result<Report, FsckError> {
    let size = store.tree_size()?.0;
    if let Err(mismatch) = check_identity(store, key)? {
        return Err(Corruption::Identity(mismatch).into());
    }

    let chunk = options.chunk_entries.max(1) as u64;
    let mut frontier = CompactRange::new();
    let mut checkpoints = Checkpoints {
        queue: VecDeque::new(),
        next: Some(0),
    };
    let mut report = Report {
        tree_size: size,
        root: empty_root(),
        nodes: 0,
        checkpoints: 0,
    };
    // The empty tree's checkpoint is normally not stored, but one that is must be right too.
    checkpoints.fill_through(store, 0)?;
    if let Some((0, note)) = checkpoints.queue.front() {
        check_checkpoint(key, 0, note, &empty_root())?;
        checkpoints.queue.pop_front();
        report.checkpoints += 1;
    }

    let mut at = 0u64;
    while at < size {
        let end = size.min(at.saturating_add(chunk));
        let leaves: Vec<Hash> = store
            .entries(LeafIndex(at), LeafIndex(end))?
            .iter()
            .map(|e| leaf_hash(e))
            .collect();
        checkpoints.fill_through(store, end)?;

        // Recompute: every node each leaf completes, and the root wherever a checkpoint was stored.
        let mut nodes: Vec<(NodeId, Hash)> = Vec::new();
        let mut roots: Vec<(u64, Hash)> = Vec::new();
        let mut pending = checkpoints.queue.iter().map(|(s, _)| *s).peekable();
        for &leaf in &leaves {
            frontier.append(leaf, |id, h| nodes.push((id, h)))?;
            let s = frontier.size().0;
            while pending.next_if(|&p| p < s).is_some() {}
            if pending.next_if_eq(&s).is_some() {
                roots.push((s, frontier.root()));
            }
        }

        let leaf_rows = store.leaf_rows(&leaves.iter().collect::<Vec<_>>())?;
        let tiles = store.stored_tiles(nodes.iter().map(|(id, _)| NodeSlot::of(*id).tile))?;

        // Compare in log order, so the failure reported is the first one.
        let mut node_at = 0;
        let mut root_at = 0;
        for (offset, (leaf, row)) in leaves.iter().zip(leaf_rows).enumerate() {
            let index = at + offset as u64;
            check_leaf_row(store, index, leaf, row, size, options.scope)?;
            while let Some(&(id, computed)) =
                nodes.get(node_at).filter(|(id, _)| id.end() <= index + 1)
            {
                check_node(
                    tiles.get(&NodeSlot::of(id).tile).map(Vec::as_slice),
                    id,
                    computed,
                )?;
                node_at += 1;
            }
            while let Some((s, root)) = roots.get(root_at).filter(|(s, _)| *s == index + 1) {
                while checkpoints.queue.front().is_some_and(|(c, _)| c < s) {
                    checkpoints.queue.pop_front();
                }
                if let Some((_, note)) = checkpoints.queue.pop_front() {
                    check_checkpoint(key, *s, &note, root)?;
                    report.checkpoints += 1;
                }
                root_at += 1;
            }
        }
        let mut ids: Vec<TileId> = tiles.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let width = tile::width_of(id, &tiles[&id])?;
            let expected = expected_width(id, size);
            let wrong = match options.scope {
                Scope::AtRest => width != expected,
                // A running server may have widened the edge tiles since the check began.
                Scope::Live => width < expected,
            };
            if wrong {
                return Err(Corruption::TileWidth {
                    level: id.level,
                    index: id.index,
                    stored: width,
                    expected,
                    size,
                }
                .into());
            }
        }
        report.nodes += nodes.len() as u64;
        at = end;
        if !progress(at, size) {
            return Err(FsckError::Cancelled);
        }
    }
    if options.scope == Scope::AtRest {
        check_nothing_beyond(store, size)?;
    }
    report.root = frontier.root();
    Ok(report)
}

/// Stored checkpoints in size order, read ahead in bounded pages.
struct Checkpoints {
    queue: VecDeque<(u64, Vec<u8>)>,
    /// Next size to read from; `None` when every stored checkpoint was read.
    next: Option<u64>,
}

impl Checkpoints {
    /// Reads ahead until every stored checkpoint of size <= `through` is queued.
    fn fill_through<B: Backend>(
        &mut self,
        store: &TiledStore<B>,
        through: u64,
    ) -> Result<(), FsckError> {
        while let Some(from) = self.next {
            if self.queue.back().is_some_and(|(s, _)| *s > through) {
                break;
            }
            let page = store.checkpoints_from(TreeSize(from), CHECKPOINT_PAGE)?;
            self.next = match page.last() {
                Some((last, _)) if page.len() == CHECKPOINT_PAGE => last.0.checked_add(1),
                _ => None,
            };
            self.queue
                .extend(page.into_iter().map(|(size, note)| (size.0, note)));
        }
        Ok(())
    }
}

/// Width tile `id` has in a tree of `size` entries (0: the tile does not exist yet).
fn expected_width(id: TileId, size: u64) -> usize {
    let before = id.index.saturating_mul(TILE_WIDTH as u64);
    // At most TILE_WIDTH, so the cast never truncates.
    nodes_at_level(id.level, size)
        .saturating_sub(before)
        .min(TILE_WIDTH as u64) as usize
}

/// Complete nodes at tree level `tile_level * TILE_HEIGHT` in a tree of `size` entries.
fn nodes_at_level(tile_level: u8, size: u64) -> u64 {
    let level = u32::from(tile_level) * u32::from(TILE_HEIGHT);
    if level >= 64 { 0 } else { size >> level }
}

/// The leaf-index row of entry `index` must name it — or, in a log that stores duplicates (de-duplication off),
/// a later copy of the same bytes, because each copy's write replaced the row.
fn check_leaf_row<B: Backend>(
    store: &TiledStore<B>,
    index: u64,
    leaf: &Hash,
    row: LeafRow,
    size: u64,
    scope: Scope,
) -> Result<(), FsckError> {
    let found = match row {
        LeafRow::At(found) => found.0,
        LeafRow::Absent => {
            return Err(Corruption::LeafIndexMissing {
                index,
                leaf_hash: *leaf,
            }
            .into());
        }
        LeafRow::Malformed(len) => {
            return Err(Corruption::LeafIndexMalformed {
                leaf_hash: *leaf,
                len,
            }
            .into());
        }
    };
    if found == index {
        return Ok(());
    }
    let wrong = Corruption::LeafIndexWrong {
        index,
        leaf_hash: *leaf,
        found,
    };
    let Some(after) = found.checked_add(1) else {
        return Err(wrong.into());
    };
    if found < index || (scope == Scope::AtRest && found >= size) {
        return Err(wrong.into());
    }
    // Read past the tree size too: live, the later copy may belong to a batch being written.
    match store.read_entries(found, after) {
        Ok(later) if later.first().is_some_and(|e| leaf_hash(e) == *leaf) => Ok(()),
        Ok(_) | Err(StoreError::Corrupt(Corruption::MissingEntry { .. })) => Err(wrong.into()),
        Err(e) => Err(e.into()),
    }
}

/// The stored node `id` (in `tile`, if stored) must be the recomputed one.
fn check_node(tile: Option<&[u8]>, id: NodeId, computed: Hash) -> Result<(), FsckError> {
    let slot = NodeSlot::of(id);
    let missing = Corruption::NodeMissing {
        level: id.level,
        index: id.index,
        tile_level: slot.tile.level,
        tile_index: slot.tile.index,
    };
    let Some(tile) = tile else {
        return Err(missing.into());
    };
    let stored = tile::read_node(tile, &slot)?.ok_or(missing)?;
    if stored != computed {
        return Err(Corruption::NodeMismatch {
            level: id.level,
            index: id.index,
            tile_level: slot.tile.level,
            tile_index: slot.tile.index,
            row: slot.row,
            stored,
            computed,
        }
        .into());
    }
    Ok(())
}

/// The stored checkpoint for `size` must be signed by `key` and carry `root`.
fn check_checkpoint(
    key: &VerifierKey,
    size: u64,
    note: &[u8],
    root: &Hash,
) -> Result<(), FsckError> {
    let fail = |reason: String| FsckError::from(Corruption::Checkpoint { size, reason });
    let signed = verify_checkpoint(key, note)
        .map_err(|e| fail(format!("does not verify with the log's key {key}: {e}")))?;
    if signed.checkpoint.size.0 != size {
        return Err(fail(format!(
            "the signed note is for size {}",
            signed.checkpoint.size.0
        )));
    }
    if signed.checkpoint.root != *root {
        return Err(fail(format!(
            "signed root {} but the stored entries give {root}",
            signed.checkpoint.root
        )));
    }
    Ok(())
}

/// At rest, the store holds nothing past its latest checkpoint: no later entry, no tile beyond the tree.
fn check_nothing_beyond<B: Backend>(store: &TiledStore<B>, size: u64) -> Result<(), FsckError> {
    if let Some(index) = store.first_entry_from(size)? {
        return Err(Corruption::ExtraEntry { index, size }.into());
    }
    let extra = |id: TileId| Corruption::ExtraTile {
        level: id.level,
        index: id.index,
        size,
    };
    // Tiles sort by (level, index): past the last expected tile of each level comes the next level.
    for level in 0..=u8::MAX {
        let count = nodes_at_level(level, size);
        let first_extra = TileId {
            level,
            index: count.div_ceil(TILE_WIDTH as u64),
        };
        if let Some(id) = store.first_tile_from(first_extra)?
            && id.level == level
        {
            return Err(extra(id).into());
        }
        if count == 0 {
            // Every higher level is empty too; one read from here finds any tile stored above the tree.
            if level < u8::MAX
                && let Some(id) = store.first_tile_from(TileId {
                    level: level + 1,
                    index: 0,
                })?
            {
                return Err(extra(id).into());
            }
            break;
        }
    }
    Ok(())
}
