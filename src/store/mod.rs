//! The embedded time-series store: the only module that touches sled.
//!
//! `Store` is a cheap handle (`Arc` inside). Writes land in an in-memory cache
//! of ring blocks (see `ring.rs`, `tier.rs`) and reach sled in one batch per
//! `flush`, which the daemon calls every `flush_interval`; a crash loses at most
//! the writes since the last flush. Every sample updates all three tiers at
//! ingest, so a query at any step reads pre-aggregated slots and a 30-day
//! chart costs 30 blocks, not 500,000 samples.
//!
//! Trees: `series` (id -> canonical series key), `blocks` (see `keys.rs`),
//! `meta` (the tier layout, to re-slot data when the configuration changes).
//! Other modules (platform state, alerts) get their own trees through
//! [`Store::tree`], so that one sled database and one lock serve everything.

pub mod block_codec;
pub mod codec;
pub mod column;
pub mod histogram;
pub mod keys;
pub mod ring;
pub mod tier;

use crate::error::{Error, Result};
pub use histogram::Hist;
pub use keys::{SeriesId, SeriesKey};
pub use ring::{Agg, Aggregation};
use ring::{Applied, Block, Entry};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;
pub use tier::{Layout, TierSpec};

/// Clean cached blocks untouched for this many flushes are evicted (ten
/// seconds at the default 1 s flush, two collection intervals): the current
/// blocks of live series stay in memory, a backfill's old blocks do not, and
/// a block evicted too early costs one sled read to bring back.
const KEEP_CLEAN_FLUSHES: u64 = 10;
/// An ingest that leaves more cached blocks than this flushes at once, so a
/// large backfill cannot grow memory without bound.
const CACHE_SOFT_LIMIT: usize = 200_000;
/// sled's page cache. Our blocks are written once per lap and the hot set is
/// the current block of each series, so a modest cache is enough: 1,000
/// series after 40 simulated days measured 767 MB RSS with sled's default
/// 1 GiB, 336 MB with 64 MiB, 337 MB with 16 MiB (examples/bench_store.rs).
/// (The random-overwrite workload of shared/notes/dependencies.md behaved
/// the other way round.)
pub const SLED_CACHE_BYTES: u64 = 64 << 20;
/// How many times (50 ms apart) to retry a data directory that is locked.
const LOCK_RETRIES: u32 = 40;
/// Decoded blocks kept for queries (about 3 kB each).
const READ_CACHE_BLOCKS: usize = 8192;
/// A query may return at most this many points.
pub const MAX_QUERY_POINTS: i64 = 100_000;

/// One sample for an already resolved series.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    pub series: SeriesId,
    pub ts_ms: i64,
    pub value: f64,
}

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

/// The first byte of a series registry value: the series' kind.
const KIND_GAUGE: u8 = b'g';
const KIND_HIST: u8 = b'h';

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
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct StoreStats {
    pub series: usize,
    pub samples_ingested: u64,
    pub samples_dropped: u64,
    /// Per tier (raw, 1m, 1h): samples older than that tier's window.
    pub late_per_tier: [u64; 3],
    pub flushes: u64,
    pub last_flush_ms: f64,
    pub last_flush_error: Option<String>,
    pub cached_blocks: usize,
}

#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    db: sled::Db,
    blocks: sled::Tree,
    series_tree: sled::Tree,
    layout: Layout,
    state: Mutex<State>,
    /// Serialises flushes so a block is never written twice out of order.
    flush_lock: Mutex<()>,
    ingested: AtomicU64,
    dropped: AtomicU64,
    late: [AtomicU64; 3],
    flushes: AtomicU64,
    last_flush_us: AtomicU64,
    writable: AtomicBool,
    last_flush_error: Mutex<Option<String>>,
}

struct State {
    ids: HashMap<SeriesKey, SeriesId>,
    keys: Vec<SeriesKey>,
    /// Per series id: a histogram (request statistics) series.
    hist: Vec<bool>,
    /// Series ids by metric name, so a rule or a query by metric does not scan every series.
    by_metric: HashMap<String, Vec<SeriesId>>,
    /// Series ids by (metric, label name, label value): rules with an
    /// equality matcher look at their posting list only.
    by_label: HashMap<(String, String, String), Vec<SeriesId>>,
    max_series: usize,
    cache: HashMap<u64, Cached>,
    /// Decoded blocks read by queries (not written since they were read),
    /// so repeated charts over cold data skip sled and decoding. Bounded by
    /// `READ_CACHE_BLOCKS`; a write to a block drops its entry.
    read_cache: HashMap<u64, Arc<Block>>,
    generation: u64,
    /// Per series id, the newest sample timestamp written since start
    /// (`i64::MIN` when none yet): a tier's window ends there.
    newest_ms: Vec<i64>,
    /// Per series id, how many samples were stored since start: caches of
    /// query results compare it to know the data behind them is unchanged.
    versions: Vec<u64>,
}

fn index(
    by_metric: &mut HashMap<String, Vec<SeriesId>>,
    by_label: &mut HashMap<(String, String, String), Vec<SeriesId>>,
    k: &SeriesKey,
    id: SeriesId,
) {
    by_metric.entry(k.metric.clone()).or_default().push(id);
    for (n, v) in &k.labels {
        by_label
            .entry((k.metric.clone(), n.clone(), v.clone()))
            .or_default()
            .push(id);
    }
}

struct Cached {
    block: Block,
    dirty: bool,
    touched: u64,
}

fn cache_key(series: SeriesId, tier: u8, position: u32) -> u64 {
    ((series as u64) << 40) | ((tier as u64) << 32) | position as u64
}

fn split_cache_key(k: u64) -> (SeriesId, u8, u32) {
    ((k >> 40) as u32, (k >> 32) as u8, k as u32)
}

impl Store {
    /// Opens (or creates) the store in `dir`. A layout different from the one
    /// the data was written with is migrated: whatever still fits is kept.
    pub fn open(dir: &Path, layout: Layout, max_series: usize) -> Result<Store> {
        Store::open_with_cache(dir, layout, max_series, SLED_CACHE_BYTES)
    }

    /// `open` with an explicit sled page-cache size (for the benchmarks).
    pub fn open_with_cache(
        dir: &Path,
        layout: Layout,
        max_series: usize,
        cache_bytes: u64,
    ) -> Result<Store> {
        std::fs::create_dir_all(dir)
            .map_err(|e| store_err(dir, format!("cannot create it: {e}")))?;
        let config = sled::Config::new()
            .path(dir.join("db"))
            .mode(sled::Mode::LowSpace)
            .cache_capacity(cache_bytes);
        // sled releases its file lock from a background thread shortly after
        // the last handle drops, so a reopen in the same process (a restart in
        // tests) may briefly see the lock still held: retry for a moment.
        let mut attempts = 0;
        let db = loop {
            match config.open().map_err(|e| open_err(dir, e)) {
                Err(Error::DataDirInUse(_)) if attempts < LOCK_RETRIES => {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                other => break other?,
            }
        };
        let tree = |name: &str| {
            db.open_tree(name)
                .map_err(|e| store_err(dir, e.to_string()))
        };
        let (blocks, series_tree, meta) = (tree("blocks")?, tree("series")?, tree("meta")?);

        let mut keys = Vec::new();
        let mut hist = Vec::new();
        for kv in series_tree.iter() {
            let (k, v) = kv.map_err(|e| store_err(dir, e.to_string()))?;
            let id = u32::from_be_bytes(
                k.as_ref()
                    .try_into()
                    .map_err(|_| store_err(dir, "corrupt series id".into()))?,
            );
            let (kind, text) = v.split_first().unwrap_or((&0, &[]));
            let key = std::str::from_utf8(text)
                .ok()
                .and_then(SeriesKey::parse)
                .filter(|_| [KIND_GAUGE, KIND_HIST].contains(kind))
                .ok_or_else(|| store_err(dir, format!("corrupt series entry {id}")))?;
            hist.push(*kind == KIND_HIST);
            if id as usize != keys.len() {
                return Err(store_err(
                    dir,
                    format!("series registry has a gap at id {id}"),
                ));
            }
            keys.push(key);
        }
        let mut by_metric: HashMap<String, Vec<SeriesId>> = HashMap::new();
        let mut by_label: HashMap<(String, String, String), Vec<SeriesId>> = HashMap::new();
        for (i, k) in keys.iter().enumerate() {
            index(&mut by_metric, &mut by_label, k, i as SeriesId);
        }
        let ids = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.clone(), i as SeriesId))
            .collect();

        let store = Store {
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                db,
                blocks,
                series_tree,
                layout,
                state: Mutex::new(State {
                    ids,
                    by_metric,
                    by_label,
                    keys,
                    hist,
                    max_series,
                    cache: HashMap::new(),
                    read_cache: HashMap::new(),
                    generation: 0,
                    newest_ms: Vec::new(),
                    versions: Vec::new(),
                }),
                flush_lock: Mutex::new(()),
                ingested: AtomicU64::new(0),
                dropped: AtomicU64::new(0),
                late: Default::default(),
                flushes: AtomicU64::new(0),
                last_flush_us: AtomicU64::new(0),
                writable: AtomicBool::new(true),
                last_flush_error: Mutex::new(None),
            }),
        };

        let old = match meta
            .get("layout")
            .map_err(|e| store_err(dir, e.to_string()))?
        {
            Some(bytes) => Some(codec::decode::<Layout>(&bytes).map_err(|e| store_err(dir, e))?),
            None => None,
        };
        if let Some(old) = old.filter(|old| *old != layout) {
            store.migrate(&old)?;
        }
        meta.insert("layout", codec::encode(&layout))
            .map_err(|e| store_err(dir, e.to_string()))?;
        store
            .inner
            .db
            .flush()
            .map_err(|e| store_err(dir, e.to_string()))?;
        Ok(store)
    }

    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    pub fn layout(&self) -> &Layout {
        &self.inner.layout
    }

    /// A named sled tree for other modules' state (models, jobs, alerts).
    pub fn tree(&self, name: &str) -> Result<sled::Tree> {
        self.inner.db.open_tree(name).map_err(|e| self.err(e))
    }

    /// Makes everything written so far durable (used after acknowledged writes).
    pub fn sync(&self) -> Result<()> {
        self.inner.db.flush().map(|_| ()).map_err(|e| self.err(e))
    }

    fn err(&self, e: impl std::fmt::Display) -> Error {
        store_err(&self.inner.dir, e.to_string())
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The id of gauge series `key`, registering it when new. Errors with
    /// `Capacity` once `max_series` distinct series exist.
    pub fn resolve(&self, key: &SeriesKey) -> Result<SeriesId> {
        let mut st = self.state();
        self.resolve_locked(&mut st, key, false)
    }

    /// The id of histogram series `key` (request statistics), registering it when new.
    pub fn resolve_hist(&self, key: &SeriesKey) -> Result<SeriesId> {
        let mut st = self.state();
        self.resolve_locked(&mut st, key, true)
    }

    /// Resolves many gauge keys at once; either all resolve or none is registered.
    pub fn resolve_all(&self, keys: &[SeriesKey]) -> Result<Vec<SeriesId>> {
        let mut st = self.state();
        let mut new = std::collections::HashSet::new();
        for k in keys {
            match st.ids.get(k) {
                Some(id) if st.hist[*id as usize] => {
                    return Err(Error::BadRequest(format!(
                        "series {k} holds request statistics, not plain values"
                    )));
                }
                Some(_) => {}
                None => {
                    new.insert(k);
                }
            }
        }
        if st.keys.len() + new.len() > st.max_series {
            return Err(Error::Capacity(format!(
                "series limit reached: {} series exist, this request adds {}, the limit is {} (MAX_SERIES)",
                st.keys.len(),
                new.len(),
                st.max_series
            )));
        }
        keys.iter()
            .map(|k| self.resolve_locked(&mut st, k, false))
            .collect()
    }

    fn resolve_locked(&self, st: &mut State, key: &SeriesKey, hist: bool) -> Result<SeriesId> {
        if let Some(id) = st.ids.get(key) {
            if st.hist[*id as usize] != hist {
                return Err(Error::BadRequest(format!(
                    "series {key} already exists as a {} series",
                    if hist {
                        "plain value"
                    } else {
                        "request statistics"
                    }
                )));
            }
            return Ok(*id);
        }
        if st.keys.len() >= st.max_series {
            return Err(Error::Capacity(format!(
                "series limit reached: {} series exist, the limit is {} (MAX_SERIES)",
                st.keys.len(),
                st.max_series
            )));
        }
        let id = st.keys.len() as SeriesId;
        let mut value = vec![if hist { KIND_HIST } else { KIND_GAUGE }];
        value.extend_from_slice(key.to_string().as_bytes());
        self.inner
            .series_tree
            .insert(id.to_be_bytes(), value)
            .map_err(|e| self.err(e))?;
        st.keys.push(key.clone());
        let State {
            by_metric,
            by_label,
            ..
        } = st;
        index(by_metric, by_label, key, id);
        st.hist.push(hist);
        st.ids.insert(key.clone(), id);
        Ok(id)
    }

    /// Looks a series up without registering it.
    pub fn lookup(&self, key: &SeriesKey) -> Option<SeriesId> {
        self.state().ids.get(key).copied()
    }

    /// True for a histogram (request statistics) series.
    pub fn is_hist(&self, id: SeriesId) -> bool {
        self.state().hist.get(id as usize).copied().unwrap_or(false)
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
        let st = self.state();
        let lists: Option<Vec<&Vec<SeriesId>>> = equal
            .iter()
            .map(|(n, v)| {
                st.by_label
                    .get(&(metric.to_string(), n.to_string(), v.to_string()))
            })
            .collect();
        let candidates: &[SeriesId] = match lists {
            None => return Vec::new(),
            Some(l) => match l.into_iter().min_by_key(|l| l.len()) {
                Some(shortest) => shortest,
                None => st.by_metric.get(metric).map(Vec::as_slice).unwrap_or(&[]),
            },
        };
        candidates
            .iter()
            .filter_map(|id| {
                let k = &st.keys[*id as usize];
                (equal.iter().all(|(n, v)| k.label(n) == Some(v)) && keep(k))
                    .then(|| (*id, k.clone()))
            })
            .collect()
    }

    /// Every series of `metric` (any when `None`) for which `keep` holds.
    pub fn find_by(
        &self,
        metric: Option<&str>,
        keep: impl Fn(&SeriesKey) -> bool,
    ) -> Vec<(SeriesId, SeriesKey)> {
        let st = self.state();
        let pick = |id: SeriesId| {
            let k = &st.keys[id as usize];
            keep(k).then(|| (id, k.clone()))
        };
        match metric {
            Some(m) => st
                .by_metric
                .get(m)
                .map(|ids| ids.iter().filter_map(|id| pick(*id)).collect())
                .unwrap_or_default(),
            None => (0..st.keys.len() as SeriesId).filter_map(pick).collect(),
        }
    }

    /// Writes gauge samples into every tier. Samples must name resolved series.
    pub fn ingest(&self, samples: &[Sample]) -> Result<IngestReport> {
        self.ingest_entries(
            samples
                .iter()
                .map(|s| (s.series, s.ts_ms, Entry::Agg(Agg::single(s.ts_ms, s.value)))),
        )
    }

    /// Merges request statistics into every tier of histogram series.
    pub fn ingest_hist(&self, samples: &[HistSample]) -> Result<IngestReport> {
        self.ingest_entries(
            samples
                .iter()
                .map(|s| (s.series, s.ts_ms, Entry::Hist(s.hist.clone()))),
        )
    }

    fn ingest_entries(
        &self,
        entries: impl Iterator<Item = (SeriesId, i64, Entry)>,
    ) -> Result<IngestReport> {
        let mut report = IngestReport::default();
        let mut late = [0u64; 3];
        let over_limit = {
            let mut st = self.state();
            let generation = st.generation;
            for (series, ts_ms, entry) in entries {
                let i = series as usize;
                if st.newest_ms.len() <= i {
                    st.newest_ms.resize(i + 1, i64::MIN);
                    st.versions.resize(i + 1, 0);
                }
                let newest = st.newest_ms[i].max(ts_ms);
                st.newest_ms[i] = newest;
                let hist = st.hist.get(i).copied().unwrap_or(false);
                let mut stored_anywhere = false;
                for spec in &self.inner.layout.tiers {
                    if ts_ms <= newest - spec.window_ms() {
                        late[spec.id as usize] += 1;
                        continue;
                    }
                    let slot = spec.slot_of(ts_ms);
                    let base = spec.block_base(slot);
                    let pos = spec.position(base);
                    let ck = cache_key(series, spec.id, pos);
                    let cached = match st.cache.get_mut(&ck) {
                        Some(e) => e,
                        None => {
                            let block = self
                                .load_block(series, spec, pos)?
                                .unwrap_or_else(|| Block::empty(spec, base, hist));
                            st.cache.entry(ck).or_insert(Cached {
                                block,
                                dirty: false,
                                touched: generation,
                            })
                        }
                    };
                    match cached.block.apply_entry(spec, base, slot, &entry) {
                        Applied::Stored => {
                            cached.dirty = true;
                            cached.touched = generation;
                            stored_anywhere = true;
                            st.read_cache.remove(&ck);
                        }
                        Applied::TooOld => late[spec.id as usize] += 1,
                    }
                }
                if stored_anywhere {
                    st.versions[i] += 1;
                    report.stored += 1;
                } else {
                    report.dropped += 1;
                }
            }
            st.cache.len() > CACHE_SOFT_LIMIT
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
        if over_limit {
            self.flush()?;
        }
        Ok(report)
    }

    fn load_block(&self, series: SeriesId, spec: &TierSpec, pos: u32) -> Result<Option<Block>> {
        let Some(bytes) = self
            .inner
            .blocks
            .get(keys::block_key(series, spec.id, pos))
            .map_err(|e| self.err(e))?
        else {
            return Ok(None);
        };
        let block: Block = codec::decode(&bytes)
            .map_err(|e| self.err(format!("block {series}/{}/{pos}: {e}", spec.id)))?;
        Ok(Some(block))
    }

    /// Writes every dirty block to sled in one batch and syncs it to disk.
    pub fn flush(&self) -> Result<()> {
        let _one_at_a_time = self
            .inner
            .flush_lock
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let started = Instant::now();
        let mut batch = sled::Batch::default();
        let mut written = Vec::new();
        {
            let mut st = self.state();
            st.generation += 1;
            let generation = st.generation;
            // Evict only blocks that were already clean, i.e. are in sled for sure.
            st.cache.retain(|_, c| {
                c.dirty || generation.saturating_sub(c.touched) <= KEEP_CLEAN_FLUSHES
            });
            for (k, c) in st.cache.iter_mut().filter(|(_, c)| c.dirty) {
                let (series, tier, pos) = split_cache_key(*k);
                batch.insert(&keys::block_key(series, tier, pos), codec::encode(&c.block));
                c.dirty = false;
                written.push(*k);
            }
        }
        let result = self
            .inner
            .blocks
            .apply_batch(batch)
            .and_then(|_| self.inner.db.flush().map(|_| ()));
        let mut last_error = self
            .inner
            .last_flush_error
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(()) => {
                self.inner.flushes.fetch_add(1, Ordering::Relaxed);
                self.inner
                    .last_flush_us
                    .store(started.elapsed().as_micros() as u64, Ordering::Relaxed);
                self.inner.writable.store(true, Ordering::Relaxed);
                *last_error = None;
                Ok(())
            }
            Err(e) => {
                // Put the blocks back to dirty so the next flush retries them.
                let mut st = self.state();
                for k in written {
                    if let Some(c) = st.cache.get_mut(&k) {
                        c.dirty = true;
                    }
                }
                self.inner.writable.store(false, Ordering::Relaxed);
                *last_error = Some(e.to_string());
                Err(self.err(format!("flush failed: {e}")))
            }
        }
    }

    /// True unless the last flush failed.
    pub fn writable(&self) -> bool {
        self.inner.writable.load(Ordering::Relaxed)
    }

    /// Points from `from_ms` (inclusive, aligned down to the step) to `to_ms`
    /// (exclusive) at `step_ms`, read from the coarsest tier whose step is not
    /// coarser than `step_ms`. The step is rounded up to a multiple of that
    /// tier's step.
    pub fn query(
        &self,
        series: SeriesId,
        from_ms: i64,
        to_ms: i64,
        step_ms: i64,
    ) -> Result<QueryResult> {
        let (spec, step, start, n) = self.grid(from_ms, to_ms, step_ms)?;
        let first = spec.slot_of(start);
        let per_point = step / spec.step_ms;
        let mut points: Vec<(i64, Option<Agg>)> =
            (0..n).map(|i| (start + i * step, None)).collect();
        self.each_block(series, &spec, first, first + n * per_point, |b, lo, hi| {
            for slot in lo..hi {
                if let Some(a) = b.get(slot, spec.step_ms) {
                    match &mut points[((slot - first) / per_point) as usize].1 {
                        Some(acc) => acc.merge(&a),
                        empty => *empty = Some(a),
                    }
                }
            }
        })?;
        Ok(QueryResult {
            tier: spec.name(),
            step_ms: step,
            points,
        })
    }

    /// Calls `visit(block, lo, hi)` for every block of `series` in `spec`
    /// that holds slots `lo..hi` of the range `from_slot..to_slot` (blocks
    /// never written, or holding another lap, are skipped: their slots are
    /// empty). Written blocks are read in place under the lock (no copy);
    /// others come from the read cache or sled.
    fn each_block(
        &self,
        series: SeriesId,
        spec: &TierSpec,
        from_slot: i64,
        to_slot: i64,
        mut visit: impl FnMut(&Block, i64, i64),
    ) -> Result<()> {
        let mut base = spec.block_base(from_slot);
        while base < to_slot {
            let lo = base.max(from_slot);
            let hi = (base + spec.block_slots as i64).min(to_slot);
            let pos = spec.position(base);
            let mut fill = |b: &Block| {
                if b.base == base {
                    visit(b, lo, hi);
                }
            };
            let ck = cache_key(series, spec.id, pos);
            let hit = {
                let st = self.state();
                match (st.cache.get(&ck), st.read_cache.get(&ck)) {
                    (Some(c), _) => {
                        fill(&c.block);
                        true
                    }
                    (None, Some(b)) => {
                        fill(b);
                        true
                    }
                    (None, None) => false,
                }
            };
            if !hit && let Some(b) = self.load_block(series, spec, pos)? {
                fill(&b);
                let mut st = self.state();
                // Only if no write got there first.
                if !st.cache.contains_key(&ck) {
                    if st.read_cache.len() >= READ_CACHE_BLOCKS {
                        st.read_cache.clear();
                    }
                    st.read_cache.insert(ck, Arc::new(b));
                }
            }
            base += spec.block_slots as i64;
        }
        Ok(())
    }

    /// The tier, effective step, first point and point count of a query.
    fn grid(&self, from_ms: i64, to_ms: i64, step_ms: i64) -> Result<(TierSpec, i64, i64, i64)> {
        if step_ms <= 0 || to_ms < from_ms {
            return Err(Error::BadRequest(format!(
                "invalid query range {from_ms}..{to_ms} step {step_ms}"
            )));
        }
        let spec = *self.inner.layout.tier_for_step(step_ms);
        let step = tier::ceil_div(step_ms.max(spec.step_ms), spec.step_ms) * spec.step_ms;
        let start = from_ms.div_euclid(step) * step;
        let n = tier::ceil_div(to_ms - start, step);
        if n > MAX_QUERY_POINTS {
            return Err(Error::BadRequest(format!(
                "query would return {n} points, at most {MAX_QUERY_POINTS}: use a larger step"
            )));
        }
        Ok((spec, step, start, n))
    }

    /// Request statistics of a histogram series on the same grid as `query`.
    pub fn query_hist(
        &self,
        series: SeriesId,
        from_ms: i64,
        to_ms: i64,
        step_ms: i64,
    ) -> Result<HistResult> {
        let (spec, step, start, n) = self.grid(from_ms, to_ms, step_ms)?;
        let first = spec.slot_of(start);
        let per_point = step / spec.step_ms;
        let mut points: Vec<(i64, Option<Hist>)> =
            (0..n).map(|i| (start + i * step, None)).collect();
        self.each_block(series, &spec, first, first + n * per_point, |b, lo, hi| {
            for slot in lo..hi {
                if let Some(h) = b.get_hist(slot) {
                    match &mut points[((slot - first) / per_point) as usize].1 {
                        Some(acc) => acc.merge(h),
                        empty => *empty = Some(h.clone()),
                    }
                }
            }
        })?;
        Ok(HistResult {
            tier: spec.name(),
            step_ms: step,
            points,
        })
    }

    /// Per series, a number that grows whenever a sample is stored in it
    /// (0 for a series not written since the store opened). Two equal
    /// readings mean every query over the series still gives the same answer.
    pub fn versions(&self, ids: &[SeriesId]) -> Vec<u64> {
        let st = self.state();
        ids.iter()
            .map(|id| st.versions.get(*id as usize).copied().unwrap_or(0))
            .collect()
    }

    /// The newest sample of a series within the raw tier's window.
    pub fn latest(&self, series: SeriesId, now_ms: i64) -> Result<Option<(i64, f64)>> {
        let spec = &self.inner.layout.tiers[0];
        let q = self.query(
            series,
            now_ms - spec.window_ms(),
            now_ms + spec.step_ms,
            spec.step_ms,
        )?;
        Ok(q.points
            .iter()
            .rev()
            .find_map(|(t, a)| a.map(|a| (*t, a.last))))
    }

    pub fn stats(&self) -> StoreStats {
        let (series, cached_blocks) = {
            let st = self.state();
            (st.keys.len(), st.cache.len())
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
            cached_blocks,
        }
    }

    /// Bytes the data directory takes on disk.
    pub fn size_on_disk(&self) -> u64 {
        dir_size(&self.inner.dir)
    }

    /// Re-slots every tier whose spec changed since the data was written.
    fn migrate(&self, old: &Layout) -> Result<()> {
        let kinds = self.state().hist.clone();
        for (o, n) in old.tiers.iter().zip(&self.inner.layout.tiers) {
            if o == n {
                continue;
            }
            tracing::info!(
                tier = n.name(),
                ?o,
                ?n,
                "tier layout changed; re-slotting stored data"
            );
            for (series, hist) in kinds.iter().enumerate() {
                let series = series as SeriesId;
                let mut filled: Vec<(i64, Entry)> = Vec::new();
                let mut batch = sled::Batch::default();
                for kv in self
                    .inner
                    .blocks
                    .scan_prefix(keys::tier_prefix(series, o.id))
                {
                    let (k, v) = kv.map_err(|e| self.err(e))?;
                    batch.remove(k);
                    let block: Block = codec::decode(&v).map_err(|e| self.err(e))?;
                    filled.extend(
                        block
                            .entries(o.step_ms)
                            .into_iter()
                            .map(|(s, e)| (s * o.step_ms, e)),
                    );
                }
                filled.sort_by_key(|(t, _)| *t);
                let mut fresh: HashMap<u32, Block> = HashMap::new();
                for (t, e) in filled {
                    let slot = n.slot_of(t);
                    let base = n.block_base(slot);
                    let b = fresh
                        .entry(n.position(base))
                        .or_insert_with(|| Block::empty(n, base, *hist));
                    b.apply_entry(n, base, slot, &e);
                }
                for (pos, b) in fresh {
                    batch.insert(&keys::block_key(series, n.id, pos), codec::encode(&b));
                }
                self.inner
                    .blocks
                    .apply_batch(batch)
                    .map_err(|e| self.err(e))?;
            }
        }
        Ok(())
    }
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

fn store_err(dir: &Path, message: String) -> Error {
    Error::Store {
        dir: dir.to_path_buf(),
        message,
    }
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
