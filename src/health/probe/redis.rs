//! Redis probe: PING through the `redis` crate, with the password and
//! database taken from the URL.

use super::{ProbeResult, timed_out};
use crate::config::services::ServiceSpec;
use std::time::Instant;

pub async fn check(spec: &ServiceSpec) -> ProbeResult {
    let started = Instant::now();
    let client = match redis::Client::open(spec.target.as_str()) {
        Ok(c) => c,
        Err(e) => return ProbeResult::down(started, format!("bad redis URL: {e}")),
    };
    let cfg = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(spec.timeout))
        .set_response_timeout(Some(spec.timeout));
    let ping = async {
        let mut con = client
            .get_multiplexed_async_connection_with_config(&cfg)
            .await?;
        redis::cmd("PING").query_async::<String>(&mut con).await
    };
    match tokio::time::timeout(spec.timeout, ping).await {
        Ok(Ok(pong)) if pong == "PONG" => ProbeResult::up(started),
        Ok(Ok(other)) => ProbeResult::down(started, format!("unexpected PING answer '{other}'")),
        Ok(Err(e)) => ProbeResult::down(started, message(&e)),
        Err(_) => ProbeResult::down(started, timed_out(spec.timeout)),
    }
}

fn message(e: &redis::RedisError) -> String {
    let text = e.to_string();
    let lower = text.to_lowercase();
    if e.kind() == redis::ErrorKind::AuthenticationFailed
        || lower.contains("wrongpass")
        || lower.contains("noauth")
        || lower.contains("invalid password")
    {
        format!("authentication failed: {text}")
    } else if e.is_connection_refusal() {
        "connection refused".to_string()
    } else if e.is_timeout() {
        "timed out".to_string()
    } else {
        text
    }
}
