//! Consistency proofs: a correct proof between two sizes of a real tree always verifies; after fuzz-chosen
//! mutations (bit flips, truncation, extension, removal, swapped or changed sizes, other roots, including the
//! roots of a fork that shares only a prefix) verification never panics, agrees with the RFC 9162 §2.1.4.2
//! reference loop where the RFC defines it, and never calls two real roots consistent unless they are.
//!
//! Input: tree size (u16), leaf alphabet, fork point, the two sizes, then mutations until the input ends.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tlog_core::{Hash, TreeSize, empty_root, leaf_hash, verify_consistency};
use tlog_fuzz::reference::rfc_verify_consistency;
use tlog_fuzz::{Input, Tree, leaves_from, mutate_proof};

const MAX_LEAVES: u64 = 300;

/// A root of one of the two trees: (which tree, size).
type Known = (usize, u64);

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let n = input.u16() as u64 % MAX_LEAVES + 1;
    let leaves = leaves_from(&mut input, n as usize);
    // The fork: the same leaves up to `fork`, then one different leaf (not in the alphabet) and the rest.
    let fork = input.u16() as u64 % n;
    let mut forked = leaves.clone();
    forked[fork as usize] = leaf_hash(b"forked entry");
    let trees = [Tree::new(leaves), Tree::new(forked)];
    let tree = &trees[0];

    let size2 = input.u16() as u64 % (n + 1);
    let size1 = input.u16() as u64 % (size2 + 1);
    let proof = tree.consistency(size1, size2).expect("size1 <= size2 <= n");
    let (root1, root2) = (tree.roots[size1 as usize], tree.roots[size2 as usize]);
    assert!(
        verify_consistency(TreeSize(size1), TreeSize(size2), &proof, &root1, &root2).is_ok(),
        "a correct proof from {size1} to {size2} failed"
    );

    let mut extra: Vec<Hash> = proof.clone();
    extra.extend([root1, root2, tree.leaves[0], trees[1].roots[size2 as usize]]);
    let (mut s1, mut s2, mut proof2) = (size1, size2, proof);
    // Roots chosen explicitly; otherwise each follows its claimed size, as with signed checkpoints.
    let (mut r1, mut r2): (Option<Hash>, Option<Hash>) = (None, None);
    for _ in 0..16 {
        if input.is_empty() {
            break;
        }
        match input.u8() % 8 {
            0..=2 => mutate_proof(&mut input, &mut proof2, &extra),
            3 => std::mem::swap(&mut s1, &mut s2),
            4 => s1 = input.edgy_u64(s1),
            5 => s2 = input.edgy_u64(s2),
            _ => {
                let which = input.u8();
                let root = match which % 3 {
                    0 => trees[0].roots[input.u16() as usize % trees[0].roots.len()],
                    1 => trees[1].roots[input.u16() as usize % trees[1].roots.len()],
                    _ => input.hash(),
                };
                if which & 0x80 == 0 {
                    r1 = Some(root);
                } else {
                    r2 = Some(root);
                }
            }
        }
    }
    let follow = |s: u64, original: Hash| {
        if s <= tree.size() {
            tree.roots[s as usize]
        } else {
            original
        }
    };
    let root1b = r1.unwrap_or_else(|| follow(s1, root1));
    let root2b = r2.unwrap_or_else(|| follow(s2, root2));

    let ok = verify_consistency(TreeSize(s1), TreeSize(s2), &proof2, &root1b, &root2b).is_ok();
    // The RFC loop is defined for 0 < s1 < s2; tlog-core's documented rules cover the rest.
    let expected_structurally = if 0 < s1 && s1 < s2 {
        let path: Vec<[u8; 32]> = proof2.iter().map(|h| h.0).collect();
        rfc_verify_consistency(s1, s2, root1b.0, root2b.0, &path)
    } else if s1 > s2 {
        false
    } else {
        // No proof needed: s1 == 0 (the empty tree's root is fixed) and/or s1 == s2 (the roots must match); for
        // 0 -> 0 both rules apply.
        proof2.is_empty() && (s1 != 0 || root1b == empty_root()) && (s1 != s2 || root1b == root2b)
    };
    assert_eq!(
        ok, expected_structurally,
        "disagrees with RFC 9162 / the documented rules"
    );

    // Soundness against real roots: accepted means the first tree really is a prefix of the second, whatever
    // sizes were claimed (a wrong size paired with a root can share the RFC computation of the right one).
    let find = |root: &Hash| -> Option<Known> {
        (0..2).find_map(|t| trees[t].size_of_root(root).map(|s| (t, s)))
    };
    if let (Some((t1, a)), Some((t2, b))) = (find(&root1b), find(&root2b)) {
        // Sizes up to the fork point are shared by both trees.
        let prefix = a <= b && (t1 == t2 || a <= fork);
        if ok {
            assert!(prefix, "proved ({t1}, {a}) consistent with ({t2}, {b})");
        }
        if (a, b) == (s1, s2) && prefix {
            let correct = trees[t2].consistency(a, b);
            assert_eq!(
                ok,
                correct.as_ref() == Some(&proof2),
                "claim ({s1}, {s2}) against its own roots"
            );
        }
    }
});
