//! The scheduling loop: one task per service, so a target that hangs only
//! ever delays its own next check. Each task probes, writes `up` and
//! `response_time_ms` to the store, records the result in the registry, then
//! sleeps until its next slot (normal interval, or back-off when failing).

use super::probe::{self, ProbeResult};
use super::registry::Registry;
use super::{HealthStatus, breaker};
use crate::config::services::ServiceSpec;
use crate::shutdown::Shutdown;
use crate::store::{SeriesKey, Store};
use std::sync::Arc;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Starts one checking task per service.
pub fn spawn(
    tasks: &mut JoinSet<()>,
    specs: &[ServiceSpec],
    store: Store,
    registry: Arc<Registry>,
    shutdown: Shutdown,
) {
    for (index, spec) in specs.iter().enumerate() {
        tasks.spawn(service_loop(
            index,
            spec.clone(),
            store.clone(),
            registry.clone(),
            shutdown.clone(),
        ));
    }
}

async fn service_loop(
    index: usize,
    spec: ServiceSpec,
    store: Store,
    registry: Arc<Registry>,
    mut shutdown: Shutdown,
) {
    let up_key = SeriesKey::new(super::UP_METRIC).with("service", &spec.name);
    let rt_key = SeriesKey::new(super::RESPONSE_TIME_METRIC).with("service", &spec.name);
    let degraded_key = SeriesKey::new(super::DEGRADED_METRIC).with("service", &spec.name);
    let failure_key = SeriesKey::new(super::FAILED_CHECK_METRIC).with("service", &spec.name);
    let http =
        (spec.kind == crate::config::services::ProbeKind::Http).then(|| probe::http::agent(&spec));
    loop {
        let started = Instant::now();
        let result = tokio::select! {
            r = probe::run(&spec, http.as_ref()) => r,
            _ = shutdown.recv() => return,
        };
        if result.status != HealthStatus::Healthy {
            tracing::debug!(service = %spec.name, status = result.status.as_str(), error = ?result.error, "check");
        }
        store_result(
            &store,
            [&up_key, &rt_key, &degraded_key, &failure_key],
            &result,
        )
        .await;
        let failures = registry.record(index, result);
        if failures == breaker::OPEN_AFTER {
            tracing::warn!(service = %spec.name, failures, "service keeps failing; backing off");
        }
        let next = started + breaker::next_delay(spec.interval, failures);
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {},
            _ = shutdown.recv() => return,
        }
    }
}

/// Writes `up` (1/0) and `degraded` (1/0) for one check, and either its
/// `response_time_ms` (it answered) or its `failed_check_ms` (it failed), so
/// failures never enter response-time averages and trends.
async fn store_result(store: &Store, keys: [&SeriesKey; 4], r: &ProbeResult) {
    let store = store.clone();
    let [up_key, rt_key, degraded_key, failure_key] = keys.map(SeriesKey::clone);
    let ts_ms = r.at.timestamp_millis();
    let up = if r.status == HealthStatus::Unhealthy {
        0.0
    } else {
        1.0
    };
    let degraded = if r.status == HealthStatus::Degraded {
        1.0
    } else {
        0.0
    };
    let timing = match r.response_time_ms() {
        Some(ms) => (rt_key, ms),
        None => (failure_key, r.latency_ms),
    };
    crate::blocking::run("storing a check result", move || {
        store.record(
            [(up_key, up), (degraded_key, degraded), timing]
                .into_iter()
                .map(|(k, v)| (k, ts_ms, v)),
        )
    })
    .await;
}

/// Runs every probe once, concurrently (for `mlsec-monitor check`).
pub async fn check_once(specs: &[ServiceSpec]) -> Vec<ProbeResult> {
    futures_util::future::join_all(specs.iter().map(|s| probe::run(s, None))).await
}
