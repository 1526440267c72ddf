//! Application request statistics pushed by services (`POST /ingest/requests`):
//! raw request observations or a pre-aggregated interval, turned into
//! histogram samples for the service's `http_requests` series.

use crate::store::Hist;
use chrono::{DateTime, Utc};
use serde::Deserialize;

/// The histogram series holding a service's request statistics.
pub const REQUESTS_METRIC: &str = "http_requests";
/// Most raw observations one request may carry.
pub const MAX_REQUESTS: usize = 10_000;
/// Most requests one pre-aggregated interval may count (a million a second
/// for eleven days): beyond it a count is a bug, and sums would wrap.
pub const MAX_AGGREGATE_COUNT: u64 = 1_000_000_000_000;
/// The longest latency taken, in ms (about 31 years): beyond it a value is
/// a unit error, and sums would lose all precision.
pub const MAX_LATENCY_MS: f64 = 1e12;
use crate::time::MAX_FUTURE_MS;

/// A response with this status or above counts as an error (server errors;
/// 4xx are the client's).
pub fn is_error(status: u16) -> bool {
    status >= 500
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestBatch {
    #[schemars(length(min = 1, max = 64))]
    pub service: String,
    #[serde(default)]
    #[schemars(length(max = MAX_REQUESTS))]
    pub requests: Vec<RequestObservation>,
    pub aggregate: Option<AggregateObservation>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestObservation {
    #[schemars(range(min = 0.0, max = MAX_LATENCY_MS))]
    pub duration_ms: f64,
    #[schemars(range(min = 100, max = 599))]
    pub status: u16,
    pub timestamp: Option<DateTime<Utc>>,
    /// Overrides the status rule (for example a 200 carrying an error).
    pub error: Option<bool>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AggregateObservation {
    /// The end of the interval (default: when received).
    pub timestamp: Option<DateTime<Utc>>,
    #[schemars(range(max = MAX_AGGREGATE_COUNT))]
    pub count: u64,
    pub errors: u64,
    /// The latency histogram as weighted values: `[{"value": 12.5, "count": 30}, ...]`.
    #[serde(default)]
    pub latency_ms: Vec<WeightedValue>,
    /// Exact latency sum, when known (else the weighted values' sum).
    #[schemars(range(min = 0.0))]
    pub sum_ms: Option<f64>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WeightedValue {
    #[schemars(range(min = 0.0, max = MAX_LATENCY_MS))]
    pub value: f64,
    pub count: u64,
}

fn check_ts(t: Option<DateTime<Utc>>, now_ms: i64) -> Result<i64, String> {
    let ts = t.map_or(now_ms, |t| t.timestamp_millis());
    if ts > now_ms + MAX_FUTURE_MS {
        return Err("timestamp is more than 5 minutes in the future".into());
    }
    Ok(ts)
}

/// Validates the whole batch (all-or-nothing) and returns (timestamp, stats) pairs.
pub fn to_samples(b: &RequestBatch, now_ms: i64) -> Result<Vec<(i64, Hist)>, Vec<String>> {
    let mut errors = Vec::new();
    let mut out = Vec::with_capacity(b.requests.len() + 1);
    if b.service.trim().is_empty()
        || b.service.len() > 64
        || b.service.chars().any(char::is_control)
    {
        errors.push("service: must be 1-64 characters".to_string());
    }
    if b.requests.is_empty() && b.aggregate.is_none() {
        errors.push("give requests (raw observations) or aggregate".into());
    }
    if b.requests.len() > MAX_REQUESTS {
        errors.push(format!(
            "requests: {} observations, at most {MAX_REQUESTS}",
            b.requests.len()
        ));
    }
    for (i, r) in b.requests.iter().enumerate() {
        if !(r.duration_ms.is_finite() && (0.0..=MAX_LATENCY_MS).contains(&r.duration_ms)) {
            errors.push(format!(
                "requests[{i}].duration_ms: {} must be a number from 0 to {MAX_LATENCY_MS:e}",
                r.duration_ms
            ));
        } else if !(100..=599).contains(&r.status) {
            errors.push(format!(
                "requests[{i}].status: {} is not an HTTP status",
                r.status
            ));
        } else {
            match check_ts(r.timestamp, now_ms) {
                Ok(ts) => {
                    let err = r.error.unwrap_or(is_error(r.status));
                    out.push((ts, Hist::of(r.duration_ms, 1, u64::from(err))));
                }
                Err(e) => errors.push(format!("requests[{i}].{e}")),
            }
        }
    }
    if let Some(a) = &b.aggregate {
        let timed: u64 = a
            .latency_ms
            .iter()
            .fold(0u64, |t, w| t.saturating_add(w.count));
        if a.count > MAX_AGGREGATE_COUNT {
            errors.push(format!(
                "aggregate.count: {} is more than {MAX_AGGREGATE_COUNT} requests in one interval",
                a.count
            ));
        }
        if a.errors > a.count {
            errors.push(format!(
                "aggregate.errors: {} is more than count {}",
                a.errors, a.count
            ));
        }
        if timed > a.count {
            errors.push(format!(
                "aggregate.latency_ms: {timed} values is more than count {}",
                a.count
            ));
        }
        if let Some((i, w)) = a
            .latency_ms
            .iter()
            .enumerate()
            .find(|(_, w)| !(w.value.is_finite() && (0.0..=MAX_LATENCY_MS).contains(&w.value)))
        {
            errors.push(format!(
                "aggregate.latency_ms[{i}].value: {} must be a number from 0 to {MAX_LATENCY_MS:e}",
                w.value
            ));
        }
        if let Some(s) = a.sum_ms
            && !(s.is_finite() && s >= 0.0)
        {
            errors.push(format!(
                "aggregate.sum_ms: {s} must be a finite number >= 0"
            ));
        }
        match check_ts(a.timestamp, now_ms) {
            Ok(ts) if errors.is_empty() => {
                let mut h = Hist::counts_only(a.count - timed, 0);
                for w in a.latency_ms.iter().filter(|w| w.count > 0) {
                    h.merge(&Hist::of(w.value, w.count, 0));
                }
                h.errors = a.errors;
                if let Some(s) = a.sum_ms {
                    h.sum = s;
                }
                out.push((ts, h));
            }
            Ok(_) => {}
            Err(e) => errors.push(format!("aggregate.{e}")),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}
