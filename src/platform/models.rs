//! Model loading state. An event carries the model's current status; the
//! state keeps what events do not repeat: when loading started (to derive
//! `loading_time_ms`) and when it finished (`loaded_at`).

use super::persisted::{Event, Persisted};
use super::{check_progress, record};
use crate::error::Result;
use crate::store::{SeriesKey, Store};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Models by status (label `status`).
pub const COUNT_METRIC: &str = "models";
/// 1 while a model's last load failed (label `model`).
pub const FAILED_METRIC: &str = "model_failed";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEvent {
    pub name: String,
    pub status: ModelStatus,
    pub progress: f64,
    pub memory_usage_mb: f64,
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
        if !(self.memory_usage_mb.is_finite() && self.memory_usage_mb >= 0.0) {
            return Err(format!(
                "memory_usage_mb: {} must be a number >= 0",
                self.memory_usage_mb
            ));
        }
        if let Some(t) = self.loading_time_ms
            && !(t.is_finite() && t >= 0.0)
        {
            return Err(format!("loading_time_ms: {t} must be a number >= 0"));
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
            let derived = loading_started_at
                .filter(|_| was_loading)
                .map(|s| (at - s).num_milliseconds().max(0) as f64);
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
        error_message: match e.status {
            ModelStatus::Failed => e.error_message.clone().or(Some("load failed".into())),
            _ => e.error_message.clone(),
        },
        loaded_at,
        loading_started_at,
        updated_at: at,
    }
}

pub struct Models {
    state: Persisted<ModelState>,
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
        values.push((
            SeriesKey::new("models_memory_mb"),
            st.values()
                .filter(|m| m.status == ModelStatus::Loaded)
                .map(|m| m.memory_usage_mb)
                .sum(),
        ));
        for m in &out {
            values.push((
                SeriesKey::new("model_memory_mb").with("model", &m.name),
                m.memory_usage_mb,
            ));
            values.push((
                SeriesKey::new("model_loading_progress").with("model", &m.name),
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
        assert_eq!(
            (f.loaded_at, f.error_message.as_deref()),
            (None, Some("load failed"))
        );
    }
}
