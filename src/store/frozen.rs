//! The store's databases held still for a copy (a backup), and the names a
//! restored data directory may hold.
//!
//! [`Store::frozen`] takes a checkpoint and then holds the flush lock, the
//! only way into the tier databases, the `meta` tree and the checkpoint
//! file: what a backup reads there is the store as of that checkpoint.
//! Ingest goes on meanwhile into open blocks in memory; the next flush
//! writes it. The log ring is not copied: every record in it is older than
//! the checkpoint. New series are registered outside the flush lock, so the
//! registry is copied under its own lock, after the checkpoint: it holds
//! every series the checkpoint and the blocks name.

use super::checkpoint;
use super::disk::TIER_DIRS;
use super::{Store, store_err};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// The name of the main database's directory (registry, meta and the
/// other modules' trees).
pub const MAIN_DB: &str = "db";
/// Every database directory a data directory may hold.
pub const DATABASES: [&str; 5] = ["db", "log", TIER_DIRS[0], TIER_DIRS[1], TIER_DIRS[2]];
/// The file of open blocks beside the databases.
pub use super::checkpoint::FILE as CHECKPOINT_FILE;
/// A checkpoint being written (gone once it is whole).
pub use super::checkpoint::TMP_FILE as CHECKPOINT_TMP_FILE;

/// A tree's name and every entry of it, copied at one moment.
pub type TreeCopy = (Vec<u8>, Vec<(sled::IVec, sled::IVec)>);

/// Copies `tree` whole. (An `IVec` shares sled's bytes where it can.)
pub fn copy_tree(tree: &sled::Tree) -> sled::Result<TreeCopy> {
    let entries = tree.iter().collect::<sled::Result<Vec<_>>>()?;
    Ok((tree.name().to_vec(), entries))
}

/// The store held still: see the module's doc.
pub struct Frozen<'a> {
    store: &'a Store,
}

impl Store {
    /// Takes a checkpoint and runs `f` while no flush can change what it
    /// wrote. Flushes wait until `f` returns; ingest does not.
    pub fn frozen<R>(&self, f: impl FnOnce(&Frozen<'_>) -> R) -> Result<R> {
        let _no_flush = self.flush_lock();
        self.checkpoint_holding_lock()?;
        Ok(f(&Frozen { store: self }))
    }
}

impl Frozen<'_> {
    /// The series registry (in `MAIN_DB`), copied under its lock.
    pub fn series(&self) -> Result<TreeCopy> {
        let _no_new_series = self.store.registry();
        copy_tree(self.store.inner.series_tree.raw()).map_err(|e| self.store.err(e))
    }

    /// The other trees to copy, with their database: `meta`, then each
    /// tier's blocks. Read them while `f` of [`Store::frozen`] runs.
    pub fn trees(&self) -> Vec<(&'static str, sled::Tree)> {
        let disk = &self.store.inner.disk;
        let mut out = vec![(MAIN_DB, disk.meta.raw().clone())];
        for (dir, tree) in TIER_DIRS.iter().zip(&disk.tiers) {
            out.push((*dir, tree.raw().clone()));
        }
        out
    }

    /// The checkpoint file (`CHECKPOINT_FILE`), as of the checkpoint just taken.
    pub fn checkpoint_file(&self) -> PathBuf {
        checkpoint::path(&self.store.inner.dir)
    }
}

/// Creates database `name` (one of `DATABASES`) in `dir` for a restore,
/// configured as the store opens it.
pub fn create_database(dir: &Path, name: &str) -> Result<sled::Db> {
    if !DATABASES.contains(&name) {
        return Err(store_err(
            dir,
            format!("'{name}' is not a database of a data directory"),
        ));
    }
    sled::Config::new()
        .path(dir.join(name))
        .mode(sled::Mode::LowSpace)
        .flush_every_ms(None)
        .create_new(true)
        .open()
        .map_err(|e| Error::Store {
            dir: dir.to_path_buf(),
            message: format!("cannot create database {name}: {e}"),
        })
}
