//! What the end-to-end benchmarks in `benches/` share: the run-length flags, medians and percentiles, and the
//! `main` that skips a plain `cargo bench` without release binaries and reports errors.

use std::future::Future;
use std::path::Path;
use std::process::ExitCode;

/// How long and how often a benchmark measures (`#[command(flatten)]` into a bench's clap arguments).
#[derive(clap::Args, Debug, Clone)]
pub struct Rounds {
    /// Seconds per measured run.
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Rounds of the compared runs, alternating within each round (medians are reported).
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Concurrent writers.
    #[arg(long, default_value_t = 4)]
    pub clients: usize,
    /// Added by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    pub bench: bool,
}

/// Nearest-rank value at fraction `p` (0..=1) of sorted values; NaN for none.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// The median (the lower one of an even count); NaN for none. Sorts `v`.
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    percentile(v, 0.5)
}

/// Whether this is a plain `cargo bench` (only `--bench` on the command line), which runs every bench: such a run
/// skips a bench whose binaries are not built rather than failing it, and says so.
pub fn skip_plain_run(name: &str, needed: &[&Path]) -> bool {
    let plain = std::env::args().skip(1).all(|a| a == "--bench");
    let missing = needed.iter().any(|p| !p.is_file());
    if plain && missing {
        eprintln!(
            "{name}: skipped (not built: {}; see BENCHMARKS.md)",
            needed
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    plain && missing
}

/// Runs a benchmark on a multi-threaded runtime; an error is printed as `name: error` and fails the process.
pub fn run(name: &str, bench: impl Future<Output = Result<(), String>>) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{name}: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(bench) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// User + system CPU seconds of a process (`"self"` or a pid) so far, from /proc/<pid>/stat; `None` when it is gone.
pub fn cpu_secs(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // /proc reports USER_HZ ticks, which Linux fixes at 100 for user space.
    Some(ticks as f64 / 100.0)
}
