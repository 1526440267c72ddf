//! The serde shape of the TOML config file. Every key is optional; unknown
//! keys are an error so a typo never silently falls back to a default.

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub service_host: Option<String>,
    pub service_port: Option<i64>,
    pub log_level: Option<String>,
    pub log_format: Option<String>,
    pub data_dir: Option<String>,
    pub database_url: Option<String>,
    pub redis_url: Option<String>,
    pub health_check_interval: Option<f64>,
    pub metrics_retention_days: Option<i64>,
    pub alert_retention_days: Option<i64>,
    pub dashboard_refresh_interval: Option<f64>,
    pub system_metrics_interval: Option<f64>,
    pub flush_interval: Option<f64>,
    pub cors_allowed_origins: Option<String>,
    pub max_series: Option<i64>,
    /// The platform's services to probe (`[[services]]` tables).
    #[serde(default)]
    pub services: Vec<super::services::RawService>,
    /// Most live-feed clients at once (default 2000).
    pub ws_max_clients: Option<i64>,
    pub http_header_timeout: Option<f64>,
    pub http_request_timeout: Option<f64>,
    pub http_max_connections: Option<i64>,
    pub external_resolve_timeout: Option<f64>,
    pub tls_cert_file: Option<String>,
    pub tls_key_file: Option<String>,
    pub tls_client_ca_file: Option<String>,
    pub encryption_key_file: Option<String>,
    pub anomaly_metrics: Option<String>,
    pub anomaly_max_series: Option<i64>,
    /// Seconds between rule evaluations (default 10).
    pub alert_evaluation_interval: Option<f64>,
    pub platform_stale_after: Option<f64>,
    pub model_stale_after: Option<f64>,
    pub platform_retention_days: Option<i64>,
    pub backup_dir: Option<String>,
    pub backup_interval: Option<f64>,
    pub backup_keep: Option<i64>,
    pub network_interfaces_include: Option<String>,
    pub network_interfaces_exclude: Option<String>,
    pub auth: Option<bool>,
    pub auth_failure_limit: Option<i64>,
    pub public_read: Option<bool>,
    pub public_health: Option<bool>,
    #[serde(default)]
    pub rules: Vec<super::alerting::RawRule>,
    #[serde(default)]
    pub channels: Vec<super::alerting::RawChannel>,
    #[serde(default)]
    pub routes: Vec<super::alerting::RawRoute>,
    pub escalation: Option<super::alerting::RawEscalation>,
    #[serde(default)]
    pub remote_write: Vec<super::remote_write::RawRemoteWrite>,
}
