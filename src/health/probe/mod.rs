//! Probes: one function per kind, each bounded by the service's timeout.
//! A probe failure is data (`ProbeResult` with `error`), never `Err`.

pub mod http;
pub mod postgres;
pub mod redis;
pub mod tcp;

use super::HealthStatus;
use crate::config::services::{ProbeKind, ServiceSpec};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[derive(Clone, Debug, PartialEq)]
pub struct ProbeResult {
    pub at: DateTime<Utc>,
    pub status: HealthStatus,
    /// How long the check took: to the answer, or to the failure.
    pub latency_ms: f64,
    pub http_status: Option<u16>,
    /// Why the status is not healthy.
    pub error: Option<String>,
    /// Dependencies reported by the target's JSON health document.
    pub dependencies: BTreeMap<String, bool>,
}

impl ProbeResult {
    pub fn up(started: Instant) -> ProbeResult {
        ProbeResult {
            at: Utc::now(),
            status: HealthStatus::Healthy,
            latency_ms: ms(started),
            http_status: None,
            error: None,
            dependencies: BTreeMap::new(),
        }
    }

    pub fn down(started: Instant, error: impl Into<String>) -> ProbeResult {
        ProbeResult {
            status: HealthStatus::Unhealthy,
            error: Some(error.into()),
            ..ProbeResult::up(started)
        }
    }

    /// The response time: the check's duration when the service answered
    /// (healthy or degraded), `None` for a failure (a refused connection in
    /// 0.2 ms and a 5 s timeout are not response times).
    pub fn response_time_ms(&self) -> Option<f64> {
        (self.status != HealthStatus::Unhealthy).then_some(self.latency_ms)
    }

    /// The duration of a failed check, `None` when the service answered.
    pub fn failure_ms(&self) -> Option<f64> {
        (self.status == HealthStatus::Unhealthy).then_some(self.latency_ms)
    }

    /// Marks a successful check degraded when it was slower than `threshold_ms`.
    pub fn check_latency(mut self, threshold_ms: Option<f64>) -> ProbeResult {
        if let Some(t) = threshold_ms
            && self.status == HealthStatus::Healthy
            && self.latency_ms > t
        {
            self.status = HealthStatus::Degraded;
            self.error = Some(format!(
                "response time {:.0} ms is over the {t:.0} ms threshold",
                self.latency_ms
            ));
        }
        self
    }
}

pub fn ms(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1000.0
}

pub fn timed_out(timeout: Duration) -> String {
    format!("timed out after {:.1} s", timeout.as_secs_f64())
}

/// Runs the probe for `spec` once. HTTP runs on a blocking thread (ureq)
/// with `http`, the service's agent, kept between checks so its
/// connection is reused (`None`: a fresh agent); the others are async. Each
/// is capped by the service's timeout.
pub async fn run(spec: &ServiceSpec, http: Option<&ureq::Agent>) -> ProbeResult {
    let started = Instant::now();
    // A little slack over the probe's own timeout: the hard stop if a client
    // library ignores its timeout.
    let cap = spec.timeout + Duration::from_millis(500);
    let fut = async {
        match spec.kind {
            ProbeKind::Http => {
                let s = spec.clone();
                let agent = http.cloned().unwrap_or_else(|| http::agent(spec));
                tokio::task::spawn_blocking(move || http::check(&s, &agent))
                    .await
                    .unwrap_or_else(|e| ProbeResult::down(started, format!("probe crashed: {e}")))
            }
            ProbeKind::Tcp => tcp::check(spec).await,
            ProbeKind::Redis => redis::check(spec).await,
            ProbeKind::Postgres => postgres::check(spec).await,
        }
    };
    match tokio::time::timeout(cap, fut).await {
        Ok(r) => r.check_latency(spec.degraded_threshold_ms),
        Err(_) => ProbeResult::down(started, timed_out(spec.timeout)),
    }
}
