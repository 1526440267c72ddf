//! Which methods each path answers, for the `Allow` header of a 405. warp
//! knows only that some route refused the method, so the paths are listed
//! here, beside `mod.rs`'s routes; a test checks each against the server.

/// Method and path pattern of every route (`*` matches one segment).
const ENDPOINTS: &[(&str, &str)] = &[
    ("GET", "/"),
    ("GET", "/openapi.json"),
    ("GET", "/health"),
    ("GET", "/health/services"),
    ("GET", "/health/dependencies"),
    ("GET", "/system-metrics"),
    ("GET", "/service-health"),
    ("GET", "/dashboard-data"),
    ("GET", "/metrics"),
    ("GET", "/metrics/summary"),
    ("GET", "/metrics/detailed"),
    ("GET", "/model-loading-status"),
    ("GET", "/training-status"),
    ("POST", "/ingest/metrics"),
    ("POST", "/ingest/requests"),
    ("POST", "/ingest/models"),
    ("POST", "/ingest/training"),
    ("POST", "/api/v2/alerts"),
    ("GET", "/alerts"),
    ("GET", "/alerts/*"),
    ("POST", "/alerts/acknowledge"),
    ("POST", "/alerts/resolve"),
    ("GET", "/audit"),
    ("GET", "/anomalies"),
    ("GET", "/forecast"),
    ("GET", "/capacity"),
    ("GET", "/audit/export"),
    ("GET", "/silences"),
    ("POST", "/silences"),
    ("DELETE", "/silences/*"),
    ("GET", "/charts/*"),
    ("GET", "/ws/metrics"),
    ("GET", "/auth/tokens"),
    ("POST", "/auth/tokens"),
    ("DELETE", "/auth/tokens/*"),
    ("GET", "/auth/session"),
    ("POST", "/admin/backup"),
    ("POST", "/-/reload"),
    ("GET", "/ui"),
    ("GET", "/ui/*"),
];

/// Every route as (method, path pattern).
pub fn endpoints() -> &'static [(&'static str, &'static str)] {
    ENDPOINTS
}

/// Segment by segment, without allocating: it runs on every request
/// (`route_of`, for the request counters).
fn matches(pattern: &str, path: &str) -> bool {
    let mut p = pattern.trim_matches('/').split('/');
    let mut s = path.trim_matches('/').split('/');
    loop {
        match (p.next(), s.next()) {
            (None, None) => return true,
            (Some(a), Some(b)) if a == "*" || a == b => {}
            _ => return false,
        }
    }
}

/// The route pattern `path` belongs to (`/alerts/*`), or `other`: a label
/// of bounded cardinality for the request counters.
pub fn route_of(path: &str) -> &'static str {
    ENDPOINTS
        .iter()
        .find(|(_, p)| matches(p, path) && !p.ends_with('*'))
        .or_else(|| ENDPOINTS.iter().find(|(_, p)| matches(p, path)))
        .map_or("other", |(_, p)| *p)
}

/// The `Allow` header's value for `path`: its methods, `HEAD` beside `GET`
/// (answered as a `GET` without the body), and `OPTIONS` (CORS preflight);
/// `None` when no route has the path.
pub fn allow(path: &str) -> Option<String> {
    let mut methods: Vec<&str> = ENDPOINTS
        .iter()
        .filter(|(_, p)| matches(p, path))
        .map(|(m, _)| *m)
        .collect();
    if methods.is_empty() {
        return None;
    }
    if methods.contains(&"GET") {
        methods.push("HEAD");
    }
    methods.push("OPTIONS");
    methods.dedup();
    Some(methods.join(", "))
}

#[cfg(test)]
mod tests {
    #[test]
    fn methods_per_path() {
        assert_eq!(
            super::allow("/silences").as_deref(),
            Some("GET, POST, HEAD, OPTIONS")
        );
        assert_eq!(
            super::allow("/silences/abc").as_deref(),
            Some("DELETE, OPTIONS")
        );
        assert_eq!(
            super::allow("/alerts/acknowledge").as_deref(),
            Some("GET, POST, HEAD, OPTIONS")
        );
        assert_eq!(
            super::allow("/ingest/metrics").as_deref(),
            Some("POST, OPTIONS")
        );
        assert_eq!(super::allow("/nothing"), None);
    }
}
