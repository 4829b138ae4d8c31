//! `tlogd verify` against a real log: one log of 600 entries is built through the real `tlogd` (12 batches of 50,
//! so checkpoints at sizes 50, 100, ..., 600; level-0 tiles 0 and 1 full, tile 2 partial with width 88; level-1
//! tile 0 partial with width 2), then each test corrupts ONE byte of a copy through RocksDB itself and runs the
//! real `tlogd verify`, which must fail with exit status 1 and name the damaged index, node or checkpoint size.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use tlog_checkpoint::VerifierKey;
use tlog_client::LogClient;
use tlog_core::{HASH_SIZE, leaf_hash};
use tlog_storage::tile::TileId;
use tlog_storage::{Column, RocksBackend, RocksOptions};
use tlog_suite::{Tlogd, event, tlogd_verify};

const BATCHES: u64 = 12;
const BATCH: u64 = 50;

/// The pristine log, built once; every test works on its own copy.
fn template() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        // Multi-threaded: stopping the server blocks this thread while the client's connection must still
        // close for the graceful shutdown to finish.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let server = Tlogd::start(dir.path(), &["--origin", "example.com/verify"]);
            let key = VerifierKey::parse(&server.vkey).unwrap();
            let client = LogClient::connect(&server.addr, key).await.unwrap();
            for b in 0..BATCHES {
                let batch: Vec<Vec<u8>> = (0..BATCH).map(|i| event(b * BATCH + i)).collect();
                client.submit_batch(&batch).await.unwrap();
            }
            drop(client);
            server.stop();
        });
        dir
    })
    .path()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for item in std::fs::read_dir(from).unwrap() {
        let item = item.unwrap();
        let target = to.join(item.file_name());
        if item.file_type().unwrap().is_dir() {
            copy_dir(&item.path(), &target);
        } else {
            std::fs::copy(item.path(), &target).unwrap();
        }
    }
}

fn fresh_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    copy_dir(template(), &data);
    (dir, data)
}

/// Rewrites one row through RocksDB itself.
fn corrupt(data: &Path, column: Column, key: &[u8], change: impl FnOnce(&mut Vec<u8>)) {
    let db = RocksBackend::open(data.join("db"), &RocksOptions::default()).unwrap();
    let mut value = db
        .get_raw(column, key)
        .unwrap()
        .unwrap_or_else(|| panic!("no {} row {key:02x?}", column.name()));
    change(&mut value);
    db.put_raw(column, key, &value).unwrap();
}

fn assert_fails(data: &Path, needles: &[&str]) {
    let (code, text) = tlogd_verify(data);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("FAILED"), "{text}");
    for needle in needles {
        assert!(text.contains(needle), "expected {needle:?} in:\n{text}");
    }
}

/// Offset in a stored tile of `width` of the hash at `row`, `offset` (rows 0..=7 follow each other).
fn tile_byte(width: usize, row: usize, offset: usize) -> usize {
    ((0..row).map(|r| width >> r).sum::<usize>() + offset) * HASH_SIZE
}

fn tile_key(level: u8, index: u64) -> [u8; 9] {
    TileId { level, index }.key()
}

#[test]
fn a_clean_log_passes() {
    let (_dir, data) = fresh_copy();
    let (code, text) = tlogd_verify(&data);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("OK: tree size 600") && text.contains("12 signed checkpoints"),
        "{text}"
    );
    // Nothing was written: a second run sees the same log.
    assert_eq!(tlogd_verify(&data).0, 0);
}

#[test]
fn missing_data_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let (code, text) = tlogd_verify(&dir.path().join("nothing-here"));
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("no log database"), "{text}");
}

#[test]
fn a_changed_entry_is_named() {
    let (_dir, data) = fresh_copy();
    corrupt(&data, Column::Entries, &123u64.to_be_bytes(), |v| v[5] ^= 1);
    assert_fails(&data, &["entry 123:", "no leaf-index row"]);
}

#[test]
fn a_changed_leaf_index_row_is_named() {
    let (_dir, data) = fresh_copy();
    corrupt(&data, Column::Leaves, &leaf_hash(&event(77)).0, |v| {
        v[7] ^= 1
    });
    assert_fails(&data, &["entry 77:", "names index 76"]);
}

#[test]
fn a_changed_leaf_in_a_tile_is_named() {
    let (_dir, data) = fresh_copy();
    corrupt(&data, Column::Tiles, &tile_key(0, 1), |v| {
        v[tile_byte(256, 0, 5) + 3] ^= 0x80
    });
    assert_fails(&data, &["node level 0 index 261", "tile 0/1 row 0"]);
}

#[test]
fn a_changed_interior_node_is_named() {
    let (_dir, data) = fresh_copy();
    corrupt(&data, Column::Tiles, &tile_key(0, 0), |v| {
        v[tile_byte(256, 1, 10)] ^= 1
    });
    assert_fails(&data, &["node level 1 index 10", "tile 0/0 row 1"]);
}

#[test]
fn a_changed_interior_node_of_a_partial_edge_tile_is_named() {
    let (_dir, data) = fresh_copy();
    // Tile 0/2 holds leaves 512..600: width 88, its row 3 holds level-3 nodes 64..75.
    corrupt(&data, Column::Tiles, &tile_key(0, 2), |v| {
        v[tile_byte(88, 3, 2) + 31] ^= 1
    });
    assert_fails(&data, &["node level 3 index 66", "tile 0/2 row 3"]);
}

#[test]
fn a_changed_node_of_an_upper_tile_is_named() {
    let (_dir, data) = fresh_copy();
    // Tile 1/0 has width 2 (nodes 8/0 and 8/1) and its row 1 holds node 9/0, the root of the first 512 leaves.
    corrupt(&data, Column::Tiles, &tile_key(1, 0), |v| {
        v[tile_byte(2, 1, 0)] ^= 1
    });
    assert_fails(&data, &["node level 9 index 0", "tile 1/0 row 1"]);
}

#[test]
fn a_truncated_tile_is_named() {
    let (_dir, data) = fresh_copy();
    corrupt(&data, Column::Tiles, &tile_key(0, 2), |v| {
        v.truncate(v.len() - 1)
    });
    assert_fails(&data, &["tile 0/2 is malformed"]);
}

/// Replaces one base64 character of line `line` (0-based) of a signed note with another base64 character,
/// so the note still parses and only its meaning changes.
fn change_note_line(note: &mut [u8], line: usize) {
    let start = note
        .split(|&b| b == b'\n')
        .take(line)
        .map(|l| l.len() + 1)
        .sum::<usize>();
    // Near the end of the line, before any base64 padding.
    let end = start + note[start..].iter().position(|&b| b == b'\n').unwrap();
    let at = end - 6;
    note[at] = if note[at] == b'A' { b'B' } else { b'A' };
}

#[test]
fn a_changed_checkpoint_body_is_named() {
    let (_dir, data) = fresh_copy();
    // Line 2 of the note is the base64 root hash.
    corrupt(&data, Column::Checkpoints, &300u64.to_be_bytes(), |v| {
        change_note_line(v, 2)
    });
    assert_fails(&data, &["checkpoint at size 300:", "does not verify"]);
}

#[test]
fn a_changed_checkpoint_signature_is_named() {
    let (_dir, data) = fresh_copy();
    // Line 3 is blank; line 4 is the log's Ed25519 signature line.
    corrupt(&data, Column::Checkpoints, &300u64.to_be_bytes(), |v| {
        change_note_line(v, 4)
    });
    assert_fails(&data, &["checkpoint at size 300:", "does not verify"]);
}
