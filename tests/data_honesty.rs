//! Numbers that mean what they say (issue "Numbers that mean what they
//! say"): each test is named after a defect it keeps away, built from real
//! inputs through the HTTP API.

mod common;

use common::*;
use serde_json::{Value, json};

const S: i64 = 1_000;
const MIN: i64 = 60 * S;
const HOUR: i64 = 60 * MIN;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn at(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .expect("a time")
        .to_rfc3339()
}

/// Pushes samples (metric, labels, time in ms, value) in requests of at
/// most 10,000.
fn push(d: &Daemon, samples: &[(&str, Value, i64, f64)]) {
    for chunk in samples.chunks(10_000) {
        let body: Vec<Value> = chunk
            .iter()
            .map(|(m, l, t, v)| json!({"metric": m, "labels": l, "value": v, "timestamp": at(*t)}))
            .collect();
        let r = d.post("/ingest/metrics", &json!({ "samples": body }));
        assert_eq!(r.status, 200, "{}", r.text);
    }
}

#[test]
fn uptime_counted_checks_so_an_outage_with_back_off_read_as_99_percent() {
    let d = Daemon::start(&[]);
    let now = now_ms();
    let outage = now - 10 * HOUR..now - 9 * HOUR;
    // Checks every 30 s for the last 24 hours; during the outage, five
    // failures 30 s apart, then one a minute (the back-off's cap).
    let labels = json!({"service": "edge"});
    let mut samples = Vec::new();
    let (mut t, mut fails) = (now - 24 * HOUR + MIN, 0);
    while t < now {
        let up = !outage.contains(&t);
        samples.push(("up", labels.clone(), t, if up { 1.0 } else { 0.0 }));
        samples.push(("response_time_ms", labels.clone(), t, 12.0));
        fails = if up { 0 } else { fails + 1 };
        t += if fails < 5 { 30 * S } else { MIN };
    }
    push(&d, &samples);
    let covered = (now - (now - 24 * HOUR + MIN)) as f64;
    let truth = 100.0 * (1.0 - HOUR as f64 / covered);
    let s = d.get("/metrics/summary?time_range=24h&service=edge");
    assert_eq!(s.status, 200, "{}", s.text);
    let u = s.body["service_metrics"]["edge"]["uptime_percent"]
        .as_f64()
        .expect("uptime");
    assert!((u - truth).abs() < 0.2, "summary uptime {u}, truth {truth}");
    let c = d.get("/charts/service-health?time_range=24h&service=edge");
    assert_eq!(c.status, 200, "{}", c.text);
    let u = c.body["uptime_percent"]["edge"].as_f64().expect("uptime");
    assert!((u - truth).abs() < 0.2, "chart uptime {u}, truth {truth}");
}
