//! Receipts: offline-verifiable proofs that an entry is in the log (RFC 9162 §2.1.3 inclusion proof plus the
//! C2SP signed checkpoint it leads to), and their verification.

use serde::{Deserialize, Serialize};
use tlog_checkpoint::{SignedCheckpoint, VerifierKey};
use tlog_core::{
    Hash, LeafIndex, TreeSize, inclusion_proofs_from_multi, leaf_hash, verify_inclusion,
};
use tlog_proto::{
    hash_from_bytes, hashes_from_bytes, hashes_to_bytes, required, string_from_bytes, v1,
};

use crate::checkpoint::{check_forward, tree_of, verify_signed_note};
use crate::{ClientError, WitnessPolicy};

/// Proof that the entry with `leaf_hash` sits at `index` in the tree of the signed `checkpoint`.
///
/// Serialises to JSON as
/// `{"index": 5, "leaf_hash": "<64 hex>", "checkpoint": "<signed note>", "inclusion_proof": ["<64 hex>", ...],
/// "duplicate": false}`. Nothing in it is trusted until [`verify_receipt`] has checked it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ReceiptJson", into = "ReceiptJson")]
pub struct Receipt {
    /// Position of the entry in the log.
    pub index: LeafIndex,
    /// RFC 9162 leaf hash of the entry, `SHA-256(0x00 || entry)`.
    pub leaf_hash: Hash,
    /// The C2SP signed note of the checkpoint whose tree contains the entry.
    pub checkpoint: String,
    /// RFC 9162 §2.1.3.1 inclusion proof of `index` in the checkpoint's tree.
    pub inclusion_proof: Vec<Hash>,
    /// The entry was already in the log when submitted; `index` is its earlier position.
    pub duplicate: bool,
}

/// The JSON shape of a [`Receipt`]: hashes as lowercase hex.
#[derive(Serialize, Deserialize)]
struct ReceiptJson {
    index: u64,
    leaf_hash: String,
    checkpoint: String,
    inclusion_proof: Vec<String>,
    duplicate: bool,
}

impl From<Receipt> for ReceiptJson {
    fn from(r: Receipt) -> Self {
        ReceiptJson {
            index: r.index.0,
            leaf_hash: r.leaf_hash.to_hex(),
            checkpoint: r.checkpoint,
            inclusion_proof: r.inclusion_proof.iter().map(Hash::to_hex).collect(),
            duplicate: r.duplicate,
        }
    }
}

impl TryFrom<ReceiptJson> for Receipt {
    type Error = String;

    fn try_from(j: ReceiptJson) -> Result<Self, String> {
        let hex = |field: String, s: &str| {
            Hash::from_hex(s).ok_or_else(|| format!("{field}: expected 64 hex digits"))
        };
        let inclusion_proof = j
            .inclusion_proof
            .iter()
            .enumerate()
            .map(|(i, s)| hex(format!("inclusion_proof[{i}]"), s))
            .collect::<Result<_, _>>()?;
        Ok(Receipt {
            index: LeafIndex(j.index),
            leaf_hash: hex("leaf_hash".to_owned(), &j.leaf_hash)?,
            checkpoint: j.checkpoint,
            inclusion_proof,
            duplicate: j.duplicate,
        })
    }
}

/// Checks only the wire shape; the unsigned convenience fields of the checkpoint are dropped, as the
/// contract says to trust only the note.
impl TryFrom<v1::Receipt> for Receipt {
    type Error = ClientError;

    fn try_from(r: v1::Receipt) -> Result<Self, ClientError> {
        let checkpoint = required("checkpoint", r.checkpoint)?;
        Ok(Receipt {
            index: LeafIndex(r.index),
            leaf_hash: hash_from_bytes("leaf_hash", &r.leaf_hash)?,
            checkpoint: string_from_bytes("checkpoint.note", checkpoint.note)?,
            inclusion_proof: hashes_from_bytes("inclusion_proof", &r.inclusion_proof)?,
            duplicate: r.duplicate,
        })
    }
}

/// The receipts of a `SubmitBatch` or `SubmitStream` answer, each with its checkpoint and inclusion proof.
///
/// A server asked for `shared_checkpoint` sends the checkpoint once, in the answer, and leaves the receipts' own
/// unset; a receipt that has its own keeps it (servers older than the field send it in every receipt). A server
/// asked for `multiproof` also sends one multiproof of all the receipts in the answer: each receipt gets its own
/// proof expanded from it ([`tlog_core::inclusion_proofs_from_multi`]). Nothing is verified here; the receipts
/// verify exactly when the multiproof does. A multiproof that does not fit the receipts is an error.
pub fn batch_receipts(answer: v1::SubmitBatchResponse) -> Result<Vec<v1::Receipt>, ClientError> {
    let shared = answer.checkpoint;
    let mut receipts = answer.receipts;
    if shared.is_some() {
        for receipt in receipts.iter_mut().filter(|r| r.checkpoint.is_none()) {
            receipt.checkpoint.clone_from(&shared);
        }
    }
    if let Some(multi) = answer.multiproof {
        expand_multiproof(&mut receipts, &multi)?;
    }
    Ok(receipts)
}

/// Gives each receipt its inclusion proof from the answer's multiproof of their distinct indices.
fn expand_multiproof(
    receipts: &mut [v1::Receipt],
    multi: &v1::MultiProof,
) -> Result<(), ClientError> {
    let mut leaves = receipts
        .iter()
        .map(|r| {
            Ok((
                LeafIndex(r.index),
                hash_from_bytes("receipts.leaf_hash", &r.leaf_hash)?,
            ))
        })
        .collect::<Result<Vec<(LeafIndex, Hash)>, ClientError>>()?;
    leaves.sort_unstable_by_key(|(index, _)| *index);
    // Receipts of one index (an entry sent twice, or already in the log) must agree on its leaf hash.
    if let Some(pair) = leaves
        .windows(2)
        .find(|w| w[0].0 == w[1].0 && w[0].1 != w[1].1)
    {
        return Err(ClientError::LeafHashMismatch {
            entry_hash: pair[0].1,
            receipt_hash: pair[1].1,
        });
    }
    leaves.dedup_by_key(|(index, _)| *index);
    let hashes = hashes_from_bytes("multiproof.hashes", &multi.hashes)?;
    let proofs = inclusion_proofs_from_multi(TreeSize(multi.tree_size), &leaves, &hashes)
        .map_err(ClientError::MultiProofInvalid)?;
    for receipt in receipts.iter_mut() {
        let at = leaves.partition_point(|(index, _)| index.0 < receipt.index);
        receipt.inclusion_proof = hashes_to_bytes(&proofs[at]);
    }
    Ok(())
}

/// A [`Receipt`] that has passed [`verify_receipt`], with its verified checkpoint. Only verification makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedReceipt {
    receipt: Receipt,
    checkpoint: SignedCheckpoint,
}

impl VerifiedReceipt {
    /// The receipt as verified.
    pub fn receipt(&self) -> &Receipt {
        &self.receipt
    }

    /// The verified checkpoint the receipt proves inclusion in.
    pub fn checkpoint(&self) -> &SignedCheckpoint {
        &self.checkpoint
    }

    /// Position of the entry in the log.
    pub fn index(&self) -> LeafIndex {
        self.receipt.index
    }

    /// RFC 9162 leaf hash of the entry.
    pub fn leaf_hash(&self) -> Hash {
        self.receipt.leaf_hash
    }

    /// Whether the log already held the entry.
    pub fn duplicate(&self) -> bool {
        self.receipt.duplicate
    }

    /// The receipt and its checkpoint.
    pub fn into_parts(self) -> (Receipt, SignedCheckpoint) {
        (self.receipt, self.checkpoint)
    }
}

/// Verifies a receipt offline, in this order:
///
/// 1. the checkpoint note carries the log's valid Ed25519 signature and its timestamped cosignature (C2SP
///    signed-note, tlog-cosignature), and its origin is the key name ([`ClientError::BadCheckpoint`]);
/// 2. if `entry` is given, its leaf hash is the receipt's ([`ClientError::LeafHashMismatch`]);
/// 3. the inclusion proof leads from the leaf hash at `index` to the checkpoint root (RFC 9162 §2.1.3.2,
///    [`ClientError::InclusionProofInvalid`]).
///
/// Without `entry` the result proves only that *some* entry with that leaf hash is in the log.
pub fn verify_receipt(
    log_key: &VerifierKey,
    receipt: &Receipt,
    entry: Option<&[u8]>,
) -> Result<VerifiedReceipt, ClientError> {
    let checkpoint = verify_signed_note(log_key, receipt.checkpoint.as_bytes())?;
    verify_receipt_against(checkpoint, receipt, entry)
}

/// [`verify_receipt`] under a witness policy: the receipt's checkpoint must also carry the cosignatures the
/// policy asks for (a receipt straight from the log usually carries none: upgrade it with a witnessed checkpoint).
pub fn verify_receipt_with(
    log_key: &VerifierKey,
    policy: &WitnessPolicy,
    receipt: &Receipt,
    entry: Option<&[u8]>,
) -> Result<VerifiedReceipt, ClientError> {
    let checkpoint = policy.verify(log_key, receipt.checkpoint.as_bytes())?;
    verify_receipt_against(checkpoint, receipt, entry)
}

/// Steps 2 and 3 of [`verify_receipt`], for a checkpoint already verified from `receipt.checkpoint`.
pub(crate) fn verify_receipt_against(
    checkpoint: SignedCheckpoint,
    receipt: &Receipt,
    entry: Option<&[u8]>,
) -> Result<VerifiedReceipt, ClientError> {
    if let Some(entry) = entry {
        let entry_hash = leaf_hash(entry);
        if entry_hash != receipt.leaf_hash {
            return Err(ClientError::LeafHashMismatch {
                entry_hash,
                receipt_hash: receipt.leaf_hash,
            });
        }
    }
    verify_inclusion(
        &receipt.leaf_hash,
        receipt.index,
        checkpoint.checkpoint.size,
        &receipt.inclusion_proof,
        &checkpoint.checkpoint.root,
    )
    .map_err(ClientError::InclusionProofInvalid)?;
    Ok(VerifiedReceipt {
        receipt: receipt.clone(),
        checkpoint,
    })
}

/// A receipt as saved, optionally upgraded: a later checkpoint (witnessed, as the reader's policy wants) and the
/// RFC 9162 consistency proof from the receipt's tree to it, so the receipt verifies offline under a witness
/// policy although the log acknowledged it before any witness cosigned.
///
/// The JSON is the receipt's, plus `"witnessed": {"checkpoint": "<note>", "consistency_proof": ["<64 hex>",
/// ...]}` when upgraded; readers of plain receipts ignore the extra member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptFile {
    /// The receipt.
    #[serde(flatten)]
    pub receipt: Receipt,
    /// The upgrade, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub witnessed: Option<ReceiptUpgrade>,
}

/// A later checkpoint and the consistency proof that links a receipt's checkpoint to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "UpgradeJson", into = "UpgradeJson")]
pub struct ReceiptUpgrade {
    /// The later signed note (with witness cosignatures).
    pub checkpoint: String,
    /// RFC 9162 §2.1.4 proof from the receipt's tree size to this checkpoint's.
    pub consistency_proof: Vec<Hash>,
}

#[derive(Serialize, Deserialize)]
struct UpgradeJson {
    checkpoint: String,
    consistency_proof: Vec<String>,
}

impl From<ReceiptUpgrade> for UpgradeJson {
    fn from(u: ReceiptUpgrade) -> Self {
        UpgradeJson {
            checkpoint: u.checkpoint,
            consistency_proof: u.consistency_proof.iter().map(Hash::to_hex).collect(),
        }
    }
}

impl TryFrom<UpgradeJson> for ReceiptUpgrade {
    type Error = String;

    fn try_from(j: UpgradeJson) -> Result<Self, String> {
        let consistency_proof = j
            .consistency_proof
            .iter()
            .enumerate()
            .map(|(i, s)| {
                Hash::from_hex(s)
                    .ok_or_else(|| format!("consistency_proof[{i}]: expected 64 hex digits"))
            })
            .collect::<Result<_, _>>()?;
        Ok(ReceiptUpgrade {
            checkpoint: j.checkpoint,
            consistency_proof,
        })
    }
}

/// Verifies a saved receipt offline under a witness policy. Without an upgrade this is
/// [`verify_receipt_with`]. With one: the receipt as [`verify_receipt`] checks it (the log's signature), the
/// upgrade's checkpoint with the log key and the policy, and the consistency proof from the receipt's tree to the
/// upgrade's (RFC 9162 §2.1.4.2; a smaller tree is [`ClientError::CheckpointOlderThanTrusted`], the same size with
/// another root a [`ClientError::Fork`]). Returns the verified receipt and, when upgraded, the witnessed checkpoint
/// that now vouches for it.
pub fn verify_receipt_file(
    log_key: &VerifierKey,
    policy: &WitnessPolicy,
    file: &ReceiptFile,
    entry: Option<&[u8]>,
) -> Result<(VerifiedReceipt, Option<SignedCheckpoint>), ClientError> {
    let Some(upgrade) = &file.witnessed else {
        return Ok((
            verify_receipt_with(log_key, policy, &file.receipt, entry)?,
            None,
        ));
    };
    let verified = verify_receipt(log_key, &file.receipt, entry)?;
    let witnessed = policy.verify(log_key, upgrade.checkpoint.as_bytes())?;
    check_forward(
        tree_of(&verified.checkpoint().checkpoint),
        tree_of(&witnessed.checkpoint),
        &upgrade.consistency_proof,
    )?;
    Ok((verified, Some(witnessed)))
}
