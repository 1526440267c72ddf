//! Rules: the built-in set and the evaluation of one rule against the store
//! at an explicit time (so tests can simulate days in seconds).

use crate::analysis::linear::Fit;
use crate::anomalies::{Signal, score_key};
use crate::collect::system::metric as system;
use crate::config::Config;
use crate::config::alerting::{Aggregation, Matcher, Op, RuleSpec, Severity};
use crate::error::Result;
use crate::health;
use crate::platform::{models, training};
use crate::store::{SeriesKey, Store};
use std::time::Duration;

#[allow(clippy::too_many_arguments)] // one row of the built-in table
fn rule(
    name: &str,
    metric: &str,
    aggregation: Aggregation,
    window_secs: f64,
    op: Op,
    threshold: f64,
    severity: Severity,
    message: &str,
) -> RuleSpec {
    RuleSpec {
        name: name.into(),
        metric: metric.into(),
        matchers: vec![],
        aggregation,
        window: Duration::from_secs_f64(window_secs),
        op,
        threshold,
        for_: Duration::ZERO,
        clear_after: Duration::from_secs(30),
        severity,
        message: message.into(),
        description: format!(
            "Built-in rule {name}: {metric} over {window_secs} s is {{value}}, {} {{threshold}}. Labels: {{labels}}.",
            op.as_str()
        ),
        builtin: true,
    }
}

fn with(mut r: RuleSpec, name: &str, value: &str, negate: bool) -> RuleSpec {
    r.matchers.push(Matcher {
        name: name.into(),
        value: value.into(),
        negate,
    });
    r
}

/// The built-in rules (documented in the README), then the configured ones.
pub fn effective_rules(config: &Config) -> Vec<RuleSpec> {
    use Aggregation::*;
    use Op::*;
    use Severity::*;
    const WEEK: f64 = 7.0 * 86_400.0;
    let stalled = config.system_metrics_interval.as_secs_f64() * 3.0;
    let mut rules = vec![
        rule(
            "cpu_usage_high",
            system::CPU_USAGE_PERCENT,
            Avg,
            300.0,
            Gt,
            85.0,
            Warning,
            "CPU usage {value}% over {threshold}%",
        ),
        rule(
            "cpu_usage_critical",
            system::CPU_USAGE_PERCENT,
            Avg,
            300.0,
            Gt,
            95.0,
            Critical,
            "CPU usage {value}% over {threshold}%",
        ),
        rule(
            "memory_usage_high",
            system::MEMORY_USAGE_PERCENT,
            Avg,
            300.0,
            Gt,
            85.0,
            Warning,
            "Memory usage {value}% over {threshold}%",
        ),
        rule(
            "memory_usage_critical",
            system::MEMORY_USAGE_PERCENT,
            Avg,
            300.0,
            Gt,
            95.0,
            Critical,
            "Memory usage {value}% over {threshold}%",
        ),
        rule(
            "disk_usage_high",
            system::DISK_USAGE_PERCENT,
            Last,
            300.0,
            Gt,
            85.0,
            Warning,
            "Disk {label.mount} usage {value}% over {threshold}%",
        ),
        rule(
            "disk_usage_critical",
            system::DISK_USAGE_PERCENT,
            Last,
            300.0,
            Gt,
            95.0,
            Critical,
            "Disk {label.mount} usage {value}% over {threshold}%",
        ),
        rule(
            "load_per_core_high",
            system::LOAD_PER_CORE,
            Avg,
            300.0,
            Gt,
            2.0,
            Warning,
            "Load per core {value} over {threshold}",
        ),
        with(
            with(
                rule(
                    "service_unhealthy",
                    health::UP_METRIC,
                    Last,
                    300.0,
                    Lt,
                    1.0,
                    Critical,
                    "Service {service} is unhealthy",
                ),
                "service",
                "redis",
                true,
            ),
            "service",
            "postgres",
            true,
        ),
        RuleSpec {
            // Flapping is held off twice: the forecast must say "within a
            // day" for 10 minutes to fire, and not say it for an hour to
            // resolve.
            for_: Duration::from_secs(600),
            clear_after: Duration::from_secs(3600),
            ..rule(
                "disk_full_forecast",
                system::DISK_USAGE_PERCENT,
                HoursToFull,
                6.0 * 3600.0,
                Lt,
                24.0,
                Warning,
                "Disk {label.mount} is forecast full in {value} h at its trend over 6 h",
            )
        },
        rule(
            "service_degraded",
            health::DEGRADED_METRIC,
            Last,
            300.0,
            Ge,
            1.0,
            Warning,
            "Service {service} is degraded",
        ),
    ];
    // The optional dependencies are a warning, not service_unhealthy.
    rules.extend(["redis", "postgres"].map(|dep| {
        with(
            rule(
                &format!("dependency_down_{dep}"),
                health::UP_METRIC,
                Last,
                300.0,
                Lt,
                1.0,
                Warning,
                "Optional dependency {service} is down",
            ),
            "service",
            dep,
            false,
        )
    }));
    rules.extend([
        rule(
            "collector_stalled",
            system::CPU_USAGE_PERCENT,
            Age,
            stalled,
            Gt,
            stalled,
            Critical,
            "System collector stalled: no sample for {value} s",
        ),
        rule(
            "error_rate_high",
            crate::collect::requests::REQUESTS_METRIC,
            ErrorRate,
            300.0,
            Gt,
            5.0,
            Warning,
            "Service {service} error rate {value}% over {threshold}%",
        ),
        rule(
            "model_load_failed",
            models::FAILED_METRIC,
            Last,
            WEEK,
            Ge,
            1.0,
            Warning,
            "Model {label.model} failed to load",
        ),
        rule(
            training::JOB_FAILED_METRIC,
            training::JOB_FAILED_METRIC,
            Last,
            WEEK,
            Ge,
            1.0,
            Warning,
            "Training job {label.job} ({label.model}) failed",
        ),
        rule(
            training::JOB_STALE_METRIC,
            training::JOB_STALE_METRIC,
            Last,
            WEEK,
            Ge,
            1.0,
            Warning,
            "Training job {label.job} ({label.model}) stopped reporting",
        ),
    ]);
    if let Some(b) = &config.backup {
        // The schedule writes both series at least every 30 s.
        let stale = 2.0 * b.interval.as_secs_f64() + 60.0;
        rules.extend([
            rule(
                "backup_failed",
                crate::config::BACKUP_OK_METRIC,
                Last,
                300.0,
                Lt,
                1.0,
                Warning,
                "The last scheduled backup failed (GET /health says why)",
            ),
            rule(
                "backup_stale",
                crate::config::BACKUP_AGE_METRIC,
                Last,
                300.0,
                Gt,
                stale,
                Critical,
                "No backup has succeeded for {value} s",
            ),
        ]);
    }
    // The collector rule must not wait for the default clear-after either way.
    rules.extend(config.rules.iter().cloned());
    rules
}

/// The rule's value for every matching series at `now_ms` (`None`: no data).
pub fn evaluate(r: &RuleSpec, store: &Store, now_ms: i64) -> Result<Vec<(SeriesKey, Option<f64>)>> {
    let window_ms = r.window.as_millis() as i64;
    let raw_step = store.layout().raw().step_ms;
    // Enough resolution for the window, at most ~120 points.
    let step = (window_ms / 120).max(raw_step);
    let from = now_ms - window_ms;
    let mut out = Vec::new();
    let equal: Vec<(&str, &str)> = r
        .matchers
        .iter()
        .filter(|m| !m.negate)
        .map(|m| (m.name.as_str(), m.value.as_str()))
        .collect();
    let found = store.find_with(&r.metric, &equal, |k| {
        r.matchers.iter().all(|m| m.matches(k.label(&m.name)))
    });
    for (id, key) in found {
        let value = match r.aggregation {
            Aggregation::ErrorRate => {
                if !store.is_hist(id) {
                    continue;
                }
                store
                    .query_hist(id, from, now_ms + 1, step)?
                    .total()
                    .and_then(|h| h.error_percent())
            }
            Aggregation::Anomaly => {
                let mut peak: Option<f64> = None;
                for s in Signal::of(store.is_hist(id)) {
                    let Some(sid) = score_key(&key, *s).and_then(|k| store.lookup(&k)) else {
                        continue;
                    };
                    if let Some(a) = store.query(sid, from, now_ms + 1, step)?.total() {
                        peak = Some(peak.map_or(a.max, |p| p.max(a.max)));
                    }
                }
                peak
            }
            Aggregation::HoursToFull => {
                let q = store.query(id, from, now_ms + 1, step)?;
                let xy: Vec<(f64, f64)> = q
                    .means(now_ms)
                    .into_iter()
                    .map(|(t, v)| ((t - now_ms) as f64 / 1000.0, v))
                    .collect();
                // The whole window, and its last sixth: a robust line over
                // the window follows the majority of it, so a disk that has
                // just begun to fill fast is seen by the short one.
                let recent = xy.partition_point(|(x, _)| *x < -(window_ms as f64) / 6000.0);
                [&xy[..], &xy[recent..]]
                    .iter()
                    .filter_map(|pts| Fit::new(pts).and_then(|f| f.seconds_to(100.0)))
                    .map(|(s, _, _)| s / 3600.0)
                    .reduce(f64::min)
            }
            Aggregation::Age => {
                let newest = store.latest(id, now_ms)?;
                Some(match newest {
                    Some((ts, _)) => (now_ms - ts) as f64 / 1000.0,
                    // Nothing in the raw window: at least that old.
                    None => store.layout().raw().window_ms() as f64 / 1000.0,
                })
            }
            agg => {
                let q = store.query(id, from, now_ms + 1, step)?;
                let mut filled = q.points.iter().filter_map(|(_, a)| a.as_ref());
                match agg {
                    Aggregation::Avg => q.total().map(|a| a.avg()),
                    Aggregation::Max => q.total().map(|a| a.max),
                    Aggregation::Min => q.total().map(|a| a.min),
                    Aggregation::Last => filled.next_back().map(|a| a.last),
                    Aggregation::Rate => match (filled.next(), filled.next_back()) {
                        (Some(a), Some(b)) if b.last_ts_ms > a.last_ts_ms => {
                            let grew = if b.last >= a.last {
                                b.last - a.last
                            } else {
                                b.last
                            };
                            Some(grew * 1000.0 / (b.last_ts_ms - a.last_ts_ms) as f64)
                        }
                        _ => None,
                    },
                    _ => None,
                }
            }
        };
        out.push((key, value));
    }
    Ok(out)
}

/// Fills a message template: {value}, {threshold}, {service}, {rule},
/// {labels} and {label.NAME}.
pub fn render(template: &str, r: &RuleSpec, key: &SeriesKey, service: &str, value: f64) -> String {
    let fmt = |v: f64| {
        if v.fract() == 0.0 && v.abs() < 1e15 {
            format!("{v:.0}")
        } else {
            format!("{v:.2}")
        }
    };
    let labels = key
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut out = template
        .replace("{value}", &fmt(value))
        .replace("{threshold}", &fmt(r.threshold))
        .replace("{service}", service)
        .replace("{rule}", &r.name)
        .replace("{labels}", &labels);
    while let Some(start) = out.find("{label.") {
        let Some(end) = out[start..].find('}') else {
            break;
        };
        let name = out[start + 7..start + end].to_string();
        let v = key.label(&name).unwrap_or("").to_string();
        out.replace_range(start..start + end + 1, &v);
    }
    out
}
