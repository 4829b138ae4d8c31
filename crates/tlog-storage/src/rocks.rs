//! The RocksDB [`Backend`]: one database folder, one column family per [`Column`], every write one `WriteBatch`
//! with the write-ahead log synced (unless the caller turns sync off, e.g. for a benchmark baseline).

use std::path::{Path, PathBuf};

use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamilyDescriptor, DB, DBCompressionType, Direction,
    IteratorMode, MemtableFactory, Options, SliceTransform, WriteBatch, WriteOptions,
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
}

impl Default for RocksOptions {
    fn default() -> Self {
        RocksOptions {
            sync: true,
            block_cache_bytes: 64 << 20,
            write_buffer_bytes: 32 << 20,
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
        // Required by the leaf index's hash memtable; the sequencer is the only writer anyway.
        db_opts.set_allow_concurrent_memtable_write(false);
        // Bound the WAL so memtables of quiet column families get flushed (and the WAL's share of the disk small).
        db_opts.set_max_total_wal_size(64 << 20);
        // One memtable budget for all column families (RSS stays bounded however the writes are spread): room for
        // the entries' and the tiles' memtables plus the leaf index's small ones, then the fullest is flushed.
        db_opts.set_db_write_buffer_size(options.write_buffer_bytes * 3);
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
                // Leaf-hash lookups (de-duplication, proofs by hash) are random point reads, mostly misses for
                // new entries: a bloom filter answers those without touching disk.
                // The memtable gets one too: each batch's de-duplication probes every new hash there first.
                Column::Leaves => {
                    // 16 bits per key: a false positive costs a data-block read, and each lookup probes every
                    // L0 file and level (0.05% per probe instead of 1% at 10 bits; 20 MB of filters at 10M).
                    table.set_bloom_filter(16.0, false);
                    // Filters and indexes live in the table readers, loaded when a flush or compaction opens its new
                    // file (a background thread), not on the sequencer's first lookup after it: reading them there
                    // cost more than half the append rate (de-duplication off vs on in the sequencer bench).
                    table.set_cache_index_and_filter_blocks(false);
                    cf.set_memtable_prefix_bloom_ratio(0.1);
                    cf.set_memtable_whole_key_filtering(true);
                    // A hash-indexed memtable: an insert is one bucket lookup instead of a skip-list search through
                    // random keys (with a skip list, a third of the sequencer's CPU in the profile). The "prefix" is
                    // the whole 32-byte key, so each bucket holds about one row; nothing iterates this column by
                    // range (flushes sort the memtable on their own thread).
                    cf.set_prefix_extractor(SliceTransform::create_fixed_prefix(32));
                    cf.set_memtable_factory(MemtableFactory::HashLinkList {
                        bucket_count: 1 << 18,
                    });
                    // 8 MiB memtables flushed two at a time, merged into one L0 file: fewer, larger files to probe
                    // and to compact (random keys make every L0 file overlap the whole next level). Six may exist
                    // before writes stop, so a slow flush delays the sequencer less often.
                    cf.set_write_buffer_size(options.write_buffer_bytes.min(8 << 20));
                    cf.set_min_write_buffer_number_to_merge(2);
                    cf.set_max_write_buffer_number(6);
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
