//! End to end: `GetMultiProof` on a real `tlogd` (its limits and answers, verified by `LogClient`), and
//! `tlog evidence export` / `tlog evidence verify` through the CLI.

use std::path::Path;

use tlog_checkpoint::VerifierKey;
use tlog_client::LogClient;
use tlog_core::{Hash, LeafIndex, leaf_hash};
use tlog_proto::v1::{GetMultiProofRequest, SubmitBatchRequest};
use tlog_suite::cli::{self, fails, ok, ok_json};
use tlog_suite::{Rpc, Tlogd, code};

const ORIGIN: &str = "evidence.example.com/log";

/// Audit event `i` as `tlog submit --actor` writes it: actors alternate alice/bob/carol, one minute apart.
fn audit_event(i: u64) -> Vec<u8> {
    let actor = ["alice", "bob", "carol"][(i % 3) as usize];
    let time = format!("2024-05-01T12:{:02}:00Z", i % 60);
    format!(
        r#"{{"action":"read","actor":"{actor}","details":{{}},"resource":"patient/{i}","time":"{time}"}}"#
    )
    .into_bytes()
}

/// A tlogd holding `n` audit events, with extra flags.
async fn log_with_events(dir: &Path, n: u64, extra: &[&str]) -> Tlogd {
    let log = Tlogd::start(dir, &[&["--origin", ORIGIN][..], extra].concat());
    let mut rpc = Rpc::connect(log.addr.clone()).await.unwrap();
    rpc.submit_batch(SubmitBatchRequest {
        entries: (0..n).map(audit_event).collect(),
        client_tag: 0,
        shared_checkpoint: false,
        multiproof: false,
    })
    .await
    .unwrap();
    log
}

fn tlog(log: &Tlogd, args: &[&str]) -> std::process::Output {
    cli::tlog(
        &[&["--server", &log.addr, "--key", &log.vkey], args].concat(),
        None,
    )
}

#[tokio::test]
async fn the_client_verifies_a_multiproof_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with_events(&dir.path().join("data"), 50, &[]).await;
    let key = VerifierKey::parse(&log.vkey).unwrap();
    let client = LogClient::connect(&log.addr, key).await.unwrap();
    let leaves: Vec<(LeafIndex, Hash)> = [0, 7, 8, 31, 49]
        .iter()
        .map(|&i| (LeafIndex(i), leaf_hash(&audit_event(i))))
        .collect();
    let proven = client.multi_inclusion(&leaves, None).await.unwrap();
    assert_eq!(proven.checkpoint.checkpoint.size.0, 50);
    assert!(!proven.proof.is_empty());

    // A leaf hash the log does not hold at that index: the proof cannot verify.
    let mut wrong = leaves.clone();
    wrong[2].1 = leaf_hash(b"not in the log");
    assert!(matches!(
        client.multi_inclusion(&wrong, None).await,
        Err(tlog_client::ClientError::MultiProofInvalid(_))
    ));
}

#[tokio::test]
async fn the_index_limit_is_enforced_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tlogd.toml");
    std::fs::write(&config, "max_multiproof_indices = 4\n").unwrap();
    let log = log_with_events(
        &dir.path().join("data"),
        10,
        &["--config", config.to_str().unwrap()],
    )
    .await;
    let mut rpc = Rpc::connect(log.addr.clone()).await.unwrap();
    let ask = |indices: &[u64]| GetMultiProofRequest {
        indices: indices.to_vec(),
        tree_size: 0,
    };
    let status = rpc
        .get_multi_proof(ask(&[0, 1, 2, 3, 4]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().contains("max_multiproof_indices") && status.message().contains('4'),
        "{}",
        status.message()
    );
    assert!(rpc.get_multi_proof(ask(&[0, 1, 2, 3])).await.is_ok());
}

#[tokio::test]
async fn bad_index_sets_are_refused_with_their_codes() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with_events(&dir.path().join("data"), 10, &[]).await;
    let mut rpc = Rpc::connect(log.addr.clone()).await.unwrap();
    for (indices, expected) in [
        (&[][..], tonic::Code::InvalidArgument),
        (&[3, 2][..], tonic::Code::InvalidArgument),
        (&[2, 2][..], tonic::Code::InvalidArgument),
        (&[2, 10][..], tonic::Code::OutOfRange),
    ] {
        let request = GetMultiProofRequest {
            indices: indices.to_vec(),
            tree_size: 0,
        };
        assert_eq!(
            code(rpc.get_multi_proof(request).await),
            Some(expected),
            "{indices:?}"
        );
    }
}

#[tokio::test]
async fn a_bundle_exported_by_filter_and_index_verifies_offline() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with_events(&dir.path().join("data"), 60, &[]).await;
    let out = dir.path().join("case.json");
    let out_arg = out.to_str().unwrap();
    // alice's reads in the first half hour (0, 3, ..., 27), and event 31 by index.
    ok(tlog(
        &log,
        &[
            "evidence",
            "export",
            "--out",
            out_arg,
            "--actor",
            "alice",
            "--since",
            "2024-05-01T12:00:00Z",
            "--until",
            "2024-05-01T12:30:00Z",
            "--index",
            "31",
            "--consistency",
        ],
    ));
    // Offline: the server is gone.
    let vkey = log.vkey.clone();
    drop(log);
    let verified = ok_json(cli::tlog(
        &["--key", &vkey, "--json", "evidence", "verify", out_arg],
        None,
    ));
    let indices: Vec<u64> = verified["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["index"].as_u64().unwrap())
        .collect();
    let mut expected: Vec<u64> = (0..30).step_by(3).collect();
    expected.push(31);
    assert_eq!(indices, expected);
    assert_eq!(verified["checkpoint"]["size"], 60);
    assert_eq!(verified["newer_checkpoint"]["size"], 60);

    let mut bytes = std::fs::read(&out).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    let tampered = dir.path().join("tampered.json");
    std::fs::write(&tampered, &bytes).unwrap();
    fails(
        cli::tlog(
            &[
                "--key",
                &vkey,
                "evidence",
                "verify",
                tampered.to_str().unwrap(),
            ],
            None,
        ),
        3,
        "evidence bundle REJECTED",
    );
}
