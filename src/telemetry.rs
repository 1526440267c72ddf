//! The daemon's measurements of itself, for `GET /metrics`: a latency
//! histogram with fixed buckets that any thread records into without a
//! lock, and counters by label. A leaf module: the store, alerting and the
//! API record here; the API reads.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds in seconds, from a fast answer to a slow flush.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Counts of observations per bucket (the last one past every bound), and
/// their sum in nanoseconds.
pub struct Histogram {
    counts: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_nanos: AtomicU64::new(0),
        }
    }
}

/// A histogram as read: cumulative counts per upper bound, sum and count.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HistogramSnapshot {
    pub buckets: Vec<(f64, u64)>,
    pub sum_seconds: f64,
    pub count: u64,
}

impl Histogram {
    pub fn observe(&self, d: std::time::Duration) {
        let s = d.as_secs_f64();
        let i = LATENCY_BUCKETS
            .iter()
            .position(|b| s <= *b)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut running = 0;
        let mut buckets = Vec::with_capacity(LATENCY_BUCKETS.len());
        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
            running += self.counts[i].load(Ordering::Relaxed);
            buckets.push((*bound, running));
        }
        let count = running + self.counts[LATENCY_BUCKETS.len()].load(Ordering::Relaxed);
        HistogramSnapshot {
            buckets,
            sum_seconds: self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
            count,
        }
    }
}

/// Counters by a label set `K` (kept small by its callers: routes, not paths).
pub struct Counters<K: Ord + Clone> {
    by: Mutex<BTreeMap<K, u64>>,
}

impl<K: Ord + Clone> Default for Counters<K> {
    fn default() -> Self {
        Counters {
            by: Mutex::new(BTreeMap::new()),
        }
    }
}

impl<K: Ord + Clone> Counters<K> {
    pub fn add(&self, key: K, n: u64) {
        let mut by = self.by.lock().unwrap_or_else(|p| p.into_inner());
        let c = by.entry(key).or_insert(0);
        *c = c.saturating_add(n);
    }

    pub fn snapshot(&self) -> Vec<(K, u64)> {
        let by = self.by.lock().unwrap_or_else(|p| p.into_inner());
        by.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn buckets_are_cumulative_and_the_sum_exact() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(300));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(60));
        let s = h.snapshot();
        assert_eq!(s.count, 3);
        assert_eq!(s.buckets[0], (0.0005, 1));
        assert_eq!(s.buckets[3], (0.005, 2));
        assert_eq!(
            s.buckets.last(),
            Some(&(10.0, 2)),
            "60 s is past every bound"
        );
        assert!((s.sum_seconds - 60.0033).abs() < 1e-9);
    }

    #[test]
    fn counters_by_label() {
        let c = Counters::default();
        c.add(("a", 200), 1);
        c.add(("a", 200), 2);
        c.add(("b", 404), 1);
        assert_eq!(c.snapshot(), vec![(("a", 200), 3), (("b", 404), 1)]);
    }
}
