//! The store's sled trees and the one way blocks are read from them.
//!
//! `blocks`: sealed blocks at their ring keys (`keys::block_key`), written
//! once per lap. `open`: the open block of each series and tier as of the
//! last checkpoint (`series (u32 BE) | tier`). `wal`: the log ring
//! (`wal.rs`). `meta`: the layout, the format and the checkpoint. A block or
//! record that fails its checksum is counted, logged once and read as empty:
//! the daemon keeps running and the next write to that place replaces it.

use super::block_codec::{self, Stored};
use super::keys::{self, SeriesId};
use super::tier::TierSpec;
use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// At most this many damaged places are remembered to log each once.
const REPORTED_MAX: usize = 10_000;

pub(super) struct Disk {
    pub blocks: sled::Tree,
    pub open: sled::Tree,
    pub wal: sled::Tree,
    pub meta: sled::Tree,
    corrupt_blocks: AtomicU64,
    corrupt_records: AtomicU64,
    reported: Mutex<HashSet<Vec<u8>>>,
}

pub(super) fn open_key(series: SeriesId, tier: u8) -> [u8; 5] {
    keys::tier_prefix(series, tier)
}

impl Disk {
    pub fn new(db: &sled::Db) -> sled::Result<Disk> {
        Ok(Disk {
            blocks: db.open_tree("blocks")?,
            open: db.open_tree("open")?,
            wal: db.open_tree("wal")?,
            meta: db.open_tree("meta")?,
            corrupt_blocks: AtomicU64::new(0),
            corrupt_records: AtomicU64::new(0),
            reported: Mutex::new(HashSet::new()),
        })
    }

    /// The sealed block at ring position `pos`, whatever lap it holds.
    pub fn sealed(
        &self,
        series: SeriesId,
        spec: &TierSpec,
        pos: u32,
        hist: bool,
    ) -> sled::Result<Option<Stored>> {
        let key = keys::block_key(series, spec.id, pos);
        let Some(bytes) = self.blocks.get(key)? else {
            return Ok(None);
        };
        Ok(self.checked(&key, &bytes, series, spec, hist))
    }

    /// Decodes `bytes`; a damaged block is counted, logged once, and `None`.
    pub fn checked(
        &self,
        key: &[u8],
        bytes: &[u8],
        series: SeriesId,
        spec: &TierSpec,
        hist: bool,
    ) -> Option<Stored> {
        match block_codec::decode(bytes, spec, hist) {
            Ok(s) => Some(s),
            Err(e) => {
                if self.first_report(key) {
                    self.corrupt_blocks.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(
                        series,
                        tier = spec.name(),
                        span = %span_of(key, spec),
                        problem = e.0,
                        "damaged block read as empty"
                    );
                }
                None
            }
        }
    }

    /// Counts and logs a damaged log record.
    pub fn corrupt_record(&self, slot: u64, problem: &str) {
        if self.first_report(&[b"wal".as_slice(), &slot.to_be_bytes()].concat()) {
            self.corrupt_records.fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                slot,
                problem,
                "damaged log record skipped: its samples are lost"
            );
        }
    }

    fn first_report(&self, key: &[u8]) -> bool {
        let mut seen = self.reported.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= REPORTED_MAX {
            seen.clear();
        }
        seen.insert(key.to_vec())
    }

    pub fn corrupt_blocks(&self) -> u64 {
        self.corrupt_blocks.load(Ordering::Relaxed)
    }

    pub fn corrupt_records(&self) -> u64 {
        self.corrupt_records.load(Ordering::Relaxed)
    }

    pub fn meta_u64(&self, key: &str) -> sled::Result<Option<u64>> {
        Ok(self
            .meta
            .get(key)?
            .and_then(|v| v.as_ref().try_into().ok().map(u64::from_le_bytes)))
    }
}

/// Which time a block key covers, for the log: the ring position's tier
/// and the span of one block (the lap is unknown when the block is damaged).
fn span_of(key: &[u8], spec: &TierSpec) -> String {
    let pos = key
        .get(5..9)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_be_bytes);
    match pos {
        Some(p) => format!(
            "ring position {p} of {}, {} s per block",
            spec.blocks,
            spec.step_ms * i64::from(spec.block_slots) / 1000
        ),
        None => format!("open block of tier {}", spec.name()),
    }
}
