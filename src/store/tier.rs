//! Tier layout: which rollup steps exist, how many slots each keeps, and how
//! slots are grouped into sled blocks. Pure arithmetic; `ring.rs` holds the
//! slot contents and `mod.rs` the sled I/O.
//!
//! Every tier is a ring of `blocks` blocks of `block_slots` slots each. A slot
//! index is `timestamp_ms.div_euclid(step_ms)`; the block holding it starts at
//! `base = slot - slot % block_slots` and lives at ring position
//! `(base / block_slots) % blocks`. Writing a newer block over an older one at
//! the same position is what retention is: nothing is ever deleted, so sled's
//! space is reused in place (sled 0.34 never gives back deleted keys' space).

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How long the raw tier keeps samples at the collection interval.
pub const RAW_WINDOW_SECS: i64 = 6 * 3600;
/// A raw block covers ten minutes: small enough that re-writing the current
/// block every flush is cheap, large enough to keep the key count low.
pub const RAW_BLOCK_SECS: i64 = 600;
/// The 1-minute tier keeps seven days.
pub const MINUTE_WINDOW_SECS: i64 = 7 * 86_400;
/// A minute block holds one hour (60 slots).
pub const MINUTE_BLOCK_SLOTS: u32 = 60;
/// An hour block holds one day (24 slots).
pub const HOUR_BLOCK_SLOTS: u32 = 24;

/// `a / b` rounded up, for positive `b` (`i64::div_ceil` is not stable).
pub fn ceil_div(a: i64, b: i64) -> i64 {
    a.div_euclid(b) + i64::from(a.rem_euclid(b) != 0)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TierKind {
    /// One value per slot; a later write to the same slot replaces it.
    Raw,
    /// count/sum/min/max/last per slot; writes merge.
    Agg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierSpec {
    /// Position in `Layout::tiers`, also the tier byte in block keys.
    pub id: u8,
    pub kind: TierKind,
    pub step_ms: i64,
    pub block_slots: u32,
    pub blocks: u32,
}

impl TierSpec {
    pub fn name(&self) -> &'static str {
        match self.id {
            0 => "raw",
            1 => "1m",
            _ => "1h",
        }
    }
    pub fn slot_of(&self, ts_ms: i64) -> i64 {
        ts_ms.div_euclid(self.step_ms)
    }
    pub fn block_base(&self, slot: i64) -> i64 {
        slot - slot.rem_euclid(self.block_slots as i64)
    }
    pub fn position(&self, base: i64) -> u32 {
        (base.div_euclid(self.block_slots as i64)).rem_euclid(self.blocks as i64) as u32
    }
    /// How far back this tier reaches, rounded to whole blocks.
    pub fn window_ms(&self) -> i64 {
        self.step_ms * self.block_slots as i64 * self.blocks as i64
    }
}

/// The three tiers in order, finest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    pub tiers: [TierSpec; 3],
}

impl Layout {
    /// `raw_step` is the collection interval; `retention_days` sizes the hour tier.
    pub fn new(raw_step: Duration, retention_days: u32) -> Layout {
        let raw_step_ms = (raw_step.as_millis() as i64).max(1);
        let raw_block_slots = ((RAW_BLOCK_SECS * 1000) / raw_step_ms).max(1);
        let raw_slots = ceil_div(RAW_WINDOW_SECS * 1000, raw_step_ms);
        let raw_blocks = ceil_div(raw_slots, raw_block_slots).max(1);
        Layout {
            tiers: [
                TierSpec {
                    id: 0,
                    kind: TierKind::Raw,
                    step_ms: raw_step_ms,
                    block_slots: raw_block_slots as u32,
                    blocks: raw_blocks as u32,
                },
                TierSpec {
                    id: 1,
                    kind: TierKind::Agg,
                    step_ms: 60_000,
                    block_slots: MINUTE_BLOCK_SLOTS,
                    blocks: (MINUTE_WINDOW_SECS / 3600) as u32,
                },
                TierSpec {
                    id: 2,
                    kind: TierKind::Agg,
                    step_ms: 3_600_000,
                    block_slots: HOUR_BLOCK_SLOTS,
                    blocks: retention_days.max(1),
                },
            ],
        }
    }

    /// The finest tier: one slot per collection interval.
    pub fn raw(&self) -> &TierSpec {
        &self.tiers[0]
    }

    /// The coarsest tier whose step is not coarser than `step_ms` (the raw tier
    /// when even that is too coarse).
    pub fn tier_for_step(&self, step_ms: i64) -> &TierSpec {
        self.tiers
            .iter()
            .rev()
            .find(|t| t.step_ms <= step_ms)
            .unwrap_or(&self.tiers[0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_layout_matches_the_documented_windows() {
        let l = Layout::new(Duration::from_secs(5), 30);
        assert_eq!(l.tiers[0].window_ms(), 6 * 3600 * 1000);
        assert_eq!(l.tiers[0].block_slots, 120);
        assert_eq!(l.tiers[1].window_ms(), 7 * 86_400 * 1000);
        assert_eq!(l.tiers[2].window_ms(), 30 * 86_400 * 1000);
    }

    #[test]
    fn tier_choice_by_step() {
        let l = Layout::new(Duration::from_secs(5), 30);
        for (step, tier) in [
            (1_000, 0),
            (5_000, 0),
            (30_000, 0),
            (60_000, 1),
            (300_000, 1),
            (3_600_000, 2),
            (86_400_000, 2),
        ] {
            assert_eq!(l.tier_for_step(step).id, tier, "step {step}");
        }
    }

    #[test]
    fn positions_wrap_and_negative_times_are_consistent() {
        let l = Layout::new(Duration::from_secs(5), 30);
        let t = &l.tiers[2];
        let day = 86_400_000;
        let a = t.position(t.block_base(t.slot_of(3 * day)));
        let b = t.position(t.block_base(t.slot_of(33 * day)));
        assert_eq!(a, b, "30 days later lands on the same ring position");
        assert_eq!(t.block_base(t.slot_of(-1)), -24);
    }
}
