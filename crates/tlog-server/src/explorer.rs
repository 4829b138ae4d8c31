//! The web explorer: a page served by tlogd (`GET /`, assets under `/explorer/`) that shows the latest checkpoint,
//! recent entries and an entry's details, and verifies in the browser what it shows: the checkpoint's signature
//! with the log's verifier key, the inclusion proof of the entry shown, and the consistency proof from the
//! checkpoint the browser saw last. The page's files are compiled into tlogd (`explorer/` next to `src/`): plain
//! JS on WebCrypto (SHA-256, Ed25519), nothing to build.
//!
//! The page reads small JSON answers from the routes below, beside the C2SP `/checkpoint` it verifies:
//! - `GET /v1/explorer/config`: the log's origin and verifier key (the page names the key it verifies with);
//! - `GET /v1/entries?start=&end=`: entries `[start, end)`, at most [`MAX_ENTRIES`] per request;
//! - `GET /v1/entry/{index}`: one entry;
//! - `GET /v1/proof/inclusion?index=|leaf_hash=&size=`: an inclusion proof (by leaf hash: the lookup);
//! - `GET /v1/proof/consistency?old=&new=`: a consistency proof.
//!
//! Proofs are served here, computed by the [`LogReader`] (one batched read of O(log n) nodes), rather than
//! rebuilt in the browser from tiles: on a 10M-entry log a proof from tiles needs a hash tile per level (three
//! round trips, ~24 KiB, plus the partial tiles of the checkpoint's size) and hashing up to 255 nodes per tile in
//! JS, where this is one request of ~1 KiB. The trust is the same: the page checks every proof against the root
//! of a checkpoint whose signature it verified itself, so the server gains nothing by lying. Every read is bounded
//! (no scans: the page asks for the last few entries by index), runs on the blocking pool and shares the HTTP
//! listener's cap on concurrent reads. Errors are JSON `{"code", "error"}` with the HTTP status matching the gRPC
//! code the same failure gets from the gRPC service.

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderName};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use tlog_core::{Hash, LeafIndex, TreeSize, leaf_hash};
use tlog_storage::LogStore;
use tonic::Code;

use crate::error::{Error, Result};
use crate::http::HttpState;
use crate::log::LogReader;
use crate::validate::{self, LeafRef, RequestError};

/// Most entries one `/v1/entries` request returns (the page lists the newest 20).
pub const MAX_ENTRIES: u64 = 100;

const INDEX_HTML: &str = include_str!("../explorer/index.html");
const EXPLORER_JS: &str = include_str!("../explorer/explorer.js");
const EXPLORER_CSS: &str = include_str!("../explorer/explorer.css");

/// The page runs only its own script and style and talks only to this origin: entries are untrusted input, and
/// the page inserts them as text, but a policy also stops any script an injection might smuggle in.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
/// The page's files change only with tlogd's binary; JSON answers describe a growing log.
const ASSET_CACHE_CONTROL: &str = "no-cache";
const NO_STORE: &str = "no-store";

/// The explorer's routes, merged into [`crate::http::router`] (they share its state and read limit).
pub(crate) fn routes<S: LogStore>() -> Router<Arc<HttpState<S>>> {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/explorer/explorer.js",
            get(|| async { asset("text/javascript; charset=utf-8", EXPLORER_JS) }),
        )
        .route(
            "/explorer/explorer.css",
            get(|| async { asset("text/css; charset=utf-8", EXPLORER_CSS) }),
        )
        .route("/v1/explorer/config", get(config::<S>))
        .route("/v1/entries", get(entries::<S>))
        .route("/v1/entry/{index}", get(entry::<S>))
        .route("/v1/proof/inclusion", get(inclusion::<S>))
        .route("/v1/proof/consistency", get(consistency::<S>))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (CONTENT_TYPE, content_type),
            (CACHE_CONTROL, ASSET_CACHE_CONTROL),
            (HeaderName::from_static("content-security-policy"), CSP),
            (HeaderName::from_static("x-content-type-options"), "nosniff"),
        ],
        body,
    )
        .into_response()
}

#[derive(Serialize)]
struct Config {
    origin: String,
    /// The C2SP signed-note verifier key the page checks checkpoints with.
    verifier_key: String,
    max_entries: u64,
}

#[derive(Serialize)]
struct EntryJson {
    index: u64,
    /// Hex `SHA-256(0x00 || entry)`; the page recomputes it from `entry` before it trusts it.
    leaf_hash: String,
    /// The entry's bytes, base64 (standard alphabet).
    entry: String,
}

impl EntryJson {
    fn new(index: u64, entry: &[u8]) -> Self {
        EntryJson {
            index,
            leaf_hash: leaf_hash(entry).to_string(),
            entry: BASE64.encode(entry),
        }
    }
}

#[derive(Serialize)]
struct Entries {
    start: u64,
    entries: Vec<EntryJson>,
}

#[derive(Serialize)]
struct InclusionJson {
    index: u64,
    leaf_hash: String,
    tree_size: u64,
    /// Hex hashes, from the leaf's level up (RFC 9162 §2.1.3.1).
    proof: Vec<String>,
}

#[derive(Serialize)]
struct ConsistencyJson {
    old: u64,
    new: u64,
    /// Hex hashes (RFC 9162 §2.1.4.1).
    proof: Vec<String>,
}

#[derive(Deserialize)]
struct RangeQuery {
    start: Option<String>,
    end: Option<String>,
}

#[derive(Deserialize)]
struct InclusionQuery {
    index: Option<String>,
    leaf_hash: Option<String>,
    size: Option<String>,
}

#[derive(Deserialize)]
struct ConsistencyQuery {
    old: Option<String>,
    new: Option<String>,
}

async fn config<S: LogStore>(State(state): State<Arc<HttpState<S>>>) -> Response {
    let key = state.reader.verifier();
    json(&Config {
        origin: key.name().to_owned(),
        verifier_key: key.to_string(),
        max_entries: max_entries(&state.reader),
    })
}

async fn entries<S: LogStore>(
    State(state): State<Arc<HttpState<S>>>,
    query: Result<Query<RangeQuery>, QueryRejection>,
) -> Response {
    answer(async {
        let Query(q) = query.map_err(bad_query)?;
        let start = number("start", q.start.as_deref())?;
        let end = number("end", q.end.as_deref())?;
        let size = state.reader.latest().checkpoint.size.0;
        validate::check_entries_range(start, end, size, max_entries(&state.reader))?;
        let entries = state
            .read(move |reader| reader.entries(LeafIndex(start), LeafIndex(end)))
            .await?;
        Ok(Entries {
            start,
            entries: (start..)
                .zip(&entries)
                .map(|(i, e)| EntryJson::new(i, e))
                .collect(),
        })
    })
    .await
}

async fn entry<S: LogStore>(
    State(state): State<Arc<HttpState<S>>>,
    Path(index): Path<String>,
) -> Response {
    answer(async {
        let index = number("index", Some(&index))?;
        let size = state.reader.latest().checkpoint.size.0;
        let end = index.checked_add(1).ok_or(RequestError::RangeBeyondSize {
            end: u64::MAX,
            size,
        })?;
        validate::check_entries_range(index, end, size, 1)?;
        let mut entries = state
            .read(move |reader| reader.entries(LeafIndex(index), LeafIndex(end)))
            .await?;
        let entry = entries.pop().ok_or(Error::LeafBeyondSize { index, size })?;
        Ok(EntryJson::new(index, &entry))
    })
    .await
}

async fn inclusion<S: LogStore>(
    State(state): State<Arc<HttpState<S>>>,
    query: Result<Query<InclusionQuery>, QueryRejection>,
) -> Response {
    answer(async {
        let Query(q) = query.map_err(bad_query)?;
        let leaf = match (q.index.as_deref(), q.leaf_hash.as_deref()) {
            (Some(index), None) => LeafRef::Index(LeafIndex(number("index", Some(index))?)),
            (None, Some(hash)) => LeafRef::Hash(hex_hash("leaf_hash", hash)?),
            _ => return Err(RequestError::MissingLeaf.into()),
        };
        let size = TreeSize(number("size", q.size.as_deref())?);
        let answer = state
            .read(move |reader| reader.inclusion(leaf, size))
            .await?;
        Ok(InclusionJson {
            index: answer.index.0,
            leaf_hash: answer.leaf_hash.to_string(),
            tree_size: answer.checkpoint.checkpoint.size.0,
            proof: hexes(&answer.proof),
        })
    })
    .await
}

async fn consistency<S: LogStore>(
    State(state): State<Arc<HttpState<S>>>,
    query: Result<Query<ConsistencyQuery>, QueryRejection>,
) -> Response {
    answer(async {
        let Query(q) = query.map_err(bad_query)?;
        let old = TreeSize(number("old", q.old.as_deref())?);
        let new = TreeSize(number("new", q.new.as_deref())?);
        let (proof, checkpoint) = state
            .read(move |reader| reader.consistency(old, new))
            .await?;
        Ok(ConsistencyJson {
            old: old.0,
            new: checkpoint.checkpoint.size.0,
            proof: hexes(&proof),
        })
    })
    .await
}

/// Entries per `/v1/entries` request: the explorer's bound, within the reader's per-read limit.
fn max_entries<S: LogStore>(reader: &LogReader<S>) -> u64 {
    MAX_ENTRIES.min(reader.limits().max_entries_per_read).max(1)
}

fn hexes(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(Hash::to_string).collect()
}

/// A required decimal `u64` parameter.
fn number(name: &'static str, value: Option<&str>) -> Result<u64, RequestError> {
    let value = value.ok_or(RequestError::BadParameter {
        name,
        reason: "missing",
    })?;
    // `u64::from_str` takes a leading `+`; one spelling per number is enough.
    if value.starts_with('+') {
        return Err(RequestError::BadParameter {
            name,
            reason: "not a decimal number",
        });
    }
    value.parse().map_err(|_| RequestError::BadParameter {
        name,
        reason: "not a decimal number below 2^64",
    })
}

/// A hash given as 64 hex digits.
fn hex_hash(name: &'static str, text: &str) -> Result<Hash, RequestError> {
    let bad = || RequestError::BadParameter {
        name,
        reason: "not 64 hex digits",
    };
    // Checked first: `from_str_radix` would take a `+` sign.
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let mut hash = [0u8; 32];
    for (byte, pair) in hash.iter_mut().zip(text.as_bytes().chunks(2)) {
        let pair = std::str::from_utf8(pair).map_err(|_| bad())?;
        *byte = u8::from_str_radix(pair, 16).map_err(|_| bad())?;
    }
    Ok(Hash(hash))
}

fn bad_query(_: QueryRejection) -> Error {
    RequestError::BadParameter {
        name: "query",
        reason: "not a valid query string",
    }
    .into()
}

async fn answer<T: Serialize>(work: impl Future<Output = Result<T>>) -> Response {
    match work.await {
        Ok(value) => json(&value),
        Err(e) => error_json(e),
    }
}

fn json<T: Serialize>(value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => (
            [
                (CONTENT_TYPE, "application/json"),
                (CACHE_CONTROL, NO_STORE),
            ],
            body,
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "encoding an explorer answer");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[derive(Serialize)]
struct ErrorJson {
    /// The gRPC code the same failure gets from the gRPC service, e.g. `NOT_FOUND`.
    code: &'static str,
    error: String,
}

/// The error as JSON, its status and code derived from the gRPC status the service gives the same error
/// ([`crate::status`], the one place that classifies errors).
fn error_json(e: Error) -> Response {
    let status = crate::status(e);
    let (http, code) = http_code(status.code());
    if http.is_server_error() {
        tracing::warn!(error = %status.message(), "explorer read failed");
    }
    let body = ErrorJson {
        code,
        error: status.message().to_owned(),
    };
    let mut response = json(&body);
    *response.status_mut() = http;
    response
}

/// The HTTP status of a gRPC code, as Google's HTTP/gRPC mapping (`google.rpc.Code`) gives it, and the code's name.
fn http_code(code: Code) -> (StatusCode, &'static str) {
    match code {
        Code::Ok => (StatusCode::OK, "OK"),
        Code::InvalidArgument => (StatusCode::BAD_REQUEST, "INVALID_ARGUMENT"),
        Code::OutOfRange => (StatusCode::BAD_REQUEST, "OUT_OF_RANGE"),
        Code::FailedPrecondition => (StatusCode::BAD_REQUEST, "FAILED_PRECONDITION"),
        Code::Unauthenticated => (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED"),
        Code::PermissionDenied => (StatusCode::FORBIDDEN, "PERMISSION_DENIED"),
        Code::NotFound => (StatusCode::NOT_FOUND, "NOT_FOUND"),
        Code::AlreadyExists => (StatusCode::CONFLICT, "ALREADY_EXISTS"),
        Code::Aborted => (StatusCode::CONFLICT, "ABORTED"),
        Code::ResourceExhausted => (StatusCode::TOO_MANY_REQUESTS, "RESOURCE_EXHAUSTED"),
        Code::Cancelled => (
            StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
            "CANCELLED",
        ),
        Code::Unimplemented => (StatusCode::NOT_IMPLEMENTED, "UNIMPLEMENTED"),
        Code::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE"),
        Code::DeadlineExceeded => (StatusCode::GATEWAY_TIMEOUT, "DEADLINE_EXCEEDED"),
        Code::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL"),
        Code::DataLoss => (StatusCode::INTERNAL_SERVER_ERROR, "DATA_LOSS"),
        Code::Unknown => (StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_plain_decimal() {
        assert_eq!(number("n", Some("42")), Ok(42));
        for bad in ["", "+1", "-1", "0x10", "1.0", "18446744073709551616"] {
            assert!(number("n", Some(bad)).is_err(), "{bad:?}");
        }
        assert!(number("n", None).is_err());
    }

    #[test]
    fn hashes_are_64_hex_digits() {
        let hash = leaf_hash(b"a");
        assert_eq!(hex_hash("h", &hash.to_string()), Ok(hash));
        let upper = hash.to_string().to_uppercase();
        assert_eq!(hex_hash("h", &upper), Ok(hash));
        for bad in [
            "",
            "00",
            &"g".repeat(64),
            &"0".repeat(63),
            &"é".repeat(32),
            &format!("+1{}", "0".repeat(62)),
        ] {
            assert!(hex_hash("h", bad).is_err(), "{bad:?}");
        }
    }
}
