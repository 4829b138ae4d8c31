//! The trusted-state file of `checkpoint --state`, `audit` and `monitor`: loaded once per command (or monitor
//! round), moved forward only by [`TrustFile::advance`], and saved by the caller once everything it checks has
//! verified.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tlog_checkpoint::{SignedCheckpoint, VerifierKey};
use tlog_client::{ClientError, TrustedLog, WitnessPolicy};

use crate::error::CliError;
use crate::reader::Reader;

/// A [`TrustedLog`] with the file it came from and what it trusted when loaded.
pub struct TrustFile {
    path: PathBuf,
    trusted: TrustedLog,
    previous: Option<SignedCheckpoint>,
}

impl TrustFile {
    /// Loads the state for `key`; a missing file is a fresh state (trust on first use). Trust moves on only to
    /// checkpoints the witness `policy` accepts.
    pub fn load(path: &Path, key: VerifierKey, policy: WitnessPolicy) -> Result<Self, CliError> {
        let trusted = TrustedLog::load_or_new(path, key)?.with_policy(policy);
        Ok(TrustFile {
            path: path.to_owned(),
            previous: trusted.latest().cloned(),
            trusted,
        })
    }

    /// The trusted state now.
    pub fn trusted(&self) -> &TrustedLog {
        &self.trusted
    }

    /// The checkpoint trusted when the file was loaded.
    pub fn previous(&self) -> Option<&SignedCheckpoint> {
        self.previous.as_ref()
    }

    /// Moves trust to `new` with a consistency proof from the log or its tiles ([`Reader::advance`]), turning a
    /// fork into one that carries both signed notes as evidence. On error the state is unchanged.
    pub async fn advance(
        &mut self,
        reader: &Reader,
        new: SignedCheckpoint,
    ) -> Result<(), CliError> {
        match reader.advance(&mut self.trusted, new.clone()).await {
            Ok(()) => Ok(()),
            Err(ClientError::Fork {
                size,
                trusted_root,
                new_root,
            }) => {
                let log_note = reader.fork_note(size, new_root, &new).await;
                Err(CliError::Fork {
                    size,
                    trusted_root,
                    new_root,
                    trusted_note: self.trusted.latest().map(|sc| sc.note.clone()),
                    log_note,
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Writes the state back, atomically.
    pub fn save(&self) -> Result<(), CliError> {
        Ok(self.trusted.save(&self.path)?)
    }

    /// The move from the loaded state to the current one, for `--json`.
    pub fn json(&self) -> Value {
        json!({ "previous_size": self.previous_size(), "size": self.trusted.size().0 })
    }

    /// The move from the loaded state to the current one, in words.
    pub fn line(&self) -> String {
        let path = self.path.display();
        let now = self.trusted.size();
        if self.previous.is_none() {
            format!("trusted state {path}: first use, now trusting tree size {now}")
        } else {
            format!(
                "trusted state {path}: consistent with trusted tree size {}, now trusting size {now}",
                self.previous_size()
            )
        }
    }

    fn previous_size(&self) -> u64 {
        self.previous.as_ref().map_or(0, |sc| sc.checkpoint.size.0)
    }
}
