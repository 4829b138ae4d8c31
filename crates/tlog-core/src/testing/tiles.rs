//! C2SP `tlog-tiles` resources written from a naive reference, for tile clients and servers to be tested
//! against: level-`8L` rows hashed pairwise from the leaves (RFC 9162 §2.1.1 on perfect subtrees), cut into
//! tiles of 256 by hand, and paths spelled out from the spec's text rather than through [`crate::tiles::Tile`].

use std::format;
use std::string::{String, ToString};
use std::vec;
use std::vec::Vec;

use crate::tiles::encode_bundle;
use crate::{Hash, leaf_hash, node_hash};

/// Tile paths that are not the canonical spelling of any tile, each breaking one rule of the spec: a log must
/// refuse them rather than serve a tile under a second name.
pub const NON_CANONICAL_TILE_PATHS: &[&str] = &[
    "tile/0/1",
    "tile/0/0001",
    "tile/00/000",
    "tile/64/000",
    "tile/-1/000",
    "tile/0/x000/001",
    "tile/0/001/002",
    "tile/0/x1/002",
    "tile/0/000.p/0",
    "tile/0/000.p/256",
    "tile/0/000.p/01",
    "tile/0/000.p/",
    "tile/0/000.p",
    "tile/0/",
    "tile/entries",
    "tile/entries/1",
    "tile/entries/000.p/0",
    "tile/data/000",
    "tiles/0/000",
    "tile/0/x999/x999/x999/x999/x999/x999/999",
];

/// Index `n` as the spec writes it: 3-digit groups, all but the last prefixed with `x`.
pub fn index_path(n: u64) -> String {
    let mut groups = vec![format!("{:03}", n % 1000)];
    let mut rest = n / 1000;
    while rest > 0 {
        groups.push(format!("x{:03}", rest % 1000));
        rest /= 1000;
    }
    groups.reverse();
    groups.join("/")
}

/// The path of tile `n` of `kind` (a level number or `entries`) holding `width` hashes or entries.
pub fn tile_path(kind: &str, n: u64, width: usize) -> String {
    let suffix = if width == 256 {
        String::new()
    } else {
        format!(".p/{width}")
    };
    format!("tile/{kind}/{}{suffix}", index_path(n))
}

/// The tree's level-`8L` rows: row `L` has `leaves.len() >> 8L` hashes.
pub fn tile_rows(leaves: &[Hash]) -> Vec<Vec<Hash>> {
    let mut rows = vec![leaves.to_vec()];
    loop {
        let mut row = rows.last().unwrap().clone();
        for _ in 0..8 {
            row = row
                .chunks_exact(2)
                .map(|p| node_hash(&p[0], &p[1]))
                .collect();
        }
        if row.is_empty() {
            return rows;
        }
        rows.push(row);
    }
}

/// Every hash tile and entry bundle of the tree of `entries`, as (path, body): what a log of that size serves,
/// besides its checkpoint (which needs a key: the caller signs it).
pub fn tree_tiles<E: AsRef<[u8]>>(entries: &[E]) -> Vec<(String, Vec<u8>)> {
    let leaves: Vec<Hash> = entries.iter().map(|e| leaf_hash(e.as_ref())).collect();
    let mut files = Vec::new();
    for (level, row) in tile_rows(&leaves).iter().enumerate() {
        for (n, chunk) in row.chunks(256).enumerate() {
            let body = chunk.iter().flat_map(|h| h.0).collect();
            files.push((tile_path(&level.to_string(), n as u64, chunk.len()), body));
        }
    }
    for (n, chunk) in entries.chunks(256).enumerate() {
        let bundle = encode_bundle(chunk).expect("test entries fit a bundle");
        files.push((tile_path("entries", n as u64, chunk.len()), bundle));
    }
    files
}
