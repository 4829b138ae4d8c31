//! Independent references for what tlog publishes, as rs_merkle is for the core: cloudflare/azul's published
//! crates `signed_note` (C2SP signed-note) and `tlog_tiles` (a port of Go's sumdb tile reader, with C2SP
//! checkpoints) read our checkpoints, witness cosignatures and tiles, and must accept them.
//!
//! `signed_note` verifies Ed25519 (`0x01`) signatures itself; it has no `0x04` cosignature verifier, so this file
//! implements its `Verifier` trait for tlog-cosignature v1 from the spec text with `ed25519-dalek` alone (no tlog
//! code in the check).

use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};
use signed_note::{Note, StandardVerifier, Verifier, VerifierList};
use tlog_checkpoint::witness::{CosignerKey, add_cosignatures};
use tlog_checkpoint::{Checkpoint, SignerKey, cosign, sign_checkpoint};
use tlog_core::{Hash, TreeSize};

/// A C2SP tlog-cosignature v1 (type `0x04`) verifier written from the spec: key ID
/// `SHA-256(name || "\n" || 0x04 || key)[:4]`, signature `u64 timestamp || Ed25519 signature` over
/// `cosignature/v1\ntime <t>\n<note text>`.
pub struct CosignatureV1 {
    name: String,
    key: VerifyingKey,
}

impl CosignatureV1 {
    pub fn new(name: &str, public_key: [u8; 32]) -> Self {
        CosignatureV1 {
            name: name.to_owned(),
            key: VerifyingKey::from_bytes(&public_key).unwrap(),
        }
    }
}

impl Verifier for CosignatureV1 {
    fn name(&self) -> &str {
        &self.name
    }

    fn key_id(&self) -> u32 {
        let digest = Sha256::new()
            .chain_update(self.name.as_bytes())
            .chain_update([b'\n', 0x04])
            .chain_update(self.key.as_bytes())
            .finalize();
        u32::from_be_bytes(digest[..4].try_into().unwrap())
    }

    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        let Some((time, sig)) = sig.split_first_chunk::<8>() else {
            return false;
        };
        let Ok(sig) = Signature::from_slice(sig) else {
            return false;
        };
        let mut signed =
            format!("cosignature/v1\ntime {}\n", u64::from_be_bytes(*time)).into_bytes();
        signed.extend_from_slice(msg);
        self.key.verify_strict(&signed, &sig).is_ok()
    }
}

/// Verifies a checkpoint note the way a third-party client using azul would: the log's `0x01` signature, its
/// own timestamp cosignature and each witness's cosignature must all be verified, none unknown.
pub fn azul_verify(
    log: &SignerKey,
    witnesses: &[CosignerKey],
    note: &[u8],
) -> tlog_tiles::Checkpoint {
    let mut verifiers: Vec<Box<dyn Verifier>> = vec![
        Box::new(StandardVerifier::new(&log.verifier().to_string()).unwrap()),
        Box::new(CosignatureV1::new(log.name(), log.public_key())),
    ];
    for w in witnesses {
        verifiers.push(Box::new(CosignatureV1::new(w.name(), w.public_key())));
    }
    let parsed = Note::from_bytes(note).unwrap();
    let (verified, unverified) = parsed.verify(&VerifierList::new(verifiers)).unwrap();
    assert_eq!(
        verified.len(),
        2 + witnesses.len(),
        "every signature verified"
    );
    assert!(unverified.is_empty(), "no signature from an unknown key");
    tlog_tiles::Checkpoint::from_bytes(parsed.text()).unwrap()
}

#[test]
fn a_witnessed_checkpoint_verifies_with_signed_note() {
    let log = SignerKey::from_seed("example.com/azul-check", [5; 32]).unwrap();
    let witnesses: Vec<SignerKey> = (1..=3)
        .map(|n| SignerKey::from_seed(&format!("witness{n}.example"), [n; 32]).unwrap())
        .collect();
    let cp = Checkpoint::new(log.name(), TreeSize(70_000), Hash([9; 32])).unwrap();
    let signed = sign_checkpoint(&log, &cp, 1_700_000_000).unwrap();
    let lines: String = witnesses
        .iter()
        .map(|w| cosign(w, &cp.to_body(), 1_700_000_005).unwrap())
        .collect();
    let note = add_cosignatures(&signed.note, &lines).unwrap();
    let keys: Vec<CosignerKey> = witnesses.iter().map(CosignerKey::of).collect();
    let parsed = azul_verify(&log, &keys, note.as_bytes());
    assert_eq!(parsed.origin(), log.name());
    assert_eq!(parsed.size(), 70_000);
    assert_eq!(parsed.hash().0, [9; 32]);
    // A changed byte of a witness line is refused by the reference too.
    let mut bad = note.clone().into_bytes();
    let at = bad.len() - 3;
    bad[at] = if bad[at] == b'A' { b'B' } else { b'A' };
    let parsed = Note::from_bytes(&bad).unwrap();
    let mut verifiers: Vec<Box<dyn Verifier>> = vec![Box::new(
        StandardVerifier::new(&log.verifier().to_string()).unwrap(),
    )];
    for k in &keys {
        verifiers.push(Box::new(CosignatureV1::new(k.name(), k.public_key())));
    }
    assert!(parsed.verify(&VerifierList::new(verifiers)).is_err());
}
