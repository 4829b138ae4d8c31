//! Inclusion proofs: a correct proof from a real tree always verifies; after fuzz-chosen mutations (bit flips,
//! truncation, extension, removal, swaps, a changed leaf, index or size, another root) verification never
//! panics, agrees with the RFC 9162 §2.1.3.2 reference loop, and never proves anything false about a real root.
//!
//! Input: tree size (u16), leaf alphabet, index and size within the tree, then mutations until the input ends.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tlog_core::{Hash, LeafIndex, TreeSize, verify_inclusion};
use tlog_fuzz::reference::{Rfc, rfc_verify_inclusion, split};
use tlog_fuzz::{Input, Tree, leaves_from, mutate_proof};

const MAX_LEAVES: u64 = 300;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let n = input.u16() as u64 % MAX_LEAVES + 1;
    let tree = Tree::new(leaves_from(&mut input, n as usize));
    let size = input.u16() as u64 % n + 1;
    let index = input.u16() as u64 % size;
    let proof = tree.inclusion(index, size).expect("index < size <= n");
    let (leaf, root) = (tree.leaves[index as usize], tree.roots[size as usize]);
    assert!(
        verify_inclusion(&leaf, LeafIndex(index), TreeSize(size), &proof, &root).is_ok(),
        "a correct proof of {index} in {size} failed"
    );

    // Hashes a mutation may splice in: the tree's own, so that near-misses are tried, not just garbage.
    let mut extra: Vec<Hash> = proof.clone();
    extra.extend([leaf, root, tree.roots[size as usize - 1], tree.leaves[0]]);
    let (mut leaf2, mut index2, mut size2, mut proof2, mut root2) =
        (leaf, index, size, proof, root);
    let mut size_follows_root = true;
    for _ in 0..16 {
        if input.is_empty() {
            break;
        }
        match input.u8() % 8 {
            0..=2 => mutate_proof(&mut input, &mut proof2, &extra),
            3 => std::mem::swap(&mut index2, &mut size2),
            4 => index2 = input.edgy_u64(index2),
            5 => size2 = input.edgy_u64(size2),
            6 => {
                leaf2 = match input.u8() % 3 {
                    0 => tree.leaves[input.u16() as usize % tree.leaves.len()],
                    1 => extra[input.u8() as usize % extra.len()],
                    _ => input.hash(),
                }
            }
            _ => {
                // Verify against another root: one of this tree's (another size) or anything.
                size_follows_root = false;
                root2 = match input.u8() % 2 {
                    0 => tree.roots[input.u16() as usize % tree.roots.len()],
                    _ => input.hash(),
                };
            }
        }
    }
    // Unless a root was chosen explicitly, the claim is checked against the root of the size it claims, as a
    // verifier does with a signed checkpoint (which binds size and root); beyond the tree, the original root.
    if size_follows_root && size2 <= tree.size() {
        root2 = tree.roots[size2 as usize];
    }

    let ok = verify_inclusion(&leaf2, LeafIndex(index2), TreeSize(size2), &proof2, &root2).is_ok();
    let rfc = rfc_verify_inclusion(index2, size2, leaf2.0, &to_h(&proof2), root2.0);
    assert_eq!(ok, rfc, "tlog-core and the RFC 9162 reference disagree");

    // Soundness against the real roots: accepted means the claim is true of that tree. With the size that
    // belongs to the root: exactly the claimed leaf at exactly the claimed index, with exactly the correct proof.
    // With another size (a pairing a signed checkpoint rules out) the RFC computation may coincide with part of
    // the real tree's (leaf 0 of 5 and of 6; or any node of the tree presented as a "leaf" of a smaller tree), so
    // there the requirement is that the "leaf" is a node of the real tree: nothing foreign ever verifies.
    if let Some(r) = tree.size_of_root(&root2) {
        if r == size2 {
            let truth = index2 < r
                && tree.leaves[index2 as usize] == leaf2
                && tree.inclusion(index2, r).as_ref() == Some(&proof2);
            assert_eq!(ok, truth, "claim ({index2}, {size2}) against its own root");
        } else if ok {
            let rfc = Rfc::new(tree.leaves[..r as usize].iter().map(|h| h.0).collect());
            assert!(
                is_node(&rfc, 0, r as usize, &leaf2.0),
                "accepted a hash that is no node of the tree of size {r}"
            );
        }
    }
});

fn to_h(proof: &[Hash]) -> Vec<[u8; 32]> {
    proof.iter().map(|h| h.0).collect()
}

/// Whether `h` is `MTH(D[lo:hi])` or the hash of a node below it in the RFC 9162 §2.1.1 recursion.
fn is_node(rfc: &Rfc, lo: usize, hi: usize, h: &[u8; 32]) -> bool {
    if rfc.mth(lo, hi) == *h {
        return true;
    }
    if hi - lo <= 1 {
        return false;
    }
    let k = split(hi - lo);
    is_node(rfc, lo, lo + k, h) || is_node(rfc, lo + k, hi, h)
}
