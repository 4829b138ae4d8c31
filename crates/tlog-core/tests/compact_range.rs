//! `CompactRange`: one-by-one appends and batched `extend` agree on roots and on visited nodes, the visited nodes are
//! exactly the complete nodes of the tree (with the reference hashes), and `from_parts` round-trips.

use tlog_core::testing::reference;

use std::collections::BTreeMap;

use proptest::prelude::*;
use tlog_core::{
    CompactRange, CoreError, Hash, NodeId, TreeSize, fold_range, leaf_hash, range_nodes,
};

fn leaves(n: usize) -> Vec<Hash> {
    (0..n as u64).map(|i| leaf_hash(&i.to_be_bytes())).collect()
}

/// The ids of all complete nodes of a tree of `size`, i.e. every perfect subtree that ends at or before `size`.
fn complete_nodes(size: u64) -> Vec<NodeId> {
    (0..64u8)
        .flat_map(|level| (0..size >> level).map(move |index| NodeId::new(level, index)))
        .collect()
}

#[test]
fn visits_exactly_the_complete_nodes_with_reference_hashes() {
    const N: usize = 300;
    let leaves = leaves(N);
    let rfc = reference::Rfc::new(leaves.iter().map(|h| h.0).collect());
    let mut cr = CompactRange::new();
    let mut visited = BTreeMap::new();
    for (size, leaf) in (1..).zip(&leaves) {
        cr.append(*leaf, |id, h| {
            assert!(visited.insert(id, h).is_none(), "{id:?} visited twice");
        })
        .unwrap();
        assert_eq!(visited.keys().copied().collect::<Vec<_>>(), {
            let mut all = complete_nodes(size);
            all.sort();
            all
        });
        assert_eq!(cr.root(), Hash(rfc.mth(0, size as usize)), "root of {size}");
        // The frontier is the hashes of range_nodes(0, size).
        let frontier: Vec<Hash> = range_nodes(0, size).iter().map(|id| visited[id]).collect();
        assert_eq!(cr.hashes(), frontier);
        assert_eq!(fold_range(&frontier), cr.root());
    }
    for (id, h) in &visited {
        assert_eq!(
            *h,
            Hash(rfc.mth(id.begin() as usize, id.end() as usize)),
            "{id:?}"
        );
    }
}

#[test]
fn from_parts_rejects_wrong_lengths() {
    for size in [0u64, 1, 2, 3, 7, 8, 255, 1 << 40, u64::MAX] {
        let ones = size.count_ones() as usize;
        for len in [ones.wrapping_sub(1), ones + 1] {
            if len > 64 {
                continue;
            }
            assert_eq!(
                CompactRange::from_parts(TreeSize(size), vec![Hash::default(); len]),
                Err(CoreError::FrontierLength {
                    size,
                    expected: ones,
                    actual: len
                })
            );
        }
    }
}

/// Splits `0..n` into consecutive batches whose lengths come from `cuts` (cycled; empty batches included). At least
/// one cut must be non-zero.
fn batches(n: usize, cuts: &[usize]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut at = 0;
    for &len in cuts.iter().cycle() {
        if at == n {
            break;
        }
        let end = (at + len).min(n);
        out.push(at..end);
        at = end;
    }
    out
}

fn cuts() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0..300usize, 1..20)
        .prop_filter("needs a non-empty batch", |c| c.iter().any(|&x| x > 0))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn batches_equal_single_appends(n in 0..2000usize, cuts in cuts()) {
        let leaves = leaves(n);
        let mut single = CompactRange::new();
        let mut single_visits = Vec::new();
        let mut single_roots = vec![single.root()];
        for leaf in &leaves {
            single.append(*leaf, |id, h| single_visits.push((id, h))).unwrap();
            single_roots.push(single.root());
        }

        let mut batched = CompactRange::new();
        let mut batched_visits = Vec::new();
        for range in batches(n, &cuts) {
            batched.extend(leaves[range.clone()].iter().copied(), |id, h| batched_visits.push((id, h))).unwrap();
            prop_assert_eq!(batched.size(), TreeSize(range.end as u64));
            prop_assert_eq!(batched.root(), single_roots[range.end]);
        }
        prop_assert_eq!(&batched, &single);
        prop_assert_eq!(batched_visits, single_visits);
    }

    #[test]
    fn from_parts_round_trips(n in 0..3000usize, more in 0..100usize) {
        let leaves = leaves(n + more);
        let mut original = CompactRange::new();
        original.extend(leaves[..n].iter().copied(), |_, _| {}).unwrap();
        let mut restored = CompactRange::from_parts(original.size(), original.hashes().to_vec()).unwrap();
        prop_assert_eq!(&restored, &original);
        prop_assert_eq!(restored.root(), original.root());

        // Both continue identically, visiting the same nodes.
        let (mut a, mut b) = (Vec::new(), Vec::new());
        original.extend(leaves[n..].iter().copied(), |id, h| a.push((id, h))).unwrap();
        restored.extend(leaves[n..].iter().copied(), |id, h| b.push((id, h))).unwrap();
        prop_assert_eq!(a, b);
        prop_assert_eq!(restored, original);
    }
}
