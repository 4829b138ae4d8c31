//! An archive checked from its entries alone: every entry bundle read in order, its leaf hashes rebuilding the
//! tree, and every hash tile the archive holds for the checkpoint's tree (full tiles, and the partial tiles of that
//! size) recomputed from them and compared byte for byte. A proof built from the archive's tiles then rests on
//! tiles that follow from the entries, not only on a root that does.

use futures_util::{StreamExt, TryStreamExt, stream};
use tlog_checkpoint::Checkpoint;
use tlog_client::TileSource;
use tlog_core::tiles::{TILE_WIDTH, Tile, fold_tile_hashes};
use tlog_core::{CompactRange, HASH_SIZE, Hash, leaf_hash};

use crate::error::{Error, Result};

/// What [`audit`] checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Audited {
    /// Entries read and hashed into the tree.
    pub entries: u64,
    /// Hash tiles recomputed and found identical.
    pub tiles: u64,
}

/// Reads every entry of the tree of `checkpoint` from `source` (at most `parallelism` bundles at once), checks
/// that they rebuild its root and that every hash tile of that tree is the one they give.
pub async fn audit<S: TileSource>(
    source: &S,
    checkpoint: &Checkpoint,
    parallelism: usize,
) -> Result<Audited> {
    let size = checkpoint.size;
    let mut tree = CompactRange::new();
    // Hashes of each tile level not yet forming a full tile.
    let mut pending: Vec<Vec<Hash>> = Vec::new();
    let mut full: Vec<u64> = Vec::new();
    let mut tiles = 0;
    let bundles = size.0.div_ceil(TILE_WIDTH);
    let mut stream = stream::iter(0..bundles)
        .map(|n| async move {
            let tile = Tile::entries_at(n, size).ok_or_else(|| outside(n))?;
            let body = source.fetch(&tile).await.map_err(Error::Source)?;
            let hashes: Vec<Hash> = tile
                .parse_entries(&body)
                .map_err(|e| Error::Audit(format!("{}: {e}", tile.path())))?
                .into_iter()
                .map(leaf_hash)
                .collect();
            Ok::<_, Error>(hashes)
        })
        .buffered(parallelism.max(1));
    while let Some(hashes) = stream.try_next().await? {
        tree.extend(hashes.iter().copied(), |_, _| {})
            .map_err(|e| Error::Audit(e.to_string()))?;
        let mut rising = hashes;
        let mut level = 0;
        // Each full tile is compared, and its root rises one tile level.
        while !rising.is_empty() {
            if pending.len() <= level {
                pending.push(Vec::new());
                full.push(0);
            }
            pending[level].append(&mut rising);
            if pending[level].len() < TILE_WIDTH as usize {
                break;
            }
            let row = std::mem::take(&mut pending[level]);
            let tile = Tile::hashes_at(level as u8, full[level], size)
                .ok_or_else(|| outside(full[level]))?;
            compare(source, &tile, &row).await?;
            tiles += 1;
            full[level] += 1;
            rising.push(fold_tile_hashes(&row).ok_or_else(|| outside(full[level]))?);
            level += 1;
        }
    }
    if tree.root() != checkpoint.root {
        return Err(Error::Audit(format!(
            "the archived entries give root {} at size {}, the checkpoint says {}",
            tree.root(),
            size.0,
            checkpoint.root
        )));
    }
    for (level, row) in pending.iter().enumerate() {
        if row.is_empty() {
            continue;
        }
        let tile =
            Tile::hashes_at(level as u8, full[level], size).ok_or_else(|| outside(full[level]))?;
        compare(source, &tile, row).await?;
        tiles += 1;
    }
    Ok(Audited {
        entries: size.0,
        tiles,
    })
}

fn outside(index: u64) -> Error {
    Error::Audit(format!("tile {index} lies outside the checkpoint's tree"))
}

/// Fetches `tile` and checks it holds exactly `hashes`.
async fn compare<S: TileSource>(source: &S, tile: &Tile, hashes: &[Hash]) -> Result<()> {
    let archived = source.fetch(tile).await.map_err(Error::Source)?;
    let ours: Vec<u8> = hashes.iter().flat_map(|h| h.0).collect();
    debug_assert_eq!(ours.len(), hashes.len() * HASH_SIZE);
    if archived != ours {
        return Err(Error::Audit(format!(
            "{} differs from the tile its entries give",
            tile.path()
        )));
    }
    Ok(())
}
