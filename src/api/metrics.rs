//! Application metrics in and out: `POST /ingest/metrics` (all-or-nothing
//! batches) and `GET /metrics/detailed` (series at a granularity, from the tier
//! that matches it).

use super::AppState;
use super::dto::*;
use super::params::{self, TimeRange};
use super::reject::ApiError;
use crate::query::{self, Grid};
use crate::store::{Aggregation, SeriesKey};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::collections::BTreeMap;
use warp::reply::{Reply, Response};

/// Most samples one ingest request may carry.
pub const MAX_BATCH: usize = 10_000;
use crate::time::MAX_FUTURE_MS;
/// Errors listed in one 400 answer.
const MAX_LISTED_ERRORS: usize = 10;

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IngestRequest {
    /// Each sample is parsed on its own, so one bad sample is named by its
    /// index; kept as its JSON text until then (a `Value` tree per sample
    /// was most of the daemon's allocations under steady ingest).
    #[schemars(with = "Vec<SampleIn>", length(max = MAX_BATCH))]
    samples: Vec<Box<serde_json::value::RawValue>>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct SampleIn {
    metric: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    value: f64,
    timestamp: Option<DateTime<Utc>>,
}

pub async fn ingest(
    state: AppState,
    who: Option<crate::auth::tokens::Principal>,
    req: IngestRequest,
) -> Result<Response, warp::Rejection> {
    // An ingest token (a platform service) may not write the daemon's own
    // series; an admin may (importing history), as may anyone when access
    // control is off (loopback only).
    let reserved_ok = who.is_none_or(|p| p.role == crate::auth::Role::Admin);
    if req.samples.len() > MAX_BATCH {
        return Err(ApiError::bad_request(format!(
            "samples: {} samples, at most {MAX_BATCH} per request",
            req.samples.len()
        )));
    }
    let now = Utc::now().timestamp_millis();
    let mut errors = Vec::new();
    let mut parsed = Vec::with_capacity(req.samples.len());
    for (i, raw) in req.samples.iter().enumerate() {
        match check_sample(raw.get(), now, reserved_ok) {
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
    drop(req);
    let store = state.store.clone();
    let (report, series) = super::blocking(move || {
        let series = parsed
            .iter()
            .map(|(k, _, _)| k)
            .collect::<std::collections::HashSet<_>>()
            .len();
        store.record(parsed).map(|r| (r, series))
    })
    .await?;
    Ok(warp::reply::json(&IngestResponse {
        accepted: report.stored,
        dropped: report.dropped,
        series,
    })
    .into_response())
}

/// Who writes `metric` when the daemon itself does: its series are not
/// taken from outside, or a push could forge what it measures (a pushed
/// `up{service="x"} 0` would raise a critical alert for a service that does
/// not exist). Each owner names its series once, beside the code that
/// writes them.
pub fn owner_of(metric: &str) -> Option<&'static str> {
    use crate::platform::{models, training};
    if crate::collect::system::metric::ALL.contains(&metric) {
        Some("the system collector")
    } else if crate::health::CHECK_SERIES.contains(&metric) {
        Some("the health checks")
    } else if models::SERIES.contains(&metric) || training::SERIES.contains(&metric) {
        Some("the ML platform state (POST /ingest/models, /ingest/training)")
    } else if metric == crate::collect::requests::REQUESTS_METRIC {
        Some("the request statistics (POST /ingest/requests)")
    } else if crate::anomalies::SERIES.contains(&metric) {
        Some("the anomaly watch")
    } else {
        None
    }
}

fn check_sample(
    raw: &str,
    now_ms: i64,
    reserved_ok: bool,
) -> Result<(SeriesKey, i64, f64), String> {
    let s: SampleIn = serde_json::from_str(raw).map_err(|e| {
        // The position is within this one sample's text: not useful.
        let text = e.to_string();
        match text.rfind(" at line ") {
            Some(at) if e.line() > 0 => text[..at].to_string(),
            _ => text,
        }
    })?;
    if !s.value.is_finite() {
        return Err("value must be a finite number".into());
    }
    if !reserved_ok && let Some(owner) = owner_of(&s.metric) {
        return Err(format!(
            "metric '{}' is reserved: {owner} writes it; push under another name (an admin token may import it)",
            s.metric
        ));
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
    // range/step points, the last one still filling; read from a tier that
    // still holds the whole range (a coarser step when the asked one's tier
    // has forgotten its start).
    let now = Utc::now().timestamp_millis();
    let g = Grid::ending_now(range.ms, step, now).reaching_back(state.store.layout(), now);
    let used = params::GRANULARITIES
        .iter()
        .find(|(_, ms)| *ms == g.step)
        .map_or_else(|| format!("{}s", g.step / 1000), |(l, _)| l.to_string());
    let store = state.store.clone();
    let (found, truncated) = super::blocking(move || {
        query::detailed::detailed(&store, q.metric.as_deref(), q.service.as_deref(), g)
    })
    .await?;
    let series = found
        .into_iter()
        .map(|s| DetailedSeries {
            metric: s.key.metric,
            labels: s.key.labels,
            tier: s.tier,
            points: s
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
        })
        .collect();
    Ok(warp::reply::json(&DetailedMetrics {
        time_range: range.label.to_string(),
        granularity: gran_label.to_string(),
        granularity_used: used,
        step_seconds: g.step / 1000,
        from: ts_ms(g.from),
        to: ts_ms(g.to),
        series,
        truncated,
    })
    .into_response())
}

pub async fn ingest_requests(
    state: AppState,
    batch: crate::collect::requests::RequestBatch,
) -> Result<Response, warp::Rejection> {
    let now = Utc::now().timestamp_millis();
    let samples = crate::collect::requests::to_samples(&batch, now).map_err(|errors| {
        let n = errors.len();
        let listed: Vec<String> = errors.into_iter().take(MAX_LISTED_ERRORS).collect();
        ApiError::bad_request(format!(
            "{n} invalid field(s), nothing was written: {}",
            listed.join("; ")
        ))
    })?;
    let store = state.store.clone();
    let service = batch.service.clone();
    let report = super::blocking(move || {
        let key =
            SeriesKey::new(crate::collect::requests::REQUESTS_METRIC).with("service", &service);
        let id = store.resolve_hist(&key)?;
        let hs: Vec<crate::store::HistSample> = samples
            .into_iter()
            .map(|(ts_ms, hist)| crate::store::HistSample {
                series: id,
                ts_ms,
                hist,
            })
            .collect();
        store.ingest_hist(&hs)
    })
    .await?;
    Ok(warp::reply::json(&RequestsIngestResponse {
        accepted: report.stored,
        dropped: report.dropped,
    })
    .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SummaryQuery {
    time_range: Option<String>,
    service: Option<String>,
}

pub async fn summary(state: AppState, q: SummaryQuery) -> Result<Response, warp::Rejection> {
    use crate::store::Hist;
    let range: TimeRange = params::time_range(q.time_range.as_deref(), "24h")?;
    let now = Utc::now().timestamp_millis();
    let store = state.store.clone();
    let only = q.service.clone();
    let sum =
        super::blocking(move || query::summary::summarize(&store, range.ms, only.as_deref(), now))
            .await?;
    let service_metrics = sum
        .services
        .iter()
        .map(|(name, s)| {
            let r = s.requests.as_ref();
            let entry = ServiceSummary {
                requests: r.map(|t| t.count),
                error_rate: r.and_then(Hist::error_percent),
                avg_response_time_ms: r.and_then(Hist::mean),
                uptime_percent: s.uptime_percent,
                p95_response_time_ms: r.and_then(|t| t.quantile(0.95)),
                p99_response_time_ms: r.and_then(|t| t.quantile(0.99)),
                throughput_per_second: s.throughput_per_second,
            };
            (name.clone(), entry)
        })
        .collect();
    let total = sum.total.as_ref();
    let body = MetricsSummary {
        time_range: range.label.to_string(),
        total_requests: total.map_or(0, |t| t.count),
        successful_requests: total.map_or(0, |t| t.count - t.errors),
        failed_requests: total.map_or(0, |t| t.errors),
        error_rate: total.and_then(Hist::error_percent),
        avg_response_time_ms: total.and_then(Hist::mean),
        p95_response_time_ms: total.and_then(|t| t.quantile(0.95)),
        p99_response_time_ms: total.and_then(|t| t.quantile(0.99)),
        throughput_per_second: sum.throughput_per_second,
        service_metrics,
        trends: SummaryTrends {
            requests_trend: sum.trends.requests,
            response_time_trend: sum.trends.response_time,
            error_rate_trend: sum.trends.error_rate,
        },
        trends_basis: TrendsBasis {
            method: trend_method(),
            step_seconds: sum.grid.step / 1000,
            requests_points: sum.trend_points.requests,
            response_time_points: sum.trend_points.response_time,
            error_rate_points: sum.trend_points.error_rate,
            error_rate_floor_percent: query::summary::ERROR_RATE_FLOOR,
        },
        from: ts_ms(sum.grid.from),
        to: ts_ms(sum.grid.to),
    };
    Ok(warp::reply::json(&body).into_response())
}
