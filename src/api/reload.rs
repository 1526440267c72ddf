//! Configuration reload without a restart: `SIGHUP` and `POST /-/reload`.
//!
//! The file is read again with the flags and environment of the start and
//! validated whole (`Config::reload`). Nothing is applied when it is
//! invalid, when a setting that cannot change while running differs (named
//! in the error; restart to apply it), or when the TLS certificate files
//! cannot be read. Otherwise, in this order: the TLS certificates
//! (re-read), the services (`health::engine::Services`: removed ones stop,
//! changed ones restart, new ones start), the rules (open alerts of a
//! removed rule resolve at the next evaluation, `resolved_by: config`), the
//! channels, routes and escalation (the outbox keeps its deliveries), then
//! the route table with the new CORS origins for new connections. Each
//! reload, applied or refused, is an audit record (`config_reloaded`,
//! `config_reload_failed`) and the outcome is in `/health` (`config`).

use super::AppState;
use super::reject::error_response;
use super::tls::Certificates;
use crate::alerting::{Actor, AuditAction};
use crate::config::Config;
use crate::config::diff::{self, Changes};
use crate::health::engine::Services;
use chrono::{DateTime, Utc};
use std::sync::{Arc, Mutex};
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

/// The last reload's outcome.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub at: DateTime<Utc>,
    pub error: Option<String>,
    pub changes: String,
}

pub struct Reloader {
    /// The configuration in force; the route table is rebuilt with each new one.
    publish: tokio::sync::watch::Sender<Arc<Config>>,
    services: Arc<Services>,
    alerts: Arc<crate::alerting::engine::Engine>,
    anomalies: Arc<crate::anomalies::watch::Watch>,
    tls: Option<Arc<Certificates>>,
    /// One reload at a time.
    running: tokio::sync::Mutex<()>,
    last: Mutex<Option<Outcome>>,
}

impl Reloader {
    pub fn new(
        config: Arc<Config>,
        services: Arc<Services>,
        alerts: Arc<crate::alerting::engine::Engine>,
        anomalies: Arc<crate::anomalies::watch::Watch>,
        tls: Option<Arc<Certificates>>,
    ) -> Reloader {
        Reloader {
            publish: tokio::sync::watch::Sender::new(config),
            services,
            alerts,
            anomalies,
            tls,
            running: tokio::sync::Mutex::new(()),
            last: Mutex::new(None),
        }
    }

    /// Each configuration applied, the first at once.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<Arc<Config>> {
        self.publish.subscribe()
    }

    pub fn last(&self) -> Option<Outcome> {
        self.last.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Reloads as `actor`; returns what changed, or why nothing did.
    pub async fn reload(&self, actor: &str) -> std::result::Result<Changes, String> {
        let _one = self.running.lock().await;
        let old = self.publish.borrow().clone();
        let tls = self.tls.clone();
        let prepared = tokio::task::spawn_blocking(move || prepare(&old, tls.as_deref()))
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
        let now = Utc::now();
        let result = match prepared {
            Ok((new, changes)) => {
                if !changes.services.is_empty() {
                    self.services.apply(&new.services);
                }
                self.alerts.set_rules(&new);
                self.anomalies
                    .set_selectors(crate::anomalies::selectors(&new));
                self.alerts
                    .state
                    .set_router(crate::alerting::outbox::Router::from_config(&new));
                self.publish.send_replace(Arc::new(new));
                Ok(changes)
            }
            Err(e) => Err(e),
        };
        let (action, comment) = match &result {
            Ok(c) => (AuditAction::ConfigReloaded, c.describe()),
            Err(e) => (AuditAction::ConfigReloadFailed, e.clone()),
        };
        match &result {
            Ok(c) => tracing::info!(by = actor, changes = %c.describe(), "configuration reloaded"),
            Err(e) => {
                tracing::error!(by = actor, error = %e, "configuration not reloaded; the running one stays")
            }
        }
        let state = self.alerts.state.clone();
        let who = actor.to_string();
        let note = comment.clone();
        let recorded = tokio::task::spawn_blocking(move || {
            state.record_access(action, &Actor::new(&who, None), Some(note), now)
        })
        .await;
        if !matches!(recorded, Ok(Ok(()))) {
            tracing::error!("the reload's audit record was not written");
        }
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(Outcome {
            at: now,
            error: result.as_ref().err().cloned(),
            changes: result.as_ref().map(Changes::describe).unwrap_or_default(),
        });
        result
    }
}

/// Reads and checks the new configuration and the certificates (blocking).
fn prepare(
    old: &Config,
    tls: Option<&Certificates>,
) -> std::result::Result<(Config, Changes), String> {
    let new = old.reload().map_err(|e| e.to_string())?;
    let fixed = diff::fixed_changes(old, &new);
    if !fixed.is_empty() {
        return Err(format!(
            "{} cannot change while the daemon runs (restart to apply); nothing was changed",
            fixed.join(", ")
        ));
    }
    if let Some(certs) = tls {
        certs
            .reload()
            .map_err(|e| format!("{e}; nothing was changed"))?;
    }
    let changes = Changes::between(old, &new);
    Ok((new, changes))
}

/// Reloads on every SIGHUP until shutdown.
pub async fn on_hangup(reloader: Arc<Reloader>, mut shutdown: crate::shutdown::Shutdown) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangup) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP: reload with POST /-/reload");
        return;
    };
    loop {
        tokio::select! {
            s = hangup.recv() => if s.is_none() { return },
            _ = shutdown.recv() => return,
        }
        let _ = reloader.reload("SIGHUP").await;
    }
}

#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct Reloaded {
    /// What changed, in one line (`services +a ~b; rules -x`, or `no change`).
    pub changes: String,
    pub services_added: Vec<String>,
    pub services_removed: Vec<String>,
    pub services_changed: Vec<String>,
    pub rules_added: Vec<String>,
    pub rules_removed: Vec<String>,
    pub rules_changed: Vec<String>,
    pub channels_added: Vec<String>,
    pub channels_removed: Vec<String>,
    pub channels_changed: Vec<String>,
    pub routes_changed: bool,
    pub escalation_changed: bool,
    pub cors_changed: bool,
}

/// `POST /-/reload`: 200 with what changed, or 400 naming the problem.
pub async fn handle(
    state: AppState,
    by: Option<String>,
) -> std::result::Result<Response, warp::Rejection> {
    let actor = by.unwrap_or_else(|| "admin".into());
    match state.reloader.reload(&actor).await {
        Ok(c) => Ok(warp::reply::json(&Reloaded {
            changes: c.describe(),
            services_added: c.services.added,
            services_removed: c.services.removed,
            services_changed: c.services.changed,
            rules_added: c.rules.added,
            rules_removed: c.rules.removed,
            rules_changed: c.rules.changed,
            channels_added: c.channels.added,
            channels_removed: c.channels.removed,
            channels_changed: c.channels.changed,
            routes_changed: c.routes,
            escalation_changed: c.escalation,
            cors_changed: c.cors,
        })
        .into_response()),
        Err(e) => Ok(error_response(StatusCode::BAD_REQUEST, &e)),
    }
}
