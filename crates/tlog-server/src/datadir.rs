//! The human-readable statement a data folder carries about itself: `<data>/README`, written when `tlogd` first
//! starts a log there, naming the origin, the verifier key, when the log was created and by which tlog version.
//! `Server::open` writes it; `tlogd info --data DIR` reads it back beside the stored tree size and latest checkpoint.
//!
//! The file is informational: the log's identity is its key (`log.key`, `log.vkey`) and the signed checkpoints
//! in `db/`; nothing trusts this text, and a folder without one (a log created before it existed) still opens.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// File name of the statement, in the data folder.
pub const README: &str = "README";

/// The facts `README` records; each is one `name: value` line of the file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DataReadme {
    pub origin: String,
    pub verifier_key: String,
    /// RFC 3339 UTC, to the second.
    pub created: String,
    /// The tlog version that created the log.
    pub created_by: String,
}

const ORIGIN: &str = "origin";
const VERIFIER_KEY: &str = "verifier key";
const CREATED: &str = "created";
const CREATED_BY: &str = "created by";

impl DataReadme {
    /// The statement for a log created now by this build.
    pub fn new(origin: &str, verifier_key: &str) -> Self {
        DataReadme {
            origin: origin.to_owned(),
            verifier_key: verifier_key.to_owned(),
            created: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            created_by: format!("tlogd {}", env!("CARGO_PKG_VERSION")),
        }
    }

    /// The file's text.
    pub fn render(&self) -> String {
        format!(
            "This folder holds a tlog transparency log. Do not edit it by hand.\n\
             \n\
             {ORIGIN}: {}\n\
             {VERIFIER_KEY}: {}\n\
             {CREATED}: {}\n\
             {CREATED_BY}: {}\n\
             \n\
             log.key   the log's Ed25519 signing key (mode 0600): keep it secret and back it up\n\
             log.vkey  the verifier key above: publish it; clients, monitors and witnesses check signatures with it\n\
             db/       RocksDB: entries, leaf index, tree tiles and every signed checkpoint\n\
             \n\
             tlogd info --data <this folder>     tree size and latest checkpoint, without starting the server\n\
             tlogd verify --data <this folder>   check every entry, node and signature offline\n",
            self.origin, self.verifier_key, self.created, self.created_by
        )
    }

    /// Reads the `name: value` lines back; fields the file lacks stay empty.
    pub fn parse(text: &str) -> Self {
        let mut readme = DataReadme::default();
        for line in text.lines() {
            let Some((name, value)) = line.split_once(": ") else {
                continue;
            };
            let field = match name {
                ORIGIN => &mut readme.origin,
                VERIFIER_KEY => &mut readme.verifier_key,
                CREATED => &mut readme.created,
                CREATED_BY => &mut readme.created_by,
                _ => continue,
            };
            *field = value.trim().to_owned();
        }
        readme
    }
}

/// Path of the statement in `data`.
pub fn readme_path(data: &Path) -> PathBuf {
    data.join(README)
}

/// Writes `<data>/README` for a log created now, unless the folder already has one. A log that existed before
/// this file did gets one too, with its creation time unknown.
pub fn write_readme_if_missing(
    data: &Path,
    origin: &str,
    verifier_key: &str,
    created_now: bool,
) -> std::io::Result<()> {
    let path = readme_path(data);
    if path.exists() {
        return Ok(());
    }
    let mut readme = DataReadme::new(origin, verifier_key);
    if !created_now {
        readme.created = format!("unknown (before {})", readme.created);
        readme.created_by = "unknown".into();
    }
    std::fs::write(path, readme.render())
}

/// Reads `<data>/README`, if there is one.
pub fn read_readme(data: &Path) -> std::io::Result<Option<DataReadme>> {
    match std::fs::read_to_string(readme_path(data)) {
        Ok(text) => Ok(Some(DataReadme::parse(&text))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_reads_back_what_it_says() {
        let readme = DataReadme::new("example.com/audit", "example.com/audit+01234567+AAAA");
        let parsed = DataReadme::parse(&readme.render());
        assert_eq!(parsed, readme);
        assert!(parsed.created.ends_with('Z'), "{}", parsed.created);
        assert!(parsed.created_by.starts_with("tlogd "));
    }

    #[test]
    fn an_existing_readme_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(readme_path(dir.path()), "origin: first\n").unwrap();
        write_readme_if_missing(dir.path(), "second", "vkey", true).unwrap();
        let kept = read_readme(dir.path()).unwrap().unwrap();
        assert_eq!(kept.origin, "first");
    }
}
