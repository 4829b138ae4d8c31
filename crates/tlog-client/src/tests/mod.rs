//! Test support: trees built with `CompactRange`, naive RFC 9162 §2.1 proofs to check against, and signed
//! checkpoints from fixed seeds.

mod evidence;
#[cfg(feature = "grpc")]
mod grpc;
mod offline;
mod tiles;

use tlog_checkpoint::{Checkpoint, SignedCheckpoint, SignerKey, VerifierKey, sign_checkpoint};
use tlog_core::{CompactRange, Hash, LeafIndex, TreeSize, empty_root, leaf_hash, node_hash};

use crate::Receipt;

pub(crate) const ORIGIN: &str = "example.com/tlog-test";

pub(crate) fn signer() -> SignerKey {
    SignerKey::from_seed(ORIGIN, [7; 32]).unwrap()
}

pub(crate) fn verifier() -> VerifierKey {
    signer().verifier()
}

/// Same name, different key pair.
pub(crate) fn other_signer() -> SignerKey {
    SignerKey::from_seed(ORIGIN, [8; 32]).unwrap()
}

pub(crate) fn entries(n: u64) -> Vec<Vec<u8>> {
    (0..n).map(|i| format!("entry {i}").into_bytes()).collect()
}

pub(crate) fn leaves<E: AsRef<[u8]>>(entries: &[E]) -> Vec<Hash> {
    entries.iter().map(|e| leaf_hash(e.as_ref())).collect()
}

/// The root of the leaves, as a log computes it.
pub(crate) fn root(leaves: &[Hash]) -> Hash {
    let mut tree = CompactRange::new();
    tree.extend(leaves.iter().copied(), |_, _| {}).unwrap();
    tree.root()
}

/// Largest power of two smaller than `n` (n > 1).
fn split(n: usize) -> usize {
    let mut k = 1;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// RFC 9162 §2.1.1 MTH, written as the recursion in the RFC.
pub(crate) fn mth(d: &[Hash]) -> Hash {
    match d.len() {
        0 => empty_root(),
        1 => d[0],
        n => {
            let k = split(n);
            node_hash(&mth(&d[..k]), &mth(&d[k..]))
        }
    }
}

/// RFC 9162 §2.1.3.1 PATH(m, D[n]).
pub(crate) fn inclusion_proof(m: usize, d: &[Hash]) -> Vec<Hash> {
    let n = d.len();
    if n <= 1 {
        return Vec::new();
    }
    let k = split(n);
    let (mut path, sibling) = if m < k {
        (inclusion_proof(m, &d[..k]), mth(&d[k..]))
    } else {
        (inclusion_proof(m - k, &d[k..]), mth(&d[..k]))
    };
    path.push(sibling);
    path
}

/// RFC 9162 §2.1.4.1 SUBPROOF(m, D[n], b).
fn subproof(m: usize, d: &[Hash], b: bool) -> Vec<Hash> {
    let n = d.len();
    if m == n {
        return if b { Vec::new() } else { vec![mth(d)] };
    }
    let k = split(n);
    let (mut proof, sibling) = if m <= k {
        (subproof(m, &d[..k], b), mth(&d[k..]))
    } else {
        (subproof(m - k, &d[k..], false), mth(&d[..k]))
    };
    proof.push(sibling);
    proof
}

/// RFC 9162 §2.1.4.1 PROOF(m, D[n]), for 0 < m <= n.
pub(crate) fn consistency_proof(m: usize, d: &[Hash]) -> Vec<Hash> {
    subproof(m, d, true)
}

pub(crate) fn sign(key: &SignerKey, size: u64, root: Hash, timestamp: u64) -> SignedCheckpoint {
    let cp = Checkpoint::new(ORIGIN, TreeSize(size), root).unwrap();
    sign_checkpoint(key, &cp, timestamp).unwrap()
}

/// The signed checkpoint of the first `size` leaves.
pub(crate) fn checkpoint(leaves: &[Hash], size: usize, timestamp: u64) -> SignedCheckpoint {
    sign(&signer(), size as u64, root(&leaves[..size]), timestamp)
}

/// A receipt for leaf `index` in the tree of the first `size` leaves.
pub(crate) fn receipt(leaves: &[Hash], index: usize, size: usize) -> Receipt {
    Receipt {
        index: LeafIndex(index as u64),
        leaf_hash: leaves[index],
        checkpoint: checkpoint(leaves, size, 1_700_000_000).note,
        inclusion_proof: inclusion_proof(index, &leaves[..size]),
        duplicate: false,
    }
}

#[test]
fn compact_range_root_matches_rfc_recursion() {
    let l = leaves(&entries(40));
    for n in 0..=l.len() {
        assert_eq!(root(&l[..n]), mth(&l[..n]), "size {n}");
    }
}
