//! Request statistics scraped from a service's Prometheus text endpoint
//! (`metrics_url`). Each scrape turns the growth of the request counter
//! (errors: `status`/`code` 5xx) and of the duration histogram since the
//! previous scrape into one histogram sample for `http_requests{service}`.
//! Counter resets (a value lower than before: the service restarted) count
//! the new value as the growth. The first scrape only sets the baseline.

use crate::config::services::{ScrapeSpec, ServiceSpec};
use crate::shutdown::Shutdown;
use crate::store::{Hist, HistSample, SeriesKey, Store};
use prometheus_parse::{Scrape, Value};
use std::collections::HashMap;
use std::time::Duration;

/// Largest exposition body read.
const MAX_BODY_BYTES: u64 = 8 << 20;

/// Counter values of the previous scrape, by series.
#[derive(Debug, Default)]
pub struct Baseline {
    counters: HashMap<String, f64>,
    /// Cumulative bucket counts by (label set, upper bound bits).
    buckets: HashMap<(String, u64), f64>,
    sums: HashMap<String, f64>,
    primed: bool,
}

fn labels_key(l: &prometheus_parse::Labels) -> String {
    let mut v: Vec<(&String, &String)> = l.iter().collect();
    v.sort();
    v.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Growth since the baseline; a lower value means the counter was reset.
fn growth(now: f64, before: Option<f64>) -> f64 {
    match before {
        Some(b) if now >= b => now - b,
        _ => now,
    }
}

/// Parses one exposition and returns the requests since the previous one
/// (`None` on the first scrape, which only records the baseline).
pub fn delta(text: &str, spec: &ScrapeSpec, base: &mut Baseline) -> Result<Option<Hist>, String> {
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .map_err(|e| format!("unparsable exposition: {e}"))?;
    let (mut count, mut errors) = (0.0, 0.0);
    let mut saw_counter = false;
    let mut hist = Hist::counts_only(0, 0);
    let mut timed = 0.0;
    let sum_name = format!("{}_sum", spec.duration_metric);
    let mut sum_ms = 0.0;
    let mut next = Baseline {
        primed: true,
        ..Baseline::default()
    };
    for s in &scrape.samples {
        let key = labels_key(&s.labels);
        match &s.value {
            Value::Counter(v) | Value::Untyped(v) if s.metric == spec.requests_metric => {
                saw_counter = true;
                let g = growth(*v, base.counters.get(&key).copied());
                next.counters.insert(key, *v);
                count += g;
                let status = s
                    .labels
                    .get("status")
                    .or_else(|| s.labels.get("code"))
                    .unwrap_or("");
                if status.starts_with('5') {
                    errors += g;
                }
            }
            Value::Counter(v) | Value::Untyped(v) if s.metric == sum_name => {
                sum_ms += growth(*v, base.sums.get(&key).copied()) * 1000.0;
                next.sums.insert(key, *v);
            }
            Value::Histogram(buckets) if s.metric == spec.duration_metric => {
                let mut sorted = buckets.clone();
                sorted.sort_by(|a, b| a.less_than.total_cmp(&b.less_than));
                // A reset of any bucket means the whole histogram restarted.
                let reset = sorted.iter().any(|b| {
                    base.buckets
                        .get(&(key.clone(), b.less_than.to_bits()))
                        .is_some_and(|old| b.count < *old)
                });
                let (mut prev_le, mut prev_cum) = (0.0f64, 0.0f64);
                for b in &sorted {
                    let old = if reset {
                        None
                    } else {
                        base.buckets
                            .get(&(key.clone(), b.less_than.to_bits()))
                            .copied()
                    };
                    let cum = growth(b.count, old);
                    next.buckets
                        .insert((key.clone(), b.less_than.to_bits()), b.count);
                    let n = (cum - prev_cum).max(0.0);
                    // The bucket (prev_le, le] stands for its midpoint; +Inf for its lower bound.
                    let value_s = if b.less_than.is_infinite() {
                        prev_le
                    } else {
                        (prev_le + b.less_than) / 2.0
                    };
                    if n >= 1.0 {
                        hist.merge(&Hist::of(value_s * 1000.0, n.round() as u64, 0));
                        timed += n.round();
                    }
                    prev_cum = cum;
                    if b.less_than.is_finite() {
                        prev_le = b.less_than;
                    }
                }
            }
            _ => {}
        }
    }
    let primed = base.primed;
    *base = next;
    if !primed {
        return Ok(None);
    }
    if !saw_counter {
        count = timed;
    }
    let untimed = (count - timed).max(0.0).round() as u64;
    let mut out = Hist::counts_only(untimed, 0);
    out.merge(&hist);
    out.errors = (errors.round() as u64).min(out.count);
    if timed > 0.0 && sum_ms > 0.0 {
        out.sum = sum_ms;
    }
    Ok(Some(out))
}

fn fetch(url: &str, timeout: Duration) -> Result<String, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .build()
        .into();
    let mut r = agent.get(url).call().map_err(|e| e.to_string())?;
    if !r.status().is_success() {
        return Err(format!("bad status {}", r.status().as_u16()));
    }
    r.body_mut()
        .with_config()
        .limit(MAX_BODY_BYTES)
        .read_to_string()
        .map_err(|e| e.to_string())
}

/// Scrapes `spec.scrape` every interval until shutdown.
pub async fn run(spec: ServiceSpec, store: Store, mut shutdown: Shutdown) {
    let Some(scrape) = spec.scrape.clone() else {
        return;
    };
    let key = SeriesKey::new(super::requests::REQUESTS_METRIC).with("service", &spec.name);
    let mut base = Some(Baseline::default());
    let mut ticker = crate::shutdown::ticker(spec.interval);
    while shutdown.tick(&mut ticker).await {
        let Some(mut b) = base.take() else { return };
        let (sc, st, k, timeout) = (scrape.clone(), store.clone(), key.clone(), spec.timeout);
        let joined = tokio::task::spawn_blocking(move || {
            let at = chrono::Utc::now().timestamp_millis();
            let result = fetch(&sc.url, timeout)
                .and_then(|text| delta(&text, &sc, &mut b))
                .and_then(|h| {
                    let Some(hist) = h else { return Ok(()) };
                    let id = st.resolve_hist(&k).map_err(|e| e.to_string())?;
                    st.ingest_hist(&[HistSample {
                        series: id,
                        ts_ms: at,
                        hist,
                    }])
                    .map(|_| ())
                    .map_err(|e| e.to_string())
                });
            (b, result)
        })
        .await;
        match joined {
            Ok((b, result)) => {
                base = Some(b);
                if let Err(e) = result {
                    tracing::warn!(service = %spec.name, error = %e, "scrape failed");
                }
            }
            Err(e) => {
                tracing::error!(service = %spec.name, error = %e, "scrape crashed");
                base = Some(Baseline::default());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: fn() -> ScrapeSpec = || ScrapeSpec {
        url: "http://x/metrics".into(),
        requests_metric: "http_requests_total".into(),
        duration_metric: "http_request_duration_seconds".into(),
    };

    fn exposition(ok: u64, err: u64, b: [u64; 3], sum: f64) -> String {
        format!(
            "# HELP http_requests_total Requests.\n# TYPE http_requests_total counter\n\
             http_requests_total{{method=\"GET\",status=\"200\"}} {ok}\n\
             http_requests_total{{method=\"GET\",status=\"503\"}} {err}\n\
             # HELP http_request_duration_seconds Latency.\n# TYPE http_request_duration_seconds histogram\n\
             http_request_duration_seconds_bucket{{le=\"0.01\"}} {}\n\
             http_request_duration_seconds_bucket{{le=\"0.1\"}} {}\n\
             http_request_duration_seconds_bucket{{le=\"+Inf\"}} {}\n\
             http_request_duration_seconds_sum {sum}\n\
             http_request_duration_seconds_count {}\n",
            b[0], b[1], b[2], b[2]
        )
    }

    #[test]
    fn growth_between_scrapes_with_a_counter_reset() {
        let mut base = Baseline::default();
        assert_eq!(
            delta(&exposition(100, 5, [50, 100, 105], 3.0), &SPEC(), &mut base),
            Ok(None)
        );
        let h = delta(&exposition(160, 9, [80, 160, 165], 5.0), &SPEC(), &mut base)
            .unwrap()
            .unwrap();
        assert_eq!((h.count, h.errors), (64, 4));
        assert_eq!(h.timed(), 60);
        assert!((h.sum - 2000.0).abs() < 1e-6, "{}", h.sum);
        // 30 fast (0-10 ms: 5 ms) and 30 in 10-100 ms (55 ms); none slower.
        assert!((h.quantile(0.25).unwrap() - 5.0).abs() / 5.0 < 0.01);
        // The service restarted: counters start again from zero.
        let h = delta(&exposition(10, 1, [5, 9, 10], 0.4), &SPEC(), &mut base)
            .unwrap()
            .unwrap();
        assert_eq!((h.count, h.errors, h.timed()), (11, 1, 10));
    }
}
