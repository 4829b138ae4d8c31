//! Evidence bundles: the format round-trips, a valid bundle verifies, a 10,000-event bundle verifies offline with a
//! proof smaller than its events' single proofs, and no single-byte change to a bundle goes unnoticed.

use std::time::Instant;

use tlog_core::private::private_entry;
use tlog_core::testing::Tree;
use tlog_core::{LeafIndex, TreeSize, inclusion_proof_len, leaf_hash, multi_inclusion_plan};

use super::*;
use crate::evidence::{
    EventKind, EvidenceBundle, EvidenceConsistency, EvidenceError, EvidenceEvent, Opening,
};
use crate::{ClientError, WitnessPolicy, verify_evidence, verify_evidence_bytes};

const SALT: [u8; 32] = [9; 32];

/// Entry `i` of the test logs: every seventh a private entry of subject `user-<i % 3>`, the rest public.
fn log_entry(i: u64) -> Vec<u8> {
    if i % 7 == 3 {
        private_entry(format!("user-{}", i % 3).as_bytes(), &SALT, &payload(i)).unwrap()
    } else {
        format!(r#"{{"action":"read","actor":"user-{}","n":{i}}}"#, i % 5).into_bytes()
    }
}

fn payload(i: u64) -> Vec<u8> {
    format!("private payload {i}").into_bytes()
}

fn tree(size: u64) -> Tree {
    Tree::new((0..size).map(|i| leaf_hash(&log_entry(i))).collect())
}

/// A bundle of `indices` in the tree of `size` (all of `t`), signed with the test key; private entries are
/// opened when `open` says so.
fn bundle(t: &Tree, indices: &[u64], open: impl Fn(u64) -> bool) -> EvidenceBundle {
    let size = t.size();
    let ids: Vec<LeafIndex> = indices.iter().copied().map(LeafIndex).collect();
    let plan = multi_inclusion_plan(&ids, TreeSize(size)).unwrap();
    let multiproof = plan.build(&t.hashes(plan.node_ids())).unwrap();
    EvidenceBundle {
        checkpoint: sign(&signer(), size, t.root(size), 1_700_000_000).note,
        events: indices
            .iter()
            .map(|&i| EvidenceEvent {
                index: LeafIndex(i),
                entry: log_entry(i),
                opening: (i % 7 == 3 && open(i)).then(|| Opening {
                    payload: payload(i),
                    salt: SALT.to_vec(),
                }),
            })
            .collect(),
        multiproof,
        consistency: None,
    }
}

fn small() -> EvidenceBundle {
    // Public, private opened (3), private not opened (10), up to the last leaf.
    bundle(&tree(13), &[0, 3, 5, 10, 12], |i| i == 3)
}

fn verify(b: &EvidenceBundle) -> Result<crate::VerifiedEvidence, ClientError> {
    verify_evidence(&verifier(), &WitnessPolicy::none(), b)
}

#[test]
fn a_bundle_round_trips_through_its_bytes() {
    let b = small();
    let bytes = b.to_bytes();
    assert!(bytes.ends_with(b"}\n"));
    assert_eq!(EvidenceBundle::from_bytes(&bytes).unwrap(), b);
}

#[test]
fn a_valid_bundle_verifies_and_reports_each_event() {
    let v = verify(&small()).unwrap();
    assert_eq!(v.checkpoint.checkpoint.size, TreeSize(13));
    let kinds: Vec<(u64, EventKind)> = v
        .events
        .iter()
        .map(|e| (e.index.0, e.kind.clone()))
        .collect();
    assert_eq!(
        kinds,
        [
            (0, EventKind::Public),
            (
                3,
                EventKind::Private {
                    subject: "user-0".into(),
                    payload: Some(payload(3))
                }
            ),
            (5, EventKind::Public),
            (
                10,
                EventKind::Private {
                    subject: "user-1".into(),
                    payload: None
                }
            ),
            (12, EventKind::Public),
        ]
    );
}

#[test]
fn a_consistency_section_links_to_a_newer_checkpoint() {
    let big = tree(20);
    let mut b = bundle(&tree(13), &[2, 4], |_| false);
    b.consistency = Some(EvidenceConsistency {
        checkpoint: sign(&signer(), 20, big.root(20), 1_700_000_100).note,
        proof: big.consistency(13, 20).unwrap(),
    });
    let v = verify(&b).unwrap();
    assert_eq!(v.newer.map(|n| n.checkpoint.size), Some(TreeSize(20)));

    let c = b.consistency.as_mut().unwrap();
    c.proof[0].0[0] ^= 1;
    assert!(matches!(
        verify(&b),
        Err(ClientError::ConsistencyProofInvalid(_))
    ));
}

#[test]
fn a_wrong_opening_is_rejected() {
    let mut b = small();
    b.events[1].opening.as_mut().unwrap().payload.push(b'!');
    assert!(matches!(
        verify(&b),
        Err(ClientError::BadOpening { index: 3, .. })
    ));
}

#[test]
fn unsorted_events_are_rejected() {
    let mut b = small();
    b.events.swap(0, 1);
    assert!(matches!(
        verify(&b),
        Err(ClientError::MultiProofInvalid(
            tlog_core::VerifyError::UnsortedIndices { .. }
        ))
    ));
}

#[test]
fn another_log_key_is_rejected() {
    let b = small();
    let other = other_signer().verifier();
    assert!(matches!(
        verify_evidence(&other, &WitnessPolicy::none(), &b),
        Err(ClientError::BadCheckpoint(_))
    ));
}

#[test]
fn other_versions_are_refused() {
    let text = String::from_utf8(small().to_bytes()).unwrap();
    let v2 = text.replace(r#""version":1"#, r#""version":2"#);
    assert!(matches!(
        EvidenceBundle::from_bytes(v2.as_bytes()),
        Err(EvidenceError::Version { found: 2 })
    ));
}

#[test]
fn non_canonical_encodings_are_refused() {
    let bytes = small().to_bytes();
    let text = String::from_utf8(bytes.clone()).unwrap();
    let pretty = {
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let mut p = serde_json::to_vec_pretty(&v).unwrap();
        p.push(b'\n');
        p
    };
    let no_newline = &bytes[..bytes.len() - 1];
    let two_newlines = [&bytes[..], b"\n"].concat();
    let upper_hex = text.replacen(
        &small().multiproof[0].to_hex(),
        &small().multiproof[0].to_hex().to_uppercase(),
        1,
    );
    assert_ne!(upper_hex, text);
    for bad in [&pretty[..], no_newline, &two_newlines, upper_hex.as_bytes()] {
        assert!(
            matches!(
                EvidenceBundle::from_bytes(bad),
                Err(EvidenceError::NotCanonical)
            ),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn unknown_members_are_refused() {
    let text = String::from_utf8(small().to_bytes()).unwrap();
    let extra = text.replacen('{', r#"{"comment":"x","#, 1);
    assert!(matches!(
        EvidenceBundle::from_bytes(extra.as_bytes()),
        Err(EvidenceError::Json(_))
    ));
}

/// Every byte of a small bundle, changed to every other value: parsing or verification fails.
#[test]
fn every_single_byte_change_to_a_small_bundle_is_rejected() {
    let bytes = bundle(&tree(6), &[1, 3], |_| true).to_bytes();
    verify_evidence_bytes(&verifier(), &WitnessPolicy::none(), &bytes).unwrap();
    let started = Instant::now();
    let mut tried = 0;
    for at in 0..bytes.len() {
        for value in 0..=255u8 {
            if value == bytes[at] {
                continue;
            }
            let mut changed = bytes.clone();
            changed[at] = value;
            let verdict = verify_evidence_bytes(&verifier(), &WitnessPolicy::none(), &changed);
            assert!(
                verdict.is_err(),
                "byte {at} set to {value:#04x} was accepted:\n{}",
                String::from_utf8_lossy(&changed)
            );
            tried += 1;
        }
    }
    println!(
        "{tried} single-byte changes of a {}-byte bundle, all rejected, in {:?}",
        bytes.len(),
        started.elapsed()
    );
}

/// Splitmix64, for reproducible samples.
fn rng(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// 10,000 events spread over a log of 100,000 entries.
fn big() -> (Tree, Vec<u64>) {
    let t = tree(100_000);
    let mut state = 10_000;
    let mut indices: Vec<u64> = (0..10_000).map(|_| rng(&mut state) % t.size()).collect();
    indices.sort_unstable();
    indices.dedup();
    while indices.len() < 10_000 {
        let i = rng(&mut state) % t.size();
        if let Err(at) = indices.binary_search(&i) {
            indices.insert(at, i);
        }
    }
    (t, indices)
}

#[test]
fn ten_thousand_events_verify_offline_with_one_small_proof() {
    let (t, indices) = big();
    let b = bundle(&t, &indices, |_| true);
    let bytes = b.to_bytes();
    let started = Instant::now();
    let v = verify_evidence_bytes(&verifier(), &WitnessPolicy::none(), &bytes).unwrap();
    let took = started.elapsed();
    assert_eq!(v.events.len(), 10_000);

    let single: usize = indices
        .iter()
        .map(|&i| inclusion_proof_len(LeafIndex(i), TreeSize(t.size())).unwrap())
        .sum();
    assert!(b.multiproof.len() < single);
    println!(
        "10,000 events of 100,000: bundle {} bytes verified in {took:?} (debug builds are slower); multiproof {} \
         hashes against {single} in 10,000 single inclusion proofs: ratio {:.3}",
        bytes.len(),
        b.multiproof.len(),
        b.multiproof.len() as f64 / single as f64
    );
}

/// Sampled single-byte changes of the 10,000-event bundle.
#[test]
fn sampled_byte_changes_to_a_big_bundle_are_rejected() {
    let (t, indices) = big();
    let bytes = bundle(&t, &indices, |_| true).to_bytes();
    let mut state = 99;
    for _ in 0..48 {
        let at = (rng(&mut state) % bytes.len() as u64) as usize;
        let mut changed = bytes.clone();
        changed[at] ^= (rng(&mut state) % 255 + 1) as u8;
        assert!(
            verify_evidence_bytes(&verifier(), &WitnessPolicy::none(), &changed).is_err(),
            "byte {at} changed to {:#04x} was accepted",
            changed[at]
        );
    }
}

#[test]
fn a_leaf_hash_is_what_the_bundle_proves() {
    let v = verify(&small()).unwrap();
    for e in &v.events {
        assert_eq!(e.leaf_hash, leaf_hash(&log_entry(e.index.0)));
    }
}
