//! Silences (maintenance windows): label matchers and a time window. An
//! alert that matches an active silence when it fires or changes is still
//! recorded, but not notified.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    pub id: String,
    /// Label name -> value; every one must match. `alertname` matches the rule,
    /// `severity` and `service` the alert's fields, others its labels.
    pub matchers: BTreeMap<String, String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub created_by: String,
    pub comment: String,
    pub created_at: DateTime<Utc>,
}

impl Silence {
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.starts_at <= now && now < self.ends_at
    }

    pub fn matches(&self, a: &super::Alert) -> bool {
        self.matchers.iter().all(|(k, v)| {
            let actual = match k.as_str() {
                "alertname" | "rule" => Some(a.rule.as_str()),
                "severity" => Some(a.severity.as_str()),
                "service" => Some(a.service.as_str()),
                other => a.labels.get(other).map(String::as_str),
            };
            actual == Some(v.as_str())
        })
    }
}
