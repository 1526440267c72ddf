//! The contents of one ring block: a fixed run of slots for one series and
//! one tier. Pure data; the tier arithmetic is in `tier.rs`, the sled I/O in
//! `mod.rs`.

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
        self.count += other.count;
        self.sum += other.sum;
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
    pub fn empty(spec: &TierSpec, base: i64) -> Block {
        let n = spec.block_slots as usize;
        let slots = match spec.kind {
            TierKind::Raw => Slots::Raw(vec![None; n]),
            TierKind::Agg => Slots::Agg(vec![None; n]),
        };
        Block { base, slots }
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
        if self.base > base {
            return Applied::TooOld;
        }
        if self.base < base {
            *self = Block::empty(spec, base);
        }
        let i = (slot - base) as usize;
        match &mut self.slots {
            Slots::Raw(v) => v[i] = Some(value),
            Slots::Agg(v) => match &mut v[i] {
                Some(a) => a.merge(&Agg::single(ts_ms, value)),
                empty => *empty = Some(Agg::single(ts_ms, value)),
            },
        }
        Applied::Stored
    }

    /// Merges a whole slot from another layout (used when the layout changes).
    pub fn apply_agg(&mut self, spec: &TierSpec, base: i64, slot: i64, agg: &Agg) -> Applied {
        if self.base > base {
            return Applied::TooOld;
        }
        if self.base < base {
            *self = Block::empty(spec, base);
        }
        let i = (slot - base) as usize;
        match &mut self.slots {
            Slots::Raw(v) => v[i] = Some(agg.last),
            Slots::Agg(v) => match &mut v[i] {
                Some(a) => a.merge(agg),
                empty => *empty = Some(*agg),
            },
        }
        Applied::Stored
    }

    /// The slot at absolute index `slot`, if this block holds that lap.
    pub fn get(&self, slot: i64, step_ms: i64) -> Option<Agg> {
        let i = slot - self.base;
        let len = match &self.slots {
            Slots::Raw(v) => v.len(),
            Slots::Agg(v) => v.len(),
        } as i64;
        if i < 0 || i >= len {
            return None;
        }
        match &self.slots {
            Slots::Raw(v) => v[i as usize].map(|x| Agg::single(slot * step_ms, x)),
            Slots::Agg(v) => v[i as usize],
        }
    }

    /// Every filled slot as (absolute slot index, aggregate).
    pub fn filled(&self, step_ms: i64) -> Vec<(i64, Agg)> {
        let n = match &self.slots {
            Slots::Raw(v) => v.len(),
            Slots::Agg(v) => v.len(),
        } as i64;
        (self.base..self.base + n)
            .filter_map(|s| self.get(s, step_ms).map(|a| (s, a)))
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
        let mut b = Block::empty(&s, 0);
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
        let mut b = Block::empty(&s, 0);
        b.apply(&s, 0, 3, 15_000, 1.0);
        b.apply(&s, 0, 3, 15_000, 2.0);
        assert_eq!(b.get(3, s.step_ms).map(|a| a.last), Some(2.0));
        assert_eq!(b.get(4, s.step_ms), None, "empty slot is None, never 0");
    }

    #[test]
    fn a_newer_lap_resets_the_block_and_an_older_one_is_dropped() {
        let s = spec(0);
        let lap = (s.block_slots * s.blocks) as i64;
        let mut b = Block::empty(&s, 0);
        b.apply(&s, 0, 1, 5_000, 1.0);
        assert_eq!(b.apply(&s, lap, lap + 2, 0, 2.0), Applied::Stored);
        assert_eq!(b.get(1, s.step_ms), None, "old lap gone");
        assert_eq!(b.get(lap + 2, s.step_ms).map(|a| a.last), Some(2.0));
        assert_eq!(b.apply(&s, 0, 1, 5_000, 3.0), Applied::TooOld);
    }
}
