//! `GET /metrics?series=all` with 10,000 stored series beside
//! node_exporter's own `/metrics`, side by side in one run (`cargo build
//! --release && cargo run --release --example bench_metrics [SERIES]
//! [whole|fractional]`;
//! needs `apt-get install prometheus-node-exporter wrk`).
//!
//! Pushes SERIES gauge series (default 10,000) into the daemon, then loads
//! each endpoint with `wrk -t2 -c4 -d10s`, alternating, twice (a scraper
//! asks one at a time; four connections keep both cores busy), and prints
//! scrapes per second, the size of one answer and the ratio of the means.

#[path = "support/mod.rs"]
mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn body(url: &str) -> String {
    support::agent()
        .get(url)
        .call()
        .ok()
        .and_then(|mut r| {
            r.body_mut()
                .with_config()
                .limit(64 << 20)
                .read_to_string()
                .ok()
        })
        .unwrap_or_default()
}

fn main() {
    let series: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    // Whole numbers (counts, bytes: written as integers) or fractions
    // (latencies, ratios: written in their shortest exact float form).
    let fractional = std::env::args().nth(2).as_deref() == Some("fractional");
    let value = |i: usize| {
        if fractional {
            i as f64 * 1.000_37 + 0.123_456_789
        } else {
            i as f64
        }
    };
    println!(
        "values: {}",
        if fractional {
            "fractional"
        } else {
            "whole numbers"
        }
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut daemon, addr) =
        support::spawn_daemon(&["serve"], &[("DATA_DIR", dir.path().as_os_str())]);
    // The series, in requests of 1,000 samples.
    for start in (0..series).step_by(1000) {
        let samples: Vec<serde_json::Value> = (start..(start + 1000).min(series))
            .map(|i| {
                serde_json::json!({"metric": "bench_value", "labels": {"instance": format!("i{i}"), "job": "bench"}, "value": value(i)})
            })
            .collect();
        let r = support::agent()
            .post(&format!("http://{addr}/ingest/metrics"))
            .header("content-type", "application/json")
            .send(serde_json::json!({ "samples": samples }).to_string())
            .expect("ingest");
        assert_eq!(r.status(), 200);
    }

    let port = support::free_port();
    let mut node = Command::new("/usr/bin/prometheus-node-exporter")
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("apt-get install prometheus-node-exporter");
    let node_url = format!("http://127.0.0.1:{port}/metrics");
    let started = Instant::now();
    while body(&node_url).is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "node_exporter did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let ours_url = format!("http://{addr}/metrics?series=all");
    for (name, url) in [("ours", &ours_url), ("node_exporter", &node_url)] {
        let b = body(url);
        let samples = b
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .count();
        println!(
            "{name}: one answer is {} kB, {samples} samples",
            b.len() / 1000
        );
    }
    let (mut o, mut n) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        o.push(support::wrk_rate(&ours_url, 4, true));
        n.push(support::wrk_rate(&node_url, 4, true));
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let show = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "scrapes/s: ours {:.0} ({}) with {series} series, node_exporter {:.0} ({}): {:.1}x",
        mean(&o),
        show(&o),
        mean(&n),
        show(&n),
        mean(&o) / mean(&n)
    );
    let _ = node.kill();
    let _ = daemon.kill();
    let _ = node.wait();
    let _ = daemon.wait();
}
