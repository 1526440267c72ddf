//! Alerts from other engines (Prometheus, vmalert, Grafana) through the
//! Alertmanager API: each posted alert is one alert here, with the usual
//! lifecycle (silences, routes, escalation, notifications, audit), keyed by
//! its label set. It resolves when it is posted with an `endsAt` in the
//! past, or when it is not posted again before its `endsAt` (Prometheus
//! sends one a few resend intervals ahead) or, without one, within the
//! resolve timeout, as Alertmanager does.

use super::Alert;
use super::state::AlertState;
use crate::config::alerting::Severity;
use crate::error::Result;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// Fingerprints of external alerts start with this; the rule engine leaves
/// them alone.
pub const PREFIX: &str = "external/";

/// One alert as posted (already checked by the API).
#[derive(Clone, Debug)]
pub struct Posted {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub generator_url: Option<String>,
}

/// The severity a `severity` label names: `critical` (also `page`, `error`,
/// `high`), `warning` (also `warn`, and when missing or unknown), `info`
/// (also `low`, `none`).
pub fn severity_of(labels: &BTreeMap<String, String>) -> Severity {
    match labels
        .get("severity")
        .map(|s| s.to_ascii_lowercase())
        .as_deref()
    {
        Some("critical" | "page" | "error" | "high") => Severity::Critical,
        Some("info" | "low" | "none") => Severity::Info,
        _ => Severity::Warning,
    }
}

/// The alert's identity: its label set.
pub fn fingerprint(labels: &BTreeMap<String, String>) -> String {
    let canonical: String = labels
        .iter()
        .map(|(k, v)| format!("{k}\u{0}{v}\u{0}"))
        .collect();
    let h = crate::digest::sha256(canonical.as_bytes());
    format!("{PREFIX}{}", crate::digest::hex(&h[..8]))
}

pub struct External {
    state: Arc<AlertState>,
    resolve_timeout: chrono::Duration,
    /// When each open external alert ends unless posted again.
    until: Mutex<HashMap<String, DateTime<Utc>>>,
}

impl External {
    pub fn new(state: Arc<AlertState>, resolve_timeout: std::time::Duration) -> External {
        External {
            state,
            resolve_timeout: chrono::Duration::from_std(resolve_timeout)
                .unwrap_or(chrono::Duration::minutes(5)),
            until: Mutex::new(HashMap::new()),
        }
    }

    /// Takes posted alerts at `now`: fires the new, refreshes the open,
    /// resolves the ended. Returns the alerts that changed.
    pub fn receive(&self, posted: Vec<Posted>, now: DateTime<Utc>) -> Result<Vec<Alert>> {
        let mut changed = Vec::new();
        let mut until = self.until.lock().unwrap_or_else(|p| p.into_inner());
        for p in posted {
            let f = fingerprint(&p.labels);
            let open = self.state.open_seq(&f);
            let ended = p.ends_at.is_some_and(|e| e <= now);
            match (open, ended) {
                (Some(seq), true) => {
                    until.remove(&f);
                    changed.extend(self.state.resolve_by_system(seq, now)?);
                }
                (None, true) => {}
                (Some(_), false) => {
                    until.insert(f, p.ends_at.unwrap_or(now + self.resolve_timeout));
                }
                (None, false) => {
                    until.insert(f.clone(), p.ends_at.unwrap_or(now + self.resolve_timeout));
                    changed.push(self.state.fire(alert(&p, f, now), now)?);
                }
            }
        }
        Ok(changed)
    }

    /// Resolves the open external alerts not posted again in time (an
    /// alert open since before a restart gets one resolve timeout from the
    /// first sweep).
    pub fn sweep(&self, now: DateTime<Utc>) -> Result<Vec<Alert>> {
        let mut changed = Vec::new();
        let mut until = self.until.lock().unwrap_or_else(|p| p.into_inner());
        for (f, seq) in self.state.open_fingerprints() {
            if !f.starts_with(PREFIX) {
                continue;
            }
            let end = *until.entry(f.clone()).or_insert(now + self.resolve_timeout);
            if end <= now {
                until.remove(&f);
                changed.extend(self.state.resolve_by_system(seq, now)?);
            }
        }
        until.retain(|f, _| self.state.open_seq(f).is_some());
        Ok(changed)
    }
}

fn alert(p: &Posted, fingerprint: String, now: DateTime<Utc>) -> Alert {
    let name = p
        .labels
        .get("alertname")
        .cloned()
        .unwrap_or_else(|| "external".to_string());
    let service = p
        .labels
        .get("service")
        .or_else(|| p.labels.get("job"))
        .cloned()
        .unwrap_or_else(|| "external".to_string());
    let message = p
        .annotations
        .get("summary")
        .or_else(|| p.annotations.get("description"))
        .cloned()
        .unwrap_or_else(|| name.clone());
    let mut description = p
        .annotations
        .get("description")
        .cloned()
        .unwrap_or_default();
    if let Some(url) = &p.generator_url {
        if !description.is_empty() {
            description.push(' ');
        }
        description += &format!("(source: {url})");
    }
    // A start in the future is taken as now.
    let fired_at = p.starts_at.filter(|s| *s <= now).unwrap_or(now);
    // No value or threshold travels with an external alert: both stay
    // NaN, answered as `null`.
    Alert {
        message,
        description,
        service,
        labels: p.labels.clone(),
        ..Alert::firing(fingerprint, name, severity_of(&p.labels), fired_at, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn severity_and_identity_come_from_the_labels() {
        assert_eq!(
            severity_of(&labels(&[("severity", "Page")])),
            Severity::Critical
        );
        assert_eq!(
            severity_of(&labels(&[("severity", "info")])),
            Severity::Info
        );
        assert_eq!(severity_of(&labels(&[])), Severity::Warning);
        let a = fingerprint(&labels(&[("alertname", "X"), ("job", "j")]));
        assert!(a.starts_with(PREFIX));
        assert_eq!(a, fingerprint(&labels(&[("job", "j"), ("alertname", "X")])));
        assert_ne!(a, fingerprint(&labels(&[("alertname", "X"), ("job", "k")])));
        // Label boundaries count: ("ab","c") is not ("a","bc").
        assert_ne!(
            fingerprint(&labels(&[("ab", "c")])),
            fingerprint(&labels(&[("a", "bc")]))
        );
    }
}
