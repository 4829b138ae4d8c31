//! Test support (feature `test-util`, with `std`): references that tests in this and other crates (the server's
//! sequencer tests, the fuzz targets) check tlog-core against, defined once.
//!
//! - [`reference`]: an independent, deliberately naive RFC 9162 §2.1 implementation written from the RFC text.
//! - [`tiles`]: C2SP tiles and entry bundles cut from a naive reference, and non-canonical tile paths.
//! - [`Tree`]: a tree built by [`CompactRange`](crate::CompactRange) that keeps every node and the root of every
//!   size, to build valid proofs through the proof plans.
//! - [`SplitMix64`]: a tiny seeded generator, so a failing randomized test can be replayed from its seed.

pub mod reference;
pub mod tiles;

use std::collections::HashMap;
use std::vec::Vec;

use crate::{
    CompactRange, Hash, LeafIndex, NodeId, ProofPlan, TreeSize, consistency_plan, inclusion_plan,
};

/// A Merkle tree with every node, and the root of every size up to its own.
pub struct Tree {
    pub leaves: Vec<Hash>,
    nodes: HashMap<NodeId, Hash>,
    /// `roots[s]` is the root of the first `s` leaves.
    pub roots: Vec<Hash>,
}

impl Tree {
    pub fn new(leaves: Vec<Hash>) -> Tree {
        let mut nodes = HashMap::new();
        let mut cr = CompactRange::new();
        let mut roots = std::vec![cr.root()];
        for leaf in &leaves {
            cr.append(*leaf, |id, h| {
                nodes.insert(id, h);
            })
            .expect("a test tree never overflows");
            roots.push(cr.root());
        }
        Tree {
            leaves,
            nodes,
            roots,
        }
    }

    pub fn size(&self) -> u64 {
        self.leaves.len() as u64
    }

    /// The root of the tree of `size` leaves (at most [`size`](Self::size)).
    pub fn root(&self, size: u64) -> Hash {
        self.roots[size as usize]
    }

    /// The hashes of the nodes a proof plan asks for, in its order.
    pub fn hashes(&self, ids: &[NodeId]) -> Vec<Hash> {
        ids.iter().map(|id| self.nodes[id]).collect()
    }

    fn build(&self, plan: ProofPlan) -> Vec<Hash> {
        plan.build(&self.hashes(plan.node_ids()))
            .expect("the plan's own nodes")
    }

    /// The correct inclusion proof of `index` in the tree of `size`, if `index < size <= self.size()`.
    pub fn inclusion(&self, index: u64, size: u64) -> Option<Vec<Hash>> {
        if index >= size || size > self.size() {
            return None;
        }
        inclusion_plan(LeafIndex(index), TreeSize(size))
            .ok()
            .map(|p| self.build(p))
    }

    /// The correct consistency proof from `size1` to `size2`, if `size1 <= size2 <= self.size()` (empty when
    /// `size1` is 0 or equals `size2`: no proof is needed).
    pub fn consistency(&self, size1: u64, size2: u64) -> Option<Vec<Hash>> {
        if size1 > size2 || size2 > self.size() {
            return None;
        }
        if size1 == 0 || size1 == size2 {
            return Some(Vec::new());
        }
        consistency_plan(TreeSize(size1), TreeSize(size2))
            .ok()
            .map(|p| self.build(p))
    }

    /// The size whose root `root` is, if any.
    pub fn size_of_root(&self, root: &Hash) -> Option<u64> {
        self.roots.iter().position(|r| r == root).map(|s| s as u64)
    }
}

/// splitmix64: a tiny seeded generator for tests (reproducible from the seed a test prints; not for secrets).
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Below `n` (> 0; modulo bias is irrelevant to tests).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in `[lo, hi]`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
}
