//! Alerting endpoints: `GET /alerts`, `GET /alerts/{id}`,
//! `POST /alerts/acknowledge`, `POST /alerts/resolve`, `GET /audit`,
//! `GET /audit/export`,
//! `POST|GET /silences`, `DELETE /silences/{id}`. Every change is durable
//! before the reply.

use super::AppState;
use super::dto::*;
use super::params;
use super::reject::{ApiError, error_response};
use crate::alerting::state::{ActionError, AlertFilter, AuditFilter};
use crate::alerting::{Actor, AlertStatus, AuditAction, silence::Silence};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::collections::BTreeMap;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 1000;

fn limit(v: Option<&str>, default: usize) -> Result<usize, warp::Rejection> {
    params::limit(v, default, MAX_LIMIT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsQuery {
    severity: Option<String>,
    service: Option<String>,
    status: Option<String>,
    limit: Option<String>,
}

/// Served from the answer cache while the alert state is unchanged: a wall
/// of screens polling the same list costs one listing per change.
pub async fn list(
    state: AppState,
    q: AlertsQuery,
    want_gzip: bool,
) -> Result<Response, warp::Rejection> {
    let severity = params::severity(q.severity.as_deref())?;
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(AlertStatus::parse(s).ok_or_else(|| {
            ApiError::bad_request(format!(
                "status '{s}' is not one of active, acknowledged, resolved"
            ))
        })?),
    };
    let limit = limit(q.limit.as_deref(), DEFAULT_LIMIT)?;
    let filter = AlertFilter {
        severity,
        status,
        service: q.service,
    };
    let key = format!("alerts {filter:?} {limit}");
    let now = chrono::Utc::now();
    let version = vec![
        state.alerts.state.version() as i64,
        state.alerts.state.silence_epoch(now) as i64,
    ];
    let st = state.alerts.state.clone();
    super::cache::cached(&state, want_gzip, key, version, move || {
        let list = st.list(&filter, limit, now);
        Ok(AlertsResponse {
            alerts: list.alerts.iter().map(AlertView::from).collect(),
            total_count: list.counts.total,
            active_count: list.counts.active,
            critical_count: list.counts.critical,
            warning_count: list.counts.warning,
            info_count: list.counts.info,
        })
    })
    .await
}

pub async fn get(id: String, state: AppState) -> Result<Response, warp::Rejection> {
    match state.alerts.state.history(&id, chrono::Utc::now()) {
        None => Ok(error_response(
            StatusCode::NOT_FOUND,
            &format!("no alert with alert_id '{id}'"),
        )),
        Some((a, history)) => Ok(warp::reply::json(&AlertWithHistory {
            alert: AlertView::from(&a),
            history: history.iter().map(AuditView::from).collect(),
        })
        .into_response()),
    }
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AcknowledgeRequest {
    alert_id: String,
    acknowledged_by: String,
    comment: Option<String>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    alert_id: String,
    resolved_by: String,
    resolution_notes: Option<String>,
}

fn outcome(r: Result<crate::alerting::Alert, ActionError>) -> Result<Response, warp::Rejection> {
    match r {
        Ok(a) => Ok(warp::reply::json(&AlertEnvelope {
            alert: AlertView::from(&a),
        })
        .into_response()),
        Err(ActionError::NotFound(m)) => Ok(error_response(StatusCode::NOT_FOUND, &m)),
        Err(ActionError::Conflict(m)) => Ok(error_response(StatusCode::CONFLICT, &m)),
    }
}

fn non_empty(field: &str, v: &str) -> Result<(), warp::Rejection> {
    if v.trim().is_empty() {
        Err(ApiError::bad_request(format!("{field} must not be empty")))
    } else {
        Ok(())
    }
}

pub async fn acknowledge(
    state: AppState,
    token: Option<String>,
    req: AcknowledgeRequest,
) -> Result<Response, warp::Rejection> {
    non_empty("alert_id", &req.alert_id)?;
    non_empty("acknowledged_by", &req.acknowledged_by)?;
    let st = state.alerts.clone();
    let r = super::blocking(move || {
        let by = Actor::new(&req.acknowledged_by, token.as_deref());
        st.state
            .acknowledge(&req.alert_id, by, req.comment, Utc::now())
    })
    .await?;
    if let Ok(a) = &r {
        let _ = state.alert_changes.send(a.clone());
    }
    outcome(r)
}

pub async fn resolve(
    state: AppState,
    token: Option<String>,
    req: ResolveRequest,
) -> Result<Response, warp::Rejection> {
    non_empty("alert_id", &req.alert_id)?;
    non_empty("resolved_by", &req.resolved_by)?;
    let engine = state.alerts.clone();
    let r = super::blocking(move || {
        engine.state.resolve(
            &req.alert_id,
            Actor::new(&req.resolved_by, token.as_deref()),
            req.resolution_notes,
            Utc::now(),
        )
    })
    .await?;
    if let Ok(a) = &r {
        let _ = state.alert_changes.send(a.clone());
    }
    outcome(r)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    alert_id: Option<String>,
    action: Option<String>,
    actor: Option<String>,
    limit: Option<String>,
}

pub async fn audit(state: AppState, q: AuditQuery) -> Result<Response, warp::Rejection> {
    let limit = limit(q.limit.as_deref(), 100)?;
    let action = match q.action.as_deref() {
        None => None,
        Some(a) => Some(AuditAction::parse(a).ok_or_else(|| {
            ApiError::bad_request(format!(
                "action '{a}' is not one of {}",
                AuditAction::ALL.map(AuditAction::as_str).join(", ")
            ))
        })?),
    };
    let filter = AuditFilter {
        alert_id: q.alert_id,
        action,
        actor: q.actor,
    };
    let records = state
        .alerts
        .state
        .audit_records(&filter, limit)
        .iter()
        .map(AuditView::from)
        .collect();
    Ok(warp::reply::json(&AuditList { records }).into_response())
}

/// Records per chunk of the export.
const EXPORT_PAGE: usize = 500;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    after: Option<String>,
}

/// `GET /audit/export`: the whole trail (or what follows sequence number
/// `after`) as JSON Lines, oldest first, streamed a page at a time so a long
/// trail is never one buffer. Each line carries `prev_hash` and `hash`.
pub async fn audit_export(state: AppState, q: ExportQuery) -> Result<Response, warp::Rejection> {
    let after = match q.after.as_deref() {
        None => 0,
        Some(s) => s.parse::<u64>().map_err(|_| {
            ApiError::bad_request(format!(
                "after '{s}' must be a record's seq (a whole number)"
            ))
        })?,
    };
    let trail = state.alerts.state.clone();
    let pages = futures_util::stream::unfold(Some(after), move |cursor| {
        let trail = trail.clone();
        async move {
            let page = trail.audit_after(cursor?, EXPORT_PAGE);
            let last = page.last()?.seq;
            let mut out = Vec::with_capacity(page.len() * 256);
            for r in &page {
                // Plain strings and maps: serialising into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut out, &AuditView::from(r));
                out.push(b'\n');
            }
            let next = (page.len() == EXPORT_PAGE).then_some(last);
            Some((Ok::<_, std::io::Error>(out), next))
        }
    });
    let mut r = warp::reply::stream(pages).into_response();
    let h = r.headers_mut();
    h.insert(
        warp::http::header::CONTENT_TYPE,
        warp::http::HeaderValue::from_static("application/x-ndjson"),
    );
    h.insert(
        warp::http::header::CONTENT_DISPOSITION,
        warp::http::HeaderValue::from_static("attachment; filename=\"audit.jsonl\""),
    );
    Ok(r)
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SilenceRequest {
    matchers: BTreeMap<String, String>,
    starts_at: Option<DateTime<Utc>>,
    ends_at: DateTime<Utc>,
    created_by: String,
    comment: String,
}

pub async fn create_silence(
    state: AppState,
    token: Option<String>,
    req: SilenceRequest,
) -> Result<Response, warp::Rejection> {
    let now = Utc::now();
    non_empty("created_by", &req.created_by)?;
    non_empty("comment", &req.comment)?;
    if req.matchers.is_empty() {
        return Err(ApiError::bad_request(
            "matchers must name at least one label",
        ));
    }
    let starts_at = req.starts_at.unwrap_or(now);
    if req.ends_at <= now || req.ends_at <= starts_at {
        return Err(ApiError::bad_request(
            "ends_at must be in the future and after starts_at",
        ));
    }
    let s = Silence {
        id: format!(
            "silence_{}_{}",
            now.format("%Y%m%d%H%M%S"),
            now.timestamp_subsec_micros()
        ),
        matchers: req.matchers,
        starts_at,
        ends_at: req.ends_at,
        created_by: req.created_by,
        comment: req.comment,
        created_at: now,
    };
    let st = state.alerts.clone();
    let s = super::blocking(move || st.state.add_silence(s, token.as_deref())).await?;
    Ok(warp::reply::with_status(
        warp::reply::json(&SilenceView::at(&s, now)),
        StatusCode::CREATED,
    )
    .into_response())
}

pub async fn list_silences(state: AppState) -> Result<Response, warp::Rejection> {
    let now = Utc::now();
    let silences = state
        .alerts
        .state
        .silences()
        .iter()
        .map(|s| SilenceView::at(s, now))
        .collect();
    Ok(warp::reply::json(&SilenceList { silences }).into_response())
}

pub async fn delete_silence(
    id: String,
    state: AppState,
    token: Option<String>,
) -> Result<Response, warp::Rejection> {
    let st = state.alerts.clone();
    let id2 = id.clone();
    let removed = super::blocking(move || {
        // No name is given when deleting: the token's, else "operator".
        let name = token.as_deref().unwrap_or("operator");
        st.state
            .delete_silence(&id2, Actor::new(name, token.as_deref()), Utc::now())
    })
    .await?;
    match removed {
        Some(s) => Ok(warp::reply::json(&SilenceView::at(&s, Utc::now())).into_response()),
        None => Ok(error_response(
            StatusCode::NOT_FOUND,
            &format!("no silence with id '{id}'"),
        )),
    }
}
