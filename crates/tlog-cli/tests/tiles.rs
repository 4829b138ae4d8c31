//! `tlog --tiles URL` against a static file server: a directory of C2SP tlog-tiles files written from a naive
//! reference (level-8L rows hashed pairwise from the leaves), served by a tiny axum server on port 0 with entry
//! bundles gzip-encoded, standing in for another log's static tiles. Also the witness policy (`--witness`,
//! `--quorum`) on tile checkpoints.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use axum::Router;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tlog_checkpoint::witness::add_cosignatures;
use tlog_checkpoint::{Checkpoint, CosignerKey, SignerKey, cosign, sign_checkpoint};
use tlog_core::tiles::encode_bundle;
use tlog_core::{CompactRange, Hash, TreeSize, leaf_hash, node_hash};

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

/// Index `n` as 3-digit groups, all but the last prefixed with `x`.
fn index_path(n: usize) -> String {
    let mut groups = vec![format!("{:03}", n % 1000)];
    let mut rest = n / 1000;
    while rest > 0 {
        groups.push(format!("x{:03}", rest % 1000));
        rest /= 1000;
    }
    groups.reverse();
    groups.join("/")
}

fn tile_path(kind: &str, n: usize, width: usize) -> String {
    let suffix = if width == 256 {
        String::new()
    } else {
        format!(".p/{width}")
    };
    format!("tile/{kind}/{}{suffix}", index_path(n))
}

fn write(dir: &Path, path: &str, body: &[u8]) {
    let file = dir.join(path);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(file, body).unwrap();
}

/// Writes the tiles, bundles and checkpoint of the tree of the first `size` entries into `dir` (earlier trees'
/// partial tiles stay, as a log keeps serving them), cosigned by `witnesses`; returns the checkpoint note.
fn publish(dir: &Path, entries: &[Vec<u8>], size: usize, witnesses: &[u8]) -> String {
    let entries = &entries[..size];
    let mut row: Vec<Hash> = entries.iter().map(|e| leaf_hash(e)).collect();
    let mut level = 0;
    while !row.is_empty() {
        for (n, chunk) in row.chunks(256).enumerate() {
            let body: Vec<u8> = chunk.iter().flat_map(|h| h.0).collect();
            write(dir, &tile_path(&level.to_string(), n, chunk.len()), &body);
        }
        for _ in 0..8 {
            row = row
                .chunks_exact(2)
                .map(|p| node_hash(&p[0], &p[1]))
                .collect();
        }
        level += 1;
    }
    for (n, chunk) in entries.chunks(256).enumerate() {
        write(
            dir,
            &tile_path("entries", n, chunk.len()),
            &encode_bundle(chunk).unwrap(),
        );
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
    write(dir, "checkpoint", note.as_bytes());
    note
}

/// A static server of `dir` below `/log/`, on a runtime of its own that stops when this is dropped.
struct StaticServer {
    url: String,
    _runtime: tokio::runtime::Runtime,
}

fn serve(dir: PathBuf) -> StaticServer {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().fallback(move |uri: Uri| {
        let dir = dir.clone();
        async move { static_file(&dir, uri.path()) }
    });
    runtime.spawn(async move { axum::serve(listener, app).await });
    StaticServer {
        url: format!("http://{addr}/log"),
        _runtime: runtime,
    }
}

fn static_file(dir: &Path, path: &str) -> Response {
    let Some(rel) = path.strip_prefix("/log/").filter(|p| !p.contains("..")) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Ok(body) = std::fs::read(dir.join(rel)) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if rel == "checkpoint" {
        return ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response();
    }
    if rel.starts_with("tile/entries/") {
        // The spec allows gzip without negotiation; the client must decode it.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&body).unwrap();
        let headers = [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (header::CONTENT_ENCODING, "gzip"),
        ];
        return (headers, gz.finish().unwrap()).into_response();
    }
    ([(header::CONTENT_TYPE, "application/octet-stream")], body).into_response()
}

fn tlog(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tlog"))
        .args(["--key", &log_key().verifier().to_string()])
        .args(args)
        .env_remove("TLOG_SERVER")
        .env_remove("TLOG_VERIFIER_KEY")
        .env_remove("TLOG_TOKEN")
        .env_remove("TLOG_CA_CERT")
        .output()
        .expect("run tlog")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[track_caller]
fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "tlog failed ({:?})\nstdout: {}\nstderr: {}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

#[track_caller]
fn fails(out: Output, code: i32, needle: &str) -> String {
    let err = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout: {}\nstderr: {err}",
        text(&out.stdout)
    );
    assert!(err.contains(needle), "{needle:?} not in: {err}");
    err
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
        let server = serve(tiles);
        Fixture { dir, server }
    }

    fn tiles(&self) -> PathBuf {
        self.dir.path().join("tiles")
    }

    fn file(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_owned()
    }
}

#[test]
fn checkpoint_monitor_and_audit_read_the_tiles() {
    let f = Fixture::new();
    let url = f.server.url.as_str();
    let log = entries(70_000, "event");
    publish(&f.tiles(), &log, 1_000, &[]);

    let out = ok(tlog(&["checkpoint", "--tiles", url, "--json"]));
    let cp: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(cp["size"], 1_000);

    let state = f.file("monitor.state");
    let monitor = [
        "monitor",
        "--tiles",
        url,
        "--state",
        &state,
        "--once",
        "--download-entries",
    ];
    assert!(ok(tlog(&monitor)).starts_with("TOFU"));
    publish(&f.tiles(), &log, 70_000, &[]);
    let out = ok(tlog(&monitor));
    assert!(
        out.contains("tree size 70000") && out.contains("extends trusted tree size 1000"),
        "{out}"
    );
    assert!(out.contains("entries [1000, 70000) downloaded"), "{out}");

    let audit = f.file("audit.state");
    let out = ok(tlog(&[
        "audit",
        "--tiles",
        url,
        "--state",
        &audit,
        "--data",
        "event 68123",
    ]));
    assert!(out.starts_with("AUDIT OK: leaf 68123"), "{out}");
    fails(
        tlog(&[
            "audit", "--tiles", url, "--state", &audit, "--data", "absent",
        ]),
        1,
        "no leaf with hash",
    );
}

#[test]
fn a_forked_tiled_log_is_reported_with_both_notes() {
    let f = Fixture::new();
    let url = f.server.url.as_str();
    let log = entries(2_000, "event");
    let trusted = publish(&f.tiles(), &log, 700, &[]);
    let state = f.file("monitor.state");
    ok(tlog(&[
        "monitor", "--tiles", url, "--state", &state, "--once",
    ]));

    // Same key and origin, entry 10 rewritten: another history.
    std::fs::remove_dir_all(f.tiles()).unwrap();
    let mut forked = log.clone();
    forked[10] = b"rewritten".to_vec();
    let forked_note = publish(&f.tiles(), &forked, 2_000, &[]);
    let err = fails(
        tlog(&["monitor", "--tiles", url, "--state", &state, "--once"]),
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
    let url = f.server.url.as_str();
    let log = entries(1_000, "event");
    publish(&f.tiles(), &log, 1_000, &[]);
    let short = f.tiles().join("tile/0/001");
    let mut body = std::fs::read(&short).unwrap();
    body.truncate(8_000);
    std::fs::write(&short, &body).unwrap();
    fails(
        tlog(&[
            "audit",
            "--tiles",
            url,
            "--state",
            &f.file("a"),
            "--data",
            "event 300",
        ]),
        3,
        "tile tile/0/001: hash tile has 8000 bytes, expected 8192",
    );

    let bundle = f.tiles().join("tile/entries/002");
    let mut changed = log[512..768].to_vec();
    changed[1] = b"changed".to_vec();
    std::fs::write(&bundle, encode_bundle(&changed).unwrap()).unwrap();
    fails(
        tlog(&[
            "monitor",
            "--tiles",
            url,
            "--state",
            &f.file("m"),
            "--once",
            "--download-entries",
        ]),
        3,
        "CONTENT MISMATCH",
    );
}

#[test]
fn checkpoints_need_the_quorum_of_witnesses() {
    let f = Fixture::new();
    let url = f.server.url.as_str();
    publish(&f.tiles(), &entries(300, "event"), 300, &[1, 2]);
    let (w1, w2, w3) = (witness_arg(1), witness_arg(2), witness_arg(3));
    let three = [
        "checkpoint",
        "--tiles",
        url,
        "--witness",
        &w1,
        "--witness",
        &w2,
        "--witness",
        &w3,
    ];

    let mut quorum2 = three.to_vec();
    quorum2.extend(["--quorum", "2"]);
    assert!(ok(tlog(&quorum2)).starts_with("verified checkpoint: example.com/tiled tree size 300"));

    // The default quorum is every witness given.
    fails(
        tlog(&three),
        3,
        "NOT WITNESSED: the checkpoint has valid cosignatures from 2 of the --witness keys, 3 required \
         (--quorum); missing: w3.example",
    );

    // And the monitor will not move its trust to an unwitnessed checkpoint.
    publish(&f.tiles(), &entries(300, "event"), 300, &[]);
    let state = f.file("monitor.state");
    let mut monitor = vec!["monitor", "--tiles", url, "--state", &state, "--once"];
    monitor.extend(["--witness", &w1, "--quorum", "1"]);
    fails(tlog(&monitor), 3, "missing: w1.example");
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
    let url = f.server.url.as_str();
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

    let out = ok(tlog(&[
        "upgrade-receipt",
        &receipt,
        "--tiles",
        url,
        "--witness",
        &w1,
    ]));
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
    let url = f.server.url.as_str();
    let log = entries(600, "event");
    let old = publish(&f.tiles(), &log, 300, &[]);
    // The log grew past the full tile and dropped the partial ones while a reader still holds the checkpoint of
    // 300 (here: still served as the latest), whose tiles it then reads.
    publish(&f.tiles(), &log, 600, &[]);
    write(&f.tiles(), "checkpoint", old.as_bytes());
    std::fs::remove_file(f.tiles().join("tile/0/001.p/44")).unwrap();
    std::fs::remove_file(f.tiles().join("tile/entries/001.p/44")).unwrap();
    let out = ok(tlog(&[
        "audit",
        "--tiles",
        url,
        "--state",
        &f.file("a"),
        "--data",
        "event 299",
    ]));
    assert!(
        out.contains("leaf 299") && out.contains("tree size 300"),
        "{out}"
    );
    let monitor = [
        "monitor",
        "--tiles",
        url,
        "--state",
        &f.file("m"),
        "--once",
        "--download-entries",
    ];
    assert!(ok(tlog(&monitor)).contains("entries [0, 300) downloaded"));
}

#[test]
fn an_oversized_tile_is_not_read_past_its_size() {
    let f = Fixture::new();
    let url = f.server.url.as_str();
    publish(&f.tiles(), &entries(1_000, "event"), 1_000, &[]);
    let tile = f.tiles().join("tile/0/001");
    let mut body = std::fs::read(&tile).unwrap();
    body.extend_from_slice(&[0; 1 << 20]);
    std::fs::write(&tile, &body).unwrap();
    fails(
        tlog(&[
            "audit",
            "--tiles",
            url,
            "--state",
            &f.file("a"),
            "--data",
            "event 300",
        ]),
        3,
        "tile/0/001: response larger than 8192 bytes",
    );
}
