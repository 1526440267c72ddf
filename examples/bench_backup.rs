//! Backup and restore of a full store (run with `cargo build --release &&
//! cargo run --release --example bench_backup [SERIES]`).
//!
//! Fills a data directory with `SERIES` series (default 1,000; a third each
//! random walk, counter and 0/1 series) so that every tier of the default
//! layout is full: one sample a minute for 31 days (the hour tier holds 30
//! days, the minute tier 7), then one every 5 s for the last 6 hours (the
//! raw tier). Then starts the release daemon on it and, three times,
//! times `mlsec-monitor backup --out` against it (the daemon's own CPU
//! included), then `mlsec-monitor restore` of each archive into a new
//! directory. Prints the data directory's size, the archive's, and the
//! times. `BENCH_BACKUP_KEEP=PATH` keeps the first archive there.

#[path = "support/mod.rs"]
mod support;

use mlsec_monitor::store::{Layout, Sample, SeriesKey, Store};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use support::{Gen, Kind};

const MIN: i64 = 60_000;
const DAY: i64 = 86_400_000;

fn size(p: &Path) -> u64 {
    let mut n = 0;
    for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
        let m = e.metadata().expect("metadata");
        n += if m.is_dir() { size(&e.path()) } else { m.len() };
    }
    n
}

fn fill(dir: &Path, n: u32) {
    let store = Store::open(dir, Layout::new(Duration::from_secs(5), 30), 1_000_000).expect("open");
    let kinds = [Kind::Walk, Kind::Counter, Kind::Health];
    let ids: Vec<u32> = (0..n)
        .map(|i| {
            store
                .resolve(&SeriesKey::new("bench").with("id", &i.to_string()))
                .expect("resolve")
        })
        .collect();
    let mut gens: Vec<Gen> = (0..n)
        .map(|i| Gen::new(kinds[i as usize % 3], u64::from(i) + 1))
        .collect();
    let end = chrono::Utc::now().timestamp_millis() / MIN * MIN;
    let start = end - 31 * DAY;
    let raw_from = end - 6 * 3_600_000;
    let mut batch = Vec::new();
    let mut ts = start;
    while ts < end {
        let step = if ts >= raw_from { 5_000 } else { MIN };
        for (id, g) in ids.iter().zip(gens.iter_mut()) {
            batch.push(Sample {
                series: *id,
                ts_ms: ts,
                value: g.next(),
            });
        }
        if batch.len() >= 500_000 {
            store.ingest(&batch).expect("ingest");
            store.flush().expect("flush");
            batch.clear();
        }
        ts += step;
    }
    store.ingest(&batch).expect("ingest");
    store.checkpoint().expect("checkpoint");
}

fn bin() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/mlsec-monitor")
}

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let started = Instant::now();
    fill(&data, n);
    std::thread::sleep(Duration::from_millis(300));
    println!(
        "{n} series, every tier full: filled in {:.0} s; data directory {:.1} MB",
        started.elapsed().as_secs_f64(),
        size(&data) as f64 / 1e6
    );
    let (mut daemon, addr) = support::spawn_daemon(
        &["serve"],
        &[("DATA_DIR", data.as_os_str()), ("AUTH", "on".as_ref())],
    );
    // The first-run token is written just after the daemon starts listening.
    let token = data.join("admin.token");
    let waited = Instant::now();
    while !token.exists() && waited.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(50));
    }
    for round in 1..=3 {
        let out = tmp.path().join(format!("b{round}.mlsb"));
        let before = support::cpu_ticks(daemon.id());
        let t = Instant::now();
        let status = Command::new(bin())
            .args(["backup", "--url", &format!("http://{addr}"), "--token-file"])
            .arg(&token)
            .arg("--out")
            .arg(&out)
            .output()
            .expect("backup");
        assert!(
            status.status.success(),
            "{}",
            String::from_utf8_lossy(&status.stderr)
        );
        let took = t.elapsed().as_secs_f64();
        let ticks = support::cpu_ticks(daemon.id()) - before;
        let bytes = std::fs::metadata(&out).expect("archive").len();
        println!(
            "backup {round}: {took:.2} s, archive {:.1} MB ({:.0} bytes per series), daemon CPU {:.2} s",
            bytes as f64 / 1e6,
            bytes as f64 / f64::from(n),
            ticks as f64 / support::HZ
        );
    }
    let _ = daemon.kill();
    let _ = daemon.wait();
    if let Some(keep) = std::env::var_os("BENCH_BACKUP_KEEP") {
        std::fs::copy(tmp.path().join("b1.mlsb"), keep).expect("keep the first archive");
    }
    for round in 1..=3 {
        let out = tmp.path().join(format!("b{round}.mlsb"));
        let into = tmp.path().join(format!("r{round}"));
        let t = Instant::now();
        let status = Command::new(bin())
            .arg("restore")
            .arg("--from")
            .arg(&out)
            .arg("--data-dir")
            .arg(&into)
            .output()
            .expect("restore");
        assert!(
            status.status.success(),
            "{}",
            String::from_utf8_lossy(&status.stderr)
        );
        println!(
            "restore {round}: {:.2} s (checked, then written), restored directory {:.1} MB",
            t.elapsed().as_secs_f64(),
            size(&into) as f64 / 1e6
        );
    }
}
