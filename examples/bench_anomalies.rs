//! The anomaly watch's cost in the daemon's terms (run with `cargo run
//! --release --example bench_anomalies`): 5,000 gauge series, one sample
//! every 5 s, a watch round after each step as the daemon runs it.
//!
//! - memory: the heap the watch holds (its detectors, scores' series keys
//!   and bookkeeping), counted exactly by this program's allocator as the
//!   bytes freed when the watch is dropped after the rounds, per series;
//!   RSS before and after its first round too, which also holds what that
//!   round's reads left in the store's caches. The score series the watch
//!   writes are counted apart, since the store keeps them like any series;
//! - CPU: process CPU time (user + system) of the rounds alone against
//!   the same steps' ingest without a watch, alternating, as a share of
//!   one core at one round every 5 s.
//!
//! `BENCH_SERIES` (default 5000) and `BENCH_STEPS` (default 360: half an
//! hour of 5-second steps) scale it. `BENCH_WATCH=0` runs the same steps
//! with no watch: the difference in the heap live after the rounds
//! between the two runs is the whole cost of watching, the score series
//! the store keeps included.

#[path = "support/mod.rs"]
mod support;

use mlsec_monitor::anomalies::events::Events;
use mlsec_monitor::anomalies::watch::Watch;
use mlsec_monitor::config::anomalies::Selector;
use mlsec_monitor::store::{Layout, Sample, Store};
use std::alloc::{GlobalAlloc, Layout as Memory, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The system allocator, counting the bytes live.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// Only forwards to the system allocator, counting sizes.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Memory) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Memory) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Memory, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const T0: i64 = 1_767_225_600_000;
const STEP: i64 = 5_000;

fn rss_kb() -> u64 {
    support::proc_field("/proc/self/status", "VmRSS:")
}

fn cpu_s() -> f64 {
    support::cpu_ticks(std::process::id()) as f64 / support::HZ
}

fn main() {
    let n = support::env_num("BENCH_SERIES", 5000) as u32;
    let steps = support::env_num("BENCH_STEPS", 360) as i64;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(
        dir.path(),
        Layout::new(Duration::from_secs(5), 30),
        1_000_000,
    )
    .expect("store");
    let ids = support::series(&store, "bench_gauge", n);
    let mut gens = support::mixed(n, 7);
    let mut step = |k: i64| {
        let batch: Vec<Sample> = ids
            .iter()
            .zip(gens.iter_mut())
            .map(|(id, g)| Sample {
                series: *id,
                ts_ms: T0 + k * STEP,
                value: g.next(),
            })
            .collect();
        store.ingest(&batch).expect("ingest");
    };
    // An hour of history for the warm start.
    for k in 0..720 {
        step(k);
    }
    store.flush().expect("flush");
    let rss_before = rss_kb();
    let events = Arc::new(Events::open(&store).expect("events"));
    let sel = vec![Selector {
        metric: "bench_gauge".into(),
        labels: vec![],
    }];
    let watch = Watch::new(store.clone(), events, sel, 1_000_000);
    let watching = support::env_num("BENCH_WATCH", 1) == 1;
    let round = |now: i64| {
        if watching {
            watch.round(now).expect("round");
        }
    };
    let t = Instant::now();
    round(T0 + 720 * STEP + STEP / 2);
    let warm = t.elapsed();
    let rss_watch = rss_kb();
    println!(
        "{n} series: first round (discovery and {} slots of history replayed each) {:.2} s; RSS {} -> {} MB: {:.0} bytes per series for the watch",
        720,
        warm.as_secs_f64(),
        rss_before / 1024,
        rss_watch / 1024,
        (rss_watch.saturating_sub(rss_before)) as f64 * 1024.0 / f64::from(n)
    );
    // Live rounds, alternating with the same ingest alone.
    let (mut ingest_cpu, mut round_cpu) = (0.0, 0.0);
    let mut rounds = 0u64;
    let mut k = 720;
    while k < 720 + steps {
        let c0 = cpu_s();
        step(k);
        let c1 = cpu_s();
        round(T0 + (k + 1) * STEP + STEP / 2);
        let c2 = cpu_s();
        ingest_cpu += c1 - c0;
        round_cpu += c2 - c1;
        rounds += 1;
        k += 1;
    }
    store.flush().expect("flush");
    let per_round = round_cpu / rounds as f64;
    println!(
        "{rounds} rounds: {:.1} ms CPU per round (ingest of the same step: {:.1} ms) = {:.2} % of one core at one round every 5 s; {:.2} µs per series per round",
        per_round * 1000.0,
        ingest_cpu / rounds as f64 * 1000.0,
        per_round / 5.0 * 100.0,
        per_round * 1e6 / f64::from(n),
    );
    println!(
        "RSS after the rounds {} MB (the {n} score series are stored like any series)",
        rss_kb() / 1024
    );
    let live = LIVE.load(Ordering::Relaxed);
    println!(
        "heap live after the rounds: {:.1} MB{}",
        live as f64 / 1e6,
        if watching { "" } else { " (no watch)" }
    );
    drop(watch);
    let held = live.saturating_sub(LIVE.load(Ordering::Relaxed));
    println!(
        "the watch's heap: {held} bytes, {:.0} per series (freed when it is dropped)",
        held as f64 / f64::from(n)
    );
}
