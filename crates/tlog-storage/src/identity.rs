//! Whom a store belongs to: the log's origin and verifier key, recorded in its metadata when the log is created,
//! so that a store is never continued or checked with another log's key.

use tlog_checkpoint::VerifierKey;

use crate::{LogStore, StoreError};

/// Metadata key of the log's origin.
pub const META_ORIGIN: &str = "origin";
/// Metadata key of the log's verifier key (the C2SP vkey string).
pub const META_VERIFIER_KEY: &str = "verifier_key";

/// The identity a store records and a key's disagree.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdentityMismatch {
    #[error("the store belongs to origin {stored:?} but the key is for {expected:?}")]
    Origin { stored: String, expected: String },
    #[error("the store was written with key {stored} but the key given is {expected}")]
    Key { stored: String, expected: String },
    #[error("the store's identity metadata (origin, verifier key) is incomplete")]
    Incomplete,
}

/// What a store records about its identity, checked against `key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// The store records `key`'s origin and key.
    Matches,
    /// The store is empty and records no identity (a log not created yet); see [`record_identity`].
    Nothing,
}

/// Checks the identity recorded in `store` against `key`. A store that holds entries must record one.
pub fn check_identity<S: LogStore + ?Sized>(
    store: &S,
    key: &VerifierKey,
) -> Result<Result<Recorded, IdentityMismatch>, StoreError> {
    let recorded = (store.meta(META_ORIGIN)?, store.meta(META_VERIFIER_KEY)?);
    Ok(match recorded {
        (None, None) if store.tree_size()?.0 == 0 => Ok(Recorded::Nothing),
        (Some(origin), Some(vkey)) => {
            let expected = key.to_string();
            if origin != key.name().as_bytes() {
                Err(IdentityMismatch::Origin {
                    stored: String::from_utf8_lossy(&origin).into_owned(),
                    expected: key.name().to_owned(),
                })
            } else if vkey != expected.as_bytes() {
                Err(IdentityMismatch::Key {
                    stored: String::from_utf8_lossy(&vkey).into_owned(),
                    expected,
                })
            } else {
                Ok(Recorded::Matches)
            }
        }
        _ => Err(IdentityMismatch::Incomplete),
    })
}

/// Records `key`'s origin and verifier key in a new store.
pub fn record_identity<S: LogStore + ?Sized>(
    store: &S,
    key: &VerifierKey,
) -> Result<(), StoreError> {
    store.set_meta(META_ORIGIN, key.name().as_bytes())?;
    store.set_meta(META_VERIFIER_KEY, key.to_string().as_bytes())
}
