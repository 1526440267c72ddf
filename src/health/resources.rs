//! Per-service CPU and memory. A service with a process matcher gets the
//! sum over its matching processes (sysinfo, refreshed on a blocking thread);
//! a service without one, or whose matcher finds no process, takes pushed
//! `service_cpu_usage_percent` and `service_memory_mb` samples (labelled
//! `service`) from the last 5 minutes; otherwise both stay `None`.

use super::registry::Registry;
use crate::config::services::{ProcessMatcher, ServiceSpec};
use crate::shutdown::Shutdown;
use crate::store::{Sample, SeriesKey, Store};
use std::sync::Arc;
use std::time::Duration;
use sysinfo::{ProcessRefreshKind, ProcessesToUpdate, System, UpdateKind};

/// Pushed resource samples older than this are ignored.
const PUSHED_MAX_AGE_MS: i64 = 5 * 60_000;

pub const CPU_METRIC: &str = "service_cpu_usage_percent";
pub const MEMORY_METRIC: &str = "service_memory_mb";

/// CPU (percent of one core, summed) and resident memory (MiB) of every
/// process matching `m`; `None` when nothing matches.
fn measure(sys: &System, m: &ProcessMatcher) -> Option<(f64, f64)> {
    let pid_from_file = match m {
        ProcessMatcher::PidFile(p) => Some(
            std::fs::read_to_string(p)
                .ok()?
                .trim()
                .parse::<usize>()
                .ok()?,
        ),
        _ => None,
    };
    let mut found = false;
    let (mut cpu, mut mem) = (0.0, 0.0);
    for (pid, p) in sys.processes() {
        if p.thread_kind().is_some() {
            continue;
        }
        let hit = match m {
            ProcessMatcher::Name(n) => p.name() == n.as_str(),
            ProcessMatcher::Cmdline(c) => {
                let cmd: Vec<String> = p
                    .cmd()
                    .iter()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect();
                cmd.join(" ").contains(c.as_str())
            }
            ProcessMatcher::PidFile(_) => Some(pid.as_u32() as usize) == pid_from_file,
        };
        if hit {
            found = true;
            cpu += p.cpu_usage() as f64;
            mem += p.memory() as f64 / (1024.0 * 1024.0);
        }
    }
    found.then_some((cpu, mem))
}

/// Samples resources every `interval` until shutdown.
pub async fn run(
    services: Arc<super::engine::Services>,
    store: Store,
    registry: Arc<Registry>,
    interval: Duration,
    mut shutdown: Shutdown,
) {
    // The outer Option is "not lent to the blocking thread"; the inner one is
    // None where sysinfo does not support the platform.
    let mut sys: Option<Option<System>> = Some(System::new().ok());
    let mut first = true;
    let mut ticker = crate::shutdown::ticker(interval);
    while shutdown.tick(&mut ticker).await {
        // The services configured now (a reload may change them).
        let specs = services.specs();
        if specs.is_empty() {
            continue;
        }
        let any_matcher = specs.iter().any(|s| s.process.is_some());
        let Some(mut s) = sys.take() else { return };
        let (specs2, store2, registry2) = (specs.clone(), store.clone(), registry.clone());
        // CPU is a delta between refreshes: the first tick only primes it.
        let report_cpu = !first;
        first = false;
        let joined = tokio::task::spawn_blocking(move || {
            if let (true, Some(sys)) = (any_matcher, s.as_mut()) {
                sys.refresh_processes_specifics(
                    ProcessesToUpdate::All,
                    true,
                    ProcessRefreshKind::nothing()
                        .with_cpu()
                        .with_memory()
                        .with_cmd(UpdateKind::OnlyIfNotSet),
                );
            }
            sample(s.as_ref(), &specs2, &store2, &registry2, report_cpu);
            s
        })
        .await;
        match joined {
            Ok(s) => sys = Some(s),
            Err(e) => {
                tracing::error!(error = %e, "resource sampler crashed; restarting it");
                sys = Some(System::new().ok());
                first = true;
            }
        }
    }
}

fn sample(
    sys: Option<&System>,
    specs: &[ServiceSpec],
    store: &Store,
    registry: &Registry,
    report_cpu: bool,
) {
    let now = chrono::Utc::now().timestamp_millis();
    let mut samples = Vec::new();
    for spec in specs {
        let cpu_key = SeriesKey::new(CPU_METRIC).with("service", &spec.name);
        let mem_key = SeriesKey::new(MEMORY_METRIC).with("service", &spec.name);
        let (cpu, mem) = match &spec.process {
            Some(m) => match sys.and_then(|sys| measure(sys, m)) {
                Some((cpu, mem)) => {
                    if let Ok(ids) = store.resolve_all(&[cpu_key, mem_key]) {
                        if report_cpu {
                            samples.push(Sample {
                                series: ids[0],
                                ts_ms: now,
                                value: cpu,
                            });
                        }
                        samples.push(Sample {
                            series: ids[1],
                            ts_ms: now,
                            value: mem,
                        });
                    }
                    (report_cpu.then_some(cpu), Some(mem))
                }
                None => (pushed(store, &cpu_key, now), pushed(store, &mem_key, now)),
            },
            None => (pushed(store, &cpu_key, now), pushed(store, &mem_key, now)),
        };
        registry.set_resources(&spec.name, cpu, mem);
    }
    if let Err(e) = store.ingest(&samples) {
        tracing::warn!(error = %e, "storing service resources failed");
    }
}

fn pushed(store: &Store, key: &SeriesKey, now: i64) -> Option<f64> {
    let id = store.lookup(key)?;
    let (ts, v) = store.latest(id, now).ok().flatten()?;
    (now - ts <= PUSHED_MAX_AGE_MS).then_some(v)
}
