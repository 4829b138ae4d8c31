//! Hostile input over gRPC against the real `tlogd` (port 0, RocksDB in a temp dir): oversized messages, entries
//! at and one byte past the size limit, index and size overflow, huge ranges, malformed proof requests, writes
//! without a valid token, and a flood past the submission queue. Every case asserts its status code; afterwards
//! the server still answers, its resident memory stayed bounded, and nothing already in the log changed.

use std::time::Duration;

use tlog_checkpoint::VerifierKey;
use tlog_client::{BearerToken, LogClient, verify_receipt};
use tlog_core::{LeafIndex, TreeSize, leaf_hash};
use tlog_proto::v1::get_inclusion_proof_request::Leaf;
use tlog_proto::v1::{
    GetCheckpointRequest, GetConsistencyProofRequest, GetEntriesRequest, GetInclusionProofRequest,
    SignedCheckpoint, SubmitBatchRequest, SubmitRequest,
};
use tlog_suite::{Rpc, Tlogd, authed, code, event, first_page, submit_events};
use tonic::Code;

const TOKEN: &str = "hostile-test-token";
/// The server's gRPC message limit in the main test (set small so exceeding it is cheap).
const MAX_MESSAGE: usize = 1 << 20;
/// The default largest entry (C2SP tlog-tiles bundle limit).
const MAX_ENTRY: usize = 65_535;
/// The server's `max_entries_range` in the main test.
const MAX_RANGE: u64 = 10;

/// How much a hostile phase may raise tlogd's peak resident memory (VmHWM) above its resident memory before the
/// phase. Far below what the phases send at once (the main test: 50 concurrent 1.2 MB batches, ~60 MiB, beyond
/// the 1 MiB message limit), which a server that buffered a message before checking its length would hold.
const MAX_PEAK_GROWTH_KIB: u64 = 24 * 1024;

/// Resident and peak resident memory of a process in KiB (`VmRSS`, `VmHWM` of /proc/<pid>/status).
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{name} missing from /proc/{pid}/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Resident memory now, with the peak (VmHWM) reset to it (Linux `clear_refs` 5), so that a later peak is the
/// peak of what came after.
fn reset_peak(pid: u32) -> u64 {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("reset VmHWM via clear_refs");
    let (rss, peak) = memory_kib(pid);
    assert!(
        peak <= rss + 1024,
        "VmHWM {peak} KiB not reset to VmRSS {rss} KiB"
    );
    rss
}

/// Asserts that tlogd's peak memory since [`reset_peak`] returned `rss_before` stayed within
/// [`MAX_PEAK_GROWTH_KIB`].
#[track_caller]
fn assert_peak_bounded(pid: u32, rss_before: u64, what: &str) {
    let (rss_after, peak) = memory_kib(pid);
    eprintln!(
        "{what}: tlogd VmRSS before {rss_before} KiB, after {rss_after} KiB, peak (VmHWM) {peak} KiB"
    );
    assert!(
        peak < rss_before + MAX_PEAK_GROWTH_KIB,
        "{what}: tlogd's peak memory rose from {rss_before} KiB to {peak} KiB (limit +{MAX_PEAK_GROWTH_KIB} KiB)"
    );
}

async fn rpc(server: &Tlogd) -> Rpc {
    Rpc::connect(server.addr.clone())
        .await
        .unwrap()
        // The client must be able to *send* past the server's limit (its own default is unlimited) and to read
        // pages holding a maximum-size entry.
        .max_decoding_message_size(64 << 20)
}

async fn latest(rpc: &mut Rpc) -> SignedCheckpoint {
    rpc.get_checkpoint(GetCheckpointRequest::default())
        .await
        .unwrap()
        .into_inner()
}

async fn all_entries(rpc: &mut Rpc, size: u64) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    // In calls of at most MAX_RANGE entries, as the server's limit requires.
    let mut start = 0;
    while start < size {
        let end = size.min(start + MAX_RANGE);
        let mut pages = rpc
            .get_entries(GetEntriesRequest { start, end })
            .await
            .unwrap()
            .into_inner();
        while let Some(page) = pages.message().await.unwrap() {
            assert_eq!(page.start, out.len() as u64);
            out.extend(page.entries);
        }
        start = end;
    }
    assert_eq!(out.len() as u64, size);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tlogd.toml");
    std::fs::write(
        &config,
        format!(
            "write_tokens = [\"{TOKEN}\"]\nmax_message_bytes = {MAX_MESSAGE}\nmax_entries_range = {MAX_RANGE}\n\
             max_checkpoint_wait_secs = 1\n"
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let server = Tlogd::start(&data, &["--config", config.to_str().unwrap()]);
    let key = VerifierKey::parse(&server.vkey).unwrap();
    let mut rpc = rpc(&server).await;

    // The log before: 20 events and one entry of exactly the maximum size (accepted).
    submit_events(&mut rpc, TOKEN, 0..20).await;
    let max_entry = vec![0xa5; MAX_ENTRY];
    let receipt = rpc
        .submit(authed(
            TOKEN,
            SubmitRequest {
                entry: max_entry.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(receipt.index, 20);
    let before = latest(&mut rpc).await;
    assert_eq!(before.size, 21);
    let entries_before = all_entries(&mut rpc, before.size).await;
    assert_eq!(entries_before[20], max_entry);
    let rss_before = reset_peak(server.pid());

    // Messages beyond the gRPC limit are refused while decoding, before the handler runs (tonic answers
    // OUT_OF_RANGE), with or without a token.
    let oversized = SubmitBatchRequest {
        entries: vec![vec![1; 60_000]; 20],
        client_tag: 0,
        shared_checkpoint: false,
        multiproof: false,
    };
    assert_eq!(
        code(rpc.submit_batch(authed(TOKEN, oversized.clone())).await),
        Some(Code::OutOfRange)
    );
    assert!(
        code(rpc.submit_batch(oversized).await).is_some(),
        "an oversized unauthenticated write must fail"
    );
    let huge_entry = SubmitRequest {
        entry: vec![2; 2 * MAX_MESSAGE],
    };
    assert_eq!(
        code(rpc.submit(authed(TOKEN, huge_entry)).await),
        Some(Code::OutOfRange)
    );

    // Entries: empty, one byte over the limit, in a batch next to a valid one (nothing of it is taken), and one
    // entry too many in a batch.
    for entry in [vec![], vec![3; MAX_ENTRY + 1]] {
        assert_eq!(
            code(rpc.submit(authed(TOKEN, SubmitRequest { entry })).await),
            Some(Code::InvalidArgument)
        );
    }
    for entries in [
        vec![event(100), vec![]],
        vec![event(101), vec![4; MAX_ENTRY + 1]],
        vec![],
        (0..4097).map(|i| i.to_string().into_bytes()).collect(),
    ] {
        assert_eq!(
            code(
                rpc.submit_batch(authed(
                    TOKEN,
                    SubmitBatchRequest {
                        entries,
                        client_tag: 0,
                        shared_checkpoint: false,
                        multiproof: false,
                    }
                ))
                .await
            ),
            Some(Code::InvalidArgument)
        );
    }

    // Index and size overflow: u64::MAX, one past the end, size 0 meaning "latest".
    let size = before.size;
    let inclusion = |leaf, tree_size| GetInclusionProofRequest {
        leaf: Some(leaf),
        tree_size,
    };
    for (leaf, tree_size, expected) in [
        (Leaf::Index(u64::MAX), 0, Code::OutOfRange),
        (Leaf::Index(u64::MAX), u64::MAX, Code::OutOfRange),
        (Leaf::Index(size), 0, Code::OutOfRange),
        (Leaf::Index(size), size, Code::OutOfRange),
        (Leaf::Index(0), u64::MAX, Code::OutOfRange),
        (Leaf::Index(0), size + 1, Code::OutOfRange),
        (Leaf::Index(5), 3, Code::NotFound), // size 3 was never published
        (Leaf::LeafHash(vec![]), 0, Code::InvalidArgument),
        (Leaf::LeafHash(vec![1; 31]), 0, Code::InvalidArgument),
        (Leaf::LeafHash(vec![1; 33]), 0, Code::InvalidArgument),
        (Leaf::LeafHash(vec![1; 4096]), 0, Code::InvalidArgument),
        (
            Leaf::LeafHash(leaf_hash(b"never submitted").0.to_vec()),
            0,
            Code::NotFound,
        ),
        (
            // In the log, but not in the (published) tree of size 20.
            Leaf::LeafHash(leaf_hash(&max_entry).0.to_vec()),
            20,
            Code::NotFound,
        ),
    ] {
        let what = format!("{leaf:?} in {tree_size}");
        assert_eq!(
            code(rpc.get_inclusion_proof(inclusion(leaf, tree_size)).await),
            Some(expected),
            "{what}"
        );
    }
    assert_eq!(
        code(
            rpc.get_inclusion_proof(GetInclusionProofRequest {
                leaf: None,
                tree_size: 0
            })
            .await
        ),
        Some(Code::InvalidArgument)
    );

    // Malformed consistency requests.
    for (old_size, new_size, expected) in [
        (0, 0, Code::InvalidArgument),
        (0, size, Code::InvalidArgument),
        (size, 20, Code::InvalidArgument),
        (u64::MAX, 0, Code::InvalidArgument),
        (u64::MAX, u64::MAX, Code::OutOfRange),
        (1, u64::MAX, Code::OutOfRange),
        (1, size + 1, Code::OutOfRange),
        (3, size, Code::NotFound), // never published
    ] {
        assert_eq!(
            code(
                rpc.get_consistency_proof(GetConsistencyProofRequest { old_size, new_size })
                    .await
            ),
            Some(expected),
            "{old_size} -> {new_size}"
        );
    }

    // Checkpoints of sizes that do not exist, and a wait for one that never comes (bounded by the server).
    for (min_size, exact, expected) in [
        (0, u64::MAX, Code::OutOfRange),
        (0, size + 1, Code::OutOfRange),
        (0, 7, Code::NotFound),
        (u64::MAX, 0, Code::DeadlineExceeded),
    ] {
        assert_eq!(
            code(
                rpc.get_checkpoint(GetCheckpointRequest {
                    min_size,
                    size: exact,
                    witnessed: false,
                })
                .await
            ),
            Some(expected),
            "min_size {min_size} size {exact}"
        );
    }

    // Huge and malformed entry ranges.
    for (start, end, expected) in [
        (0, u64::MAX, Code::OutOfRange),
        (u64::MAX, u64::MAX, Code::OutOfRange),
        (u64::MAX, 0, Code::InvalidArgument),
        (size, size - 1, Code::InvalidArgument),
        (0, size + 1, Code::OutOfRange),
        (0, MAX_RANGE + 1, Code::InvalidArgument),
        (0, size, Code::InvalidArgument),
    ] {
        assert_eq!(
            code(rpc.get_entries(GetEntriesRequest { start, end }).await),
            Some(expected),
            "[{start}, {end})"
        );
    }
    let empty = first_page(&mut rpc, size, size).await;
    assert!(empty.is_none());

    // Many concurrent hostile requests at once (connections kept open), then the same checks.
    let mut tasks = Vec::new();
    for i in 0..200u64 {
        let mut rpc = rpc.clone();
        tasks.push(tokio::spawn(async move {
            match i % 4 {
                0 => code(
                    rpc.submit(authed(
                        TOKEN,
                        SubmitRequest {
                            entry: vec![5; MAX_ENTRY + 1],
                        },
                    ))
                    .await,
                ),
                1 => code(
                    rpc.get_entries(GetEntriesRequest {
                        start: 0,
                        end: u64::MAX,
                    })
                    .await,
                ),
                2 => code(rpc.submit(SubmitRequest { entry: event(i) }).await),
                _ => code(
                    rpc.submit_batch(authed(
                        TOKEN,
                        SubmitBatchRequest {
                            entries: vec![vec![6; 60_000]; 20],
                            client_tag: i,
                            shared_checkpoint: false,
                            multiproof: false,
                        },
                    ))
                    .await,
                ),
            }
        }));
    }
    for (i, t) in tasks.into_iter().enumerate() {
        let expected = [
            Code::InvalidArgument,
            Code::OutOfRange,
            Code::Unauthenticated,
            Code::OutOfRange,
        ][i % 4];
        assert_eq!(t.await.unwrap(), Some(expected), "concurrent request {i}");
    }

    // Nothing changed: the same signed checkpoint (byte for byte) and the same entries.
    let after = latest(&mut rpc).await;
    assert_eq!(after, before, "the hostile requests changed the checkpoint");
    assert_eq!(all_entries(&mut rpc, after.size).await, entries_before);

    // Memory stayed bounded: messages over the limit were refused from their length prefix, not buffered.
    assert_peak_bounded(server.pid(), rss_before, "hostile requests");

    // The server still works: a normal write, consistent with the tree before.
    let token = BearerToken::new(TOKEN).unwrap();
    let client = LogClient::connect(&server.addr, key.clone())
        .await
        .unwrap()
        .with_token(token);
    let r = client.submit(&event(999)).await.unwrap();
    assert_eq!(r.index(), LeafIndex(21));
    verify_receipt(&key, r.receipt(), Some(&event(999))).unwrap();
    let before_cp = client.checkpoint_at(TreeSize(21)).await.unwrap();
    // The checkpoint of size 21 is still the one handed out before the hostile requests.
    assert_eq!(before_cp.note.as_bytes(), before.note.as_slice());
    client.consistency(&before_cp, None).await.unwrap();
    let mut rpc = self::rpc(&server).await;
    assert_eq!(
        all_entries(&mut rpc, 21).await,
        entries_before,
        "entries changed"
    );
    server.stop();
}

/// The three write methods of `tlog.v1.Log`.
#[derive(Clone, Copy, Debug)]
enum Write {
    Submit,
    SubmitBatch,
    SubmitStream,
}

impl Write {
    const ALL: [Write; 3] = [Write::Submit, Write::SubmitBatch, Write::SubmitStream];

    /// Writes `entry` with the raw `authorization` value `auth` (none if `None`); returns the index its receipt
    /// names.
    async fn send(
        self,
        rpc: &mut Rpc,
        entry: Vec<u8>,
        auth: Option<&[u8]>,
    ) -> Result<u64, tonic::Status> {
        fn request<T>(message: T, auth: Option<&[u8]>) -> tonic::Request<T> {
            let mut r = tonic::Request::new(message);
            if let Some(value) = auth {
                // From bytes, so values that are not visible ASCII (which `&str` parsing refuses) can be sent.
                let value = tonic::metadata::AsciiMetadataValue::try_from(value)
                    .expect("a value HTTP/2 can carry");
                r.metadata_mut().insert("authorization", value);
            }
            r
        }
        let batch = SubmitBatchRequest {
            entries: vec![entry.clone()],
            client_tag: 7,
            shared_checkpoint: false,
            multiproof: false,
        };
        let receipt = match self {
            Write::Submit => rpc
                .submit(request(SubmitRequest { entry }, auth))
                .await?
                .into_inner(),
            Write::SubmitBatch => {
                let mut r = rpc.submit_batch(request(batch, auth)).await?.into_inner();
                assert_eq!(r.client_tag, 7);
                r.receipts.pop().expect("one receipt per entry")
            }
            Write::SubmitStream => {
                // tonic re-exports tokio-stream for generated code; no extra dependency needed for one stream.
                let stream = tonic::codegen::tokio_stream::iter(vec![batch]);
                let mut answers = rpc.submit_stream(request(stream, auth)).await?.into_inner();
                let mut r = answers.message().await?.expect("one answer per message");
                assert_eq!(r.client_tag, 7);
                r.receipts.pop().expect("one receipt per entry")
            }
        };
        Ok(receipt.index)
    }
}

/// `authorization` values that are not `Bearer <token>`: UNAUTHENTICATED, like no value at all.
const MALFORMED_AUTH: [&[u8]; 10] = [
    b"",
    b"Basic aG9zdGlsZQ==",
    b"Bearer",
    b"Bearer ",
    b"hostile-test-token",
    b"bearer hostile-test-token",
    b"Bearer\thostile-test-token",
    b"Bearer:hostile-test-token",
    // Not ASCII: an obs-text byte (not UTF-8), and UTF-8 (an e with an acute accent).
    b"Bearer \xffhostile-test-token",
    b"Bearer hostile-t\xc3\xa9st-token",
];

/// Well-formed bearer values whose token is not configured: PERMISSION_DENIED.
const WRONG_AUTH: [&[u8]; 4] = [
    b"Bearer wrong",
    b"Bearer hostile-test-token2",
    b"Bearer hostile-test-toke",
    b"Bearer HOSTILE-TEST-TOKEN",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_method_refuses_missing_malformed_and_wrong_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let server = Tlogd::start(dir.path(), &["--write-token", TOKEN]);
    let mut rpc = rpc(&server).await;
    let good = format!("Bearer {TOKEN}");
    for (i, method) in Write::ALL.into_iter().enumerate() {
        let index = method
            .send(&mut rpc, event(i as u64), Some(good.as_bytes()))
            .await
            .unwrap_or_else(|s| panic!("{method:?} with the token: {s:?}"));
        assert_eq!(index, i as u64);
    }
    let before = latest(&mut rpc).await;
    assert_eq!(before.size, 3);
    let entries_before = all_entries(&mut rpc, before.size).await;

    // Every write method, every bad authorization; each entry is distinct and valid, so only the token can be
    // why it is refused.
    let cases = std::iter::once((None, Code::Unauthenticated))
        .chain(MALFORMED_AUTH.map(|v| (Some(v), Code::Unauthenticated)))
        .chain(WRONG_AUTH.map(|v| (Some(v), Code::PermissionDenied)));
    let mut refused = Vec::new();
    for (case, (auth, expected)) in cases.enumerate() {
        for method in Write::ALL {
            let entry = format!("refused: {method:?} case {case}").into_bytes();
            let got = method.send(&mut rpc, entry.clone(), auth).await;
            let what = format!(
                "{method:?} with authorization {:?}",
                auth.map(String::from_utf8_lossy)
            );
            assert_eq!(code(got), Some(expected), "{what}");
            refused.push((entry, what));
        }
    }
    assert_eq!(
        refused.len(),
        3 * (1 + MALFORMED_AUTH.len() + WRONG_AUTH.len())
    );
    // The verifying client refuses a token that cannot travel in a header rather than sending it.
    assert!(BearerToken::new("new\nline").is_err());

    // Nothing was queued: the same signed checkpoint (byte for byte), and valid writes after the refusals take
    // the very next indices (a refused entry queued behind the sequencer would come first).
    assert_eq!(
        latest(&mut rpc).await,
        before,
        "a refused write changed the checkpoint"
    );
    for (i, method) in Write::ALL.into_iter().enumerate() {
        let index = method
            .send(&mut rpc, event(100 + i as u64), Some(good.as_bytes()))
            .await
            .unwrap();
        assert_eq!(
            index,
            before.size + i as u64,
            "{method:?} after the refusals"
        );
    }
    let after = all_entries(&mut rpc, before.size + 3).await;
    assert_eq!(after[..3], entries_before[..]);
    assert_eq!(after[3..], [event(100), event(101), event(102)]);
    // Reads stay public; no refused entry is in the log.
    for (entry, what) in refused {
        let proof = rpc
            .get_inclusion_proof(GetInclusionProofRequest {
                leaf: Some(Leaf::LeafHash(leaf_hash(&entry).0.to_vec())),
                tree_size: 0,
            })
            .await;
        assert_eq!(
            code(proof),
            Some(Code::NotFound),
            "{what}: entry in the log"
        );
    }
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_past_the_queue_gets_resource_exhausted() {
    let dir = tempfile::tempdir().unwrap();
    // One queued submission at most and one entry per synced batch: a burst overtakes the sequencer at once.
    let server = Tlogd::start(
        dir.path(),
        &[
            "--queue-capacity",
            "1",
            "--max-batch-entries",
            "1",
            "--max-batch-delay-ms",
            "20",
        ],
    );
    let key = VerifierKey::parse(&server.vkey).unwrap();
    let client = LogClient::connect(&server.addr, key.clone()).await.unwrap();
    client.submit(&event(0)).await.unwrap();
    let mut rpc = rpc(&server).await;
    let before = latest(&mut rpc).await;
    let rss_before = reset_peak(server.pid());

    let (mut accepted, mut exhausted) = (Vec::new(), Vec::new());
    let mut n = 1u64;
    for _round in 0..10 {
        let mut tasks = Vec::new();
        for _ in 0..100 {
            let mut rpc = rpc.clone();
            let entry = event(n);
            n += 1;
            tasks.push(tokio::spawn(async move {
                let r = rpc
                    .submit(SubmitRequest {
                        entry: entry.clone(),
                    })
                    .await;
                (entry, r)
            }));
        }
        for t in tasks {
            let (entry, r) = t.await.unwrap();
            match r {
                Ok(receipt) => accepted.push((entry, receipt.into_inner())),
                Err(s) => {
                    assert_eq!(s.code(), Code::ResourceExhausted, "{s:?}");
                    exhausted.push(entry);
                }
            }
        }
        if !exhausted.is_empty() {
            break;
        }
    }
    eprintln!(
        "flood: {} accepted, {} RESOURCE_EXHAUSTED",
        accepted.len(),
        exhausted.len()
    );
    assert!(
        !exhausted.is_empty(),
        "no RESOURCE_EXHAUSTED in 1000 concurrent submissions"
    );

    // The queue drains and the server answers again.
    let mut last = None;
    for _ in 0..50 {
        match client.submit(&event(u64::MAX)).await {
            Ok(r) => {
                last = Some(r);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let last = last.expect("the server accepts writes again after the flood");

    // Every accepted entry is where its receipt says; no refused one got in; the old tree is a prefix.
    let size = last.checkpoint().checkpoint.size.0;
    assert_eq!(size, 1 + accepted.len() as u64 + 1);
    for (entry, receipt) in &accepted {
        let proof = client
            .inclusion_by_index(LeafIndex(receipt.index), None)
            .await
            .unwrap();
        assert_eq!(proof.leaf_hash(), leaf_hash(entry));
    }
    for entry in exhausted.iter().take(20) {
        let err = client
            .inclusion_by_hash(&leaf_hash(entry), None)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, tlog_client::ClientError::Rpc(s) if s.code() == Code::NotFound),
            "{err:?}"
        );
    }
    let old = client.checkpoint_at(TreeSize(before.size)).await.unwrap();
    client.consistency(&old, None).await.unwrap();

    assert_peak_bounded(server.pid(), rss_before, "flood");
    server.stop();
}

#[test]
fn the_key_file_is_private_and_a_readable_one_is_refused() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    let server = Tlogd::start(dir.path(), &["--origin", "example.com/keys"]);
    let key_file = dir.path().join("log.key");
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "log.key created with mode {mode:o}");
    // The verifier key is published next to it, and is what tlogd printed.
    let vkey = std::fs::read_to_string(dir.path().join("log.vkey")).unwrap();
    assert_eq!(vkey.trim(), server.vkey);
    server.stop();

    // A key file others can read is refused, naming the fix; so is one only the group, or others, can access in
    // any way.
    for mode in [0o644, 0o640, 0o604, 0o620, 0o601] {
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(mode)).unwrap();
        let err = Tlogd::try_start(dir.path(), &[]).err().unwrap();
        assert!(err.contains("chmod 600"), "mode {mode:o}: {err}");
    }
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    Tlogd::start(dir.path(), &[]).stop();
}

#[test]
fn a_key_file_named_for_another_origin_is_refused() {
    let foreign = tlog_checkpoint::SignerKey::from_seed("example.com/other", [1; 32]).unwrap();
    let foreign = format!("{}\n", foreign.to_private_string());
    let refused = |dir: &std::path::Path, args: &[&str]| {
        let Err(err) = Tlogd::try_start(dir, args) else {
            panic!("tlogd started with a key named for another origin");
        };
        assert!(
            err.contains("\"example.com/other\"") && err.contains("\"example.com/keys\""),
            "{err}"
        );
    };

    // An existing log's key replaced by a private key (mode 0600 kept) named for another origin.
    let dir = tempfile::tempdir().unwrap();
    Tlogd::start(dir.path(), &["--origin", "example.com/keys"]).stop();
    let key_file = dir.path().join("log.key");
    let own_key = std::fs::read(&key_file).unwrap();
    std::fs::write(&key_file, &foreign).unwrap();
    refused(dir.path(), &[]);
    std::fs::write(&key_file, own_key).unwrap();
    Tlogd::start(dir.path(), &[]).stop();

    // A new log given another origin than its key's name.
    let new = tempfile::tempdir().unwrap();
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(new.path().join("log.key"))
            .unwrap();
        std::io::Write::write_all(&mut file, foreign.as_bytes()).unwrap();
    }
    refused(new.path(), &["--origin", "example.com/keys"]);
}
