//! An independent, deliberately naive RFC 9162 §2.1 reference, written straight from the RFC text and sharing
//! nothing with the crate: its own SHA-256 calls, the recursive `MTH`, `PATH` and `SUBPROOF` of §2.1.1, §2.1.3.1
//! and §2.1.4.1 over leaf ranges, and the two verification loops of §2.1.3.2 and §2.1.4.2 step by step.
//!
//! `D` is given as leaf hashes rather than entries: `MTH({d(0)}) = HASH(0x00 || d(0))` is then the element itself.

use std::cell::RefCell;
use std::collections::HashMap;
use std::string::String;
use std::vec::Vec;
use std::{format, vec};

use sha2::{Digest, Sha256};

pub type H = [u8; 32];

pub fn sha256(parts: &[&[u8]]) -> H {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// `HASH(0x00 || entry)`.
pub fn leaf(entry: &[u8]) -> H {
    sha256(&[&[0x00], entry])
}

/// `HASH(0x01 || left || right)`.
pub fn node(left: &H, right: &H) -> H {
    sha256(&[&[0x01], left, right])
}

/// "the largest power of two smaller than n" (n > 1).
pub fn split(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// The reference tree over a list `D` of leaf hashes. Ranges `D[lo:hi]` are written as index pairs; `MTH` results
/// are memoised, which changes nothing but the running time of the exhaustive tests (debug builds hash slowly).
pub struct Rfc {
    d: Vec<H>,
    memo: RefCell<HashMap<(usize, usize), H>>,
}

impl Rfc {
    pub fn new(d: Vec<H>) -> Self {
        Rfc {
            d,
            memo: RefCell::new(HashMap::new()),
        }
    }

    pub fn leaves(&self) -> &[H] {
        &self.d
    }

    /// §2.1.1 `MTH(D[lo:hi])`.
    pub fn mth(&self, lo: usize, hi: usize) -> H {
        if let Some(h) = self.memo.borrow().get(&(lo, hi)) {
            return *h;
        }
        let h = match hi - lo {
            0 => sha256(&[]),
            1 => self.d[lo],
            n => {
                let k = split(n);
                node(&self.mth(lo, lo + k), &self.mth(lo + k, hi))
            }
        };
        self.memo.borrow_mut().insert((lo, hi), h);
        h
    }

    /// §2.1.3.1 `PATH(m, D[n])`.
    pub fn path(&self, m: usize, n: usize) -> Vec<H> {
        self.path_in(m, 0, n)
    }

    /// `PATH(m, D[lo:hi])`, `m` counted from `lo`.
    fn path_in(&self, m: usize, lo: usize, hi: usize) -> Vec<H> {
        let n = hi - lo;
        if n <= 1 {
            return Vec::new();
        }
        let k = split(n);
        let (mut p, sibling) = if m < k {
            (self.path_in(m, lo, lo + k), self.mth(lo + k, hi))
        } else {
            (self.path_in(m - k, lo + k, hi), self.mth(lo, lo + k))
        };
        p.push(sibling);
        p
    }

    /// §2.1.4.1 `PROOF(m, D[n]) = SUBPROOF(m, D[n], true)`.
    pub fn proof(&self, m: usize, n: usize) -> Vec<H> {
        self.subproof(m, 0, n, true)
    }

    /// `SUBPROOF(m, D[lo:hi], b)`, `m` counted from `lo`.
    fn subproof(&self, m: usize, lo: usize, hi: usize, b: bool) -> Vec<H> {
        let n = hi - lo;
        if m == n {
            return if b {
                Vec::new()
            } else {
                vec![self.mth(lo, hi)]
            };
        }
        let k = split(n);
        let (mut p, last) = if m <= k {
            (self.subproof(m, lo, lo + k, b), self.mth(lo + k, hi))
        } else {
            (
                self.subproof(m - k, lo + k, hi, false),
                self.mth(lo, lo + k),
            )
        };
        p.push(last);
        p
    }
}

/// §2.1.3.2 steps 1-5, generic over the hash type so a test can also run it on symbols and compare the
/// computations two parameter sets perform. Returns `r` if the structural checks (steps 1, 4a and the final
/// `sn == 0`) pass; comparing `r` with the root is the caller's last step.
pub fn rfc_root_from_inclusion<T: Clone>(
    leaf_index: u64,
    tree_size: u64,
    hash: T,
    inclusion_path: &[T],
    node: impl Fn(&T, &T) -> T,
) -> Option<T> {
    if leaf_index >= tree_size {
        return None;
    }
    let (mut fn_, mut sn) = (leaf_index, tree_size - 1);
    let mut r = hash;
    for p in inclusion_path {
        if sn == 0 {
            return None;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    (sn == 0).then_some(r)
}

/// §2.1.4.2 steps 1-7 for `0 < first < second`, generic like [`rfc_root_from_inclusion`]. Returns `(fr, sr)` if
/// the structural checks pass; comparing them with the two roots is the caller's last step.
pub fn rfc_roots_from_consistency<T: Clone>(
    first: u64,
    second: u64,
    first_hash: T,
    consistency_path: &[T],
    node: impl Fn(&T, &T) -> T,
) -> Option<(T, T)> {
    assert!(
        0 < first && first < second,
        "the RFC algorithm is defined for 0 < first < second"
    );
    if consistency_path.is_empty() {
        return None;
    }
    let mut path = consistency_path.to_vec();
    if first.is_power_of_two() {
        path.insert(0, first_hash);
    }
    let (mut fn_, mut sn) = (first - 1, second - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let mut fr = path[0].clone();
    let mut sr = path[0].clone();
    for c in &path[1..] {
        if sn == 0 {
            return None;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node(c, &fr);
            sr = node(c, &sr);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    (sn == 0).then_some((fr, sr))
}

pub fn rfc_verify_inclusion(leaf_index: u64, tree_size: u64, hash: H, path: &[H], root: H) -> bool {
    rfc_root_from_inclusion(leaf_index, tree_size, hash, path, node) == Some(root)
}

pub fn rfc_verify_consistency(
    first: u64,
    second: u64,
    first_hash: H,
    second_hash: H,
    path: &[H],
) -> bool {
    rfc_roots_from_consistency(first, second, first_hash, path, node)
        == Some((first_hash, second_hash))
}

/// A symbolic node, for comparing which computation a verifier performs rather than its result.
#[allow(clippy::ptr_arg)] // must be a `Fn(&T, &T) -> T` with `T = String`
pub fn sym_node(left: &String, right: &String) -> String {
    format!("({left},{right})")
}

/// Symbols `p0, p1, ...` standing for the hashes of a proof of `len` elements.
pub fn symbols(len: usize) -> Vec<String> {
    (0..len).map(|i| format!("p{i}")).collect()
}

/// The entries used for generated vectors: varied lengths, including the empty entry.
pub fn entry(i: usize) -> Vec<u8> {
    (0..i % 37).map(|j| (i * 31 + j * 7) as u8).collect()
}
