//! Queries: points on a regular grid from the tier whose step fits, each
//! block read from memory when it is open, sealing or cached, else from
//! sled. Slots fold straight into points, with no copy of every slot.

use super::head::place;
use super::ring::{Agg, Block};
use super::{HistResult, MAX_QUERY_POINTS, QueryResult, SeriesId, Store, TierSpec, tier};
use crate::error::{Error, Result};
use crate::store::Hist;
use std::sync::Arc;

impl Store {
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
    /// empty). Blocks in memory are read in place under the lock (no copy);
    /// others come from the read cache or sled.
    fn each_block(
        &self,
        series: SeriesId,
        spec: &TierSpec,
        from_slot: i64,
        to_slot: i64,
        mut visit: impl FnMut(&Block, i64, i64),
    ) -> Result<()> {
        let hist = self.is_hist(series);
        let mut base = spec.block_base(from_slot);
        while base < to_slot {
            let lo = base.max(from_slot);
            let hi = (base + spec.block_slots as i64).min(to_slot);
            let pos = spec.position(base);
            let at = place(series, spec.id, pos);
            let hit = {
                let head = self.head();
                match head.find(spec, series, at, base) {
                    Some(b) => {
                        visit(&b, lo, hi);
                        true
                    }
                    None => head.shadowed(series, spec, pos, base),
                }
            };
            if !hit
                && let Some(stored) = self
                    .inner
                    .disk
                    .sealed(series, spec, pos, hist)
                    .map_err(|e| self.err(e))?
            {
                if stored.block.base == base {
                    visit(&stored.block, lo, hi);
                }
                let mut head = self.head();
                // Only if no write got there first.
                if !head.holds(series, spec.id, at, base) {
                    head.cache(at, Arc::new(stored.block));
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

    /// The newest sample of every gauge series written since start, from
    /// the newest slot of its open raw block in memory (no disk read, no
    /// unpacking), handed to `f` with the series' metric and canonical text
    /// (`metric{a="b"}`), the series of one metric together (metrics in
    /// name order). For `GET /metrics?series=all`; `f` runs under the
    /// registry's read lock (a new series waits for it).
    pub fn newest_samples(&self, mut f: impl FnMut(&str, &str, i64, f64)) {
        let found: Vec<(SeriesId, i64, f64)> = {
            let head = self.head();
            head.newest_ms
                .iter()
                .enumerate()
                .filter(|(_, ts)| **ts != i64::MIN)
                .filter_map(|(s, _)| {
                    let a = head.open.get(&(s as SeriesId, 0))?.block.newest()?;
                    Some((s as SeriesId, a.last_ts_ms, a.last))
                })
                .collect()
        };
        let registry = self.registry();
        // Grouped by metric, not sorted: a few groups, no string compares
        // along long shared prefixes.
        type Group<'a> = Vec<(&'a str, i64, f64)>;
        let mut by_metric: std::collections::BTreeMap<&str, Group> =
            std::collections::BTreeMap::new();
        // Series of one metric usually follow each other: their group is
        // kept at hand instead of looked up again.
        let mut run: Option<(&str, Group)> = None;
        for (id, ts, v) in found {
            if (id as usize) < registry.len() {
                let text = registry.text(id);
                // A byte loop: the brace is a dozen bytes in, where memchr's
                // setup costs more than the search (measured).
                let end = text.bytes().position(|b| b == b'{').unwrap_or(text.len());
                let metric = &text[..end];
                match &mut run {
                    Some((m, group)) if *m == metric => group.push((text, ts, v)),
                    _ => {
                        if let Some((m, group)) = run.take() {
                            by_metric.entry(m).or_default().extend(group);
                        }
                        run = Some((metric, vec![(text, ts, v)]));
                    }
                }
            }
        }
        if let Some((m, group)) = run {
            by_metric.entry(m).or_default().extend(group);
        }
        for (metric, series) in by_metric {
            for (text, ts, v) in series {
                f(metric, text, ts, v);
            }
        }
    }
}
