//! The witness's decision, without I/O: from the latest checkpoint cosigned for an origin and an `add-checkpoint`
//! request, either the spec's refusal or what to do (advance the state, or cosign the same checkpoint again).
//!
//! The checks run in the order tlog-witness "add-checkpoint" lists them, so a request that breaks several rules
//! gets the answer of the first: signature (403), old size beyond the checkpoint (400), old size not the cosigned
//! size (409 with that size), consistency proof (422), same size with another root (409). The origin lookup
//! (404) comes before them and is the caller's: it picks the state to lock.

use tlog_checkpoint::witness::AddCheckpoint;
use tlog_checkpoint::{Checkpoint, Note, VerifierKey};
use tlog_core::{VerifyError, empty_root, verify_consistency};

use crate::error::{Error, Result};

/// A parsed `add-checkpoint` request: nothing about it is verified yet.
#[derive(Clone, Debug)]
pub struct Submission {
    /// The size the client believes the witness cosigned last.
    pub old_size: u64,
    /// Consistency proof from `old_size` to the checkpoint's size.
    pub proof: Vec<tlog_core::Hash>,
    /// The signed note as submitted (kept to be stored).
    pub note: String,
    /// The note split into text and signature lines.
    pub parsed: Note,
    /// The checkpoint the note's text is.
    pub checkpoint: Checkpoint,
}

/// Parses a request body: the `add-checkpoint` framing, then the signed note, then the checkpoint in it. Every
/// failure is [`Error::Malformed`] with what is wrong.
pub fn parse(body: &[u8]) -> Result<Submission> {
    let request =
        AddCheckpoint::parse(body).map_err(|e| Error::Malformed(format!("request body: {e}")))?;
    let note = String::from_utf8(request.checkpoint)
        .map_err(|_| Error::Malformed("checkpoint note is not UTF-8".into()))?;
    let parsed = Note::parse(note.as_bytes())
        .map_err(|e| Error::Malformed(format!("checkpoint note: {e}")))?;
    let checkpoint = Checkpoint::parse(&parsed.text)
        .map_err(|e| Error::Malformed(format!("checkpoint: {e}")))?;
    Ok(Submission {
        old_size: request.old_size,
        proof: request.proof,
        note,
        parsed,
        checkpoint,
    })
}

/// What to do with a request that passed every check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A new latest checkpoint: persist it, then cosign.
    Advance,
    /// The checkpoint already cosigned (same size, same root): cosign it again, store nothing.
    Repeat,
}

/// Decides a request for an origin whose trusted log keys are `keys` and whose latest cosigned checkpoint is
/// `latest` (`None`: never cosigned, which counts as size 0 with the empty tree's root).
pub fn decide(
    keys: &[VerifierKey],
    latest: Option<&Checkpoint>,
    request: &Submission,
) -> Result<Verdict> {
    // Unknown signers are ignored; a trusted key's bad signature rejects the note (signed-note).
    request.parsed.verify(keys).map_err(Error::Forbidden)?;
    let old = request.old_size;
    let size = request.checkpoint.size.0;
    if old > size {
        return Err(Error::OldSizeBeyond { old, size });
    }
    let (latest_size, latest_root) = latest.map_or((0, empty_root()), |c| (c.size.0, c.root));
    if old != latest_size {
        return Err(Error::WrongOldSize {
            old,
            latest: latest_size,
        });
    }
    let root = request.checkpoint.root;
    if old == size {
        // No proof is needed, so any proof is a wrong one (422) before the roots are compared (409).
        if !request.proof.is_empty() {
            return Err(Error::BadProof(VerifyError::WrongProofLength {
                expected: 0,
                actual: request.proof.len(),
            }));
        }
        if root != latest_root {
            return Err(Error::RootConflict { size });
        }
        return Ok(if latest.is_some() {
            Verdict::Repeat
        } else {
            Verdict::Advance
        });
    }
    verify_consistency(
        tlog_core::TreeSize(old),
        tlog_core::TreeSize(size),
        &request.proof,
        &latest_root,
        &root,
    )
    .map_err(Error::BadProof)?;
    Ok(Verdict::Advance)
}

#[cfg(test)]
mod tests {
    use tlog_checkpoint::{SignerKey, witness::AddCheckpoint};
    use tlog_core::{CompactRange, Hash, TreeSize, leaf_hash, node_hash};

    use super::*;

    const ORIGIN: &str = "example.com/log";

    fn log_key() -> SignerKey {
        SignerKey::from_seed(ORIGIN, [7; 32]).unwrap()
    }

    fn root(size: u64) -> Hash {
        let mut range = CompactRange::new();
        range
            .extend((0..size).map(|i| leaf_hash(&i.to_be_bytes())), |_, _| {})
            .unwrap();
        range.root()
    }

    fn checkpoint(size: u64, root: Hash) -> Checkpoint {
        Checkpoint::new(ORIGIN, TreeSize(size), root).unwrap()
    }

    fn request(key: &SignerKey, old: u64, proof: Vec<Hash>, cp: &Checkpoint) -> Submission {
        let note = key.sign_note(&cp.to_body()).unwrap();
        let body = AddCheckpoint {
            old_size: old,
            proof,
            checkpoint: note.into_bytes(),
        }
        .encode();
        parse(&body).unwrap()
    }

    /// The consistency proof from 2 to 4 leaves: the right sibling of the old tree, i.e. node (1, 1).
    fn proof_2_to_4() -> Vec<Hash> {
        let leaf = |i: u64| leaf_hash(&i.to_be_bytes());
        vec![node_hash(&leaf(2), &leaf(3))]
    }

    fn keys() -> Vec<VerifierKey> {
        vec![log_key().verifier()]
    }

    #[test]
    fn a_first_checkpoint_from_zero_advances() {
        let req = request(&log_key(), 0, vec![], &checkpoint(4, root(4)));
        assert_eq!(decide(&keys(), None, &req).unwrap(), Verdict::Advance);
    }

    #[test]
    fn a_consistent_larger_checkpoint_advances() {
        let req = request(&log_key(), 2, proof_2_to_4(), &checkpoint(4, root(4)));
        let latest = checkpoint(2, root(2));
        assert_eq!(
            decide(&keys(), Some(&latest), &req).unwrap(),
            Verdict::Advance
        );
    }

    #[test]
    fn the_same_checkpoint_again_is_a_repeat() {
        let latest = checkpoint(4, root(4));
        let req = request(&log_key(), 4, vec![], &latest);
        assert_eq!(
            decide(&keys(), Some(&latest), &req).unwrap(),
            Verdict::Repeat
        );
    }

    #[test]
    fn only_unknown_signers_are_forbidden() {
        let stranger = SignerKey::from_seed(ORIGIN, [8; 32]).unwrap();
        let req = request(&stranger, 0, vec![], &checkpoint(4, root(4)));
        assert!(matches!(
            decide(&keys(), None, &req),
            Err(Error::Forbidden(tlog_checkpoint::Error::NoKnownSignature))
        ));
    }

    #[test]
    fn a_bad_signature_of_a_trusted_key_is_forbidden() {
        let mut req = request(&log_key(), 0, vec![], &checkpoint(4, root(4)));
        req.parsed.text = checkpoint(5, root(5)).to_body();
        assert!(matches!(
            decide(&keys(), None, &req),
            Err(Error::Forbidden(
                tlog_checkpoint::Error::InvalidSignature { .. }
            ))
        ));
    }

    #[test]
    fn the_signature_is_checked_before_the_sizes() {
        let stranger = SignerKey::from_seed(ORIGIN, [8; 32]).unwrap();
        let req = request(&stranger, 9, vec![], &checkpoint(4, root(4)));
        assert!(matches!(
            decide(&keys(), None, &req),
            Err(Error::Forbidden(_))
        ));
    }

    #[test]
    fn an_old_size_beyond_the_checkpoint_is_refused_before_the_stored_size() {
        let req = request(&log_key(), 5, vec![], &checkpoint(4, root(4)));
        let latest = checkpoint(2, root(2));
        assert!(matches!(
            decide(&keys(), Some(&latest), &req),
            Err(Error::OldSizeBeyond { old: 5, size: 4 })
        ));
    }

    #[test]
    fn a_wrong_old_size_names_the_cosigned_size() {
        let latest = checkpoint(2, root(2));
        let req = request(&log_key(), 0, vec![], &checkpoint(4, root(4)));
        assert!(matches!(
            decide(&keys(), Some(&latest), &req),
            Err(Error::WrongOldSize { old: 0, latest: 2 })
        ));
        let req = request(&log_key(), 2, proof_2_to_4(), &checkpoint(4, root(4)));
        assert!(matches!(
            decide(&keys(), None, &req),
            Err(Error::WrongOldSize { old: 2, latest: 0 })
        ));
    }

    #[test]
    fn a_proof_that_does_not_verify_is_unprocessable() {
        let latest = checkpoint(2, root(2));
        let mut proof = proof_2_to_4();
        proof[0].0[0] ^= 1;
        let req = request(&log_key(), 2, proof, &checkpoint(4, root(4)));
        assert!(matches!(
            decide(&keys(), Some(&latest), &req),
            Err(Error::BadProof(_))
        ));
    }

    #[test]
    fn a_proof_from_zero_must_be_empty() {
        let req = request(&log_key(), 0, proof_2_to_4(), &checkpoint(4, root(4)));
        assert!(matches!(
            decide(&keys(), None, &req),
            Err(Error::BadProof(_))
        ));
    }

    #[test]
    fn a_fork_of_the_cosigned_size_conflicts() {
        let latest = checkpoint(4, root(4));
        let req = request(&log_key(), 4, vec![], &checkpoint(4, Hash([9; 32])));
        assert!(matches!(
            decide(&keys(), Some(&latest), &req),
            Err(Error::RootConflict { size: 4 })
        ));
    }

    #[test]
    fn a_fork_that_grew_fails_its_proof() {
        // Same size 2 history on the witness, a checkpoint of size 4 whose proof is honest for another tree.
        let latest = checkpoint(2, Hash([1; 32]));
        let req = request(&log_key(), 2, proof_2_to_4(), &checkpoint(4, root(4)));
        assert!(matches!(
            decide(&keys(), Some(&latest), &req),
            Err(Error::BadProof(_))
        ));
    }

    #[test]
    fn an_empty_tree_must_have_the_empty_root() {
        let req = request(&log_key(), 0, vec![], &checkpoint(0, Hash([1; 32])));
        assert!(matches!(
            decide(&keys(), None, &req),
            Err(Error::RootConflict { size: 0 })
        ));
        let req = request(&log_key(), 0, vec![], &checkpoint(0, empty_root()));
        assert_eq!(decide(&keys(), None, &req).unwrap(), Verdict::Advance);
    }

    #[test]
    fn malformed_bodies_say_what_is_wrong() {
        let note = log_key()
            .sign_note(&checkpoint(4, root(4)).to_body())
            .unwrap();
        for (body, what) in [
            ("old x\n\n".to_string(), "request body"),
            ("old 0\n\nno signatures\n".to_string(), "checkpoint note"),
            (
                format!(
                    "old 0\n\n{}",
                    log_key().sign_note("not\na checkpoint\n").unwrap()
                ),
                "checkpoint:",
            ),
            (format!("old 0\n{note}"), "request body"),
        ] {
            match parse(body.as_bytes()) {
                Err(Error::Malformed(m)) => assert!(m.starts_with(what), "{m:?} for {body:?}"),
                other => panic!("{other:?} for {body:?}"),
            }
        }
    }
}
