//! Schemathesis (from PyPI, installed by scripts/test.sh into
//! target/schemathesis) generates requests from `/openapi.json` for every
//! operation, valid and invalid, and fails on any 5xx, any status, content
//! type or body the document does not give for it. The real binary runs
//! with access control on and an admin token, and must still answer (and
//! not have crashed) afterwards.

mod common;

use common::*;
use std::path::PathBuf;
use std::process::Command;

/// Examples per operation and phase: about 2,000 requests, 20-40 s.
const EXAMPLES: &str = "20";

fn schemathesis() -> PathBuf {
    let path = std::env::var_os("SCHEMATHESIS").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/schemathesis/bin/st"),
        PathBuf::from,
    );
    assert!(
        path.exists(),
        "schemathesis is not installed at {} (scripts/test.sh installs it)",
        path.display()
    );
    path
}

#[test]
fn schemathesis_finds_no_server_error_and_no_answer_off_the_document() {
    let st = schemathesis();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut daemon = Process::spawn(&data, &[("AUTH", "on")]);
    let token = wait_for(std::time::Duration::from_secs(10), || {
        std::fs::read_to_string(data.join("admin.token"))
            .ok()
            .filter(|t| !t.is_empty())
    });
    let base = format!("http://{}", daemon.addr);
    let out = Command::new(st)
        .current_dir(tmp.path())
        .env("NO_COLOR", "1")
        .args([
            "run",
            &format!("{base}/openapi.json"),
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            "--max-examples",
            EXAMPLES,
            // Reproducible: the same requests every run.
            "--seed",
            "20261204",
            "--request-timeout",
            "10",
            // A websocket is not described by OpenAPI's request model.
            "--exclude-path",
            "/ws/metrics",
            "--header",
            &format!("Authorization: Bearer {}", token.trim()),
        ])
        .output()
        .expect("schemathesis runs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "schemathesis failed:\n{report}");
    // "Test cases: 2040 generated, 2040 passed": thousands of requests ran.
    let generated: u64 = report
        .split(" generated,")
        .next()
        .and_then(|before| before.rsplit(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        generated >= 500,
        "schemathesis ran {generated} cases:\n{report}"
    );
    assert!(
        daemon.child.try_wait().unwrap().is_none(),
        "the daemon exited under schemathesis:\n{report}"
    );
    let r = get(daemon.addr, "/health");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(daemon.terminate(), 0);
}
