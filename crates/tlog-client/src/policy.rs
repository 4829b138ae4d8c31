//! The witness policy: which witnesses a client knows and how many of them must have cosigned a checkpoint
//! (C2SP tlog-witness, tlog-cosignature) before it is trusted. A split view then needs that many witnesses to
//! collude with the log.

use tlog_checkpoint::{CosignerKey, SignedCheckpoint, VerifierKey};

use crate::ClientError;
use crate::checkpoint::verify_signed_note;

/// Known witnesses and the quorum of them whose valid cosignatures a checkpoint needs.
///
/// The default ([`WitnessPolicy::none`]) asks for no cosignature: the log's signature alone is trusted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WitnessPolicy {
    witnesses: Vec<CosignerKey>,
    quorum: usize,
}

impl WitnessPolicy {
    /// No witnesses: a checkpoint is trusted on the log's signature.
    pub fn none() -> Self {
        WitnessPolicy::default()
    }

    /// `quorum` of `witnesses` must cosign; `None` means all of them (the strict default: lower it explicitly).
    /// A quorum larger than the number of witnesses could never be met and is refused, as are two witnesses
    /// with the same name and key ID (a cosignature could not be attributed).
    pub fn new(witnesses: Vec<CosignerKey>, quorum: Option<usize>) -> Result<Self, ClientError> {
        let quorum = quorum.unwrap_or(witnesses.len());
        if quorum > witnesses.len() {
            return Err(ClientError::BadPolicy(format!(
                "quorum {quorum} exceeds the {} known witnesses",
                witnesses.len()
            )));
        }
        for (i, w) in witnesses.iter().enumerate() {
            if witnesses[..i]
                .iter()
                .any(|v| v.name() == w.name() && v.key_id() == w.key_id())
            {
                return Err(ClientError::BadPolicy(format!(
                    "witness {}+{} is given twice",
                    w.name(),
                    w.key_id()
                )));
            }
        }
        Ok(WitnessPolicy { witnesses, quorum })
    }

    /// The known witnesses.
    pub fn witnesses(&self) -> &[CosignerKey] {
        &self.witnesses
    }

    /// How many of them must cosign.
    pub fn quorum(&self) -> usize {
        self.quorum
    }

    /// Whether the policy asks for any cosignature.
    pub fn requires_witnesses(&self) -> bool {
        self.quorum > 0
    }

    /// Verifies a checkpoint note: the log's signature and timestamp, the empty tree's root, and (when the policy
    /// asks for any) `quorum` valid cosignatures of known witnesses. Too few is
    /// [`ClientError::BadCheckpoint`] with [`tlog_checkpoint::Error::NoQuorum`], which names the missing
    /// witnesses.
    pub fn verify(
        &self,
        log_key: &VerifierKey,
        note: &[u8],
    ) -> Result<SignedCheckpoint, ClientError> {
        let signed = verify_signed_note(log_key, note)?;
        if self.requires_witnesses() {
            tlog_checkpoint::verify_witnessed(log_key, &self.witnesses, self.quorum, note)
                .map_err(ClientError::BadCheckpoint)?;
        }
        Ok(signed)
    }
}
