//! A sled tree whose values are encrypted when the daemon has a key
//! (`ENCRYPTION_KEY_FILE`): every tree the daemon writes goes through a
//! [`Vault`], so no value reaches sled in the clear by an oversight.
//!
//! - Without a key a vault is the tree itself: the same bytes on disk.
//! - With one, a value is stored encrypted for its place (the vault's
//!   label and the key), so a value moved to another key or tree does not
//!   decrypt. One that does not decrypt reads as `sled::Error::Corruption`
//!   ([`unreadable`] tells it apart): the store counts it as a damaged
//!   block, the other modules refuse to start on it as on any damage.
//! - A *named* vault (models, jobs, tokens: keyed by a name that can reveal
//!   data) stores under the name's keyed hash instead, with the name
//!   encrypted inside the value; lookups by name work, iteration gives the
//!   names back (in hash order, not name order), ranges do not apply.
//!
//! Backups copy the stored bytes as they are ([`Vault::raw`]): an archive
//! of an encrypted directory stays encrypted and restores with the same key.

use super::cipher::Cipher;
use sled::IVec;
use std::sync::Arc;

#[derive(Clone)]
pub struct Vault {
    tree: sled::Tree,
    lock: Option<Lock>,
}

/// The key and the place a vault's values are encrypted for.
#[derive(Clone)]
struct Lock {
    cipher: Arc<Cipher>,
    label: Arc<[u8]>,
    named: bool,
}

/// Whether `e` is a value that does not decrypt (damaged, or moved).
pub fn unreadable(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Corruption { .. })
}

fn unreadable_error() -> sled::Error {
    sled::Error::Corruption { at: None, bt: () }
}

impl Lock {
    fn context(&self, stored_key: &[u8]) -> Vec<u8> {
        let mut c = Vec::with_capacity(self.label.len() + 1 + stored_key.len());
        c.extend_from_slice(&self.label);
        c.push(0);
        c.extend_from_slice(stored_key);
        c
    }

    fn stored_key(&self, key: &[u8]) -> IVec {
        if self.named {
            IVec::from(&self.cipher.name(key)[..])
        } else {
            IVec::from(key)
        }
    }

    fn encrypt(&self, key: &[u8], value: &[u8]) -> (IVec, IVec) {
        let stored = self.stored_key(key);
        let plain = if self.named {
            let mut p = Vec::with_capacity(4 + key.len() + value.len());
            p.extend_from_slice(&(key.len() as u32).to_le_bytes());
            p.extend_from_slice(key);
            p.extend_from_slice(value);
            p
        } else {
            value.to_vec()
        };
        let sealed = self.cipher.encrypt(&plain, &self.context(&stored));
        (stored, IVec::from(sealed))
    }

    /// The key and value as written, from what is stored.
    fn decrypt(&self, stored_key: IVec, stored: &[u8]) -> sled::Result<(IVec, IVec)> {
        let plain = self
            .cipher
            .decrypt(stored, &self.context(&stored_key))
            .map_err(|_| unreadable_error())?;
        if !self.named {
            return Ok((stored_key, IVec::from(plain)));
        }
        let len = plain
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
            .ok_or_else(unreadable_error)? as usize;
        let name = plain.get(4..4 + len).ok_or_else(unreadable_error)?;
        Ok((IVec::from(name), IVec::from(&plain[4 + len..])))
    }
}

impl Vault {
    /// `tree`, encrypted with `cipher` (if any) for the place `label` names
    /// (unique per tree: `db/alerts`, `1m/blocks`).
    pub fn new(tree: sled::Tree, label: &str, cipher: Option<&Arc<Cipher>>) -> Vault {
        Vault {
            tree,
            lock: cipher.map(|c| Lock {
                cipher: Arc::clone(c),
                label: Arc::from(label.as_bytes()),
                named: false,
            }),
        }
    }

    /// As `new`, for a tree keyed by names that must not show on disk.
    pub fn named(tree: sled::Tree, label: &str, cipher: Option<&Arc<Cipher>>) -> Vault {
        let mut v = Vault::new(tree, label, cipher);
        if let Some(l) = &mut v.lock {
            l.named = true;
        }
        v
    }

    /// The tree as stored (encrypted values), for copying it whole.
    pub fn raw(&self) -> &sled::Tree {
        &self.tree
    }

    pub fn insert(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> sled::Result<()> {
        match &self.lock {
            None => self.tree.insert(key.as_ref(), value.as_ref()).map(drop),
            Some(l) => {
                let (k, v) = l.encrypt(key.as_ref(), value.as_ref());
                self.tree.insert(k, v).map(drop)
            }
        }
    }

    pub fn get(&self, key: impl AsRef<[u8]>) -> sled::Result<Option<IVec>> {
        match &self.lock {
            None => self.tree.get(key),
            Some(l) => {
                let k = l.stored_key(key.as_ref());
                match self.tree.get(&k)? {
                    None => Ok(None),
                    Some(v) => l.decrypt(k, &v).map(|(_, v)| Some(v)),
                }
            }
        }
    }

    pub fn remove(&self, key: impl AsRef<[u8]>) -> sled::Result<()> {
        match &self.lock {
            None => self.tree.remove(key).map(drop),
            Some(l) => self.tree.remove(l.stored_key(key.as_ref())).map(drop),
        }
    }

    pub fn iter(&self) -> Iter {
        self.wrap(self.tree.iter())
    }

    /// Entries whose keys start with `prefix` (not for a named vault).
    pub fn scan_prefix(&self, prefix: impl AsRef<[u8]>) -> Iter {
        debug_assert!(!self.lock.as_ref().is_some_and(|l| l.named));
        self.wrap(self.tree.scan_prefix(prefix))
    }

    /// Applies `batch` atomically, encrypting its values.
    pub fn apply_batch(&self, batch: Batch) -> sled::Result<()> {
        let mut b = sled::Batch::default();
        for (k, v) in batch.ops {
            match (&self.lock, v) {
                (None, Some(v)) => b.insert(k, v),
                (None, None) => b.remove(k),
                (Some(l), Some(v)) => {
                    let (k, v) = l.encrypt(&k, &v);
                    b.insert(k, v)
                }
                (Some(l), None) => b.remove(l.stored_key(&k)),
            }
        }
        self.tree.apply_batch(b)
    }

    fn wrap(&self, inner: sled::Iter) -> Iter {
        Iter {
            inner,
            lock: self.lock.clone(),
        }
    }
}

/// Inserts and removals applied together by [`Vault::apply_batch`].
#[derive(Default)]
pub struct Batch {
    ops: Vec<(IVec, Option<IVec>)>,
}

impl Batch {
    pub fn insert(&mut self, key: impl Into<IVec>, value: impl Into<IVec>) {
        self.ops.push((key.into(), Some(value.into())));
    }

    pub fn remove(&mut self, key: impl Into<IVec>) {
        self.ops.push((key.into(), None));
    }
}

/// A vault's entries, decrypted, in stored-key order.
pub struct Iter {
    inner: sled::Iter,
    lock: Option<Lock>,
}

impl Iter {
    fn open(&self, item: sled::Result<(IVec, IVec)>) -> sled::Result<(IVec, IVec)> {
        let (k, v) = item?;
        match &self.lock {
            None => Ok((k, v)),
            Some(l) => l.decrypt(k, &v),
        }
    }

    pub fn values(self) -> impl DoubleEndedIterator<Item = sled::Result<IVec>> {
        self.map(|r| r.map(|(_, v)| v))
    }
}

impl Iterator for Iter {
    type Item = sled::Result<(IVec, IVec)>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.inner.next()?;
        Some(self.open(item))
    }
}

impl DoubleEndedIterator for Iter {
    fn next_back(&mut self) -> Option<Self::Item> {
        let item = self.inner.next_back()?;
        Some(self.open(item))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> sled::Db {
        sled::Config::new().temporary(true).open().unwrap()
    }

    fn cipher(b: u8) -> Arc<Cipher> {
        Arc::new(Cipher::new(&[b; 32]))
    }

    #[test]
    fn without_a_key_the_bytes_are_the_plain_ones() {
        let db = db();
        let v = Vault::named(db.open_tree("t").unwrap(), "db/t", None);
        v.insert("grafana", "secret").unwrap();
        assert_eq!(
            db.open_tree("t").unwrap().get("grafana").unwrap().unwrap(),
            "secret"
        );
        assert_eq!(v.get("grafana").unwrap().unwrap(), "secret");
    }

    #[test]
    fn values_and_names_are_encrypted_and_read_back() {
        let db = db();
        let c = cipher(1);
        let v = Vault::named(db.open_tree("tokens").unwrap(), "db/tokens", Some(&c));
        let mut b = Batch::default();
        b.insert("grafana", "role=viewer");
        b.insert("ci", "role=ingest");
        v.apply_batch(b).unwrap();
        v.insert("old", "x").unwrap();
        v.remove("old").unwrap();
        for (k, val) in db.open_tree("tokens").unwrap().iter().map(Result::unwrap) {
            let all = [&k[..], &val[..]].concat();
            for plain in [&b"grafana"[..], b"viewer", b"ingest", b"ci\0"] {
                assert!(!all.windows(plain.len()).any(|w| w == plain));
            }
        }
        assert_eq!(v.get("grafana").unwrap().unwrap(), "role=viewer");
        assert!(v.get("ci").unwrap().is_some() && v.get("old").unwrap().is_none());
        let mut names: Vec<_> = v.iter().map(|r| r.unwrap().0).collect();
        names.sort();
        assert_eq!(names, vec![IVec::from("ci"), IVec::from("grafana")]);
        // Another key reads nothing but "unreadable".
        let other = Vault::named(
            db.open_tree("tokens").unwrap(),
            "db/tokens",
            Some(&cipher(2)),
        );
        assert!(
            other.get("grafana").unwrap().is_none(),
            "its own hash differs"
        );
        assert!(other.iter().all(|r| r.is_err_and(|e| unreadable(&e))));
    }

    #[test]
    fn a_value_moved_to_another_key_or_tree_does_not_decrypt() {
        let db = db();
        let c = cipher(1);
        let a = Vault::new(db.open_tree("a").unwrap(), "db/a", Some(&c));
        let b = Vault::new(db.open_tree("b").unwrap(), "db/b", Some(&c));
        a.insert([0, 1], "one").unwrap();
        a.insert([0, 2], "two").unwrap();
        let stored = a.raw().get([0, 1]).unwrap().unwrap();
        a.raw().insert([0, 2], stored.clone()).unwrap();
        b.raw().insert([0, 1], stored).unwrap();
        assert_eq!(a.get([0, 1]).unwrap().unwrap(), "one");
        assert!(a.get([0, 2]).is_err_and(|e| unreadable(&e)));
        assert!(b.get([0, 1]).is_err_and(|e| unreadable(&e)));
        let got: Vec<_> = a.scan_prefix([0u8]).collect();
        assert_eq!(got.len(), 2);
        assert!(got[0].is_ok() && got[1].is_err());
        assert_eq!(a.iter().next().unwrap().unwrap().1, "one");
        assert!(a.iter().next_back().unwrap().is_err());
    }
}
