//! Logging in (account SID + auth token, or API key SID + secret) and out.

use super::super::csrf::{read_body, Fields, Post};
use super::super::session::{cookie, set_cookie, Ctx, SESSION_COOKIE};
use super::super::{layout, page_error, ConsoleState};
use crate::domain::credential::secrets_match;
use crate::domain::sid::random_hex32;
use crate::error::Error;
use crate::service::console::SESSION_LIFETIME;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use std::net::SocketAddr;

/// The login form's own CSRF token (there is no session yet): a cookie and the same value in
/// the form, compared on submit.
const LOGIN_COOKIE: &str = "warbler_login";

fn form_page(secure: bool, message: Option<&str>, status: StatusCode) -> Response {
    let token = format!("{}{}", random_hex32(), random_hex32());
    let body = html! {
        div.login {
            h1 { "Log in to the console" }
            p.muted { "With your account SID and auth token, or with an API key SID and its secret." }
            @if let Some(message) = message { p.error { (message) } }
            form method="post" action="/console/login" {
                input type="hidden" name="csrf" value=(token);
                label { "Account SID or API key SID" input type="text" name="username" required autocomplete="username" placeholder="AC… or SK…"; }
                label { "Auth token or API key secret" input type="password" name="password" required autocomplete="current-password"; }
                label { "Account SID " span.muted { "(optional with an API key: the key's account)" }
                    input type="text" name="account_sid" placeholder="AC…"; }
                button type="submit" { "Log in" }
            }
        }
    };
    let mut response = (status, layout("Log in", None, None, body)).into_response();
    if let Ok(value) = set_cookie(LOGIN_COOKIE, &token, 3600, secure).parse() {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

pub async fn form(State(state): State<ConsoleState>, ctx: Option<Ctx>) -> Response {
    match ctx {
        Some(ctx) => {
            Redirect::to(&format!("/console/{}", ctx.session.principal.account.sid)).into_response()
        }
        None => form_page(state.secure_cookies, None, StatusCode::OK),
    }
}

pub async fn submit(State(state): State<ConsoleState>, request: Request) -> Response {
    let address = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip().to_canonical());
    let login_token = cookie(request.headers(), LOGIN_COOKIE).map(str::to_string);
    let body = match read_body(request).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let fields = Fields::parse(&body);
    let presented = fields.raw("csrf").unwrap_or_default();
    if !login_token.is_some_and(|token| secrets_match(&token, presented)) {
        return form_page(
            state.secure_cookies,
            Some("The form expired; please log in again."),
            StatusCode::FORBIDDEN,
        );
    }
    let username = fields.get("username").unwrap_or_default();
    let password = fields.get("password").unwrap_or_default();
    let wrong = || {
        form_page(
            state.secure_cookies,
            Some("Those credentials were not accepted."),
            StatusCode::UNAUTHORIZED,
        )
    };
    if let Some(limits) = &state.failed_auth {
        if limits.blocked(address, username) {
            limits.failed(address, username);
            return form_page(
                state.secure_cookies,
                Some("Too many failed attempts: wait a moment before trying again."),
                StatusCode::TOO_MANY_REQUESTS,
            );
        }
    }
    match state
        .app
        .console_login(username, password, fields.get("account_sid"))
        .await
    {
        Ok(opened) => {
            if let Some(limits) = &state.failed_auth {
                limits.succeeded(username);
            }
            let mut response = Redirect::to(&format!(
                "/console/{}",
                opened.session.principal.account.sid
            ))
            .into_response();
            let cookies = [
                set_cookie(
                    SESSION_COOKIE,
                    &opened.token,
                    SESSION_LIFETIME / 1_000_000,
                    state.secure_cookies,
                ),
                set_cookie(LOGIN_COOKIE, "", 0, state.secure_cookies),
            ];
            for value in cookies {
                if let Ok(value) = value.parse() {
                    response.headers_mut().append(header::SET_COOKIE, value);
                }
            }
            response
        }
        Err(Error::Unauthenticated) => {
            if let Some(limits) = &state.failed_auth {
                limits.failed(address, username);
            }
            wrong()
        }
        Err(Error::TooManyRequests) => form_page(
            state.secure_cookies,
            Some("Too many attempts: wait a moment before trying again."),
            StatusCode::TOO_MANY_REQUESTS,
        ),
        Err(err) => {
            tracing::error!(%err, "console login failed");
            page_error(
                None,
                StatusCode::INTERNAL_SERVER_ERROR,
                "The console cannot log you in right now; try again.",
            )
        }
    }
}

pub async fn logout(State(state): State<ConsoleState>, post: Post) -> Response {
    if let Err(err) = state.app.console_logout(&post.ctx.token).await {
        tracing::warn!(%err, "ending a console session failed");
    }
    let mut response = Redirect::to("/console/login").into_response();
    if let Ok(value) = set_cookie(SESSION_COOKIE, "", 0, state.secure_cookies).parse() {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}
