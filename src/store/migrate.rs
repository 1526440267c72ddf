//! Changes to what is on disk, made once at start: the store format upgrade
//! and re-slotting tiers whose layout changed.
//!
//! Store formats: 1, the first release: every block in the main database's
//! `blocks` tree as bincode of the decoded block, rewritten at every flush;
//! 2, never released (this release's development): column-encoded blocks in
//! the same tree, with the log in the main database; 3, this release: one
//! database per tier and one for the log (`disk.rs`).

use super::block_codec;
use super::codec;
use super::disk::Disk;
use super::head::place;
use super::keys;
use super::ring::{Block, Entry};
use super::tier::Layout;
use super::vault;
use std::collections::HashMap;
use std::time::Instant;

const FORMAT_KEY: &str = "format";
const LAYOUT_KEY: &str = "layout";
/// The store format this release writes.
const FORMAT: u64 = 3;
/// Blocks re-encoded per sled batch during an upgrade.
const UPGRADE_BATCH: usize = 10_000;

type Res<T> = std::result::Result<T, String>;

fn s(e: sled::Error) -> String {
    e.to_string()
}

/// The layout the data was written with, if any.
pub(super) fn stored_layout(disk: &Disk) -> Res<Option<Layout>> {
    match disk.meta.get(LAYOUT_KEY).map_err(s)? {
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

/// Moves every block of an older format into its tier's database,
/// re-encoded, with a log line of progress every `UPGRADE_BATCH` blocks and
/// one with the duration.
pub(super) fn upgrade_format(disk: &Disk, layout: &Layout) -> Res<()> {
    let format = Disk::get_u64(&disk.meta, FORMAT_KEY)
        .map_err(s)?
        .unwrap_or(1);
    if format >= FORMAT {
        return Ok(());
    }
    let blocks = disk.main.open_tree("blocks").map_err(s)?;
    let series = disk.main.open_tree("series").map_err(s)?;
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
        let mut batches: [crate::store::vault::Batch; 3] = Default::default();
        let (mut done, mut in_batch, mut damaged) = (0usize, 0usize, 0usize);
        let apply = |batches: &mut [crate::store::vault::Batch; 3]| -> Res<()> {
            for (tree, batch) in disk.tiers.iter().zip(std::mem::take(batches)) {
                tree.apply_batch(batch).map_err(s)?;
            }
            Ok(())
        };
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
                Ok(stored) => batches[tier.id as usize]
                    .insert(&k, block_codec::encode(&stored.block, tier, 0)),
                Err(e) => {
                    damaged += 1;
                    tracing::warn!(
                        series,
                        tier = tier.name(),
                        problem = e.0,
                        "damaged block dropped"
                    );
                }
            }
            done += 1;
            in_batch += 1;
            if in_batch == UPGRADE_BATCH {
                apply(&mut batches)?;
                in_batch = 0;
                tracing::info!(done, total, "upgrading the store format");
            }
        }
        apply(&mut batches)?;
        for db in &disk.tier_dbs {
            db.flush().map_err(s)?;
        }
        tracing::info!(
            blocks = done,
            damaged,
            ms = started.elapsed().as_millis() as u64,
            "store format upgraded"
        );
    }
    // The old trees are emptied once (not a cycle: sled reuses their space).
    for name in ["blocks", "wal", "open"] {
        disk.main.open_tree(name).map_err(s)?.clear().map_err(s)?;
    }
    disk.meta
        .insert(FORMAT_KEY, FORMAT.to_le_bytes())
        .map_err(s)?;
    disk.main.flush().map_err(s)?;
    Ok(())
}

/// Re-slots every tier whose spec changed. Everything must be sealed into
/// `blocks` first (`Store::seal_everything`); the open blocks saved at the
/// last checkpoint belong to the old layout and are dropped.
pub(super) fn relayout(disk: &Disk, old: &Layout, new: &Layout) -> Res<()> {
    let kinds: Vec<bool> = disk
        .series()
        .map_err(s)?
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
            let mut batch = crate::store::vault::Batch::default();
            let tree = &disk.tiers[o.id as usize];
            for kv in tree.scan_prefix(keys::tier_prefix(series, o.id)) {
                // A block that does not decrypt is damage: left where it is.
                let (k, v) = match kv {
                    Err(e) if vault::unreadable(&e) => continue,
                    kv => kv.map_err(s)?,
                };
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
            tree.apply_batch(batch).map_err(s)?;
        }
    }
    // The open blocks were all sealed before (`seal_everything`): the
    // checkpoint holds none.
    for db in disk.tier_dbs.iter().chain([&disk.log.lock().db]) {
        db.flush().map_err(s)?;
    }
    Ok(())
}
