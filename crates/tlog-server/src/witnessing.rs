//! Witness cosigning (C2SP `tlog-witness`, client side): after the log publishes checkpoints, ask each configured
//! witness to cosign the newest one with `add-checkpoint`, and publish that checkpoint with the cosignatures it
//! got once a quorum has answered.
//!
//! Acknowledgements do not wait for witnesses: a submission is acknowledged once durable and signed by the log,
//! and the witnessed checkpoint follows. One task runs rounds: each round takes the newest log checkpoint (older
//! ones not yet witnessed are skipped: a cosignature of the newest covers them by consistency) and asks every
//! witness not backing off, concurrently. Per witness it keeps the size that witness last cosigned, learnt from
//! its answers: a `409` with `text/x.tlog.size` resends from the witness's size; `403`, `404`, `422`, other
//! `409`s, `400`, other statuses and timeouts put that witness into exponential backoff, logged with what the
//! witness said. A `409` for the same size with another root means the witness saw another history signed with
//! this log's key: it is logged as an error.
//!
//! The newest witnessed checkpoint (a [`SignedCheckpoint`] whose note carries the cosignature lines) is kept in the store's metadata ([`META_WITNESSED`]) so a restart serves it
//! at once, and published on a watch channel that the HTTP `/checkpoint` serves.

use std::sync::Arc;
use std::time::Duration;

use tlog_checkpoint::witness::{
    AddCheckpoint, CosignerKey, SIZE_CONTENT_TYPE, add_cosignatures, parse_size_body,
    verify_witnessed,
};
use tlog_checkpoint::{SignedCheckpoint, VerifierKey};
use tlog_core::TreeSize;
use tlog_storage::LogStore;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::log::LogReader;
use crate::metrics::Metrics;

/// Metadata key of the newest witnessed checkpoint note.
pub const META_WITNESSED: &str = "witnessed_checkpoint";
/// How long one `add-checkpoint` request may take, by default.
pub const DEFAULT_WITNESS_TIMEOUT: Duration = Duration::from_secs(5);
/// First wait after a witness fails; it doubles per consecutive failure up to [`DEFAULT_MAX_BACKOFF`].
pub const DEFAULT_MIN_BACKOFF: Duration = Duration::from_millis(250);
/// Longest wait between attempts at a failing witness.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Shortest time from the start of one witnessing round to the start of the next.
pub const DEFAULT_MIN_INTERVAL: Duration = Duration::from_millis(100);
/// How many times one round resends to a witness that answers `409` with its size.
const MAX_RESENDS: usize = 2;

/// One witness the log asks for cosignatures.
#[derive(Clone, Debug)]
pub struct WitnessEndpoint {
    /// The witness's cosigner key (its name is the witness's name).
    pub key: CosignerKey,
    /// Submission prefix: requests go to `<url>/add-checkpoint`.
    pub url: String,
}

/// Which witnesses to ask and how many cosignatures a checkpoint needs before it is published as witnessed.
#[derive(Clone, Debug)]
pub struct WitnessingConfig {
    pub witnesses: Vec<WitnessEndpoint>,
    /// Cosignatures needed (1..=witnesses.len()).
    pub quorum: usize,
    pub timeout: Duration,
    /// Shortest time between the starts of two rounds.
    pub min_interval: Duration,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
}

impl WitnessEndpoint {
    /// Parses `<cosigner key>=<URL>` (the `--witness` flag): the witness's `0x04` verifier key, `=`, and its
    /// `http://` or `https://` submission prefix.
    pub fn parse(text: &str) -> Result<Self, String> {
        let split = ["=http://", "=https://"]
            .iter()
            .filter_map(|sep| text.find(sep))
            .min()
            .ok_or_else(|| {
                format!("witness {text:?}: expected <cosigner key>=<http:// or https:// URL>")
            })?;
        let (key, url) = (&text[..split], &text[split + 1..]);
        let key = CosignerKey::parse(key)
            .map_err(|e| format!("witness {text:?}: bad cosigner key: {e}"))?;
        Ok(WitnessEndpoint {
            key,
            url: url.to_owned(),
        })
    }
}

impl WitnessingConfig {
    /// Checks the policy: at least one witness, a quorum from 1 to the number of witnesses, distinct names.
    pub fn validate(&self) -> Result<(), String> {
        let n = self.witnesses.len();
        if self.quorum == 0 || self.quorum > n {
            return Err(format!(
                "witness quorum {} must be between 1 and the number of witnesses ({n})",
                self.quorum
            ));
        }
        for (i, w) in self.witnesses.iter().enumerate() {
            if self.witnesses[..i]
                .iter()
                .any(|o| o.key.name() == w.key.name())
            {
                return Err(format!("witness {} is configured twice", w.key.name()));
            }
        }
        Ok(())
    }

    /// Witnesses with the default timeout and backoff.
    pub fn new(witnesses: Vec<WitnessEndpoint>, quorum: usize) -> Self {
        WitnessingConfig {
            witnesses,
            quorum,
            timeout: DEFAULT_WITNESS_TIMEOUT,
            min_interval: DEFAULT_MIN_INTERVAL,
            min_backoff: DEFAULT_MIN_BACKOFF,
            max_backoff: DEFAULT_MAX_BACKOFF,
        }
    }

    /// The cosigner keys, in configuration order.
    pub fn keys(&self) -> Vec<CosignerKey> {
        self.witnesses.iter().map(|w| w.key.clone()).collect()
    }
}

/// The running witnessing task: its output and its stop.
pub struct Witnessing {
    witnessed: watch::Receiver<Option<Arc<SignedCheckpoint>>>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Witnessing {
    /// Starts witnessing the checkpoints `reader` publishes. The last witnessed checkpoint stored in `store` is
    /// published at once if it still meets the policy.
    pub fn spawn<S: LogStore>(
        reader: LogReader<S>,
        store: Arc<S>,
        log_key: VerifierKey,
        config: WitnessingConfig,
    ) -> Result<Self, tlog_client::ClientError> {
        Self::spawn_with_metrics(reader, store, log_key, config, Metrics::new())
    }

    /// [`Witnessing::spawn`], recording rounds, cosignatures and failures in `metrics`.
    pub fn spawn_with_metrics<S: LogStore>(
        reader: LogReader<S>,
        store: Arc<S>,
        log_key: VerifierKey,
        config: WitnessingConfig,
        metrics: Metrics,
    ) -> Result<Self, tlog_client::ClientError> {
        let http = tlog_client::http::http_client(config.timeout)?;
        let stored = store.meta(META_WITNESSED).ok().flatten().and_then(|note| {
            let w = verify_witnessed(&log_key, &config.keys(), config.quorum, &note).ok()?;
            Some(Arc::new(w.signed))
        });
        let (witnessed_tx, witnessed) = watch::channel(stored);
        let (stop, stop_rx) = watch::channel(false);
        let runner = Runner {
            reader,
            store,
            log_key,
            http,
            states: config
                .witnesses
                .iter()
                .map(|w| WitnessState {
                    endpoint: w.clone(),
                    cosigned: 0,
                    failures: 0,
                    retry_at: None,
                })
                .collect(),
            config,
            witnessed: witnessed_tx,
            metrics,
        };
        let task = tokio::spawn(runner.run(stop_rx));
        Ok(Witnessing {
            witnessed,
            stop,
            task,
        })
    }

    /// Sees every newly witnessed checkpoint (`None` until the first).
    pub fn subscribe(&self) -> watch::Receiver<Option<Arc<SignedCheckpoint>>> {
        self.witnessed.clone()
    }

    /// Stops after the round in flight.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

struct WitnessState {
    endpoint: WitnessEndpoint,
    /// The size this witness last cosigned, as far as we know (0: none or unknown).
    cosigned: u64,
    failures: u32,
    retry_at: Option<tokio::time::Instant>,
}

/// What one witness did with one checkpoint.
enum Outcome {
    /// It cosigned: its signature lines, checked against its key.
    Cosigned(String),
    /// It did not; the witness stays in backoff. The string says what happened, for the log.
    Failed(String),
}

struct Runner<S> {
    reader: LogReader<S>,
    store: Arc<S>,
    log_key: VerifierKey,
    http: reqwest::Client,
    states: Vec<WitnessState>,
    config: WitnessingConfig,
    witnessed: watch::Sender<Option<Arc<SignedCheckpoint>>>,
    metrics: Metrics,
}

impl<S: LogStore> Runner<S> {
    async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut latest = self.reader.subscribe();
        loop {
            let cp = latest.borrow_and_update().clone();
            let done = self
                .witnessed
                .borrow()
                .as_ref()
                .is_some_and(|w| w.checkpoint.size >= cp.checkpoint.size);
            if cp.checkpoint.size.0 > 0 && !done {
                let started = tokio::time::Instant::now();
                self.round(cp).await;
                // Rounds are spaced: a busy log signs a checkpoint per batch (hundreds a second), and each round
                // costs every witness a signature check and a durable write. The newest checkpoint after the
                // pause covers the ones in between.
                tokio::select! {
                    _ = tokio::time::sleep_until(started + self.config.min_interval) => {}
                    _ = stop.changed() => return,
                }
            }
            // Wait for a newer checkpoint, or for the earliest backoff to expire when a round fell short.
            let retry = self.states.iter().filter_map(|s| s.retry_at).min();
            let newest = latest.borrow().checkpoint.size.0;
            let short = self
                .witnessed
                .borrow()
                .as_ref()
                .is_none_or(|w| w.checkpoint.size.0 < newest);
            tokio::select! {
                changed = latest.changed() => if changed.is_err() { return },
                _ = stop.changed() => return,
                _ = sleep_until(retry), if short && retry.is_some() => {}
            }
        }
    }

    /// Asks every witness not in backoff to cosign `cp`, and publishes it once a quorum cosigned.
    async fn round(&mut self, cp: Arc<SignedCheckpoint>) {
        self.metrics.witness().rounds.inc();
        let now = tokio::time::Instant::now();
        let mut asks = JoinSet::new();
        for (i, state) in self.states.iter().enumerate() {
            if state.retry_at.is_some_and(|t| t > now) {
                continue;
            }
            let ask = Ask {
                http: self.http.clone(),
                reader: self.reader.clone(),
                endpoint: state.endpoint.clone(),
                log_key: self.log_key.clone(),
                cosigned: state.cosigned,
                cp: cp.clone(),
            };
            asks.spawn(async move { (i, ask.run().await) });
        }
        let mut lines: Vec<(usize, String)> = Vec::new();
        while let Some(joined) = asks.join_next().await {
            let Ok((i, (cosigned, outcome))) = joined else {
                continue;
            };
            let state = &mut self.states[i];
            state.cosigned = cosigned;
            match outcome {
                Outcome::Cosigned(line) => {
                    self.metrics.witness().cosigned(state.endpoint.key.name());
                    state.failures = 0;
                    state.retry_at = None;
                    lines.push((i, line));
                    // Publish as soon as the quorum is reached, again as more cosignatures arrive.
                    if lines.len() >= self.config.quorum {
                        self.publish(&cp, &lines).await;
                    }
                }
                Outcome::Failed(why) => {
                    self.metrics.witness().failed(state.endpoint.key.name());
                    state.failures = state.failures.saturating_add(1);
                    let backoff = self
                        .config
                        .min_backoff
                        .saturating_mul(1 << state.failures.min(16).saturating_sub(1))
                        .min(self.config.max_backoff);
                    state.retry_at = Some(tokio::time::Instant::now() + backoff);
                    tracing::warn!(
                        witness = state.endpoint.key.name(),
                        size = cp.checkpoint.size.0,
                        ?backoff,
                        "witness did not cosign: {why}"
                    );
                }
            }
        }
    }

    async fn publish(&self, cp: &SignedCheckpoint, lines: &[(usize, String)]) {
        let mut sorted: Vec<&(usize, String)> = lines.iter().collect();
        sorted.sort_by_key(|(i, _)| *i);
        let all: String = sorted.iter().map(|(_, l)| l.as_str()).collect();
        let note = match add_cosignatures(&cp.note, &all) {
            Ok(note) => note,
            Err(e) => {
                tracing::error!(error = %e, "could not assemble the witnessed checkpoint");
                return;
            }
        };
        let cosigners: Vec<&str> = sorted
            .iter()
            .map(|(i, _)| self.states[*i].endpoint.key.name())
            .collect();
        tracing::debug!(
            size = cp.checkpoint.size.0,
            ?cosigners,
            "witnessed checkpoint"
        );
        let witnessed = Arc::new(SignedCheckpoint { note, ..cp.clone() });
        let store = self.store.clone();
        let bytes = witnessed.note.clone().into_bytes();
        let stored =
            tokio::task::spawn_blocking(move || store.set_meta(META_WITNESSED, &bytes)).await;
        if !matches!(stored, Ok(Ok(()))) {
            tracing::warn!("could not store the witnessed checkpoint; it is served until restart");
        }
        self.metrics.witness().published.inc();
        self.witnessed.send_replace(Some(witnessed));
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// One witness asked about one checkpoint (with resends after `409` sizes).
struct Ask<S> {
    http: reqwest::Client,
    reader: LogReader<S>,
    endpoint: WitnessEndpoint,
    log_key: VerifierKey,
    cosigned: u64,
    cp: Arc<SignedCheckpoint>,
}

impl<S: LogStore> Ask<S> {
    /// Returns the witness's cosigned size as learnt, and the outcome.
    async fn run(mut self) -> (u64, Outcome) {
        let new = self.cp.checkpoint.size.0;
        for _ in 0..=MAX_RESENDS {
            if self.cosigned > new {
                return (
                    self.cosigned,
                    Outcome::Failed(format!(
                        "it has cosigned size {}, beyond this checkpoint",
                        self.cosigned
                    )),
                );
            }
            let proof = match self.proof().await {
                Ok(proof) => proof,
                Err(why) => return (self.cosigned, Outcome::Failed(why)),
            };
            let body = AddCheckpoint {
                old_size: self.cosigned,
                proof,
                checkpoint: self.cp.note.clone().into_bytes(),
            }
            .encode();
            let url = format!("{}/add-checkpoint", self.endpoint.url.trim_end_matches('/'));
            let response = match self.http.post(&url).body(body).send().await {
                Ok(r) => r,
                Err(e) => {
                    return (
                        self.cosigned,
                        Outcome::Failed(format!("request failed: {e}")),
                    );
                }
            };
            let status = response.status();
            let size_body = response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(SIZE_CONTENT_TYPE.as_bytes()));
            let text = match response.text().await {
                Ok(t) => t,
                Err(e) => {
                    return (
                        self.cosigned,
                        Outcome::Failed(format!("reading the answer failed: {e}")),
                    );
                }
            };
            match status.as_u16() {
                200 => return (new, self.check_cosignature(&text)),
                409 if size_body => match parse_size_body(text.as_bytes()) {
                    Ok(size) if size == self.cosigned => {
                        return (
                            size,
                            Outcome::Failed(format!("409 for the size it reports ({size})")),
                        );
                    }
                    Ok(size) => self.cosigned = size,
                    Err(e) => {
                        return (
                            self.cosigned,
                            Outcome::Failed(format!("409 with a malformed size: {e}")),
                        );
                    }
                },
                409 => {
                    tracing::error!(
                        witness = self.endpoint.key.name(),
                        size = new,
                        "the witness cosigned another root for this size: it has seen a different history \
                         signed with this log's key"
                    );
                    return (
                        self.cosigned,
                        Outcome::Failed(format!("409: {}", text.trim())),
                    );
                }
                code => {
                    return (
                        self.cosigned,
                        Outcome::Failed(format!("{code}: {}", text.trim())),
                    );
                }
            }
        }
        (
            self.cosigned,
            Outcome::Failed("the witness kept changing its size".into()),
        )
    }

    /// The consistency proof from the witness's size to the checkpoint's (empty from 0 or for equal sizes).
    async fn proof(&self) -> Result<Vec<tlog_core::Hash>, String> {
        let (old, new) = (self.cosigned, self.cp.checkpoint.size.0);
        if old == 0 || old == new {
            return Ok(Vec::new());
        }
        let reader = self.reader.clone();
        match tokio::task::spawn_blocking(move || reader.consistency(TreeSize(old), TreeSize(new)))
            .await
        {
            Ok(Ok((proof, _))) => Ok(proof),
            Ok(Err(e)) => Err(format!("no consistency proof from its size {old}: {e}")),
            Err(e) => Err(format!("proof task failed: {e}")),
        }
    }

    /// A `200` body must be signature lines including a valid cosignature by this witness; only its own lines
    /// are kept.
    fn check_cosignature(&self, body: &str) -> Outcome {
        let key = std::slice::from_ref(&self.endpoint.key);
        let checked = add_cosignatures(&self.cp.note, body)
            .map_err(|e| e.to_string())
            .and_then(|note| {
                verify_witnessed(&self.log_key, key, 1, note.as_bytes()).map_err(|e| e.to_string())
            });
        match checked {
            Ok(_) => {
                let own = format!("\u{2014} {} ", self.endpoint.key.name());
                Outcome::Cosigned(
                    body.split_inclusive('\n')
                        .filter(|l| l.starts_with(&own))
                        .collect(),
                )
            }
            Err(e) => Outcome::Failed(format!("200 without a valid cosignature: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use tlog_checkpoint::SignerKey;

    use super::*;

    fn key(n: u8) -> CosignerKey {
        CosignerKey::of(&SignerKey::from_seed(&format!("w{n}.example"), [n; 32]).unwrap())
    }

    #[test]
    fn witness_flags_parse() {
        let w = WitnessEndpoint::parse(&format!("{}=https://w1.example/witness", key(1))).unwrap();
        assert_eq!(w.key, key(1));
        assert_eq!(w.url, "https://w1.example/witness");
        for bad in [
            format!("{}", key(1)),
            format!("{}=ftp://x", key(1)),
            "nokey=http://x".to_string(),
        ] {
            assert!(WitnessEndpoint::parse(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn quorums_must_be_reachable() {
        let ws: Vec<WitnessEndpoint> = (1..=2)
            .map(|n| WitnessEndpoint {
                key: key(n),
                url: "http://x".into(),
            })
            .collect();
        assert!(WitnessingConfig::new(ws.clone(), 2).validate().is_ok());
        assert!(WitnessingConfig::new(ws.clone(), 0).validate().is_err());
        assert!(WitnessingConfig::new(ws.clone(), 3).validate().is_err());
        let twice = vec![ws[0].clone(), ws[0].clone()];
        assert!(WitnessingConfig::new(twice, 1).validate().is_err());
    }
}
