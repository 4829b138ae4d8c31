//! `tlogd`, the tlog log server: a sequencer that batches submitted entries into an RFC 9162 Merkle tree in a
//! [`tlog_storage::LogStore`], signs C2SP checkpoints (with a C2SP tlog-cosignature timestamp), and a tonic gRPC
//! service (`tlog.v1.Log`, see `proto/tlog/v1/log.proto`) that serves receipts, checkpoints, proofs and entries,
//! beside C2SP `tlog-tiles` over HTTP ([`http`]), with JSON and Kubernetes audit ingestion ([`ingest`]) and
//! Prometheus figures ([`metrics`]) on the same HTTP listener.
//!
//! [`log::open`] is the one way to open a log: it recovers the store and returns the appender, the reader and the
//! shutdown. State has one owner: the sequencer thread alone holds the frontier and the signing key; gRPC handlers
//! validate ([`validate`]), hand the work to the appender or the reader, and map errors to a `tonic::Status`.

pub mod archiving;
mod clock;
pub mod datadir;
pub mod error;
pub mod explorer;
pub mod http;
// The key file and the scrub serve only `server` (a data folder on RocksDB).
pub mod ingest;
#[cfg(feature = "rocksdb")]
mod keyfile;
pub mod log;
pub mod metrics;
pub mod private;
mod read_pool;
mod reader;
#[cfg(feature = "rocksdb")]
pub mod replica;
#[cfg(feature = "rocksdb")]
mod scrub;
mod sequencer;
#[cfg(feature = "rocksdb")]
pub mod server;
mod service;
#[cfg(all(feature = "test-util", feature = "rocksdb"))]
pub mod testing;
pub mod validate;
#[cfg(feature = "witnessing")]
pub mod witnessing;

#[cfg(feature = "test-util")]
pub use clock::ManualClock;
pub use clock::{Clock, SystemClock};
pub use error::{Error, Result};
#[cfg(feature = "rocksdb")]
pub use scrub::SCRUB_SERVICE;
pub use service::{LogService, ServiceLimits, status};
