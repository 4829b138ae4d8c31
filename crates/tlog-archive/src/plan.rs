//! Which tiles and bundles a tree adds to an archive that holds a smaller one: pure arithmetic over tlog-tiles
//! coordinates.

use tlog_core::TreeSize;
use tlog_core::tiles::{MAX_TILE_LEVEL, TILE_HEIGHT, TILE_WIDTH, Tile, TileKind};

/// The full tiles and bundles a tree of `to` leaves has that one of `from` leaves has not, lowest level first,
/// in index order within a level. Empty when `to <= from`.
pub fn new_full_tiles(from: TreeSize, to: TreeSize) -> Vec<Tile> {
    let mut tiles = Vec::new();
    if to.0 <= from.0 {
        return tiles;
    }
    for kind in kinds(to) {
        let level = level_of(kind);
        let (have, want) = (full_tiles(level, from.0), full_tiles(level, to.0));
        tiles.extend((have..want).map(|index| Tile {
            kind,
            index,
            width: TILE_WIDTH as u16,
        }));
    }
    tiles
}

/// The partial tiles (and partial bundle) of a tree of `size` leaves: at most one per level.
pub fn partial_tiles(size: TreeSize) -> Vec<Tile> {
    kinds(size)
        .filter_map(|kind| {
            let index = full_tiles(level_of(kind), size.0);
            let tile = match kind {
                TileKind::Hashes(level) => Tile::hashes_at(level, index, size),
                TileKind::Entries => Tile::entries_at(index, size),
            }?;
            (!tile.is_full()).then_some(tile)
        })
        .collect()
}

/// Entry bundles, then hash tiles of every level the tree reaches.
fn kinds(size: TreeSize) -> impl Iterator<Item = TileKind> {
    let levels = (0..=MAX_TILE_LEVEL).take_while(move |&level| hashes_at(level, size.0) > 0);
    std::iter::once(TileKind::Entries)
        .filter(move |_| size.0 > 0)
        .chain(levels.map(TileKind::Hashes))
}

fn level_of(kind: TileKind) -> u8 {
    match kind {
        TileKind::Hashes(level) => level,
        TileKind::Entries => 0,
    }
}

/// Hashes of tree level `8 * level` in a tree of `size` leaves.
fn hashes_at(level: u8, size: u64) -> u64 {
    size.checked_shr(u32::from(level) * u32::from(TILE_HEIGHT))
        .unwrap_or(0)
}

/// Full tiles at `level` in a tree of `size` leaves.
fn full_tiles(level: u8, size: u64) -> u64 {
    hashes_at(level, size) / TILE_WIDTH
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(tiles: &[Tile]) -> Vec<String> {
        tiles.iter().map(Tile::path).collect()
    }

    #[test]
    fn a_tree_of_one_full_tile_adds_its_tile_and_bundle() {
        assert_eq!(
            paths(&new_full_tiles(TreeSize(0), TreeSize(256))),
            ["tile/entries/000", "tile/0/000"]
        );
    }

    #[test]
    fn growth_within_a_tile_adds_no_full_tile() {
        assert!(new_full_tiles(TreeSize(257), TreeSize(511)).is_empty());
    }

    #[test]
    fn growth_adds_only_the_tiles_completed_since() {
        // 256^2 = 65536: the first level-1 tile completes at that size.
        let tiles = new_full_tiles(TreeSize(65_535), TreeSize(65_536 + 256));
        assert_eq!(
            paths(&tiles),
            [
                "tile/entries/255",
                "tile/entries/256",
                "tile/0/255",
                "tile/0/256",
                "tile/1/000"
            ]
        );
    }

    #[test]
    fn partial_tiles_are_one_per_level_with_a_remainder() {
        assert_eq!(
            paths(&partial_tiles(TreeSize(65_536 + 256 + 3))),
            [
                "tile/entries/257.p/3",
                "tile/0/257.p/3",
                "tile/1/001.p/1",
                "tile/2/000.p/1"
            ]
        );
        // A full level-0 tile is one hash of level 8: a partial level-1 tile.
        assert_eq!(paths(&partial_tiles(TreeSize(256))), ["tile/1/000.p/1"]);
        assert!(partial_tiles(TreeSize(0)).is_empty());
    }
}
