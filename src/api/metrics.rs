//! Application metrics in and out: `POST /ingest/metrics` (all-or-nothing
//! batches) and `GET /metrics/detailed` (series at a granularity, from the tier
//! that matches it).

use super::AppState;
use super::dto::*;
use super::params::{self, TimeRange};
use super::reject::ApiError;
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
/// Most series one `/metrics/detailed` answer carries.
pub const MAX_DETAILED_SERIES: usize = 100;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestRequest {
    /// Each sample is parsed on its own, so one bad sample is named by its
    /// index; kept as its JSON text until then (a `Value` tree per sample
    /// was most of the daemon's allocations under steady ingest).
    samples: Vec<Box<serde_json::value::RawValue>>,
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
    for (i, raw) in req.samples.iter().enumerate() {
        match check_sample(raw.get(), now) {
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

fn check_sample(raw: &str, now_ms: i64) -> Result<(SeriesKey, i64, f64), String> {
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
    let crate::query::Grid { from, to, .. } = crate::query::Grid::ending_now(range.ms, step, now);
    let store = state.store.clone();
    let (series, truncated) = super::blocking(move || {
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
        Ok((out, truncated))
    })
    .await?;
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
    Ok(warp::reply::json(
        &serde_json::json!({"accepted": report.stored, "dropped": report.dropped}),
    )
    .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SummaryQuery {
    time_range: Option<String>,
    service: Option<String>,
}

/// The step a summary reads at: fine enough for trends, coarse enough that
/// a 30-day summary merges at most 720 hourly slots per service.
fn summary_step(range_ms: i64) -> i64 {
    match range_ms {
        r if r <= 6 * 3_600_000 => 60_000,
        r if r <= 24 * 3_600_000 => 300_000,
        _ => 3_600_000,
    }
}

pub async fn summary(state: AppState, q: SummaryQuery) -> Result<Response, warp::Rejection> {
    use crate::analysis::trend::trend;
    use crate::store::Hist;
    let range: TimeRange = params::time_range(q.time_range.as_deref(), "24h")?;
    let step = summary_step(range.ms);
    let now = Utc::now().timestamp_millis();
    let crate::query::Grid { from, to, .. } = crate::query::Grid::ending_now(range.ms, step, now);
    let store = state.store.clone();
    let only = q.service.clone();
    let (services, per_point) = super::blocking(move || {
        let requests = crate::collect::requests::REQUESTS_METRIC;
        let mut names: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
        for metric in [requests, crate::health::UP_METRIC] {
            for (_, k) in store.find(Some(metric), &[]) {
                if let Some(s) = k.label("service") {
                    names.insert(s.to_string());
                }
            }
        }
        names.retain(|n| only.as_deref().is_none_or(|o| o == n));
        let mut services = BTreeMap::new();
        let mut per_point: BTreeMap<i64, Hist> = BTreeMap::new();
        let secs = range.ms as f64 / 1000.0;
        for name in names {
            let hist = match store.lookup(&SeriesKey::new(requests).with("service", &name)) {
                Some(id) if store.is_hist(id) => Some(store.query_hist(id, from, to, step)?),
                _ => None,
            };
            let total = hist.as_ref().and_then(|h| h.total());
            for (t, h) in hist.iter().flat_map(|h| h.points.iter()) {
                if let Some(h) = h {
                    per_point
                        .entry(*t)
                        .and_modify(|m| m.merge(h))
                        .or_insert_with(|| h.clone());
                }
            }
            let uptime = match store
                .lookup(&SeriesKey::new(crate::health::UP_METRIC).with("service", &name))
            {
                Some(id) => store
                    .query(id, from, to, step)?
                    .total()
                    .map(|a| a.avg() * 100.0),
                None => None,
            };
            services.insert(name, (total, uptime, secs));
        }
        Ok((services, per_point))
    })
    .await?;

    let secs = range.ms as f64 / 1000.0;
    let rate = Hist::error_percent;
    let mut all: Option<Hist> = None;
    let mut service_metrics = BTreeMap::new();
    for (name, (total, uptime, secs)) in services {
        if let Some(t) = &total {
            match &mut all {
                Some(a) => a.merge(t),
                None => all = Some(t.clone()),
            }
        }
        service_metrics.insert(
            name,
            ServiceSummary {
                requests: total.as_ref().map_or(0, |t| t.count),
                error_rate: total.as_ref().and_then(rate),
                avg_response_time_ms: total.as_ref().and_then(Hist::mean),
                uptime_percent: uptime,
                p95_response_time_ms: total.as_ref().and_then(|t| t.quantile(0.95)),
                p99_response_time_ms: total.as_ref().and_then(|t| t.quantile(0.99)),
                throughput_per_second: total.as_ref().map_or(0.0, |t| t.count as f64 / secs),
            },
        );
    }
    let pts = |f: &dyn Fn(&Hist) -> Option<f64>| -> Vec<(f64, f64)> {
        per_point
            .iter()
            .filter_map(|(t, h)| f(h).map(|v| (*t as f64 / 1000.0, v)))
            .collect()
    };
    let total = all.as_ref();
    let body = MetricsSummary {
        time_range: range.label.to_string(),
        total_requests: total.map_or(0, |t| t.count),
        successful_requests: total.map_or(0, |t| t.count - t.errors),
        failed_requests: total.map_or(0, |t| t.errors),
        error_rate: total.and_then(rate),
        avg_response_time_ms: total.and_then(Hist::mean),
        p95_response_time_ms: total.and_then(|t| t.quantile(0.95)),
        p99_response_time_ms: total.and_then(|t| t.quantile(0.99)),
        throughput_per_second: total.map_or(0.0, |t| t.count as f64 / secs),
        service_metrics,
        trends: SummaryTrends {
            requests_trend: trend(&pts(&|h| Some(h.count as f64))),
            response_time_trend: trend(&pts(&Hist::mean)),
            error_rate_trend: trend(&pts(&rate)),
        },
        from: ts_ms(from),
        to: ts_ms(to),
    };
    Ok(warp::reply::json(&body).into_response())
}
