//! Up-time weighted by time, not by checks: each check's result holds until
//! the next check (at most `MAX_HOLD_MS`), so a failing service that is
//! probed less often while it backs off weighs as long as it was down.

use super::Grid;
use crate::error::Result;
use crate::store::{SeriesId, Store};

/// The longest a check's result is taken to hold when no later check came:
/// longer than the longest back-off (`health::breaker::MAX_BACKOFF`), so a
/// backed-off service leaves no hole; a service no longer probed at all
/// stops counting after it.
pub const MAX_HOLD_MS: i64 = 10 * 60_000;

/// The percent of the time from `from_ms` to `min(to_ms, now_ms)` that the
/// `up` series (1 up, 0 down) says the service was up, read at the finest
/// tier that still reaches back to `from_ms`. `None` when no check covers
/// any of that time.
///
/// Within one point of the grid the checks are averaged (their spacing is
/// even there, but for the step where a back-off begins); a point with no
/// check takes the last check's result, for at most `MAX_HOLD_MS`.
pub fn uptime_percent(
    store: &Store,
    up: SeriesId,
    from_ms: i64,
    to_ms: i64,
    now_ms: i64,
) -> Result<Option<f64>> {
    let end = to_ms.min(now_ms);
    if end <= from_ms {
        return Ok(None);
    }
    let raw = store.layout().raw().step_ms;
    let g = Grid {
        from: from_ms,
        to: end,
        step: raw,
    }
    .reaching_back(store.layout(), now_ms);
    let r = store.query(up, from_ms, end, g.step)?;
    let step = r.step_ms;
    let (mut up_ms, mut covered_ms) = (0.0, 0.0);
    // The last check's result and when the point holding it ended.
    let mut held: Option<(f64, i64)> = None;
    for (t, a) in &r.points {
        let lo = (*t).max(from_ms);
        let hi = (t + step).min(end);
        if hi <= lo {
            continue;
        }
        match a {
            Some(a) => {
                let d = (hi - lo) as f64;
                up_ms += a.avg().clamp(0.0, 1.0) * d;
                covered_ms += d;
                held = Some((a.last.clamp(0.0, 1.0), t + step));
            }
            None => {
                if let Some((v, since)) = held {
                    let until = hi.min(since + MAX_HOLD_MS);
                    if until > lo {
                        let d = (until - lo) as f64;
                        up_ms += v * d;
                        covered_ms += d;
                    }
                }
            }
        }
    }
    Ok((covered_ms > 0.0).then(|| up_ms / covered_ms * 100.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Layout, SeriesKey};
    use std::time::Duration;

    const S: i64 = 1_000;
    const MIN: i64 = 60 * S;
    const HOUR: i64 = 60 * MIN;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("temp dir");
        let s =
            Store::open(dir.path(), Layout::new(Duration::from_secs(5), 30), 1_000).expect("store");
        (dir, s)
    }

    /// Checks every 30 s, backing off to 60 s (the longest back-off for
    /// this interval) after five failures, during `outage`.
    fn checks(from: i64, to: i64, outage: std::ops::Range<i64>) -> Vec<(i64, f64)> {
        let mut out = Vec::new();
        let (mut t, mut fails) = (from, 0u32);
        while t < to {
            let up = !outage.contains(&t);
            out.push((t, if up { 1.0 } else { 0.0 }));
            fails = if up { 0 } else { fails + 1 };
            let wait = if fails < 5 { 30 * S } else { 60 * S };
            t += wait;
        }
        out
    }

    #[test]
    fn an_outage_with_back_off_weighs_as_long_as_it_lasted() {
        let (_d, s) = store();
        let now = 1_000 * 24 * HOUR + 17 * S;
        let from = now - 24 * HOUR;
        let outage = now - 10 * HOUR..now - 9 * HOUR;
        let key = SeriesKey::new("up").with("service", "api");
        let pts = checks(from, now, outage);
        let by_count = pts.iter().map(|p| p.1).sum::<f64>() / pts.len() as f64 * 100.0;
        let truth = 100.0 * 23.0 / 24.0;
        assert!(by_count > truth + 1.0, "count-weighted: {by_count}");
        s.record(pts.into_iter().map(|(t, v)| (key.clone(), t, v)))
            .expect("record");
        let id = s.lookup(&key).expect("stored");
        let u = uptime_percent(&s, id, from, now + 5 * MIN, now)
            .expect("query")
            .expect("covered");
        // At most one back-off (a minute) late in seeing the recovery.
        assert!((u - truth).abs() < 0.1, "uptime {u}, truth {truth}");
    }

    #[test]
    fn time_without_checks_is_not_counted() {
        let (_d, s) = store();
        let now = 1_000 * 24 * HOUR;
        let key = SeriesKey::new("up").with("service", "new");
        // Checked only over the last 20 minutes, down for the first 5.
        let pts = (0..40).map(|i| {
            let t = now - 20 * MIN + i * 30 * S;
            (key.clone(), t, if i < 10 { 0.0 } else { 1.0 })
        });
        s.record(pts).expect("record");
        let id = s.lookup(&key).expect("stored");
        let u = uptime_percent(&s, id, now - 6 * HOUR, now, now)
            .expect("query")
            .expect("covered");
        assert!((u - 75.0).abs() < 1.0, "uptime {u}");
        // A range before any check has no up-time at all.
        let none = uptime_percent(&s, id, now - 6 * HOUR, now - HOUR, now).expect("query");
        assert_eq!(none, None);
        // A service no longer checked stops counting after MAX_HOLD_MS.
        let later = now + 3 * HOUR;
        let u = uptime_percent(&s, id, now - 20 * MIN, later, later)
            .expect("query")
            .expect("covered");
        let want = 100.0 * (15.0 + 10.0) / (20.0 + 10.0);
        assert!((u - want).abs() < 1.0, "uptime {u}, want {want}");
    }
}
