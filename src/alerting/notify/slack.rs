//! Slack-compatible incoming webhook: a text line plus one coloured attachment.

use super::Delivery;
use crate::alerting::Event;
use crate::config::alerting::Severity;
use serde_json::{Value, json};

pub fn body(d: &Delivery, external_url: &str) -> Value {
    let a = &d.alert;
    let (icon, color) = match (d.event, a.severity) {
        (Event::Resolved, _) => ("✅", "#2eb886"),
        (_, Severity::Critical) => ("🔴", "#d00000"),
        (_, Severity::Warning) => ("🟠", "#f2c744"),
        (_, Severity::Info) => ("🔵", "#439fe0"),
    };
    let what = match d.event {
        Event::Fired => "FIRING",
        Event::Escalated => "ESCALATED",
        Event::Resolved => "RESOLVED",
    };
    json!({
        "text": format!("{icon} [{what}] {} {}: {}", a.severity.as_str().to_uppercase(), a.service, a.message),
        "attachments": [{
            "color": color,
            "title": a.rule,
            "title_link": format!("{external_url}/alerts/{}", a.alert_id),
            "text": a.description,
            "fields": [
                {"title": "alert_id", "value": a.alert_id, "short": true},
                {"title": "value", "value": a.value.to_string(), "short": true},
                {"title": "threshold", "value": a.threshold.to_string(), "short": true},
            ],
        }],
    })
}
