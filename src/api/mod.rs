//! The HTTP surface: the whole route table in one place, plus the
//! cross-cutting layers every endpoint inherits (JSON errors, CORS, gzip when
//! asked, one log line per request).
//!
//! Handlers are plain async fns over `AppState`; `dto.rs` holds the wire types,
//! `params.rs` the query/body parsing, `reject.rs` the error mapping.

pub mod access;
mod admin;
mod alertmanager;
mod alerts;
pub mod allow;
mod anomalies;
mod cache;
pub mod charts;
mod core;
pub mod dashboard;
pub mod dto;
mod encoded;
mod exposition;
mod forecast;
mod metrics;
mod openapi;
pub mod params;
mod platform;
mod prom;
pub mod reject;
pub mod reload;
pub mod server;
pub mod services;
pub mod tls;
mod ui;
pub mod ws;

use crate::collect::SystemMonitor;
use crate::config::{Config, CorsOrigins};
use crate::health::registry::Registry;
use crate::store::Store;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;
use warp::{Filter, Reply};

pub const SERVICE_NAME: &str = "mlsec-monitor";

/// What handlers read. Cloning is a few refcounts.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub system: Arc<SystemMonitor>,
    pub health: Arc<Registry>,
    pub dashboard: Arc<dashboard::DashboardCache>,
    /// Chart and alert-list answers, until their data changes.
    pub answers: Arc<cache::AnswerCache>,
    pub platform: Arc<crate::platform::Platform>,
    pub alerts: Arc<crate::alerting::engine::Engine>,
    /// Alert state changes, for the live feed.
    pub alert_changes: tokio::sync::broadcast::Sender<crate::alerting::Alert>,
    pub hub: Arc<ws::Hub>,
    pub shutdown: crate::shutdown::Shutdown,
    pub started: Instant,
    pub tokens: Arc<crate::auth::tokens::Tokens>,
    pub limiter: Arc<crate::auth::limiter::Limiter>,
    /// Requests by route, method and status, and their durations.
    pub http: Arc<server::HttpTelemetry>,
    /// Shipping to `[[remote_write]]` destinations, when configured.
    pub remote_write: Option<Arc<crate::remote_write::RemoteWrite>>,
    /// Backups on request and on schedule, one at a time.
    pub backups: Arc<crate::backup::Backups>,
    /// Configuration reload (`SIGHUP`, `POST /-/reload`).
    pub reloader: Arc<reload::Reloader>,
    /// The anomaly watch and its events (`GET /anomalies`).
    pub anomalies: Arc<crate::anomalies::watch::Watch>,
}

impl AppState {
    pub fn uptime_seconds(&self) -> f64 {
        (self.started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0
    }
}

/// Runs blocking work (sled, sysinfo) off the async workers; a crash of
/// that work is an internal error, a crate error maps through `reject`.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> crate::error::Result<T> + Send + 'static,
) -> Result<T, warp::Rejection> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| reject::fail(crate::error::Error::Internal(e.to_string())))?
        .map_err(reject::fail)
}

/// Whether the client takes gzip, for the endpoints that gzip their own
/// cached bodies.
fn gzip_wish() -> impl Filter<Extract = (bool,), Error = warp::Rejection> + Clone {
    warp::header::optional::<String>("accept-encoding").map(encoded::wants_gzip)
}

fn with_state(state: AppState) -> impl Filter<Extract = (AppState,), Error = Infallible> + Clone {
    warp::any().map(move || state.clone())
}

/// The route table. Path filters come before method filters so an unknown
/// path is a 404, and a known path with the wrong method a 405.
pub fn routes(state: AppState) -> impl Filter<Extract = (impl Reply,), Error = Infallible> + Clone {
    use warp::path::end;
    let s = || with_state(state.clone());
    // The name of the token a write came with, for its audit record.
    let who = || access::who(state.clone());

    let root = end().and(warp::get()).and(s()).and_then(core::root);
    let health = warp::path("health")
        .and(end())
        .and(warp::get())
        .and(s())
        .and_then(core::health);
    let system = warp::path("system-metrics")
        .and(end())
        .and(warp::get())
        .and(s())
        .and_then(core::system_metrics);
    let ingest = warp::path!("ingest" / "metrics")
        .and(warp::post())
        .and(s())
        .and(access::principal(state.clone()))
        .and(params::json_body())
        .and_then(metrics::ingest);
    let am_alerts = warp::path!("api" / "v2" / "alerts")
        .and(warp::post())
        .and(s())
        .and(params::json_body())
        .and_then(alertmanager::post_alerts);
    let prometheus = warp::path("metrics")
        .and(end())
        .and(warp::get())
        .and(s())
        .and(params::query())
        .and(warp::header::optional::<String>("accept"))
        .and_then(prom::metrics);
    let detailed = warp::path!("metrics" / "detailed")
        .and(warp::get())
        .and(s())
        .and(params::query())
        .and_then(metrics::detailed);

    let service_health = warp::path("service-health")
        .and(end())
        .and(warp::get())
        .and(s())
        .and_then(services::service_health);
    let health_services = warp::path!("health" / "services")
        .and(warp::get())
        .and(s())
        .and_then(services::services_list);
    let health_deps = warp::path!("health" / "dependencies")
        .and(warp::get())
        .and(s())
        .and_then(services::dependencies);
    // Served from a snapshot, gzipped once per snapshot (see `encoded`), so
    // outside the compression layer below, like the charts.
    let dashboard_data = warp::path("dashboard-data").and(
        end()
            .and(warp::get())
            .and(s())
            .and(gzip_wish())
            .and_then(dashboard::dashboard)
            .recover(reject::handle),
    );

    let ingest_models = warp::path!("ingest" / "models")
        .and(warp::post())
        .and(s())
        .and(params::json_body())
        .and_then(platform::ingest_models);
    let ingest_training = warp::path!("ingest" / "training")
        .and(warp::post())
        .and(s())
        .and(params::json_body())
        .and_then(platform::ingest_training);
    let model_status = warp::path("model-loading-status")
        .and(end())
        .and(warp::get())
        .and(s())
        .and_then(platform::model_status);
    let training_status = warp::path("training-status")
        .and(end())
        .and(warp::get())
        .and(s())
        .and_then(platform::training_status);

    let ingest_requests = warp::path!("ingest" / "requests")
        .and(warp::post())
        .and(s())
        .and(params::json_body())
        .and_then(metrics::ingest_requests);
    let summary = warp::path!("metrics" / "summary")
        .and(warp::get())
        .and(s())
        .and(params::query())
        .and_then(metrics::summary);

    // Cached and gzipped once per alert-state version (see `cache`), so
    // outside the compression layer below, like the charts. Only what comes
    // after the path is recovered here: other `/alerts/...` routes fall through.
    let alerts_list = warp::path("alerts").and(end()).and(
        warp::get()
            .and(s())
            .and(params::query())
            .and(gzip_wish())
            .and_then(alerts::list)
            .recover(reject::handle),
    );
    let alert_ack = warp::path!("alerts" / "acknowledge")
        .and(warp::post())
        .and(s())
        .and(who())
        .and(params::json_body())
        .and_then(alerts::acknowledge);
    let alert_resolve = warp::path!("alerts" / "resolve")
        .and(warp::post())
        .and(s())
        .and(who())
        .and(params::json_body())
        .and_then(alerts::resolve);
    let alert_get = warp::path!("alerts" / String)
        .and(warp::get())
        .and(s())
        .and_then(alerts::get);
    let audit = warp::path("audit")
        .and(end())
        .and(warp::get())
        .and(s())
        .and(params::query())
        .and_then(alerts::audit);
    let audit_export = warp::path!("audit" / "export")
        .and(warp::get())
        .and(s())
        .and(params::query())
        .and_then(alerts::audit_export);
    let silence_new = warp::path("silences")
        .and(end())
        .and(warp::post())
        .and(s())
        .and(who())
        .and(params::json_body())
        .and_then(alerts::create_silence);
    let silence_list = warp::path("silences")
        .and(end())
        .and(warp::get())
        .and(s())
        .and_then(alerts::list_silences);
    let silence_del = warp::path!("silences" / String)
        .and(warp::delete())
        .and(s())
        .and(who())
        .and_then(alerts::delete_silence);
    let anomaly_list = warp::path("anomalies")
        .and(end())
        .and(warp::get())
        .and(s())
        .and(params::query())
        .and_then(anomalies::list);
    let forecast_get = warp::path("forecast")
        .and(end())
        .and(warp::get())
        .and(s())
        .and(params::query())
        .and_then(forecast::get);
    let capacity_get = warp::path("capacity")
        .and(end())
        .and(warp::get())
        .and(s())
        .and(params::query())
        .and_then(forecast::capacity);
    let alerting = alert_ack
        .or(anomaly_list)
        .or(forecast_get)
        .or(capacity_get)
        .or(alert_resolve)
        .or(alert_get)
        .or(audit)
        .or(audit_export)
        .or(silence_new)
        .or(silence_list)
        .or(silence_del);

    // Charts gzip their cached answers themselves, so they sit outside the
    // compression layer below (see `encoded`).
    let chart = |name: &'static str| {
        warp::path(name)
            .and(end())
            .and(warp::get())
            .and(s())
            .and(params::query())
            .and(gzip_wish())
    };
    let charts = chart("model-loading")
        .and_then(charts::model_loading)
        .or(chart("training-progress").and_then(charts::training_progress))
        .or(chart("system-metrics").and_then(charts::system_metrics))
        .or(chart("service-health").and_then(charts::service_health))
        .or(chart("alerts-timeline").and_then(charts::alerts_timeline));
    let charts = warp::path("charts").and(charts.recover(reject::handle));

    // Reached only when the websocket upgrade did not match (see below).
    let ws_plain = warp::path!("ws" / "metrics").map(|| {
        reject::error_response(
            warp::http::StatusCode::BAD_REQUEST,
            "/ws/metrics is a websocket: connect with an Upgrade: websocket request",
        )
    });

    let tokens_list = warp::path!("auth" / "tokens")
        .and(warp::get())
        .and(s())
        .and_then(access::list_tokens);
    let tokens_new = warp::path!("auth" / "tokens")
        .and(warp::post())
        .and(s())
        .and(who())
        .and(params::json_body())
        .and_then(access::create_token);
    let tokens_del = warp::path!("auth" / "tokens" / String)
        .and(warp::delete())
        .and(s())
        .and(who())
        .and_then(access::revoke_token);
    let session = warp::path!("auth" / "session")
        .and(warp::get())
        .and(s())
        .and(access::principal(state.clone()))
        .and_then(access::session);
    let tokens = tokens_list.or(tokens_new).or(tokens_del).or(session);
    let backup = warp::path!("admin" / "backup")
        .and(warp::post())
        .and(s())
        .and_then(admin::backup);
    let reload = warp::path!("-" / "reload")
        .and(warp::post())
        .and(s())
        .and(who())
        .and_then(reload::handle);

    let openapi = warp::path("openapi.json")
        .and(end())
        .and(warp::get())
        .map(|| warp::reply::with_header(openapi::document(), "content-type", "application/json"));
    let ui_page = warp::path("ui").and(end()).and(warp::get()).map(ui::page);
    let ui_asset = warp::path!("ui" / String).and(warp::get()).map(ui::asset);

    let api = root
        .or(openapi)
        .or(tokens)
        .or(backup)
        .or(reload)
        .or(ui_page)
        .or(ui_asset)
        .or(ws_plain)
        .or(alerting)
        .or(ingest_requests)
        .or(summary)
        .or(ingest_models)
        .or(ingest_training)
        .or(model_status)
        .or(training_status)
        .or(health)
        .or(service_health)
        .or(health_services)
        .or(health_deps)
        .or(system)
        .or(ingest)
        .or(detailed)
        .or(prometheus)
        .or(am_alerts)
        .recover(reject::handle)
        // Boxed: the whole route table as one type overflows rustc's query depth.
        .map(Reply::into_response)
        .boxed();

    let cors = match &state.config.cors_allowed_origins {
        CorsOrigins::Any => warp::cors().allow_any_origin(),
        CorsOrigins::List(list) => warp::cors().allow_origins(list.iter().map(String::as_str)),
    }
    .allow_methods(["GET", "POST", "DELETE", "OPTIONS"])
    .allow_headers(["content-type", "authorization"])
    .max_age(3600);
    let api = api.with(cors.clone()).recover(reject::handle);

    // Compress only when the client says it accepts gzip.
    let accepts_gzip = warp::header::optional::<String>("accept-encoding")
        .and_then(|v: Option<String>| async move {
            match v {
                Some(v) if v.contains("gzip") => Ok(()),
                _ => Err(warp::reject::not_found()),
            }
        })
        .untuple_one();
    let api = accepts_gzip
        .and(api.clone())
        .with(warp::filters::compression::gzip())
        .or(api);
    let api = charts.or(dashboard_data).or(alerts_list).with(cors).or(api);

    // The websocket route stays outside compression and CORS; anything it
    // does not take falls through to the API.
    let live = warp::path!("ws" / "metrics")
        .and(warp::ws())
        .and(warp::header::optional::<String>("sec-websocket-protocol"))
        .and(s())
        .and_then(ws::upgrade);
    // Every request passes the gate first (`access`); its refusals are
    // answered here like any other error.
    let api = access::gate(state.clone())
        .and(live.or(api))
        .recover(reject::handle);
    // A 405 names the methods the path takes.
    let api = warp::path::full()
        .and(api)
        .map(|path: warp::path::FullPath, reply| {
            let mut r = warp::Reply::into_response(reply);
            if r.status() == warp::http::StatusCode::METHOD_NOT_ALLOWED
                && let Some(methods) = allow::allow(path.as_str())
                && let Ok(v) = warp::http::HeaderValue::from_str(&methods)
            {
                r.headers_mut().insert(warp::http::header::ALLOW, v);
            }
            r
        });

    // One line per request: at debug level for answers that worked (a wall
    // of dashboards polling would flood the log at info), at info for the
    // refused and the failed.
    api.with(warp::log::custom(|info| {
        let status = info.status();
        let ms = info.elapsed().as_secs_f64() * 1000.0;
        if status.is_client_error() || status.is_server_error() {
            tracing::info!(method = %info.method(), path = info.path(), status = status.as_u16(), duration_ms = ms, "request");
        } else {
            tracing::debug!(method = %info.method(), path = info.path(), status = status.as_u16(), duration_ms = ms, "request");
        }
    }))
}
