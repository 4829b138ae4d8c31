//! The storage layer's errors: [`StoreError`] for every store operation, and [`Corruption`], what is damaged in a
//! store and where, raised by the readers when a row cannot be right and by the integrity check ([`crate::fsck`]).

use tlog_core::{Hash, NodeId};

use crate::FORMAT_VERSION;
use crate::identity::IdentityMismatch;
use crate::tiled::Column;

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend failed; its [`BackendErrorKind`] tells corruption, I/O failure and a busy backend apart.
    /// Nothing of a failed write was applied.
    #[error("storage backend: {0}")]
    Backend(BackendError),
    /// The store's contents contradict each other or the expected layout.
    #[error("store is corrupt: {0}")]
    Corrupt(Corruption),
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
    /// An operation this store does not offer (a read replica's store takes no writes and has no index by leaf
    /// hash); the message says what to do instead.
    #[error("not supported: {0}")]
    Unsupported(String),
}

impl From<Corruption> for StoreError {
    fn from(c: Corruption) -> Self {
        StoreError::Corrupt(c)
    }
}

impl From<BackendError> for StoreError {
    fn from(e: BackendError) -> Self {
        StoreError::Backend(e)
    }
}

/// A failure of the key-value backend: its kind, and the backend's own message for people.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct BackendError {
    pub kind: BackendErrorKind,
    pub message: String,
}

impl BackendError {
    pub fn new(kind: BackendErrorKind, message: impl Into<String>) -> Self {
        BackendError {
            kind,
            message: message.into(),
        }
    }
}

/// What kind of backend failure (RocksDB's status codes, grouped by what a caller does about them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BackendErrorKind {
    /// The backend found its own files damaged (a checksum mismatch, a truncated table): stored data is lost or
    /// altered, and retrying will not help.
    Corruption,
    /// The operating system failed a read or write (permissions, a missing file, a failing disk; a disk that
    /// RocksDB itself found full).
    Io,
    /// The data folder's filesystem is full, or a write would take it below the configured free-space reserve:
    /// nothing was written, and the same write succeeds once space is freed.
    NoSpace,
    /// The backend is busy (a lock held, a timed-out wait, "try again"): the same call may succeed later.
    Busy,
    /// The backend refused the request as given (invalid argument, unsupported option, a missing column family):
    /// a bug or a misconfiguration.
    Invalid,
    /// Anything else (shutting down, aborted, ...).
    Other,
}

/// What is damaged in a store, and exactly where: the entry index, node (level, index), tile or checkpoint size.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Corruption {
    #[error("log identity: {0}")]
    Identity(IdentityMismatch),
    #[error("entry {index} is missing (the latest checkpoint covers {size} entries)")]
    MissingEntry { index: u64, size: u64 },
    #[error("entry {index} is stored beyond the latest signed checkpoint (size {size})")]
    ExtraEntry { index: u64, size: u64 },
    /// A key that does not have its column's encoding (shown in hex).
    #[error("{} column holds a malformed key {key}", .column.name())]
    BadKey { column: Column, key: String },
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
    #[error("the leaf-index row of leaf hash {leaf_hash} is malformed ({len} bytes, expected 8)")]
    LeafIndexMalformed { leaf_hash: Hash, len: usize },
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
    #[error("checkpoint at size {size}: {reason}")]
    Checkpoint { size: u64, reason: String },
    /// The backend itself found a damaged file (block checksum, truncated table, ...).
    #[error("storage reports corruption: {0}")]
    Backend(BackendError),
}

/// A key or value in hex, for messages.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
