//! A streaming anomaly detector: each value is judged from the values
//! before it only, in constant memory (about 1.7 KB a series).
//!
//! Two robust trackers follow the series at two speeds (an exponentially
//! weighted level that moves at most 3 deviations per step, and the mean
//! absolute deviation around it; smoothing rates 1/50 and 1/500 rows). Each
//! turns a value into a raw score: its distance from the level in
//! deviations (at least 1 % of the range seen, capped at 50). Raw scores
//! are not compared with a fixed cut: like Numenta's "anomaly likelihood",
//! the mean of the last 3 is compared with the tracker's own long-run mean
//! and spread of raw scores (rate 1/2000), and the score is the normal
//! distribution's probability below that z, so a noisy series needs a
//! bigger jump than a quiet one. A value is an anomaly when either tracker's
//! score reaches 0.9999 after 300 rows of warm-up; after one, none is
//! reported for the next 288 rows (a day at 5 minutes), since one event
//! raises the score for a while.
//!
//! Daily seasonality (`step_at`, which knows the value's time): a profile
//! of the series' typical value in each 10-minute bin of the day (moving
//! 51 % of the way to a bin's values in a day) and a third tracker on what
//! is left after it. Once every bin has been seen (a day of data), its
//! score counts too, but only while the residuals' deviation is at most
//! half the slow tracker's, that is while the day explains the series. A
//! night-time value at the day's level is then an anomaly, though it is
//! within the range the series spans every day. Each bin also keeps its
//! own mean absolute residual (moving 5 % of the way a day): a residual is
//! measured in that where it is wider than the tracker's deviation, so the
//! steep edges of a day's shape, which leave large residuals every day,
//! raise nothing. The third tracker starts a day late; its raw scores'
//! long-run mean and variance are corrected for their start at 0.
//!
//! The constants are the one default sensitivity; `examples/bench_nab.rs`
//! scores them on the NAB corpora (the README says how they were chosen).

use super::season::{BINS, DayProfile, bin_of};

/// Rows before any anomaly is reported.
pub const WARM_UP: u64 = 300;
/// The score that makes an anomaly.
pub const THRESHOLD: f64 = 0.9999;
/// Rows after an anomaly in which no other is reported.
pub const QUIET: u64 = 288;
/// Smoothing rates of the two trackers, per row.
const RATES: [f64; 2] = [1.0 / 50.0, 1.0 / 500.0];
/// Smoothing rate of the raw scores' long-run mean and variance.
const SCORE_RATE: f64 = 1.0 / 2000.0;
/// Raw scores averaged before they are judged.
const SHORT: usize = 3;
/// A raw score above this is this.
const CAP: f64 = 50.0;
/// Rows a tracker needs before its raw scores mean anything.
const FIRST: u64 = 10;
/// Mean absolute deviation to standard deviation for normal data (sqrt(pi/2)).
const MAD_TO_SD: f64 = 1.2533;

/// One value judged.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Step {
    /// 0 to 1: how unlikely the recent values are for this series.
    pub score: f64,
    pub is_anomaly: bool,
    /// The range the value was expected in, judged before it: the faster
    /// tracker's level plus or minus 3 deviations (`None` while it settles).
    pub expected: Option<(f64, f64)>,
}

/// P(Z > z) for a standard normal Z.
fn upper_tail(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// The complementary error function (Numerical Recipes' `erfcc`, relative
/// error below 1.2e-7).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

#[derive(Clone, Debug)]
struct Tracker {
    rate: f64,
    n: u64,
    level: f64,
    deviation: f64,
    low: f64,
    high: f64,
    /// Long-run mean and variance of the raw scores.
    mean: f64,
    /// Whether `mean` and `variance` are read corrected for their start at
    /// 0 (divided by `1 - (1 - rate)^n`), as the seasonal tracker's are.
    unbiased: bool,
    variance: f64,
    recent: [f64; SHORT],
}

impl Tracker {
    fn new(rate: f64) -> Tracker {
        Tracker {
            rate,
            n: 0,
            level: f64::NAN,
            deviation: 0.0,
            low: f64::INFINITY,
            high: f64::NEG_INFINITY,
            mean: 0.0,
            unbiased: false,
            variance: 0.0,
            recent: [0.0; SHORT],
        }
    }

    /// A tracker whose raw scores' mean and variance are corrected for
    /// their start at 0.
    fn unbiased(rate: f64) -> Tracker {
        Tracker {
            unbiased: true,
            ..Tracker::new(rate)
        }
    }

    /// The score of `x` (`None` during warm-up) and the range it was
    /// expected in; then learns from it.
    fn step(&mut self, x: f64) -> (Option<f64>, Option<(f64, f64)>) {
        self.step_spread(x, 0.0)
    }

    /// As `step`, the raw score measured in `spread` (a mean absolute
    /// deviation known for this value) where that is wider than the
    /// tracker's own.
    fn step_spread(&mut self, x: f64, spread: f64) -> (Option<f64>, Option<(f64, f64)>) {
        self.n += 1;
        if self.level.is_nan() {
            self.level = x;
        }
        // The range expected, from what was known before `x`.
        let before = (MAD_TO_SD * self.deviation)
            .max(0.01 * (self.high - self.low))
            .max(1e-9);
        self.low = self.low.min(x);
        self.high = self.high.max(x);
        let scale = (MAD_TO_SD * self.deviation)
            .max(0.01 * (self.high - self.low))
            .max(1e-9);
        let settled = self.n > FIRST;
        let error = x - self.level;
        let raw = if settled {
            (error.abs() / scale.max(MAD_TO_SD * spread)).min(CAP)
        } else {
            0.0
        };
        let clip = if settled { 3.0 * scale } else { error.abs() };
        let expected = settled.then_some((self.level - 3.0 * before, self.level + 3.0 * before));
        self.level += self.rate * error.clamp(-clip, clip);
        self.deviation += self.rate * (error.abs().min(clip) - self.deviation);
        self.recent[(self.n as usize) % SHORT] = raw;
        let score = (self.n > WARM_UP).then(|| {
            let short = self.recent.iter().sum::<f64>() / SHORT as f64;
            let seen = if self.unbiased {
                1.0 - (1.0 - SCORE_RATE).powf(self.n as f64)
            } else {
                1.0
            };
            let sd = (self.variance / seen).max(1e-12).sqrt();
            1.0 - upper_tail((short - self.mean / seen) / sd)
        });
        let d = raw - self.mean;
        self.mean += SCORE_RATE * d;
        self.variance = (1.0 - SCORE_RATE) * (self.variance + SCORE_RATE * d * d);
        (score, expected)
    }
}

/// The seasonal tracker counts when its residuals' deviation is at most
/// this share of the plain slow tracker's: the day explains the series.
const SEASONAL_SHARE: f64 = 0.5;

/// How far a bin's spread moves toward its residuals in a day (0.025 per
/// value at 5-minute rows).
const SPREAD_DAILY: f64 = 0.05;

/// The series' typical value at each time of day, how far values stray
/// from it at each time of day, and a tracker of what is left after it.
#[derive(Clone, Debug)]
struct Season {
    profile: DayProfile,
    /// Each bin's mean absolute residual: a time of day that is always
    /// noisy (a steep edge of the day's shape, a busy hour) needs a bigger
    /// residual to be an anomaly.
    spread: Box<[f32; BINS]>,
    tracker: Tracker,
}

impl Season {
    fn new() -> Season {
        Season {
            profile: DayProfile::new(),
            spread: Box::new([f32::NAN; BINS]),
            tracker: Tracker::unbiased(RATES[0]),
        }
    }

    /// The residual tracker's score of `x` at `ts_ms`, once the day is
    /// known; then learns from it. Like the trackers' levels, a bin moves
    /// at most 3 deviations a value, so that an anomaly does not become
    /// the next day's normal. The residual is measured in its time of
    /// day's own spread where that is wider than the tracker's deviation
    /// (a quiet time of day is judged as the rest).
    fn step(&mut self, ts_ms: i64, x: f64) -> Option<f64> {
        let t = &self.tracker;
        let clip = (t.n > FIRST).then_some(3.0 * MAD_TO_SD * t.deviation);
        let typical = self.profile.learn(ts_ms, x, clip)?;
        let residual = x - typical;
        let bin = bin_of(ts_ms);
        let spread = self.spread[bin];
        self.spread[bin] = if spread.is_nan() {
            residual.abs() as f32
        } else {
            let seen = clip.map_or(residual.abs(), |c| residual.abs().min(c));
            let rate = self.profile.rate_for(SPREAD_DAILY);
            spread + (rate * (seen - f64::from(spread))) as f32
        };
        if !self.profile.known() {
            return None;
        }
        let spread = if spread.is_nan() {
            0.0
        } else {
            f64::from(spread)
        };
        self.tracker.step_spread(residual, spread).0
    }
}

/// The detector of one series (see the module's doc).
#[derive(Clone, Debug)]
pub struct Detector {
    trackers: [Tracker; 2],
    season: Option<Season>,
    /// Rows since the last anomaly (`None`: none yet).
    since: Option<u64>,
}

impl Default for Detector {
    fn default() -> Self {
        Detector::new()
    }
}

impl Detector {
    pub fn new() -> Detector {
        Detector {
            trackers: RATES.map(Tracker::new),
            season: Some(Season::new()),
            since: None,
        }
    }

    /// Bytes the detector holds (its own and its day profile's).
    pub fn bytes(&self) -> usize {
        std::mem::size_of::<Detector>()
            + self.season.as_ref().map_or(0, |_| {
                DayProfile::BYTES - std::mem::size_of::<DayProfile>()
                    + BINS * std::mem::size_of::<f32>()
            })
    }

    /// As `step`, knowing the value's time: a series whose day explains it
    /// is also judged against its typical value at that time of day.
    pub fn step_at(&mut self, ts_ms: i64, value: f64) -> Step {
        let seasonal = match &mut self.season {
            Some(s) if value.is_finite() => s
                .step(ts_ms, value)
                .filter(|_| s.tracker.deviation <= SEASONAL_SHARE * self.trackers[1].deviation),
            _ => None,
        };
        let mut step = self.step_inner(value, seasonal);
        if step.is_anomaly {
            step.score = step.score.max(seasonal.unwrap_or(0.0));
        }
        step
    }

    /// Judges the next value. A value that is not finite is not learnt
    /// from and scores 0.
    pub fn step(&mut self, value: f64) -> Step {
        self.step_inner(value, None)
    }

    fn step_inner(&mut self, value: f64, seasonal: Option<f64>) -> Step {
        if !value.is_finite() {
            return Step {
                score: 0.0,
                is_anomaly: false,
                expected: None,
            };
        }
        let mut score = 0.0f64;
        let mut over = false;
        let mut expected = None;
        for (i, t) in self.trackers.iter_mut().enumerate() {
            let (s, range) = t.step(value);
            if i == 0 {
                expected = range;
            }
            if let Some(s) = s {
                score = score.max(s);
                over |= s >= THRESHOLD;
            }
        }
        if let Some(s) = seasonal {
            score = score.max(s);
            over |= s >= THRESHOLD;
        }
        if let Some(s) = &mut self.since {
            *s += 1;
        }
        let quiet = self.since.is_some_and(|s| s <= QUIET);
        let is_anomaly = over && !quiet;
        if is_anomaly {
            self.since = Some(0);
        }
        Step {
            score,
            is_anomaly,
            expected,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::analysis::noise;

    fn anomalies(values: impl Iterator<Item = f64>) -> Vec<usize> {
        let mut d = Detector::new();
        values
            .enumerate()
            .filter(|(_, v)| d.step(*v).is_anomaly)
            .map(|(i, _)| i)
            .collect()
    }

    #[test]
    fn erfc_matches_known_values() {
        for (x, want) in [
            (0.0, 1.0),
            (0.5, 0.479_500_122),
            (1.0, 0.157_299_207),
            (2.0, 0.004_677_735),
            (-1.0, 1.842_700_793),
        ] {
            assert!((erfc(x) - want).abs() < 1e-6, "erfc({x}) = {}", erfc(x));
        }
    }

    #[test]
    fn a_clean_daily_cycle_raises_nothing() {
        let day = 288.0;
        let found = anomalies(
            (0..288 * 14)
                .map(|i| 50.0 + 20.0 * (i as f64 * std::f64::consts::TAU / day).sin() + noise(i)),
        );
        assert!(found.is_empty(), "{found:?}");
    }

    fn daily(i: u64) -> (i64, f64) {
        // 5-minute rows, a day of 288, a swing of +-20 and noise of +-1.
        let ts = 1_767_225_600_000 + i as i64 * 300_000;
        (
            ts,
            50.0 + 20.0 * (i as f64 * std::f64::consts::TAU / 288.0).sin() + noise(i),
        )
    }

    #[test]
    fn with_time_a_clean_daily_cycle_raises_nothing_and_the_wrong_time_of_day_does() {
        let mut d = Detector::new();
        let found: Vec<u64> = (0..288 * 14)
            .filter(|i| {
                let (t, v) = daily(*i);
                d.step_at(t, v).is_anomaly
            })
            .collect();
        assert!(found.is_empty(), "{found:?}");
        // Day 10, the trough (row 216 of the day): two hours at the peak's
        // level instead. Within the daily range, so the plain trackers let
        // it pass; against its time of day it is an anomaly.
        let at = |i: u64| {
            let (t, v) = daily(i);
            let night = i / 288 == 10 && (200..224).contains(&(i % 288));
            (t, if night { 70.0 + noise(i) } else { v })
        };
        let (mut timed, mut plain) = (Detector::new(), Detector::new());
        let (mut by_time, mut by_value) = (Vec::new(), Vec::new());
        for i in 0..288 * 12 {
            let (t, v) = at(i);
            if timed.step_at(t, v).is_anomaly {
                by_time.push(i);
            }
            if plain.step(v).is_anomaly {
                by_value.push(i);
            }
        }
        assert_eq!(by_time.len(), 1, "{by_time:?}");
        assert!(
            (288 * 10 + 200..288 * 10 + 224).contains(&by_time[0]),
            "{by_time:?}"
        );
        assert!(by_value.is_empty(), "{by_value:?}");
        assert!(timed.bytes() < 1_700 && timed.bytes() > plain.bytes() / 2);
    }

    #[test]
    fn a_day_with_steep_edges_raises_nothing() {
        // 5-minute rows: 20 at night, 80 by day, each change within 15
        // minutes (inside one 10-minute bin and the next), a little noise.
        // The bins on an edge hold values far apart every day; their own
        // spread keeps them from being judged by the quiet hours' one.
        let mut d = Detector::new();
        let found: Vec<u64> = (0..288 * 14)
            .filter(|i| {
                let of_day = (i % 288) as f64;
                let edge = |at: f64| ((of_day - at) / 3.0).clamp(0.0, 1.0);
                let v = 20.0 + 60.0 * (edge(96.0) - edge(216.0)) + 0.1 * noise(*i);
                d.step_at(1_767_225_600_000 + *i as i64 * 300_000, v)
                    .is_anomaly
            })
            .collect();
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn a_spike_is_found_at_once() {
        let found = anomalies((0..2000u64).map(|i| {
            let v = 10.0 + noise(i);
            if i == 1500 { v + 30.0 } else { v }
        }));
        assert_eq!(found, [1500]);
    }

    #[test]
    fn a_step_is_found_within_a_few_rows() {
        let found =
            anomalies((0..2000u64).map(|i| 10.0 + noise(i) + if i >= 1200 { 8.0 } else { 0.0 }));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!((1200..1205).contains(&found[0]), "{found:?}");
    }

    #[test]
    fn a_slow_drift_is_followed_not_flagged() {
        // 10 units over 3,000 rows, a tenth of the noise per row.
        let found = anomalies((0..4000u64).map(|i| {
            10.0 + noise(i)
                + if i > 1000 {
                    (i - 1000) as f64 / 300.0
                } else {
                    0.0
                }
        }));
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn nothing_is_reported_during_warm_up_or_for_bad_values() {
        let mut d = Detector::new();
        for i in 0..WARM_UP {
            let s = d.step(if i == 100 { 1e6 } else { 1.0 });
            assert!(!s.is_anomaly);
            assert_eq!(s.score, 0.0);
        }
        assert_eq!(
            d.step(f64::NAN),
            Step {
                score: 0.0,
                is_anomaly: false,
                expected: None,
            }
        );
    }
}
