//! SHA-256 hashes and the RFC 9162 §2.1.1 hashing rules, plus the integer newtypes for positions in a log.

use alloc::string::String;
use core::fmt;

use sha2::{Digest, Sha256};

/// Size in bytes of every hash in the tree (SHA-256).
pub const HASH_SIZE: usize = 32;

/// Domain-separation prefix of a leaf hash (RFC 9162 §2.1.1).
const LEAF_PREFIX: u8 = 0x00;
/// Domain-separation prefix of an interior node hash (RFC 9162 §2.1.1).
const NODE_PREFIX: u8 = 0x01;

/// A 32-byte SHA-256 output: a leaf hash, an interior node hash or a tree root.
///
/// `Debug` and `Display` both print 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hash(pub [u8; HASH_SIZE]);

impl Hash {
    /// Wraps raw bytes.
    pub const fn from_bytes(b: [u8; HASH_SIZE]) -> Self {
        Hash(b)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; HASH_SIZE] {
        &self.0
    }

    /// Copies a slice of exactly [`HASH_SIZE`] bytes; `None` for any other length.
    pub fn from_slice(s: &[u8]) -> Option<Hash> {
        <[u8; HASH_SIZE]>::try_from(s).ok().map(Hash)
    }

    /// Parses exactly 64 hex digits (either case); `None` for anything else.
    pub fn from_hex(s: &str) -> Option<Hash> {
        let digits = s.as_bytes();
        if digits.len() != 2 * HASH_SIZE {
            return None;
        }
        let mut out = [0u8; HASH_SIZE];
        for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
            let [hi, lo] = pair else { return None };
            *byte = (hex_value(*hi)? << 4) | hex_value(*lo)?;
        }
        Some(Hash(out))
    }

    /// 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        alloc::format!("{self}")
    }
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl AsRef<[u8]> for Hash {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl From<[u8; HASH_SIZE]> for Hash {
    fn from(b: [u8; HASH_SIZE]) -> Self {
        Hash(b)
    }
}

/// The 0-based position of an entry in the log.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct LeafIndex(pub u64);

/// The number of entries in a tree (a tree of size `n` holds leaves `0..n`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct TreeSize(pub u64);

impl fmt::Display for LeafIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Display for TreeSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// `SHA-256(0x00 || entry)`: the hash of a log entry (RFC 9162 §2.1.1, `MTH({d(0)})`).
pub fn leaf_hash(entry: &[u8]) -> Hash {
    Hash(
        Sha256::new()
            .chain_update([LEAF_PREFIX])
            .chain_update(entry)
            .finalize()
            .into(),
    )
}

/// `SHA-256(0x01 || left || right)`: the hash of an interior node (RFC 9162 §2.1.1).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    // One contiguous 65-byte message: a single `update` keeps this hot path to two compression-function calls.
    let mut msg = [0u8; 1 + 2 * HASH_SIZE];
    let (prefix, children) = msg.split_at_mut(1);
    let (l, r) = children.split_at_mut(HASH_SIZE);
    prefix.fill(NODE_PREFIX);
    l.copy_from_slice(&left.0);
    r.copy_from_slice(&right.0);
    Hash(Sha256::digest(msg).into())
}

/// `SHA-256("")`: the root of the empty tree (RFC 9162 §2.1.1, `MTH({})`).
pub fn empty_root() -> Hash {
    Hash(Sha256::digest([]).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_rejects() {
        let h = Hash::from_bytes(core::array::from_fn(|i| i as u8 * 7));
        assert_eq!(Hash::from_hex(&h.to_hex()), Some(h));
        assert_eq!(Hash::from_hex(&h.to_hex().to_uppercase()), Some(h));
        assert_eq!(alloc::format!("{h:?}"), h.to_hex());
        assert_eq!(Hash::from_hex(""), None);
        assert_eq!(Hash::from_hex(&h.to_hex()[1..]), None);
        assert_eq!(Hash::from_hex(&alloc::format!("{}0", h.to_hex())), None);
        assert_eq!(Hash::from_hex(&"g".repeat(64)), None);
        // 64 bytes but not 64 ASCII digits: a multi-byte character must not be misread.
        assert_eq!(
            Hash::from_hex(&alloc::format!("é{}", &h.to_hex()[2..])),
            None
        );
    }

    #[test]
    fn from_slice_needs_exact_length() {
        assert_eq!(Hash::from_slice(&[1; 32]), Some(Hash([1; 32])));
        assert_eq!(Hash::from_slice(&[1; 31]), None);
        assert_eq!(Hash::from_slice(&[1; 33]), None);
        assert_eq!(Hash::from_slice(&[]), None);
    }

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        assert_eq!(
            empty_root().to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn newtypes_display_the_number() {
        assert_eq!(alloc::format!("{}", LeafIndex(42)), "42");
        assert_eq!(
            alloc::format!("{}", TreeSize(u64::MAX)),
            "18446744073709551615"
        );
    }
}
