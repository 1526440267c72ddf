//! A streaming forecast `h` rows ahead with an interval, from the rows up
//! to now only.
//!
//! The point forecast is the median of the last 3 values: on NAB's files it
//! beat the last value (the naive forecast) slightly and a straight line
//! through the last 12 rows (`predict_linear`) by far, where exponential
//! smoothing, damped trends and additive daily Holt-Winters did not (the
//! README's table). With the values' times (`step_at`) and a day of them,
//! it adds the change the series' day profile (`season.rs`) expects
//! between now and the target's time of day: a third less error than the
//! naive forecast on NAB's files. The 95 % interval is the forecast plus or minus the
//! 95th percentile of the absolute errors of this series' own past
//! forecasts (the last `ERRORS` whose targets have arrived), so it is as
//! wide as this series has needed; none is given before `WARM_UP` errors
//! are known.

use super::season::DayProfile;
use std::collections::VecDeque;

/// Values the point forecast looks at.
const LAST: usize = 3;
/// Past errors the interval is taken from.
const ERRORS: usize = 500;
/// Errors known before any forecast is given.
pub const WARM_UP: usize = 30;
/// The interval's coverage.
pub const COVERAGE: f64 = 0.95;

/// One forecast.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Forecast {
    pub value: f64,
    pub lower: f64,
    pub upper: f64,
}

#[derive(Clone, Debug)]
pub struct Forecaster {
    horizon: usize,
    last: VecDeque<f64>,
    /// Forecasts made and not yet reached, oldest first.
    pending: VecDeque<f64>,
    errors: VecDeque<f64>,
    day: DayProfile,
    /// The first and the last value's times (`step_at`).
    first_ms: Option<i64>,
    last_ms: Option<i64>,
}

impl Forecaster {
    /// A forecaster `horizon` (at least 1) rows ahead.
    pub fn new(horizon: usize) -> Forecaster {
        let horizon = horizon.max(1);
        Forecaster {
            horizon,
            last: VecDeque::with_capacity(LAST),
            pending: VecDeque::with_capacity(horizon + 1),
            errors: VecDeque::with_capacity(ERRORS),
            day: DayProfile::new(),
            first_ms: None,
            last_ms: None,
        }
    }

    /// As `step`, knowing the value's time: after a day, the forecast
    /// moves by what the day profile expects between now and `horizon`
    /// rows on (at the time between the last two values).
    pub fn step_at(&mut self, ts_ms: i64, value: f64) -> Option<Forecast> {
        if !value.is_finite() {
            return None;
        }
        let dt = self.last_ms.map(|l| ts_ms - l).filter(|d| *d > 0);
        self.last_ms = Some(ts_ms);
        let first = *self.first_ms.get_or_insert(ts_ms);
        self.day.learn(ts_ms, value, None);
        let shift = match dt {
            Some(dt) if ts_ms - first >= 86_400_000 => {
                let target = ts_ms.saturating_add(dt.saturating_mul(self.horizon as i64));
                match (self.day.at(target), self.day.at(ts_ms)) {
                    (Some(then), Some(now)) => then - now,
                    _ => 0.0,
                }
            }
            _ => 0.0,
        };
        self.step_shifted(value, shift)
    }

    /// Takes the next value; returns the forecast for `horizon` rows after
    /// it, once enough errors are known. A value that is not finite is
    /// skipped (`None`).
    pub fn step(&mut self, value: f64) -> Option<Forecast> {
        self.step_shifted(value, 0.0)
    }

    fn step_shifted(&mut self, value: f64, shift: f64) -> Option<Forecast> {
        if !value.is_finite() {
            return None;
        }
        if self.pending.len() == self.horizon
            && let Some(made) = self.pending.pop_front()
        {
            if self.errors.len() == ERRORS {
                self.errors.pop_front();
            }
            self.errors.push_back((value - made).abs());
        }
        if self.last.len() == LAST {
            self.last.pop_front();
        }
        self.last.push_back(value);
        let mut sorted: Vec<f64> = self.last.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        let point = sorted[sorted.len() / 2] + shift;
        self.pending.push_back(point);
        if self.errors.len() < WARM_UP {
            return None;
        }
        let mut e: Vec<f64> = self.errors.iter().copied().collect();
        let at = ((e.len() as f64 * COVERAGE).ceil() as usize).clamp(1, e.len()) - 1;
        let width = *e.select_nth_unstable_by(at, f64::total_cmp).1;
        Some(Forecast {
            value: point,
            lower: point - width,
            upper: point + width,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_steady_series_is_forecast_steady_with_an_interval_that_covers_it() {
        let mut f = Forecaster::new(12);
        let values: Vec<f64> = (0..2000u64)
            .map(|i| 100.0 + ((i * 7919) % 11) as f64 - 5.0)
            .collect();
        let made: Vec<Option<Forecast>> = values.iter().map(|v| f.step(*v)).collect();
        assert!(made[..WARM_UP + 11].iter().all(Option::is_none));
        let checked: Vec<bool> = (12..values.len())
            .filter_map(|i| made[i - 12].map(|fc| (fc.lower..=fc.upper).contains(&values[i])))
            .collect();
        let inside = checked.iter().filter(|c| **c).count();
        assert!(
            inside as f64 >= 0.9 * checked.len() as f64,
            "{inside} of {} inside the 95 % interval",
            checked.len()
        );
        let last = made.last().unwrap().unwrap();
        assert!((95.0..=105.0).contains(&last.value), "{last:?}");
        assert!(last.upper - last.lower <= 20.0, "{last:?}");
    }

    #[test]
    fn with_times_a_daily_cycle_is_forecast_along_the_day() {
        // 5-minute rows, a day of 288, a swing of +-20: 12 rows ahead the
        // value has moved by up to 5 units; the day profile knows how far.
        let t0 = 1_767_225_600_000i64;
        let value = |i: usize| 50.0 + 20.0 * (i as f64 * std::f64::consts::TAU / 288.0).sin();
        let (mut timed, mut plain) = (Forecaster::new(12), Forecaster::new(12));
        let (mut err_timed, mut err_plain) = (0.0, 0.0);
        for i in 0..288 * 4 - 12 {
            let t = t0 + i as i64 * 300_000;
            let a = timed.step_at(t, value(i));
            let b = plain.step(value(i));
            if i >= 288 * 2 {
                err_timed += (a.unwrap().value - value(i + 12)).abs();
                err_plain += (b.unwrap().value - value(i + 12)).abs();
            }
        }
        assert!(err_timed < 0.2 * err_plain, "{err_timed} vs {err_plain}");
    }

    #[test]
    fn nothing_before_warm_up_and_spikes_do_not_move_the_forecast() {
        let mut f = Forecaster::new(1);
        for _ in 0..WARM_UP {
            assert_eq!(f.step(1.0), None);
        }
        assert!(f.step(1.0).is_some());
        let after_spike = f.step(1000.0).unwrap();
        assert_eq!(after_spike.value, 1.0, "the median ignores one spike");
        assert_eq!(f.step(f64::NAN), None);
    }
}
