//! The optional background scrub: every interval, the storage layer's integrity check ([`tlog_storage::fsck`]) of
//! the live store up to its latest checkpoint, on a blocking thread. The result is logged and published as the
//! gRPC health status of the service [`SCRUB_SERVICE`]: `SERVING` after a clean pass, `NOT_SERVING` once damage was
//! found (it stays so until a later pass is clean), `UNKNOWN` before the first pass or when the store could not be
//! read.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tlog_checkpoint::VerifierKey;
use tlog_storage::fsck::{self, FsckError};
use tlog_storage::{Backend, TiledStore};
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::metrics::Metrics;

/// The gRPC health service name the scrub reports under.
pub const SCRUB_SERVICE: &str = "tlog.v1.Scrub";

/// A running scrub; [`Scrub::stop`] or dropping it ends it, abandoning a pass in progress at its next chunk.
pub struct Scrub {
    stop: Arc<AtomicBool>,
    wake: Arc<tokio::sync::Notify>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Scrub {
    /// Starts scrubbing `store` every `interval` (the first pass one interval after the start).
    pub async fn spawn<B: Backend>(
        store: Arc<TiledStore<B>>,
        key: VerifierKey,
        interval: Duration,
        health: HealthReporter,
        metrics: Metrics,
    ) -> Scrub {
        health
            .set_service_status(SCRUB_SERVICE, ServingStatus::Unknown)
            .await;
        let stop = Arc::new(AtomicBool::new(false));
        let wake = Arc::new(tokio::sync::Notify::new());
        let (flag, woken) = (stop.clone(), wake.clone());
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = woken.notified() => return,
                }
                let (store, key, flag) = (store.clone(), key.clone(), flag.clone());
                let started = Instant::now();
                let result = tokio::task::spawn_blocking(move || {
                    fsck::check(&store, &key, &fsck::Options::live(), &mut |_, _| {
                        !flag.load(Ordering::Relaxed)
                    })
                })
                .await;
                let status = match result {
                    Ok(Ok(v)) => {
                        tracing::info!(
                            tree_size = v.tree_size,
                            root = %v.root,
                            checkpoints = v.checkpoints,
                            secs = started.elapsed().as_secs_f64(),
                            "scrub passed"
                        );
                        let now = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map_or(0, |d| d.as_secs());
                        metrics.scrub().clean(now);
                        ServingStatus::Serving
                    }
                    Ok(Err(FsckError::Cancelled)) => return,
                    Ok(Err(FsckError::Corrupt(e))) => {
                        tracing::error!(error = %e, "scrub found the stored log damaged");
                        metrics.scrub().damaged();
                        ServingStatus::NotServing
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "scrub could not check the log");
                        metrics.scrub().error();
                        ServingStatus::Unknown
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "scrub task failed");
                        metrics.scrub().error();
                        ServingStatus::Unknown
                    }
                };
                health.set_service_status(SCRUB_SERVICE, status).await;
            }
        });
        Scrub {
            stop,
            wake,
            task: Some(task),
        }
    }

    /// Stops the scrub (dropping it does too).
    /// Waits until a pass in progress has stopped: it holds the store, which a restart in this process reopens.
    pub async fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.wake.notify_one();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Scrub {
    fn drop(&mut self) {
        // The flag ends a pass running on its blocking thread; aborting ends the waiting loop.
        self.stop.store(true, Ordering::Relaxed);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
