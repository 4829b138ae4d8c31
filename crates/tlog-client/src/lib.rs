//! A verifying client for tlog, a transparency log: everything a log server says is checked before it is
//! returned, and the verifier's view of the log can only move forward along one append-only history.
//!
//! Scope: verification, and the gRPC client of `tlog.v1.Log` behind the `grpc` feature. The Merkle tree rules
//! come from `tlog-core` (RFC 9162 §2.1), the note formats from `tlog-checkpoint` (C2SP signed-note,
//! tlog-checkpoint, tlog-cosignature); this crate composes them:
//!
//! - [`Receipt`] and [`verify_receipt`]: offline proof that an entry is in the log: the checkpoint's signature
//!   and timestamped cosignature, the entry's leaf hash, and the RFC 9162 §2.1.3.2 inclusion proof against the
//!   checkpoint root. Receipts serialise to JSON, and convert from the `tlog.v1.Receipt` message.
//! - [`TrustedLog`]: the verifier state (log key and latest trusted checkpoint) with a crash-safe state file.
//!   [`TrustedLog::advance`] is the one way trust moves: to a new checkpoint only with an RFC 9162 §2.1.4.2
//!   consistency proof, detecting forks (two roots for one size, which C2SP tlog-checkpoint "Signatures"
//!   forbids a log to sign) and refusing rollbacks. The client below fetches the proof and calls it.
//! - [`evidence`]: evidence bundles, one file proving many events with one multiproof, verified offline
//!   ([`verify_evidence`]); `LogClient::multi_inclusion` fetches and verifies a multiproof.
//! - [`verify_entries`]: a monitor's check that downloaded entries rebuild a checkpoint's root.
//! - [`WitnessPolicy`]: the witnesses a client knows and the quorum of their cosignatures (C2SP tlog-witness,
//!   tlog-cosignature) a checkpoint needs to be trusted; used by [`TrustedLog`], `LogClient`, [`TileClient`] and
//!   [`verify_receipt_with`].
//! - [`TileClient`] over a [`TileSource`] ([`tiles`]): the same verification from a C2SP tlog-tiles log's static
//!   checkpoint, hash tiles and entry bundles, with proofs and roots built locally (`http::HttpTiles` reads them
//!   over HTTP with the `http` feature; [`MemoryTiles`] serves them from memory).
//! - `LogClient` (feature `grpc`): the async gRPC client (tonic), optionally sending a bearer token, whose
//!   every answer is verified as above: submissions (single, batch, and the `SubmitStream` pipeline),
//!   checkpoints (latest, by exact size, or watched as a stream with `CheckpointWatch`), inclusion and
//!   consistency proofs, and a monitor's download-and-rebuild audit of the entries
//!   (`LogClient::audit_entries`). When a consistency proof fails and the log now signs a different root for
//!   the old size, the error is the [`ClientError::Fork`] that pair of signatures proves.
//!
//! Features:
//! - `grpc` (default): `LogClient` and its companions, and the transport variants of [`ClientError`]. Without
//!   it (`default-features = false`) the crate verifies receipts, proofs and checkpoints and keeps the trusted
//!   state with no tonic, tokio or hyper in its dependency tree; `tests/no_transport.rs` checks that with
//!   `cargo tree`.
//! - `http` (default): `http::HttpTiles` and the shared reqwest client. The tile client itself needs no runtime
//!   and stays available without it.
//!
//! Every failure is a precise [`ClientError`] variant; nothing panics on what a server or a file contains.

mod checkpoint;
#[cfg(feature = "grpc")]
mod client;
mod error;
pub mod evidence;
#[cfg(feature = "http")]
pub mod http;
mod policy;
mod receipt;
pub mod tiles;
mod trusted;

#[cfg(test)]
mod tests;

pub use checkpoint::verify_entries;
#[cfg(feature = "grpc")]
pub use client::{
    BearerToken, CheckpointWatch, EntryPages, LogClient, PrivatePayload, VerifiedConsistency,
    VerifiedMultiProof,
};
pub use error::ClientError;
pub use evidence::{EvidenceBundle, VerifiedEvidence, verify_evidence, verify_evidence_bytes};
pub use policy::WitnessPolicy;
pub use receipt::{
    Receipt, ReceiptFile, ReceiptUpgrade, VerifiedReceipt, batch_receipts, verify_receipt,
    verify_receipt_file, verify_receipt_with,
};
pub use tiles::{MemoryTiles, TileClient, TileSource};
pub use trusted::TrustedLog;
