//! What a reload changes: the parts the daemon applies while it runs
//! (services, rules, channels, routes, escalation, CORS origins) and the
//! settings that cannot change while it runs (everything else: the data
//! directory, the port, intervals, retention, TLS file names, ...).

use super::Config;
use std::collections::BTreeMap;

/// Settings applied while running; `fixed_changes` ignores them.
const LIVE_KEYS: [&str; 8] = [
    "services",
    "rules",
    "channels",
    "routes",
    "escalation",
    "cors_allowed_origins",
    // These two define services (the optional dependencies).
    "database_url",
    "redis_url",
];

/// The settings that differ between `old` and `new` and cannot change
/// while running, by their variable names (`SERVICE_PORT`), or
/// `[[remote_write]]` for that table.
pub fn fixed_changes(old: &Config, new: &Config) -> Vec<String> {
    let table = |c: &Config| -> toml::Table { toml::from_str(&c.to_toml()).unwrap_or_default() };
    let (a, b) = (table(old), table(new));
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut out: Vec<String> = keys
        .into_iter()
        .filter(|k| !LIVE_KEYS.contains(&k.as_str()))
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            if k == "remote_write" {
                "[[remote_write]]".to_string()
            } else {
                k.to_uppercase()
            }
        })
        .collect();
    // Secrets are masked in the printed form: compare the specs too.
    if old.remote_write != new.remote_write && !out.iter().any(|k| k == "[[remote_write]]") {
        out.push("[[remote_write]]".into());
    }
    out
}

/// Names added, removed and changed between two lists keyed by name.
#[derive(Debug, Default, PartialEq)]
pub struct Named {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
}

impl Named {
    fn of<T: PartialEq>(old: &[T], new: &[T], name: impl Fn(&T) -> &str) -> Named {
        let a: BTreeMap<&str, &T> = old.iter().map(|t| (name(t), t)).collect();
        let b: BTreeMap<&str, &T> = new.iter().map(|t| (name(t), t)).collect();
        Named {
            added: b
                .keys()
                .filter(|k| !a.contains_key(*k))
                .map(|k| k.to_string())
                .collect(),
            removed: a
                .keys()
                .filter(|k| !b.contains_key(*k))
                .map(|k| k.to_string())
                .collect(),
            changed: a
                .iter()
                .filter(|(k, v)| b.get(*k).is_some_and(|w| w != *v))
                .map(|(k, _)| k.to_string())
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }

    fn describe(&self, what: &str) -> Option<String> {
        if self.is_empty() {
            return None;
        }
        let mut parts = Vec::new();
        for (sign, list) in [
            ("+", &self.added),
            ("-", &self.removed),
            ("~", &self.changed),
        ] {
            parts.extend(list.iter().map(|n| format!("{sign}{n}")));
        }
        Some(format!("{what} {}", parts.join(" ")))
    }
}

/// What a reload applies.
#[derive(Debug, Default, PartialEq)]
pub struct Changes {
    pub services: Named,
    pub rules: Named,
    pub channels: Named,
    pub routes: bool,
    pub escalation: bool,
    pub cors: bool,
}

impl Changes {
    pub fn between(old: &Config, new: &Config) -> Changes {
        Changes {
            services: Named::of(&old.services, &new.services, |s| &s.name),
            rules: Named::of(&old.rules, &new.rules, |r| &r.name),
            channels: Named::of(&old.channels, &new.channels, |c| &c.name),
            routes: old.routes != new.routes,
            escalation: old.escalation != new.escalation,
            cors: old.cors_allowed_origins != new.cors_allowed_origins,
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == Changes::default()
    }

    /// One line: `services +a ~b; rules -old; routes changed` or `no change`.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = [
            self.services.describe("services"),
            self.rules.describe("rules"),
            self.channels.describe("channels"),
        ]
        .into_iter()
        .flatten()
        .collect();
        for (changed, what) in [
            (self.routes, "routes changed"),
            (self.escalation, "escalation changed"),
            (self.cors, "CORS origins changed"),
        ] {
            if changed {
                parts.push(what.into());
            }
        }
        if parts.is_empty() {
            "no change".into()
        } else {
            parts.join("; ")
        }
    }
}
