//! Crash safety of the store: real daemon processes killed with SIGKILL at
//! random points while a client pushes samples. Nothing acknowledged more
//! than one flush interval before the kill may be lost, nothing may be
//! counted twice, and the daemon must start again every time.
//!
//! Samples carry a sequence number `k` as their value and a distinct
//! timestamp derived from `k` (1.5 s apart, so every round crosses hour and
//! day boundaries and blocks of every tier are sealed while the log still
//! holds their samples), and are pushed in order by one client, so what
//! survives is always a prefix: the stored count must equal the highest
//! stored `k` plus one. A replay that counted a sealed block's samples again
//! fails that.

mod common;

use common::{Process, agent};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ROUNDS: usize = 8;
const PER_REQUEST: u64 = 50;
/// At most this many samples a round (8 rounds of 1.5 s steps stay inside
/// the 6 days the test's timestamps start before now).
const PER_ROUND: u64 = 40_000;
const STEP_MS: i64 = 1_500;
const FLUSH_SECS: f64 = 0.25;
/// Time for a flush that was due to finish on a loaded test machine.
const SLACK: Duration = Duration::from_millis(750);

/// How many `crash_seq` samples are stored, checked to be a prefix of the
/// sequence (the count equals the highest stored value plus one).
fn stored_prefix(addr: std::net::SocketAddr, when: &str) -> u64 {
    let (count, max) = stored(addr);
    assert_eq!(
        count as i64,
        max + 1,
        "{when}: stored samples are not a prefix (duplicates or holes)"
    );
    count
}

/// Count and highest value of every stored `crash_seq` sample.
fn stored(addr: std::net::SocketAddr) -> (u64, i64) {
    common::stored_sequence(addr, "crash_seq", None)
}

#[test]
fn sigkill_during_ingest_loses_at_most_one_flush_interval() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let env = [("FLUSH_INTERVAL", "0.25")];
    assert!(FLUSH_SECS < SLACK.as_secs_f64());
    // Timestamps from 6 days ago, all within the 7 days the query reads.
    let t0 = chrono::Utc::now().timestamp_millis() - 6 * 86_400_000;
    let mut seed = t0 as u64 | 1;
    for round in 0..ROUNDS {
        let p = Process::spawn(&data, &env);
        let next = stored_prefix(p.addr, &format!("round {round}, at start"));
        // Push in the background; remember when each request was acknowledged.
        let acked: Arc<Mutex<Vec<(Instant, u64)>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let pusher = {
            let (acked, stop, addr) = (acked.clone(), stop.clone(), p.addr);
            std::thread::spawn(move || {
                let client = agent();
                let mut k = next;
                while !stop.load(Ordering::Relaxed) {
                    if k >= next + PER_ROUND {
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    }
                    let samples: Vec<Value> = (k..k + PER_REQUEST)
                        .map(|i| {
                            let ts =
                                chrono::DateTime::from_timestamp_millis(t0 + i as i64 * STEP_MS)
                                    .unwrap()
                                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                            json!({"metric": "crash_seq", "value": i, "timestamp": ts})
                        })
                        .collect();
                    let r = client
                        .post(&format!("http://{addr}/ingest/metrics"))
                        .header("content-type", "application/json")
                        .send(json!({ "samples": samples }).to_string());
                    match r {
                        Ok(resp) if resp.status() == 200 => {
                            k += PER_REQUEST;
                            acked.lock().unwrap().push((Instant::now(), k));
                        }
                        _ => break, // the daemon is gone
                    }
                }
            })
        };
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(300 + seed % 1200));
        let mut p = p;
        p.child.kill().unwrap(); // SIGKILL: no shutdown, no final flush
        let killed = Instant::now();
        p.child.wait().unwrap();
        stop.store(true, Ordering::Relaxed);
        pusher.join().unwrap();
        drop(p);
        // Everything acknowledged before `killed - FLUSH - SLACK` must survive.
        let must = acked
            .lock()
            .unwrap()
            .iter()
            .filter(|(at, _)| *at + SLACK <= killed)
            .map(|(_, k)| *k)
            .max()
            .unwrap_or(next);
        let q = Process::spawn(&data, &env);
        let count = stored_prefix(q.addr, &format!("round {round}, after the kill"));
        assert!(
            count >= must,
            "round {round}: {count} samples stored, but {must} were acknowledged \
             more than {SLACK:?} before the kill"
        );
        let health = common::get(q.addr, "/health").body;
        assert_eq!(health["store"]["corrupt_blocks"], 0, "{health}");
        assert!(count > next, "round {round}: the pusher made progress");
        drop(q);
    }
}
