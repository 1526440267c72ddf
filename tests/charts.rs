//! Chart endpoints against the store after known writes: values and gaps,
//! point counts, stable colours, and the 400 cases.

mod common;

use common::servers::{Behavior, HttpTarget};
use common::*;
use serde_json::{Value, json};
use std::time::Duration;

#[test]
fn system_chart_values_gaps_and_point_counts() {
    let d = Daemon::start(&[]);
    // On a whole minute, so both samples (a second apart) fall in one step
    // of the chart (12 s here) whatever the time the test runs.
    let minute = (chrono::Utc::now() - chrono::Duration::minutes(40)).timestamp() / 60 * 60;
    let t = chrono::DateTime::from_timestamp(minute, 0).unwrap();
    let at = |s: i64| (t + chrono::Duration::seconds(s)).to_rfc3339();
    let r = d.post(
        "/ingest/metrics",
        &json!({"samples": [
            {"metric": "network_rx_mbps", "value": 10.0, "timestamp": at(0)},
            {"metric": "network_rx_mbps", "value": 20.0, "timestamp": at(1)},
        ]}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let c = d
        .get("/charts/system-metrics?metric=network&time_range=1h")
        .body;
    assert_eq!(c["time_range"], "1h");
    let labels = c["labels"].as_array().unwrap();
    let rx = c["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["label"] == "Received Mbps")
        .unwrap()
        .clone();
    let data = rx["data"].as_array().unwrap();
    assert_eq!(data.len(), labels.len());
    assert!(
        labels.len() <= 300 && labels.len() >= 200,
        "{}",
        labels.len()
    );
    // Everything older than 30 minutes is ours: one point of avg 15, the rest gaps.
    let cutoff = chrono::Utc::now() - chrono::Duration::minutes(30);
    let old: Vec<&Value> = labels
        .iter()
        .zip(data)
        .filter(|(l, _)| {
            chrono::DateTime::parse_from_rfc3339(l.as_str().unwrap()).unwrap() < cutoff
        })
        .map(|(_, v)| v)
        .collect();
    assert_eq!(old.iter().filter(|v| !v.is_null()).count(), 1, "{old:?}");
    assert!(old.iter().any(|v| v.as_f64() == Some(15.0)));
    assert!(
        old.iter().filter(|v| v.is_null()).count() > 100,
        "gaps are null, not 0"
    );
    assert!(rx["borderColor"].as_str().unwrap().starts_with('#'));
    assert!(rx["backgroundColor"].as_str().unwrap().starts_with('#'));
    // Colours are stable across calls; every range stays at or under ~300 points.
    let again = d
        .get("/charts/system-metrics?metric=network&time_range=1h")
        .body;
    assert_eq!(
        again["datasets"][0]["borderColor"],
        c["datasets"][0]["borderColor"]
    );
    for range in ["1h", "6h", "24h", "7d", "30d"] {
        let c = d
            .get(&format!("/charts/system-metrics?time_range={range}"))
            .body;
        let n = c["labels"].as_array().unwrap().len();
        assert!((100..=300).contains(&n), "{range}: {n} points");
        assert_eq!(c["datasets"].as_array().unwrap().len(), 3);
        assert!(c["summary"].is_array());
    }
}

#[test]
fn platform_service_and_alert_charts() {
    let api = HttpTarget::start(Behavior::Json("{}"));
    let cfg = format!(
        "[[services]]\nname = \"model-api\"\nkind = \"http\"\ntarget = \"{}\"\ninterval = 0.2\n\n\
         [[rules]]\nname = \"queue_high\"\nmetric = \"queue_depth\"\naggregation = \"last\"\nwindow = 60\nthreshold = 10\nseverity = \"warning\"\n",
        api.url()
    );
    let d = Daemon::start_with_config(&cfg, &[("ALERT_EVALUATION_INTERVAL", "0.2")]);
    for (status, progress) in [("loading", 50.0), ("loaded", 100.0)] {
        let r = d.post("/ingest/models", &json!({"name": "fraud", "status": status, "progress": progress, "memory_usage_mb": 1.0}));
        assert_eq!(r.status, 200);
    }
    let r = d.post(
        "/ingest/training",
        &json!({"job_id": "j1", "model_name": "fraud", "status": "running", "progress": 42.0,
                "started_at": chrono::Utc::now().to_rfc3339(), "resource_usage": {"cpu_usage": 1.0, "memory_usage_mb": 1.0}}),
    );
    assert_eq!(r.status, 200);
    let m = d.get("/charts/model-loading?time_range=1h").body;
    assert_eq!(m["total_models"], 1);
    assert!(["up", "down", "stable"].contains(&m["loading_trend"].as_str().unwrap()));
    let loaded = m["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["label"] == "loaded")
        .unwrap()
        .clone();
    assert_eq!(
        loaded["data"]
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .flatten_last(),
        Some(1.0)
    );
    let t = d
        .get("/charts/training-progress?time_range=1h&model_name=fraud")
        .body;
    assert_eq!(t["datasets"][0]["label"], "j1 (fraud)");
    assert_eq!(
        t["datasets"][0]["data"]
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .flatten_last(),
        Some(42.0)
    );
    assert_eq!(
        (t["total_jobs"].as_u64(), t["running_jobs"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(
        d.get("/charts/training-progress?model_name=other").body["datasets"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let s = wait_for(Duration::from_secs(10), || {
        let s = d.get("/charts/service-health?time_range=1h").body;
        (s["datasets"][0]["data"]
            .as_array()
            .is_some_and(|a| a.iter().any(|v| v.is_number())))
        .then_some(s)
    });
    assert_eq!(s["datasets"][0]["label"], "model-api");
    assert_eq!(s["uptime_percent"]["model-api"], 100.0);
    // An alert shows up in the timeline (asked before too, so a cached
    // answer must give way).
    let before = d.get("/charts/alerts-timeline?severity=warning").body;
    assert_eq!(before["total_alerts"], 0, "{before}");
    let r = d.post(
        "/ingest/metrics",
        &json!({"samples": [{"metric": "queue_depth", "value": 99.0}]}),
    );
    assert_eq!(r.status, 200);
    let a = wait_for(Duration::from_secs(10), || {
        let a = d.get("/charts/alerts-timeline?severity=warning").body;
        (a["total_alerts"].as_u64() >= Some(1)).then_some(a)
    });
    assert_eq!(a["time_range"], "7d");
    let sum: f64 = a["datasets"][0]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .sum();
    assert!(sum >= 1.0);
}

trait FlattenLast {
    fn flatten_last(self) -> Option<f64>;
}

impl<'a, I: Iterator<Item = &'a Value>> FlattenLast for I {
    /// The first number (the newest, on a reversed series).
    fn flatten_last(mut self) -> Option<f64> {
        self.find_map(Value::as_f64)
    }
}

#[test]
fn chart_errors_are_400_listing_what_is_accepted() {
    let d = Daemon::start(&[]);
    for (path, needle) in [
        ("/charts/model-loading?format=png", "JSON only"),
        ("/charts/system-metrics?format=svg", "JSON only"),
        ("/charts/system-metrics?format=csv", "not one of json"),
        (
            "/charts/system-metrics?metric=gpu",
            "cpu, memory, disk, network",
        ),
        (
            "/charts/service-health?time_range=2d",
            "1h, 6h, 24h, 7d, 30d",
        ),
        (
            "/charts/alerts-timeline?severity=urgent",
            "critical, warning, info",
        ),
        ("/charts/model-loading?service=x", "takes no 'service'"),
        ("/charts/model-loading?colour=red", "unknown field `colour`"),
    ] {
        let r = d.get(path);
        assert_eq!(r.status, 400, "{path}");
        assert!(
            r.body["error"].as_str().unwrap().contains(needle),
            "{path}: {}",
            r.text
        );
    }
}

#[test]
fn the_dashboard_is_served_from_the_binary_and_fetches_nothing_outside() {
    let d = Daemon::start(&[]);
    let page = d.get("/ui");
    assert_eq!(page.status, 200);
    assert!(page.headers["content-type"].starts_with("text/html"));
    for needle in [
        "/ui/app.js",
        "/ui/style.css",
        "id=\"services\"",
        "id=\"alerts\"",
        "id=\"chart\"",
    ] {
        assert!(page.text.contains(needle), "{needle}");
    }
    let js = d.get("/ui/app.js");
    assert!(js.headers["content-type"].starts_with("text/javascript"));
    for needle in [
        "/ws/metrics",
        "/charts/system-metrics",
        "/alerts/acknowledge",
        "/alerts/resolve",
        "/service-health",
        "/silences",
        "/audit?",
    ] {
        assert!(js.text.contains(needle), "{needle}");
    }
    let css = d.get("/ui/style.css");
    assert!(css.headers["content-type"].starts_with("text/css"));
    // Offline appliance: no absolute URL to another host anywhere.
    for text in [&page.text, &js.text, &css.text] {
        assert!(
            !text.contains("http://") && !text.contains("https://") && !text.contains("//cdn"),
            "external URL"
        );
    }
    assert_eq!(d.get("/ui/missing.js").status, 404);
}

/// The dashboard's Chart.js and time adapter are the npm releases that
/// assets/vendor/package-lock.json pins (scripts/test.sh runs `npm ci`
/// there), byte for byte, as the daemon serves them.
#[test]
fn the_chart_library_served_is_the_pinned_npm_release() {
    let vendor = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/vendor");
    let lock: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{vendor}/package-lock.json")).unwrap(),
    )
    .unwrap();
    let d = Daemon::start(&[]);
    for (served, package, file) in [
        ("/ui/chart.js", "chart.js", "dist/chart.umd.min.js"),
        (
            "/ui/chart-adapter.js",
            "chartjs-adapter-date-fns",
            "dist/chartjs-adapter-date-fns.bundle.min.js",
        ),
    ] {
        let dir = format!("{vendor}/node_modules/{package}");
        let installed: Value = serde_json::from_str(
            &std::fs::read_to_string(format!("{dir}/package.json"))
                .unwrap_or_else(|e| panic!("{dir}: {e} (scripts/test.sh installs it with npm ci)")),
        )
        .unwrap();
        assert_eq!(
            installed["version"],
            lock["packages"][format!("node_modules/{package}")]["version"],
            "{package}"
        );
        let release = std::fs::read_to_string(format!("{dir}/{file}")).unwrap();
        let r = d.get(served);
        assert_eq!(r.status, 200);
        assert!(r.headers["content-type"].starts_with("text/javascript"));
        assert!(r.text == release, "{served} is not {package}'s {file}");
    }
}

/// Charts are cached until the data behind them changes: every write shows
/// at once, and a new series joins the chart at once.
#[test]
fn a_repeated_chart_follows_every_new_write() {
    let d = Daemon::start(&[]);
    let at = chrono::Utc::now() - chrono::Duration::minutes(20);
    let url = "/charts/system-metrics?metric=network&time_range=1h";
    // The value of `label`'s dataset at the point holding `at`.
    let point = |label: &str| -> Value {
        let c = d.get(url).body;
        let labels = c["labels"].as_array().unwrap();
        let i = labels
            .iter()
            .rposition(|l| chrono::DateTime::parse_from_rfc3339(l.as_str().unwrap()).unwrap() <= at)
            .unwrap();
        c["datasets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["label"] == label)
            .unwrap()["data"][i]
            .clone()
    };
    assert_eq!(point("Transmitted Mbps"), Value::Null);
    // At a 1-hour range the chart reads the raw tier, where a sample at the
    // same time replaces the one before.
    for value in [4.0, 8.0, 12.0] {
        let r = d.post(
            "/ingest/metrics",
            &json!({"samples": [{"metric": "network_tx_mbps", "value": value, "timestamp": at.to_rfc3339()}]}),
        );
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(point("Transmitted Mbps"), json!(value));
        assert_eq!(point("Transmitted Mbps"), json!(value), "asked twice");
    }

    let jobs = |d: &Daemon| {
        d.get("/charts/training-progress?model_name=m1").body["datasets"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(jobs(&d), 0);
    for (n, job) in ["j1", "j2"].iter().enumerate() {
        let r = d.post(
            "/ingest/training",
            &json!({"job_id": job, "model_name": "m1", "status": "running", "progress": 10.0,
                    "started_at": chrono::Utc::now().to_rfc3339(), "resource_usage": {"cpu_usage": 1.0, "memory_usage_mb": 1.0}}),
        );
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(jobs(&d), n + 1);
    }
}

/// Charts are gzipped (from their cache) when asked, and only then.
#[test]
fn charts_are_gzipped_when_asked() {
    use std::io::Read;
    let d = Daemon::start(&[]);
    let r = d.post(
        "/ingest/metrics",
        &json!({"samples": [{"metric": "cpu_usage_percent", "value": 12.5,
                "timestamp": (chrono::Utc::now() - chrono::Duration::minutes(5)).to_rfc3339()}]}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let url = format!("http://{}/charts/system-metrics?time_range=1h", d.addr);
    // Twice each way: computed, then from the cache (gzip made on a hit too).
    for gzip_first in [true, false] {
        for want_gzip in [gzip_first, !gzip_first, gzip_first] {
            let mut req = agent().get(&url);
            if want_gzip {
                req = req.header("accept-encoding", "gzip");
            }
            let mut resp = req.call().expect("GET");
            let encoding = resp
                .headers()
                .get("content-encoding")
                .map(|v| v.to_str().unwrap().to_string());
            assert_eq!(resp.headers()["vary"], "accept-encoding");
            assert_eq!(resp.headers()["content-type"], "application/json");
            let bytes = resp.body_mut().read_to_vec().expect("body");
            let text = if want_gzip {
                assert_eq!(encoding.as_deref(), Some("gzip"));
                let mut s = String::new();
                flate2::read::GzDecoder::new(&bytes[..])
                    .read_to_string(&mut s)
                    .expect("valid gzip");
                s
            } else {
                assert_eq!(encoding, None);
                String::from_utf8(bytes).expect("utf-8")
            };
            let c: Value = serde_json::from_str(&text).expect("JSON");
            let cpu = &c["summary"][0];
            assert_eq!(cpu["label"], "CPU %");
            assert!(cpu["max"].as_f64().unwrap() >= 12.5, "{cpu}");
        }
        // A write between rounds, so the second round computes afresh.
        let r = d.post(
            "/ingest/metrics",
            &json!({"samples": [{"metric": "disk_usage_percent", "value": 50.0}]}),
        );
        assert_eq!(r.status, 200, "{}", r.text);
    }
}
