//! [`LeafFilter`]: an in-memory, growable Bloom filter of every leaf hash in the store.
//!
//! De-duplication asks, for each new entry, whether its leaf hash is already in the log, and the answer is almost
//! always no. Asking RocksDB costs a probe of every memtable, every L0 file and every level, a cost that grows with
//! the number of files. This filter answers "no" from memory in a few cache misses; only the "maybe" answers
//! (hashes in the log, and about 1% false positives) go to the store. It never answers "no" for a hash it was
//! given (no false negatives), so de-duplication stays exact.
//!
//! The filter grows in segments: each new segment holds twice as many hashes as the one before, so a log of n
//! entries has about log2(n / 2^22) segments, and memory stays under 32 bits per entry without knowing the log's
//! final size (segments of 4 and 8 Mi hashes, 24 MiB, at 10M entries). Each segment is a cache-blocked Bloom
//! filter: one 64-byte block per hash, one bit in each of its eight words. Leaf hashes are SHA-256 outputs, so
//! their bytes serve as the filter's hash functions directly. Someone grinding entries into one block only makes
//! their own lookups reach the store.

use tlog_core::Hash;

/// Hashes the first segment holds (4 Mi, 8 MiB of filter); each later segment holds twice as many as the one
/// before. Large enough that a log of 10M entries needs two segments, so a lookup costs two cache misses.
const FIRST_SEGMENT: u64 = 1 << 22;
/// Filter bits per hash: with one bit in each of a block's eight words, about 0.1% false positives per full
/// segment. Each false positive costs a probe of the leaf index's memtables and files.
const BITS_PER_HASH: u64 = 16;

type Block = [u64; 8];

struct Segment {
    blocks: Vec<Block>,
    capacity: u64,
    len: u64,
}

impl Segment {
    fn new(capacity: u64) -> Segment {
        let blocks = (capacity * BITS_PER_HASH).div_ceil(512).max(1);
        Segment {
            // Zeroed allocation: pages count toward RSS only once a hash lands in them.
            blocks: vec![[0; 8]; usize::try_from(blocks).unwrap_or(usize::MAX)],
            capacity,
            len: 0,
        }
    }

    /// The block of `hash` and the bit to set or test in each of its words.
    fn place(&self, hash: &Hash) -> (usize, [u64; 8]) {
        let word =
            |i: usize| u64::from_le_bytes(hash.0[i * 8..i * 8 + 8].try_into().unwrap_or_default());
        // Multiply-shift maps the first word onto the block count without a division's bias.
        let block = ((u128::from(word(0)) * self.blocks.len() as u128) >> 64) as usize;
        let bits = word(1);
        let mut mask = [0u64; 8];
        for (i, m) in mask.iter_mut().enumerate() {
            *m = 1 << ((bits >> (i * 6)) & 63);
        }
        (block, mask)
    }

    fn insert(&mut self, hash: &Hash) {
        let (block, mask) = self.place(hash);
        for (w, m) in self.blocks[block].iter_mut().zip(mask) {
            *w |= m;
        }
        self.len += 1;
    }

    fn may_contain(&self, hash: &Hash) -> bool {
        let (block, mask) = self.place(hash);
        self.blocks[block].iter().zip(mask).all(|(w, m)| w & m == m)
    }
}

/// A growable Bloom filter of leaf hashes (see the module docs).
pub struct LeafFilter {
    segments: Vec<Segment>,
}

impl Default for LeafFilter {
    fn default() -> Self {
        LeafFilter::new()
    }
}

impl LeafFilter {
    pub fn new() -> LeafFilter {
        LeafFilter {
            segments: Vec::new(),
        }
    }

    /// Adds a hash (adding one twice is harmless).
    pub fn insert(&mut self, hash: &Hash) {
        let full = self.segments.last().is_none_or(|s| s.len >= s.capacity);
        if full {
            let capacity = self
                .segments
                .last()
                .map_or(FIRST_SEGMENT, |s| s.capacity * 2);
            self.segments.push(Segment::new(capacity));
        }
        if let Some(segment) = self.segments.last_mut() {
            segment.insert(hash);
        }
    }

    /// Takes in every hash of `other` (its segments join this filter's; later inserts go to the last of them).
    pub fn absorb(&mut self, other: LeafFilter) {
        self.segments.extend(other.segments);
    }

    /// False only if `hash` was never inserted.
    #[cfg(test)]
    pub fn may_contain(&self, hash: &Hash) -> bool {
        self.segments.iter().any(|s| s.may_contain(hash))
    }

    /// [`Self::may_contain`] for each hash. Segment by segment, so the blocks' cache misses of many hashes are in
    /// flight at once.
    pub fn may_contain_many(&self, hashes: &[Hash]) -> Vec<bool> {
        let mut maybe = vec![false; hashes.len()];
        for segment in &self.segments {
            for (m, hash) in maybe.iter_mut().zip(hashes) {
                *m |= segment.may_contain(hash);
            }
        }
        maybe
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A uniformly distributed stand-in for a leaf hash (SHA-256 would make this test slow in debug builds).
    fn h(i: u64) -> Hash {
        let mut out = [0u8; 32];
        let mut x = i;
        for chunk in out.chunks_mut(8) {
            // splitmix64
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
        }
        Hash(out)
    }

    #[test]
    fn no_false_negatives_across_segments_and_few_false_positives() {
        let mut filter = LeafFilter::new();
        let n = FIRST_SEGMENT * 3 + 17; // fills two segments and starts a third
        for i in 0..n {
            filter.insert(&h(i));
        }
        assert_eq!(filter.segments.len(), 2 + 1);
        for i in 0..n {
            assert!(filter.may_contain(&h(i)), "hash {i} lost");
        }
        let probes = 200_000u64;
        let false_positives = (n..n + probes)
            .filter(|&i| filter.may_contain(&h(i)))
            .count();
        // Two full segments at about 0.1% each (and a third nearly empty).
        assert!(
            false_positives < (probes / 200) as usize,
            "{false_positives} false positives"
        );
        let hashes: Vec<Hash> = (n - 5..n + 5).map(h).collect();
        let each: Vec<bool> = hashes.iter().map(|x| filter.may_contain(x)).collect();
        assert_eq!(filter.may_contain_many(&hashes), each);
        assert!(each[..5].iter().all(|&m| m));
    }

    #[test]
    fn absorbed_hashes_stay_found() {
        let (mut a, mut b) = (LeafFilter::new(), LeafFilter::new());
        (0..1000).for_each(|i| a.insert(&h(i)));
        (1000..2000).for_each(|i| b.insert(&h(i)));
        a.absorb(b);
        a.insert(&h(2000));
        assert!((0..=2000).all(|i| a.may_contain(&h(i))));
    }

    #[test]
    fn empty_filter_contains_nothing() {
        let filter = LeafFilter::new();
        assert!(!filter.may_contain(&h(1)));
        assert!(filter.segments.is_empty());
    }
}
