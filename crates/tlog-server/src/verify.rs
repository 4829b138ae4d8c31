//! Integrity check of a stored log (`tlogd verify`, and the optional background scrub).
//!
//! The check trusts nothing derived: it streams the stored entries in bounded chunks, recomputes every leaf hash
//! and every tree node with a [`CompactRange`] (whose visitor reports each node as it completes), and compares
//! them with the leaf-hash index and with every node stored in the tiles (interior rows and partial edge tiles
//! included). Every stored signed checkpoint must verify with the log's key and carry the root recomputed at its
//! size. Memory is `O(chunk + log n)`, whatever the log's size.
//!
//! The first disagreement found, in log order, ends the check with an [`Integrity`] failure naming the entry
//! index, node (level, index), tile or checkpoint size at fault.
//!
//! Known gap: leaf-index rows are looked up from the entries, so a stray leaf-index row whose hash matches no
//! entry is not found (reading the whole index back would double the cost).

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;

use tlog_checkpoint::{SignerKey, VerifierKey, verify_checkpoint};
use tlog_core::{CompactRange, CoreError, Hash, NodeId, empty_root, leaf_hash};
use tlog_storage::tile::{self, NodeSlot, TILE_HEIGHT, TILE_WIDTH, TileId};
use tlog_storage::{Backend, Column, LogStore, RocksBackend, RocksStore, StoreError, TiledStore};

use crate::log::{META_ORIGIN, META_VERIFIER_KEY};

/// How much of the store must belong to the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The store is at rest (`tlogd verify`): it must hold exactly the log of its latest checkpoint — no entries
    /// or tiles beyond it, every edge tile exactly as wide as that size makes it.
    AtRest,
    /// The store may be growing under a running server (the scrub): the log is checked up to the latest
    /// checkpoint when the check starts, and rows a newer batch added are tolerated.
    Live,
}

/// Options of a check.
#[derive(Clone, Debug)]
pub struct VerifyOptions {
    pub scope: Scope,
    /// Entries read and checked per step; memory is this many entries plus their nodes and tiles.
    pub chunk_entries: usize,
}

impl VerifyOptions {
    /// A check of a store at rest.
    pub fn at_rest() -> Self {
        VerifyOptions {
            scope: Scope::AtRest,
            chunk_entries: 1024,
        }
    }

    /// A check of a store a running server may be appending to.
    pub fn live() -> Self {
        VerifyOptions {
            scope: Scope::Live,
            ..Self::at_rest()
        }
    }
}

/// What a passed check covered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// Size of the latest checkpoint: the log checked.
    pub tree_size: u64,
    /// Root of that tree, recomputed from the entries.
    pub root: Hash,
    /// Tree nodes recomputed and found in the tiles (leaves included).
    pub nodes: u64,
    /// Signed checkpoints verified.
    pub checkpoints: u64,
}

/// The first disagreement found in a store: what is wrong and exactly where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Integrity {
    #[error("log identity: {0}")]
    Identity(String),
    #[error("entry {index} is missing (the latest checkpoint covers {size} entries)")]
    MissingEntry { index: u64, size: u64 },
    #[error("entry {index} is stored beyond the latest signed checkpoint (size {size})")]
    ExtraEntry { index: u64, size: u64 },
    #[error("entries column holds a malformed key {key}")]
    BadEntryKey { key: String },
    #[error(
        "entry {index}: its leaf hash {leaf_hash} has no leaf-index row (the entry's bytes were altered, or the row lost)"
    )]
    LeafIndexMissing { index: u64, leaf_hash: Hash },
    #[error("entry {index}: the leaf-index row of its leaf hash {leaf_hash} names index {found}")]
    LeafIndexWrong {
        index: u64,
        leaf_hash: Hash,
        found: u64,
    },
    #[error(
        "entry {index}: the leaf-index row of its leaf hash {leaf_hash} is malformed ({len} bytes, expected 8)"
    )]
    LeafIndexMalformed {
        index: u64,
        leaf_hash: Hash,
        len: usize,
    },
    #[error(
        "node level {level} index {index} (tile {tile_level}/{tile_index} row {row}): stored {stored}, recomputed {computed}"
    )]
    NodeMismatch {
        level: u8,
        index: u64,
        tile_level: u8,
        tile_index: u64,
        row: usize,
        stored: Hash,
        computed: Hash,
    },
    #[error("node level {level} index {index} is missing (tile {tile_level}/{tile_index})")]
    NodeMissing {
        level: u8,
        index: u64,
        tile_level: u8,
        tile_index: u64,
    },
    #[error("tile {level}/{index} is malformed: {reason}")]
    BadTile {
        level: u8,
        index: u64,
        reason: String,
    },
    #[error(
        "tile {level}/{index} has width {stored}, but the tree of {size} entries gives it width {expected}"
    )]
    TileWidth {
        level: u8,
        index: u64,
        stored: usize,
        expected: usize,
        size: u64,
    },
    #[error("tile {level}/{index} is stored but lies beyond the tree of {size} entries")]
    ExtraTile { level: u8, index: u64, size: u64 },
    #[error("tiles column holds a malformed key {key}")]
    BadTileKey { key: String },
    #[error("checkpoint at size {size}: {reason}")]
    Checkpoint { size: u64, reason: String },
    #[error("checkpoints column holds a malformed key {key}")]
    BadCheckpointKey { key: String },
    /// RocksDB itself found a damaged file (block checksum, truncated table, ...).
    #[error("storage reports corruption: {0}")]
    Storage(String),
}

/// Why a check did not pass.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The store is damaged or inconsistent: exit status 1.
    #[error("integrity failure: {0}")]
    Integrity(#[from] Integrity),
    /// The store could not be read: exit status 2.
    #[error("storage: {0}")]
    Store(StoreError),
    /// The data folder or key files are missing or unreadable: exit status 2.
    #[error("{0}")]
    Setup(String),
    /// Tree arithmetic refused the log's size (beyond `u64`): exit status 2.
    #[error("tree: {0}")]
    Core(#[from] CoreError),
    /// The caller asked the check to stop.
    #[error("check cancelled")]
    Cancelled,
}

impl VerifyError {
    /// `tlogd verify`'s exit status: 1 for a damaged log, 2 when it could not be checked.
    pub fn exit_code(&self) -> u8 {
        match self {
            VerifyError::Integrity(_) => 1,
            _ => 2,
        }
    }
}

impl From<StoreError> for VerifyError {
    fn from(e: StoreError) -> Self {
        match e {
            // RocksDB reports damaged files as "Corruption: ..."; that is the log's integrity, not an I/O hiccup.
            StoreError::Backend(m) if m.contains("Corruption") => {
                VerifyError::Integrity(Integrity::Storage(m))
            }
            StoreError::Corrupt(m) => VerifyError::Integrity(Integrity::Storage(m)),
            other => VerifyError::Store(other),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn key_u64(key: &[u8]) -> Option<u64> {
    key.try_into().ok().map(u64::from_be_bytes)
}

/// Opens the log in a `tlogd` data folder read-only (`<data>/db`), with its verifier key from `vkey_file`, else
/// `<data>/log.vkey`, else derived from `<data>/log.key`.
pub fn open_data_dir(
    data: &Path,
    vkey_file: Option<&Path>,
) -> Result<(RocksStore, VerifierKey), VerifyError> {
    let db = data.join("db");
    if !db.is_dir() {
        return Err(VerifyError::Setup(format!(
            "no log database in {} (expected {})",
            data.display(),
            db.display()
        )));
    }
    let read = |p: &Path| {
        std::fs::read_to_string(p)
            .map_err(|e| VerifyError::Setup(format!("reading {}: {e}", p.display())))
    };
    let default_vkey = data.join("log.vkey");
    let key = match vkey_file {
        Some(p) => parse_vkey(p, &read(p)?)?,
        None if default_vkey.exists() => parse_vkey(&default_vkey, &read(&default_vkey)?)?,
        None => {
            let p = data.join("log.key");
            SignerKey::parse_private(&read(&p)?)
                .map_err(|e| {
                    VerifyError::Setup(format!(
                        "{} is not a signed-note private key: {e}",
                        p.display()
                    ))
                })?
                .verifier()
        }
    };
    let store = RocksStore::open(RocksBackend::open_read_only(&db)?)?;
    Ok((store, key))
}

fn parse_vkey(path: &Path, text: &str) -> Result<VerifierKey, VerifyError> {
    VerifierKey::parse(text.trim()).map_err(|e| {
        VerifyError::Setup(format!(
            "{} is not a signed-note verifier key: {e}",
            path.display()
        ))
    })
}

/// Stored checkpoints in size order, read ahead in bounded pages.
struct Checkpoints {
    queue: VecDeque<(u64, Vec<u8>)>,
    /// Next size to scan from; `None` when the column is exhausted.
    next: Option<u64>,
}

impl Checkpoints {
    const PAGE: usize = 256;

    /// Reads ahead until every stored checkpoint of size <= `through` is queued.
    fn fill_through<B: Backend>(&mut self, backend: &B, through: u64) -> Result<(), VerifyError> {
        while let Some(from) = self.next {
            if self.queue.back().is_some_and(|(s, _)| *s > through) {
                break;
            }
            let rows = backend.scan(Column::Checkpoints, &from.to_be_bytes(), Self::PAGE)?;
            self.next = None;
            let exhausted = rows.len() < Self::PAGE;
            for (key, note) in rows {
                let size =
                    key_u64(&key).ok_or_else(|| Integrity::BadCheckpointKey { key: hex(&key) })?;
                self.next = size.checked_add(1);
                self.queue.push_back((size, note));
            }
            if exhausted {
                self.next = None;
            }
        }
        Ok(())
    }
}

/// A tile read for the current chunk, with its width parsed once.
struct FetchedTile {
    stored: Vec<u8>,
    width: usize,
}

/// Width tile `id` has in a tree of `size` entries (0: the tile does not exist yet).
fn expected_width(id: TileId, size: u64) -> usize {
    let level = u32::from(id.level) * u32::from(TILE_HEIGHT);
    let count = if level >= 64 { 0 } else { size >> level };
    let before = id.index.saturating_mul(TILE_WIDTH as u64);
    // At most TILE_WIDTH, so the cast never truncates.
    count.saturating_sub(before).min(TILE_WIDTH as u64) as usize
}

/// Checks a log's store against its verifier key; see the module docs. `progress(done, total)` is called after
/// every chunk; returning `false` stops the check with [`VerifyError::Cancelled`].
pub fn verify_store<B: Backend>(
    store: &TiledStore<B>,
    key: &VerifierKey,
    options: &VerifyOptions,
    progress: &mut dyn FnMut(u64, u64) -> bool,
) -> Result<Verified, VerifyError> {
    let backend = store.backend();
    let size = match store.latest_checkpoint()? {
        Some((size, _)) => size.0,
        None => 0,
    };
    check_identity(store, key, size)?;

    let chunk = options.chunk_entries.max(1) as u64;
    let mut frontier = CompactRange::new();
    let mut checkpoints = Checkpoints {
        queue: VecDeque::new(),
        next: Some(0),
    };
    let mut verified = Verified {
        tree_size: size,
        root: empty_root(),
        nodes: 0,
        checkpoints: 0,
    };
    // The empty tree's checkpoint is normally not stored, but one that is must be right too.
    checkpoints.fill_through(backend, 0)?;
    if checkpoints.queue.front().is_some_and(|(s, _)| *s == 0) {
        let (s, note) = checkpoints.queue.pop_front().unwrap_or_default();
        check_checkpoint(key, s, &note, &empty_root())?;
        verified.checkpoints += 1;
    }

    let mut at = 0u64;
    while at < size {
        let end = size.min(at.saturating_add(chunk));
        let entries = read_entries(backend, at, end, size)?;
        let leaves: Vec<Hash> = entries.iter().map(|e| leaf_hash(e)).collect();
        drop(entries);
        checkpoints.fill_through(backend, end)?;

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

        let leaf_rows = backend.get_many(
            Column::Leaves,
            &leaves.iter().map(|h| &h.0[..]).collect::<Vec<_>>(),
        )?;
        let tiles = fetch_tiles(backend, &nodes)?;

        // Compare in log order, so the failure reported is the first one.
        let mut node_at = 0;
        let mut root_at = 0;
        for (offset, (leaf, row)) in leaves.iter().zip(&leaf_rows).enumerate() {
            let index = at + offset as u64;
            check_leaf_row(backend, index, leaf, row.as_deref(), size, options.scope)?;
            while let Some(&(id, computed)) =
                nodes.get(node_at).filter(|(id, _)| id.end() <= index + 1)
            {
                check_node(&tiles, id, computed)?;
                node_at += 1;
            }
            while let Some((s, root)) = roots.get(root_at).filter(|(s, _)| *s == index + 1) {
                while checkpoints.queue.front().is_some_and(|(c, _)| c < s) {
                    checkpoints.queue.pop_front();
                }
                if let Some((_, note)) = checkpoints.queue.pop_front() {
                    check_checkpoint(key, *s, &note, root)?;
                    verified.checkpoints += 1;
                }
                root_at += 1;
            }
        }
        for (id, tile) in &tiles {
            if let Ok(t) = tile {
                let expected = expected_width(*id, size);
                let wrong = match options.scope {
                    Scope::AtRest => t.width != expected,
                    // A running server may have widened the edge tiles since the check began.
                    Scope::Live => t.width < expected,
                };
                if wrong {
                    return Err(Integrity::TileWidth {
                        level: id.level,
                        index: id.index,
                        stored: t.width,
                        expected,
                        size,
                    }
                    .into());
                }
            }
        }
        verified.nodes += nodes.len() as u64;
        at = end;
        if !progress(at, size) {
            return Err(VerifyError::Cancelled);
        }
    }
    if options.scope == Scope::AtRest {
        check_nothing_beyond(backend, size)?;
    }
    verified.root = frontier.root();
    Ok(verified)
}

/// The store's recorded origin and key must be the log's.
fn check_identity<B: Backend>(
    store: &TiledStore<B>,
    key: &VerifierKey,
    size: u64,
) -> Result<(), VerifyError> {
    match (store.meta(META_ORIGIN)?, store.meta(META_VERIFIER_KEY)?) {
        (None, None) if size == 0 => Ok(()),
        (Some(origin), Some(vkey)) => {
            if origin != key.name().as_bytes() {
                return Err(Integrity::Identity(format!(
                    "the store belongs to origin {:?} but the key is for {:?}",
                    String::from_utf8_lossy(&origin),
                    key.name()
                ))
                .into());
            }
            if vkey != key.to_string().as_bytes() {
                return Err(Integrity::Identity(format!(
                    "the store was written with key {} but the given key is {key}",
                    String::from_utf8_lossy(&vkey)
                ))
                .into());
            }
            Ok(())
        }
        _ => Err(Integrity::Identity(
            "the store's identity metadata (origin, verifier key) is incomplete".into(),
        )
        .into()),
    }
}

/// Entries `[start, end)`, each present under its own index.
fn read_entries<B: Backend>(
    backend: &B,
    start: u64,
    end: u64,
    size: u64,
) -> Result<Vec<Vec<u8>>, VerifyError> {
    let want = usize::try_from(end - start)
        .map_err(|_| VerifyError::Setup(format!("chunk of {} entries", end - start)))?;
    let rows = backend.scan(Column::Entries, &start.to_be_bytes(), want)?;
    let mut out = Vec::with_capacity(want);
    for (expected, (key, value)) in (start..end).zip(rows) {
        let index = key_u64(&key).ok_or_else(|| Integrity::BadEntryKey { key: hex(&key) })?;
        if index != expected {
            return Err(Integrity::MissingEntry {
                index: expected,
                size,
            }
            .into());
        }
        out.push(value);
    }
    if out.len() != want {
        return Err(Integrity::MissingEntry {
            index: start + out.len() as u64,
            size,
        }
        .into());
    }
    Ok(out)
}

/// The leaf-index row of entry `index` must name it — or, in a log that stores duplicates (de-duplication off),
/// a later copy of the same bytes, because each copy's write replaced the row.
fn check_leaf_row<B: Backend>(
    backend: &B,
    index: u64,
    leaf: &Hash,
    row: Option<&[u8]>,
    size: u64,
    scope: Scope,
) -> Result<(), VerifyError> {
    let row = row.ok_or(Integrity::LeafIndexMissing {
        index,
        leaf_hash: *leaf,
    })?;
    let found = key_u64(row).ok_or(Integrity::LeafIndexMalformed {
        index,
        leaf_hash: *leaf,
        len: row.len(),
    })?;
    if found == index {
        return Ok(());
    }
    let wrong = Integrity::LeafIndexWrong {
        index,
        leaf_hash: *leaf,
        found,
    };
    if found < index || (scope == Scope::AtRest && found >= size) {
        return Err(wrong.into());
    }
    match backend
        .get_many(Column::Entries, &[found.to_be_bytes().to_vec()])?
        .pop()
        .flatten()
    {
        Some(later) if leaf_hash(&later) == *leaf => Ok(()),
        _ => Err(wrong.into()),
    }
}

/// Reads every tile the chunk's nodes live in, once; a tile that cannot be parsed keeps its reason.
fn fetch_tiles<B: Backend>(
    backend: &B,
    nodes: &[(NodeId, Hash)],
) -> Result<BTreeMap<TileId, Result<FetchedTile, String>>, VerifyError> {
    let mut ids: Vec<TileId> = nodes.iter().map(|(id, _)| NodeSlot::of(*id).tile).collect();
    ids.sort_unstable();
    ids.dedup();
    let keys: Vec<Vec<u8>> = ids.iter().map(|t| t.key().to_vec()).collect();
    let values = backend.get_many(Column::Tiles, &keys)?;
    Ok(ids
        .into_iter()
        .zip(values)
        .filter_map(|(id, v)| {
            let stored = v?;
            let parsed = tile::width_of(&stored)
                .map(|width| FetchedTile { stored, width })
                .map_err(|e| e.to_string());
            Some((id, parsed))
        })
        .collect())
}

fn check_node(
    tiles: &BTreeMap<TileId, Result<FetchedTile, String>>,
    id: NodeId,
    computed: Hash,
) -> Result<(), VerifyError> {
    let slot = NodeSlot::of(id);
    let missing = Integrity::NodeMissing {
        level: id.level,
        index: id.index,
        tile_level: slot.tile.level,
        tile_index: slot.tile.index,
    };
    let tile = match tiles.get(&slot.tile) {
        None => return Err(missing.into()),
        Some(Err(reason)) => {
            return Err(Integrity::BadTile {
                level: slot.tile.level,
                index: slot.tile.index,
                reason: reason.clone(),
            }
            .into());
        }
        Some(Ok(t)) => t,
    };
    let stored = tile::read_node(&tile.stored, &slot)
        .map_err(|e| Integrity::BadTile {
            level: slot.tile.level,
            index: slot.tile.index,
            reason: e.to_string(),
        })?
        .ok_or(missing)?;
    if stored != computed {
        return Err(Integrity::NodeMismatch {
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

fn check_checkpoint(
    key: &VerifierKey,
    size: u64,
    note: &[u8],
    root: &Hash,
) -> Result<(), VerifyError> {
    let fail = |reason: String| VerifyError::from(Integrity::Checkpoint { size, reason });
    let signed = verify_checkpoint(key, note)
        .map_err(|e| fail(format!("does not verify with the log's key {key}: {e}")))?;
    if signed.checkpoint.size.0 != size {
        return Err(fail(format!(
            "the signed note is for size {}",
            signed.checkpoint.size.0
        )));
    }
    if signed.checkpoint.origin != key.name() {
        return Err(fail(format!(
            "the signed note names origin {:?}, expected {:?}",
            signed.checkpoint.origin,
            key.name()
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
fn check_nothing_beyond<B: Backend>(backend: &B, size: u64) -> Result<(), VerifyError> {
    if let Some((key, _)) = backend.scan(Column::Entries, &size.to_be_bytes(), 1)?.pop() {
        let index = key_u64(&key).ok_or_else(|| Integrity::BadEntryKey { key: hex(&key) })?;
        return Err(Integrity::ExtraEntry { index, size }.into());
    }
    // Tile keys sort by (level, index): past the last expected tile of each level comes the next level.
    for level in 0..=u8::MAX {
        let bits = u32::from(level) * u32::from(TILE_HEIGHT);
        let count = if bits >= 64 { 0 } else { size >> bits };
        let tiles = count.div_ceil(TILE_WIDTH as u64);
        let first_extra = TileId {
            level,
            index: tiles,
        };
        if let Some((key, _)) = backend.scan(Column::Tiles, &first_extra.key(), 1)?.pop() {
            let id =
                TileId::from_key(&key).ok_or_else(|| Integrity::BadTileKey { key: hex(&key) })?;
            if id.level == level {
                return Err(Integrity::ExtraTile {
                    level: id.level,
                    index: id.index,
                    size,
                }
                .into());
            }
        }
        if count == 0 {
            // Every higher level is empty too; one scan from here finds any tile stored above the tree.
            let above = TileId {
                level: level.saturating_add(1),
                index: 0,
            };
            if level < u8::MAX
                && let Some((key, _)) = backend.scan(Column::Tiles, &above.key(), 1)?.pop()
            {
                let id = TileId::from_key(&key)
                    .ok_or_else(|| Integrity::BadTileKey { key: hex(&key) })?;
                return Err(Integrity::ExtraTile {
                    level: id.level,
                    index: id.index,
                    size,
                }
                .into());
            }
            break;
        }
    }
    Ok(())
}
