//! Remote write to a real local receiver (Debian's Prometheus with
//! `--web.enable-remote-write-receiver`): `cargo build --release && cargo run
//! --release --example bench_remote_write [SAMPLES] [RATE] [SECONDS]`.
//!
//! 1. Throughput: SAMPLES (default 2,000,000) pushed as fast as four clients
//!    can (10,000 series, 1,000 samples a request), timed until the last is
//!    delivered (`/health`'s `sent_samples`).
//! 2. CPU: RATE samples/s (default 20,000) paced for SECONDS (default 20),
//!    once with remote write and once without, each on a fresh daemon; the
//!    difference of the daemon's CPU time, per 1,000 samples/s shipped.

#[path = "support/mod.rs"]
mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SERIES: usize = 10_000;
const PER_REQUEST: usize = 1_000;

fn prometheus(dir: &std::path::Path) -> (Child, u16) {
    let port = support::free_port();
    let cfg = dir.join("prometheus.yml");
    std::fs::write(&cfg, "global:\n  scrape_interval: 1m\n").expect("config");
    let child = Command::new("/usr/bin/prometheus")
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--web.enable-remote-write-receiver")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("apt-get install prometheus");
    support::wait_ready(
        &format!("http://127.0.0.1:{port}/-/ready"),
        "prometheus",
        30,
    );
    (child, port)
}

fn daemon(dir: &std::path::Path, receiver: Option<u16>) -> (Child, String) {
    let cfg = dir.join("config.toml");
    let body = match receiver {
        Some(p) => format!(
            "[[remote_write]]\nname = \"bench\"\nurl = \"http://127.0.0.1:{p}/api/v1/write\"\n"
        ),
        None => String::new(),
    };
    std::fs::write(&cfg, body).expect("config");
    let data = dir.join("data");
    support::spawn_daemon(
        &["serve"],
        &[
            ("DATA_DIR", data.as_os_str()),
            ("CONFIG_FILE", cfg.as_os_str()),
            ("MAX_SERIES", std::ffi::OsStr::new("100000")),
        ],
    )
}

/// One request: a sample for each of `PER_REQUEST` series from `first`, at `at_ms`.
fn request(first: usize, at_ms: i64, value: f64) -> String {
    let ts = chrono::DateTime::from_timestamp_millis(at_ms)
        .expect("time")
        .to_rfc3339();
    let samples: Vec<serde_json::Value> = (first..first + PER_REQUEST)
        .map(|i| serde_json::json!({"metric": "bench_rw", "labels": {"s": i.to_string()}, "value": value, "timestamp": ts}))
        .collect();
    serde_json::json!({ "samples": samples }).to_string()
}

fn push(addr: &str, body: String) {
    let r = support::agent()
        .post(&format!("http://{addr}/ingest/metrics"))
        .header("content-type", "application/json")
        .send(body)
        .expect("ingest");
    assert_eq!(r.status(), 200);
}

fn sent(addr: &str) -> u64 {
    let text = support::get_text(&format!("http://{addr}/health"));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    v["remote_write"][0]["sent_samples"].as_u64().unwrap_or(0)
}

/// Pushes `total` samples with four clients, one round of timestamps per
/// `SERIES` samples (10 ms apart), as fast as they go; returns the seconds.
fn push_fast(addr: &str, total: usize, start_ms: i64) -> f64 {
    let requests = total / PER_REQUEST;
    let per_round = SERIES / PER_REQUEST;
    let started = Instant::now();
    std::thread::scope(|s| {
        for client in 0..4 {
            s.spawn(move || {
                // Each client has its own series, pushed in time order (a
                // receiver refuses a series' samples out of order).
                for r in 0..requests / per_round {
                    for k in (client..per_round).step_by(4) {
                        push(
                            addr,
                            request(k * PER_REQUEST, start_ms + r as i64 * 10, r as f64),
                        );
                    }
                }
            });
        }
    });
    started.elapsed().as_secs_f64()
}

/// Pushes `rate` samples/s for `secs` seconds; returns the daemon's CPU
/// ticks over that time.
fn paced(addr: &str, pid: u32, rate: usize, secs: u64, start_ms: i64) -> u64 {
    let per_round = SERIES / PER_REQUEST;
    let rounds_per_sec = (rate / SERIES).max(1);
    let before = support::cpu_ticks(pid);
    let started = Instant::now();
    let mut round = 0i64;
    for second in 0..secs {
        for _ in 0..rounds_per_sec {
            for k in 0..per_round {
                push(
                    addr,
                    request(k * PER_REQUEST, start_ms + round * 10, round as f64),
                );
            }
            round += 1;
        }
        let next = Duration::from_secs(second + 1);
        if let Some(wait) = next.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    support::cpu_ticks(pid) - before
}

fn main() {
    let arg = |i: usize, d: u64| {
        std::env::args()
            .nth(i)
            .and_then(|a| a.parse().ok())
            .unwrap_or(d)
    };
    let (total, rate, secs) = (
        arg(1, 2_000_000) as usize,
        arg(2, 20_000) as usize,
        arg(3, 20),
    );
    let pdir = tempfile::tempdir().expect("tempdir");
    let (mut prom, port) = prometheus(pdir.path());
    // Prometheus takes samples up to an hour old: start 30 minutes back.
    let start_ms = chrono::Utc::now().timestamp_millis() - 1_800_000;

    // 1. Throughput.
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut d, addr) = daemon(dir.path(), Some(port));
    let pushed_in = push_fast(&addr, total, start_ms);
    let t0 = Instant::now();
    while sent(&addr) < total as u64 {
        assert!(
            t0.elapsed() < Duration::from_secs(600),
            "not delivered in 10 minutes: {}",
            sent(&addr)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let all = pushed_in + t0.elapsed().as_secs_f64();
    println!(
        "throughput: {total} samples pushed in {pushed_in:.1} s ({:.0}/s), all delivered after {all:.1} s: {:.0} samples/s shipped",
        total as f64 / pushed_in,
        total as f64 / all
    );
    let _ = d.kill();
    let _ = d.wait();

    // 2. CPU with and without remote write, same paced load.
    let mut ticks = Vec::new();
    for receiver in [None, Some(port)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut d, addr) = daemon(dir.path(), receiver);
        // Later timestamps than phase 1, for Prometheus's order.
        let t = paced(
            &addr,
            d.id(),
            rate,
            secs,
            start_ms + 600_000 + ticks.len() as i64 * 300_000,
        );
        ticks.push(t);
        let _ = d.kill();
        let _ = d.wait();
    }
    let added = ticks[1] as f64 - ticks[0] as f64;
    // Ticks are 1/100 s: percent of one core over the run.
    let percent = added / secs as f64;
    println!(
        "CPU at {rate} samples/s for {secs} s: {} ticks without remote write, {} with: +{:.1} % of a core, {:.2} % per 1,000 samples/s shipped",
        ticks[0],
        ticks[1],
        percent,
        percent / (rate as f64 / 1000.0)
    );
    let _ = prom.kill();
    let _ = prom.wait();
}
