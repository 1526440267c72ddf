//! Analysis in the daemon over real HTTP: anomaly events and a rule on the
//! anomaly score, forecasts and capacity from stored history.

mod common;

use common::*;
use serde_json::{Value, json};
use std::time::Duration;

const FAST: [(&str, &str); 1] = [("ALERT_EVALUATION_INTERVAL", "0.2")];

/// A deterministic noise in [-1, 1].
fn noise(i: i64) -> f64 {
    let mut x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5555;
    x ^= x >> 29;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 32;
    (x % 2001) as f64 / 1000.0 - 1.0
}

#[test]
fn a_rule_on_the_anomaly_score_fires_on_an_injected_spike_and_lists_the_event() {
    const ANOMALY_RULE: &str = r#"
[[rules]]
name = "latency_anomaly"
metric = "job_latency_ms"
aggregation = "anomaly"
window = 30
op = ">="
threshold = 0.9999
clear_after = 0
severity = "warning"
message = "{label.service} latency is anomalous (score {value})"
"#;
    let d = Daemon::start_with_config(ANOMALY_RULE, &FAST);
    // 15 minutes of calm history at the raw step (1 s here), in the past.
    let now = chrono::Utc::now();
    let sample = |at: chrono::DateTime<chrono::Utc>, i: i64, v: f64| {
        json!({"metric": "job_latency_ms", "labels": {"service": "scorer"}, "value": v + noise(i),
               "timestamp": at.to_rfc3339()})
    };
    let history: Vec<Value> = (0..900)
        .map(|i| sample(now - chrono::Duration::seconds(900 - i), i, 20.0))
        .collect();
    let r = d.post("/ingest/metrics", &json!({"samples": history}));
    assert_eq!(r.status, 200, "{}", r.text);
    // The watch picks the series up (the rule asks for it) and replays it.
    wait_for(Duration::from_secs(10), || {
        (d.get("/anomalies").body["watched"].as_u64() > Some(0)).then_some(())
    });
    // Calm live values for a few seconds: nothing fires.
    for i in 0..4 {
        let r = d.post(
            "/ingest/metrics",
            &json!({"samples": [sample(chrono::Utc::now(), 900 + i, 20.0)]}),
        );
        assert_eq!(r.status, 200, "{}", r.text);
        std::thread::sleep(Duration::from_millis(1000));
    }
    let ours = |b: Value| {
        b["alerts"].as_array().and_then(|a| {
            a.iter()
                .find(|a| a["metadata"]["rule"] == "latency_anomaly")
                .cloned()
        })
    };
    assert_eq!(ours(d.get("/alerts?status=active").body), None);
    // The spike.
    let r = d.post(
        "/ingest/metrics",
        &json!({"samples": [sample(chrono::Utc::now(), 999, 400.0)]}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let alert = wait_for(Duration::from_secs(15), || {
        ours(d.get("/alerts?status=active").body)
    });
    assert!(
        alert["message"]
            .as_str()
            .unwrap()
            .contains("scorer latency is anomalous"),
        "{alert}"
    );
    let list = d
        .get("/anomalies?metric=job_latency_ms&service=scorer")
        .body;
    assert_eq!(list["total"], 1, "{list}");
    let e = &list["anomalies"][0];
    assert_eq!(e["signal"], "value");
    assert!(e["peak_score"].as_f64().unwrap() >= 0.9999, "{e}");
    assert!(e["value"].as_f64().unwrap() > 300.0, "{e}");
    assert!(e["expected_high"].as_f64().unwrap() < 30.0, "{e}");
    // The score is a series of its own, beside the analysed one.
    let scores = d
        .get("/metrics/detailed?metric=anomaly_score&time_range=1h&granularity=1m")
        .body;
    let series = scores["series"].as_array().expect("series");
    assert!(
        series
            .iter()
            .any(|s| s["labels"]["metric"] == "job_latency_ms"),
        "{scores}"
    );
    assert_eq!(d.get("/anomalies?service=nobody").body["total"], 0);
    assert_eq!(d.get("/anomalies?limit=0").status, 400);
    assert_eq!(d.get("/anomalies?time_range=2d").status, 400);
}

#[test]
fn forecast_and_capacity_read_a_filling_disk_from_history() {
    let d = Daemon::start(&[]);
    // A day of a disk filling 1 % an hour to 64 %, one sample a minute.
    let now = chrono::Utc::now();
    let samples: Vec<Value> = (0..1440)
        .map(|i| {
            json!({"metric": "disk_usage_percent", "labels": {"mount": "/srv/models"},
                   "value": 40.0 + i as f64 / 60.0 + noise(i) * 0.1,
                   "timestamp": (now - chrono::Duration::minutes(1440 - i)).to_rfc3339()})
        })
        .collect();
    let r = d.post("/ingest/metrics", &json!({"samples": samples}));
    assert_eq!(r.status, 200, "{}", r.text);
    let c = d.get("/capacity");
    assert_eq!(c.status, 200, "{}", c.text);
    let disk = c.body["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["labels"]["mount"] == "/srv/models")
        .cloned()
        .expect("the disk");
    assert_eq!(disk["resource"], "disk");
    assert_eq!(disk["filling"], true, "{disk}");
    // 100 % is 36 hours after the newest value: within the interval, and
    // the point estimate within 3 %.
    let want = 36.0 * 3600.0;
    let (t, lo, hi) = (
        disk["seconds_to_full"].as_f64().unwrap(),
        disk["seconds_to_full_low"].as_f64().unwrap(),
        disk["seconds_to_full_high"].as_f64().unwrap(),
    );
    assert!((t - want).abs() < 0.03 * want, "{disk}");
    assert!(lo <= want * 1.01 && want * 0.99 <= hi, "{disk}");
    assert!((disk["growth_percent_per_hour"].as_f64().unwrap() - 1.0).abs() < 0.05);
    assert!(disk["full_at"].is_string());
    // The memory (the collector's own series, seconds old) is listed too,
    // not filling: too little history to say.
    let memory = wait_for(Duration::from_secs(10), || {
        d.get("/capacity").body["resources"]
            .as_array()?
            .iter()
            .find(|r| r["resource"] == "memory")
            .cloned()
    });
    assert_eq!(memory["filling"], false, "{memory}");
    assert!(memory["seconds_to_full"].is_null());

    let f = d.get("/forecast?metric=disk_usage_percent&labels=mount=/srv/models&horizon=6h");
    assert_eq!(f.status, 200, "{}", f.text);
    let s = &f.body["series"][0];
    assert_eq!(s["model"], "linear_trend", "{}", f.body);
    let pts = s["points"].as_array().unwrap();
    assert_eq!(
        pts.len() as i64,
        6 * 3600 / f.body["step_seconds"].as_i64().unwrap()
    );
    let last = pts.last().unwrap();
    let v = last["value"].as_f64().unwrap();
    assert!((v - 70.0).abs() < 0.5, "{last}");
    for (lo, hi) in [
        ("lower_95", "lower_80"),
        ("lower_80", "value"),
        ("value", "upper_80"),
        ("upper_80", "upper_95"),
    ] {
        assert!(
            last[lo].as_f64().unwrap() <= last[hi].as_f64().unwrap(),
            "{last}"
        );
    }
    for (path, needle) in [
        ("/forecast", "metric is required"),
        ("/forecast?metric=x&horizon=30d", "horizon"),
        ("/forecast?metric=x&labels=mount", "name=value"),
        ("/capacity?x=1", "x"),
    ] {
        let r = d.get(path);
        assert_eq!(r.status, 400, "{path}: {}", r.text);
        assert!(r.text.contains(needle), "{path}: {}", r.text);
    }
    let none = d.get("/forecast?metric=nothing_here").body;
    assert_eq!(none["series"], json!([]));
}
