//! A map of name -> current state, kept in memory and persisted in its own
//! sled tree: the shape both models and training jobs share. Changes are
//! all-or-nothing and durable before the caller answers.

use crate::error::{Error, Result};
use crate::store::{Store, codec};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::sync::{RwLock, RwLockWriteGuard};

/// The whole map, locked for writing.
pub type Locked<'a, T> = RwLockWriteGuard<'a, BTreeMap<String, T>>;

/// An event that updates the state of one named thing.
pub trait Event {
    /// The name of the thing whose state it updates.
    fn name(&self) -> &str;
    /// Why the event cannot be applied, if it cannot.
    fn validate(&self) -> std::result::Result<(), String>;
}

/// What a sweep does with one state.
pub enum Change<T> {
    Keep,
    Replace(T),
    Remove,
}

pub struct Persisted<T> {
    tree: crate::store::Vault,
    state: RwLock<BTreeMap<String, T>>,
}

impl<T: Clone + Serialize + DeserializeOwned> Persisted<T> {
    /// Opens tree `name` of the store and loads every state in it.
    pub fn open(store: &Store, name: &str) -> Result<Persisted<T>> {
        Self::open_migrating::<T>(store, name)
    }

    /// As `open`, reading a value written in the layout before this one
    /// (`Old`) when it is not in the current layout.
    pub fn open_migrating<Old: DeserializeOwned + Into<T>>(
        store: &Store,
        name: &str,
    ) -> Result<Persisted<T>> {
        let tree = store.named_tree(name)?;
        let mut state = BTreeMap::new();
        for kv in tree.iter() {
            let (k, v) = kv.map_err(|e| err(store, e))?;
            let key = String::from_utf8_lossy(&k).into_owned();
            let value = codec::decode::<T>(&v)
                .or_else(|e| codec::decode::<Old>(&v).map(Into::into).map_err(|_| e))
                .map_err(|e| err(store, format!("{name}/{key}: {e}")))?;
            state.insert(key, value);
        }
        Ok(Persisted {
            tree,
            state: RwLock::new(state),
        })
    }

    /// Every state, by name.
    pub fn all(&self) -> Vec<T> {
        self.state
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// The tree copied whole while no change can reach it (a backup).
    pub fn copy_tree(&self, store: &Store) -> Result<crate::store::frozen::TreeCopy> {
        let _no_change = self.state.read().unwrap_or_else(|p| p.into_inner());
        crate::store::frozen::copy_tree(self.tree.raw()).map_err(|e| err(store, e))
    }

    pub fn len(&self) -> usize {
        self.state.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checks every event (a 400 naming the first bad one, nothing applied),
    /// then applies them in order (`next` makes a state from the previous one
    /// of the same name, if any), writes all new states to sled in one atomic
    /// batch and syncs it, then publishes them in memory. Returns the new
    /// states and the map, still locked, so the caller can derive its series
    /// from a consistent view. Nothing changes when the write fails.
    pub fn apply<E: Event>(
        &self,
        store: &Store,
        events: &[E],
        next: impl Fn(Option<&T>, &E) -> T,
    ) -> Result<(Vec<T>, Locked<'_, T>)> {
        for (i, e) in events.iter().enumerate() {
            e.validate()
                .map_err(|m| Error::BadRequest(format!("events[{i}]: {m}")))?;
        }
        let mut st = self.state.write().unwrap_or_else(|p| p.into_inner());
        let mut staged: BTreeMap<&str, T> = BTreeMap::new();
        let mut out = Vec::with_capacity(events.len());
        for e in events {
            let key = e.name();
            let state = next(staged.get(key).or_else(|| st.get(key)), e);
            staged.insert(key, state.clone());
            out.push(state);
        }
        let mut batch = crate::store::vault::Batch::default();
        for (key, state) in &staged {
            batch.insert(key.as_bytes(), codec::encode(state));
        }
        self.tree.apply_batch(batch).map_err(|e| err(store, e))?;
        store.sync()?;
        for (key, state) in staged {
            st.insert(key.to_string(), state);
        }
        Ok((out, st))
    }
}

impl<T: Clone + Serialize + DeserializeOwned> Persisted<T> {
    /// Decides for every state whether it stays, changes or goes, writes
    /// the changes in one atomic batch and syncs it, then applies them in
    /// memory. Returns the new states, how many were removed, and the map,
    /// still locked. Nothing changes when the write fails.
    pub fn sweep(
        &self,
        store: &Store,
        decide: impl Fn(&T) -> Change<T>,
    ) -> Result<(Vec<T>, usize, Locked<'_, T>)> {
        let mut st = self.state.write().unwrap_or_else(|p| p.into_inner());
        let mut replaced = Vec::new();
        let mut removed = Vec::new();
        for (key, state) in st.iter() {
            match decide(state) {
                Change::Keep => {}
                Change::Replace(new) => replaced.push((key.clone(), new)),
                Change::Remove => removed.push(key.clone()),
            }
        }
        if replaced.is_empty() && removed.is_empty() {
            return Ok((Vec::new(), 0, st));
        }
        let mut batch = crate::store::vault::Batch::default();
        for (key, state) in &replaced {
            batch.insert(key.as_bytes(), codec::encode(state));
        }
        for key in &removed {
            batch.remove(key.as_bytes());
        }
        self.tree.apply_batch(batch).map_err(|e| err(store, e))?;
        store.sync()?;
        for key in &removed {
            st.remove(key);
        }
        let mut out = Vec::with_capacity(replaced.len());
        for (key, state) in replaced {
            st.insert(key, state.clone());
            out.push(state);
        }
        Ok((out, removed.len(), st))
    }
}

fn err(store: &Store, e: impl std::fmt::Display) -> Error {
    Error::Store {
        dir: store.dir().to_path_buf(),
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    struct Named(&'static str);

    impl Event for Named {
        fn name(&self) -> &str {
            self.0
        }
        fn validate(&self) -> std::result::Result<(), String> {
            Ok(())
        }
    }

    fn open(dir: &std::path::Path) -> (Store, Persisted<(String, u32)>) {
        let store = Store::open(
            dir,
            crate::store::Layout::new(Duration::from_secs(5), 3),
            100,
        )
        .expect("store");
        let map = Persisted::open(&store, "things").expect("map");
        (store, map)
    }

    #[test]
    fn a_batch_sees_its_own_earlier_events_and_survives_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let (store, map) = open(dir.path());
            let count = |prev: Option<&(String, u32)>, e: &Named| {
                (e.0.to_string(), prev.map_or(1, |(_, n)| n + 1))
            };
            let (out, all) = map
                .apply(&store, &[Named("a"), Named("b"), Named("a")], count)
                .expect("apply");
            assert_eq!(out.iter().map(|(_, n)| *n).collect::<Vec<_>>(), [1, 1, 2]);
            assert_eq!(all.len(), 2);
            drop(all);
            drop(map.apply(&store, &[Named("a")], count).expect("apply"));
        }
        let (_, map) = open(dir.path());
        assert_eq!(
            map.all(),
            [("a".to_string(), 3), ("b".to_string(), 1)],
            "persisted"
        );
    }
}
