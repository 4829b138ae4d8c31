//! The verifying gRPC client of the `tlog.v1.Log` service.

use std::fmt;

use tlog_checkpoint::{Checkpoint, SignedCheckpoint, VerifierKey};
use tlog_core::{
    CompactRange, Hash, LeafIndex, TreeSize, leaf_hash, multi_inclusion_proof_len,
    verify_multi_inclusion,
};
use tlog_proto::v1::{self, get_inclusion_proof_request::Leaf};
use tlog_proto::{hash_from_bytes, hash_to_bytes, hashes_from_bytes, required};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

use crate::checkpoint::{
    check_convenience_fields, check_extends, check_forward, check_root, reverify, tree_of,
    verify_proto_checkpoint,
};
use crate::receipt::{batch_receipts, verify_receipt_against};
use crate::{ClientError, Receipt, TrustedLog, VerifiedReceipt, WitnessPolicy};

/// A bearer token for the log's write methods, sent as `authorization: Bearer <token>`.
///
/// `Debug` does not print the token.
#[derive(Clone)]
pub struct BearerToken(MetadataValue<Ascii>);

impl BearerToken {
    /// Checks that the token can travel in an HTTP header (visible ASCII).
    pub fn new(token: &str) -> Result<Self, ClientError> {
        let mut value = MetadataValue::try_from(format!("Bearer {token}"))
            .map_err(|_| ClientError::InvalidToken)?;
        // Keeps the token out of HTTP/2 header compression tables and out of logs.
        value.set_sensitive(true);
        Ok(BearerToken(value))
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(..)")
    }
}

/// Adds the bearer token, if any, to every request.
#[derive(Clone, Debug)]
struct Auth(Option<BearerToken>);

impl Interceptor for Auth {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(BearerToken(value)) = &self.0 {
            req.metadata_mut().insert("authorization", value.clone());
        }
        Ok(req)
    }
}

type Rpc = v1::log_client::LogClient<InterceptedService<Channel, Auth>>;

/// A checkpoint, verified, that a consistency proof links to an older verified checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedConsistency {
    /// The older checkpoint.
    pub old: SignedCheckpoint,
    /// The newer checkpoint.
    pub new: SignedCheckpoint,
    /// The RFC 9162 §2.1.4 proof from `old` to `new`.
    pub proof: Vec<Hash>,
}

/// A verifying client of a tlog server.
///
/// A private entry's opening, checked against the entry and the entry's inclusion in a signed checkpoint.
/// `Debug` does not print the payload or the salt.
pub struct PrivatePayload {
    pub subject: String,
    pub salt: Vec<u8>,
    pub payload: Vec<u8>,
    /// The private entry (the public commitment).
    pub entry: Vec<u8>,
    /// Its inclusion in the latest checkpoint.
    pub receipt: VerifiedReceipt,
}

impl fmt::Debug for PrivatePayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivatePayload")
            .field("subject", &self.subject)
            .field("index", &self.receipt.index())
            .finish_non_exhaustive()
    }
}

/// Every method checks what it returns: checkpoint signatures with the log key, inclusion and consistency
/// proofs, that the answer is to the question asked, and that the unsigned convenience fields agree with the
/// signed note. With a [`TrustedLog`] attached, [`checkpoint`](Self::checkpoint) also proves each new checkpoint
/// consistent with the trusted one before moving to it.
#[derive(Debug, Clone)]
pub struct LogClient {
    channel: Channel,
    auth: Auth,
    key: VerifierKey,
    trusted: Option<TrustedLog>,
    policy: WitnessPolicy,
    max_message_size: Option<usize>,
}

impl LogClient {
    /// A client over an existing channel (plaintext or TLS, lazy or connected: the caller decides).
    pub fn new(channel: Channel, key: VerifierKey) -> Self {
        LogClient {
            channel,
            auth: Auth(None),
            key,
            trusted: None,
            policy: WitnessPolicy::none(),
            max_message_size: None,
        }
    }

    /// Connects to `endpoint`, e.g. `http://127.0.0.1:7000`.
    pub async fn connect(endpoint: &str, key: VerifierKey) -> Result<Self, ClientError> {
        let channel = Channel::from_shared(endpoint.to_owned())
            .map_err(|_| ClientError::InvalidEndpoint(endpoint.to_owned()))?
            .connect()
            .await?;
        Ok(LogClient::new(channel, key))
    }

    /// Connects to `endpoint` (`https://host:port`) over TLS, trusting only the CA certificates in `ca_pem`
    /// (PEM) for the server's certificate, whose name must match the endpoint's host.
    ///
    /// TLS protects the token and the connection; the log's answers are verified with `key` either way.
    pub async fn connect_tls(
        endpoint: &str,
        key: VerifierKey,
        ca_pem: &[u8],
    ) -> Result<Self, ClientError> {
        let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca_pem));
        let channel = Channel::from_shared(endpoint.to_owned())
            .map_err(|_| ClientError::InvalidEndpoint(endpoint.to_owned()))?
            .tls_config(tls)?
            .connect()
            .await?;
        Ok(LogClient::new(channel, key))
    }

    /// Sends `authorization: Bearer <token>` with every request.
    pub fn with_token(mut self, token: BearerToken) -> Self {
        self.auth = Auth(Some(token));
        self
    }

    /// Raises the limit on a decoded response (tonic's default is 4 MiB), for large batches or entry pages.
    pub fn with_max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = Some(bytes);
        self
    }

    /// Requires the witness cosignatures of `policy` on every checkpoint read from the log (latest, by size, and
    /// those of inclusion and consistency proofs). Receipts of submissions are exempt: the log acknowledges with
    /// its own signature, and witnesses cosign later.
    pub fn with_policy(mut self, policy: WitnessPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Checks a checkpoint the log returned against the witness policy.
    fn witnessed(&self, checkpoint: SignedCheckpoint) -> Result<SignedCheckpoint, ClientError> {
        if self.policy.requires_witnesses() {
            self.policy.verify(&self.key, checkpoint.note.as_bytes())?;
        }
        Ok(checkpoint)
    }

    /// Attaches verifier state; its key must be the client's.
    pub fn with_trusted(mut self, trusted: TrustedLog) -> Result<Self, ClientError> {
        self.check_key(&trusted)?;
        self.trusted = Some(trusted);
        Ok(self)
    }

    fn check_key(&self, trusted: &TrustedLog) -> Result<(), ClientError> {
        if *trusted.key() == self.key {
            return Ok(());
        }
        Err(ClientError::KeyMismatch {
            expected: self.key.to_string(),
            found: trusted.key().to_string(),
        })
    }

    /// The log's verifier key.
    pub fn key(&self) -> &VerifierKey {
        &self.key
    }

    /// The attached verifier state, e.g. to [`save`](TrustedLog::save) it.
    pub fn trusted(&self) -> Option<&TrustedLog> {
        self.trusted.as_ref()
    }

    /// Detaches the verifier state.
    pub fn take_trusted(&mut self) -> Option<TrustedLog> {
        self.trusted.take()
    }

    fn rpc(&self) -> Rpc {
        let rpc =
            v1::log_client::LogClient::with_interceptor(self.channel.clone(), self.auth.clone());
        match self.max_message_size {
            Some(limit) => rpc.max_decoding_message_size(limit),
            None => rpc,
        }
    }

    /// Appends `entry` and returns its receipt, verified against the entry.
    pub async fn submit(&self, entry: &[u8]) -> Result<VerifiedReceipt, ClientError> {
        let request = v1::SubmitRequest {
            entry: entry.to_vec(),
        };
        let receipt = self.rpc().submit(request).await?.into_inner();
        let mut last = None;
        self.verify_wire_receipt(receipt, entry, &mut last)
    }

    /// Appends `entries` in order and returns one verified receipt per entry, in the same order.
    pub async fn submit_batch<E: AsRef<[u8]>>(
        &self,
        entries: &[E],
    ) -> Result<Vec<VerifiedReceipt>, ClientError> {
        let request = v1::SubmitBatchRequest {
            entries: entries.iter().map(|e| e.as_ref().to_vec()).collect(),
            client_tag: 0,
            shared_checkpoint: true,
            multiproof: true,
        };
        let receipts = batch_receipts(self.rpc().submit_batch(request).await?.into_inner())?;
        check_equal("receipts.len", entries.len() as u64, receipts.len() as u64)?;
        // Receipts of one batch usually share a checkpoint; its signatures are checked once.
        let mut last = None;
        receipts
            .into_iter()
            .zip(entries)
            .map(|(receipt, entry)| self.verify_wire_receipt(receipt, entry.as_ref(), &mut last))
            .collect()
    }

    fn verify_wire_receipt(
        &self,
        wire: v1::Receipt,
        entry: &[u8],
        last: &mut Option<SignedCheckpoint>,
    ) -> Result<VerifiedReceipt, ClientError> {
        self.verify_wire_receipt_for(wire, leaf_hash(entry), last)
    }

    /// Verifies a receipt for the entry whose leaf hash is `expected`. `last` caches the previous receipt's
    /// checkpoint: receipts of one batch usually share it, and its signatures need checking only once.
    fn verify_wire_receipt_for(
        &self,
        wire: v1::Receipt,
        expected: Hash,
        last: &mut Option<SignedCheckpoint>,
    ) -> Result<VerifiedReceipt, ClientError> {
        let wire_checkpoint = required("checkpoint", wire.checkpoint.clone())?;
        let receipt = Receipt::try_from(wire)?;
        if receipt.leaf_hash != expected {
            return Err(ClientError::LeafHashMismatch {
                entry_hash: expected,
                receipt_hash: receipt.leaf_hash,
            });
        }
        let checkpoint = match last.take() {
            Some(sc) if sc.note.as_bytes() == wire_checkpoint.note.as_slice() => {
                check_convenience_fields(&wire_checkpoint, &sc)?;
                sc
            }
            _ => verify_proto_checkpoint(&self.key, wire_checkpoint)?,
        };
        *last = Some(checkpoint.clone());
        verify_receipt_against(checkpoint, &receipt, None)
    }

    /// Appends private payloads `(subject, payload)` (`SubmitPrivate`, write scope): the log commits to each
    /// under a salt it draws and keeps the payload encrypted. Each receipt is verified (signed checkpoint,
    /// inclusion of its leaf); the entry itself is the log's, so [`private_payload`](Self::private_payload) is
    /// how to check it opens to the payload.
    pub async fn submit_private(
        &self,
        payloads: &[(&str, &[u8])],
    ) -> Result<Vec<VerifiedReceipt>, ClientError> {
        let request = v1::SubmitPrivateRequest {
            payloads: payloads
                .iter()
                .map(|(subject, payload)| v1::PrivatePayload {
                    subject: subject.to_string(),
                    payload: payload.to_vec(),
                })
                .collect(),
        };
        let receipts = self
            .rpc()
            .submit_private(request)
            .await?
            .into_inner()
            .receipts;
        check_equal("receipts.len", payloads.len() as u64, receipts.len() as u64)?;
        let mut last = None;
        receipts
            .into_iter()
            .map(|receipt| {
                let leaf = hash_from_bytes("leaf_hash", &receipt.leaf_hash)?;
                self.verify_wire_receipt_for(receipt, leaf, &mut last)
            })
            .collect()
    }

    /// The payload of the private entry at `index` (`GetPrivatePayload`, read-private scope), returned only once
    /// checked: the salt and payload open the entry's commitment (`tlog_core::private::check_opening`), and the
    /// entry is proved included in the latest signed checkpoint.
    pub async fn private_payload(&self, index: LeafIndex) -> Result<PrivatePayload, ClientError> {
        let answer = self
            .rpc()
            .get_private_payload(v1::GetPrivatePayloadRequest { index: index.0 })
            .await?
            .into_inner();
        check_equal("index", index.0, answer.index)?;
        let subject =
            tlog_core::private::check_opening(&answer.entry, &answer.salt, &answer.payload)
                .map_err(ClientError::PrivateOpening)?;
        if subject != answer.subject.as_bytes() {
            return Err(ClientError::PrivateOpening(
                tlog_core::private::PrivateError::CommitmentMismatch,
            ));
        }
        let receipt = self.inclusion_by_index(index, None).await?;
        let entry_hash = leaf_hash(&answer.entry);
        if receipt.leaf_hash() != entry_hash {
            return Err(ClientError::LeafHashMismatch {
                entry_hash,
                receipt_hash: receipt.leaf_hash(),
            });
        }
        Ok(PrivatePayload {
            subject: answer.subject,
            salt: answer.salt,
            payload: answer.payload,
            entry: answer.entry,
            receipt,
        })
    }

    /// Erases `subject` (`EraseSubject`, admin scope) and returns the verified receipt of the erasure entry, which
    /// must be the `tlog-erasure-v1` entry for that subject and the time the log reports.
    pub async fn erase_subject(
        &self,
        subject: &str,
    ) -> Result<(VerifiedReceipt, u64), ClientError> {
        let answer = self
            .rpc()
            .erase_subject(v1::EraseSubjectRequest {
                subject: subject.to_string(),
            })
            .await?
            .into_inner();
        let entry = tlog_core::private::erasure_entry(subject.as_bytes(), answer.erased_at_unix)
            .map_err(ClientError::PrivateOpening)?;
        let receipt = required("receipt", answer.receipt)?;
        let mut last = None;
        let receipt = self.verify_wire_receipt(receipt, &entry, &mut last)?;
        Ok((receipt, answer.erased_at_unix))
    }

    /// Appends many batches over one `SubmitStream` call and returns, per batch and in order, one verified
    /// receipt per entry.
    ///
    /// Each request carries its batch number as `client_tag`; the responses must come back in request order
    /// with the tag echoed and one receipt per entry ([`ClientError::UnexpectedResponse`] otherwise). The batches
    /// are turned into requests up front and only each entry's leaf hash is kept for checking its receipt.
    pub async fn submit_stream<I>(
        &self,
        batches: I,
    ) -> Result<Vec<Vec<VerifiedReceipt>>, ClientError>
    where
        I: IntoIterator<Item = Vec<Vec<u8>>>,
    {
        let mut expected: Vec<Vec<Hash>> = Vec::new();
        let mut requests = Vec::new();
        for (tag, entries) in (0u64..).zip(batches) {
            expected.push(entries.iter().map(|e| leaf_hash(e)).collect());
            requests.push(v1::SubmitBatchRequest {
                entries,
                client_tag: tag,
                shared_checkpoint: true,
                multiproof: true,
            });
        }
        let mut responses = self
            .rpc()
            .submit_stream(tokio_stream::iter(requests))
            .await?
            .into_inner();
        let mut last = None;
        let mut out = Vec::with_capacity(expected.len());
        for (tag, hashes) in (0u64..).zip(expected) {
            let response = responses
                .message()
                .await?
                .ok_or(ClientError::UnexpectedResponse {
                    field: "responses.len",
                    expected: tag + 1,
                    got: tag,
                })?;
            check_equal("client_tag", tag, response.client_tag)?;
            check_equal(
                "receipts.len",
                hashes.len() as u64,
                response.receipts.len() as u64,
            )?;
            let receipts = batch_receipts(response)?
                .into_iter()
                .zip(hashes)
                .map(|(receipt, hash)| self.verify_wire_receipt_for(receipt, hash, &mut last))
                .collect::<Result<Vec<_>, _>>()?;
            out.push(receipts);
        }
        if responses.message().await?.is_some() {
            return Err(ClientError::UnexpectedResponse {
                field: "responses.len",
                expected: out.len() as u64,
                got: out.len() as u64 + 1,
            });
        }
        Ok(out)
    }

    /// The latest checkpoint, verified. With a [`TrustedLog`] attached, trust advances to it, proven
    /// consistent with a proof fetched from the server.
    pub async fn checkpoint(&mut self) -> Result<SignedCheckpoint, ClientError> {
        self.checkpoint_at_least(TreeSize(0)).await
    }

    /// The first checkpoint whose tree has at least `min_size` entries (the server waits up to its own limit),
    /// verified and, with a [`TrustedLog`] attached, trusted as in [`checkpoint`](Self::checkpoint).
    pub async fn checkpoint_at_least(
        &mut self,
        min_size: TreeSize,
    ) -> Result<SignedCheckpoint, ClientError> {
        let wire = if self.policy.requires_witnesses() {
            self.witnessed_checkpoint(min_size).await?
        } else {
            let request = v1::GetCheckpointRequest {
                min_size: min_size.0,
                size: 0,
                witnessed: false,
            };
            self.rpc().get_checkpoint(request).await?.into_inner()
        };
        let new = self.witnessed(verify_proto_checkpoint(&self.key, wire)?)?;
        if new.checkpoint.size < min_size {
            return Err(ClientError::UnexpectedResponse {
                field: "size",
                expected: min_size.0,
                got: new.checkpoint.size.0,
            });
        }
        let rpc = self.rpc();
        if let Some(trusted) = self.trusted.as_mut() {
            advance(&rpc, &self.key, trusted, new.clone()).await?;
        }
        Ok(new)
    }

    /// Under a witness policy: the log's newest witnessed checkpoint (`GetCheckpoint{witnessed}`). A log without
    /// witnesses (`FAILED_PRECONDITION`) or without a witnessed checkpoint yet (`UNAVAILABLE`) gets the plain
    /// latest one instead, which the policy then refuses, naming the missing witnesses. `min_size` is not waited
    /// for: the witnessed checkpoint is what it is.
    async fn witnessed_checkpoint(
        &self,
        min_size: TreeSize,
    ) -> Result<v1::SignedCheckpoint, ClientError> {
        let request = v1::GetCheckpointRequest {
            witnessed: true,
            ..Default::default()
        };
        match self.rpc().get_checkpoint(request).await {
            Ok(answer) => Ok(answer.into_inner()),
            Err(status)
                if matches!(
                    status.code(),
                    tonic::Code::FailedPrecondition | tonic::Code::Unavailable
                ) =>
            {
                let request = v1::GetCheckpointRequest {
                    min_size: min_size.0,
                    size: 0,
                    witnessed: false,
                };
                Ok(self.rpc().get_checkpoint(request).await?.into_inner())
            }
            Err(status) => Err(status.into()),
        }
    }

    /// The checkpoint the log published for exactly `size` entries, verified. The attached [`TrustedLog`], if
    /// any, is left alone: an old checkpoint is history, not news.
    ///
    /// Size 0 cannot be asked for, because the wire uses 0 for "unset" ([`ClientError::InvalidRequest`]); the
    /// empty tree's root is `SHA-256("")` in any log. A size the log never signed is an [`ClientError::Rpc`]
    /// error with status `NOT_FOUND`.
    pub async fn checkpoint_at(&self, size: TreeSize) -> Result<SignedCheckpoint, ClientError> {
        self.witnessed(checkpoint_at(&self.rpc(), &self.key, size).await?)
    }

    /// Every new checkpoint the log signs, starting with the current one; see [`CheckpointWatch`].
    pub async fn watch_checkpoints(&self) -> Result<CheckpointWatch, ClientError> {
        let stream = self
            .rpc()
            .watch_checkpoints(v1::WatchCheckpointsRequest {})
            .await?
            .into_inner();
        Ok(CheckpointWatch {
            stream,
            key: self.key.clone(),
            last: None,
        })
    }

    /// Moves `trusted` to `new` (a verified checkpoint, e.g. from a receipt), fetching the consistency proof
    /// from the trusted size. See [`TrustedLog::advance`] for the rules.
    pub async fn advance(
        &self,
        trusted: &mut TrustedLog,
        new: SignedCheckpoint,
    ) -> Result<(), ClientError> {
        self.check_key(trusted)?;
        advance(&self.rpc(), &self.key, trusted, new).await
    }

    /// Proves the leaf at `index` is in the tree of `tree_size` (`None`: the latest checkpoint), verified against
    /// the signed checkpoint the server returns for that size. The receipt's `duplicate` flag is `false`.
    pub async fn inclusion_by_index(
        &self,
        index: LeafIndex,
        tree_size: Option<TreeSize>,
    ) -> Result<VerifiedReceipt, ClientError> {
        let (witnessed, tree_size) = self.policy_tree(tree_size).await?;
        let proof = self.get_inclusion(Leaf::Index(index.0), tree_size).await?;
        check_equal("index", index.0, proof.index)?;
        self.verify_wire_inclusion(proof, tree_size, witnessed)
    }

    /// Like [`inclusion_by_index`](Self::inclusion_by_index), for the leaf with RFC 9162 leaf hash `hash`.
    pub async fn inclusion_by_hash(
        &self,
        hash: &Hash,
        tree_size: Option<TreeSize>,
    ) -> Result<VerifiedReceipt, ClientError> {
        let (witnessed, tree_size) = self.policy_tree(tree_size).await?;
        let proof = self
            .get_inclusion(Leaf::LeafHash(hash_to_bytes(hash)), tree_size)
            .await?;
        let got = hash_from_bytes("leaf_hash", &proof.leaf_hash)?;
        if got != *hash {
            return Err(ClientError::LeafHashMismatch {
                entry_hash: *hash,
                receipt_hash: got,
            });
        }
        self.verify_wire_inclusion(proof, tree_size, witnessed)
    }

    /// Proves `entry` is in the tree of `tree_size` (`None`: the latest checkpoint).
    pub async fn inclusion_of_entry(
        &self,
        entry: &[u8],
        tree_size: Option<TreeSize>,
    ) -> Result<VerifiedReceipt, ClientError> {
        self.inclusion_by_hash(&leaf_hash(entry), tree_size).await
    }

    async fn get_inclusion(
        &self,
        leaf: Leaf,
        tree_size: Option<TreeSize>,
    ) -> Result<v1::InclusionProof, ClientError> {
        let request = v1::GetInclusionProofRequest {
            leaf: Some(leaf),
            tree_size: tree_size.map_or(0, |s| s.0),
        };
        Ok(self.rpc().get_inclusion_proof(request).await?.into_inner())
    }

    /// Under a witness policy, a proof asked of the latest tree is asked of the newest witnessed one instead:
    /// returns that checkpoint (verified against the policy) and its size. Otherwise nothing changes.
    async fn policy_tree(
        &self,
        tree_size: Option<TreeSize>,
    ) -> Result<(Option<SignedCheckpoint>, Option<TreeSize>), ClientError> {
        if tree_size.is_some() || !self.policy.requires_witnesses() {
            return Ok((None, tree_size));
        }
        let wire = self.witnessed_checkpoint(TreeSize(0)).await?;
        let witnessed = self.witnessed(verify_proto_checkpoint(&self.key, wire)?)?;
        let size = witnessed.checkpoint.size;
        Ok((Some(witnessed), Some(size)))
    }

    /// The checkpoint a proof is verified against: the log's, which must meet the policy; or, when
    /// [`policy_tree`](Self::policy_tree) chose a witnessed one, that one, which the log's must match.
    fn proof_checkpoint(
        &self,
        signed: SignedCheckpoint,
        witnessed: Option<SignedCheckpoint>,
    ) -> Result<SignedCheckpoint, ClientError> {
        match witnessed {
            None => self.witnessed(signed),
            Some(w) => {
                check_equal(
                    "checkpoint.size",
                    w.checkpoint.size.0,
                    signed.checkpoint.size.0,
                )?;
                if w.checkpoint.root != signed.checkpoint.root {
                    return Err(ClientError::Fork {
                        size: w.checkpoint.size,
                        trusted_root: w.checkpoint.root,
                        new_root: signed.checkpoint.root,
                    });
                }
                Ok(w)
            }
        }
    }

    fn verify_wire_inclusion(
        &self,
        proof: v1::InclusionProof,
        tree_size: Option<TreeSize>,
        witnessed: Option<SignedCheckpoint>,
    ) -> Result<VerifiedReceipt, ClientError> {
        let checkpoint = self.proof_checkpoint(
            verify_proto_checkpoint(&self.key, required("checkpoint", proof.checkpoint)?)?,
            witnessed,
        )?;
        let size = checkpoint.checkpoint.size.0;
        if let Some(asked) = tree_size {
            check_equal("tree_size", asked.0, proof.tree_size)?;
        }
        check_equal("checkpoint.size", proof.tree_size, size)?;
        let receipt = Receipt {
            index: LeafIndex(proof.index),
            leaf_hash: hash_from_bytes("leaf_hash", &proof.leaf_hash)?,
            checkpoint: checkpoint.note.clone(),
            inclusion_proof: hashes_from_bytes("hashes", &proof.hashes)?,
            duplicate: false,
        };
        verify_receipt_against(checkpoint, &receipt, None)
    }

    /// Proves that every `(index, leaf hash)` of `leaves` (strictly increasing indices) is in the tree of
    /// `tree_size` (`None`: the latest checkpoint, or the newest witnessed one under a witness policy) with ONE
    /// multiproof, verified against the signed checkpoint the server returns for that size.
    ///
    /// Indices that cannot form a multiproof (none, unsorted, repeated) are refused before asking
    /// ([`ClientError::InvalidProofRequest`]); a proof that does not verify is [`ClientError::MultiProofInvalid`].
    pub async fn multi_inclusion(
        &self,
        leaves: &[(LeafIndex, Hash)],
        tree_size: Option<TreeSize>,
    ) -> Result<VerifiedMultiProof, ClientError> {
        let indices: Vec<LeafIndex> = leaves.iter().map(|(i, _)| *i).collect();
        // Any tree size holding the last index: only the index set's own shape is checked here.
        let last = indices.last().map_or(0, |i| i.0.saturating_add(1));
        multi_inclusion_proof_len(&indices, TreeSize(last))
            .map_err(ClientError::InvalidProofRequest)?;
        let (witnessed, tree_size) = self.policy_tree(tree_size).await?;
        let request = v1::GetMultiProofRequest {
            indices: indices.iter().map(|i| i.0).collect(),
            tree_size: tree_size.map_or(0, |s| s.0),
        };
        let proof = self.rpc().get_multi_proof(request).await?.into_inner();
        let checkpoint = self.proof_checkpoint(
            verify_proto_checkpoint(&self.key, required("checkpoint", proof.checkpoint)?)?,
            witnessed,
        )?;
        if let Some(asked) = tree_size {
            check_equal("tree_size", asked.0, proof.tree_size)?;
        }
        check_equal(
            "checkpoint.size",
            proof.tree_size,
            checkpoint.checkpoint.size.0,
        )?;
        let hashes = hashes_from_bytes("hashes", &proof.hashes)?;
        verify_multi_inclusion(
            checkpoint.checkpoint.size,
            leaves,
            &hashes,
            &checkpoint.checkpoint.root,
        )
        .map_err(ClientError::MultiProofInvalid)?;
        Ok(VerifiedMultiProof {
            checkpoint,
            proof: hashes,
        })
    }

    /// Fetches and verifies the proof that the tree of `new_size` (`None`: the latest) extends `old`, a checkpoint
    /// of this log (its note is verified again here).
    ///
    /// If the proof fails and the log now signs another root for `old`'s size, the error is the
    /// [`ClientError::Fork`] that proves, rather than a bad proof.
    pub async fn consistency(
        &self,
        old: &SignedCheckpoint,
        new_size: Option<TreeSize>,
    ) -> Result<VerifiedConsistency, ClientError> {
        let old = reverify(&self.key, old)?;
        let rpc = self.rpc();
        let (witnessed, new_size) = self.policy_tree(new_size).await?;
        let (new, proof) = get_consistency(&rpc, &self.key, old.checkpoint.size, new_size).await?;
        let new = self.proof_checkpoint(new, witnessed)?;
        if let Err(e) = check_extends(tree_of(&old.checkpoint), tree_of(&new.checkpoint), &proof) {
            return Err(explain(&rpc, &self.key, tree_of(&old.checkpoint), e).await);
        }
        Ok(VerifiedConsistency { old, new, proof })
    }

    /// [`consistency`](Self::consistency) for a caller who knows only the old size: the log's checkpoint of
    /// exactly `old_size` is fetched and its signature verified, then the proof from it.
    ///
    /// This shows that the log's own two checkpoints agree; only a checkpoint the caller already trusts (kept in
    /// a [`TrustedLog`]) shows that the log has not changed its story since.
    pub async fn consistency_from_size(
        &self,
        old_size: TreeSize,
        new_size: Option<TreeSize>,
    ) -> Result<VerifiedConsistency, ClientError> {
        // The old checkpoint is only the reference point: the witness policy applies to the new one.
        let old = checkpoint_at(&self.rpc(), &self.key, old_size).await?;
        self.consistency(&old, new_size).await
    }

    /// Downloads the entries `[frontier.size, checkpoint.size)` and checks that, appended to `frontier`, they
    /// rebuild `checkpoint`'s root (RFC 9162 §2.1.1); returns the extended frontier.
    ///
    /// This is [`verify_entries`](crate::verify_entries) for a whole log: pages are hashed as they arrive, so
    /// memory stays `O(page + log n)`. A checkpoint smaller than the frontier is
    /// [`ClientError::CheckpointOlderThanTrusted`].
    pub async fn audit_entries(
        &self,
        frontier: &CompactRange,
        checkpoint: &Checkpoint,
    ) -> Result<CompactRange, ClientError> {
        let (start, end) = (frontier.size(), checkpoint.size);
        if end < start {
            return Err(ClientError::CheckpointOlderThanTrusted {
                trusted_size: start,
                new_size: end,
            });
        }
        let mut tree = frontier.clone();
        let mut pages = self.entries(LeafIndex(start.0), LeafIndex(end.0)).await?;
        while let Some((_, page)) = pages.next_page().await? {
            // `next_page` keeps the total within `end`, so the tree cannot overflow; mapped all the same.
            tree.extend(page.iter().map(|e| leaf_hash(e)), |_, _| {})
                .map_err(|_| ClientError::EntryCountMismatch {
                    expected: end.0 - start.0,
                    got: (end.0 - start.0).saturating_add(1),
                })?;
        }
        check_root(&tree, checkpoint)?;
        Ok(tree)
    }

    /// Entries `[start, end)`, read page by page. The pages are checked to be contiguous and complete; the
    /// entries themselves are authenticated only by [`verify_entries`](crate::verify_entries) or inclusion proofs.
    pub async fn entries(
        &self,
        start: LeafIndex,
        end: LeafIndex,
    ) -> Result<EntryPages, ClientError> {
        let request = v1::GetEntriesRequest {
            start: start.0,
            end: end.0,
        };
        let stream = self.rpc().get_entries(request).await?.into_inner();
        Ok(EntryPages {
            stream,
            next: start.0,
            end: end.0,
        })
    }

    /// All entries `[start, end)` in memory; see [`entries`](Self::entries).
    pub async fn entries_vec(
        &self,
        start: LeafIndex,
        end: LeafIndex,
    ) -> Result<Vec<Vec<u8>>, ClientError> {
        let mut pages = self.entries(start, end).await?;
        let mut all = Vec::new();
        while let Some((_, entries)) = pages.next_page().await? {
            all.extend(entries);
        }
        Ok(all)
    }
}

/// The checkpoints streamed by [`LogClient::watch_checkpoints`].
///
/// Each one is verified with the log key, and the stream as a whole must move forward: a smaller tree than the
/// previous checkpoint's is [`ClientError::CheckpointOlderThanTrusted`], the same size with another root is
/// [`ClientError::Fork`]. Consistency between successive checkpoints needs a proof; pass each one to
/// [`LogClient::advance`] for that.
#[derive(Debug)]
pub struct CheckpointWatch {
    stream: tonic::Streaming<v1::SignedCheckpoint>,
    key: VerifierKey,
    last: Option<SignedCheckpoint>,
}

impl CheckpointWatch {
    /// The next checkpoint, verified; `None` when the server ends the stream.
    pub async fn next(&mut self) -> Result<Option<SignedCheckpoint>, ClientError> {
        let Some(wire) = self.stream.message().await? else {
            return Ok(None);
        };
        let new = verify_proto_checkpoint(&self.key, wire)?;
        if let Some(last) = &self.last {
            check_forward(tree_of(&last.checkpoint), tree_of(&new.checkpoint), &[]).or_else(
                |e| match e {
                    // A larger tree needs a proof this stream does not carry; only a rollback or a fork is
                    // decided here.
                    ClientError::ConsistencyProofInvalid(_) => Ok(()),
                    other => Err(other),
                },
            )?;
        }
        self.last = Some(new.clone());
        Ok(Some(new))
    }
}

/// Pages of entries streamed by [`LogClient::entries`].
#[derive(Debug)]
pub struct EntryPages {
    stream: tonic::Streaming<v1::EntriesPage>,
    next: u64,
    end: u64,
}

impl EntryPages {
    /// The next page and the index of its first entry; `None` once the whole range has arrived. A page that
    /// skips or repeats entries, overruns the range, or a stream that ends early is an error.
    pub async fn next_page(&mut self) -> Result<Option<(LeafIndex, Vec<Vec<u8>>)>, ClientError> {
        match self.stream.message().await? {
            Some(page) => {
                check_equal("page.start", self.next, page.start)?;
                let after = self
                    .next
                    .checked_add(page.entries.len() as u64)
                    .filter(|after| *after <= self.end)
                    .ok_or(ClientError::UnexpectedResponse {
                        field: "page.entries.len",
                        expected: self.end.saturating_sub(self.next),
                        got: page.entries.len() as u64,
                    })?;
                self.next = after;
                Ok(Some((LeafIndex(page.start), page.entries)))
            }
            None => {
                check_equal("end", self.end, self.next)?;
                Ok(None)
            }
        }
    }
}

/// A multiproof that passed [`LogClient::multi_inclusion`], with the checkpoint it proves against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedMultiProof {
    /// The verified checkpoint whose tree holds the leaves.
    pub checkpoint: SignedCheckpoint,
    /// The multiproof's hashes, in `tlog_core`'s order.
    pub proof: Vec<Hash>,
}

fn check_equal(field: &'static str, expected: u64, got: u64) -> Result<(), ClientError> {
    if expected == got {
        Ok(())
    } else {
        Err(ClientError::UnexpectedResponse {
            field,
            expected,
            got,
        })
    }
}

/// `GetConsistencyProof(old_size, new_size)`: the verified checkpoint of the new size and the proof hashes.
async fn get_consistency(
    rpc: &Rpc,
    key: &VerifierKey,
    old_size: TreeSize,
    new_size: Option<TreeSize>,
) -> Result<(SignedCheckpoint, Vec<Hash>), ClientError> {
    let request = v1::GetConsistencyProofRequest {
        old_size: old_size.0,
        new_size: new_size.map_or(0, |s| s.0),
    };
    let proof = rpc
        .clone()
        .get_consistency_proof(request)
        .await?
        .into_inner();
    let checkpoint = verify_proto_checkpoint(key, required("checkpoint", proof.checkpoint)?)?;
    check_equal("old_size", old_size.0, proof.old_size)?;
    if let Some(asked) = new_size {
        check_equal("new_size", asked.0, proof.new_size)?;
    }
    check_equal(
        "checkpoint.size",
        proof.new_size,
        checkpoint.checkpoint.size.0,
    )?;
    Ok((checkpoint, hashes_from_bytes("hashes", &proof.hashes)?))
}

/// `GetCheckpoint(size)`: the verified checkpoint of exactly `size`.
async fn checkpoint_at(
    rpc: &Rpc,
    key: &VerifierKey,
    size: TreeSize,
) -> Result<SignedCheckpoint, ClientError> {
    if size.0 == 0 {
        return Err(ClientError::InvalidRequest(
            "tree size 0 cannot be fetched: the empty tree has no published checkpoint",
        ));
    }
    let request = v1::GetCheckpointRequest {
        min_size: 0,
        size: size.0,
        witnessed: false,
    };
    let wire = rpc.clone().get_checkpoint(request).await?.into_inner();
    let checkpoint = verify_proto_checkpoint(key, wire)?;
    check_equal("size", size.0, checkpoint.checkpoint.size.0)?;
    Ok(checkpoint)
}

/// Turns a failed consistency check from the tree `old` into the [`ClientError::Fork`] it may hide: if the log
/// now signs another root for `old`'s size, that pair of signed checkpoints is proof of a fork, which says more
/// than "bad proof". Anything else (including failure to fetch the checkpoint) keeps the original error.
async fn explain(
    rpc: &Rpc,
    key: &VerifierKey,
    (old_size, old_root): (TreeSize, Hash),
    error: ClientError,
) -> ClientError {
    if !matches!(error, ClientError::ConsistencyProofInvalid(_)) || old_size.0 == 0 {
        return error;
    }
    match checkpoint_at(rpc, key, old_size).await {
        Ok(now) if now.checkpoint.root != old_root => ClientError::Fork {
            size: old_size,
            trusted_root: old_root,
            new_root: now.checkpoint.root,
        },
        _ => error,
    }
}

/// Fetches the consistency proof from `trusted` to `new` and advances.
async fn advance(
    rpc: &Rpc,
    key: &VerifierKey,
    trusted: &mut TrustedLog,
    new: SignedCheckpoint,
) -> Result<(), ClientError> {
    if !trusted.needs_proof(new.checkpoint.size) {
        return trusted.advance(new, &[]);
    }
    let (old_size, new_size) = (trusted.size(), new.checkpoint.size);
    let (served, proof) = get_consistency(rpc, key, old_size, Some(new_size)).await?;
    // The server's own checkpoint for the size must be the one being trusted: two roots for one size is a fork.
    check_extends(tree_of(&new.checkpoint), tree_of(&served.checkpoint), &[])?;
    let old = (old_size, trusted.root());
    match trusted.advance(new, &proof) {
        Err(e) => Err(explain(rpc, key, old, e).await),
        Ok(()) => Ok(()),
    }
}
