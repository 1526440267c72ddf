//! `GET /anomalies`: the anomaly events the watch found, newest first.

use super::AppState;
use super::dto::{AnomalyList, EventView};
use super::params;
use crate::anomalies::events::Filter;
use chrono::{Duration, Utc};
use serde::Deserialize;
use warp::reply::{Reply, Response};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnomaliesQuery {
    metric: Option<String>,
    service: Option<String>,
    time_range: Option<String>,
    limit: Option<String>,
}

pub async fn list(state: AppState, q: AnomaliesQuery) -> Result<Response, warp::Rejection> {
    let range = params::time_range(q.time_range.as_deref(), "24h")?;
    let limit = params::limit(q.limit.as_deref(), 100, 1000)?;
    let now = Utc::now();
    let filter = Filter {
        metric: q.metric,
        service: q.service,
        from: Some(now - Duration::milliseconds(range.ms)),
        to: None,
    };
    let (events, total) = state.anomalies.events().list(&filter, limit);
    let (watched, left_out) = state.anomalies.watched();
    Ok(warp::reply::json(&AnomalyList {
        anomalies: events.into_iter().map(EventView::from).collect(),
        total,
        time_range: range.label,
        watched,
        left_out,
    })
    .into_response())
}
