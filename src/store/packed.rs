//! Open blocks in memory. A gauge block that is still filling keeps the
//! slots it has finished with as an append-only byte stream and only its
//! newest slot decoded, so an open block costs about what its data
//! compresses to rather than a decoded vector of every slot (a full minute
//! block decoded is 60 x 56 bytes; packed, a regular gauge's is a few
//! hundred bytes). Histogram blocks stay decoded: their slots are lists.
//!
//! The stream, slot after slot, each value XOR-ed with the same field of the
//! slot before (only the bytes that differ are kept):
//!
//! ```text
//! raw slot: code | [gap varint] | value bytes
//!           (code bit 0x40: a gap of empty slots before this one follows)
//! agg slot: flags | [gap varint] | [count varint] | [offset delta, zig-zag varint]
//!           | sum, min, max, last: code | value bytes
//!           (flags: 1 gap, 2 count differs, 4 offset of `last` differs)
//! code: 0x00 same as the field's previous value; 0x40 | k equal to field k
//!       of this slot; 0x80 | trailing zero bytes << 3 | (bytes - 1), then
//!       those bytes of the XOR, little-endian
//! ```
//!
//! A sample for the newest slot merges into it; one for a later slot moves
//! the newest into the stream. A sample for an earlier slot (rare: late
//! data) unpacks the block, applies it and packs it again.

use super::column::{put_varint, unzigzag, zigzag};
use super::ring::{Agg, Applied, Block, Entry, Slots};
use super::tier::{TierKind, TierSpec};
use std::borrow::Cow;

const SAME: u8 = 0x00;
const EARLIER: u8 = 0x40;
const XOR: u8 = 0x80;
/// Raw slots: a gap varint follows the code.
const RAW_GAP: u8 = 0x40;
const AGG_GAP: u8 = 1;
const AGG_COUNT: u8 = 2;
const AGG_OFFSET: u8 = 4;
/// The most one slot takes in the stream: flags, gap, count and offset
/// varints, then four codes with up to 8 bytes each.
const SLOT_MAX_BYTES: usize = 1 + 10 + 10 + 10 + 4 * 9;

/// A block that may still change.
#[derive(Clone, Debug)]
pub(super) enum OpenBlock {
    Packed(Packed),
    /// Histogram blocks.
    Full(Block),
}

impl OpenBlock {
    pub fn new(block: Block, spec: &TierSpec) -> OpenBlock {
        match block.slots {
            Slots::Hist(_) => OpenBlock::Full(block),
            _ => OpenBlock::Packed(Packed::from_block(&block, spec)),
        }
    }

    /// The newest slot, read without unpacking the block (`None`: empty,
    /// or a histogram block).
    pub fn newest(&self) -> Option<Agg> {
        match self {
            OpenBlock::Packed(p) => p.hot.map(|(_, a)| a),
            OpenBlock::Full(_) => None,
        }
    }

    pub fn base(&self) -> i64 {
        match self {
            OpenBlock::Packed(p) => p.base,
            OpenBlock::Full(b) => b.base,
        }
    }

    /// As `Block::apply_entry`.
    pub fn apply_entry(&mut self, spec: &TierSpec, base: i64, slot: i64, entry: &Entry) -> Applied {
        match self {
            OpenBlock::Packed(p) => p.apply_entry(spec, base, slot, entry),
            OpenBlock::Full(b) => b.apply_entry(spec, base, slot, entry),
        }
    }

    /// The block decoded (borrowed when it is kept decoded).
    pub fn block(&self, spec: &TierSpec) -> Cow<'_, Block> {
        match self {
            OpenBlock::Packed(p) => Cow::Owned(p.to_block(spec)),
            OpenBlock::Full(b) => Cow::Borrowed(b),
        }
    }
}

/// A gauge block (raw or aggregate tier) as a stream plus its newest slot.
#[derive(Clone, Debug)]
pub(super) struct Packed {
    base: i64,
    raw: bool,
    /// Finished slots, oldest first.
    stream: Vec<u8>,
    /// Block index of the last slot in `stream` (-1: none).
    last: i32,
    /// The previous slot's sum, min, max and last (raw: the value is `[0]`).
    prev: [u64; 4],
    prev_count: u32,
    prev_offset: i64,
    /// The newest slot, not in the stream: block index and content (raw:
    /// the value is `last`). `None` only when the block is empty.
    hot: Option<(u32, Agg)>,
}

impl Packed {
    fn empty(base: i64, raw: bool) -> Packed {
        Packed {
            base,
            raw,
            stream: Vec::new(),
            last: -1,
            prev: [0; 4],
            prev_count: 1,
            prev_offset: 0,
            hot: None,
        }
    }

    fn from_block(block: &Block, spec: &TierSpec) -> Packed {
        let mut p = Packed::empty(block.base, spec.kind == TierKind::Raw);
        let n = spec.block_slots as i64;
        for slot in block.base..block.base + n {
            if let Some(a) = block.get(slot, spec.step_ms) {
                p.append((slot - block.base) as u32, a, spec);
            }
        }
        p
    }

    fn apply_entry(&mut self, spec: &TierSpec, base: i64, slot: i64, entry: &Entry) -> Applied {
        // A histogram has nowhere to go in a gauge block; the store never sends one.
        let Entry::Agg(agg) = entry else {
            return Applied::Stored;
        };
        if self.base > base {
            return Applied::TooOld;
        }
        if self.base < base {
            *self = Packed::empty(base, self.raw);
        }
        let i = (slot - base) as u32;
        match &mut self.hot {
            Some((h, a)) if *h == i => {
                if self.raw {
                    a.last = agg.last;
                } else {
                    a.merge(agg);
                }
            }
            Some((h, _)) if i < *h => {
                let mut b = self.to_block(spec);
                b.apply_entry(spec, base, slot, entry);
                *self = Packed::from_block(&b, spec);
            }
            _ => self.append(i, *agg, spec),
        }
        Applied::Stored
    }

    /// Makes slot `i` (after every slot held) the newest.
    fn append(&mut self, i: u32, a: Agg, spec: &TierSpec) {
        if let Some((h, old)) = self.hot.take() {
            self.push(h, &old, spec);
        }
        self.hot = Some((i, a));
    }

    /// Appends slot `i` to the stream.
    fn push(&mut self, i: u32, a: &Agg, spec: &TierSpec) {
        let gap = (i as i64 - i64::from(self.last) - 1) as u64;
        self.last = i as i32;
        let out = &mut self.stream;
        if out.capacity() - out.len() < SLOT_MAX_BYTES {
            // Grown by an eighth, not doubled: a doubling stream keeps a
            // quarter to a third of its bytes unused, and at 50,000 series
            // open blocks are the store's largest part of memory.
            out.reserve_exact(SLOT_MAX_BYTES.max(out.len() / 8));
        }
        if self.raw {
            let (code, payload, len) = float_code(&mut self.prev[0], a.last.to_bits(), &[]);
            out.push(code | if gap > 0 { RAW_GAP } else { 0 });
            if gap > 0 {
                put_varint(out, gap);
            }
            out.extend_from_slice(&payload.to_le_bytes()[..len]);
            return;
        }
        let slot = self.base + i as i64;
        let offset = a.last_ts_ms.wrapping_sub(slot.wrapping_mul(spec.step_ms));
        let flags = if gap > 0 { AGG_GAP } else { 0 }
            | if a.count != self.prev_count {
                AGG_COUNT
            } else {
                0
            }
            | if offset != self.prev_offset {
                AGG_OFFSET
            } else {
                0
            };
        out.push(flags);
        if gap > 0 {
            put_varint(out, gap);
        }
        if a.count != self.prev_count {
            put_varint(out, u64::from(a.count));
            self.prev_count = a.count;
        }
        if offset != self.prev_offset {
            put_varint(out, zigzag(offset.wrapping_sub(self.prev_offset)));
            self.prev_offset = offset;
        }
        let fields = [a.sum, a.min, a.max, a.last].map(f64::to_bits);
        for (k, bits) in fields.iter().enumerate() {
            let (code, payload, len) = float_code(&mut self.prev[k], *bits, &fields[..k]);
            out.push(code);
            out.extend_from_slice(&payload.to_le_bytes()[..len]);
        }
    }

    fn to_block(&self, spec: &TierSpec) -> Block {
        let mut block = Block::empty(spec, self.base, false);
        let mut r = Reader {
            input: &self.stream,
            prev: [0; 4],
            count: 1,
            offset: 0,
            at: -1,
        };
        while !r.input.is_empty() {
            let Some((i, value)) = r.next(self.raw, self.base, spec.step_ms) else {
                debug_assert!(false, "a packed block's stream does not decode");
                break;
            };
            put(&mut block, i, value);
        }
        if let Some((i, a)) = self.hot {
            put(&mut block, i as usize, a);
        }
        block
    }
}

fn put(block: &mut Block, i: usize, a: Agg) {
    match &mut block.slots {
        Slots::Raw(v) if i < v.len() => v[i] = Some(a.last),
        Slots::Agg(v) if i < v.len() => v[i] = Some(a),
        _ => debug_assert!(false, "slot {i} outside a packed block"),
    }
}

/// How to write `bits` after `prev` (which it replaces): the code, the XOR
/// bytes shifted down and how many of them. `earlier` are this slot's
/// fields already written.
fn float_code(prev: &mut u64, bits: u64, earlier: &[u64]) -> (u8, u64, usize) {
    let x = bits ^ *prev;
    *prev = bits;
    if x == 0 {
        return (SAME, 0, 0);
    }
    if let Some(k) = earlier.iter().position(|e| *e == bits) {
        return (EARLIER | k as u8, 0, 0);
    }
    let tz = x.trailing_zeros() / 8;
    let len = 8 - tz - x.leading_zeros() / 8;
    (
        XOR | ((tz as u8) << 3) | (len as u8 - 1),
        x >> (tz * 8),
        len as usize,
    )
}

struct Reader<'a> {
    input: &'a [u8],
    prev: [u64; 4],
    count: u32,
    offset: i64,
    at: i64,
}

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (b, rest) = self.input.split_first()?;
        self.input = rest;
        Some(*b)
    }

    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    fn float(&mut self, code: u8, field: usize, earlier: &[u64]) -> Option<u64> {
        let bits = if code & XOR != 0 {
            let tz = (code >> 3) & 7;
            let len = usize::from(code & 7) + 1;
            if self.input.len() < len {
                return None;
            }
            let mut le = [0u8; 8];
            le[..len].copy_from_slice(&self.input[..len]);
            self.input = &self.input[len..];
            self.prev[field] ^ (u64::from_le_bytes(le) << (u32::from(tz) * 8))
        } else if code & EARLIER != 0 {
            *earlier.get(usize::from(code & !EARLIER))?
        } else {
            self.prev[field]
        };
        self.prev[field] = bits;
        Some(bits)
    }

    /// The next slot: its block index and content.
    fn next(&mut self, raw: bool, base: i64, step_ms: i64) -> Option<(usize, Agg)> {
        let head = self.byte()?;
        if raw {
            let gap = if head & RAW_GAP != 0 {
                self.varint()?
            } else {
                0
            };
            self.at += gap as i64 + 1;
            let v = f64::from_bits(self.float(head & !RAW_GAP, 0, &[])?);
            return Some((self.at as usize, Agg::single(0, v)));
        }
        let gap = if head & AGG_GAP != 0 {
            self.varint()?
        } else {
            0
        };
        if head & AGG_COUNT != 0 {
            self.count = u32::try_from(self.varint()?).ok()?;
        }
        if head & AGG_OFFSET != 0 {
            self.offset = self.offset.wrapping_add(unzigzag(self.varint()?));
        }
        self.at += gap as i64 + 1;
        let mut fields = [0u64; 4];
        for k in 0..4 {
            let code = self.byte()?;
            fields[k] = self.float(code, k, &fields[..k])?;
        }
        let [sum, min, max, last] = fields.map(f64::from_bits);
        let slot = base + self.at;
        Some((
            self.at as usize,
            Agg {
                count: self.count,
                sum,
                min,
                max,
                last,
                last_ts_ms: slot.wrapping_mul(step_ms).wrapping_add(self.offset),
            },
        ))
    }
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

    fn finite() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<f64>().prop_filter("finite", |v| v.is_finite()),
            (-3i64..3).prop_map(|i| i as f64),
            Just(-0.0),
            Just(f64::MIN_POSITIVE / 4.0),
        ]
    }

    fn same(a: &Block, b: &Block) -> bool {
        // Bit patterns: -0.0 must stay -0.0.
        format!("{a:?}") == format!("{b:?}")
    }

    #[test]
    fn a_regular_gauge_packs_small() {
        let s = spec(1);
        let mut p = OpenBlock::new(Block::empty(&s, 0, false), &s);
        for k in 0..60 * 12 {
            let ts = k * 5_000 + 3;
            let e = Entry::Agg(Agg::single(ts, (k % 7) as f64 * 0.5));
            p.apply_entry(&s, 0, s.slot_of(ts), &e);
        }
        let OpenBlock::Packed(inner) = &p else {
            panic!("a gauge block is packed")
        };
        assert!(inner.stream.len() < 60 * 10, "{} bytes", inner.stream.len());
    }

    proptest! {
        #[test]
        fn packed_blocks_hold_what_decoded_blocks_hold(
            tier in 0usize..3,
            lap in -2i64..2,
            samples in prop::collection::vec((0i64..1_000_000_000, finite(), 0u8..4), 0..200),
        ) {
            let s = spec(tier);
            let span = s.step_ms * i64::from(s.block_slots);
            let base = lap * i64::from(s.block_slots);
            let mut full = Block::empty(&s, base, false);
            let mut packed = OpenBlock::new(full.clone(), &s);
            let mut ts = base * s.step_ms;
            for (off, v, how) in samples {
                // Mostly in order, some late, some repeated.
                ts = match how {
                    0 => base * s.step_ms + off % span,
                    1 => ts,
                    _ => (ts + off % (3 * s.step_ms)).min(base * s.step_ms + span - 1),
                };
                let e = Entry::Agg(Agg::single(ts, v));
                let slot = s.slot_of(ts);
                prop_assert_eq!(
                    full.apply_entry(&s, base, slot, &e),
                    packed.apply_entry(&s, base, slot, &e)
                );
                prop_assert!(same(&full, &packed.block(&s)));
            }
            prop_assert!(same(&full, &OpenBlock::new(full.clone(), &s).block(&s)));
        }
    }
}
