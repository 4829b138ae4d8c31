//! The RocksDB [`Backend`]: one database folder, one column family per [`Column`], every write one `WriteBatch`
//! with the write-ahead log synced (unless the caller turns sync off, e.g. for a benchmark baseline).

use std::path::{Path, PathBuf};

use rocksdb::{
    BlockBasedIndexType, BlockBasedOptions, BottommostLevelCompaction, Cache,
    ColumnFamilyDescriptor, CompactOptions, DB, DBCompressionType, Direction, FlushOptions,
    IteratorMode, Options, WriteBatch, WriteOptions,
};

use crate::tiled::{Backend, Column, DeleteRange, Put, Row, Visit};
use crate::{BackendError, BackendErrorKind, MemoryPart, ReadTier, StoreError};

/// Default [`RocksOptions::block_cache_bytes`].
pub const DEFAULT_BLOCK_CACHE_BYTES: usize = 64 << 20;
/// Default [`RocksOptions::write_buffer_bytes`]: 12 MiB held 4-5 MiB less RSS than 16 MiB, and 16 MiB 13-25 MiB
/// less than 32, for a few percent of the write rate each; the smaller memtables also served proofs at 100M entries
/// faster (BENCHMARKS.md, issue 20 seventh to ninth rounds). 8 MiB cost a tenth of the write rate.
pub const DEFAULT_WRITE_BUFFER_BYTES: usize = 12 << 20;
/// Default [`RocksOptions::min_free_bytes`]: above RocksDB's own need after a full disk (it recovers by itself
/// only once the memtable budget, 36 MiB by default, is free again), with room for flushes and compactions.
pub const DEFAULT_MIN_FREE_BYTES: u64 = 256 << 20;

/// Background flush and compaction threads.
const BACKGROUND_THREADS: i32 = 2;
/// Flushes and compactions sync their output every this many bytes.
const BYTES_PER_SYNC: u64 = 1 << 20;
/// Write-ahead log size past which the memtables it keeps alive are flushed.
const MAX_TOTAL_WAL_BYTES: u64 = 64 << 20;
/// Memtables one column family may hold (one being written, the rest waiting for the flush thread).
const MAX_WRITE_BUFFERS: i32 = 4;
/// Read-ahead of compaction inputs read with O_DIRECT.
const COMPACTION_READAHEAD_BYTES: usize = 2 << 20;
/// Bloom filter bits per key of the leaf index (about 1% false positives per file).
const LEAVES_BLOOM_BITS_PER_KEY: f64 = 10.0;
/// Memtable size cap of the leaf index (small enough to stay in the CPU's cache).
const LEAVES_WRITE_BUFFER_BYTES: usize = 2 << 20;
/// Leaf-index memtables merged into one L0 file per flush.
const LEAVES_WRITE_BUFFERS_TO_MERGE: i32 = 8;
/// Leaf-index memtables that may exist before writes stop.
const LEAVES_MAX_WRITE_BUFFERS: i32 = 12;
/// Leaf-index L0 files that start a compaction.
const LEAVES_L0_COMPACTION_TRIGGER: i32 = 8;
/// Block size of the tiles column: below a full stored tile (16 KiB, read whole), so each full tile is a block of
/// its own and a proof reads and caches only the tile it needs, not its neighbour too.
const TILES_BLOCK_BYTES: usize = 4 << 10;
/// Bloom filter bits per key of the tiles column (one key per 16 KiB tile, so the filters are tiny).
const TILES_BLOOM_BITS_PER_KEY: f64 = 10.0;

/// Block size of the entries column (see where it is set).
const ENTRIES_BLOCK_BYTES: usize = 16 << 10;

/// Tuning of the RocksDB store. The defaults suit a log of tens of millions of entries in a few hundred MiB of RSS.
#[derive(Clone, Debug)]
pub struct RocksOptions {
    /// fsync the write-ahead log on every append (durability); on by default.
    pub sync: bool,
    /// Shared block cache for all column families, index and filter blocks included.
    pub block_cache_bytes: usize,
    /// Memtable size per column family (the leaf index's are smaller); all memtables together stay within 3× this.
    /// Smaller saves RSS and costs write rate (BENCHMARKS.md, issue 20 seventh round).
    pub write_buffer_bytes: usize,
    /// Flushes and compactions write (and read) their files with O_DIRECT, past the page cache, where the
    /// filesystem allows it (checked at open; tmpfs, for one, may not). On by default: copying every file through
    /// the page cache costs kernel CPU the sequencer needs (see BENCHMARKS.md).
    pub direct_io: bool,
    /// Free space the data folder's filesystem must keep: a write that would leave less is refused (kind
    /// [`BackendErrorKind::NoSpace`], nothing written) before RocksDB runs out of space, so that flushes,
    /// compactions and recovery always have room and writes resume by themselves once space is freed. 0 turns
    /// the check off (RocksDB then meets the full disk itself; it recovers once
    /// `3 × write_buffer_bytes` is free again, polling every 5 s).
    pub min_free_bytes: u64,
}

impl Default for RocksOptions {
    fn default() -> Self {
        RocksOptions {
            sync: true,
            block_cache_bytes: DEFAULT_BLOCK_CACHE_BYTES,
            write_buffer_bytes: DEFAULT_WRITE_BUFFER_BYTES,
            direct_io: true,
            min_free_bytes: DEFAULT_MIN_FREE_BYTES,
        }
    }
}

/// Answers to point reads, in the order of their keys (`None`: no such key).
type Values = Vec<Option<Vec<u8>>>;

/// A RocksDB database holding one log.
pub struct RocksBackend {
    db: DB,
    write_options: WriteOptions,
    path: PathBuf,
    min_free_bytes: u64,
}

/// RocksDB's status codes, grouped by what a caller does about them.
fn kind_of(e: &rocksdb::Error) -> BackendErrorKind {
    use rocksdb::ErrorKind as K;
    match e.kind() {
        K::Corruption => BackendErrorKind::Corruption,
        K::IOError => BackendErrorKind::Io,
        K::Busy | K::TryAgain | K::TimedOut => BackendErrorKind::Busy,
        K::InvalidArgument | K::NotSupported | K::ColumnFamilyDropped => BackendErrorKind::Invalid,
        K::NotFound
        | K::MergeInProgress
        | K::Incomplete
        | K::ShutdownInProgress
        | K::Aborted
        | K::Expired
        | K::CompactionTooLarge
        | K::Unknown => BackendErrorKind::Other,
    }
}

fn backend_error(e: rocksdb::Error) -> StoreError {
    StoreError::Backend(BackendError::new(kind_of(&e), e.into_string()))
}

/// A RocksDB error with what was being done.
fn backend_error_in(doing: String) -> impl FnOnce(rocksdb::Error) -> StoreError {
    move |e| StoreError::Backend(BackendError::new(kind_of(&e), format!("{doing}: {e}")))
}

impl RocksBackend {
    /// Opens (creating if needed) the database in `path`.
    pub fn open(path: impl AsRef<Path>, options: &RocksOptions) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let cache = Cache::new_lru_cache(options.block_cache_bytes);
        let mut db_opts = Options::default();
        db_opts.create_if_missing(true);
        db_opts.create_missing_column_families(true);
        // Appends are what clients wait for; compactions can catch up when the log is quiet (RocksDB's own L0
        // limits still stall writes if compaction falls too far behind). The default Env is process-wide.
        let mut env = rocksdb::Env::new().map_err(backend_error)?;
        env.lower_thread_pool_cpu_priority();
        db_opts.set_env(&env);
        db_opts.increase_parallelism(BACKGROUND_THREADS);
        // Flushes and compactions write their files out as they go instead of in one burst at the end, which
        // otherwise queues in front of the next WAL fsync.
        db_opts.set_bytes_per_sync(BYTES_PER_SYNC);
        // Bound the WAL so memtables of quiet column families get flushed (and the WAL's share of the disk small).
        db_opts.set_max_total_wal_size(MAX_TOTAL_WAL_BYTES);
        // One memtable budget for all column families (RSS stays bounded however the writes are spread): room for
        // the entries' and the tiles' memtables plus the leaf index's small ones, then the fullest is flushed.
        db_opts.set_db_write_buffer_size(options.write_buffer_bytes * 3);
        if options.direct_io && supports_direct_io(&path)? {
            // Compactions read their inputs the same way; the WAL and lookups stay buffered.
            db_opts.set_use_direct_io_for_flush_and_compaction(true);
            db_opts.set_compaction_readahead_size(COMPACTION_READAHEAD_BYTES);
        }
        let cfs = Column::ALL.iter().map(|&column| {
            let mut table = BlockBasedOptions::default();
            table.set_block_cache(&cache);
            table.set_cache_index_and_filter_blocks(true);
            table.set_pin_l0_filter_and_index_blocks_in_cache(true);
            let mut cf = Options::default();
            cf.set_write_buffer_size(options.write_buffer_bytes);
            // One flush thread serves every column: room for memtables waiting behind another column's flush
            // instead of stopping writes (the total stays under the shared budget above).
            cf.set_max_write_buffer_number(MAX_WRITE_BUFFERS);
            cf.set_level_compaction_dynamic_level_bytes(true);
            match column {
                // Leaf-hash lookups (proofs by hash, and the de-duplication probes that the store's in-memory leaf
                // filter could not rule out) are random point reads: a bloom filter skips the files without the key.
                Column::Leaves => {
                    // Most misses never get here (the leaf filter answers them), so more bits would only cost
                    // memory.
                    // In every level, the last included: without its filter (`optimize_filters_for_hits`, tried in
                    // issue 20) each of the leaf filter's false positives costs a read from disk on the sequencer,
                    // and past its first fold (~60M entries) that cut the write rate to a third (BENCHMARKS.md).
                    table.set_bloom_filter(LEAVES_BLOOM_BITS_PER_KEY, false);
                    // Filters and indexes grow with the log (about 1.4 MiB per million entries), so they live in the
                    // block cache like every other column's, bounded by it, instead of in the table readers beside
                    // it. Partitioned, so a lookup loads the 4 KiB filter and index pieces it needs, not a whole
                    // file's; the small top level of each stays pinned, and the pieces are cached with high
                    // priority, ahead of data blocks. A de-duplication probe whose piece is not cached reads it from
                    // disk; up to 70M entries that did not slow the writes (BENCHMARKS.md, issue 20 third round).
                    table.set_index_type(BlockBasedIndexType::TwoLevelIndexSearch);
                    table.set_partition_filters(true);
                    table.set_pin_top_level_index_and_filter(true);
                    table.set_cache_index_and_filter_blocks_with_high_priority(true);
                    // Small memtables: inserting random keys into a skip list costs a cache miss per level, and a
                    // small one stays in the CPU's cache. They are flushed several at a time, merged into one L0
                    // file, so there are no more files to compact than with big memtables (random keys make every
                    // L0 file overlap the whole next level).
                    cf.set_write_buffer_size(
                        options.write_buffer_bytes.min(LEAVES_WRITE_BUFFER_BYTES),
                    );
                    cf.set_min_write_buffer_number_to_merge(LEAVES_WRITE_BUFFERS_TO_MERGE);
                    cf.set_max_write_buffer_number(LEAVES_MAX_WRITE_BUFFERS);
                    // Every L0 file overlaps the whole base level, so each L0 compaction rewrites it: waiting for
                    // more files means less rewriting. Extra L0 files cost little: only lookups the in-memory leaf
                    // filter could not rule out reach RocksDB, and L0 files' filters stay pinned in the cache.
                    cf.set_level_zero_file_num_compaction_trigger(LEAVES_L0_COMPACTION_TRIGGER);
                }
                // Every flush writes tiles of every level (the new level-0 tiles and the right edge above them), so
                // each L0 file's key range spans the others' and a point read would otherwise seek into, and load, a
                // data block of every file on its way down; the filter skips the files without the tile.
                Column::Tiles => {
                    table.set_block_size(TILES_BLOCK_BYTES);
                    table.set_bloom_filter(TILES_BLOOM_BITS_PER_KEY, false);
                }
                // The entries' index grows with the log, and a whole-file index is loaded into the cache for every
                // new file, crowding out the tiles proofs read. Larger blocks shrink it (entries are read in
                // ranges: bundles of 256, 64 KiB), and partitioned, only the pieces that reads need are cached,
                // behind a small pinned top level (BENCHMARKS.md, issue 20 sixth round).
                Column::Entries => {
                    table.set_block_size(ENTRIES_BLOCK_BYTES);
                    table.set_index_type(BlockBasedIndexType::TwoLevelIndexSearch);
                    table.set_pin_top_level_index_and_filter(true);
                }
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
        let db = DB::open_cf_descriptors(&db_opts, &path, cfs.collect::<Vec<_>>()).map_err(
            backend_error_in(format!("opening RocksDB in {}", path.display())),
        )?;
        let mut write_options = WriteOptions::default();
        write_options.set_sync(options.sync);
        Ok(RocksBackend {
            db,
            write_options,
            path,
            min_free_bytes: options.min_free_bytes,
        })
    }

    /// Opens an existing database read-only, for integrity tools: nothing is created or written (not even the
    /// files a read-write open adds), and a missing database is an error. RocksDB takes no lock for this, so it
    /// also works beside a running server (seeing the log as of the open).
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        // A log written before a column existed lacks its family (a read-write open adds it); reads of it then
        // fail with "column family missing" instead of the whole open failing.
        let existing = DB::list_cf(&Options::default(), &path).unwrap_or_default();
        let names = Column::ALL
            .iter()
            .map(|c| c.name())
            .filter(|n| existing.is_empty() || existing.iter().any(|e| e == n));
        let db = DB::open_cf_for_read_only(&Options::default(), &path, names, false).map_err(
            backend_error_in(format!("opening RocksDB in {} read-only", path.display())),
        )?;
        Ok(RocksBackend {
            db,
            write_options: WriteOptions::default(),
            path,
            min_free_bytes: 0,
        })
    }

    /// Refuses a write of about `bytes` that would leave less than [`RocksOptions::min_free_bytes`] free.
    fn check_free_space(&self, bytes: u64) -> Result<(), StoreError> {
        if self.min_free_bytes == 0 {
            return Ok(());
        }
        let free = free_bytes(&self.path)?;
        if free < self.min_free_bytes.saturating_add(bytes) {
            return Err(StoreError::Backend(BackendError::new(
                BackendErrorKind::NoSpace,
                format!(
                    "disk full: {free} bytes free on the filesystem of {}, below the {} bytes writes keep free \
                     (min_free_bytes); writes resume by themselves once space is freed",
                    self.path.display(),
                    self.min_free_bytes
                ),
            )));
        }
        Ok(())
    }

    /// The database folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The underlying database, for benchmarks and tests that read RocksDB's own properties and files.
    pub fn db(&self) -> &DB {
        &self.db
    }

    fn cf(&self, column: Column) -> Result<&rocksdb::ColumnFamily, StoreError> {
        self.db.cf_handle(column.name()).ok_or_else(|| {
            StoreError::Backend(BackendError::new(
                BackendErrorKind::Invalid,
                format!("column family {} is missing", column.name()),
            ))
        })
    }

    /// Reads one raw row.
    #[cfg(feature = "public-tests")]
    pub fn get_raw(&self, column: Column, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.db.get_cf(self.cf(column)?, key).map_err(backend_error)
    }

    /// Writes one raw row through RocksDB itself, bypassing the log's rules: for corruption tests.
    #[cfg(feature = "public-tests")]
    pub fn put_raw(&self, column: Column, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.db
            .put_cf_opt(self.cf(column)?, key, value, &self.write_options)
            .map_err(backend_error)
    }

    /// [`Backend::visit_many_in`] with each value copied out: whether every key was answered, and the values.
    fn copy_many_in<K: AsRef<[u8]>>(
        &self,
        column: Column,
        keys: &[K],
        tier: ReadTier,
    ) -> Result<(bool, Values), StoreError> {
        let mut values = vec![None; keys.len()];
        let answered = self.visit_many_in(column, keys, tier, &mut |i, value| {
            values[i] = Some(value.to_vec());
            Ok(())
        })?;
        Ok((answered, values))
    }
}

/// Bytes an unprivileged process may still write on the filesystem holding `dir` (`statvfs`: available blocks
/// times the fragment size). One system call, cheap beside a batch's fsync.
fn free_bytes(dir: &Path) -> Result<u64, StoreError> {
    let stat = rustix::fs::statvfs(dir).map_err(|e| {
        StoreError::Backend(BackendError::new(
            BackendErrorKind::Io,
            format!("reading the free space of {}: {e}", dir.display()),
        ))
    })?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// Whether files in `dir` (created if missing) can be opened with O_DIRECT. RocksDB would otherwise find out at its
/// first flush and stop taking writes.
fn supports_direct_io(dir: &Path) -> Result<bool, StoreError> {
    std::fs::create_dir_all(dir).map_err(|e| {
        StoreError::Backend(BackendError::new(
            BackendErrorKind::Io,
            format!("creating the database folder {}: {e}", dir.display()),
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
    fn write_batch(&self, puts: &[Put<'_>], deletes: &[DeleteRange<'_>]) -> Result<(), StoreError> {
        // Sized up front: a batch of thousands of rows otherwise grows (and copies) its buffer a dozen times.
        // Per row: tag, column id and two lengths, at most 16 bytes; 12 bytes of batch header.
        let bytes: usize = puts
            .iter()
            .map(|(_, k, v)| k.len() + v.len() + 16)
            .sum::<usize>()
            + deletes
                .iter()
                .map(|(_, a, b)| a.len() + b.len() + 16)
                .sum::<usize>();
        self.check_free_space(bytes as u64)?;
        let mut batch = WriteBatch::with_capacity_bytes(bytes + 12);
        for &(column, key, value) in puts {
            batch.put_cf(self.cf(column)?, key, value);
        }
        for &(column, from, to) in deletes {
            batch.delete_range_cf(self.cf(column)?, from, to);
        }
        self.db
            .write_opt(batch, &self.write_options)
            .map_err(backend_error)
    }

    /// Deleted rows stay in the table files (hidden by tombstones) until a compaction rewrites those files, and in
    /// the write-ahead log until every memtable it feeds is flushed. So: flush every column family (the WAL files
    /// holding the rows become obsolete and RocksDB deletes them; none are recycled or archived with the default
    /// options used here), then compact the whole of each column down to and including the bottommost level,
    /// which writes new files without the deleted rows (and drops the tombstones) and deletes the old ones.
    fn purge_deleted(&self, columns: &[Column]) -> Result<(), StoreError> {
        let mut flush = FlushOptions::default();
        flush.set_wait(true);
        let all: Vec<_> = Column::ALL
            .iter()
            .map(|&c| self.cf(c))
            .collect::<Result<_, _>>()?;
        self.db
            .flush_cfs_opt(&all, &flush)
            .map_err(backend_error_in("flushing before a purge".into()))?;
        self.db
            .flush_wal(true)
            .map_err(backend_error_in("syncing the WAL before a purge".into()))?;
        let mut compact = CompactOptions::default();
        compact.set_bottommost_level_compaction(BottommostLevelCompaction::Force);
        compact.set_exclusive_manual_compaction(true);
        for &column in columns {
            self.db
                .compact_range_cf_opt(self.cf(column)?, None::<&[u8]>, None::<&[u8]>, &compact);
        }
        Ok(())
    }

    fn get_many<K: AsRef<[u8]>>(
        &self,
        column: Column,
        keys: &[K],
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        // Reads in any tier answer every key.
        Ok(self.copy_many_in(column, keys, ReadTier::Any)?.1)
    }

    fn get_many_from_memory<K: AsRef<[u8]>>(
        &self,
        column: Column,
        keys: &[K],
    ) -> Result<Option<Vec<Option<Vec<u8>>>>, StoreError> {
        let (answered, values) = self.copy_many_in(column, keys, ReadTier::Memory)?;
        Ok(answered.then_some(values))
    }

    /// Each value is visited where RocksDB holds it (pinned in the block cache or a memtable), not copied out.
    fn visit_many_in<K: AsRef<[u8]>>(
        &self,
        column: Column,
        keys: &[K],
        tier: ReadTier,
        visit: &mut Visit<'_>,
    ) -> Result<bool, StoreError> {
        let cf = self.cf(column)?;
        match tier {
            ReadTier::Any => {
                for (i, value) in self
                    .db
                    .batched_multi_get_cf(cf, keys, false)
                    .into_iter()
                    .enumerate()
                {
                    if let Some(value) = value.map_err(backend_error)? {
                        visit(i, &value)?;
                    }
                }
            }
            ReadTier::Memory => {
                // Memtables and the block cache only: a key whose block is not cached answers Incomplete, with no
                // I/O. One Get per key: RocksDB's MultiGet read such blocks from the table files all the same (the
                // test `memory_reads_decline_what_is_only_on_disk` caught it); proofs ask for a few keys.
                let mut memory = rocksdb::ReadOptions::default();
                memory.set_read_tier(rocksdb::ReadTier::BlockCache);
                for (i, key) in keys.iter().enumerate() {
                    match self.db.get_pinned_cf_opt(cf, key, &memory) {
                        Ok(Some(value)) => visit(i, &value)?,
                        Ok(None) => {}
                        Err(e) if e.kind() == rocksdb::ErrorKind::Incomplete => return Ok(false),
                        Err(e) => return Err(backend_error(e)),
                    }
                }
            }
        }
        Ok(true)
    }

    fn memory(&self) -> Vec<MemoryPart> {
        use rocksdb::properties::{
            BLOCK_CACHE_PINNED_USAGE, BLOCK_CACHE_USAGE, ESTIMATE_TABLE_READERS_MEM,
            SIZE_ALL_MEM_TABLES,
        };
        // A property RocksDB cannot give counts as 0: these are estimates for an operator, never a reason to fail.
        let read = |column, name| -> u64 {
            self.cf(column)
                .ok()
                .and_then(|cf| self.db.property_int_value_cf(cf, name).ok().flatten())
                .unwrap_or(0)
        };
        let sum = |name| Column::ALL.iter().map(|&c| read(c, name)).sum();
        vec![
            // Open table files' memory outside the block cache (small: every column keeps its filters and indexes
            // in the cache).
            ("table_readers", sum(ESTIMATE_TABLE_READERS_MEM)),
            ("memtables", sum(SIZE_ALL_MEM_TABLES)),
            // One cache shared by every column of ours (not RocksDB's default column): its usage, read once.
            ("block_cache", read(Column::Tiles, BLOCK_CACHE_USAGE)),
            // The part of it that cannot be evicted (pinned filter and index blocks, blocks being read), which is
            // how the cache can hold more than its capacity.
            (
                "block_cache_pinned",
                read(Column::Tiles, BLOCK_CACHE_PINNED_USAGE),
            ),
        ]
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
