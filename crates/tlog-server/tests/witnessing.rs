//! The log's side of C2SP tlog-witness against scripted witnesses: HTTP servers on port 0 that answer with the
//! statuses a test chooses (so every answer the spec defines, including ones a correct witness never gives this
//! log, can be produced) and record what the log sent. The real witness is exercised end to end in the root
//! package's tests.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tlog_checkpoint::witness::{AddCheckpoint, CosignerKey, format_size_body, verify_witnessed};
use tlog_checkpoint::{Checkpoint, SignedCheckpoint, SignerKey, cosign};
use tlog_core::{Hash, TreeSize, verify_consistency};
use tlog_server::ManualClock;
use tlog_server::log::{Appender, LogOptions, LogReader, Shutdown, open};
use tlog_server::metrics::{LogState, Metrics};
use tlog_server::witnessing::{META_WITNESSED, WitnessEndpoint, Witnessing, WitnessingConfig};
use tlog_storage::{LogStore, MemoryBackend, MemoryStore};
use tokio::net::TcpListener;

const ORIGIN: &str = "example.com/witnessed-log";

fn log_key() -> SignerKey {
    SignerKey::from_seed(ORIGIN, [7; 32]).unwrap()
}

/// How a scripted witness answers one request.
#[derive(Clone, Debug)]
enum Answer {
    /// 200 with a valid cosignature.
    Cosign,
    /// 409 with `text/x.tlog.size` and this size.
    Size(u64),
    /// This status with a plain text body.
    Status(u16),
    /// 200 with a cosignature over another checkpoint (invalid for this one).
    BadCosignature,
    /// Never answers within the log's timeout.
    Hang,
}

struct Script {
    key: SignerKey,
    /// Answers for the next requests; when empty, `Cosign`.
    answers: VecDeque<Answer>,
    requests: Vec<AddCheckpoint>,
}

#[derive(Clone)]
struct Witness {
    script: Arc<Mutex<Script>>,
    url: String,
    key: CosignerKey,
}

impl Witness {
    async fn start(n: u8, answers: &[Answer]) -> Witness {
        let key = SignerKey::from_seed(&format!("witness{n}.example"), [n; 32]).unwrap();
        let cosigner = CosignerKey::of(&key);
        let script = Arc::new(Mutex::new(Script {
            key,
            answers: answers.iter().cloned().collect(),
            requests: Vec::new(),
        }));
        let app = axum::Router::new()
            .route("/add-checkpoint", axum::routing::post(answer))
            .with_state(script.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Witness {
            script,
            url,
            key: cosigner,
        }
    }

    fn endpoint(&self) -> WitnessEndpoint {
        WitnessEndpoint {
            key: self.key.clone(),
            url: self.url.clone(),
        }
    }

    fn requests(&self) -> Vec<AddCheckpoint> {
        self.script.lock().unwrap().requests.clone()
    }
}

async fn answer(State(script): State<Arc<Mutex<Script>>>, body: Bytes) -> Response {
    let (answer, key) = {
        let mut s = script.lock().unwrap();
        let req = AddCheckpoint::parse(&body).expect("the log sends well-formed requests");
        s.requests.push(req);
        (
            s.answers.pop_front().unwrap_or(Answer::Cosign),
            s.key.clone(),
        )
    };
    let note = AddCheckpoint::parse(&body).unwrap().checkpoint;
    let note = String::from_utf8(note).unwrap();
    let text = &note[..note.find("\n\n").unwrap() + 1];
    match answer {
        Answer::Cosign => cosign(&key, text, 1_700_000_100).unwrap().into_response(),
        Answer::BadCosignature => {
            let other = Checkpoint::new(ORIGIN, TreeSize(1), Hash([0; 32])).unwrap();
            cosign(&key, &other.to_body(), 1).unwrap().into_response()
        }
        Answer::Size(size) => (
            StatusCode::CONFLICT,
            [(header::CONTENT_TYPE, "text/x.tlog.size")],
            format_size_body(size),
        )
            .into_response(),
        Answer::Status(code) => (
            StatusCode::from_u16(code).unwrap(),
            format!("scripted {code}\n"),
        )
            .into_response(),
        Answer::Hang => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            StatusCode::OK.into_response()
        }
    }
}

struct Log {
    appender: Appender,
    reader: LogReader<MemoryStore>,
    store: Arc<MemoryStore>,
    shutdown: Shutdown,
}

fn memory() -> Arc<MemoryStore> {
    Arc::new(MemoryStore::open(MemoryBackend::new()).unwrap())
}

fn open_log(store: Arc<MemoryStore>) -> Log {
    let options = LogOptions {
        clock: Arc::new(ManualClock::new(1_700_000_000)),
        ..LogOptions::default()
    };
    let (appender, reader, shutdown) = open(store.clone(), log_key(), options).unwrap();
    Log {
        appender,
        reader,
        store,
        shutdown,
    }
}

fn config(witnesses: &[&Witness], quorum: usize) -> WitnessingConfig {
    let mut c = WitnessingConfig::new(witnesses.iter().map(|w| w.endpoint()).collect(), quorum);
    c.timeout = Duration::from_millis(500);
    c.min_backoff = Duration::from_millis(20);
    c.max_backoff = Duration::from_millis(100);
    c
}

async fn submit(log: &Log, n: usize, tag: &str) -> u64 {
    let entries = (0..n).map(|i| format!("{tag}-{i}").into_bytes()).collect();
    log.appender.submit(entries).await.unwrap();
    log.reader.latest().checkpoint.size.0
}

/// Waits until a witnessed checkpoint of at least `size` is published.
async fn witnessed(w: &Witnessing, size: u64) -> Arc<SignedCheckpoint> {
    let mut rx = w.subscribe();
    let found = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(n) = rx
                .borrow_and_update()
                .clone()
                .filter(|n| n.checkpoint.size.0 >= size)
            {
                return n;
            }
            rx.changed().await.unwrap();
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("no witnessed checkpoint of size {size} within 10 s"))
}

/// The witnesses whose cosignature lines a witnessed note carries (each line checked by the quorum verifier).
fn cosigners(note: &SignedCheckpoint) -> Vec<String> {
    let keys: Vec<CosignerKey> = (1..=3)
        .map(|n| {
            CosignerKey::of(&SignerKey::from_seed(&format!("witness{n}.example"), [n; 32]).unwrap())
        })
        .collect();
    verify_witnessed(&log_key().verifier(), &keys, 0, note.note.as_bytes())
        .unwrap()
        .cosigners
        .into_iter()
        .map(|(k, _)| k.name().to_owned())
        .collect()
}

async fn stop(log: Log, w: Witnessing) {
    w.stop().await;
    drop(log.appender);
    drop(log.reader);
    tokio::task::spawn_blocking(move || log.shutdown.wait())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_quorum_of_cosignatures_is_published_and_verifies() {
    let ws = [
        Witness::start(1, &[]).await,
        Witness::start(2, &[]).await,
        Witness::start(3, &vec![Answer::Status(503); 100]).await,
    ];
    let log = open_log(memory());
    let w = Witnessing::spawn(
        log.reader.clone(),
        log.store.clone(),
        log_key().verifier(),
        config(&[&ws[0], &ws[1], &ws[2]], 2),
    )
    .unwrap();
    let size = submit(&log, 10, "a").await;
    let note = witnessed(&w, size).await;
    let keys: Vec<CosignerKey> = ws.iter().map(|w| w.key.clone()).collect();
    let checked = verify_witnessed(&log_key().verifier(), &keys, 2, note.note.as_bytes()).unwrap();
    assert_eq!(checked.signed.checkpoint.size.0, size);
    assert_eq!(cosigners(&note), ["witness1.example", "witness2.example"]);
    stop(log, w).await;
}

#[tokio::test]
async fn without_a_quorum_nothing_is_published() {
    let ws = [
        Witness::start(1, &[]).await,
        Witness::start(2, &vec![Answer::Status(403); 1000]).await,
    ];
    let log = open_log(memory());
    let w = Witnessing::spawn(
        log.reader.clone(),
        log.store.clone(),
        log_key().verifier(),
        config(&[&ws[0], &ws[1]], 2),
    )
    .unwrap();
    submit(&log, 3, "a").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(w.subscribe().borrow().is_none());
    // The refusing witness was retried with backoff, not hammered nor abandoned.
    let tries = ws[1].requests().len();
    assert!((2..=20).contains(&tries), "{tries} requests in 400 ms");
    stop(log, w).await;
}

#[tokio::test]
async fn a_conflict_with_a_size_is_resent_from_that_size_with_a_valid_proof() {
    let log = open_log(memory());
    let first = submit(&log, 5, "a").await;
    let first_root = log.reader.latest().checkpoint.root;
    let size = submit(&log, 7, "b").await;
    let ws = [Witness::start(1, &[Answer::Size(first)]).await];
    // A long backoff: the resend must come in the same round, not as a later retry.
    let mut c = config(&[&ws[0]], 1);
    c.min_backoff = Duration::from_secs(60);
    c.max_backoff = Duration::from_secs(60);
    let w = Witnessing::spawn(
        log.reader.clone(),
        log.store.clone(),
        log_key().verifier(),
        c,
    )
    .unwrap();
    witnessed(&w, size).await;
    let requests = ws[0].requests();
    assert_eq!(requests[0].old_size, 0);
    assert!(requests[0].proof.is_empty());
    assert_eq!(requests[1].old_size, first);
    let root = log.reader.latest().checkpoint.root;
    verify_consistency(
        TreeSize(first),
        TreeSize(size),
        &requests[1].proof,
        &first_root,
        &root,
    )
    .unwrap();
    // The next checkpoint goes from the size the witness cosigned, with no probing.
    let next = submit(&log, 1, "c").await;
    witnessed(&w, next).await;
    assert_eq!(ws[0].requests().last().unwrap().old_size, size);
    stop(log, w).await;
}

/// 400, 403, 404, 422, a 409 without a size (another root for this size), 500, a bad cosignature and a timeout
/// each leave that witness out; the others still make the quorum, and later checkpoints retry it.
#[tokio::test]
async fn every_refusal_leaves_only_that_witness_out() {
    let refusals = [
        Answer::Status(400),
        Answer::Status(403),
        Answer::Status(404),
        Answer::Status(422),
        Answer::Status(409),
        Answer::Status(500),
        Answer::BadCosignature,
        Answer::Hang,
    ];
    for refusal in refusals {
        let good = Witness::start(1, &[]).await;
        let bad = Witness::start(2, std::slice::from_ref(&refusal)).await;
        let log = open_log(memory());
        let w = Witnessing::spawn(
            log.reader.clone(),
            log.store.clone(),
            log_key().verifier(),
            config(&[&good, &bad], 1),
        )
        .unwrap();
        let size = submit(&log, 4, "a").await;
        let note = witnessed(&w, size).await;
        assert_eq!(cosigners(&note), ["witness1.example"], "{refusal:?}");
        // Once its backoff is over the refusing witness is asked again and cosigns.
        tokio::time::sleep(Duration::from_millis(600)).await;
        let next = submit(&log, 1, "b").await;
        let note = witnessed(&w, next).await;
        let later = tokio::time::timeout(Duration::from_secs(5), async {
            let mut rx = w.subscribe();
            loop {
                if let Some(n) = rx.borrow_and_update().clone()
                    && cosigners(&n).len() == 2
                {
                    return n;
                }
                rx.changed().await.unwrap();
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{refusal:?}: the witness was not retried ({note:?})"));
        assert_eq!(later.checkpoint.size.0, next);
        stop(log, w).await;
    }
}

#[tokio::test]
async fn the_witnessed_checkpoint_survives_a_restart() {
    let store = memory();
    let ws = [Witness::start(1, &[]).await];
    let log = open_log(store.clone());
    let w = Witnessing::spawn(
        log.reader.clone(),
        store.clone(),
        log_key().verifier(),
        config(&[&ws[0]], 1),
    )
    .unwrap();
    let size = submit(&log, 3, "a").await;
    let before = witnessed(&w, size).await;
    stop(log, w).await;
    assert_eq!(
        store.meta(META_WITNESSED).unwrap(),
        Some(before.note.clone().into_bytes())
    );

    let log = open_log(store.clone());
    let unreachable = WitnessEndpoint {
        url: "http://127.0.0.1:9".into(),
        ..ws[0].endpoint()
    };
    let mut c = config(&[&ws[0]], 1);
    c.witnesses = vec![unreachable];
    let w = Witnessing::spawn(log.reader.clone(), store.clone(), log_key().verifier(), c).unwrap();
    assert_eq!(w.subscribe().borrow().clone(), Some(before));
    stop(log, w).await;
}

#[tokio::test]
async fn rounds_are_spaced_and_ask_for_the_newest_checkpoint() {
    let ws = [Witness::start(1, &[]).await];
    let log = open_log(memory());
    let mut c = config(&[&ws[0]], 1);
    c.min_interval = Duration::from_millis(200);
    let w = Witnessing::spawn(
        log.reader.clone(),
        log.store.clone(),
        log_key().verifier(),
        c,
    )
    .unwrap();
    let started = std::time::Instant::now();
    let mut size = 0;
    for i in 0..40 {
        size = submit(&log, 1, &format!("e{i}")).await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    witnessed(&w, size).await;
    let rounds = ws[0].requests().len() as u128;
    // One round per interval at most (plus the first), far fewer than the 40 checkpoints.
    let most = started.elapsed().as_millis() / 200 + 2;
    assert!(rounds <= most, "{rounds} rounds in {:?}", started.elapsed());
    assert_eq!(
        ws[0].requests().last().unwrap().checkpoint,
        log.reader.latest().note.clone().into_bytes()
    );
    stop(log, w).await;
}

/// The value of the sample `name` with `labels` in an OpenMetrics text, parsed with a Prometheus text parser.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    let found: Vec<f64> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .filter_map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => Some(v),
            _ => None,
        })
        .collect();
    assert_eq!(found.len(), 1, "one {name}{labels:?} in\n{text}");
    found[0]
}

#[tokio::test]
async fn rounds_cosignatures_failures_and_lag_are_recorded() {
    let ws = [
        Witness::start(1, &[]).await,
        Witness::start(2, &vec![Answer::Status(403); 1000]).await,
    ];
    let log = open_log(memory());
    let metrics = Metrics::new();
    let w = Witnessing::spawn_with_metrics(
        log.reader.clone(),
        log.store.clone(),
        log_key().verifier(),
        config(&[&ws[0], &ws[1]], 1),
        metrics.clone(),
    )
    .unwrap();
    let size = submit(&log, 5, "m").await;
    witnessed(&w, size).await;
    let text = metrics.render(&LogState {
        tree_size: size + 3,
        checkpoint_timestamp: 1_700_000_000,
        now: 1_700_000_010,
        witnessed_size: Some(size),
        memory: Vec::new(),
    });
    assert!(sample(&text, "tlog_witness_rounds_total", &[]) >= 1.0);
    let one = [("witness", "witness1.example")];
    let two = [("witness", "witness2.example")];
    assert!(sample(&text, "tlog_witness_cosignatures_total", &one) >= 1.0);
    assert!(sample(&text, "tlog_witness_failures_total", &two) >= 1.0);
    assert!(sample(&text, "tlog_witnessed_checkpoints_total", &[]) >= 1.0);
    assert_eq!(sample(&text, "tlog_witnessed_tree_size", &[]), size as f64);
    assert_eq!(sample(&text, "tlog_witness_lag_entries", &[]), 3.0);
    assert_eq!(sample(&text, "tlog_checkpoint_age_seconds", &[]), 10.0);
    stop(log, w).await;
}
