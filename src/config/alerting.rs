//! Alerting configuration: custom `[[rules]]`, notification `[[channels]]`,
//! `[[routes]]` and `[escalation]`, validated at start-up.

use crate::error::{Error, Result};
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub name: String,
    /// The series: metric name.
    pub metric: String,
    /// Label matchers: `{ service = "model-api" }`; a value starting with `!` means "not equal".
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// avg, max, min, last, rate, age, error_rate (default avg).
    pub aggregation: Option<String>,
    /// Seconds the aggregation looks back (default 300).
    pub window: Option<f64>,
    /// >, >=, <, <= (default >).
    pub op: Option<String>,
    pub threshold: f64,
    /// Seconds the condition must hold before the alert fires (default 0).
    #[serde(rename = "for")]
    pub for_secs: Option<f64>,
    /// Seconds the condition must stay clear before the alert resolves (default 30).
    pub clear_after: Option<f64>,
    pub severity: String,
    /// Templates: {value}, {threshold}, {service}, {rule}, {labels}, {label.NAME}.
    pub message: Option<String>,
    pub description: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aggregation {
    Avg,
    Max,
    Min,
    Last,
    /// Increase per second of a counter over the window.
    Rate,
    /// Seconds since the newest sample (stale data).
    Age,
    /// Percent of failed requests of a request-statistics series.
    ErrorRate,
    /// The highest anomaly score (0 to 1) of the series over the window
    /// (the series is watched because a rule asks for it).
    Anomaly,
    /// Hours until the series reaches 100 (a percentage) at its robust
    /// trend over the window; no value when it is not rising.
    HoursToFull,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Gt,
    Ge,
    Lt,
    Le,
}

impl Aggregation {
    pub fn as_str(&self) -> &'static str {
        match self {
            Aggregation::Avg => "avg",
            Aggregation::Max => "max",
            Aggregation::Min => "min",
            Aggregation::Last => "last",
            Aggregation::Rate => "rate",
            Aggregation::Age => "age",
            Aggregation::ErrorRate => "error_rate",
            Aggregation::Anomaly => "anomaly",
            Aggregation::HoursToFull => "hours_to_full",
        }
    }
}

impl Op {
    pub fn holds(&self, v: f64, t: f64) -> bool {
        match self {
            Op::Gt => v > t,
            Op::Ge => v >= t,
            Op::Lt => v < t,
            Op::Le => v <= t,
        }
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
        }
    }
}

#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn parse(s: &str) -> Option<Severity> {
        match s {
            "critical" => Some(Severity::Critical),
            "warning" => Some(Severity::Warning),
            "info" => Some(Severity::Info),
            _ => None,
        }
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// A label matcher: equal, or not equal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Matcher {
    pub name: String,
    pub value: String,
    pub negate: bool,
}

impl Matcher {
    pub fn matches(&self, v: Option<&str>) -> bool {
        (v == Some(self.value.as_str())) != self.negate
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct RuleSpec {
    pub name: String,
    pub metric: String,
    pub matchers: Vec<Matcher>,
    pub aggregation: Aggregation,
    pub window: Duration,
    pub op: Op,
    pub threshold: f64,
    pub for_: Duration,
    pub clear_after: Duration,
    pub severity: Severity,
    pub message: String,
    pub description: String,
    pub builtin: bool,
}

fn secs(
    v: Option<f64>,
    default: f64,
    what: &str,
    allow_zero: bool,
) -> std::result::Result<Duration, String> {
    let s = v.unwrap_or(default);
    if s.is_finite() && (s > 0.0 || (allow_zero && s == 0.0)) && s <= 30.0 * 86_400.0 {
        Ok(Duration::from_secs_f64(s))
    } else {
        Err(format!("{what} {s} is not a valid number of seconds"))
    }
}

pub fn build_rules(raw: &[RawRule]) -> Result<Vec<RuleSpec>> {
    let mut out: Vec<RuleSpec> = Vec::new();
    for (i, r) in raw.iter().enumerate() {
        let fail = |m: String| Error::config(format!("rules[{i}] (\"{}\"): {m}", r.name));
        if r.name.is_empty() || out.iter().any(|o| o.name == r.name) {
            return Err(fail("name must be non-empty and unique".into()));
        }
        crate::names::check_metric(&r.metric).map_err(fail)?;
        let aggregation = match r
            .aggregation
            .as_deref()
            .unwrap_or(super::defaults::RULE_AGGREGATION)
        {
            "avg" => Aggregation::Avg,
            "max" => Aggregation::Max,
            "min" => Aggregation::Min,
            "last" => Aggregation::Last,
            "rate" => Aggregation::Rate,
            "age" => Aggregation::Age,
            "error_rate" => Aggregation::ErrorRate,
            "anomaly" => Aggregation::Anomaly,
            "hours_to_full" => Aggregation::HoursToFull,
            other => {
                return Err(fail(format!(
                    "unknown aggregation '{other}' (avg, max, min, last, rate, age, error_rate, anomaly, hours_to_full)"
                )));
            }
        };
        let op = match r.op.as_deref().unwrap_or(super::defaults::RULE_OP) {
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "<" => Op::Lt,
            "<=" => Op::Le,
            other => return Err(fail(format!("unknown op '{other}' (>, >=, <, <=)"))),
        };
        if !r.threshold.is_finite() {
            return Err(fail("threshold must be a number".into()));
        }
        let severity = Severity::parse(&r.severity).ok_or_else(|| {
            fail(format!(
                "unknown severity '{}' (critical, warning, info)",
                r.severity
            ))
        })?;
        let matchers = r
            .labels
            .iter()
            .map(|(k, v)| match v.strip_prefix('!') {
                Some(rest) => Matcher {
                    name: k.clone(),
                    value: rest.to_string(),
                    negate: true,
                },
                None => Matcher {
                    name: k.clone(),
                    value: v.clone(),
                    negate: false,
                },
            })
            .collect();
        out.push(RuleSpec {
            name: r.name.clone(),
            metric: r.metric.clone(),
            matchers,
            aggregation,
            window: secs(r.window, super::defaults::RULE_WINDOW_SECS, "window", false)
                .map_err(fail)?,
            op,
            threshold: r.threshold,
            for_: secs(r.for_secs, 0.0, "for", true).map_err(fail)?,
            clear_after: secs(
                r.clear_after,
                super::defaults::RULE_CLEAR_AFTER_SECS,
                "clear_after",
                true,
            )
            .map_err(fail)?,
            severity,
            message: r
                .message
                .clone()
                .unwrap_or_else(|| format!("{} {{value}} {} {{threshold}}", r.metric, op.as_str())),
            description: r.description.clone().unwrap_or_else(|| {
                format!(
                    "Rule {} fired: {}({}) {} {{threshold}}",
                    r.name,
                    r.metric,
                    "{labels}",
                    op.as_str()
                )
            }),
            builtin: false,
        });
    }
    Ok(out)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawChannel {
    pub name: String,
    pub kind: String,
    pub url: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelKind {
    Webhook,
    Slack,
    Alertmanager,
}

impl ChannelKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            ChannelKind::Webhook => "webhook",
            ChannelKind::Slack => "slack",
            ChannelKind::Alertmanager => "alertmanager",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ChannelSpec {
    pub name: String,
    pub kind: ChannelKind,
    pub url: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub severity: Option<String>,
    pub service: Option<String>,
    pub channels: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RouteSpec {
    pub severity: Option<Severity>,
    pub service: Option<String>,
    pub channels: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEscalation {
    /// Seconds an active critical alert may stay unacknowledged.
    pub after: f64,
    pub channels: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct EscalationSpec {
    pub after: Duration,
    pub channels: Vec<String>,
}

pub fn build_channels(
    raw: &[RawChannel],
    routes: &[RawRoute],
    esc: Option<&RawEscalation>,
) -> Result<(Vec<ChannelSpec>, Vec<RouteSpec>, Option<EscalationSpec>)> {
    let mut chans: Vec<ChannelSpec> = Vec::new();
    for (i, c) in raw.iter().enumerate() {
        let fail = |m: String| Error::config(format!("channels[{i}] (\"{}\"): {m}", c.name));
        if c.name.is_empty() || chans.iter().any(|o| o.name == c.name) {
            return Err(fail("name must be non-empty and unique".into()));
        }
        let kind = match c.kind.as_str() {
            "webhook" => ChannelKind::Webhook,
            "slack" => ChannelKind::Slack,
            "alertmanager" => ChannelKind::Alertmanager,
            other => {
                return Err(fail(format!(
                    "unknown kind '{other}' (webhook, slack, alertmanager)"
                )));
            }
        };
        if !(c.url.starts_with("http://") || c.url.starts_with("https://")) {
            return Err(fail(format!("url '{}' is not an http(s) URL", c.url)));
        }
        chans.push(ChannelSpec {
            name: c.name.clone(),
            kind,
            url: c.url.trim_end_matches('/').to_string(),
        });
    }
    let known = |names: &[String], what: String| -> Result<()> {
        match names.iter().find(|n| !chans.iter().any(|c| &c.name == *n)) {
            Some(n) => Err(Error::config(format!("{what}: unknown channel '{n}'"))),
            None => Ok(()),
        }
    };
    let mut out_routes = Vec::new();
    for (i, r) in routes.iter().enumerate() {
        known(&r.channels, format!("routes[{i}]"))?;
        let severity = match &r.severity {
            None => None,
            Some(s) => Some(Severity::parse(s).ok_or_else(|| {
                Error::config(format!(
                    "routes[{i}]: unknown severity '{s}' (critical, warning, info)"
                ))
            })?),
        };
        out_routes.push(RouteSpec {
            severity,
            service: r.service.clone(),
            channels: r.channels.clone(),
        });
    }
    let escalation = match esc {
        None => None,
        Some(e) => {
            known(&e.channels, "escalation".into())?;
            Some(EscalationSpec {
                after: secs(Some(e.after), 0.0, "escalation after", false)
                    .map_err(Error::config)?,
                channels: e.channels.clone(),
            })
        }
    };
    Ok((chans, out_routes, escalation))
}
