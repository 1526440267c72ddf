//! Access control: API tokens with roles. Who may call what is decided in
//! one table (`required`), so the route × role matrix is read here and
//! tested as a whole.
//!
//! - `tokens.rs` the tokens: random, stored as hashes in sled, first-run admin
//! - `limiter.rs` repeated failed sign-ins from one address are slowed

pub mod limiter;
pub mod tokens;

use serde::{Deserialize, Serialize};

/// A token's role. `Viewer` < `Operator` < `Admin`; `Ingest` only pushes.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Every read and the live feed.
    Viewer,
    /// A viewer who also acknowledges, resolves and silences alerts.
    Operator,
    /// Everything, tokens included.
    Admin,
    /// Only the `/ingest/*` endpoints, for the platform's services.
    Ingest,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Operator, Role::Admin, Role::Ingest];

    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
            Role::Ingest => "ingest",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Whether this role may do what `need` asks.
    pub fn allows(&self, need: Access) -> bool {
        match need {
            Access::Public => true,
            Access::Read => matches!(self, Role::Viewer | Role::Operator | Role::Admin),
            Access::Operate => matches!(self, Role::Operator | Role::Admin),
            Access::Admin => *self == Role::Admin,
            Access::Ingest => matches!(self, Role::Ingest | Role::Admin),
        }
    }
}

/// What a request needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone: the root, `/health` (unless configured otherwise), the
    /// dashboard's static files (it signs in itself).
    Public,
    /// A viewer, operator or admin (or anyone with `PUBLIC_READ`).
    Read,
    /// An operator or admin: alert actions and silences.
    Operate,
    /// An admin: token management.
    Admin,
    /// An ingest token or an admin: `/ingest/*`.
    Ingest,
}

impl Access {
    /// The least role that has it, for a 403's message.
    pub fn least_role(&self) -> &'static str {
        match self {
            Access::Public | Access::Read => "viewer",
            Access::Operate => "operator",
            Access::Admin => "admin",
            Access::Ingest => "ingest (or admin)",
        }
    }
}

pub use crate::config::AccessPolicy as Policy;

/// What a request with `method` to `path` needs. Every route of the API is
/// here; a path that is not a route needs a reader (so an anonymous caller
/// learns nothing from 404s).
pub fn required(method: &str, path: &str, policy: &Policy) -> Access {
    let read = if policy.public_read {
        Access::Public
    } else {
        Access::Read
    };
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        ("OPTIONS", _) => Access::Public,
        ("GET", [""]) | ("GET", ["health"]) if policy.public_health => Access::Public,
        ("GET", ["ui"]) | ("GET", ["ui", _]) | ("GET", ["auth", "session"]) => Access::Public,
        ("GET", ["openapi.json"]) => Access::Public,
        (_, ["ingest", ..]) => Access::Ingest,
        ("POST", ["api", "v2", "alerts"]) => Access::Ingest,
        ("POST", ["alerts", "acknowledge" | "resolve"]) => Access::Operate,
        ("POST", ["silences"]) | ("DELETE", ["silences", _]) => Access::Operate,
        (_, ["auth", "tokens", ..]) => Access::Admin,
        (_, ["admin", ..]) | (_, ["-", "reload"]) => Access::Admin,
        ("GET", ["audit", "export"]) => Access::Admin,
        ("GET", _) => read,
        // Any other write: the strictest.
        _ => Access::Admin,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_gives_each_route_its_least_role() {
        let p = Policy {
            enabled: true,
            public_read: false,
            public_health: true,
        };
        for (method, path, want) in [
            ("GET", "/", Access::Public),
            ("GET", "/health", Access::Public),
            ("GET", "/health/services", Access::Read),
            ("GET", "/ui", Access::Public),
            ("GET", "/ui/app.js", Access::Public),
            ("GET", "/alerts", Access::Read),
            ("GET", "/ws/metrics", Access::Read),
            ("POST", "/ingest/metrics", Access::Ingest),
            ("POST", "/api/v2/alerts", Access::Ingest),
            ("POST", "/alerts/acknowledge", Access::Operate),
            ("POST", "/silences", Access::Operate),
            ("DELETE", "/silences/x", Access::Operate),
            ("GET", "/auth/tokens", Access::Admin),
            ("GET", "/auth/session", Access::Public),
            ("GET", "/audit", Access::Read),
            ("GET", "/audit/export", Access::Admin),
            ("POST", "/auth/tokens", Access::Admin),
            ("PUT", "/alerts", Access::Admin),
            ("OPTIONS", "/silences", Access::Public),
        ] {
            assert_eq!(required(method, path, &p), want, "{method} {path}");
        }
        let open = Policy {
            public_read: true,
            public_health: false,
            ..p
        };
        assert_eq!(required("GET", "/alerts", &open), Access::Public);
        assert_eq!(required("POST", "/silences", &open), Access::Operate);
        assert_eq!(required("GET", "/health", &open), Access::Public);
        let closed = Policy {
            public_health: false,
            ..p
        };
        assert_eq!(required("GET", "/health", &closed), Access::Read);
        assert!(Role::Admin.allows(Access::Ingest));
        assert!(!Role::Ingest.allows(Access::Read));
        assert!(!Role::Viewer.allows(Access::Operate));
    }
}
