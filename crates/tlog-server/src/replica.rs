//! Read replicas (issue 14): `tlogd --replica-of s3://bucket/prefix` serves the read API of a log from its
//! archive, with no data folder of its own. Any number of replicas can run: they only read the bucket.
//!
//! Layers: [`ReplicaStore`] is a read-only [`LogStore`] over the archive's tiles and bundles, so the same
//! [`LogReader`], gRPC service and HTTP routes serve it unchanged; the [`Follower`] task owns what the replica
//! serves (its adopted checkpoint) and is the one place that advances it; [`serve`] wires both to the listeners.
//!
//! - **Never a fork.** The follower polls the archive's `checkpoint` object every
//!   [`ReplicaConfig::poll_interval`] and adopts a newer one only when it verifies with the log's key *and* a
//!   consistency proof, built from the archive's tiles of the new tree, links it to the checkpoint adopted
//!   before. Anything else (a bad signature, a smaller tree, another root at a size, a failed proof) is refused,
//!   logged and counted in [`ReplicaStatus`], and the replica keeps serving what it had. The first checkpoint is
//!   trusted on its signature, after checking that the archive's tiles give its root.
//! - **Bounded cache.** Full tiles and bundles never change, so they are kept in one LRU of at most
//!   [`ReplicaConfig::cache_bytes`] ([`DEFAULT_CACHE_BYTES`]); hash tiles are kept with their interior rows
//!   computed once, so a proof node is a lookup. The partial tiles of the adopted tree are kept beside it (at most
//!   one per level and one bundle) until the next adoption.
//! - **Blocking bridge.** The reader's methods are blocking and run on the blocking pool (the service and HTTP
//!   routes hand them there); the store fetches from S3 with [`tokio::runtime::Handle::block_on`] on that
//!   thread, which drives the object store's future with the runtime's I/O driver without a second thread
//!   hand-off. Reads within [`ReadTier::Memory`] (tried first on the async workers) answer from the cache only,
//!   so `block_on` is never reached from a worker.
//! - **What a replica does not serve.** Writes: every submission gets `FAILED_PRECONDITION` ("read replica of
//!   s3://...; submit to the primary"). Inclusion proofs by leaf hash: the archive has no index by hash and
//!   building one means reading every level-0 tile, so they get `UNIMPLEMENTED` (ask by index, or the primary).
//!   Checkpoints by size: only those the replica adopted (the archive publishes one at most every archive
//!   interval); consistency proofs are served from any old size, since the client holds the old checkpoint.
//!
//! Tiles and bundles fetched for serving are not checked one by one against the checkpoint: every answer a
//! client gets is checked by the client against a signed checkpoint, and a bucket that serves a wrong tile makes
//! that check fail rather than produce a fork. The tiles of each adopted tree's right edge are checked by the
//! consistency proof that adopts it.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use tlog_archive::ArchiveTiles;
use tlog_archive::s3::{S3Config, S3Location};
use tlog_checkpoint::{SignedCheckpoint, VerifierKey};
use tlog_client::{ClientError, TileClient, TileSource};
use tlog_core::tiles::{TILE_WIDTH, Tile, TileKind};
use tlog_core::{HASH_SIZE, Hash, LeafIndex, NodeId, TreeSize, node_hash};
use tlog_storage::tile::{NodeSlot, TileId, extend_tile, read_node};
use tlog_storage::{AppendBatch, BackendError, BackendErrorKind, LogStore, ReadTier, StoreError};
use tokio::sync::watch;

use crate::error::{ConfigError, Result};
use crate::http::{self, HttpLimits};
use crate::log::{Appender, LogReader, ReadLimits};
use crate::metrics::{self, Metrics};
use crate::server::{Listeners, Stop, serve_grpc, serving_health};
use crate::service::{LogService, ServiceLimits};
use crate::validate::WriteTokens;

/// Bytes of tiles and bundles a replica caches by default (full hash tiles with their interior rows are about
/// 16 KiB; a bundle is its entries).
pub const DEFAULT_CACHE_BYTES: u64 = 256 << 20;
/// How often a replica reads the archive's checkpoint by default.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(2);
/// Adopted checkpoints a replica keeps by default (served by size, and as the old end of proofs).
pub const DEFAULT_KEPT_CHECKPOINTS: usize = 4096;

/// What a replica reads and how it serves.
#[derive(Clone, Debug)]
pub struct ReplicaConfig {
    /// The primary's archive.
    pub location: S3Location,
    /// Endpoint, region and credentials (the AWS environment, as for `--archive`).
    pub s3: S3Config,
    /// The log's verifier key: every adopted checkpoint must verify with it.
    pub key: VerifierKey,
    /// How often the archive's checkpoint is read.
    pub poll_interval: Duration,
    /// Most bytes of full tiles and bundles cached.
    pub cache_bytes: u64,
    /// Adopted checkpoints kept.
    pub kept_checkpoints: usize,
    /// Where gRPC is served.
    pub listen: SocketAddr,
    /// Where C2SP tlog-tiles (and the explorer, `/metrics`) are served; off when `None`.
    pub http_listen: Option<SocketAddr>,
    pub http: HttpLimits,
    pub service: ServiceLimits,
    pub read: ReadLimits,
    pub max_message_bytes: usize,
    /// PEM certificate chain and key for TLS; plaintext when absent.
    pub tls: Option<(PathBuf, PathBuf)>,
}

impl ReplicaConfig {
    /// A replica of the archive at `location` of the log signed by `key`, with the default poll interval, cache
    /// and limits, on the default addresses.
    pub fn new(location: S3Location, s3: S3Config, key: VerifierKey) -> Self {
        ReplicaConfig {
            location,
            s3,
            key,
            poll_interval: DEFAULT_POLL_INTERVAL,
            cache_bytes: DEFAULT_CACHE_BYTES,
            kept_checkpoints: DEFAULT_KEPT_CHECKPOINTS,
            listen: crate::server::DEFAULT_LISTEN,
            http_listen: Some(crate::server::DEFAULT_HTTP_LISTEN),
            http: HttpLimits::default(),
            service: ServiceLimits::default(),
            read: ReadLimits::default(),
            max_message_bytes: crate::server::DEFAULT_MAX_MESSAGE_BYTES,
            tls: None,
        }
    }
}

/// What the follower has done, for status outputs and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplicaStatus {
    /// The size of the adopted checkpoint.
    pub size: u64,
    /// Checkpoints adopted since start (the first one included).
    pub adopted: u64,
    /// Archive checkpoints refused (bad signature, smaller tree, another root, failed consistency proof).
    pub refused: u64,
    /// Why the last one was refused.
    pub last_refusal: Option<String>,
}

/// The cache's key: a full tile or bundle (partial ones are kept apart, see [`Current`]).
type Key = Tile;

/// A tile or bundle as the store keeps it.
enum Cached {
    /// A hash tile with its interior rows (the storage crate's stored-tile layout), so that every node under it is
    /// a lookup.
    Hashes(Vec<u8>),
    /// A bundle's entries.
    Entries(Vec<Vec<u8>>),
}

impl Cached {
    fn bytes(&self) -> u64 {
        match self {
            Cached::Hashes(stored) => stored.len() as u64,
            Cached::Entries(entries) => entries.iter().map(|e| e.len() as u64 + 24).sum(),
        }
    }
}

/// Least recently used full tiles and bundles, bounded in bytes.
struct Lru {
    limit: u64,
    bytes: u64,
    tick: u64,
    entries: HashMap<Key, (Arc<Cached>, u64)>,
    order: BTreeMap<u64, Key>,
}

impl Lru {
    fn new(limit: u64) -> Self {
        Lru {
            limit,
            bytes: 0,
            tick: 0,
            entries: HashMap::new(),
            order: BTreeMap::new(),
        }
    }

    fn get(&mut self, key: &Key) -> Option<Arc<Cached>> {
        self.tick += 1;
        let (value, used) = self.entries.get_mut(key)?;
        self.order.remove(used);
        *used = self.tick;
        self.order.insert(self.tick, *key);
        Some(value.clone())
    }

    fn put(&mut self, key: Key, value: Arc<Cached>) {
        let size = value.bytes();
        if size > self.limit {
            return;
        }
        self.tick += 1;
        if let Some((old, used)) = self.entries.insert(key, (value, self.tick)) {
            self.order.remove(&used);
            self.bytes -= old.bytes();
        }
        self.order.insert(self.tick, key);
        self.bytes += size;
        while self.bytes > self.limit {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            if let Some((old, _)) = self.entries.remove(&oldest) {
                self.bytes -= old.bytes();
            }
        }
    }
}

/// The adopted tree: its checkpoint, those adopted before it, and its partial tiles.
struct Current {
    size: u64,
    note: Vec<u8>,
    checkpoints: BTreeMap<u64, Vec<u8>>,
    /// Partial tiles and bundle of this tree, by their coordinates at its width; cleared at each adoption.
    partials: HashMap<Tile, Arc<Cached>>,
}

/// A read-only [`LogStore`] over a log's archive (see the [module documentation](self)).
pub struct ReplicaStore {
    tiles: ArchiveTiles,
    runtime: tokio::runtime::Handle,
    kept_checkpoints: usize,
    current: RwLock<Current>,
    cache: Mutex<Lru>,
}

fn unsupported(what: &str) -> StoreError {
    StoreError::Unsupported(what.to_owned())
}

fn archive_failed(tile: &Tile, e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(BackendError::new(
        BackendErrorKind::Io,
        format!("archive {}: {e}", tile.path()),
    ))
}

fn bad_object(tile: &Tile, e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(BackendError::new(
        BackendErrorKind::Corruption,
        format!("archive {}: {e}", tile.path()),
    ))
}

/// A hash tile's stored layout: its hashes, then each interior row hashed from the one below.
fn with_interior_rows(tile: &Tile, level: u8, hashes: Vec<Hash>) -> Result<Vec<u8>, StoreError> {
    let mut nodes = Vec::with_capacity(hashes.len() * 2);
    let mut row = hashes;
    for r in 0..usize::from(tlog_storage::tile::TILE_HEIGHT) {
        nodes.extend(row.iter().enumerate().map(|(offset, h)| (r, offset, *h)));
        row = row
            .chunks_exact(2)
            .map(|pair| node_hash(&pair[0], &pair[1]))
            .collect();
    }
    let id = TileId {
        level,
        index: tile.index,
    };
    extend_tile(id, &[], &nodes)
}

impl ReplicaStore {
    /// A store over `tiles` serving the tree of `checkpoint` (verified by the caller), fetching from S3 on
    /// `runtime`, caching at most `cache_bytes` of full tiles and bundles.
    pub fn new(
        tiles: ArchiveTiles,
        checkpoint: &SignedCheckpoint,
        runtime: tokio::runtime::Handle,
        cache_bytes: u64,
        kept_checkpoints: usize,
    ) -> Self {
        let size = checkpoint.checkpoint.size.0;
        let note = checkpoint.note.clone().into_bytes();
        ReplicaStore {
            tiles,
            runtime,
            kept_checkpoints: kept_checkpoints.max(1),
            current: RwLock::new(Current {
                size,
                checkpoints: BTreeMap::from([(size, note.clone())]),
                note,
                partials: HashMap::new(),
            }),
            cache: Mutex::new(Lru::new(cache_bytes)),
        }
    }

    /// Serves the tree of `checkpoint` from now on. Only the follower calls this, after verifying it.
    fn adopt(&self, checkpoint: &SignedCheckpoint) {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        current.size = checkpoint.checkpoint.size.0;
        current.note = checkpoint.note.clone().into_bytes();
        let (size, note) = (current.size, current.note.clone());
        current.checkpoints.insert(size, note);
        while current.checkpoints.len() > self.kept_checkpoints {
            current.checkpoints.pop_first();
        }
        current.partials.clear();
    }

    /// Bytes of full tiles and bundles in the cache (at most the configured limit).
    pub fn cached_bytes(&self) -> u64 {
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .bytes
    }

    fn size(&self) -> u64 {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .size
    }

    /// `tile` (at its width in the adopted tree) from the cache or, within [`ReadTier::Any`], the archive;
    /// `None` when it is not cached and `tier` is [`ReadTier::Memory`].
    fn get(&self, tile: Tile, tier: ReadTier) -> Result<Option<Arc<Cached>>, StoreError> {
        let cached = if tile.is_full() {
            self.cache
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&tile)
        } else {
            let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
            current.partials.get(&tile).cloned()
        };
        if cached.is_some() || tier == ReadTier::Memory {
            return Ok(cached);
        }
        let body = self
            .runtime
            .block_on(self.tiles.fetch(&tile))
            .map_err(|e| archive_failed(&tile, e))?;
        let value = Arc::new(match tile.kind {
            TileKind::Hashes(level) => {
                let hashes = tile.parse_hashes(&body).map_err(|e| bad_object(&tile, e))?;
                Cached::Hashes(with_interior_rows(&tile, level, hashes)?)
            }
            TileKind::Entries => Cached::Entries(
                tile.parse_entries(&body)
                    .map_err(|e| bad_object(&tile, e))?
                    .into_iter()
                    .map(<[u8]>::to_vec)
                    .collect(),
            ),
        });
        if tile.is_full() {
            self.cache
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .put(tile, value.clone());
        } else {
            let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
            // A tile of a tree adopted meanwhile is not this tree's partial: not kept.
            if Some(tile) == tile_at(tile.kind, tile.index, TreeSize(current.size)) {
                current.partials.insert(tile, value.clone());
            }
        }
        Ok(Some(value))
    }
}

/// `Tile::hashes_at` / `Tile::entries_at` by kind.
fn tile_at(kind: TileKind, index: u64, size: TreeSize) -> Option<Tile> {
    match kind {
        TileKind::Hashes(level) => Tile::hashes_at(level, index, size),
        TileKind::Entries => Tile::entries_at(index, size),
    }
}

impl LogStore for ReplicaStore {
    fn tree_size(&self) -> Result<TreeSize, StoreError> {
        Ok(TreeSize(self.size()))
    }

    fn append(&self, _batch: &AppendBatch) -> Result<(), StoreError> {
        Err(unsupported("a read replica takes no writes"))
    }

    fn entries(&self, start: LeafIndex, end: LeafIndex) -> Result<Vec<Vec<u8>>, StoreError> {
        let size = TreeSize(self.size());
        if start.0 > end.0 || end.0 > size.0 {
            return Err(StoreError::OutOfRange(format!(
                "entries [{}, {}) in a tree of {}",
                start.0, end.0, size.0
            )));
        }
        let mut out = Vec::with_capacity((end.0 - start.0) as usize);
        let mut at = start.0;
        while at < end.0 {
            let index = at / TILE_WIDTH;
            let tile = Tile::entries_at(index, size)
                .ok_or_else(|| StoreError::OutOfRange(format!("bundle {index}")))?;
            let Some(bundle) = self.get(tile, ReadTier::Any)? else {
                unreachable!("ReadTier::Any always answers");
            };
            let Cached::Entries(entries) = &*bundle else {
                unreachable!("an entries tile caches entries");
            };
            let from = (at % TILE_WIDTH) as usize;
            let to = ((end.0 - index * TILE_WIDTH).min(TILE_WIDTH)) as usize;
            out.extend(entries[from..to].iter().cloned());
            at = index * TILE_WIDTH + to as u64;
        }
        Ok(out)
    }

    fn nodes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, StoreError> {
        self.nodes_in(ids, ReadTier::Any)
            .map(|nodes| nodes.unwrap_or_default())
    }

    fn nodes_in(&self, ids: &[NodeId], tier: ReadTier) -> Result<Option<Vec<Hash>>, StoreError> {
        let size = TreeSize(self.size());
        let mut tiles: HashMap<TileId, Arc<Cached>> = HashMap::new();
        let mut out = Vec::with_capacity(ids.len());
        for &id in ids {
            if id.end() > size.0 {
                return Err(StoreError::OutOfRange(format!(
                    "node at level {} index {} is not complete in a tree of {}",
                    id.level, id.index, size.0
                )));
            }
            let slot = NodeSlot::of(id);
            let stored = match tiles.get(&slot.tile) {
                Some(stored) => stored.clone(),
                None => {
                    let tile = Tile::hashes_at(slot.tile.level, slot.tile.index, size)
                        .ok_or(StoreError::MissingNode(id))?;
                    let Some(stored) = self.get(tile, tier)? else {
                        return Ok(None);
                    };
                    tiles.insert(slot.tile, stored.clone());
                    stored
                }
            };
            let Cached::Hashes(stored) = &*stored else {
                unreachable!("a hash tile caches hashes");
            };
            out.push(read_node(stored, &slot)?.ok_or(StoreError::MissingNode(id))?);
        }
        Ok(Some(out))
    }

    fn leaf_indices(&self, _leaf_hashes: &[Hash]) -> Result<Vec<Option<LeafIndex>>, StoreError> {
        Err(unsupported(
            "a read replica has no index by leaf hash (the archive has none): ask by leaf index, or ask the primary",
        ))
    }

    fn leaf_indices_in(
        &self,
        leaf_hashes: &[Hash],
        _tier: ReadTier,
    ) -> Result<Option<Vec<Option<LeafIndex>>>, StoreError> {
        self.leaf_indices(leaf_hashes).map(Some)
    }

    fn checkpoint(&self, size: TreeSize) -> Result<Option<Vec<u8>>, StoreError> {
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        Ok(current.checkpoints.get(&size.0).cloned())
    }

    fn latest_checkpoint(&self) -> Result<Option<(TreeSize, Vec<u8>)>, StoreError> {
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        Ok(Some((TreeSize(current.size), current.note.clone())))
    }

    fn checkpoints_from(
        &self,
        from: TreeSize,
        limit: usize,
    ) -> Result<Vec<(TreeSize, Vec<u8>)>, StoreError> {
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        Ok(current
            .checkpoints
            .range(from.0..)
            .take(limit)
            .map(|(size, note)| (TreeSize(*size), note.clone()))
            .collect())
    }

    fn tile(&self, level: u8, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(tile) = Tile::hashes_at(level, index, TreeSize(self.size())) else {
            return Ok(None);
        };
        let Some(stored) = self.get(tile, ReadTier::Any)? else {
            unreachable!("ReadTier::Any always answers");
        };
        let Cached::Hashes(stored) = &*stored else {
            unreachable!("a hash tile caches hashes");
        };
        Ok(Some(stored[..usize::from(tile.width) * HASH_SIZE].to_vec()))
    }

    fn meta(&self, _key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(None)
    }

    fn set_meta(&self, _key: &str, _value: &[u8]) -> Result<(), StoreError> {
        Err(unsupported("a read replica takes no writes"))
    }

    // Private payloads never leave the primary (the archive holds only commitments).
    fn subject_key(&self, _subject: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Err(unsupported(
            "a read replica holds no private payloads: read them from the primary",
        ))
    }

    fn payload(&self, _subject: &[u8], _index: LeafIndex) -> Result<Option<Vec<u8>>, StoreError> {
        Err(unsupported(
            "a read replica holds no private payloads: read them from the primary",
        ))
    }

    fn purge_erased(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn purge_pending(&self) -> Result<bool, StoreError> {
        Ok(false)
    }
}

/// The task that follows the archive's checkpoint: the one owner of what the replica serves.
pub struct Follower {
    client: TileClient<ArchiveTiles>,
    store: Arc<ReplicaStore>,
    latest: watch::Sender<Arc<SignedCheckpoint>>,
    status: watch::Sender<ReplicaStatus>,
    location: String,
}

impl Follower {
    /// Reads the archive's checkpoint once and adopts it: what a replica serves first.
    async fn first(client: &TileClient<ArchiveTiles>, location: &str) -> Result<SignedCheckpoint> {
        let failed = |e: ClientError| {
            ConfigError::Replica(format!("the archived checkpoint of {location}: {e}"))
        };
        let checkpoint = client.checkpoint().await.map_err(failed)?;
        // The tiles must give the signed root: an archive whose tiles do not is not served at all.
        client
            .root_at(checkpoint.checkpoint.size, &checkpoint)
            .await
            .map_err(failed)?;
        Ok(checkpoint)
    }

    /// Reads the archive's checkpoint and adopts it if it verifies and extends the adopted one.
    async fn poll(&self) {
        let adopted = self.latest.borrow().clone();
        let outcome = match self.client.checkpoint().await {
            Err(ClientError::TileNotFound { .. } | ClientError::Source { .. }) => {
                // The store unreachable (or the object briefly absent): try again at the next poll.
                return;
            }
            Err(e) => Err(format!("it does not verify with the log's key: {e}")),
            Ok(new) => self.check(&adopted, new).await,
        };
        match outcome {
            Ok(None) => {}
            Ok(Some(new)) => {
                tracing::info!(
                    size = new.checkpoint.size.0,
                    "adopted the archive's checkpoint"
                );
                self.store.adopt(&new);
                let size = new.checkpoint.size.0;
                self.latest.send_replace(Arc::new(new));
                self.status.send_modify(|s| {
                    s.size = size;
                    s.adopted += 1;
                });
            }
            Err(why) => {
                tracing::error!(
                    archive = %self.location,
                    adopted = adopted.checkpoint.size.0,
                    "refused the archive's checkpoint: {why}"
                );
                self.status.send_modify(|s| {
                    s.refused += 1;
                    s.last_refusal = Some(why);
                });
            }
        }
    }

    /// `Ok(Some)` a checkpoint to adopt, `Ok(None)` nothing new, `Err` why `new` is refused.
    async fn check(
        &self,
        adopted: &SignedCheckpoint,
        new: SignedCheckpoint,
    ) -> Result<Option<SignedCheckpoint>, String> {
        let (old, now) = (&adopted.checkpoint, &new.checkpoint);
        if now.size < old.size {
            return Err(format!(
                "its tree ({}) is smaller than the adopted one ({})",
                now.size.0, old.size.0
            ));
        }
        if now.size == old.size {
            if now.root != old.root {
                return Err(format!(
                    "fork: another root ({}) for the adopted size {} (root {})",
                    now.root, old.size.0, old.root
                ));
            }
            return Ok(None);
        }
        match self.client.prove_consistency(adopted, &new).await {
            Ok(_) => Ok(Some(new)),
            Err(e) => Err(format!(
                "no consistency from the adopted size {}: {e}",
                old.size.0
            )),
        }
    }

    async fn run(self, interval: Duration, mut stop: watch::Receiver<bool>) {
        loop {
            let stopping = tokio::select! {
                // Stopped, or the replica (the sender) is gone.
                _ = stop.wait_for(|&s| s) => true,
                () = tokio::time::sleep(interval) => false,
            };
            if stopping {
                return;
            }
            self.poll().await;
        }
    }
}

/// A replica opened on its archive: the store, the reader over it, and the follower, ready to serve.
pub struct Replica {
    store: Arc<ReplicaStore>,
    reader: LogReader<ReplicaStore>,
    appender: Appender,
    status: watch::Receiver<ReplicaStatus>,
    stop: watch::Sender<bool>,
    follower: tokio::task::JoinHandle<()>,
    config: ReplicaConfig,
}

impl Replica {
    /// Reads and checks the archive's checkpoint, and starts following the archive.
    pub async fn open(config: ReplicaConfig) -> Result<Replica> {
        let location = config.location.to_string();
        let object_store = tlog_archive::s3::object_store(&config.s3, &config.location.bucket)
            .map_err(ConfigError::Archive)?;
        let tiles = ArchiveTiles::new(object_store, &config.location.prefix);
        let client = TileClient::new(tiles.clone(), config.key.clone());
        let first = Follower::first(&client, &location).await?;
        let store = Arc::new(ReplicaStore::new(
            tiles,
            &first,
            tokio::runtime::Handle::current(),
            config.cache_bytes,
            config.kept_checkpoints,
        ));
        let size = first.checkpoint.size.0;
        let (latest, latest_rx) = watch::channel(Arc::new(first));
        let (status, status_rx) = watch::channel(ReplicaStatus {
            size,
            adopted: 1,
            ..ReplicaStatus::default()
        });
        let mut read = config.read.clone();
        read.consistency_from_any_size = true;
        let reader = LogReader::new(store.clone(), latest_rx.clone(), config.key.clone(), read);
        let appender = Appender::read_only(latest_rx, &location);
        let follower = Follower {
            client,
            store: store.clone(),
            latest,
            status,
            location,
        };
        let (stop, stop_rx) = watch::channel(false);
        let follower = tokio::spawn(follower.run(config.poll_interval, stop_rx));
        Ok(Replica {
            store,
            reader,
            appender,
            status: status_rx,
            stop,
            follower,
            config,
        })
    }

    /// The reader serving the replica.
    pub fn reader(&self) -> &LogReader<ReplicaStore> {
        &self.reader
    }

    /// The store over the archive.
    pub fn store(&self) -> &Arc<ReplicaStore> {
        &self.store
    }

    /// Sees every change of the follower's status.
    pub fn status(&self) -> watch::Receiver<ReplicaStatus> {
        self.status.clone()
    }

    /// Serves the replica on `listeners` until `shutdown` resolves, then stops following.
    pub async fn run(
        self,
        listeners: Listeners,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let Replica {
            reader,
            appender,
            stop,
            follower,
            config,
            ..
        } = self;
        let halt = Stop::on(shutdown);
        let metrics = Metrics::new();
        let http = listeners.http.map(|listener| {
            let router = http::router(reader.clone(), None, &config.http).merge(metrics::router(
                metrics.clone(),
                reader.clone(),
                None,
                Arc::new(crate::SystemClock),
            ));
            tokio::spawn(http::serve(listener, router, halt.stopped()))
        });
        let service = LogService::new(
            appender,
            reader,
            config.service.clone(),
            WriteTokens::new(&[] as &[String]),
        )?
        .with_metrics(metrics);
        let result = serve_grpc(
            listeners.grpc,
            service,
            serving_health::<ReplicaStore>().await,
            (config.tls.as_ref(), config.max_message_bytes),
            halt,
            http,
        )
        .await;
        let _ = stop.send(true);
        let _ = follower.await;
        result
    }
}

/// What a started replica tells its caller.
#[derive(Clone, Debug)]
pub struct ReplicaStarted {
    pub addr: SocketAddr,
    pub http_addr: Option<SocketAddr>,
    pub origin: String,
    pub tree_size: u64,
}

/// Runs a replica on `config.listen` (and `config.http_listen`) until `shutdown` resolves; `on_start` learns the
/// bound addresses first.
pub async fn serve(
    config: ReplicaConfig,
    on_start: impl FnOnce(&ReplicaStarted),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let (listen, http_listen) = (config.listen, config.http_listen);
    let replica = Replica::open(config).await?;
    let listeners = Listeners::bind(listen, http_listen).await?;
    let (addr, http_addr) = listeners.addrs()?;
    let latest = replica.reader.latest();
    on_start(&ReplicaStarted {
        addr,
        http_addr,
        origin: latest.checkpoint.origin.clone(),
        tree_size: latest.checkpoint.size.0,
    });
    replica.run(listeners, shutdown).await
}

#[cfg(test)]
mod tests {
    use tlog_core::tiles::fold_tile_hashes;

    use super::*;

    fn bundle(entries: usize, bytes: usize) -> Arc<Cached> {
        Arc::new(Cached::Entries(vec![vec![0; bytes]; entries]))
    }

    fn key(index: u64) -> Key {
        Tile {
            kind: TileKind::Entries,
            index,
            width: TILE_WIDTH as u16,
        }
    }

    #[test]
    fn the_cache_drops_the_least_recently_used_past_its_byte_limit() {
        // Each value is 100 bytes of entry plus 24 of bookkeeping.
        let mut lru = Lru::new(3 * 124);
        for index in 0..3 {
            lru.put(key(index), bundle(1, 100));
        }
        assert!(lru.get(&key(0)).is_some(), "0 is now the most recent");
        lru.put(key(3), bundle(1, 100));
        assert_eq!(lru.bytes, 3 * 124);
        assert!(lru.get(&key(1)).is_none(), "1 was the least recently used");
        for index in [0, 2, 3] {
            assert!(lru.get(&key(index)).is_some(), "{index}");
        }
        // A value larger than the whole limit is not cached (and evicts nothing).
        lru.put(key(4), bundle(4, 100));
        assert!(lru.get(&key(4)).is_none());
        assert_eq!(lru.bytes, 3 * 124);
    }

    #[test]
    fn interior_rows_hold_the_nodes_a_partial_tile_completes() {
        let hashes: Vec<Hash> = (0..200u8).map(|i| Hash([i; 32])).collect();
        let tile = Tile {
            kind: TileKind::Hashes(1),
            index: 3,
            width: 200,
        };
        let stored = with_interior_rows(&tile, 1, hashes.clone()).unwrap();
        // Level 8 + rise, within tile 3 of level 1: 200 >> rise complete nodes per row.
        for rise in 0..8u8 {
            let span = 1usize << rise;
            for offset in 0..(200 >> rise) {
                let node = NodeId::new(8 + rise, ((3 * 256) >> rise) as u64 + offset as u64);
                let expected = fold_tile_hashes(&hashes[offset * span..(offset + 1) * span]);
                assert_eq!(
                    read_node(&stored, &NodeSlot::of(node)).unwrap(),
                    expected,
                    "rise {rise} offset {offset}"
                );
            }
        }
    }
}
