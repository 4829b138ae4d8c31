//! What a witness needs to run, its defaults, and the TOML file that can hold it.
//!
//! ```toml
//! name = "witness.example.com/w1"   # only for a new key
//! listen = "127.0.0.1:7380"
//! prefix = ""                        # submission prefix: POST <prefix>/add-checkpoint
//! max_body_bytes = 65536
//! request_timeout_secs = 10
//!
//! [[log]]
//! origin = "example.com/audit"
//! keys = ["example.com/audit+01234567+AR..."]
//! ```

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use tlog_checkpoint::VerifierKey;

use crate::error::{Error, Result};

/// Where the witness listens by default (tlogd's default is 7400).
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 7380);
/// Default data folder: key, verifier key and state.
pub const DEFAULT_DATA_DIR: &str = "witness-data";
/// Largest request body accepted by default. A request is a 63-hash proof at most (~2.8 KB) and a checkpoint
/// with its signatures; 64 KiB leaves room for many cosignatures and extension lines while bounding memory.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 << 10;
/// Longest a request may take by default, body upload included.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// One witnessed log: its origin and the log keys trusted to sign its checkpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// The checkpoint origin line.
    pub origin: String,
    /// Verifier keys (`0x01`); a checkpoint needs a valid signature by at least one.
    pub keys: Vec<VerifierKey>,
}

impl LogConfig {
    /// A log whose origin is its key's name, as for tlog's own logs.
    pub fn from_key(key: VerifierKey) -> LogConfig {
        LogConfig {
            origin: key.name().to_owned(),
            keys: vec![key],
        }
    }
}

/// Everything a witness needs to run.
#[derive(Clone, Debug)]
pub struct WitnessConfig {
    /// Folder holding `witness.key`, `witness.vkey` and `state/`.
    pub data_dir: PathBuf,
    /// Name of a new witness key; an existing key keeps its own name and refuses another.
    pub name: Option<String>,
    /// The logs witnessed. Two entries with one origin are merged (their keys are all trusted).
    pub logs: Vec<LogConfig>,
    /// Address to listen on (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Submission prefix: requests go to `POST <prefix>/add-checkpoint`. Empty, or `/` followed by a path
    /// without a trailing `/`.
    pub prefix: String,
    /// Largest request body; larger ones get 413 before anything is parsed.
    pub max_body_bytes: usize,
    /// Longest a request may take; slower ones get 503.
    pub request_timeout: Duration,
}

impl Default for WitnessConfig {
    fn default() -> Self {
        WitnessConfig {
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            name: None,
            logs: Vec::new(),
            listen: DEFAULT_LISTEN,
            prefix: String::new(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

impl WitnessConfig {
    /// Checks the values that cannot be typed away and merges logs of one origin: the trusted keys per origin.
    pub(crate) fn trusted_logs(&self) -> Result<BTreeMap<String, Vec<VerifierKey>>> {
        if !self.prefix.is_empty() && (!self.prefix.starts_with('/') || self.prefix.ends_with('/'))
        {
            return Err(Error::Config(format!(
                "prefix {:?} must be empty or start with `/` and not end with `/`",
                self.prefix
            )));
        }
        if self.max_body_bytes == 0 || self.request_timeout.is_zero() {
            return Err(Error::Config(
                "max_body_bytes and the request timeout must be positive".into(),
            ));
        }
        let mut logs: BTreeMap<String, Vec<VerifierKey>> = BTreeMap::new();
        for log in &self.logs {
            if log.origin.is_empty() || log.origin.contains(|c: char| c < ' ') {
                return Err(Error::Config(format!(
                    "origin {:?} is not a checkpoint origin line",
                    log.origin
                )));
            }
            if log.keys.is_empty() {
                return Err(Error::Config(format!("log {:?} has no keys", log.origin)));
            }
            let keys = logs.entry(log.origin.clone()).or_default();
            for key in &log.keys {
                if !keys.contains(key) {
                    keys.push(key.clone());
                }
            }
        }
        if logs.is_empty() {
            return Err(Error::Config(
                "no logs to witness: give --log VKEY or [[log]] entries in --config".into(),
            ));
        }
        Ok(logs)
    }
}

/// The TOML config file. Every field is optional; command-line flags override it and add to its logs.
#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Data folder.
    pub data: Option<PathBuf>,
    /// Name of a new witness key.
    pub name: Option<String>,
    /// Listen address.
    pub listen: Option<SocketAddr>,
    /// Submission prefix.
    pub prefix: Option<String>,
    /// Largest request body.
    pub max_body_bytes: Option<usize>,
    /// Longest a request may take, in seconds.
    pub request_timeout_secs: Option<u64>,
    /// The witnessed logs.
    #[serde(default)]
    pub log: Vec<FileLog>,
}

/// One `[[log]]` table.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct FileLog {
    /// The checkpoint origin.
    pub origin: String,
    /// Log verifier keys.
    pub keys: Vec<String>,
}

impl FileConfig {
    /// Parses the file's text.
    pub fn parse(text: &str) -> Result<FileConfig> {
        toml::from_str(text).map_err(|e| Error::Config(e.to_string()))
    }

    /// Reads and parses a config file.
    pub fn read(path: &Path) -> Result<FileConfig> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
        FileConfig::parse(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
    }

    /// The logs of the file, keys parsed.
    pub fn logs(&self) -> Result<Vec<LogConfig>> {
        self.log
            .iter()
            .map(|log| {
                let keys = log
                    .keys
                    .iter()
                    .map(|k| parse_log_key(k))
                    .collect::<Result<_>>()?;
                Ok(LogConfig {
                    origin: log.origin.clone(),
                    keys,
                })
            })
            .collect()
    }
}

/// Parses a log verifier key (`<name>+<id>+base64(0x01 || key)`), saying which key is wrong.
pub fn parse_log_key(text: &str) -> Result<VerifierKey> {
    VerifierKey::parse(text.trim())
        .map_err(|e| Error::Config(format!("log key {:?}: {e}", text.trim())))
}

#[cfg(test)]
mod tests {
    use tlog_checkpoint::SignerKey;

    use super::*;

    fn vkey(name: &str, seed: u8) -> VerifierKey {
        SignerKey::from_seed(name, [seed; 32]).unwrap().verifier()
    }

    #[test]
    fn the_file_lists_logs_and_settings() {
        let a = vkey("a.example/log", 1);
        let b = vkey("a.example/log", 2);
        let text = format!(
            "listen = \"127.0.0.1:0\"\nprefix = \"/w\"\n\n[[log]]\norigin = \"a.example/log\"\nkeys = [\"{a}\", \"{b}\"]\n"
        );
        let file = FileConfig::parse(&text).unwrap();
        assert_eq!(file.prefix.as_deref(), Some("/w"));
        assert_eq!(
            file.logs().unwrap(),
            [LogConfig {
                origin: "a.example/log".into(),
                keys: vec![a, b]
            }]
        );
    }

    #[test]
    fn unknown_fields_and_bad_keys_are_refused() {
        assert!(FileConfig::parse("lissen = \"x\"\n").is_err());
        let file = FileConfig::parse("[[log]]\norigin = \"o\"\nkeys = [\"nope\"]\n").unwrap();
        assert!(matches!(file.logs(), Err(Error::Config(m)) if m.contains("nope")));
    }

    #[test]
    fn logs_of_one_origin_merge() {
        let config = WitnessConfig {
            logs: vec![
                LogConfig::from_key(vkey("o", 1)),
                LogConfig::from_key(vkey("o", 2)),
                LogConfig::from_key(vkey("o", 1)),
            ],
            ..WitnessConfig::default()
        };
        assert_eq!(config.trusted_logs().unwrap()["o"].len(), 2);
    }

    #[test]
    fn a_witness_without_logs_or_with_a_bad_prefix_is_refused() {
        assert!(WitnessConfig::default().trusted_logs().is_err());
        for prefix in ["w", "/w/"] {
            let config = WitnessConfig {
                logs: vec![LogConfig::from_key(vkey("o", 1))],
                prefix: prefix.into(),
                ..WitnessConfig::default()
            };
            assert!(config.trusted_logs().is_err(), "{prefix}");
        }
    }
}
