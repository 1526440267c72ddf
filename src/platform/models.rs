//! Model loading state. An event carries the model's current status; the
//! state keeps what events do not repeat: when loading started (to derive
//! `loading_time_ms`) and when it finished (`loaded_at`).

use super::persisted::{Change, Event, Persisted};
use super::{check_progress, record};
use crate::error::Result;
use crate::store::{SeriesKey, Store};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Models by status (label `status`).
pub const COUNT_METRIC: &str = "models";
/// 1 while a model's last load failed (label `model`).
pub const FAILED_METRIC: &str = "model_failed";
/// A model's memory in MiB (label `model`).
pub const MEMORY_METRIC: &str = "model_memory_mb";
/// A model's loading progress in percent (label `model`).
pub const PROGRESS_METRIC: &str = "model_loading_progress";
/// The memory held by loaded and loading models, MiB.
pub const HELD_METRIC: &str = "models_memory_mb";
/// Every series this module writes.
pub const SERIES: [&str; 5] = [
    COUNT_METRIC,
    FAILED_METRIC,
    MEMORY_METRIC,
    PROGRESS_METRIC,
    HELD_METRIC,
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ModelStatus {
    Loading,
    Loaded,
    Failed,
    Unloaded,
}

impl ModelStatus {
    pub const ALL: [ModelStatus; 4] = [
        ModelStatus::Loading,
        ModelStatus::Loaded,
        ModelStatus::Failed,
        ModelStatus::Unloaded,
    ];
    pub fn as_str(&self) -> &'static str {
        match self {
            ModelStatus::Loading => "loading",
            ModelStatus::Loaded => "loaded",
            ModelStatus::Failed => "failed",
            ModelStatus::Unloaded => "unloaded",
        }
    }
}

/// `POST /ingest/models` body (one event).
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelEvent {
    #[schemars(length(min = 1, max = 200))]
    pub name: String,
    pub status: ModelStatus,
    #[schemars(range(min = 0.0, max = 100.0))]
    pub progress: f64,
    #[schemars(range(min = 0.0, max = super::MAX_RESOURCE))]
    pub memory_usage_mb: f64,
    #[schemars(range(min = 0.0, max = 1e12))]
    pub loading_time_ms: Option<f64>,
    pub error_message: Option<String>,
    /// When it happened (default: when received).
    pub timestamp: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelState {
    pub name: String,
    pub status: ModelStatus,
    pub progress: f64,
    pub memory_usage_mb: f64,
    pub loading_time_ms: Option<f64>,
    pub error_message: Option<String>,
    pub loaded_at: Option<DateTime<Utc>>,
    /// When the current (or last) load began.
    pub loading_started_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

impl Event for ModelEvent {
    fn name(&self) -> &str {
        &self.name
    }

    fn validate(&self) -> std::result::Result<(), String> {
        if self.name.trim().is_empty() || self.name.len() > 200 {
            return Err("name: must be 1-200 characters".into());
        }
        check_progress(self.progress)?;
        if !(self.memory_usage_mb.is_finite()
            && (0.0..=super::MAX_RESOURCE).contains(&self.memory_usage_mb))
        {
            return Err(format!(
                "memory_usage_mb: {} must be a number from 0 to {:e} (MiB)",
                self.memory_usage_mb,
                super::MAX_RESOURCE
            ));
        }
        if let Some(t) = self.loading_time_ms
            && !(t.is_finite() && (0.0..=1e12).contains(&t))
        {
            return Err(format!(
                "loading_time_ms: {t} must be a number from 0 to 1e12"
            ));
        }
        Ok(())
    }
}

/// Folds an event into the previous state.
pub fn apply(prev: Option<&ModelState>, e: &ModelEvent, now: DateTime<Utc>) -> ModelState {
    let at = e.timestamp.unwrap_or(now);
    let was_loading = prev.is_some_and(|p| p.status == ModelStatus::Loading);
    let loading_started_at = match e.status {
        ModelStatus::Loading if !was_loading => Some(at),
        _ => prev.and_then(|p| p.loading_started_at),
    };
    let (loading_time_ms, loaded_at) = match e.status {
        ModelStatus::Loaded => {
            // Loading and loaded in one batch without times: both "now",
            // so the loading time is unknown, not 0.
            let derived = loading_started_at
                .filter(|_| was_loading)
                .map(|s| (at - s).num_milliseconds().max(0) as f64)
                .filter(|d| *d > 0.0 || e.timestamp.is_some());
            let keep_loaded_at = prev
                .filter(|p| p.status == ModelStatus::Loaded)
                .and_then(|p| p.loaded_at);
            (
                e.loading_time_ms
                    .or(derived)
                    .or(prev.and_then(|p| p.loading_time_ms)),
                keep_loaded_at.or(Some(at)),
            )
        }
        ModelStatus::Loading => (e.loading_time_ms, None),
        _ => (
            e.loading_time_ms.or(prev.and_then(|p| p.loading_time_ms)),
            None,
        ),
    };
    ModelState {
        name: e.name.clone(),
        status: e.status,
        progress: e.progress,
        memory_usage_mb: e.memory_usage_mb,
        loading_time_ms,
        // A failure without a message has none (no placeholder).
        error_message: e.error_message.clone(),
        loaded_at,
        loading_started_at,
        updated_at: at,
    }
}

/// The memory held by models, in MiB: those loaded or loading (failed and
/// unloaded ones hold none). `/models/status`'s `total_memory_usage_mb` and
/// the `models_memory_mb` series alike.
pub fn memory_held<'a>(models: impl Iterator<Item = &'a ModelState>) -> f64 {
    models
        .filter(|m| matches!(m.status, ModelStatus::Loaded | ModelStatus::Loading))
        .map(|m| m.memory_usage_mb)
        .sum()
}

/// A model's state once it has not reported for longer than allowed: a
/// load in progress failed, a loaded model is taken as unloaded; either
/// says since when.
pub fn went_stale(m: &ModelState) -> ModelState {
    ModelState {
        status: match m.status {
            ModelStatus::Loading => ModelStatus::Failed,
            _ => ModelStatus::Unloaded,
        },
        error_message: Some(format!("no report since {}", crate::time::ts(m.updated_at))),
        loaded_at: None,
        ..m.clone()
    }
}

pub struct Models {
    pub(super) state: Persisted<ModelState>,
}

impl Models {
    pub fn open(store: &Store) -> Result<Models> {
        Ok(Models {
            state: Persisted::open(store, "models")?,
        })
    }

    pub fn all(&self) -> Vec<ModelState> {
        self.state.all()
    }

    pub fn len(&self) -> usize {
        self.state.len()
    }

    pub fn is_empty(&self) -> bool {
        self.state.is_empty()
    }

    /// Applies events, persists the new states durably, and records series:
    /// `models{status}` (count per status), `model_memory_mb{model}`,
    /// `model_loading_progress{model}`, `model_failed{model}` (1/0),
    /// `models_memory_mb` (sum of loaded).
    pub fn ingest(&self, store: &Store, events: &[ModelEvent]) -> Result<Vec<ModelState>> {
        let now = Utc::now();
        let (out, st) = self
            .state
            .apply(store, events, |prev, e| apply(prev, e, now))?;
        let ts = now.timestamp_millis();
        let mut values = counts(&st);
        for m in &out {
            values.push((
                SeriesKey::new(MEMORY_METRIC).with("model", &m.name),
                m.memory_usage_mb,
            ));
            values.push((
                SeriesKey::new(PROGRESS_METRIC).with("model", &m.name),
                m.progress,
            ));
            let failed = if m.status == ModelStatus::Failed {
                1.0
            } else {
                0.0
            };
            values.push((SeriesKey::new(FAILED_METRIC).with("model", &m.name), failed));
        }
        record(store, ts, values)?;
        Ok(out)
    }

    /// At `now`: a model loading without a report for `stale_after` fails,
    /// a loaded one without a report for `loaded_stale_after` (if set) is
    /// taken as unloaded (`went_stale`), and unloaded models not reported
    /// for `retention` are removed. Returns the models that went stale and
    /// how many were removed; records the series that changed.
    pub fn sweep(
        &self,
        store: &Store,
        now: DateTime<Utc>,
        stale_after: chrono::Duration,
        loaded_stale_after: Option<chrono::Duration>,
        retention: chrono::Duration,
    ) -> Result<(Vec<ModelState>, usize)> {
        let (stale, purged, st) = self.state.sweep(store, |m| {
            let quiet = now - m.updated_at;
            match m.status {
                ModelStatus::Loading if quiet > stale_after => Change::Replace(went_stale(m)),
                ModelStatus::Loaded if loaded_stale_after.is_some_and(|d| quiet > d) => {
                    Change::Replace(went_stale(m))
                }
                ModelStatus::Unloaded if quiet > retention => Change::Remove,
                _ => Change::Keep,
            }
        })?;
        if !stale.is_empty() || purged > 0 {
            let mut values = counts(&st);
            for m in &stale {
                let failed = if m.status == ModelStatus::Failed {
                    1.0
                } else {
                    0.0
                };
                values.push((SeriesKey::new(FAILED_METRIC).with("model", &m.name), failed));
            }
            record(store, now.timestamp_millis(), values)?;
        }
        Ok((stale, purged))
    }
}

/// `models{status}` and `models_memory_mb` of the whole map.
fn counts(st: &std::collections::BTreeMap<String, ModelState>) -> Vec<(SeriesKey, f64)> {
    let mut values: Vec<(SeriesKey, f64)> = ModelStatus::ALL
        .iter()
        .map(|s| {
            let n = st.values().filter(|m| m.status == *s).count();
            (
                SeriesKey::new(COUNT_METRIC).with("status", s.as_str()),
                n as f64,
            )
        })
        .collect();
    values.push((SeriesKey::new(HELD_METRIC), memory_held(st.values())));
    values
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn ev(status: ModelStatus, at: DateTime<Utc>) -> ModelEvent {
        ModelEvent {
            name: "m".into(),
            status,
            progress: 50.0,
            memory_usage_mb: 100.0,
            loading_time_ms: None,
            error_message: None,
            timestamp: Some(at),
        }
    }

    #[test]
    fn loading_time_and_loaded_at_are_derived_from_loading_then_loaded() {
        let t0 = Utc::now();
        let a = apply(None, &ev(ModelStatus::Loading, t0), t0);
        let b = apply(
            Some(&a),
            &ev(ModelStatus::Loading, t0 + Duration::seconds(1)),
            t0,
        );
        assert_eq!(
            b.loading_started_at,
            Some(t0),
            "a second loading event keeps the start"
        );
        let c = apply(
            Some(&b),
            &ev(ModelStatus::Loaded, t0 + Duration::milliseconds(2500)),
            t0,
        );
        assert_eq!(c.loading_time_ms, Some(2500.0));
        assert_eq!(c.loaded_at, Some(t0 + Duration::milliseconds(2500)));
        // A later "loaded" refresh keeps when it was loaded.
        let d = apply(
            Some(&c),
            &ev(ModelStatus::Loaded, t0 + Duration::seconds(60)),
            t0,
        );
        assert_eq!(d.loaded_at, c.loaded_at);
        assert_eq!(d.loading_time_ms, Some(2500.0));
        // Loaded without a known start: no invented loading time.
        let e = apply(None, &ev(ModelStatus::Loaded, t0), t0);
        assert_eq!(e.loading_time_ms, None);
        let f = apply(
            Some(&c),
            &ev(ModelStatus::Failed, t0 + Duration::seconds(70)),
            t0,
        );
        assert_eq!((f.loaded_at, f.error_message.as_deref()), (None, None));
        // Loading then loaded in one batch, neither with a time: unknown.
        let untimed = |s| ModelEvent {
            timestamp: None,
            ..ev(s, t0)
        };
        let g = apply(None, &untimed(ModelStatus::Loading), t0);
        let h = apply(Some(&g), &untimed(ModelStatus::Loaded), t0);
        assert_eq!(h.loading_time_ms, None);
    }
}
