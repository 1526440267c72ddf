//! The scheduling loop: one task per service, so a target that hangs only
//! ever delays its own next check. Each task probes, writes `up` and
//! `response_time_ms` to the store, records the result in the registry, then
//! sleeps until its next slot (normal interval, or back-off when failing).
//! [`Services`] owns those tasks and a service's scrape task, and replaces
//! them when a reload changes the services.

use super::probe::{self, ProbeResult};
use super::registry::Registry;
use super::{HealthStatus, breaker};
use crate::config::services::ServiceSpec;
use crate::shutdown::{Shutdown, Trigger};
use crate::store::{SeriesKey, Store};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// The configured services and their running tasks.
pub struct Services {
    store: Store,
    registry: Arc<Registry>,
    shutdown: Shutdown,
    specs: RwLock<Arc<Vec<ServiceSpec>>>,
    /// Each running service's spec and the trigger that stops its tasks.
    running: Mutex<HashMap<String, (ServiceSpec, Trigger)>>,
    tasks: Mutex<JoinSet<()>>,
}

impl Services {
    /// Starts checking (and scraping) every service in `specs`.
    pub fn start(
        specs: &[ServiceSpec],
        store: Store,
        registry: Arc<Registry>,
        shutdown: Shutdown,
    ) -> Arc<Services> {
        let s = Arc::new(Services {
            store,
            registry,
            shutdown,
            specs: RwLock::new(Arc::new(Vec::new())),
            running: Mutex::new(HashMap::new()),
            tasks: Mutex::new(JoinSet::new()),
        });
        s.apply(specs);
        s
    }

    /// The services configured now.
    pub fn specs(&self) -> Arc<Vec<ServiceSpec>> {
        self.specs.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Applies a reloaded list: a removed service's tasks stop, a changed
    /// one's are started again (checked at once), a new one's start; the
    /// others run on untouched.
    pub fn apply(&self, specs: &[ServiceSpec]) {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        running.retain(|name, (spec, stop)| {
            let keep = specs.iter().any(|s| &s.name == name && s == spec);
            if !keep {
                stop.fire();
            }
            keep
        });
        self.registry.set_services(specs);
        for spec in specs {
            if running.contains_key(&spec.name) {
                continue;
            }
            let (trigger, own) = crate::shutdown::channel();
            let stopped = {
                let (mut own, mut all) = (own.clone(), self.shutdown.clone());
                async move {
                    tokio::select! {
                        _ = own.recv() => {},
                        _ = all.recv() => {},
                    }
                }
            };
            let (store, registry, all) = (
                self.store.clone(),
                self.registry.clone(),
                self.shutdown.clone(),
            );
            let check = service_loop(spec.clone(), store.clone(), registry, all.clone());
            let scrape = crate::collect::scrape::run(spec.clone(), store, all);
            tasks.spawn(async move {
                tokio::select! {
                    _ = async { tokio::join!(check, scrape) } => {},
                    _ = stopped => {},
                }
            });
            running.insert(spec.name.clone(), (spec.clone(), trigger));
        }
        // Finished tasks leave the set.
        while tasks.try_join_next().is_some() {}
        *self.specs.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(specs.to_vec());
    }

    /// Waits for every task to end (after shutdown).
    pub async fn join(&self) {
        let mut tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        while tasks.join_next().await.is_some() {}
    }
}

async fn service_loop(
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
        let failures = registry.record(&spec.name, result);
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
