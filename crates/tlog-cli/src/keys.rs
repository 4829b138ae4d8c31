//! Key files: generating a log's Ed25519 signed-note key pair (C2SP signed-note "Verifier keys"; private keys in
//! the `PRIVATE+KEY+...` text of Go's `sumdb/note`, which `tlog-checkpoint` reads), and reading the verifier key
//! every verifying command needs.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use tlog_checkpoint::{CosignerKey, SignerKey, VerifierKey};
use tlog_client::WitnessPolicy;

use crate::error::CliError;

/// A freshly generated key pair and where it was written.
#[derive(Debug)]
pub struct GeneratedKey {
    /// The verifier key, to publish.
    pub verifier: VerifierKey,
    /// The private key file (mode 0600).
    pub private_path: PathBuf,
    /// The verifier key file beside it.
    pub verifier_path: PathBuf,
}

/// Makes a key pair named `name` from a 32-byte seed drawn from the operating system's RNG, writes the private
/// key to `out` (created with mode 0600, never overwritten) and the verifier key to `out` with the extension
/// `.vkey`.
pub fn keygen(name: &str, out: &Path) -> Result<GeneratedKey, CliError> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).map_err(CliError::Random)?;
    let key = SignerKey::from_seed(name, seed).map_err(|e| {
        CliError::Usage(format!(
            "--name {name:?} cannot name a key: {e}; use the log's origin, e.g. example.com/log"
        ))
    })?;
    let verifier_path = out.with_extension("vkey");
    if verifier_path == out {
        return Err(CliError::Usage(format!(
            "--out {} would be overwritten by the verifier key; name the private key file e.g. log.key",
            out.display()
        )));
    }
    let verifier = key.verifier();
    write_new(out, &format!("{}\n", key.to_private_string()), true)?;
    write_new(&verifier_path, &format!("{verifier}\n"), false)?;
    Ok(GeneratedKey {
        verifier,
        private_path: out.to_owned(),
        verifier_path,
    })
}

/// Creates `path`, refusing to replace an existing file: a key overwritten by mistake is a log lost.
fn write_new(path: &Path, text: &str, private: bool) -> Result<(), CliError> {
    let what = if private {
        "private key file"
    } else {
        "verifier key file"
    };
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        // Set at creation, so the seed is never readable by others, not even briefly.
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            CliError::Usage(format!(
                "{what} {} already exists; refusing to overwrite a key (choose another --out)",
                path.display()
            ))
        } else {
            CliError::File {
                what,
                path: path.to_owned(),
                source,
            }
        }
    })?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|source| CliError::File {
            what,
            path: path.to_owned(),
            source,
        })
}

/// Reads the log's verifier key from `--key`: the key itself, or `@path` to a file holding it.
pub fn verifier_key(arg: Option<&str>) -> Result<VerifierKey, CliError> {
    let arg = arg.ok_or_else(|| {
        CliError::Usage(
            "--key is required: pass the log's verifier key (data/log.vkey), e.g. --key @data/log.vkey, or set \
             TLOG_VERIFIER_KEY"
                .into(),
        )
    })?;
    let (text, source) = match arg.strip_prefix('@') {
        Some(path) => {
            let text = fs::read_to_string(path).map_err(|source| CliError::File {
                what: "--key file",
                path: path.into(),
                source,
            })?;
            (text, format!("--key file {path}"))
        }
        None => (arg.to_owned(), "--key".to_owned()),
    };
    if text.trim_start().starts_with("PRIVATE+KEY+") {
        return Err(CliError::Usage(format!(
            "{source} holds a PRIVATE key; pass the log's verifier key instead (data/log.vkey), and keep the \
             private key secret"
        )));
    }
    VerifierKey::parse(&text).map_err(|e| {
        CliError::Usage(format!(
            "{source} is not a verifier key ({e}); expected <name>+<key id>+<base64>, as in data/log.vkey"
        ))
    })
}

/// The witness policy of `--witness` (each a cosigner key or @FILE) and `--quorum` (default: all of them).
pub fn witness_policy(args: &[String], quorum: Option<usize>) -> Result<WitnessPolicy, CliError> {
    let mut witnesses = Vec::with_capacity(args.len());
    for arg in args {
        let (text, source) = match arg.strip_prefix('@') {
            Some(path) => {
                let text = fs::read_to_string(path).map_err(|source| CliError::File {
                    what: "--witness file",
                    path: path.into(),
                    source,
                })?;
                (text, format!("--witness file {path}"))
            }
            None => (arg.clone(), format!("--witness {arg}")),
        };
        let key = CosignerKey::parse(&text).map_err(|e| {
            CliError::Usage(format!(
                "{source} is not a witness cosigner key ({e}); expected <name>+<key id>+<base64 of 0x04 and the \
                 Ed25519 public key>"
            ))
        })?;
        witnesses.push(key);
    }
    WitnessPolicy::new(witnesses, quorum).map_err(|e| {
        CliError::Usage(format!(
            "{e} (pass --witness once per witness and --quorum K)"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keygen_writes_a_private_file_and_a_verifier_key() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("log.key");
        let made = keygen("example.com/log", &out).unwrap();
        assert_eq!(made.verifier_path, dir.path().join("log.vkey"));
        let private = fs::read_to_string(&out).unwrap();
        let signer = SignerKey::parse_private(&private).unwrap();
        assert_eq!(signer.verifier(), made.verifier);
        assert_eq!(made.verifier.name(), "example.com/log");
        let vkey_arg = format!("@{}", made.verifier_path.display());
        assert_eq!(verifier_key(Some(&vkey_arg)).unwrap(), made.verifier);
        assert_eq!(
            verifier_key(Some(&made.verifier.to_string())).unwrap(),
            made.verifier
        );

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&out).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "private key mode {mode:o}");
        }

        // Never overwrites, and two runs never make the same key.
        match keygen("example.com/log", &out) {
            Err(CliError::Usage(msg)) => assert!(msg.contains("already exists"), "{msg}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert_eq!(fs::read_to_string(&out).unwrap(), private);
        let other = keygen("example.com/log", &dir.path().join("b.key")).unwrap();
        assert_ne!(other.verifier, made.verifier);
    }

    #[test]
    fn bad_names_and_keys_say_what_to_fix() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["", "has space", "a+b"] {
            assert!(
                matches!(
                    keygen(name, &dir.path().join("x.key")),
                    Err(CliError::Usage(_))
                ),
                "{name:?}"
            );
        }
        assert!(!dir.path().join("x.key").exists());
        assert!(matches!(
            keygen("n", &dir.path().join("x.vkey")),
            Err(CliError::Usage(_))
        ));

        let msg = |arg: Option<&str>| verifier_key(arg).unwrap_err().to_string();
        assert!(msg(None).contains("--key is required"));
        assert!(msg(Some("nonsense")).contains("not a verifier key"));
        assert!(msg(Some("@/nonexistent/log.vkey")).contains("/nonexistent/log.vkey"));
        let made = keygen("n", &dir.path().join("p.key")).unwrap();
        let private_arg = format!("@{}", made.private_path.display());
        assert!(msg(Some(&private_arg)).contains("PRIVATE key"));
    }
}
