//! `tlogd`, the tlog log server: a sequencer that batches submitted entries into an RFC 9162 Merkle tree in a
//! [`tlog_storage::LogStore`], signs C2SP checkpoints (with a C2SP tlog-cosignature timestamp), and a tonic gRPC
//! service (`tlog.v1.Log`, see `proto/tlog/v1/log.proto`) that serves receipts, checkpoints, proofs and entries.
//!
//! State has one owner: the [`sequencer`] task alone holds the frontier and the signing key; gRPC handlers
//! validate, send a command, await the reply and map errors to a `tonic::Status`.

pub mod clock;
pub mod datadir;
pub mod error;
pub mod log;
pub mod reader;
pub mod scrub;
pub mod sequencer;

pub use error::{Error, Result};
#[cfg(feature = "rocksdb")]
pub mod server;
pub mod service;
