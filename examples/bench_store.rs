//! Store benchmarks (run with `cargo run --release --example bench_store`):
//!
//! 1. batched ingest on one core, samples/s;
//! 2. a 24-hour query at 1-minute step (1,440 points) from a warm store, and
//!    the read behind an uncached 7-day chart (3 series, 297 points);
//! 3. 1,000 series after a simulated 40 days (every tier wrapped): bytes on
//!    disk, bytes per series beside the theoretical minimum, and process RSS.
//!
//! `BENCH_SERIES` (default 1000) and `BENCH_DAYS` (default 40) scale part 3;
//! `BENCH_CACHE_MB` sets sled's page cache (default: the store's default).

use mlsec_monitor::store::{Layout, Sample, SeriesKey, Store};
use std::time::{Duration, Instant};

const MIN: i64 = 60_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 86_400_000;
const T0: i64 = 1_767_225_600_000;

fn env_num(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn proc_status(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn open(dir: &std::path::Path) -> Store {
    let cache = env_num("BENCH_CACHE_MB", 0);
    let layout = Layout::new(Duration::from_secs(5), 30);
    if cache > 0 {
        Store::open_with_cache(dir, layout, 1_000_000, cache << 20).expect("open")
    } else {
        Store::open(dir, layout, 1_000_000).expect("open")
    }
}

fn series(store: &Store, n: u32) -> Vec<u32> {
    (0..n)
        .map(|i| {
            store
                .resolve(&SeriesKey::new("bench").with("id", &i.to_string()))
                .expect("resolve")
        })
        .collect()
}

fn ingest_throughput() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let ids = series(&store, 1000);
    // 1000 series x 720 samples at 5 s (one hour), in batches of 10,000.
    let mut batches = Vec::new();
    let mut batch = Vec::with_capacity(10_000);
    for step in 0..720i64 {
        for id in &ids {
            batch.push(Sample {
                series: *id,
                ts_ms: T0 + step * 5_000,
                value: (step % 17) as f64,
            });
            if batch.len() == 10_000 {
                batches.push(std::mem::take(&mut batch));
            }
        }
    }
    let n: usize = batches.iter().map(Vec::len).sum();
    let started = Instant::now();
    for b in &batches {
        store.ingest(b).expect("ingest");
    }
    let ingest = started.elapsed();
    let f = Instant::now();
    store.flush().expect("flush");
    let flush = f.elapsed();
    println!(
        "ingest: {n} samples in {:.3} s = {:.0} samples/s (one core, batches of 10,000); final flush {:.0} ms; with flush {:.0} samples/s",
        ingest.as_secs_f64(),
        n as f64 / ingest.as_secs_f64(),
        flush.as_secs_f64() * 1000.0,
        n as f64 / (ingest + flush).as_secs_f64()
    );
}

fn query_latency() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let ids = series(&store, 100);
    // 24 hours at 1 sample a minute for 100 series.
    every_minute(&store, &ids, 0..1440);
    report(
        "query 24h at 1m step (1,440 points), warm",
        (0..2000).map(|i| {
            let id = ids[i % ids.len()];
            let t = Instant::now();
            let q = store.query(id, T0, T0 + DAY, MIN).expect("query");
            let took = t.elapsed();
            assert_eq!(q.points.len(), 1440);
            assert!(q.points.iter().all(|(_, a)| a.is_some()));
            took
        }),
    );

    // What a 7-day chart reads when it is not cached: three series, seven
    // days of one-minute slots, folded into 297 points of 34 minutes.
    let week: Vec<_> = ids[..3].to_vec();
    every_minute(&store, &week, 1440..7 * 1440);
    let step = 34 * MIN;
    report(
        "7-day chart read, 3 series at 34m step (297 points from 30,240 slots), warm",
        (0..2000).map(|_| {
            let t = Instant::now();
            for id in &week {
                let q = store.query(*id, T0, T0 + 7 * DAY, step).expect("query");
                assert_eq!(q.points.len(), 297);
            }
            t.elapsed()
        }),
    );
}

/// One sample a minute (value: the minute) in each of `ids`, flushed.
fn every_minute(store: &Store, ids: &[u32], minutes: std::ops::Range<i64>) {
    let mut batch = Vec::new();
    for m in minutes {
        for id in ids {
            batch.push(Sample {
                series: *id,
                ts_ms: T0 + m * MIN,
                value: m as f64,
            });
        }
    }
    store.ingest(&batch).expect("ingest");
    store.flush().expect("flush");
}

fn report(what: &str, times: impl Iterator<Item = Duration>) {
    let mut times: Vec<Duration> = times.collect();
    times.sort();
    let pct = |p: f64| {
        times[((times.len() as f64 * p) as usize).min(times.len() - 1)].as_secs_f64() * 1e6
    };
    println!(
        "{what}: p50 {:.0} us, p99 {:.0} us, max {:.0} us",
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
}

fn forty_days() {
    let n_series = env_num("BENCH_SERIES", 1000) as u32;
    let days = env_num("BENCH_DAYS", 40) as i64;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let ids = series(&store, n_series);
    let started = Instant::now();
    let mut batch = Vec::with_capacity(60 * ids.len());
    // Raw samples every 5 s for the last 6 hours (so the raw tier is full),
    // one a minute before that (so the minute and hour tiers are full).
    let end = T0 + days * DAY;
    for hour in 0..days * 24 {
        let h0 = T0 + hour * HOUR;
        let every = if h0 >= end - 6 * HOUR { 5_000 } else { MIN };
        batch.clear();
        let mut ts = h0;
        while ts < h0 + HOUR {
            for id in &ids {
                batch.push(Sample {
                    series: *id,
                    ts_ms: ts,
                    value: ((ts / 1000) % 97) as f64 * 1.5,
                });
            }
            ts += every;
        }
        store.ingest(&batch).expect("ingest");
        // A flush per simulated 10 minutes would be realistic but slow; one per hour.
        store.flush().expect("flush");
    }
    let elapsed = started.elapsed();
    let disk = store.size_on_disk();
    let layout = store.layout();
    // Theoretical minimum with this encoding: full slots, no sled overhead.
    // raw: 1 tag byte + 8-byte f64; aggregate: tag + count (1) + 4 f64 + last_ts (<= 9).
    let raw_slots = (layout.tiers[0].block_slots * layout.tiers[0].blocks) as u64;
    let agg_slots = (layout.tiers[1].block_slots * layout.tiers[1].blocks
        + layout.tiers[2].block_slots * layout.tiers[2].blocks) as u64;
    let minimum = raw_slots * 9 + agg_slots * (1 + 1 + 32 + 7);
    println!(
        "{n_series} series x {days} days simulated in {:.1} s: on disk {:.1} MB = {} bytes per series \
         (theoretical minimum {} bytes: {:.1}x); RSS {} MB, peak {} MB",
        elapsed.as_secs_f64(),
        disk as f64 / 1e6,
        disk / n_series as u64,
        minimum,
        disk as f64 / n_series as f64 / minimum as f64,
        proc_status("VmRSS:") / 1024,
        proc_status("VmHWM:") / 1024
    );
    for e in walk(dir.path()) {
        println!("  {} {} bytes", e.0.display(), e.1);
    }
    drop(store);
    // A restarted daemon's view: a fresh process opens the store and reads
    // every series' last 30 days at 1-hour step.
    let out = std::process::Command::new(std::env::current_exe().expect("exe"))
        .args([
            "reopen",
            dir.path().to_str().expect("utf-8 path"),
            &n_series.to_string(),
        ])
        .output()
        .expect("reopen");
    print!("{}", String::from_utf8_lossy(&out.stdout));
}

fn reopen(dir: &str, n_series: u32) {
    let t = Instant::now();
    let store = open(std::path::Path::new(dir));
    let opened = t.elapsed();
    let ids = series(&store, n_series);
    let end = T0 + env_num("BENCH_DAYS", 40) as i64 * DAY;
    let t = Instant::now();
    let mut filled = 0;
    for id in &ids {
        let q = store.query(*id, end - 30 * DAY, end, HOUR).expect("query");
        filled += q.points.iter().filter(|(_, a)| a.is_some()).count();
    }
    println!(
        "fresh process: open {:.0} ms; 30-day hourly query of all {n_series} series {:.1} ms ({filled} points); RSS {} MB",
        opened.as_secs_f64() * 1000.0,
        t.elapsed().as_secs_f64() * 1000.0,
        proc_status("VmRSS:") / 1024
    );
}

fn walk(p: &std::path::Path) -> Vec<(std::path::PathBuf, u64)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
        let m = e.metadata().expect("metadata");
        if m.is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push((e.path(), m.len()));
        }
    }
    out
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("reopen") {
        reopen(&args[2], args[3].parse().expect("series count"));
        return;
    }
    let which = args.get(1).cloned().unwrap_or_default();
    if which.is_empty() || which == "ingest" {
        ingest_throughput();
    }
    if which.is_empty() || which == "query" {
        query_latency();
    }
    if which.is_empty() || which == "days" {
        forty_days();
    }
}
