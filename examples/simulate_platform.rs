//! Drives a running daemon with a realistic ML security platform, so every
//! endpoint and the dashboard have something to show:
//!
//! ```sh
//! mlsec-monitor serve &                                  # or ./install.sh ... serve
//! cargo run --release --example simulate_platform -- [URL] [SECONDS]
//! ```
//!
//! URL defaults to http://127.0.0.1:8006, SECONDS to 600. With access
//! control on, give it an `ingest` (or admin) token in `MLSEC_TOKEN`
//! (`MLSEC_TOKEN=$(mlsec-monitor token create --name simulator --role ingest)`).
//! Every second it
//! pushes request traffic for four services (with latency spikes and bursts
//! of errors), models loading, loading again after failing, and training
//! jobs progressing to completion, through the public HTTP API only.

use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// A small deterministic generator so the example needs no extra crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn post(agent: &ureq::Agent, url: &str, body: &Value) {
    let mut req = agent.post(url).header("content-type", "application/json");
    if let Ok(t) = std::env::var("MLSEC_TOKEN") {
        req = req.header("authorization", &format!("Bearer {}", t.trim()));
    }
    match req.send(body.to_string()) {
        Ok(r) if r.status().is_success() => {}
        Ok(mut r) => eprintln!(
            "{url}: {} {}",
            r.status(),
            r.body_mut().read_to_string().unwrap_or_default()
        ),
        Err(e) => eprintln!("{url}: {e}"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let base = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "http://127.0.0.1:8006".into());
    let seconds: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(600);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .into();
    let mut rng = Rng(0x9E3779B97F4A7C15);
    // (service, typical latency ms, requests per second, error share)
    let services = [
        ("api-gateway", 8.0, 120.0, 0.002),
        ("model-api", 45.0, 60.0, 0.01),
        ("training", 120.0, 5.0, 0.0),
        ("analytics", 30.0, 20.0, 0.005),
    ];
    let models = [
        "fraud-detector",
        "prompt-injection",
        "pii-scanner",
        "toxicity",
        "malware-embed",
    ];
    let started = Instant::now();
    let job_started = chrono::Utc::now().to_rfc3339();
    println!("simulating against {base} for {seconds} s");
    let mut tick = 0u64;
    while started.elapsed() < Duration::from_secs(seconds) {
        let t0 = Instant::now();
        // A latency spike and an error burst come and go every few minutes.
        let spike = if (tick / 60) % 4 == 3 { 4.0 } else { 1.0 };
        let burst = (tick / 90) % 5 == 4;
        for (name, lat, rps, err) in services {
            let n = (rps * (0.8 + 0.4 * rng.next())) as usize;
            let reqs: Vec<Value> = (0..n)
                .map(|_| {
                    let d = lat * spike * (-(1.0 - rng.next()).ln()).max(0.05);
                    let failed = rng.next()
                        < if burst && name == "model-api" {
                            0.2
                        } else {
                            err
                        };
                    json!({"duration_ms": d, "status": if failed { 503 } else { 200 }})
                })
                .collect();
            if !reqs.is_empty() {
                post(
                    &agent,
                    &format!("{base}/ingest/requests"),
                    &json!({"service": name, "requests": reqs}),
                );
            }
            // Resource use the services report themselves.
            post(
                &agent,
                &format!("{base}/ingest/metrics"),
                &json!({"samples": [
                    {"metric": "service_cpu_usage_percent", "labels": {"service": name}, "value": 5.0 + 30.0 * rng.next() * spike},
                    {"metric": "service_memory_mb", "labels": {"service": name}, "value": 300.0 + 50.0 * rng.next()},
                ]}),
            );
        }
        // Models: each cycles loading -> loaded; one in five loads fails, then retries.
        if tick.is_multiple_of(5) {
            for (i, m) in models.iter().enumerate() {
                let phase = (tick / 5 + i as u64 * 3) % 12;
                let (status, progress, extra) = match phase {
                    0..=3 => ("loading", phase as f64 * 25.0, None),
                    4 if i == 2 && (tick / 60) % 2 == 1 => {
                        ("failed", 80.0, Some("CUDA out of memory"))
                    }
                    _ => ("loaded", 100.0, None),
                };
                let mut ev = json!({"name": m, "status": status, "progress": progress,
                                    "memory_usage_mb": 800.0 + 400.0 * i as f64});
                if let Some(e) = extra {
                    ev["error_message"] = json!(e);
                }
                post(&agent, &format!("{base}/ingest/models"), &ev);
            }
            // Training: three jobs progressing at different speeds, then a new round.
            for (j, speed) in [0.4, 0.25, 0.1].iter().enumerate() {
                let progress = ((tick as f64 * speed) % 130.0).min(100.0);
                let status = match progress {
                    p if p >= 100.0 => "completed",
                    0.0 => "pending",
                    _ => "running",
                };
                post(
                    &agent,
                    &format!("{base}/ingest/training"),
                    &json!({"job_id": format!("job-{j}"), "model_name": models[j], "status": status,
                            "progress": progress, "started_at": job_started,
                            "resource_usage": {"cpu_usage": 180.0 + 20.0 * rng.next(),
                                               "memory_usage_mb": 4096.0, "gpu_usage": 60.0 + 30.0 * rng.next()}}),
                );
            }
        }
        tick += 1;
        if tick.is_multiple_of(30) {
            println!(
                "{tick} s pushed; see {base}/metrics/summary?time_range=1h and {base}/dashboard-data"
            );
        }
        std::thread::sleep(Duration::from_secs(1).saturating_sub(t0.elapsed()));
    }
}
