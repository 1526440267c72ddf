//! The gate every request passes first: what the route needs
//! (`auth::required`), who the credential says the caller is, 401 / 403 /
//! 429 otherwise; and the admin's token endpoints, `/auth/tokens`.
//!
//! A credential is `Authorization: Bearer <token>`; a browser's websocket
//! cannot set that header, so `/ws/metrics` also takes the token as a
//! subprotocol: `new WebSocket(url, ["bearer", token])`.

use super::AppState;
use super::dto::{CreatedToken, Session, TokenList, TokenView};
use super::reject::ApiError;
use crate::alerting::{Actor, AuditAction};
use crate::auth::tokens::{Denied, Principal};
use crate::auth::{Access, Role, required};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::net::SocketAddr;
use std::time::Instant;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};
use warp::{Filter, Rejection};

/// The subprotocol a websocket client names before its token.
pub const WS_BEARER: &str = "bearer";

/// The token a request carries: the bearer header, else (websocket) the
/// value after `bearer` in `Sec-WebSocket-Protocol`.
fn credential(authorization: Option<&str>, protocols: Option<&str>) -> Option<String> {
    if let Some(v) = authorization {
        let v = v.trim();
        let token = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
            .unwrap_or("");
        return Some(token.trim().to_string());
    }
    let mut parts = protocols?.split(',').map(str::trim);
    parts.find(|p| *p == WS_BEARER)?;
    parts.next().map(str::to_string)
}

fn unauthorized(d: &Denied) -> Rejection {
    warp::reject::custom(
        ApiError::new(StatusCode::UNAUTHORIZED, d.message())
            .with_header("www-authenticate", "Bearer realm=\"mlsec-monitor\""),
    )
}

/// Admits a request or rejects it: 429 while its address is blocked for
/// failed sign-ins, 401 without a valid token, 403 for a role too low.
pub fn gate(state: AppState) -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::method()
        .and(warp::path::full())
        .and(warp::header::optional::<String>("authorization"))
        .and(warp::header::optional::<String>("sec-websocket-protocol"))
        .and(warp::ext::optional::<super::server::Peer>())
        .and_then(
            move |method: warp::http::Method,
                  path: warp::path::FullPath,
                  authorization: Option<String>,
                  protocols: Option<String>,
                  peer: Option<super::server::Peer>| {
                let state = state.clone();
                let remote = peer.map(|p| p.0);
                async move {
                    admit(
                        &state,
                        method.as_str(),
                        path.as_str(),
                        authorization.as_deref(),
                        protocols.as_deref(),
                        remote,
                    )
                    .map(|_| ())
                }
            },
        )
        .untuple_one()
}

/// Who the request is (`None`: no credential needed and none given, or
/// access control off), or why it is refused.
pub fn admit(
    state: &AppState,
    method: &str,
    path: &str,
    authorization: Option<&str>,
    protocols: Option<&str>,
    remote: Option<SocketAddr>,
) -> Result<Option<Principal>, Rejection> {
    let policy = &state.config.access;
    if !policy.enabled {
        return Ok(None);
    }
    let need = required(method, path, policy);
    let token = credential(authorization, protocols);
    if need == Access::Public && token.is_none() {
        return Ok(None);
    }
    let now = Instant::now();
    let ip = remote.map(|a| a.ip());
    if let Some(ip) = ip
        && let Some(wait) = state.limiter.refuse(ip, now)
    {
        return Err(warp::reject::custom(
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("too many failed sign-ins from {ip}: retry in {wait} s"),
            )
            .with_header("retry-after", &wait.to_string()),
        ));
    }
    let checked = match token {
        None => Err(Denied::Missing),
        Some(t) => state.tokens.check(&t, Utc::now()),
    };
    let principal = match checked {
        Ok(p) => p,
        Err(d) => {
            if d != Denied::Missing
                && let Some(ip) = ip
                && state.limiter.failed(ip, now)
            {
                // One audit record per address blocked, not per failure,
                // so a flood cannot grow the audit trail.
                let st = state.alerts.state.clone();
                let why = format!(
                    "{ip} blocked for a minute after repeated failed sign-ins (last: {})",
                    d.message()
                );
                tokio::spawn(crate::blocking::run(
                    "auditing a blocked address",
                    move || {
                        st.record_access(
                            AuditAction::SignInBlocked,
                            &Actor::from("system"),
                            Some(why),
                            Utc::now(),
                        )
                    },
                ));
            }
            tracing::info!(method, path, remote = ?ip, reason = %d.message(), "sign-in refused");
            return Err(unauthorized(&d));
        }
    };
    if !principal.role.allows(need) {
        return Err(warp::reject::custom(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "token '{}' has role {}; {method} {path} needs {}",
                principal.name,
                principal.role.as_str(),
                need.least_role()
            ),
        )));
    }
    Ok(Some(principal))
}

/// The name of the token a request carries (`None`: access control off or
/// no token), for audit records. The gate has already admitted it.
pub fn who(state: AppState) -> impl Filter<Extract = (Option<String>,), Error = Rejection> + Clone {
    principal(state).map(|p: Option<Principal>| p.map(|p| p.name))
}

/// Who the request is (`None`: access control off or no token).
pub fn principal(
    state: AppState,
) -> impl Filter<Extract = (Option<Principal>,), Error = Rejection> + Clone {
    warp::header::optional::<String>("authorization").map(move |authorization: Option<String>| {
        if !state.config.access.enabled {
            return None;
        }
        let token = credential(authorization.as_deref(), None)?;
        state.tokens.check(&token, Utc::now()).ok()
    })
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    name: String,
    #[schemars(with = "crate::auth::Role")]
    role: String,
    expires_at: Option<DateTime<Utc>>,
}

/// `GET /auth/session`: who the caller is and what the dashboard may offer
/// them. Public, so a page without a token learns it must sign in; a token
/// sent is checked by the gate like any other (401 if bad).
pub async fn session(state: AppState, p: Option<Principal>) -> Result<Response, Rejection> {
    let policy = &state.config.access;
    let role = p.as_ref().map(|p| p.role);
    let can = |need: Access| !policy.enabled || role.is_some_and(|r| r.allows(need));
    let body = Session {
        auth: policy.enabled,
        name: p.as_ref().map(|p| p.name.clone()),
        role,
        // With PUBLIC_READ every read is public, whatever the token.
        can_read: can(Access::Read) || policy.public_read,
        can_operate: can(Access::Operate),
        can_admin: can(Access::Admin),
    };
    Ok(warp::reply::json(&body).into_response())
}

pub async fn list_tokens(state: AppState) -> Result<Response, Rejection> {
    let tokens = state.tokens.list().iter().map(TokenView::from).collect();
    Ok(warp::reply::json(&TokenList { tokens }).into_response())
}

pub async fn create_token(
    state: AppState,
    by: Option<String>,
    req: CreateToken,
) -> Result<Response, Rejection> {
    let role = Role::parse(&req.role).ok_or_else(|| {
        ApiError::bad_request(format!(
            "role '{}' is not one of viewer, operator, admin, ingest",
            req.role
        ))
    })?;
    let st = state.clone();
    let (record, token) = super::blocking(move || {
        let now = Utc::now();
        let made = st
            .tokens
            .create(&st.store, &req.name, role, req.expires_at, now)?;
        let by = by.as_deref().unwrap_or("admin");
        st.alerts.state.record_access(
            AuditAction::TokenCreated,
            &Actor::new(by, Some(by)),
            Some(format!("{} ({})", made.0.name, role.as_str())),
            now,
        )?;
        Ok(made)
    })
    .await?;
    tracing::info!(name = %record.name, role = role.as_str(), "token created");
    Ok(warp::reply::with_status(
        warp::reply::json(&CreatedToken {
            view: TokenView::from(&record),
            token,
        }),
        StatusCode::CREATED,
    )
    .into_response())
}

pub async fn revoke_token(
    name: String,
    state: AppState,
    by: Option<String>,
) -> Result<Response, Rejection> {
    let st = state.clone();
    let n = name.clone();
    let revoked = super::blocking(move || {
        let r = st.tokens.revoke(&st.store, &n)?;
        if let Some(r) = &r {
            let by = by.as_deref().unwrap_or("admin");
            st.alerts.state.record_access(
                AuditAction::TokenRevoked,
                &Actor::new(by, Some(by)),
                Some(format!("{} ({})", r.name, r.role.as_str())),
                Utc::now(),
            )?;
        }
        Ok(r)
    })
    .await?;
    match revoked {
        Some(r) => {
            tracing::info!(name = %r.name, "token revoked");
            Ok(warp::reply::json(&TokenView::from(&r)).into_response())
        }
        None => Ok(super::reject::error_response(
            StatusCode::NOT_FOUND,
            &format!("no token named '{name}'"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_come_from_the_header_or_the_websocket_protocol() {
        assert_eq!(credential(Some("Bearer abc"), None).as_deref(), Some("abc"));
        assert_eq!(credential(Some("Basic abc"), None).as_deref(), Some(""));
        assert_eq!(
            credential(None, Some("bearer, abc")).as_deref(),
            Some("abc")
        );
        assert_eq!(credential(None, Some("chat")), None);
        assert_eq!(credential(None, None), None);
    }
}
