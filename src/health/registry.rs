//! The live state of every probed service, read by the API. Writers are the
//! engine's per-service tasks (one result at a time) and the resource
//! sampler; readers take a snapshot.

use super::HealthStatus;
use super::probe::ProbeResult;
use crate::config::services::{Role, ServiceSpec};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::sync::{Mutex, RwLock};

/// One service as the API shows it.
#[derive(Clone, Debug)]
pub struct ServiceView {
    pub name: String,
    pub kind: &'static str,
    pub role: Role,
    pub depends_on: Vec<String>,
    /// `None` until the first check finishes.
    pub last: Option<ProbeResult>,
    pub consecutive_failures: u32,
    /// From the process matcher, or pushed metrics; `None` when unknown.
    pub cpu_usage: Option<f64>,
    pub memory_usage_mb: Option<f64>,
}

impl ServiceView {
    /// Not yet checked counts as unhealthy: nothing vouches for it.
    pub fn status(&self) -> HealthStatus {
        self.last
            .as_ref()
            .map_or(HealthStatus::Unhealthy, |r| r.status)
    }

    pub fn error_message(&self) -> Option<String> {
        match &self.last {
            None => Some("not checked yet".into()),
            Some(r) => r.error.clone(),
        }
    }

    pub fn last_check(&self) -> Option<DateTime<Utc>> {
        self.last.as_ref().map(|r| r.at)
    }
}

/// Totals over every check, for `/health`.
#[derive(Clone, Copy, Debug, Default)]
pub struct CheckCounters {
    pub total: u64,
    pub successful: u64,
    pub failed: u64,
    /// The response times of the successful checks, summed.
    pub response_ms: f64,
}

impl CheckCounters {
    /// The mean response time of the successful checks; `None` before one.
    pub fn average_ms(&self) -> Option<f64> {
        (self.successful > 0).then(|| self.response_ms / self.successful as f64)
    }
}

pub struct Registry {
    services: RwLock<Vec<ServiceView>>,
    counters: Mutex<CheckCounters>,
}

fn view(s: &ServiceSpec) -> ServiceView {
    ServiceView {
        name: s.name.clone(),
        kind: s.kind.as_str(),
        role: s.role,
        depends_on: s.depends_on.clone(),
        last: None,
        consecutive_failures: 0,
        cpu_usage: None,
        memory_usage_mb: None,
    }
}

impl Registry {
    pub fn new(specs: &[ServiceSpec]) -> Registry {
        Registry {
            services: RwLock::new(specs.iter().map(view).collect()),
            counters: Mutex::new(CheckCounters::default()),
        }
    }

    /// The services of a reloaded configuration, in its order: one kept
    /// by name keeps its last result (it is checked again at once when its
    /// check changed), a new one starts unchecked, a removed one is gone.
    pub fn set_services(&self, specs: &[ServiceSpec]) {
        let mut all = self.services.write().unwrap_or_else(|p| p.into_inner());
        let mut old: std::collections::HashMap<String, ServiceView> =
            all.drain(..).map(|v| (v.name.clone(), v)).collect();
        *all = specs
            .iter()
            .map(|s| match old.remove(&s.name) {
                Some(v) => ServiceView {
                    kind: s.kind.as_str(),
                    role: s.role,
                    depends_on: s.depends_on.clone(),
                    ..v
                },
                None => view(s),
            })
            .collect();
    }

    /// Records one result of service `name`; returns the failures in a row
    /// after it (0 for a service no longer configured).
    pub fn record(&self, name: &str, result: ProbeResult) -> u32 {
        let failed = result.status == HealthStatus::Unhealthy;
        {
            let mut c = self.counters.lock().unwrap_or_else(|p| p.into_inner());
            c.total += 1;
            c.response_ms += result.response_time_ms().unwrap_or(0.0);
            if failed {
                c.failed += 1;
            } else {
                c.successful += 1;
            }
        }
        let mut all = self.services.write().unwrap_or_else(|p| p.into_inner());
        let Some(s) = all.iter_mut().find(|s| s.name == name) else {
            return 0;
        };
        if failed {
            s.consecutive_failures += 1;
        } else {
            s.consecutive_failures = 0;
        }
        s.last = Some(result);
        s.consecutive_failures
    }

    pub fn set_resources(&self, name: &str, cpu: Option<f64>, memory_mb: Option<f64>) {
        let mut all = self.services.write().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = all.iter_mut().find(|s| s.name == name) {
            s.cpu_usage = cpu;
            s.memory_usage_mb = memory_mb;
        }
    }

    pub fn snapshot(&self) -> Vec<ServiceView> {
        self.services
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn counters(&self) -> CheckCounters {
        *self.counters.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The up/down state of a configured dependency by name (`None` when it
    /// is not configured or not checked yet).
    pub fn is_up(&self, name: &str) -> Option<bool> {
        let all = self.services.read().unwrap_or_else(|p| p.into_inner());
        all.iter()
            .find(|s| s.name == name)
            .and_then(|s| s.last.as_ref())
            .map(|r| r.status != HealthStatus::Unhealthy)
    }

    /// Each service's dependencies as name -> up: its declared `depends_on`
    /// (from their current state) merged with what its health document reports.
    pub fn dependencies_of(view: &ServiceView, all: &[ServiceView]) -> BTreeMap<String, bool> {
        let mut deps: BTreeMap<String, bool> = view
            .depends_on
            .iter()
            .map(|d| {
                let up = all
                    .iter()
                    .find(|s| &s.name == d)
                    .is_some_and(|s| s.last.is_some() && s.status() != HealthStatus::Unhealthy);
                (d.clone(), up)
            })
            .collect();
        if let Some(r) = &view.last {
            for (k, v) in &r.dependencies {
                deps.entry(k.clone()).or_insert(*v);
            }
        }
        deps
    }
}

/// Unhealthy if any service is unhealthy, degraded if any is degraded, else
/// healthy. An optional dependency (REDIS_URL / DATABASE_URL) that is down
/// makes the whole `degraded`, never `unhealthy`: the platform is impaired,
/// the services themselves still answer.
pub fn overall(all: &[ServiceView]) -> HealthStatus {
    all.iter()
        .map(|v| match (v.role, v.status()) {
            (Role::Dependency, HealthStatus::Unhealthy) => HealthStatus::Degraded,
            (_, s) => s,
        })
        .max()
        .unwrap_or(HealthStatus::Healthy)
}
