//! `LogClient` against an in-process fake log server that can be told to misbehave.

use std::sync::{Arc, Mutex};

use tlog_core::{Hash, LeafIndex, TreeSize, VerifyError, leaf_hash};
use tlog_proto::v1::{self, get_inclusion_proof_request::Leaf};
use tlog_proto::{Log, LogServer};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};

use super::*;
use crate::{BearerToken, ClientError, LogClient, TrustedLog, verify_entries};

const TOKEN: &str = "s3cret-token";

/// Ways the fake server lies.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Lie {
    None,
    /// Serves a history whose entry 0 was replaced, signed with the real key.
    Fork,
    /// Reports a wrong `size` beside the signed note.
    ConvenienceSize,
    /// Answers inclusion requests for the next leaf.
    OtherIndex,
    /// Drops the last entry of a range.
    ShortEntries,
    /// Echoes the wrong `client_tag` on submission streams.
    WrongTag,
    /// Watch streams go from the latest checkpoint back to the first.
    Shrink,
    /// Consistency proofs have their first hash flipped.
    BadProof,
    /// The latest tree's checkpoint carries a root that is not the tree's, validly signed; proofs are honest.
    WrongRoot,
}

struct State {
    entries: Vec<Vec<u8>>,
    clock: u64,
    lie: Lie,
}

struct FakeLog(Mutex<State>);

impl FakeLog {
    /// The request's message and the log's state, locked: how every handler starts.
    fn open<T>(&self, req: Request<T>) -> (T, std::sync::MutexGuard<'_, State>) {
        (req.into_inner(), self.0.lock().unwrap())
    }
}

fn wire(sc: &tlog_checkpoint::SignedCheckpoint) -> v1::SignedCheckpoint {
    v1::SignedCheckpoint {
        note: sc.note.clone().into_bytes(),
        size: sc.checkpoint.size.0,
        root_hash: sc.checkpoint.root.0.to_vec(),
        timestamp_unix: sc.timestamp,
        archived_size: 0,
    }
}

fn bytes(hs: &[Hash]) -> Vec<Vec<u8>> {
    hs.iter().map(|h| h.0.to_vec()).collect()
}

impl State {
    /// The leaves served, after any lie about history.
    fn leaves(&self) -> Vec<Hash> {
        let mut l = leaves(&self.entries);
        if self.lie == Lie::Fork
            && let Some(first) = l.first_mut()
        {
            *first = leaf_hash(b"forged");
        }
        l
    }

    fn checkpoint(&mut self, size: usize) -> v1::SignedCheckpoint {
        self.clock += 1;
        let mut signed_root = root(&self.leaves()[..size]);
        if self.lie == Lie::WrongRoot && size == self.entries.len() {
            signed_root.0[0] ^= 1;
        }
        let mut cp = wire(&sign(&signer(), size as u64, signed_root, self.clock));
        if self.lie == Lie::ConvenienceSize {
            cp.size += 1;
        }
        cp
    }

    fn append(&mut self, entry: Vec<u8>) -> (usize, bool) {
        match self.entries.iter().position(|e| *e == entry) {
            Some(i) => (i, true),
            None => {
                self.entries.push(entry);
                (self.entries.len() - 1, false)
            }
        }
    }

    fn receipt(&mut self, index: usize, duplicate: bool) -> v1::Receipt {
        let size = self.entries.len();
        let l = self.leaves();
        v1::Receipt {
            index: index as u64,
            leaf_hash: l[index].0.to_vec(),
            checkpoint: Some(self.checkpoint(size)),
            inclusion_proof: bytes(&inclusion_proof(index, &l[..size])),
            duplicate,
        }
    }

    fn size_or_latest(&self, size: u64) -> Result<usize, Status> {
        match size as usize {
            0 => Ok(self.entries.len()),
            s if s <= self.entries.len() => Ok(s),
            _ => Err(Status::out_of_range("tree size not published")),
        }
    }
}

fn authorize<T>(req: &Request<T>) -> Result<(), Status> {
    let expected = format!("Bearer {TOKEN}");
    match req
        .metadata()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
    {
        Some(v) if v == expected => Ok(()),
        _ => Err(Status::unauthenticated("bad token")),
    }
}

type Stream<T> = tokio_stream::Iter<std::vec::IntoIter<Result<T, Status>>>;

/// A server-streaming answer of `items`, in order.
fn streamed<T>(items: Vec<Result<T, Status>>) -> Result<Response<Stream<T>>, Status> {
    Ok(Response::new(tokio_stream::iter(items)))
}

#[tonic::async_trait]
impl Log for FakeLog {
    async fn submit(
        &self,
        req: Request<v1::SubmitRequest>,
    ) -> Result<Response<v1::Receipt>, Status> {
        authorize(&req)?;
        let mut s = self.0.lock().unwrap();
        let (index, duplicate) = s.append(req.into_inner().entry);
        Ok(Response::new(s.receipt(index, duplicate)))
    }

    async fn submit_batch(
        &self,
        req: Request<v1::SubmitBatchRequest>,
    ) -> Result<Response<v1::SubmitBatchResponse>, Status> {
        authorize(&req)?;
        let mut s = self.0.lock().unwrap();
        let appended: Vec<_> = req
            .into_inner()
            .entries
            .into_iter()
            .map(|e| s.append(e))
            .collect();
        let receipts = appended.into_iter().map(|(i, d)| s.receipt(i, d)).collect();
        // Like a server older than `shared_checkpoint` and `multiproof`: every receipt carries the checkpoint and its
        // inclusion proof.
        Ok(Response::new(v1::SubmitBatchResponse {
            receipts,
            client_tag: 0,
            checkpoint: None,
            multiproof: None,
        }))
    }

    type SubmitStreamStream = Stream<v1::SubmitBatchResponse>;

    /// Reads the whole request stream, then answers it: enough to test the client's checks, if not pipelining.
    async fn submit_stream(
        &self,
        req: Request<tonic::Streaming<v1::SubmitBatchRequest>>,
    ) -> Result<Response<Self::SubmitStreamStream>, Status> {
        authorize(&req)?;
        let mut incoming = req.into_inner();
        let mut responses = Vec::new();
        while let Some(batch) = incoming.message().await? {
            let mut s = self.0.lock().unwrap();
            let appended: Vec<_> = batch.entries.into_iter().map(|e| s.append(e)).collect();
            let receipts = appended.into_iter().map(|(i, d)| s.receipt(i, d)).collect();
            let client_tag = batch.client_tag + u64::from(s.lie == Lie::WrongTag);
            responses.push(Ok(v1::SubmitBatchResponse {
                receipts,
                client_tag,
                checkpoint: None,
                multiproof: None,
            }));
        }
        streamed(responses)
    }

    async fn get_checkpoint(
        &self,
        req: Request<v1::GetCheckpointRequest>,
    ) -> Result<Response<v1::SignedCheckpoint>, Status> {
        let (req, mut s) = self.open(req);
        if req.size != 0 {
            if req.size > s.entries.len() as u64 {
                return Err(Status::not_found("size never published"));
            }
            return Ok(Response::new(s.checkpoint(req.size as usize)));
        }
        if req.min_size > s.entries.len() as u64 {
            return Err(Status::deadline_exceeded("tree too small"));
        }
        let size = s.entries.len();
        Ok(Response::new(s.checkpoint(size)))
    }

    type WatchCheckpointsStream = Stream<v1::SignedCheckpoint>;

    /// Replays one checkpoint per size, as if the log had been watched since it was empty.
    async fn watch_checkpoints(
        &self,
        _req: Request<v1::WatchCheckpointsRequest>,
    ) -> Result<Response<Self::WatchCheckpointsStream>, Status> {
        let mut s = self.0.lock().unwrap();
        let mut sizes: Vec<usize> = (1..=s.entries.len()).collect();
        if s.lie == Lie::Shrink {
            sizes.reverse();
        }
        let checkpoints: Vec<_> = sizes.into_iter().map(|n| Ok(s.checkpoint(n))).collect();
        streamed(checkpoints)
    }

    async fn get_inclusion_proof(
        &self,
        req: Request<v1::GetInclusionProofRequest>,
    ) -> Result<Response<v1::InclusionProof>, Status> {
        let (req, mut s) = self.open(req);
        let size = s.size_or_latest(req.tree_size)?;
        let l = s.leaves();
        let mut index = match req.leaf {
            Some(Leaf::Index(i)) if (i as usize) < size => i as usize,
            Some(Leaf::LeafHash(h)) => l[..size]
                .iter()
                .position(|x| x.0.as_slice() == h.as_slice())
                .ok_or_else(|| Status::not_found("no such leaf"))?,
            _ => return Err(Status::invalid_argument("bad leaf")),
        };
        if s.lie == Lie::OtherIndex {
            index = (index + 1) % size;
        }
        Ok(Response::new(v1::InclusionProof {
            index: index as u64,
            tree_size: size as u64,
            leaf_hash: l[index].0.to_vec(),
            hashes: bytes(&inclusion_proof(index, &l[..size])),
            checkpoint: Some(s.checkpoint(size)),
        }))
    }

    async fn get_consistency_proof(
        &self,
        req: Request<v1::GetConsistencyProofRequest>,
    ) -> Result<Response<v1::ConsistencyProof>, Status> {
        let (req, mut s) = self.open(req);
        let new = s.size_or_latest(req.new_size)?;
        let old = req.old_size as usize;
        if old == 0 || old > new {
            return Err(Status::invalid_argument("bad sizes"));
        }
        let l = s.leaves();
        let mut hashes = consistency_proof(old, &l[..new]);
        if let (Lie::BadProof, Some(first)) = (s.lie, hashes.first_mut()) {
            first.0[0] ^= 1;
        }
        Ok(Response::new(v1::ConsistencyProof {
            old_size: old as u64,
            new_size: new as u64,
            hashes: bytes(&hashes),
            checkpoint: Some(s.checkpoint(new)),
        }))
    }

    type GetEntriesStream = Stream<v1::EntriesPage>;

    async fn submit_private(
        &self,
        _req: Request<v1::SubmitPrivateRequest>,
    ) -> Result<Response<v1::SubmitBatchResponse>, Status> {
        Err(Status::unimplemented("no private payloads"))
    }

    async fn get_private_payload(
        &self,
        _req: Request<v1::GetPrivatePayloadRequest>,
    ) -> Result<Response<v1::PrivatePayloadOpening>, Status> {
        Err(Status::unimplemented("no private payloads"))
    }

    async fn erase_subject(
        &self,
        _req: Request<v1::EraseSubjectRequest>,
    ) -> Result<Response<v1::EraseSubjectResponse>, Status> {
        Err(Status::unimplemented("no private payloads"))
    }

    async fn get_entries(
        &self,
        req: Request<v1::GetEntriesRequest>,
    ) -> Result<Response<Self::GetEntriesStream>, Status> {
        let (req, s) = self.open(req);
        let (start, mut end) = (req.start as usize, req.end as usize);
        if start > end || end > s.entries.len() {
            return Err(Status::out_of_range("bad range"));
        }
        if s.lie == Lie::ShortEntries {
            end -= 1;
        }
        let pages = s.entries[start..end]
            .chunks(3)
            .enumerate()
            .map(|(i, chunk)| {
                Ok(v1::EntriesPage {
                    start: (start + 3 * i) as u64,
                    entries: chunk.to_vec(),
                })
            })
            .collect::<Vec<_>>();
        streamed(pages)
    }

    async fn get_multi_proof(
        &self,
        _req: Request<v1::GetMultiProofRequest>,
    ) -> Result<Response<v1::MultiProof>, Status> {
        Err(Status::unimplemented("the fake log serves no multiproofs"))
    }
}

struct Fixture {
    client: LogClient,
    log: Arc<FakeLog>,
    endpoint: String,
}

impl Fixture {
    async fn start(initial: u64) -> Fixture {
        let log = Arc::new(FakeLog(Mutex::new(State {
            entries: entries(initial),
            clock: 0,
            lie: Lie::None,
        })));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tonic::transport::Server::builder()
            .add_service(LogServer::from_arc(log.clone()))
            .serve_with_incoming(TcpListenerStream::new(listener));
        tokio::spawn(server);
        let endpoint = format!("http://{addr}");
        let client = LogClient::connect(&endpoint, verifier())
            .await
            .unwrap()
            .with_token(BearerToken::new(TOKEN).unwrap());
        Fixture {
            client,
            log,
            endpoint,
        }
    }

    fn lie(&self, lie: Lie) {
        self.log.0.lock().unwrap().lie = lie;
    }

    /// A client that keeps its own trusted state, and the checkpoint it trusts first (the log's latest, honest).
    async fn trusting_client(&self) -> (LogClient, tlog_checkpoint::SignedCheckpoint) {
        let mut client = self
            .client
            .clone()
            .with_trusted(TrustedLog::new(verifier()))
            .unwrap();
        let honest = client.checkpoint().await.unwrap();
        (client, honest)
    }
}

#[tokio::test]
async fn tls_connections_check_the_server_certificate() {
    let log = Arc::new(FakeLog(Mutex::new(State {
        entries: entries(3),
        clock: 0,
        lie: Lie::None,
    })));
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/tls/");
    let read = |name: &str| std::fs::read(format!("{dir}{name}")).unwrap();
    let identity = tonic::transport::Identity::from_pem(read("server.pem"), read("server.key"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tonic::transport::Server::builder()
        .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
        .unwrap()
        .add_service(LogServer::from_arc(log))
        .serve_with_incoming(TcpListenerStream::new(listener));
    tokio::spawn(server);

    let ca = read("ca.pem");
    for host in ["localhost", "127.0.0.1"] {
        let endpoint = format!("https://{host}:{port}");
        let mut client = LogClient::connect_tls(&endpoint, verifier(), &ca)
            .await
            .unwrap();
        assert_eq!(
            client.checkpoint().await.unwrap().checkpoint.size,
            TreeSize(3)
        );
    }
    // A CA that did not sign the server's certificate is refused.
    let wrong_ca = read("server.pem");
    let endpoint = format!("https://localhost:{port}");
    assert!(matches!(
        LogClient::connect_tls(&endpoint, verifier(), &wrong_ca).await,
        Err(ClientError::Transport(_))
    ));
}

#[tokio::test]
async fn submit_verifies_receipts() {
    let f = Fixture::start(5).await;
    let r = f.client.submit(b"hello").await.unwrap();
    assert_eq!((r.index(), r.duplicate()), (LeafIndex(5), false));
    assert_eq!(r.checkpoint().checkpoint.size, TreeSize(6));
    let again = f.client.submit(b"hello").await.unwrap();
    assert_eq!((again.index(), again.duplicate()), (LeafIndex(5), true));
    // The receipt stands alone, offline.
    let json = serde_json::to_string(r.receipt()).unwrap();
    let back: Receipt = serde_json::from_str(&json).unwrap();
    crate::verify_receipt(&verifier(), &back, Some(b"hello")).unwrap();

    let batch: Vec<Vec<u8>> = (0..7).map(|i| format!("batch {i}").into_bytes()).collect();
    let rs = f.client.submit_batch(&batch).await.unwrap();
    assert_eq!(rs.len(), 7);
    for (i, r) in rs.iter().enumerate() {
        assert_eq!(r.index(), LeafIndex(6 + i as u64));
        assert_eq!(r.leaf_hash(), leaf_hash(&batch[i]));
    }
}

#[tokio::test]
async fn writes_need_the_token() {
    let f = Fixture::start(1).await;
    let mut anonymous = LogClient::connect(&f.endpoint, verifier()).await.unwrap();
    match anonymous.submit(b"x").await {
        Err(ClientError::Rpc(status)) => assert_eq!(status.code(), tonic::Code::Unauthenticated),
        other => panic!("expected Rpc(Unauthenticated), got {other:?}"),
    }
    // Reads are public.
    anonymous.checkpoint().await.unwrap();
    assert!(matches!(
        BearerToken::new("bad\ntoken"),
        Err(ClientError::InvalidToken)
    ));
    assert_eq!(
        format!("{:?}", BearerToken::new(TOKEN).unwrap()),
        "BearerToken(..)"
    );
    assert!(matches!(
        LogClient::connect("not a uri", verifier()).await,
        Err(ClientError::InvalidEndpoint(_))
    ));
}

#[tokio::test]
async fn checkpoint_advances_the_trusted_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trust.json");
    let f = Fixture::start(3).await;
    let mut client = f
        .client
        .clone()
        .with_trusted(TrustedLog::load_or_new(&path, verifier()).unwrap())
        .unwrap();
    // First use.
    let first = client.checkpoint().await.unwrap();
    assert_eq!(client.trusted().and_then(|t| t.latest()), Some(&first));
    for round in 0..5u64 {
        let batch: Vec<Vec<u8>> = (0..=round)
            .map(|i| format!("r{round} e{i}").into_bytes())
            .collect();
        client.submit_batch(&batch).await.unwrap();
        let cp = client.checkpoint().await.unwrap();
        assert_eq!(client.trusted().map(|t| t.size()), Some(cp.checkpoint.size));
    }
    assert_eq!(client.trusted().map(|t| t.size()), Some(TreeSize(3 + 15)));
    client.trusted().unwrap().save(&path).unwrap();

    // A restarted client continues from the saved state.
    let reloaded = TrustedLog::load(&path, verifier()).unwrap();
    let mut client = f.client.clone().with_trusted(reloaded).unwrap();
    client.submit(b"after restart").await.unwrap();
    let cp = client.checkpoint_at_least(TreeSize(19)).await.unwrap();
    assert_eq!(cp.checkpoint.size, TreeSize(19));
    assert!(matches!(
        client.checkpoint_at_least(TreeSize(100)).await,
        Err(ClientError::Rpc(_))
    ));

    // Another log's state cannot be attached.
    let foreign = TrustedLog::new(other_signer().verifier());
    assert!(matches!(
        f.client.clone().with_trusted(foreign),
        Err(ClientError::KeyMismatch { .. })
    ));
}

#[tokio::test]
async fn fork_is_detected() {
    let f = Fixture::start(8).await;
    let (mut client, honest) = f.trusting_client().await;

    // Same size, other history, validly signed.
    f.lie(Lie::Fork);
    match client.checkpoint().await {
        Err(ClientError::Fork {
            size,
            trusted_root,
            new_root,
        }) => {
            assert_eq!(size, TreeSize(8));
            assert_eq!(trusted_root, honest.checkpoint.root);
            assert_ne!(new_root, trusted_root);
        }
        other => panic!("expected Fork, got {other:?}"),
    }
    // The forked log grows: its consistency proof cannot reach the trusted root, and the root it now signs for
    // the trusted size turns the bad proof into proof of the fork.
    f.client.submit(b"grow").await.unwrap();
    let forged_root = f.client.checkpoint_at(TreeSize(8)).await.unwrap();
    for result in [
        client.checkpoint().await.map(drop),
        client.consistency(&honest, None).await.map(drop),
    ] {
        match result {
            Err(ClientError::Fork {
                size,
                trusted_root,
                new_root,
            }) => {
                assert_eq!(size, TreeSize(8));
                assert_eq!(trusted_root, honest.checkpoint.root);
                assert_eq!(new_root, forged_root.checkpoint.root);
            }
            other => panic!("expected Fork, got {other:?}"),
        }
    }
    assert_eq!(client.trusted().and_then(|t| t.latest()), Some(&honest));

    // A bad proof while the log still signs the trusted root for its size stays a bad proof.
    f.lie(Lie::BadProof);
    assert!(matches!(
        client.consistency(&honest, None).await,
        Err(ClientError::ConsistencyProofInvalid(_))
    ));
}

#[tokio::test]
async fn a_signed_checkpoint_with_the_wrong_root_is_caught() {
    let f = Fixture::start(6).await;
    let (mut client, honest) = f.trusting_client().await;
    f.client.submit(b"seventh").await.unwrap();
    let true_root = root(&leaves(&f.log.0.lock().unwrap().entries));

    f.lie(Lie::WrongRoot);
    // The lie is signed with the log's key: the checkpoint alone verifies.
    let lying = f.client.checkpoint_at(TreeSize(7)).await.unwrap();
    assert_ne!(lying.checkpoint.root, true_root);
    let is_root_mismatch = |e: &ClientError| {
        matches!(
            e,
            ClientError::InclusionProofInvalid(VerifyError::RootMismatch { computed, expected })
                if *computed == true_root && *expected == lying.checkpoint.root
        )
    };
    // Inclusion proofs, by index and by hash, lead to the true root, not the signed one.
    let by_index = f
        .client
        .inclusion_by_index(LeafIndex(2), None)
        .await
        .unwrap_err();
    assert!(is_root_mismatch(&by_index), "{by_index:?}");
    let by_entry = f
        .client
        .inclusion_of_entry(b"seventh", None)
        .await
        .unwrap_err();
    assert!(is_root_mismatch(&by_entry), "{by_entry:?}");
    // Consistency from the trusted tree leads to the true root too; the trusted state stays.
    match f.client.consistency(&honest, None).await {
        Err(ClientError::ConsistencyProofInvalid(VerifyError::SecondRootMismatch {
            computed,
            expected,
        })) => assert_eq!((computed, expected), (true_root, lying.checkpoint.root)),
        other => panic!("expected SecondRootMismatch, got {other:?}"),
    }
    assert!(matches!(
        client.checkpoint().await,
        Err(ClientError::ConsistencyProofInvalid(
            VerifyError::SecondRootMismatch { .. }
        ))
    ));
    assert_eq!(client.trusted().and_then(|t| t.latest()), Some(&honest));
    // A submission's receipt names the lying checkpoint of the tree it grew: refused.
    match f.client.submit(b"eighth").await {
        Err(ClientError::InclusionProofInvalid(VerifyError::RootMismatch { .. })) => {}
        other => panic!("expected InclusionProofInvalid, got {other:?}"),
    }

    // Told the truth again, the same client accepts the same answers.
    f.lie(Lie::None);
    f.client
        .inclusion_by_index(LeafIndex(2), None)
        .await
        .unwrap();
    client.checkpoint().await.unwrap();
}

#[tokio::test]
async fn checkpoints_by_exact_size() {
    let f = Fixture::start(10).await;
    let l = leaves(&entries(10));
    for size in [1u64, 4, 10] {
        let cp = f.client.checkpoint_at(TreeSize(size)).await.unwrap();
        assert_eq!(cp.checkpoint.size, TreeSize(size));
        assert_eq!(cp.checkpoint.root, root(&l[..size as usize]));
    }
    assert!(matches!(
        f.client.checkpoint_at(TreeSize(0)).await,
        Err(ClientError::InvalidRequest(_))
    ));
    match f.client.checkpoint_at(TreeSize(11)).await {
        Err(ClientError::Rpc(status)) => assert_eq!(status.code(), tonic::Code::NotFound),
        other => panic!("expected NotFound, got {other:?}"),
    }

    let c = f
        .client
        .consistency_from_size(TreeSize(3), None)
        .await
        .unwrap();
    assert_eq!(
        (c.old.checkpoint.size, c.new.checkpoint.size),
        (TreeSize(3), TreeSize(10))
    );
    assert_eq!(c.proof, consistency_proof(3, &l));
    let c = f
        .client
        .consistency_from_size(TreeSize(4), Some(TreeSize(4)))
        .await
        .unwrap();
    assert!(c.proof.is_empty());
    assert!(matches!(
        f.client.consistency_from_size(TreeSize(0), None).await,
        Err(ClientError::InvalidRequest(_))
    ));
}

#[tokio::test]
async fn submit_stream_returns_receipts_per_batch() {
    let f = Fixture::start(2).await;
    let batches: Vec<Vec<Vec<u8>>> = vec![
        vec![b"s0".to_vec(), b"s1".to_vec()],
        vec![],
        vec![b"s2".to_vec(), b"entry 0".to_vec(), b"s3".to_vec()],
    ];
    let out = f.client.submit_stream(batches.clone()).await.unwrap();
    assert_eq!(out.iter().map(Vec::len).collect::<Vec<_>>(), vec![2, 0, 3]);
    let got: Vec<(u64, bool)> = out
        .iter()
        .flatten()
        .map(|r| (r.index().0, r.duplicate()))
        .collect();
    assert_eq!(
        got,
        vec![(2, false), (3, false), (4, false), (0, true), (5, false)]
    );
    for (r, entry) in out.iter().flatten().zip(batches.iter().flatten()) {
        crate::verify_receipt(&verifier(), r.receipt(), Some(entry)).unwrap();
    }
    assert!(f.client.submit_stream(Vec::new()).await.unwrap().is_empty());

    f.lie(Lie::WrongTag);
    match f.client.submit_stream(vec![vec![b"t".to_vec()]]).await {
        Err(ClientError::UnexpectedResponse {
            field: "client_tag",
            expected: 0,
            got: 1,
        }) => {}
        other => panic!("expected a client_tag mismatch, got {other:?}"),
    }
    f.lie(Lie::ConvenienceSize);
    assert!(matches!(
        f.client.submit_stream(vec![vec![b"u".to_vec()]]).await,
        Err(ClientError::CheckpointFieldMismatch { field: "size" })
    ));
    let anonymous = LogClient::connect(&f.endpoint, verifier()).await.unwrap();
    assert!(matches!(
        anonymous.submit_stream(vec![vec![b"v".to_vec()]]).await,
        Err(ClientError::Rpc(_))
    ));
}

#[tokio::test]
async fn watched_checkpoints_are_verified_and_move_forward() {
    let f = Fixture::start(4).await;
    let l = leaves(&entries(4));
    let mut watch = f.client.watch_checkpoints().await.unwrap();
    let mut sizes = Vec::new();
    while let Some(cp) = watch.next().await.unwrap() {
        assert_eq!(
            cp.checkpoint.root,
            root(&l[..cp.checkpoint.size.0 as usize])
        );
        sizes.push(cp.checkpoint.size.0);
    }
    assert_eq!(sizes, vec![1, 2, 3, 4]);

    f.lie(Lie::Shrink);
    let mut watch = f.client.watch_checkpoints().await.unwrap();
    assert_eq!(
        watch.next().await.unwrap().map(|c| c.checkpoint.size),
        Some(TreeSize(4))
    );
    assert!(matches!(
        watch.next().await,
        Err(ClientError::CheckpointOlderThanTrusted {
            trusted_size: TreeSize(4),
            new_size: TreeSize(3),
        })
    ));
}

#[tokio::test]
async fn audit_entries_rebuilds_the_root() {
    let f = Fixture::start(13).await;
    let mut client = f.client.clone();
    let mid = client.checkpoint_at(TreeSize(6)).await.unwrap();
    let latest = client.checkpoint().await.unwrap();
    let frontier = client
        .audit_entries(&tlog_core::CompactRange::new(), &mid.checkpoint)
        .await
        .unwrap();
    assert_eq!(frontier.size(), TreeSize(6));
    let frontier = client
        .audit_entries(&frontier, &latest.checkpoint)
        .await
        .unwrap();
    assert_eq!(frontier.root(), latest.checkpoint.root);
    assert!(matches!(
        client.audit_entries(&frontier, &mid.checkpoint).await,
        Err(ClientError::CheckpointOlderThanTrusted { .. })
    ));

    // The entries served do not hash to what the (forked) log signs.
    f.lie(Lie::Fork);
    let forged = client.checkpoint().await.unwrap();
    assert!(matches!(
        client
            .audit_entries(&tlog_core::CompactRange::new(), &forged.checkpoint)
            .await,
        Err(ClientError::EntriesRootMismatch { .. })
    ));
    f.lie(Lie::ShortEntries);
    assert!(matches!(
        client
            .audit_entries(&tlog_core::CompactRange::new(), &latest.checkpoint)
            .await,
        Err(ClientError::UnexpectedResponse { field: "end", .. })
    ));
}

#[tokio::test]
async fn inclusion_and_consistency() {
    let f = Fixture::start(20).await;
    let mut client = f.client.clone();
    let old = client.checkpoint().await.unwrap();
    let e = entries(20);
    for i in [0u64, 7, 19] {
        let r = client.inclusion_by_index(LeafIndex(i), None).await.unwrap();
        assert_eq!(
            (r.index(), r.leaf_hash()),
            (LeafIndex(i), leaf_hash(&e[i as usize]))
        );
        let r = client
            .inclusion_by_index(LeafIndex(i), Some(TreeSize(i + 1)))
            .await
            .unwrap();
        assert_eq!(r.checkpoint().checkpoint.size, TreeSize(i + 1));
        let r = client
            .inclusion_of_entry(&e[i as usize], None)
            .await
            .unwrap();
        assert_eq!(r.index(), LeafIndex(i));
    }
    assert!(matches!(
        client.inclusion_by_hash(&leaf_hash(b"absent"), None).await,
        Err(ClientError::Rpc(_))
    ));

    client
        .submit_batch(&[b"a".to_vec(), b"b".to_vec()])
        .await
        .unwrap();
    let c = client.consistency(&old, None).await.unwrap();
    assert_eq!(c.new.checkpoint.size, TreeSize(22));
    assert_eq!(c.old, old);
    let c = client.consistency(&old, Some(TreeSize(21))).await.unwrap();
    assert_eq!(c.new.checkpoint.size, TreeSize(21));
    // The old checkpoint's note is checked, not its fields.
    let mut forged = old.clone();
    forged.checkpoint.root = Hash([0; 32]);
    assert!(matches!(
        client.consistency(&forged, None).await,
        Err(ClientError::CheckpointFieldMismatch { .. })
    ));
}

#[tokio::test]
async fn lies_are_caught() {
    let f = Fixture::start(10).await;
    let mut client = f.client.clone();

    f.lie(Lie::ConvenienceSize);
    assert!(matches!(
        client.checkpoint().await,
        Err(ClientError::CheckpointFieldMismatch { field: "size" })
    ));
    assert!(matches!(
        client.submit(b"x").await,
        Err(ClientError::CheckpointFieldMismatch { field: "size" })
    ));

    f.lie(Lie::OtherIndex);
    match client.inclusion_by_index(LeafIndex(3), None).await {
        Err(ClientError::UnexpectedResponse {
            field: "index",
            expected: 3,
            got: 4,
        }) => {}
        other => panic!("expected UnexpectedResponse, got {other:?}"),
    }
    assert!(matches!(
        client
            .inclusion_by_hash(&leaf_hash(&entries(10)[3]), None)
            .await,
        Err(ClientError::LeafHashMismatch { .. })
    ));

    f.lie(Lie::ShortEntries);
    match client.entries_vec(LeafIndex(2), LeafIndex(9)).await {
        Err(ClientError::UnexpectedResponse {
            field: "end",
            expected: 9,
            got: 8,
        }) => {}
        other => panic!("expected UnexpectedResponse, got {other:?}"),
    }
}

#[tokio::test]
async fn entries_are_paged_and_auditable() {
    let f = Fixture::start(11).await;
    let mut client = f.client.clone();
    let cp = client.checkpoint().await.unwrap();
    let mut pages = client.entries(LeafIndex(0), LeafIndex(11)).await.unwrap();
    let mut starts = Vec::new();
    let mut all = Vec::new();
    while let Some((start, page)) = pages.next_page().await.unwrap() {
        starts.push(start.0);
        all.extend(page);
    }
    assert_eq!(starts, vec![0, 3, 6, 9]);
    assert_eq!(all, entries(11));
    verify_entries(&tlog_core::CompactRange::new(), &all, &cp.checkpoint).unwrap();
    assert_eq!(
        client
            .entries_vec(LeafIndex(4), LeafIndex(7))
            .await
            .unwrap(),
        entries(11)[4..7].to_vec()
    );
    assert!(
        client
            .entries_vec(LeafIndex(5), LeafIndex(5))
            .await
            .unwrap()
            .is_empty()
    );
}
