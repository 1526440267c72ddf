//! The on-disk form of one block, column by column, with a checksum.
//!
//! ```text
//! 2 (format) | kind (0 raw, 1 agg, 2 hist) | base (zig-zag varint) | seq (varint)
//! | slot count (varint) | presence: run count, then alternating present /
//! absent run lengths | one column per field over the present slots only
//! | CRC-32 of everything before (4 bytes, little-endian)
//! ```
//!
//! Columns (`column.rs` picks each one's encoding): raw `value`; agg `count`,
//! `sum`, `min`, `max`, `last`, and `last_ts_ms - slot start`; hist `count`,
//! `errors`, `sum`, `min`, `max`, buckets per slot, bucket indices, bucket
//! counts. A float column equal to an earlier one (with one sample per slot,
//! `min`, `max` and `last` equal `sum`) is one byte naming that column.
//!
//! `seq` is the newest log record folded into the block, so replaying the log
//! after a crash never counts a sample twice (`wal.rs`). Format 1 (bincode of
//! the decoded block, the first release) is still read.

use super::codec;
use super::column::{self, Corrupt, Decoded};
use super::histogram::Hist;
use super::ring::{Agg, Block, Slots};
use super::tier::{TierKind, TierSpec};

const FORMAT: u8 = 2;
const FORMAT_V1: u8 = 1;
const KIND_RAW: u8 = 0;
const KIND_AGG: u8 = 1;
const KIND_HIST: u8 = 2;
/// First byte of a float column that repeats column `b & 0x7f`.
const SAME_AS: u8 = 0x80;
/// Most buckets one histogram slot may hold (a latency histogram at 1 %
/// accuracy spans 1 µs to hours in about 1,500).
const MAX_BUCKETS: usize = 1 << 16;

/// A block read back: its content and the newest log record in it.
#[derive(Clone, Debug, PartialEq)]
pub struct Stored {
    pub block: Block,
    pub seq: u64,
}

pub fn encode(block: &Block, spec: &TierSpec, seq: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.push(FORMAT);
    let n = match &block.slots {
        Slots::Raw(v) => {
            out.push(KIND_RAW);
            v.len()
        }
        Slots::Agg(v) => {
            out.push(KIND_AGG);
            v.len()
        }
        Slots::Hist(v) => {
            out.push(KIND_HIST);
            v.len()
        }
    };
    column::put_varint(&mut out, column::zigzag(block.base));
    column::put_varint(&mut out, seq);
    column::put_varint(&mut out, n as u64);
    match &block.slots {
        Slots::Raw(v) => {
            put_presence(&mut out, v.iter().map(Option::is_some));
            let values: Vec<f64> = v.iter().flatten().copied().collect();
            column::put_f64s(&mut out, &values);
        }
        Slots::Agg(v) => {
            put_presence(&mut out, v.iter().map(Option::is_some));
            let present: Vec<(i64, &Agg)> = v
                .iter()
                .enumerate()
                .filter_map(|(i, a)| a.as_ref().map(|a| (block.base + i as i64, a)))
                .collect();
            let counts: Vec<u64> = present.iter().map(|(_, a)| u64::from(a.count)).collect();
            column::put_u64s(&mut out, &counts);
            let mut floats: Vec<Vec<f64>> = Vec::new();
            let fields: [fn(&Agg) -> f64; 4] = [|a| a.sum, |a| a.min, |a| a.max, |a| a.last];
            for field in fields {
                let col = present.iter().map(|(_, a)| field(a)).collect();
                put_float_column(&mut out, &mut floats, col);
            }
            let offsets: Vec<i64> = present
                .iter()
                .map(|(slot, a)| a.last_ts_ms.wrapping_sub(slot.wrapping_mul(spec.step_ms)))
                .collect();
            column::put_i64s(&mut out, &offsets);
        }
        Slots::Hist(v) => {
            put_presence(&mut out, v.iter().map(Option::is_some));
            let present: Vec<&Hist> = v.iter().flatten().collect();
            column::put_u64s(
                &mut out,
                &present.iter().map(|h| h.count).collect::<Vec<_>>(),
            );
            column::put_u64s(
                &mut out,
                &present.iter().map(|h| h.errors).collect::<Vec<_>>(),
            );
            let mut floats: Vec<Vec<f64>> = Vec::new();
            let fields: [fn(&Hist) -> f64; 3] = [|h| h.sum, |h| h.min, |h| h.max];
            for field in fields {
                let col = present.iter().map(|h| field(h)).collect();
                put_float_column(&mut out, &mut floats, col);
            }
            let lens: Vec<u64> = present.iter().map(|h| h.buckets.len() as u64).collect();
            column::put_u64s(&mut out, &lens);
            let idx: Vec<i64> = present
                .iter()
                .flat_map(|h| h.buckets.iter().map(|(i, _)| i64::from(*i)))
                .collect();
            column::put_i64s(&mut out, &idx);
            let counts: Vec<u64> = present
                .iter()
                .flat_map(|h| h.buckets.iter().map(|(_, c)| *c))
                .collect();
            column::put_u64s(&mut out, &counts);
        }
    }
    let crc = crc32fast::hash(&out);
    out.extend(crc.to_le_bytes());
    out
}

/// Writes `col`, or a reference to an equal column written before it.
fn put_float_column(out: &mut Vec<u8>, written: &mut Vec<Vec<f64>>, col: Vec<f64>) {
    let same = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
    match written.iter().position(|w| same(w, &col)) {
        Some(j) if !col.is_empty() => out.push(SAME_AS | j as u8),
        _ => column::put_f64s(out, &col),
    }
    written.push(col);
}

fn get_float_column(input: &mut &[u8], read: &mut Vec<Vec<f64>>, n: usize) -> Decoded<Vec<f64>> {
    let col = match input.first() {
        Some(&b) if n > 0 && b & SAME_AS != 0 => {
            *input = &input[1..];
            read.get(usize::from(b & !SAME_AS))
                .cloned()
                .ok_or(Corrupt("reference to an unknown column"))?
        }
        _ => column::get_f64s(input, n)?,
    };
    read.push(col.clone());
    Ok(col)
}

fn put_presence(out: &mut Vec<u8>, present: impl Iterator<Item = bool>) {
    let mut runs = Vec::new();
    let (mut state, mut len) = (true, 0u64);
    for p in present {
        if p == state {
            len += 1;
        } else {
            runs.push(len);
            state = p;
            len = 1;
        }
    }
    runs.push(len);
    column::put_varint(out, runs.len() as u64);
    for r in runs {
        column::put_varint(out, r);
    }
}

fn get_presence(input: &mut &[u8], n: usize) -> Decoded<Vec<bool>> {
    let runs = column::get_len(input, n + 1)?;
    let mut out = Vec::with_capacity(n);
    let mut state = true;
    for _ in 0..runs {
        let len = column::get_len(input, n - out.len())?;
        out.resize(out.len() + len, state);
        state = !state;
    }
    if out.len() != n {
        return Err(Corrupt("presence runs do not cover the block"));
    }
    Ok(out)
}

/// Reads a stored block for tier `spec`; `hist` is the series' kind. Any
/// mismatch, truncation or checksum failure is `Err`, never a panic.
pub fn decode(bytes: &[u8], spec: &TierSpec, hist: bool) -> Decoded<Stored> {
    match bytes.first() {
        Some(&FORMAT_V1) => {
            let block: Block =
                codec::decode(bytes).map_err(|_| Corrupt("undecodable format 1 block"))?;
            check_shape(&block, spec, hist)?;
            Ok(Stored { block, seq: 0 })
        }
        Some(&FORMAT) => {
            if bytes.len() < 6 {
                return Err(Corrupt("too short"));
            }
            let (body, crc) = bytes.split_at(bytes.len() - 4);
            if crc32fast::hash(body).to_le_bytes() != crc {
                return Err(Corrupt("checksum mismatch"));
            }
            let stored = decode_body(&body[1..], spec)?;
            check_shape(&stored.block, spec, hist)?;
            Ok(stored)
        }
        _ => Err(Corrupt("unknown block format")),
    }
}

fn check_shape(block: &Block, spec: &TierSpec, hist: bool) -> Decoded<()> {
    let (len, kind_ok) = match &block.slots {
        Slots::Raw(v) => (v.len(), !hist && spec.kind == TierKind::Raw),
        Slots::Agg(v) => (v.len(), !hist && spec.kind == TierKind::Agg),
        Slots::Hist(v) => (v.len(), hist),
    };
    if !kind_ok || len != spec.block_slots as usize {
        return Err(Corrupt("block of another tier or series kind"));
    }
    if block.base.rem_euclid(i64::from(spec.block_slots)) != 0 {
        return Err(Corrupt("block base not on a block boundary"));
    }
    Ok(())
}

/// Puts the present slots' values back at their positions.
fn spread<T>(present: &[bool], values: Vec<T>) -> Vec<Option<T>> {
    let mut it = values.into_iter();
    present
        .iter()
        .map(|p| if *p { it.next() } else { None })
        .collect()
}

fn decode_body(mut input: &[u8], spec: &TierSpec) -> Decoded<Stored> {
    let input = &mut input;
    let kind = column::get_u8(input)?;
    let base = column::unzigzag(column::get_varint(input)?);
    let seq = column::get_varint(input)?;
    let n = column::get_len(input, spec.block_slots as usize)?;
    let present = get_presence(input, n)?;
    let m = present.iter().filter(|p| **p).count();
    let slots = match kind {
        KIND_RAW => Slots::Raw(spread(&present, column::get_f64s(input, m)?)),
        KIND_AGG => {
            let counts = column::get_u64s(input, m)?;
            let mut read = Vec::new();
            let sum = get_float_column(input, &mut read, m)?;
            let min = get_float_column(input, &mut read, m)?;
            let max = get_float_column(input, &mut read, m)?;
            let last = get_float_column(input, &mut read, m)?;
            let offsets = column::get_i64s(input, m)?;
            let slots: Vec<i64> = present
                .iter()
                .enumerate()
                .filter(|(_, p)| **p)
                .map(|(i, _)| base + i as i64)
                .collect();
            let aggs = (0..m)
                .map(|i| Agg {
                    count: counts[i] as u32,
                    sum: sum[i],
                    min: min[i],
                    max: max[i],
                    last: last[i],
                    last_ts_ms: slots[i].wrapping_mul(spec.step_ms).wrapping_add(offsets[i]),
                })
                .collect();
            Slots::Agg(spread(&present, aggs))
        }
        KIND_HIST => {
            let count = column::get_u64s(input, m)?;
            let errors = column::get_u64s(input, m)?;
            let mut read = Vec::new();
            let sum = get_float_column(input, &mut read, m)?;
            let min = get_float_column(input, &mut read, m)?;
            let max = get_float_column(input, &mut read, m)?;
            let lens = column::get_u64s(input, m)?;
            if lens.iter().any(|l| *l > MAX_BUCKETS as u64) {
                return Err(Corrupt("too many histogram buckets"));
            }
            let total: usize = lens.iter().map(|l| *l as usize).sum();
            let idx = column::get_i64s(input, total)?;
            let counts = column::get_u64s(input, total)?;
            let mut at = 0;
            let mut hists = Vec::with_capacity(m);
            for i in 0..m {
                let k = lens[i] as usize;
                let buckets = idx[at..at + k]
                    .iter()
                    .zip(&counts[at..at + k])
                    .map(|(i, c)| (*i as i32, *c))
                    .collect();
                at += k;
                hists.push(Hist {
                    count: count[i],
                    errors: errors[i],
                    sum: sum[i],
                    min: min[i],
                    max: max[i],
                    buckets,
                });
            }
            Slots::Hist(spread(&present, hists))
        }
        _ => return Err(Corrupt("unknown block kind")),
    };
    if !input.is_empty() {
        return Err(Corrupt("trailing bytes"));
    }
    Ok(Stored {
        block: Block { base, slots },
        seq,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tier::Layout;
    use proptest::prelude::*;
    use std::time::Duration;

    fn spec(i: usize) -> TierSpec {
        Layout::new(Duration::from_secs(5), 30).tiers[i]
    }

    fn round_trip(block: &Block, spec: &TierSpec, hist: bool) -> usize {
        let bytes = encode(block, spec, 42);
        let back = decode(&bytes, spec, hist).expect("decodes");
        assert_eq!(back.seq, 42);
        // Compare bit patterns (NaN-free, but -0.0 must stay -0.0).
        assert_eq!(format!("{:?}", back.block), format!("{block:?}"));
        bytes.len()
    }

    #[test]
    fn empty_and_full_blocks_round_trip() {
        for i in 0..3 {
            let s = spec(i);
            let b = Block::empty(&s, 24 * 1000, false);
            assert!(round_trip(&b, &s, false) < 16);
            let h = Block::empty(&s, 0, true);
            round_trip(&h, &s, true);
        }
        let s = spec(1);
        let mut b = Block::empty(&s, 60 * 7, false);
        for slot in 420..480 {
            for k in 0..12 {
                let ts = slot * 60_000 + k * 5_000 + 3;
                b.apply(&s, 420, slot, ts, (slot * 12 + k) as f64 * 0.5);
            }
        }
        let size = round_trip(&b, &s, false);
        assert!(size < 200, "a regular minute block takes {size} bytes");
    }

    #[test]
    fn one_sample_slots_store_one_float_column() {
        let s = spec(1);
        let mut b = Block::empty(&s, 0, false);
        for slot in 0..60 {
            b.apply(&s, 0, slot, slot * 60_000, 1.0 + (slot as f64).sin());
        }
        let size = round_trip(&b, &s, false);
        assert!(size < 60 * 9 + 40, "{size}");
    }

    #[test]
    fn flipped_bytes_are_detected() {
        let s = spec(0);
        let mut b = Block::empty(&s, 0, false);
        for slot in 0..120 {
            b.apply(&s, 0, slot, slot * 5000, slot as f64 * 1.25);
        }
        let bytes = encode(&b, &s, 1);
        for i in 0..bytes.len() {
            for bit in [1u8, 0x80] {
                let mut bad = bytes.clone();
                bad[i] ^= bit;
                assert!(decode(&bad, &s, false).is_err(), "flip at byte {i}");
            }
        }
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut], &s, false).is_err());
        }
        assert!(decode(&bytes, &spec(1), false).is_err(), "other tier");
        assert!(decode(&bytes, &s, true).is_err(), "other kind");
    }

    #[test]
    fn format_1_blocks_are_still_read() {
        let s = spec(2);
        let mut b = Block::empty(&s, 48, false);
        b.apply(&s, 48, 50, 50 * 3_600_000 + 7, 3.5);
        let v1 = codec::encode(&b);
        assert_eq!(v1[0], FORMAT_V1);
        assert_eq!(decode(&v1, &s, false), Ok(Stored { block: b, seq: 0 }));
    }

    fn finite() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<f64>().prop_filter("finite", |v| v.is_finite()),
            (-50i64..50).prop_map(|i| i as f64),
            Just(-0.0),
        ]
    }

    proptest! {
        #[test]
        fn gauge_blocks_round_trip(
            tier in 0usize..3,
            lap in -3i64..3,
            samples in prop::collection::vec((0i64..1_000_000_000, finite()), 0..300),
        ) {
            let s = spec(tier);
            let span = s.step_ms * i64::from(s.block_slots);
            let base = lap * i64::from(s.block_slots);
            let mut b = Block::empty(&s, base, false);
            for (off, v) in samples {
                let ts = base * s.step_ms + off % span;
                b.apply(&s, base, s.slot_of(ts), ts, v);
            }
            round_trip(&b, &s, false);
        }

        #[test]
        fn histogram_blocks_round_trip(
            tier in 0usize..3,
            samples in prop::collection::vec((0usize..24, 0.0f64..10_000.0, 0u64..1000, 0u64..10), 0..100),
        ) {
            let s = spec(tier);
            let mut b = Block::empty(&s, 0, true);
            for (slot, v, n, e) in samples {
                let slot = (slot % s.block_slots as usize) as i64;
                let h = if n % 5 == 0 { Hist::counts_only(n, e.min(n)) } else { Hist::of(v, n, e.min(n)) };
                b.apply_entry(&s, 0, slot, &crate::store::ring::Entry::Hist(h));
            }
            round_trip(&b, &s, true);
        }
    }
}
