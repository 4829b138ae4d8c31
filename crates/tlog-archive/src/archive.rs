//! [`Archive`]: the objects of one log in one bucket prefix, written once, with the checkpoint advanced only by
//! a conditional write on its previous version.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt, stream};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use tlog_checkpoint::{SignedCheckpoint, VerifierKey, verify_checkpoint};
use tlog_client::TileSource;
use tlog_core::TreeSize;
use tlog_core::tiles::Tile;

use crate::CHECKPOINT;
use crate::error::{Error, Result};
use crate::plan::{new_full_tiles, partial_tiles};
use crate::source::ArchiveTiles;

/// Objects written at once by default.
pub const DEFAULT_PARALLELISM: usize = 16;

/// What the archive holds: its checkpoint (verified against the log's key), and the version of the checkpoint
/// object the next advance must replace.
#[derive(Clone, Debug, Default)]
pub struct Head {
    /// The archived checkpoint; `None` for an empty archive.
    pub checkpoint: Option<SignedCheckpoint>,
    /// The checkpoint object's ETag, for `If-Match`.
    etag: Option<String>,
}

impl Head {
    /// Whether the archive holds no checkpoint at all (not even the empty tree's).
    pub fn is_empty(&self) -> bool {
        self.checkpoint.is_none()
    }

    /// The archived tree size (0 for an empty archive).
    pub fn size(&self) -> TreeSize {
        self.checkpoint
            .as_ref()
            .map_or(TreeSize(0), |c| c.checkpoint.size)
    }
}

/// One log's archive: an object store, the prefix below which the tlog-tiles layout lives, and the log's key.
#[derive(Clone, Debug)]
pub struct Archive {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    key: VerifierKey,
    parallelism: usize,
}

impl Archive {
    /// The archive of the log signed by `key`, below `prefix` (no leading or trailing slash needed) in `store`.
    pub fn new(store: Arc<dyn ObjectStore>, prefix: &str, key: VerifierKey) -> Self {
        Archive {
            store,
            prefix: prefix.trim_matches('/').to_owned(),
            key,
            parallelism: DEFAULT_PARALLELISM,
        }
    }

    /// Writes at most `n` objects at once.
    pub fn with_parallelism(mut self, n: usize) -> Self {
        self.parallelism = n.max(1);
        self
    }

    /// The log's key, which every archived checkpoint must be signed with.
    pub fn key(&self) -> &VerifierKey {
        &self.key
    }

    /// The archive read back as a tlog-tiles source, for [`tlog_client::TileClient`].
    pub fn tiles(&self) -> ArchiveTiles {
        ArchiveTiles::new(self.store.clone(), &self.prefix)
    }

    fn path(&self, name: &str) -> Path {
        object_path(&self.prefix, name)
    }

    /// Reads the archived checkpoint. An archive whose checkpoint is not signed by the log's key is not this
    /// log's archive.
    pub async fn head(&self) -> Result<Head> {
        let got = match self.store.get(&self.path(CHECKPOINT)).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Ok(Head::default()),
            Err(e) => return Err(e.into()),
        };
        let etag = got.meta.e_tag.clone();
        let note = got.bytes().await?;
        let checkpoint = verify_checkpoint(&self.key, &note)
            .map_err(|e| Error::ForeignCheckpoint(e.to_string()))?;
        Ok(Head {
            checkpoint: Some(checkpoint),
            etag,
        })
    }

    /// Publishes the tiles and bundles the tree of `to` adds to what `head` holds (read from `source`, the log
    /// itself), then advances the checkpoint to `to`. Returns the new head.
    ///
    /// Safe to repeat after any failure: objects already written are checked, not rewritten. A `to` no larger
    /// than the archive changes nothing (the same checkpoint) or is refused (a smaller or different one).
    pub async fn publish<S: TileSource>(
        &self,
        head: &Head,
        source: &S,
        to: &SignedCheckpoint,
    ) -> Result<Head> {
        let (from, size) = (head.size(), to.checkpoint.size);
        if size.0 < from.0 {
            return Err(Error::AheadOfLog {
                archived: from,
                local: size,
            });
        }
        if size == from {
            return match &head.checkpoint {
                Some(archived) if archived.checkpoint.root != to.checkpoint.root => {
                    Err(Error::ForeignCheckpoint(format!(
                        "the archive's tree of size {} has another root than the log's",
                        size.0
                    )))
                }
                Some(_) => Ok(head.clone()),
                // An empty archive and an empty log: the empty tree's checkpoint needs no tile. Publishing it
                // claims the archive before any tile is written, so of several logs started on one empty
                // archive exactly one wins (the others find a checkpoint that is not theirs).
                None => self.put_checkpoint(head, to).await,
            };
        }
        let mut tiles = new_full_tiles(from, size);
        tiles.extend(partial_tiles(size));
        stream::iter(tiles)
            .map(|tile| async move {
                let body = source.fetch(&tile).await.map_err(Error::Source)?;
                self.put_immutable(&tile, body).await
            })
            .buffer_unordered(self.parallelism)
            .try_collect::<()>()
            .await?;
        self.put_checkpoint(head, to).await
    }

    /// Writes `body` at `tile`'s path unless an object is there; one that is there must be identical.
    async fn put_immutable(&self, tile: &Tile, body: Vec<u8>) -> Result<()> {
        let path = self.path(&tile.path());
        let body = Bytes::from(body);
        let put = self
            .store
            .put_opts(
                &path,
                PutPayload::from_bytes(body.clone()),
                PutOptions::from(PutMode::Create),
            )
            .await;
        match put {
            Ok(_) => Ok(()),
            Err(object_store::Error::AlreadyExists { .. }) => {
                let archived = self.store.get(&path).await?.bytes().await?;
                if archived == body {
                    Ok(())
                } else {
                    tracing::error!(path = %path, "archived object differs from the log's: not overwritten");
                    Err(Error::Integrity {
                        path: path.to_string(),
                        archived: archived.len(),
                        ours: body.len(),
                    })
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Advances the checkpoint object from `head` to `to`: created when the archive has none, else replaced only
    /// if it is still the version `head` read.
    async fn put_checkpoint(&self, head: &Head, to: &SignedCheckpoint) -> Result<Head> {
        let path = self.path(CHECKPOINT);
        let mode = match &head.etag {
            None => PutMode::Create,
            Some(etag) => PutMode::Update(UpdateVersion {
                e_tag: Some(etag.clone()),
                version: None,
            }),
        };
        let put = self
            .store
            .put_opts(
                &path,
                PutPayload::from(to.note.clone().into_bytes()),
                PutOptions::from(mode),
            )
            .await;
        match put {
            Ok(result) if result.e_tag.is_some() => Ok(Head {
                checkpoint: Some(to.clone()),
                etag: result.e_tag,
            }),
            // A store that does not answer the new ETag: read it back.
            Ok(_) => self.head().await,
            Err(
                object_store::Error::Precondition { .. }
                | object_store::Error::AlreadyExists { .. },
            ) => {
                // Our own write, when a retry of it found it done; anything else is another writer's.
                let now = self.head().await?;
                match &now.checkpoint {
                    Some(archived) if archived.note == to.note => Ok(now),
                    _ => Err(Error::AnotherWriter {
                        path: path.to_string(),
                    }),
                }
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// `prefix/name`, or `name` with an empty prefix.
pub(crate) fn object_path(prefix: &str, name: &str) -> Path {
    if prefix.is_empty() {
        Path::from(name)
    } else {
        Path::from(format!("{prefix}/{name}"))
    }
}
