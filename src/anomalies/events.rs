//! Anomaly events: one per anomaly the detector reports, from the value
//! that raised it until the score falls back (or the series goes quiet),
//! with its peak. Kept in memory and in sled at fixed ring keys (the
//! newest `CAPACITY`; sled never gives back the space of deleted keys, so
//! an event overwrites the key of the one `CAPACITY` before it).

use crate::error::{Error, Result};
use crate::store::{Store, Vault, codec};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Events kept.
pub const CAPACITY: u64 = 10_000;
const TREE: &str = "anomalies";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: u64,
    pub metric: String,
    pub labels: BTreeMap<String, String>,
    /// `value` for a gauge; `request_rate`, `error_rate` or `latency_p95`
    /// for request statistics.
    pub signal: String,
    /// The start of the slot whose value raised it.
    pub start: DateTime<Utc>,
    /// The start of the first slot that scored below the close score
    /// (`None` while it lasts).
    pub end: Option<DateTime<Utc>>,
    pub peak_score: f64,
    pub peak_at: DateTime<Utc>,
    /// The value at the peak, and the range it was expected in.
    pub value: f64,
    pub expected_low: Option<f64>,
    pub expected_high: Option<f64>,
}

/// Which events to list.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub metric: Option<String>,
    pub service: Option<String>,
    /// Events that overlap `[from, to]`.
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

impl Filter {
    fn keeps(&self, e: &Event) -> bool {
        self.metric.as_ref().is_none_or(|m| *m == e.metric)
            && self
                .service
                .as_ref()
                .is_none_or(|s| e.labels.get("service") == Some(s))
            && self.from.is_none_or(|f| e.end.is_none_or(|end| end >= f))
            && self.to.is_none_or(|t| e.start <= t)
    }
}

pub struct Events {
    tree: Vault,
    /// Oldest first.
    recent: Mutex<VecDeque<Event>>,
    /// The id the next new event takes.
    next: AtomicU64,
}

fn err(store: &Store, e: impl std::fmt::Display) -> Error {
    Error::Store {
        dir: store.dir().to_path_buf(),
        message: format!("anomaly events: {e}"),
    }
}

fn slot_key(id: u64) -> [u8; 8] {
    (id % CAPACITY).to_be_bytes()
}

impl Events {
    pub fn open(store: &Store) -> Result<Events> {
        let tree = store.tree(TREE)?;
        let mut all = Vec::new();
        for kv in tree.iter() {
            let (_, v) = kv.map_err(|e| err(store, e))?;
            all.push(codec::decode::<Event>(&v).map_err(|e| err(store, e))?);
        }
        all.sort_by_key(|e| e.id);
        let next = all.last().map_or(1, |e| e.id + 1);
        Ok(Events {
            tree,
            recent: Mutex::new(all.into()),
            next: AtomicU64::new(next),
        })
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, VecDeque<Event>> {
        self.recent.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The id the next new event takes.
    pub fn next_id(&self) -> u64 {
        self.next.load(Ordering::Relaxed)
    }

    /// An id for a new event, never given before.
    pub fn new_id(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// Stores a new event or a change of one (by id), in memory and in sled.
    pub fn put(&self, e: &Event) -> sled::Result<()> {
        self.tree.insert(slot_key(e.id), codec::encode(e))?;
        self.next.fetch_max(e.id + 1, Ordering::Relaxed);
        let mut recent = self.recent();
        match recent.iter_mut().rev().find(|o| o.id == e.id) {
            Some(o) => *o = e.clone(),
            None => {
                recent.push_back(e.clone());
                while recent.len() as u64 > CAPACITY {
                    recent.pop_front();
                }
            }
        }
        Ok(())
    }

    /// Events `filter` keeps, newest first, at most `limit`, and how many
    /// it keeps in all.
    pub fn list(&self, filter: &Filter, limit: usize) -> (Vec<Event>, usize) {
        let recent = self.recent();
        let mut total = 0;
        let mut out = Vec::new();
        for e in recent.iter().rev().filter(|e| filter.keeps(e)) {
            total += 1;
            if out.len() < limit {
                out.push(e.clone());
            }
        }
        (out, total)
    }

    /// The tree copied whole while no event changes (a backup).
    pub fn copy_tree(&self, store: &Store) -> Result<crate::store::frozen::TreeCopy> {
        let _still = self.recent();
        crate::store::frozen::copy_tree(self.tree.raw()).map_err(|e| err(store, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn event(id: u64, service: &str, start_s: i64, end_s: Option<i64>) -> Event {
        let t = |s| DateTime::from_timestamp(s, 0).unwrap();
        Event {
            id,
            metric: "response_time_ms".into(),
            labels: [("service".to_string(), service.to_string())].into(),
            signal: "value".into(),
            start: t(start_s),
            end: end_s.map(t),
            peak_score: 0.99995,
            peak_at: t(start_s),
            value: 900.0,
            expected_low: Some(10.0),
            expected_high: Some(40.0),
        }
    }

    #[test]
    fn events_are_kept_filtered_and_survive_a_reopen_in_a_bounded_ring() {
        let dir = tempfile::tempdir().unwrap();
        let layout = crate::store::Layout::new(Duration::from_secs(5), 30);
        {
            let store = Store::open(dir.path(), layout, 100).unwrap();
            let ev = Events::open(&store).unwrap();
            assert_eq!(ev.next_id(), 1);
            ev.put(&event(1, "api", 1000, Some(1100))).unwrap();
            ev.put(&event(2, "db", 2000, None)).unwrap();
            let mut closed = event(2, "db", 2000, Some(2500));
            closed.peak_score = 0.999999;
            ev.put(&closed).unwrap();
            store.sync().unwrap();
        }
        std::thread::sleep(Duration::from_millis(200));
        let store = Store::open(dir.path(), layout, 100).unwrap();
        let ev = Events::open(&store).unwrap();
        assert_eq!(ev.next_id(), 3);
        let (all, total) = ev.list(&Filter::default(), 10);
        assert_eq!(total, 2);
        assert_eq!(all[0].id, 2, "newest first");
        assert_eq!(all[0].end, DateTime::from_timestamp(2500, 0));
        let only = |f: Filter| ev.list(&f, 10).0.iter().map(|e| e.id).collect::<Vec<_>>();
        assert_eq!(
            only(Filter {
                service: Some("api".into()),
                ..Filter::default()
            }),
            [1]
        );
        let at = |s| DateTime::from_timestamp(s, 0);
        assert_eq!(
            only(Filter {
                from: at(1200),
                ..Filter::default()
            }),
            [2]
        );
        assert_eq!(
            only(Filter {
                to: at(1500),
                ..Filter::default()
            }),
            [1]
        );
        assert_eq!(ev.list(&Filter::default(), 1).0.len(), 1);
        // The ring overwrites the oldest key: the tree never grows past it.
        for id in 3..=CAPACITY + 5 {
            ev.put(&event(id, "api", id as i64, Some(id as i64 + 1)))
                .unwrap();
        }
        assert_eq!(ev.list(&Filter::default(), 1).1 as u64, CAPACITY);
        assert_eq!(ev.tree.raw().len() as u64, CAPACITY);
    }
}
