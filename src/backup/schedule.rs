//! Scheduled backups: one every `BACKUP_INTERVAL` into `BACKUP_DIR` as
//! `mlsec-backup-<UTC time>.mlsb`, written beside as `.partial`, synced and
//! renamed (so a file with the name is whole), then the oldest beyond
//! `BACKUP_KEEP` deleted. The next is due one interval after the newest in
//! the directory, so a restart neither skips one nor takes an extra.
//!
//! Every tick (at most 30 s apart) the schedule writes two series the
//! built-in rules watch: `backup_ok` (the last attempt's outcome) and
//! `backup_age_seconds` (since the last success, or since the schedule
//! started before the first). The tick runs apart from the backups, so a
//! backup that hangs still ages.
//!
//! [`pick`] chooses the backup to restore for `restore --at`.

use super::Backups;
use super::archive::{self, Header};
use crate::config::{BACKUP_AGE_METRIC, BACKUP_OK_METRIC, BackupSchedule};
use crate::error::{Error, Result};
use crate::shutdown::Shutdown;
use crate::store::SeriesKey;
use chrono::{DateTime, Utc};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

const PREFIX: &str = "mlsec-backup-";
const SUFFIX: &str = ".mlsb";
/// The longest wait between two ticks of the series.
const TICK_MAX: Duration = Duration::from_secs(30);
/// A failed backup is tried again after this (or the interval, if shorter).
const RETRY_AFTER: Duration = Duration::from_secs(600);

/// A backup file's name for a backup taken at `at`.
pub fn file_name(at: DateTime<Utc>) -> String {
    format!("{PREFIX}{}{SUFFIX}", at.format("%Y%m%dT%H%M%S%.3fZ"))
}

/// The backups in `dir` with the times their headers give, oldest first.
/// Files that are not whole backups are left out.
pub fn list(dir: &Path) -> Result<Vec<(DateTime<Utc>, PathBuf)>> {
    let rd = std::fs::read_dir(dir)
        .map_err(|e| Error::Backup(format!("{}: cannot read it: {e}", dir.display())))?;
    let mut out = Vec::new();
    for entry in rd.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with(PREFIX) && name.ends_with(SUFFIX)) {
            continue;
        }
        let header = std::fs::File::open(&path)
            .map_err(|e| e.to_string())
            .and_then(|mut f| archive::read_header(&mut f).map_err(|e| e.0));
        match header.and_then(|(h, _)| created_at(&h)) {
            Ok(at) => out.push((at, path)),
            Err(e) => tracing::warn!(file = %path.display(), error = %e, "not a backup; left out"),
        }
    }
    out.sort();
    Ok(out)
}

fn created_at(h: &Header) -> std::result::Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(&h.created_at)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("its creation time '{}': {e}", h.created_at))
}

/// The newest backup in `dir` taken at or before `at`.
pub fn pick(dir: &Path, at: DateTime<Utc>) -> Result<PathBuf> {
    let all = list(dir)?;
    if let Some((_, path)) = all.iter().rev().find(|(t, _)| *t <= at) {
        return Ok(path.clone());
    }
    Err(Error::Backup(match all.first() {
        Some((oldest, _)) => format!(
            "no backup in {} was taken at or before {}: the oldest is from {}",
            dir.display(),
            crate::time::ts(at),
            crate::time::ts(*oldest)
        ),
        None => format!("no backup in {}", dir.display()),
    }))
}

/// Deletes the oldest backups in `dir` beyond `keep`; returns how many.
pub fn prune(dir: &Path, keep: usize) -> Result<usize> {
    let all = list(dir)?;
    let extra = all.len().saturating_sub(keep);
    for (_, path) in &all[..extra] {
        std::fs::remove_file(path)
            .map_err(|e| Error::Backup(format!("{}: cannot delete it: {e}", path.display())))?;
    }
    Ok(extra)
}

/// Takes one backup into `dir` at `now` (blocking); returns its path.
/// Any failure is the backup's outcome (`/health`), unless another backup
/// was running (`Conflict`: that one's outcome stands).
pub fn take_into(backups: &Arc<Backups>, dir: &Path, now: DateTime<Utc>) -> Result<PathBuf> {
    let result = write_file(backups, dir, now);
    if let Err(e) = &result
        && !matches!(e, Error::Conflict(_))
    {
        backups.note_failure(now, true, e);
    }
    result
}

fn write_file(backups: &Arc<Backups>, dir: &Path, now: DateTime<Utc>) -> Result<PathBuf> {
    let err = |p: &Path, e: std::io::Error| Error::Backup(format!("{}: {e}", p.display()));
    std::fs::create_dir_all(dir).map_err(|e| err(dir, e))?;
    let path = dir.join(file_name(now));
    let (partial, file) = super::partial_file(&path)?;
    let written = backups
        .take(std::io::BufWriter::with_capacity(1 << 16, file), now, true)
        .and_then(|(out, _)| {
            let file = out
                .into_inner()
                .map_err(|e| err(&partial, e.into_error()))?;
            super::commit(file, &partial, &path)
        });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    Ok(path)
}

/// Runs the schedule until shutdown (see the module's doc).
pub async fn run(backups: Arc<Backups>, schedule: BackupSchedule, mut shutdown: Shutdown) {
    let started = Utc::now();
    let newest = {
        let dir = schedule.dir.clone();
        crate::blocking::run("backup schedule", move || match list(&dir) {
            Ok(all) => Ok(all
                .last()
                .map(|(t, path)| (*t, std::fs::metadata(path).ok().map(|m| m.len())))),
            // The directory is made by the first backup.
            Err(_) if !dir.exists() => Ok(None),
            Err(e) => Err(e),
        })
        .await
        .flatten()
    };
    if let Some((at, Some(bytes))) = newest {
        backups.note_existing(at, bytes);
    }
    let newest = newest.map(|(at, _)| at);
    let interval = chrono::Duration::from_std(schedule.interval).unwrap_or(chrono::Duration::MAX);
    let mut due = newest.map_or(started, |t| t + interval);
    let mut last_success = newest;
    let mut last_ok: Option<bool> = None;
    let mut running: Option<tokio::task::JoinHandle<Result<PathBuf>>> = None;
    let mut ticker = crate::shutdown::ticker(schedule.interval.min(TICK_MAX));
    while shutdown.tick(&mut ticker).await {
        let now = Utc::now();
        if running.as_ref().is_some_and(|h| h.is_finished())
            && let Some(h) = running.take()
        {
            let ok = match h.await {
                Ok(Ok(_)) => Some(true),
                // A backup on request was running: not a failure; soon again.
                Ok(Err(Error::Conflict(_))) => None,
                _ => Some(false),
            };
            last_ok = ok.or(last_ok);
            if ok == Some(true) {
                last_success = backups.last_success().map(|o| o.started_at);
            } else {
                due = now
                    + chrono::Duration::from_std(RETRY_AFTER.min(schedule.interval))
                        .unwrap_or(interval);
            }
        }
        if running.is_none() && now >= due {
            due = now + interval;
            let (b, s) = (backups.clone(), schedule.clone());
            running = Some(tokio::task::spawn_blocking(move || {
                let path = take_into(&b, &s.dir, now)?;
                match prune(&s.dir, s.keep) {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(deleted = n, keep = s.keep, "old backups pruned"),
                    Err(e) => tracing::warn!(error = %e, "cannot prune old backups"),
                }
                Ok(path)
            }));
        }
        let age = (now - last_success.unwrap_or(started)).num_milliseconds() as f64 / 1000.0;
        let ts = now.timestamp_millis();
        let mut points = vec![(SeriesKey::new(BACKUP_AGE_METRIC), ts, age.max(0.0))];
        if let Some(ok) = last_ok {
            points.push((
                SeriesKey::new(BACKUP_OK_METRIC),
                ts,
                if ok { 1.0 } else { 0.0 },
            ));
        }
        let store = backups.store().clone();
        crate::blocking::run("backup series", move || store.record(points).map(|_| ())).await;
    }
    if let Some(h) = running {
        // A backup in progress finishes (or fails) before the store closes.
        let _ = h.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn fake(dir: &Path, at: &str) {
        let t: DateTime<Utc> = at.parse().unwrap();
        let header = Header {
            format: archive::FORMAT,
            created_at: crate::time::ts(t),
            daemon_version: "test".into(),
        };
        let w = archive::Writer::new(Vec::new(), &header).unwrap();
        let (bytes, _) = w.finish().unwrap();
        let mut f = std::fs::File::create(dir.join(file_name(t))).unwrap();
        f.write_all(&bytes).unwrap();
    }

    #[test]
    fn pick_takes_the_newest_at_or_before_and_prune_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        for at in [
            "2026-12-01T08:00:00Z",
            "2026-12-01T09:00:00Z",
            "2026-12-01T10:00:00Z",
            "2026-12-01T11:00:00Z",
        ] {
            fake(dir.path(), at);
        }
        std::fs::write(dir.path().join("notes.txt"), "not a backup").unwrap();
        std::fs::write(dir.path().join(format!("{PREFIX}junk{SUFFIX}")), "junk").unwrap();
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let name = |p: PathBuf| p.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(
            name(pick(dir.path(), at("2026-12-01T10:00:00Z")).unwrap()),
            "mlsec-backup-20261201T100000.000Z.mlsb"
        );
        assert_eq!(
            name(pick(dir.path(), at("2026-12-01T10:59:59Z")).unwrap()),
            "mlsec-backup-20261201T100000.000Z.mlsb"
        );
        let e = pick(dir.path(), at("2026-12-01T07:00:00Z")).unwrap_err();
        assert!(
            e.to_string()
                .contains("the oldest is from 2026-12-01T08:00:00"),
            "{e}"
        );
        assert_eq!(prune(dir.path(), 2).unwrap(), 2);
        let left: Vec<String> = list(dir.path())
            .unwrap()
            .into_iter()
            .map(|(_, p)| name(p))
            .collect();
        assert_eq!(
            left,
            [
                "mlsec-backup-20261201T100000.000Z.mlsb",
                "mlsec-backup-20261201T110000.000Z.mlsb"
            ]
        );
        assert!(dir.path().join("notes.txt").exists());
    }
}
