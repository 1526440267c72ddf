//! A streaming forecast `h` rows ahead with an interval, from the rows up
//! to now only.
//!
//! The point forecast is the median of the last 3 values: on NAB's files it
//! beat the last value (the naive forecast) slightly and a straight line
//! through the last 12 rows (`predict_linear`) by far, where exponential
//! smoothing, damped trends and additive daily seasonality did not (the
//! README's table). The 95 % interval is the forecast plus or minus the
//! 95th percentile of the absolute errors of this series' own past
//! forecasts (the last `ERRORS` whose targets have arrived), so it is as
//! wide as this series has needed; none is given before `WARM_UP` errors
//! are known.

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
        }
    }

    /// Takes the next value; returns the forecast for `horizon` rows after
    /// it, once enough errors are known. A value that is not finite is
    /// skipped (`None`).
    pub fn step(&mut self, value: f64) -> Option<Forecast> {
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
        let point = sorted[sorted.len() / 2];
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
