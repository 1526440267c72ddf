//! Alerting benchmarks (`cargo build --release && cargo run --release --example bench_alerts`):
//!
//! 1. 10,000 series and 200 rules: the time of one evaluation cycle;
//! 2. `GET /alerts` against the release daemon with 100,000 stored alerts:
//!    latency percentiles over 2,000 sequential requests, then 500 of
//!    `GET /charts/alerts-timeline` (7 days, every alert counted).

#[path = "support/mod.rs"]
mod support;

use chrono::Utc;
use mlsec_monitor::alerting::engine::Engine;
use mlsec_monitor::alerting::state::AlertState;
use mlsec_monitor::alerting::{Alert, AlertStatus};
use mlsec_monitor::config::alerting::Severity;
use mlsec_monitor::config::{Config, Overrides};
use mlsec_monitor::store::{Sample, SeriesKey, codec};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

fn config(dir: &std::path::Path, rules: usize) -> Config {
    let mut toml = String::new();
    for i in 0..rules {
        toml += &format!(
            "[[rules]]\nname = \"r{i}\"\nmetric = \"bench_metric\"\nlabels = {{ group = \"g{i}\" }}\naggregation = \"avg\"\nwindow = 300\nthreshold = 90\nseverity = \"warning\"\n\n"
        );
    }
    let file = dir.join("rules.toml");
    std::fs::write(&file, toml).expect("rules");
    let env: HashMap<String, String> = [
        ("CONFIG_FILE".to_string(), file.display().to_string()),
        (
            "DATA_DIR".to_string(),
            dir.join("data").display().to_string(),
        ),
    ]
    .into();
    Config::from_sources(Overrides::default(), &env).expect("config")
}

fn evaluation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(dir.path(), 200);
    let store = mlsec_monitor::open_store(&config).expect("store");
    let now = Utc::now();
    let now_ms = now.timestamp_millis();
    // 10,000 series in 200 groups, 5 minutes of samples at 5 s; 1 % over the threshold.
    let mut samples = Vec::new();
    for i in 0..10_000u32 {
        let key = SeriesKey::new("bench_metric")
            .with("group", &format!("g{}", i % 200))
            .with("id", &i.to_string());
        let id = store.resolve(&key).expect("resolve");
        let v = if i % 100 == 0 { 95.0 } else { 40.0 };
        for s in 0..60 {
            samples.push(Sample {
                series: id,
                ts_ms: now_ms - s * 5_000,
                value: v,
            });
        }
    }
    store.ingest(&samples).expect("ingest");
    store.flush().expect("flush");
    let engine = Engine::new(
        &config,
        store.clone(),
        Arc::new(
            AlertState::open(
                &store,
                mlsec_monitor::alerting::outbox::Router::from_config(&config),
            )
            .expect("state"),
        ),
    );
    let mut times = Vec::new();
    for c in 0..10 {
        let t = Instant::now();
        engine
            .evaluate_at(now + chrono::Duration::milliseconds(c))
            .expect("evaluate");
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let t = Instant::now();
    for r in engine.rules().iter() {
        mlsec_monitor::alerting::rule::evaluate(r, &store, now_ms).expect("evaluate");
    }
    let queries_ms = t.elapsed().as_secs_f64() * 1000.0;
    let c = engine.state.counts();
    let open = c.critical + c.warning + c.info;
    times.sort_by(f64::total_cmp);
    println!(
        "rule evaluation, 10,000 series x {} rules: median {:.1} ms, max {:.1} ms per cycle ({open} alerts open; the store queries alone {queries_ms:.1} ms)",
        engine.rules().len(),
        times[times.len() / 2],
        times[times.len() - 1]
    );
}

fn list_latency() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    {
        let config = config(dir.path(), 0);
        let store = mlsec_monitor::open_store(&config).expect("store");
        let tree = store.tree("alerts").expect("tree");
        let now = Utc::now();
        let mut batch = mlsec_monitor::store::vault::Batch::default();
        for seq in 1..=100_000u64 {
            let a = Alert {
                seq,
                alert_id: format!("alert_bench_{seq}"),
                fingerprint: format!("r{}/bench{{id=\"{seq}\"}}", seq % 200),
                rule: format!("r{}", seq % 200),
                severity: [Severity::Critical, Severity::Warning, Severity::Info]
                    [(seq % 3) as usize],
                status: if seq > 99_900 {
                    AlertStatus::Active
                } else {
                    AlertStatus::Resolved
                },
                service: format!("svc{}", seq % 20),
                message: "bench value 95 over 90".into(),
                description: "a stored alert for the benchmark".into(),
                labels: BTreeMap::from([("id".to_string(), seq.to_string())]),
                value: 95.0,
                threshold: 90.0,
                fired_at: now,
                acknowledged_at: None,
                acknowledged_by: None,
                resolved_at: (seq <= 99_900).then_some(now),
                resolved_by: (seq <= 99_900).then(|| "system".to_string()),
                escalated: false,
                silenced: false,
                updated_at: now,
            };
            batch.insert(&seq.to_be_bytes(), codec::encode(&a));
        }
        tree.apply_batch(batch).expect("batch");
        store.sync().expect("sync");
    }
    let (mut child, addr) = support::spawn_daemon(&["serve"], &[("DATA_DIR", data.as_os_str())]);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut times = Vec::new();
    for i in 0..2000 {
        let q = [
            "/alerts",
            "/alerts?status=active",
            "/alerts?severity=critical&limit=10",
            "/alerts?service=svc3&limit=100",
        ][i % 4];
        let t = Instant::now();
        let mut r = agent.get(&format!("http://{addr}{q}")).call().expect("get");
        let body = r.body_mut().read_to_string().expect("body");
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        if i == 0 {
            let v: serde_json::Value = serde_json::from_str(&body).expect("json");
            // Built-in rules may add alerts of this machine's own (a full disk).
            assert!(
                v["total_count"].as_u64().is_some_and(|n| n >= 100_000),
                "{}",
                &body[..200.min(body.len())]
            );
        }
    }
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
    println!(
        "GET /alerts with 100,000 stored alerts: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    // The alerts timeline scans every stored alert on each request.
    let mut times = Vec::new();
    for _ in 0..500 {
        let t = Instant::now();
        let mut r = agent
            .get(&format!("http://{addr}/charts/alerts-timeline"))
            .call()
            .expect("get");
        let body = r.body_mut().read_to_string().expect("body");
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        let total = body
            .split("\"total_alerts\":")
            .nth(1)
            .and_then(|t| t.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse::<u64>().ok());
        // Built-in rules may add alerts of this machine's own (a full disk).
        assert!(
            total.is_some_and(|n| n >= 100_000),
            "{}",
            &body[..200.min(body.len())]
        );
    }
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
    println!(
        "GET /charts/alerts-timeline over 100,000 stored alerts: p50 {:.2} ms, p99 {:.2} ms",
        pct(0.5),
        pct(0.99)
    );
    let _ = child.kill();
    let _ = child.wait();
}

fn main() {
    evaluation();
    list_latency();
}
