//! The gRPC request path before any storage: arbitrary bytes decoded (prost) as each `tlog.v1` request message,
//! then the server's own request validation (`tlog_server::validate`: entry limits, ranges, the inclusion leaf,
//! write tokens) and the proof plans a valid request leads to. Nothing panics, every refusal carries the status
//! code the API documents, and validation accepts exactly what the API allows.
//!
//! Input: a byte choosing the message kind (see `REQUEST_KINDS`), then the encoded message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use tlog_core::{LeafIndex, TreeSize, consistency_plan, inclusion_plan, verify_inclusion};
use tlog_fuzz::validate::{self, LeafRef, RequestError, WriteTokens};
use tlog_fuzz::{Input, LOG_ENTRIES, REQUEST_KINDS, log};
use tlog_proto::v1;
use tonic::Code;

/// (max_request_entries, max_entry_bytes): the server's defaults and a tight setting.
const ENTRY_LIMITS: [(usize, usize); 2] = [
    (
        validate::DEFAULT_MAX_REQUEST_ENTRIES,
        validate::DEFAULT_MAX_ENTRY_BYTES,
    ),
    (2, 8),
];
const TOKEN: &str = "s3cret";

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let kind = input.u8() as usize % REQUEST_KINDS.len();
    let bytes = input.rest();
    match kind {
        0 => {
            if let Some(m) = decode::<v1::SubmitRequest>(bytes) {
                submission(std::slice::from_ref(&m.entry));
                tokens(&m.entry);
            }
        }
        1 => {
            if let Some(m) = decode::<v1::SubmitBatchRequest>(bytes) {
                submission(&m.entries);
                if let Some(first) = m.entries.first() {
                    tokens(first);
                }
            }
        }
        2 => {
            decode::<v1::GetCheckpointRequest>(bytes);
        }
        3 => {
            decode::<v1::WatchCheckpointsRequest>(bytes);
        }
        4 => {
            if let Some(m) = decode::<v1::GetInclusionProofRequest>(bytes) {
                inclusion(&m);
            }
        }
        5 => {
            if let Some(m) = decode::<v1::GetConsistencyProofRequest>(bytes) {
                let (old, new) = (TreeSize(m.old_size), TreeSize(m.new_size));
                if let Ok(plan) = consistency_plan(old, new) {
                    assert!(plan.node_ids().iter().all(|id| id.end() <= m.new_size));
                }
            }
        }
        _ => {
            if let Some(m) = decode::<v1::GetEntriesRequest>(bytes) {
                for (size, max) in [(LOG_ENTRIES as u64, 1_000_000), (u64::MAX, 5)] {
                    let r = validate::check_entries_range(m.start, m.end, size, max);
                    let allowed = m.start <= m.end && m.end <= size && m.end - m.start <= max;
                    assert_eq!(
                        r.is_ok(),
                        allowed,
                        "range [{}, {}) size {size}",
                        m.start,
                        m.end
                    );
                    if let Err(e) = r {
                        let expect = if m.start <= m.end && m.end > size {
                            Code::OutOfRange
                        } else {
                            Code::InvalidArgument
                        };
                        assert_eq!(e.code(), expect, "{e}");
                    }
                }
            }
        }
    }
});

/// Decodes a message; a decoded message re-encodes to a form that decodes to the same message.
fn decode<M: Message + Default + PartialEq + std::fmt::Debug>(bytes: &[u8]) -> Option<M> {
    let m = M::decode(bytes).ok()?;
    let again = M::decode(m.encode_to_vec().as_slice()).expect("re-encoded message decodes");
    assert_eq!(again, m);
    Some(m)
}

fn submission(entries: &[Vec<u8>]) {
    for (max_entries, max_bytes) in ENTRY_LIMITS {
        let r = validate::check_entries(entries, max_entries, max_bytes);
        let allowed = !entries.is_empty()
            && entries.len() <= max_entries
            && entries
                .iter()
                .all(|e| !e.is_empty() && e.len() <= max_bytes);
        assert_eq!(r.is_ok(), allowed);
        if let Err(e) = r {
            assert_eq!(e.code(), Code::InvalidArgument, "{e}");
        }
    }
    // The request's total size, against the default and a tight byte limit.
    let total: usize = entries.iter().map(Vec::len).sum();
    for limit in [validate::DEFAULT_MAX_REQUEST_BYTES, 16] {
        let r = validate::check_request_bytes(total, limit);
        assert_eq!(r.is_ok(), total <= limit);
        if let Err(e) = r {
            assert_eq!(e.code(), Code::InvalidArgument, "{e}");
        }
    }
}

/// The fuzzed bytes as an `authorization` header value: only `Bearer s3cret` (surrounding spaces allowed) is in.
fn tokens(header: &[u8]) {
    let tokens = WriteTokens::new([TOKEN]);
    match tokens.check_authorization(Some(header)) {
        Ok(()) => {
            let text = std::str::from_utf8(header).expect("accepted headers are text");
            let token = text
                .strip_prefix("Bearer ")
                .expect("accepted headers are bearer tokens");
            assert_eq!(token.trim(), TOKEN);
        }
        Err(e) => assert!(matches!(
            e,
            RequestError::MalformedToken | RequestError::UnknownToken
        )),
    }
    assert_eq!(
        tokens.check_authorization(None),
        Err(RequestError::MissingToken)
    );
    assert!(
        WriteTokens::default()
            .check_authorization(Some(header))
            .is_ok()
    );
}

fn inclusion(m: &v1::GetInclusionProofRequest) {
    let leaf = match validate::inclusion_leaf(m.leaf.as_ref()) {
        Ok(leaf) => leaf,
        Err(e) => {
            assert_eq!(e.code(), Code::InvalidArgument, "{e}");
            let valid = matches!(
                &m.leaf,
                Some(v1::get_inclusion_proof_request::Leaf::Index(_))
            ) || matches!(&m.leaf, Some(v1::get_inclusion_proof_request::Leaf::LeafHash(h)) if h.len() == 32);
            assert!(!valid, "refused a well-formed leaf: {e}");
            return;
        }
    };
    let LeafRef::Index(index) = leaf else {
        return;
    };
    // What the reader does next, against the fixture log (tree_size 0 = the latest).
    let size = if m.tree_size == 0 {
        LOG_ENTRIES as u64
    } else {
        m.tree_size
    };
    match inclusion_plan(index, TreeSize(size)) {
        Ok(plan) => {
            assert!(index.0 < size, "a plan for a leaf outside the tree");
            assert!(plan.node_ids().iter().all(|id| id.end() <= size));
            let tree = &log().tree;
            if let Some(proof) = tree.inclusion(index.0, size) {
                let (leaf, root) = (tree.leaves[index.0 as usize], tree.roots[size as usize]);
                assert!(
                    verify_inclusion(&leaf, LeafIndex(index.0), TreeSize(size), &proof, &root)
                        .is_ok()
                );
            }
        }
        Err(_) => assert!(index.0 >= size, "no plan for leaf {} of {size}", index.0),
    }
}
