//! The log's signed tree head: standard-verifier compatibility, witness cosignatures, and tamper evidence.

use tlog_checkpoint::{
    Checkpoint, Error, Note, SignedCheckpoint, SignerKey, VerifierKey, cosign, cosignature_key_id,
    sign_checkpoint, verify_checkpoint,
};
use tlog_core::{Hash, TreeSize};

const ORIGIN: &str = "tlog.example/audit";

fn log_key() -> SignerKey {
    SignerKey::from_seed(ORIGIN, [0x5a; 32]).unwrap()
}

fn signed(extensions: &[&str]) -> SignedCheckpoint {
    let mut checkpoint = Checkpoint::new(ORIGIN, TreeSize(20852163), Hash([0x3c; 32])).unwrap();
    checkpoint.extensions = extensions.iter().map(|&e| e.to_owned()).collect();
    sign_checkpoint(&log_key(), &checkpoint, 1_720_000_000).unwrap()
}

#[test]
fn round_trip() {
    for extensions in [&[][..], &["an extension"][..]] {
        let s = signed(extensions);
        assert_eq!(
            verify_checkpoint(&log_key().verifier(), s.note.as_bytes()).unwrap(),
            s
        );
        // What a client stores is the vkey string; it must verify just the same.
        let vkey = VerifierKey::parse(&log_key().verifier().to_string()).unwrap();
        assert_eq!(
            verify_checkpoint(&vkey, s.note.as_bytes())
                .unwrap()
                .timestamp,
            1_720_000_000
        );
    }
}

/// A plain signed-note verifier that knows only the `0x01` vkey accepts the note and treats the cosignature
/// line as an unknown key.
#[test]
fn standard_verifier_accepts_and_ignores_the_cosignature() {
    let key = log_key();
    let s = signed(&[]);
    let note = Note::parse(s.note.as_bytes()).unwrap();
    assert_eq!(note.text, s.checkpoint.to_body());
    let [plain, timestamped] = note.signatures.as_slice() else {
        panic!("want two signature lines")
    };
    assert_eq!(
        (plain.name.as_str(), plain.key_id, plain.blob.len()),
        (ORIGIN, key.key_id(), 64)
    );
    assert_eq!(timestamped.name, ORIGIN);
    assert_eq!(
        timestamped.key_id,
        cosignature_key_id(ORIGIN, &key.public_key())
    );
    assert_ne!(timestamped.key_id, key.key_id());
    assert_eq!(timestamped.blob.len(), 8 + 64);
    assert_eq!(
        note.verify(&[key.verifier()]).unwrap(),
        vec![key.verifier()]
    );
    assert_eq!(Checkpoint::parse(&note.text).unwrap(), s.checkpoint);
}

/// Witnesses append their own cosignatures; unknown signers never disturb verification.
#[test]
fn witness_cosignatures_are_ignored_by_the_log_check() {
    let s = signed(&[]);
    let body = s.checkpoint.to_body();
    let mut note = s.note.clone();
    for i in 0..14u8 {
        let witness = SignerKey::from_seed(&format!("witness{i}.example"), [i; 32]).unwrap();
        note.push_str(&cosign(&witness, &body, 1_720_000_001 + u64::from(i)).unwrap());
    }
    // 16 signature lines in all: the spec's minimum that verifiers must accept.
    assert_eq!(Note::parse(note.as_bytes()).unwrap().signatures.len(), 16);
    let verified = verify_checkpoint(&log_key().verifier(), note.as_bytes()).unwrap();
    assert_eq!(
        (verified.checkpoint, verified.timestamp),
        (s.checkpoint, s.timestamp)
    );
    assert_eq!(verified.note, note);
}

#[test]
fn wrong_key_is_rejected() {
    let s = signed(&[]);
    let stranger = SignerKey::from_seed(ORIGIN, [1; 32]).unwrap();
    assert_eq!(
        verify_checkpoint(&stranger.verifier(), s.note.as_bytes()),
        Err(Error::NoKnownSignature)
    );
}

/// Flipping any single bit of any byte — body, blank line, signature lines, final newline — is rejected.
#[test]
fn every_single_bit_flip_is_rejected() {
    let vkey = log_key().verifier();
    for extensions in [&[][..], &["ext"][..]] {
        let note = signed(extensions).note.into_bytes();
        for position in 0..note.len() {
            for bit in 0..8 {
                let mut tampered = note.clone();
                tampered[position] ^= 1 << bit;
                assert!(
                    verify_checkpoint(&vkey, &tampered).is_err(),
                    "accepted a flip of bit {bit} at byte {position}: {:?}",
                    String::from_utf8_lossy(&tampered)
                );
            }
        }
    }
}

/// Removing or duplicating any line is rejected too (the cosignature may not be dropped or doubled).
#[test]
fn dropping_or_repeating_a_line_is_rejected() {
    let vkey = log_key().verifier();
    let note = signed(&["ext"]).note;
    let lines: Vec<&str> = note.split_inclusive('\n').collect();
    for i in 0..lines.len() {
        let dropped: String = lines
            .iter()
            .enumerate()
            .filter(|&(j, _)| j != i)
            .map(|(_, l)| *l)
            .collect();
        assert!(
            verify_checkpoint(&vkey, dropped.as_bytes()).is_err(),
            "dropped line {i}"
        );
        let repeated: String = lines
            .iter()
            .enumerate()
            .flat_map(|(j, l)| if j == i { vec![*l, *l] } else { vec![*l] })
            .collect();
        // Repeating the 0x01 signature line is harmless (it verifies twice); anything else must fail.
        if i != lines.len() - 2 {
            assert!(
                verify_checkpoint(&vkey, repeated.as_bytes()).is_err(),
                "repeated line {i}"
            );
        }
    }
}
