//! The log's signing key file: read and parsed once, created (mode 0600) on a log's first run, and the verifier
//! key written beside it for clients.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use tlog_checkpoint::SignerKey;

use crate::error::{ConfigError, Error, Result};

fn io(context: String) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Io { context, source }
}

/// The key in `path`, or `None` when there is no such file.
pub(crate) fn read(path: &Path) -> Result<Option<SignerKey>> {
    if !path.exists() {
        return Ok(None);
    }
    let text =
        fs::read_to_string(path).map_err(io(format!("reading key file {}", path.display())))?;
    let key = SignerKey::parse_private(&text).map_err(|source| ConfigError::KeyParse {
        path: path.to_owned(),
        source,
    })?;
    Ok(Some(key))
}

/// Checks an existing key: named `origin`, and not accessible by other users.
pub(crate) fn check(path: &Path, key: &SignerKey, origin: &str) -> Result<()> {
    let mode = fs::metadata(path)
        .map_err(io(format!("reading key file {}", path.display())))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(ConfigError::KeyPermissions {
            path: path.to_owned(),
            mode: mode & 0o777,
        }
        .into());
    }
    if key.name() != origin {
        return Err(ConfigError::KeyOrigin {
            path: path.to_owned(),
            key: key.name().to_owned(),
            origin: origin.to_owned(),
        }
        .into());
    }
    Ok(())
}

/// Creates a new key for `origin` from `seed` in `path` (mode 0600; refuses to overwrite a file).
pub(crate) fn create(path: &Path, origin: &str, seed: [u8; 32]) -> Result<SignerKey> {
    let key = SignerKey::from_seed(origin, seed)?;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io(format!("creating key file {}", path.display())))?;
    file.write_all(format!("{}\n", key.to_private_string()).as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io(format!("writing key file {}", path.display())))?;
    Ok(key)
}

/// Writes the verifier key clients need.
pub(crate) fn write_verifier(path: &Path, key: &SignerKey) -> Result<()> {
    fs::write(path, format!("{}\n", key.verifier()))
        .map_err(io(format!("writing {}", path.display())))
}
