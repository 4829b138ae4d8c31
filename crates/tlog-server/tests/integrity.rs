//! The integrity check as a library (memory and RocksDB stores built by the real sequencer) and the background
//! scrub of a running server, observed through the gRPC health service. The `tlogd verify` binary and one-byte
//! corruptions of every row kind are tested end to end in the root package (`tests/verify.rs`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tlog_checkpoint::SignerKey;
use tlog_core::leaf_hash;
use tlog_server::log::{LogOptions, SequencerConfig, open};
use tlog_server::server::ServerConfig;
use tlog_server::testing::Running;
use tlog_server::{ManualClock, SCRUB_SERVICE};
use tlog_storage::conformance::entry;
use tlog_storage::fsck::{self, FsckError, Options};
use tlog_storage::tile::TileId;
use tlog_storage::{
    Backend, Column, Corruption, MemoryBackend, MemoryStore, RocksBackend, RocksOptions,
};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const ORIGIN: &str = "example.com/verify-lib";

fn key() -> SignerKey {
    SignerKey::from_seed(ORIGIN, [9; 32]).unwrap()
}

/// A memory log written by the real sequencer: `batches` batches, entry `i % distinct` each, de-duplication off
/// (so repeated entries are stored again and their leaf-index row names the latest copy).
async fn memory_log(batches: u64, per_batch: u64, distinct: u64) -> Arc<MemoryStore> {
    let store = Arc::new(MemoryStore::open(MemoryBackend::new()).unwrap());
    let options = LogOptions {
        sequencer: SequencerConfig {
            dedup: false,
            ..SequencerConfig::default()
        },
        clock: Arc::new(ManualClock::new(1_700_000_000)),
        ..LogOptions::default()
    };
    let (handle, _reader, task) = open(store.clone(), key(), options).unwrap();
    for b in 0..batches {
        let batch = (0..per_batch)
            .map(|i| entry((b * per_batch + i) % distinct))
            .collect();
        handle.submit(batch).await.unwrap();
    }
    drop(handle);
    task.wait();
    store
}

fn check(store: &MemoryStore, options: &Options) -> Result<u64, FsckError> {
    let mut calls = 0;
    let v = fsck::check(store, &key().verifier(), options, &mut |_, _| {
        calls += 1;
        true
    })?;
    assert!(calls > 0 || v.tree_size == 0);
    Ok(v.tree_size)
}

fn small_chunks(mut o: Options) -> Options {
    // Chunks that end inside tiles and between checkpoints.
    o.chunk_entries = 100;
    o
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_with_duplicates_passes_in_any_chunking() {
    let store = memory_log(40, 37, 1000).await;
    for options in [Options::at_rest(), small_chunks(Options::at_rest())] {
        assert_eq!(check(&store, &options).unwrap(), 40 * 37);
    }
    let empty = memory_log(0, 0, 1).await;
    assert_eq!(check(&empty, &Options::at_rest()).unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_beyond_the_checkpoint_fail_at_rest_but_not_live() {
    let store = memory_log(5, 100, 10_000).await;
    let size = 500u64;
    store
        .backend()
        .write(&[(Column::Entries, &size.to_be_bytes(), b"x")])
        .unwrap();
    let err = check(&store, &Options::at_rest()).unwrap_err();
    assert!(
        matches!(
            err,
            FsckError::Corrupt(Corruption::ExtraEntry {
                index: 500,
                size: 500
            })
        ),
        "{err}"
    );
    assert_eq!(check(&store, &Options::live()).unwrap(), 500);

    let store = memory_log(5, 100, 10_000).await;
    let beyond = TileId { level: 0, index: 7 };
    store
        .backend()
        .write(&[(Column::Tiles, &beyond.key(), &[0; 32])])
        .unwrap();
    let err = check(&store, &Options::at_rest()).unwrap_err();
    assert!(
        matches!(
            err,
            FsckError::Corrupt(Corruption::ExtraTile {
                level: 0,
                index: 7,
                ..
            })
        ),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaf_index_row_naming_another_entry_is_found() {
    let store = memory_log(3, 100, 10_000).await;
    // Entry 42's row names entry 200, a later entry with other bytes (not a duplicate).
    store
        .backend()
        .write(&[(
            Column::Leaves,
            &leaf_hash(&entry(42)).0,
            &200u64.to_be_bytes(),
        )])
        .unwrap();
    let err = check(&store, &small_chunks(Options::at_rest())).unwrap_err();
    assert!(
        matches!(
            err,
            FsckError::Corrupt(Corruption::LeafIndexWrong {
                index: 42,
                found: 200,
                ..
            })
        ),
        "{err}"
    );
}

async fn health(addr: SocketAddr) -> Option<ServingStatus> {
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .ok()?
        .connect()
        .await
        .ok()?;
    let reply = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: SCRUB_SERVICE.into(),
        })
        .await
        .ok()?;
    ServingStatus::try_from(reply.into_inner().status).ok()
}

/// Runs the server in-process on a port-0 listener, with a fast scrub.
async fn start(data: &std::path::Path) -> Running {
    let config = ServerConfig {
        data_dir: data.to_path_buf(),
        origin: Some(ORIGIN.into()),
        scrub_interval: Some(Duration::from_millis(200)),
        ..ServerConfig::default()
    };
    Running::start(config).await
}

async fn wait_for(addr: SocketAddr, want: ServingStatus) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = health(addr).await;
        if got == Some(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "scrub status {got:?}, waited for {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scrub_reports_a_damaged_store_through_health() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let mut rpc = tlog_proto::LogClient::connect(server.url()).await.unwrap();
    // Writes go on while the scrub runs against the growing store.
    for i in 0..60 {
        rpc.submit(tlog_proto::v1::SubmitRequest { entry: entry(i) })
            .await
            .unwrap();
    }
    wait_for(server.addr, ServingStatus::Serving).await;
    server.stop().await.unwrap();

    // One flipped byte in an old entry: recovery (which checks the newest checkpoint) still starts the server,
    // and the scrub finds it.
    {
        let db = RocksBackend::open(dir.path().join("db"), &RocksOptions::default()).unwrap();
        let key = 3u64.to_be_bytes();
        let mut value = db.get_raw(Column::Entries, &key).unwrap().unwrap();
        value[0] ^= 1;
        db.put_raw(Column::Entries, &key, &value).unwrap();
    }
    let server = start(dir.path()).await;
    wait_for(server.addr, ServingStatus::NotServing).await;
    server.stop().await.unwrap();
}
