//! Writes the seed corpus of every fuzz target into `fuzz/corpus/<target>/`: genuine signed notes,
//! checkpoints and key strings of the fixture log, byte programs that select real trees and proofs, genuine
//! receipts (JSON and proto), and encoded requests of every kind.
//!
//! Run from `fuzz/`: `cargo run --example gen_corpus`. Deterministic: rerunning rewrites the same files.

use std::fs;
use std::path::Path;

use prost::Message;
use tlog_checkpoint::cosign;
use tlog_core::leaf_hash;
use tlog_fuzz::{
    LOG_ENTRIES, ORIGIN, PLAIN_TEXTS, log, log_entry, other_signer, service_published_sizes,
    signer, verifier,
};
use tlog_proto::v1::{self, get_inclusion_proof_request::Leaf};

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    fs::create_dir_all(&dir).expect("creating the corpus folder");
    fs::write(dir.join(name), bytes).expect("writing a seed");
}

fn main() {
    let log = log();

    // Signed notes: checkpoints as the log signs them, one with a witness cosignature and one with an unknown
    // signer's line appended, plain notes by both keys, and the key strings.
    for size in [1, 2, 7, LOG_ENTRIES as u64] {
        let note = &log.checkpoint(size).note;
        write("note_parse", &format!("checkpoint_{size}"), note.as_bytes());
        write(
            "checkpoint_parse",
            &format!("signed_{size}"),
            note.as_bytes(),
        );
        write(
            "checkpoint_parse",
            &format!("body_{size}"),
            log.checkpoint(size).checkpoint.to_body().as_bytes(),
        );
    }
    let cp = log.checkpoint(5);
    let body = cp.checkpoint.to_body();
    let witnessed = format!(
        "{}{}",
        cp.note,
        cosign(other_signer(), &body, 1_700_000_100).expect("cosigning")
    );
    write("note_parse", "checkpoint_witnessed", witnessed.as_bytes());
    write("checkpoint_parse", "signed_witnessed", witnessed.as_bytes());
    let stranger = tlog_checkpoint::SignerKey::from_seed("stranger.example", [3; 32]).expect("key");
    let foreign = stranger.sign_note(&body).expect("signing");
    let sig_line = foreign.rsplit_once("\n\n").expect("a note").1;
    write(
        "checkpoint_parse",
        "signed_plus_unknown_signer",
        format!("{}{sig_line}", cp.note).as_bytes(),
    );
    for (i, text) in PLAIN_TEXTS.iter().enumerate() {
        let mut note = signer().sign_note(text).expect("signing");
        let witness = other_signer().sign_note(text).expect("signing");
        note.push_str(witness.rsplit_once("\n\n").expect("a note").1);
        write("note_parse", &format!("plain_{i}"), note.as_bytes());
    }
    write("note_parse", "vkey", verifier().to_string().as_bytes());
    // The fixture key is public by construction (seed [7; 32]); it signs nothing but fuzz fixtures.
    write(
        "note_parse",
        "private_key",
        signer().to_private_string().as_bytes(),
    );
    assert_eq!(verifier().name(), ORIGIN);

    // Proof programs: tree size, leaf alphabet, then the target's own fields (see the targets' docs).
    let n_alpha = |n: u16, alphabet: &[u8]| {
        let mut v = n.to_le_bytes().to_vec();
        v.push(alphabet.len() as u8 - 1);
        v.extend_from_slice(alphabet);
        v
    };
    let distinct: Vec<u8> = (0..8).collect();
    // (tree size - 1, alphabet, size - 1, index): u16 fields are taken modulo the bounds by the target.
    let inclusion_cases: [(u16, &[u8], u16, u16); 5] = [
        (0, &[1], 0, 0),
        (5, &distinct, 5, 0),
        (299, &distinct, 299, 137),
        (16, &[42], 16, 3),
        (99, &[1, 2], 64, 64),
    ];
    for (i, (n, alphabet, size, index)) in inclusion_cases.into_iter().enumerate() {
        let mut v = n_alpha(n, alphabet);
        v.extend(size.to_le_bytes());
        v.extend(index.to_le_bytes());
        write("verify_inclusion", &format!("proof_{i}"), &v);
        // The same proof with one flipped bit, and with index and size swapped.
        let mut flipped = v.clone();
        flipped.extend([0, 0, 0, 17]);
        write("verify_inclusion", &format!("proof_{i}_flip"), &flipped);
        v.push(3);
        write("verify_inclusion", &format!("proof_{i}_swap"), &v);
    }
    // (tree size - 1, alphabet, fork, size2, size1)
    let consistency_cases: [(u16, &[u8], u16, u16, u16); 5] = [
        (1, &[1], 0, 2, 1),
        (6, &distinct, 3, 7, 4),
        (299, &distinct, 200, 300, 129),
        (31, &[9], 31, 32, 16),
        (99, &[1, 2], 50, 100, 100),
    ];
    for (i, (n, alphabet, fork, size2, size1)) in consistency_cases.into_iter().enumerate() {
        let mut v = n_alpha(n, alphabet);
        v.extend(fork.to_le_bytes());
        v.extend(size2.to_le_bytes());
        v.extend(size1.to_le_bytes());
        write("verify_consistency", &format!("proof_{i}"), &v);
        let mut truncated = v.clone();
        truncated.extend([0, 1, 1]);
        write(
            "verify_consistency",
            &format!("proof_{i}_truncated"),
            &truncated,
        );
        v.extend([7, 0x81, 5, 0]);
        write("verify_consistency", &format!("proof_{i}_fork_root"), &v);
    }

    // The receipt for leaf `index` of the first `size` entries, as the server sends it.
    let proto_receipt = |index: u64, size: u64| {
        let r = log.receipt(index, size);
        let cp = log.checkpoint(size);
        v1::Receipt {
            index,
            leaf_hash: r.leaf_hash.0.to_vec(),
            checkpoint: Some(v1::SignedCheckpoint {
                note: cp.note.clone().into_bytes(),
                size,
                root_hash: cp.checkpoint.root.0.to_vec(),
                timestamp_unix: cp.timestamp,
                archived_size: 0,
            }),
            inclusion_proof: r.inclusion_proof.iter().map(|h| h.0.to_vec()).collect(),
            duplicate: false,
        }
    };
    // Receipts: JSON as `tlog` prints them, the proto the server sends, and mutation programs.
    for (index, size) in [(0u64, 1u64), (3, 7), (11, 12), (6, 12)] {
        let r = log.receipt(index, size);
        let mut json = vec![0u8];
        json.extend(serde_json::to_vec(&r).expect("JSON"));
        write("receipt_decode", &format!("json_{index}_{size}"), &json);
        let proto = proto_receipt(index, size);
        let mut bytes = vec![1u8];
        bytes.extend(proto.encode_to_vec());
        write("receipt_decode", &format!("proto_{index}_{size}"), &bytes);
        write(
            "receipt_decode",
            &format!("mutated_{index}_{size}"),
            &[2, (size - 1) as u8, index as u8, 2, 0, 1],
        );
    }
    // Batch answers with one multiproof (entries 1, 3 twice and 8 of the tree of 11), as a server sends them.
    let ids = [1u64, 3, 8].map(tlog_core::LeafIndex);
    let plan =
        tlog_core::multi_inclusion_plan(&ids, tlog_core::TreeSize(11)).expect("valid indices");
    let hashes = plan
        .build(&log.tree.hashes(plan.node_ids()))
        .expect("the plan's nodes");
    let shared = proto_receipt(1, 11).checkpoint;
    let answer = v1::SubmitBatchResponse {
        receipts: [1u64, 3, 3, 8]
            .iter()
            .map(|&i| v1::Receipt {
                index: i,
                leaf_hash: log.tree.leaves[i as usize].0.to_vec(),
                ..Default::default()
            })
            .collect(),
        client_tag: 0,
        checkpoint: shared,
        multiproof: Some(v1::MultiProof {
            tree_size: 11,
            hashes: hashes.iter().map(|h| h.0.to_vec()).collect(),
            checkpoint: None,
        }),
    };
    let mut bytes = vec![3u8];
    bytes.extend(answer.encode_to_vec());
    write("receipt_decode", "batch_multiproof_1_3_3_8", &bytes);
    // Broken proto receipts, each refused for its one defect: a note made invalid UTF-8 by changing a byte of a
    // signature line's em dash, a proof hash one byte short, no checkpoint.
    let proto = |edit: &dyn Fn(&mut v1::Receipt)| {
        let mut m = proto_receipt(3, 7);
        edit(&mut m);
        let mut bytes = vec![1u8];
        bytes.extend(m.encode_to_vec());
        bytes
    };
    let dash = log
        .checkpoint(7)
        .note
        .find('\u{2014}')
        .expect("a signature line")
        + 1;
    let not_utf8 = proto(&|m| {
        if let Some(cp) = m.checkpoint.as_mut() {
            cp.note[dash] = b'A';
        }
    });
    write("receipt_decode", "proto_note_not_utf8", &not_utf8);
    let short = proto(&|m| {
        m.inclusion_proof[1].pop();
    });
    write("receipt_decode", "proto_short_proof_hash", &short);
    write(
        "receipt_decode",
        "proto_no_checkpoint",
        &proto(&|m| m.checkpoint = None),
    );
    // Mutation programs for the note (5: one byte changed) and for checkpoints the log signs with a root that
    // is not the tree's (6: a fork, here the root of a smaller tree, or a made-up root).
    let [lo, hi] = (dash as u16).to_le_bytes();
    write(
        "receipt_decode",
        "mutated_note_dash",
        &[2, 6, 3, 5, lo, hi, b'A'],
    );
    write(
        "receipt_decode",
        "mutated_note_ascii",
        &[2, 6, 3, 5, 0, 0, b'F'],
    );
    write(
        "receipt_decode",
        "mutated_fork_root",
        &[2, 6, 3, 6, 6, 0, 5],
    );
    let mut made_up = vec![2, 6, 3, 6, 6, 2];
    made_up.extend([0x5a; 32]);
    write("receipt_decode", "mutated_made_up_root", &made_up);

    // Requests to the real service: the kind byte, the authorization byte (0 none, 1 the right token, 2 a wrong
    // one, 3 a length byte and that many bytes), then the encoded message. Sizes are ones the target's log
    // publishes (`service_published_sizes`) or not.
    let published = service_published_sizes();
    let latest = *published.last().expect("a built log");
    let (p3, p10) = (published[3], published[10]);
    let unpublished = p3 + 1;
    assert!(!published.contains(&unpublished));
    let req = |name: &str, kind: u8, auth: &[u8], bytes: Vec<u8>| {
        let mut v = vec![kind];
        v.extend(auth);
        v.extend(bytes);
        write("request_handlers", name, &v);
    };
    let spaced = b"Bearer  s3cret ";
    let mut spaced_auth = vec![3, spaced.len() as u8];
    spaced_auth.extend(spaced);
    let submit = |entry: &[u8]| {
        v1::SubmitRequest {
            entry: entry.to_vec(),
        }
        .encode_to_vec()
    };
    req("submit", 0, &[1], submit(b"{\"event\":\"login\"}"));
    req("submit_duplicate", 0, &[1], submit(&log_entry(5)));
    req("submit_no_token", 0, &[0], submit(b"x"));
    req("submit_wrong_token", 0, &[2], submit(b"x"));
    req("submit_spaced_token", 0, &spaced_auth, submit(b"y"));
    req(
        "submit_not_bearer",
        0,
        &[3, 6, b's', b'3', b'c', b'r', b'e', b't'],
        submit(b"z"),
    );
    req("submit_too_large", 0, &[1], submit(&[b'a'; 49]));
    for (name, entries) in [
        (
            "submit_batch",
            vec![b"a".to_vec(), b"b".to_vec(), b"a".to_vec()],
        ),
        ("submit_batch_empty_entry", vec![b"a".to_vec(), vec![]]),
        ("submit_batch_too_many", vec![b"e".to_vec(); 7]),
        ("submit_batch_too_many_bytes", vec![vec![b'f'; 48]; 6]),
    ] {
        req(
            name,
            1,
            &[1],
            v1::SubmitBatchRequest {
                entries,
                client_tag: 7,
                shared_checkpoint: false,
                multiproof: false,
            }
            .encode_to_vec(),
        );
    }
    for (name, auth, entries) in [
        (
            "submit_stream",
            &[1u8][..],
            vec![b"s".to_vec(), b"t".to_vec()],
        ),
        ("submit_stream_no_token", &[0], vec![b"s".to_vec()]),
        ("submit_stream_empty", &[1], vec![]),
    ] {
        req(
            name,
            7,
            auth,
            v1::SubmitBatchRequest {
                entries,
                client_tag: 9,
                shared_checkpoint: false,
                multiproof: false,
            }
            .encode_to_vec(),
        );
    }
    // Asking for the checkpoint once per answer instead of in every receipt.
    for (name, kind) in [("submit_batch_shared", 1), ("submit_stream_shared", 7)] {
        req(
            name,
            kind,
            &[1],
            v1::SubmitBatchRequest {
                entries: vec![b"u".to_vec(), b"v".to_vec()],
                client_tag: 11,
                shared_checkpoint: true,
                multiproof: false,
            }
            .encode_to_vec(),
        );
    }
    // Asking for one multiproof per answer instead of a proof in every receipt.
    for (name, kind) in [
        ("submit_batch_multiproof", 1),
        ("submit_stream_multiproof", 7),
    ] {
        req(
            name,
            kind,
            &[1],
            v1::SubmitBatchRequest {
                entries: vec![b"w".to_vec(), b"x".to_vec(), b"w".to_vec()],
                client_tag: 12,
                shared_checkpoint: false,
                multiproof: true,
            }
            .encode_to_vec(),
        );
    }
    for (name, min_size, size) in [
        ("get_checkpoint_latest", 0, 0),
        ("get_checkpoint_published", 0, p3),
        ("get_checkpoint_unpublished", 0, unpublished),
        ("get_checkpoint_beyond", 0, latest + 1),
        ("get_checkpoint_wait", latest + 1, 0),
    ] {
        req(
            name,
            2,
            &[0],
            v1::GetCheckpointRequest {
                min_size,
                size,
                witnessed: false,
            }
            .encode_to_vec(),
        );
    }
    req(
        "watch",
        3,
        &[0],
        v1::WatchCheckpointsRequest {}.encode_to_vec(),
    );
    for (name, leaf, tree_size) in [
        ("inclusion_index", Some(Leaf::Index(3)), p10),
        ("inclusion_index_latest", Some(Leaf::Index(latest - 1)), 0),
        ("inclusion_index_beyond", Some(Leaf::Index(p3)), p3),
        ("inclusion_unpublished", Some(Leaf::Index(1)), unpublished),
        ("inclusion_max", Some(Leaf::Index(u64::MAX)), u64::MAX),
        (
            "inclusion_hash",
            Some(Leaf::LeafHash(leaf_hash(&log_entry(5)).0.to_vec())),
            0,
        ),
        (
            "inclusion_hash_not_yet",
            Some(Leaf::LeafHash(leaf_hash(&log_entry(20)).0.to_vec())),
            p3,
        ),
        (
            "inclusion_unknown_hash",
            Some(Leaf::LeafHash(leaf_hash(b"x").0.to_vec())),
            0,
        ),
        ("inclusion_short_hash", Some(Leaf::LeafHash(vec![1; 31])), 0),
        ("inclusion_no_leaf", None, 0),
    ] {
        req(
            name,
            4,
            &[0],
            v1::GetInclusionProofRequest { leaf, tree_size }.encode_to_vec(),
        );
    }
    for (name, old_size, new_size) in [
        ("consistency", p3, p10),
        ("consistency_latest", p3, 0),
        ("consistency_same", p10, p10),
        ("consistency_reversed", p10, p3),
        ("consistency_zero", 0, p10),
        ("consistency_unpublished_old", unpublished, 0),
        ("consistency_unpublished_new", 1, unpublished),
        ("consistency_max", 1, u64::MAX),
    ] {
        req(
            name,
            5,
            &[0],
            v1::GetConsistencyProofRequest { old_size, new_size }.encode_to_vec(),
        );
    }
    for (name, start, end) in [
        ("entries", 0, 100),
        ("entries_empty", 5, 5),
        ("entries_huge", 0, u64::MAX),
        ("entries_too_many", 0, latest),
        ("entries_reversed", 9, 2),
    ] {
        req(
            name,
            6,
            &[0],
            v1::GetEntriesRequest { start, end }.encode_to_vec(),
        );
    }
    // Evidence bundles: genuine ones of the fixture log (mode 0), a non-canonical one, and mutation programs
    // (mode 1: size byte, index mask, position, new value).
    for (name, size, indices) in [
        ("bundle_one", 1u64, &[0u64][..]),
        ("bundle_some", 7, &[1, 2, 5][..]),
        (
            "bundle_all",
            LOG_ENTRIES as u64,
            &(0..LOG_ENTRIES as u64).collect::<Vec<_>>()[..],
        ),
    ] {
        let bundle = log.evidence_bundle(size, indices);
        let bytes = bundle.to_bytes();
        write("evidence_parse", name, &[&[0][..], &bytes].concat());
        if name == "bundle_some" {
            let pretty = serde_json::to_vec_pretty(
                &serde_json::from_slice::<serde_json::Value>(&bytes).expect("JSON"),
            )
            .expect("JSON");
            write(
                "evidence_parse",
                "bundle_pretty",
                &[&[0][..], &pretty, b"\n"].concat(),
            );
        }
    }
    for (name, program) in [
        ("mutate_index", [1u8, 6, 0b101, 0, 80, 0, b'9']),
        ("mutate_note", [1, 11, 0xff, 0x0f, 30, 0, b'X']),
        ("mutate_proof", [1, 8, 1, 0, 0xff, 1, b'f']),
    ] {
        write("evidence_parse", name, &program);
    }
    for (name, indices, tree_size) in [
        ("multiproof", vec![0, 5, 9], 0),
        ("multiproof_sized", vec![1, 2], p10),
        ("multiproof_unsorted", vec![5, 1], 0),
        ("multiproof_beyond", vec![0, latest], 0),
        ("multiproof_too_many", (0..17).collect(), 0),
    ] {
        req(
            name,
            8,
            &[0],
            v1::GetMultiProofRequest { indices, tree_size }.encode_to_vec(),
        );
    }
    println!("corpus written to {}/corpus", env!("CARGO_MANIFEST_DIR"));
}
