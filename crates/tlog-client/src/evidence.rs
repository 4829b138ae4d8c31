//! Evidence bundles: one file proving that a set of events is in the log, checked offline with only the log's
//! verifier key (and, under a witness policy, the witnesses' keys). docs/evidence.md specifies the format.
//!
//! A bundle holds the events' log entries (for a private entry, optionally its opening: payload and salt), ONE
//! multiproof for all of them against a signed checkpoint, and optionally the consistency proof from that
//! checkpoint to a newer one. It is RFC 8785 canonical JSON followed by one line feed, and only that byte string
//! is accepted for its content: a reader parses it, re-encodes what it parsed and requires the same bytes, so no
//! byte of a bundle can change without either breaking the parse, breaking the encoding, or changing what is
//! verified (which then fails).
//!
//! Parsing ([`EvidenceBundle::from_bytes`]) checks the format; [`verify_evidence`] checks the content. Neither
//! needs a network, so both build without the `grpc` and `http` features.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use tlog_checkpoint::{SignedCheckpoint, VerifierKey};
use tlog_core::private::{PrivateError, check_opening, parse_private_entry};
use tlog_core::{Hash, LeafIndex, leaf_hash, verify_multi_inclusion};

use crate::checkpoint::{check_forward, tree_of};
use crate::{ClientError, WitnessPolicy};

/// The `format` member of every bundle.
pub const EVIDENCE_FORMAT: &str = "tlog-evidence";
/// The one `version` this code reads and writes.
pub const EVIDENCE_VERSION: u64 = 1;
/// Indices must be below 2^53, the integers every JSON implementation reads exactly (RFC 7493 I-JSON, RFC 8785).
pub const MAX_JSON_INDEX: u64 = (1 << 53) - 1;

/// Why bytes are not a well-formed evidence bundle (before anything in it is verified).
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    /// Not JSON of the bundle's shape (a missing or unknown member, a wrong type, a duplicate member).
    #[error("not an evidence bundle: {0}")]
    Json(#[source] serde_json::Error),
    /// The `format` member names another format.
    #[error("format is {found:?}, expected {EVIDENCE_FORMAT:?}")]
    Format {
        /// What the bundle says.
        found: String,
    },
    /// A version this code does not read.
    #[error(
        "bundle version {found} is not supported (this reader knows version {EVIDENCE_VERSION})"
    )]
    Version {
        /// What the bundle says.
        found: u64,
    },
    /// A member whose string does not decode: hashes are 64 lowercase hex digits, bytes padded standard base64.
    #[error("{field}: {reason}")]
    Field {
        /// Where, e.g. `events[3].entry`.
        field: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A bundle proves at least one event.
    #[error("the bundle holds no events")]
    NoEvents,
    /// The bytes parse, but are not the canonical encoding of what they hold: RFC 8785 JSON (members sorted, no
    /// whitespace), lowercase hex, canonical base64, then exactly one line feed.
    #[error(
        "the bundle is not in its canonical encoding (RFC 8785 JSON followed by one line feed)"
    )]
    NotCanonical,
}

/// One proven event: its log entry and, for a private entry, optionally the opening that shows its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceEvent {
    /// Position in the log.
    pub index: LeafIndex,
    /// The log entry, byte for byte (for a private event, the commitment entry).
    pub entry: Vec<u8>,
    /// Payload and salt opening a private entry's commitment (see `tlog_core::private`).
    pub opening: Option<Opening>,
}

/// What opens a private entry: the payload and the salt its commitment was made with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opening {
    /// The private payload.
    pub payload: Vec<u8>,
    /// The entry's salt (32 bytes when valid; any length is carried so that verification reports it).
    pub salt: Vec<u8>,
}

/// The newer checkpoint a bundle may carry, with the RFC 9162 §2.1.4 proof that it extends the bundle's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceConsistency {
    /// The newer signed note, as served (with any cosignatures).
    pub checkpoint: String,
    /// Consistency proof from the bundle checkpoint's size to this one's.
    pub proof: Vec<Hash>,
}

/// An evidence bundle, parsed but not verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceBundle {
    /// The signed note of the tree the multiproof proves against, as served (with any cosignatures).
    pub checkpoint: String,
    /// The events, in strictly increasing index order.
    pub events: Vec<EvidenceEvent>,
    /// The multiproof of the events' leaves in the checkpoint's tree (`tlog_core`'s order: left to right).
    pub multiproof: Vec<Hash>,
    /// Optionally, a newer checkpoint and the consistency proof to it.
    pub consistency: Option<EvidenceConsistency>,
}

/// The JSON document. Member names are what RFC 8785 sorts; serde's order does not matter since the encoding is
/// canonicalised.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BundleJson {
    format: String,
    version: u64,
    checkpoint: String,
    events: Vec<EventJson>,
    multiproof: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    consistency: Option<ConsistencyJson>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventJson {
    index: u64,
    entry: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    opening: Option<OpeningJson>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OpeningJson {
    payload: String,
    salt: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsistencyJson {
    checkpoint: String,
    proof: Vec<String>,
}

fn field_error(field: String, reason: &'static str) -> EvidenceError {
    EvidenceError::Field { field, reason }
}

fn hashes_from_hex(field: &str, list: &[String]) -> Result<Vec<Hash>, EvidenceError> {
    list.iter()
        .enumerate()
        .map(|(i, s)| {
            Hash::from_hex(s)
                .ok_or_else(|| field_error(format!("{field}[{i}]"), "expected 64 hex digits"))
        })
        .collect()
}

fn bytes_from_base64(field: impl FnOnce() -> String, s: &str) -> Result<Vec<u8>, EvidenceError> {
    BASE64
        .decode(s)
        .map_err(|_| field_error(field(), "expected padded standard base64"))
}

impl EvidenceBundle {
    /// Parses a bundle file: the format, the version, every member's encoding, and the canonical encoding of the
    /// whole. Nothing is verified yet: see [`verify_evidence`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EvidenceError> {
        let body = bytes
            .strip_suffix(b"\n")
            .ok_or(EvidenceError::NotCanonical)?;
        let json: BundleJson = serde_json::from_slice(body).map_err(EvidenceError::Json)?;
        if json.format != EVIDENCE_FORMAT {
            return Err(EvidenceError::Format { found: json.format });
        }
        if json.version != EVIDENCE_VERSION {
            return Err(EvidenceError::Version {
                found: json.version,
            });
        }
        let bundle = Self::from_json(json)?;
        // Re-encoding what was parsed must give the same bytes: whitespace, member order, escapes, number
        // spellings, hex case and base64 padding have one form each.
        if bundle.to_bytes() != bytes {
            return Err(EvidenceError::NotCanonical);
        }
        Ok(bundle)
    }

    fn from_json(json: BundleJson) -> Result<Self, EvidenceError> {
        if json.events.is_empty() {
            return Err(EvidenceError::NoEvents);
        }
        let events = json
            .events
            .into_iter()
            .enumerate()
            .map(|(i, e)| {
                if e.index > MAX_JSON_INDEX {
                    return Err(field_error(
                        format!("events[{i}].index"),
                        "must be below 2^53",
                    ));
                }
                let opening = e
                    .opening
                    .map(|o| {
                        Ok::<_, EvidenceError>(Opening {
                            payload: bytes_from_base64(
                                || format!("events[{i}].opening.payload"),
                                &o.payload,
                            )?,
                            salt: bytes_from_base64(
                                || format!("events[{i}].opening.salt"),
                                &o.salt,
                            )?,
                        })
                    })
                    .transpose()?;
                Ok(EvidenceEvent {
                    index: LeafIndex(e.index),
                    entry: bytes_from_base64(|| format!("events[{i}].entry"), &e.entry)?,
                    opening,
                })
            })
            .collect::<Result<_, _>>()?;
        let consistency = json
            .consistency
            .map(|c| {
                Ok::<_, EvidenceError>(EvidenceConsistency {
                    proof: hashes_from_hex("consistency.proof", &c.proof)?,
                    checkpoint: c.checkpoint,
                })
            })
            .transpose()?;
        Ok(EvidenceBundle {
            checkpoint: json.checkpoint,
            events,
            multiproof: hashes_from_hex("multiproof", &json.multiproof)?,
            consistency,
        })
    }

    fn to_json(&self) -> BundleJson {
        BundleJson {
            format: EVIDENCE_FORMAT.to_owned(),
            version: EVIDENCE_VERSION,
            checkpoint: self.checkpoint.clone(),
            events: self
                .events
                .iter()
                .map(|e| EventJson {
                    index: e.index.0,
                    entry: BASE64.encode(&e.entry),
                    opening: e.opening.as_ref().map(|o| OpeningJson {
                        payload: BASE64.encode(&o.payload),
                        salt: BASE64.encode(&o.salt),
                    }),
                })
                .collect(),
            multiproof: self.multiproof.iter().map(Hash::to_hex).collect(),
            consistency: self.consistency.as_ref().map(|c| ConsistencyJson {
                checkpoint: c.checkpoint.clone(),
                proof: c.proof.iter().map(Hash::to_hex).collect(),
            }),
        }
    }

    /// The file: RFC 8785 canonical JSON and one line feed.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Only strings and integers below 2^53 (checked when parsing; an exporter's indices are far below):
        // canonicalisation has nothing it could fail on.
        let mut out = serde_json_canonicalizer::to_vec(&self.to_json()).unwrap_or_default();
        out.push(b'\n');
        out
    }
}

/// What a verified event is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// A public entry: the entry is the event.
    Public,
    /// A private entry (a commitment): its subject, and the payload when the bundle opened it.
    Private {
        /// The subject id the entry names.
        subject: String,
        /// The payload, checked against the commitment; `None` when the bundle carries no opening.
        payload: Option<Vec<u8>>,
    },
}

/// An event of a verified bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedEvent {
    /// Position in the log.
    pub index: LeafIndex,
    /// `SHA-256(0x00 || entry)`, proven in the checkpoint's tree.
    pub leaf_hash: Hash,
    /// The log entry.
    pub entry: Vec<u8>,
    /// Public, or private (opened or not).
    pub kind: EventKind,
}

/// A bundle that passed [`verify_evidence`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedEvidence {
    /// The checkpoint whose tree holds every event.
    pub checkpoint: SignedCheckpoint,
    /// The newer checkpoint proven to extend it, if the bundle has one.
    pub newer: Option<SignedCheckpoint>,
    /// The events, in index order.
    pub events: Vec<VerifiedEvent>,
    /// How many hashes the multiproof has.
    pub proof_hashes: usize,
}

/// Verifies a parsed bundle offline, in this order:
///
/// 1. the checkpoint note carries the log's signature and timestamped cosignature; with a consistency section,
///    the newer note too, and the proof links them (RFC 9162 §2.1.4.2). `policy` applies to the newest checkpoint:
///    the one a reader is asked to trust.
/// 2. every opening opens its private entry ([`ClientError::BadOpening`]);
/// 3. the multiproof proves every event's leaf hash at its index in the checkpoint's tree
///    ([`ClientError::MultiProofInvalid`], which also reports indices that are not strictly increasing).
pub fn verify_evidence(
    log_key: &VerifierKey,
    policy: &WitnessPolicy,
    bundle: &EvidenceBundle,
) -> Result<VerifiedEvidence, ClientError> {
    let (checkpoint, newer) = match &bundle.consistency {
        None => (policy.verify(log_key, bundle.checkpoint.as_bytes())?, None),
        Some(c) => {
            let checkpoint = WitnessPolicy::none().verify(log_key, bundle.checkpoint.as_bytes())?;
            let newer = policy.verify(log_key, c.checkpoint.as_bytes())?;
            check_forward(
                tree_of(&checkpoint.checkpoint),
                tree_of(&newer.checkpoint),
                &c.proof,
            )?;
            (checkpoint, Some(newer))
        }
    };
    let events = bundle
        .events
        .iter()
        .map(verify_event)
        .collect::<Result<Vec<_>, _>>()?;
    let leaves: Vec<(LeafIndex, Hash)> = events.iter().map(|e| (e.index, e.leaf_hash)).collect();
    verify_multi_inclusion(
        checkpoint.checkpoint.size,
        &leaves,
        &bundle.multiproof,
        &checkpoint.checkpoint.root,
    )
    .map_err(ClientError::MultiProofInvalid)?;
    Ok(VerifiedEvidence {
        checkpoint,
        newer,
        events,
        proof_hashes: bundle.multiproof.len(),
    })
}

fn verify_event(event: &EvidenceEvent) -> Result<VerifiedEvent, ClientError> {
    let bad = |source: PrivateError| ClientError::BadOpening {
        index: event.index.0,
        source,
    };
    let kind = match &event.opening {
        Some(o) => {
            let subject = check_opening(&event.entry, &o.salt, &o.payload).map_err(bad)?;
            EventKind::Private {
                subject: String::from_utf8_lossy(subject).into_owned(),
                payload: Some(o.payload.clone()),
            }
        }
        // An entry with the private prefix that does not parse is still an entry of the log: shown as public.
        None => match parse_private_entry(&event.entry) {
            Ok(Some(p)) => EventKind::Private {
                subject: String::from_utf8_lossy(p.subject).into_owned(),
                payload: None,
            },
            _ => EventKind::Public,
        },
    };
    Ok(VerifiedEvent {
        index: event.index,
        leaf_hash: leaf_hash(&event.entry),
        entry: event.entry.clone(),
        kind,
    })
}

/// Parses and verifies a bundle file in one step.
pub fn verify_evidence_bytes(
    log_key: &VerifierKey,
    policy: &WitnessPolicy,
    bytes: &[u8],
) -> Result<VerifiedEvidence, ClientError> {
    let bundle = EvidenceBundle::from_bytes(bytes).map_err(ClientError::BadEvidence)?;
    verify_evidence(log_key, policy, &bundle)
}
