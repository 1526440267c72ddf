//! The live feed: `GET /ws/metrics` (websocket). On connect a `snapshot`
//! message at once; then a `metrics` message every
//! `DASHBOARD_REFRESH_INTERVAL`, and an `alert` message the moment an alert
//! changes. One task per client reading from a bounded broadcast queue: a
//! client that falls behind (its queue overflows, or a send stalls) is
//! closed with 1008 and never delays the others. Pings keep idle
//! connections alive; at shutdown every client gets a 1001 close.

use super::AppState;
use super::dto::{
    AlertCounts, AlertView, LiveAlert, LiveAlertCounts, LiveMetrics, LiveServices, ts,
};
use crate::config::services::Role;
use crate::health::HealthStatus;
use crate::shutdown::Shutdown;
use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::broadcast;
use warp::ws::{Message, WebSocket};

/// Messages a client may have queued before it counts as too slow.
pub const CLIENT_QUEUE: usize = 64;
/// A send that takes longer than this closes the client.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(5);
pub const PING_EVERY: Duration = Duration::from_secs(30);

pub struct Hub {
    tx: broadcast::Sender<Arc<str>>,
    clients: AtomicUsize,
    pub max_clients: usize,
    /// Signalled when a client connects, so the publisher sleeps while
    /// nobody listens.
    joined: tokio::sync::Notify,
}

impl Hub {
    pub fn new(max_clients: usize) -> Hub {
        Hub {
            tx: broadcast::channel(CLIENT_QUEUE).0,
            clients: AtomicUsize::new(0),
            max_clients,
            joined: tokio::sync::Notify::new(),
        }
    }

    pub fn clients(&self) -> usize {
        self.clients.load(Ordering::Relaxed)
    }

    fn publish(&self, msg: &impl serde::Serialize) {
        if let Ok(text) = serde_json::to_string(msg) {
            let _ = self.tx.send(Arc::from(text));
        }
    }
}

/// The live values every message of type `snapshot` / `metrics` carries.
pub fn live(state: &AppState, kind: &'static str) -> LiveMetrics {
    let now = chrono::Utc::now();
    let reading = state.system.reading(now);
    let h = reading.harvest.as_ref();
    let services = state.health.snapshot();
    let count = |s: HealthStatus| services.iter().filter(|v| v.status() == s).count();
    let alerts = AlertCounts::from(state.alerts.state.counts());
    LiveMetrics {
        kind,
        timestamp: reading.measured_at.map(ts),
        sent_at: ts(now),
        stale: reading.stale(),
        stale_reason: reading.stale_reason.clone(),
        cpu_usage: h.and_then(|h| h.cpu_usage_percent),
        memory_usage_mb: h.and_then(|h| h.memory_used_mb),
        memory_usage_percent: h.and_then(|h| h.memory_usage_percent()),
        disk_usage_percent: h.and_then(|h| h.data_disk_usage_percent),
        network_io_mbps: h.and_then(|h| h.network_io_mbps()),
        load_average: h.and_then(|h| h.load_average.map(|l| l.to_vec())),
        active_alerts: alerts.active,
        alerts: LiveAlertCounts {
            critical: alerts.critical,
            warning: alerts.warning,
            info: alerts.info,
        },
        services: LiveServices {
            total: services.len(),
            healthy: count(HealthStatus::Healthy),
            degraded: count(HealthStatus::Degraded),
            unhealthy: count(HealthStatus::Unhealthy),
            overall_status: crate::health::registry::overall(&services),
            unhealthy_names: services
                .iter()
                .filter(|v| v.status() == HealthStatus::Unhealthy && v.role == Role::Service)
                .map(|v| v.name.clone())
                .collect(),
        },
    }
}

/// Publishes `metrics` every `interval` while a client listens (the timer
/// stops while nobody does) and `alert` messages as they happen.
pub async fn run_publisher(
    state: AppState,
    interval: Duration,
    mut alerts: broadcast::Receiver<crate::alerting::Alert>,
    mut shutdown: Shutdown,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let listening = state.hub.clients() > 0;
        tokio::select! {
            _ = ticker.tick(), if listening => {
                state.hub.publish(&live(&state, "metrics"));
            }
            _ = state.hub.joined.notified(), if !listening => ticker.reset(),
            a = alerts.recv() => match a {
                Ok(a) => state.hub.publish(&LiveAlert {
                    kind: "alert",
                    timestamp: ts(chrono::Utc::now()),
                    event: match a.status {
                        crate::alerting::AlertStatus::Active if a.escalated => "escalated",
                        crate::alerting::AlertStatus::Active => "fired",
                        crate::alerting::AlertStatus::Acknowledged => "acknowledged",
                        crate::alerting::AlertStatus::Resolved => "resolved",
                    },
                    alert: AlertView::from(&a),
                }),
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = shutdown.recv() => return,
        }
    }
}

pub async fn upgrade(
    ws: warp::ws::Ws,
    protocols: Option<String>,
    state: AppState,
) -> Result<warp::reply::Response, warp::Rejection> {
    use warp::Reply;
    let hub = state.hub.clone();
    // Reserve a place first, so concurrent connects cannot overshoot the cap.
    if hub.clients.fetch_add(1, Ordering::SeqCst) >= hub.max_clients {
        hub.clients.fetch_sub(1, Ordering::SeqCst);
        return Ok(super::reject::error_response(
            warp::http::StatusCode::SERVICE_UNAVAILABLE,
            &format!(
                "too many live-feed clients (WS_MAX_CLIENTS = {}); retry later",
                hub.max_clients
            ),
        ));
    }
    hub.joined.notify_one();
    let rx = hub.tx.subscribe();
    let mut reply = ws
        .max_message_size(64 * 1024)
        .on_upgrade(move |socket| async move {
            client(socket, state.clone(), rx).await;
            state.hub.clients.fetch_sub(1, Ordering::SeqCst);
        })
        .into_response();
    // A browser that sent its token as a subprotocol (`access`) needs the
    // server to pick one, or it drops the connection.
    let bearer = protocols
        .iter()
        .flat_map(|p| p.split(','))
        .any(|p| p.trim() == super::access::WS_BEARER);
    if bearer {
        reply.headers_mut().insert(
            "sec-websocket-protocol",
            warp::http::HeaderValue::from_static(super::access::WS_BEARER),
        );
    }
    Ok(reply)
}

/// Sends within `SEND_TIMEOUT`; false when the client is gone or stalled.
async fn send(tx: &mut futures_util::stream::SplitSink<WebSocket, Message>, m: Message) -> bool {
    matches!(
        tokio::time::timeout(SEND_TIMEOUT, tx.send(m)).await,
        Ok(Ok(()))
    )
}

async fn client(socket: WebSocket, state: AppState, mut rx: broadcast::Receiver<Arc<str>>) {
    let (mut tx, mut incoming) = socket.split();
    let mut shutdown = state.shutdown.clone();
    let Ok(snapshot) = serde_json::to_string(&live(&state, "snapshot")) else {
        return;
    };
    if !send(&mut tx, Message::text(snapshot)).await {
        return;
    }
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        tokio::select! {
            m = rx.recv() => match m {
                Ok(text) => {
                    if !send(&mut tx, Message::text(text.to_string())).await {
                        let _ = tx.send(Message::close_with(1008u16, "client too slow")).await;
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let _ = tokio::time::timeout(SEND_TIMEOUT, tx.send(Message::close_with(1008u16, "client too slow"))).await;
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            m = incoming.next() => match m {
                Some(Ok(m)) if m.is_close() => return,
                Some(Ok(_)) => {}
                _ => return,
            },
            _ = ping.tick() => {
                if !send(&mut tx, Message::ping(Vec::new())).await {
                    return;
                }
            }
            _ = shutdown.recv() => {
                let _ = tokio::time::timeout(SEND_TIMEOUT, tx.send(Message::close_with(1001u16, "server shutting down"))).await;
                return;
            }
        }
    }
}
