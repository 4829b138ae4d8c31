//! Printing results (human text or JSON) and writing files safely.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tlog_checkpoint::SignedCheckpoint;

use crate::error::CliError;
use crate::event::EventTime;

/// Where results go: standard output, as text for people or as one JSON value per result.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    /// `--json` was given.
    pub json: bool,
}

impl Printer {
    /// Prints one result. Write errors (such as a closed pipe) are returned, never a panic as `println!` would.
    pub fn emit(&self, json: &Value, human: &str) -> Result<(), CliError> {
        let text = if self.json {
            json.to_string()
        } else {
            human.to_owned()
        };
        let mut out = std::io::stdout().lock();
        writeln!(out, "{text}")
            .and_then(|()| out.flush())
            .map_err(|source| CliError::Stdio {
                what: "writing standard output",
                source,
            })
    }

    /// Reports a failed command: the message (and any evidence) on standard error, and with `--json` also a
    /// JSON object on standard output so scripts need read only one stream.
    pub fn report(&self, error: &CliError) {
        let message = error.to_string();
        let evidence = error.evidence();
        let mut err = std::io::stderr().lock();
        // Nothing useful can be done if standard error is gone; the exit code still tells.
        let _ = writeln!(err, "tlog: {message}");
        for (label, note) in &evidence {
            let _ = write!(err, "--- {label} ---\n{note}");
        }
        if self.json {
            let evidence: serde_json::Map<String, Value> = evidence
                .into_iter()
                .map(|(label, note)| (label.to_owned(), Value::from(note)))
                .collect();
            let value = json!({
                "ok": false,
                "error": message,
                "exit_code": error.exit_code(),
                "evidence": evidence,
            });
            let _ = writeln!(std::io::stdout().lock(), "{value}");
        }
    }
}

/// A Unix timestamp as RFC 3339 UTC, or as the bare number if out of that range.
pub fn time(unix: u64) -> String {
    EventTime::from_unix(unix).map_or_else(|_| unix.to_string(), |t| t.to_rfc3339())
}

/// A verified checkpoint as JSON.
pub fn checkpoint_json(sc: &SignedCheckpoint) -> Value {
    json!({
        "origin": sc.checkpoint.origin,
        "size": sc.checkpoint.size.0,
        "root": sc.checkpoint.root.to_hex(),
        "timestamp": sc.timestamp,
        "note": sc.note,
    })
}

/// A verified checkpoint in one line.
pub fn checkpoint_line(sc: &SignedCheckpoint) -> String {
    format!(
        "{} tree size {} root {} (signed {})",
        sc.checkpoint.origin,
        sc.checkpoint.size,
        sc.checkpoint.root,
        time(sc.timestamp)
    )
}

/// Reads a whole file, naming it in the error.
pub fn read_file(what: &'static str, path: &Path) -> Result<Vec<u8>, CliError> {
    fs::read(path).map_err(|source| CliError::File {
        what,
        path: path.to_owned(),
        source,
    })
}

/// Reads all of standard input.
pub fn read_stdin() -> Result<Vec<u8>, CliError> {
    let mut data = Vec::new();
    std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut data).map_err(|source| {
        CliError::Stdio {
            what: "reading standard input",
            source,
        }
    })?;
    Ok(data)
}

/// Replaces `path` atomically: a synced temporary file in the same directory renamed over it, so a crash leaves
/// the old content or the new, never a torn file.
pub fn write_atomic(what: &'static str, path: &Path, data: &[u8]) -> Result<(), CliError> {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(format!(".tmp.{}", std::process::id()));
    let tmp: PathBuf = path.with_file_name(name);
    let written = fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(data).and_then(|()| f.sync_all()))
        .and_then(|()| fs::rename(&tmp, path));
    written.map_err(|source| {
        // Best effort: the temporary file is garbage either way, and the original error matters more.
        let _ = fs::remove_file(&tmp);
        CliError::File {
            what,
            path: path.to_owned(),
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_replace_whole_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.json");
        write_atomic("test file", &path, b"one").unwrap();
        write_atomic("test file", &path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "no temp left");
        let err = write_atomic("test file", &dir.path().join("no/such/dir"), b"x").unwrap_err();
        assert!(err.to_string().starts_with("test file "), "{err}");
    }

    #[test]
    fn times_print_as_rfc3339() {
        assert_eq!(time(1_714_564_800), "2024-05-01T12:00:00Z");
        assert_eq!(time(u64::MAX), u64::MAX.to_string());
    }
}
