//! Open blocks and ingest: the only blocks that change live here.
//!
//! Each series has one open block per tier, the one its newest samples fall
//! into. When a sample lands in a later block, the open one is sealed: it
//! waits in `sealing` until the next flush writes it once, compressed, at
//! its ring key, and then moves to the read cache. A late sample for an
//! older block brings that block back from sled into `sealing`, so it is
//! written again with the sample in it. Open blocks reach sled at
//! checkpoints; between checkpoints the log (`wal.rs`) makes samples durable.

use super::block_codec::Stored;
use super::disk::Disk;
use super::keys::SeriesId;
use super::packed::OpenBlock;
use super::ring::{Applied, Block, Entry};
use super::tier::TierSpec;
use super::wal;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

/// Decoded sealed blocks kept for queries (a few kB each).
const READ_CACHE_BLOCKS: usize = 8192;

/// A block that may still change.
pub(super) struct Open {
    /// Shared with a flush that is writing it; a change while it does
    /// copies it first (`Arc::make_mut`), so a flush never copies blocks.
    pub block: Arc<OpenBlock>,
    /// The newest log record this block holds as stored on disk (0: none).
    pub seq: u64,
    /// Changed since it was last written.
    pub dirty: bool,
    /// Bumped on every change, so a flush knows whether what it wrote is
    /// still the block's content.
    pub changes: u64,
}

impl Open {
    pub fn new(stored: Option<Stored>, base: i64, spec: &TierSpec, hist: bool) -> Open {
        let (block, seq) = match stored {
            Some(s) if s.block.base == base => (s.block, s.seq),
            _ => (Block::empty(spec, base, hist), 0),
        };
        let block = Arc::new(OpenBlock::new(block, spec));
        Open {
            block,
            seq,
            dirty: false,
            changes: 0,
        }
    }
}

/// The open blocks, by series id (ids are dense) and tier: a series that
/// went quiet costs three empty slots (96 bytes), and there is no hash table
/// to grow (at 50,000 series one cost 50 MB while it doubled).
#[derive(Default)]
pub(super) struct OpenBlocks {
    by_series: Vec<[Option<Open>; 3]>,
    len: usize,
}

impl OpenBlocks {
    pub fn get(&self, (series, tier): &(SeriesId, u8)) -> Option<&Open> {
        self.by_series.get(*series as usize)?[*tier as usize].as_ref()
    }

    pub fn get_mut(&mut self, (series, tier): &(SeriesId, u8)) -> Option<&mut Open> {
        self.by_series.get_mut(*series as usize)?[*tier as usize].as_mut()
    }

    pub fn insert(&mut self, (series, tier): (SeriesId, u8), open: Open) -> Option<Open> {
        let i = series as usize;
        if i >= self.by_series.len() {
            self.by_series.resize_with(i + 1, Default::default);
        }
        let old = self.by_series[i][tier as usize].replace(open);
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    pub fn remove(&mut self, (series, tier): &(SeriesId, u8)) -> Option<Open> {
        let old = self.by_series.get_mut(*series as usize)?[*tier as usize].take();
        if old.is_some() {
            self.len -= 1;
        }
        old
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn iter(&self) -> impl Iterator<Item = ((SeriesId, u8), &Open)> {
        self.by_series.iter().enumerate().flat_map(|(s, tiers)| {
            tiers
                .iter()
                .enumerate()
                .filter_map(move |(t, o)| o.as_ref().map(|o| ((s as SeriesId, t as u8), o)))
        })
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = ((SeriesId, u8), &mut Open)> {
        self.by_series
            .iter_mut()
            .enumerate()
            .flat_map(|(s, tiers)| {
                tiers
                    .iter_mut()
                    .enumerate()
                    .filter_map(move |(t, o)| o.as_mut().map(|o| ((s as SeriesId, t as u8), o)))
            })
    }
}

/// What one sample did in one tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    Stored,
    /// The ring position holds a newer lap: older than the tier's window.
    TooOld,
    /// Replaying the log: the block already holds this record.
    AlreadyIn,
}

#[derive(Default)]
pub(super) struct Head {
    /// Per (series, tier): the open block.
    pub open: OpenBlocks,
    /// Per ring place (`place`): sealed or reopened blocks the next flush writes.
    pub sealing: HashMap<u64, Open>,
    /// Decoded sealed blocks read by queries, by ring place; a write to the
    /// place drops its entry. Bounded by `READ_CACHE_BLOCKS`.
    pub read_cache: HashMap<u64, Arc<Block>>,
    /// Per series id, the newest sample timestamp written since start
    /// (`i64::MIN` when none yet): a tier's window ends there.
    pub newest_ms: Vec<i64>,
    /// Per series id, how many samples were stored since start: caches of
    /// query results compare it to know the data behind them is unchanged.
    pub versions: Vec<u64>,
    /// Samples not yet in the log.
    pub pending: wal::Pending,
    pub log: LogPosition,
}

/// Where the log stands.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct LogPosition {
    /// The last sequence number used (by a record or a checkpoint).
    pub seq: u64,
    /// Records written since the last checkpoint (the next one's slot).
    pub records: u64,
    pub bytes: u64,
    /// Bytes the last checkpoint wrote.
    pub checkpoint_bytes: u64,
}

/// A ring place: series, tier and ring position in one number.
pub(super) fn place(series: SeriesId, tier: u8, position: u32) -> u64 {
    (u64::from(series) << 40) | (u64::from(tier) << 32) | u64::from(position)
}

pub(super) fn split_place(k: u64) -> (SeriesId, u8, u32) {
    ((k >> 40) as u32, (k >> 32) as u8, k as u32)
}

impl Head {
    /// Puts one sample into one tier. `record` is the log record being
    /// replayed, `u64::MAX` for a live sample.
    #[allow(clippy::too_many_arguments)]
    pub fn apply(
        &mut self,
        disk: &Disk,
        spec: &TierSpec,
        series: SeriesId,
        hist: bool,
        slot: i64,
        entry: &Entry,
        record: u64,
    ) -> sled::Result<Outcome> {
        let base = spec.block_base(slot);
        let pos = spec.position(base);
        let at = place(series, spec.id, pos);
        let key = (series, spec.id);
        let open_base = self.open.get(&key).map(|o| o.block.base());
        let target = match open_base {
            Some(b) if b == base => self.open.get_mut(&key).expect("present"),
            Some(b) if base < b => match self.late_block(disk, spec, series, hist, base, at)? {
                Some(t) => t,
                None => return Ok(Outcome::TooOld),
            },
            _ => {
                // A later block than the open one (or none is open): it
                // may wait in `sealing` or be on disk already.
                let next = match self.sealing.get(&at).map(|o| o.block.base()) {
                    Some(b) if b > base => return Ok(Outcome::TooOld),
                    Some(b) if b == base => self.sealing.remove(&at).expect("present"),
                    _ => {
                        let stored = disk.sealed(series, spec, pos, hist)?;
                        if stored.as_ref().is_some_and(|s| s.block.base > base) {
                            return Ok(Outcome::TooOld);
                        }
                        Open::new(stored, base, spec, hist)
                    }
                };
                if let Some(old) = self.open.insert(key, next) {
                    self.seal(spec, series, old);
                }
                self.open.get_mut(&key).expect("just inserted")
            }
        };
        if target.seq >= record {
            return Ok(Outcome::AlreadyIn);
        }
        if Arc::make_mut(&mut target.block).apply_entry(spec, base, slot, entry) == Applied::TooOld
        {
            return Ok(Outcome::TooOld);
        }
        target.dirty = true;
        target.changes += 1;
        self.read_cache.remove(&at);
        Ok(Outcome::Stored)
    }

    /// Moves an open block to `sealing`, to be written by the next flush.
    pub fn seal(&mut self, spec: &TierSpec, series: SeriesId, mut block: Open) {
        let pos = spec.position(block.block.base());
        let at = place(series, spec.id, pos);
        if self.shadowed(series, spec, pos, block.block.base()) {
            return; // the open block is a newer lap of the same place
        }
        match self.sealing.get(&at) {
            // A newer lap waits there already (a backfill wrapped the ring).
            Some(o) if o.block.base() > block.block.base() => return,
            _ => {}
        }
        block.dirty = true;
        self.read_cache.remove(&at);
        self.sealing.insert(at, block);
    }

    /// The block for a sample older than the open block: in `sealing`, or
    /// read back from sled, or a fresh one; `None` if a newer lap holds the
    /// ring position.
    fn late_block(
        &mut self,
        disk: &Disk,
        spec: &TierSpec,
        series: SeriesId,
        hist: bool,
        base: i64,
        at: u64,
    ) -> sled::Result<Option<&mut Open>> {
        if self.shadowed(series, spec, spec.position(base), base) {
            return Ok(None);
        }
        let fresh = match self.sealing.get(&at) {
            Some(o) if o.block.base() > base => return Ok(None),
            Some(o) if o.block.base() == base => None,
            _ => {
                let stored = disk.sealed(series, spec, spec.position(base), hist)?;
                if stored.as_ref().is_some_and(|s| s.block.base > base) {
                    return Ok(None);
                }
                Some(Open::new(stored, base, spec, hist))
            }
        };
        if let Some(o) = fresh {
            self.sealing.insert(at, o);
        }
        Ok(self.sealing.get_mut(&at))
    }

    /// Keeps a decoded sealed block for later queries.
    pub fn cache(&mut self, at: u64, block: Arc<Block>) {
        if self.read_cache.len() >= READ_CACHE_BLOCKS {
            self.read_cache.clear();
        }
        self.read_cache.insert(at, block);
    }

    /// True when the open block holds a newer lap of ring position `pos`:
    /// then whatever sits there for `base`, in memory or on disk, is gone.
    pub fn shadowed(&self, series: SeriesId, spec: &TierSpec, pos: u32, base: i64) -> bool {
        self.open
            .get(&(series, spec.id))
            .is_some_and(|o| o.block.base() > base && spec.position(o.block.base()) == pos)
    }

    /// The block at ring place `at` holding `base`, wherever it is in memory.
    pub fn find(
        &self,
        spec: &TierSpec,
        series: SeriesId,
        at: u64,
        base: i64,
    ) -> Option<Cow<'_, Block>> {
        let tier = spec.id;
        if let Some(o) = self.open.get(&(series, tier))
            && o.block.base() == base
        {
            return Some(o.block.block(spec));
        }
        if let Some(o) = self.open.get(&(series, tier))
            && o.block.base() > base
            && spec.position(o.block.base()) == spec.position(base)
        {
            return None; // a newer lap of this place is open
        }
        if let Some(o) = self.sealing.get(&at)
            && o.block.base() == base
        {
            return Some(o.block.block(spec));
        }
        self.read_cache
            .get(&at)
            .filter(|b| b.base == base)
            .map(|b| Cow::Borrowed(b.as_ref()))
    }

    /// True when memory holds a block for ring place `at` that a read from
    /// sled must not be cached over.
    pub fn holds(&self, series: SeriesId, tier: u8, at: u64, base: i64) -> bool {
        self.sealing.contains_key(&at)
            || self
                .open
                .get(&(series, tier))
                .is_some_and(|o| o.block.base() == base)
    }
}
