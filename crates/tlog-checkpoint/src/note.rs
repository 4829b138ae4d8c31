//! Signed notes (C2SP signed-note v1.0.0, "Format" and "Signatures"): strict parsing and Ed25519 verification.

use crate::error::Error;
use crate::keys::{KeyId, VerifierKey, is_valid_name, verify_ed25519};
use crate::{decode_base64, encode_base64};

/// The most signature lines a note may carry. The spec requires accepting at least 16 and asks for a limit;
/// 100 is the limit of Go's `sumdb/note`, so notes that interoperate there are accepted here.
pub const MAX_SIGNATURES: usize = 100;

/// Em dash (U+2014) and a space: the start of every signature line.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// A note split into its text and signature lines; nothing about it is verified yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The signed text, final newline included, blank separator line excluded.
    pub text: String,
    /// The signature lines, in order.
    pub signatures: Vec<NoteSignature>,
}

/// One signature line: `— <name> base64(key ID || blob)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// The key name.
    pub name: String,
    /// The first four decoded bytes.
    pub key_id: KeyId,
    /// The decoded bytes after the key ID: the signature proper, whose layout depends on the key type.
    pub blob: Vec<u8>,
}

/// Signed notes "MUST NOT contain any ASCII control characters (those below U+0020) other than newline".
pub(crate) fn check_text_chars(text: &str) -> Result<(), Error> {
    if text.chars().any(|c| c < ' ' && c != '\n') {
        Err(Error::ControlCharacter)
    } else {
        Ok(())
    }
}

/// What a signer checks of a note text so that the note it emits parses back to the same text.
pub(crate) fn check_note_text(text: &str) -> Result<(), Error> {
    check_text_chars(text)?;
    if text.ends_with('\n') {
        Ok(())
    } else {
        Err(Error::MissingFinalNewline)
    }
}

/// Formats `— <name> base64(key ID || payload)` with its final newline.
pub(crate) fn signature_line(name: &str, key_id: KeyId, payload: &[u8]) -> String {
    let mut blob = Vec::with_capacity(key_id.0.len() + payload.len());
    blob.extend_from_slice(&key_id.0);
    blob.extend_from_slice(payload);
    format!("{SIGNATURE_PREFIX}{name} {}\n", encode_base64(&blob))
}

impl Note {
    /// Parses a signed note without checking any signature.
    ///
    /// The note must be UTF-8 without control characters other than newline; the text is everything up to the
    /// *last* blank line (the text may itself contain blank lines) and must be followed by 1 to
    /// [`MAX_SIGNATURES`] newline-terminated signature lines, each with a valid key name and canonical base64 of
    /// a key ID and at least one more byte.
    pub fn parse(msg: &[u8]) -> Result<Note, Error> {
        let msg = core::str::from_utf8(msg).map_err(|_| Error::BadUtf8)?;
        check_text_chars(msg)?;
        let split = msg.rfind("\n\n").ok_or(Error::MissingBlankLine)?;
        // The text keeps its final newline; the second newline is the blank separator line.
        let (text, rest) = msg
            .split_at_checked(split + 1)
            .ok_or(Error::MissingBlankLine)?;
        let lines = rest.strip_prefix('\n').ok_or(Error::MissingBlankLine)?;
        if lines.is_empty() {
            return Err(Error::NoSignatures);
        }
        if !lines.ends_with('\n') {
            return Err(Error::MissingFinalNewline);
        }
        // Count before decoding so an oversized note costs no more than one scan.
        if lines.bytes().filter(|&b| b == b'\n').count() > MAX_SIGNATURES {
            return Err(Error::TooManySignatures);
        }
        let signatures = lines
            .split_terminator('\n')
            .map(parse_signature_line)
            .collect::<Result<_, _>>()?;
        Ok(Note {
            text: text.to_owned(),
            signatures,
        })
    }

    /// Verifies the note against Ed25519 (`0x01`) verifier keys and returns the keys that signed it, in the
    /// order of their first signature line.
    ///
    /// Per signed-note "Signatures": lines whose (name, key ID) match no verifier are ignored; every line that
    /// matches one must verify, or the whole note is rejected with [`Error::InvalidSignature`]; at least one
    /// must match, or [`Error::NoKnownSignature`].
    pub fn verify(&self, verifiers: &[VerifierKey]) -> Result<Vec<VerifierKey>, Error> {
        let mut signers: Vec<VerifierKey> = Vec::new();
        for sig in &self.signatures {
            let Some(key) = known_key(verifiers, &sig.name, sig.key_id)? else {
                continue;
            };
            if !verify_ed25519(key.verifying_key(), self.text.as_bytes(), &sig.blob) {
                return Err(Error::InvalidSignature {
                    name: sig.name.clone(),
                    key_id: sig.key_id,
                });
            }
            if !signers.contains(key) {
                signers.push(key.clone());
            }
        }
        if signers.is_empty() {
            Err(Error::NoKnownSignature)
        } else {
            Ok(signers)
        }
    }
}

/// The verifier with this name and key ID, if any. Two different keys under one (name, ID) make a signature
/// unattributable, so that configuration is an error rather than a guess.
fn known_key<'a>(
    verifiers: &'a [VerifierKey],
    name: &str,
    key_id: KeyId,
) -> Result<Option<&'a VerifierKey>, Error> {
    let mut matching = verifiers
        .iter()
        .filter(|v| v.name() == name && v.key_id() == key_id);
    let first = matching.next();
    if let Some(first) = first
        && matching.any(|other| other != first)
    {
        return Err(Error::AmbiguousKey {
            name: name.to_owned(),
            key_id,
        });
    }
    Ok(first)
}

pub(crate) fn parse_signature_line(line: &str) -> Result<NoteSignature, Error> {
    let rest = line
        .strip_prefix(SIGNATURE_PREFIX)
        .ok_or(Error::BadSignatureLine)?;
    // Key names contain no space, so the first space ends the name.
    let (name, encoded) = rest.split_once(' ').ok_or(Error::BadSignatureLine)?;
    if !is_valid_name(name) {
        return Err(Error::BadKeyName);
    }
    let bytes = decode_base64(encoded)?;
    let (key_id, blob) = bytes
        .split_first_chunk::<4>()
        .ok_or(Error::BadSignatureLength(0))?;
    if blob.is_empty() {
        return Err(Error::BadSignatureLength(0));
    }
    Ok(NoteSignature {
        name: name.to_owned(),
        key_id: KeyId(*key_id),
        blob: blob.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SignerKey;

    fn key(name: &str, seed: u8) -> SignerKey {
        SignerKey::from_seed(name, [seed; 32]).unwrap()
    }

    const TEXT: &str = "hello\nworld\n";

    #[test]
    fn sign_then_parse_and_verify() {
        let k = key("example.org/a", 1);
        let note = k.sign_note(TEXT).unwrap();
        let parsed = Note::parse(note.as_bytes()).unwrap();
        assert_eq!(parsed.text, TEXT);
        assert_eq!(parsed.signatures.len(), 1);
        assert_eq!(parsed.signatures[0].name, "example.org/a");
        assert_eq!(parsed.signatures[0].key_id, k.key_id());
        assert_eq!(parsed.signatures[0].blob.len(), 64);
        assert_eq!(parsed.verify(&[k.verifier()]).unwrap(), vec![k.verifier()]);
    }

    #[test]
    fn text_may_contain_blank_lines_and_be_a_lone_newline() {
        let k = key("a", 1);
        for text in ["\n", "a\n\nb\n", "a\n\n", "a\n\n\n"] {
            let parsed = Note::parse(k.sign_note(text).unwrap().as_bytes()).unwrap();
            assert_eq!(parsed.text, text);
            parsed.verify(&[k.verifier()]).unwrap();
        }
    }

    #[test]
    fn sign_note_refuses_bad_text() {
        let k = key("a", 1);
        assert_eq!(k.sign_note(""), Err(Error::MissingFinalNewline));
        assert_eq!(k.sign_note("abc"), Err(Error::MissingFinalNewline));
        assert_eq!(k.sign_note("a\rb\n"), Err(Error::ControlCharacter));
        assert_eq!(
            k.sign_note("cosignature/v1\ntime 1\nx\n"),
            Err(Error::ReservedPrefix)
        );
    }

    #[test]
    fn unknown_signers_are_ignored() {
        let (a, b, c) = (key("a", 1), key("b", 2), key("c", 3));
        let note = format!("{}{}", a.sign_note(TEXT).unwrap(), sig_line(&b, TEXT));
        let parsed = Note::parse(note.as_bytes()).unwrap();
        assert_eq!(parsed.verify(&[a.verifier()]).unwrap(), vec![a.verifier()]);
        assert_eq!(parsed.verify(&[b.verifier()]).unwrap(), vec![b.verifier()]);
        assert_eq!(
            parsed.verify(&[b.verifier(), a.verifier()]).unwrap(),
            vec![a.verifier(), b.verifier()]
        );
        assert_eq!(parsed.verify(&[c.verifier()]), Err(Error::NoKnownSignature));
        assert_eq!(parsed.verify(&[]), Err(Error::NoKnownSignature));
    }

    /// "ignore signatures from unknown keys, even if they share a name or ID (but not both) with a known key".
    #[test]
    fn same_name_other_key_is_unknown() {
        let (a, impostor) = (key("a", 1), key("a", 2));
        assert_ne!(a.key_id(), impostor.key_id());
        let note = format!(
            "{}{}",
            a.sign_note(TEXT).unwrap(),
            sig_line(&impostor, "other\n")
        );
        assert_eq!(
            Note::parse(note.as_bytes())
                .unwrap()
                .verify(&[a.verifier()])
                .unwrap(),
            vec![a.verifier()]
        );
    }

    #[test]
    fn sixteen_signatures_accepted_and_limit_enforced() {
        let keys: Vec<SignerKey> = (0..16).map(|i| key(&format!("w{i}"), i)).collect();
        let mut note = keys[0].sign_note(TEXT).unwrap();
        for k in &keys[1..] {
            note.push_str(&sig_line(k, TEXT));
        }
        let parsed = Note::parse(note.as_bytes()).unwrap();
        assert_eq!(parsed.signatures.len(), 16);
        let verifiers: Vec<VerifierKey> = keys.iter().map(SignerKey::verifier).collect();
        assert_eq!(parsed.verify(&verifiers).unwrap(), verifiers);

        let line = sig_line(&keys[0], TEXT);
        let at_limit = format!("{TEXT}\n{}", line.repeat(MAX_SIGNATURES));
        assert_eq!(
            Note::parse(at_limit.as_bytes()).unwrap().signatures.len(),
            MAX_SIGNATURES
        );
        let over = format!("{TEXT}\n{}", line.repeat(MAX_SIGNATURES + 1));
        assert_eq!(Note::parse(over.as_bytes()), Err(Error::TooManySignatures));
    }

    #[test]
    fn known_key_with_bad_signature_rejects_the_note() {
        let a = key("a", 1);
        let good = sig_line(&a, TEXT);
        let bad = sig_line(&a, "something else\n");
        for lines in [format!("{good}{bad}"), format!("{bad}{good}")] {
            let note = format!("{TEXT}\n{lines}");
            assert_eq!(
                Note::parse(note.as_bytes())
                    .unwrap()
                    .verify(&[a.verifier()]),
                Err(Error::InvalidSignature {
                    name: "a".into(),
                    key_id: a.key_id()
                })
            );
        }
        // A known key's line whose blob is not 64 bytes cannot be a valid signature either.
        let short = signature_line("a", a.key_id(), &[0; 63]);
        let note = format!("{TEXT}\n{good}{short}");
        assert!(matches!(
            Note::parse(note.as_bytes())
                .unwrap()
                .verify(&[a.verifier()]),
            Err(Error::InvalidSignature { .. })
        ));
    }

    #[test]
    fn strict_syntax() {
        let a = key("a", 1);
        let line = sig_line(&a, TEXT);
        let b64 = line.trim_end().rsplit(' ').next().unwrap().to_owned();
        let cases: Vec<(Vec<u8>, Error)> = vec![
            (b"\xffhello\n\n".to_vec(), Error::BadUtf8),
            (
                format!("{TEXT}\n{line}")
                    .replace("hello", "he\u{1}llo")
                    .into_bytes(),
                Error::ControlCharacter,
            ),
            (
                format!("{TEXT}\n{line}")
                    .replace("hello", "he\rllo")
                    .into_bytes(),
                Error::ControlCharacter,
            ),
            (
                format!("{TEXT}\n{line}")
                    .replace("hello", "he\tllo")
                    .into_bytes(),
                Error::ControlCharacter,
            ),
            (
                format!("{TEXT}{line}").into_bytes(),
                Error::MissingBlankLine,
            ),
            (TEXT.as_bytes().to_vec(), Error::MissingBlankLine),
            (format!("{TEXT}\n").into_bytes(), Error::NoSignatures),
            (
                format!("{TEXT}\n{}", line.trim_end()).into_bytes(),
                Error::MissingFinalNewline,
            ),
            (
                format!("{TEXT}\n{}", line.replace('\u{2014}', "-")).into_bytes(),
                Error::BadSignatureLine,
            ),
            (
                format!("{TEXT}\n{}", line.replace('\u{2014}', "\u{2013}")).into_bytes(),
                Error::BadSignatureLine,
            ),
            (
                format!("{TEXT}\n{}", line.replace("\u{2014} ", "\u{2014}")).into_bytes(),
                Error::BadSignatureLine,
            ),
            (
                format!("{TEXT}\n\u{2014} a{b64}\n").into_bytes(),
                Error::BadSignatureLine,
            ),
            (
                format!("{TEXT}\n\u{2014}  {b64}\n").into_bytes(),
                Error::BadKeyName,
            ),
            (
                format!("{TEXT}\n\u{2014} a+b {b64}\n").into_bytes(),
                Error::BadKeyName,
            ),
            (
                format!("{TEXT}\n\u{2014} a\u{a0}b {b64}\n").into_bytes(),
                Error::BadKeyName,
            ),
            (
                format!("{TEXT}\n\u{2014} a b {b64}\n").into_bytes(),
                Error::BadBase64,
            ),
            (
                format!("{TEXT}\n\u{2014} a {b64} \n").into_bytes(),
                Error::BadBase64,
            ),
            (
                format!("{TEXT}\n\u{2014} a {}\n", b64.trim_end_matches('=')).into_bytes(),
                Error::BadBase64,
            ),
            (
                format!("{TEXT}\n\u{2014} a {b64}=\n").into_bytes(),
                Error::BadBase64,
            ),
            (
                format!("{TEXT}\n\u{2014} a \n").into_bytes(),
                Error::BadSignatureLength(0),
            ),
            (
                format!("{TEXT}\n\u{2014} a AAAAAA==\n").into_bytes(),
                Error::BadSignatureLength(0),
            ),
            (
                format!("{TEXT}\n\u{2014} a AAAA\n").into_bytes(),
                Error::BadSignatureLength(0),
            ),
            (
                format!("{TEXT}\n{line}Unexpected line.\n").into_bytes(),
                Error::BadSignatureLine,
            ),
        ];
        for (msg, want) in cases {
            assert_eq!(
                Note::parse(&msg),
                Err(want.clone()),
                "{:?}",
                String::from_utf8_lossy(&msg)
            );
        }
        // Non-canonical trailing bits: "AAAAAAE=" decodes to 5 bytes but "AAAAAAF=" is the same bytes mis-spelt.
        assert!(Note::parse(format!("{TEXT}\n\u{2014} a AAAAAAE=\n").as_bytes()).is_ok());
        assert_eq!(
            Note::parse(format!("{TEXT}\n\u{2014} a AAAAAAF=\n").as_bytes()),
            Err(Error::BadBase64)
        );
    }

    fn sig_line(k: &SignerKey, text: &str) -> String {
        let note = k.sign_note(text).unwrap();
        note[text.len() + 1..].to_owned()
    }
}
