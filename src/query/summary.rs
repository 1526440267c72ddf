//! The request summary of `/metrics/summary`: every service's request
//! statistics merged over a time range (histograms merged, never averaged),
//! its up-time, and the trends of the merged statistics step by step.

use super::Grid;
use crate::analysis::trend::{Trend, trend, trend_with_floor};
use crate::collect::requests::REQUESTS_METRIC;
use crate::error::Result;
use crate::health::UP_METRIC;
use crate::store::{Hist, SeriesKey, Store};
use std::collections::{BTreeMap, BTreeSet};

/// The step a summary reads at: fine enough for trends, coarse enough that
/// a 30-day summary merges at most 720 hourly slots per service.
pub fn step_for(range_ms: i64) -> i64 {
    match range_ms {
        r if r <= 6 * 3_600_000 => 60_000,
        r if r <= 24 * 3_600_000 => 300_000,
        _ => 3_600_000,
    }
}

/// An error rate must move by at least this many percentage points over
/// the window to be a trend: a relative band alone flips on noise near 0 %
/// (0.1 % to 0.2 % is "up 100 %").
pub const ERROR_RATE_FLOOR: f64 = 1.0;

/// One service over the range.
#[derive(Clone, Debug, Default)]
pub struct ServiceStats {
    /// Its request statistics merged (`None`: none recorded).
    pub requests: Option<Hist>,
    /// Requests per second over the time its statistics cover (`None`:
    /// none recorded).
    pub throughput_per_second: Option<f64>,
    /// Percent of the time its checks found it up (`query::uptime`;
    /// `None`: no check).
    pub uptime_percent: Option<f64>,
}

/// Trends of the merged statistics, step by step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Trends {
    pub requests: Trend,
    pub response_time: Trend,
    pub error_rate: Trend,
}

#[derive(Clone, Debug)]
pub struct Summary {
    pub grid: Grid,
    pub services: BTreeMap<String, ServiceStats>,
    /// Every service's statistics merged.
    pub total: Option<Hist>,
    /// Every service's requests per second, over the time from the first
    /// statistics of any service to now (`None`: none recorded).
    pub throughput_per_second: Option<f64>,
    pub trends: Trends,
    /// How many steps each trend was computed from: complete steps only
    /// (the step still filling would read as a drop in traffic), with a
    /// value.
    pub trend_points: TrendPoints,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrendPoints {
    pub requests: usize,
    pub response_time: usize,
    pub error_rate: usize,
}

/// The shortest time a rate is divided by: one raw step, so a service that
/// reported a moment ago does not read as a huge rate.
fn covered_secs(first_ms: i64, end_ms: i64, raw_step_ms: i64) -> f64 {
    (end_ms - first_ms).max(raw_step_ms) as f64 / 1000.0
}

/// The time of the first statistics in `points` (on a grid of `step`),
/// refined to the finest tier that still holds it.
fn first_data(
    store: &Store,
    id: crate::store::SeriesId,
    points: &[(i64, Option<Hist>)],
    step: i64,
    now_ms: i64,
) -> Result<Option<i64>> {
    let Some(t0) = points.iter().find(|(_, h)| h.is_some()).map(|(t, _)| *t) else {
        return Ok(None);
    };
    let fine = Grid {
        from: t0,
        to: t0 + step,
        step: store.layout().raw().step_ms,
    }
    .reaching_back(store.layout(), now_ms);
    let r = store.query_hist(id, t0, t0 + step, fine.step)?;
    Ok(Some(
        r.points
            .iter()
            .find(|(_, h)| h.is_some())
            .map_or(t0, |(t, _)| (*t).max(t0)),
    ))
}

/// The summary of the `range_ms` ending with the step holding `now_ms`, of
/// every service with requests or health checks, or of `only`.
pub fn summarize(store: &Store, range_ms: i64, only: Option<&str>, now_ms: i64) -> Result<Summary> {
    let grid = Grid::ending_now(range_ms, step_for(range_ms), now_ms);
    let Grid { from, to, step } = grid;
    let mut names: BTreeSet<String> = BTreeSet::new();
    for metric in [REQUESTS_METRIC, UP_METRIC] {
        for (_, k) in store.find(Some(metric), &[]) {
            if let Some(s) = k.label("service") {
                names.insert(s.to_string());
            }
        }
    }
    names.retain(|n| only.is_none_or(|o| o == n));
    let mut services = BTreeMap::new();
    let mut per_step: BTreeMap<i64, Hist> = BTreeMap::new();
    let mut total: Option<Hist> = None;
    let end = to.min(now_ms);
    let raw_step = store.layout().raw().step_ms;
    let mut first_of_all: Option<i64> = None;
    for name in names {
        let (hist, first) =
            match store.lookup(&SeriesKey::new(REQUESTS_METRIC).with("service", &name)) {
                Some(id) if store.is_hist(id) => {
                    let h = store.query_hist(id, from, to, step)?;
                    let first = first_data(store, id, &h.points, step, now_ms)?;
                    (Some(h), first)
                }
                _ => (None, None),
            };
        if let Some(f) = first {
            first_of_all = Some(first_of_all.map_or(f, |a: i64| a.min(f)));
        }
        let requests = hist.as_ref().and_then(|h| h.total());
        let throughput_per_second = requests
            .as_ref()
            .zip(first)
            .map(|(r, f)| r.count as f64 / covered_secs(f, end, raw_step));
        for (t, h) in hist.iter().flat_map(|h| h.points.iter()) {
            if let Some(h) = h {
                per_step
                    .entry(*t)
                    .and_modify(|m| m.merge(h))
                    .or_insert_with(|| h.clone());
            }
        }
        if let Some(r) = &requests {
            match &mut total {
                Some(a) => a.merge(r),
                None => total = Some(r.clone()),
            }
        }
        let uptime_percent = match store.lookup(&SeriesKey::new(UP_METRIC).with("service", &name)) {
            Some(id) => super::uptime::uptime_percent(store, id, from, to, now_ms)?,
            None => None,
        };
        services.insert(
            name,
            ServiceStats {
                requests,
                throughput_per_second,
                uptime_percent,
            },
        );
    }
    // Complete steps only: the step still filling has fewer requests.
    per_step.retain(|t, _| t + step <= now_ms);
    let pts = |f: &dyn Fn(&Hist) -> Option<f64>| -> Vec<(f64, f64)> {
        per_step
            .iter()
            .filter_map(|(t, h)| f(h).map(|v| (*t as f64 / 1000.0, v)))
            .collect()
    };
    let (requests, response_time, error_rate) = (
        pts(&|h| Some(h.count as f64)),
        pts(&Hist::mean),
        pts(&Hist::error_percent),
    );
    let trends = Trends {
        requests: trend(&requests),
        response_time: trend(&response_time),
        error_rate: trend_with_floor(&error_rate, ERROR_RATE_FLOOR),
    };
    let trend_points = TrendPoints {
        requests: requests.len(),
        response_time: response_time.len(),
        error_rate: error_rate.len(),
    };
    let throughput_per_second = total
        .as_ref()
        .zip(first_of_all)
        .map(|(t, f)| t.count as f64 / covered_secs(f, end, raw_step));
    Ok(Summary {
        grid,
        services,
        total,
        throughput_per_second,
        trends,
        trend_points,
    })
}
