//! Alerting: rules evaluated against the store (`rule.rs`), the alert
//! lifecycle state machine (`engine.rs`), persistent alerts, audit trail and
//! silences (`state.rs`, `silence.rs`; the audit trail's hash chain in
//! `chain.rs`), and notification delivery through a
//! persistent outbox (`outbox.rs`: the record and its routing; `notify/`:
//! the dispatcher and one file per provider).
//!
//! An alert is one firing of one rule for one label set (its fingerprint):
//! `active` -> `acknowledged` -> `resolved`. Every change is written to sled
//! and flushed before it is reported, together with an audit record.

pub mod chain;
pub mod engine;
pub mod external;
pub mod notify;
pub mod outbox;
pub mod rule;
pub mod silence;
pub mod state;

use crate::config::alerting::Severity;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    Active,
    Acknowledged,
    Resolved,
}

impl AlertStatus {
    pub fn parse(s: &str) -> Option<AlertStatus> {
        match s {
            "active" => Some(AlertStatus::Active),
            "acknowledged" => Some(AlertStatus::Acknowledged),
            "resolved" => Some(AlertStatus::Resolved),
            _ => None,
        }
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            AlertStatus::Active => "active",
            AlertStatus::Acknowledged => "acknowledged",
            AlertStatus::Resolved => "resolved",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Creation order; also the sled key.
    pub seq: u64,
    pub alert_id: String,
    pub fingerprint: String,
    pub rule: String,
    pub severity: Severity,
    pub status: AlertStatus,
    pub service: String,
    pub message: String,
    pub description: String,
    pub labels: BTreeMap<String, String>,
    /// The value that fired the rule, then the latest evaluated value.
    pub value: f64,
    pub threshold: f64,
    pub fired_at: DateTime<Utc>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<String>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<String>,
    pub escalated: bool,
    /// Stored: whether a silence matched when it fired (recorded, not
    /// notified). Answers say whether one matches now (`AlertState::as_of`).
    pub silenced: bool,
    pub updated_at: DateTime<Utc>,
}

impl Alert {
    /// A new active alert of `rule`, fired at `fired_at`, with no id yet
    /// (`AlertState::fire` gives it one) and nothing said about it yet:
    /// callers fill in service, message, description, labels and value.
    pub fn firing(
        fingerprint: String,
        rule: String,
        severity: Severity,
        fired_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Alert {
        Alert {
            seq: 0,
            alert_id: String::new(),
            fingerprint,
            rule,
            severity,
            status: AlertStatus::Active,
            service: String::new(),
            message: String::new(),
            description: String::new(),
            labels: BTreeMap::new(),
            value: f64::NAN,
            threshold: f64::NAN,
            fired_at,
            acknowledged_at: None,
            acknowledged_by: None,
            resolved_at: None,
            resolved_by: None,
            escalated: false,
            silenced: false,
            updated_at: now,
        }
    }

    pub fn is_open(&self) -> bool {
        self.status != AlertStatus::Resolved
    }
}

/// One line of the append-only audit trail.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub alert_id: Option<String>,
    /// An `AuditAction`'s name (kept as text on disk).
    pub action: String,
    /// Who: an operator's name, or "system".
    pub actor: String,
    pub comment: Option<String>,
    /// Delivery attempts: channel, outcome, HTTP status, attempt number.
    pub details: BTreeMap<String, String>,
    /// The hash of the record before it (`chain.rs`).
    pub prev_hash: chain::Hash,
    /// This record's own hash: not part of what is hashed, kept beside it.
    #[serde(skip)]
    pub hash: chain::Hash,
}

/// Who did something: the name they gave (`acknowledged_by`, ...) and the
/// API token they used, when access control is on. An audit record keeps
/// both: the token's name under `details.token`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Actor {
    pub name: String,
    pub token: Option<String>,
}

impl Actor {
    pub fn new(name: &str, token: Option<&str>) -> Actor {
        Actor {
            name: name.to_string(),
            token: token.map(str::to_string),
        }
    }
}

impl From<&str> for Actor {
    fn from(name: &str) -> Actor {
        Actor::new(name, None)
    }
}

/// What an audit record says happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditAction {
    Fired,
    Acknowledged,
    Resolved,
    Escalated,
    /// A notification was not sent because a silence matched.
    Silenced,
    Notified,
    NotificationFailed,
    SilenceCreated,
    SilenceDeleted,
    /// Resolved alerts past `ALERT_RETENTION_DAYS` were deleted.
    Purged,
    /// An API token was created (its name and role; never the secret).
    TokenCreated,
    TokenRevoked,
    /// An address failed to sign in too often and is refused for a while.
    SignInBlocked,
    /// The configuration was reloaded (what changed in the comment).
    ConfigReloaded,
    /// A reload was refused (why in the comment); nothing changed.
    ConfigReloadFailed,
}

impl AuditAction {
    pub const ALL: [AuditAction; 15] = [
        AuditAction::Fired,
        AuditAction::Acknowledged,
        AuditAction::Resolved,
        AuditAction::Escalated,
        AuditAction::Silenced,
        AuditAction::Notified,
        AuditAction::NotificationFailed,
        AuditAction::SilenceCreated,
        AuditAction::SilenceDeleted,
        AuditAction::Purged,
        AuditAction::TokenCreated,
        AuditAction::TokenRevoked,
        AuditAction::SignInBlocked,
        AuditAction::ConfigReloaded,
        AuditAction::ConfigReloadFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Fired => "fired",
            AuditAction::Acknowledged => "acknowledged",
            AuditAction::Resolved => "resolved",
            AuditAction::Escalated => "escalated",
            AuditAction::Silenced => "silenced",
            AuditAction::Notified => "notified",
            AuditAction::NotificationFailed => "notification_failed",
            AuditAction::SilenceCreated => "silence_created",
            AuditAction::SilenceDeleted => "silence_deleted",
            AuditAction::Purged => "purged",
            AuditAction::TokenCreated => "token_created",
            AuditAction::TokenRevoked => "token_revoked",
            AuditAction::SignInBlocked => "sign_in_blocked",
            AuditAction::ConfigReloaded => "config_reloaded",
            AuditAction::ConfigReloadFailed => "config_reload_failed",
        }
    }

    pub fn parse(s: &str) -> Option<AuditAction> {
        AuditAction::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// What changed, for notifications and the live feed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Event {
    Fired,
    Escalated,
    Resolved,
}

impl Event {
    pub fn as_str(&self) -> &'static str {
        match self {
            Event::Fired => "fired",
            Event::Escalated => "escalated",
            Event::Resolved => "resolved",
        }
    }
}
