//! The anomaly detector (`analysis::anomaly`, at its one default
//! sensitivity) scored on the Numenta Anomaly Benchmark corpora in
//! `../shared/data/nab`, with NAB's standard profile as that folder's
//! README states it (run with `cargo run --release --example bench_nab
//! [NAB_DIR]`):
//!
//! - the first 15 % of each file (at most 750 rows) is probation: detections
//!   there do not count;
//! - the first detection in a labelled window earns `sigmoid(p) / sigmoid(-1)`
//!   with `p` from -1 (left edge) to 0 (right edge) and
//!   `sigmoid(x) = 2 / (1 + e^(5x)) - 1`; later ones in the window count for
//!   nothing; a window without one costs 1;
//! - a detection outside every window costs `0.11 * sigmoid(d)` (negative),
//!   `d` its distance past the window before it over that window's width
//!   less one (the full 0.11 beyond 3, or with no window before it);
//! - a corpus scores `100 * (raw - null) / (perfect - null)`: `null` misses
//!   every window, `perfect` finds each at its left edge.
//!
//! Prints each corpus's score and the score of the five together; then
//! the forecast 12 rows ahead (`analysis::forecast`) beside the naive
//! forecast (the last value) and `predict_linear` (a least-squares line
//! through the last 12 rows): the mean over files of MASE (mean absolute
//! error over the mean absolute one-row change), on the same rows for all
//! three, and how often the actual value fell inside the 95 % interval.
//! Both are also given for two halves of the files (every other file of
//! each corpus), so that a choice made on one half is scored on the other.

use mlsec_monitor::analysis::anomaly::Detector;
use mlsec_monitor::analysis::forecast::Forecaster;
use mlsec_monitor::analysis::replay;
use std::collections::BTreeMap;
use std::path::PathBuf;

fn sigmoid(x: f64) -> f64 {
    if x > 3.0 {
        -1.0
    } else {
        2.0 / (1.0 + (5.0 * x).exp()) - 1.0
    }
}

/// Raw score of one file and its number of windows.
fn score_file(rows: &[replay::Row], windows: &[(usize, usize)], detected: &[bool]) -> f64 {
    let probation = (rows.len() * 15 / 100).min(750);
    let mut found = vec![false; windows.len()];
    let mut raw = 0.0;
    for (i, _) in detected.iter().enumerate().filter(|(_, d)| **d) {
        if i < probation {
            continue;
        }
        match windows.iter().position(|(a, b)| (*a..=*b).contains(&i)) {
            Some(w) => {
                if !found[w] {
                    found[w] = true;
                    let (a, b) = windows[w];
                    let width = (b - a + 1) as f64;
                    let p = -((b - i + 1) as f64) / width;
                    raw += sigmoid(p) / sigmoid(-1.0);
                }
            }
            None => {
                raw += match windows.iter().rev().find(|(_, b)| *b < i) {
                    Some((a, b)) => {
                        let width = (b - a + 1) as f64;
                        let d = (i - b) as f64 / (width - 1.0).max(1.0);
                        0.11 * sigmoid(d)
                    }
                    None => -0.11,
                };
            }
        }
    }
    raw - found.iter().filter(|f| !**f).count() as f64
}

/// The rows a window's timestamps span, inclusive.
fn window_rows(rows: &[replay::Row], start: &str, end: &str) -> (usize, usize) {
    let ms = |s: &str| {
        chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
            .expect("a window timestamp")
            .and_utc()
            .timestamp_millis()
    };
    let (a, b) = (ms(start), ms(end));
    let first = rows.partition_point(|r| r.ts_ms < a);
    let last = rows.partition_point(|r| r.ts_ms <= b).saturating_sub(1);
    (first, last)
}

/// The least-squares line through `ys` (at x = 0, 1, ...) at x = `at`.
fn line_at(ys: &[f64], at: f64) -> f64 {
    let n = ys.len() as f64;
    let mx = (n - 1.0) / 2.0;
    let my = ys.iter().sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (x, y) in ys.iter().enumerate() {
        sxy += (x as f64 - mx) * (y - my);
        sxx += (x as f64 - mx).powi(2);
    }
    my + sxy / sxx * (at - mx)
}

/// MASE of ours, naive and linear 12 rows ahead, and the interval's coverage.
fn forecast_file(rows: &[(i64, f64)]) -> Option<([f64; 3], f64)> {
    let values: Vec<f64> = rows.iter().map(|r| r.1).collect();
    const H: usize = 12;
    let denom =
        values.windows(2).map(|w| (w[1] - w[0]).abs()).sum::<f64>() / (values.len() - 1) as f64;
    if denom == 0.0 {
        return None;
    }
    let mut f = Forecaster::new(H);
    let mut err = [0.0f64; 3];
    let (mut n, mut inside) = (0usize, 0usize);
    for i in 0..values.len() {
        let ours = f.step_at(rows[i].0, values[i]);
        let (Some(fc), Some(actual)) = (ours, values.get(i + H)) else {
            continue;
        };
        if i < 11 {
            continue;
        }
        let linear = line_at(&values[i - 11..=i], (11 + H) as f64);
        for (e, guess) in err.iter_mut().zip([fc.value, values[i], linear]) {
            *e += (actual - guess).abs();
        }
        n += 1;
        inside += usize::from((fc.lower..=fc.upper).contains(actual));
    }
    (n > 0).then(|| (err.map(|e| e / n as f64 / denom), inside as f64 / n as f64))
}

fn main() {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/nab"));
    let windows: BTreeMap<String, Vec<(String, String)>> = serde_json::from_str(
        &std::fs::read_to_string(dir.join("windows.json")).expect("windows.json"),
    )
    .expect("windows.json is a map of files to windows");
    // Per corpus: raw, null, perfect, files, rows, detections.
    let mut corpora: BTreeMap<String, (f64, f64, f64, usize, usize, usize)> = BTreeMap::new();
    let started = std::time::Instant::now();
    // Every file read and parsed once.
    let parsed: Vec<Vec<replay::Row>> = windows
        .keys()
        .map(|file| {
            let text = std::fs::read_to_string(dir.join("data").join(file)).expect("a corpus file");
            replay::parse(&text).unwrap_or_else(|e| panic!("{file}: {e}"))
        })
        .collect();
    // Halves for choosing without scoring on the files chosen on: every
    // other file of each corpus, in name order (raw, null, perfect).
    let mut halves = [(0.0f64, 0.0f64, 0.0f64); 2];
    let mut in_corpus: BTreeMap<String, usize> = BTreeMap::new();
    let mut half_of: Vec<usize> = Vec::new();
    for ((file, spans), rows) in windows.iter().zip(&parsed) {
        let mut d = Detector::new();
        let detected: Vec<bool> = rows
            .iter()
            .map(|r| d.step_at(r.ts_ms, r.value).is_anomaly)
            .collect();
        let spans: Vec<(usize, usize)> =
            spans.iter().map(|(a, b)| window_rows(rows, a, b)).collect();
        let raw = score_file(rows, &spans, &detected);
        let corpus = file.split('/').next().unwrap_or("").to_string();
        let c = corpora.entry(corpus).or_default();
        c.0 += raw;
        c.1 -= spans.len() as f64;
        c.2 += spans.len() as f64;
        c.3 += 1;
        c.4 += rows.len();
        c.5 += detected.iter().filter(|d| **d).count();
        let k = in_corpus
            .entry(file.split('/').next().unwrap_or("").to_string())
            .or_default();
        let h = &mut halves[*k % 2];
        half_of.push(*k % 2);
        *k += 1;
        h.0 += raw;
        h.1 -= spans.len() as f64;
        h.2 += spans.len() as f64;
    }
    let took = started.elapsed();
    // The detector alone (what the daemon would run per sample), on every
    // value of every file, three times over.
    let stamped: Vec<Vec<(i64, f64)>> = parsed
        .iter()
        .map(|rows| rows.iter().map(|r| (r.ts_ms, r.value)).collect())
        .collect();
    let values: usize = stamped.iter().map(Vec::len).sum();
    let timed = std::time::Instant::now();
    let mut flagged = 0usize;
    for _ in 0..3 {
        for series in &stamped {
            let mut d = Detector::new();
            flagged += series
                .iter()
                .filter(|(t, v)| d.step_at(*t, *v).is_anomaly)
                .count();
        }
    }
    let per_step = timed.elapsed().as_nanos() as f64 / (3 * values) as f64;
    let mut mase = [0.0f64; 3];
    let mut mase_halves = [[0.0f64; 3]; 2];
    let (mut files, mut coverage) = (0usize, 0.0);
    for (rows, half) in stamped.iter().zip(&half_of) {
        if let Some((m, c)) = forecast_file(rows) {
            for (total, m) in mase.iter_mut().zip(m) {
                *total += m;
            }
            for (total, m) in mase_halves[*half].iter_mut().zip(m) {
                *total += m;
            }
            coverage += c;
            files += 1;
        }
    }
    let ratio = |m: [f64; 3]| m[0] / m[1].min(m[2]);
    println!(
        "NAB standard profile, default sensitivity (threshold {}):",
        mlsec_monitor::analysis::anomaly::THRESHOLD
    );
    let mut total = (0.0, 0.0, 0.0, 0, 0, 0);
    for (name, c) in &corpora {
        let score = if c.2 > c.1 {
            format!("{:.1}", 100.0 * (c.0 - c.1) / (c.2 - c.1))
        } else {
            format!("(no windows; raw {:.2}: false positives only)", c.0)
        };
        println!(
            "  {name}: {score}  ({} files, {} rows, {} windows, {} detections)",
            c.3, c.4, c.2, c.5
        );
        total.0 += c.0;
        total.1 += c.1;
        total.2 += c.2;
        total.3 += c.3;
        total.4 += c.4;
        total.5 += c.5;
    }
    println!(
        "  all five: {:.2}  ({} files, {} rows, {} detections; {:.0} ns per row)",
        100.0 * (total.0 - total.1) / (total.2 - total.1),
        total.3,
        total.4,
        total.5,
        took.as_nanos() as f64 / total.4 as f64
    );
    let half = |h: (f64, f64, f64)| 100.0 * (h.0 - h.1) / (h.2 - h.1);
    println!(
        "  halves (every other file of each corpus): A {:.2}, B {:.2}",
        half(halves[0]),
        half(halves[1])
    );
    println!(
        "detector alone: {per_step:.0} ns per value ({flagged} flagged in 3 passes); {} bytes per series; at 5,000 series every 5 s that is {:.3} % of one core",
        Detector::new().bytes(),
        per_step * 1000.0 / 1e9 * 100.0
    );
    let n = files as f64;
    println!(
        "forecast 12 rows ahead, mean MASE over {files} files (a constant one left out): ours {:.3}, naive {:.3}, predict_linear over 12 rows {:.3}; ours / the better of the two {:.3} (target 0.9); 95 % interval held the value {:.1} % of the time",
        mase[0] / n,
        mase[1] / n,
        mase[2] / n,
        ratio(mase),
        100.0 * coverage / n
    );
    println!(
        "  halves: A {:.3}, B {:.3} (ours / the better)",
        ratio(mase_halves[0]),
        ratio(mase_halves[1])
    );
}
