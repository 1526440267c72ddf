//! Trend direction of a series: the slope of a least-squares line through
//! the points, times the window's length, relative to the mean level. A
//! relative change within ±`STABLE_BAND` is `stable`; so is a series with
//! fewer than `MIN_POINTS` points or a mean of zero (nothing to compare to).

use serde::Serialize;

/// Relative change over the window below which a series is "stable" (5 %).
pub const STABLE_BAND: f64 = 0.05;
pub const MIN_POINTS: usize = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Trend {
    Up,
    Down,
    Stable,
}

/// `points` are (time, value); missing values are skipped by the caller.
pub fn trend(points: &[(f64, f64)]) -> Trend {
    trend_with_floor(points, 0.0)
}

/// As `trend`, and the fitted change over the window must also exceed
/// `floor` in the values' own unit, for values whose relative change means
/// little near zero (an error rate moving from 0.1 % to 0.2 %).
pub fn trend_with_floor(points: &[(f64, f64)], floor: f64) -> Trend {
    if points.len() < MIN_POINTS {
        return Trend::Stable;
    }
    let n = points.len() as f64;
    let mean_t = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_v = points.iter().map(|p| p.1).sum::<f64>() / n;
    let (mut num, mut den) = (0.0, 0.0);
    for (t, v) in points {
        num += (t - mean_t) * (v - mean_v);
        den += (t - mean_t) * (t - mean_t);
    }
    if den == 0.0 || mean_v.abs() < 1e-9 {
        return Trend::Stable;
    }
    let span = points.last().map_or(0.0, |p| p.0) - points.first().map_or(0.0, |p| p.0);
    let absolute = num / den * span;
    if absolute.abs() <= floor {
        return Trend::Stable;
    }
    let change = absolute / mean_v.abs();
    if change > STABLE_BAND {
        Trend::Up
    } else if change < -STABLE_BAND {
        Trend::Down
    } else {
        Trend::Stable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(f: impl Fn(f64) -> f64) -> Vec<(f64, f64)> {
        (0..30).map(|i| (i as f64 * 60.0, f(i as f64))).collect()
    }

    #[test]
    fn directions() {
        for (points, want) in [
            (line(|i| 50.0 + i), Trend::Up),
            (line(|i| 80.0 - i), Trend::Down),
            (line(|i| 50.0 + (i % 2.0)), Trend::Stable),
            (line(|_| 0.0), Trend::Stable),
            (line(|i| 100.0 + 0.1 * i), Trend::Stable),
            (vec![(0.0, 1.0), (1.0, 9.0)], Trend::Stable),
        ] {
            assert_eq!(trend(&points), want, "{points:?}");
        }
    }

    #[test]
    fn a_floor_keeps_noise_near_zero_stable() {
        // 0.1 % to 0.4 %: four times as many errors, still under one point.
        let low = line(|i| 0.1 + 0.01 * i);
        assert_eq!(trend(&low), Trend::Up);
        assert_eq!(trend_with_floor(&low, 1.0), Trend::Stable);
        let real = line(|i| 1.0 + 0.2 * i);
        assert_eq!(trend_with_floor(&real, 1.0), Trend::Up);
    }
}
