//! Checking answers: cheap structural checks on every one, full verification of a sample with tlog-client's and
//! tlog-core's verifiers.

use std::collections::BTreeMap;

use tlog_checkpoint::{SignedCheckpoint, VerifierKey, verify_checkpoint};
use tlog_client::{ClientError, Receipt, TrustedLog, verify_receipt};
use tlog_core::{leaf_hash, verify_inclusion};
use tlog_proto::v1;
use tlog_proto::{hashes_from_bytes, required};

#[derive(Default, Debug)]
pub(crate) struct Checks {
    pub(crate) verified: u64,
    pub(crate) failures: u64,
    pub(crate) first_failure: Option<String>,
}

impl Checks {
    pub(crate) fn fail(&mut self, what: String) {
        self.failures += 1;
        self.first_failure.get_or_insert(what);
    }

    pub(crate) fn merge(&mut self, o: Checks) {
        self.verified += o.verified;
        self.failures += o.failures;
        if self.first_failure.is_none() {
            self.first_failure = o.first_failure;
        }
    }
}

/// Checks answers: cheap structural checks on every one, full cryptographic verification of a sample.
pub(crate) struct Verifier {
    pub(crate) key: VerifierKey,
    pub(crate) every: u64,
    pub(crate) seen: u64,
    /// The last checkpoint whose signatures were verified: receipts of one batch share it.
    pub(crate) cached: Option<SignedCheckpoint>,
    pub(crate) checks: Checks,
}

impl Verifier {
    pub(crate) fn new(key: &VerifierKey, every: u64) -> Verifier {
        Verifier {
            key: key.clone(),
            every,
            seen: 0,
            cached: None,
            checks: Checks::default(),
        }
    }

    pub(crate) fn sampled(&mut self) -> bool {
        self.seen += 1;
        self.seen.is_multiple_of(self.every)
    }

    /// Every write receipt: [`write_structure`](Self::write_structure); `force` or the sample verifies it fully
    /// against `entry()`.
    pub(crate) fn write_receipt(
        &mut self,
        r: &v1::Receipt,
        shared: Option<&v1::SignedCheckpoint>,
        force: bool,
        entry: impl FnOnce() -> Vec<u8>,
    ) {
        self.write_structure(r, shared);
        if self.sampled() || force {
            let receipt = match &r.checkpoint {
                Some(_) => Receipt::try_from(r.clone()),
                None => Receipt::try_from(v1::Receipt {
                    checkpoint: shared.cloned(),
                    ..r.clone()
                }),
            };
            match receipt {
                Ok(receipt) => {
                    let entry = entry();
                    self.full(&receipt, Some(&entry));
                }
                Err(e) => self.checks.fail(format!("receipt {}: {e}", r.index)),
            }
        }
    }

    /// A write receipt's structure: a new entry (never a duplicate) inside its checkpoint's tree (its own, else
    /// `shared`, the answer's).
    pub(crate) fn write_structure(
        &mut self,
        r: &v1::Receipt,
        shared: Option<&v1::SignedCheckpoint>,
    ) {
        let size = r.checkpoint.as_ref().or(shared).map_or(0, |c| c.size);
        if r.duplicate {
            self.checks
                .fail(format!("receipt {} marks a new entry duplicate", r.index));
        }
        if r.index >= size {
            self.checks.fail(format!(
                "receipt index {} outside its checkpoint's tree of {size}",
                r.index
            ));
        }
    }

    /// Full verification; counts the outcome and returns the verified checkpoint's size.
    pub(crate) fn full(&mut self, receipt: &Receipt, entry: Option<&[u8]>) -> Option<u64> {
        match self.check(receipt, entry) {
            Ok(size) => {
                self.checks.verified += 1;
                Some(size)
            }
            Err(e) => {
                self.checks
                    .fail(format!("receipt {}: {e}", receipt.index.0));
                None
            }
        }
    }

    /// `tlog_client::verify_receipt` (checkpoint signature and cosignature, leaf hash of the entry, inclusion
    /// proof). A checkpoint byte-identical to the last verified one is not verified again: only the leaf hash and
    /// the proof are, exactly as `LogClient` does for the receipts of one batch.
    pub(crate) fn check(
        &mut self,
        receipt: &Receipt,
        entry: Option<&[u8]>,
    ) -> Result<u64, ClientError> {
        if let Some(cp) = &self.cached
            && cp.note == receipt.checkpoint
        {
            if let Some(e) = entry
                && leaf_hash(e) != receipt.leaf_hash
            {
                return Err(ClientError::LeafHashMismatch {
                    entry_hash: leaf_hash(e),
                    receipt_hash: receipt.leaf_hash,
                });
            }
            verify_inclusion(
                &receipt.leaf_hash,
                receipt.index,
                cp.checkpoint.size,
                &receipt.inclusion_proof,
                &cp.checkpoint.root,
            )
            .map_err(ClientError::InclusionProofInvalid)?;
            return Ok(cp.checkpoint.size.0);
        }
        let verified = verify_receipt(&self.key, receipt, entry)?;
        let size = verified.checkpoint().checkpoint.size.0;
        self.cached = Some(verified.checkpoint().clone());
        Ok(size)
    }
}

/// Checks every answer is for the leaf asked; verifies the sample (and `force`: each reader's first answer) fully.
pub(crate) fn check_inclusion(
    v: &mut Verifier,
    proof: v1::InclusionProof,
    index: u64,
    entry: Option<&[u8]>,
    force: bool,
) {
    if proof.index != index {
        v.checks.fail(format!(
            "asked for leaf {index}, got a proof for {}",
            proof.index
        ));
        return;
    }
    if !v.sampled() && !force {
        return;
    }
    let tree_size = proof.tree_size;
    let receipt = receipt_of(proof);
    match receipt {
        Ok(receipt) => {
            if let Some(size) = v.full(&receipt, entry)
                && size != tree_size
            {
                v.checks.fail(format!(
                    "proof says tree size {tree_size}, its checkpoint {size}"
                ));
            }
        }
        Err(e) => v.checks.fail(format!("inclusion proof of {index}: {e}")),
    }
}

/// The wire proof as the receipt it amounts to, through tlog-client's conversion of receipts.
fn receipt_of(proof: v1::InclusionProof) -> Result<Receipt, ClientError> {
    Receipt::try_from(v1::Receipt {
        index: proof.index,
        leaf_hash: proof.leaf_hash,
        checkpoint: proof.checkpoint,
        inclusion_proof: proof.hashes,
        duplicate: false,
    })
}

/// Verifies the sample (and `force`) with `TrustedLog::advance`: trust in the old checkpoint, advanced to the new
/// one by the proof, exactly as a client advances.
pub(crate) fn check_consistency(
    v: &mut Verifier,
    old_trust: &mut BTreeMap<u64, TrustedLog>,
    proof: v1::ConsistencyProof,
    old_note: &str,
    force: bool,
) {
    if !v.sampled() && !force {
        return;
    }
    let (old_size, new_size) = (proof.old_size, proof.new_size);
    let result = (|| {
        let mut trust = match old_trust.get(&old_size) {
            Some(t) => t.clone(),
            None => {
                let t = TrustedLog::with_checkpoint(v.key.clone(), old_note)?;
                old_trust.insert(old_size, t.clone());
                t
            }
        };
        let note = required("checkpoint", proof.checkpoint)
            .map_err(ClientError::BadField)?
            .note;
        let new = verify_checkpoint(&v.key, &note).map_err(ClientError::BadCheckpoint)?;
        // The proof must be for the sizes of the checkpoints it is checked against.
        for (field, expected, got) in [
            ("old_size", trust.size().0, old_size),
            ("new_size", new.checkpoint.size.0, new_size),
        ] {
            if expected != got {
                return Err(ClientError::UnexpectedResponse {
                    field,
                    expected,
                    got,
                });
            }
        }
        let hashes = hashes_from_bytes("hashes", &proof.hashes)?;
        trust.advance(new, &hashes)
    })();
    match result {
        Ok(()) => v.checks.verified += 1,
        Err(e) => v
            .checks
            .fail(format!("consistency {old_size}..{new_size}: {e}")),
    }
}
