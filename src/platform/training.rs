//! Training jobs. An event carries the job's status, progress and resource
//! use; the state remembers the first progress seen so the completion time
//! can be estimated when the job does not give one.

use super::persisted::{Change, Event, Persisted};
use super::{check_progress, record};
use crate::error::Result;
use crate::store::{SeriesKey, Store};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// 1 once a job failed (labels `job_id`, `model`).
pub const JOB_FAILED_METRIC: &str = "training_job_failed";
/// A job's progress in percent.
pub const JOB_PROGRESS_METRIC: &str = "training_job_progress";
/// 1 while a job is failed for want of reports (labels `job`, `model`).
pub const JOB_STALE_METRIC: &str = "training_job_stale";
/// Jobs per status (label `status`).
pub const JOBS_METRIC: &str = "training_jobs";
/// The running jobs' CPU (percent of one core, summed), memory (MiB,
/// summed) and GPU (mean percent).
pub const CPU_METRIC: &str = "training_cpu_usage";
pub const MEMORY_METRIC: &str = "training_memory_mb";
pub const GPU_METRIC: &str = "training_gpu_usage";
/// Every series this module writes.
pub const SERIES: [&str; 7] = [
    JOB_FAILED_METRIC,
    JOB_PROGRESS_METRIC,
    JOB_STALE_METRIC,
    JOBS_METRIC,
    CPU_METRIC,
    MEMORY_METRIC,
    GPU_METRIC,
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceUsage {
    #[schemars(range(min = 0.0, max = super::MAX_RESOURCE))]
    pub cpu_usage: f64,
    #[schemars(range(min = 0.0, max = super::MAX_RESOURCE))]
    pub memory_usage_mb: f64,
    /// A utilisation in percent.
    #[schemars(range(min = 0.0, max = 100.0))]
    pub gpu_usage: Option<f64>,
}

/// `POST /ingest/training` body (one event).
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobEvent {
    #[schemars(length(min = 1, max = 200))]
    pub job_id: String,
    #[schemars(length(min = 1, max = 200))]
    pub model_name: String,
    pub status: JobStatus,
    #[schemars(range(min = 0.0, max = 100.0))]
    pub progress: f64,
    pub started_at: DateTime<Utc>,
    pub estimated_completion: Option<DateTime<Utc>>,
    pub resource_usage: ResourceUsage,
    /// Why a failed job failed (beyond the spec).
    #[serde(default)]
    pub error_message: Option<String>,
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
    /// The first (time, progress) observed while running, of this run.
    pub first_progress: Option<(DateTime<Utc>, f64)>,
    /// When the job last reported.
    pub updated_at: DateTime<Utc>,
    pub error_message: Option<String>,
    /// Failed because it stopped reporting while running (not by a report).
    pub stale: bool,
}

/// `JobState` as format 1 persisted it, before `error_message` and `stale`.
#[derive(Deserialize, Serialize)]
pub struct JobStateV1 {
    job_id: String,
    model_name: String,
    status: JobStatus,
    progress: f64,
    started_at: DateTime<Utc>,
    estimated_completion: Option<DateTime<Utc>>,
    estimated: bool,
    resource_usage: ResourceUsage,
    first_progress: Option<(DateTime<Utc>, f64)>,
    updated_at: DateTime<Utc>,
}

impl From<JobStateV1> for JobState {
    fn from(o: JobStateV1) -> JobState {
        JobState {
            job_id: o.job_id,
            model_name: o.model_name,
            status: o.status,
            progress: o.progress,
            started_at: o.started_at,
            estimated_completion: o.estimated_completion,
            estimated: o.estimated,
            resource_usage: o.resource_usage,
            first_progress: o.first_progress,
            updated_at: o.updated_at,
            error_message: None,
            stale: false,
        }
    }
}

impl JobState {
    /// The completion time to show at `now`: the job's own, or the
    /// estimate while it is still ahead (an estimate already passed says
    /// nothing: `None`).
    pub fn eta(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.estimated_completion
            .filter(|t| !self.estimated || (self.status == JobStatus::Running && *t >= now))
    }
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
                && !(v.is_finite() && (0.0..=super::MAX_RESOURCE).contains(&v))
            {
                return Err(format!(
                    "{field}: {v} must be a number from 0 to {:e}",
                    super::MAX_RESOURCE
                ));
            }
        }
        if let Some(g) = r.gpu_usage
            && g > 100.0
        {
            return Err(format!(
                "resource_usage.gpu_usage: {g} is over 100 (a utilisation in percent)"
            ));
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
    // A new `started_at` is a restart: the progress rate starts over.
    let prev = prev.filter(|p| p.started_at == e.started_at);
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
        error_message: match e.status {
            JobStatus::Failed => e.error_message.clone(),
            _ => None,
        },
        stale: false,
    }
}

/// A running job's state once it has not reported since `updated_at` for
/// longer than allowed: failed, saying since when.
pub fn went_stale(j: &JobState) -> JobState {
    JobState {
        status: JobStatus::Failed,
        error_message: Some(format!("no report since {}", crate::time::ts(j.updated_at))),
        estimated_completion: j.estimated_completion.filter(|_| !j.estimated),
        stale: true,
        ..j.clone()
    }
}

/// What `Jobs::sweep` did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SweepReport {
    /// Jobs failed for want of reports.
    pub stale: Vec<JobState>,
    /// Finished jobs removed after the retention.
    pub purged: usize,
}

pub struct Jobs {
    pub(super) state: Persisted<JobState>,
}

impl Jobs {
    pub fn open(store: &Store) -> Result<Jobs> {
        Ok(Jobs {
            state: Persisted::open_migrating::<JobStateV1>(store, "training_jobs")?,
        })
    }

    pub fn all(&self) -> Vec<JobState> {
        self.state.all()
    }

    /// Applies events, persists durably, and records series (`series`).
    pub fn ingest(&self, store: &Store, events: &[JobEvent]) -> Result<Vec<JobState>> {
        let now = Utc::now();
        let (out, st) = self
            .state
            .apply(store, events, |prev, e| apply(prev, e, now))?;
        record(store, now.timestamp_millis(), series(&st, &out))?;
        Ok(out)
    }

    /// At `now`: fails every running job not reported for `stale_after`
    /// (`went_stale`), and removes finished jobs (completed, failed) not
    /// reported for `retention`; records the series that changed.
    pub fn sweep(
        &self,
        store: &Store,
        now: DateTime<Utc>,
        stale_after: chrono::Duration,
        retention: chrono::Duration,
    ) -> Result<SweepReport> {
        let (stale, purged, st) = self.state.sweep(store, |j| {
            let quiet = now - j.updated_at;
            match j.status {
                JobStatus::Running if quiet > stale_after => Change::Replace(went_stale(j)),
                JobStatus::Completed | JobStatus::Failed if quiet > retention => Change::Remove,
                _ => Change::Keep,
            }
        })?;
        if !stale.is_empty() || purged > 0 {
            record(store, now.timestamp_millis(), series(&st, &stale))?;
        }
        Ok(SweepReport { stale, purged })
    }
}

/// The series of the jobs after a change: `training_jobs{status}`, the
/// running jobs' summed `training_cpu_usage` and `training_memory_mb` and
/// mean `training_gpu_usage` (over those that report one), and for each
/// changed job `training_job_progress`, `training_job_failed` (1 when a
/// report said failed) and `training_job_stale` (1 when it stopped
/// reporting) with labels `job` and `model`.
fn series(
    all: &std::collections::BTreeMap<String, JobState>,
    changed: &[JobState],
) -> Vec<(SeriesKey, f64)> {
    let mut values: Vec<(SeriesKey, f64)> = JobStatus::ALL
        .iter()
        .map(|s| {
            let n = all.values().filter(|j| j.status == *s).count();
            (
                SeriesKey::new(JOBS_METRIC).with("status", s.as_str()),
                n as f64,
            )
        })
        .collect();
    let running: Vec<&JobState> = all
        .values()
        .filter(|j| j.status == JobStatus::Running)
        .collect();
    let usage = Utilization::of(running.iter().map(|j| &j.resource_usage));
    values.push((SeriesKey::new(CPU_METRIC), usage.cpu));
    values.push((SeriesKey::new(MEMORY_METRIC), usage.memory_mb));
    if let Some(gpu) = usage.gpu {
        values.push((SeriesKey::new(GPU_METRIC), gpu));
    }
    let flag = |b: bool| if b { 1.0 } else { 0.0 };
    for j in changed {
        let key = |m: &str| {
            SeriesKey::new(m)
                .with("job", &j.job_id)
                .with("model", &j.model_name)
        };
        values.push((
            key(JOB_FAILED_METRIC),
            flag(j.status == JobStatus::Failed && !j.stale),
        ));
        values.push((key(JOB_STALE_METRIC), flag(j.stale)));
        values.push((key(JOB_PROGRESS_METRIC), j.progress));
    }
    values
}

/// What the running jobs use together.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Utilization {
    /// Summed over the running jobs, each in percent of one core.
    pub cpu: f64,
    /// Summed over the running jobs, in MiB.
    pub memory_mb: f64,
    /// The mean GPU utilisation (0-100 %) of the running jobs that report
    /// one; `None` when none does. A mean, not a sum: two jobs at 80 % are
    /// not 160 % of anything.
    pub gpu: Option<f64>,
}

impl Utilization {
    pub fn of<'a>(jobs: impl Iterator<Item = &'a ResourceUsage>) -> Utilization {
        let mut u = Utilization::default();
        let (mut gpu_sum, mut gpus) = (0.0, 0usize);
        for r in jobs {
            u.cpu += r.cpu_usage;
            u.memory_mb += r.memory_usage_mb;
            if let Some(g) = r.gpu_usage {
                gpu_sum += g;
                gpus += 1;
            }
        }
        u.gpu = (gpus > 0).then(|| gpu_sum / gpus as f64);
        u
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn event(
        status: JobStatus,
        progress: f64,
        started: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> JobEvent {
        JobEvent {
            job_id: "j".into(),
            model_name: "m".into(),
            status,
            progress,
            started_at: started,
            estimated_completion: None,
            resource_usage: ResourceUsage {
                cpu_usage: 1.0,
                memory_usage_mb: 1.0,
                gpu_usage: None,
            },
            error_message: None,
            timestamp: Some(at),
        }
    }

    #[test]
    fn states_persisted_before_error_message_still_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let t0 = Utc::now();
        {
            let store = Store::open(
                dir.path(),
                crate::store::Layout::new(std::time::Duration::from_secs(5), 3),
                100,
            )
            .expect("store");
            let old = JobStateV1 {
                job_id: "j".into(),
                model_name: "m".into(),
                status: JobStatus::Running,
                progress: 10.0,
                started_at: t0,
                estimated_completion: None,
                estimated: false,
                resource_usage: ResourceUsage {
                    cpu_usage: 1.0,
                    memory_usage_mb: 2.0,
                    gpu_usage: None,
                },
                first_progress: None,
                updated_at: t0,
            };
            let tree = store.tree("training_jobs").expect("tree");
            tree.insert("j", crate::store::codec::encode(&old))
                .expect("insert");
            store.sync().expect("sync");
        }
        let store = Store::open(
            dir.path(),
            crate::store::Layout::new(std::time::Duration::from_secs(5), 3),
            100,
        )
        .expect("store");
        let jobs = Jobs::open(&store).expect("open");
        let all = jobs.all();
        assert_eq!(
            (all.len(), all[0].progress, all[0].error_message.clone()),
            (1, 10.0, None)
        );
    }

    #[test]
    fn a_restart_starts_the_estimate_over_and_a_passed_estimate_is_dropped() {
        let t0 = Utc::now();
        let a = apply(None, &event(JobStatus::Running, 10.0, t0, t0), t0);
        let b = apply(
            Some(&a),
            &event(JobStatus::Running, 50.0, t0, t0 + Duration::minutes(10)),
            t0,
        );
        // 40 % in 10 minutes: 12.5 minutes to go.
        let eta = b.estimated_completion.expect("an estimate");
        assert_eq!(eta, t0 + Duration::minutes(10) + Duration::seconds(750));
        assert_eq!(b.eta(t0 + Duration::minutes(11)), Some(eta));
        assert_eq!(b.eta(t0 + Duration::minutes(30)), None, "passed: unknown");
        // Started again: the first progress is the new run's.
        let t1 = t0 + Duration::hours(1);
        let c = apply(Some(&b), &event(JobStatus::Running, 5.0, t1, t1), t1);
        assert_eq!(c.first_progress, Some((t1, 5.0)));
        // Stale: failed, saying since when, not counted as a reported failure.
        let s = went_stale(&c);
        assert_eq!((s.status, s.stale), (JobStatus::Failed, true));
        assert!(
            s.error_message
                .unwrap_or_default()
                .starts_with("no report since ")
        );
    }

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
