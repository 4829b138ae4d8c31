//! Receipts, trusted state and entry audits, without a server.

use tlog_checkpoint::SignedCheckpoint;
use tlog_core::{CompactRange, Hash, LeafIndex, TreeSize, VerifyError, empty_root, leaf_hash};
use tlog_proto::{FieldRef, ProtoError, v1};

use super::*;
use crate::{ClientError, TrustedLog, verify_entries, verify_receipt};

#[test]
fn valid_receipts_verify_for_every_leaf_and_size() {
    let entries = entries(21);
    let l = leaves(&entries);
    for size in 1..=l.len() {
        for (index, entry) in entries.iter().enumerate().take(size) {
            let r = receipt(&l, index, size);
            let v = verify_receipt(&verifier(), &r, Some(entry)).unwrap();
            assert_eq!(v.index(), LeafIndex(index as u64));
            assert_eq!(v.checkpoint().checkpoint.size, TreeSize(size as u64));
            assert_eq!(v.receipt(), &r);
            // The proof the log computes from stored nodes must equal the RFC's.
            assert!(verify_receipt(&verifier(), &r, None).is_ok());
        }
    }
}

fn assert_inclusion_invalid(r: &Receipt) {
    match verify_receipt(&verifier(), r, None) {
        Err(ClientError::InclusionProofInvalid(_)) => {}
        other => panic!("expected InclusionProofInvalid, got {other:?}"),
    }
}

#[test]
fn tampered_index_is_rejected() {
    let l = leaves(&entries(13));
    let good = receipt(&l, 5, 13);
    for index in [0, 4, 6, 12, 13, 14, u64::MAX] {
        let mut r = good.clone();
        r.index = LeafIndex(index);
        assert_inclusion_invalid(&r);
    }
    let mut r = good;
    r.index = LeafIndex(13);
    assert!(matches!(
        verify_receipt(&verifier(), &r, None),
        Err(ClientError::InclusionProofInvalid(
            VerifyError::IndexOutOfRange {
                index: 13,
                size: 13
            }
        ))
    ));
}

#[test]
fn tampered_leaf_hash_is_rejected() {
    let entries = entries(13);
    let l = leaves(&entries);
    let mut r = receipt(&l, 5, 13);
    r.leaf_hash.0[31] ^= 1;
    assert!(matches!(
        verify_receipt(&verifier(), &r, None),
        Err(ClientError::InclusionProofInvalid(
            VerifyError::RootMismatch { .. }
        ))
    ));
    // With the entry, the mismatch is named before any proof is checked.
    match verify_receipt(&verifier(), &r, Some(&entries[5])) {
        Err(ClientError::LeafHashMismatch {
            entry_hash,
            receipt_hash,
        }) => {
            assert_eq!(entry_hash, l[5]);
            assert_eq!(receipt_hash, r.leaf_hash);
        }
        other => panic!("expected LeafHashMismatch, got {other:?}"),
    }
    // A valid receipt presented for another entry.
    let good = receipt(&l, 5, 13);
    assert!(matches!(
        verify_receipt(&verifier(), &good, Some(&entries[6])),
        Err(ClientError::LeafHashMismatch { .. })
    ));
}

#[test]
fn every_tampered_proof_hash_is_rejected() {
    let l = leaves(&entries(27));
    let good = receipt(&l, 17, 27);
    assert!(!good.inclusion_proof.is_empty());
    for i in 0..good.inclusion_proof.len() {
        for bit in [0, 7] {
            let mut r = good.clone();
            r.inclusion_proof[i].0[i % 32] ^= 1 << bit;
            assert_inclusion_invalid(&r);
        }
    }
    // Swapping two proof hashes is a tamper too.
    let mut r = good;
    r.inclusion_proof.swap(0, 1);
    assert_inclusion_invalid(&r);
}

#[test]
fn wrong_proof_length_is_rejected() {
    let l = leaves(&entries(27));
    let good = receipt(&l, 17, 27);
    let n = good.inclusion_proof.len();
    let mut longer = good.clone();
    longer.inclusion_proof.push(Hash([0; 32]));
    let mut shorter = good.clone();
    shorter.inclusion_proof.pop();
    let mut empty = good;
    empty.inclusion_proof.clear();
    for (r, actual) in [(longer, n + 1), (shorter, n - 1), (empty, 0)] {
        match verify_receipt(&verifier(), &r, None) {
            Err(ClientError::InclusionProofInvalid(VerifyError::WrongProofLength {
                expected,
                actual: a,
            })) => {
                assert_eq!((expected, a), (n, actual));
            }
            other => panic!("expected WrongProofLength, got {other:?}"),
        }
    }
}

#[test]
fn every_tampered_checkpoint_byte_is_rejected() {
    let l = leaves(&entries(9));
    let good = receipt(&l, 3, 9);
    let bytes = good.checkpoint.as_bytes();
    let (mut tampered, mut not_utf8) = (0, 0);
    for i in 0..bytes.len() {
        // The low bit keeps ASCII ASCII (and an em dash's bytes valid UTF-8, of another character); the high bit
        // makes any byte a stray or broken UTF-8 sequence.
        for flip in [0x01, 0x80] {
            let mut b = bytes.to_vec();
            b[i] ^= flip;
            match String::from_utf8(b) {
                Ok(note) => {
                    let mut r = good.clone();
                    r.checkpoint = note;
                    match verify_receipt(&verifier(), &r, None) {
                        Err(ClientError::BadCheckpoint(_)) => tampered += 1,
                        other => {
                            panic!("byte {i} ^ {flip:#x}: expected BadCheckpoint, got {other:?}")
                        }
                    }
                }
                // Only the proto form can carry a note that is not UTF-8: refused there as malformed.
                Err(e) => {
                    let mut wire = wire_receipt(&good);
                    if let Some(cp) = wire.checkpoint.as_mut() {
                        cp.note = e.into_bytes();
                    }
                    match Receipt::try_from(wire) {
                        Err(ClientError::BadField(ProtoError::NotUtf8 { .. })) => not_utf8 += 1,
                        other => panic!("byte {i} ^ {flip:#x}: expected NotUtf8, got {other:?}"),
                    }
                }
            }
        }
    }
    assert!(tampered > 100);
    assert_eq!(
        tampered + not_utf8,
        2 * bytes.len(),
        "every byte tampered both ways"
    );
}

#[test]
fn receipt_checkpoint_from_another_tree_is_rejected() {
    let l = leaves(&entries(9));
    let mut r = receipt(&l, 3, 9);
    // Validly signed, but for a smaller tree: the proof no longer fits.
    r.checkpoint = checkpoint(&l, 8, 5).note;
    assert_inclusion_invalid(&r);
}

/// Roots that are not the root of the first `size` leaves of `l`: a fork's (one leaf rewritten), a smaller and a
/// larger tree's, the next leaf's hash, the empty tree's, and made-up bytes.
fn wrong_roots(l: &[Hash], size: usize) -> Vec<Hash> {
    let mut forked = l[..size].to_vec();
    forked[size / 2] = leaf_hash(b"rewritten history");
    let roots = vec![
        root(&forked),
        root(&l[..size - 1]),
        root(&l[..size + 1]),
        l[size],
        empty_root(),
        Hash([0x5a; 32]),
    ];
    assert!(roots.iter().all(|r| *r != root(&l[..size])));
    roots
}

#[test]
fn a_signed_checkpoint_with_the_wrong_root_fails_the_receipt() {
    let entries = entries(10);
    let l = leaves(&entries);
    // Leaf 3 of 9 (a proof of four hashes) and the only leaf of a tree of one (no proof hashes at all).
    for (index, size) in [(3, 9), (0, 1)] {
        let good = receipt(&l, index, size);
        verify_receipt(&verifier(), &good, Some(&entries[index])).unwrap();
        for wrong in wrong_roots(&l, size) {
            // Signed by the log's own key for the receipt's size: the checkpoint alone verifies.
            let note = sign(&signer(), size as u64, wrong, 1_700_000_000).note;
            let cp = TrustedLog::new(verifier())
                .verify_checkpoint(note.as_bytes())
                .unwrap();
            assert_eq!(cp.checkpoint.root, wrong);
            let mut r = good.clone();
            r.checkpoint = note;
            for entry in [None, Some(&entries[index][..])] {
                match verify_receipt(&verifier(), &r, entry) {
                    Err(ClientError::InclusionProofInvalid(VerifyError::RootMismatch {
                        computed,
                        expected,
                    })) => {
                        assert_eq!((computed, expected), (root(&l[..size]), wrong));
                    }
                    other => panic!("{index} of {size}, root {wrong}: {other:?}"),
                }
            }
        }
    }
}

#[test]
fn a_signed_checkpoint_with_the_wrong_root_fails_consistency() {
    let l = leaves(&entries(20));
    // The newer checkpoint lies: the genuine proof from the trusted tree does not lead to its root.
    for old in [7, 8] {
        let proof = consistency_proof(old, &l[..19]);
        for wrong in wrong_roots(&l, 19) {
            let mut t = trusted_at(&l, old);
            let before = t.clone();
            match t.advance(sign(&signer(), 19, wrong, 11), &proof) {
                Err(ClientError::ConsistencyProofInvalid(VerifyError::SecondRootMismatch {
                    computed,
                    expected,
                })) => assert_eq!((computed, expected), (root(&l[..19]), wrong)),
                other => panic!("{old} -> 19, root {wrong}: {other:?}"),
            }
            assert_eq!(t, before, "state changed");
        }
    }
    // The trusted checkpoint lied (trusted on first use): the genuine proof to the genuine newer tree fails.
    // From 7 the proof rebuilds the old root itself; from 8, a complete subtree, the proof starts from the trusted
    // root, so the lie shows at the newer root.
    for (old, first) in [(7, true), (8, false)] {
        let proof = consistency_proof(old, &l[..19]);
        for wrong in wrong_roots(&l, old) {
            let mut t = TrustedLog::new(verifier());
            t.advance(sign(&signer(), old as u64, wrong, 10), &[])
                .unwrap();
            let before = t.clone();
            match t.advance(checkpoint(&l, 19, 11), &proof) {
                Err(ClientError::ConsistencyProofInvalid(VerifyError::FirstRootMismatch {
                    computed,
                    expected,
                })) if first => assert_eq!((computed, expected), (root(&l[..old]), wrong)),
                Err(ClientError::ConsistencyProofInvalid(VerifyError::SecondRootMismatch {
                    expected,
                    ..
                })) if !first => assert_eq!(expected, root(&l[..19])),
                other => panic!("{old} -> 19, trusted root {wrong}: {other:?}"),
            }
            assert_eq!(t, before, "state changed");
        }
    }
}

#[test]
fn wrong_key_is_rejected() {
    let l = leaves(&entries(9));
    let mut r = receipt(&l, 3, 9);
    r.checkpoint = sign(&other_signer(), 9, root(&l), 5).note;
    match verify_receipt(&verifier(), &r, None) {
        Err(ClientError::BadCheckpoint(tlog_checkpoint::Error::NoKnownSignature)) => {}
        other => panic!("expected BadCheckpoint(NoKnownSignature), got {other:?}"),
    }
    // The right note checked with another key fails the same way.
    let good = receipt(&l, 3, 9);
    assert!(matches!(
        verify_receipt(&other_signer().verifier(), &good, None),
        Err(ClientError::BadCheckpoint(_))
    ));
}

#[test]
fn empty_tree_checkpoint_must_have_the_empty_root() {
    let bad = sign(&signer(), 0, Hash([1; 32]), 5);
    let trusted = TrustedLog::new(verifier());
    match trusted.verify_checkpoint(bad.note.as_bytes()) {
        Err(ClientError::EmptyTreeRoot { root }) => assert_eq!(root, Hash([1; 32])),
        other => panic!("expected EmptyTreeRoot, got {other:?}"),
    }
    let good = sign(&signer(), 0, empty_root(), 5);
    assert!(trusted.verify_checkpoint(good.note.as_bytes()).is_ok());
}

#[test]
fn receipt_json_round_trip() {
    let l = leaves(&entries(9));
    let mut r = receipt(&l, 3, 9);
    r.duplicate = true;
    let json = serde_json::to_string(&r).unwrap();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["index"], 3);
    assert_eq!(value["leaf_hash"], l[3].to_hex());
    assert_eq!(value["checkpoint"], r.checkpoint.as_str());
    assert_eq!(value["inclusion_proof"][0], r.inclusion_proof[0].to_hex());
    assert_eq!(value["duplicate"], true);
    assert_eq!(serde_json::from_str::<Receipt>(&json).unwrap(), r);

    let mut value = value;
    value["inclusion_proof"][1] = "zz".into();
    let err = serde_json::from_value::<Receipt>(value).unwrap_err();
    assert!(err.to_string().contains("inclusion_proof[1]"), "{err}");
}

fn wire_receipt(r: &Receipt) -> v1::Receipt {
    let sc = verify_receipt(&verifier(), r, None)
        .unwrap()
        .checkpoint()
        .clone();
    v1::Receipt {
        index: r.index.0,
        leaf_hash: r.leaf_hash.0.to_vec(),
        checkpoint: Some(v1::SignedCheckpoint {
            note: r.checkpoint.clone().into_bytes(),
            size: sc.checkpoint.size.0,
            root_hash: sc.checkpoint.root.0.to_vec(),
            timestamp_unix: sc.timestamp,
            archived_size: 0,
        }),
        inclusion_proof: r.inclusion_proof.iter().map(|h| h.0.to_vec()).collect(),
        duplicate: r.duplicate,
    }
}

#[test]
fn receipt_from_proto() {
    let l = leaves(&entries(9));
    let r = receipt(&l, 3, 9);
    assert_eq!(Receipt::try_from(wire_receipt(&r)).unwrap(), r);

    let mut short = wire_receipt(&r);
    short.inclusion_proof[2].pop();
    match Receipt::try_from(short) {
        Err(ClientError::BadField(e)) => {
            assert_eq!(
                e.to_string(),
                "inclusion_proof[2]: expected 32 bytes, got 31"
            )
        }
        other => panic!("expected BadField, got {other:?}"),
    }
    let mut missing = wire_receipt(&r);
    missing.checkpoint = None;
    assert!(matches!(
        Receipt::try_from(missing),
        Err(ClientError::BadField(ProtoError::Missing {
            field: FieldRef {
                name: "checkpoint",
                ..
            }
        }))
    ));
    let mut not_utf8 = wire_receipt(&r);
    if let Some(cp) = not_utf8.checkpoint.as_mut() {
        cp.note[0] = 0xff;
    }
    assert!(matches!(
        Receipt::try_from(not_utf8),
        Err(ClientError::BadField(ProtoError::NotUtf8 { .. }))
    ));
}

/// A trusted log at the tree of the first `size` leaves.
fn trusted_at(l: &[Hash], size: usize) -> TrustedLog {
    let mut t = TrustedLog::new(verifier());
    t.advance(checkpoint(l, size, 10), &[]).unwrap();
    t
}

#[test]
fn trust_on_first_use_then_consistency_proofs() {
    let l = leaves(&entries(40));
    let mut t = TrustedLog::new(verifier());
    assert_eq!(t.latest(), None);
    assert_eq!((t.size(), t.root()), (TreeSize(0), empty_root()));
    // First use: no proof exists from the empty tree, so one must not be offered.
    let first = checkpoint(&l, 3, 10);
    match t.advance(first.clone(), &[Hash([0; 32])]) {
        Err(ClientError::ConsistencyProofInvalid(VerifyError::WrongProofLength {
            expected: 0,
            actual: 1,
        })) => {}
        other => panic!("expected WrongProofLength, got {other:?}"),
    }
    t.advance(first.clone(), &[]).unwrap();
    assert_eq!(t.latest(), Some(&first));
    for (ts, size) in (11..).zip([3, 4, 5, 8, 9, 16, 17, 31, 32, 33, 40]) {
        let proof = consistency_proof(t.size().0 as usize, &l[..size]);
        let next = checkpoint(&l, size, ts);
        t.advance(next.clone(), &proof).unwrap();
        assert_eq!(t.latest(), Some(&next));
    }
}

#[test]
fn consistency_from_every_size_to_every_size() {
    let l = leaves(&entries(20));
    for m in 1..=l.len() {
        for n in m..=l.len() {
            let mut t = trusted_at(&l, m);
            t.advance(checkpoint(&l, n, 11), &consistency_proof(m, &l[..n]))
                .unwrap_or_else(|e| panic!("{m} -> {n}: {e}"));
        }
    }
}

#[test]
fn tampered_consistency_proof_is_rejected_and_state_kept() {
    let l = leaves(&entries(20));
    let proof = consistency_proof(7, &l[..19]);
    for i in 0..proof.len() {
        let mut t = trusted_at(&l, 7);
        let before = t.clone();
        let mut bad = proof.clone();
        bad[i].0[0] ^= 1;
        assert!(matches!(
            t.advance(checkpoint(&l, 19, 11), &bad),
            Err(ClientError::ConsistencyProofInvalid(_))
        ));
        assert_eq!(t, before);
    }
    let mut t = trusted_at(&l, 7);
    assert!(matches!(
        t.advance(checkpoint(&l, 19, 11), &proof[1..]),
        Err(ClientError::ConsistencyProofInvalid(
            VerifyError::WrongProofLength { .. }
        ))
    ));
}

#[test]
fn fork_at_the_same_size_is_detected() {
    let l = leaves(&entries(10));
    let mut forked = l.clone();
    forked[4] = leaf_hash(b"rewritten history");
    let mut t = trusted_at(&l, 10);
    // Validly signed by the same key: only the trusted state can tell.
    let evil = checkpoint(&forked, 10, 99);
    match t.advance(evil, &[]) {
        Err(ClientError::Fork {
            size,
            trusted_root,
            new_root,
        }) => {
            assert_eq!(size, TreeSize(10));
            assert_eq!(trusted_root, root(&l));
            assert_eq!(new_root, root(&forked));
            let msg = ClientError::Fork {
                size,
                trusted_root,
                new_root,
            }
            .to_string();
            assert!(
                msg.contains(&trusted_root.to_hex()) && msg.contains(&new_root.to_hex()),
                "{msg}"
            );
        }
        other => panic!("expected Fork, got {other:?}"),
    }
    assert_eq!(t.root(), root(&l));
    // A larger forked tree is caught by its consistency proof.
    let mut more = forked.clone();
    more.push(leaf_hash(b"more"));
    assert!(matches!(
        t.advance(checkpoint(&more, 11, 100), &consistency_proof(10, &more)),
        Err(ClientError::ConsistencyProofInvalid(
            VerifyError::FirstRootMismatch { .. }
        ))
    ));
}

#[test]
fn rollback_is_refused() {
    let l = leaves(&entries(10));
    let mut t = trusted_at(&l, 10);
    match t.advance(checkpoint(&l, 9, 11), &[]) {
        Err(ClientError::CheckpointOlderThanTrusted {
            trusted_size,
            new_size,
        }) => {
            assert_eq!((trusted_size, new_size), (TreeSize(10), TreeSize(9)));
        }
        other => panic!("expected CheckpointOlderThanTrusted, got {other:?}"),
    }
    assert_eq!(
        ClientError::CheckpointOlderThanTrusted {
            trusted_size: TreeSize(10),
            new_size: TreeSize(9)
        }
        .to_string(),
        "checkpoint older than trusted: size 9 < trusted size 10"
    );
}

#[test]
fn same_tree_keeps_the_latest_timestamp() {
    let l = leaves(&entries(10));
    let mut t = TrustedLog::new(verifier());
    let newer = checkpoint(&l, 10, 20);
    t.advance(newer.clone(), &[]).unwrap();
    t.advance(checkpoint(&l, 10, 15), &[]).unwrap();
    assert_eq!(t.latest(), Some(&newer));
    let newest = checkpoint(&l, 10, 25);
    t.advance(newest.clone(), &[]).unwrap();
    assert_eq!(t.latest(), Some(&newest));
    assert!(matches!(
        t.advance(checkpoint(&l, 10, 30), &[Hash([0; 32])]),
        Err(ClientError::ConsistencyProofInvalid(
            VerifyError::WrongProofLength { .. }
        ))
    ));
}

#[test]
fn advance_reverifies_the_note() {
    let l = leaves(&entries(10));
    let mut t = trusted_at(&l, 5);
    // A hand-edited checkpoint whose fields disagree with its signed note.
    let mut forged: SignedCheckpoint = checkpoint(&l, 6, 11);
    forged.checkpoint.size = TreeSize(10);
    forged.checkpoint.root = root(&l);
    assert!(matches!(
        t.advance(forged, &consistency_proof(5, &l)),
        Err(ClientError::CheckpointFieldMismatch { .. })
    ));
    let foreign = sign(&other_signer(), 10, root(&l), 11);
    assert!(matches!(
        t.advance(foreign, &consistency_proof(5, &l)),
        Err(ClientError::BadCheckpoint(_))
    ));
}

#[test]
fn state_file_round_trips_and_is_reverified() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let l = leaves(&entries(10));

    let fresh = TrustedLog::load_or_new(&path, verifier()).unwrap();
    assert_eq!(fresh.latest(), None);
    assert!(matches!(
        TrustedLog::load(&path, verifier()),
        Err(ClientError::StateFileIo { .. })
    ));
    fresh.save(&path).unwrap();
    assert_eq!(TrustedLog::load(&path, verifier()).unwrap(), fresh);

    let t = trusted_at(&l, 7);
    t.save(&path).unwrap();
    assert_eq!(TrustedLog::load(&path, verifier()).unwrap(), t);
    assert_eq!(TrustedLog::load_or_new(&path, verifier()).unwrap(), t);
    // Only the state file is left behind.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("state.json")]);

    // Another log's key.
    let other = other_signer().verifier();
    match TrustedLog::load(&path, other) {
        Err(ClientError::StateFileInvalid { source, .. }) => {
            assert!(matches!(*source, ClientError::KeyMismatch { .. }))
        }
        other => panic!("expected StateFileInvalid, got {other:?}"),
    }

    // A tampered note on disk is not trusted.
    let text = std::fs::read_to_string(&path).unwrap();
    let size_line = "\\n7\\n";
    assert!(text.contains(size_line), "{text}");
    std::fs::write(&path, text.replace(size_line, "\\n8\\n")).unwrap();
    match TrustedLog::load(&path, verifier()) {
        Err(ClientError::StateFileInvalid { source, .. }) => {
            assert!(matches!(*source, ClientError::BadCheckpoint(_)))
        }
        other => panic!("expected StateFileInvalid, got {other:?}"),
    }

    std::fs::write(&path, "not json").unwrap();
    assert!(matches!(
        TrustedLog::load(&path, verifier()),
        Err(ClientError::StateFileFormat { .. })
    ));
}

#[test]
fn entries_rebuild_the_checkpoint_root() {
    let entries = entries(30);
    let l = leaves(&entries);
    let cp10 = checkpoint(&l, 10, 1).checkpoint;
    let cp30 = checkpoint(&l, 30, 2).checkpoint;
    let frontier = verify_entries(&CompactRange::new(), &entries[..10], &cp10).unwrap();
    assert_eq!(frontier.size(), TreeSize(10));
    let frontier = verify_entries(&frontier, &entries[10..], &cp30).unwrap();
    assert_eq!(frontier.root(), root(&l));

    let mut altered = entries.clone();
    altered[12] = b"altered".to_vec();
    let from10 = verify_entries(&CompactRange::new(), &entries[..10], &cp10).unwrap();
    assert!(matches!(
        verify_entries(&from10, &altered[10..], &cp30),
        Err(ClientError::EntriesRootMismatch {
            size: TreeSize(30),
            ..
        })
    ));
    match verify_entries(&from10, &entries[10..29], &cp30) {
        Err(ClientError::EntryCountMismatch {
            expected: 20,
            got: 19,
        }) => {}
        other => panic!("expected EntryCountMismatch, got {other:?}"),
    }
    assert!(matches!(
        verify_entries(&CompactRange::new(), &entries[..30], &cp10),
        Err(ClientError::EntryCountMismatch { .. })
    ));
}

#[test]
fn batch_receipts_take_the_answers_checkpoint_unless_they_have_their_own() {
    let note = |n: &str| v1::SignedCheckpoint {
        note: n.as_bytes().to_vec(),
        ..Default::default()
    };
    let receipt = |checkpoint| v1::Receipt {
        checkpoint,
        ..Default::default()
    };
    let answer = v1::SubmitBatchResponse {
        receipts: vec![receipt(None), receipt(Some(note("own"))), receipt(None)],
        client_tag: 0,
        checkpoint: Some(note("shared")),
        multiproof: None,
    };
    let notes: Vec<_> = crate::batch_receipts(answer)
        .unwrap()
        .into_iter()
        .map(|r| r.checkpoint.map(|c| c.note))
        .collect();
    assert_eq!(
        notes,
        [
            Some(b"shared".to_vec()),
            Some(b"own".to_vec()),
            Some(b"shared".to_vec())
        ]
    );
    // No checkpoint anywhere: the receipt stays without one, and converting it says what is missing.
    let bare = crate::batch_receipts(v1::SubmitBatchResponse {
        receipts: vec![receipt(None)],
        ..Default::default()
    })
    .unwrap();
    assert!(matches!(
        Receipt::try_from(bare[0].clone()),
        Err(ClientError::BadField(ProtoError::Missing { .. }))
    ));
}

/// A batch answer with one multiproof for receipts 2, 3 (twice: an entry sent twice) and 9 of a 13-leaf tree.
fn multiproof_answer() -> (Vec<Vec<u8>>, v1::SubmitBatchResponse) {
    let entries = entries(13);
    let l = leaves(&entries);
    let tree = tlog_core::testing::Tree::new(l.clone());
    let indices: Vec<LeafIndex> = [2, 3, 9].map(LeafIndex).to_vec();
    let plan = tlog_core::multi_inclusion_plan(&indices, TreeSize(13)).unwrap();
    let hashes = plan.build(&tree.hashes(plan.node_ids())).unwrap();
    let receipts = [2usize, 3, 3, 9]
        .iter()
        .map(|&i| v1::Receipt {
            index: i as u64,
            leaf_hash: l[i].0.to_vec(),
            ..Default::default()
        })
        .collect();
    let answer = v1::SubmitBatchResponse {
        receipts,
        client_tag: 0,
        checkpoint: Some(v1::SignedCheckpoint {
            note: checkpoint(&l, 13, 1_700_000_000).note.into_bytes(),
            ..Default::default()
        }),
        multiproof: Some(v1::MultiProof {
            tree_size: 13,
            hashes: tlog_proto::hashes_to_bytes(&hashes),
            checkpoint: None,
        }),
    };
    (entries, answer)
}

#[test]
fn batch_receipts_expand_the_answers_multiproof_into_each_receipts_proof() {
    let (entries, answer) = multiproof_answer();
    let l = leaves(&entries);
    let receipts = crate::batch_receipts(answer).unwrap();
    assert_eq!(receipts.len(), 4);
    for wire in receipts {
        let index = wire.index as usize;
        let r = Receipt::try_from(wire).unwrap();
        assert_eq!(r.inclusion_proof, inclusion_proof(index, &l));
        verify_receipt(&verifier(), &r, Some(&entries[index])).unwrap();
    }
}

#[test]
fn batch_receipts_refuse_a_multiproof_that_does_not_fit_or_leads_elsewhere() {
    let (_, mut short) = multiproof_answer();
    short.multiproof.as_mut().unwrap().hashes.pop();
    assert!(matches!(
        crate::batch_receipts(short),
        Err(ClientError::MultiProofInvalid(
            VerifyError::WrongProofLength { .. }
        ))
    ));
    // Two receipts for one index that disagree on its leaf hash.
    let (_, mut split) = multiproof_answer();
    split.receipts[2].leaf_hash[0] ^= 1;
    assert!(matches!(
        crate::batch_receipts(split),
        Err(ClientError::LeafHashMismatch { .. })
    ));
    // A tampered hash expands, but every receipt it reaches then fails verification.
    let (_, mut tampered) = multiproof_answer();
    tampered.multiproof.as_mut().unwrap().hashes[0][0] ^= 1;
    let receipts = crate::batch_receipts(tampered).unwrap();
    assert!(receipts.into_iter().any(|wire| {
        let r = Receipt::try_from(wire).unwrap();
        matches!(
            verify_receipt(&verifier(), &r, None),
            Err(ClientError::InclusionProofInvalid(_))
        )
    }));
}
