//! One shutdown signal for every loop: SIGINT/SIGTERM (or a test's future)
//! flips a `watch` channel; each task `select!`s its work against `recv()`,
//! or, when periodic, runs `while shutdown.tick(&mut ticker).await`.

use std::time::Duration;
use tokio::sync::watch;
use tokio::time::{Interval, MissedTickBehavior};

#[derive(Clone)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
}

pub struct Trigger {
    tx: watch::Sender<bool>,
}

pub fn channel() -> (Trigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (Trigger { tx }, Shutdown { rx })
}

impl Trigger {
    pub fn fire(&self) {
        let _ = self.tx.send(true);
    }
}

impl Shutdown {
    /// Resolves once shutdown has begun (at once if it already has).
    pub async fn recv(&mut self) {
        let _ = self.rx.wait_for(|down| *down).await;
    }

    /// Waits for the next tick of `ticker`: true on a tick, false once
    /// shutdown has begun. A periodic task is
    /// `let mut t = ticker(every); while shutdown.tick(&mut t).await { .. }`.
    pub async fn tick(&mut self, ticker: &mut Interval) -> bool {
        tokio::select! {
            _ = ticker.tick() => true,
            _ = self.recv() => false,
        }
    }
}

/// An interval whose first tick is at once and that, when work overruns a
/// period, waits a full period again rather than bursting to catch up.
pub fn ticker(period: Duration) -> Interval {
    let mut t = tokio::time::interval(period);
    t.set_missed_tick_behavior(MissedTickBehavior::Delay);
    t
}

/// Resolves on SIGINT or SIGTERM.
pub async fn os_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
