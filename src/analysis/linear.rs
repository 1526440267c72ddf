//! A robust straight line through a series and a forecast from it, for
//! `GET /forecast`, `GET /capacity` and rules on the time to full.
//!
//! The slope is Theil and Sen's: the median of the slopes between every
//! pair of points, which one outlier or a short burst cannot tilt (least
//! squares, as Prometheus's `predict_linear`, can). Its confidence interval
//! is Sen's, from the ranks of the pair slopes; the level is the median of
//! what is left after the slope, and the spread around the line is the
//! residuals' own quantiles. A slope whose 95 % interval holds 0 is no
//! trend: the forecast is then flat at the recent level.

/// The line through a series (x in seconds, any origin).
#[derive(Clone, Debug, PartialEq)]
pub struct Fit {
    /// Per second.
    pub slope: f64,
    /// Sen's 80 % and 95 % intervals of the slope.
    pub slope80: (f64, f64),
    pub slope95: (f64, f64),
    /// The line's value at the last point's x.
    pub level: f64,
    pub last_x: f64,
    /// Residuals around the line, sorted.
    residuals: Vec<f64>,
    pub points: usize,
}

/// One forecast point.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Predicted {
    /// Seconds after the last point.
    pub ahead: f64,
    pub value: f64,
    pub lower80: f64,
    pub upper80: f64,
    pub lower95: f64,
    pub upper95: f64,
}

/// Fewer points than this give no line.
pub const MIN_POINTS: usize = 10;

fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    let at = (q * (sorted.len() - 1) as f64).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

/// Sen's interval of the slope at normal quantile `z`, from the sorted
/// pair slopes of `n` points.
fn sen_interval(slopes: &[f64], n: usize, z: f64) -> (f64, f64) {
    let n = n as f64;
    let c = z * (n * (n - 1.0) * (2.0 * n + 5.0) / 18.0).sqrt();
    let m = slopes.len() as f64;
    let lo = (((m - c) / 2.0).floor().max(1.0) as usize - 1).min(slopes.len() - 1);
    let hi = (((m + c) / 2.0).ceil().max(1.0) as usize).min(slopes.len()) - 1;
    (slopes[lo], slopes[hi])
}

impl Fit {
    /// The line through `points` (x ascending, finite values only), or
    /// `None` with fewer than `MIN_POINTS`.
    pub fn new(points: &[(f64, f64)]) -> Option<Fit> {
        let points: Vec<(f64, f64)> = points
            .iter()
            .copied()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect();
        let n = points.len();
        if n < MIN_POINTS {
            return None;
        }
        let mut slopes = Vec::with_capacity(n * (n - 1) / 2);
        for (i, a) in points.iter().enumerate() {
            for b in &points[i + 1..] {
                if b.0 > a.0 {
                    slopes.push((b.1 - a.1) / (b.0 - a.0));
                }
            }
        }
        if slopes.is_empty() {
            return None;
        }
        slopes.sort_by(f64::total_cmp);
        let slope = median(&slopes);
        let mut offsets: Vec<f64> = points.iter().map(|(x, y)| y - slope * x).collect();
        offsets.sort_by(f64::total_cmp);
        let intercept = median(&offsets);
        let mut residuals: Vec<f64> = points
            .iter()
            .map(|(x, y)| y - (intercept + slope * x))
            .collect();
        residuals.sort_by(f64::total_cmp);
        let last_x = points[n - 1].0;
        Some(Fit {
            slope,
            slope80: sen_interval(&slopes, n, 1.2816),
            slope95: sen_interval(&slopes, n, 1.96),
            level: intercept + slope * last_x,
            last_x,
            residuals,
            points: n,
        })
    }

    /// Whether the series rises or falls beyond doubt (the slope's 95 %
    /// interval is on one side of 0).
    pub fn trending(&self) -> bool {
        self.slope95.0 > 0.0 || self.slope95.1 < 0.0
    }

    /// "linear_trend" or "level" (no trend: flat at the line's level).
    pub fn model(&self) -> &'static str {
        if self.trending() {
            "linear_trend"
        } else {
            "level"
        }
    }

    /// The forecast `ahead` seconds after the last point: on the line, or
    /// flat when there is no trend; the intervals take the slope's own
    /// interval and the residuals' quantiles.
    pub fn at(&self, ahead: f64) -> Predicted {
        let (slope, s80, s95) = if self.trending() {
            (self.slope, self.slope80, self.slope95)
        } else {
            (0.0, (0.0, 0.0), (0.0, 0.0))
        };
        let r = &self.residuals;
        let low = |s: f64, q: f64| self.level + s * ahead + quantile(r, q);
        Predicted {
            ahead,
            value: self.level + slope * ahead,
            lower80: low(s80.0, 0.10),
            upper80: low(s80.1, 0.90),
            lower95: low(s95.0, 0.025),
            upper95: low(s95.1, 0.975),
        }
    }

    /// Seconds until the line reaches `limit` from the last point, with a
    /// 95 % interval (the slope's interval, and the level give or take the
    /// residuals' 2.5 and 97.5 % quantiles), when the series rises beyond
    /// doubt (`None`: not filling). At or over the limit already: zero.
    pub fn seconds_to(&self, limit: f64) -> Option<(f64, f64, f64)> {
        if self.slope95.0 <= 0.0 {
            return None;
        }
        let r = &self.residuals;
        let room = |level: f64| (limit - level).max(0.0);
        Some((
            room(self.level) / self.slope,
            room(self.level + quantile(r, 0.975)) / self.slope95.1,
            room(self.level + quantile(r, 0.025)) / self.slope95.0,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::analysis::noise;

    #[test]
    fn a_noisy_line_is_found_and_an_outlier_does_not_tilt_it() {
        // 1 unit an hour, every 5 minutes for a day, noise of +-0.5.
        let mut pts: Vec<(f64, f64)> = (0..288)
            .map(|i| (i as f64 * 300.0, 50.0 + i as f64 / 12.0 + 0.5 * noise(i)))
            .collect();
        pts[200].1 += 500.0;
        let f = Fit::new(&pts).unwrap();
        let per_hour = f.slope * 3600.0;
        assert!((per_hour - 1.0).abs() < 0.01, "{per_hour}");
        assert!(f.slope95.0 < f.slope && f.slope < f.slope95.1);
        assert!(f.slope80.0 >= f.slope95.0 && f.slope80.1 <= f.slope95.1);
        assert_eq!(f.model(), "linear_trend");
        assert!((f.level - (50.0 + 287.0 / 12.0)).abs() < 0.3, "{}", f.level);
        // 10 hours ahead: about 10 more, inside both intervals.
        let p = f.at(36_000.0);
        assert!((p.value - f.level - 10.0).abs() < 0.2, "{p:?}");
        assert!(p.lower95 <= p.lower80 && p.lower80 < p.value && p.value < p.upper80);
        assert!(p.upper80 <= p.upper95);
        // Time to 100: (100 - level) hours, within its interval.
        let (t, lo, hi) = f.seconds_to(100.0).unwrap();
        let want = (100.0 - f.level) * 3600.0;
        assert!((t - want).abs() / want < 0.02, "{t} {want}");
        assert!(lo < t && t < hi);
    }

    #[test]
    fn a_flat_or_falling_series_is_not_filling_and_forecasts_flat() {
        let flat: Vec<(f64, f64)> = (0..100)
            .map(|i| (i as f64 * 60.0, 30.0 + noise(i)))
            .collect();
        let f = Fit::new(&flat).unwrap();
        assert_eq!(f.model(), "level");
        assert_eq!(f.seconds_to(100.0), None);
        let p = f.at(86_400.0);
        assert!(
            (p.value - 30.0).abs() < 0.5 && p.lower95 < 30.0 && p.upper95 > 30.0,
            "{p:?}"
        );
        let falling: Vec<(f64, f64)> = (0..100)
            .map(|i| (i as f64 * 60.0, 90.0 - i as f64))
            .collect();
        assert_eq!(Fit::new(&falling).unwrap().seconds_to(100.0), None);
        assert!(Fit::new(&flat[..MIN_POINTS - 1]).is_none());
        // Already past the limit: zero.
        let over: Vec<(f64, f64)> = (0..50).map(|i| (i as f64, 101.0 + i as f64)).collect();
        assert_eq!(Fit::new(&over).unwrap().seconds_to(100.0).unwrap().0, 0.0);
    }
}
