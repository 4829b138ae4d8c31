//! Multiproofs against two references: the naive RFC 9162 tree (every range's `MTH` computed from the leaves), and
//! `rs_merkle` (1.5), whose multi-leaf proofs over an RFC 6962 hasher must prove the same leaves with the same
//! hashes.
//!
//! rs_merkle's tree is the RFC 9162 tree (see tests/rs_merkle.rs). Its multiproof lists the missing siblings level
//! by level, bottom-up, left to right within a level; ours lists the same nodes left to right by position. So the
//! two proofs hold the same hashes in different orders: compared as sorted lists.

use std::collections::HashMap;
use std::sync::OnceLock;

use proptest::prelude::*;
mod common;

use common::Rfc9162;
use rs_merkle::{MerkleProof, MerkleTree};
use tlog_core::testing::reference::{Rfc, split};
use tlog_core::testing::{SplitMix64, Tree};
use tlog_core::{
    CompactRange, Hash, LeafIndex, NodeId, TreeSize, VerifyError, inclusion_proofs_from_multi,
    leaf_hash, multi_inclusion_plan, multi_inclusion_proof_len, root_from_multi_inclusion_proof,
    root_plan, verify_multi_inclusion,
};

const MAX_SIZE: u64 = 2048;

fn tree() -> &'static Tree {
    static TREE: OnceLock<Tree> = OnceLock::new();
    TREE.get_or_init(|| Tree::new((0..MAX_SIZE).map(|i| leaf_hash(&i.to_le_bytes())).collect()))
}

thread_local! {
    // The reference memoises `MTH` in a `RefCell`: one per test thread.
    static RFC: Rfc = Rfc::new(tree().leaves.iter().map(|h| h.0).collect());
}

/// Our proof of `indices` in the tree of `size`, built from the test tree's stored nodes through the plan.
fn multiproof(t: &Tree, indices: &[u64], size: u64) -> Vec<Hash> {
    let indices: Vec<LeafIndex> = indices.iter().copied().map(LeafIndex).collect();
    let plan = multi_inclusion_plan(&indices, TreeSize(size)).unwrap();
    plan.build(&t.hashes(plan.node_ids())).unwrap()
}

fn proven(t: &Tree, indices: &[u64]) -> Vec<(LeafIndex, Hash)> {
    indices
        .iter()
        .map(|&i| (LeafIndex(i), t.leaves[i as usize]))
        .collect()
}

/// The naive proof: walk every range of the whole RFC 9162 tree; a range is in the proof when none of `indices`
/// is in it but one is in its parent. Hashes from the reference's recursive `MTH`, ranges in position order.
fn naive_proof(rfc: &Rfc, indices: &[u64], size: usize) -> Vec<Hash> {
    /// A range `[lo, hi)` and its parent range.
    type Range = (usize, usize, Option<(usize, usize)>);
    fn all_ranges(lo: usize, hi: usize, parent: Option<(usize, usize)>, out: &mut Vec<Range>) {
        out.push((lo, hi, parent));
        if hi - lo > 1 {
            let k = split(hi - lo);
            all_ranges(lo, lo + k, Some((lo, hi)), out);
            all_ranges(lo + k, hi, Some((lo, hi)), out);
        }
    }
    let holds = |(lo, hi): (usize, usize)| {
        indices
            .iter()
            .any(|&i| lo <= i as usize && (i as usize) < hi)
    };
    let mut ranges = Vec::new();
    all_ranges(0, size, None, &mut ranges);
    let mut proof: Vec<(usize, Hash)> = ranges
        .into_iter()
        .filter(|&(lo, hi, parent)| !holds((lo, hi)) && parent.is_some_and(holds))
        .map(|(lo, hi, _)| (lo, Hash(rfc.mth(lo, hi))))
        .collect();
    proof.sort_by_key(|&(lo, _)| lo);
    proof.into_iter().map(|(_, h)| h).collect()
}

fn size_and_indices() -> impl Strategy<Value = (u64, Vec<u64>)> {
    (1..=MAX_SIZE).prop_flat_map(|size| {
        let max = (size as usize).min(64);
        (
            Just(size),
            prop::collection::btree_set(0..size, 1..=max).prop_map(|s| s.into_iter().collect()),
        )
    })
}

fn flip(proof: &[Hash], i: usize, bit: usize) -> Vec<Hash> {
    let mut p = proof.to_vec();
    p[i].0[bit / 8] ^= 1 << (bit % 8);
    p
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn proofs_match_the_naive_tree_and_verify((size, indices) in size_and_indices()) {
        let t = tree();
        let proof = multiproof(t, &indices, size);
        let (naive, root) = RFC.with(|rfc| (naive_proof(rfc, &indices, size as usize), Hash(rfc.mth(0, size as usize))));
        prop_assert_eq!(&proof, &naive);
        let ids: Vec<LeafIndex> = indices.iter().copied().map(LeafIndex).collect();
        prop_assert_eq!(multi_inclusion_proof_len(&ids, TreeSize(size)), Ok(proof.len()));
        prop_assert_eq!(verify_multi_inclusion(TreeSize(size), &proven(t, &indices), &proof, &root), Ok(()));
    }

    #[test]
    fn expanded_proofs_are_each_leafs_inclusion_proof((size, indices) in size_and_indices()) {
        let t = tree();
        let proof = multiproof(t, &indices, size);
        let expanded = inclusion_proofs_from_multi(TreeSize(size), &proven(t, &indices), &proof).unwrap();
        let naive: Vec<Vec<Hash>> = indices.iter().map(|&i| t.inclusion(i, size).unwrap()).collect();
        prop_assert_eq!(expanded, naive);
    }

    #[test]
    fn expansion_checks_what_the_fold_checks(
        (size, indices) in size_and_indices(),
        garbage in any::<[u8; 32]>().prop_map(Hash),
    ) {
        let t = tree();
        let proof = multiproof(t, &indices, size);
        let leaves = proven(t, &indices);
        let mut longer = proof.clone();
        longer.push(garbage);
        prop_assert_eq!(
            inclusion_proofs_from_multi(TreeSize(size), &leaves, &longer),
            Err(VerifyError::WrongProofLength { expected: proof.len(), actual: proof.len() + 1 })
        );
        let mut reversed = leaves.clone();
        reversed.reverse();
        if reversed.len() > 1 {
            prop_assert!(inclusion_proofs_from_multi(TreeSize(size), &reversed, &proof).is_err());
        }
    }

    #[test]
    fn tampered_multiproofs_fail(
        (size, indices) in size_and_indices(),
        at in any::<prop::sample::Index>(),
        bit in 0..256usize,
        garbage in any::<[u8; 32]>().prop_map(Hash),
    ) {
        let t = tree();
        let proof = multiproof(t, &indices, size);
        let leaves = proven(t, &indices);
        let root = t.root(size);
        let ok = |leaves: &[(LeafIndex, Hash)], proof: &[Hash], root: &Hash| {
            verify_multi_inclusion(TreeSize(size), leaves, proof, root).is_ok()
        };
        if !proof.is_empty() {
            prop_assert!(!ok(&leaves, &flip(&proof, at.index(proof.len()), bit), &root));
            prop_assert!(!ok(&leaves, &proof[1..], &root));
        }
        let mut longer = proof.clone();
        longer.insert(at.index(proof.len() + 1), garbage);
        prop_assert_eq!(
            verify_multi_inclusion(TreeSize(size), &leaves, &longer, &root),
            Err(VerifyError::WrongProofLength { expected: proof.len(), actual: proof.len() + 1 })
        );
        let mut wrong_leaf = leaves.clone();
        let i = at.index(leaves.len());
        wrong_leaf[i].1.0[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(!ok(&wrong_leaf, &proof, &root));
        prop_assert!(!ok(&leaves, &proof, &garbage));
        // Another leaf's index with the same hash: the hash is bound to its position.
        let mut moved = leaves.clone();
        let j = moved[i].0.0 ^ 1;
        if j < size && !indices.contains(&j) {
            moved[i].0 = LeafIndex(j);
            moved.sort_by_key(|(index, _)| *index);
            if moved.len() == leaves.len() && multi_inclusion_proof_len(&moved.iter().map(|l| l.0).collect::<Vec<_>>(), TreeSize(size)) == Ok(proof.len()) {
                prop_assert!(!ok(&moved, &proof, &root));
            }
        }
    }

    #[test]
    fn nothing_panics(
        size in any::<u64>(),
        indices in prop::collection::vec(any::<u64>(), 0..8),
        len in 0..200usize,
    ) {
        let leaves: Vec<(LeafIndex, Hash)> = indices.iter().map(|&i| (LeafIndex(i), Hash([7; 32]))).collect();
        let _ = root_from_multi_inclusion_proof(TreeSize(size), &leaves, &vec![Hash([1; 32]); len]);
        let _ = inclusion_proofs_from_multi(TreeSize(size), &leaves, &vec![Hash([1; 32]); len.min(70)]);
        let ids: Vec<LeafIndex> = indices.iter().copied().map(LeafIndex).collect();
        let _ = multi_inclusion_plan(&ids, TreeSize(size));
        let _ = multi_inclusion_proof_len(&ids, TreeSize(size));
    }
}

#[test]
fn a_single_leaf_multiproof_holds_its_inclusion_proof() {
    let t = tree();
    for size in 1..=70 {
        for index in 0..size {
            let mut multi = multiproof(t, &[index], size);
            let mut single = t.inclusion(index, size).unwrap();
            multi.sort();
            single.sort();
            assert_eq!(multi, single, "{index} of {size}");
        }
    }
}

/// Random index sets for the cross-checks.
trait Indices {
    /// About `count` distinct increasing indices below `size`, sometimes as one contiguous run.
    fn indices(&mut self, size: u64, count: u64) -> Vec<u64>;
}

impl Indices for SplitMix64 {
    fn indices(&mut self, size: u64, count: u64) -> Vec<u64> {
        let mut v: Vec<u64> = if self.below(4) == 0 {
            let start = self.below(size);
            (start..size.min(start + count)).collect()
        } else {
            (0..count).map(|_| self.below(size)).collect()
        };
        v.sort_unstable();
        v.dedup();
        v
    }
}

#[test]
fn multiproofs_match_rs_merkle_up_to_100k_leaves() {
    const LARGEST: u64 = 100_000;
    let leaves: Vec<Hash> = (0..LARGEST).map(|i| leaf_hash(&i.to_le_bytes())).collect();
    // Every node of the largest tree, from CompactRange (a testing::Tree would also keep 100,000 roots).
    let mut nodes = HashMap::new();
    CompactRange::new()
        .extend(leaves.iter().copied(), |id, h| {
            nodes.insert(id, h);
        })
        .unwrap();
    let hashes = |ids: &[NodeId]| ids.iter().map(|id| nodes[id]).collect::<Vec<Hash>>();
    let raw: Vec<[u8; 32]> = leaves.iter().map(|h| h.0).collect();
    let mut rng = SplitMix64(15);
    // Edges (1, powers of two and their neighbours, the largest) and random sizes in between. rs_merkle builds a
    // whole tree per size and its proofs are quadratic in the number of leaves proven: sizes and sets are sampled.
    let mut sizes = vec![
        1, 2, 3, 5, 7, 8, 9, 255, 256, 257, 65_535, 65_536, 65_537, 99_999, LARGEST,
    ];
    sizes.extend((0..5).map(|_| 1 + rng.below(LARGEST)));
    sizes.extend((0..12).map(|_| 1 + rng.below(1000)));
    let mut compared = 0;
    for size in sizes {
        let theirs = MerkleTree::<Rfc9162>::from_leaves(&raw[..size as usize]);
        let plan = root_plan(TreeSize(size));
        let root = plan.build(&hashes(plan.node_ids())).unwrap()[0];
        assert_eq!(theirs.root().map(Hash), Some(root), "root of {size}");
        for count in [1, 2, 3, 10, 100, 500] {
            let indices = rng.indices(size, count);
            let ids: Vec<LeafIndex> = indices.iter().copied().map(LeafIndex).collect();
            let plan = multi_inclusion_plan(&ids, TreeSize(size)).unwrap();
            let proof = plan.build(&hashes(plan.node_ids())).unwrap();
            let usize_indices: Vec<usize> = indices.iter().map(|&i| i as usize).collect();
            let leaf_hashes: Vec<[u8; 32]> = usize_indices.iter().map(|&i| raw[i]).collect();

            // Their proof verifies in their verifier; ours in ours; the hashes are the same.
            let their_proof = theirs.proof(&usize_indices);
            assert!(
                their_proof.verify(root.0, &usize_indices, &leaf_hashes, size as usize),
                "rs_merkle rejects its own proof of {count} leaves of {size}"
            );
            let leaves: Vec<(LeafIndex, Hash)> = indices
                .iter()
                .map(|&i| (LeafIndex(i), leaves[i as usize]))
                .collect();
            assert_eq!(
                verify_multi_inclusion(TreeSize(size), &leaves, &proof, &root),
                Ok(()),
                "{count} leaves of {size}"
            );
            let mut theirs_sorted: Vec<Hash> = their_proof
                .proof_hashes()
                .iter()
                .copied()
                .map(Hash)
                .collect();
            let mut ours_sorted = proof.clone();
            theirs_sorted.sort();
            ours_sorted.sort();
            assert_eq!(ours_sorted, theirs_sorted, "{count} leaves of {size}");

            // A wrong leaf: both reject.
            let victim = rng.below(indices.len() as u64) as usize;
            let mut bad = leaf_hashes.clone();
            bad[victim][0] ^= 1;
            assert!(
                !MerkleProof::<Rfc9162>::new(their_proof.proof_hashes().to_vec()).verify(
                    root.0,
                    &usize_indices,
                    &bad,
                    size as usize
                )
            );
            let mut bad_leaves = leaves.clone();
            bad_leaves[victim].1 = Hash(bad[victim]);
            assert!(verify_multi_inclusion(TreeSize(size), &bad_leaves, &proof, &root).is_err());
            compared += 1;
        }
    }
    println!("compared {compared} multiproofs with rs_merkle");
}
