//! Helpers of the archive and replica tests (tests/archive.rs, tests/replica.rs): a bucket set up by `tlogd
//! archive init` on a SeaweedFS, a tlogd archiving to it, submitting events and waiting for the archive.

use std::process::Command;
use std::time::{Duration, Instant};

use tlog_archive::ArchiveTiles;
use tlog_archive::s3::{self, S3Location};
use tlog_archive::testing::SeaweedFs;
use tlog_proto::v1;

use crate::{Rpc, Tlogd, bin, event};

/// A bucket set up by `tlogd archive init` (COMPLIANCE, 1 day) on `server`; returns `s3://bucket/log`.
pub fn init_archive(server: &SeaweedFs, bucket: &str) -> String {
    let url = format!("s3://{bucket}/log");
    let out = Command::new(bin("tlogd"))
        .args([
            "archive",
            "init",
            "--archive",
            &url,
            "--retention-days",
            "1",
        ])
        .envs(server.env())
        .output()
        .expect("run tlogd archive init");
    assert!(
        out.status.success(),
        "tlogd archive init failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    url
}

/// A tlogd archiving to `url`, publishing every 100 ms.
pub fn archiving_tlogd(
    data: &std::path::Path,
    server: &SeaweedFs,
    url: &str,
    extra: &[&str],
) -> Tlogd {
    let mut args = vec!["--archive", url, "--archive-interval-ms", "100"];
    args.extend_from_slice(extra);
    Tlogd::start_with_env(data, &args, &server.env())
}

pub async fn rpc(tlogd: &Tlogd) -> Rpc {
    Rpc::connect(tlogd.addr.clone())
        .await
        .expect("connect")
        .max_decoding_message_size(64 << 20)
}

/// Submits events `[from, to)` in batches of 2,000.
pub async fn submit(rpc: &mut Rpc, from: u64, to: u64) -> Result<(), tonic::Status> {
    let mut at = from;
    while at < to {
        let end = to.min(at + 2_000);
        rpc.submit_batch(v1::SubmitBatchRequest {
            entries: (at..end).map(event).collect(),
            client_tag: 0,
        })
        .await?;
        at = end;
    }
    Ok(())
}

pub async fn checkpoint(rpc: &mut Rpc) -> v1::SignedCheckpoint {
    rpc.get_checkpoint(v1::GetCheckpointRequest::default())
        .await
        .expect("GetCheckpoint")
        .into_inner()
}

/// Waits until the log reports its whole tree archived; panics after `limit`.
pub async fn wait_archived(rpc: &mut Rpc, limit: Duration) -> v1::SignedCheckpoint {
    let deadline = Instant::now() + limit;
    loop {
        let cp = checkpoint(rpc).await;
        if cp.archived_size == cp.size {
            return cp;
        }
        assert!(
            Instant::now() < deadline,
            "archive stuck at {} of {} entries",
            cp.archived_size,
            cp.size
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn archive_tiles(server: &SeaweedFs, url: &str) -> ArchiveTiles {
    let location = S3Location::parse(url).unwrap();
    ArchiveTiles::new(
        s3::object_store(server.config(), &location.bucket).unwrap(),
        &location.prefix,
    )
}

/// `tlog verify --archive URL --key VKEY`: (exit code, output).
pub fn tlog_verify_archive(server: &SeaweedFs, url: &str, vkey: &str) -> (i32, String) {
    let out = Command::new(bin("tlog"))
        .args(["verify", "--archive", url, "--key", vkey])
        .envs(server.env())
        .output()
        .expect("run tlog verify");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}
