//! The HTTP server under the routes: our own accept loop over hyper, because
//! warp 0.4's runner sets no timer (so no header timeout: a client that
//! sends half a request holds its connection forever), has no connection
//! cap, and logs every client's protocol error at error level.
//!
//! Per connection: headers within `header_timeout` (hyper's timer also
//! closes a keep-alive connection idle that long), each request read and
//! answered within `request_timeout` (408 otherwise; a websocket or a
//! streamed body runs on after its answer), at most `max_connections` at
//! once (the rest wait in the listen backlog). `HEAD` is answered as `GET`
//! without the body, and the peer's address travels as a `Peer` extension.
//! With certificates (`tls.rs`) every connection is TLS first (the
//! handshake within `header_timeout`); a reload (`reload.rs`) re-reads them
//! and gives new connections a route table built with the new configuration.

use super::AppState;
use super::reject::error_response;
use super::tls::Certificates;
use crate::config::HttpLimits;
use crate::telemetry::{Histogram, HistogramSnapshot};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use warp::http::{Method, StatusCode};

/// The address a request came from (warp's own `addr::remote` is only
/// filled by its runner).
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub SocketAddr);

/// Requests answered, by route pattern, method and status, and how long
/// they took by route (`GET /metrics`): one lock per request.
#[derive(Default)]
pub struct HttpTelemetry {
    routes: Mutex<BTreeMap<&'static str, RouteStats>>,
}

#[derive(Default)]
struct RouteStats {
    by_outcome: BTreeMap<(&'static str, u16), u64>,
    durations: Histogram,
}

impl HttpTelemetry {
    fn record(&self, route: &'static str, method: &'static str, status: u16, took: Duration) {
        let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        let r = routes.entry(route).or_default();
        *r.by_outcome.entry((method, status)).or_insert(0) += 1;
        r.durations.observe(took);
    }

    /// Requests by (route, method, status).
    pub fn requests(&self) -> Vec<((&'static str, &'static str, u16), u64)> {
        let routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        routes
            .iter()
            .flat_map(|(route, r)| {
                r.by_outcome
                    .iter()
                    .map(move |((m, s), n)| ((*route, *m, *s), *n))
            })
            .collect()
    }

    pub fn durations(&self) -> Vec<(&'static str, HistogramSnapshot)> {
        let routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        routes
            .iter()
            .map(|(r, s)| (*r, s.durations.snapshot()))
            .collect()
    }
}

/// A method as a label: the ones the API knows, else `other`.
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// How long in-flight requests may take to finish at shutdown.
const DRAIN: Duration = Duration::from_secs(10);

/// Serves `state`'s routes on `listener` (over TLS with `tls`) until `stop`
/// completes, then finishes the requests in flight (at most `DRAIN`).
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    limits: HttpLimits,
    tls: Option<Arc<Certificates>>,
    stop: impl Future<Output = ()>,
) {
    let telemetry = state.http.clone();
    // A reload publishes a new configuration: new connections get a route
    // table built with it (its CORS origins); open ones keep theirs.
    let mut configs = state.reloader.subscribe();
    configs.mark_unchanged();
    let mut routes = warp::service(super::routes(state.clone()));
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(limits.header_timeout));
    let mut stop = std::pin::pin!(stop);
    let mut full_since: Option<Instant> = None;
    loop {
        // A free slot first, so the connections past the cap wait in the
        // kernel's backlog instead of holding a file each.
        let slot = tokio::select! {
            s = slots.clone().acquire_owned() => s,
            () = &mut stop => break,
        };
        let Ok(slot) = slot else { break };
        if slots.available_permits() == 0
            && full_since.is_none_or(|t| t.elapsed() > Duration::from_secs(60))
        {
            tracing::warn!(
                max = limits.max_connections,
                "HTTP_MAX_CONNECTIONS reached: new connections wait until one closes"
            );
            full_since = Some(Instant::now());
        }
        let (tcp, peer) = tokio::select! {
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    accept_failed(&e).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let _ = tcp.set_nodelay(true);
        if configs.has_changed().unwrap_or(false) {
            let config = configs.borrow_and_update().clone();
            routes = warp::service(super::routes(AppState {
                config,
                ..state.clone()
            }));
        }
        let routes = routes.clone();
        let request_timeout = limits.request_timeout;
        let telemetry = telemetry.clone();
        let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            answer(
                req,
                peer,
                routes.clone(),
                telemetry.clone(),
                request_timeout,
            )
        });
        let (builder, watcher, tls) = (builder.clone(), graceful.watcher(), tls.clone());
        let handshake = limits.header_timeout;
        tokio::spawn(async move {
            let _slot = slot;
            // A client that goes away or speaks bad HTTP (or bad TLS) is
            // its own business, not the daemon's error.
            let ended = match tls {
                None => {
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(tcp), svc);
                    watcher.watch(conn).await
                }
                Some(certs) => {
                    let stream =
                        match tokio::time::timeout(handshake, certs.acceptor().accept(tcp)).await {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(%peer, "TLS handshake timed out");
                                return;
                            }
                        };
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc);
                    watcher.watch(conn).await
                }
            };
            if let Err(e) = ended {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tracing::info!("shutting down: no new connections, finishing in-flight requests");
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after {DRAIN:?}: closing them");
    }
}

/// One request through the routes: the peer noted, HEAD as GET, the
/// request timeout, and the outcome counted.
async fn answer<S>(
    mut req: hyper::Request<hyper::body::Incoming>,
    peer: SocketAddr,
    mut routes: S,
    telemetry: Arc<HttpTelemetry>,
    request_timeout: Duration,
) -> Result<warp::reply::Response, Infallible>
where
    S: tower_service::Service<
            hyper::Request<hyper::body::Incoming>,
            Response = warp::reply::Response,
            Error = Infallible,
        >,
{
    req.extensions_mut().insert(Peer(peer));
    let started = Instant::now();
    let route = super::allow::route_of(req.uri().path());
    let method = method_label(req.method());
    // hyper remembers the method it parsed and sends no body for HEAD.
    if req.method() == Method::HEAD {
        *req.method_mut() = Method::GET;
    }
    let r = match tokio::time::timeout(request_timeout, routes.call(req)).await {
        Ok(Ok(r)) => r,
        Ok(Err(never)) => match never {},
        Err(_) => error_response(
            StatusCode::REQUEST_TIMEOUT,
            &format!(
                "the request was not completed within {} s (HTTP_REQUEST_TIMEOUT)",
                request_timeout.as_secs_f64()
            ),
        ),
    };
    telemetry.record(route, method, r.status().as_u16(), started.elapsed());
    Ok(r)
}

/// Out of files or memory: say so and wait a little (retrying at once would
/// spin); a connection reset before it was accepted is nothing.
async fn accept_failed(e: &std::io::Error) {
    use std::io::ErrorKind::*;
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused
    ) {
        return;
    }
    tracing::error!(error = %e, "accept failed; retrying in 100 ms");
    tokio::time::sleep(Duration::from_millis(100)).await;
}
