//! Interop (issue "Interop and scale-out") with the real engines: a real
//! Prometheus scrapes `GET /metrics` (the daemon's own health, and with
//! `?series=all` the stored series) with a viewer token, and sends the
//! alerts of its rules to `POST /api/v2/alerts` as to an Alertmanager.

mod common;

use common::servers::Prometheus;
use common::*;
use serde_json::json;
use std::time::Duration;

#[test]
fn a_real_prometheus_scrapes_the_daemon_and_its_stored_series() {
    let d = Daemon::start(&[("AUTH", "on")]);
    let admin = admin_token(&d);
    let viewer = create(&d, &admin, "prometheus", "viewer", None);
    let ingest = create(&d, &admin, "svc", "ingest", None);
    let body = json!({"samples": [{"metric": "queue_depth", "labels": {"queue": "jobs \"a\""}, "value": 42.0}]});
    let r = with_token(d.addr, &ingest, "POST", "/ingest/metrics", Some(&body));
    assert_eq!(r.status, 200, "{}", r.text);

    // The text format, as the API answers it.
    let r = with_token(d.addr, &viewer, "GET", "/metrics", None);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.headers["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    for needle in [
        "# TYPE mlsec_store_series gauge\n",
        "# TYPE mlsec_store_samples_ingested_total counter\n",
        "# TYPE mlsec_store_flush_duration_seconds histogram\n",
        "mlsec_http_requests_total{route=\"/ingest/metrics\",method=\"POST\",status=\"200\"} 1\n",
        "mlsec_alerts_open{severity=\"critical\"} 0\n",
    ] {
        assert!(r.text.contains(needle), "{needle} missing:\n{}", r.text);
    }
    assert!(
        !r.text.contains("queue_depth"),
        "series only with ?series=all"
    );
    let all = with_token(d.addr, &viewer, "GET", "/metrics?series=all", None);
    assert!(
        all.text
            .contains("queue_depth{queue=\"jobs \\\"a\\\"\"} 42 "),
        "{}",
        all.text
    );
    // OpenMetrics when asked; a format it cannot write is a 406.
    let om = send(
        d.addr,
        "GET",
        "/metrics",
        &[
            ("authorization", &bearer(&viewer)),
            ("accept", "application/openmetrics-text;version=1.0.0"),
        ],
        None,
    );
    assert!(om.text.ends_with("# EOF\n"), "{}", om.text);
    assert!(
        om.text
            .contains("# TYPE mlsec_store_samples_ingested counter\n")
    );
    let json_only = send(
        d.addr,
        "GET",
        "/metrics",
        &[
            ("authorization", &bearer(&viewer)),
            ("accept", "application/json"),
        ],
        None,
    );
    assert_eq!(json_only.status, 406);
    assert!(json_only.body["error"].as_str().unwrap().contains("Accept"));
    let r = with_token(d.addr, &viewer, "GET", "/metrics?series=some", None);
    assert_eq!(r.status, 400);

    // A real Prometheus scrapes both, every second.
    let config = format!(
        r#"
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: mlsec
    metrics_path: /metrics
    params:
      series: [all]
    authorization:
      credentials: {viewer}
    static_configs:
      - targets: ['{}']
"#,
        d.addr
    );
    let p = Prometheus::start(&config);
    let up = wait_for(Duration::from_secs(30), || {
        let r = p.query("up{job=\"mlsec\"}");
        (r.first()?["value"][1] == "1").then_some(r)
    });
    assert_eq!(up.len(), 1);
    let depth = wait_for(Duration::from_secs(30), || {
        let r = p.query("queue_depth");
        r.first().cloned()
    });
    assert_eq!(depth["value"][1], "42", "{depth}");
    assert_eq!(depth["metric"]["queue"], "jobs \"a\"");
    let built = p.query("mlsec_build_info");
    assert_eq!(built[0]["metric"]["version"], env!("CARGO_PKG_VERSION"));
    let ingested = p.query("mlsec_store_samples_ingested_total");
    let n: f64 = ingested[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!(n >= 1.0, "{ingested:?}");
    // Every scrape answered cleanly.
    let failed = p.query("sum(scrape_samples_scraped{job=\"mlsec\"}) == 0");
    assert!(failed.is_empty(), "{failed:?}");
}

#[test]
fn a_real_prometheus_sends_its_alerts_here_as_to_an_alertmanager() {
    let d = Daemon::start(&[("AUTH", "on"), ("ALERT_EVALUATION_INTERVAL", "0.5")]);
    let admin = admin_token(&d);
    let viewer = create(&d, &admin, "prometheus-scrape", "viewer", None);
    let ingest = create(&d, &admin, "prometheus-alerts", "ingest", None);
    let operator = create(&d, &admin, "oncall", "operator", None);
    let push = |v: f64| {
        let body = json!({"samples": [{"metric": "queue_depth", "labels": {"queue": "jobs"}, "value": v}]});
        let r = with_token(d.addr, &ingest, "POST", "/ingest/metrics", Some(&body));
        assert_eq!(r.status, 200, "{}", r.text);
    };
    push(99.0);

    // Bad input first: an alert without labels, a body that is not a list.
    let r = with_token(
        d.addr,
        &ingest,
        "POST",
        "/api/v2/alerts",
        Some(&json!([{"labels": {}}])),
    );
    assert_eq!(r.status, 400);
    assert!(
        r.body["error"]
            .as_str()
            .unwrap()
            .contains("alerts[0].labels"),
        "{}",
        r.text
    );
    let r = with_token(
        d.addr,
        &ingest,
        "POST",
        "/api/v2/alerts",
        Some(&json!({"labels": {"a": "b"}})),
    );
    assert_eq!(r.status, 400, "{}", r.text);
    let r = with_token(d.addr, &viewer, "POST", "/api/v2/alerts", Some(&json!([])));
    assert_eq!(r.status, 403, "a viewer cannot post alerts");

    let rules = r#"
groups:
  - name: queues
    interval: 1s
    rules:
      - alert: QueueBacklog
        expr: queue_depth > 10
        labels:
          severity: page
          service: jobs
        annotations:
          summary: "queue {{ $labels.queue }} is backed up"
          description: "depth {{ $value }}"
"#;
    let config = format!(
        r#"
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [rules.yml]
alerting:
  alertmanagers:
    - api_version: v2
      authorization:
        credentials: {ingest}
      static_configs:
        - targets: ['{addr}']
scrape_configs:
  - job_name: mlsec
    metrics_path: /metrics
    params:
      series: [all]
    authorization:
      credentials: {viewer}
    static_configs:
      - targets: ['{addr}']
"#,
        addr = d.addr
    );
    let _p = Prometheus::start_with(&config, &[("rules.yml", rules)]);
    let list = |status: &str| {
        with_token(
            d.addr,
            &operator,
            "GET",
            &format!("/alerts?status={status}"),
            None,
        )
        .body["alerts"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let fired = wait_for(Duration::from_secs(40), || {
        list("active")
            .into_iter()
            .find(|a| a["metadata"]["rule"] == "QueueBacklog")
    });
    assert_eq!(fired["severity"], "critical", "page is critical: {fired}");
    assert_eq!(fired["service"], "jobs");
    assert_eq!(fired["message"], "queue jobs is backed up");
    assert_eq!(
        fired["metadata"]["value"],
        serde_json::Value::Null,
        "no value travels"
    );
    assert_eq!(fired["metadata"]["labels"]["queue"], "jobs");
    assert!(
        fired["description"]
            .as_str()
            .unwrap()
            .contains("(source: http"),
        "{fired}"
    );
    let id = fired["alert_id"].as_str().unwrap().to_string();

    // Acknowledged here; Prometheus keeps sending it: still the one alert.
    let ack = json!({"alert_id": id, "acknowledged_by": "Dana", "comment": "draining"});
    let r = with_token(d.addr, &operator, "POST", "/alerts/acknowledge", Some(&ack));
    assert_eq!(r.status, 200, "{}", r.text);
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        list("active")
            .iter()
            .all(|a| a["metadata"]["rule"] != "QueueBacklog")
    );
    let acked: Vec<_> = list("acknowledged")
        .into_iter()
        .filter(|a| a["metadata"]["rule"] == "QueueBacklog")
        .collect();
    assert_eq!(acked.len(), 1, "{acked:?}");
    assert_eq!(acked[0]["alert_id"], id.as_str());

    // The rule stops firing: Prometheus sends it resolved, and it resolves.
    push(1.0);
    let resolved = wait_for(Duration::from_secs(40), || {
        let a = with_token(d.addr, &operator, "GET", &format!("/alerts/{id}"), None).body;
        (a["status"] == "resolved").then_some(a)
    });
    let actions: Vec<&str> = resolved["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["action"].as_str())
        .collect();
    for a in ["fired", "acknowledged", "resolved"] {
        assert!(actions.contains(&a), "{a} not in {actions:?}");
    }
}

#[test]
fn a_posted_alert_resolves_by_its_ends_at_or_by_the_resolve_timeout() {
    let d = Daemon::start(&[
        ("ALERT_EVALUATION_INTERVAL", "0.2"),
        ("EXTERNAL_RESOLVE_TIMEOUT", "1"),
    ]);
    let post = |alerts: serde_json::Value| {
        let r = d.post("/api/v2/alerts", &alerts);
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["received"], alerts.as_array().unwrap().len());
    };
    let open = |name: &str| {
        d.get("/alerts?limit=100").body["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["metadata"]["rule"] == name)
            .cloned()
    };
    let later = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    post(json!([
        {"labels": {"alertname": "NoEnd", "job": "batch", "severity": "info"}},
        {"labels": {"alertname": "Ends", "severity": "warning"}, "endsAt": later,
         "annotations": {"description": "disk filling"}},
    ]));
    let no_end = open("NoEnd").expect("fired");
    assert_eq!(
        (no_end["service"].as_str(), no_end["severity"].as_str()),
        (Some("batch"), Some("info"))
    );
    let ends = open("Ends").expect("fired");
    assert_eq!(ends["message"], "disk filling");
    // It has no value or threshold of ours: its history says none, not NaN.
    let page = d.get(&format!("/alerts/{}", ends["alert_id"].as_str().unwrap()));
    assert_eq!(
        page.body["history"][0]["comment"], "disk filling",
        "{}",
        page.text
    );
    // Posted again: still one alert each.
    post(json!([{"labels": {"alertname": "Ends", "severity": "warning"}, "endsAt": later}]));
    // Not posted again within the resolve timeout: resolved by the sweep.
    wait_for(Duration::from_secs(10), || {
        (open("NoEnd")?["status"] == "resolved").then_some(())
    });
    assert_eq!(
        open("Ends").expect("open")["status"],
        "active",
        "its endsAt is an hour away"
    );
    // Posted with an endsAt in the past: resolved at once.
    let past = (chrono::Utc::now() - chrono::Duration::seconds(5)).to_rfc3339();
    post(json!([{"labels": {"alertname": "Ends", "severity": "warning"}, "endsAt": past}]));
    assert_eq!(open("Ends").expect("resolved")["status"], "resolved");
    let all: Vec<_> = d.get("/alerts?limit=100").body["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["metadata"]["rule"] == "Ends")
        .cloned()
        .collect();
    assert_eq!(all.len(), 1, "{all:?}");
}
