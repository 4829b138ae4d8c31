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
    use tlog_storage::{LogStore, RocksBackend, RocksOptions, RocksStore, StoreError};

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
