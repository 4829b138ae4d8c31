//! Opening a log: identity (origin, key), recovery of the frontier and the latest signed checkpoint, and the
//! refusal to start when the store and the signatures disagree.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use tlog_checkpoint::{
    Checkpoint, SignedCheckpoint, SignerKey, sign_checkpoint, verify_checkpoint,
};
use tlog_core::{CompactRange, TreeSize, empty_root, range_nodes};
use tlog_storage::LogStore;

use crate::clock::Clock;
use crate::error::{Error, Result};

pub use tlog_storage::identity::{META_ORIGIN, META_VERIFIER_KEY};
use tlog_storage::identity::{Recorded, check_identity, record_identity};

fn io(context: String) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Io { context, source }
}

/// Loads the log's Ed25519 key from `path`, or creates it (mode 0600) from `seed` when the file does not exist,
/// writing the verifier key to `vkey_path`. An existing key must be named `origin` and not be readable by others.
pub fn load_or_create_key(
    path: &Path,
    vkey_path: &Path,
    origin: &str,
    seed: impl FnOnce() -> Result<[u8; 32]>,
) -> Result<(SignerKey, bool)> {
    let created = !path.exists();
    let key = if created {
        let key = SignerKey::from_seed(origin, seed()?)?;
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(io(format!("creating key file {}", path.display())))?;
        file.write_all(format!("{}\n", key.to_private_string()).as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(io(format!("writing key file {}", path.display())))?;
        key
    } else {
        let mode = fs::metadata(path)
            .map_err(io(format!("reading key file {}", path.display())))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(Error::Config(format!(
                "key file {} is accessible by other users (mode {:o}); run `chmod 600 {}`",
                path.display(),
                mode & 0o777,
                path.display()
            )));
        }
        let text =
            fs::read_to_string(path).map_err(io(format!("reading key file {}", path.display())))?;
        let key = SignerKey::parse_private(&text).map_err(|e| {
            Error::Config(format!(
                "key file {} is not a signed-note private key: {e}",
                path.display()
            ))
        })?;
        if key.name() != origin {
            return Err(Error::Config(format!(
                "key file {} is for origin {:?} but the log's origin is {origin:?}",
                path.display(),
                key.name()
            )));
        }
        key
    };
    fs::write(vkey_path, format!("{}\n", key.verifier()))
        .map_err(io(format!("writing {}", vkey_path.display())))?;
    Ok((key, created))
}

/// The state a sequencer continues from.
pub struct Recovered {
    pub frontier: CompactRange,
    pub latest: SignedCheckpoint,
}

/// Recovers the log from `store`: checks the stored identity against `key`, rebuilds the frontier from stored
/// nodes, and checks that the newest stored checkpoint is validly signed by `key` for exactly that size and root.
/// A new, empty store is stamped with the key's identity.
pub fn recover<S: LogStore>(store: &S, key: &SignerKey, clock: &dyn Clock) -> Result<Recovered> {
    let origin = key.name();
    let vkey = key.verifier();
    let size = store.tree_size()?;
    match check_identity(store, &vkey)? {
        Ok(Recorded::Matches) => {}
        Ok(Recorded::Nothing) => record_identity(store, &vkey)?,
        Err(mismatch) => return Err(Error::Recovery(mismatch.to_string())),
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
            latest: sign_checkpoint(key, &cp, clock.now_unix())?,
        });
    }
    let (cp_size, note) = store.latest_checkpoint()?.ok_or_else(|| {
        Error::Recovery(format!(
            "the store holds {} entries but no signed checkpoint",
            size.0
        ))
    })?;
    let latest = verify_checkpoint(&vkey, &note).map_err(|e| {
        Error::Recovery(format!(
            "the newest stored checkpoint (size {}) does not verify with {vkey}: {e}",
            cp_size.0
        ))
    })?;
    if latest.checkpoint.size != size || cp_size != size {
        return Err(Error::Recovery(format!(
            "the newest checkpoint is for size {} but the store holds {} entries",
            latest.checkpoint.size.0, size.0
        )));
    }
    if latest.checkpoint.root != root {
        return Err(Error::Recovery(format!(
            "the signed root for size {} is {} but the stored tree nodes give {root}",
            size.0, latest.checkpoint.root
        )));
    }
    if latest.checkpoint.origin != origin {
        return Err(Error::Recovery(format!(
            "the newest checkpoint names origin {:?}, expected {origin:?}",
            latest.checkpoint.origin
        )));
    }
    Ok(Recovered { frontier, latest })
}
