//! `tlog`: the command-line client of a tlog transparency log, for submitters, auditors and monitors.
//!
//! Scope: argument parsing, files (keys, receipts, trusted state), and output. Every check is done by
//! `tlog-client` (which composes RFC 9162 §2.1 proofs from `tlog-core` and C2SP signed-note / tlog-checkpoint /
//! tlog-cosignature verification from `tlog-checkpoint`); this crate decides what to ask and how to report it.
//!
//! - `keygen`: an Ed25519 signed-note key pair (C2SP signed-note "Verifier keys") from the OS RNG.
//! - `submit`: an entry, or an audit event encoded as RFC 8785 canonical JSON (see [`event`]), with its receipt
//!   verified on arrival; `verify-receipt` re-checks a saved receipt offline.
//! - `checkpoint`, `inclusion`, `consistency`: verified reads (RFC 9162 §2.1.3.2 and §2.1.4.2).
//! - `monitor` and `audit`: keep a trusted checkpoint in a state file and move it only along consistency proofs,
//!   so a log that forks, rolls back or rewrites its entries is caught (RFC 9162 §8.2–8.3).
//! - `--tiles URL` (`checkpoint`, `monitor`, `audit`, `upgrade-receipt`): the same checks from a C2SP tlog-tiles
//!   log's static resources instead of the gRPC API ([`reader`]); `monitor --cross-check` compares the two.
//! - `--witness` / `--quorum` on every verifying command: a checkpoint needs that many witness cosignatures (C2SP
//!   tlog-witness); `upgrade-receipt` stores a witnessed checkpoint and a consistency proof with a receipt so
//!   `verify-receipt` accepts it offline under such a policy.
//!
//! - `evidence export` / `evidence verify`: many events in one file with one multiproof, verified offline
//!   ([`evidence`], docs/evidence.md).
//!
//! Human output by default, `--json` for machines. Exit codes: 0 verified, 1 usage/IO/network, 2 invalid
//! command line (clap), 3 verification failed. Nothing panics on any input.

mod args;
mod commands;
mod error;
mod event;
mod evidence;
mod keys;
mod monitor;
mod output;
mod reader;
mod trust;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command, EvidenceCommand};
use crate::commands::Context;
use crate::error::CliError;
use crate::output::{Printer, read_file};

fn main() -> ExitCode {
    // Usage errors exit here with clap's code 2 (0 for --help and --version).
    let cli = Cli::parse();
    let printer = Printer { json: cli.json };
    match run(cli, printer) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            printer.report(&e);
            ExitCode::from(e.exit_code())
        }
    }
}

fn run(cli: Cli, printer: Printer) -> Result<(), CliError> {
    let ctx = Context {
        server: cli.server,
        key: cli.key,
        token: cli.token,
        ca: cli.ca,
        witnesses: cli.witnesses,
        quorum: cli.quorum,
        printer,
    };
    match cli.command {
        Command::Keygen { name, out } => {
            let made = keys::keygen(&name, &out)?;
            let json = serde_json::json!({
                "verifier_key": made.verifier.to_string(),
                "private_key_file": made.private_path,
                "verifier_key_file": made.verifier_path,
            });
            let human = format!(
                "{}\nprivate key written to {} (mode 0600: keep it secret)\nverifier key written to {}",
                made.verifier,
                made.private_path.display(),
                made.verifier_path.display()
            );
            printer.emit(&json, &human)
        }
        Command::VerifyReceipt {
            receipt,
            entry_file,
            entry,
        } => {
            let entry = match (entry, entry_file) {
                (Some(text), _) => Some(text.into_bytes()),
                (None, Some(path)) => Some(read_file("entry file", &path)?),
                (None, None) => None,
            };
            commands::verify_receipt_file(&ctx, &receipt, entry)
        }
        Command::Submit(args) => block_on(commands::submit(&ctx, args)),
        Command::Checkpoint { state, tiles } => block_on(commands::checkpoint(
            &ctx,
            state.as_deref(),
            tiles.url.as_deref(),
        )),
        Command::Inclusion(args) => block_on(commands::inclusion(&ctx, args)),
        Command::Consistency { old, new } => block_on(commands::consistency(&ctx, old, new)),
        Command::UpgradeReceipt { receipt, tiles } => block_on(commands::upgrade_receipt(
            &ctx,
            &receipt,
            tiles.url.as_deref(),
        )),
        Command::Monitor(args) => block_on(monitor::monitor(&ctx, args)),
        Command::Audit(args) => block_on(commands::audit(&ctx, args)),
        Command::Evidence(EvidenceCommand::Export(args)) => block_on(evidence::export(&ctx, *args)),
        Command::Evidence(EvidenceCommand::Verify { file }) => evidence::verify(&ctx, &file),
        Command::Verify { archive } => block_on(commands::verify_archive(&ctx, &archive)),
    }
}

/// Runs an online command; the offline ones (keygen, verify-receipt) never start a runtime.
fn block_on(command: impl Future<Output = Result<(), CliError>>) -> Result<(), CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| CliError::Stdio {
            what: "starting the async runtime",
            source,
        })?
        .block_on(command)
}
