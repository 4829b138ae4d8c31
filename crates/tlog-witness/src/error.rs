//! The crate's single error type: why a request was refused (each variant the answer tlog-witness defines) and
//! why the witness could not start or persist.

use std::path::PathBuf;

use tlog_core::VerifyError;

/// Everything that can go wrong, request refusals included; [`crate::http`] maps each to its status code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    // Refusals of an `add-checkpoint` request, in the order tlog-witness checks them.
    /// The body is not an `add-checkpoint` request: 400.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// No log with the checkpoint's origin is configured: 404.
    #[error("unknown log origin {0:?}")]
    UnknownOrigin(String),
    /// No signature verifies with a key trusted for the origin, or a trusted key's signature is bad: 403.
    #[error("checkpoint signature not verified: {0}")]
    Forbidden(tlog_checkpoint::Error),
    /// The old size is larger than the checkpoint's size: 400.
    #[error("old size {old} is larger than the checkpoint size {size}")]
    OldSizeBeyond {
        /// The request's old size.
        old: u64,
        /// The checkpoint's size.
        size: u64,
    },
    /// The old size is not the size of the latest checkpoint cosigned for the origin: 409 with that size.
    #[error("old size {old} is not the latest cosigned size {latest}")]
    WrongOldSize {
        /// The request's old size.
        old: u64,
        /// The latest cosigned size (0 when none).
        latest: u64,
    },
    /// The consistency proof does not lead from the cosigned checkpoint to the new one: 422.
    #[error("consistency proof does not verify: {0}")]
    BadProof(VerifyError),
    /// The checkpoint has the cosigned size but another root: 409.
    #[error("a checkpoint of size {size} with another root was already cosigned")]
    RootConflict {
        /// The size both checkpoints have.
        size: u64,
    },

    // Running the witness.
    /// A file or socket operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The configuration is unusable; the message says why.
    #[error("configuration: {0}")]
    Config(String),
    /// The witness key file cannot be used.
    #[error("key file {}: {reason}", path.display())]
    Key {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Another witness holds the data folder: two processes on one state could roll it back.
    #[error("data folder {} is in use by another witness", .0.display())]
    Locked(PathBuf),
    /// A stored state file is unreadable or damaged. The witness refuses to start rather than forget what it
    /// cosigned: starting over from size 0 would let it cosign a fork.
    #[error("corrupt state file {}: {reason}", path.display())]
    CorruptState {
        /// The state file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A previous request failed while holding this origin's state, which may then be behind the disk; the
    /// origin is refused until a restart reloads it.
    #[error("state of {0:?} is unavailable after an earlier failure; restart the witness")]
    StateUnavailable(String),
    /// No randomness for a new key.
    #[error("no randomness for a new key: {0}")]
    Randomness(getrandom::Error),
    /// A checkpoint library call failed where the input was already checked (cosigning a parsed body).
    #[error(transparent)]
    Checkpoint(#[from] tlog_checkpoint::Error),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Maps an I/O error to [`Error::Io`] with a context.
pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}
