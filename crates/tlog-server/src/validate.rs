//! Request policy: the checks of a `tlog.v1` request that need nothing but the request and the log's limits
//! (entry counts and sizes, entry ranges, the inclusion request's leaf, write tokens), and the limits' defaults.
//!
//! Each check lives here and only here: the appender checks a submission once before it is queued, the service
//! checks tokens, ranges and leaves before any read, and the sequencer and the reader rely on both. Nothing here
//! touches storage. The fuzzer's `request_handlers` drives these checks through the real service.

use sha2::{Digest, Sha256};
use tlog_core::{Hash, LeafIndex};
use tlog_proto::v1::get_inclusion_proof_request::Leaf;
use tlog_proto::{ProtoError, hash_from_bytes};

/// Largest entry accepted by default: the C2SP tlog-tiles entry-bundle limit (an entry's length is a u16 there).
pub const DEFAULT_MAX_ENTRY_BYTES: usize = 65_535;
/// Most entries in one submission (`Submit`, `SubmitBatch` or one `SubmitStream` message) by default; also the
/// sequencer's default batch size, so one request always fits in one batch.
pub const DEFAULT_MAX_REQUEST_ENTRIES: usize = 4096;
/// Most entry bytes in one submission by default (and in one sequencer batch).
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 16 << 20;

/// A request the server refuses before doing any work; [`RequestError::code`] is its gRPC status code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("no entries given")]
    NoEntries,
    #[error("{got} entries in one request; the limit is {limit}")]
    TooManyEntries { got: usize, limit: usize },
    #[error("the entries of one request total {bytes} bytes; the limit is {limit}")]
    RequestTooLarge { bytes: usize, limit: usize },
    #[error("entry {index} is empty")]
    EmptyEntry { index: usize },
    #[error("entry {index} has {len} bytes; the limit is {limit}")]
    EntryTooLarge {
        index: usize,
        len: usize,
        limit: usize,
    },
    #[error("reversed range [{start}, {end})")]
    ReversedRange { start: u64, end: u64 },
    #[error("range end {end} is beyond the log's size {size}")]
    RangeBeyondSize { end: u64, size: u64 },
    #[error("range of {len} entries exceeds the limit of {limit} per call")]
    RangeTooLarge { len: u64, limit: u64 },
    #[error("give the leaf by `index` or by `leaf_hash`")]
    MissingLeaf,
    #[error("a multiproof needs at least one leaf index")]
    NoIndices,
    #[error(
        "{got} leaf indices in one multiproof request; the limit (max_multiproof_indices) is {limit}"
    )]
    TooManyIndices { got: usize, limit: usize },
    #[error(
        "leaf indices must be strictly increasing: indices[{position}] = {index} does not exceed the one before"
    )]
    IndicesNotIncreasing { position: usize, index: u64 },
    /// A parameter of an HTTP query (the web explorer's JSON routes) that is missing or malformed.
    #[error("parameter `{name}`: {reason}")]
    BadParameter {
        name: &'static str,
        reason: &'static str,
    },
    #[error(transparent)]
    Proto(#[from] ProtoError),
    #[error("this call needs `authorization: Bearer <token>` metadata")]
    MissingToken,
    #[error("the authorization metadata must be `Bearer <token>`")]
    MalformedToken,
    #[error("the bearer token is not allowed to write")]
    UnknownToken,
    /// A known token without the scope the call needs.
    #[error("the bearer token lacks the {0} scope this call needs")]
    MissingScope(Scope),
    /// A token that is not one of the log's, for a call that always needs one.
    #[error("the bearer token is not one of the log's tokens")]
    UnknownScopedToken,
}

/// What a bearer token may do beyond the public reads (docs/private.md has the table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Submit entries and private payloads.
    Write,
    /// Read private payloads and their salts.
    ReadPrivate,
    /// Erase subjects.
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Write, Scope::ReadPrivate, Scope::Admin];

    pub fn name(self) -> &'static str {
        match self {
            Scope::Write => "write",
            Scope::ReadPrivate => "read-private",
            Scope::Admin => "admin",
        }
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Parses a token with its scopes, `SCOPE[,SCOPE...]=TOKEN` (e.g. `read-private,admin=s3cret`).
pub fn parse_scoped_token(spec: &str) -> Result<(Vec<Scope>, String), String> {
    let (scopes, token) = spec
        .split_once('=')
        .ok_or_else(|| "a scoped token is SCOPE[,SCOPE...]=TOKEN".to_string())?;
    let scopes = scopes
        .split(',')
        .map(|name| {
            Scope::ALL
                .into_iter()
                .find(|s| s.name() == name.trim())
                .ok_or_else(|| format!("unknown scope {name:?} (write, read-private, admin)"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let token = token.trim();
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("a token is visible ASCII, not empty".into());
    }
    Ok((scopes, token.to_string()))
}

impl RequestError {
    /// The gRPC status code the server answers with.
    pub fn code(&self) -> tonic::Code {
        match self {
            RequestError::RangeBeyondSize { .. } => tonic::Code::OutOfRange,
            RequestError::MissingToken | RequestError::MalformedToken => {
                tonic::Code::Unauthenticated
            }
            RequestError::UnknownToken
            | RequestError::MissingScope(_)
            | RequestError::UnknownScopedToken => tonic::Code::PermissionDenied,
            _ => tonic::Code::InvalidArgument,
        }
    }
}

/// Checks a submission (`Submit`, `SubmitBatch` or one `SubmitStream` message) before it is queued: 1 to
/// `max_request_entries` entries, each of 1 to `max_entry_bytes` bytes.
pub fn check_entries(
    entries: &[Vec<u8>],
    max_request_entries: usize,
    max_entry_bytes: usize,
) -> Result<(), RequestError> {
    if entries.is_empty() {
        return Err(RequestError::NoEntries);
    }
    if entries.len() > max_request_entries {
        return Err(RequestError::TooManyEntries {
            got: entries.len(),
            limit: max_request_entries,
        });
    }
    for (index, e) in entries.iter().enumerate() {
        if e.is_empty() {
            return Err(RequestError::EmptyEntry { index });
        }
        if e.len() > max_entry_bytes {
            return Err(RequestError::EntryTooLarge {
                index,
                len: e.len(),
                limit: max_entry_bytes,
            });
        }
    }
    Ok(())
}

/// Checks the total size of a submission's entries (one sequencer batch holds at most `max_request_bytes`).
pub fn check_request_bytes(bytes: usize, max_request_bytes: usize) -> Result<(), RequestError> {
    if bytes > max_request_bytes {
        return Err(RequestError::RequestTooLarge {
            bytes,
            limit: max_request_bytes,
        });
    }
    Ok(())
}

/// Checks a `GetEntries` range `[start, end)` against the log's `size` and the per-call limit. An empty range
/// `[n, n)` is valid (it streams no pages); a reversed one is a mistake.
pub fn check_entries_range(
    start: u64,
    end: u64,
    size: u64,
    max_range: u64,
) -> Result<(), RequestError> {
    if start > end {
        return Err(RequestError::ReversedRange { start, end });
    }
    if end > size {
        return Err(RequestError::RangeBeyondSize { end, size });
    }
    // start <= end, so this cannot underflow.
    let len = end - start;
    if len > max_range {
        return Err(RequestError::RangeTooLarge {
            len,
            limit: max_range,
        });
    }
    Ok(())
}

/// Checks a `GetMultiProof` request's indices before any read: 1 to `limit` of them, strictly increasing. Whether
/// they are in the tree depends on the log's state: the reader checks that.
pub fn check_multi_indices(indices: &[u64], limit: usize) -> Result<Vec<LeafIndex>, RequestError> {
    if indices.is_empty() {
        return Err(RequestError::NoIndices);
    }
    if indices.len() > limit {
        return Err(RequestError::TooManyIndices {
            got: indices.len(),
            limit,
        });
    }
    if let Some(position) = indices.windows(2).position(|w| w[1] <= w[0]) {
        return Err(RequestError::IndicesNotIncreasing {
            position: position + 1,
            index: indices[position + 1],
        });
    }
    Ok(indices.iter().copied().map(LeafIndex).collect())
}

/// The leaf a `GetInclusionProof` request names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeafRef {
    Index(LeafIndex),
    Hash(Hash),
}

/// Reads the `leaf` oneof of a `GetInclusionProof` request: an index, or a leaf hash of exactly 32 bytes.
pub fn inclusion_leaf(leaf: Option<&Leaf>) -> Result<LeafRef, RequestError> {
    match leaf {
        Some(Leaf::Index(index)) => Ok(LeafRef::Index(LeafIndex(*index))),
        Some(Leaf::LeafHash(bytes)) => Ok(LeafRef::Hash(hash_from_bytes("leaf_hash", bytes)?)),
        None => Err(RequestError::MissingLeaf),
    }
}

/// Bearer tokens and their scopes, kept as SHA-256 digests and compared in constant time. Writes are open when
/// no token has the write scope; reading private payloads and erasing always need a token with that scope.
#[derive(Clone, Default)]
pub struct WriteTokens(Vec<([u8; 32], u8)>);

impl WriteTokens {
    /// Tokens with the write scope only (`--write-token`).
    pub fn new<T: AsRef<str>>(tokens: impl IntoIterator<Item = T>) -> Self {
        Self::scoped(tokens.into_iter().map(|t| (vec![Scope::Write], t)))
    }

    /// Tokens with the scopes given for each.
    pub fn scoped<T: AsRef<str>>(tokens: impl IntoIterator<Item = (Vec<Scope>, T)>) -> Self {
        WriteTokens(
            tokens
                .into_iter()
                .map(|(scopes, t)| {
                    (
                        Sha256::digest(t.as_ref().as_bytes()).into(),
                        scopes.iter().fold(0, |bits, s| bits | s.bit()),
                    )
                })
                .collect(),
        )
    }

    /// These tokens and `other`'s.
    pub fn merged(mut self, other: WriteTokens) -> Self {
        self.0.extend(other.0);
        self
    }

    /// No token has the write scope: writes are open.
    pub fn is_open(&self) -> bool {
        !self
            .0
            .iter()
            .any(|(_, bits)| bits & Scope::Write.bit() != 0)
    }

    /// Checks the raw value of a write's `authorization` metadata (`None` when absent).
    pub fn check_authorization(&self, header: Option<&[u8]>) -> Result<(), RequestError> {
        self.authorize(header, Scope::Write)
    }

    /// Checks that the raw `authorization` value (`None` when absent) names a token with `scope`.
    pub fn authorize(&self, header: Option<&[u8]>, scope: Scope) -> Result<(), RequestError> {
        if scope == Scope::Write && self.is_open() {
            return Ok(());
        }
        let header = header.ok_or(RequestError::MissingToken)?;
        // Only what an HTTP/2 header value may hold as text (visible ASCII, space, tab), as `to_str` allowed.
        if !header
            .iter()
            .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b))
        {
            return Err(RequestError::MalformedToken);
        }
        let token = std::str::from_utf8(header)
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            // `Bearer ` with nothing after it names no token: malformed, not a wrong token.
            .filter(|t| !t.is_empty())
            .ok_or(RequestError::MalformedToken)?;
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        // Every configured token is compared, so the time taken does not say which (if any) matched.
        let (known, bits) = self.0.iter().fold((false, 0u8), |(found, bits), (t, b)| {
            let hit = constant_time_eq(t, &digest);
            (found | hit, bits | (*b & 0u8.wrapping_sub(u8::from(hit))))
        });
        match (known, bits & scope.bit() != 0) {
            (true, true) => Ok(()),
            (true, false) => Err(RequestError::MissingScope(scope)),
            (false, _) if scope == Scope::Write => Err(RequestError::UnknownToken),
            (false, _) => Err(RequestError::UnknownScopedToken),
        }
    }

    /// Checks that a request's `authorization` metadata names a token with `scope`.
    pub fn check_scope<T>(
        &self,
        request: &tonic::Request<T>,
        scope: Scope,
    ) -> Result<(), RequestError> {
        self.authorize(
            request
                .metadata()
                .get("authorization")
                .map(|v| v.as_bytes()),
            scope,
        )
    }

    /// Checks a write request's `authorization` metadata.
    pub fn check<T>(&self, request: &tonic::Request<T>) -> Result<(), RequestError> {
        self.check_authorization(
            request
                .metadata()
                .get("authorization")
                .map(|v| v.as_bytes()),
        )
    }
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_limits() {
        assert_eq!(check_entries(&[], 2, 3), Err(RequestError::NoEntries));
        assert_eq!(
            check_entries(&[vec![1], vec![2], vec![3]], 2, 3)
                .unwrap_err()
                .code(),
            tonic::Code::InvalidArgument
        );
        assert_eq!(
            check_entries(&[vec![1], vec![]], 2, 3),
            Err(RequestError::EmptyEntry { index: 1 })
        );
        assert!(check_entries(&[vec![0; 3]], 2, 3).is_ok());
        assert_eq!(
            check_entries(&[vec![0; 4]], 2, 3).unwrap_err().to_string(),
            "entry 0 has 4 bytes; the limit is 3"
        );
    }

    #[test]
    fn request_bytes() {
        assert!(check_request_bytes(100, 100).is_ok());
        assert_eq!(
            check_request_bytes(101, 100),
            Err(RequestError::RequestTooLarge {
                bytes: 101,
                limit: 100
            })
        );
        assert_eq!(
            check_request_bytes(101, 100).unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
    }

    #[test]
    fn ranges() {
        assert!(check_entries_range(5, 5, 5, 0).is_ok());
        assert_eq!(
            check_entries_range(6, 5, 10, 100).unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
        assert_eq!(
            check_entries_range(0, u64::MAX, 10, u64::MAX)
                .unwrap_err()
                .code(),
            tonic::Code::OutOfRange
        );
        assert_eq!(
            check_entries_range(0, 10, 10, 9),
            Err(RequestError::RangeTooLarge { len: 10, limit: 9 })
        );
    }

    #[test]
    fn leaves() {
        assert_eq!(
            inclusion_leaf(Some(&Leaf::Index(u64::MAX))),
            Ok(LeafRef::Index(LeafIndex(u64::MAX)))
        );
        assert_eq!(
            inclusion_leaf(Some(&Leaf::LeafHash(vec![7; 32]))),
            Ok(LeafRef::Hash(Hash([7; 32])))
        );
        assert_eq!(
            inclusion_leaf(Some(&Leaf::LeafHash(vec![7; 31])))
                .unwrap_err()
                .code(),
            tonic::Code::InvalidArgument
        );
        assert_eq!(inclusion_leaf(None), Err(RequestError::MissingLeaf));
    }

    #[test]
    fn tokens() {
        let open = WriteTokens::default();
        assert!(open.check_authorization(None).is_ok());
        let tokens = WriteTokens::new(["s3cret", "other"]);
        let check = |h: Option<&[u8]>| tokens.check_authorization(h).map_err(|e| e.code());
        assert_eq!(check(None), Err(tonic::Code::Unauthenticated));
        assert_eq!(check(Some(b"s3cret")), Err(tonic::Code::Unauthenticated));
        assert_eq!(check(Some(b"Bearer ")), Err(tonic::Code::Unauthenticated));
        assert_eq!(
            check(Some(b"Bearer  \t")),
            Err(tonic::Code::Unauthenticated)
        );
        assert_eq!(
            check(Some(b"Bearer \xffs3cret")),
            Err(tonic::Code::Unauthenticated)
        );
        assert_eq!(
            check(Some(b"Bearer nope")),
            Err(tonic::Code::PermissionDenied)
        );
        assert_eq!(check(Some(b"Bearer s3cret")), Ok(()));
        assert_eq!(check(Some(b"Bearer other ")), Ok(()));
    }

    #[test]
    fn scoped_tokens() {
        let (scopes, token) = parse_scoped_token("read-private,admin=t1").unwrap();
        assert_eq!(scopes, [Scope::ReadPrivate, Scope::Admin]);
        let tokens = WriteTokens::scoped([(scopes, token), (vec![Scope::Write], "w".into())]);
        let check = |h: &[u8], scope| tokens.authorize(Some(h), scope);
        assert_eq!(check(b"Bearer t1", Scope::Admin), Ok(()));
        assert_eq!(check(b"Bearer t1", Scope::ReadPrivate), Ok(()));
        assert_eq!(
            check(b"Bearer t1", Scope::Write),
            Err(RequestError::MissingScope(Scope::Write))
        );
        assert_eq!(
            check(b"Bearer w", Scope::Admin),
            Err(RequestError::MissingScope(Scope::Admin))
        );
        assert_eq!(
            check(b"Bearer nope", Scope::Admin),
            Err(RequestError::UnknownScopedToken)
        );
        // Only write-scoped tokens close writes; other scopes never open without a token.
        let readers = WriteTokens::scoped([(vec![Scope::ReadPrivate], "r")]);
        assert!(readers.is_open());
        assert_eq!(readers.authorize(None, Scope::Write), Ok(()));
        assert_eq!(
            readers.authorize(None, Scope::ReadPrivate),
            Err(RequestError::MissingToken)
        );
        assert!(parse_scoped_token("root=x").is_err());
        assert!(parse_scoped_token("write").is_err());
        assert!(parse_scoped_token("write=").is_err());
    }
}
