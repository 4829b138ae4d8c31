//! The web explorer in a real browser: Debian's Chromium, headless, driven over WebDriver (`chromedriver`) by
//! thirtyfour. A tlogd runs in this process (port 0, RocksDB in a temporary folder) with JSON audit events in it;
//! the page must verify in the browser what it shows (the checkpoint signature, the shown entry's inclusion proof,
//! the consistency proof from the checkpoint it saw before) and turn red when a proxy in front of tlogd's HTTP
//! listener tampers with one answer.
//!
//! Chromium and chromedriver come from `scripts/chromium.sh` (run by `scripts/deps.sh --tests`, so by
//! `scripts/test.sh` and CI). Without them these tests fail, naming the script: a skipped browser test would pass
//! CI silently.
//!
//! `TLOG_UPDATE_SCREENSHOTS=1` writes the screenshots taken here to `docs/explorer/` (committed, shown in
//! `docs/explorer/README.md`); otherwise they go to a temporary folder and are only checked to be PNG images.

use std::net::SocketAddr;
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header::CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use thirtyfour::{By, WebDriver};
use tlog_server::testing::{self, Rpc, Running};
use tokio::net::TcpListener;

/// How long the page may take to reach a state (Chromium on a loaded CI machine is slow to start).
const WAIT: Duration = Duration::from_secs(60);

/// One browser at a time: the tests share two CPU cores with the rest of the suite.
static BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A realistic audit event, distinct for every `i`.
fn event(i: u64) -> Vec<u8> {
    let actions = [
        "login",
        "get secret",
        "update deployment",
        "delete pod",
        "create role binding",
    ];
    json!({
        "time": format!("2026-11-27T21:{:02}:{:02}Z", (i / 60) % 60, i % 60),
        "actor": format!("user{}@example.com", i % 7),
        "action": actions[(i % actions.len() as u64) as usize],
        "resource": format!("namespaces/prod/objects/{i}"),
        "source_ip": format!("10.0.{}.{}", i / 250, i % 250 + 1),
        "seq": i,
    })
    .to_string()
    .into_bytes()
}

/// tlogd in this process, with `rpc` to add entries.
struct Log {
    server: Running,
    rpc: Rpc,
    size: u64,
    _dir: tempfile::TempDir,
}

impl Log {
    async fn start(size: u64) -> Log {
        let (server, dir) = Running::start_temporary("audit.example.com/prod", |_| ()).await;
        let rpc = server.rpc().await;
        let mut log = Log {
            server,
            rpc,
            size: 0,
            _dir: dir,
        };
        log.grow(size).await;
        log
    }

    /// Adds `n` events as one batch (one new checkpoint).
    async fn grow(&mut self, n: u64) {
        let entries = (self.size..self.size + n).map(event).collect();
        testing::submit_batch(&mut self.rpc, entries).await;
        self.size += n;
    }

    async fn stop(self) {
        drop(self.rpc);
        self.server.stop().await.unwrap();
    }
}

/// What the proxy changes in tlogd's answers.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Tamper {
    Nothing,
    /// One hash of every inclusion proof.
    InclusionProof,
    /// The root in the checkpoint note (its signature no longer matches).
    CheckpointRoot,
    /// One hash of every consistency proof.
    ConsistencyProof,
}

/// A proxy in front of tlogd's HTTP listener that passes answers on, changed as [`Tamper`] says.
struct Proxy {
    addr: SocketAddr,
    tamper: Arc<Mutex<Tamper>>,
    task: tokio::task::JoinHandle<()>,
}

struct ProxyState {
    upstream: String,
    client: reqwest::Client,
    tamper: Arc<Mutex<Tamper>>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let tamper = Arc::new(Mutex::new(Tamper::Nothing));
        let state = Arc::new(ProxyState {
            upstream,
            client: tlog_client::http::http_client(WAIT).unwrap(),
            tamper: tamper.clone(),
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = Router::new().fallback(forward).with_state(state);
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Proxy { addr, tamper, task }
    }

    fn set(&self, tamper: Tamper) {
        *self.tamper.lock().unwrap() = tamper;
    }

    fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(State(state): State<Arc<ProxyState>>, uri: Uri) -> Response {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let upstream = state
        .client
        .get(format!("{}{path}", state.upstream))
        .send()
        .await
        .unwrap();
    let status = upstream.status();
    let content_type = upstream
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_owned();
    let body = upstream.bytes().await.unwrap();
    let tamper = *state.tamper.lock().unwrap();
    let body = match (tamper, uri.path()) {
        (Tamper::InclusionProof, "/v1/proof/inclusion")
        | (Tamper::ConsistencyProof, "/v1/proof/consistency")
            if status.is_success() =>
        {
            flip_first_proof_hash(&body)
        }
        (Tamper::CheckpointRoot, "/checkpoint") => forge_root(&body),
        _ => body,
    };
    (
        StatusCode::from_u16(status.as_u16()).unwrap(),
        [(CONTENT_TYPE, content_type)],
        body,
    )
        .into_response()
}

/// The JSON proof answer with one bit of its first hash flipped.
fn flip_first_proof_hash(body: &[u8]) -> Bytes {
    let mut answer: Value = serde_json::from_slice(body).unwrap();
    let first = answer["proof"][0].as_str().expect("a non-empty proof");
    let flipped = match first.as_bytes()[0] {
        b'0' => format!("1{}", &first[1..]),
        _ => format!("0{}", &first[1..]),
    };
    answer["proof"][0] = Value::String(flipped);
    serde_json::to_vec(&answer).unwrap().into()
}

/// The checkpoint note with another root (all zero bytes), its signature lines kept.
fn forge_root(note: &[u8]) -> Bytes {
    let text = std::str::from_utf8(note).unwrap();
    let mut lines: Vec<&str> = text.split('\n').collect();
    lines[2] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    lines.join("\n").into_bytes().into()
}

/// Headless Chromium behind its own chromedriver.
struct Browser {
    client: WebDriver,
    driver: Child,
}

/// `name` on `PATH`, or a failure naming the script that installs it.
fn installed(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` is not installed: run scripts/chromium.sh (Debian's chromium and chromium-driver); \
                 the web explorer's browser tests need it"
            )
        })
}

impl Browser {
    async fn start() -> Browser {
        // thirtyfour's reqwest client needs a process-wide rustls provider (reqwest is built without one); this
        // installs it.
        tlog_client::http::http_client(WAIT).unwrap();
        let chromium = installed("chromium");
        let chromedriver = installed("chromedriver");
        // chromedriver takes no port 0: take a free port and hand it over.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            // Its own process group, with the Chromium it starts: see `Drop`.
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting chromedriver");
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                // --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
                "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                         "--window-size=1280,1500", "--hide-scrollbars"],
            },
        });
        let caps = match caps {
            Value::Object(map) => map,
            _ => unreachable!(),
        };
        let webdriver = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        let client = loop {
            match WebDriver::new(&webdriver, caps.clone()).await {
                Ok(client) => break client,
                // chromedriver is still starting.
                Err(_) if started.elapsed() < WAIT => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("no WebDriver session from chromedriver at {webdriver}: {e}"),
            }
        };
        Browser { client, driver }
    }

    async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    /// The `data-state` and text of element `id`.
    async fn state(&self, id: &str) -> (String, String) {
        let element = self.client.find(By::Id(id)).await.unwrap();
        let state = element
            .attr("data-state")
            .await
            .unwrap()
            .unwrap_or_default();
        (state, element.text().await.unwrap())
    }

    /// Waits until element `id` leaves the `pending` state with a text `accept` takes; returns its state and text.
    async fn settled(&self, id: &str, accept: impl Fn(&str) -> bool) -> (String, String) {
        let started = Instant::now();
        loop {
            let (state, text) = self.state(id).await;
            if state != "pending" && accept(&text) {
                return (state, text);
            }
            if started.elapsed() > WAIT {
                let banner = self.state("status").await;
                panic!("#{id} still {state:?} {text:?} after {WAIT:?}; banner {banner:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The banner once the page has checked everything it shows.
    async fn verdict(&self) -> (String, String) {
        self.settled("status", |_| true).await
    }

    async fn lookup(&self, query: &str) {
        let input = self.client.find(By::Id("lookup-input")).await.unwrap();
        input.clear().await.unwrap();
        input.send_keys(query).await.unwrap();
        self.client
            .find(By::Id("lookup-button"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    async fn refresh(&self) {
        self.client
            .find(By::Id("refresh"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    /// Takes a screenshot `name`.png (see the file's header for where it goes).
    async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot_as_png().await.unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{name}: not a PNG");
        let dir = if std::env::var_os("TLOG_UPDATE_SCREENSHOTS").is_some() {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/explorer")
        } else {
            std::env::temp_dir().join("tlog-explorer-screenshots")
        };
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    /// Ends the browser session; dropping the `Browser` stops chromedriver.
    async fn close(self) {
        self.client.clone().quit().await.unwrap();
    }
}

/// chromedriver and its Chromium stop with their `Browser`, also when a test fails before `close` (they would
/// outlive the test run): the whole process group is killed, as Chromium outlives a killed chromedriver.
impl Drop for Browser {
    fn drop(&mut self) {
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.driver.wait();
    }
}

/// The hash the page names for an entry: hex SHA-256(0x00 || entry).
fn leaf_hex(entry: &[u8]) -> String {
    tlog_core::leaf_hash(entry).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_verifies_the_checkpoint_and_the_newest_entry() {
    let _one = BROWSER.lock().await;
    let log = Log::start(300).await;
    let browser = Browser::start().await;
    browser.goto(&format!("{}/", log.server.http_url())).await;

    let (state, text) = browser.verdict().await;
    assert_eq!((state.as_str(), text.as_str()), ("ok", "verified"));
    let (state, text) = browser.state("cp-state").await;
    assert_eq!(state, "ok", "{text}");
    assert!(text.contains("size 300"), "{text}");
    let (state, text) = browser.state("entry-state").await;
    assert_eq!(state, "ok", "{text}");
    assert!(text.starts_with("entry 299 "), "{text}");
    let key = browser.client.find(By::Id("key")).await.unwrap();
    assert!(
        key.text()
            .await
            .unwrap()
            .starts_with("audit.example.com/prod+"),
        "the page names the key it verified with"
    );
    browser.screenshot("checkpoint").await;
    browser.close().await;
    log.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookup_by_index_verifies_the_entry() {
    let _one = BROWSER.lock().await;
    let log = Log::start(300).await;
    let browser = Browser::start().await;
    browser.goto(&format!("{}/", log.server.http_url())).await;
    browser.verdict().await;

    browser.lookup("137").await;
    let (state, text) = browser
        .settled("entry-state", |t| t.starts_with("entry 137"))
        .await;
    assert_eq!(state, "ok", "{text}");
    let leaf = browser.client.find(By::Id("entry-leaf")).await.unwrap();
    assert_eq!(leaf.text().await.unwrap(), leaf_hex(&event(137)));
    let body = browser.client.find(By::Id("entry-body")).await.unwrap();
    assert!(
        body.text()
            .await
            .unwrap()
            .contains("\"resource\": \"namespaces/prod/objects/137\"")
    );
    assert_eq!(browser.verdict().await.0, "ok");
    browser.screenshot("entry").await;
    browser.close().await;
    log.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookup_by_leaf_hash_finds_and_verifies_the_entry() {
    let _one = BROWSER.lock().await;
    let log = Log::start(300).await;
    let browser = Browser::start().await;
    browser.goto(&format!("{}/", log.server.http_url())).await;
    browser.verdict().await;

    browser.lookup(&leaf_hex(&event(42))).await;
    let (state, text) = browser
        .settled("entry-state", |t| !t.starts_with("entry 299"))
        .await;
    assert_eq!(state, "ok", "{text}");
    assert!(text.starts_with("entry 42 is included"), "{text}");
    browser.close().await;
    log.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_the_log_does_not_hold_is_not_found_rather_than_unverified() {
    let _one = BROWSER.lock().await;
    let log = Log::start(300).await;
    let browser = Browser::start().await;
    browser.goto(&format!("{}/", log.server.http_url())).await;
    browser.verdict().await;

    browser.lookup("5000").await;
    let (state, text) = browser
        .settled("entry-state", |t| t.starts_with("entry 5000"))
        .await;
    assert_eq!(state, "info", "{text}");
    assert!(text.contains("not found"), "{text}");
    assert_eq!(browser.verdict().await, ("ok".into(), "verified".into()));
    browser.close().await;
    log.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consistency_with_the_checkpoint_seen_before_is_verified() {
    let _one = BROWSER.lock().await;
    // From a power of two, where RFC 9162's verifier starts from the old root itself (the tampered test below
    // starts from 300, the other branch).
    let mut log = Log::start(256).await;
    let browser = Browser::start().await;
    browser.goto(&format!("{}/", log.server.http_url())).await;
    let (_, text) = browser.settled("consistency-state", |_| true).await;
    assert!(text.starts_with("first visit"), "{text}");

    log.grow(121).await;
    browser.refresh().await;
    let (state, text) = browser
        .settled("consistency-state", |t| !t.starts_with("first visit"))
        .await;
    assert_eq!(state, "ok", "{text}");
    assert!(
        text.contains("tree size 256") && text.contains("tree size 377"),
        "{text}"
    );
    assert_eq!(browser.verdict().await.0, "ok");
    browser.close().await;
    log.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_inclusion_proof_turns_the_page_red() {
    let _one = BROWSER.lock().await;
    let log = Log::start(300).await;
    let proxy = Proxy::start(log.server.http_url()).await;
    proxy.set(Tamper::InclusionProof);
    let browser = Browser::start().await;
    browser.goto(&proxy.url()).await;

    let (state, text) = browser.verdict().await;
    assert_eq!(state, "bad", "{text}");
    assert!(
        text.contains("inclusion proof does not lead to the checkpoint's root"),
        "{text}"
    );
    // The checkpoint itself was not touched, and the page says so.
    assert_eq!(browser.state("cp-state").await.0, "ok");
    browser.lookup("12").await;
    let (state, _) = browser
        .settled("entry-state", |t| t.starts_with("entry 12"))
        .await;
    assert_eq!(state, "bad");
    browser.screenshot("tampered-proof").await;
    browser.close().await;
    log.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_checkpoint_turns_the_page_red() {
    let _one = BROWSER.lock().await;
    let log = Log::start(300).await;
    let proxy = Proxy::start(log.server.http_url()).await;
    proxy.set(Tamper::CheckpointRoot);
    let browser = Browser::start().await;
    browser.goto(&proxy.url()).await;

    let (state, text) = browser.verdict().await;
    assert_eq!(state, "bad", "{text}");
    assert!(
        text.contains("the log's signature on the checkpoint does not verify"),
        "{text}"
    );
    browser.screenshot("forged-checkpoint").await;
    browser.close().await;
    log.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_consistency_proof_turns_the_page_red() {
    let _one = BROWSER.lock().await;
    let mut log = Log::start(300).await;
    let proxy = Proxy::start(log.server.http_url()).await;
    let browser = Browser::start().await;
    browser.goto(&proxy.url()).await;
    assert_eq!(browser.verdict().await.0, "ok");

    log.grow(77).await;
    proxy.set(Tamper::ConsistencyProof);
    browser.refresh().await;
    let (state, text) = browser
        .settled("consistency-state", |t| !t.starts_with("first visit"))
        .await;
    assert_eq!(state, "bad", "{text}");
    assert!(text.contains("consistency proof does not lead"), "{text}");
    assert_eq!(browser.verdict().await.0, "bad");
    browser.close().await;
    log.stop().await;
}
