//! The alert state machine. Every evaluation (at an explicit time) runs each
//! rule against the store; per fingerprint (rule + series labels):
//! the condition must hold for the rule's `for` before an alert fires, and
//! stay clear for its `clear_after` before the alert resolves itself, so a
//! value hovering at the threshold does not flap. Open alerts are loaded
//! from sled at start, so a restart neither duplicates nor re-notifies.

use super::Alert;
use super::rule::{effective_rules, evaluate, render};
use super::state::AlertState;
use crate::config::Config;
use crate::config::alerting::RuleSpec;
use crate::error::Result;
use crate::shutdown::Shutdown;
use crate::store::Store;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// How often retention runs at most.
const PURGE_EVERY: chrono::Duration = chrono::Duration::hours(1);

#[derive(Default)]
struct Pending {
    /// Condition true since.
    since: Option<DateTime<Utc>>,
    /// Condition false (with an open alert) since.
    clear_since: Option<DateTime<Utc>>,
}

pub struct Engine {
    /// Swapped whole by a configuration reload.
    rules: std::sync::RwLock<Arc<Vec<RuleSpec>>>,
    pub state: Arc<AlertState>,
    /// Alerts posted by other engines (`POST /api/v2/alerts`).
    pub external: super::external::External,
    store: Store,
    retention: chrono::Duration,
    /// When retention last ran: it runs at most once per `PURGE_EVERY`, so
    /// the trail gets one `purged` record per batch, not one per evaluation.
    last_purge: Mutex<Option<DateTime<Utc>>>,
    pending: Mutex<HashMap<String, Pending>>,
}

/// The service an alert is about: its `service` label, else the area of the rule.
fn service_of(rule: &RuleSpec, labels: &BTreeMap<String, String>) -> String {
    if let Some(s) = labels.get("service") {
        return s.clone();
    }
    match rule.metric.as_str() {
        crate::platform::models::FAILED_METRIC => "model-loading".into(),
        crate::platform::training::JOB_FAILED_METRIC
        | crate::platform::training::JOB_STALE_METRIC => "training".into(),
        _ => "system".into(),
    }
}

impl Engine {
    pub fn new(config: &Config, store: Store, state: Arc<AlertState>) -> Engine {
        Engine {
            external: super::external::External::new(
                state.clone(),
                config.external_resolve_timeout,
            ),
            rules: std::sync::RwLock::new(Arc::new(effective_rules(config))),
            state,
            store,
            retention: chrono::Duration::days(config.alert_retention_days as i64),
            last_purge: Mutex::new(None),
            pending: Mutex::new(HashMap::new()),
        }
    }

    /// The rules evaluated now: the built-in ones, then the configured.
    pub fn rules(&self) -> Arc<Vec<RuleSpec>> {
        self.rules.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Applies reloaded rules from the next evaluation on. The open alerts
    /// of a rule that is gone resolve then, `resolved_by: config`.
    pub fn set_rules(&self, config: &Config) {
        *self.rules.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(effective_rules(config));
    }

    /// One evaluation cycle at `now`. Returns the alerts that changed.
    pub fn evaluate_at(&self, now: DateTime<Utc>) -> Result<Vec<Alert>> {
        let now_ms = now.timestamp_millis();
        let rules = self.rules();
        let mut changed = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        for r in rules.iter() {
            for (key, value) in evaluate(r, &self.store, now_ms)? {
                let fingerprint = format!("{}/{key}", r.name);
                let firing = value.is_some_and(|v| r.op.holds(v, r.threshold));
                let open = self.state.open_seq(&fingerprint);
                if open.is_none() && !firing {
                    // The common case: clear and nothing open. Nothing pends.
                    pending.remove(&fingerprint);
                    continue;
                }
                seen.insert(fingerprint.clone());
                let p = pending.entry(fingerprint.clone()).or_default();
                if firing {
                    p.clear_since = None;
                    let v = value.unwrap_or_default();
                    match open {
                        Some(seq) => self.state.touch(seq, v),
                        None => {
                            let since = *p.since.get_or_insert(now);
                            if now - since >= chrono::Duration::from_std(r.for_).unwrap_or_default()
                            {
                                let service = service_of(r, &key.labels);
                                let a = Alert {
                                    message: render(&r.message, r, &key, &service, v),
                                    description: render(&r.description, r, &key, &service, v),
                                    service,
                                    labels: key.labels.clone(),
                                    value: v,
                                    threshold: r.threshold,
                                    ..Alert::firing(
                                        fingerprint.clone(),
                                        r.name.clone(),
                                        r.severity,
                                        now,
                                        now,
                                    )
                                };
                                changed.push(self.state.fire(a, now)?);
                                p.since = None;
                            }
                        }
                    }
                } else {
                    p.since = None;
                    if let Some(seq) = open
                        && let Some(a) = self.clear(p, seq, r, now)?
                    {
                        changed.push(a);
                    }
                }
            }
        }
        // Open alerts whose series or rule is gone count as cleared (`seen`
        // holds every fingerprint evaluated that was open or firing).
        // External alerts resolve by their own clock (`external.rs`).
        let orphans = self.state.open_fingerprints();
        let orphans = orphans
            .into_iter()
            .filter(|(f, _)| !seen.contains(f) && !f.starts_with(super::external::PREFIX));
        for (f, seq) in orphans {
            let rule = rules
                .iter()
                .find(|r| f.starts_with(&format!("{}/", r.name)));
            let p = pending.entry(f).or_default();
            if let Some(r) = rule {
                if let Some(a) = self.clear(p, seq, r, now)? {
                    changed.push(a);
                }
            } else if let Some(a) = self.state.resolve_by_config(seq, now)? {
                // No rule of this name any more: the configuration changed.
                changed.push(a);
            }
        }
        drop(pending);
        changed.extend(self.external.sweep(now)?);
        changed.extend(self.state.escalate_due(now)?);
        let mut last = self.last_purge.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_none_or(|t| now - t >= PURGE_EVERY || now < t) {
            self.state.purge(now - self.retention, now)?;
            *last = Some(now);
        }
        Ok(changed)
    }

    fn clear(
        &self,
        p: &mut Pending,
        seq: u64,
        r: &RuleSpec,
        now: DateTime<Utc>,
    ) -> Result<Option<Alert>> {
        let since = *p.clear_since.get_or_insert(now);
        if now - since < chrono::Duration::from_std(r.clear_after).unwrap_or_default() {
            return Ok(None);
        }
        p.clear_since = None;
        self.state.resolve_by_system(seq, now)
    }
}

/// Evaluates every `interval` until shutdown; reports changes on `changes`.
pub async fn run(
    engine: Arc<Engine>,
    interval: std::time::Duration,
    changes: tokio::sync::broadcast::Sender<Alert>,
    mut shutdown: Shutdown,
) {
    let mut ticker = crate::shutdown::ticker(interval);
    while shutdown.tick(&mut ticker).await {
        let e = engine.clone();
        let changed = crate::blocking::run("alert evaluation", move || e.evaluate_at(Utc::now()));
        for a in changed.await.unwrap_or_default() {
            let _ = changes.send(a);
        }
    }
}
