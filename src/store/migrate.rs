//! Changes to what is on disk, made once at start: the block format
//! upgrade (format 1, bincode of the decoded block, to the column format of
//! `block_codec.rs`) and re-slotting tiers whose layout changed.

use super::block_codec;
use super::codec;
use super::disk::Disk;
use super::head::place;
use super::keys;
use super::ring::{Block, Entry};
use super::tier::Layout;
use std::collections::HashMap;
use std::time::Instant;

const FORMAT_KEY: &str = "format";
const LAYOUT_KEY: &str = "layout";
/// The store format this release writes.
const FORMAT: u64 = 2;
/// Blocks re-encoded per sled batch during an upgrade.
const UPGRADE_BATCH: usize = 10_000;

type Res<T> = std::result::Result<T, String>;

fn s(e: sled::Error) -> String {
    e.to_string()
}

/// The layout the data was written with, if any.
pub(super) fn stored_layout(db: &sled::Db) -> Res<Option<Layout>> {
    let meta = db.open_tree("meta").map_err(s)?;
    match meta.get(LAYOUT_KEY).map_err(s)? {
        Some(bytes) => codec::decode::<Layout>(&bytes).map(Some),
        None => Ok(None),
    }
}

pub(super) fn save_layout(disk: &Disk, layout: &Layout) -> Res<()> {
    disk.meta
        .insert(LAYOUT_KEY, codec::encode(layout))
        .map_err(s)?;
    Ok(())
}

/// Re-encodes every block of an older format in place, with a log line of
/// progress every `UPGRADE_BATCH` blocks and one with the duration.
pub(super) fn upgrade_format(db: &sled::Db, layout: &Layout) -> Res<()> {
    let meta = db.open_tree("meta").map_err(s)?;
    let format = meta
        .get(FORMAT_KEY)
        .map_err(s)?
        .and_then(|v| v.as_ref().try_into().ok().map(u64::from_le_bytes))
        .unwrap_or(1);
    if format >= FORMAT {
        return Ok(());
    }
    let blocks = db.open_tree("blocks").map_err(s)?;
    let series = db.open_tree("series").map_err(s)?;
    let total = blocks.len();
    if total > 0 {
        let started = Instant::now();
        tracing::info!(
            blocks = total,
            from = format,
            to = FORMAT,
            "upgrading the store format"
        );
        let hist: HashMap<u32, bool> = series
            .iter()
            .filter_map(|kv| kv.ok())
            .filter_map(|(k, v)| {
                let id = u32::from_be_bytes(k.as_ref().try_into().ok()?);
                Some((id, v.first() == Some(&b'h')))
            })
            .collect();
        let mut batch = sled::Batch::default();
        let (mut done, mut in_batch, mut damaged) = (0usize, 0usize, 0usize);
        for kv in blocks.iter() {
            let (k, v) = kv.map_err(s)?;
            let (Some(series), Some(tier)) = (
                k.get(..4)
                    .and_then(|b| b.try_into().ok())
                    .map(u32::from_be_bytes),
                k.get(4).and_then(|t| layout.tiers.get(*t as usize)),
            ) else {
                continue;
            };
            let is_hist = hist.get(&series).copied().unwrap_or(false);
            match block_codec::decode(&v, tier, is_hist) {
                Ok(stored) => {
                    batch.insert(&k, block_codec::encode(&stored.block, tier, 0));
                }
                Err(e) => {
                    // Left as it is: read as empty, counted when read.
                    damaged += 1;
                    tracing::warn!(
                        series,
                        tier = tier.name(),
                        problem = e.0,
                        "damaged block left as is"
                    );
                }
            }
            done += 1;
            in_batch += 1;
            if in_batch == UPGRADE_BATCH {
                blocks.apply_batch(std::mem::take(&mut batch)).map_err(s)?;
                in_batch = 0;
                tracing::info!(done, total, "upgrading the store format");
            }
        }
        blocks.apply_batch(batch).map_err(s)?;
        tracing::info!(
            blocks = done,
            damaged,
            ms = started.elapsed().as_millis() as u64,
            "store format upgraded"
        );
    }
    meta.insert(FORMAT_KEY, &FORMAT.to_le_bytes()).map_err(s)?;
    db.flush().map_err(s)?;
    Ok(())
}

/// Re-slots every tier whose spec changed. Everything must be sealed into
/// `blocks` first (`Store::seal_everything`); the open blocks saved at the
/// last checkpoint belong to the old layout and are dropped.
pub(super) fn relayout(db: &sled::Db, old: &Layout, new: &Layout) -> Res<()> {
    let disk = Disk::new(db).map_err(s)?;
    let series = db.open_tree("series").map_err(s)?;
    let kinds: Vec<bool> = series
        .iter()
        .values()
        .filter_map(|v| v.ok())
        .map(|v| v.first() == Some(&b'h'))
        .collect();
    for (o, n) in old.tiers.iter().zip(&new.tiers) {
        if o == n {
            continue;
        }
        tracing::info!(
            tier = n.name(),
            ?o,
            ?n,
            "tier layout changed; re-slotting stored data"
        );
        for (series, hist) in kinds.iter().enumerate() {
            let series = series as u32;
            let mut filled: Vec<(i64, Entry)> = Vec::new();
            let mut batch = sled::Batch::default();
            for kv in disk.blocks.scan_prefix(keys::tier_prefix(series, o.id)) {
                let (k, v) = kv.map_err(s)?;
                batch.remove(k.clone());
                if let Some(stored) = disk.checked(&k, &v, series, o, *hist) {
                    filled.extend(
                        stored
                            .block
                            .entries(o.step_ms)
                            .into_iter()
                            .map(|(slot, e)| (slot * o.step_ms, e)),
                    );
                }
            }
            filled.sort_by_key(|(t, _)| *t);
            let mut fresh: HashMap<u64, Block> = HashMap::new();
            for (t, e) in filled {
                let slot = n.slot_of(t);
                let base = n.block_base(slot);
                let b = fresh
                    .entry(place(series, n.id, n.position(base)))
                    .or_insert_with(|| Block::empty(n, base, *hist));
                b.apply_entry(n, base, slot, &e);
            }
            for (at, b) in fresh {
                let pos = at as u32;
                batch.insert(
                    &keys::block_key(series, n.id, pos),
                    block_codec::encode(&b, n, 0),
                );
            }
            disk.blocks.apply_batch(batch).map_err(s)?;
        }
    }
    disk.open.clear().map_err(s)?;
    db.flush().map_err(s)?;
    Ok(())
}
