//! Faults beyond SIGKILL, against the real `tlogd` on a real filesystem (issue 19). So far: the disk filling up.
//!
//! The data folder sits on its own small tmpfs (mounting one needs root, as CI has; without it the tests fail
//! and say so). A filler file takes the free space away and gives it back. Each case asserts that:
//! - writes are refused while the disk is full, with the documented status, and reads go on;
//! - writes resume by themselves once space returns, at the next index (no gap, nothing signed for a batch that
//!   was not written);
//! - every acknowledged entry is in the log, byte for byte, and `tlogd verify` passes afterwards.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tlog_checkpoint::VerifierKey;
use tlog_client::{ClientError, LogClient};
use tlog_core::{LeafIndex, TreeSize};
use tlog_suite::{Tlogd, tlogd_verify};
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
