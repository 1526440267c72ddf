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
    loop {
        let started = Instant::now();
        let result = tokio::select! {
            r = probe::run(&spec) => r,
            _ = shutdown.recv() => return,
        };
        if result.status != HealthStatus::Healthy {
            tracing::debug!(service = %spec.name, status = result.status.as_str(), error = ?result.error, "check");
        }
        store_result(&store, [&up_key, &rt_key, &degraded_key], &result).await;
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

/// Writes `up` (1/0), `response_time_ms` and `degraded` (1/0) for one check.
async fn store_result(store: &Store, keys: [&SeriesKey; 3], r: &ProbeResult) {
    let store = store.clone();
    let keys: Vec<SeriesKey> = keys.into_iter().cloned().collect();
    let ts_ms = r.at.timestamp_millis();
    let up = if r.status == HealthStatus::Unhealthy {
        0.0
    } else {
        1.0
    };
    let latency = r.latency_ms;
    let degraded = if r.status == HealthStatus::Degraded {
        1.0
    } else {
        0.0
    };
    crate::blocking::run("storing a check result", move || {
        store.record(
            keys.into_iter()
                .zip([up, latency, degraded])
                .map(|(k, v)| (k, ts_ms, v)),
        )
    })
    .await;
}

/// Runs every probe once, concurrently (for `mlsec-monitor check`).
pub async fn check_once(specs: &[ServiceSpec]) -> Vec<ProbeResult> {
    futures_util::future::join_all(specs.iter().map(probe::run)).await
}
