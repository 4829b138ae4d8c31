//! Signed tree heads for tlog: the text formats a log uses to commit to its Merkle tree, and their Ed25519
//! signatures.
//!
//! Scope: parsing, formatting, signing and verifying text. No I/O, no clock and no randomness: keys come from a
//! caller-supplied 32-byte seed and timestamps are parameters. The Merkle tree itself lives in `tlog-core`.
//!
//! - [`Checkpoint`]: the note text of a C2SP `tlog-checkpoint` v1.0.0 ("Note text"): origin, tree size, base64
//!   root hash, optional extension lines.
//! - [`Note`], [`SignerKey`], [`VerifierKey`]: C2SP `signed-note` v1.0.0 — the note format ("Format"), Ed25519
//!   signatures of type `0x01` and key IDs ("Signatures"), verifier keys ("Verifier keys"). Private keys use the
//!   `PRIVATE+KEY+<name>+<key ID>+<base64>` text of Go's `golang.org/x/mod/sumdb/note`.
//! - [`cosign`], [`verify_cosignature`]: C2SP `tlog-cosignature` v1 Ed25519 cosignatures (key type `0x04`,
//!   message `cosignature/v1\ntime <t>\n<body>`, blob `key ID || u64 timestamp || signature`).
//! - [`witness`]: C2SP `tlog-witness` `add-checkpoint` bodies, witness cosigner keys ([`CosignerKey`]) and a
//!   client's quorum policy ([`verify_witnessed`]).
//! - [`sign_checkpoint`], [`verify_checkpoint`]: the log's signed tree head. Every checkpoint the log publishes
//!   says when it was signed, yet stays a plain C2SP checkpoint: the log signs it with an ordinary `0x01`
//!   signature *and* adds a timestamped `0x04` cosignature made with the same key pair and key name (the origin).
//!   The two key IDs differ by the type byte, so a standard verifier that knows only the `0x01` verifier key
//!   ignores the cosignature line as an unknown key, as signed-note requires.
//!
//! Because one Ed25519 key signs both kinds of message, [`SignerKey::sign_note`] refuses text that begins with
//! the cosignature header: otherwise a signed note could be replayed as a cosignature. The reverse replay yields
//! a note whose second line is `time <t>`, which is not a checkpoint and which [`verify_checkpoint`] rejects.
//!
//! Parsing is strict and never panics; every failure is an [`Error`] variant.

mod checkpoint;
mod cosignature;
mod error;
mod keys;
mod note;
pub mod witness;

pub use checkpoint::Checkpoint;
pub use cosignature::{
    MAX_TIMESTAMP, SignedCheckpoint, cosign, cosignature_key_id, sign_checkpoint,
    verify_checkpoint, verify_cosignature,
};
pub use error::Error;
pub use keys::{KeyId, SignerKey, VerifierKey};
pub use note::{MAX_SIGNATURES, Note, NoteSignature};
pub use witness::{CosignerKey, Witnessed, verify_witnessed};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// Decodes standard, padded base64 (RFC 4648 §4), the only encoding the C2SP specs use. The engine rejects
/// missing padding and non-zero trailing bits, so each byte string has exactly one accepted text form — a
/// changed character can never decode to the same bytes.
fn decode_base64(text: &str) -> Result<Vec<u8>, Error> {
    STANDARD.decode(text).map_err(|_| Error::BadBase64)
}

fn encode_base64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}
