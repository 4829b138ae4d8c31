//! Shared by the integration tests: an in-memory log that signs checkpoints and proves consistency, a witness
//! running in-process on a port-0 listener, and a POST that keeps status, content type and body.
#![allow(dead_code)] // Each test binary uses its own part.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use tlog_checkpoint::witness::AddCheckpoint;
use tlog_checkpoint::{Checkpoint, CosignerKey, SignerKey, sign_checkpoint};
use tlog_core::{CompactRange, Hash, NodeId, TreeSize, consistency_plan, leaf_hash, node_hash};
use tlog_witness::{LogConfig, Witness, WitnessConfig};

pub const ORIGIN: &str = "log.example/test";

/// The log's signing key (its name is the origin).
pub fn log_key() -> SignerKey {
    SignerKey::from_seed(ORIGIN, [1; 32]).unwrap()
}

/// A log held in memory: every node of the tree by level, and the root of every size.
pub struct TestLog {
    key: SignerKey,
    /// `levels[l][i]`: the hash of node (l, i), for every complete node.
    levels: Vec<Vec<Hash>>,
    /// `roots[s]`: the root of the tree of size `s`, from `CompactRange` (independent of `levels`).
    roots: Vec<Hash>,
}

impl TestLog {
    /// `leaves` entries; from index `fork_at` on, a fork's entries differ (same key and origin).
    pub fn new(key: SignerKey, leaves: u64, fork_at: Option<u64>) -> TestLog {
        let entry = |i: u64| match fork_at {
            Some(f) if i >= f => leaf_hash(format!("fork entry {i}").as_bytes()),
            _ => leaf_hash(format!("entry {i}").as_bytes()),
        };
        let mut levels = vec![(0..leaves).map(entry).collect::<Vec<_>>()];
        while levels.last().unwrap().len() > 1 {
            let below = levels.last().unwrap();
            let up = below
                .chunks_exact(2)
                .map(|pair| node_hash(&pair[0], &pair[1]))
                .collect();
            levels.push(up);
        }
        let mut range = CompactRange::new();
        let mut roots = vec![range.root()];
        for leaf in &levels[0] {
            range.append(*leaf, |_, _| {}).unwrap();
            roots.push(range.root());
        }
        TestLog { key, levels, roots }
    }

    pub fn size(&self) -> u64 {
        self.levels[0].len() as u64
    }

    pub fn root(&self, size: u64) -> Hash {
        self.roots[size as usize]
    }

    fn node(&self, id: NodeId) -> Hash {
        self.levels[id.level as usize][id.index as usize]
    }

    /// The RFC 6962 consistency proof from `old` to `new` (empty from 0 or between equal sizes).
    pub fn proof(&self, old: u64, new: u64) -> Vec<Hash> {
        if old == 0 || old == new {
            return Vec::new();
        }
        let plan = consistency_plan(TreeSize(old), TreeSize(new)).unwrap();
        let hashes: Vec<Hash> = plan.node_ids().iter().map(|&id| self.node(id)).collect();
        plan.build(&hashes).unwrap()
    }

    pub fn checkpoint(&self, size: u64) -> Checkpoint {
        Checkpoint::new(ORIGIN, TreeSize(size), self.root(size)).unwrap()
    }

    /// The signed note of `size`, as tlogd publishes it (a `0x01` signature and the log's own timestamp line).
    pub fn note(&self, size: u64) -> String {
        sign_checkpoint(&self.key, &self.checkpoint(size), 1_700_000_000)
            .unwrap()
            .note
    }

    /// An `add-checkpoint` body from `old` to `size` with the right proof.
    pub fn request(&self, old: u64, size: u64) -> Vec<u8> {
        AddCheckpoint {
            old_size: old,
            proof: self.proof(old, size),
            checkpoint: self.note(size).into_bytes(),
        }
        .encode()
    }
}

/// A witness of the test log in `dir`.
pub fn config(dir: &Path) -> WitnessConfig {
    WitnessConfig {
        data_dir: dir.to_owned(),
        name: Some("witness.example/w1".into()),
        logs: vec![LogConfig::from_key(log_key().verifier())],
        ..WitnessConfig::default()
    }
}

/// A witness serving in-process on a free port, as the library offers it.
pub struct Running {
    /// The `add-checkpoint` URL.
    pub url: String,
    pub key: CosignerKey,
    running: tlog_witness::Running,
}

pub async fn start(mut config: WitnessConfig) -> Running {
    config.listen = "127.0.0.1:0".parse().unwrap();
    let running = Witness::start(config).await.unwrap();
    Running {
        url: running.url.clone(),
        key: running.started.cosigner_key.clone(),
        running,
    }
}

impl Running {
    /// Stops the server and waits until it has released everything (the data folder can be reopened).
    pub async fn stop(self) {
        self.running.stop().await.unwrap();
    }
}

pub fn client() -> reqwest::Client {
    tlog_client::http::http_client(Duration::from_secs(10)).unwrap()
}

/// A witness's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: String,
}

pub async fn post(client: &reqwest::Client, url: &str, body: Vec<u8>) -> reqwest::Result<Answer> {
    let response = client.post(url).body(body).send().await?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.text().await?;
    Ok(Answer {
        status,
        content_type,
        body,
    })
}

/// A `tlog-witness` process; killed with SIGKILL when dropped (a failing test leaves nothing running).
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the binary with `--data dir --listen 127.0.0.1:0` and `args`, and reads its first line, `listening
/// on ADDR`. Returns the process, ADDR and the rest of its stdout.
pub fn spawn_binary(dir: &Path, args: &[String]) -> (Process, String, BufReader<ChildStdout>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tlog-witness"))
        .arg("--data")
        .arg(dir)
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        // Refused forks are logged as warnings; only errors are worth reading here.
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let process = Process(child);
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let addr = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("the witness did not start (its error is above): {line:?}"))
        .trim()
        .to_owned();
    (process, addr, stdout)
}

/// Keeps reading a witness's stdout so that its later lines never meet a closed pipe.
pub fn drain(mut stdout: BufReader<ChildStdout>) {
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
}
