//! Forecasts from the stored history (`GET /forecast`) and the time each
//! resource has until it is full (`GET /capacity`), with
//! `analysis::linear`'s robust line.

use crate::analysis::linear::{Fit, Predicted};
use crate::collect::system::metric;
use crate::error::{Error, Result};
use crate::store::{SeriesKey, Store};

/// The longest horizon `GET /forecast` takes.
pub const MAX_HORIZON_MS: i64 = 7 * 86_400_000;
/// At most this many series in one forecast.
pub const MAX_SERIES: usize = 100;
/// The steps a forecast may use, finest first.
const STEPS_MS: [i64; 3] = [60_000, 300_000, 3_600_000];
/// Forecast points at most, unless the horizon needs more at the hour step.
const MAX_POINTS: i64 = 120;
/// History fitted: this many horizons back, at most `MAX_HISTORY_POINTS`
/// points.
const HISTORY_HORIZONS: i64 = 4;
const MAX_HISTORY_POINTS: i64 = 400;
/// `GET /capacity` and the `hours_to_full` rules fit the last day at 5 minutes.
pub const CAPACITY_HISTORY_MS: i64 = 86_400_000;
const CAPACITY_STEP_MS: i64 = 300_000;

pub struct SeriesForecast {
    pub key: SeriesKey,
    /// `None` with too little history to fit (fewer than 10 points).
    pub fit: Option<Fit>,
    /// The time the newest stored value stands for (the middle of its step).
    pub last_ms: Option<i64>,
    pub points: Vec<(i64, Predicted)>,
}

pub struct Forecast {
    pub step_ms: i64,
    pub history_from_ms: i64,
    pub series: Vec<SeriesForecast>,
}

/// The step and history for a horizon.
fn plan(horizon_ms: i64) -> (i64, i64) {
    let step = STEPS_MS
        .iter()
        .copied()
        .find(|s| horizon_ms / s <= MAX_POINTS)
        .unwrap_or(STEPS_MS[STEPS_MS.len() - 1]);
    let history = (HISTORY_HORIZONS * horizon_ms).min(MAX_HISTORY_POINTS * step);
    (step, history.max(10 * step))
}

/// The line through `key`'s stored means over `[from, now]` at `step`,
/// each mean placed at the middle of its step; and that time of the last.
fn fit(
    store: &Store,
    id: u32,
    from: i64,
    now_ms: i64,
    step: i64,
) -> Result<(Option<Fit>, Option<i64>)> {
    let q = store.query(id, from, now_ms + 1, step)?;
    let pts: Vec<(i64, f64)> = q
        .points
        .iter()
        .filter_map(|(t, a)| a.map(|a| ((*t + q.step_ms / 2).min(now_ms), a.avg())))
        .collect();
    let last = pts.last().map(|(t, _)| *t);
    let xy: Vec<(f64, f64)> = pts
        .iter()
        .map(|(t, v)| ((t - now_ms) as f64 / 1000.0, *v))
        .collect();
    Ok((Fit::new(&xy), last))
}

/// The forecast of every series of `metric` with the `equal` labels,
/// `horizon_ms` ahead of `now_ms`.
pub fn forecast(
    store: &Store,
    metric: &str,
    equal: &[(&str, &str)],
    horizon_ms: i64,
    now_ms: i64,
) -> Result<Forecast> {
    let found: Vec<_> = store
        .find_with(metric, equal, |_| true)
        .into_iter()
        .filter(|(id, _)| !store.is_hist(*id))
        .collect();
    if found.len() > MAX_SERIES {
        return Err(Error::BadRequest(format!(
            "{} series match; a forecast takes at most {MAX_SERIES}: add label filters",
            found.len()
        )));
    }
    let (step, history) = plan(horizon_ms);
    let from = now_ms - history;
    let mut series = Vec::with_capacity(found.len());
    for (id, key) in found {
        let (fit, last_ms) = fit(store, id, from, now_ms, step)?;
        let points = match (&fit, last_ms) {
            (Some(f), Some(_)) => (1..=(horizon_ms + step - 1) / step)
                .map(|k| {
                    let t = now_ms + k * step;
                    (t, f.at((t - now_ms) as f64 / 1000.0 - f.last_x))
                })
                .collect(),
            _ => Vec::new(),
        };
        series.push(SeriesForecast {
            key,
            fit,
            last_ms,
            points,
        });
    }
    Ok(Forecast {
        step_ms: step,
        history_from_ms: from,
        series,
    })
}

/// One resource and when it is forecast full.
pub struct Resource {
    /// `disk` or `memory`.
    pub kind: &'static str,
    pub key: SeriesKey,
    /// The line's level now, percent used.
    pub used_percent: Option<f64>,
    /// Percent per hour (`None` with too little history).
    pub growth_per_hour: Option<f64>,
    /// Seconds until 100 %, with its 95 % interval; `None` when not
    /// filling (or too little history).
    pub to_full: Option<(f64, f64, f64)>,
    pub points: usize,
}

/// Every disk (by mount) and the memory, with the time each has left.
pub fn capacity(store: &Store, now_ms: i64) -> Result<Vec<Resource>> {
    let mut out = Vec::new();
    for (kind, m) in [
        ("disk", metric::DISK_USAGE_PERCENT),
        ("memory", metric::MEMORY_USAGE_PERCENT),
    ] {
        let mut found = store.find_with(m, &[], |_| true);
        found.sort_by(|a, b| a.1.cmp(&b.1));
        for (id, key) in found {
            let (fit, _) = fit(
                store,
                id,
                now_ms - CAPACITY_HISTORY_MS,
                now_ms,
                CAPACITY_STEP_MS,
            )?;
            out.push(Resource {
                kind,
                key,
                used_percent: fit.as_ref().map(|f| f.level),
                growth_per_hour: fit.as_ref().map(|f| f.slope * 3600.0),
                to_full: fit.as_ref().and_then(|f| f.seconds_to(100.0)),
                points: fit.as_ref().map_or(0, |f| f.points),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Layout;
    use std::time::Duration;

    const T0: i64 = 1_767_225_600_000;
    const HOUR: i64 = 3_600_000;

    #[test]
    fn a_disk_filling_linearly_is_forecast_full_at_the_right_time() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Layout::new(Duration::from_secs(5), 30), 1000).unwrap();
        let disk = SeriesKey::new(metric::DISK_USAGE_PERCENT).with("mount", "/data");
        let mem = SeriesKey::new(metric::MEMORY_USAGE_PERCENT);
        // 40 % to 64 % over a day (1 % an hour, wobbling), memory flat.
        let mut points = Vec::new();
        for i in 0..24 * 60 {
            let t = T0 + i * 60_000;
            let wobble = ((i * 7919) % 13) as f64 / 26.0 - 0.25;
            points.push((disk.clone(), t, 40.0 + i as f64 / 60.0 + wobble));
            points.push((mem.clone(), t, 55.0 + wobble));
        }
        store.record(points).unwrap();
        let now = T0 + 24 * HOUR;
        let r = capacity(&store, now).unwrap();
        assert_eq!(r.len(), 2);
        let d = &r[0];
        assert_eq!((d.kind, d.key.label("mount")), ("disk", Some("/data")));
        let (t, lo, hi) = d.to_full.unwrap();
        // Full at 100 %: 36 hours after the line's 64 % now.
        let want = 36.0 * 3600.0;
        assert!((t - want).abs() < 0.03 * want, "{t} vs {want}");
        assert!(lo <= want && want <= hi, "{lo}..{hi}");
        assert!((d.growth_per_hour.unwrap() - 1.0).abs() < 0.02);
        assert_eq!((r[1].kind, r[1].to_full), ("memory", None));
        // A forecast 12 hours ahead: the line, inside its intervals.
        let f = forecast(
            &store,
            metric::DISK_USAGE_PERCENT,
            &[("mount", "/data")],
            12 * HOUR,
            now,
        )
        .unwrap();
        assert_eq!(f.step_ms, 3_600_000);
        let s = &f.series[0];
        assert_eq!(s.fit.as_ref().unwrap().model(), "linear_trend");
        let (at, last) = *s.points.last().unwrap();
        assert_eq!(at, now + 12 * HOUR);
        // The hour means lie on the line 40 + t, less the wobble's mean (0.02).
        assert!((last.value - 75.98).abs() < 0.05, "{last:?}");
        assert!(
            last.lower95 < last.lower80 && last.lower80 < last.value,
            "{last:?}"
        );
        assert!(
            last.value < last.upper80 && last.upper80 < last.upper95,
            "{last:?}"
        );
        let first = s.points[0].1;
        assert!(first.upper95 - first.lower95 < last.upper95 - last.lower95);
        let many = forecast(&store, "nothing_here", &[], HOUR, now).unwrap();
        assert!(many.series.is_empty());
    }
}
