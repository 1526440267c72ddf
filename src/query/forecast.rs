//! Forecasts from the stored history (`GET /forecast`) and the time each
//! resource has until it is full (`GET /capacity`), with
//! `analysis::linear`'s robust line.

use crate::analysis::linear::{Fit, Predicted};
use crate::analysis::season::DayProfile;
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
    /// Whether the forecast follows the series' day (two days of history
    /// or more): the line is fitted to what is left after the day profile,
    /// which is added back to each point.
    pub daily: bool,
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

/// The day history a forecast's profile is learnt from, at 10 minutes.
const DAY_HISTORY_MS: i64 = 7 * 86_400_000;
const DAY_STEP_MS: i64 = 600_000;

/// The series' day profile from its last week at 10 minutes, when it
/// knows every time of day twice (`None` otherwise).
fn day_profile(store: &Store, id: u32, now_ms: i64) -> Result<Option<DayProfile>> {
    let q = store.query(id, now_ms - DAY_HISTORY_MS, now_ms + 1, DAY_STEP_MS)?;
    let mut day = DayProfile::new();
    for (t, v) in q.means(now_ms) {
        day.learn(t, v, None);
    }
    Ok(day.known().then_some(day))
}

/// The line through `key`'s stored means over `[from, now]` at `step`
/// (less the day profile's value at each, when there is one), each mean
/// placed at the middle of its step; and that time of the last.
fn fit(
    store: &Store,
    id: u32,
    (from, now_ms, step): (i64, i64, i64),
    day: Option<&DayProfile>,
) -> Result<(Option<Fit>, Option<i64>)> {
    let q = store.query(id, from, now_ms + 1, step)?;
    let typical = |t: i64| day.and_then(|d| d.interpolated(t)).unwrap_or(0.0);
    let pts: Vec<(i64, f64)> = q
        .means(now_ms)
        .into_iter()
        .map(|(t, v)| (t, v - typical(t)))
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
        let day = day_profile(store, id, now_ms)?;
        let (fit, last_ms) = fit(store, id, (from, now_ms, step), day.as_ref())?;
        let typical = |t: i64| day.as_ref().and_then(|d| d.interpolated(t)).unwrap_or(0.0);
        let points = match (&fit, last_ms) {
            (Some(f), Some(_)) => (1..=(horizon_ms + step - 1) / step)
                .map(|k| {
                    let t = now_ms + k * step;
                    let mut p = f.at((t - now_ms) as f64 / 1000.0 - f.last_x);
                    let d = typical(t);
                    p.value += d;
                    p.lower80 += d;
                    p.upper80 += d;
                    p.lower95 += d;
                    p.upper95 += d;
                    (t, p)
                })
                .collect(),
            _ => Vec::new(),
        };
        series.push(SeriesForecast {
            daily: day.is_some(),
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
            let span = (now_ms - CAPACITY_HISTORY_MS, now_ms, CAPACITY_STEP_MS);
            let (fit, _) = fit(store, id, span, None)?;
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
        assert!(!s.daily, "a day of history: no day profile yet");
    }

    #[test]
    fn with_three_days_of_history_a_daily_cycle_is_forecast_along_the_day() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Layout::new(Duration::from_secs(5), 30), 1000).unwrap();
        let key = SeriesKey::new("requests_per_second").with("service", "api");
        let day =
            |t: i64| 50.0 + 20.0 * ((t - T0) as f64 * std::f64::consts::TAU / 86_400_000.0).sin();
        let points: Vec<_> = (0..3 * 24 * 60)
            .map(|i| {
                let t = T0 + i * 60_000;
                (
                    key.clone(),
                    t,
                    day(t) + crate::analysis::noise(i as u64) * 0.5,
                )
            })
            .collect();
        store.record(points).unwrap();
        let now = T0 + 3 * 24 * HOUR;
        let f = forecast(&store, "requests_per_second", &[], 6 * HOUR, now).unwrap();
        let s = &f.series[0];
        assert!(s.daily);
        assert_eq!(s.fit.as_ref().unwrap().model(), "level");
        // Over the next 6 hours the series rises by 20: followed within 2.
        for (t, p) in &s.points {
            assert!(
                (p.value - day(*t)).abs() < 2.0,
                "at {t}: {p:?} vs {}",
                day(*t)
            );
            assert!(p.lower95 < day(*t) && day(*t) < p.upper95, "{p:?}");
        }
    }
}
