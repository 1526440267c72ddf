//! Remote write out (issue "Interop and scale-out") to a real Prometheus
//! with its remote write receiver on: every sample pushed arrives, exactly
//! once, through a receiver outage and a daemon restart in the middle of it.

mod common;

use common::servers::{Prometheus, free_port};
use common::*;
use serde_json::json;
use std::time::Duration;

/// Pushes `rw_probe` samples at seconds `from..to` after `base_ms`.
fn push(addr: std::net::SocketAddr, base_ms: i64, from: i64, to: i64) {
    let samples: Vec<_> = (from..to)
        .map(|i| {
            let at = chrono::DateTime::from_timestamp_millis(base_ms + i * 1000).expect("time");
            json!({"metric": "rw_probe", "labels": {"site": "edge"}, "value": i as f64, "timestamp": at.to_rfc3339()})
        })
        .collect();
    let r = post_json(addr, "/ingest/metrics", &json!({ "samples": samples }));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["accepted"], to - from, "{}", r.text);
}

fn count(p: &Prometheus) -> Option<String> {
    let r = p.query("count_over_time(rw_probe{site=\"edge\"}[30m])");
    r.first()?["value"][1].as_str().map(str::to_string)
}

#[test]
fn every_sample_arrives_once_through_an_outage_and_a_restart() {
    let prom_dir = tempfile::tempdir().expect("tempdir");
    let prom_port = free_port();
    let prom_config = "global:\n  scrape_interval: 1m\n";
    let prometheus = Prometheus::start_at(prom_dir.path(), prom_port, prom_config);
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("config.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[remote_write]]\nname = \"central\"\nurl = \"http://127.0.0.1:{prom_port}/api/v1/write\"\n\
             external_labels = {{ edge_box = \"box-7\" }}\n"
        ),
    )
    .expect("config");
    let data = dir.path().join("data");
    let cfg_s = cfg.display().to_string();
    let env = [("CONFIG_FILE", cfg_s.as_str())];
    let base = chrono::Utc::now().timestamp_millis() - 600_000;

    let d = Process::spawn(&data, &env);
    push(d.addr, base, 0, 50);
    wait_for(Duration::from_secs(20), || {
        (count(&prometheus).as_deref() == Some("50")).then_some(())
    });
    let shipped = prometheus.query("last_over_time(rw_probe{site=\"edge\"}[30m])");
    assert_eq!(shipped[0]["metric"]["edge_box"], "box-7", "{shipped:?}");

    // The receiver goes away; samples wait in the queue, across a restart.
    drop(prometheus);
    push(d.addr, base, 50, 100);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(d.terminate(), 0);
    let d = Process::spawn(&data, &env);
    push(d.addr, base, 100, 150);
    let waiting = wait_for(Duration::from_secs(10), || {
        let h = get(d.addr, "/health").body;
        let q = h["remote_write"][0].clone();
        (q["queued_batches"].as_u64()? >= 1 && q["failed_attempts"].as_u64()? >= 1).then_some(q)
    });
    assert_eq!(waiting["name"], "central");
    assert!(waiting["last_error"].is_string(), "{waiting}");

    // Back: everything arrives, once.
    let prometheus = Prometheus::start_at(prom_dir.path(), prom_port, prom_config);
    wait_for(Duration::from_secs(60), || {
        (count(&prometheus).as_deref() == Some("150")).then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(count(&prometheus).as_deref(), Some("150"));
    let sum = prometheus.query("sum_over_time(rw_probe{site=\"edge\"}[30m])");
    assert_eq!(sum[0]["value"][1], (0..150).sum::<i64>().to_string());
    let h = get(d.addr, "/health").body;
    let q = &h["remote_write"][0];
    assert_eq!(q["dropped_for_age_samples"], 0, "{q}");
    assert_eq!(q["rejected_samples"], 0, "{q}");
    let m = get(d.addr, "/metrics").text;
    assert!(
        m.contains("mlsec_remote_write_samples_total{destination=\"central\",outcome=\"sent\"}"),
        "{m}"
    );
}

/// A receiver that accepts and never answers held the daemon's stop for the
/// whole send timeout (30 s, where systemd is waiting); the stop now waits
/// at most two seconds for it, and the batch stays queued for the next start.
#[test]
fn a_hanging_receiver_does_not_hold_the_shutdown() {
    use common::servers::{Behavior, HttpTarget};
    let receiver = HttpTarget::start(Behavior::Hang);
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("config.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[remote_write]]\nname = \"stuck\"\nurl = \"http://127.0.0.1:{}/api/v1/write\"\n",
            receiver.port
        ),
    )
    .expect("config");
    let cfg_s = cfg.display().to_string();
    let data = dir.path().join("data");
    let d = Process::spawn(&data, &[("CONFIG_FILE", cfg_s.as_str())]);
    push(d.addr, chrono::Utc::now().timestamp_millis() - 60_000, 0, 5);
    // A send is in flight: the receiver took the connection.
    wait_for(Duration::from_secs(10), || {
        (receiver.hits() >= 1).then_some(())
    });
    let h = get(d.addr, "/health").body;
    assert!(
        h["remote_write"][0]["queued_batches"].as_u64() >= Some(1),
        "{h}"
    );
    let started = std::time::Instant::now();
    assert_eq!(d.terminate(), 0);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "the stop took {took:?}");
}
