//! The verifier's state: the log key and the latest checkpoint it has verified to be on the log's one
//! append-only history (C2SP tlog-checkpoint "Signatures": a log must never sign two checkpoints that no
//! consistency proof links).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use tlog_checkpoint::{SignedCheckpoint, VerifierKey};
use tlog_core::{Hash, TreeSize, empty_root};

use crate::checkpoint::{check_forward, reverify, tree_of, verify_signed_note};
use crate::{ClientError, WitnessPolicy};

/// A log key and the latest checkpoint trusted for it.
///
/// Trust starts on first use: the first checkpoint given to [`advance`](Self::advance) is accepted on its
/// signature alone (it is treated as extending the empty tree, so its consistency proof must be empty). From
/// then on a checkpoint is accepted only with a consistency proof from the trusted one, so a client that
/// persists this state (see [`save`](Self::save)) can never be moved to a different branch of the log
/// without an error. Pin a known checkpoint with [`with_checkpoint`](Self::with_checkpoint) to avoid the
/// first-use leap of faith.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedLog {
    key: VerifierKey,
    policy: WitnessPolicy,
    latest: Option<SignedCheckpoint>,
}

/// State file contents: the log key string and the trusted note, which is re-verified on load.
#[derive(Serialize, Deserialize)]
struct StateFile {
    log_key: String,
    checkpoint: Option<String>,
}

impl TrustedLog {
    /// No checkpoint trusted yet.
    pub fn new(key: VerifierKey) -> Self {
        TrustedLog {
            key,
            policy: WitnessPolicy::none(),
            latest: None,
        }
    }

    /// Requires every checkpoint trust moves to to carry the cosignatures `policy` asks for. The checkpoint
    /// already trusted (pinned, or loaded from a state file) is not re-checked against it: it was trusted under
    /// the policy of its day, and a stricter policy applies from the next checkpoint on.
    pub fn with_policy(mut self, policy: WitnessPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The witness policy new checkpoints are verified with.
    pub fn policy(&self) -> &WitnessPolicy {
        &self.policy
    }

    /// Starts from a checkpoint obtained out of band (a pinned note), verified with `key`.
    pub fn with_checkpoint(key: VerifierKey, note: &str) -> Result<Self, ClientError> {
        let latest = verify_signed_note(&key, note.as_bytes())?;
        Ok(TrustedLog {
            key,
            policy: WitnessPolicy::none(),
            latest: Some(latest),
        })
    }

    /// The log's verifier key.
    pub fn key(&self) -> &VerifierKey {
        &self.key
    }

    /// The latest trusted checkpoint, if any.
    pub fn latest(&self) -> Option<&SignedCheckpoint> {
        self.latest.as_ref()
    }

    /// Whether trusting a tree of `new_size` needs a consistency proof: none exists from the empty tree, none is
    /// needed between equal sizes, and a smaller size is refused by [`advance`](Self::advance) without one.
    pub fn needs_proof(&self, new_size: TreeSize) -> bool {
        self.size().0 != 0 && new_size > self.size()
    }

    /// Size of the trusted tree (0 before the first checkpoint).
    pub fn size(&self) -> TreeSize {
        self.latest
            .as_ref()
            .map_or(TreeSize(0), |sc| sc.checkpoint.size)
    }

    /// Root of the trusted tree (`SHA-256("")` before the first checkpoint).
    pub fn root(&self) -> Hash {
        self.latest
            .as_ref()
            .map_or_else(empty_root, |sc| sc.checkpoint.root)
    }

    /// Verifies a signed checkpoint note with the log key and the witness policy, without changing the trusted
    /// state.
    pub fn verify_checkpoint(&self, note: &[u8]) -> Result<SignedCheckpoint, ClientError> {
        self.policy.verify(&self.key, note)
    }

    /// Moves trust to `new` if `consistency_proof` (RFC 9162 §2.1.4, from the trusted size to `new`'s size)
    /// proves it extends the trusted checkpoint.
    ///
    /// `new` is re-verified from its note, so a hand-built [`SignedCheckpoint`] cannot slip in, and must carry the
    /// cosignatures the witness policy asks for. Then:
    /// - smaller than the trusted tree: [`ClientError::CheckpointOlderThanTrusted`];
    /// - same size, different root: [`ClientError::Fork`] naming both roots;
    /// - same size and root: the proof must be empty; the later-timestamped note is kept;
    /// - larger: the proof must verify ([`ClientError::ConsistencyProofInvalid`] otherwise). A failure here may
    ///   be a fork or just a bad proof; only the same-size case can tell them apart without more data.
    ///
    /// On error the trusted state is unchanged.
    pub fn advance(
        &mut self,
        new: SignedCheckpoint,
        consistency_proof: &[Hash],
    ) -> Result<(), ClientError> {
        reverify(&self.key, &new)?;
        self.policy.verify(&self.key, new.note.as_bytes())?;
        // Before the first checkpoint, trust is in the empty tree, which every tree extends without a proof.
        check_forward(
            (self.size(), self.root()),
            tree_of(&new.checkpoint),
            consistency_proof,
        )?;
        let keep_old = self.latest.as_ref().is_some_and(|old| {
            old.checkpoint.size == new.checkpoint.size && old.timestamp > new.timestamp
        });
        if !keep_old {
            self.latest = Some(new);
        }
        Ok(())
    }

    /// Loads the state saved by [`save`](Self::save). The file must be for `key`, and its checkpoint note is
    /// verified again rather than trusted from disk.
    pub fn load(path: &Path, key: VerifierKey) -> Result<Self, ClientError> {
        let text = fs::read(path).map_err(|source| ClientError::StateFileIo {
            path: path.to_owned(),
            source,
        })?;
        let state: StateFile =
            serde_json::from_slice(&text).map_err(|source| ClientError::StateFileFormat {
                path: path.to_owned(),
                source,
            })?;
        let invalid = |source| ClientError::StateFileInvalid {
            path: path.to_owned(),
            source: Box::new(source),
        };
        let expected = key.to_string();
        if state.log_key.trim() != expected {
            return Err(invalid(ClientError::KeyMismatch {
                expected,
                found: state.log_key,
            }));
        }
        match state.checkpoint {
            None => Ok(TrustedLog::new(key)),
            Some(note) => TrustedLog::with_checkpoint(key, &note).map_err(invalid),
        }
    }

    /// Like [`load`](Self::load), but a missing file means a fresh state (trust on first use).
    pub fn load_or_new(path: &Path, key: VerifierKey) -> Result<Self, ClientError> {
        match fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(TrustedLog::new(key)),
            _ => TrustedLog::load(path, key),
        }
    }

    /// Writes the state as JSON, atomically: a temporary file in the same directory is written and synced,
    /// then renamed over `path`, so a crash leaves either the old or the new state, never a torn one.
    pub fn save(&self, path: &Path) -> Result<(), ClientError> {
        let io_error = |source| ClientError::StateFileIo {
            path: path.to_owned(),
            source,
        };
        let state = StateFile {
            log_key: self.key.to_string(),
            checkpoint: self.latest.as_ref().map(|sc| sc.note.clone()),
        };
        let mut json =
            serde_json::to_vec_pretty(&state).map_err(|source| ClientError::StateFileFormat {
                path: path.to_owned(),
                source,
            })?;
        json.push(b'\n');
        let tmp = temp_path(path);
        let written = write_synced(&tmp, &json).and_then(|()| fs::rename(&tmp, path));
        if let Err(e) = written {
            // Best effort: the temporary file is garbage either way, and the original error matters more.
            let _ = fs::remove_file(&tmp);
            return Err(io_error(e));
        }
        sync_parent_dir(path).map_err(io_error)
    }
}

/// `<dir>/.<name>.tmp.<pid>.<n>`: in the same directory, because a rename is atomic only within one file
/// system, and unique per process and call, so concurrent saves never share a temporary file.
fn temp_path(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map_or_else(|| "state".into(), |f| f.to_string_lossy());
    path.with_file_name(format!(".{name}.tmp.{}.{n}", std::process::id()))
}

fn write_synced(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let mut file = fs::File::create(path)?;
    file.write_all(data)?;
    file.sync_all()
}

/// Makes the rename itself durable; directories cannot be opened for syncing on every platform.
#[cfg(unix)]
fn sync_parent_dir(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => fs::File::open(dir)?.sync_all(),
        _ => fs::File::open(".")?.sync_all(),
    }
}

#[cfg(not(unix))]
fn sync_parent_dir(_path: &Path) -> std::io::Result<()> {
    Ok(())
}
