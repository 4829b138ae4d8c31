//! The Merkle tree of a transparency log, as RFC 9162 §2.1 defines it (the same tree as RFC 6962 §2.1): hashing,
//! the append-only frontier, proof construction from stored nodes, and proof verification.
//!
//! Scope: pure computation over hashes — no I/O, no async, `no_std` with `alloc`. Storage, signing and transport
//! live in other crates and build on these types:
//!
//! - Hashing (§2.1.1): [`leaf_hash`] `SHA-256(0x00 || entry)`, [`node_hash`] `SHA-256(0x01 || left || right)`,
//!   [`empty_root`] `SHA-256("")`; the [`struct@Hash`], [`LeafIndex`] and [`TreeSize`] newtypes.
//! - [`NodeId`]: a perfect subtree, the unit a log stores; [`range_nodes`] splits a leaf range into them.
//! - [`CompactRange`]: the right frontier of the tree; appending reports every node it completes, so a store can
//!   persist them, and the root is the fold of the frontier.
//! - [`ProofPlan`]: which stored nodes the §2.1.3.1 inclusion proof (`PATH`) or §2.1.4.1 consistency proof
//!   (`PROOF`/`SUBPROOF`) needs, and how to fold those whose proof hash covers an incomplete right edge.
//! - Verification per §2.1.3.2 and §2.1.4.2, with the proof length checked before any hashing.
//! - Multiproofs: one proof for many leaves of one tree ([`multi_inclusion_plan`], [`verify_multi_inclusion`]),
//!   and each leaf's own inclusion proof expanded from one ([`inclusion_proofs_from_multi`]).
//! - [`tiles`]: C2SP `tlog-tiles` coordinates, paths and bodies, and which tile slice holds a node.
//! - [`private`]: the version-1 private entry, a public commitment to a salted payload (docs/private.md).
//!
//! Nothing panics on any input: sizes and indices are `u64` and arithmetic near `u64::MAX` is guarded. A tree holds
//! at most `u64::MAX` leaves.

#![no_std]
extern crate alloc;
#[cfg(feature = "test-util")]
extern crate std;

mod compact;
mod error;
mod hash;
mod multiproof;
mod node;
pub mod private;
mod proof;
#[cfg(feature = "test-util")]
pub mod testing;
pub mod tiles;
mod verify;

pub use compact::CompactRange;
pub use error::{CoreError, VerifyError};
pub use hash::{HASH_SIZE, Hash, LeafIndex, TreeSize, empty_root, leaf_hash, node_hash};
pub use multiproof::{
    inclusion_proofs_from_multi, multi_inclusion_plan, multi_inclusion_proof_len,
    root_from_multi_inclusion_proof, verify_multi_inclusion,
};
pub use node::{NodeId, fold_range, range_nodes};
pub use proof::{ProofPlan, consistency_plan, inclusion_plan, root_plan};
pub use verify::{
    consistency_proof_len, inclusion_proof_len, root_from_inclusion_proof, verify_consistency,
    verify_inclusion,
};
