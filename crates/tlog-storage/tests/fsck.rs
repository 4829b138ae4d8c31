//! The integrity check on logs written through the store with signed checkpoints (the server's sequencer and
//! one-byte corruptions of every row kind are tested in `tlog-server/tests/integrity.rs` and `tests/verify.rs`).

use tlog_checkpoint::{Checkpoint, SignerKey, sign_checkpoint};
use tlog_core::{CompactRange, leaf_hash};
use tlog_storage::conformance::{batch_for, entry};
use tlog_storage::fsck::{self, FsckError, Options};
use tlog_storage::identity::{IdentityMismatch, record_identity};
use tlog_storage::{Backend, Column, Corruption, LogStore, MemoryBackend, MemoryStore, TiledStore};

const ORIGIN: &str = "example.com/fsck";

fn key() -> SignerKey {
    SignerKey::from_seed(ORIGIN, [3; 32]).unwrap()
}

/// Appends `batches` batches of `per_batch` entries to `store`, each with its signed checkpoint.
fn write_log<S: LogStore>(store: &S, batches: u64, per_batch: u64) {
    record_identity(store, &key().verifier()).unwrap();
    let mut frontier = CompactRange::new();
    for b in 0..batches {
        let mut batch = batch_for(
            &mut frontier,
            (b * per_batch..(b + 1) * per_batch).map(entry).collect(),
        );
        let checkpoint = Checkpoint::new(ORIGIN, frontier.size(), frontier.root()).unwrap();
        batch.checkpoint = sign_checkpoint(&key(), &checkpoint, 1_700_000_000)
            .unwrap()
            .note
            .into_bytes();
        store.append(&batch).unwrap();
    }
}

fn memory_log(batches: u64, per_batch: u64) -> MemoryStore {
    let store = TiledStore::open(MemoryBackend::new()).unwrap();
    write_log(&store, batches, per_batch);
    store
}

fn check<B: Backend>(store: &TiledStore<B>) -> Result<fsck::Report, FsckError> {
    fsck::check(
        store,
        &key().verifier(),
        &Options::at_rest(),
        &mut |_, _| true,
    )
}

#[test]
fn a_signed_log_passes() {
    let report = check(&memory_log(5, 300)).unwrap();
    assert_eq!((report.tree_size, report.checkpoints), (1500, 5));
}

#[test]
fn the_store_of_another_key_is_refused() {
    let store = memory_log(1, 10);
    let other = SignerKey::from_seed(ORIGIN, [4; 32]).unwrap().verifier();
    let err = fsck::check(&store, &other, &Options::at_rest(), &mut |_, _| true).unwrap_err();
    assert!(
        matches!(
            err,
            FsckError::Corrupt(Corruption::Identity(IdentityMismatch::Key { .. }))
        ),
        "{err}"
    );
}

#[test]
fn a_malformed_leaf_index_row_is_named() {
    let store = memory_log(2, 100);
    let leaf = leaf_hash(&entry(150));
    store
        .backend()
        .write(&[(Column::Leaves, &leaf.0, &[0; 7])])
        .unwrap();
    let err = check(&store).unwrap_err();
    assert!(
        matches!(
            err,
            FsckError::Corrupt(Corruption::LeafIndexMalformed { leaf_hash, len: 7 }) if leaf_hash == leaf
        ),
        "{err}"
    );
}

#[test]
fn stopping_the_progress_callback_cancels_the_check() {
    let store = memory_log(4, 100);
    let mut options = Options::at_rest();
    options.chunk_entries = 100;
    let mut calls = 0;
    let err = fsck::check(&store, &key().verifier(), &options, &mut |done, total| {
        calls += 1;
        assert_eq!((done, total), (100, 400));
        false
    })
    .unwrap_err();
    assert!(matches!(err, FsckError::Cancelled), "{err}");
    assert_eq!(calls, 1);
}

/// RocksDB's own checksums find a damaged table file: the check reports corruption (exit 1 in `tlogd verify`), not
/// an I/O failure, because the backend error keeps RocksDB's kind.
#[cfg(feature = "rocksdb")]
#[test]
fn a_damaged_table_file_is_corruption() {
    use tlog_storage::{
        BackendErrorKind, LeafIndex, RocksBackend, RocksOptions, RocksStore, StoreError,
    };

    let dir = tempfile::tempdir().unwrap();
    let entries_file = {
        let store =
            RocksStore::open(RocksBackend::open(dir.path(), &RocksOptions::default()).unwrap())
                .unwrap();
        write_log(&store, 3, 200);
        let db = store.backend().db();
        db.flush_cf(&db.cf_handle(Column::Entries.name()).unwrap())
            .unwrap();
        let files = db.live_files().unwrap();
        let file = files
            .iter()
            .find(|f| f.column_family_name == Column::Entries.name())
            .expect("a flushed entries table");
        dir.path().join(file.name.trim_start_matches('/'))
    };
    // A byte of the first data block (tables start with their data blocks).
    let mut bytes = std::fs::read(&entries_file).unwrap();
    bytes[20] ^= 0x40;
    std::fs::write(&entries_file, bytes).unwrap();

    let store = RocksStore::open(RocksBackend::open_read_only(dir.path()).unwrap()).unwrap();
    let read = store.entries(LeafIndex(0), LeafIndex(1)).unwrap_err();
    assert!(
        matches!(read, StoreError::Backend(ref e) if e.kind == BackendErrorKind::Corruption),
        "{read}"
    );
    let err = check(&store).unwrap_err();
    assert!(
        matches!(err, FsckError::Corrupt(Corruption::Backend(ref e)) if e.kind == BackendErrorKind::Corruption),
        "{err}"
    );
}
