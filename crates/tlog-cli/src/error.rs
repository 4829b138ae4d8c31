//! The CLI's single error type, its exit codes, and messages that say what to fix.

use std::path::PathBuf;

use tlog_client::ClientError;
use tlog_core::{Hash, TreeSize};

/// Exit code of usage, I/O, network and server errors: nothing was proven either way.
pub const EXIT_ERROR: u8 = 1;
/// Exit code when something that should verify does not: a bad signature or proof, a tampered receipt, or a log
/// that forked, rolled back or serves entries that do not match what it signs.
pub const EXIT_INCONSISTENT: u8 = 3;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A missing or invalid argument; the message says what to pass.
    #[error("{0}")]
    Usage(String),
    /// Reading or writing a file failed.
    #[error("{what} {}: {source}", path.display())]
    File {
        /// What the file is for, e.g. "receipt file".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file that exists but does not hold what it should.
    #[error("{what} {}: {why}", path.display())]
    FileFormat {
        /// What the file is for.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// Standard input or output failed.
    #[error("{what}: {source}")]
    Stdio {
        /// Which stream and what for.
        what: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The operating system's random number generator failed.
    #[error("cannot get randomness for the key from the operating system: {0}")]
    Random(getrandom::Error),
    /// The log could not be reached.
    #[error("cannot reach the log at {server}: {} (check --server or TLOG_SERVER)", connect_chain(.cause))]
    Connect {
        /// The endpoint tried.
        server: String,
        /// Why; its whole cause chain is in the message, as transport errors say little at the top.
        cause: ClientError,
    },
    /// The log's tiles could not be read (`--tiles`).
    #[error("cannot read the log's tiles at {url}: {} (check --tiles)", chain(.cause))]
    TilesUnreachable {
        /// The URL prefix tried.
        url: String,
        /// Why.
        cause: ClientError,
    },
    /// A document (receipt) failed verification.
    #[error("{what} REJECTED: {}", describe(.source))]
    Rejected {
        /// What was rejected.
        what: &'static str,
        /// Why.
        #[source]
        source: ClientError,
    },
    /// JSON output could not be encoded.
    #[error("cannot encode JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Two validly signed checkpoints of one size with different roots, with the notes that prove it.
    #[error(
        "FORK: trusted checkpoint size {size} root {trusted_root} but the log now signs root {new_root} for size {size}"
    )]
    Fork {
        /// The tree size both checkpoints claim.
        size: TreeSize,
        /// The root already trusted.
        trusted_root: Hash,
        /// The conflicting root.
        new_root: Hash,
        /// The trusted signed note, when known.
        trusted_note: Option<String>,
        /// The log's conflicting signed note, when it could be fetched.
        log_note: Option<String>,
    },
    /// The S3 archive could not be opened (its URL, the AWS environment).
    #[error("archive: {0}")]
    Archive(#[from] tlog_archive::Error),
    /// Anything the verifying client refused or could not do.
    #[error("{}", describe(.0))]
    Client(#[from] ClientError),
}

impl CliError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Fork { .. } => EXIT_INCONSISTENT,
            // An archive whose entries, root and tiles disagree.
            CliError::Archive(tlog_archive::Error::Audit(_)) => EXIT_INCONSISTENT,
            CliError::Client(e) | CliError::Rejected { source: e, .. } if is_inconsistency(e) => {
                EXIT_INCONSISTENT
            }
            _ => EXIT_ERROR,
        }
    }

    /// Signed notes that back the error up, as (label, note) pairs.
    pub fn evidence(&self) -> Vec<(&'static str, &str)> {
        match self {
            CliError::Fork {
                trusted_note,
                log_note,
                ..
            } => [
                ("trusted_note", trusted_note.as_deref()),
                ("log_note", log_note.as_deref()),
            ]
            .into_iter()
            .filter_map(|(label, note)| note.map(|n| (label, n)))
            .collect(),
            _ => Vec::new(),
        }
    }

    /// A fork proven by two signed checkpoints; the notes are attached by the caller when it has them.
    pub fn fork(size: TreeSize, trusted_root: Hash, new_root: Hash) -> Self {
        CliError::Fork {
            size,
            trusted_root,
            new_root,
            trusted_note: None,
            log_note: None,
        }
    }
}

/// An error's message followed by those of its causes, skipping causes whose text is already included.
fn chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        cause = c.source();
    }
    message
}

/// A connection failure's causes; the client's own "transport error" wrapper adds nothing to tonic's.
fn connect_chain(e: &ClientError) -> String {
    match e {
        ClientError::Transport(t) => chain(t),
        other => chain(other),
    }
}

/// Verification failures: the log, or a file claiming to come from it, does not check out.
fn is_inconsistency(e: &ClientError) -> bool {
    use ClientError as E;
    matches!(
        e,
        E::BadCheckpoint(_)
            | E::CheckpointFieldMismatch { .. }
            | E::EmptyTreeRoot { .. }
            | E::LeafHashMismatch { .. }
            | E::InclusionProofInvalid(_)
            | E::ConsistencyProofInvalid(_)
            | E::MultiProofInvalid(_)
            | E::BadOpening { .. }
            | E::BadEvidence(_)
            | E::Fork { .. }
            | E::CheckpointOlderThanTrusted { .. }
            | E::EntriesRootMismatch { .. }
            | E::EntryCountMismatch { .. }
            | E::UnexpectedResponse { .. }
            | E::BadField(_)
            | E::BadTile { .. }
            | E::EntryMismatch { .. }
            | E::BodyTooLarge { .. }
    )
}

/// The client's message, reworded where a reader needs to know what happened or what to do.
fn describe(e: &ClientError) -> String {
    use ClientError as E;
    use tlog_checkpoint::Error as NoteError;
    match e {
        E::Fork {
            size,
            trusted_root,
            new_root,
        } => CliError::fork(*size, *trusted_root, *new_root).to_string(),
        E::CheckpointOlderThanTrusted {
            trusted_size,
            new_size,
        } => format!(
            "ROLLBACK: the log now signs tree size {new_size}, but size {trusted_size} is already trusted; a log \
             never shrinks"
        ),
        E::ConsistencyProofInvalid(why) => format!(
            "INCONSISTENT: the log's newer checkpoint is not proven to extend the older one: consistency proof \
             invalid: {why}"
        ),
        E::EntriesRootMismatch {
            size,
            computed,
            expected,
        } => format!(
            "CONTENT MISMATCH: the log's entries for tree size {size} hash to root {computed}, but it signs root \
             {expected}"
        ),
        E::BadCheckpoint(NoteError::NoQuorum {
            quorum,
            valid,
            missing,
        }) => format!(
            "NOT WITNESSED: the checkpoint has valid cosignatures from {valid} of the --witness keys, {quorum} \
             required (--quorum); missing: {}",
            missing.join(", ")
        ),
        // A known key whose signature fails means a changed note, not a wrong key; no hint for that.
        E::BadCheckpoint(
            why @ (NoteError::NoKnownSignature | NoteError::OriginMismatch { .. }),
        ) => format!(
            "checkpoint rejected: {why} (is --key the verifier key of this log, e.g. its data/log.vkey?)"
        ),
        E::Rpc(status) => match status.code() {
            tonic::Code::Unauthenticated | tonic::Code::PermissionDenied => format!(
                "the log refused the request: {} (pass a token with the scope it needs, write for \
                 submissions or read-private for payloads, with --token or TLOG_TOKEN)",
                status.message()
            ),
            code => format!("the log answered {code:?}: {}", status.message()),
        },
        E::StateFileInvalid { path, source } => format!(
            "state file {}: {} (was it written for another log, or edited? move it aside to start over)",
            path.display(),
            describe(source)
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_separate_proofs_from_plumbing() {
        let fork = CliError::from(ClientError::Fork {
            size: TreeSize(10),
            trusted_root: Hash([0xab; 32]),
            new_root: Hash([0xcd; 32]),
        });
        assert_eq!(fork.exit_code(), EXIT_INCONSISTENT);
        let msg = fork.to_string();
        assert!(
            msg.starts_with("FORK: trusted checkpoint size 10 root abab")
                && msg.ends_with(&format!("{} for size 10", Hash([0xcd; 32]))),
            "{msg}"
        );
        assert_eq!(
            CliError::Usage("x".into()).exit_code(),
            EXIT_ERROR,
            "usage errors"
        );
        let denied = CliError::from(ClientError::from(tonic::Status::unauthenticated("no")));
        assert_eq!(denied.exit_code(), EXIT_ERROR);
        assert!(denied.to_string().contains("--token"), "{denied}");
        let rollback = CliError::from(ClientError::CheckpointOlderThanTrusted {
            trusted_size: TreeSize(5),
            new_size: TreeSize(4),
        });
        assert_eq!(rollback.exit_code(), EXIT_INCONSISTENT);
        assert!(rollback.to_string().starts_with("ROLLBACK"));
    }
}
