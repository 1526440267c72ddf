//! Persistent alert state behind one door: alerts, the audit trail,
//! silences and the notification outbox, each in its own sled tree and
//! mirrored in memory. Callers state intentions (fire, acknowledge, resolve,
//! escalate, silence, record a delivery) and ask questions (list, count,
//! history); nothing outside reads the indexes.
//!
//! Every change is written to sled first and applied to memory after, so a
//! failed write leaves both as they were; and it is flushed before it
//! returns, so an acknowledged API call survives a crash right after the
//! reply. Who is notified of a change is the `Router`'s decision.

use super::chain::{self, Link};
use super::outbox::{Delivery, Router};
use super::silence::Silence;
use super::{Actor, Alert, AlertStatus, AuditAction, AuditRecord, Event};
use crate::config::alerting::Severity;
use crate::error::{Error, Result};
use crate::query::Grid;
use crate::store::{Store, codec};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Why an operator action was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum ActionError {
    NotFound(String),
    Conflict(String),
}

/// Which alerts a listing keeps (every one when all are `None`).
#[derive(Clone, Debug, Default)]
pub struct AlertFilter {
    pub severity: Option<Severity>,
    pub status: Option<AlertStatus>,
    pub service: Option<String>,
}

impl AlertFilter {
    pub fn keeps(&self, a: &Alert) -> bool {
        self.severity.is_none_or(|s| s == a.severity)
            && self.status.is_none_or(|s| s == a.status)
            && self.service.as_ref().is_none_or(|s| s == &a.service)
    }
}

/// Counts over the alerts a filter keeps: `active` the ones not yet
/// acknowledged, the severities every open one (active or acknowledged).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AlertCounts {
    pub total: u64,
    pub active: u64,
    pub critical: u64,
    pub warning: u64,
    pub info: u64,
}

impl AlertCounts {
    fn add(&mut self, a: &Alert) {
        self.total += 1;
        if a.status == AlertStatus::Active {
            self.active += 1;
        }
        if a.is_open() {
            match a.severity {
                Severity::Critical => self.critical += 1,
                Severity::Warning => self.warning += 1,
                Severity::Info => self.info += 1,
            }
        }
    }
}

/// A page of alerts, newest first, with the counts over all that matched.
#[derive(Clone, Debug, Default)]
pub struct AlertList {
    pub alerts: Vec<Alert>,
    pub counts: AlertCounts,
}

/// Alerts fired per point of a grid, by severity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FiredPerStep {
    pub per_severity: Vec<(Severity, Vec<u64>)>,
    pub total: usize,
}

/// What a retention purge deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Purged {
    pub alerts: usize,
    pub records: usize,
}

/// Which audit records a listing keeps.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub alert_id: Option<String>,
    pub action: Option<AuditAction>,
    pub actor: Option<String>,
}

impl AuditFilter {
    fn keeps(&self, r: &AuditRecord) -> bool {
        self.alert_id
            .as_ref()
            .is_none_or(|id| r.alert_id.as_ref() == Some(id))
            && self.action.is_none_or(|a| r.action == a.as_str())
            && self.actor.as_ref().is_none_or(|a| &r.actor == a)
    }
}

struct Inner {
    alerts: BTreeMap<u64, Alert>,
    by_id: HashMap<String, u64>,
    /// Open (active or acknowledged) alert per fingerprint.
    open: HashMap<String, u64>,
    audit: Vec<AuditRecord>,
    /// The audit chain's last link (the next record points at it).
    audit_head: Link,
    silences: BTreeMap<String, Silence>,
    outbox: BTreeMap<u64, Delivery>,
    next_alert: u64,
    next_audit: u64,
    next_delivery: u64,
}

impl Inner {
    /// Puts a written alert in memory and keeps the open index right.
    fn apply(&mut self, a: &Alert) {
        self.by_id.insert(a.alert_id.clone(), a.seq);
        if a.is_open() {
            self.open.insert(a.fingerprint.clone(), a.seq);
        } else if self.open.get(&a.fingerprint) == Some(&a.seq) {
            self.open.remove(&a.fingerprint);
        }
        self.alerts.insert(a.seq, a.clone());
    }

    fn seq_of_id(&self, id: &str) -> std::result::Result<u64, ActionError> {
        self.by_id
            .get(id)
            .copied()
            .ok_or_else(|| ActionError::NotFound(format!("no alert with alert_id '{id}'")))
    }
}

/// One lifecycle step of an alert, as it is audited and notified.
struct Change {
    action: AuditAction,
    actor: Actor,
    comment: Option<String>,
    /// The notification to queue (an acknowledgement notifies nobody).
    notify: Option<Event>,
}

pub struct AlertState {
    store: Store,
    alerts_tree: crate::store::Vault,
    audit_tree: crate::store::Vault,
    silences_tree: crate::store::Vault,
    outbox_tree: crate::store::Vault,
    /// Swapped whole by a configuration reload.
    router: std::sync::RwLock<std::sync::Arc<Router>>,
    inner: Mutex<Inner>,
    /// Bumped by every change, so answers can be cached per version.
    version: AtomicU64,
    /// Signalled when a delivery is queued, so the notifier sleeps until
    /// there is work instead of polling the outbox.
    outbox_changed: tokio::sync::Notify,
    /// Delivery attempts by channel and outcome (`GET /metrics`).
    deliveries: crate::telemetry::Counters<(String, &'static str)>,
}

fn load<T: serde::de::DeserializeOwned>(
    t: &crate::store::Vault,
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

/// `a` resolved by `by` at `now`, if it is open.
fn resolved(a: &Alert, by: &str, now: DateTime<Utc>) -> Option<Alert> {
    if !a.is_open() {
        return None;
    }
    let mut a = a.clone();
    a.status = AlertStatus::Resolved;
    a.resolved_at = Some(now);
    a.resolved_by = Some(by.to_string());
    a.updated_at = now;
    Some(a)
}

impl AlertState {
    pub fn open(store: &Store, router: Router) -> Result<AlertState> {
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
            audit_head: Link::START,
            silences: BTreeMap::new(),
            outbox: BTreeMap::new(),
            next_alert: 1,
            next_audit: 1,
            next_delivery: 1,
        };
        for (k, mut a) in load::<Alert>(&alerts_tree, store)? {
            a.seq = seq_of(&k);
            inner.next_alert = inner.next_alert.max(a.seq + 1);
            inner.apply(&a);
        }
        let trail = chain::load(&audit_tree).map_err(|e| store_err(store, e))?;
        inner.audit_head = trail.head;
        inner.next_audit = trail.head.seq + 1;
        inner.audit = trail.records;
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
            router: std::sync::RwLock::new(std::sync::Arc::new(router)),
            inner: Mutex::new(inner),
            version: AtomicU64::new(0),
            outbox_changed: tokio::sync::Notify::new(),
            deliveries: Default::default(),
        })
    }

    /// Alerts, audit trail, silences and outbox, copied together while no
    /// change can reach them (a backup).
    pub fn copy_trees(&self) -> Result<Vec<crate::store::frozen::TreeCopy>> {
        let _no_change = self.lock();
        [
            &self.alerts_tree,
            &self.audit_tree,
            &self.silences_tree,
            &self.outbox_tree,
        ]
        .into_iter()
        .map(|t| crate::store::frozen::copy_tree(t.raw()).map_err(|e| store_err(&self.store, e)))
        .collect()
    }

    /// Who gets which notification, as configured now.
    pub fn router(&self) -> std::sync::Arc<Router> {
        self.router
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Applies reloaded channels, routes and escalation: deliveries queued
    /// from now on follow them.
    pub fn set_router(&self, router: Router) {
        *self.router.write().unwrap_or_else(|p| p.into_inner()) = std::sync::Arc::new(router);
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn changed(&self) {
        self.version.fetch_add(1, Ordering::Relaxed);
    }

    /// A number that changes whenever anything in the state does.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Relaxed)
    }

    fn put_alert(&self, a: &Alert) -> Result<()> {
        self.alerts_tree
            .insert(a.seq.to_be_bytes(), codec::encode(a))
            .map_err(|e| store_err(&self.store, e))?;
        Ok(())
    }

    /// Appends `rec` to the trail, chained to the one before it.
    fn audit(&self, inner: &mut Inner, rec: AuditRecord) -> Result<()> {
        let mut rec = rec;
        rec.seq = inner.next_audit;
        rec.prev_hash = inner.audit_head.hash;
        let mut batch = crate::store::vault::Batch::default();
        let rec = chain::append(&mut batch, rec);
        self.audit_tree
            .apply_batch(batch)
            .map_err(|e| store_err(&self.store, e))?;
        inner.next_audit += 1;
        inner.audit_head = Link {
            seq: rec.seq,
            hash: rec.hash,
        };
        inner.audit.push(rec);
        Ok(())
    }

    /// Appends an audit record (no delivery details).
    fn note(
        &self,
        inner: &mut Inner,
        alert_id: Option<String>,
        action: AuditAction,
        actor: &Actor,
        comment: Option<String>,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let mut details = BTreeMap::new();
        if let Some(t) = &actor.token {
            details.insert("token".to_string(), t.clone());
        }
        self.audit(
            inner,
            AuditRecord {
                seq: 0,
                at,
                alert_id,
                action: action.as_str().into(),
                actor: actor.name.clone(),
                comment,
                details,
                prev_hash: chain::GENESIS,
                hash: chain::GENESIS,
            },
        )
    }

    /// Records an access-control event (a token created or revoked, an
    /// address blocked), durable before it returns.
    pub fn record_access(
        &self,
        action: AuditAction,
        actor: &Actor,
        comment: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut inner = self.lock();
        self.note(&mut inner, None, action, actor, comment, now)?;
        drop(inner);
        self.store.sync()
    }

    fn is_silenced(inner: &Inner, a: &Alert, now: DateTime<Utc>) -> bool {
        inner
            .silences
            .values()
            .any(|s| s.is_active(now) && s.matches(a))
    }

    /// Queues one delivery per routed channel (unless silenced) and records it.
    fn enqueue(
        &self,
        inner: &mut Inner,
        a: &Alert,
        event: Event,
        now: DateTime<Utc>,
    ) -> Result<()> {
        tracing::warn!(alert_id = %a.alert_id, rule = %a.rule, severity = a.severity.as_str(), service = %a.service,
            event = event.as_str(), message = %a.message, "alert");
        let channels = self.router().channels(a, event);
        if Self::is_silenced(inner, a, now) {
            if !channels.is_empty() {
                let why = format!(
                    "{} notification not sent: a silence matches",
                    event.as_str()
                );
                self.note(
                    inner,
                    Some(a.alert_id.clone()),
                    AuditAction::Silenced,
                    &Actor::from("system"),
                    Some(why),
                    now,
                )?;
            }
            return Ok(());
        }
        for ch in &channels {
            let seq = inner.next_delivery;
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
            inner.next_delivery += 1;
            inner.outbox.insert(seq, d);
        }
        if !channels.is_empty() {
            self.outbox_changed.notify_one();
        }
        Ok(())
    }

    /// Writes `a` (a new or changed alert), puts it in memory, audits the
    /// change, queues its notifications, and makes it all durable before
    /// the caller answers.
    fn commit(
        &self,
        mut inner: MutexGuard<'_, Inner>,
        a: Alert,
        change: Change,
        now: DateTime<Utc>,
    ) -> Result<Alert> {
        self.put_alert(&a)?;
        inner.apply(&a);
        self.changed();
        self.note(
            &mut inner,
            Some(a.alert_id.clone()),
            change.action,
            &change.actor,
            change.comment,
            now,
        )?;
        if let Some(event) = change.notify {
            self.enqueue(&mut inner, &a, event, now)?;
        }
        drop(inner);
        self.store.sync()?;
        Ok(a)
    }

    /// A new firing: a new alert with a new id.
    pub fn fire(&self, mut a: Alert, now: DateTime<Utc>) -> Result<Alert> {
        let mut inner = self.lock();
        a.seq = inner.next_alert;
        a.alert_id = format!("alert_{}_{}", now.format("%Y%m%d%H%M%S"), a.seq);
        a.silenced = Self::is_silenced(&inner, &a, now);
        // A failed write skips this number; none is ever used twice.
        inner.next_alert += 1;
        // An alert posted from outside has no value or threshold of ours.
        let why = if a.value.is_finite() && a.threshold.is_finite() {
            format!(
                "{} (value {}, threshold {})",
                a.message, a.value, a.threshold
            )
        } else {
            a.message.clone()
        };
        let change = Change {
            action: AuditAction::Fired,
            actor: Actor::from("system"),
            comment: Some(why),
            notify: Some(Event::Fired),
        };
        self.commit(inner, a, change, now)
    }

    /// How many alerts were ever fired (the next sequence number) and how
    /// many are kept: the pair changes whenever an alert is added or purged.
    pub fn membership(&self) -> (u64, usize) {
        let inner = self.lock();
        (inner.next_alert, inner.alerts.len())
    }

    /// Updates the latest value of an open alert (not audited; not flushed).
    /// The version moves only when the value does, so cached listings stay
    /// valid across evaluations of a steady condition.
    pub fn touch(&self, seq: u64, value: f64) {
        if let Some(a) = self.lock().alerts.get_mut(&seq)
            && a.value.to_bits() != value.to_bits()
        {
            a.value = value;
            self.changed();
        }
    }

    /// The open alert of `fingerprint`, by sequence number.
    pub fn open_seq(&self, fingerprint: &str) -> Option<u64> {
        self.lock().open.get(fingerprint).copied()
    }

    /// Every open alert's fingerprint and sequence number.
    pub fn open_fingerprints(&self) -> Vec<(String, u64)> {
        self.lock()
            .open
            .iter()
            .map(|(f, s)| (f.clone(), *s))
            .collect()
    }

    /// The condition cleared: resolved by the system.
    pub fn resolve_by_system(&self, seq: u64, now: DateTime<Utc>) -> Result<Option<Alert>> {
        self.resolve_as(seq, now, "system", "condition cleared")
    }

    /// Resolves an open alert whose rule a reload removed (`resolved_by: config`).
    pub fn resolve_by_config(&self, seq: u64, now: DateTime<Utc>) -> Result<Option<Alert>> {
        self.resolve_as(
            seq,
            now,
            "config",
            "its rule was removed from the configuration",
        )
    }

    fn resolve_as(
        &self,
        seq: u64,
        now: DateTime<Utc>,
        by: &str,
        why: &str,
    ) -> Result<Option<Alert>> {
        let inner = self.lock();
        let Some(a) = inner.alerts.get(&seq).and_then(|a| resolved(a, by, now)) else {
            return Ok(None);
        };
        let change = Change {
            action: AuditAction::Resolved,
            actor: Actor::from(by),
            comment: Some(why.into()),
            notify: Some(Event::Resolved),
        };
        self.commit(inner, a, change, now).map(Some)
    }

    /// Escalates every active critical alert not acknowledged within the
    /// configured time (none when no escalation is configured).
    pub fn escalate_due(&self, now: DateTime<Utc>) -> Result<Vec<Alert>> {
        let Some(after) = self.router().escalate_after() else {
            return Ok(Vec::new());
        };
        let after = chrono::Duration::from_std(after).unwrap_or_default();
        let due: Vec<u64> = {
            let inner = self.lock();
            inner
                .open
                .values()
                .filter_map(|s| inner.alerts.get(s))
                .filter(|a| {
                    a.status == AlertStatus::Active
                        && a.severity == Severity::Critical
                        && !a.escalated
                        && now - a.fired_at >= after
                })
                .map(|a| a.seq)
                .collect()
        };
        let mut out = Vec::new();
        for seq in due {
            if let Some(a) = self.escalate(seq, now)? {
                out.push(a);
            }
        }
        Ok(out)
    }

    fn escalate(&self, seq: u64, now: DateTime<Utc>) -> Result<Option<Alert>> {
        let inner = self.lock();
        let Some(mut a) = inner
            .alerts
            .get(&seq)
            .filter(|a| a.status == AlertStatus::Active && !a.escalated)
            .cloned()
        else {
            return Ok(None);
        };
        a.escalated = true;
        a.updated_at = now;
        let change = Change {
            action: AuditAction::Escalated,
            actor: Actor::from("system"),
            comment: Some("critical alert not acknowledged in time".into()),
            notify: Some(Event::Escalated),
        };
        self.commit(inner, a, change, now).map(Some)
    }

    /// An operator acknowledges an active alert.
    pub fn acknowledge(
        &self,
        id: &str,
        by: impl Into<Actor>,
        comment: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<std::result::Result<Alert, ActionError>> {
        let by: Actor = by.into();
        let inner = self.lock();
        let seq = match inner.seq_of_id(id) {
            Ok(seq) => seq,
            Err(e) => return Ok(Err(e)),
        };
        let mut a = inner
            .alerts
            .get(&seq)
            .expect("by_id points at an alert")
            .clone();
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
        a.acknowledged_by = Some(by.name.clone());
        a.updated_at = now;
        let change = Change {
            action: AuditAction::Acknowledged,
            actor: by,
            comment,
            notify: None,
        };
        self.commit(inner, a, change, now).map(Ok)
    }

    /// An operator resolves an open alert.
    pub fn resolve(
        &self,
        id: &str,
        by: impl Into<Actor>,
        notes: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<std::result::Result<Alert, ActionError>> {
        let by: Actor = by.into();
        let inner = self.lock();
        let seq = match inner.seq_of_id(id) {
            Ok(seq) => seq,
            Err(e) => return Ok(Err(e)),
        };
        let Some(a) = inner
            .alerts
            .get(&seq)
            .and_then(|a| resolved(a, &by.name, now))
        else {
            return Ok(Err(ActionError::Conflict(format!(
                "alert '{id}' is already resolved"
            ))));
        };
        let change = Change {
            action: AuditAction::Resolved,
            actor: by,
            comment: notes,
            notify: Some(Event::Resolved),
        };
        self.commit(inner, a, change, now).map(Ok)
    }

    /// Applies retention at `cutoff`: deletes the alerts resolved before it
    /// and the audit records made before it (the oldest, in order, so the
    /// rest of the chain still verifies from the new anchor), and records
    /// what went in one `purged` audit record.
    pub fn purge(&self, cutoff: DateTime<Utc>, now: DateTime<Utc>) -> Result<Purged> {
        let mut inner = self.lock();
        let old: Vec<(u64, String)> = inner
            .alerts
            .values()
            .filter(|a| {
                a.status == AlertStatus::Resolved && a.resolved_at.is_some_and(|t| t < cutoff)
            })
            .map(|a| (a.seq, a.alert_id.clone()))
            .collect();
        let records = inner.audit.iter().take_while(|r| r.at < cutoff).count();
        if old.is_empty() && records == 0 {
            return Ok(Purged::default());
        }
        let mut alerts = crate::store::vault::Batch::default();
        for (seq, _) in &old {
            alerts.remove(&seq.to_be_bytes());
        }
        let mut trail = crate::store::vault::Batch::default();
        let anchor = chain::cut(&mut trail, &inner.audit[..records]);
        // Each batch is atomic; memory follows only what reached sled.
        self.alerts_tree
            .apply_batch(alerts)
            .map_err(|e| store_err(&self.store, e))?;
        self.changed();
        for (seq, id) in &old {
            inner.alerts.remove(seq);
            inner.by_id.remove(id);
        }
        self.audit_tree
            .apply_batch(trail)
            .map_err(|e| store_err(&self.store, e))?;
        inner.audit.drain(..records);
        let mut comment = format!(
            "{} resolved alert(s) and {records} audit record(s) from before {} deleted",
            old.len(),
            crate::time::ts(cutoff)
        );
        if let Some(a) = anchor {
            comment += &format!(
                "; the chain now starts after record {} (hash {})",
                a.seq,
                chain::hex(&a.hash)
            );
        }
        self.note(
            &mut inner,
            None,
            AuditAction::Purged,
            &Actor::from("system"),
            Some(comment),
            now,
        )?;
        drop(inner);
        self.store.sync()?;
        Ok(Purged {
            alerts: old.len(),
            records,
        })
    }

    /// Adds a silence created with `token` (`None`: access control off).
    pub fn add_silence(&self, s: Silence, token: Option<&str>) -> Result<Silence> {
        let mut inner = self.lock();
        self.silences_tree
            .insert(s.id.as_bytes(), codec::encode(&s))
            .map_err(|e| store_err(&self.store, e))?;
        inner.silences.insert(s.id.clone(), s.clone());
        self.changed();
        self.note(
            &mut inner,
            None,
            AuditAction::SilenceCreated,
            &Actor::new(&s.created_by, token),
            Some(format!("{}: {}", s.id, s.comment)),
            s.created_at,
        )?;
        drop(inner);
        self.store.sync()?;
        Ok(s)
    }

    pub fn delete_silence(
        &self,
        id: &str,
        by: impl Into<Actor>,
        now: DateTime<Utc>,
    ) -> Result<Option<Silence>> {
        let by: Actor = by.into();
        let mut inner = self.lock();
        if !inner.silences.contains_key(id) {
            return Ok(None);
        }
        self.silences_tree
            .remove(id.as_bytes())
            .map_err(|e| store_err(&self.store, e))?;
        let removed = inner.silences.remove(id);
        self.changed();
        self.note(
            &mut inner,
            None,
            AuditAction::SilenceDeleted,
            &by,
            Some(id.to_string()),
            now,
        )?;
        drop(inner);
        self.store.sync()?;
        Ok(removed)
    }

    /// Every silence, expired ones included, by id.
    pub fn silences(&self) -> Vec<Silence> {
        self.lock().silences.values().cloned().collect()
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

    /// Records a delivery attempt: success removes it from the outbox, a
    /// failure sets its next attempt at `next_at`.
    pub fn delivered(
        &self,
        d: &Delivery,
        ok: bool,
        http_status: Option<u16>,
        error: Option<String>,
        next_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.deliveries
            .add((d.channel.clone(), if ok { "sent" } else { "failed" }), 1);
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
            self.outbox_tree
                .remove(d.seq.to_be_bytes())
                .map_err(|e| store_err(&self.store, e))?;
            inner.outbox.remove(&d.seq);
        } else if let Some(x) = inner.outbox.get(&d.seq) {
            let mut x = x.clone();
            x.attempts = attempt;
            x.next_at = next_at;
            self.outbox_tree
                .insert(x.seq.to_be_bytes(), codec::encode(&x))
                .map_err(|e| store_err(&self.store, e))?;
            inner.outbox.insert(x.seq, x);
        }
        self.changed();
        self.audit(
            &mut inner,
            AuditRecord {
                seq: 0,
                at: now,
                alert_id: Some(d.alert.alert_id.clone()),
                action: if ok {
                    AuditAction::Notified
                } else {
                    AuditAction::NotificationFailed
                }
                .as_str()
                .into(),
                actor: "system".into(),
                comment: None,
                details,
                prev_hash: chain::GENESIS,
                hash: chain::GENESIS,
            },
        )?;
        drop(inner);
        self.store.sync()
    }

    /// Delivery attempts since start by channel and outcome (`sent`, `failed`).
    pub fn deliveries(&self) -> Vec<((String, &'static str), u64)> {
        self.deliveries.snapshot()
    }

    /// Deliveries waiting in the outbox.
    pub fn queued(&self) -> usize {
        self.lock().outbox.len()
    }

    /// An alert and its history (every audit record about it, oldest first).
    pub fn history(&self, id: &str, now: DateTime<Utc>) -> Option<(Alert, Vec<AuditRecord>)> {
        let inner = self.lock();
        let a = inner.by_id.get(id).and_then(|s| inner.alerts.get(s))?;
        let a = Self::as_of(&inner, a, now);
        let history = inner
            .audit
            .iter()
            .filter(|r| r.alert_id.as_deref() == Some(id))
            .cloned()
            .collect();
        Some((a, history))
    }

    /// The newest `limit` alerts that `filter` keeps, and the counts over
    /// every one it keeps.
    pub fn list(&self, filter: &AlertFilter, limit: usize, now: DateTime<Utc>) -> AlertList {
        let inner = self.lock();
        let mut out = AlertList::default();
        // Newest first: alerts are keyed by creation order.
        for a in inner.alerts.values().rev().filter(|a| filter.keeps(a)) {
            out.counts.add(a);
            if out.alerts.len() < limit {
                out.alerts.push(Self::as_of(&inner, a, now));
            }
        }
        out
    }

    /// A copy of `a` as it stands at `now`: an open alert is `silenced`
    /// while a silence matches it (a silence made after it fired counts, an
    /// expired one no longer does); a resolved one keeps what it was.
    fn as_of(inner: &Inner, a: &Alert, now: DateTime<Utc>) -> Alert {
        let mut a = a.clone();
        if a.status != AlertStatus::Resolved {
            a.silenced = Self::is_silenced(inner, &a, now);
        }
        a
    }

    /// How many silence starts and ends have passed by `now`: an alert's
    /// `silenced` can change only when this or `version` does (a cache key).
    pub fn silence_epoch(&self, now: DateTime<Utc>) -> u64 {
        let inner = self.lock();
        inner
            .silences
            .values()
            .map(|s| u64::from(s.starts_at <= now) + u64::from(s.ends_at <= now))
            .sum()
    }

    /// The counts over every stored alert (what `list` counts with no
    /// filter), from the open ones only.
    pub fn counts(&self) -> AlertCounts {
        let inner = self.lock();
        let mut c = AlertCounts::default();
        for a in inner.open.values().filter_map(|s| inner.alerts.get(s)) {
            c.add(a);
        }
        c.total = inner.alerts.len() as u64;
        c
    }

    /// The newest `limit` audit records that `filter` keeps.
    pub fn audit_records(&self, filter: &AuditFilter, limit: usize) -> Vec<AuditRecord> {
        self.lock()
            .audit
            .iter()
            .rev()
            .filter(|r| filter.keeps(r))
            .take(limit)
            .cloned()
            .collect()
    }

    /// Up to `n` audit records after sequence number `after`, oldest first
    /// (a page of the export).
    pub fn audit_after(&self, after: u64, n: usize) -> Vec<AuditRecord> {
        let inner = self.lock();
        let from = inner.audit.partition_point(|r| r.seq <= after);
        inner.audit[from..].iter().take(n).cloned().collect()
    }

    /// How many alerts fired in each point of `grid`, per severity (every
    /// severity, most severe first, or only `only`), and how many in all.
    pub fn fired_per_step(&self, grid: &Grid, only: Option<Severity>) -> FiredPerStep {
        let severities = match only {
            Some(s) => vec![s],
            None => vec![Severity::Critical, Severity::Warning, Severity::Info],
        };
        let mut out = FiredPerStep {
            per_severity: severities
                .into_iter()
                .map(|s| (s, vec![0; grid.len()]))
                .collect(),
            total: 0,
        };
        for a in self.lock().alerts.values() {
            let Some(i) = grid.index_of(a.fired_at.timestamp_millis()) else {
                continue;
            };
            if let Some((_, counts)) = out.per_severity.iter_mut().find(|(s, _)| *s == a.severity) {
                counts[i] += 1;
                out.total += 1;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::alerting::{ChannelKind, ChannelSpec, EscalationSpec};
    use chrono::TimeZone;
    use std::time::Duration;

    fn t(s: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::seconds(s)
    }

    fn router() -> Router {
        Router::new(
            vec![ChannelSpec {
                name: "hook".into(),
                kind: ChannelKind::Webhook,
                url: "http://127.0.0.1:9/".into(),
            }],
            vec![],
            Some(EscalationSpec {
                after: Duration::from_secs(60),
                channels: vec!["pager".into()],
            }),
        )
    }

    fn open(dir: &std::path::Path) -> (Store, AlertState) {
        let store = Store::open(
            dir,
            crate::store::Layout::new(Duration::from_secs(5), 3),
            100,
        )
        .expect("store");
        let state = AlertState::open(&store, router()).expect("state");
        (store, state)
    }

    fn alert(fingerprint: &str, severity: Severity) -> Alert {
        Alert {
            message: "m".into(),
            description: "d".into(),
            service: "api".into(),
            value: 2.0,
            threshold: 1.0,
            ..Alert::firing(fingerprint.into(), "r".into(), severity, t(0), t(0))
        }
    }

    fn actions(state: &AlertState) -> Vec<String> {
        let mut all = state.audit_records(&AuditFilter::default(), usize::MAX);
        all.reverse();
        all.into_iter().map(|r| r.action).collect()
    }

    #[test]
    fn lifecycle_transitions_refusals_and_their_audit_trail() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_store, st) = open(dir.path());
        let a = st.fire(alert("r/x", Severity::Critical), t(0)).unwrap();
        assert_eq!(st.open_seq("r/x"), Some(a.seq));
        let v = st.version();
        st.touch(a.seq, a.value);
        assert_eq!(st.version(), v, "the same value changes nothing");
        st.touch(a.seq, a.value + 1.0);
        assert!(st.version() > v);
        let v0 = st.version();
        let ack = st
            .acknowledge(&a.alert_id, "ann", None, t(1))
            .unwrap()
            .unwrap();
        assert_eq!(ack.status, AlertStatus::Acknowledged);
        assert!(st.version() > v0);
        assert!(matches!(
            st.acknowledge(&a.alert_id, "bob", None, t(2)).unwrap(),
            Err(ActionError::Conflict(m)) if m.contains("already acknowledged by ann")
        ));
        assert!(matches!(
            st.resolve("alert_nope", "bob", None, t(2)).unwrap(),
            Err(ActionError::NotFound(_))
        ));
        let done = st
            .resolve(&a.alert_id, "bob", Some("fixed".into()), t(3))
            .unwrap()
            .unwrap();
        assert_eq!(done.resolved_by.as_deref(), Some("bob"));
        assert_eq!(st.open_seq("r/x"), None, "the fingerprint is free again");
        assert!(matches!(
            st.acknowledge(&a.alert_id, "ann", None, t(4)).unwrap(),
            Err(ActionError::Conflict(_))
        ));
        assert_eq!(actions(&st), ["fired", "acknowledged", "resolved"]);
        // Fired and resolved notify the one channel; acknowledged nobody.
        let due = st.due(t(5));
        assert_eq!(
            due.iter()
                .map(|d| (d.channel.as_str(), d.event))
                .collect::<Vec<_>>(),
            [("hook", Event::Fired), ("hook", Event::Resolved)]
        );
    }

    #[test]
    fn memory_is_what_disk_holds() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (list, counts, audit) = {
            let (_store, st) = open(dir.path());
            let a = st.fire(alert("r/a", Severity::Critical), t(0)).unwrap();
            st.fire(alert("r/b", Severity::Warning), t(1)).unwrap();
            st.acknowledge(&a.alert_id, "ann", Some("on it".into()), t(2))
                .unwrap()
                .unwrap();
            let d = st.due(t(3)).remove(0);
            st.delivered(&d, false, Some(500), Some("boom".into()), t(60), t(3))
                .unwrap();
            (
                st.list(&AlertFilter::default(), 10, Utc::now()).alerts,
                st.counts(),
                st.audit_records(&AuditFilter::default(), 100),
            )
        };
        let (_store, st) = open(dir.path());
        assert_eq!(
            st.list(&AlertFilter::default(), 10, Utc::now()).alerts,
            list
        );
        assert_eq!(st.counts(), counts);
        assert_eq!(st.audit_records(&AuditFilter::default(), 100), audit);
        assert_eq!(
            counts,
            AlertCounts {
                total: 2,
                active: 1,
                critical: 1,
                warning: 1,
                info: 0
            }
        );
        // The failed attempt waits for its retry time.
        assert_eq!(st.next_due(), Some(t(1)));
        assert_eq!(st.due(t(30)).len(), 1, "the other delivery is still due");
    }

    #[test]
    fn escalation_adds_its_channels_and_happens_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_store, st) = open(dir.path());
        st.fire(alert("r/c", Severity::Critical), t(0)).unwrap();
        st.fire(alert("r/w", Severity::Warning), t(0)).unwrap();
        assert!(st.escalate_due(t(59)).unwrap().is_empty());
        let up = st.escalate_due(t(60)).unwrap();
        assert_eq!(up.len(), 1);
        assert_eq!(up[0].fingerprint, "r/c");
        assert!(st.escalate_due(t(120)).unwrap().is_empty(), "once");
        let escalated: Vec<String> = st
            .due(t(61))
            .into_iter()
            .filter(|d| d.event == Event::Escalated)
            .map(|d| d.channel)
            .collect();
        assert_eq!(escalated, ["hook", "pager"]);
    }

    #[test]
    fn alerts_are_counted_in_the_step_they_fired() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_store, st) = open(dir.path());
        for (f, sev, at) in [
            ("r/1", Severity::Critical, 0),
            ("r/2", Severity::Warning, 59),
            ("r/3", Severity::Warning, 60),
            ("r/4", Severity::Info, 600), // after the grid
        ] {
            let mut a = alert(f, sev);
            a.fired_at = t(at);
            st.fire(a, t(at)).unwrap();
        }
        let g = Grid {
            from: t(0).timestamp_millis(),
            to: t(180).timestamp_millis(),
            step: 60_000,
        };
        let all = st.fired_per_step(&g, None);
        assert_eq!(all.total, 3);
        assert_eq!(
            all.per_severity,
            [
                (Severity::Critical, vec![1, 0, 0]),
                (Severity::Warning, vec![1, 1, 0]),
                (Severity::Info, vec![0, 0, 0]),
            ]
        );
        let warnings = st.fired_per_step(&g, Some(Severity::Warning));
        assert_eq!(warnings.total, 2);
        assert_eq!(warnings.per_severity, [(Severity::Warning, vec![1, 1, 0])]);
    }

    #[test]
    fn a_purge_deletes_old_resolved_alerts_and_says_so() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, st) = open(dir.path());
        let a = st.fire(alert("r/p", Severity::Info), t(0)).unwrap();
        st.resolve(&a.alert_id, "ann", None, t(10))
            .unwrap()
            .unwrap();
        let only_fired = Purged {
            alerts: 0,
            records: 1,
        };
        assert_eq!(
            st.purge(t(10), t(20)).unwrap(),
            only_fired,
            "resolved at the cutoff"
        );
        let both = Purged {
            alerts: 1,
            records: 1,
        };
        assert_eq!(st.purge(t(11), t(20)).unwrap(), both);
        assert!(st.history(&a.alert_id, Utc::now()).is_none());
        assert_eq!(actions(&st), ["purged", "purged"]);
        assert_eq!(st.purge(t(11), t(30)).unwrap(), Purged::default());
        let only_purges = AuditFilter {
            action: Some(AuditAction::Purged),
            ..AuditFilter::default()
        };
        assert_eq!(st.audit_records(&only_purges, 10).len(), 2);
        // What is left still verifies, from where the purges cut it.
        let tree = store.tree("audit").unwrap();
        let intact = chain::verify(&tree).unwrap();
        assert_eq!((intact.records, intact.anchor.seq), (2, 2));
        // And it loads again as it was.
        drop(st);
        let st = AlertState::open(&store, router()).unwrap();
        assert_eq!(actions(&st), ["purged", "purged"]);
    }
}
