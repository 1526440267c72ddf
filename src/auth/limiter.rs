//! Repeated failed sign-ins from one address are slowed: after
//! `MAX_FAILURES` within `WINDOW`, that address is answered 429 (with
//! `Retry-After`) until the window has passed, whatever it sends. The table
//! is bounded: past `MAX_ADDRESSES` the oldest windows are dropped.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Failures allowed from one address within `WINDOW` by default.
pub const MAX_FAILURES: u32 = 10;
pub const WINDOW: Duration = Duration::from_secs(60);
const MAX_ADDRESSES: usize = 10_000;

pub struct Limiter {
    /// Failures allowed from one address within `WINDOW`.
    max_failures: u32,
    /// Per address: when its window began and its failures in it.
    windows: Mutex<HashMap<IpAddr, (Instant, u32)>>,
    /// Failed sign-ins since start, for `/health`.
    failures: AtomicU64,
    /// Requests refused with 429 since start.
    refused: AtomicU64,
}

impl Default for Limiter {
    fn default() -> Self {
        Limiter::new(MAX_FAILURES)
    }
}

impl Limiter {
    pub fn new(max_failures: u32) -> Limiter {
        Limiter {
            max_failures,
            windows: Mutex::default(),
            failures: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }

    /// Refuses a request from `ip` at `now` while the address is blocked:
    /// `Some(seconds to wait)`, and the refusal is counted.
    pub fn refuse(&self, ip: IpAddr, now: Instant) -> Option<u64> {
        let w = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let (start, n) = w.get(&ip)?;
        let end = *start + WINDOW;
        (*n >= self.max_failures && now < end).then(|| {
            self.refused.fetch_add(1, Ordering::Relaxed);
            (end - now).as_secs().max(1)
        })
    }

    /// Counts a failed sign-in from `ip` at `now`; true when this one
    /// blocks the address.
    pub fn failed(&self, ip: IpAddr, now: Instant) -> bool {
        self.failures.fetch_add(1, Ordering::Relaxed);
        let mut w = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if w.len() >= MAX_ADDRESSES && !w.contains_key(&ip) {
            w.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
            if w.len() >= MAX_ADDRESSES {
                w.clear();
            }
        }
        let e = w.entry(ip).or_insert((now, 0));
        if now.duration_since(e.0) >= WINDOW {
            *e = (now, 0);
        }
        e.1 += 1;
        e.1 == self.max_failures
    }

    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_failures_block_an_address_for_the_rest_of_the_minute() {
        let l = Limiter::default();
        let ip: IpAddr = [10, 0, 0, 1].into();
        let other: IpAddr = [10, 0, 0, 2].into();
        let t0 = Instant::now();
        for _ in 0..MAX_FAILURES {
            assert_eq!(l.refuse(ip, t0), None);
            let blocks = l.failed(ip, t0);
            assert_eq!(blocks, l.failures() == u64::from(MAX_FAILURES));
        }
        assert_eq!(l.refuse(ip, t0 + Duration::from_secs(15)), Some(45));
        assert_eq!(l.refuse(other, t0), None);
        assert_eq!(l.refuse(ip, t0 + WINDOW), None);
        assert_eq!((l.failures(), l.refused()), (10, 1));
    }
}
