//! Assembling and running `tlogd`. [`Server::open`] opens the store, settles the log's origin, loads or creates
//! the key and opens the log; [`Server::run`] serves gRPC (with health and reflection) and, on a second listener,
//! C2SP `tlog-tiles` over HTTP ([`crate::http`]), with JSON and Kubernetes audit ingestion ([`crate::ingest`])
//! and `/metrics` ([`crate::metrics`]), until shutdown, then lets the sequencer finish the batch in flight. [`serve`] does both on the configured addresses. Tests run a server in-process with `Server::open` and
//! `run` on port-0 [`Listeners`].

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use tlog_checkpoint::{SignerKey, VerifierKey};
use tlog_proto::{FILE_DESCRIPTOR_SET, LogServer};
use tlog_storage::{
    DEFAULT_LEAF_FILTER_BYTES, DEFAULT_UPPER_TILE_CACHE_BYTES, LogStore, RocksBackend,
    RocksOptions, RocksStore,
};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_stream::wrappers::TcpListenerStream;
use tonic_health::pb::health_server::HealthServer;
use tonic_health::server::{HealthReporter, HealthService};

use crate::archiving::{ArchiveConfig, ArchiveGate, Archiving};
use crate::datadir;
use crate::error::{ConfigError, Error, Result};
use crate::http::{self, HttpLimits};
use crate::ingest::{self, IngestLimits};
use crate::keyfile;
use crate::log::{self, Appender, LogOptions, LogReader, META_ORIGIN, Shutdown};
use crate::metrics;
use crate::private::{FileMasterKey, KeyWrapper};
use crate::scrub::Scrub;
use crate::service::{LogService, ServiceLimits};
use crate::validate::WriteTokens;
use crate::witnessing::{Witnessing, WitnessingConfig};

/// Where `tlogd` listens by default.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 7400);
/// Where `tlogd` serves C2SP `tlog-tiles` over HTTP by default: the port after gRPC's.
pub const DEFAULT_HTTP_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 7401);
/// Largest gRPC message accepted or sent by default.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 << 20;

/// Everything `tlogd` needs to run.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Folder holding the RocksDB database (`db/`), the key (`log.key`) and the verifier key (`log.vkey`).
    pub data_dir: PathBuf,
    /// The log's origin (C2SP checkpoint origin, also the key name). Required only to create a new log without a
    /// key file; an existing log keeps its own and must not be given another.
    pub origin: Option<String>,
    /// The signing key file (default `<data>/log.key`), created on first run if missing.
    pub key_file: Option<PathBuf>,
    /// Where gRPC is served.
    pub listen: SocketAddr,
    /// Where C2SP `tlog-tiles` (checkpoint, tiles, entry bundles) are served over plain HTTP; off when `None`.
    pub http_listen: Option<SocketAddr>,
    /// Limits of the HTTP listener.
    pub http: HttpLimits,
    /// Limits of JSON and Kubernetes audit ingestion on the HTTP listener.
    pub ingest: IngestLimits,
    /// Witnesses asked to cosign checkpoints, and the quorum a checkpoint needs to be published as witnessed;
    /// none when `None`.
    pub witnessing: Option<WitnessingConfig>,
    /// Archive to S3-compatible object storage (`--archive s3://bucket/prefix`); none when `None`.
    pub archive: Option<ArchiveConfig>,
    /// The log's limits, batching and reads.
    pub log: LogOptions,
    /// Limits of the gRPC calls.
    pub service: ServiceLimits,
    pub rocks: RocksOptions,
    /// Memory budget of the in-memory filter of leaf hashes that answers most de-duplication lookups (default
    /// [`DEFAULT_LEAF_FILTER_BYTES`]): the filter takes all of it, and the more entries it holds, the more lookups
    /// it cannot rule out read RocksDB (about 1.8% at 60M entries in 64 MiB, 8% at 100M).
    pub leaf_filter_bytes: usize,
    /// Memory budget of the full tiles above level 0 kept for proofs (default
    /// [`DEFAULT_UPPER_TILE_CACHE_BYTES`]); 0 reads them from RocksDB every time.
    pub upper_tile_cache_bytes: usize,
    /// Bearer tokens allowed to write; empty = writes open to all.
    pub write_tokens: Vec<String>,
    /// Bearer tokens with their scopes (write, read-private, admin; see docs/private.md). Writes are open only
    /// when neither these nor `write_tokens` hold a write-scoped token.
    pub scoped_tokens: Vec<(Vec<crate::validate::Scope>, String)>,
    /// The master key that wraps private payloads' data keys (default `<data>/master.key`; created on first run,
    /// mode 0600).
    pub master_key_file: Option<PathBuf>,
    /// Largest gRPC message accepted or sent.
    pub max_message_bytes: usize,
    /// PEM certificate chain and key for TLS; plaintext when absent.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Re-verify the whole stored log this often in the background, its result published as the gRPC health of
    /// [`crate::SCRUB_SERVICE`]; off when `None`.
    pub scrub_interval: Option<Duration>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            data_dir: PathBuf::from("data"),
            origin: None,
            key_file: None,
            listen: DEFAULT_LISTEN,
            http_listen: Some(DEFAULT_HTTP_LISTEN),
            http: HttpLimits::default(),
            ingest: IngestLimits::default(),
            witnessing: None,
            archive: None,
            log: LogOptions::default(),
            service: ServiceLimits::default(),
            rocks: RocksOptions::default(),
            leaf_filter_bytes: DEFAULT_LEAF_FILTER_BYTES,
            upper_tile_cache_bytes: DEFAULT_UPPER_TILE_CACHE_BYTES,
            write_tokens: Vec::new(),
            scoped_tokens: Vec::new(),
            master_key_file: None,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            tls: None,
            scrub_interval: None,
        }
    }
}

/// What a started server tells its caller.
#[derive(Clone, Debug)]
pub struct Started {
    /// The gRPC address.
    pub addr: SocketAddr,
    /// The HTTP (tlog-tiles) address, when HTTP is on.
    pub http_addr: Option<SocketAddr>,
    pub origin: String,
    pub verifier_key: VerifierKey,
    pub tree_size: u64,
    pub created_key: bool,
}

fn random_seed() -> Result<[u8; 32]> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).map_err(ConfigError::Randomness)?;
    Ok(seed)
}

/// The origin of a new log when none is configured: unique, and recognisably a local default.
fn default_origin() -> Result<String> {
    let seed = random_seed()?;
    Ok(format!(
        "tlog.localhost/{}",
        seed[..4]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    ))
}

/// Accepted connections with Nagle's algorithm off. gRPC answers are small writes; with Nagle on, each one waits
/// for the client's delayed ACK (~40 ms on Linux) whenever the client has nothing else to send, which capped every
/// request-at-a-time client at ~23 calls/s per connection in the load benchmark (tonic sets TCP_NODELAY only on
/// listeners it binds itself, not on an incoming stream handed to it).
pub(crate) fn incoming_nodelay(
    listener: TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use tokio_stream::StreamExt;
    TcpListenerStream::new(listener).map(|conn| {
        let conn = conn?;
        if let Err(e) = conn.set_nodelay(true) {
            tracing::warn!(error = %e, "could not set TCP_NODELAY on a connection");
        }
        Ok(conn)
    })
}

/// The sockets a server serves on: gRPC, and HTTP unless it is off.
pub struct Listeners {
    pub grpc: TcpListener,
    pub http: Option<TcpListener>,
}

impl Listeners {
    /// Binds `grpc` and, when given, `http` (port 0 picks a free port).
    pub async fn bind(grpc: SocketAddr, http: Option<SocketAddr>) -> Result<Listeners> {
        let bind = |addr: SocketAddr| async move {
            TcpListener::bind(addr).await.map_err(|source| Error::Io {
                context: format!("listening on {addr}"),
                source,
            })
        };
        let grpc = bind(grpc).await?;
        let http = match http {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        Ok(Listeners { grpc, http })
    }

    /// The bound gRPC and HTTP addresses.
    pub fn addrs(&self) -> Result<(SocketAddr, Option<SocketAddr>)> {
        let addr = |l: &TcpListener| {
            l.local_addr().map_err(|source| Error::Io {
                context: "reading the bound address".into(),
                source,
            })
        };
        Ok((addr(&self.grpc)?, self.http.as_ref().map(addr).transpose()?))
    }
}

/// A log opened for serving: the store, the log's handles and its identity, ready to [`run`](Server::run).
pub struct Server {
    config: ServerConfig,
    store: Arc<RocksStore>,
    appender: Appender,
    reader: LogReader<RocksStore>,
    shutdown: Shutdown,
    filter_loader: thread::JoinHandle<()>,
    origin: String,
    verifier_key: VerifierKey,
    tree_size: u64,
    created_key: bool,
    master_key: Arc<dyn KeyWrapper>,
}

impl Server {
    /// Opens the data folder's store and key and the log on them; refuses a store the key does not match.
    pub fn open(config: ServerConfig) -> Result<Server> {
        if let Some(witnessing) = &config.witnessing {
            witnessing.validate().map_err(ConfigError::WitnessPolicy)?;
        }
        std::fs::create_dir_all(&config.data_dir).map_err(|source| Error::Io {
            context: format!("creating {}", config.data_dir.display()),
            source,
        })?;
        let store = Arc::new(
            RocksStore::open(RocksBackend::open(
                config.data_dir.join("db"),
                &config.rocks,
            )?)?
            .with_leaf_filter_bytes(config.leaf_filter_bytes)
            .with_upper_tile_cache_bytes(config.upper_tile_cache_bytes),
        );
        let (key, created_key) = load_key(&config, store.as_ref())?;
        let origin = key.name().to_owned();
        let verifier_key = key.verifier();
        let master_path = config
            .master_key_file
            .clone()
            .unwrap_or_else(|| FileMasterKey::path_in(&config.data_dir));
        let (master, created_master) = FileMasterKey::load_or_create(&master_path)?;
        if created_master {
            tracing::info!(path = %master_path.display(), "created the master key of private payloads");
        }
        let master_key: Arc<dyn KeyWrapper> = Arc::new(master);
        if store.purge_pending()? {
            // An erasure's rows were deleted but the process stopped before their files were rewritten.
            tracing::info!("finishing the purge of an interrupted erasure");
            store.purge_erased()?;
        }
        let mut log_options = config.log.clone();
        log_options.private = Some(master_key.clone());
        let (appender, reader, shutdown) = log::open(store.clone(), key, log_options)?;
        let filter_loader = load_leaf_filter(store.clone())?;
        let tree_size = reader.latest().checkpoint.size.0;
        // The folder's statement of which log it holds; informational, so a failure to write it is only logged.
        let new_log = created_key || tree_size == 0;
        let vkey = verifier_key.to_string();
        if let Err(e) = datadir::write_readme_if_missing(&config.data_dir, &origin, &vkey, new_log)
        {
            let path = datadir::readme_path(&config.data_dir);
            tracing::warn!(error = %e, "could not write {}", path.display());
        }
        Ok(Server {
            config,
            store,
            appender,
            reader,
            shutdown,
            filter_loader,
            origin,
            verifier_key,
            tree_size,
            created_key,
            master_key,
        })
    }

    /// Erases `subject` without serving (`tlogd erase`): appends the erasure through the sequencer, stops the log,
    /// then purges the deleted rows from the store's files. Returns the erasure entry's index and time.
    pub async fn erase(self, subject: &str) -> Result<(u64, u64)> {
        let Server {
            store,
            appender,
            reader,
            shutdown,
            filter_loader,
            ..
        } = self;
        let erased = appender.erase(subject.as_bytes().to_vec()).await;
        drop((appender, reader));
        tokio::task::spawn_blocking(move || {
            shutdown.wait();
            let _ = filter_loader.join();
        })
        .await?;
        let committed = erased?;
        let index = committed.assigned.first().ok_or(Error::NoReceipt)?.index.0;
        tokio::task::spawn_blocking(move || store.purge_erased()).await??;
        Ok((index, committed.erased_at.unwrap_or_default()))
    }

    /// What a caller learns once the server listens on `listeners`.
    pub fn started(&self, listeners: &Listeners) -> Result<Started> {
        let (addr, http_addr) = listeners.addrs()?;
        Ok(Started {
            addr,
            http_addr,
            origin: self.origin.clone(),
            verifier_key: self.verifier_key.clone(),
            tree_size: self.tree_size,
            created_key: self.created_key,
        })
    }

    /// Serves the log on `listeners` until `shutdown` resolves (or the gRPC transport fails), then waits for the
    /// sequencer to write what it still holds.
    pub async fn run(
        self,
        listeners: Listeners,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let Server {
            config,
            store,
            appender,
            reader,
            shutdown: log_shutdown,
            filter_loader,
            verifier_key,
            master_key,
            ..
        } = self;
        let stop = Stop::on(shutdown);
        let saving_store = store.clone();
        let metrics = config.log.metrics.clone();
        let tokens = WriteTokens::new(&config.write_tokens)
            .merged(WriteTokens::scoped(config.scoped_tokens.clone()));
        let witnessing = match &config.witnessing {
            Some(witnesses) => Some(
                Witnessing::spawn_with_metrics(
                    reader.clone(),
                    store.clone(),
                    verifier_key.clone(),
                    witnesses.clone(),
                    metrics.clone(),
                )
                .map_err(ConfigError::Witnessing)?,
            ),
            None => None,
        };
        let witnessed = witnessing.as_ref().map(Witnessing::subscribe);
        let archiving = match &config.archive {
            Some(archive) => Some((
                Archiving::spawn(
                    reader.clone(),
                    witnessed.clone(),
                    verifier_key.clone(),
                    archive.clone(),
                )
                .map_err(ConfigError::Archive)?,
                archive.max_lag,
            )),
            None => None,
        };
        let http = listeners.http.map(|listener| {
            if config.log.max_entry_bytes > tlog_core::tiles::MAX_BUNDLE_ENTRY_BYTES {
                tracing::warn!(
                    max_entry_bytes = config.log.max_entry_bytes,
                    "entries longer than {} bytes cannot be served in tlog-tiles entry bundles",
                    tlog_core::tiles::MAX_BUNDLE_ENTRY_BYTES
                );
            }
            let router = http::router(reader.clone(), witnessed.clone(), &config.http)
                .merge(metrics::router(
                    metrics.clone(),
                    reader.clone(),
                    witnessed.clone(),
                    config.log.clock.clone(),
                ))
                .merge(ingest::router(
                    appender.clone(),
                    reader.clone(),
                    tokens.clone(),
                    &config.ingest,
                ));
            tokio::spawn(http::serve(listener, router, stop.stopped()))
        });
        let mut service = LogService::new(appender, reader, config.service.clone(), tokens)?
            .with_metrics(metrics.clone())
            .with_private(master_key);
        if let Some(witnessed) = witnessed {
            service = service.with_witnessed(witnessed);
        }
        if let Some((archiving, max_lag)) = &archiving {
            service = service.with_archive(ArchiveGate::new(archiving.subscribe(), *max_lag));
        }
        let health_reporter = serving_health::<RocksStore>().await;
        let scrub = match config.scrub_interval {
            Some(every) => Some(
                Scrub::spawn(store, verifier_key, every, health_reporter.clone(), metrics).await,
            ),
            None => None,
        };
        let result = serve_grpc(
            listeners.grpc,
            service,
            health_reporter,
            (config.tls.as_ref(), config.max_message_bytes),
            stop,
            http,
        )
        .await;
        if let Some(scrub) = scrub {
            scrub.stop().await;
        }
        if let Some(witnessing) = witnessing {
            witnessing.stop().await;
        }
        if let Some((archiving, _)) = archiving {
            archiving.stop().await;
        }
        // In-flight requests are done and the service (with its appenders) is dropped: the sequencer writes
        // whatever it still holds and stops.
        tokio::task::spawn_blocking(move || {
            log_shutdown.wait();
            // The loader holds the database open; a restart in this process must find it closed.
            let _ = filter_loader.join();
            // No more appends: the next start loads this instead of scanning the whole leaf index.
            let started = std::time::Instant::now();
            match saving_store.save_leaf_filter() {
                Ok(saved) => tracing::info!(
                    saved,
                    secs = started.elapsed().as_secs_f64(),
                    "saved the leaf filter"
                ),
                Err(e) => tracing::warn!(error = %e, "could not save the leaf filter; the next start rebuilds it"),
            }
        })
        .await
        .ok();
        tracing::info!("stopped");
        result
    }
}

/// Runs the server on `config.listen` (and `config.http_listen`) until `shutdown` resolves; `on_start` learns the
/// bound addresses and identity first.
pub async fn serve(
    config: ServerConfig,
    on_start: impl FnOnce(&Started),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let (listen, http_listen) = (config.listen, config.http_listen);
    let server = Server::open(config)?;
    let listeners = Listeners::bind(listen, http_listen).await?;
    let started = server.started(&listeners)?;
    on_start(&started);
    tracing::info!(
        addr = %started.addr,
        http = ?started.http_addr,
        origin = %started.origin,
        tree_size = started.tree_size,
        "serving"
    );
    server.run(listeners, shutdown).await
}

/// The log's key: the configured or default key file, parsed once, or a new key for the log's origin. The origin
/// is the store's when it has one (a different `--origin` is refused), else the configured one, else the key
/// file's, else a new local default.
fn load_key<S: LogStore>(config: &ServerConfig, store: &S) -> Result<(SignerKey, bool)> {
    let key_path = config
        .key_file
        .clone()
        .unwrap_or_else(|| config.data_dir.join("log.key"));
    let existing = keyfile::read(&key_path)?;
    let stored_origin = store
        .meta(META_ORIGIN)?
        .map(|o| String::from_utf8_lossy(&o).into_owned());
    let origin = match (&config.origin, stored_origin, &existing) {
        (Some(given), Some(stored), _) if *given != stored => {
            return Err(ConfigError::OriginMismatch {
                given: given.clone(),
                stored,
            }
            .into());
        }
        (Some(given), _, _) => given.clone(),
        (None, Some(stored), _) => stored,
        (None, None, Some(key)) => key.name().to_owned(),
        (None, None, None) => default_origin()?,
    };
    let (key, created) = match existing {
        Some(key) => {
            keyfile::check(&key_path, &key, &origin)?;
            (key, false)
        }
        None => (keyfile::create(&key_path, &origin, random_seed()?)?, true),
    };
    keyfile::write_verifier(&config.data_dir.join("log.vkey"), &key)?;
    Ok((key, created))
}

/// Loads the leaf filter in the background (the one saved at the last clean shutdown in a moment; otherwise a scan
/// of the leaf index, about 5 s per 10M entries); until it is ready, de-duplication and lookups by hash read
/// RocksDB.
fn load_leaf_filter(store: Arc<RocksStore>) -> Result<thread::JoinHandle<()>> {
    thread::Builder::new()
        .name("tlog-leaf-filter".into())
        .spawn(move || {
            if let Err(e) = store.load_leaf_filter() {
                tracing::warn!(error = %e, "loading the leaf filter failed; lookups by hash read RocksDB");
            }
        })
        .map_err(|source| Error::Io {
            context: "starting the leaf filter loader".into(),
            source,
        })
}

type Reflection<T> = tonic_reflection::server::v1::ServerReflectionServer<T>;
type ReflectionAlpha<T> = tonic_reflection::server::v1alpha::ServerReflectionServer<T>;

/// One shutdown for both listeners: `shutdown`, or the end of gRPC (shut down or failed), stops HTTP too.
pub(crate) struct Stop {
    stop: Arc<watch::Sender<bool>>,
    signal: tokio::task::JoinHandle<()>,
}

impl Stop {
    pub(crate) fn on(shutdown: impl Future<Output = ()> + Send + 'static) -> Stop {
        let stop = Arc::new(watch::channel(false).0);
        let signal = {
            let stop = stop.clone();
            tokio::spawn(async move {
                shutdown.await;
                stop.send_replace(true);
            })
        };
        Stop { stop, signal }
    }

    /// Resolves once stopping has begun.
    pub(crate) fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut stopped = self.stop.subscribe();
        async move {
            let _ = stopped.wait_for(|&s| s).await;
        }
    }

    fn finish(self) {
        self.stop.send_replace(true);
        self.signal.abort();
    }
}

/// A health service that reports the log service over `S` as serving.
pub(crate) async fn serving_health<S: LogStore>() -> HealthReporter {
    let reporter = HealthReporter::new();
    reporter.set_serving::<LogServer<LogService<S>>>().await;
    reporter
}

/// Serves `service` with health and reflection on the gRPC listener until `stop` (TLS and message limit as
/// `(tls, max_message_bytes)` say), then stops the HTTP task and waits for it: the HTTP handlers hold the store
/// open, so the caller may close it only after this returns. How both a log and a read replica serve.
pub(crate) async fn serve_grpc<S: LogStore>(
    grpc: TcpListener,
    service: LogService<S>,
    health: HealthReporter,
    (tls, max_message_bytes): (Option<&(PathBuf, PathBuf)>, usize),
    stop: Stop,
    http: Option<tokio::task::JoinHandle<Result<()>>>,
) -> Result<()> {
    let stopped = stop.stopped();
    let result = async {
        let (reflection, reflection_alpha) = reflection()?;
        let log = LogServer::new(service)
            .max_decoding_message_size(max_message_bytes)
            .max_encoding_message_size(max_message_bytes);
        transport(tls)?
            .add_service(HealthServer::new(HealthService::from_health_reporter(
                health,
            )))
            .add_service(reflection)
            .add_service(reflection_alpha)
            .add_service(log)
            .serve_with_incoming_shutdown(incoming_nodelay(grpc), stopped)
            .await
            .map_err(Error::Serve)
    }
    .await;
    stop.finish();
    let http_result = match http {
        Some(task) => task.await.map_err(Error::Task).and_then(|r| r),
        None => Ok(()),
    };
    result.and(http_result)
}

/// Both reflection versions: grpcurl before 1.8.8 (and other older tools) only speak v1alpha.
#[allow(clippy::type_complexity)]
pub(crate) fn reflection() -> Result<(
    Reflection<impl tonic_reflection::server::v1::ServerReflection>,
    ReflectionAlpha<impl tonic_reflection::server::v1alpha::ServerReflection>,
)> {
    let builder = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    Ok((builder().build_v1()?, builder().build_v1alpha()?))
}

/// The gRPC transport, with TLS when a certificate chain and key are configured.
pub(crate) fn transport(tls: Option<&(PathBuf, PathBuf)>) -> Result<tonic::transport::Server> {
    let builder = tonic::transport::Server::builder();
    let Some((cert, key)) = tls else {
        return Ok(builder);
    };
    let read = |p: &Path| {
        std::fs::read(p).map_err(|source| Error::Io {
            context: format!("reading TLS file {}", p.display()),
            source,
        })
    };
    let identity = tonic::transport::Identity::from_pem(read(cert)?, read(key)?);
    Ok(builder
        .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
        .map_err(ConfigError::Tls)?)
}
