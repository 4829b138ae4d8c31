//! The witness: its key, the logs it witnesses, one lock-guarded latest checkpoint per origin, and the state
//! store behind them. [`Witness::add_checkpoint`] is the whole protocol step; [`Witness::run`] serves it over
//! HTTP. Tests and embedders run a witness in-process with [`Witness::start`] (or [`Witness::open`] and `run` on
//! a listener of their own).

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use tlog_checkpoint::{Checkpoint, CosignerKey, SignerKey, VerifierKey, cosign};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::check::{self, Verdict};
use crate::config::WitnessConfig;
use crate::error::{Error, Result, io};
use crate::keyfile;
use crate::state::StateStore;

/// One witnessed log.
struct Log {
    keys: Vec<VerifierKey>,
    /// The latest cosigned checkpoint, `None` before the first. The lock is held from the check to the answer,
    /// persisting included, so two requests cannot both pass the check against one state (the spec's rollback
    /// race): the second sees what the first stored.
    latest: Mutex<Option<Checkpoint>>,
}

/// A witness opened on its data folder, ready to [`run`](Witness::run).
pub struct Witness {
    config: WitnessConfig,
    key: SignerKey,
    created_key: bool,
    logs: BTreeMap<String, Log>,
    store: StateStore,
}

/// What a caller learns once the witness listens.
#[derive(Clone, Debug)]
pub struct Started {
    /// The bound address.
    pub addr: SocketAddr,
    /// The witness's cosigner verifier key, for logs and clients to trust.
    pub cosigner_key: CosignerKey,
    /// Whether the key was created by this start.
    pub created_key: bool,
    /// The origins witnessed and the size last cosigned for each (0: none yet).
    pub logs: Vec<(String, u64)>,
}

impl Witness {
    /// Loads or creates the key and loads every configured origin's state; refuses a corrupt state file.
    pub fn open(config: WitnessConfig) -> Result<Witness> {
        let trusted = config.trusted_logs()?;
        std::fs::create_dir_all(&config.data_dir)
            .map_err(io(format!("creating {}", config.data_dir.display())))?;
        // Lock the folder before anything else in it is read or created.
        let store = StateStore::open(&config.data_dir)?;
        let (key, created_key) = keyfile::load_or_create(&config.data_dir, config.name.as_deref())?;
        let mut logs = BTreeMap::new();
        for (origin, keys) in trusted {
            let latest = store.load(&origin, &keys)?.map(|c| c.checkpoint);
            logs.insert(
                origin,
                Log {
                    keys,
                    latest: Mutex::new(latest),
                },
            );
        }
        Ok(Witness {
            config,
            key,
            created_key,
            logs,
            store,
        })
    }

    /// The witness's cosigner verifier key.
    pub fn cosigner_key(&self) -> CosignerKey {
        CosignerKey::of(&self.key)
    }

    /// The latest checkpoint cosigned for `origin`, if it is witnessed and one was.
    pub fn latest(&self, origin: &str) -> Option<Checkpoint> {
        let log = self.logs.get(origin)?;
        log.latest.lock().ok()?.clone()
    }

    /// What a caller learns once the witness listens on `addr`.
    pub fn started(&self, addr: SocketAddr) -> Started {
        Started {
            addr,
            cosigner_key: self.cosigner_key(),
            created_key: self.created_key,
            logs: self
                .logs
                .keys()
                .map(|origin| {
                    let size = self.latest(origin).map_or(0, |c| c.size.0);
                    (origin.clone(), size)
                })
                .collect(),
        }
    }

    /// Handles an `add-checkpoint` body: the cosignature line to answer with, or the refusal. Blocking (it
    /// fsyncs): async callers run it on a blocking thread, where it also completes if the caller gives up, so
    /// the origin's lock is never released between persisting and updating the state.
    pub fn add_checkpoint(&self, body: &[u8]) -> Result<String> {
        let request = check::parse(body)?;
        let origin = &request.checkpoint.origin;
        let log = self
            .logs
            .get(origin)
            .ok_or_else(|| Error::UnknownOrigin(origin.clone()))?;
        // A poisoned lock means a panic between persisting and updating: the state may be behind the disk.
        let mut latest = log
            .latest
            .lock()
            .map_err(|_| Error::StateUnavailable(origin.clone()))?;
        let verdict = check::decide(&log.keys, latest.as_ref(), &request).inspect_err(|e| {
            if matches!(e, Error::BadProof(_) | Error::RootConflict { .. }) {
                // Signed by the log yet inconsistent with what it showed us: evidence of misbehaviour.
                tracing::warn!(origin, old_size = request.old_size, error = %e, note = ?request.note,
                    "refused a signed checkpoint");
            }
        })?;
        if verdict == Verdict::Advance {
            self.store.persist(origin, &request.note)?;
            *latest = Some(request.checkpoint.clone());
        }
        let line = cosign(&self.key, &request.parsed.text, unix_now())?;
        tracing::debug!(
            origin,
            size = request.checkpoint.size.0,
            ?verdict,
            "cosigned"
        );
        drop(latest);
        Ok(line)
    }

    /// Serves `POST <prefix>/add-checkpoint` on `listener` until `shutdown` resolves.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let prefix = self.config.prefix.clone();
        let max_body_bytes = self.config.max_body_bytes;
        let timeout = self.config.request_timeout;
        let router = crate::http::router(Arc::new(self), &prefix, max_body_bytes, timeout);
        crate::http::serve(listener, router, shutdown).await
    }
}

/// A witness serving on a background task, as [`Witness::start`] returns it.
pub struct Running {
    /// The bound address, key and logs.
    pub started: Started,
    /// `http://<addr><prefix>/add-checkpoint`.
    pub url: String,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<()>>,
}

impl Running {
    /// Stops serving and waits until the witness has released its data folder (it can then be reopened).
    pub async fn stop(self) -> Result<()> {
        let _ = self.stop.send(());
        self.task
            .await
            .map_err(|e| Error::Config(format!("the witness task failed: {e}")))?
    }
}

impl Witness {
    /// Opens a witness and serves it on a background task on `config.listen` (port 0 picks a free port): for
    /// tests and embedders that run witnesses in-process.
    pub async fn start(config: WitnessConfig) -> Result<Running> {
        let prefix = config.prefix.clone();
        let (witness, listener, addr) = bind(config).await?;
        let started = witness.started(addr);
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(witness.run(listener, async {
            let _ = stopped.await;
        }));
        Ok(Running {
            started,
            url: format!("http://{addr}{prefix}/add-checkpoint"),
            stop,
            task,
        })
    }
}

/// Opens the witness and serves it on `config.listen` until `shutdown` resolves; `on_start` learns the bound
/// address and the key first.
pub async fn serve(
    config: WitnessConfig,
    on_start: impl FnOnce(&Started),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let (witness, listener, addr) = bind(config).await?;
    on_start(&witness.started(addr));
    witness.run(listener, shutdown).await
}

/// Opens the witness, then binds its listener.
async fn bind(config: WitnessConfig) -> Result<(Witness, TcpListener, SocketAddr)> {
    let listen = config.listen;
    let witness = Witness::open(config)?;
    let listener = TcpListener::bind(listen)
        .await
        .map_err(io(format!("listening on {listen}")))?;
    let addr = listener
        .local_addr()
        .map_err(io("reading the bound address"))?;
    Ok((witness, listener, addr))
}

/// POSIX seconds now. A clock before 1970 signs time 0 rather than failing: the timestamp is informational.
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
