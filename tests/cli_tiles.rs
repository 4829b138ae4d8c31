//! `tlog --tiles URL` against a static file server: a directory of C2SP tlog-tiles files written from a naive
//! reference (level-8L rows hashed pairwise from the leaves), served by a tiny axum server on port 0 with entry
//! bundles gzip-encoded, standing in for another log's static tiles. Also the witness policy (`--witness`,
//! `--quorum`) on tile checkpoints.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;
use tlog_checkpoint::witness::add_cosignatures;
use tlog_checkpoint::{Checkpoint, CosignerKey, SignerKey, cosign, sign_checkpoint};
use tlog_core::testing::tiles::tree_tiles;
use tlog_core::tiles::encode_bundle;
use tlog_core::{CompactRange, TreeSize, leaf_hash};
use tlog_suite::cli::{self, StaticServer, fails, ok, write_file};

const ORIGIN: &str = "example.com/tiled";

fn log_key() -> SignerKey {
    SignerKey::from_seed(ORIGIN, [5; 32]).unwrap()
}

fn witness(n: u8) -> SignerKey {
    SignerKey::from_seed(&format!("w{n}.example"), [60 + n; 32]).unwrap()
}

fn witness_arg(n: u8) -> String {
    CosignerKey::of(&witness(n)).to_string()
}

fn entries(n: usize, tag: &str) -> Vec<Vec<u8>> {
    (0..n).map(|i| format!("{tag} {i}").into_bytes()).collect()
}

/// Writes the tiles, bundles and checkpoint of the tree of the first `size` entries into `dir` (earlier trees'
/// partial tiles stay, as a log keeps serving them), cosigned by `witnesses`; returns the checkpoint note.
fn publish(dir: &Path, entries: &[Vec<u8>], size: usize, witnesses: &[u8]) -> String {
    let entries = &entries[..size];
    for (path, body) in tree_tiles(entries) {
        write_file(dir, &path, &body);
    }
    let mut tree = CompactRange::new();
    tree.extend(entries.iter().map(|e| leaf_hash(e)), |_, _| {})
        .unwrap();
    let cp = Checkpoint::new(ORIGIN, TreeSize(size as u64), tree.root()).unwrap();
    let signed = sign_checkpoint(&log_key(), &cp, 1_714_564_800 + size as u64).unwrap();
    let lines: String = witnesses
        .iter()
        .map(|&n| cosign(&witness(n), &cp.to_body(), 1_714_564_900).unwrap())
        .collect();
    let note = if lines.is_empty() {
        signed.note
    } else {
        add_cosignatures(&signed.note, &lines).unwrap()
    };
    write_file(dir, "checkpoint", note.as_bytes());
    note
}

fn tlog(args: &[&str]) -> Output {
    let key = log_key().verifier().to_string();
    cli::tlog(&[&["--key", key.as_str()], args].concat(), None)
}

struct Fixture {
    dir: tempfile::TempDir,
    server: StaticServer,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let tiles = dir.path().join("tiles");
        std::fs::create_dir(&tiles).unwrap();
        let server = StaticServer::dir(tiles);
        Fixture { dir, server }
    }

    fn tiles(&self) -> PathBuf {
        self.dir.path().join("tiles")
    }

    /// `tlog COMMAND --tiles URL ARGS…` against this fixture's tiles.
    fn run(&self, command: &str, args: &[&str]) -> Output {
        tlog(&[&[command, "--tiles", self.server.url.as_str()], args].concat())
    }

    fn file(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_owned()
    }
}

#[test]
fn checkpoint_monitor_and_audit_read_the_tiles() {
    let f = Fixture::new();
    let log = entries(70_000, "event");
    publish(&f.tiles(), &log, 1_000, &[]);

    let out = ok(f.run("checkpoint", &["--json"]));
    let cp: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(cp["size"], 1_000);

    let state = f.file("monitor.state");
    let monitor = ["--state", &state, "--once", "--download-entries"];
    assert!(ok(f.run("monitor", &monitor)).starts_with("TOFU"));
    publish(&f.tiles(), &log, 70_000, &[]);
    let out = ok(f.run("monitor", &monitor));
    assert!(
        out.contains("tree size 70000") && out.contains("extends trusted tree size 1000"),
        "{out}"
    );
    assert!(out.contains("entries [1000, 70000) downloaded"), "{out}");

    let audit = f.file("audit.state");
    let out = ok(f.run("audit", &["--state", &audit, "--data", "event 68123"]));
    assert!(out.starts_with("AUDIT OK: leaf 68123"), "{out}");
    fails(
        f.run("audit", &["--state", &audit, "--data", "absent"]),
        1,
        "no leaf with hash",
    );
}

#[test]
fn a_forked_tiled_log_is_reported_with_both_notes() {
    let f = Fixture::new();
    let log = entries(2_000, "event");
    let trusted = publish(&f.tiles(), &log, 700, &[]);
    let state = f.file("monitor.state");
    ok(f.run("monitor", &["--state", &state, "--once"]));

    // Same key and origin, entry 10 rewritten: another history.
    std::fs::remove_dir_all(f.tiles()).unwrap();
    let mut forked = log.clone();
    forked[10] = b"rewritten".to_vec();
    let forked_note = publish(&f.tiles(), &forked, 2_000, &[]);
    let err = fails(
        f.run("monitor", &["--state", &state, "--once"]),
        3,
        "FORK: trusted checkpoint size 700",
    );
    assert!(
        err.contains(&trusted) && err.contains(&forked_note),
        "{err}"
    );
}

#[test]
fn a_lying_tile_server_is_refused() {
    let f = Fixture::new();
    let log = entries(1_000, "event");
    publish(&f.tiles(), &log, 1_000, &[]);
    let short = f.tiles().join("tile/0/001");
    let mut body = std::fs::read(&short).unwrap();
    body.truncate(8_000);
    std::fs::write(&short, &body).unwrap();
    fails(
        f.run("audit", &["--state", &f.file("a"), "--data", "event 300"]),
        3,
        "tile tile/0/001: hash tile has 8000 bytes, expected 8192",
    );

    let bundle = f.tiles().join("tile/entries/002");
    let mut changed = log[512..768].to_vec();
    changed[1] = b"changed".to_vec();
    std::fs::write(&bundle, encode_bundle(&changed).unwrap()).unwrap();
    fails(
        f.run(
            "monitor",
            &["--state", &f.file("m"), "--once", "--download-entries"],
        ),
        3,
        "CONTENT MISMATCH",
    );
}

#[test]
fn checkpoints_need_the_quorum_of_witnesses() {
    let f = Fixture::new();
    publish(&f.tiles(), &entries(300, "event"), 300, &[1, 2]);
    let (w1, w2, w3) = (witness_arg(1), witness_arg(2), witness_arg(3));
    let three = ["--witness", &w1, "--witness", &w2, "--witness", &w3];

    let mut quorum2 = three.to_vec();
    quorum2.extend(["--quorum", "2"]);
    assert!(
        ok(f.run("checkpoint", &quorum2))
            .starts_with("verified checkpoint: example.com/tiled tree size 300")
    );

    // The default quorum is every witness given.
    fails(
        f.run("checkpoint", &three),
        3,
        "NOT WITNESSED: the checkpoint has valid cosignatures from 2 of the --witness keys, 3 required \
         (--quorum); missing: w3.example",
    );

    // And the monitor will not move its trust to an unwitnessed checkpoint.
    publish(&f.tiles(), &entries(300, "event"), 300, &[]);
    let state = f.file("monitor.state");
    let monitor = [
        "--state",
        &state,
        "--once",
        "--witness",
        &w1,
        "--quorum",
        "1",
    ];
    fails(f.run("monitor", &monitor), 3, "missing: w1.example");
}

#[test]
fn witness_flags_are_checked() {
    let out = tlog(&[
        "checkpoint",
        "--tiles",
        "http://127.0.0.1:9/",
        "--quorum",
        "1",
    ]);
    fails(out, 1, "quorum 1 exceeds the 0 known witnesses");
    let plain = log_key().verifier().to_string();
    let out = tlog(&[
        "checkpoint",
        "--tiles",
        "http://127.0.0.1:9/",
        "--witness",
        &plain,
    ]);
    fails(out, 1, "is not a witness cosigner key");
    let out = tlog(&["checkpoint", "--tiles", "ftp://example.com/log"]);
    fails(
        out,
        1,
        "--tiles \"ftp://example.com/log\" is not an http:// or https:// URL",
    );
}

#[test]
fn receipts_are_upgraded_with_a_witnessed_checkpoint_and_a_proof() {
    let f = Fixture::new();
    let log = entries(1_000, "event");
    // The receipt of entry 0 in the tree of size 1 (its inclusion proof is empty), as the log acknowledged it.
    let note = publish(&f.tiles(), &log, 1, &[]);
    let receipt = f.file("r.json");
    let plain = serde_json::json!({
        "index": 0,
        "leaf_hash": leaf_hash(&log[0]).to_hex(),
        "checkpoint": note,
        "inclusion_proof": [],
        "duplicate": false,
    });
    std::fs::write(&receipt, plain.to_string()).unwrap();
    publish(&f.tiles(), &log, 1_000, &[1]);
    let w1 = witness_arg(1);
    let verify = [
        "verify-receipt",
        &receipt,
        "--entry",
        "event 0",
        "--witness",
        &w1,
    ];
    fails(tlog(&verify), 3, "NOT WITNESSED");

    let out = ok(f.run("upgrade-receipt", &[&receipt, "--witness", &w1]));
    assert!(
        out.starts_with("receipt upgraded: tree size 1 is proven consistent with"),
        "{out}"
    );
    let out = ok(tlog(&verify));
    assert!(
        out.contains("consistent with the witnessed checkpoint example.com/tiled tree size 1000"),
        "{out}"
    );
    // Still a plain receipt to a reader that knows nothing of upgrades.
    let upgraded: Value = serde_json::from_slice(&std::fs::read(&receipt).unwrap()).unwrap();
    let as_plain: tlog_client::Receipt = serde_json::from_value(upgraded.clone()).unwrap();
    assert_eq!(as_plain.index, tlog_core::LeafIndex(0));

    // A changed proof hash no longer links the two checkpoints.
    let mut tampered = upgraded;
    tampered["witnessed"]["consistency_proof"][0] = Value::from("00".repeat(32));
    std::fs::write(&receipt, tampered.to_string()).unwrap();
    fails(tlog(&verify), 3, "consistency proof invalid");
}

#[test]
fn a_partial_tile_gone_is_cut_from_the_full_one_over_http() {
    let f = Fixture::new();
    let log = entries(600, "event");
    let old = publish(&f.tiles(), &log, 300, &[]);
    // The log grew past the full tile and dropped the partial ones while a reader still holds the checkpoint of
    // 300 (here: still served as the latest), whose tiles it then reads.
    publish(&f.tiles(), &log, 600, &[]);
    write_file(&f.tiles(), "checkpoint", old.as_bytes());
    std::fs::remove_file(f.tiles().join("tile/0/001.p/44")).unwrap();
    std::fs::remove_file(f.tiles().join("tile/entries/001.p/44")).unwrap();
    let out = ok(f.run("audit", &["--state", &f.file("a"), "--data", "event 299"]));
    assert!(
        out.contains("leaf 299") && out.contains("tree size 300"),
        "{out}"
    );
    let monitor = ["--state", &f.file("m"), "--once", "--download-entries"];
    assert!(ok(f.run("monitor", &monitor)).contains("entries [0, 300) downloaded"));
}

#[test]
fn an_oversized_tile_is_not_read_past_its_size() {
    let f = Fixture::new();
    publish(&f.tiles(), &entries(1_000, "event"), 1_000, &[]);
    let tile = f.tiles().join("tile/0/001");
    let mut body = std::fs::read(&tile).unwrap();
    body.extend_from_slice(&[0; 1 << 20]);
    std::fs::write(&tile, &body).unwrap();
    fails(
        f.run("audit", &["--state", &f.file("a"), "--data", "event 300"]),
        3,
        "tile/0/001: response larger than 8192 bytes",
    );
}
