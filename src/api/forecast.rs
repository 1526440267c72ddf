//! `GET /forecast` (a metric's predicted points with 80 % and 95 %
//! intervals) and `GET /capacity` (each disk's and the memory's time to
//! full).

use super::dto::{Capacity, CapacityResource, ForecastPoint, ForecastSeries, ForecastView};
use super::params;
use super::reject::ApiError;
use super::{AppState, blocking};
use crate::query::forecast;
use crate::time::ts_ms;
use chrono::Utc;
use serde::Deserialize;
use warp::reply::{Reply, Response};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForecastQuery {
    metric: Option<String>,
    service: Option<String>,
    labels: Option<String>,
    horizon: Option<String>,
}

pub async fn get(state: AppState, q: ForecastQuery) -> Result<Response, warp::Rejection> {
    let metric = q
        .metric
        .ok_or_else(|| ApiError::bad_request("metric is required".to_string()))?;
    crate::names::check_metric(&metric)
        .map_err(|e| ApiError::bad_request(format!("metric: {e}")))?;
    let horizon = params::time_range(q.horizon.as_deref(), "24h")
        .map_err(|_| ApiError::bad_request("horizon is one of 1h, 6h, 24h, 7d".to_string()))?;
    if horizon.ms > forecast::MAX_HORIZON_MS {
        return Err(ApiError::bad_request(
            "horizon is one of 1h, 6h, 24h, 7d".to_string(),
        ));
    }
    let mut labels = crate::names::label_pairs(q.labels.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("labels: {e}")))?;
    if let Some(s) = q.service {
        labels.push(("service".to_string(), s));
    }
    let now = Utc::now().timestamp_millis();
    let store = state.store.clone();
    let m = metric.clone();
    let f = blocking(move || {
        let equal: Vec<(&str, &str)> = labels
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        forecast::forecast(&store, &m, &equal, horizon.ms, now)
    })
    .await?;
    let series = f
        .series
        .into_iter()
        .map(|s| ForecastSeries {
            labels: s.key.labels,
            model: s.fit.as_ref().map(|f| {
                if s.daily {
                    format!("{}+daily", f.model())
                } else {
                    f.model().to_string()
                }
            }),
            fitted_points: s.fit.as_ref().map_or(0, |f| f.points),
            slope_per_hour: s.fit.as_ref().map(|f| f.slope * 3600.0),
            last_value_at: s.last_ms.map(ts_ms),
            points: s
                .points
                .iter()
                .map(|(t, p)| ForecastPoint {
                    timestamp: ts_ms(*t),
                    value: p.value,
                    lower_80: p.lower80,
                    upper_80: p.upper80,
                    lower_95: p.lower95,
                    upper_95: p.upper95,
                })
                .collect(),
        })
        .collect();
    Ok(warp::reply::json(&ForecastView {
        metric,
        horizon: horizon.label.to_string(),
        step_seconds: f.step_ms / 1000,
        history_from: ts_ms(f.history_from_ms),
        series,
    })
    .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapacityQuery {}

pub async fn capacity(state: AppState, _q: CapacityQuery) -> Result<Response, warp::Rejection> {
    let now = Utc::now().timestamp_millis();
    let store = state.store.clone();
    let found = blocking(move || forecast::capacity(&store, now)).await?;
    let at = |s: f64| ts_ms(now + (s * 1000.0).min(1e15) as i64);
    let resources = found
        .into_iter()
        .map(|r| CapacityResource {
            resource: r.kind.to_string(),
            metric: r.key.metric,
            labels: r.key.labels,
            used_percent: r.used_percent,
            growth_percent_per_hour: r.growth_per_hour,
            filling: r.to_full.is_some(),
            seconds_to_full: r.to_full.map(|t| t.0),
            seconds_to_full_low: r.to_full.map(|t| t.1),
            seconds_to_full_high: r.to_full.map(|t| t.2),
            full_at: r.to_full.map(|t| at(t.0)),
            fitted_points: r.points,
        })
        .collect();
    Ok(warp::reply::json(&Capacity {
        history_hours: forecast::CAPACITY_HISTORY_MS / 3_600_000,
        resources,
    })
    .into_response())
}
