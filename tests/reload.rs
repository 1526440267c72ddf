//! Configuration reload without a restart: `POST /-/reload` applies a new
//! service, removes a rule (its open alert resolves `resolved_by: config`)
//! and records what changed; an invalid file or a fixed setting changes
//! nothing; SIGHUP on the real binary does the same and new connections get
//! the new CORS origins.

mod common;

use common::*;
use serde_json::json;
use std::net::TcpListener;
use std::time::Duration;

fn config(services: &[(&str, u16)], with_rule: bool, cors: &str) -> String {
    let mut s = format!("cors_allowed_origins = \"{cors}\"\nalert_evaluation_interval = 0.5\n");
    for (name, port) in services {
        s += &format!(
            "[[services]]\nname = \"{name}\"\nkind = \"tcp\"\ntarget = \"127.0.0.1:{port}\"\ninterval = 0.5\n"
        );
    }
    if with_rule {
        s += "[[rules]]\nname = \"queue_backlog\"\nmetric = \"queue_depth\"\naggregation = \"last\"\nwindow = 60\nop = \">\"\nthreshold = 10\nfor = 0\nclear_after = 0\nseverity = \"warning\"\n";
    }
    s
}

fn service_names(d: &Daemon) -> Vec<String> {
    d.get("/health/services").body["services"]
        .as_array()
        .expect("services")
        .iter()
        .map(|s| s["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn a_valid_change_applies_and_an_invalid_one_changes_nothing() {
    let alpha = TcpListener::bind("127.0.0.1:0").unwrap();
    let beta = TcpListener::bind("127.0.0.1:0").unwrap();
    let (pa, pb) = (
        alpha.local_addr().unwrap().port(),
        beta.local_addr().unwrap().port(),
    );
    let d = Daemon::start_with_config(&config(&[("alpha", pa)], true, "*"), &[]);
    let file = d.data_dir.parent().unwrap().join("config.toml");
    assert_eq!(service_names(&d), ["alpha"]);
    // An alert of the rule that the reload removes.
    let r = d.post(
        "/ingest/metrics",
        &json!({"samples": [{"metric": "queue_depth", "value": 50}]}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let alert_id = wait_for(Duration::from_secs(20), || {
        d.get("/alerts").body["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["metadata"]["rule"] == "queue_backlog" && a["status"] == "active")
            .map(|a| a["alert_id"].as_str().unwrap().to_string())
    });

    std::fs::write(&file, config(&[("alpha", pa), ("beta", pb)], false, "*")).unwrap();
    let r = d.post("/-/reload", &json!({}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["services_added"], json!(["beta"]));
    assert_eq!(r.body["rules_removed"], json!(["queue_backlog"]));
    assert_eq!(r.body["changes"], "services +beta; rules -queue_backlog");
    // The new service is checked; the old one keeps its state.
    wait_for(Duration::from_secs(20), || {
        let all = d.get("/health/services").body;
        all["services"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "beta" && s["status"] == "healthy")
            .then_some(())
    });
    assert_eq!(service_names(&d), ["alpha", "beta"]);
    // The removed rule's alert resolves, by the configuration.
    let resolved = wait_for(Duration::from_secs(20), || {
        let a = d.get(&format!("/alerts/{alert_id}")).body;
        (a["status"] == "resolved").then_some(a)
    });
    assert_eq!(resolved["metadata"]["resolved_by"], "config", "{resolved}");
    let health = d.get("/health").body;
    assert_eq!(health["config"]["last_reload_ok"], true, "{health}");
    let audit = d.get("/audit?action=config_reloaded").body;
    assert_eq!(
        audit["records"][0]["comment"], "services +beta; rules -queue_backlog",
        "{audit}"
    );

    // An invalid file: 400 naming the problem, nothing changes.
    std::fs::write(
        &file,
        config(&[("alpha", pa)], false, "*")
            + "[[rules]]\nname = \"x\"\nmetric = \"m\"\nthreshold = \"high\"\n",
    )
    .unwrap();
    let r = d.post("/-/reload", &json!({}));
    assert_eq!(r.status, 400, "{}", r.text);
    let error = r.body["error"].as_str().unwrap().to_string();
    assert!(
        error.contains("threshold") && error.contains("config.toml"),
        "{error}"
    );
    assert_eq!(service_names(&d), ["alpha", "beta"], "nothing was applied");
    let health = d.get("/health").body;
    assert_eq!(health["config"]["last_reload_ok"], false, "{health}");
    assert_eq!(health["config"]["last_reload_error"], error.as_str());
    let failed = d.get("/audit?action=config_reload_failed").body;
    assert_eq!(failed["records"][0]["comment"], error.as_str(), "{failed}");

    // Settings that cannot change while running are named; nothing changes.
    std::fs::write(
        &file,
        format!(
            "max_series = 10\nmetrics_retention_days = 60\n{}",
            config(&[("alpha", pa)], false, "*")
        ),
    )
    .unwrap();
    let r = d.post("/-/reload", &json!({}));
    assert_eq!(r.status, 400, "{}", r.text);
    let error = r.body["error"].as_str().unwrap();
    assert!(
        error.contains("MAX_SERIES, METRICS_RETENTION_DAYS cannot change while the daemon runs"),
        "{error}"
    );
    assert_eq!(service_names(&d), ["alpha", "beta"]);
    drop((alpha, beta));
}

#[test]
fn sighup_reloads_the_real_binary_and_new_connections_get_the_new_cors_origins() {
    let target = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = target.local_addr().unwrap().port();
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("config.toml");
    std::fs::write(&file, config(&[], false, "http://one.example")).unwrap();
    let file_s = file.display().to_string();
    let p = Process::spawn(
        &tmp.path().join("data"),
        &[("CONFIG_FILE", file_s.as_str())],
    );
    let origin = |o: &str| {
        get_with(p.addr, "/health", &[("origin", o)])
            .headers
            .get("access-control-allow-origin")
            .cloned()
    };
    assert_eq!(
        origin("http://one.example").as_deref(),
        Some("http://one.example")
    );
    assert_eq!(origin("http://two.example"), None);

    std::fs::write(
        &file,
        config(&[("gamma", port)], false, "http://two.example"),
    )
    .unwrap();
    let status = std::process::Command::new("kill")
        .args(["-HUP", &p.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    wait_for(Duration::from_secs(20), || {
        let all = get(p.addr, "/health/services").body;
        all["services"]
            .as_array()
            .is_some_and(|s| {
                s.iter()
                    .any(|s| s["name"] == "gamma" && s["status"] == "healthy")
            })
            .then_some(())
    });
    assert_eq!(
        origin("http://two.example").as_deref(),
        Some("http://two.example")
    );
    assert_eq!(origin("http://one.example"), None);
    let health = get(p.addr, "/health").body;
    assert_eq!(health["config"]["last_reload_ok"], true, "{health}");
    assert_eq!(
        health["config"]["last_reload_changes"], "services +gamma; CORS origins changed",
        "{health}"
    );
    assert_eq!(p.terminate(), 0);
}
