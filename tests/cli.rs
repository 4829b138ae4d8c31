//! End to end: the `tlog` CLI against real `tlogd` servers.
//!
//! Covers key generation, every way of submitting (text, file, stdin, audit-event flags), offline receipt
//! verification and the rejection of tampered receipts, inclusion and consistency proofs, the monitor and the
//! auditor advancing their trusted state, and the detection of a fork: a second server holding a copy of the
//! first one's key signs a different history under the same origin; and a monitor cross-checking the gRPC API
//! against a tile mirror (`--tiles URL --cross-check`). The tile reads themselves are tested against a static
//! server in `tests/cli_tiles.rs`; the offline commands in `tests/cli_offline.rs`.

use std::path::Path;
use std::process::Output;

use serde_json::Value;
use tlog_core::leaf_hash;
use tlog_suite::Tlogd;
use tlog_suite::cli::{self, StaticServer, fails, ok, ok_json, stdout};

/// Runs `tlog` against `server` with its verifier key.
fn tlog_with(server: &str, vkey: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
    cli::tlog(
        &[&["--server", server, "--key", vkey], args].concat(),
        stdin,
    )
}

fn tlog(log: &Tlogd, args: &[&str]) -> Output {
    tlog_with(&log.addr, &log.vkey, args, None)
}

fn hex(entry: &[u8]) -> String {
    leaf_hash(entry).to_hex()
}

fn start(dir: &Path, origin: &str) -> Tlogd {
    Tlogd::start(dir, &["--origin", origin])
}

#[test]
fn keygen_makes_a_key_the_server_uses() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("my.key");
    let made = ok_json(tlog_with(
        "http://127.0.0.1:1",
        "unused",
        &[
            "keygen",
            "--name",
            "example.com/keygen",
            "--out",
            key.to_str().unwrap(),
            "--json",
        ],
        None,
    ));
    let vkey = made["verifier_key"].as_str().unwrap().to_owned();
    assert!(vkey.starts_with("example.com/keygen+"), "{vkey}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("my.vkey"))
            .unwrap()
            .trim(),
        vkey
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
    // Refuses to overwrite.
    fails(
        tlog_with(
            "http://127.0.0.1:1",
            "unused",
            &["keygen", "--name", "x", "--out", key.to_str().unwrap()],
            None,
        ),
        1,
        "already exists",
    );

    // tlogd signs with the generated key, so checkpoints verify against the printed verifier key.
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::copy(&key, data.join("log.key")).unwrap();
    let log = start(&data, "example.com/keygen");
    assert_eq!(log.vkey, vkey);
    ok(tlog(&log, &["submit", "first"]));
    let cp = ok_json(tlog(&log, &["checkpoint", "--json"]));
    assert_eq!(cp["origin"], "example.com/keygen");
    assert_eq!(cp["size"], 1);
}

/// The canonical JSON of the audit event [`Submitted::new`] builds from flags.
const AUDIT_EVENT: &str = r#"{"action":"user.delete","actor":"alice","details":{"reason":"offboarding","ticket":"OPS-7"},"resource":"users/42","time":"2024-05-01T12:00:00Z"}"#;

/// A log of four entries submitted with `tlog submit` as text ("hello", receipt r0.json), a file (entry.bin,
/// receipt r1.json), standard input and an audit event from flags (receipt r3.json), each checked on the way.
struct Submitted {
    dir: tempfile::TempDir,
    log: Tlogd,
}

impl Submitted {
    fn new() -> Submitted {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let log = start(&data, "example.com/receipts");
        let submitted = Submitted { dir, log };
        let log = &submitted.log;
        let file = |name: &str| submitted.file(name);
        let path = |name: &str| submitted.path(name);

        // Text.
        let r0 = ok_json(tlog(
            log,
            &[
                "submit",
                "hello",
                "--receipt-out",
                &path("r0.json"),
                "--json",
            ],
        ));
        assert_eq!(r0["index"], 0);
        assert_eq!(r0["leaf_hash"], hex(b"hello"));
        assert_eq!(r0["duplicate"], false);
        let saved: Value =
            serde_json::from_slice(&std::fs::read(file("r0.json")).unwrap()).unwrap();
        assert_eq!(saved, r0);

        // File.
        std::fs::write(file("entry.bin"), b"\x00binary\xffentry").unwrap();
        let human = ok(tlog(
            log,
            &[
                "submit",
                "--file",
                &path("entry.bin"),
                "--receipt-out",
                &path("r1.json"),
            ],
        ));
        assert!(human.contains("appended at index 1"), "{human}");
        assert!(human.contains(&hex(b"\x00binary\xffentry")), "{human}");

        // Standard input.
        let r2 = ok_json(tlog_with(
            &log.addr,
            &log.vkey,
            &["submit", "--stdin", "--json"],
            Some(b"from stdin\n"),
        ));
        assert_eq!(r2["index"], 2);
        assert_eq!(r2["leaf_hash"], hex(b"from stdin\n"));

        // An audit event from flags, as canonical JSON.
        let r3 = ok_json(tlog(
            log,
            &[
                "submit",
                "--actor",
                "alice",
                "--action",
                "user.delete",
                "--resource",
                "users/42",
                "--detail",
                "reason=offboarding",
                "--detail",
                "ticket=OPS-7",
                "--time",
                "2024-05-01T14:00:00+02:00",
                "--receipt-out",
                &path("r3.json"),
                "--json",
            ],
        ));
        let event = AUDIT_EVENT;
        assert_eq!(r3["event"], event);
        assert_eq!(r3["leaf_hash"], hex(event.as_bytes()));
        submitted
    }

    fn file(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    fn path(&self, name: &str) -> String {
        self.file(name).to_str().unwrap().to_owned()
    }

    /// Runs `tlog` with this log's key and an unreachable, unused server address.
    fn offline(&self, args: &[&str]) -> Output {
        tlog_with("http://127.0.0.1:1", &self.log.vkey, args, None)
    }
}

#[test]
fn submissions_give_receipts_and_a_duplicate_gets_its_first_index() {
    let submitted = Submitted::new();
    let log = &submitted.log;
    // The same entry again is a duplicate at its first index.
    let again = ok_json(tlog(log, &["submit", "hello", "--json"]));
    assert_eq!(again["index"], 0);
    assert_eq!(again["duplicate"], true);
}

#[test]
fn receipts_verify_offline() {
    let submitted = Submitted::new();
    let (path, event) = (|name: &str| submitted.path(name), AUDIT_EVENT);
    let offline = |args: &[&str]| submitted.offline(args);
    let v = ok_json(offline(&[
        "verify-receipt",
        &path("r0.json"),
        "--entry",
        "hello",
        "--json",
    ]));
    assert_eq!(v["ok"], true);
    assert_eq!(v["entry_checked"], true);
    assert_eq!(v["checkpoint"]["origin"], "example.com/receipts");
    let human = ok(offline(&[
        "verify-receipt",
        &path("r1.json"),
        "--entry-file",
        &path("entry.bin"),
    ]));
    assert!(
        human.starts_with("receipt VALID: entry at index 1"),
        "{human}"
    );
    ok(offline(&[
        "verify-receipt",
        &path("r3.json"),
        "--entry",
        event,
    ]));
    let human = ok(offline(&["verify-receipt", &path("r3.json")]));
    assert!(human.contains("some entry with this leaf hash"), "{human}");
}

#[test]
fn a_receipt_with_the_wrong_entry_or_another_logs_key_is_refused() {
    let submitted = Submitted::new();
    let (dir, path) = (&submitted.dir, |name: &str| submitted.path(name));
    let offline = |args: &[&str]| submitted.offline(args);
    // The wrong entry, or another log's key, is refused.
    fails(
        offline(&["verify-receipt", &path("r0.json"), "--entry", "hellO"]),
        3,
        "receipt REJECTED: entry has leaf hash",
    );
    let other = Tlogd::start(
        &dir.path().join("other"),
        &["--origin", "example.com/receipts"],
    );
    fails(
        tlog_with(
            "http://127.0.0.1:1",
            &other.vkey,
            &["verify-receipt", &path("r0.json")],
            None,
        ),
        3,
        "receipt REJECTED: checkpoint rejected",
    );
    drop(other);
}

#[test]
fn tampered_receipts_are_refused_with_the_reason() {
    let submitted = Submitted::new();
    let (file, path, event) = (
        |name: &str| submitted.file(name),
        |name: &str| submitted.path(name),
        AUDIT_EVENT,
    );
    let offline = |args: &[&str]| submitted.offline(args);
    // Tampered receipts are refused with the reason. r3 is in a tree of 4, so its proof has hashes.
    let r3_text = std::fs::read_to_string(file("r3.json")).unwrap();
    let receipt: Value = serde_json::from_str(&r3_text).unwrap();
    let tamper = |name: &str, edit: &dyn Fn(&mut Value)| {
        let mut r = receipt.clone();
        edit(&mut r);
        std::fs::write(file(name), serde_json::to_string_pretty(&r).unwrap()).unwrap();
        offline(&["verify-receipt", &path(name), "--entry", event])
    };
    let flip = |h: &str| {
        let first = if h.starts_with('0') { "1" } else { "0" };
        format!("{first}{}", &h[1..])
    };
    let proof0 = receipt["inclusion_proof"][0].as_str().unwrap().to_owned();
    fails(
        tamper("t1.json", &|r| {
            r["inclusion_proof"][0] = flip(&proof0).into()
        }),
        3,
        "receipt REJECTED: inclusion proof invalid: inclusion proof leads to root",
    );
    fails(
        tamper("t2.json", &|r| r["index"] = 2.into()),
        3,
        "receipt REJECTED: inclusion proof invalid",
    );
    let note = receipt["checkpoint"].as_str().unwrap().to_owned();
    fails(
        tamper("t3.json", &|r| {
            r["checkpoint"] = note.replacen("\n4\n", "\n5\n", 1).into()
        }),
        3,
        "receipt REJECTED: checkpoint rejected: invalid signature",
    );
    let proof_len = receipt["inclusion_proof"].as_array().unwrap().len();
    fails(
        tamper("t4.json", &|r| {
            r["inclusion_proof"].as_array_mut().unwrap().pop();
        }),
        3,
        &format!("proof has {} hashes, expected {proof_len}", proof_len - 1),
    );
    std::fs::write(
        file("t5.json"),
        r3_text.replacen("\"index\"", "\"indx\"", 1),
    )
    .unwrap();
    fails(
        offline(&["verify-receipt", &path("t5.json")]),
        1,
        "not a receipt",
    );
    let out = offline(&["verify-receipt", &path("t1.json"), "--json"]);
    assert_eq!(out.status.code(), Some(3));
    let reported: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(reported["ok"], false);
    assert_eq!(reported["exit_code"], 3);
}

#[test]
fn a_receipt_whose_checkpoint_the_log_signed_with_the_wrong_root_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = start(&data, "example.com/wrong-root");
    for e in ["a", "b"] {
        ok(tlog(&log, &["submit", e]));
    }
    let receipt_file = dir.path().join("c.json");
    let receipt_arg = receipt_file.to_str().unwrap();
    ok(tlog(&log, &["submit", "c", "--receipt-out", receipt_arg]));
    let offline = |args: &[&str]| tlog_with("http://127.0.0.1:1", &log.vkey, args, None);
    ok(offline(&["verify-receipt", receipt_arg, "--entry", "c"]));

    // The log's own key signs a checkpoint of the receipt's size whose root is another tree's (a fork where
    // entry 0 is "x"): the signature is valid, the proof leads to the true root.
    let key = std::fs::read_to_string(data.join("log.key")).unwrap();
    let key = tlog_checkpoint::SignerKey::parse_private(&key).unwrap();
    let forked_root = {
        let mut tree = tlog_core::CompactRange::new();
        for e in ["x", "b", "c"] {
            tree.append(leaf_hash(e.as_bytes()), |_, _| {}).unwrap();
        }
        tree.root()
    };
    let checkpoint =
        tlog_checkpoint::Checkpoint::new(&log.origin, tlog_core::TreeSize(3), forked_root).unwrap();
    let note = tlog_checkpoint::sign_checkpoint(&key, &checkpoint, 1_700_000_000)
        .unwrap()
        .note;
    let mut receipt: Value =
        serde_json::from_slice(&std::fs::read(&receipt_file).unwrap()).unwrap();
    receipt["checkpoint"] = note.into();
    let lying_file = dir.path().join("lying.json");
    std::fs::write(&lying_file, receipt.to_string()).unwrap();
    let lying_arg = lying_file.to_str().unwrap();
    for entry in [&["--entry", "c"][..], &[]] {
        let args = [&["verify-receipt", lying_arg][..], entry].concat();
        fails(
            offline(&args),
            3,
            &format!(
                "receipt REJECTED: inclusion proof invalid: inclusion proof leads to root {}, expected {}",
                receipt_root(&offline, receipt_arg),
                forked_root.to_hex()
            ),
        );
    }
    log.stop();
}

/// The checkpoint root a valid receipt file verifies against, as `tlog verify-receipt --json` reports it.
fn receipt_root(offline: &dyn Fn(&[&str]) -> Output, receipt: &str) -> String {
    let v = ok_json(offline(&["verify-receipt", receipt, "--json"]));
    v["checkpoint"]["root"].as_str().unwrap().to_owned()
}

#[test]
fn inclusion_and_consistency_proofs_verify() {
    let dir = tempfile::tempdir().unwrap();
    let log = start(&dir.path().join("data"), "example.com/proofs");
    for i in 0..6 {
        ok(tlog(&log, &["submit", &format!("entry {i}")]));
    }
    let by_index = ok_json(tlog(&log, &["inclusion", "--index", "4", "--json"]));
    assert_eq!(by_index["leaf_hash"], hex(b"entry 4"));
    assert!(by_index["checkpoint"].as_str().unwrap().contains("\n6\n"));
    let by_hash = ok_json(tlog(
        &log,
        &["inclusion", "--hash", &hex(b"entry 2"), "--json"],
    ));
    assert_eq!(by_hash["index"], 2);
    let human = ok(tlog(
        &log,
        &["inclusion", "--data", "entry 1", "--size", "3"],
    ));
    assert!(
        human.contains("leaf 1 (hash") && human.contains("tree size 3"),
        "{human}"
    );
    std::fs::write(dir.path().join("e5"), b"entry 5").unwrap();
    let by_file = ok_json(tlog(
        &log,
        &[
            "inclusion",
            "--file",
            dir.path().join("e5").to_str().unwrap(),
            "--json",
        ],
    ));
    assert_eq!(by_file["index"], 5);
    // An inclusion answer is itself a receipt.
    std::fs::write(dir.path().join("inc.json"), by_file.to_string()).unwrap();
    ok(tlog(
        &log,
        &[
            "verify-receipt",
            dir.path().join("inc.json").to_str().unwrap(),
            "--entry",
            "entry 5",
        ],
    ));

    fails(
        tlog(&log, &["inclusion", "--data", "never submitted"]),
        1,
        "the log answered",
    );
    fails(
        tlog(&log, &["inclusion", "--index", "6"]),
        1,
        "the log answered",
    );

    let c = ok_json(tlog(
        &log,
        &["consistency", "--old", "2", "--new", "5", "--json"],
    ));
    assert_eq!(c["old"]["size"], 2);
    assert_eq!(c["new"]["size"], 5);
    assert!(!c["proof"].as_array().unwrap().is_empty());
    let human = ok(tlog(&log, &["consistency", "--old", "3"]));
    assert!(
        human.contains("tree size 6") && human.contains("verified"),
        "{human}"
    );
    fails(
        tlog(&log, &["consistency", "--old", "9"]),
        1,
        "the log answered",
    );
    // clap rejects size 0 before anything runs.
    assert_eq!(
        tlog(&log, &["consistency", "--old", "0"]).status.code(),
        Some(2)
    );

    // Usage errors say what to fix.
    fails(
        cli::tlog(&["--server", &log.addr, "checkpoint"], None),
        1,
        "--key is required: pass the log's verifier key (data/log.vkey)",
    );
    fails(
        tlog_with("http://127.0.0.1:1", &log.vkey, &["checkpoint"], None),
        1,
        "cannot reach the log at http://127.0.0.1:1",
    );
}

#[test]
fn monitor_and_audit_advance_their_state() {
    let dir = tempfile::tempdir().unwrap();
    let log = start(&dir.path().join("data"), "example.com/monitor");
    let state = dir.path().join("monitor.json");
    let state_arg = state.to_str().unwrap();
    let monitor = |log: &Tlogd| {
        tlog(
            log,
            &[
                "monitor",
                "--state",
                state_arg,
                "--once",
                "--download-entries",
                "--json",
            ],
        )
    };

    for i in 0..3 {
        ok(tlog(&log, &["submit", &format!("m{i}")]));
    }
    let first = ok_json(monitor(&log));
    assert_eq!(first["first_use"], true);
    assert_eq!(first["checkpoint"]["size"], 3);
    assert_eq!(first["entries_verified"]["from"], 0);
    assert_eq!(first["entries_verified"]["to"], 3);
    assert!(dir.path().join("monitor.json.frontier").exists());

    let same = ok_json(monitor(&log));
    assert_eq!(same["previous_size"], 3);
    assert_eq!(same["checkpoint"]["size"], 3);

    for i in 3..8 {
        ok(tlog(&log, &["submit", &format!("m{i}")]));
    }
    let human = ok(tlog(
        &log,
        &[
            "monitor",
            "--state",
            state_arg,
            "--once",
            "--download-entries",
        ],
    ));
    assert!(
        human.contains("extends trusted tree size 3") && human.contains("entries [3, 8)"),
        "{human}"
    );
    let saved: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert!(
        saved["checkpoint"].as_str().unwrap().contains("\n8\n"),
        "{saved}"
    );

    // checkpoint --state shares the state format.
    let cp = ok_json(tlog(&log, &["checkpoint", "--state", state_arg, "--json"]));
    assert_eq!(cp["trusted"]["previous_size"], 8);

    // The auditor: proof of inclusion plus consistency with its own trusted checkpoint.
    let audit_state = dir.path().join("audit.json");
    let audit_arg = audit_state.to_str().unwrap();
    let a = ok_json(tlog(
        &log,
        &["audit", "--data", "m5", "--state", audit_arg, "--json"],
    ));
    assert_eq!(a["index"], 5);
    assert_eq!(a["trusted"]["size"], 8);
    ok(tlog(&log, &["submit", "m8"]));
    let human = ok(tlog(
        &log,
        &["audit", "--hash", &hex(b"m8"), "--state", audit_arg],
    ));
    assert!(
        human.starts_with("AUDIT OK: leaf 8")
            && human.contains("consistent with trusted tree size 8, now trusting size 9"),
        "{human}"
    );
    fails(
        tlog(&log, &["audit", "--data", "absent", "--state", audit_arg]),
        1,
        "the log answered",
    );
}

#[test]
fn a_fork_signed_with_the_same_key_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let origin = "example.com/forked";
    let honest_data = dir.path().join("honest");
    let honest = start(&honest_data, origin);
    for e in ["a", "b", "c"] {
        ok(tlog(&honest, &["submit", e]));
    }
    let state = dir.path().join("state.json");
    let state_arg = state.to_str().unwrap();
    let trusted = ok_json(tlog(
        &honest,
        &["monitor", "--state", state_arg, "--once", "--json"],
    ));
    let trusted_root = trusted["checkpoint"]["root"].as_str().unwrap().to_owned();

    // A second server with a copy of the key and the same origin signs another history.
    let forked_data = dir.path().join("forked");
    std::fs::create_dir(&forked_data).unwrap();
    std::fs::copy(honest_data.join("log.key"), forked_data.join("log.key")).unwrap();
    let forked = start(&forked_data, origin);
    assert_eq!(forked.vkey, honest.vkey, "same key, same verifier key");
    for e in ["x", "y", "z"] {
        ok(tlog(&forked, &["submit", e]));
    }
    let forked_root = ok_json(tlog(&forked, &["checkpoint", "--json"]))["root"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(forked_root, trusted_root);

    let before = std::fs::read(&state).unwrap();
    let monitor = |log: &Tlogd| tlog(log, &["monitor", "--state", state_arg, "--once"]);
    let err = fails(
        monitor(&forked),
        3,
        &format!(
            "FORK: trusted checkpoint size 3 root {trusted_root} but the log now signs root {forked_root} for size 3"
        ),
    );
    assert!(
        err.contains("--- trusted_note ---") && err.contains("--- log_note ---"),
        "{err}"
    );
    assert_eq!(std::fs::read(&state).unwrap(), before, "state unchanged");

    // Once the forked log grows, the bad consistency proof is still reported as the fork it is.
    ok(tlog(&forked, &["submit", "w"]));
    let out = tlog(
        &forked,
        &["monitor", "--state", state_arg, "--once", "--json"],
    );
    assert_eq!(out.status.code(), Some(3));
    let report: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert!(
        report["error"].as_str().unwrap().starts_with("FORK: "),
        "{report}"
    );
    assert!(
        report["evidence"]["log_note"]
            .as_str()
            .unwrap()
            .contains("\n3\n")
    );
    fails(
        tlog(&forked, &["audit", "--data", "x", "--state", state_arg]),
        3,
        "FORK",
    );

    // The honest log is still fine.
    ok(monitor(&honest));
}

/// The tiles of a log of fewer than 256 `entries` (one partial level-0 tile and bundle) and its checkpoint,
/// signed with the private key in `data/log.key`.
fn tiles_of(data: &Path, origin: &str, entries: &[&str]) -> Vec<(String, Vec<u8>)> {
    use tlog_checkpoint::{Checkpoint, SignerKey, sign_checkpoint};
    use tlog_core::tiles::encode_bundle;
    use tlog_core::{CompactRange, TreeSize};
    let key =
        SignerKey::parse_private(&std::fs::read_to_string(data.join("log.key")).unwrap()).unwrap();
    let leaves: Vec<_> = entries.iter().map(|e| leaf_hash(e.as_bytes())).collect();
    let mut tree = CompactRange::new();
    tree.extend(leaves.iter().copied(), |_, _| {}).unwrap();
    let n = entries.len();
    let cp = Checkpoint::new(origin, TreeSize(n as u64), tree.root()).unwrap();
    let note = sign_checkpoint(&key, &cp, 1_714_564_800).unwrap().note;
    vec![
        ("checkpoint".into(), note.into_bytes()),
        (
            format!("tile/0/000.p/{n}"),
            leaves.iter().flat_map(|h| h.0).collect(),
        ),
        (
            format!("tile/entries/000.p/{n}"),
            encode_bundle(entries).unwrap(),
        ),
    ]
}

#[test]
fn a_monitor_cross_checks_the_grpc_api_against_the_tiles() {
    let dir = tempfile::tempdir().unwrap();
    let origin = "example.com/mirrored";
    let data = dir.path().join("data");
    let log = start(&data, origin);
    let history = ["a", "b", "c", "d", "e"];
    for e in history {
        ok(tlog(&log, &["submit", e]));
    }
    let state = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let monitor = |url: &str, state: &str| {
        tlog(
            &log,
            &[
                "monitor",
                "--tiles",
                url,
                "--cross-check",
                "--state",
                state,
                "--once",
            ],
        )
    };

    // A mirror of the same history, at the same size and behind.
    for size in [5, 3] {
        let mirror = StaticServer::files(&tiles_of(&data, origin, &history[..size]));
        let out = ok(monitor(&mirror.url, &state(&format!("same{size}"))));
        assert!(
            out.contains("cross-checked: the gRPC API's example.com/mirrored tree size 5"),
            "{out}"
        );
    }

    // Tiles of another history under the same key: the two views disagree at size 5.
    let mirror = StaticServer::files(&tiles_of(&data, origin, &["a", "b", "X", "d", "e"]));
    let err = fails(
        monitor(&mirror.url, &state("forked")),
        3,
        "FORK: trusted checkpoint size 5",
    );
    assert!(
        err.contains("--- trusted_note ---") && err.contains("--- log_note ---"),
        "{err}"
    );
}

#[test]
fn a_witness_policy_refuses_the_logs_own_checkpoints_but_not_its_acks() {
    use tlog_checkpoint::{CosignerKey, SignerKey};
    let dir = tempfile::tempdir().unwrap();
    let log = start(&dir.path().join("data"), "example.com/witnessed");
    let witness = SignerKey::from_seed("w1.example", [9; 32]).unwrap();
    let w = CosignerKey::of(&witness).to_string();
    // Submissions are acknowledged by the log alone: the policy does not apply to their receipts.
    ok(tlog(&log, &["submit", "a", "--witness", &w]));
    ok(tlog(&log, &["submit", "b"]));
    // Nothing has cosigned this log's checkpoints.
    for args in [
        &["checkpoint", "--witness", &w][..],
        &["inclusion", "--index", "0", "--witness", &w],
        &["consistency", "--old", "1", "--witness", &w],
    ] {
        fails(
            tlog(&log, args),
            3,
            "NOT WITNESSED: the checkpoint has valid cosignatures from 0 of the --witness keys, 1 required \
             (--quorum); missing: w1.example",
        );
    }
    // A quorum of 0 asks for nothing.
    ok(tlog(
        &log,
        &["checkpoint", "--witness", &w, "--quorum", "0"],
    ));
}
