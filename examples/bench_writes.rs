//! Disk writes, CPU and memory per ingested sample beside Prometheus, in one
//! run on the same machine and the same values:
//!
//! - a local exporter (in this process) serves `SERIES` series in the
//!   Prometheus text format; Debian's `prometheus` scrapes it every 5 s;
//! - every 5 s the same values are pushed to the release daemon's
//!   `POST /ingest/metrics` (`FLUSH_INTERVAL=1`), 10,000 samples a request.
//!
//! `bench_writes 1000 1500`: 1,000 series for 25 minutes; `bench_writes
//! 100000 300`: 20,000 samples/s for 5 minutes.
//!
//! The values are a third each a full-precision random walk, an integer
//! counter and a 0/1 series. After a warm-up, the run reads `write_bytes` and
//! CPU ticks from /proc/PID of both processes, and the samples each took in
//! (Prometheus: `prometheus_tsdb_head_samples_appended_total`), and what our
//! store says it wrote by kind (`mlsec_store_written_bytes_total`), so the
//! rest of `write_bytes` is sled's own.
//!
//! `cargo build --release && cargo run --release --example bench_writes [SERIES] [SECONDS]`
//! (defaults 1000 and 120; needs `apt-get install prometheus`).

#[path = "support/mod.rs"]
mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{Gen, Kind};

const STEP: Duration = Duration::from_secs(5);
const WARM_UP: Duration = Duration::from_secs(20);

fn io_field(pid: u32, field: &str) -> u64 {
    support::proc_field(&format!("/proc/{pid}/io"), field)
}

fn serve_exporter(listener: TcpListener, values: Arc<Mutex<Vec<f64>>>) {
    for stream in listener.incoming() {
        let Ok(mut s) = stream else { continue };
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf);
        let mut body = String::from("# TYPE bench_value gauge\n");
        for (i, v) in values.lock().expect("values").iter().enumerate() {
            body.push_str(&format!("bench_value{{id=\"{i}\"}} {v:?}\n"));
        }
        let _ = write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    }
}

fn prometheus_appended(port: u16) -> u64 {
    let text = support::get_text(&format!("http://127.0.0.1:{port}/metrics"));
    support::exposition_value(&text, "prometheus_tsdb_head_samples_appended_total")
        .map_or(0, |v| v as u64)
}

/// Our `mlsec_store_written_bytes` by kind (log, sealed, checkpoint): what
/// the store wrote, against which `write_bytes` shows sled's own share.
fn store_wrote(addr: &str) -> [u64; 3] {
    let text = support::get_text(&format!("http://{addr}/metrics"));
    ["log", "sealed", "checkpoint"].map(|kind| {
        let name = format!("mlsec_store_written_bytes_total{{kind=\"{kind}\"}}");
        support::exposition_value(&text, &name).map_or(0, |v| v as u64)
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let secs: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(120);
    let dir = tempfile::tempdir().expect("tempdir");

    // A third each: random walk, counter, 0/1.
    let kinds = [Kind::Walk, Kind::Counter, Kind::Health];
    let mut gens: Vec<Gen> = (0..n)
        .map(|i| Gen::new(kinds[i % 3], i as u64 + 1))
        .collect();
    let values = Arc::new(Mutex::new(
        gens.iter_mut().map(Gen::next).collect::<Vec<f64>>(),
    ));
    let exporter = TcpListener::bind("127.0.0.1:0").expect("bind");
    let exporter_port = exporter.local_addr().expect("addr").port();
    {
        let values = values.clone();
        std::thread::spawn(move || serve_exporter(exporter, values));
    }

    let prom_port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 5s\nscrape_configs:\n  - job_name: bench\n    static_configs:\n      - targets: ['127.0.0.1:{exporter_port}']\n"
        ),
    )
    .expect("config");
    let mut prom = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("prom").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus (apt-get install prometheus)");

    let data = dir.path().join("ours");
    let (mut ours, addr) = support::spawn_daemon(
        &["serve"],
        &[
            ("DATA_DIR", data.as_os_str()),
            ("FLUSH_INTERVAL", "1".as_ref()),
            // 100,000 series is the 20,000 samples/s point.
            ("MAX_SERIES", "1000000".as_ref()),
        ],
    );
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    // In requests of at most 10,000 samples (the ingest API's limit).
    let push = |values: &[f64]| -> u64 {
        let mut accepted = 0;
        for (c, chunk) in values.chunks(10_000).enumerate() {
            let samples: Vec<serde_json::Value> = chunk
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let id = c * 10_000 + i;
                    serde_json::json!({"metric": "bench_value", "labels": {"id": id.to_string()}, "value": v})
                })
                .collect();
            accepted += agent
                .post(&format!("http://{addr}/ingest/metrics"))
                .header("content-type", "application/json")
                .send(serde_json::json!({ "samples": samples }).to_string())
                .ok()
                .and_then(|mut r| r.body_mut().read_to_string().ok())
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .and_then(|v| v["accepted"].as_u64())
                .unwrap_or(0);
        }
        accepted
    };

    let started = Instant::now();
    let mut before = None;
    let mut pushed = 0u64;
    let mut tick = Instant::now();
    while started.elapsed() < WARM_UP + Duration::from_secs(secs) {
        let snapshot = {
            let mut v = values.lock().expect("values");
            for (v, g) in v.iter_mut().zip(gens.iter_mut()) {
                *v = g.next();
            }
            v.clone()
        };
        let accepted = push(&snapshot);
        if before.is_none() && started.elapsed() >= WARM_UP {
            before = Some((
                io_field(ours.id(), "write_bytes:"),
                io_field(prom.id(), "write_bytes:"),
                support::cpu_ticks(ours.id()),
                support::cpu_ticks(prom.id()),
                prometheus_appended(prom_port),
                Instant::now(),
                store_wrote(&addr),
            ));
        } else if before.is_some() {
            pushed += accepted;
        }
        tick += STEP;
        std::thread::sleep(tick.saturating_duration_since(Instant::now()));
    }
    let (ours_w0, prom_w0, ours_c0, prom_c0, prom_s0, t0, handed0) = before.expect("warmed up");
    // One more flush interval so the last push is on disk.
    std::thread::sleep(Duration::from_millis(1500));
    let ours_w = io_field(ours.id(), "write_bytes:") - ours_w0;
    let handed = store_wrote(&addr);
    let prom_w = io_field(prom.id(), "write_bytes:") - prom_w0;
    let ours_c = support::cpu_ticks(ours.id()) - ours_c0;
    let prom_c = support::cpu_ticks(prom.id()) - prom_c0;
    let prom_samples = prometheus_appended(prom_port) - prom_s0;
    let elapsed = t0.elapsed().as_secs_f64();
    let ours_rss = support::status_mb(ours.id(), "VmRSS:");
    let prom_rss = support::status_mb(prom.id(), "VmRSS:");
    let per = |w: u64, s: u64| w as f64 / s.max(1) as f64;
    println!(
        "{n} series every 5 s for {elapsed:.0} s (after a {}-s warm-up), same values to both:",
        WARM_UP.as_secs()
    );
    println!(
        "  mlsec-monitor: {pushed} samples, write_bytes {:.1} B/sample, CPU {ours_c} ticks, RSS {ours_rss:.1} MB",
        per(ours_w, pushed)
    );
    let [log, sealed, checkpoint] = [0, 1, 2].map(|i| per(handed[i] - handed0[i], pushed));
    println!(
        "  of which the store wrote: log records {log:.1} B/sample, sealed blocks {sealed:.1}, checkpoint files {checkpoint:.1}; the rest ({:.1}) is sled's own",
        per(ours_w, pushed) - log - sealed - checkpoint
    );
    println!(
        "  prometheus:    {prom_samples} samples, write_bytes {:.1} B/sample, CPU {prom_c} ticks, RSS {prom_rss:.1} MB",
        per(prom_w, prom_samples)
    );
    println!(
        "  ratio (ours / prometheus): writes per sample {:.1}x, CPU {:.1}x",
        per(ours_w, pushed) / per(prom_w, prom_samples).max(1e-9),
        ours_c as f64 / prom_c.max(1) as f64
    );
    let _ = ours.kill();
    let _ = prom.kill();
    let _ = ours.wait();
    let _ = prom.wait();
}
