//! The health check engine: probes every configured service on its own
//! schedule, keeps the current state of each (`registry.rs`), writes every
//! result to the store as `up{service}` and `response_time_ms{service}`, and
//! backs off from failing targets (`breaker.rs`).
//!
//! - `probe/`      one file per probe kind; a probe never returns `Err`, a
//!   failure is a `ProbeResult` with an error message
//! - `breaker.rs`  exponential back-off after repeated failures
//! - `registry.rs` the live state the API reads
//! - `engine.rs`   one task per service, the scheduling loop
//! - `resources.rs` per-service CPU and memory from a process matcher

pub mod breaker;
pub mod engine;
pub mod probe;
pub mod registry;
pub mod resources;

use serde::Serialize;

/// The series the health engine writes for every check (label `service`):
/// 1 when up (healthy or degraded), 0 when unhealthy.
pub const UP_METRIC: &str = "up";
/// The check's response time, for checks the service answered.
pub const RESPONSE_TIME_METRIC: &str = "response_time_ms";
/// 1 when degraded, else 0.
pub const DEGRADED_METRIC: &str = "degraded";
/// The duration of each failed check, per service (a failure is not a
/// response time: `RESPONSE_TIME_METRIC` holds answered checks only).
pub const FAILED_CHECK_METRIC: &str = "failed_check_ms";
/// Every series a check writes.
pub const CHECK_SERIES: [&str; 4] = [
    UP_METRIC,
    RESPONSE_TIME_METRIC,
    DEGRADED_METRIC,
    FAILED_CHECK_METRIC,
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Healthy,
    Degraded,
    Unhealthy,
}

impl HealthStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            HealthStatus::Healthy => "healthy",
            HealthStatus::Degraded => "degraded",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }
}
