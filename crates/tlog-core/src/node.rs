//! Perfect subtrees ("nodes") of the tree and the compact-range decomposition of a leaf range.

use alloc::vec::Vec;

use crate::hash::{Hash, empty_root, node_hash};

/// A perfect subtree of `2^level` leaves: level 0 is a leaf, and the node covers leaves
/// `[index << level, (index + 1) << level)`.
///
/// These are the nodes a log stores: every one of them is complete once its last leaf is appended, and its hash
/// never changes afterwards. `Ord` compares `(level, index)`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct NodeId {
    pub level: u8,
    pub index: u64,
}

impl NodeId {
    pub const fn new(level: u8, index: u64) -> Self {
        NodeId { level, index }
    }

    /// The node of leaf `index`.
    pub const fn leaf(index: u64) -> Self {
        NodeId { level: 0, index }
    }

    /// The node one level up that contains this one. The level saturates at `u8::MAX`, far above the 64 levels a
    /// `u64`-sized tree can have.
    pub fn parent(self) -> NodeId {
        NodeId::new(self.level.saturating_add(1), self.index >> 1)
    }

    /// The other child of this node's parent.
    pub fn sibling(self) -> NodeId {
        NodeId::new(self.level, self.index ^ 1)
    }

    /// The first leaf covered, saturating at `u64::MAX` for nodes that start beyond the `u64` range.
    pub fn begin(self) -> u64 {
        shl_saturating(u128::from(self.index), self.level)
    }

    /// One past the last leaf covered, saturating at `u64::MAX`.
    pub fn end(self) -> u64 {
        // `index + 1` may be 2^64: widened, it cannot overflow.
        shl_saturating(u128::from(self.index) + 1, self.level)
    }
}

/// `x << level` for `x <= 2^64`, saturated to `u64::MAX`. Shifts below 64 cannot overflow 128 bits.
fn shl_saturating(x: u128, level: u8) -> u64 {
    match (x, level) {
        (0, _) => 0,
        (_, 0..64) => u64::try_from(x << level).unwrap_or(u64::MAX),
        _ => u64::MAX,
    }
}

/// The perfect subtrees whose concatenation is the leaf range `[begin, end)`, left to right: the "compact range" of
/// the range (the nodes grow in size, then shrink). For `begin == 0` this is the right frontier of the tree of size
/// `end`, largest subtree first. Empty when `begin >= end`.
pub fn range_nodes(begin: u64, end: u64) -> Vec<NodeId> {
    let mut nodes = Vec::new();
    let mut at = begin;
    while at < end {
        // The largest node that starts at `at` (alignment) and still fits in the range. The greedy choice is the
        // unique decomposition: a larger node would either be misaligned or cross `end`.
        let align = at.trailing_zeros(); // 64 when at == 0
        let fit = (end - at).ilog2(); // end > at, so end - at >= 1
        let level = align.min(fit);
        // level <= 63 and at + 2^level <= end: neither the cast nor the shift nor the addition can overflow.
        nodes.push(NodeId::new(level as u8, at >> level));
        at += 1 << level;
    }
    nodes
}

/// Folds the hashes of a left-to-right list of perfect subtrees right to left (`h = node_hash(prev, h)`).
///
/// For the compact range of `[0, n)` — or of any range the RFC 9162 §2.1.1 split recursion produces, such as the
/// right half `D[k:n]` — this is exactly the recursive `MTH` of that range, because each split point is the end of the
/// largest leading subtree. The empty list folds to [`empty_root`].
pub fn fold_range(hashes: &[Hash]) -> Hash {
    fold_from_right(hashes.iter().rev())
}

/// [`fold_range`] of hashes given right to left (smallest subtree first), consuming just what it is given.
pub(crate) fn fold_from_right<'a>(mut right_to_left: impl Iterator<Item = &'a Hash>) -> Hash {
    match right_to_left.next() {
        None => empty_root(),
        Some(last) => right_to_left.fold(*last, |acc, left| node_hash(left, &acc)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_coverage() {
        let n = NodeId::new(3, 5);
        assert_eq!((n.begin(), n.end()), (40, 48));
        assert_eq!(n.parent(), NodeId::new(4, 2));
        assert_eq!(n.sibling(), NodeId::new(3, 4));
        assert_eq!(NodeId::new(4, 2).sibling(), NodeId::new(4, 3));
        assert_eq!(NodeId::leaf(9), NodeId::new(0, 9));
    }

    #[test]
    fn node_coverage_saturates() {
        assert_eq!(NodeId::new(64, 0).begin(), 0);
        assert_eq!(NodeId::new(64, 0).end(), u64::MAX);
        assert_eq!(NodeId::new(64, 1).begin(), u64::MAX);
        assert_eq!(NodeId::new(255, 7).end(), u64::MAX);
        assert_eq!(NodeId::new(0, u64::MAX).end(), u64::MAX);
        assert_eq!(NodeId::new(63, 1).begin(), 1 << 63);
        assert_eq!(NodeId::new(63, 1).end(), u64::MAX);
        assert_eq!(NodeId::new(63, 0).end(), 1 << 63);
        assert_eq!(NodeId::new(1, u64::MAX).begin(), u64::MAX);
        assert_eq!(NodeId::new(u8::MAX, 3).parent(), NodeId::new(u8::MAX, 1));
    }

    #[test]
    fn range_nodes_examples() {
        assert_eq!(range_nodes(0, 0), []);
        assert_eq!(range_nodes(5, 5), []);
        assert_eq!(range_nodes(7, 3), []);
        assert_eq!(range_nodes(0, 1), [NodeId::leaf(0)]);
        assert_eq!(
            range_nodes(0, 7),
            [NodeId::new(2, 0), NodeId::new(1, 2), NodeId::leaf(6)]
        );
        assert_eq!(
            range_nodes(3, 13),
            [
                NodeId::leaf(3),
                NodeId::new(2, 1),
                NodeId::new(2, 2),
                NodeId::leaf(12)
            ]
        );
        assert_eq!(range_nodes(0, u64::MAX).len(), 64);
        assert_eq!(range_nodes(1, u64::MAX).len(), 126);
        assert_eq!(
            range_nodes(u64::MAX - 1, u64::MAX),
            [NodeId::leaf(u64::MAX - 1)]
        );
    }

    #[test]
    fn range_nodes_tile_the_range_exactly() {
        for begin in 0..70u64 {
            for end in begin..140u64 {
                let nodes = range_nodes(begin, end);
                let mut at = begin;
                for n in &nodes {
                    assert_eq!(n.begin(), at, "{begin}..{end}: {nodes:?}");
                    at = n.end();
                }
                assert_eq!(at, end);
                // Compactness: no two neighbours are siblings that could merge into their parent.
                for w in nodes.windows(2) {
                    assert!(
                        !(w[0].level == w[1].level
                            && w[0].sibling() == w[1]
                            && w[0].index % 2 == 0)
                    );
                }
            }
        }
    }
}
