//! `tlog monitor`: follows a log and checks that it stays one append-only history (C2SP tlog-checkpoint
//! "Signatures"; RFC 9162 §8.3 monitoring).
//!
//! Each round fetches the latest checkpoint, verifies its signature, and proves it consistent (RFC 9162 §2.1.4.2)
//! with the checkpoint trusted in the state file, which then advances. With `--download-entries` the round also
//! downloads every entry the trusted tree does not yet cover and recomputes the root itself; the frontier of
//! entries audited so far is kept beside the state file (`FILE.frontier`) so each entry is fetched once.
//! Nothing is saved unless the whole round verified.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use tlog_checkpoint::{SignedCheckpoint, VerifierKey};
use tlog_client::{ClientError, LogClient, TrustedLog};
use tlog_core::{CompactRange, Hash, TreeSize};

use crate::args::MonitorArgs;
use crate::commands::Context;
use crate::error::{CliError, EXIT_INCONSISTENT};
use crate::output::{checkpoint_json, checkpoint_line, read_file, write_atomic};
use crate::reader::Reader;
use crate::trust::TrustFile;

/// Seconds between rounds when `--interval` is not given.
const DEFAULT_INTERVAL: u64 = 30;

/// `FILE.frontier`: the audited frontier of the log's entries.
fn frontier_path(state: &Path) -> PathBuf {
    let mut name = OsString::from(state.as_os_str());
    name.push(".frontier");
    PathBuf::from(name)
}

/// The frontier file: the log it belongs to, and the RFC 9162 tree of the entries audited so far as its
/// [`CompactRange`] (one subtree hash per set bit of `size`).
#[derive(Serialize, Deserialize)]
struct FrontierFile {
    log_key: String,
    size: u64,
    hashes: Vec<String>,
}

/// Loads the frontier (empty if the file does not exist) and checks it against the trusted state: it must be for
/// the same log, and may not be ahead of the trusted tree or disagree with it at the same size.
fn load_frontier(
    path: &Path,
    key: &VerifierKey,
    trusted: &TrustedLog,
) -> Result<CompactRange, CliError> {
    if !path.exists() {
        return Ok(CompactRange::new());
    }
    let bad = |why: String| CliError::FileFormat {
        what: "frontier file",
        path: path.to_owned(),
        why: format!("{why}; delete it to download and check all entries again"),
    };
    let file: FrontierFile = serde_json::from_slice(&read_file("frontier file", path)?)
        .map_err(|e| bad(format!("not a frontier: {e}")))?;
    if file.log_key.trim() != key.to_string() {
        return Err(bad(format!("it is for the log key {}", file.log_key)));
    }
    let hashes = file
        .hashes
        .iter()
        .map(|h| Hash::from_hex(h).ok_or_else(|| bad(format!("{h:?} is not a hash"))))
        .collect::<Result<Vec<_>, _>>()?;
    let frontier =
        CompactRange::from_parts(TreeSize(file.size), hashes).map_err(|e| bad(e.to_string()))?;
    if frontier.size() > trusted.size() {
        return Err(bad(format!(
            "it covers {} entries but the trusted tree has only {}",
            frontier.size(),
            trusted.size()
        )));
    }
    if frontier.size() == trusted.size() && frontier.root() != trusted.root() {
        return Err(bad(format!(
            "its root {} is not the trusted root {} for size {}",
            frontier.root(),
            trusted.root(),
            trusted.size()
        )));
    }
    Ok(frontier)
}

fn save_frontier(path: &Path, key: &VerifierKey, frontier: &CompactRange) -> Result<(), CliError> {
    let file = FrontierFile {
        log_key: key.to_string(),
        size: frontier.size().0,
        hashes: frontier.hashes().iter().map(Hash::to_hex).collect(),
    };
    let mut text = serde_json::to_vec_pretty(&file)?;
    text.push(b'\n');
    write_atomic("frontier file", path, &text)
}

/// What one round verified.
struct Round {
    /// The checkpoint trusted before the round, if any.
    previous: Option<SignedCheckpoint>,
    /// The checkpoint trusted after it.
    current: SignedCheckpoint,
    /// Entries `[from, to)` downloaded and hashed into the root.
    entries: Option<(TreeSize, TreeSize)>,
    /// The gRPC API's checkpoint, found to agree with the tiles.
    cross_checked: Option<SignedCheckpoint>,
}

/// Checks the gRPC API's latest checkpoint against `tiles`, the tiles' verified checkpoint: a tree the tiles hold
/// must have the root they give it, and a larger one must extend the tiles' tree by the log's consistency proof.
/// A disagreement is a fork, reported with both signed notes.
async fn cross_check(
    reader: &Reader,
    grpc: &mut LogClient,
    tiles: &SignedCheckpoint,
) -> Result<SignedCheckpoint, CliError> {
    let Reader::Tiles { client, .. } = reader else {
        return Err(CliError::Usage("--cross-check needs --tiles".into()));
    };
    let theirs = grpc.checkpoint().await?;
    let checked = if theirs.checkpoint.size <= tiles.checkpoint.size {
        client.cross_check(&theirs, tiles).await
    } else {
        grpc.consistency(tiles, Some(theirs.checkpoint.size))
            .await
            .and_then(|c| {
                // The proof was checked against the checkpoint the log returned for that size.
                if c.new.checkpoint.root == theirs.checkpoint.root {
                    Ok(())
                } else {
                    Err(ClientError::Fork {
                        size: theirs.checkpoint.size,
                        trusted_root: c.new.checkpoint.root,
                        new_root: theirs.checkpoint.root,
                    })
                }
            })
    };
    match checked {
        Ok(()) => Ok(theirs),
        Err(ClientError::Fork {
            size,
            trusted_root,
            new_root,
        }) => Err(CliError::Fork {
            size,
            trusted_root,
            new_root,
            trusted_note: Some(tiles.note.clone()),
            log_note: Some(theirs.note),
        }),
        Err(e) => Err(e.into()),
    }
}

async fn round(
    client: &mut Reader,
    grpc: Option<&mut LogClient>,
    policy: &tlog_client::WitnessPolicy,
    state: &Path,
    download: bool,
) -> Result<Round, CliError> {
    let key = client.key().clone();
    let mut trust = TrustFile::load(state, key.clone(), policy.clone())?;
    let frontier_file = frontier_path(state);
    let frontier = if download {
        Some(load_frontier(&frontier_file, &key, trust.trusted())?)
    } else {
        None
    };
    let latest = client.checkpoint().await?;
    trust.advance(client, latest.clone()).await?;
    // Of two notes for the same tree the later-timestamped is kept, so report what is trusted now.
    let current = trust.trusted().latest().cloned().unwrap_or(latest);
    let audited = match frontier {
        Some(frontier) => {
            let from = frontier.size();
            Some((from, client.audit_entries(&frontier, &current).await?))
        }
        None => None,
    };
    let cross_checked = match grpc {
        Some(grpc) => Some(cross_check(client, grpc, &current).await?),
        None => None,
    };
    // The state first: a crash before the frontier is saved only means entries are downloaded again.
    trust.save()?;
    if let Some((_, frontier)) = &audited {
        save_frontier(&frontier_file, &key, frontier)?;
    }
    Ok(Round {
        previous: trust.previous().cloned(),
        entries: audited.map(|(from, f)| (from, f.size())),
        current,
        cross_checked,
    })
}

fn report(round: &Round) -> (serde_json::Value, String) {
    let Round {
        previous,
        current,
        entries,
        cross_checked,
    } = round;
    let mut human = match previous {
        None => format!(
            "TOFU: no trusted checkpoint yet, trusting {} on its signature",
            checkpoint_line(current)
        ),
        Some(p) if p.checkpoint.size == current.checkpoint.size => {
            format!("OK: no new entries; {}", checkpoint_line(current))
        }
        Some(p) => format!(
            "OK: {} extends trusted tree size {} (consistency proof verified)",
            checkpoint_line(current),
            p.checkpoint.size
        ),
    };
    if let Some((from, to)) = entries {
        human.push_str(&format!(
            "\nentries [{from}, {to}) downloaded; the root recomputed from all entries matches"
        ));
    }
    if let Some(grpc) = cross_checked {
        human.push_str(&format!(
            "\ncross-checked: the gRPC API's {} agrees with the tiles",
            checkpoint_line(grpc)
        ));
    }
    let json = json!({
        "ok": true,
        "first_use": previous.is_none(),
        "previous_size": previous.as_ref().map(|p| p.checkpoint.size.0),
        "checkpoint": checkpoint_json(current),
        "entries_verified": entries.map(|(from, to)| json!({ "from": from.0, "to": to.0 })),
        "cross_checked": cross_checked.as_ref().map(checkpoint_json),
    });
    (json, human)
}

/// `tlog monitor`. With `--once` any error ends it; otherwise only an inconsistency does, and other errors (a
/// server that is down, say) are reported and retried next round.
pub async fn monitor(ctx: &Context, args: MonitorArgs) -> Result<(), CliError> {
    let mut client = Reader::open(ctx, args.tiles.url.as_deref()).await?;
    let mut grpc = match args.cross_check {
        true => Some(ctx.connect().await?),
        false => None,
    };
    let policy = ctx.policy()?;
    let interval = Duration::from_secs(args.interval.unwrap_or(DEFAULT_INTERVAL));
    loop {
        match round(
            &mut client,
            grpc.as_mut(),
            &policy,
            &args.state,
            args.download_entries,
        )
        .await
        {
            Ok(round) => {
                let (json, human) = report(&round);
                ctx.printer.emit(&json, &human)?;
            }
            Err(e) if args.once || e.exit_code() == EXIT_INCONSISTENT => return Err(e),
            Err(e) => {
                ctx.printer.report(&e);
                let _ = writeln!(
                    std::io::stderr(),
                    "tlog: retrying in {}s",
                    interval.as_secs()
                );
            }
        }
        if args.once {
            return Ok(());
        }
        tokio::time::sleep(interval).await;
    }
}

#[cfg(test)]
mod tests {
    use tlog_checkpoint::{Checkpoint, SignerKey, sign_checkpoint};
    use tlog_core::leaf_hash;

    use super::*;

    fn tree(n: u64) -> CompactRange {
        let mut t = CompactRange::new();
        t.extend((0..n).map(|i| leaf_hash(&i.to_be_bytes())), |_, _| {})
            .unwrap();
        t
    }

    #[test]
    fn frontier_files_round_trip_and_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.json");
        let path = frontier_path(&state);
        assert_eq!(path, dir.path().join("state.json.frontier"));
        let signer = SignerKey::from_seed("example.com/log", [1; 32]).unwrap();
        let key = signer.verifier();
        let signed = |t: &CompactRange| {
            let cp = Checkpoint::new("example.com/log", t.size(), t.root()).unwrap();
            sign_checkpoint(&signer, &cp, 1_700_000_000).unwrap().note
        };
        let trusted = TrustedLog::with_checkpoint(key.clone(), &signed(&tree(7))).unwrap();

        assert_eq!(
            load_frontier(&path, &key, &trusted).unwrap(),
            CompactRange::new()
        );
        for n in [0, 5, 7] {
            save_frontier(&path, &key, &tree(n)).unwrap();
            assert_eq!(load_frontier(&path, &key, &trusted).unwrap(), tree(n));
        }

        let expect_bad = |what: &str| {
            let err = load_frontier(&path, &key, &trusted).unwrap_err();
            assert!(
                err.to_string().contains(what) && err.to_string().contains("delete it"),
                "{err}"
            );
        };
        save_frontier(&path, &key, &tree(8)).unwrap();
        expect_bad("covers 8 entries");
        let other = SignerKey::from_seed("example.com/log", [2; 32]).unwrap();
        save_frontier(&path, &other.verifier(), &tree(3)).unwrap();
        expect_bad("for the log key");
        // Same size as trusted, other content.
        let mut forged = CompactRange::new();
        forged
            .extend((0..7u64).map(|i| leaf_hash(&[i as u8])), |_, _| {})
            .unwrap();
        save_frontier(&path, &key, &forged).unwrap();
        expect_bad("is not the trusted root");
        std::fs::write(&path, b"{\"log_key\":1}").unwrap();
        expect_bad("not a frontier");
        std::fs::write(
            &path,
            format!("{{\"log_key\":\"{key}\",\"size\":3,\"hashes\":[]}}"),
        )
        .unwrap();
        expect_bad("frontier hashes");
    }
}
