//! Interop (issue "Interop and scale-out") with the real engines: a real
//! Prometheus scrapes `GET /metrics` (the daemon's own health, and with
//! `?series=all` the stored series) with a viewer token.

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
