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
    use common::servers::{Behavior, HttpTarget};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU16, Ordering};
    // A real service probed every 0.2 s: up for 3 s, down for 3 s (the
    // probe backs off: five failures, then 0.4, 0.8, 1.6 s apart), up again.
    let status = Arc::new(AtomicU16::new(200));
    let t = HttpTarget::start(Behavior::Switch(status.clone()));
    let cfg = format!(
        "[[services]]\nname = \"edge\"\nkind = \"http\"\ntarget = \"{}\"\ninterval = 0.2\n",
        t.url()
    );
    let d = Daemon::start_with_config(&cfg, &[]);
    let phase = std::time::Duration::from_secs(3);
    std::thread::sleep(phase);
    status.store(503, Ordering::Relaxed);
    std::thread::sleep(phase);
    status.store(200, Ordering::Relaxed);
    std::thread::sleep(phase);
    // Count-weighted, the failures (about 8 checks) against the successes
    // (about 30) would read near 80 %; by time, down a third of the time
    // (plus up to one back-off before the recovery is seen).
    let s = d.get("/metrics/summary?time_range=1h&service=edge");
    assert_eq!(s.status, 200, "{}", s.text);
    let u = s.body["service_metrics"]["edge"]["uptime_percent"]
        .as_f64()
        .expect("uptime");
    assert!((40.0..=72.0).contains(&u), "summary uptime {u}");
    let c = d.get("/charts/service-health?time_range=1h&service=edge");
    assert_eq!(c.status, 200, "{}", c.text);
    let cu = c.body["uptime_percent"]["edge"].as_f64().expect("uptime");
    assert!((40.0..=72.0).contains(&cu), "chart uptime {cu}");
    // The samples the probe stored, counted the old way, say otherwise.
    let r = d.get("/metrics/detailed?metric=up&service=edge&time_range=1h&granularity=1m");
    let (sum, n) = r.body["series"][0]["points"]
        .as_array()
        .expect("points")
        .iter()
        .filter(|p| p["count"].as_u64().unwrap_or(0) > 0)
        .fold((0.0, 0u64), |(s, n), p| {
            let c = p["count"].as_u64().unwrap_or(0);
            (s + p["avg"].as_f64().unwrap_or(0.0) * c as f64, n + c)
        });
    let by_count = 100.0 * sum / n as f64;
    eprintln!("uptime by time {u:.1} % (chart {cu:.1} %), by count {by_count:.1} %");
    assert!(by_count > u + 5.0, "by count {by_count}, by time {u}");
}

#[test]
/// The same, over 24 hours of checks imported as samples (AUTH is off in
/// these tests, so the reserved `up` series may be written), to the decimal.
fn uptime_over_a_day_weighs_a_backed_off_outage_by_its_length() {
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

#[test]
fn detailed_read_the_minute_tier_for_30_days_and_returned_23_days_of_gaps() {
    let d = Daemon::start(&[]);
    let now = now_ms();
    // One sample an hour for 29 days.
    let samples: Vec<_> = (1..29 * 24)
        .map(|h| ("queue_depth", json!({}), now - h * HOUR, h as f64))
        .collect();
    push(&d, &samples);
    let r = d.get("/metrics/detailed?metric=queue_depth&time_range=30d&granularity=5m");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["granularity"], "5m");
    assert_eq!(r.body["granularity_used"], "1h");
    assert_eq!(r.body["step_seconds"], 3600);
    let s = &r.body["series"][0];
    assert_eq!(s["tier"], "1h");
    let filled = s["points"]
        .as_array()
        .expect("points")
        .iter()
        .filter(|p| !p["avg"].is_null())
        .count();
    assert!(filled >= 29 * 24 - 2, "{filled} points with data");
    // A granularity whose tier holds the range is kept.
    let r = d.get("/metrics/detailed?metric=queue_depth&time_range=7d&granularity=5m");
    assert_eq!(r.body["granularity_used"], "5m");
    assert_eq!(r.body["series"][0]["tier"], "1m");
}

/// Posts `count` requests for `service` as one pre-aggregated interval at
/// `t_ms`.
fn requests_at(d: &Daemon, service: &str, t_ms: i64, count: u64) {
    let r = d.post(
        "/ingest/requests",
        &json!({"service": service, "aggregate": {"timestamp": at(t_ms), "count": count, "errors": 0,
                 "latency_ms": [{"value": 20.0, "count": count}]}}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
}

#[test]
fn throughput_divided_by_the_whole_range_so_a_new_service_read_144_times_too_slow() {
    let d = Daemon::start(&[]);
    let now = now_ms();
    // 60 requests a minute for the last 10 minutes.
    for m in 1..=10 {
        requests_at(&d, "fresh", now - m * MIN, 60);
    }
    let s = d.get("/metrics/summary?time_range=24h");
    assert_eq!(s.status, 200, "{}", s.text);
    let tp = s.body["throughput_per_second"].as_f64().expect("a rate");
    assert!((0.9..=1.1).contains(&tp), "throughput {tp}, about 1/s");
    let tp = s.body["service_metrics"]["fresh"]["throughput_per_second"]
        .as_f64()
        .expect("a rate");
    assert!(
        (0.9..=1.1).contains(&tp),
        "service throughput {tp}, about 1/s"
    );
}

#[test]
fn requests_trend_read_down_for_flat_traffic_while_the_last_step_was_filling() {
    let d = Daemon::start(&[]);
    let now = now_ms();
    // The same traffic every minute for the last hour, and only a sliver of
    // the current minute.
    let minute_start = now - now.rem_euclid(MIN);
    for m in 1..=60 {
        requests_at(&d, "steady", minute_start - m * MIN + 30 * S, 600);
    }
    requests_at(&d, "steady", now, 1);
    let s = d.get("/metrics/summary?time_range=1h");
    assert_eq!(s.status, 200, "{}", s.text);
    assert_eq!(s.body["trends"]["requests_trend"], "stable", "{}", s.text);
    let basis = &s.body["trends_basis"];
    assert_eq!(basis["step_seconds"], 60);
    assert!(
        basis["requests_points"].as_u64().expect("points") >= 58,
        "{basis}"
    );
}

#[test]
fn a_probed_service_without_request_data_read_zero_requests_instead_of_null() {
    use common::servers::{Behavior, HttpTarget};
    let t = HttpTarget::start(Behavior::Json("{}"));
    let cfg = format!(
        "[[services]]\nname = \"probed-only\"\nkind = \"http\"\ntarget = \"{}\"\ninterval = 0.2\n",
        t.url()
    );
    let d = Daemon::start_with_config(&cfg, &[]);
    let s = wait_for(std::time::Duration::from_secs(10), || {
        let s = d.get("/metrics/summary?time_range=1h");
        (s.body["service_metrics"]["probed-only"]["uptime_percent"] == 100.0).then_some(s)
    });
    let m = &s.body["service_metrics"]["probed-only"];
    assert_eq!(m["requests"], Value::Null, "{}", s.text);
    assert_eq!(m["throughput_per_second"], Value::Null);
    assert_eq!(m["error_rate"], Value::Null);
    assert_eq!(s.body["throughput_per_second"], Value::Null);
    assert_eq!(
        s.body["total_requests"], 0,
        "a real count: none were recorded"
    );
    // With fewer than 3 points a trend is "stable" by default, and the basis
    // says so.
    assert_eq!(s.body["trends_basis"]["requests_points"], 0);
}

#[test]
fn chart_summary_max_was_the_largest_step_mean_so_a_spike_vanished() {
    let d = Daemon::start(&[]);
    let now = now_ms();
    // Thirty minutes of memory readings three hours ago, one of them a
    // spike no real machine here reaches.
    let base = now - 3 * HOUR;
    let samples: Vec<_> = (0..360)
        .map(|i| {
            let v = if i == 180 { 1e9 } else { 100.0 };
            ("memory_used_mb", json!({}), base + i * 5 * S, v)
        })
        .collect();
    push(&d, &samples);
    // Once the collector has stored its first reading.
    let c = wait_for(std::time::Duration::from_secs(10), || {
        let c = d.get("/charts/system-metrics?metric=memory&time_range=7d");
        assert_eq!(c.status, 200, "{}", c.text);
        c.body["summary"][0]["current"].is_f64().then_some(c)
    });
    let drawn = c.body["datasets"][0]["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(Value::as_f64)
        .fold(0.0, f64::max);
    assert!(drawn < 1e9, "a 34-minute step's mean: {drawn}");
    let summary = &c.body["summary"][0];
    assert_eq!(summary["max"], 1e9, "{summary}");
    // `current` is the newest sample (the collector's, a second old), not
    // the mean of the step still filling.
    let current = summary["current"].as_f64().expect("current");
    assert!(current > 0.0 && current < 1e9, "{current}");
}

#[test]
fn a_failed_probe_latency_was_reported_as_a_response_time() {
    use common::servers::{Behavior, HttpTarget, free_port};
    let ok = HttpTarget::start(Behavior::Json("{}"));
    let refused = free_port();
    let cfg = format!(
        "[[services]]\nname = \"ok\"\nkind = \"http\"\ntarget = \"{}\"\ninterval = 0.2\n\n\
         [[services]]\nname = \"gone\"\nkind = \"tcp\"\ntarget = \"127.0.0.1:{refused}\"\ninterval = 0.2\n",
        ok.url()
    );
    let d = Daemon::start_with_config(&cfg, &[]);
    let b = wait_for(std::time::Duration::from_secs(20), || {
        let b = d.get("/health/services").body;
        let all = b["services"].as_array()?;
        (all.len() == 2 && all.iter().all(|s| s["last_check"].is_string())).then_some(b)
    });
    for s in b["services"].as_array().expect("services") {
        match s["name"].as_str() {
            Some("ok") => {
                assert!(s["response_time_ms"].is_f64(), "{s}");
                assert_eq!(s["response_time_ms"], s["check_duration_ms"], "{s}");
            }
            Some("gone") => {
                assert_eq!(s["status"], "unhealthy", "{s}");
                assert_eq!(s["response_time_ms"], Value::Null, "{s}");
                assert!(s["check_duration_ms"].is_f64(), "{s}");
            }
            other => panic!("unexpected service {other:?}"),
        }
    }
    // The failure's duration is kept apart; response times hold answers only.
    let series = |metric: &str| {
        let r = d.get(&format!(
            "/metrics/detailed?metric={metric}&service=gone&time_range=1h&granularity=1m"
        ));
        assert_eq!(r.status, 200, "{}", r.text);
        r.body["series"].as_array().expect("series").len()
    };
    assert_eq!(series("response_time_ms"), 0);
    wait_for(std::time::Duration::from_secs(10), || {
        (series("failed_check_ms") == 1).then_some(())
    });
    // The average over checks leaves the failures out.
    let h = d.get("/health").body;
    let m = &h["metrics"];
    assert!(m["failed_checks"].as_u64().expect("failed") > 0, "{m}");
    let avg = m["average_response_time_ms"].as_f64().expect("an average");
    assert!(avg > 0.0, "{m}");
    // The chart lists a service that never answered, with an empty line.
    let c = d
        .get("/charts/service-health?time_range=1h&service=gone")
        .body;
    assert_eq!(c["total_services"], 1, "{c}");
    assert_eq!(c["uptime_percent"]["gone"], 0.0, "{c}");
}

#[test]
fn the_http_probe_built_a_new_client_per_check_and_timed_a_fresh_connection() {
    use common::servers::{Behavior, HttpTarget};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let requests = Arc::new(AtomicUsize::new(0));
    let t = HttpTarget::start(Behavior::KeepAlive(requests.clone()));
    let cfg = format!(
        "[[services]]\nname = \"kept\"\nkind = \"http\"\ntarget = \"{}\"\ninterval = 0.1\n",
        t.url()
    );
    let d = Daemon::start_with_config(&cfg, &[]);
    wait_for(std::time::Duration::from_secs(20), || {
        (requests.load(Ordering::Relaxed) >= 6).then_some(())
    });
    assert!(
        t.hits() <= 2,
        "{} connections for {} checks",
        t.hits(),
        requests.load(Ordering::Relaxed)
    );
    assert_eq!(
        d.get("/service-health").body["services"]["kept"]["status"],
        "healthy"
    );
}

#[test]
fn dashboard_last_updated_was_when_the_answer_was_built_not_when_data_was_measured() {
    let d = Daemon::start(&[("SYSTEM_METRICS_INTERVAL", "30")]);
    // The one reading at start, then nothing new for 30 s.
    let first = wait_for(std::time::Duration::from_secs(10), || {
        let b = d.get("/dashboard-data").body;
        b["system_metrics"]["measured_at"]
            .as_str()
            .map(str::to_string)
    });
    std::thread::sleep(std::time::Duration::from_millis(2_500));
    let b = d.get("/dashboard-data").body;
    let sys = &b["system_metrics"];
    assert_eq!(sys["measured_at"], first.as_str(), "{b}");
    assert_eq!(
        b["last_updated"],
        first.as_str(),
        "the newest data, not the build: {b}"
    );
    let parse = |v: &Value| {
        chrono::DateTime::parse_from_rfc3339(v.as_str().expect("a time")).expect("RFC 3339")
    };
    let age = parse(&b["built_at"]) - parse(&b["last_updated"]);
    assert!(age.num_milliseconds() >= 2_000, "{b}");
    // Within 3 intervals the values are live.
    assert_eq!(sys["stale"], false);
    assert!(sys["total_cpu_usage"].is_f64(), "{b}");
}

fn job_event(id: &str, status: &str, gpu: f64, reported: i64) -> Value {
    json!({"job_id": id, "model_name": "detector", "status": status, "progress": 40.0,
           "started_at": at(reported - HOUR), "timestamp": at(reported),
           "resource_usage": {"cpu_usage": 100.0, "memory_usage_mb": 1024.0, "gpu_usage": gpu}})
}

#[test]
fn a_training_job_that_stopped_reporting_stayed_running_forever() {
    let d = Daemon::start(&[
        ("PLATFORM_STALE_AFTER", "2"),
        ("ALERT_EVALUATION_INTERVAL", "0.2"),
    ]);
    let now = now_ms();
    for ev in [
        job_event("quiet", "running", 80.0, now),
        job_event("busy", "running", 60.0, now),
        // Finished 8 days ago: past the 7-day retention.
        job_event("old", "completed", 10.0, now - 8 * 24 * HOUR),
    ] {
        assert_eq!(d.post("/ingest/training", &ev).status, 200);
    }
    let models = [
        json!({"name": "stuck", "status": "loading", "progress": 30.0, "memory_usage_mb": 100.0}),
        json!({"name": "gone", "status": "unloaded", "progress": 0.0, "memory_usage_mb": 0.0,
               "timestamp": at(now - 8 * 24 * HOUR)}),
    ];
    for m in models {
        assert_eq!(d.post("/ingest/models", &m).status, 200);
    }
    // GPU utilisation is the mean over running jobs, never over 100.
    let t = d.get("/training-status").body;
    assert_eq!(t["resource_utilization"]["gpu_utilization"], 70.0, "{t}");
    // "busy" keeps reporting; "quiet" does not.
    let t = wait_for(std::time::Duration::from_secs(15), || {
        let ev = job_event("busy", "running", 60.0, now_ms());
        assert_eq!(d.post("/ingest/training", &ev).status, 200);
        std::thread::sleep(std::time::Duration::from_millis(300));
        let t = d.get("/training-status").body;
        (t["queue_status"]["failed_jobs"] == 1).then_some(t)
    });
    let jobs = t["jobs"].as_array().expect("jobs");
    assert!(jobs.iter().all(|j| j["job_id"] != "old"), "purged: {t}");
    let quiet = jobs.iter().find(|j| j["job_id"] == "quiet").expect("quiet");
    assert_eq!(quiet["status"], "failed");
    let why = quiet["error_message"].as_str().expect("a reason");
    assert!(why.starts_with("no report since "), "{why}");
    assert_eq!(t["queue_status"]["running_jobs"], 1, "{t}");
    assert_eq!(t["resource_utilization"]["total_cpu_usage"], 100.0, "{t}");
    assert_eq!(t["resource_utilization"]["gpu_utilization"], 60.0, "{t}");
    // The built-in alert fires for it (and not the failed-job one).
    let alerts = wait_for(std::time::Duration::from_secs(10), || {
        let a = d.get("/alerts?status=active").body;
        let list = a["alerts"].as_array()?.clone();
        list.iter()
            .any(|x| x["metadata"]["rule"] == "training_job_stale")
            .then_some(list)
    });
    let stale = alerts
        .iter()
        .find(|x| x["metadata"]["rule"] == "training_job_stale")
        .expect("the stale alert");
    assert_eq!(stale["service"], "training");
    assert!(
        stale["message"]
            .as_str()
            .expect("message")
            .contains("quiet (detector) stopped reporting"),
        "{stale}"
    );
    assert!(
        alerts
            .iter()
            .all(|x| x["metadata"]["rule"] != "training_job_failed"),
        "{alerts:?}"
    );
    // The model stuck loading failed; the long-unloaded one is purged.
    let m = wait_for(std::time::Duration::from_secs(10), || {
        let m = d.get("/model-loading-status").body;
        (m["failed_models"] == 1).then_some(m)
    });
    let names: Vec<&str> = m["models"]
        .as_array()
        .expect("models")
        .iter()
        .filter_map(|x| x["name"].as_str())
        .collect();
    assert_eq!(names, ["stuck"], "{m}");
    assert_eq!(m["models"][0]["status"], "failed");
    assert!(
        m["models"][0]["error_message"]
            .as_str()
            .expect("reason")
            .starts_with("no report since")
    );
    assert_eq!(m["total_memory_usage_mb"], 0.0);
}

#[test]
fn network_summed_every_interface_so_bridge_and_veth_traffic_counted_twice() {
    let names: Vec<String> = std::fs::read_dir("/sys/class/net")
        .expect("/sys/class/net")
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    let virt = |n: &str| {
        std::path::Path::new("/sys/devices/virtual/net")
            .join(n)
            .exists()
    };
    let mut want: Vec<String> = names.iter().filter(|n| !virt(n)).cloned().collect();
    if want.is_empty() {
        want = names.iter().filter(|n| *n != "lo").cloned().collect();
    }
    want.sort();
    let interfaces = |d: &Daemon| {
        wait_for(std::time::Duration::from_secs(10), || {
            let r = d.get("/system-metrics");
            (r.status == 200).then(|| r.body["network_interfaces"].clone())
        })
    };
    let d = Daemon::start(&[]);
    assert_eq!(interfaces(&d), json!(want), "physical interfaces only");
    drop(d);
    let d = Daemon::start(&[("NETWORK_INTERFACES_INCLUDE", "lo")]);
    assert_eq!(interfaces(&d), json!(["lo"]));
}

#[test]
fn model_placeholders_a_zero_loading_time_and_gpu_over_100_were_accepted() {
    let d = Daemon::start(&[]);
    let m = |name: &str, status: &str| json!({"name": name, "status": status, "progress": 50.0, "memory_usage_mb": 256.0});
    // Loading and loaded in one batch, neither with a time.
    let r = d.post(
        "/ingest/models",
        &json!([m("quick", "loading"), m("quick", "loaded")]),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    // A failure without a message, and a model still loading.
    assert_eq!(d.post("/ingest/models", &m("broken", "failed")).status, 200);
    assert_eq!(
        d.post("/ingest/models", &m("warming", "loading")).status,
        200
    );
    let s = d.get("/model-loading-status").body;
    let find = |name: &str| {
        s["models"]
            .as_array()
            .expect("models")
            .iter()
            .find(|x| x["name"] == name)
            .cloned()
            .expect("the model")
    };
    assert_eq!(find("quick")["loading_time_ms"], Value::Null, "{s}");
    assert_eq!(
        find("broken")["error_message"],
        Value::Null,
        "no placeholder: {s}"
    );
    // Memory held: loaded and loading, in the endpoint and its series alike.
    assert_eq!(s["total_memory_usage_mb"], 512.0);
    let r = d.get("/metrics/detailed?metric=models_memory_mb&time_range=1h&granularity=1m");
    let last = r.body["series"][0]["points"]
        .as_array()
        .expect("points")
        .iter()
        .rev()
        .find_map(|p| p["max"].as_f64());
    assert_eq!(last, Some(512.0), "{}", r.text);
    let job = json!({"job_id": "j", "model_name": "m", "status": "running", "progress": 1.0,
                     "started_at": at(now_ms() - MIN),
                     "resource_usage": {"cpu_usage": 1.0, "memory_usage_mb": 1.0, "gpu_usage": 150.0}});
    let r = d.post("/ingest/training", &job);
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.text.contains("gpu_usage"), "{}", r.text);
    // The daemon is healthy, and says so at the root too.
    assert_eq!(d.get("/").body["status"], "running");
}

#[test]
fn live_values_of_a_stalled_collector_looked_current() {
    // A series limit below what the collector needs: every tick fails to
    // store, so the collector stalls from its first tick on.
    let d = Daemon::start(&[("MAX_SERIES", "5")]);
    let b = wait_for(std::time::Duration::from_secs(15), || {
        let b = d.get("/dashboard-data").body;
        (b["system_metrics"]["stale"] == true).then_some(b)
    });
    let sys = &b["system_metrics"];
    assert_eq!(sys["total_cpu_usage"], Value::Null, "{b}");
    assert_eq!(sys["total_memory_usage_mb"], Value::Null, "{b}");
    assert!(sys["stale_reason"].is_string(), "{b}");
    // After 3 intervals without a successful tick the daemon says so at
    // /health (503) and at the root.
    let root = wait_for(std::time::Duration::from_secs(15), || {
        let r = d.get("/");
        (r.body["status"] == "degraded").then_some(r)
    });
    assert_eq!(root.status, 200);
    assert_eq!(d.get("/health").status, 503);
    // /system-metrics has no values to show either: no reading was ever
    // kept (a 503), or, had one been, it would be null and stale.
    let r = d.get("/system-metrics");
    if r.status == 200 {
        assert_eq!(r.body["stale"], true, "{}", r.text);
        assert_eq!(r.body["cpu_usage"], Value::Null, "{}", r.text);
    } else {
        assert_eq!(r.status, 503, "{}", r.text);
        assert!(
            r.body["error"]
                .as_str()
                .unwrap()
                .contains("no system sample")
        );
    }
}
