//! Ed25519 note keys: key IDs, verifier keys (signed-note "Verifier keys") and private keys in the text format of
//! Go's `golang.org/x/mod/sumdb/note`.

use core::fmt;

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::note::{check_note_text, signature_line};
use crate::{decode_base64, encode_base64};

/// Signature type of plain Ed25519 note signatures (signed-note "Signature types").
pub(crate) const ED25519_TYPE: u8 = 0x01;
/// Signature type of timestamped Ed25519 cosignatures (tlog-cosignature "Format").
pub(crate) const COSIGNATURE_TYPE: u8 = 0x04;
/// First line of every Ed25519 cosignature message (tlog-cosignature "Ed25519 signed message").
pub(crate) const COSIGNATURE_HEADER: &str = "cosignature/v1\n";

const PRIVATE_KEY_PREFIX: &str = "PRIVATE+KEY+";

/// The 4-byte key ID of a signature line: `SHA-256(name || 0x0A || type || public key)[:4]`.
///
/// `Display` and `Debug` print the 8 lowercase hex digits used in key strings.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 4]);

impl KeyId {
    /// Computes the key ID that signed-note recommends (and tlog-cosignature mandates) for a key.
    pub(crate) fn compute(name: &str, sig_type: u8, public_key: &[u8; 32]) -> KeyId {
        let digest: [u8; 32] = Sha256::new()
            .chain_update(name.as_bytes())
            .chain_update([b'\n', sig_type])
            .chain_update(public_key)
            .finalize()
            .into();
        let [a, b, c, d, ..] = digest;
        KeyId([a, b, c, d])
    }

    /// Exactly 8 lowercase hex digits, as written by `%08x`: one spelling per ID keeps key strings canonical.
    fn from_hex(text: &str) -> Option<KeyId> {
        if text.len() != 8 || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return None;
        }
        u32::from_str_radix(text, 16)
            .ok()
            .map(|id| KeyId(id.to_be_bytes()))
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// signed-note "Format": non-empty, no Unicode space, no `+`. Control characters are excluded too, because no
/// note may contain them.
pub(crate) fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || c < ' ')
}

/// Splits `<name>+<hex key ID>+<base64>`, the common tail of verifier and private key strings. The name cannot
/// contain `+`, so the first two `+` are the separators even though base64 may contain more.
pub(crate) fn split_key_string(text: &str) -> Result<(&str, KeyId, &str), Error> {
    let (name, rest) = text
        .split_once('+')
        .ok_or(Error::BadKey("missing `+` after the key name"))?;
    let (id, key) = rest
        .split_once('+')
        .ok_or(Error::BadKey("missing `+` after the key ID"))?;
    if !is_valid_name(name) {
        return Err(Error::BadKeyName);
    }
    let id = KeyId::from_hex(id).ok_or(Error::BadKey("key ID is not 8 lowercase hex digits"))?;
    Ok((name, id, key))
}

/// Decodes `base64(0x01 || 32 bytes)`, the key material of Ed25519 verifier and private keys.
fn decode_ed25519_material(text: &str) -> Result<[u8; 32], Error> {
    let bytes = decode_base64(text)?;
    let (&sig_type, key) = bytes
        .split_first()
        .ok_or(Error::BadKey("empty key material"))?;
    if sig_type != ED25519_TYPE {
        return Err(Error::UnsupportedKeyType(sig_type));
    }
    key.try_into()
        .map_err(|_| Error::BadKey("Ed25519 key material is not 32 bytes"))
}

fn encode_ed25519_material(key: &[u8; 32]) -> String {
    let mut bytes = Vec::with_capacity(1 + key.len());
    bytes.push(ED25519_TYPE);
    bytes.extend_from_slice(key);
    encode_base64(&bytes)
}

/// Verifies an Ed25519 signature given as untrusted bytes. `verify_strict` rejects non-canonical and small-order
/// encodings, so a signature cannot be altered into another that still verifies.
pub(crate) fn verify_ed25519(key: &VerifyingKey, msg: &[u8], sig: &[u8]) -> bool {
    Signature::from_slice(sig).is_ok_and(|sig| key.verify_strict(msg, &sig).is_ok())
}

/// An Ed25519 signed-note key: a key name and a key pair.
///
/// `Debug` shows the name and key ID only; the seed leaves only through [`SignerKey::to_private_string`]. The
/// underlying `ed25519_dalek` key is zeroized on drop.
#[derive(Clone)]
pub struct SignerKey {
    name: String,
    key_id: KeyId,
    signing: SigningKey,
}

impl SignerKey {
    /// Derives the key pair from a 32-byte Ed25519 seed (RFC 8032 private key) supplied by the caller.
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<Self, Error> {
        if !is_valid_name(name) {
            return Err(Error::BadKeyName);
        }
        let signing = SigningKey::from_bytes(&seed);
        let key_id = KeyId::compute(name, ED25519_TYPE, signing.verifying_key().as_bytes());
        Ok(SignerKey {
            name: name.to_owned(),
            key_id,
            signing,
        })
    }

    /// Parses `PRIVATE+KEY+<name>+<8 hex key ID>+<base64(0x01 || 32-byte seed)>`, ignoring surrounding
    /// whitespace (a key read from a file usually ends in a newline). The key ID must match the derived key.
    pub fn parse_private(text: &str) -> Result<Self, Error> {
        let rest = text
            .trim()
            .strip_prefix(PRIVATE_KEY_PREFIX)
            .ok_or(Error::BadKey(
                "private key does not start with PRIVATE+KEY+",
            ))?;
        let (name, key_id, material) = split_key_string(rest)?;
        let key = SignerKey::from_seed(name, decode_ed25519_material(material)?)?;
        if key.key_id != key_id {
            return Err(Error::KeyIdMismatch);
        }
        Ok(key)
    }

    /// The private key string that [`SignerKey::parse_private`] reads; it contains the seed.
    pub fn to_private_string(&self) -> String {
        format!(
            "{PRIVATE_KEY_PREFIX}{}+{}+{}",
            self.name,
            self.key_id,
            encode_ed25519_material(self.signing.as_bytes())
        )
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key ID of this key's `0x01` note signatures.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The Ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }

    /// The matching verifier key.
    pub fn verifier(&self) -> VerifierKey {
        VerifierKey {
            name: self.name.clone(),
            key_id: self.key_id,
            key: self.signing.verifying_key(),
        }
    }

    /// Signs `text` as a note: returns `text`, a blank line and one `0x01` signature line.
    ///
    /// `text` must end with a newline, contain no control character other than newline, and not begin with
    /// `cosignature/v1\n` (reserved so that a note signature can never double as a cosignature of this key).
    pub fn sign_note(&self, text: &str) -> Result<String, Error> {
        check_note_text(text)?;
        if text.starts_with(COSIGNATURE_HEADER) {
            return Err(Error::ReservedPrefix);
        }
        let line = signature_line(&self.name, self.key_id, &self.sign(text.as_bytes()));
        Ok(format!("{text}\n{line}"))
    }

    /// Raw Ed25519 signature of `msg`.
    pub(crate) fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.signing.sign(msg).to_bytes()
    }
}

impl fmt::Debug for SignerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignerKey")
            .field("name", &self.name)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// An Ed25519 (`0x01`) verifier key: `<name>+<8 hex key ID>+<base64(0x01 || 32-byte public key)>`.
///
/// `Display` writes that string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    key_id: KeyId,
    key: VerifyingKey,
}

impl VerifierKey {
    /// Parses a verifier key string, ignoring surrounding whitespace. The key ID must match the name and public
    /// key, and the public key must be a valid Ed25519 point.
    pub fn parse(vkey: &str) -> Result<Self, Error> {
        let (name, key_id, material) = split_key_string(vkey.trim())?;
        let public_key = decode_ed25519_material(material)?;
        if KeyId::compute(name, ED25519_TYPE, &public_key) != key_id {
            return Err(Error::KeyIdMismatch);
        }
        let key = VerifyingKey::from_bytes(&public_key)
            .map_err(|_| Error::BadKey("not a valid Ed25519 public key"))?;
        Ok(VerifierKey {
            name: name.to_owned(),
            key_id,
            key,
        })
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key ID of this key's `0x01` note signatures.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The Ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    pub(crate) fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }
}

impl fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}+{}+{}",
            self.name,
            self.key_id,
            encode_ed25519_material(self.key.as_bytes())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Go sumdb/note TestNewSigner/TestNewVerifier key pair.
    const PETER_SKEY: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";

    #[test]
    fn key_id_display_is_eight_hex_digits() {
        assert_eq!(KeyId([0x05, 0x0d, 0x90, 0x3a]).to_string(), "050d903a");
        assert_eq!(format!("{:?}", KeyId([0xff; 4])), "KeyId(ffffffff)");
        assert_eq!(
            KeyId::from_hex("c74f20a3"),
            Some(KeyId([0xc7, 0x4f, 0x20, 0xa3]))
        );
        for bad in [
            "C74F20A3",
            "c74f20a",
            "c74f20a3a",
            "+74f20a3",
            "-74f20a3",
            "c74f20g3",
            "",
        ] {
            assert_eq!(KeyId::from_hex(bad), None, "{bad}");
        }
    }

    #[test]
    fn go_private_key_derives_go_verifier_key() {
        let key = SignerKey::parse_private(PETER_SKEY).unwrap();
        assert_eq!(key.name(), "PeterNeumann");
        assert_eq!(key.key_id().to_string(), "c74f20a3");
        assert_eq!(key.verifier().to_string(), PETER_VKEY);
        assert_eq!(key.to_private_string(), PETER_SKEY);
        assert_eq!(VerifierKey::parse(PETER_VKEY).unwrap(), key.verifier());
        assert_eq!(
            SignerKey::parse_private(&format!("  {PETER_SKEY}\n"))
                .unwrap()
                .to_private_string(),
            PETER_SKEY
        );
    }

    #[test]
    fn seed_round_trips_through_private_string() {
        let key = SignerKey::from_seed("example.org/log", [7; 32]).unwrap();
        let again = SignerKey::parse_private(&key.to_private_string()).unwrap();
        assert_eq!(again.verifier(), key.verifier());
        assert_eq!(again.to_private_string(), key.to_private_string());
        assert_eq!(
            VerifierKey::parse(&key.verifier().to_string()).unwrap(),
            key.verifier()
        );
        assert_eq!(key.verifier().public_key(), key.public_key());
    }

    #[test]
    fn debug_hides_the_seed() {
        let key = SignerKey::from_seed("example.org/log", [0xab; 32]).unwrap();
        let debug = format!("{key:?}");
        assert!(debug.contains("example.org/log"), "{debug}");
        let material = key.to_private_string();
        let seed_b64 = material.rsplit('+').next().unwrap();
        assert!(
            !debug.contains(seed_b64) && !debug.contains("171, 171"),
            "{debug}"
        );
    }

    #[test]
    fn bad_names_are_refused() {
        for name in [
            "",
            "a b",
            "a+b",
            "a\tb",
            "a\u{a0}b",
            "a\u{2003}b",
            "a\u{1}b",
            "a\nb",
        ] {
            assert_eq!(
                SignerKey::from_seed(name, [1; 32]).unwrap_err(),
                Error::BadKeyName,
                "{name:?}"
            );
        }
        assert!(SignerKey::from_seed("example.com/ü/日本", [1; 32]).is_ok());
    }

    /// Go's TestNewVerifier/TestNewSigner: every proper substring and every single-byte increment is refused.
    #[test]
    fn every_mangling_of_go_keys_is_refused() {
        for (text, parse) in [
            (
                PETER_VKEY,
                (|s: &str| VerifierKey::parse(s).is_ok()) as fn(&str) -> bool,
            ),
            (PETER_SKEY, |s: &str| SignerKey::parse_private(s).is_ok()),
        ] {
            let bytes = text.as_bytes();
            for i in 0..=bytes.len() {
                for j in i + 1..=bytes.len() {
                    if (i, j) != (0, bytes.len()) {
                        let sub = String::from_utf8_lossy(&bytes[i..j]);
                        // Trimming whitespace is allowed, and these strings contain none.
                        assert!(!parse(&sub), "substring {sub:?} accepted");
                    }
                }
            }
            for i in 0..bytes.len() {
                let mut changed = bytes.to_vec();
                changed[i] = changed[i].wrapping_add(1);
                let changed = String::from_utf8_lossy(&changed);
                assert!(!parse(&changed), "mangled {changed:?} accepted");
            }
        }
    }

    #[test]
    fn specific_key_errors() {
        // Go's "wrong length key, with adjusted key hash" (its base64 has non-zero trailing bits, which Go
        // tolerates and we do not) and "unknown algorithm, with adjusted key hash".
        assert_eq!(
            VerifierKey::parse(
                "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=="
            ),
            Err(Error::BadBase64)
        );
        let long_key = format!(
            "PeterNeumann+c74f20a3+{}",
            encode_base64(&[ED25519_TYPE; 34])
        );
        assert!(
            matches!(VerifierKey::parse(&long_key), Err(Error::BadKey(_))),
            "{long_key}"
        );
        assert_eq!(
            VerifierKey::parse(
                "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
            ),
            Err(Error::UnsupportedKeyType(0x65))
        );
        assert_eq!(
            VerifierKey::parse(
                "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
            ),
            Err(Error::KeyIdMismatch)
        );
        assert_eq!(
            VerifierKey::parse(
                "Peter+Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
            ),
            Err(Error::BadKey("key ID is not 8 lowercase hex digits"))
        );
        assert_eq!(
            VerifierKey::parse("PeterNeumann+c74f20a3+!!!!"),
            Err(Error::BadBase64)
        );
        assert_eq!(
            SignerKey::parse_private(
                "PRIVATE+KEY+PeterNeumann+c74f20a4+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
            )
            .err(),
            Some(Error::KeyIdMismatch)
        );
        assert!(matches!(
            SignerKey::parse_private(PETER_VKEY),
            Err(Error::BadKey(_))
        ));
    }

    #[test]
    fn duplicate_identical_verifiers_are_fine_but_conflicting_ones_are_not() {
        let a = SignerKey::from_seed("a", [1; 32]).unwrap();
        let parsed = crate::Note::parse(a.sign_note("text\n").unwrap().as_bytes()).unwrap();
        assert_eq!(
            parsed.verify(&[a.verifier(), a.verifier()]).unwrap(),
            vec![a.verifier()]
        );
        // Seeds cannot be searched for a colliding key ID here, so build the colliding verifier directly.
        let twin = VerifierKey {
            key: *SignerKey::from_seed("a", [2; 32])
                .unwrap()
                .verifier()
                .verifying_key(),
            ..a.verifier()
        };
        assert_eq!(
            parsed.verify(&[a.verifier(), twin]),
            Err(Error::AmbiguousKey {
                name: "a".into(),
                key_id: a.key_id()
            })
        );
    }
}
