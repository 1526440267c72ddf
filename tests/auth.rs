//! Access control over real HTTP: the first-run admin token, token
//! management, and every route against every role, no token, a revoked and
//! an expired token.

mod common;

use common::*;
use serde_json::{Value, json};
use std::time::Duration;

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Need {
    Public,
    Read,
    Operate,
    Admin,
    Ingest,
}

fn allows(role: &str, need: Need) -> bool {
    match need {
        Need::Public => true,
        Need::Read => matches!(role, "viewer" | "operator" | "admin"),
        Need::Operate => matches!(role, "operator" | "admin"),
        Need::Admin => role == "admin",
        Need::Ingest => matches!(role, "ingest" | "admin"),
    }
}

/// Every route: method, path, body, what it needs.
fn routes() -> Vec<(&'static str, &'static str, Option<Value>, Need)> {
    let now = chrono::Utc::now();
    let later = (now + chrono::Duration::hours(1)).to_rfc3339();
    vec![
        ("GET", "/", None, Need::Public),
        ("GET", "/health", None, Need::Public),
        ("GET", "/ui", None, Need::Public),
        ("GET", "/ui/app.js", None, Need::Public),
        ("GET", "/system-metrics", None, Need::Read),
        ("GET", "/service-health", None, Need::Read),
        ("GET", "/health/services", None, Need::Read),
        ("GET", "/health/dependencies", None, Need::Read),
        ("GET", "/dashboard-data", None, Need::Read),
        ("GET", "/metrics", None, Need::Read),
        ("GET", "/metrics/summary", None, Need::Read),
        ("GET", "/metrics/detailed", None, Need::Read),
        ("GET", "/model-loading-status", None, Need::Read),
        ("GET", "/training-status", None, Need::Read),
        ("GET", "/alerts", None, Need::Read),
        ("GET", "/alerts/no-such-alert", None, Need::Read),
        ("GET", "/audit", None, Need::Read),
        ("GET", "/audit/export", None, Need::Admin),
        ("GET", "/silences", None, Need::Read),
        ("GET", "/charts/model-loading", None, Need::Read),
        ("GET", "/charts/training-progress", None, Need::Read),
        ("GET", "/charts/system-metrics", None, Need::Read),
        ("GET", "/charts/service-health", None, Need::Read),
        ("GET", "/charts/alerts-timeline", None, Need::Read),
        ("GET", "/ws/metrics", None, Need::Read),
        ("GET", "/no-such-path", None, Need::Read),
        (
            "POST",
            "/ingest/metrics",
            Some(json!({"samples": [{"metric": "queue_depth", "value": 1.0}]})),
            Need::Ingest,
        ),
        (
            "POST",
            "/ingest/requests",
            Some(json!({"service": "api", "requests": [{"duration_ms": 5.0, "status": 200}]})),
            Need::Ingest,
        ),
        (
            "POST",
            "/ingest/models",
            Some(
                json!({"name": "m", "status": "loaded", "progress": 100.0, "memory_usage_mb": 1.0}),
            ),
            Need::Ingest,
        ),
        (
            "POST",
            "/ingest/training",
            Some(
                json!({"job_id": "j", "model_name": "m", "status": "pending", "progress": 0.0,
                        "started_at": now.to_rfc3339(),
                        "resource_usage": {"cpu_usage": 1.0, "memory_usage_mb": 1.0}}),
            ),
            Need::Ingest,
        ),
        (
            "POST",
            "/alerts/acknowledge",
            Some(json!({"alert_id": "none", "acknowledged_by": "me"})),
            Need::Operate,
        ),
        (
            "POST",
            "/alerts/resolve",
            Some(json!({"alert_id": "none", "resolved_by": "me"})),
            Need::Operate,
        ),
        (
            "POST",
            "/silences",
            Some(
                json!({"matchers": {"service": "x"}, "ends_at": later, "created_by": "me", "comment": "test"}),
            ),
            Need::Operate,
        ),
        ("DELETE", "/silences/none", None, Need::Operate),
        ("GET", "/auth/tokens", None, Need::Admin),
        (
            "POST",
            "/auth/tokens",
            Some(json!({"name": "x", "role": "nobody"})),
            Need::Admin,
        ),
        ("DELETE", "/auth/tokens/nobody", None, Need::Admin),
        ("GET", "/auth/session", None, Need::Public),
        ("POST", "/api/v2/alerts", Some(json!([])), Need::Ingest),
        ("PUT", "/alerts", None, Need::Admin),
    ]
}

#[test]
fn every_route_against_every_role_no_token_a_revoked_and_an_expired_one() {
    let d = Daemon::start(&[("AUTH", "on"), ("AUTH_FAILURE_LIMIT", "100000")]);
    let admin = admin_token(&d);
    let mut creds: Vec<(String, Option<String>)> = vec![("admin".into(), Some(admin.clone()))];
    for role in ["viewer", "operator", "ingest"] {
        creds.push((
            role.into(),
            Some(create(&d, &admin, &format!("t-{role}"), role, None)),
        ));
    }
    let revoked = create(&d, &admin, "gone", "admin", None);
    let r = with_token(d.addr, &admin, "DELETE", "/auth/tokens/gone", None);
    assert_eq!(r.status, 200, "{}", r.text);
    let soon = (chrono::Utc::now() + chrono::Duration::milliseconds(1500)).to_rfc3339();
    let expired = create(&d, &admin, "brief", "admin", Some(soon));
    std::thread::sleep(Duration::from_millis(1600));
    creds.push(("none".into(), None));
    creds.push(("revoked".into(), Some(revoked)));
    creds.push(("expired".into(), Some(expired)));

    let mut failures = Vec::new();
    for (method, path, body, need) in routes() {
        for (who, token) in &creds {
            let auth = token.as_ref().map(|t| bearer(t));
            let headers: Vec<(&str, &str)> = auth
                .as_deref()
                .map(|a| vec![("authorization", a)])
                .unwrap_or_default();
            let r = send(d.addr, method, path, &headers, body.as_ref());
            let ok = match who.as_str() {
                "none" => {
                    if need == Need::Public {
                        r.status != 401 && r.status != 403
                    } else {
                        r.status == 401
                            && r.headers
                                .get("www-authenticate")
                                .is_some_and(|h| h.starts_with("Bearer"))
                    }
                }
                "revoked" | "expired" => r.status == 401,
                role if allows(role, need) => r.status != 401 && r.status != 403 && r.status < 500,
                role => {
                    r.status == 403
                        && r.body["error"]
                            .as_str()
                            .is_some_and(|e| e.contains(role) && e.contains("needs"))
                }
            };
            if !ok {
                failures.push(format!("{method} {path} as {who}: {} {}", r.status, r.text));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // The session says who each one is and what the dashboard may offer.
    for (who, token) in &creds[..4] {
        let t = token.as_deref().expect("a token");
        let s = with_token(d.addr, t, "GET", "/auth/session", None).body;
        let can = (
            s["can_read"].as_bool(),
            s["can_operate"].as_bool(),
            s["can_admin"].as_bool(),
        );
        let want = match who.as_str() {
            "admin" => (Some(true), Some(true), Some(true)),
            "operator" => (Some(true), Some(true), Some(false)),
            "viewer" => (Some(true), Some(false), Some(false)),
            _ => (Some(false), Some(false), Some(false)),
        };
        assert_eq!(
            (s["auth"].as_bool(), s["role"].as_str()),
            (Some(true), Some(who.as_str()))
        );
        assert_eq!(can, want, "{who}: {s}");
    }
    let anonymous = d.get("/auth/session").body;
    assert_eq!(anonymous["name"], Value::Null);
    assert_eq!(anonymous["can_read"], false, "{anonymous}");

    // The list shows names, roles and use, never a secret.
    let r = with_token(d.addr, &admin, "GET", "/auth/tokens", None);
    let text = r.text.clone();
    assert!(!text.contains("mlsec_"), "{text}");
    let names: Vec<&str> = r.body["tokens"]
        .as_array()
        .expect("tokens")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(
        names,
        ["admin", "brief", "t-ingest", "t-operator", "t-viewer"]
    );
    let viewer = r.body["tokens"]
        .as_array()
        .expect("tokens")
        .iter()
        .find(|t| t["name"] == "t-viewer")
        .cloned()
        .expect("viewer");
    assert!(viewer["last_used_at"].is_string(), "{viewer}");
}

#[test]
fn repeated_failures_from_one_address_are_slowed_and_counted() {
    let d = Daemon::start(&[("AUTH", "on"), ("AUTH_FAILURE_LIMIT", "3")]);
    let admin = admin_token(&d);
    let bad = [("authorization", "Bearer mlsec_wrong")];
    for _ in 0..3 {
        assert_eq!(send(d.addr, "GET", "/alerts", &bad, None).status, 401);
    }
    let r = send(d.addr, "GET", "/alerts", &bad, None);
    assert_eq!(r.status, 429, "{}", r.text);
    let wait: u64 = r.headers["retry-after"].parse().expect("seconds");
    assert!((1..=60).contains(&wait), "{wait}");
    // Blocked whatever it sends, for the rest of the window.
    let good = bearer(&admin);
    let r = send(d.addr, "GET", "/alerts", &[("authorization", &good)], None);
    assert_eq!(r.status, 429);
    let h = d.get("/health").body;
    assert_eq!(h["auth"]["failed_sign_ins"], 3, "{h}");
    assert!(
        h["auth"]["refused_requests"].as_u64().expect("count") >= 2,
        "{h}"
    );
}

#[test]
fn auth_off_is_refused_on_a_public_address_and_public_read_opens_reads_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = binary()
        .args(["serve"])
        .env("DATA_DIR", dir.path())
        .env("SERVICE_HOST", "0.0.0.0")
        .env("SERVICE_PORT", "0")
        .env("AUTH", "off")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("AUTH=off is only allowed"), "{err}");

    let d = Daemon::start(&[("AUTH", "on"), ("PUBLIC_READ", "true")]);
    assert_eq!(d.get("/alerts").status, 200);
    assert_eq!(d.get("/dashboard-data").status, 200);
    let r = d.post("/silences", &json!({"matchers": {"a": "b"}, "ends_at": "2099-01-01T00:00:00Z", "created_by": "x", "comment": "y"}));
    assert_eq!(r.status, 401, "writes are never public: {}", r.text);
    assert_eq!(
        d.post("/ingest/metrics", &json!({"samples": []})).status,
        401
    );
    assert_eq!(d.get("/auth/tokens").status, 401);
    let s = d.get("/auth/session").body;
    assert_eq!(
        (&s["can_read"], &s["can_operate"], &s["name"]),
        (&json!(true), &json!(false), &Value::Null),
        "{s}"
    );
    // With access control off (loopback only) the page may offer everything.
    let off = Daemon::start(&[]);
    let s = off.get("/auth/session").body;
    assert_eq!((&s["auth"], &s["can_admin"]), (&json!(false), &json!(true)));
}

#[test]
fn the_live_feed_takes_its_token_as_a_subprotocol() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let d = Daemon::start(&[("AUTH", "on")]);
    let admin = admin_token(&d);
    let viewer = create(&d, &admin, "screen", "viewer", None);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let url = format!("ws://{}/ws/metrics", d.addr);
    rt.block_on(async move {
        // Without a token: refused before the upgrade.
        let err = tokio_tungstenite::connect_async(url.as_str())
            .await
            .expect_err("refused");
        assert!(err.to_string().contains("401"), "{err}");
        let mut req = url.as_str().into_client_request().expect("request");
        req.headers_mut().insert(
            "sec-websocket-protocol",
            format!("bearer, {viewer}").parse().expect("header"),
        );
        let (mut ws, resp) = tokio_tungstenite::connect_async(req)
            .await
            .expect("connect");
        assert_eq!(
            resp.headers()
                .get("sec-websocket-protocol")
                .and_then(|v| v.to_str().ok()),
            Some("bearer")
        );
        use futures_util::StreamExt;
        let first = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a message")
            .expect("open")
            .expect("text");
        let v: Value = serde_json::from_str(first.to_text().expect("text")).expect("json");
        assert_eq!(v["type"], "snapshot");
    });
}

#[test]
fn first_run_logs_where_the_admin_token_is_and_the_cli_manages_tokens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = Process::spawn(dir.path(), &[("AUTH", "on")]);
    let file = dir.path().join("admin.token");
    let admin = wait_for(Duration::from_secs(10), || {
        std::fs::read_to_string(&file)
            .ok()
            .filter(|t| !t.is_empty())
    });
    let admin = admin.trim().to_string();
    // The log names the file and never holds the token.
    let mut logged = Vec::new();
    while let Ok(l) = p.lines.recv_timeout(Duration::from_millis(300)) {
        logged.push(l);
    }
    let log = logged.join("\n");
    assert!(log.contains("admin.token"), "{log}");
    assert!(!log.contains(&admin), "the token leaked into the log");

    let url = format!("http://{}", p.addr);
    let cli = |args: &[&str]| {
        let out = binary()
            .args(["token"])
            .args(args)
            .args(["--url", &url])
            .env("DATA_DIR", dir.path())
            .env_remove("MLSEC_TOKEN")
            .env_remove("CONFIG_FILE")
            .output()
            .expect("run");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, out, err) = cli(&[
        "create",
        "--name",
        "edge-ingest",
        "--role",
        "ingest",
        "--expires",
        "30d",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let secret = out.trim().to_string();
    assert!(
        secret.starts_with("mlsec_") && secret.len() == 70,
        "{secret}"
    );
    // The new token pushes, and may do nothing else.
    let auth = format!("Bearer {secret}");
    let body = json!({"samples": [{"metric": "queue_depth", "value": 3.0}]});
    let r = send(
        p.addr,
        "POST",
        "/ingest/metrics",
        &[("authorization", &auth)],
        Some(&body),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        send(p.addr, "GET", "/alerts", &[("authorization", &auth)], None).status,
        403
    );
    let (code, out, _) = cli(&["list"]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains("edge-ingest") && out.contains("ingest") && !out.contains("mlsec_"),
        "{out}"
    );
    let (code, _, err) = cli(&["create", "--name", "x", "--role", "root"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("role 'root'"), "{err}");
    let (code, out, _) = cli(&["revoke", "edge-ingest"]);
    assert_eq!((code, out.trim()), (Some(0), "revoked 'edge-ingest'"));
    let r = send(
        p.addr,
        "POST",
        "/ingest/metrics",
        &[("authorization", &auth)],
        Some(&body),
    );
    assert_eq!(r.status, 401);
    assert_eq!(p.terminate(), 0);
}

const RULE: &str = "[[rules]]\nname = \"queue_high\"\nmetric = \"queue_depth\"\naggregation = \"last\"\nwindow = 60\nthreshold = 10\nseverity = \"warning\"\n";

#[test]
fn every_write_and_token_change_is_audited_with_the_token_that_made_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = tmp.path().join("config.toml");
    std::fs::write(&cfg, RULE).expect("config");
    let cfg = cfg.display().to_string();
    let data = tmp.path().join("data");
    let env = [
        ("AUTH", "on"),
        ("ALERT_EVALUATION_INTERVAL", "0.2"),
        ("AUTH_FAILURE_LIMIT", "2"),
        ("CONFIG_FILE", cfg.as_str()),
    ];
    let d = Daemon::start_in(&data, &env);
    let admin = admin_token(&d);
    let operator = create(&d, &admin, "oncall", "operator", None);
    let ingest = create(&d, &admin, "pusher", "ingest", None);
    let body = json!({"samples": [{"metric": "queue_depth", "value": 50.0}]});
    let r = with_token(d.addr, &ingest, "POST", "/ingest/metrics", Some(&body));
    assert_eq!(r.status, 200, "{}", r.text);
    let op = bearer(&operator);
    let id = wait_for(Duration::from_secs(10), || {
        let r = send(
            d.addr,
            "GET",
            "/alerts?status=active",
            &[("authorization", &op)],
            None,
        );
        r.body["alerts"][0]["alert_id"].as_str().map(str::to_string)
    });
    let ack = json!({"alert_id": id, "acknowledged_by": "Dana", "comment": "looking"});
    let r = send(
        d.addr,
        "POST",
        "/alerts/acknowledge",
        &[("authorization", &op)],
        Some(&ack),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let later = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let silence = json!({"matchers": {"service": "x"}, "ends_at": later, "created_by": "Dana", "comment": "maintenance"});
    let r = send(
        d.addr,
        "POST",
        "/silences",
        &[("authorization", &op)],
        Some(&silence),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let r = with_token(d.addr, &admin, "DELETE", "/auth/tokens/pusher", None);
    assert_eq!(r.status, 200);
    // Two failures block this address: one audit record says so.
    for _ in 0..2 {
        let r = send(
            d.addr,
            "GET",
            "/alerts",
            &[("authorization", "Bearer mlsec_bad")],
            None,
        );
        assert_eq!(r.status, 401);
    }
    // This address is refused for a minute now: read the trail after a
    // restart (a new daemon has a new limiter; the trail is durable).
    let r = with_token(d.addr, &admin, "GET", "/audit", None);
    assert_eq!(r.status, 429);
    std::thread::sleep(Duration::from_millis(300));
    d.stop().expect("stop");
    let d = Daemon::start_in(&data, &env);
    let r = with_token(d.addr, &admin, "GET", "/audit?limit=50", None);
    assert_eq!(r.status, 200, "{}", r.text);
    let audit = r.body["records"].as_array().expect("records").clone();
    let find = |action: &str| {
        audit
            .iter()
            .find(|x| x["action"] == action)
            .cloned()
            .unwrap_or_else(|| panic!("no {action} record in {audit:?}"))
    };
    let a = find("acknowledged");
    assert_eq!(
        (a["actor"].as_str(), a["details"]["token"].as_str()),
        (Some("Dana"), Some("oncall"))
    );
    let s = find("silence_created");
    assert_eq!(s["details"]["token"], "oncall");
    let c = audit
        .iter()
        .find(|x| {
            x["action"] == "token_created"
                && x["comment"]
                    .as_str()
                    .is_some_and(|c| c.starts_with("oncall"))
        })
        .expect("oncall's creation");
    assert_eq!(c["details"]["token"], "admin");
    assert_eq!(find("token_revoked")["comment"], "pusher (ingest)");
    let b = find("sign_in_blocked");
    assert!(
        b["comment"].as_str().expect("why").contains("127.0.0.1"),
        "{b}"
    );
    // No secret anywhere in the trail.
    let text = serde_json::to_string(&audit).expect("json");
    assert!(!text.contains(&operator) && !text.contains(&admin) && !text.contains(&ingest));

    // The export: the same trail as JSON Lines, oldest first, each line
    // chained to the one before it.
    let r = with_token(d.addr, &admin, "GET", "/audit/export", None);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.headers["content-type"], "application/x-ndjson");
    let lines: Vec<Value> = r
        .text
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON record per line"))
        .collect();
    assert!(lines.len() >= audit.len(), "{} lines", lines.len());
    let mut prev = "0".repeat(64);
    for l in &lines {
        assert_eq!(l["prev_hash"], prev.as_str(), "{l}");
        prev = l["hash"].as_str().expect("hash").to_string();
    }
    let r = with_token(d.addr, &admin, "GET", "/audit/export?after=3", None);
    assert_eq!(r.text.lines().count(), lines.len() - 3);
    assert!(r.text.starts_with(r#"{"seq":4,"#), "{}", r.text);
    let r = with_token(d.addr, &admin, "GET", "/audit/export?after=x", None);
    assert_eq!(r.status, 400);
    assert!(r.body["error"].as_str().expect("error").contains("after"));

    // `audit verify` works offline: refused while the daemon holds the
    // database, then the whole chain checked.
    let verify = || {
        binary()
            .args(["audit", "verify", "--data-dir"])
            .arg(&data)
            .output()
            .expect("run audit verify")
    };
    let out = verify();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(err.contains("in use"), "{err}");
    d.stop().expect("stop");
    let out = verify();
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{said} {:?}", out.stderr);
    let records = format!("intact: {} record(s)", lines.len());
    assert!(said.contains(&records) && said.contains(&prev), "{said}");

    // One byte of one record changed: the verification names that record.
    {
        let db = mlsec_monitor::store::open_state_db(&data).expect("db");
        let tree = db.open_tree("audit").expect("tree");
        let key = 3u64.to_be_bytes();
        let mut v = tree.get(key).expect("get").expect("record 3").to_vec();
        let last = v.len() - 1;
        v[last] ^= 1;
        tree.insert(key, v).expect("tamper");
        db.flush().expect("flush");
    }
    let out = verify();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("broken: record 3:"), "{err}");
}

#[test]
fn a_pushed_up_zero_raised_a_critical_alert_for_a_service_that_does_not_exist() {
    let d = Daemon::start(&[("AUTH", "on")]);
    let admin = admin_token(&d);
    let ingest = bearer(&create(&d, &admin, "svc", "ingest", None));
    for (metric, owner) in [
        ("up", "the health checks"),
        ("response_time_ms", "the health checks"),
        ("cpu_usage_percent", "the system collector"),
        ("models", "the ML platform state"),
        ("training_job_stale", "the ML platform state"),
        ("http_requests", "the request statistics"),
    ] {
        let body =
            json!({"samples": [{"metric": metric, "labels": {"service": "x"}, "value": 0.0}]});
        let r = send(
            d.addr,
            "POST",
            "/ingest/metrics",
            &[("authorization", &ingest)],
            Some(&body),
        );
        assert_eq!(r.status, 400, "{metric}: {}", r.text);
        let e = r.body["error"].as_str().expect("error");
        assert!(
            e.contains(&format!("metric '{metric}' is reserved")) && e.contains(owner),
            "{e}"
        );
    }
    // No alert came of it.
    let a = with_token(d.addr, &admin, "GET", "/alerts", None);
    assert_eq!(a.body["total_count"], 0, "{}", a.text);
    // Pushed per-service resources stay allowed (the README's fallback), and
    // an admin may import history into a reserved series.
    let body = json!({"samples": [{"metric": "service_cpu_usage_percent", "labels": {"service": "x"}, "value": 5.0}]});
    let r = send(
        d.addr,
        "POST",
        "/ingest/metrics",
        &[("authorization", &ingest)],
        Some(&body),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let old = (chrono::Utc::now() - chrono::Duration::days(2)).to_rfc3339();
    let body =
        json!({"samples": [{"metric": "cpu_usage_percent", "value": 5.0, "timestamp": old}]});
    let r = with_token(d.addr, &admin, "POST", "/ingest/metrics", Some(&body));
    assert_eq!(r.status, 200, "{}", r.text);
}
