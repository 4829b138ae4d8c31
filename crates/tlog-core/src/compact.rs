//! The right frontier of a growing tree: enough state to append leaves and compute the root in O(log n) memory.

use alloc::vec::Vec;

use crate::error::CoreError;
use crate::hash::{Hash, TreeSize, node_hash};
use crate::node::{NodeId, fold_range};

/// The hashes of [`range_nodes(0, size)`](crate::range_nodes): the perfect subtrees that make up the tree
/// `[0, size)`, largest (leftmost) first. There is one per set bit of `size`.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct CompactRange {
    size: u64,
    hashes: Vec<Hash>,
}

impl CompactRange {
    /// The empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds a frontier saved earlier as [`size`](Self::size) and [`hashes`](Self::hashes).
    pub fn from_parts(size: TreeSize, hashes: Vec<Hash>) -> Result<Self, CoreError> {
        let expected = size.0.count_ones() as usize;
        if hashes.len() != expected {
            return Err(CoreError::FrontierLength {
                size: size.0,
                expected,
                actual: hashes.len(),
            });
        }
        Ok(CompactRange {
            size: size.0,
            hashes,
        })
    }

    pub fn size(&self) -> TreeSize {
        TreeSize(self.size)
    }

    pub fn hashes(&self) -> &[Hash] {
        &self.hashes
    }

    /// Appends one leaf hash. Calls `visit(NodeId::leaf(i), leaf)` first, then `visit(id, hash)` for every interior
    /// node the append completes, bottom-up, so a store can persist every complete node as it appears.
    ///
    /// Fails with [`CoreError::TreeFull`] if the tree already has `u64::MAX` leaves; the range is then unchanged.
    pub fn append(
        &mut self,
        leaf: Hash,
        mut visit: impl FnMut(NodeId, Hash),
    ) -> Result<(), CoreError> {
        let index = self.size;
        let size = index.checked_add(1).ok_or(CoreError::TreeFull)?;
        visit(NodeId::leaf(index), leaf);
        // Leaf `index` completes one subtree per trailing one bit of `index`: each is the frontier's smallest
        // (rightmost) subtree merged with what has been built so far. Those are the last `merges` frontier hashes
        // because the frontier has one hash per set bit of `index`, in order from the highest bit down.
        let merges = index.trailing_ones();
        let keep = self.hashes.len().saturating_sub(merges as usize);
        let mut hash = leaf;
        for (level, left) in (1u8..).zip(self.hashes.drain(keep..).rev()) {
            hash = node_hash(&left, &hash);
            visit(NodeId::new(level, index >> level), hash);
        }
        self.hashes.push(hash);
        self.size = size;
        Ok(())
    }

    /// Appends many leaf hashes in order, visiting nodes exactly as repeated [`append`](Self::append) calls would.
    ///
    /// On [`CoreError::TreeFull`] the leaves before the one that did not fit have been appended.
    pub fn extend<I: IntoIterator<Item = Hash>>(
        &mut self,
        leaves: I,
        mut visit: impl FnMut(NodeId, Hash),
    ) -> Result<(), CoreError> {
        leaves
            .into_iter()
            .try_for_each(|leaf| self.append(leaf, &mut visit))
    }

    /// The RFC 9162 §2.1.1 `MTH` of the leaves `[0, size)`; [`empty_root`](crate::empty_root) for size 0.
    pub fn root(&self) -> Hash {
        fold_range(&self.hashes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::{empty_root, leaf_hash};
    use alloc::vec;

    #[test]
    fn visits_leaf_then_completed_nodes_bottom_up() {
        let mut cr = CompactRange::new();
        let mut seen = Vec::new();
        for i in 0..4u8 {
            cr.append(leaf_hash(&[i]), |id, _| seen.push(id)).unwrap();
        }
        assert_eq!(
            seen,
            [
                NodeId::leaf(0),
                NodeId::leaf(1),
                NodeId::new(1, 0),
                NodeId::leaf(2),
                NodeId::leaf(3),
                NodeId::new(1, 1),
                NodeId::new(2, 0),
            ]
        );
        assert_eq!(cr.hashes().len(), 1);
    }

    #[test]
    fn empty_range() {
        let cr = CompactRange::new();
        assert_eq!(cr.size(), TreeSize(0));
        assert_eq!(cr.root(), empty_root());
        assert!(cr.hashes().is_empty());
    }

    #[test]
    fn full_tree_rejects_append_unchanged() {
        let hashes = vec![Hash([7; 32]); 64];
        let mut cr = CompactRange::from_parts(TreeSize(u64::MAX), hashes).unwrap();
        let before = cr.clone();
        let mut visited = 0;
        assert_eq!(
            cr.append(Hash([1; 32]), |_, _| visited += 1),
            Err(CoreError::TreeFull)
        );
        assert_eq!(
            cr.extend([Hash([1; 32])], |_, _| visited += 1),
            Err(CoreError::TreeFull)
        );
        assert_eq!((cr, visited), (before, 0));
    }

    #[test]
    fn last_leaf_before_full_merges_63_levels() {
        // Index u64::MAX - 1 ends in a zero bit: its leaf merges nothing and the frontier grows to 64 hashes.
        let mut cr =
            CompactRange::from_parts(TreeSize(u64::MAX - 1), vec![Hash([3; 32]); 63]).unwrap();
        let mut nodes = 0;
        cr.append(Hash([4; 32]), |_, _| nodes += 1).unwrap();
        assert_eq!(
            (cr.size(), cr.hashes().len(), nodes),
            (TreeSize(u64::MAX), 64, 1)
        );
        // 2^63 - 1 leaves: the next leaf completes 63 interior nodes, up to the level-63 left half.
        let mut cr =
            CompactRange::from_parts(TreeSize((1 << 63) - 1), vec![Hash([3; 32]); 63]).unwrap();
        let mut last = None;
        cr.append(Hash([4; 32]), |id, _| last = Some(id)).unwrap();
        assert_eq!(last, Some(NodeId::new(63, 0)));
        assert_eq!(cr.hashes().len(), 1);
    }

    #[test]
    fn from_parts_checks_length() {
        assert_eq!(
            CompactRange::from_parts(TreeSize(5), vec![Hash::default()]),
            Err(CoreError::FrontierLength {
                size: 5,
                expected: 2,
                actual: 1
            })
        );
        assert!(CompactRange::from_parts(TreeSize(0), vec![]).is_ok());
    }
}
