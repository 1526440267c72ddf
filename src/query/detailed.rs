//! The series of `/metrics/detailed`: every stored series matching a metric
//! and a service, at most `MAX_SERIES` of them, with each point's
//! aggregate on a grid.

use super::Grid;
use crate::error::Result;
use crate::store::{Agg, SeriesKey, Store};

/// Most series one answer carries.
pub const MAX_SERIES: usize = 100;
/// Most points (series times points per series) one answer carries: about
/// 25 MB of JSON. A larger ask is a 400 naming what would fit.
pub const MAX_POINTS: usize = 250_000;

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
    let points = found.len() * g.len();
    if points > MAX_POINTS {
        let fits = |step_ms: i64| {
            found.len() * (((g.to - g.from) / step_ms).max(1) as usize) <= MAX_POINTS
        };
        let advice = [(300_000, "5m"), (3_600_000, "1h")]
            .into_iter()
            .find(|(step, _)| *step > g.step && fits(*step))
            .map_or_else(
                || "filter by metric or service".to_string(),
                |(_, label)| format!("use granularity={label} or filter by metric or service"),
            );
        return Err(crate::error::Error::BadRequest(format!(
            "this answer would hold {points} points ({} series x {}), at most {MAX_POINTS}: {advice}",
            found.len(),
            g.len()
        )));
    }
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
