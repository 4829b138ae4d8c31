//! `GET /metrics`: a server in this process does a counted amount of work over gRPC, and its scrape, parsed with
//! a Prometheus text parser (`prometheus-parse`, not our encoder), shows exactly those counts.

use std::time::Duration;

use prometheus_parse::{Scrape, Value};
use tlog_proto::v1::get_inclusion_proof_request::Leaf;
use tlog_proto::v1::{GetConsistencyProofRequest, GetInclusionProofRequest, SubmitBatchRequest};
use tlog_server::testing::{Rpc, Running};

struct Log {
    server: Running,
    rpc: Rpc,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Log {
    async fn start() -> Log {
        let (server, dir) = Running::start_temporary("example.com/metrics", |_| ()).await;
        let rpc = server.rpc().await;
        let http = tlog_client::http::http_client(Duration::from_secs(60)).unwrap();
        Log {
            server,
            rpc,
            http,
            _dir: dir,
        }
    }

    /// Submits `entries` as one `SubmitBatch` and waits for its receipts.
    async fn submit(&mut self, entries: &[Vec<u8>]) -> Result<(), tonic::Status> {
        self.rpc
            .submit_batch(SubmitBatchRequest {
                entries: entries.to_vec(),
                ..Default::default()
            })
            .await
            .map(drop)
    }

    async fn scrape(&self) -> Metrics {
        let response = self
            .http
            .get(format!("{}/metrics", self.server.http_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::OK);
        let content_type = response.headers()[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            content_type.starts_with("application/openmetrics-text"),
            "{content_type}"
        );
        let text = response.text().await.unwrap();
        assert!(
            text.ends_with("# EOF\n"),
            "an OpenMetrics exposition ends with # EOF"
        );
        let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
        Metrics { scrape, text }
    }

    async fn stop(self) {
        drop((self.rpc, self.http));
        self.server.stop().await.unwrap();
    }
}

/// A parsed scrape.
struct Metrics {
    scrape: Scrape,
    text: String,
}

impl Metrics {
    /// The value of the one sample `name` with `labels` (a histogram's `_count` and `_sum` are samples).
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let found: Vec<f64> = self
            .scrape
            .samples
            .iter()
            .filter(|s| s.metric == name)
            .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .filter_map(|s| match s.value {
                Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => Some(v),
                _ => None,
            })
            .collect();
        assert_eq!(
            found.len(),
            1,
            "one sample {name}{labels:?} expected in\n{}",
            self.text
        );
        found[0]
    }
}

fn entries(tag: &str, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| format!("{{\"event\":\"{tag}-{i}\"}}").into_bytes())
        .collect()
}

#[tokio::test]
async fn appended_entries_bytes_and_batches_agree_with_what_was_submitted() {
    let mut log = Log::start().await;
    let batches = [entries("a", 5), entries("b", 1), entries("c", 10)];
    for batch in &batches {
        log.submit(batch).await.unwrap();
    }
    // A batch of entries the log already holds writes nothing.
    log.submit(&batches[0][..2]).await.unwrap();
    let m = log.scrape().await;
    let bytes: usize = batches.iter().flatten().map(Vec::len).sum();
    assert_eq!(m.value("tlog_entries_appended_total", &[]), 16.0);
    assert_eq!(m.value("tlog_appended_bytes_total", &[]), bytes as f64);
    assert_eq!(m.value("tlog_entries_duplicate_total", &[]), 2.0);
    assert_eq!(m.value("tlog_batches_total", &[]), 3.0);
    assert_eq!(m.value("tlog_batch_entries_count", &[]), 3.0);
    assert_eq!(m.value("tlog_batch_entries_sum", &[]), 16.0);
    assert_eq!(m.value("tlog_commit_seconds_count", &[]), 3.0);
    assert!(m.value("tlog_sequencer_busy_seconds_total", &[]) > 0.0);
    assert_eq!(m.value("tlog_queue_depth", &[]), 0.0);
    assert_eq!(m.value("tlog_tree_size", &[]), 16.0);
    log.stop().await;
}

#[tokio::test]
async fn proofs_are_counted_and_timed_by_kind() {
    let mut log = Log::start().await;
    log.submit(&entries("p", 3)).await.unwrap();
    log.submit(&entries("q", 4)).await.unwrap();
    for index in [0, 5] {
        log.rpc
            .get_inclusion_proof(GetInclusionProofRequest {
                leaf: Some(Leaf::Index(index)),
                tree_size: 0,
            })
            .await
            .unwrap();
    }
    // Beyond the tree: refused, counted as a failure.
    log.rpc
        .get_inclusion_proof(GetInclusionProofRequest {
            leaf: Some(Leaf::Index(99)),
            tree_size: 0,
        })
        .await
        .unwrap_err();
    log.rpc
        .get_consistency_proof(GetConsistencyProofRequest {
            old_size: 3,
            new_size: 7,
        })
        .await
        .unwrap();
    let m = log.scrape().await;
    let inclusion = [("kind", "inclusion")];
    let consistency = [("kind", "consistency")];
    assert_eq!(
        m.value("tlog_proof_duration_seconds_count", &inclusion),
        2.0
    );
    assert_eq!(
        m.value("tlog_proof_duration_seconds_count", &consistency),
        1.0
    );
    assert_eq!(m.value("tlog_proof_failures_total", &inclusion), 1.0);
    assert_eq!(m.value("tlog_proof_failures_total", &consistency), 0.0);
    log.stop().await;
}

#[tokio::test]
async fn refused_submissions_are_counted_by_reason() {
    let mut log = Log::start().await;
    let empty = log.submit(&[]).await.unwrap_err();
    assert_eq!(empty.code(), tonic::Code::InvalidArgument);
    let m = log.scrape().await;
    assert_eq!(
        m.value("tlog_submissions_rejected_total", &[("reason", "invalid")]),
        1.0
    );
    assert_eq!(
        m.value(
            "tlog_submissions_rejected_total",
            &[("reason", "queue_full")]
        ),
        0.0
    );
    assert_eq!(m.value("tlog_entries_appended_total", &[]), 0.0);
    log.stop().await;
}

#[tokio::test]
async fn log_state_is_read_at_the_scrape() {
    let mut log = Log::start().await;
    log.submit(&entries("s", 2)).await.unwrap();
    let m = log.scrape().await;
    assert_eq!(m.value("tlog_tree_size", &[]), 2.0);
    let timestamp = m.value("tlog_checkpoint_timestamp_seconds", &[]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        (now - timestamp).abs() < 60.0,
        "checkpoint at {timestamp}, now {now}"
    );
    let age = m.value("tlog_checkpoint_age_seconds", &[]);
    assert!((0.0..60.0).contains(&age), "age {age}");
    // No witnesses: nothing witnessed, no lag.
    assert_eq!(m.value("tlog_witnessed_tree_size", &[]), 0.0);
    assert_eq!(m.value("tlog_witness_lag_entries", &[]), 0.0);
    assert_eq!(m.value("tlog_scrub_status", &[]), 0.0);
    log.stop().await;
}

#[tokio::test]
async fn store_memory_is_reported_by_part() {
    let mut log = Log::start().await;
    log.submit(&entries("m", 3)).await.unwrap();
    let m = log.scrape().await;
    let part = |p| m.value("tlog_store_memory_bytes", &[("part", p)]);
    // The three hashes went into the leaf filter, and the batch into RocksDB's memtables.
    assert!(part("leaf_filter") > 0.0);
    assert!(part("memtables") > 0.0);
    // No proof was asked for, so no upper tile is held; the rest are there, whatever their size.
    assert_eq!(part("upper_tiles"), 0.0);
    assert!(part("table_readers") >= 0.0);
    assert!(part("block_cache") >= 0.0);
    log.stop().await;
}

#[tokio::test]
async fn concurrent_submissions_leave_no_queue_and_batches_add_up() {
    let log = Log::start().await;
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..32 {
        let mut rpc = log.rpc.clone();
        tasks.spawn(async move {
            rpc.submit_batch(SubmitBatchRequest {
                entries: entries(&format!("t{t}"), 3),
                ..Default::default()
            })
            .await
            .unwrap();
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let m = log.scrape().await;
    assert_eq!(m.value("tlog_entries_appended_total", &[]), 96.0);
    assert_eq!(m.value("tlog_batch_entries_sum", &[]), 96.0);
    assert_eq!(
        m.value("tlog_batches_total", &[]),
        m.value("tlog_batch_entries_count", &[])
    );
    assert_eq!(m.value("tlog_queue_depth", &[]), 0.0);
    log.stop().await;
}
