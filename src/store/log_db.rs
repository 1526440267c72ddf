//! The log's database, `<DATA_DIR>/log`, replaced by an empty one after
//! every checkpoint.
//!
//! The log ring overwrites fixed keys, but sled 0.34 keeps the space of a
//! superseded value until it cleans the segment holding it, and it cleans
//! segments only from a background thread the store does not run: measured
//! over 40 simulated days, the log database held 10 to 15 times its live
//! records (10.5 MB for 1.05 MB). Once a checkpoint holds everything the
//! log did, the whole database is dead, so it is renamed to `log.old`, a
//! fresh one takes its place, and the old one is deleted.
//!
//! A crash at any step is safe: the old log's records are all older than
//! the checkpoint (replay skips them by their sequence numbers) and the
//! fresh log holds only records after it. A `log.old` left behind is deleted
//! at the next start or the next checkpoint.

use super::cipher::Cipher;
use super::vault::Vault;
use crate::error::Result;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// The log database's directory under the data directory.
pub const LOG_DIR: &str = "log";
/// Where the previous log database waits to be deleted.
pub const OLD_LOG_DIR: &str = "log.old";

/// Opens (or creates) the log database at `<DATA_DIR>/log`.
type Opener = Box<dyn Fn() -> Result<sled::Db> + Send + Sync>;

/// The log database in use and its trees.
pub(super) struct Log {
    pub db: sled::Db,
    /// The ring of records (`wal.rs`).
    pub wal: Vault,
    /// Store format 3 kept its checkpoint's sequence number here.
    pub meta: Vault,
}

impl Log {
    fn new(db: sled::Db, cipher: Option<&Arc<Cipher>>) -> sled::Result<Log> {
        Ok(Log {
            wal: Vault::new(db.open_tree("wal")?, "log/wal", cipher),
            meta: Vault::new(db.open_tree("meta")?, "log/meta", cipher),
            db,
        })
    }
}

pub(super) struct LogDb {
    dir: PathBuf,
    open: Opener,
    cipher: Option<Arc<Cipher>>,
    current: Mutex<Log>,
}

impl LogDb {
    /// Opens the log database of the data directory `dir` with `open`,
    /// deleting a previous one left behind by a crash.
    pub fn open(dir: &Path, open: Opener, cipher: Option<&Arc<Cipher>>) -> Result<LogDb> {
        remove_old(dir).map_err(|e| super::store_err(dir, e))?;
        let log = Log::new(open()?, cipher).map_err(|e| super::store_err(dir, e.to_string()))?;
        Ok(LogDb {
            dir: dir.to_path_buf(),
            open,
            cipher: cipher.cloned(),
            current: Mutex::new(log),
        })
    }

    /// The log database in use. Writers hold the store's flush lock too.
    pub fn lock(&self) -> MutexGuard<'_, Log> {
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces the log database with an empty one. Only once a checkpoint
    /// holds everything the log did. On an error the log in use stays.
    pub fn recycle(&self) -> std::result::Result<(), String> {
        let mut current = self.lock();
        remove_old(&self.dir)?;
        let (live, old) = (self.dir.join(LOG_DIR), self.dir.join(OLD_LOG_DIR));
        std::fs::rename(&live, &old)
            .map_err(|e| format!("cannot rename {}: {e}", live.display()))?;
        let fresh = (self.open)()
            .map_err(|e| e.to_string())
            .and_then(|db| Log::new(db, self.cipher.as_ref()).map_err(|e| e.to_string()));
        let fresh = match fresh {
            Ok(log) => log,
            Err(e) => {
                // Back to the log in use (still open).
                let _ = std::fs::remove_dir_all(&live);
                let _ = std::fs::rename(&old, &live);
                return Err(format!("cannot create a fresh log database: {e}"));
            }
        };
        // The new directory entries must be durable before records go there.
        sync_dir(&live).and_then(|()| sync_dir(&self.dir))?;
        let stale = std::mem::replace(&mut *current, fresh);
        drop(current);
        drop(stale);
        // Not fatal: deleted at the next checkpoint or start otherwise.
        if let Err(e) = std::fs::remove_dir_all(&old) {
            tracing::debug!(error = %e, "the previous log database is not deleted yet");
        }
        Ok(())
    }
}

fn remove_old(dir: &Path) -> std::result::Result<(), String> {
    let old = dir.join(OLD_LOG_DIR);
    match std::fs::remove_dir_all(&old) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(format!("cannot delete {}: {e}", old.display()))
        }
        _ => Ok(()),
    }
}

fn sync_dir(dir: &Path) -> std::result::Result<(), String> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| format!("cannot sync {}: {e}", dir.display()))
}
