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

pub(super) struct Registry {
    ids: HashMap<SeriesKey, SeriesId>,
    keys: Vec<SeriesKey>,
    /// Per series id: a histogram (request statistics) series.
    hist: Vec<bool>,
    /// Series ids by metric name, so a rule or a query by metric does not scan every series.
    by_metric: HashMap<String, Vec<SeriesId>>,
    /// Series ids by (metric, label name, label value): rules with an
    /// equality matcher look at their posting list only.
    by_label: HashMap<(String, String, String), Vec<SeriesId>>,
    max_series: usize,
}

impl Registry {
    /// Reads every registered series; `Err` names what is corrupt.
    pub fn load(tree: &sled::Tree, max_series: usize) -> std::result::Result<Registry, String> {
        let mut reg = Registry {
            ids: HashMap::new(),
            keys: Vec::new(),
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
            reg.add(key, *kind == KIND_HIST);
        }
        Ok(reg)
    }

    fn add(&mut self, key: SeriesKey, hist: bool) -> SeriesId {
        let id = self.keys.len() as SeriesId;
        self.by_metric
            .entry(key.metric.clone())
            .or_default()
            .push(id);
        for (n, v) in &key.labels {
            self.by_label
                .entry((key.metric.clone(), n.clone(), v.clone()))
                .or_default()
                .push(id);
        }
        self.ids.insert(key.clone(), id);
        self.keys.push(key);
        self.hist.push(hist);
        id
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn lookup(&self, key: &SeriesKey) -> Option<SeriesId> {
        self.ids.get(key).copied()
    }

    pub fn is_hist(&self, id: SeriesId) -> bool {
        self.hist.get(id as usize).copied().unwrap_or(false)
    }

    /// The id of `key`, registering it (and writing it to `tree`) when new.
    pub fn resolve(
        &mut self,
        tree: &sled::Tree,
        key: &SeriesKey,
        hist: bool,
        sled_err: impl Fn(sled::Error) -> Error,
    ) -> Result<SeriesId> {
        if let Some(id) = self.ids.get(key) {
            if self.hist[*id as usize] != hist {
                return Err(Error::BadRequest(format!(
                    "series {key} already exists as a {} series",
                    if hist {
                        "plain value"
                    } else {
                        "request statistics"
                    }
                )));
            }
            return Ok(*id);
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
        Ok(self.add(key.clone(), hist))
    }

    /// Checks that `keys` can all be resolved as gauges at once: none is a
    /// histogram series and the new ones fit under the series limit.
    pub fn check_gauges(&self, keys: &[SeriesKey]) -> Result<()> {
        let mut new = HashSet::new();
        for k in keys {
            match self.ids.get(k) {
                Some(id) if self.hist[*id as usize] => {
                    return Err(Error::BadRequest(format!(
                        "series {k} holds request statistics, not plain values"
                    )));
                }
                Some(_) => {}
                None => {
                    new.insert(k);
                }
            }
        }
        if self.keys.len() + new.len() > self.max_series {
            return Err(Error::Capacity(format!(
                "series limit reached: {} series exist, this request adds {}, the limit is {} (MAX_SERIES)",
                self.keys.len(),
                new.len(),
                self.max_series
            )));
        }
        Ok(())
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
            .map(|(n, v)| {
                self.by_label
                    .get(&(metric.to_string(), n.to_string(), v.to_string()))
            })
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
                let k = &self.keys[*id as usize];
                (equal.iter().all(|(n, v)| k.label(n) == Some(v)) && keep(k))
                    .then(|| (*id, k.clone()))
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
            let k = &self.keys[id as usize];
            keep(k).then(|| (id, k.clone()))
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
