//! Chart.js-ready JSON charts (JSON only): `/charts/model-loading`,
//! `/charts/training-progress`, `/charts/system-metrics`,
//! `/charts/service-health`, `/charts/alerts-timeline`. Points come from
//! the store's tiers at a step that keeps a chart at or under about 300
//! points; missing data is `null`, so Chart.js draws a gap.

use super::AppState;
use super::dto::ts_ms;
use super::params::{self, TimeRange};
use super::reject::ApiError;
use crate::analysis::trend::{Trend, trend};
use crate::collect::system::metric;
use crate::query::Grid;
use crate::store::{Aggregation, SeriesId, SeriesKey, Store};
use crate::{health, platform};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use warp::reply::Response;

/// A chart keeps at most about this many points.
pub const MAX_POINTS: i64 = 300;

/// A fixed palette; a dataset's colour is picked by a hash of its label, so
/// it stays the same across calls.
const PALETTE: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac",
];

fn colour(label: &str) -> (String, String) {
    // FNV-1a: stable across runs and platforms (std's hasher is seeded).
    let h = label.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    });
    let c = PALETTE[(h % PALETTE.len() as u64) as usize];
    (c.to_string(), format!("{c}33"))
}

#[derive(Serialize)]
pub struct Dataset {
    pub label: String,
    pub data: Vec<Option<f64>>,
    #[serde(rename = "borderColor")]
    pub border_color: String,
    #[serde(rename = "backgroundColor")]
    pub background_color: String,
}

impl Dataset {
    fn new(label: &str, data: Vec<Option<f64>>) -> Dataset {
        let (border_color, background_color) = colour(label);
        Dataset {
            label: label.to_string(),
            data,
            border_color,
            background_color,
        }
    }
}

/// A chart's grid: at most `MAX_POINTS` ending now.
fn grid(store: &Store, range: TimeRange) -> Grid {
    Grid::at_most(
        store.layout(),
        range.ms,
        MAX_POINTS,
        chrono::Utc::now().timestamp_millis(),
    )
}

fn labels(g: Grid) -> Vec<String> {
    g.starts().map(ts_ms).collect()
}

fn values(
    store: &Store,
    id: Option<SeriesId>,
    g: Grid,
    how: Aggregation,
) -> crate::error::Result<Vec<Option<f64>>> {
    let n = ((g.to - g.from) / g.step) as usize;
    match id {
        None => Ok(vec![None; n]),
        Some(id) => Ok(store
            .query(id, g.from, g.to, g.step)?
            .values(how)
            .into_iter()
            .map(|(_, v)| v)
            .take(n)
            .collect()),
    }
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

fn trend_of(data: &[Option<f64>]) -> Trend {
    let pts: Vec<(f64, f64)> = data
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.map(|v| (i as f64, v)))
        .collect();
    trend(&pts)
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
    let statuses = ["loaded", "loading", "failed", "unloaded"];
    let ids: Vec<Option<SeriesId>> = statuses
        .iter()
        .map(|s| store.lookup(&SeriesKey::new(platform::models::COUNT_METRIC).with("status", s)))
        .collect();
    let f = fingerprint(&store, g, &ids, &[total_models as i64]);
    super::cache::cached(&state, want_gzip, format!("model-loading {}", range.label), f, move || {
        let mut datasets = Vec::new();
        for (status, id) in statuses.iter().zip(ids) {
            datasets.push(Dataset::new(
                status,
                values(&store, id, g, Aggregation::Last)?,
            ));
        }
        let loading_trend = trend_of(&datasets[1].data);
        Ok(
            serde_json::json!({"labels": labels(g), "datasets": datasets, "time_range": range.label,
            "total_models": total_models, "loading_trend": loading_trend}),
        )
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
    let mut found = store.find(Some(platform::training::JOB_PROGRESS_METRIC), &[]);
    found.retain(|(_, key)| {
        model
            .as_deref()
            .is_none_or(|m| key.label("model") == Some(m))
    });
    found.sort_by(|a, b| a.1.cmp(&b.1));
    let ids: Vec<Option<SeriesId>> = found.iter().map(|(id, _)| Some(*id)).collect();
    let f = fingerprint(&store, g, &ids, &[total_jobs as i64, running as i64]);
    let key = format!("training-progress {} {model:?}", range.label);
    super::cache::cached(&state, want_gzip, key, f, move || {
        let mut datasets = Vec::new();
        for (id, key) in found {
            let label = format!(
                "{} ({})",
                key.label("job").unwrap_or(""),
                key.label("model").unwrap_or("")
            );
            datasets.push(Dataset::new(
                &label,
                values(&store, Some(id), g, Aggregation::Last)?,
            ));
        }
        Ok(
            serde_json::json!({"labels": labels(g), "datasets": datasets, "time_range": range.label,
            "total_jobs": total_jobs, "running_jobs": running}),
        )
    })
    .await
}

pub async fn system_metrics(
    state: AppState,
    q: ChartQuery,
    want_gzip: bool,
) -> Result<Response, warp::Rejection> {
    let range = check(&q, &["metric"], "24h")?;
    let series: Vec<(&str, &str)> = match q.metric.as_deref() {
        None => vec![
            (metric::CPU_USAGE_PERCENT, "CPU %"),
            (metric::MEMORY_USAGE_PERCENT, "Memory %"),
            (metric::DISK_USAGE_PERCENT, "Disk %"),
        ],
        Some("cpu") => vec![(metric::CPU_USAGE_PERCENT, "CPU %")],
        Some("memory") => vec![(metric::MEMORY_USED_MB, "Memory used MB")],
        Some("disk") => vec![(metric::DISK_USAGE_PERCENT, "Disk %")],
        Some("network") => vec![
            (metric::NETWORK_RX_MBPS, "Received Mbps"),
            (metric::NETWORK_TX_MBPS, "Transmitted Mbps"),
        ],
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "metric '{other}' is not one of cpu, memory, disk, network"
            )));
        }
    };
    let store = state.store.clone();
    let g = grid(&store, range);
    let ids: Vec<Option<SeriesId>> = series
        .iter()
        .map(|(metric, _)| store.lookup(&SeriesKey::new(metric)))
        .collect();
    let f = fingerprint(&store, g, &ids, &[]);
    let metric = q.metric.unwrap_or_else(|| "all".to_string());
    let key = format!("system-metrics {} {metric}", range.label);
    super::cache::cached(&state, want_gzip, key, f, move || {
        let mut datasets = Vec::new();
        for ((_, label), id) in series.iter().zip(ids) {
            datasets.push(Dataset::new(
                label,
                values(&store, id, g, Aggregation::Avg)?,
            ));
        }
        let summary: Vec<serde_json::Value> = datasets
            .iter()
            .map(|d| {
                let vals: Vec<f64> = d.data.iter().flatten().copied().collect();
                serde_json::json!({
                    "label": d.label,
                    "current": d.data.iter().rev().flatten().next(),
                    "average": (!vals.is_empty()).then(|| vals.iter().sum::<f64>() / vals.len() as f64),
                    "max": vals.iter().copied().reduce(f64::max),
                    "trend": trend_of(&d.data),
                })
            })
            .collect();
        Ok(
            serde_json::json!({"labels": labels(g), "datasets": datasets, "time_range": range.label,
            "metric": metric, "summary": summary}),
        )
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
    let mut services: Vec<(String, SeriesId, Option<SeriesId>)> = store
        .find(Some(health::RESPONSE_TIME_METRIC), &[])
        .into_iter()
        .filter_map(|(id, key)| {
            let svc = key.label("service")?.to_string();
            let up = store.lookup(&SeriesKey::new(health::UP_METRIC).with("service", &svc));
            Some((svc, id, up))
        })
        .filter(|(svc, ..)| q.service.as_ref().is_none_or(|s| s == svc))
        .collect();
    services.sort();
    let ids: Vec<Option<SeriesId>> = services
        .iter()
        .flat_map(|(_, rt, up)| [Some(*rt), *up])
        .collect();
    let f = fingerprint(&store, g, &ids, &[]);
    let key = format!("service-health {} {:?}", range.label, q.service);
    super::cache::cached(&state, want_gzip, key, f, move || {
        let mut datasets = Vec::new();
        let mut uptime = BTreeMap::new();
        for (svc, rt, up) in services {
            datasets.push(Dataset::new(
                &svc,
                values(&store, Some(rt), g, Aggregation::Avg)?,
            ));
            let u = match up {
                Some(id) => store
                    .query(id, g.from, g.to, g.step)?
                    .total()
                    .map(|a| a.avg() * 100.0),
                None => None,
            };
            uptime.insert(svc, u);
        }
        Ok(
            serde_json::json!({"labels": labels(g), "datasets": datasets, "time_range": range.label,
            "total_services": datasets.len(), "uptime_percent": uptime}),
        )
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
        let datasets: Vec<Dataset> = fired
            .per_severity
            .iter()
            .map(|(s, counts)| {
                Dataset::new(s.as_str(), counts.iter().map(|c| Some(*c as f64)).collect())
            })
            .collect();
        Ok(
            serde_json::json!({"labels": labels(g), "datasets": datasets, "time_range": range.label,
            "total_alerts": fired.total, "step_seconds": g.step / 1000}),
        )
    })
    .await
}
