//! The log over HTTP as C2SP `tlog-tiles` static resources: `GET /checkpoint`, `GET /tile/<L>/<N>[.p/<W>]` and
//! `GET /tile/entries/<N>[.p/<W>]`, for any standard tile client, CDN or mirror.
//!
//! It listens on its own address, beside gRPC, rather than sharing the gRPC port by routing on content type:
//! - tiles are meant to be fronted by a CDN or cache, which wants a plain HTTP/1.1 origin it can reach on its own
//!   (and which an operator can expose while keeping the gRPC write API private);
//! - curl and the standard tile clients speak HTTP/1.1, which a shared port would have to accept beside
//!   gRPC's HTTP/2 (tonic's transport is tuned for HTTP/2 alone);
//! - the gRPC path stays exactly as it is: no router in front of it, no extra work per call.
//!
//! The listener is plaintext: TLS, like caching, is the business of the CDN or proxy in front of it.
//!
//! Every resource is read from the [`LogReader`]: which tiles exist follows the latest checkpoint the log signed
//! ([`LogReader::tile`]), so nothing is served that no signed checkpoint covers. Reads block, so they run on
//! tokio's blocking pool, at most [`HttpLimits::max_concurrent_reads`] at a time (the rest wait their turn).
//! Tiles and bundles are immutable: long-lived `Cache-Control`, a strong `ETag`, and 304 for a matching
//! `If-None-Match`.

use std::io::Write;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, ETAG, HeaderMap, HeaderValue, IF_NONE_MATCH,
};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use flate2::Compression;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};
use tlog_checkpoint::SignedCheckpoint;
use tlog_core::tiles::{Tile, TileKind};
use tlog_storage::LogStore;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::error::{Error, Result};
use crate::log::LogReader;

/// Blocking store reads the HTTP listener runs at once by default. Each holds at most one tile or bundle: a
/// bundle is at most 256 entries of up to 65,535 bytes (~16 MiB, plus its gzip encoding), so this also bounds
/// the memory the listener's reads take.
pub const DEFAULT_MAX_CONCURRENT_READS: usize = 16;

/// `/checkpoint` changes with every batch: the spec asks for no caching beyond a few seconds.
const CHECKPOINT_CACHE_CONTROL: &str = "max-age=2";
/// Tiles and bundles never change once served (a partial tile has its own path).
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const TEXT_PLAIN: &str = "text/plain; charset=utf-8";
const TILE_CONTENT_TYPE: &str = "application/octet-stream";

/// Limits of the HTTP listener.
#[derive(Clone, Debug)]
pub struct HttpLimits {
    /// Blocking store reads (tiles and bundles) in flight at once; further requests wait their turn.
    pub max_concurrent_reads: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_concurrent_reads: DEFAULT_MAX_CONCURRENT_READS,
        }
    }
}

/// What the handlers share (the explorer's too): the log's reader and the cap on blocking reads.
pub(crate) struct HttpState<S> {
    pub(crate) reader: LogReader<S>,
    /// Witnessed checkpoints, when the log has witnesses.
    witnessed: Option<Witnessed>,
    reads: Semaphore,
}

/// The newest checkpoint a quorum of witnesses cosigned (`None` before the first), as witnessing publishes it.
pub type Witnessed = watch::Receiver<Option<Arc<SignedCheckpoint>>>;

impl<S: LogStore> HttpState<S> {
    /// The note `/checkpoint` serves: the one place that decides it. With witnesses, the newest checkpoint a
    /// quorum cosigned (with their cosignature lines), so that clients requiring a quorum can follow the log from
    /// tiles; before the first one, and without witnesses, the newest checkpoint the log signed.
    fn checkpoint_note(&self) -> String {
        if let Some(witnessed) = self.witnessed.as_ref().and_then(|w| w.borrow().clone()) {
            return witnessed.note.clone();
        }
        self.reader.latest().note.clone()
    }

    /// Runs `work` on the blocking pool once a read slot is free.
    pub(crate) async fn read<T: Send + 'static>(
        &self,
        work: impl FnOnce(&LogReader<S>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        // The semaphore is never closed.
        let _slot = self.reads.acquire().await.map_err(|_| Error::Closed)?;
        let reader = self.reader.clone();
        tokio::task::spawn_blocking(move || work(&reader)).await?
    }
}

/// The HTTP routes over `reader`, the web explorer's ([`crate::explorer`]) included; `/checkpoint` serves from
/// `witnessed` when the log has witnesses.
pub fn router<S: LogStore>(
    reader: LogReader<S>,
    witnessed: Option<Witnessed>,
    limits: &HttpLimits,
) -> Router {
    let state = Arc::new(HttpState {
        reader,
        witnessed,
        reads: Semaphore::new(limits.max_concurrent_reads.max(1)),
    });
    Router::new()
        .route("/checkpoint", get(checkpoint::<S>))
        .route("/tile/{*path}", get(tile::<S>))
        .merge(crate::explorer::routes::<S>())
        .with_state(state)
}

/// Serves `router` on `listener` until `shutdown` resolves and the open requests are answered.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    // As on the gRPC listener: small answers should not wait for the client's delayed ACK.
    let listener = listener.tap_io(|conn| {
        if let Err(e) = conn.set_nodelay(true) {
            tracing::warn!(error = %e, "could not set TCP_NODELAY on an HTTP connection");
        }
    });
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(Error::ServeHttp)
}

async fn checkpoint<S: LogStore>(State(state): State<Arc<HttpState<S>>>) -> Response {
    (
        [
            (CONTENT_TYPE, TEXT_PLAIN),
            (CACHE_CONTROL, CHECKPOINT_CACHE_CONTROL),
        ],
        state.checkpoint_note(),
    )
        .into_response()
}

/// A tile or bundle as answered: its entity tag, and its body (gzip-compressed for bundles) unless the client's
/// copy is current.
struct TileBody {
    etag: String,
    body: Option<Vec<u8>>,
    gzip: bool,
}

async fn tile<S: LogStore>(
    State(state): State<Arc<HttpState<S>>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    // The raw path, not the percent-decoded route parameter: only the canonical spelling names a tile, so one
    // tile has one URL (and one cache entry).
    let path = uri.path().trim_start_matches('/');
    let tile = match Tile::parse_path(path) {
        Ok(tile) => tile,
        Err(e) => return error_response(Error::TilePath(e)),
    };
    let cached = cached_tags(&headers);
    let result = state
        .read(move |reader| {
            let body = reader.tile(&tile)?;
            // Strong tag of the representation sent: the content, and whether it is the gzip encoding of it.
            let digest = Sha256::digest(&body);
            let gzip = tile.kind == TileKind::Entries;
            let etag = format!(
                "\"{}{}\"",
                hex(&digest[..16]),
                if gzip { "-gzip" } else { "" }
            );
            // A current copy needs no body: nothing to compress.
            let body = if cached.iter().any(|tag| tag == "*" || *tag == etag) {
                None
            } else if gzip {
                Some(gzip_bytes(&body)?)
            } else {
                Some(body)
            };
            Ok(TileBody { etag, body, gzip })
        })
        .await;
    let TileBody { etag, body, gzip } = match result {
        Ok(found) => found,
        Err(e) => return error_response(e),
    };
    let mut response = match body {
        None => StatusCode::NOT_MODIFIED.into_response(),
        Some(body) => {
            let mut response = body.into_response();
            let headers = response.headers_mut();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(TILE_CONTENT_TYPE));
            if gzip {
                // C2SP tlog-tiles: bundles MAY be sent gzip-encoded without negotiation.
                headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            }
            response
        }
    };
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        headers.insert(ETAG, etag);
    }
    response
}

/// The entity tags `If-None-Match` lists (`*` included), compared weakly as RFC 9110 asks: a `W/` prefix is
/// dropped.
fn cached_tags(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/").to_owned())
        .collect()
}

fn gzip_bytes(body: &[u8]) -> Result<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(body.len() / 2), Compression::default());
    encoder
        .write_all(body)
        .and_then(|()| encoder.finish())
        .map_err(|source| Error::Io {
            context: "compressing an entry bundle".into(),
            source,
        })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The status of an error, in one place (as `service::status` is for gRPC).
fn http_status(e: &Error) -> StatusCode {
    match e {
        Error::TilePath(_) => StatusCode::BAD_REQUEST,
        Error::TileBeyondLog { .. } => StatusCode::NOT_FOUND,
        e if e.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn error_response(e: Error) -> Response {
    let status = http_status(&e);
    if status.is_server_error() {
        tracing::warn!(error = %e, "HTTP read failed");
    }
    (status, [(CONTENT_TYPE, TEXT_PLAIN)], format!("{e}\n")).into_response()
}
