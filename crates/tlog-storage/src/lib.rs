//! Storage for a tlog log: entries, the leaf-hash index, the Merkle tree's nodes, every signed checkpoint the log
//! published, and the log's metadata.
//!
//! [`LogStore`] is what the server's sequencer and proof readers use. One implementation, [`TiledStore`], holds
//! the log's rules (atomic appends, the node layout, size bookkeeping) over a small key-value [`Backend`]; it runs
//! on RocksDB ([`RocksStore`], the embedded default) or in memory ([`MemoryStore`], for tests and benchmarks). The
//! [`conformance`] suite checks any `LogStore` and both stores pass it.
//!
//! Nodes are laid out as C2SP `tlog-tiles` hash tiles (height 8) with their interior rows (see [`tile`]), so the
//! nodes of any RFC 9162 §2.1.3/§2.1.4 proof come from a handful of tiles read in one batched `multi_get`, and a
//! tile API can serve row 0 of a stored tile as it is.

pub mod conformance;
mod filter;
mod memory;
mod rocks;
pub mod tile;
mod tiled;

pub use memory::MemoryBackend;
pub use rocks::{RocksBackend, RocksOptions};
pub use tiled::{Backend, Column, TiledStore};
pub use tlog_core::{Hash, LeafIndex, NodeId, TreeSize};

/// The log on RocksDB in one folder (the embedded default).
pub type RocksStore = TiledStore<RocksBackend>;
/// The log in memory.
pub type MemoryStore = TiledStore<MemoryBackend>;

/// Version of the on-disk layout, kept in the metadata under [`META_FORMAT_VERSION`].
pub const FORMAT_VERSION: u32 = 1;
/// Metadata key of the layout version.
pub const META_FORMAT_VERSION: &str = "format_version";

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend failed (I/O error, disk full, ...). Nothing of the failed write was applied.
    #[error("storage backend: {0}")]
    Backend(String),
    /// The store's contents contradict each other or the expected layout.
    #[error("store is corrupt: {0}")]
    Corrupt(String),
    /// A write that does not continue the log where it ends; nothing was written.
    #[error("write rejected: {0}")]
    Conflict(String),
    /// A read outside the stored tree.
    #[error("out of range: {0}")]
    OutOfRange(String),
    /// A stored node that should exist is missing.
    #[error("missing node at level {} index {}", .0.level, .0.index)]
    MissingNode(NodeId),
    /// The store was written by an incompatible layout version.
    #[error("unsupported store format version {found} (this build reads version {FORMAT_VERSION})")]
    UnsupportedFormat { found: String },
}

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
    /// Log metadata (origin, key ids, format version).
    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Sets a metadata value (durably).
    fn set_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError>;
}
