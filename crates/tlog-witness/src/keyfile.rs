//! The witness's own key: `<data>/witness.key` (signed-note private key text, mode 0600), created on the first
//! run, and `<data>/witness.vkey`, its cosigner verifier key (type `0x04`) for logs and clients to configure.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tlog_checkpoint::{CosignerKey, SignerKey};

use crate::error::{Error, Result, io};

/// File name of the private key in the data folder.
pub const KEY_FILE: &str = "witness.key";
/// File name of the cosigner verifier key in the data folder.
pub const VKEY_FILE: &str = "witness.vkey";
/// Name prefix of a new key when no name is given: recognisably a local default, made unique by random hex.
pub const DEFAULT_NAME_PREFIX: &str = "witness.localhost/";

/// The witness key of `data_dir`, and whether it was created now.
///
/// An existing key keeps its name: a different `name` is refused (the name is part of the key ID every log and
/// client has configured). A new key is named `name`, else [`DEFAULT_NAME_PREFIX`] and 8 random hex digits.
pub fn load_or_create(data_dir: &Path, name: Option<&str>) -> Result<(SignerKey, bool)> {
    let path = data_dir.join(KEY_FILE);
    let (key, created) = match read(&path)? {
        Some(key) => {
            if let Some(name) = name
                && name != key.name()
            {
                return Err(key_error(
                    &path,
                    format!(
                        "the key is named {:?}, not {name:?}; an existing key keeps its name",
                        key.name()
                    ),
                ));
            }
            (key, false)
        }
        None => {
            let seed = random_seed()?;
            let name = match name {
                Some(name) => name.to_owned(),
                None => format!("{DEFAULT_NAME_PREFIX}{}", hex::encode(&seed[..4])),
            };
            // The name's 4 hex digits come from the seed only for the default; the key uses a fresh seed.
            (create(&path, &name, random_seed()?)?, true)
        }
    };
    let vkey = data_dir.join(VKEY_FILE);
    fs::write(&vkey, format!("{}\n", CosignerKey::of(&key)))
        .map_err(io(format!("writing {}", vkey.display())))?;
    Ok((key, created))
}

fn key_error(path: &Path, reason: String) -> Error {
    Error::Key {
        path: path.to_owned(),
        reason,
    }
}

fn random_seed() -> Result<[u8; 32]> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).map_err(Error::Randomness)?;
    Ok(seed)
}

/// The key in `path`, `None` if there is no such file; refuses a key other users can read.
fn read(path: &PathBuf) -> Result<Option<SignerKey>> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(format!("reading {}", path.display()))(e)),
    };
    let mode = fs::metadata(path)
        .map_err(io(format!("reading {}", path.display())))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(key_error(
            path,
            format!(
                "mode {:o} lets other users read it; chmod 600 it",
                mode & 0o777
            ),
        ));
    }
    SignerKey::parse_private(&text)
        .map(Some)
        .map_err(|e| key_error(path, format!("not a signed-note private key: {e}")))
}

/// Writes a new key (mode 0600, never over an existing file) and syncs it before it is used.
fn create(path: &Path, name: &str, seed: [u8; 32]) -> Result<SignerKey> {
    let key = SignerKey::from_seed(name, seed)
        .map_err(|e| Error::Config(format!("witness name {name:?}: {e}")))?;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io(format!("creating {}", path.display())))?;
    file.write_all(format!("{}\n", key.to_private_string()).as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io(format!("writing {}", path.display())))?;
    if let Some(dir) = path.parent() {
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(format!("syncing {}", dir.display())))?;
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_key_is_private_and_reloads_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let (key, created) = load_or_create(dir.path(), Some("w.example/1")).unwrap();
        assert!(created);
        let mode = fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let (again, created) = load_or_create(dir.path(), None).unwrap();
        assert!(!created);
        assert_eq!(again.public_key(), key.public_key());
        assert_eq!(again.name(), "w.example/1");
        let vkey = fs::read_to_string(dir.path().join(VKEY_FILE)).unwrap();
        assert_eq!(CosignerKey::parse(&vkey).unwrap(), CosignerKey::of(&key));
    }

    #[test]
    fn an_existing_key_refuses_another_name() {
        let dir = tempfile::tempdir().unwrap();
        load_or_create(dir.path(), Some("w.example/1")).unwrap();
        assert!(matches!(
            load_or_create(dir.path(), Some("w.example/2")),
            Err(Error::Key { .. })
        ));
    }

    #[test]
    fn a_readable_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        load_or_create(dir.path(), None).unwrap();
        let path = dir.path().join(KEY_FILE);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            load_or_create(dir.path(), None),
            Err(Error::Key { .. })
        ));
    }
}
