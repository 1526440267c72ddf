//! Pure analysis functions over series: no I/O, no clocks.
//!
//! - `trend.rs`: the direction of a series over a window;
//! - `anomaly.rs`: a streaming anomaly detector in constant memory;
//! - `forecast.rs`: a streaming forecast some rows ahead, with an interval;
//! - `linear.rs`: a robust line (Theil-Sen) and forecasts and times to a
//!   limit from it;
//! - `replay.rs`: the detector replayed on a `timestamp,value` CSV
//!   (`mlsec-monitor analyze`).

pub mod anomaly;
pub mod forecast;
pub mod linear;
pub mod replay;
pub mod season;
pub mod trend;

/// A deterministic noise in [-1, 1], for the analysis tests.
#[cfg(test)]
pub(crate) fn noise(i: u64) -> f64 {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5555;
    x ^= x >> 29;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 32;
    (x % 2001) as f64 / 1000.0 - 1.0
}
