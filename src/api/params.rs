//! Query-string and body parsing shared by every endpoint, with error
//! messages that name the parameter or field.

use super::reject::ApiError;
use serde::de::DeserializeOwned;
use warp::{Filter, Rejection};

/// Largest accepted request body.
pub const MAX_BODY_BYTES: u64 = 1024 * 1024;

/// `warp::query` drops serde's message; this keeps it ("unknown field `x`, expected one of ...").
pub fn query<T: DeserializeOwned + Send + 'static>()
-> impl Filter<Extract = (T,), Error = Rejection> + Clone {
    warp::query::raw()
        .or(warp::any().map(String::new))
        .unify()
        .and_then(|q: String| async move {
            serde_urlencoded::from_str::<T>(&q)
                .map_err(|e| ApiError::bad_request(format!("invalid query parameters: {e}")))
        })
}

/// A JSON body of at most `MAX_BODY_BYTES`, parsed into `T`.
pub fn json_body<T: DeserializeOwned + Send + 'static>()
-> impl Filter<Extract = (T,), Error = Rejection> + Clone {
    warp::body::content_length_limit(MAX_BODY_BYTES)
        .and(warp::header::optional::<String>("content-type"))
        .and_then(|ct: Option<String>| async move {
            // The media type itself, not a prefix: `application/jsonx` is not JSON.
            let media = ct
                .as_deref()
                .map(|c| c.split(';').next().unwrap_or("").trim());
            match media {
                Some(m) if m.eq_ignore_ascii_case("application/json") => Ok(()),
                _ => Err(warp::reject::custom(ApiError::new(
                    warp::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "request body must be JSON (Content-Type: application/json)",
                ))),
            }
        })
        .untuple_one()
        .and(warp::body::bytes())
        .and_then(|body: bytes::Bytes| async move {
            // serde_path_to_error names the field: "requests[0].status: invalid type ...".
            let de = &mut serde_json::Deserializer::from_slice(&body);
            serde_path_to_error::deserialize::<_, T>(de).map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner();
                if path == "." || path.is_empty() {
                    ApiError::bad_request(format!("invalid JSON body: {inner}"))
                } else {
                    ApiError::bad_request(format!("invalid JSON body: {path}: {inner}"))
                }
            })
        })
}

/// A time range accepted everywhere: 1h, 6h, 24h, 7d, 30d.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeRange {
    pub label: &'static str,
    pub ms: i64,
}

pub const TIME_RANGES: [(&str, i64); 5] = [
    ("1h", 3_600_000),
    ("6h", 6 * 3_600_000),
    ("24h", 24 * 3_600_000),
    ("7d", 7 * 86_400_000),
    ("30d", 30 * 86_400_000),
];

pub fn time_range(value: Option<&str>, default: &'static str) -> Result<TimeRange, Rejection> {
    let v = value.unwrap_or(default);
    TIME_RANGES
        .iter()
        .find(|(l, _)| *l == v)
        .map(|(label, ms)| TimeRange { label, ms: *ms })
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "time_range '{v}' is not one of 1h, 6h, 24h, 7d, 30d"
            ))
        })
}

/// A `limit` parameter: a whole number from 1 to `max`.
pub fn limit(v: Option<&str>, default: usize, max: usize) -> Result<usize, Rejection> {
    match v {
        None => Ok(default),
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::bad_request(format!(
                "limit '{s}' must be a whole number from 1 to {max}"
            ))),
        },
    }
}

pub const GRANULARITIES: [(&str, i64); 3] = [("1m", 60_000), ("5m", 300_000), ("1h", 3_600_000)];

pub fn granularity(value: Option<&str>) -> Result<(&'static str, i64), Rejection> {
    let v = value.unwrap_or("5m");
    GRANULARITIES
        .iter()
        .find(|(l, _)| *l == v)
        .copied()
        .ok_or_else(|| ApiError::bad_request(format!("granularity '{v}' is not one of 1m, 5m, 1h")))
}

/// An optional alert severity filter: critical, warning or info.
pub fn severity(
    value: Option<&str>,
) -> Result<Option<crate::config::alerting::Severity>, Rejection> {
    value
        .map(|s| {
            crate::config::alerting::Severity::parse(s).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "severity '{s}' is not one of critical, warning, info"
                ))
            })
        })
        .transpose()
}
