//! Pure analysis functions over stored series: no I/O, no clocks.

pub mod trend;
