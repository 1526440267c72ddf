//! The Prometheus exposition formats: text 0.0.4 (what `text/plain` asks
//! for) and OpenMetrics 1.0.0 (`application/openmetrics-text`). A family
//! has a name, help, a type and samples; `render` writes either format with
//! its rules: HELP and TYPE once per family, label values escaped (`\`,
//! `"`, newline), help escaped (`\`, newline), counters' samples ending in
//! `_total` (in OpenMetrics the TYPE line names the family without it),
//! histograms as cumulative `_bucket{le}`, `_sum`, `_count`, and `# EOF`
//! closing OpenMetrics.

use std::fmt::Write;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    OpenMetrics,
}

impl Format {
    pub fn content_type(&self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }

    /// The format an `Accept` header asks for: OpenMetrics when it names it
    /// before (or with a higher quality than) the text format, the text
    /// format for `text/plain`, `*/*`, `text/*` or no header; `None` when it
    /// accepts neither.
    pub fn negotiate(accept: Option<&str>) -> Option<Format> {
        let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
            return Some(Format::Text);
        };
        let mut best: Option<(f64, usize, Format)> = None;
        for (i, part) in accept.split(',').enumerate() {
            let mut params = part.split(';').map(str::trim);
            let media = params.next().unwrap_or("").to_ascii_lowercase();
            let q = params
                .filter_map(|p| p.strip_prefix("q="))
                .find_map(|q| q.parse::<f64>().ok())
                .unwrap_or(1.0);
            let format = match media.as_str() {
                "application/openmetrics-text" => Format::OpenMetrics,
                "text/plain" | "text/*" | "*/*" => Format::Text,
                _ => continue,
            };
            if q <= 0.0 {
                continue;
            }
            // Highest quality first; among equals, the one listed first.
            if best.is_none_or(|(bq, _, _)| q > bq) {
                best = Some((q, i, format));
            }
        }
        best.map(|(_, _, f)| f)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Cumulative buckets (upper bound, count at or below it), sum and count.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HistogramValue {
    pub buckets: Vec<(f64, u64)>,
    pub sum: f64,
    pub count: u64,
}

enum Value {
    Number(f64),
    Histogram(HistogramValue),
}

struct Sample {
    labels: Vec<(String, String)>,
    value: Value,
}

pub struct Family {
    name: String,
    help: String,
    kind: Kind,
    samples: Vec<Sample>,
}

impl Family {
    fn push(&mut self, labels: &[(&str, &str)], value: Value) {
        self.samples.push(Sample {
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            value,
        });
    }

    /// A counter's or gauge's value with `labels`.
    pub fn add(&mut self, labels: &[(&str, &str)], value: f64) -> &mut Family {
        self.push(labels, Value::Number(value));
        self
    }

    pub fn add_histogram(&mut self, labels: &[(&str, &str)], h: HistogramValue) -> &mut Family {
        self.push(labels, Value::Histogram(h));
        self
    }
}

#[derive(Default)]
pub struct Exposition {
    families: Vec<Family>,
    /// Families already written in the chosen format (`push_raw`).
    raw: String,
}

impl Exposition {
    /// A new family; `name` is the family's name (a counter's without `_total`).
    pub fn family(&mut self, name: &str, help: &str, kind: Kind) -> &mut Family {
        self.families.push(Family {
            name: name.to_string(),
            help: help.to_string(),
            kind,
            samples: Vec::new(),
        });
        let last = self.families.len() - 1;
        &mut self.families[last]
    }

    /// Text already in the exposition format, written after the families
    /// (before OpenMetrics' `# EOF`): for many series at once.
    pub fn push_raw(&mut self, text: &str) {
        self.raw.push_str(text);
    }

    pub fn render(&self, format: Format) -> String {
        let mut out = String::new();
        for f in &self.families {
            let type_name = match (f.kind, format) {
                (Kind::Counter, Format::Text) => format!("{}_total", f.name),
                _ => f.name.clone(),
            };
            let kind = match f.kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
                Kind::Histogram => "histogram",
            };
            let _ = writeln!(out, "# HELP {type_name} {}", escape_help(&f.help));
            let _ = writeln!(out, "# TYPE {type_name} {kind}");
            for s in &f.samples {
                match &s.value {
                    Value::Number(v) => {
                        let name = match f.kind {
                            Kind::Counter => format!("{}_total", f.name),
                            _ => f.name.clone(),
                        };
                        line(&mut out, &name, &s.labels, None, *v);
                    }
                    Value::Histogram(h) => {
                        let bucket = format!("{}_bucket", f.name);
                        for (le, n) in &h.buckets {
                            let le = number(*le);
                            line(&mut out, &bucket, &s.labels, Some(&le), *n as f64);
                        }
                        let inf = Some("+Inf");
                        line(&mut out, &bucket, &s.labels, inf, h.count as f64);
                        let sum = format!("{}_sum", f.name);
                        line(&mut out, &sum, &s.labels, None, h.sum);
                        let count = format!("{}_count", f.name);
                        line(&mut out, &count, &s.labels, None, h.count as f64);
                    }
                }
            }
        }
        out.push_str(&self.raw);
        if format == Format::OpenMetrics {
            out.push_str("# EOF\n");
        }
        out
    }
}

fn line(out: &mut String, name: &str, labels: &[(String, String)], le: Option<&str>, value: f64) {
    out.push_str(name);
    if !labels.is_empty() || le.is_some() {
        out.push('{');
        let mut first = true;
        let all = labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(le.map(|le| ("le", le)));
        for (k, v) in all {
            if !first {
                out.push(',');
            }
            first = false;
            let _ = write!(out, "{k}=\"{}\"", escape_label(v));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {}", number(value));
}

/// A sample value as the formats write it.
pub fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Exposition {
        let mut e = Exposition::default();
        e.family(
            "app_requests",
            "Requests \\ answered\nso far.",
            Kind::Counter,
        )
        .add(&[("route", "/a\"b\\c\nd")], 3.0);
        e.family("app_up", "Up.", Kind::Gauge).add(&[], 1.0);
        e.family("app_latency_seconds", "Latency.", Kind::Histogram)
            .add_histogram(
                &[("route", "/x")],
                HistogramValue {
                    buckets: vec![(0.1, 2), (1.0, 3)],
                    sum: 1.5,
                    count: 4,
                },
            );
        e.push_raw(
            "# HELP queue_depth A stored series.\nqueue_depth{queue=\"q\"} 2.5 1700000000123\n",
        );
        e
    }

    #[test]
    fn the_text_format() {
        let text = sample().render(Format::Text);
        assert_eq!(
            text,
            "# HELP app_requests_total Requests \\\\ answered\\nso far.\n\
             # TYPE app_requests_total counter\n\
             app_requests_total{route=\"/a\\\"b\\\\c\\nd\"} 3\n\
             # HELP app_up Up.\n# TYPE app_up gauge\napp_up 1\n\
             # HELP app_latency_seconds Latency.\n# TYPE app_latency_seconds histogram\n\
             app_latency_seconds_bucket{route=\"/x\",le=\"0.1\"} 2\n\
             app_latency_seconds_bucket{route=\"/x\",le=\"1\"} 3\n\
             app_latency_seconds_bucket{route=\"/x\",le=\"+Inf\"} 4\n\
             app_latency_seconds_sum{route=\"/x\"} 1.5\n\
             app_latency_seconds_count{route=\"/x\"} 4\n\
             # HELP queue_depth A stored series.\n\
             queue_depth{queue=\"q\"} 2.5 1700000000123\n"
        );
    }

    #[test]
    fn openmetrics_names_counters_without_total_and_ends_with_eof() {
        let text = sample().render(Format::OpenMetrics);
        assert!(text.contains("# TYPE app_requests counter\n"), "{text}");
        assert!(text.contains("\napp_requests_total{"), "{text}");
        assert!(text.contains("queue_depth{queue=\"q\"} 2.5 1700000000123\n# EOF\n"));
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn accept_negotiation() {
        use Format::*;
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::negotiate(Some(prometheus)), Some(OpenMetrics));
        assert_eq!(Format::negotiate(None), Some(Text));
        assert_eq!(Format::negotiate(Some("text/plain")), Some(Text));
        assert_eq!(Format::negotiate(Some("*/*")), Some(Text));
        assert_eq!(
            Format::negotiate(Some("text/plain;q=0.9, application/openmetrics-text")),
            Some(OpenMetrics)
        );
        assert_eq!(Format::negotiate(Some("application/json")), None);
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text;q=0")),
            None
        );
    }
}
