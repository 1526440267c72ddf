//! The outbox's record and who gets it: a state change queues one `Delivery`
//! per channel that the `Router` names. `state.rs` persists the outbox;
//! `notify/` sends what is due.

use super::{Alert, Event};
use crate::config::Config;
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

/// Who gets which notification: the configuration's channels, routes and
/// escalation. The one place that decides channels.
#[derive(Clone, Debug, Default)]
pub struct Router {
    channels: Vec<ChannelSpec>,
    routes: Vec<RouteSpec>,
    escalation: Option<EscalationSpec>,
}

impl Router {
    pub fn new(
        channels: Vec<ChannelSpec>,
        routes: Vec<RouteSpec>,
        escalation: Option<EscalationSpec>,
    ) -> Router {
        Router {
            channels,
            routes,
            escalation,
        }
    }

    pub fn from_config(c: &Config) -> Router {
        Router::new(c.channels.clone(), c.routes.clone(), c.escalation.clone())
    }

    /// The channels notified of `event` for `a`: with no routes every
    /// channel; else every channel of every route whose severity and
    /// service match; an escalation adds the escalation's channels.
    pub fn channels(&self, a: &Alert, event: Event) -> Vec<String> {
        let mut out: Vec<String> = if self.routes.is_empty() {
            self.channels.iter().map(|c| c.name.clone()).collect()
        } else {
            let mut out = Vec::new();
            for r in &self.routes {
                let sev = r.severity.is_none_or(|s| s == a.severity);
                let svc = r.service.as_ref().is_none_or(|s| s == &a.service);
                if sev && svc {
                    push_new(&mut out, &r.channels);
                }
            }
            out
        };
        if event == Event::Escalated
            && let Some(e) = &self.escalation
        {
            push_new(&mut out, &e.channels);
        }
        out
    }

    /// The configured channels.
    pub fn channel_specs(&self) -> &[ChannelSpec] {
        &self.channels
    }

    /// How long an active critical alert may stay unacknowledged before it
    /// escalates (`None`: no escalation configured).
    pub fn escalate_after(&self) -> Option<std::time::Duration> {
        self.escalation.as_ref().map(|e| e.after)
    }
}

fn push_new(out: &mut Vec<String>, names: &[String]) {
    for c in names {
        if !out.contains(c) {
            out.push(c.clone());
        }
    }
}
