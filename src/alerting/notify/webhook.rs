//! Generic webhook: the body of Alertmanager's webhook receiver (version 4),
//! so receivers written for Alertmanager work unchanged. `alert_id` is one of
//! each alert's labels.

use super::Delivery;
use crate::alerting::Event;
use serde_json::{Value, json};

pub fn labels(d: &Delivery) -> serde_json::Map<String, Value> {
    let a = &d.alert;
    let mut l: serde_json::Map<String, Value> = a
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    l.insert("alertname".into(), json!(a.rule));
    l.insert("severity".into(), json!(a.severity.as_str()));
    l.insert("service".into(), json!(a.service));
    l.insert("alert_id".into(), json!(a.alert_id));
    l
}

pub fn annotations(d: &Delivery) -> Value {
    json!({"summary": d.alert.message, "description": d.alert.description,
           "value": d.alert.value.to_string(), "threshold": d.alert.threshold.to_string(),
           "event": d.event.as_str()})
}

pub fn ends_at(d: &Delivery) -> String {
    d.alert
        .resolved_at
        .filter(|_| d.event == Event::Resolved)
        .map(crate::time::ts)
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".into())
}

pub fn body(receiver: &str, d: &Delivery, external_url: &str) -> Value {
    let status = if d.event == Event::Resolved {
        "resolved"
    } else {
        "firing"
    };
    let labels = labels(d);
    json!({
        "version": "4",
        "groupKey": format!("{{}}:{{alertname=\"{}\"}}", d.alert.rule),
        "truncatedAlerts": 0,
        "status": status,
        "receiver": receiver,
        "groupLabels": {"alertname": d.alert.rule},
        "commonLabels": labels,
        "commonAnnotations": annotations(d),
        "externalURL": external_url,
        "alerts": [{
            "status": status,
            "labels": labels,
            "annotations": annotations(d),
            "startsAt": crate::time::ts(d.alert.fired_at),
            "endsAt": ends_at(d),
            "generatorURL": format!("{external_url}/alerts/{}", d.alert.alert_id),
            "fingerprint": d.alert.fingerprint,
        }],
    })
}
