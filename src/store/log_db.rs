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
//!
//! If the fresh database cannot be created and the one in use cannot be
//! moved back to `log` either, the database in use is *displaced*: it lives
//! at `log.old`, which a start deletes. It then takes no record (a flush
//! fails and keeps its samples, as on any write error), so everything it
//! holds stays covered by the checkpoint, and every flush tries again to
//! move it back.

use super::cipher::Cipher;
use super::sync_dir;
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
    /// Its directory is `log.old` after a renewal that failed half-way.
    displaced: bool,
}

impl Log {
    fn new(db: sled::Db, cipher: Option<&Arc<Cipher>>) -> sled::Result<Log> {
        Ok(Log {
            wal: Vault::new(db.open_tree("wal")?, "log/wal", cipher),
            meta: Vault::new(db.open_tree("meta")?, "log/meta", cipher),
            db,
            displaced: false,
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

    /// The log database in use, to read it. Writers hold the store's
    /// flush lock too, and write records only through `for_records`.
    pub fn lock(&self) -> MutexGuard<'_, Log> {
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The log database in use, to write records to: only while it lives at
    /// `log`. A displaced one is moved back first; until that works, an
    /// error says why.
    pub fn for_records(&self) -> std::result::Result<MutexGuard<'_, Log>, String> {
        let mut log = self.lock();
        if log.displaced {
            self.move_back()?;
            log.displaced = false;
            tracing::info!("the log database is back in its place");
        }
        Ok(log)
    }

    fn paths(&self) -> (PathBuf, PathBuf) {
        (self.dir.join(LOG_DIR), self.dir.join(OLD_LOG_DIR))
    }

    /// Renames a displaced database back to `log`, where only a fresh
    /// database that never took a record can be in the way.
    fn move_back(&self) -> std::result::Result<(), String> {
        let (live, old) = self.paths();
        remove_if_there(&live).map_err(|e| {
            format!(
                "the log database is at {} after a failed renewal and {} is in the way: {e}",
                old.display(),
                live.display()
            )
        })?;
        std::fs::rename(&old, &live).map_err(|e| {
            format!(
                "the log database is at {} after a failed renewal and cannot be moved back: {e}",
                old.display()
            )
        })?;
        sync_dir(&self.dir).map_err(|e| format!("cannot sync {}: {e}", self.dir.display()))
    }

    /// Replaces the log database with an empty one. Only once a checkpoint
    /// holds everything the log did. On an error the log in use stays (at
    /// `log`, or displaced: see the module's comment).
    pub fn recycle(&self) -> std::result::Result<(), String> {
        let mut current = self.lock();
        let (live, old) = self.paths();
        // A displaced database is already out of the way, and the checkpoint
        // just written holds everything it does.
        if !current.displaced {
            remove_old(&self.dir)?;
            std::fs::rename(&live, &old)
                .map_err(|e| format!("cannot rename {}: {e}", live.display()))?;
        }
        let fresh = match self.fresh(&live) {
            Ok(log) => log,
            Err(e) => {
                // Back to the log in use (still open).
                current.displaced = self.move_back().is_err();
                return Err(format!("cannot create a fresh log database: {e}"));
            }
        };
        let stale = std::mem::replace(&mut *current, fresh);
        drop(current);
        drop(stale);
        // Not fatal: deleted at the next checkpoint or start otherwise.
        if let Err(e) = std::fs::remove_dir_all(&old) {
            tracing::debug!(error = %e, "the previous log database is not deleted yet");
        }
        Ok(())
    }

    /// A fresh database at `live`, its directory entries durable before
    /// records go there.
    fn fresh(&self, live: &Path) -> std::result::Result<Log, String> {
        let log = (self.open)()
            .map_err(|e| e.to_string())
            .and_then(|db| Log::new(db, self.cipher.as_ref()).map_err(|e| e.to_string()))?;
        sync_dir(live)
            .and_then(|()| sync_dir(&self.dir))
            .map_err(|e| format!("cannot sync {}: {e}", live.display()))?;
        Ok(log)
    }
}

fn remove_old(dir: &Path) -> std::result::Result<(), String> {
    let old = dir.join(OLD_LOG_DIR);
    remove_if_there(&old).map_err(|e| format!("cannot delete {}: {e}", old.display()))
}

/// Deletes the directory `path` and all it holds, if there is one.
fn remove_if_there(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use std::sync::atomic::{AtomicU8, Ordering};

    /// What the opener does: open, fail, or fail leaving a file where the
    /// log database belongs (so it cannot be moved back either).
    const OPEN: u8 = 0;
    const FAIL: u8 = 1;
    const FAIL_IN_THE_WAY: u8 = 2;

    fn log_db(dir: &Path, mode: &Arc<AtomicU8>) -> LogDb {
        let (live, mode) = (dir.join(LOG_DIR), mode.clone());
        let (data, config) = (dir.to_path_buf(), sled::Config::new().path(&live));
        let open: Opener = Box::new(move || match mode.load(Ordering::SeqCst) {
            OPEN => super::super::open_db(&data, &config),
            FAIL => Err(Error::Internal("no fresh database".into())),
            _ => {
                std::fs::write(&live, b"in the way")?;
                Err(Error::Internal("no fresh database".into()))
            }
        });
        LogDb::open(dir, open, None).expect("open")
    }

    fn record(db: &LogDb, key: &str) -> std::result::Result<(), String> {
        let log = db.for_records()?;
        log.wal.raw().insert(key, "r").map_err(|e| e.to_string())?;
        log.db.flush().map_err(|e| e.to_string())?;
        Ok(())
    }

    fn holds(db: &LogDb, key: &str) -> bool {
        db.lock().wal.raw().get(key).expect("get").is_some()
    }

    #[test]
    fn a_renewal_that_fails_keeps_the_log_in_use_in_its_place() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mode = Arc::new(AtomicU8::new(OPEN));
        let db = log_db(dir.path(), &mode);
        record(&db, "a").expect("record");
        mode.store(FAIL, Ordering::SeqCst);
        assert!(db.recycle().unwrap_err().contains("no fresh database"));
        assert!(dir.path().join(LOG_DIR).is_dir());
        assert!(!dir.path().join(OLD_LOG_DIR).exists());
        record(&db, "b").expect("the log takes records");
        assert!(holds(&db, "a") && holds(&db, "b"));
        mode.store(OPEN, Ordering::SeqCst);
        db.recycle().expect("recycle");
        assert!(db.lock().wal.raw().is_empty());
        assert!(!dir.path().join(OLD_LOG_DIR).exists());
    }

    #[test]
    fn a_displaced_log_takes_no_record_and_is_never_deleted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (live, old) = (dir.path().join(LOG_DIR), dir.path().join(OLD_LOG_DIR));
        let mode = Arc::new(AtomicU8::new(OPEN));
        let db = log_db(dir.path(), &mode);
        record(&db, "a").expect("record");
        // The fresh database fails and leaves a file where the log belongs:
        // the database in use stays at log.old.
        mode.store(FAIL_IN_THE_WAY, Ordering::SeqCst);
        db.recycle().unwrap_err();
        assert!(old.is_dir() && live.is_file());
        let refused = record(&db, "b").unwrap_err();
        assert!(refused.contains("log.old"), "{refused}");
        // A second renewal that fails deletes nothing either.
        db.recycle().unwrap_err();
        assert!(old.is_dir() && holds(&db, "a"));
        // Once the way is clear, the next record moves the log back.
        std::fs::remove_file(&live).expect("clear the way");
        record(&db, "b").expect("moved back, takes records");
        assert!(live.is_dir() && !old.exists());
        drop(db);
        mode.store(OPEN, Ordering::SeqCst);
        let db = log_db(dir.path(), &mode);
        assert!(holds(&db, "a") && holds(&db, "b"), "nothing lost");
        // Displaced again, a renewal that works replaces it whole.
        mode.store(FAIL_IN_THE_WAY, Ordering::SeqCst);
        db.recycle().unwrap_err();
        std::fs::remove_file(&live).expect("clear the way");
        mode.store(OPEN, Ordering::SeqCst);
        db.recycle().expect("recycle");
        assert!(live.is_dir() && !old.exists());
        assert!(db.lock().wal.raw().is_empty());
        record(&db, "c").expect("record");
    }
}
