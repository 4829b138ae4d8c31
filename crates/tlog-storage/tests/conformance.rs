//! Both stores pass the one conformance suite; the RocksDB store also survives close and reopen.

use tlog_storage::conformance::run_all;
use tlog_storage::{MemoryBackend, MemoryStore};

#[test]
fn memory_store_conforms() {
    run_all(|| MemoryStore::open(MemoryBackend::new()).unwrap());
}

#[cfg(feature = "rocksdb")]
mod rocks {
    use tlog_core::{
        CompactRange, LeafIndex, TreeSize, inclusion_plan, leaf_hash, root_plan, verify_inclusion,
    };
    use tlog_storage::conformance::{append_entries, entry, run_all};
    use tlog_storage::{
        Column, LogStore, ReadTier, RocksBackend, RocksOptions, RocksStore, StoreError,
    };

    #[test]
    fn rocks_store_conforms() {
        let dirs = std::cell::RefCell::new(Vec::new());
        run_all(|| {
            let dir = tempfile::tempdir().unwrap();
            let store =
                RocksStore::open(RocksBackend::open(dir.path(), &RocksOptions::default()).unwrap())
                    .unwrap();
            dirs.borrow_mut().push(dir);
            store
        });
    }

    /// The leaf index's filters and indexes grow with the log, so they are held in the block cache (bounded by
    /// it), not in the table readers beside it; the store reports its memory by part.
    #[test]
    fn leaf_index_filters_are_held_in_the_block_cache() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            RocksStore::open(RocksBackend::open(dir.path(), &RocksOptions::default()).unwrap())
                .unwrap();
        let mut frontier = CompactRange::new();
        append_entries(&store, &mut frontier, 0..50_000);
        let db = store.backend().db();
        for column in Column::ALL {
            db.flush_cf(db.cf_handle(column.name()).unwrap()).unwrap();
        }
        // A proof by hash reads the leaf index's filter and index.
        let hash = leaf_hash(&entry(123));
        assert_eq!(
            store.leaf_indices(&[hash]).unwrap(),
            vec![Some(LeafIndex(123))]
        );
        let memory = store.memory();
        let part = |name| match memory.iter().find(|(p, _)| *p == name) {
            Some(&(_, bytes)) => bytes,
            None => panic!("no part {name} in {memory:?}"),
        };
        // 50,000 leaf hashes at 10 bits each: 62 KB of bloom filter alone, were it held outside the cache.
        assert!(part("table_readers") < 16 << 10, "{memory:?}");
        assert!(part("block_cache") > 0, "{memory:?}");
        assert!(part("leaf_filter") > 0, "{memory:?}");
        // Reported, whatever their size now that the memtables are flushed.
        part("memtables");
        part("upper_tiles");
    }

    /// [`ReadTier::Memory`] never waits for the disk: it declines what is only in table files until a read from
    /// disk has brought those blocks into the cache, and then answers the same as any read.
    #[test]
    fn memory_reads_decline_what_is_only_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let open = || {
            RocksStore::open(RocksBackend::open(dir.path(), &RocksOptions::default()).unwrap())
                .unwrap()
        };
        let mut frontier = CompactRange::new();
        let store = open();
        // Enough tiles that the first ones do not share a table block with the edge tiles an open reads.
        append_entries(&store, &mut frontier, 0..20_000);
        let db = store.backend().db();
        for column in Column::ALL {
            db.flush_cf(db.cf_handle(column.name()).unwrap()).unwrap();
        }
        drop(store);

        let store = open();
        let plan = inclusion_plan(LeafIndex(300), TreeSize(20_000)).unwrap();
        let hashes = [leaf_hash(&entry(300))];
        assert_eq!(
            store.nodes_in(plan.node_ids(), ReadTier::Memory).unwrap(),
            None
        );
        assert_eq!(
            store.leaf_indices_in(&hashes, ReadTier::Memory).unwrap(),
            None
        );

        let from_disk = store.nodes(plan.node_ids()).unwrap();
        let found = store.leaf_indices(&hashes).unwrap();
        assert_eq!(found, vec![Some(LeafIndex(300))]);
        assert_eq!(
            store.nodes_in(plan.node_ids(), ReadTier::Memory).unwrap(),
            Some(from_disk)
        );
        assert_eq!(
            store.leaf_indices_in(&hashes, ReadTier::Memory).unwrap(),
            Some(found)
        );
    }

    #[test]
    fn rocks_store_survives_reopen_with_identical_roots_and_proofs() {
        let dir = tempfile::tempdir().unwrap();
        let open = || {
            RocksStore::open(RocksBackend::open(dir.path(), &RocksOptions::default()).unwrap())
                .unwrap()
        };
        let mut frontier = CompactRange::new();
        let mut next = 0;
        for len in [1u64, 255, 7, 600] {
            let store = open();
            assert_eq!(
                store.tree_size().unwrap(),
                TreeSize(next),
                "size after reopen"
            );
            append_entries(&store, &mut frontier, next..next + len);
            next += len;
        }
        let store = open();
        assert_eq!(store.tree_size().unwrap(), TreeSize(next));
        // The reopened store's leaf filter is loaded from disk: every stored hash is found, an absent one is not.
        let mut hashes: Vec<_> = (0..next).map(|i| leaf_hash(&entry(i))).collect();
        hashes.push(leaf_hash(b"never appended"));
        let found = store.leaf_indices(&hashes).unwrap();
        assert_eq!(found.last(), Some(&None));
        for (i, f) in found[..next as usize].iter().enumerate() {
            assert_eq!(*f, Some(LeafIndex(i as u64)), "leaf {i} after reopen");
        }
        let plan = root_plan(TreeSize(next));
        assert_eq!(
            plan.build(&store.nodes(plan.node_ids()).unwrap()).unwrap()[0],
            frontier.root()
        );
        for index in [0, 1, 255, 256, 500, next - 1] {
            let plan = inclusion_plan(LeafIndex(index), TreeSize(next)).unwrap();
            let proof = plan.build(&store.nodes(plan.node_ids()).unwrap()).unwrap();
            verify_inclusion(
                &leaf_hash(&entry(index)),
                LeafIndex(index),
                TreeSize(next),
                &proof,
                &frontier.root(),
            )
            .unwrap();
        }
        // Appending after reopen continues the partial tiles read back from disk.
        append_entries(&store, &mut frontier, next..next + 3);
        drop(store);
        let store = open();
        let plan = root_plan(TreeSize(next + 3));
        assert_eq!(
            plan.build(&store.nodes(plan.node_ids()).unwrap()).unwrap()[0],
            frontier.root()
        );
    }

    #[test]
    fn rocks_store_refuses_unknown_format() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store =
                RocksStore::open(RocksBackend::open(dir.path(), &RocksOptions::default()).unwrap())
                    .unwrap();
            store
                .set_meta(tlog_storage::META_FORMAT_VERSION, b"99")
                .unwrap();
        }
        let err =
            RocksStore::open(RocksBackend::open(dir.path(), &RocksOptions::default()).unwrap())
                .err()
                .unwrap();
        assert!(
            matches!(err, StoreError::UnsupportedFormat { ref found } if found == "99"),
            "{err}"
        );
    }
}
