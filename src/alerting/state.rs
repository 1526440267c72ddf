//! Persistent alert state: alerts, the audit trail, silences and the
//! notification outbox, each in its own sled tree and mirrored in memory.
//! Every mutation is flushed to disk before it returns, so an acknowledged
//! API call survives a crash right after the reply.

use super::outbox::Delivery;
use super::silence::Silence;
use super::{Alert, AlertStatus, AuditRecord, Event};
use crate::config::alerting::Severity;
use crate::error::{Error, Result};
use crate::store::{Store, codec};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

/// Why an operator action was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum ActionError {
    NotFound(String),
    Conflict(String),
}

pub struct Inner {
    pub alerts: BTreeMap<u64, Alert>,
    pub by_id: HashMap<String, u64>,
    /// Open (active or acknowledged) alert per fingerprint.
    pub open: HashMap<String, u64>,
    pub audit: Vec<AuditRecord>,
    pub silences: BTreeMap<String, Silence>,
    pub outbox: BTreeMap<u64, Delivery>,
    next_alert: u64,
    next_audit: u64,
    next_delivery: u64,
}

/// One lifecycle step of an alert, as it is audited and notified.
struct Change<'a> {
    action: &'a str,
    actor: &'a str,
    comment: Option<String>,
    /// The notification to queue and its channels (an acknowledgement
    /// notifies nobody).
    notify: Option<(Event, &'a [String])>,
}

pub struct AlertState {
    store: Store,
    alerts_tree: sled::Tree,
    audit_tree: sled::Tree,
    silences_tree: sled::Tree,
    outbox_tree: sled::Tree,
    inner: Mutex<Inner>,
    /// Signalled when a delivery is queued, so the notifier sleeps until
    /// there is work instead of polling the outbox.
    outbox_changed: tokio::sync::Notify,
}

fn load<T: serde::de::DeserializeOwned>(
    t: &sled::Tree,
    store: &Store,
) -> Result<Vec<(Vec<u8>, T)>> {
    t.iter()
        .map(|kv| {
            let (k, v) = kv.map_err(|e| store_err(store, e))?;
            let value = codec::decode(&v).map_err(|e| store_err(store, e))?;
            Ok((k.to_vec(), value))
        })
        .collect()
}

fn store_err(store: &Store, e: impl std::fmt::Display) -> Error {
    Error::Store {
        dir: store.dir().to_path_buf(),
        message: format!("alert state: {e}"),
    }
}

fn seq_of(k: &[u8]) -> u64 {
    k.try_into().map(u64::from_be_bytes).unwrap_or(0)
}

impl AlertState {
    pub fn open(store: &Store) -> Result<AlertState> {
        let (alerts_tree, audit_tree, silences_tree, outbox_tree) = (
            store.tree("alerts")?,
            store.tree("audit")?,
            store.tree("silences")?,
            store.tree("outbox")?,
        );
        let mut inner = Inner {
            alerts: BTreeMap::new(),
            by_id: HashMap::new(),
            open: HashMap::new(),
            audit: Vec::new(),
            silences: BTreeMap::new(),
            outbox: BTreeMap::new(),
            next_alert: 1,
            next_audit: 1,
            next_delivery: 1,
        };
        for (k, a) in load::<Alert>(&alerts_tree, store)? {
            let seq = seq_of(&k);
            inner.next_alert = inner.next_alert.max(seq + 1);
            inner.by_id.insert(a.alert_id.clone(), seq);
            if a.is_open() {
                inner.open.insert(a.fingerprint.clone(), seq);
            }
            inner.alerts.insert(seq, a);
        }
        for (_, r) in load::<AuditRecord>(&audit_tree, store)? {
            inner.next_audit = inner.next_audit.max(r.seq + 1);
            inner.audit.push(r);
        }
        for (_, s) in load::<Silence>(&silences_tree, store)? {
            inner.silences.insert(s.id.clone(), s);
        }
        for (k, d) in load::<Delivery>(&outbox_tree, store)? {
            let seq = seq_of(&k);
            inner.next_delivery = inner.next_delivery.max(seq + 1);
            inner.outbox.insert(seq, d);
        }
        Ok(AlertState {
            store: store.clone(),
            alerts_tree,
            audit_tree,
            silences_tree,
            outbox_tree,
            inner: Mutex::new(inner),
            outbox_changed: tokio::sync::Notify::new(),
        })
    }

    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn put_alert(&self, a: &Alert) -> Result<()> {
        self.alerts_tree
            .insert(a.seq.to_be_bytes(), codec::encode(a))
            .map_err(|e| store_err(&self.store, e))?;
        Ok(())
    }

    fn audit(&self, inner: &mut Inner, rec: AuditRecord) -> Result<()> {
        let mut rec = rec;
        rec.seq = inner.next_audit;
        inner.next_audit += 1;
        self.audit_tree
            .insert(rec.seq.to_be_bytes(), codec::encode(&rec))
            .map_err(|e| store_err(&self.store, e))?;
        inner.audit.push(rec);
        Ok(())
    }

    /// Appends an audit record about an alert (no delivery details).
    fn note(
        &self,
        inner: &mut Inner,
        alert_id: String,
        action: &str,
        actor: &str,
        comment: Option<String>,
        at: DateTime<Utc>,
    ) -> Result<()> {
        self.audit(
            inner,
            AuditRecord {
                seq: 0,
                at,
                alert_id: Some(alert_id),
                action: action.into(),
                actor: actor.into(),
                comment,
                details: BTreeMap::new(),
            },
        )
    }

    pub fn record(
        &self,
        alert_id: Option<&str>,
        action: &str,
        actor: &str,
        comment: Option<String>,
        details: BTreeMap<String, String>,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let mut inner = self.lock();
        self.audit(
            &mut inner,
            AuditRecord {
                seq: 0,
                at,
                alert_id: alert_id.map(str::to_string),
                action: action.into(),
                actor: actor.into(),
                comment,
                details,
            },
        )?;
        drop(inner);
        self.store.sync()
    }

    fn is_silenced(inner: &Inner, a: &Alert, now: DateTime<Utc>) -> bool {
        inner
            .silences
            .values()
            .any(|s| s.is_active(now) && s.matches(a))
    }

    /// Queues one delivery per channel (unless silenced) and records it.
    fn enqueue(
        &self,
        inner: &mut Inner,
        a: &Alert,
        event: Event,
        channels: &[String],
        now: DateTime<Utc>,
    ) -> Result<()> {
        tracing::warn!(alert_id = %a.alert_id, rule = %a.rule, severity = a.severity.as_str(), service = %a.service,
            event = event.as_str(), message = %a.message, "alert");
        if Self::is_silenced(inner, a, now) {
            if !channels.is_empty() {
                let why = format!(
                    "{} notification not sent: a silence matches",
                    event.as_str()
                );
                self.note(
                    inner,
                    a.alert_id.clone(),
                    "silenced",
                    "system",
                    Some(why),
                    now,
                )?;
            }
            return Ok(());
        }
        for ch in channels {
            let seq = inner.next_delivery;
            inner.next_delivery += 1;
            let d = Delivery {
                seq,
                channel: ch.clone(),
                event,
                alert: a.clone(),
                attempts: 0,
                next_at: now,
                created_at: now,
            };
            self.outbox_tree
                .insert(seq.to_be_bytes(), codec::encode(&d))
                .map_err(|e| store_err(&self.store, e))?;
            inner.outbox.insert(seq, d);
        }
        if !channels.is_empty() {
            self.outbox_changed.notify_one();
        }
        Ok(())
    }

    /// A new firing: a new alert with a new id.
    pub fn fire(&self, mut a: Alert, channels: &[String], now: DateTime<Utc>) -> Result<Alert> {
        let mut inner = self.lock();
        a.seq = inner.next_alert;
        inner.next_alert += 1;
        a.alert_id = format!("alert_{}_{}", now.format("%Y%m%d%H%M%S"), a.seq);
        a.silenced = Self::is_silenced(&inner, &a, now);
        self.put_alert(&a)?;
        inner.by_id.insert(a.alert_id.clone(), a.seq);
        inner.open.insert(a.fingerprint.clone(), a.seq);
        inner.alerts.insert(a.seq, a.clone());
        let why = format!(
            "{} (value {}, threshold {})",
            a.message, a.value, a.threshold
        );
        let change = Change {
            action: "fired",
            actor: "system",
            comment: Some(why),
            notify: Some((Event::Fired, channels)),
        };
        self.commit(inner, a, change, now)
    }

    /// Audits a change of an alert already written with `put_alert`, queues
    /// its notifications, and makes it all durable before the caller answers.
    fn commit(
        &self,
        mut inner: MutexGuard<'_, Inner>,
        a: Alert,
        change: Change<'_>,
        now: DateTime<Utc>,
    ) -> Result<Alert> {
        self.note(
            &mut inner,
            a.alert_id.clone(),
            change.action,
            change.actor,
            change.comment,
            now,
        )?;
        if let Some((event, channels)) = change.notify {
            self.enqueue(&mut inner, &a, event, channels, now)?;
        }
        drop(inner);
        self.store.sync()?;
        Ok(a)
    }

    /// Marks alert `seq` resolved by `by` and frees its fingerprint; `None`
    /// when there is no such open alert.
    fn mark_resolved(inner: &mut Inner, seq: u64, by: &str, now: DateTime<Utc>) -> Option<Alert> {
        let a = inner.alerts.get_mut(&seq).filter(|a| a.is_open())?;
        a.status = AlertStatus::Resolved;
        a.resolved_at = Some(now);
        a.resolved_by = Some(by.to_string());
        a.updated_at = now;
        let a = a.clone();
        inner.open.remove(&a.fingerprint);
        Some(a)
    }

    /// How many alerts were ever fired (the next sequence number) and how
    /// many are kept: the pair changes whenever an alert is added or purged.
    pub fn membership(&self) -> (u64, usize) {
        let inner = self.lock();
        (inner.next_alert, inner.alerts.len())
    }

    /// Updates the latest value of an open alert (not audited; not flushed).
    pub fn touch(&self, seq: u64, value: f64) {
        if let Some(a) = self.lock().alerts.get_mut(&seq) {
            a.value = value;
        }
    }

    /// The condition cleared: resolved by the system.
    pub fn resolve_by_system(
        &self,
        seq: u64,
        channels: &[String],
        now: DateTime<Utc>,
    ) -> Result<Option<Alert>> {
        let mut inner = self.lock();
        let Some(a) = Self::mark_resolved(&mut inner, seq, "system", now) else {
            return Ok(None);
        };
        let change = Change {
            action: "resolved",
            actor: "system",
            comment: Some("condition cleared".into()),
            notify: Some((Event::Resolved, channels)),
        };
        self.put_alert(&a)?;
        self.commit(inner, a, change, now).map(Some)
    }

    pub fn escalate(
        &self,
        seq: u64,
        channels: &[String],
        now: DateTime<Utc>,
    ) -> Result<Option<Alert>> {
        let mut inner = self.lock();
        let Some(a) = inner
            .alerts
            .get_mut(&seq)
            .filter(|a| a.status == AlertStatus::Active && !a.escalated)
        else {
            return Ok(None);
        };
        a.escalated = true;
        a.updated_at = now;
        let a = a.clone();
        let change = Change {
            action: "escalated",
            actor: "system",
            comment: Some("critical alert not acknowledged in time".into()),
            notify: Some((Event::Escalated, channels)),
        };
        self.put_alert(&a)?;
        self.commit(inner, a, change, now).map(Some)
    }

    /// An operator acknowledges an active alert.
    pub fn acknowledge(
        &self,
        id: &str,
        by: &str,
        comment: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<std::result::Result<Alert, ActionError>> {
        let mut inner = self.lock();
        let Some(seq) = inner.by_id.get(id).copied() else {
            return Ok(Err(ActionError::NotFound(format!(
                "no alert with alert_id '{id}'"
            ))));
        };
        let a = inner
            .alerts
            .get_mut(&seq)
            .expect("by_id points at an alert");
        match a.status {
            AlertStatus::Resolved => {
                return Ok(Err(ActionError::Conflict(format!(
                    "alert '{id}' is resolved; it cannot be acknowledged"
                ))));
            }
            AlertStatus::Acknowledged => {
                return Ok(Err(ActionError::Conflict(format!(
                    "alert '{id}' is already acknowledged by {}",
                    a.acknowledged_by.clone().unwrap_or_default()
                ))));
            }
            AlertStatus::Active => {}
        }
        a.status = AlertStatus::Acknowledged;
        a.acknowledged_at = Some(now);
        a.acknowledged_by = Some(by.to_string());
        a.updated_at = now;
        let a = a.clone();
        let change = Change {
            action: "acknowledged",
            actor: by,
            comment,
            notify: None,
        };
        self.put_alert(&a)?;
        self.commit(inner, a, change, now).map(Ok)
    }

    /// An operator resolves an open alert.
    pub fn resolve(
        &self,
        id: &str,
        by: &str,
        notes: Option<String>,
        channels: &[String],
        now: DateTime<Utc>,
    ) -> Result<std::result::Result<Alert, ActionError>> {
        let mut inner = self.lock();
        let Some(seq) = inner.by_id.get(id).copied() else {
            return Ok(Err(ActionError::NotFound(format!(
                "no alert with alert_id '{id}'"
            ))));
        };
        let Some(a) = Self::mark_resolved(&mut inner, seq, by, now) else {
            return Ok(Err(ActionError::Conflict(format!(
                "alert '{id}' is already resolved"
            ))));
        };
        let change = Change {
            action: "resolved",
            actor: by,
            comment: notes,
            notify: Some((Event::Resolved, channels)),
        };
        self.put_alert(&a)?;
        self.commit(inner, a, change, now).map(Ok)
    }

    /// Deletes resolved alerts (and their audit records) resolved before `cutoff`.
    pub fn purge(&self, cutoff: DateTime<Utc>) -> Result<usize> {
        let mut inner = self.lock();
        let old: Vec<(u64, String)> = inner
            .alerts
            .values()
            .filter(|a| {
                a.status == AlertStatus::Resolved && a.resolved_at.is_some_and(|t| t < cutoff)
            })
            .map(|a| (a.seq, a.alert_id.clone()))
            .collect();
        if old.is_empty() {
            return Ok(0);
        }
        let gone: std::collections::HashSet<String> =
            old.iter().map(|(_, id)| id.clone()).collect();
        for (seq, id) in &old {
            self.alerts_tree
                .remove(seq.to_be_bytes())
                .map_err(|e| store_err(&self.store, e))?;
            inner.alerts.remove(seq);
            inner.by_id.remove(id);
        }
        let mut kept = Vec::with_capacity(inner.audit.len());
        for r in std::mem::take(&mut inner.audit) {
            if r.alert_id.as_ref().is_some_and(|id| gone.contains(id)) {
                self.audit_tree
                    .remove(r.seq.to_be_bytes())
                    .map_err(|e| store_err(&self.store, e))?;
            } else {
                kept.push(r);
            }
        }
        inner.audit = kept;
        drop(inner);
        self.store.sync()?;
        Ok(old.len())
    }

    pub fn add_silence(&self, s: Silence) -> Result<Silence> {
        self.silences_tree
            .insert(s.id.as_bytes(), codec::encode(&s))
            .map_err(|e| store_err(&self.store, e))?;
        self.lock().silences.insert(s.id.clone(), s.clone());
        self.record(
            None,
            "silence_created",
            &s.created_by,
            Some(format!("{}: {}", s.id, s.comment)),
            BTreeMap::new(),
            s.created_at,
        )?;
        Ok(s)
    }

    pub fn delete_silence(&self, id: &str, now: DateTime<Utc>) -> Result<Option<Silence>> {
        let removed = self.lock().silences.remove(id);
        if removed.is_some() {
            self.silences_tree
                .remove(id.as_bytes())
                .map_err(|e| store_err(&self.store, e))?;
            self.record(
                None,
                "silence_deleted",
                "operator",
                Some(id.to_string()),
                BTreeMap::new(),
                now,
            )?;
        }
        Ok(removed)
    }

    /// Deliveries due at `now`.
    pub fn due(&self, now: DateTime<Utc>) -> Vec<Delivery> {
        self.lock()
            .outbox
            .values()
            .filter(|d| d.next_at <= now)
            .cloned()
            .collect()
    }

    /// When the earliest queued delivery is due (None: the outbox is empty).
    pub fn next_due(&self) -> Option<DateTime<Utc>> {
        self.lock().outbox.values().map(|d| d.next_at).min()
    }

    /// Resolves once a delivery has been queued since the last call
    /// returned (at once if one was queued while nobody waited).
    pub async fn outbox_changed(&self) {
        self.outbox_changed.notified().await
    }

    /// Records a delivery attempt: success removes it from the outbox.
    pub fn delivered(
        &self,
        d: &Delivery,
        ok: bool,
        http_status: Option<u16>,
        error: Option<String>,
        next_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut inner = self.lock();
        let attempt = d.attempts + 1;
        let mut details = BTreeMap::from([
            ("channel".to_string(), d.channel.clone()),
            ("event".to_string(), d.event.as_str().to_string()),
            ("attempt".to_string(), attempt.to_string()),
            (
                "outcome".to_string(),
                if ok { "delivered" } else { "failed" }.to_string(),
            ),
        ]);
        if let Some(s) = http_status {
            details.insert("http_status".into(), s.to_string());
        }
        if let Some(e) = &error {
            details.insert("error".into(), e.clone());
        }
        if ok {
            inner.outbox.remove(&d.seq);
            self.outbox_tree
                .remove(d.seq.to_be_bytes())
                .map_err(|e| store_err(&self.store, e))?;
        } else if let Some(x) = inner.outbox.get_mut(&d.seq) {
            x.attempts = attempt;
            x.next_at = next_at;
            let x = x.clone();
            self.outbox_tree
                .insert(x.seq.to_be_bytes(), codec::encode(&x))
                .map_err(|e| store_err(&self.store, e))?;
        }
        self.audit(
            &mut inner,
            AuditRecord {
                seq: 0,
                at: now,
                alert_id: Some(d.alert.alert_id.clone()),
                action: if ok {
                    "notified"
                } else {
                    "notification_failed"
                }
                .into(),
                actor: "system".into(),
                comment: None,
                details,
            },
        )?;
        drop(inner);
        self.store.sync()
    }

    pub fn get(&self, id: &str) -> Option<(Alert, Vec<AuditRecord>)> {
        let inner = self.lock();
        let a = inner
            .by_id
            .get(id)
            .and_then(|s| inner.alerts.get(s))?
            .clone();
        let history = inner
            .audit
            .iter()
            .filter(|r| r.alert_id.as_deref() == Some(id))
            .cloned()
            .collect();
        Some((a, history))
    }

    /// Open alerts' counts by severity (for the dashboard).
    pub fn open_counts(&self) -> (u64, [u64; 3]) {
        let inner = self.lock();
        let mut by = [0u64; 3];
        let mut active = 0;
        for seq in inner.open.values() {
            if let Some(a) = inner.alerts.get(seq) {
                if a.status == AlertStatus::Active {
                    active += 1;
                }
                by[match a.severity {
                    Severity::Critical => 0,
                    Severity::Warning => 1,
                    Severity::Info => 2,
                }] += 1;
            }
        }
        (active, by)
    }
}
