//! The web explorer's routes on tlogd's HTTP listener: the page and its assets, and the JSON reads it verifies
//! (entries, inclusion and consistency proofs), with errors as JSON whose HTTP status matches the gRPC code.
//! Proofs are checked here with tlog-core's verifiers against the signed checkpoint; the browser's own checks are
//! tests/browser.rs at the workspace root.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use reqwest::StatusCode;
use serde_json::Value;
use tlog_checkpoint::{VerifierKey, verify_checkpoint};
use tlog_core::{Hash, LeafIndex, TreeSize, leaf_hash, verify_consistency, verify_inclusion};
use tlog_server::testing::{self, Rpc, Running};

fn entry(i: u64) -> Vec<u8> {
    format!("{{\"event\":{i}}}").into_bytes()
}

struct Log {
    server: Running,
    rpc: Rpc,
    http: reqwest::Client,
    dir: tempfile::TempDir,
    size: u64,
}

impl Log {
    async fn start() -> Log {
        let (server, dir) = Running::start_temporary("example.com/explorer", |_| ()).await;
        let rpc = server.rpc().await;
        Log {
            server,
            rpc,
            http: tlog_client::http::http_client(std::time::Duration::from_secs(60)).unwrap(),
            dir,
            size: 0,
        }
    }

    /// Adds entries up to `size` in one batch: one published checkpoint.
    async fn grow_to(&mut self, size: u64) {
        let entries = (self.size..size).map(entry).collect();
        testing::submit_batch(&mut self.rpc, entries).await;
        self.size = size;
    }

    async fn get(&self, path: &str) -> (StatusCode, String, String) {
        let response = self
            .http
            .get(format!("{}{path}", self.server.http_url()))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (status, content_type, response.text().await.unwrap())
    }

    /// The JSON answer of `path`, which must be 200.
    async fn json(&self, path: &str) -> Value {
        let (status, content_type, body) = self.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert_eq!(content_type, "application/json", "{path}");
        serde_json::from_str(&body).unwrap()
    }

    /// The error answer of `path`: its status and its `code`.
    async fn error(&self, path: &str) -> (StatusCode, String) {
        let (status, content_type, body) = self.get(path).await;
        assert_eq!(content_type, "application/json", "{path}: {body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()));
        (status, body["code"].as_str().unwrap().to_owned())
    }

    fn vkey(&self) -> VerifierKey {
        let text = std::fs::read_to_string(self.dir.path().join("log.vkey")).unwrap();
        VerifierKey::parse(text.trim()).unwrap()
    }

    async fn root(&self) -> Hash {
        let (_, _, note) = self.get("/checkpoint").await;
        verify_checkpoint(&self.vkey(), note.as_bytes())
            .unwrap()
            .checkpoint
            .root
    }

    async fn stop(self) {
        drop(self.rpc);
        self.server.stop().await.unwrap();
    }
}

fn hashes(value: &Value) -> Vec<Hash> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|h| hex_hash(h.as_str().unwrap()))
        .collect()
}

fn hex_hash(text: &str) -> Hash {
    let mut hash = [0u8; 32];
    for (i, byte) in hash.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap();
    }
    Hash(hash)
}

#[tokio::test]
async fn the_page_and_its_assets_are_served_with_a_content_security_policy() {
    let log = Log::start().await;
    for (path, content_type) in [
        ("/", "text/html; charset=utf-8"),
        ("/explorer/explorer.js", "text/javascript; charset=utf-8"),
        ("/explorer/explorer.css", "text/css; charset=utf-8"),
    ] {
        let response = log
            .http
            .get(format!("{}{path}", log.server.http_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(response.headers()["content-type"], content_type, "{path}");
        let csp = response.headers()["content-security-policy"]
            .to_str()
            .unwrap();
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
    }
    log.stop().await;
}

#[tokio::test]
async fn config_names_the_logs_verifier_key() {
    let log = Log::start().await;
    let config = log.json("/v1/explorer/config").await;
    assert_eq!(config["verifier_key"], log.vkey().to_string());
    assert_eq!(config["origin"], "example.com/explorer");
    log.stop().await;
}

#[tokio::test]
async fn entries_are_served_with_their_leaf_hashes() {
    let mut log = Log::start().await;
    log.grow_to(50).await;
    let answer = log.json("/v1/entries?start=40&end=50").await;
    let entries = answer["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 10);
    for (i, e) in (40..).zip(entries) {
        assert_eq!(e["index"], i);
        let bytes = BASE64.decode(e["entry"].as_str().unwrap()).unwrap();
        assert_eq!(bytes, entry(i));
        assert_eq!(e["leaf_hash"], leaf_hash(&entry(i)).to_string());
    }
    let one = log.json("/v1/entry/7").await;
    assert_eq!(one["leaf_hash"], leaf_hash(&entry(7)).to_string());
    log.stop().await;
}

#[tokio::test]
async fn an_entries_request_is_bounded() {
    let mut log = Log::start().await;
    log.grow_to(300).await;
    let max = tlog_server::explorer::MAX_ENTRIES;
    let ok = log.json(&format!("/v1/entries?start=0&end={max}")).await;
    assert_eq!(ok["entries"].as_array().unwrap().len() as u64, max);
    assert_eq!(
        log.error(&format!("/v1/entries?start=0&end={}", max + 1))
            .await,
        (StatusCode::BAD_REQUEST, "INVALID_ARGUMENT".into())
    );
    log.stop().await;
}

#[tokio::test]
async fn an_inclusion_proof_by_index_verifies_against_the_checkpoint() {
    let mut log = Log::start().await;
    log.grow_to(1000).await;
    let root = log.root().await;
    let answer = log.json("/v1/proof/inclusion?index=321&size=1000").await;
    assert_eq!(answer["tree_size"], 1000);
    assert_eq!(answer["leaf_hash"], leaf_hash(&entry(321)).to_string());
    verify_inclusion(
        &leaf_hash(&entry(321)),
        LeafIndex(321),
        TreeSize(1000),
        &hashes(&answer["proof"]),
        &root,
    )
    .unwrap();
    log.stop().await;
}

#[tokio::test]
async fn an_inclusion_proof_by_leaf_hash_names_the_index() {
    let mut log = Log::start().await;
    log.grow_to(1000).await;
    let hash = leaf_hash(&entry(654));
    let answer = log
        .json(&format!("/v1/proof/inclusion?leaf_hash={hash}&size=1000"))
        .await;
    assert_eq!(answer["index"], 654);
    log.stop().await;
}

#[tokio::test]
async fn a_consistency_proof_links_two_published_checkpoints() {
    let mut log = Log::start().await;
    log.grow_to(300).await;
    let old_root = log.root().await;
    log.grow_to(1000).await;
    let new_root = log.root().await;
    let answer = log.json("/v1/proof/consistency?old=300&new=1000").await;
    verify_consistency(
        TreeSize(300),
        TreeSize(1000),
        &hashes(&answer["proof"]),
        &old_root,
        &new_root,
    )
    .unwrap();
    log.stop().await;
}

#[tokio::test]
async fn errors_carry_the_http_status_of_the_grpc_code() {
    let mut log = Log::start().await;
    log.grow_to(10).await;
    let unknown = leaf_hash(b"never submitted");
    for (path, status, code) in [
        ("/v1/entry/10", StatusCode::BAD_REQUEST, "OUT_OF_RANGE"),
        ("/v1/entry/x", StatusCode::BAD_REQUEST, "INVALID_ARGUMENT"),
        (
            "/v1/entries?start=5",
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
        ),
        (
            "/v1/proof/inclusion?size=10",
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
        ),
        (
            "/v1/proof/inclusion?index=10&size=10",
            StatusCode::BAD_REQUEST,
            "OUT_OF_RANGE",
        ),
        (
            &format!("/v1/proof/inclusion?leaf_hash={unknown}&size=10"),
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
        ),
        (
            "/v1/proof/inclusion?leaf_hash=00&size=10",
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
        ),
        (
            "/v1/proof/consistency?old=3&new=10",
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
        ),
        (
            "/v1/proof/consistency?old=0&new=10",
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
        ),
    ] {
        assert_eq!(log.error(path).await, (status, code.to_owned()), "{path}");
    }
    log.stop().await;
}
