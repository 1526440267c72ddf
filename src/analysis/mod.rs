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
pub mod trend;
