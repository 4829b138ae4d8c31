//! Multiproofs: one proof that many leaves are in one tree, sharing the hashes their inclusion proofs have in common.
//!
//! Walk the RFC 9162 §2.1.1 recursion (`MTH(D[a:b])` splits at the largest power of two below `b - a`) from the
//! root, descending only into ranges that hold a proven leaf. A range that holds none is a proof hash: its `MTH` is
//! all the verifier needs of it. A one-leaf range that holds a proven leaf is that leaf. The proof is therefore the
//! `MTH` of every maximal range with no proven leaf in it, and no set of hashes of that tree's nodes with fewer
//! members determines the root from those leaves.
//!
//! **Order.** The proof lists these ranges left to right by leaf position (the ranges are disjoint). That is also
//! the order a left-first walk of the recursion meets them, which is how [`root_from_multi_inclusion_proof`]
//! consumes them. For a single leaf it holds the hashes of the RFC's `PATH`, in position order rather than
//! the RFC's bottom-up order.
//!
//! As with single proofs, a range on the right edge of a tree whose size is not a power of two is not a perfect
//! subtree: [`multi_inclusion_plan`] lists the stored perfect nodes of its compact range and
//! [`ProofPlan::build`] folds them into its one proof hash.

use alloc::vec::Vec;

use crate::error::{CoreError, VerifyError};
use crate::hash::{Hash, LeafIndex, TreeSize, node_hash};
use crate::proof::{ProofPlan, split};

/// Checks that `indices` is a non-empty, strictly increasing list of leaves of the tree of `size`.
fn check_indices(
    mut indices: impl Iterator<Item = u64>,
    size: TreeSize,
) -> Result<(), VerifyError> {
    let Some(first) = indices.next() else {
        return Err(VerifyError::NoLeaves);
    };
    if size.0 == 0 {
        return Err(VerifyError::EmptyTree);
    }
    let last = indices.try_fold(first, |previous, next| match next {
        _ if next == previous => Err(VerifyError::DuplicateIndex { index: next }),
        _ if next < previous => Err(VerifyError::UnsortedIndices { previous, next }),
        _ => Ok(next),
    })?;
    // Increasing, so the last one is the largest.
    if last >= size.0 {
        return Err(VerifyError::IndexOutOfRange {
            index: last,
            size: size.0,
        });
    }
    Ok(())
}

/// Calls `visit(a, b)` for every range `[a, b)` with no proven leaf whose parent range has one, left to right.
/// `leaves` are the proven leaves inside `[a, b)`, increasing; `index` reads a leaf's index.
fn walk<T>(
    a: u64,
    b: u64,
    leaves: &[T],
    index: &impl Fn(&T) -> u64,
    visit: &mut impl FnMut(u64, u64),
) {
    if leaves.is_empty() {
        visit(a, b);
    } else if b - a > 1 {
        let mid = a + split(b - a);
        let (left, right) = leaves.split_at(leaves.partition_point(|leaf| index(leaf) < mid));
        walk(a, mid, left, index, visit);
        walk(mid, b, right, index, visit);
    }
}

/// The plan of the multiproof of `indices` (strictly increasing leaves of the tree of `size`): the stored nodes to
/// read, and how [`ProofPlan::build`] folds them into the proof hashes in the order the module documents.
pub fn multi_inclusion_plan(indices: &[LeafIndex], size: TreeSize) -> Result<ProofPlan, CoreError> {
    check_indices(indices.iter().map(|i| i.0), size)?;
    let mut ranges = Vec::new();
    walk(0, size.0, indices, &|i| i.0, &mut |a, b| {
        ranges.push((a, b))
    });
    Ok(ProofPlan::from_ranges(ranges))
}

/// The number of hashes in the multiproof of `indices` in the tree of `size`.
pub fn multi_inclusion_proof_len(
    indices: &[LeafIndex],
    size: TreeSize,
) -> Result<usize, VerifyError> {
    check_indices(indices.iter().map(|i| i.0), size)?;
    Ok(count(indices, size, &|i| i.0))
}

fn count<T>(leaves: &[T], size: TreeSize, index: &impl Fn(&T) -> u64) -> usize {
    let mut n = 0usize;
    walk(0, size.0, leaves, index, &mut |_, _| n += 1);
    n
}

/// Checks `leaves`' indices and that `proof` has exactly the length their multiproof has; returns that length.
fn check_proof_shape(
    size: TreeSize,
    leaves: &[(LeafIndex, Hash)],
    proof: &[Hash],
) -> Result<usize, VerifyError> {
    check_indices(leaves.iter().map(|(i, _)| i.0), size)?;
    let expected = count(leaves, size, &|(i, _)| i.0);
    if proof.len() != expected {
        return Err(VerifyError::WrongProofLength {
            expected,
            actual: proof.len(),
        });
    }
    Ok(expected)
}

/// The root implied by a multiproof: `leaves` are `(index, leaf hash)` pairs with strictly increasing indices.
///
/// Checks the indices and the exact proof length before hashing anything.
pub fn root_from_multi_inclusion_proof(
    size: TreeSize,
    leaves: &[(LeafIndex, Hash)],
    proof: &[Hash],
) -> Result<Hash, VerifyError> {
    let expected = check_proof_shape(size, leaves, proof)?;
    let mut proof = proof.iter();
    // With the length checked, the fold never runs out of proof hashes; `None` is only a safety net.
    fold(0, size.0, leaves, &mut proof).ok_or(VerifyError::WrongProofLength {
        expected,
        actual: expected,
    })
}

/// `MTH(D[a:b])` from the proven leaves inside `[a, b)` and the proof hashes, taken left to right.
fn fold<'a>(
    a: u64,
    b: u64,
    leaves: &[(LeafIndex, Hash)],
    proof: &mut impl Iterator<Item = &'a Hash>,
) -> Option<Hash> {
    match leaves {
        [] => proof.next().copied(),
        [(_, leaf)] if b - a == 1 => Some(*leaf),
        _ => {
            let mid = a + split(b - a);
            let (left, right) = leaves.split_at(leaves.partition_point(|(i, _)| i.0 < mid));
            let left = fold(a, mid, left, proof)?;
            let right = fold(mid, b, right, proof)?;
            Some(node_hash(&left, &right))
        }
    }
}

/// The RFC 9162 §2.1.3 inclusion proof (`PATH`, bottom-up) of each of `leaves` in the tree of `size`, in their
/// order, expanded from their multiproof: a batch's answer can carry one multiproof and each receipt still get
/// its own proof.
///
/// Checks the indices and the exact proof length as [`root_from_multi_inclusion_proof`] does, and verifies
/// nothing: every proof leads to the root the multiproof leads to, so each verifies exactly when it does. Hashes
/// only the nodes some proof holds and the multiproof does not: about one per leaf for a contiguous run, none for
/// a single leaf.
pub fn inclusion_proofs_from_multi(
    size: TreeSize,
    leaves: &[(LeafIndex, Hash)],
    proof: &[Hash],
) -> Result<Vec<Vec<Hash>>, VerifyError> {
    check_proof_shape(size, leaves, proof)?;
    // A proof holds at most one hash per level of the tree.
    let height = (u64::BITS - (size.0 - 1).leading_zeros()) as usize;
    let mut paths: Vec<Vec<Hash>> = (0..leaves.len())
        .map(|_| Vec::with_capacity(height))
        .collect();
    expand(0, size.0, leaves, &mut paths, &mut proof.iter(), false);
    Ok(paths)
}

/// Appends to each leaf's path the hashes `[a, b)` contributes to it, deepest first, and returns `MTH(D[a:b])`
/// when `need` (or when it costs nothing: a proof hash or a leaf). With the proof length checked, the proof
/// hashes never run out.
fn expand<'a>(
    a: u64,
    b: u64,
    leaves: &[(LeafIndex, Hash)],
    paths: &mut [Vec<Hash>],
    proof: &mut impl Iterator<Item = &'a Hash>,
    need: bool,
) -> Option<Hash> {
    match leaves {
        [] => proof.next().copied(),
        [(_, leaf)] if b - a == 1 => Some(*leaf),
        _ => {
            let mid = a + split(b - a);
            let k = leaves.partition_point(|(i, _)| i.0 < mid);
            let (left, right) = leaves.split_at(k);
            let (left_paths, right_paths) = paths.split_at_mut(k);
            let l = expand(a, mid, left, left_paths, proof, need || !right.is_empty());
            let r = expand(mid, b, right, right_paths, proof, need || !left.is_empty());
            if let Some(r) = r.filter(|_| !left.is_empty()) {
                left_paths.iter_mut().for_each(|p| p.push(r));
            }
            if let Some(l) = l.filter(|_| !right.is_empty()) {
                right_paths.iter_mut().for_each(|p| p.push(l));
            }
            if need {
                Some(node_hash(&l?, &r?))
            } else {
                None
            }
        }
    }
}

/// Verifies that every `(index, leaf hash)` of `leaves` (strictly increasing indices) is in the tree of `size`
/// with root `root`.
pub fn verify_multi_inclusion(
    size: TreeSize,
    leaves: &[(LeafIndex, Hash)],
    proof: &[Hash],
    root: &Hash,
) -> Result<(), VerifyError> {
    crate::verify::expect_root(root_from_multi_inclusion_proof(size, leaves, proof)?, root)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::NodeId;
    use alloc::vec;

    fn ids(v: &[u64]) -> Vec<LeafIndex> {
        v.iter().copied().map(LeafIndex).collect()
    }

    #[test]
    fn index_sets_are_checked() {
        let size = TreeSize(10);
        assert_eq!(
            multi_inclusion_proof_len(&[], size),
            Err(VerifyError::NoLeaves)
        );
        assert_eq!(
            multi_inclusion_proof_len(&ids(&[0]), TreeSize(0)),
            Err(VerifyError::EmptyTree)
        );
        assert_eq!(
            multi_inclusion_proof_len(&ids(&[1, 3, 3]), size),
            Err(VerifyError::DuplicateIndex { index: 3 })
        );
        assert_eq!(
            multi_inclusion_proof_len(&ids(&[1, 4, 3]), size),
            Err(VerifyError::UnsortedIndices {
                previous: 4,
                next: 3
            })
        );
        assert_eq!(
            multi_inclusion_proof_len(&ids(&[1, 10]), size),
            Err(VerifyError::IndexOutOfRange {
                index: 10,
                size: 10
            })
        );
        assert_eq!(
            multi_inclusion_plan(&ids(&[5, 2]), size),
            Err(CoreError::Invalid(VerifyError::UnsortedIndices {
                previous: 5,
                next: 2
            }))
        );
    }

    #[test]
    fn plan_lists_ranges_left_to_right_and_folds_the_right_edge() {
        // Leaves 1 and 2 of 7: [0] leaf 0, [3] leaf 3, [4, 7) = node [4, 6) + leaf 6 folded.
        let plan = multi_inclusion_plan(&ids(&[1, 2]), TreeSize(7)).unwrap();
        assert_eq!(
            plan.node_ids(),
            [
                NodeId::leaf(0),
                NodeId::leaf(3),
                NodeId::leaf(6),
                NodeId::new(1, 2)
            ]
        );
        let h: Vec<Hash> = (0..4u8).map(|i| Hash([i; 32])).collect();
        assert_eq!(
            plan.build(&h).unwrap(),
            [h[0], h[1], node_hash(&h[3], &h[2])]
        );
    }

    #[test]
    fn every_leaf_needs_no_proof() {
        let all: Vec<LeafIndex> = (0..13).map(LeafIndex).collect();
        assert_eq!(multi_inclusion_proof_len(&all, TreeSize(13)), Ok(0));
    }

    #[test]
    fn wrong_length_is_rejected_before_hashing() {
        let leaves = [(LeafIndex(2), Hash([1; 32]))];
        assert_eq!(
            root_from_multi_inclusion_proof(TreeSize(8), &leaves, &[Hash::default(); 4]),
            Err(VerifyError::WrongProofLength {
                expected: 3,
                actual: 4
            })
        );
        assert_eq!(
            root_from_multi_inclusion_proof(TreeSize(8), &leaves, &[Hash::default(); 2]),
            Err(VerifyError::WrongProofLength {
                expected: 3,
                actual: 2
            })
        );
    }

    #[test]
    fn huge_trees_do_not_panic() {
        for size in [u64::MAX, 1 << 63, (1 << 63) + 1] {
            let indices = ids(&[0, 1, size / 2, size - 2, size - 1]);
            let plan = multi_inclusion_plan(&indices, TreeSize(size)).unwrap();
            assert!(plan.node_ids().iter().all(|n| n.end() <= size));
            let len = multi_inclusion_proof_len(&indices, TreeSize(size)).unwrap();
            let leaves: Vec<(LeafIndex, Hash)> =
                indices.iter().map(|&i| (i, Hash::default())).collect();
            let proof = vec![Hash::default(); len];
            assert!(root_from_multi_inclusion_proof(TreeSize(size), &leaves, &proof).is_ok());
        }
    }
}
