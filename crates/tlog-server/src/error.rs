use tlog_storage::StoreError;

/// Errors of the log server's core (sequencer, recovery, proof serving, configuration).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request the log cannot accept as given (empty or oversized entry, bad range, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// An index or size beyond what the log holds or published.
    #[error("out of range: {0}")]
    OutOfRange(String),
    /// A leaf hash the log does not hold, or a tree size it never published.
    #[error("not found: {0}")]
    NotFound(String),
    /// The sequencer's queue is full: pushback, try again later.
    #[error("the log's submission queue is full ({0} batches queued); retry later")]
    QueueFull(usize),
    /// The sequencer stopped (shutdown).
    #[error("the log is shutting down")]
    Closed,
    /// Storage failed; for an append, nothing of the batch was stored or signed.
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    /// The batch could not be written (storage failing); nothing of it was stored or signed. Retry later.
    #[error("log unavailable, nothing was written: {0}")]
    Unavailable(String),
    /// A failure that is the log's fault, not the caller's.
    #[error("internal error: {0}")]
    Internal(String),
    /// Signing or parsing a checkpoint failed.
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] tlog_checkpoint::Error),
    /// Tree arithmetic refused an input (see the message).
    #[error("tree: {0}")]
    Core(#[from] tlog_core::CoreError),
    /// The store and the log's key, origin or signatures disagree; the server refuses to start.
    #[error("refusing to start: {0}")]
    Recovery(String),
    /// Bad configuration or key file; the message says what to fix.
    #[error("configuration: {0}")]
    Config(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
