//! Collectors: they produce plain data and write it to the store: the
//! system collector (`system.rs`), scrapes of the services' Prometheus
//! endpoints (`scrape.rs`) and pushed request statistics (`requests.rs`).
//! Health probes are the health engine's (`crate::health`).
//!
//! `SystemMonitor` is what the API reads: the latest harvest and the
//! collector's own health (ticks, failures, last success), so a request never
//! triggers a sysinfo refresh.

pub mod requests;
pub mod scrape;
pub mod system;

use crate::shutdown::Shutdown;
use crate::store::{Sample, SeriesId, SeriesKey, Store};
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
    monitor: Arc<SystemMonitor>,
    mut shutdown: Shutdown,
) {
    let mut ticker = crate::shutdown::ticker(monitor.interval);
    let mut source = Some(SystemSource::new(store.dir()));
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
                source = Some(SystemSource::new(store.dir()));
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
