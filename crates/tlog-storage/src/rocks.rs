//! The RocksDB [`Backend`]: one database folder, one column family per [`Column`], every write one `WriteBatch`
//! with the write-ahead log synced (unless the caller turns sync off, e.g. for a benchmark baseline).

use std::path::{Path, PathBuf};

use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamilyDescriptor, DB, DBCompressionType, Direction,
    IteratorMode, Options, WriteBatch, WriteOptions,
};

use crate::StoreError;
use crate::tiled::{Backend, Column, Put, Row};

/// Tuning of the RocksDB store. The defaults suit a log of tens of millions of entries in a few hundred MiB of RSS.
#[derive(Clone, Debug)]
pub struct RocksOptions {
    /// fsync the write-ahead log on every append (durability); on by default.
    pub sync: bool,
    /// Shared block cache for all column families, index and filter blocks included.
    pub block_cache_bytes: usize,
    /// Memtable size per column family.
    pub write_buffer_bytes: usize,
    /// Flushes and compactions write (and read) their files with O_DIRECT, past the page cache, where the
    /// filesystem allows it (checked at open; tmpfs, for one, may not). On by default: in the 10M-entry benchmark,
    /// going through the page cache cost about a fifth of the process's CPU in kernel copies.
    pub direct_io: bool,
}

impl Default for RocksOptions {
    fn default() -> Self {
        RocksOptions {
            sync: true,
            block_cache_bytes: 64 << 20,
            write_buffer_bytes: 32 << 20,
            direct_io: true,
        }
    }
}

/// A RocksDB database holding one log.
pub struct RocksBackend {
    db: DB,
    write_options: WriteOptions,
    path: PathBuf,
}

fn backend_error(e: rocksdb::Error) -> StoreError {
    StoreError::Backend(e.into_string())
}

impl RocksBackend {
    /// Opens (creating if needed) the database in `path`.
    pub fn open(path: impl AsRef<Path>, options: &RocksOptions) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let cache = Cache::new_lru_cache(options.block_cache_bytes);
        let mut db_opts = Options::default();
        db_opts.create_if_missing(true);
        db_opts.create_missing_column_families(true);
        // Appends are what clients wait for; compactions can catch up when the log is quiet. On a 2-core machine
        // an equal-priority compaction thread slowed the sequencer by a third at 10M entries (RocksDB's own
        // L0 limits still stall writes if compaction falls too far behind). The default Env is process-wide.
        let mut env = rocksdb::Env::new().map_err(backend_error)?;
        env.lower_thread_pool_cpu_priority();
        db_opts.set_env(&env);
        db_opts.increase_parallelism(2);
        // Flushes and compactions write their files out as they go instead of in one burst at the end, which
        // otherwise queues in front of the next WAL fsync.
        db_opts.set_bytes_per_sync(1 << 20);
        // Bound the WAL so memtables of quiet column families get flushed (and the WAL's share of the disk small).
        db_opts.set_max_total_wal_size(64 << 20);
        // One memtable budget for all column families (RSS stays bounded however the writes are spread): room for
        // the entries' and the tiles' memtables plus the leaf index's small ones, then the fullest is flushed.
        db_opts.set_db_write_buffer_size(options.write_buffer_bytes * 3);
        if options.direct_io && supports_direct_io(&path)? {
            // Compactions read their inputs the same way, 2 MiB at a time; the WAL and lookups stay buffered.
            db_opts.set_use_direct_io_for_flush_and_compaction(true);
            db_opts.set_compaction_readahead_size(2 << 20);
        }
        let cfs = Column::ALL.iter().map(|&column| {
            let mut table = BlockBasedOptions::default();
            table.set_block_cache(&cache);
            table.set_cache_index_and_filter_blocks(true);
            table.set_pin_l0_filter_and_index_blocks_in_cache(true);
            let mut cf = Options::default();
            cf.set_write_buffer_size(options.write_buffer_bytes);
            // One flush thread serves every column: room for two memtables waiting behind another column's flush
            // instead of stopping writes (the total stays under the shared budget above).
            cf.set_max_write_buffer_number(4);
            cf.set_level_compaction_dynamic_level_bytes(true);
            match column {
                // Leaf-hash lookups (proofs by hash, and the de-duplication probes that the store's in-memory leaf
                // filter could not rule out) are random point reads: a bloom filter skips the files without the key.
                Column::Leaves => {
                    // 10 bits per key (1% false positives per file, 12.5 MB at 10M entries): most misses never get
                    // here, so more bits would only cost memory.
                    table.set_bloom_filter(10.0, false);
                    // Filters and indexes live in the table readers, loaded when a flush or compaction opens its new
                    // file (a background thread), not on the sequencer's first lookup after it: reading them there
                    // cost more than half the append rate (de-duplication off vs on in the sequencer bench).
                    table.set_cache_index_and_filter_blocks(false);
                    // Small memtables: inserting random keys into a skip list costs a cache miss per level, and a
                    // 2 MiB one stays in the CPU's cache (with 8 MiB, the sequencer reached 0.48 of the raw write at
                    // batch 1024 instead of 0.62). They are flushed eight at a time, merged into one 16 MiB L0 file,
                    // so there are no more files to compact than with big memtables (random keys make every L0 file
                    // overlap the whole next level). Twelve may exist before writes stop.
                    cf.set_write_buffer_size(options.write_buffer_bytes.min(2 << 20));
                    cf.set_min_write_buffer_number_to_merge(8);
                    cf.set_max_write_buffer_number(12);
                    // Every L0 file overlaps the whole base level, so each L0 compaction rewrites it: waiting for
                    // eight files instead of four nearly halves that rewriting (leaf-index compactions over 10M
                    // entries: 0.9-1.1 GB written in 7-8 s instead of 1.6-1.7 GB in 11-13 s). Extra L0 files cost
                    // little: only lookups the in-memory leaf filter could not rule out reach RocksDB, and each
                    // file's bloom filter is in memory.
                    cf.set_level_zero_file_num_compaction_trigger(8);
                }
                // Tiles are 16 KiB values read whole.
                Column::Tiles => table.set_block_size(32 << 10),
                _ => {}
            }
            // Entries (JSON events, mostly) compress well; hashes do not, so other columns are stored as they are.
            cf.set_compression_type(match column {
                Column::Entries => DBCompressionType::Lz4,
                _ => DBCompressionType::None,
            });
            cf.set_block_based_table_factory(&table);
            ColumnFamilyDescriptor::new(column.name(), cf)
        });
        let db =
            DB::open_cf_descriptors(&db_opts, &path, cfs.collect::<Vec<_>>()).map_err(|e| {
                StoreError::Backend(format!(
                    "opening RocksDB in {}: {}",
                    path.display(),
                    e.into_string()
                ))
            })?;
        let mut write_options = WriteOptions::default();
        write_options.set_sync(options.sync);
        Ok(RocksBackend {
            db,
            write_options,
            path,
        })
    }

    /// Opens an existing database read-only, for integrity tools: nothing is created or written (not even the
    /// files a read-write open adds), and a missing database is an error. RocksDB takes no lock for this, so it
    /// also works beside a running server (seeing the log as of the open).
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let names = Column::ALL.iter().map(|c| c.name());
        let db =
            DB::open_cf_for_read_only(&Options::default(), &path, names, false).map_err(|e| {
                StoreError::Backend(format!(
                    "opening RocksDB in {} read-only: {}",
                    path.display(),
                    e.into_string()
                ))
            })?;
        Ok(RocksBackend {
            db,
            write_options: WriteOptions::default(),
            path,
        })
    }

    /// The database folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The underlying database, for integrity tools and tests that must reach rows directly.
    pub fn db(&self) -> &DB {
        &self.db
    }

    fn cf(&self, column: Column) -> Result<&rocksdb::ColumnFamily, StoreError> {
        self.db.cf_handle(column.name()).ok_or_else(|| {
            StoreError::Backend(format!("column family {} is missing", column.name()))
        })
    }

    /// Reads one raw row.
    pub fn get_raw(&self, column: Column, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.db.get_cf(self.cf(column)?, key).map_err(backend_error)
    }

    /// Writes raw rows through RocksDB itself, bypassing the log's rules: for corruption tests and repair tools.
    pub fn put_raw(&self, column: Column, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.db
            .put_cf_opt(self.cf(column)?, key, value, &self.write_options)
            .map_err(backend_error)
    }
}

/// Whether files in `dir` (created if missing) can be opened with O_DIRECT. RocksDB would otherwise find out at its
/// first flush and stop taking writes.
fn supports_direct_io(dir: &Path) -> Result<bool, StoreError> {
    std::fs::create_dir_all(dir).map_err(|e| {
        StoreError::Backend(format!(
            "creating the database folder {}: {e}",
            dir.display()
        ))
    })?;
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let probe = dir.join(".direct-io-probe");
        let ok = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_DIRECT)
            .open(&probe)
            .is_ok();
        let _ = std::fs::remove_file(&probe);
        Ok(ok)
    }
    #[cfg(not(target_os = "linux"))]
    Ok(false)
}

impl Backend for RocksBackend {
    fn write(&self, puts: &[Put<'_>]) -> Result<(), StoreError> {
        // Sized up front: a batch of thousands of rows otherwise grows (and copies) its buffer a dozen times.
        // Per row: tag, column id and two lengths, at most 16 bytes; 12 bytes of batch header.
        let bytes: usize = puts.iter().map(|(_, k, v)| k.len() + v.len() + 16).sum();
        let mut batch = WriteBatch::with_capacity_bytes(bytes + 12);
        for &(column, key, value) in puts {
            batch.put_cf(self.cf(column)?, key, value);
        }
        self.db
            .write_opt(batch, &self.write_options)
            .map_err(backend_error)
    }

    fn get_many<K: AsRef<[u8]>>(
        &self,
        column: Column,
        keys: &[K],
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let cf = self.cf(column)?;
        self.db
            .batched_multi_get_cf(cf, keys, false)
            .into_iter()
            .map(|r| r.map(|v| v.map(|v| v.to_vec())).map_err(backend_error))
            .collect()
    }

    fn last(&self, column: Column) -> Result<Option<Row>, StoreError> {
        match self
            .db
            .iterator_cf(self.cf(column)?, IteratorMode::End)
            .next()
        {
            Some(Ok((k, v))) => Ok(Some((k.into_vec(), v.into_vec()))),
            Some(Err(e)) => Err(backend_error(e)),
            None => Ok(None),
        }
    }

    fn scan(&self, column: Column, from: &[u8], limit: usize) -> Result<Vec<Row>, StoreError> {
        self.db
            .iterator_cf(
                self.cf(column)?,
                IteratorMode::From(from, Direction::Forward),
            )
            .take(limit)
            .map(|r| {
                r.map(|(k, v)| (k.into_vec(), v.into_vec()))
                    .map_err(backend_error)
            })
            .collect()
    }
}
