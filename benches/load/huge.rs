//! The huge suite (`--suite huge`, `scripts/bench.sh --huge`): one tlogd, fsync on, filled to N entries (default
//! 100M) in steps of [`STEP`], the figures issue 20 asks of a log at scale:
//!
//! - the write rate, RSS (now and peak), disk bytes per entry, CPU and bytes written per entry of every 10M;
//! - proof reads at 1M (after a restart, like the standard suite) and again at N;
//! - the restart at N: time from spawning tlogd to serving, and to the first de-duplicated Submit, which must
//!   answer with the original index (de-duplication exact from the first request).
//!
//! Each step writes entries of its own run id, so no step de-duplicates another's entries, and [`Known::entry`]
//! rebuilds any of them from its index.

use std::sync::Arc;
use std::time::Instant;

use tlog_proto::v1;

use crate::error::{LoadError, Res};
use crate::launch::{Server, connect};
use crate::plan::Plan;
use crate::report::thousands;
use crate::runs::{Outcome, Settings, prefill, run_scenario};
use crate::workers::Known;

/// Entries written per prefill step (one run id each).
pub(crate) const STEP: u64 = 1_000_000;
/// Steps per reported row (10M entries).
const ROW_STEPS: u64 = 10;
/// Log size of the first proof reads, the reference the reads at N are compared with.
const SMALL: u64 = STEP;

/// One reported stretch of the fill.
pub(crate) struct ScaleRow {
    /// Tree size at the end of the stretch.
    pub(crate) entries: u64,
    /// Entries the stretch wrote, and the seconds it took.
    pub(crate) written: u64,
    pub(crate) secs: f64,
    pub(crate) rss_kib: u64,
    pub(crate) hwm_kib: u64,
    pub(crate) disk_bytes: u64,
    pub(crate) cpu_us_per_entry: Option<f64>,
    pub(crate) written_per_entry: Option<f64>,
}

impl ScaleRow {
    pub(crate) fn rate(&self) -> f64 {
        self.written as f64 / self.secs
    }
}

/// The restart at full size.
pub(crate) struct Restart {
    /// Seconds from spawning tlogd to it listening.
    pub(crate) serving_secs: f64,
    /// Seconds from spawning tlogd to the answer of a Submit of the log's first entry.
    pub(crate) first_dedup_secs: f64,
    /// The index that answer gave: the log's first (anything else stops the run).
    pub(crate) dedup_index: u64,
}

pub(crate) struct Huge {
    pub(crate) rows: Vec<ScaleRow>,
    pub(crate) restart: Restart,
    /// Entries written, and the seconds the whole fill took.
    pub(crate) prefill: (u64, f64),
}

/// Fills the log to `plan.prefill`, running `plan.reads` at [`SMALL`] entries and again at the end, after a
/// measured restart.
pub(crate) async fn run(
    server: &mut Server,
    plan: &Plan,
    set: &Settings,
    run0: u64,
    outcomes: &mut Vec<Outcome>,
) -> Res<Huge> {
    let total = plan.prefill;
    // Run ids of the steps stay below those of the reads (run0 + 2000 and up).
    if total < SMALL || !total.is_multiple_of(STEP) || total / STEP >= 1000 {
        return Err(LoadError::Plan(format!(
            "the huge suite fills in steps of {}: pass --prefill as a multiple of it, below 1,000 steps",
            thousands(STEP as f64)
        )));
    }
    let run = run0 + 1000;
    let mut known: Option<Known> = None;
    let mut rows = Vec::new();
    let start = Instant::now();
    // Where the current row starts: time, tlogd's CPU seconds and bytes written, tree size.
    let mark = |server: &Server, size: u64| {
        (
            Instant::now(),
            server.cpu_secs(),
            server.written_bytes(),
            size,
        )
    };
    let mut row_start = mark(server, 0);
    for step in 0..total / STEP {
        let k = prefill(server, STEP, run + step, set, true).await?;
        match &mut known {
            None => {
                known = Some(Known {
                    run_entries: STEP,
                    ..k
                })
            }
            Some(all) => {
                all.count += k.count;
                all.checkpoints.extend(k.checkpoints);
            }
        }
        let size = known.as_ref().map_or(0, |k| k.base + k.count);
        if (step + 1).is_multiple_of(ROW_STEPS) || step + 1 == total / STEP {
            let (t0, cpu0, w0, size0) = row_start;
            let written = size - size0;
            let stats = server.stats(size);
            let now = mark(server, size);
            let (cpu1, w1) = (now.1, now.2);
            rows.push(ScaleRow {
                entries: size,
                written,
                secs: t0.elapsed().as_secs_f64(),
                rss_kib: stats.as_ref().map_or(0, |s| s.rss_kib),
                hwm_kib: stats.as_ref().map_or(0, |s| s.hwm_kib),
                disk_bytes: stats.as_ref().map_or(0, |s| s.disk_bytes),
                cpu_us_per_entry: cpu0.zip(cpu1).map(|(a, b)| (b - a) * 1e6 / written as f64),
                written_per_entry: w0
                    .zip(w1)
                    .map(|(a, b)| b.saturating_sub(a) as f64 / written as f64),
            });
            let row = rows.last().map(ScaleRow::rate).unwrap_or_default();
            eprintln!(
                "load: huge: {} entries, last stretch {}/s",
                thousands(size as f64),
                thousands(row)
            );
            row_start = now;
        }
        if (step + 1) * STEP == SMALL {
            // Reads at 1M the way the standard suite makes them: on a restarted tlogd.
            server.restart(false)?;
            let at_small = known.clone().map(Arc::new);
            for (i, s) in plan.reads.iter().enumerate() {
                outcomes.push(
                    run_scenario(server, s, at_small.as_ref(), run0 + 2000 + i as u64, set).await?,
                );
            }
            row_start = mark(server, size);
        }
    }
    let prefill_secs = start.elapsed().as_secs_f64();
    let known = known.ok_or_else(|| LoadError::Plan("nothing was written".into()))?;
    let restart = restart(server, &known).await?;
    let known = Arc::new(known);
    for (i, s) in plan.reads.iter().enumerate() {
        outcomes.push(run_scenario(server, s, Some(&known), run0 + 3000 + i as u64, set).await?);
    }
    Ok(Huge {
        rows,
        restart,
        prefill: (total, prefill_secs),
    })
}

/// Stops tlogd, starts it again on the same data, and times it to serving and to the first de-duplicated Submit.
async fn restart(server: &mut Server, known: &Known) -> Res<Restart> {
    let entry = known
        .entry(known.base)
        .ok_or_else(|| LoadError::Restart("the fill's entries are not known".into()))?;
    let start = Instant::now();
    server.restart(false)?;
    let serving_secs = start.elapsed().as_secs_f64();
    let mut rpc = connect(&server.addr).await?;
    let receipt = rpc
        .submit(v1::SubmitRequest { entry })
        .await
        .map_err(|e| LoadError::Restart(format!("Submit after the restart: {e}")))?
        .into_inner();
    let first_dedup_secs = start.elapsed().as_secs_f64();
    if !receipt.duplicate || receipt.index != known.base {
        return Err(LoadError::Restart(format!(
            "the log's first entry submitted again came back as index {} (duplicate: {}), not index {}",
            receipt.index, receipt.duplicate, known.base
        )));
    }
    eprintln!(
        "load: huge: restart to serving {serving_secs:.2} s, first de-duplicated Submit {first_dedup_secs:.2} s"
    );
    Ok(Restart {
        serving_secs,
        first_dedup_secs,
        dedup_index: receipt.index,
    })
}
