//! The archive read back as a C2SP tlog-tiles source: what any auditor or replica reads.

use std::sync::Arc;

use object_store::{ObjectStore, ObjectStoreExt};
use tlog_client::{ClientError, TileSource};
use tlog_core::tiles::Tile;

use crate::CHECKPOINT;
use crate::archive::object_path;

/// A [`TileSource`] over the objects of an archive.
#[derive(Clone, Debug)]
pub struct ArchiveTiles {
    store: Arc<dyn ObjectStore>,
    prefix: String,
}

impl ArchiveTiles {
    /// The tiles below `prefix` in `store`.
    pub fn new(store: Arc<dyn ObjectStore>, prefix: &str) -> Self {
        ArchiveTiles {
            store,
            prefix: prefix.trim_matches('/').to_owned(),
        }
    }

    async fn get(&self, name: &str) -> Result<Vec<u8>, ClientError> {
        let path = object_path(&self.prefix, name);
        let failed = |e: object_store::Error| match e {
            object_store::Error::NotFound { .. } => ClientError::TileNotFound {
                path: name.to_owned(),
            },
            e => ClientError::Source {
                path: name.to_owned(),
                detail: e.to_string(),
            },
        };
        let got = self.store.get(&path).await.map_err(failed)?;
        Ok(got.bytes().await.map_err(failed)?.to_vec())
    }
}

impl TileSource for ArchiveTiles {
    async fn fetch(&self, tile: &Tile) -> Result<Vec<u8>, ClientError> {
        self.get(&tile.path()).await
    }

    async fn checkpoint(&self) -> Result<Vec<u8>, ClientError> {
        self.get(CHECKPOINT).await
    }
}
