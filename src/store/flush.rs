//! How memory reaches disk: flushes, checkpoints and recovery at start.
//!
//! A flush writes the log records of the samples since the last flush, then
//! the blocks sealed since then, each database fsynced before the next step
//! (`write` says the order and why). After a crash the records are there
//! whenever the blocks are, and replay rebuilds what was lost from memory;
//! a flush writes nothing when nothing changed.
//!
//! A checkpoint writes the blocks waiting to be sealed instead of log
//! records, then every open block to the checkpoint file with its sequence
//! number (`checkpoint.rs`); open blocks that did not change since the
//! checkpoint before are sealed and leave memory (a series that went quiet).
//! The log starts again at slot 0 after it, in a fresh database
//! (`log_db.rs`). `wal.rs` says when a checkpoint
//! is due. A flush takes shared handles to the blocks under the head lock
//! and encodes them after letting it go, so ingest never waits for encoding.

use super::block_codec;
use super::checkpoint;
use super::disk::Disk;
use super::head::{Head, LogPosition, split_place};
use super::keys;
use super::packed::OpenBlock;
use super::vault;
use super::wal;
use super::{Store, store_err};
use crate::error::Result;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// A value that does not decrypt reads as absent (it is damage, counted
/// where it is read); any other error stays one.
fn readable_or_none(e: sled::Error) -> sled::Result<Option<sled::IVec>> {
    if vault::unreadable(&e) {
        Ok(None)
    } else {
        Err(e)
    }
}

/// Store format 3 kept the checkpoint in the log database: the open blocks
/// in this tree and its sequence number at `CHECKPOINT_KEY` of `meta`. Read
/// once at the first start of this release, then dropped.
const LEGACY_OPEN_TREE: &[u8] = b"open";
const CHECKPOINT_KEY: &str = "checkpoint";
/// In the main database's `meta`: the highest sequence number a sealed block
/// holds. New records must number above it, or a later replay would take
/// them for records those blocks already hold.
const SEQ_HIGH_KEY: &str = "seq_high";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Log records, or a checkpoint when one is due.
    Auto,
    Checkpoint,
    /// A checkpoint that seals every open block (before a layout change).
    SealAll,
}

/// What one flush writes, prepared under the head lock. Blocks are shared,
/// not copied (ingest copies one it changes meanwhile), and encoded after
/// the lock is let go.
struct Plan {
    checkpoint: bool,
    records: Vec<(u64, Vec<u8>)>,
    /// Ring place and block of each block to seal.
    sealed: Vec<(u64, Arc<OpenBlock>)>,
    /// The open blocks, for a checkpoint.
    open: Vec<((u32, u8), Arc<OpenBlock>)>,
    /// Ring places written from `sealing`, with their change counts.
    sealing_written: Vec<(u64, u64)>,
    /// Open blocks written, with their change counts.
    open_written: Vec<((u32, u8), u64)>,
    /// Sequence number the written blocks hold.
    seq: u64,
}

/// Bytes a flush handed to sled and the checkpoint file.
#[derive(Default)]
struct Written {
    records: u64,
    sealed: u64,
    open: u64,
}

/// Sealed blocks go to sled in batches of at most this many.
const SEAL_BATCH: usize = 1024;
/// A flush that sealed at least this many blocks (or took a checkpoint)
/// gives the memory of its copies back to the system.
const TRIM_AFTER_SEALED: usize = 1024;

/// Returns free heap memory to the system. A checkpoint or a seal of every
/// series copies the blocks it writes; glibc's allocator keeps the freed
/// space in its arenas (measured at 50,000 series: 52 MB of 305 MB RSS).
/// One of the three unsafe blocks (`unsafe_code` is denied everywhere else;
/// the others are `umask` and the open-file limit in main.rs).
#[allow(unsafe_code)]
fn give_back_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory of the allocator's
    // own arenas; it touches no live allocation.
    unsafe {
        libc::malloc_trim(0);
    }
}

impl Store {
    /// Writes the samples since the last flush to the log (or takes a
    /// checkpoint when one is due) and the sealed blocks, and syncs.
    pub fn flush(&self) -> Result<()> {
        self.flush_as(Kind::Auto)
    }

    /// Writes every changed open block, so a restart replays nothing.
    pub fn checkpoint(&self) -> Result<()> {
        self.flush_as(Kind::Checkpoint)
    }

    /// Seals every open block into `blocks` (the layout is about to change).
    pub(super) fn seal_everything(&self) -> Result<()> {
        self.flush_as(Kind::SealAll)
    }

    fn flush_as(&self, kind: Kind) -> Result<()> {
        let _one_at_a_time = self.flush_lock();
        self.flush_holding_lock(kind)
    }

    /// One flush at a time: held by each flush, and by a backup for as long
    /// as it reads the databases (`frozen.rs`).
    pub(super) fn flush_lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.inner
            .flush_lock
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// A checkpoint by a caller that holds `flush_lock`.
    pub(super) fn checkpoint_holding_lock(&self) -> Result<()> {
        self.flush_holding_lock(Kind::Checkpoint)
    }

    fn flush_holding_lock(&self, kind: Kind) -> Result<()> {
        let started = Instant::now();
        let plan = {
            let mut head = self.head();
            self.plan(&mut head, kind)
        };
        let result = self.write(&plan);
        if plan.checkpoint || plan.sealed.len() >= TRIM_AFTER_SEALED {
            give_back_memory();
        }
        let mut head = self.head();
        let mut last_error = self
            .inner
            .last_flush_error
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(written) => {
                self.settle(&mut head, &plan, &written);
                self.inner.flushes.fetch_add(1, Ordering::Relaxed);
                if plan.checkpoint {
                    self.inner.checkpoints.fetch_add(1, Ordering::Relaxed);
                }
                for (counter, n) in
                    self.inner
                        .written
                        .iter()
                        .zip([written.records, written.sealed, written.open])
                {
                    counter.fetch_add(n, Ordering::Relaxed);
                }
                let took = started.elapsed();
                self.inner
                    .last_flush_us
                    .store(took.as_micros() as u64, Ordering::Relaxed);
                self.inner.flush_durations.observe(took);
                self.inner.writable.store(true, Ordering::Relaxed);
                *last_error = None;
                Ok(())
            }
            Err(e) => {
                // Nothing counts as written: the samples go back in front of
                // the log and the blocks stay dirty, so the next flush retries.
                head.pending.restore(plan.records);
                for (key, _) in &plan.open_written {
                    if let Some(o) = head.open.get_mut(key) {
                        o.dirty = true;
                    }
                }
                self.inner.writable.store(false, Ordering::Relaxed);
                *last_error = Some(e.to_string());
                Err(self.err(format!("flush failed: {e}")))
            }
        }
    }

    fn plan(&self, head: &mut Head, kind: Kind) -> Plan {
        let layout = &self.inner.layout;
        let records = head.pending.take();
        let log = head.log;
        let new_bytes: u64 = records.iter().map(|(_, b)| b.len() as u64).sum();
        let due = log.records + records.len() as u64 > wal::CHECKPOINT_MAX_RECORDS
            || log.bytes + new_bytes
                >= (wal::CHECKPOINT_LOG_FACTOR * log.checkpoint_bytes)
                    .max(wal::CHECKPOINT_MIN_LOG_BYTES);
        let checkpoint = kind != Kind::Auto || due;
        let seq = if checkpoint {
            log.seq + 1
        } else {
            log.seq + records.len() as u64
        };
        let mut plan = Plan {
            checkpoint,
            // Kept even when a checkpoint makes them unneeded: a write that
            // fails puts them back in front of the log.
            records,
            sealed: Vec::new(),
            open: Vec::new(),
            sealing_written: Vec::new(),
            open_written: Vec::new(),
            seq,
        };
        if checkpoint {
            // Quiet series: their open blocks are sealed and leave memory.
            let idle: Vec<(u32, u8)> = head
                .open
                .iter()
                .filter(|(_, o)| !o.dirty || kind == Kind::SealAll)
                .map(|(k, _)| k)
                .collect();
            for (series, tier) in idle {
                let o = head.open.remove(&(series, tier)).expect("listed");
                head.seal(&layout.tiers[tier as usize], series, o);
            }
            // Every open block left changed since the checkpoint before.
            plan.open.reserve_exact(head.open.len());
            for (key, o) in head.open.iter_mut() {
                plan.open.push((key, Arc::clone(&o.block)));
                plan.open_written.push((key, o.changes));
                o.dirty = false;
                o.seq = seq;
            }
        }
        let mut waiting: Vec<(&u64, &mut super::head::Open)> = head.sealing.iter_mut().collect();
        // Oldest lap first, so a newer lap of the same place is written last.
        waiting.sort_by_key(|(_, o)| o.block.base());
        plan.sealed.reserve_exact(waiting.len());
        for (at, o) in waiting {
            plan.sealed.push((*at, Arc::clone(&o.block)));
            plan.sealing_written.push((*at, o.changes));
            o.seq = seq;
        }
        plan
    }

    /// Writes a plan in the order that keeps recovery right across the two
    /// databases: new series first (replay must know every id a record
    /// names), then the log records, then the highest sequence number the
    /// sealed blocks hold, then the blocks, then the checkpoint. Each database is
    /// fsynced before the next step depends on it.
    fn write(&self, plan: &Plan) -> std::result::Result<Written, String> {
        let disk = &self.inner.disk;
        let layout = &self.inner.layout;
        let e = |e: sled::Error| e.to_string();
        let mut written = Written::default();
        let log = self.head().log;
        let series = self.registry().len();
        if series != self.inner.series_synced.swap(series, Ordering::Relaxed) {
            disk.main.flush().map_err(e)?;
        }
        if !plan.checkpoint && !plan.records.is_empty() {
            let log_db = disk.log.for_records()?;
            let mut batch = crate::store::vault::Batch::default();
            for (i, (count, body)) in plan.records.iter().enumerate() {
                let seq = log.seq + 1 + i as u64;
                batch.insert(
                    &wal::slot_key(log.records + i as u64),
                    wal::record(seq, *count, body),
                );
                written.records += body.len() as u64;
            }
            // Spacers go in once per slot, ahead of the records, empty and
            // in the clear (they hold nothing, and nothing reads them).
            let spaced = self.inner.spaced_slots.load(Ordering::Relaxed);
            let end = log.records + plan.records.len() as u64;
            if end > spaced {
                let ahead = (end + wal::SPACED_AHEAD).min(wal::CHECKPOINT_MAX_RECORDS + 1);
                let mut spacers = sled::Batch::default();
                for k in (spaced..ahead).flat_map(wal::spacer_keys) {
                    spacers.insert(&k, &[]);
                }
                log_db.wal.raw().apply_batch(spacers).map_err(e)?;
                self.inner.spaced_slots.store(ahead, Ordering::Relaxed);
            }
            log_db.wal.apply_batch(batch).map_err(e)?;
            log_db.db.flush().map_err(e)?;
        }
        if !plan.sealed.is_empty() {
            disk.meta
                .insert(SEQ_HIGH_KEY, plan.seq.to_le_bytes())
                .map_err(e)?;
            disk.main.flush().map_err(e)?;
            let mut touched = [false; 3];
            for chunk in plan.sealed.chunks(SEAL_BATCH) {
                let mut batches: [crate::store::vault::Batch; 3] = Default::default();
                for (at, block) in chunk {
                    let (series, tier, pos) = split_place(*at);
                    let spec = &layout.tiers[tier as usize];
                    let bytes = block_codec::encode(&block.block(spec), spec, plan.seq);
                    written.sealed += bytes.len() as u64;
                    batches[tier as usize].insert(&keys::block_key(series, tier, pos), bytes);
                    touched[tier as usize] = true;
                }
                for (tier, batch) in batches.into_iter().enumerate() {
                    disk.tiers[tier].apply_batch(batch).map_err(e)?;
                }
            }
            for (db, touched) in disk.tier_dbs.iter().zip(touched) {
                if touched {
                    db.flush().map_err(e)?;
                }
            }
        }
        if plan.checkpoint {
            let blocks = plan.open.iter().map(|((series, tier), block)| {
                let spec = &layout.tiers[*tier as usize];
                let bytes = block_codec::encode(&block.block(spec), spec, plan.seq);
                (*series, *tier, disk.checkpoint_bytes(*series, *tier, bytes))
            });
            written.open = checkpoint::write(&self.inner.dir, plan.seq, plan.open.len(), blocks)
                .map_err(|e| format!("cannot write the checkpoint: {e}"))?;
            // The checkpoint holds everything the log did: a fresh log
            // database leaves the old one's space behind (`log_db.rs`).
            match disk.log.recycle() {
                Ok(()) => self.inner.spaced_slots.store(0, Ordering::Relaxed),
                Err(problem) => tracing::warn!(problem, "the log database was not renewed"),
            }
        }
        Ok(written)
    }

    /// After a successful write: advance the log, move written blocks out of
    /// `sealing` unless they changed meanwhile.
    fn settle(&self, head: &mut Head, plan: &Plan, written: &Written) {
        let record_bytes: u64 = plan.records.iter().map(|(_, b)| b.len() as u64).sum();
        head.log = if plan.checkpoint {
            LogPosition {
                seq: plan.seq,
                records: 0,
                bytes: 0,
                checkpoint_bytes: written.sealed + written.open,
            }
        } else {
            LogPosition {
                seq: plan.seq,
                records: head.log.records + plan.records.len() as u64,
                bytes: head.log.bytes + record_bytes,
                checkpoint_bytes: head.log.checkpoint_bytes,
            }
        };
        for (at, changes) in &plan.sealing_written {
            if head.sealing.get(at).is_some_and(|o| o.changes == *changes)
                && let Some(o) = head.sealing.remove(at)
            {
                // A packed block is not unpacked for the read cache: a
                // query reads it back from sled when it needs it.
                if let OpenBlock::Full(b) = &*o.block {
                    head.cache(*at, Arc::new(b.clone()));
                }
            }
        }
        for (key, changes) in &plan.open_written {
            if let Some(o) = head.open.get_mut(key)
                && o.changes != *changes
            {
                o.dirty = true;
            }
        }
    }

    /// Rebuilds memory after a start: open blocks from the last checkpoint,
    /// then the log records after it, then a checkpoint.
    pub(super) fn recover(&self) -> Result<()> {
        let disk = &self.inner.disk;
        let layout = self.inner.layout;
        let started = Instant::now();
        let err = |e: sled::Error| store_err(&self.inner.dir, e.to_string());
        let seq_high = Disk::get_u64(&disk.meta, SEQ_HIGH_KEY)
            .map_err(err)?
            .unwrap_or(0);
        let read = checkpoint::read(&self.inner.dir)
            .map_err(|e| store_err(&self.inner.dir, format!("cannot read the checkpoint: {e}")))?;
        // A data directory of store format 3 kept its checkpoint in sled.
        let legacy = read.is_none()
            && disk
                .log
                .lock()
                .db
                .tree_names()
                .iter()
                .any(|n| n == LEGACY_OPEN_TREE);
        let (checkpoint, entries) = match read {
            Some(r) => {
                if let Some(problem) = r.damage {
                    disk.corrupt_checkpoint(problem);
                }
                let seq = if r.seq == 0 && r.damage.is_some() {
                    // The header is lost: the log's first record says where
                    // the checkpoint stood.
                    let first = disk.log.lock().wal.get(wal::slot_key(0));
                    match first.or_else(readable_or_none).map_err(err)? {
                        Some(b) => wal::record_seq(&b).map_or(seq_high, |s| s.saturating_sub(1)),
                        None => seq_high,
                    }
                } else {
                    r.seq
                };
                (seq, r.entries)
            }
            None if legacy => {
                let log_db = disk.log.lock();
                let seq = Disk::get_u64(&log_db.meta, CHECKPOINT_KEY)
                    .map_err(err)?
                    .unwrap_or(0);
                let mut entries = Vec::new();
                for kv in log_db.db.open_tree(LEGACY_OPEN_TREE).map_err(err)?.iter() {
                    let (k, v) = kv.map_err(err)?;
                    if let (Some(series), Some(&tier)) = (
                        k.get(..4)
                            .and_then(|b| b.try_into().ok())
                            .map(u32::from_be_bytes),
                        k.get(4),
                    ) {
                        entries.push(checkpoint::Entry {
                            series,
                            tier,
                            bytes: v.to_vec(),
                        });
                    }
                }
                (seq, entries)
            }
            None => (0, Vec::new()),
        };
        let mut opened = 0;
        {
            let reg = self.registry();
            let mut head = self.head();
            for checkpoint::Entry {
                series,
                tier,
                bytes,
            } in entries
            {
                let Some(spec) = layout.tiers.get(tier as usize) else {
                    continue;
                };
                if series as usize >= reg.len() {
                    continue;
                }
                let hist = reg.is_hist(series);
                let Some(stored) = disk.checked_checkpoint(&bytes, series, spec, hist) else {
                    continue;
                };
                let pos = spec.position(stored.block.base);
                let sealed = disk.sealed(series, spec, pos, hist).map_err(err)?;
                if sealed.is_some_and(|s| s.block.base >= stored.block.base) {
                    continue; // sealed after this checkpoint
                }
                let base = stored.block.base;
                head.open.insert(
                    (series, tier),
                    super::head::Open::new(Some(stored), base, spec, hist),
                );
                opened += 1;
            }
        }
        let mut replayed = (0u64, 0u64);
        let mut slot = 0u64;
        // Held through replay, which writes nothing to the log (replayed
        // records carry their sequence number, so ingest never flushes).
        let log_db = disk.log.lock();
        while slot <= wal::CHECKPOINT_MAX_RECORDS {
            let bytes = match log_db.wal.get(wal::slot_key(slot)) {
                Ok(Some(bytes)) => bytes,
                Ok(None) => break,
                Err(e) if vault::unreadable(&e) => {
                    disk.corrupt_record(slot, "it does not decrypt with the key");
                    slot += 1;
                    continue;
                }
                Err(e) => return Err(err(e)),
            };
            let want = checkpoint + 1 + slot;
            match wal::record_seq(&bytes) {
                Ok(seq) if seq == want => match wal::entries(&bytes) {
                    Ok(entries) => {
                        replayed.0 += 1;
                        replayed.1 += entries.len() as u64;
                        self.ingest_entries(
                            entries.into_iter().map(|l| (l.series, l.ts_ms, l.entry)),
                            seq,
                        )?;
                    }
                    Err(c) => disk.corrupt_record(slot, c.0),
                },
                Ok(_) => break, // an older lap of the ring: the log ends here
                Err(c) => disk.corrupt_record(slot, c.0),
            }
            slot += 1;
        }
        drop(log_db);
        // After a clean stop (nothing to replay, no block newer than the
        // checkpoint) the log goes on where it is and nothing is rewritten;
        // otherwise a checkpoint makes what replay rebuilt durable and
        // starts the log afresh.
        let clean = slot == 0 && seq_high <= checkpoint && !legacy;
        {
            let mut head = self.head();
            head.log = LogPosition {
                seq: (checkpoint + slot).max(seq_high),
                records: slot,
                bytes: 0,
                checkpoint_bytes: 0,
            };
            if !clean {
                // Open blocks loaded from the checkpoint are kept, not
                // taken for quiet ones and sealed.
                for (_, o) in head.open.iter_mut() {
                    o.dirty = true;
                }
            }
        }
        if !clean {
            self.checkpoint()?;
        }
        if legacy {
            let log_db = disk.log.lock();
            log_db.db.drop_tree(LEGACY_OPEN_TREE).map_err(err)?;
            log_db.meta.remove(CHECKPOINT_KEY).map_err(err)?;
            log_db.db.flush().map_err(err)?;
            tracing::info!("checkpoint moved from the log database to its own file");
        }
        tracing::info!(
            open_blocks = opened,
            records = replayed.0,
            samples = replayed.1,
            ms = started.elapsed().as_millis() as u64,
            "store recovered"
        );
        Ok(())
    }
}
