//! Application metrics and ML platform state over real HTTP: request
//! ingest, summaries with percentiles, scraping, models and training jobs.

mod common;

use common::servers::{Behavior, HttpTarget};
use common::*;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn ago(secs: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::seconds(secs)).to_rfc3339()
}

/// Deterministic pseudo-random latencies (xorshift), log-uniform 1-2000 ms.
fn latencies(n: usize) -> Vec<f64> {
    let mut x: u64 = 0x2545F4914F6CDD1D;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let u = (x >> 11) as f64 / (1u64 << 53) as f64;
            (u * 2000f64.ln()).exp()
        })
        .collect()
}

fn exact(sorted: &[f64], q: f64) -> f64 {
    sorted[(q * (sorted.len() - 1) as f64).floor() as usize]
}

#[test]
fn request_ingest_feeds_summary_with_percentiles_within_one_percent() {
    let d = Daemon::start(&[]);
    let values = latencies(20_000);
    // 2 batches of 10,000 spread over the last 50 minutes; every 20th is a 503.
    for (b, chunk) in values.chunks(10_000).enumerate() {
        let reqs: Vec<Value> = chunk
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let n = b * 10_000 + i;
                let status = if n % 20 == 0 { 503 } else { 200 };
                json!({"duration_ms": v, "status": status, "timestamp": ago(3000 - (n as i64 * 3000 / 20_000))})
            })
            .collect();
        let r = d.post(
            "/ingest/requests",
            &json!({"service": "model-api", "requests": reqs}),
        );
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["accepted"], 10_000);
    }
    // A pre-aggregated interval for another service.
    let r = d.post(
        "/ingest/requests",
        &json!({"service": "gateway", "aggregate": {"timestamp": ago(60), "count": 100, "errors": 10,
                 "latency_ms": [{"value": 10.0, "count": 90}, {"value": 100.0, "count": 10}]}}),
    );
    assert_eq!(r.status, 200, "{}", r.text);

    let s = d.get("/metrics/summary?time_range=1h").body;
    assert_eq!(s["time_range"], "1h");
    assert_eq!(s["total_requests"], 20_100);
    assert_eq!(s["failed_requests"], 1_000 + 10);
    assert_eq!(s["successful_requests"], 20_100 - 1_010);
    let er = s["error_rate"].as_f64().unwrap();
    assert!((er - 1010.0 * 100.0 / 20_100.0).abs() < 1e-9, "{er}");
    // Divided by the time the statistics cover (the first came 50 minutes
    // ago), not by the whole hour.
    let tp = s["throughput_per_second"].as_f64().unwrap();
    assert!((tp - 20_100.0 / 3000.0).abs() < 0.01 * tp, "{tp}");

    let m = &s["service_metrics"]["model-api"];
    assert_eq!(m["requests"], 20_000);
    assert_eq!(m["error_rate"], 5.0);
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    assert!((m["avg_response_time_ms"].as_f64().unwrap() - mean).abs() < 1e-6 * mean);
    let mut sorted = values.clone();
    sorted.sort_by(f64::total_cmp);
    for (field, q) in [
        ("p95_response_time_ms", 0.95),
        ("p99_response_time_ms", 0.99),
    ] {
        let got = m[field].as_f64().unwrap();
        let want = exact(&sorted, q);
        assert!(
            (got - want).abs() / want <= 0.01,
            "{field}: {got} vs exact {want}"
        );
    }
    let g = &s["service_metrics"]["gateway"];
    assert_eq!(
        (g["requests"].as_u64(), g["error_rate"].as_f64()),
        (Some(100), Some(10.0))
    );
    assert!((g["avg_response_time_ms"].as_f64().unwrap() - 19.0).abs() < 1e-9);
    assert_eq!(g["uptime_percent"], Value::Null, "no health checks for it");
    for t in ["requests_trend", "response_time_trend", "error_rate_trend"] {
        assert!(["up", "down", "stable"].contains(&s["trends"][t].as_str().unwrap()));
    }
    // Over 7 days the same requests come from the hour tier: the same exact totals
    // and percentiles, merged from coarser slots.
    let w = d
        .get("/metrics/summary?time_range=7d&service=model-api")
        .body;
    let wm = &w["service_metrics"]["model-api"];
    assert_eq!(wm["requests"], 20_000);
    assert_eq!(
        w["service_metrics"].as_object().unwrap().len(),
        1,
        "filtered by service"
    );
    let p99 = wm["p99_response_time_ms"].as_f64().unwrap();
    assert!((p99 - exact(&sorted, 0.99)).abs() / exact(&sorted, 0.99) <= 0.01);
    // An unknown service: empty, not an error.
    let e = d.get("/metrics/summary?service=nobody").body;
    assert_eq!(e["total_requests"], 0);
    assert_eq!(e["error_rate"], Value::Null);
    assert_eq!(d.get("/metrics/summary?time_range=90d").status, 400);
}

#[test]
fn bad_request_batches_are_rejected_whole() {
    let d = Daemon::start(&[]);
    let r = d.post(
        "/ingest/requests",
        &json!({"service": "svc", "requests": [
            {"duration_ms": 5.0, "status": 200},
            {"duration_ms": -1.0, "status": 200},
            {"duration_ms": 5.0, "status": 99},
        ]}),
    );
    assert_eq!(r.status, 400);
    let msg = r.body["error"].as_str().unwrap();
    assert!(
        msg.contains("requests[1].duration_ms") && msg.contains("requests[2].status"),
        "{msg}"
    );
    let s = d.get("/metrics/summary?time_range=1h").body;
    assert_eq!(
        s["total_requests"], 0,
        "nothing of the bad batch was written"
    );
    let r = d.post(
        "/ingest/requests",
        &json!({"service": "svc", "requests": [{"duration_ms": "fast", "status": 200}]}),
    );
    assert_eq!(r.status, 400);
    assert!(
        r.body["error"]
            .as_str()
            .unwrap()
            .contains("requests[0].duration_ms"),
        "{}",
        r.text
    );
    let r = d.post(
        "/ingest/requests",
        &json!({"service": "svc", "aggregate": {"count": 5, "errors": 9}}),
    );
    assert!(
        r.body["error"]
            .as_str()
            .unwrap()
            .contains("aggregate.errors"),
        "{}",
        r.text
    );
}

fn exposition(ok: u64, err: u64, buckets: [u64; 3], sum: f64) -> String {
    format!(
        "# HELP http_requests_total Total requests.\n# TYPE http_requests_total counter\n\
         http_requests_total{{method=\"POST\",status=\"200\"}} {ok}\n\
         http_requests_total{{method=\"POST\",status=\"500\"}} {err}\n\
         # HELP http_request_duration_seconds Request latency.\n# TYPE http_request_duration_seconds histogram\n\
         http_request_duration_seconds_bucket{{le=\"0.05\"}} {}\n\
         http_request_duration_seconds_bucket{{le=\"0.25\"}} {}\n\
         http_request_duration_seconds_bucket{{le=\"+Inf\"}} {}\n\
         http_request_duration_seconds_sum {sum}\n\
         http_request_duration_seconds_count {}\n",
        buckets[0], buckets[1], buckets[2], buckets[2]
    )
}

#[test]
fn a_real_scrape_with_a_counter_reset() {
    let text = Arc::new(Mutex::new(exposition(1000, 10, [600, 1000, 1010], 120.0)));
    let target = HttpTarget::start(Behavior::Text(text.clone()));
    let health = HttpTarget::start(Behavior::Json("{}"));
    let cfg = format!(
        "[[services]]\nname = \"scored\"\nkind = \"http\"\ntarget = \"{}\"\ninterval = 0.3\nmetrics_url = \"http://127.0.0.1:{}/metrics\"\n",
        health.url(),
        target.port
    );
    let d = Daemon::start_with_config(&cfg, &[]);
    let hits = |n: usize| {
        wait_for(Duration::from_secs(10), || {
            (target.hits() >= n).then_some(())
        })
    };
    hits(2);
    // +100 requests (+10 errors), all in the 0.05-0.25 s bucket.
    *text.lock().unwrap() = exposition(1090, 20, [600, 1100, 1110], 135.0);
    let now = target.hits();
    hits(now + 2);
    // The service restarted: counters from zero.
    *text.lock().unwrap() = exposition(40, 0, [40, 40, 40], 1.0);
    let now = target.hits();
    hits(now + 2);
    let s = wait_for(Duration::from_secs(10), || {
        let s = d.get("/metrics/summary?time_range=1h&service=scored").body;
        (s["total_requests"] == 140).then_some(s)
    });
    assert_eq!(s["failed_requests"], 10);
    let m = &s["service_metrics"]["scored"];
    // 100 requests at the 150 ms midpoint and 40 at 25 ms; sum 15 s + 1 s.
    let avg = m["avg_response_time_ms"].as_f64().unwrap();
    assert!((avg - 16_000.0 / 140.0).abs() < 1e-6, "{avg}");
    let p99 = m["p99_response_time_ms"].as_f64().unwrap();
    assert!((p99 - 150.0).abs() / 150.0 <= 0.01, "{p99}");
    assert!(m["uptime_percent"].as_f64() == Some(100.0), "{m}");
}

fn model(name: &str, status: &str, progress: f64) -> Value {
    json!({"name": name, "status": status, "progress": progress, "memory_usage_mb": 512.0})
}

fn job(id: &str, status: &str, progress: f64, started: &str) -> Value {
    json!({"job_id": id, "model_name": "detector", "status": status, "progress": progress,
           "started_at": started, "resource_usage": {"cpu_usage": 150.0, "memory_usage_mb": 2048.0, "gpu_usage": 80.0}})
}

#[test]
fn models_and_training_jobs_round_trip_validate_and_survive_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start_in(tmp.path(), &[]);
    for body in [
        model("fraud", "loading", 10.0),
        model("fraud", "loaded", 100.0),
        model("spam", "loading", 40.0),
        json!({"name": "nlp", "status": "failed", "progress": 70.0, "memory_usage_mb": 0.0, "error_message": "out of memory"}),
    ] {
        let r = d.post("/ingest/models", &body);
        assert_eq!(r.status, 200, "{}", r.text);
        std::thread::sleep(Duration::from_millis(20));
    }
    let bad = [
        (
            model("x", "exploded", 1.0),
            "status: unknown variant `exploded`",
        ),
        (
            model("x", "loading", 120.0),
            "progress: 120 is outside 0-100",
        ),
        (
            json!({"name": "x", "status": "loading", "progress": 1.0}),
            "missing field `memory_usage_mb`",
        ),
    ];
    for (body, needle) in bad {
        let r = d.post("/ingest/models", &body);
        assert_eq!(r.status, 400, "{}", r.text);
        assert!(
            r.body["error"].as_str().unwrap().contains(needle),
            "{} lacks {needle}",
            r.text
        );
    }
    let started = ago(600);
    for body in [
        job("j1", "running", 10.0, &started),
        job("j2", "pending", 0.0, &started),
        job("j3", "completed", 100.0, &started),
    ] {
        assert_eq!(d.post("/ingest/training", &body).status, 200);
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        d.post("/ingest/training", &job("j1", "running", 20.0, &started))
            .status,
        200
    );
    let r = d.post("/ingest/training", &job("j9", "paused", 1.0, &started));
    assert!(
        r.body["error"]
            .as_str()
            .unwrap()
            .contains("status: unknown variant `paused`"),
        "{}",
        r.text
    );
    let r = d.post(
        "/ingest/training",
        &json!([job("j9", "running", 1.0, &started), {"job_id": "j10"}]),
    );
    assert!(
        r.body["error"].as_str().unwrap().contains("[1]"),
        "{}",
        r.text
    );
    assert_eq!(
        d.get("/training-status").body["jobs"]
            .as_array()
            .unwrap()
            .len(),
        3,
        "nothing of a bad batch"
    );

    let check = |d: &Daemon| {
        let m = d.get("/model-loading-status").body;
        assert_eq!(m["total_models"], 3);
        assert_eq!(
            (
                m["loaded_models"].as_u64(),
                m["loading_models"].as_u64(),
                m["failed_models"].as_u64()
            ),
            (Some(1), Some(1), Some(1))
        );
        assert_eq!(m["total_memory_usage_mb"], 1024.0);
        let fraud = m["models"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == "fraud")
            .unwrap()
            .clone();
        assert_eq!(fraud["status"], "loaded");
        let lt = fraud["loading_time_ms"]
            .as_f64()
            .expect("derived from loading -> loaded");
        assert!((15.0..5_000.0).contains(&lt), "{lt}");
        assert!(chrono::DateTime::parse_from_rfc3339(fraud["loaded_at"].as_str().unwrap()).is_ok());
        let nlp = m["models"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == "nlp")
            .unwrap()
            .clone();
        assert_eq!(nlp["error_message"], "out of memory");
        assert!(nlp.get("loaded_at").is_none());

        let t = d.get("/training-status").body;
        let q = &t["queue_status"];
        assert_eq!(
            (
                q["pending_jobs"].as_u64(),
                q["running_jobs"].as_u64(),
                q["completed_jobs"].as_u64(),
                q["failed_jobs"].as_u64()
            ),
            (Some(1), Some(1), Some(1), Some(0))
        );
        let r = &t["resource_utilization"];
        assert_eq!(
            (
                r["total_cpu_usage"].as_f64(),
                r["total_memory_usage_mb"].as_f64(),
                r["gpu_utilization"].as_f64()
            ),
            (Some(150.0), Some(2048.0), Some(80.0))
        );
        let j1 = t["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["job_id"] == "j1")
            .unwrap()
            .clone();
        assert_eq!(j1["progress"], 20.0);
        assert_eq!(j1["estimated_completion_is_estimate"], true);
        let eta =
            chrono::DateTime::parse_from_rfc3339(j1["estimated_completion"].as_str().unwrap())
                .unwrap();
        assert!(
            eta > chrono::Utc::now(),
            "a running job finishes in the future"
        );
        assert_eq!(j1["resource_usage"]["gpu_usage"], 80.0);
        let j3 = t["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["job_id"] == "j3")
            .unwrap()
            .clone();
        assert!(j3.get("estimated_completion").is_none());
    };
    check(&d);
    // History is in the store too.
    let h = d
        .get("/metrics/detailed?metric=training_job_progress&time_range=1h&granularity=1m")
        .body;
    assert!(h["series"].as_array().unwrap().len() >= 3, "{h}");
    d.stop().expect("clean stop");
    let d = Daemon::start_in(tmp.path(), &[]);
    check(&d);
}
