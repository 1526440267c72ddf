//! `[[remote_write]]`: where to ship every sample (Prometheus remote write
//! 1.0), with what credentials, and how much of an outage the durable queue
//! rides out. Validated at start.

use crate::error::{Error, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Default: what is not delivered within two hours is dropped (a receiver
/// such as Prometheus refuses samples much older than its head anyway).
pub const QUEUE_MAX_AGE_SECS: f64 = 7200.0;
/// Default: at most 64 MiB of compressed batches wait.
pub const QUEUE_MAX_BYTES: u64 = 64 << 20;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRemoteWrite {
    /// Names the queue (default `remote_write_N`).
    pub name: Option<String>,
    pub url: String,
    pub bearer_token: Option<String>,
    pub basic_auth: Option<RawBasicAuth>,
    /// A PEM CA file the receiver's certificate must chain to.
    pub tls_ca_file: Option<String>,
    /// Seconds a batch may wait for delivery before it is dropped.
    pub queue_max_age: Option<f64>,
    /// Bytes of waiting batches; past it the oldest are dropped.
    pub queue_max_bytes: Option<i64>,
    /// Labels added to every series shipped (`instance = "edge-7"`).
    #[serde(default)]
    pub external_labels: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBasicAuth {
    pub username: String,
    pub password: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Auth {
    Bearer(String),
    Basic { username: String, password: String },
}

#[derive(Clone, Debug, PartialEq)]
pub struct RemoteWriteSpec {
    pub name: String,
    pub url: String,
    pub auth: Option<Auth>,
    pub tls_ca_file: Option<PathBuf>,
    pub queue_max_age: Duration,
    pub queue_max_bytes: u64,
    pub external_labels: BTreeMap<String, String>,
}

pub fn build(raw: &[RawRemoteWrite]) -> Result<Vec<RemoteWriteSpec>> {
    let mut out: Vec<RemoteWriteSpec> = Vec::new();
    for (i, r) in raw.iter().enumerate() {
        let name = r
            .name
            .clone()
            .unwrap_or_else(|| format!("remote_write_{i}"));
        let fail = |m: String| Error::config(format!("remote_write[{i}] (\"{name}\"): {m}"));
        let name_ok = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !name_ok || out.iter().any(|o| o.name == name) {
            return Err(fail(
                "name must be unique, 1-64 letters, digits, '_' or '-'".into(),
            ));
        }
        if !(r.url.starts_with("http://") || r.url.starts_with("https://")) {
            return Err(fail(format!("url '{}' is not an http(s) URL", r.url)));
        }
        let auth = match (&r.bearer_token, &r.basic_auth) {
            (Some(_), Some(_)) => {
                return Err(fail("bearer_token and basic_auth: choose one".into()));
            }
            (Some(t), None) => Some(Auth::Bearer(t.clone())),
            (None, Some(b)) => Some(Auth::Basic {
                username: b.username.clone(),
                password: b.password.clone(),
            }),
            (None, None) => None,
        };
        let age = r.queue_max_age.unwrap_or(QUEUE_MAX_AGE_SECS);
        if !(age.is_finite() && age > 0.0 && age <= 30.0 * 86400.0) {
            return Err(fail(format!(
                "queue_max_age {age}: seconds above 0, at most 30 days"
            )));
        }
        let bytes = match r.queue_max_bytes {
            None => QUEUE_MAX_BYTES,
            Some(b) if (1 << 20..=1 << 40).contains(&b) => b as u64,
            Some(b) => {
                return Err(fail(format!(
                    "queue_max_bytes {b}: from 1 MiB (1048576) to 1 TiB"
                )));
            }
        };
        for (k, v) in &r.external_labels {
            crate::names::check_label(k, v).map_err(|e| fail(format!("external_labels: {e}")))?;
        }
        out.push(RemoteWriteSpec {
            name,
            url: r.url.clone(),
            auth,
            tls_ca_file: r.tls_ca_file.as_ref().map(PathBuf::from),
            queue_max_age: Duration::from_secs_f64(age),
            queue_max_bytes: bytes,
            external_labels: r.external_labels.clone(),
        });
    }
    Ok(out)
}
