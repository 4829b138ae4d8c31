//! Published test vectors (see testdata/README.md): the C2SP specs' examples and Go `sumdb/note`'s tests.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tlog_checkpoint::{
    Checkpoint, Error, KeyId, Note, SignerKey, VerifierKey, cosignature_key_id, verify_checkpoint,
};
use tlog_core::TreeSize;

const SPEC_VKEY: &str = include_str!("../testdata/spec-example.vkey");
const SPEC_NOTE: &str = include_str!("../testdata/spec-example.note");
const SPEC_INTRO_NOTE: &str = include_str!("../testdata/spec-intro.note");
const SPEC_CHECKPOINT_NOTE: &str = include_str!("../testdata/spec-checkpoint.note");
const PETER_SKEY: &str = include_str!("../testdata/go-peterneumann.skey");
const PETER_VKEY: &str = include_str!("../testdata/go-peterneumann.vkey");
const ENOCH_VKEY: &str = include_str!("../testdata/go-enochroot.vkey");
const GO_SIGN_NOTE: &str = include_str!("../testdata/go-sign.note");
const GO_OPEN_NOTE: &str = include_str!("../testdata/go-open.note");

const GO_TEXT: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";

/// signed-note "Verifier keys" → "Example": our key ID of `example.com/foo` is the spec's `530d903a`, and the
/// vkey string round-trips.
#[test]
fn spec_example_key_id_and_vkey() {
    let vkey = VerifierKey::parse(SPEC_VKEY).unwrap();
    assert_eq!(vkey.name(), "example.com/foo");
    assert_eq!(vkey.key_id(), KeyId([0x53, 0x0d, 0x90, 0x3a]));
    assert_eq!(vkey.key_id().to_string(), "530d903a");
    assert_eq!(vkey.to_string(), SPEC_VKEY.trim_end());
    // The same public key under another name has another ID: the name is hashed in.
    let renamed = format!(
        "example.com/bar+530d903a+{}",
        SPEC_VKEY.trim_end().rsplit('+').next().unwrap()
    );
    assert_eq!(VerifierKey::parse(&renamed), Err(Error::KeyIdMismatch));
}

/// "The following verifier key verifies the following signed note", byte for byte.
#[test]
fn spec_example_note_verifies() {
    let vkey = VerifierKey::parse(SPEC_VKEY).unwrap();
    let note = Note::parse(SPEC_NOTE.as_bytes()).unwrap();
    assert_eq!(note.text, "This is an example message.\n");
    assert_eq!(note.signatures.len(), 1);
    assert_eq!(note.signatures[0].key_id, vkey.key_id());
    assert_eq!(
        note.verify(std::slice::from_ref(&vkey)).unwrap(),
        vec![vkey.clone()]
    );

    let tampered = SPEC_NOTE.replace("example message", "example massage");
    assert_eq!(
        Note::parse(tampered.as_bytes())
            .unwrap()
            .verify(std::slice::from_ref(&vkey)),
        Err(Error::InvalidSignature {
            name: "example.com/foo".into(),
            key_id: vkey.key_id()
        })
    );
}

/// signed-note's introduction: the text itself contains a blank line; the last blank line separates.
#[test]
fn spec_intro_note_splits_at_last_blank_line() {
    let note = Note::parse(SPEC_INTRO_NOTE.as_bytes()).unwrap();
    assert_eq!(
        note.text,
        "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned \u{e8} subito sera.\n"
    );
    assert_eq!(note.signatures.len(), 1);
    assert_eq!(note.signatures[0].name, "quasimodo.example/salvatore");
    assert_eq!(note.signatures[0].blob.len(), 64);
    // Its key is unpublished: with no known key the note is rejected, as the spec requires.
    let other = VerifierKey::parse(SPEC_VKEY).unwrap();
    assert_eq!(note.verify(&[other]), Err(Error::NoKnownSignature));
}

/// tlog-cosignature's example: a checkpoint with a log signature and an Ed25519 witness cosignature whose
/// timestamp is the `time 1679315147` of the spec's signed-message example.
#[test]
fn spec_checkpoint_with_cosignature_parses() {
    let note = Note::parse(SPEC_CHECKPOINT_NOTE.as_bytes()).unwrap();
    let checkpoint = Checkpoint::parse(&note.text).unwrap();
    assert_eq!(checkpoint.origin, "example.com/behind-the-sofa");
    assert_eq!(checkpoint.size, TreeSize(20852163));
    assert_eq!(checkpoint.to_body(), note.text);
    let [log, witness] = note.signatures.as_slice() else {
        panic!("want two signature lines")
    };
    assert_eq!(
        (log.name.as_str(), log.blob.len()),
        ("example.com/behind-the-sofa", 64)
    );
    assert_eq!(
        (witness.name.as_str(), witness.blob.len()),
        ("witness.example.com/w1", 72)
    );
    assert_eq!(witness.key_id.to_string(), "8d66cf3f");
    let timestamp = u64::from_be_bytes(witness.blob[..8].try_into().unwrap());
    assert_eq!(timestamp, 1679315147);
}

/// Go `TestNewSigner`/`TestNewVerifier`/`TestSign`: the private key derives the published verifier key and
/// signs the published note byte for byte (Ed25519 is deterministic).
#[test]
fn go_sign_is_byte_identical() {
    let key = SignerKey::parse_private(PETER_SKEY).unwrap();
    assert_eq!(key.verifier(), VerifierKey::parse(PETER_VKEY).unwrap());
    assert_eq!(key.verifier().to_string(), PETER_VKEY.trim_end());
    assert_eq!(key.to_private_string(), PETER_SKEY.trim_end());
    assert_eq!(key.sign_note(GO_TEXT).unwrap(), GO_SIGN_NOTE);
}

/// Go `TestOpen`: one known and one unknown signer, both known, none known.
#[test]
fn go_open() {
    let peter = VerifierKey::parse(PETER_VKEY).unwrap();
    let enoch = VerifierKey::parse(ENOCH_VKEY).unwrap();
    assert_eq!(enoch.key_id().to_string(), "af0cfe78");
    let note = Note::parse(GO_OPEN_NOTE.as_bytes()).unwrap();
    assert_eq!(note.text, GO_TEXT);
    assert_eq!(
        note.verify(std::slice::from_ref(&peter)).unwrap(),
        vec![peter.clone()]
    );
    assert_eq!(
        note.verify(std::slice::from_ref(&enoch)).unwrap(),
        vec![enoch.clone()]
    );
    assert_eq!(
        note.verify(&[enoch.clone(), peter.clone()]).unwrap(),
        vec![peter.clone(), enoch.clone()]
    );
    assert_eq!(note.verify(&[]), Err(Error::NoKnownSignature));
}

/// Go `TestOpen`'s invalid-signature and malformed-message cases.
#[test]
fn go_open_rejects() {
    let peter = VerifierKey::parse(PETER_VKEY).unwrap();
    let peter_sig = &GO_SIGN_NOTE[GO_TEXT.len() + 1..];

    let invalid = format!("{GO_TEXT}\n{}ABCD{}", &peter_sig[..60], &peter_sig[60..]);
    assert_eq!(
        Note::parse(invalid.as_bytes()).unwrap().verify(&[peter]),
        Err(Error::InvalidSignature {
            name: "PeterNeumann".into(),
            key_id: KeyId([0xc7, 0x4f, 0x20, 0xa3])
        })
    );

    let bad_messages = [
        GO_TEXT.to_owned(),
        format!("{GO_TEXT}\n"),
        format!("{GO_TEXT}\n{}", peter_sig.trim_end()),
        format!("\u{1}{GO_TEXT}\n{peter_sig}"),
        format!(
            "{GO_TEXT}\n\u{2014} Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
        ),
        format!("{GO_TEXT}\n{peter_sig}Unexpected line.\n"),
    ];
    for msg in &bad_messages {
        assert!(Note::parse(msg.as_bytes()).is_err(), "{msg:?}");
    }
    let mut not_utf8 = b"\xff".to_vec();
    not_utf8.extend_from_slice(GO_SIGN_NOTE.as_bytes());
    assert_eq!(Note::parse(&not_utf8), Err(Error::BadUtf8));

    let too_many = format!("{GO_TEXT}\n{}", peter_sig.repeat(101));
    assert_eq!(
        Note::parse(too_many.as_bytes()),
        Err(Error::TooManySignatures)
    );
}

/// transparency-dev/formats `TestCoSigV1NewVerifier`: a `0x01` vkey parses; a native `0x04` cosignature vkey is
/// not a note verifier key and is refused by type.
#[test]
fn transparency_dev_vkeys() {
    let ed =
        VerifierKey::parse("TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6").unwrap();
    assert_eq!(ed.key_id().to_string(), "7997405c");
    assert_eq!(
        VerifierKey::parse("remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"),
        Err(Error::UnsupportedKeyType(0x04))
    );
    // The same material read as a 0x04 key gives the published 0x04 key ID.
    let material = STANDARD
        .decode("BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2")
        .unwrap();
    let public_key: [u8; 32] = material[1..].try_into().unwrap();
    assert_eq!(
        cosignature_key_id("remora.n621.de", &public_key).to_string(),
        "da77ade7"
    );
    for bad in [
        "bananas.sigstore.dev+12344556",
        "rekor.sigstore.dev+12345678+THIS_IS_NOT_BASE64!",
        "rekor.sigstore.dev+12345678+AwEB",
    ] {
        assert!(VerifierKey::parse(bad).is_err(), "{bad}");
    }
}

/// A checkpoint signed the Go way, with no timestamped cosignature, is a valid note but not a tlog signed tree
/// head.
#[test]
fn verify_checkpoint_refuses_notes_without_our_timestamp() {
    let key = SignerKey::parse_private(PETER_SKEY).unwrap();
    let body = "PeterNeumann\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
    let note = key.sign_note(body).unwrap();
    assert_eq!(
        verify_checkpoint(&key.verifier(), note.as_bytes()),
        Err(Error::MissingTimestamp)
    );
}
