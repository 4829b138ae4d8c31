//! The command line.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

use crate::SERVER_MAX_BATCH;
use crate::entries::ENTRY_PREFIX;
use crate::error::{LoadError, Res};

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Mode {
    /// Unary Submit, one entry per call (batch is 1).
    Submit,
    /// SubmitBatch, --batch entries per call.
    Batch,
    /// SubmitStream: --batch entries per message, --window messages in flight per client.
    Stream,
    /// GetInclusionProof by leaf index, uniform over the prefilled entries.
    InclusionIndex,
    /// GetInclusionProof by leaf hash, uniform over the prefilled entries.
    InclusionHash,
    /// GetConsistencyProof from a random size the prefill saw published to the latest.
    Consistency,
    /// SubmitBatch writers (--clients, --batch) and inclusion-by-index readers (--readers) at the same time.
    Mixed,
    /// Only the raw baselines.
    Baselines,
}

impl Mode {
    pub(crate) fn reads(self) -> bool {
        matches!(
            self,
            Mode::InclusionIndex | Mode::InclusionHash | Mode::Consistency | Mode::Mixed
        )
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Suite {
    /// Every write mode, then proof reads and a mixed run on a 1M-entry log: a few minutes.
    Standard,
    /// Proof reads on a 10M-entry log (the prefill alone takes minutes).
    Large,
    /// A log filled to 100M entries (`--prefill N` for another size) with fsync on: rate, RSS and disk per 10M,
    /// proof reads at 1M and at the end, and the restart at the end. About an hour.
    Huge,
}

#[derive(Parser, Debug)]
#[command(
    name = "load",
    about = "End-to-end tlogd benchmark: real gRPC load, sampled receipt verification, same-run raw baselines"
)]
pub(crate) struct Args {
    /// What to run (ignored with --suite).
    #[arg(long, value_enum, default_value_t = Mode::Batch)]
    pub(crate) mode: Mode,
    /// Run a whole suite instead of one --mode.
    #[arg(long, value_enum)]
    pub(crate) suite: Option<Suite>,
    /// Concurrent clients, each on its own connection (writers in mixed mode).
    #[arg(long, default_value_t = 4)]
    pub(crate) clients: usize,
    /// Entries per SubmitBatch call or stream message.
    #[arg(long, default_value_t = 1000)]
    pub(crate) batch: usize,
    /// Stream messages in flight per client (stream mode).
    #[arg(long, default_value_t = 8)]
    pub(crate) window: usize,
    /// Inclusion-by-index readers in mixed mode (default 16).
    #[arg(long)]
    pub(crate) readers: Option<usize>,
    /// Seconds per run (default 10; without a limit when only --entries is given).
    #[arg(long)]
    pub(crate) duration: Option<f64>,
    /// Stop after this many entries (write modes) or proofs (read modes).
    #[arg(long)]
    pub(crate) entries: Option<u64>,
    /// Open loop: offer this many entries/s (submit and batch modes); latency counts from when a request was due.
    #[arg(long)]
    pub(crate) rate: Option<f64>,
    /// Share this many connections among the clients (default: one connection per client), as clients behind a
    /// gateway would; HTTP/2 multiplexes their calls.
    #[arg(long)]
    pub(crate) connections: Option<usize>,
    /// Drive a running server (e.g. http://127.0.0.1:7400) instead of starting tlogd; needs --vkey.
    #[arg(long, requires = "vkey")]
    pub(crate) target: Option<String>,
    /// The target's verifier key, or a file holding it (e.g. data/log.vkey).
    #[arg(long)]
    pub(crate) vkey: Option<String>,
    /// Entries to append before proof reads (default 1,000,000 for read modes on a started tlogd, else 0).
    #[arg(long)]
    pub(crate) prefill: Option<u64>,
    /// Prefill with fsync on. By default a started tlogd is restarted with --no-sync for the prefill only.
    #[arg(long)]
    pub(crate) prefill_sync: bool,
    /// Run tlogd (and the raw RocksDB baseline) without fsync.
    #[arg(long)]
    pub(crate) no_sync: bool,
    /// Bytes per entry.
    #[arg(long, default_value_t = 256)]
    pub(crate) entry_bytes: usize,
    /// Fully verify one answer in this many (plus each client's first and last receipt).
    #[arg(long, default_value_t = 100)]
    pub(crate) verify_every: u64,
    /// Seconds per baseline measurement.
    #[arg(long, default_value_t = 2.0)]
    pub(crate) baseline_secs: f64,
    /// Skip the baselines.
    #[arg(long)]
    pub(crate) no_baselines: bool,
    /// The tlogd binary (default: next to this benchmark's target folder, target/release/tlogd).
    #[arg(long)]
    pub(crate) tlogd: Option<PathBuf>,
    /// Print JSON instead of markdown; `--json=FILE` writes JSON to FILE and still prints markdown.
    #[arg(long, num_args = 0..=1, default_missing_value = "-", require_equals = true)]
    pub(crate) json: Option<String>,
    /// Added by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    pub(crate) bench: bool,
}

pub(crate) fn validate(args: &Args) -> Res<()> {
    let positive = |v: usize, name: &str| {
        if v == 0 {
            Err(LoadError::Usage(format!("--{name} must be at least 1")))
        } else {
            Ok(())
        }
    };
    positive(args.clients, "clients")?;
    positive(args.batch, "batch")?;
    positive(args.window, "window")?;
    if args.connections == Some(0) {
        return Err(LoadError::Usage("--connections must be at least 1".into()));
    }
    if args.readers == Some(0) {
        return Err(LoadError::Usage("--readers must be at least 1".into()));
    }
    if args.batch > SERVER_MAX_BATCH {
        return Err(LoadError::Usage(format!(
            "--batch {} exceeds tlogd's default request limit of {SERVER_MAX_BATCH} entries",
            args.batch
        )));
    }
    if args.verify_every == 0 {
        return Err(LoadError::Usage("--verify-every must be at least 1".into()));
    }
    if !(ENTRY_PREFIX..=65_535).contains(&args.entry_bytes) {
        return Err(LoadError::Usage(format!(
            "--entry-bytes must be between {ENTRY_PREFIX} (room for a unique prefix) and 65535"
        )));
    }
    for (v, name) in [
        (args.duration, "duration"),
        (args.rate, "rate"),
        (Some(args.baseline_secs), "baseline-secs"),
    ] {
        if let Some(v) = v
            && !(v.is_finite() && v > 0.0)
        {
            return Err(LoadError::Usage(format!(
                "--{name} must be a positive number"
            )));
        }
    }
    if args.entries == Some(0) {
        return Err(LoadError::Usage("--entries must be at least 1".into()));
    }
    Ok(())
}
