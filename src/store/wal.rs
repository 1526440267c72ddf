//! The write-ahead log: what makes samples durable between checkpoints.
//!
//! Every flush appends the samples ingested since the last one as records
//! of at most `RECORD_MAX_BYTES` to the `wal` tree. The log is a ring of
//! fixed keys that starts again at slot 0 after every checkpoint: record `i`
//! after checkpoint `c` has sequence number `c + 1 + i` and lives at key
//! `i`. Keys are overwritten, never deleted, because sled 0.34 never gives
//! back the space of deleted keys; the ring is as long as the longest run of
//! records between two checkpoints, and `CHECKPOINT_MAX_RECORDS` bounds it.
//! After each checkpoint the ring starts in a fresh database (`log_db.rs`),
//! so the space the last one's records took is given back whole.
//!
//! A checkpoint (`Store::flush` decides when) writes every open block, each
//! tagged with the sequence number it includes, and the checkpoint's own
//! sequence number to `meta`. At start the open blocks are read back and the
//! records after the checkpoint replayed; a block whose tag is not older
//! than a record already holds it, so nothing is counted twice.
//!
//! Record: `seq (u64 LE) | entry count (varint) | entries | CRC-32 (LE)`.
//! An entry is a header byte and only what differs from the entry before
//! (series, timestamp), then the value: a gauge as an integer varint when it
//! is one, as nothing when it repeats the previous gauge value, else as its
//! 8 bytes; request statistics as their counts, sums and buckets.

use super::column::{self, Corrupt, Decoded};
use super::histogram::Hist;
use super::keys::SeriesId;
use super::ring::{Agg, Entry};

/// Records stay below sled's blob threshold (a quarter of its 512 KiB
/// segment): a leaf holds up to 16 keys, each record's with its three
/// spacers, and sled rewrites leaves whole, so 4 records make a 64 KiB node.
/// (With 4 KiB records the cap below meant 64 MiB of log, which forced a
/// checkpoint of every open block every few minutes at 20,000 samples/s;
/// with 16 KiB records, 30 minutes at that rate wrote 18.2 B a sample
/// against 20.1 B, `bench_writes 100000 1800`, both at once.)
pub const RECORD_MAX_BYTES: usize = 16 * 1024;
/// At most this many records between checkpoints (256 MiB of log at most;
/// at one flush a second with few series, a checkpoint every 4.5 hours).
pub const CHECKPOINT_MAX_RECORDS: u64 = 16_384;
/// A checkpoint is taken once the log since the last one holds this many
/// times the bytes that checkpoint wrote: checkpoints then cost at most half
/// of what the log does, and the log holds about two checkpoints' worth.
pub const CHECKPOINT_LOG_FACTOR: u64 = 2;
/// ... but never before the log holds this much (few series, tiny checkpoints).
pub const CHECKPOINT_MIN_LOG_BYTES: u64 = 1 << 20;

const V_F64: u8 = 0;
const V_INT: u8 = 1;
const V_SAME: u8 = 2;
const V_HIST: u8 = 3;
const NEXT_SERIES: u8 = 1 << 2;
const SAME_SERIES: u8 = 1 << 3;
const SAME_TS: u8 = 1 << 4;

/// Samples since the last flush, already encoded as record bodies.
#[derive(Default)]
pub struct Pending {
    /// Finished bodies: (entry count, bytes).
    full: Vec<(u64, Vec<u8>)>,
    body: Vec<u8>,
    count: u64,
    prev_series: Option<SeriesId>,
    prev_ts: i64,
    prev_value: Option<u64>,
}

impl Pending {
    pub fn push(&mut self, series: SeriesId, ts_ms: i64, entry: &Entry) {
        if self.body.len() >= RECORD_MAX_BYTES - 64 {
            self.cut();
        }
        let at = self.body.len();
        self.body.push(0);
        let mut header = match self.prev_series {
            Some(p) if p == series => SAME_SERIES,
            Some(p) if p.wrapping_add(1) == series => NEXT_SERIES,
            _ => {
                column::put_varint(&mut self.body, u64::from(series));
                0
            }
        };
        if self.prev_series.is_some() && ts_ms == self.prev_ts {
            header |= SAME_TS;
        } else {
            column::put_varint(
                &mut self.body,
                column::zigzag(ts_ms.wrapping_sub(self.prev_ts)),
            );
        }
        match entry {
            Entry::Agg(a) => {
                let bits = a.last.to_bits();
                if self.prev_value == Some(bits) {
                    header |= V_SAME;
                } else if let Some(i) = exact_int(a.last) {
                    header |= V_INT;
                    column::put_varint(&mut self.body, column::zigzag(i));
                } else {
                    header |= V_F64;
                    self.body.extend(bits.to_le_bytes());
                }
                self.prev_value = Some(bits);
            }
            Entry::Hist(h) => {
                header |= V_HIST;
                put_hist(&mut self.body, h);
            }
        }
        self.body[at] = header;
        self.prev_series = Some(series);
        self.prev_ts = ts_ms;
        self.count += 1;
        if self.body.len() >= RECORD_MAX_BYTES - 64 {
            self.cut();
        }
    }

    fn cut(&mut self) {
        if self.count > 0 {
            self.full.push((self.count, std::mem::take(&mut self.body)));
        }
        *self = Pending {
            full: std::mem::take(&mut self.full),
            ..Pending::default()
        };
    }

    /// The record bodies so far; the buffer is empty afterwards.
    pub fn take(&mut self) -> Vec<(u64, Vec<u8>)> {
        self.cut();
        std::mem::take(&mut self.full)
    }

    /// Puts bodies back in front (a flush that failed).
    pub fn restore(&mut self, mut bodies: Vec<(u64, Vec<u8>)>) {
        self.cut();
        bodies.append(&mut self.full);
        self.full = bodies;
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.count == 0 && self.full.is_empty()
    }
}

fn exact_int(v: f64) -> Option<i64> {
    let i = v as i64;
    (i as f64).to_bits().eq(&v.to_bits()).then_some(i)
}

fn put_hist(out: &mut Vec<u8>, h: &Hist) {
    column::put_varint(out, h.count);
    column::put_varint(out, h.errors);
    for f in [h.sum, h.min, h.max] {
        out.extend(f.to_bits().to_le_bytes());
    }
    column::put_varint(out, h.buckets.len() as u64);
    let mut prev = 0i64;
    for (i, c) in &h.buckets {
        column::put_varint(out, column::zigzag(i64::from(*i) - prev));
        column::put_varint(out, *c);
        prev = i64::from(*i);
    }
}

fn get_hist(input: &mut &[u8]) -> Decoded<Hist> {
    let count = column::get_varint(input)?;
    let errors = column::get_varint(input)?;
    let sum = f64::from_bits(column::get_u64_le(input)?);
    let min = f64::from_bits(column::get_u64_le(input)?);
    let max = f64::from_bits(column::get_u64_le(input)?);
    let n = column::get_len(input, RECORD_MAX_BYTES)?;
    let mut buckets = Vec::with_capacity(n);
    let mut prev = 0i64;
    for _ in 0..n {
        prev = prev.wrapping_add(column::unzigzag(column::get_varint(input)?));
        let idx = i32::try_from(prev).map_err(|_| Corrupt("bucket index out of range"))?;
        buckets.push((idx, column::get_varint(input)?));
    }
    Ok(Hist {
        count,
        errors,
        sum,
        min,
        max,
        buckets,
    })
}

/// A whole record as stored.
pub fn record(seq: u64, count: u64, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 24);
    out.extend(seq.to_le_bytes());
    column::put_varint(&mut out, count);
    out.extend_from_slice(body);
    let crc = crc32fast::hash(&out);
    out.extend(crc.to_le_bytes());
    out
}

/// The sequence number a stored record claims, if its checksum holds.
pub fn record_seq(bytes: &[u8]) -> Decoded<u64> {
    if bytes.len() < 13 {
        return Err(Corrupt("record too short"));
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    if crc32fast::hash(body).to_le_bytes() != crc {
        return Err(Corrupt("record checksum mismatch"));
    }
    column::get_u64_le(&mut &body[..8])
}

/// One replayed sample.
pub struct Logged {
    pub series: SeriesId,
    pub ts_ms: i64,
    pub entry: Entry,
}

/// The samples of a record whose checksum `record_seq` has accepted.
pub fn entries(bytes: &[u8]) -> Decoded<Vec<Logged>> {
    let mut input = &bytes[8..bytes.len() - 4];
    let input = &mut input;
    let n = column::get_len(input, RECORD_MAX_BYTES)?;
    let mut out = Vec::with_capacity(n);
    let (mut series, mut ts, mut value) = (None::<SeriesId>, 0i64, 0u64);
    for _ in 0..n {
        let h = column::get_u8(input)?;
        let s = if h & SAME_SERIES != 0 {
            series.ok_or(Corrupt("first entry refers to a previous one"))?
        } else if h & NEXT_SERIES != 0 {
            series
                .ok_or(Corrupt("first entry refers to a previous one"))?
                .wrapping_add(1)
        } else {
            u32::try_from(column::get_varint(input)?).map_err(|_| Corrupt("series id"))?
        };
        if h & SAME_TS == 0 {
            ts = ts.wrapping_add(column::unzigzag(column::get_varint(input)?));
        }
        let entry = match h & 3 {
            V_HIST => Entry::Hist(get_hist(input)?),
            kind => {
                value = match kind {
                    V_F64 => column::get_u64_le(input)?,
                    V_INT => (column::unzigzag(column::get_varint(input)?) as f64).to_bits(),
                    _ => value,
                };
                Entry::Agg(Agg::single(ts, f64::from_bits(value)))
            }
        };
        series = Some(s);
        out.push(Logged {
            series: s,
            ts_ms: ts,
            entry,
        });
    }
    if !input.is_empty() {
        return Err(Corrupt("trailing bytes in record"));
    }
    Ok(out)
}

/// The ring key of the `i`-th record after a checkpoint.
pub fn slot_key(i: u64) -> [u8; 4] {
    (i as u32).to_be_bytes()
}

/// Empty keys kept after each record's slot. sled keeps at most 16 keys in
/// a leaf and rewrites the leaf whole after every 10 changes to it; with
/// records alone a leaf held about eight of them, so each record written
/// cost its own bytes again and 80 % more in rewrites. With three spacers
/// a leaf holds about two records.
pub const SPACERS: u8 = 3;

/// Spacers are written this many slots ahead of the log, in one go, so
/// that leaves take their shape before records arrive.
pub const SPACED_AHEAD: u64 = 256;

/// The spacers of slot `i`: sorted after its key, before slot `i + 1`'s.
pub fn spacer_keys(i: u64) -> impl Iterator<Item = [u8; 5]> {
    let [a, b, c, d] = slot_key(i);
    (1..=SPACERS).map(move |k| [a, b, c, d, k])
}

/// The slots below which spacers are in place, from the log's last key
/// (written in order from slot 0, so all below it have theirs).
pub fn spaced_slots(wal: &sled::Tree) -> sled::Result<u64> {
    Ok(match wal.last()? {
        Some((k, _)) if k.len() == 5 => {
            u64::from(u32::from_be_bytes([k[0], k[1], k[2], k[3]])) + u64::from(k[4] == SPACERS)
        }
        _ => 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gauge(ts: i64, v: f64) -> Entry {
        Entry::Agg(Agg::single(ts, v))
    }

    #[test]
    fn records_round_trip_and_stay_small() {
        let mut p = Pending::default();
        let mut want = Vec::new();
        for s in 0..1000u32 {
            let v = match s % 3 {
                0 => 1.0,
                1 => 123_456.0 + f64::from(s),
                _ => f64::from(s).sqrt() * 1.000_001,
            };
            p.push(s, 1_767_225_600_000, &gauge(1_767_225_600_000, v));
            want.push((s, v));
        }
        p.push(3, 1_767_225_605_000, &Entry::Hist(Hist::of(12.5, 3, 1)));
        p.push(3, 1_767_225_605_000, &gauge(1_767_225_605_000, -0.0));
        let bodies = p.take();
        assert!(p.is_empty());
        assert!(bodies.iter().all(|(_, b)| b.len() <= RECORD_MAX_BYTES));
        let total: usize = bodies.iter().map(|(_, b)| b.len()).sum();
        assert!(total < 1000 * 6, "{total} bytes for 1,000 samples");
        let mut got = Vec::new();
        for (i, (n, body)) in bodies.iter().enumerate() {
            let rec = record(10 + i as u64, *n, body);
            assert_eq!(record_seq(&rec), Ok(10 + i as u64));
            got.extend(entries(&rec).expect("decodes"));
        }
        assert_eq!(got.len(), 1002);
        for (g, (s, v)) in got.iter().zip(&want) {
            assert_eq!(g.series, *s);
            assert_eq!(g.ts_ms, 1_767_225_600_000);
            match &g.entry {
                Entry::Agg(a) => assert_eq!(a.last.to_bits(), v.to_bits()),
                Entry::Hist(_) => panic!("gauge expected"),
            }
        }
        assert_eq!(got[1000].entry, Entry::Hist(Hist::of(12.5, 3, 1)));
        match &got[1001].entry {
            Entry::Agg(a) => assert_eq!(a.last.to_bits(), (-0.0f64).to_bits()),
            Entry::Hist(_) => panic!("gauge expected"),
        }
    }

    #[test]
    fn damaged_records_are_rejected() {
        let mut p = Pending::default();
        for s in 0..50 {
            p.push(s, 1000 * i64::from(s), &gauge(0, f64::from(s) / 3.0));
        }
        let (n, body) = p.take().remove(0);
        let rec = record(7, n, &body);
        for i in 0..rec.len() {
            let mut bad = rec.clone();
            bad[i] ^= 0x10;
            assert!(record_seq(&bad).is_err(), "flip at {i}");
        }
        assert!(record_seq(&rec[..5]).is_err());
    }
}
