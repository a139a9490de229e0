//! The session cookie and the `Ctx` extractor: who is logged in, found from the cookie's
//! token by the service (sessions are database rows, so every node of a cluster knows them).

use super::ConsoleState;
use crate::service::console::ConsoleSession;
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Redirect, Response};

pub const SESSION_COOKIE: &str = "warbler_session";

/// A logged-in request: the session and the token that named it.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub session: ConsoleSession,
    pub token: String,
}

/// The value of the cookie `name`, if the request carries it.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// A `Set-Cookie` value: HttpOnly (no script reads it), SameSite=Strict (no other site's page
/// sends it), Secure when served over https.
pub fn set_cookie(name: &str, value: &str, max_age_seconds: i64, secure: bool) -> String {
    format!(
        "{name}={value}; Path=/console; Max-Age={max_age_seconds}; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

/// Tokens are 64 hex digits: anything else is not looked up.
fn plausible(token: &str) -> bool {
    token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

async fn find(parts: &Parts, state: &ConsoleState) -> Result<Option<Ctx>, Response> {
    let Some(token) = cookie(&parts.headers, SESSION_COOKIE).filter(|t| plausible(t)) else {
        return Ok(None);
    };
    match state.app.console_session(token).await {
        Ok(Some(session)) => Ok(Some(Ctx {
            session,
            token: token.to_string(),
        })),
        Ok(None) => Ok(None),
        Err(err) => {
            tracing::error!(%err, "reading a console session failed");
            Err(super::page_error(
                None,
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "The console cannot read its sessions right now; try again.",
            ))
        }
    }
}

impl FromRequestParts<ConsoleState> for Ctx {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &ConsoleState) -> Result<Self, Response> {
        match find(parts, state).await? {
            Some(ctx) => Ok(ctx),
            None => Err(Redirect::to("/console/login").into_response()),
        }
    }
}

impl OptionalFromRequestParts<ConsoleState> for Ctx {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ConsoleState,
    ) -> Result<Option<Self>, Response> {
        find(parts, state).await
    }
}
