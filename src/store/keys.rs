//! Series identity and sled key layout.
//!
//! A series is a metric name plus labels, written canonically as
//! `name{a="1",b="2"}` with labels sorted, so the same series always maps to
//! the same id. Block keys are `series id (u32 BE) | tier (u8) | ring position
//! (u32 BE)`: big-endian, so one series' blocks sort together.

use std::collections::BTreeMap;
use std::fmt;

pub type SeriesId = u32;

pub use crate::names::{MAX_LABELS, MAX_NAME_LEN};

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    pub metric: String,
    pub labels: BTreeMap<String, String>,
}

impl SeriesKey {
    pub fn new(metric: &str) -> SeriesKey {
        SeriesKey {
            metric: metric.to_string(),
            labels: BTreeMap::new(),
        }
    }

    pub fn with(mut self, name: &str, value: &str) -> SeriesKey {
        self.labels.insert(name.to_string(), value.to_string());
        self
    }

    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.get(name).map(String::as_str)
    }

    /// Checks the Prometheus naming rules: a metric matches
    /// `[a-zA-Z_:][a-zA-Z0-9_:]*`, a label name `[a-zA-Z_][a-zA-Z0-9_]*`.
    pub fn validate(&self) -> Result<(), String> {
        crate::names::check_metric(&self.metric)?;
        if self.labels.len() > MAX_LABELS {
            return Err(format!(
                "too many labels ({}, at most {MAX_LABELS})",
                self.labels.len()
            ));
        }
        for (k, v) in &self.labels {
            crate::names::check_label(k, v)?;
        }
        Ok(())
    }

    /// Parses the canonical form written by `Display` (used when loading the registry).
    pub fn parse(s: &str) -> Option<SeriesKey> {
        let (metric, rest) = s.split_once('{')?;
        let body = rest.strip_suffix('}')?;
        let mut key = SeriesKey::new(metric);
        let mut chars = body.chars().peekable();
        while chars.peek().is_some() {
            let name: String = chars.by_ref().take_while(|c| *c != '=').collect();
            if chars.next() != Some('"') {
                return None;
            }
            let mut value = String::new();
            loop {
                match chars.next()? {
                    '\\' => value.push(chars.next()?),
                    '"' => break,
                    c => value.push(c),
                }
            }
            key.labels.insert(name, value);
            match chars.next() {
                Some(',') | None => {}
                Some(_) => return None,
            }
        }
        Some(key)
    }
}

impl fmt::Display for SeriesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{{", self.metric)?;
        for (i, (k, v)) in self.labels.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{k}=\"")?;
            // `\` and `"` escaped, without building a new string.
            let mut rest = v.as_str();
            while let Some(at) = rest.find(['\\', '"']) {
                f.write_str(&rest[..at])?;
                f.write_str("\\")?;
                f.write_str(&rest[at..at + 1])?;
                rest = &rest[at + 1..];
            }
            f.write_str(rest)?;
            f.write_str("\"")?;
        }
        f.write_str("}")
    }
}

impl SeriesKey {
    /// True when `text` is this key's canonical form (`Display`), compared
    /// byte by byte without building it.
    pub fn is_written_as(&self, text: &str) -> bool {
        let mut rest = text.as_bytes();
        let mut eat = |part: &[u8]| match rest.strip_prefix(part) {
            Some(r) => {
                rest = r;
                true
            }
            None => false,
        };
        if !eat(self.metric.as_bytes()) || !eat(b"{") {
            return false;
        }
        for (i, (k, v)) in self.labels.iter().enumerate() {
            if (i > 0 && !eat(b",")) || !eat(k.as_bytes()) || !eat(b"=\"") {
                return false;
            }
            for b in v.bytes() {
                if (matches!(b, b'\\' | b'"') && !eat(b"\\")) || !eat(&[b]) {
                    return false;
                }
            }
            if !eat(b"\"") {
                return false;
            }
        }
        eat(b"}") && rest.is_empty()
    }

    /// A hash of the key, the same for equal keys within one process (never
    /// stored).
    pub fn hash64(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::hash::DefaultHasher::new();
        self.hash(&mut h);
        h.finish()
    }
}

pub fn block_key(series: SeriesId, tier: u8, position: u32) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[..4].copy_from_slice(&series.to_be_bytes());
    k[4] = tier;
    k[5..].copy_from_slice(&position.to_be_bytes());
    k
}

/// The key prefix of every block of one series and tier.
pub fn tier_prefix(series: SeriesId, tier: u8) -> [u8; 5] {
    let mut k = [0u8; 5];
    k[..4].copy_from_slice(&series.to_be_bytes());
    k[4] = tier;
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_form_round_trips_with_escapes() {
        let k = SeriesKey::new("response_time_ms")
            .with("service", "model-api")
            .with("a", r#"x"y\z,="#);
        let s = k.to_string();
        assert_eq!(s, r#"response_time_ms{a="x\"y\\z,=",service="model-api"}"#);
        assert_eq!(SeriesKey::parse(&s), Some(k.clone()));
        assert!(k.is_written_as(&s));
        assert!(!k.is_written_as(&s[..s.len() - 1]));
        assert!(!k.is_written_as(&format!("{s}x")));
        assert_eq!(
            SeriesKey::parse("cpu_usage{}"),
            Some(SeriesKey::new("cpu_usage"))
        );
    }

    proptest::proptest! {
        #[test]
        fn a_key_is_written_as_its_text_and_no_other(
            labels in proptest::collection::btree_map("[a-c]{1,2}", "[a-c\\\\\",=]{0,3}", 0..3),
            other in proptest::collection::btree_map("[a-c]{1,2}", "[a-c\\\\\",=]{0,3}", 0..3),
        ) {
            let key = |l: &BTreeMap<String, String>| SeriesKey { metric: "m".into(), labels: l.clone() };
            let (a, b) = (key(&labels), key(&other));
            proptest::prop_assert!(a.is_written_as(&a.to_string()));
            proptest::prop_assert_eq!(a.is_written_as(&b.to_string()), a == b);
        }
    }

    #[test]
    fn names_are_validated() {
        assert!(SeriesKey::new("ok_name:total").validate().is_ok());
        for bad in ["", "9lives", "has space", "dash-ed"] {
            assert!(SeriesKey::new(bad).validate().is_err(), "{bad:?}");
        }
        assert!(
            SeriesKey::new("m")
                .with("bad-label", "v")
                .validate()
                .is_err()
        );
    }
}
