//! Live feed and chart benchmarks against the release daemon:
//!
//! 1. 1,000 concurrent websocket clients on `/ws/metrics` with
//!    `DASHBOARD_REFRESH_INTERVAL=1`: the delay from each periodic message's
//!    timestamp (when the daemon published it) to its arrival at every
//!    client (p50/p99/max), and the daemon's RSS with them connected;
//! 2. a 7-day `/charts/system-metrics` under `wrk -t2 -c64 -d10s`.
//!
//! `ulimit -n 8192; cargo build --release && cargo run --release --example bench_live [CLIENTS] [SECONDS]`
//! (1,000 sockets on each side need more than the usual 1,024 descriptors).

#[path = "support/mod.rs"]
mod support;

use futures_util::StreamExt;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// Seven days of one-a-minute samples for the chart's three series, so the
/// 7-day chart reads full blocks.
fn backfill_week(dir: &std::path::Path) {
    use mlsec_monitor::store::{Layout, Sample, SeriesKey, Store};
    let store = Store::open(dir, Layout::new(Duration::from_secs(5), 30), 1000).expect("store");
    let now = chrono::Utc::now().timestamp_millis();
    let mut samples = Vec::new();
    for (i, metric) in [
        "cpu_usage_percent",
        "memory_usage_percent",
        "disk_usage_percent",
    ]
    .iter()
    .enumerate()
    {
        let id = store.resolve(&SeriesKey::new(metric)).expect("resolve");
        for m in 0..7 * 24 * 60i64 {
            samples.push(Sample {
                series: id,
                ts_ms: now - m * 60_000,
                value: 20.0 + i as f64 * 20.0 + (m % 60) as f64 / 6.0,
            });
        }
    }
    store.ingest(&samples).expect("ingest");
    store.flush().expect("flush");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let clients: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let secs: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(15);
    let dir = tempfile::tempdir().expect("tempdir");
    backfill_week(dir.path());
    let (mut child, addr) = support::spawn_daemon(
        &["serve"],
        &[
            ("DATA_DIR", dir.path().as_os_str()),
            ("DASHBOARD_REFRESH_INTERVAL", "1".as_ref()),
            ("LOG_LEVEL", "info".as_ref()),
        ],
    );
    let pid = child.id();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let delays = rt.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..clients {
            let url = format!("ws://{addr}/ws/metrics");
            tasks.push(tokio::spawn(async move {
                let (mut ws, _) = tokio_tungstenite::connect_async(url)
                    .await
                    .expect("connect");
                let mut delays = Vec::new();
                let end = Instant::now() + Duration::from_secs(secs);
                while let Ok(Some(Ok(m))) = tokio::time::timeout_at(end.into(), ws.next()).await {
                    if let Message::Text(t) = m {
                        let v: serde_json::Value = serde_json::from_str(&t).expect("json");
                        if v["type"] == "metrics" {
                            let sent = chrono::DateTime::parse_from_rfc3339(
                                v["timestamp"].as_str().expect("ts"),
                            )
                            .expect("rfc3339");
                            let delay = chrono::Utc::now()
                                .signed_duration_since(sent)
                                .num_microseconds()
                                .unwrap_or(0);
                            delays.push(delay as f64 / 1000.0);
                        }
                    }
                }
                delays
            }));
        }
        // RSS with every client connected, midway.
        tokio::time::sleep(Duration::from_secs(secs / 2)).await;
        println!(
            "daemon RSS with {clients} live clients: {:.1} MB",
            support::status_mb(pid, "VmRSS:")
        );
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.expect("client"));
        }
        all
    });
    let mut d = delays;
    d.sort_by(f64::total_cmp);
    let pct = |p: f64| d[((d.len() as f64 * p) as usize).min(d.len() - 1)];
    println!(
        "{clients} clients, {} periodic messages received: delay from publish p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        d.len(),
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    support::wrk(&format!(
        "http://{addr}/charts/system-metrics?time_range=7d"
    ));
    let _ = child.kill();
    let _ = child.wait();
}
