//! PostgreSQL probe: log in with the URL's credentials and run `SELECT 1`
//! through `tokio-postgres` (no TLS).

use super::{ProbeResult, timed_out};
use crate::config::services::ServiceSpec;
use std::time::Instant;

pub async fn check(spec: &ServiceSpec) -> ProbeResult {
    let started = Instant::now();
    let mut cfg: tokio_postgres::Config = match spec.target.parse() {
        Ok(c) => c,
        Err(e) => return ProbeResult::down(started, format!("bad postgres URL: {e}")),
    };
    cfg.connect_timeout(spec.timeout);
    let query = async {
        let (client, conn) = cfg.connect(tokio_postgres::NoTls).await?;
        // The connection future must be driven; it ends when `client` drops.
        let driver = tokio::spawn(conn);
        let one: i32 = client.query_one("SELECT 1", &[]).await?.get(0);
        drop(client);
        let _ = driver.await;
        Ok::<i32, tokio_postgres::Error>(one)
    };
    match tokio::time::timeout(spec.timeout, query).await {
        Ok(Ok(1)) => ProbeResult::up(started),
        Ok(Ok(n)) => ProbeResult::down(started, format!("SELECT 1 returned {n}")),
        Ok(Err(e)) => ProbeResult::down(started, message(&e)),
        Err(_) => ProbeResult::down(started, timed_out(spec.timeout)),
    }
}

/// tokio-postgres' Display is terse ("db error"); use the server's message.
fn message(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        // 28P01 invalid_password, 28000 invalid_authorization_specification
        if code.starts_with("28") {
            return format!("authentication failed: {}", db.message());
        }
        return format!("{} ({code})", db.message());
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    if text.contains("Connection refused") {
        "connection refused".into()
    } else {
        text
    }
}
