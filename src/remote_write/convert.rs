//! Stored samples as the series a PromQL user expects. A gauge ships as it
//! is. Request statistics (one interval's histogram) ship as cumulative
//! counters, `<metric>_total`, `<metric>_errors_total`,
//! `<metric>_duration_ms_sum` and `<metric>_duration_ms_count` (they start
//! again from 0 when the daemon restarts, which `rate()` reads as a counter
//! reset), and the interval's `<metric>_duration_ms{quantile="0.5|0.95|0.99"}`.

use super::proto::{Label, Sample, TimeSeries, WriteRequest};
use crate::store::{SeriesId, SeriesKey, Store, TapBatch, Tapped};
use std::collections::{BTreeMap, HashMap};

#[derive(Default, Clone, Copy)]
struct Totals {
    count: u64,
    errors: u64,
    sum_ms: f64,
    timed: u64,
}

/// Turns tapped batches into time series, buffering until `take`.
pub struct Converter {
    external: BTreeMap<String, String>,
    keys: HashMap<SeriesId, SeriesKey>,
    totals: HashMap<SeriesId, Totals>,
    pending: BTreeMap<Vec<Label>, Vec<Sample>>,
    samples: usize,
}

impl Converter {
    pub fn new(external: BTreeMap<String, String>) -> Converter {
        Converter {
            external,
            keys: HashMap::new(),
            totals: HashMap::new(),
            pending: BTreeMap::new(),
            samples: 0,
        }
    }

    /// Samples waiting for `take`.
    pub fn len(&self) -> usize {
        self.samples
    }

    pub fn is_empty(&self) -> bool {
        self.samples == 0
    }

    /// The labels of `metric` with the series' labels, then the external
    /// labels it does not have, sorted by name.
    fn labels(&self, metric: &str, key: &SeriesKey, extra: Option<(&str, &str)>) -> Vec<Label> {
        let mut m: BTreeMap<&str, &str> = key
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        for (k, v) in &self.external {
            m.entry(k.as_str()).or_insert(v.as_str());
        }
        if let Some((k, v)) = extra {
            m.insert(k, v);
        }
        m.insert("__name__", metric);
        m.into_iter()
            .map(|(name, value)| Label {
                name: name.to_string(),
                value: value.to_string(),
            })
            .collect()
    }

    fn push(&mut self, labels: Vec<Label>, timestamp: i64, value: f64) {
        self.pending
            .entry(labels)
            .or_default()
            .push(Sample { value, timestamp });
        self.samples += 1;
    }

    pub fn add(&mut self, store: &Store, batch: TapBatch) {
        for (id, ts, value) in batch {
            let key = match self.keys.entry(id) {
                std::collections::hash_map::Entry::Occupied(e) => e.get().clone(),
                std::collections::hash_map::Entry::Vacant(e) => match store.key_of(id) {
                    Some(k) => e.insert(k).clone(),
                    None => continue,
                },
            };
            match value {
                Tapped::Gauge(v) => {
                    let labels = self.labels(&key.metric, &key, None);
                    self.push(labels, ts, v);
                }
                Tapped::Requests(h) => {
                    let t = self.totals.entry(id).or_default();
                    t.count = t.count.saturating_add(h.count);
                    t.errors = t.errors.saturating_add(h.errors);
                    t.sum_ms += h.sum;
                    t.timed = t.timed.saturating_add(h.timed());
                    let t = *t;
                    let m = &key.metric;
                    for (name, v) in [
                        (format!("{m}_total"), t.count as f64),
                        (format!("{m}_errors_total"), t.errors as f64),
                        (format!("{m}_duration_ms_sum"), t.sum_ms),
                        (format!("{m}_duration_ms_count"), t.timed as f64),
                    ] {
                        let labels = self.labels(&name, &key, None);
                        self.push(labels, ts, v);
                    }
                    let name = format!("{m}_duration_ms");
                    for (q, label) in [(0.5, "0.5"), (0.95, "0.95"), (0.99, "0.99")] {
                        if let Some(v) = h.quantile(q) {
                            let labels = self.labels(&name, &key, Some(("quantile", label)));
                            self.push(labels, ts, v);
                        }
                    }
                }
            }
        }
    }

    /// Everything buffered as one request (each series' samples oldest
    /// first), and how many samples it holds.
    pub fn take(&mut self) -> (WriteRequest, usize) {
        let n = std::mem::take(&mut self.samples);
        let timeseries = std::mem::take(&mut self.pending)
            .into_iter()
            .map(|(labels, mut samples)| {
                samples.sort_by_key(|s| s.timestamp);
                TimeSeries { labels, samples }
            })
            .collect();
        (WriteRequest { timeseries }, n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Hist, Layout};

    fn names(req: &WriteRequest) -> Vec<(String, Vec<f64>)> {
        req.timeseries
            .iter()
            .map(|t| {
                let labels: Vec<String> = t
                    .labels
                    .iter()
                    .map(|l| format!("{}={}", l.name, l.value))
                    .collect();
                (
                    labels.join(","),
                    t.samples.iter().map(|s| s.value).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn gauges_as_they_are_and_request_statistics_as_counters() {
        let dir = tempfile::tempdir().expect("tempdir");
        let layout = Layout::new(std::time::Duration::from_secs(5), 3);
        let store = Store::open(dir.path(), layout, 100).expect("store");
        let gauge = store
            .resolve(&SeriesKey::new("queue_depth").with("site", "a"))
            .expect("id");
        let requests = store
            .resolve_hist(&SeriesKey::new("http_requests").with("service", "api"))
            .expect("id");
        let external = BTreeMap::from([
            ("edge".to_string(), "7".to_string()),
            ("site".to_string(), "ignored".to_string()),
        ]);
        let mut c = Converter::new(external);
        c.add(
            &store,
            vec![
                (gauge, 1_000, Tapped::Gauge(3.0)),
                (requests, 1_000, Tapped::Requests(Hist::of(100.0, 10, 2))),
                (requests, 2_000, Tapped::Requests(Hist::of(100.0, 10, 0))),
            ],
        );
        let (req, n) = c.take();
        assert!(c.is_empty());
        let got = names(&req);
        let find = |l: &str| {
            got.iter()
                .find(|(k, _)| k == l)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("no {l} in {got:?}"))
        };
        // Sorted labels, the series' own label wins over an external one.
        assert_eq!(find("__name__=queue_depth,edge=7,site=a"), [3.0]);
        // External labels the series lacks are added.
        let api = "edge=7,service=api,site=ignored";
        assert_eq!(
            find(&format!("__name__=http_requests_total,{api}")),
            [10.0, 20.0]
        );
        assert_eq!(
            find(&format!("__name__=http_requests_errors_total,{api}")),
            [2.0, 2.0]
        );
        assert_eq!(
            find(&format!("__name__=http_requests_duration_ms_count,{api}")),
            [10.0, 20.0]
        );
        assert_eq!(
            find(&format!("__name__=http_requests_duration_ms_sum,{api}")),
            [1000.0, 2000.0]
        );
        let p95 = find(
            "__name__=http_requests_duration_ms,edge=7,quantile=0.95,service=api,site=ignored",
        );
        assert!((p95[0] - 100.0).abs() <= 1.0, "{p95:?}");
        assert_eq!(n, 1 + 2 * (4 + 3));
    }
}
