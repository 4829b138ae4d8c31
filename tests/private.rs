//! Private payloads and erasure (issue 15, docs/private.md): payloads read back only through the checked client,
//! erasure leaves every earlier proof valid, makes the payload unreadable through every API, removes its bytes from
//! the data folder, is itself in the log, and survives SIGKILL as all or nothing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tlog_archive::testing::{SeaweedFs, all_objects};
use tlog_client::{BearerToken, LogClient};
use tlog_core::private::{check_opening, parse_erasure_entry, parse_private_entry};
use tlog_core::{LeafIndex, leaf_hash};
use tlog_proto::v1;
use tlog_server::server::ServerConfig;
use tlog_server::testing::Running;
use tlog_server::validate::Scope;
use tlog_storage::{LogStore, RocksBackend, RocksStore};
use tlog_suite::archive::{init_archive, wait_archived};
use tlog_suite::{Rpc, Tlogd, authed, bin};

const WRITE: &str = "w-token";
const READ: &str = "r-token";
const ADMIN: &str = "a-token";

fn tokens(config: &mut ServerConfig) {
    config.scoped_tokens = vec![
        (vec![Scope::Write], WRITE.into()),
        (vec![Scope::ReadPrivate], READ.into()),
        (vec![Scope::Admin], ADMIN.into()),
    ];
}

fn token_args() -> Vec<String> {
    vec![
        "--token".into(),
        format!("write={WRITE}"),
        "--token".into(),
        format!("read-private={READ}"),
        "--token".into(),
        format!("admin={ADMIN}"),
    ]
}

/// A payload that cannot occur by chance in any file.
fn payload(subject: &str, i: u64) -> Vec<u8> {
    format!("patient record of {subject}, event {i}: 7c1e3b9a-secret-{i}").into_bytes()
}

async fn client(url: &str, vkey: &tlog_checkpoint::VerifierKey, token: &str) -> LogClient {
    LogClient::connect(url, vkey.clone())
        .await
        .unwrap()
        .with_token(BearerToken::new(token).unwrap())
}

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(read) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in read.flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else if std::fs::read(&path)
                .is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
            {
                found.push(path);
            }
        }
    }
    found
}

/// The sealed payload row and the key record of `subject`, read from the database beside the running server.
fn stored_rows(data: &Path, subject: &str, index: u64) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    let store = RocksStore::open(RocksBackend::open_read_only(data.join("db")).unwrap()).unwrap();
    (
        store.payload(subject.as_bytes(), LeafIndex(index)).unwrap(),
        store.subject_key(subject.as_bytes()).unwrap(),
    )
}

fn vkey_of(data: &Path) -> tlog_checkpoint::VerifierKey {
    let text = std::fs::read_to_string(data.join("log.vkey")).unwrap();
    tlog_checkpoint::VerifierKey::parse(text.trim()).unwrap()
}

#[tokio::test]
async fn private_payloads_read_back_checked_and_only_with_read_scope() {
    let (log, dir) = Running::start_temporary("example.com/private", tokens).await;
    let vkey = vkey_of(dir.path());
    let writer = client(&log.url(), &vkey, WRITE).await;
    let items: Vec<(String, Vec<u8>)> = (0..6)
        .map(|i| (format!("subject-{}", i % 3), payload("x", i)))
        .collect();
    let refs: Vec<(&str, &[u8])> = items
        .iter()
        .map(|(s, p)| (s.as_str(), p.as_slice()))
        .collect();
    let receipts = writer.submit_private(&refs).await.unwrap();
    assert_eq!(receipts.len(), 6);

    let reader = client(&log.url(), &vkey, READ).await;
    for ((subject, payload), receipt) in items.iter().zip(&receipts) {
        let opened = reader.private_payload(receipt.index()).await.unwrap();
        assert_eq!(&opened.subject, subject);
        assert_eq!(&opened.payload, payload);
        assert_eq!(leaf_hash(&opened.entry), receipt.leaf_hash());
    }
    // The writer may not read payloads.
    let err = writer
        .private_payload(receipts[0].index())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, tlog_client::ClientError::Rpc(s) if s.code() == tonic::Code::PermissionDenied),
        "{err}"
    );
    drop((writer, reader));
    log.stop().await.unwrap();
}

#[tokio::test]
async fn a_public_entry_with_a_reserved_prefix_is_refused() {
    let (log, _dir) = Running::start_temporary("example.com/private", tokens).await;
    let mut rpc = Rpc::connect(log.url()).await.unwrap();
    for entry in [
        tlog_core::private::private_entry(b"s", &[0; 32], b"forged").unwrap(),
        tlog_core::private::erasure_entry(b"s", 1).unwrap(),
    ] {
        let status = rpc
            .submit(authed(WRITE, v1::SubmitRequest { entry }))
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(
            status.message().contains("reserved"),
            "{}",
            status.message()
        );
    }
    drop(rpc);
    log.stop().await.unwrap();
}

/// The erasure acceptance test, in one log: several subjects, one erased.
#[tokio::test]
async fn erasure_shreds_one_subject_and_keeps_every_proof() {
    let (log, dir) = Running::start_temporary("example.com/erasure", |c| {
        tokens(c);
        // Small memtables do not matter here: the purge flushes everything itself.
    })
    .await;
    let vkey = vkey_of(dir.path());
    let writer = client(&log.url(), &vkey, WRITE).await;
    let reader = client(&log.url(), &vkey, READ).await;
    let admin = client(&log.url(), &vkey, ADMIN).await;
    let mut rpc = Rpc::connect(log.url()).await.unwrap();

    let subjects = ["alice-0001", "bob-0002", "carol-0003"];
    let items: Vec<(&str, Vec<u8>)> = (0..9)
        .map(|i| {
            (
                subjects[i as usize % 3],
                payload(subjects[i as usize % 3], i),
            )
        })
        .collect();
    let refs: Vec<(&str, &[u8])> = items.iter().map(|(s, p)| (*s, p.as_slice())).collect();
    let receipts = writer.submit_private(&refs).await.unwrap();
    let before = receipts.last().unwrap().checkpoint().clone();

    // Bob's sealed rows and key record are in the data folder (the write-ahead log) before the erasure.
    let bob: Vec<(u64, Vec<u8>)> = receipts
        .iter()
        .zip(&items)
        .filter(|(_, (s, _))| *s == "bob-0002")
        .map(|(r, (_, p))| (r.index().0, p.clone()))
        .collect();
    let mut secrets = Vec::new();
    for (index, _) in &bob {
        let (sealed, key) = stored_rows(dir.path(), "bob-0002", *index);
        secrets.push(sealed.expect("bob's payload row is stored"));
        secrets.push(key.expect("bob's key record is stored"));
    }
    let salt = reader
        .private_payload(LeafIndex(bob[0].0))
        .await
        .unwrap()
        .salt;
    for secret in &secrets {
        assert!(
            !files_containing(dir.path(), secret).is_empty(),
            "the scan finds stored rows before the erasure"
        );
    }

    let (erasure, erased_at) = admin.erase_subject("bob-0002").await.unwrap();

    // The erasure entry is in the log, naming the subject and the time.
    let entries = tlog_suite::first_page(&mut rpc, erasure.index().0, erasure.index().0 + 1)
        .await
        .unwrap()
        .entries;
    assert_eq!(
        parse_erasure_entry(&entries[0]).unwrap(),
        Some((&b"bob-0002"[..], erased_at))
    );

    // Every receipt and checkpoint issued before still verifies: inclusion at the old size, consistency onwards.
    for (r, (subject, _)) in receipts.iter().zip(&items) {
        let again = reader
            .inclusion_by_index(r.index(), Some(before.checkpoint.size))
            .await
            .unwrap();
        assert_eq!(again.leaf_hash(), r.leaf_hash(), "{subject}");
    }
    reader.consistency(&before, None).await.unwrap();

    // Bob's payloads cannot be read any more, and the answer says when they were erased.
    for (index, _) in &bob {
        let status = rpc
            .get_private_payload(authed(READ, v1::GetPrivatePayloadRequest { index: *index }))
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::FailedPrecondition);
        assert!(
            status.message().contains("erased at"),
            "{}",
            status.message()
        );
        assert!(
            status
                .message()
                .contains(&tlog_server::private::rfc3339(erased_at)),
            "{}",
            status.message()
        );
    }
    // Nor can new payloads be filed under the subject, nor can it be erased twice.
    let again = rpc
        .submit_private(authed(
            WRITE,
            v1::SubmitPrivateRequest {
                payloads: vec![v1::PrivatePayload {
                    subject: "bob-0002".into(),
                    payload: b"later".to_vec(),
                }],
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(again.code(), tonic::Code::FailedPrecondition);
    let twice = rpc
        .erase_subject(authed(
            ADMIN,
            v1::EraseSubjectRequest {
                subject: "bob-0002".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(twice.code(), tonic::Code::FailedPrecondition);

    // The other subjects still read and verify.
    for (r, (subject, payload)) in receipts.iter().zip(&items) {
        if *subject != "bob-0002" {
            let opened = reader.private_payload(r.index()).await.unwrap();
            assert_eq!(&opened.payload, payload);
        }
    }

    // No stored byte of Bob's (sealed payloads, wrapped key) is left in any file of the data folder.
    for secret in &secrets {
        let left = files_containing(dir.path(), secret);
        assert!(left.is_empty(), "erased bytes still in {left:?}");
    }
    let (row, key) = stored_rows(dir.path(), "bob-0002", bob[0].0);
    assert_eq!(row, None);
    assert!(key.is_some(), "the tombstone record");
    // The salt never was in any public place, and is gone with the payload.
    assert!(files_containing(dir.path(), &salt).is_empty());
    drop((writer, reader, admin, rpc));
    log.stop().await.unwrap();
}

/// Private payloads and salts appear in no entry, tile, entry bundle or log line of a real tlogd (debug logging).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_payload_or_salt_in_entries_tiles_bundles_the_archive_or_logs() {
    let dir = tempfile::tempdir().unwrap();
    let log_file = dir.path().join("tlogd.log");
    let data = dir.path().join("data");
    let s3 = SeaweedFs::shared();
    let archive = init_archive(&s3, "private-scan");
    let mut args = token_args();
    args.extend(
        [
            "--max-batch-entries",
            "300",
            "--archive",
            &archive,
            "--archive-interval-ms",
            "100",
        ]
        .map(String::from),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut env = s3.env();
    env.push(("RUST_LOG", "debug".into()));
    let tlogd = Tlogd::launch_with_env(&bin("tlogd"), &data, &args, Some(&log_file), &env).unwrap();
    let mut rpc = Rpc::connect(tlogd.addr.clone()).await.unwrap();
    // More than one full tile (256 leaves), so full and partial tiles and bundles are served.
    let payloads: Vec<Vec<u8>> = (0..300).map(|i| payload("dave-0004", i)).collect();
    let receipts = rpc
        .submit_private(authed(
            WRITE,
            v1::SubmitPrivateRequest {
                payloads: payloads
                    .iter()
                    .map(|p| v1::PrivatePayload {
                        subject: "dave-0004".into(),
                        payload: p.clone(),
                    })
                    .collect(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .receipts;
    assert_eq!(receipts.len(), 300);
    let mut secrets: Vec<Vec<u8>> = Vec::new();
    for i in [0u64, 255, 299] {
        let opening = rpc
            .get_private_payload(authed(READ, v1::GetPrivatePayloadRequest { index: i }))
            .await
            .unwrap()
            .into_inner();
        check_opening(&opening.entry, &opening.salt, &opening.payload).unwrap();
        secrets.push(opening.salt);
        secrets.push(opening.payload);
    }

    let mut public: Vec<(String, Vec<u8>)> = Vec::new();
    let entries = tlog_suite::first_page(&mut rpc, 0, 300)
        .await
        .unwrap()
        .entries;
    for e in &entries {
        assert!(parse_private_entry(e).unwrap().is_some());
    }
    public.push(("entries".into(), entries.concat()));
    let http = tlogd.http.clone().unwrap();
    let client = tlog_client::http::http_client(Duration::from_secs(10)).unwrap();
    for path in [
        "/checkpoint",
        "/tile/0/000",
        "/tile/0/001.p/44",
        "/tile/entries/000",
        "/tile/entries/001.p/44",
    ] {
        let r = client.get(format!("{http}{path}")).send().await.unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        public.push((path.into(), r.bytes().await.unwrap().to_vec()));
    }
    wait_archived(&mut rpc, Duration::from_secs(60)).await;
    let archived = all_objects(s3.config(), "private-scan").await;
    assert!(
        archived.iter().any(|(_, bytes)| bytes
            .windows(entries[0].len())
            .any(|w| w == entries[0].as_slice())),
        "the archive scan reads the archived entry bundles (it finds the first commitment)"
    );
    public.extend(
        archived
            .into_iter()
            .map(|(key, bytes)| (format!("archive object {key}"), bytes)),
    );
    drop(rpc);
    tlogd.stop();
    public.push((
        "tlogd's log".into(),
        std::fs::read(&log_file).unwrap_or_default(),
    ));
    assert!(
        public.last().unwrap().1.len() > 100,
        "debug logging wrote something"
    );
    for secret in &secrets {
        for (name, bytes) in &public {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_slice()),
                "a payload or salt is in {name}"
            );
        }
    }
}

/// `tlogd erase` on a stopped log does what the RPC does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tlogd_erase_works_offline() {
    let dir = tempfile::tempdir().unwrap();
    let args = token_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let tlogd = Tlogd::start(dir.path(), &args);
    let mut rpc = Rpc::connect(tlogd.addr.clone()).await.unwrap();
    submit_one(&mut rpc, "erin-0005", b"erin's payload").await;
    drop(rpc);
    tlogd.stop();

    let out = std::process::Command::new(bin("tlogd"))
        .args(["erase", "--subject", "erin-0005", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("erased at"));
    let again = std::process::Command::new(bin("tlogd"))
        .args(["erase", "--subject", "erin-0005", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1), "already erased");

    let tlogd = Tlogd::start(dir.path(), &args);
    let mut rpc = Rpc::connect(tlogd.addr.clone()).await.unwrap();
    let status = rpc
        .get_private_payload(authed(READ, v1::GetPrivatePayloadRequest { index: 0 }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);
    let entries = tlog_suite::first_page(&mut rpc, 1, 2)
        .await
        .unwrap()
        .entries;
    assert!(parse_erasure_entry(&entries[0]).unwrap().is_some());
    drop(rpc);
    tlogd.stop();
    let (code, text) = tlog_suite::tlogd_verify(dir.path());
    assert_eq!(code, 0, "{text}");
}

async fn submit_one(rpc: &mut Rpc, subject: &str, payload: &[u8]) -> u64 {
    rpc.submit_private(authed(
        WRITE,
        v1::SubmitPrivateRequest {
            payloads: vec![v1::PrivatePayload {
                subject: subject.into(),
                payload: payload.to_vec(),
            }],
        },
    ))
    .await
    .unwrap()
    .into_inner()
    .receipts[0]
        .index
}

/// What a restarted log says about one subject: whether its payload reads, and whether its erasure entry is in
/// the log.
async fn erased_state(rpc: &mut Rpc, subject: &str, index: u64) -> (bool, bool) {
    let read = rpc
        .get_private_payload(authed(READ, v1::GetPrivatePayloadRequest { index }))
        .await;
    let readable = match read {
        Ok(_) => true,
        Err(s) if s.code() == tonic::Code::FailedPrecondition => false,
        Err(s) => panic!("unexpected answer for {subject}: {s}"),
    };
    let size = rpc
        .get_checkpoint(v1::GetCheckpointRequest::default())
        .await
        .unwrap()
        .into_inner()
        .size;
    let entries = tlog_suite::first_page(&mut rpc.clone(), index, size)
        .await
        .map(|p| p.entries)
        .unwrap_or_default();
    let logged = entries
        .iter()
        .any(|e| matches!(parse_erasure_entry(e), Ok(Some((s, _))) if s == subject.as_bytes()));
    (readable, logged)
}

/// SIGKILL at any moment of an erasure leaves the subject wholly erased (payload gone, erasure entry logged) or
/// not at all (payload readable, no erasure entry): never one without the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_erasure_leaves_before_or_after() {
    let dir = tempfile::tempdir().unwrap();
    let args = token_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (mut before, mut after) = (0, 0);
    for round in 0..8u64 {
        let tlogd = Tlogd::start(dir.path(), &args);
        let mut rpc = Rpc::connect(tlogd.addr.clone()).await.unwrap();
        let subject = format!("victim-{round}");
        let index = submit_one(&mut rpc, &subject, &payload(&subject, round)).await;
        // Padding so the erasure's purge has files to rewrite.
        submit_one(&mut rpc, "bystander-1", &payload("bystander", round)).await;
        let mut eraser = rpc.clone();
        let erase_subject = subject.clone();
        let call = tokio::spawn(async move {
            eraser
                .erase_subject(authed(
                    ADMIN,
                    v1::EraseSubjectRequest {
                        subject: erase_subject,
                    },
                ))
                .await
        });
        // From "before the request arrives" to "after the purge".
        tokio::time::sleep(Duration::from_micros(round * round * 700)).await;
        tlogd.kill();
        let _ = call.await;
        drop(rpc);

        let tlogd = Tlogd::start(dir.path(), &args);
        let mut rpc = Rpc::connect(tlogd.addr.clone()).await.unwrap();
        let (readable, logged) = erased_state(&mut rpc, &subject, index).await;
        assert_ne!(
            readable, logged,
            "round {round}: payload readable = {readable}, erasure logged = {logged}"
        );
        if readable {
            before += 1;
        } else {
            after += 1;
        }
        drop(rpc);
        tlogd.stop();
    }
    let (code, text) = tlog_suite::tlogd_verify(dir.path());
    assert_eq!(code, 0, "{text}");
    eprintln!("SIGKILL during erasure: {before} rounds before, {after} after");
    assert!(after > 0, "some erasure completed before the kill");
}

/// `tlog evidence export --openings`: a bundle holds the payload and salt of the private events the token may read,
/// none for an erased subject, and verifies offline with the payloads checked against their commitments; without
/// the read-private scope the export is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evidence_bundles_carry_checked_openings_for_readers_of_private_payloads() {
    let dir = tempfile::tempdir().unwrap();
    let args = token_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let tlogd = Tlogd::start(&dir.path().join("data"), &args);
    let mut rpc = Rpc::connect(tlogd.addr.clone()).await.unwrap();
    let kept = submit_one(&mut rpc, "fay-0006", &payload("fay-0006", 1)).await;
    let gone = submit_one(&mut rpc, "gus-0007", &payload("gus-0007", 2)).await;
    rpc.erase_subject(authed(
        ADMIN,
        v1::EraseSubjectRequest {
            subject: "gus-0007".into(),
        },
    ))
    .await
    .unwrap();
    drop(rpc);
    let out = dir.path().join("bundle.json");
    let out_arg = out.to_str().unwrap();
    let indices = format!("{kept},{gone}");
    let export = |token: &str| {
        tlog_suite::cli::tlog(
            &[
                "--server",
                &tlogd.addr,
                "--key",
                &tlogd.vkey,
                "--token",
                token,
                "--json",
                "evidence",
                "export",
                "--out",
                out_arg,
                "--index",
                &indices,
                "--openings",
            ],
            None,
        )
    };
    tlog_suite::cli::fails(export(WRITE), 1, "read-private");
    let exported = tlog_suite::cli::ok_json(export(READ));
    assert_eq!(exported["openings"], 1);
    assert_eq!(exported["erased_without_opening"], 1);
    let bundle =
        tlog_client::evidence::EvidenceBundle::from_bytes(&std::fs::read(&out).unwrap()).unwrap();
    let opening = bundle.events[0]
        .opening
        .as_ref()
        .expect("the readable payload is opened");
    assert_eq!(opening.payload, payload("fay-0006", 1));
    assert!(
        bundle.events[1].opening.is_none(),
        "the erased payload is not"
    );

    let vkey = tlogd.vkey.clone();
    tlogd.stop();
    let verified = tlog_suite::cli::ok_json(tlog_suite::cli::tlog(
        &["--key", &vkey, "--json", "evidence", "verify", out_arg],
        None,
    ));
    let kinds: Vec<&serde_json::Value> = verified["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["kind"])
        .collect();
    assert_eq!(kinds[0]["opened"], true);
    assert_eq!(
        kinds[0]["payload"].as_str().unwrap().as_bytes(),
        payload("fay-0006", 1)
    );
    assert_eq!(kinds[1]["opened"], false);
}
