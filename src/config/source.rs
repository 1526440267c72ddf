//! One setting's value from the highest layer that gives it (flag, then
//! environment, then file), checked and converted, with a label naming
//! where it came from for error messages: `--port`, `SERVICE_PORT`, or
//! `service_port in /etc/mlsec-monitor.toml`.

use super::raw::RawConfig;
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::time::Duration;

/// The longest interval any setting accepts, in seconds (one day).
const MAX_INTERVAL_SECS: f64 = 86_400.0;

pub struct Source<'a> {
    pub env: &'a HashMap<String, String>,
    pub file: &'a RawConfig,
    pub file_name: String,
}

/// A value given on the command line, with the flag that gave it.
pub type Flag = Option<(String, &'static str)>;

impl Source<'_> {
    /// The highest-precedence text for `env_key`, with a label naming its origin.
    pub fn pick(
        &self,
        flag: Flag,
        env_key: &str,
        file: Option<String>,
    ) -> Option<(String, String)> {
        if let Some((v, name)) = flag {
            return Some((v, name.to_string()));
        }
        if let Some(v) = self.env.get(env_key).filter(|v| !v.is_empty()) {
            return Some((v.clone(), env_key.to_string()));
        }
        file.map(|v| {
            (
                v,
                format!("{} in {}", env_key.to_lowercase(), self.file_name),
            )
        })
    }

    /// A number of seconds in (0, 86400].
    /// The environment's value for `key`, if set and not empty.
    pub fn env_value(&self, key: &str) -> Option<&str> {
        self.env
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn interval(&self, key: &str, file: Option<f64>, default: f64) -> Result<Duration> {
        self.interval_up_to(key, file, default, MAX_INTERVAL_SECS)
    }

    /// A number of seconds in (0, max].
    pub fn interval_up_to(
        &self,
        key: &str,
        file: Option<f64>,
        default: f64,
        max: f64,
    ) -> Result<Duration> {
        match self.pick(None, key, file.map(|v| v.to_string())) {
            None => Ok(Duration::from_secs_f64(default)),
            Some((v, from)) => match v.parse::<f64>() {
                Ok(s) if s.is_finite() && s > 0.0 && s <= max => Ok(Duration::from_secs_f64(s)),
                _ => Err(Error::config(format!(
                    "{from}: '{v}' is not a positive number of seconds (at most {max})"
                ))),
            },
        }
    }

    /// A whole number in [1, max].
    pub fn count(&self, key: &str, file: Option<i64>, default: u64, max: u64) -> Result<u64> {
        match self.pick(None, key, file.map(|v| v.to_string())) {
            None => Ok(default),
            Some((v, from)) => match v.parse::<u64>() {
                Ok(n) if n >= 1 && n <= max => Ok(n),
                _ => Err(Error::config(format!(
                    "{from}: '{v}' is not a whole number from 1 to {max}"
                ))),
            },
        }
    }

    /// A URL (anything with `://`); the error masks its password.
    pub fn url(&self, key: &str, file: Option<String>) -> Result<Option<String>> {
        match self.pick(None, key, file) {
            None => Ok(None),
            Some((v, _)) if v.contains("://") => Ok(Some(v)),
            Some((v, from)) => Err(Error::config(format!(
                "{from}: '{}' is not a URL",
                super::mask_url(&v)
            ))),
        }
    }
}
