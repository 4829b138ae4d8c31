//! Ingestion over HTTP and JSON, on the HTTP listener beside the tiles, for producers that do not speak gRPC:
//!
//! - `POST /v1/events`: one audit event (a JSON object) or an array of them. Each event is canonicalised with the
//!   RFC 8785 JSON Canonicalization Scheme, so the same event always makes the same entry (and leaf hash) however
//!   it was spelled, and the events of one request are appended as one submission, as `SubmitBatch` appends
//!   them. The answer is the receipt of an object, or `{"receipts": [...]}` for an array: the JSON receipt the
//!   client crate reads and verifies (`tlog_client::Receipt`), the entry being the canonical JSON.
//! - `POST /v1/k8s/audit`: the Kubernetes audit webhook backend. kube-apiserver posts `audit.k8s.io/v1`
//!   `EventList`s; every item becomes one entry (its canonical JSON). Lists longer than one submission are split
//!   into consecutive submissions; the answer is `200` once every item is durable and signed. The apiserver
//!   retries a batch on `429`, `5xx` and connection errors, and drops it on other `4xx` (which name a request it
//!   would send again as it is); a retried batch re-sends events the log may already hold, which de-duplication
//!   answers with their first index.
//!
//! Both take the gRPC API's write tokens (`Authorization: Bearer <token>`) and its limits, checked before any
//! work: the body size when it is read, the entry count and sizes before the entries are queued. Errors answer
//! with the HTTP status matching the gRPC code the same refusal gets (see [`http_status`]) and a JSON body
//! `{"error": {"code": 400, "status": "INVALID_ARGUMENT", "message": "..."}}`.
//!
//! JCS numbers: every number is an IEEE 754 double, as RFC 8785 says, so an integer beyond 2^53 is logged as the
//! nearest double (`18446744073709551615` becomes `18446744073709552000`): send such values as strings. An
//! object with a repeated member name is refused (RFC 8785 needs I-JSON input), not silently reduced to one.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};
use tlog_core::Hash;
use tlog_storage::LogStore;
use tonic::Code;

use crate::error::Error;
use crate::log::{Appender, LogReader};
use crate::service::{self, committed_proofs};
use crate::validate::{RequestError, WriteTokens};

/// Largest request body the ingestion routes read by default: a full submission (16 MiB of canonical entries)
/// with room for the whitespace and escapes of the JSON it came as.
pub const DEFAULT_MAX_BODY_BYTES: usize = 32 << 20;
/// The only `apiVersion` of an audit `EventList` the webhook takes: the apiserver's default
/// `--audit-webhook-version` (the alpha and beta versions are gone from current Kubernetes).
pub const K8S_AUDIT_API_VERSION: &str = "audit.k8s.io/v1";

const APPLICATION_JSON: &str = "application/json";

/// Limits of the ingestion routes (the entry limits are the log's, [`crate::log::LogOptions`]).
#[derive(Clone, Debug)]
pub struct IngestLimits {
    /// Largest request body read; a larger one is refused with `413` before it is parsed.
    pub max_body_bytes: usize,
}

impl Default for IngestLimits {
    fn default() -> Self {
        IngestLimits {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

struct IngestState<S> {
    appender: Appender,
    reader: LogReader<S>,
    tokens: WriteTokens,
}

/// `POST /v1/events` and `POST /v1/k8s/audit`, appending through `appender` with `reader` for receipts that need
/// the store.
pub fn router<S: LogStore>(
    appender: Appender,
    reader: LogReader<S>,
    tokens: WriteTokens,
    limits: &IngestLimits,
) -> Router {
    let state = Arc::new(IngestState {
        appender,
        reader,
        tokens,
    });
    Router::new()
        .route("/v1/events", post(events::<S>))
        .route("/v1/k8s/audit", post(k8s_audit::<S>))
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .with_state(state)
}

/// Why an ingestion request was refused.
#[derive(Debug)]
pub enum IngestError {
    /// A refusal of the log (limits, queue, storage), answered as gRPC answers it.
    Log(Error),
    /// The body could not be read: too large (413) or broken off.
    Body(BytesRejection),
    /// The body is not the JSON the route takes; the message says what is wrong and where.
    Json(String),
}

impl fmt::Display for IngestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IngestError::Log(e) => write!(f, "{e}"),
            IngestError::Body(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => write!(
                f,
                "the request body is larger than the server's limit (max_ingest_body_bytes); send fewer events per request"
            ),
            IngestError::Body(r) => write!(f, "reading the request body failed: {}", r.body_text()),
            IngestError::Json(m) => f.write_str(m),
        }
    }
}

impl From<Error> for IngestError {
    fn from(e: Error) -> Self {
        IngestError::Log(e)
    }
}

impl From<RequestError> for IngestError {
    fn from(e: RequestError) -> Self {
        IngestError::Log(e.into())
    }
}

/// The HTTP status for a gRPC code, as Google's HTTP mapping of `google.rpc.Code` gives it.
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            StatusCode::BAD_REQUEST
        }
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The gRPC code's canonical name, as JSON error bodies carry it.
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

impl IngestError {
    /// The gRPC code this refusal has (the same one the gRPC API answers with) and its HTTP status: the code's,
    /// except that a request too large answers `413` (a client should split it, not retry it as it is).
    pub fn status(&self) -> (Code, StatusCode) {
        match self {
            IngestError::Log(Error::Request(
                RequestError::TooManyEntries { .. }
                | RequestError::RequestTooLarge { .. }
                | RequestError::EntryTooLarge { .. },
            )) => (Code::InvalidArgument, StatusCode::PAYLOAD_TOO_LARGE),
            IngestError::Log(e) => {
                // The one mapping of log errors to codes is the gRPC service's.
                let code = service::code(e);
                (code, http_status(code))
            }
            IngestError::Body(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                (Code::InvalidArgument, StatusCode::PAYLOAD_TOO_LARGE)
            }
            IngestError::Body(_) | IngestError::Json(_) => {
                (Code::InvalidArgument, StatusCode::BAD_REQUEST)
            }
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: u16,
    status: &'a str,
    message: String,
}

impl IntoResponse for IngestError {
    fn into_response(self) -> Response {
        let (code, http) = self.status();
        let message = self.to_string();
        if http.is_server_error() {
            tracing::warn!(error = %message, "HTTP ingestion failed");
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code: http.as_u16(),
                status: code_name(code),
                message,
            },
        };
        let mut response = json_response(http, &body);
        if http == StatusCode::TOO_MANY_REQUESTS || http == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
        }
        response
    }
}

fn json_response<T: Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(mut bytes) => {
            bytes.push(b'\n');
            (status, [(CONTENT_TYPE, APPLICATION_JSON)], bytes).into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// A receipt as JSON: the shape `tlog_client::Receipt` reads (hashes as lowercase hex, the checkpoint as its
/// signed note), so a client verifies it as it verifies a gRPC receipt.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct JsonReceipt {
    pub index: u64,
    pub leaf_hash: String,
    pub checkpoint: String,
    pub inclusion_proof: Vec<String>,
    pub duplicate: bool,
}

/// The answer to an array of events.
#[derive(Serialize, Deserialize, Debug)]
pub struct JsonReceipts {
    pub receipts: Vec<JsonReceipt>,
}

/// The answer to an audit `EventList`.
#[derive(Serialize, Deserialize, Debug)]
pub struct K8sAnswer {
    /// Events appended (or found already in the log).
    pub entries: usize,
    /// Size of the tree of the newest checkpoint covering them (0 for an empty list).
    pub tree_size: u64,
}

impl<S: LogStore> IngestState<S> {
    /// Checks the write token, then reads the body (within the body limit layered on the routes).
    async fn authorized_body(&self, request: Request) -> Result<Bytes, IngestError> {
        check_token(&self.tokens, request.headers())?;
        Bytes::from_request(request, &())
            .await
            .map_err(IngestError::Body)
    }
}

fn check_token(tokens: &WriteTokens, headers: &HeaderMap) -> Result<(), RequestError> {
    tokens
        .check_authorization(headers.get(AUTHORIZATION).map(|v| v.as_bytes()))
        .inspect_err(|e| crate::service::denied("HTTP ingest", crate::validate::Scope::Write, e))
}

async fn events<S: LogStore>(
    State(state): State<Arc<IngestState<S>>>,
    request: Request,
) -> Response {
    match append_events(&state, request).await {
        Ok(answer) => answer,
        Err(e) => e.into_response(),
    }
}

async fn append_events<S: LogStore>(
    state: &IngestState<S>,
    request: Request,
) -> Result<Response, IngestError> {
    let body = state.authorized_body(request).await?;
    let (entries, one) = match parse_json(&body)? {
        Value::Object(event) => (vec![canonical(&Value::Object(event))?], true),
        Value::Array(events) => (canonical_events(&events, "events")?, false),
        other => {
            return Err(IngestError::Json(format!(
                "expected an audit event (a JSON object) or an array of them, got {}",
                kind_of(&other)
            )));
        }
    };
    let pending = state.appender.enqueue(entries)?;
    let (committed, proofs) = committed_proofs(&state.reader, pending).await?;
    let note = &committed.checkpoint.note;
    let mut receipts: Vec<JsonReceipt> = committed
        .assigned
        .iter()
        .zip(proofs)
        .map(|(a, proof)| JsonReceipt {
            index: a.index.0,
            leaf_hash: a.leaf_hash.to_hex(),
            checkpoint: note.clone(),
            inclusion_proof: proof.iter().map(Hash::to_hex).collect(),
            duplicate: a.duplicate,
        })
        .collect();
    Ok(match receipts.pop() {
        Some(receipt) if one => json_response(StatusCode::OK, &receipt),
        Some(last) => {
            receipts.push(last);
            json_response(StatusCode::OK, &JsonReceipts { receipts })
        }
        None => return Err(Error::NoReceipt.into()),
    })
}

/// The members of an audit `EventList` the webhook reads; the rest (`metadata`) is ignored.
struct EventList {
    kind: Option<String>,
    api_version: Option<String>,
    items: Vec<Value>,
}

impl EventList {
    fn from_value(value: Value) -> Result<Self, IngestError> {
        let Value::Object(mut list) = value else {
            return Err(IngestError::Json(format!(
                "expected an audit.k8s.io/v1 EventList (a JSON object), got {}",
                kind_of(&value)
            )));
        };
        let text = |v: Option<Value>| match v {
            Some(Value::String(s)) => Some(s),
            _ => None,
        };
        let kind = text(list.remove("kind"));
        let api_version = text(list.remove("apiVersion"));
        let items = match list.remove("items") {
            Some(Value::Array(items)) => items,
            // An empty list may omit `items` (Go's omitempty).
            None | Some(Value::Null) => Vec::new(),
            Some(other) => {
                return Err(IngestError::Json(format!(
                    "EventList.items must be an array of events, got {}",
                    kind_of(&other)
                )));
            }
        };
        Ok(EventList {
            kind,
            api_version,
            items,
        })
    }
}

async fn k8s_audit<S: LogStore>(
    State(state): State<Arc<IngestState<S>>>,
    request: Request,
) -> Response {
    match append_k8s(&state, request).await {
        Ok(answer) => json_response(StatusCode::OK, &answer),
        Err(e) => e.into_response(),
    }
}

async fn append_k8s<S: LogStore>(
    state: &IngestState<S>,
    request: Request,
) -> Result<K8sAnswer, IngestError> {
    let body = state.authorized_body(request).await?;
    let list = EventList::from_value(parse_json(&body)?)?;
    if list.kind.as_deref() != Some("EventList")
        || list.api_version.as_deref() != Some(K8S_AUDIT_API_VERSION)
    {
        return Err(IngestError::Json(format!(
            "expected kind EventList of apiVersion {K8S_AUDIT_API_VERSION} (the apiserver's --audit-webhook-version), got kind {:?} apiVersion {:?}",
            list.kind.unwrap_or_default(),
            list.api_version.unwrap_or_default()
        )));
    }
    let entries = canonical_events(&list.items, "items")?;
    let count = entries.len();
    // Every chunk is queued before any is awaited, so the list's events keep their order in the log.
    let limits = state.appender.limits();
    let mut pending = Vec::new();
    for chunk in chunks(
        entries,
        limits.max_request_entries,
        limits.max_request_bytes,
    ) {
        pending.push(state.appender.enqueue(chunk)?);
    }
    let mut tree_size = 0;
    for p in pending {
        let committed = p.wait().await?;
        tree_size = tree_size.max(committed.checkpoint.checkpoint.size.0);
    }
    Ok(K8sAnswer {
        entries: count,
        tree_size,
    })
}

/// Splits entries, in order, into submissions of at most `max_entries` entries and `max_bytes` bytes (a single
/// entry over either limit goes alone, for the appender to refuse with its own message).
fn chunks(entries: Vec<Vec<u8>>, max_entries: usize, max_bytes: usize) -> Vec<Vec<Vec<u8>>> {
    let mut out: Vec<Vec<Vec<u8>>> = Vec::new();
    let mut current: Vec<Vec<u8>> = Vec::new();
    let mut bytes = 0;
    for entry in entries {
        if !current.is_empty()
            && (current.len() >= max_entries.max(1) || bytes + entry.len() > max_bytes)
        {
            out.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += entry.len();
        current.push(entry);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Canonical JSON of each event of `events`, each required to be an object (`what` names the array in messages).
fn canonical_events(events: &[Value], what: &str) -> Result<Vec<Vec<u8>>, IngestError> {
    events
        .iter()
        .enumerate()
        .map(|(i, event)| match event {
            Value::Object(_) => canonical(event),
            other => Err(IngestError::Json(format!(
                "{what}[{i}] must be an audit event (a JSON object), got {}",
                kind_of(other)
            ))),
        })
        .collect()
}

/// The RFC 8785 canonical form of `value`.
pub fn canonical(value: &Value) -> Result<Vec<u8>, IngestError> {
    serde_json_canonicalizer::to_vec(value)
        .map_err(|e| IngestError::Json(format!("the event cannot be canonicalised: {e}")))
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Parses a body as one JSON value, refusing objects with a repeated member name.
pub fn parse_json(body: &[u8]) -> Result<Value, IngestError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = StrictValue
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e| IngestError::Json(format!("the body is not valid JSON: {e}")))?;
    Ok(value)
}

/// A `serde_json::Value` seed that refuses duplicate member names (serde_json would keep the last silently).
struct StrictValue;

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("a number that is not finite"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(StrictValue)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        // A BTreeMap only to find repeats; the object keeps serde_json's own map.
        let mut seen = BTreeMap::new();
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(StrictValue)?;
            if seen.insert(key.clone(), ()).is_some() {
                return Err(de::Error::custom(format!(
                    "member {key:?} appears twice in one object"
                )));
            }
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_canonical_form_sorts_members_and_normalises_numbers_and_strings() {
        let value = parse_json(br#"{ "b": 1.50, "a": [1e3, "\u0078"], "\u00e9": true }"#).unwrap();
        let canonical = String::from_utf8(canonical(&value).unwrap()).unwrap();
        assert_eq!(canonical, "{\"a\":[1000,\"x\"],\"b\":1.5,\"\u{e9}\":true}");
    }

    #[test]
    fn a_repeated_member_name_is_refused() {
        let e = parse_json(br#"{"a": 1, "b": {"c": 1, "c": 2}}"#).unwrap_err();
        assert!(e.to_string().contains(r#"member "c" appears twice"#), "{e}");
        assert!(parse_json(br#"{"a": 1, "b": {"a": 2}}"#).is_ok());
    }

    #[test]
    fn trailing_data_is_refused() {
        assert!(parse_json(br#"{"a": 1} {"b": 2}"#).is_err());
    }

    #[test]
    fn chunks_keep_order_and_limits() {
        let entries: Vec<Vec<u8>> = (0..7u8).map(|i| vec![i; 3]).collect();
        let split = chunks(entries.clone(), 3, 100);
        assert_eq!(split.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 1]);
        assert_eq!(split.concat(), entries);
        let by_bytes = chunks(entries, 100, 7);
        assert_eq!(
            by_bytes.iter().map(Vec::len).collect::<Vec<_>>(),
            [2, 2, 2, 1]
        );
    }

    #[test]
    fn too_large_requests_answer_413_and_the_rest_follow_the_grpc_code() {
        let too_many = IngestError::from(RequestError::TooManyEntries { got: 5, limit: 4 });
        assert_eq!(too_many.status().1, StatusCode::PAYLOAD_TOO_LARGE);
        for (e, http) in [
            (
                IngestError::from(RequestError::NoEntries),
                StatusCode::BAD_REQUEST,
            ),
            (
                IngestError::from(RequestError::MissingToken),
                StatusCode::UNAUTHORIZED,
            ),
            (
                IngestError::from(RequestError::UnknownToken),
                StatusCode::FORBIDDEN,
            ),
            (
                IngestError::Log(Error::QueueFull(1)),
                StatusCode::TOO_MANY_REQUESTS,
            ),
            (
                IngestError::Log(Error::Closed),
                StatusCode::SERVICE_UNAVAILABLE,
            ),
        ] {
            let (code, status) = e.status();
            assert_eq!(status, http, "{e}");
            assert_eq!(http_status(code), http, "{e}");
        }
    }
}
