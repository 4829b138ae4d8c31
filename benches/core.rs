//! tlog-core throughput, next to the raw SHA-256 rates that bound it, measured in the same run (the machines are
//! shared and noisy, so only ratios within one run mean much).
//!
//! - `sha256`: one SHA-256 of a 65-byte interior-node message and of 33- and 257-byte leaf messages.
//! - `compact_range`: appends/s of precomputed leaf hashes; each append costs one node hash on average, so the
//!   node-hash rate is the ceiling.
//! - `proofs/<size>`: inclusion and consistency proofs/s built from an in-memory node store (plan, fetch, build) and
//!   verified, at tree sizes 2^10, 2^16 and 2^20.
//!
//! Run: `cargo bench -p tlog-suite --bench core`. Every report line is in elements/s.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sha2::{Digest, Sha256};
use tlog_core::{
    CompactRange, Hash, LeafIndex, NodeId, TreeSize, consistency_plan, inclusion_plan, leaf_hash,
    verify_consistency, verify_inclusion,
};

const APPENDS: u64 = 1 << 16;
const PROOF_SIZES: [u32; 3] = [10, 16, 20];
/// Distinct proofs cycled through per benchmark, so caches see a realistic spread of paths.
const QUERIES: usize = 1024;

fn leaves(n: u64) -> Vec<Hash> {
    (0..n).map(|i| leaf_hash(&i.to_le_bytes())).collect()
}

/// A small deterministic generator (SplitMix64) for query positions; no dependency needed.
fn positions(seed: u64, below: u64, count: usize) -> Vec<u64> {
    let mut state = seed;
    (0..count)
        .map(|_| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            (z ^ (z >> 31)) % below
        })
        .collect()
}

/// Every complete node of a tree, one `Vec` per level indexed by node index: what a store would hold.
struct NodeStore {
    levels: Vec<Vec<Hash>>,
}

impl NodeStore {
    fn new(leaves: &[Hash]) -> Self {
        let mut levels: Vec<Vec<Hash>> = vec![Vec::new(); 65];
        let mut cr = CompactRange::new();
        cr.extend(leaves.iter().copied(), |id, h| {
            levels[usize::from(id.level)].push(h)
        })
        .unwrap();
        NodeStore { levels }
    }

    fn fetch(&self, ids: &[NodeId]) -> Vec<Hash> {
        ids.iter()
            .map(|id| self.levels[usize::from(id.level)][id.index as usize])
            .collect()
    }
}

fn sha256(c: &mut Criterion) {
    let mut g = c.benchmark_group("sha256");
    g.throughput(Throughput::Elements(1));
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(2));
    for (name, len) in [("node_65B", 65), ("leaf_33B", 33), ("leaf_257B", 257)] {
        let msg = vec![0x5a; len];
        g.bench_function(name, |b| b.iter(|| Sha256::digest(black_box(&msg))));
    }
    g.finish();
}

fn compact_range(c: &mut Criterion) {
    let leaves = leaves(APPENDS);
    let mut g = c.benchmark_group("compact_range");
    g.throughput(Throughput::Elements(APPENDS));
    g.sample_size(20);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("append", |b| {
        b.iter(|| {
            let mut cr = CompactRange::new();
            for leaf in &leaves {
                cr.append(*leaf, |_, _| {}).unwrap();
            }
            black_box(cr.size())
        })
    });
    // With a visitor that keeps every node, as a store's write batch would.
    let mut nodes = Vec::with_capacity(2 * APPENDS as usize);
    g.bench_function("extend_collecting_nodes", |b| {
        b.iter(|| {
            nodes.clear();
            let mut cr = CompactRange::new();
            cr.extend(leaves.iter().copied(), |id, h| nodes.push((id, h)))
                .unwrap();
            black_box(nodes.len())
        })
    });
    g.finish();
}

fn proofs(c: &mut Criterion) {
    let all_leaves = leaves(1 << PROOF_SIZES[PROOF_SIZES.len() - 1]);
    let store = NodeStore::new(&all_leaves);
    for log_size in PROOF_SIZES {
        let size = 1u64 << log_size;
        let root = store.levels[log_size as usize][0];
        let mut g = c.benchmark_group(format!("proofs/2^{log_size}"));
        g.throughput(Throughput::Elements(1));
        g.warm_up_time(Duration::from_secs(1));
        g.measurement_time(Duration::from_secs(2));

        let indices = positions(u64::from(log_size), size, QUERIES);
        let inclusion = |index: u64| {
            let plan = inclusion_plan(LeafIndex(index), TreeSize(size)).unwrap();
            plan.build(&store.fetch(plan.node_ids())).unwrap()
        };
        let mut at = 0;
        g.bench_function("inclusion_build", |b| {
            b.iter(|| {
                at = (at + 1) % QUERIES;
                inclusion(black_box(indices[at]))
            })
        });
        let proofs: Vec<Vec<Hash>> = indices.iter().map(|&i| inclusion(i)).collect();
        g.bench_function("inclusion_verify", |b| {
            b.iter(|| {
                at = (at + 1) % QUERIES;
                let index = indices[at];
                verify_inclusion(
                    &all_leaves[index as usize],
                    LeafIndex(index),
                    TreeSize(size),
                    &proofs[at],
                    &root,
                )
                .unwrap()
            })
        });

        // Older sizes 1..size, with their roots from the same store.
        let olds: Vec<u64> = positions(!u64::from(log_size), size - 1, QUERIES)
            .into_iter()
            .map(|s| s + 1)
            .collect();
        let old_roots: Vec<Hash> = olds
            .iter()
            .map(|&s| {
                let plan = tlog_core::root_plan(TreeSize(s));
                plan.build(&store.fetch(plan.node_ids())).unwrap()[0]
            })
            .collect();
        let consistency = |old: u64| {
            let plan = consistency_plan(TreeSize(old), TreeSize(size)).unwrap();
            plan.build(&store.fetch(plan.node_ids())).unwrap()
        };
        g.bench_function("consistency_build", |b| {
            b.iter(|| {
                at = (at + 1) % QUERIES;
                consistency(black_box(olds[at]))
            })
        });
        let proofs: Vec<Vec<Hash>> = olds.iter().map(|&s| consistency(s)).collect();
        g.bench_function("consistency_verify", |b| {
            b.iter(|| {
                at = (at + 1) % QUERIES;
                verify_consistency(
                    TreeSize(olds[at]),
                    TreeSize(size),
                    &proofs[at],
                    &old_roots[at],
                    &root,
                )
                .unwrap()
            })
        });
        g.finish();
    }
}

criterion_group!(benches, sha256, compact_range, proofs);
criterion_main!(benches);
