//! The real binary: exit codes, configuration errors, the data-directory
//! lock, JSON logs and graceful shutdown on SIGTERM.

mod common;

use common::*;
use serde_json::{Value, json};
use std::time::Duration;

/// Runs the binary with a clean environment plus `env`; returns (code, stdout, stderr).
fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    run_cli(args, env)
}

#[test]
fn version_prints_the_crate_version() {
    let (code, out, _) = run(&["version"], &[]);
    assert_eq!(code, 0);
    assert_eq!(
        out.trim(),
        format!("mlsec-monitor {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn invalid_settings_stop_start_up_with_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let unknown = dir.path().join("unknown.toml");
    std::fs::write(&unknown, "service_port = 8006\nretention = 3\n").unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec!["serve"],
            vec![("SERVICE_PORT", "abc")],
            "SERVICE_PORT: 'abc'",
        ),
        (
            vec!["serve"],
            vec![("HEALTH_CHECK_INTERVAL", "0")],
            "HEALTH_CHECK_INTERVAL",
        ),
        (
            vec!["serve"],
            vec![("SYSTEM_METRICS_INTERVAL", "-1")],
            "SYSTEM_METRICS_INTERVAL",
        ),
        (
            vec!["serve"],
            vec![("CONFIG_FILE", "/nonexistent/c.toml")],
            "cannot read it",
        ),
        (
            vec!["serve", "--config", unknown.to_str().unwrap()],
            vec![],
            "unknown field `retention`",
        ),
        (vec!["serve", "--port", "99999"], vec![], "--port: '99999'"),
        (vec!["config"], vec![("LOG_LEVEL", "chatty")], "LOG_LEVEL"),
    ];
    for (args, mut env, needle) in cases {
        env.push(("DATA_DIR", data));
        let (code, out, err) = run(&args, &env);
        assert_eq!(code, 2, "{args:?} {env:?}: {err}");
        assert!(out.is_empty(), "{out}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(err.contains(needle), "{err:?} should contain {needle:?}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn config_prints_the_effective_settings_with_secrets_masked() {
    let (code, out, _) = run(
        &["config", "--port", "9100"],
        &[
            ("DATABASE_URL", "postgres://mon:hunter2@db:5432/mlsec"),
            ("REDIS_URL", "redis://:s3cret@cache:6379/0"),
            ("METRICS_RETENTION_DAYS", "14"),
        ],
    );
    assert_eq!(code, 0);
    assert!(out.contains("service_port = 9100"), "{out}");
    assert!(out.contains("metrics_retention_days = 14"), "{out}");
    assert!(out.contains("postgres://mon:***@db:5432/mlsec"), "{out}");
    assert!(!out.contains("hunter2") && !out.contains("s3cret"), "{out}");
    // The output is itself a valid config file.
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("c.toml");
    std::fs::write(&f, &out).unwrap();
    let (code, again, err) = run(&["config", "--config", f.to_str().unwrap()], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(again.contains("service_port = 9100"));
}

#[test]
fn config_prints_every_setting_rules_channels_routes_and_escalation() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("full.toml");
    std::fs::write(
        &f,
        r#"
model_stale_after = 900
network_interfaces_exclude = "docker*,veth*"
public_read = true
http_max_connections = 100

[[services]]
name = "api"
kind = "http"
target = "http://u:pw@127.0.0.1:9/health"
process = { name = "api-server" }

[[rules]]
name = "queue_high"
metric = "queue_depth"
labels = { queue = "!scratch" }
aggregation = "max"
threshold = 10
for = 30
severity = "warning"
message = "queue {value}"

[[channels]]
name = "chat"
kind = "slack"
url = "https://hooks.slack.com/services/T0/B0/slacksecret"

[[channels]]
name = "hook"
kind = "webhook"
url = "https://hooks.example/in?token=hooksecret"

[[routes]]
severity = "critical"
channels = ["chat", "hook"]

[escalation]
after = 600
channels = ["hook"]
"#,
    )
    .unwrap();
    let (code, out, err) = run(&["config", "--config", f.to_str().unwrap()], &[]);
    assert_eq!(code, 0, "{err}");
    for needle in [
        "model_stale_after = 900.0",
        "network_interfaces_exclude = \"docker*,veth*\"",
        "public_read = true",
        "http_max_connections = 100",
        "http_header_timeout = 10.0",
        "auth_failure_limit = 10",
        "[[rules]]",
        "name = \"queue_high\"",
        "for = 30.0",
        "queue = \"!scratch\"",
        "[[channels]]",
        "url = \"https://hooks.slack.com/***\"",
        "url = \"https://hooks.example/in?token=***\"",
        "[[routes]]",
        "[escalation]",
        "after = 600.0",
        "name = \"api-server\"",
        "target = \"http://u:***@127.0.0.1:9/health\"",
    ] {
        assert!(out.contains(needle), "{needle} missing in:\n{out}");
    }
    for secret in ["slacksecret", "hooksecret", ":pw@"] {
        assert!(!out.contains(secret), "{secret} shown:\n{out}");
    }
    // What it prints is a config file that prints the same again.
    let printed = dir.path().join("printed.toml");
    std::fs::write(&printed, &out).unwrap();
    let (code, again, err) = run(&["config", "--config", printed.to_str().unwrap()], &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(again, out);
}

#[test]
fn install_sh_writes_a_private_config_and_a_hardened_unit() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("p");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/install.sh");
    // Started with umask 000: the modes must not follow it.
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "umask 000 && {script} --prefix {} --binary {}",
            prefix.display(),
            env!("CARGO_BIN_EXE_mlsec-monitor")
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let conf = prefix.join("etc/mlsec-monitor/config.toml");
    let data = prefix.join("var/lib/mlsec-monitor");
    assert_eq!(mode(&conf), 0o640);
    assert_eq!(mode(&prefix.join("etc/mlsec-monitor")), 0o750);
    assert_eq!(mode(&data), 0o700);
    // The config is every setting, commented, and valid as it is.
    let text = std::fs::read_to_string(&conf).unwrap();
    for line in [
        "# http_header_timeout = 10.0",
        "# auth = true",
        "# service_port = 8006",
    ] {
        assert!(text.contains(line), "{line} missing:\n{text}");
    }
    assert!(
        text.contains(&format!("data_dir = \"{}\"", data.display())),
        "{text}"
    );
    let (code, printed, err) = run(&["config", "--config", conf.to_str().unwrap()], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(printed.contains(&format!("data_dir = \"{}\"", data.display())));
    // The unit: its own user, only the data directory writable.
    let unit =
        std::fs::read_to_string(prefix.join("lib/systemd/system/mlsec-monitor.service")).unwrap();
    for line in [
        "User=mlsec-monitor",
        "UMask=0077",
        "LimitNOFILE=65536",
        "NoNewPrivileges=true",
        "ProtectSystem=strict",
        &format!("ReadWritePaths={}", data.display()),
        "ExecReload=/bin/kill -HUP $MAINPID",
    ] {
        assert!(unit.lines().any(|l| l == line), "{line} missing:\n{unit}");
    }
    // Again: the config is kept as it is.
    std::fs::write(
        &conf,
        format!("data_dir = \"{}\"\nservice_port = 9999\n", data.display()),
    )
    .unwrap();
    let again = std::process::Command::new(script)
        .args([
            "--prefix",
            prefix.to_str().unwrap(),
            "--binary",
            env!("CARGO_BIN_EXE_mlsec-monitor"),
        ])
        .output()
        .unwrap();
    assert!(again.status.success());
    assert!(std::fs::read_to_string(&conf).unwrap().contains("9999"));
    assert_eq!(mode(&conf), 0o640);
}

#[test]
fn a_second_daemon_on_the_same_data_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first = Process::spawn(dir.path(), &[]);
    let (code, _, err) = run(
        &["serve"],
        &[
            ("DATA_DIR", dir.path().to_str().unwrap()),
            ("SERVICE_HOST", "127.0.0.1"),
            ("SERVICE_PORT", "0"),
        ],
    );
    assert_eq!(code, 1);
    assert!(err.contains("data directory is in use"), "{err}");
    assert_eq!(
        get(first.addr, "/").status,
        200,
        "the first daemon is unharmed"
    );
}

#[test]
fn sigterm_finishes_flushes_and_exits_0_with_json_logs() {
    let dir = tempfile::tempdir().unwrap();
    // A long flush interval: only the shutdown flush can save the sample.
    let p = Process::spawn(
        dir.path(),
        &[("LOG_FORMAT", "json"), ("FLUSH_INTERVAL", "3600")],
    );
    let ts = (chrono::Utc::now() - chrono::Duration::minutes(3)).to_rfc3339();
    let r = post_json(
        p.addr,
        "/ingest/metrics",
        &json!({"samples": [{"metric": "kept", "value": 7.0, "timestamp": ts}]}),
    );
    assert_eq!(r.status, 200);
    assert_eq!(p.terminate(), 0);
    // Answered requests are logged at debug level.
    let q = Process::spawn(
        dir.path(),
        &[("LOG_FORMAT", "json"), ("LOG_LEVEL", "debug")],
    );
    let r = get(
        q.addr,
        "/metrics/detailed?metric=kept&time_range=1h&granularity=1m",
    );
    let pts = r.body["series"][0]["points"]
        .as_array()
        .expect("series kept")
        .clone();
    assert!(pts.iter().any(|p| p["avg"] == 7.0), "{}", r.text);
    let line = std::iter::from_fn(|| q.lines.recv_timeout(Duration::from_secs(5)).ok())
        .find(|l| l.contains("/metrics/detailed"))
        .expect("a request log line");
    let v: Value = serde_json::from_str(&line).expect("JSON log line");
    assert_eq!(v["method"], "GET");
    assert_eq!(v["path"], "/metrics/detailed");
    assert_eq!(v["status"], 200);
    assert!(v["duration_ms"].as_f64().is_some());
}

#[test]
fn the_shipped_platform_registry_is_valid_and_bad_entries_are_named() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/platform.toml");
    let (code, out, err) = run(&["--config", example, "config"], &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.matches("[[services]]").count(), 5, "{out}");
    let dir = tempfile::tempdir().unwrap();
    for (body, needle) in [
        (
            "[[services]]\nname = \"a\"\nkind = \"smtp\"\ntarget = \"x:1\"\n",
            "services[0] (\"a\"): unknown kind 'smtp'",
        ),
        (
            "[[services]]\nname = \"a\"\nkind = \"http\"\ntarget = \"http://h/\"\ndepends_on = [\"b\"]\n",
            "depends_on names unknown service 'b'",
        ),
        (
            "[[services]]\nname = \"a\"\nkind = \"http\"\ntarget = \"http://h/\"\ncolour = 1\n",
            "unknown field `colour`",
        ),
    ] {
        let f = dir.path().join("bad.toml");
        std::fs::write(&f, body).unwrap();
        let (code, _, err) = run(&["--config", f.to_str().unwrap(), "serve"], &[]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(needle), "{err:?} should contain {needle:?}");
        let (code, _, _) = run(&["--config", f.to_str().unwrap(), "check"], &[]);
        assert_eq!(code, 2);
    }
}

#[test]
fn rules_lists_built_in_and_configured_rules_and_bad_rules_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        "[[rules]]\nname = \"queue_backlog\"\nmetric = \"queue_depth\"\nlabels = { queue = \"ingest\" }\nthreshold = 1000\nseverity = \"warning\"\n",
    )
    .unwrap();
    let (code, out, err) = run(&["--config", good.to_str().unwrap(), "rules"], &[]);
    assert_eq!(code, 0, "{err}");
    for name in [
        "cpu_usage_high",
        "service_unhealthy",
        "collector_stalled",
        "error_rate_high",
        "queue_backlog",
    ] {
        assert!(out.contains(name), "{name} missing from:\n{out}");
    }
    assert!(
        out.contains("queue_depth{queue=\"ingest\"}") && out.contains("(configured)"),
        "{out}"
    );
    for (body, needle) in [
        (
            "[[rules]]\nname = \"r\"\nmetric = \"m\"\nthreshold = 1\nseverity = \"urgent\"\n",
            "rules[0] (\"r\"): unknown severity 'urgent'",
        ),
        (
            "[[rules]]\nname = \"r\"\nmetric = \"m\"\nthreshold = 1\nseverity = \"info\"\naggregation = \"p42\"\n",
            "unknown aggregation 'p42'",
        ),
        (
            "[[channels]]\nname = \"c\"\nkind = \"pager\"\nurl = \"http://x\"\n",
            "channels[0] (\"c\"): unknown kind 'pager'",
        ),
        (
            "[[routes]]\nchannels = [\"nobody\"]\n",
            "routes[0]: unknown channel 'nobody'",
        ),
    ] {
        let f = dir.path().join("bad.toml");
        std::fs::write(&f, body).unwrap();
        let (code, _, err) = run(&["--config", f.to_str().unwrap(), "serve"], &[]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(needle), "{err:?} should contain {needle:?}");
    }
}

#[test]
fn analyze_anomalies_replays_a_csv_and_refuses_bad_input_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.csv");
    let mut text = String::from("timestamp,value\n");
    for i in 0..1200 {
        let v = if i == 1000 {
            90.0
        } else {
            10.0 + (i % 5) as f64
        };
        text += &format!(
            "2014-04-{:02} {:02}:{:02}:00,{v}\n",
            1 + i / 288,
            i % 288 / 12,
            i % 12 * 5
        );
    }
    std::fs::write(&good, &text).unwrap();
    let path = good.display().to_string();
    let (code, out, err) = run(&["analyze", "anomalies", "--input", &path], &[]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1201);
    assert_eq!(lines[0], "timestamp,value,anomaly_score,is_anomaly");
    let flagged: Vec<&&str> = lines.iter().filter(|l| l.ends_with(",1")).collect();
    assert_eq!(flagged.len(), 1, "{flagged:?}");
    assert!(
        flagged[0].starts_with("2014-04-04 11:20:00,90,"),
        "{flagged:?}"
    );
    let (_, again, _) = run(&["analyze", "anomalies", "--input", &path], &[]);
    assert_eq!(again, out, "deterministic");

    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "timestamp,value\n2014-04-01 00:00:00,1\n2014-04-01 00:05:00,x\n",
    )
    .unwrap();
    let (code, out, err) = run(
        &[
            "analyze",
            "anomalies",
            "--input",
            &bad.display().to_string(),
        ],
        &[],
    );
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(
        err.contains("line 3: value 'x' is not a finite number"),
        "{err}"
    );
}

#[test]
fn analyze_forecast_prints_a_row_for_every_row_and_refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.csv");
    let mut text = String::from("timestamp,value\n");
    for i in 0..100 {
        text += &format!(
            "2014-04-01 {:02}:{:02}:00,{}\n",
            i / 12,
            i % 12 * 5,
            10 + i % 3
        );
    }
    std::fs::write(&good, &text).unwrap();
    let path = good.display().to_string();
    let (code, out, err) = run(
        &["analyze", "forecast", "--input", &path, "--horizon", "6"],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 101);
    assert_eq!(
        lines[0],
        "timestamp,value,target_timestamp,forecast,lower,upper"
    );
    assert!(lines[1].ends_with(",,,,"), "{}", lines[1]);
    assert!(
        lines[100].starts_with("2014-04-01 08:15:00,10,2014-04-01 08:45:00,"),
        "{}",
        lines[100]
    );
    let (code, _, err) = run(
        &["analyze", "forecast", "--input", &path, "--horizon", "0"],
        &[],
    );
    assert_eq!(code, 2, "{err}");
    let backwards = dir.path().join("backwards.csv");
    std::fs::write(
        &backwards,
        "timestamp,value\n2014-04-01 00:05:00,1\n2014-04-01 00:00:00,1\n",
    )
    .unwrap();
    let (code, out, err) = run(
        &[
            "analyze",
            "forecast",
            "--input",
            &backwards.display().to_string(),
            "--horizon",
            "1",
        ],
        &[],
    );
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(
        err.contains("line 3: timestamp '2014-04-01 00:00:00' goes backwards"),
        "{err}"
    );
}
