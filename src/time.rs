//! The one timestamp format the daemon writes, in the API, the live feed and
//! notifications alike: RFC 3339 in UTC with milliseconds and `Z`.

use chrono::{DateTime, SecondsFormat, Utc};

/// How far ahead of this daemon's clock a pushed timestamp may be (clock
/// skew allowance), for every ingest endpoint alike.
pub const MAX_FUTURE_MS: i64 = 5 * 60_000;

/// `2026-11-29T17:44:44.123Z`.
pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A time in milliseconds since the Unix epoch, as `ts` writes it (empty
/// when out of chrono's range).
pub fn ts_ms(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(ts)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_and_z() {
        assert_eq!(ts_ms(1_764_438_284_123), "2025-11-29T17:44:44.123Z");
        assert_eq!(ts_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(ts_ms(i64::MAX), "");
    }
}
