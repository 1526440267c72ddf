//! Backup and restore through the real binary: `mlsec-monitor backup` from
//! a running daemon while a client writes, `restore` into a new directory,
//! a daemon started on it; damaged archives refused; scheduled backups
//! pruned and picked by time; a failing schedule raising its alert.

mod common;

use common::*;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

const STEP_MS: i64 = 1_500;
const PER_REQUEST: u64 = 50;

/// Runs the binary with `args`; returns (exit code, stderr).
fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let (code, _, err) = run_cli(args, env);
    (code, err)
}

#[test]
fn a_backup_taken_while_a_client_writes_restores_everything_acknowledged_before_it() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start_in(&tmp.path().join("data"), &[("AUTH", "on")]);
    let admin = admin_token(&d);
    let token_file = d.data_dir.join("admin.token");
    let post = |path: &str, body: Value| {
        let r = with_token(d.addr, &admin, "POST", path, Some(&body));
        assert!(r.status < 300, "{path}: {}", r.text);
        r
    };
    // Something of every kind of state.
    post(
        "/ingest/models",
        json!({"name": "fraud-detector", "status": "loaded", "progress": 100.0, "memory_usage_mb": 512.0}),
    );
    post(
        "/ingest/training",
        json!({"job_id": "job-1", "model_name": "fraud-detector", "status": "running", "progress": 40.0,
               "started_at": chrono::Utc::now().to_rfc3339(),
               "resource_usage": {"cpu_usage": 50.0, "memory_usage_mb": 900.0}}),
    );
    post(
        "/api/v2/alerts",
        json!([{"labels": {"alertname": "DiskSlow", "severity": "warning"}, "annotations": {"summary": "slow disk"}}]),
    );
    let ends = (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
    post(
        "/silences",
        json!({"matchers": {"alertname": "Noisy"}, "ends_at": ends, "created_by": "amy", "comment": "maintenance"}),
    );
    let viewer = create(&d, &admin, "grafana", "viewer", None);

    // A client writes all along, in order, and notes what was acknowledged.
    let acked = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = chrono::Utc::now().timestamp_millis() - 6 * 86_400_000;
    let writer = {
        let (acked, stop, addr, admin) = (acked.clone(), stop.clone(), d.addr, admin.clone());
        std::thread::spawn(move || {
            let mut k = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let samples: Vec<Value> = (k..k + PER_REQUEST)
                    .map(|i| {
                        let ts = chrono::DateTime::from_timestamp_millis(t0 + i as i64 * STEP_MS)
                            .unwrap()
                            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                        json!({"metric": "backup_seq", "value": i, "timestamp": ts})
                    })
                    .collect();
                let r = with_token(
                    addr,
                    &admin,
                    "POST",
                    "/ingest/metrics",
                    Some(&json!({ "samples": samples })),
                );
                assert_eq!(r.status, 200, "{}", r.text);
                k += PER_REQUEST;
                acked.store(k, Ordering::SeqCst);
            }
        })
    };
    wait_for(Duration::from_secs(30), || {
        (acked.load(Ordering::SeqCst) >= 20_000).then_some(())
    });
    let audit_before = with_token(d.addr, &admin, "GET", "/audit?limit=1000", None).body["records"]
        .as_array()
        .map_or(0, Vec::len);
    let before = acked.load(Ordering::SeqCst);
    let archive = tmp.path().join("backup.mlsb");
    let (code, err) = backup_via_cli(&d, &token_file, &archive);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("backup: "), "{err}");
    assert!(!tmp.path().join("backup.mlsb.partial").exists());
    let during = acked.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    assert!(during > before, "the client wrote on during the backup");
    let health = with_token(d.addr, &admin, "GET", "/health", None).body;
    let last = &health["backup"]["last"];
    assert_eq!(last["ok"], true, "{health}");
    assert_eq!(last["scheduled"], false);
    assert_eq!(
        last["size_bytes"].as_u64(),
        Some(std::fs::metadata(&archive).unwrap().len()),
        "{health}"
    );
    assert_eq!(
        std::fs::metadata(&archive).unwrap().permissions().mode() & 0o777,
        0o600
    );
    drop(d);

    let restored = tmp.path().join("restored");
    let (code, err) = restore_via_cli(&archive, &restored, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("2 tokens"), "{err}");
    assert_eq!(
        std::fs::metadata(&restored).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let r = Daemon::start_in(&restored, &[("AUTH", "on")]);
    // The tokens came back: the old admin token and the viewer's work.
    let (count, max) = stored_sequence(r.addr, "backup_seq", Some(&viewer));
    assert_eq!(count as i64, max + 1, "a prefix: no holes, no duplicates");
    assert!(
        count >= before,
        "{count} samples restored, {before} were acknowledged before the backup began"
    );
    let alerts = with_token(r.addr, &admin, "GET", "/alerts", None).body;
    assert!(
        alerts["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["metadata"]["rule"] == "DiskSlow"),
        "{alerts}"
    );
    let silences = with_token(r.addr, &admin, "GET", "/silences", None).body;
    assert_eq!(silences["silences"][0]["created_by"], "amy", "{silences}");
    let models = with_token(r.addr, &admin, "GET", "/model-loading-status", None).body;
    assert!(models.to_string().contains("fraud-detector"), "{models}");
    let jobs = with_token(r.addr, &admin, "GET", "/training-status", None).body;
    assert!(jobs.to_string().contains("job-1"), "{jobs}");
    let audit = with_token(r.addr, &admin, "GET", "/audit?limit=1000", None).body;
    assert!(
        audit["records"].as_array().map_or(0, Vec::len) >= audit_before,
        "{audit}"
    );
    let health = with_token(r.addr, &admin, "GET", "/health", None).body;
    assert_eq!(health["store"]["corrupt_blocks"], 0, "{health}");
    drop(r);
    // The restored trail is whole.
    let (code, err) = run(
        &["audit", "verify", "--data-dir", restored.to_str().unwrap()],
        &[],
    );
    assert_eq!(code, 0, "{err}");
}

use std::os::unix::fs::PermissionsExt;

#[test]
fn cut_or_altered_archives_and_busy_directories_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start_in(&tmp.path().join("data"), &[("AUTH", "on")]);
    let admin = admin_token(&d);
    for i in 0..200 {
        d.post(
            "/ingest/metrics",
            &json!({"samples": [{"metric": "some_gauge", "value": i}]}),
        );
    }
    // Straight from the API this time.
    let r = agent()
        .post(&format!("http://{}/admin/backup", d.addr))
        .header("authorization", &bearer(&admin))
        .send_empty()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "application/octet-stream"
    );
    assert!(
        r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("mlsec-backup-")
    );
    // Written whole before the reply: its exact length comes first.
    let length: usize = r.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let bytes = r.into_body().read_to_vec().unwrap();
    assert_eq!(bytes.len(), length);
    // The spool file it was written to has no name in the data directory
    // (tempfile's unnamed files are `.tmp...` while they have one).
    let names: Vec<String> = std::fs::read_dir(tmp.path().join("data"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.starts_with(".tmp")), "{names:?}");
    let viewer = create(&d, &admin, "viewer", "viewer", None);
    let refused = with_token(d.addr, &viewer, "POST", "/admin/backup", None);
    assert_eq!(refused.status, 403, "only an admin takes backups");

    let good = tmp.path().join("good.mlsb");
    std::fs::write(&good, &bytes).unwrap();
    let cut = tmp.path().join("cut.mlsb");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let altered = tmp.path().join("altered.mlsb");
    let mut changed = bytes.clone();
    let at = bytes.len() / 2;
    changed[at] = changed[at].wrapping_add(1);
    std::fs::write(&altered, &changed).unwrap();
    let last_byte = tmp.path().join("last.mlsb");
    let mut changed = bytes.clone();
    *changed.last_mut().unwrap() ^= 1;
    std::fs::write(&last_byte, &changed).unwrap();
    for (file, why) in [
        (&cut, "truncated"),
        (&altered, "damaged"),
        (&last_byte, "checksum does not match"),
    ] {
        let target = tmp.path().join("target");
        let (code, err) = restore_via_cli(file, &target, &[]);
        assert_eq!(code, 1, "{}: {err}", file.display());
        assert!(
            err.contains(why) || err.contains("altered"),
            "{}: {err}",
            file.display()
        );
        assert!(!target.exists(), "nothing written for {}", file.display());
    }
    // Not into a directory in use, nor a non-empty one without --force.
    let (code, err) = restore_via_cli(&good, &d.data_dir, &[]);
    assert_eq!(code, 1);
    assert!(
        err.contains("is not empty") && err.contains("--force"),
        "{err}"
    );
    let (code, err) = restore_via_cli(&good, &d.data_dir, &["--force"]);
    assert_eq!(code, 1);
    assert!(err.contains("in use"), "{err}");
    let elsewhere = tmp.path().join("mine");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("notes.txt"), "mine").unwrap();
    let (code, err) = restore_via_cli(&good, &elsewhere, &["--force"]);
    assert_eq!(code, 1);
    assert!(err.contains("not part of a data directory"), "{err}");
    assert!(elsewhere.join("notes.txt").exists());
    drop(d);
    // A stopped daemon's directory is replaced with --force.
    let (code, err) = restore_via_cli(&good, &tmp.path().join("data"), &["--force"]);
    assert_eq!(code, 0, "{err}");
    let r = Daemon::start_in(&tmp.path().join("data"), &[("AUTH", "on")]);
    let reply = with_token(r.addr, &admin, "GET", "/metrics/summary", None);
    assert_eq!(reply.status, 200, "{}", reply.text);
    // The viewer token was made after the backup: gone with the restore.
    let gone = with_token(r.addr, &viewer, "GET", "/alerts", None);
    assert_eq!(gone.status, 401);
}

#[test]
fn scheduled_backups_are_pruned_picked_by_time_and_alert_when_they_fail() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("backups");
    let dir_s = dir.display().to_string();
    let d = Daemon::start_in(
        &tmp.path().join("data"),
        &[
            ("BACKUP_DIR", dir_s.as_str()),
            ("BACKUP_INTERVAL", "0.5"),
            ("BACKUP_KEEP", "3"),
        ],
    );
    let names = || -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&dir)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    let mut taken = std::collections::BTreeSet::new();
    wait_for(Duration::from_secs(60), || {
        for n in names() {
            if n.ends_with(".mlsb") {
                taken.insert(n);
            }
        }
        (taken.len() >= 6).then_some(())
    });
    let health = d.get("/health").body;
    assert_eq!(health["backup"]["scheduled"], true, "{health}");
    assert_eq!(health["backup"]["keep"], 3);
    assert_eq!(health["backup"]["last"]["scheduled"], true);
    drop(d);
    let left: Vec<String> = names()
        .into_iter()
        .filter(|n| n.ends_with(".mlsb"))
        .collect();
    assert_eq!(left.len(), 3, "{left:?}");
    // The newest three of all that were taken.
    let newest: Vec<&String> = taken.iter().rev().take(3).collect();
    assert!(
        newest.iter().all(|n| left.contains(n)),
        "{left:?} {newest:?}"
    );

    // After a restart /health names the newest backup in the directory
    // (not due again yet: the next is one interval after it).
    let d = Daemon::start_in(
        &tmp.path().join("data"),
        &[("BACKUP_DIR", dir_s.as_str()), ("BACKUP_INTERVAL", "3600")],
    );
    let last = wait_for(Duration::from_secs(10), || {
        let last = d.get("/health").body["backup"]["last"].clone();
        (!last.is_null()).then_some(last)
    });
    let newest = left.last().unwrap();
    assert_eq!(
        last["size_bytes"].as_u64(),
        Some(std::fs::metadata(dir.join(newest)).unwrap().len()),
        "{last}"
    );
    assert_eq!(last["ok"], true);
    assert!(
        last["duration_seconds"].is_null() && last["items"].is_null(),
        "{last}"
    );
    drop(d);
    assert_eq!(names().iter().filter(|n| n.ends_with(".mlsb")).count(), 3);

    // --at picks the newest taken at or before the time.
    let name = &left[1];
    let stamp = name
        .trim_start_matches("mlsec-backup-")
        .trim_end_matches(".mlsb");
    let at = chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%S%.3fZ")
        .unwrap()
        .and_utc();
    let at_s = (at + chrono::Duration::milliseconds(1)).to_rfc3339();
    let target = tmp.path().join("restored");
    let (code, err) = run(
        &[
            "restore",
            "--at",
            &at_s,
            "--backup-dir",
            &dir_s,
            "--data-dir",
            target.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(&format!("picked {}", dir.join(name).display())),
        "{err}"
    );
    let early = (at - chrono::Duration::hours(1)).to_rfc3339();
    let (code, err) = run(
        &[
            "restore",
            "--at",
            &early,
            "--backup-dir",
            &dir_s,
            "--data-dir",
            "/nonexistent/x",
        ],
        &[],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("no backup in") && err.contains("the oldest is from"),
        "{err}"
    );

    // A schedule that cannot write: the outcome in /health, and an alert.
    let blocked = tmp.path().join("a-file");
    std::fs::write(&blocked, "not a directory").unwrap();
    let blocked_s = blocked.join("backups").display().to_string();
    let d = Daemon::start_in(
        &tmp.path().join("data2"),
        &[
            ("BACKUP_DIR", blocked_s.as_str()),
            ("BACKUP_INTERVAL", "1"),
            ("ALERT_EVALUATION_INTERVAL", "0.5"),
        ],
    );
    let last = wait_for(Duration::from_secs(30), || {
        let h = d.get("/health").body;
        (h["backup"]["last"]["ok"] == false).then(|| h["backup"]["last"].clone())
    });
    assert!(last["error"].as_str().unwrap().contains("a-file"), "{last}");
    assert!(d.get("/health").body["backup"]["last_success_at"].is_null());
    wait_for(Duration::from_secs(30), || {
        let alerts = d.get("/alerts").body;
        alerts["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["metadata"]["rule"] == "backup_failed" && a["status"] == "active")
            .then_some(())
    });
}
