//! The contents of one ring block: a fixed run of slots for one series and
//! one tier. Pure data; the tier arithmetic is in `tier.rs`, the sled I/O in
//! `mod.rs`.

use super::histogram::Hist;
use super::tier::{TierKind, TierSpec};
use serde::{Deserialize, Serialize};

/// An aggregate of the samples that fell into one slot. `count`, `sum`, `min`
/// and `max` merge exactly, so avg/min/max/sum/count/last stay exact at any tier.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Agg {
    pub count: u32,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    pub last: f64,
    /// Timestamp of `last`, so out-of-order samples do not overwrite a newer last.
    pub last_ts_ms: i64,
}

/// `a + b`, held at the largest finite value instead of becoming infinite
/// (two finite samples near f64::MAX must not turn a mean into `null`).
pub fn saturating_sum(a: f64, b: f64) -> f64 {
    let s = a + b;
    if s.is_infinite() && a.is_finite() && b.is_finite() {
        f64::MAX.copysign(s)
    } else {
        s
    }
}

impl Agg {
    pub fn single(ts_ms: i64, value: f64) -> Agg {
        Agg {
            count: 1,
            sum: value,
            min: value,
            max: value,
            last: value,
            last_ts_ms: ts_ms,
        }
    }

    pub fn merge(&mut self, other: &Agg) {
        self.count = self.count.saturating_add(other.count);
        self.sum = saturating_sum(self.sum, other.sum);
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        if other.last_ts_ms >= self.last_ts_ms {
            self.last = other.last;
            self.last_ts_ms = other.last_ts_ms;
        }
    }

    pub fn avg(&self) -> f64 {
        self.sum / self.count as f64
    }

    pub fn get(&self, how: Aggregation) -> f64 {
        match how {
            Aggregation::Avg => self.avg(),
            Aggregation::Min => self.min,
            Aggregation::Max => self.max,
            Aggregation::Sum => self.sum,
            Aggregation::Count => self.count as f64,
            Aggregation::Last => self.last,
        }
    }
}

/// Which statistic of an aggregate a caller wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Aggregation {
    Avg,
    Min,
    Max,
    Sum,
    Count,
    Last,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Slots {
    /// Raw tier: one value per slot, the last write wins.
    Raw(Vec<Option<f64>>),
    Agg(Vec<Option<Agg>>),
    /// Request statistics with a latency histogram, in every tier of a
    /// histogram series; writes merge.
    Hist(Vec<Option<Hist>>),
}

/// A filled slot's content, for moving data between layouts.
#[derive(Clone, Debug, PartialEq)]
pub enum Entry {
    Agg(Agg),
    Hist(Hist),
}

/// One block: `base` is the absolute slot index of its first slot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Block {
    pub base: i64,
    pub slots: Slots,
}

/// What happened to one sample in one tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    Stored,
    /// The ring position already holds newer data: the sample is older than the window.
    TooOld,
}

impl Block {
    /// An empty block; `hist` for a histogram series (every tier holds `Hist`).
    pub fn empty(spec: &TierSpec, base: i64, hist: bool) -> Block {
        let n = spec.block_slots as usize;
        let slots = match (hist, spec.kind) {
            (true, _) => Slots::Hist(vec![None; n]),
            (false, TierKind::Raw) => Slots::Raw(vec![None; n]),
            (false, TierKind::Agg) => Slots::Agg(vec![None; n]),
        };
        Block { base, slots }
    }

    fn is_hist(&self) -> bool {
        matches!(self.slots, Slots::Hist(_))
    }

    /// Makes this block hold the lap starting at `base`: resets it when it
    /// holds an older lap; `false` when it holds a newer one.
    fn lap(&mut self, spec: &TierSpec, base: i64) -> bool {
        if self.base > base {
            return false;
        }
        if self.base < base {
            *self = Block::empty(spec, base, self.is_hist());
        }
        true
    }

    /// Puts one sample (already known to belong to ring position of `base`)
    /// into this block, resetting it first when it holds an older lap.
    pub fn apply(
        &mut self,
        spec: &TierSpec,
        base: i64,
        slot: i64,
        ts_ms: i64,
        value: f64,
    ) -> Applied {
        self.apply_entry(spec, base, slot, &Entry::Agg(Agg::single(ts_ms, value)))
    }

    /// Merges a slot's worth of data: an aggregate into a gauge block (the
    /// raw tier keeps its `last`), a histogram into a histogram block.
    pub fn apply_entry(&mut self, spec: &TierSpec, base: i64, slot: i64, entry: &Entry) -> Applied {
        if !self.lap(spec, base) {
            return Applied::TooOld;
        }
        let i = (slot - base) as usize;
        match (&mut self.slots, entry) {
            (Slots::Raw(v), Entry::Agg(agg)) => v[i] = Some(agg.last),
            (Slots::Agg(v), Entry::Agg(agg)) => match &mut v[i] {
                Some(a) => a.merge(agg),
                empty => *empty = Some(*agg),
            },
            (Slots::Hist(v), Entry::Hist(h)) => match &mut v[i] {
                Some(x) => x.merge(h),
                empty => *empty = Some(h.clone()),
            },
            // A value of the other kind (a gauge sample for a histogram
            // series) has nowhere to go; the store never sends one.
            _ => {}
        }
        Applied::Stored
    }

    /// The histogram at absolute index `slot`, if this is a histogram block holding that lap.
    pub fn get_hist(&self, slot: i64) -> Option<&Hist> {
        let i = slot - self.base;
        match &self.slots {
            Slots::Hist(v) if i >= 0 && (i as usize) < v.len() => v[i as usize].as_ref(),
            _ => None,
        }
    }

    fn len(&self) -> usize {
        match &self.slots {
            Slots::Raw(v) => v.len(),
            Slots::Agg(v) => v.len(),
            Slots::Hist(v) => v.len(),
        }
    }

    /// The slot at absolute index `slot`, if this block holds that lap. For a
    /// histogram slot: the latency statistics (count of timed requests, sum,
    /// min, max; `last` is the max).
    pub fn get(&self, slot: i64, step_ms: i64) -> Option<Agg> {
        let i = slot - self.base;
        if i < 0 || i >= self.len() as i64 {
            return None;
        }
        match &self.slots {
            Slots::Raw(v) => v[i as usize].map(|x| Agg::single(slot * step_ms, x)),
            Slots::Agg(v) => v[i as usize],
            Slots::Hist(v) => v[i as usize]
                .as_ref()
                .filter(|h| h.timed() > 0)
                .map(|h| Agg {
                    count: h.timed() as u32,
                    sum: h.sum,
                    min: h.min,
                    max: h.max,
                    last: h.max,
                    last_ts_ms: slot * step_ms,
                }),
        }
    }

    /// Every filled slot as (absolute slot index, content), for re-slotting.
    pub fn entries(&self, step_ms: i64) -> Vec<(i64, Entry)> {
        (self.base..self.base + self.len() as i64)
            .filter_map(|s| match &self.slots {
                Slots::Hist(_) => self.get_hist(s).map(|h| (s, Entry::Hist(h.clone()))),
                _ => self.get(s, step_ms).map(|a| (s, Entry::Agg(a))),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tier::Layout;
    use std::time::Duration;

    fn spec(i: usize) -> TierSpec {
        Layout::new(Duration::from_secs(5), 30).tiers[i]
    }

    #[test]
    fn aggregates_are_exact_and_last_follows_time_not_arrival() {
        let s = spec(1);
        let mut b = Block::empty(&s, 0, false);
        for (ts, v) in [(1_000, 4.0), (30_000, 10.0), (2_000, -2.0)] {
            assert_eq!(b.apply(&s, 0, 0, ts, v), Applied::Stored);
        }
        let a = b.get(0, s.step_ms).expect("slot filled");
        assert_eq!(
            (a.count, a.sum, a.min, a.max, a.last),
            (3, 12.0, -2.0, 10.0, 10.0)
        );
        assert_eq!(a.get(Aggregation::Avg), 4.0);
    }

    #[test]
    fn raw_duplicates_keep_the_last_value() {
        let s = spec(0);
        let mut b = Block::empty(&s, 0, false);
        b.apply(&s, 0, 3, 15_000, 1.0);
        b.apply(&s, 0, 3, 15_000, 2.0);
        assert_eq!(b.get(3, s.step_ms).map(|a| a.last), Some(2.0));
        assert_eq!(b.get(4, s.step_ms), None, "empty slot is None, never 0");
    }

    #[test]
    fn a_newer_lap_resets_the_block_and_an_older_one_is_dropped() {
        let s = spec(0);
        let lap = (s.block_slots * s.blocks) as i64;
        let mut b = Block::empty(&s, 0, false);
        b.apply(&s, 0, 1, 5_000, 1.0);
        assert_eq!(b.apply(&s, lap, lap + 2, 0, 2.0), Applied::Stored);
        assert_eq!(b.get(1, s.step_ms), None, "old lap gone");
        assert_eq!(b.get(lap + 2, s.step_ms).map(|a| a.last), Some(2.0));
        assert_eq!(b.apply(&s, 0, 1, 5_000, 3.0), Applied::TooOld);
    }
}
