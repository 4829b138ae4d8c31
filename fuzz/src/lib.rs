//! Fixtures shared by the fuzz targets and the corpus generator (`examples/gen_corpus.rs`): a fixed log key, a
//! small log signed with it, trees built from fuzz-chosen leaves, and a byte reader for structured inputs.
//!
//! Everything here is deterministic (Ed25519 signatures too), so the committed corpus seeds stay valid inputs.

use std::sync::OnceLock;

use base64::Engine as _;
use tlog_checkpoint::{
    Checkpoint, Note, SignedCheckpoint, SignerKey, VerifierKey, sign_checkpoint,
};
use tlog_core::{Hash, LeafIndex, TreeSize, leaf_hash};

/// tlog-core's naive RFC 9162 reference (a differential oracle) and its proof-building tree.
pub use tlog_core::testing::{Tree, reference};

/// The fixed log's origin (also its key name).
pub const ORIGIN: &str = "fuzz.example/log";
/// When every fixture checkpoint was signed.
pub const TIMESTAMP: u64 = 1_700_000_000;
/// Entries of the fixture log.
pub const LOG_ENTRIES: usize = 12;

/// The fixture log's signing key.
pub fn signer() -> &'static SignerKey {
    static KEY: OnceLock<SignerKey> = OnceLock::new();
    KEY.get_or_init(|| SignerKey::from_seed(ORIGIN, [7; 32]).expect("valid fixture key"))
}

/// The fixture log's verifier key.
pub fn verifier() -> &'static VerifierKey {
    static KEY: OnceLock<VerifierKey> = OnceLock::new();
    KEY.get_or_init(|| signer().verifier())
}

/// A second, unrelated key (a witness, say): its signatures must never count as the log's.
pub fn other_signer() -> &'static SignerKey {
    static KEY: OnceLock<SignerKey> = OnceLock::new();
    KEY.get_or_init(|| SignerKey::from_seed("witness.example/w1", [9; 32]).expect("valid key"))
}

/// Entry `i` of the fixture log.
pub fn log_entry(i: usize) -> Vec<u8> {
    format!("{{\"event\":\"deploy\",\"n\":{i}}}").into_bytes()
}

/// The fixture log: its tree and a signed checkpoint for every size 1..=LOG_ENTRIES.
pub struct Log {
    pub tree: Tree,
    pub checkpoints: Vec<SignedCheckpoint>,
}

pub fn log() -> &'static Log {
    static LOG: OnceLock<Log> = OnceLock::new();
    LOG.get_or_init(|| {
        let tree = Tree::new((0..LOG_ENTRIES).map(|i| leaf_hash(&log_entry(i))).collect());
        let checkpoints = (1..=LOG_ENTRIES as u64)
            .map(|size| {
                let cp = Checkpoint::new(ORIGIN, TreeSize(size), tree.roots[size as usize])
                    .expect("valid checkpoint");
                sign_checkpoint(signer(), &cp, TIMESTAMP).expect("signing")
            })
            .collect();
        Log { tree, checkpoints }
    })
}

impl Log {
    /// The signed checkpoint for `size` (1..=LOG_ENTRIES).
    pub fn checkpoint(&self, size: u64) -> &SignedCheckpoint {
        &self.checkpoints[size as usize - 1]
    }

    /// A genuine receipt for `index` in the checkpoint of `size`.
    /// A genuine evidence bundle of the events at `indices` (increasing, below `size`) in the tree of `size`.
    pub fn evidence_bundle(
        &self,
        size: u64,
        indices: &[u64],
    ) -> tlog_client::evidence::EvidenceBundle {
        use tlog_client::evidence::{EvidenceBundle, EvidenceEvent};
        let ids: Vec<LeafIndex> = indices.iter().copied().map(LeafIndex).collect();
        let plan = tlog_core::multi_inclusion_plan(&ids, TreeSize(size)).expect("valid indices");
        EvidenceBundle {
            checkpoint: self.checkpoint(size).note.clone(),
            events: ids
                .iter()
                .map(|&index| EvidenceEvent {
                    index,
                    entry: log_entry(index.0 as usize),
                    opening: None,
                })
                .collect(),
            multiproof: plan
                .build(&self.tree.hashes(plan.node_ids()))
                .expect("the plan's nodes"),
            consistency: None,
        }
    }

    pub fn receipt(&self, index: u64, size: u64) -> tlog_client::Receipt {
        tlog_client::Receipt {
            index: LeafIndex(index),
            leaf_hash: self.tree.leaves[index as usize],
            checkpoint: self.checkpoint(size).note.clone(),
            inclusion_proof: self.tree.inclusion(index, size).expect("index < size"),
            duplicate: false,
        }
    }
}

/// Serialises a parsed note back to signed-note text (C2SP signed-note "Format"): the text, a blank line, and
/// one `— <name> base64(key ID || signature)` line per signature.
pub fn note_to_string(note: &Note) -> String {
    let mut out = note.text.clone();
    out.push('\n');
    for sig in &note.signatures {
        let mut blob = sig.key_id.0.to_vec();
        blob.extend_from_slice(&sig.blob);
        out.push_str("\u{2014} ");
        out.push_str(&sig.name);
        out.push(' ');
        out.push_str(&base64::engine::general_purpose::STANDARD.encode(&blob));
        out.push('\n');
    }
    out
}

/// Reads structured values from fuzz input; once the bytes run out every read yields zero, so any input is a
/// valid (if short) program.
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    pub fn u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        b.iter_mut().for_each(|x| *x = self.u8());
        u64::from_le_bytes(b)
    }

    pub fn hash(&mut self) -> Hash {
        let mut h = [0u8; 32];
        h.iter_mut().for_each(|x| *x = self.u8());
        Hash(h)
    }

    /// A value that stresses tree arithmetic: small, near `u64::MAX`, around a power of two, or anything.
    pub fn edgy_u64(&mut self, near: u64) -> u64 {
        let delta = (self.u8() as i8) as i64;
        match self.u8() % 5 {
            0 => near.wrapping_add_signed(delta),
            1 => u64::MAX.wrapping_add_signed(delta.min(0)),
            2 => (1u64 << (self.u8() % 64)).wrapping_add_signed(delta),
            3 => delta.unsigned_abs(),
            _ => self.u64(),
        }
    }

    /// The remaining bytes.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }
}

/// Builds tree leaves from a small alphabet the input chooses, so that duplicate leaves (the case where a
/// swapped index can legitimately still verify) are common: leaf `i` is the hash of `[alphabet[i % len]]`.
pub fn leaves_from(input: &mut Input, count: usize) -> Vec<Hash> {
    let len = (input.u8() % 8) as usize + 1;
    let alphabet: Vec<u8> = (0..len).map(|_| input.u8()).collect();
    (0..count)
        .map(|i| leaf_hash(&[alphabet[i % len]]))
        .collect()
}

/// Proof mutations, shared by the two proof targets.
pub fn mutate_proof(input: &mut Input, proof: &mut Vec<Hash>, extra: &[Hash]) {
    match input.u8() % 6 {
        0 if !proof.is_empty() => {
            let i = input.u8() as usize % proof.len();
            let bit = input.u8();
            proof[i].0[(bit / 8) as usize] ^= 1 << (bit % 8);
        }
        1 => {
            let k = input.u8() as usize % (proof.len() + 1);
            proof.truncate(k);
        }
        2 => {
            let at = input.u8() as usize % (proof.len() + 1);
            let pick = input.u8() as usize;
            let h = if pick & 1 == 0 && !extra.is_empty() {
                extra[(pick / 2) % extra.len()]
            } else {
                input.hash()
            };
            proof.insert(at, h);
        }
        3 if !proof.is_empty() => {
            let at = input.u8() as usize % proof.len();
            proof.remove(at);
        }
        4 if proof.len() >= 2 => {
            let (a, b) = (input.u8() as usize, input.u8() as usize);
            let len = proof.len();
            proof.swap(a % len, b % len);
        }
        5 if !proof.is_empty() && !extra.is_empty() => {
            let i = input.u8() as usize % proof.len();
            proof[i] = extra[input.u8() as usize % extra.len()];
        }
        _ => {}
    }
}

/// The write token the `request_handlers` target's log is configured with.
pub const WRITE_TOKEN: &str = "s3cret";

/// The batch sizes the `request_handlers` target's log is built from, in order (entry `i` is [`log_entry`]`(i)`):
/// uneven, so the log publishes checkpoints at irregular sizes and leaves every other size unpublished.
pub fn service_batches() -> Vec<usize> {
    [1, 4, 2, 5, 3, 6, 1, 1]
        .iter()
        .copied()
        .cycle()
        .take(96)
        .collect()
}

/// The sizes the `request_handlers` target's log publishes while it is built (the running sums of
/// [`service_batches`]).
pub fn service_published_sizes() -> Vec<u64> {
    service_batches()
        .iter()
        .scan(0u64, |size, &n| {
            *size += n as u64;
            Some(*size)
        })
        .collect()
}

/// The request messages of `tlog.v1.Log`, numbered as the `request_handlers` target's first input byte.
pub const REQUEST_KINDS: [&str; 9] = [
    "SubmitRequest",
    "SubmitBatchRequest",
    "GetCheckpointRequest",
    "WatchCheckpointsRequest",
    "GetInclusionProofRequest",
    "GetConsistencyProofRequest",
    "GetEntriesRequest",
    "SubmitStream (one SubmitBatchRequest)",
    "GetMultiProofRequest",
];

/// Plain (non-checkpoint) note texts the generator signs with both fixture keys.
pub const PLAIN_TEXTS: [&str; 2] = [
    "hello, world\n",
    "line one\n\nline three, after a blank line\n",
];

/// Every text a fixture key ever signs: the fixture checkpoints' bodies and [`PLAIN_TEXTS`]. A note that
/// verifies must carry one of these.
pub fn signed_texts() -> Vec<String> {
    let mut texts: Vec<String> = log()
        .checkpoints
        .iter()
        .map(|cp| cp.checkpoint.to_body())
        .collect();
    texts.extend(PLAIN_TEXTS.iter().map(|t| t.to_string()));
    texts
}
