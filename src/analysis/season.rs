//! A series' typical value at each time of day: 144 bins of 10 minutes,
//! each moving toward its values by `DAILY_RATE` of the way a day (the
//! rate per value follows the time between values). The anomaly detector
//! judges what is left after it; the forecast adds the change it expects
//! between now and the target's time of day.

/// Bins of the day.
pub const BINS: usize = 144;
const BIN_MS: i64 = 86_400_000 / BINS as i64;
const DAY_MS: i64 = 86_400_000;
/// How far a bin moves toward its values in a day (0.3 per value at
/// 5-minute rows, two to a bin).
pub const DAILY_RATE: f64 = 0.51;

#[derive(Clone, Debug)]
pub struct DayProfile {
    profile: Box<[f32; BINS]>,
    /// Bins seen twice; when all are, the day is known.
    known: u16,
    visits: Box<[u8; BINS]>,
    last_ms: Option<i64>,
    /// Per value.
    rate: f64,
}

impl Default for DayProfile {
    fn default() -> Self {
        DayProfile::new()
    }
}

/// The bin of a time.
pub fn bin_of(ts_ms: i64) -> usize {
    (ts_ms.rem_euclid(DAY_MS) / BIN_MS) as usize
}

impl DayProfile {
    pub fn new() -> DayProfile {
        DayProfile {
            profile: Box::new([f32::NAN; BINS]),
            known: 0,
            visits: Box::new([0; BINS]),
            last_ms: None,
            rate: 0.3,
        }
    }

    /// Bytes it holds, on the heap included.
    pub const BYTES: usize =
        std::mem::size_of::<DayProfile>() + BINS * (std::mem::size_of::<f32>() + 1);

    /// Whether every bin has been seen twice (a day of data).
    pub fn known(&self) -> bool {
        self.known as usize == BINS
    }

    /// The typical value at `ts_ms`'s time of day (`None`: not seen yet).
    pub fn at(&self, ts_ms: i64) -> Option<f64> {
        let p = self.profile[bin_of(ts_ms)];
        (!p.is_nan()).then_some(f64::from(p))
    }

    /// The typical value at the instant `ts_ms`: between the two nearest
    /// bins' middles, in proportion (`None` until both are seen).
    pub fn interpolated(&self, ts_ms: i64) -> Option<f64> {
        let into = ts_ms.rem_euclid(DAY_MS) as f64 / BIN_MS as f64 - 0.5;
        let lo = into.floor();
        let w = into - lo;
        let bin = |b: f64| (b as i64).rem_euclid(BINS as i64) as usize;
        let (a, b) = (self.profile[bin(lo)], self.profile[bin(lo + 1.0)]);
        (!a.is_nan() && !b.is_nan()).then(|| f64::from(a) * (1.0 - w) + f64::from(b) * w)
    }

    /// The rate per value that moves `daily` of the way in a day at the
    /// spacing of values seen so far (the profile's own is `DAILY_RATE`).
    pub fn rate_for(&self, daily: f64) -> f64 {
        1.0 - (1.0 - self.rate).powf((1.0 - daily).ln() / (1.0 - DAILY_RATE).ln())
    }

    /// Learns `x` at `ts_ms`, a bin moving at most `clip` toward it.
    /// Returns what the bin held before (`None` at its first value).
    pub fn learn(&mut self, ts_ms: i64, x: f64, clip: Option<f64>) -> Option<f64> {
        if let Some(last) = self.last_ms
            && ts_ms > last
        {
            let per_bin = (BIN_MS as f64 / (ts_ms - last) as f64).max(1.0);
            let rate = 1.0 - (1.0 - DAILY_RATE).powf(1.0 / per_bin);
            self.rate += 0.1 * (rate - self.rate);
        }
        self.last_ms = Some(ts_ms);
        let bin = bin_of(ts_ms);
        let v = self.visits[bin];
        if v < 2 {
            self.visits[bin] += 1;
            if v == 1 {
                self.known += 1;
            }
        }
        let p = self.profile[bin];
        if p.is_nan() {
            self.profile[bin] = x as f32;
            return None;
        }
        let r = x - f64::from(p);
        let step = clip.map_or(r, |c| r.clamp(-c, c));
        self.profile[bin] = p + (self.rate * step) as f32;
        Some(f64::from(p))
    }
}

// Small enough for the detector's 2 KB a series with room to spare.
const _: () = assert!(DayProfile::BYTES < 800);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_profile_learns_each_time_of_day_and_knows_the_day_after_one() {
        let mut d = DayProfile::new();
        let t0 = 1_767_225_600_000;
        let at = |i: i64| t0 + i * 300_000;
        for i in 0..288 * 3 {
            let hour = (i % 288) / 12;
            d.learn(at(i), if hour < 12 { 10.0 } else { 30.0 }, None);
            assert_eq!(d.known(), i >= 287, "row {i}");
        }
        assert_eq!(d.at(at(6 * 12)), Some(10.0));
        // Between the middles of the bins before and after noon.
        let noon = at(12 * 12);
        assert_eq!(d.interpolated(noon), Some(20.0));
        assert_eq!(d.interpolated(noon + 300_000), Some(30.0));
        assert_eq!(d.interpolated(noon - 300_000), Some(10.0));
        assert_eq!(d.at(at(18 * 12)), Some(30.0));
        // A clipped bin moves only that far.
        let before = d.at(at(0)).unwrap();
        d.learn(at(288 * 3), 1000.0, Some(2.0));
        assert!((d.at(at(0)).unwrap() - before - 2.0 * 0.3).abs() < 0.05);
    }
}
