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
}

/// Writes gauge values at `ts_ms` (series are registered as needed).
fn record(store: &Store, ts_ms: i64, values: Vec<(SeriesKey, f64)>) -> Result<()> {
    store
        .record(values.into_iter().map(|(k, v)| (k, ts_ms, v)))
        .map(|_| ())
}

/// A progress percentage must be within 0-100.
pub fn check_progress(p: f64) -> std::result::Result<(), String> {
    if p.is_finite() && (0.0..=100.0).contains(&p) {
        Ok(())
    } else {
        Err(format!("progress: {p} is outside 0-100"))
    }
}
