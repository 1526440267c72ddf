//! Built-in defaults, one function per setting (the lowest precedence layer).

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
