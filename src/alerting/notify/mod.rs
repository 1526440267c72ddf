//! Notification delivery. A state change queues one `Delivery` per routed
//! channel in the persistent outbox (`outbox.rs`, kept by `state.rs`); the dispatcher sends
//! due deliveries with a timeout and retries failures with exponential
//! back-off, so a receiver that is down, or a restart, delays a notification
//! but does not lose it. Each attempt is recorded in the alert's history.
//! One file per provider builds the request body.

pub mod alertmanager;
pub mod slack;
pub mod webhook;

use super::outbox::Delivery;
use super::state::AlertState;
use crate::config::alerting::{ChannelKind, ChannelSpec};
use crate::shutdown::Shutdown;
use chrono::Utc;
use std::sync::Arc;
use std::time::Duration;

/// Per-attempt timeout.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait between two attempts.
pub const MAX_RETRY_DELAY_SECS: i64 = 300;
/// The longest the notifier sleeps without looking at the outbox (a guard
/// against wall-clock jumps: retry times are wall-clock times).
const LONGEST_SLEEP: Duration = Duration::from_secs(60);
/// The shortest: a delivery whose attempt could not be recorded stays due,
/// and must not turn the loop into a spin.
const SHORTEST_SLEEP: Duration = Duration::from_millis(100);

/// Exponential back-off: 1, 2, 4 ... seconds, at most `MAX_RETRY_DELAY_SECS`.
pub fn retry_delay(attempts: u32) -> chrono::Duration {
    chrono::Duration::seconds((1i64 << attempts.min(16)).min(MAX_RETRY_DELAY_SECS))
}

/// The request for one delivery: URL and JSON body.
pub fn request(ch: &ChannelSpec, d: &Delivery, external_url: &str) -> (String, serde_json::Value) {
    match ch.kind {
        ChannelKind::Webhook => (ch.url.clone(), webhook::body(&ch.name, d, external_url)),
        ChannelKind::Slack => (ch.url.clone(), slack::body(d, external_url)),
        ChannelKind::Alertmanager => (
            format!("{}/api/v2/alerts", ch.url),
            alertmanager::body(d, external_url),
        ),
    }
}

fn send(url: &str, body: &serde_json::Value) -> (bool, Option<u16>, Option<String>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(DELIVERY_TIMEOUT))
        .http_status_as_error(false)
        .build()
        .into();
    match agent
        .post(url)
        .header("content-type", "application/json")
        .send(body.to_string())
    {
        Ok(r) => {
            let code = r.status().as_u16();
            let ok = r.status().is_success();
            (ok, Some(code), (!ok).then(|| format!("bad status {code}")))
        }
        Err(e) => (false, None, Some(e.to_string())),
    }
}

/// Sends due deliveries until shutdown, to the channels configured now
/// (a reload may change them). Sleeps until the earliest retry is due or a
/// delivery is queued: no polling while the outbox is empty.
pub async fn run(state: Arc<AlertState>, external_url: String, mut shutdown: Shutdown) {
    loop {
        let due = state.due(Utc::now());
        let router = state.router();
        for d in due {
            deliver(&state, router.channel_specs(), &external_url, d).await;
        }
        let wait = state.next_due().map_or(LONGEST_SLEEP, |at| {
            (at - Utc::now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .clamp(SHORTEST_SLEEP, LONGEST_SLEEP)
        });
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = state.outbox_changed() => {}
            _ = shutdown.recv() => return,
        }
    }
}

/// One attempt at one delivery, recorded in the outbox and the audit trail.
async fn deliver(
    state: &Arc<AlertState>,
    channels: &[ChannelSpec],
    external_url: &str,
    d: Delivery,
) {
    let Some(ch) = channels.iter().find(|c| c.name == d.channel).cloned() else {
        // The channel was removed from the config: drop the delivery, recorded.
        let _ = state.delivered(
            &d,
            true,
            None,
            Some("channel no longer configured".into()),
            Utc::now(),
            Utc::now(),
        );
        return;
    };
    let (url, body) = request(&ch, &d, external_url);
    let st = state.clone();
    crate::blocking::run("a delivery", move || {
        let (ok, status, err) = send(&url, &body);
        let now = Utc::now();
        st.delivered(&d, ok, status, err, now + retry_delay(d.attempts), now)
    })
    .await;
}
