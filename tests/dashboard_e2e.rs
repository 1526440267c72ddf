//! The dashboard end to end in real headless Chromium (Debian's `chromium`,
//! driven by playwright-core from npm; both installed by scripts/test.sh),
//! with access control on: a bad token is refused on the sign-in form, a
//! viewer sees alerts without controls, sign-out returns to the form, and
//! as an operator the page loads without console errors and live values
//! arrive; every chart is drawn by Chart.js with a time axis and exactly the
//! points its endpoint answers, gaps drawn as gaps, for two ranges; an
//! alert acknowledged with a comment on its page shows it in its history
//! (checked through the API too), a silence made from it shows it silenced,
//! the silences and audit pages list them; no request leaves the origin and
//! the first load stays under 300 KB. Screenshots are saved to
//! target/dashboard*.png for people to look at (also at a phone's and a
//! wall screen's width, checked for one and three columns).

mod common;

use common::servers::{Behavior, HttpTarget};
use common::*;
use serde_json::{Value, json};
use std::process::Command;

#[test]
fn the_dashboard_in_headless_chromium() {
    let e2e = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e");
    assert!(
        std::path::Path::new(e2e)
            .join("node_modules/playwright-core")
            .is_dir(),
        "playwright-core is not installed: run scripts/test.sh, which installs it"
    );
    let api = HttpTarget::start(Behavior::Json(r#"{"status":"healthy"}"#));
    // Where the alerts' notifications go: their delivery is in each history.
    let hook = HttpTarget::start(Behavior::Json("{}"));
    let cfg = format!(
        "[[services]]\nname = \"model-api\"\nkind = \"http\"\ntarget = \"{}\"\ninterval = 1\n\n\
         [[rules]]\nname = \"queue_high\"\nmetric = \"queue_depth\"\naggregation = \"last\"\nwindow = 600\nthreshold = 10\nseverity = \"critical\"\nclear_after = 600\n\n\
         [[channels]]\nname = \"pager\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{}/hook\"\n",
        api.url(),
        hook.port
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg_file = tmp.path().join("config.toml");
    std::fs::write(&cfg_file, &cfg).expect("config");
    let cfg_file = cfg_file.display().to_string();
    let env = [
        ("CONFIG_FILE", cfg_file.as_str()),
        ("DASHBOARD_REFRESH_INTERVAL", "0.5"),
        ("ALERT_EVALUATION_INTERVAL", "0.2"),
        ("AUTH", "on"),
    ];
    let data = tmp.path().join("data");
    // A first run writes 15 minutes of calm CPU history (an admin may write
    // the collector's series), so that the anomaly watch, replaying it at
    // the next start, is warm; a spike after that start is an anomaly the
    // system charts mark.
    {
        let d = Daemon::start_in(&data, &env);
        let admin = admin_token(&d);
        let now = chrono::Utc::now();
        let history: Vec<Value> = (0..900)
            .map(|i| {
                json!({"metric": "cpu_usage_percent", "value": 20.0 + (i % 7) as f64 * 0.3,
                       "timestamp": (now - chrono::Duration::seconds(900 - i)).to_rfc3339()})
            })
            .collect();
        let r = with_token(
            d.addr,
            &admin,
            "POST",
            "/ingest/metrics",
            Some(&json!({"samples": history})),
        );
        assert_eq!(r.status, 200, "{}", r.text);
        d.stop().expect("stop");
    }
    let d = Daemon::start_in(&data, &env);
    let admin = admin_token(&d);
    let spike = json!({"samples": [{"metric": "cpu_usage_percent", "value": 900.0}]});
    wait_for(std::time::Duration::from_secs(20), || {
        let r = with_token(d.addr, &admin, "POST", "/ingest/metrics", Some(&spike));
        assert_eq!(r.status, 200, "{}", r.text);
        std::thread::sleep(std::time::Duration::from_millis(1500));
        let a = with_token(
            d.addr,
            &admin,
            "GET",
            "/anomalies?metric=cpu_usage_percent",
            None,
        );
        (a.body["total"].as_u64() > Some(0)).then_some(())
    });
    let viewer = create(&d, &admin, "wall-screen", "viewer", None);
    let operator = create(&d, &admin, "oncall", "operator", None);
    let post = |path: &str, body: &Value| with_token(d.addr, &admin, "POST", path, Some(body));
    let get = |path: &str| with_token(d.addr, &admin, "GET", path, None);
    // Simulated platform data: a model, a training job, and a firing alert.
    assert_eq!(post("/ingest/models", &json!({"name": "fraud", "status": "loaded", "progress": 100.0, "memory_usage_mb": 900.0})).status, 200);
    let job = json!({"job_id": "j1", "model_name": "fraud", "status": "running", "progress": 30.0,
        "started_at": chrono::Utc::now().to_rfc3339(), "resource_usage": {"cpu_usage": 100.0, "memory_usage_mb": 2048.0}});
    assert_eq!(post("/ingest/training", &job).status, 200);
    let queue = json!({"samples": [{"metric": "queue_depth", "value": 99.0}]});
    assert_eq!(post("/ingest/metrics", &queue).status, 200);
    wait_for(std::time::Duration::from_secs(10), || {
        (get("/alerts?status=active").body["alerts"]
            .as_array()
            .is_some_and(|a| !a.is_empty()))
        .then_some(())
    });
    let shot = concat!(env!("CARGO_MANIFEST_DIR"), "/target/dashboard.png");
    let out = Command::new("node")
        .arg(format!("{e2e}/dashboard.mjs"))
        .arg(format!("http://{}", d.addr))
        .arg(shot)
        .env("VIEWER_TOKEN", &viewer)
        .env("OPERATOR_TOKEN", &operator)
        .current_dir(e2e)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "browser run failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value =
        serde_json::from_str(stdout.lines().last().unwrap_or("")).expect("result line");
    // What the browser saw, for `cargo test -- --nocapture`.
    println!("{seen}");
    // Signed out, nothing but the form; a bad token answered on it; a
    // viewer without controls; then the operator.
    assert_eq!(seen["signedOut"]["dashboardHidden"], true, "{seen}");
    let bad = seen["signedOut"]["badTokenError"].as_str().unwrap_or("");
    assert!(bad.contains("invalid token"), "{seen}");
    assert_eq!(
        seen["viewer"]["whoami"], "signed in as wall-screen (viewer)",
        "{seen}"
    );
    assert!(seen["viewer"]["alerts"].as_u64().unwrap() >= 1, "{seen}");
    assert_eq!(
        seen["viewer"]["buttons"], 0,
        "no controls for a viewer: {seen}"
    );
    assert_eq!(seen["operator"]["whoami"], "signed in as oncall (operator)");
    // The bad token's 401 is the one console error a browser logs itself.
    let errors: Vec<&Value> = seen["consoleErrors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| !e.as_str().unwrap_or("").contains("401"))
        .collect();
    assert!(errors.is_empty(), "console errors: {seen}");
    assert!(seen["loadMs"].as_u64().unwrap() < 3_000, "{seen}");
    assert_eq!(seen["foreignRequests"], json!([]), "{seen}");
    let first = seen["firstLoadBytes"].as_u64().unwrap();
    assert!(
        (10_000..300_000).contains(&first),
        "first load {first} B: {seen}"
    );
    let signed_in = seen["signedInLoadBytes"].as_u64().unwrap();
    assert!(
        (first..300_000).contains(&signed_in),
        "signed-in load {signed_in} B: {seen}"
    );
    // Every chart drawn from its endpoint: a time axis, the same points.
    for range in ["charts24h", "charts1h"] {
        let charts = seen[range]["charts"].as_object().unwrap();
        assert_eq!(charts.len(), 5, "{seen}");
        for (name, c) in charts {
            assert_eq!(c["xScale"], "time", "{name}: {c}");
            assert_eq!(c["points"], c["apiPoints"], "{name}: {c}");
            assert!(c["points"].as_u64().unwrap() >= 12, "{name}: {c}");
            let lens = c["datasets"].as_array().unwrap();
            assert_eq!(
                lens.len() as u64,
                c["apiDatasets"].as_u64().unwrap(),
                "{name}: {c}"
            );
            assert!(lens.iter().all(|n| *n == c["points"]), "{name}: {c}");
            assert_eq!(
                c["nulls"], c["skipped"],
                "{name}: a null drawn as a value: {c}"
            );
            assert_eq!(c["spanGaps"], true, "{name}: {c}");
        }
    }
    assert_eq!(seen["charts1h"]["range"], "1h");
    // The daemon started seconds ago: a day's system chart is mostly gap.
    let sys = &seen["charts24h"]["charts"]["system-metrics"];
    assert!(sys["nulls"].as_u64().unwrap() > 100, "{sys}");
    assert_eq!(
        seen["charts24h"]["charts"]["alerts-timeline"]["type"],
        "bar"
    );
    assert_eq!(seen["legendToggle"], true, "{seen}");
    // The CPU anomaly is marked on the overview's and the charts page's
    // system charts, and named under the latter.
    for chart in ["overviewMarks", "chartsMarks"] {
        assert!(
            seen[chart]
                .as_array()
                .is_some_and(|m| m.iter().any(|m| m == "cpu_usage_percent")),
            "{chart}: {seen}"
        );
    }
    let summary = seen["charts1h"]["charts"]["system-metrics"]["summary"]
        .as_str()
        .unwrap_or("");
    assert!(summary.contains("marked: cpu_usage_percent"), "{summary}");
    assert!(
        seen["overviewChartPoints"].as_u64().unwrap() >= 12,
        "{seen}"
    );
    assert_eq!(seen["liveMessages"], 2, "live values arrive: {seen}");
    assert!(seen["services"].as_u64().unwrap() >= 1);
    assert!(seen["alertRows"].as_u64().unwrap() >= 1, "{seen}");
    let history = seen["history"].as_array().unwrap();
    assert!(
        history.iter().any(|h| {
            let h = h.as_str().unwrap();
            h.starts_with("notified") && h.contains("pager")
        }),
        "the delivery attempt is in the alert's history: {seen}"
    );
    assert!(
        seen["status"].as_str().unwrap().starts_with("acknowledged"),
        "{seen}"
    );
    assert!(
        seen["prefilledMatchers"]
            .as_str()
            .unwrap()
            .contains("alertname=queue_high"),
        "{seen}"
    );
    let silences = seen["silences"].as_array().unwrap();
    assert!(
        silences.iter().any(|s| {
            let s = s.as_str().unwrap();
            s.contains("maintenance window") && s.contains("active")
        }),
        "{seen}"
    );
    let actions = seen["auditActions"].as_array().unwrap();
    assert!(
        !actions.is_empty() && actions.iter().all(|a| a == "acknowledged"),
        "{seen}"
    );
    assert_ne!(
        seen["background"]["light"], seen["background"]["dark"],
        "light and dark follow the system: {seen}"
    );
    // One column on a phone, three on a wall screen, nothing wider than either.
    assert_eq!(seen["phone"]["columns"], 1, "{seen}");
    assert_eq!(seen["wall"]["columns"], 3, "{seen}");
    for screen in ["phone", "wall"] {
        assert!(
            seen[screen]["overflowPx"].as_i64().unwrap() <= 0,
            "{screen}: wider than the screen: {seen}"
        );
    }
    // The click acknowledged the alert, as the API says.
    let id = seen["alertId"].as_str().unwrap();
    let a = get(&format!("/alerts/{id}")).body;
    assert_eq!(a["status"], "acknowledged", "{a}");
    assert_eq!(a["acknowledged_by"], "e2e-operator");
    let ack = a["history"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["action"] == "acknowledged")
        .unwrap()
        .clone();
    assert_eq!(ack["comment"], "acknowledged from the browser test");
    assert_eq!(a["metadata"]["silenced"], true, "{a}");
    assert!(
        std::fs::metadata(shot).unwrap().len() > 10_000,
        "a screenshot was saved"
    );
}
