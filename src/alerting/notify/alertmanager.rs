//! Forwarding to an Alertmanager (`POST /api/v2/alerts`), so an existing
//! Alertmanager cluster can take over routing, grouping and silencing.

use super::Delivery;
use super::webhook::{annotations, ends_at, labels};
use serde_json::{Value, json};

pub fn body(d: &Delivery, external_url: &str) -> Value {
    let mut alert = json!({
        "labels": labels(d),
        "annotations": annotations(d),
        "startsAt": crate::time::ts(d.alert.fired_at),
        "generatorURL": format!("{external_url}/alerts/{}", d.alert.alert_id),
    });
    if d.event == crate::alerting::Event::Resolved {
        alert["endsAt"] = json!(ends_at(d));
    }
    json!([alert])
}
