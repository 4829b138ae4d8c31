//! Full tiles above level 0, kept in memory once read.
//!
//! Every proof of a log of more than 256 entries needs a tile of each level, but there are 256 times fewer tiles
//! at level 1 than at level 0, so the upper levels of even a large log fit in a few MiB (about 2.4 MiB per 10M
//! entries) and are the same few tiles for every proof. Read from RocksDB they cost a block-cache lookup and a copy
//! of 16 KiB each per proof, and once the level-0 tiles outgrow the block cache they evict each other. A full tile
//! never changes again (appends only extend partial tiles), so it can be kept without invalidation; partial tiles
//! (the tree's right edge) are not kept here: the store holds them beside, replaced by each append.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::tile::{FULL_TILE_BYTES, TileId};

/// Default memory budget of the upper-tile cache: every level-1 tile of a log of about 130M entries.
pub const DEFAULT_UPPER_TILE_CACHE_BYTES: usize = 32 << 20;

/// Full tiles of levels 1 and up, within a byte budget. Tiles are only added (first come, kept while the budget
/// lasts): the upper levels are read uniformly, so keeping the first ones is as good as any eviction order.
pub(crate) struct UpperTiles {
    tiles: RwLock<HashMap<TileId, Arc<[u8]>>>,
    budget: usize,
}

impl UpperTiles {
    pub(crate) fn new(budget: usize) -> Self {
        UpperTiles {
            tiles: RwLock::new(HashMap::new()),
            budget,
        }
    }

    /// Whether a stored tile belongs here: above level 0, and full.
    fn keeps(tile: TileId, stored: &[u8]) -> bool {
        tile.level > 0 && stored.len() == FULL_TILE_BYTES
    }

    /// The cached tiles among `tiles`.
    pub(crate) fn get_many(
        &self,
        tiles: impl IntoIterator<Item = TileId>,
    ) -> HashMap<TileId, Arc<[u8]>> {
        let cached = self.tiles.read().unwrap_or_else(|p| p.into_inner());
        if cached.is_empty() {
            return HashMap::new();
        }
        tiles
            .into_iter()
            .filter(|t| t.level > 0)
            .filter_map(|t| Some((t, cached.get(&t)?.clone())))
            .collect()
    }

    /// Keeps the full upper tiles among `read` (as just read from the backend) while the budget lasts.
    pub(crate) fn keep<'a>(&self, read: impl IntoIterator<Item = (&'a TileId, &'a [u8])>) {
        let mut new = read
            .into_iter()
            .filter(|(t, stored)| Self::keeps(**t, stored))
            .peekable();
        if new.peek().is_none()
            || !self.has_room(self.tiles.read().unwrap_or_else(|p| p.into_inner()).len())
        {
            // Nothing to add, or no room: once the budget is used up, reads never take the write lock.
            return;
        }
        let mut cached = self.tiles.write().unwrap_or_else(|p| p.into_inner());
        for (tile, stored) in new {
            if !self.has_room(cached.len()) {
                return;
            }
            cached.entry(*tile).or_insert_with(|| Arc::from(stored));
        }
    }

    /// Whether one more tile fits beside `held` tiles.
    fn has_room(&self, held: usize) -> bool {
        (held + 1) * FULL_TILE_BYTES <= self.budget
    }

    /// Bytes of tiles held.
    pub(crate) fn bytes(&self) -> usize {
        self.tiles.read().unwrap_or_else(|p| p.into_inner()).len() * FULL_TILE_BYTES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> Vec<u8> {
        vec![7u8; FULL_TILE_BYTES]
    }

    #[test]
    fn keeps_only_full_tiles_above_level_0() {
        let cache = UpperTiles::new(DEFAULT_UPPER_TILE_CACHE_BYTES);
        let level0 = TileId { level: 0, index: 1 };
        let partial = TileId { level: 1, index: 2 };
        let upper = TileId { level: 1, index: 3 };
        let read = HashMap::from([
            (level0, full()),
            (partial, vec![7u8; FULL_TILE_BYTES - 32]),
            (upper, full()),
        ]);
        cache.keep(read.iter().map(|(t, v)| (t, v.as_slice())));
        let got = cache.get_many([level0, partial, upper]);
        assert_eq!(got.keys().copied().collect::<Vec<_>>(), vec![upper]);
        assert_eq!(&got[&upper][..], &full()[..]);
    }

    #[test]
    fn stops_at_its_budget() {
        let cache = UpperTiles::new(2 * FULL_TILE_BYTES);
        let read: HashMap<TileId, Vec<u8>> = (0..3)
            .map(|index| (TileId { level: 2, index }, full()))
            .collect();
        cache.keep(read.iter().map(|(t, v)| (t, v.as_slice())));
        assert_eq!(cache.bytes(), 2 * FULL_TILE_BYTES);
        let none = UpperTiles::new(FULL_TILE_BYTES - 1);
        none.keep(read.iter().map(|(t, v)| (t, v.as_slice())));
        assert_eq!(none.bytes(), 0);
    }
}
