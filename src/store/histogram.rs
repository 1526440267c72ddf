//! A mergeable latency histogram with log-scale buckets (the idea of
//! DDSketch): bucket `i` holds values in `(γ^(i-1), γ^i]` with
//! `γ = (1+α)/(1-α)`, so reporting a bucket's midpoint is within `α` = 1 %
//! of any value in it. Buckets add up exactly under merge, so a p99 over a
//! month is computed from the merged histogram of its slots, never by
//! averaging percentiles. Kept sparse (sorted `(index, count)` pairs) because
//! a slot usually sees a few dozen distinct buckets.

use serde::{Deserialize, Serialize};

/// Relative accuracy of a quantile.
pub const RELATIVE_ACCURACY: f64 = 0.01;
/// Values at or below this (milliseconds) share the zero bucket.
pub const MIN_VALUE: f64 = 1e-3;
const ZERO_BUCKET: i32 = i32::MIN;

fn gamma_ln() -> f64 {
    ((1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY)).ln()
}

fn bucket_of(v: f64) -> i32 {
    if v <= MIN_VALUE {
        ZERO_BUCKET
    } else {
        (v.ln() / gamma_ln()).ceil() as i32
    }
}

/// The value a bucket stands for: the point with equal relative distance to both ends.
fn value_of(bucket: i32) -> f64 {
    if bucket == ZERO_BUCKET {
        return 0.0;
    }
    let g = gamma_ln().exp();
    2.0 * g.powi(bucket) / (g + 1.0)
}

/// Request statistics of one slot: counts, errors, latency sum/min/max and
/// the latency histogram.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hist {
    pub count: u64,
    pub errors: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    /// Sorted by bucket index.
    pub buckets: Vec<(i32, u64)>,
}

impl Hist {
    /// The share of observations that were errors, in percent (`None` when
    /// there are none).
    pub fn error_percent(&self) -> Option<f64> {
        (self.count > 0).then(|| self.errors as f64 * 100.0 / self.count as f64)
    }

    /// `n` observations of `value`, `errors` of them errors.
    pub fn of(value: f64, n: u64, errors: u64) -> Hist {
        Hist {
            count: n,
            errors,
            sum: value * n as f64,
            min: value,
            max: value,
            buckets: if n > 0 {
                vec![(bucket_of(value), n)]
            } else {
                vec![]
            },
        }
    }

    /// Counts without latencies (a pre-aggregated interval that has no histogram).
    pub fn counts_only(n: u64, errors: u64) -> Hist {
        Hist {
            count: n,
            errors,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            buckets: vec![],
        }
    }

    pub fn merge(&mut self, o: &Hist) {
        self.count = self.count.saturating_add(o.count);
        self.errors = self.errors.saturating_add(o.errors);
        self.sum = super::ring::saturating_sum(self.sum, o.sum);
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        if o.buckets.is_empty() {
            return;
        }
        let mut out = Vec::with_capacity(self.buckets.len() + o.buckets.len());
        let (mut a, mut b) = (self.buckets.iter().peekable(), o.buckets.iter().peekable());
        loop {
            match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if x.0 == y.0 => {
                    out.push((x.0, x.1.saturating_add(y.1)));
                    a.next();
                    b.next();
                }
                (Some(x), Some(y)) if x.0 < y.0 => out.push(*a.next().expect("peeked")),
                (Some(_), Some(_)) => out.push(*b.next().expect("peeked")),
                (Some(_), None) => out.push(*a.next().expect("peeked")),
                (None, Some(_)) => out.push(*b.next().expect("peeked")),
                (None, None) => break,
            }
        }
        self.buckets = out;
    }

    /// Observations that carry a latency.
    pub fn timed(&self) -> u64 {
        self.buckets.iter().map(|(_, c)| c).sum()
    }

    pub fn mean(&self) -> Option<f64> {
        let n = self.timed();
        (n > 0).then(|| self.sum / n as f64)
    }

    /// The `q` quantile (0..=1) of the latencies, within 1 %; `None` without latencies.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let n = self.timed();
        if n == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * (n - 1) as f64).floor() as u64;
        let mut seen = 0;
        for (b, c) in &self.buckets {
            seen += c;
            if seen > rank {
                return Some(value_of(*b).clamp(self.min, self.max));
            }
        }
        Some(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (xorshift) so the test needs no crate.
    fn random_latencies(n: usize, seed: u64) -> Vec<f64> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let u = (x >> 11) as f64 / (1u64 << 53) as f64;
                // Log-uniform from 0.5 ms to 5 s: a long tail like real latencies.
                (0.5f64.ln() + u * (5000.0f64.ln() - 0.5f64.ln())).exp()
            })
            .collect()
    }

    fn exact(sorted: &[f64], q: f64) -> f64 {
        sorted[(q * (sorted.len() - 1) as f64).floor() as usize]
    }

    #[test]
    fn quantiles_are_within_one_percent_also_after_merging() {
        let values = random_latencies(100_000, 0x9e3779b97f4a7c15);
        // Split into 100 slots and merge them, as tiers do.
        let mut merged: Option<Hist> = None;
        for chunk in values.chunks(1000) {
            let mut slot = Hist::of(chunk[0], 1, 0);
            for v in &chunk[1..] {
                slot.merge(&Hist::of(*v, 1, 0));
            }
            match &mut merged {
                Some(m) => m.merge(&slot),
                None => merged = Some(slot),
            }
        }
        let h = merged.unwrap();
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        assert_eq!(h.count, 100_000);
        for q in [0.5, 0.9, 0.95, 0.99, 0.999] {
            let want = exact(&sorted, q);
            let got = h.quantile(q).unwrap();
            let err = (got - want).abs() / want;
            assert!(
                err <= RELATIVE_ACCURACY,
                "q{q}: got {got}, exact {want}, error {err}"
            );
        }
        assert_eq!(h.min, sorted[0]);
        assert_eq!(h.max, sorted[sorted.len() - 1]);
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        assert!((h.mean().unwrap() - mean).abs() < 1e-6 * mean);
    }

    #[test]
    fn counts_errors_and_empty_histograms() {
        let mut h = Hist::counts_only(10, 2);
        assert_eq!(h.quantile(0.5), None);
        h.merge(&Hist::of(0.0, 3, 1));
        assert_eq!((h.count, h.errors, h.timed()), (13, 3, 3));
        assert_eq!(h.quantile(0.99), Some(0.0));
    }
}
