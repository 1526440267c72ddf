//! The idle daemon with the default collector: RSS and CPU after a while.
//!
//! `cargo build --release && cargo run --release --example bench_idle [SECONDS]`
//! starts `target/release/mlsec-monitor serve` on a free port with a temp data
//! directory and default intervals, waits (default 300 s), then reports its
//! resident memory and the CPU it used, from /proc.

#[path = "support/mod.rs"]
mod support;

use std::time::{Duration, Instant};
use support::{HZ, cpu_ticks, spawn_daemon, status_mb};

fn main() {
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let dir = tempfile::tempdir().expect("tempdir");
    // Logs at info: the daemon prints its address, and an idle one logs nothing more.
    let (mut child, _addr) = spawn_daemon(&["serve"], &[("DATA_DIR", dir.path().as_os_str())]);
    let pid = child.id();
    // Skip start-up (sled open, first ticks), then measure a steady window.
    std::thread::sleep(Duration::from_secs(10));
    let (t0, c0) = (Instant::now(), cpu_ticks(pid));
    std::thread::sleep(Duration::from_secs(secs.saturating_sub(10).max(1)));
    let (wall, used) = (t0.elapsed().as_secs_f64(), cpu_ticks(pid) - c0);
    println!(
        "idle daemon after {secs} s: RSS {:.1} MB (peak {:.1} MB), CPU {:.2} % of one core",
        status_mb(pid, "VmRSS:"),
        status_mb(pid, "VmHWM:"),
        used as f64 / HZ / wall * 100.0
    );
    let _ = child.kill();
    let _ = child.wait();
}
