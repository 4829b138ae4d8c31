//! Archiving to S3-compatible object storage (issue 14; the archive itself is `tlog-archive`): a background task
//! follows the log's checkpoints and publishes the tiles, bundles and checkpoints to the archive, never on the
//! acknowledgement path.
//!
//! With witnesses, the archive follows the witnessed checkpoints (notes carrying a quorum's cosignatures), as the
//! HTTP `/checkpoint` does, so clients that require a witness quorum can read the bucket; without, the log's own.
//!
//! The task knows the archive's head (its checkpoint and that object's version). It reads it on start (so a
//! restart resumes from what the archive holds, whatever happened to the last upload), checks it is this log's
//! (signed by the log's key, and the root this log has at that size), then, for each newer checkpoint, publishes
//! at most once per [`ArchiveConfig::interval`]. A failure of the store (outage, timeout) is retried with
//! exponential backoff, re-reading the head first, since a write whose answer was lost may have landed. A fatal
//! failure (another writer moved the checkpoint, an archived object differs, the archive is not this log's)
//! stops archiving for good: the status says why, and writes are refused once the lag passes the limit.
//!
//! [`ArchiveGate`] is the write side's view: submissions get `RESOURCE_EXHAUSTED` when the log is more than
//! [`ArchiveConfig::max_lag`] entries ahead of the archive, checked before the sequencer takes them.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::error::{Error, Result};

/// Where archiving stands, as the service and status outputs see it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArchiveStatus {
    /// The tree size the archive holds; `None` until the archive has been read.
    pub archived_size: Option<u64>,
    /// Why archiving stopped for good, once it has.
    pub stopped: Option<Arc<str>>,
}

/// Refuses writes while the archive lags too far behind.
#[derive(Clone, Debug)]
pub struct ArchiveGate {
    status: watch::Receiver<ArchiveStatus>,
    max_lag: u64,
}

impl ArchiveGate {
    /// A gate over `status` allowing the log to be at most `max_lag` entries ahead of the archive.
    pub fn new(status: watch::Receiver<ArchiveStatus>, max_lag: u64) -> Self {
        ArchiveGate { status, max_lag }
    }

    /// The archived size (0 before the archive has been read).
    pub fn archived_size(&self) -> u64 {
        self.status.borrow().archived_size.unwrap_or(0)
    }

    /// `Err(ArchiveLag)` when adding `adding` entries to a log of `log_size` would put it more than the limit
    /// ahead of the archive. Before the archive has been read, it counts as empty: an unreachable archive must not
    /// let the lag grow unbounded.
    pub fn check(&self, log_size: u64, adding: u64) -> Result<()> {
        let archived = self.archived_size();
        let lag = log_size.saturating_add(adding).saturating_sub(archived);
        if lag > self.max_lag {
            return Err(Error::ArchiveLag {
                lag: log_size.saturating_sub(archived),
                max_lag: self.max_lag,
            });
        }
        Ok(())
    }
}

/// Default most entries the log may be ahead of its archive before writes are refused.
pub const DEFAULT_MAX_LAG: u64 = 10_000_000;
/// Default shortest time between two checkpoint publications (each costs up to one partial object per tile
/// level, kept for the whole retention).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
/// First wait after the object store fails; doubles per failure up to [`DEFAULT_MAX_BACKOFF`].
pub const DEFAULT_MIN_BACKOFF: Duration = Duration::from_millis(200);
/// Longest wait between attempts while the object store fails.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(10);

#[cfg(feature = "archive")]
pub use task::{ArchiveConfig, Archiving};

#[cfg(feature = "archive")]
mod task {
    use std::time::Duration;

    use std::sync::Arc;
    use tlog_archive::s3::{S3Config, S3Location};
    use tlog_archive::{Archive, Head};

    use tlog_checkpoint::{SignedCheckpoint, VerifierKey};
    use tlog_client::{ClientError, TileSource};
    use tlog_core::tiles::Tile;
    use tlog_storage::LogStore;
    use tokio::sync::watch;

    use super::{
        ArchiveStatus, DEFAULT_INTERVAL, DEFAULT_MAX_BACKOFF, DEFAULT_MAX_LAG, DEFAULT_MIN_BACKOFF,
    };
    use crate::http::Witnessed;
    use crate::log::LogReader;

    /// Where and how to archive.
    #[derive(Clone, Debug)]
    pub struct ArchiveConfig {
        /// `s3://bucket/prefix`.
        pub location: S3Location,
        /// Endpoint, region and credentials (the AWS environment).
        pub s3: S3Config,
        /// Most entries the log may be ahead of the archive before writes get `RESOURCE_EXHAUSTED`.
        pub max_lag: u64,
        /// Shortest time between two checkpoint publications.
        pub interval: Duration,
        pub min_backoff: Duration,
        pub max_backoff: Duration,
    }

    impl ArchiveConfig {
        /// Archiving to `location` with the default lag limit, interval and backoff.
        pub fn new(location: S3Location, s3: S3Config) -> Self {
            ArchiveConfig {
                location,
                s3,
                max_lag: DEFAULT_MAX_LAG,
                interval: DEFAULT_INTERVAL,
                min_backoff: DEFAULT_MIN_BACKOFF,
                max_backoff: DEFAULT_MAX_BACKOFF,
            }
        }
    }

    /// The running archiving task.
    pub struct Archiving {
        status: watch::Receiver<ArchiveStatus>,
        stop: watch::Sender<bool>,
        task: tokio::task::JoinHandle<()>,
    }

    impl Archiving {
        /// Starts archiving the checkpoints `reader` publishes or, with `witnessed`, those a quorum of witnesses
        /// cosigned.
        pub fn spawn<S: LogStore>(
            reader: LogReader<S>,
            witnessed: Option<Witnessed>,
            key: VerifierKey,
            config: ArchiveConfig,
        ) -> Result<Self, tlog_archive::Error> {
            let archive = tlog_archive::s3::open(&config.location, &config.s3, key)?;
            let (status_tx, status) = watch::channel(ArchiveStatus::default());
            let (stop, stop_rx) = watch::channel(false);
            let checkpoints = match witnessed {
                Some(witnessed) => Checkpoints::Witnessed(witnessed),
                None => Checkpoints::Signed(reader.subscribe()),
            };
            let runner = Runner {
                archive,
                checkpoints,
                source: LogTiles(reader.clone()),
                reader,
                config,
                status: status_tx,
            };
            let task = tokio::spawn(runner.run(stop_rx));
            Ok(Archiving { status, stop, task })
        }

        /// Sees every change of the archive's status.
        pub fn subscribe(&self) -> watch::Receiver<ArchiveStatus> {
            self.status.clone()
        }

        /// Stops after the upload in flight.
        pub async fn stop(self) {
            let _ = self.stop.send(true);
            let _ = self.task.await;
        }
    }

    /// The log being archived as a tile source: its reader, on the blocking pool.
    struct LogTiles<S>(LogReader<S>);

    impl<S: LogStore> TileSource for LogTiles<S> {
        async fn fetch(&self, tile: &Tile) -> Result<Vec<u8>, ClientError> {
            let (reader, tile) = (self.0.clone(), *tile);
            let failed = |detail: String| ClientError::Source {
                path: tile.path(),
                detail,
            };
            tokio::task::spawn_blocking(move || reader.tile(&tile))
                .await
                .map_err(|e| failed(e.to_string()))?
                .map_err(|e| failed(e.to_string()))
        }

        async fn checkpoint(&self) -> Result<Vec<u8>, ClientError> {
            Ok(self.0.latest().note.clone().into_bytes())
        }
    }

    /// The checkpoints to archive: the log's, or the witnessed ones.
    enum Checkpoints {
        Signed(watch::Receiver<Arc<SignedCheckpoint>>),
        Witnessed(Witnessed),
    }

    impl Checkpoints {
        /// The newest, marked seen; `None` before the first witnessed one.
        fn newest(&mut self) -> Option<Arc<SignedCheckpoint>> {
            match self {
                Checkpoints::Signed(rx) => Some(rx.borrow_and_update().clone()),
                Checkpoints::Witnessed(rx) => rx.borrow_and_update().clone(),
            }
        }

        /// Waits for a newer one; `Err` when the log is gone.
        async fn changed(&mut self) -> Result<(), watch::error::RecvError> {
            match self {
                Checkpoints::Signed(rx) => rx.changed().await,
                Checkpoints::Witnessed(rx) => rx.changed().await,
            }
        }
    }

    struct Runner<S> {
        archive: Archive,
        checkpoints: Checkpoints,
        source: LogTiles<S>,
        reader: LogReader<S>,
        config: ArchiveConfig,
        status: watch::Sender<ArchiveStatus>,
    }

    /// Why one step did not get done: retry later, or never.
    enum Failure {
        Retry(String),
        Fatal(String),
    }

    impl From<tlog_archive::Error> for Failure {
        fn from(e: tlog_archive::Error) -> Self {
            if e.is_fatal() {
                Failure::Fatal(e.to_string())
            } else {
                Failure::Retry(e.to_string())
            }
        }
    }

    impl<S: LogStore> Runner<S> {
        async fn run(mut self, mut stop: watch::Receiver<bool>) {
            self.check_lock().await;
            let mut head: Option<Head> = None;
            let mut failures: u32 = 0;
            loop {
                let step = async {
                    let known = match head.take() {
                        Some(known) => known,
                        None => self.read_head().await?,
                    };
                    let Some(cp) = self.checkpoints.newest() else {
                        return Ok((known, false));
                    };
                    // An empty archive is claimed even by an empty log (its size-0 checkpoint needs no tile).
                    let newer = cp.checkpoint.size > known.size()
                        || (known.is_empty() && cp.checkpoint.size == known.size());
                    if !newer {
                        return Ok((known, false));
                    }
                    let started = tokio::time::Instant::now();
                    let published = self
                        .archive
                        .publish(&known, &self.source, &cp)
                        .await
                        .map_err(Failure::from)?;
                    tracing::debug!(
                        size = published.size().0,
                        took = ?started.elapsed(),
                        "archived"
                    );
                    Ok::<_, Failure>((published, true))
                };
                let wait = match step.await {
                    Ok((known, published)) => {
                        failures = 0;
                        self.set_archived(known.size().0);
                        head = Some(known);
                        if published {
                            // Publications are spaced: each costs partial objects kept for the retention.
                            Some(self.config.interval)
                        } else {
                            None
                        }
                    }
                    Err(Failure::Fatal(why)) => {
                        tracing::error!("archiving stopped: {why}");
                        self.status.send_modify(|s| s.stopped = Some(why.into()));
                        return;
                    }
                    Err(Failure::Retry(why)) => {
                        failures = failures.saturating_add(1);
                        let backoff = self
                            .config
                            .min_backoff
                            .saturating_mul(1 << failures.min(16).saturating_sub(1))
                            .min(self.config.max_backoff);
                        tracing::warn!(?backoff, "archiving failed, retrying: {why}");
                        // The head is read again: a write whose answer was lost may have landed.
                        Some(backoff)
                    }
                };
                match wait {
                    Some(pause) => tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = stop.changed() => return,
                    },
                    None => tokio::select! {
                        changed = self.checkpoints.changed() => if changed.is_err() { return },
                        _ = stop.changed() => return,
                    },
                }
            }
        }

        /// Says loudly when the bucket is not write-once (`tlogd archive init` sets it up); archiving goes on,
        /// since refusing would only lose the copy.
        async fn check_lock(&self) {
            let bucket = &self.config.location.bucket;
            match tlog_archive::s3::lock_status(&self.config.s3, bucket).await {
                Ok(Some(r)) if r.mode == "COMPLIANCE" => {
                    tracing::info!(
                        bucket,
                        days = r.days,
                        "archive bucket has COMPLIANCE retention"
                    );
                }
                Ok(Some(r)) => tracing::warn!(
                    bucket,
                    mode = r.mode,
                    "archive bucket's default retention is not COMPLIANCE: archived objects can be removed"
                ),
                Ok(None) => tracing::warn!(
                    bucket,
                    "archive bucket has no default retention: run `tlogd archive init`"
                ),
                Err(e) => tracing::warn!(bucket, "archive bucket is not write-once: {e}"),
            }
        }

        fn set_archived(&self, size: u64) {
            self.status.send_if_modified(|s| {
                let changed = s.archived_size != Some(size);
                s.archived_size = Some(size);
                changed
            });
        }

        /// Reads the archive's head and checks it holds this log: the archived tree must be one this log signed,
        /// with the same root.
        async fn read_head(&self) -> Result<Head, Failure> {
            let head = self.archive.head().await?;
            let Some(archived) = &head.checkpoint else {
                return Ok(head);
            };
            let size = archived.checkpoint.size;
            if size.0 == 0 {
                // The empty tree (a claim): its root is the same for every log, and the log never stores its
                // size-0 checkpoint (the reader's size 0 means "the latest").
                return Ok(head);
            }
            let reader = self.reader.clone();
            let ours = tokio::task::spawn_blocking(move || reader.checkpoint(size))
                .await
                .map_err(|e| Failure::Retry(e.to_string()))?;
            match ours {
                Ok(ours) if ours.checkpoint.root == archived.checkpoint.root => Ok(head),
                Ok(_) => Err(Failure::Fatal(format!(
                    "the archive's tree of size {} has another root than this log's: another history",
                    size.0
                ))),
                Err(crate::error::Error::SizeBeyondLog { latest, .. }) => {
                    Err(Failure::Fatal(format!(
                        "the archive holds {} entries but this log only {latest}: restore from the archive \
                     instead of archiving over it",
                        size.0
                    )))
                }
                Err(crate::error::Error::NoCheckpoint(_)) => Err(Failure::Fatal(format!(
                    "the archive's checkpoint (size {}) is not one this log signed",
                    size.0
                ))),
                Err(e) => Err(Failure::Retry(e.to_string())),
            }
        }
    }
}
