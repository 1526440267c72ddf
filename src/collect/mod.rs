//! Collectors: they produce plain data and write it to the store: the
//! system collector (`system.rs`), scrapes of the services' Prometheus
//! endpoints (`scrape.rs`) and pushed request statistics (`requests.rs`).
//! Health probes are the health engine's (`crate::health`).
//!
//! `SystemMonitor` is what the API reads: the latest harvest and the
//! collector's own health (ticks, failures, last success), so a request never
//! triggers a sysinfo refresh.

mod net_dev;
pub mod requests;
pub mod scrape;
pub mod system;

use crate::shutdown::Shutdown;
use crate::store::{Sample, SeriesId, SeriesKey, Store};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use system::{SystemHarvest, SystemSource};

/// Ticks that may be missed before the collector counts as stalled.
pub const STALL_TICKS: u32 = 3;

#[derive(Clone, Debug, Default)]
pub struct CollectorCounters {
    pub ticks: u64,
    pub failed: u64,
    /// Sum of tick durations, for the average.
    pub total_ms: f64,
    pub last_error: Option<String>,
}

/// Live system values with the time they were measured.
#[derive(Clone, Debug)]
pub struct Reading {
    /// When the newest harvest was taken (`None`: never).
    pub measured_at: Option<DateTime<Utc>>,
    /// The harvest, when it is recent enough to show as live.
    pub harvest: Option<SystemHarvest>,
    /// Why `harvest` is withheld.
    pub stale_reason: Option<String>,
}

impl Reading {
    pub fn stale(&self) -> bool {
        self.harvest.is_none()
    }
}

pub struct SystemMonitor {
    latest: RwLock<Option<SystemHarvest>>,
    counters: Mutex<CollectorCounters>,
    last_ok: Mutex<Instant>,
    interval: Duration,
}

impl SystemMonitor {
    pub fn new(interval: Duration) -> SystemMonitor {
        SystemMonitor {
            latest: RwLock::new(None),
            counters: Mutex::new(CollectorCounters::default()),
            // Start-up counts as a success so a fresh daemon is not "stalled".
            last_ok: Mutex::new(Instant::now()),
            interval,
        }
    }

    pub fn latest(&self) -> Option<SystemHarvest> {
        self.latest
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The newest harvest as live values at `now`: withheld (`harvest`
    /// `None`, `stale` true, with the reason) once it is older than
    /// `STALL_TICKS` intervals, so a stalled collector never passes for a
    /// current reading.
    pub fn reading(&self, now: DateTime<Utc>) -> Reading {
        let Some(h) = self.latest() else {
            return Reading {
                measured_at: None,
                harvest: None,
                stale_reason: Some("no system reading yet".into()),
            };
        };
        let max_age = self.interval * STALL_TICKS;
        let age = (now - h.at).to_std().unwrap_or_default();
        if age > max_age {
            return Reading {
                measured_at: Some(h.at),
                harvest: None,
                stale_reason: Some(format!(
                    "the newest system reading is {:.0} s old (over {STALL_TICKS} collection intervals of {:.1} s)",
                    age.as_secs_f64(),
                    self.interval.as_secs_f64()
                )),
            };
        }
        Reading {
            measured_at: Some(h.at),
            harvest: Some(h),
            stale_reason: None,
        }
    }

    pub fn counters(&self) -> CollectorCounters {
        self.counters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// False once `STALL_TICKS` ticks have passed without a successful one.
    pub fn is_healthy(&self) -> bool {
        let last = *self.last_ok.lock().unwrap_or_else(|p| p.into_inner());
        last.elapsed() < self.interval * STALL_TICKS + Duration::from_secs(1)
    }

    fn record(&self, result: Result<SystemHarvest, String>, took: Duration) {
        let mut c = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        c.ticks += 1;
        c.total_ms += took.as_secs_f64() * 1000.0;
        match result {
            Ok(h) => {
                c.last_error = None;
                *self.last_ok.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
                *self.latest.write().unwrap_or_else(|p| p.into_inner()) = Some(h);
            }
            Err(e) => {
                c.failed += 1;
                c.last_error = Some(e);
            }
        }
    }
}

/// Harvests system metrics every `interval` on a blocking thread and stores them.
pub async fn run_system_collector(
    store: Store,
    interfaces: system::Interfaces,
    monitor: Arc<SystemMonitor>,
    mut shutdown: Shutdown,
) {
    let mut ticker = crate::shutdown::ticker(monitor.interval);
    let mut source = Some(SystemSource::new(store.dir(), interfaces.clone()));
    let mut ids: HashMap<SeriesKey, SeriesId> = HashMap::new();
    while shutdown.tick(&mut ticker).await {
        let Some(mut src) = source.take() else { return };
        let st = store.clone();
        let mut known = std::mem::take(&mut ids);
        let started = Instant::now();
        let joined = tokio::task::spawn_blocking(move || {
            let h = src.harvest();
            let stored = store_harvest(&st, &h, &mut known).map(|_| h);
            (src, known, stored)
        })
        .await;
        match joined {
            Ok((src, known, stored)) => {
                source = Some(src);
                ids = known;
                if let Err(e) = &stored {
                    tracing::warn!(error = %e, "system collector tick failed");
                }
                monitor.record(stored, started.elapsed());
            }
            Err(e) => {
                // The harvest panicked: start over with a fresh source next tick.
                tracing::error!(error = %e, "system collector crashed; restarting it");
                source = Some(SystemSource::new(store.dir(), interfaces.clone()));
                monitor.record(Err(e.to_string()), started.elapsed());
            }
        }
    }
}

fn store_harvest(
    store: &Store,
    h: &SystemHarvest,
    ids: &mut HashMap<SeriesKey, SeriesId>,
) -> Result<(), String> {
    let ts_ms = h.at.timestamp_millis();
    let mut samples = Vec::new();
    for (key, value) in h.series() {
        let id = match ids.get(&key) {
            Some(id) => *id,
            None => {
                let id = store.resolve(&key).map_err(|e| e.to_string())?;
                ids.insert(key, id);
                id
            }
        };
        samples.push(Sample {
            series: id,
            ts_ms,
            value,
        });
    }
    store.ingest(&samples).map_err(|e| e.to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn harvest(at: DateTime<Utc>) -> SystemHarvest {
        SystemHarvest {
            at,
            cpu_usage_percent: Some(12.0),
            ..SystemHarvest::default()
        }
    }

    #[test]
    fn a_stalled_collector_reading_is_withheld_with_its_age() {
        let m = SystemMonitor::new(Duration::from_secs(5));
        let t0 = Utc::now();
        let r = m.reading(t0);
        assert!(r.stale() && r.measured_at.is_none());
        m.record(Ok(harvest(t0)), Duration::from_millis(3));
        let fresh = m.reading(t0 + chrono::Duration::seconds(14));
        assert_eq!(fresh.harvest.and_then(|h| h.cpu_usage_percent), Some(12.0));
        assert_eq!(fresh.measured_at, Some(t0));
        // Three intervals later with no new harvest: stale, still dated.
        let stalled = m.reading(t0 + chrono::Duration::seconds(16));
        assert!(stalled.stale());
        assert_eq!(stalled.measured_at, Some(t0));
        let why = stalled.stale_reason.unwrap_or_default();
        assert!(why.contains("16 s old"), "{why}");
    }
}
