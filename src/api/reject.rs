//! Errors to HTTP: every failure becomes `{"error": "..."}` with the right
//! status, in this one place. No input reaches a 500.

use crate::error::Error;
use serde::Serialize;
use std::convert::Infallible;
use warp::http::StatusCode;
use warp::reject::Rejection;
use warp::reply::{Reply, Response};

/// A rejection carrying our own status and message.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// Headers the answer carries (`WWW-Authenticate`, `Retry-After`).
    pub headers: Vec<(&'static str, String)>,
}

impl warp::reject::Reject for ApiError {}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &'static str, value: &str) -> ApiError {
        self.headers.push((name, value.to_string()));
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Rejection {
        warp::reject::custom(ApiError::new(StatusCode::BAD_REQUEST, message))
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        let status = match &e {
            Error::BadRequest(_) | Error::Config(_) => StatusCode::BAD_REQUEST,
            Error::Capacity(_) => StatusCode::TOO_MANY_REQUESTS,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::DataDirInUse(_)
            | Error::Store { .. }
            | Error::Io(_)
            | Error::Internal(_)
            | Error::Backup(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

/// Turns a crate error into a rejection for handlers' `?`.
pub fn fail(e: Error) -> Rejection {
    warp::reject::custom(ApiError::from(e))
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
}

pub fn error_response(status: StatusCode, message: &str) -> Response {
    warp::reply::with_status(warp::reply::json(&ErrorBody { error: message }), status)
        .into_response()
}

pub async fn handle(err: Rejection) -> Result<Response, Infallible> {
    use warp::reject::*;
    if let Some(e) = err.find::<ApiError>()
        && !e.headers.is_empty()
    {
        let mut r = error_response(e.status, &e.message);
        for (name, value) in &e.headers {
            if let Ok(v) = warp::http::HeaderValue::from_str(value) {
                r.headers_mut().insert(*name, v);
            }
        }
        return Ok(r);
    }
    let (status, message): (StatusCode, String) = if err.is_not_found() {
        (
            StatusCode::NOT_FOUND,
            "no such endpoint; see the API table in the README".into(),
        )
    } else if let Some(e) = err.find::<ApiError>() {
        (e.status, e.message.clone())
    } else if let Some(e) = err.find::<warp::filters::body::BodyDeserializeError>() {
        (StatusCode::BAD_REQUEST, format!("invalid JSON body: {e}"))
    } else if err.find::<PayloadTooLarge>().is_some() {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body is larger than 1 MiB".into(),
        )
    } else if err.find::<LengthRequired>().is_some() {
        (
            StatusCode::LENGTH_REQUIRED,
            "a Content-Length header is required".into(),
        )
    } else if err.find::<UnsupportedMediaType>().is_some() {
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "request body must be JSON (Content-Type: application/json)".into(),
        )
    } else if err.find::<MethodNotAllowed>().is_some() {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed on this endpoint".into(),
        )
    } else if let Some(e) = err.find::<InvalidHeader>() {
        (StatusCode::BAD_REQUEST, e.to_string())
    } else if let Some(e) = err.find::<MissingHeader>() {
        (StatusCode::BAD_REQUEST, e.to_string())
    } else if err.find::<InvalidQuery>().is_some() {
        (StatusCode::BAD_REQUEST, "invalid query string".into())
    } else if let Some(e) = err.find::<warp::filters::cors::CorsForbidden>() {
        (StatusCode::FORBIDDEN, e.to_string())
    } else {
        tracing::error!(rejection = ?err, "unhandled rejection");
        (StatusCode::INTERNAL_SERVER_ERROR, "internal error".into())
    };
    Ok(error_response(status, &message))
}
