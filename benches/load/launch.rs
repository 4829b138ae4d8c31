//! The server under test: a tlogd this benchmark starts (through the test suite's launcher) or a running one
//! (`--target`), and the gRPC connections to it.

use std::path::{Path, PathBuf};

use tlog_checkpoint::{SignedCheckpoint, VerifierKey, verify_checkpoint};
use tlog_proto::v1;
use tlog_suite::Tlogd;
use tonic::transport::{Channel, Endpoint};

use crate::error::{LoadError, Res};
use crate::runs::ServerStats;
use crate::{MAX_MESSAGE, Rpc};

/// The server the clients talk to: a started tlogd on a temporary folder, or `--target`.
pub(crate) struct Server {
    pub(crate) addr: String,
    pub(crate) key: VerifierKey,
    pub(crate) proc: Option<Tlogd>,
    /// Temporary folder holding `data/` and `tlogd.log`.
    pub(crate) dir: Option<tempfile::TempDir>,
    pub(crate) bin: PathBuf,
    pub(crate) no_sync: bool,
}

impl Server {
    pub(crate) fn spawn(bin: &Path, no_sync: bool) -> Res<Server> {
        let dir = temp_dir("tlog-load-")?;
        let proc = start(bin, dir.path(), no_sync)?;
        let key = parse_vkey(&proc.vkey)?;
        Ok(Server {
            addr: proc.addr.clone(),
            key,
            proc: Some(proc),
            dir: Some(dir),
            bin: bin.to_path_buf(),
            no_sync,
        })
    }

    pub(crate) fn target(addr: &str, vkey: &str) -> Res<Server> {
        let text = match std::fs::read_to_string(vkey) {
            Ok(t) => t.trim().to_string(),
            Err(_) => vkey.to_string(),
        };
        Ok(Server {
            addr: addr.to_string(),
            key: parse_vkey(&text)?,
            proc: None,
            dir: None,
            bin: PathBuf::new(),
            no_sync: false,
        })
    }

    pub(crate) fn data(&self) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.path().join("data"))
    }

    /// Restarts a started tlogd on the same data with another sync setting (the log key stays).
    pub(crate) fn restart(&mut self, no_sync: bool) -> Res<()> {
        let (Some(proc), Some(dir)) = (self.proc.take(), self.dir.as_ref()) else {
            return Ok(());
        };
        proc.stop();
        let proc = start(&self.bin, dir.path(), no_sync)?;
        self.addr = proc.addr.clone();
        self.no_sync = no_sync;
        self.proc = Some(proc);
        Ok(())
    }

    pub(crate) fn stats(&self, tree_size: u64) -> Option<ServerStats> {
        let proc = self.proc.as_ref()?;
        let pid = proc.pid().to_string();
        let data = self.data()?;
        Some(ServerStats {
            cpu: 0.0,
            rss_kib: proc_status_kib(&pid, "VmRSS:").unwrap_or(0),
            hwm_kib: proc_status_kib(&pid, "VmHWM:").unwrap_or(0),
            disk_bytes: dir_bytes(&data),
            tree_size,
            cpu_us_per_entry: None,
            written_per_entry: None,
        })
    }

    pub(crate) fn cpu_secs(&self) -> Option<f64> {
        tlog_suite::bench::cpu_secs(&self.proc.as_ref()?.pid().to_string())
    }

    /// Bytes the started tlogd has caused to be sent to storage so far (`write_bytes` of /proc/<pid>/io).
    pub(crate) fn written_bytes(&self) -> Option<u64> {
        let pid = self.proc.as_ref()?.pid();
        let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
        io.lines()
            .find_map(|l| l.strip_prefix("write_bytes:"))?
            .trim()
            .parse()
            .ok()
    }

    pub(crate) fn stop(mut self) {
        if let Some(p) = self.proc.take() {
            p.stop();
        }
    }
}

/// tlogd on `dir/data`, its stderr appended to `dir/tlogd.log`.
fn start(bin: &Path, dir: &Path, no_sync: bool) -> Res<Tlogd> {
    let args: &[&str] = if no_sync { &["--no-sync"] } else { &[] };
    Tlogd::launch(bin, &dir.join("data"), args, Some(&dir.join("tlogd.log")))
        .map_err(LoadError::Start)
}

pub(crate) fn parse_vkey(text: &str) -> Res<VerifierKey> {
    VerifierKey::parse(text.trim()).map_err(|source| LoadError::VerifierKey {
        text: text.to_string(),
        source,
    })
}

/// A `VmRSS:`-style line of /proc/<pid>/status, in KiB.
pub(crate) fn proc_status_kib(pid: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

pub(crate) fn dir_bytes(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// A connection of its own to `addr` (`http://HOST:PORT`).
pub(crate) async fn channel(addr: &str) -> Res<Channel> {
    Endpoint::from_shared(addr.to_string())
        .map_err(|source| LoadError::Address {
            addr: addr.to_string(),
            source,
        })?
        .connect()
        .await
        .map_err(|source| LoadError::Connect {
            addr: addr.to_string(),
            source,
        })
}

/// A temporary folder named `prefix…`, removed when dropped.
pub(crate) fn temp_dir(prefix: &str) -> Res<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(|source| LoadError::Io {
            what: "creating a temporary folder",
            source,
        })
}

pub(crate) async fn connect(addr: &str) -> Res<Rpc> {
    let channel = channel(addr).await?;
    Ok(v1::log_client::LogClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE))
}

/// `n` clients over `connections` connections (one each when None).
pub(crate) async fn connect_all(addr: &str, n: usize, connections: Option<usize>) -> Res<Vec<Rpc>> {
    let mut shared = Vec::new();
    for _ in 0..connections.unwrap_or(n).min(n) {
        shared.push(connect(addr).await?);
    }
    Ok((0..n).map(|i| shared[i % shared.len()].clone()).collect())
}

/// The latest checkpoint, signature verified.
pub(crate) async fn latest(rpc: &mut Rpc, key: &VerifierKey) -> Res<SignedCheckpoint> {
    let wire = rpc
        .get_checkpoint(v1::GetCheckpointRequest {
            min_size: 0,
            size: 0,
            witnessed: false,
        })
        .await?
        .into_inner();
    verify_checkpoint(key, &wire.note).map_err(LoadError::Checkpoint)
}

/// target/<profile>/tlogd next to this benchmark (target/<profile>/deps/load-<hash>).
pub(crate) fn default_tlogd() -> PathBuf {
    tlog_suite::profile_dir().join("tlogd")
}
