//! The crate's single error type.

use crate::keys::KeyId;
use crate::note::MAX_SIGNATURES;

/// Why a note, checkpoint, key or signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The note is not valid UTF-8.
    #[error("note is not valid UTF-8")]
    BadUtf8,
    /// The text contains an ASCII control character other than newline.
    #[error("text contains an ASCII control character other than newline")]
    ControlCharacter,
    /// No blank line separates the note text from its signature lines.
    #[error("note has no blank line before its signature lines")]
    MissingBlankLine,
    /// The note text, or the note itself, does not end with a newline.
    #[error("note text or signature block does not end with a newline")]
    MissingFinalNewline,
    /// The note has a blank line but no signature line after it.
    #[error("note has no signature lines")]
    NoSignatures,
    /// A signature line is not `— <key name> <base64>`.
    #[error("signature line is not of the form `— <key name> <base64>`")]
    BadSignatureLine,
    /// A key name is empty or contains a Unicode space, `+` or an ASCII control character.
    #[error("key name is empty or contains a space, `+` or a control character")]
    BadKeyName,
    /// Text that must be standard padded base64 is not, or not in its canonical form.
    #[error("invalid or non-canonical base64")]
    BadBase64,
    /// A signature (the bytes after the 4-byte key ID) has a length its type does not allow.
    #[error("signature of {0} bytes after the key ID has the wrong length")]
    BadSignatureLength(usize),
    /// The note has more signature lines than [`MAX_SIGNATURES`].
    #[error("note has more than {MAX_SIGNATURES} signature lines")]
    TooManySignatures,
    /// No signature line comes from any of the known keys.
    #[error("no signature from a known key")]
    NoKnownSignature,
    /// A signature line from a known key does not verify; the whole note is rejected.
    #[error("invalid signature for key {name}+{key_id}")]
    InvalidSignature {
        /// Key name of the failing signature line.
        name: String,
        /// Key ID of the failing signature line.
        key_id: KeyId,
    },
    /// Two different verifier keys share a key name and key ID, so a signature cannot be attributed.
    #[error("ambiguous verifier keys for {name}+{key_id}")]
    AmbiguousKey {
        /// The shared key name.
        name: String,
        /// The shared key ID.
        key_id: KeyId,
    },
    /// The text is not a well-formed checkpoint body; the reason says which rule it breaks.
    #[error("malformed checkpoint: {0}")]
    BadCheckpoint(&'static str),
    /// The checkpoint origin is not the log's key name.
    #[error("checkpoint origin {origin:?} does not match key name {key_name:?}")]
    OriginMismatch {
        /// Origin line of the checkpoint.
        origin: String,
        /// Name of the log key.
        key_name: String,
    },
    /// The checkpoint carries no timestamped cosignature from the log key.
    #[error("no timestamped cosignature from the log key")]
    MissingTimestamp,
    /// The checkpoint carries more than one timestamped cosignature from the log key, so its time is ambiguous.
    #[error("more than one timestamped cosignature from the log key")]
    DuplicateTimestamp,
    /// A cosignature timestamp exceeds 2^63 - 1, which tlog-cosignature forbids.
    #[error("timestamp {0} exceeds 2^63 - 1")]
    BadTimestamp(u64),
    /// A private or verifier key string is malformed; the reason says how.
    #[error("malformed key: {0}")]
    BadKey(&'static str),
    /// The key ID written in a key string is not the one computed from its name and public key.
    #[error("key ID does not match the key name and public key")]
    KeyIdMismatch,
    /// The key uses a signature type other than Ed25519 (`0x01`).
    #[error("unsupported signature type {0:#04x}")]
    UnsupportedKeyType(u8),
    /// Note text beginning with `cosignature/v1` is reserved: the same key signs cosignatures.
    #[error("note text must not begin with the cosignature header")]
    ReservedPrefix,
    /// A tlog-witness request or response body breaks the wire format; the reason says how.
    #[error("malformed witness message: {0}")]
    BadWitnessRequest(&'static str),
    /// Fewer known witnesses validly cosigned the checkpoint than the policy requires.
    #[error("{valid} valid witness cosignatures, {quorum} required; missing: {}", missing.join(", "))]
    NoQuorum {
        /// Cosignatures required.
        quorum: usize,
        /// Distinct known witnesses whose cosignature verified.
        valid: usize,
        /// Known witnesses without a valid cosignature.
        missing: Vec<String>,
    },
}
