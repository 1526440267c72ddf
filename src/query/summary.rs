//! The request summary of `/metrics/summary`: every service's request
//! statistics merged over a time range (histograms merged, never averaged),
//! its up-time, and the trends of the merged statistics step by step.

use super::Grid;
use crate::analysis::trend::{Trend, trend};
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

/// One service over the range.
#[derive(Clone, Debug, Default)]
pub struct ServiceStats {
    /// Its request statistics merged (`None`: none recorded).
    pub requests: Option<Hist>,
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
    pub trends: Trends,
    /// The time rates are divided by, in seconds.
    pub seconds: f64,
}

impl Summary {
    /// Requests per second of `h` over the range.
    pub fn throughput(&self, h: Option<&Hist>) -> f64 {
        h.map_or(0.0, |h| h.count as f64 / self.seconds)
    }
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
    for name in names {
        let hist = match store.lookup(&SeriesKey::new(REQUESTS_METRIC).with("service", &name)) {
            Some(id) if store.is_hist(id) => Some(store.query_hist(id, from, to, step)?),
            _ => None,
        };
        let requests = hist.as_ref().and_then(|h| h.total());
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
                uptime_percent,
            },
        );
    }
    let pts = |f: &dyn Fn(&Hist) -> Option<f64>| -> Vec<(f64, f64)> {
        per_step
            .iter()
            .filter_map(|(t, h)| f(h).map(|v| (*t as f64 / 1000.0, v)))
            .collect()
    };
    let trends = Trends {
        requests: trend(&pts(&|h| Some(h.count as f64))),
        response_time: trend(&pts(&Hist::mean)),
        error_rate: trend(&pts(&Hist::error_percent)),
    };
    Ok(Summary {
        grid,
        services,
        total,
        trends,
        seconds: range_ms as f64 / 1000.0,
    })
}
