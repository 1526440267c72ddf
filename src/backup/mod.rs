//! Backups: one consistent archive of everything the daemon keeps, taken
//! while it runs, and a data directory restored from one.
//!
//! - `archive.rs`: the file format, written as a stream and checked whole
//!   when read;
//! - `mod.rs` (here): what an archive holds and how each part is held still
//!   while it is read; one backup at a time, and the last one's outcome;
//! - `schedule.rs`: backups every `BACKUP_INTERVAL` into `BACKUP_DIR`,
//!   pruned to `BACKUP_KEEP`, and picking one by time (`restore --at`);
//! - `restore.rs`: an archive checked whole, then written into a new data
//!   directory;
//! - `fetch.rs`: `backup --out`, an archive from the running daemon;
//! - `progress.rs`: what the command line shows while either runs.
//!
//! An archive holds the store as of a checkpoint taken when the backup
//! starts (series registry, layout, every tier's blocks, open blocks), then
//! the alert state (alerts, audit trail, silences, outbox), the platform
//! state (models, training jobs) and the API tokens, each part copied while
//! its own lock keeps changes out, so each is consistent in itself and
//! none waits for the others. Ingest and alerting go on meanwhile: samples
//! wait in memory for the next flush while the store's part is read. The
//! remote-write queues are not kept (a restored daemon starts them empty),
//! nor the first-run admin token file (the token itself is in the archive,
//! hashed).

pub mod archive;
pub mod fetch;
pub mod progress;
pub mod restore;
pub mod schedule;

use crate::alerting::state::AlertState;
use crate::auth::tokens::Tokens;
use crate::error::{Error, Result};
use crate::platform::Platform;
use crate::store::Store;
use crate::store::frozen::{self, TreeCopy};
use archive::{Header, Manifest, Writer};
use chrono::{DateTime, Utc};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Everything a backup reads.
#[derive(Clone)]
pub struct Sources {
    pub store: Store,
    pub alerts: Arc<AlertState>,
    pub platform: Arc<Platform>,
    pub tokens: Arc<Tokens>,
    pub anomalies: Arc<crate::anomalies::events::Events>,
}

/// How a backup ended.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub started_at: DateTime<Utc>,
    /// `None` when not known (a backup found in `BACKUP_DIR` at start, or
    /// one that failed before it began writing).
    pub took: Option<Duration>,
    /// Archive bytes written (of a failed backup: as far as it got).
    pub bytes: u64,
    /// Items in the archive; `None` when it failed or is not known.
    pub items: Option<u64>,
    /// Why it failed; `None` when it succeeded.
    pub error: Option<String>,
    /// Whether the schedule took it (or a request).
    pub scheduled: bool,
}

/// Counts the bytes that pass through to `W`.
struct Counted<W> {
    out: W,
    bytes: u64,
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// One backup at a time, and the outcome of the last ones.
pub struct Backups {
    sources: Sources,
    running: AtomicBool,
    last: Mutex<Option<Outcome>>,
    last_success: Mutex<Option<Outcome>>,
}

/// The right to take the one backup that may run; let go when dropped.
pub struct Running {
    backups: Arc<Backups>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.backups.running.store(false, Ordering::Release);
    }
}

impl Running {
    /// Writes the backup to `out` (blocking).
    pub fn take<W: Write>(
        self,
        out: W,
        now: DateTime<Utc>,
        scheduled: bool,
    ) -> Result<(W, Manifest)> {
        self.backups.write_noting(out, now, scheduled)
    }
}

impl Backups {
    pub fn new(sources: Sources) -> Backups {
        Backups {
            sources,
            running: AtomicBool::new(false),
            last: Mutex::new(None),
            last_success: Mutex::new(None),
        }
    }

    /// Claims the one backup that may run: `Conflict` when one is.
    pub fn start(self: &Arc<Self>) -> Result<Running> {
        if self.running.swap(true, Ordering::AcqRel) {
            return Err(Error::Conflict(
                "a backup is already running; try again when it ends".into(),
            ));
        }
        Ok(Running {
            backups: self.clone(),
        })
    }

    pub fn store(&self) -> &Store {
        &self.sources.store
    }

    /// The last backup taken since start, whatever its outcome.
    pub fn last(&self) -> Option<Outcome> {
        self.last.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The last backup since start that succeeded.
    pub fn last_success(&self) -> Option<Outcome> {
        self.last_success
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Writes a backup to `out` (blocking). `Conflict` when one is running.
    pub fn take<W: Write>(
        self: &Arc<Self>,
        out: W,
        now: DateTime<Utc>,
        scheduled: bool,
    ) -> Result<(W, Manifest)> {
        self.start()?.take(out, now, scheduled)
    }

    /// Notes the newest scheduled backup found in `BACKUP_DIR` at start
    /// (its time and size; how long it took and its items are not known),
    /// unless a backup was taken since.
    pub fn note_existing(&self, started_at: DateTime<Utc>, bytes: u64) {
        let found = Outcome {
            started_at,
            took: None,
            bytes,
            items: None,
            error: None,
            scheduled: true,
        };
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_none() {
            *last = Some(found.clone());
            *self.last_success.lock().unwrap_or_else(|p| p.into_inner()) = Some(found);
        }
    }

    /// Notes that the backup begun at `started_at` failed: outside the
    /// archive's writing (its file could not be made, synced or renamed),
    /// or in it (already noted then: the first cause stands).
    pub fn note_failure(&self, started_at: DateTime<Utc>, scheduled: bool, error: &Error) {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if last
            .as_ref()
            .is_some_and(|o| o.started_at == started_at && o.error.is_some())
        {
            return;
        }
        tracing::warn!(error = %error, scheduled, "backup failed");
        let mut outcome = last
            .clone()
            .filter(|o| o.started_at == started_at)
            .unwrap_or(Outcome {
                started_at,
                took: None,
                bytes: 0,
                items: None,
                error: None,
                scheduled,
            });
        outcome.error = Some(error.to_string());
        outcome.items = None;
        let mut success = self.last_success.lock().unwrap_or_else(|p| p.into_inner());
        if success.as_ref().is_some_and(|o| o.started_at == started_at) {
            *success = None;
        }
        *last = Some(outcome);
    }

    fn write_noting<W: Write>(
        &self,
        out: W,
        now: DateTime<Utc>,
        scheduled: bool,
    ) -> Result<(W, Manifest)> {
        let started = Instant::now();
        let mut out = Counted { out, bytes: 0 };
        let result = write(&self.sources, &mut out, now);
        let outcome = Outcome {
            started_at: now,
            took: Some(started.elapsed()),
            bytes: out.bytes,
            items: result.as_ref().ok().map(|m| m.items),
            error: result.as_ref().err().map(ToString::to_string),
            scheduled,
        };
        match &outcome.error {
            None => tracing::info!(
                bytes = outcome.bytes,
                items = outcome.items,
                seconds = started.elapsed().as_secs_f64(),
                scheduled,
                "backup taken"
            ),
            Some(e) => tracing::warn!(error = %e, scheduled, "backup failed"),
        }
        if outcome.error.is_none() {
            *self.last_success.lock().unwrap_or_else(|p| p.into_inner()) = Some(outcome.clone());
        }
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(outcome);
        let manifest = result?;
        Ok((out.out, manifest))
    }
}

/// Creates `<path>.partial` (mode 0600) to write an archive into before it
/// takes the name `path` (`commit`): a file with the name is always whole.
pub fn partial_file(path: &Path) -> Result<(PathBuf, std::fs::File)> {
    use std::os::unix::fs::OpenOptionsExt;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let partial = path.with_file_name(format!("{name}.partial"));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&partial)
        .map_err(|e| Error::Backup(format!("{}: {e}", partial.display())))?;
    Ok((partial, file))
}

/// Syncs `file` (written as `partial`) and renames it to `path`, then
/// syncs the directory, so the name survives a crash.
pub fn commit(file: std::fs::File, partial: &Path, path: &Path) -> Result<()> {
    let err = |p: &Path, e: std::io::Error| Error::Backup(format!("{}: {e}", p.display()));
    file.sync_all().map_err(|e| err(partial, e))?;
    std::fs::rename(partial, path).map_err(|e| err(path, e))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

fn io_err(e: std::io::Error) -> Error {
    Error::Backup(format!("backup: {e}"))
}

fn write_copy<W: Write>(w: &mut Writer<W>, db: &str, (name, entries): TreeCopy) -> Result<()> {
    w.tree(db, &name).map_err(io_err)?;
    for (k, v) in entries {
        w.entry(&k, &v).map_err(io_err)?;
    }
    Ok(())
}

/// Writes one archive of everything in `src` to `out` (blocking).
pub fn write<W: Write>(src: &Sources, out: W, now: DateTime<Utc>) -> Result<Manifest> {
    let header = Header {
        format: archive::FORMAT,
        created_at: crate::time::ts(now),
        daemon_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let mut w = Writer::new(out, &header).map_err(io_err)?;
    let store = &src.store;
    store.frozen(|f| -> Result<()> {
        write_copy(&mut w, frozen::MAIN_DB, f.series()?)?;
        for (db, tree) in f.trees() {
            w.tree(db, &tree.name()).map_err(io_err)?;
            for kv in tree.iter() {
                let (k, v) = kv.map_err(|e| Error::Backup(format!("backup: reading {db}: {e}")))?;
                w.entry(&k, &v).map_err(io_err)?;
            }
        }
        let path = f.checkpoint_file();
        let file = std::fs::File::open(&path)
            .map_err(|e| Error::Backup(format!("backup: {}: {e}", path.display())))?;
        let len = file.metadata().map_err(io_err)?.len();
        w.file(frozen::CHECKPOINT_FILE, len, file).map_err(io_err)
    })??;
    for copy in src.alerts.copy_trees()? {
        write_copy(&mut w, frozen::MAIN_DB, copy)?;
    }
    for copy in src.platform.copy_trees(store)? {
        write_copy(&mut w, frozen::MAIN_DB, copy)?;
    }
    write_copy(&mut w, frozen::MAIN_DB, src.tokens.copy_tree(store)?)?;
    write_copy(&mut w, frozen::MAIN_DB, src.anomalies.copy_tree(store)?)?;
    let (_, manifest) = w.finish().map_err(io_err)?;
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Layout;

    #[test]
    fn one_backup_at_a_time_and_what_it_writes_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Layout::new(Duration::from_secs(5), 30), 1000).unwrap();
        store
            .record([(crate::store::SeriesKey::new("g"), 1_000, 1.5)])
            .unwrap();
        let sources = Sources {
            store: store.clone(),
            alerts: Arc::new(
                AlertState::open(&store, crate::alerting::outbox::Router::default()).unwrap(),
            ),
            platform: Arc::new(Platform::open(&store).unwrap()),
            tokens: Arc::new(Tokens::open(&store).unwrap()),
            anomalies: Arc::new(crate::anomalies::events::Events::open(&store).unwrap()),
        };
        let backups = Arc::new(Backups::new(sources));
        let first = backups.start().unwrap();
        assert!(matches!(backups.start(), Err(Error::Conflict(_))));
        assert!(matches!(
            backups.take(Vec::new(), Utc::now(), false),
            Err(Error::Conflict(_))
        ));
        drop(first);
        let (bytes, manifest) = backups.take(Vec::new(), Utc::now(), false).unwrap();
        assert_eq!(manifest.trees["db/series"], 1);
        assert!(manifest.files.contains_key(frozen::CHECKPOINT_FILE));
        let mut r = archive::Reader::open(&bytes[..]).unwrap();
        while r.next_item().unwrap().is_some() {}
        assert_eq!(r.manifest(), Some(&manifest));
        let last = backups.last().unwrap();
        assert_eq!(last.bytes, bytes.len() as u64);
        assert_eq!(last.items, Some(manifest.items));
        assert_eq!(backups.last_success(), Some(last));
    }
}
