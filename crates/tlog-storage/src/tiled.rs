//! [`TiledStore`]: the log's storage rules over a key-value [`Backend`].

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use tlog_core::{Hash, LeafIndex, NodeId, TreeSize};

use crate::error::hex;
use crate::filter::{DEFAULT_LEAF_FILTER_BYTES, LeafFilter};
use crate::tile::{self, NodeSlot, TILE_WIDTH, TileId};
use crate::tile_cache::{DEFAULT_UPPER_TILE_CACHE_BYTES, UpperTiles};
use crate::{
    AppendBatch, Corruption, FORMAT_VERSION, LogStore, META_FORMAT_VERSION, MemoryPart, ReadTier,
    StoreError,
};

/// The key spaces of a log (RocksDB column families).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Column {
    /// index (u64 big-endian) → entry bytes
    Entries,
    /// leaf hash (32 bytes) → index (u64 big-endian)
    Leaves,
    /// tile id (level byte, u64 big-endian index) → stored tile (see [`crate::tile`])
    Tiles,
    /// tree size (u64 big-endian) → signed checkpoint note
    Checkpoints,
    /// UTF-8 name → value
    Meta,
    /// subject id → the subject's key record (opaque to the store: a wrapped data key, or the erasure tombstone
    /// that replaced it). Private payloads: see `tlog_server::private`.
    SubjectKeys,
    /// subject length (1 byte), subject, index (u64 big-endian) → sealed salt and payload of that private entry
    Payloads,
}

impl Column {
    pub const ALL: [Column; 7] = [
        Column::Entries,
        Column::Leaves,
        Column::Tiles,
        Column::Checkpoints,
        Column::Meta,
        Column::SubjectKeys,
        Column::Payloads,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Column::Entries => "entries",
            Column::Leaves => "leaves",
            Column::Tiles => "tiles",
            Column::Checkpoints => "checkpoints",
            Column::Meta => "meta",
            Column::SubjectKeys => "subject_keys",
            Column::Payloads => "payloads",
        }
    }
}

/// A key and its value.
pub type Row = (Vec<u8>, Vec<u8>);

/// Called with each value a [`Backend::visit_many_in`] finds and its key's position among the keys asked for.
pub type Visit<'a> = dyn FnMut(usize, &[u8]) -> Result<(), StoreError> + 'a;

/// One row to write: column, key, value (borrowed, so an append copies each byte once, into the write batch).
pub type Put<'a> = (Column, &'a [u8], &'a [u8]);

/// Keys `[from, to)` of a column to delete: column, from, to.
pub type DeleteRange<'a> = (Column, &'a [u8], &'a [u8]);

/// A key-value store with column families, atomic durable batch writes and batched point reads.
pub trait Backend: Send + Sync + 'static {
    /// Writes all puts atomically and durably (or none of them).
    fn write(&self, puts: &[Put<'_>]) -> Result<(), StoreError> {
        self.write_batch(puts, &[])
    }
    /// Writes all puts and deletes every key in the ranges, atomically and durably (or nothing); the deletes apply
    /// after the puts.
    fn write_batch(&self, puts: &[Put<'_>], deletes: &[DeleteRange<'_>]) -> Result<(), StoreError>;
    /// Makes sure rows deleted from `columns` are gone from the backend's files, not only hidden: for erasure.
    /// A backend that keeps nothing on disk has nothing to do.
    fn purge_deleted(&self, columns: &[Column]) -> Result<(), StoreError> {
        let _ = columns;
        Ok(())
    }
    /// Point reads in one batch, answers in the order of `keys`.
    fn get_many<K: AsRef<[u8]>>(
        &self,
        column: Column,
        keys: &[K],
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError>;
    /// [`Backend::get_many`] within `tier`: `None` when a key's answer is not in memory and `tier` is
    /// [`ReadTier::Memory`].
    fn get_many_in<K: AsRef<[u8]>>(
        &self,
        column: Column,
        keys: &[K],
        tier: ReadTier,
    ) -> Result<Option<Vec<Option<Vec<u8>>>>, StoreError> {
        match tier {
            ReadTier::Any => self.get_many(column, keys).map(Some),
            ReadTier::Memory => self.get_many_from_memory(column, keys),
        }
    }
    /// [`Backend::get_many_in`], handing each value found to `visit` with its position in `keys` instead of
    /// returning a copy of it (for reads that need a few bytes of a large value): `false` when a key's answer is
    /// not in memory and `tier` is [`ReadTier::Memory`], some values perhaps visited already.
    fn visit_many_in<K: AsRef<[u8]>>(
        &self,
        column: Column,
        keys: &[K],
        tier: ReadTier,
        visit: &mut Visit<'_>,
    ) -> Result<bool, StoreError> {
        let Some(values) = self.get_many_in(column, keys, tier)? else {
            return Ok(false);
        };
        for (i, value) in values.iter().enumerate() {
            if let Some(value) = value {
                visit(i, value)?;
            }
        }
        Ok(true)
    }
    /// [`Backend::get_many`] without I/O: `None` when some key's answer is not in memory. A backend that holds
    /// everything in memory answers every read, as this default does.
    fn get_many_from_memory<K: AsRef<[u8]>>(
        &self,
        column: Column,
        keys: &[K],
    ) -> Result<Option<Vec<Option<Vec<u8>>>>, StoreError> {
        self.get_many(column, keys).map(Some)
    }
    /// Memory the backend holds, by part (for the operator's metrics); nothing by default.
    fn memory(&self) -> Vec<MemoryPart> {
        Vec::new()
    }
    /// The entry with the greatest key.
    fn last(&self, column: Column) -> Result<Option<Row>, StoreError>;
    /// Entries with key >= `from`, ascending, at most `limit`.
    fn scan(&self, column: Column, from: &[u8], limit: usize) -> Result<Vec<Row>, StoreError>;
}

/// A [`LogStore`] over any [`Backend`].
pub struct TiledStore<B> {
    backend: B,
    /// Cached size of the stored tree; only `append` changes it, after its write succeeded.
    size: AtomicU64,
    /// Serialises appends: the sequencer is the only writer, and this guards against misuse.
    appending: Mutex<()>,
    /// The partial tiles on the tree's right edge as last written (at most one per tile level; full tiles leave):
    /// an append extends them without reading them back, and every proof, which needs nodes of the right edge,
    /// reads them here instead of from the backend. Read at open, and replaced after each append's write succeeded
    /// and before its size is visible, so it holds every node of the visible tree's edge.
    edge: RwLock<HashMap<TileId, Arc<[u8]>>>,
    /// Every leaf hash in the store, so that lookups of new hashes (de-duplication) need not reach the backend.
    /// `append` adds its hashes after its write succeeded and before the new size is visible. It only gains bits,
    /// so even a poisoned lock holds a filter without false negatives.
    leaves: RwLock<FilterState>,
    /// Memory budget of the leaf filter, in bytes.
    leaf_filter_bytes: usize,
    /// Full tiles above level 0 once read, so a proof reads only its level-0 tile and the right edge.
    upper: UpperTiles,
}

/// Where the [`LeafFilter`] stands. Until it is ready, every lookup goes to the backend.
enum FilterState {
    /// A non-empty leaf index not loaded yet (see [`TiledStore::load_leaf_filter`]).
    Unloaded,
    /// A load is scanning the index; hashes appended meanwhile wait here and join the loaded filter.
    Loading(LeafFilter),
    Ready(LeafFilter),
}

/// Leaf-index rows read per backend scan while loading the [`LeafFilter`].
const FILTER_LOAD_CHUNK: usize = 1 << 16;
/// Meta key of the saved leaf filter's header (see [`TiledStore::save_leaf_filter`]); its blocks are in rows
/// `leaf_filter.<generation>/<segment>/<chunk>`, [`SAVED_FILTER_CHUNK_BLOCKS`] blocks each (one segment since the
/// filter stopped growing in segments; a header of several is rebuilt from the leaf index).
const META_LEAF_FILTER: &str = "leaf_filter";
/// First byte past every saved filter's block rows (`'/'` follows `'.'`).
const SAVED_FILTER_ROWS_END: &str = "leaf_filter/";
/// Bytes of one leaf-index row (a 32-byte hash key, an 8-byte index), what a scan of the index reads per entry.
const LEAF_ROW_BYTES: u64 = 40;
/// Filter blocks (64 bytes) per saved row: 1 MiB.
const SAVED_FILTER_CHUNK_BLOCKS: usize = 1 << 14;
/// Saved rows per write batch, so saving never holds more than this many MiB beyond the filter itself.
const SAVED_FILTER_ROWS_PER_BATCH: usize = 8;
/// First line of a saved filter's header. `v1` filters set eight bits per hash, where today's set
/// [`crate::filter::BITS_PER_HASH`]: read with today's positions they would answer "no" for hashes they hold, so a
/// `v1` save is not loaded and the filter is rebuilt from the leaf index (once, at the first start after the update).
const SAVED_FILTER_MAGIC: &[u8] = b"tlog-leaf-filter-v2\n";

/// The saved filter's rows of generation `generation` start with this.
fn saved_filter_prefix(generation: u64) -> String {
    format!("{META_LEAF_FILTER}.{generation:016x}")
}

/// The rows of a saved filter whose rows start with `prefix` and whose segments have these shapes (capacity,
/// length, blocks): each row's key, segment and first block.
fn saved_filter_rows<'a>(
    prefix: &'a str,
    segments: &'a [[u64; 3]],
) -> impl Iterator<Item = (String, usize, usize)> + 'a {
    segments
        .iter()
        .enumerate()
        .flat_map(move |(seg, &[_, _, blocks])| {
            let blocks = usize::try_from(blocks).unwrap_or(usize::MAX);
            (0..blocks)
                .step_by(SAVED_FILTER_CHUNK_BLOCKS)
                .enumerate()
                .map(move |(chunk, first)| (format!("{prefix}/{seg:04x}/{chunk:08x}"), seg, first))
        })
}

/// What a saved filter's header holds.
struct SavedFilter {
    generation: u64,
    /// Tree size whose every leaf hash the saved filter holds.
    covered: u64,
    folds: u32,
    /// Capacity, length and block count of each segment.
    segments: Vec<[u64; 3]>,
}

impl SavedFilter {
    fn encode(&self) -> Vec<u8> {
        let mut out = SAVED_FILTER_MAGIC.to_vec();
        out.extend_from_slice(&self.generation.to_be_bytes());
        out.extend_from_slice(&self.covered.to_be_bytes());
        out.extend_from_slice(&self.folds.to_be_bytes());
        out.extend_from_slice(&(self.segments.len() as u32).to_be_bytes());
        for seg in &self.segments {
            seg.iter()
                .for_each(|v| out.extend_from_slice(&v.to_be_bytes()));
        }
        out
    }

    /// `None` for a header this code did not write (the filter is then rebuilt from the leaf index).
    fn decode(bytes: &[u8]) -> Option<SavedFilter> {
        let rest = bytes.strip_prefix(SAVED_FILTER_MAGIC)?;
        let u64_at = |i: usize| Some(u64::from_be_bytes(rest.get(i..i + 8)?.try_into().ok()?));
        let u32_at = |i: usize| Some(u32::from_be_bytes(rest.get(i..i + 4)?.try_into().ok()?));
        let n = usize::try_from(u32_at(20)?).ok()?;
        if rest.len() != 24 + n * 24 {
            return None;
        }
        let segments = (0..n)
            .map(|k| {
                let at = 24 + k * 24;
                Some([u64_at(at)?, u64_at(at + 8)?, u64_at(at + 16)?])
            })
            .collect::<Option<Vec<_>>>()?;
        Some(SavedFilter {
            generation: u64_at(0)?,
            covered: u64_at(8)?,
            folds: u32_at(16)?,
            segments,
        })
    }
}

/// A big-endian `u64` key (entries, checkpoints).
fn key_u64(column: Column, key: &[u8]) -> Result<u64, StoreError> {
    key.try_into().map(u64::from_be_bytes).map_err(|_| {
        StoreError::Corrupt(Corruption::BadKey {
            column,
            key: hex(key),
        })
    })
}

/// The key of a private payload row: subject length, subject, index. Rows of one subject are contiguous.
pub fn payload_key(subject: &[u8], index: LeafIndex) -> Vec<u8> {
    let mut key = payload_prefix(subject);
    key.extend_from_slice(&index.0.to_be_bytes());
    key
}

fn payload_prefix(subject: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + subject.len() + 8);
    // Subjects are at most 255 bytes (tlog_core::private); the length keeps "ab" from prefixing "abc".
    key.push(subject.len() as u8);
    key.extend_from_slice(subject);
    key
}

/// Every payload key of `subject`: `[prefix‖0…0, prefix‖ff…ff‖00)`, the keys being exactly prefix + 8 bytes.
fn payload_range(subject: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut from = payload_prefix(subject);
    let mut to = from.clone();
    from.extend_from_slice(&[0; 8]);
    to.extend_from_slice(&[0xff; 9]);
    to[from.len()] = 0;
    (from, to)
}

/// Metadata key set by a batch that erased payloads until [`TiledStore::purge_erased`] has run.
pub const META_PURGE_PENDING: &str = "erasure_purge_pending";

/// What the leaf index holds for one leaf hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LeafRow {
    Absent,
    At(LeafIndex),
    /// A value that is not a big-endian `u64`, of this many bytes.
    Malformed(usize),
}

impl<B: Backend> TiledStore<B> {
    /// Opens a log over `backend`, creating the layout metadata on first use and refusing other layout versions.
    pub fn open(backend: B) -> Result<Self, StoreError> {
        let mut store = TiledStore {
            backend,
            size: AtomicU64::new(0),
            appending: Mutex::new(()),
            edge: RwLock::new(HashMap::new()),
            leaves: RwLock::new(FilterState::Unloaded),
            leaf_filter_bytes: DEFAULT_LEAF_FILTER_BYTES,
            upper: UpperTiles::new(DEFAULT_UPPER_TILE_CACHE_BYTES),
        };
        match store.meta(META_FORMAT_VERSION)? {
            None => store.set_meta(META_FORMAT_VERSION, FORMAT_VERSION.to_string().as_bytes())?,
            Some(v) if v == FORMAT_VERSION.to_string().as_bytes() => {}
            Some(v) => {
                return Err(StoreError::UnsupportedFormat {
                    found: String::from_utf8_lossy(&v).into_owned(),
                });
            }
        }
        let size = match store.backend.last(Column::Checkpoints)? {
            Some((key, _)) => key_u64(Column::Checkpoints, &key)?,
            None => 0,
        };
        store.size.store(size, Ordering::SeqCst);
        let edge = store.stored_tiles(tile::edge_tiles(size))?;
        *store.edge.get_mut().unwrap_or_else(|p| p.into_inner()) = edge
            .into_iter()
            .map(|(t, stored)| (t, Arc::from(stored)))
            .collect();
        if store.backend.scan(Column::Leaves, &[], 1)?.is_empty() {
            // Nothing to load: a new log's filter is ready at once.
            *store.leaves.get_mut().unwrap_or_else(|p| p.into_inner()) =
                FilterState::Ready(LeafFilter::with_budget(store.leaf_filter_bytes));
        }
        Ok(store)
    }

    /// Sets the leaf filter's memory to `bytes` (default [`DEFAULT_LEAF_FILTER_BYTES`]): the filter takes all of
    /// it (a filter already holding hashes can only shrink, by folding), and the fewer bytes per entry, the more
    /// de-duplication lookups reach the backend.
    pub fn with_leaf_filter_bytes(mut self, bytes: usize) -> Self {
        self.leaf_filter_bytes = bytes;
        match self.leaves.get_mut().unwrap_or_else(|p| p.into_inner()) {
            FilterState::Loading(filter) | FilterState::Ready(filter) => filter.set_budget(bytes),
            FilterState::Unloaded => {}
        }
        self
    }

    /// Bounds the memory of full tiles above level 0 kept for proofs to `bytes` (default
    /// [`DEFAULT_UPPER_TILE_CACHE_BYTES`]); tiles past it are read from the backend each time. 0 turns it off.
    pub fn with_upper_tile_cache_bytes(mut self, bytes: usize) -> Self {
        self.upper = UpperTiles::new(bytes);
        self
    }

    /// Bytes of upper tiles held in memory now.
    pub fn upper_tile_cache_bytes(&self) -> usize {
        self.upper.bytes()
    }

    /// Bytes the leaf filter takes now (0 until it is loaded).
    pub fn leaf_filter_bytes(&self) -> usize {
        match &*self.leaves.read().unwrap_or_else(|p| p.into_inner()) {
            FilterState::Loading(filter) | FilterState::Ready(filter) => filter.bytes(),
            FilterState::Unloaded => 0,
        }
    }

    /// The backend, for tests and benchmarks that reach rows directly (bypassing the log's rules).
    #[cfg(any(test, feature = "public-tests"))]
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// Loads the leaf filter from the leaf index: one pass over all of it, meant for a background thread after
    /// open. Appends and lookups go on meanwhile; lookups reach the backend until the filter is ready. Does
    /// nothing if the filter is ready or loading; after an error the next call retries.
    pub fn load_leaf_filter(&self) -> Result<(), StoreError> {
        {
            let mut state = self.leaves.write().unwrap_or_else(|p| p.into_inner());
            match *state {
                FilterState::Unloaded => {
                    *state = FilterState::Loading(LeafFilter::with_budget(self.leaf_filter_bytes));
                }
                FilterState::Loading(_) | FilterState::Ready(_) => return Ok(()),
            }
        }
        // Appends from here on are caught by `Loading`; the scan sees every row written before.
        let scanned = match self.saved_leaf_filter() {
            Ok(Some(filter)) => Ok(filter),
            // No saved filter, one too far behind, or one that cannot be read: the leaf index has every hash.
            Ok(None) | Err(_) => self.scan_leaf_hashes(),
        };
        let mut state = self.leaves.write().unwrap_or_else(|p| p.into_inner());
        let appended = match std::mem::replace(&mut *state, FilterState::Unloaded) {
            FilterState::Loading(appended) => appended,
            _ => LeafFilter::with_budget(self.leaf_filter_bytes),
        };
        let mut filter = scanned?;
        filter.absorb(appended);
        *state = FilterState::Ready(filter);
        Ok(())
    }

    /// Saves the leaf filter, if it is loaded, so that the next open loads it in a moment instead of scanning the
    /// whole leaf index (about 5 s per 10M entries, on the cores that serve). For a clean shutdown, after the last
    /// append: appends wait while it runs. Returns whether a filter was saved: not for a log whose leaf index is
    /// smaller than the filter (a scan of it is quicker than reading the filter back).
    ///
    /// The blocks go in rows of a new generation, a few per write; one last write stores the header that names
    /// that generation and deletes every other generation's rows, so a save cut short leaves the previous one in
    /// force. A saved filter holds every hash of the tree size it records; the loader hashes the entries after
    /// it. It is only ever behind the log (the log never shrinks), so a stale one costs time, never exactness.
    pub fn save_leaf_filter(&self) -> Result<bool, StoreError> {
        // The size first: `append` adds hashes to the filter before it publishes a new size.
        let covered = self.size.load(Ordering::SeqCst);
        let state = self.leaves.read().unwrap_or_else(|p| p.into_inner());
        let FilterState::Ready(filter) = &*state else {
            return Ok(false);
        };
        // A small log's index is quicker to scan than its filter is to read back. A filter saved before (by an
        // older version, or under a smaller budget) would not be loaded either: its rows go.
        if covered.saturating_mul(LEAF_ROW_BYTES) < filter.bytes() as u64 {
            if self.meta(META_LEAF_FILTER)?.is_some() {
                self.backend.write_batch(
                    &[],
                    &[(
                        Column::Meta,
                        META_LEAF_FILTER.as_bytes(),
                        SAVED_FILTER_ROWS_END.as_bytes(),
                    )],
                )?;
            }
            return Ok(false);
        }
        let generation = self
            .meta(META_LEAF_FILTER)?
            .and_then(|h| SavedFilter::decode(&h))
            .map_or(0, |h| h.generation.wrapping_add(1));
        let (folds, segments) = filter.shape();
        let prefix = saved_filter_prefix(generation);
        let mut rows: Vec<(String, Vec<u8>)> = Vec::new();
        let write = |rows: &[(String, Vec<u8>)], deletes: &[DeleteRange<'_>]| {
            let puts: Vec<Put<'_>> = rows
                .iter()
                .map(|(k, v)| (Column::Meta, k.as_bytes(), v.as_slice()))
                .collect();
            self.backend.write_batch(&puts, deletes)
        };
        for (key, seg, first) in saved_filter_rows(&prefix, &segments) {
            debug_assert_eq!(seg, 0, "a filter is one segment");
            rows.push((key, filter.block_bytes(first, SAVED_FILTER_CHUNK_BLOCKS)));
            if rows.len() == SAVED_FILTER_ROWS_PER_BATCH {
                write(&rows, &[])?;
                rows.clear();
            }
        }
        let header = SavedFilter {
            generation,
            covered,
            folds,
            segments,
        };
        rows.push((META_LEAF_FILTER.to_string(), header.encode()));
        let (older, newer) = (
            format!("{META_LEAF_FILTER}."),
            saved_filter_prefix(generation.wrapping_add(1)),
        );
        write(
            &rows,
            &[
                (Column::Meta, older.as_bytes(), prefix.as_bytes()),
                (
                    Column::Meta,
                    newer.as_bytes(),
                    SAVED_FILTER_ROWS_END.as_bytes(),
                ),
            ],
        )?;
        Ok(true)
    }

    /// The saved leaf filter with the hashes of every entry after it added: `None` when there is none, or it is
    /// too far behind to be worth it (more entries after it than in it: scanning the index is then quicker).
    fn saved_leaf_filter(&self) -> Result<Option<LeafFilter>, StoreError> {
        let Some(header) = self
            .meta(META_LEAF_FILTER)?
            .and_then(|h| SavedFilter::decode(&h))
        else {
            return Ok(None);
        };
        let size = self.size.load(Ordering::SeqCst);
        if header.covered > size || size - header.covered > header.covered {
            return Ok(None);
        }
        // A bound on what to allocate for a header read from disk: a filter is saved only when it is smaller than
        // the leaf index (LEAF_ROW_BYTES per entry), and only a budget larger than the current one (folded below)
        // could have made it larger than that.
        let Some(mut filter) = LeafFilter::from_shape(
            self.leaf_filter_bytes,
            header.folds,
            &header.segments,
            size.saturating_mul(LEAF_ROW_BYTES)
                .max(self.leaf_filter_bytes as u64)
                .saturating_add(64 << 20),
        ) else {
            return Ok(None);
        };
        let prefix = saved_filter_prefix(header.generation);
        for (key, seg, first) in saved_filter_rows(&prefix, &header.segments) {
            let Some(bytes) = self.meta(&key)? else {
                return Ok(None);
            };
            let blocks = usize::try_from(header.segments[seg][2]).unwrap_or(usize::MAX);
            let want = (blocks - first).min(SAVED_FILTER_CHUNK_BLOCKS) * 64;
            if seg != 0 || bytes.len() != want || !filter.set_block_bytes(first, &bytes) {
                return Ok(None);
            }
        }
        filter.set_budget(self.leaf_filter_bytes);
        // Every entry row after the saved size, including those of an append that is writing now.
        let mut next = header.covered;
        loop {
            let rows =
                self.backend
                    .scan(Column::Entries, &next.to_be_bytes(), FILTER_LOAD_CHUNK)?;
            for (key, entry) in &rows {
                next = key_u64(Column::Entries, key)? + 1;
                filter.insert(&tlog_core::leaf_hash(entry));
            }
            if rows.len() < FILTER_LOAD_CHUNK {
                return Ok(Some(filter));
            }
        }
    }

    /// A filter of every key in the leaf index.
    fn scan_leaf_hashes(&self) -> Result<LeafFilter, StoreError> {
        let mut filter = LeafFilter::with_budget(self.leaf_filter_bytes);
        let mut from = Vec::new();
        loop {
            let rows = self
                .backend
                .scan(Column::Leaves, &from, FILTER_LOAD_CHUNK)?;
            for (key, _) in &rows {
                let hash = <[u8; 32]>::try_from(key.as_slice()).map_err(|_| {
                    StoreError::Corrupt(Corruption::BadKey {
                        column: Column::Leaves,
                        key: hex(key),
                    })
                })?;
                filter.insert(&Hash(hash));
            }
            match rows.last() {
                Some((key, _)) if rows.len() == FILTER_LOAD_CHUNK => {
                    // The next scan starts just after the last key read.
                    from.clone_from(key);
                    from.push(0);
                }
                _ => return Ok(filter),
            }
        }
    }

    /// Whether the leaf filter is loaded (lookups of new hashes stay in memory).
    pub fn leaf_filter_ready(&self) -> bool {
        matches!(
            *self.leaves.read().unwrap_or_else(|p| p.into_inner()),
            FilterState::Ready(_)
        )
    }

    /// Entries `[start, end)`, each of which must be stored under its own index; unlike [`LogStore::entries`],
    /// not bounded by the tree size (the integrity check also reads rows a newer batch is adding).
    pub(crate) fn read_entries(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        let want = usize::try_from(end.saturating_sub(start))
            .map_err(|_| StoreError::OutOfRange(format!("range of {} entries", end - start)))?;
        let rows = self
            .backend
            .scan(Column::Entries, &start.to_be_bytes(), want)?;
        let missing = |index| {
            StoreError::Corrupt(Corruption::MissingEntry {
                index,
                size: self.size.load(Ordering::SeqCst),
            })
        };
        let mut out = Vec::with_capacity(rows.len());
        for (expected, (key, value)) in (start..end).zip(rows) {
            if key_u64(Column::Entries, &key)? != expected {
                return Err(missing(expected));
            }
            out.push(value);
        }
        if out.len() != want {
            return Err(missing(start + out.len() as u64));
        }
        Ok(out)
    }

    /// The index of the first stored entry at `from` or later, if any.
    pub(crate) fn first_entry_from(&self, from: u64) -> Result<Option<u64>, StoreError> {
        match self
            .backend
            .scan(Column::Entries, &from.to_be_bytes(), 1)?
            .pop()
        {
            Some((key, _)) => Ok(Some(key_u64(Column::Entries, &key)?)),
            None => Ok(None),
        }
    }

    /// The first stored tile at `from` or later in (level, index) order, if any.
    pub(crate) fn first_tile_from(&self, from: TileId) -> Result<Option<TileId>, StoreError> {
        match self.backend.scan(Column::Tiles, &from.key(), 1)?.pop() {
            Some((key, _)) => TileId::from_key(&key).map(Some).ok_or_else(|| {
                StoreError::Corrupt(Corruption::BadKey {
                    column: Column::Tiles,
                    key: hex(&key),
                })
            }),
            None => Ok(None),
        }
    }

    /// The tiles among `tiles` held in memory, as stored: full upper tiles once read, and the right edge.
    fn tiles_in_memory(
        &self,
        tiles: impl IntoIterator<Item = TileId>,
    ) -> HashMap<TileId, Arc<[u8]>> {
        let tiles: Vec<TileId> = tiles.into_iter().collect();
        let mut found = self.upper.get_many(tiles.iter().copied());
        let edge = self.edge.read().unwrap_or_else(|p| p.into_inner());
        for tile in tiles {
            if let Some(stored) = edge.get(&tile) {
                found.entry(tile).or_insert_with(|| stored.clone());
            }
        }
        found
    }

    /// The stored tiles among `tiles` (each read once, in one batch), as stored: interior rows included.
    pub(crate) fn stored_tiles(
        &self,
        tiles: impl IntoIterator<Item = TileId>,
    ) -> Result<HashMap<TileId, Vec<u8>>, StoreError> {
        let mut tiles: Vec<TileId> = tiles.into_iter().collect();
        tiles.sort_unstable();
        tiles.dedup();
        let keys: Vec<[u8; 9]> = tiles.iter().map(|t| t.key()).collect();
        let values = self.backend.get_many(Column::Tiles, &keys)?;
        Ok(tiles
            .into_iter()
            .zip(values)
            .filter_map(|(t, v)| Some((t, v?)))
            .collect())
    }

    /// The leaf-index rows of `hashes`, read from the backend (the leaf filter is not asked), each decoded on its
    /// own.
    pub(crate) fn leaf_rows(&self, hashes: &[&Hash]) -> Result<Vec<LeafRow>, StoreError> {
        self.leaf_rows_in(hashes, ReadTier::Any)
            .map(|rows| rows.unwrap_or_default())
    }

    fn leaf_rows_in(
        &self,
        hashes: &[&Hash],
        tier: ReadTier,
    ) -> Result<Option<Vec<LeafRow>>, StoreError> {
        let keys: Vec<&[u8]> = hashes.iter().map(|h| &h.0[..]).collect();
        let Some(values) = self.backend.get_many_in(Column::Leaves, &keys, tier)? else {
            return Ok(None);
        };
        Ok(Some(
            values
                .into_iter()
                .map(|value| match value {
                    None => LeafRow::Absent,
                    Some(v) => match <[u8; 8]>::try_from(v.as_slice()) {
                        Ok(b) => LeafRow::At(LeafIndex(u64::from_be_bytes(b))),
                        Err(_) => LeafRow::Malformed(v.len()),
                    },
                })
                .collect(),
        ))
    }

    fn check_batch(&self, batch: &AppendBatch, size: u64) -> Result<u64, StoreError> {
        if batch.start.0 != size {
            return Err(StoreError::Conflict(format!(
                "batch starts at {} but the log has {size} entries",
                batch.start.0
            )));
        }
        if batch.entries.is_empty() {
            return Err(StoreError::Conflict("empty batch".into()));
        }
        if batch.leaf_hashes.len() != batch.entries.len() {
            return Err(StoreError::Conflict(format!(
                "{} entries but {} leaf hashes",
                batch.entries.len(),
                batch.leaf_hashes.len()
            )));
        }
        if batch.checkpoint.is_empty() {
            return Err(StoreError::Conflict("batch has no checkpoint".into()));
        }
        size.checked_add(batch.entries.len() as u64)
            .ok_or_else(|| StoreError::Conflict("tree size would overflow".into()))
    }
}

impl<B: Backend> LogStore for TiledStore<B> {
    fn tree_size(&self) -> Result<TreeSize, StoreError> {
        Ok(TreeSize(self.size.load(Ordering::SeqCst)))
    }

    fn append(&self, batch: &AppendBatch) -> Result<(), StoreError> {
        let _appending = self.appending.lock().unwrap_or_else(|p| p.into_inner());
        // The edge is only changed after a successful write, so even a poisoned lock holds a true state.
        let edge = self.edge.read().unwrap_or_else(|p| p.into_inner()).clone();
        let size = self.size.load(Ordering::SeqCst);
        let new_size = self.check_batch(batch, size)?;

        // Group the new nodes by tile and extend each touched tile once.
        let mut by_tile: BTreeMap<TileId, Vec<(usize, usize, Hash)>> = BTreeMap::new();
        for &(id, hash) in &batch.nodes {
            if id.end() > new_size {
                return Err(StoreError::Conflict(format!(
                    "node at level {} index {} lies beyond the new size {new_size}",
                    id.level, id.index
                )));
            }
            let slot = NodeSlot::of(id);
            by_tile
                .entry(slot.tile)
                .or_default()
                .push((slot.row, slot.offset, hash));
        }
        let stored =
            self.stored_tiles(by_tile.keys().filter(|t| !edge.contains_key(t)).copied())?;
        let mut tiles = Vec::with_capacity(by_tile.len());
        for (tile_id, nodes) in &by_tile {
            let key = tile_id.key();
            let old = match edge.get(tile_id) {
                Some(old) => &old[..],
                None => stored.get(tile_id).map(Vec::as_slice).unwrap_or_default(),
            };
            let new = tile::extend_tile(*tile_id, old, nodes)?;
            let partial = tile::width_of(*tile_id, &new)? < TILE_WIDTH;
            tiles.push((*tile_id, key, new, partial));
        }

        // Every row borrows from the batch or from the locals above: the write batch is the only copy made.
        let indices: Vec<[u8; 8]> = (size..new_size).map(u64::to_be_bytes).collect();
        let checkpoint_key = new_size.to_be_bytes();
        let mut puts: Vec<Put<'_>> = Vec::with_capacity(batch.entries.len() * 2 + tiles.len() + 1);
        puts.extend(
            indices
                .iter()
                .zip(&batch.entries)
                .map(|(index, entry)| (Column::Entries, &index[..], entry.as_slice())),
        );
        puts.extend(
            batch
                .leaf_hashes
                .iter()
                .zip(&indices)
                .map(|(leaf, index)| (Column::Leaves, &leaf.0[..], &index[..])),
        );
        // Leaf-index rows in key order: the skip-list memtable keeps its last insert position, so each row is placed
        // next to the one before instead of searched for from the top. The sort is stable, so a hash repeated in
        // the batch (de-duplication off) still ends with its later index, as across batches.
        let n = puts.len();
        puts[batch.entries.len()..n].sort_by_key(|p| p.1);
        puts.extend(
            tiles
                .iter()
                .map(|(_, key, new, _)| (Column::Tiles, &key[..], new.as_slice())),
        );
        puts.push((Column::Checkpoints, &checkpoint_key[..], &batch.checkpoint));
        let payload_keys: Vec<Vec<u8>> = batch
            .payloads
            .iter()
            .map(|p| payload_key(&p.subject, p.index))
            .collect();
        puts.extend(
            payload_keys
                .iter()
                .zip(&batch.payloads)
                .map(|(key, p)| (Column::Payloads, key.as_slice(), p.sealed.as_slice())),
        );
        puts.extend(
            batch.subject_keys.iter().map(|(subject, record)| {
                (Column::SubjectKeys, subject.as_slice(), record.as_slice())
            }),
        );
        let ranges: Vec<(Vec<u8>, Vec<u8>)> = batch
            .erase_payloads_of
            .iter()
            .map(|s| payload_range(s))
            .collect();
        let deletes: Vec<DeleteRange<'_>> = ranges
            .iter()
            .map(|(from, to)| (Column::Payloads, from.as_slice(), to.as_slice()))
            .collect();
        if !deletes.is_empty() {
            // In the same write as the deletion, so a crash cannot lose the reminder to purge the files.
            puts.push((Column::Meta, META_PURGE_PENDING.as_bytes(), b"1"));
        }

        self.backend.write_batch(&puts, &deletes)?;
        drop(puts);
        match &mut *self.leaves.write().unwrap_or_else(|p| p.into_inner()) {
            FilterState::Ready(filter) | FilterState::Loading(filter) => {
                for hash in &batch.leaf_hashes {
                    filter.insert(hash);
                }
            }
            // A later load scans these rows.
            FilterState::Unloaded => {}
        }

        // Partial tiles untouched by this batch stay on the edge (a level whose tile did not change).
        let mut edge = self.edge.write().unwrap_or_else(|p| p.into_inner());
        edge.retain(|t, _| !by_tile.contains_key(t));
        edge.extend(
            tiles
                .into_iter()
                .filter(|(_, _, _, partial)| *partial)
                .map(|(tile_id, _, new, _)| (tile_id, Arc::from(new))),
        );
        drop(edge);
        self.size.store(new_size, Ordering::SeqCst);
        Ok(())
    }

    fn entries(&self, start: LeafIndex, end: LeafIndex) -> Result<Vec<Vec<u8>>, StoreError> {
        let size = self.size.load(Ordering::SeqCst);
        if start.0 > end.0 || end.0 > size {
            return Err(StoreError::OutOfRange(format!(
                "entries [{}, {}) of a log of {size}",
                start.0, end.0
            )));
        }
        self.read_entries(start.0, end.0)
    }

    fn nodes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, StoreError> {
        self.nodes_in(ids, ReadTier::Any)
            .map(|nodes| nodes.unwrap_or_default())
    }

    fn nodes_in(&self, ids: &[NodeId], tier: ReadTier) -> Result<Option<Vec<Hash>>, StoreError> {
        let size = self.size.load(Ordering::SeqCst);
        if let Some(id) = ids.iter().find(|id| id.end() > size) {
            return Err(StoreError::OutOfRange(format!(
                "node at level {} index {} is not complete in a tree of {size}",
                id.level, id.index
            )));
        }
        let slots: Vec<NodeSlot> = ids.iter().map(|&id| NodeSlot::of(id)).collect();
        let mut nodes: Vec<Option<Hash>> = vec![None; ids.len()];
        // Takes the asked-for nodes of one stored tile, read where it lies (a proof needs a few of its 511 hashes).
        let mut take = |tile: TileId, stored: &[u8]| -> Result<(), StoreError> {
            for (node, slot) in nodes.iter_mut().zip(&slots) {
                if slot.tile == tile {
                    *node = tile::read_node(stored, slot)?;
                }
            }
            Ok(())
        };
        let cached = self.tiles_in_memory(slots.iter().map(|s| s.tile));
        for (&tile, stored) in &cached {
            take(tile, stored)?;
        }
        let mut tiles: Vec<TileId> = slots
            .iter()
            .map(|s| s.tile)
            .filter(|t| !cached.contains_key(t))
            .collect();
        tiles.sort_unstable();
        tiles.dedup();
        let keys: Vec<[u8; 9]> = tiles.iter().map(|t| t.key()).collect();
        let answered =
            self.backend
                .visit_many_in(Column::Tiles, &keys, tier, &mut |i, stored| {
                    self.upper.keep([(&tiles[i], stored)]);
                    take(tiles[i], stored)
                })?;
        if !answered {
            return Ok(None);
        }
        ids.iter()
            .zip(nodes)
            .map(|(&id, node)| node.ok_or(StoreError::MissingNode(id)))
            .collect::<Result<Vec<Hash>, StoreError>>()
            .map(Some)
    }

    fn leaf_indices(&self, leaf_hashes: &[Hash]) -> Result<Vec<Option<LeafIndex>>, StoreError> {
        self.leaf_indices_in(leaf_hashes, ReadTier::Any)
            .map(|found| found.unwrap_or_default())
    }

    fn leaf_indices_in(
        &self,
        leaf_hashes: &[Hash],
        tier: ReadTier,
    ) -> Result<Option<Vec<Option<LeafIndex>>>, StoreError> {
        // Only hashes the filter may hold are looked up in the backend.
        let maybe: Vec<usize> = match &*self.leaves.read().unwrap_or_else(|p| p.into_inner()) {
            FilterState::Ready(filter) => filter
                .may_contain_many(leaf_hashes)
                .into_iter()
                .enumerate()
                .filter_map(|(i, maybe)| maybe.then_some(i))
                .collect(),
            FilterState::Unloaded | FilterState::Loading(_) => (0..leaf_hashes.len()).collect(),
        };
        let mut found = vec![None; leaf_hashes.len()];
        if maybe.is_empty() {
            return Ok(Some(found));
        }
        let hashes: Vec<&Hash> = maybe.iter().map(|&i| &leaf_hashes[i]).collect();
        let Some(rows) = self.leaf_rows_in(&hashes, tier)? else {
            return Ok(None);
        };
        for (i, row) in maybe.into_iter().zip(rows) {
            match row {
                LeafRow::Absent => {}
                LeafRow::At(index) => found[i] = Some(index),
                LeafRow::Malformed(len) => {
                    return Err(StoreError::Corrupt(Corruption::LeafIndexMalformed {
                        leaf_hash: leaf_hashes[i],
                        len,
                    }));
                }
            }
        }
        Ok(Some(found))
    }

    fn checkpoint(&self, size: TreeSize) -> Result<Option<Vec<u8>>, StoreError> {
        let mut v = self
            .backend
            .get_many(Column::Checkpoints, &[size.0.to_be_bytes()])?;
        Ok(v.pop().flatten())
    }

    fn latest_checkpoint(&self) -> Result<Option<(TreeSize, Vec<u8>)>, StoreError> {
        match self.backend.last(Column::Checkpoints)? {
            Some((key, note)) => Ok(Some((TreeSize(key_u64(Column::Checkpoints, &key)?), note))),
            None => Ok(None),
        }
    }

    fn checkpoints_from(
        &self,
        from: TreeSize,
        limit: usize,
    ) -> Result<Vec<(TreeSize, Vec<u8>)>, StoreError> {
        self.backend
            .scan(Column::Checkpoints, &from.0.to_be_bytes(), limit)?
            .into_iter()
            .map(|(k, v)| Ok((TreeSize(key_u64(Column::Checkpoints, &k)?), v)))
            .collect()
    }

    fn tile(&self, level: u8, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let id = TileId { level, index };
        if let Some(stored) = self.tiles_in_memory([id]).get(&id) {
            return Ok(Some(tile::bottom_row(id, stored)?.to_vec()));
        }
        match self
            .backend
            .get_many(Column::Tiles, &[id.key()])?
            .pop()
            .flatten()
        {
            Some(stored) => Ok(Some(tile::bottom_row(id, &stored)?.to_vec())),
            None => Ok(None),
        }
    }

    fn subject_key(&self, subject: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .backend
            .get_many(Column::SubjectKeys, &[subject])?
            .pop()
            .flatten())
    }

    fn payload(&self, subject: &[u8], index: LeafIndex) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .backend
            .get_many(Column::Payloads, &[payload_key(subject, index)])?
            .pop()
            .flatten())
    }

    fn purge_erased(&self) -> Result<(), StoreError> {
        self.backend
            .purge_deleted(&[Column::Payloads, Column::SubjectKeys])?;
        self.set_meta(META_PURGE_PENDING, b"0")
    }

    fn purge_pending(&self) -> Result<bool, StoreError> {
        Ok(self.meta(META_PURGE_PENDING)?.as_deref() == Some(b"1"))
    }

    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .backend
            .get_many(Column::Meta, &[key.as_bytes()])?
            .pop()
            .flatten())
    }

    fn set_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.backend.write(&[(Column::Meta, key.as_bytes(), value)])
    }

    fn memory(&self) -> Vec<MemoryPart> {
        let filter = match &*self.leaves.read().unwrap_or_else(|p| p.into_inner()) {
            FilterState::Unloaded => 0,
            FilterState::Loading(f) | FilterState::Ready(f) => f.bytes(),
        };
        let mut parts = vec![
            ("leaf_filter", filter as u64),
            ("upper_tiles", self.upper.bytes() as u64),
        ];
        parts.extend(self.backend.memory());
        parts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryBackend;
    use crate::conformance::{append_entries, entry};
    use tlog_core::{CompactRange, leaf_hash};

    /// A gap in the stored entries is corruption that names the first missing index.
    #[test]
    fn a_missing_entry_is_named() {
        let store = TiledStore::open(MemoryBackend::new()).unwrap();
        let (zero, two) = (0u64.to_be_bytes(), 2u64.to_be_bytes());
        store
            .backend
            .write(&[
                (Column::Entries, &zero, b"a"),
                (Column::Entries, &two, b"c"),
            ])
            .unwrap();
        store.size.store(3, Ordering::SeqCst);
        let err = store.entries(LeafIndex(0), LeafIndex(3)).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Corrupt(Corruption::MissingEntry { index: 1, size: 3 })
            ),
            "{err}"
        );
    }

    /// The filter loads from a leaf index larger than one scan chunk, and keeps up with later appends.
    #[test]
    fn leaf_filter_loads_in_chunks_and_follows_appends() {
        let store = TiledStore::open(MemoryBackend::new()).unwrap();
        let mut frontier = CompactRange::new();
        let total = FILTER_LOAD_CHUNK as u64 + 1000;
        let mut next = 0;
        while next < total {
            let n = 8192.min(total - next);
            append_entries(&store, &mut frontier, next..next + n);
            next += n;
        }
        assert!(
            store.leaf_filter_ready(),
            "a new log's filter is ready at once"
        );
        // As after a restart: nothing loaded yet, so lookups go to the backend.
        *store.leaves.write().unwrap() = FilterState::Unloaded;
        let hashes: Vec<Hash> = (0..total + 10).map(|i| leaf_hash(&entry(i))).collect();
        let expected: Vec<bool> = (0..total + 10).map(|i| i < total).collect();
        let found = |store: &TiledStore<MemoryBackend>| -> Vec<bool> {
            let found = store.leaf_indices(&hashes).unwrap();
            found.iter().map(Option::is_some).collect()
        };
        assert_eq!(found(&store), expected);
        store.load_leaf_filter().unwrap();
        assert!(store.leaf_filter_ready());
        assert_eq!(found(&store), expected);
        append_entries(&store, &mut frontier, total..total + 10);
        let found = store.leaf_indices(&hashes[total as usize..]).unwrap();
        assert!(
            found.iter().all(Option::is_some),
            "hashes appended after the load"
        );
    }

    /// A leaf filter budget small enough that a few thousand entries' index (40 bytes each) outweighs it, so that
    /// it is saved.
    const SMALL_FILTER: usize = 16 << 10;

    fn filter_holds(store: &TiledStore<MemoryBackend>, hash: &Hash) -> bool {
        match &*store.leaves.read().unwrap() {
            FilterState::Ready(filter) => filter.may_contain(hash),
            _ => panic!("the filter is not loaded"),
        }
    }

    /// Deletes the leaf-index row of `index`, so that a filter rebuilt by scanning the index lacks its hash.
    fn drop_leaf_row(store: &TiledStore<MemoryBackend>, index: u64) -> Hash {
        let hash = leaf_hash(&entry(index));
        let mut to = hash.0.to_vec();
        to.push(0);
        store
            .backend
            .write_batch(&[], &[(Column::Leaves, &hash.0, &to)])
            .unwrap();
        hash
    }

    /// A store of 3,000 entries whose leaf filter has just been saved, and its frontier.
    fn store_with_saved_filter() -> (TiledStore<MemoryBackend>, CompactRange) {
        let store = TiledStore::open(MemoryBackend::new())
            .unwrap()
            .with_leaf_filter_bytes(SMALL_FILTER);
        let mut frontier = CompactRange::new();
        append_entries(&store, &mut frontier, 0..3000);
        assert!(store.save_leaf_filter().unwrap());
        (store, frontier)
    }

    /// A start after a clean shutdown loads the saved filter (no scan: a hash whose index row is gone is still in
    /// it) and hashes the entries appended after the save.
    #[test]
    fn a_saved_filter_loads_without_a_scan_and_takes_in_later_entries() {
        let (store, mut frontier) = store_with_saved_filter();
        append_entries(&store, &mut frontier, 3000..3100);
        let gone = drop_leaf_row(&store, 7);
        *store.leaves.write().unwrap() = FilterState::Unloaded;
        store.load_leaf_filter().unwrap();
        assert!(
            filter_holds(&store, &gone),
            "the filter was rebuilt by a scan"
        );
        assert!(
            (0..3100).all(|i| filter_holds(&store, &leaf_hash(&entry(i)))),
            "a hash saved or appended after the save is missing"
        );
    }

    /// A saved filter that cannot be read as written is not used: the filter is rebuilt from the leaf index.
    #[test]
    fn a_damaged_saved_filter_is_replaced_by_a_scan() {
        let (store, _) = store_with_saved_filter();
        let gone = drop_leaf_row(&store, 7);
        let chunk = format!("{}/0000/00000000", saved_filter_prefix(0));
        store.set_meta(&chunk, b"short").unwrap();
        *store.leaves.write().unwrap() = FilterState::Unloaded;
        store.load_leaf_filter().unwrap();
        assert!(!filter_holds(&store, &gone), "the damaged filter was used");
        assert!((8..3000).all(|i| filter_holds(&store, &leaf_hash(&entry(i)))));
    }

    /// A filter saved by an older version (eight bits per hash, header `v1`) is not used: read with today's bit
    /// positions it would deny hashes it holds, and de-duplication would miss them.
    #[test]
    fn a_filter_saved_with_eight_bits_per_hash_is_replaced_by_a_scan() {
        let (store, _) = store_with_saved_filter();
        let header = store.meta(META_LEAF_FILTER).unwrap().unwrap();
        let mut old = b"tlog-leaf-filter-v1\n".to_vec();
        old.extend_from_slice(header.strip_prefix(SAVED_FILTER_MAGIC).unwrap());
        store.set_meta(META_LEAF_FILTER, &old).unwrap();
        let gone = drop_leaf_row(&store, 7);
        *store.leaves.write().unwrap() = FilterState::Unloaded;
        store.load_leaf_filter().unwrap();
        assert!(!filter_holds(&store, &gone), "the v1 filter was used");
        assert!((8..3000).all(|i| filter_holds(&store, &leaf_hash(&entry(i)))));
    }

    /// The right edge's partial tiles are read at open and kept: proofs and the next append use them, not the
    /// backend's rows (here damaged after the open to show it).
    #[test]
    fn a_reopened_store_keeps_its_right_edge_in_memory() {
        let store = TiledStore::open(MemoryBackend::new()).unwrap();
        let reference = TiledStore::open(MemoryBackend::new()).unwrap();
        let (mut frontier, mut reference_frontier) = (CompactRange::new(), CompactRange::new());
        let size = 2 * TILE_WIDTH as u64 + 5;
        append_entries(&store, &mut frontier, 0..size);
        append_entries(&reference, &mut reference_frontier, 0..size);
        let store = TiledStore::open(store.backend).unwrap();
        for tile in tile::edge_tiles(size) {
            store
                .backend
                .write(&[(Column::Tiles, &tile.key(), b"damaged")])
                .unwrap();
        }
        let ids = [NodeId::leaf(size - 1), NodeId { level: 8, index: 1 }];
        assert_eq!(store.nodes(&ids).unwrap(), reference.nodes(&ids).unwrap());

        append_entries(&store, &mut frontier, size..size + 300);
        append_entries(&reference, &mut reference_frontier, size..size + 300);
        let ids: Vec<NodeId> = (0..size + 300).map(NodeId::leaf).collect();
        assert_eq!(store.nodes(&ids).unwrap(), reference.nodes(&ids).unwrap());
    }

    /// Each save replaces the one before: only the newest generation's rows remain.
    #[test]
    fn a_new_save_deletes_the_previous_one() {
        let store = TiledStore::open(MemoryBackend::new())
            .unwrap()
            .with_leaf_filter_bytes(1 << 10);
        let mut frontier = CompactRange::new();
        append_entries(&store, &mut frontier, 0..100);
        assert!(store.save_leaf_filter().unwrap());
        append_entries(&store, &mut frontier, 100..200);
        assert!(store.save_leaf_filter().unwrap());
        let rows = store
            .backend
            .scan(Column::Meta, b"leaf_filter.", usize::MAX)
            .unwrap();
        let saved: Vec<_> = rows
            .iter()
            .filter(|(k, _)| k.starts_with(b"leaf_filter."))
            .collect();
        assert!(!saved.is_empty());
        assert!(
            saved
                .iter()
                .all(|(k, _)| k.starts_with(saved_filter_prefix(1).as_bytes())),
            "rows of the first save remain"
        );
    }

    /// A filter saved under a larger budget is folded to the current one on load, keeping every hash.
    #[test]
    fn a_saved_filter_is_folded_to_a_smaller_budget() {
        let mut store = TiledStore::open(MemoryBackend::new())
            .unwrap()
            .with_leaf_filter_bytes(4 * SMALL_FILTER);
        let mut frontier = CompactRange::new();
        append_entries(&store, &mut frontier, 0..3000);
        assert!(store.save_leaf_filter().unwrap());
        let gone = drop_leaf_row(&store, 7);
        store = store.with_leaf_filter_bytes(SMALL_FILTER);
        *store.leaves.write().unwrap() = FilterState::Unloaded;
        store.load_leaf_filter().unwrap();
        assert_eq!(store.leaf_filter_bytes(), SMALL_FILTER);
        assert!(
            filter_holds(&store, &gone),
            "the filter was rebuilt by a scan"
        );
        assert!((0..3000).all(|i| filter_holds(&store, &leaf_hash(&entry(i)))));
    }

    /// A filter saved under a smaller budget, which a larger one cannot load, is deleted when a save is skipped.
    #[test]
    fn a_skipped_save_deletes_a_filter_saved_before() {
        let mut store = TiledStore::open(MemoryBackend::new())
            .unwrap()
            .with_leaf_filter_bytes(SMALL_FILTER);
        let mut frontier = CompactRange::new();
        append_entries(&store, &mut frontier, 0..3000);
        assert!(store.save_leaf_filter().unwrap());
        store = store.with_leaf_filter_bytes(64 * SMALL_FILTER);
        *store.leaves.write().unwrap() = FilterState::Unloaded;
        store.load_leaf_filter().unwrap();
        assert!(!store.save_leaf_filter().unwrap());
        let rows = store
            .backend
            .scan(Column::Meta, META_LEAF_FILTER.as_bytes(), usize::MAX)
            .unwrap();
        assert!(
            !rows
                .iter()
                .any(|(k, _)| k.starts_with(META_LEAF_FILTER.as_bytes())),
            "rows of the earlier save remain"
        );
        assert!((0..3000).all(|i| filter_holds(&store, &leaf_hash(&entry(i)))));
    }

    /// A filter larger than the leaf index it stands for is not saved: the next load scans the index.
    #[test]
    fn a_small_log_saves_no_filter() {
        let store = TiledStore::open(MemoryBackend::new()).unwrap();
        let mut frontier = CompactRange::new();
        append_entries(&store, &mut frontier, 0..3000);
        assert!(!store.save_leaf_filter().unwrap());
        assert!(store.meta(META_LEAF_FILTER).unwrap().is_none());
        *store.leaves.write().unwrap() = FilterState::Unloaded;
        store.load_leaf_filter().unwrap();
        assert!((0..3000).all(|i| filter_holds(&store, &leaf_hash(&entry(i)))));
    }

    /// Full tiles above level 0 answer from memory once read (a damaged row behind them goes unread), and a tile
    /// still partial when read is read again after it grows.
    #[test]
    fn full_upper_tiles_are_kept_and_partial_ones_are_not() {
        let open = |upper: usize| {
            TiledStore::open(MemoryBackend::new())
                .unwrap()
                .with_upper_tile_cache_bytes(upper)
        };
        let (store, reference) = (open(DEFAULT_UPPER_TILE_CACHE_BYTES), open(0));
        let (mut frontier, mut reference_frontier) = (CompactRange::new(), CompactRange::new());
        // Two full level-1 tiles and one partial (level-8 node 512 alone).
        let total = 2 * (TILE_WIDTH * TILE_WIDTH) as u64 + 300;
        for from in (0..total).step_by(8192) {
            let range = from..total.min(from + 8192);
            append_entries(&store, &mut frontier, range.clone());
            append_entries(&reference, &mut reference_frontier, range);
        }
        let ids: Vec<NodeId> = (0..=512)
            .map(|index| NodeId { level: 8, index })
            .chain([
                NodeId {
                    level: 9,
                    index: 200,
                },
                NodeId {
                    level: 15,
                    index: 1,
                },
            ])
            .collect();
        let expected = reference.nodes(&ids).unwrap();
        assert_eq!(store.nodes(&ids).unwrap(), expected);
        assert_eq!(store.upper_tile_cache_bytes(), 2 * tile::FULL_TILE_BYTES);
        assert_eq!(reference.upper_tile_cache_bytes(), 0);

        // Served from memory: the damaged row is not read.
        let key = TileId { level: 1, index: 1 }.key();
        store
            .backend
            .write(&[(Column::Tiles, &key, b"damaged")])
            .unwrap();
        assert_eq!(store.nodes(&ids).unwrap(), expected);

        let more = total..total + TILE_WIDTH as u64;
        append_entries(&store, &mut frontier, more.clone());
        append_entries(&reference, &mut reference_frontier, more);
        let grown = [NodeId {
            level: 8,
            index: 513,
        }];
        assert_eq!(
            store.nodes(&grown).unwrap(),
            reference.nodes(&grown).unwrap()
        );
    }
}
