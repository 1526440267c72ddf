//! The series registry: id <-> canonical key, the series' kind, and the
//! label index that rules and queries look series up by. Persisted in the
//! `series` tree (`id (u32 BE) -> kind byte + canonical key`); ids are dense
//! and never reused, so the tree only ever grows by one key per new series.

use super::keys::{SeriesId, SeriesKey};
use crate::error::{Error, Result};
use std::collections::{HashMap, HashSet};

/// The first byte of a registry value: the series' kind.
const KIND_GAUGE: u8 = b'g';
const KIND_HIST: u8 = b'h';

/// Every series is held once, as its canonical text (`SeriesKey`'s
/// `Display`): a `SeriesKey` held per series cost about 1.1 kB (its label
/// map allocates a whole B-tree node), the text a few dozen bytes. Keys are
/// found by hash and confirmed against the text.
pub(super) struct Registry {
    keys: Vec<Box<str>>,
    /// Key hash -> id; `collided` holds the (rare) ids whose hash an
    /// earlier key already had.
    ids: HashMap<u64, SeriesId>,
    collided: Vec<(u64, SeriesId)>,
    /// Per series id: a histogram (request statistics) series.
    hist: Vec<bool>,
    /// Series ids by metric name, so a rule or a query by metric does not scan every series.
    by_metric: HashMap<Box<str>, Vec<SeriesId>>,
    /// Series ids by the hash of (metric, label name, label value): rules
    /// with an equality matcher look at their posting list only (and check
    /// each series' labels, so a shared hash costs only a longer list).
    by_label: HashMap<u64, Vec<SeriesId>>,
    max_series: usize,
}

fn label_hash(metric: &str, name: &str, value: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    (metric, name, value).hash(&mut h);
    h.finish()
}

impl Registry {
    /// Reads every registered series; `Err` names what is corrupt.
    pub fn load(
        tree: &crate::store::Vault,
        max_series: usize,
    ) -> std::result::Result<Registry, String> {
        let mut reg = Registry {
            keys: Vec::new(),
            ids: HashMap::new(),
            collided: Vec::new(),
            hist: Vec::new(),
            by_metric: HashMap::new(),
            by_label: HashMap::new(),
            max_series,
        };
        for kv in tree.iter() {
            let (k, v) = kv.map_err(|e| e.to_string())?;
            let id = u32::from_be_bytes(
                k.as_ref()
                    .try_into()
                    .map_err(|_| "corrupt series id".to_string())?,
            );
            let (kind, text) = v.split_first().unwrap_or((&0, &[]));
            let key = std::str::from_utf8(text)
                .ok()
                .and_then(SeriesKey::parse)
                .filter(|_| [KIND_GAUGE, KIND_HIST].contains(kind))
                .ok_or_else(|| format!("corrupt series entry {id}"))?;
            if id as usize != reg.keys.len() {
                return Err(format!("series registry has a gap at id {id}"));
            }
            reg.add(&key, *kind == KIND_HIST);
        }
        reg.keys.shrink_to_fit();
        Ok(reg)
    }

    fn add(&mut self, key: &SeriesKey, hist: bool) -> SeriesId {
        let id = self.keys.len() as SeriesId;
        match self.by_metric.get_mut(key.metric.as_str()) {
            Some(ids) => ids.push(id),
            None => {
                self.by_metric.insert(key.metric.as_str().into(), vec![id]);
            }
        }
        for (n, v) in &key.labels {
            self.by_label
                .entry(label_hash(&key.metric, n, v))
                .or_default()
                .push(id);
        }
        let hash = key.hash64();
        match self.ids.entry(hash) {
            std::collections::hash_map::Entry::Occupied(_) => self.collided.push((hash, id)),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(id);
            }
        }
        self.keys.push(key.to_string().into_boxed_str());
        self.hist.push(hist);
        id
    }

    /// The key of series `id`.
    /// The canonical text of series `id` (`metric{a="b"}`, `SeriesKey`'s `Display`).
    pub(super) fn text(&self, id: SeriesId) -> &str {
        &self.keys[id as usize]
    }

    pub(super) fn key(&self, id: SeriesId) -> SeriesKey {
        let text = &self.keys[id as usize];
        SeriesKey::parse(text).unwrap_or_else(|| SeriesKey::new(text))
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn lookup(&self, key: &SeriesKey) -> Option<SeriesId> {
        let hash = key.hash64();
        let first = self.ids.get(&hash)?;
        std::iter::once(*first)
            .chain(
                self.collided
                    .iter()
                    .filter(|(h, _)| *h == hash)
                    .map(|(_, id)| *id),
            )
            .find(|id| key.is_written_as(&self.keys[*id as usize]))
    }

    pub fn is_hist(&self, id: SeriesId) -> bool {
        self.hist.get(id as usize).copied().unwrap_or(false)
    }

    /// The id of `key`, registering it (and writing it to `tree`) when new.
    pub fn resolve(
        &mut self,
        tree: &crate::store::Vault,
        key: &SeriesKey,
        hist: bool,
        sled_err: impl Fn(sled::Error) -> Error,
    ) -> Result<SeriesId> {
        if let Some(id) = self.lookup(key) {
            if self.hist[id as usize] != hist {
                return Err(Error::BadRequest(format!(
                    "series {key} already exists as a {} series",
                    if hist {
                        "plain value"
                    } else {
                        "request statistics"
                    }
                )));
            }
            return Ok(id);
        }
        if self.keys.len() >= self.max_series {
            return Err(Error::Capacity(format!(
                "series limit reached: {} series exist, the limit is {} (MAX_SERIES)",
                self.keys.len(),
                self.max_series
            )));
        }
        let id = self.keys.len() as SeriesId;
        let mut value = vec![if hist { KIND_HIST } else { KIND_GAUGE }];
        value.extend_from_slice(key.to_string().as_bytes());
        tree.insert(id.to_be_bytes(), value).map_err(sled_err)?;
        Ok(self.add(key, hist))
    }

    /// Checks that `keys` can all be resolved as gauges at once: none is a
    /// histogram series and the new ones fit under the series limit. Returns
    /// the id of each key that already exists, so only the new ones need
    /// `resolve`.
    pub fn check_gauges(&self, keys: &[SeriesKey]) -> Result<Vec<Option<SeriesId>>> {
        let mut new = HashSet::new();
        let mut known = Vec::with_capacity(keys.len());
        for k in keys {
            let id = self.lookup(k);
            match id {
                Some(id) if self.hist[id as usize] => {
                    return Err(Error::BadRequest(format!(
                        "series {k} holds request statistics, not plain values"
                    )));
                }
                Some(_) => {}
                None => {
                    new.insert(k);
                }
            }
            known.push(id);
        }
        if self.keys.len() + new.len() > self.max_series {
            return Err(Error::Capacity(format!(
                "series limit reached: {} series exist, this request adds {}, the limit is {} (MAX_SERIES)",
                self.keys.len(),
                new.len(),
                self.max_series
            )));
        }
        Ok(known)
    }

    /// Every series of `metric` that has all the `equal` labels and for which
    /// `keep` holds, looked up through the label index.
    pub fn find_with(
        &self,
        metric: &str,
        equal: &[(&str, &str)],
        keep: impl Fn(&SeriesKey) -> bool,
    ) -> Vec<(SeriesId, SeriesKey)> {
        let lists: Option<Vec<&Vec<SeriesId>>> = equal
            .iter()
            .map(|(n, v)| self.by_label.get(&label_hash(metric, n, v)))
            .collect();
        let candidates: &[SeriesId] = match lists {
            None => return Vec::new(),
            Some(l) => match l.into_iter().min_by_key(|l| l.len()) {
                Some(shortest) => shortest,
                None => self.by_metric.get(metric).map(Vec::as_slice).unwrap_or(&[]),
            },
        };
        candidates
            .iter()
            .filter_map(|id| {
                let k = self.key(*id);
                (k.metric == metric && equal.iter().all(|(n, v)| k.label(n) == Some(v)) && keep(&k))
                    .then_some((*id, k))
            })
            .collect()
    }

    /// Every series of `metric` (any when `None`) for which `keep` holds.
    pub fn find_by(
        &self,
        metric: Option<&str>,
        keep: impl Fn(&SeriesKey) -> bool,
    ) -> Vec<(SeriesId, SeriesKey)> {
        let pick = |id: SeriesId| {
            let k = self.key(id);
            keep(&k).then_some((id, k))
        };
        match metric {
            Some(m) => self
                .by_metric
                .get(m)
                .map(|ids| ids.iter().filter_map(|id| pick(*id)).collect())
                .unwrap_or_default(),
            None => (0..self.keys.len() as SeriesId).filter_map(pick).collect(),
        }
    }
}
