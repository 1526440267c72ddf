//! The daemon's anomaly watch: the streaming detector of
//! `analysis::anomaly` run on the series worth watching, its score stored
//! beside each as a series of its own, and the anomalies it finds kept as
//! events (`GET /anomalies`, alert rules with `aggregation = "anomaly"`).
//!
//! - `watch.rs`: which series are watched, the detector per (series,
//!   signal) fed one value per raw slot as slots complete, scores written;
//! - `events.rs`: anomaly events, kept in a fixed ring of sled keys.

pub mod events;
pub mod watch;

use crate::config::anomalies::Selector;
use crate::store::SeriesKey;

/// The series an analysed series' score is stored in: `anomaly_score`
/// with the analysed metric in label `metric`, its labels, and `signal`
/// for the request statistics' three signals.
pub const SCORE_METRIC: &str = "anomaly_score";

/// The series the watch writes (refused from `POST /ingest/metrics` with
/// an ingest token, like every series the daemon writes itself).
pub const SERIES: [&str; 1] = [SCORE_METRIC];

/// What one detector follows: a gauge's value, or one of three values a
/// request-statistics series gives per slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Signal {
    /// A gauge: the mean of the slot's samples.
    Value,
    /// Requests per second.
    RequestRate,
    /// Percent of requests that failed (slots with requests only).
    ErrorRate,
    /// The 95th percentile of response time, ms.
    LatencyP95,
}

impl Signal {
    pub const REQUESTS: [Signal; 3] = [Signal::RequestRate, Signal::ErrorRate, Signal::LatencyP95];

    /// The signals a series gives: three for request statistics, else its value.
    pub fn of(hist: bool) -> &'static [Signal] {
        if hist {
            &Signal::REQUESTS
        } else {
            &[Signal::Value]
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Value => "value",
            Signal::RequestRate => "request_rate",
            Signal::ErrorRate => "error_rate",
            Signal::LatencyP95 => "latency_p95",
        }
    }
}

/// The score series of `key`'s `signal` (`None` when `key` has labels
/// named `metric` or `signal`, which the score series needs itself).
pub fn score_key(key: &SeriesKey, signal: Signal) -> Option<SeriesKey> {
    if key.labels.contains_key("metric") || key.labels.contains_key("signal") {
        return None;
    }
    let mut k = SeriesKey::new(SCORE_METRIC).with("metric", &key.metric);
    for (n, v) in &key.labels {
        k = k.with(n, v);
    }
    if signal != Signal::Value {
        k = k.with("signal", signal.as_str());
    }
    Some(k)
}

/// What `config` has watched: `ANOMALY_METRICS` (or the default set) and
/// the metric of every rule with `aggregation = "anomaly"` (with the
/// rule's equality matchers).
pub fn selectors(config: &crate::config::Config) -> Vec<Selector> {
    let mut out = config
        .anomaly_metrics
        .clone()
        .unwrap_or_else(default_selectors);
    for r in &config.rules {
        if r.aggregation == crate::config::alerting::Aggregation::Anomaly {
            out.push(Selector {
                metric: r.metric.clone(),
                labels: r
                    .matchers
                    .iter()
                    .filter(|m| !m.negate)
                    .map(|m| (m.name.clone(), m.value.clone()))
                    .collect(),
            });
        }
    }
    out
}

/// What is watched when `ANOMALY_METRICS` is not set: the system
/// collector's series (but the slow or constant ones), the checks'
/// response times and the request statistics.
pub fn default_selectors() -> Vec<Selector> {
    use crate::collect::system::metric as m;
    [
        m::CPU_USAGE_PERCENT,
        m::MEMORY_USAGE_PERCENT,
        m::DISK_USAGE_PERCENT,
        m::LOAD_PER_CORE,
        m::NETWORK_RX_MBPS,
        m::NETWORK_TX_MBPS,
        m::PROCESSES,
        m::THREADS,
        m::FILE_DESCRIPTORS,
        crate::health::RESPONSE_TIME_METRIC,
        crate::collect::requests::REQUESTS_METRIC,
    ]
    .iter()
    .map(|m| Selector {
        metric: m.to_string(),
        labels: Vec::new(),
    })
    .collect()
}
