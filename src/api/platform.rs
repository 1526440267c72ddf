//! ML platform endpoints: `POST /ingest/models`, `GET /model-loading-status`,
//! `POST /ingest/training`, `GET /training-status`.

use super::AppState;
use super::dto::*;
use super::reject::ApiError;
use crate::platform::models::{ModelEvent, ModelStatus};
use crate::platform::training::{JobEvent, JobStatus, Utilization};
use serde::de::DeserializeOwned;
use warp::reply::{Reply, Response};

/// Most events one request may carry.
pub const MAX_EVENTS: usize = 1_000;

/// One event object, or an array of them; errors name the element and field.
fn events<T: DeserializeOwned>(body: serde_json::Value) -> Result<Vec<T>, warp::Rejection> {
    let (items, array) = match body {
        serde_json::Value::Array(v) => (v, true),
        other => (vec![other], false),
    };
    if items.len() > MAX_EVENTS {
        return Err(ApiError::bad_request(format!(
            "at most {MAX_EVENTS} events per request"
        )));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            serde_path_to_error::deserialize::<_, T>(v).map_err(|e| {
                let path = e.path().to_string();
                let at = match (array, path.as_str()) {
                    (true, ".") => format!("[{i}]: "),
                    (true, p) => format!("[{i}].{p}: "),
                    (false, ".") => String::new(),
                    (false, p) => format!("{p}: "),
                };
                ApiError::bad_request(format!("invalid event: {at}{}", e.into_inner()))
            })
        })
        .collect()
}

pub async fn ingest_models(
    state: AppState,
    body: serde_json::Value,
) -> Result<Response, warp::Rejection> {
    let evs: Vec<ModelEvent> = events(body)?;
    let n = evs.len();
    let st = state.clone();
    super::blocking(move || st.platform.models.ingest(&st.store, &evs)).await?;
    Ok(warp::reply::json(&Accepted { accepted: n as u64 }).into_response())
}

pub async fn ingest_training(
    state: AppState,
    body: serde_json::Value,
) -> Result<Response, warp::Rejection> {
    let evs: Vec<JobEvent> = events(body)?;
    let n = evs.len();
    let st = state.clone();
    super::blocking(move || st.platform.jobs.ingest(&st.store, &evs)).await?;
    Ok(warp::reply::json(&Accepted { accepted: n as u64 }).into_response())
}

pub async fn model_status(state: AppState) -> Result<Response, warp::Rejection> {
    let all = state.platform.models.all();
    let count = |s: ModelStatus| all.iter().filter(|m| m.status == s).count();
    let body = ModelLoadingStatus {
        total_models: all.len(),
        loaded_models: count(ModelStatus::Loaded),
        loading_models: count(ModelStatus::Loading),
        failed_models: count(ModelStatus::Failed),
        total_memory_usage_mb: crate::platform::models::memory_held(all.iter()),
        models: all
            .into_iter()
            .map(|m| ModelEntry {
                status: m.status.as_str(),
                progress: m.progress,
                memory_usage_mb: m.memory_usage_mb,
                loading_time_ms: m.loading_time_ms,
                error_message: m.error_message,
                loaded_at: m.loaded_at.map(ts),
                updated_at: ts(m.updated_at),
                name: m.name,
            })
            .collect(),
    };
    Ok(warp::reply::json(&body).into_response())
}

pub async fn training_status(state: AppState) -> Result<Response, warp::Rejection> {
    let all = state.platform.jobs.all();
    let count = |s: JobStatus| all.iter().filter(|j| j.status == s).count();
    let running: Vec<_> = all
        .iter()
        .filter(|j| j.status == JobStatus::Running)
        .collect();
    let usage = Utilization::of(running.iter().map(|j| &j.resource_usage));
    let now = chrono::Utc::now();
    let body = TrainingStatus {
        queue_status: QueueStatus {
            pending_jobs: count(JobStatus::Pending),
            running_jobs: count(JobStatus::Running),
            completed_jobs: count(JobStatus::Completed),
            failed_jobs: count(JobStatus::Failed),
        },
        resource_utilization: ResourceUtilization {
            total_cpu_usage: usage.cpu,
            total_memory_usage_mb: usage.memory_mb,
            gpu_utilization: usage.gpu,
        },
        jobs: all
            .into_iter()
            .map(|j| JobEntry {
                status: j.status.as_str(),
                progress: j.progress,
                started_at: ts(j.started_at),
                estimated_completion: j.eta(now).map(ts),
                error_message: j.error_message.clone(),
                estimated_completion_is_estimate: j.estimated,
                resource_usage: JobResources {
                    cpu_usage: j.resource_usage.cpu_usage,
                    memory_usage_mb: j.resource_usage.memory_usage_mb,
                    gpu_usage: j.resource_usage.gpu_usage,
                },
                updated_at: ts(j.updated_at),
                job_id: j.job_id,
                model_name: j.model_name,
            })
            .collect(),
    };
    Ok(warp::reply::json(&body).into_response())
}
