//! The archive's write rules against a real S3-compatible store (SeaweedFS, started by scripts/seaweedfs.sh):
//! Object Lock set up by `init_bucket`, create-if-absent tiles, the checkpoint's conditional advance, and the
//! store refusing to delete what was archived.
//!
//! The log here is a stand-in (tile bodies derived from their path, checkpoints signed over made-up roots): these
//! tests are about what the archive writes and refuses. tests/archive.rs at the workspace root archives a real
//! tlogd.

use std::sync::atomic::{AtomicUsize, Ordering};

use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use tlog_archive::plan::{new_full_tiles, partial_tiles};
use tlog_archive::s3::{self, S3Location};
use tlog_archive::testing::SeaweedFs;
use tlog_archive::{Archive, Error, Head};
use tlog_checkpoint::{Checkpoint, SignedCheckpoint, SignerKey, sign_checkpoint};
use tlog_client::{ClientError, TileSource};
use tlog_core::tiles::Tile;
use tlog_core::{Hash, TreeSize};

/// A log whose tiles are their path's bytes: enough to tell what was written where.
struct FakeLog;

impl TileSource for FakeLog {
    async fn fetch(&self, tile: &Tile) -> Result<Vec<u8>, ClientError> {
        Ok(tile.path().into_bytes())
    }

    async fn checkpoint(&self) -> Result<Vec<u8>, ClientError> {
        unreachable!("the archive never reads the source's checkpoint")
    }
}

fn key() -> SignerKey {
    SignerKey::from_seed("example.com/archive-test", [7; 32]).unwrap()
}

fn signed(size: u64, root: u8) -> SignedCheckpoint {
    let key = key();
    let checkpoint = Checkpoint::new(key.name(), TreeSize(size), Hash([root; 32])).unwrap();
    sign_checkpoint(&key, &checkpoint, 1_700_000_000 + size).unwrap()
}

/// A fresh bucket with Object Lock (COMPLIANCE, 1 day) on the shared server, and the archive in it.
async fn fresh_archive(server: &SeaweedFs) -> (Archive, S3Location) {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let location = S3Location {
        bucket: format!("archive-test-{}", NEXT.fetch_add(1, Ordering::Relaxed)),
        prefix: "logs/one".into(),
    };
    s3::init_bucket(server.config(), &location.bucket, 1)
        .await
        .expect("init bucket");
    let archive = s3::open(&location, server.config(), key().verifier()).unwrap();
    (archive, location)
}

#[tokio::test]
async fn init_bucket_sets_compliance_retention_and_is_idempotent() {
    let server = SeaweedFs::shared();
    let (_, location) = fresh_archive(&server).await;
    let retention = s3::lock_status(server.config(), &location.bucket)
        .await
        .unwrap()
        .expect("a default retention");
    assert_eq!((retention.mode.as_str(), retention.days), ("COMPLIANCE", 1));
    // Again: finds the bucket and its retention as they are.
    s3::init_bucket(server.config(), &location.bucket, 1)
        .await
        .unwrap();
    // Asking for more than the bucket enforces is refused, not silently accepted.
    let err = s3::init_bucket(server.config(), &location.bucket, 30)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ObjectLock(_)), "{err}");
}

#[tokio::test]
async fn publish_writes_the_tiles_then_the_checkpoint() {
    let server = SeaweedFs::shared();
    let (archive, _) = fresh_archive(&server).await;
    let to = signed(700, 1);
    let head = archive
        .publish(&Head::default(), &FakeLog, &to)
        .await
        .unwrap();
    assert_eq!(head.size(), TreeSize(700));
    let tiles = archive.tiles();
    let mut expected = new_full_tiles(TreeSize(0), TreeSize(700));
    expected.extend(partial_tiles(TreeSize(700)));
    assert_eq!(
        expected.len(),
        2 + 2 + 2 + 1,
        "bundles 0,1 + 2.p; tiles 0,1 + 2.p; level 1 partial"
    );
    for tile in expected {
        assert_eq!(tiles.fetch(&tile).await.unwrap(), tile.path().into_bytes());
    }
    assert_eq!(tiles.checkpoint().await.unwrap(), to.note.as_bytes());
    assert_eq!(archive.head().await.unwrap().size(), TreeSize(700));
}

#[tokio::test]
async fn republishing_after_a_crash_accepts_identical_objects() {
    let server = SeaweedFs::shared();
    let (archive, _) = fresh_archive(&server).await;
    let head = archive
        .publish(&Head::default(), &FakeLog, &signed(512, 1))
        .await
        .unwrap();
    // As after a crash between the tiles and the checkpoint: the same tiles again, from the old head.
    let head = archive
        .publish(&head, &FakeLog, &signed(1024, 2))
        .await
        .unwrap();
    let again = archive
        .publish(&archive.head().await.unwrap(), &FakeLog, &signed(1024, 2))
        .await
        .unwrap();
    assert_eq!(again.size(), head.size());
}

#[tokio::test]
async fn a_differing_archived_tile_is_an_integrity_alarm_and_is_kept() {
    let server = SeaweedFs::shared();
    let (archive, location) = fresh_archive(&server).await;
    let store = s3::object_store(server.config(), &location.bucket).unwrap();
    let path = Path::from(format!("{}/tile/0/000", location.prefix));
    store
        .put(&path, PutPayload::from_static(b"not the log's tile"))
        .await
        .unwrap();
    let err = archive
        .publish(&Head::default(), &FakeLog, &signed(256, 1))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Integrity { path, .. } if path.ends_with("tile/0/000")),
        "{err}"
    );
    let kept = store.get(&path).await.unwrap().bytes().await.unwrap();
    assert_eq!(&kept[..], b"not the log's tile");
    // And nothing claims the archive holds that tree.
    assert_eq!(archive.head().await.unwrap().size(), TreeSize(0));
}

#[tokio::test]
async fn a_writer_whose_checkpoint_was_moved_stops() {
    let server = SeaweedFs::shared();
    let (first, location) = fresh_archive(&server).await;
    let second = s3::open(&location, server.config(), key().verifier()).unwrap();
    let head = first
        .publish(&Head::default(), &FakeLog, &signed(256, 1))
        .await
        .unwrap();
    // Both saw size 256; the second writer moves the checkpoint first.
    let seen = second.head().await.unwrap();
    second
        .publish(&seen, &FakeLog, &signed(300, 2))
        .await
        .unwrap();
    let err = first
        .publish(&head, &FakeLog, &signed(400, 3))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AnotherWriter { .. }), "{err}");
    assert!(err.is_fatal());
    assert_eq!(first.head().await.unwrap().size(), TreeSize(300));
}

#[tokio::test]
async fn a_checkpoint_signed_by_another_key_is_not_this_logs_archive() {
    let server = SeaweedFs::shared();
    let (_, location) = fresh_archive(&server).await;
    let other = SignerKey::from_seed("example.com/archive-test", [8; 32]).unwrap();
    let impostor = s3::open(&location, server.config(), other.verifier()).unwrap();
    let ours = s3::open(&location, server.config(), key().verifier()).unwrap();
    ours.publish(&Head::default(), &FakeLog, &signed(256, 1))
        .await
        .unwrap();
    let err = impostor.head().await.unwrap_err();
    assert!(matches!(err, Error::ForeignCheckpoint(_)), "{err}");
}

#[tokio::test]
async fn of_two_logs_claiming_an_empty_archive_exactly_one_wins() {
    let server = SeaweedFs::shared();
    let (first, location) = fresh_archive(&server).await;
    let other_key = SignerKey::from_seed("example.com/other-log", [9; 32]).unwrap();
    let second = s3::open(&location, server.config(), other_key.verifier()).unwrap();
    let other_empty = sign_checkpoint(
        &other_key,
        &Checkpoint::new(other_key.name(), TreeSize(0), Hash([0; 32])).unwrap(),
        1_700_000_000,
    )
    .unwrap();
    // Both saw an empty archive; the first claims it with its empty tree's checkpoint, before any tile.
    first
        .publish(&Head::default(), &FakeLog, &signed(0, 0))
        .await
        .unwrap();
    let err = second
        .publish(&Head::default(), &FakeLog, &other_empty)
        .await
        .unwrap_err();
    assert!(err.is_fatal(), "{err}");
    assert_eq!(first.head().await.unwrap().size(), TreeSize(0));
    assert!(!first.head().await.unwrap().is_empty());
}
