//! `mlsec-monitor config`: the effective configuration as a TOML file the
//! daemon would accept, every setting included (defaults too), with the
//! `[[services]]`, `[[rules]]`, `[[channels]]`, `[[routes]]` and
//! `[escalation]` it runs with. Secrets are masked: passwords in URLs,
//! query values, and the whole path of a Slack webhook (the path is the
//! secret).

use super::alerting::{ChannelKind, RuleSpec};
use super::remote_write::Auth;
use super::services::{ProcessMatcher, Role, ServiceSpec};
use super::{Config, CorsOrigins, LogFormat, mask_url};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Serialize)]
struct Printed {
    service_host: String,
    service_port: u16,
    log_level: String,
    log_format: &'static str,
    data_dir: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    database_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    redis_url: Option<String>,
    health_check_interval: f64,
    metrics_retention_days: u32,
    alert_retention_days: u32,
    dashboard_refresh_interval: f64,
    system_metrics_interval: f64,
    flush_interval: f64,
    cors_allowed_origins: String,
    max_series: usize,
    alert_evaluation_interval: f64,
    ws_max_clients: usize,
    http_header_timeout: f64,
    http_request_timeout: f64,
    http_max_connections: usize,
    external_resolve_timeout: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_cert_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_key_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_client_ca_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    encryption_key_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    anomaly_metrics: Option<String>,
    anomaly_max_series: usize,
    platform_stale_after: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    model_stale_after: Option<f64>,
    platform_retention_days: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    network_interfaces_include: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    network_interfaces_exclude: Option<String>,
    auth: bool,
    public_read: bool,
    public_health: bool,
    auth_failure_limit: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    backup_dir: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    backup_interval: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    backup_keep: Option<usize>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    services: Vec<PrintedService>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    rules: Vec<PrintedRule>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    channels: Vec<PrintedChannel>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    routes: Vec<PrintedRoute>,
    #[serde(skip_serializing_if = "Option::is_none")]
    escalation: Option<PrintedEscalation>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    remote_write: Vec<PrintedRemoteWrite>,
}

#[derive(Serialize)]
struct PrintedRemoteWrite {
    name: String,
    url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    bearer_token: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    basic_auth: Option<PrintedBasicAuth>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_ca_file: Option<String>,
    queue_max_age: f64,
    queue_max_bytes: u64,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    external_labels: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct PrintedBasicAuth {
    username: String,
    password: &'static str,
}

#[derive(Serialize)]
struct PrintedService {
    name: String,
    kind: &'static str,
    target: String,
    interval: f64,
    timeout: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    expected_status: Option<Vec<u16>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    degraded_threshold_ms: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    depends_on: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metrics_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    requests_metric: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_metric: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    process: BTreeMap<&'static str, String>,
}

#[derive(Serialize)]
struct PrintedRule {
    name: String,
    metric: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    labels: BTreeMap<String, String>,
    aggregation: &'static str,
    window: f64,
    op: &'static str,
    threshold: f64,
    #[serde(rename = "for")]
    for_secs: f64,
    clear_after: f64,
    severity: &'static str,
    message: String,
    description: String,
}

#[derive(Serialize)]
struct PrintedChannel {
    name: String,
    kind: &'static str,
    url: String,
}

#[derive(Serialize)]
struct PrintedRoute {
    #[serde(skip_serializing_if = "Option::is_none")]
    severity: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    service: Option<String>,
    channels: Vec<String>,
}

#[derive(Serialize)]
struct PrintedEscalation {
    after: f64,
    channels: Vec<String>,
}

/// A URL with its secrets masked: the password, every query value, and for
/// a Slack webhook the path (`https://hooks.slack.com/services/T/B/secret`).
pub fn mask_secret_url(url: &str, path_is_secret: bool) -> String {
    let url = mask_url(url);
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b.to_string(), Some(q)),
        None => (url.clone(), None),
    };
    let base = match (path_is_secret, base.split_once("://")) {
        (true, Some((scheme, rest))) => match rest.split_once('/') {
            Some((host, path)) if !path.is_empty() => format!("{scheme}://{host}/***"),
            _ => base,
        },
        _ => base,
    };
    match query {
        None => base,
        Some(q) => {
            let masked: Vec<String> = q
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) => format!("{k}=***"),
                    None => kv.to_string(),
                })
                .collect();
            format!("{base}?{}", masked.join("&"))
        }
    }
}

fn service(s: &ServiceSpec) -> PrintedService {
    let mut process = BTreeMap::new();
    match &s.process {
        Some(ProcessMatcher::Name(n)) => {
            process.insert("name", n.clone());
        }
        Some(ProcessMatcher::Cmdline(c)) => {
            process.insert("cmdline", c.clone());
        }
        Some(ProcessMatcher::PidFile(p)) => {
            process.insert("pid_file", p.display().to_string());
        }
        None => {}
    }
    PrintedService {
        name: s.name.clone(),
        kind: s.kind.as_str(),
        target: mask_secret_url(&s.target, false),
        interval: s.interval.as_secs_f64(),
        timeout: s.timeout.as_secs_f64(),
        expected_status: s.expected_status.clone(),
        degraded_threshold_ms: s.degraded_threshold_ms,
        depends_on: s.depends_on.clone(),
        metrics_url: s.scrape.as_ref().map(|sc| mask_secret_url(&sc.url, false)),
        requests_metric: s.scrape.as_ref().map(|sc| sc.requests_metric.clone()),
        duration_metric: s.scrape.as_ref().map(|sc| sc.duration_metric.clone()),
        process,
    }
}

fn rule(r: &RuleSpec) -> PrintedRule {
    PrintedRule {
        name: r.name.clone(),
        metric: r.metric.clone(),
        labels: r
            .matchers
            .iter()
            .map(|m| {
                let v = if m.negate {
                    format!("!{}", m.value)
                } else {
                    m.value.clone()
                };
                (m.name.clone(), v)
            })
            .collect(),
        aggregation: r.aggregation.as_str(),
        window: r.window.as_secs_f64(),
        op: r.op.as_str(),
        threshold: r.threshold,
        for_secs: r.for_.as_secs_f64(),
        clear_after: r.clear_after.as_secs_f64(),
        severity: r.severity.as_str(),
        message: r.message.clone(),
        description: r.description.clone(),
    }
}

impl Config {
    /// The effective configuration as TOML, secrets masked.
    pub fn to_toml(&self) -> String {
        let secs = |d: std::time::Duration| d.as_secs_f64();
        let list = |l: &[String]| (!l.is_empty()).then(|| l.join(","));
        let printed = Printed {
            service_host: self.host.to_string(),
            service_port: self.port,
            log_level: self.log_level.clone(),
            log_format: if self.log_format == LogFormat::Json {
                "json"
            } else {
                "text"
            },
            data_dir: self.data_dir.display().to_string(),
            database_url: self.database_url.as_deref().map(mask_url),
            redis_url: self.redis_url.as_deref().map(mask_url),
            health_check_interval: secs(self.health_check_interval),
            metrics_retention_days: self.metrics_retention_days,
            alert_retention_days: self.alert_retention_days,
            dashboard_refresh_interval: secs(self.dashboard_refresh_interval),
            system_metrics_interval: secs(self.system_metrics_interval),
            flush_interval: secs(self.flush_interval),
            cors_allowed_origins: match &self.cors_allowed_origins {
                CorsOrigins::Any => "*".to_string(),
                CorsOrigins::List(l) => l.join(","),
            },
            max_series: self.max_series,
            alert_evaluation_interval: secs(self.alert_evaluation_interval),
            ws_max_clients: self.ws_max_clients,
            http_header_timeout: secs(self.http.header_timeout),
            http_request_timeout: secs(self.http.request_timeout),
            http_max_connections: self.http.max_connections,
            external_resolve_timeout: secs(self.external_resolve_timeout),
            tls_cert_file: self.tls.as_ref().map(|t| t.cert.display().to_string()),
            tls_key_file: self.tls.as_ref().map(|t| t.key.display().to_string()),
            tls_client_ca_file: self
                .tls
                .as_ref()
                .and_then(|t| t.client_ca.as_ref())
                .map(|p| p.display().to_string()),
            anomaly_metrics: self.anomaly_metrics.as_ref().map(|s| {
                s.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            }),
            anomaly_max_series: self.anomaly_max_series,
            encryption_key_file: self
                .encryption_key_file
                .as_ref()
                .map(|p| p.display().to_string()),
            platform_stale_after: secs(self.platform_stale_after),
            model_stale_after: self.model_stale_after.map(secs),
            platform_retention_days: self.platform_retention_days,
            network_interfaces_include: list(&self.network_interfaces_include),
            network_interfaces_exclude: list(&self.network_interfaces_exclude),
            auth: self.access.enabled,
            public_read: self.access.public_read,
            public_health: self.access.public_health,
            auth_failure_limit: self.auth_failure_limit,
            backup_dir: self.backup.as_ref().map(|b| b.dir.display().to_string()),
            backup_interval: self.backup.as_ref().map(|b| secs(b.interval)),
            backup_keep: self.backup.as_ref().map(|b| b.keep),
            // The URL-configured dependencies are the two URLs above.
            services: self
                .services
                .iter()
                .filter(|s| s.role == Role::Service)
                .map(service)
                .collect(),
            rules: self.rules.iter().map(rule).collect(),
            channels: self
                .channels
                .iter()
                .map(|c| PrintedChannel {
                    name: c.name.clone(),
                    kind: c.kind.as_str(),
                    url: mask_secret_url(&c.url, c.kind == ChannelKind::Slack),
                })
                .collect(),
            routes: self
                .routes
                .iter()
                .map(|r| PrintedRoute {
                    severity: r.severity.map(|s| s.as_str()),
                    service: r.service.clone(),
                    channels: r.channels.clone(),
                })
                .collect(),
            escalation: self.escalation.as_ref().map(|e| PrintedEscalation {
                after: secs(e.after),
                channels: e.channels.clone(),
            }),
            remote_write: self
                .remote_write
                .iter()
                .map(|r| PrintedRemoteWrite {
                    name: r.name.clone(),
                    url: mask_secret_url(&r.url, false),
                    bearer_token: matches!(r.auth, Some(Auth::Bearer(_))).then_some("***"),
                    basic_auth: match &r.auth {
                        Some(Auth::Basic { username, .. }) => Some(PrintedBasicAuth {
                            username: username.clone(),
                            password: "***",
                        }),
                        _ => None,
                    },
                    tls_ca_file: r.tls_ca_file.as_ref().map(|p| p.display().to_string()),
                    queue_max_age: r.queue_max_age.as_secs_f64(),
                    queue_max_bytes: r.queue_max_bytes,
                    external_labels: r.external_labels.clone(),
                })
                .collect(),
        };
        let body = toml::to_string(&printed)
            .unwrap_or_else(|e| format!("# cannot print the configuration: {e}\n"));
        format!(
            "# The effective configuration (defaults included; passwords and tokens masked as ***).\n\
             # Optional settings that are not set are left out. Built-in alert rules\n\
             # are not listed here: `mlsec-monitor rules` shows them with these.\n{body}"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::mask_secret_url;

    #[test]
    fn secrets_in_urls_are_masked() {
        assert_eq!(
            mask_secret_url("https://hooks.slack.com/services/T0/B0/abc", true),
            "https://hooks.slack.com/***"
        );
        assert_eq!(
            mask_secret_url("https://u:pw@hook.example/x?token=abc&v=1", false),
            "https://u:***@hook.example/x?token=***&v=***"
        );
        assert_eq!(mask_secret_url("http://am:9093", false), "http://am:9093");
    }
}
