//! Durable state: per origin, the latest cosigned checkpoint note, one file each in `<data>/state/`.
//!
//! A file is named by the SHA-256 of the origin in hex (origins are free text; hashes are safe file names) and
//! holds the signed note exactly as it was submitted. Writes go to a temporary file that is fsynced, renamed over
//! the old one and made durable by fsyncing the folder, so after a crash a file holds either the old note or the
//! new one, whole. The witness answers only after [`StateStore::persist`] returns.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tlog_checkpoint::{Checkpoint, Note, VerifierKey};

use crate::error::{Error, Result, io};

/// The folder under the data folder that holds the state files.
pub const STATE_DIR: &str = "state";
/// Extension of a state file.
const EXTENSION: &str = "checkpoint";
/// Extension of a state file being written; a leftover one (a crash mid-write) is ignored and replaced.
const TEMP_EXTENSION: &str = "checkpoint.tmp";

/// The latest cosigned checkpoint of an origin, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cosigned {
    /// The checkpoint.
    pub checkpoint: Checkpoint,
    /// The signed note it came in.
    pub note: String,
}

/// File in the data folder that a running witness holds an exclusive `flock` on.
pub const LOCK_FILE: &str = "witness.lock";

/// The state files of one data folder, owned by one witness at a time.
#[derive(Debug)]
pub struct StateStore {
    dir: PathBuf,
    /// Holds the folder's lock; the kernel releases it when the process ends, SIGKILL included.
    _lock: fs::File,
}

impl StateStore {
    /// Locks the data folder and opens (creating if needed) `<data>/state`. A folder another witness holds is
    /// [`Error::Locked`].
    pub fn open(data_dir: &Path) -> Result<StateStore> {
        let lock_path = data_dir.join(LOCK_FILE);
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(format!("opening {}", lock_path.display())))?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive)
            .map_err(|_| Error::Locked(data_dir.to_owned()))?;
        let dir = data_dir.join(STATE_DIR);
        fs::create_dir_all(&dir).map_err(io(format!("creating {}", dir.display())))?;
        // The folder's own entry must be durable too, or a power loss could take every state file with it.
        fs::File::open(data_dir)
            .and_then(|d| d.sync_all())
            .map_err(io(format!("syncing {}", data_dir.display())))?;
        Ok(StateStore { dir, _lock: lock })
    }

    fn path(&self, origin: &str, extension: &str) -> PathBuf {
        let name = hex::encode(Sha256::digest(origin.as_bytes()));
        self.dir.join(format!("{name}.{extension}"))
    }

    /// Loads the latest cosigned checkpoint of `origin`, `None` if it never cosigned one.
    ///
    /// A file that is not a signed checkpoint note of this origin, or whose signature by one of `keys` does not
    /// verify, is [`Error::CorruptState`]: forgetting it would restart the origin at size 0. A note that no
    /// current key signed (the log's key was rotated out of the configuration) is accepted with a warning.
    pub fn load(&self, origin: &str, keys: &[VerifierKey]) -> Result<Option<Cosigned>> {
        let path = self.path(origin, EXTENSION);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(format!("reading {}", path.display()))(e)),
        };
        let corrupt = |reason: String| Error::CorruptState {
            path: path.clone(),
            reason,
        };
        let note = String::from_utf8(bytes).map_err(|_| corrupt("not UTF-8".into()))?;
        let parsed = Note::parse(note.as_bytes()).map_err(|e| corrupt(e.to_string()))?;
        let checkpoint = Checkpoint::parse(&parsed.text).map_err(|e| corrupt(e.to_string()))?;
        if checkpoint.origin != origin {
            return Err(corrupt(format!(
                "holds a checkpoint of origin {:?}",
                checkpoint.origin
            )));
        }
        match parsed.verify(keys) {
            Ok(_) => {}
            Err(tlog_checkpoint::Error::NoKnownSignature) => tracing::warn!(
                origin,
                size = checkpoint.size.0,
                "the stored checkpoint is signed by none of the configured keys; keeping it"
            ),
            Err(e) => return Err(corrupt(e.to_string())),
        }
        Ok(Some(Cosigned { checkpoint, note }))
    }

    /// Replaces the stored checkpoint of `origin` with `note`, durably: when this returns, a crash keeps it.
    pub fn persist(&self, origin: &str, note: &str) -> Result<()> {
        let path = self.path(origin, EXTENSION);
        let temp = self.path(origin, TEMP_EXTENSION);
        let write = || -> std::io::Result<()> {
            let mut file = fs::File::create(&temp)?;
            file.write_all(note.as_bytes())?;
            file.sync_all()?;
            fs::rename(&temp, &path)?;
            // The rename is durable only once the folder's entry is.
            fs::File::open(&self.dir)?.sync_all()
        };
        write().map_err(io(format!("writing {}", path.display())))
    }
}

#[cfg(test)]
mod tests {
    use tlog_checkpoint::SignerKey;
    use tlog_core::{Hash, TreeSize};

    use super::*;

    const ORIGIN: &str = "example.com/log";

    fn key() -> SignerKey {
        SignerKey::from_seed(ORIGIN, [3; 32]).unwrap()
    }

    fn note(size: u64) -> String {
        let cp = Checkpoint::new(ORIGIN, TreeSize(size), Hash([size as u8; 32])).unwrap();
        key().sign_note(&cp.to_body()).unwrap()
    }

    #[test]
    fn the_latest_persisted_note_loads() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        assert_eq!(store.load(ORIGIN, &[key().verifier()]).unwrap(), None);
        store.persist(ORIGIN, &note(3)).unwrap();
        store.persist(ORIGIN, &note(5)).unwrap();
        drop(store);
        let loaded = StateStore::open(dir.path())
            .unwrap()
            .load(ORIGIN, &[key().verifier()])
            .unwrap()
            .unwrap();
        assert_eq!(loaded.checkpoint.size, TreeSize(5));
        assert_eq!(loaded.note, note(5));
    }

    #[test]
    fn one_store_at_a_time_holds_a_folder() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        assert!(matches!(
            StateStore::open(dir.path()),
            Err(Error::Locked(_))
        ));
        drop(store);
        StateStore::open(dir.path()).unwrap();
    }

    #[test]
    fn a_damaged_file_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        let path = store.path(ORIGIN, EXTENSION);
        let good = note(5);
        for damaged in [
            String::new(),
            good[..good.len() - 3].to_string(),
            good.replacen('5', "6", 1),
            note(5).replace(ORIGIN, "example.com/other"),
        ] {
            fs::write(&path, &damaged).unwrap();
            assert!(
                matches!(
                    store.load(ORIGIN, &[key().verifier()]),
                    Err(Error::CorruptState { .. })
                ),
                "{damaged:?}"
            );
        }
    }

    #[test]
    fn a_note_of_a_rotated_out_key_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        store.persist(ORIGIN, &note(5)).unwrap();
        let other = SignerKey::from_seed(ORIGIN, [4; 32]).unwrap();
        let loaded = store.load(ORIGIN, &[other.verifier()]).unwrap().unwrap();
        assert_eq!(loaded.checkpoint.size, TreeSize(5));
    }
}
