//! Signed notes (C2SP signed-note) and key strings: parsing never panics, a parsed note re-serialises to exactly
//! the input (one accepted form per note), and verification with the fixture keys accepts only texts those keys
//! really signed, whatever other signature lines, names or key IDs surround them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tlog_checkpoint::{Note, SignerKey, VerifierKey, verify_cosignature};
use tlog_fuzz::{note_to_string, other_signer, signed_texts, verifier};

fuzz_target!(|data: &[u8]| {
    if let Ok(note) = Note::parse(data) {
        assert_eq!(
            note_to_string(&note).as_bytes(),
            data,
            "a parsed note must re-serialise to its input"
        );
        let keys = [verifier().clone(), other_signer().verifier()];
        if let Ok(signers) = note.verify(&keys) {
            assert!(!signers.is_empty());
            assert!(
                signed_texts().contains(&note.text),
                "verified a text no fixture key signed: {:?}",
                note.text
            );
        }
        for sig in &note.signatures {
            let mut blob = sig.key_id.0.to_vec();
            blob.extend_from_slice(&sig.blob);
            for key in &keys {
                if verify_cosignature(&key.public_key(), &sig.name, &note.text, &blob).is_ok() {
                    assert!(
                        signed_texts().contains(&note.text),
                        "verified a cosignature of a text nobody cosigned"
                    );
                }
            }
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(key) = VerifierKey::parse(text) {
            let printed = key.to_string();
            assert_eq!(
                VerifierKey::parse(&printed).ok(),
                Some(key),
                "vkey round trip"
            );
        }
        if let Ok(key) = SignerKey::parse_private(text) {
            let printed = key.to_private_string();
            let again = SignerKey::parse_private(&printed).expect("printed key parses");
            assert_eq!(again.verifier(), key.verifier(), "private key round trip");
        }
    }
});
