//! The health check engine against real targets: local HTTP servers with
//! every failure mode, a real redis-server and a real PostgreSQL.

mod common;

use common::servers::{Behavior, HttpTarget, Postgres, Redis};
use common::*;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

fn service(name: &str, kind: &str, target: &str, extra: &str) -> String {
    format!("[[services]]\nname = \"{name}\"\nkind = \"{kind}\"\ntarget = \"{target}\"\n{extra}\n")
}

/// Waits until every listed service has been checked at least once.
fn wait_checked(d: &Daemon, names: &[&str]) -> Value {
    wait_for(Duration::from_secs(20), || {
        let b = d.get("/service-health").body;
        names
            .iter()
            .all(|n| b["services"][n]["last_check"].is_string())
            .then_some(b)
    })
}

#[test]
fn every_http_failure_mode_gets_its_status_and_message() {
    let healthy = HttpTarget::start(Behavior::Json(r#"{"status":"healthy"}"#));
    let slow = HttpTarget::start(Behavior::Slow(400));
    let err = HttpTarget::start(Behavior::Status(503));
    let hang = HttpTarget::start(Behavior::Hang);
    let reset = HttpTarget::start(Behavior::Reset);
    let garbage = HttpTarget::start(Behavior::Garbage);
    let dep_down = HttpTarget::start(Behavior::Json(
        r#"{"status":"ok","dependencies":{"db":true,"cache":false}}"#,
    ));
    let says_degraded = HttpTarget::start(Behavior::Json(r#"{"status":"degraded"}"#));
    let refused = common::servers::free_port();
    let cfg = [
        service("healthy", "http", &healthy.url(), "interval = 60"),
        service(
            "slow",
            "http",
            &slow.url(),
            "interval = 60\ndegraded_threshold_ms = 200",
        ),
        service("err", "http", &err.url(), "interval = 60"),
        service("hang", "http", &hang.url(), "interval = 60\ntimeout = 1"),
        service("reset", "http", &reset.url(), "interval = 60"),
        service("garbage", "http", &garbage.url(), "interval = 60"),
        service("depdown", "http", &dep_down.url(), "interval = 60"),
        service("degraded", "http", &says_degraded.url(), "interval = 60"),
        service(
            "refused",
            "http",
            &format!("http://127.0.0.1:{refused}/"),
            "interval = 60",
        ),
        service(
            "tcp-ok",
            "tcp",
            &format!("127.0.0.1:{}", healthy.port),
            "interval = 60",
        ),
        service(
            "tcp-refused",
            "tcp",
            &format!("127.0.0.1:{refused}"),
            "interval = 60",
        ),
        service(
            "teapot",
            "http",
            &err.url(),
            "interval = 60\nexpected_status = [503]",
        ),
    ]
    .concat();
    let d = Daemon::start_with_config(&cfg, &[]);
    let all = [
        "healthy",
        "slow",
        "err",
        "hang",
        "reset",
        "garbage",
        "depdown",
        "degraded",
        "refused",
        "tcp-ok",
        "tcp-refused",
        "teapot",
    ];
    let b = wait_checked(&d, &all);
    let s = &b["services"];
    let expect = [
        ("healthy", "healthy", None),
        ("slow", "degraded", Some("over the 200 ms threshold")),
        ("err", "unhealthy", Some("bad status 503")),
        ("hang", "unhealthy", Some("timed out after 1.0 s")),
        ("reset", "unhealthy", Some("connection reset")),
        ("garbage", "unhealthy", Some("not an HTTP answer")),
        ("depdown", "degraded", Some("dependency down: cache")),
        ("degraded", "degraded", Some("reports status 'degraded'")),
        ("refused", "unhealthy", Some("connection refused")),
        ("tcp-ok", "healthy", None),
        ("tcp-refused", "unhealthy", Some("connection refused")),
        ("teapot", "healthy", None),
    ];
    for (name, status, msg) in expect {
        assert_eq!(s[name]["status"], status, "{name}: {}", s[name]);
        match msg {
            None => assert!(
                s[name].get("error_message").is_none(),
                "{name}: {}",
                s[name]
            ),
            Some(m) => {
                let e = s[name]["error_message"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{name}: no message"));
                assert!(
                    !e.is_empty() && e.contains(m),
                    "{name}: {e:?} should contain {m:?}"
                );
            }
        }
    }
    assert_eq!(s["depdown"]["dependencies"]["cache"], false);
    assert_eq!(s["depdown"]["dependencies"]["db"], true);
    let slow_ms = s["slow"]["response_time_ms"].as_f64().unwrap();
    assert!(slow_ms >= 400.0, "{slow_ms}");
    assert_eq!(b["overall_status"], "unhealthy");
    assert_eq!(b["total_services"], 12);
    assert_eq!(b["healthy_services"], 3);
    // The same, as an array with names.
    let list = d.get("/health/services").body;
    let names: Vec<&str> = list["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 12);
    assert!(names.contains(&"hang"));
    // /health counts the checks; the daemon itself stays healthy.
    let h = d.get("/health").body;
    assert_eq!(h["status"], "healthy");
    assert!(h["metrics"]["total_checks"].as_u64().unwrap() >= 12);
    assert!(h["metrics"]["failed_checks"].as_u64().unwrap() >= 6);
    // Every check is in the store: `up` for the healthy service is 1, for the broken one 0.
    let up = d
        .get("/metrics/detailed?metric=up&service=err&time_range=1h&granularity=1m")
        .body;
    let pts = up["series"][0]["points"].as_array().unwrap().clone();
    assert!(pts.iter().any(|p| p["max"] == 0.0), "{up}");
    let rt = d
        .get("/metrics/detailed?metric=response_time_ms&service=slow&time_range=1h&granularity=1m")
        .body;
    let pts = rt["series"][0]["points"].as_array().unwrap().clone();
    assert!(pts.iter().any(|p| p["max"].as_f64() >= Some(400.0)), "{rt}");
}

#[test]
fn fifty_hanging_targets_do_not_delay_fifty_healthy_ones() {
    let hanging: Vec<HttpTarget> = (0..50).map(|_| HttpTarget::start(Behavior::Hang)).collect();
    let healthy: Vec<HttpTarget> = (0..50)
        .map(|_| HttpTarget::start(Behavior::Json("{}")))
        .collect();
    let mut cfg = String::new();
    for (i, t) in hanging.iter().enumerate() {
        cfg += &service(
            &format!("hang{i}"),
            "http",
            &t.url(),
            "interval = 1\ntimeout = 3",
        );
    }
    for (i, t) in healthy.iter().enumerate() {
        cfg += &service(
            &format!("ok{i}"),
            "http",
            &t.url(),
            "interval = 0.5\ntimeout = 3",
        );
    }
    let d = Daemon::start_with_config(&cfg, &[]);
    let start: Vec<usize> = healthy.iter().map(HttpTarget::hits).collect();
    std::thread::sleep(Duration::from_secs(4));
    for (i, t) in healthy.iter().enumerate() {
        let n = t.hits() - start[i];
        // 4 s at a 0.5 s interval is 8 checks; the hanging targets time out after 3 s.
        assert!(n >= 5, "healthy target {i} was checked {n} times in 4 s");
    }
    let b = d.get("/service-health").body;
    assert_eq!(b["services"]["ok7"]["status"], "healthy");
    assert_eq!(b["services"]["hang7"]["status"], "unhealthy");
}

#[test]
fn failing_targets_back_off_and_recover_on_the_first_success() {
    let status = Arc::new(AtomicU16::new(500));
    let t = HttpTarget::start(Behavior::Switch(status.clone()));
    let d = Daemon::start_with_config(&service("flaky", "http", &t.url(), "interval = 0.1"), &[]);
    std::thread::sleep(Duration::from_secs(3));
    // Without back-off 3 s at 0.1 s would be 30 checks; with it: 5 failures,
    // then waits of 0.2, 0.4, 0.8, 1.6 s.
    let failing_hits = t.hits();
    assert!(
        (6..=12).contains(&failing_hits),
        "{failing_hits} checks while failing"
    );
    let b = d.get("/service-health").body;
    assert_eq!(b["services"]["flaky"]["status"], "unhealthy");
    assert!(
        b["services"]["flaky"]["consecutive_failures"]
            .as_u64()
            .unwrap()
            >= 5
    );
    status.store(200, Ordering::Relaxed);
    let recovered = Instant::now();
    wait_for(Duration::from_secs(5), || {
        (d.get("/service-health").body["services"]["flaky"]["status"] == "healthy").then_some(())
    });
    assert!(
        recovered.elapsed() < Duration::from_secs(4),
        "recovered within one back-off step"
    );
    // Back to the normal 0.1 s interval.
    let h0 = t.hits();
    std::thread::sleep(Duration::from_secs(1));
    let n = t.hits() - h0;
    assert!(n >= 5, "{n} checks in 1 s after recovery");
}

#[test]
fn redis_ping_with_password_and_a_wrong_password() {
    let redis = Redis::start(Some("s3cret"));
    let cfg = service(
        "cache-bad",
        "redis",
        &redis.url(Some("wrong")),
        "interval = 60",
    );
    let d = Daemon::start_with_config(&cfg, &[("REDIS_URL", &redis.url(Some("s3cret")))]);
    let b = wait_checked(&d, &["redis", "cache-bad"]);
    assert_eq!(b["services"]["redis"]["status"], "healthy", "{b}");
    assert_eq!(b["services"]["cache-bad"]["status"], "unhealthy");
    let e = b["services"]["cache-bad"]["error_message"]
        .as_str()
        .unwrap();
    assert!(e.contains("authentication failed"), "{e}");
    let h = d.get("/health").body;
    assert_eq!(h["dependencies"]["redis"], true);
    assert_eq!(h["dependencies"]["postgres"], Value::Null);
    let deps = d.get("/health/dependencies").body;
    assert_eq!(deps["dependencies"]["redis"]["status"], "healthy");
    assert_eq!(deps["total_dependencies"], 1);
    assert_eq!(deps["overall_status"], "healthy");
    drop(redis);
}

#[test]
fn postgres_select_1_a_wrong_password_and_the_check_command() {
    let pg = Postgres::start("pgpass");
    let good = pg.url("pgpass");
    let bad = pg.url("nope");
    let d = Daemon::start(&[("DATABASE_URL", &good), ("HEALTH_CHECK_INTERVAL", "0.3")]);
    let b = wait_checked(&d, &["postgres"]);
    assert_eq!(b["services"]["postgres"]["status"], "healthy", "{b}");
    assert_eq!(b["overall_status"], "healthy");
    assert_eq!(d.get("/health").body["dependencies"]["postgres"], true);

    // `check`: exit 0 when all answer, 1 with the wrong password, and the reason printed.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(&file, service("db-bad", "postgres", &bad, "")).unwrap();
    let ok = binary()
        .args(["check"])
        .env("DATABASE_URL", &good)
        .env_remove("CONFIG_FILE")
        .output()
        .unwrap();
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    let out = binary()
        .args(["--config", file.to_str().unwrap(), "check"])
        .env("DATABASE_URL", &good)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("db-bad"))
        .expect("a line for db-bad");
    assert!(
        line.contains("unhealthy") && line.contains("authentication failed"),
        "{line}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("postgres") && l.contains("healthy")),
        "{text}"
    );

    // A down optional dependency degrades the whole; the daemon stays healthy.
    drop(pg);
    let b = wait_for(Duration::from_secs(10), || {
        let b = d.get("/service-health").body;
        (b["services"]["postgres"]["status"] == "unhealthy").then_some(b)
    });
    assert_eq!(b["overall_status"], "degraded");
    let h = d.get("/health").body;
    assert_eq!(h["dependencies"]["postgres"], false);
    assert_eq!(h["status"], "healthy");
    let deps = d.get("/health/dependencies").body;
    assert_eq!(deps["overall_status"], "unhealthy");
    assert_eq!(deps["healthy_dependencies"], 0);
    assert!(deps["dependencies"]["postgres"]["error_message"].is_string());
}

fn is_ts(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok())
}

#[test]
fn response_models_carry_every_field_of_the_spec() {
    let api = HttpTarget::start(Behavior::Json(r#"{"status":"healthy"}"#));
    let cfg = [
        service("api-gateway", "http", &api.url(), "interval = 0.5"),
        service(
            "model-api",
            "http",
            &api.url(),
            "interval = 0.5\ndepends_on = [\"api-gateway\"]",
        ),
    ]
    .concat();
    let d = Daemon::start_with_config(&cfg, &[]);
    let sh = wait_checked(&d, &["api-gateway", "model-api"]);
    // ServiceHealth
    for key in [
        "services",
        "overall_status",
        "healthy_services",
        "total_services",
        "last_updated",
    ] {
        assert!(sh.get(key).is_some(), "ServiceHealth.{key} missing: {sh}");
    }
    let m = &sh["services"]["model-api"];
    assert_eq!(m["status"], "healthy");
    assert!(m["response_time_ms"].as_f64().unwrap() > 0.0);
    assert!(is_ts(&m["last_check"]));
    assert_eq!(m["dependencies"]["api-gateway"], true);
    assert_eq!(sh["overall_status"], "healthy");
    assert_eq!(
        (
            sh["healthy_services"].as_u64(),
            sh["total_services"].as_u64()
        ),
        (Some(2), Some(2))
    );
    assert!(is_ts(&sh["last_updated"]));
    // /health/services: an array of the same objects, with names
    let list = d.get("/health/services").body;
    let arr = list["services"].as_array().unwrap();
    assert_eq!(arr.len(), 2);
    for s in arr {
        assert!(
            s["name"].is_string() && s["status"].is_string() && s["dependencies"].is_object(),
            "{s}"
        );
    }
    // DependenciesHealth: the declared dependency
    let deps = d.get("/health/dependencies").body;
    assert_eq!(deps["dependencies"]["api-gateway"]["status"], "healthy");
    assert!(
        deps["dependencies"]["api-gateway"]["response_time_ms"]
            .as_f64()
            .is_some()
    );
    assert!(is_ts(&deps["dependencies"]["api-gateway"]["last_check"]));
    assert_eq!(
        (
            deps["healthy_dependencies"].as_u64(),
            deps["total_dependencies"].as_u64()
        ),
        (Some(1), Some(1))
    );
    // DashboardData
    let dd = wait_for(Duration::from_secs(10), || {
        let r = d.get("/dashboard-data");
        (r.status == 200 && r.body["services"]["model-api"]["last_updated"].is_string())
            .then_some(r.body)
    });
    let svc = &dd["services"]["model-api"];
    assert_eq!(svc["status"], "healthy");
    assert!(svc["response_time_ms"].as_f64().is_some());
    // No process matcher and nothing pushed: unknown, so null (not 0).
    assert_eq!(svc["cpu_usage"], Value::Null);
    assert_eq!(svc["memory_usage_mb"], Value::Null);
    let sm = wait_for(Duration::from_secs(10), || {
        let b = d.get("/dashboard-data").body;
        b["system_metrics"]["total_cpu_usage"]
            .is_number()
            .then_some(b["system_metrics"].clone())
    });
    for key in [
        "total_cpu_usage",
        "total_memory_usage_mb",
        "disk_usage_percent",
        "network_io_mbps",
    ] {
        assert!(sm[key].is_number(), "system_metrics.{key}: {sm}");
    }
    assert_eq!(sm["load_average"].as_array().unwrap().len(), 3);
    // Alert counts are the open alerts' (which built-in rules fire depends on the machine).
    let open = d.get("/alerts?limit=1000").body;
    for key in ["critical", "warning", "info"] {
        assert_eq!(dd["alerts"][key], open[format!("{key}_count")], "{key}");
    }
    assert_eq!(dd["alerts"]["active"], open["active_count"]);
    for key in ["cpu_trend", "memory_trend", "response_time_trend"] {
        let t = dd["trends"][key].as_str().unwrap();
        assert!(["up", "down", "stable"].contains(&t), "{key}: {t}");
    }
    assert!(is_ts(&dd["last_updated"]));
}

#[test]
fn process_matcher_gives_cpu_and_memory() {
    let api = HttpTarget::start(Behavior::Json("{}"));
    // The test binary itself is the matched process, by pid file.
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("svc.pid");
    std::fs::write(&pid_file, std::process::id().to_string()).unwrap();
    let cfg = service(
        "self",
        "http",
        &api.url(),
        &format!(
            "interval = 0.5\nprocess = {{ pid_file = \"{}\" }}",
            pid_file.display()
        ),
    );
    let d = Daemon::start_with_config(&cfg, &[]);
    let s = wait_for(Duration::from_secs(15), || {
        let b = d.get("/service-health").body;
        let s = b["services"]["self"].clone();
        (s["cpu_usage"].is_number() && s["memory_usage_mb"].is_number()).then_some(s)
    });
    let mem = s["memory_usage_mb"].as_f64().unwrap();
    assert!(mem > 1.0 && mem < 4096.0, "{mem}");
    assert!(s["cpu_usage"].as_f64().unwrap() >= 0.0);
}
