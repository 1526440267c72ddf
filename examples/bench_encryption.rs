//! The cost of encryption at rest (`ENCRYPTION_KEY_FILE`), measured in one
//! run: the same store work with and without a key, alternating, three
//! rounds, reporting the ratio (run with `cargo run --release --example
//! bench_encryption`).
//!
//! - ingest: 1,000 series (a third each random walk, counter, 0/1), one
//!   sample every 5 s for 6 simulated hours, a flush every simulated
//!   second's worth of samples as the daemon does every `FLUSH_INTERVAL`,
//!   so log records, sealed blocks and checkpoints are all written:
//!   CPU time (user + system, /proc/self/stat) and wall time;
//! - query: every series' first 5 hours at the raw step (sealed raw
//!   blocks, each read from sled and decrypted) and at 1 minute, after a
//!   reopen so that nothing is cached decoded: time per block read.
//!
//! `BENCH_SERIES` and `BENCH_HOURS` scale it.

#[path = "support/mod.rs"]
mod support;

use mlsec_monitor::store::cipher::Cipher;
use mlsec_monitor::store::{Layout, SLED_CACHE_BYTES, Sample, Store};
use std::sync::Arc;
use std::time::{Duration, Instant};

const T0: i64 = 1_767_225_600_000;
const STEP_MS: i64 = 5_000;

fn open(dir: &std::path::Path, key: bool) -> Store {
    let cipher = key.then(|| Arc::new(Cipher::new(&[0x5a; 32])));
    Store::open_with(
        dir,
        Layout::new(Duration::from_secs(5), 30),
        1_000_000,
        SLED_CACHE_BYTES,
        cipher,
    )
    .expect("open")
}

fn cpu_ticks() -> u64 {
    support::cpu_ticks(std::process::id())
}

struct Run {
    ingest_cpu_s: f64,
    ingest_wall_s: f64,
    samples: u64,
    query_wall_s: f64,
    blocks_read: u64,
    points: u64,
    dir_bytes: u64,
}

fn run(key: bool, series: u32, hours: i64) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let steps = hours * 3_600_000 / STEP_MS;
    let (ingest_cpu_s, ingest_wall_s, ids) = {
        let store = open(dir.path(), key);
        let ids = support::series(&store, "bench", series);
        let mut gens = support::mixed(series, 1);
        let (cpu0, wall0) = (cpu_ticks(), Instant::now());
        let mut batch = Vec::with_capacity(series as usize);
        for step in 0..steps {
            batch.clear();
            for (id, g) in ids.iter().zip(gens.iter_mut()) {
                batch.push(Sample {
                    series: *id,
                    ts_ms: T0 + step * STEP_MS,
                    value: g.next(),
                });
            }
            store.ingest(&batch).expect("ingest");
            store.flush().expect("flush");
        }
        let out = (
            (cpu_ticks() - cpu0) as f64 / support::HZ,
            wall0.elapsed().as_secs_f64(),
            ids,
        );
        store.checkpoint().expect("stop");
        out
    };
    std::thread::sleep(Duration::from_millis(300));
    let store = open(dir.path(), key);
    let raw_blocks_per_series = (hours - 1) * 6; // 10-minute raw blocks
    let wall0 = Instant::now();
    let mut points = 0u64;
    for id in &ids {
        let to = T0 + (hours - 1) * 3_600_000;
        points += store
            .query(*id, T0, to, STEP_MS)
            .expect("query")
            .points
            .len() as u64;
        points += store
            .query(*id, T0, to, 60_000)
            .expect("query")
            .points
            .len() as u64;
    }
    let query_wall_s = wall0.elapsed().as_secs_f64();
    store.measure_size_on_disk();
    let dir_bytes = store.size_on_disk();
    drop(store);
    Run {
        ingest_cpu_s,
        ingest_wall_s,
        samples: steps as u64 * u64::from(series),
        query_wall_s,
        blocks_read: ids.len() as u64 * (raw_blocks_per_series as u64 + 1),
        points,
        dir_bytes,
    }
}

fn main() {
    let series = support::env_num("BENCH_SERIES", 1000) as u32;
    let hours = support::env_num("BENCH_HOURS", 6) as i64;
    println!(
        "{series} series, one sample every 5 s for {hours} simulated hours, a flush per step; three rounds, alternating"
    );
    let mut totals = [[0f64; 3]; 2];
    for round in 1..=3 {
        for (i, key) in [false, true].into_iter().enumerate() {
            let r = run(key, series, hours);
            let name = if key { "encrypted" } else { "clear" };
            println!(
                "round {round} {name:>9}: ingest {:.2} s CPU ({:.2} s wall) for {} samples = {:.2} µs CPU/sample; \
                 query {:.3} s for {} points ({:.1} µs per block read); data dir {:.1} MB",
                r.ingest_cpu_s,
                r.ingest_wall_s,
                r.samples,
                r.ingest_cpu_s * 1e6 / r.samples as f64,
                r.query_wall_s,
                r.points,
                r.query_wall_s * 1e6 / r.blocks_read as f64,
                r.dir_bytes as f64 / 1e6,
            );
            totals[i][0] += r.ingest_cpu_s;
            totals[i][1] += r.query_wall_s;
            totals[i][2] += r.dir_bytes as f64;
        }
    }
    println!(
        "encrypted / clear over the three rounds: ingest CPU {:.2}x, query time {:.2}x, data directory {:.2}x",
        totals[1][0] / totals[0][0],
        totals[1][1] / totals[0][1],
        totals[1][2] / totals[0][2],
    );
}
