//! The commands: each gathers its inputs, asks the verifying client, and prints what was proven.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tlog_checkpoint::VerifierKey;
use tlog_client::{
    BearerToken, ClientError, LogClient, Receipt, ReceiptFile, ReceiptUpgrade, VerifiedReceipt,
    WitnessPolicy, verify_receipt,
};
use tlog_core::{LeafIndex, TreeSize};

use crate::args::{AuditArgs, EntryFields, InclusionArgs, SubmitArgs};
use crate::error::CliError;
use crate::event::{AuditEvent, EventTime};
use crate::keys;
use crate::output::{
    Printer, checkpoint_json, checkpoint_line, read_file, read_stdin, write_atomic,
};
use crate::reader::Reader;
use crate::trust::TrustFile;

/// The global options every online command shares.
#[derive(Debug, Clone)]
pub struct Context {
    /// `--server`.
    pub server: String,
    /// `--key`, not yet read.
    pub key: Option<String>,
    /// `--token`.
    pub token: Option<String>,
    /// `--ca`.
    pub ca: Option<PathBuf>,
    /// `--witness`, not yet read.
    pub witnesses: Vec<String>,
    /// `--quorum`.
    pub quorum: Option<usize>,
    /// Output format.
    pub printer: Printer,
}

impl Context {
    /// The log's verifier key.
    pub fn verifier_key(&self) -> Result<VerifierKey, CliError> {
        keys::verifier_key(self.key.as_deref())
    }

    /// The witness policy of `--witness` and `--quorum`.
    pub fn policy(&self) -> Result<WitnessPolicy, CliError> {
        keys::witness_policy(&self.witnesses, self.quorum)
    }

    /// A verifying client of the log, with the write token if one was given and the witness policy.
    pub async fn connect(&self) -> Result<LogClient, CliError> {
        let key = self.verifier_key()?;
        let policy = self.policy()?;
        let tls = self.server.starts_with("https://");
        let connected = match (&self.ca, tls) {
            (Some(ca), true) => {
                let pem = read_file("--ca certificate file", ca)?;
                LogClient::connect_tls(&self.server, key, &pem).await
            }
            (None, false) => LogClient::connect(&self.server, key).await,
            (None, true) => {
                return Err(CliError::Usage(format!(
                    "--server {} uses TLS: pass --ca FILE (or TLOG_CA_CERT), the PEM certificate of the CA that \
                     signed the server's certificate",
                    self.server
                )));
            }
            (Some(_), false) => {
                return Err(CliError::Usage(format!(
                    "--ca is for https:// servers, but --server is {}",
                    self.server
                )));
            }
        };
        let client = connected
            .map(|c| c.with_policy(policy))
            .map_err(|cause| match cause {
                ClientError::InvalidEndpoint(_) => CliError::Usage(format!(
                    "--server {:?} is not a URL such as http://127.0.0.1:7400",
                    self.server
                )),
                cause => CliError::Connect {
                    server: self.server.clone(),
                    cause,
                },
            })?;
        match &self.token {
            None => Ok(client),
            Some(token) => {
                let token = BearerToken::new(token).map_err(|_| {
                    CliError::Usage(
                        "--token must be visible ASCII (it travels as an HTTP header)".into(),
                    )
                })?;
                Ok(client.with_token(token))
            }
        }
    }
}

/// A receipt as JSON: exactly what `verify-receipt` reads back.
fn receipt_json(receipt: &Receipt) -> Result<Value, CliError> {
    Ok(serde_json::to_value(receipt)?)
}

/// `tlog submit`.
pub async fn submit(ctx: &Context, args: SubmitArgs) -> Result<(), CliError> {
    let (entry, event) = submitted_entry(&args)?;
    let client = ctx.connect().await?;
    let verified = client.submit(&entry).await?;
    if let Some(path) = &args.receipt_out {
        let mut text = serde_json::to_vec_pretty(verified.receipt())?;
        text.push(b'\n');
        write_atomic("receipt file", path, &text)?;
    }
    let mut json = receipt_json(verified.receipt())?;
    if let (Some(event), Value::Object(map)) = (&event, &mut json) {
        map.insert("event".into(), Value::from(event.as_str()));
    }
    let mut human = format!(
        "{} at index {}\nleaf hash {}\nin {}\nreceipt verified: signed checkpoint and inclusion proof ({} hashes)",
        if verified.duplicate() {
            "already in the log"
        } else {
            "appended"
        },
        verified.index(),
        verified.leaf_hash(),
        checkpoint_line(verified.checkpoint()),
        verified.receipt().inclusion_proof.len(),
    );
    if let Some(event) = &event {
        human = format!("event {event}\n{human}");
    }
    if let Some(path) = &args.receipt_out {
        human.push_str(&format!("\nreceipt saved to {}", path.display()));
    }
    ctx.printer.emit(&json, &human)
}

/// The entry to submit, and the canonical event text when it was built from flags.
fn submitted_entry(args: &SubmitArgs) -> Result<(Vec<u8>, Option<String>), CliError> {
    if let (Some(actor), Some(action), Some(resource)) = (&args.actor, &args.action, &args.resource)
    {
        let event = AuditEvent::new(
            actor.clone(),
            action.clone(),
            resource.clone(),
            args.details.clone(),
            args.time.unwrap_or_else(EventTime::now),
        )?
        .to_canonical_json();
        return Ok((event.clone().into_bytes(), Some(event)));
    }
    let entry = match (&args.data, &args.file) {
        (Some(data), _) => data.clone().into_bytes(),
        (None, Some(path)) => read_file("entry file", path)?,
        (None, None) if args.stdin => read_stdin()?,
        // clap's required group makes this unreachable; the message covers it all the same.
        (None, None) => {
            return Err(CliError::Usage(
                "give the entry as DATA, --file F, --stdin, or an event with --actor/--action/--resource"
                    .into(),
            ));
        }
    };
    Ok((entry, None))
}

/// The entry named by `--hash`, `--data` or `--file`: its leaf hash, or its bytes.
enum Named {
    Hash(tlog_core::Hash),
    Entry(Vec<u8>),
}

fn named_entry(fields: EntryFields) -> Result<Named, CliError> {
    match fields {
        EntryFields {
            hash: Some(hash), ..
        } => Ok(Named::Hash(hash)),
        EntryFields {
            data: Some(data), ..
        } => Ok(Named::Entry(data.into_bytes())),
        EntryFields {
            file: Some(path), ..
        } => Ok(Named::Entry(read_file("entry file", &path)?)),
        _ => Err(CliError::Usage(
            "name the entry with --hash HEX, --data D or --file F".into(),
        )),
    }
}

async fn prove_named(
    client: &LogClient,
    named: &Named,
    size: Option<TreeSize>,
) -> Result<VerifiedReceipt, ClientError> {
    match named {
        Named::Hash(hash) => client.inclusion_by_hash(hash, size).await,
        Named::Entry(entry) => client.inclusion_of_entry(entry, size).await,
    }
}

fn inclusion_line(r: &VerifiedReceipt) -> String {
    format!(
        "leaf {} (hash {}) is in {}\ninclusion proof of {} hashes verified",
        r.index(),
        r.leaf_hash(),
        checkpoint_line(r.checkpoint()),
        r.receipt().inclusion_proof.len()
    )
}

/// `tlog inclusion`.
pub async fn inclusion(ctx: &Context, args: InclusionArgs) -> Result<(), CliError> {
    let client = ctx.connect().await?;
    let size = args.size.map(TreeSize);
    let verified = match args.index {
        Some(index) => client.inclusion_by_index(LeafIndex(index), size).await?,
        None => prove_named(&client, &named_entry(args.entry)?, size).await?,
    };
    ctx.printer.emit(
        &receipt_json(verified.receipt())?,
        &inclusion_line(&verified),
    )
}

/// `tlog consistency`.
pub async fn consistency(ctx: &Context, old: u64, new: Option<u64>) -> Result<(), CliError> {
    let client = ctx.connect().await?;
    let c = client
        .consistency_from_size(TreeSize(old), new.map(TreeSize))
        .await?;
    let json = json!({
        "old": checkpoint_json(&c.old),
        "new": checkpoint_json(&c.new),
        "proof": c.proof.iter().map(|h| h.to_hex()).collect::<Vec<_>>(),
    });
    let human = format!(
        "old: {}\nnew: {}\nconsistency proof of {} hashes verified: the new tree extends the old one",
        checkpoint_line(&c.old),
        checkpoint_line(&c.new),
        c.proof.len()
    );
    ctx.printer.emit(&json, &human)
}

/// `tlog checkpoint`.
pub async fn checkpoint(
    ctx: &Context,
    state: Option<&Path>,
    tiles: Option<&str>,
) -> Result<(), CliError> {
    let mut reader = Reader::open(ctx, tiles).await?;
    let latest = reader.checkpoint().await?;
    let mut json = checkpoint_json(&latest);
    let mut human = format!("verified checkpoint: {}", checkpoint_line(&latest));
    if let Some(state) = state {
        let mut trust = TrustFile::load(state, reader.key().clone(), ctx.policy()?)?;
        trust.advance(&reader, latest).await?;
        trust.save()?;
        if let Value::Object(map) = &mut json {
            map.insert("trusted".into(), trust.json());
        }
        human.push('\n');
        human.push_str(&trust.line());
    }
    ctx.printer.emit(&json, &human)
}

/// `tlog verify --archive`: the archived checkpoint verified with the key (and witness policy), then every
/// archived entry downloaded from its bundle and hashed into the tree, which must rebuild the checkpoint's root,
/// and every archived hash tile of that tree recomputed from them ([`tlog_archive::audit`]).
pub async fn verify_archive(ctx: &Context, url: &str) -> Result<(), CliError> {
    use tlog_archive::s3::{S3Config, S3Location, object_store};
    let location = S3Location::parse(url)?;
    let store = object_store(&S3Config::from_env()?, &location.bucket)?;
    let tiles = tlog_archive::ArchiveTiles::new(store, &location.prefix);
    let client =
        tlog_client::TileClient::new(tiles, ctx.verifier_key()?).with_policy(ctx.policy()?);
    let unreachable = |cause| CliError::TilesUnreachable {
        url: url.to_owned(),
        cause,
    };
    let latest = client.checkpoint().await.map_err(|e| match e {
        e @ (ClientError::TileNotFound { .. } | ClientError::Source { .. }) => unreachable(e),
        e => CliError::Client(e),
    })?;
    let audited = tlog_archive::audit::audit(client.source(), &latest.checkpoint, 16)
        .await
        .map_err(|e| match e {
            tlog_archive::Error::Source(
                e @ (ClientError::TileNotFound { .. } | ClientError::Source { .. }),
            ) => unreachable(e),
            e => CliError::Archive(e),
        })?;
    let mut json = checkpoint_json(&latest);
    if let Value::Object(map) = &mut json {
        map.insert("archive".into(), Value::from(url));
        map.insert(
            "entries_verified".into(),
            Value::from(latest.checkpoint.size.0),
        );
        map.insert("tiles_verified".into(), Value::from(audited.tiles));
    }
    let human = format!(
        "archive {url} verified: {}\nevery one of its {} entries rebuilds that root, and its {} hash tiles are the ones they give",
        checkpoint_line(&latest),
        latest.checkpoint.size.0,
        audited.tiles
    );
    ctx.printer.emit(&json, &human)
}

/// `tlog verify-receipt`: offline.
pub fn verify_receipt_file(
    ctx: &Context,
    path: &Path,
    entry: Option<Vec<u8>>,
) -> Result<(), CliError> {
    let key = ctx.verifier_key()?;
    let file = read_receipt_file(path)?;
    let policy = ctx.policy()?;
    let (verified, witnessed) =
        tlog_client::verify_receipt_file(&key, &policy, &file, entry.as_deref()).map_err(
            |source| CliError::Rejected {
                what: "receipt",
                source,
            },
        )?;
    let json = json!({
        "ok": true,
        "index": verified.index().0,
        "leaf_hash": verified.leaf_hash().to_hex(),
        "duplicate": verified.duplicate(),
        "entry_checked": entry.is_some(),
        "checkpoint": checkpoint_json(verified.checkpoint()),
        "witnessed": witnessed.as_ref().map(checkpoint_json),
    });
    let mut human = format!(
        "receipt VALID: entry at index {} (leaf hash {}) is in {}",
        verified.index(),
        verified.leaf_hash(),
        checkpoint_line(verified.checkpoint())
    );
    if let Some(w) = &witnessed {
        human.push_str(&format!(
            "
consistent with the witnessed checkpoint {}",
            checkpoint_line(w)
        ));
    }
    if entry.is_none() {
        human.push_str(
            "\nno entry given (--entry/--entry-file): this proves only that some entry with this leaf hash is in \
             the log",
        );
    }
    ctx.printer.emit(&json, &human)
}

/// A saved receipt, upgraded or not.
fn read_receipt_file(path: &Path) -> Result<ReceiptFile, CliError> {
    let text = read_file("receipt file", path)?;
    serde_json::from_slice(&text).map_err(|e| CliError::FileFormat {
        what: "receipt file",
        path: path.to_owned(),
        why: format!("not a receipt: {e}"),
    })
}

/// `tlog upgrade-receipt`: the receipt's own checkpoint is verified first (the log's signature), then the log's
/// latest (with the witness policy) and the consistency proof between them; the file is rewritten atomically.
pub async fn upgrade_receipt(
    ctx: &Context,
    path: &Path,
    tiles: Option<&str>,
) -> Result<(), CliError> {
    let key = ctx.verifier_key()?;
    let mut file = read_receipt_file(path)?;
    let verified =
        verify_receipt(&key, &file.receipt, None).map_err(|source| CliError::Rejected {
            what: "receipt",
            source,
        })?;
    let mut reader = Reader::open(ctx, tiles).await?;
    let latest = reader.checkpoint().await?;
    let proof = reader
        .prove_consistency(verified.checkpoint(), &latest)
        .await?;
    file.witnessed = Some(ReceiptUpgrade {
        checkpoint: latest.note.clone(),
        consistency_proof: proof,
    });
    // Checked as verify-receipt will check it before anything is written.
    tlog_client::verify_receipt_file(&key, &ctx.policy()?, &file, None)?;
    let mut text = serde_json::to_vec_pretty(&file)?;
    text.push(b'\n');
    write_atomic("receipt file", path, &text)?;
    let json = json!({
        "ok": true,
        "index": verified.index().0,
        "checkpoint": checkpoint_json(verified.checkpoint()),
        "witnessed": checkpoint_json(&latest),
    });
    let human = format!(
        "receipt upgraded: tree size {} is proven consistent with {}\nreceipt saved to {}",
        verified.checkpoint().checkpoint.size,
        checkpoint_line(&latest),
        path.display()
    );
    ctx.printer.emit(&json, &human)
}

/// `tlog audit`.
pub async fn audit(ctx: &Context, args: AuditArgs) -> Result<(), CliError> {
    let hash = match named_entry(args.entry)? {
        Named::Hash(hash) => hash,
        Named::Entry(entry) => tlog_core::leaf_hash(&entry),
    };
    let mut reader = Reader::open(ctx, args.tiles.url.as_deref()).await?;
    let mut trust = TrustFile::load(&args.state, reader.key().clone(), ctx.policy()?)?;
    let verified = reader.prove_hash(&hash).await?;
    trust
        .advance(&reader, verified.checkpoint().clone())
        .await?;
    trust.save()?;
    let json = json!({
        "ok": true,
        "index": verified.index().0,
        "leaf_hash": verified.leaf_hash().to_hex(),
        "checkpoint": checkpoint_json(verified.checkpoint()),
        "trusted": trust.json(),
    });
    let human = format!("AUDIT OK: {}\n{}", inclusion_line(&verified), trust.line(),);
    ctx.printer.emit(&json, &human)
}
