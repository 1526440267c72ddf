//! Built-in defaults: the lowest precedence layer, every one in this file.

// The daemon (environment variables of the same names, in capitals).
pub const SERVICE_HOST: &str = "0.0.0.0";
pub const SERVICE_PORT: u16 = 8006;
pub const LOG_LEVEL: &str = "INFO";
pub const LOG_FORMAT: &str = "text";
pub const DATA_DIR: &str = "./data";
pub const HEALTH_CHECK_INTERVAL_SECS: f64 = 30.0;
pub const METRICS_RETENTION_DAYS: u32 = 30;
pub const ALERT_RETENTION_DAYS: u32 = 90;
pub const DASHBOARD_REFRESH_INTERVAL_SECS: f64 = 5.0;
pub const SYSTEM_METRICS_INTERVAL_SECS: f64 = 5.0;
/// How often buffered writes reach sled: the most a crash can lose.
pub const FLUSH_INTERVAL_SECS: f64 = 1.0;
pub const CORS_ALLOWED_ORIGINS: &str = "*";
/// Distinct series the store accepts before refusing new ones (label explosions).
pub const MAX_SERIES: usize = 50_000;
/// Seconds between alert rule evaluations.
pub const ALERT_EVALUATION_INTERVAL_SECS: f64 = 10.0;
/// Most websocket live-feed clients at once.
pub const WS_MAX_CLIENTS: usize = 2000;
/// Seconds for a request's headers to arrive (and an idle keep-alive
/// connection to stay open).
pub const HTTP_HEADER_TIMEOUT_SECS: f64 = 10.0;
/// Seconds for a request to be read and answered.
pub const HTTP_REQUEST_TIMEOUT_SECS: f64 = 60.0;
/// Seconds an alert posted to `/api/v2/alerts` without `endsAt` stays open
/// without being posted again (Alertmanager's `resolve_timeout`).
pub const EXTERNAL_RESOLVE_TIMEOUT_SECS: f64 = 300.0;
/// Connections open at once (also kept below the open-file limit).
pub const HTTP_MAX_CONNECTIONS: usize = 4096;
/// Seconds a running training job or a loading model may go without a
/// report before it counts as failed ("no report since ...").
pub const PLATFORM_STALE_AFTER_SECS: f64 = 600.0;
/// API tokens are required (`AUTH=off` only on a loopback address).
pub const AUTH: bool = true;
/// Failed sign-ins from one address per minute before it gets 429.
pub const AUTH_FAILURE_LIMIT: u32 = 10;
/// Reads need a token.
pub const PUBLIC_READ: bool = false;
/// `GET /` and `GET /health` answer without a token (load balancers).
pub const PUBLIC_HEALTH: bool = true;
/// Days finished training jobs and unloaded models are kept.
pub const PLATFORM_RETENTION_DAYS: u32 = 7;
/// Seconds between scheduled backups (when `BACKUP_DIR` is set): daily.
pub const BACKUP_INTERVAL_SECS: f64 = 86_400.0;
/// The longest `BACKUP_INTERVAL`: 30 days.
pub const BACKUP_INTERVAL_MAX_SECS: f64 = 30.0 * 86_400.0;
/// Scheduled backups kept in `BACKUP_DIR`; older ones are deleted.
pub const BACKUP_KEEP: u32 = 7;
/// Most (series, signal) pairs the anomaly detector watches.
pub const ANOMALY_MAX_SERIES: usize = 5_000;

// A `[[services]]` entry.
/// Seconds before a check counts as failed.
pub const SERVICE_TIMEOUT_SECS: f64 = 5.0;
/// The request counter a scraped service exposes.
pub const REQUESTS_METRIC: &str = "http_requests_total";
/// The request duration histogram a scraped service exposes, in seconds.
pub const DURATION_METRIC: &str = "http_request_duration_seconds";

// A `[[rules]]` entry.
pub const RULE_AGGREGATION: &str = "avg";
pub const RULE_OP: &str = ">";
/// Seconds the aggregation looks back.
pub const RULE_WINDOW_SECS: f64 = 300.0;
/// Seconds the condition must stay clear before the alert resolves.
pub const RULE_CLEAR_AFTER_SECS: f64 = 30.0;
