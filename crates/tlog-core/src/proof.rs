//! Proof plans: which stored nodes an RFC 9162 proof needs, and how to turn their hashes into the proof.
//!
//! The RFC defines the proofs recursively over `MTH` of leaf ranges (§2.1.3.1 `PATH`, §2.1.4.1 `SUBPROOF`). Walking
//! that recursion top-down over ranges instead of data gives, for each proof hash, the leaf range `[a, b)` whose `MTH`
//! it is. Every such range is either a perfect subtree (one stored node) or the right edge of the tree, whose `MTH`
//! is the fold of its compact range; so a plan is the stored nodes of those compact ranges plus how many of them
//! fold into each proof hash.

use alloc::vec::Vec;

use crate::error::{CoreError, VerifyError};
use crate::hash::{Hash, LeafIndex, TreeSize};
use crate::node::{NodeId, fold_from_right, range_nodes};
use crate::verify::check_index;

/// Which stored nodes a proof needs, and how to fold them into the RFC 9162 proof.
///
/// Every id in [`node_ids`](Self::node_ids) is a perfect subtree inside the tree, i.e. a node a store has persisted.
/// Where the proof contains the hash of an incomplete right-edge subtree, the plan lists the perfect subtrees that
/// compose it and [`build`](Self::build) folds them.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ProofPlan {
    /// The nodes of every proof hash in proof order; within one proof hash, right to left (smallest node first) so
    /// that `build` can fold them in one forward pass.
    ids: Vec<NodeId>,
    /// How many consecutive `ids` fold into each proof hash.
    spans: Vec<usize>,
}

impl ProofPlan {
    /// Lays out the compact ranges of the given leaf ranges, one proof hash per range, in the given order.
    pub(crate) fn from_ranges(ranges: impl IntoIterator<Item = (u64, u64)>) -> Self {
        let mut plan = ProofPlan {
            ids: Vec::new(),
            spans: Vec::new(),
        };
        for (begin, end) in ranges {
            let nodes = range_nodes(begin, end);
            plan.spans.push(nodes.len());
            plan.ids.extend(nodes.into_iter().rev());
        }
        plan
    }

    /// The nodes to fetch (each appears once). Their order is only meaningful as the order `build` expects.
    pub fn node_ids(&self) -> &[NodeId] {
        &self.ids
    }

    /// Builds the proof from `hashes[i]`, the hash of `node_ids()[i]`.
    ///
    /// Returns the hashes in the order the RFC 9162 §2.1.3.2 / §2.1.4.2 verifiers consume them. Fails with
    /// [`CoreError::HashCountMismatch`] unless there is exactly one hash per node id.
    pub fn build(&self, hashes: &[Hash]) -> Result<Vec<Hash>, CoreError> {
        if hashes.len() != self.ids.len() {
            return Err(CoreError::HashCountMismatch {
                expected: self.ids.len(),
                actual: hashes.len(),
            });
        }
        let mut hashes = hashes.iter();
        let proof = self
            .spans
            .iter()
            .map(|&span| fold_from_right(hashes.by_ref().take(span)))
            .collect();
        Ok(proof)
    }
}

/// The largest power of two strictly less than `n`: where RFC 9162 §2.1.1 splits `D[n]`. Requires `n >= 2`.
pub(crate) fn split(n: u64) -> u64 {
    1 << (n - 1).ilog2()
}

/// The plan of the RFC 9162 §2.1.3.1 inclusion proof `PATH(index, D[size])`. Requires `index < size`.
pub fn inclusion_plan(index: LeafIndex, size: TreeSize) -> Result<ProofPlan, CoreError> {
    check_index(index, size)?;
    let m = index.0;
    // Descend from the root: PATH(m, D[a:b]) = PATH(m, <half with m>) : MTH(<other half>). The RFC appends the
    // sibling after the recursion, so the ranges found top-down are the proof read backwards.
    let (mut a, mut b) = (0, size.0);
    let mut siblings = Vec::new();
    while b - a > 1 {
        let mid = a + split(b - a);
        if m < mid {
            siblings.push((mid, b));
            b = mid;
        } else {
            siblings.push((a, mid));
            a = mid;
        }
    }
    Ok(ProofPlan::from_ranges(siblings.into_iter().rev()))
}

/// The plan of the RFC 9162 §2.1.4.1 consistency proof `PROOF(size1, D[size2])`. Requires `0 < size1 <= size2`;
/// equal sizes give an empty plan (and proof).
pub fn consistency_plan(size1: TreeSize, size2: TreeSize) -> Result<ProofPlan, CoreError> {
    let (m, n) = (size1.0, size2.0);
    if m > n {
        return Err(VerifyError::SizeDecreased { size1: m, size2: n }.into());
    }
    if m == 0 {
        return Err(CoreError::ConsistencyFromEmptyTree);
    }
    // SUBPROOF(m, D[a:b], whole) with m taken as an absolute leaf count: the old tree is [0, m), and a < m <= b
    // holds throughout, so the loop ends at m == b before the range could shrink to one leaf.
    let (mut a, mut b, mut whole) = (0, n, true);
    let mut parts = Vec::new();
    while m != b {
        let mid = a + split(b - a);
        if m <= mid {
            parts.push((mid, b));
            b = mid;
        } else {
            parts.push((a, mid));
            a = mid;
            whole = false;
        }
    }
    // SUBPROOF(m, D[m], false) = {MTH(D[m])}: a subtree of the old tree the verifier cannot know by itself. With
    // `whole` set it is the old root, which the verifier has.
    if !whole {
        parts.push((a, b));
    }
    Ok(ProofPlan::from_ranges(parts.into_iter().rev()))
}

/// The root of the tree of `size` from stored nodes: `node_ids()` are those of `range_nodes(0, size)` and `build`
/// returns `vec![root]` (`vec![empty_root()]` for size 0).
pub fn root_plan(size: TreeSize) -> ProofPlan {
    ProofPlan::from_ranges([(0, size.0)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::node_hash;

    #[test]
    fn split_points() {
        assert_eq!([2, 3, 4, 5, 8, 9].map(split), [1, 2, 2, 4, 4, 8]);
        assert_eq!(split(u64::MAX), 1 << 63);
        assert_eq!(split((1 << 63) + 1), 1 << 63);
        assert_eq!(split(1 << 63), 1 << 62);
    }

    #[test]
    fn plan_inputs_are_checked() {
        assert_eq!(
            inclusion_plan(LeafIndex(0), TreeSize(0)),
            Err(CoreError::Invalid(VerifyError::EmptyTree))
        );
        assert_eq!(
            inclusion_plan(LeafIndex(5), TreeSize(5)),
            Err(CoreError::Invalid(VerifyError::IndexOutOfRange {
                index: 5,
                size: 5
            }))
        );
        assert_eq!(
            consistency_plan(TreeSize(0), TreeSize(5)),
            Err(CoreError::ConsistencyFromEmptyTree)
        );
        assert_eq!(
            consistency_plan(TreeSize(6), TreeSize(5)),
            Err(CoreError::Invalid(VerifyError::SizeDecreased {
                size1: 6,
                size2: 5
            }))
        );
        assert!(
            consistency_plan(TreeSize(5), TreeSize(5))
                .unwrap()
                .node_ids()
                .is_empty()
        );
        let plan = root_plan(TreeSize(3));
        assert_eq!(
            plan.build(&[Hash::default()]),
            Err(CoreError::HashCountMismatch {
                expected: 2,
                actual: 1
            })
        );
    }

    #[test]
    fn inclusion_plan_of_the_right_edge_folds_an_ephemeral_node() {
        // Leaf 0 of 7: siblings leaf 1, node [2,4), and the ephemeral [4,7) = node [4,6) + leaf 6.
        let plan = inclusion_plan(LeafIndex(0), TreeSize(7)).unwrap();
        assert_eq!(
            plan.node_ids(),
            [
                NodeId::leaf(1),
                NodeId::new(1, 1),
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
    fn huge_sizes_plan_without_panicking() {
        for (index, size) in [
            (0, u64::MAX),
            (u64::MAX - 1, u64::MAX),
            (1 << 63, u64::MAX),
            (5, 1 << 63),
        ] {
            let plan = inclusion_plan(LeafIndex(index), TreeSize(size)).unwrap();
            assert!(plan.node_ids().iter().all(|n| n.end() <= size));
        }
        for (m, n) in [
            (1, u64::MAX),
            (u64::MAX - 1, u64::MAX),
            (1 << 63, u64::MAX),
            ((1 << 63) - 1, 1 << 63),
        ] {
            let plan = consistency_plan(TreeSize(m), TreeSize(n)).unwrap();
            assert!(plan.node_ids().iter().all(|id| id.end() <= n));
        }
        assert_eq!(root_plan(TreeSize(u64::MAX)).node_ids().len(), 64);
    }
}
