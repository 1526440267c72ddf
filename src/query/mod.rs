//! Typed answers computed from the store at an explicit time, for the API
//! to encode. Today the grid every time-range answer is laid on (the alert
//! state counts firings on it: `AlertState::fired_per_step`); the chart,
//! summary, detailed-metrics and dashboard computations move here from
//! `api/` next (issue "One-way house", item 3).
//!
//! - `grid.rs` the points of a time range: where they start, their step

pub mod grid;

pub use grid::Grid;
