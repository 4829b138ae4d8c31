//! The tlog.v1 gRPC API (`proto/tlog/v1/log.proto`): generated prost messages, the encoded file descriptor set
//! for gRPC reflection, checked conversions between the wire's raw `bytes` fields and [`tlog_core`] types, and,
//! with the default `grpc` feature, the tonic client and server.
//!
//! Features:
//! - `grpc` (default): the tonic service stubs (`LogClient`, `Log`, `LogServer`), `From<ProtoError>` for
//!   `tonic::Status`, and the `validate` module. Without it the crate builds the messages and conversions only,
//!   with no tonic, tokio or hyper, for code that reads or writes the messages (receipts, checkpoints) offline.
//!
//! Hashes on the wire are RFC 9162 §2.1 SHA-256 values, so every `bytes` hash field must be exactly
//! 32 bytes; anything else is rejected with a [`ProtoError`] that names the offending field (and, for
//! repeated fields, the element), because these bytes come from an untrusted peer. Signed notes travel
//! as `bytes` but must be UTF-8 (C2SP signed-note), which [`string_from_bytes`] checks.

use std::fmt;

use tlog_core::{HASH_SIZE, Hash};

/// Generated code for the `tlog.v1` protobuf package.
pub mod v1 {
    // What `tonic::include_proto!` expands to, written out so the messages build without tonic.
    include!(concat!(env!("OUT_DIR"), "/tlog.v1.rs"));
}

#[cfg(feature = "grpc")]
pub use v1::log_client::LogClient;
#[cfg(feature = "grpc")]
pub use v1::log_server::{Log, LogServer};

/// Encoded `google.protobuf.FileDescriptorSet` of `tlog/v1/log.proto`, for `tonic-reflection`.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/tlog_v1_descriptor.bin"));

/// A protobuf field named in an error: the field name, plus the element index for repeated fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldRef {
    /// Field name as written in `log.proto`.
    pub name: &'static str,
    /// Position within a repeated field.
    pub index: Option<usize>,
}

impl FieldRef {
    /// A singular field.
    pub const fn field(name: &'static str) -> Self {
        Self { name, index: None }
    }

    /// Element `index` of a repeated field.
    pub const fn element(name: &'static str, index: usize) -> Self {
        Self {
            name,
            index: Some(index),
        }
    }
}

impl fmt::Display for FieldRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.index {
            Some(i) => write!(f, "{}[{i}]", self.name),
            None => f.write_str(self.name),
        }
    }
}

/// A message from the peer that does not satisfy the API contract.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    /// A hash field does not hold exactly [`HASH_SIZE`] bytes.
    #[error("{field}: expected {HASH_SIZE} bytes, got {got}")]
    HashLength {
        /// The offending field.
        field: FieldRef,
        /// The length received.
        got: usize,
    },
    /// A text field (such as a signed note) is not valid UTF-8.
    #[error("{field}: not valid UTF-8")]
    NotUtf8 {
        /// The offending field.
        field: FieldRef,
    },
    /// A message or oneof field the contract requires is absent.
    #[error("{field}: missing")]
    Missing {
        /// The absent field.
        field: FieldRef,
    },
}

#[cfg(feature = "grpc")]
impl From<ProtoError> for tonic::Status {
    /// A malformed request is the caller's fault.
    fn from(e: ProtoError) -> Self {
        tonic::Status::invalid_argument(e.to_string())
    }
}

/// Parses a 32-byte hash field.
pub fn hash_from_bytes(field: &'static str, b: &[u8]) -> Result<Hash, ProtoError> {
    parse_hash(FieldRef::field(field), b)
}

/// Parses a repeated hash field; an error names the first bad element.
pub fn hashes_from_bytes(field: &'static str, bs: &[Vec<u8>]) -> Result<Vec<Hash>, ProtoError> {
    bs.iter()
        .enumerate()
        .map(|(i, b)| parse_hash(FieldRef::element(field, i), b))
        .collect()
}

/// Encodes a hash for a `bytes` field.
pub fn hash_to_bytes(h: &Hash) -> Vec<u8> {
    h.0.to_vec()
}

/// Encodes hashes for a repeated `bytes` field.
pub fn hashes_to_bytes(hs: &[Hash]) -> Vec<Vec<u8>> {
    hs.iter().map(hash_to_bytes).collect()
}

/// Takes a `bytes` field that must hold UTF-8 text, such as a signed note (C2SP signed-note requires UTF-8).
pub fn string_from_bytes(field: &'static str, b: Vec<u8>) -> Result<String, ProtoError> {
    String::from_utf8(b).map_err(|_| ProtoError::NotUtf8 {
        field: FieldRef::field(field),
    })
}

/// Unwraps a field the contract requires (proto3 message and oneof fields are always optional on the wire).
pub fn required<T>(field: &'static str, value: Option<T>) -> Result<T, ProtoError> {
    value.ok_or(ProtoError::Missing {
        field: FieldRef::field(field),
    })
}

fn parse_hash(field: FieldRef, b: &[u8]) -> Result<Hash, ProtoError> {
    <[u8; HASH_SIZE]>::try_from(b)
        .map(Hash)
        .map_err(|_| ProtoError::HashLength {
            field,
            got: b.len(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn hash_round_trip() {
        let h = Hash([7; 32]);
        assert_eq!(hash_from_bytes("leaf_hash", &hash_to_bytes(&h)), Ok(h));
        let hs = vec![Hash([1; 32]), Hash([2; 32])];
        assert_eq!(hashes_from_bytes("hashes", &hashes_to_bytes(&hs)), Ok(hs));
    }

    #[test]
    fn bad_lengths_name_the_field() {
        let e = hash_from_bytes("root_hash", &[0; 33]).unwrap_err();
        assert_eq!(e.to_string(), "root_hash: expected 32 bytes, got 33");
        let proof = vec![vec![0; 32], vec![0; 32], vec![0; 32], vec![0; 31]];
        let e = hashes_from_bytes("inclusion_proof", &proof).unwrap_err();
        assert_eq!(
            e.to_string(),
            "inclusion_proof[3]: expected 32 bytes, got 31"
        );
        assert_eq!(
            hash_from_bytes("leaf_hash", &[]).unwrap_err(),
            ProtoError::HashLength {
                field: FieldRef::field("leaf_hash"),
                got: 0
            }
        );
    }

    #[test]
    fn text_fields_must_be_utf8() {
        assert_eq!(
            string_from_bytes("note", b"ok\n".to_vec()),
            Ok("ok\n".to_owned())
        );
        let e = string_from_bytes("note", vec![0xff]).unwrap_err();
        assert_eq!(e.to_string(), "note: not valid UTF-8");
    }

    #[test]
    fn missing_field() {
        let e = required::<v1::SignedCheckpoint>("checkpoint", None).unwrap_err();
        assert_eq!(e.to_string(), "checkpoint: missing");
    }

    #[cfg(feature = "grpc")]
    #[test]
    fn malformed_requests_are_invalid_argument() {
        let e = required::<v1::SignedCheckpoint>("checkpoint", None).unwrap_err();
        assert_eq!(tonic::Status::from(e).code(), tonic::Code::InvalidArgument);
    }

    #[test]
    fn descriptor_set_describes_the_log_service() {
        // Decoding as a message with no known fields walks (and so validates) every field, without needing
        // prost-types here.
        #[derive(Clone, PartialEq, prost::Message)]
        struct Opaque {}
        Opaque::decode(FILE_DESCRIPTOR_SET).unwrap();
        let text = String::from_utf8_lossy(FILE_DESCRIPTOR_SET);
        assert!(text.contains("tlog/v1/log.proto"));
        assert!(text.contains("GetConsistencyProof"));
    }

    #[test]
    fn messages_round_trip() {
        let r = v1::Receipt {
            index: 5,
            leaf_hash: vec![1; 32],
            checkpoint: Some(v1::SignedCheckpoint {
                note: b"note".to_vec(),
                size: 6,
                root_hash: vec![2; 32],
                timestamp_unix: 9,
                archived_size: 0,
            }),
            inclusion_proof: vec![vec![3; 32]],
            duplicate: true,
        };
        assert_eq!(
            v1::Receipt::decode(r.encode_to_vec().as_slice()).unwrap(),
            r
        );
    }
}
