//! Entries and randomness: deterministic, so a sampled answer can be checked without keeping what was sent.

use std::time::{SystemTime, UNIX_EPOCH};

use tlog_suite::incompressible_entry;

/// Entry `seq` of `client` in run `run`: unique, so de-duplication never short-cuts a write, with incompressible
/// filler, so compression does not flatter the disk bytes per entry. Deterministic, so a sampled receipt can be
/// checked against its entry without keeping every entry.
pub(crate) fn make_entry(run: u64, client: u32, seq: u64, size: usize) -> Vec<u8> {
    let mut prefix = [0u8; ENTRY_PREFIX];
    prefix[..8].copy_from_slice(&run.to_be_bytes());
    prefix[8..12].copy_from_slice(&client.to_be_bytes());
    prefix[12..].copy_from_slice(&seq.to_be_bytes());
    let seed = run ^ (u64::from(client) << 32) ^ seq.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    incompressible_entry(&prefix, seed, size)
}

/// Bytes of the (run, client, seq) prefix that makes entries unique.
pub(crate) const ENTRY_PREFIX: usize = 20;

/// xorshift64*: uniform enough for picking indices, and cheap.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        ((u128::from(self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)) * u128::from(n)) >> 64) as u64
    }
}

pub(crate) fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
