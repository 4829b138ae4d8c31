//! The HTTP client behind the tile reader and witness submission: reqwest on rustls with the ring provider (the
//! one tonic's TLS already uses), keep-alive connections, gzip bodies decoded; and [`HttpTiles`], the
//! [`TileSource`] of a C2SP tlog-tiles log.

use std::time::Duration;

use tlog_core::HASH_SIZE;
use tlog_core::tiles::{MAX_BUNDLE_ENTRY_BYTES, Tile, TileKind};

use crate::error::ClientError;
use crate::tiles::TileSource;

/// How long an HTTP request may take before it fails, by default.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// A client with the given per-request timeout. Installs rustls' ring provider as the process default if none
/// is installed yet (reqwest is built without a provider of its own).
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, ClientError> {
    // Fails only when a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(reqwest::Client::builder()
        .timeout(timeout)
        .user_agent(concat!("tlog/", env!("CARGO_PKG_VERSION")))
        .build()?)
}

/// The most a checkpoint body may hold: a note with many cosignatures is a few KiB.
const MAX_CHECKPOINT_BYTES: usize = 1 << 20;

/// A [`TileSource`] over HTTP: `<base>/checkpoint` and `<base>/<tile path>` (C2SP tlog-tiles), with gzip bodies
/// decoded and every body read only up to the most its resource can hold.
#[derive(Debug, Clone)]
pub struct HttpTiles {
    client: reqwest::Client,
    base: reqwest::Url,
}

impl HttpTiles {
    /// Tiles of the log at `base` (the tlog-tiles prefix, e.g. `https://example.com/log`; a trailing slash or not
    /// names the same prefix), fetched with `client` (see [`http_client`]).
    pub fn new(client: reqwest::Client, base: &str) -> Result<Self, ClientError> {
        let mut base =
            reqwest::Url::parse(base).map_err(|_| ClientError::InvalidUrl(base.to_owned()))?;
        if base.cannot_be_a_base() || !matches!(base.scheme(), "http" | "https") {
            return Err(ClientError::InvalidUrl(base.to_string()));
        }
        // `join` replaces the last path segment unless the path ends in a slash.
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        base.set_query(None);
        base.set_fragment(None);
        Ok(HttpTiles { client, base })
    }

    /// The URL of `path` below the prefix.
    pub fn url(&self, path: &str) -> Result<reqwest::Url, ClientError> {
        self.base
            .join(path)
            .map_err(|_| ClientError::InvalidUrl(format!("{}{path}", self.base)))
    }

    async fn get(&self, path: &str, limit: usize) -> Result<Vec<u8>, ClientError> {
        let url = self.url(path)?;
        let mut response = self.client.get(url.clone()).send().await?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(ClientError::TileNotFound {
                path: path.to_owned(),
            });
        }
        if !status.is_success() {
            return Err(ClientError::HttpStatus {
                url: url.to_string(),
                status: status.as_u16(),
            });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > limit {
                return Err(ClientError::BodyTooLarge {
                    path: path.to_owned(),
                    limit,
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

impl TileSource for HttpTiles {
    async fn fetch(&self, tile: &Tile) -> Result<Vec<u8>, ClientError> {
        let width = usize::from(tile.width);
        let limit = match tile.kind {
            TileKind::Hashes(_) => width * HASH_SIZE,
            TileKind::Entries => width * (2 + MAX_BUNDLE_ENTRY_BYTES),
        };
        self.get(&tile.path(), limit).await
    }

    async fn checkpoint(&self) -> Result<Vec<u8>, ClientError> {
        self.get("checkpoint", MAX_CHECKPOINT_BYTES).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_urls_join_the_prefix_with_or_without_a_slash() {
        let client = http_client(DEFAULT_HTTP_TIMEOUT).unwrap();
        for (base, want) in [
            ("http://h:1/log", "http://h:1/log/tile/0/x001/234"),
            ("http://h:1/log/", "http://h:1/log/tile/0/x001/234"),
            ("https://h/a/b?q=1", "https://h/a/b/tile/0/x001/234"),
            ("http://h", "http://h/tile/0/x001/234"),
        ] {
            let tiles = HttpTiles::new(client.clone(), base).unwrap();
            assert_eq!(
                tiles.url("tile/0/x001/234").unwrap().as_str(),
                want,
                "{base}"
            );
        }
        for bad in ["ftp://h/log", "h/log", "mailto:a@b"] {
            assert!(HttpTiles::new(client.clone(), bad).is_err(), "{bad}");
        }
    }
}
