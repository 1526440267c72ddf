//! HTTP ingest benchmark: `POST /ingest/metrics` with 1,000-sample batches
//! over loopback against the release daemon.
//!
//! `cargo build --release && cargo run --release --example bench_ingest [SECONDS] [CLIENTS]`
//! (defaults 10 s, 4 client threads). Prints samples/s and batch latency percentiles.

#[path = "support/mod.rs"]
mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let secs: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10);
    let clients: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(4);
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut child, addr) =
        support::spawn_daemon(&["serve"], &[("DATA_DIR", dir.path().as_os_str())]);
    let url = format!("http://{addr}/ingest/metrics");
    // 100 series x 10 timestamps per batch; each client writes its own series.
    let bodies: Vec<Vec<String>> = (0..clients)
        .map(|c| {
            (0..50)
                .map(|b| {
                    let now = chrono::Utc::now();
                    let samples: Vec<String> = (0..1000)
                        .map(|i| {
                            let ts = (now - chrono::Duration::seconds((b * 10 + i / 100) as i64)).to_rfc3339();
                            format!(
                                r#"{{"metric":"bench_value","labels":{{"client":"{c}","series":"{}"}},"value":{},"timestamp":"{ts}"}}"#,
                                i % 100,
                                i as f64 * 0.5
                            )
                        })
                        .collect();
                    format!(r#"{{"samples":[{}]}}"#, samples.join(","))
                })
                .collect()
        })
        .collect();
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let handles: Vec<_> = bodies
        .into_iter()
        .map(|bodies| {
            let (url, lat) = (url.clone(), latencies.clone());
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .build()
                    .into();
                let mut mine = Vec::new();
                let mut i = 0;
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let r = agent
                        .post(&url)
                        .header("content-type", "application/json")
                        .send(&bodies[i % bodies.len()])
                        .expect("post");
                    assert!(r.status().is_success(), "status {}", r.status());
                    mine.push(t.elapsed());
                    i += 1;
                }
                lat.lock().expect("lock").extend(mine);
            })
        })
        .collect();
    for h in handles {
        h.join().expect("client");
    }
    let wall = started.elapsed().as_secs_f64();
    let mut l = latencies.lock().expect("lock").clone();
    l.sort();
    let pct = |p: f64| l[((l.len() as f64 * p) as usize).min(l.len() - 1)].as_secs_f64() * 1000.0;
    println!(
        "HTTP ingest, {clients} clients, 1,000-sample batches: {} batches in {wall:.1} s = {:.0} samples/s; batch latency p50 {:.2} ms, p99 {:.2} ms",
        l.len(),
        l.len() as f64 * 1000.0 / wall,
        pct(0.5),
        pct(0.99)
    );
    let _ = child.kill();
    let _ = child.wait();
}
