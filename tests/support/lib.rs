//! Shared helpers for the end-to-end tests in `tests/`: locating the workspace binaries, running a real `tlogd`
//! on port 0 with RocksDB in a temporary folder, the entries and request helpers every gRPC test uses, and
//! ([`cli`]) running the `tlog` binary, ([`archive`]) SeaweedFS and the archive, and ([`bench`]) what the
//! end-to-end benchmarks share.

pub mod archive;
pub mod bench;
pub mod cli;

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The target directory's profile folder this test binary was built into (`target/debug`).
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/<test>-<hash>
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_path_buf()
}

/// Path of a workspace binary (`tlogd`, `tlog`), built next to this test binary. `cargo test --workspace` builds
/// both (their packages have integration tests); a narrower run (`--test api`) neither builds a missing binary nor
/// rebuilds a stale one, so run `cargo build --workspace --all-targets` first. Tests do not run cargo themselves:
/// a build from inside a test would hide its output, race other test binaries and may unify features differently.
pub fn bin(name: &str) -> PathBuf {
    let path = profile_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --all-targets` (with `--release` for a release test run) \
         before running tests that start it",
        path.display()
    );
    path
}

/// `size` bytes: `prefix`, then xorshift64 output from `seed`. Incompressible, so LZ4 does not flatter the disk
/// bytes per entry of a benchmark, and deterministic, so an entry can be rebuilt to check an answer about it.
pub fn incompressible_entry(prefix: &[u8], seed: u64, size: usize) -> Vec<u8> {
    let mut e = Vec::with_capacity(size + 8);
    e.extend_from_slice(prefix);
    // xorshift64 never leaves 0, so 0 is moved elsewhere; every other seed is its own state (`seed | 1` made seeds
    // 2k and 2k + 1 give the same entry, so benches that counted them acknowledged duplicates).
    let mut x = if seed == 0 {
        0x9e37_79b9_7f4a_7c15
    } else {
        seed
    };
    while e.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        e.extend_from_slice(&x.to_le_bytes());
    }
    e.truncate(size);
    e
}

/// Runs `tlogd verify --data <data>` (the offline integrity check) and returns its exit code (-1 if killed by a
/// signal) and everything it printed, stdout then stderr.
pub fn tlogd_verify(data: &Path) -> (i32, String) {
    let out = Command::new(bin("tlogd"))
        .args(["verify", "--data"])
        .arg(data)
        .output()
        .expect("running tlogd verify");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// A running `tlogd`, killed when dropped.
pub struct Tlogd {
    /// `http://127.0.0.1:PORT`
    pub addr: String,
    /// `http://127.0.0.1:PORT` of its C2SP tlog-tiles listener; `None` when started with `--no-http`.
    pub http: Option<String>,
    /// The log's verifier key (C2SP vkey string).
    pub vkey: String,
    pub origin: String,
    pub data: PathBuf,
    child: Child,
}

impl Tlogd {
    /// Starts `tlogd --data <data_dir> --listen 127.0.0.1:0 --http-listen 127.0.0.1:0 <extra_args>` and waits
    /// until it serves.
    pub fn start(data_dir: &Path, extra_args: &[&str]) -> Tlogd {
        Self::try_start(data_dir, extra_args).unwrap_or_else(|e| panic!("tlogd did not start: {e}"))
    }

    /// Like [`Tlogd::start`], but returns what tlogd said when it did not start (for tests of refusals).
    pub fn try_start(data_dir: &Path, extra_args: &[&str]) -> Result<Tlogd, String> {
        Self::launch(&bin("tlogd"), data_dir, extra_args, None)
    }

    /// Starts the tlogd at `tlogd` like [`Tlogd::try_start`]. With `stderr_log`, tlogd's stderr is appended to
    /// that file instead of a pipe and its stdout is drained after startup: a long-running caller (the load
    /// benchmark) must neither fill a pipe nobody reads nor close one tlogd may still print to.
    pub fn launch(
        tlogd: &Path,
        data_dir: &Path,
        extra_args: &[&str],
        stderr_log: Option<&Path>,
    ) -> Result<Tlogd, String> {
        Self::launch_with_env(tlogd, data_dir, extra_args, stderr_log, &[])
    }

    /// [`Tlogd::start`] with extra environment variables (the AWS settings of an archive).
    pub fn start_with_env(data_dir: &Path, extra_args: &[&str], env: &[(&str, String)]) -> Tlogd {
        Self::launch_with_env(&bin("tlogd"), data_dir, extra_args, None, env)
            .unwrap_or_else(|e| panic!("tlogd did not start: {e}"))
    }

    /// [`Tlogd::launch`] with extra environment variables.
    pub fn launch_with_env(
        tlogd: &Path,
        data_dir: &Path,
        extra_args: &[&str],
        stderr_log: Option<&Path>,
        env: &[(&str, String)],
    ) -> Result<Tlogd, String> {
        let stderr = match stderr_log {
            Some(log) => OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .map_err(|e| format!("creating {}: {e}", log.display()))?
                .into(),
            None => Stdio::piped(),
        };
        let mut child = Command::new(tlogd)
            .arg("--data")
            .arg(data_dir)
            .args(["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
            .args(extra_args)
            .env("RUST_LOG", "warn")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("spawning {}: {e}", tlogd.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (mut vkey, mut origin, mut addr, mut http) = (None, None, None, None);
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut lines = BufReader::new(stdout).lines();
        for line in lines.by_ref() {
            let line = line.map_err(|e| e.to_string())?;
            if let Some(v) = line.strip_prefix("tlogd: verifier key ") {
                vkey = Some(v.to_string());
            } else if let Some(o) = line.strip_prefix("tlogd: origin ") {
                origin = Some(o.to_string());
            } else if let Some(a) = line.strip_prefix("tlogd: http listening on ") {
                http = Some(format!("http://{a}"));
            } else if let Some(a) = line.strip_prefix("tlogd: listening on ") {
                addr = Some(format!("http://{a}"));
                break;
            }
            if Instant::now() > deadline {
                break;
            }
        }
        if stderr_log.is_some() {
            std::thread::spawn(move || lines.for_each(drop));
        } else {
            drop(lines);
        }
        match (addr, vkey, origin) {
            (Some(addr), Some(vkey), Some(origin)) => Ok(Tlogd {
                addr,
                http,
                vkey,
                origin,
                data: data_dir.to_path_buf(),
                child,
            }),
            _ => {
                let _ = child.kill();
                let out = child.wait_with_output().map_err(|e| e.to_string())?;
                match stderr_log {
                    Some(log) => Err(format!(
                        "its log ({}):\n{}",
                        log.display(),
                        std::fs::read_to_string(log).unwrap_or_default()
                    )),
                    None => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
                }
            }
        }
    }

    /// Stops the server gracefully (SIGTERM: it finishes the batch in flight) and waits for it.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Tlogd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Deterministic test entry `i` (a small JSON event, distinct for every `i`).
pub fn event(i: u64) -> Vec<u8> {
    format!("{{\"action\":\"deploy\",\"n\":{i}}}").into_bytes()
}

/// The raw gRPC client (no verification), for tests of what the server answers.
pub type Rpc = tlog_proto::LogClient<tonic::transport::Channel>;

/// Submits the events of `range` as one batch with write token `token`; panics if the log refuses it.
pub async fn submit_events(rpc: &mut Rpc, token: &str, range: Range<u64>) {
    let batch = tlog_proto::v1::SubmitBatchRequest {
        entries: range.map(event).collect(),
        client_tag: 0,
        shared_checkpoint: false,
        multiproof: false,
    };
    rpc.submit_batch(authed(token, batch)).await.unwrap();
}

/// The first page `GetEntries` streams for `[start, end)` (`None`: the stream ended without one); panics if the
/// call or the stream fails.
pub async fn first_page(
    rpc: &mut Rpc,
    start: u64,
    end: u64,
) -> Option<tlog_proto::v1::EntriesPage> {
    let request = tlog_proto::v1::GetEntriesRequest { start, end };
    let mut pages = rpc.get_entries(request).await.unwrap().into_inner();
    pages.message().await.unwrap()
}

/// The checkpoint the log published for exactly `size`; panics if the call fails.
pub async fn checkpoint_at(rpc: &mut Rpc, size: u64) -> tlog_proto::v1::SignedCheckpoint {
    let request = tlog_proto::v1::GetCheckpointRequest {
        size,
        ..Default::default()
    };
    rpc.get_checkpoint(request).await.unwrap().into_inner()
}

/// `message` as a request carrying `authorization: Bearer <token>`.
pub fn authed<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    r.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("token is ASCII"),
    );
    r
}

/// The status code of a failed call, `None` if it succeeded.
pub fn code<T>(r: Result<T, tonic::Status>) -> Option<tonic::Code> {
    r.err().map(|s| s.code())
}
