//! HTTP/JSON ingestion: `POST /v1/events` and the Kubernetes audit webhook `POST /v1/k8s/audit`, on a server in
//! this process. Receipts are verified with the client crate; that an event is in the log is checked over gRPC by
//! the leaf hash of its canonical JSON, computed here with the JCS crate, not by the server's code.

use std::path::Path;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use tlog_checkpoint::VerifierKey;
use tlog_core::leaf_hash;
use tlog_proto::v1::GetInclusionProofRequest;
use tlog_proto::v1::get_inclusion_proof_request::Leaf;
use tlog_server::server::ServerConfig;
use tlog_server::testing::{self, Rpc, Running};

const TOKEN: &str = "s3cret";

struct Log {
    server: Running,
    rpc: Rpc,
    http: reqwest::Client,
    key: VerifierKey,
    _dir: tempfile::TempDir,
}

impl Log {
    async fn start() -> Log {
        Self::start_with(|_| ()).await
    }

    async fn start_with(adjust: impl FnOnce(&mut ServerConfig)) -> Log {
        let (server, dir) = Running::start_temporary("example.com/ingest", |c| {
            c.write_tokens = vec![TOKEN.into()];
            adjust(c);
        })
        .await;
        let rpc = server.rpc().await;
        let http = tlog_client::http::http_client(Duration::from_secs(60)).unwrap();
        let vkey = std::fs::read_to_string(dir.path().join("log.vkey")).unwrap();
        Log {
            server,
            rpc,
            http,
            key: VerifierKey::parse(vkey.trim()).unwrap(),
            _dir: dir,
        }
    }

    /// POSTs `body` to `path` with `token` (if any); the status and the JSON answer.
    async fn post_as(&self, path: &str, token: Option<&str>, body: Vec<u8>) -> (StatusCode, Value) {
        let mut request = self
            .http
            .post(format!("{}{path}", self.server.http_url()))
            .header("content-type", "application/json")
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let bytes = response.bytes().await.unwrap();
        let json = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{path} answered {status} with non-JSON ({e}): {bytes:?}"));
        (status, json)
    }

    async fn post(&self, path: &str, body: impl Into<Vec<u8>>) -> (StatusCode, Value) {
        self.post_as(path, Some(TOKEN), body.into()).await
    }

    /// The index of the entry `entry` in the log, found over gRPC by its leaf hash.
    async fn index_of(&mut self, entry: &[u8]) -> u64 {
        self.rpc
            .get_inclusion_proof(GetInclusionProofRequest {
                leaf: Some(Leaf::LeafHash(leaf_hash(entry).0.to_vec())),
                tree_size: 0,
            })
            .await
            .unwrap_or_else(|e| panic!("{} is not in the log: {e}", String::from_utf8_lossy(entry)))
            .into_inner()
            .index
    }

    async fn tree_size(&mut self) -> u64 {
        testing::tree_size(&mut self.rpc).await
    }

    async fn stop(self) {
        drop((self.rpc, self.http));
        self.server.stop().await.unwrap();
    }
}

fn jcs(value: &Value) -> Vec<u8> {
    serde_json_canonicalizer::to_vec(value).unwrap()
}

/// Verifies a JSON receipt with the client crate against the log's key and the entry it should prove.
fn verify(key: &VerifierKey, receipt: &Value, entry: &[u8]) -> tlog_client::VerifiedReceipt {
    let receipt: tlog_client::Receipt = serde_json::from_value(receipt.clone()).unwrap();
    tlog_client::verify_receipt(key, &receipt, Some(entry)).unwrap()
}

fn error_status(answer: &Value) -> &str {
    answer["error"]["status"]
        .as_str()
        .unwrap_or_else(|| panic!("no error status in {answer}"))
}

#[tokio::test]
async fn one_event_gets_a_receipt_the_client_verifies_for_its_canonical_json() {
    let log = Log::start().await;
    let body =
        r#"{ "time": "2026-11-26T11:31:21Z", "actor": "alice", "action": "deploy", "n": 1.0 }"#;
    let (status, receipt) = log.post("/v1/events", body).await;
    assert_eq!(status, StatusCode::OK, "{receipt}");
    let canonical = br#"{"action":"deploy","actor":"alice","n":1,"time":"2026-11-26T11:31:21Z"}"#;
    assert_eq!(jcs(&serde_json::from_str(body).unwrap()), canonical);
    let verified = verify(&log.key, &receipt, canonical);
    assert_eq!(verified.index().0, 0);
    assert!(!verified.duplicate());
    log.stop().await;
}

#[tokio::test]
async fn an_array_is_one_submission_with_a_receipt_per_event() {
    let log = Log::start().await;
    let events: Vec<Value> = (0..5)
        .map(|i| serde_json::json!({"actor": "bob", "seq": i}))
        .collect();
    let (status, answer) = log
        .post("/v1/events", serde_json::to_vec(&events).unwrap())
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let receipts = answer["receipts"].as_array().unwrap();
    assert_eq!(receipts.len(), events.len());
    for (i, (receipt, event)) in receipts.iter().zip(&events).enumerate() {
        let verified = verify(&log.key, receipt, &jcs(event));
        assert_eq!(verified.index().0, i as u64);
        // One submission: one checkpoint covers them all.
        assert_eq!(verified.checkpoint().checkpoint.size.0, 5);
    }
    log.stop().await;
}

#[tokio::test]
async fn the_same_event_spelled_differently_is_the_same_entry() {
    let log = Log::start().await;
    let (_, first) = log.post("/v1/events", r#"{"a": 1, "b": "x"}"#).await;
    let (status, again) = log
        .post("/v1/events", "{\n  \"b\" : \"\\u0078\",\n  \"a\" : 1e0\n}")
        .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["index"], first["index"]);
    assert_eq!(again["leaf_hash"], first["leaf_hash"]);
    assert_eq!(again["duplicate"], true);
    log.stop().await;
}

#[tokio::test]
async fn refusals_answer_the_http_status_of_their_grpc_code_with_a_json_error() {
    let log = Log::start_with(|c| {
        c.log.max_request_entries = 3;
        c.log.max_entry_bytes = 100;
        c.ingest.max_body_bytes = 1000;
    })
    .await;
    let event = br#"{"a":1}"#.to_vec();
    /// What is sent, with which token, and the status and gRPC code name expected.
    type Case<'a> = (&'a str, Option<&'a str>, Vec<u8>, StatusCode, &'a str);
    let cases: Vec<Case> = vec![
        (
            "no token",
            None,
            event.clone(),
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
        ),
        (
            "wrong token",
            Some("nope"),
            event.clone(),
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
        ),
        (
            "not JSON",
            Some(TOKEN),
            b"{\"a\":".to_vec(),
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
        ),
        (
            "not an object",
            Some(TOKEN),
            b"[1]".to_vec(),
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
        ),
        (
            "no events",
            Some(TOKEN),
            b"[]".to_vec(),
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
        ),
        (
            "repeated member",
            Some(TOKEN),
            br#"{"a":1,"a":2}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
        ),
        (
            "too many events",
            Some(TOKEN),
            br#"[{"a":1},{"a":2},{"a":3},{"a":4}]"#.to_vec(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "INVALID_ARGUMENT",
        ),
        (
            "event too large",
            Some(TOKEN),
            format!(r#"{{"a":"{}"}}"#, "x".repeat(200)).into_bytes(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "INVALID_ARGUMENT",
        ),
        (
            "body too large",
            Some(TOKEN),
            // Small once canonical: only the body is too large.
            format!(r#"{{"a":1}}{}"#, " ".repeat(2000)).into_bytes(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "INVALID_ARGUMENT",
        ),
    ];
    for (what, token, body, status, code) in cases {
        let (got, answer) = log.post_as("/v1/events", token, body).await;
        assert_eq!(got, status, "{what}: {answer}");
        assert_eq!(error_status(&answer), code, "{what}: {answer}");
        assert_eq!(answer["error"]["code"], status.as_u16(), "{what}");
        assert!(
            !answer["error"]["message"].as_str().unwrap().is_empty(),
            "{what}: {answer}"
        );
    }
    let mut log = log;
    assert_eq!(log.tree_size().await, 0, "nothing refused was appended");
    log.stop().await;
}

fn k8s_sample(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/k8s")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test]
async fn audit_event_lists_of_every_level_append_each_event_as_its_canonical_json() {
    let mut log = Log::start().await;
    let mut expected_index = 0;
    for sample in ["metadata.json", "request.json", "request-response.json"] {
        let body = k8s_sample(sample);
        let (status, answer) = log.post("/v1/k8s/audit", body.clone()).await;
        assert_eq!(status, StatusCode::OK, "{sample}: {answer}");
        let list: Value = serde_json::from_slice(&body).unwrap();
        let items = list["items"].as_array().unwrap();
        assert_eq!(answer["entries"], items.len(), "{sample}");
        for item in items {
            assert_eq!(log.index_of(&jcs(item)).await, expected_index, "{sample}");
            expected_index += 1;
        }
        assert_eq!(answer["tree_size"], expected_index, "{sample}");
    }
    log.stop().await;
}

#[tokio::test]
async fn an_audit_event_list_longer_than_a_submission_is_appended_whole_and_in_order() {
    let mut log = Log::start_with(|c| c.log.max_request_entries = 100).await;
    let items: Vec<Value> = (0..250)
        .map(|i| {
            serde_json::json!({
                "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
                "auditID": format!("00000000-0000-4000-8000-{i:012}"), "stage": "ResponseComplete",
                "verb": "get", "requestURI": format!("/api/v1/namespaces/default/pods/p{i}"),
            })
        })
        .collect();
    let list = serde_json::json!({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {}, "items": items});
    let (status, answer) = log
        .post("/v1/k8s/audit", serde_json::to_vec(&list).unwrap())
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["entries"], 250);
    assert_eq!(log.tree_size().await, 250);
    for i in [0, 99, 100, 199, 249] {
        assert_eq!(log.index_of(&jcs(&items[i])).await, i as u64);
    }
    log.stop().await;
}

#[tokio::test]
async fn a_resent_audit_event_list_appends_nothing_new() {
    let mut log = Log::start().await;
    let body = k8s_sample("request-response.json");
    assert_eq!(
        log.post("/v1/k8s/audit", body.clone()).await.0,
        StatusCode::OK
    );
    let size = log.tree_size().await;
    // The apiserver re-sends a whole batch after a 429 or a 5xx: de-duplication keeps the log as it was.
    let (status, answer) = log.post("/v1/k8s/audit", body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(log.tree_size().await, size);
    log.stop().await;
}

#[tokio::test]
async fn the_webhook_refuses_what_is_not_an_audit_v1_event_list() {
    let log = Log::start().await;
    for (what, body) in [
        (
            "v1beta1",
            r#"{"kind":"EventList","apiVersion":"audit.k8s.io/v1beta1","items":[]}"#,
        ),
        (
            "an event",
            r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1"}"#,
        ),
        (
            "items not an array",
            r#"{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":{}}"#,
        ),
        (
            "an item not an object",
            r#"{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":["x"]}"#,
        ),
    ] {
        let (status, answer) = log.post("/v1/k8s/audit", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {answer}");
        assert_eq!(error_status(&answer), "INVALID_ARGUMENT", "{what}");
    }
    log.stop().await;
}

#[tokio::test]
async fn the_webhook_takes_the_write_token() {
    let log = Log::start().await;
    let body = k8s_sample("metadata.json");
    assert_eq!(
        log.post_as("/v1/k8s/audit", None, body.clone()).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        log.post_as("/v1/k8s/audit", Some("nope"), body.clone())
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(log.post("/v1/k8s/audit", body).await.0, StatusCode::OK);
    log.stop().await;
}
