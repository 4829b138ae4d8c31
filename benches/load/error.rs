//! The load generator's one error type: what stops a run (as opposed to a failed check of an answer, which is
//! counted in the report).

use std::path::PathBuf;

use tlog_checkpoint::Error as CheckpointError;

#[derive(Debug, thiserror::Error)]
pub(crate) enum LoadError {
    /// A command-line value out of range, or a combination the run cannot honour.
    #[error("{0}")]
    Usage(String),
    #[error(
        "no tlogd at {0}: run `cargo build --release --workspace --bins` first, or pass --tlogd PATH or --target ADDR"
    )]
    NoTlogd(PathBuf),
    #[error("tlogd did not start: {0}")]
    Start(String),
    #[error("verifier key {text:?}: {source}")]
    VerifierKey {
        text: String,
        source: CheckpointError,
    },
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("bad target address {addr}: {source}")]
    Address {
        addr: String,
        source: tonic::transport::Error,
    },
    #[error("connecting to {addr}: {source}")]
    Connect {
        addr: String,
        source: tonic::transport::Error,
    },
    #[error("GetCheckpoint: {0}")]
    GetCheckpoint(#[from] tonic::Status),
    #[error("GetCheckpoint answer: {0}")]
    Checkpoint(CheckpointError),
    #[error("raw RocksDB: {0}")]
    RocksDb(#[from] rocksdb::Error),
    #[error("{what} failed: {source}")]
    Task {
        what: &'static str,
        source: tokio::task::JoinError,
    },
    #[error("prefill failed after {entries} entries: {why}")]
    Prefill { entries: u64, why: String },
    /// The huge suite's restart did not serve, or did not de-duplicate exactly.
    #[error("restart: {0}")]
    Restart(String),
    /// A run the plan cannot make with what the log holds.
    #[error("{0}")]
    Plan(String),
}

pub(crate) type Res<T> = Result<T, LoadError>;
