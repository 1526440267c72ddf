//! The embedded time-series store: the only owner of series data on disk.
//! (Alert state and platform state keep their own sled trees, opened through
//! `Store::tree`.)
//!
//! `Store` is a cheap handle (`Arc` inside). Every sample updates all three
//! tiers at ingest (raw, 1 m, 1 h: `tier.rs`), so a query at any step reads
//! pre-aggregated slots and a 30-day chart costs 30 blocks, not 500,000
//! samples. The rooms:
//!
//! - `registry.rs`: series ids, keys and the label index;
//! - `head.rs`: open blocks and ingest; blocks are sealed when their span
//!   ends and written once per lap;
//! - `wal.rs` and `flush.rs`: the log ring and checkpoints that make samples
//!   durable (a crash loses at most the writes since the last `flush`,
//!   which the daemon calls every `flush_interval`), and recovery at start;
//! - `block_codec.rs` and `column.rs`: a block on disk, column by column,
//!   with a checksum; `ring.rs`: a block decoded; `histogram.rs`: request
//!   statistics;
//! - `disk.rs`: the sled trees and reading blocks back, damaged ones as empty;
//!   `log_db.rs`: the log's database, replaced after every checkpoint;
//! - `query.rs`: points on a grid from any tier;
//! - `migrate.rs`: format upgrades and layout changes at start;
//! - `frozen.rs`: the databases held still for a backup;
//! - `cipher.rs` and `vault.rs`: encryption at rest: every tree is a
//!   `Vault`, which encrypts its values when the daemon has a key.
//!
//! Other modules (platform state, alerts) get their own trees through
//! [`Store::tree`], so that one sled database and one lock serve everything.

pub mod block_codec;
mod checkpoint;
pub mod cipher;
pub mod codec;
pub mod column;
mod disk;
mod flush;
pub mod frozen;
mod head;
pub mod histogram;
pub mod keys;
mod log_db;
mod migrate;
mod packed;
mod query;
mod registry;
pub mod ring;
pub mod tier;
pub mod vault;
pub mod wal;

use crate::error::{Error, Result};
use cipher::Cipher;
use disk::Disk;
use head::{Head, Outcome};
pub use histogram::Hist;
pub use keys::{SeriesId, SeriesKey};
use log_db::LogDb;
use registry::Registry;
use ring::Entry;
pub use ring::{Agg, Aggregation};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
pub use tier::{Layout, TierSpec};
pub use vault::Vault;

/// sled's page cache for the three tier databases together. Sealed blocks are written once per lap and read back
/// only by queries of old data, so a modest cache is enough: 1,000 series
/// after 40 simulated days measured 767 MB RSS with sled's default 1 GiB,
/// 336 MB with 64 MiB, 337 MB with 16 MiB (examples/bench_store.rs, store
/// format 1). (The random-overwrite workload of shared/notes/dependencies.md
/// behaved the other way round.)
pub const SLED_CACHE_BYTES: u64 = 64 << 20;
/// The page cache of the main database: the registry, alert and platform
/// state.
const SIDE_CACHE_BYTES: u64 = 16 << 20;
/// The page cache of the log database. Its records are read back only at
/// start; a flush needs only the leaves it writes to in memory.
const LOG_CACHE_BYTES: u64 = 2 << 20;
/// How many times (50 ms apart) to retry a data directory that is locked.
const LOCK_RETRIES: u32 = 40;
/// A query may return at most this many points.
pub const MAX_QUERY_POINTS: i64 = 100_000;
/// An ingest that leaves more blocks waiting to be sealed than this flushes
/// at once, so a large backfill cannot grow memory without bound.
const SEALING_SOFT_LIMIT: usize = 50_000;
/// One sample for an already resolved series.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    pub series: SeriesId,
    pub ts_ms: i64,
    pub value: f64,
}

/// A stored sample as a consumer outside the store sees it (`Store::tap`).
#[derive(Clone, Debug, PartialEq)]
pub enum Tapped {
    Gauge(f64),
    Requests(Hist),
}

/// Samples stored by one ingest: (series, timestamp, value).
pub type TapBatch = Vec<(SeriesId, i64, Tapped)>;

/// Request statistics for a histogram series at one time.
#[derive(Clone, Debug, PartialEq)]
pub struct HistSample {
    pub series: SeriesId,
    pub ts_ms: i64,
    pub hist: Hist,
}

/// Request statistics on a regular grid, `None` where nothing was recorded.
#[derive(Clone, Debug, PartialEq)]
pub struct HistResult {
    pub tier: &'static str,
    pub step_ms: i64,
    pub points: Vec<(i64, Option<Hist>)>,
}

impl HistResult {
    /// All points merged (`None` when the range is empty).
    pub fn total(&self) -> Option<Hist> {
        self.points
            .iter()
            .filter_map(|(_, h)| h.clone())
            .reduce(|mut acc, h| {
                acc.merge(&h);
                acc
            })
    }
}

/// What an ingest call did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IngestReport {
    /// Stored in at least one tier.
    pub stored: u64,
    /// Older than every tier's window: stored nowhere.
    pub dropped: u64,
}

/// A query answer: points on a regular grid, `None` where no sample fell.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryResult {
    pub tier: &'static str,
    pub step_ms: i64,
    pub points: Vec<(i64, Option<Agg>)>,
}

impl QueryResult {
    pub fn values(&self, how: Aggregation) -> Vec<(i64, Option<f64>)> {
        self.points
            .iter()
            .map(|(t, a)| (*t, a.map(|a| a.get(how))))
            .collect()
    }

    /// Each filled step's mean, at the middle of its step (the time a mean
    /// stands for) but no later than `until_ms`.
    pub fn means(&self, until_ms: i64) -> Vec<(i64, f64)> {
        self.points
            .iter()
            .filter_map(|(t, a)| a.map(|a| ((t + self.step_ms / 2).min(until_ms), a.avg())))
            .collect()
    }

    /// All points merged into one aggregate (`None` when the range is empty).
    pub fn total(&self) -> Option<Agg> {
        self.points
            .iter()
            .filter_map(|(_, a)| *a)
            .reduce(|mut acc, a| {
                acc.merge(&a);
                acc
            })
    }
}

/// Counters for `/health` and the benchmarks.
#[derive(Clone, Debug, PartialEq)]
pub struct StoreStats {
    pub series: usize,
    pub samples_ingested: u64,
    pub samples_dropped: u64,
    /// Per tier (raw, 1m, 1h): samples older than that tier's window.
    pub late_per_tier: [u64; 3],
    pub flushes: u64,
    pub last_flush_ms: f64,
    pub last_flush_error: Option<String>,
    /// Open blocks in memory (one per series and tier that has data).
    pub open_blocks: usize,
    /// Sealed blocks waiting for the next flush.
    pub sealing_blocks: usize,
    /// Blocks found damaged since start (read as empty).
    pub corrupt_blocks: u64,
    /// Log records found damaged at start (their samples are lost).
    pub corrupt_records: u64,
    pub checkpoints: u64,
    /// Bytes handed to sled since start: log records, sealed blocks, and
    /// open blocks at checkpoints (sled adds its own overhead on disk).
    pub bytes_logged: u64,
    pub bytes_sealed: u64,
    pub bytes_checkpointed: u64,
}

#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    db: sled::Db,
    disk: Disk,
    series_tree: Vault,
    /// The key values are encrypted with (`ENCRYPTION_KEY_FILE`), if any.
    cipher: Option<Arc<Cipher>>,
    layout: Layout,
    /// Lock order: `registry` before `head`.
    registry: RwLock<Registry>,
    head: Mutex<Head>,
    /// Serialises flushes so blocks and log records are written in order.
    flush_lock: Mutex<()>,
    /// Series registered when the main database was last flushed.
    series_synced: AtomicUsize,
    /// Log slots whose spacers this process has written (`wal::SPACERS`).
    spaced_slots: AtomicU64,
    ingested: AtomicU64,
    dropped: AtomicU64,
    late: [AtomicU64; 3],
    flushes: AtomicU64,
    checkpoints: AtomicU64,
    /// Bytes handed to sled: log records, sealed blocks, checkpointed open blocks.
    written: [AtomicU64; 3],
    last_flush_us: AtomicU64,
    /// How long flushes take (`GET /metrics`).
    flush_durations: crate::telemetry::Histogram,
    /// Where copies of live samples go once stored (remote write), and how
    /// many batches were dropped because it was full.
    tap: Mutex<Option<std::sync::mpsc::SyncSender<TapBatch>>>,
    tap_dropped: AtomicU64,
    writable: AtomicBool,
    last_flush_error: Mutex<Option<String>>,
    /// Bytes the data directory took when last measured (`measure_size_on_disk`).
    size_on_disk: AtomicU64,
}

impl Store {
    /// Opens (or creates) the store in `dir`: upgrades an older format,
    /// replays the log, and re-slots the data when the layout changed
    /// (whatever still fits is kept).
    pub fn open(dir: &Path, layout: Layout, max_series: usize) -> Result<Store> {
        Store::open_with(dir, layout, max_series, SLED_CACHE_BYTES, None)
    }

    /// `open` with an explicit sled page-cache size (for the benchmarks)
    /// and the key to encrypt values with, if any. A directory is
    /// encrypted or not from its creation: a key that is not the one it
    /// was created with, a key for a clear directory and no key for an
    /// encrypted one each stop here with an error saying so.
    pub fn open_with(
        dir: &Path,
        layout: Layout,
        max_series: usize,
        cache_bytes: u64,
        cipher: Option<Arc<Cipher>>,
    ) -> Result<Store> {
        let existed = dir.join("db").join("conf").exists();
        std::fs::create_dir_all(dir)
            .map_err(|e| store_err(dir, format!("cannot create it: {e}")))?;
        let config = |name: &str, cache: u64| {
            sled::Config::new()
                .path(dir.join(name))
                .mode(sled::Mode::LowSpace)
                .cache_capacity(cache)
                // The daemon flushes every FLUSH_INTERVAL and after every
                // acknowledged write; sled's own timer would add an fsync
                // (and at least one 4 KiB page written) every 500 ms.
                .flush_every_ms(None)
        };
        let db = open_db(dir, &config("db", SIDE_CACHE_BYTES))?;
        let log_config = config(log_db::LOG_DIR, LOG_CACHE_BYTES);
        let log_dir = dir.to_path_buf();
        let log = Arc::new(LogDb::open(
            dir,
            Box::new(move || open_db(&log_dir, &log_config)),
            cipher.as_ref(),
        )?);
        // The minute tier holds most of the blocks: half the cache.
        let tier_dbs = [
            open_db(dir, &config(disk::TIER_DIRS[0], cache_bytes / 4))?,
            open_db(dir, &config(disk::TIER_DIRS[1], cache_bytes / 2))?,
            open_db(dir, &config(disk::TIER_DIRS[2], cache_bytes / 4))?,
        ];
        let dbs = (&db, &log, &tier_dbs, cipher.as_ref());
        check_key(&db, existed, cipher.as_deref()).map_err(|e| store_err(dir, e))?;
        let disk = Disk::new(&db, &log, &tier_dbs, cipher.as_ref())
            .map_err(|e| store_err(dir, e.to_string()))?;
        let stored_layout = migrate::stored_layout(&disk).map_err(|e| store_err(dir, e))?;
        let written_with = stored_layout.unwrap_or(layout);
        migrate::upgrade_format(&disk, &written_with).map_err(|e| store_err(dir, e))?;
        let store = Store::assemble(dir, dbs, written_with, max_series)?;
        store.recover()?;
        let store = if written_with != layout {
            store.seal_everything()?;
            drop(store);
            migrate::relayout(&disk, &written_with, &layout).map_err(|e| store_err(dir, e))?;
            Store::assemble(dir, dbs, layout, max_series)?
        } else {
            store
        };
        migrate::save_layout(&store.inner.disk, &layout).map_err(|e| store.err(e))?;
        store.sync()?;
        Ok(store)
    }

    fn assemble(
        dir: &Path,
        (db, log, tier_dbs, cipher): (&sled::Db, &Arc<LogDb>, &[sled::Db; 3], Option<&Arc<Cipher>>),
        layout: Layout,
        max_series: usize,
    ) -> Result<Store> {
        let err = |e: sled::Error| store_err(dir, e.to_string());
        let disk = Disk::new(db, log, tier_dbs, cipher).map_err(err)?;
        let series_tree = disk.series().map_err(err)?;
        let registry = Registry::load(&series_tree, max_series).map_err(|e| store_err(dir, e))?;
        let spaced = wal::spaced_slots(disk.log.lock().wal.raw()).map_err(err)?;
        Ok(Store {
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                db: db.clone(),
                disk,
                series_tree,
                cipher: cipher.cloned(),
                layout,
                registry: RwLock::new(registry),
                head: Mutex::new(Head::default()),
                flush_lock: Mutex::new(()),
                series_synced: AtomicUsize::new(0),
                spaced_slots: AtomicU64::new(spaced),
                ingested: AtomicU64::new(0),
                dropped: AtomicU64::new(0),
                late: Default::default(),
                flushes: AtomicU64::new(0),
                checkpoints: AtomicU64::new(0),
                written: Default::default(),
                last_flush_us: AtomicU64::new(0),
                flush_durations: Default::default(),
                tap: Mutex::new(None),
                tap_dropped: AtomicU64::new(0),
                writable: AtomicBool::new(true),
                last_flush_error: Mutex::new(None),
                size_on_disk: AtomicU64::new(dir_size(dir)),
            }),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    pub fn layout(&self) -> &Layout {
        &self.inner.layout
    }

    /// A named tree for other modules' state (alerts, the audit trail),
    /// encrypted when the store is.
    pub fn tree(&self, name: &str) -> Result<Vault> {
        let tree = self.inner.db.open_tree(name).map_err(|e| self.err(e))?;
        Ok(Vault::new(
            tree,
            &format!("db/{name}"),
            self.inner.cipher.as_ref(),
        ))
    }

    /// As `tree`, for state keyed by names that must not show on disk
    /// when the store is encrypted (models, jobs, tokens).
    pub fn named_tree(&self, name: &str) -> Result<Vault> {
        let tree = self.inner.db.open_tree(name).map_err(|e| self.err(e))?;
        Ok(Vault::named(
            tree,
            &format!("db/{name}"),
            self.inner.cipher.as_ref(),
        ))
    }

    /// The key the store encrypts with, for an offline tool's own reads.
    pub fn cipher(&self) -> Option<&Arc<Cipher>> {
        self.inner.cipher.as_ref()
    }

    /// Makes everything written so far durable (used after acknowledged writes).
    pub fn sync(&self) -> Result<()> {
        self.inner.db.flush().map(|_| ()).map_err(|e| self.err(e))
    }

    fn err(&self, e: impl std::fmt::Display) -> Error {
        store_err(&self.inner.dir, e.to_string())
    }

    fn head(&self) -> MutexGuard<'_, Head> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.inner.head.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn registry(&self) -> std::sync::RwLockReadGuard<'_, Registry> {
        self.inner
            .registry
            .read()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn registry_mut(&self) -> std::sync::RwLockWriteGuard<'_, Registry> {
        self.inner
            .registry
            .write()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// The id of gauge series `key`, registering it when new. Errors with
    /// `Capacity` once `max_series` distinct series exist.
    pub fn resolve(&self, key: &SeriesKey) -> Result<SeriesId> {
        self.resolve_kind(key, false)
    }

    /// The id of histogram series `key` (request statistics), registering it when new.
    pub fn resolve_hist(&self, key: &SeriesKey) -> Result<SeriesId> {
        self.resolve_kind(key, true)
    }

    fn resolve_kind(&self, key: &SeriesKey, hist: bool) -> Result<SeriesId> {
        // One read guard for both questions: a second read while holding
        // the first waits behind a queued writer, who waits for the first.
        let known = {
            let reg = self.registry();
            reg.lookup(key).filter(|id| reg.is_hist(*id) == hist)
        };
        if let Some(id) = known {
            return Ok(id);
        }
        let tree = &self.inner.series_tree;
        self.registry_mut()
            .resolve(tree, key, hist, |e| self.err(e))
    }

    /// Resolves many gauge keys at once; either all resolve or none is registered.
    pub fn resolve_all(&self, keys: &[SeriesKey]) -> Result<Vec<SeriesId>> {
        let mut reg = self.registry_mut();
        let known = reg.check_gauges(keys)?;
        let tree = &self.inner.series_tree;
        keys.iter()
            .zip(known)
            .map(|(k, id)| match id {
                Some(id) => Ok(id),
                None => reg.resolve(tree, k, false, |e| self.err(e)),
            })
            .collect()
    }

    /// Writes gauge values by key: every key is resolved (new series
    /// registered, all or none), then each value is ingested at its time.
    pub fn record(
        &self,
        points: impl IntoIterator<Item = (SeriesKey, i64, f64)>,
    ) -> Result<IngestReport> {
        let (keys, values): (Vec<SeriesKey>, Vec<(i64, f64)>) = points
            .into_iter()
            .map(|(k, ts_ms, v)| (k, (ts_ms, v)))
            .unzip();
        let ids = self.resolve_all(&keys)?;
        let samples: Vec<Sample> = ids
            .into_iter()
            .zip(values)
            .map(|(series, (ts_ms, value))| Sample {
                series,
                ts_ms,
                value,
            })
            .collect();
        self.ingest(&samples)
    }

    /// How many series are registered.
    pub fn series_count(&self) -> usize {
        self.registry().len()
    }

    /// Looks a series up without registering it.
    pub fn lookup(&self, key: &SeriesKey) -> Option<SeriesId> {
        self.registry().lookup(key)
    }

    /// True for a histogram (request statistics) series.
    pub fn is_hist(&self, id: SeriesId) -> bool {
        self.registry().is_hist(id)
    }

    /// Every series whose metric is `metric` (any when `None`) and whose labels
    /// include all of `labels`.
    pub fn find(
        &self,
        metric: Option<&str>,
        labels: &[(&str, &str)],
    ) -> Vec<(SeriesId, SeriesKey)> {
        self.find_by(metric, |k| {
            labels.iter().all(|(n, v)| k.label(n) == Some(v))
        })
    }

    /// Every series of `metric` that has all the `equal` labels and for which
    /// `keep` holds, looked up through the label index.
    pub fn find_with(
        &self,
        metric: &str,
        equal: &[(&str, &str)],
        keep: impl Fn(&SeriesKey) -> bool,
    ) -> Vec<(SeriesId, SeriesKey)> {
        self.registry().find_with(metric, equal, keep)
    }

    /// Every series of `metric` (any when `None`) for which `keep` holds.
    pub fn find_by(
        &self,
        metric: Option<&str>,
        keep: impl Fn(&SeriesKey) -> bool,
    ) -> Vec<(SeriesId, SeriesKey)> {
        self.registry().find_by(metric, keep)
    }

    /// Writes gauge samples into every tier. Samples must name resolved series.
    pub fn ingest(&self, samples: &[Sample]) -> Result<IngestReport> {
        self.ingest_entries(
            samples
                .iter()
                .map(|s| (s.series, s.ts_ms, Entry::Agg(Agg::single(s.ts_ms, s.value)))),
            u64::MAX,
        )
    }

    /// Merges request statistics into every tier of histogram series.
    pub fn ingest_hist(&self, samples: &[HistSample]) -> Result<IngestReport> {
        self.ingest_entries(
            samples
                .iter()
                .map(|s| (s.series, s.ts_ms, Entry::Hist(s.hist.clone()))),
            u64::MAX,
        )
    }

    /// Applies entries to every tier and logs the ones stored. `record` is
    /// the log record being replayed (`u64::MAX`: live samples, logged).
    fn ingest_entries(
        &self,
        entries: impl Iterator<Item = (SeriesId, i64, Entry)>,
        record: u64,
    ) -> Result<IngestReport> {
        let mut report = IngestReport::default();
        let mut late = [0u64; 3];
        let tapping = record == u64::MAX
            && self
                .inner
                .tap
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_some();
        let mut tapped: TapBatch = Vec::new();
        let disk = &self.inner.disk;
        let over_limit = {
            let reg = self.registry();
            let mut head = self.head();
            for (series, ts_ms, entry) in entries {
                let i = series as usize;
                if i >= reg.len() {
                    // Only a replayed record can name an unknown series.
                    report.dropped += 1;
                    continue;
                }
                if head.newest_ms.len() <= i {
                    head.newest_ms.resize(i + 1, i64::MIN);
                    head.versions.resize(i + 1, 0);
                }
                let newest = head.newest_ms[i].max(ts_ms);
                head.newest_ms[i] = newest;
                let hist = reg.is_hist(series);
                let mut stored_anywhere = false;
                for spec in &self.inner.layout.tiers {
                    if ts_ms <= newest - spec.window_ms() {
                        late[spec.id as usize] += 1;
                        continue;
                    }
                    match head
                        .apply(
                            disk,
                            spec,
                            series,
                            hist,
                            spec.slot_of(ts_ms),
                            &entry,
                            record,
                        )
                        .map_err(|e| self.err(e))?
                    {
                        Outcome::Stored | Outcome::AlreadyIn => stored_anywhere = true,
                        Outcome::TooOld => late[spec.id as usize] += 1,
                    }
                }
                if stored_anywhere {
                    head.versions[i] += 1;
                    if record == u64::MAX {
                        head.pending.push(series, ts_ms, &entry);
                    }
                    if tapping {
                        tapped.push((
                            series,
                            ts_ms,
                            match &entry {
                                Entry::Agg(a) => Tapped::Gauge(a.last),
                                Entry::Hist(h) => Tapped::Requests(h.clone()),
                            },
                        ));
                    }
                    report.stored += 1;
                } else {
                    report.dropped += 1;
                }
            }
            head.sealing.len() > SEALING_SOFT_LIMIT
        };
        self.inner
            .ingested
            .fetch_add(report.stored, Ordering::Relaxed);
        self.inner
            .dropped
            .fetch_add(report.dropped, Ordering::Relaxed);
        for (counter, n) in self.inner.late.iter().zip(late) {
            counter.fetch_add(n, Ordering::Relaxed);
        }
        if !tapped.is_empty() {
            self.send_tapped(tapped);
        }
        if over_limit && record == u64::MAX {
            self.flush()?;
        }
        Ok(report)
    }

    /// From now on, a copy of every live sample stored goes to the returned
    /// receiver, in batches as ingested (at most `capacity` batches waiting:
    /// past that a batch is dropped and counted, ingest never waits).
    pub fn tap(&self, capacity: usize) -> std::sync::mpsc::Receiver<TapBatch> {
        let (tx, rx) = std::sync::mpsc::sync_channel(capacity);
        *self.inner.tap.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
        rx
    }

    /// Tapped batches dropped because the receiver fell behind.
    pub fn tap_dropped(&self) -> u64 {
        self.inner.tap_dropped.load(Ordering::Relaxed)
    }

    fn send_tapped(&self, batch: TapBatch) {
        let tap = self.inner.tap.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = tap.as_ref()
            && tx.try_send(batch).is_err()
        {
            self.inner.tap_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The key of a registered series (`None` for an unknown id).
    pub fn key_of(&self, id: SeriesId) -> Option<SeriesKey> {
        let reg = self.registry();
        ((id as usize) < reg.len()).then(|| reg.key(id))
    }

    /// True unless the last flush failed.
    pub fn writable(&self) -> bool {
        self.inner.writable.load(Ordering::Relaxed)
    }

    /// Per series, a number that grows whenever a sample is stored in it
    /// (0 for a series not written since the store opened). Two equal
    /// readings mean every query over the series still gives the same answer.
    pub fn versions(&self, ids: &[SeriesId]) -> Vec<u64> {
        let head = self.head();
        ids.iter()
            .map(|id| head.versions.get(*id as usize).copied().unwrap_or(0))
            .collect()
    }

    /// A number that changes whenever there is something new to flush
    /// (samples stored, series registered): a flusher that saw the same
    /// number after a successful flush can skip waking a thread.
    pub fn generation(&self) -> u64 {
        self.inner.ingested.load(Ordering::Relaxed) + self.registry().len() as u64
    }

    pub fn stats(&self) -> StoreStats {
        let series = self.registry().len();
        let (open_blocks, sealing_blocks) = {
            let head = self.head();
            (head.open.len(), head.sealing.len())
        };
        StoreStats {
            series,
            samples_ingested: self.inner.ingested.load(Ordering::Relaxed),
            samples_dropped: self.inner.dropped.load(Ordering::Relaxed),
            late_per_tier: std::array::from_fn(|i| self.inner.late[i].load(Ordering::Relaxed)),
            flushes: self.inner.flushes.load(Ordering::Relaxed),
            last_flush_ms: self.inner.last_flush_us.load(Ordering::Relaxed) as f64 / 1000.0,
            last_flush_error: self
                .inner
                .last_flush_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            open_blocks,
            sealing_blocks,
            corrupt_blocks: self.inner.disk.corrupt_blocks(),
            corrupt_records: self.inner.disk.corrupt_records(),
            checkpoints: self.inner.checkpoints.load(Ordering::Relaxed),
            bytes_logged: self.inner.written[0].load(Ordering::Relaxed),
            bytes_sealed: self.inner.written[1].load(Ordering::Relaxed),
            bytes_checkpointed: self.inner.written[2].load(Ordering::Relaxed),
        }
    }

    /// How long the flushes since start took.
    pub fn flush_durations(&self) -> crate::telemetry::HistogramSnapshot {
        self.inner.flush_durations.snapshot()
    }

    /// Bytes the data directory took on disk when last measured: at open
    /// and after each periodic flush. No directory walk on a request's path.
    pub fn size_on_disk(&self) -> u64 {
        self.inner.size_on_disk.load(Ordering::Relaxed)
    }

    /// Walks the data directory and notes its size (blocking).
    pub fn measure_size_on_disk(&self) {
        self.inner
            .size_on_disk
            .store(dir_size(&self.inner.dir), Ordering::Relaxed);
    }
}

/// Makes the entries of `dir` (a file or directory just created or renamed
/// in it) durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

fn dir_size(p: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(p) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Opens one sled database. sled releases its file lock from a background
/// thread shortly after the last handle drops, so a reopen in the same
/// process (a restart in tests) may briefly see the lock still held: retry
/// for a moment.
fn open_db(dir: &Path, config: &sled::Config) -> Result<sled::Db> {
    let mut attempts = 0;
    loop {
        match config.open().map_err(|e| open_err(dir, e)) {
            Err(Error::DataDirInUse(_)) if attempts < LOCK_RETRIES => {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

/// Where the key check is kept: a known value encrypted with the key the
/// directory was created with.
const KEY_CHECK: &str = "key_check";

/// Checks `cipher` against the directory's (none or one, from creation),
/// and marks a new directory with it.
fn check_key(
    db: &sled::Db,
    existed: bool,
    cipher: Option<&Cipher>,
) -> std::result::Result<(), String> {
    let meta = db.open_tree("meta").map_err(|e| e.to_string())?;
    let stored = meta.get(KEY_CHECK).map_err(|e| e.to_string())?;
    match (stored, cipher) {
        (None, None) => Ok(()),
        (Some(s), Some(c)) if c.check(&s) => Ok(()),
        (Some(_), Some(_)) => Err(
            "ENCRYPTION_KEY_FILE holds another key than the one this data directory \
             was encrypted with; nothing was read"
                .to_string(),
        ),
        (Some(_), None) => {
            Err("this data directory is encrypted: set ENCRYPTION_KEY_FILE to its key".to_string())
        }
        (None, Some(_)) if existed => Err(
            "this data directory was created without encryption and holds clear data; \
             ENCRYPTION_KEY_FILE applies to a new DATA_DIR only"
                .to_string(),
        ),
        (None, Some(c)) => {
            meta.insert(KEY_CHECK, c.canary())
                .map_err(|e| e.to_string())?;
            db.flush().map(drop).map_err(|e| e.to_string())
        }
    }
}

fn store_err(dir: &Path, message: String) -> Error {
    Error::Store {
        dir: dir.to_path_buf(),
        message,
    }
}

/// The database that holds the other modules' trees (`Store::tree`), opened
/// alone for an offline tool. Fails with `DataDirInUse` while a daemon runs,
/// and creates nothing where there is no database.
pub fn open_state_db(dir: &Path) -> Result<sled::Db> {
    let path = dir.join("db");
    if !path.join("conf").exists() {
        return Err(store_err(dir, "no database here".to_string()));
    }
    sled::Config::new()
        .path(path)
        .mode(sled::Mode::LowSpace)
        .flush_every_ms(None)
        .open()
        .map_err(|e| open_err(dir, e))
}

/// Tree `name` of a database opened by `open_state_db`, readable with
/// `cipher` (which must be the directory's key, as at start).
pub fn state_tree(
    db: &sled::Db,
    dir: &Path,
    name: &str,
    cipher: Option<&Arc<Cipher>>,
) -> Result<Vault> {
    check_key(db, true, cipher.map(|c| &**c)).map_err(|e| store_err(dir, e))?;
    let tree = db
        .open_tree(name)
        .map_err(|e| store_err(dir, e.to_string()))?;
    Ok(Vault::new(tree, &format!("db/{name}"), cipher))
}

fn open_err(dir: &Path, e: sled::Error) -> Error {
    let text = e.to_string();
    if text.contains("could not acquire lock") {
        Error::DataDirInUse(dir.to_path_buf())
    } else {
        store_err(dir, format!("cannot open the database: {text}"))
    }
}

#[cfg(test)]
mod tests;
