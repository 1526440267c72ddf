//! `ANOMALY_METRICS` and `ANOMALY_MAX_SERIES`: which series the daemon's
//! anomaly detector watches.

use crate::error::{Error, Result};

/// Series of one metric with all of these labels (`metric` or
/// `metric{name=value,...}`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector {
    pub metric: String,
    pub labels: Vec<(String, String)>,
}

impl std::fmt::Display for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.metric)?;
        if !self.labels.is_empty() {
            let l: Vec<String> = self
                .labels
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect();
            write!(f, "{{{}}}", l.join(","))?;
        }
        Ok(())
    }
}

/// A comma-separated list of selectors (commas inside braces separate
/// labels); blanks dropped. Errors name the selector and what is wrong.
pub fn parse_selectors(text: &str, from: &str) -> Result<Vec<Selector>> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    let mut parts = Vec::new();
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    for part in parts.into_iter().map(str::trim).filter(|p| !p.is_empty()) {
        let bad = |why: String| Error::config(format!("{from}: '{part}': {why}"));
        let (metric, labels) = match part.split_once('{') {
            None => (part, ""),
            Some((m, rest)) => (
                m.trim(),
                rest.strip_suffix('}')
                    .ok_or_else(|| bad("a '{' without its closing '}'".into()))?,
            ),
        };
        crate::names::check_metric(metric).map_err(bad)?;
        out.push(Selector {
            metric: metric.to_string(),
            labels: crate::names::label_pairs(labels).map_err(bad)?,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_parse_with_labels_and_errors_name_the_selector() {
        let s = parse_selectors(
            "cpu_usage_percent, response_time_ms{service=api, region=\"eu\"},,",
            "ANOMALY_METRICS",
        )
        .unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].metric, "response_time_ms");
        assert_eq!(
            s[1].labels,
            vec![
                ("service".into(), "api".into()),
                ("region".into(), "eu".into())
            ]
        );
        assert_eq!(s[1].to_string(), "response_time_ms{service=api,region=eu}");
        for (text, why) in [
            ("cpu{service=api", "closing"),
            ("cpu{service}", "not name=value"),
            ("9cpu", "9cpu"),
        ] {
            let e = parse_selectors(text, "ANOMALY_METRICS")
                .unwrap_err()
                .to_string();
            assert!(e.contains("ANOMALY_METRICS") && e.contains(why), "{e}");
        }
    }
}
