//! `POST /api/v2/alerts`: Alertmanager's alert API, so Prometheus, vmalert
//! and Grafana can send their alerts here as they would to an
//! Alertmanager. The wire format is Alertmanager's `postableAlerts`; what
//! happens to each alert is `alerting::external`'s.

use super::AppState;
use super::reject::ApiError;
use crate::alerting::external::Posted;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use warp::reply::{Reply, Response};

/// One alert as Alertmanager's API takes it.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PostableAlert {
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    starts_at: Option<DateTime<Utc>>,
    ends_at: Option<DateTime<Utc>>,
    #[serde(rename = "generatorURL")]
    generator_url: Option<String>,
}

#[derive(Serialize)]
struct Received {
    status: &'static str,
    received: usize,
}

/// Go's zero time (`0001-01-01T00:00:00Z`) and anything before 1970 mean
/// "not set".
fn set(t: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    t.filter(|t| t.timestamp() > 0)
}

pub async fn post_alerts(
    state: AppState,
    alerts: Vec<PostableAlert>,
) -> Result<Response, warp::Rejection> {
    let mut posted = Vec::with_capacity(alerts.len());
    for (i, a) in alerts.into_iter().enumerate() {
        if a.labels.is_empty() {
            return Err(ApiError::bad_request(format!(
                "alerts[{i}].labels: an alert needs at least one label (alertname, usually)"
            )));
        }
        for (k, v) in &a.labels {
            crate::names::check_label(k, v)
                .map_err(|e| ApiError::bad_request(format!("alerts[{i}].labels: {e}")))?;
        }
        posted.push(Posted {
            labels: a.labels,
            annotations: a.annotations,
            starts_at: set(a.starts_at),
            ends_at: set(a.ends_at),
            generator_url: a.generator_url,
        });
    }
    let received = posted.len();
    let st = state.clone();
    let changed = super::blocking(move || st.alerts.external.receive(posted, Utc::now())).await?;
    for a in changed {
        let _ = state.alert_changes.send(a);
    }
    Ok(warp::reply::json(&Received {
        status: "success",
        received,
    })
    .into_response())
}
