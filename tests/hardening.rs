//! Hardening (issue "Hardening"), over real HTTP: values that would wrap
//! or overflow are refused, a value from outside cannot forge a log line,
//! slow and idle connections are closed, and the server keeps HTTP's
//! manners (405 with `Allow`, `HEAD`, JSON only as JSON).

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;

#[test]
fn counters_wrapped_and_huge_values_turned_sums_into_null() {
    let d = Daemon::start(&[]);
    for _ in 0..3 {
        let r = d.post(
            "/ingest/requests",
            &json!({"service": "api", "aggregate": {"count": u64::MAX, "errors": 0}}),
        );
        assert_eq!(r.status, 400, "{}", r.text);
        assert!(r.text.contains("aggregate.count"), "{}", r.text);
    }
    let r = d.post(
        "/ingest/requests",
        &json!({"service": "api", "requests": [{"duration_ms": 1e308, "status": 200}]}),
    );
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.text.contains("requests[0].duration_ms"), "{}", r.text);
    for name in ["a", "b"] {
        let r = d.post(
            "/ingest/models",
            &json!({"name": name, "status": "loaded", "progress": 100.0, "memory_usage_mb": 1e308}),
        );
        assert_eq!(r.status, 400, "{}", r.text);
        assert!(r.text.contains("memory_usage_mb"), "{}", r.text);
    }
    let r = d.post(
        "/ingest/training",
        &json!({"job_id": "j", "model_name": "m", "status": "running", "progress": 1.0,
                "started_at": chrono::Utc::now().to_rfc3339(),
                "resource_usage": {"cpu_usage": 1e308, "memory_usage_mb": 1.0}}),
    );
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.text.contains("resource_usage.cpu_usage"), "{}", r.text);
    // The largest accepted values add up without wrapping or overflowing.
    for _ in 0..3 {
        let r = d.post(
            "/ingest/requests",
            &json!({"service": "api", "aggregate": {"count": 1_000_000_000_000u64, "errors": 0}}),
        );
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let s = d.get("/metrics/summary?time_range=1h").body;
    assert_eq!(s["total_requests"], 3_000_000_000_000u64, "{s}");
    for name in ["a", "b"] {
        let r = d.post(
            "/ingest/models",
            &json!({"name": name, "status": "loaded", "progress": 100.0, "memory_usage_mb": 1e9}),
        );
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let m = d.get("/model-loading-status").body;
    assert_eq!(m["total_memory_usage_mb"], 2e9, "{m}");
    // Gauge sums saturate rather than become infinite (a mean stays a number).
    let r = d.post(
        "/ingest/metrics",
        &json!({"samples": [{"metric": "huge", "value": 1.7e308}, {"metric": "huge", "value": 1.7e308}]}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let r = d.get("/metrics/detailed?metric=huge&time_range=1h&granularity=1m");
    let avg = r.body["series"][0]["points"]
        .as_array()
        .expect("points")
        .iter()
        .find_map(|p| p["avg"].as_f64());
    assert!(avg.is_some_and(f64::is_finite), "{}", r.text);
}

#[test]
fn a_label_value_with_a_newline_and_an_escape_forged_a_log_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("rules.toml");
    std::fs::write(
        &cfg,
        "[[rules]]\nname = \"queue_high\"\nmetric = \"queue_depth\"\naggregation = \"last\"\nwindow = 60\nthreshold = 10\nseverity = \"warning\"\n",
    )
    .expect("config");
    let cfg = cfg.display().to_string();
    let p = Process::spawn(
        &dir.path().join("data"),
        &[
            ("CONFIG_FILE", cfg.as_str()),
            ("ALERT_EVALUATION_INTERVAL", "0.2"),
        ],
    );
    let forged = "x\n2026-01-01T00:00:00Z ERROR forged line \u{1b}[31mred";
    let r = post_json(
        p.addr,
        "/ingest/metrics",
        &json!({"samples": [{"metric": "queue_depth", "labels": {"service": forged}, "value": 50.0}]}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let mut lines = Vec::new();
    let fired = wait_for(Duration::from_secs(15), || {
        while let Ok(l) = p.lines.recv_timeout(Duration::from_millis(100)) {
            lines.push(l);
        }
        lines.iter().find(|l| l.contains("forged line")).cloned()
    });
    assert!(fired.contains("service=x\\n2026"), "{fired}");
    assert!(fired.contains("\\x1b[31m"), "{fired}");
    assert!(
        !lines
            .iter()
            .any(|l| l.starts_with("2026-01-01T00:00:00Z ERROR"))
    );
    assert!(!lines.iter().any(|l| l.contains('\u{1b}')), "no raw escape");
    assert_eq!(p.terminate(), 0);
}

#[test]
fn a_detailed_query_over_many_series_returned_hundreds_of_megabytes() {
    let d = Daemon::start(&[]);
    // One sample in each of 100 series.
    let samples: Vec<_> = (0..100)
        .map(|i| json!({"metric": "wide", "labels": {"n": i.to_string()}, "value": 1.0}))
        .collect();
    assert_eq!(
        d.post("/ingest/metrics", &json!({"samples": samples}))
            .status,
        200
    );
    // 7 days at one minute: 100 series x 10,080 points is over the cap.
    let r = d.get("/metrics/detailed?metric=wide&time_range=7d&granularity=1m");
    assert_eq!(r.status, 400, "{}", &r.text[..r.text.len().min(300)]);
    let e = r.body["error"].as_str().expect("error");
    assert!(
        e.contains("1008000 points") && e.contains("granularity=5m"),
        "{e}"
    );
    // What it names fits.
    let r = d.get("/metrics/detailed?metric=wide&time_range=7d&granularity=5m");
    assert_eq!(r.status, 200);
    assert!(r.text.len() < 40 << 20, "{} bytes", r.text.len());
}

#[test]
fn the_data_directory_and_its_files_followed_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    // Started with umask 000, as a careless service manager might.
    let bin = env!("CARGO_BIN_EXE_mlsec-monitor");
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("umask 000 && exec {bin} serve"))
        .env("DATA_DIR", &data)
        .env("SERVICE_HOST", "127.0.0.1")
        .env("SERVICE_PORT", "0")
        .env("FLUSH_INTERVAL", "0.2")
        .env("SYSTEM_METRICS_INTERVAL", "1")
        .env_remove("CONFIG_FILE")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    // Once the first-run token and a flush or two are on disk.
    wait_for(Duration::from_secs(20), || {
        data.join("admin.token").exists().then_some(())
    });
    std::thread::sleep(Duration::from_millis(1_500));
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let mut seen = 0;
    let mut stack = vec![data.clone()];
    while let Some(p) = stack.pop() {
        let meta = std::fs::metadata(&p).expect("meta");
        let mode = meta.permissions().mode() & 0o777;
        if meta.is_dir() {
            assert_eq!(mode, 0o700, "{}", p.display());
            stack.extend(
                std::fs::read_dir(&p)
                    .expect("dir")
                    .flatten()
                    .map(|e| e.path()),
            );
        } else {
            assert_eq!(mode & 0o077, 0, "{} is {mode:o}", p.display());
        }
        seen += 1;
    }
    assert!(seen > 5, "only {seen} entries");
}

/// A raw connection that sends `bytes` and then nothing more.
fn half_request(addr: std::net::SocketAddr, bytes: &[u8]) -> std::net::TcpStream {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.write_all(bytes).expect("write");
    s
}

/// Reads until the server closes the connection; how long that took and
/// what it sent.
fn until_closed(mut s: std::net::TcpStream, limit: Duration) -> (Duration, String) {
    use std::io::Read;
    let started = std::time::Instant::now();
    s.set_read_timeout(Some(limit)).expect("timeout");
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    (started.elapsed(), String::from_utf8_lossy(&got).to_string())
}

#[test]
fn half_sent_requests_held_their_connections_forever() {
    let d = Daemon::start(&[
        ("HTTP_HEADER_TIMEOUT", "1"),
        ("HTTP_REQUEST_TIMEOUT", "1"),
        ("HTTP_MAX_CONNECTIONS", "20"),
    ]);
    // Thirty connections that send half their headers: more than the cap.
    let slow: Vec<_> = (0..30)
        .map(|_| half_request(d.addr, b"GET /health HTTP/1.1\r\nHost: x\r\n"))
        .collect();
    // /health still answers (the slow ones are cut at the header timeout,
    // the ones past the cap wait in the backlog until then).
    let started = std::time::Instant::now();
    assert_eq!(d.get("/health").status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    for s in slow {
        let (took, _) = until_closed(s, Duration::from_secs(10));
        assert!(
            took < Duration::from_secs(5),
            "a slow header held on for {took:?}"
        );
    }
    // An idle keep-alive connection is closed after the same time.
    let idle = half_request(d.addr, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    let (took, answer) = until_closed(idle, Duration::from_secs(10));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(took < Duration::from_secs(5), "idle for {took:?}");
    // A body that never arrives: 408 after HTTP_REQUEST_TIMEOUT.
    let body = half_request(
        d.addr,
        b"POST /ingest/metrics HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"samples\"",
    );
    let (took, answer) = until_closed(body, Duration::from_secs(10));
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("HTTP_REQUEST_TIMEOUT"), "{answer}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn the_open_file_limit_is_raised_and_the_connection_cap_kept_below_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = Process::spawn_after("ulimit -Sn 256 && ulimit -Hn 400", dir.path(), &[]);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", p.child.id())).expect("limits");
    let files = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("open files line");
    let numbers: Vec<&str> = files.split_whitespace().skip(3).take(2).collect();
    assert_eq!(numbers, ["400", "400"], "{files}");
    let lowered = p
        .startup
        .iter()
        .find(|l| l.contains("HTTP_MAX_CONNECTIONS lowered"))
        .expect("the cap lowered, in the log");
    assert!(lowered.contains("max_connections=144"), "{lowered}");
    assert_eq!(get(p.addr, "/health").status, 200);
}

#[test]
fn http_manners_405_names_the_methods_head_works_and_jsonx_is_not_json() {
    let d = Daemon::start(&[]);
    let r = request(d.addr, "DELETE", "/health", &[]);
    assert_eq!(r.status, 405);
    assert_eq!(r.headers["allow"], "GET, HEAD, OPTIONS");
    assert!(r.body["error"].is_string(), "{}", r.text);
    let r = request(d.addr, "PUT", "/silences", &[]);
    assert_eq!(
        (r.status, r.headers["allow"].as_str()),
        (405, "GET, POST, HEAD, OPTIONS")
    );
    // HEAD wherever GET works: the same status and headers, no body.
    for path in ["/health", "/alerts", "/charts/system-metrics", "/ui"] {
        let get = d.get(path);
        let head = request(d.addr, "HEAD", path, &[]);
        assert_eq!(head.status, get.status, "{path}");
        assert_eq!(
            head.headers.get("content-type"),
            get.headers.get("content-type")
        );
        assert!(head.text.is_empty(), "{path}: {}", head.text);
    }
    let r = post_raw(
        d.addr,
        "/ingest/metrics",
        "application/jsonx",
        br#"{"samples": []}"#,
    );
    assert_eq!(r.status, 415, "{}", r.text);
    let r = post_raw(
        d.addr,
        "/ingest/metrics",
        "Application/JSON; charset=utf-8",
        br#"{"samples": []}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text);
}

/// Writes state that names a tenant: a metric label, a model, a training
/// job and a silence's comment.
fn write_tenant_state(d: &Daemon) {
    let r = d.post(
        "/ingest/metrics",
        &json!({"samples": [{"metric": "zebra_queue_depth", "labels": {"tenant": "acme-confidential"}, "value": 42.0}]}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let r = d.post(
        "/ingest/models",
        &json!({"name": "acme-confidential-fraud", "status": "loaded", "progress": 100.0, "memory_usage_mb": 512.0}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let r = d.post(
        "/ingest/training",
        &json!({"job_id": "acme-confidential-job", "model_name": "acme-confidential-fraud",
                "status": "running", "progress": 10.0, "started_at": chrono::Utc::now().to_rfc3339(),
                "resource_usage": {"cpu_usage": 50.0, "memory_usage_mb": 100.0}}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let ends = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let r = d.post(
        "/silences",
        &json!({"matchers": {"tenant": "acme-confidential"}, "ends_at": ends,
                "created_by": "amy", "comment": "acme-confidential maintenance"}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
}

/// The files under `dir` (but the admin token) holding `needle`.
fn files_holding(dir: &std::path::Path, needle: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        for e in std::fs::read_dir(&p)
            .expect("a directory")
            .map(|e| e.expect("an entry"))
        {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else if e.file_name() != "admin.token" {
                let bytes = std::fs::read(&path).expect("read the file");
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    out.push(path.display().to_string());
                }
            }
        }
    }
    out
}

/// `serve` that must stop at start: its output, or a panic after 30 s.
fn serve_refused(data: &std::path::Path, env: &[(&str, &str)]) -> String {
    let mut cmd = binary();
    cmd.arg("serve").env_clear();
    for (k, v) in base_env(data) {
        cmd.env(k, v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn serve");
    let end = std::time::Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > end {
            let _ = child.kill();
            panic!("serve started where it must refuse");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("its output");
    assert!(!out.status.success());
    String::from_utf8_lossy(&[out.stdout, out.stderr].concat()).into_owned()
}

#[test]
fn encryption_at_rest_leaves_no_clear_name_on_disk_and_a_wrong_key_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("key");
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .unwrap();
    std::fs::write(&key, bytes).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let key_s = key.display().to_string();
    let with_key = [("ENCRYPTION_KEY_FILE", key_s.as_str())];

    // The control: without a key the names are on disk as they are.
    let clear = tmp.path().join("clear");
    let d = Daemon::start_in(&clear, &[]);
    write_tenant_state(&d);
    d.stop().unwrap();
    assert!(!files_holding(&clear, b"acme-confidential").is_empty());
    let out = serve_refused(&clear, &with_key);
    assert!(out.contains("created without encryption"), "{out}");

    let data = tmp.path().join("sealed");
    let d = Daemon::start_in(&data, &with_key);
    write_tenant_state(&d);
    d.stop().unwrap();
    for needle in [
        &b"acme-confidential"[..],
        b"zebra_queue_depth",
        b"maintenance",
    ] {
        let found = files_holding(&data, needle);
        assert!(
            found.is_empty(),
            "{} in {found:?}",
            String::from_utf8_lossy(needle)
        );
    }

    // Read back whole with the key (access control on: a token's name is
    // a key of its tree).
    let auth_on = [with_key[0], ("AUTH", "on")];
    let d = Daemon::start_in(&data, &auth_on);
    let admin = admin_token(&d);
    let viewer = create(&d, &admin, "acme-confidential-grafana", "viewer", None);
    assert_eq!(d.get("/health").body["store"]["encrypted"], true);
    // A backup holds the values as stored, encrypted; it restores with the key.
    let archive = tmp.path().join("backup.mlsb");
    let token_file = data.join("admin.token");
    let (code, err) = backup_via_cli(&d, &token_file, &archive);
    assert_eq!(code, 0, "{err}");
    let restored = tmp.path().join("restored");
    let (code, err) = restore_via_cli(&archive, &restored, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        stored_sequence(d.addr, "zebra_queue_depth", Some(&viewer)),
        (1, 42)
    );
    let read = |addr, path: &str| {
        with_token(addr, &viewer, "GET", path, None)
            .body
            .to_string()
    };
    let models = read(d.addr, "/model-loading-status");
    assert!(models.contains("acme-confidential-fraud"), "{models}");
    let jobs = read(d.addr, "/training-status");
    assert!(jobs.contains("acme-confidential-job"), "{jobs}");
    let silences = read(d.addr, "/silences");
    assert!(
        silences.contains("acme-confidential maintenance"),
        "{silences}"
    );
    d.stop().unwrap();
    let holding = files_holding(tmp.path(), b"acme-confidential");
    assert!(holding.iter().all(|f| f.contains("/clear/")), "{holding:?}");
    let r = Daemon::start_in(&restored, &auth_on);
    let models = read(r.addr, "/model-loading-status");
    assert!(models.contains("acme-confidential-fraud"), "{models}");
    r.stop().unwrap();
    let (code, out, err) = run_cli(
        &["audit", "verify"],
        &[
            ("DATA_DIR", &data.display().to_string()),
            ("ENCRYPTION_KEY_FILE", &key_s),
        ],
    );
    assert_eq!(code, 0, "{out}{err}");

    // Another key, or none, stops start-up with the reason; nothing is read.
    let other = tmp.path().join("other");
    std::fs::write(&other, [7u8; 32]).unwrap();
    std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = serve_refused(
        &data,
        &[("ENCRYPTION_KEY_FILE", &other.display().to_string())],
    );
    assert!(out.contains("another key"), "{out}");
    let out = serve_refused(&data, &[]);
    assert!(
        out.contains("is encrypted: set ENCRYPTION_KEY_FILE"),
        "{out}"
    );
    let (code, out, err) = run_cli(
        &["audit", "verify"],
        &[("DATA_DIR", &data.display().to_string())],
    );
    assert_ne!(code, 0, "{out}{err}");
    // A key file others may read is refused too.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
    let out = serve_refused(&data, &with_key);
    assert!(out.contains("chmod 600"), "{out}");
}
