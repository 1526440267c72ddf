//! The measurement that chose the block codec (`src/store/column.rs`): bytes
//! per value and encode/decode speed, per kind of data, in the store's block
//! sizes (raw blocks of 120 values), beside Gorilla XOR alone, zig-zag delta
//! varints, and the `pco` crate per block and on the whole column.
//!
//! Kinds: the system collector's own series recorded live on this machine
//! (`BENCH_CODEC_TICKS` harvests, 250 ms apart; default 120), a full-precision
//! random walk, an integer counter, a 0/1 health series, and latency
//! histograms (whole histogram blocks: ours against the first release's
//! bincode).
//!
//! `cargo run --release --example bench_codec`

#[path = "support/mod.rs"]
mod support;

use mlsec_monitor::collect::system::SystemSource;
use mlsec_monitor::store::column;
use mlsec_monitor::store::{Hist, Layout, block_codec, codec, ring};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use support::{Gen, Kind};

const BLOCK: usize = 120;

fn pco_len(values: &[f64]) -> usize {
    pco::standalone::simple_compress(values, &pco::ChunkConfig::default())
        .expect("pco")
        .len()
}

/// Zig-zag delta varints of integer-valued data (`None` if any value is not an integer).
fn delta_varint_len(values: &[f64]) -> Option<usize> {
    let ints: Option<Vec<i64>> = values
        .iter()
        .map(|v| (v.fract() == 0.0 && v.abs() < 9e15).then_some(*v as i64))
        .collect();
    let ints = ints?;
    let mut out = Vec::new();
    let mut prev = 0i64;
    for i in ints {
        column::put_varint(&mut out, column::zigzag(i.wrapping_sub(prev)));
        prev = i;
    }
    Some(out.len())
}

struct Row {
    kind: String,
    values: usize,
    gorilla: f64,
    delta: Option<f64>,
    pco_block: f64,
    pco_whole: f64,
    ours: f64,
    encode_ns: f64,
    decode_ns: f64,
}

fn measure(kind: &str, column_values: &[f64]) -> Row {
    let n = column_values.len() as f64;
    let blocks: Vec<&[f64]> = column_values.chunks(BLOCK).collect();
    let gorilla: usize = blocks.iter().map(|b| column::xor_encoded(b).len()).sum();
    let delta: Option<usize> = blocks.iter().map(|b| delta_varint_len(b)).sum();
    let pco_block: usize = blocks.iter().map(|b| pco_len(b)).sum();
    let pco_whole = pco_len(column_values);
    let mut encoded = Vec::new();
    let reps = 200;
    let t = Instant::now();
    for _ in 0..reps {
        encoded.clear();
        for b in &blocks {
            let mut out = Vec::new();
            column::put_f64s(&mut out, b);
            encoded.push(out);
        }
    }
    let encode_ns = t.elapsed().as_nanos() as f64 / (reps as f64 * n);
    let ours: usize = encoded.iter().map(Vec::len).sum();
    let t = Instant::now();
    for _ in 0..reps {
        for (e, b) in encoded.iter().zip(&blocks) {
            let back = column::get_f64s(&mut e.as_slice(), b.len()).expect("decodes");
            assert_eq!(back.len(), b.len());
        }
    }
    let decode_ns = t.elapsed().as_nanos() as f64 / (reps as f64 * n);
    Row {
        kind: kind.to_string(),
        values: column_values.len(),
        gorilla: gorilla as f64 / n,
        delta: delta.map(|d| d as f64 / n),
        pco_block: pco_block as f64 / n,
        pco_whole: pco_whole as f64 / n,
        ours: ours as f64 / n,
        encode_ns,
        decode_ns,
    }
}

fn live_system_series(ticks: usize) -> BTreeMap<String, Vec<f64>> {
    let dir = std::env::temp_dir();
    let mut source = SystemSource::new(&dir, Default::default());
    let mut series: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let _ = source.harvest();
    for _ in 0..ticks {
        std::thread::sleep(Duration::from_millis(250));
        for (key, value) in source.harvest().series() {
            series.entry(key.to_string()).or_default().push(value);
        }
    }
    series.retain(|_, v| v.len() == ticks);
    series
}

fn main() {
    let ticks: usize = std::env::var("BENCH_CODEC_TICKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(120);
    let mut rows = Vec::new();
    let system = live_system_series(ticks);
    for (name, values) in &system {
        rows.push(measure(&format!("system: {name}"), values));
    }
    let n = 36 * BLOCK; // six hours of raw slots at 5 s
    for (name, kind) in [
        ("random walk, full precision", Kind::Walk),
        ("counter", Kind::Counter),
        ("0/1 health", Kind::Health),
    ] {
        let mut g = Gen::new(kind, 1);
        let values: Vec<f64> = (0..n).map(|_| g.next()).collect();
        rows.push(measure(name, &values));
    }

    println!(
        "| data | values | Gorilla XOR | zig-zag delta varint | pco per block | pco whole column | ours per block | ours encode | ours decode |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {:.2} | {} | {:.2} | {:.2} | **{:.2}** | {:.0} ns | {:.0} ns |",
            r.kind,
            r.values,
            r.gorilla,
            r.delta
                .map(|d| format!("{d:.2}"))
                .unwrap_or_else(|| "n/a".into()),
            r.pco_block,
            r.pco_whole,
            r.ours,
            r.encode_ns,
            r.decode_ns
        );
    }
    println!("(bytes per value; encode and decode per value)");

    // Latency histograms: whole minute blocks, ours against format 1.
    let layout = Layout::new(Duration::from_secs(5), 30);
    let spec = &layout.tiers[1];
    let (mut ours, mut v1, mut blocks) = (0usize, 0usize, 0usize);
    let mut rng = Gen::new(Kind::Walk, 7);
    for hour in 0..24i64 {
        let base = hour * 60;
        let mut b = ring::Block::empty(spec, base, true);
        for slot in base..base + 60 {
            for _ in 0..200 {
                let u = rng.uniform();
                let latency = (0.5f64.ln() + u * (5000.0f64.ln() - 0.5f64.ln())).exp();
                let err = u64::from(rng.uniform() < 0.01);
                b.apply_entry(
                    spec,
                    base,
                    slot,
                    &ring::Entry::Hist(Hist::of(latency, 1, err)),
                );
            }
        }
        ours += block_codec::encode(&b, spec, 1).len();
        v1 += codec::encode(&b).len();
        blocks += 1;
    }
    println!(
        "latency histograms, minute blocks of 60 slots x 200 requests: ours {} B per block, format 1 (bincode) {} B ({:.2}x smaller)",
        ours / blocks,
        v1 / blocks,
        v1 as f64 / ours as f64
    );
}
