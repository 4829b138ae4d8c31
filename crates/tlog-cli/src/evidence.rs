//! `tlog evidence export` and `tlog evidence verify`: the I/O around `tlog_client::evidence`, which owns the
//! format and every check (docs/evidence.md).
//!
//! Export picks the events (by index, by receipt files, or by a filter over the audit-event fields of
//! [`crate::event`], scanning the log's entries), reads their entries, asks for ONE multiproof of all of them
//! (verified on arrival against the signed checkpoint), optionally the consistency proof to the latest
//! checkpoint, and writes the bundle. Verify reads a bundle and checks it offline with `--key` (and the
//! `--witness` policy), printing a summary.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{Value, json};
use tlog_client::evidence::{
    EventKind, EvidenceBundle, EvidenceConsistency, EvidenceEvent, Opening, VerifiedEvidence,
};
use tlog_client::{ClientError, LogClient, ReceiptFile, verify_evidence_bytes};
use tlog_core::private::parse_private_entry;
use tlog_core::{Hash, LeafIndex, TreeSize, leaf_hash};

use crate::args::ExportArgs;
use crate::commands::Context;
use crate::error::CliError;
use crate::event::EventTime;
use crate::output::{checkpoint_json, checkpoint_line, read_file, write_atomic};

/// Entries a filter scans per `GetEntries` call (the server's default limit per call is 1,000,000).
const SCAN_WINDOW: u64 = 100_000;
/// Entries further apart than this are read with separate `GetEntries` calls rather than one spanning both.
const READ_GAP: u64 = 256;

/// The audit-event filter of `export`: every given field must match.
#[derive(Debug, Default)]
pub struct EventFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub resource: Option<String>,
    pub since: Option<EventTime>,
    pub until: Option<EventTime>,
}

impl EventFilter {
    fn is_empty(&self) -> bool {
        self.actor.is_none()
            && self.action.is_none()
            && self.resource.is_none()
            && self.since.is_none()
            && self.until.is_none()
    }

    /// Whether `entry` is an audit event (a JSON object with the `tlog submit --actor` fields) that matches.
    /// Entries of any other shape never match.
    pub fn matches(&self, entry: &[u8]) -> bool {
        let Ok(Value::Object(event)) = serde_json::from_slice::<Value>(entry) else {
            return false;
        };
        let field = |name: &str| event.get(name).and_then(Value::as_str);
        let equal = |name: &str, want: &Option<String>| {
            want.as_ref()
                .is_none_or(|want| field(name) == Some(want.as_str()))
        };
        if !(equal("actor", &self.actor)
            && equal("action", &self.action)
            && equal("resource", &self.resource))
        {
            return false;
        }
        if self.since.is_none() && self.until.is_none() {
            return true;
        }
        let Some(time) = field("time").and_then(|t| EventTime::parse(t).ok()) else {
            return false;
        };
        self.since.is_none_or(|since| time >= since) && self.until.is_none_or(|until| time < until)
    }
}

/// `tlog evidence export`.
pub async fn export(ctx: &Context, args: ExportArgs) -> Result<(), CliError> {
    let mut client = ctx.connect().await?;
    // The tree to select events in: the one asked for, or the latest. Without --size the multiproof is asked of
    // the latest tree (under a witness policy, the newest witnessed one); an event beyond it fails there.
    let size = match args.size {
        Some(size) => TreeSize(size),
        None => client.checkpoint().await?.checkpoint.size,
    };
    let mut indices: BTreeSet<u64> = args.indices.iter().copied().collect();
    for path in &args.receipts {
        indices.insert(receipt_index(path)?);
    }
    let filter = EventFilter {
        actor: args.actor,
        action: args.action,
        resource: args.resource,
        since: args.since,
        until: args.until,
    };
    let mut entries = std::collections::BTreeMap::new();
    if !filter.is_empty() {
        let (from, to) = (
            args.from.unwrap_or(0),
            args.to.unwrap_or(size.0).min(size.0),
        );
        // In windows, each well under the server's limit on one GetEntries call.
        let mut window = from;
        while window < to {
            let end = to.min(window.saturating_add(SCAN_WINDOW));
            let mut pages = client.entries(LeafIndex(window), LeafIndex(end)).await?;
            while let Some((start, page)) = pages.next_page().await? {
                for (i, entry) in (start.0..).zip(page) {
                    if filter.matches(&entry) {
                        indices.insert(i);
                        entries.insert(i, entry);
                    }
                }
            }
            window = end;
        }
    }
    if indices.is_empty() {
        return Err(CliError::Usage(
            "no events selected: give --index, --receipt, or a filter (--actor, --action, --resource, --since, \
             --until) that matches at least one entry"
                .into(),
        ));
    }
    if let Some(&beyond) = indices.range(size.0..).next() {
        return Err(CliError::Usage(format!(
            "index {beyond} is not in the log's tree of size {size}"
        )));
    }
    read_missing(&client, &indices, &mut entries).await?;
    let leaves: Vec<(LeafIndex, Hash)> = entries
        .iter()
        .map(|(&i, e)| (LeafIndex(i), leaf_hash(e)))
        .collect();
    let proven = client
        .multi_inclusion(&leaves, args.size.map(TreeSize))
        .await?;
    let consistency = if args.consistency {
        let c = client.consistency(&proven.checkpoint, None).await?;
        Some(EvidenceConsistency {
            checkpoint: c.new.note,
            proof: c.proof,
        })
    } else {
        None
    };
    let mut events = Vec::with_capacity(entries.len());
    let mut erased = 0usize;
    for (i, entry) in entries {
        let opening = if args.openings && matches!(parse_private_entry(&entry), Ok(Some(_))) {
            match client.private_payload(LeafIndex(i)).await {
                Ok(opened) => Some(Opening {
                    payload: opened.payload,
                    salt: opened.salt,
                }),
                // Erased: the commitment stays proven, its opening is gone for good.
                Err(ClientError::Rpc(status))
                    if status.code() == tonic::Code::FailedPrecondition =>
                {
                    erased += 1;
                    None
                }
                Err(e) => return Err(e.into()),
            }
        } else {
            None
        };
        events.push(EvidenceEvent {
            index: LeafIndex(i),
            entry,
            opening,
        });
    }
    let opened = events.iter().filter(|e| e.opening.is_some()).count();
    let bundle = EvidenceBundle {
        checkpoint: proven.checkpoint.note.clone(),
        events,
        multiproof: proven.proof,
        consistency,
    };
    let bytes = bundle.to_bytes();
    write_atomic("evidence bundle", &args.out, &bytes)?;
    let json = json!({
        "file": args.out,
        "events": bundle.events.len(),
        "proof_hashes": bundle.multiproof.len(),
        "bytes": bytes.len(),
        "openings": opened,
        "erased_without_opening": erased,
        "checkpoint": checkpoint_json(&proven.checkpoint),
    });
    let openings = if args.openings {
        format!(" ({opened} private payloads opened, {erased} erased)")
    } else {
        String::new()
    };
    let human = format!(
        "wrote {} events{openings} with one multiproof of {} hashes ({} bytes) to {}\nin {}",
        bundle.events.len(),
        bundle.multiproof.len(),
        bytes.len(),
        args.out.display(),
        checkpoint_line(&proven.checkpoint),
    );
    ctx.printer.emit(&json, &human)
}

/// The index a saved receipt names. Its proof is not needed: the bundle's multiproof replaces it.
fn receipt_index(path: &Path) -> Result<u64, CliError> {
    let text = read_file("receipt file", path)?;
    let file: ReceiptFile = serde_json::from_slice(&text).map_err(|e| CliError::FileFormat {
        what: "receipt file",
        path: path.to_owned(),
        why: e.to_string(),
    })?;
    Ok(file.receipt.index.0)
}

/// Reads the entries of `indices` not yet in `entries`, one `GetEntries` call per run of nearby indices.
async fn read_missing(
    client: &LogClient,
    indices: &BTreeSet<u64>,
    entries: &mut std::collections::BTreeMap<u64, Vec<u8>>,
) -> Result<(), CliError> {
    let missing: Vec<u64> = indices
        .iter()
        .copied()
        .filter(|i| !entries.contains_key(i))
        .collect();
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for i in missing {
        match runs.last_mut() {
            Some((_, end)) if i - *end < READ_GAP => *end = i + 1,
            _ => runs.push((i, i + 1)),
        }
    }
    for (start, end) in runs {
        let mut pages = client.entries(LeafIndex(start), LeafIndex(end)).await?;
        while let Some((first, page)) = pages.next_page().await? {
            for (i, entry) in (first.0..).zip(page) {
                if indices.contains(&i) {
                    entries.insert(i, entry);
                }
            }
        }
    }
    Ok(())
}

/// `tlog evidence verify FILE`: offline.
pub fn verify(ctx: &Context, path: &Path) -> Result<(), CliError> {
    let key = ctx.verifier_key()?;
    let policy = ctx.policy()?;
    let bytes = read_file("evidence bundle", path)?;
    let verified =
        verify_evidence_bytes(&key, &policy, &bytes).map_err(|source| CliError::Rejected {
            what: "evidence bundle",
            source,
        })?;
    ctx.printer
        .emit(&summary_json(&verified), &summary(&verified))
}

fn kind_json(kind: &EventKind) -> Value {
    match kind {
        EventKind::Public => json!({"type": "public"}),
        EventKind::Private { subject, payload } => json!({
            "type": "private",
            "subject": subject,
            "opened": payload.is_some(),
            "payload": payload.as_ref().map(|p| String::from_utf8_lossy(p).into_owned()),
        }),
    }
}

fn summary_json(v: &VerifiedEvidence) -> Value {
    json!({
        "ok": true,
        "checkpoint": checkpoint_json(&v.checkpoint),
        "newer_checkpoint": v.newer.as_ref().map(checkpoint_json),
        "proof_hashes": v.proof_hashes,
        "events": v.events.iter().map(|e| json!({
            "index": e.index.0,
            "leaf_hash": e.leaf_hash.to_hex(),
            "entry": String::from_utf8_lossy(&e.entry),
            "kind": kind_json(&e.kind),
        })).collect::<Vec<_>>(),
    })
}

fn summary(v: &VerifiedEvidence) -> String {
    let mut out = format!(
        "evidence bundle VERIFIED: {} events proven by one multiproof of {} hashes\nin {}",
        v.events.len(),
        v.proof_hashes,
        checkpoint_line(&v.checkpoint)
    );
    if let Some(newer) = &v.newer {
        out.push_str(&format!(
            "\nwhich is consistent with the newer {}",
            checkpoint_line(newer)
        ));
    }
    for e in &v.events {
        let what = match &e.kind {
            EventKind::Public => String::from_utf8_lossy(&e.entry).into_owned(),
            EventKind::Private {
                subject,
                payload: Some(p),
            } => format!(
                "private (subject {subject}, opened): {}",
                String::from_utf8_lossy(p)
            ),
            EventKind::Private {
                subject,
                payload: None,
            } => format!("private (subject {subject}, not opened)"),
        };
        out.push_str(&format!("\n  {}: {}", e.index, what));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(actor: &str, action: &str, time: &str) -> Vec<u8> {
        format!(
            r#"{{"action":"{action}","actor":"{actor}","details":{{}},"resource":"db","time":"{time}"}}"#
        )
        .into_bytes()
    }

    #[test]
    fn the_filter_matches_every_given_field() {
        let e = event("alice", "read", "2024-05-01T12:00:00Z");
        let t = |s| EventTime::parse(s).unwrap();
        assert!(EventFilter::default().matches(&e));
        let by_actor = EventFilter {
            actor: Some("alice".into()),
            ..EventFilter::default()
        };
        assert!(by_actor.matches(&e));
        assert!(!by_actor.matches(&event("bob", "read", "2024-05-01T12:00:00Z")));
        let window = EventFilter {
            action: Some("read".into()),
            since: Some(t("2024-05-01T00:00:00Z")),
            until: Some(t("2024-05-02T00:00:00Z")),
            ..EventFilter::default()
        };
        assert!(window.matches(&e));
        assert!(!window.matches(&event("alice", "read", "2024-05-02T00:00:00Z")));
        assert!(!window.matches(&event("alice", "write", "2024-05-01T12:00:00Z")));
        assert!(!by_actor.matches(b"not json"));
        assert!(!by_actor.matches(br#"{"actor":7}"#));
    }
}
