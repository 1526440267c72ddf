//! The typed, validated configuration.
//!
//! Layers, lowest to highest: built-in defaults (`defaults.rs`, every one of
//! them), the TOML file (`raw.rs`; `--config PATH` or `CONFIG_FILE`),
//! environment variables, then command-line flags; `source.rs` picks a
//! setting's value from the highest layer that gives it. Every value is
//! checked here, once, and a bad one is an `Error::Config` whose message
//! names the setting (the flag, the variable, or the key in the file) and
//! quotes the value. `services.rs` and `alerting.rs` build the file's tables.

pub mod alerting;
pub mod anomalies;
pub mod defaults;
pub mod diff;
mod print;
pub mod raw;
pub mod remote_write;
pub mod services;
mod source;

use crate::error::{Error, Result};
use raw::RawConfig;
use source::{Flag, Source};
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CorsOrigins {
    Any,
    List(Vec<String>),
}

/// Who may call what (`auth::required` reads it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccessPolicy {
    /// Tokens are checked (`AUTH=on`, the default).
    pub enabled: bool,
    /// Reads need no token (`PUBLIC_READ=true`); writes always do.
    pub public_read: bool,
    /// `GET /` and `GET /health` need no token (`PUBLIC_HEALTH`, default on).
    pub public_health: bool,
}

/// What one connection may hold and for how long (`api::server`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpLimits {
    /// A request's headers must arrive within this, and an idle
    /// keep-alive connection is closed after it (`HTTP_HEADER_TIMEOUT`).
    pub header_timeout: Duration,
    /// A request (its body read and its answer made) must finish within
    /// this (`HTTP_REQUEST_TIMEOUT`); streams and websockets run on after.
    pub request_timeout: Duration,
    /// Connections open at once (`HTTP_MAX_CONNECTIONS`); more wait in the
    /// listen backlog. Kept below the open-file limit at start.
    pub max_connections: usize,
}

/// Scheduled backups (`BACKUP_DIR`, `BACKUP_INTERVAL`, `BACKUP_KEEP`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupSchedule {
    pub dir: PathBuf,
    pub interval: Duration,
    /// Backups kept; the oldest beyond this are deleted.
    pub keep: usize,
}

/// 1 when the last scheduled backup succeeded, 0 when it failed (written
/// by the schedule; the built-in rule `backup_failed` watches it).
pub const BACKUP_OK_METRIC: &str = "backup_ok";
/// Seconds since the last scheduled backup that succeeded (or since the
/// schedule started, before the first); `backup_stale` watches it.
pub const BACKUP_AGE_METRIC: &str = "backup_age_seconds";

/// The files of HTTPS (`TLS_CERT_FILE`, `TLS_KEY_FILE`) and, for mutual
/// TLS, the CA client certificates must be signed by (`TLS_CLIENT_CA_FILE`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub host: IpAddr,
    pub port: u16,
    /// A tracing level name: trace, debug, info, warn or error.
    pub log_level: String,
    pub log_format: LogFormat,
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub redis_url: Option<String>,
    pub health_check_interval: Duration,
    pub metrics_retention_days: u32,
    pub alert_retention_days: u32,
    pub dashboard_refresh_interval: Duration,
    pub system_metrics_interval: Duration,
    pub flush_interval: Duration,
    pub cors_allowed_origins: CorsOrigins,
    pub max_series: usize,
    /// Every probed service: the file's `[[services]]` plus the optional
    /// dependencies from `REDIS_URL` and `DATABASE_URL`.
    pub services: Vec<services::ServiceSpec>,
    pub alert_evaluation_interval: Duration,
    /// Most live-feed (websocket) clients at once.
    pub ws_max_clients: usize,
    pub http: HttpLimits,
    /// An alert posted to `/api/v2/alerts` without `endsAt` resolves when it
    /// is not posted again within this.
    pub external_resolve_timeout: Duration,
    /// HTTPS and WSS instead of HTTP and WS.
    pub tls: Option<TlsFiles>,
    /// The key values are encrypted with on disk (`ENCRYPTION_KEY_FILE`:
    /// 32 bytes, mode 0600), read when the store opens.
    pub encryption_key_file: Option<PathBuf>,
    /// The series the anomaly detector watches (`ANOMALY_METRICS`; `None`:
    /// the default set), besides the metrics of rules with
    /// `aggregation = "anomaly"`.
    pub anomaly_metrics: Option<Vec<anomalies::Selector>>,
    /// Most (series, signal) pairs the detector watches at once.
    pub anomaly_max_series: usize,
    /// A running job or loading model not reported for this long fails.
    pub platform_stale_after: Duration,
    /// A loaded model not reported for this long is taken as unloaded
    /// (`None`: never; for services that re-report their models).
    pub model_stale_after: Option<Duration>,
    /// Finished jobs and unloaded models are purged after this many days.
    pub platform_retention_days: u32,
    /// Network interfaces the network rates count (names, or prefixes
    /// ending in `*`); empty: the physical ones.
    pub network_interfaces_include: Vec<String>,
    /// Network interfaces never counted.
    pub network_interfaces_exclude: Vec<String>,
    /// Who may call what (`AUTH`, `PUBLIC_READ`, `PUBLIC_HEALTH`).
    pub access: AccessPolicy,
    /// Failed sign-ins one address may make in a minute before it is
    /// answered 429.
    pub auth_failure_limit: u32,
    /// Custom rules from the file (the built-in ones are added by the engine).
    pub rules: Vec<alerting::RuleSpec>,
    pub channels: Vec<alerting::ChannelSpec>,
    pub routes: Vec<alerting::RouteSpec>,
    pub escalation: Option<alerting::EscalationSpec>,
    /// Where every sample is shipped (`[[remote_write]]`).
    pub remote_write: Vec<remote_write::RemoteWriteSpec>,
    /// Scheduled backups, when `BACKUP_DIR` is set.
    pub backup: Option<BackupSchedule>,
    /// The file the settings came from, if any.
    pub config_file: Option<PathBuf>,
    /// The sources it was built from, to build it again (`reload`).
    pub origin: Origin,
}

/// The command-line values and the environment a configuration was built
/// from: a reload reads the file again with the same ones (a running
/// process's environment does not change).
#[derive(Clone, Default)]
pub struct Origin {
    overrides: Overrides,
    env: std::sync::Arc<HashMap<String, String>>,
}

/// Never printed: the environment holds secrets.
impl std::fmt::Debug for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Origin { .. }")
    }
}

/// Values given on the command line (highest precedence).
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub host: Option<String>,
    pub port: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub log_level: Option<String>,
}

/// A comma-separated list of names, blanks dropped.
fn names_list(v: Option<(String, String)>) -> Vec<String> {
    v.map(|(v, _)| {
        v.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    })
    .unwrap_or_default()
}

impl Config {
    /// Builds the configuration from the process environment.
    pub fn load(cli: Overrides) -> Result<Config> {
        Config::from_sources(cli, &std::env::vars().collect())
    }

    /// The configuration built again from the same flags and environment,
    /// the file read again (`SIGHUP`, `POST /-/reload`).
    pub fn reload(&self) -> Result<Config> {
        Config::from_sources(self.origin.overrides.clone(), &self.origin.env)
    }

    /// Builds the configuration from explicit sources (tests pass their own env).
    pub fn from_sources(cli: Overrides, env: &HashMap<String, String>) -> Result<Config> {
        let origin = Origin {
            overrides: cli.clone(),
            env: std::sync::Arc::new(env.clone()),
        };
        let config_file = cli.config_file.clone().or_else(|| {
            env.get("CONFIG_FILE")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        });
        let file = match &config_file {
            Some(path) => read_file(path)?,
            None => RawConfig::default(),
        };
        let src = Source {
            env,
            file: &file,
            file_name: config_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        };
        let flag = |v: Option<String>, name: &'static str| -> Flag { v.map(|v| (v, name)) };
        let (host, port) = listen(&src, flag(cli.host, "--host"), flag(cli.port, "--port"))?;
        let (log_level, log_format) = logging(&src, flag(cli.log_level, "--log-level"))?;
        let data_dir = src
            .pick(
                flag(cli.data_dir.map(|p| p.display().to_string()), "--data-dir"),
                "DATA_DIR",
                file.data_dir.clone(),
            )
            .map_or_else(
                || PathBuf::from(defaults::DATA_DIR),
                |(v, _)| PathBuf::from(v),
            );
        let database_url = src.url("DATABASE_URL", file.database_url.clone())?;
        let redis_url = src.url("REDIS_URL", file.redis_url.clone())?;
        let health_check_interval = src.interval(
            "HEALTH_CHECK_INTERVAL",
            file.health_check_interval,
            defaults::HEALTH_CHECK_INTERVAL_SECS,
        )?;

        // The file's tables: an error names the file.
        let in_file = |e: Error| match (e, &config_file) {
            (Error::Config(m), Some(f)) => {
                Error::config(format!("config file {}: {m}", f.display()))
            }
            (e, _) => e,
        };
        let services = services::build(
            &file.services,
            redis_url.as_deref(),
            database_url.as_deref(),
            health_check_interval,
        )
        .map_err(in_file)?;
        let rules = alerting::build_rules(&file.rules).map_err(in_file)?;
        let (channels, routes, escalation) =
            alerting::build_channels(&file.channels, &file.routes, file.escalation.as_ref())
                .map_err(in_file)?;

        let backup = backup(&src, &data_dir)?;
        Ok(Config {
            host,
            port,
            log_level,
            log_format,
            data_dir,
            database_url,
            redis_url,
            health_check_interval,
            metrics_retention_days: src.count(
                "METRICS_RETENTION_DAYS",
                file.metrics_retention_days,
                defaults::METRICS_RETENTION_DAYS.into(),
                3650,
            )? as u32,
            alert_retention_days: src.count(
                "ALERT_RETENTION_DAYS",
                file.alert_retention_days,
                defaults::ALERT_RETENTION_DAYS.into(),
                3650,
            )? as u32,
            dashboard_refresh_interval: src.interval(
                "DASHBOARD_REFRESH_INTERVAL",
                file.dashboard_refresh_interval,
                defaults::DASHBOARD_REFRESH_INTERVAL_SECS,
            )?,
            system_metrics_interval: src.interval(
                "SYSTEM_METRICS_INTERVAL",
                file.system_metrics_interval,
                defaults::SYSTEM_METRICS_INTERVAL_SECS,
            )?,
            flush_interval: src.interval(
                "FLUSH_INTERVAL",
                file.flush_interval,
                defaults::FLUSH_INTERVAL_SECS,
            )?,
            cors_allowed_origins: cors(&src)?,
            max_series: src.count(
                "MAX_SERIES",
                file.max_series,
                defaults::MAX_SERIES as u64,
                10_000_000,
            )? as usize,
            services,
            alert_evaluation_interval: src.interval(
                "ALERT_EVALUATION_INTERVAL",
                file.alert_evaluation_interval,
                defaults::ALERT_EVALUATION_INTERVAL_SECS,
            )?,
            ws_max_clients: src.count(
                "WS_MAX_CLIENTS",
                file.ws_max_clients,
                defaults::WS_MAX_CLIENTS as u64,
                100_000,
            )? as usize,
            http: HttpLimits {
                header_timeout: src.interval(
                    "HTTP_HEADER_TIMEOUT",
                    file.http_header_timeout,
                    defaults::HTTP_HEADER_TIMEOUT_SECS,
                )?,
                request_timeout: src.interval(
                    "HTTP_REQUEST_TIMEOUT",
                    file.http_request_timeout,
                    defaults::HTTP_REQUEST_TIMEOUT_SECS,
                )?,
                max_connections: src.count(
                    "HTTP_MAX_CONNECTIONS",
                    file.http_max_connections,
                    defaults::HTTP_MAX_CONNECTIONS as u64,
                    1_000_000,
                )? as usize,
            },
            platform_stale_after: src.interval(
                "PLATFORM_STALE_AFTER",
                file.platform_stale_after,
                defaults::PLATFORM_STALE_AFTER_SECS,
            )?,
            model_stale_after: match (src.env_value("MODEL_STALE_AFTER"), file.model_stale_after) {
                (None, None) => None,
                _ => Some(src.interval("MODEL_STALE_AFTER", file.model_stale_after, 0.0)?),
            },
            access: access(&src, host)?,
            tls: tls(&src)?,
            anomaly_metrics: src
                .pick(None, "ANOMALY_METRICS", src.file.anomaly_metrics.clone())
                .map(|(v, from)| anomalies::parse_selectors(&v, &from))
                .transpose()?,
            anomaly_max_series: src.count(
                "ANOMALY_MAX_SERIES",
                file.anomaly_max_series,
                defaults::ANOMALY_MAX_SERIES as u64,
                1_000_000,
            )? as usize,
            encryption_key_file: src
                .pick(
                    None,
                    "ENCRYPTION_KEY_FILE",
                    src.file.encryption_key_file.clone(),
                )
                .map(|(v, _)| PathBuf::from(v)),
            external_resolve_timeout: src.interval(
                "EXTERNAL_RESOLVE_TIMEOUT",
                file.external_resolve_timeout,
                defaults::EXTERNAL_RESOLVE_TIMEOUT_SECS,
            )?,
            auth_failure_limit: src.count(
                "AUTH_FAILURE_LIMIT",
                file.auth_failure_limit,
                defaults::AUTH_FAILURE_LIMIT.into(),
                1_000_000,
            )? as u32,
            network_interfaces_include: names_list(src.pick(
                None,
                "NETWORK_INTERFACES_INCLUDE",
                file.network_interfaces_include.clone(),
            )),
            network_interfaces_exclude: names_list(src.pick(
                None,
                "NETWORK_INTERFACES_EXCLUDE",
                file.network_interfaces_exclude.clone(),
            )),
            platform_retention_days: src.count(
                "PLATFORM_RETENTION_DAYS",
                file.platform_retention_days,
                defaults::PLATFORM_RETENTION_DAYS.into(),
                3650,
            )? as u32,
            rules,
            channels,
            routes,
            escalation,
            remote_write: remote_write::build(&file.remote_write).map_err(in_file)?,
            backup,
            config_file,
            origin,
        })
    }
}

/// `BACKUP_DIR`, `BACKUP_INTERVAL` and `BACKUP_KEEP`: no schedule without
/// the directory, and the directory not inside the data directory (a
/// backup there is lost with it).
fn backup(src: &Source, data_dir: &std::path::Path) -> Result<Option<BackupSchedule>> {
    let interval = src.interval_up_to(
        "BACKUP_INTERVAL",
        src.file.backup_interval,
        defaults::BACKUP_INTERVAL_SECS,
        defaults::BACKUP_INTERVAL_MAX_SECS,
    )?;
    let keep = src.count(
        "BACKUP_KEEP",
        src.file.backup_keep,
        defaults::BACKUP_KEEP.into(),
        100_000,
    )? as usize;
    let Some((dir, from)) = src.pick(None, "BACKUP_DIR", src.file.backup_dir.clone()) else {
        for key in ["BACKUP_INTERVAL", "BACKUP_KEEP"] {
            if src.env_value(key).is_some() {
                return Err(Error::config(format!(
                    "{key} is set but BACKUP_DIR is not: no backup would be taken"
                )));
            }
        }
        return Ok(None);
    };
    let dir = PathBuf::from(dir);
    let absolute = |p: &std::path::Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    if absolute(&dir).starts_with(absolute(data_dir)) {
        return Err(Error::config(format!(
            "{from}: '{}' is inside DATA_DIR '{}': a backup kept there is lost with the data",
            dir.display(),
            data_dir.display()
        )));
    }
    Ok(Some(BackupSchedule {
        dir,
        interval,
        keep,
    }))
}

/// `SERVICE_HOST` and `SERVICE_PORT`.
fn listen(src: &Source, host_flag: Flag, port_flag: Flag) -> Result<(IpAddr, u16)> {
    let (host, from) = src
        .pick(host_flag, "SERVICE_HOST", src.file.service_host.clone())
        .unwrap_or((defaults::SERVICE_HOST.into(), "the default".into()));
    let host: IpAddr = host
        .parse()
        .map_err(|_| Error::config(format!("{from}: '{host}' is not an IP address")))?;
    let port = match src.pick(
        port_flag,
        "SERVICE_PORT",
        src.file.service_port.map(|p| p.to_string()),
    ) {
        None => defaults::SERVICE_PORT,
        Some((v, from)) => v
            .parse::<u16>()
            .map_err(|_| Error::config(format!("{from}: '{v}' is not a port number (0-65535)")))?,
    };
    Ok((host, port))
}

/// `LOG_LEVEL` (Python's names accepted: warning, critical) and `LOG_FORMAT`.
fn logging(src: &Source, level_flag: Flag) -> Result<(String, LogFormat)> {
    let (level, from) = src
        .pick(level_flag, "LOG_LEVEL", src.file.log_level.clone())
        .unwrap_or((defaults::LOG_LEVEL.into(), "the default".into()));
    let level = level.to_lowercase();
    let level = match level.as_str() {
        "warning" => "warn".to_string(),
        "critical" => "error".to_string(),
        "trace" | "debug" | "info" | "warn" | "error" => level,
        _ => {
            return Err(Error::config(format!(
                "{from}: '{level}' is not a log level (trace, debug, info, warn, error)"
            )));
        }
    };
    let (format, from) = src
        .pick(None, "LOG_FORMAT", src.file.log_format.clone())
        .unwrap_or((defaults::LOG_FORMAT.into(), "the default".into()));
    let format = match format.to_lowercase().as_str() {
        "text" => LogFormat::Text,
        "json" => LogFormat::Json,
        _ => {
            return Err(Error::config(format!(
                "{from}: '{format}' is not a log format (text, json)"
            )));
        }
    };
    Ok((level, format))
}

/// `CORS_ALLOWED_ORIGINS`: `*` or a comma-separated list of origins.
/// An on/off setting: `on`/`off`, `true`/`false`, `1`/`0`.
fn switch(src: &Source, key: &str, file: Option<bool>, default: bool) -> Result<bool> {
    match src.pick(None, key, file.map(|b| b.to_string())) {
        None => Ok(default),
        Some((v, from)) => match v.trim().to_ascii_lowercase().as_str() {
            "on" | "true" | "1" | "yes" => Ok(true),
            "off" | "false" | "0" | "no" => Ok(false),
            _ => Err(Error::config(format!("{from}: '{v}' is not on or off"))),
        },
    }
}

/// The access policy; `AUTH=off` is refused unless the daemon listens on a
/// loopback address only.
fn access(src: &Source, host: IpAddr) -> Result<AccessPolicy> {
    let enabled = switch(src, "AUTH", src.file.auth, defaults::AUTH)?;
    if !enabled && !host.is_loopback() {
        return Err(Error::config(format!(
            "AUTH=off is only allowed when SERVICE_HOST is a loopback address (127.0.0.1 or ::1), not {host}: \
             anyone who can reach the port could silence alerts and push data"
        )));
    }
    Ok(AccessPolicy {
        enabled,
        public_read: switch(
            src,
            "PUBLIC_READ",
            src.file.public_read,
            defaults::PUBLIC_READ,
        )?,
        public_health: switch(
            src,
            "PUBLIC_HEALTH",
            src.file.public_health,
            defaults::PUBLIC_HEALTH,
        )?,
    })
}

/// `TLS_CERT_FILE` and `TLS_KEY_FILE` together or neither, and
/// `TLS_CLIENT_CA_FILE` only with them. The files are read at start.
fn tls(src: &Source) -> Result<Option<TlsFiles>> {
    let file = |key: &str, v: Option<String>| src.pick(None, key, v).map(|(v, _)| PathBuf::from(v));
    let cert = file("TLS_CERT_FILE", src.file.tls_cert_file.clone());
    let key = file("TLS_KEY_FILE", src.file.tls_key_file.clone());
    let client_ca = file("TLS_CLIENT_CA_FILE", src.file.tls_client_ca_file.clone());
    match (cert, key) {
        (Some(cert), Some(key)) => Ok(Some(TlsFiles {
            cert,
            key,
            client_ca,
        })),
        (None, None) if client_ca.is_none() => Ok(None),
        (None, None) => Err(Error::config(
            "TLS_CLIENT_CA_FILE needs TLS_CERT_FILE and TLS_KEY_FILE (mutual TLS is TLS first)",
        )),
        (Some(_), None) => Err(Error::config(
            "TLS_CERT_FILE is set but TLS_KEY_FILE is not",
        )),
        (None, Some(_)) => Err(Error::config(
            "TLS_KEY_FILE is set but TLS_CERT_FILE is not",
        )),
    }
}

fn cors(src: &Source) -> Result<CorsOrigins> {
    let (v, from) = src
        .pick(
            None,
            "CORS_ALLOWED_ORIGINS",
            src.file.cors_allowed_origins.clone(),
        )
        .unwrap_or((defaults::CORS_ALLOWED_ORIGINS.into(), "the default".into()));
    if v.trim() == "*" {
        return Ok(CorsOrigins::Any);
    }
    let list: Vec<String> = v
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if let Some(bad) = list
        .iter()
        .find(|o| !(o.starts_with("http://") || o.starts_with("https://")))
    {
        return Err(Error::config(format!(
            "{from}: origin '{bad}' must start with http:// or https:// (or use '*')"
        )));
    }
    Ok(CorsOrigins::List(list))
}

fn read_file(path: &PathBuf) -> Result<RawConfig> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::config(format!(
            "config file {}: cannot read it: {e}",
            path.display()
        ))
    })?;
    let at_line = |e: &toml::de::Error| {
        e.span()
            .map(|s| format!(" (line {})", text[..s.start].matches('\n').count() + 1))
            .unwrap_or_default()
    };
    let de = toml::Deserializer::parse(&text).map_err(|e| {
        Error::config(format!(
            "config file {}{}: {}",
            path.display(),
            at_line(&e),
            e.message()
        ))
    })?;
    // The path names the setting: `rules[1].threshold: invalid type ...`.
    serde_path_to_error::deserialize(de).map_err(|e| {
        let setting = e.path().to_string();
        let inner = e.inner();
        let setting = if setting == "." {
            String::new()
        } else {
            format!(" {setting}:")
        };
        Error::config(format!(
            "config file {}{}:{setting} {}",
            path.display(),
            at_line(inner),
            inner.message()
        ))
    })
}

/// Replaces the password of `scheme://user:password@host` with `***`.
pub fn mask_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None if !userinfo.is_empty() && scheme.starts_with("redis") => {
            format!("{scheme}://***@{host}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn load(pairs: &[(&str, &str)]) -> Result<Config> {
        Config::from_sources(Overrides::default(), &env(pairs))
    }

    #[test]
    fn defaults_match_the_spec() {
        let c = load(&[]).unwrap();
        assert_eq!(c.port, 8006);
        assert_eq!(c.host.to_string(), "0.0.0.0");
        assert_eq!(c.log_level, "info");
        assert_eq!(c.health_check_interval, Duration::from_secs(30));
        assert_eq!((c.metrics_retention_days, c.alert_retention_days), (30, 90));
        assert_eq!(c.dashboard_refresh_interval, Duration::from_secs(5));
        assert_eq!(c.system_metrics_interval, Duration::from_secs(5));
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert_eq!(c.cors_allowed_origins, CorsOrigins::Any);
    }

    #[test]
    fn bad_values_name_the_setting() {
        for (pairs, needle) in [
            (vec![("SERVICE_PORT", "abc")], "SERVICE_PORT: 'abc'"),
            (vec![("SERVICE_PORT", "-1")], "SERVICE_PORT: '-1'"),
            (
                vec![("HEALTH_CHECK_INTERVAL", "0")],
                "HEALTH_CHECK_INTERVAL: '0'",
            ),
            (
                vec![("SYSTEM_METRICS_INTERVAL", "-5")],
                "SYSTEM_METRICS_INTERVAL: '-5'",
            ),
            (
                vec![("METRICS_RETENTION_DAYS", "0")],
                "METRICS_RETENTION_DAYS: '0'",
            ),
            (vec![("LOG_LEVEL", "loud")], "LOG_LEVEL: 'loud'"),
            (vec![("LOG_FORMAT", "xml")], "LOG_FORMAT: 'xml'"),
            (vec![("SERVICE_HOST", "nohost")], "SERVICE_HOST: 'nohost'"),
            (vec![("REDIS_URL", "localhost")], "REDIS_URL"),
            (
                vec![("CONFIG_FILE", "/nonexistent/x.toml")],
                "cannot read it",
            ),
        ] {
            let e = load(&pairs).unwrap_err().to_string();
            assert!(e.contains(needle), "{e:?} should contain {needle:?}");
        }
    }

    #[test]
    fn a_bad_flag_is_named_as_the_flag() {
        for (cli, needle) in [
            (
                Overrides {
                    host: Some("nowhere".into()),
                    ..Overrides::default()
                },
                "--host: 'nowhere'",
            ),
            (
                Overrides {
                    port: Some("99999".into()),
                    ..Overrides::default()
                },
                "--port: '99999'",
            ),
            (
                Overrides {
                    log_level: Some("loud".into()),
                    ..Overrides::default()
                },
                "--log-level: 'loud'",
            ),
        ] {
            let e = Config::from_sources(cli, &env(&[]))
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{e} lacks {needle}");
        }
        assert_eq!(load(&[]).unwrap().log_format, LogFormat::Text);
    }

    #[test]
    fn precedence_is_cli_env_file_default() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "service_port = 9000\nlog_level = \"debug\"\nalert_retention_days = 7\n",
        )
        .unwrap();
        let e = env(&[
            ("CONFIG_FILE", path.to_str().unwrap()),
            ("SERVICE_PORT", "9100"),
        ]);
        let c = Config::from_sources(Overrides::default(), &e).unwrap();
        assert_eq!(
            (c.port, c.log_level.as_str(), c.alert_retention_days),
            (9100, "debug", 7)
        );
        let cli = Overrides {
            port: Some("9200".into()),
            ..Default::default()
        };
        assert_eq!(Config::from_sources(cli, &e).unwrap().port, 9200);
    }

    #[test]
    fn unknown_keys_in_the_file_are_refused_with_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "service_port = 9000\nservice_prot = 1\n").unwrap();
        let e = load(&[("CONFIG_FILE", path.to_str().unwrap())])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown field `service_prot`") && e.contains("line 2"),
            "{e}"
        );
        std::fs::write(&path, "service_port = \"x\"\n").unwrap();
        let e = load(&[("CONFIG_FILE", path.to_str().unwrap())])
            .unwrap_err()
            .to_string();
        assert!(e.contains("c.toml"), "{e}");
    }

    #[test]
    fn secrets_are_masked() {
        assert_eq!(
            mask_url("postgres://u:secret@db:5432/x"),
            "postgres://u:***@db:5432/x"
        );
        assert_eq!(mask_url("redis://:pw@r:6379/0"), "redis://:***@r:6379/0");
        assert_eq!(mask_url("redis://r:6379"), "redis://r:6379");
        let c = load(&[("DATABASE_URL", "postgres://u:secret@db/x")]).unwrap();
        assert!(!c.to_toml().contains("secret"));
    }
}
