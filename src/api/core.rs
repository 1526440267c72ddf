//! The core monitoring endpoints: `GET /`, `GET /health`, `GET /system-metrics`.

use super::AppState;
use super::dto::*;
use super::reject::error_response;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

pub async fn root(state: AppState) -> Result<Response, warp::Rejection> {
    Ok(warp::reply::json(&RootResponse {
        service: super::SERVICE_NAME,
        version: env!("CARGO_PKG_VERSION"),
        // The same judgement as /health: "degraded" while it answers 503.
        status: if problem(&state).is_none() {
            "running"
        } else {
            "degraded"
        },
        description: "Monitoring and alerting for the ML security platform: system metrics, service health, \
                      application metrics, alerts and charts",
        timestamp: ts(chrono::Utc::now()),
        uptime_seconds: state.uptime_seconds(),
    })
    .into_response())
}

/// What makes the daemon unhealthy, if anything: a stalled collector or a
/// store that cannot write.
fn problem(state: &AppState) -> Option<String> {
    let c = state.system.counters();
    match (state.system.is_healthy(), state.store.writable()) {
        (true, true) => None,
        (false, _) => Some(format!(
            "data collector stalled: no successful tick in the last {} intervals{}",
            crate::collect::STALL_TICKS,
            c.last_error
                .clone()
                .map(|e| format!(" (last error: {e})"))
                .unwrap_or_default()
        )),
        (true, false) => Some(format!(
            "store cannot write: {}",
            state.store.stats().last_flush_error.unwrap_or_default()
        )),
    }
}

pub async fn health(state: AppState) -> Result<Response, warp::Rejection> {
    let collector_ok = state.system.is_healthy();
    let c = state.system.counters();
    let checks = state.health.counters();
    let dependency = |name: &str| {
        let configured = match name {
            "redis" => state.config.redis_url.is_some(),
            _ => state.config.database_url.is_some(),
        };
        // Configured but not answered yet counts as down: nothing vouches for it.
        configured.then(|| state.health.is_up(name).unwrap_or(false))
    };
    let stats = state.store.stats();
    let error = problem(&state);
    let body = HealthResponse {
        status: if error.is_none() {
            "healthy"
        } else {
            "unhealthy"
        },
        service: super::SERVICE_NAME,
        timestamp: ts(chrono::Utc::now()),
        uptime_seconds: state.uptime_seconds(),
        dependencies: HealthDependencies {
            redis: dependency("redis"),
            postgres: dependency("postgres"),
            data_collector: collector_ok,
        },
        metrics: HealthMetrics {
            total_checks: checks.total,
            successful_checks: checks.successful,
            failed_checks: checks.failed,
            average_response_time_ms: checks.average_ms(),
        },
        error,
        store: StoreHealth {
            writable: state.store.writable(),
            series: stats.series,
            samples_ingested: stats.samples_ingested,
            samples_dropped: stats.samples_dropped,
            flushes: stats.flushes,
            last_flush_ms: stats.last_flush_ms,
            size_on_disk_bytes: state.store.size_on_disk(),
            corrupt_blocks: stats.corrupt_blocks,
            corrupt_log_records: stats.corrupt_records,
            encrypted: state.store.cipher().is_some(),
        },
        collector: CollectorHealth {
            ticks: c.ticks,
            failed_ticks: c.failed,
            average_tick_ms: if c.ticks == 0 {
                0.0
            } else {
                c.total_ms / c.ticks as f64
            },
            last_error: c.last_error.clone(),
        },
        auth: AuthHealth {
            enabled: state.config.access.enabled,
            failed_sign_ins: state.limiter.failures(),
            refused_requests: state.limiter.refused(),
        },
        remote_write: state
            .remote_write
            .as_ref()
            .map(|rw| rw.stats())
            .unwrap_or_default()
            .into_iter()
            .map(|s| RemoteWriteHealth {
                name: s.name,
                queued_batches: s.queued_batches,
                queued_bytes: s.queued_bytes,
                sent_samples: s.sent_samples,
                failed_attempts: s.failed_attempts,
                dropped_for_age_samples: s.dropped.age,
                dropped_full_samples: s.dropped.full,
                rejected_samples: s.dropped.rejected,
                last_error: s.last_error,
            })
            .collect(),
        backup: backup_health(&state),
        config: {
            let last = state.reloader.last();
            ConfigHealth {
                file: state
                    .config
                    .config_file
                    .as_ref()
                    .map(|p| p.display().to_string()),
                last_reload_at: last.as_ref().map(|o| ts(o.at)),
                last_reload_ok: last.as_ref().map(|o| o.error.is_none()),
                last_reload_error: last.as_ref().and_then(|o| o.error.clone()),
                last_reload_changes: last.filter(|o| o.error.is_none()).map(|o| o.changes),
            }
        },
    };
    // 503 when unhealthy, so load balancers and `curl -f` see it too.
    let status = if body.status == "healthy" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok(warp::reply::with_status(warp::reply::json(&body), status).into_response())
}

fn backup_health(state: &AppState) -> BackupHealth {
    let schedule = state.config.backup.as_ref();
    BackupHealth {
        scheduled: schedule.is_some(),
        interval_seconds: schedule.map(|s| s.interval.as_secs_f64()),
        keep: schedule.map(|s| s.keep),
        last: state.backups.last().map(|o| BackupRun {
            started_at: ts(o.started_at),
            duration_seconds: o.took.map(|t| (t.as_secs_f64() * 1000.0).round() / 1000.0),
            size_bytes: o.bytes,
            items: o.items,
            ok: o.error.is_none(),
            error: o.error,
            scheduled: o.scheduled,
        }),
        last_success_at: state.backups.last_success().map(|o| ts(o.started_at)),
    }
}

pub async fn system_metrics(state: AppState) -> Result<Response, warp::Rejection> {
    let reading = state.system.reading(chrono::Utc::now());
    let Some(measured_at) = reading.measured_at else {
        return Ok(error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "no system sample collected yet; retry after SYSTEM_METRICS_INTERVAL",
        ));
    };
    // Too old to stand for now (a stalled collector): the values are null,
    // the time says when they were last measured, and `stale` says why.
    let Some(h) = reading.harvest else {
        return Ok(
            warp::reply::json(&SystemMetrics::stale(ts(measured_at), reading.stale_reason))
                .into_response(),
        );
    };
    Ok(warp::reply::json(&SystemMetrics {
        cpu_usage: h.cpu_usage_percent,
        memory_usage_mb: h.memory_used_mb,
        disk_usage_percent: h.data_disk_usage_percent,
        network_io_mbps: h.network_io_mbps(),
        load_average: h.load_average.map(|l| l.to_vec()),
        uptime_seconds: h.uptime_seconds,
        processes: h.processes,
        threads: h.threads,
        file_descriptors: h.file_descriptors,
        timestamp: ts(h.at),
        stale: false,
        stale_reason: None,
        memory_total_mb: h.memory_total_mb,
        network_rx_mbps: h.network_rx_mbps,
        network_tx_mbps: h.network_tx_mbps,
        network_interfaces: h.network_interfaces.clone(),
        disks: h
            .disks
            .iter()
            .map(|d| DiskUsage {
                mount: d.mount.clone(),
                usage_percent: d.usage_percent,
            })
            .collect(),
    })
    .into_response())
}
