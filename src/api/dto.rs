//! Wire types: the API contract (`docs/monitoring-service.md`). Store
//! and collector types are never serialised directly. `Option` fields are
//! `null` when the value is unknown, never a made-up 0.

use schemars::JsonSchema;
use serde::Serialize;
use std::collections::BTreeMap;

pub use crate::time::{ts, ts_ms};

#[derive(Serialize, JsonSchema)]
pub struct RootResponse {
    pub service: &'static str,
    pub version: &'static str,
    pub status: &'static str,
    pub description: &'static str,
    pub timestamp: String,
    pub uptime_seconds: f64,
}

#[derive(Serialize, JsonSchema)]
pub struct HealthResponse {
    pub status: &'static str,
    pub service: &'static str,
    pub timestamp: String,
    pub uptime_seconds: f64,
    pub dependencies: HealthDependencies,
    pub metrics: HealthMetrics,
    /// Why the status is `unhealthy` (absent when healthy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub store: StoreHealth,
    pub collector: CollectorHealth,
    pub auth: AuthHealth,
    /// Each `[[remote_write]]` destination (empty when none).
    pub remote_write: Vec<RemoteWriteHealth>,
    pub backup: BackupHealth,
    pub config: ConfigHealth,
}

/// The configuration and its last reload (`SIGHUP`, `POST /-/reload`).
#[derive(Serialize, JsonSchema)]
pub struct ConfigHealth {
    /// The configuration file; `null` without one.
    pub file: Option<String>,
    /// When the last reload since start was asked; `null` before one.
    pub last_reload_at: Option<String>,
    /// Whether it was applied; `null` before one. `false`: the running
    /// configuration stayed (see `last_reload_error`).
    pub last_reload_ok: Option<bool>,
    pub last_reload_error: Option<String>,
    /// What it changed, in one line (`services +a; rules -b`, `no change`).
    pub last_reload_changes: Option<String>,
}

/// Backups: the schedule, and the last ones taken since start.
#[derive(Serialize, JsonSchema)]
pub struct BackupHealth {
    /// Whether `BACKUP_DIR` schedules backups.
    pub scheduled: bool,
    /// `BACKUP_INTERVAL` in seconds; `null` when not scheduled.
    pub interval_seconds: Option<f64>,
    /// `BACKUP_KEEP`; `null` when not scheduled.
    pub keep: Option<usize>,
    /// The last backup since start, scheduled or requested, whatever its
    /// outcome; `null` before the first.
    pub last: Option<BackupRun>,
    /// When the last backup since start that succeeded began; `null` before one.
    pub last_success_at: Option<String>,
}

/// One backup taken (or, after a restart, the newest found in `BACKUP_DIR`).
#[derive(Serialize, JsonSchema)]
pub struct BackupRun {
    pub started_at: String,
    /// `null` when not known: a backup found in `BACKUP_DIR` at start, or
    /// one that failed before it began.
    pub duration_seconds: Option<f64>,
    /// Archive bytes written (of a failed backup: as far as it got).
    pub size_bytes: u64,
    /// Tree entries and files in the archive; `null` when it failed or is
    /// not known (found at start).
    pub items: Option<u64>,
    pub ok: bool,
    /// Why it failed; `null` when it succeeded.
    pub error: Option<String>,
    /// Taken by the schedule (else on request).
    pub scheduled: bool,
}

/// One remote-write destination: its durable queue and what it shipped.
#[derive(Serialize, JsonSchema)]
pub struct RemoteWriteHealth {
    pub name: String,
    pub queued_batches: u64,
    pub queued_bytes: u64,
    pub sent_samples: u64,
    pub failed_attempts: u64,
    /// Samples dropped unsent because they waited past `queue_max_age`.
    pub dropped_for_age_samples: u64,
    /// Samples dropped because the queue passed `queue_max_bytes`.
    pub dropped_full_samples: u64,
    /// Samples the receiver refused for good (a 4xx other than 429).
    pub rejected_samples: u64,
    pub last_error: Option<String>,
}

/// Access control at a glance (counts only; no token names).
#[derive(Serialize, JsonSchema)]
pub struct AuthHealth {
    /// Whether tokens are required (`AUTH`).
    pub enabled: bool,
    /// Requests with an unknown, revoked or expired token since start.
    pub failed_sign_ins: u64,
    /// Requests answered 429 because their address failed too often.
    pub refused_requests: u64,
}

/// The system collector's own ticks (the spec's `metrics` counts service checks).
#[derive(Serialize, JsonSchema)]
pub struct CollectorHealth {
    pub ticks: u64,
    pub failed_ticks: u64,
    pub average_tick_ms: f64,
    pub last_error: Option<String>,
}

#[derive(Serialize, JsonSchema)]
pub struct HealthDependencies {
    /// `null` when REDIS_URL is not set.
    pub redis: Option<bool>,
    /// `null` when DATABASE_URL is not set.
    pub postgres: Option<bool>,
    pub data_collector: bool,
}

#[derive(Serialize, JsonSchema)]
pub struct HealthMetrics {
    pub total_checks: u64,
    pub successful_checks: u64,
    pub failed_checks: u64,
    /// Of the successful checks only; `null` before the first.
    pub average_response_time_ms: Option<f64>,
}

#[derive(Serialize, JsonSchema)]
pub struct StoreHealth {
    pub writable: bool,
    pub series: usize,
    pub samples_ingested: u64,
    pub samples_dropped: u64,
    pub flushes: u64,
    pub last_flush_ms: f64,
    pub size_on_disk_bytes: u64,
    /// Stored blocks found damaged since start; their slots read as empty.
    pub corrupt_blocks: u64,
    /// Log records found damaged at the last start; their samples are lost.
    pub corrupt_log_records: u64,
    /// Values are encrypted at rest (`ENCRYPTION_KEY_FILE`).
    pub encrypted: bool,
}

#[derive(Serialize, JsonSchema)]
pub struct SystemMetrics {
    pub cpu_usage: Option<f64>,
    pub memory_usage_mb: Option<f64>,
    pub disk_usage_percent: Option<f64>,
    pub network_io_mbps: Option<f64>,
    pub load_average: Option<Vec<f64>>,
    pub uptime_seconds: Option<u64>,
    pub processes: Option<u64>,
    pub threads: Option<u64>,
    pub file_descriptors: Option<u64>,
    pub timestamp: String,
    // Beyond the spec: whether the values are too old to stand for now
    // (then they are null), and what the dashboard also shows.
    pub stale: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stale_reason: Option<String>,
    pub memory_total_mb: Option<f64>,
    pub network_rx_mbps: Option<f64>,
    pub network_tx_mbps: Option<f64>,
    /// The interfaces the network rates count (physical ones by default).
    pub network_interfaces: Vec<String>,
    pub disks: Vec<DiskUsage>,
}

impl SystemMetrics {
    /// Every value `null`: the newest reading, measured at `timestamp`, is
    /// too old.
    pub fn stale(timestamp: String, reason: Option<String>) -> SystemMetrics {
        SystemMetrics {
            cpu_usage: None,
            memory_usage_mb: None,
            disk_usage_percent: None,
            network_io_mbps: None,
            load_average: None,
            uptime_seconds: None,
            processes: None,
            threads: None,
            file_descriptors: None,
            timestamp,
            stale: true,
            stale_reason: reason,
            memory_total_mb: None,
            network_rx_mbps: None,
            network_tx_mbps: None,
            network_interfaces: Vec::new(),
            disks: Vec::new(),
        }
    }
}

#[derive(Serialize, JsonSchema)]
pub struct DiskUsage {
    pub mount: String,
    pub usage_percent: f64,
}

#[derive(Serialize, JsonSchema)]
pub struct IngestResponse {
    /// Samples stored in at least one tier.
    pub accepted: u64,
    /// Samples older than every tier's window (stored nowhere).
    pub dropped: u64,
    pub series: usize,
}

#[derive(Serialize, JsonSchema)]
pub struct DetailedMetrics {
    pub time_range: String,
    /// As asked.
    pub granularity: String,
    /// The step of the points: `granularity`, or coarser when only a
    /// coarser tier still holds the whole range (5m over 30d reads the
    /// hour tier, as the minute tier keeps 7 days).
    pub granularity_used: String,
    pub step_seconds: i64,
    pub from: String,
    pub to: String,
    pub series: Vec<DetailedSeries>,
    /// True when more series matched than `query::detailed::MAX_SERIES`.
    pub truncated: bool,
}

#[derive(Serialize, JsonSchema)]
pub struct DetailedSeries {
    pub metric: String,
    pub labels: BTreeMap<String, String>,
    /// The tier the points were read from: raw, 1m or 1h.
    pub tier: &'static str,
    pub points: Vec<DetailedPoint>,
}

#[derive(Serialize, JsonSchema)]
pub struct DetailedPoint {
    pub timestamp: String,
    pub avg: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub count: u64,
}

#[derive(Serialize, JsonSchema)]
pub struct ServiceHealthEntry {
    pub status: crate::health::HealthStatus,
    /// The last check's response time when the service answered; `null`
    /// until the first check and when the last check failed.
    pub response_time_ms: Option<f64>,
    /// How long the last check took, answered or failed (a timeout reads
    /// as the timeout); `null` until the first check.
    pub check_duration_ms: Option<f64>,
    pub last_check: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    pub dependencies: BTreeMap<String, bool>,
    // Beyond the spec:
    pub kind: &'static str,
    /// `service` for a configured service, `dependency` for REDIS_URL / DATABASE_URL.
    pub role: &'static str,
    pub http_status: Option<u16>,
    pub consecutive_failures: u32,
    pub cpu_usage: Option<f64>,
    pub memory_usage_mb: Option<f64>,
}

/// `GET /service-health` (`services` by name) and `GET /health/services`
/// (`services` a list of `NamedServiceHealth`): the same summary.
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "ServicesOverviewOf{S}")]
pub struct ServicesOverview<S> {
    pub services: S,
    pub overall_status: crate::health::HealthStatus,
    pub healthy_services: usize,
    pub total_services: usize,
    pub last_updated: String,
}

pub type ServiceHealth = ServicesOverview<BTreeMap<String, ServiceHealthEntry>>;
pub type ServicesHealthList = ServicesOverview<Vec<NamedServiceHealth>>;

#[derive(Serialize, JsonSchema)]
pub struct NamedServiceHealth {
    pub name: String,
    #[serde(flatten)]
    pub health: ServiceHealthEntry,
}

#[derive(Serialize, JsonSchema)]
pub struct DependencyHealth {
    /// `healthy` when it answers (a degraded service still answers).
    pub status: &'static str,
    /// As in `ServiceHealthEntry`: `null` when the last check failed.
    pub response_time_ms: Option<f64>,
    pub check_duration_ms: Option<f64>,
    pub last_check: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

#[derive(Serialize, JsonSchema)]
pub struct DependenciesHealth {
    pub dependencies: BTreeMap<String, DependencyHealth>,
    pub overall_status: &'static str,
    pub healthy_dependencies: usize,
    pub total_dependencies: usize,
}

#[derive(Serialize, JsonSchema)]
pub struct DashboardService {
    pub status: crate::health::HealthStatus,
    pub response_time_ms: Option<f64>,
    pub cpu_usage: Option<f64>,
    pub memory_usage_mb: Option<f64>,
    pub last_updated: Option<String>,
    /// Percent of requests that failed over the last 5 minutes (when request data exists).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_rate: Option<f64>,
    /// Requests per second over the last 5 minutes (when request data exists).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throughput: Option<f64>,
}

#[derive(Serialize, JsonSchema)]
pub struct DashboardSystem {
    pub total_cpu_usage: Option<f64>,
    pub total_memory_usage_mb: Option<f64>,
    pub disk_usage_percent: Option<f64>,
    pub network_io_mbps: Option<f64>,
    pub load_average: Option<Vec<f64>>,
    // Beyond the spec:
    /// When these values were measured (`null`: never).
    pub measured_at: Option<String>,
    /// True when the newest reading is older than 3 collection intervals:
    /// every value above is then `null`, and `stale_reason` says why.
    pub stale: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stale_reason: Option<String>,
}

impl DashboardSystem {
    pub fn from_reading(r: crate::collect::Reading) -> DashboardSystem {
        let h = r.harvest.as_ref();
        DashboardSystem {
            total_cpu_usage: h.and_then(|h| h.cpu_usage_percent),
            total_memory_usage_mb: h.and_then(|h| h.memory_used_mb),
            disk_usage_percent: h.and_then(|h| h.data_disk_usage_percent),
            network_io_mbps: h.and_then(|h| h.network_io_mbps()),
            load_average: h.and_then(|h| h.load_average.map(|l| l.to_vec())),
            measured_at: r.measured_at.map(ts),
            stale: r.stale(),
            stale_reason: r.stale_reason,
        }
    }
}

#[derive(Serialize, JsonSchema)]
pub struct AlertCounts {
    pub active: u64,
    pub critical: u64,
    pub warning: u64,
    pub info: u64,
}

impl From<crate::alerting::state::AlertCounts> for AlertCounts {
    fn from(c: crate::alerting::state::AlertCounts) -> AlertCounts {
        AlertCounts {
            active: c.active,
            critical: c.critical,
            warning: c.warning,
            info: c.info,
        }
    }
}

#[derive(Serialize, JsonSchema)]
pub struct DashboardTrends {
    pub cpu_trend: crate::analysis::trend::Trend,
    pub memory_trend: crate::analysis::trend::Trend,
    pub response_time_trend: crate::analysis::trend::Trend,
}

#[derive(Serialize, JsonSchema)]
pub struct DashboardData {
    pub services: BTreeMap<String, DashboardService>,
    pub system_metrics: DashboardSystem,
    pub alerts: AlertCounts,
    pub trends: DashboardTrends,
    /// When the newest data in the answer was measured (the system reading
    /// or a service check); `null` before any.
    pub last_updated: Option<String>,
    // Beyond the spec: when the answer was computed.
    pub built_at: String,
}

#[derive(Serialize, JsonSchema)]
pub struct ModelEntry {
    pub name: String,
    #[schemars(with = "crate::platform::models::ModelStatus")]
    pub status: &'static str,
    pub progress: f64,
    pub memory_usage_mb: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loading_time_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loaded_at: Option<String>,
    // Beyond the spec:
    pub updated_at: String,
}

#[derive(Serialize, JsonSchema)]
pub struct ModelLoadingStatus {
    pub models: Vec<ModelEntry>,
    pub total_models: usize,
    pub loaded_models: usize,
    pub loading_models: usize,
    pub failed_models: usize,
    pub total_memory_usage_mb: f64,
}

#[derive(Serialize, JsonSchema)]
pub struct JobResources {
    pub cpu_usage: f64,
    pub memory_usage_mb: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_usage: Option<f64>,
}

#[derive(Serialize, JsonSchema)]
pub struct JobEntry {
    pub job_id: String,
    pub model_name: String,
    #[schemars(with = "crate::platform::training::JobStatus")]
    pub status: &'static str,
    pub progress: f64,
    pub started_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_completion: Option<String>,
    pub resource_usage: JobResources,
    // Beyond the spec: whether `estimated_completion` is our estimate
    // (an estimate already passed is left out).
    pub estimated_completion_is_estimate: bool,
    /// When the job last reported.
    pub updated_at: String,
    /// Why it failed: its own message, or "no report since <time>" when it
    /// stopped reporting while running.
    pub error_message: Option<String>,
}

#[derive(Serialize, JsonSchema)]
pub struct QueueStatus {
    pub pending_jobs: usize,
    pub running_jobs: usize,
    pub completed_jobs: usize,
    pub failed_jobs: usize,
}

#[derive(Serialize, JsonSchema)]
pub struct ResourceUtilization {
    pub total_cpu_usage: f64,
    pub total_memory_usage_mb: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_utilization: Option<f64>,
}

#[derive(Serialize, JsonSchema)]
pub struct TrainingStatus {
    pub jobs: Vec<JobEntry>,
    pub queue_status: QueueStatus,
    pub resource_utilization: ResourceUtilization,
}

#[derive(Serialize, JsonSchema)]
pub struct ServiceSummary {
    /// `null` when the service recorded no request statistics (a probed
    /// service that pushes none), not 0.
    pub requests: Option<u64>,
    /// Percent (0-100); `null` without requests.
    pub error_rate: Option<f64>,
    pub avg_response_time_ms: Option<f64>,
    /// Percent of health checks that found the service up; `null` without checks.
    pub uptime_percent: Option<f64>,
    // Beyond the spec:
    pub p95_response_time_ms: Option<f64>,
    pub p99_response_time_ms: Option<f64>,
    /// Requests per second over the time its statistics cover (from its
    /// first in the range to now); `null` without statistics.
    pub throughput_per_second: Option<f64>,
}

#[derive(Serialize, JsonSchema)]
pub struct SummaryTrends {
    pub requests_trend: crate::analysis::trend::Trend,
    pub response_time_trend: crate::analysis::trend::Trend,
    pub error_rate_trend: crate::analysis::trend::Trend,
}

/// How the summary's trends were computed, from the constants that decide them.
pub fn trend_method() -> String {
    format!(
        "least-squares slope over complete steps (at least {}); up/down when the fitted change exceeds {}% of the mean (and, for error_rate, {} percentage point(s))",
        crate::analysis::trend::MIN_POINTS,
        crate::analysis::trend::STABLE_BAND * 100.0,
        crate::query::summary::ERROR_RATE_FLOOR
    )
}

#[derive(Serialize, JsonSchema)]
pub struct TrendsBasis {
    pub method: String,
    pub step_seconds: i64,
    pub requests_points: usize,
    pub response_time_points: usize,
    pub error_rate_points: usize,
    /// Percentage points the error rate must move over the window.
    pub error_rate_floor_percent: f64,
}

#[derive(Serialize, JsonSchema)]
pub struct MetricsSummary {
    pub time_range: String,
    pub total_requests: u64,
    pub successful_requests: u64,
    pub failed_requests: u64,
    pub error_rate: Option<f64>,
    pub avg_response_time_ms: Option<f64>,
    pub p95_response_time_ms: Option<f64>,
    pub p99_response_time_ms: Option<f64>,
    /// Over the time from the first statistics of any service to now;
    /// `null` without statistics.
    pub throughput_per_second: Option<f64>,
    pub service_metrics: BTreeMap<String, ServiceSummary>,
    pub trends: SummaryTrends,
    /// What the trends were computed from: `stable` with 0-2 points means
    /// "not enough data", not "flat".
    pub trends_basis: TrendsBasis,
    // Beyond the spec: the window the numbers cover.
    pub from: String,
    pub to: String,
}

#[derive(Serialize, JsonSchema)]
pub struct AlertView {
    pub alert_id: String,
    #[schemars(with = "crate::config::alerting::Severity")]
    pub severity: &'static str,
    #[schemars(with = "crate::alerting::AlertStatus")]
    pub status: &'static str,
    pub service: String,
    pub message: String,
    pub description: String,
    pub timestamp: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acknowledged_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acknowledged_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<String>,
    pub metadata: serde_json::Value,
}

impl From<&crate::alerting::Alert> for AlertView {
    fn from(a: &crate::alerting::Alert) -> AlertView {
        AlertView {
            alert_id: a.alert_id.clone(),
            severity: a.severity.as_str(),
            status: a.status.as_str(),
            service: a.service.clone(),
            message: a.message.clone(),
            description: a.description.clone(),
            timestamp: ts(a.fired_at),
            acknowledged_at: a.acknowledged_at.map(ts),
            acknowledged_by: a.acknowledged_by.clone(),
            resolved_at: a.resolved_at.map(ts),
            metadata: serde_json::json!({
                "rule": a.rule,
                "labels": a.labels,
                "value": a.value,
                "threshold": a.threshold,
                "fingerprint": a.fingerprint,
                "resolved_by": a.resolved_by,
                "escalated": a.escalated,
                "silenced": a.silenced,
                "updated_at": ts(a.updated_at),
            }),
        }
    }
}

#[derive(Serialize, JsonSchema)]
pub struct AlertsResponse {
    pub alerts: Vec<AlertView>,
    pub total_count: u64,
    pub active_count: u64,
    pub critical_count: u64,
    pub warning_count: u64,
    pub info_count: u64,
}

#[derive(Serialize, JsonSchema)]
pub struct AuditView {
    pub seq: u64,
    pub timestamp: String,
    pub alert_id: Option<String>,
    pub action: String,
    pub actor: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<String, String>,
    /// SHA-256 of the record before it and of this record, in hex: the
    /// audit trail's hash chain.
    pub prev_hash: String,
    pub hash: String,
}

impl From<&crate::alerting::AuditRecord> for AuditView {
    fn from(r: &crate::alerting::AuditRecord) -> AuditView {
        AuditView {
            seq: r.seq,
            timestamp: ts(r.at),
            alert_id: r.alert_id.clone(),
            action: r.action.clone(),
            actor: r.actor.clone(),
            comment: r.comment.clone(),
            details: r.details.clone(),
            prev_hash: crate::alerting::chain::hex(&r.prev_hash),
            hash: crate::alerting::chain::hex(&r.hash),
        }
    }
}

#[derive(Serialize, JsonSchema)]
pub struct AlertEnvelope {
    pub alert: AlertView,
}

/// `GET /alerts/{id}`: the alert and every record of its history.
#[derive(Serialize, JsonSchema)]
pub struct AlertWithHistory {
    #[serde(flatten)]
    pub alert: AlertView,
    pub history: Vec<AuditView>,
}

#[derive(Serialize, JsonSchema)]
pub struct AuditList {
    pub records: Vec<AuditView>,
}

#[derive(Serialize, JsonSchema)]
pub struct SilenceView {
    pub id: String,
    pub matchers: BTreeMap<String, String>,
    pub starts_at: String,
    pub ends_at: String,
    pub created_by: String,
    pub comment: String,
    pub created_at: String,
    /// Whether it mutes matching alerts at the time of the answer.
    pub active: bool,
}

impl SilenceView {
    pub fn at(
        s: &crate::alerting::silence::Silence,
        now: chrono::DateTime<chrono::Utc>,
    ) -> SilenceView {
        SilenceView {
            id: s.id.clone(),
            matchers: s.matchers.clone(),
            starts_at: ts(s.starts_at),
            ends_at: ts(s.ends_at),
            created_by: s.created_by.clone(),
            comment: s.comment.clone(),
            created_at: ts(s.created_at),
            active: s.is_active(now),
        }
    }
}

#[derive(Serialize, JsonSchema)]
pub struct SilenceList {
    pub silences: Vec<SilenceView>,
}

/// The answer of the ingest endpoints that take events or statistics.
#[derive(Serialize, JsonSchema)]
pub struct Accepted {
    pub accepted: u64,
}

#[derive(Serialize, JsonSchema)]
pub struct RequestsIngestResponse {
    pub accepted: u64,
    pub dropped: u64,
}

/// The live feed's `alert` message.
#[derive(Serialize, JsonSchema)]
pub struct LiveAlert {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub timestamp: String,
    /// fired, escalated, acknowledged or resolved.
    pub event: &'static str,
    pub alert: AlertView,
}

/// The live feed's `snapshot` and `metrics` messages.
#[derive(Serialize, JsonSchema)]
pub struct LiveMetrics {
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// When the system values were measured (`null`: never).
    pub timestamp: Option<String>,
    /// When the message was sent.
    pub sent_at: String,
    /// True when the newest system reading is older than 3 collection
    /// intervals: the system values are then `null`.
    pub stale: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stale_reason: Option<String>,
    pub cpu_usage: Option<f64>,
    pub memory_usage_mb: Option<f64>,
    pub memory_usage_percent: Option<f64>,
    pub disk_usage_percent: Option<f64>,
    pub network_io_mbps: Option<f64>,
    pub load_average: Option<Vec<f64>>,
    pub active_alerts: u64,
    pub alerts: LiveAlertCounts,
    pub services: LiveServices,
}

#[derive(Serialize, JsonSchema)]
pub struct LiveAlertCounts {
    pub critical: u64,
    pub warning: u64,
    pub info: u64,
}

#[derive(Serialize, JsonSchema)]
pub struct LiveServices {
    pub total: usize,
    pub healthy: usize,
    pub degraded: usize,
    pub unhealthy: usize,
    pub overall_status: crate::health::HealthStatus,
    pub unhealthy_names: Vec<String>,
}

/// One Chart.js dataset; its colour is picked by a hash of its label, so it
/// stays the same across calls.
#[derive(Serialize, JsonSchema)]
pub struct Dataset {
    pub label: String,
    pub data: Vec<Option<f64>>,
    #[serde(rename = "borderColor")]
    pub border_color: String,
    #[serde(rename = "backgroundColor")]
    pub background_color: String,
}

/// A fixed palette for `Dataset`.
const PALETTE: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac",
];

impl From<crate::query::charts::Line> for Dataset {
    fn from(l: crate::query::charts::Line) -> Dataset {
        // FNV-1a: stable across runs and platforms (std's hasher is seeded).
        let h = l.label.bytes().fold(0xcbf29ce484222325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x100000001b3)
        });
        let c = PALETTE[(h % PALETTE.len() as u64) as usize];
        Dataset {
            label: l.label,
            data: l.data,
            border_color: c.to_string(),
            background_color: format!("{c}33"),
        }
    }
}

/// The datasets of `lines`, in order.
pub fn datasets(lines: Vec<crate::query::charts::Line>) -> Vec<Dataset> {
    lines.into_iter().map(Dataset::from).collect()
}

/// The start of each point of a chart's grid.
pub fn chart_labels(g: crate::query::Grid) -> Vec<String> {
    g.starts().map(ts_ms).collect()
}

#[derive(Serialize, JsonSchema)]
pub struct ModelLoadingChart {
    pub labels: Vec<String>,
    pub datasets: Vec<Dataset>,
    pub time_range: &'static str,
    pub total_models: usize,
    pub loading_trend: crate::analysis::trend::Trend,
}

#[derive(Serialize, JsonSchema)]
pub struct TrainingProgressChart {
    pub labels: Vec<String>,
    pub datasets: Vec<Dataset>,
    pub time_range: &'static str,
    pub total_jobs: usize,
    pub running_jobs: usize,
}

#[derive(Serialize, JsonSchema)]
pub struct LineSummary {
    pub label: String,
    pub current: Option<f64>,
    pub average: Option<f64>,
    pub max: Option<f64>,
    pub trend: crate::analysis::trend::Trend,
}

impl From<crate::query::charts::LineSummary> for LineSummary {
    fn from(s: crate::query::charts::LineSummary) -> LineSummary {
        LineSummary {
            label: s.label,
            current: s.current,
            average: s.average,
            max: s.max,
            trend: s.trend,
        }
    }
}

#[derive(Serialize, JsonSchema)]
pub struct SystemMetricsChart {
    pub labels: Vec<String>,
    pub datasets: Vec<Dataset>,
    pub time_range: &'static str,
    pub metric: String,
    pub summary: Vec<LineSummary>,
}

#[derive(Serialize, JsonSchema)]
pub struct ServiceHealthChart {
    pub labels: Vec<String>,
    pub datasets: Vec<Dataset>,
    pub time_range: &'static str,
    pub total_services: usize,
    pub uptime_percent: BTreeMap<String, Option<f64>>,
}

#[derive(Serialize, JsonSchema)]
pub struct AlertsTimelineChart {
    pub labels: Vec<String>,
    pub datasets: Vec<Dataset>,
    pub time_range: &'static str,
    pub total_alerts: usize,
    pub step_seconds: i64,
}

// ---- access control ------------------------------------------------------

/// A token as `GET /auth/tokens` shows it: never the secret.
#[derive(Serialize, JsonSchema)]
pub struct TokenView {
    pub name: String,
    pub role: crate::auth::Role,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
}

impl From<&crate::auth::tokens::TokenRecord> for TokenView {
    fn from(r: &crate::auth::tokens::TokenRecord) -> TokenView {
        TokenView {
            name: r.name.clone(),
            role: r.role,
            created_at: crate::time::ts(r.created_at),
            expires_at: r.expires_at.map(crate::time::ts),
            last_used_at: r.last_used_at.map(crate::time::ts),
        }
    }
}

#[derive(Serialize, JsonSchema)]
pub struct TokenList {
    pub tokens: Vec<TokenView>,
}

/// The answer to a creation: the only time the secret is shown.
#[derive(Serialize, JsonSchema)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub view: TokenView,
    pub token: String,
}

/// `GET /auth/session`: who is signed in and what they may do (every `can_`
/// true when access control is off).
#[derive(Serialize, JsonSchema)]
pub struct Session {
    /// Whether access control is on.
    pub auth: bool,
    /// The token's name and role (`null` without a token).
    pub name: Option<String>,
    pub role: Option<crate::auth::Role>,
    pub can_read: bool,
    pub can_operate: bool,
    pub can_admin: bool,
}

/// One anomaly event (`GET /anomalies`).
#[derive(Serialize, JsonSchema)]
pub struct EventView {
    pub id: u64,
    pub metric: String,
    pub labels: BTreeMap<String, String>,
    pub signal: String,
    pub start: String,
    /// `null` while the anomaly lasts.
    pub end: Option<String>,
    pub ongoing: bool,
    pub peak_score: f64,
    pub peak_at: String,
    pub value: f64,
    pub expected_low: Option<f64>,
    pub expected_high: Option<f64>,
}

impl From<crate::anomalies::events::Event> for EventView {
    fn from(e: crate::anomalies::events::Event) -> EventView {
        EventView {
            id: e.id,
            metric: e.metric,
            labels: e.labels,
            signal: e.signal,
            start: crate::time::ts(e.start),
            ongoing: e.end.is_none(),
            end: e.end.map(crate::time::ts),
            peak_score: e.peak_score,
            peak_at: crate::time::ts(e.peak_at),
            value: e.value,
            expected_low: e.expected_low,
            expected_high: e.expected_high,
        }
    }
}

#[derive(Serialize, JsonSchema)]
pub struct AnomalyList {
    pub anomalies: Vec<EventView>,
    /// Events the filter keeps in all (`anomalies` holds at most `limit`).
    pub total: usize,
    pub time_range: &'static str,
    /// (series, signal) pairs watched now, and series left out by
    /// `ANOMALY_MAX_SERIES`.
    pub watched: usize,
    pub left_out: usize,
}

/// One predicted point (`GET /forecast`).
#[derive(Serialize, JsonSchema)]
pub struct ForecastPoint {
    pub timestamp: String,
    pub value: f64,
    pub lower_80: f64,
    pub upper_80: f64,
    pub lower_95: f64,
    pub upper_95: f64,
}

/// One series' forecast.
#[derive(Serialize, JsonSchema)]
pub struct ForecastSeries {
    pub labels: BTreeMap<String, String>,
    /// `linear_trend`, `level` (no trend beyond doubt: flat), either with
    /// `+daily` when two days of history give the series' day profile, or
    /// `null` with too little history (fewer than 10 points; `points` is
    /// empty).
    pub model: Option<String>,
    pub fitted_points: usize,
    pub slope_per_hour: Option<f64>,
    /// The time the newest stored value stands for.
    pub last_value_at: Option<String>,
    pub points: Vec<ForecastPoint>,
}

/// `GET /forecast`.
#[derive(Serialize, JsonSchema)]
pub struct ForecastView {
    pub metric: String,
    pub horizon: String,
    pub step_seconds: i64,
    pub history_from: String,
    pub series: Vec<ForecastSeries>,
}

/// One resource's time to full (`GET /capacity`).
#[derive(Serialize, JsonSchema)]
pub struct CapacityResource {
    /// `disk` or `memory`.
    pub resource: String,
    pub metric: String,
    pub labels: BTreeMap<String, String>,
    pub used_percent: Option<f64>,
    pub growth_percent_per_hour: Option<f64>,
    /// Rising beyond doubt; when not, the `_to_full` fields are `null`.
    pub filling: bool,
    pub seconds_to_full: Option<f64>,
    /// The 95 % interval of `seconds_to_full`.
    pub seconds_to_full_low: Option<f64>,
    pub seconds_to_full_high: Option<f64>,
    pub full_at: Option<String>,
    pub fitted_points: usize,
}

/// `GET /capacity`.
#[derive(Serialize, JsonSchema)]
pub struct Capacity {
    pub history_hours: i64,
    pub resources: Vec<CapacityResource>,
}
