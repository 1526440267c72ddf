//! Wire types: the API contract (`shared/spec/monitoring-service.md`). Store
//! and collector types are never serialised directly. `Option` fields are
//! `null` when the value is unknown, never a made-up 0.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

/// RFC 3339 with milliseconds and `Z`, the one timestamp format of the API.
pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn ts_ms(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(ts)
        .unwrap_or_default()
}

#[derive(Serialize)]
pub struct RootResponse {
    pub service: &'static str,
    pub version: &'static str,
    pub status: &'static str,
    pub description: &'static str,
    pub timestamp: String,
    pub uptime_seconds: f64,
}

#[derive(Serialize)]
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
}

#[derive(Serialize)]
pub struct HealthDependencies {
    /// `null` until a Redis probe is configured.
    pub redis: Option<bool>,
    /// `null` until a PostgreSQL probe is configured.
    pub postgres: Option<bool>,
    pub data_collector: bool,
}

#[derive(Serialize)]
pub struct HealthMetrics {
    pub total_checks: u64,
    pub successful_checks: u64,
    pub failed_checks: u64,
    pub average_response_time_ms: f64,
}

#[derive(Serialize)]
pub struct StoreHealth {
    pub writable: bool,
    pub series: usize,
    pub samples_ingested: u64,
    pub samples_dropped: u64,
    pub flushes: u64,
    pub last_flush_ms: f64,
    pub size_on_disk_bytes: u64,
}

#[derive(Serialize)]
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
    // Beyond the spec: what the dashboard also shows.
    pub memory_total_mb: Option<f64>,
    pub network_rx_mbps: Option<f64>,
    pub network_tx_mbps: Option<f64>,
    pub disks: Vec<DiskUsage>,
}

#[derive(Serialize)]
pub struct DiskUsage {
    pub mount: String,
    pub usage_percent: f64,
}

#[derive(Serialize)]
pub struct IngestResponse {
    /// Samples stored in at least one tier.
    pub accepted: u64,
    /// Samples older than every tier's window (stored nowhere).
    pub dropped: u64,
    pub series: usize,
}

#[derive(Serialize)]
pub struct DetailedMetrics {
    pub time_range: String,
    pub granularity: String,
    pub from: String,
    pub to: String,
    pub series: Vec<DetailedSeries>,
    /// True when more series matched than `MAX_DETAILED_SERIES`.
    pub truncated: bool,
}

#[derive(Serialize)]
pub struct DetailedSeries {
    pub metric: String,
    pub labels: BTreeMap<String, String>,
    /// The tier the points were read from: raw, 1m or 1h.
    pub tier: &'static str,
    pub points: Vec<DetailedPoint>,
}

#[derive(Serialize)]
pub struct DetailedPoint {
    pub timestamp: String,
    pub avg: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub count: u64,
}
