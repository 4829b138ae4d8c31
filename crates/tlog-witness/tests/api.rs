//! The witness over HTTP, in-process on a port-0 listener: every answer tlog-witness defines, the limits, restart
//! and concurrent submissions.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use support::{Answer, ORIGIN, TestLog, client, config, log_key, post, start};
use tlog_checkpoint::witness::{AddCheckpoint, SIZE_CONTENT_TYPE, add_cosignatures};
use tlog_checkpoint::{Checkpoint, SignerKey, sign_checkpoint, verify_witnessed};
use tlog_core::{Hash, TreeSize};
use tlog_witness::config::DEFAULT_MAX_BODY_BYTES;

const LEAVES: u64 = 3000;

fn log() -> TestLog {
    TestLog::new(log_key(), LEAVES, None)
}

/// A witness in a fresh folder that has cosigned the test log at size 700, with the log and an HTTP client.
async fn cosigned_at_700() -> (
    tempfile::TempDir,
    support::Running,
    TestLog,
    reqwest::Client,
) {
    let dir = tempfile::tempdir().unwrap();
    let witness = start(config(dir.path())).await;
    let (log, client) = (log(), client());
    assert_status(
        &post(&client, &witness.url, log.request(0, 700))
            .await
            .unwrap(),
        200,
    );
    (dir, witness, log, client)
}

fn assert_status(answer: &Answer, status: u16) {
    assert_eq!(answer.status, status, "{answer:?}");
}

#[tokio::test]
async fn a_first_checkpoint_is_cosigned_with_a_verifiable_line() {
    let dir = tempfile::tempdir().unwrap();
    let witness = start(config(dir.path())).await;
    let log = log();
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let answer = post(&client(), &witness.url, log.request(0, 1000))
        .await
        .unwrap();
    assert_status(&answer, 200);
    assert_eq!(
        answer.content_type.as_deref(),
        Some("text/plain; charset=utf-8")
    );
    assert!(answer.body.starts_with("\u{2014} witness.example/w1 "));
    let note = add_cosignatures(&log.note(1000), &answer.body).unwrap();
    let witnessed = verify_witnessed(
        &log_key().verifier(),
        std::slice::from_ref(&witness.key),
        1,
        note.as_bytes(),
    )
    .unwrap();
    assert_eq!(witnessed.cosigners.len(), 1);
    let time = witnessed.cosigners[0].1;
    assert!(time >= before && time <= before + 60, "timestamp {time}");
    witness.stop().await;
}

#[tokio::test]
async fn consistent_growth_is_cosigned_and_a_repeat_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let witness = start(config(dir.path())).await;
    let (log, client) = (log(), client());
    for (old, size) in [(0, 1), (1, 2), (2, 3), (3, 256), (256, 1000), (1000, 2999)] {
        assert_status(
            &post(&client, &witness.url, log.request(old, size))
                .await
                .unwrap(),
            200,
        );
    }
    // The same checkpoint again: cosigned again, nothing rolled back.
    assert_status(
        &post(&client, &witness.url, log.request(2999, 2999))
            .await
            .unwrap(),
        200,
    );
    let answer = post(&client, &witness.url, log.request(0, 5))
        .await
        .unwrap();
    assert_eq!(answer.body, "2999\n");
    witness.stop().await;
}

#[tokio::test]
async fn an_unknown_origin_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let witness = start(config(dir.path())).await;
    // A log the witness does not know, signing with its own key and origin.
    let other = "other.example/log";
    let checkpoint = Checkpoint::new(other, TreeSize(10), log().root(10)).unwrap();
    let key = SignerKey::from_seed(other, [2; 32]).unwrap();
    let note = sign_checkpoint(&key, &checkpoint, 1).unwrap().note;
    let body = AddCheckpoint {
        old_size: 0,
        proof: vec![],
        checkpoint: note.into_bytes(),
    }
    .encode();
    let answer = post(&client(), &witness.url, body).await.unwrap();
    assert_status(&answer, 404);
    assert!(answer.body.contains("other.example/log"), "{answer:?}");
    witness.stop().await;
}

#[tokio::test]
async fn only_unknown_signers_are_forbidden() {
    let dir = tempfile::tempdir().unwrap();
    let witness = start(config(dir.path())).await;
    // Same origin, another key: an unknown signer, ignored, so no trusted signature.
    let impostor = TestLog::new(SignerKey::from_seed(ORIGIN, [9; 32]).unwrap(), 10, None);
    let answer = post(&client(), &witness.url, impostor.request(0, 10))
        .await
        .unwrap();
    assert_status(&answer, 403);
    witness.stop().await;
}

#[tokio::test]
async fn a_bad_signature_of_the_log_key_is_forbidden() {
    let dir = tempfile::tempdir().unwrap();
    let witness = start(config(dir.path())).await;
    let log = log();
    // The note of size 10 with the signatures of the note of size 11.
    let note10 = log.note(10);
    let note11 = log.note(11);
    let forged = format!(
        "{}{}",
        &note10[..note10.find("\n\n").unwrap() + 2],
        &note11[note11.find("\n\n").unwrap() + 2..]
    );
    let body = AddCheckpoint {
        old_size: 0,
        proof: vec![],
        checkpoint: forged.into_bytes(),
    }
    .encode();
    assert_status(&post(&client(), &witness.url, body).await.unwrap(), 403);
    witness.stop().await;
}

#[tokio::test]
async fn an_old_size_beyond_the_checkpoint_is_a_bad_request() {
    let dir = tempfile::tempdir().unwrap();
    let witness = start(config(dir.path())).await;
    let body = AddCheckpoint {
        old_size: 11,
        proof: vec![],
        checkpoint: log().note(10).into_bytes(),
    }
    .encode();
    assert_status(&post(&client(), &witness.url, body).await.unwrap(), 400);
    witness.stop().await;
}

#[tokio::test]
async fn a_malformed_body_is_a_bad_request_saying_why() {
    let dir = tempfile::tempdir().unwrap();
    let witness = start(config(dir.path())).await;
    let client = client();
    let note = log().note(10);
    for (body, why) in [
        (format!("old 01\n\n{note}"), "old size"),
        (format!("old 0\n{note}"), "base64"),
        ("old 0\n\nnot a note\n".to_string(), "checkpoint note"),
        (
            format!("old 0\n\n{}", log_key().sign_note("a\nb\nc\n").unwrap()),
            "checkpoint",
        ),
    ] {
        let answer = post(&client, &witness.url, body.into_bytes())
            .await
            .unwrap();
        assert_status(&answer, 400);
        assert!(answer.body.contains(why), "{answer:?} should say {why}");
    }
    witness.stop().await;
}

#[tokio::test]
async fn a_wrong_old_size_conflicts_with_the_cosigned_size() {
    let (_dir, witness, log, client) = cosigned_at_700().await;
    for old in [0, 699, 701] {
        let answer = post(&client, &witness.url, log.request(old, 900))
            .await
            .unwrap();
        assert_eq!(
            answer,
            Answer {
                status: 409,
                content_type: Some(SIZE_CONTENT_TYPE.into()),
                body: "700\n".into()
            }
        );
    }
    witness.stop().await;
}

#[tokio::test]
async fn a_proof_that_does_not_verify_is_unprocessable() {
    let (_dir, witness, log, client) = cosigned_at_700().await;
    let mut proof = log.proof(700, 900);
    proof[1] = Hash([7; 32]);
    let body = AddCheckpoint {
        old_size: 700,
        proof,
        checkpoint: log.note(900).into_bytes(),
    }
    .encode();
    assert_status(&post(&client, &witness.url, body).await.unwrap(), 422);
    // A proof for other sizes, and a proof from zero, do not verify either.
    let body = AddCheckpoint {
        old_size: 700,
        proof: log.proof(701, 900),
        checkpoint: log.note(900).into_bytes(),
    }
    .encode();
    assert_status(&post(&client, &witness.url, body).await.unwrap(), 422);
    witness.stop().await;
}

#[tokio::test]
async fn a_fork_at_the_cosigned_size_conflicts() {
    let (_dir, witness, _log, client) = cosigned_at_700().await;
    let fork = TestLog::new(log_key(), LEAVES, Some(500));
    let answer = post(&client, &witness.url, fork.request(700, 700))
        .await
        .unwrap();
    assert_status(&answer, 409);
    assert_ne!(answer.content_type.as_deref(), Some(SIZE_CONTENT_TYPE));
    // The fork grown further fails its proof from the cosigned root.
    assert_status(
        &post(&client, &witness.url, fork.request(700, 900))
            .await
            .unwrap(),
        422,
    );
    witness.stop().await;
}

#[tokio::test]
async fn a_body_over_the_limit_is_too_large() {
    let dir = tempfile::tempdir().unwrap();
    let witness = start(config(dir.path())).await;
    let mut body = log().request(0, 10);
    body.resize(DEFAULT_MAX_BODY_BYTES + 1, b'\n');
    assert_status(&post(&client(), &witness.url, body).await.unwrap(), 413);
    witness.stop().await;
}

#[tokio::test]
async fn the_prefix_is_where_the_route_is() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.prefix = "/witness/v1".into();
    let witness = start(config).await;
    assert!(witness.url.ends_with("/witness/v1/add-checkpoint"));
    let client = client();
    assert_status(
        &post(&client, &witness.url, log().request(0, 10))
            .await
            .unwrap(),
        200,
    );
    let bare = witness.url.replace("/witness/v1", "");
    assert_status(
        &post(&client, &bare, log().request(10, 10)).await.unwrap(),
        404,
    );
    witness.stop().await;
}

#[tokio::test]
async fn a_restart_keeps_the_cosigned_size_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let log = log();
    let witness = start(config(dir.path())).await;
    let key = witness.key.clone();
    assert_status(
        &post(&client(), &witness.url, log.request(0, 1234))
            .await
            .unwrap(),
        200,
    );
    witness.stop().await;

    let witness = start(config(dir.path())).await;
    assert_eq!(witness.key, key);
    let answer = post(&client(), &witness.url, log.request(0, 2000))
        .await
        .unwrap();
    assert_eq!((answer.status, answer.body.as_str()), (409, "1234\n"));
    assert_status(
        &post(&client(), &witness.url, log.request(1234, 2000))
            .await
            .unwrap(),
        200,
    );
    witness.stop().await;
}

#[tokio::test]
async fn a_corrupt_state_file_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let witness = start(config(dir.path())).await;
    assert_status(
        &post(&client(), &witness.url, log().request(0, 10))
            .await
            .unwrap(),
        200,
    );
    witness.stop().await;
    let state = dir.path().join(tlog_witness::state::STATE_DIR);
    for entry in std::fs::read_dir(&state).unwrap() {
        std::fs::write(entry.unwrap().path(), "garbage").unwrap();
    }
    assert!(matches!(
        tlog_witness::Witness::open(config(dir.path())),
        Err(tlog_witness::Error::CorruptState { .. })
    ));
}

/// Twenty tasks race to advance the witness to their own sizes, each resending from the size a 409 names. The
/// stored size must end at the largest size cosigned (no rollback), and no size is cosigned with two roots
/// although half the tasks submit a fork.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_submissions_never_roll_back() {
    let dir = tempfile::tempdir().unwrap();
    let witness = start(config(dir.path())).await;
    let logs = Arc::new([log(), TestLog::new(log_key(), LEAVES, Some(1500))]);
    let client = client();
    let mut tasks = Vec::new();
    for task in 0..20u64 {
        let (logs, client, url) = (logs.clone(), client.clone(), witness.url.clone());
        tasks.push(tokio::spawn(async move {
            let log = &logs[(task % 2) as usize];
            let mut accepted = Vec::new();
            let mut old = 0;
            // Each task climbs through its own sizes, so the tasks overtake one another.
            for step in 0..10u64 {
                let target = 1 + task * 7 + step * 140;
                loop {
                    if old > target {
                        break;
                    }
                    let answer = post(&client, &url, log.request(old, target)).await.unwrap();
                    match answer.status {
                        200 => {
                            accepted.push((target, log.root(target)));
                            old = target;
                            break;
                        }
                        409 if answer.content_type.as_deref() == Some(SIZE_CONTENT_TYPE) => {
                            old = answer.body.trim_end().parse().unwrap();
                        }
                        // A fork refused (409 same size other root, or 422): move on.
                        409 | 422 => break,
                        status => panic!("unexpected {status}: {answer:?}"),
                    }
                }
            }
            accepted
        }));
    }
    let mut roots: BTreeMap<u64, Hash> = BTreeMap::new();
    for task in tasks {
        for (size, root) in task.await.unwrap() {
            let previous = roots.insert(size, root);
            assert!(
                previous.is_none_or(|p| p == root),
                "two roots cosigned for size {size}"
            );
        }
    }
    let max = *roots.keys().last().unwrap();
    let answer = post(&client, &witness.url, logs[0].request(0, 1))
        .await
        .unwrap();
    assert_eq!(
        answer.body,
        format!("{max}\n"),
        "the stored size rolled back"
    );
    witness.stop().await;
}

/// A client that sends its headers and then stalls the body is cut off by the request time limit (503), rather
/// than holding a connection forever.
#[tokio::test]
async fn a_stalled_request_times_out() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.request_timeout = std::time::Duration::from_millis(300);
    let witness = start(config).await;
    let addr = witness
        .url
        .strip_prefix("http://")
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stream
        .write_all(
            b"POST /add-checkpoint HTTP/1.1\r\nHost: w\r\nContent-Length: 100\r\n\r\nold 0\n",
        )
        .await
        .unwrap();
    let mut response = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        stream.read_to_end(&mut response),
    );
    // The witness answers and closes, or answers and keeps the connection: either way the status line is there.
    let _ = read.await;
    drop(stream);
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 503"), "{response:?}");
    witness.stop().await;
}

#[tokio::test]
async fn a_second_witness_on_one_data_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let witness = start(config(dir.path())).await;
    assert!(matches!(
        tlog_witness::Witness::open(config(dir.path())),
        Err(tlog_witness::Error::Locked(_))
    ));
    witness.stop().await;
    tlog_witness::Witness::open(config(dir.path())).unwrap();
}
