//! What sled 0.34 itself costs for blocks the way the store keeps them, with
//! nothing of ours in the way: the floor under Store v2's disk and memory
//! figures (issue #10).
//!
//! - `space`: 3 laps of a 7-day ring of one-hour blocks (168 positions,
//!   300-1,800 random bytes each, like sealed minute blocks) for `SERIES`
//!   series, kept two ways: one database whose ring keys are overwritten
//!   lap after lap (what the store does), and databases of one day each,
//!   every key written once into a fresh database that is deleted whole a
//!   lap later (the best a time-partitioned layout in sled could do). Prints
//!   each one's files against the live keys and values.
//! - `memory`: `SERIES` x 234 keys (the default layout's blocks per series:
//!   36 raw, 168 minute, 30 hour) of 400 bytes into one database with an
//!   8 MiB page cache, printing the resident memory added per stored key.
//!
//! `cargo run --release --example bench_sled space [SERIES]` (default 200),
//! `cargo run --release --example bench_sled memory [SERIES]` (default 5000).

#[path = "support/mod.rs"]
mod support;

use std::path::Path;

const POSITIONS: u64 = 168;
const LAPS: u64 = 3;

/// Block contents that do not compress.
struct Bytes(support::Gen);

impl Bytes {
    fn new(seed: u64) -> Bytes {
        Bytes(support::Gen::new(support::Kind::Walk, seed))
    }

    fn byte(&mut self) -> u8 {
        (self.0.uniform() * 256.0) as u8
    }

    fn block(&mut self, min: usize, spread: usize) -> Vec<u8> {
        let n = min + (self.0.uniform() * spread as f64) as usize;
        (0..n).map(|_| self.byte()).collect()
    }
}

fn config(path: &Path, cache: u64) -> sled::Config {
    // The store's settings (src/store/mod.rs).
    sled::Config::new()
        .path(path)
        .mode(sled::Mode::LowSpace)
        .cache_capacity(cache)
        .flush_every_ms(None)
}

fn key(a: u64, b: u64) -> [u8; 8] {
    let mut k = [0u8; 8];
    k[..4].copy_from_slice(&(a as u32).to_be_bytes());
    k[4..].copy_from_slice(&(b as u32).to_be_bytes());
    k
}

fn live(db: &sled::Db, keep: impl Fn(&[u8]) -> bool) -> u64 {
    db.iter()
        .flatten()
        .filter(|(k, _)| keep(k))
        .map(|(k, v)| (k.len() + v.len()) as u64)
        .sum()
}

fn mb(b: u64) -> f64 {
    b as f64 / 1e6
}

fn space(series: u64) {
    let mut bytes = Bytes::new(1);
    // One database, ring keys overwritten every lap.
    let dir = tempfile::tempdir().expect("tempdir");
    let db = config(&dir.path().join("ring"), 16 << 20)
        .open()
        .expect("open");
    for abs in 0..POSITIONS * LAPS {
        for s in 0..series {
            db.insert(key(s, abs % POSITIONS), bytes.block(300, 1500))
                .expect("insert");
        }
        db.flush().expect("flush");
    }
    let held = live(&db, |_| true);
    drop(db);
    let files = support::dir_bytes(dir.path());
    println!(
        "one database, ring keys overwritten: live {:.1} MB, files {:.1} MB, {:.2}x",
        mb(held),
        mb(files),
        files as f64 / held as f64
    );

    // A fresh database a day, each key written once, deleted a lap later
    // (one day more than the ring is kept, so the window stays whole).
    let dir = tempfile::tempdir().expect("tempdir");
    let per_day = 24;
    let days = POSITIONS / per_day + 1;
    let mut dbs: Vec<Option<(u64, sled::Db)>> = (0..days).map(|_| None).collect();
    for abs in 0..POSITIONS * LAPS {
        let day = abs / per_day;
        let slot = (day % days) as usize;
        if dbs[slot].as_ref().map(|(d, _)| *d) != Some(day) {
            dbs[slot] = None;
            let path = dir.path().join(format!("day{slot}"));
            let _ = std::fs::remove_dir_all(&path);
            dbs[slot] = Some((day, config(&path, 4 << 20).open().expect("open")));
        }
        let (_, db) = dbs[slot].as_ref().expect("open");
        for s in 0..series {
            db.insert(key(s, abs), bytes.block(300, 1500))
                .expect("insert");
        }
        db.flush().expect("flush");
    }
    let newest = POSITIONS * LAPS - 1;
    let in_window = |k: &[u8]| {
        let abs = u32::from_be_bytes(k[4..8].try_into().expect("key")) as u64;
        newest - abs < POSITIONS
    };
    let (held, window) = dbs.iter().flatten().fold((0, 0), |(h, w), (_, db)| {
        (h + live(db, |_| true), w + live(db, in_window))
    });
    drop(dbs);
    let files = support::dir_bytes(dir.path());
    println!(
        "a database a day, keys written once: live {:.1} MB ({:.1} MB in the 7-day window), files {:.1} MB, {:.2}x the live bytes, {:.2}x the window",
        mb(held),
        mb(window),
        mb(files),
        files as f64 / held as f64,
        files as f64 / window as f64
    );
}

fn memory(series: u64) {
    let mut bytes = Bytes::new(2);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = config(&dir.path().join("db"), 8 << 20)
        .open()
        .expect("open");
    let pid = std::process::id();
    let keys_per_series = 234;
    let mut first: Option<(u64, f64)> = None;
    for pos in 0..keys_per_series {
        for s in 0..series {
            db.insert(key(s, pos), bytes.block(400, 1)).expect("insert");
        }
        db.flush().expect("flush");
        if pos % 39 == 38 {
            let keys = (pos + 1) * series;
            let rss = support::status_mb(pid, "VmRSS:");
            match first {
                None => {
                    println!("{keys} keys: RSS {rss:.1} MB");
                    first = Some((keys, rss));
                }
                Some((k0, r0)) => println!(
                    "{keys} keys: RSS {rss:.1} MB, {:.1} B more per key stored since {k0}",
                    (rss - r0) * 1024.0 * 1024.0 / (keys - k0) as f64
                ),
            }
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n = |default| args.get(2).and_then(|a| a.parse().ok()).unwrap_or(default);
    match args.get(1).map(String::as_str) {
        Some("memory") => memory(n(5000)),
        _ => space(n(200)),
    }
}
