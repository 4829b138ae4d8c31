//! The log's write-once archive on S3-compatible object storage (issue 14): every full hash tile, every full
//! entry bundle, and signed checkpoints with the partial tiles they need, in the C2SP tlog-tiles layout, so the
//! bucket is itself a static tlog-tiles log that any tile client can read and verify.
//!
//! The rules that make it an archive rather than a copy:
//! - **Write once.** Tiles and bundles are written only with create-if-absent (`If-None-Match: *`). Finding one
//!   already there is normal after a crash or retry when it is byte-identical; when it differs, that is an
//!   integrity alarm ([`Error::Integrity`]), never an overwrite. The bucket's S3 Object Lock default retention
//!   (COMPLIANCE; [`s3::init_bucket`]) keeps every written version from deletion, whoever holds the credentials.
//! - **Never fork.** The `checkpoint` object is replaced only by a conditional write on the ETag this writer last
//!   saw (`If-Match`); when that fails another writer has moved it, and this writer stops
//!   ([`Error::AnotherWriter`]) rather than publish a second history.
//! - **Data before checkpoint.** A checkpoint is published only after every tile its tree needs is in the
//!   bucket, so an archive interrupted anywhere is a valid log at its last checkpoint and resumes from it.
//!
//! Partial tiles: the tlog-tiles spec gives them their own paths (`.p/<W>`), immutable like full ones, and a
//! client needs them to prove anything in a tree whose size is not a multiple of 256. They are published, but only
//! with a checkpoint, and checkpoints are published at most once per [`Archiver`] interval: with Object Lock
//! nothing can be garbage-collected, so each published checkpoint costs at most one partial object per tile level
//! plus one partial bundle, and the interval bounds that cost.
//!
//! Layers: [`plan`] says which tiles a tree adds (pure), [`Archive`] writes and reads the objects, [`s3`] makes
//! the object store from `s3://bucket/prefix` and the AWS environment and sets up Object Lock, [`ArchiveTiles`]
//! reads the bucket back as a [`tlog_client::TileSource`].

mod archive;
pub mod audit;
mod error;
pub mod plan;
pub mod s3;
mod source;
#[cfg(feature = "test-util")]
pub mod testing;

pub use archive::{Archive, Head};
pub use error::{Error, Result};
/// The object store crate the archive is written with (its types appear in this crate's API).
pub use object_store;
pub use source::ArchiveTiles;

/// The object name of the checkpoint below the prefix.
pub const CHECKPOINT: &str = "checkpoint";
