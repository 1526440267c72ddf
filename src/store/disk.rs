//! The store's sled databases, their trees, and the one way blocks are read
//! from them. Data of one lifetime shares a database, so that sled's log
//! segments die whole and are reused without cleaning (sled 0.34 only cleans
//! a half-dead segment from its flusher thread, which the store does not
//! run; measured: one database for everything grew to 6x its live data in a
//! 10-day backfill, 5x with the log apart, because every segment held raw
//! blocks that die after 6 hours beside minute blocks that live a week):
//!
//! - `<DATA_DIR>/db`: `series`, `meta` (layout, format, the highest sequence
//!   number a sealed block holds) and the other modules' trees;
//! - `<DATA_DIR>/raw`, `1m`, `1h`: one `blocks` tree each, the tier's sealed
//!   blocks at their ring keys (`keys::block_key`), written once per lap;
//! - `<DATA_DIR>/log`: `wal`, the log ring (`wal.rs`), replaced by an empty
//!   database after every checkpoint (`log_db.rs`). The open blocks as of
//!   the last checkpoint are a file beside the databases (`checkpoint.rs`).
//!
//! A block or record that fails its checksum is counted, logged once and
//! read as empty: the daemon keeps running and the next write to that place
//! replaces it.

use super::block_codec::{self, Stored};
use super::cipher::Cipher;
use super::keys::{self, SeriesId};
use super::log_db::LogDb;
use super::tier::TierSpec;
use super::vault::{self, Vault};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// At most this many damaged places are remembered to log each once.
const REPORTED_MAX: usize = 10_000;

/// The directories of the tier databases, in tier order.
pub(super) const TIER_DIRS: [&str; 3] = ["raw", "1m", "1h"];

pub(super) struct Disk {
    pub main: sled::Db,
    pub log: Arc<LogDb>,
    /// Per tier: its database and its `blocks` tree.
    pub tier_dbs: [sled::Db; 3],
    pub tiers: [Vault; 3],
    pub meta: Vault,
    /// The key values are encrypted with, if any (the checkpoint file's
    /// blocks too).
    pub cipher: Option<Arc<Cipher>>,
    corrupt_blocks: AtomicU64,
    corrupt_records: AtomicU64,
    reported: Mutex<HashSet<Vec<u8>>>,
}

pub(super) fn open_key(series: SeriesId, tier: u8) -> [u8; 5] {
    keys::tier_prefix(series, tier)
}

impl Disk {
    pub fn new(
        main: &sled::Db,
        log: &Arc<LogDb>,
        tier_dbs: &[sled::Db; 3],
        cipher: Option<&Arc<Cipher>>,
    ) -> sled::Result<Disk> {
        let tier = |i: usize| -> sled::Result<Vault> {
            let label = format!("{}/blocks", TIER_DIRS[i]);
            Ok(Vault::new(tier_dbs[i].open_tree("blocks")?, &label, cipher))
        };
        Ok(Disk {
            main: main.clone(),
            log: log.clone(),
            tier_dbs: tier_dbs.clone(),
            tiers: [tier(0)?, tier(1)?, tier(2)?],
            meta: Vault::new(main.open_tree("meta")?, "db/meta", cipher),
            cipher: cipher.cloned(),
            corrupt_blocks: AtomicU64::new(0),
            corrupt_records: AtomicU64::new(0),
            reported: Mutex::new(HashSet::new()),
        })
    }

    /// The series registry's tree (`registry.rs`).
    pub fn series(&self) -> sled::Result<Vault> {
        let tree = self.main.open_tree("series")?;
        Ok(Vault::new(tree, "db/series", self.cipher.as_ref()))
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
        let bytes = match self.tiers[spec.id as usize].get(key) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Ok(None),
            Err(e) if vault::unreadable(&e) => {
                self.damaged(&key, series, spec, "it does not decrypt with the key");
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        Ok(self.checked(&key, &bytes, series, spec, hist))
    }

    /// An open block's bytes for the checkpoint file, encrypted for its
    /// place when the store is.
    pub fn checkpoint_bytes(&self, series: SeriesId, tier: u8, bytes: Vec<u8>) -> Vec<u8> {
        match &self.cipher {
            None => bytes,
            Some(c) => c.encrypt(&bytes, &checkpoint_context(series, tier)),
        }
    }

    /// An open block read back from the checkpoint file, as `checked`.
    pub fn checked_checkpoint(
        &self,
        bytes: &[u8],
        series: SeriesId,
        spec: &TierSpec,
        hist: bool,
    ) -> Option<Stored> {
        let key = open_key(series, spec.id);
        let Some(c) = &self.cipher else {
            return self.checked(&key, bytes, series, spec, hist);
        };
        match c.decrypt(bytes, &checkpoint_context(series, spec.id)) {
            Ok(plain) => self.checked(&key, &plain, series, spec, hist),
            Err(_) => {
                self.damaged(&key, series, spec, "it does not decrypt with the key");
                None
            }
        }
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
                self.damaged(key, series, spec, e.0);
                None
            }
        }
    }

    fn damaged(&self, key: &[u8], series: SeriesId, spec: &TierSpec, problem: &str) {
        if self.first_report(key) {
            self.corrupt_blocks.fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                series,
                tier = spec.name(),
                span = %span_of(key, spec),
                problem,
                "damaged block read as empty"
            );
        }
    }

    /// Counts and logs damage in the checkpoint file (open blocks lost).
    pub fn corrupt_checkpoint(&self, problem: &str) {
        self.corrupt_blocks.fetch_add(1, Ordering::Relaxed);
        tracing::error!(
            problem,
            "damaged checkpoint: open blocks after the damage are lost"
        );
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

    pub fn get_u64(tree: &Vault, key: &str) -> sled::Result<Option<u64>> {
        Ok(tree
            .get(key)?
            .and_then(|v| v.as_ref().try_into().ok().map(u64::from_le_bytes)))
    }
}

fn checkpoint_context(series: SeriesId, tier: u8) -> Vec<u8> {
    [b"checkpoint\0".as_slice(), &open_key(series, tier)].concat()
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
