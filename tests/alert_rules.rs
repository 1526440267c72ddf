//! Rule evaluation over synthetic series written with explicit timestamps:
//! threshold, `for`, hysteresis (clear-after), rate, a new firing after a
//! resolve, restart without duplicates, and retention purge, all with an
//! injected clock.

use chrono::{DateTime, Duration, TimeZone, Utc};
use mlsec_monitor::alerting::engine::Engine;
use mlsec_monitor::alerting::outbox::Router;
use mlsec_monitor::alerting::state::{AlertFilter, AlertState, AuditFilter};
use mlsec_monitor::alerting::{Alert, AlertStatus};
use mlsec_monitor::config::{Config, Overrides};
use mlsec_monitor::store::{Sample, SeriesKey, Store};
use std::collections::HashMap;
use std::sync::Arc;

const RULES: &str = r#"
[[rules]]
name = "queue_high"
metric = "queue_depth"
aggregation = "last"
window = 60
threshold = 100
for = 30
clear_after = 60
severity = "critical"
message = "queue {label.queue} at {value} (limit {threshold})"

[[rules]]
name = "errors_fast"
metric = "errors_total"
aggregation = "rate"
window = 120
threshold = 2
severity = "warning"
clear_after = 0
"#;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    engine: Engine,
    config: Config,
}

fn fixture(extra_env: &[(&str, &str)]) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("c.toml");
    std::fs::write(&file, RULES).expect("rules file");
    let mut env: HashMap<String, String> = extra_env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    env.insert("CONFIG_FILE".into(), file.display().to_string());
    env.insert(
        "DATA_DIR".into(),
        dir.path().join("data").display().to_string(),
    );
    let config = Config::from_sources(Overrides::default(), &env).expect("config");
    let store = mlsec_monitor::open_store(&config).expect("store");
    let engine = Engine::new(
        &config,
        store.clone(),
        Arc::new(AlertState::open(&store, Router::from_config(&config)).expect("alert state")),
    );
    Fixture {
        _dir: dir,
        store,
        engine,
        config,
    }
}

fn put(store: &Store, key: SeriesKey, at: DateTime<Utc>, value: f64) {
    let id = store.resolve(&key).expect("series");
    store
        .ingest(&[Sample {
            series: id,
            ts_ms: at.timestamp_millis(),
            value,
        }])
        .expect("ingest");
}

fn queue(f: &Fixture, at: DateTime<Utc>, v: f64) {
    put(
        &f.store,
        SeriesKey::new("queue_depth").with("queue", "q1"),
        at,
        v,
    );
}

fn ours(f: &Fixture, rule: &str) -> Vec<Alert> {
    // Oldest first.
    let all = f
        .engine
        .state
        .list(&AlertFilter::default(), usize::MAX, Utc::now());
    all.alerts
        .into_iter()
        .rev()
        .filter(|a| a.rule == rule)
        .collect()
}

#[test]
fn threshold_for_and_clear_after_keep_a_hovering_value_from_flapping() {
    let f = fixture(&[]);
    let t = t0();
    // Above the threshold, but not yet for 30 s.
    queue(&f, t, 150.0);
    f.engine.evaluate_at(t).unwrap();
    queue(&f, t + Duration::seconds(20), 150.0);
    f.engine.evaluate_at(t + Duration::seconds(20)).unwrap();
    assert!(
        ours(&f, "queue_high").is_empty(),
        "for = 30 s has not passed"
    );
    queue(&f, t + Duration::seconds(30), 160.0);
    f.engine.evaluate_at(t + Duration::seconds(30)).unwrap();
    let a = ours(&f, "queue_high");
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].status, AlertStatus::Active);
    assert_eq!(a[0].message, "queue q1 at 160 (limit 100)");
    assert_eq!(a[0].labels["queue"], "q1");
    // Hovering around the threshold for 5 minutes: below, above, below ... the
    // clear-after of 60 s is never reached, so it stays one alert.
    for i in 1..=30 {
        let at = t + Duration::seconds(30 + i * 10);
        queue(&f, at, if i % 3 == 0 { 120.0 } else { 90.0 });
        f.engine.evaluate_at(at).unwrap();
    }
    let a = ours(&f, "queue_high");
    assert_eq!(a.len(), 1, "no flapping");
    assert_eq!(a[0].status, AlertStatus::Active);
    // Clear for 60 s: resolved by the system.
    let mut at = t + Duration::seconds(400);
    for _ in 0..8 {
        queue(&f, at, 50.0);
        f.engine.evaluate_at(at).unwrap();
        at += Duration::seconds(10);
    }
    let a = ours(&f, "queue_high");
    assert_eq!(a[0].status, AlertStatus::Resolved);
    assert_eq!(a[0].resolved_by.as_deref(), Some("system"));
    // A later firing is a new alert with a new id.
    for s in [0, 40] {
        queue(&f, at + Duration::seconds(s), 500.0);
        f.engine.evaluate_at(at + Duration::seconds(s)).unwrap();
    }
    let a = ours(&f, "queue_high");
    assert_eq!(a.len(), 2);
    assert_ne!(a[0].alert_id, a[1].alert_id);
    assert_eq!(a[1].status, AlertStatus::Active);
}

#[test]
fn rate_rules_and_restart_without_duplicates() {
    let f = fixture(&[]);
    let t = t0();
    let key = SeriesKey::new("errors_total").with("service", "api");
    // A counter growing 1/s: below 2/s.
    for s in 0..=120 {
        put(&f.store, key.clone(), t + Duration::seconds(s), s as f64);
    }
    f.engine.evaluate_at(t + Duration::seconds(120)).unwrap();
    assert!(ours(&f, "errors_fast").is_empty());
    // Then 5/s for two minutes.
    for s in 121..=240 {
        put(
            &f.store,
            key.clone(),
            t + Duration::seconds(s),
            120.0 + (s - 120) as f64 * 5.0,
        );
    }
    f.engine.evaluate_at(t + Duration::seconds(240)).unwrap();
    let a = ours(&f, "errors_fast");
    assert_eq!(a.len(), 1);
    assert_eq!(
        a[0].status,
        AlertStatus::Active,
        "still firing, not resolved"
    );
    assert!((a[0].value - 5.0).abs() < 0.2, "{}", a[0].value);
    assert_eq!(a[0].service, "api");
    f.store.flush().unwrap();
    // A restart picks up the open alert: evaluating again does not fire a second one.
    let Fixture {
        _dir,
        store,
        engine,
        config,
    } = f;
    drop(engine);
    drop(store);
    let store = mlsec_monitor::open_store(&config).expect("store");
    let engine = Engine::new(
        &config,
        store.clone(),
        Arc::new(AlertState::open(&store, Router::from_config(&config)).expect("alert state")),
    );
    engine.evaluate_at(t + Duration::seconds(245)).unwrap();
    let n = engine
        .state
        .list(&AlertFilter::default(), usize::MAX, Utc::now())
        .alerts
        .iter()
        .filter(|a| a.rule == "errors_fast")
        .count();
    assert_eq!(n, 1, "no duplicate after restart");
    let fired = engine
        .state
        .audit_records(&AuditFilter::default(), usize::MAX)
        .iter()
        .filter(|r| r.action == "fired")
        .count();
    assert_eq!(fired, 1);
}

#[test]
fn resolved_alerts_are_purged_after_the_retention() {
    let f = fixture(&[("ALERT_RETENTION_DAYS", "90")]);
    let t = t0();
    for s in [0, 30] {
        queue(&f, t + Duration::seconds(s), 200.0);
        f.engine.evaluate_at(t + Duration::seconds(s)).unwrap();
    }
    let id = ours(&f, "queue_high")[0].alert_id.clone();
    let now = t + Duration::seconds(60);
    f.engine
        .state
        .resolve(&id, "ops", Some("fixed".into()), now)
        .unwrap()
        .unwrap();
    // 89 days later it is still there, with its audit trail.
    f.engine.evaluate_at(now + Duration::days(89)).unwrap();
    assert!(f.engine.state.history(&id, Utc::now()).is_some());
    // 91 days later it is gone, audit records included.
    f.engine.evaluate_at(now + Duration::days(91)).unwrap();
    assert!(f.engine.state.history(&id, Utc::now()).is_none());
    assert!(
        !f.engine
            .state
            .audit_records(&AuditFilter::default(), usize::MAX)
            .iter()
            .any(|r| r.alert_id.as_deref() == Some(id.as_str()))
    );
}

#[test]
fn a_disk_forecast_full_within_a_day_warns_after_10_minutes_and_clears_an_hour_after_it_stops() {
    let f = fixture(&[]);
    let t = t0();
    let disk = SeriesKey::new("disk_usage_percent").with("mount", "/data");
    // Six hours at 50 %, then an hour filling 1 % an hour (49 h left).
    let mut level = 50.0;
    for m in 0..7 * 60 {
        if m >= 6 * 60 {
            level += 1.0 / 60.0;
        }
        put(&f.store, disk.clone(), t + Duration::minutes(m), level);
    }
    let now = t + Duration::minutes(7 * 60);
    f.engine.evaluate_at(now).unwrap();
    assert!(
        ours(&f, "disk_full_forecast").is_empty(),
        "49 h left: no warning"
    );
    // Faster: 20 % an hour from 51 % (2.5 h left), every minute for 40
    // minutes. The rule's value drops under 24 h once the short window
    // sees the new trend; the warning comes 10 minutes after that.
    let rule = mlsec_monitor::alerting::rule::effective_rules(&f.config)
        .into_iter()
        .find(|r| r.name == "disk_full_forecast")
        .expect("built in");
    let mut at = now;
    let mut under = None;
    for _ in 0..40 {
        at += Duration::minutes(1);
        level += 20.0 / 60.0;
        put(&f.store, disk.clone(), at, level);
        let v = mlsec_monitor::alerting::rule::evaluate(&rule, &f.store, at.timestamp_millis())
            .unwrap()[0]
            .1;
        if under.is_none() && v.is_some_and(|h| h < 24.0) {
            under = Some(at);
        }
        f.engine.evaluate_at(at).unwrap();
        let fired = !ours(&f, "disk_full_forecast").is_empty();
        assert_eq!(
            fired,
            under.is_some_and(|u| at - u >= Duration::minutes(10)),
            "at {at}: value {v:?}, under 24 h since {under:?}"
        );
    }
    let under = under.expect("the forecast went under a day");
    assert!(
        under - now <= Duration::minutes(25),
        "seen after {}",
        under - now
    );
    let a = ours(&f, "disk_full_forecast");
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a[0].status, AlertStatus::Active);
    assert!(a[0].value < 24.0, "{}", a[0].value);
    assert!(
        a[0].message.starts_with("Disk /data is forecast full in"),
        "{}",
        a[0].message
    );
    // Cleaned up: the disk drops to 40 % and stays; the warning holds for an
    // hour without the forecast, then resolves.
    for _ in 0..90 {
        at += Duration::minutes(1);
        put(&f.store, disk.clone(), at, 40.0);
        f.engine.evaluate_at(at).unwrap();
        let open = ours(&f, "disk_full_forecast")[0].status == AlertStatus::Active;
        if at - now < Duration::minutes(60) {
            assert!(open, "held at {at}");
        }
    }
    assert_eq!(
        ours(&f, "disk_full_forecast")[0].status,
        AlertStatus::Resolved
    );
}
