//! Private payloads, their keys and their erasure (docs/private.md).
//!
//! A private submission becomes a version-1 private entry ([`tlog_core::private`]): the log's leaf commits to the
//! subject, a fresh 32-byte salt and the payload, and holds neither. The salt and payload are sealed at rest with
//! XChaCha20-Poly1305 under the subject's data key; data keys are wrapped by a [`KeyWrapper`] (the master key file
//! [`FileMasterKey`], beside the log key; a KMS could take its place). The sequencer is the one writer of both: it
//! seals a payload once the entry has its index, and writes the sealed row and any new wrapped key in the same
//! store write as the entry, so an acknowledged private entry's payload is as durable as the entry.
//!
//! Erasure (crypto-shredding) is one more sequencer batch: the erasure entry ([`erasure_entry`]), the subject's
//! key record replaced by a tombstone (the wrapped key gone), and every payload row of the subject deleted, all in
//! one atomic write: a crash leaves the log before or after it. The store then purges the deleted rows from its
//! files ([`tlog_storage::LogStore::purge_erased`]), again at the next start if a crash came first.
//!
//! Formats (each versioned by its first byte or prefix):
//!
//! ```text
//! erasure entry   = tlog_core::private::erasure_entry: "tlog-erasure-v1" 0x00 || subject_len || subject ||
//!                   erased_at (u64 BE, Unix seconds)
//! key record      = 0x01 || wrapped key                          (active)
//!                 | 0x02 || erased_at (u64 BE) || erasure entry index (u64 BE)   (erased)
//! wrapped key     = 0x01 || nonce (24) || XChaCha20-Poly1305(master key, nonce, data key,
//!                                                             AAD = "tlog-data-key-v1" 0x00 || subject_len || subject)
//! sealed payload  = 0x01 || nonce (24) || XChaCha20-Poly1305(data key, nonce, salt (32) || payload,
//!                          AAD = "tlog-payload-v1" 0x00 || subject_len || subject || index (u64 BE) || leaf hash)
//! ```

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use tlog_core::private::{self as format, SALT_LEN};
use tlog_core::{Hash, LeafIndex, leaf_hash};
use tlog_storage::{LogStore, PayloadRow, StoreError};

/// File name of the master key in the data folder, beside `log.key`.
pub const MASTER_KEY_FILE: &str = "master.key";
pub use format::ERASURE_ENTRY_PREFIX;
/// Prefixes a public submission may not start with: only the log writes such entries.
pub const RESERVED_PREFIXES: [&[u8]; 2] = [format::PRIVATE_ENTRY_PREFIX, ERASURE_ENTRY_PREFIX];

const KEY_TEXT_PREFIX: &str = "tlog-master-key-v1 ";
const DATA_KEY_AAD: &[u8] = b"tlog-data-key-v1\0";
const PAYLOAD_AAD: &[u8] = b"tlog-payload-v1\0";
const SEAL_VERSION: u8 = 1;
const RECORD_ACTIVE: u8 = 1;
const RECORD_ERASED: u8 = 2;
const NONCE_LEN: usize = 24;
const KEY_LEN: usize = 32;

/// What goes wrong with private payloads; [`PrivateError::code`] is its gRPC status code.
#[derive(Debug, thiserror::Error)]
pub enum PrivateError {
    #[error(transparent)]
    Format(#[from] format::PrivateError),
    #[error(
        "entry {index} starts with the reserved prefix {prefix:?}: only the log writes private and erasure entries (submit private payloads with SubmitPrivate)"
    )]
    ReservedPrefix { index: usize, prefix: String },
    #[error("this log has no master key, so it takes no private payloads")]
    NotConfigured,
    #[error("entry {0} is not a private entry")]
    NotPrivate(u64),
    #[error("no payload is stored for private entry {0} (e.g. a log restored from its archive)")]
    NoPayload(u64),
    #[error(
        "subject {subject:?} was erased at {at} (erasure entry {index}); its payloads are gone"
    )]
    Erased {
        subject: String,
        at: String,
        index: u64,
    },
    #[error("a stored key or payload of subject {subject:?} does not decrypt or parse: {why}")]
    Damaged { subject: String, why: &'static str },
    #[error("master key file {path}: {why}")]
    MasterKey { path: PathBuf, why: String },
    #[error("no OS randomness: {0}")]
    Randomness(getrandom::Error),
    #[error("storage: {0}")]
    Store(#[from] StoreError),
}

impl PrivateError {
    pub fn code(&self) -> tonic::Code {
        use tonic::Code;
        match self {
            PrivateError::Format(_) | PrivateError::ReservedPrefix { .. } => Code::InvalidArgument,
            PrivateError::NotConfigured | PrivateError::Erased { .. } => Code::FailedPrecondition,
            PrivateError::NotPrivate(_) | PrivateError::NoPayload(_) => Code::NotFound,
            PrivateError::Damaged { .. } => Code::DataLoss,
            PrivateError::MasterKey { .. }
            | PrivateError::Randomness(_)
            | PrivateError::Store(_) => Code::Internal,
        }
    }
}

type Result<T, E = PrivateError> = std::result::Result<T, E>;

/// Refuses public entries that start with a reserved prefix: they could pose as commitments or erasures.
pub fn check_public(entries: &[Vec<u8>]) -> Result<()> {
    for (index, entry) in entries.iter().enumerate() {
        if let Some(prefix) = RESERVED_PREFIXES.iter().find(|p| entry.starts_with(p)) {
            return Err(PrivateError::ReservedPrefix {
                index,
                prefix: String::from_utf8_lossy(&prefix[..prefix.len() - 1]).into_owned(),
            });
        }
    }
    Ok(())
}

fn random<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes).map_err(PrivateError::Randomness)?;
    Ok(bytes)
}

/// A subject's data key. Not `Debug`, so it cannot end up in a log line.
#[derive(Clone)]
pub struct DataKey([u8; KEY_LEN]);

/// Wraps and unwraps subjects' data keys. The wrapped form is what the store keeps; whoever holds the wrapping
/// key (a file, a KMS) can unwrap it.
pub trait KeyWrapper: Send + Sync + 'static {
    fn wrap(&self, subject: &[u8], key: &DataKey) -> Result<Vec<u8>>;
    fn unwrap(&self, subject: &[u8], wrapped: &[u8]) -> Result<DataKey>;
}

fn aad(domain: &[u8], subject: &[u8], tail: &[&[u8]]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(domain.len() + 1 + subject.len() + 40);
    aad.extend_from_slice(domain);
    aad.push(subject.len() as u8);
    aad.extend_from_slice(subject);
    for t in tail {
        aad.extend_from_slice(t);
    }
    aad
}

/// `version || nonce || ciphertext` of `plaintext` under `key`.
fn seal(key: &[u8; KEY_LEN], plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
    let nonce: [u8; NONCE_LEN] = random()?;
    let cipher = XChaCha20Poly1305::new(key.into());
    let sealed = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .expect("XChaCha20-Poly1305 encrypts any message that fits in memory");
    let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
    out.push(SEAL_VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

fn open(key: &[u8; KEY_LEN], sealed: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
    let (&version, rest) = sealed.split_first()?;
    if version != SEAL_VERSION || rest.len() < NONCE_LEN {
        return None;
    }
    let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
    XChaCha20Poly1305::new(key.into())
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .ok()
}

fn damaged(subject: &[u8], why: &'static str) -> PrivateError {
    PrivateError::Damaged {
        subject: String::from_utf8_lossy(subject).into_owned(),
        why,
    }
}

/// The master key in a file (mode 0600): `tlog-master-key-v1 <64 hex digits>`.
pub struct FileMasterKey([u8; KEY_LEN]);

impl FileMasterKey {
    /// Reads the key in `path`, creating it (0600) when there is none; says whether it created it.
    pub fn load_or_create(path: &Path) -> Result<(FileMasterKey, bool)> {
        let err = |why: String| PrivateError::MasterKey {
            path: path.to_owned(),
            why,
        };
        if path.exists() {
            let mode = fs::metadata(path)
                .map_err(|e| err(e.to_string()))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(err(format!(
                    "accessible by other users (mode {:o}); run `chmod 600 {}`",
                    mode & 0o777,
                    path.display()
                )));
            }
            let text = fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
            let hex = text
                .trim()
                .strip_prefix(KEY_TEXT_PREFIX)
                .ok_or_else(|| err(format!("does not start with {KEY_TEXT_PREFIX:?}")))?;
            let bytes = decode_hex(hex).ok_or_else(|| err("not 64 hex digits".into()))?;
            return Ok((FileMasterKey(bytes), false));
        }
        let key: [u8; KEY_LEN] = random()?;
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| err(format!("creating: {e}")))?;
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        file.write_all(format!("{KEY_TEXT_PREFIX}{hex}\n").as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| err(format!("writing: {e}")))?;
        Ok((FileMasterKey(key), true))
    }

    /// The master key file of a data folder.
    pub fn path_in(data_dir: &Path) -> PathBuf {
        data_dir.join(MASTER_KEY_FILE)
    }
}

fn decode_hex(hex: &str) -> Option<[u8; KEY_LEN]> {
    if hex.len() != KEY_LEN * 2 || !hex.is_ascii() {
        return None;
    }
    let mut out = [0u8; KEY_LEN];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

impl KeyWrapper for FileMasterKey {
    fn wrap(&self, subject: &[u8], key: &DataKey) -> Result<Vec<u8>> {
        seal(&self.0, &key.0, &aad(DATA_KEY_AAD, subject, &[]))
    }

    fn unwrap(&self, subject: &[u8], wrapped: &[u8]) -> Result<DataKey> {
        let plain = open(&self.0, wrapped, &aad(DATA_KEY_AAD, subject, &[]))
            .ok_or_else(|| damaged(subject, "the data key does not unwrap with the master key"))?;
        let key = <[u8; KEY_LEN]>::try_from(plain.as_slice())
            .map_err(|_| damaged(subject, "the data key has the wrong length"))?;
        Ok(DataKey(key))
    }
}

/// A subject's key record, as the store keeps it in `Column::SubjectKeys`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRecord {
    Active(Vec<u8>),
    Erased { at: u64, index: LeafIndex },
}

impl KeyRecord {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            KeyRecord::Active(wrapped) => [&[RECORD_ACTIVE][..], wrapped].concat(),
            KeyRecord::Erased { at, index } => {
                let mut out = vec![RECORD_ERASED];
                out.extend_from_slice(&at.to_be_bytes());
                out.extend_from_slice(&index.0.to_be_bytes());
                out
            }
        }
    }

    pub fn decode(subject: &[u8], bytes: &[u8]) -> Result<KeyRecord> {
        match bytes.split_first() {
            Some((&RECORD_ACTIVE, wrapped)) => Ok(KeyRecord::Active(wrapped.to_vec())),
            Some((&RECORD_ERASED, rest)) if rest.len() == 16 => Ok(KeyRecord::Erased {
                at: u64::from_be_bytes(rest[..8].try_into().expect("8 bytes")),
                index: LeafIndex(u64::from_be_bytes(rest[8..].try_into().expect("8 bytes"))),
            }),
            _ => Err(damaged(subject, "the key record is malformed")),
        }
    }
}

/// RFC 3339 UTC time of Unix seconds `at`.
pub fn rfc3339(at: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(at))
        .to_string()
}

fn erased(subject: &[u8], at: u64, index: LeafIndex) -> PrivateError {
    PrivateError::Erased {
        subject: String::from_utf8_lossy(subject).into_owned(),
        at: rfc3339(at),
        index: index.0,
    }
}

/// The public entry recording that `subject` was erased at `at` (Unix seconds): [`format::erasure_entry`].
pub fn erasure_entry(subject: &[u8], at: u64) -> Result<Vec<u8>> {
    Ok(format::erasure_entry(subject, at)?)
}

/// What a private submission hands the sequencer for one entry: the opening it must seal once the entry has
/// its index. Not `Debug`: it holds the payload.
pub struct Opening {
    pub subject: Vec<u8>,
    pub salt: [u8; SALT_LEN],
    pub payload: Vec<u8>,
}

/// A private entry and its opening, made with a fresh salt.
pub fn commit(subject: &[u8], payload: Vec<u8>) -> Result<(Vec<u8>, Opening)> {
    let salt: [u8; SALT_LEN] = random()?;
    let entry = format::private_entry(subject, &salt, &payload)?;
    Ok((
        entry,
        Opening {
            subject: subject.to_vec(),
            salt,
            payload,
        },
    ))
}

fn payload_aad(subject: &[u8], index: LeafIndex, leaf: &Hash) -> Vec<u8> {
    aad(PAYLOAD_AAD, subject, &[&index.0.to_be_bytes(), &leaf.0])
}

/// The sequencer's side: data keys by subject (cached once unwrapped), sealing. Only the sequencer holds one.
pub(crate) struct Vault {
    wrapper: Arc<dyn KeyWrapper>,
    keys: HashMap<Vec<u8>, Known>,
}

#[derive(Clone)]
enum Known {
    Key(DataKey),
    Erased { at: u64, index: LeafIndex },
}

/// What one batch adds to the vault: applied by [`Vault::commit`] only once the batch is stored.
#[derive(Default)]
pub(crate) struct VaultBatch {
    new_keys: HashMap<Vec<u8>, DataKey>,
    erased: Vec<(Vec<u8>, u64, LeafIndex)>,
}

impl Vault {
    pub(crate) fn new(wrapper: Arc<dyn KeyWrapper>) -> Self {
        Vault {
            wrapper,
            keys: HashMap::new(),
        }
    }

    fn known<S: LogStore>(&mut self, store: &S, subject: &[u8]) -> Result<Option<Known>> {
        if let Some(k) = self.keys.get(subject) {
            return Ok(Some(k.clone()));
        }
        let Some(record) = store.subject_key(subject)? else {
            return Ok(None);
        };
        let known = match KeyRecord::decode(subject, &record)? {
            KeyRecord::Active(wrapped) => Known::Key(self.wrapper.unwrap(subject, &wrapped)?),
            KeyRecord::Erased { at, index } => Known::Erased { at, index },
        };
        self.keys.insert(subject.to_vec(), known.clone());
        Ok(Some(known))
    }

    /// Refuses a private submission or an erasure for a subject already erased. (An erasure is sequenced in a
    /// batch of its own, so no batch both erases a subject and files payloads under it.)
    pub(crate) fn check_not_erased<S: LogStore>(
        &mut self,
        store: &S,
        subject: &[u8],
    ) -> Result<()> {
        match self.known(store, subject)? {
            Some(Known::Erased { at, index }) => Err(erased(subject, at, index)),
            _ => Ok(()),
        }
    }

    /// Seals `opening` for the entry at `index`; a subject's first payload creates its data key, whose wrapped
    /// record joins the store write (`key_rows`).
    pub(crate) fn seal<S: LogStore>(
        &mut self,
        store: &S,
        batch: &mut VaultBatch,
        opening: &Opening,
        index: LeafIndex,
        leaf: &Hash,
        key_rows: &mut Vec<(Vec<u8>, Vec<u8>)>,
    ) -> Result<PayloadRow> {
        let subject = &opening.subject;
        let key = match batch.new_keys.get(subject) {
            Some(key) => key.clone(),
            None => match self.known(store, subject)? {
                Some(Known::Key(key)) => key,
                Some(Known::Erased { at, index }) => return Err(erased(subject, at, index)),
                None => {
                    let key = DataKey(random()?);
                    let wrapped = self.wrapper.wrap(subject, &key)?;
                    key_rows.push((subject.clone(), KeyRecord::Active(wrapped).encode()));
                    batch.new_keys.insert(subject.clone(), key.clone());
                    key
                }
            },
        };
        let mut plain = Vec::with_capacity(SALT_LEN + opening.payload.len());
        plain.extend_from_slice(&opening.salt);
        plain.extend_from_slice(&opening.payload);
        let sealed = seal(&key.0, &plain, &payload_aad(subject, index, leaf))?;
        Ok(PayloadRow {
            subject: subject.clone(),
            index,
            sealed,
        })
    }

    /// Records an erasure the batch makes (its tombstone is `KeyRecord::Erased`).
    pub(crate) fn erase(batch: &mut VaultBatch, subject: &[u8], at: u64, index: LeafIndex) {
        batch.erased.push((subject.to_vec(), at, index));
    }

    /// The batch was stored: its new keys and erasures become known.
    pub(crate) fn commit(&mut self, batch: VaultBatch) {
        for (subject, key) in batch.new_keys {
            self.keys.insert(subject, Known::Key(key));
        }
        for (subject, at, index) in batch.erased {
            self.keys.insert(subject, Known::Erased { at, index });
        }
    }
}

/// A private entry's opening as read back: the entry, its subject, salt and payload. Not `Debug`.
pub struct Opened {
    pub index: LeafIndex,
    pub entry: Vec<u8>,
    pub subject: Vec<u8>,
    pub salt: Vec<u8>,
    pub payload: Vec<u8>,
}

/// Reads and decrypts the payload of the private entry at `index` (blocking: store reads).
pub fn read_payload<S: LogStore>(
    store: &S,
    wrapper: &dyn KeyWrapper,
    index: LeafIndex,
) -> Result<Opened, crate::error::Error> {
    let entry = store
        .entries(index, LeafIndex(index.0 + 1))?
        .pop()
        .ok_or(PrivateError::NotPrivate(index.0))?;
    let subject = match format::parse_private_entry(&entry).map_err(PrivateError::from)? {
        Some(p) => p.subject.to_vec(),
        None => return Err(PrivateError::NotPrivate(index.0).into()),
    };
    let record = store
        .subject_key(&subject)?
        .ok_or(PrivateError::NoPayload(index.0))?;
    let key = match KeyRecord::decode(&subject, &record)? {
        KeyRecord::Active(wrapped) => wrapper.unwrap(&subject, &wrapped)?,
        KeyRecord::Erased { at, index } => return Err(erased(&subject, at, index).into()),
    };
    let sealed = store
        .payload(&subject, index)?
        .ok_or(PrivateError::NoPayload(index.0))?;
    let plain = open(
        &key.0,
        &sealed,
        &payload_aad(&subject, index, &leaf_hash(&entry)),
    )
    .ok_or_else(|| damaged(&subject, "a payload does not decrypt with its data key"))?;
    if plain.len() < SALT_LEN {
        return Err(damaged(&subject, "a payload is shorter than its salt").into());
    }
    let (salt, payload) = plain.split_at(SALT_LEN);
    Ok(Opened {
        index,
        subject,
        salt: salt.to_vec(),
        payload: payload.to_vec(),
        entry,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrapper() -> FileMasterKey {
        FileMasterKey([9; KEY_LEN])
    }

    #[test]
    fn a_wrapped_key_unwraps_only_for_its_subject() {
        let w = wrapper();
        let key = DataKey([5; KEY_LEN]);
        let wrapped = w.wrap(b"s-1", &key).unwrap();
        assert_eq!(w.unwrap(b"s-1", &wrapped).unwrap().0, key.0);
        assert!(w.unwrap(b"s-2", &wrapped).is_err());
        assert!(
            FileMasterKey([8; KEY_LEN])
                .unwrap(b"s-1", &wrapped)
                .is_err()
        );
    }

    #[test]
    fn a_sealed_payload_opens_only_at_its_index_and_leaf() {
        let key = [3; KEY_LEN];
        let leaf = Hash([1; 32]);
        let sealed = seal(&key, b"payload", &payload_aad(b"s", LeafIndex(4), &leaf)).unwrap();
        assert_eq!(
            open(&key, &sealed, &payload_aad(b"s", LeafIndex(4), &leaf)).as_deref(),
            Some(&b"payload"[..])
        );
        assert!(open(&key, &sealed, &payload_aad(b"s", LeafIndex(5), &leaf)).is_none());
        assert!(open(&key, &sealed, &payload_aad(b"t", LeafIndex(4), &leaf)).is_none());
        assert!(
            open(
                &key,
                &sealed,
                &payload_aad(b"s", LeafIndex(4), &Hash([2; 32]))
            )
            .is_none()
        );
    }

    #[test]
    fn erasure_and_private_entries_are_reserved() {
        let entry = erasure_entry(b"u-1", 1_700_000_000).unwrap();
        assert!(check_public(&[b"ok".to_vec(), entry]).is_err());
        let private = format::private_entry(b"u-1", &[0; 32], b"p").unwrap();
        assert!(matches!(
            check_public(&[private]),
            Err(PrivateError::ReservedPrefix { index: 0, .. })
        ));
        assert!(check_public(&[b"tlog-private-v1".to_vec()]).is_ok());
    }

    #[test]
    fn key_records_round_trip() {
        for r in [
            KeyRecord::Active(vec![1, 2, 3]),
            KeyRecord::Erased {
                at: 5,
                index: LeafIndex(7),
            },
        ] {
            assert_eq!(KeyRecord::decode(b"s", &r.encode()).unwrap(), r);
        }
        assert!(KeyRecord::decode(b"s", &[2, 0]).is_err());
    }

    #[test]
    fn the_master_key_file_is_created_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = FileMasterKey::path_in(dir.path());
        let (created, new) = FileMasterKey::load_or_create(&path).unwrap();
        assert!(new);
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let (read, new) = FileMasterKey::load_or_create(&path).unwrap();
        assert!(!new);
        assert_eq!(created.0, read.0);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(FileMasterKey::load_or_create(&path).is_err());
    }
}
