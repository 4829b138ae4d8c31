//! Witnesses: their cosigner keys, the C2SP `tlog-witness` wire format of `add-checkpoint`, and a client's
//! quorum policy over a checkpoint's cosignatures.
//!
//! - [`CosignerKey`]: a witness's verifier key, `<name>+<key ID>+base64(0x04 || public key)` (tlog-cosignature
//!   "Format"), able to check the witness's timestamped cosignatures.
//! - [`AddCheckpoint`]: the request body of `POST <prefix>/add-checkpoint` (tlog-witness "add-checkpoint"), written
//!   by a log and parsed strictly by a witness; [`format_size_body`] / [`parse_size_body`] the body of its `409`.
//! - [`add_cosignatures`]: a witness's `200` body (signature lines) appended to the log's note.
//! - [`verify_witnessed`]: a checkpoint trusted only when the log signed it and at least `quorum` distinct known
//!   witnesses cosigned it.

use core::fmt;

use tlog_core::{HASH_SIZE, Hash};

use crate::cosignature::{SignedCheckpoint, cosignature_key_id, verify_checkpoint};
use crate::error::Error;
use crate::keys::{COSIGNATURE_TYPE, KeyId, SignerKey, VerifierKey, split_key_string};
use crate::note::{Note, parse_signature_line};
use crate::{decode_base64, encode_base64};

/// `Content-Type` of a witness's `409 Conflict` body: its latest cosigned size.
pub const SIZE_CONTENT_TYPE: &str = "text/x.tlog.size";
/// The most consistency proof lines a request may carry ("MUST NOT send more than 63").
pub const MAX_PROOF_LINES: usize = 63;

/// A witness's cosignature verifier key (type `0x04`).
#[derive(Clone, PartialEq, Eq)]
pub struct CosignerKey {
    name: String,
    key_id: KeyId,
    public_key: [u8; 32],
}

impl CosignerKey {
    /// Parses `<name>+<8 hex key ID>+base64(0x04 || 32-byte public key)`, ignoring surrounding whitespace.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let (name, key_id, material) = split_key_string(text.trim())?;
        let bytes = decode_base64(material)?;
        let (&key_type, key) = bytes
            .split_first()
            .ok_or(Error::BadKey("empty key material"))?;
        if key_type != COSIGNATURE_TYPE {
            return Err(Error::UnsupportedKeyType(key_type));
        }
        let public_key: [u8; 32] = key
            .try_into()
            .map_err(|_| Error::BadKey("Ed25519 key material is not 32 bytes"))?;
        ed25519_dalek::VerifyingKey::from_bytes(&public_key)
            .map_err(|_| Error::BadKey("not a valid Ed25519 public key"))?;
        if cosignature_key_id(name, &public_key) != key_id {
            return Err(Error::KeyIdMismatch);
        }
        Ok(CosignerKey {
            name: name.to_owned(),
            key_id,
            public_key,
        })
    }

    /// The cosigner key of a signing key (a witness's own key).
    pub fn of(key: &SignerKey) -> Self {
        let public_key = key.public_key();
        CosignerKey {
            name: key.name().to_owned(),
            key_id: cosignature_key_id(key.name(), &public_key),
            public_key,
        }
    }

    /// The witness name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key ID of its cosignature lines.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The Ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.public_key
    }
}

impl fmt::Display for CosignerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut material = Vec::with_capacity(33);
        material.push(COSIGNATURE_TYPE);
        material.extend_from_slice(&self.public_key);
        write!(
            f,
            "{}+{}+{}",
            self.name,
            self.key_id,
            encode_base64(&material)
        )
    }
}

impl fmt::Debug for CosignerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CosignerKey({self})")
    }
}

/// The body of an `add-checkpoint` request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddCheckpoint {
    /// The size of the previous checkpoint the client knows the witness cosigned (0 for none).
    pub old_size: u64,
    /// The RFC 6962 consistency proof from `old_size` to the checkpoint's size (empty when `old_size` is 0).
    pub proof: Vec<Hash>,
    /// The signed checkpoint note, as the log published it.
    pub checkpoint: Vec<u8>,
}

impl AddCheckpoint {
    /// Writes the request body: `old <size>`, one base64 hash per line, an empty line, the note.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = format!("old {}\n", self.old_size).into_bytes();
        for hash in &self.proof {
            out.extend_from_slice(encode_base64(hash.as_bytes()).as_bytes());
            out.push(b'\n');
        }
        out.push(b'\n');
        out.extend_from_slice(&self.checkpoint);
        out
    }

    /// Parses a request body strictly: a canonical decimal old size, at most [`MAX_PROOF_LINES`] canonical
    /// base64 hashes, each line ending in a newline. The note after the empty line is returned unparsed.
    pub fn parse(body: &[u8]) -> Result<Self, Error> {
        let bad = Error::BadWitnessRequest;
        let mut rest = body;
        let mut next_line = || -> Result<&[u8], Error> {
            let end = rest
                .iter()
                .position(|&b| b == b'\n')
                .ok_or(bad("a line does not end in a newline"))?;
            let (line, tail) = rest.split_at(end);
            rest = &tail[1..];
            Ok(line)
        };
        let first = next_line()?;
        let size = first
            .strip_prefix(b"old ")
            .ok_or(bad("the first line is not `old <size>`"))?;
        let old_size = parse_decimal(size)
            .ok_or(bad("the old size is not a decimal without leading zeros"))?;
        let mut proof = Vec::new();
        loop {
            let line = next_line()?;
            if line.is_empty() {
                break;
            }
            if proof.len() == MAX_PROOF_LINES {
                return Err(bad("more than 63 consistency proof lines"));
            }
            let text = core::str::from_utf8(line).map_err(|_| bad("a proof line is not base64"))?;
            let bytes = decode_base64(text).map_err(|_| bad("a proof line is not base64"))?;
            if bytes.len() != HASH_SIZE {
                return Err(bad("a proof line is not a 32-byte hash"));
            }
            proof.push(Hash::from_slice(&bytes).ok_or(bad("a proof line is not a 32-byte hash"))?);
        }
        Ok(AddCheckpoint {
            old_size,
            proof,
            checkpoint: rest.to_vec(),
        })
    }
}

fn parse_decimal(text: &[u8]) -> Option<u64> {
    let canonical = !text.is_empty()
        && text.iter().all(u8::is_ascii_digit)
        && (text == b"0" || text[0] != b'0');
    if !canonical {
        return None;
    }
    core::str::from_utf8(text).ok()?.parse().ok()
}

/// The body of a `409 Conflict`: the witness's latest cosigned size, then a newline.
pub fn format_size_body(size: u64) -> String {
    format!("{size}\n")
}

/// Parses a `409 Conflict` body.
pub fn parse_size_body(body: &[u8]) -> Result<u64, Error> {
    body.strip_suffix(b"\n")
        .and_then(parse_decimal)
        .ok_or(Error::BadWitnessRequest(
            "a conflict body is not a decimal size and a newline",
        ))
}

/// Appends a witness's `200` body (one or more signature lines, each ending in a newline) to a signed note,
/// checking that each line is a well-formed signature line. Signatures are not verified here:
/// [`verify_witnessed`] does that with the keys the reader trusts.
pub fn add_cosignatures(note: &str, lines: &str) -> Result<String, Error> {
    if lines.is_empty() || !lines.ends_with('\n') {
        return Err(Error::BadWitnessRequest(
            "a cosignature response is not newline-terminated signature lines",
        ));
    }
    for line in lines.split_terminator('\n') {
        parse_signature_line(line)?;
    }
    let mut out = String::with_capacity(note.len() + lines.len());
    out.push_str(note);
    out.push_str(lines);
    Note::parse(out.as_bytes())?;
    Ok(out)
}

/// A checkpoint the log signed and a quorum of witnesses cosigned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Witnessed {
    /// The log's signed checkpoint (the whole note, cosignatures included).
    pub signed: SignedCheckpoint,
    /// Each known witness whose cosignature verified, with its timestamp, in note order.
    pub cosigners: Vec<(CosignerKey, u64)>,
}

/// Verifies a checkpoint note against the log's key and a witness policy: the log's signature and timestamp as
/// [`verify_checkpoint`] checks them, and valid cosignatures from at least `quorum` distinct `witnesses`.
///
/// Cosignature lines of unknown keys are ignored; a line of a known witness that does not verify rejects the
/// note ([`Error::InvalidSignature`]), as signed-note requires of known keys. Too few valid cosigners give
/// [`Error::NoQuorum`], naming the witnesses that are missing.
pub fn verify_witnessed(
    log_key: &VerifierKey,
    witnesses: &[CosignerKey],
    quorum: usize,
    note: &[u8],
) -> Result<Witnessed, Error> {
    let signed = verify_checkpoint(log_key, note)?;
    let parsed = Note::parse(note)?;
    let mut cosigners: Vec<(CosignerKey, u64)> = Vec::new();
    for sig in &parsed.signatures {
        let Some(witness) = witnesses
            .iter()
            .find(|w| w.name == sig.name && w.key_id == sig.key_id)
        else {
            continue;
        };
        let mut blob = Vec::with_capacity(4 + sig.blob.len());
        blob.extend_from_slice(&sig.key_id.0);
        blob.extend_from_slice(&sig.blob);
        let timestamp = crate::cosignature::verify_cosignature(
            &witness.public_key,
            &witness.name,
            &parsed.text,
            &blob,
        )?;
        if !cosigners.iter().any(|(w, _)| w == witness) {
            cosigners.push((witness.clone(), timestamp));
        }
    }
    if cosigners.len() < quorum {
        let missing = witnesses
            .iter()
            .filter(|w| !cosigners.iter().any(|(c, _)| c == *w))
            .map(|w| w.name.clone())
            .collect();
        return Err(Error::NoQuorum {
            quorum,
            valid: cosigners.len(),
            missing,
        });
    }
    Ok(Witnessed { signed, cosigners })
}

#[cfg(test)]
mod tests {
    use tlog_core::TreeSize;

    use super::*;
    use crate::{Checkpoint, cosign, sign_checkpoint};

    const ORIGIN: &str = "example.com/log";

    fn log_key() -> SignerKey {
        SignerKey::from_seed(ORIGIN, [1; 32]).unwrap()
    }

    fn witness(n: u8) -> SignerKey {
        SignerKey::from_seed(&format!("witness{n}.example"), [n + 10; 32]).unwrap()
    }

    fn signed() -> SignedCheckpoint {
        let cp = Checkpoint::new(ORIGIN, TreeSize(20), Hash([3; 32])).unwrap();
        sign_checkpoint(&log_key(), &cp, 1_700_000_000).unwrap()
    }

    fn body_of(s: &SignedCheckpoint) -> String {
        s.checkpoint.to_body()
    }

    #[test]
    fn cosigner_keys_round_trip_and_refuse_plain_keys() {
        let key = CosignerKey::of(&witness(1));
        assert_eq!(CosignerKey::parse(&key.to_string()), Ok(key.clone()));
        assert!(
            key.to_string()
                .starts_with(&format!("witness1.example+{}+", key.key_id()))
        );
        assert_eq!(
            CosignerKey::parse(&witness(1).verifier().to_string()),
            Err(Error::UnsupportedKeyType(0x01))
        );
    }

    #[test]
    fn requests_round_trip() {
        let req = AddCheckpoint {
            old_size: 20852014,
            proof: vec![Hash([1; 32]), Hash([2; 32])],
            checkpoint: signed().note.into_bytes(),
        };
        let body = req.encode();
        assert!(body.starts_with(b"old 20852014\nAQEB"));
        assert_eq!(AddCheckpoint::parse(&body), Ok(req));
    }

    #[test]
    fn malformed_requests_are_refused() {
        let note = signed().note;
        let hash = encode_base64(&[1; 32]);
        for body in [
            format!("old 01\n\n{note}"),
            format!("old -1\n\n{note}"),
            "old 1".to_string(),
            format!("new 1\n\n{note}"),
            format!("old 1\n{hash}"),
            format!("old 1\n{}\n\n{note}", encode_base64(&[1; 31])),
            format!("old 1\n{}\n\n{note}", hash.trim_end_matches('=')),
            format!("old 1\n{}\n{note}", format!("{hash}\n").repeat(64)),
        ] {
            assert!(
                AddCheckpoint::parse(body.as_bytes()).is_err(),
                "accepted {body:?}"
            );
        }
        let max = format!("old 1\n{}\n{note}", format!("{hash}\n").repeat(63));
        assert_eq!(
            AddCheckpoint::parse(max.as_bytes()).unwrap().proof.len(),
            63
        );
    }

    #[test]
    fn size_bodies_round_trip() {
        assert_eq!(parse_size_body(format_size_body(42).as_bytes()), Ok(42));
        for bad in ["42", "042\n", "\n", "x\n", "42\n\n"] {
            assert!(parse_size_body(bad.as_bytes()).is_err(), "{bad:?}");
        }
    }

    fn witnessed_note(signers: &[u8]) -> String {
        let s = signed();
        let lines: String = signers
            .iter()
            .map(|&n| cosign(&witness(n), &body_of(&s), 1_700_000_001).unwrap())
            .collect();
        add_cosignatures(&s.note, &lines).unwrap()
    }

    #[test]
    fn a_quorum_of_known_witnesses_is_trusted() {
        let keys: Vec<_> = (1..=3).map(|n| CosignerKey::of(&witness(n))).collect();
        let note = witnessed_note(&[1, 3, 4]);
        let w = verify_witnessed(&log_key().verifier(), &keys, 2, note.as_bytes()).unwrap();
        let names: Vec<_> = w.cosigners.iter().map(|(k, _)| k.name()).collect();
        assert_eq!(names, ["witness1.example", "witness3.example"]);
        assert_eq!(w.cosigners[0].1, 1_700_000_001);
    }

    #[test]
    fn too_few_cosigners_name_the_missing_witnesses() {
        let keys: Vec<_> = (1..=3).map(|n| CosignerKey::of(&witness(n))).collect();
        let note = witnessed_note(&[2, 4, 2]);
        let err = verify_witnessed(&log_key().verifier(), &keys, 2, note.as_bytes()).unwrap_err();
        assert_eq!(
            err,
            Error::NoQuorum {
                quorum: 2,
                valid: 1,
                missing: vec!["witness1.example".into(), "witness3.example".into()],
            }
        );
    }

    #[test]
    fn a_bad_cosignature_of_a_known_witness_rejects_the_note() {
        let keys = [CosignerKey::of(&witness(1))];
        let s = signed();
        let other = Checkpoint::new(ORIGIN, TreeSize(21), Hash([3; 32])).unwrap();
        let line = cosign(&witness(1), &other.to_body(), 5).unwrap();
        let note = add_cosignatures(&s.note, &line).unwrap();
        assert!(matches!(
            verify_witnessed(&log_key().verifier(), &keys, 1, note.as_bytes()),
            Err(Error::InvalidSignature { .. })
        ));
    }

    #[test]
    fn cosignature_responses_must_be_signature_lines() {
        let note = signed().note;
        for bad in ["", "garbage\n", "— w AAAA", "— w\n"] {
            assert!(add_cosignatures(&note, bad).is_err(), "{bad:?}");
        }
    }
}
