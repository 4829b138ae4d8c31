//! Private entries, format version 1: the log's leaf is a commitment to a payload, never the payload.
//!
//! A private event is published as an entry that names a subject and commits to a random salt and the payload:
//!
//! ```text
//! entry      = "tlog-private-v1" 0x00 || subject_len (1 byte) || subject || commitment (32 bytes)
//! commitment = SHA-256("tlog-private-v1 commitment" 0x00 || subject_len || subject || salt (32 bytes) || payload)
//! ```
//!
//! - The subject is an opaque identifier chosen by the operator (1–255 bytes of visible ASCII), public like the
//!   rest of the entry: use a pseudonymous id (a UUID), not a name or an e-mail address. It lets erasure find every
//!   payload of one person, and lets an auditor see that an erasure entry and a private entry are about the same
//!   subject without seeing the payload.
//! - The salt is 32 bytes from a CSPRNG, fresh for every entry, so that a guessable payload cannot be confirmed from
//!   the commitment; the commitment binds the subject too, so an opening cannot be moved to another subject.
//! - Opening an entry means showing (salt, payload): [`check_opening`] recomputes the commitment. Once the salt and
//!   payload are destroyed (crypto-shredding), the entry, its leaf hash and every proof stay as they were.
//!
//! The prefix is reserved: a log must refuse a public submission whose entry starts with [`PRIVATE_ENTRY_PREFIX`],
//! or a public entry could pose as a commitment. The version is in the prefix; a new format gets a new prefix.

use alloc::vec::Vec;
use core::fmt;

use sha2::{Digest, Sha256};

/// The first bytes of every version-1 private entry.
pub const PRIVATE_ENTRY_PREFIX: &[u8] = b"tlog-private-v1\0";
/// Domain separation of the commitment hash from every other SHA-256 in the log.
const COMMITMENT_DOMAIN: &[u8] = b"tlog-private-v1 commitment\0";
/// Length of the random salt of each private entry.
pub const SALT_LEN: usize = 32;
/// Length of the commitment.
pub const COMMITMENT_LEN: usize = 32;
/// Longest subject id.
pub const MAX_SUBJECT_LEN: usize = 255;

/// A parsed version-1 private entry.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PrivateEntry<'a> {
    pub subject: &'a [u8],
    pub commitment: [u8; COMMITMENT_LEN],
}

/// Why bytes are not a valid private entry or opening.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum PrivateError {
    /// The subject id is empty, longer than [`MAX_SUBJECT_LEN`], or holds bytes other than visible ASCII.
    BadSubject,
    /// The entry starts with the private prefix but its length does not match its subject length.
    Malformed,
    /// The salt is not [`SALT_LEN`] bytes.
    BadSaltLength { actual: usize },
    /// The salt and payload do not open the entry's commitment.
    CommitmentMismatch,
}

impl fmt::Display for PrivateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrivateError::BadSubject => write!(
                f,
                "a subject id is 1 to {MAX_SUBJECT_LEN} bytes of visible ASCII"
            ),
            PrivateError::Malformed => write!(
                f,
                "the entry starts with the private-entry prefix but is not a private entry"
            ),
            PrivateError::BadSaltLength { actual } => {
                write!(f, "a salt is {SALT_LEN} bytes, not {actual}")
            }
            PrivateError::CommitmentMismatch => write!(
                f,
                "the payload and salt do not match the entry's commitment"
            ),
        }
    }
}

impl core::error::Error for PrivateError {}

/// Checks a subject id: 1–255 bytes of visible ASCII (0x21–0x7e).
pub fn check_subject(subject: &[u8]) -> Result<(), PrivateError> {
    if subject.is_empty()
        || subject.len() > MAX_SUBJECT_LEN
        || !subject.iter().all(|b| b.is_ascii_graphic())
    {
        return Err(PrivateError::BadSubject);
    }
    Ok(())
}

/// The commitment to `payload` under `salt` for `subject`.
pub fn commitment(
    subject: &[u8],
    salt: &[u8; SALT_LEN],
    payload: &[u8],
) -> Result<[u8; COMMITMENT_LEN], PrivateError> {
    check_subject(subject)?;
    let mut h = Sha256::new();
    h.update(COMMITMENT_DOMAIN);
    h.update([subject.len() as u8]);
    h.update(subject);
    h.update(salt);
    h.update(payload);
    Ok(h.finalize().into())
}

/// The log entry committing to `payload` under `salt` for `subject`.
pub fn private_entry(
    subject: &[u8],
    salt: &[u8; SALT_LEN],
    payload: &[u8],
) -> Result<Vec<u8>, PrivateError> {
    let commitment = commitment(subject, salt, payload)?;
    let mut entry =
        Vec::with_capacity(PRIVATE_ENTRY_PREFIX.len() + 1 + subject.len() + COMMITMENT_LEN);
    entry.extend_from_slice(PRIVATE_ENTRY_PREFIX);
    entry.push(subject.len() as u8);
    entry.extend_from_slice(subject);
    entry.extend_from_slice(&commitment);
    Ok(entry)
}

/// Whether `entry` claims to be a private entry (starts with the reserved prefix).
pub fn is_private(entry: &[u8]) -> bool {
    entry.starts_with(PRIVATE_ENTRY_PREFIX)
}

/// Parses a private entry: `Ok(None)` for an entry without the prefix (a public entry), an error for one that has the
/// prefix but not the format.
pub fn parse_private_entry(entry: &[u8]) -> Result<Option<PrivateEntry<'_>>, PrivateError> {
    let Some(rest) = entry.strip_prefix(PRIVATE_ENTRY_PREFIX) else {
        return Ok(None);
    };
    let (&len, rest) = rest.split_first().ok_or(PrivateError::Malformed)?;
    let len = usize::from(len);
    if rest.len() != len + COMMITMENT_LEN {
        return Err(PrivateError::Malformed);
    }
    let (subject, commitment) = rest.split_at(len);
    check_subject(subject)?;
    let mut c = [0u8; COMMITMENT_LEN];
    c.copy_from_slice(commitment);
    Ok(Some(PrivateEntry {
        subject,
        commitment: c,
    }))
}

/// Checks that `salt` and `payload` open the private `entry`; returns its subject.
pub fn check_opening<'a>(
    entry: &'a [u8],
    salt: &[u8],
    payload: &[u8],
) -> Result<&'a [u8], PrivateError> {
    let parsed = parse_private_entry(entry)?.ok_or(PrivateError::Malformed)?;
    let salt: &[u8; SALT_LEN] = salt
        .try_into()
        .map_err(|_| PrivateError::BadSaltLength { actual: salt.len() })?;
    // Not secret: both sides are public once an opening is shown, so a plain comparison is fine.
    if commitment(parsed.subject, salt, payload)? != parsed.commitment {
        return Err(PrivateError::CommitmentMismatch);
    }
    Ok(parsed.subject)
}

/// The first bytes of every version-1 erasure entry.
pub const ERASURE_ENTRY_PREFIX: &[u8] = b"tlog-erasure-v1\0";

/// The public entry a log appends when it erases `subject`'s payloads (crypto-shredding) at `erased_at` (Unix
/// seconds):
///
/// ```text
/// entry = "tlog-erasure-v1" 0x00 || subject_len (1 byte) || subject || erased_at (u64 big-endian)
/// ```
///
/// Like the private prefix, this one is reserved: only the log writes erasure entries.
pub fn erasure_entry(subject: &[u8], erased_at: u64) -> Result<Vec<u8>, PrivateError> {
    check_subject(subject)?;
    let mut entry = Vec::with_capacity(ERASURE_ENTRY_PREFIX.len() + 1 + subject.len() + 8);
    entry.extend_from_slice(ERASURE_ENTRY_PREFIX);
    entry.push(subject.len() as u8);
    entry.extend_from_slice(subject);
    entry.extend_from_slice(&erased_at.to_be_bytes());
    Ok(entry)
}

/// Parses an erasure entry into (subject, erased_at): `Ok(None)` for an entry without the prefix.
pub fn parse_erasure_entry(entry: &[u8]) -> Result<Option<(&[u8], u64)>, PrivateError> {
    let Some(rest) = entry.strip_prefix(ERASURE_ENTRY_PREFIX) else {
        return Ok(None);
    };
    let (&len, rest) = rest.split_first().ok_or(PrivateError::Malformed)?;
    let len = usize::from(len);
    if rest.len() != len + 8 {
        return Err(PrivateError::Malformed);
    }
    let (subject, at) = rest.split_at(len);
    check_subject(subject)?;
    let mut t = [0u8; 8];
    t.copy_from_slice(at);
    Ok(Some((subject, u64::from_be_bytes(t))))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SALT: [u8; SALT_LEN] = [7; SALT_LEN];

    #[test]
    fn an_entry_opens_with_its_salt_and_payload() {
        let entry = private_entry(b"subject-1", &SALT, b"alice read record 42").unwrap();
        assert_eq!(
            check_opening(&entry, &SALT, b"alice read record 42"),
            Ok(&b"subject-1"[..])
        );
    }

    #[test]
    fn another_payload_salt_or_subject_does_not_open_it() {
        let entry = private_entry(b"subject-1", &SALT, b"payload").unwrap();
        assert_eq!(
            check_opening(&entry, &SALT, b"payload!"),
            Err(PrivateError::CommitmentMismatch)
        );
        assert_eq!(
            check_opening(&entry, &[8; SALT_LEN], b"payload"),
            Err(PrivateError::CommitmentMismatch)
        );
        let other = private_entry(b"subject-2", &SALT, b"payload").unwrap();
        assert_ne!(entry[entry.len() - 32..], other[other.len() - 32..]);
    }

    #[test]
    fn the_entry_holds_no_payload_or_salt_bytes() {
        let payload = b"a payload long enough to be found if it were copied";
        let entry = private_entry(b"s", &SALT, payload).unwrap();
        assert!(!entry.windows(8).any(|w| payload.windows(8).any(|p| p == w)));
        assert!(!entry.windows(8).any(|w| w == &SALT[..8]));
    }

    #[test]
    fn the_format_is_fixed() {
        // Known answer: changing the format must change this test (and the format's version).
        let entry = private_entry(b"u-1", &[0; SALT_LEN], b"").unwrap();
        assert_eq!(&entry[..16], b"tlog-private-v1\0");
        assert_eq!(entry[16], 3);
        assert_eq!(&entry[17..20], b"u-1");
        let mut h = Sha256::new();
        h.update(b"tlog-private-v1 commitment\0\x03u-1");
        h.update([0u8; 32]);
        assert_eq!(entry[20..], h.finalize()[..]);
    }

    #[test]
    fn erasure_entries_round_trip() {
        let entry = erasure_entry(b"u-1", 1_700_000_000).unwrap();
        assert_eq!(&entry[..16], b"tlog-erasure-v1\0");
        assert_eq!(
            parse_erasure_entry(&entry),
            Ok(Some((&b"u-1"[..], 1_700_000_000)))
        );
        assert_eq!(parse_erasure_entry(b"public"), Ok(None));
        assert_eq!(
            parse_erasure_entry(&entry[..entry.len() - 1]),
            Err(PrivateError::Malformed)
        );
    }

    #[test]
    fn malformed_entries_are_told_apart_from_public_ones() {
        assert_eq!(parse_private_entry(b"public event"), Ok(None));
        assert_eq!(
            parse_private_entry(b"tlog-private-v1\0"),
            Err(PrivateError::Malformed)
        );
        let mut entry = private_entry(b"s", &SALT, b"p").unwrap();
        entry.push(0);
        assert_eq!(parse_private_entry(&entry), Err(PrivateError::Malformed));
        assert_eq!(
            private_entry(b"", &SALT, b"p"),
            Err(PrivateError::BadSubject)
        );
        assert_eq!(
            private_entry(b"has space", &SALT, b"p"),
            Err(PrivateError::BadSubject)
        );
        assert_eq!(
            private_entry(&[b'a'; 256], &SALT, b"p"),
            Err(PrivateError::BadSubject)
        );
        let entry = private_entry(b"s", &SALT, b"p").unwrap();
        assert_eq!(
            check_opening(&entry, &[0; 31], b"p"),
            Err(PrivateError::BadSaltLength { actual: 31 })
        );
    }
}
