//! Where a verifying command reads the log from: its gRPC API (`--server`) or its C2SP tlog-tiles resources
//! (`--tiles URL`). Both give verified checkpoints, move the trusted state along consistency proofs and download
//! entries against a root; the commands do not care which.

use tlog_checkpoint::{SignedCheckpoint, VerifierKey};
use tlog_client::http::{DEFAULT_HTTP_TIMEOUT, HttpTiles, http_client};
use tlog_client::{ClientError, LogClient, TileClient, TrustedLog, VerifiedReceipt};
use tlog_core::{CompactRange, Hash, TreeSize};

use crate::commands::Context;
use crate::error::CliError;

/// A verifying client of the log, over one of its two read APIs.
pub enum Reader {
    /// `--server`: the gRPC API. (Both clients are boxed: they are hundreds of bytes, and of unequal size.)
    Grpc(Box<LogClient>),
    /// `--tiles URL`: static tiles.
    Tiles {
        /// The client.
        client: Box<TileClient<HttpTiles>>,
        /// The URL prefix, for messages.
        url: String,
    },
}

impl Reader {
    /// The reader `--tiles` asks for, else the gRPC client of `--server`; both with the witness policy.
    pub async fn open(ctx: &Context, tiles: Option<&str>) -> Result<Self, CliError> {
        match tiles {
            None => Ok(Reader::Grpc(Box::new(ctx.connect().await?))),
            Some(url) => Ok(Reader::Tiles {
                client: Box::new(tile_client(ctx, url)?),
                url: url.to_owned(),
            }),
        }
    }

    /// The log's verifier key.
    pub fn key(&self) -> &VerifierKey {
        match self {
            Reader::Grpc(client) => client.key(),
            Reader::Tiles { client, .. } => client.key(),
        }
    }

    /// The latest checkpoint, verified with the key and the witness policy.
    pub async fn checkpoint(&mut self) -> Result<SignedCheckpoint, CliError> {
        match self {
            Reader::Grpc(client) => Ok(client.checkpoint().await?),
            Reader::Tiles { client, url } => client
                .checkpoint()
                .await
                .map_err(|e| unreachable_tiles(url, e)),
        }
    }

    /// Moves `trusted` to `new` with a consistency proof from the log (gRPC) or built from `new`'s tiles.
    pub async fn advance(
        &self,
        trusted: &mut TrustedLog,
        new: SignedCheckpoint,
    ) -> Result<(), ClientError> {
        match self {
            Reader::Grpc(client) => client.advance(trusted, new).await,
            Reader::Tiles { client, .. } => client.advance(trusted, new).await,
        }
    }

    /// The log's signed note that shows the other side of a fork at `size` with `root`, when it can be had:
    /// over gRPC the log's checkpoint of that size; from tiles, the newer checkpoint `new` whose tree holds it.
    pub async fn fork_note(
        &self,
        size: TreeSize,
        root: Hash,
        new: &SignedCheckpoint,
    ) -> Option<String> {
        match self {
            Reader::Grpc(client) => client
                .checkpoint_at(size)
                .await
                .ok()
                .filter(|sc| sc.checkpoint.root == root)
                .map(|sc| sc.note),
            Reader::Tiles { .. } => Some(new.note.clone()),
        }
    }

    /// The consistency proof from `old` to `new` (verified checkpoints), verified: from the log (whose checkpoint
    /// of `new`'s size must have `new`'s root) or built from `new`'s tiles.
    pub async fn prove_consistency(
        &self,
        old: &SignedCheckpoint,
        new: &SignedCheckpoint,
    ) -> Result<Vec<Hash>, ClientError> {
        match self {
            Reader::Grpc(client) => {
                if old.checkpoint.size >= new.checkpoint.size {
                    return Ok(Vec::new());
                }
                let c = client.consistency(old, Some(new.checkpoint.size)).await?;
                if c.new.checkpoint.root != new.checkpoint.root {
                    return Err(ClientError::Fork {
                        size: new.checkpoint.size,
                        trusted_root: new.checkpoint.root,
                        new_root: c.new.checkpoint.root,
                    });
                }
                Ok(c.proof)
            }
            Reader::Tiles { client, .. } => client.prove_consistency(old, new).await,
        }
    }

    /// Downloads the entries past `frontier` and checks they rebuild `checkpoint`'s root.
    pub async fn audit_entries(
        &self,
        frontier: &CompactRange,
        checkpoint: &SignedCheckpoint,
    ) -> Result<CompactRange, ClientError> {
        match self {
            Reader::Grpc(client) => client.audit_entries(frontier, &checkpoint.checkpoint).await,
            Reader::Tiles { client, .. } => {
                client.audit_entries(frontier, &checkpoint.checkpoint).await
            }
        }
    }

    /// Proves the leaf with `hash` is in the log's latest tree: by the log's hash index over gRPC, by scanning the
    /// level-0 tiles of the latest checkpoint with tiles (a tiled log has no index by hash).
    pub async fn prove_hash(&mut self, hash: &Hash) -> Result<VerifiedReceipt, CliError> {
        match self {
            Reader::Grpc(client) => Ok(client.inclusion_by_hash(hash, None).await?),
            Reader::Tiles { client, url } => {
                let checkpoint = client
                    .checkpoint()
                    .await
                    .map_err(|e| unreachable_tiles(url, e))?;
                client.find_leaf(hash, &checkpoint).await?.ok_or_else(|| {
                    CliError::Usage(format!(
                        "no leaf with hash {hash} in the tiles of {} tree size {}",
                        checkpoint.checkpoint.origin, checkpoint.checkpoint.size
                    ))
                })
            }
        }
    }
}

/// A tile client of `url` with the witness policy.
fn tile_client(ctx: &Context, url: &str) -> Result<TileClient<HttpTiles>, CliError> {
    let key = ctx.verifier_key()?;
    let policy = ctx.policy()?;
    let http = http_client(DEFAULT_HTTP_TIMEOUT)?;
    let source = HttpTiles::new(http, url).map_err(|_| {
        CliError::Usage(format!(
            "--tiles {url:?} is not an http:// or https:// URL prefix such as https://example.com/log"
        ))
    })?;
    Ok(TileClient::new(source, key).with_policy(policy))
}

/// A checkpoint that cannot be fetched at all says the URL is wrong or the server down.
fn unreachable_tiles(url: &str, cause: ClientError) -> CliError {
    match cause {
        ClientError::Http(_)
        | ClientError::TileNotFound { .. }
        | ClientError::HttpStatus { .. } => CliError::TilesUnreachable {
            url: url.to_owned(),
            cause,
        },
        other => other.into(),
    }
}
