//! What the tests that compare with rs_merkle share.

use rs_merkle::Hasher;
use sha2::{Digest, Sha256};

/// rs_merkle's tree with RFC 9162 interior nodes, `SHA-256(0x01 || left || right)`, over leaf hashes we compute
/// (rs_merkle promotes a lone right node unchanged, which gives the RFC's tree for every size).
#[derive(Clone)]
pub struct Rfc9162;

impl Hasher for Rfc9162 {
    type Hash = [u8; 32];

    fn hash(data: &[u8]) -> [u8; 32] {
        Sha256::digest(data).into()
    }

    fn concat_and_hash(left: &[u8; 32], right: Option<&[u8; 32]>) -> [u8; 32] {
        match right {
            Some(right) => Sha256::new()
                .chain_update([0x01])
                .chain_update(left)
                .chain_update(right)
                .finalize()
                .into(),
            None => *left,
        }
    }
}
