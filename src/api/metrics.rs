//! Application metrics in and out: `POST /ingest/metrics` (all-or-nothing
//! batches) and `GET /metrics/detailed` (series at a granularity, from the tier
//! that matches it).

use super::AppState;
use super::dto::*;
use super::params::{self, TimeRange};
use super::reject::{ApiError, fail};
use crate::store::{Aggregation, Sample, SeriesKey};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::collections::BTreeMap;
use warp::reply::{Reply, Response};

/// Most samples one ingest request may carry.
pub const MAX_BATCH: usize = 10_000;
/// How far in the future a sample timestamp may be (clock skew allowance).
pub const MAX_FUTURE_MS: i64 = 5 * 60_000;
/// Errors listed in one 400 answer.
const MAX_LISTED_ERRORS: usize = 10;
/// Most series one `/metrics/detailed` answer carries.
pub const MAX_DETAILED_SERIES: usize = 100;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestRequest {
    samples: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SampleIn {
    metric: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    value: f64,
    timestamp: Option<DateTime<Utc>>,
}

pub async fn ingest(state: AppState, req: IngestRequest) -> Result<Response, warp::Rejection> {
    if req.samples.len() > MAX_BATCH {
        return Err(ApiError::bad_request(format!(
            "samples: {} samples, at most {MAX_BATCH} per request",
            req.samples.len()
        )));
    }
    let now = Utc::now().timestamp_millis();
    let mut errors = Vec::new();
    let mut parsed = Vec::with_capacity(req.samples.len());
    for (i, raw) in req.samples.into_iter().enumerate() {
        match check_sample(raw, now) {
            Ok(s) => parsed.push(s),
            Err(e) => errors.push(format!("samples[{i}]: {e}")),
        }
    }
    if !errors.is_empty() {
        let n = errors.len();
        errors.truncate(MAX_LISTED_ERRORS);
        return Err(ApiError::bad_request(format!(
            "{n} invalid sample(s), nothing was written: {}",
            errors.join("; ")
        )));
    }
    let store = state.store.clone();
    let result = tokio::task::spawn_blocking(move || {
        let keys: Vec<SeriesKey> = parsed.iter().map(|(k, _, _)| k.clone()).collect();
        let ids = store.resolve_all(&keys)?;
        let distinct = ids.iter().collect::<std::collections::HashSet<_>>().len();
        let samples: Vec<Sample> = ids
            .iter()
            .zip(&parsed)
            .map(|(id, (_, ts_ms, value))| Sample {
                series: *id,
                ts_ms: *ts_ms,
                value: *value,
            })
            .collect();
        store.ingest(&samples).map(|r| (r, distinct))
    })
    .await
    .map_err(|e| fail(crate::error::Error::Internal(e.to_string())))?;
    let (report, series) = result.map_err(fail)?;
    Ok(warp::reply::json(&IngestResponse {
        accepted: report.stored,
        dropped: report.dropped,
        series,
    })
    .into_response())
}

fn check_sample(raw: serde_json::Value, now_ms: i64) -> Result<(SeriesKey, i64, f64), String> {
    let s: SampleIn = serde_json::from_value(raw).map_err(|e| e.to_string())?;
    if !s.value.is_finite() {
        return Err("value must be a finite number".into());
    }
    let key = SeriesKey {
        metric: s.metric,
        labels: s.labels,
    };
    key.validate()?;
    let ts_ms = s.timestamp.map(|t| t.timestamp_millis()).unwrap_or(now_ms);
    if ts_ms > now_ms + MAX_FUTURE_MS {
        return Err("timestamp is more than 5 minutes in the future".into());
    }
    Ok((key, ts_ms, s.value))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetailedQuery {
    service: Option<String>,
    metric: Option<String>,
    time_range: Option<String>,
    granularity: Option<String>,
}

pub async fn detailed(state: AppState, q: DetailedQuery) -> Result<Response, warp::Rejection> {
    let range: TimeRange = params::time_range(q.time_range.as_deref(), "24h")?;
    let (gran_label, step) = params::granularity(q.granularity.as_deref())?;
    // The grid ends with the step that holds "now", so a range always has
    // range/step points, the last one still filling.
    let now = Utc::now().timestamp_millis();
    let to = crate::store::tier::ceil_div(now + 1, step) * step;
    let from = to - range.ms;
    let store = state.store.clone();
    let series = tokio::task::spawn_blocking(move || {
        let labels: Vec<(&str, &str)> = q
            .service
            .as_deref()
            .map(|s| ("service", s))
            .into_iter()
            .collect();
        let mut found = store.find(q.metric.as_deref(), &labels);
        found.sort_by(|a, b| a.1.cmp(&b.1));
        let truncated = found.len() > MAX_DETAILED_SERIES;
        found.truncate(MAX_DETAILED_SERIES);
        let mut out = Vec::with_capacity(found.len());
        for (id, key) in found {
            let r = store.query(id, from, to, step)?;
            out.push(DetailedSeries {
                metric: key.metric,
                labels: key.labels,
                tier: r.tier,
                points: r
                    .points
                    .iter()
                    .map(|(t, a)| DetailedPoint {
                        timestamp: ts_ms(*t),
                        avg: a.map(|a| a.get(Aggregation::Avg)),
                        min: a.map(|a| a.min),
                        max: a.map(|a| a.max),
                        count: a.map_or(0, |a| a.count as u64),
                    })
                    .collect(),
            });
        }
        Ok::<_, crate::error::Error>((out, truncated))
    })
    .await
    .map_err(|e| fail(crate::error::Error::Internal(e.to_string())))?;
    let (series, truncated) = series.map_err(fail)?;
    Ok(warp::reply::json(&DetailedMetrics {
        time_range: range.label.to_string(),
        granularity: gran_label.to_string(),
        from: ts_ms(from),
        to: ts_ms(to),
        series,
        truncated,
    })
    .into_response())
}
