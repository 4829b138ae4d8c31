//! Timestamped Ed25519 cosignatures (C2SP tlog-cosignature v1, "Format" and "Ed25519 signed message") and the
//! log's signed tree head built from them.

use ed25519_dalek::VerifyingKey;

use crate::checkpoint::Checkpoint;
use crate::error::Error;
use crate::keys::{
    COSIGNATURE_HEADER, COSIGNATURE_TYPE, KeyId, SignerKey, VerifierKey, verify_ed25519,
};
use crate::note::{Note, signature_line};

/// The largest timestamp a cosignature may carry: "It MUST NOT exceed 2^63 - 1".
pub const MAX_TIMESTAMP: u64 = i64::MAX as u64;

/// Bytes after the key ID of an Ed25519 cosignature: u64 timestamp then the 64-byte signature.
const COSIGNATURE_LEN: usize = 8 + 64;

/// The log's signed tree head: the checkpoint, when it was signed, and the exact note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// The checkpoint the note signs.
    pub checkpoint: Checkpoint,
    /// POSIX seconds at which the log signed it (from its cosignature line).
    pub timestamp: u64,
    /// The signed note, byte for byte as published.
    pub note: String,
}

/// The key ID of Ed25519 cosignatures: `SHA-256(name || 0x0A || 0x04 || public key)[:4]`.
pub fn cosignature_key_id(name: &str, public_key: &[u8; 32]) -> KeyId {
    KeyId::compute(name, COSIGNATURE_TYPE, public_key)
}

fn check_timestamp(timestamp: u64) -> Result<(), Error> {
    if timestamp > MAX_TIMESTAMP {
        Err(Error::BadTimestamp(timestamp))
    } else {
        Ok(())
    }
}

/// `cosignature/v1\ntime <t>\n` then the whole checkpoint body; the decimal has no leading zeros by construction.
fn cosigned_message(body: &str, timestamp: u64) -> String {
    format!("{COSIGNATURE_HEADER}time {timestamp}\n{body}")
}

/// The signature line, assuming a valid body and timestamp.
fn cosignature_line(key: &SignerKey, body: &str, timestamp: u64) -> String {
    let signature = key.sign(cosigned_message(body, timestamp).as_bytes());
    let mut payload = Vec::with_capacity(COSIGNATURE_LEN);
    payload.extend_from_slice(&timestamp.to_be_bytes());
    payload.extend_from_slice(&signature);
    signature_line(
        key.name(),
        cosignature_key_id(key.name(), &key.public_key()),
        &payload,
    )
}

/// Cosigns a checkpoint body as a witness would: returns the signature line (`— <name> <base64>\n`) to append
/// to the checkpoint note.
///
/// `body` must be a valid checkpoint body and `timestamp` (POSIX seconds) at most [`MAX_TIMESTAMP`].
pub fn cosign(key: &SignerKey, body: &str, timestamp: u64) -> Result<String, Error> {
    check_timestamp(timestamp)?;
    Checkpoint::parse(body)?;
    Ok(cosignature_line(key, body, timestamp))
}

/// Checks the bytes after the key ID of an Ed25519 cosignature and returns its timestamp.
fn open_cosignature(
    key: &VerifyingKey,
    name: &str,
    key_id: KeyId,
    body: &str,
    blob: &[u8],
) -> Result<u64, Error> {
    let (timestamp, signature) = blob
        .split_first_chunk::<8>()
        .filter(|_| blob.len() == COSIGNATURE_LEN)
        .ok_or(Error::BadSignatureLength(blob.len()))?;
    let timestamp = u64::from_be_bytes(*timestamp);
    check_timestamp(timestamp)?;
    if !verify_ed25519(key, cosigned_message(body, timestamp).as_bytes(), signature) {
        return Err(Error::InvalidSignature {
            name: name.to_owned(),
            key_id,
        });
    }
    Ok(timestamp)
}

/// Verifies an Ed25519 cosignature of `body` by the cosigner (`name`, `public_key`) and returns its timestamp.
///
/// `line_blob` is the whole base64-decoded signature of the line: key ID (4 bytes) || timestamp (8) ||
/// signature (64). The key ID must be [`cosignature_key_id`] of `name` and `public_key`.
pub fn verify_cosignature(
    public_key: &[u8; 32],
    name: &str,
    body: &str,
    line_blob: &[u8],
) -> Result<u64, Error> {
    let (key_id, blob) = line_blob
        .split_first_chunk::<4>()
        .ok_or(Error::BadSignatureLength(0))?;
    let key_id = KeyId(*key_id);
    if key_id != cosignature_key_id(name, public_key) {
        return Err(Error::KeyIdMismatch);
    }
    let key = VerifyingKey::from_bytes(public_key)
        .map_err(|_| Error::BadKey("not a valid Ed25519 public key"))?;
    open_cosignature(&key, name, key_id, body, blob)
}

/// Signs `checkpoint` as the log's tree head at `timestamp_unix_secs`: the checkpoint body, a `0x01` note
/// signature and a `0x04` timestamped cosignature, both by `key`, whose name must be the checkpoint origin.
pub fn sign_checkpoint(
    key: &SignerKey,
    checkpoint: &Checkpoint,
    timestamp_unix_secs: u64,
) -> Result<SignedCheckpoint, Error> {
    checkpoint.validate()?;
    if checkpoint.origin != key.name() {
        return Err(Error::OriginMismatch {
            origin: checkpoint.origin.clone(),
            key_name: key.name().to_owned(),
        });
    }
    check_timestamp(timestamp_unix_secs)?;
    let body = checkpoint.to_body();
    let mut note = key.sign_note(&body)?;
    note.push_str(&cosignature_line(key, &body, timestamp_unix_secs));
    Ok(SignedCheckpoint {
        checkpoint: checkpoint.clone(),
        timestamp: timestamp_unix_secs,
        note,
    })
}

/// Verifies a log's signed tree head.
///
/// The note must parse, carry a valid `0x01` signature by `log_key` (with every line of that key valid, and
/// other keys' lines ignored), be a checkpoint whose origin is the key name, and carry exactly one valid `0x04`
/// timestamped cosignature by the same public key and name, whose timestamp is returned.
pub fn verify_checkpoint(log_key: &VerifierKey, note: &[u8]) -> Result<SignedCheckpoint, Error> {
    let parsed = Note::parse(note)?;
    parsed.verify(core::slice::from_ref(log_key))?;
    let checkpoint = Checkpoint::parse(&parsed.text)?;
    if checkpoint.origin != log_key.name() {
        return Err(Error::OriginMismatch {
            origin: checkpoint.origin,
            key_name: log_key.name().to_owned(),
        });
    }
    // signed-note: a signature MUST carry the key ID of its own type, so the 0x04 ID is computed here rather
    // than reusing the 0x01 one from the verifier key.
    let cosig_id = cosignature_key_id(log_key.name(), &log_key.public_key());
    let mut timestamps = parsed
        .signatures
        .iter()
        .filter(|sig| sig.name == log_key.name() && sig.key_id == cosig_id)
        .map(|sig| {
            open_cosignature(
                log_key.verifying_key(),
                &sig.name,
                cosig_id,
                &parsed.text,
                &sig.blob,
            )
        });
    let timestamp = timestamps.next().ok_or(Error::MissingTimestamp)??;
    if timestamps.next().is_some() {
        return Err(Error::DuplicateTimestamp);
    }
    let note = String::from_utf8(note.to_vec()).map_err(|_| Error::BadUtf8)?;
    Ok(SignedCheckpoint {
        checkpoint,
        timestamp,
        note,
    })
}

#[cfg(test)]
mod tests {
    use tlog_core::{Hash, TreeSize};

    use super::*;
    use crate::decode_base64;

    const ORIGIN: &str = "example.com/log";

    fn log_key() -> SignerKey {
        SignerKey::from_seed(ORIGIN, [42; 32]).unwrap()
    }

    fn checkpoint() -> Checkpoint {
        Checkpoint::new(ORIGIN, TreeSize(1234), Hash([9; 32])).unwrap()
    }

    #[test]
    fn sign_then_verify() {
        let key = log_key();
        let signed = sign_checkpoint(&key, &checkpoint(), 1_700_000_000).unwrap();
        assert!(
            signed
                .note
                .starts_with(&format!("{}\n\u{2014} {ORIGIN} ", checkpoint().to_body()))
        );
        assert_eq!(
            signed
                .note
                .lines()
                .filter(|l| l.starts_with('\u{2014}'))
                .count(),
            2
        );
        assert_eq!(
            verify_checkpoint(&key.verifier(), signed.note.as_bytes()).unwrap(),
            signed
        );
    }

    #[test]
    fn cosignature_line_layout() {
        let key = log_key();
        let body = checkpoint().to_body();
        let line = cosign(&key, &body, 1679315147).unwrap();
        let note = Note::parse(format!("{body}\n{line}").as_bytes()).unwrap();
        let sig = &note.signatures[0];
        assert_eq!(sig.name, ORIGIN);
        assert_eq!(sig.key_id, cosignature_key_id(ORIGIN, &key.public_key()));
        assert_ne!(sig.key_id, key.key_id());
        assert_eq!(sig.blob.len(), COSIGNATURE_LEN);
        assert_eq!(sig.blob[..8], 1679315147u64.to_be_bytes());
        let blob = decode_base64(line.trim_end().rsplit(' ').next().unwrap()).unwrap();
        assert_eq!(
            verify_cosignature(&key.public_key(), ORIGIN, &body, &blob),
            Ok(1679315147)
        );
    }

    #[test]
    fn cosignature_rejects() {
        let key = log_key();
        let body = checkpoint().to_body();
        let line = cosign(&key, &body, 5).unwrap();
        let blob = decode_base64(line.trim_end().rsplit(' ').next().unwrap()).unwrap();
        let pk = key.public_key();
        let id = cosignature_key_id(ORIGIN, &pk);
        let invalid = Err(Error::InvalidSignature {
            name: ORIGIN.into(),
            key_id: id,
        });
        assert_eq!(
            verify_cosignature(
                &pk,
                ORIGIN,
                &checkpoint().to_body().replace("1234", "1235"),
                &blob
            ),
            invalid
        );
        let mut later = blob.clone();
        later[11] = 6;
        assert_eq!(verify_cosignature(&pk, ORIGIN, &body, &later), invalid);
        assert_eq!(
            verify_cosignature(&pk, "other.example", &body, &blob),
            Err(Error::KeyIdMismatch)
        );
        assert_eq!(
            verify_cosignature(&pk, ORIGIN, &body, &blob[..75]),
            Err(Error::BadSignatureLength(71))
        );
        assert_eq!(
            verify_cosignature(&pk, ORIGIN, &body, &blob[..3]),
            Err(Error::BadSignatureLength(0))
        );
        let mut huge = blob.clone();
        huge[4] = 0x80;
        assert_eq!(
            verify_cosignature(&pk, ORIGIN, &body, &huge),
            Err(Error::BadTimestamp(0x8000_0000_0000_0005))
        );
        assert_eq!(
            cosign(&key, &body, MAX_TIMESTAMP + 1),
            Err(Error::BadTimestamp(MAX_TIMESTAMP + 1))
        );
        assert!(cosign(&key, &body, MAX_TIMESTAMP).is_ok());
        assert!(matches!(
            cosign(&key, "not a checkpoint\n", 5),
            Err(Error::BadCheckpoint(_))
        ));
    }

    #[test]
    fn sign_checkpoint_rejects() {
        let key = log_key();
        let other = Checkpoint::new("other.example", TreeSize(1), Hash([0; 32])).unwrap();
        assert_eq!(
            sign_checkpoint(&key, &other, 1),
            Err(Error::OriginMismatch {
                origin: "other.example".into(),
                key_name: ORIGIN.into()
            })
        );
        assert_eq!(
            sign_checkpoint(&key, &checkpoint(), u64::MAX),
            Err(Error::BadTimestamp(u64::MAX))
        );
        let mut bad = checkpoint();
        bad.extensions.push(String::new());
        assert!(matches!(
            sign_checkpoint(&key, &bad, 1),
            Err(Error::BadCheckpoint(_))
        ));
        let reserved = SignerKey::from_seed("cosignature/v1", [1; 32]).unwrap();
        let c = Checkpoint::new("cosignature/v1", TreeSize(1), Hash([0; 32])).unwrap();
        assert_eq!(
            sign_checkpoint(&reserved, &c, 1),
            Err(Error::ReservedPrefix)
        );
    }

    #[test]
    fn verify_checkpoint_needs_timestamp_origin_and_uniqueness() {
        let key = log_key();
        let body = checkpoint().to_body();
        let plain = key.sign_note(&body).unwrap();
        assert_eq!(
            verify_checkpoint(&key.verifier(), plain.as_bytes()),
            Err(Error::MissingTimestamp)
        );

        let twice = format!(
            "{plain}{}{}",
            cosign(&key, &body, 1).unwrap(),
            cosign(&key, &body, 2).unwrap()
        );
        assert_eq!(
            verify_checkpoint(&key.verifier(), twice.as_bytes()),
            Err(Error::DuplicateTimestamp)
        );

        let other_body = "other.example\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
        let other = SignerKey::from_seed("other.example", [42; 32]).unwrap();
        let mut note = key.sign_note(other_body).unwrap();
        note.push_str(&cosign(&key, other_body, 1).unwrap());
        assert_eq!(
            verify_checkpoint(&key.verifier(), note.as_bytes()),
            Err(Error::OriginMismatch {
                origin: "other.example".into(),
                key_name: ORIGIN.into()
            })
        );
        // The 0x01 signature must come from the log key itself, whatever other signatures say.
        let foreign = sign_checkpoint(&other, &Checkpoint::parse(other_body).unwrap(), 1).unwrap();
        assert_eq!(
            verify_checkpoint(&key.verifier(), foreign.note.as_bytes()),
            Err(Error::NoKnownSignature)
        );

        // A cosignature by another public key under the log's name is an unknown key: ignored.
        let impostor = SignerKey::from_seed(ORIGIN, [7; 32]).unwrap();
        let with_impostor = format!("{plain}{}", cosign(&impostor, &body, 9).unwrap());
        assert_eq!(
            verify_checkpoint(&key.verifier(), with_impostor.as_bytes()),
            Err(Error::MissingTimestamp)
        );
        let fine = format!("{with_impostor}{}", cosign(&key, &body, 10).unwrap());
        assert_eq!(
            verify_checkpoint(&key.verifier(), fine.as_bytes())
                .unwrap()
                .timestamp,
            10
        );
    }
}
