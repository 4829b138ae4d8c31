//! Evidence bundles: parsing and verification never panic; a parsed bundle is exactly its canonical bytes (it
//! re-encodes to the input); nothing verifies unless it is true of the fixture log (a checkpoint the log signed,
//! every event's entry at its index); and a genuine bundle with any one byte changed is rejected.
//!
//! Input: a mode byte, then 0: bundle bytes; 1: a genuine bundle of the fixture log (size and indices from the
//! input) with one byte at a chosen position replaced by a chosen value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tlog_client::evidence::EvidenceBundle;
use tlog_client::{WitnessPolicy, verify_evidence, verify_evidence_bytes};
use tlog_fuzz::{Input, LOG_ENTRIES, log, log_entry, verifier};

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    match input.u8() % 2 {
        0 => check_parsed(input.rest()),
        _ => check_mutated(&mut input),
    }
});

fn check_parsed(bytes: &[u8]) {
    let Ok(bundle) = EvidenceBundle::from_bytes(bytes) else {
        return;
    };
    assert_eq!(
        bundle.to_bytes(),
        bytes,
        "a parsed bundle is its canonical bytes"
    );
    let Ok(verified) = verify_evidence(verifier(), &WitnessPolicy::none(), &bundle) else {
        return;
    };
    let size = verified.checkpoint.checkpoint.size.0;
    assert!((1..=LOG_ENTRIES as u64).contains(&size), "size {size}");
    assert_eq!(
        verified.checkpoint.note,
        log().checkpoint(size).note,
        "only the fixture's checkpoints verify"
    );
    for e in &verified.events {
        assert!(e.index.0 < size);
        assert_eq!(e.entry, log_entry(e.index.0 as usize), "event {}", e.index);
    }
}

fn genuine(input: &mut Input) -> Vec<u8> {
    let size = u64::from(input.u8()) % LOG_ENTRIES as u64 + 1;
    let mask = input.u16();
    let mut indices: Vec<u64> = (0..size).filter(|i| mask & (1 << i) != 0).collect();
    if indices.is_empty() {
        indices.push(size - 1);
    }
    log().evidence_bundle(size, &indices).to_bytes()
}

fn check_mutated(input: &mut Input) {
    let mut bytes = genuine(input);
    verify_evidence_bytes(verifier(), &WitnessPolicy::none(), &bytes)
        .expect("a genuine bundle verifies");
    let at = usize::from(input.u16()) % bytes.len();
    let value = input.u8();
    if bytes[at] == value {
        return;
    }
    bytes[at] = value;
    assert!(
        verify_evidence_bytes(verifier(), &WitnessPolicy::none(), &bytes).is_err(),
        "byte {at} set to {value:#04x} was accepted"
    );
}
