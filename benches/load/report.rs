//! Reporting: the markdown tables and the JSON document.

use std::process::Command;

use serde_json::{Value, json};

use crate::args::Mode;
use crate::baselines::{Baselines, Rate};
use crate::runs::{Measured, Outcome, ServerStats};

pub(crate) fn thousands(x: f64) -> String {
    let s = format!("{:.0}", x.max(0.0));
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub(crate) fn ms(us: u32) -> String {
    format!("{:.2}", f64::from(us) / 1000.0)
}

/// `a / b` with enough digits that small ratios (a batch request against an empty RPC) do not print as 0.00.
pub(crate) fn ratio(a: f64, b: f64) -> String {
    if b <= 0.0 {
        return "–".into();
    }
    let r = a / b;
    match r {
        r if r >= 10.0 => format!("{r:.0}×"),
        r if r >= 0.1 => format!("{r:.2}×"),
        r if r >= 0.001 => format!("{r:.3}×"),
        r => format!("{r:.1e}×"),
    }
}

pub(crate) fn mib(kib: u64) -> String {
    format!("{:.0}", kib as f64 / 1024.0)
}

pub(crate) struct Report {
    pub(crate) outcomes: Vec<Outcome>,
    pub(crate) baselines: Baselines,
    pub(crate) prefill: Option<(u64, f64)>,
    /// The huge suite's fill, row by row, and its restart.
    pub(crate) huge: Option<crate::huge::Huge>,
    pub(crate) machine: Machine,
    pub(crate) command: String,
    pub(crate) sync: bool,
    pub(crate) entry_bytes: usize,
}

pub(crate) struct Machine {
    pub(crate) cpus: usize,
    pub(crate) model: String,
    pub(crate) load_before: String,
    pub(crate) load_after: String,
    pub(crate) kernel: String,
    /// `git describe` of the tree the binaries were built from, if known.
    pub(crate) commit: String,
}

pub(crate) fn machine(load_before: String) -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split(':').nth(1))
        .unwrap_or("unknown")
        .trim()
        .to_string();
    Machine {
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        model,
        load_before,
        load_after: loadavg(),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_string(),
        commit: git_commit(),
    }
}

/// The source tree's commit, marked `-dirty` when tracked files differ from it: which code was measured.
pub(crate) fn git_commit() -> String {
    Command::new("git")
        .args(["describe", "--always", "--dirty", "--abbrev=10"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

pub(crate) fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// One table row per side of an outcome.
pub(crate) struct Row {
    pub(crate) name: String,
    pub(crate) result: String,
    pub(crate) p50: String,
    pub(crate) p99: String,
    pub(crate) p999: String,
    pub(crate) raw: String,
    pub(crate) sha2: String,
    pub(crate) rpc: String,
    pub(crate) checked: String,
}

pub(crate) fn rows(o: &Outcome, b: &Baselines) -> Vec<Row> {
    let mut rows = Vec::new();
    let checked = |m: &Measured| {
        let mut s = format!("{} ✓ / {} ✗", m.verified, m.failures);
        if m.errors > 0 {
            s += &format!(", {} errors", m.errors);
        }
        s
    };
    let rpc_base = o.sc.rpc_clients().and_then(|c| b.rpc.get(&c));
    if let Some(w) = &o.write {
        let raw = match (o.sc.raw_batch(), o.sc.rate) {
            (Some(k), Some(_)) => b.raw.get(&k).map(|r| {
                format!(
                    "p99 {} of a synced write (k=1)",
                    ratio(f64::from(w.p99_us), f64::from(r.p99_us))
                )
            }),
            (Some(k), None) => b
                .raw
                .get(&k)
                .map(|r| format!("{} of k={k}", ratio(w.rate(), r.per_sec))),
            _ => None,
        };
        let name = if o.sc.mode == Mode::Mixed {
            format!("{} — writes", o.sc.name())
        } else {
            o.sc.name()
        };
        let result = match o.sc.rate {
            Some(r) => format!(
                "{} entries/s (offered {})",
                thousands(w.rate()),
                thousands(r)
            ),
            None => format!("{} entries/s", thousands(w.rate())),
        };
        rows.push(Row {
            name,
            result,
            p50: ms(w.p50_us),
            p99: ms(w.p99_us),
            p999: ms(w.p999_us),
            raw: raw.unwrap_or_else(|| "–".into()),
            sha2: b.sha2.map_or("–".into(), |s| ratio(w.rate(), s)),
            rpc: rpc_base.map_or("–".into(), |r| ratio(w.rps(), r.per_sec)),
            checked: checked(w),
        });
    }
    if let Some(r) = &o.read {
        let name = if o.sc.mode == Mode::Mixed {
            format!("{} — reads", o.sc.name())
        } else {
            format!("{} @ {} entries", o.sc.name(), thousands(o.log_size as f64))
        };
        rows.push(Row {
            name,
            result: format!("{} proofs/s", thousands(r.rate())),
            p50: ms(r.p50_us),
            p99: ms(r.p99_us),
            p999: ms(r.p999_us),
            raw: "–".into(),
            sha2: "–".into(),
            rpc: rpc_base.map_or("–".into(), |x| ratio(r.rps(), x.per_sec)),
            checked: checked(r),
        });
    }
    rows
}

/// The targets, judged from whichever outcomes measured them.
pub(crate) struct Target {
    pub(crate) goal: &'static str,
    pub(crate) measured: Option<String>,
    pub(crate) met: Option<bool>,
}

pub(crate) fn targets(r: &Report) -> Vec<Target> {
    let find = |f: &dyn Fn(&Outcome) -> bool| r.outcomes.iter().find(|o| f(o));
    let mut out = Vec::new();
    let batch = find(&|o: &Outcome| {
        o.sc.mode == Mode::Batch && o.sc.batch == 1000 && o.sc.clients >= 2 && o.sc.rate.is_none()
    })
    .and_then(|o| o.write.as_ref());
    out.push(Target {
        goal: "SubmitBatch 1000, several clients: ≥150,000 entries/s",
        measured: batch.map(|w| format!("{} entries/s", thousands(w.rate()))),
        met: batch.map(|w| w.rate() >= 150_000.0),
    });
    let unary = find(&|o: &Outcome| {
        o.sc.mode == Mode::Submit
            && o.sc.clients == 64
            && o.sc.rate.is_none()
            && o.sc.connections.is_none()
    })
    .and_then(|o| o.write.as_ref());
    out.push(Target {
        goal: "unary Submit, 64 clients: ≥20,000 entries/s",
        measured: unary.map(|w| format!("{} entries/s", thousands(w.rate()))),
        met: unary.map(|w| w.rate() >= 20_000.0),
    });
    let open = find(&|o: &Outcome| o.sc.rate == Some(10_000.0)).and_then(|o| o.write.as_ref());
    out.push(Target {
        goal: "ack p99 at an offered 10,000 entries/s: <20 ms",
        measured: open.map(|w| {
            format!(
                "p99 {} ms (p99.9 {} ms) at {} entries/s",
                ms(w.p99_us),
                ms(w.p999_us),
                thousands(w.rate())
            )
        }),
        met: open.map(|w| w.p99_us < 20_000),
    });
    let proofs = r
        .outcomes
        .iter()
        .filter(|o| o.sc.mode == Mode::InclusionIndex)
        .max_by_key(|o| o.log_size);
    let proofs_m = proofs.and_then(|o| o.read.as_ref().map(|m| (o.log_size, m)));
    out.push(Target {
        goal: "inclusion by index at 10M entries: ≥20,000 proofs/s",
        measured: proofs_m.map(|(size, m)| {
            format!(
                "{} proofs/s at {} entries",
                thousands(m.rate()),
                thousands(size as f64)
            )
        }),
        met: proofs_m.and_then(|(size, m)| (size >= 10_000_000).then_some(m.rate() >= 20_000.0)),
    });
    if let Some(h) = &r.huge {
        out.extend(huge_targets(r, h));
    }
    out
}

/// Issue 20's figures at scale: each a ratio within the same run.
fn huge_targets(r: &Report, h: &crate::huge::Huge) -> Vec<Target> {
    let mut out = Vec::new();
    if let (Some(first), Some(last)) = (h.rows.first(), h.rows.last()) {
        let ratio = last.rate() / first.rate();
        out.push(Target {
            goal: "write rate of the last 10M ≥ 0.8× the first 10M",
            measured: Some(format!(
                "{:.2}× ({} vs {} entries/s)",
                ratio,
                thousands(last.rate()),
                thousands(first.rate())
            )),
            met: Some(ratio >= 0.8),
        });
        let peak = h.rows.iter().map(|x| x.hwm_kib).max().unwrap_or(0);
        out.push(Target {
            goal: "tlogd RSS ≤ 256 MiB throughout",
            measured: Some(format!("peak {} MiB", mib(peak))),
            met: Some(peak <= 256 << 10),
        });
        let per_entry = last.disk_bytes as f64 / last.entries as f64;
        out.push(Target {
            goal: "disk ≤ 400 bytes/entry",
            measured: Some(format!("{per_entry:.0} bytes/entry at the end of the fill")),
            met: Some(per_entry <= 400.0),
        });
    }
    let rs = &h.restart;
    out.push(Target {
        goal: "restart to serving ≤ 10 s, de-duplication exact from the first request",
        measured: Some(format!(
            "serving after {:.2} s, the log's first entry submitted again de-duplicated to index {} after {:.2} s",
            rs.serving_secs, rs.dedup_index, rs.first_dedup_secs
        )),
        // A wrong answer already stopped the run (huge::restart).
        met: Some(rs.first_dedup_secs <= 10.0),
    });
    for mode in [Mode::InclusionIndex, Mode::InclusionHash, Mode::Consistency] {
        let at: Vec<&Outcome> = r.outcomes.iter().filter(|o| o.sc.mode == mode).collect();
        let (Some(small), Some(big)) = (at.first(), at.last()) else {
            continue;
        };
        let (Some(a), Some(b)) = (&small.read, &big.read) else {
            continue;
        };
        if big.log_size <= small.log_size {
            continue;
        }
        let ratio = b.rate() / a.rate();
        out.push(Target {
            goal: match mode {
                Mode::InclusionIndex => "inclusion by index at the full size ≥ 0.8× at 1M",
                Mode::InclusionHash => "inclusion by hash at the full size ≥ 0.8× at 1M",
                _ => "consistency at the full size ≥ 0.8× at 1M",
            },
            measured: Some(format!(
                "{ratio:.2}× ({} vs {} proofs/s)",
                thousands(b.rate()),
                thousands(a.rate())
            )),
            met: Some(ratio >= 0.8),
        });
    }
    out
}

fn huge_markdown(h: &crate::huge::Huge) -> String {
    let mut s = String::from(
        "Fill, fsync on (each row: the entries written since the row before; the reads at 1M are not timed):\n\n\
         | entries | written | entries/s | RSS / peak MiB | disk B/entry | tlogd CPU µs/entry | written B/entry |\n\
         |--:|--:|--:|--:|--:|--:|--:|\n",
    );
    for row in &h.rows {
        s += &format!(
            "| {} | {} | {} | {} / {} | {:.0} | {} | {} |\n",
            thousands(row.entries as f64),
            thousands(row.written as f64),
            thousands(row.rate()),
            mib(row.rss_kib),
            mib(row.hwm_kib),
            row.disk_bytes as f64 / row.entries as f64,
            row.cpu_us_per_entry
                .map_or("–".into(), |v| format!("{v:.1}")),
            row.written_per_entry
                .map_or("–".into(), |v| format!("{v:.0}")),
        );
    }
    let rs = &h.restart;
    s += &format!(
        "\nRestart at the full size: serving after {:.2} s; the first Submit (the log's first entry again) answered \
         after {:.2} s as a duplicate of index {}.\n\n",
        rs.serving_secs, rs.first_dedup_secs, rs.dedup_index
    );
    s
}

fn huge_json(h: &crate::huge::Huge) -> Value {
    json!({
        "rows": h.rows.iter().map(|x| json!({
            "entries": x.entries, "written": x.written, "secs": x.secs, "rate": x.rate(),
            "rss_kib": x.rss_kib, "peak_rss_kib": x.hwm_kib, "disk_bytes": x.disk_bytes,
            "cpu_us_per_entry": x.cpu_us_per_entry, "written_bytes_per_entry": x.written_per_entry,
        })).collect::<Vec<_>>(),
        "restart": {
            "serving_secs": h.restart.serving_secs, "first_dedup_secs": h.restart.first_dedup_secs,
            "dedup_index": h.restart.dedup_index,
        },
    })
}

pub(crate) fn markdown(r: &Report) -> String {
    let mut s = String::new();
    let m = &r.machine;
    s += &format!(
        "Machine: {} CPUs, {}, Linux {}; load average {} before, {} after. Source {}. Entries {} bytes, fsync {}.\n\n",
        m.cpus,
        m.model,
        m.kernel,
        m.load_before,
        m.load_after,
        m.commit,
        r.entry_bytes,
        if r.sync { "on" } else { "OFF" }
    );
    s += &format!("Command: `{}`\n\n", r.command);
    if let Some((n, secs)) = r.prefill {
        s += &format!(
            "Prefill: {} entries in {secs:.1} s ({} entries/s).\n\n",
            thousands(n as f64),
            thousands(n as f64 / secs)
        );
    }
    if let Some(h) = &r.huge {
        s += &huge_markdown(h);
    }
    if !r.outcomes.is_empty() {
        s += "| run | result | p50 ms | p99 ms | p99.9 ms | vs raw RocksDB | vs sha2 | vs empty RPC | checked | tlogd CPU | load CPU | RSS / peak MiB | disk B/entry | tlogd CPU µs/entry | written B/entry |\n";
        s += "|---|---|--:|--:|--:|---|--:|--:|---|--:|--:|--:|--:|--:|--:|\n";
        for o in &r.outcomes {
            let server = o.server.as_ref();
            let rows = rows(o, &r.baselines);
            let n = rows.len();
            for (i, row) in rows.into_iter().enumerate() {
                // Process figures belong to the whole run: print them on its last row.
                let last = i + 1 == n;
                let cell = |f: &dyn Fn(&ServerStats) -> String| match server {
                    Some(st) if last => f(st),
                    _ => String::new(),
                };
                s += &format!(
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                    row.name,
                    row.result,
                    row.p50,
                    row.p99,
                    row.p999,
                    row.raw,
                    row.sha2,
                    row.rpc,
                    row.checked,
                    cell(&|st| format!("{:.2}", st.cpu)),
                    if last {
                        format!("{:.2}", o.client_cpu)
                    } else {
                        String::new()
                    },
                    cell(&|st| format!("{} / {}", mib(st.rss_kib), mib(st.hwm_kib))),
                    cell(&|st| {
                        if st.tree_size == 0 {
                            "–".into()
                        } else {
                            format!("{:.0}", st.disk_bytes as f64 / st.tree_size as f64)
                        }
                    }),
                    cell(&|st| st
                        .cpu_us_per_entry
                        .map_or("–".into(), |v| format!("{v:.1}"))),
                    cell(&|st| st
                        .written_per_entry
                        .map_or("–".into(), |v| format!("{v:.0}"))),
                );
            }
        }
        s += "\n";
    }
    let b = &r.baselines;
    if b.sha2.is_some() || !b.raw.is_empty() || !b.rpc.is_empty() {
        s += "Baselines, same run, same machine:\n\n| baseline | rate | p50 ms | p99 ms |\n|---|--:|--:|--:|\n";
        if let Some(h) = b.sha2 {
            s += &format!(
                "| sha2 leaf hash (0x00 ‖ entry), 1 thread | {} entries/s | | |\n",
                thousands(h)
            );
        }
        for (k, x) in &b.raw {
            s += &format!(
                "| raw RocksDB write batch k={k} (entry + 40-byte index row), sync {} | {} entries/s | {} | {} |\n",
                if r.sync { "on" } else { "off" },
                thousands(x.per_sec),
                ms(x.p50_us),
                ms(x.p99_us)
            );
        }
        for (c, x) in &b.rpc {
            s += &format!(
                "| empty tonic RPC (health Check), {c} clients | {} RPCs/s | {} | {} |\n",
                thousands(x.per_sec),
                ms(x.p50_us),
                ms(x.p99_us)
            );
        }
        s += "\n";
    }
    let t = targets(r);
    if t.iter().any(|t| t.measured.is_some()) {
        s += "| target | measured | met |\n|---|---|---|\n";
        for t in t.iter().filter(|t| t.measured.is_some()) {
            s += &format!(
                "| {} | {} | {} |\n",
                t.goal,
                t.measured.as_deref().unwrap_or(""),
                match t.met {
                    Some(true) => "yes",
                    Some(false) => "**no**",
                    None => "n/a at this log size",
                }
            );
        }
        s += "\n";
    }
    for o in &r.outcomes {
        for (side, m) in [("writes", &o.write), ("reads", &o.read)] {
            let Some(m) = m else { continue };
            if let Some(e) = &m.first_error {
                s += &format!("- {} {side}: first error: {e}\n", o.sc.name());
            }
            if let Some(e) = &m.first_failure {
                s += &format!("- {} {side}: VERIFICATION FAILED: {e}\n", o.sc.name());
            }
        }
    }
    s
}

pub(crate) fn measured_json(m: &Measured) -> Value {
    json!({
        "ops": m.ops, "requests": m.requests, "secs": m.secs, "rate": m.rate(), "requests_per_sec": m.rps(),
        "latency_us": {"p50": m.p50_us, "p99": m.p99_us, "p99_9": m.p999_us, "max": m.max_us},
        "errors": m.errors, "first_error": m.first_error,
        "verified": m.verified, "failures": m.failures, "first_failure": m.first_failure,
    })
}

pub(crate) fn to_json(r: &Report) -> Value {
    let rate = |x: &Rate| json!({"per_sec": x.per_sec, "p50_us": x.p50_us, "p99_us": x.p99_us});
    let b = &r.baselines;
    let outcomes: Vec<Value> = r
        .outcomes
        .iter()
        .map(|o| {
            let raw = o.sc.raw_batch().and_then(|k| b.raw.get(&k).map(|x| (k, x)));
            let rpc = o
                .sc
                .rpc_clients()
                .and_then(|c| b.rpc.get(&c).map(|x| (c, x)));
            let ratios = json!({
                "write_vs_raw_rocksdb": o.write.as_ref().zip(raw).filter(|_| o.sc.rate.is_none()).map(|(w, (_, x))| w.rate() / x.per_sec),
                "ack_p99_vs_raw_write_p99": o.write.as_ref().zip(raw).filter(|_| o.sc.rate.is_some()).map(|(w, (_, x))| f64::from(w.p99_us) / f64::from(x.p99_us.max(1))),
                "write_vs_sha2": o.write.as_ref().zip(b.sha2).map(|(w, h)| w.rate() / h),
                "write_requests_vs_empty_rpc": o.write.as_ref().zip(rpc).map(|(w, (_, x))| w.rps() / x.per_sec),
                "reads_vs_empty_rpc": o.read.as_ref().zip(rpc).map(|(m, (_, x))| m.rps() / x.per_sec),
            });
            let readers = (o.sc.mode == Mode::Mixed).then_some(o.sc.readers);
            json!({
                "name": o.sc.name(),
                "mode": format!("{:?}", o.sc.mode).to_lowercase(),
                "clients": o.sc.clients, "batch": o.sc.batch, "window": o.sc.window,
                "readers": readers,
                "offered_rate": o.sc.rate,
                "log_size_at_start": o.log_size,
                "writes": o.write.as_ref().map(measured_json),
                "reads": o.read.as_ref().map(measured_json),
                "raw_rocksdb_batch": raw.map(|(k, _)| k),
                "empty_rpc_clients": rpc.map(|(c, _)| c),
                "ratios": ratios,
                "server": o.server.as_ref().map(|s| json!({
                    "cpu_cores": s.cpu, "rss_kib": s.rss_kib, "peak_rss_kib": s.hwm_kib,
                    "disk_bytes": s.disk_bytes, "tree_size": s.tree_size,
                    "disk_bytes_per_entry": if s.tree_size > 0 { Some(s.disk_bytes as f64 / s.tree_size as f64) } else { None },
                    "cpu_us_per_acked_entry": s.cpu_us_per_entry,
                    "written_bytes_per_acked_entry": s.written_per_entry,
                })),
                "load_generator_cpu_cores": o.client_cpu,
            })
        })
        .collect();
    json!({
        "machine": {
            "cpus": r.machine.cpus, "model": r.machine.model, "kernel": r.machine.kernel,
            "load_before": r.machine.load_before, "load_after": r.machine.load_after,
            "source": r.machine.commit,
        },
        "command": r.command,
        "entry_bytes": r.entry_bytes,
        "fsync": r.sync,
        "prefill": r.prefill.map(|(n, s)| json!({"entries": n, "secs": s})),
        "huge": r.huge.as_ref().map(huge_json),
        "baselines": {
            "sha2_leaf_hashes_per_sec": b.sha2,
            "raw_rocksdb": b.raw.iter().map(|(k, x)| (k.to_string(), rate(x))).collect::<serde_json::Map<_, _>>(),
            "empty_rpc": b.rpc.iter().map(|(c, x)| (c.to_string(), rate(x))).collect::<serde_json::Map<_, _>>(),
        },
        "results": outcomes,
        "targets": targets(r).iter().map(|t| json!({"goal": t.goal, "measured": t.measured, "met": t.met})).collect::<Vec<_>>(),
    })
}
