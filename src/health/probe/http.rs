//! HTTP(S) probe with ureq (blocking: called on a blocking thread). Connect
//! and total timeouts; the status must be expected (default 2xx); a JSON
//! health document's `status` and `dependencies` are taken into account.

use super::{ProbeResult, ms, timed_out};
use crate::config::services::ServiceSpec;
use crate::health::HealthStatus;
use std::collections::BTreeMap;
use std::time::Instant;

/// The most of a body we read to look for a health document.
const MAX_BODY_BYTES: u64 = 64 * 1024;

/// The agent a service's checks share: its connection pool keeps the
/// connection open between checks, so a check's time is the request and
/// its answer, not a new TCP connect and TLS handshake each time (the first
/// check, and one after the target closed the connection, include them).
pub fn agent(spec: &ServiceSpec) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_connect(Some(spec.timeout))
        .timeout_global(Some(spec.timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .max_redirects_will_error(false)
        .max_idle_connections_per_host(1)
        .user_agent(concat!("mlsec-monitor/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

pub fn check(spec: &ServiceSpec, agent: &ureq::Agent) -> ProbeResult {
    let started = Instant::now();
    let mut resp = match agent.get(&spec.target).call() {
        Ok(r) => r,
        Err(e) => return ProbeResult::down(started, error_message(&e, spec)),
    };
    let code = resp.status().as_u16();
    let body = resp
        .body_mut()
        .with_config()
        .limit(MAX_BODY_BYTES)
        .read_to_vec();
    let mut result = ProbeResult::up(started);
    result.latency_ms = ms(started);
    result.http_status = Some(code);
    let expected = match &spec.expected_status {
        Some(codes) => codes.contains(&code),
        None => (200..300).contains(&code),
    };
    if !expected {
        result.status = HealthStatus::Unhealthy;
        result.error = Some(format!("bad status {code}"));
        return result;
    }
    match body {
        Ok(bytes) => apply_health_document(&mut result, &bytes),
        Err(ureq::Error::BodyExceedsLimit(_)) => {}
        Err(e) => {
            result.status = HealthStatus::Unhealthy;
            result.error = Some(format!("reading the body: {}", error_message(&e, spec)));
        }
    }
    result
}

/// Takes `status` and `dependencies` from a JSON health document, if the body is one.
fn apply_health_document(result: &mut ProbeResult, body: &[u8]) {
    let Ok(serde_json::Value::Object(doc)) = serde_json::from_slice::<serde_json::Value>(body)
    else {
        return;
    };
    if let Some(deps) = doc.get("dependencies").and_then(|d| d.as_object()) {
        result.dependencies = deps
            .iter()
            .filter_map(|(k, v)| v.as_bool().map(|b| (k.clone(), b)))
            .collect::<BTreeMap<_, _>>();
    }
    let reported = doc
        .get("status")
        .and_then(|s| s.as_str())
        .map(str::to_lowercase);
    match reported.as_deref() {
        Some("unhealthy" | "down" | "fail" | "failed" | "failing" | "error" | "critical") => {
            result.status = HealthStatus::Unhealthy;
            result.error = Some(format!(
                "service reports status '{}'",
                reported.unwrap_or_default()
            ));
        }
        Some("degraded" | "warn" | "warning" | "partial") => {
            result.status = HealthStatus::Degraded;
            result.error = Some(format!(
                "service reports status '{}'",
                reported.unwrap_or_default()
            ));
        }
        _ => {
            let down: Vec<&String> = result
                .dependencies
                .iter()
                .filter(|(_, up)| !**up)
                .map(|(k, _)| k)
                .collect();
            if !down.is_empty() {
                result.status = HealthStatus::Degraded;
                result.error = Some(format!(
                    "service reports dependency down: {}",
                    down.iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
    }
}

/// A short, operator-facing message for a failed request.
fn error_message(e: &ureq::Error, spec: &ServiceSpec) -> String {
    match e {
        ureq::Error::Timeout(_) => timed_out(spec.timeout),
        ureq::Error::Io(io) => io_message(io),
        ureq::Error::HostNotFound => "host not found".into(),
        ureq::Error::ConnectionFailed => "connection failed".into(),
        ureq::Error::Tls(m) => format!("TLS error: {m}"),
        ureq::Error::Rustls(r) => format!("TLS error: {r}"),
        ureq::Error::Protocol(p) => format!("not an HTTP answer: {p}"),
        other => other.to_string(),
    }
}

pub fn io_message(e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused => "connection refused".into(),
        ConnectionReset => "connection reset by peer".into(),
        ConnectionAborted => "connection aborted".into(),
        UnexpectedEof => "connection closed without an answer".into(),
        TimedOut => "timed out".into(),
        _ => e.to_string(),
    }
}
