//! Proof verification: RFC 9162 §2.1.3.2 (inclusion) and §2.1.4.2 (consistency).
//!
//! The RFC's loops walk `fn`/`sn` bit by bit and only discover a wrong proof length at the end. Here the one valid
//! length is computed from the sizes first, in the manner of transparency-dev/merkle: the path from a node up to the
//! root splits where it meets the tree's right border. Below that point (`inner` levels) the sibling is on either
//! side, as the node's index bits say; above it (`border` hashes, one per set bit left in the index) every sibling
//! is a left one. Hashing is the same as the RFC's, and the exhaustive tests check both agree.

use crate::error::VerifyError;
use crate::hash::{Hash, LeafIndex, TreeSize, empty_root, node_hash};

/// Checks that `index` names a leaf of the tree of `size` (RFC 9162 §2.1.3.2 step 1).
pub(crate) fn check_index(index: LeafIndex, size: TreeSize) -> Result<(), VerifyError> {
    match (index.0, size.0) {
        (_, 0) => Err(VerifyError::EmptyTree),
        (index, size) if index >= size => Err(VerifyError::IndexOutOfRange { index, size }),
        _ => Ok(()),
    }
}

/// The shape of the path from node `index` to the root, where `last` is the index of the tree's last node on the
/// same level: `inner`, the levels below the point where the two paths meet, and `border`, the left siblings above.
fn path_shape(index: u64, last: u64) -> (usize, usize) {
    let inner = u64::BITS - (index ^ last).leading_zeros();
    // inner may be 64 (paths split at the root of a tree of more than 2^63 leaves): nothing is left of the index.
    let border = index.checked_shr(inner).unwrap_or(0).count_ones();
    (inner as usize, border as usize)
}

/// Hashes `seed`, the node at `index` on its level, up the path: the first `inner` proof hashes are siblings on
/// the side the index bit says, the rest are left siblings. Without `right_siblings`, right siblings are skipped:
/// the result is then the hash the path had before anything right of it was appended.
fn chain(seed: Hash, index: u64, inner: usize, proof: &[Hash], right_siblings: bool) -> Hash {
    proof.iter().enumerate().fold(seed, |acc, (i, sibling)| {
        let sibling_is_right = i < inner && (index >> i) & 1 == 0;
        match (sibling_is_right, right_siblings) {
            (false, _) => node_hash(sibling, &acc),
            (true, true) => node_hash(&acc, sibling),
            (true, false) => acc,
        }
    })
}

/// The `(inner, border)` shape of the inclusion proof of leaf `index` in the tree of `size`.
fn inclusion_shape(index: LeafIndex, size: TreeSize) -> Result<(usize, usize), VerifyError> {
    check_index(index, size)?;
    Ok(path_shape(index.0, size.0 - 1))
}

/// The number of hashes in the inclusion proof of leaf `index` in the tree of `size`.
pub fn inclusion_proof_len(index: LeafIndex, size: TreeSize) -> Result<usize, VerifyError> {
    let (inner, border) = inclusion_shape(index, size)?;
    Ok(inner + border)
}

/// Where a consistency proof from `size1` to `size2` starts (`0 < size1 < size2`).
///
/// The proof is the inclusion proof, in the tree of `size2`, of the largest perfect subtree ending at leaf `size1`
/// (level `trailing_zeros(size1)`), preceded by that subtree's own hash unless it is the whole old tree — a power of
/// two — whose root the verifier already has (RFC 9162 §2.1.4.2 step 2).
struct ConsistencyShape {
    /// The subtree's index on its level.
    index: u64,
    /// Whether the proof starts with the subtree's hash.
    seeded: bool,
    inner: usize,
    border: usize,
}

impl ConsistencyShape {
    fn new(size1: u64, size2: u64) -> Self {
        let level = size1.trailing_zeros();
        let index = (size1 - 1) >> level;
        let (inner, border) = path_shape(index, (size2 - 1) >> level);
        ConsistencyShape {
            index,
            seeded: index != 0,
            inner,
            border,
        }
    }

    fn len(&self) -> usize {
        usize::from(self.seeded) + self.inner + self.border
    }
}

/// The shape of the consistency proof from `size1` to `size2`; `None` when no proof is needed because the sizes are
/// equal or `size1` is 0 (see [`verify_consistency`]).
fn consistency_shape(
    size1: TreeSize,
    size2: TreeSize,
) -> Result<Option<ConsistencyShape>, VerifyError> {
    match (size1.0, size2.0) {
        (m, n) if m > n => Err(VerifyError::SizeDecreased { size1: m, size2: n }),
        (m, n) if m == 0 || m == n => Ok(None),
        (m, n) => Ok(Some(ConsistencyShape::new(m, n))),
    }
}

/// The number of hashes in the consistency proof from `size1` to `size2`: 0 when the sizes are equal or `size1`
/// is 0 (see [`verify_consistency`]).
pub fn consistency_proof_len(size1: TreeSize, size2: TreeSize) -> Result<usize, VerifyError> {
    Ok(consistency_shape(size1, size2)?.map_or(0, |shape| shape.len()))
}

fn check_len(expected: usize, proof: &[Hash]) -> Result<(), VerifyError> {
    if proof.len() == expected {
        Ok(())
    } else {
        Err(VerifyError::WrongProofLength {
            expected,
            actual: proof.len(),
        })
    }
}

/// The root implied by an inclusion proof (RFC 9162 §2.1.3.2). Checks `index < size` and the exact proof length
/// before hashing anything.
pub fn root_from_inclusion_proof(
    leaf: &Hash,
    index: LeafIndex,
    size: TreeSize,
    proof: &[Hash],
) -> Result<Hash, VerifyError> {
    let (inner, border) = inclusion_shape(index, size)?;
    check_len(inner + border, proof)?;
    Ok(chain(*leaf, index.0, inner, proof, true))
}

/// Verifies that `leaf` is the leaf hash at `index` in the tree of `size` with root `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    leaf: &Hash,
    index: LeafIndex,
    size: TreeSize,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), VerifyError> {
    expect_root(root_from_inclusion_proof(leaf, index, size, proof)?, root)
}

/// Verifies that the tree of `size1` with `root1` is a prefix of the tree of `size2` with `root2`
/// (RFC 9162 §2.1.4.2). The exact proof length is checked before hashing anything.
///
/// The RFC defines the proof for `0 < size1 < size2`. The other cases need no proof, and the proof must be empty:
/// - `size1 > size2`: rejected, a log never shrinks.
/// - `size1 == size2`: the roots must be equal.
/// - `size1 == 0` (left undefined by the RFC): the empty tree is a prefix of every tree, so any `root2` is
///   consistent with it, but `root1` must be the empty tree's root `SHA-256("")`: accepting any other value would
///   let a bogus "empty" tree head pass as consistent with everything.
pub fn verify_consistency(
    size1: TreeSize,
    size2: TreeSize,
    proof: &[Hash],
    root1: &Hash,
    root2: &Hash,
) -> Result<(), VerifyError> {
    let Some(shape) = consistency_shape(size1, size2)? else {
        check_len(0, proof)?;
        if size1.0 == 0 && *root1 != empty_root() {
            return Err(VerifyError::NonEmptyRootForEmptyTree { root: *root1 });
        }
        if size1 == size2 && root1 != root2 {
            return Err(VerifyError::EqualSizesDifferentRoots {
                root1: *root1,
                root2: *root2,
            });
        }
        return Ok(());
    };
    check_len(shape.len(), proof)?;
    let (seed, path) = match proof.split_first() {
        Some((first, rest)) if shape.seeded => (*first, rest),
        _ => (*root1, proof),
    };
    let computed1 = chain(seed, shape.index, shape.inner, path, false);
    if computed1 != *root1 {
        return Err(VerifyError::FirstRootMismatch {
            computed: computed1,
            expected: *root1,
        });
    }
    let computed2 = chain(seed, shape.index, shape.inner, path, true);
    if computed2 != *root2 {
        return Err(VerifyError::SecondRootMismatch {
            computed: computed2,
            expected: *root2,
        });
    }
    Ok(())
}

/// `Ok` when a proof led to the expected root.
pub(crate) fn expect_root(computed: Hash, root: &Hash) -> Result<(), VerifyError> {
    if computed == *root {
        Ok(())
    } else {
        Err(VerifyError::RootMismatch {
            computed,
            expected: *root,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths() {
        assert_eq!(inclusion_proof_len(LeafIndex(0), TreeSize(1)), Ok(0));
        assert_eq!(inclusion_proof_len(LeafIndex(0), TreeSize(8)), Ok(3));
        assert_eq!(inclusion_proof_len(LeafIndex(6), TreeSize(7)), Ok(2));
        assert_eq!(inclusion_proof_len(LeafIndex(4), TreeSize(5)), Ok(1));
        assert_eq!(
            inclusion_proof_len(LeafIndex(0), TreeSize(u64::MAX)),
            Ok(64)
        );
        assert_eq!(
            inclusion_proof_len(LeafIndex(u64::MAX - 1), TreeSize(u64::MAX)),
            Ok(63)
        );
        assert_eq!(
            inclusion_proof_len(LeafIndex(0), TreeSize(0)),
            Err(VerifyError::EmptyTree)
        );
        assert_eq!(consistency_proof_len(TreeSize(0), TreeSize(9)), Ok(0));
        assert_eq!(consistency_proof_len(TreeSize(9), TreeSize(9)), Ok(0));
        assert_eq!(consistency_proof_len(TreeSize(4), TreeSize(8)), Ok(1));
        assert_eq!(consistency_proof_len(TreeSize(3), TreeSize(8)), Ok(4));
        assert_eq!(
            consistency_proof_len(TreeSize(1), TreeSize(u64::MAX)),
            Ok(64)
        );
        assert_eq!(
            consistency_proof_len(TreeSize(3), TreeSize(2)),
            Err(VerifyError::SizeDecreased { size1: 3, size2: 2 })
        );
    }

    #[test]
    fn trivial_consistency() {
        let (a, b, e) = (Hash([1; 32]), Hash([2; 32]), empty_root());
        assert_eq!(
            verify_consistency(TreeSize(0), TreeSize(0), &[], &e, &e),
            Ok(())
        );
        assert_eq!(
            verify_consistency(TreeSize(0), TreeSize(7), &[], &e, &a),
            Ok(())
        );
        assert_eq!(
            verify_consistency(TreeSize(0), TreeSize(7), &[], &a, &a),
            Err(VerifyError::NonEmptyRootForEmptyTree { root: a })
        );
        assert_eq!(
            verify_consistency(TreeSize(0), TreeSize(0), &[], &e, &a),
            Err(VerifyError::EqualSizesDifferentRoots { root1: e, root2: a })
        );
        assert_eq!(
            verify_consistency(TreeSize(5), TreeSize(5), &[], &a, &a),
            Ok(())
        );
        assert_eq!(
            verify_consistency(TreeSize(5), TreeSize(5), &[], &a, &b),
            Err(VerifyError::EqualSizesDifferentRoots { root1: a, root2: b })
        );
        assert_eq!(
            verify_consistency(TreeSize(5), TreeSize(5), &[a], &a, &a),
            Err(VerifyError::WrongProofLength {
                expected: 0,
                actual: 1
            })
        );
        assert_eq!(
            verify_consistency(TreeSize(0), TreeSize(3), &[a], &e, &a),
            Err(VerifyError::WrongProofLength {
                expected: 0,
                actual: 1
            })
        );
        assert_eq!(
            verify_consistency(TreeSize(2), TreeSize(1), &[], &a, &a),
            Err(VerifyError::SizeDecreased { size1: 2, size2: 1 })
        );
    }
}
