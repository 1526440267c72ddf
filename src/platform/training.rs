//! Training jobs. An event carries the job's status, progress and resource
//! use; the state remembers the first progress seen so the completion time
//! can be estimated when the job does not give one.

use super::persisted::{Event, Persisted};
use super::{check_progress, record};
use crate::error::Result;
use crate::store::{SeriesKey, Store};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// 1 once a job failed (labels `job_id`, `model`).
pub const JOB_FAILED_METRIC: &str = "training_job_failed";
/// A job's progress in percent.
pub const JOB_PROGRESS_METRIC: &str = "training_job_progress";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Pending,
    Running,
    Completed,
    Failed,
}

impl JobStatus {
    pub const ALL: [JobStatus; 4] = [
        JobStatus::Pending,
        JobStatus::Running,
        JobStatus::Completed,
        JobStatus::Failed,
    ];
    pub fn as_str(&self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Running => "running",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceUsage {
    pub cpu_usage: f64,
    pub memory_usage_mb: f64,
    pub gpu_usage: Option<f64>,
}

/// `POST /ingest/training` body (one event).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobEvent {
    pub job_id: String,
    pub model_name: String,
    pub status: JobStatus,
    pub progress: f64,
    pub started_at: DateTime<Utc>,
    pub estimated_completion: Option<DateTime<Utc>>,
    pub resource_usage: ResourceUsage,
    /// When it was observed (default: when received).
    pub timestamp: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobState {
    pub job_id: String,
    pub model_name: String,
    pub status: JobStatus,
    pub progress: f64,
    pub started_at: DateTime<Utc>,
    /// Given by the job, or estimated (see `estimate`).
    pub estimated_completion: Option<DateTime<Utc>>,
    pub estimated: bool,
    pub resource_usage: ResourceUsage,
    /// The first (time, progress) observed while running.
    pub first_progress: Option<(DateTime<Utc>, f64)>,
    pub updated_at: DateTime<Utc>,
}

impl Event for JobEvent {
    fn name(&self) -> &str {
        &self.job_id
    }

    fn validate(&self) -> std::result::Result<(), String> {
        if self.job_id.trim().is_empty() || self.job_id.len() > 200 {
            return Err("job_id: must be 1-200 characters".into());
        }
        if self.model_name.trim().is_empty() || self.model_name.len() > 200 {
            return Err("model_name: must be 1-200 characters".into());
        }
        check_progress(self.progress)?;
        let r = &self.resource_usage;
        for (field, v) in [
            ("resource_usage.cpu_usage", Some(r.cpu_usage)),
            ("resource_usage.memory_usage_mb", Some(r.memory_usage_mb)),
            ("resource_usage.gpu_usage", r.gpu_usage),
        ] {
            if let Some(v) = v
                && !(v.is_finite() && v >= 0.0)
            {
                return Err(format!("{field}: {v} must be a number >= 0"));
            }
        }
        Ok(())
    }
}

/// Estimated completion of a running job from its progress rate: the rate
/// between the first progress seen while running and now; with a single
/// observation, the average rate since `started_at`. `None` without progress.
pub fn estimate(
    started_at: DateTime<Utc>,
    first: Option<(DateTime<Utc>, f64)>,
    now: DateTime<Utc>,
    progress: f64,
) -> Option<DateTime<Utc>> {
    let per_ms = |t0: DateTime<Utc>, p0: f64| {
        let dt = (now - t0).num_milliseconds() as f64;
        (dt > 0.0 && progress > p0).then(|| (progress - p0) / dt)
    };
    let rate = first
        .and_then(|(t0, p0)| per_ms(t0, p0))
        .or_else(|| per_ms(started_at, 0.0))?;
    let remaining_ms = (100.0 - progress) / rate;
    Some(now + chrono::Duration::milliseconds(remaining_ms.min(1e13) as i64))
}

pub fn apply(prev: Option<&JobState>, e: &JobEvent, now: DateTime<Utc>) -> JobState {
    let at = e.timestamp.unwrap_or(now);
    let first_progress = match (prev.and_then(|p| p.first_progress), e.status) {
        (Some(f), _) => Some(f),
        (None, JobStatus::Running) => Some((at, e.progress)),
        (None, _) => None,
    };
    let (estimated_completion, estimated) = match (e.estimated_completion, e.status) {
        (Some(t), _) => (Some(t), false),
        (None, JobStatus::Running) => {
            (estimate(e.started_at, first_progress, at, e.progress), true)
        }
        (None, _) => (None, false),
    };
    JobState {
        job_id: e.job_id.clone(),
        model_name: e.model_name.clone(),
        status: e.status,
        progress: e.progress,
        started_at: e.started_at,
        estimated_completion,
        estimated,
        resource_usage: e.resource_usage.clone(),
        first_progress,
        updated_at: at,
    }
}

pub struct Jobs {
    state: Persisted<JobState>,
}

impl Jobs {
    pub fn open(store: &Store) -> Result<Jobs> {
        Ok(Jobs {
            state: Persisted::open(store, "training_jobs")?,
        })
    }

    pub fn all(&self) -> Vec<JobState> {
        self.state.all()
    }

    /// Applies events, persists durably, and records series: `training_jobs{status}`,
    /// `training_job_progress{job,model}`, and the running jobs' summed
    /// `training_cpu_usage`, `training_memory_mb`, `training_gpu_usage`.
    pub fn ingest(&self, store: &Store, events: &[JobEvent]) -> Result<Vec<JobState>> {
        let now = Utc::now();
        let (out, st) = self
            .state
            .apply(store, events, |prev, e| apply(prev, e, now))?;
        let mut values: Vec<(SeriesKey, f64)> = JobStatus::ALL
            .iter()
            .map(|s| {
                let n = st.values().filter(|j| j.status == *s).count();
                (
                    SeriesKey::new("training_jobs").with("status", s.as_str()),
                    n as f64,
                )
            })
            .collect();
        let running: Vec<&JobState> = st
            .values()
            .filter(|j| j.status == JobStatus::Running)
            .collect();
        values.push((
            SeriesKey::new("training_cpu_usage"),
            running.iter().map(|j| j.resource_usage.cpu_usage).sum(),
        ));
        values.push((
            SeriesKey::new("training_memory_mb"),
            running
                .iter()
                .map(|j| j.resource_usage.memory_usage_mb)
                .sum(),
        ));
        let gpus: Vec<f64> = running
            .iter()
            .filter_map(|j| j.resource_usage.gpu_usage)
            .collect();
        if !gpus.is_empty() {
            values.push((SeriesKey::new("training_gpu_usage"), gpus.iter().sum()));
        }
        for j in &out {
            let failed = if j.status == JobStatus::Failed {
                1.0
            } else {
                0.0
            };
            values.push((
                SeriesKey::new(JOB_FAILED_METRIC)
                    .with("job", &j.job_id)
                    .with("model", &j.model_name),
                failed,
            ));
            values.push((
                SeriesKey::new(JOB_PROGRESS_METRIC)
                    .with("job", &j.job_id)
                    .with("model", &j.model_name),
                j.progress,
            ));
        }
        record(store, now.timestamp_millis(), values)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn completion_is_estimated_from_the_progress_rate() {
        let t0 = Utc::now();
        // 10 % at the first observation, 30 % ten minutes later: 2 %/min, 35 min to go.
        let eta = estimate(
            t0 - Duration::hours(1),
            Some((t0, 10.0)),
            t0 + Duration::minutes(10),
            30.0,
        )
        .unwrap();
        assert_eq!(eta, t0 + Duration::minutes(45));
        // One observation: the average since start (25 % in 50 min: 150 min to go).
        let eta = estimate(t0, None, t0 + Duration::minutes(50), 25.0).unwrap();
        assert_eq!(eta, t0 + Duration::minutes(200));
        assert_eq!(
            estimate(t0, Some((t0, 0.0)), t0, 0.0),
            None,
            "no progress, no estimate"
        );
    }
}
