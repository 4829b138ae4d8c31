//! Checkpoints (C2SP tlog-checkpoint) and signed tree heads: parsing never panics, a parsed body re-serialises to
//! exactly the input, and `verify_checkpoint` with the fixture log's key accepts only checkpoints that log
//! signed, with the timestamp it signed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tlog_checkpoint::{Checkpoint, verify_checkpoint};
use tlog_fuzz::{LOG_ENTRIES, TIMESTAMP, log, verifier};

fuzz_target!(|data: &[u8]| {
    if let Ok(body) = std::str::from_utf8(data)
        && let Ok(cp) = Checkpoint::parse(body)
    {
        assert_eq!(
            cp.to_body(),
            body,
            "a parsed checkpoint must re-serialise to its input"
        );
        assert!(cp.validate().is_ok());
    }
    if let Ok(signed) = verify_checkpoint(verifier(), data) {
        let size = signed.checkpoint.size.0;
        assert!(
            (1..=LOG_ENTRIES as u64).contains(&size),
            "accepted a size the log never signed: {size}"
        );
        let genuine = log().checkpoint(size);
        assert_eq!(
            signed.checkpoint, genuine.checkpoint,
            "accepted a forged checkpoint"
        );
        assert_eq!(signed.timestamp, TIMESTAMP, "accepted a forged timestamp");
        assert_eq!(signed.note.as_bytes(), data);
    }
});
