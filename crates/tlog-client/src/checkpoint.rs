//! Checkpoint checks shared by receipts, the trusted state and the gRPC client, plus verification of log
//! contents against a checkpoint root.

use tlog_checkpoint::{Checkpoint, SignedCheckpoint, VerifierKey, verify_checkpoint};
use tlog_core::{CompactRange, Hash, TreeSize, empty_root, leaf_hash, verify_consistency};
#[cfg(feature = "grpc")]
use tlog_proto::{hash_from_bytes, string_from_bytes, v1};

use crate::ClientError;

/// Verifies a signed checkpoint note (C2SP signed-note, tlog-checkpoint and tlog-cosignature) and the one
/// constraint the note format cannot express: a tree of size 0 has the root `SHA-256("")` (RFC 9162 §2.1.1).
pub(crate) fn verify_signed_note(
    log_key: &VerifierKey,
    note: &[u8],
) -> Result<SignedCheckpoint, ClientError> {
    let signed = verify_checkpoint(log_key, note).map_err(ClientError::BadCheckpoint)?;
    let cp = &signed.checkpoint;
    if cp.size.0 == 0 && cp.root != empty_root() {
        return Err(ClientError::EmptyTreeRoot { root: cp.root });
    }
    Ok(signed)
}

/// Re-verifies a [`SignedCheckpoint`] from its note: its fields are public, so one may have been built or
/// edited by hand, and only the note is signed.
pub(crate) fn reverify(
    log_key: &VerifierKey,
    claimed: &SignedCheckpoint,
) -> Result<SignedCheckpoint, ClientError> {
    let verified = verify_signed_note(log_key, claimed.note.as_bytes())?;
    if verified != *claimed {
        return Err(ClientError::CheckpointFieldMismatch {
            field: "checkpoint",
        });
    }
    Ok(verified)
}

/// Verifies a `tlog.v1.SignedCheckpoint` from the server: its note, then that the unsigned copies beside it
/// agree with the note.
#[cfg(feature = "grpc")]
pub(crate) fn verify_proto_checkpoint(
    log_key: &VerifierKey,
    wire: v1::SignedCheckpoint,
) -> Result<SignedCheckpoint, ClientError> {
    let note = string_from_bytes("checkpoint.note", wire.note.clone())?;
    let signed = verify_signed_note(log_key, note.as_bytes())?;
    check_convenience_fields(&wire, &signed)?;
    Ok(signed)
}

/// Checks the unsigned copies of a wire checkpoint against the checkpoint verified from its note. They are
/// never used, but a disagreement means a broken or lying server.
#[cfg(feature = "grpc")]
pub(crate) fn check_convenience_fields(
    wire: &v1::SignedCheckpoint,
    verified: &SignedCheckpoint,
) -> Result<(), ClientError> {
    let root = hash_from_bytes("checkpoint.root_hash", &wire.root_hash)?;
    let field = if wire.size != verified.checkpoint.size.0 {
        "size"
    } else if root != verified.checkpoint.root {
        "root_hash"
    } else if wire.timestamp_unix != verified.timestamp {
        "timestamp_unix"
    } else {
        return Ok(());
    };
    Err(ClientError::CheckpointFieldMismatch { field })
}

/// The rule by which a verifier's view of the log moves forward: the tree never shrinks
/// ([`ClientError::CheckpointOlderThanTrusted`]), and `new` extends `old` by `proof` as in [`check_extends`].
/// [`TrustedLog::advance`](crate::TrustedLog::advance) applies it to the trusted state, and the checkpoint
/// watch (which has no proofs) to the stream.
pub(crate) fn check_forward(
    old: (TreeSize, Hash),
    new: (TreeSize, Hash),
    proof: &[Hash],
) -> Result<(), ClientError> {
    if new.0 < old.0 {
        return Err(ClientError::CheckpointOlderThanTrusted {
            trusted_size: old.0,
            new_size: new.0,
        });
    }
    check_extends(old, new, proof)
}

/// Checks that the tree of `new_size` with `new_root` extends the tree of `old_size` with `old_root`
/// (RFC 9162 §2.1.4.2). Equal sizes with different roots are reported as the [`ClientError::Fork`] they
/// prove; any other failure is a bad proof.
pub(crate) fn check_extends(
    (old_size, old_root): (TreeSize, Hash),
    (new_size, new_root): (TreeSize, Hash),
    proof: &[Hash],
) -> Result<(), ClientError> {
    if old_size == new_size && old_root != new_root {
        return Err(ClientError::Fork {
            size: new_size,
            trusted_root: old_root,
            new_root,
        });
    }
    verify_consistency(old_size, new_size, proof, &old_root, &new_root)
        .map_err(ClientError::ConsistencyProofInvalid)
}

/// A checkpoint's tree as (size, root).
pub(crate) fn tree_of(cp: &Checkpoint) -> (TreeSize, Hash) {
    (cp.size, cp.root)
}

/// Checks that appending `entries` to the tree `frontier` yields exactly the tree of `checkpoint`, and returns
/// the extended frontier.
///
/// This is how a monitor audits a log's contents: start from [`CompactRange::new`] (the empty tree), feed
/// entries `[0, size)` and compare the RFC 9162 §2.1.1 root with a verified checkpoint; keep the returned
/// frontier and continue from it with the next checkpoint. It never needs more than `O(log n)` memory.
pub fn verify_entries<E: AsRef<[u8]>>(
    frontier: &CompactRange,
    entries: &[E],
    checkpoint: &Checkpoint,
) -> Result<CompactRange, ClientError> {
    let count_error = || ClientError::EntryCountMismatch {
        expected: checkpoint.size.0.saturating_sub(frontier.size().0),
        got: entries.len() as u64,
    };
    let end = frontier
        .size()
        .0
        .checked_add(entries.len() as u64)
        .ok_or_else(count_error)?;
    if end != checkpoint.size.0 {
        return Err(count_error());
    }
    let mut tree = frontier.clone();
    // With the count checked the tree cannot overflow, but the error is mapped rather than assumed away.
    tree.extend(entries.iter().map(|e| leaf_hash(e.as_ref())), |_, _| {})
        .map_err(|_| count_error())?;
    check_root(&tree, checkpoint)?;
    Ok(tree)
}

/// Checks that a tree rebuilt from entries is exactly the tree of `checkpoint`.
pub(crate) fn check_root(tree: &CompactRange, checkpoint: &Checkpoint) -> Result<(), ClientError> {
    if tree.size() != checkpoint.size {
        return Err(ClientError::EntryCountMismatch {
            expected: checkpoint.size.0,
            got: tree.size().0,
        });
    }
    let computed = tree.root();
    if computed != checkpoint.root {
        return Err(ClientError::EntriesRootMismatch {
            size: checkpoint.size,
            computed,
            expected: checkpoint.root,
        });
    }
    Ok(())
}
