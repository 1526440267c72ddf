//! Health engine benchmark: 100 HTTP services checked every second.
//!
//! `cargo build --release && cargo run --release --example bench_health [SECONDS]`
//! starts 100 local HTTP health endpoints, the release daemon probing each
//! every second, measures the daemon's CPU and RSS over SECONDS (default 60),
//! then loads `/dashboard-data` with `wrk -t2 -c64 -d10s --latency` (Debian
//! package `wrk`) and prints its summary.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    f[11] + f[12]
}

fn rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("status")
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

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
    let bin = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/mlsec-monitor");
    let mut child = Command::new(&bin)
        .args(["--config", file.to_str().expect("path"), "serve"])
        .env("DATA_DIR", dir.path().join("data"))
        .env("SERVICE_HOST", "127.0.0.1")
        .env("SERVICE_PORT", "0")
        .env("LOG_LEVEL", "info")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "start {}: {e} (run cargo build --release first)",
                bin.display()
            )
        });
    let pid = child.id();
    let out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut lines = out.lines().map_while(Result::ok);
    let addr = lines
        .by_ref()
        .find_map(|l| {
            l.split("listening on http://")
                .nth(1)
                .map(|a| a.split_whitespace().next().unwrap_or("").to_string())
        })
        .expect("listening line");
    // Drain the rest of the log so the daemon never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    std::thread::sleep(Duration::from_secs(5));
    let (t0, c0) = (Instant::now(), ticks(pid));
    std::thread::sleep(Duration::from_secs(secs));
    let cpu = (ticks(pid) - c0) as f64 / 100.0 / t0.elapsed().as_secs_f64() * 100.0;
    println!(
        "100 HTTP services at 1 s: daemon CPU {cpu:.1} % of one core, RSS {:.1} MB (over {secs} s)",
        rss_mb(pid)
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
    match Command::new("wrk")
        .args([
            "-t2",
            "-c64",
            "-d10s",
            "--latency",
            &format!("http://{addr}/dashboard-data"),
        ])
        .output()
    {
        Ok(o) => println!(
            "wrk -t2 -c64 -d10s /dashboard-data:\n{}",
            String::from_utf8_lossy(&o.stdout)
        ),
        Err(e) => println!("wrk not run ({e}): apt-get install wrk"),
    }
    let _ = child.kill();
    let _ = child.wait();
}
