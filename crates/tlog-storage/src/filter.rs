//! [`LeafFilter`]: an in-memory, growable, memory-bounded Bloom filter of every leaf hash in the store.
//!
//! De-duplication asks, for each new entry, whether its leaf hash is already in the log, and the answer is almost
//! always no. Asking RocksDB costs a probe of every memtable, every L0 file and every level, a cost that grows with
//! the number of files. This filter answers "no" from memory in a few cache misses; only the "maybe" answers
//! (hashes in the log, and a few false positives) go to the store. It never answers "no" for a hash it was
//! given (no false negatives), so de-duplication stays exact.
//!
//! The filter grows in segments: each new segment holds twice as many hashes as the one before, so a log of n
//! entries has about log2(n / 2^22) segments, at 16 bits per hash (segments of 4 and 8 Mi hashes, 24 MiB, at 10M
//! entries). Each segment is a cache-blocked Bloom filter: one 64-byte block per hash, one bit in each of its eight
//! words. Leaf hashes are SHA-256 outputs, so their bytes serve as the filter's hash functions directly. Someone
//! grinding entries into one block only makes their own lookups reach the store.
//!
//! Memory is bounded by a budget ([`DEFAULT_LEAF_FILTER_BYTES`] unless the operator sets another): when a new
//! segment would take the filter past it, every segment is *folded* in half (block `2i` OR block `2i + 1` becomes
//! block `i`, which is where a hash lands in a segment of half the blocks), so all segments keep the same bits per
//! hash. Folding loses no hash; it only raises the false-positive rate (about 0.1% per full segment at 16 bits per
//! hash, 3% at 8), and with it the share of new entries whose lookup reaches the store.

use tlog_core::Hash;

/// Hashes the first segment holds (4 Mi, 8 MiB of filter); each later segment holds twice as many as the one
/// before. Large enough that a log of 10M entries needs two segments, so a lookup costs two cache misses.
const FIRST_SEGMENT: u64 = 1 << 22;
/// Filter bits per hash: with one bit in each of a block's eight words, about 0.1% false positives per full
/// segment. Each false positive costs a probe of the leaf index's memtables and files.
const BITS_PER_HASH: u64 = 16;
/// Default memory budget of the filter: room for 16 bits per hash up to 60M entries, 8 up to 124M (segments of 4 to
/// 64 Mi hashes), 4 beyond.
pub const DEFAULT_LEAF_FILTER_BYTES: usize = 128 << 20;

type Block = [u64; 8];

struct Segment {
    blocks: Vec<Block>,
    capacity: u64,
    len: u64,
}

impl Segment {
    /// Blocks of a segment for `capacity` hashes folded `folds` times: a power of two (FIRST_SEGMENT is), so
    /// that each fold halves it exactly.
    fn blocks_for(capacity: u64, folds: u32) -> u64 {
        (capacity * BITS_PER_HASH)
            .div_ceil(512)
            .checked_shr(folds)
            .unwrap_or(0)
            .max(1)
    }

    fn bytes_for(capacity: u64, folds: u32) -> usize {
        usize::try_from(Self::blocks_for(capacity, folds)).unwrap_or(usize::MAX)
            * size_of::<Block>()
    }

    /// A segment for `capacity` hashes, folded `folds` times from the start.
    fn new(capacity: u64, folds: u32) -> Segment {
        let blocks = Self::blocks_for(capacity, folds);
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

    /// Halves the blocks: with `blocks.len()` a power of two, `place` maps a hash to block `b` of this segment and
    /// to block `b / 2` of one half its size, so OR-ing each pair keeps every hash's bits.
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

    fn bytes(&self) -> usize {
        self.blocks.len() * size_of::<Block>()
    }
}

/// A growable Bloom filter of leaf hashes (see the module docs).
pub struct LeafFilter {
    segments: Vec<Segment>,
    /// Most bytes the segments may take together.
    budget: usize,
    /// Times every segment has been folded (new segments start folded as often, so all have the same bits per hash).
    folds: u32,
}

impl Default for LeafFilter {
    fn default() -> Self {
        LeafFilter::new()
    }
}

impl LeafFilter {
    /// An empty filter within [`DEFAULT_LEAF_FILTER_BYTES`].
    pub fn new() -> LeafFilter {
        LeafFilter::with_budget(DEFAULT_LEAF_FILTER_BYTES)
    }

    /// An empty filter whose segments never take more than `budget` bytes together (beyond one 64-byte block per
    /// segment, the least a segment can hold).
    pub fn with_budget(budget: usize) -> LeafFilter {
        LeafFilter {
            segments: Vec::new(),
            budget,
            folds: 0,
        }
    }

    /// Sets the budget, folding at once if the filter is over it.
    pub fn set_budget(&mut self, budget: usize) {
        self.budget = budget;
        self.fit_budget();
    }

    /// Bytes the segments take (allocated; pages count toward RSS once a hash lands in them).
    pub fn bytes(&self) -> usize {
        self.segments.iter().map(Segment::bytes).sum()
    }

    /// Folds every segment once.
    fn fold_all(&mut self) {
        self.segments.iter_mut().for_each(Segment::fold);
        self.folds += 1;
    }

    /// Whether some segment can still fold.
    fn can_fold(&self) -> bool {
        self.segments.iter().any(|s| s.blocks.len() > 1)
    }

    /// Folds every segment until the filter fits its budget (or cannot shrink further).
    fn fit_budget(&mut self) {
        while self.bytes() > self.budget && self.can_fold() {
            self.fold_all();
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
            // Fold the segments there are until a new one, folded as often, fits beside them: the new one is
            // never allocated at full size, so its pages never count toward RSS before hashes land in them.
            while self.bytes() + Segment::bytes_for(capacity, self.folds) > self.budget
                && (Segment::bytes_for(capacity, self.folds) > size_of::<Block>()
                    || self.can_fold())
            {
                self.fold_all();
            }
            self.segments.push(Segment::new(capacity, self.folds));
        }
        if let Some(segment) = self.segments.last_mut() {
            segment.insert(hash);
        }
    }

    /// The filter's shape for saving: folds, then each segment's capacity, length and block count.
    pub(crate) fn shape(&self) -> (u32, Vec<[u64; 3]>) {
        let segments = self
            .segments
            .iter()
            .map(|s| [s.capacity, s.len, s.blocks.len() as u64])
            .collect();
        (self.folds, segments)
    }

    /// An empty filter of a saved shape, to be filled with [`Self::set_block_bytes`]; `None` for a shape this
    /// code cannot have written (block counts that are not a power of two, or more than `max_bytes`).
    pub(crate) fn from_shape(
        budget: usize,
        folds: u32,
        segments: &[[u64; 3]],
        max_bytes: u64,
    ) -> Option<LeafFilter> {
        let total: u64 = segments.iter().map(|s| s[2].saturating_mul(64)).sum();
        if total > max_bytes || folds > 64 {
            return None;
        }
        let segments = segments
            .iter()
            .map(|&[capacity, len, blocks]| {
                (blocks.is_power_of_two() && len <= capacity).then(|| Segment {
                    blocks: vec![[0; 8]; usize::try_from(blocks).unwrap_or(0)],
                    capacity,
                    len,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(LeafFilter {
            segments,
            budget,
            folds,
        })
    }

    /// Blocks `[first, first + n)` of segment `segment` as bytes (each word little-endian), for saving.
    pub(crate) fn block_bytes(&self, segment: usize, first: usize, n: usize) -> Vec<u8> {
        let blocks = &self.segments[segment].blocks;
        let end = (first + n).min(blocks.len());
        blocks[first.min(end)..end]
            .iter()
            .flatten()
            .flat_map(|w| w.to_le_bytes())
            .collect()
    }

    /// Sets blocks from `first` of segment `segment` from bytes [`Self::block_bytes`] made; false if they do not
    /// fit.
    pub(crate) fn set_block_bytes(&mut self, segment: usize, first: usize, bytes: &[u8]) -> bool {
        let Some(seg) = self.segments.get_mut(segment) else {
            return false;
        };
        let n = bytes.len() / 64;
        if !bytes.len().is_multiple_of(64) || first + n > seg.blocks.len() {
            return false;
        }
        for (block, chunk) in seg.blocks[first..first + n]
            .iter_mut()
            .zip(bytes.chunks_exact(64))
        {
            for (w, b) in block.iter_mut().zip(chunk.chunks_exact(8)) {
                *w = u64::from_le_bytes(b.try_into().unwrap_or_default());
            }
        }
        true
    }

    /// Takes in every hash of `other` (its segments join this filter's; later inserts go to the last of them).
    pub fn absorb(&mut self, mut other: LeafFilter) {
        // Bring both to the same bits per hash, then back within this filter's budget.
        while other.folds < self.folds {
            other.fold_all();
        }
        while self.folds < other.folds {
            self.fold_all();
        }
        self.segments.extend(other.segments);
        self.fit_budget();
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
    fn a_filter_over_its_budget_folds_and_loses_no_hash() {
        // The first segment (8 MiB) fits; the second (16 MiB) does not, so both fold once: 4 + 8 MiB.
        let mut filter = LeafFilter::with_budget(12 << 20);
        let n = FIRST_SEGMENT + 1000;
        for i in 0..n {
            filter.insert(&h(i));
        }
        assert_eq!(filter.folds, 1);
        assert_eq!(filter.bytes(), 12 << 20);
        assert!((0..n).all(|i| filter.may_contain(&h(i))), "a hash was lost");
        // A full segment at 8 bits per hash: about 3% false positives.
        let probes = 100_000u64;
        let false_positives = (n..n + probes)
            .filter(|&i| filter.may_contain(&h(i)))
            .count();
        assert!(
            false_positives < (probes / 20) as usize,
            "{false_positives} false positives"
        );
    }

    #[test]
    fn a_budget_below_one_segment_still_keeps_every_hash() {
        let mut filter = LeafFilter::with_budget(1 << 10);
        (0..5000).for_each(|i| filter.insert(&h(i)));
        assert!(filter.bytes() <= 1 << 10);
        assert!((0..5000).all(|i| filter.may_contain(&h(i))));
    }

    #[test]
    fn absorbing_a_filter_folded_differently_keeps_both_and_the_budget() {
        let mut a = LeafFilter::with_budget(12 << 20);
        (0..FIRST_SEGMENT + 1).for_each(|i| a.insert(&h(i)));
        let mut b = LeafFilter::new();
        (0..1000).for_each(|i| b.insert(&h(u64::MAX - i)));
        a.absorb(b);
        assert!(a.bytes() <= 12 << 20);
        assert!((0..=FIRST_SEGMENT).all(|i| a.may_contain(&h(i))));
        assert!((0..1000).all(|i| a.may_contain(&h(u64::MAX - i))));
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
