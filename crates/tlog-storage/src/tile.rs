//! The node layout: C2SP `tlog-tiles` hash tiles of height 8, each stored with its interior rows.
//!
//! A tile at tile level `L` and index `N` holds the nodes of tree levels `8L ..= 8L + 7` under the level-`8L + 8`
//! node `N`. Row 0 (level `8L`) is exactly the C2SP tile body: up to 256 hashes. We also store rows 1..=7 (the
//! interior levels, 255 more hashes in a full tile) so that any proof node is a plain lookup instead of up to
//! 255 hash operations; a tile's root is row 0 of the tile one level up. While a tile fills it is stored partial
//! (width `W` < 256, row `k` holding `W >> k` hashes), so every complete node is always stored.

use tlog_core::{HASH_SIZE, Hash, NodeId};

use crate::{Corruption, StoreError};

/// Levels per tile (C2SP tlog-tiles: tile height 8).
pub const TILE_HEIGHT: u8 = 8;
/// Hashes in a full tile's bottom row.
pub const TILE_WIDTH: usize = 1 << TILE_HEIGHT;

/// C2SP tile coordinates: tile level and tile index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TileId {
    pub level: u8,
    pub index: u64,
}

/// Where a node lives: its tile, its row in the tile and its position in that row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeSlot {
    pub tile: TileId,
    pub row: usize,
    pub offset: usize,
}

impl TileId {
    /// The storage key: tile level, then the big-endian index, so keys sort by (level, index).
    pub fn key(self) -> [u8; 9] {
        let mut k = [0u8; 9];
        k[0] = self.level;
        k[1..].copy_from_slice(&self.index.to_be_bytes());
        k
    }

    pub fn from_key(key: &[u8]) -> Option<TileId> {
        let (&level, index) = key.split_first()?;
        Some(TileId {
            level,
            index: u64::from_be_bytes(index.try_into().ok()?),
        })
    }
}

impl NodeSlot {
    pub fn of(node: NodeId) -> NodeSlot {
        let row = node.level % TILE_HEIGHT;
        let shift = u32::from(TILE_HEIGHT - row);
        NodeSlot {
            tile: TileId {
                level: node.level / TILE_HEIGHT,
                index: node.index >> shift,
            },
            row: usize::from(row),
            // Masked to below 2^(8-row), so the cast never truncates.
            offset: (node.index & ((1u64 << shift) - 1)) as usize,
        }
    }
}

/// The partial tiles on the right edge of a tree of `size` leaves: at each tile level whose last tile is not full,
/// that tile (the one a C2SP tlog-tiles reader fetches with a `.p/W` suffix).
pub fn edge_tiles(size: u64) -> Vec<TileId> {
    let width = TILE_WIDTH as u64;
    let mut tiles = Vec::new();
    // Complete nodes on the tile level's bottom row (tree level 8L).
    let mut nodes = size;
    let mut level = 0;
    while nodes > 0 {
        if !nodes.is_multiple_of(width) {
            tiles.push(TileId {
                level,
                index: nodes / width,
            });
        }
        nodes /= width;
        level += 1;
    }
    tiles
}

/// Number of hashes stored for a tile of bottom-row width `width`.
const fn stored_hashes(width: usize) -> usize {
    let mut sum = 0;
    let mut row = 0;
    while row < TILE_HEIGHT {
        sum += width >> row;
        row += 1;
    }
    sum
}

/// Bytes of a full stored tile (bottom row and interior rows): 511 hashes.
pub const FULL_TILE_BYTES: usize = stored_hashes(TILE_WIDTH) * HASH_SIZE;

/// Offset (in hashes) of `row` in the stored tile of the given width.
fn row_start(width: usize, row: usize) -> usize {
    (0..row).map(|r| width >> r).sum()
}

/// The bottom-row width of stored tile `tile`, recovered from its length (the stored size grows strictly with
/// width).
pub fn width_of(tile: TileId, stored: &[u8]) -> Result<usize, StoreError> {
    let malformed = |reason: String| {
        StoreError::Corrupt(Corruption::BadTile {
            level: tile.level,
            index: tile.index,
            reason,
        })
    };
    if !stored.len().is_multiple_of(HASH_SIZE) {
        return Err(malformed(format!(
            "{} bytes, not a whole number of hashes",
            stored.len()
        )));
    }
    let hashes = stored.len() / HASH_SIZE;
    let (mut lo, mut hi) = (1usize, TILE_WIDTH);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if stored_hashes(mid) < hashes {
            lo = mid + 1
        } else {
            hi = mid
        }
    }
    if stored_hashes(lo) == hashes {
        Ok(lo)
    } else {
        Err(malformed(format!(
            "{hashes} hashes, which match no tile width"
        )))
    }
}

/// The C2SP tile body (bottom row) of stored tile `tile`.
pub fn bottom_row(tile: TileId, stored: &[u8]) -> Result<&[u8], StoreError> {
    let width = width_of(tile, stored)?;
    Ok(&stored[..width * HASH_SIZE])
}

/// Reads one node from a stored tile; `None` if the tile does not (yet) hold it.
pub fn read_node(stored: &[u8], slot: &NodeSlot) -> Result<Option<Hash>, StoreError> {
    let width = width_of(slot.tile, stored)?;
    if slot.offset >= width >> slot.row {
        return Ok(None);
    }
    let at = (row_start(width, slot.row) + slot.offset) * HASH_SIZE;
    Ok(Hash::from_slice(&stored[at..at + HASH_SIZE]))
}

/// Appends newly completed nodes to a stored tile (empty for a new tile) and returns the new stored bytes.
/// Nodes must continue each row exactly where it ends, and leave the tile in a valid partial state.
pub fn extend_tile(
    tile: TileId,
    stored: &[u8],
    new: &[(usize, usize, Hash)],
) -> Result<Vec<u8>, StoreError> {
    let old_width = if stored.is_empty() {
        0
    } else {
        width_of(tile, stored)?
    };
    // Only the new hashes are gathered per row; the old rows are copied as byte ranges.
    let mut added: Vec<Vec<Hash>> = vec![Vec::new(); usize::from(TILE_HEIGHT)];
    for &(row, offset, hash) in new {
        let Some(hashes) = added.get_mut(row) else {
            return Err(StoreError::Conflict(format!(
                "tile {}/{}: row {row} does not exist",
                tile.level, tile.index
            )));
        };
        let len = (old_width >> row) + hashes.len();
        if offset != len {
            return Err(StoreError::Conflict(format!(
                "tile {}/{} row {row}: node at offset {offset} but the row holds {len}",
                tile.level, tile.index
            )));
        }
        hashes.push(hash);
    }
    let width = old_width + added[0].len();
    if width > TILE_WIDTH
        || added
            .iter()
            .enumerate()
            .any(|(row, hashes)| (old_width >> row) + hashes.len() != width >> row)
    {
        return Err(StoreError::Conflict(format!(
            "tile {}/{}: rows would not form a tile ({:?} hashes per row)",
            tile.level,
            tile.index,
            added
                .iter()
                .enumerate()
                .map(|(row, hashes)| (old_width >> row) + hashes.len())
                .collect::<Vec<_>>()
        )));
    }
    let mut out = Vec::with_capacity(stored_hashes(width) * HASH_SIZE);
    for (row, hashes) in added.iter().enumerate() {
        let start = row_start(old_width, row) * HASH_SIZE;
        out.extend_from_slice(&stored[start..start + (old_width >> row) * HASH_SIZE]);
        for h in hashes {
            out.extend_from_slice(&h.0);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edge_tiles_are_the_last_partial_tile_of_each_level() {
        let t = |level, index| TileId { level, index };
        assert_eq!(edge_tiles(0), vec![]);
        assert_eq!(edge_tiles(5), vec![t(0, 0)]);
        // A full level-0 tile leaves only its root, alone on the level above.
        assert_eq!(edge_tiles(256), vec![t(1, 0)]);
        assert_eq!(edge_tiles(65_536), vec![t(2, 0)]);
        assert_eq!(
            edge_tiles(3 * 65_536 + 2 * 256 + 5),
            vec![t(0, 770), t(1, 3), t(2, 0)]
        );
    }

    #[test]
    fn slots_follow_c2sp_coordinates() {
        let slot = |level, index, row, offset| NodeSlot {
            tile: TileId { level, index },
            row,
            offset,
        };
        for (node, expected) in [
            (NodeId::new(0, 300), slot(0, 1, 0, 44)),
            (NodeId::new(7, 3), slot(0, 1, 7, 1)),
            (NodeId::new(8, 3), slot(1, 0, 0, 3)),
        ] {
            assert_eq!(NodeSlot::of(node), expected, "{node:?}");
        }
        assert_eq!(
            NodeSlot::of(NodeId::new(63, 0)).tile,
            TileId { level: 7, index: 0 }
        );
    }

    #[test]
    fn width_round_trips_for_every_width() {
        let tile = TileId { level: 0, index: 0 };
        for width in 1..=TILE_WIDTH {
            let stored = vec![0u8; stored_hashes(width) * HASH_SIZE];
            assert_eq!(width_of(tile, &stored).unwrap(), width);
        }
        assert!(
            width_of(tile, &[0u8; 9 * HASH_SIZE]).is_err(),
            "widths 5 and 6 store 8 and 10 hashes"
        );
        assert!(width_of(tile, &[0u8; 33]).is_err());
    }

    #[test]
    fn extend_rejects_gaps() {
        let tile = TileId { level: 0, index: 0 };
        let h = Hash::from_bytes([1; 32]);
        assert!(extend_tile(tile, &[], &[(0, 1, h)]).is_err());
        // Two leaves without their parent do not form a tile.
        assert!(extend_tile(tile, &[], &[(0, 0, h), (0, 1, h)]).is_err());
        let t = extend_tile(tile, &[], &[(0, 0, h), (0, 1, h), (1, 0, h)]).unwrap();
        assert_eq!(width_of(tile, &t).unwrap(), 2);
    }
}
