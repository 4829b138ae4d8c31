//! Property tests: no input panics a parser or verifier, and valid values round-trip.

use proptest::prelude::*;
use tlog_checkpoint::{
    Checkpoint, MAX_TIMESTAMP, Note, SignerKey, VerifierKey, sign_checkpoint, verify_checkpoint,
};
use tlog_core::{Hash, TreeSize};

const ORIGIN: &str = "prop.example/log";

fn log_key() -> SignerKey {
    SignerKey::from_seed(ORIGIN, [0x11; 32]).unwrap()
}

fn valid_note() -> Vec<u8> {
    let checkpoint = Checkpoint::new(ORIGIN, TreeSize(77), Hash([0xee; 32])).unwrap();
    sign_checkpoint(&log_key(), &checkpoint, 1_600_000_000)
        .unwrap()
        .note
        .into_bytes()
}

/// Bytes that look like notes often enough to reach the deeper parsing paths.
fn note_like() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            Just(b"\n".to_vec()),
            Just("\u{2014} ".as_bytes().to_vec()),
            Just(b" ".to_vec()),
            Just(b"=".to_vec()),
            Just(ORIGIN.as_bytes().to_vec()),
            "[A-Za-z0-9+/]{1,12}".prop_map(String::into_bytes),
            any::<u8>().prop_map(|b| vec![b]),
        ],
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let vkey = log_key().verifier();
        if let Ok(note) = Note::parse(&bytes) {
            let _ = note.verify(std::slice::from_ref(&vkey));
        }
        let _ = verify_checkpoint(&vkey, &bytes);
        if let Ok(text) = std::str::from_utf8(&bytes) {
            let _ = Checkpoint::parse(text);
            let _ = VerifierKey::parse(text);
            let _ = SignerKey::parse_private(text);
        }
    }

    #[test]
    fn note_like_bytes_never_panic(bytes in note_like()) {
        let vkey = log_key().verifier();
        if let Ok(note) = Note::parse(&bytes) {
            let _ = note.verify(std::slice::from_ref(&vkey));
        }
        let _ = verify_checkpoint(&vkey, &bytes);
    }

    /// Any single-byte replacement of a valid signed checkpoint is rejected, whatever the new byte.
    #[test]
    fn any_byte_replacement_is_rejected(position in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut note = valid_note();
        let i = position.index(note.len());
        prop_assume!(note[i] != byte);
        note[i] = byte;
        prop_assert!(verify_checkpoint(&log_key().verifier(), &note).is_err());
    }

    /// Truncating or extending a valid note with arbitrary bytes never panics, and truncation always fails.
    #[test]
    fn truncation_and_extension(cut in any::<prop::sample::Index>(), tail in prop::collection::vec(any::<u8>(), 0..64)) {
        let note = valid_note();
        let vkey = log_key().verifier();
        prop_assert!(verify_checkpoint(&vkey, &note[..cut.index(note.len())]).is_err());
        let mut extended = note.clone();
        extended.extend_from_slice(&tail);
        let _ = verify_checkpoint(&vkey, &extended);
    }

    #[test]
    fn sign_verify_round_trip(
        seed in any::<[u8; 32]>(),
        size in any::<u64>(),
        root in any::<[u8; 32]>(),
        timestamp in 0..=MAX_TIMESTAMP,
        extensions in prop::collection::vec("[^\\x00-\\x1f]{1,20}", 0..3),
        origin in "[a-z0-9./-]{1,30}",
    ) {
        let key = SignerKey::from_seed(&origin, seed).unwrap();
        let mut checkpoint = Checkpoint::new(origin, TreeSize(size), Hash(root)).unwrap();
        checkpoint.extensions = extensions;
        prop_assert_eq!(Checkpoint::parse(&checkpoint.to_body()).unwrap(), checkpoint.clone());
        let signed = sign_checkpoint(&key, &checkpoint, timestamp).unwrap();
        prop_assert_eq!(verify_checkpoint(&key.verifier(), signed.note.as_bytes()).unwrap(), signed);
        prop_assert_eq!(SignerKey::parse_private(&key.to_private_string()).unwrap().verifier(), key.verifier());
        prop_assert_eq!(VerifierKey::parse(&key.verifier().to_string()).unwrap(), key.verifier());
    }
}
