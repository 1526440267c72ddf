//! Typed answers computed from the store at an explicit time, for the API
//! to encode: handlers parse their parameters, call here (on a blocking
//! thread), and lay the result out as a `dto` type.
//!
//! - `grid.rs` the points of a time range: where they start, their step
//! - `charts.rs` the series each chart reads and their lines on a grid
//! - `summary.rs` request statistics and up-time merged over a range
//! - `detailed.rs` matching series with each point's aggregate
//! - `live.rs` the dashboard's recent trends and request windows
//! - `uptime.rs` up-time weighted by time from a service's checks
//! - `forecast.rs` forecasts from stored history and each resource's time
//!   to full

pub mod charts;
pub mod detailed;
pub mod forecast;
pub mod grid;
pub mod live;
pub mod summary;
pub mod uptime;

pub use grid::Grid;
