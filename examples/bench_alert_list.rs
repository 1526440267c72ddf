//! `GET /alerts` beside Alertmanager's `GET /api/v2/alerts`, side by side in
//! one run (`cargo build --release && cargo run --release --example
//! bench_alert_list`; needs `apt-get install prometheus-alertmanager wrk`):
//!
//! 1. both lists empty: `wrk -t2 -c32 -d10s` on each, alternating, twice;
//! 2. 1,000 open alerts in each (pushed to Alertmanager's API; fired in the
//!    daemon by a rule over 1,000 pushed series): the same, our list asked
//!    for all of them (`limit=1000`).
//!
//! Prints successful answers per second of each run and the ratio of the
//! means. Alertmanager runs with `--web.get-concurrency=32` (one per wrk
//! connection); errors it still answers are not counted.

#[path = "support/mod.rs"]
mod support;

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ALERTS: usize = 1000;

fn start_alertmanager(dir: &std::path::Path) -> (Child, u16) {
    let cfg = dir.join("am.yml");
    std::fs::write(
        &cfg,
        "route:\n  receiver: none\nreceivers:\n  - name: none\n",
    )
    .expect("am config");
    let port = support::free_port();
    let bin = ["/usr/bin/prometheus-alertmanager", "/usr/bin/alertmanager"]
        .into_iter()
        .find(|p| std::path::Path::new(p).is_file())
        .expect("apt-get install prometheus-alertmanager");
    let child = Command::new(bin)
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.path={}", dir.join("am").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        // As many concurrent GETs as wrk opens connections (the default,
        // GOMAXPROCS, turns the rest away).
        .arg("--web.get-concurrency=32")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start alertmanager");
    support::wait_ready(
        &format!("http://127.0.0.1:{port}/-/ready"),
        "alertmanager",
        20,
    );
    (child, port)
}

/// Two alternating rounds; returns the means (ours, Alertmanager's).
fn side_by_side(what: &str, ours: &str, am: &str) -> (f64, f64) {
    let (mut o, mut a) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        o.push(support::wrk_rate(ours, 32, true));
        a.push(support::wrk_rate(am, 32, false));
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (mo, ma) = (mean(&o), mean(&a));
    println!(
        "{what}: ours {:.0} req/s ({}), Alertmanager {:.0} req/s ({}): {:.1}x",
        mo,
        o.iter()
            .map(|v| format!("{v:.0}"))
            .collect::<Vec<_>>()
            .join(", "),
        ma,
        a.iter()
            .map(|v| format!("{v:.0}"))
            .collect::<Vec<_>>()
            .join(", "),
        mo / ma
    );
    (mo, ma)
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut am, am_port) = start_alertmanager(dir.path());

    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        "[[rules]]\nname = \"bench_high\"\nmetric = \"bench_level\"\naggregation = \"last\"\n\
         window = 300\nthreshold = 0.5\nseverity = \"warning\"\n",
    )
    .expect("rules");
    let data = dir.path().join("ours");
    let (mut ours, addr) = support::spawn_daemon(
        &["serve"],
        &[
            ("DATA_DIR", data.as_os_str()),
            ("CONFIG_FILE", rules.as_os_str()),
            ("ALERT_EVALUATION_INTERVAL", "1".as_ref()),
        ],
    );
    let ours_url = format!("http://{addr}/alerts?limit=1000");
    let am_url = format!("http://127.0.0.1:{am_port}/api/v2/alerts");

    side_by_side("empty lists", &ours_url, &am_url);

    // 1,000 open alerts in each.
    let now = chrono::Utc::now();
    let alerts: Vec<serde_json::Value> = (0..ALERTS)
        .map(|i| {
            serde_json::json!({
                "labels": {"alertname": "bench_high", "id": i.to_string(), "severity": "warning"},
                "annotations": {"summary": format!("bench_level {i} above 0.5")},
                "startsAt": now.to_rfc3339(),
                "endsAt": (now + chrono::Duration::hours(1)).to_rfc3339(),
            })
        })
        .collect();
    let r = support::agent()
        .post(&am_url)
        .header("content-type", "application/json")
        .send(serde_json::Value::from(alerts).to_string())
        .expect("post to alertmanager");
    assert_eq!(r.status(), 200, "alertmanager took the alerts");
    let samples: Vec<serde_json::Value> = (0..ALERTS)
        .map(|i| serde_json::json!({"metric": "bench_level", "labels": {"id": i.to_string()}, "value": 1.0}))
        .collect();
    let r = support::agent()
        .post(&format!("http://{addr}/ingest/metrics"))
        .header("content-type", "application/json")
        .send(serde_json::json!({ "samples": samples }).to_string())
        .expect("push samples");
    assert_eq!(r.status(), 200, "the daemon took the samples");
    let started = Instant::now();
    loop {
        let body: serde_json::Value = support::agent()
            .get(&format!("http://{addr}/alerts?status=active&limit=1"))
            .call()
            .ok()
            .and_then(|mut r| r.body_mut().read_to_string().ok())
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        if body["total_count"].as_u64().unwrap_or(0) >= ALERTS as u64 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the alerts did not fire: {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let am_count = support::agent()
        .get(&am_url)
        .call()
        .ok()
        .and_then(|mut r| r.body_mut().read_to_string().ok())
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v.as_array().map(Vec::len))
        .unwrap_or(0);
    println!("{ALERTS} alerts open in each (Alertmanager lists {am_count})");
    let _ = std::io::stdout().flush();
    side_by_side("1,000 open alerts, all listed", &ours_url, &am_url);

    let _ = ours.kill();
    let _ = am.kill();
    let _ = ours.wait();
    let _ = am.wait();
}
