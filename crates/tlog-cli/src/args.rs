//! Command-line arguments (clap derive).

use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand};
use tlog_core::Hash;

use crate::event::{EventTime, parse_detail};

const EXIT_CODES: &str = "\
Exit codes:
  0  success: everything asked for was verified
  1  usage, file, network or server error: nothing was proven either way
  2  invalid command line
  3  verification failed: bad signature or proof, tampered receipt, a checkpoint without the --quorum of
     --witness cosignatures, or a log that forked, rolled back or serves entries (or tiles) that do not match
     what it signs";

const GLOBAL: &str = "Global options";

/// Verifying client of a tlog transparency log: submit entries and audit events, fetch and check signed
/// checkpoints and proofs, verify receipts offline, and monitor the log for forks.
#[derive(Debug, Parser)]
#[command(name = "tlog", version, after_help = EXIT_CODES)]
pub struct Cli {
    /// The log server's gRPC endpoint.
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL,
        env = "TLOG_SERVER",
        default_value = "http://127.0.0.1:7400",
        value_name = "URL"
    )]
    pub server: String,

    /// The log's verifier key, or @FILE to read it (e.g. @data/log.vkey). Every command but keygen checks what
    /// the log signs against it.
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL,
        env = "TLOG_VERIFIER_KEY",
        value_name = "VKEY|@FILE"
    )]
    pub key: Option<String>,

    /// Bearer token for writes (submit), when the server requires one.
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL,
        env = "TLOG_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,

    /// CA certificate (PEM) to trust for an https:// server; TLS is used exactly when the URL is https://.
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL,
        env = "TLOG_CA_CERT",
        value_name = "FILE"
    )]
    pub ca: Option<PathBuf>,

    /// A witness's cosigner key (`<name>+<key ID>+<base64>`, C2SP tlog-cosignature), or @FILE; repeatable. A
    /// checkpoint is trusted only with valid cosignatures of --quorum of them (receipts of `submit` excepted:
    /// the log acknowledges alone, witnesses cosign later).
    #[arg(
        long = "witness",
        global = true,
        help_heading = GLOBAL,
        value_name = "VKEY|@FILE"
    )]
    pub witnesses: Vec<String>,

    /// How many of the --witness keys must have cosigned [default: all of them; 0 without --witness].
    #[arg(long, global = true, help_heading = GLOBAL, value_name = "K")]
    pub quorum: Option<usize>,

    /// Print machine-readable JSON on standard output (errors too: {"ok":false,"error":...}).
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate a log's Ed25519 signed-note key pair: the private key file (mode 0600) and FILE.vkey.
    Keygen {
        /// Key name: the log's origin, e.g. example.com/log.
        #[arg(long, value_name = "ORIGIN")]
        name: String,
        /// Private key file to create (never overwritten); the verifier key goes beside it as .vkey.
        #[arg(long, value_name = "FILE", default_value = "log.key")]
        out: PathBuf,
    },
    /// Append an entry (or an audit event built from flags) and print its verified receipt.
    Submit(SubmitArgs),
    /// Fetch and verify the latest signed checkpoint.
    Checkpoint {
        /// Trusted-state file: also prove the checkpoint consistent with the one trusted there, and advance it.
        #[arg(long, value_name = "FILE")]
        state: Option<PathBuf>,
        #[command(flatten)]
        tiles: TilesArg,
    },
    /// Fetch and verify an inclusion proof.
    Inclusion(InclusionArgs),
    /// Fetch and verify a consistency proof between two published tree sizes.
    Consistency {
        /// The older tree size (at least 1).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        old: u64,
        /// The newer tree size (default: the latest checkpoint).
        #[arg(long, value_name = "M", value_parser = clap::value_parser!(u64).range(1..))]
        new: Option<u64>,
    },
    /// Verify a saved receipt OFFLINE, with only the log's verifier key.
    VerifyReceipt {
        /// The receipt JSON, as written by `submit --receipt-out`.
        #[arg(value_name = "RECEIPT_FILE")]
        receipt: PathBuf,
        /// The entry the receipt should be for, from a file.
        #[arg(long, value_name = "F", conflicts_with = "entry")]
        entry_file: Option<PathBuf>,
        /// The entry the receipt should be for, as text.
        #[arg(long, value_name = "D")]
        entry: Option<String>,
    },
    /// Upgrade a saved receipt: add the log's latest checkpoint (with the --witness cosignatures) and the
    /// consistency proof from the receipt's tree to it, so verify-receipt accepts it under a witness policy.
    UpgradeReceipt {
        /// The receipt JSON, rewritten in place.
        #[arg(value_name = "RECEIPT_FILE")]
        receipt: PathBuf,
        #[command(flatten)]
        tiles: TilesArg,
    },
    /// Follow the log: verify every new checkpoint's signature and its consistency with the last trusted one.
    Monitor(MonitorArgs),
    /// Prove an entry is in the log, with a checkpoint proven consistent with the trusted one (which advances).
    Audit(AuditArgs),
    /// Evidence bundles: many events in one file with ONE multiproof, checked offline (docs/evidence.md).
    #[command(subcommand)]
    Evidence(EvidenceCommand),
    /// Verify a whole log from its S3 archive alone (tlogd --archive): the archived checkpoint's signature, and
    /// every archived entry rebuilding its root, every archived hash tile recomputed from the entries. Endpoint and
    /// credentials from the AWS environment.
    Verify {
        /// The archive: s3://bucket/prefix.
        #[arg(long, value_name = "S3_URL")]
        archive: String,
    },
}

/// `tlog evidence ...`.
#[derive(Debug, Subcommand)]
pub enum EvidenceCommand {
    /// Write a bundle of events: their entries, one multiproof, the signed checkpoint (and optionally the
    /// consistency proof to the latest one). Events by --index, --receipt, or an audit-event filter; all combine.
    Export(Box<ExportArgs>),
    /// Verify a bundle OFFLINE with only the log's verifier key (--key) and any --witness policy.
    Verify {
        /// The bundle, as written by `evidence export`.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

/// `tlog evidence export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Where to write the bundle (replaced atomically).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// An event by its index in the log; repeatable, or comma-separated.
    #[arg(long = "index", value_name = "N", value_delimiter = ',')]
    pub indices: Vec<u64>,
    /// An event by a saved receipt (`submit --receipt-out`); repeatable.
    #[arg(long = "receipt", value_name = "FILE")]
    pub receipts: Vec<PathBuf>,
    /// Filter: audit events (`submit --actor ...`) by this actor. Filters scan the log's entries.
    #[arg(long, value_name = "A")]
    pub actor: Option<String>,
    /// Filter: audit events with this action.
    #[arg(long, value_name = "X")]
    pub action: Option<String>,
    /// Filter: audit events on this resource.
    #[arg(long, value_name = "R")]
    pub resource: Option<String>,
    /// Filter: audit events at or after this time (RFC 3339 or unix seconds).
    #[arg(long, value_name = "TIME", value_parser = EventTime::parse)]
    pub since: Option<EventTime>,
    /// Filter: audit events before this time.
    #[arg(long, value_name = "TIME", value_parser = EventTime::parse)]
    pub until: Option<EventTime>,
    /// Filters scan entries from this index [default: 0].
    #[arg(long, value_name = "N")]
    pub from: Option<u64>,
    /// Filters scan entries before this index [default: the tree size].
    #[arg(long, value_name = "N")]
    pub to: Option<u64>,
    /// Published tree size to prove against (default: the latest checkpoint).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub size: Option<u64>,
    /// Also prove the bundle's checkpoint consistent with the log's latest one, and include that.
    #[arg(long)]
    pub consistency: bool,
    /// Include the payload and salt of every private event (`--token` needs the read-private scope); each is
    /// checked against its commitment first. An erased subject's events go in without one.
    #[arg(long)]
    pub openings: bool,
}

/// `tlog submit`: exactly one entry source.
#[derive(Debug, Args)]
#[command(group(
    ArgGroup::new("source")
        .required(true)
        .args(["data", "file", "stdin", "actor"])
))]
pub struct SubmitArgs {
    /// The entry, as text.
    #[arg(value_name = "DATA")]
    pub data: Option<String>,
    /// Read the entry from a file.
    #[arg(long, value_name = "F")]
    pub file: Option<PathBuf>,
    /// Read the entry from standard input.
    #[arg(long)]
    pub stdin: bool,

    /// Audit event: who acted. The event is submitted as canonical JSON:
    /// {"action":X,"actor":A,"details":{k:v,...},"resource":R,"time":T} (RFC 8785 key order, no whitespace).
    #[arg(long, value_name = "A", requires_all = ["action", "resource"])]
    pub actor: Option<String>,
    /// Audit event: what was done.
    #[arg(long, value_name = "X", requires = "actor")]
    pub action: Option<String>,
    /// Audit event: what it was done to.
    #[arg(long, value_name = "R", requires = "actor")]
    pub resource: Option<String>,
    /// Audit event: a detail, repeatable.
    #[arg(long = "detail", value_name = "K=V", value_parser = parse_detail, requires = "actor")]
    pub details: Vec<(String, String)>,
    /// Audit event: when (RFC 3339 or unix seconds; default now). Written as RFC 3339 UTC.
    #[arg(long, value_name = "TIME", value_parser = EventTime::parse, requires = "actor")]
    pub time: Option<EventTime>,

    /// Save the receipt JSON here (verify it later with verify-receipt).
    #[arg(long, value_name = "FILE")]
    pub receipt_out: Option<PathBuf>,
}

/// `tlog inclusion`: which leaf (exactly one way of naming it), in which tree.
#[derive(Debug, Args)]
#[command(group(
    ArgGroup::new("leaf")
        .required(true)
        .args(["index", "hash", "data", "file"])
))]
pub struct InclusionArgs {
    /// The leaf's index.
    #[arg(long, value_name = "N")]
    pub index: Option<u64>,
    #[command(flatten)]
    pub entry: EntryFields,
    /// Published tree size to prove against (default: the latest checkpoint).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub size: Option<u64>,
}

/// An entry named by its leaf hash, its text or a file; shared by `inclusion` and `audit`, whose groups make the
/// three exclusive.
#[derive(Debug, Args)]
pub struct EntryFields {
    /// The entry's RFC 9162 leaf hash, SHA-256(0x00 || entry), as 64 hex digits.
    #[arg(long, value_name = "HEX", value_parser = parse_hash)]
    pub hash: Option<Hash>,
    /// The entry, as text.
    #[arg(long, value_name = "D")]
    pub data: Option<String>,
    /// The entry, from a file.
    #[arg(long, value_name = "F")]
    pub file: Option<PathBuf>,
}

/// `--tiles URL`: read the log from its C2SP tlog-tiles resources instead of its gRPC API.
#[derive(Debug, Args)]
pub struct TilesArg {
    /// Read the log's static C2SP tlog-tiles resources at this URL prefix (its /checkpoint, /tile/...) instead
    /// of the gRPC --server: proofs and roots are built from tiles and verified the same way.
    #[arg(long = "tiles", value_name = "URL")]
    pub url: Option<String>,
}

#[derive(Debug, Args)]
pub struct MonitorArgs {
    /// Trusted-state file (created on first use; the first checkpoint is trusted on its signature alone).
    #[arg(long, value_name = "FILE")]
    pub state: PathBuf,
    /// Do one round and exit.
    #[arg(long, conflicts_with = "interval")]
    pub once: bool,
    /// Seconds between rounds [default: 30].
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub interval: Option<u64>,
    /// Also download every new entry and recompute the root (the frontier is kept in FILE.frontier).
    #[arg(long)]
    pub download_entries: bool,
    #[command(flatten)]
    pub tiles: TilesArg,
    /// With --tiles: also ask the gRPC --server for its latest checkpoint and check it against the tiles (a
    /// tree size both have must have one root; a larger gRPC tree must extend the tiles' tree).
    #[arg(long, requires = "url")]
    pub cross_check: bool,
}

/// `tlog audit`: the entry (exactly one way of naming it) and the auditor's state.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("entry").required(true).args(["hash", "data", "file"])))]
pub struct AuditArgs {
    #[command(flatten)]
    pub entry: EntryFields,
    /// Trusted-state file (created on first use).
    #[arg(long, value_name = "FILE")]
    pub state: PathBuf,
    #[command(flatten)]
    pub tiles: TilesArg,
}

fn parse_hash(text: &str) -> Result<Hash, String> {
    Hash::from_hex(text)
        .ok_or_else(|| "expected 64 hex digits (a SHA-256 leaf hash, as printed by submit)".into())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("tlog").chain(args.iter().copied()))
    }

    #[test]
    fn command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn submit_takes_exactly_one_source() {
        assert!(matches!(
            parse(&["submit", "hello"]).unwrap().command,
            Command::Submit(SubmitArgs { data: Some(_), .. })
        ));
        assert!(parse(&["submit", "--stdin"]).is_ok());
        assert!(parse(&["submit", "--file", "x"]).is_ok());
        let event = parse(&[
            "submit",
            "--actor",
            "alice",
            "--action",
            "login",
            "--resource",
            "web",
            "--detail",
            "ip=10.0.0.1",
            "--detail",
            "ok=yes",
            "--time",
            "2024-05-01T12:00:00Z",
        ])
        .unwrap();
        let Command::Submit(args) = event.command else {
            panic!("not submit")
        };
        assert_eq!(args.details.len(), 2);
        assert_eq!(
            args.time.map(|t| t.to_rfc3339()).as_deref(),
            Some("2024-05-01T12:00:00Z")
        );
        for bad in [
            "submit",
            "submit a --stdin",
            "submit --file x --stdin",
            "submit a --actor x --action y --resource z",
            "submit --actor x",
            "submit --action y",
            "submit a --detail k=v",
            "submit --actor x --action y --resource z --detail novalue",
            "submit --actor x --action y --resource z --time soon",
        ] {
            let words: Vec<&str> = bad.split(' ').collect();
            let err = parse(&words).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn leaf_selectors_are_exclusive() {
        let hex = "ab".repeat(32);
        assert!(parse(&["inclusion", "--index", "3", "--size", "5"]).is_ok());
        assert!(parse(&["inclusion", "--hash", &hex]).is_ok());
        assert!(parse(&["inclusion", "--data", "x"]).is_ok());
        assert!(parse(&["audit", "--file", "f", "--state", "s"]).is_ok());
        for bad in [
            &["inclusion"][..],
            &["inclusion", "--index", "1", "--data", "x"],
            &["inclusion", "--hash", "abc"],
            &["inclusion", "--index", "1", "--size", "0"],
            &["audit", "--data", "x"],
            &["audit", "--state", "s"],
            &["audit", "--index", "1", "--state", "s"],
            &["audit", "--data", "x", "--hash", &hex, "--state", "s"],
            &["consistency", "--old", "0"],
            &["consistency"],
            &["verify-receipt", "r", "--entry", "a", "--entry-file", "b"],
            &["monitor", "--state", "s", "--once", "--interval", "5"],
            &["monitor", "--state", "s", "--interval", "0"],
            &["keygen"],
        ] {
            assert_eq!(parse(bad).unwrap_err().exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn globals_go_anywhere() {
        let cli = parse(&[
            "checkpoint",
            "--json",
            "--server",
            "http://h:1",
            "--key",
            "@k",
        ])
        .unwrap();
        assert!(cli.json);
        assert_eq!(cli.server, "http://h:1");
        assert_eq!(cli.key.as_deref(), Some("@k"));
    }
}
