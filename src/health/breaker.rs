//! Circuit breaker: after `OPEN_AFTER` consecutive failures a service is
//! probed with exponential back-off, capped at `MAX_BACKOFF`; the first
//! success returns it to its normal interval. Pure arithmetic, so the
//! schedule is unit-tested without waiting.

use std::time::Duration;

/// Consecutive failures before back-off starts.
pub const OPEN_AFTER: u32 = 5;
/// The longest wait between two checks of a failing service (unless its
/// interval is longer): a service that recovers is seen within this time
/// plus one check's timeout. It was 5 minutes, and an outage looked up to
/// 5 minutes longer than it was.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The wait before the next check, given the failures in a row so far.
pub fn next_delay(interval: Duration, consecutive_failures: u32) -> Duration {
    if consecutive_failures < OPEN_AFTER {
        return interval;
    }
    let doublings = (consecutive_failures - OPEN_AFTER + 1).min(20);
    interval
        .saturating_mul(1 << doublings)
        .min(MAX_BACKOFF.max(interval))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backs_off_exponentially_after_five_failures_up_to_one_minute() {
        let i = Duration::from_secs(10);
        let delays: Vec<u64> = (0..12).map(|f| next_delay(i, f).as_secs()).collect();
        assert_eq!(delays, vec![10, 10, 10, 10, 10, 20, 40, 60, 60, 60, 60, 60]);
        assert_eq!(next_delay(i, 1_000), MAX_BACKOFF);
        // An interval longer than the cap is never shortened.
        assert_eq!(
            next_delay(Duration::from_secs(600), 9),
            Duration::from_secs(600)
        );
    }
}
