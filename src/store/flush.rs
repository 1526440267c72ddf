//! How memory reaches disk: flushes, checkpoints and recovery at start.
//!
//! A flush writes the log records of the samples since the last flush, then
//! the blocks sealed since then, each database fsynced before the next step
//! (`write` says the order and why). After a crash the records are there
//! whenever the blocks are, and replay rebuilds what was lost from memory;
//! a flush writes nothing when nothing changed.
//!
//! A checkpoint writes every open block that changed and the blocks waiting
//! to be sealed instead of log records, then its sequence number to `meta`;
//! open blocks that did not change since the checkpoint before are sealed
//! and leave memory (a series that went quiet). The log starts again at slot
//! 0 after it. `wal.rs` says when a checkpoint is due.

use super::block_codec;
use super::disk::{Disk, open_key};
use super::head::{Head, LogPosition, split_place};
use super::keys;
use super::wal;
use super::{Store, store_err};
use crate::error::Result;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// In the log database's `meta`: the sequence number of the last checkpoint.
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

/// What one flush writes, prepared under the head lock.
struct Plan {
    checkpoint: bool,
    records: Vec<(u64, Vec<u8>)>,
    /// (key, value) for `blocks` and `open`.
    sealed: Vec<([u8; 9], Vec<u8>)>,
    open: Vec<([u8; 5], Vec<u8>)>,
    /// Ring places written from `sealing`, with their change counts.
    sealing_written: Vec<(u64, u64)>,
    /// Open blocks written, with their change counts.
    open_written: Vec<((u32, u8), u64)>,
    /// Sequence number the written blocks hold.
    seq: u64,
    bytes: u64,
}

fn value_bytes<K>(entries: &[(K, Vec<u8>)]) -> u64 {
    entries.iter().map(|(_, v)| v.len() as u64).sum()
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
        let _one_at_a_time = self
            .inner
            .flush_lock
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let started = Instant::now();
        let plan = {
            let mut head = self.head();
            self.plan(&mut head, kind)
        };
        let result = self.write(&plan);
        let mut head = self.head();
        let mut last_error = self
            .inner
            .last_flush_error
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(()) => {
                self.settle(&mut head, &plan);
                self.inner.flushes.fetch_add(1, Ordering::Relaxed);
                if plan.checkpoint {
                    self.inner.checkpoints.fetch_add(1, Ordering::Relaxed);
                }
                for (counter, n) in self.inner.written.iter().zip([
                    if plan.checkpoint {
                        0
                    } else {
                        value_bytes(&plan.records)
                    },
                    value_bytes(&plan.sealed),
                    value_bytes(&plan.open),
                ]) {
                    counter.fetch_add(n, Ordering::Relaxed);
                }
                self.inner
                    .last_flush_us
                    .store(started.elapsed().as_micros() as u64, Ordering::Relaxed);
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
            bytes: 0,
        };
        if checkpoint {
            // Quiet series: their open blocks are sealed and leave memory.
            let idle: Vec<(u32, u8)> = head
                .open
                .iter()
                .filter(|(_, o)| !o.dirty || kind == Kind::SealAll)
                .map(|(k, _)| *k)
                .collect();
            for (series, tier) in idle {
                let o = head.open.remove(&(series, tier)).expect("listed");
                head.seal(&layout.tiers[tier as usize], series, o);
            }
            for ((series, tier), o) in head.open.iter_mut().filter(|(_, o)| o.dirty) {
                let spec = &layout.tiers[*tier as usize];
                let bytes = block_codec::encode(&o.block, spec, seq);
                plan.bytes += bytes.len() as u64;
                plan.open.push((open_key(*series, *tier), bytes));
                plan.open_written.push(((*series, *tier), o.changes));
                o.dirty = false;
                o.seq = seq;
            }
        }
        let mut waiting: Vec<(&u64, &mut super::head::Open)> = head.sealing.iter_mut().collect();
        // Oldest lap first, so a newer lap of the same place is written last.
        waiting.sort_by_key(|(_, o)| o.block.base);
        for (at, o) in waiting {
            let (series, tier, pos) = split_place(*at);
            let spec = &layout.tiers[tier as usize];
            let bytes = block_codec::encode(&o.block, spec, seq);
            plan.bytes += bytes.len() as u64;
            plan.sealed
                .push((keys::block_key(series, tier, pos), bytes));
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
    fn write(&self, plan: &Plan) -> std::result::Result<(), sled::Error> {
        let disk = &self.inner.disk;
        let log = self.head().log;
        let series = self.registry().len();
        if series != self.inner.series_synced.swap(series, Ordering::Relaxed) {
            disk.main.flush()?;
        }
        if !plan.checkpoint && !plan.records.is_empty() {
            let mut batch = sled::Batch::default();
            for (i, (count, body)) in plan.records.iter().enumerate() {
                let seq = log.seq + 1 + i as u64;
                batch.insert(
                    &wal::slot_key(log.records + i as u64),
                    wal::record(seq, *count, body),
                );
            }
            disk.wal.apply_batch(batch)?;
            disk.log.flush()?;
        }
        if !plan.sealed.is_empty() {
            disk.meta.insert(SEQ_HIGH_KEY, &plan.seq.to_le_bytes())?;
            disk.main.flush()?;
            let mut batches: [sled::Batch; 3] = Default::default();
            for (k, v) in &plan.sealed {
                batches[usize::from(k[4])].insert(k, v.as_slice());
            }
            for (tier, batch) in batches.into_iter().enumerate() {
                if plan.sealed.iter().any(|(k, _)| usize::from(k[4]) == tier) {
                    disk.tiers[tier].apply_batch(batch)?;
                    disk.tier_dbs[tier].flush()?;
                }
            }
        }
        if plan.checkpoint {
            let mut batch = sled::Batch::default();
            for (k, v) in &plan.open {
                batch.insert(k, v.as_slice());
            }
            disk.open.apply_batch(batch)?;
            disk.log_meta
                .insert(CHECKPOINT_KEY, &plan.seq.to_le_bytes())?;
            disk.log.flush()?;
        }
        Ok(())
    }

    /// After a successful write: advance the log, move written blocks out of
    /// `sealing` unless they changed meanwhile.
    fn settle(&self, head: &mut Head, plan: &Plan) {
        let record_bytes: u64 = plan.records.iter().map(|(_, b)| b.len() as u64).sum();
        head.log = if plan.checkpoint {
            LogPosition {
                seq: plan.seq,
                records: 0,
                bytes: 0,
                checkpoint_bytes: plan.bytes,
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
                head.cache(*at, Arc::new(o.block));
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
        let checkpoint = Disk::get_u64(&disk.log_meta, CHECKPOINT_KEY)
            .map_err(err)?
            .unwrap_or(0);
        let seq_high = Disk::get_u64(&disk.meta, SEQ_HIGH_KEY)
            .map_err(err)?
            .unwrap_or(0);
        let mut opened = 0;
        {
            let reg = self.registry();
            let mut head = self.head();
            for kv in disk.open.iter() {
                let (k, v) = kv.map_err(err)?;
                let (Some(series), Some(&tier)) = (
                    k.get(..4)
                        .and_then(|b| b.try_into().ok())
                        .map(u32::from_be_bytes),
                    k.get(4),
                ) else {
                    continue;
                };
                let Some(spec) = layout.tiers.get(tier as usize) else {
                    continue;
                };
                if series as usize >= reg.len() {
                    continue;
                }
                let hist = reg.is_hist(series);
                let Some(stored) = disk.checked(&k, &v, series, spec, hist) else {
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
                    super::head::Open::new(Some(stored), series, base, spec, hist),
                );
                opened += 1;
            }
        }
        let mut replayed = (0u64, 0u64);
        let mut slot = 0u64;
        while slot <= wal::CHECKPOINT_MAX_RECORDS {
            let Some(bytes) = disk.wal.get(wal::slot_key(slot)).map_err(err)? else {
                break;
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
        // After a clean stop (nothing to replay, no block newer than the
        // checkpoint) the log goes on where it is and nothing is rewritten;
        // otherwise a checkpoint makes what replay rebuilt durable and
        // starts the log afresh.
        let clean = slot == 0 && seq_high <= checkpoint;
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
                for o in head.open.values_mut() {
                    o.dirty = true;
                }
            }
        }
        if !clean {
            self.checkpoint()?;
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
