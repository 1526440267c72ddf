//! The recent numbers of the dashboard: trends over the last half hour and
//! each service's requests over the last five minutes.

use crate::analysis::trend::{Trend, trend};
use crate::collect::requests::REQUESTS_METRIC;
use crate::error::Result;
use crate::store::{Agg, Hist, SeriesId, SeriesKey, Store};
use std::collections::BTreeMap;

/// The window of the per-service error rate and throughput.
pub const REQUEST_WINDOW_MS: i64 = 5 * 60_000;
/// The window trends are computed over.
pub const TREND_WINDOW_MS: i64 = 30 * 60_000;
const TREND_STEP_MS: i64 = 60_000;

/// The trend of the merged per-minute points of every series in `ids`
/// over the `TREND_WINDOW_MS` before `now_ms`.
pub fn trend_of(store: &Store, ids: &[SeriesId], now_ms: i64) -> Result<Trend> {
    let mut merged: BTreeMap<i64, Agg> = BTreeMap::new();
    for id in ids {
        for (t, a) in store
            .query(*id, now_ms - TREND_WINDOW_MS, now_ms, TREND_STEP_MS)?
            .points
        {
            if let Some(a) = a {
                merged.entry(t).and_modify(|m| m.merge(&a)).or_insert(a);
            }
        }
    }
    let points: Vec<(f64, f64)> = merged
        .iter()
        .map(|(t, a)| (*t as f64 / 1000.0, a.avg()))
        .collect();
    Ok(trend(&points))
}

/// A service's request statistics over the `REQUEST_WINDOW_MS` before
/// `now_ms`, if it has any.
pub fn requests(store: &Store, service: &str, now_ms: i64) -> Option<Hist> {
    let key = SeriesKey::new(REQUESTS_METRIC).with("service", service);
    let id = store.lookup(&key).filter(|id| store.is_hist(*id))?;
    let step = store.layout().raw().step_ms;
    store
        .query_hist(id, now_ms - REQUEST_WINDOW_MS, now_ms, step)
        .ok()?
        .total()
}

/// Requests per second of `h` over the request window.
pub fn throughput(h: &Hist) -> f64 {
    h.count as f64 * 1000.0 / REQUEST_WINDOW_MS as f64
}
