//! The outbox's record and who gets it: a state change queues one `Delivery`
//! per channel that `route` (or, for an escalation, `escalation_channels`)
//! names. `state.rs` persists the outbox; `notify/` sends what is due.

use super::{Alert, Event};
use crate::config::alerting::{ChannelSpec, EscalationSpec, RouteSpec};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub seq: u64,
    pub channel: String,
    pub event: Event,
    /// The alert as it was when the change happened.
    pub alert: Alert,
    pub attempts: u32,
    pub next_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

/// Which channels get a notification: with no routes every channel; else
/// every channel of every route whose severity and service match.
pub fn route(channels: &[ChannelSpec], routes: &[RouteSpec], a: &Alert) -> Vec<String> {
    if routes.is_empty() {
        return channels.iter().map(|c| c.name.clone()).collect();
    }
    let mut out: Vec<String> = Vec::new();
    for r in routes {
        let sev = r.severity.is_none_or(|s| s == a.severity);
        let svc = r.service.as_ref().is_none_or(|s| s == &a.service);
        if sev && svc {
            for c in &r.channels {
                if !out.contains(c) {
                    out.push(c.clone());
                }
            }
        }
    }
    out
}

pub fn escalation_channels(esc: &Option<EscalationSpec>) -> Vec<String> {
    esc.as_ref().map(|e| e.channels.clone()).unwrap_or_default()
}
