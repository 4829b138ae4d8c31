//! Receipts: decoding (JSON as `tlog` prints it, or the `tlog.v1.Receipt` proto) and `verify_receipt` never
//! panic, decoding round-trips, and no receipt verifies unless everything it claims is true of the fixture log:
//! a checkpoint the log signed, a leaf that sits at the claimed index, and that index's correct proof.
//!
//! Input: a mode byte, then 0: receipt JSON, 1: proto bytes, 2: a genuine receipt plus mutations.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use tlog_client::{Receipt, verify_receipt};
use tlog_core::LeafIndex;
use tlog_fuzz::{Input, LOG_ENTRIES, TIMESTAMP, log, log_entry, mutate_proof, verifier};
use tlog_proto::v1;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    match input.u8() % 3 {
        0 => {
            let Ok(receipt) = serde_json::from_slice::<Receipt>(input.rest()) else {
                return;
            };
            let json = serde_json::to_string(&receipt).expect("a receipt serialises");
            let again: Receipt = serde_json::from_str(&json).expect("printed JSON parses");
            assert_eq!(again, receipt, "JSON round trip");
            check(&receipt);
        }
        1 => {
            let Ok(message) = v1::Receipt::decode(input.rest()) else {
                return;
            };
            let Ok(receipt) = Receipt::try_from(message) else {
                return;
            };
            check(&receipt);
        }
        _ => {
            let log = log();
            let size = input.u8() as u64 % LOG_ENTRIES as u64 + 1;
            let index = input.u8() as u64 % size;
            let mut r = log.receipt(index, size);
            check(&r);
            for _ in 0..8 {
                if input.is_empty() {
                    break;
                }
                match input.u8() % 6 {
                    0 | 1 => mutate_proof(&mut input, &mut r.inclusion_proof, &log.tree.leaves),
                    2 => r.index = LeafIndex(input.edgy_u64(r.index.0)),
                    3 => r.leaf_hash = log.tree.leaves[input.u8() as usize % LOG_ENTRIES],
                    4 => {
                        let other = input.u8() as u64 % LOG_ENTRIES as u64 + 1;
                        r.checkpoint = log.checkpoint(other).note.clone();
                    }
                    _ => {
                        // One changed byte of the signed note (kept UTF-8 so it still reaches the verifier).
                        let mut bytes = r.checkpoint.clone().into_bytes();
                        if !bytes.is_empty() {
                            let at = input.u16() as usize % bytes.len();
                            bytes[at] = input.u8() & 0x7f;
                        }
                        r.checkpoint = String::from_utf8(bytes).unwrap_or_default();
                    }
                }
            }
            r.duplicate = input.u8() & 1 == 1;
            check(&r);
        }
    }
});

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
    let size = cp.checkpoint.size.0;
    assert!(
        (1..=LOG_ENTRIES as u64).contains(&size)
            && cp.checkpoint.root == log.tree.roots[size as usize]
            && cp.timestamp == TIMESTAMP,
        "accepted a checkpoint the log never signed: {cp:?}"
    );
    let index = receipt.index.0;
    assert!(
        index < size,
        "accepted index {index} outside the tree of {size}"
    );
    assert_eq!(
        receipt.leaf_hash, log.tree.leaves[index as usize],
        "wrong leaf accepted"
    );
    assert_eq!(
        Some(&receipt.inclusion_proof),
        log.tree.inclusion(index, size).as_ref(),
        "a proof other than the correct one accepted"
    );
    // `duplicate` is not covered by any signature; it is informational only (see SECURITY.md).
    assert_eq!(
        with_entry,
        Some(true),
        "the receipt's own entry must verify too"
    );
}
