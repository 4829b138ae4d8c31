//! `rs_merkle` (1.5) as an independent reference: roots and inclusion proofs for every size 1..=300 and every index.
//!
//! How rs_merkle relates to RFC 9162, read from its source (`hasher.rs`, `partial_tree.rs`, `merkle_tree.rs`,
//! `merkle_proof.rs`, `utils/indices.rs`):
//! - Leaves: `MerkleTree::from_leaves` takes leaf *hashes* and never hashes them itself. We pass RFC 9162 leaf hashes
//!   `SHA-256(0x00 || entry)`, computed here with `sha2` directly.
//! - Interior nodes: its default `Hasher::concat_and_hash` is `hash(left || right)`, with no `0x01` prefix. The
//!   `Rfc9162` hasher below overrides it with `SHA-256(0x01 || left || right)`.
//! - Unbalanced trees: rs_merkle pairs each level left to right and promotes a lone last node unchanged
//!   (`concat_and_hash(left, None) = left`). That yields exactly the RFC 9162 §2.1.1 tree: at every level the nodes
//!   cover `[i·2^l, min((i+1)·2^l, n))`, which is how the RFC's split at the largest power of two below `n`
//!   decomposes `[0, n)`. So roots agree for every size >= 1. Its depth is `bit_length(n)`, one level more than
//!   needed for powers of two; the extra level is a promotion and changes nothing.
//! - Empty tree: rs_merkle has no root (`None`); RFC 9162 says `SHA-256("")`. Not compared.
//! - Proofs: `proof(&[i]).proof_hashes()` lists, bottom-up, the sibling of the path node at each level, skipping
//!   levels where the path node was promoted (no sibling). That is RFC 9162 `PATH` in the RFC's order, so proofs
//!   agree element for element. (Its multi-leaf proofs have no RFC counterpart and are not used.)
//! - Verification: `MerkleProof::root` consumes as many hashes as the leaf's path needs and ignores any extra, so it
//!   accepts a proof with trailing garbage; RFC 9162 §2.1.3.2 rejects a proof of the wrong length. We use it only
//!   to accept our valid proofs, never to judge invalid ones.
//! - Incremental trees: `insert` + `commit` one leaf at a time must give the same roots as our `CompactRange`.

mod common;

use common::Rfc9162;
use rs_merkle::{MerkleProof, MerkleTree};
use sha2::{Digest, Sha256};
use tlog_core::{
    CompactRange, Hash, LeafIndex, NodeId, TreeSize, inclusion_plan, verify_inclusion,
};

const MAX_SIZE: usize = 300;

fn rfc_leaf(entry: &[u8]) -> [u8; 32] {
    Sha256::new()
        .chain_update([0x00])
        .chain_update(entry)
        .finalize()
        .into()
}

fn leaves() -> Vec<[u8; 32]> {
    (0..MAX_SIZE as u32)
        .map(|i| rfc_leaf(&i.to_be_bytes()))
        .collect()
}

#[test]
fn roots_and_inclusion_proofs_match_rs_merkle() {
    let leaves = leaves();
    // Our side: every complete node of the largest tree and every prefix root, from CompactRange.
    let mut nodes = std::collections::HashMap::<NodeId, Hash>::new();
    let mut ours = CompactRange::new();
    let mut roots = vec![ours.root()];
    for leaf in &leaves {
        ours.append(Hash(*leaf), |id, h| {
            nodes.insert(id, h);
        })
        .unwrap();
        roots.push(ours.root());
    }

    for size in 1..=MAX_SIZE {
        let theirs = MerkleTree::<Rfc9162>::from_leaves(&leaves[..size]);
        let root = roots[size];
        assert_eq!(theirs.root().map(Hash), Some(root), "root of size {size}");
        for (index, &leaf) in leaves[..size].iter().enumerate() {
            let plan = inclusion_plan(LeafIndex(index as u64), TreeSize(size as u64)).unwrap();
            let hashes: Vec<Hash> = plan.node_ids().iter().map(|id| nodes[id]).collect();
            let proof = plan.build(&hashes).unwrap();

            let their_proof = theirs.proof(&[index]);
            let their_hashes: Vec<Hash> = their_proof
                .proof_hashes()
                .iter()
                .copied()
                .map(Hash)
                .collect();
            assert_eq!(proof, their_hashes, "proof of {index} in {size}");

            // Each side accepts the other's proof.
            let leaf = Hash(leaf);
            verify_inclusion(
                &leaf,
                LeafIndex(index as u64),
                TreeSize(size as u64),
                &their_hashes,
                &root,
            )
            .unwrap();
            let ours_for_them = MerkleProof::<Rfc9162>::new(proof.iter().map(|h| h.0).collect());
            assert!(
                ours_for_them.verify(root.0, &[index], &[leaf.0], size),
                "rs_merkle rejects {index} in {size}"
            );
        }
    }
}

#[test]
fn incremental_roots_match_rs_merkle() {
    let leaves = leaves();
    let mut theirs = MerkleTree::<Rfc9162>::new();
    let mut ours = CompactRange::new();
    for (size, leaf) in leaves.iter().enumerate().map(|(i, l)| (i + 1, l)) {
        theirs.insert(*leaf).commit();
        ours.append(Hash(*leaf), |_, _| {}).unwrap();
        assert_eq!(
            theirs.root().map(Hash),
            Some(ours.root()),
            "root after {size} appends"
        );
    }
}

#[test]
fn rs_merkle_ignores_trailing_garbage_but_we_do_not() {
    let leaves = leaves();
    let theirs = MerkleTree::<Rfc9162>::from_leaves(&leaves[..5]);
    let mut proof = theirs.proof(&[2]).proof_hashes().to_vec();
    proof.push([0xee; 32]);
    let root = theirs.root().unwrap();
    assert!(MerkleProof::<Rfc9162>::new(proof.clone()).verify(root, &[2], &[leaves[2]], 5));
    let proof: Vec<Hash> = proof.into_iter().map(Hash).collect();
    assert!(
        verify_inclusion(
            &Hash(leaves[2]),
            LeafIndex(2),
            TreeSize(5),
            &proof,
            &Hash(root)
        )
        .is_err()
    );
}
