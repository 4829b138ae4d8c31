//! [`LeafFilter`]: an in-memory, memory-bounded Bloom filter of every leaf hash in the store.
//!
//! De-duplication asks, for each new entry, whether its leaf hash is already in the log, and the answer is almost
//! always no. Asking RocksDB costs a probe of every memtable, every L0 file and every level, a cost that grows with
//! the number of files. This filter answers "no" from memory in one cache miss; only the "maybe" answers (hashes
//! in the log, and a few false positives) go to the store. It never answers "no" for a hash it was given (no
//! false negatives), so de-duplication stays exact.
//!
//! One cache-blocked Bloom filter of a fixed size, its memory budget ([`DEFAULT_LEAF_FILTER_BYTES`] unless the
//! operator sets another): one 64-byte block per hash, [`BITS_PER_HASH`] bits set in it. Leaf hashes are SHA-256
//! outputs, so their bytes serve as the filter's hash functions directly. Someone grinding entries into one block
//! only makes their own lookups reach the store. The blocks are allocated zeroed, so a small log's pages count
//! toward RSS only as hashes land in them (a log of a few hundred thousand entries has touched them all).
//!
//! One filter of the whole budget is the most accurate use of it: with `n` hashes in `b` blocks a lookup of a new
//! hash is a false positive with probability about `(1 - (1 - 4/512)^(n/b))^4` (a little more, as blocks do not
//! all hold `n/b`). At the default 64 MiB (2^20 blocks) that is about 4×10^-5 at 10M entries, 0.2% at 30M, 1.8% at
//! 60M, 4% at 80M and 8% at 100M. Four bits is the best number for about 5.4 bits of filter per hash, which is
//! 64 MiB at 100M entries; eight bits (the saved format `v1`) pass fewer below 60M, where false positives are
//! already rare, and 14% at 100M, where each one costs most (BENCHMARKS.md, issue 20 ninth round). Filters that
//! grow in segments need up to twice the memory for the same rate (the last segment is allocated before it fills),
//! and folding them adds each segment's false positives. Each false positive costs a lookup in the leaf index's own
//! filters.
//!
//! A smaller budget later (the operator's setting at the next start) *folds* the filter: block `2i` OR block
//! `2i + 1` becomes block `i`, which is where a hash lands in a filter of half the blocks, so no hash is lost.

use tlog_core::Hash;

/// Default memory budget of the filter (see the module docs for its false-positive rate by log size).
pub const DEFAULT_LEAF_FILTER_BYTES: usize = 64 << 20;

/// Bits set per hash, each anywhere in its block (see the module docs for why four).
pub const BITS_PER_HASH: usize = 4;

type Block = [u64; 8];
const BLOCK_BYTES: usize = size_of::<Block>();

/// A Bloom filter of leaf hashes (see the module docs).
pub struct LeafFilter {
    /// A power of two of them, so that folding halves it exactly.
    blocks: Vec<Block>,
    /// Hashes inserted (a hash inserted twice counts twice).
    len: u64,
}

impl Default for LeafFilter {
    fn default() -> Self {
        LeafFilter::new()
    }
}

impl LeafFilter {
    /// An empty filter of [`DEFAULT_LEAF_FILTER_BYTES`].
    pub fn new() -> LeafFilter {
        LeafFilter::with_budget(DEFAULT_LEAF_FILTER_BYTES)
    }

    /// An empty filter of the most blocks (a power of two, at least one) that fit in `budget` bytes.
    pub fn with_budget(budget: usize) -> LeafFilter {
        LeafFilter::with_blocks(Self::blocks_within(budget))
    }

    fn with_blocks(blocks: usize) -> LeafFilter {
        LeafFilter {
            // Zeroed allocation: pages count toward RSS only once a hash lands in them.
            blocks: vec![[0; 8]; blocks],
            len: 0,
        }
    }

    /// The most blocks, a power of two, that fit in `budget` bytes (at least one).
    fn blocks_within(budget: usize) -> usize {
        let n = (budget / BLOCK_BYTES).max(1);
        1 << n.ilog2()
    }

    /// Sets the budget: an empty filter takes the new size; one holding hashes folds until it fits (it cannot
    /// grow without them: a larger budget takes effect when the filter is next built from the leaf index).
    pub fn set_budget(&mut self, budget: usize) {
        if self.len == 0 {
            *self = LeafFilter::with_budget(budget);
            return;
        }
        while self.blocks.len() > Self::blocks_within(budget) {
            self.fold();
        }
    }

    /// Bytes the blocks take (allocated; pages count toward RSS once a hash lands in them).
    pub fn bytes(&self) -> usize {
        self.blocks.len() * BLOCK_BYTES
    }

    /// The block of `hash` and the bits to set or test in it, as a mask of its words.
    fn place(&self, hash: &Hash) -> (usize, [u64; 8]) {
        let word =
            |i: usize| u64::from_le_bytes(hash.0[i * 8..i * 8 + 8].try_into().unwrap_or_default());
        // Multiply-shift maps the first word onto the block count without a division's bias; with a power-of-two
        // count it takes the word's top bits, which is what lets a fold keep every hash.
        let block = ((u128::from(word(0)) * self.blocks.len() as u128) >> 64) as usize;
        // Each bit's position in the block's 512 is 9 bits of the second word.
        let bits = word(1);
        let mut mask = [0u64; 8];
        for i in 0..BITS_PER_HASH {
            let bit = (bits >> (i * 9)) & 511;
            mask[(bit >> 6) as usize] |= 1 << (bit & 63);
        }
        (block, mask)
    }

    /// Adds a hash (adding one twice is harmless).
    pub fn insert(&mut self, hash: &Hash) {
        let (block, mask) = self.place(hash);
        for (w, m) in self.blocks[block].iter_mut().zip(mask) {
            *w |= m;
        }
        self.len += 1;
    }

    fn may_contain_one(&self, hash: &Hash) -> bool {
        let (block, mask) = self.place(hash);
        self.blocks[block].iter().zip(mask).all(|(w, m)| w & m == m)
    }

    /// False only if `hash` was never inserted.
    #[cfg(test)]
    pub fn may_contain(&self, hash: &Hash) -> bool {
        self.may_contain_one(hash)
    }

    /// [`Self::may_contain`] for each hash.
    pub fn may_contain_many(&self, hashes: &[Hash]) -> Vec<bool> {
        hashes.iter().map(|h| self.may_contain_one(h)).collect()
    }

    /// Halves the blocks: `place` maps a hash to block `b` of this filter and to block `b / 2` of one half its
    /// size, so OR-ing each pair keeps every hash's bits.
    fn fold(&mut self) {
        let half = self.blocks.len() / 2;
        if half == 0 {
            return;
        }
        for i in 0..half {
            let (a, b) = (self.blocks[2 * i], self.blocks[2 * i + 1]);
            self.blocks[i] = std::array::from_fn(|w| a[w] | b[w]);
        }
        self.blocks.truncate(half);
        self.blocks.shrink_to_fit();
    }

    /// Takes in every hash of `other`, folding the larger of the two to the other's size first.
    pub fn absorb(&mut self, mut other: LeafFilter) {
        while other.blocks.len() > self.blocks.len() {
            other.fold();
        }
        while self.blocks.len() > other.blocks.len() {
            self.fold();
        }
        for (mine, theirs) in self.blocks.iter_mut().zip(&other.blocks) {
            for (w, t) in mine.iter_mut().zip(theirs) {
                *w |= t;
            }
        }
        self.len += other.len;
    }

    /// The filter's shape for saving, in the saved header's terms: folds (always 0 now), then one segment's
    /// capacity (unused, its length), length and block count.
    pub(crate) fn shape(&self) -> (u32, Vec<[u64; 3]>) {
        (0, vec![[self.len, self.len, self.blocks.len() as u64]])
    }

    /// An empty filter of a saved shape, to be filled with [`Self::set_block_bytes`]; `None` for a shape this code
    /// did not write (the segments of older versions, a block count that is not a power of two or is below what
    /// `budget` allows, or more than `max_bytes`): the filter is then rebuilt from the leaf index.
    pub(crate) fn from_shape(
        budget: usize,
        folds: u32,
        segments: &[[u64; 3]],
        max_bytes: u64,
    ) -> Option<LeafFilter> {
        let &[[_, len, blocks]] = segments else {
            return None;
        };
        let ok = folds == 0
            && blocks.is_power_of_two()
            && blocks.saturating_mul(BLOCK_BYTES as u64) <= max_bytes
            && usize::try_from(blocks).ok()? >= Self::blocks_within(budget);
        ok.then(|| {
            let mut filter = LeafFilter::with_blocks(usize::try_from(blocks).unwrap_or(0));
            filter.len = len;
            filter
        })
    }

    /// Blocks `[first, first + n)` as bytes (each word little-endian), for saving.
    pub(crate) fn block_bytes(&self, first: usize, n: usize) -> Vec<u8> {
        let end = (first + n).min(self.blocks.len());
        let mut out = Vec::with_capacity((end - first.min(end)) * BLOCK_BYTES);
        for block in &self.blocks[first.min(end)..end] {
            for w in block {
                out.extend_from_slice(&w.to_le_bytes());
            }
        }
        out
    }

    /// Sets blocks from `first` from bytes [`Self::block_bytes`] made; false if they do not fit.
    pub(crate) fn set_block_bytes(&mut self, first: usize, bytes: &[u8]) -> bool {
        let n = bytes.len() / BLOCK_BYTES;
        if !bytes.len().is_multiple_of(BLOCK_BYTES) || first + n > self.blocks.len() {
            return false;
        }
        for (block, chunk) in self.blocks[first..first + n]
            .iter_mut()
            .zip(bytes.chunks_exact(BLOCK_BYTES))
        {
            for (w, b) in block.iter_mut().zip(chunk.chunks_exact(8)) {
                *w = u64::from_le_bytes(b.try_into().unwrap_or_default());
            }
        }
        true
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

    fn false_positives(filter: &LeafFilter, from: u64, probes: u64) -> u64 {
        (from..from + probes)
            .filter(|&i| filter.may_contain(&h(i)))
            .count() as u64
    }

    /// The false-positive rate the module docs give, `(1 - (1 - 4/512)^(n/b))^4`, within a margin.
    fn expected_rate(n: u64, blocks: usize) -> f64 {
        (1.0 - (1.0 - BITS_PER_HASH as f64 / 512.0).powf(n as f64 / blocks as f64))
            .powi(BITS_PER_HASH as i32)
    }

    #[test]
    fn no_false_negatives_and_the_documented_false_positive_rate() {
        // 1 MiB: 16,384 blocks. 512Ki hashes are 16 bits each (about 0.25%), 1.5Mi about 5.3 (about 8%),
        // the default budget's rates at 33M and 100M entries.
        for n in [1u64 << 19, 3 << 19] {
            let mut filter = LeafFilter::with_budget(1 << 20);
            (0..n).for_each(|i| filter.insert(&h(i)));
            assert_eq!(filter.bytes(), 1 << 20, "the filter grew");
            assert!((0..n).all(|i| filter.may_contain(&h(i))), "a hash was lost");
            let probes = 200_000;
            let rate = false_positives(&filter, n, probes) as f64 / probes as f64;
            let expected = expected_rate(n, filter.blocks.len());
            assert!(
                rate < expected * 1.3 + 0.000_1 && rate > expected * 0.7 - 0.000_1,
                "{n} hashes: {rate} false positives, expected about {expected}"
            );
        }
    }

    #[test]
    fn a_budget_is_rounded_down_to_a_power_of_two_of_blocks() {
        assert_eq!(LeafFilter::with_budget(12 << 20).bytes(), 8 << 20);
        assert_eq!(LeafFilter::with_budget(1).bytes(), 64);
        assert_eq!(LeafFilter::new().bytes(), DEFAULT_LEAF_FILTER_BYTES);
    }

    #[test]
    fn a_smaller_budget_folds_the_filter_and_loses_no_hash() {
        let mut filter = LeafFilter::with_budget(1 << 20);
        (0..100_000).for_each(|i| filter.insert(&h(i)));
        filter.set_budget(300 << 10);
        assert_eq!(filter.bytes(), 256 << 10);
        assert!(
            (0..100_000).all(|i| filter.may_contain(&h(i))),
            "a hash was lost"
        );
        // A larger budget cannot unfold it.
        filter.set_budget(1 << 20);
        assert_eq!(filter.bytes(), 256 << 10);
        assert!((0..100_000).all(|i| filter.may_contain(&h(i))));
    }

    #[test]
    fn an_empty_filter_takes_a_new_budget_whole() {
        let mut filter = LeafFilter::with_budget(1 << 20);
        filter.set_budget(4 << 20);
        assert_eq!(filter.bytes(), 4 << 20);
    }

    #[test]
    fn a_budget_of_one_block_still_keeps_every_hash() {
        let mut filter = LeafFilter::with_budget(1 << 6);
        (0..5000).for_each(|i| filter.insert(&h(i)));
        assert_eq!(filter.bytes(), 64);
        assert!((0..5000).all(|i| filter.may_contain(&h(i))));
    }

    #[test]
    fn absorbing_a_filter_of_another_size_keeps_both_in_the_smaller() {
        let mut a = LeafFilter::with_budget(1 << 20);
        (0..10_000).for_each(|i| a.insert(&h(i)));
        let mut b = LeafFilter::with_budget(4 << 20);
        (0..1000).for_each(|i| b.insert(&h(u64::MAX - i)));
        a.absorb(b);
        assert_eq!(a.bytes(), 1 << 20);
        assert!((0..10_000).all(|i| a.may_contain(&h(i))));
        assert!((0..1000).all(|i| a.may_contain(&h(u64::MAX - i))));
        let mut c = LeafFilter::with_budget(1 << 16);
        c.insert(&h(u64::MAX / 2));
        c.absorb(a);
        assert_eq!(c.bytes(), 1 << 16);
        assert!((0..10_000).all(|i| c.may_contain(&h(i))));
        assert!(c.may_contain(&h(u64::MAX / 2)));
    }

    #[test]
    fn saved_blocks_read_back_as_the_same_filter() {
        let mut a = LeafFilter::with_budget(1 << 16);
        (0..3000).for_each(|i| a.insert(&h(i)));
        let (folds, shape) = a.shape();
        let mut b = LeafFilter::from_shape(1 << 16, folds, &shape, 1 << 20).unwrap();
        let blocks = a.blocks.len();
        for first in (0..blocks).step_by(100) {
            assert!(b.set_block_bytes(first, &a.block_bytes(first, 100)));
        }
        assert_eq!(a.blocks, b.blocks);
        assert!(!b.set_block_bytes(blocks, &[0; 64]), "a block past the end");
        // Shapes this code does not write: two segments, folds, too few blocks, too many bytes.
        let two = [shape[0], shape[0]];
        assert!(LeafFilter::from_shape(1 << 16, 0, &two, 1 << 20).is_none());
        assert!(LeafFilter::from_shape(1 << 16, 1, &shape, 1 << 20).is_none());
        assert!(LeafFilter::from_shape(1 << 17, 0, &shape, 1 << 20).is_none());
        assert!(LeafFilter::from_shape(1 << 16, 0, &shape, 1 << 15).is_none());
    }

    #[test]
    fn empty_filter_contains_nothing() {
        let filter = LeafFilter::new();
        assert!(!filter.may_contain(&h(1)));
        assert_eq!(false_positives(&filter, 0, 1000), 0);
    }
}
