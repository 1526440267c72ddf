//! TCP probe: a connect within the timeout is up.

use super::{ProbeResult, timed_out};
use crate::config::services::ServiceSpec;
use std::time::Instant;

pub async fn check(spec: &ServiceSpec) -> ProbeResult {
    let started = Instant::now();
    match tokio::time::timeout(spec.timeout, tokio::net::TcpStream::connect(&spec.target)).await {
        Ok(Ok(_)) => ProbeResult::up(started),
        Ok(Err(e)) => ProbeResult::down(started, super::http::io_message(&e)),
        Err(_) => ProbeResult::down(started, timed_out(spec.timeout)),
    }
}
