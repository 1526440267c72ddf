//! Health engine benchmark: 100 HTTP services checked every second.
//!
//! `cargo build --release && cargo run --release --example bench_health [SECONDS]`
//! starts 100 local HTTP health endpoints, the release daemon probing each
//! every second, measures the daemon's CPU and RSS over SECONDS (default 60),
//! then loads `/dashboard-data` with `wrk -t2 -c64 -d10s --latency` (Debian
//! package `wrk`), plain and gzipped, and prints its summaries.

#[path = "support/mod.rs"]
mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};
use support::{HZ, cpu_ticks, spawn_daemon, status_mb};

/// A minimal health endpoint: answers every request with a small JSON document.
fn target() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut s = s;
                let mut buf = [0u8; 2048];
                let _ = s.read(&mut buf);
                let body = r#"{"status":"healthy","dependencies":{"db":true}}"#;
                let _ = write!(
                    s,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    port
}

fn main() {
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = String::new();
    for i in 0..100 {
        let port = target();
        cfg += &format!(
            "[[services]]\nname = \"svc{i}\"\nkind = \"http\"\ntarget = \"http://127.0.0.1:{port}/health\"\ninterval = 1\n\n"
        );
    }
    let file = dir.path().join("config.toml");
    std::fs::write(&file, cfg).expect("config");
    let data = dir.path().join("data");
    let (mut child, addr) = spawn_daemon(
        &["--config", file.to_str().expect("path"), "serve"],
        &[("DATA_DIR", data.as_os_str())],
    );
    let pid = child.id();
    std::thread::sleep(Duration::from_secs(5));
    let (t0, c0) = (Instant::now(), cpu_ticks(pid));
    std::thread::sleep(Duration::from_secs(secs));
    let cpu = (cpu_ticks(pid) - c0) as f64 / HZ / t0.elapsed().as_secs_f64() * 100.0;
    println!(
        "100 HTTP services at 1 s: daemon CPU {cpu:.1} % of one core, RSS {:.1} MB (over {secs} s)",
        status_mb(pid, "VmRSS:")
    );
    let health = ureq::get(&format!("http://{addr}/health")).call();
    if let Ok(mut r) = health {
        let v: serde_json::Value =
            serde_json::from_str(&r.body_mut().read_to_string().unwrap_or_default())
                .unwrap_or_default();
        println!(
            "checks so far: {} total, {} failed",
            v["metrics"]["total_checks"], v["metrics"]["failed_checks"]
        );
    }
    support::wrk(&format!("http://{addr}/dashboard-data"));
    let _ = child.kill();
    let _ = child.wait();
}
