//! `GET /metrics`: the daemon's own health in the Prometheus text format, or
//! OpenMetrics when `Accept` asks for it: ingest and drops, the store, flush
//! and request latencies, probes per service, open alerts, notifications,
//! live-feed clients, sign-in failures. With `?series=all`, also the newest
//! sample of every stored gauge series with its labels and time.

use super::AppState;
use super::exposition::{Exposition, Format, HistogramValue, Kind};
use super::reject::ApiError;
use crate::telemetry::HistogramSnapshot;
use serde::Deserialize;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsQuery {
    series: Option<String>,
}

fn histogram(h: HistogramSnapshot) -> HistogramValue {
    HistogramValue {
        buckets: h.buckets,
        sum: h.sum_seconds,
        count: h.count,
    }
}

pub async fn metrics(
    state: AppState,
    q: MetricsQuery,
    accept: Option<String>,
) -> Result<Response, warp::Rejection> {
    let all = match q.series.as_deref() {
        None => false,
        Some("all") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "series '{other}': the only choice is 'all' (every stored series' newest sample)"
            )));
        }
    };
    let Some(format) = Format::negotiate(accept.as_deref()) else {
        return Err(warp::reject::custom(ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            format!(
                "Accept '{}' names no format this endpoint writes: text/plain (Prometheus 0.0.4) or application/openmetrics-text",
                accept.unwrap_or_default()
            ),
        )));
    };
    let st = state.clone();
    let text = super::blocking(move || {
        let e = gather(&st);
        // The stored series go straight into the answer (64 B a line is
        // about what they take).
        let tail_len = if all { st.store.stats().series * 64 } else { 0 };
        Ok(e.render_with(format, tail_len, |out| {
            if all {
                series(out, &st, format);
            }
        }))
    })
    .await?;
    Ok(warp::reply::with_header(text, "content-type", format.content_type()).into_response())
}

fn gather(state: &AppState) -> Exposition {
    let mut e = Exposition::default();
    e.family("mlsec_build_info", "The running release.", Kind::Gauge)
        .add(&[("version", env!("CARGO_PKG_VERSION"))], 1.0);
    e.family(
        "mlsec_uptime_seconds",
        "Seconds since the daemon started.",
        Kind::Gauge,
    )
    .add(&[], state.uptime_seconds());

    let s = state.store.stats();
    e.family("mlsec_store_series", "Series in the store.", Kind::Gauge)
        .add(&[], s.series as f64);
    e.family(
        "mlsec_store_samples_ingested",
        "Samples stored since start.",
        Kind::Counter,
    )
    .add(&[], s.samples_ingested as f64);
    e.family(
        "mlsec_store_samples_dropped",
        "Samples refused since start (series limit, invalid).",
        Kind::Counter,
    )
    .add(&[], s.samples_dropped as f64);
    let late = e.family(
        "mlsec_store_samples_too_old",
        "Samples older than a tier's window, by tier (kept in the coarser tiers that still hold them).",
        Kind::Counter,
    );
    for (tier, n) in ["raw", "1m", "1h"].iter().zip(s.late_per_tier) {
        late.add(&[("tier", tier)], n as f64);
    }
    e.family(
        "mlsec_store_flushes",
        "Store flushes since start.",
        Kind::Counter,
    )
    .add(&[], s.flushes as f64);
    e.family(
        "mlsec_store_flush_duration_seconds",
        "How long store flushes took.",
        Kind::Histogram,
    )
    .add_histogram(&[], histogram(state.store.flush_durations()));
    let written = e.family(
        "mlsec_store_written_bytes",
        "Bytes the store wrote since start, by kind: log records and sealed blocks to sled, checkpoints to their file.",
        Kind::Counter,
    );
    for (kind, n) in [
        ("log", s.bytes_logged),
        ("sealed", s.bytes_sealed),
        ("checkpoint", s.bytes_checkpointed),
    ] {
        written.add(&[("kind", kind)], n as f64);
    }
    e.family(
        "mlsec_store_size_bytes",
        "The data directory's size on disk, measured after a flush at most every 10 s.",
        Kind::Gauge,
    )
    .add(&[], state.store.size_on_disk() as f64);
    e.family(
        "mlsec_store_writable",
        "1 while the last flush succeeded.",
        Kind::Gauge,
    )
    .add(&[], f64::from(u8::from(state.store.writable())));
    e.family(
        "mlsec_store_corrupt_blocks",
        "Stored blocks found damaged (read as empty).",
        Kind::Counter,
    )
    .add(&[], s.corrupt_blocks as f64);

    let c = state.system.counters();
    e.family(
        "mlsec_collector_ticks",
        "System collector ticks, by outcome.",
        Kind::Counter,
    )
    .add(
        &[("outcome", "ok")],
        c.ticks.saturating_sub(c.failed) as f64,
    )
    .add(&[("outcome", "failed")], c.failed as f64);
    e.family(
        "mlsec_collector_healthy",
        "1 while the system collector ticks.",
        Kind::Gauge,
    )
    .add(&[], f64::from(u8::from(state.system.is_healthy())));

    let services = state.health.snapshot();
    let up = e.family(
        "mlsec_probe_up",
        "1 when the service's last check passed (healthy or degraded); absent before the first check.",
        Kind::Gauge,
    );
    for v in &services {
        if let Some(r) = &v.last {
            let ok = r.status != crate::health::HealthStatus::Unhealthy;
            up.add(
                &[("service", &v.name), ("kind", v.kind)],
                f64::from(u8::from(ok)),
            );
        }
    }
    let took = e.family(
        "mlsec_probe_duration_seconds",
        "How long the service's last check took, to the answer or the failure.",
        Kind::Gauge,
    );
    for v in &services {
        if let Some(r) = &v.last {
            took.add(&[("service", &v.name)], r.latency_ms / 1000.0);
        }
    }
    let failures = e.family(
        "mlsec_probe_consecutive_failures",
        "Failed checks in a row.",
        Kind::Gauge,
    );
    for v in &services {
        failures.add(&[("service", &v.name)], f64::from(v.consecutive_failures));
    }
    let checks = state.health.counters();
    e.family(
        "mlsec_probe_checks",
        "Checks since start, by outcome.",
        Kind::Counter,
    )
    .add(&[("outcome", "ok")], checks.successful as f64)
    .add(&[("outcome", "failed")], checks.failed as f64);

    let alerts = state.alerts.state.counts();
    e.family(
        "mlsec_alerts_open",
        "Open (active or acknowledged) alerts, by severity.",
        Kind::Gauge,
    )
    .add(&[("severity", "critical")], alerts.critical as f64)
    .add(&[("severity", "warning")], alerts.warning as f64)
    .add(&[("severity", "info")], alerts.info as f64);
    e.family(
        "mlsec_alerts_unacknowledged",
        "Active alerts nobody acknowledged yet.",
        Kind::Gauge,
    )
    .add(&[], alerts.active as f64);
    let sent = e.family(
        "mlsec_notifications",
        "Notification attempts since start, by channel and outcome.",
        Kind::Counter,
    );
    for ((channel, outcome), n) in state.alerts.state.deliveries() {
        sent.add(&[("channel", &channel), ("outcome", outcome)], n as f64);
    }
    e.family(
        "mlsec_notifications_queued",
        "Notifications waiting in the outbox.",
        Kind::Gauge,
    )
    .add(&[], state.alerts.state.queued() as f64);

    e.family(
        "mlsec_websocket_clients",
        "Live-feed clients connected.",
        Kind::Gauge,
    )
    .add(&[], state.hub.clients() as f64);
    e.family(
        "mlsec_auth_failed_sign_ins",
        "Requests with a bad token since start.",
        Kind::Counter,
    )
    .add(&[], state.limiter.failures() as f64);
    e.family(
        "mlsec_auth_refused_requests",
        "Requests refused (429) from addresses blocked for failed sign-ins.",
        Kind::Counter,
    )
    .add(&[], state.limiter.refused() as f64);

    let requests = e.family(
        "mlsec_http_requests",
        "HTTP requests answered, by route, method and status.",
        Kind::Counter,
    );
    for ((route, method, status), n) in state.http.requests() {
        let status = status.to_string();
        requests.add(
            &[("route", route), ("method", method), ("status", &status)],
            n as f64,
        );
    }
    let durations = e.family(
        "mlsec_http_request_duration_seconds",
        "How long HTTP requests took to answer, by route.",
        Kind::Histogram,
    );
    for (route, h) in state.http.durations() {
        durations.add_histogram(&[("route", route)], histogram(h));
    }

    if let Some(rw) = &state.remote_write {
        let stats = rw.stats();
        let samples = e.family(
            "mlsec_remote_write_samples",
            "Samples of each remote-write destination, by outcome: sent, or dropped for age, for a full queue, or refused by the receiver.",
            Kind::Counter,
        );
        for s in &stats {
            for (outcome, n) in [
                ("sent", s.sent_samples),
                ("dropped_age", s.dropped.age),
                ("dropped_full", s.dropped.full),
                ("rejected", s.dropped.rejected),
            ] {
                samples.add(&[("destination", &s.name), ("outcome", outcome)], n as f64);
            }
        }
        let queued = e.family(
            "mlsec_remote_write_queue_bytes",
            "Bytes of batches waiting in each destination's durable queue.",
            Kind::Gauge,
        );
        for s in &stats {
            queued.add(&[("destination", &s.name)], s.queued_bytes as f64);
        }
        let failed = e.family(
            "mlsec_remote_write_failed_attempts",
            "Sends that failed and will be retried (5xx, 429, network).",
            Kind::Counter,
        );
        for s in &stats {
            failed.add(&[("destination", &s.name)], s.failed_attempts as f64);
        }
        e.family(
            "mlsec_remote_write_tap_dropped_batches",
            "Ingested batches not shipped because the forwarder fell behind.",
            Kind::Counter,
        )
        .add(&[], state.store.tap_dropped() as f64);
    }
    e
}

/// The newest sample of every stored gauge series, one family per metric
/// name, written straight from the series' canonical text (it is already
/// the exposition's `metric{label="value"}` with `\\` and `"` escaped; a
/// value with a newline is escaped here). Sorted by that text, the series
/// of one metric are contiguous (they share the prefix `metric{`).
fn series(out: &mut String, state: &AppState, format: Format) {
    use std::fmt::Write;
    let mut current = String::new();
    let (mut floats, mut ints) = (ryu::Buffer::new(), itoa::Buffer::new());
    state.store.newest_samples(|metric, text, at, value| {
        if metric != current {
            let _ = writeln!(out, "# HELP {metric} A stored series: its newest sample.");
            let _ = writeln!(out, "# TYPE {metric} gauge");
            current.clear();
            current.push_str(metric);
        }
        let series = text.strip_suffix("{}").unwrap_or(text);
        if series.bytes().any(|b| b == b'\n') {
            out.push_str(&series.replace('\n', "\\n"));
        } else {
            out.push_str(series);
        }
        out.push(' ');
        super::exposition::push_number(out, value, &mut ints, &mut floats);
        out.push(' ');
        match format {
            Format::Text => out.push_str(ints.format(at)),
            // OpenMetrics timestamps are seconds.
            Format::OpenMetrics => {
                out.push_str(ints.format(at.div_euclid(1000)));
                let ms = at.rem_euclid(1000);
                let _ = write!(out, ".{ms:03}");
            }
        }
        out.push('\n');
    });
}
