//! C2SP `tlog-tiles` (v0.1): the coordinates, paths and bodies of hash tiles and entry bundles, and where the
//! nodes of a proof lie in them.
//!
//! A hash tile at level `L` and index `N` holds up to 256 hashes of tree level `8L`: hash `i` is the node
//! `(8L, 256N + i)` ("Merkle Tree", "Tiles"). Nodes of the levels in between (`8L + 1 ..= 8L + 7`) are not in any
//! tile; [`node_in_tile`] says which slice of a tile folds into one. A tree of size `s` has, at level `L`,
//! `floor(s / 256^L)` hashes: full tiles, then one partial tile of `floor(s / 256^L) mod 256` hashes when that is
//! not zero. Entry bundles hold the entries whose leaf hashes make up the level-0 tile of the same index.
//!
//! Scope: pure computation. Fetching and serving tiles are the client's and server's business.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::hash::{HASH_SIZE, Hash, TreeSize};
use crate::node::NodeId;

/// Tree levels per tile.
pub const TILE_HEIGHT: u8 = 8;
/// Hashes in a full tile, and entries in a full bundle.
pub const TILE_WIDTH: u64 = 1 << TILE_HEIGHT;
/// The highest tile level a path may name ("`<L>` ... from 0 to 63").
pub const MAX_TILE_LEVEL: u8 = 63;
/// The largest entry an entry bundle can hold: its length is a big-endian `uint16`.
pub const MAX_BUNDLE_ENTRY_BYTES: usize = u16::MAX as usize;

/// What a tile path names: a hash tile of a level, or an entry bundle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TileKind {
    /// `tile/<L>/...`: hashes of tree level `8L`.
    Hashes(u8),
    /// `tile/entries/...`: the entries of the level-0 tile of the same index.
    Entries,
}

/// One tile or entry bundle: kind, index and width (1..=256; 256 is a full tile).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tile {
    pub kind: TileKind,
    pub index: u64,
    pub width: u16,
}

/// A tile path, width or body that does not follow the specification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TileError {
    /// The path is not `tile/<L>/<N>[.p/<W>]` or `tile/entries/<N>[.p/<W>]` in canonical form.
    BadPath(String),
    /// A hash tile's body is not `32 * width` bytes.
    BadTileLength { expected: usize, actual: usize },
    /// An entry bundle does not hold exactly `width` length-prefixed entries.
    BadBundle(String),
    /// An entry longer than a bundle's `uint16` length prefix can state.
    EntryTooLarge { index: usize, len: usize },
}

impl fmt::Display for TileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TileError::BadPath(why) => write!(f, "bad tile path: {why}"),
            TileError::BadTileLength { expected, actual } => {
                write!(f, "hash tile has {actual} bytes, expected {expected}")
            }
            TileError::BadBundle(why) => write!(f, "bad entry bundle: {why}"),
            TileError::EntryTooLarge { index, len } => write!(
                f,
                "entry {index} has {len} bytes; a bundle holds at most {MAX_BUNDLE_ENTRY_BYTES}"
            ),
        }
    }
}

impl core::error::Error for TileError {}

/// Hashes of tree level `8 * level` in a tree of `size` leaves, `floor(size / 256^level)`.
fn hashes_at_level(level: u8, size: u64) -> u64 {
    let shift = u32::from(level) * u32::from(TILE_HEIGHT);
    size.checked_shr(shift).unwrap_or(0)
}

impl Tile {
    /// The hash tile `(level, index)` as it is in a tree of `size` leaves: full, partial, or `None` when the tree
    /// has no hash in it yet.
    pub fn hashes_at(level: u8, index: u64, size: TreeSize) -> Option<Tile> {
        Self::at(TileKind::Hashes(level), index, size)
    }

    /// The entry bundle `index` as it is in a tree of `size` leaves, or `None` when it is empty.
    pub fn entries_at(index: u64, size: TreeSize) -> Option<Tile> {
        Self::at(TileKind::Entries, index, size)
    }

    fn at(kind: TileKind, index: u64, size: TreeSize) -> Option<Tile> {
        let level = match kind {
            TileKind::Hashes(level) if level > MAX_TILE_LEVEL => return None,
            TileKind::Hashes(level) => level,
            TileKind::Entries => 0,
        };
        let have = hashes_at_level(level, size.0);
        let start = index.checked_mul(TILE_WIDTH)?;
        let width = have.checked_sub(start).filter(|&w| w > 0)?.min(TILE_WIDTH);
        Some(Tile {
            kind,
            index,
            width: width as u16, // <= 256
        })
    }

    /// Whether this is a full tile (256 hashes or entries).
    pub fn is_full(&self) -> bool {
        u64::from(self.width) == TILE_WIDTH
    }

    /// The smallest tree that holds this tile at its width: the tile is covered by (and served for) a checkpoint
    /// of any size at least this. `None` past `u64`.
    pub fn min_tree_size(&self) -> Option<u64> {
        let level = match self.kind {
            TileKind::Hashes(level) => level,
            TileKind::Entries => 0,
        };
        let hashes = self
            .index
            .checked_mul(TILE_WIDTH)?
            .checked_add(u64::from(self.width))?;
        let shift = u32::from(level) * u32::from(TILE_HEIGHT);
        if shift >= 64 || hashes.leading_zeros() < shift {
            return None;
        }
        Some(hashes << shift)
    }

    /// The path below the log's prefix, e.g. `tile/0/x001/234.p/7` or `tile/entries/000`.
    pub fn path(&self) -> String {
        let mut path = match self.kind {
            TileKind::Hashes(level) => format!("tile/{level}/"),
            TileKind::Entries => String::from("tile/entries/"),
        };
        path.push_str(&index_path(self.index));
        if !self.is_full() {
            path.push_str(&format!(".p/{}", self.width));
        }
        path
    }

    /// Parses a path below the log's prefix (without a leading `/`). Only the canonical form is accepted: the
    /// form [`path`](Self::path) writes, so one tile has one path (and one cache entry).
    pub fn parse_path(path: &str) -> Result<Tile, TileError> {
        let bad = |why: &str| TileError::BadPath(format!("{path:?}: {why}"));
        let rest = path
            .strip_prefix("tile/")
            .ok_or_else(|| bad("does not start with tile/"))?;
        let (kind_part, rest) = rest.split_once('/').ok_or_else(|| bad("no tile index"))?;
        let kind = if kind_part == "entries" {
            TileKind::Entries
        } else {
            let level = parse_decimal(kind_part)
                .filter(|&l| l <= u64::from(MAX_TILE_LEVEL))
                .ok_or_else(|| bad("the level is not a decimal from 0 to 63"))?;
            TileKind::Hashes(level as u8)
        };
        let (index_part, width) = match rest.split_once(".p/") {
            Some((index, width)) => {
                let width = parse_decimal(width)
                    .filter(|w| (1..TILE_WIDTH).contains(w))
                    .ok_or_else(|| bad("a partial width is a decimal from 1 to 255"))?;
                (index, width as u16)
            }
            None => (rest, TILE_WIDTH as u16),
        };
        let index = parse_index(index_part).ok_or_else(|| {
            bad("the index is 3-digit groups, all but the last prefixed with x, with no leading x000")
        })?;
        Ok(Tile { kind, index, width })
    }

    /// Checks a hash tile body against this tile's width and splits it into hashes.
    pub fn parse_hashes(&self, body: &[u8]) -> Result<Vec<Hash>, TileError> {
        let expected = usize::from(self.width) * HASH_SIZE;
        if body.len() != expected {
            return Err(TileError::BadTileLength {
                expected,
                actual: body.len(),
            });
        }
        Ok(body
            .chunks_exact(HASH_SIZE)
            .map(|c| Hash::from_slice(c).expect("chunks are HASH_SIZE bytes"))
            .collect())
    }

    /// Splits an entry bundle body into exactly `width` entries.
    pub fn parse_entries<'a>(&self, body: &'a [u8]) -> Result<Vec<&'a [u8]>, TileError> {
        let entries = parse_bundle(body)?;
        if entries.len() != usize::from(self.width) {
            return Err(TileError::BadBundle(format!(
                "{} entries, expected {}",
                entries.len(),
                self.width
            )));
        }
        Ok(entries)
    }
}

/// `<N>` as 3-digit groups, all but the last prefixed with `x` (1234067 → `x001/x234/067`).
fn index_path(index: u64) -> String {
    let mut groups = Vec::new();
    let mut n = index;
    loop {
        groups.push(n % 1000);
        n /= 1000;
        if n == 0 {
            break;
        }
    }
    let mut out = String::new();
    for (i, g) in groups.iter().rev().enumerate() {
        if i + 1 < groups.len() {
            out.push_str(&format!("x{g:03}/"));
        } else {
            out.push_str(&format!("{g:03}"));
        }
    }
    out
}

fn parse_index(s: &str) -> Option<u64> {
    let parts: Vec<&str> = s.split('/').collect();
    let (last, leading) = parts.split_last()?;
    let mut n: u64 = 0;
    for (i, part) in leading.iter().enumerate() {
        let digits = part.strip_prefix('x')?;
        let g = three_digits(digits)?;
        if i == 0 && g == 0 {
            return None; // x000 first: not canonical
        }
        n = n.checked_mul(1000)?.checked_add(g)?;
    }
    n.checked_mul(1000)?.checked_add(three_digits(last)?)
}

fn three_digits(s: &str) -> Option<u64> {
    if s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

/// A decimal with no sign and no leading zeros.
fn parse_decimal(s: &str) -> Option<u64> {
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    if canonical { s.parse().ok() } else { None }
}

/// Where the hash of a complete node of a tree of `size` leaves can be read from tiles: the tile (at its width
/// in that tree) and the range of its hashes that fold into the node ([`fold_tile_hashes`]). A node of level
/// `8L` is one hash of a level-`L` tile; a node `r` levels higher is `2^r` consecutive hashes of it. `None` when
/// the node is not complete in the tree.
pub fn node_in_tile(node: NodeId, size: TreeSize) -> Option<(Tile, core::ops::Range<usize>)> {
    if node.end() > size.0 || node.level >= 64 {
        return None;
    }
    let level = node.level / TILE_HEIGHT;
    let rise = node.level % TILE_HEIGHT;
    let first = node.index << rise; // hash index at level 8L; node.end() <= size keeps this in range
    let tile_index = first / TILE_WIDTH;
    let tile = Tile::hashes_at(level, tile_index, size)?;
    let start = (first % TILE_WIDTH) as usize;
    Some((tile, start..start + (1usize << rise)))
}

/// The hash of the perfect subtree whose leftmost-to-rightmost nodes of one level are `hashes` (a power of two of
/// them): pairs are hashed level by level up to one. Returns `None` for an empty slice or one whose length is not
/// a power of two.
pub fn fold_tile_hashes(hashes: &[Hash]) -> Option<Hash> {
    if !hashes.len().is_power_of_two() {
        return None;
    }
    let mut row: Vec<Hash> = hashes.to_vec();
    while row.len() > 1 {
        row = row
            .chunks_exact(2)
            .map(|pair| crate::hash::node_hash(&pair[0], &pair[1]))
            .collect();
    }
    row.pop()
}

/// Encodes entries as an entry bundle: each as a big-endian `uint16` length, then its bytes.
pub fn encode_bundle<E: AsRef<[u8]>>(entries: &[E]) -> Result<Vec<u8>, TileError> {
    let total = entries.iter().map(|e| 2 + e.as_ref().len()).sum();
    let mut out = Vec::with_capacity(total);
    for (index, entry) in entries.iter().enumerate() {
        let entry = entry.as_ref();
        let len = u16::try_from(entry.len()).map_err(|_| TileError::EntryTooLarge {
            index,
            len: entry.len(),
        })?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(entry);
    }
    Ok(out)
}

/// Splits an entry bundle into its entries; fails on a truncated length or entry.
pub fn parse_bundle(mut body: &[u8]) -> Result<Vec<&[u8]>, TileError> {
    let mut entries = Vec::new();
    while !body.is_empty() {
        let (len, rest) = body.split_first_chunk::<2>().ok_or_else(|| {
            TileError::BadBundle(format!("truncated length of entry {}", entries.len()))
        })?;
        let len = usize::from(u16::from_be_bytes(*len));
        if rest.len() < len {
            return Err(TileError::BadBundle(format!(
                "entry {} claims {len} bytes, {} remain",
                entries.len(),
                rest.len()
            )));
        }
        let (entry, rest) = rest.split_at(len);
        entries.push(entry);
        body = rest;
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;
    use crate::node::range_nodes;

    fn hashes(level: u8, index: u64, width: u16) -> Tile {
        Tile {
            kind: TileKind::Hashes(level),
            index,
            width,
        }
    }

    #[test]
    fn paths_follow_the_spec_examples() {
        assert_eq!(hashes(0, 1234067, 256).path(), "tile/0/x001/x234/067");
        assert_eq!(hashes(1, 0, 17).path(), "tile/1/000.p/17");
        assert_eq!(hashes(2, 1000, 256).path(), "tile/2/x001/000");
        let bundle = Tile {
            kind: TileKind::Entries,
            index: 5,
            width: 3,
        };
        assert_eq!(bundle.path(), "tile/entries/005.p/3");
    }

    #[test]
    fn paths_round_trip() {
        for index in [0, 1, 999, 1000, 1001, 999_999, 1_000_000, u64::MAX] {
            for width in [1, 255, 256] {
                for kind in [TileKind::Entries, TileKind::Hashes(0), TileKind::Hashes(63)] {
                    let tile = Tile { kind, index, width };
                    assert_eq!(Tile::parse_path(&tile.path()), Ok(tile));
                }
            }
        }
    }

    #[test]
    fn non_canonical_paths_are_refused() {
        for path in crate::testing::tiles::NON_CANONICAL_TILE_PATHS {
            assert!(Tile::parse_path(path).is_err(), "{path} accepted");
        }
    }

    #[test]
    fn tiles_of_size_70000_match_the_spec_example() {
        let size = TreeSize(70_000);
        assert!(Tile::hashes_at(0, 272, size).unwrap().is_full());
        assert_eq!(Tile::hashes_at(0, 273, size).unwrap().width, 112);
        assert_eq!(Tile::hashes_at(0, 274, size), None);
        assert!(Tile::hashes_at(1, 0, size).unwrap().is_full());
        assert_eq!(Tile::hashes_at(1, 1, size).unwrap().width, 17);
        assert_eq!(Tile::hashes_at(2, 0, size).unwrap().width, 1);
        assert_eq!(Tile::hashes_at(3, 0, size), None);
        assert_eq!(Tile::entries_at(273, size).unwrap().width, 112);
    }

    #[test]
    fn min_tree_size_is_the_smallest_tree_with_the_tile() {
        for size in [1u64, 255, 256, 257, 65_535, 65_536, 70_000] {
            for level in 0..3 {
                for index in 0..300 {
                    if let Some(tile) = Tile::hashes_at(level, index, TreeSize(size)) {
                        let min = tile.min_tree_size().unwrap();
                        assert!(min <= size);
                        assert_eq!(Tile::hashes_at(level, index, TreeSize(min)), Some(tile));
                        assert_ne!(Tile::hashes_at(level, index, TreeSize(min - 1)), Some(tile));
                    }
                }
            }
        }
    }

    /// Every complete node of a tree is found in a tile and folds to the hash the naive tree gives.
    #[test]
    fn nodes_fold_from_their_tile_slices() {
        let size = 70_000u64;
        let leaves: Vec<Hash> = (0..size).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        // Level-8L rows of the tree, as tiles would hold them.
        let mut rows = alloc::vec![leaves.clone()];
        let mut row = leaves;
        for _ in 0..16 {
            row = row
                .chunks_exact(2)
                .map(|p| crate::hash::node_hash(&p[0], &p[1]))
                .collect();
            rows.push(row.clone());
        }
        for node in range_nodes(0, size)
            .into_iter()
            .chain(range_nodes(12_345, 69_001))
        {
            let (tile, range) = node_in_tile(node, TreeSize(size)).unwrap();
            let TileKind::Hashes(level) = tile.kind else {
                panic!("a node is in a hash tile")
            };
            assert!(range.end <= usize::from(tile.width));
            let base = (tile.index * TILE_WIDTH) as usize;
            let row = &rows[usize::from(level) * 8];
            let slice = &row[base + range.start..base + range.end];
            assert_eq!(
                fold_tile_hashes(slice),
                Some(rows[usize::from(node.level)][node.index as usize])
            );
        }
        assert_eq!(node_in_tile(NodeId::new(1, 35_000), TreeSize(size)), None);
    }

    #[test]
    fn bundles_round_trip_and_refuse_truncation() {
        let entries: [&[u8]; 3] = [b"", b"a", &[7u8; 300]];
        let body = encode_bundle(&entries).unwrap();
        assert_eq!(parse_bundle(&body).unwrap(), entries.to_vec());
        assert!(parse_bundle(&body[..body.len() - 1]).is_err());
        assert!(parse_bundle(&[0]).is_err());
        let big = alloc::vec![0u8; MAX_BUNDLE_ENTRY_BYTES + 1];
        assert!(matches!(
            encode_bundle(&[big]),
            Err(TileError::EntryTooLarge { index: 0, .. })
        ));
    }

    #[test]
    fn hash_tiles_must_match_their_width() {
        let tile = hashes(0, 0, 2);
        assert_eq!(tile.parse_hashes(&[1; 64]).unwrap().len(), 2);
        assert!(tile.parse_hashes(&[1; 96]).is_err());
    }
}
