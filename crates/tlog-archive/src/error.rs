//! The crate's error type.

use tlog_core::TreeSize;

/// What went wrong archiving or reading the archive.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An object already in the archive differs from what this log would write there: the archive holds another
    /// history, or was tampered with. Never overwritten; archiving stops.
    #[error(
        "integrity alarm: archived object {path} differs from the log's ({archived} bytes archived, {ours} ours)"
    )]
    Integrity {
        path: String,
        archived: usize,
        ours: usize,
    },
    /// The archived checkpoint changed under this writer (its conditional write failed): another writer is
    /// publishing to the same archive. This writer stops.
    #[error("another writer moved the archived checkpoint {path}; this writer stops")]
    AnotherWriter { path: String },
    /// The archived checkpoint is not one of this log's: not signed by its key, or of another tree.
    #[error("the archived checkpoint is not this log's: {0}")]
    ForeignCheckpoint(String),
    /// The archive is ahead of the log that would extend it (it was written by another node, or the local log
    /// was lost): archiving from this log would fork it.
    #[error("the archive holds {archived} entries but this log only {local}")]
    AheadOfLog { archived: TreeSize, local: TreeSize },
    /// The object store failed (unreachable, denied, ...). Worth retrying.
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    /// Reading a tile from the log being archived failed.
    #[error("reading the log: {0}")]
    Source(#[source] tlog_client::ClientError),
    /// `s3://bucket/prefix` or the AWS environment is not usable.
    #[error("archive configuration: {0}")]
    Config(String),
    /// A bucket-level S3 request (create, Object Lock) failed or was answered unexpectedly.
    #[error("S3 {what}: {detail}")]
    S3 { what: &'static str, detail: String },
    /// The bucket does not enforce the retention the archive asks for.
    #[error("bucket Object Lock: {0}")]
    ObjectLock(String),
    /// The archive's entries do not give its checkpoint's root, or one of its hash tiles is not the one they give
    /// ([`crate::audit`]).
    #[error("archive audit: {0}")]
    Audit(String),
    /// The HTTP client behind the bucket-level requests.
    #[error("S3 request: {0}")]
    Http(#[from] reqwest::Error),
}

impl Error {
    /// Whether archiving must stop for good (a person has to look), rather than retry after a pause.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            Error::Integrity { .. }
                | Error::AnotherWriter { .. }
                | Error::ForeignCheckpoint(_)
                | Error::AheadOfLog { .. }
                | Error::Config(_)
                | Error::ObjectLock(_)
        )
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
