//! The `tlog` binary's offline commands, exit codes and error output, without a server.
//! (The online commands are tested end to end against `tlogd` in `tests/cli.rs`, tile reads in `tests/cli_tiles.rs`.)

use std::path::Path;
use std::process::Output;

use serde_json::Value;
use tlog_checkpoint::{Checkpoint, SignerKey, sign_checkpoint};
use tlog_client::Receipt;
use tlog_core::{Hash, LeafIndex, TreeSize, leaf_hash, node_hash};
use tlog_suite::cli::{self, stderr, stdout};

const ORIGIN: &str = "example.com/offline";

fn tlog(args: &[&str]) -> Output {
    cli::tlog(args, None)
}

/// A receipt for entry 1 of the two-entry log `["e0", "e1"]`, signed by `key`.
fn receipt(key: &SignerKey) -> Receipt {
    let (l0, l1) = (leaf_hash(b"e0"), leaf_hash(b"e1"));
    let cp = Checkpoint::new(ORIGIN, TreeSize(2), node_hash(&l0, &l1)).unwrap();
    Receipt {
        index: LeafIndex(1),
        leaf_hash: l1,
        checkpoint: sign_checkpoint(key, &cp, 1_714_564_800).unwrap().note,
        inclusion_proof: vec![l0],
        duplicate: false,
    }
}

fn write_receipt(path: &Path, r: &Receipt) {
    std::fs::write(path, serde_json::to_string_pretty(r).unwrap()).unwrap();
}

#[test]
fn keygen_then_verify_receipts_offline() {
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("log.key");
    let out = tlog(&[
        "keygen",
        "--name",
        ORIGIN,
        "--out",
        key_path.to_str().unwrap(),
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let made: Value = serde_json::from_slice(&out.stdout).unwrap();
    let vkey = made["verifier_key"].as_str().unwrap();
    let signer = SignerKey::parse_private(&std::fs::read_to_string(&key_path).unwrap()).unwrap();
    assert_eq!(signer.verifier().to_string(), vkey);
    let vkey_arg = format!("@{}", dir.path().join("log.vkey").display());

    let good = dir.path().join("good.json");
    write_receipt(&good, &receipt(&signer));
    let good_arg = good.to_str().unwrap();
    let out = tlog(&[
        "verify-receipt",
        good_arg,
        "--key",
        &vkey_arg,
        "--entry",
        "e1",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = stdout(&out);
    assert!(
        stdout.starts_with(&format!(
            "receipt VALID: entry at index 1 (leaf hash {}) is in {ORIGIN} tree size 2",
            leaf_hash(b"e1")
        )) && stdout.contains("signed 2024-05-01T12:00:00Z"),
        "{stdout}"
    );

    // The wrong entry.
    let out = tlog(&["verify-receipt", good_arg, "--key", vkey, "--entry", "e0"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("receipt REJECTED: entry has leaf hash"),
        "{}",
        stderr(&out)
    );

    // A tampered proof, reported as JSON too.
    let mut tampered = receipt(&signer);
    tampered.inclusion_proof = vec![Hash([0; 32])];
    let bad = dir.path().join("bad.json");
    write_receipt(&bad, &tampered);
    let out = tlog(&[
        "verify-receipt",
        bad.to_str().unwrap(),
        "--key",
        vkey,
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(3));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(report["exit_code"], 3);
    assert!(
        report["error"].as_str().unwrap().starts_with(
            "receipt REJECTED: inclusion proof invalid: inclusion proof leads to root"
        ),
        "{report}"
    );

    // Another key with the same name.
    let other = SignerKey::from_seed(ORIGIN, [3; 32]).unwrap();
    let out = tlog(&[
        "verify-receipt",
        good_arg,
        "--key",
        &other.verifier().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("no signature from a known key (is --key the verifier key"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn usage_errors_exit_1_or_2_and_say_what_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    let receipt_path = dir.path().join("r.json");
    write_receipt(
        &receipt_path,
        &receipt(&SignerKey::from_seed(ORIGIN, [1; 32]).unwrap()),
    );
    let out = tlog(&["verify-receipt", receipt_path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("--key is required: pass the log's verifier key (data/log.vkey)"),
        "{}",
        stderr(&out)
    );

    let missing = dir.path().join("missing.json");
    let key = SignerKey::from_seed(ORIGIN, [1; 32])
        .unwrap()
        .verifier()
        .to_string();
    let out = tlog(&["verify-receipt", missing.to_str().unwrap(), "--key", &key]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("receipt file"));

    std::fs::write(&missing, "{}").unwrap();
    let out = tlog(&["verify-receipt", missing.to_str().unwrap(), "--key", &key]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not a receipt"));

    for args in [
        &["submit"][..],
        &["inclusion", "--index", "1", "--hash", "00"],
        &["frobnicate"],
    ] {
        assert_eq!(tlog(args).status.code(), Some(2), "{args:?}");
    }
    assert_eq!(tlog(&["--help"]).status.code(), Some(0));
}

#[test]
fn receipts_need_the_witness_quorum_when_one_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let signer = SignerKey::from_seed(ORIGIN, [1; 32]).unwrap();
    let vkey = signer.verifier().to_string();
    let w1 = SignerKey::from_seed("w1.example", [21; 32]).unwrap();
    let w1_key = tlog_checkpoint::CosignerKey::of(&w1).to_string();
    let path = dir.path().join("r.json");
    let mut r = receipt(&signer);
    write_receipt(&path, &r);
    let args = [
        "verify-receipt",
        path.to_str().unwrap(),
        "--key",
        &vkey,
        "--witness",
        &w1_key,
    ];
    let out = tlog(&args);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("receipt REJECTED: NOT WITNESSED")
            && stderr(&out).contains("missing: w1.example"),
        "{}",
        stderr(&out)
    );

    let body = tlog_checkpoint::verify_checkpoint(&signer.verifier(), r.checkpoint.as_bytes())
        .unwrap()
        .checkpoint
        .to_body();
    let line = tlog_checkpoint::cosign(&w1, &body, 1_714_564_900).unwrap();
    r.checkpoint = tlog_checkpoint::witness::add_cosignatures(&r.checkpoint, &line).unwrap();
    write_receipt(&path, &r);
    let out = tlog(&args);
    assert!(out.status.success(), "{}", stderr(&out));
}
