//! The web console: HTML pages for the people who run an account, served by the API's server
//! under `/console`. Pages are rendered on the server (maud templates escape every value;
//! charts are SVG drawn by plotters) and work without JavaScript. Like `api`, it only parses
//! forms, calls the service and renders: who may see and change what is the service's
//! decision. Imports `service`, `domain`, `error` and, as `api` does, the store's filter and
//! row types that the service's signatures name.

mod charts;
mod csrf;
mod pages;
mod session;

use crate::error::Error;
use crate::service::App;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup, DOCTYPE};
pub use session::Ctx;
use std::sync::Arc;

/// The failed-authentication backoff the API applies, shared so that the console's login form
/// is not a second, unlimited way to guess credentials.
pub type FailedAuth = Option<Arc<dyn LoginLimiter>>;

/// What the console needs of the API's failed-authentication limits.
pub trait LoginLimiter: Send + Sync {
    /// Whether `address` (and then `username`) must wait before trying again.
    fn blocked(&self, address: Option<std::net::IpAddr>, username: &str) -> bool;
    fn failed(&self, address: Option<std::net::IpAddr>, username: &str);
    fn succeeded(&self, username: &str);
}

#[derive(Clone)]
pub struct ConsoleState {
    pub app: App,
    failed_auth: FailedAuth,
    /// Cookies get `Secure` when the console is served over https.
    secure_cookies: bool,
}

/// The console's routes, to be nested under `/console`.
pub fn router(app: App, failed_auth: FailedAuth, secure_cookies: bool) -> Router {
    let state = ConsoleState {
        app,
        failed_auth,
        secure_cookies,
    };
    use pages::*;
    Router::new()
        .route("/", get(overview::home))
        .route("/static/console.css", get(stylesheet))
        .route("/login", get(login::form).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/{account}", get(overview::overview))
        .route(
            "/{account}/subaccounts",
            get(accounts::list).post(accounts::create),
        )
        .route("/{account}/settings", get(accounts::settings))
        .route("/{account}/settings/rename", post(accounts::rename))
        .route(
            "/{account}/settings/status",
            get(accounts::confirm_status).post(accounts::change_status),
        )
        .route("/{account}/settings/reveal", post(accounts::reveal_token))
        .route(
            "/{account}/settings/reveal-test",
            post(accounts::reveal_test_token),
        )
        .route("/{account}/settings/sandbox", post(accounts::set_sandbox))
        .route("/{account}/keys", get(keys::list).post(keys::create))
        .route("/{account}/keys/{key}/rename", post(keys::rename))
        .route("/{account}/keys/{key}/delete", post(keys::delete))
        .route("/{account}/numbers", get(numbers::list))
        .route("/{account}/numbers/buy", post(numbers::buy))
        .route(
            "/{account}/numbers/{number}",
            get(numbers::detail).post(numbers::configure),
        )
        .route("/{account}/numbers/{number}/move", post(numbers::transfer))
        .route(
            "/{account}/numbers/{number}/release",
            post(numbers::release),
        )
        .route(
            "/{account}/services",
            get(services::list).post(services::create),
        )
        .route(
            "/{account}/services/{service}",
            get(services::detail).post(services::update),
        )
        .route(
            "/{account}/services/{service}/senders",
            post(services::add_sender),
        )
        .route(
            "/{account}/services/{service}/senders/{number}/remove",
            post(services::remove_sender),
        )
        .route(
            "/{account}/services/{service}/alpha-senders",
            post(services::add_alpha_sender),
        )
        .route(
            "/{account}/services/{service}/alpha-senders/{sender}/remove",
            post(services::remove_alpha_sender),
        )
        .route("/{account}/messages", get(messages::list))
        .route("/{account}/messages/{message}", get(messages::detail))
        .route(
            "/{account}/messages/{message}/redact",
            post(messages::redact),
        )
        .route(
            "/{account}/messages/{message}/cancel",
            post(messages::cancel),
        )
        .route("/{account}/opt-outs", get(monitor::opt_outs))
        .route("/{account}/alerts", get(monitor::alerts))
        .route("/{account}/alerts/{alert}", get(monitor::alert))
        .route("/{account}/usage", get(monitor::usage))
        .route("/{account}/usage/triggers", post(monitor::create_trigger))
        .route(
            "/{account}/usage/triggers/{trigger}/delete",
            post(monitor::delete_trigger),
        )
        .fallback(not_found)
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(state)
}

const CSS: &str = include_str!("console.css");

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        CSS,
    )
        .into_response()
}

/// Headers every console answer carries: no framing (clickjacking), no inline scripts or
/// styles, nothing cached that a later user of the browser could see.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let mut set = |name: header::HeaderName, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    set(header::X_FRAME_OPTIONS, "DENY");
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::REFERRER_POLICY, "same-origin");
    if !response.headers().contains_key(header::CACHE_CONTROL) {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

async fn not_found(ctx: Option<Ctx>) -> Response {
    page_error(
        ctx.as_ref(),
        StatusCode::NOT_FOUND,
        "This page does not exist.",
    )
}

/// A page, or why there is none.
pub type PageResult = Result<Response, Response>;

/// The answer to a service error: an account or resource the caller may not see is "not
/// found", like one that does not exist (nothing tells a sibling's SID is real); a refused
/// change shows the service's message.
pub fn service_error(ctx: &Ctx, err: Error) -> Response {
    match err {
        Error::Unauthenticated | Error::NotFound { .. } => page_error(
            Some(ctx),
            StatusCode::NOT_FOUND,
            "Not found. This page does not exist, or your login may not see it.",
        ),
        Error::Forbidden { .. } => page_error(
            Some(ctx),
            StatusCode::FORBIDDEN,
            "Your credentials may not do this.",
        ),
        Error::Internal { .. } | Error::Unavailable { .. } => {
            tracing::error!(%err, "console page failed");
            page_error(
                Some(ctx),
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong on the server; try again.",
            )
        }
        other => page_error(Some(ctx), StatusCode::BAD_REQUEST, &other.to_string()),
    }
}

pub fn page_error(ctx: Option<&Ctx>, status: StatusCode, message: &str) -> Response {
    let body = html! {
        h1 { "Sorry" }
        p.error { (message) }
        p { a href="/console" { "Back to the console" } }
    };
    (status, layout("Error", ctx, None, body)).into_response()
}

/// After a change, back to a page (303: the browser GETs it).
pub fn see_other(location: &str) -> Response {
    Redirect::to(location).into_response()
}

/// The frame of every page: the navigation for `account` (the account whose pages are shown)
/// when someone is logged in.
pub fn layout(title: &str, ctx: Option<&Ctx>, account: Option<&str>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · warbler console" }
                link rel="stylesheet" href="/console/static/console.css";
            }
            body {
                header.top {
                    a.brand href="/console" { "warbler" span { "console" } }
                    @if let Some(ctx) = ctx {
                        span.who {
                            (ctx.session.principal.account.friendly_name)
                            " · " code { (ctx.session.principal.account.sid) }
                            @if ctx.session.principal.via_api_key() { " (API key)" }
                        }
                        form.logout method="post" action="/console/logout" {
                            (csrf::field(ctx))
                            button type="submit" { "Log out" }
                        }
                    }
                }
                div.frame {
                    @if let (Some(ctx), Some(account)) = (ctx, account) {
                        (nav(ctx, account))
                    }
                    main { (body) }
                }
            }
        }
    }
}

fn nav(ctx: &Ctx, account: &str) -> Markup {
    let link = |path: &str, label: &str| {
        html! { li { a href={ "/console/" (account) (path) } { (label) } } }
    };
    let principal = &ctx.session.principal;
    html! {
        nav.side {
            @if account != principal.account.sid {
                p.viewing { "Viewing subaccount" br; code { (account) } br;
                    a href={ "/console/" (principal.account.sid) } { "← main account" } }
            }
            ul {
                (link("", "Overview"))
                @if principal.account.is_main() && account == principal.account.sid && !principal.via_api_key() {
                    (link("/subaccounts", "Subaccounts"))
                }
                (link("/messages", "Messages"))
                (link("/numbers", "Phone numbers"))
                (link("/services", "Messaging Services"))
                (link("/opt-outs", "Opt-outs"))
                (link("/alerts", "Alerts"))
                (link("/usage", "Usage"))
                @if !principal.via_api_key() {
                    (link("/keys", "API keys"))
                    (link("/settings", "Account settings"))
                }
            }
        }
    }
}

/// `2026-12-02 09:42:45` (UTC) from microseconds since the epoch.
pub fn when(micros: i64) -> String {
    let Ok(at) = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000) else {
        return micros.to_string();
    };
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    at.format(&format).unwrap_or_else(|_| micros.to_string())
}

/// A status as a coloured label.
pub fn status_badge(status: &str) -> Markup {
    let class = match status {
        "delivered" | "received" | "active" | "read" => "ok",
        "failed" | "undelivered" | "closed" => "bad",
        "suspended" | "canceled" => "warn",
        _ => "neutral",
    };
    html! { span class={ "badge " (class) } { (status) } }
}
