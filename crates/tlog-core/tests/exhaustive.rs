//! Exhaustive cross-check with the naive RFC 9162 reference for every tree of up to 300 leaves: every inclusion
//! proof `(index, size)` and every consistency proof `(size1, size2)` the crate builds from stored nodes equals the
//! reference `PATH` / `PROOF`, passes the crate's verifier and the RFC's literal verification loops, and the proof
//! lengths agree.

use tlog_core::testing::reference;

use std::collections::HashMap;

use reference::H;
use tlog_core::{
    Hash, LeafIndex, NodeId, TreeSize, consistency_plan, consistency_proof_len, inclusion_plan,
    inclusion_proof_len, range_nodes, root_from_inclusion_proof, root_plan, verify_consistency,
    verify_inclusion,
};

const MAX_SIZE: u64 = 300;

struct Tree {
    rfc: reference::Rfc,
    /// Every complete node of the tree of `MAX_SIZE` leaves, hashed by the reference `MTH` of its leaves. A node
    /// complete in a smaller tree is in here with the same hash.
    nodes: HashMap<NodeId, Hash>,
}

impl Tree {
    fn new() -> Self {
        let rfc = reference::Rfc::new(
            (0..MAX_SIZE as usize)
                .map(|i| reference::leaf(&reference::entry(i)))
                .collect(),
        );
        let mut nodes = HashMap::new();
        for level in 0..=MAX_SIZE.ilog2() as u8 {
            let width = 1usize << level;
            for index in 0..MAX_SIZE as usize / width {
                let hash = rfc.mth(index * width, (index + 1) * width);
                nodes.insert(NodeId::new(level, index as u64), Hash(hash));
            }
        }
        Tree { rfc, nodes }
    }

    /// The hashes of `ids`, asserting each is a complete node of the tree of `size` (what a store has persisted).
    fn fetch(&self, ids: &[NodeId], size: u64) -> Vec<Hash> {
        ids.iter()
            .map(|id| {
                assert!(
                    id.end() <= size,
                    "{id:?} is not complete in a tree of {size}"
                );
                self.nodes[id]
            })
            .collect()
    }

    fn root(&self, size: u64) -> Hash {
        Hash(self.rfc.mth(0, size as usize))
    }
}

fn hashes(hs: Vec<H>) -> Vec<Hash> {
    hs.into_iter().map(Hash).collect()
}

fn raw(hs: &[Hash]) -> Vec<H> {
    hs.iter().map(|h| h.0).collect()
}

#[test]
fn roots_from_stored_nodes() {
    let tree = Tree::new();
    for size in 0..=MAX_SIZE {
        let plan = root_plan(TreeSize(size));
        assert_eq!(
            plan.node_ids(),
            range_nodes(0, size).into_iter().rev().collect::<Vec<_>>()
        );
        let built = plan.build(&tree.fetch(plan.node_ids(), size)).unwrap();
        assert_eq!(built, [tree.root(size)], "size {size}");
    }
}

#[test]
fn every_inclusion_proof() {
    let tree = Tree::new();
    let mut checked = 0;
    for size in 1..=MAX_SIZE {
        let root = tree.root(size);
        for index in 0..size {
            let (i, s) = (LeafIndex(index), TreeSize(size));
            let want = hashes(tree.rfc.path(index as usize, size as usize));
            let plan = inclusion_plan(i, s).unwrap();
            let proof = plan.build(&tree.fetch(plan.node_ids(), size)).unwrap();
            assert_eq!(proof, want, "PATH({index}, D[{size}])");
            assert_eq!(inclusion_proof_len(i, s), Ok(want.len()));

            let leaf = Hash(tree.rfc.leaves()[index as usize]);
            assert_eq!(root_from_inclusion_proof(&leaf, i, s, &proof), Ok(root));
            verify_inclusion(&leaf, i, s, &proof, &root).unwrap();
            assert!(reference::rfc_verify_inclusion(
                index,
                size,
                leaf.0,
                &raw(&proof),
                root.0
            ));
            checked += 1;
        }
    }
    assert_eq!(checked, MAX_SIZE * (MAX_SIZE + 1) / 2);
}

#[test]
fn every_consistency_proof() {
    let tree = Tree::new();
    let roots: Vec<Hash> = (0..=MAX_SIZE).map(|s| tree.root(s)).collect();
    let mut checked = 0;
    for size2 in 1..=MAX_SIZE {
        for size1 in 1..=size2 {
            let (m, n) = (TreeSize(size1), TreeSize(size2));
            let (root1, root2) = (roots[size1 as usize], roots[size2 as usize]);
            let want = hashes(tree.rfc.proof(size1 as usize, size2 as usize));
            let plan = consistency_plan(m, n).unwrap();
            let proof = plan.build(&tree.fetch(plan.node_ids(), size2)).unwrap();
            assert_eq!(proof, want, "PROOF({size1}, D[{size2}])");
            assert_eq!(consistency_proof_len(m, n), Ok(want.len()));

            verify_consistency(m, n, &proof, &root1, &root2).unwrap();
            if size1 < size2 {
                assert!(reference::rfc_verify_consistency(
                    size1,
                    size2,
                    root1.0,
                    root2.0,
                    &raw(&proof)
                ));
            }
            checked += 1;
        }
        // The empty tree is consistent with every tree, with an empty proof.
        verify_consistency(
            TreeSize(0),
            TreeSize(size2),
            &[],
            &roots[0],
            &roots[size2 as usize],
        )
        .unwrap();
    }
    assert_eq!(checked, MAX_SIZE * (MAX_SIZE + 1) / 2);
}
