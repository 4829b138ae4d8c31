//! The crate's single error type: one variant per check that can fail. The variants of the transport (and so the
//! tonic types) exist only with the `grpc` feature.

use std::path::PathBuf;

use tlog_core::tiles::TileError;
use tlog_core::{Hash, TreeSize, VerifyError};
use tlog_proto::ProtoError;

/// Why the client refused a log's answer, or could not get one.
///
/// Variants up to [`UnexpectedResponse`](Self::UnexpectedResponse) are verification failures: the log (or
/// whoever stands between it and you) produced something that does not check out. [`Fork`](Self::Fork) is
/// proof of log misbehaviour by itself: two validly signed checkpoints that cannot both be true.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The checkpoint note is malformed, not signed by the log key, lacks its timestamped cosignature, or names
    /// another origin.
    #[error("checkpoint rejected: {0}")]
    BadCheckpoint(#[source] tlog_checkpoint::Error),
    /// A value given beside a signed note (the unsigned convenience copies in `tlog.v1.SignedCheckpoint`, or
    /// the fields of a [`SignedCheckpoint`](tlog_checkpoint::SignedCheckpoint)) differs from what the note says.
    #[error("checkpoint {field} does not match its signed note")]
    CheckpointFieldMismatch {
        /// Which value differs.
        field: &'static str,
    },
    /// A checkpoint of size 0 whose root is not `SHA-256("")` (RFC 9162 §2.1.1).
    #[error("checkpoint of the empty tree has root {root}, not SHA-256(\"\")")]
    EmptyTreeRoot {
        /// The root the checkpoint claims.
        root: Hash,
    },
    /// The entry's RFC 9162 leaf hash is not the one the receipt proves.
    #[error("entry has leaf hash {entry_hash}, but the receipt is for {receipt_hash}")]
    LeafHashMismatch {
        /// `SHA-256(0x00 || entry)`.
        entry_hash: Hash,
        /// The leaf hash in the receipt.
        receipt_hash: Hash,
    },
    /// The inclusion proof does not lead from the leaf to the checkpoint root (RFC 9162 §2.1.3.2).
    #[error("inclusion proof invalid: {0}")]
    InclusionProofInvalid(#[source] VerifyError),
    /// The consistency proof does not link the two checkpoints (RFC 9162 §2.1.4.2).
    #[error("consistency proof invalid: {0}")]
    ConsistencyProofInvalid(#[source] VerifyError),
    /// The multiproof does not lead from the leaves to the checkpoint root, or the leaves' indices are not strictly
    /// increasing leaves of its tree.
    #[error("multiproof invalid: {0}")]
    MultiProofInvalid(#[source] VerifyError),
    /// A private entry's opening (payload and salt) does not open its commitment.
    #[error("event {index}: {source}")]
    BadOpening {
        /// The event's index in the log.
        index: u64,
        /// Why the opening fails.
        #[source]
        source: tlog_core::private::PrivateError,
    },
    /// An evidence bundle that is not well formed: not its JSON, another format or version, or not canonical.
    #[error("evidence bundle: {0}")]
    BadEvidence(#[source] crate::evidence::EvidenceError),
    /// Two validly signed checkpoints of the same size with different roots: the log forked.
    #[error("log fork at tree size {size}: trusted root {trusted_root}, new root {new_root}")]
    Fork {
        /// The tree size both checkpoints claim.
        size: TreeSize,
        /// The root already held.
        trusted_root: Hash,
        /// The conflicting root.
        new_root: Hash,
    },
    /// The checkpoint is for a smaller tree than the trusted one; trust only moves forward.
    #[error("checkpoint older than trusted: size {new_size} < trusted size {trusted_size}")]
    CheckpointOlderThanTrusted {
        /// Size of the trusted checkpoint.
        trusted_size: TreeSize,
        /// Size of the refused checkpoint.
        new_size: TreeSize,
    },
    /// The entries do not hash to the checkpoint root.
    #[error(
        "entries of the tree of size {size} hash to root {computed}, checkpoint says {expected}"
    )]
    EntriesRootMismatch {
        /// The tree size.
        size: TreeSize,
        /// Root computed from the entries.
        computed: Hash,
        /// Root in the checkpoint.
        expected: Hash,
    },
    /// There are not exactly as many entries as the tree sizes call for.
    #[error("expected {expected} entries, got {got}")]
    EntryCountMismatch {
        /// The number the sizes call for.
        expected: u64,
        /// The number given.
        got: u64,
    },
    /// A private payload and salt do not open the committed entry, or the entry is not a private entry.
    #[error("private payload rejected: {0}")]
    PrivateOpening(#[source] tlog_core::private::PrivateError),
    /// The server answered a different question than the one asked (another index, size or range).
    #[error("server answered {field} = {got}, expected {expected}")]
    UnexpectedResponse {
        /// The response field.
        field: &'static str,
        /// The value asked for.
        expected: u64,
        /// The value received.
        got: u64,
    },
    /// A message from the server breaks the wire contract (wrong hash length, missing field, bad UTF-8).
    #[error("malformed response: {0}")]
    BadField(#[from] ProtoError),
    /// Two log keys that must be the same differ.
    #[error("log key mismatch: expected {expected}, found {found}")]
    KeyMismatch {
        /// The key in use.
        expected: String,
        /// The other key.
        found: String,
    },
    /// A tile or entry bundle breaks the C2SP tlog-tiles format: a hash tile whose body is not 32 bytes per hash
    /// of its width, a bundle that does not hold exactly its width of length-prefixed entries.
    #[error("tile {path}: {source}")]
    BadTile {
        /// The tile's path below the log's prefix.
        path: String,
        /// What is wrong with its body.
        #[source]
        source: TileError,
    },
    /// An entry from a bundle does not hash to the leaf hash the (verified) level-0 tile holds for its index.
    #[error("entry {index} hashes to {entry_hash}, but the log's tree holds leaf hash {tile_hash}")]
    EntryMismatch {
        /// The entry's index in the log.
        index: u64,
        /// `SHA-256(0x00 || entry)`.
        entry_hash: Hash,
        /// The leaf hash in the level-0 tile.
        tile_hash: Hash,
    },
    /// A tile, bundle or checkpoint the source does not have (HTTP 404). Missing data proves nothing either way.
    #[error("{path}: not found")]
    TileNotFound {
        /// The path below the log's prefix.
        path: String,
    },
    /// A response body larger than the resource can be.
    #[error("{path}: response larger than {limit} bytes")]
    BodyTooLarge {
        /// The path below the log's prefix.
        path: String,
        /// The most the resource can hold.
        limit: usize,
    },
    /// A tile source other than HTTP (an object store archive) could not read a resource it may have.
    #[error("{path}: {detail}")]
    Source {
        /// The path below the log's prefix.
        path: String,
        /// What the source's transport said.
        detail: String,
    },
    /// A witness policy that cannot be applied (a quorum above the number of witnesses, a witness twice).
    #[error("witness policy: {0}")]
    BadPolicy(String),
    /// A proof asked for sizes or an index it cannot have (a leaf outside the tree, a shrinking tree).
    #[error("invalid proof request: {0}")]
    InvalidProofRequest(#[source] VerifyError),
    /// A request the API cannot express, e.g. tree size 0 where the wire uses 0 for "unset".
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
    /// A bearer token that cannot be sent as an HTTP header value.
    #[cfg(feature = "grpc")]
    #[error("bearer token is not a valid header value (visible ASCII only)")]
    InvalidToken,
    /// An endpoint that is not a URI.
    #[cfg(feature = "grpc")]
    #[error("invalid endpoint URI {0:?}")]
    InvalidEndpoint(String),
    /// The server answered with a gRPC error status.
    #[cfg(feature = "grpc")]
    #[error("rpc failed: {0}")]
    Rpc(Box<tonic::Status>),
    /// The connection failed.
    #[cfg(feature = "grpc")]
    #[error("transport error: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// An HTTP request failed (connection, status or body).
    #[cfg(feature = "http")]
    #[error("http: {0}")]
    Http(#[from] reqwest::Error),
    /// An HTTP server answered with a status other than success or 404.
    #[cfg(feature = "http")]
    #[error("{url}: HTTP status {status}")]
    HttpStatus {
        /// The URL fetched.
        url: String,
        /// The status code.
        status: u16,
    },
    /// A base URL that cannot be joined with tile paths.
    #[cfg(feature = "http")]
    #[error("invalid base URL {0:?}")]
    InvalidUrl(String),
    /// Reading or writing the state file failed.
    #[error("state file {path}: {source}")]
    StateFileIo {
        /// The state file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The state file is not the JSON [`TrustedLog`](crate::TrustedLog) writes.
    #[error("state file {path}: {source}")]
    StateFileFormat {
        /// The state file.
        path: PathBuf,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// The state file is for another log key, or its checkpoint no longer verifies.
    #[error("state file {path}: {source}")]
    StateFileInvalid {
        /// The state file.
        path: PathBuf,
        /// What is wrong with its content.
        #[source]
        source: Box<ClientError>,
    },
}

#[cfg(feature = "grpc")]
impl From<tonic::Status> for ClientError {
    fn from(status: tonic::Status) -> Self {
        // Boxed: a `Status` is large and would bloat every `Result` of the crate.
        ClientError::Rpc(Box::new(status))
    }
}
