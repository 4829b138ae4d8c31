//! Runs: one scenario against the server, the prefill that proof reads need, and what each measured.

use std::sync::Arc;
use std::time::Instant;

use crate::args::Mode;
use crate::error::{LoadError, Res};
use crate::launch::{Server, connect, connect_all, latest};
use crate::metrics;
use crate::plan::Scenario;
use crate::report::thousands;
use crate::workers::{
    Ctx, Known, ReadKind, Stop, Tally, read_closed, write_closed, write_open, write_stream,
};
use crate::{PREFILL_CLIENT, PREFILL_WINDOW, SERVER_MAX_BATCH};
use tlog_suite::bench::cpu_secs as proc_cpu_secs;

/// One side (writes or reads) of a run.
#[derive(Clone, Debug)]
pub(crate) struct Measured {
    pub(crate) ops: u64,
    pub(crate) requests: u64,
    pub(crate) secs: f64,
    pub(crate) p50_us: u32,
    pub(crate) p99_us: u32,
    pub(crate) p999_us: u32,
    pub(crate) max_us: u32,
    pub(crate) errors: u64,
    pub(crate) first_error: Option<String>,
    pub(crate) verified: u64,
    pub(crate) failures: u64,
    pub(crate) first_failure: Option<String>,
}

impl Measured {
    pub(crate) fn new(mut t: Tally, secs: f64) -> Measured {
        t.lat_us.sort_unstable();
        Measured {
            ops: t.ops,
            requests: t.requests,
            secs,
            p50_us: percentile(&t.lat_us, 50.0),
            p99_us: percentile(&t.lat_us, 99.0),
            p999_us: percentile(&t.lat_us, 99.9),
            max_us: t.lat_us.last().copied().unwrap_or(0),
            errors: t.errors,
            first_error: t.first_error,
            verified: t.checks.verified,
            failures: t.checks.failures,
            first_failure: t.checks.first_failure,
        }
    }

    pub(crate) fn rate(&self) -> f64 {
        self.ops as f64 / self.secs
    }

    pub(crate) fn rps(&self) -> f64 {
        self.requests as f64 / self.secs
    }
}

/// Nearest-rank percentile of sorted values.
pub(crate) fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[derive(Clone, Debug, Default)]
pub(crate) struct ServerStats {
    /// CPU cores used on average during the run.
    pub(crate) cpu: f64,
    pub(crate) rss_kib: u64,
    pub(crate) hwm_kib: u64,
    pub(crate) disk_bytes: u64,
    pub(crate) tree_size: u64,
    /// tlogd CPU time per acknowledged entry of the run, in microseconds (write runs).
    pub(crate) cpu_us_per_entry: Option<f64>,
    /// Bytes tlogd caused to be written to storage during the run (WAL, memtable flushes and compactions:
    /// `write_bytes` of /proc/<pid>/io) per acknowledged entry (write runs).
    pub(crate) written_per_entry: Option<f64>,
}

pub(crate) struct Outcome {
    pub(crate) sc: Scenario,
    /// Tree size at the start of the run.
    pub(crate) log_size: u64,
    pub(crate) write: Option<Measured>,
    pub(crate) read: Option<Measured>,
    pub(crate) server: Option<ServerStats>,
    pub(crate) client_cpu: f64,
}

impl Outcome {
    pub(crate) fn failures(&self) -> u64 {
        self.write
            .iter()
            .chain(&self.read)
            .map(|m| m.failures)
            .sum()
    }
}

pub(crate) struct Settings {
    pub(crate) duration: Option<f64>,
    pub(crate) entries: Option<u64>,
    pub(crate) entry_bytes: usize,
    pub(crate) verify_every: u64,
}

/// Runs one scenario against `server` and checks afterwards that the tree grew by exactly the entries acknowledged.
pub(crate) async fn run_scenario(
    server: &Server,
    sc: &Scenario,
    known: Option<&Arc<Known>>,
    run: u64,
    set: &Settings,
) -> Res<Outcome> {
    eprintln!("load: {}", sc.name());
    let ctx = Arc::new(Ctx {
        run,
        entry_bytes: set.entry_bytes,
        key: server.key.clone(),
        verify_every: set.verify_every,
    });
    let mut control = connect(&server.addr).await?;
    let before = latest(&mut control, &server.key).await?.checkpoint.size.0;
    let writers_n = if sc.writes() { sc.clients } else { 0 };
    let writers = connect_all(&server.addr, writers_n, sc.connections).await?;
    let readers_n = match sc.mode {
        Mode::Mixed => sc.readers,
        Mode::InclusionIndex | Mode::InclusionHash | Mode::Consistency => sc.clients,
        _ => 0,
    };
    let readers = connect_all(&server.addr, readers_n, sc.connections).await?;
    let known = match (known, readers_n) {
        (_, 0) => None,
        (Some(k), _) => Some(k.clone()),
        (None, _) => {
            return Err(LoadError::Plan(format!(
                "{} needs a prefilled log",
                sc.name()
            )));
        }
    };
    let http = server.proc.as_ref().and_then(|p| p.http.clone());
    let appended0 = match (&http, sc.writes()) {
        (Some(http), true) => metrics::entries_appended(http).await,
        _ => None,
    };
    let stop = Arc::new(Stop::new(set.duration, set.entries));
    let (cpu0, self0) = (server.cpu_secs(), proc_cpu_secs("self"));
    let written0 = server.written_bytes();
    let start = Instant::now();

    let mut write_tasks = Vec::new();
    let mut read_tasks = Vec::new();
    match sc.mode {
        Mode::Submit | Mode::Batch if sc.rate.is_some() => {
            let rate = sc.rate.unwrap_or(1.0);
            let unary = sc.mode == Mode::Submit;
            let (ctx, stop) = (ctx.clone(), stop.clone());
            let batch = sc.batch;
            write_tasks.push(tokio::spawn(async move {
                write_open(writers, ctx, stop, (unary, batch), rate).await
            }));
        }
        Mode::Submit | Mode::Batch | Mode::Mixed => {
            let unary = sc.mode == Mode::Submit;
            for (i, rpc) in writers.into_iter().enumerate() {
                let (ctx, stop, batch) = (ctx.clone(), stop.clone(), sc.batch);
                write_tasks.push(tokio::spawn(write_closed(
                    rpc, ctx, stop, i as u32, unary, batch,
                )));
            }
        }
        Mode::Stream => {
            for (i, rpc) in writers.into_iter().enumerate() {
                let (ctx, stop, shape) = (ctx.clone(), stop.clone(), (sc.batch, sc.window));
                write_tasks.push(tokio::spawn(async move {
                    write_stream(rpc, ctx, stop, i as u32, shape, None).await.0
                }));
            }
        }
        _ => {}
    }
    if let Some(known) = &known {
        let kind = match sc.mode {
            Mode::InclusionHash => ReadKind::Hash,
            Mode::Consistency => ReadKind::Consistency,
            _ => ReadKind::Index,
        };
        for (i, rpc) in readers.into_iter().enumerate() {
            let (ctx, stop, known) = (ctx.clone(), stop.clone(), known.clone());
            read_tasks.push(tokio::spawn(read_closed(
                rpc, ctx, stop, known, kind, i as u32,
            )));
        }
    }
    let (mut w, mut r) = (Tally::default(), Tally::default());
    for t in write_tasks {
        w.merge(joined("writer", t).await?);
    }
    for t in read_tasks {
        r.merge(joined("reader", t).await?);
    }
    let secs = start.elapsed().as_secs_f64();
    let (cpu1, self1) = (server.cpu_secs(), proc_cpu_secs("self"));
    let written1 = server.written_bytes();
    let after = latest(&mut control, &server.key).await?.checkpoint.size.0;

    // Every acknowledged entry is new, so the tree must have grown by exactly that many (at least, on a target other
    // writers may share, or after errors whose writes may have landed).
    if sc.writes() {
        let grown = after.saturating_sub(before);
        let exact = server.proc.is_some() && w.errors == 0;
        if (exact && grown != w.ops) || grown < w.ops {
            w.checks.fail(format!(
                "tree grew by {grown} entries but {} were acknowledged",
                w.ops
            ));
        }
    }
    // tlogd's own counter must agree: every acknowledged entry of this run was new.
    if let (Some(http), Some(a0)) = (&http, appended0)
        && let Some(a1) = metrics::entries_appended(http).await
    {
        let counted = a1 - a0;
        let agree = counted == w.ops as f64;
        eprintln!(
            "load: metrics: tlog_entries_appended_total grew by {counted}, {} entries acknowledged: {}",
            w.ops,
            if agree { "agree" } else { "DISAGREE" }
        );
        if !agree && w.errors == 0 {
            w.checks.fail(format!(
                "tlogd's tlog_entries_appended_total grew by {counted} but {} entries were acknowledged",
                w.ops
            ));
        }
    }
    let mut stats = server.stats(after);
    if let (Some(s), Some(a), Some(b)) = (stats.as_mut(), cpu0, cpu1) {
        s.cpu = (b - a) / secs;
        if w.ops > 0 {
            s.cpu_us_per_entry = Some((b - a) * 1e6 / w.ops as f64);
        }
    }
    if let (Some(s), Some(a), Some(b)) = (stats.as_mut(), written0, written1)
        && w.ops > 0
    {
        s.written_per_entry = Some(b.saturating_sub(a) as f64 / w.ops as f64);
    }
    let client_cpu = match (self0, self1) {
        (Some(a), Some(b)) => (b - a) / secs,
        _ => 0.0,
    };
    Ok(Outcome {
        sc: sc.clone(),
        log_size: before,
        write: sc.writes().then(|| Measured::new(w, secs)),
        read: (readers_n > 0).then(|| Measured::new(r, secs)),
        server: stats,
        client_cpu,
    })
}

/// Appends `n` entries with one pipelined SubmitStream of maximal messages, checking that they land in stream order
/// from the current size, and returns what the proof reads need. A started tlogd runs with --no-sync for the
/// prefill only (unless --prefill-sync), then restarts with the run's sync setting.
pub(crate) async fn prefill(
    server: &mut Server,
    n: u64,
    run: u64,
    set: &Settings,
    sync: bool,
) -> Res<Known> {
    let restart = server.proc.is_some() && !sync && !server.no_sync;
    let run_sync = server.no_sync;
    if restart {
        server.restart(true)?;
    }
    let mut rpc = connect(&server.addr).await?;
    let base = latest(&mut rpc, &server.key).await?.checkpoint.size.0;
    eprintln!(
        "load: prefilling {} entries{}",
        thousands(n as f64),
        if restart { " (tlogd --no-sync)" } else { "" }
    );
    let ctx = Arc::new(Ctx {
        run,
        entry_bytes: set.entry_bytes,
        key: server.key.clone(),
        verify_every: set.verify_every,
    });
    let start = Instant::now();
    let stop = Arc::new(Stop::new(None, Some(n)));
    let (t, checkpoints) = write_stream(
        rpc,
        ctx,
        stop,
        PREFILL_CLIENT,
        (SERVER_MAX_BATCH, PREFILL_WINDOW),
        Some(base),
    )
    .await;
    let secs = start.elapsed().as_secs_f64();
    if t.errors > 0 || t.checks.failures > 0 || t.ops != n {
        return Err(LoadError::Prefill {
            entries: t.ops,
            why: t
                .first_error
                .or(t.checks.first_failure)
                .unwrap_or_else(|| "stopped early".into()),
        });
    }
    eprintln!(
        "load: prefilled {} entries in {secs:.1} s ({}/s), {} receipts verified",
        thousands(n as f64),
        thousands(n as f64 / secs),
        t.checks.verified
    );
    if restart {
        server.restart(run_sync)?;
    }
    Ok(Known {
        run: Some(run),
        entry_bytes: set.entry_bytes,
        base,
        count: n,
        run_entries: u64::MAX,
        checkpoints: checkpoints.into_iter().collect(),
    })
}

/// Reads against a log this run did not fill: indices only (entries unknown, so by-hash and consistency reads need
/// --prefill).
pub(crate) async fn existing(server: &Server, entry_bytes: usize) -> Res<Known> {
    let mut rpc = connect(&server.addr).await?;
    let size = latest(&mut rpc, &server.key).await?.checkpoint.size.0;
    Ok(Known {
        run: None,
        entry_bytes,
        base: 0,
        count: size,
        run_entries: u64::MAX,
        checkpoints: Vec::new(),
    })
}

/// The result of a spawned task; one that panicked or was cancelled stops the run.
pub(crate) async fn joined<T>(what: &'static str, task: tokio::task::JoinHandle<T>) -> Res<T> {
    task.await
        .map_err(|source| LoadError::Task { what, source })
}
