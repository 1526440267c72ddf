//! Remote write out: every sample stored (collected or ingested) shipped to
//! the `[[remote_write]]` destinations with the Prometheus remote write 1.0
//! protocol, through a durable queue per destination, so what a receiver
//! outage or a daemon restart holds up is delivered afterwards, in order.
//!
//! - `proto.rs` the wire format (protobuf `WriteRequest`, snappy)
//! - `convert.rs` stored samples as the series a PromQL user expects
//! - `queue.rs` the durable ring of batches, bounded by bytes and age
//!
//! One forwarder thread takes the store's tap, batches a second of samples
//! (or 10,000), and writes the batch into every queue, durable before the
//! next; one sender thread per destination posts the oldest batch, retries
//! with back-off on 5xx, 429 and network errors, and drops a batch the
//! receiver refuses for good (other 4xx), counting it.

pub mod convert;
pub mod proto;
pub mod queue;

use crate::config::remote_write::{Auth, RemoteWriteSpec};
use crate::error::{Error, Result};
use crate::store::Store;
use queue::Queue;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A batch holds at most a second of samples, or this many.
const BATCH_SAMPLES: usize = 10_000;
const BATCH_EVERY: Duration = Duration::from_secs(1);
const MIN_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// One destination: its queue and what happened to its samples.
pub struct Destination {
    pub spec: RemoteWriteSpec,
    queue: Mutex<Queue>,
    /// Wakes the sender when a batch is queued.
    queued: std::sync::Condvar,
    sent_samples: AtomicU64,
    sent_batches: AtomicU64,
    failed_attempts: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// What `/health` and `/metrics` show of one destination.
#[derive(Clone, Debug, Default)]
pub struct DestinationStats {
    pub name: String,
    pub queued_batches: u64,
    pub queued_bytes: u64,
    pub sent_samples: u64,
    pub sent_batches: u64,
    pub failed_attempts: u64,
    pub dropped: queue::Dropped,
    pub last_error: Option<String>,
}

pub struct RemoteWrite {
    destinations: Vec<Arc<Destination>>,
    stop: Arc<AtomicBool>,
    /// One sender per destination.
    senders: Mutex<Vec<std::thread::JoinHandle<()>>>,
    /// The thread that batches the tap into the queues.
    forwarder: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// How long a stop waits for a send in flight (it is not cut short: its
/// batch stays queued until acknowledged, so a later start sends it again).
const STOP_GRACE: Duration = Duration::from_secs(2);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Destination {
    pub fn stats(&self) -> DestinationStats {
        let q = lock(&self.queue);
        let (batches, bytes) = q.waiting();
        DestinationStats {
            name: self.spec.name.clone(),
            queued_batches: batches,
            queued_bytes: bytes,
            sent_samples: self.sent_samples.load(Ordering::Relaxed),
            sent_batches: self.sent_batches.load(Ordering::Relaxed),
            failed_attempts: self.failed_attempts.load(Ordering::Relaxed),
            dropped: q.dropped,
            last_error: lock(&self.last_error).clone(),
        }
    }
}

fn agent(spec: &RemoteWriteSpec) -> Result<ureq::Agent> {
    let mut config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(SEND_TIMEOUT));
    if let Some(ca) = &spec.tls_ca_file {
        use ureq::tls::{Certificate, RootCerts, TlsConfig};
        let pem = std::fs::read(ca).map_err(|e| {
            Error::config(format!(
                "remote_write \"{}\": {}: {e}",
                spec.name,
                ca.display()
            ))
        })?;
        let cert = Certificate::from_pem(&pem).map_err(|e| {
            Error::config(format!(
                "remote_write \"{}\": {}: not a PEM certificate: {e}",
                spec.name,
                ca.display()
            ))
        })?;
        config = config.tls_config(
            TlsConfig::builder()
                .root_certs(RootCerts::new_with_certs(&[cert]))
                .build(),
        );
    }
    Ok(config.build().into())
}

/// What one attempt to send a batch came to.
enum Sent {
    Delivered,
    /// Try again later (5xx, 429, network).
    Retry(String),
    /// The receiver refuses it for good (another 4xx).
    Refused(String),
}

fn send(agent: &ureq::Agent, spec: &RemoteWriteSpec, body: &[u8]) -> Sent {
    let mut req = agent
        .post(&spec.url)
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "snappy")
        .header("x-prometheus-remote-write-version", "0.1.0")
        .header(
            "user-agent",
            concat!("mlsec-monitor/", env!("CARGO_PKG_VERSION")),
        );
    match &spec.auth {
        Some(Auth::Bearer(t)) => req = req.header("authorization", &format!("Bearer {t}")),
        Some(Auth::Basic { username, password }) => {
            use base64::Engine;
            let pair =
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
            req = req.header("authorization", &format!("Basic {pair}"));
        }
        None => {}
    }
    match req.send(body) {
        Ok(mut r) => {
            let status = r.status().as_u16();
            let text = r
                .body_mut()
                .with_config()
                .limit(4096)
                .read_to_string()
                .unwrap_or_default();
            match status {
                200..=299 => Sent::Delivered,
                429 | 500..=599 => Sent::Retry(format!("{status}: {}", text.trim())),
                _ => Sent::Refused(format!("{status}: {}", text.trim())),
            }
        }
        Err(e) => Sent::Retry(e.to_string()),
    }
}

/// Sends the destination's batches, oldest first, until `stop`.
fn sender(d: Arc<Destination>, agent: ureq::Agent, stop: Arc<AtomicBool>) {
    let mut backoff = MIN_BACKOFF;
    while !stop.load(Ordering::Relaxed) {
        let batch = {
            let mut q = lock(&d.queue);
            match q.peek(now_ms()) {
                Ok(Some(b)) => b,
                Ok(None) => {
                    // Nothing waiting: sleep until a batch is queued.
                    let _ = d.queued.wait_timeout(q, Duration::from_millis(500));
                    continue;
                }
                Err(e) => {
                    *lock(&d.last_error) = Some(format!("queue: {e}"));
                    drop(q);
                    std::thread::sleep(MAX_BACKOFF.min(Duration::from_secs(1)));
                    continue;
                }
            }
        };
        match send(&agent, &d.spec, &batch.body) {
            Sent::Delivered => {
                backoff = MIN_BACKOFF;
                d.sent_samples.fetch_add(batch.samples, Ordering::Relaxed);
                d.sent_batches.fetch_add(1, Ordering::Relaxed);
                let _ = lock(&d.queue).ack(batch.pos);
            }
            Sent::Refused(why) => {
                tracing::warn!(remote_write = %d.spec.name, samples = batch.samples, error = %why, "a batch refused by the receiver is dropped");
                let mut q = lock(&d.queue);
                q.dropped.rejected += batch.samples;
                let _ = q.ack(batch.pos);
                *lock(&d.last_error) = Some(why);
            }
            Sent::Retry(why) => {
                d.failed_attempts.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(remote_write = %d.spec.name, error = %why, retry_in = ?backoff, "remote write failed");
                *lock(&d.last_error) = Some(why);
                let until = Instant::now() + backoff;
                while Instant::now() < until && !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(50));
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Takes the store's tap, batches, and queues every batch everywhere.
fn forwarder(
    store: Store,
    tap: std::sync::mpsc::Receiver<crate::store::TapBatch>,
    destinations: Vec<Arc<Destination>>,
    mut convert: Vec<convert::Converter>,
    stop: Arc<AtomicBool>,
) {
    let mut since = Instant::now();
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        if !stopping {
            match tap.recv_timeout(Duration::from_millis(100)) {
                Ok(batch) => {
                    for c in convert.iter_mut() {
                        c.add(&store, batch.clone());
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
            }
        }
        let full = convert.first().is_some_and(|c| c.len() >= BATCH_SAMPLES);
        if full || since.elapsed() >= BATCH_EVERY || stopping {
            since = Instant::now();
            let mut wrote = false;
            for (d, c) in destinations.iter().zip(convert.iter_mut()) {
                if c.is_empty() {
                    continue;
                }
                let (req, n) = c.take();
                let body = proto::encode(&req);
                if let Err(e) = lock(&d.queue).push(&body, n as u64, now_ms()) {
                    *lock(&d.last_error) = Some(format!("queue: {e}"));
                }
                wrote = true;
            }
            if wrote {
                // Durable before the senders see it.
                if let Err(e) = store.sync() {
                    tracing::error!(error = %e, "remote write: the queue could not be made durable");
                }
                for d in &destinations {
                    d.queued.notify_one();
                }
            }
        }
        if stopping {
            return;
        }
    }
}

impl RemoteWrite {
    /// Opens every destination's queue and starts shipping (none: `None`).
    pub fn start(store: &Store, specs: &[RemoteWriteSpec]) -> Result<Option<Arc<RemoteWrite>>> {
        if specs.is_empty() {
            return Ok(None);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let mut destinations = Vec::new();
        let mut agents = Vec::new();
        for spec in specs {
            let tree = store.tree(&format!("remote_write/{}", spec.name))?;
            let queue =
                Queue::open(tree, spec.queue_max_bytes, spec.queue_max_age).map_err(|e| {
                    Error::Store {
                        dir: store.dir().to_path_buf(),
                        message: format!("remote_write \"{}\" queue: {e}", spec.name),
                    }
                })?;
            agents.push(agent(spec)?);
            destinations.push(Arc::new(Destination {
                spec: spec.clone(),
                queue: Mutex::new(queue),
                queued: std::sync::Condvar::new(),
                sent_samples: AtomicU64::new(0),
                sent_batches: AtomicU64::new(0),
                failed_attempts: AtomicU64::new(0),
                last_error: Mutex::new(None),
            }));
        }
        let mut senders = Vec::new();
        for (d, a) in destinations.iter().zip(agents) {
            let (d, stop) = (d.clone(), stop.clone());
            senders.push(
                std::thread::Builder::new()
                    .name(format!("remote-write-{}", d.spec.name))
                    .spawn(move || sender(d, a, stop))
                    .map_err(Error::Io)?,
            );
        }
        let convert = specs
            .iter()
            .map(|s| convert::Converter::new(s.external_labels.clone()))
            .collect();
        let tap = store.tap(4096);
        let (st, ds, s) = (store.clone(), destinations.clone(), stop.clone());
        let forwarder = std::thread::Builder::new()
            .name("remote-write-batches".into())
            .spawn(move || forwarder(st, tap, ds, convert, s))
            .map_err(Error::Io)?;
        Ok(Some(Arc::new(RemoteWrite {
            destinations,
            stop,
            senders: Mutex::new(senders),
            forwarder: Mutex::new(Some(forwarder)),
        })))
    }

    pub fn stats(&self) -> Vec<DestinationStats> {
        self.destinations.iter().map(|d| d.stats()).collect()
    }

    /// Queues what is batched (waiting for it: it must be durable) and
    /// stops the senders, waiting at most `STOP_GRACE` for a send in flight
    /// to a slow or hanging receiver (blocking).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        for d in &self.destinations {
            d.queued.notify_all();
        }
        if let Some(t) = lock(&self.forwarder).take() {
            let _ = t.join();
        }
        let end = Instant::now() + STOP_GRACE;
        for (t, d) in std::mem::take(&mut *lock(&self.senders))
            .into_iter()
            .zip(&self.destinations)
        {
            while !t.is_finished() && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(10));
            }
            if t.is_finished() {
                let _ = t.join();
            } else {
                tracing::warn!(remote_write = %d.spec.name, "a send still in flight at shutdown: not waited for (its batch stays queued and is sent after the next start)");
            }
        }
    }
}
