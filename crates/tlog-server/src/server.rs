//! Assembling and running `tlogd`: open the store, load or create the key, recover, start the sequencer and
//! serve gRPC (with health and reflection) until shutdown, finishing the batch in flight.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tlog_checkpoint::VerifierKey;
use tlog_proto::{FILE_DESCRIPTOR_SET, LogServer};
use tlog_storage::{LogStore, RocksBackend, RocksOptions, RocksStore};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::log::{META_ORIGIN, load_or_create_key, recover};
use crate::reader::{LogReader, ReadLimits};
use crate::scrub::Scrub;
use crate::sequencer::{Sequencer, SequencerConfig};
use crate::service::{LogService, ServiceLimits, WriteTokens};

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
    pub listen: SocketAddr,
    pub sequencer: SequencerConfig,
    pub limits: ServiceLimits,
    pub read: ReadLimits,
    pub rocks: RocksOptions,
    /// Bearer tokens allowed to write; empty = writes open to all.
    pub write_tokens: Vec<String>,
    /// Largest gRPC message accepted or sent.
    pub max_message_bytes: usize,
    /// PEM certificate chain and key for TLS; plaintext when absent.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Re-verify the whole stored log this often in the background (see [`crate::scrub`]); off when `None`.
    pub scrub_interval: Option<Duration>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            data_dir: PathBuf::from("data"),
            origin: None,
            key_file: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 7400)),
            sequencer: SequencerConfig::default(),
            limits: ServiceLimits::default(),
            read: ReadLimits::default(),
            rocks: RocksOptions::default(),
            write_tokens: Vec::new(),
            max_message_bytes: 64 << 20,
            tls: None,
            scrub_interval: None,
        }
    }
}

/// What a started server tells its caller.
#[derive(Clone, Debug)]
pub struct Started {
    pub addr: SocketAddr,
    pub origin: String,
    pub verifier_key: VerifierKey,
    pub tree_size: u64,
    pub created_key: bool,
}

fn random_seed() -> Result<[u8; 32]> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed)
        .map_err(|e| Error::Config(format!("no OS randomness for a new key: {e}")))?;
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
fn incoming_nodelay(
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

/// Runs the server until `shutdown` resolves; `on_start` learns the bound address and identity first.
pub async fn serve(
    config: ServerConfig,
    on_start: impl FnOnce(&Started),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    std::fs::create_dir_all(&config.data_dir).map_err(|source| Error::Io {
        context: format!("creating {}", config.data_dir.display()),
        source,
    })?;
    let store = Arc::new(RocksStore::open(RocksBackend::open(
        config.data_dir.join("db"),
        &config.rocks,
    )?)?);
    let key_path = config
        .key_file
        .clone()
        .unwrap_or_else(|| config.data_dir.join("log.key"));
    let vkey_path = config.data_dir.join("log.vkey");

    let stored_origin = store
        .meta(META_ORIGIN)?
        .map(|o| String::from_utf8_lossy(&o).into_owned());
    let key_origin = match std::fs::read_to_string(&key_path) {
        Ok(text) => Some(
            tlog_checkpoint::SignerKey::parse_private(&text)
                .map_err(|e| {
                    Error::Config(format!(
                        "key file {} is not a signed-note private key: {e}",
                        key_path.display()
                    ))
                })?
                .name()
                .to_string(),
        ),
        Err(_) => None,
    };
    let origin = match (&config.origin, &stored_origin, &key_origin) {
        (Some(o), Some(s), _) if o != s => {
            return Err(Error::Config(format!(
                "--origin {o:?} differs from this log's origin {s:?}; drop --origin or use another --data folder"
            )));
        }
        (Some(o), _, _) => o.clone(),
        (None, Some(s), _) => s.clone(),
        (None, None, Some(k)) => k.clone(),
        (None, None, None) => default_origin()?,
    };
    let (key, created_key) = load_or_create_key(&key_path, &vkey_path, &origin, random_seed)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let recovered = recover(store.as_ref(), &key, clock.as_ref())?;
    // The leaf filter loads in the background (about 5 s per 10M entries); until it is ready, de-duplication and
    // lookups by hash read RocksDB.
    let filter_loader = {
        let store = store.clone();
        std::thread::Builder::new()
            .name("tlog-leaf-filter".into())
            .spawn(move || {
                if let Err(e) = store.load_leaf_filter() {
                    tracing::warn!(error = %e, "loading the leaf filter failed; lookups by hash read RocksDB");
                }
            })
            .map_err(|source| Error::Io {
                context: "starting the leaf filter loader".into(),
                source,
            })?
    };
    let verifier_key = key.verifier();
    let scrub_key = verifier_key.clone();
    let tree_size = recovered.frontier.size().0;

    let sequencer = Sequencer::new(
        store.clone(),
        key,
        clock,
        recovered.frontier,
        recovered.latest,
        config.sequencer.clone(),
    );
    let (handle, task) = sequencer.spawn()?;
    let reader = LogReader::new(
        store.clone(),
        handle.clone(),
        verifier_key.clone(),
        config.read.clone(),
    );
    let service = LogService::new(
        handle,
        reader,
        config.limits.clone(),
        WriteTokens::new(&config.write_tokens),
    );

    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| Error::Io {
            context: format!("listening on {}", config.listen),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| Error::Io {
        context: "reading the bound address".into(),
        source,
    })?;
    on_start(&Started {
        addr,
        origin: origin.clone(),
        verifier_key,
        tree_size,
        created_key,
    });
    tracing::info!(%addr, %origin, tree_size, "serving");

    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<LogServer<LogService<RocksStore>>>()
        .await;
    let scrub = match config.scrub_interval {
        Some(every) => {
            Some(Scrub::spawn(store.clone(), scrub_key, every, health_reporter.clone()).await)
        }
        None => None,
    };
    // Both reflection versions: grpcurl before 1.8.8 (and other older tools) only speak v1alpha.
    let reflection_builder = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_error = |e| Error::Internal(format!("building gRPC reflection: {e}"));
    let reflection = reflection_builder().build_v1().map_err(reflection_error)?;
    let reflection_alpha = reflection_builder()
        .build_v1alpha()
        .map_err(reflection_error)?;
    let log = LogServer::new(service)
        .max_decoding_message_size(config.max_message_bytes)
        .max_encoding_message_size(config.max_message_bytes);

    let mut builder = tonic::transport::Server::builder();
    if let Some((cert, key)) = &config.tls {
        let read = |p: &PathBuf| {
            std::fs::read(p).map_err(|source| Error::Io {
                context: format!("reading TLS file {}", p.display()),
                source,
            })
        };
        let identity = tonic::transport::Identity::from_pem(read(cert)?, read(key)?);
        builder = builder
            .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
            .map_err(|e| Error::Config(format!("TLS: {e}")))?;
    }
    let result = builder
        .add_service(health)
        .add_service(reflection)
        .add_service(reflection_alpha)
        .add_service(log)
        .serve_with_incoming_shutdown(incoming_nodelay(listener), shutdown)
        .await;
    if let Some(scrub) = scrub {
        scrub.stop().await;
    }
    // In-flight requests are done and the service (with its sequencer handles) is dropped: the sequencer writes
    // whatever it still holds and stops.
    tokio::task::spawn_blocking(move || {
        task.join();
        // The loader holds the database open; a restart in this process must find it closed.
        let _ = filter_loader.join();
    })
    .await
    .ok();
    tracing::info!("stopped");
    result.map_err(|e| Error::Internal(format!("gRPC server: {e}")))
}
