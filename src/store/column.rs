//! Column encodings for sealed blocks: pure functions from a slice of numbers
//! to bytes and back. Each column is encoded every way that applies and the
//! smallest wins; a one-byte tag says which. The candidates, chosen by
//! measurement (`examples/bench_codec.rs`, README "Block codec"):
//!
//! - floats: a constant; integers (then the integer encodings below); exact
//!   decimals with one to three digits (scaled to integers); Gorilla-style
//!   XOR of each value with the one before (Facebook's Gorilla paper, as in
//!   Prometheus's chunks); the `pco` crate's format (for 16 values or more);
//!   raw 8-byte values as the fallback. Every encoding
//!   is bit-exact for every `f64`: integer and decimal forms are taken only
//!   when decoding reproduces the same bits, so -0.0, subnormals, infinities
//!   and NaN payloads go through XOR or raw.
//! - integers: a constant; zig-zag deltas as (delta, run length) varint
//!   pairs, for runs, steps and counters with a steady rate; zig-zag deltas
//!   bit-packed at the width of their range (frame of reference), for noisy
//!   increments.
//!
//! Decoders never panic: truncated or inconsistent input is an error.

/// Why a column could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Corrupt(pub &'static str);

pub type Decoded<T> = Result<T, Corrupt>;

// ---- varints ---------------------------------------------------------------

pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub fn get_varint(input: &mut &[u8]) -> Decoded<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = input.split_first().ok_or(Corrupt("truncated varint"))?;
        *input = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Ok(v);
        }
    }
    Err(Corrupt("varint longer than 10 bytes"))
}

pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

pub fn unzigzag(v: u64) -> i64 {
    (v >> 1) as i64 ^ -((v & 1) as i64)
}

pub fn get_u8(input: &mut &[u8]) -> Decoded<u8> {
    let (&b, rest) = input.split_first().ok_or(Corrupt("truncated"))?;
    *input = rest;
    Ok(b)
}

pub fn get_u64_le(input: &mut &[u8]) -> Decoded<u64> {
    if input.len() < 8 {
        return Err(Corrupt("truncated 8-byte value"));
    }
    let (head, rest) = input.split_at(8);
    *input = rest;
    Ok(u64::from_le_bytes(head.try_into().expect("8 bytes")))
}

/// A count read from input, checked against what the caller can hold.
pub fn get_len(input: &mut &[u8], max: usize) -> Decoded<usize> {
    let n = get_varint(input)?;
    if n > max as u64 {
        return Err(Corrupt("length out of range"));
    }
    Ok(n as usize)
}

// ---- bit streams -----------------------------------------------------------

#[derive(Default)]
struct BitWriter {
    bytes: Vec<u8>,
    acc: u64,
    used: u32,
}

impl BitWriter {
    /// Appends the low `n` bits of `v` (n <= 64), most significant first.
    fn put(&mut self, v: u64, n: u32) {
        if n == 0 {
            return;
        }
        if n > 32 {
            self.put(v >> 32, n - 32);
            self.put(v & 0xffff_ffff, 32);
            return;
        }
        let v = v & ((1u64 << n) - 1);
        self.acc = (self.acc << n) | v;
        self.used += n;
        while self.used >= 8 {
            self.used -= 8;
            self.bytes.push((self.acc >> self.used) as u8);
        }
        self.acc &= (1u64 << self.used) - 1;
    }

    fn finish(mut self) -> Vec<u8> {
        if self.used > 0 {
            self.bytes.push((self.acc << (8 - self.used)) as u8);
        }
        self.bytes
    }
}

struct BitReader<'a> {
    bytes: &'a [u8],
    bit: usize,
}

impl BitReader<'_> {
    fn get(&mut self, n: u32) -> Decoded<u64> {
        if n > 32 {
            let hi = self.get(n - 32)?;
            return Ok((hi << 32) | self.get(32)?);
        }
        let mut v = 0u64;
        for _ in 0..n {
            let byte = *self
                .bytes
                .get(self.bit / 8)
                .ok_or(Corrupt("truncated bit stream"))?;
            v = (v << 1) | u64::from((byte >> (7 - self.bit % 8)) & 1);
            self.bit += 1;
        }
        Ok(v)
    }

    fn bytes_used(&self) -> usize {
        self.bit.div_ceil(8)
    }
}

// ---- integer columns -------------------------------------------------------

const I_CONST: u8 = 0;
const I_DELTA_RUNS: u8 = 1;
const I_DELTA_PACKED: u8 = 2;

/// Encodes signed integers, choosing the smallest form.
pub fn put_i64s(out: &mut Vec<u8>, values: &[i64]) {
    let Some(&first) = values.first() else {
        return;
    };
    if values.iter().all(|v| *v == first) {
        out.push(I_CONST);
        put_varint(out, zigzag(first));
        return;
    }
    let deltas: Vec<i64> = values.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect();
    let mut runs = vec![I_DELTA_RUNS];
    put_varint(&mut runs, zigzag(first));
    let mut i = 0;
    while i < deltas.len() {
        let d = deltas[i];
        let n = deltas[i..].iter().take_while(|x| **x == d).count();
        put_varint(&mut runs, zigzag(d));
        put_varint(&mut runs, n as u64 - 1);
        i += n;
    }
    let min = *deltas.iter().min().expect("two or more values");
    let max = *deltas.iter().max().expect("two or more values");
    let width = 64 - (max.wrapping_sub(min) as u64).leading_zeros();
    let packed_len = 2 + 10 + 10 + (deltas.len() * width as usize).div_ceil(8);
    if packed_len < runs.len() {
        out.push(I_DELTA_PACKED);
        put_varint(out, zigzag(first));
        put_varint(out, zigzag(min));
        out.push(width as u8);
        let mut bits = BitWriter::default();
        for d in &deltas {
            bits.put(d.wrapping_sub(min) as u64, width);
        }
        out.extend(bits.finish());
    } else {
        out.extend(runs);
    }
}

pub fn get_i64s(input: &mut &[u8], n: usize) -> Decoded<Vec<i64>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let tag = get_u8(input)?;
    let first = unzigzag(get_varint(input)?);
    let mut out = Vec::with_capacity(n);
    out.push(first);
    match tag {
        I_CONST => out.resize(n, first),
        I_DELTA_RUNS => {
            let mut v = first;
            while out.len() < n {
                let d = unzigzag(get_varint(input)?);
                let run = get_varint(input)?.saturating_add(1);
                if run > (n - out.len()) as u64 {
                    return Err(Corrupt("delta run past the column's end"));
                }
                for _ in 0..run {
                    v = v.wrapping_add(d);
                    out.push(v);
                }
            }
        }
        I_DELTA_PACKED => {
            let min = unzigzag(get_varint(input)?);
            let width = u32::from(get_u8(input)?);
            if width > 64 {
                return Err(Corrupt("bit width over 64"));
            }
            let mut bits = BitReader {
                bytes: input,
                bit: 0,
            };
            let mut v = first;
            for _ in 1..n {
                v = v.wrapping_add((bits.get(width)? as i64).wrapping_add(min));
                out.push(v);
            }
            let used = bits.bytes_used();
            *input = &input[used..];
        }
        _ => return Err(Corrupt("unknown integer column tag")),
    }
    Ok(out)
}

pub fn put_u64s(out: &mut Vec<u8>, values: &[u64]) {
    let signed: Vec<i64> = values.iter().map(|v| *v as i64).collect();
    put_i64s(out, &signed);
}

pub fn get_u64s(input: &mut &[u8], n: usize) -> Decoded<Vec<u64>> {
    Ok(get_i64s(input, n)?.into_iter().map(|v| v as u64).collect())
}

// ---- float columns ---------------------------------------------------------

const F_CONST: u8 = 0;
const F_INT: u8 = 1;
const F_XOR: u8 = 2;
const F_RAW: u8 = 3;
/// The `pco` crate's standalone format, length-prefixed: it wins on floats
/// converted from `f32` (sysinfo's CPU and memory percentages) and a little
/// on full-precision noise.
const F_PCO: u8 = 7;
/// `F_DECIMAL + k`: values are exact multiples of 10^-k, k in 1..=3.
const F_DECIMAL: u8 = 4;
const MAX_DECIMALS: u8 = 3;

/// Below this many values pco's headers cost more than it saves.
const PCO_MIN_VALUES: usize = 16;

/// Integers that survive the round trip through `f64` exactly.
const MAX_EXACT_INT: f64 = 9_007_199_254_740_992.0; // 2^53

/// `v` as an integer scaled by 10^k, if scaling back gives the same bits.
fn scaled(v: f64, k: u8) -> Option<i64> {
    let p = 10f64.powi(i32::from(k));
    let s = (v * p).round();
    if !s.is_finite() || s.abs() > MAX_EXACT_INT {
        return None;
    }
    let i = s as i64;
    // -0.0 scales to the integer 0, which decodes as +0.0: refused here.
    (unscale(i, k).to_bits() == v.to_bits()).then_some(i)
}

fn unscale(i: i64, k: u8) -> f64 {
    if k == 0 {
        i as f64
    } else {
        i as f64 / 10f64.powi(i32::from(k))
    }
}

/// Encodes floats bit-exactly, choosing the smallest form.
pub fn put_f64s(out: &mut Vec<u8>, values: &[f64]) {
    let Some(first) = values.first() else {
        return;
    };
    if values.iter().all(|v| v.to_bits() == first.to_bits()) {
        out.push(F_CONST);
        out.extend(first.to_bits().to_le_bytes());
        return;
    }
    let mut best = xor_encoded(values);
    for k in 0..=MAX_DECIMALS {
        let ints: Option<Vec<i64>> = values.iter().map(|v| scaled(*v, k)).collect();
        if let Some(ints) = ints {
            let mut e = vec![if k == 0 { F_INT } else { F_DECIMAL + k - 1 }];
            put_i64s(&mut e, &ints);
            if e.len() < best.len() {
                best = e;
            }
            // Fewer decimals always encode at least as small.
            break;
        }
    }
    // pco is slow to encode: tried only where the others left a byte or
    // more per value (noisy floats), which is also where it can win.
    if values.len() >= PCO_MIN_VALUES
        && best.len() >= values.len()
        && let Ok(p) = pco::standalone::simple_compress(values, &pco::ChunkConfig::default())
        && p.len() + 3 < best.len()
    {
        best = vec![F_PCO];
        put_varint(&mut best, p.len() as u64);
        best.extend(p);
    }
    if best.len() > 1 + 8 * values.len() {
        best = vec![F_RAW];
        for v in values {
            best.extend(v.to_bits().to_le_bytes());
        }
    }
    out.extend(best);
}

/// Gorilla XOR: the first value whole, then per value a `0` bit when equal to
/// the previous one, `10` + the meaningful bits when they fit the previous
/// window, or `11` + 6 bits of leading zeros + 6 bits of length + the bits.
pub fn xor_encoded(values: &[f64]) -> Vec<u8> {
    let mut bits = BitWriter::default();
    let mut prev = values[0].to_bits();
    bits.put(prev, 64);
    let (mut lead, mut trail) = (u32::MAX, 0u32);
    for v in &values[1..] {
        let cur = v.to_bits();
        let x = cur ^ prev;
        prev = cur;
        if x == 0 {
            bits.put(0, 1);
            continue;
        }
        let (l, t) = (x.leading_zeros().min(63), x.trailing_zeros());
        if lead != u32::MAX && l >= lead && t >= trail {
            bits.put(0b10, 2);
            bits.put(x >> trail, 64 - lead - trail);
        } else {
            lead = l;
            trail = t;
            let len = 64 - l - t;
            bits.put(0b11, 2);
            bits.put(u64::from(l), 6);
            bits.put(u64::from(len - 1), 6);
            bits.put(x >> t, len);
        }
    }
    let mut out = vec![F_XOR];
    out.extend(bits.finish());
    out
}

pub fn get_f64s(input: &mut &[u8], n: usize) -> Decoded<Vec<f64>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let tag = get_u8(input)?;
    match tag {
        F_CONST => Ok(vec![f64::from_bits(get_u64_le(input)?); n]),
        F_RAW => (0..n)
            .map(|_| get_u64_le(input).map(f64::from_bits))
            .collect(),
        F_INT => Ok(get_i64s(input, n)?
            .into_iter()
            .map(|i| unscale(i, 0))
            .collect()),
        t if (F_DECIMAL..F_DECIMAL + MAX_DECIMALS).contains(&t) => {
            let k = t - F_DECIMAL + 1;
            Ok(get_i64s(input, n)?
                .into_iter()
                .map(|i| unscale(i, k))
                .collect())
        }
        F_PCO => {
            let len = get_varint(input)?;
            if len > input.len() as u64 {
                return Err(Corrupt("truncated pco column"));
            }
            let (bytes, rest) = input.split_at(len as usize);
            let values: Vec<f64> = pco::standalone::simple_decompress(bytes)
                .map_err(|_| Corrupt("undecodable pco column"))?;
            if values.len() != n {
                return Err(Corrupt("pco column of another length"));
            }
            *input = rest;
            Ok(values)
        }
        F_XOR => {
            let mut bits = BitReader {
                bytes: input,
                bit: 0,
            };
            let mut out = Vec::with_capacity(n);
            let mut prev = bits.get(64)?;
            out.push(f64::from_bits(prev));
            let (mut lead, mut trail) = (0u32, 0u32);
            while out.len() < n {
                if bits.get(1)? == 1 {
                    if bits.get(1)? == 1 {
                        lead = bits.get(6)? as u32;
                        let len = bits.get(6)? as u32 + 1;
                        if lead + len > 64 {
                            return Err(Corrupt("XOR window past 64 bits"));
                        }
                        trail = 64 - lead - len;
                    }
                    prev ^= bits.get(64 - lead - trail)? << trail;
                }
                out.push(f64::from_bits(prev));
            }
            let used = bits.bytes_used();
            *input = &input[used..];
            Ok(out)
        }
        _ => Err(Corrupt("unknown float column tag")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip_f(values: &[f64]) -> usize {
        let mut out = Vec::new();
        put_f64s(&mut out, values);
        let len = out.len();
        out.push(0xAB); // a following column must not be eaten
        let mut input = out.as_slice();
        let back = get_f64s(&mut input, values.len()).expect("decodes");
        assert_eq!(input, &[0xAB], "consumed exactly its bytes");
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&back), bits(values));
        len
    }

    fn round_trip_i(values: &[i64]) -> usize {
        let mut out = Vec::new();
        put_i64s(&mut out, values);
        let len = out.len();
        out.push(0xCD);
        let mut input = out.as_slice();
        assert_eq!(get_i64s(&mut input, values.len()).expect("decodes"), values);
        assert_eq!(input, &[0xCD]);
        len
    }

    #[test]
    fn special_values_are_bit_exact() {
        let specials = [
            0.0,
            -0.0,
            f64::MIN_POSITIVE / 4.0,
            -f64::MIN_POSITIVE / 3.0,
            f64::MAX,
            f64::MIN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e-308,
            3.0,
            0.1,
            2.5,
        ];
        round_trip_f(&specials);
        for v in specials {
            round_trip_f(&[v, v, v]);
            round_trip_f(&[1.0, v]);
        }
        round_trip_f(&[-0.0, 0.0, -0.0]);
    }

    #[test]
    fn runs_steps_and_decimals_are_small() {
        let ones = vec![1.0; 120];
        assert_eq!(round_trip_f(&ones), 9);
        let health: Vec<f64> = (0..120).map(|i| f64::from(i / 40 % 2)).collect();
        assert!(round_trip_f(&health) <= 14, "{}", round_trip_f(&health));
        let counter: Vec<f64> = (0..120)
            .map(|i| 1_000_000.0 + 17.0 * f64::from(i))
            .collect();
        assert!(round_trip_f(&counter) <= 10);
        let pct: Vec<f64> = (0..120).map(|i| f64::from(i % 7) * 0.25 + 10.5).collect();
        assert!(round_trip_f(&pct) < 100, "{}", round_trip_f(&pct));
        assert_eq!(round_trip_i(&[5; 60]), 2);
        let noisy: Vec<i64> = (0..60).map(|i| 1000 + (i * 7919) % 13).collect();
        assert!(round_trip_i(&noisy) < 40);
    }

    #[test]
    fn floats_from_f32_take_pco_and_round_trip() {
        let mut x = 7u64;
        let values: Vec<f64> = (0..120)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                f64::from(((x >> 40) as f32) / 1e5)
            })
            .collect();
        let mut out = Vec::new();
        put_f64s(&mut out, &values);
        assert_eq!(out[0], F_PCO, "pco wins on f32-derived values");
        assert!(round_trip_f(&values) < 120 * 4);
        for cut in 0..out.len() {
            let _ = get_f64s(&mut &out[..cut], 120);
        }
    }

    #[test]
    fn corrupt_input_is_an_error_not_a_panic() {
        let mut out = Vec::new();
        put_f64s(&mut out, &[1.5, 2.25, 3.125, 1e10]);
        for cut in 0..out.len() {
            let _ = get_f64s(&mut &out[..cut], 4);
        }
        for tag in 0..=255u8 {
            let mut bad = out.clone();
            bad[0] = tag;
            let _ = get_f64s(&mut bad.as_slice(), 4);
            let _ = get_i64s(&mut bad.as_slice(), 4);
        }
        assert!(get_varint(&mut [0xffu8; 11].as_slice()).is_err());
    }

    fn any_f64() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<f64>().prop_filter("finite", |v| v.is_finite()),
            (-1000i64..1000).prop_map(|i| i as f64),
            (-100_000i64..100_000).prop_map(|i| i as f64 / 100.0),
            Just(-0.0),
            Just(0.0),
            (1u64..1 << 52).prop_map(f64::from_bits),
            (-1023i32..1023).prop_map(|e| 2f64.powi(e)),
        ]
    }

    proptest! {
        #[test]
        fn floats_round_trip(values in prop::collection::vec(any_f64(), 1..400)) {
            round_trip_f(&values);
        }

        #[test]
        fn runs_of_equal_floats_round_trip(
            runs in prop::collection::vec((any_f64(), 1usize..50), 1..20)
        ) {
            let values: Vec<f64> = runs.iter().flat_map(|(v, n)| std::iter::repeat_n(*v, *n)).collect();
            round_trip_f(&values);
        }

        #[test]
        fn random_walks_round_trip(start in -1e6f64..1e6, steps in prop::collection::vec(-10f64..10.0, 1..400)) {
            let values: Vec<f64> = steps.iter().scan(start, |x, s| { *x += s; Some(*x) }).collect();
            round_trip_f(&values);
        }

        #[test]
        fn integers_round_trip(values in prop::collection::vec(any::<i64>(), 1..300)) {
            round_trip_i(&values);
        }

        #[test]
        fn small_integer_steps_round_trip(start in any::<i64>(), steps in prop::collection::vec(-3i64..4, 1..300)) {
            let values: Vec<i64> = steps.iter().scan(start, |x, s| { *x = x.wrapping_add(*s); Some(*x) }).collect();
            round_trip_i(&values);
        }
    }
}
