//! `GET /dashboard-data`: served from a snapshot that a background task
//! rebuilds every `REFRESH` from the registry, the latest system harvest and
//! the store's trends, so a poll is a memory copy: no probe, no sysinfo call,
//! no store read. Only while someone reads it: after `IDLE_AFTER` without a
//! request the task stops rebuilding (it was a tenth of the daemon's CPU
//! under steady ingest), and the next request builds a snapshot itself.

use super::AppState;
use super::dto::*;
use super::encoded::Encoded;
use super::reject::error_response;
use crate::query::live;
use crate::shutdown::Shutdown;
use crate::store::SeriesKey;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use warp::http::StatusCode;
use warp::reply::Response;

/// How often the snapshot is rebuilt.
pub const REFRESH: Duration = Duration::from_secs(1);
/// The snapshot is rebuilt only while it was read within this time.
pub const IDLE_AFTER: Duration = Duration::from_secs(60);
/// A request finding a snapshot older than this builds a new one.
const STALE_AFTER: Duration = Duration::from_secs(3);

pub struct DashboardCache {
    /// The snapshot and when it was built.
    json: RwLock<Option<(Arc<Encoded>, Instant)>>,
    /// When the snapshot was last asked for, in ms after `since` (0: never);
    /// an atomic, as every request stores it.
    read_at: AtomicU64,
    since: Instant,
    /// One build at a time: requests that find the snapshot stale wait for
    /// the build in progress instead of starting their own.
    building: tokio::sync::Mutex<()>,
    /// Signalled by the first read after an idle spell, so the refresher
    /// sleeps while nobody reads.
    woken: tokio::sync::Notify,
}

impl Default for DashboardCache {
    fn default() -> Self {
        DashboardCache {
            json: RwLock::new(None),
            read_at: AtomicU64::new(0),
            since: Instant::now(),
            building: tokio::sync::Mutex::new(()),
            woken: tokio::sync::Notify::new(),
        }
    }
}

impl DashboardCache {
    /// The snapshot if it is younger than `max_age`; counts as a read.
    fn get(&self, max_age: Duration) -> Option<Arc<Encoded>> {
        let now = self.since.elapsed().as_millis() as u64 + 1;
        let before = self.read_at.swap(now, Ordering::Relaxed);
        if before == 0 || now.saturating_sub(before) >= IDLE_AFTER.as_millis() as u64 {
            self.woken.notify_one();
        }
        self.json
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .filter(|(_, at)| at.elapsed() < max_age)
            .map(|(b, _)| b.clone())
    }

    fn set(&self, b: Arc<Encoded>) {
        *self.json.write().unwrap_or_else(|p| p.into_inner()) = Some((b, Instant::now()));
    }

    fn read_within(&self, d: Duration) -> bool {
        let at = self.read_at.load(Ordering::Relaxed);
        at > 0 && self.since.elapsed().as_millis() as u64 + 1 - at < d.as_millis() as u64
    }
}

/// The snapshot, gzipped (once per snapshot) when the client takes it.
pub async fn dashboard(state: AppState, want_gzip: bool) -> Result<Response, warp::Rejection> {
    let body = match state.dashboard.get(STALE_AFTER) {
        Some(body) => body,
        None => match rebuild(&state).await {
            Some(body) => body,
            None => {
                return Ok(error_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "dashboard data could not be computed; retry in a second",
                ));
            }
        },
    };
    super::encoded::reply(body, want_gzip).await
}

/// Builds a snapshot on a blocking thread and keeps it (or takes the one a
/// build that was in progress made).
async fn rebuild(state: &AppState) -> Option<Arc<Encoded>> {
    let started = Instant::now();
    let _one = state.dashboard.building.lock().await;
    if let Some(b) = state
        .dashboard
        .json
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        && b.1 >= started
    {
        return Some(b.0.clone());
    }
    let st = state.clone();
    let bytes = crate::blocking::run("dashboard snapshot", move || build(&st)).await?;
    state.dashboard.set(bytes.clone());
    Some(bytes)
}

/// Rebuilds the snapshot every `REFRESH` while it is being read, and sleeps
/// (no timer) while it is not, until shutdown.
pub async fn run_refresher(state: AppState, mut shutdown: Shutdown) {
    let mut ticker = crate::shutdown::ticker(REFRESH);
    loop {
        if !state.dashboard.read_within(IDLE_AFTER) {
            tokio::select! {
                _ = state.dashboard.woken.notified() => ticker.reset(),
                _ = shutdown.recv() => return,
            }
            continue;
        }
        if !shutdown.tick(&mut ticker).await {
            return;
        }
        rebuild(&state).await;
    }
}

fn build(state: &AppState) -> crate::error::Result<Arc<Encoded>> {
    let now = chrono::Utc::now().timestamp_millis();
    let store = &state.store;
    let one = |name: &str| {
        store
            .lookup(&SeriesKey::new(name))
            .into_iter()
            .collect::<Vec<_>>()
    };
    let rt_ids: Vec<u32> = store
        .find(Some(crate::health::RESPONSE_TIME_METRIC), &[])
        .into_iter()
        .filter(|(_, k)| k.label("service").is_some())
        .map(|(id, _)| id)
        .collect();
    let trends = DashboardTrends {
        cpu_trend: live::trend_of(
            store,
            &one(crate::collect::system::metric::CPU_USAGE_PERCENT),
            now,
        )?,
        memory_trend: live::trend_of(
            store,
            &one(crate::collect::system::metric::MEMORY_USED_MB),
            now,
        )?,
        response_time_trend: live::trend_of(store, &rt_ids, now)?,
    };
    let services = state
        .health
        .snapshot()
        .into_iter()
        .map(|v| {
            let requests = live::requests(store, &v.name, now);
            (
                v.name.clone(),
                DashboardService {
                    error_rate: requests.as_ref().and_then(|h| h.error_percent()),
                    throughput: requests.as_ref().map(live::throughput),
                    status: v.status(),
                    response_time_ms: v.last.as_ref().and_then(|r| r.response_time_ms()),
                    cpu_usage: v.cpu_usage,
                    memory_usage_mb: v.memory_usage_mb,
                    last_updated: v.last_check().map(ts),
                },
            )
        })
        .collect();
    let built = chrono::Utc::now();
    let reading = state.system.reading(built);
    let newest = state
        .health
        .snapshot()
        .iter()
        .filter_map(|v| v.last_check())
        .chain(reading.measured_at)
        .max();
    let body = DashboardData {
        services,
        system_metrics: DashboardSystem::from_reading(reading),
        alerts: state.alerts.state.counts().into(),
        trends,
        last_updated: newest.map(ts),
        built_at: ts(built),
    };
    Encoded::json(&body)
}
