//! The points of a time range: `from`, `from + step`, ... before `to`, with
//! `to` the end of the step that holds "now", so a range always has the
//! same number of points and the last one is still filling.

use crate::store::Layout;
use crate::store::tier::ceil_div;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grid {
    pub from: i64,
    pub to: i64,
    pub step: i64,
}

impl Grid {
    /// `range_ms` back from the step holding `now_ms`, at `step` (the
    /// caller's choice, such as a granularity parameter).
    pub fn ending_now(range_ms: i64, step: i64, now_ms: i64) -> Grid {
        let to = ceil_div(now_ms + 1, step) * step;
        Grid {
            from: to - range_ms,
            to,
            step,
        }
    }

    /// At most `max_points` covering at least `range_ms`, at a step that is
    /// a whole number of the finest tier's steps able to serve it (never
    /// finer than the raw tier).
    pub fn at_most(layout: &Layout, range_ms: i64, max_points: i64, now_ms: i64) -> Grid {
        let wanted = ceil_div(range_ms, max_points).max(layout.raw().step_ms);
        let spec = layout.tier_for_step(wanted);
        let step = ceil_div(wanted, spec.step_ms) * spec.step_ms;
        let to = ceil_div(now_ms + 1, step) * step;
        let n = ceil_div(range_ms, step);
        Grid {
            from: to - n * step,
            to,
            step,
        }
    }

    /// The same range at the finest step not finer than `self.step` whose
    /// tier still reaches back to `from` at `now_ms` (the coarsest tier when
    /// none does), so old points are read where they are kept instead of
    /// coming back empty. `to` is moved to the new step's boundary.
    pub fn reaching_back(&self, layout: &Layout, now_ms: i64) -> Grid {
        let age = now_ms - self.from;
        let spec = layout
            .tiers
            .iter()
            .find(|t| t.step_ms >= layout.tier_for_step(self.step).step_ms && t.window_ms() >= age)
            .unwrap_or(&layout.tiers[layout.tiers.len() - 1]);
        if spec.step_ms <= self.step {
            return *self;
        }
        let step = spec.step_ms;
        let to = ceil_div(self.to, step) * step;
        Grid {
            from: self.from.div_euclid(step) * step,
            to,
            step,
        }
    }

    /// How many points.
    pub fn len(&self) -> usize {
        ((self.to - self.from) / self.step).max(0) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The start of each point.
    pub fn starts(&self) -> impl Iterator<Item = i64> + use<> {
        let (from, step) = (self.from, self.step);
        (0..self.len() as i64).map(move |i| from + i * step)
    }

    /// The point holding `t`, if the grid covers it.
    pub fn index_of(&self, t: i64) -> Option<usize> {
        (self.from..self.to)
            .contains(&t)
            .then(|| ((t - self.from) / self.step) as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const MIN: i64 = 60_000;

    #[test]
    fn ending_now_holds_now_in_its_last_point() {
        let now = 10 * MIN + 1_234;
        let g = Grid::ending_now(60 * MIN, MIN, now);
        assert_eq!((g.to, g.step, g.len()), (11 * MIN, MIN, 60));
        assert_eq!(g.index_of(now), Some(59));
        assert_eq!(g.index_of(g.to), None);
        assert_eq!(g.index_of(g.from - 1), None);
        // Exactly on a boundary, the new step has begun.
        assert_eq!(Grid::ending_now(MIN, MIN, 11 * MIN).to, 12 * MIN);
    }

    #[test]
    fn at_most_picks_a_tier_step_and_covers_the_range() {
        let layout = Layout::new(Duration::from_secs(5), 30);
        let now = 1_000 * 86_400_000 + 5;
        for (range, max, step) in [
            (3_600_000, 300, 15_000),         // 1 h: raw tier, 3 raw steps
            (86_400_000, 300, 300_000),       // 24 h: minute tier, 5 minutes
            (7 * 86_400_000, 300, 2_040_000), // 7 d: 34 minutes
            (30 * 86_400_000, 300, 3_600_000 * 3),
            (60_000, 300, 5_000), // never finer than the raw tier
        ] {
            let g = Grid::at_most(&layout, range, max, now);
            assert_eq!(g.step, step, "range {range}");
            assert!(g.len() as i64 <= max, "range {range}");
            assert!(g.to - g.from >= range, "range {range}");
            assert!(g.index_of(now).is_some(), "range {range}");
            assert_eq!(g.starts().count(), g.len());
        }
    }

    #[test]
    fn reaching_back_moves_to_the_tier_that_holds_the_range() {
        let layout = Layout::new(Duration::from_secs(5), 30);
        let now = 1_000 * 86_400_000 + 5;
        let day = 86_400_000;
        // 5 minutes over 30 days: only the hour tier reaches back that far.
        let g = Grid::ending_now(30 * day, 5 * MIN, now).reaching_back(&layout, now);
        assert_eq!(g.step, 60 * MIN);
        assert!(g.from <= now - 30 * day && g.to > now);
        // 1 minute over 7 days: the minute tier does.
        let g = Grid::ending_now(7 * day, MIN, now);
        assert_eq!(g.reaching_back(&layout, now), g);
        // Raw steps over 24 hours: the raw tier keeps 6 hours.
        let g = Grid::ending_now(day, 5_000, now).reaching_back(&layout, now);
        assert_eq!(g.step, MIN);
        // A step already coarse enough is kept.
        let g = Grid::ending_now(day, 5 * MIN, now);
        assert_eq!(g.reaching_back(&layout, now), g);
    }
}
