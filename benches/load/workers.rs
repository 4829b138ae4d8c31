//! The load: closed- and open-loop writers, pipelined streams and proof readers, each tallying what it measured.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tlog_checkpoint::VerifierKey;
use tlog_client::TrustedLog;
use tlog_core::leaf_hash;
use tlog_proto::v1::{self, get_inclusion_proof_request::Leaf};
use tokio::sync::{Semaphore, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use crate::entries::{Rng, make_entry};
use crate::verify::{Checks, Verifier, check_consistency, check_inclusion};
use crate::{OPEN_LOOP_IN_FLIGHT, PREFILL_CLIENT, Rpc};

/// What a worker measured.
#[derive(Default)]
pub(crate) struct Tally {
    /// Per answered request, microseconds.
    pub(crate) lat_us: Vec<u32>,
    /// Entries acknowledged, or proofs answered.
    pub(crate) ops: u64,
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    pub(crate) first_error: Option<String>,
    pub(crate) checks: Checks,
}

impl Tally {
    pub(crate) fn record(&mut self, latency: Duration, ops: usize) {
        self.lat_us
            .push(latency.as_micros().min(u128::from(u32::MAX)) as u32);
        self.ops += ops as u64;
        self.requests += 1;
    }

    pub(crate) fn error(&mut self, what: String) {
        self.errors += 1;
        self.first_error.get_or_insert(what);
    }

    pub(crate) fn merge(&mut self, o: Tally) {
        self.lat_us.extend(o.lat_us);
        self.ops += o.ops;
        self.requests += o.requests;
        self.errors += o.errors;
        if self.first_error.is_none() {
            self.first_error = o.first_error;
        }
        self.checks.merge(o.checks);
    }
}

/// When workers stop: a deadline and/or a shared budget of entries or proofs.
pub(crate) struct Stop {
    pub(crate) deadline: Option<Instant>,
    pub(crate) budget: Option<AtomicU64>,
}

impl Stop {
    pub(crate) fn new(duration: Option<f64>, budget: Option<u64>) -> Stop {
        Stop {
            deadline: duration.map(|s| Instant::now() + Duration::from_secs_f64(s)),
            budget: budget.map(AtomicU64::new),
        }
    }

    /// Claims up to `want` units of work; 0 means stop.
    pub(crate) fn claim(&self, want: usize) -> usize {
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return 0;
        }
        let want = want as u64;
        match &self.budget {
            None => want as usize,
            Some(b) => b
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                    (left > 0).then(|| left - left.min(want))
                })
                .map_or(0, |left| left.min(want) as usize),
        }
    }
}

/// Shared by the workers of one run.
pub(crate) struct Ctx {
    pub(crate) run: u64,
    pub(crate) entry_bytes: usize,
    pub(crate) key: VerifierKey,
    pub(crate) verify_every: u64,
}

impl Ctx {
    pub(crate) fn entry(&self, client: u32, seq: u64) -> Vec<u8> {
        make_entry(self.run, client, seq, self.entry_bytes)
    }

    /// Entries `seq0..seq0 + n` of `client`.
    pub(crate) fn entries(&self, client: u32, seq0: u64, n: usize) -> Vec<Vec<u8>> {
        (0..n as u64)
            .map(|k| self.entry(client, seq0 + k))
            .collect()
    }

    pub(crate) fn verifier(&self) -> Verifier {
        Verifier::new(&self.key, self.verify_every)
    }
}

/// A write worker's receipt bookkeeping.
pub(crate) struct WriteChecks {
    pub(crate) v: Verifier,
    /// The last answer seen and its first entry's sequence number: its last receipt is verified at the end.
    pub(crate) last: Option<(v1::SubmitBatchResponse, u64)>,
    /// Prefill: each receipt's index must be `base + seq`, and each checkpoint seen is kept.
    pub(crate) expect_base: Option<u64>,
    pub(crate) checkpoints: BTreeMap<u64, String>,
}

impl WriteChecks {
    pub(crate) fn new(ctx: &Ctx, expect_base: Option<u64>) -> WriteChecks {
        WriteChecks {
            v: ctx.verifier(),
            last: None,
            expect_base,
            checkpoints: BTreeMap::new(),
        }
    }

    /// Checks the receipts of `n` entries starting at sequence number `seq0` of `client`, given in `answer`
    /// (with the checkpoint once in the answer, or in each receipt, as a server older than `shared_checkpoint`
    /// sends it). An answer with a multiproof (receipts without proofs) is checked whole: in the sample (one answer
    /// in `--verify-every`) and each client's first, every receipt gets its proof from it, as `tlog-client` does,
    /// and is verified.
    pub(crate) fn receipts(
        &mut self,
        ctx: &Ctx,
        client: u32,
        seq0: u64,
        n: usize,
        answer: v1::SubmitBatchResponse,
    ) {
        if answer.receipts.len() != n {
            self.v.checks.fail(format!(
                "{n} entries got {} receipts",
                answer.receipts.len()
            ));
            return;
        }
        let shared = answer.checkpoint.as_ref();
        let first = self.last.is_none();
        let whole = answer.multiproof.is_some() && (first || self.v.sampled());
        let expanded = if whole {
            match tlog_client::batch_receipts(answer.clone()) {
                Ok(receipts) => Some(receipts),
                Err(e) => {
                    self.v.checks.fail(format!("multiproof answer: {e}"));
                    None
                }
            }
        } else {
            None
        };
        let mut previous = None;
        for (k, r) in answer.receipts.iter().enumerate() {
            let seq = seq0 + k as u64;
            if previous.is_some_and(|p| r.index <= p) {
                self.v
                    .checks
                    .fail("receipt indices not increasing within a request".into());
            }
            previous = Some(r.index);
            if let Some(base) = self.expect_base
                && r.index != base + seq
            {
                self.v.checks.fail(format!(
                    "prefill entry {seq} got index {}, expected {}",
                    r.index,
                    base + seq
                ));
            }
            let entry = || ctx.entry(client, seq);
            match &expanded {
                Some(full) => self.v.write_receipt(&full[k], shared, true, entry),
                None if answer.multiproof.is_some() => self.v.write_structure(r, shared),
                None => self.v.write_receipt(r, shared, first && k == 0, entry),
            }
        }
        if self.expect_base.is_some()
            && let Some(cp) = answer
                .receipts
                .first()
                .and_then(|r| r.checkpoint.as_ref())
                .or(shared)
            && let Ok(note) = String::from_utf8(cp.note.clone())
        {
            self.checkpoints.insert(cp.size, note);
        }
        self.last = Some((answer, seq0));
    }

    pub(crate) fn finish(mut self, ctx: &Ctx, client: u32) -> (Checks, BTreeMap<u64, String>) {
        if let Some((answer, seq0)) = self.last.take() {
            let shared = answer.checkpoint.clone();
            let seq = seq0 + answer.receipts.len() as u64 - 1;
            match tlog_client::batch_receipts(answer).map(|mut r| r.pop()) {
                Ok(Some(r)) => self
                    .v
                    .write_receipt(&r, shared.as_ref(), true, || ctx.entry(client, seq)),
                Ok(None) => {}
                Err(e) => self.v.checks.fail(format!("last answer: {e}")),
            }
        }
        (self.v.checks, self.checkpoints)
    }
}

/// One Submit (`unary`: the single entry) or SubmitBatch call, as a batch answer: the receipts in entry order.
async fn submit(
    rpc: &mut Rpc,
    unary: bool,
    mut entries: Vec<Vec<u8>>,
) -> Result<v1::SubmitBatchResponse, tonic::Status> {
    if unary {
        let entry = entries.pop().unwrap_or_default();
        let receipt = rpc.submit(v1::SubmitRequest { entry }).await?;
        Ok(v1::SubmitBatchResponse {
            receipts: vec![receipt.into_inner()],
            ..Default::default()
        })
    } else {
        let request = v1::SubmitBatchRequest {
            entries,
            client_tag: 0,
            shared_checkpoint: true,
            multiproof: true,
        };
        Ok(rpc.submit_batch(request).await?.into_inner())
    }
}

/// Gives up on a worker whose server keeps failing, rather than spinning.
pub(crate) const MAX_CONSECUTIVE_ERRORS: u32 = 100;

/// Closed loop: one Submit or SubmitBatch call at a time.
pub(crate) async fn write_closed(
    mut rpc: Rpc,
    ctx: Arc<Ctx>,
    stop: Arc<Stop>,
    client: u32,
    unary: bool,
    batch: usize,
) -> Tally {
    let mut t = Tally::default();
    let mut checks = WriteChecks::new(&ctx, None);
    let (mut seq, mut consecutive) = (0u64, 0);
    loop {
        let n = stop.claim(if unary { 1 } else { batch });
        if n == 0 {
            break;
        }
        let seq0 = seq;
        seq += n as u64;
        let entries = ctx.entries(client, seq0, n);
        let start = Instant::now();
        let answer = submit(&mut rpc, unary, entries).await;
        let latency = start.elapsed();
        match answer {
            Ok(answer) => {
                consecutive = 0;
                t.record(latency, n);
                checks.receipts(&ctx, client, seq0, n, answer);
            }
            Err(s) => {
                t.error(format!("{}: {}", s.code(), s.message()));
                consecutive += 1;
                if consecutive >= MAX_CONSECUTIVE_ERRORS {
                    break;
                }
            }
        }
    }
    t.checks = checks.finish(&ctx, client).0;
    t
}

/// A request sent on a stream and not yet answered.
pub(crate) struct Sent {
    pub(crate) tag: u64,
    pub(crate) at: Instant,
    pub(crate) seq0: u64,
    pub(crate) n: usize,
}

/// The sending half of a SubmitStream call.
pub(crate) struct StreamSender {
    pub(crate) tx: Option<mpsc::Sender<v1::SubmitBatchRequest>>,
    pub(crate) in_flight: VecDeque<Sent>,
    pub(crate) tag: u64,
    pub(crate) seq: u64,
}

impl StreamSender {
    /// Sends until `window` messages are in flight; closes the request stream when the run is over.
    pub(crate) fn fill(
        &mut self,
        ctx: &Ctx,
        stop: &Stop,
        client: u32,
        batch: usize,
        window: usize,
    ) {
        while self.in_flight.len() < window {
            let Some(tx) = &self.tx else { return };
            let n = stop.claim(batch);
            if n == 0 {
                self.tx = None;
                return;
            }
            let seq0 = self.seq;
            let entries = ctx.entries(client, seq0, n);
            let message = v1::SubmitBatchRequest {
                entries,
                client_tag: self.tag,
                shared_checkpoint: true,
                multiproof: true,
            };
            // The channel holds `window` messages, so this cannot be full while fewer are in flight.
            if tx.try_send(message).is_err() {
                self.tx = None;
                return;
            }
            self.in_flight.push_back(Sent {
                tag: self.tag,
                at: Instant::now(),
                seq0,
                n,
            });
            self.tag += 1;
            self.seq += n as u64;
        }
    }
}

/// One SubmitStream call per client with `window` messages in flight. With `expect_base` (the prefill), receipt
/// indices must follow the stream order from `base`, and the checkpoints seen are returned.
pub(crate) async fn write_stream(
    mut rpc: Rpc,
    ctx: Arc<Ctx>,
    stop: Arc<Stop>,
    client: u32,
    (batch, window): (usize, usize),
    expect_base: Option<u64>,
) -> (Tally, BTreeMap<u64, String>) {
    let mut t = Tally::default();
    let mut checks = WriteChecks::new(&ctx, expect_base);
    let (tx, rx) = mpsc::channel(window.max(1));
    let mut s = StreamSender {
        tx: Some(tx),
        in_flight: VecDeque::new(),
        tag: 0,
        seq: 0,
    };
    // The first window is queued before the call opens, so no ordering of headers and body can deadlock.
    s.fill(&ctx, &stop, client, batch, window);
    match rpc.submit_stream(ReceiverStream::new(rx)).await {
        Ok(responses) => {
            let mut responses = responses.into_inner();
            while !s.in_flight.is_empty() {
                match responses.message().await {
                    Ok(Some(answer)) => {
                        let Some(sent) = s.in_flight.pop_front() else {
                            break;
                        };
                        t.record(sent.at.elapsed(), sent.n);
                        if answer.client_tag != sent.tag {
                            checks.v.checks.fail(format!(
                                "stream answer tagged {} for request {}",
                                answer.client_tag, sent.tag
                            ));
                        }
                        checks.receipts(&ctx, client, sent.seq0, sent.n, answer);
                        s.fill(&ctx, &stop, client, batch, window);
                    }
                    Ok(None) => {
                        t.error(format!(
                            "stream ended with {} requests unanswered",
                            s.in_flight.len()
                        ));
                        break;
                    }
                    Err(e) => {
                        t.error(format!("{}: {}", e.code(), e.message()));
                        break;
                    }
                }
            }
        }
        Err(e) => t.error(format!("{}: {}", e.code(), e.message())),
    }
    let (c, checkpoints) = checks.finish(&ctx, client);
    t.checks = c;
    (t, checkpoints)
}

/// An answered open-loop request.
pub(crate) struct Done {
    pub(crate) latency: Duration,
    pub(crate) client: u32,
    pub(crate) seq0: u64,
    pub(crate) n: usize,
    pub(crate) answer: Result<v1::SubmitBatchResponse, tonic::Status>,
}

/// Open loop: requests leave on a fixed schedule whatever the answers do, and each latency counts from when its
/// request was due, so a stalled server shows up in the tail instead of slowing the offered load
/// (no coordinated omission).
pub(crate) async fn write_open(
    rpcs: Vec<Rpc>,
    ctx: Arc<Ctx>,
    stop: Arc<Stop>,
    (unary, batch): (bool, usize),
    rate: f64,
) -> Tally {
    let batch = if unary { 1 } else { batch };
    let per_request = Duration::from_secs_f64(batch as f64 / rate);
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
    let collector = {
        let ctx = ctx.clone();
        let clients = rpcs.len();
        tokio::spawn(async move {
            let mut t = Tally::default();
            let mut checks: Vec<WriteChecks> =
                (0..clients).map(|_| WriteChecks::new(&ctx, None)).collect();
            while let Some(d) = done_rx.recv().await {
                match d.answer {
                    Ok(answer) => {
                        t.record(d.latency, d.n);
                        checks[d.client as usize].receipts(&ctx, d.client, d.seq0, d.n, answer);
                    }
                    Err(s) => t.error(format!("{}: {}", s.code(), s.message())),
                }
            }
            for (client, c) in checks.into_iter().enumerate() {
                t.checks.merge(c.finish(&ctx, client as u32).0);
            }
            t
        })
    };
    let in_flight = Arc::new(Semaphore::new(OPEN_LOOP_IN_FLIGHT));
    let mut seqs = vec![0u64; rpcs.len()];
    let start = tokio::time::Instant::now();
    for k in 0u64.. {
        let due = start + per_request.mul_f64(k as f64);
        // Returns at once when already due; the timer's 1 ms tick sends small bursts, each timed from its due time.
        tokio::time::sleep_until(due).await;
        let n = stop.claim(batch);
        if n == 0 {
            break;
        }
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            break;
        };
        let client = (k % rpcs.len() as u64) as usize;
        let seq0 = seqs[client];
        seqs[client] += n as u64;
        let mut rpc = rpcs[client].clone();
        let (ctx, done_tx) = (ctx.clone(), done_tx.clone());
        tokio::spawn(async move {
            let entries = ctx.entries(client as u32, seq0, n);
            let answer = submit(&mut rpc, unary, entries).await;
            let latency = due.elapsed();
            drop(permit);
            let _ = done_tx.send(Done {
                latency,
                client: client as u32,
                seq0,
                n,
                answer,
            });
        });
    }
    drop(done_tx);
    collector.await.unwrap_or_else(|e| {
        let mut t = Tally::default();
        t.error(format!("open-loop collector failed: {e}"));
        t
    })
}

/// What the run knows about the log's contents: the prefill's entries and the checkpoints it saw.
#[derive(Clone)]
pub(crate) struct Known {
    /// Run id of the prefill entries; None when this run did not write them (then entries are not checked).
    pub(crate) run: Option<u64>,
    pub(crate) entry_bytes: usize,
    /// Index of the first prefill entry; `count` entries follow.
    pub(crate) base: u64,
    pub(crate) count: u64,
    /// Entries written under each run id: entry `p` has run id `run + p / run_entries` and sequence number
    /// `p % run_entries` (the huge suite fills in steps of its own run id; otherwise one run, `u64::MAX`).
    pub(crate) run_entries: u64,
    /// Published (size, signed note) pairs, ascending.
    pub(crate) checkpoints: Vec<(u64, String)>,
}

impl Known {
    pub(crate) fn entry(&self, index: u64) -> Option<Vec<u8>> {
        let p = index - self.base;
        let step = self.run_entries.max(1);
        self.run
            .map(|run| make_entry(run + p / step, PREFILL_CLIENT, p % step, self.entry_bytes))
    }
}

#[derive(Copy, Clone, PartialEq, Eq)]
pub(crate) enum ReadKind {
    Index,
    Hash,
    Consistency,
}

/// Closed-loop proof reads. Index and hash reads pick a uniform prefill entry; consistency reads prove from a
/// random size the prefill saw published (not the newest) to the latest checkpoint.
pub(crate) async fn read_closed(
    mut rpc: Rpc,
    ctx: Arc<Ctx>,
    stop: Arc<Stop>,
    known: Arc<Known>,
    kind: ReadKind,
    client: u32,
) -> Tally {
    let mut t = Tally::default();
    let mut v = ctx.verifier();
    let mut rng = Rng::new(ctx.run ^ (u64::from(client) << 20) ^ 0xA5);
    let mut old_trust: BTreeMap<u64, TrustedLog> = BTreeMap::new();
    let mut consecutive = 0;
    let olds = known.checkpoints.len().saturating_sub(1) as u64;
    while stop.claim(1) == 1 {
        let first = t.requests == 0;
        let start = Instant::now();
        let outcome = match kind {
            ReadKind::Index | ReadKind::Hash => {
                let index = known.base + rng.below(known.count);
                let entry = known.entry(index);
                let leaf = match (&entry, kind) {
                    (Some(e), ReadKind::Hash) => Leaf::LeafHash(leaf_hash(e).0.to_vec()),
                    _ => Leaf::Index(index),
                };
                let answer = rpc
                    .get_inclusion_proof(v1::GetInclusionProofRequest {
                        leaf: Some(leaf),
                        tree_size: 0,
                    })
                    .await;
                let latency = start.elapsed();
                answer.map(|proof| {
                    let proof = proof.into_inner();
                    t.record(latency, 1);
                    check_inclusion(&mut v, proof, index, entry.as_deref(), first);
                })
            }
            ReadKind::Consistency => {
                let (old_size, old_note) = &known.checkpoints[rng.below(olds) as usize];
                let answer = rpc
                    .get_consistency_proof(v1::GetConsistencyProofRequest {
                        old_size: *old_size,
                        new_size: 0,
                    })
                    .await;
                let latency = start.elapsed();
                answer.map(|proof| {
                    t.record(latency, 1);
                    check_consistency(&mut v, &mut old_trust, proof.into_inner(), old_note, first);
                })
            }
        };
        match outcome {
            Ok(()) => consecutive = 0,
            Err(s) => {
                t.error(format!("{}: {}", s.code(), s.message()));
                consecutive += 1;
                if consecutive >= MAX_CONSECUTIVE_ERRORS {
                    break;
                }
            }
        }
    }
    t.checks = v.checks;
    t
}
