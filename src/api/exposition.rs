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
    /// The families, then what `tail` writes straight into the answer
    /// (about `tail_len` bytes, reserved up front: a large tail is not
    /// copied from buffer to buffer), then the end marker.
    pub fn render_with(
        &self,
        format: Format,
        tail_len: usize,
        tail: impl FnOnce(&mut String),
    ) -> String {
        let mut out = String::with_capacity(self.families.len() * 256 + tail_len + 8);
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
        tail(&mut out);
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

/// Below 2^53 every whole f64 is exactly an i64.
const MAX_EXACT_INT: f64 = 9_007_199_254_740_992.0;

/// Appends a sample value the fast way, as `number` would write it: a whole
/// number (counts, bytes) as an integer (`42`, several times cheaper than a
/// float's shortest form), other finite values in their shortest exact form.
pub fn push_number(out: &mut String, v: f64, ints: &mut itoa::Buffer, floats: &mut ryu::Buffer) {
    if v.fract() == 0.0 && v.abs() < MAX_EXACT_INT && (v != 0.0 || v.is_sign_positive()) {
        out.push_str(ints.format(v as i64));
    } else if v.is_finite() {
        out.push_str(floats.format_finite(v));
    } else {
        out.push_str(&number(v));
    }
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
        e
    }

    /// The families, then lines written straight into the answer.
    fn rendered(format: Format) -> String {
        const TAIL: &str =
            "# HELP queue_depth A stored series.\nqueue_depth{queue=\"q\"} 2.5 1700000000123\n";
        sample().render_with(format, TAIL.len(), |out| out.push_str(TAIL))
    }

    #[test]
    fn numbers_are_written_exactly_and_whole_ones_as_integers() {
        let (mut ints, mut floats) = (itoa::Buffer::new(), ryu::Buffer::new());
        for (v, want) in [
            (42.0, "42"),
            (-3.0, "-3"),
            (0.0, "0"),
            (-0.0, "-0.0"),
            (0.5, "0.5"),
            (1e-7, "1e-7"),
            (1e300, "1e300"),
            (9_007_199_254_740_991.0, "9007199254740991"),
            (9_007_199_254_740_992.0, "9007199254740992.0"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
        ] {
            let mut out = String::new();
            push_number(&mut out, v, &mut ints, &mut floats);
            assert_eq!(out, want, "{v}");
            if v.is_finite() {
                assert_eq!(out.parse::<f64>().unwrap().to_bits(), v.to_bits(), "{v}");
            }
        }
    }

    #[test]
    fn the_text_format() {
        let text = rendered(Format::Text);
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
        let text = rendered(Format::OpenMetrics);
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
