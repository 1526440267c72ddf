//! The first endpoints and the cross-cutting HTTP behaviour, over real HTTP
//! against the daemon on 127.0.0.1:0.

mod common;

use common::*;
use serde_json::{Value, json};
use std::time::Duration;

fn is_rfc3339(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok())
}

#[test]
fn root_response_has_every_field() {
    let d = Daemon::start(&[]);
    let r = d.get("/");
    assert_eq!(r.status, 200);
    let b = &r.body;
    assert_eq!(b["service"], "mlsec-monitor");
    assert_eq!(b["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(b["status"], "running");
    assert!(b["description"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(is_rfc3339(&b["timestamp"]), "{b}");
    let up = b["uptime_seconds"].as_f64().expect("uptime is a number");
    assert!((0.0..60.0).contains(&up), "{up}");
    assert!(r.headers["content-type"].starts_with("application/json"));
}

#[test]
fn health_reports_the_collector_and_null_for_unconfigured_dependencies() {
    let d = Daemon::start(&[]);
    // Wait for two collector ticks.
    let b = wait_for(Duration::from_secs(10), || {
        let r = d.get("/health");
        (r.body["collector"]["ticks"].as_u64() >= Some(2)).then_some(r.body)
    });
    assert_eq!(b["status"], "healthy");
    assert_eq!(b["service"], "mlsec-monitor");
    assert!(is_rfc3339(&b["timestamp"]));
    assert!(b["uptime_seconds"].as_f64().unwrap() >= 0.0);
    assert_eq!(b["dependencies"]["redis"], Value::Null);
    assert_eq!(b["dependencies"]["postgres"], Value::Null);
    assert_eq!(b["dependencies"]["data_collector"], true);
    // No service is configured: the check counters are real zeros.
    let m = &b["metrics"];
    for key in ["total_checks", "successful_checks", "failed_checks"] {
        assert_eq!(m[key].as_u64(), Some(0), "{key}: {m}");
    }
    // No check has answered: no average, not a made-up 0.
    assert_eq!(m["average_response_time_ms"], Value::Null);
    let c = &b["collector"];
    assert_eq!(c["failed_ticks"], 0);
    let avg = c["average_tick_ms"].as_f64().unwrap();
    assert!(avg > 0.0 && avg < 5_000.0, "{avg}");
    assert!(b["store"]["series"].as_u64().unwrap() >= 10, "{b}");
    assert!(b["store"]["size_on_disk_bytes"].as_u64().unwrap() > 0);
    assert_eq!(b["store"]["corrupt_blocks"], 0, "{b}");
    assert_eq!(b["store"]["corrupt_log_records"], 0, "{b}");
}

#[test]
fn system_metrics_come_from_the_latest_stored_sample() {
    let d = Daemon::start(&[]);
    let b = wait_for(Duration::from_secs(10), || {
        let r = d.get("/system-metrics");
        (r.status == 200).then_some(r.body)
    });
    let cpu = b["cpu_usage"].as_f64().expect("cpu_usage");
    assert!((0.0..=100.0).contains(&cpu), "{cpu}");
    let mem = b["memory_usage_mb"].as_f64().expect("memory_usage_mb");
    let total = b["memory_total_mb"].as_f64().expect("memory_total_mb");
    assert!(mem > 1.0 && mem < total, "{mem} of {total}");
    let disk = b["disk_usage_percent"]
        .as_f64()
        .expect("disk_usage_percent");
    assert!(disk > 0.0 && disk <= 100.0, "{disk}");
    assert!(b["network_io_mbps"].as_f64().expect("network_io_mbps") >= 0.0);
    let load = b["load_average"].as_array().expect("load_average");
    assert_eq!(load.len(), 3);
    assert!(load.iter().all(|l| l.as_f64().is_some_and(|x| x >= 0.0)));
    assert!(b["uptime_seconds"].as_u64().expect("uptime_seconds") > 0);
    let procs = b["processes"].as_u64().expect("processes");
    assert!(procs >= 2, "{procs}");
    assert!(b["threads"].as_u64().expect("threads") >= procs / 2);
    assert!(b["file_descriptors"].as_u64().expect("file_descriptors") > 0);
    assert!(is_rfc3339(&b["timestamp"]));
    // The same sample is in the store: the CPU series has a point for the last minute.
    let r = d.get("/metrics/detailed?metric=cpu_usage_percent&time_range=1h&granularity=1m");
    assert_eq!(r.status, 200);
    let series = r.body["series"].as_array().unwrap();
    assert_eq!(series.len(), 1);
    let filled = series[0]["points"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["count"].as_u64() > Some(0))
        .count();
    assert!(filled >= 1, "{}", r.text);
}

#[test]
fn errors_are_json_with_the_right_status() {
    let d = Daemon::start(&[]);
    let cases: Vec<(Reply, u16, &str)> = vec![
        (d.get("/nope"), 404, "no such endpoint"),
        (
            request(d.addr, "DELETE", "/health", &[]),
            405,
            "method not allowed",
        ),
        (
            request(d.addr, "DELETE", "/dashboard-data", &[]),
            405,
            "method not allowed",
        ),
        (
            request(d.addr, "DELETE", "/charts/system-metrics", &[]),
            405,
            "method not allowed",
        ),
        (
            request(d.addr, "POST", "/alerts", &[]),
            405,
            "method not allowed",
        ),
        (d.get("/alerts?status=bogus"), 400, "status 'bogus'"),
        (d.get("/charts/nope"), 404, "no such endpoint"),
        (
            post_raw(d.addr, "/ingest/metrics", "text/plain", b"{}"),
            415,
            "Content-Type",
        ),
        (
            post_raw(d.addr, "/ingest/metrics", "application/json", b"{not json"),
            400,
            "invalid JSON",
        ),
        (
            d.post("/ingest/metrics", &json!({"samples": 5})),
            400,
            "invalid type",
        ),
        (
            d.get("/metrics/detailed?time_range=2d"),
            400,
            "1h, 6h, 24h, 7d, 30d",
        ),
        (
            d.get("/metrics/detailed?granularity=10s"),
            400,
            "1m, 5m, 1h",
        ),
        (
            d.get("/metrics/detailed?bogus=1"),
            400,
            "unknown field `bogus`",
        ),
    ];
    let (status, body) = raw_http(
        d.addr,
        b"POST /ingest/metrics HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1100000\r\nconnection: close\r\n\r\n{",
    );
    assert_eq!(status, 413);
    assert!(body["error"].as_str().unwrap().contains("1 MiB"));
    for (r, status, needle) in cases {
        assert_eq!(r.status, status, "{}", r.text);
        let msg = r.body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no JSON error: {}", r.text));
        assert!(msg.contains(needle), "{msg:?} should mention {needle:?}");
    }
}

#[test]
fn cors_preflight_and_allowed_origins() {
    let d = Daemon::start(&[("CORS_ALLOWED_ORIGINS", "http://dash.example")]);
    let pre = request(
        d.addr,
        "OPTIONS",
        "/alerts",
        &[
            ("origin", "http://dash.example"),
            ("access-control-request-method", "GET"),
        ],
    );
    assert_eq!(pre.status, 200);
    assert_eq!(
        pre.headers["access-control-allow-origin"],
        "http://dash.example"
    );
    let ok = get_with(d.addr, "/", &[("origin", "http://dash.example")]);
    assert_eq!(
        ok.headers["access-control-allow-origin"],
        "http://dash.example"
    );
    let bad = get_with(d.addr, "/", &[("origin", "http://evil.example")]);
    assert_eq!(bad.status, 403);
    assert!(bad.body["error"].as_str().unwrap().contains("origin"));
    // Charts sit outside the compression layer, not outside CORS.
    let chart = "/charts/system-metrics?time_range=1h";
    let ok = get_with(d.addr, chart, &[("origin", "http://dash.example")]);
    assert_eq!(ok.status, 200);
    assert_eq!(
        ok.headers["access-control-allow-origin"],
        "http://dash.example"
    );
    let bad = get_with(d.addr, chart, &[("origin", "http://evil.example")]);
    assert_eq!(bad.status, 403);
    // Any origin by default.
    let d2 = Daemon::start(&[]);
    let any = get_with(d2.addr, "/", &[("origin", "http://x.example")]);
    assert_eq!(
        any.headers["access-control-allow-origin"],
        "http://x.example"
    );
}

#[test]
fn responses_are_gzipped_only_when_asked() {
    let d = Daemon::start(&[]);
    let gz = get_with(d.addr, "/", &[("accept-encoding", "gzip")]);
    assert_eq!(gz.status, 200);
    assert_eq!(
        gz.headers.get("content-encoding").map(String::as_str),
        Some("gzip")
    );
    let plain = d.get("/");
    assert_eq!(plain.headers.get("content-encoding"), None);
    assert_eq!(plain.body["service"], "mlsec-monitor");
    // The first request builds the snapshot itself (nothing rebuilds it
    // before anyone reads it), and it gzips itself (once per snapshot),
    // only when asked.
    let snapshot = d.get("/dashboard-data");
    assert_eq!(snapshot.status, 200, "{:?}", snapshot.body);
    assert!(snapshot.body["system_metrics"].is_object());
    assert_eq!(snapshot.headers.get("content-encoding"), None);
    for _ in 0..2 {
        let mut r = agent()
            .get(&format!("http://{}/dashboard-data", d.addr))
            .header("accept-encoding", "gzip")
            .call()
            .expect("GET");
        assert_eq!(r.headers()["content-encoding"], "gzip");
        let bytes = r.body_mut().read_to_vec().expect("body");
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut text)
            .expect("valid gzip");
        let v: Value = serde_json::from_str(&text).expect("JSON");
        assert!(v["system_metrics"].is_object(), "{v}");
    }
}

fn sample(metric: &str, service: &str, value: Value, ts: &str) -> Value {
    json!({"metric": metric, "labels": {"service": service}, "value": value, "timestamp": ts})
}

#[test]
fn ingest_round_trips_and_bad_batches_write_nothing() {
    let d = Daemon::start(&[]);
    let now = chrono::Utc::now();
    let t = |mins: i64| (now - chrono::Duration::minutes(mins)).to_rfc3339();
    let good = json!({"samples": [
        sample("requests_total", "model-api", json!(10.0), &t(30)),
        sample("requests_total", "model-api", json!(20.0), &t(30)),
        sample("requests_total", "model-api", json!(5.0), &t(10)),
    ]});
    let r = d.post("/ingest/metrics", &good);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["accepted"], 3);
    assert_eq!(r.body["series"], 1);

    let bad = json!({"samples": [
        sample("other_metric", "x", json!(1.0), &t(1)),
        sample("other_metric", "x", json!("high"), &t(1)),
        sample("9bad", "x", json!(1.0), &t(1)),
        sample("other_metric", "x", json!(1.0), &(now + chrono::Duration::hours(1)).to_rfc3339()),
    ]});
    let r = d.post("/ingest/metrics", &bad);
    assert_eq!(r.status, 400);
    let msg = r.body["error"].as_str().unwrap();
    for needle in [
        "samples[1]",
        "samples[2]",
        "samples[3]",
        "future",
        "nothing was written",
    ] {
        assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
    }
    let none = d.get("/metrics/detailed?metric=other_metric&time_range=1h");
    assert_eq!(
        none.body["series"].as_array().unwrap().len(),
        0,
        "nothing of a bad batch is written"
    );

    let r = d.get(
        "/metrics/detailed?metric=requests_total&service=model-api&time_range=6h&granularity=1h",
    );
    let s = &r.body["series"][0];
    assert_eq!(s["tier"], "1h");
    let pts: Vec<&Value> = s["points"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["count"] != 0)
        .collect();
    let count: u64 = pts.iter().map(|p| p["count"].as_u64().unwrap()).sum();
    assert_eq!(count, 3);
    let max = pts
        .iter()
        .map(|p| p["max"].as_f64().unwrap())
        .fold(f64::MIN, f64::max);
    assert_eq!(max, 20.0);
    // Empty slots are null, never 0.
    let r = d.get("/metrics/detailed?metric=requests_total&time_range=1h&granularity=1m");
    let pts = r.body["series"][0]["points"].as_array().unwrap().clone();
    assert_eq!(pts.len(), 60);
    let empty = pts.iter().find(|p| p["count"] == 0).unwrap();
    assert_eq!(empty["avg"], Value::Null);
    let at30 = pts
        .iter()
        .find(|p| p["count"] == 2)
        .expect("the minute with two samples");
    assert_eq!(at30["avg"], 15.0);
    // Unknown metric or service: empty, not an error.
    let r = d.get("/metrics/detailed?metric=nope&service=nobody");
    assert_eq!(
        (r.status, r.body["series"].as_array().unwrap().len()),
        (200, 0)
    );
}

#[test]
fn too_many_series_is_429() {
    let d = Daemon::start(&[("MAX_SERIES", "20")]);
    // The system collector registers its own series first.
    wait_for(Duration::from_secs(10), || {
        (d.get("/system-metrics").status == 200).then_some(())
    });
    let samples: Vec<Value> = (0..30)
        .map(|i| json!({"metric": "exploding", "labels": {"id": i.to_string()}, "value": 1.0}))
        .collect();
    let r = d.post("/ingest/metrics", &json!({ "samples": samples }));
    assert_eq!(r.status, 429, "{}", r.text);
    assert!(r.body["error"].as_str().unwrap().contains("series limit"));
    let none = d.get("/metrics/detailed?metric=exploding");
    assert_eq!(none.body["series"].as_array().unwrap().len(), 0);
}

#[test]
fn data_written_before_a_clean_restart_is_there_after_it() {
    let tmp = tempfile::tempdir().unwrap();
    let ts = (chrono::Utc::now() - chrono::Duration::minutes(20)).to_rfc3339();
    let d = Daemon::start_in(tmp.path(), &[]);
    let r = d.post(
        "/ingest/metrics",
        &json!({"samples": [sample("latency_ms", "gw", json!(42.5), &ts)]}),
    );
    assert_eq!(r.status, 200);
    d.stop().expect("clean stop");
    let d = Daemon::start_in(tmp.path(), &[]);
    let r = d.get("/metrics/detailed?metric=latency_ms&service=gw&time_range=1h&granularity=5m");
    let pts = r.body["series"][0]["points"]
        .as_array()
        .expect("series survived")
        .clone();
    let p = pts
        .iter()
        .find(|p| p["count"] == 1)
        .expect("the sample survived");
    assert_eq!(p["avg"], 42.5);
}
