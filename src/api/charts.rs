//! Chart.js-ready JSON charts (JSON only): `/charts/model-loading`,
//! `/charts/training-progress`, `/charts/system-metrics`,
//! `/charts/service-health`, `/charts/alerts-timeline`. The query room
//! picks the series and reads their lines (`query::charts`); a handler
//! checks its parameters and lays the lines out as datasets. Answers are
//! cached until a series they read is written (`cache.rs`).

use super::AppState;
use super::dto::{self, chart_labels, datasets};
use super::params::{self, TimeRange};
use super::reject::ApiError;
use crate::query::Grid;
use crate::query::charts::{self as query, trend_of};
use crate::store::{Aggregation, SeriesId, Store};
use serde::Deserialize;
use warp::reply::Response;

/// A chart's grid, ending now.
fn grid(store: &Store, range: TimeRange) -> Grid {
    query::grid(store.layout(), range.ms, now())
}

fn now() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The fingerprint of a chart over `ids` on grid `g`, with `extra` numbers
/// that are not in the store.
fn fingerprint(store: &Store, g: Grid, ids: &[Option<SeriesId>], extra: &[i64]) -> Vec<i64> {
    let known: Vec<SeriesId> = ids.iter().flatten().copied().collect();
    let mut versions = store.versions(&known).into_iter();
    let mut f = vec![g.from, g.step];
    f.extend_from_slice(extra);
    for id in ids {
        match id {
            Some(id) => f.extend([*id as i64, versions.next().unwrap_or(0) as i64]),
            None => f.push(-1),
        }
    }
    f
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChartQuery {
    time_range: Option<String>,
    format: Option<String>,
    metric: Option<String>,
    service: Option<String>,
    model_name: Option<String>,
    severity: Option<String>,
}

fn check_format(f: Option<&str>) -> Result<(), warp::Rejection> {
    match f {
        None | Some("json") => Ok(()),
        Some("png" | "svg") => Err(ApiError::bad_request(
            "format: charts are served as JSON only (Chart.js-ready); render them in the browser",
        )),
        Some(other) => Err(ApiError::bad_request(format!(
            "format '{other}' is not one of json"
        ))),
    }
}

/// Checks the parameters every chart shares: the format, no parameter the
/// chart does not take (`allowed` lists its own), and the time range
/// (`default_range` when absent).
fn check(
    q: &ChartQuery,
    allowed: &[&str],
    default_range: &'static str,
) -> Result<TimeRange, warp::Rejection> {
    check_format(q.format.as_deref())?;
    for (name, set) in [
        ("metric", q.metric.is_some()),
        ("service", q.service.is_some()),
        ("model_name", q.model_name.is_some()),
        ("severity", q.severity.is_some()),
    ] {
        if set && !allowed.contains(&name) {
            return Err(ApiError::bad_request(format!(
                "this chart takes no '{name}' parameter (it takes time_range, format{})",
                allowed.iter().map(|a| format!(", {a}")).collect::<String>()
            )));
        }
    }
    params::time_range(q.time_range.as_deref(), default_range)
}

pub async fn model_loading(
    state: AppState,
    q: ChartQuery,
    want_gzip: bool,
) -> Result<Response, warp::Rejection> {
    let range = check(&q, &[], "24h")?;
    let store = state.store.clone();
    let total_models = state.platform.models.len();
    let g = grid(&store, range);
    let sel = query::model_loading(&store);
    let f = fingerprint(&store, g, &sel.ids(), &[total_models as i64]);
    let key = format!("model-loading {}", range.label);
    super::cache::cached(&state, want_gzip, key, f, move || {
        let lines = sel.levels(&store, g)?;
        let loading_trend = trend_of(&lines[1].data);
        Ok(dto::ModelLoadingChart {
            labels: chart_labels(g),
            datasets: datasets(lines),
            time_range: range.label,
            total_models,
            loading_trend,
        })
    })
    .await
}

pub async fn training_progress(
    state: AppState,
    q: ChartQuery,
    want_gzip: bool,
) -> Result<Response, warp::Rejection> {
    let range = check(&q, &["model_name"], "24h")?;
    let store = state.store.clone();
    let model = q.model_name.clone();
    let jobs = state.platform.jobs.all();
    let ours: Vec<_> = jobs
        .iter()
        .filter(|j| model.as_deref().is_none_or(|m| j.model_name == m))
        .collect();
    let total_jobs = ours.len();
    let running = ours
        .iter()
        .filter(|j| j.status == crate::platform::training::JobStatus::Running)
        .count();
    let g = grid(&store, range);
    let sel = query::training_progress(&store, model.as_deref());
    let f = fingerprint(&store, g, &sel.ids(), &[total_jobs as i64, running as i64]);
    let key = format!("training-progress {} {model:?}", range.label);
    super::cache::cached(&state, want_gzip, key, f, move || {
        Ok(dto::TrainingProgressChart {
            labels: chart_labels(g),
            datasets: datasets(sel.lines(&store, g, Aggregation::Last)?),
            time_range: range.label,
            total_jobs,
            running_jobs: running,
        })
    })
    .await
}

pub async fn system_metrics(
    state: AppState,
    q: ChartQuery,
    want_gzip: bool,
) -> Result<Response, warp::Rejection> {
    let range = check(&q, &["metric"], "24h")?;
    let store = state.store.clone();
    let Some(sel) = query::system_metrics(&store, q.metric.as_deref()) else {
        return Err(ApiError::bad_request(format!(
            "metric '{}' is not one of {}",
            q.metric.as_deref().unwrap_or_default(),
            query::SYSTEM_CHOICES.join(", ")
        )));
    };
    let g = grid(&store, range);
    let f = fingerprint(&store, g, &sel.ids(), &[]);
    let metric = q.metric.unwrap_or_else(|| "all".to_string());
    let key = format!("system-metrics {} {metric}", range.label);
    super::cache::cached(&state, want_gzip, key, f, move || {
        let (lines, summary) = sel.lines_with_summary(&store, g, now())?;
        let summary = summary.into_iter().map(Into::into).collect();
        Ok(dto::SystemMetricsChart {
            labels: chart_labels(g),
            datasets: datasets(lines),
            time_range: range.label,
            metric,
            summary,
        })
    })
    .await
}

pub async fn service_health(
    state: AppState,
    q: ChartQuery,
    want_gzip: bool,
) -> Result<Response, warp::Rejection> {
    let range = check(&q, &["service"], "24h")?;
    let store = state.store.clone();
    let g = grid(&store, range);
    let sel = query::ServiceHealth::select(&store, q.service.as_deref());
    let f = fingerprint(&store, g, &sel.ids(), &[]);
    let key = format!("service-health {} {:?}", range.label, q.service);
    super::cache::cached(&state, want_gzip, key, f, move || {
        let s = sel.compute(&store, g, now())?;
        Ok(dto::ServiceHealthChart {
            labels: chart_labels(g),
            total_services: s.lines.len(),
            datasets: datasets(s.lines),
            time_range: range.label,
            uptime_percent: s.uptime_percent,
        })
    })
    .await
}

pub async fn alerts_timeline(
    state: AppState,
    q: ChartQuery,
    want_gzip: bool,
) -> Result<Response, warp::Rejection> {
    let range = check(&q, &["severity"], "7d")?;
    let severity = params::severity(q.severity.as_deref())?;
    let g = grid(&state.store, range);
    // An alert's firing time and severity never change: the timeline only
    // changes when an alert is added or purged.
    let (fired, kept) = state.alerts.state.membership();
    let f = vec![g.from, g.step, fired as i64, kept as i64];
    let key = format!("alerts-timeline {} {severity:?}", range.label);
    let engine = state.alerts.clone();
    super::cache::cached(&state, want_gzip, key, f, move || {
        let fired = engine.state.fired_per_step(&g, severity);
        // Counts of alerts fired per step: 0 is a real count here, not a gap.
        let lines = fired
            .per_severity
            .iter()
            .map(|(s, counts)| query::Line {
                label: s.as_str().to_string(),
                data: counts.iter().map(|c| Some(*c as f64)).collect(),
            })
            .collect();
        Ok(dto::AlertsTimelineChart {
            labels: chart_labels(g),
            datasets: datasets(lines),
            time_range: range.label,
            total_alerts: fired.total,
            step_seconds: g.step / 1000,
        })
    })
    .await
}
