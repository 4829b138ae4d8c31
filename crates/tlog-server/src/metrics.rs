//! The server's figures in the Prometheus/OpenMetrics text format, served at `GET /metrics` on the HTTP listener.
//!
//! One [`Metrics`] per log, in the server's state (no global registry): each figure is updated by the one that
//! owns what it measures. The sequencer counts what it appends and times its commits and its busy time; the
//! [`crate::log::Appender`] counts the queue and its refusals; the gRPC service times the proofs it serves;
//! witnessing counts its rounds; the scrub reports its passes. What is state rather than events (tree size,
//! checkpoint age, the witnessed size and its lag, the store's memory by part) is read from its owner when
//! `/metrics` is scraped.
//!
//! Counters and gauges are atomics; histograms take a short, uncontended lock per observation, and are observed
//! per batch or per request, never per entry.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use tlog_storage::{LogStore, MemoryPart};

use crate::clock::Clock;
use crate::http::Witnessed;
use crate::log::LogReader;

/// The `Content-Type` of the OpenMetrics text exposition, which Prometheus scrapes natively.
pub const CONTENT_TYPE_OPENMETRICS: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Latency buckets, in seconds: 50 µs to ~6.5 s (fsyncs, proofs and round trips all fall in it).
fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.000_05, 2.0, 18)
}

type ByKind<M> = Family<[(&'static str, &'static str); 1], M>;
type ByWitness<M> = Family<[(&'static str, String); 1], M>;

/// What the sequencer and the appender record.
pub(crate) struct SequencerMetrics {
    /// New entries written (not duplicates).
    pub entries: Counter,
    /// Bytes of the new entries written.
    pub bytes: Counter,
    /// Entries answered with the index they already had.
    pub duplicates: Counter,
    /// Batches written (one synced store write and one signature each).
    pub batches: Counter,
    /// New entries per written batch.
    pub batch_entries: Histogram,
    /// Batches that failed (nothing of them was written).
    pub batch_failures: Counter,
    /// The store write of a batch: the commit (with its fsync, when syncing).
    pub commit_seconds: Histogram,
    /// Time the sequencer spent on batches (hashing, signing, writing, answering), in seconds.
    pub busy_seconds: Counter<f64, AtomicU64>,
    /// Submissions queued for the sequencer and not yet taken.
    pub queue_depth: Gauge,
    /// Submissions refused because the queue was full.
    pub rejected_queue_full: Counter,
    /// Submissions refused by the request checks (empty, too many or too large entries).
    pub rejected_invalid: Counter,
}

/// What the gRPC service records about the proofs it serves.
pub(crate) struct ProofMetrics {
    pub inclusion_seconds: Histogram,
    pub consistency_seconds: Histogram,
    pub inclusion_failures: Counter,
    pub consistency_failures: Counter,
}

/// What witnessing records.
pub(crate) struct WitnessMetrics {
    pub rounds: Counter,
    pub cosigned: ByWitness<Counter>,
    pub failures: ByWitness<Counter>,
    /// Checkpoints published as witnessed (a quorum cosigned).
    pub published: Counter,
}

/// What the background scrub records.
pub(crate) struct ScrubMetrics {
    /// 1: the last pass found the log intact; 0: no pass yet, or the last could not read the store; -1: the last
    /// pass found damage.
    pub status: Gauge,
    /// Unix time of the end of the last clean pass.
    pub last_clean: Gauge,
    pub passes: ByKind<Counter>,
}

/// Read from the log's state at each scrape.
struct StateGauges {
    tree_size: Gauge,
    checkpoint_age: Gauge,
    checkpoint_timestamp: Gauge,
    witnessed_size: Gauge,
    witness_lag: Gauge,
    store_memory: ByKind<Gauge>,
}

struct Inner {
    registry: Registry,
    sequencer: SequencerMetrics,
    proofs: ProofMetrics,
    witness: WitnessMetrics,
    scrub: ScrubMetrics,
    state: StateGauges,
}

/// The log's registry and the handles its parts record into; cheap to clone (all clones share one registry).
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// A registry (prefix `tlog_`) with every figure registered at zero.
    pub fn new() -> Self {
        let mut r = Registry::with_prefix("tlog");
        let sequencer = SequencerMetrics {
            entries: Counter::default(),
            bytes: Counter::default(),
            duplicates: Counter::default(),
            batches: Counter::default(),
            batch_entries: Histogram::new(exponential_buckets(1.0, 2.0, 13)),
            batch_failures: Counter::default(),
            commit_seconds: Histogram::new(latency_buckets()),
            busy_seconds: Counter::default(),
            queue_depth: Gauge::default(),
            rejected_queue_full: Counter::default(),
            rejected_invalid: Counter::default(),
        };
        r.register(
            "entries_appended",
            "New entries appended to the log (duplicates not included)",
            sequencer.entries.clone(),
        );
        r.register(
            "appended_bytes",
            "Bytes of the new entries appended to the log",
            sequencer.bytes.clone(),
        );
        r.register(
            "entries_duplicate",
            "Submitted entries the log already held (answered with their earlier index)",
            sequencer.duplicates.clone(),
        );
        r.register(
            "batches",
            "Batches written: one synced store write and one signed checkpoint each",
            sequencer.batches.clone(),
        );
        r.register(
            "batch_entries",
            "New entries per written batch",
            sequencer.batch_entries.clone(),
        );
        r.register(
            "batch_failures",
            "Batches that failed; nothing of them was written",
            sequencer.batch_failures.clone(),
        );
        r.register_with_unit(
            "commit",
            "Time of a batch's store write (the commit and its fsync)",
            Unit::Seconds,
            sequencer.commit_seconds.clone(),
        );
        r.register_with_unit(
            "sequencer_busy",
            "Time the sequencer spent on batches; its rate is the sequencer's utilisation",
            Unit::Seconds,
            sequencer.busy_seconds.clone(),
        );
        r.register(
            "queue_depth",
            "Submissions waiting for the sequencer",
            sequencer.queue_depth.clone(),
        );
        let rejected: ByKind<Counter> = Family::default();
        r.register(
            "submissions_rejected",
            "Submissions refused before sequencing, by reason",
            rejected.clone(),
        );
        let sequencer = SequencerMetrics {
            rejected_queue_full: rejected.get_or_create_owned(&[("reason", "queue_full")]),
            rejected_invalid: rejected.get_or_create_owned(&[("reason", "invalid")]),
            ..sequencer
        };

        let proof_seconds: ByKind<Histogram> =
            Family::new_with_constructor(|| Histogram::new(latency_buckets()));
        r.register_with_unit(
            "proof_duration",
            "Proofs served over gRPC, by kind, and the time each took",
            Unit::Seconds,
            proof_seconds.clone(),
        );
        let proof_failures: ByKind<Counter> = Family::default();
        r.register(
            "proof_failures",
            "Proof requests refused or failed, by kind",
            proof_failures.clone(),
        );
        let (inclusion, consistency) = ([("kind", "inclusion")], [("kind", "consistency")]);
        let proofs = ProofMetrics {
            inclusion_seconds: proof_seconds.get_or_create_owned(&inclusion),
            consistency_seconds: proof_seconds.get_or_create_owned(&consistency),
            inclusion_failures: proof_failures.get_or_create_owned(&inclusion),
            consistency_failures: proof_failures.get_or_create_owned(&consistency),
        };

        let witness = WitnessMetrics {
            rounds: Counter::default(),
            cosigned: Family::default(),
            failures: Family::default(),
            published: Counter::default(),
        };
        r.register(
            "witness_rounds",
            "Witnessing rounds (each asks the witnesses to cosign the newest checkpoint)",
            witness.rounds.clone(),
        );
        r.register(
            "witness_cosignatures",
            "Cosignatures received, by witness",
            witness.cosigned.clone(),
        );
        r.register(
            "witness_failures",
            "Requests to a witness that got no cosignature, by witness",
            witness.failures.clone(),
        );
        r.register(
            "witnessed_checkpoints",
            "Checkpoints published as witnessed (cosigned by a quorum)",
            witness.published.clone(),
        );

        let scrub = ScrubMetrics {
            status: Gauge::default(),
            last_clean: Gauge::default(),
            passes: Family::default(),
        };
        r.register(
            "scrub_status",
            "Background scrub: 1 the last pass found the log intact, 0 no pass yet or the store could not be read, -1 damage found",
            scrub.status.clone(),
        );
        r.register_with_unit(
            "scrub_last_clean_timestamp",
            "Unix time the last clean scrub pass ended",
            Unit::Seconds,
            scrub.last_clean.clone(),
        );
        r.register(
            "scrub_passes",
            "Scrub passes, by result (clean, damaged, error)",
            scrub.passes.clone(),
        );

        let state = StateGauges {
            tree_size: Gauge::default(),
            checkpoint_age: Gauge::default(),
            checkpoint_timestamp: Gauge::default(),
            witnessed_size: Gauge::default(),
            witness_lag: Gauge::default(),
            store_memory: ByKind::default(),
        };
        r.register(
            "tree_size",
            "Size of the tree of the newest signed checkpoint",
            state.tree_size.clone(),
        );
        r.register_with_unit(
            "checkpoint_age",
            "Age of the newest signed checkpoint (an idle log signs no new one)",
            Unit::Seconds,
            state.checkpoint_age.clone(),
        );
        r.register_with_unit(
            "checkpoint_timestamp",
            "Unix time of the newest signed checkpoint",
            Unit::Seconds,
            state.checkpoint_timestamp.clone(),
        );
        r.register(
            "witnessed_tree_size",
            "Size of the newest checkpoint a quorum of witnesses cosigned (0 without witnesses or before the first)",
            state.witnessed_size.clone(),
        );
        r.register(
            "witness_lag_entries",
            "Entries signed by the log but not yet covered by a witnessed checkpoint (0 without witnesses)",
            state.witness_lag.clone(),
        );
        r.register_with_unit(
            "store_memory",
            "Memory the store holds, by part (leaf_filter, upper_tiles; with RocksDB: table_readers outside the \
             block cache, memtables, block_cache)",
            Unit::Bytes,
            state.store_memory.clone(),
        );
        Metrics(Arc::new(Inner {
            registry: r,
            sequencer,
            proofs,
            witness,
            scrub,
            state,
        }))
    }

    pub(crate) fn sequencer(&self) -> &SequencerMetrics {
        &self.0.sequencer
    }

    pub(crate) fn proofs(&self) -> &ProofMetrics {
        &self.0.proofs
    }

    pub(crate) fn witness(&self) -> &WitnessMetrics {
        &self.0.witness
    }

    pub(crate) fn scrub(&self) -> &ScrubMetrics {
        &self.0.scrub
    }

    /// The OpenMetrics text of every figure, after reading the state figures from `state`.
    pub fn render(&self, state: &LogState) -> String {
        let gauges = &self.0.state;
        gauges.tree_size.set(saturating_i64(state.tree_size));
        gauges
            .checkpoint_timestamp
            .set(saturating_i64(state.checkpoint_timestamp));
        gauges.checkpoint_age.set(saturating_i64(
            state.now.saturating_sub(state.checkpoint_timestamp),
        ));
        let witnessed = state.witnessed_size.unwrap_or(0);
        gauges.witnessed_size.set(saturating_i64(witnessed));
        gauges.witness_lag.set(match state.witnessed_size {
            Some(w) => saturating_i64(state.tree_size.saturating_sub(w)),
            None => 0,
        });
        for &(part, bytes) in &state.memory {
            gauges
                .store_memory
                .get_or_create(&[("part", part)])
                .set(saturating_i64(bytes));
        }
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut text, &self.0.registry);
        text
    }
}

/// The log's state at a scrape.
#[derive(Clone, Debug)]
pub struct LogState {
    pub tree_size: u64,
    pub checkpoint_timestamp: u64,
    /// Unix time now, by the log's clock.
    pub now: u64,
    /// The newest witnessed size; `None` without witnesses.
    pub witnessed_size: Option<u64>,
    /// The store's memory by part ([`LogStore::memory`]).
    pub memory: Vec<MemoryPart>,
}

fn saturating_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl ProofMetrics {
    /// Records one proof request of `kind` that took `took`.
    pub(crate) fn observe(&self, kind: ProofKind, took: Duration, ok: bool) {
        let (seconds, failures) = match kind {
            ProofKind::Inclusion => (&self.inclusion_seconds, &self.inclusion_failures),
            ProofKind::Consistency => (&self.consistency_seconds, &self.consistency_failures),
        };
        if ok {
            seconds.observe(took.as_secs_f64());
        } else {
            failures.inc();
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum ProofKind {
    Inclusion,
    Consistency,
}

impl WitnessMetrics {
    pub(crate) fn cosigned(&self, witness: &str) {
        self.cosigned
            .get_or_create(&[("witness", witness.to_owned())])
            .inc();
    }

    pub(crate) fn failed(&self, witness: &str) {
        self.failures
            .get_or_create(&[("witness", witness.to_owned())])
            .inc();
    }
}

impl ScrubMetrics {
    pub(crate) fn clean(&self, now_unix: u64) {
        self.status.set(1);
        self.last_clean.set(saturating_i64(now_unix));
        self.passes.get_or_create(&[("result", "clean")]).inc();
    }

    pub(crate) fn damaged(&self) {
        self.status.set(-1);
        self.passes.get_or_create(&[("result", "damaged")]).inc();
    }

    pub(crate) fn error(&self) {
        self.status.set(0);
        self.passes.get_or_create(&[("result", "error")]).inc();
    }
}

struct MetricsState<S> {
    metrics: Metrics,
    reader: LogReader<S>,
    witnessed: Option<Witnessed>,
    clock: Arc<dyn Clock>,
}

/// `GET /metrics` over `metrics`, with the state figures read from `reader` and `witnessed` at each scrape.
pub fn router<S: LogStore>(
    metrics: Metrics,
    reader: LogReader<S>,
    witnessed: Option<Witnessed>,
    clock: Arc<dyn Clock>,
) -> Router {
    let state = Arc::new(MetricsState {
        metrics,
        reader,
        witnessed,
        clock,
    });
    Router::new()
        .route("/metrics", get(scrape::<S>))
        .with_state(state)
}

async fn scrape<S: LogStore>(State(state): State<Arc<MetricsState<S>>>) -> Response {
    let latest = state.reader.latest();
    let witnessed_size = state
        .witnessed
        .as_ref()
        .map(|w| w.borrow().as_ref().map_or(0, |cp| cp.checkpoint.size.0));
    let text = state.metrics.render(&LogState {
        tree_size: latest.checkpoint.size.0,
        checkpoint_timestamp: latest.timestamp,
        now: state.clock.now_unix(),
        witnessed_size,
        memory: state.reader.memory(),
    });
    (
        StatusCode::OK,
        [(CONTENT_TYPE, CONTENT_TYPE_OPENMETRICS)],
        text,
    )
        .into_response()
}
