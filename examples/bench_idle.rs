//! The idle daemon with the default collector: RSS and CPU after a while.
//!
//! `cargo build --release && cargo run --release --example bench_idle [SECONDS]`
//! starts `target/release/mlsec-monitor serve` on a free port with a temp data
//! directory and default intervals, waits (default 300 s), then reports its
//! resident memory and the CPU it used, from /proc.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn ticks(pid: u32) -> u64 {
    // utime + stime, fields 14 and 15 of /proc/PID/stat (after the ")" of comm).
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    f[11] + f[12]
}

fn rss_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("status")
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/mlsec-monitor");
    let mut child = Command::new(&bin)
        .arg("serve")
        .env("DATA_DIR", dir.path())
        .env("SERVICE_HOST", "127.0.0.1")
        .env("SERVICE_PORT", "0")
        .env("LOG_LEVEL", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "start {}: {e} (run cargo build --release first)",
                bin.display()
            )
        });
    let pid = child.id();
    // Skip start-up (sled open, first ticks), then measure a steady window.
    std::thread::sleep(Duration::from_secs(10));
    let (t0, c0) = (Instant::now(), ticks(pid));
    std::thread::sleep(Duration::from_secs(secs.saturating_sub(10).max(1)));
    let (wall, used) = (t0.elapsed().as_secs_f64(), ticks(pid) - c0);
    let hz = 100.0; // USER_HZ on Linux
    println!(
        "idle daemon after {secs} s: RSS {:.1} MB (peak {:.1} MB), CPU {:.2} % of one core",
        rss_kb(pid, "VmRSS:") as f64 / 1024.0,
        rss_kb(pid, "VmHWM:") as f64 / 1024.0,
        used as f64 / hz / wall * 100.0
    );
    let _ = child.kill();
    let _ = child.wait();
}
