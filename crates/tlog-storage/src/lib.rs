//! Storage for a tlog log: entries, the leaf-hash index, the Merkle tree's nodes, every signed checkpoint the log
//! published, and the log's metadata.
//!
//! [`LogStore`] is what the server's sequencer and proof readers use. One implementation, [`TiledStore`], holds
//! the log's rules (atomic appends, the node layout, size bookkeeping) over a small key-value [`Backend`]; it runs
//! on RocksDB (`RocksStore`, the embedded default, with the default `rocksdb` feature) or in memory
//! ([`MemoryStore`], for tests, benchmarks and embedding without RocksDB). The conformance suite (feature
//! `public-tests`) checks any `LogStore` and both stores pass it. [`fsck`] checks a stored log's integrity and
//! [`identity`] whom it belongs to.
//!
//! Nodes are laid out as C2SP `tlog-tiles` hash tiles (height 8) with their interior rows (see [`tile`]), so the
//! nodes of any RFC 9162 §2.1.3/§2.1.4 proof come from a handful of tiles read in one batched `multi_get`, and a
//! tile API can serve row 0 of a stored tile as it is.

#[cfg(any(test, feature = "public-tests"))]
pub mod conformance;
mod error;
mod filter;
pub use filter::DEFAULT_LEAF_FILTER_BYTES;
pub mod fsck;
pub mod identity;
mod memory;
#[cfg(feature = "rocksdb")]
mod rocks;
pub mod tile;
mod tile_cache;
pub use tile_cache::DEFAULT_UPPER_TILE_CACHE_BYTES;
mod tiled;

pub use error::{BackendError, BackendErrorKind, Corruption, StoreError};
pub use memory::MemoryBackend;
#[cfg(feature = "rocksdb")]
pub use rocks::{
    DEFAULT_BLOCK_CACHE_BYTES, DEFAULT_WRITE_BUFFER_BYTES, RocksBackend, RocksOptions,
};
pub use tiled::{
    Backend, Column, DeleteRange, META_PURGE_PENDING, Put, Row, TiledStore, Visit, payload_key,
};
pub use tlog_core::{Hash, LeafIndex, NodeId, TreeSize};

/// The log on RocksDB in one folder (the embedded default).
#[cfg(feature = "rocksdb")]
pub type RocksStore = TiledStore<RocksBackend>;
/// The log in memory.
pub type MemoryStore = TiledStore<MemoryBackend>;

/// Version of the on-disk layout, kept in the metadata under [`META_FORMAT_VERSION`].
pub const FORMAT_VERSION: u32 = 1;
/// Metadata key of the layout version.
pub const META_FORMAT_VERSION: &str = "format_version";

/// Everything one sequencer batch adds; applied atomically and durably by [`LogStore::append`].
#[derive(Debug, Clone, Default)]
pub struct AppendBatch {
    /// The tree size before the batch: the index of the first new entry. Must equal the stored size.
    pub start: TreeSize,
    /// The new entries, in index order (at least one).
    pub entries: Vec<Vec<u8>>,
    /// RFC 9162 leaf hash of each entry, in the same order.
    pub leaf_hashes: Vec<Hash>,
    /// Every tree node the batch completes (leaves included), in completion order as reported by
    /// `tlog_core::CompactRange`.
    pub nodes: Vec<(NodeId, Hash)>,
    /// The signed checkpoint (signed-note bytes) for the new size `start + entries.len()`.
    pub checkpoint: Vec<u8>,
    /// Sealed payloads of private entries, written with them (so an acknowledged private entry's payload is as
    /// durable as the entry). Opaque to the store.
    pub payloads: Vec<PayloadRow>,
    /// Subject key records to write (subject, record): new wrapped data keys, erasure tombstones. Opaque to the
    /// store.
    pub subject_keys: Vec<(Vec<u8>, Vec<u8>)>,
    /// Subjects whose every payload row this batch deletes (erasure); applied after the batch's puts.
    pub erase_payloads_of: Vec<Vec<u8>>,
}

/// The sealed payload of the private entry at `index`, filed under its subject.
#[derive(Debug, Clone)]
pub struct PayloadRow {
    pub subject: Vec<u8>,
    pub index: LeafIndex,
    pub sealed: Vec<u8>,
}

/// Whether a read may wait for the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadTier {
    /// From memory or from disk: the read may block on I/O.
    Any,
    /// Only from memory (memtables, block cache; all of the in-memory store): never waits for the disk. A read
    /// that would have to is not done, and answers `None`, so that a caller on an async worker can answer from
    /// memory at once and hand only the rest to a blocking thread.
    Memory,
}

/// A log's persistent state. Implementations are shared between the sequencer (the one writer) and readers.
pub trait LogStore: Send + Sync + 'static {
    /// Number of entries in the stored tree (the size of the latest stored checkpoint).
    fn tree_size(&self) -> Result<TreeSize, StoreError>;
    /// Appends a batch in one atomic, durable write: afterwards either all of it is stored or none of it.
    fn append(&self, batch: &AppendBatch) -> Result<(), StoreError>;
    /// Entries `[start, end)`; the range must lie within the stored tree.
    fn entries(&self, start: LeafIndex, end: LeafIndex) -> Result<Vec<Vec<u8>>, StoreError>;
    /// Hashes of complete nodes, in the order asked, with one batched read.
    fn nodes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, StoreError>;
    /// The index of each leaf hash, if the log holds it.
    fn leaf_indices(&self, leaf_hashes: &[Hash]) -> Result<Vec<Option<LeafIndex>>, StoreError>;
    /// [`LogStore::nodes`] within `tier`: `None` when some node is not in memory and `tier` is
    /// [`ReadTier::Memory`].
    fn nodes_in(&self, ids: &[NodeId], tier: ReadTier) -> Result<Option<Vec<Hash>>, StoreError> {
        let _ = tier;
        self.nodes(ids).map(Some)
    }
    /// [`LogStore::leaf_indices`] within `tier`: `None` when some answer is not in memory and `tier` is
    /// [`ReadTier::Memory`].
    fn leaf_indices_in(
        &self,
        leaf_hashes: &[Hash],
        tier: ReadTier,
    ) -> Result<Option<Vec<Option<LeafIndex>>>, StoreError> {
        let _ = tier;
        self.leaf_indices(leaf_hashes).map(Some)
    }
    /// The signed checkpoint stored for exactly `size`.
    fn checkpoint(&self, size: TreeSize) -> Result<Option<Vec<u8>>, StoreError>;
    /// The newest signed checkpoint and its size.
    fn latest_checkpoint(&self) -> Result<Option<(TreeSize, Vec<u8>)>, StoreError>;
    /// Stored checkpoints with size >= `from`, ascending, at most `limit`.
    fn checkpoints_from(
        &self,
        from: TreeSize,
        limit: usize,
    ) -> Result<Vec<(TreeSize, Vec<u8>)>, StoreError>;
    /// The C2SP tile body (bottom row hashes) of a stored tile, full or partial.
    fn tile(&self, level: u8, index: u64) -> Result<Option<Vec<u8>>, StoreError>;
    /// The key record of a private-payload subject ([`Column::SubjectKeys`]).
    fn subject_key(&self, subject: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// The sealed payload row of the private entry at `index` of `subject` ([`Column::Payloads`]).
    fn payload(&self, subject: &[u8], index: LeafIndex) -> Result<Option<Vec<u8>>, StoreError>;
    /// Rewrites the backend's files so that payload rows and key records deleted by erasures are gone from them
    /// (not only hidden), then clears [`LogStore::purge_pending`].
    fn purge_erased(&self) -> Result<(), StoreError>;
    /// Whether a batch erased payloads that [`LogStore::purge_erased`] has not purged yet (e.g. after a crash).
    fn purge_pending(&self) -> Result<bool, StoreError>;
    /// Log metadata (origin, key ids, format version).
    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Sets a metadata value (durably).
    fn set_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError>;
    /// Memory the store holds, by part (for the operator's metrics). A store that does not measure its own
    /// answers nothing.
    fn memory(&self) -> Vec<MemoryPart> {
        Vec::new()
    }
}

/// One part of a store's memory: a name (a metrics label value) and its bytes.
pub type MemoryPart = (&'static str, u64);
