//! The live feed over a real websocket client (tokio-tungstenite): the
//! snapshot, periodic messages, alert events within a second, a stalled
//! client beside a healthy one, the connection cap, and shutdown.

mod common;

use common::*;
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(addr: std::net::SocketAddr) -> Ws {
    let (ws, resp) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws/metrics"))
        .await
        .expect("connect");
    assert_eq!(resp.status(), 101);
    ws
}

/// The next text message as JSON (pings are skipped).
async fn next(ws: &mut Ws, within: Duration) -> Value {
    let end = Instant::now() + within;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(&t).expect("json"),
            Ok(Some(Ok(_))) => continue,
            other => panic!("no message within {within:?}: {other:?}"),
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

const RULE: &str = "[[rules]]\nname = \"queue_high\"\nmetric = \"queue_depth\"\naggregation = \"last\"\nwindow = 60\nthreshold = 10\nseverity = \"critical\"\n";

#[test]
fn snapshot_periodic_messages_and_alert_events() {
    let d = Daemon::start_with_config(
        RULE,
        &[
            ("DASHBOARD_REFRESH_INTERVAL", "0.3"),
            ("ALERT_EVALUATION_INTERVAL", "0.2"),
        ],
    );
    let addr = d.addr;
    runtime().block_on(async move {
        let mut ws = connect(addr).await;
        let snap = next(&mut ws, Duration::from_secs(2)).await;
        assert_eq!(snap["type"], "snapshot");
        for key in ["timestamp", "active_alerts", "services", "alerts"] {
            assert!(snap.get(key).is_some(), "{key}: {snap}");
        }
        let m = loop {
            let m = next(&mut ws, Duration::from_secs(3)).await;
            if m["type"] == "metrics" && m["cpu_usage"].is_number() {
                break m;
            }
        };
        assert!(m["memory_usage_mb"].as_f64().unwrap() > 0.0);
        assert!(m["active_alerts"].is_u64());
        assert_eq!(m["load_average"].as_array().unwrap().len(), 3);
        assert!(chrono::DateTime::parse_from_rfc3339(m["timestamp"].as_str().unwrap()).is_ok());
        // An alert event arrives within a second of the alert firing.
        let pushed = Instant::now();
        let r = tokio::task::spawn_blocking(move || {
            post_json(
                addr,
                "/ingest/metrics",
                &json!({"samples": [{"metric": "queue_depth", "value": 50.0}]}),
            )
        })
        .await
        .unwrap();
        assert_eq!(r.status, 200);
        let ev = loop {
            let m = next(&mut ws, Duration::from_secs(3)).await;
            if m["type"] == "alert" && m["alert"]["metadata"]["rule"] == "queue_high" {
                break m;
            }
        };
        assert_eq!(ev["event"], "fired");
        assert_eq!(ev["alert"]["severity"], "critical");
        // Evaluation runs every 0.2 s: fired and delivered well within a second.
        assert!(
            pushed.elapsed() < Duration::from_secs(1),
            "{:?}",
            pushed.elapsed()
        );
        // Acknowledging is pushed too.
        let id = ev["alert"]["alert_id"].as_str().unwrap().to_string();
        tokio::task::spawn_blocking(move || {
            post_json(
                addr,
                "/alerts/acknowledge",
                &json!({"alert_id": id, "acknowledged_by": "amy"}),
            )
        })
        .await
        .unwrap();
        let ack = loop {
            let m = next(&mut ws, Duration::from_secs(3)).await;
            if m["type"] == "alert" {
                break m;
            }
        };
        assert_eq!(ack["event"], "acknowledged");
    });
}

#[test]
fn a_stalled_client_does_not_delay_a_healthy_one() {
    let d = Daemon::start(&[("DASHBOARD_REFRESH_INTERVAL", "0.05")]);
    let addr = d.addr;
    runtime().block_on(async move {
        // Connects and never reads.
        let _stalled = connect(addr).await;
        let mut ws = connect(addr).await;
        let start = Instant::now();
        let mut n = 0;
        while n < 40 {
            let m = next(&mut ws, Duration::from_secs(2)).await;
            if m["type"] == "metrics" {
                n += 1;
            }
        }
        // 40 messages at 50 ms: about 2 s.
        assert!(
            start.elapsed() < Duration::from_secs(4),
            "{:?}",
            start.elapsed()
        );
    });
}

#[test]
fn the_connection_cap_and_plain_http_are_answered_cleanly() {
    let d = Daemon::start(&[("WS_MAX_CLIENTS", "2")]);
    let addr = d.addr;
    let r = d.get("/ws/metrics");
    assert_eq!(r.status, 400);
    assert!(r.body["error"].as_str().unwrap().contains("websocket"));
    runtime().block_on(async move {
        let _a = connect(addr).await;
        let _b = connect(addr).await;
        match tokio_tungstenite::connect_async(format!("ws://{addr}/ws/metrics")).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                assert_eq!(resp.status(), 503)
            }
            other => panic!("expected 503, got {:?}", other.map(|(_, r)| r.status())),
        }
        drop(_a);
        // The place is given back when a client leaves.
        let mut ok = false;
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if tokio_tungstenite::connect_async(format!("ws://{addr}/ws/metrics"))
                .await
                .is_ok()
            {
                ok = true;
                break;
            }
        }
        assert!(ok, "a freed place can be taken");
    });
}

#[test]
fn shutdown_closes_clients_with_going_away() {
    let d = Daemon::start(&[]);
    let addr = d.addr;
    let rt = runtime();
    let mut ws = rt.block_on(async move {
        let mut ws = connect(addr).await;
        assert_eq!(
            next(&mut ws, Duration::from_secs(2)).await["type"],
            "snapshot"
        );
        ws
    });
    let stopper = std::thread::spawn(move || d.stop());
    rt.block_on(async move {
        let code = loop {
            match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
                Ok(Some(Ok(Message::Close(Some(f))))) => break u16::from(f.code),
                Ok(Some(Ok(_))) => continue,
                other => panic!("no close frame: {other:?}"),
            }
        };
        assert_eq!(code, 1001);
    });
    stopper.join().unwrap().expect("clean stop");
}
