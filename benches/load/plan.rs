//! What runs: the scenarios of a suite or of one `--mode`.

use crate::SERVER_MAX_BATCH;
use crate::args::{Args, Mode, Suite};
use crate::error::{LoadError, Res};
use crate::report::thousands;

#[derive(Clone, Debug)]
pub(crate) struct Scenario {
    pub(crate) mode: Mode,
    pub(crate) clients: usize,
    pub(crate) batch: usize,
    pub(crate) window: usize,
    pub(crate) readers: usize,
    pub(crate) rate: Option<f64>,
    /// Connections shared by the clients; None: one each.
    pub(crate) connections: Option<usize>,
}

impl Scenario {
    pub(crate) fn name(&self) -> String {
        match self.connections {
            Some(n) => format!(
                "{} over {n} connection{}",
                self.base_name(),
                if n == 1 { "" } else { "s" }
            ),
            None => self.base_name(),
        }
    }

    pub(crate) fn base_name(&self) -> String {
        let c = self.clients;
        let open = |s: String| match self.rate {
            Some(r) => format!("{s}, open loop {} entries/s", thousands(r)),
            None => s,
        };
        match self.mode {
            Mode::Submit => open(format!("Submit, {c} clients")),
            Mode::Batch => open(format!("SubmitBatch {}, {c} clients", self.batch)),
            Mode::Stream => format!(
                "SubmitStream {}/msg, {} in flight, {c} clients",
                self.batch, self.window
            ),
            Mode::InclusionIndex => format!("inclusion by index, {c} clients"),
            Mode::InclusionHash => format!("inclusion by hash, {c} clients"),
            Mode::Consistency => format!("consistency, {c} clients"),
            Mode::Mixed => format!(
                "mixed: SubmitBatch {} × {c} + {} index readers",
                self.batch, self.readers
            ),
            Mode::Baselines => "baselines".into(),
        }
    }

    pub(crate) fn writes(&self) -> bool {
        matches!(
            self.mode,
            Mode::Submit | Mode::Batch | Mode::Stream | Mode::Mixed
        )
    }

    /// Entries the server could at best commit in one synced write under this load: what the raw RocksDB baseline
    /// writes per batch. Open loop compares latency with a single synced write instead.
    pub(crate) fn raw_batch(&self) -> Option<usize> {
        let in_flight = match self.mode {
            _ if self.rate.is_some() => return Some(1),
            Mode::Submit => self.clients,
            Mode::Batch | Mode::Mixed => self.clients * self.batch,
            Mode::Stream => self.clients * self.batch * self.window,
            _ => return None,
        };
        Some(in_flight.clamp(1, SERVER_MAX_BATCH))
    }

    /// Clients whose empty-RPC round trip is the matching baseline.
    pub(crate) fn rpc_clients(&self) -> Option<usize> {
        match self.mode {
            Mode::Baselines => None,
            Mode::Mixed => Some(self.clients + self.readers),
            _ => Some(self.clients),
        }
    }
}

pub(crate) struct Plan {
    /// Write scenarios, each on a fresh log.
    pub(crate) writes: Vec<Scenario>,
    /// Entries to prefill, then the read (and mixed) scenarios on that log.
    pub(crate) prefill: u64,
    pub(crate) reads: Vec<Scenario>,
}

impl Plan {
    pub(crate) fn all(&self) -> impl Iterator<Item = &Scenario> {
        self.writes.iter().chain(&self.reads)
    }
}

pub(crate) fn sc(mode: Mode, clients: usize, batch: usize) -> Scenario {
    Scenario {
        mode,
        clients,
        batch,
        window: 8,
        readers: 16,
        rate: None,
        connections: None,
    }
}

pub(crate) fn plan(args: &Args) -> Res<Plan> {
    match args.suite {
        Some(Suite::Standard) => {
            let open = Scenario {
                rate: Some(10_000.0),
                ..sc(Mode::Submit, 64, 1)
            };
            Ok(Plan {
                writes: vec![
                    sc(Mode::Submit, 64, 1),
                    Scenario {
                        connections: Some(1),
                        ..sc(Mode::Submit, 64, 1)
                    },
                    sc(Mode::Batch, 64, 1),
                    sc(Mode::Batch, 8, 100),
                    sc(Mode::Batch, 4, 1000),
                    sc(Mode::Stream, 4, 100),
                    open,
                ],
                prefill: args.prefill.unwrap_or(1_000_000),
                reads: vec![
                    sc(Mode::InclusionIndex, 16, 1),
                    sc(Mode::InclusionHash, 16, 1),
                    sc(Mode::Consistency, 16, 1),
                    sc(Mode::Mixed, 4, 100),
                ],
            })
        }
        // Proof reads on a big log: 10M, or 100M filled with fsync on (the huge suite, see huge.rs).
        Some(suite @ (Suite::Large | Suite::Huge)) => Ok(Plan {
            writes: vec![],
            prefill: args.prefill.unwrap_or(if suite == Suite::Huge {
                100_000_000
            } else {
                10_000_000
            }),
            reads: vec![
                sc(Mode::InclusionIndex, 16, 1),
                sc(Mode::InclusionHash, 16, 1),
                sc(Mode::Consistency, 16, 1),
            ],
        }),
        None => {
            let s = Scenario {
                mode: args.mode,
                clients: args.clients,
                batch: if args.mode == Mode::Submit {
                    1
                } else {
                    args.batch
                },
                window: args.window,
                readers: args.readers.unwrap_or(16),
                rate: args.rate,
                connections: args.connections,
            };
            if args.rate.is_some() && !matches!(args.mode, Mode::Submit | Mode::Batch) {
                return Err(LoadError::Usage(
                    "--rate (open loop) applies to --mode submit and --mode batch".into(),
                ));
            }
            let default_prefill = if args.target.is_none() && args.mode.reads() {
                1_000_000
            } else {
                0
            };
            let prefill = args.prefill.unwrap_or(default_prefill);
            Ok(match args.mode {
                Mode::Baselines => Plan {
                    writes: vec![],
                    prefill: 0,
                    reads: vec![],
                },
                m if m.reads() => Plan {
                    writes: vec![],
                    prefill,
                    reads: vec![s],
                },
                _ => Plan {
                    writes: vec![s],
                    prefill,
                    reads: vec![],
                },
            })
        }
    }
}
