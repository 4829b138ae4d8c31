//! Property tests: any tampering with a valid proof makes verification fail, and nothing panics on any input.
//!
//! Valid proofs come from a tree of up to `MAX_SIZE` leaves whose nodes `CompactRange` reported, built through the
//! proof plans (the exhaustive tests tie both to the RFC reference).
//!
//! A wrong index or size cannot always be detected on its own: the verification computation depends only on the
//! *shape* the index and size give the proof, and some other `(index, size)` pairs share the shape of the valid one
//! (leaf 0 of 5 and of 6 leaves, for example). What binds the size is the root, which a checkpoint signs together
//! with it. So the properties are: against the true root of the other size, a proof always fails; against the
//! original root, it passes exactly when the RFC 9162 verification loop, run on symbols instead of hashes, performs
//! the very same computation.

use std::sync::OnceLock;

use proptest::prelude::*;
use tlog_core::testing::Tree;
use tlog_core::testing::reference::{
    rfc_root_from_inclusion, rfc_roots_from_consistency, sym_node, symbols,
};
use tlog_core::{
    CompactRange, Hash, LeafIndex, NodeId, TreeSize, VerifyError, consistency_plan,
    consistency_proof_len, inclusion_plan, inclusion_proof_len, leaf_hash, range_nodes,
    root_from_inclusion_proof, root_plan, verify_consistency, verify_inclusion,
};

const MAX_SIZE: u64 = 4096;

fn tree() -> &'static Tree {
    static TREE: OnceLock<Tree> = OnceLock::new();
    TREE.get_or_init(|| Tree::new((0..MAX_SIZE).map(|i| leaf_hash(&i.to_le_bytes())).collect()))
}

fn incl(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> bool {
    verify_inclusion(leaf, LeafIndex(index), TreeSize(size), proof, root).is_ok()
}

fn cons(size1: u64, size2: u64, proof: &[Hash], root1: &Hash, root2: &Hash) -> bool {
    verify_consistency(TreeSize(size1), TreeSize(size2), proof, root1, root2).is_ok()
}

/// The symbolic §2.1.3.2 computation for `(index, size)` over a proof of `len` hashes.
fn inclusion_computation(index: u64, size: u64, len: usize) -> Option<String> {
    rfc_root_from_inclusion(index, size, "leaf".to_string(), &symbols(len), sym_node)
}

/// The symbolic §2.1.4.2 computation for `(size1, size2)` over a proof of `len` hashes (`None` outside
/// `0 < size1 < size2`, where the RFC algorithm is undefined and a non-empty proof is always rejected).
fn consistency_computation(size1: u64, size2: u64, len: usize) -> Option<(String, String)> {
    (0 < size1 && size1 < size2)
        .then(|| {
            rfc_roots_from_consistency(size1, size2, "root1".to_string(), &symbols(len), sym_node)
        })
        .flatten()
}

fn flip(proof: &[Hash], i: usize, bit: usize) -> Vec<Hash> {
    let mut p = proof.to_vec();
    p[i].0[bit / 8] ^= 1 << (bit % 8);
    p
}

fn size_and_index() -> impl Strategy<Value = (u64, u64)> {
    (2..=MAX_SIZE).prop_flat_map(|size| (Just(size), 0..size))
}

fn two_sizes() -> impl Strategy<Value = (u64, u64)> {
    (2..=MAX_SIZE).prop_flat_map(|size2| (1..size2, Just(size2)))
}

fn any_hash() -> impl Strategy<Value = Hash> {
    any::<[u8; 32]>().prop_map(Hash)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn tampered_inclusion_proofs_fail(
        (size, index) in size_and_index(),
        other_index in 0..MAX_SIZE,
        other_size in 1..=MAX_SIZE,
        garbage in any_hash(),
        at in any::<prop::sample::Index>(),
    ) {
        let t = tree();
        let (leaf, root) = (t.leaves[index as usize], t.root(size));
        let proof = t.inclusion(index, size).unwrap();
        prop_assert!(incl(&leaf, index, size, &proof, &root));

        // Every single-bit flip of every proof hash.
        for i in 0..proof.len() {
            for bit in 0..256 {
                prop_assert!(!incl(&leaf, index, size, &flip(&proof, i, bit), &root), "flip {i}/{bit}");
            }
        }
        // Truncation (every proper prefix and suffix) and extension by one hash at any position (garbage, the
        // root, the leaf, a proof hash): rejected for their length, before any hashing.
        let wrong_len = |p: &[Hash]| {
            let actual = p.len();
            verify_inclusion(&leaf, LeafIndex(index), TreeSize(size), p, &root)
                == Err(VerifyError::WrongProofLength { expected: proof.len(), actual })
        };
        for k in 0..proof.len() {
            prop_assert!(wrong_len(&proof[..k]));
            prop_assert!(wrong_len(&proof[proof.len() - k..]));
        }
        for extra in [garbage, root, leaf].into_iter().chain(proof.first().copied()) {
            let mut longer = proof.clone();
            longer.insert(at.index(proof.len() + 1), extra);
            prop_assert!(wrong_len(&longer));
        }
        // Wrong leaf, wrong root.
        prop_assert!(!incl(&garbage, index, size, &proof, &root));
        prop_assert!(!incl(&t.leaves[(index as usize + 1) % size as usize], index, size, &proof, &root));
        prop_assert!(!incl(&leaf, index, size, &proof, &garbage));
        prop_assert!(!incl(&leaf, index, size, &proof, &t.root(size - 1)));
        prop_assert!(!incl(&leaf, index, size, &proof, &tlog_core::empty_root()));

        // Wrong index: with its own leaf it always fails; with the same leaf, exactly when the computation differs.
        let same = inclusion_computation(index, size, proof.len());
        for j in [other_index, index ^ 1, index.wrapping_sub(1), index + 1, size, u64::MAX] {
            if j == index {
                continue;
            }
            if let Some(other_leaf) = t.leaves.get(j as usize) {
                prop_assert!(!incl(other_leaf, j, size, &proof, &root), "index {j} with its leaf");
            }
            let expect = inclusion_computation(j, size, proof.len()) == same;
            prop_assert_eq!(incl(&leaf, j, size, &proof, &root), expect, "index {}", j);
        }
        // Wrong size: against that size's own root it always fails; against this root, exactly when the
        // computation differs.
        for s in [other_size, size * 2, size / 2, size - 1, size + 1, u64::MAX] {
            if s == size {
                continue;
            }
            if let Some(other_root) = t.roots.get(s as usize) {
                prop_assert!(!incl(&leaf, index, s, &proof, other_root), "size {s} with its root");
            }
            let expect = inclusion_computation(index, s, proof.len()) == same;
            prop_assert_eq!(incl(&leaf, index, s, &proof, &root), expect, "size {}", s);
        }
    }

    #[test]
    fn tampered_consistency_proofs_fail(
        (size1, size2) in two_sizes(),
        other1 in 0..=MAX_SIZE,
        other2 in 0..=MAX_SIZE,
        garbage in any_hash(),
        at in any::<prop::sample::Index>(),
    ) {
        let t = tree();
        let (root1, root2) = (t.root(size1), t.root(size2));
        let proof = t.consistency(size1, size2).unwrap();
        prop_assert!(cons(size1, size2, &proof, &root1, &root2));

        for i in 0..proof.len() {
            for bit in 0..256 {
                prop_assert!(!cons(size1, size2, &flip(&proof, i, bit), &root1, &root2), "flip {i}/{bit}");
            }
        }
        let wrong_len = |p: &[Hash]| {
            let actual = p.len();
            verify_consistency(TreeSize(size1), TreeSize(size2), p, &root1, &root2)
                == Err(VerifyError::WrongProofLength { expected: proof.len(), actual })
        };
        for k in 0..proof.len() {
            prop_assert!(wrong_len(&proof[..k]));
            prop_assert!(wrong_len(&proof[proof.len() - k..]));
        }
        for extra in [garbage, root1, root2, proof[0]] {
            let mut longer = proof.clone();
            longer.insert(at.index(proof.len() + 1), extra);
            prop_assert!(wrong_len(&longer));
        }
        // Wrong roots.
        prop_assert!(!cons(size1, size2, &proof, &garbage, &root2));
        prop_assert!(!cons(size1, size2, &proof, &root1, &garbage));
        prop_assert!(!cons(size1, size2, &proof, &root2, &root1));
        prop_assert!(!cons(size1, size2, &proof, &t.root(size1 - 1), &root2));
        prop_assert!(!cons(size1, size2, &proof, &root1, &t.root(size2 - 1)));

        // Wrong sizes, as for inclusion.
        let same = consistency_computation(size1, size2, proof.len());
        let others = [
            (other1, size2), (size1, other2), (other1, other2), (size1 - 1, size2), (size1 + 1, size2),
            (size1, size2 - 1), (size1, size2 + 1), (size1 * 2, size2), (size1, size2 * 2), (size1 / 2, size2),
            (size1, size2 / 2), (size2, size1), (0, size2), (size1, u64::MAX), (u64::MAX - 1, u64::MAX),
        ];
        for (m, n) in others {
            if (m, n) == (size1, size2) {
                continue;
            }
            if let (Some(r1), Some(r2)) = (t.roots.get(m as usize), t.roots.get(n as usize)) {
                prop_assert!(!cons(m, n, &proof, r1, r2), "sizes {m} {n} with their roots");
            }
            let expect = same.is_some() && consistency_computation(m, n, proof.len()) == same;
            prop_assert_eq!(cons(m, n, &proof, &root1, &root2), expect, "sizes {} {}", m, n);
        }
    }
}

/// Values that stress the arithmetic: anything, small, near `u64::MAX`, and around every power of two.
fn edgy_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        0..=300u64,
        (u64::MAX - 300)..=u64::MAX,
        (0..64u32, -3i64..=3).prop_map(|(bit, d)| (1u64 << bit).wrapping_add_signed(d)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn nothing_panics(
        a in edgy_u64(),
        b in edgy_u64(),
        level in any::<u8>(),
        len in 0..140usize,
        fill in any_hash(),
        exact_len in any::<bool>(),
    ) {
        let (ia, sa, sb) = (LeafIndex(a), TreeSize(a), TreeSize(b));
        let node = NodeId::new(level, a);
        let _ = (node.begin(), node.end(), node.parent(), node.sibling());
        // The compact range of [a, b) is at most 2 * 64 nodes.
        prop_assert!(range_nodes(a.min(b), a.max(b)).len() <= 128);

        // Verification with proofs of arbitrary or of exactly the expected length.
        let incl_len = inclusion_proof_len(ia, sb);
        let proof = vec![fill; if exact_len { *incl_len.as_ref().unwrap_or(&len) } else { len }];
        let _ = root_from_inclusion_proof(&fill, ia, sb, &proof);
        let _ = verify_inclusion(&fill, ia, sb, &proof, &fill);
        let cons_len = consistency_proof_len(sa, sb);
        let proof = vec![fill; if exact_len { *cons_len.as_ref().unwrap_or(&len) } else { len }];
        let _ = verify_consistency(sa, sb, &proof, &fill, &fill);

        // Plans, and building them with the right and a wrong number of hashes.
        let plans = [inclusion_plan(ia, sb).ok(), consistency_plan(sa, sb).ok(), Some(root_plan(sb))];
        for plan in plans.into_iter().flatten() {
            let n = plan.node_ids().len();
            prop_assert!(plan.node_ids().iter().all(|id| id.end() <= b));
            prop_assert!(plan.build(&vec![fill; n]).is_ok());
            prop_assert!(plan.build(&vec![fill; n + 1]).is_err());
        }
        if let Ok(n) = incl_len {
            let plan = inclusion_plan(ia, sb).unwrap();
            prop_assert_eq!(plan.build(&vec![fill; plan.node_ids().len()]).unwrap().len(), n);
        }

        // A frontier of any size, appended to.
        let mut cr = CompactRange::from_parts(sb, vec![fill; b.count_ones() as usize]).unwrap();
        let _ = cr.append(fill, |_, _| {});
        let _ = cr.root();
    }
}
