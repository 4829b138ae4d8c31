//! Faults beyond SIGKILL, against the real `tlogd` on a real filesystem (issue 19): the disk filling up, fsync
//! failing, a slow disk and a power cut.
//!
//! Disk full: the data folder sits on its own small tmpfs (mounting one needs root, as CI has; without it the tests
//! fail and say so). A filler file takes the free space away and gives it back. Each case asserts that:
//! - writes are refused while the disk is full, with the documented status, and reads go on;
//! - writes resume by themselves once space returns, at the next index (no gap, nothing signed for a batch that
//!   was not written);
//! - every acknowledged entry is in the log, byte for byte, and `tlogd verify` passes afterwards.
//!
//! I/O errors, a slow disk and power cuts are injected below RocksDB by an `LD_PRELOAD` shim around fsync,
//! fdatasync, sync_file_range, write, pwrite, pwritev and rename (`tests/faultfs/iofault.c`, compiled here with the
//! machine's C compiler), told what to do through a control file while tlogd runs. Each case asserts that every
//! acknowledged entry is in the restarted log byte for byte, that every checkpoint handed out (receipts,
//! `GetCheckpoint`, `WatchCheckpoints`) is a prefix of it (so no size has two roots and no published checkpoint
//! lacks its batch), and that `tlogd verify` passes.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tlog_checkpoint::{SignedCheckpoint, VerifierKey};
use tlog_client::{ClientError, LogClient};
use tlog_core::{CompactRange, Hash, LeafIndex, TreeSize, leaf_hash};
use tlog_suite::{Tlogd, profile_dir, tlogd_verify};
use tonic::Code;

const MIB: u64 = 1 << 20;

/// A tmpfs of its own, unmounted when dropped.
struct SmallFs {
    _dir: tempfile::TempDir,
    mount: PathBuf,
}

impl SmallFs {
    fn new(bytes: u64) -> SmallFs {
        let dir = tempfile::tempdir().unwrap();
        let mount = dir.path().join("fs");
        std::fs::create_dir(&mount).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(&mount)
            .output()
            .expect("running mount");
        assert!(
            out.status.success(),
            "mounting a {bytes}-byte tmpfs for the data folder failed (these tests need root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallFs { _dir: dir, mount }
    }

    fn free(&self) -> u64 {
        let out = Command::new("df")
            .args(["--output=avail", "-B1"])
            .arg(&self.mount)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines().nth(1).unwrap().trim().parse().unwrap()
    }

    /// Writes a filler file that leaves about `leave` bytes free; returns its path.
    fn fill(&self, leave: u64) -> PathBuf {
        let path = self.mount.join("filler");
        let size = self.free().saturating_sub(leave);
        let file = std::fs::File::create(&path).unwrap();
        // tmpfs counts written pages, not a sparse length: write the bytes out.
        let chunk = vec![0x5a; MIB as usize];
        let mut file = std::io::BufWriter::new(file);
        let mut left = size;
        while left > 0 {
            let n = left.min(MIB);
            if std::io::Write::write_all(&mut file, &chunk[..n as usize]).is_err() {
                break;
            }
            left -= n;
        }
        let _ = std::io::Write::flush(&mut file);
        path
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mount).status();
    }
}

/// A log on `fs` and a client of it.
async fn start(fs: &SmallFs, extra: &[&str]) -> (Tlogd, LogClient) {
    let args = [&["--origin", "example.com/faults", "--no-http"], extra].concat();
    let server = Tlogd::start(&fs.mount.join("data"), &args);
    let key = VerifierKey::parse(&server.vkey).unwrap();
    let client = LogClient::connect(&server.addr, key).await.unwrap();
    (server, client)
}

fn entries(from: u64, n: u64, bytes: usize) -> Vec<Vec<u8>> {
    (from..from + n)
        .map(|i| {
            let mut e = format!("{{\"fault\":{i},\"pad\":\"").into_bytes();
            e.resize(bytes - 2, b'x');
            e.extend_from_slice(b"\"}");
            e
        })
        .collect()
}

/// Everything acknowledged so far, by index.
#[derive(Default)]
struct Acked(Vec<(u64, Vec<u8>)>);

impl Acked {
    async fn submit(&mut self, client: &LogClient, batch: Vec<Vec<u8>>) -> Result<(), ClientError> {
        let receipts = client.submit_batch(&batch).await?;
        for (r, e) in receipts.iter().zip(batch) {
            self.0.push((r.index().0, e));
        }
        Ok(())
    }

    /// Submits batches of 100 entries of 1 KiB until one is refused; returns the refusal.
    async fn fill_log(&mut self, client: &LogClient) -> tonic::Status {
        for round in 0..10_000u64 {
            match self
                .submit(client, entries(1_000_000 + round * 100, 100, 1024))
                .await
            {
                Ok(()) => {}
                Err(ClientError::Rpc(status)) => return *status,
                Err(e) => panic!("a write failed other than with a status: {e}"),
            }
        }
        panic!("the disk never filled up");
    }

    /// Asserts that every acknowledged entry is in the log at its index, byte for byte.
    async fn check(&self, client: &mut LogClient) {
        let size = client.checkpoint().await.unwrap().checkpoint.size.0;
        let stored = client
            .entries_vec(LeafIndex(0), LeafIndex(size))
            .await
            .unwrap();
        for (index, entry) in &self.0 {
            assert_eq!(
                stored.get(*index as usize),
                Some(entry),
                "acknowledged entry {index} is not in the log as acknowledged"
            );
        }
    }
}

/// Retries one small write until it succeeds, for at most `within`; returns its index and how long it took.
async fn write_resumes(client: &LogClient, acked: &mut Acked, within: Duration) -> (u64, Duration) {
    let began = Instant::now();
    loop {
        let batch = entries(9_000_000 + began.elapsed().as_millis() as u64, 1, 64);
        match acked.submit(client, batch).await {
            Ok(()) => return (acked.0.last().unwrap().0, began.elapsed()),
            Err(e) if began.elapsed() < within => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("writes did not resume within {within:?} after space returned: {e}"),
        }
    }
}

async fn reads_go_on(client: &mut LogClient, acked: &Acked) {
    let cp = client.checkpoint().await.unwrap();
    let (index, entry) = acked.0.last().unwrap();
    let proof = client
        .inclusion_by_index(LeafIndex(*index), Some(cp.checkpoint.size))
        .await
        .expect("reads go on while the disk is full");
    assert_eq!(proof.leaf_hash(), tlog_core::leaf_hash(entry));
}

fn verify_clean(data: &Path) {
    let (code, text) = tlogd_verify(data);
    assert_eq!(code, 0, "tlogd verify after the full disk:\n{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn below_the_free_space_reserve_writes_are_refused_then_resume_by_themselves() {
    let fs = SmallFs::new(256 * MIB);
    let reserve = 64 * MIB;
    let (server, mut client) = start(&fs, &["--min-free-bytes", &reserve.to_string()]).await;
    let mut acked = Acked::default();
    acked.submit(&client, entries(0, 100, 256)).await.unwrap();

    let filler = fs.fill(reserve + 4 * MIB);
    let refused = acked.fill_log(&client).await;
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused.message().contains("disk full") && refused.message().contains("min_free_bytes"),
        "{}",
        refused.message()
    );
    assert!(
        fs.free() > MIB,
        "the reserve let the disk fill up completely"
    );
    reads_go_on(&mut client, &acked).await;
    let size_when_full = client.checkpoint().await.unwrap().checkpoint.size.0;

    std::fs::remove_file(filler).unwrap();
    let (index, took) = write_resumes(&client, &mut acked, Duration::from_secs(10)).await;
    assert_eq!(
        index, size_when_full,
        "the first write after the full disk left a gap"
    );
    eprintln!("writes resumed {took:?} after space returned, at index {index}");
    acked.check(&mut client).await;
    client
        .consistency(
            &client
                .checkpoint_at(TreeSize(size_when_full))
                .await
                .unwrap(),
            None,
        )
        .await
        .unwrap();
    let data = server.data.clone();
    server.stop();
    verify_clean(&data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_reserve_rocksdb_meets_the_full_disk_and_recovers_once_space_returns() {
    let fs = SmallFs::new(256 * MIB);
    let (server, mut client) = start(&fs, &["--min-free-bytes", "0"]).await;
    let mut acked = Acked::default();
    acked.submit(&client, entries(0, 100, 256)).await.unwrap();

    let filler = fs.fill(2 * MIB);
    let refused = acked.fill_log(&client).await;
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert!(
        refused.message().contains("No space left on device"),
        "{}",
        refused.message()
    );
    reads_go_on(&mut client, &acked).await;
    let size_when_full = client.checkpoint().await.unwrap().checkpoint.size.0;

    // RocksDB polls the free space every 5 s and resumes once its memtable budget fits.
    std::fs::remove_file(filler).unwrap();
    let (index, took) = write_resumes(&client, &mut acked, Duration::from_secs(30)).await;
    assert_eq!(
        index, size_when_full,
        "the first write after the full disk left a gap"
    );
    eprintln!("RocksDB resumed {took:?} after space returned, at index {index}");
    acked.check(&mut client).await;
    let data = server.data.clone();
    server.stop();
    verify_clean(&data);
}

// ---- I/O errors, slow disks and power cuts, injected below RocksDB ----

const ORIGIN: &str = "example.com/faults";

/// The I/O fault shim, compiled once per test run into the target folder.
fn iofault_library() -> &'static Path {
    static LIBRARY: OnceLock<PathBuf> = OnceLock::new();
    LIBRARY.get_or_init(|| {
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/faultfs/iofault.c");
        let library = profile_dir().join("libiofault.so");
        let building = profile_dir().join(format!("libiofault.so.{}", std::process::id()));
        let out = Command::new("cc")
            .args(["-shared", "-fPIC", "-O2", "-o"])
            .arg(&building)
            .arg(&source)
            .arg("-ldl")
            .output()
            .unwrap_or_else(|e| {
                panic!("running cc to build the I/O fault shim failed (these tests need a C compiler): {e}")
            });
        assert!(
            out.status.success(),
            "compiling {} failed:\n{}",
            source.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::rename(&building, &library).unwrap();
        library
    })
}

/// The shim's control file and journal for one tlogd, and the data folder whose RocksDB files it affects.
struct IoFault {
    dir: tempfile::TempDir,
    data: PathBuf,
}

impl IoFault {
    fn new() -> IoFault {
        let dir = tempfile::tempdir().unwrap();
        // The shim matches the paths the kernel reports (/proc/self/fd), so the folder's canonical name.
        let data = dir.path().canonicalize().unwrap().join("data");
        let fault = IoFault { dir, data };
        fault.set("");
        fault
    }

    fn control(&self) -> PathBuf {
        self.dir.path().join("iofault")
    }

    /// What the shim does from now on (see tests/faultfs/iofault.c): "" (nothing), "fsync=eio",
    /// "fsync=delay:MS", "write=eio", "track".
    fn set(&self, mode: &str) {
        std::fs::write(self.control(), mode).unwrap();
    }

    /// The shim's journal: one line per failed, delayed or tracked call.
    fn journal(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("iofault.log")).unwrap_or_default()
    }

    /// Starts tlogd on the data folder with the shim preloaded.
    fn start(&self, extra: &[&str]) -> Tlogd {
        let env = [
            ("LD_PRELOAD", iofault_library().display().to_string()),
            (
                "TLOG_IOFAULT_PREFIX",
                self.data.join("db").display().to_string(),
            ),
            ("TLOG_IOFAULT_CONTROL", self.control().display().to_string()),
        ];
        Tlogd::start_with_env(&self.data, &[&["--no-http"], extra].concat(), &env)
    }

    /// Starts tlogd on the data folder without the shim (a healthy disk).
    fn start_healthy(&self, extra: &[&str]) -> Tlogd {
        Tlogd::start(&self.data, &[&["--no-http"], extra].concat())
    }
}

/// Everything the log handed out, as its clients saw it.
#[derive(Default)]
struct Observed {
    /// Acknowledged entries: index → bytes.
    acked: BTreeMap<u64, Vec<u8>>,
    /// Handed-out checkpoints by size; a second root for one size fails the test at once.
    checkpoints: BTreeMap<u64, SignedCheckpoint>,
    /// Refusals by status code.
    refused: BTreeMap<String, u64>,
    /// Latencies of acknowledged submissions.
    latencies: Vec<Duration>,
}

impl Observed {
    fn checkpoint(&mut self, cp: &SignedCheckpoint) {
        let size = cp.checkpoint.size.0;
        if let Some(old) = self.checkpoints.insert(size, cp.clone()) {
            assert_eq!(
                old.checkpoint.root, cp.checkpoint.root,
                "two checkpoints of size {size} with different roots:\n{}\n{}",
                old.note, cp.note
            );
        }
    }

    fn largest_checkpoint(&self) -> u64 {
        self.checkpoints.keys().next_back().copied().unwrap_or(0)
    }

    fn refusals(&self) -> u64 {
        self.refused.values().sum()
    }
}

type Shared = Arc<Mutex<Observed>>;

/// Concurrent submitters, and a watcher recording every checkpoint `WatchCheckpoints` publishes.
struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    watcher: tokio::task::JoinHandle<()>,
}

impl Load {
    /// `submitters` clients each submitting unique entries (one at a time with `unary`, else batches of 1..=8)
    /// until stopped; a refusal is recorded and retried after `backoff`.
    async fn start(server: &Tlogd, seen: &Shared, submitters: usize, unary: bool) -> Load {
        let key = VerifierKey::parse(&server.vkey).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        let watch = LogClient::connect(&server.addr, key.clone()).await.unwrap();
        let mut stream = watch.watch_checkpoints().await.unwrap();
        let watched = seen.clone();
        let watcher = tokio::spawn(async move {
            loop {
                match stream.next().await {
                    Ok(Some(cp)) => watched.lock().unwrap().checkpoint(&cp),
                    // tlogd went away.
                    Ok(None) | Err(ClientError::Transport(_) | ClientError::Rpc(_)) => return,
                    Err(e) => panic!("WatchCheckpoints published a bad checkpoint: {e}"),
                }
            }
        });
        for s in 0..submitters {
            let client = LogClient::connect(&server.addr, key.clone()).await.unwrap();
            let (stop, seen) = (stop.clone(), seen.clone());
            let name = format!("{}-{s}", server.pid());
            tasks.push(tokio::spawn(async move {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let count = if unary { 1 } else { 1 + n % 8 };
                    let batch: Vec<Vec<u8>> = (n..n + count)
                        .map(|i| format!("{{\"submitter\":\"{name}\",\"n\":{i}}}").into_bytes())
                        .collect();
                    n += count;
                    let began = Instant::now();
                    match client.submit_batch(&batch).await {
                        Ok(receipts) => {
                            let mut seen = seen.lock().unwrap();
                            seen.latencies.push(began.elapsed());
                            for (r, e) in receipts.iter().zip(batch) {
                                assert!(seen.acked.insert(r.index().0, e).is_none());
                                seen.checkpoint(r.checkpoint());
                            }
                        }
                        Err(ClientError::Rpc(status)) => {
                            *seen
                                .lock()
                                .unwrap()
                                .refused
                                .entry(format!("{:?}", status.code()))
                                .or_default() += 1;
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                        // tlogd killed under the client.
                        Err(ClientError::Transport(_)) if stop.load(Ordering::Relaxed) => {}
                        Err(e) => panic!("a submission failed other than with a status: {e}"),
                    }
                }
            }));
        }
        Load {
            stop,
            tasks,
            watcher,
        }
    }

    async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.watcher.abort();
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(30), t)
                .await
                .expect("a client hung");
        }
    }
}

/// Waits until `done` holds of what was observed, for at most `within`.
async fn until(seen: &Shared, within: Duration, what: &str, done: impl Fn(&Observed) -> bool) {
    let deadline = Instant::now() + within;
    while !done(&seen.lock().unwrap()) {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Checks the log `server` serves against everything handed out: every acknowledged entry at its index byte for
/// byte, every handed-out checkpoint the root of the log's prefix of its size (a size with two roots, or a
/// published checkpoint whose batch is missing, fails). Returns the log's size.
async fn check_log(server: &Tlogd, seen: &Observed) -> u64 {
    let key = VerifierKey::parse(&server.vkey).unwrap();
    let mut client = LogClient::connect(&server.addr, key).await.unwrap();
    let newest = client.checkpoint().await.unwrap();
    let size = newest.checkpoint.size.0;
    let entries = client
        .entries_vec(LeafIndex(0), LeafIndex(size))
        .await
        .unwrap();
    for (index, entry) in &seen.acked {
        assert_eq!(
            entries.get(*index as usize),
            Some(entry),
            "acknowledged entry {index} is not in the log as acknowledged (the log has {size} entries)"
        );
    }
    let mut tree = CompactRange::new();
    let mut roots: HashMap<u64, Hash> = HashMap::new();
    for e in &entries {
        tree.append(leaf_hash(e), |_, _| {}).unwrap();
        if seen.checkpoints.contains_key(&tree.size().0) {
            roots.insert(tree.size().0, tree.root());
        }
    }
    assert_eq!(tree.root(), newest.checkpoint.root);
    for (s, cp) in &seen.checkpoints {
        if *s == 0 {
            continue;
        }
        assert_eq!(
            roots.get(s),
            Some(&cp.checkpoint.root),
            "handed-out checkpoint of size {s} is not the log's (the log has {size} entries):\n{}",
            cp.note
        );
    }
    size
}

/// Stops tlogd and runs `tlogd verify` on its data folder.
fn stop_and_verify(server: Tlogd) {
    let data = server.data.clone();
    server.stop();
    let (code, text) = tlogd_verify(&data);
    assert_eq!(code, 0, "tlogd verify:\n{text}");
}

async fn submit_one(server: &Tlogd, n: u64) -> Result<u64, ClientError> {
    let key = VerifierKey::parse(&server.vkey).unwrap();
    let client = LogClient::connect(&server.addr, key).await.unwrap();
    let r = client
        .submit(format!("{{\"probe\":{n}}}").as_bytes())
        .await?;
    Ok(r.index().0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_fsync_acknowledges_and_publishes_nothing_and_writes_stay_refused_until_restart()
{
    a_failing_disk("fsync=eio", "fsync eio").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_write_acknowledges_and_publishes_nothing_and_writes_stay_refused_until_restart()
{
    a_failing_disk("write=eio", "write eio").await;
}

/// Under load, the data folder's disk starts failing with `mode` (the shim's journal then shows `hit`): nothing
/// is acknowledged or published from then on, writes stay refused (`UNAVAILABLE`) after the disk heals, reads
/// go on, and a restart on the healthy disk recovers with every acknowledged entry and handed-out checkpoint.
async fn a_failing_disk(mode: &str, hit: &str) {
    let fault = IoFault::new();
    let server = fault.start(&["--origin", ORIGIN]);
    let seen = Shared::default();
    let load = Load::start(&server, &seen, 3, false).await;
    until(
        &seen,
        Duration::from_secs(60),
        "200 acknowledged entries",
        |o| o.acked.len() >= 200,
    )
    .await;

    fault.set(mode);
    until(
        &seen,
        Duration::from_secs(10),
        "a refusal after the disk failed",
        |o| o.refusals() > 0,
    )
    .await;
    // Answers already on their way (a batch synced before the switch, answered before the failing batch was
    // even taken up) arrive; from then on nothing may.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (acked, published) = {
        let o = seen.lock().unwrap();
        (o.acked.len(), o.largest_checkpoint())
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    {
        let o = seen.lock().unwrap();
        assert_eq!(
            o.acked.len(),
            acked,
            "entries were acknowledged after the disk failed"
        );
        assert_eq!(
            o.largest_checkpoint(),
            published,
            "a checkpoint was published after the disk failed"
        );
        assert!(o.refusals() > 3, "{:?}", o.refused);
    }
    assert!(
        fault.journal().contains(hit),
        "the shim failed no call ({mode}):\n{}",
        fault.journal()
    );

    // Reads go on while writes fail.
    {
        let (index, entry) = {
            let o = seen.lock().unwrap();
            let (i, e) = o.acked.iter().next_back().unwrap();
            (*i, e.clone())
        };
        let key = VerifierKey::parse(&server.vkey).unwrap();
        let mut client = LogClient::connect(&server.addr, key).await.unwrap();
        assert_eq!(
            client.checkpoint().await.unwrap().checkpoint.size.0,
            published
        );
        let proof = client
            .inclusion_by_index(LeafIndex(index), None)
            .await
            .expect("reads go on while the disk fails");
        assert_eq!(proof.leaf_hash(), leaf_hash(&entry));
    }

    // The disk is healthy again, but a failed sync leaves the batch's fate unknown: tlogd keeps refusing writes
    // (RocksDB holds the error until the database is reopened) instead of carrying on as if the data were safe.
    fault.set("");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let refused_before = seen.lock().unwrap().refusals();
    tokio::time::sleep(Duration::from_secs(1)).await;
    match submit_one(&server, 0).await {
        Err(ClientError::Rpc(status)) => assert_eq!(status.code(), Code::Unavailable, "{status:?}"),
        other => panic!("a write succeeded after the disk failed, without a restart: {other:?}"),
    }
    load.stop().await;
    let o = std::mem::take(&mut *seen.lock().unwrap());
    assert_eq!(
        o.acked.len(),
        acked,
        "entries acknowledged after the disk healed"
    );
    assert!(o.refusals() > refused_before);
    assert_eq!(
        o.refused.keys().collect::<Vec<_>>(),
        ["Unavailable"],
        "refusals other than UNAVAILABLE: {:?}",
        o.refused
    );
    server.stop();

    // Restarted on the healthy disk: recovery takes what the disk holds (the failed batch may be there: it was
    // never acknowledged, and no other checkpoint of its size was handed out), and writes go on.
    let server = fault.start_healthy(&[]);
    let size = check_log(&server, &o).await;
    assert!(size >= published);
    let index = submit_one(&server, 1).await.unwrap();
    assert_eq!(index, size, "the first write after the restart left a gap");
    eprintln!(
        "{mode}: the disk failed after {acked} acknowledged entries (published size {published}); {} refusals; restarted at \
         size {size}",
        o.refusals()
    );
    stop_and_verify(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_fsync_slows_acks_and_the_queue_stays_bounded() {
    let fault = IoFault::new();
    let delay = Duration::from_millis(50);
    fault.set(&format!("fsync=delay:{}", delay.as_millis()));
    let server = fault.start(&["--origin", ORIGIN, "--queue-capacity", "4"]);
    let seen = Shared::default();
    let load = Load::start(&server, &seen, 24, true).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    load.stop().await;
    let hwm = peak_memory_kib(server.pid());

    let mut o = std::mem::take(&mut *seen.lock().unwrap());
    o.latencies.sort();
    let quantile = |q: f64| o.latencies[((o.latencies.len() - 1) as f64 * q) as usize];
    eprintln!(
        "slow fsync ({delay:?}): {} acknowledged submissions, p50 {:?}, p99 {:?}, max {:?}; refused {:?}; tlogd \
         peak RSS {hwm} KiB",
        o.latencies.len(),
        quantile(0.5),
        quantile(0.99),
        o.latencies.last().unwrap(),
        o.refused
    );
    assert!(o.latencies.len() >= 10, "too few acknowledgements");
    assert!(
        quantile(0.5) >= delay,
        "acks did not wait for the slow sync"
    );
    assert!(
        o.refused.get("ResourceExhausted").copied().unwrap_or(0) > 0,
        "24 submitters never filled a queue of 4: {:?}",
        o.refused
    );
    assert_eq!(
        o.refused.keys().collect::<Vec<_>>(),
        ["ResourceExhausted"],
        "refusals other than the queue's pushback: {:?}",
        o.refused
    );
    assert!(fault.journal().contains("fsync delay"));
    fault.set("");
    check_log(&server, &o).await;
    stop_and_verify(server);
}

/// The peak resident memory of a process (VmHWM), in KiB.
fn peak_memory_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Sizes of the files in `dir`.
fn file_sizes(dir: &Path) -> HashMap<PathBuf, u64> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| (e.path(), e.metadata().unwrap().len()))
        .collect()
}

/// A power cut, after tlogd was killed: keeps of every file in `db` only what a sync made durable (the
/// journal's "synced" lines, files renamed with their durable size; `durable` holds what was on disk before the
/// tracking began), and drops the rest, as the page cache would be lost. Returns the bytes dropped.
fn power_cut(db: &Path, mut durable: HashMap<PathBuf, u64>, journal: &str) -> u64 {
    for line in journal.lines() {
        let mut words = line.splitn(3, ' ');
        match (words.next(), words.next(), words.next()) {
            (Some("synced"), Some(size), Some(path)) => {
                durable.insert(PathBuf::from(path), size.parse().unwrap());
            }
            (Some("rename"), Some(old), Some(new)) => {
                let size = durable.remove(Path::new(old));
                match size {
                    Some(size) => durable.insert(PathBuf::from(new), size),
                    None => durable.remove(Path::new(new)),
                };
            }
            _ => {}
        }
    }
    let mut dropped = 0;
    for (path, len) in file_sizes(db) {
        let keep = durable.get(&path).copied().unwrap_or(0);
        if len > keep {
            std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .unwrap()
                .set_len(keep)
                .unwrap();
            dropped += len - keep;
        }
    }
    dropped
}

/// A log with a few entries written and synced, stopped; then tlogd with the shim tracking syncs (and `extra`),
/// under load until at least 300 entries are acknowledged; then a power cut. Returns what was handed out, the
/// bytes the cut dropped, and the log restarted on what the disk kept.
async fn load_then_cut(fault: &IoFault, extra: &[&str]) -> (Observed, u64, Tlogd) {
    let server = fault.start_healthy(&["--origin", ORIGIN]);
    let seen = Shared::default();
    for n in 0..20 {
        submit_one(&server, n).await.unwrap();
    }
    server.stop();

    let db = fault.data.join("db");
    let durable = file_sizes(&db);
    fault.set("track");
    let server = fault.start(extra);
    let load = Load::start(&server, &seen, 3, false).await;
    until(
        &seen,
        Duration::from_secs(60),
        "300 acknowledged entries",
        |o| o.acked.len() >= 300,
    )
    .await;
    server.kill();
    load.stop().await;
    let dropped = power_cut(&db, durable, &fault.journal());
    let server = fault.start_healthy(&[]);
    let o = std::mem::take(&mut *seen.lock().unwrap());
    (o, dropped, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_entries_survive_a_power_cut() {
    let fault = IoFault::new();
    let (o, dropped, server) = load_then_cut(&fault, &[]).await;
    let size = check_log(&server, &o).await;
    eprintln!(
        "power cut: {} acknowledged entries, {dropped} unsynced bytes dropped; restarted at size {size}, nothing \
         lost",
        o.acked.len()
    );
    stop_and_verify(server);
}

/// The proof that the power-cut simulation can fail: with `--no-sync` an acknowledged entry is not durable, and
/// the same cut loses some. If this passes nothing, the cut drops nothing and the test above proves nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_sync_a_power_cut_loses_acknowledged_entries() {
    let fault = IoFault::new();
    let (o, dropped, server) = load_then_cut(&fault, &["--no-sync"]).await;
    let key = VerifierKey::parse(&server.vkey).unwrap();
    let mut client = LogClient::connect(&server.addr, key).await.unwrap();
    let size = client.checkpoint().await.unwrap().checkpoint.size.0;
    let entries = client
        .entries_vec(LeafIndex(0), LeafIndex(size))
        .await
        .unwrap();
    let lost = o
        .acked
        .iter()
        .filter(|(i, e)| entries.get(**i as usize) != Some(e))
        .count();
    eprintln!(
        "power cut with --no-sync: {} acknowledged entries, {dropped} unsynced bytes dropped; restarted at size \
         {size}: {lost} acknowledged entries lost",
        o.acked.len()
    );
    assert!(
        lost > 0,
        "with --no-sync the power cut lost no acknowledged entry: the simulation drops nothing"
    );
    server.stop();
}
