//! Issue 14's read replicas end to end: `tlogd --replica-of s3://...` against a real S3-compatible store
//! (SeaweedFS, as tests/archive.rs). Replicas serve proofs that verify against the primary's checkpoints, follow
//! the archive as it grows, refuse a checkpoint that does not verify or does not extend the adopted one, and keep
//! their cache within its bound.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tempfile::TempDir;
use tlog_archive::object_store::{ObjectStoreExt, PutPayload};
use tlog_archive::s3::{self, S3Location};
use tlog_archive::testing::SeaweedFs;
use tlog_checkpoint::{Checkpoint, SignerKey, VerifierKey, sign_checkpoint};
use tlog_core::{Hash, LeafIndex, TreeSize, leaf_hash, verify_consistency, verify_inclusion};
use tlog_proto::v1::{self, get_inclusion_proof_request::Leaf};
use tlog_proto::{hash_from_bytes, hashes_from_bytes};
use tlog_server::replica::{Replica, ReplicaConfig, ReplicaStatus};
use tlog_server::validate::LeafRef;
use tlog_suite::archive::{archiving_tlogd, checkpoint, init_archive, rpc, submit, wait_archived};
use tlog_suite::{Rpc, Tlogd, event};

/// A SeaweedFS, a primary archiving to a bucket of it every 100 ms with `n` entries archived, and the primary's
/// verifier key in a file.
struct Primary {
    server: Arc<SeaweedFs>,
    url: String,
    dir: TempDir,
    tlogd: Tlogd,
    rpc: Rpc,
    archived: v1::SignedCheckpoint,
}

impl Primary {
    async fn start(bucket: &str, n: u64) -> Primary {
        let server = SeaweedFs::shared();
        let url = init_archive(&server, bucket);
        let dir = TempDir::new().unwrap();
        let tlogd = archiving_tlogd(&dir.path().join("primary"), &server, &url, &[]);
        let mut rpc = rpc(&tlogd).await;
        submit(&mut rpc, 0, n).await.unwrap();
        let archived = wait_archived(&mut rpc, Duration::from_secs(60)).await;
        assert_eq!(archived.size, n);
        std::fs::write(dir.path().join("log.vkey"), format!("{}\n", tlogd.vkey)).unwrap();
        Primary {
            server,
            url,
            dir,
            tlogd,
            rpc,
            archived,
        }
    }

    fn vkey_file(&self) -> PathBuf {
        self.dir.path().join("log.vkey")
    }

    fn key(&self) -> VerifierKey {
        VerifierKey::parse(&self.tlogd.vkey).unwrap()
    }

    /// A `tlogd --replica-of` process polling every 100 ms.
    fn replica(&self, name: &str) -> Tlogd {
        let vkey = self.vkey_file();
        Tlogd::start_with_env(
            &self.dir.path().join(name),
            &[
                "--replica-of",
                &self.url,
                "--replica-vkey",
                vkey.to_str().unwrap(),
                "--replica-poll-ms",
                "100",
            ],
            &self.server.env(),
        )
    }

    /// An in-process replica polling every 50 ms, caching at most `cache_bytes`.
    async fn replica_in_process(&self, cache_bytes: u64) -> Replica {
        let mut config = ReplicaConfig::new(
            S3Location::parse(&self.url).unwrap(),
            self.server.config().clone(),
            self.key(),
        );
        config.poll_interval = Duration::from_millis(50);
        config.cache_bytes = cache_bytes;
        Replica::open(config).await.unwrap()
    }

    /// The primary's signed root at `size`.
    async fn root_at(&mut self, size: u64) -> Hash {
        let cp = tlog_suite::checkpoint_at(&mut self.rpc, size).await;
        hash_from_bytes("root", &cp.root_hash).unwrap()
    }
}

async fn inclusion(
    rpc: &mut Rpc,
    leaf: Leaf,
    tree_size: u64,
) -> Result<v1::InclusionProof, tonic::Status> {
    rpc.get_inclusion_proof(v1::GetInclusionProofRequest {
        leaf: Some(leaf),
        tree_size,
    })
    .await
    .map(tonic::Response::into_inner)
}

async fn consistency(rpc: &mut Rpc, old_size: u64, new_size: u64) -> v1::ConsistencyProof {
    rpc.get_consistency_proof(v1::GetConsistencyProofRequest { old_size, new_size })
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_serve_proofs_that_verify_against_the_primarys_checkpoints() {
    const N: u64 = 3_000;
    let mut primary = Primary::start("two", N).await;
    let replicas = [primary.replica("r1"), primary.replica("r2")];
    let root = primary.root_at(N).await;
    // A size the primary signed (after the first submission) that no replica adopted.
    let early = 2_000;
    let early_root = primary.root_at(early).await;
    for replica in &replicas {
        let mut r = rpc(replica).await;
        let cp = checkpoint(&mut r).await;
        assert_eq!(
            cp.note, primary.archived.note,
            "the replica serves the archived checkpoint"
        );
        for index in [0, 255, 256, 1_999, N - 1] {
            let p = inclusion(&mut r, Leaf::Index(index), 0).await.unwrap();
            assert_eq!(p.tree_size, N);
            let leaf = hash_from_bytes("leaf", &p.leaf_hash).unwrap();
            assert_eq!(leaf, leaf_hash(&event(index)));
            let hashes = hashes_from_bytes("hashes", &p.hashes).unwrap();
            verify_inclusion(&leaf, LeafIndex(index), TreeSize(N), &hashes, &root)
                .unwrap_or_else(|e| panic!("inclusion of {index}: {e}"));
        }
        let p = consistency(&mut r, early, 0).await;
        assert_eq!(p.new_size, N);
        let hashes = hashes_from_bytes("hashes", &p.hashes).unwrap();
        verify_consistency(TreeSize(early), TreeSize(N), &hashes, &early_root, &root).unwrap();
        // Entries and tiles come from the archive as the primary has them.
        let page = tlog_suite::first_page(&mut r, 250, 260).await.unwrap();
        assert_eq!(page.entries, (250..260).map(event).collect::<Vec<_>>());
        for path in [
            "checkpoint",
            "tile/0/001",
            "tile/0/011.p/184",
            "tile/entries/002",
        ] {
            let get = |base: &str| {
                let url = format!("{base}/{path}");
                async move { reqwest::get(url).await.unwrap().bytes().await.unwrap() }
            };
            let (ours, theirs) = (
                get(replica.http.as_ref().unwrap()).await,
                get(primary.tlogd.http.as_ref().unwrap()).await,
            );
            assert_eq!(ours, theirs, "{path}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_follow_the_archive_as_the_primary_grows() {
    let mut primary = Primary::start("follow", 1_000).await;
    let replicas = [primary.replica("r1"), primary.replica("r2")];
    submit(&mut primary.rpc, 1_000, 5_000).await.unwrap();
    let grown = wait_archived(&mut primary.rpc, Duration::from_secs(60)).await;
    let (old_root, new_root) = (
        primary.root_at(1_000).await,
        primary.root_at(grown.size).await,
    );
    for replica in &replicas {
        let mut r = rpc(replica).await;
        // Waits (at most the service's 30 s) for the replica to adopt the grown tree.
        let cp = r
            .get_checkpoint(v1::GetCheckpointRequest {
                min_size: grown.size,
                ..Default::default()
            })
            .await
            .expect("the replica caught up")
            .into_inner();
        assert_eq!(cp.note, grown.note);
        let p = consistency(&mut r, 1_000, 0).await;
        let hashes = hashes_from_bytes("hashes", &p.hashes).unwrap();
        verify_consistency(
            TreeSize(1_000),
            TreeSize(grown.size),
            &hashes,
            &old_root,
            &new_root,
        )
        .unwrap();
        let p = inclusion(&mut r, Leaf::Index(4_999), 0).await.unwrap();
        let hashes = hashes_from_bytes("hashes", &p.hashes).unwrap();
        verify_inclusion(
            &leaf_hash(&event(4_999)),
            LeafIndex(4_999),
            TreeSize(5_000),
            &hashes,
            &new_root,
        )
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replica_refuses_writes_and_lookups_by_leaf_hash_with_clear_statuses() {
    let primary = Primary::start("refuse", 300).await;
    let replica = primary.replica("r1");
    let mut r = rpc(&replica).await;
    let refused = submit(&mut r, 300, 301).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition, "{refused}");
    assert!(
        refused.message().contains(&format!(
            "read replica of {}",
            primary.url.trim_end_matches('/')
        )) && refused.message().contains("submit to the primary"),
        "{refused}"
    );
    let by_hash = Leaf::LeafHash(leaf_hash(&event(7)).0.to_vec());
    let status = inclusion(&mut r, by_hash, 0).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unimplemented, "{status}");
    assert!(status.message().contains("ask by leaf index"), "{status}");
}

/// Waits until the follower has refused `n` checkpoints in all; panics after 10 s.
/// Puts `note` in the archive as its checkpoint (by hand: a new version, Object Lock keeps the old one) and waits
/// until the replica refuses it for a reason containing `why`; returns its status then.
async fn refuses(replica: &Replica, primary: &Primary, note: &str, why: &str) -> ReplicaStatus {
    forge_checkpoint(primary, note).await;
    let mut status = replica.status();
    let status = tokio::time::timeout(Duration::from_secs(10), status.wait_for(|s| s.refused >= 1))
        .await
        .expect("the replica refused the checkpoint in time")
        .unwrap()
        .clone();
    let refusal = status.last_refusal.as_deref().unwrap_or_default();
    assert!(refusal.contains(why), "{status:?}");
    status
}

/// Replaces the archive's checkpoint object by hand (a new version: Object Lock keeps the old one).
async fn forge_checkpoint(primary: &Primary, note: &str) {
    let location = S3Location::parse(&primary.url).unwrap();
    let store = s3::object_store(primary.server.config(), &location.bucket).unwrap();
    store
        .put(
            &format!("{}/checkpoint", location.prefix).into(),
            PutPayload::from(note.as_bytes().to_vec()),
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replica_refuses_a_checkpoint_signed_by_another_key() {
    let primary = Primary::start("forged", 600).await;
    let replica = primary.replica_in_process(1 << 20).await;
    let origin = primary.tlogd.origin.clone();
    let impostor = SignerKey::from_seed(&origin, [7; 32]).unwrap();
    let claim = Checkpoint::new(origin, TreeSize(900), Hash([9; 32])).unwrap();
    let forged = sign_checkpoint(&impostor, &claim, 1_800_000_000).unwrap();
    let status = refuses(&replica, &primary, &forged.note, "does not verify").await;
    assert_eq!(status.size, 600);
    assert_eq!(
        replica.reader().latest().note.as_bytes(),
        primary.archived.note
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replica_refuses_a_validly_signed_checkpoint_that_forks_from_the_adopted_one() {
    let primary = Primary::start("fork", 600).await;
    let replica = primary.replica_in_process(1 << 20).await;
    // The log's own key signs a larger tree with another history: only consistency can tell.
    let text = std::fs::read_to_string(primary.dir.path().join("primary/log.key")).unwrap();
    let key = SignerKey::parse_private(text.trim()).unwrap();
    let claim =
        Checkpoint::new(primary.tlogd.origin.clone(), TreeSize(900), Hash([9; 32])).unwrap();
    let forked = sign_checkpoint(&key, &claim, 1_800_000_000).unwrap();
    let status = refuses(&replica, &primary, &forked.note, "no consistency").await;
    assert_eq!(status.size, 600);
    assert_eq!(replica.reader().latest().checkpoint.size, TreeSize(600));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replicas_cache_stays_within_its_byte_limit() {
    const N: u64 = 5_000;
    const LIMIT: u64 = 64 << 10;
    let primary = Primary::start("cache", N).await;
    let replica = primary.replica_in_process(LIMIT).await;
    let (reader, store) = (replica.reader().clone(), replica.store().clone());
    let most = tokio::task::spawn_blocking(move || {
        let mut most = 0;
        // Every bundle (20 of about 10 KiB) and every level-0 tile (19 full ones of 16 KiB): well past the limit.
        for start in (0..N).step_by(250) {
            let entries = reader
                .entries(LeafIndex(start), LeafIndex((start + 250).min(N)))
                .unwrap();
            assert_eq!(entries[0], event(start));
            reader
                .inclusion(LeafRef::Index(LeafIndex(start)), TreeSize(0))
                .unwrap();
            most = most.max(store.cached_bytes());
        }
        most
    })
    .await
    .unwrap();
    assert!(most > LIMIT / 2, "the cache was used ({most} bytes)");
    assert!(most <= LIMIT, "{most} bytes cached, limit {LIMIT}");
}
