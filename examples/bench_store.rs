//! Store benchmarks (run with `cargo run --release --example bench_store`):
//!
//! 1. batched ingest on one core, samples/s;
//! 2. a 24-hour query at 1-minute step (1,440 points) from a warm store, and
//!    the read behind an uncached 7-day chart (3 series, 297 points);
//! 3. `days`: every tier of the default layout full (40 simulated days, one
//!    sample every 5 s) for a random walk, a counter and a 0/1 series: bytes
//!    on disk per series after a clean stop, beside what the `pco` codec
//!    needs for the same tier columns compressed whole;
//! 4. `writes`: bytes written to disk (`write_bytes`) per ingested sample
//!    with one flush a second, and RSS per series;
//! 5. `hundred` (only when named): 100 simulated days at 5 s, the data
//!    directory's size every 5 days from day 30 and its growth from day 35.
//!
//! `BENCH_SERIES` (default 300, split over the three kinds; 150 for part 5)
//! and `BENCH_DAYS` (default 40; 100 for part 5) scale parts 3 and 5; `BENCH_WRITE_SERIES` (default 1000) and
//! `BENCH_WRITE_MINUTES` (default 60) part 4; `BENCH_CACHE_MB` sets sled's
//! page cache (default: the store's default).

#[path = "support/mod.rs"]
mod support;

use mlsec_monitor::store::{Layout, Sample, Store};
use std::time::{Duration, Instant};
use support::{Gen, Kind};

const MIN: i64 = 60_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 86_400_000;
const T0: i64 = 1_767_225_600_000;

fn proc_status(field: &str) -> u64 {
    support::proc_field("/proc/self/status", field)
}

fn open(dir: &std::path::Path) -> Store {
    let cache = support::env_num("BENCH_CACHE_MB", 0);
    let layout = Layout::new(Duration::from_secs(5), 30);
    if cache > 0 {
        Store::open_with(dir, layout, 1_000_000, cache << 20, None).expect("open")
    } else {
        Store::open(dir, layout, 1_000_000).expect("open")
    }
}

fn ingest_throughput() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let ids = support::series(&store, "bench", 1000);
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
    let ids = support::series(&store, "bench", 100);
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

/// Ingests hour `hour` (from `T0`) of every series at 5 s, then flushes.
fn ingest_hour(store: &Store, ids: &[u32], gens: &mut [Gen], hour: i64, batch: &mut Vec<Sample>) {
    batch.clear();
    for step in 0..720 {
        let ts = T0 + hour * HOUR + step * 5_000;
        for (id, g) in ids.iter().zip(gens.iter_mut()) {
            batch.push(Sample {
                series: *id,
                ts_ms: ts,
                value: g.next(),
            });
        }
    }
    store.ingest(batch).expect("ingest");
    store.flush().expect("flush");
}

/// Every tier of the default layout full (40 days at one sample every 5 s),
/// per kind: bytes on disk per series after a clean stop (sled included),
/// beside the bytes pco needs for the same tier columns compressed whole.
fn disk_per_series() {
    let n_series = support::env_num("BENCH_SERIES", 300) as u32 / 3;
    let days = support::env_num("BENCH_DAYS", 40) as i64;
    println!("disk per series, {n_series} series per kind x {days} days at 5 s (every tier full):");
    let mut totals = (0u64, 0u64);
    for kind in [Kind::Walk, Kind::Counter, Kind::Health] {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path());
        let ids = support::series(&store, "bench", n_series);
        let mut gens: Vec<Gen> = (0..n_series)
            .map(|i| Gen::new(kind, u64::from(i) + 1))
            .collect();
        let started = Instant::now();
        let mut batch = Vec::with_capacity(720 * ids.len());
        // The log database between checkpoints (renewed at each).
        let mut log_max = 0u64;
        for hour in 0..days * 24 {
            ingest_hour(&store, &ids, &mut gens, hour, &mut batch);
            let log = support::dir_bytes(&dir.path().join("log"));
            log_max = log_max.max(log);
        }
        let elapsed = started.elapsed();
        let peak = proc_status("VmHWM:") / 1024;
        let bound = pco_bound(&store, &ids, T0 + days * DAY);
        store.checkpoint().expect("checkpoint");
        if std::env::var_os("BENCH_SHOW_FILES").is_some() {
            for t in ["series", "meta"] {
                let tree = store.tree(t).expect("tree");
                let live: usize = tree
                    .iter()
                    .map(|kv| kv.map(|(k, v)| k.len() + v.len()).unwrap_or(0))
                    .sum();
                println!("    live in {t}: {live} bytes in {} keys", tree.raw().len());
            }
        }
        drop(store);
        std::thread::sleep(Duration::from_millis(300));
        let files = support::files(dir.path());
        if std::env::var_os("BENCH_SHOW_FILES").is_some() {
            for (p, n) in &files {
                println!("    {} {n}", p.display());
            }
            // What sled holds live, beside the size of its files.
            for name in ["db", "log", "raw", "1m", "1h"] {
                let Ok(db) = sled::open(dir.path().join(name)) else {
                    continue;
                };
                let (mut keys, mut bytes) = (0usize, 0usize);
                for t in db.tree_names() {
                    let tree = db.open_tree(t).expect("tree");
                    for (k, v) in tree.iter().flatten() {
                        keys += 1;
                        bytes += k.len() + v.len();
                    }
                }
                println!("    live in {name}: {bytes} bytes in {keys} keys");
            }
        }
        let disk = files.iter().map(|e| e.1).sum::<u64>() / u64::from(n_series);
        totals.0 += disk;
        totals.1 += bound;
        println!(
            "  {kind:?}: {disk} bytes per series on disk; pco on the same tier columns, whole: {bound} bytes ({:.2}x); \
             while running, the log database at most {} bytes per series more; \
             {:.1} M samples in {:.1} s; peak RSS so far {peak} MB",
            disk as f64 / bound as f64,
            log_max / u64::from(n_series),
            (days * 17_280 * i64::from(n_series)) as f64 / 1e6,
            elapsed.as_secs_f64()
        );
    }
    println!(
        "  mix (mean of the three): {} bytes per series, pco bound {} bytes ({:.2}x)",
        totals.0 / 3,
        totals.1 / 3,
        totals.0 as f64 / totals.1 as f64
    );
}

/// `n` generators, a third of each kind in turn.
fn mixed(n: u32) -> Vec<Gen> {
    let kinds = [Kind::Walk, Kind::Counter, Kind::Health];
    (0..n)
        .map(|i| Gen::new(kinds[i as usize % 3], u64::from(i) + 1))
        .collect()
}

/// 100 days at one sample every 5 s, a third of the series of each kind:
/// the data directory's size every 5 days from day 30 (every tier of the
/// default layout has wrapped by day 31), after a checkpoint, and its
/// growth from day 35 to day 100.
fn hundred_days() {
    let n_series = support::env_num("BENCH_SERIES", 150) as u32;
    let days = support::env_num("BENCH_DAYS", 100) as i64;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let ids = support::series(&store, "bench", n_series);
    let mut gens = mixed(n_series);
    println!("{days} days, {n_series} series (a third of each kind) at 5 s:");
    let started = Instant::now();
    let mut batch = Vec::with_capacity(720 * ids.len());
    let mut at_35 = None;
    let mut last = 0;
    for hour in 0..days * 24 {
        ingest_hour(&store, &ids, &mut gens, hour, &mut batch);
        let day = (hour + 1) / 24;
        if (hour + 1) % 24 == 0 && day >= 30 && day % 5 == 0 {
            store.checkpoint().expect("checkpoint");
            last = support::dir_bytes(dir.path());
            if day == 35 {
                at_35 = Some(last);
            }
            println!(
                "  day {day}: {:.1} MB, {} bytes per series ({:.0} s)",
                last as f64 / 1e6,
                last / u64::from(n_series),
                started.elapsed().as_secs_f64()
            );
        }
    }
    if let Some(base) = at_35 {
        println!(
            "  growth from day 35 to day {days}: {:+.1} %",
            (last as f64 / base as f64 - 1.0) * 100.0
        );
    }
}

/// Mean bytes per series that pco needs for every stored tier column of
/// `ids`, each column compressed whole (the store's slots as queried).
fn pco_bound(store: &Store, ids: &[u32], end: i64) -> u64 {
    let config = pco::ChunkConfig::default();
    let f = |v: &[f64]| {
        if v.is_empty() {
            0
        } else {
            pco::standalone::simple_compress(v, &config)
                .expect("pco")
                .len()
        }
    };
    let i = |v: &[i64]| {
        if v.is_empty() {
            0
        } else {
            pco::standalone::simple_compress(v, &config)
                .expect("pco")
                .len()
        }
    };
    let mut total = 0;
    for id in ids {
        for spec in &store.layout().tiers {
            let q = store
                .query(*id, end - spec.window_ms(), end, spec.step_ms)
                .expect("query");
            let aggs: Vec<(i64, mlsec_monitor::store::Agg)> = q
                .points
                .iter()
                .filter_map(|(t, a)| a.map(|a| (*t, a)))
                .collect();
            // Presence: the slots' gaps as integers (none when full).
            let gaps: Vec<i64> = aggs
                .windows(2)
                .map(|w| (w[1].0 - w[0].0) / spec.step_ms)
                .collect();
            total += i(&gaps);
            let col = |g: fn(&mlsec_monitor::store::Agg) -> f64| {
                aggs.iter().map(|(_, a)| g(a)).collect::<Vec<f64>>()
            };
            total += f(&col(|a| a.last));
            if spec.id > 0 {
                total += f(&col(|a| a.sum)) + f(&col(|a| a.min)) + f(&col(|a| a.max));
                let counts: Vec<i64> = aggs.iter().map(|(_, a)| i64::from(a.count)).collect();
                let offs: Vec<i64> = aggs.iter().map(|(t, a)| a.last_ts_ms - t).collect();
                total += i(&counts) + i(&offs);
            }
        }
    }
    (total / ids.len()) as u64
}

/// A counter of /proc/self/io: `write_bytes` (what the process made the
/// kernel write to disk, page by page) or `wchar` (bytes passed to write
/// calls: sled's own output, steady from run to run).
fn proc_io(field: &str) -> u64 {
    support::proc_field("/proc/self/io", field)
}

/// Disk writes per sample at one flush a second: `n_series` series with a
/// sample every 5 s, so each flush carries a fifth of them, for `minutes`
/// simulated minutes (no sleeping: the flushes follow each other at once).
fn writes_per_sample(n_series: u32, minutes: i64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let ids = support::series(&store, "bench", n_series);
    let mut gens = mixed(n_series);
    store.checkpoint().expect("checkpoint");
    let before = (proc_io("write_bytes:"), proc_io("wchar:"));
    let started = Instant::now();
    let mut samples = 0u64;
    let mut batch = Vec::new();
    for second in 0..minutes * 60 {
        batch.clear();
        let ts = T0 + second * 1000;
        for (i, (id, g)) in ids.iter().zip(gens.iter_mut()).enumerate() {
            if (i as i64) % 5 == second % 5 {
                batch.push(Sample {
                    series: *id,
                    ts_ms: ts,
                    value: g.next(),
                });
            }
        }
        samples += store.ingest(&batch).expect("ingest").stored;
        store.flush().expect("flush");
    }
    let written = proc_io("write_bytes:") - before.0;
    let handed = proc_io("wchar:") - before.1;
    let stats = store.stats();
    println!(
        "writes: {n_series} series every 5 s, one flush per simulated second, {minutes} min: \
         {:.1} bytes written per sample ({} samples, {:.1} MB, {} checkpoints, {:.1} s); \
         sled's write calls {:.1} B per sample; the store handed sled per sample: log {:.1} B, sealed blocks {:.1} B, checkpoints {:.1} B; RSS {} MB = {:.1} KB per series",
        written as f64 / samples as f64,
        samples,
        written as f64 / 1e6,
        stats.checkpoints,
        started.elapsed().as_secs_f64(),
        handed as f64 / samples as f64,
        stats.bytes_logged as f64 / samples as f64,
        stats.bytes_sealed as f64 / samples as f64,
        stats.bytes_checkpointed as f64 / samples as f64,
        proc_status("VmRSS:") / 1024,
        proc_status("VmRSS:") as f64 / f64::from(n_series)
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let which = args.get(1).cloned().unwrap_or_default();
    if which.is_empty() || which == "ingest" {
        ingest_throughput();
    }
    if which.is_empty() || which == "query" {
        query_latency();
    }
    if which.is_empty() || which == "days" {
        disk_per_series();
    }
    if which == "hundred" {
        hundred_days();
    }
    if which.is_empty() || which == "writes" {
        writes_per_sample(
            support::env_num("BENCH_WRITE_SERIES", 1000) as u32,
            support::env_num("BENCH_WRITE_MINUTES", 60) as i64,
        );
    }
}
