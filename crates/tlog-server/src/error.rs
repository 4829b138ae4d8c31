//! The server's errors: one enum wrapping the layers below (storage, checkpoints, tree arithmetic, I/O, request
//! policy) and naming the server's own conditions. `service::status` maps it to gRPC codes in one place.

use std::path::PathBuf;
use std::sync::Arc;

use tlog_core::Hash;
use tlog_core::tiles::TileError;
use tlog_storage::{BackendErrorKind, StoreError};

use crate::validate::RequestError;

/// Errors of the log server (sequencer, recovery, proof serving, configuration).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request outside the log's limits, refused before any work (see [`crate::validate`]).
    #[error(transparent)]
    Request(#[from] RequestError),
    /// A tree size larger than the log's.
    #[error("tree size {size} is beyond the log's size {latest}")]
    SizeBeyondLog { size: u64, latest: u64 },
    /// A leaf index at or beyond the tree size it was asked in.
    #[error("leaf index {index} is not below tree size {size}")]
    LeafBeyondSize { index: u64, size: u64 },
    /// A consistency request whose sizes are not `0 < old <= new`.
    #[error("consistency needs 0 < old size <= new size, got {old} and {new}")]
    ConsistencySizes { old: u64, new: u64 },
    /// A tree size below the log's for which it never published a checkpoint.
    #[error("the log never published a checkpoint for tree size {0}")]
    NoCheckpoint(u64),
    /// A leaf hash the log does not hold.
    #[error("no entry with leaf hash {0} is in the log")]
    UnknownLeaf(Hash),
    /// A leaf the log holds, but only in trees larger than the one asked about.
    #[error("the entry with leaf hash {leaf} has index {index} and is not in tree size {size}")]
    LeafNotInSize { leaf: Hash, index: u64, size: u64 },
    /// `GetCheckpoint{min_size}` waited its longest and the log did not grow that far.
    #[error("the log did not reach size {min_size} within {waited:?}")]
    CheckpointWait {
        min_size: u64,
        waited: std::time::Duration,
    },
    /// A witnessed checkpoint was asked of a log that has no witnesses configured.
    #[error("this log has no witnesses configured, so it publishes no witnessed checkpoint")]
    NotWitnessed,
    /// No checkpoint has been cosigned by a quorum of witnesses yet.
    #[error("no checkpoint has been cosigned by a quorum of the log's witnesses yet; retry later")]
    NoWitnessedCheckpoint,
    /// A witnessed checkpoint was asked together with a size or a minimum size.
    #[error("witnessed cannot be combined with size or min_size")]
    WitnessedWithSize,
    /// The sequencer's queue is full: pushback, try again later.
    #[error("the log's submission queue is full ({0} batches queued); retry later")]
    QueueFull(usize),
    /// The log is too far ahead of its archive: pushback until archiving catches up.
    #[error("the archive is {lag} entries behind the log (at most {max_lag} allowed); retry later")]
    ArchiveLag { lag: u64, max_lag: u64 },
    /// A write sent to a read replica, which serves the archive of another log and takes no entries.
    #[error("read replica of {primary}; submit to the primary")]
    ReadReplica { primary: Arc<str> },
    /// The sequencer stopped (shutdown).
    #[error("the log is shutting down")]
    Closed,
    /// A batch could not be written because storage is failing or full; nothing of it was stored or signed.
    /// Retry later.
    /// Every submitter of the batch shares the one error.
    #[error("nothing was written, retry later: {0}")]
    Unavailable(#[source] Arc<StoreError>),
    /// A batch failed for a reason that is not storage's (tree arithmetic, signing); nothing was written.
    #[error("the batch failed, nothing was written: {0}")]
    BatchFailed(#[source] Arc<Error>),
    /// Storage failed.
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    /// A checkpoint stored by this log no longer verifies with its key (on-disk damage).
    #[error("stored checkpoint for size {size} does not verify: {source}")]
    StoredCheckpoint {
        size: u64,
        source: tlog_checkpoint::Error,
    },
    /// Signing or parsing a checkpoint failed.
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] tlog_checkpoint::Error),
    /// Tree arithmetic refused an input.
    #[error("tree: {0}")]
    Core(#[from] tlog_core::CoreError),
    /// The store and the log's key, origin or signatures disagree; the server refuses to start.
    #[error("refusing to start: {0}")]
    Recovery(#[from] RecoveryError),
    /// Bad configuration or key file.
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("building gRPC reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The gRPC transport failed while serving.
    #[error("gRPC server: {0}")]
    Serve(#[source] tonic::transport::Error),
    /// A task of the server panicked or was cancelled.
    #[error("a server task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// A read on the read threads panicked (see `read_pool`); the thread lives on.
    #[error(
        "the read failed unexpectedly (a read thread panicked: a bug, tlogd's error output has the panic)"
    )]
    ReadFailed,
    /// A tile path that is not a canonical C2SP `tlog-tiles` path (the message names the rule it breaks).
    #[error(transparent)]
    TilePath(TileError),
    /// A tile (or a width of it) that no checkpoint the log signed covers: beyond the tree, or a partial width
    /// the tree never had.
    #[error("{path} is not in the log: its latest signed tree has size {size}")]
    TileBeyondLog { path: String, size: u64 },
    /// A tile a signed checkpoint covers is missing from the store, or narrower than that checkpoint needs
    /// (on-disk damage).
    #[error("{path} is covered by the log's checkpoints but not stored at that width")]
    TileNotStored { path: String },
    /// An entry bundle could not be encoded (an entry longer than a bundle's uint16 length prefix).
    #[error("entry bundle {path}: {source}")]
    Bundle { path: String, source: TileError },
    /// The HTTP listener failed while serving.
    #[error("HTTP server: {0}")]
    ServeHttp(#[source] std::io::Error),
    /// A submission's receipt is missing from the sequencer's answer (a bug).
    #[error("no receipt for the entry")]
    NoReceipt,
    /// Private payloads and erasure (see [`crate::private`]).
    #[error(transparent)]
    Private(crate::private::PrivateError),
}

impl From<crate::private::PrivateError> for Error {
    fn from(e: crate::private::PrivateError) -> Self {
        match e {
            // Storage failing stays storage failing (retryable, or data loss), whoever met it.
            crate::private::PrivateError::Store(e) => Error::Store(e),
            e => Error::Private(e),
        }
    }
}

/// Why a store cannot be opened with the configured key (see [`crate::log::open`]).
#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    /// The store was written by another log (origin or key), or records only half of its identity.
    #[error(transparent)]
    Identity(#[from] tlog_storage::identity::IdentityMismatch),
    #[error("the store holds {0} entries but no signed checkpoint")]
    NoCheckpoint(u64),
    #[error("the newest stored checkpoint (size {size}) does not verify with {vkey}: {source}")]
    CheckpointSignature {
        size: u64,
        vkey: String,
        source: tlog_checkpoint::Error,
    },
    #[error("the newest checkpoint is for size {signed} but the store holds {stored} entries")]
    SizeMismatch { signed: u64, stored: u64 },
    #[error(
        "the signed root for size {size} is {signed} but the stored tree nodes give {computed}"
    )]
    RootMismatch {
        size: u64,
        signed: Hash,
        computed: Hash,
    },
    #[error("the newest checkpoint names origin {found:?}, expected {expected:?}")]
    CheckpointOrigin { found: String, expected: String },
}

/// Configuration or key-file problems; the message says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("key file {path} is not a signed-note private key: {source}")]
    KeyParse {
        path: PathBuf,
        source: tlog_checkpoint::Error,
    },
    #[error("key file {path} is accessible by other users (mode {mode:o}); run `chmod 600 {path}`")]
    KeyPermissions { path: PathBuf, mode: u32 },
    #[error("key file {path} is for origin {key:?} but the log's origin is {origin:?}")]
    KeyOrigin {
        path: PathBuf,
        key: String,
        origin: String,
    },
    #[error(
        "--origin {given:?} differs from this log's origin {stored:?}; drop --origin or use another --data folder"
    )]
    OriginMismatch { given: String, stored: String },
    #[error("no OS randomness for a new key: {0}")]
    Randomness(getrandom::Error),
    #[error("TLS: {0}")]
    Tls(tonic::transport::Error),
    #[error("witnesses: {0}")]
    WitnessPolicy(String),
    #[cfg(feature = "witnessing")]
    #[error("witnessing: {0}")]
    Witnessing(tlog_client::ClientError),
    /// The archive could not be set up (its URL or the AWS environment).
    #[cfg(feature = "archive")]
    #[error("archive: {0}")]
    Archive(tlog_archive::Error),
    /// A read replica could not start on its archive (no checkpoint, one that does not verify, tiles that do
    /// not give its root).
    #[error("replica: {0}")]
    Replica(String),
}

impl Error {
    /// Whether the error is storage failing (I/O, disk full, a busy backend): the request may succeed later,
    /// nothing was written.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Error::Closed => true,
            Error::Unavailable(e) => store_failure(e) == StoreFailure::Transient,
            Error::Store(e) => store_failure(e) == StoreFailure::Transient,
            _ => false,
        }
    }

    /// Whether the error is the data folder's disk full (or below its free-space reserve): nothing was written,
    /// and writes resume by themselves once space is freed.
    pub fn is_disk_full(&self) -> bool {
        match self {
            Error::Unavailable(e) => store_failure(e) == StoreFailure::Full,
            Error::Store(e) => store_failure(e) == StoreFailure::Full,
            _ => false,
        }
    }

    /// Whether the error is stored data found damaged or missing (a failed checksum, a row that contradicts the
    /// tree, a checkpoint that no longer verifies): retrying will not help, an operator must look.
    pub fn is_data_loss(&self) -> bool {
        match self {
            Error::Store(e) => store_failure(e) == StoreFailure::DataLoss,
            Error::Unavailable(e) => store_failure(e) == StoreFailure::DataLoss,
            Error::BatchFailed(e) => e.is_data_loss(),
            Error::StoredCheckpoint { .. } | Error::TileNotStored { .. } => true,
            _ => false,
        }
    }
}

/// What a storage error means for the caller: the one place that decides which storage errors are transient.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StoreFailure {
    /// The backend failing (I/O, busy, shutting down): the same call may succeed later.
    Transient,
    /// The disk full, or below the free-space reserve: the same call succeeds once space is freed.
    Full,
    /// Stored data damaged or missing.
    DataLoss,
    /// A bug or misconfiguration (an invalid request to the backend, a write that does not continue the log, an
    /// unsupported format).
    Internal,
}

pub(crate) fn store_failure(e: &StoreError) -> StoreFailure {
    match e {
        StoreError::Backend(b) => match b.kind {
            BackendErrorKind::Io | BackendErrorKind::Busy | BackendErrorKind::Other => {
                StoreFailure::Transient
            }
            BackendErrorKind::NoSpace => StoreFailure::Full,
            BackendErrorKind::Corruption => StoreFailure::DataLoss,
            BackendErrorKind::Invalid => StoreFailure::Internal,
        },
        StoreError::Corrupt(_) | StoreError::MissingNode(_) => StoreFailure::DataLoss,
        StoreError::Conflict(_)
        | StoreError::OutOfRange(_)
        | StoreError::UnsupportedFormat { .. }
        | StoreError::Unsupported(_) => StoreFailure::Internal,
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
