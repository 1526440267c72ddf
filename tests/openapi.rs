//! The OpenAPI document at `/openapi.json` names every route, and real
//! answers of every route (successes and errors) match the schema it gives
//! for their status.

mod common;

use common::servers::{Behavior, HttpTarget};
use common::*;
use serde_json::{Value, json};
use std::time::Duration;

struct Document {
    doc: Value,
}

impl Document {
    fn fetch(d: &Daemon) -> Document {
        let r = d.get("/openapi.json");
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(r.headers["content-type"].starts_with("application/json"));
        assert_eq!(r.body["openapi"], "3.1.0");
        Document { doc: r.body }
    }

    /// The schema of `method` `template`'s answer with `status` in `media`,
    /// failing when the document does not list that answer.
    fn schema(&self, method: &str, template: &str, status: u16, media: &str) -> Value {
        let op = &self.doc["paths"][template][method.to_ascii_lowercase()];
        assert!(op.is_object(), "{method} {template} is not in the document");
        let answer = &op["responses"][status.to_string()];
        assert!(
            answer.is_object(),
            "{method} {template} answered {status}, which the document does not list"
        );
        // A range (`*/*`) stands for every type it covers.
        let content = match &answer["content"][media] {
            Value::Null => &answer["content"]["*/*"],
            exact => exact,
        };
        assert!(
            content.is_object(),
            "{method} {template} {status}: the document has no {media} body"
        );
        content["schema"].clone()
    }

    /// Checks one real answer against the document.
    fn check(&self, method: &str, template: &str, r: &Reply) {
        let media = r.headers.get("content-type").cloned().unwrap_or_default();
        let media = media.split(';').next().unwrap_or("").trim().to_string();
        let schema = self.schema(method, template, r.status, &media);
        if media == "application/json" {
            self.validate(
                &schema,
                &r.body,
                &format!("{method} {template} {}", r.status),
            );
        }
    }

    fn validate(&self, schema: &Value, value: &Value, what: &str) {
        let root = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "components": self.doc["components"],
            "allOf": [schema],
        });
        let v = jsonschema::validator_for(&root).expect("the document's schema compiles");
        let errors: Vec<String> = v
            .iter_errors(value)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{what}: the answer does not match the document:\n{}\n{value}",
            errors.join("\n")
        );
    }
}

fn call(d: &Daemon, method: &str, path: &str, body: Option<Value>) -> Reply {
    send(d.addr, method, path, &[], body.as_ref())
}

#[test]
fn every_route_is_documented_and_every_documented_route_answers() {
    let d = Daemon::start(&[]);
    let doc = Document::fetch(&d);
    let paths = doc.doc["paths"].as_object().unwrap();
    let mut documented = Vec::new();
    for (template, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            let path = template.replace('{', "x").replace('}', "");
            documented.push((method.to_ascii_uppercase(), template.clone(), path));
        }
    }
    for (method, path) in mlsec_monitor::api::allow::endpoints() {
        let found = documented
            .iter()
            .any(|(m, _, p)| m == method && mlsec_monitor::api::allow::route_of(p) == *path);
        assert!(found, "{method} {path} is served but not documented");
    }
    // Bodies carry the ranges the daemon enforces.
    let body = |path: &str| {
        doc.doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
            .clone()
    };
    let model = &body("/ingest/models")["oneOf"][0]["properties"];
    assert_eq!(model["progress"]["maximum"], 100.0, "{model}");
    assert_eq!(model["name"]["maxLength"], 200, "{model}");
    let requests = &body("/ingest/requests")["properties"]["requests"];
    assert_eq!(requests["maxItems"], 10_000, "{requests}");
    assert_eq!(requests["items"]["properties"]["status"]["maximum"], 599);
    assert_eq!(
        body("/ingest/metrics")["properties"]["samples"]["maxItems"],
        10_000
    );
    for (method, template, path) in &documented {
        assert_ne!(
            mlsec_monitor::api::allow::route_of(path),
            "other",
            "{method} {template} is documented but not served"
        );
    }
}

#[test]
fn real_answers_match_the_document() {
    let target = HttpTarget::start(Behavior::Json("{}"));
    let cfg = format!(
        "[[services]]\nname = \"scorer\"\nkind = \"http\"\ntarget = \"{}\"\ninterval = 0.3\n",
        target.url()
    );
    let d = Daemon::start_with_config(&cfg, &[("ALERT_EVALUATION_INTERVAL", "0.5")]);
    let doc = Document::fetch(&d);
    let check = |method: &str, template: &str, path: &str, body: Option<Value>| {
        let r = call(&d, method, path, body);
        doc.check(method, template, &r);
        r
    };

    // Data first, through the ingest routes.
    let r = check(
        "POST",
        "/ingest/metrics",
        "/ingest/metrics",
        Some(
            json!({"samples": [{"metric": "queue_depth", "labels": {"queue": "jobs"}, "value": 3.5}]}),
        ),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    check(
        "POST",
        "/ingest/metrics",
        "/ingest/metrics",
        Some(json!({"samples": [{"metric": "", "value": 1}]})),
    );
    let r = check(
        "POST",
        "/ingest/requests",
        "/ingest/requests",
        Some(
            json!({"service": "scorer", "requests": [{"duration_ms": 12.5, "status": 200}, {"duration_ms": 80.0, "status": 503}]}),
        ),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let r = check(
        "POST",
        "/ingest/models",
        "/ingest/models",
        Some(
            json!([{"name": "fraud", "status": "loaded", "progress": 100.0, "memory_usage_mb": 512.0, "loading_time_ms": 1500.0},
                    {"name": "nlp", "status": "failed", "progress": 40.0, "memory_usage_mb": 0.0, "error_message": "out of memory"}]),
        ),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    check(
        "POST",
        "/ingest/models",
        "/ingest/models",
        Some(json!({"name": "x", "status": "exploded", "progress": 1.0, "memory_usage_mb": 1.0})),
    );
    let started = chrono::Utc::now() - chrono::Duration::minutes(5);
    let r = check(
        "POST",
        "/ingest/training",
        "/ingest/training",
        Some(
            json!({"job_id": "j1", "model_name": "fraud", "status": "running", "progress": 40.0,
                    "started_at": started.to_rfc3339(),
                    "resource_usage": {"cpu_usage": 150.0, "memory_usage_mb": 2048.0, "gpu_usage": 80.0}}),
        ),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let r = check(
        "POST",
        "/api/v2/alerts",
        "/api/v2/alerts",
        Some(
            json!([{"labels": {"alertname": "DiskFilling", "severity": "critical", "service": "scorer"},
                     "annotations": {"summary": "disk filling"}}]),
        ),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    check(
        "POST",
        "/api/v2/alerts",
        "/api/v2/alerts",
        Some(json!([{"labels": {}}])),
    );

    // Wait until the probe, the collector and the alert have all landed.
    wait_for(Duration::from_secs(20), || {
        let s = d.get("/service-health").body;
        let a = d.get("/alerts").body;
        let m = d.get("/system-metrics");
        (s["services"]["scorer"]["last_check"].is_string()
            && a["total_count"].as_u64() >= Some(1)
            && m.status == 200)
            .then_some(())
    });

    for path in [
        "/",
        "/health",
        "/health/services",
        "/health/dependencies",
        "/service-health",
        "/system-metrics",
        "/dashboard-data",
        "/model-loading-status",
        "/training-status",
        "/alerts",
        "/silences",
        "/auth/session",
        "/auth/tokens",
        "/openapi.json",
        "/ui",
    ] {
        check("GET", path, path, None);
    }
    for (template, path) in [
        ("/metrics", "/metrics"),
        ("/metrics", "/metrics?series=all"),
        ("/metrics", "/metrics?series=some"),
        ("/metrics/summary", "/metrics/summary?time_range=1h"),
        ("/metrics/summary", "/metrics/summary?service=scorer"),
        ("/metrics/summary", "/metrics/summary?time_range=2y"),
        (
            "/metrics/detailed",
            "/metrics/detailed?time_range=1h&granularity=1m",
        ),
        ("/metrics/detailed", "/metrics/detailed?metric=queue_depth"),
        ("/metrics/detailed", "/metrics/detailed?granularity=1s"),
        ("/alerts", "/alerts?severity=critical&status=active&limit=5"),
        ("/alerts", "/alerts?severity=fatal"),
        ("/audit", "/audit?limit=10"),
        ("/audit", "/audit?limit=0"),
        (
            "/charts/system-metrics",
            "/charts/system-metrics?time_range=1h",
        ),
        (
            "/charts/system-metrics",
            "/charts/system-metrics?metric=network",
        ),
        (
            "/charts/system-metrics",
            "/charts/system-metrics?format=png",
        ),
        (
            "/charts/service-health",
            "/charts/service-health?time_range=6h",
        ),
        (
            "/charts/alerts-timeline",
            "/charts/alerts-timeline?severity=critical",
        ),
        ("/charts/model-loading", "/charts/model-loading"),
        (
            "/charts/training-progress",
            "/charts/training-progress?model_name=fraud",
        ),
        ("/ui/{file}", "/ui/app.js"),
        ("/ui/{file}", "/ui/nothing.js"),
        ("/ws/metrics", "/ws/metrics"),
    ] {
        check("GET", template, path, None);
    }
    let r = call(&d, "GET", "/metrics", None);
    assert!(r.text.contains("mlsec_store_series"), "{}", r.text);
    let r = send(
        d.addr,
        "GET",
        "/metrics",
        &[("accept", "application/json")],
        None,
    );
    doc.check("GET", "/metrics", &r);
    assert_eq!(r.status, 406);

    // An alert's page and the operator's actions on it.
    let alerts = d.get("/alerts").body;
    let id = alerts["alerts"][0]["alert_id"]
        .as_str()
        .unwrap()
        .to_string();
    check("GET", "/alerts/{alert_id}", &format!("/alerts/{id}"), None);
    check("GET", "/alerts/{alert_id}", "/alerts/no-such-alert", None);
    let r = check(
        "POST",
        "/alerts/acknowledge",
        "/alerts/acknowledge",
        Some(json!({"alert_id": id, "acknowledged_by": "oncall", "comment": "looking"})),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let r = check(
        "POST",
        "/alerts/acknowledge",
        "/alerts/acknowledge",
        Some(json!({"alert_id": id, "acknowledged_by": "oncall"})),
    );
    assert_eq!(r.status, 409, "{}", r.text);
    check(
        "POST",
        "/alerts/acknowledge",
        "/alerts/acknowledge",
        Some(json!({"alert_id": "nope", "acknowledged_by": "oncall"})),
    );
    let r = check(
        "POST",
        "/alerts/resolve",
        "/alerts/resolve",
        Some(json!({"alert_id": id, "resolved_by": "oncall", "resolution_notes": "fixed"})),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    check(
        "POST",
        "/alerts/resolve",
        "/alerts/resolve",
        Some(json!({"alert_id": id})),
    );
    check("GET", "/audit", &format!("/audit?alert_id={id}"), None);

    // The export's lines are audit records.
    let r = call(&d, "GET", "/audit/export", None);
    doc.check("GET", "/audit/export", &r);
    let line_schema =
        doc.schema("GET", "/audit/export", 200, "application/x-ndjson")["x-line-schema"].clone();
    let lines: Vec<&str> = r.text.lines().collect();
    assert!(lines.len() >= 3, "{}", r.text);
    for line in lines {
        let v: Value = serde_json::from_str(line).expect("a JSON line");
        doc.validate(&line_schema, &v, "GET /audit/export line");
    }
    check("GET", "/audit/export", "/audit/export?after=x", None);

    // Silences.
    let r = check(
        "POST",
        "/silences",
        "/silences",
        Some(
            json!({"matchers": {"service": "scorer"}, "ends_at": "2099-01-01T00:00:00Z",
                    "created_by": "oncall", "comment": "maintenance"}),
        ),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let sid = r.body["id"].as_str().unwrap().to_string();
    check("GET", "/silences", "/silences", None);
    check(
        "POST",
        "/silences",
        "/silences",
        Some(json!({"matchers": {}, "ends_at": "yesterday"})),
    );
    let r = check(
        "DELETE",
        "/silences/{id}",
        &format!("/silences/{sid}"),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text);
    check(
        "DELETE",
        "/silences/{id}",
        &format!("/silences/{sid}"),
        None,
    );

    // Tokens.
    let r = check(
        "POST",
        "/auth/tokens",
        "/auth/tokens",
        Some(json!({"name": "grafana", "role": "viewer"})),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    check(
        "POST",
        "/auth/tokens",
        "/auth/tokens",
        Some(json!({"name": "grafana", "role": "viewer"})),
    );
    check(
        "POST",
        "/auth/tokens",
        "/auth/tokens",
        Some(json!({"name": "x", "role": "king"})),
    );
    check("GET", "/auth/tokens", "/auth/tokens", None);
    let r = check(
        "DELETE",
        "/auth/tokens/{name}",
        "/auth/tokens/grafana",
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text);
    check(
        "DELETE",
        "/auth/tokens/{name}",
        "/auth/tokens/grafana",
        None,
    );

    // Bodies that are not JSON, or not sent as JSON.
    let r = post_raw(d.addr, "/ingest/metrics", "application/json", b"{not json");
    doc.check("POST", "/ingest/metrics", &r);
    let r = post_raw(d.addr, "/ingest/metrics", "text/plain", b"{}");
    doc.check("POST", "/ingest/metrics", &r);
    assert_eq!(r.status, 415);
}

#[test]
fn with_access_control_the_gate_answers_are_documented_too() {
    let d = Daemon::start(&[("AUTH", "on")]);
    let doc = Document::fetch(&d);
    let admin = admin_token(&d);
    let viewer = create(&d, &admin, "wall", "viewer", None);
    let r = call(&d, "GET", "/alerts", None);
    assert_eq!(r.status, 401);
    doc.check("GET", "/alerts", &r);
    let r = with_token(d.addr, &viewer, "POST", "/silences", Some(&json!({})));
    assert_eq!(r.status, 403);
    doc.check("POST", "/silences", &r);
    let r = with_token(d.addr, &viewer, "GET", "/auth/session", None);
    doc.check("GET", "/auth/session", &r);
    let r = with_token(d.addr, &admin, "GET", "/auth/tokens", None);
    doc.check("GET", "/auth/tokens", &r);
}
