//! ML platform state pushed by the services: model loading (`models.rs`) and
//! training jobs (`training.rs`). The current state of each model and job is
//! kept in memory and persisted in its own sled tree (`persisted.rs`), so it
//! survives a restart; every change is also written to the store as series
//! for charts.

pub mod models;
pub mod persisted;
pub mod training;

use crate::error::Result;
use crate::store::{SeriesKey, Store};

/// Both kinds of platform state, opened from the store.
pub struct Platform {
    pub models: models::Models,
    pub jobs: training::Jobs,
}

impl Platform {
    pub fn open(store: &Store) -> Result<Platform> {
        Ok(Platform {
            models: models::Models::open(store)?,
            jobs: training::Jobs::open(store)?,
        })
    }

    /// The models' and the jobs' trees, each copied while no change can
    /// reach it (a backup).
    pub fn copy_trees(&self, store: &Store) -> Result<Vec<crate::store::frozen::TreeCopy>> {
        Ok(vec![
            self.models.state.copy_tree(store)?,
            self.jobs.state.copy_tree(store)?,
        ])
    }
}

/// When platform state goes stale and how long finished state is kept.
#[derive(Clone, Copy, Debug)]
pub struct Sweep {
    /// A running job or a loading model not reported for this long fails.
    pub stale_after: chrono::Duration,
    /// A loaded model not reported for this long is unloaded (`None`: never).
    pub loaded_stale_after: Option<chrono::Duration>,
    /// Finished jobs and unloaded models not reported for this long go.
    pub retention: chrono::Duration,
}

impl Sweep {
    pub fn from_config(c: &crate::config::Config) -> Sweep {
        let d =
            |d: std::time::Duration| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
        Sweep {
            stale_after: d(c.platform_stale_after),
            loaded_stale_after: c.model_stale_after.map(d),
            retention: chrono::Duration::days(c.platform_retention_days.into()),
        }
    }

    /// How often to sweep: often enough that staleness is seen within a
    /// quarter of its limit, at most once a minute.
    pub fn every(&self) -> std::time::Duration {
        let quarter = (self.stale_after / 4).to_std().unwrap_or_default();
        quarter.clamp(
            std::time::Duration::from_millis(100),
            std::time::Duration::from_secs(60),
        )
    }
}

impl Platform {
    /// Applies the staleness rules and the retention at `now`; returns how
    /// many jobs and models went stale and how many were purged.
    pub fn sweep(
        &self,
        store: &Store,
        now: chrono::DateTime<chrono::Utc>,
        s: &Sweep,
    ) -> Result<(usize, usize)> {
        let jobs = self.jobs.sweep(store, now, s.stale_after, s.retention)?;
        let (models, models_purged) =
            self.models
                .sweep(store, now, s.stale_after, s.loaded_stale_after, s.retention)?;
        for j in &jobs.stale {
            tracing::warn!(job = %j.job_id, model = %j.model_name, reason = j.error_message.as_deref().unwrap_or(""), "training job stopped reporting; marked failed");
        }
        for m in &models {
            tracing::warn!(model = %m.name, status = m.status.as_str(), reason = m.error_message.as_deref().unwrap_or(""), "model stopped reporting");
        }
        Ok((jobs.stale.len() + models.len(), jobs.purged + models_purged))
    }
}

/// Sweeps platform state every `Sweep::every` until shutdown.
pub async fn run_sweeper(
    platform: std::sync::Arc<Platform>,
    store: Store,
    sweep: Sweep,
    mut shutdown: crate::shutdown::Shutdown,
) {
    let mut ticker = crate::shutdown::ticker(sweep.every());
    while shutdown.tick(&mut ticker).await {
        let (p, st) = (platform.clone(), store.clone());
        crate::blocking::run("sweeping platform state", move || {
            p.sweep(&st, chrono::Utc::now(), &sweep)
        })
        .await;
    }
}

/// Writes gauge values at `ts_ms` (series are registered as needed).
fn record(store: &Store, ts_ms: i64, values: Vec<(SeriesKey, f64)>) -> Result<()> {
    store
        .record(values.into_iter().map(|(k, v)| (k, ts_ms, v)))
        .map(|_| ())
}

/// The largest memory (MiB: a pebibyte), CPU or GPU (percent of one core) a
/// model or job may report: beyond it a value is a unit error, and sums
/// over models and jobs would become infinite.
pub const MAX_RESOURCE: f64 = 1e9;

/// A progress percentage must be within 0-100.
pub fn check_progress(p: f64) -> std::result::Result<(), String> {
    if p.is_finite() && (0.0..=100.0).contains(&p) {
        Ok(())
    } else {
        Err(format!("progress: {p} is outside 0-100"))
    }
}
