//! The series of `/metrics/detailed`: every stored series matching a metric
//! and a service, at most `MAX_SERIES` of them, with each point's
//! aggregate on a grid.

use super::Grid;
use crate::error::Result;
use crate::store::{Agg, SeriesKey, Store};

/// Most series one answer carries.
pub const MAX_SERIES: usize = 100;

/// One series' points.
#[derive(Clone, Debug)]
pub struct SeriesPoints {
    pub key: SeriesKey,
    /// The tier the points were read from: raw, 1m or 1h.
    pub tier: &'static str,
    pub points: Vec<(i64, Option<Agg>)>,
}

/// The matching series in key order, and whether more matched than
/// `MAX_SERIES`.
pub fn detailed(
    store: &Store,
    metric: Option<&str>,
    service: Option<&str>,
    g: Grid,
) -> Result<(Vec<SeriesPoints>, bool)> {
    let labels: Vec<(&str, &str)> = service.map(|s| ("service", s)).into_iter().collect();
    let mut found = store.find(metric, &labels);
    found.sort_by(|a, b| a.1.cmp(&b.1));
    let truncated = found.len() > MAX_SERIES;
    found.truncate(MAX_SERIES);
    let mut out = Vec::with_capacity(found.len());
    for (id, key) in found {
        let r = store.query(id, g.from, g.to, g.step)?;
        out.push(SeriesPoints {
            key,
            tier: r.tier,
            points: r.points,
        });
    }
    Ok((out, truncated))
}
