//! Service health endpoints: `GET /service-health`, `GET /health/services`,
//! `GET /health/dependencies`. All read the registry's current state; none
//! triggers a probe.

use super::AppState;
use super::dto::*;
use crate::config::services::Role;
use crate::health::HealthStatus;
use crate::health::registry::{Registry, ServiceView, overall};
use std::collections::BTreeMap;
use warp::reply::{Reply, Response};

fn entry(v: &ServiceView, all: &[ServiceView]) -> ServiceHealthEntry {
    ServiceHealthEntry {
        status: v.status(),
        response_time_ms: v.last.as_ref().and_then(|r| r.response_time_ms()),
        check_duration_ms: v.last.as_ref().map(|r| r.latency_ms),
        last_check: v.last_check().map(ts),
        error_message: v.error_message(),
        dependencies: Registry::dependencies_of(v, all),
        kind: v.kind,
        role: match v.role {
            Role::Service => "service",
            Role::Dependency => "dependency",
        },
        http_status: v.last.as_ref().and_then(|r| r.http_status),
        consecutive_failures: v.consecutive_failures,
        cpu_usage: v.cpu_usage,
        memory_usage_mb: v.memory_usage_mb,
    }
}

/// The summary both service endpoints answer, with `services` built by
/// `each` from every service (and all of them, for dependents' status).
fn overview<S: FromIterator<I>, I>(
    state: &AppState,
    each: impl Fn(&ServiceView, &[ServiceView]) -> I,
) -> ServicesOverview<S> {
    let all = state.health.snapshot();
    ServicesOverview {
        services: all.iter().map(|v| each(v, &all)).collect(),
        overall_status: overall(&all),
        healthy_services: all
            .iter()
            .filter(|v| v.status() == HealthStatus::Healthy)
            .count(),
        total_services: all.len(),
        last_updated: ts(chrono::Utc::now()),
    }
}

pub async fn service_health(state: AppState) -> Result<Response, warp::Rejection> {
    let body: ServiceHealth = overview(&state, |v, all| (v.name.clone(), entry(v, all)));
    Ok(warp::reply::json(&body).into_response())
}

pub async fn services_list(state: AppState) -> Result<Response, warp::Rejection> {
    let body: ServicesHealthList = overview(&state, |v, all| NamedServiceHealth {
        name: v.name.clone(),
        health: entry(v, all),
    });
    Ok(warp::reply::json(&body).into_response())
}

/// The optional dependencies (REDIS_URL, DATABASE_URL) plus every service
/// named in some service's `depends_on`.
pub async fn dependencies(state: AppState) -> Result<Response, warp::Rejection> {
    let all = state.health.snapshot();
    let mut deps = BTreeMap::new();
    for v in &all {
        let declared = all.iter().any(|o| o.depends_on.contains(&v.name));
        if v.role != Role::Dependency && !declared {
            continue;
        }
        let up = v.last.is_some() && v.status() != HealthStatus::Unhealthy;
        deps.insert(
            v.name.clone(),
            DependencyHealth {
                status: if up { "healthy" } else { "unhealthy" },
                response_time_ms: v.last.as_ref().and_then(|r| r.response_time_ms()),
                check_duration_ms: v.last.as_ref().map(|r| r.latency_ms),
                last_check: v.last_check().map(ts),
                error_message: if up { None } else { v.error_message() },
            },
        );
    }
    let healthy = deps.values().filter(|d| d.status == "healthy").count();
    Ok(warp::reply::json(&DependenciesHealth {
        overall_status: if healthy == deps.len() {
            "healthy"
        } else {
            "unhealthy"
        },
        healthy_dependencies: healthy,
        total_dependencies: deps.len(),
        dependencies: deps,
    })
    .into_response())
}
