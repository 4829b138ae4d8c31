//! The conformance suite every [`LogStore`] must pass. Each check gets a fresh, empty store from `make`.
//!
//! Roots and proofs are checked against `tlog-core` (the compact range's root, the RFC 9162 verifiers), so a
//! store that loses, reorders or misplaces any node fails here.

use tlog_core::{
    CompactRange, Hash, LeafIndex, NodeId, TreeSize, consistency_plan, inclusion_plan, leaf_hash,
    root_plan, verify_consistency, verify_inclusion,
};

use std::ops::Range;

use crate::{AppendBatch, LogStore, PayloadRow, StoreError};

/// Runs every check; panics (it is a test suite) with the name of the failed check.
pub fn run_all<S: LogStore>(mut make: impl FnMut() -> S) {
    empty_store(&make());
    uneven_batches_give_reference_roots_and_proofs(&make());
    rejected_appends_change_nothing(&make());
    checkpoints_and_tiles(&make());
    metadata_round_trips(&make());
    payload_rows_are_written_with_entries(&make());
    erasure_deletes_every_payload_of_one_subject(&make());
}

fn private_batch(frontier: &mut CompactRange, rows: &[(&[u8], &[u8])]) -> AppendBatch {
    let start = frontier.size().0;
    let mut batch = batch_for(
        frontier,
        (0..rows.len() as u64).map(|i| entry(start + i)).collect(),
    );
    for (i, (subject, sealed)) in rows.iter().enumerate() {
        batch.payloads.push(PayloadRow {
            subject: subject.to_vec(),
            index: LeafIndex(start + i as u64),
            sealed: sealed.to_vec(),
        });
    }
    batch
}

fn payload_rows_are_written_with_entries<S: LogStore>(store: &S) {
    let mut frontier = CompactRange::new();
    let mut batch = private_batch(
        &mut frontier,
        &[(b"ab", b"sealed 0"), (b"abc", b"sealed 1")],
    );
    batch
        .subject_keys
        .push((b"ab".to_vec(), b"key of ab".to_vec()));
    store.append(&batch).unwrap();
    assert_eq!(
        store.payload(b"ab", LeafIndex(0)).unwrap().as_deref(),
        Some(&b"sealed 0"[..])
    );
    assert_eq!(
        store.payload(b"abc", LeafIndex(1)).unwrap().as_deref(),
        Some(&b"sealed 1"[..])
    );
    assert_eq!(
        store.payload(b"ab", LeafIndex(1)).unwrap(),
        None,
        "rows are filed by subject and index"
    );
    assert_eq!(
        store.subject_key(b"ab").unwrap().as_deref(),
        Some(&b"key of ab"[..])
    );
    assert_eq!(store.subject_key(b"abc").unwrap(), None);
    assert!(!store.purge_pending().unwrap());

    // A refused batch writes no payload row either.
    let mut refused = private_batch(&mut frontier.clone(), &[(b"ab", b"sealed 2")]);
    refused.start = TreeSize(7);
    assert!(store.append(&refused).is_err());
    assert_eq!(store.payload(b"ab", LeafIndex(2)).unwrap(), None);
}

fn erasure_deletes_every_payload_of_one_subject<S: LogStore>(store: &S) {
    let mut frontier = CompactRange::new();
    // "ab" is a prefix of "abc" and "ab" with a longer index would sort among them: only "ab"'s rows go.
    store
        .append(&private_batch(
            &mut frontier,
            &[
                (b"ab", b"a0"),
                (b"abc", b"b1"),
                (b"ab", b"a2"),
                (b"b", b"c3"),
            ],
        ))
        .unwrap();
    let mut erase = batch_for(&mut frontier, vec![b"erasure of ab".to_vec()]);
    erase.erase_payloads_of.push(b"ab".to_vec());
    erase
        .subject_keys
        .push((b"ab".to_vec(), b"erased".to_vec()));
    store.append(&erase).unwrap();
    assert_eq!(store.payload(b"ab", LeafIndex(0)).unwrap(), None);
    assert_eq!(store.payload(b"ab", LeafIndex(2)).unwrap(), None);
    assert_eq!(
        store.payload(b"abc", LeafIndex(1)).unwrap().as_deref(),
        Some(&b"b1"[..])
    );
    assert_eq!(
        store.payload(b"b", LeafIndex(3)).unwrap().as_deref(),
        Some(&b"c3"[..])
    );
    assert_eq!(
        store.subject_key(b"ab").unwrap().as_deref(),
        Some(&b"erased"[..])
    );
    assert_eq!(
        store.tree_size().unwrap(),
        TreeSize(5),
        "the erasure entry is appended"
    );
    assert!(
        store.purge_pending().unwrap(),
        "the purge is owed from the same write"
    );
    store.purge_erased().unwrap();
    assert!(!store.purge_pending().unwrap());
    assert_eq!(
        store.payload(b"abc", LeafIndex(1)).unwrap().as_deref(),
        Some(&b"b1"[..])
    );
}

/// Deterministic test entry `i`.
pub fn entry(i: u64) -> Vec<u8> {
    format!("entry {i}: {}", "x".repeat((i % 17) as usize)).into_bytes()
}

/// Builds the batch that appends `entries` to a log whose frontier is `frontier` (which it advances), with a
/// stand-in checkpoint naming the new size and root.
pub fn batch_for(frontier: &mut CompactRange, entries: Vec<Vec<u8>>) -> AppendBatch {
    let start = frontier.size();
    let leaf_hashes: Vec<Hash> = entries.iter().map(|e| leaf_hash(e)).collect();
    let mut nodes = Vec::new();
    frontier
        .extend(leaf_hashes.iter().copied(), |id, h| nodes.push((id, h)))
        .expect("tree not full");
    let checkpoint = format!(
        "size {} root {}",
        frontier.size().0,
        frontier.root().to_hex()
    )
    .into_bytes();
    AppendBatch {
        start,
        entries,
        leaf_hashes,
        nodes,
        checkpoint,
        ..AppendBatch::default()
    }
}

/// Appends test entries `range` (see [`entry`]) to `store` in one batch, advancing `frontier`.
pub fn append_entries<S: LogStore>(store: &S, frontier: &mut CompactRange, range: Range<u64>) {
    store
        .append(&batch_for(frontier, range.map(entry).collect()))
        .expect("append");
}

fn root_from_store<S: LogStore>(store: &S, size: u64) -> Hash {
    let plan = root_plan(TreeSize(size));
    let hashes = store
        .nodes(plan.node_ids())
        .expect("frontier nodes are stored");
    plan.build(&hashes).expect("plan folds")[0]
}

fn empty_store<S: LogStore>(store: &S) {
    assert_eq!(
        store.tree_size().unwrap(),
        TreeSize(0),
        "empty store has size 0"
    );
    assert!(
        store.latest_checkpoint().unwrap().is_none(),
        "empty store has no checkpoint"
    );
    assert!(
        store
            .entries(LeafIndex(0), LeafIndex(0))
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        store.entries(LeafIndex(0), LeafIndex(1)),
        Err(StoreError::OutOfRange(_))
    ));
    assert!(matches!(
        store.nodes(&[NodeId::leaf(0)]),
        Err(StoreError::OutOfRange(_))
    ));
    assert_eq!(
        store.leaf_indices(&[leaf_hash(b"nothing")]).unwrap(),
        vec![None]
    );
    assert!(store.tile(0, 0).unwrap().is_none());
}

fn uneven_batches_give_reference_roots_and_proofs<S: LogStore>(store: &S) {
    let mut frontier = CompactRange::new();
    let mut roots = vec![(0u64, frontier.root())];
    let mut next = 0u64;
    for len in [1u64, 7, 256, 1000, 3, 1, 300, 2] {
        let entries: Vec<Vec<u8>> = (next..next + len).map(entry).collect();
        next += len;
        store
            .append(&batch_for(&mut frontier, entries))
            .expect("append");
        assert_eq!(store.tree_size().unwrap(), TreeSize(next));
        assert_eq!(
            root_from_store(store, next),
            frontier.root(),
            "root of size {next} from stored nodes"
        );
        roots.push((next, frontier.root()));
    }
    let size = next;
    // Every entry reads back, by index and by hash.
    let all = store.entries(LeafIndex(0), LeafIndex(size)).unwrap();
    assert_eq!(all.len() as u64, size);
    for (i, e) in all.iter().enumerate() {
        assert_eq!(e, &entry(i as u64), "entry {i}");
    }
    let hashes: Vec<Hash> = (0..size).map(|i| leaf_hash(&entry(i))).collect();
    let found = store.leaf_indices(&hashes).unwrap();
    assert!(
        found
            .iter()
            .enumerate()
            .all(|(i, f)| *f == Some(LeafIndex(i as u64))),
        "leaf index by hash"
    );
    assert_eq!(
        store.entries(LeafIndex(5), LeafIndex(9)).unwrap(),
        (5..9).map(entry).collect::<Vec<_>>()
    );
    assert!(matches!(
        store.entries(LeafIndex(9), LeafIndex(5)),
        Err(StoreError::OutOfRange(_))
    ));
    assert!(matches!(
        store.entries(LeafIndex(0), LeafIndex(size + 1)),
        Err(StoreError::OutOfRange(_))
    ));
    assert!(
        matches!(
            store.nodes(&[NodeId::new(11, 0)]),
            Err(StoreError::OutOfRange(_))
        ),
        "incomplete node"
    );

    // Proofs at every published size verify against that size's root.
    for &(n, root) in roots.iter().skip(1) {
        for index in [0, n / 3, n / 2, n - 1] {
            let plan = inclusion_plan(LeafIndex(index), TreeSize(n)).unwrap();
            let proof = plan.build(&store.nodes(plan.node_ids()).unwrap()).unwrap();
            verify_inclusion(
                &hashes[index as usize],
                LeafIndex(index),
                TreeSize(n),
                &proof,
                &root,
            )
            .unwrap_or_else(|e| panic!("inclusion of {index} in {n}: {e}"));
        }
        for &(m, old_root) in roots.iter().skip(1).filter(|(m, _)| *m <= n) {
            let plan = consistency_plan(TreeSize(m), TreeSize(n)).unwrap();
            let proof = plan.build(&store.nodes(plan.node_ids()).unwrap()).unwrap();
            verify_consistency(TreeSize(m), TreeSize(n), &proof, &old_root, &root)
                .unwrap_or_else(|e| panic!("consistency {m} -> {n}: {e}"));
        }
    }
}

fn rejected_appends_change_nothing<S: LogStore>(store: &S) {
    let mut frontier = CompactRange::new();
    append_entries(store, &mut frontier, 0..10);
    let before = store.latest_checkpoint().unwrap();

    let mut wrong_start = batch_for(&mut frontier.clone(), vec![entry(10)]);
    wrong_start.start = TreeSize(9);
    let mut short_hashes = batch_for(&mut frontier.clone(), vec![entry(10), entry(11)]);
    short_hashes.leaf_hashes.pop();
    let mut node_gap = batch_for(&mut frontier.clone(), (10..20).map(entry).collect());
    node_gap.nodes.remove(1);
    let mut beyond = batch_for(&mut frontier.clone(), vec![entry(10)]);
    beyond.nodes.push((NodeId::leaf(11), leaf_hash(b"future")));
    let empty = AppendBatch {
        start: TreeSize(10),
        checkpoint: b"cp".to_vec(),
        ..AppendBatch::default()
    };
    for (name, bad) in [
        ("wrong start", wrong_start),
        ("short hashes", short_hashes),
        ("node gap", node_gap),
        ("node beyond size", beyond),
        ("empty", empty),
    ] {
        assert!(
            matches!(store.append(&bad), Err(StoreError::Conflict(_))),
            "{name} must be rejected"
        );
        assert_eq!(
            store.tree_size().unwrap(),
            TreeSize(10),
            "{name} changed the size"
        );
        assert_eq!(
            store.latest_checkpoint().unwrap(),
            before,
            "{name} changed the checkpoint"
        );
        assert!(matches!(
            store.entries(LeafIndex(10), LeafIndex(11)),
            Err(StoreError::OutOfRange(_))
        ));
    }
    // The log goes on where it was.
    append_entries(store, &mut frontier, 10..20);
    assert_eq!(root_from_store(store, 20), frontier.root());
}

fn checkpoints_and_tiles<S: LogStore>(store: &S) {
    let mut frontier = CompactRange::new();
    let mut sizes = Vec::new();
    let mut next = 0;
    for len in [300u64, 5, 20] {
        let batch = batch_for(&mut frontier, (next..next + len).map(entry).collect());
        next += len;
        sizes.push((TreeSize(next), batch.checkpoint.clone()));
        store.append(&batch).unwrap();
    }
    for (size, note) in &sizes {
        assert_eq!(
            store.checkpoint(*size).unwrap().as_ref(),
            Some(note),
            "checkpoint at {}",
            size.0
        );
    }
    assert!(store.checkpoint(TreeSize(301)).unwrap().is_none());
    assert_eq!(store.latest_checkpoint().unwrap(), sizes.last().cloned());
    assert_eq!(
        store.checkpoints_from(TreeSize(301), 10).unwrap(),
        sizes[1..].to_vec()
    );
    assert_eq!(
        store.checkpoints_from(TreeSize(0), 1).unwrap(),
        sizes[..1].to_vec()
    );

    // Tile bodies are the C2SP tiles: level 0 holds leaf hashes, level 1 the roots of full level-0 tiles.
    let leaves: Vec<u8> = (0..next).flat_map(|i| leaf_hash(&entry(i)).0).collect();
    assert_eq!(
        store.tile(0, 0).unwrap().unwrap(),
        leaves[..256 * 32].to_vec(),
        "full tile 0/0"
    );
    assert_eq!(
        store.tile(0, 1).unwrap().unwrap(),
        leaves[256 * 32..].to_vec(),
        "partial tile 0/1"
    );
    let level8 = store.nodes(&[NodeId::new(8, 0)]).unwrap();
    assert_eq!(
        store.tile(1, 0).unwrap().unwrap(),
        level8[0].0.to_vec(),
        "partial tile 1/0"
    );
    assert!(store.tile(0, 2).unwrap().is_none());
}

fn metadata_round_trips<S: LogStore>(store: &S) {
    assert_eq!(store.meta("origin").unwrap(), None);
    store.set_meta("origin", b"example.com/log").unwrap();
    assert_eq!(
        store.meta("origin").unwrap().as_deref(),
        Some(&b"example.com/log"[..])
    );
    store.set_meta("origin", b"changed").unwrap();
    assert_eq!(
        store.meta("origin").unwrap().as_deref(),
        Some(&b"changed"[..])
    );
}
