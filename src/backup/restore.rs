//! A data directory made from an archive (`mlsec-monitor restore`).
//!
//! The archive is read whole and checked first (format, every byte's
//! checksum, the manifest's counts): a cut or altered archive is refused
//! before anything is written. Then it is read again and written into a
//! new directory beside the target, which takes the target's name only
//! once every database is written and synced; a failure part way removes
//! it. A target that is not empty is refused, unless `force`: then what it
//! holds must be a data directory's and no daemon may be running on it.

use super::archive::{Item, Manifest, Reader};
use crate::auth::tokens::ADMIN_TOKEN_FILE;
use crate::error::{Error, Result};
use crate::store::frozen::{self, CHECKPOINT_FILE, CHECKPOINT_TMP_FILE, DATABASES};
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Entries written to sled per batch.
const BATCH: usize = 4096;
/// The files a data directory holds beside its databases.
const DATA_DIR_FILES: [&str; 3] = [CHECKPOINT_FILE, CHECKPOINT_TMP_FILE, ADMIN_TOKEN_FILE];

/// How far a pass is: archive bytes read of the file's, items.
pub type Tick<'a> = &'a mut dyn FnMut(Pass, u64, u64);

/// The two passes over an archive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    Check,
    Write,
}

struct Counting<R> {
    inner: R,
    read: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

fn bad(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Backup(format!("{}: {e}", path.display()))
}

fn open(path: &Path) -> Result<Reader<Counting<BufReader<File>>>> {
    let file = File::open(path).map_err(|e| bad(path, format!("cannot open it: {e}")))?;
    Reader::open(Counting {
        inner: BufReader::with_capacity(1 << 16, file),
        read: 0,
    })
    .map_err(|e| bad(path, e))
}

/// Reads `archive` whole and checks it; writes nothing.
pub fn verify(archive: &Path, tick: Tick<'_>) -> Result<Manifest> {
    let mut r = open(archive)?;
    let mut n = 0u64;
    while r.next_item().map_err(|e| bad(archive, e))?.is_some() {
        n += 1;
        if n.is_multiple_of(1024) {
            tick(Pass::Check, r.get_ref().read, r.items());
        }
    }
    tick(Pass::Check, r.get_ref().read, r.items());
    Ok(r.manifest().cloned().expect("read whole"))
}

/// Restores `archive` into `dir` (see the module's doc); returns what it held.
pub fn restore(archive: &Path, dir: &Path, force: bool, tick: Tick<'_>) -> Result<Manifest> {
    let manifest = verify(archive, tick)?;
    let emptied = prepare(dir, force)?;
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = dir
        .file_name()
        .ok_or_else(|| Error::Backup(format!("{}: not a directory name", dir.display())))?;
    let staging = parent.join(format!(
        ".{}.restoring-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&staging);
    // Missing parents are made too (0700 each, as the daemon would).
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&staging)
        .map_err(|e| bad(&staging, format!("cannot create it: {e}")))?;
    match write_into(archive, &staging, tick) {
        Ok(()) => {}
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    }
    if emptied {
        std::fs::remove_dir(dir).map_err(|e| bad(dir, format!("cannot replace it: {e}")))?;
    }
    std::fs::rename(&staging, dir).map_err(|e| {
        let _ = std::fs::remove_dir_all(&staging);
        bad(
            dir,
            format!("cannot move the restored data into place: {e}"),
        )
    })?;
    if let Ok(d) = File::open(parent) {
        let _ = d.sync_all();
    }
    Ok(manifest)
}

/// Checks `dir` may be restored into; with `force`, empties it. Returns
/// whether it exists (empty) and must make way.
fn prepare(dir: &Path, force: bool) -> Result<bool> {
    let entries: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.map(|e| e.path()))
            .collect::<std::io::Result<_>>()
            .map_err(|e| bad(dir, e))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(bad(dir, format!("cannot read it: {e}"))),
    };
    if entries.is_empty() {
        return Ok(true);
    }
    if !force {
        return Err(Error::Backup(format!(
            "{} is not empty: restore into a new directory, or add --force to replace what it holds",
            dir.display()
        )));
    }
    let ours = |p: &PathBuf| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| DATABASES.contains(&n) || DATA_DIR_FILES.contains(&n))
    };
    if let Some(other) = entries.iter().find(|p| !ours(p)) {
        return Err(Error::Backup(format!(
            "{} holds {}, which is not part of a data directory: not replacing it even with --force",
            dir.display(),
            other.display()
        )));
    }
    // A running daemon holds the main database's lock.
    if dir.join(frozen::MAIN_DB).exists() {
        drop(crate::store::open_state_db(dir)?);
    }
    for p in &entries {
        let removed = if p.is_dir() {
            std::fs::remove_dir_all(p)
        } else {
            std::fs::remove_file(p)
        };
        removed.map_err(|e| bad(p, format!("cannot remove it: {e}")))?;
    }
    Ok(true)
}

/// The second pass: every tree and file of `archive` into `dir`.
fn write_into(archive: &Path, dir: &Path, tick: Tick<'_>) -> Result<()> {
    let mut r = open(archive)?;
    let mut dbs: HashMap<String, sled::Db> = HashMap::new();
    let mut tree: Option<sled::Tree> = None;
    let mut batch = sled::Batch::default();
    let mut in_batch = 0;
    let sled_err = |e: sled::Error| bad(dir, format!("cannot write: {e}"));
    while let Some(item) = r.next_item().map_err(|e| bad(archive, e))? {
        match item {
            Item::Tree { db, tree: name } => {
                if let Some(t) = &tree {
                    t.apply_batch(std::mem::take(&mut batch))
                        .map_err(sled_err)?;
                    in_batch = 0;
                }
                let handle = match dbs.get(&db) {
                    Some(h) => h.clone(),
                    None => {
                        let h = frozen::create_database(dir, &db)?;
                        dbs.insert(db.clone(), h.clone());
                        h
                    }
                };
                tree = Some(handle.open_tree(&name).map_err(sled_err)?);
            }
            Item::Entry { key, value } => {
                batch.insert(key, value);
                in_batch += 1;
                if in_batch == BATCH {
                    if let Some(t) = &tree {
                        t.apply_batch(std::mem::take(&mut batch))
                            .map_err(sled_err)?;
                    }
                    in_batch = 0;
                    tick(Pass::Write, r.get_ref().read, r.items());
                }
            }
            Item::File { name, content } => {
                if let Some(t) = &tree {
                    t.apply_batch(std::mem::take(&mut batch))
                        .map_err(sled_err)?;
                    in_batch = 0;
                }
                tree = None;
                if name != CHECKPOINT_FILE {
                    return Err(bad(archive, format!("holds an unknown file '{name}'")));
                }
                let path = dir.join(&name);
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .map_err(|e| bad(&path, e))?;
                f.write_all(&content).map_err(|e| bad(&path, e))?;
                f.sync_all().map_err(|e| bad(&path, e))?;
            }
        }
    }
    if let Some(t) = &tree {
        t.apply_batch(batch).map_err(sled_err)?;
    }
    tick(Pass::Write, r.get_ref().read, r.items());
    for db in dbs.values() {
        db.flush().map_err(sled_err)?;
    }
    Ok(())
}
