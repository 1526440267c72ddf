//! mlsec-monitor: a monitoring and alerting appliance in one binary.
//!
//! # Layout
//! Data flows one way: collectors -> store -> (analysis, alerting) -> API.
//!
//! - `cli`      the command line (clap): serve, config, version
//! - `config`   defaults, TOML file, environment and flags into one typed `Config`
//! - `error`    the crate's `Error` and `Result`
//! - `shutdown` one signal every loop listens to
//! - `blocking` blocking work from async code, failures and panics logged
//! - `time`     the one timestamp format written (RFC 3339, ms, `Z`)
//! - `log`      the text log: control characters escaped, one line per event
//! - `names`    the naming rules of metrics and labels (Prometheus's)
//! - `digest`   SHA-256 and hex, the one way anything is hashed
//! - `telemetry` the daemon's measurements of itself: latency histograms, counters
//! - `collect`  collectors producing plain data: `system` (sysinfo + /proc)
//! - `health`   the health check engine: probes, back-off, the live registry
//! - `store`    the embedded sled time-series store: tiers of ring buffers
//! - `query`    typed answers from the store at a time: charts, summaries, detailed, dashboard
//! - `analysis` pure functions over series: trends, a streaming anomaly detector, its offline replay
//! - `alerting` rules, the alert state machine, audit, silences, notifications
//! - `platform` ML platform state pushed by the services: models, training jobs
//! - `auth`     API tokens with roles, who may call what, failed sign-ins slowed
//! - `backup`   consistent archives of everything while it runs, scheduled ones, restore
//! - `remote_write` every stored sample shipped out (Prometheus remote write 1.0), durable queue
//! - `api`      the HTTP server (own accept loop, TLS), route table, handlers, wire types,
//!   error mapping, `/metrics` exposition and the Alertmanager API in
//!
//! [`run`] wires them together; it takes the listener and the shutdown future
//! so tests can run the whole daemon on port 0 in-process.

pub mod alerting;
pub mod analysis;
pub mod anomalies;
pub mod api;
pub mod auth;
pub mod backup;
pub mod blocking;
pub mod cli;
pub mod collect;
pub mod config;
pub mod digest;
pub mod error;
pub mod health;
pub mod log;
pub mod names;
pub mod platform;
pub mod query;
pub mod remote_write;
pub mod shutdown;
pub mod store;
pub mod telemetry;
pub mod time;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::shutdown::Shutdown;
use crate::store::{Layout, Store};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Opens the store in the configured data directory (blocking),
/// encrypted with the configured key if there is one.
pub fn open_store(config: &Config) -> Result<Store> {
    Store::open_with(
        &config.data_dir,
        Layout::new(
            config.system_metrics_interval,
            config.metrics_retention_days,
        ),
        config.max_series,
        store::SLED_CACHE_BYTES,
        cipher(config)?,
    )
}

/// The key of `ENCRYPTION_KEY_FILE`, if set (an error names the file).
pub fn cipher(config: &Config) -> Result<Option<Arc<store::cipher::Cipher>>> {
    config
        .encryption_key_file
        .as_deref()
        .map(|p| store::cipher::Cipher::from_key_file(p).map(Arc::new))
        .transpose()
}

/// Runs the daemon until `shutdown` resolves: collectors, flusher, HTTP.
/// On shutdown: stop collectors, let in-flight requests finish, flush the store.
pub async fn run(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let config = Arc::new(config);
    // Certificates first: a bad file stops start-up before anything opens.
    let tls = match &config.tls {
        Some(files) => Some(Arc::new(api::tls::Certificates::open(files)?)),
        None => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let store = {
        let c = config.clone();
        tokio::task::spawn_blocking(move || open_store(&c))
            .await
            .map_err(|e| Error::Internal(e.to_string()))??
    };
    let addr = listener.local_addr()?;
    tracing::info!(
        %addr,
        data_dir = %config.data_dir.display(),
        series = store.stats().series,
        "listening on {scheme}://{addr}"
    );

    // Remote write taps the store before any collector writes to it.
    let remote_write = {
        let (st, specs) = (store.clone(), config.remote_write.clone());
        tokio::task::spawn_blocking(move || remote_write::RemoteWrite::start(&st, &specs))
            .await
            .map_err(|e| Error::Internal(e.to_string()))??
    };

    let (trigger, down) = shutdown::channel();
    let system = Arc::new(collect::SystemMonitor::new(config.system_metrics_interval));
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(collect::run_system_collector(
        store.clone(),
        collect::system::Interfaces {
            include: config.network_interfaces_include.clone(),
            exclude: config.network_interfaces_exclude.clone(),
        },
        system.clone(),
        down.clone(),
    ));
    tasks.spawn(run_flusher(
        store.clone(),
        config.flush_interval,
        down.clone(),
    ));

    let registry = Arc::new(health::registry::Registry::new(&config.services));
    let services = health::engine::Services::start(
        &config.services,
        store.clone(),
        registry.clone(),
        down.clone(),
    );
    tasks.spawn(health::resources::run(
        services.clone(),
        store.clone(),
        registry.clone(),
        config.system_metrics_interval,
        down.clone(),
    ));

    let platform = {
        let st = store.clone();
        tokio::task::spawn_blocking(move || platform::Platform::open(&st))
            .await
            .map_err(|e| Error::Internal(e.to_string()))??
    };
    let alert_state = {
        let st = store.clone();
        let router = alerting::outbox::Router::from_config(&config);
        tokio::task::spawn_blocking(move || alerting::state::AlertState::open(&st, router))
            .await
            .map_err(|e| Error::Internal(e.to_string()))??
    };
    let engine = Arc::new(alerting::engine::Engine::new(
        &config,
        store.clone(),
        Arc::new(alert_state),
    ));
    let (alert_changes, _) = tokio::sync::broadcast::channel(1024);
    tasks.spawn(alerting::engine::run(
        engine.clone(),
        config.alert_evaluation_interval,
        alert_changes.clone(),
        down.clone(),
    ));
    tasks.spawn(alerting::notify::run(
        engine.state.clone(),
        format!("{scheme}://{addr}"),
        down.clone(),
    ));
    let platform = Arc::new(platform);
    let tokens = {
        let st = store.clone();
        let dir = config.data_dir.clone();
        let on = config.access.enabled;
        tokio::task::spawn_blocking(move || {
            let t = auth::tokens::Tokens::open(&st)?;
            let created = if on {
                t.first_run(&st, &dir, chrono::Utc::now())?
            } else {
                None
            };
            Ok::<_, Error>((t, created))
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))??
    };
    let (tokens, first_admin) = tokens;
    let tokens = Arc::new(tokens);
    if let Some(path) = first_admin {
        tracing::warn!(
            file = %path.display(),
            "first start: created the admin token; it is in this file (mode 0600), shown nowhere else. Create others with `mlsec-monitor token create`"
        );
    }
    if !config.access.enabled {
        tracing::warn!("AUTH=off: every endpoint answers without a token (loopback only)");
    }
    tasks.spawn(platform::run_sweeper(
        platform.clone(),
        store.clone(),
        platform::Sweep::from_config(&config),
        down.clone(),
    ));
    let anomalies = {
        let st = store.clone();
        let events = tokio::task::spawn_blocking(move || anomalies::events::Events::open(&st))
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
        Arc::new(anomalies::watch::Watch::new(
            store.clone(),
            Arc::new(events),
            anomalies::selectors(&config),
            config.anomaly_max_series,
        ))
    };
    tasks.spawn(anomalies::watch::run(anomalies.clone(), down.clone()));
    let backups = Arc::new(backup::Backups::new(backup::Sources {
        store: store.clone(),
        alerts: engine.state.clone(),
        platform: platform.clone(),
        tokens: tokens.clone(),
        anomalies: anomalies.events().clone(),
    }));
    if let Some(schedule) = config.backup.clone() {
        tasks.spawn(backup::schedule::run(
            backups.clone(),
            schedule,
            down.clone(),
        ));
    }
    let reloader = Arc::new(api::reload::Reloader::new(
        config.clone(),
        services.clone(),
        engine.clone(),
        anomalies.clone(),
        tls.clone(),
    ));
    tasks.spawn(api::reload::on_hangup(reloader.clone(), down.clone()));
    let state = api::AppState {
        config: config.clone(),
        store: store.clone(),
        system,
        health: registry,
        dashboard: Arc::default(),
        answers: Arc::default(),
        platform,
        alerts: engine,
        alert_changes: alert_changes.clone(),
        hub: Arc::new(api::ws::Hub::new(config.ws_max_clients)),
        shutdown: down.clone(),
        started: Instant::now(),
        tokens,
        limiter: Arc::new(auth::limiter::Limiter::new(config.auth_failure_limit)),
        http: Arc::default(),
        remote_write: remote_write.clone(),
        backups,
        reloader,
        anomalies,
    };
    tasks.spawn(api::dashboard::run_refresher(state.clone(), down.clone()));
    tasks.spawn(api::ws::run_publisher(
        state.clone(),
        config.dashboard_refresh_interval,
        alert_changes.subscribe(),
        down.clone(),
    ));
    let mut down_for_http = down.clone();
    let stop = async move {
        tokio::select! {
            _ = shutdown => {},
            _ = down_for_http.recv() => {},
        }
        trigger.fire();
    };
    api::server::serve(state, listener, config.http, tls, stop).await;

    while tasks.join_next().await.is_some() {}
    services.join().await;
    if let Some(rw) = remote_write {
        // What is batched goes into the queues before the checkpoint.
        let _ = tokio::task::spawn_blocking(move || rw.stop()).await;
    }
    let st = store.clone();
    // A checkpoint, so the next start has no log to replay.
    tokio::task::spawn_blocking(move || st.checkpoint())
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;
    tracing::info!("store checkpointed; bye");
    Ok(())
}

/// How often, at most, the flusher walks the data directory for the size
/// `/health` and `/metrics` report (the walk was a twentieth of the daemon's
/// CPU at 1,000 series when it followed every flush).
const MEASURE_SIZE_EVERY: Duration = Duration::from_secs(10);

/// Flushes the store every `interval` on a blocking thread until shutdown;
/// a tick with nothing new since a successful flush wakes no thread.
async fn run_flusher(store: Store, interval: Duration, mut shutdown: Shutdown) {
    let mut ticker = crate::shutdown::ticker(interval);
    let mut flushed = None;
    let mut measured = tokio::time::Instant::now();
    while shutdown.tick(&mut ticker).await {
        let generation = store.generation();
        if flushed == Some(generation) {
            continue;
        }
        let measure = measured.elapsed() >= MEASURE_SIZE_EVERY;
        if measure {
            measured = tokio::time::Instant::now();
        }
        let st = store.clone();
        flushed = crate::blocking::run("store flush", move || {
            st.flush()?;
            if measure {
                st.measure_size_on_disk();
            }
            Ok::<(), Error>(())
        })
        .await
        .map(|()| generation);
    }
}
