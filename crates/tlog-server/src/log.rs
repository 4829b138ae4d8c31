//! Opening a log: [`open`] checks the store's identity against the key, recovers the frontier and the latest
//! signed checkpoint (refusing to start when the store and the signatures disagree), starts the sequencer and
//! returns the log's three handles: the [`Appender`] that submits, the [`LogReader`] that serves reads, and the
//! [`Shutdown`] that waits for the sequencer to finish. It is the only way to start a log.

use std::fmt;
use std::sync::Arc;
use std::thread;

use tlog_checkpoint::{
    Checkpoint, MAX_TIMESTAMP, SignedCheckpoint, SignerKey, sign_checkpoint, verify_checkpoint,
};
use tlog_core::{CompactRange, TreeSize, empty_root, range_nodes};
use tlog_storage::LogStore;

use crate::clock::{Clock, SystemClock};
use crate::error::{RecoveryError, Result};
use crate::metrics::Metrics;
use crate::private::{KeyWrapper, Vault};
use crate::sequencer::{Sequencer, SubmissionLimits};

pub use crate::reader::{
    DEFAULT_CHECKPOINT_CACHE, DEFAULT_MAX_ENTRIES_PER_READ, InclusionAnswer, LogReader, ReadLimits,
};
pub use crate::sequencer::{
    Appender, Assigned, Committed, DEFAULT_QUEUE_CAPACITY, Pending, SequencerConfig,
};
pub use crate::validate::{
    DEFAULT_MAX_ENTRY_BYTES, DEFAULT_MAX_REQUEST_BYTES, DEFAULT_MAX_REQUEST_ENTRIES,
};

pub use tlog_storage::identity::{META_ORIGIN, META_VERIFIER_KEY};
use tlog_storage::identity::{Recorded, check_identity, record_identity};

/// How to run an opened log. The defaults are the documented constants ([`DEFAULT_MAX_ENTRY_BYTES`],
/// [`DEFAULT_MAX_REQUEST_ENTRIES`], [`SequencerConfig::default`], [`ReadLimits::default`]) and the system clock.
#[derive(Clone)]
pub struct LogOptions {
    /// Largest entry accepted.
    pub max_entry_bytes: usize,
    /// Most entries in one submission; capped at `sequencer.max_batch_entries` so a submission fits in a batch.
    pub max_request_entries: usize,
    /// Batching and queueing.
    pub sequencer: SequencerConfig,
    /// Read limits and caches.
    pub read: ReadLimits,
    /// Source of checkpoint timestamps.
    pub clock: Arc<dyn Clock>,
    /// Where the sequencer and the appender record their figures (see [`crate::metrics`]); clones share it.
    pub metrics: Metrics,
    /// Wraps the data keys of private payloads (see [`crate::private`]); without it the log refuses private
    /// submissions and erasures.
    pub private: Option<Arc<dyn KeyWrapper>>,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            max_entry_bytes: DEFAULT_MAX_ENTRY_BYTES,
            max_request_entries: DEFAULT_MAX_REQUEST_ENTRIES,
            sequencer: SequencerConfig::default(),
            read: ReadLimits::default(),
            clock: Arc::new(SystemClock),
            metrics: Metrics::new(),
            private: None,
        }
    }
}

impl fmt::Debug for LogOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogOptions")
            .field("max_entry_bytes", &self.max_entry_bytes)
            .field("max_request_entries", &self.max_request_entries)
            .field("sequencer", &self.sequencer)
            .field("read", &self.read)
            .finish_non_exhaustive()
    }
}

/// Waits for an opened log's sequencer to stop. It stops once every [`Appender`] is dropped, after writing and
/// answering everything already queued.
#[must_use = "dropping the Shutdown detaches the sequencer thread instead of waiting for its last write"]
pub struct Shutdown(thread::JoinHandle<()>);

impl Shutdown {
    /// Blocks until the sequencer has written its last batch and stopped. Drop every [`Appender`] first, or this
    /// waits forever.
    pub fn wait(self) {
        let _ = self.0.join();
    }
}

/// Opens the log in `store` signed by `key`: recovers it (a new, empty store is stamped with the key's identity),
/// starts its sequencer and returns its appender, reader and shutdown.
pub fn open<S: LogStore>(
    store: Arc<S>,
    key: SignerKey,
    options: LogOptions,
) -> Result<(Appender, LogReader<S>, Shutdown)> {
    let recovered = recover(store.as_ref(), &key, options.clock.as_ref())?;
    let verifier = key.verifier();
    let limits = SubmissionLimits {
        max_entry_bytes: options.max_entry_bytes,
        max_request_entries: options
            .max_request_entries
            .min(options.sequencer.max_batch_entries),
        max_request_bytes: options.sequencer.max_batch_bytes,
    };
    let (appender, thread) = Sequencer::spawn(
        store.clone(),
        key,
        options.clock,
        recovered,
        options.sequencer,
        limits,
        options.metrics,
        options.private.map(Vault::new),
    )?;
    let reader = LogReader::new(store, appender.watch(), verifier, options.read);
    Ok((appender, reader, Shutdown(thread)))
}

/// The state a sequencer continues from.
pub(crate) struct Recovered {
    pub frontier: CompactRange,
    pub latest: SignedCheckpoint,
}

/// Recovers the log from `store`: checks the stored identity against `key`, rebuilds the frontier from stored
/// nodes, and checks that the newest stored checkpoint is validly signed by `key` for exactly that size and root.
/// A new, empty store is stamped with the key's identity.
fn recover<S: LogStore>(store: &S, key: &SignerKey, clock: &dyn Clock) -> Result<Recovered> {
    let origin = key.name();
    let vkey = key.verifier();
    let size = store.tree_size()?;
    match check_identity(store, &vkey)? {
        Ok(Recorded::Matches) => {}
        Ok(Recorded::Nothing) => record_identity(store, &vkey)?,
        Err(mismatch) => return Err(RecoveryError::Identity(mismatch).into()),
    }

    let ids = range_nodes(0, size.0);
    let hashes = store.nodes(&ids)?;
    let frontier = CompactRange::from_parts(size, hashes)?;
    let root = frontier.root();
    if size.0 == 0 {
        // The empty tree's checkpoint is the same at every start (its root is fixed), so it is signed fresh and
        // never stored.
        let cp = Checkpoint::new(origin, TreeSize(0), empty_root())?;
        return Ok(Recovered {
            frontier,
            latest: sign_checkpoint(key, &cp, clock.now_unix().min(MAX_TIMESTAMP))?,
        });
    }
    let (cp_size, note) = store
        .latest_checkpoint()?
        .ok_or(RecoveryError::NoCheckpoint(size.0))?;
    let latest =
        verify_checkpoint(&vkey, &note).map_err(|source| RecoveryError::CheckpointSignature {
            size: cp_size.0,
            vkey: vkey.to_string(),
            source,
        })?;
    if latest.checkpoint.size != size || cp_size != size {
        return Err(RecoveryError::SizeMismatch {
            signed: latest.checkpoint.size.0,
            stored: size.0,
        }
        .into());
    }
    if latest.checkpoint.root != root {
        return Err(RecoveryError::RootMismatch {
            size: size.0,
            signed: latest.checkpoint.root,
            computed: root,
        }
        .into());
    }
    if latest.checkpoint.origin != origin {
        return Err(RecoveryError::CheckpointOrigin {
            found: latest.checkpoint.origin.clone(),
            expected: origin.to_owned(),
        }
        .into());
    }
    Ok(Recovered { frontier, latest })
}
