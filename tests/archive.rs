//! Issue 14 end to end: `tlogd --archive s3://...` against a real S3-compatible store (SeaweedFS, started by
//! scripts/seaweedfs.sh, installed when missing: these tests fail rather than skip without it). The bucket is
//! read back with the tile client and with `tlog verify --archive`; the store's Object Lock, a second writer,
//! an outage and a SIGKILL are each put to the archive.

use std::process::Command;
use std::time::{Duration, Instant};

use tempfile::TempDir;
use tlog_archive::Head;
use tlog_archive::s3::{self, S3Location};
use tlog_archive::testing::{SeaweedFs, delete_version, get_version, object_versions};
use tlog_checkpoint::VerifierKey;
use tlog_client::tiles::TileClient;
use tlog_core::LeafIndex;
use tlog_proto::v1;
use tlog_suite::archive::{
    HoldingProxy, archive_tiles, archiving_tlogd, checkpoint, init_archive, rpc, submit,
    tlog_verify_archive, wait_archived,
};
use tlog_suite::{Rpc, Tlogd, bin};

#[tokio::test]
async fn a_large_log_is_archived_and_verifies_from_the_archive_alone() {
    let server = SeaweedFs::start();
    let url = init_archive(&server, "large");
    let dir = TempDir::new().unwrap();
    let tlogd = archiving_tlogd(dir.path(), &server, &url, &[]);
    let mut rpc = rpc(&tlogd).await;
    // TLOG_ARCHIVE_ENTRIES=400000 for the "few hundred thousand" (minutes on a debug build).
    let n: u64 = std::env::var("TLOG_ARCHIVE_ENTRIES")
        .ok()
        .map(|v| v.parse().expect("TLOG_ARCHIVE_ENTRIES is a number"))
        .unwrap_or(120_000);
    assert!(n > 65_536, "the proofs below need a level-1 tile");
    submit(&mut rpc, 0, n).await.unwrap();
    let wait = Duration::from_secs(180).max(Duration::from_millis(n * 2));
    let archived = wait_archived(&mut rpc, wait).await;
    assert_eq!(archived.size, n);

    // The bucket alone is a tlog-tiles log: its checkpoint is the log's, and proofs built from its tiles verify.
    let key = VerifierKey::parse(&tlogd.vkey).unwrap();
    let tiles = TileClient::new(archive_tiles(&server, &url), key);
    let cp = tiles.checkpoint().await.unwrap();
    assert_eq!(cp.note.as_bytes(), archived.note);
    for index in [0, 255, 256, 65_535, 65_536, n - 1] {
        tiles.prove_inclusion(LeafIndex(index), &cp).await.unwrap();
    }
    let (code, out) = tlog_verify_archive(&server, &url, &tlogd.vkey);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("every one of its {n} entries")),
        "{out}"
    );
}

#[tokio::test]
async fn the_store_refuses_to_delete_archived_tiles_and_keeps_them_under_an_overwrite() {
    let server = SeaweedFs::start();
    let url = init_archive(&server, "locked");
    let dir = TempDir::new().unwrap();
    let tlogd = archiving_tlogd(dir.path(), &server, &url, &[]);
    let mut rpc = rpc(&tlogd).await;
    submit(&mut rpc, 0, 600).await.unwrap();
    wait_archived(&mut rpc, Duration::from_secs(60)).await;

    let config = server.config();
    for key in ["log/tile/0/000", "log/tile/entries/001"] {
        let versions = object_versions(config, "locked", key).await;
        assert_eq!(versions.len(), 1, "{key}: {versions:?}");
        let original = get_version(config, "locked", key, &versions[0]).await;
        let status = delete_version(config, "locked", key, &versions[0]).await;
        assert_eq!(status.as_u16(), 403, "{key}: DELETE of a locked version");
        // An unconditional overwrite only adds a version: the archived one is still there, unchanged.
        let store = s3::object_store(config, "locked").unwrap();
        use tlog_archive::object_store::{ObjectStoreExt, PutPayload};
        store
            .put(&key.into(), PutPayload::from_static(b"forged"))
            .await
            .unwrap();
        assert_eq!(
            get_version(config, "locked", key, &versions[0]).await,
            original
        );
        assert_eq!(
            delete_version(config, "locked", key, &versions[0])
                .await
                .as_u16(),
            403
        );
    }
}

#[tokio::test]
async fn of_two_logs_racing_on_one_archive_exactly_one_keeps_writing() {
    let server = SeaweedFs::start();
    let url = init_archive(&server, "race");
    let (a_dir, b_dir) = (TempDir::new().unwrap(), TempDir::new().unwrap());
    let lag = ["--archive-max-lag", "1000"];
    let logs = [
        archiving_tlogd(a_dir.path(), &server, &url, &lag),
        archiving_tlogd(b_dir.path(), &server, &url, &lag),
    ];
    let mut rpcs = [rpc(&logs[0]).await, rpc(&logs[1]).await];
    // Each takes writes up to its lag limit whatever its archive does (a write past it is refused).
    for rpc in &mut rpcs {
        submit(rpc, 0, 1_000).await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let archived = [
        checkpoint(&mut rpcs[0]).await.archived_size,
        checkpoint(&mut rpcs[1]).await.archived_size,
    ];
    let winner = match archived {
        [1_000, 0] => 0,
        [0, 1_000] => 1,
        other => panic!("archived sizes {other:?}: not exactly one writer"),
    };
    let loser = 1 - winner;
    // The winner goes on; the loser, which archives nothing, is held at its lag limit.
    submit(&mut rpcs[winner], 1_000, 1_500).await.unwrap();
    let refused = submit(&mut rpcs[loser], 1_000, 1_500).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::ResourceExhausted, "{refused}");
    let latest = wait_archived(&mut rpcs[winner], Duration::from_secs(60)).await;
    assert_eq!(latest.size, 1_500);
    assert_eq!(checkpoint(&mut rpcs[loser]).await.archived_size, 0);
    // The archive holds one history, the winner's, whole.
    let note = tlog_client::TileSource::checkpoint(&archive_tiles(&server, &url))
        .await
        .unwrap();
    assert_eq!(note, latest.note);
    let (code, out) = tlog_verify_archive(&server, &url, &logs[winner].vkey);
    assert_eq!(code, 0, "{out}");
}

#[tokio::test]
async fn an_object_store_outage_under_load_loses_nothing() {
    let server = SeaweedFs::start();
    let url = init_archive(&server, "outage");
    let dir = TempDir::new().unwrap();
    let tlogd = archiving_tlogd(dir.path(), &server, &url, &[]);
    let mut rpc = rpc(&tlogd).await;
    submit(&mut rpc, 0, 5_000).await.unwrap();
    wait_archived(&mut rpc, Duration::from_secs(60)).await;

    server.stop();
    // Writes go on while the store is down (acks never wait for the archive)...
    submit(&mut rpc, 5_000, 30_000).await.unwrap();
    let during = checkpoint(&mut rpc).await;
    assert_eq!(during.size, 30_000);
    assert_eq!(during.archived_size, 5_000);
    server.restart();
    // ...and the archive catches up once it is back.
    submit(&mut rpc, 30_000, 40_000).await.unwrap();
    let archived = wait_archived(&mut rpc, Duration::from_secs(120)).await;
    assert_eq!(archived.size, 40_000);
    let (code, out) = tlog_verify_archive(&server, &url, &tlogd.vkey);
    assert_eq!(code, 0, "{out}");
}

#[tokio::test]
async fn a_sigkill_during_archiving_then_a_restart_completes_the_archive() {
    let server = SeaweedFs::start();
    let url = init_archive(&server, "sigkill");
    let dir = TempDir::new().unwrap();
    // A log of 60,000 entries first, without the archive: its first archiving is one long upload.
    let tlogd = Tlogd::start(dir.path(), &[]);
    let vkey = tlogd.vkey.clone();
    submit(&mut rpc(&tlogd).await, 0, 60_000).await.unwrap();
    // Off the runtime: the graceful stop waits for the client's connection to close, which this runtime does.
    tokio::task::spawn_blocking(move || tlogd.stop())
        .await
        .unwrap();

    // Killed with every tile of the first upload in the bucket and its checkpoint held back by a proxy: the
    // archive is in flight, its objects written, nothing yet claims them.
    let proxy = HoldingProxy::start(&server, "PUT /sigkill/log/checkpoint ").await;
    let tlogd = Tlogd::start_with_env(
        dir.path(),
        &["--archive", &url, "--archive-interval-ms", "100"],
        &proxy.env(&server),
    );
    proxy.wait_held(Duration::from_secs(120)).await;
    tlogd.kill();
    let key = VerifierKey::parse(&vkey).unwrap();
    let archive = s3::open(&S3Location::parse(&url).unwrap(), server.config(), key).unwrap();
    let head: Head = archive.head().await.unwrap();
    assert_eq!(head.size().0, 0, "no checkpoint reached the archive");
    let last =
        tlog_core::tiles::Tile::entries_at(60_000 / 256, tlog_core::TreeSize(60_000)).unwrap();
    tlog_client::TileSource::fetch(&archive_tiles(&server, &url), &last)
        .await
        .expect("the tiles were uploaded before the checkpoint");

    let tlogd = archiving_tlogd(dir.path(), &server, &url, &[]);
    let archived = wait_archived(&mut rpc(&tlogd).await, Duration::from_secs(120)).await;
    assert_eq!(archived.size, 60_000);
    let (code, out) = tlog_verify_archive(&server, &url, &vkey);
    assert_eq!(code, 0, "{out}");
}

#[tokio::test]
async fn writes_are_refused_while_the_archive_lags_past_the_limit() {
    // An archive nobody answers: the lag only grows.
    let dir = TempDir::new().unwrap();
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let env = [
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_ACCESS_KEY_ID", "k".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "s".to_owned()),
        ("AWS_ALLOW_HTTP", "true".to_owned()),
    ];
    let tlogd = Tlogd::start_with_env(
        dir.path(),
        &["--archive", "s3://nowhere/log", "--archive-max-lag", "1000"],
        &env,
    );
    let mut rpc = rpc(&tlogd).await;
    submit(&mut rpc, 0, 1_000).await.unwrap();
    let refused = submit(&mut rpc, 1_000, 1_001).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::ResourceExhausted, "{refused}");
    assert!(refused.message().contains("archive"), "{refused}");
    let cp = checkpoint(&mut rpc).await;
    assert_eq!((cp.size, cp.archived_size), (1_000, 0));
}

#[tokio::test]
async fn a_log_restored_from_its_archive_has_the_same_roots_and_proofs_and_goes_on() {
    let server = SeaweedFs::start();
    let url = init_archive(&server, "restore");
    let (old_dir, new_dir) = (TempDir::new().unwrap(), TempDir::new().unwrap());
    let old = archiving_tlogd(old_dir.path(), &server, &url, &[]);
    let vkey = old.vkey.clone();
    let mut old_rpc = rpc(&old).await;
    submit(&mut old_rpc, 0, 5_000).await.unwrap();
    let old_cp = wait_archived(&mut old_rpc, Duration::from_secs(60)).await;
    let proof_at = |index| v1::GetInclusionProofRequest {
        leaf: Some(v1::get_inclusion_proof_request::Leaf::Index(index)),
        tree_size: 5_000,
    };
    let old_proof = old_rpc
        .get_inclusion_proof(proof_at(1_234))
        .await
        .unwrap()
        .into_inner();
    drop(old_rpc);
    tokio::task::spawn_blocking(move || old.stop())
        .await
        .unwrap();

    // Disaster: only the archive and the key are left.
    let data = new_dir.path().join("data");
    let out = Command::new(bin("tlogd"))
        .arg("restore")
        .args(["--from", &url, "--data"])
        .arg(&data)
        .arg("--key")
        .arg(old_dir.path().join("log.key"))
        .envs(server.env())
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");

    // The restored log proves what the old one proved, byte for byte, and archives on from the same archive.
    let new = archiving_tlogd(&data, &server, &url, &[]);
    assert_eq!(new.vkey, vkey);
    let mut new_rpc = rpc(&new).await;
    let new_proof = new_rpc
        .get_inclusion_proof(proof_at(1_234))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(new_proof.hashes, old_proof.hashes);
    assert_eq!(new_proof.leaf_hash, old_proof.leaf_hash);
    let new_root = new_proof.checkpoint.unwrap().root_hash;
    assert_eq!(new_root, old_cp.root_hash);
    submit(&mut new_rpc, 5_000, 5_100).await.unwrap();
    let extended = wait_archived(&mut new_rpc, Duration::from_secs(60)).await;
    assert_eq!(extended.size, 5_100);
    // The archive's new checkpoint extends the old one: a consistency proof from its tiles verifies.
    let key = VerifierKey::parse(&vkey).unwrap();
    let tiles = TileClient::new(archive_tiles(&server, &url), key.clone());
    let old_signed = tlog_checkpoint::verify_checkpoint(&key, &old_cp.note).unwrap();
    let new_signed = tiles.checkpoint().await.unwrap();
    assert_eq!(new_signed.checkpoint.size.0, 5_100);
    tiles
        .prove_consistency(&old_signed, &new_signed)
        .await
        .unwrap();
}

#[tokio::test]
async fn with_witnesses_the_archive_holds_the_witnessed_checkpoints() {
    use tlog_checkpoint::SignerKey;
    use tlog_server::archiving::ArchiveConfig;
    use tlog_server::server::ServerConfig;
    use tlog_server::testing::Running;
    use tlog_server::witnessing::{WitnessEndpoint, WitnessingConfig};
    use tlog_witness::{LogConfig, Witness, WitnessConfig};

    let server = SeaweedFs::start();
    let url = init_archive(&server, "witnessed");
    let dir = TempDir::new().unwrap();
    let log_key = SignerKey::from_seed("example.com/archived-witnessed", [31; 32]).unwrap();
    let key_file = dir.path().join("log.key");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(&key_file, log_key.to_private_string()).unwrap();
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let witness = Witness::start(WitnessConfig {
        data_dir: dir.path().join("witness"),
        name: Some("witness.example".into()),
        logs: vec![LogConfig::from_key(log_key.verifier())],
        listen: "127.0.0.1:0".parse().unwrap(),
        ..WitnessConfig::default()
    })
    .await
    .unwrap();
    let cosigner = witness.started.cosigner_key.clone();
    let endpoint = WitnessEndpoint {
        key: cosigner.clone(),
        url: witness.url.trim_end_matches("/add-checkpoint").to_owned(),
    };
    let mut archive = ArchiveConfig::new(S3Location::parse(&url).unwrap(), server.config().clone());
    archive.interval = Duration::from_millis(100);
    let log = Running::start(ServerConfig {
        data_dir: dir.path().join("log"),
        key_file: Some(key_file),
        witnessing: Some(WitnessingConfig::new(vec![endpoint], 1)),
        archive: Some(archive),
        ..ServerConfig::default()
    })
    .await;
    let mut rpc = Rpc::connect(log.url()).await.unwrap();
    submit(&mut rpc, 0, 1_000).await.unwrap();

    // A client that requires the witness's cosignature accepts the archived checkpoint.
    let policy = tlog_client::WitnessPolicy::new(vec![cosigner], Some(1)).unwrap();
    let tiles =
        TileClient::new(archive_tiles(&server, &url), log_key.verifier()).with_policy(policy);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match tiles.checkpoint().await {
            Ok(cp) if cp.checkpoint.size.0 == 1_000 => break,
            other => {
                assert!(Instant::now() < deadline, "archived checkpoint: {other:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    drop(rpc);
    log.stop().await.unwrap();
    witness.stop().await.unwrap();
}

#[tokio::test]
async fn a_log_that_only_claimed_its_archive_resumes_after_growing_without_it() {
    let server = SeaweedFs::start();
    let url = init_archive(&server, "claimed");
    let dir = TempDir::new().unwrap();
    // A fresh log claims the empty archive with its size-0 checkpoint, and stops before any entry.
    let tlogd = archiving_tlogd(dir.path(), &server, &url, &[]);
    let tiles = archive_tiles(&server, &url);
    let deadline = Instant::now() + Duration::from_secs(30);
    while tlog_client::TileSource::checkpoint(&tiles).await.is_err() {
        assert!(Instant::now() < deadline, "the archive was not claimed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::task::spawn_blocking(move || tlogd.stop())
        .await
        .unwrap();
    // It grows without the archive, then archives again: the claim is its own, whatever its size now.
    let tlogd = Tlogd::start(dir.path(), &[]);
    submit(&mut rpc(&tlogd).await, 0, 500).await.unwrap();
    tokio::task::spawn_blocking(move || tlogd.stop())
        .await
        .unwrap();
    let tlogd = archiving_tlogd(dir.path(), &server, &url, &[]);
    let archived = wait_archived(&mut rpc(&tlogd).await, Duration::from_secs(60)).await;
    assert_eq!(archived.size, 500);
}

#[tokio::test]
async fn tlog_verify_archive_recomputes_every_hash_tile_from_the_entries() {
    let server = SeaweedFs::start();
    let url = init_archive(&server, "tiles");
    let dir = TempDir::new().unwrap();
    let tlogd = archiving_tlogd(dir.path(), &server, &url, &[]);
    let mut rpc = rpc(&tlogd).await;
    submit(&mut rpc, 0, 600).await.unwrap();
    wait_archived(&mut rpc, Duration::from_secs(60)).await;
    // 600 entries: level-0 tiles 000 and 001, 002.p/88, and the level-1 tile 000.p/2.
    let (code, out) = tlog_verify_archive(&server, &url, &tlogd.vkey);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("its 4 hash tiles are the ones they give"),
        "{out}"
    );
    // A well-formed tile of other hashes on top of an archived one: the entries still rebuild the root, but a
    // proof built from the tiles would not verify.
    use tlog_archive::object_store::{ObjectStoreExt, PutPayload};
    let store = s3::object_store(server.config(), "tiles").unwrap();
    store
        .put(
            &"log/tile/0/001".into(),
            PutPayload::from(vec![7u8; 256 * 32]),
        )
        .await
        .unwrap();
    let (code, out) = tlog_verify_archive(&server, &url, &tlogd.vkey);
    assert_eq!(code, 3, "an inconsistent archive: {out}");
    assert!(out.contains("tile/0/001 differs"), "{out}");
}
