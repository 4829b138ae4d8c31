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
            shared_checkpoint: false,
            multiproof: false,
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

/// A TCP proxy in front of an S3 server that passes requests on until one begins with `hold` (a request line's
/// start, such as `PUT /bucket/log/checkpoint `), then holds that request and its connection: nothing more of it
/// reaches the server and no answer comes back. Makes "stopped after the tiles, before the checkpoint" a
/// certainty instead of a race a slow machine loses.
pub struct HoldingProxy {
    endpoint: String,
    held: std::sync::Arc<tokio::sync::Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl HoldingProxy {
    pub async fn start(server: &SeaweedFs, hold: &str) -> HoldingProxy {
        let upstream = server
            .config()
            .endpoint
            .clone()
            .expect("SeaweedFS has an endpoint");
        let upstream = upstream
            .strip_prefix("http://")
            .expect("SeaweedFS speaks plain HTTP")
            .trim_end_matches('/')
            .to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let held = std::sync::Arc::new(tokio::sync::Notify::new());
        let marker = hold.as_bytes().to_vec();
        let notify = held.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (upstream, marker, notify) = (upstream.clone(), marker.clone(), notify.clone());
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let (mut client_rx, client_tx) = client.into_split();
                    let (server_rx, mut server_tx) = server.into_split();
                    let answers = tokio::spawn(async move {
                        let (mut server_rx, mut client_tx) = (server_rx, client_tx);
                        let _ = tokio::io::copy(&mut server_rx, &mut client_tx).await;
                    });
                    if forward_until(&mut client_rx, &mut server_tx, &marker).await {
                        notify.notify_one();
                        // Held: the connection stays open and silent until the test ends.
                        std::future::pending::<()>().await;
                    }
                    answers.abort();
                });
            }
        });
        HoldingProxy {
            endpoint,
            held,
            task,
        }
    }

    /// [`SeaweedFs::env`] with the endpoint replaced by this proxy's.
    pub fn env(&self, server: &SeaweedFs) -> Vec<(&'static str, String)> {
        let mut env = server.env();
        for (name, value) in &mut env {
            if *name == "AWS_ENDPOINT_URL" {
                *value = self.endpoint.clone();
            }
        }
        env
    }

    /// Waits until a request was held; panics after `limit`.
    pub async fn wait_held(&self, limit: Duration) {
        tokio::time::timeout(limit, self.held.notified())
            .await
            .expect("no request to hold came through the proxy");
    }
}

impl Drop for HoldingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Copies `from` to `to` until `marker` appears in the stream; true if it did (the bytes before it are sent, the
/// marker and what follows are not), false at the end of the stream or an error.
async fn forward_until(
    from: &mut (impl tokio::io::AsyncRead + Unpin),
    to: &mut (impl tokio::io::AsyncWrite + Unpin),
    marker: &[u8],
) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // The last bytes already sent, so a marker split across two reads is still found.
    let mut window: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        let kept = window.len();
        window.extend_from_slice(&buf[..n]);
        if let Some(at) = window.windows(marker.len()).position(|w| w == marker) {
            let _ = to.write_all(&window[kept.min(at)..at]).await;
            return true;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return false;
        }
        let keep = marker.len().saturating_sub(1).min(window.len());
        window.drain(..window.len() - keep);
    }
}
