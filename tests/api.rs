//! End-to-end tests of the gRPC API on port 0 with RocksDB in a temp dir: every kind of submission, offline receipt
//! checks, proofs, entries paging, restarts and startup refusals against the real `tlogd` process, and the status
//! code of every bad request against the same server run inside the test process.

use tlog_checkpoint::VerifierKey;
use tlog_client::{ClientError, LogClient, verify_entries, verify_receipt};
use tlog_core::{CompactRange, Hash, LeafIndex, TreeSize, leaf_hash};
use tlog_proto::v1::get_inclusion_proof_request::Leaf;
use tlog_proto::v1::{
    GetCheckpointRequest, GetConsistencyProofRequest, GetEntriesRequest, GetInclusionProofRequest,
    Receipt, SubmitBatchRequest, SubmitBatchResponse, SubmitRequest,
};
use tlog_server::server::ServerConfig;
use tlog_server::testing::Running;
use tlog_suite::{Rpc, Tlogd, authed, code, event, first_page, submit_events};
use tonic::Code;

/// The write token of the server in `bad_requests_get_their_status_codes`.
const TOKEN: &str = "s3cret";

async fn clients(server: &Tlogd) -> (LogClient, Rpc) {
    let key = VerifierKey::parse(&server.vkey).unwrap();
    let client = LogClient::connect(&server.addr, key).await.unwrap();
    let rpc = Rpc::connect(server.addr.clone()).await.unwrap();
    (client, rpc)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submissions_proofs_entries_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = Tlogd::start(dir.path(), &["--origin", "example.com/e2e"]);
    assert_eq!(server.origin, "example.com/e2e");
    let key = VerifierKey::parse(&server.vkey).unwrap();
    let (mut client, _) = clients(&server).await;

    // Unary, batch and stream submissions all come back with receipts that verify offline.
    let r0 = client.submit(&event(0)).await.unwrap();
    assert_eq!(r0.index(), LeafIndex(0));
    let batch: Vec<Vec<u8>> = (1..=100).map(event).collect();
    let rs = client.submit_batch(&batch).await.unwrap();
    assert_eq!(
        rs.iter().map(|r| r.index().0).collect::<Vec<_>>(),
        (1..=100).collect::<Vec<_>>()
    );
    let streamed = client
        .submit_stream((0..5).map(|b| (0..50).map(|i| event(1000 + b * 50 + i)).collect()))
        .await
        .unwrap();
    assert_eq!(streamed.len(), 5);
    assert_eq!(streamed[4][49].index(), LeafIndex(350));
    for r in rs.iter().chain(streamed.iter().flatten()).chain([&r0]) {
        let again = verify_receipt(&key, r.receipt(), None).unwrap();
        assert_eq!(again.index(), r.index());
    }
    let json = serde_json::to_string(rs[10].receipt()).unwrap();
    let parsed: tlog_client::Receipt = serde_json::from_str(&json).unwrap();
    verify_receipt(&key, &parsed, Some(&event(11))).unwrap();
    assert!(matches!(
        verify_receipt(&key, &parsed, Some(&event(12))),
        Err(ClientError::LeafHashMismatch { .. })
    ));

    // A duplicate gets its existing index back.
    let dup = client.submit(&event(5)).await.unwrap();
    assert!(dup.duplicate());
    assert_eq!(dup.index(), LeafIndex(5));

    // Proofs by index and by hash at the latest and at earlier published sizes.
    let size_after_batch = rs[0].checkpoint().checkpoint.size;
    for index in [0u64, 1, 50, 100] {
        client
            .inclusion_by_index(LeafIndex(index), None)
            .await
            .unwrap();
        client
            .inclusion_by_index(LeafIndex(index), Some(size_after_batch))
            .await
            .unwrap();
        client
            .inclusion_by_hash(&leaf_hash(&event(index)), None)
            .await
            .unwrap();
    }
    // Consistency across every pair of sizes published by the stream.
    let sizes: Vec<TreeSize> = streamed
        .iter()
        .map(|b| b[0].checkpoint().checkpoint.size)
        .collect();
    for (i, old) in sizes.iter().enumerate() {
        for new in &sizes[i..] {
            client
                .consistency_from_size(*old, Some(*new))
                .await
                .unwrap();
        }
    }

    // Entries page through and rebuild the signed root.
    let latest = client.checkpoint_at_least(TreeSize(351)).await.unwrap();
    let all = client
        .entries_vec(LeafIndex(0), LeafIndex(351))
        .await
        .unwrap();
    assert_eq!(all.len(), 351);
    verify_entries(&CompactRange::new(), &all, &latest.checkpoint).unwrap();

    // Restart (graceful), then everything still verifies and the log continues.
    server.stop();
    let server = Tlogd::start(dir.path(), &[]);
    assert_eq!(server.origin, "example.com/e2e", "the origin is kept");
    let (client, _) = clients(&server).await;
    let old = latest.clone();
    client.consistency(&old, None).await.unwrap();
    let r = client.submit(&event(9999)).await.unwrap();
    assert_eq!(r.index(), LeafIndex(351));
    client
        .consistency(&old, Some(r.checkpoint().checkpoint.size))
        .await
        .unwrap();
    client.inclusion_by_index(LeafIndex(7), None).await.unwrap();

    // A crash (SIGKILL) loses nothing that was acknowledged.
    server.kill();
    let server = Tlogd::start(dir.path(), &[]);
    let (client, _) = clients(&server).await;
    let proof = client.inclusion_of_entry(&event(9999), None).await.unwrap();
    assert_eq!(proof.index(), LeafIndex(351));
}

/// A log server inside this test process, on port 0 with RocksDB in a temporary folder: the tests that use it are
/// about the answers to requests, not about the `tlogd` process. It wants write token [`TOKEN`] and takes entries
/// of at most 1000 bytes.
struct StrictLog {
    server: Running,
    _dir: tempfile::TempDir,
}

impl StrictLog {
    async fn start() -> (StrictLog, Rpc) {
        let dir = tempfile::tempdir().unwrap();
        let mut config = ServerConfig {
            data_dir: dir.path().to_path_buf(),
            origin: Some("example.com/api".into()),
            write_tokens: vec![TOKEN.into()],
            ..ServerConfig::default()
        };
        config.log.max_entry_bytes = 1000;
        let server = Running::start(config).await;
        let rpc = Rpc::connect(server.url()).await.unwrap();
        let log = StrictLog { server, _dir: dir };
        (log, rpc)
    }

    /// Closes the client, stops the server gracefully and waits for it, so the store is closed before its folder
    /// is removed.
    async fn stop(self, rpc: Rpc) {
        drop(rpc);
        self.server.stop().await.unwrap();
    }
}

/// A [`StrictLog`] holding 11 entries submitted one call at a time (published sizes 1, 10 and 11), so sizes
/// such as 5 and 7 were never published.
async fn eleven_entries() -> (StrictLog, Rpc) {
    let (log, mut rpc) = StrictLog::start().await;
    submit(&mut rpc, b"x".to_vec()).await.unwrap();
    submit_events(&mut rpc, TOKEN, 0..9).await;
    submit(&mut rpc, vec![1; 1000]).await.unwrap();
    assert_eq!(latest_size(&mut rpc).await, 11);
    (log, rpc)
}

/// Runs `refusals` against [`eleven_entries`], then checks that they changed nothing.
async fn refused_on_eleven_entries(refusals: impl AsyncFnOnce(&mut Rpc)) {
    let (log, mut rpc) = eleven_entries().await;
    refusals(&mut rpc).await;
    assert_eq!(latest_size(&mut rpc).await, 11, "refusals change nothing");
    log.stop(rpc).await;
}

/// Submits `entry` with the write token.
async fn submit(rpc: &mut Rpc, entry: Vec<u8>) -> Result<tonic::Response<Receipt>, tonic::Status> {
    rpc.submit(authed(TOKEN, SubmitRequest { entry })).await
}

async fn latest_size(rpc: &mut Rpc) -> u64 {
    rpc.get_checkpoint(GetCheckpointRequest::default())
        .await
        .unwrap()
        .into_inner()
        .size
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_need_a_valid_token() {
    let (log, mut rpc) = StrictLog::start().await;
    assert_eq!(
        code(
            rpc.submit(SubmitRequest {
                entry: b"x".to_vec()
            })
            .await
        ),
        Some(Code::Unauthenticated)
    );
    let mut wrong = tonic::Request::new(SubmitRequest {
        entry: b"x".to_vec(),
    });
    wrong
        .metadata_mut()
        .insert("authorization", "Bearer nope".parse().unwrap());
    assert_eq!(code(rpc.submit(wrong).await), Some(Code::PermissionDenied));
    submit(&mut rpc, b"x".to_vec()).await.unwrap();
    log.stop(rpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_and_oversized_entries_and_empty_batches_are_invalid() {
    let (log, mut rpc) = StrictLog::start().await;
    assert_eq!(
        code(submit(&mut rpc, vec![]).await),
        Some(Code::InvalidArgument)
    );
    assert_eq!(
        code(submit(&mut rpc, vec![1; 1001]).await),
        Some(Code::InvalidArgument)
    );
    submit(&mut rpc, vec![1; 1000]).await.unwrap();
    let empty_batch = SubmitBatchRequest {
        entries: vec![],
        client_tag: 0,
        shared_checkpoint: false,
        multiproof: false,
    };
    assert_eq!(
        code(rpc.submit_batch(authed(TOKEN, empty_batch)).await),
        Some(Code::InvalidArgument)
    );
    assert_eq!(
        latest_size(&mut rpc).await,
        1,
        "only the valid entry was logged"
    );
    log.stop(rpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inclusion_requests_get_their_status_codes() {
    refused_on_eleven_entries(async |rpc| {
        let inclusion = |leaf, tree_size| GetInclusionProofRequest {
            leaf: Some(leaf),
            tree_size,
        };
        assert_eq!(
            code(rpc.get_inclusion_proof(inclusion(Leaf::Index(11), 0)).await),
            Some(Code::OutOfRange)
        );
        assert_eq!(
            code(
                rpc.get_inclusion_proof(inclusion(Leaf::Index(u64::MAX), 0))
                    .await
            ),
            Some(Code::OutOfRange)
        );
        assert_eq!(
            code(rpc.get_inclusion_proof(inclusion(Leaf::Index(0), 12)).await),
            Some(Code::OutOfRange)
        );
        assert_eq!(
            code(
                rpc.get_inclusion_proof(inclusion(Leaf::Index(0), u64::MAX))
                    .await
            ),
            Some(Code::OutOfRange)
        );
        assert_eq!(
            code(rpc.get_inclusion_proof(inclusion(Leaf::Index(0), 5)).await),
            Some(Code::NotFound),
            "unpublished size"
        );
        let unknown = Leaf::LeafHash(leaf_hash(b"never submitted").0.to_vec());
        assert_eq!(
            code(rpc.get_inclusion_proof(inclusion(unknown, 0)).await),
            Some(Code::NotFound)
        );
        assert_eq!(
            code(
                rpc.get_inclusion_proof(inclusion(Leaf::LeafHash(vec![1; 31]), 0))
                    .await
            ),
            Some(Code::InvalidArgument)
        );
        let no_leaf = GetInclusionProofRequest {
            leaf: None,
            tree_size: 0,
        };
        assert_eq!(
            code(rpc.get_inclusion_proof(no_leaf).await),
            Some(Code::InvalidArgument)
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_consistency_requests_get_their_status_codes() {
    refused_on_eleven_entries(async |rpc| {
        let consistency = |old_size, new_size| GetConsistencyProofRequest { old_size, new_size };
        rpc.get_consistency_proof(consistency(1, 11)).await.unwrap();
        for (old, new, expected) in [
            (0, 11, Code::InvalidArgument),
            (11, 1, Code::InvalidArgument),
            (1, u64::MAX, Code::OutOfRange),
            (5, 11, Code::NotFound),
        ] {
            let refused = rpc.get_consistency_proof(consistency(old, new)).await;
            assert_eq!(code(refused), Some(expected), "from {old} to {new}");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_entries_ranges_and_unpublished_checkpoints_get_their_status_codes() {
    refused_on_eleven_entries(async |rpc| {
        let empty = first_page(rpc, 5, 5).await;
        assert!(empty.is_none(), "an empty range streams no pages");
        let entries = |start, end| GetEntriesRequest { start, end };
        for (start, end, expected) in [
            (6, 5, Code::InvalidArgument),
            (0, 12, Code::OutOfRange),
            (0, u64::MAX, Code::OutOfRange),
        ] {
            let refused = rpc.get_entries(entries(start, end)).await;
            assert_eq!(code(refused), Some(expected), "[{start}, {end})");
        }
        assert_eq!(
            code(
                rpc.get_checkpoint(GetCheckpointRequest {
                    min_size: 0,
                    size: 7,
                    witnessed: false,
                })
                .await
            ),
            Some(Code::NotFound)
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_to_start_on_a_foreign_key_or_origin() {
    let dir = tempfile::tempdir().unwrap();
    let server = Tlogd::start(dir.path(), &["--origin", "example.com/a"]);
    let (client, _) = clients(&server).await;
    client.submit(b"one").await.unwrap();
    server.stop();
    let err = Tlogd::try_start(dir.path(), &["--origin", "example.com/b"])
        .err()
        .unwrap();
    assert!(err.contains("differs from this log's origin"), "{err}");
    // Replace the key with another one for the same origin: the store's signatures no longer match.
    let other = tempfile::tempdir().unwrap();
    Tlogd::start(other.path(), &["--origin", "example.com/a"]).stop();
    std::fs::copy(other.path().join("log.key"), dir.path().join("log.key")).unwrap();
    let err = Tlogd::try_start(dir.path(), &[]).err().unwrap();
    assert!(
        err.contains("refusing to start") && err.contains("was written with key"),
        "{err}"
    );
}

/// The service names a reflection client (what `grpcurl list` uses) gets back, over reflection v1 and v1alpha.
/// The service names one version (`v1` or `v1alpha`, the same messages in two packages) of the reflection
/// service lists.
macro_rules! list_services {
    ($version:ident, $channel:expr) => {{
        use tonic_reflection::pb::$version as pb;
        let mut c = pb::server_reflection_client::ServerReflectionClient::new($channel);
        let request = pb::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(pb::server_reflection_request::MessageRequest::ListServices(
                String::new(),
            )),
        };
        let mut answers = c
            .server_reflection_info(tokio_stream::iter([request]))
            .await
            .unwrap()
            .into_inner();
        match answers.message().await.unwrap().unwrap().message_response {
            Some(pb::server_reflection_response::MessageResponse::ListServicesResponse(l)) => l
                .service
                .into_iter()
                .map(|s| s.name)
                .collect::<Vec<String>>(),
            other => panic!("unexpected reflection answer {other:?}"),
        }
    }};
}

async fn reflected_services(addr: &str) -> (Vec<String>, Vec<String>) {
    let channel = tonic::transport::Channel::from_shared(addr.to_owned())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let v1_names = list_services!(v1, channel.clone());
    let alpha_names = list_services!(v1alpha, channel);
    (v1_names, alpha_names)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_the_service_for_grpcurl() {
    let dir = tempfile::tempdir().unwrap();
    let server = Tlogd::start(dir.path(), &[]);
    let (v1_names, alpha_names) = reflected_services(&server.addr).await;
    for names in [&v1_names, &alpha_names] {
        for want in ["tlog.v1.Log", "grpc.health.v1.Health"] {
            assert!(names.iter().any(|n| n == want), "{want} missing: {names:?}");
        }
    }
    // Where grpcurl is installed (or named by TLOG_GRPCURL), `grpcurl -plaintext ADDR list` itself must show it.
    let grpcurl = std::env::var("TLOG_GRPCURL").unwrap_or_else(|_| "grpcurl".into());
    let hostport = server.addr.trim_start_matches("http://");
    match std::process::Command::new(&grpcurl)
        .args(["-plaintext", hostport, "list"])
        .output()
    {
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "grpcurl list failed: {out:?}");
            assert!(text.lines().any(|l| l == "tlog.v1.Log"), "{text}");
        }
        Err(e) => eprintln!("{grpcurl} not run ({e}); reflection checked with a Rust client only"),
    }
}

/// SubmitBatch and SubmitStream answers for `entries`, asking for the shared checkpoint or not, on one in-process
/// log; with its verifier key.
async fn batch_answers(
    shared: bool,
    multiproof: bool,
) -> (
    SubmitBatchResponse,
    Vec<SubmitBatchResponse>,
    VerifierKey,
    Running,
) {
    let (log, dir) = Running::start_temporary("example.com/shared", |_| ()).await;
    let vkey = std::fs::read_to_string(dir.path().join("log.vkey")).unwrap();
    let key = VerifierKey::parse(vkey.trim()).unwrap();
    let mut rpc = log.rpc().await;
    let request = |at: u64, tag| SubmitBatchRequest {
        entries: (at..at + 10).map(event).collect(),
        client_tag: tag,
        shared_checkpoint: shared,
        multiproof,
    };
    let batch = rpc.submit_batch(request(0, 0)).await.unwrap().into_inner();
    let mut stream = rpc
        .submit_stream(tokio_stream::iter([request(10, 1), request(20, 2)]))
        .await
        .unwrap()
        .into_inner();
    let mut streamed = Vec::new();
    while let Some(answer) = stream.message().await.unwrap() {
        streamed.push(answer);
    }
    drop(rpc);
    (batch, streamed, key, log)
}

/// Every receipt of `answer` (entries `at..at + 10`) verifies offline once `batch_receipts` has given it its
/// checkpoint.
fn assert_answer_verifies(key: &VerifierKey, answer: SubmitBatchResponse, at: u64) {
    let receipts = tlog_client::batch_receipts(answer).unwrap();
    assert_eq!(receipts.len(), 10);
    for (i, wire) in (at..).zip(receipts) {
        let receipt = tlog_client::Receipt::try_from(wire).unwrap();
        verify_receipt(key, &receipt, Some(&event(i))).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_answers_carry_the_checkpoint_once_when_asked() {
    let (batch, streamed, key, log) = batch_answers(true, false).await;
    assert_eq!(streamed.len(), 2);
    for (answer, at) in [
        (batch, 0),
        (streamed[0].clone(), 10),
        (streamed[1].clone(), 20),
    ] {
        let checkpoint = answer.checkpoint.as_ref().expect("the answer's checkpoint");
        assert!(checkpoint.size >= at + 10);
        assert!(answer.receipts.iter().all(|r| r.checkpoint.is_none()));
        assert_eq!(answer.multiproof, None);
        assert_answer_verifies(&key, answer, at);
    }
    assert_eq!(streamed[1].client_tag, 2, "the tag is still echoed");
    log.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_answers_for_older_clients_carry_the_checkpoint_in_every_receipt() {
    let (batch, streamed, key, log) = batch_answers(false, false).await;
    for (answer, at) in [
        (batch, 0),
        (streamed[0].clone(), 10),
        (streamed[1].clone(), 20),
    ] {
        assert_eq!(answer.checkpoint, None);
        assert_eq!(answer.multiproof, None);
        assert!(answer.receipts.iter().all(|r| r.checkpoint.is_some()));
        assert!(
            answer
                .receipts
                .iter()
                .all(|r| !r.inclusion_proof.is_empty())
        );
        assert_answer_verifies(&key, answer, at);
    }
    log.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_answers_carry_one_multiproof_when_asked() {
    let (batch, streamed, key, log) = batch_answers(false, true).await;
    for (answer, at) in [
        (batch, 0),
        (streamed[0].clone(), 10),
        (streamed[1].clone(), 20),
    ] {
        let checkpoint = answer.checkpoint.clone().expect("the answer's checkpoint");
        let multi = answer.multiproof.clone().expect("the answer's multiproof");
        assert_eq!(multi.tree_size, checkpoint.size);
        assert!(answer.receipts.iter().all(|r| r.checkpoint.is_none()));
        assert!(answer.receipts.iter().all(|r| r.inclusion_proof.is_empty()));
        // The multiproof alone proves the whole answer against the checkpoint's root.
        let leaves: Vec<(LeafIndex, Hash)> = answer
            .receipts
            .iter()
            .map(|r| {
                (
                    LeafIndex(r.index),
                    Hash(r.leaf_hash.clone().try_into().unwrap()),
                )
            })
            .collect();
        let hashes: Vec<Hash> = multi
            .hashes
            .iter()
            .map(|h| Hash(h.clone().try_into().unwrap()))
            .collect();
        let root = Hash(checkpoint.root_hash.clone().try_into().unwrap());
        tlog_core::verify_multi_inclusion(TreeSize(multi.tree_size), &leaves, &hashes, &root)
            .unwrap();
        assert_answer_verifies(&key, answer, at);
    }
    log.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multiproof_answer_proves_entries_the_log_already_held() {
    let (log, dir) = Running::start_temporary("example.com/multi-dup", |_| ()).await;
    let vkey = std::fs::read_to_string(dir.path().join("log.vkey")).unwrap();
    let key = VerifierKey::parse(vkey.trim()).unwrap();
    let mut rpc = log.rpc().await;
    let request = |entries: Vec<Vec<u8>>| SubmitBatchRequest {
        entries,
        client_tag: 0,
        shared_checkpoint: false,
        multiproof: true,
    };
    rpc.submit_batch(request((0..10).map(event).collect()))
        .await
        .unwrap();
    // Entries 3 and 7 again, between new ones, and one new entry twice: the multiproof needs older nodes.
    let entries = vec![event(3), event(10), event(7), event(11), event(11)];
    let answer = rpc
        .submit_batch(request(entries.clone()))
        .await
        .unwrap()
        .into_inner();
    let indices: Vec<u64> = answer.receipts.iter().map(|r| r.index).collect();
    assert_eq!(indices, [3, 10, 7, 11, 11]);
    let receipts = tlog_client::batch_receipts(answer).unwrap();
    for (wire, entry) in receipts.into_iter().zip(&entries) {
        let receipt = tlog_client::Receipt::try_from(wire).unwrap();
        verify_receipt(&key, &receipt, Some(entry)).unwrap();
    }
    drop(rpc);
    log.stop().await.unwrap();
}
