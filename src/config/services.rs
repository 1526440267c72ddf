//! The service registry as configured: `[[services]]` tables in the TOML
//! file, plus the optional dependencies `redis` and `postgres` from
//! `REDIS_URL` / `DATABASE_URL`. Validated here; the health engine
//! (`health/`) only ever sees valid specs.

use crate::error::{Error, Result};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawService {
    pub name: String,
    pub kind: String,
    pub target: String,
    /// Seconds between checks (default `HEALTH_CHECK_INTERVAL`).
    pub interval: Option<f64>,
    /// Seconds before a check counts as failed (default 5).
    pub timeout: Option<f64>,
    /// HTTP status codes that count as up (default: any 2xx).
    pub expected_status: Option<Vec<u16>>,
    /// Slower than this (milliseconds) is `degraded`.
    pub degraded_threshold_ms: Option<f64>,
    /// Names of other services this one needs.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// How to find the service's processes for CPU and memory.
    pub process: Option<RawProcess>,
    /// A Prometheus text endpoint to scrape request statistics from.
    pub metrics_url: Option<String>,
    /// The request counter there (default `http_requests_total`).
    pub requests_metric: Option<String>,
    /// The request duration histogram there, in seconds (default `http_request_duration_seconds`).
    pub duration_metric: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProcess {
    /// Exact process name (as in `ps -e`).
    pub name: Option<String>,
    /// A substring of the command line.
    pub cmdline: Option<String>,
    /// A file holding the main process id.
    pub pid_file: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeKind {
    Http,
    Tcp,
    Redis,
    Postgres,
}

impl ProbeKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            ProbeKind::Http => "http",
            ProbeKind::Tcp => "tcp",
            ProbeKind::Redis => "redis",
            ProbeKind::Postgres => "postgres",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProcessMatcher {
    Name(String),
    Cmdline(String),
    PidFile(PathBuf),
}

/// Whether an entry is a platform service or one of the optional
/// dependencies configured by URL (they count differently, see the README).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Service,
    Dependency,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ServiceSpec {
    pub name: String,
    pub kind: ProbeKind,
    pub target: String,
    pub interval: Duration,
    pub timeout: Duration,
    /// `None`: any 2xx.
    pub expected_status: Option<Vec<u16>>,
    pub degraded_threshold_ms: Option<f64>,
    pub depends_on: Vec<String>,
    pub process: Option<ProcessMatcher>,
    pub role: Role,
    pub scrape: Option<ScrapeSpec>,
}

/// Where and what to scrape for a service's request statistics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScrapeSpec {
    pub url: String,
    pub requests_metric: String,
    pub duration_metric: String,
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

fn check_target(kind: ProbeKind, target: &str) -> std::result::Result<(), String> {
    let has_host = |rest: &str| {
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        let host = host.rsplit('@').next().unwrap_or("");
        !host.is_empty() && !host.starts_with(':')
    };
    match kind {
        ProbeKind::Http => match target.split_once("://") {
            Some(("http" | "https", rest)) if has_host(rest) => Ok(()),
            _ => Err(format!(
                "target '{target}' is not an http:// or https:// URL with a host"
            )),
        },
        ProbeKind::Tcp => match target.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {
                Ok(())
            }
            _ => Err(format!("target '{target}' is not host:port")),
        },
        ProbeKind::Redis => match target.split_once("://") {
            Some(("redis" | "rediss", rest)) if has_host(rest) => Ok(()),
            _ => Err(format!(
                "target '{}' is not a redis:// URL",
                super::mask_url(target)
            )),
        },
        ProbeKind::Postgres => match target.split_once("://") {
            Some(("postgres" | "postgresql", rest)) if has_host(rest) => Ok(()),
            _ => Err(format!(
                "target '{}' is not a postgres:// URL",
                super::mask_url(target)
            )),
        },
    }
}

fn secs(v: Option<f64>, default: Duration, what: &str) -> std::result::Result<Duration, String> {
    match v {
        None => Ok(default),
        Some(s) if s.is_finite() && s > 0.0 && s <= 86_400.0 => Ok(Duration::from_secs_f64(s)),
        Some(s) => Err(format!(
            "{what} {s} is not a positive number of seconds (at most 86400)"
        )),
    }
}

/// Validates the file's entries and adds the URL-configured dependencies.
pub fn build(
    raw: &[RawService],
    redis_url: Option<&str>,
    database_url: Option<&str>,
    default_interval: Duration,
) -> Result<Vec<ServiceSpec>> {
    let mut out: Vec<ServiceSpec> = Vec::new();
    for (name, kind, url) in [
        ("redis", ProbeKind::Redis, redis_url),
        ("postgres", ProbeKind::Postgres, database_url),
    ] {
        if let Some(url) = url {
            out.push(ServiceSpec {
                name: name.into(),
                kind,
                target: url.into(),
                interval: default_interval,
                timeout: Duration::from_secs_f64(super::defaults::SERVICE_TIMEOUT_SECS),
                expected_status: None,
                degraded_threshold_ms: None,
                depends_on: vec![],
                process: None,
                role: Role::Dependency,
                scrape: None,
            });
        }
    }
    for (i, r) in raw.iter().enumerate() {
        let fail = |msg: String| Error::config(format!("services[{i}] (\"{}\"): {msg}", r.name));
        if !valid_name(&r.name) {
            return Err(fail(
                "name must be 1-64 letters, digits, '-', '_' or '.'".into(),
            ));
        }
        if out.iter().any(|s| s.name == r.name) {
            return Err(fail("duplicate name (redis and postgres are taken when REDIS_URL / DATABASE_URL are set)".into()));
        }
        let kind = match r.kind.as_str() {
            "http" => ProbeKind::Http,
            "tcp" => ProbeKind::Tcp,
            "redis" => ProbeKind::Redis,
            "postgres" => ProbeKind::Postgres,
            other => {
                return Err(fail(format!(
                    "unknown kind '{other}' (http, tcp, redis, postgres)"
                )));
            }
        };
        check_target(kind, &r.target).map_err(fail)?;
        let interval = secs(r.interval, default_interval, "interval").map_err(fail)?;
        let timeout = secs(
            r.timeout,
            Duration::from_secs_f64(super::defaults::SERVICE_TIMEOUT_SECS),
            "timeout",
        )
        .map_err(fail)?;
        if let Some(codes) = &r.expected_status {
            if codes.is_empty() || codes.iter().any(|c| !(100..=599).contains(c)) {
                return Err(fail(
                    "expected_status must list HTTP codes from 100 to 599".into(),
                ));
            }
            if kind != ProbeKind::Http {
                return Err(fail("expected_status applies to http services only".into()));
            }
        }
        if let Some(ms) = r.degraded_threshold_ms
            && !(ms.is_finite() && ms > 0.0)
        {
            return Err(fail(format!(
                "degraded_threshold_ms {ms} must be a positive number"
            )));
        }
        let process = match &r.process {
            None => None,
            Some(p) => match (&p.name, &p.cmdline, &p.pid_file) {
                (Some(n), None, None) if !n.is_empty() => Some(ProcessMatcher::Name(n.clone())),
                (None, Some(c), None) if !c.is_empty() => Some(ProcessMatcher::Cmdline(c.clone())),
                (None, None, Some(f)) if !f.is_empty() => Some(ProcessMatcher::PidFile(f.into())),
                _ => {
                    return Err(fail(
                        "process needs exactly one of name, cmdline or pid_file".into(),
                    ));
                }
            },
        };
        let scrape = match &r.metrics_url {
            None => {
                if r.requests_metric.is_some() || r.duration_metric.is_some() {
                    return Err(fail(
                        "requests_metric / duration_metric need metrics_url".into(),
                    ));
                }
                None
            }
            Some(url) => {
                check_target(ProbeKind::Http, url)
                    .map_err(|e| fail(format!("metrics_url: {e}")))?;
                Some(ScrapeSpec {
                    url: url.clone(),
                    requests_metric: r
                        .requests_metric
                        .clone()
                        .unwrap_or(super::defaults::REQUESTS_METRIC.into()),
                    duration_metric: r
                        .duration_metric
                        .clone()
                        .unwrap_or(super::defaults::DURATION_METRIC.into()),
                })
            }
        };
        out.push(ServiceSpec {
            scrape,
            name: r.name.clone(),
            kind,
            target: r.target.clone(),
            interval,
            timeout,
            expected_status: r.expected_status.clone(),
            degraded_threshold_ms: r.degraded_threshold_ms,
            depends_on: r.depends_on.clone(),
            process,
            role: Role::Service,
        });
    }
    for (i, s) in out.iter().enumerate() {
        for d in &s.depends_on {
            if d == &s.name || !out.iter().any(|o| &o.name == d) {
                let idx = i - out.iter().filter(|o| o.role == Role::Dependency).count();
                return Err(Error::config(format!(
                    "services[{idx}] (\"{}\"): depends_on names unknown service '{d}'",
                    s.name
                )));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(name: &str, kind: &str, target: &str) -> RawService {
        RawService {
            name: name.into(),
            kind: kind.into(),
            target: target.into(),
            interval: None,
            timeout: None,
            expected_status: None,
            degraded_threshold_ms: None,
            depends_on: vec![],
            process: None,
            metrics_url: None,
            requests_metric: None,
            duration_metric: None,
        }
    }

    #[test]
    fn valid_entries_and_url_dependencies() {
        let mut api = raw("model-api", "http", "http://127.0.0.1:8000/health");
        api.depends_on = vec!["redis".into()];
        let specs = build(
            &[api, raw("gw", "tcp", "localhost:443")],
            Some("redis://:pw@127.0.0.1:6379/1"),
            None,
            Duration::from_secs(30),
        )
        .unwrap();
        assert_eq!(specs.len(), 3);
        assert_eq!(
            (specs[0].name.as_str(), specs[0].role),
            ("redis", Role::Dependency)
        );
        assert_eq!(specs[1].interval, Duration::from_secs(30));
        assert_eq!(specs[1].timeout, Duration::from_secs(5));
    }

    #[test]
    fn invalid_entries_name_the_entry() {
        let mut dep = raw("a", "http", "http://x/h");
        dep.depends_on = vec!["ghost".into()];
        let mut slow = raw("s", "tcp", "h:1");
        slow.interval = Some(0.0);
        for (entries, needle) in [
            (
                vec![raw("a", "htp", "http://x")],
                "services[0] (\"a\"): unknown kind 'htp'",
            ),
            (
                vec![raw("a", "http", "ftp://x")],
                "not an http:// or https:// URL",
            ),
            (
                vec![raw("a", "http", "http://")],
                "not an http:// or https:// URL",
            ),
            (vec![raw("a", "tcp", "nohost")], "not host:port"),
            (
                vec![raw("a", "tcp", "h:1"), raw("a", "tcp", "h:2")],
                "services[1] (\"a\"): duplicate name",
            ),
            (vec![dep], "depends_on names unknown service 'ghost'"),
            (vec![slow], "interval 0"),
            (vec![raw("bad name", "tcp", "h:1")], "name must be"),
        ] {
            let e = build(&entries, None, None, Duration::from_secs(30))
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{e:?} should contain {needle:?}");
        }
        let e = build(
            &[raw("redis", "tcp", "h:1")],
            Some("redis://r:6379"),
            None,
            Duration::from_secs(1),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("duplicate name"), "{e}");
    }
}
