//! The real gRPC service (`tlog_server::LogService` over a `tlog_storage::MemoryStore`, opened with
//! `tlog_server::log::open`), called in-process: arbitrary bytes decoded (prost) as each `tlog.v1` request
//! message, with arbitrary `authorization` metadata, handed to the service's trait method as a tonic `Request`
//! (no network; `SubmitStream` gets one framed `SubmitBatchRequest` as its request body).
//!
//! The log is built once per process (a few hundred entries in uneven batches, so several sizes are published and
//! most are not) and a model of it is kept beside it: its entries, leaf hashes, and the root of every published
//! size, computed independently with `CompactRange`. For every call:
//! - nothing panics;
//! - a refusal carries exactly the status code the API documents for that request and that log state (README
//!   "Status codes", SECURITY.md), derived here from the request and the model;
//! - an answer verifies: checkpoints carry the log's signature over the model's root for their size, inclusion
//!   and consistency proofs verify against them with tlog-core's verifiers, receipts name the indices the model
//!   assigns, entries are the ones appended;
//! - a refused write changes nothing (the published tree size is the model's).
//!
//! Writes that would be accepted once the log holds `MAX_LOG_ENTRIES` are sent without their token instead (and
//! must then be refused), so the log stays small however long the fuzzer runs.
//!
//! Input: a byte choosing the message kind (see `REQUEST_KINDS`), a byte choosing the `authorization` metadata
//! (none, the right token, a wrong one, or a length byte and that many arbitrary bytes), then the encoded message.
#![no_main]

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use prost::Message;
use tlog_checkpoint::{SignerKey, verify_checkpoint};
use tlog_core::private::{ERASURE_ENTRY_PREFIX, PRIVATE_ENTRY_PREFIX};
use tlog_core::{
    CompactRange, Hash, LeafIndex, TreeSize, leaf_hash, verify_consistency, verify_inclusion,
    verify_multi_inclusion,
};
use tlog_fuzz::{Input, ORIGIN, REQUEST_KINDS, WRITE_TOKEN, log_entry, service_batches, verifier};
use tlog_proto::v1::get_inclusion_proof_request::Leaf;
use tlog_proto::{Log, hash_from_bytes, v1};
use tlog_server::log::{LogOptions, LogReader, ReadLimits, SequencerConfig, Shutdown};
use tlog_server::validate::WriteTokens;
use tlog_server::{LogService, ServiceLimits};
use tlog_storage::{MemoryBackend, MemoryStore};
use tokio_stream::StreamExt;
use tonic::codec::Codec;
use tonic::metadata::AsciiMetadataValue;
use tonic::{Code, Request, Status, Streaming};
use tonic_prost::ProstCodec;

/// The log's limits, tight so that every refusal is a few bytes away.
const MAX_ENTRY_BYTES: usize = 48;
const MAX_REQUEST_ENTRIES: usize = 6;
const MAX_BATCH_BYTES: usize = 256;
const MAX_ENTRIES_RANGE: u64 = 200;
const MAX_MULTIPROOF_INDICES: usize = 16;
const ENTRIES_PER_PAGE: u64 = 64;
/// Beyond this many entries, writes the log would accept are sent without a token.
const MAX_LOG_ENTRIES: u64 = 3000;

/// What the log holds, kept apart from the server's own state.
struct Model {
    entries: Vec<Vec<u8>>,
    index_of: HashMap<Hash, u64>,
    frontier: CompactRange,
    /// The root of every size the log published.
    published: BTreeMap<u64, Hash>,
}

impl Model {
    fn size(&self) -> u64 {
        self.entries.len() as u64
    }

    /// The indices the log must give `entries` (in-request duplicates and entries it holds keep their first
    /// index), appending the new ones.
    fn append(&mut self, entries: &[Vec<u8>]) -> Vec<(u64, bool)> {
        let assigned = entries
            .iter()
            .map(|e| {
                let hash = leaf_hash(e);
                if let Some(&i) = self.index_of.get(&hash) {
                    return (i, true);
                }
                let i = self.size();
                self.entries.push(e.clone());
                self.index_of.insert(hash, i);
                self.frontier.append(hash, |_, _| {}).expect("a small tree");
                (i, false)
            })
            .collect();
        if self.size() > 0 {
            self.published.insert(self.size(), self.frontier.root());
        }
        assigned
    }
}

struct Fixture {
    rt: tokio::runtime::Runtime,
    service: LogService<MemoryStore>,
    reader: LogReader<MemoryStore>,
    model: Mutex<Model>,
    _shutdown: Shutdown,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        let store = Arc::new(MemoryStore::open(MemoryBackend::new()).expect("memory store"));
        let key = SignerKey::from_seed(ORIGIN, [7; 32]).expect("fixture key");
        let options = LogOptions {
            max_entry_bytes: MAX_ENTRY_BYTES,
            max_request_entries: MAX_REQUEST_ENTRIES,
            sequencer: SequencerConfig {
                max_batch_entries: 8,
                max_batch_bytes: MAX_BATCH_BYTES,
                ..SequencerConfig::default()
            },
            read: ReadLimits {
                max_entries_per_read: ENTRIES_PER_PAGE,
                ..ReadLimits::default()
            },
            ..LogOptions::default()
        };
        let (appender, reader, shutdown) =
            tlog_server::log::open(store, key, options).expect("opening the log");
        let limits = ServiceLimits {
            max_entries_range: MAX_ENTRIES_RANGE,
            // GetCheckpoint{min_size} beyond the log answers DEADLINE_EXCEEDED at once instead of stalling.
            max_checkpoint_wait: Duration::ZERO,
            max_multiproof_indices: MAX_MULTIPROOF_INDICES,
            ..ServiceLimits::default()
        };
        let service = LogService::new(
            appender,
            reader.clone(),
            limits,
            WriteTokens::new([WRITE_TOKEN]),
        )
        .expect("the read threads start");
        let fixture = Fixture {
            rt,
            service,
            reader,
            model: Mutex::new(Model {
                entries: Vec::new(),
                index_of: HashMap::new(),
                frontier: CompactRange::new(),
                published: BTreeMap::new(),
            }),
            _shutdown: shutdown,
        };
        let mut next = 0;
        for n in service_batches() {
            let entries: Vec<Vec<u8>> = (next..next + n).map(log_entry).collect();
            next += n;
            let request = authorized(
                v1::SubmitBatchRequest {
                    entries: entries.clone(),
                    client_tag: 0,
                    shared_checkpoint: false,
                    multiproof: false,
                },
                Some(format!("Bearer {WRITE_TOKEN}").as_bytes()),
            );
            let answer = fixture.rt.block_on(fixture.service.submit_batch(request));
            let mut model = fixture.model.lock().unwrap();
            let expected = model.append(&entries);
            check_receipts(
                &model,
                &answer.expect("building the log").into_inner().receipts,
                &expected,
            );
        }
        fixture
    })
}

fn authorized<T>(message: T, authorization: Option<&[u8]>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(value) = authorization.and_then(|v| AsciiMetadataValue::try_from(v).ok()) {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

/// The documented answer to a write's `authorization` metadata (None: allowed).
fn token_code(authorization: Option<&[u8]>) -> Option<Code> {
    let Some(header) = authorization else {
        return Some(Code::Unauthenticated);
    };
    if !header
        .iter()
        .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b))
    {
        return Some(Code::Unauthenticated);
    }
    let text = std::str::from_utf8(header).expect("ASCII");
    match text.strip_prefix("Bearer ") {
        None => Some(Code::Unauthenticated),
        Some(token) if token.trim() == WRITE_TOKEN => None,
        Some(_) => Some(Code::PermissionDenied),
    }
}

/// The documented answer to a submission's entries (None: allowed).
fn entries_code(entries: &[Vec<u8>]) -> Option<Code> {
    let total: usize = entries.iter().map(Vec::len).sum();
    let bad = entries.is_empty()
        || entries.len() > MAX_REQUEST_ENTRIES
        || entries
            .iter()
            .any(|e| e.is_empty() || e.len() > MAX_ENTRY_BYTES)
        || total > MAX_BATCH_BYTES
        // Only the log writes private and erasure entries (tlog_core::private).
        || entries.iter().any(|e| {
            e.starts_with(PRIVATE_ENTRY_PREFIX) || e.starts_with(ERASURE_ENTRY_PREFIX)
        });
    bad.then_some(Code::InvalidArgument)
}

fn assert_code<T: std::fmt::Debug>(
    what: &str,
    answer: Result<&T, &Status>,
    expected: Option<Code>,
) {
    match (answer, expected) {
        (Ok(_), None) => {}
        (Err(s), Some(code)) => assert_eq!(s.code(), code, "{what}: {s:?}"),
        (Ok(a), Some(code)) => panic!("{what}: answered {a:?}, expected {code:?}"),
        (Err(s), None) => panic!("{what}: refused with {s:?}, expected an answer"),
    }
}

fn hash(bytes: &[u8]) -> Hash {
    hash_from_bytes("hash", bytes).expect("the service answers 32-byte hashes")
}

/// Checks a checkpoint the service answered: signed by the log, over the root the model has for its size.
/// Returns its size and root.
fn check_checkpoint(model: &Model, cp: &v1::SignedCheckpoint) -> (u64, Hash) {
    let signed = verify_checkpoint(verifier(), &cp.note).expect("the log's signature verifies");
    let root = hash(&cp.root_hash);
    assert_eq!(signed.checkpoint.size.0, cp.size);
    assert_eq!(signed.checkpoint.root, root);
    assert_eq!(signed.timestamp, cp.timestamp_unix);
    assert_eq!(signed.checkpoint.origin, ORIGIN);
    assert_eq!(
        model.published.get(&cp.size),
        Some(&root),
        "checkpoint of size {} is not one the log published with that root",
        cp.size
    );
    (cp.size, root)
}

fn check_inclusion(
    leaf: &Hash,
    index: u64,
    proof: &[Vec<u8>],
    cp: &v1::SignedCheckpoint,
    model: &Model,
) {
    let (size, root) = check_checkpoint(model, cp);
    let proof: Vec<Hash> = proof.iter().map(|h| hash(h)).collect();
    verify_inclusion(leaf, LeafIndex(index), TreeSize(size), &proof, &root)
        .expect("the inclusion proof verifies");
}

fn check_receipts(model: &Model, receipts: &[v1::Receipt], expected: &[(u64, bool)]) {
    check_receipts_against(model, receipts, None, expected);
}

/// A batch answer: asked for the shared checkpoint, it carries the checkpoint once and its receipts none;
/// otherwise every receipt carries it and the answer none.
/// A batch answer in the shape its request asked for (`shared_checkpoint`, `multiproof`), every receipt proved
/// against the newest checkpoint: by its own proof, or by the one multiproof expanded as `tlog-client` does.
fn check_batch_answer(
    model: &Model,
    answer: &v1::SubmitBatchResponse,
    (shared, multi): (bool, bool),
    expected: &[(u64, bool)],
) {
    let shared = shared || multi;
    assert_eq!(
        answer.checkpoint.is_some(),
        shared,
        "the answer's checkpoint"
    );
    assert!(
        answer
            .receipts
            .iter()
            .all(|r| r.checkpoint.is_some() != shared),
        "receipts carry the checkpoint exactly when it is not shared"
    );
    assert_eq!(
        answer.multiproof.is_some(),
        multi,
        "the answer's multiproof"
    );
    if let Some(m) = &answer.multiproof {
        assert_eq!(m.tree_size, model.size());
        assert!(m.checkpoint.is_none(), "the answer's checkpoint is the one");
        assert!(answer.receipts.iter().all(|r| r.inclusion_proof.is_empty()));
    }
    let receipts = tlog_client::batch_receipts(answer.clone()).expect("the multiproof fits");
    check_receipts_against(model, &receipts, answer.checkpoint.as_ref(), expected);
}

fn check_receipts_against(
    model: &Model,
    receipts: &[v1::Receipt],
    shared: Option<&v1::SignedCheckpoint>,
    expected: &[(u64, bool)],
) {
    assert_eq!(receipts.len(), expected.len());
    for (r, &(index, duplicate)) in receipts.iter().zip(expected) {
        assert_eq!((r.index, r.duplicate), (index, duplicate));
        let leaf = leaf_hash(&model.entries[index as usize]);
        assert_eq!(hash(&r.leaf_hash), leaf);
        let cp = r
            .checkpoint
            .as_ref()
            .or(shared)
            .expect("a receipt carries its checkpoint, or its answer does");
        assert_eq!(
            cp.size,
            model.size(),
            "the receipt's checkpoint is the newest"
        );
        check_inclusion(&leaf, index, &r.inclusion_proof, cp, model);
    }
}

/// The size a request's `size` field names, the way the service reads it: 0 is the latest; a size beyond the log
/// is OUT_OF_RANGE; a size the log never published is NOT_FOUND.
fn published_size(model: &Model, size: u64) -> Result<u64, Code> {
    if size == 0 || size == model.size() {
        Ok(model.size())
    } else if size > model.size() {
        Err(Code::OutOfRange)
    } else if model.published.contains_key(&size) {
        Ok(size)
    } else {
        Err(Code::NotFound)
    }
}

fn decode<M: Message + Default>(bytes: &[u8]) -> Option<M> {
    M::decode(bytes).ok()
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let mut input = Input::new(data);
    let kind = input.u8() as usize % REQUEST_KINDS.len();
    let good = format!("Bearer {WRITE_TOKEN}");
    let authorization: Option<Vec<u8>> = match input.u8() % 4 {
        0 => None,
        1 => Some(good.into_bytes()),
        2 => Some(b"Bearer n0pe".to_vec()),
        _ => {
            let n = input.u8() as usize;
            Some((0..n).map(|_| input.u8()).collect())
        }
    };
    // A value tonic cannot carry is never sent: the request has no authorization metadata then.
    let authorization =
        authorization.filter(|v| AsciiMetadataValue::try_from(v.as_slice()).is_ok());
    let bytes = input.rest();
    let mut model = f.model.lock().unwrap_or_else(|p| p.into_inner());
    f.rt.block_on(async {
        match kind {
            0 => {
                if let Some(m) = decode::<v1::SubmitRequest>(bytes) {
                    let entries = vec![m.entry.clone()];
                    let (auth, expected) = write_plan(&model, &entries, authorization.as_deref());
                    let answer = f
                        .service
                        .submit(authorized(m, auth))
                        .await
                        .map(|r| r.into_inner());
                    assert_code("Submit", answer.as_ref(), expected);
                    if let Ok(receipt) = answer {
                        let assigned = model.append(&entries);
                        check_receipts(&model, &[receipt], &assigned);
                    }
                }
            }
            1 => {
                if let Some(m) = decode::<v1::SubmitBatchRequest>(bytes) {
                    let (entries, tag, shape) = (
                        m.entries.clone(),
                        m.client_tag,
                        (m.shared_checkpoint, m.multiproof),
                    );
                    let (auth, expected) = write_plan(&model, &entries, authorization.as_deref());
                    let answer = f
                        .service
                        .submit_batch(authorized(m, auth))
                        .await
                        .map(|r| r.into_inner());
                    assert_code("SubmitBatch", answer.as_ref(), expected);
                    if let Ok(answer) = answer {
                        assert_eq!(answer.client_tag, tag);
                        let assigned = model.append(&entries);
                        check_batch_answer(&model, &answer, shape, &assigned);
                    }
                }
            }
            2 => {
                if let Some(m) = decode::<v1::GetCheckpointRequest>(bytes) {
                    // The fuzzed service has no witnesses: a witnessed checkpoint is refused, and asking for
                    // one together with a size is malformed first.
                    let expected = if m.witnessed && (m.size != 0 || m.min_size != 0) {
                        Err(Code::InvalidArgument)
                    } else if m.witnessed {
                        Err(Code::FailedPrecondition)
                    } else if m.size != 0 {
                        published_size(&model, m.size)
                    } else if m.min_size <= model.size() {
                        Ok(model.size())
                    } else {
                        Err(Code::DeadlineExceeded)
                    };
                    let request = authorized(m, authorization.as_deref());
                    let answer = f
                        .service
                        .get_checkpoint(request)
                        .await
                        .map(|r| r.into_inner());
                    assert_code("GetCheckpoint", answer.as_ref(), expected.err());
                    if let (Ok(cp), Ok(size)) = (answer, expected) {
                        assert_eq!(check_checkpoint(&model, &cp).0, size);
                    }
                }
            }
            3 => {
                if let Some(m) = decode::<v1::WatchCheckpointsRequest>(bytes) {
                    let request = authorized(m, authorization.as_deref());
                    let mut stream = f
                        .service
                        .watch_checkpoints(request)
                        .await
                        .expect("watching is always allowed")
                        .into_inner();
                    let first = stream
                        .next()
                        .await
                        .expect("the latest checkpoint comes first");
                    let cp = first.expect("a checkpoint, not an error");
                    assert_eq!(check_checkpoint(&model, &cp).0, model.size());
                }
            }
            4 => {
                if let Some(m) = decode::<v1::GetInclusionProofRequest>(bytes) {
                    inclusion(f, &model, m, authorization.as_deref()).await;
                }
            }
            5 => {
                if let Some(m) = decode::<v1::GetConsistencyProofRequest>(bytes) {
                    let (old, new) = (m.old_size, m.new_size);
                    let expected = published_size(&model, new).and_then(|n| {
                        if old == 0 || old > n {
                            Err(Code::InvalidArgument)
                        } else if old != n && !model.published.contains_key(&old) {
                            Err(Code::NotFound)
                        } else {
                            Ok(n)
                        }
                    });
                    let request = authorized(m, authorization.as_deref());
                    let answer = f
                        .service
                        .get_consistency_proof(request)
                        .await
                        .map(|r| r.into_inner());
                    assert_code("GetConsistencyProof", answer.as_ref(), expected.err());
                    if let (Ok(p), Ok(n)) = (answer, expected) {
                        assert_eq!((p.old_size, p.new_size), (old, n));
                        let cp = p.checkpoint.as_ref().expect("the new checkpoint");
                        let (size, new_root) = check_checkpoint(&model, cp);
                        assert_eq!(size, n);
                        let proof: Vec<Hash> = p.hashes.iter().map(|h| hash(h)).collect();
                        verify_consistency(
                            TreeSize(old),
                            TreeSize(n),
                            &proof,
                            &model.published[&old],
                            &new_root,
                        )
                        .expect("the consistency proof verifies");
                    }
                }
            }
            6 => {
                if let Some(m) = decode::<v1::GetEntriesRequest>(bytes) {
                    let (start, end) = (m.start, m.end);
                    let expected = if start > end {
                        Some(Code::InvalidArgument)
                    } else if end > model.size() {
                        Some(Code::OutOfRange)
                    } else if end - start > MAX_ENTRIES_RANGE {
                        Some(Code::InvalidArgument)
                    } else {
                        None
                    };
                    let request = authorized(m, authorization.as_deref());
                    let answer = f.service.get_entries(request).await.map(|r| r.into_inner());
                    assert_code("GetEntries", answer.as_ref().map(|_| &()), expected);
                    if let Ok(mut pages) = answer {
                        let mut at = start;
                        while let Some(page) = pages.next().await {
                            let page = page.expect("every page of a valid range is served");
                            assert_eq!(page.start, at);
                            assert!(!page.entries.is_empty());
                            for e in &page.entries {
                                assert_eq!(e, &model.entries[at as usize], "entry {at}");
                                at += 1;
                            }
                        }
                        assert_eq!(at, end, "the pages cover the range");
                    }
                }
            }
            8 => {
                if let Some(m) = decode::<v1::GetMultiProofRequest>(bytes) {
                    let indices = m.indices.clone();
                    // The service checks the index set, then the size, then that the indices are in that tree.
                    let expected = if indices.is_empty()
                        || indices.len() > MAX_MULTIPROOF_INDICES
                        || indices.windows(2).any(|w| w[1] <= w[0])
                    {
                        Err(Code::InvalidArgument)
                    } else {
                        published_size(&model, m.tree_size).and_then(|n| {
                            if indices.last().is_some_and(|&last| last >= n) {
                                Err(Code::OutOfRange)
                            } else {
                                Ok(n)
                            }
                        })
                    };
                    let request = authorized(m, authorization.as_deref());
                    let answer = f
                        .service
                        .get_multi_proof(request)
                        .await
                        .map(|r| r.into_inner());
                    assert_code("GetMultiProof", answer.as_ref(), expected.err());
                    if let (Ok(p), Ok(n)) = (answer, expected) {
                        assert_eq!(p.tree_size, n);
                        let cp = p.checkpoint.as_ref().expect("the checkpoint");
                        let (size, root) = check_checkpoint(&model, cp);
                        assert_eq!(size, n);
                        let leaves: Vec<(LeafIndex, Hash)> = indices
                            .iter()
                            .map(|&i| (LeafIndex(i), leaf_hash(&model.entries[i as usize])))
                            .collect();
                        let proof: Vec<Hash> = p.hashes.iter().map(|h| hash(h)).collect();
                        verify_multi_inclusion(TreeSize(n), &leaves, &proof, &root)
                            .expect("the multiproof verifies");
                    }
                }
            }
            _ => {
                if let Some(m) = decode::<v1::SubmitBatchRequest>(bytes) {
                    submit_stream(f, &mut model, m, authorization.as_deref()).await;
                }
            }
        }
    });
    // A refused write changed nothing; an accepted one published exactly what the model holds.
    assert_eq!(f.reader.latest().checkpoint.size.0, model.size());
});

/// The metadata a write is sent with and the documented refusal (None: accepted). Once the log is full, a write
/// it would accept is sent without its token, and must be refused as such.
fn write_plan<'a>(
    model: &Model,
    entries: &[Vec<u8>],
    authorization: Option<&'a [u8]>,
) -> (Option<&'a [u8]>, Option<Code>) {
    let expected = token_code(authorization).or_else(|| entries_code(entries));
    if expected.is_none() && model.size() >= MAX_LOG_ENTRIES {
        return (None, Some(Code::Unauthenticated));
    }
    (authorization, expected)
}

/// A `SubmitStream` call carrying one message: a token refusal fails the call, an entries refusal is the
/// stream's first (and last) item.
async fn submit_stream(
    f: &Fixture,
    model: &mut Model,
    m: v1::SubmitBatchRequest,
    authorization: Option<&[u8]>,
) {
    let (entries, tag, shape) = (
        m.entries.clone(),
        m.client_tag,
        (m.shared_checkpoint, m.multiproof),
    );
    let (auth, expected) = write_plan(model, &entries, authorization);
    let token_refusal = token_code(auth);
    let message = m.encode_to_vec();
    let mut frame = vec![0u8];
    frame.extend((message.len() as u32).to_be_bytes());
    frame.extend(message);
    let mut codec = ProstCodec::<v1::SubmitBatchResponse, v1::SubmitBatchRequest>::default();
    let body = Streaming::new_request(
        codec.decoder(),
        http_body_util::Full::new(bytes::Bytes::from(frame)),
        None,
        None,
    );
    let call = f.service.submit_stream(authorized(body, auth)).await;
    let mut answers = match call {
        Err(s) => {
            assert_eq!(Some(s.code()), token_refusal, "SubmitStream: {s:?}");
            return;
        }
        Ok(answers) => {
            assert_eq!(token_refusal, None, "SubmitStream accepted a refused token");
            answers.into_inner()
        }
    };
    let first = answers.next().await.expect("an answer to the message");
    assert_code("SubmitStream", first.as_ref(), expected);
    if let Ok(answer) = first {
        assert_eq!(answer.client_tag, tag);
        let assigned = model.append(&entries);
        check_batch_answer(model, &answer, shape, &assigned);
    }
    assert!(answers.next().await.is_none(), "one answer per message");
}

async fn inclusion(
    f: &Fixture,
    model: &Model,
    m: v1::GetInclusionProofRequest,
    authorization: Option<&[u8]>,
) {
    let tree_size = m.tree_size;
    // The leaf's index and the answer's tree size, or the documented refusal.
    let expected: Result<(u64, u64), Code> = match &m.leaf {
        None => Err(Code::InvalidArgument),
        Some(Leaf::LeafHash(h)) if h.len() != 32 => Err(Code::InvalidArgument),
        Some(Leaf::LeafHash(h)) => match model.index_of.get(&hash(h)) {
            None => Err(Code::NotFound),
            // A leaf the log holds, in a tree it is not in or a size never reached: NOT_FOUND.
            Some(&index) => match published_size(model, tree_size) {
                Ok(size) if index < size => Ok((index, size)),
                Ok(_) | Err(Code::OutOfRange) => Err(Code::NotFound),
                Err(code) => Err(code),
            },
        },
        Some(Leaf::Index(index)) => match published_size(model, tree_size) {
            Ok(size) if *index < size => Ok((*index, size)),
            Ok(_) => Err(Code::OutOfRange),
            Err(code) => Err(code),
        },
    };
    let request = authorized(m, authorization);
    let answer = f
        .service
        .get_inclusion_proof(request)
        .await
        .map(|r| r.into_inner());
    assert_code("GetInclusionProof", answer.as_ref(), expected.err());
    if let (Ok(p), Ok((index, size))) = (answer, expected) {
        assert_eq!((p.index, p.tree_size), (index, size));
        let leaf = leaf_hash(&model.entries[index as usize]);
        assert_eq!(hash(&p.leaf_hash), leaf);
        let cp = p.checkpoint.as_ref().expect("the proof's checkpoint");
        assert_eq!(cp.size, size);
        check_inclusion(&leaf, index, &p.hashes, cp, model);
    }
}
