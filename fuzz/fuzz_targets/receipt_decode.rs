//! Receipts: decoding (JSON as `tlog` prints it, or the `tlog.v1.Receipt` proto) and `verify_receipt` never
//! panic; both forms round-trip (JSON text, proto bytes, and the conversion between `Receipt` and the proto,
//! which drops nothing but the checkpoint's unsigned copies); a proto receipt is refused exactly when its wire
//! form is broken (no checkpoint, a hash that is not 32 bytes, a note that is not UTF-8), never repaired; and no
//! receipt verifies unless everything it claims is true of the fixture log: a checkpoint the log signed for the
//! fixture tree, a leaf that sits at the claimed index, and that index's correct proof.
//!
//! Batch answers (`tlog.v1.SubmitBatchResponse`): `batch_receipts` never panics, only an answer with a multiproof
//! can make it fail, and every receipt it gives (its proof expanded from the multiproof) verifies only if true.
//!
//! Input: a mode byte, then 0: receipt JSON, 1: proto bytes, 2: a genuine receipt plus mutations, sent through
//! the proto bytes as a server would send it, 3: batch answer proto bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use tlog_checkpoint::{Checkpoint, sign_checkpoint};
use tlog_client::{ClientError, Receipt, verify_receipt};
use tlog_core::{LeafIndex, TreeSize};
use tlog_fuzz::{
    Input, LOG_ENTRIES, ORIGIN, TIMESTAMP, log, log_entry, mutate_proof, signer, verifier,
};
use tlog_proto::{ProtoError, v1};

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    match input.u8() % 4 {
        0 => {
            let Ok(receipt) = serde_json::from_slice::<Receipt>(input.rest()) else {
                return;
            };
            round_trip_and_check(&receipt, &v1::SignedCheckpoint::default());
        }
        1 => {
            let Ok(message) = v1::Receipt::decode(input.rest()) else {
                return;
            };
            let again = v1::Receipt::decode(message.encode_to_vec().as_slice())
                .expect("an encoded receipt decodes");
            assert_eq!(again, message, "proto bytes round trip");
            match Receipt::try_from(message.clone()) {
                Ok(receipt) => {
                    let unsigned = message.checkpoint.as_ref().expect("converted, so present");
                    // Nothing but the unsigned copies is dropped: put back, they give the very same message.
                    assert_eq!(
                        to_wire(&receipt, receipt.checkpoint.as_bytes(), unsigned),
                        message,
                        "Receipt from the proto differs from it"
                    );
                    round_trip_and_check(&receipt, unsigned);
                }
                Err(e) => assert_wire_defect(&message, &e),
            }
        }
        3 => {
            let Ok(answer) = v1::SubmitBatchResponse::decode(input.rest()) else {
                return;
            };
            let (n, multi) = (answer.receipts.len(), answer.multiproof.is_some());
            match tlog_client::batch_receipts(answer) {
                Ok(receipts) => {
                    assert_eq!(receipts.len(), n, "one receipt per receipt");
                    for wire in receipts {
                        if let Ok(receipt) = Receipt::try_from(wire) {
                            check(&receipt);
                        }
                    }
                }
                Err(e) => assert!(multi, "refused without a multiproof: {e}"),
            }
        }
        _ => {
            let log = log();
            let size = input.u8() as u64 % LOG_ENTRIES as u64 + 1;
            let index = input.u8() as u64 % size;
            let mut r = log.receipt(index, size);
            check(&r);
            // The note as bytes: a mutation may leave it invalid UTF-8, which only the proto form can carry.
            let mut note = r.checkpoint.clone().into_bytes();
            for _ in 0..8 {
                if input.is_empty() {
                    break;
                }
                match input.u8() % 7 {
                    0 | 1 => mutate_proof(&mut input, &mut r.inclusion_proof, &log.tree.leaves),
                    2 => r.index = LeafIndex(input.edgy_u64(r.index.0)),
                    3 => r.leaf_hash = log.tree.leaves[input.u8() as usize % LOG_ENTRIES],
                    4 => {
                        let other = input.u8() as u64 % LOG_ENTRIES as u64 + 1;
                        note = log.checkpoint(other).note.clone().into_bytes();
                    }
                    5 => {
                        // One changed byte of the signed note, any value: inside a multi-byte character (the
                        // signature lines' em dashes) or as a byte over 0x7f it makes the note invalid UTF-8.
                        if !note.is_empty() {
                            let at = input.u16() as usize % note.len();
                            note[at] = input.u8();
                        }
                    }
                    _ => {
                        // A checkpoint the log really signs, for a fuzz-chosen size and a root that is not (or
                        // by chance is) the fixture tree's at that size: a fork, or a lie about the root.
                        let size = input.u8() as u64 % LOG_ENTRIES as u64 + 1;
                        let root = match input.u8() % 3 {
                            0 => log.tree.roots[input.u8() as usize % (LOG_ENTRIES + 1)],
                            1 => log.tree.leaves[input.u8() as usize % LOG_ENTRIES],
                            _ => input.hash(),
                        };
                        let cp = Checkpoint::new(ORIGIN, TreeSize(size), root).expect("valid");
                        note = sign_checkpoint(signer(), &cp, TIMESTAMP)
                            .expect("signing")
                            .note
                            .into_bytes();
                    }
                }
            }
            r.duplicate = input.u8() & 1 == 1;

            // Sent as a server sends it: the proto, encoded, decoded, converted.
            let unsigned = unsigned_copies(size);
            let sent = to_wire(&r, &note, &unsigned);
            let received = v1::Receipt::decode(sent.encode_to_vec().as_slice())
                .expect("an encoded receipt decodes");
            assert_eq!(received, sent, "proto bytes round trip");
            match (String::from_utf8(note), Receipt::try_from(received)) {
                (Ok(text), Ok(decoded)) => {
                    r.checkpoint = text;
                    assert_eq!(decoded, r, "the proto changed the receipt");
                    round_trip_and_check(&decoded, &unsigned);
                }
                // A note that is not UTF-8 is a malformed receipt, not an empty note.
                (Err(_), Err(ClientError::BadField(ProtoError::NotUtf8 { field })))
                    if field.name == "checkpoint.note" => {}
                (note, decoded) => panic!(
                    "note UTF-8: {}, but conversion gave {decoded:?}",
                    note.is_ok()
                ),
            }
        }
    }
});

/// The unsigned copies (size, root, timestamp) the server sends beside the note of the fixture checkpoint.
fn unsigned_copies(size: u64) -> v1::SignedCheckpoint {
    let cp = log().checkpoint(size);
    v1::SignedCheckpoint {
        note: Vec::new(),
        size: cp.checkpoint.size.0,
        root_hash: cp.checkpoint.root.0.to_vec(),
        timestamp_unix: cp.timestamp,
        archived_size: 0,
    }
}

/// `receipt` in the proto form, with `note` as the checkpoint note and the rest of the checkpoint (the
/// unsigned copies, which `Receipt` does not keep) taken from `unsigned`.
fn to_wire(receipt: &Receipt, note: &[u8], unsigned: &v1::SignedCheckpoint) -> v1::Receipt {
    v1::Receipt {
        index: receipt.index.0,
        leaf_hash: receipt.leaf_hash.0.to_vec(),
        checkpoint: Some(v1::SignedCheckpoint {
            note: note.to_vec(),
            ..unsigned.clone()
        }),
        inclusion_proof: receipt
            .inclusion_proof
            .iter()
            .map(|h| h.0.to_vec())
            .collect(),
        duplicate: receipt.duplicate,
    }
}

/// A proto receipt that did not convert must have the defect the error names.
fn assert_wire_defect(message: &v1::Receipt, error: &ClientError) {
    let ClientError::BadField(e) = error else {
        panic!("a proto receipt refused with {error:?}, not as malformed");
    };
    let hash_len = |field: &str, index: Option<usize>| match (field, index) {
        ("leaf_hash", None) => Some(message.leaf_hash.len()),
        ("inclusion_proof", Some(i)) => message.inclusion_proof.get(i).map(Vec::len),
        _ => None,
    };
    let named = match e {
        ProtoError::Missing { field } => field.name == "checkpoint" && message.checkpoint.is_none(),
        ProtoError::NotUtf8 { field } => {
            field.name == "checkpoint.note"
                && message
                    .checkpoint
                    .as_ref()
                    .is_some_and(|c| std::str::from_utf8(&c.note).is_err())
        }
        ProtoError::HashLength { field, got } => {
            *got != 32 && hash_len(field.name, field.index) == Some(*got)
        }
    };
    assert!(named, "refused for {e}, which is not true of {message:?}");
}

/// A decoded receipt round-trips through JSON and through the proto (with `unsigned` as its checkpoint's
/// unsigned copies), and verifies only if true.
fn round_trip_and_check(receipt: &Receipt, unsigned: &v1::SignedCheckpoint) {
    let json = serde_json::to_string(receipt).expect("a receipt serialises");
    let again: Receipt = serde_json::from_str(&json).expect("printed JSON parses");
    assert_eq!(&again, receipt, "JSON round trip");

    let wire = to_wire(receipt, receipt.checkpoint.as_bytes(), unsigned);
    let decoded =
        v1::Receipt::decode(wire.encode_to_vec().as_slice()).expect("an encoded receipt decodes");
    assert_eq!(decoded, wire, "proto bytes round trip");
    let again = Receipt::try_from(decoded).expect("a receipt's own proto converts back");
    assert_eq!(&again, receipt, "proto round trip");

    check(receipt);
}

/// Verifies `receipt` with and without its entry; acceptance must mean every claim is true.
fn check(receipt: &Receipt) {
    let log = log();
    let entry = (receipt.index.0 < LOG_ENTRIES as u64).then(|| log_entry(receipt.index.0 as usize));
    let with_entry = entry
        .as_deref()
        .map(|e| verify_receipt(verifier(), receipt, Some(e)).is_ok());
    let Ok(verified) = verify_receipt(verifier(), receipt, None) else {
        assert_ne!(
            with_entry,
            Some(true),
            "accepted with the entry but not without"
        );
        return;
    };
    let cp = verified.checkpoint();
    assert_eq!(
        cp.timestamp, TIMESTAMP,
        "accepted a checkpoint the fixture log never signed"
    );
    // The tree the accepted checkpoint's root is really of. RFC 9162 verification binds the tree size only
    // through the root, and some (index, size) pairs give a proof the same shape (leaf 3 of 5 and of 7 leaves):
    // so a checkpoint the log signed with another size's root (a lie that a second checkpoint or the entries
    // expose, not one receipt) can verify a receipt. Acceptance must still mean a true claim about that tree:
    // the right leaf and its correct proof.
    let Some(size) = log
        .tree
        .size_of_root(&cp.checkpoint.root)
        .filter(|&s| (1..=LOG_ENTRIES as u64).contains(&s))
    else {
        // A fork the log signed. The one claim a receipt can prove of a root that is no tree of the fixture log is
        // the one-leaf tree: size 1 whose root is the leaf hash itself (RFC 9162 §2.1.1: MTH({d0}) is the leaf
        // hash), with an empty proof. That claim is true of the signed root; any other acceptance would need a
        // hash preimage.
        assert!(
            cp.checkpoint.size.0 == 1
                && receipt.index.0 == 0
                && receipt.inclusion_proof.is_empty()
                && cp.checkpoint.root == receipt.leaf_hash,
            "accepted a root that is no tree of the fixture log (a fork, or not the log's): {cp:?}"
        );
        assert_eq!(
            with_entry,
            entry
                .as_deref()
                .map(|e| tlog_core::leaf_hash(e) == receipt.leaf_hash),
            "the receipt's own entry must verify exactly when its leaf is that entry's"
        );
        return;
    };
    // Such a checkpoint can also make the path of the receipt's index in its claimed size the path of another
    // index in the real tree (leaf 4 of 5 leaves and leaf 2 of 3 both have one sibling, on the left): what an
    // accepted receipt must still prove is a true claim about the signed root: its leaf is in that tree, with
    // that leaf's correct proof; and with an honest checkpoint, at the index it names.
    let index = receipt.index.0;
    let at = log.tree.leaves[..size as usize]
        .iter()
        .position(|l| *l == receipt.leaf_hash)
        .unwrap_or_else(|| panic!("accepted a leaf that is not in the tree of {size}"))
        as u64;
    assert_eq!(
        Some(&receipt.inclusion_proof),
        log.tree.inclusion(at, size).as_ref(),
        "a proof other than the leaf's correct one accepted"
    );
    if cp.checkpoint.size.0 == size {
        assert_eq!(at, index, "wrong index accepted under an honest checkpoint");
        assert_eq!(
            receipt.leaf_hash, log.tree.leaves[index as usize],
            "wrong leaf accepted"
        );
    }
    // `duplicate` is not covered by any signature; it is informational only (see SECURITY.md). The entry at the
    // named index verifies exactly when it is the accepted leaf's (always, under an honest checkpoint).
    let named = entry.as_deref().map(tlog_core::leaf_hash);
    assert_eq!(
        with_entry,
        named.map(|h| h == receipt.leaf_hash),
        "the receipt's own entry must verify exactly when its leaf is that entry's"
    );
}
