//! Subaccounts (create, list) and an account's settings: rename, suspend / reactivate /
//! close (after a confirmation page), revealing the account's own auth token, its test
//! credentials (the test auth token revealed like the auth token), and whether a subaccount is
//! a sandbox (only its parent may change it).

use super::super::csrf::{self, Post};
use super::super::session::Ctx;
use super::super::{
    layout, page_error, see_other, service_error, status_badge, when, ConsoleState, PageResult,
};
use crate::domain::account::AccountStatus;
use crate::service::accounts::AccountUpdate;
use crate::service::Credential;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use maud::html;
use serde::Deserialize;

pub async fn list(
    State(state): State<ConsoleState>,
    ctx: Ctx,
    Path(account): Path<String>,
) -> PageResult {
    let principal = &ctx.session.principal;
    if account != principal.account.sid {
        return Err(page_error(Some(&ctx), StatusCode::NOT_FOUND, "Not found."));
    }
    let accounts = state
        .app
        .console_accounts(principal)
        .await
        .map_err(|err| service_error(&ctx, err))?;
    let subaccounts: Vec<_> = accounts.iter().filter(|a| !a.is_main()).collect();
    let body = html! {
        h1 { "Subaccounts" }
        form.card method="post" action={ "/console/" (account) "/subaccounts" } {
            (csrf::field(&ctx))
            h2 { "Create a subaccount" }
            label { "Friendly name" input type="text" name="friendly_name" maxlength="64" placeholder="e.g. Customer name"; }
            button type="submit" { "Create subaccount" }
        }
        table.grid {
            thead { tr { th { "Name" } th { "SID" } th { "Status" } th { "Created (UTC)" } th {} } }
            tbody {
                @if subaccounts.is_empty() { tr { td colspan="5" .muted { "No subaccounts yet." } } }
                @for a in &subaccounts {
                    tr {
                        td { a href={ "/console/" (a.sid) } { (a.friendly_name) } }
                        td { code { (a.sid) } }
                        td { (status_badge(a.status.as_str())) }
                        td.nowrap { (when(a.date_created)) }
                        td { a href={ "/console/" (a.sid) "/settings" } { "Settings" } }
                    }
                }
            }
        }
    };
    Ok(layout("Subaccounts", Some(&ctx), Some(&account), body).into_response())
}

pub async fn create(
    State(state): State<ConsoleState>,
    Path(account): Path<String>,
    post: Post,
) -> PageResult {
    let principal = &post.ctx.session.principal;
    if account != principal.account.sid {
        return Err(page_error(
            Some(&post.ctx),
            StatusCode::NOT_FOUND,
            "Not found.",
        ));
    }
    state
        .app
        .create_subaccount(principal, post.fields.get("friendly_name"))
        .await
        .map_err(|err| service_error(&post.ctx, err))?;
    Ok(see_other(&format!("/console/{account}/subaccounts")))
}

pub async fn settings(
    State(state): State<ConsoleState>,
    ctx: Ctx,
    Path(account): Path<String>,
) -> PageResult {
    let path = format!("/console/{account}/settings");
    let principal = &ctx.session.principal;
    let target = state
        .app
        .fetch_account(principal, &account, &path)
        .await
        .map_err(|err| service_error(&ctx, err))?;
    let own = target.sid == principal.account.sid;
    let may_reveal = own && principal.credential == Credential::AuthToken;
    // API keys may not read credentials (`ManageCredentials`): then the block is left out.
    let test = state
        .app
        .test_credentials(principal, &target.sid, &path)
        .await
        .ok();
    let parent_here = target.owner_account_sid.as_deref() == Some(principal.account.sid.as_str())
        && principal.credential == Credential::AuthToken;
    let body = html! {
        h1 { "Account settings" }
        dl.facts {
            dt { "Name" } dd { (target.friendly_name) }
            dt { "SID" } dd { code { (target.sid) } }
            dt { "Type" } dd { @if target.is_main() { "main account" } @else { "subaccount" } }
            dt { "Status" } dd { (status_badge(target.status.as_str())) }
            dt { "Created" } dd { (when(target.date_created)) " UTC" }
            dt { "Auth token" } dd {
                "••••••••••••••••"
                @if may_reveal {
                    form.inline method="post" action={ (path) "/reveal" } {
                        (csrf::field(&ctx))
                        button.secondary type="submit" { "Reveal" }
                    }
                }
            }
        }
        @if let Some(test) = &test {
            div.card {
                h2 { "Test credentials" }
                p.muted { "Requests with these answer with Twilio's magic numbers and never send, charge or store anything." }
                dl.facts {
                    dt { "Test account SID" } dd { code { (test.test_account_sid) } }
                    dt { "Test auth token" } dd {
                        "••••••••••••••••"
                        @if may_reveal {
                            form.inline method="post" action={ (path) "/reveal-test" } {
                                (csrf::field(&ctx))
                                button.secondary type="submit" { "Reveal" }
                            }
                        }
                    }
                }
            }
        }
        @if !target.is_main() {
            div.card {
                h2 { "Sandbox" }
                p {
                    @if target.sandbox {
                        "This subaccount is a sandbox: its messages go to the simulated carrier, free, whatever the routes."
                    } @else {
                        "This subaccount sends for real."
                    }
                }
                @if parent_here {
                    form.inline method="post" action={ (path) "/sandbox" } {
                        (csrf::field(&ctx))
                        input type="hidden" name="sandbox" value=(if target.sandbox { "false" } else { "true" });
                        button.secondary type="submit" {
                            @if target.sandbox { "Make it live" } @else { "Make it a sandbox" }
                        }
                    }
                } @else {
                    p.muted { "Only the parent account can change this." }
                }
            }
        }
        form.card method="post" action={ (path) "/rename" } {
            (csrf::field(&ctx))
            h2 { "Rename" }
            label { "Friendly name" input type="text" name="friendly_name" value=(target.friendly_name) maxlength="64" required; }
            button type="submit" { "Save name" }
        }
        @if !target.is_main() && !own {
            div.card {
                h2 { "Status" }
                @match target.status {
                    AccountStatus::Active => {
                        a.button.secondary href={ (path) "/status?to=suspended" } { "Suspend…" } " "
                        a.button.danger href={ (path) "/status?to=closed" } { "Close…" }
                    }
                    AccountStatus::Suspended => {
                        a.button href={ (path) "/status?to=active" } { "Reactivate…" } " "
                        a.button.danger href={ (path) "/status?to=closed" } { "Close…" }
                    }
                    AccountStatus::Closed => { p.muted { "A closed account stays closed." } }
                }
            }
        }
    };
    Ok(layout("Account settings", Some(&ctx), Some(&account), body).into_response())
}

pub async fn rename(
    State(state): State<ConsoleState>,
    Path(account): Path<String>,
    post: Post,
) -> PageResult {
    let path = format!("/console/{account}/settings");
    let update = AccountUpdate {
        friendly_name: Some(
            post.fields
                .get("friendly_name")
                .unwrap_or_default()
                .to_string(),
        ),
        status: None,
    };
    state
        .app
        .update_account(&post.ctx.session.principal, &account, update, &path)
        .await
        .map_err(|err| service_error(&post.ctx, err))?;
    Ok(see_other(&path))
}

#[derive(Debug, Deserialize)]
pub struct StatusQuery {
    to: String,
}

fn verb(status: AccountStatus) -> (&'static str, &'static str) {
    match status {
        AccountStatus::Active => (
            "Reactivate",
            "Its credentials work again and its messages are sent.",
        ),
        AccountStatus::Suspended => (
            "Suspend",
            "Its credentials stop working and nothing is sent until it is reactivated.",
        ),
        AccountStatus::Closed => (
            "Close",
            "This cannot be undone: the account, its numbers and credentials stop for good.",
        ),
    }
}

pub async fn confirm_status(
    State(state): State<ConsoleState>,
    ctx: Ctx,
    Path(account): Path<String>,
    Query(query): Query<StatusQuery>,
) -> PageResult {
    let path = format!("/console/{account}/settings");
    let Some(status) = AccountStatus::parse(&query.to) else {
        return Err(page_error(
            Some(&ctx),
            StatusCode::BAD_REQUEST,
            "Unknown status.",
        ));
    };
    let target = state
        .app
        .fetch_account(&ctx.session.principal, &account, &path)
        .await
        .map_err(|err| service_error(&ctx, err))?;
    let (action, consequence) = verb(status);
    let body = html! {
        h1 { (action) " " (target.friendly_name) "?" }
        p { code { (target.sid) } }
        p.warning { (consequence) }
        form method="post" action={ (path) "/status" } {
            (csrf::field(&ctx))
            input type="hidden" name="status" value=(status.as_str());
            button class=[(status == AccountStatus::Closed).then_some("danger")] type="submit" { "Yes, " (action.to_lowercase()) }
            " "
            a.button.secondary href=(path) { "No, go back" }
        }
    };
    Ok(layout("Confirm", Some(&ctx), Some(&account), body).into_response())
}

pub async fn change_status(
    State(state): State<ConsoleState>,
    Path(account): Path<String>,
    post: Post,
) -> PageResult {
    let path = format!("/console/{account}/settings");
    let Some(status) = post.fields.get("status").and_then(AccountStatus::parse) else {
        return Err(page_error(
            Some(&post.ctx),
            StatusCode::BAD_REQUEST,
            "Unknown status.",
        ));
    };
    let update = AccountUpdate {
        friendly_name: None,
        status: Some(status),
    };
    state
        .app
        .update_account(&post.ctx.session.principal, &account, update, &path)
        .await
        .map_err(|err| service_error(&post.ctx, err))?;
    Ok(see_other(&path))
}

/// Shows the account's own auth token: only to a user logged in with that token (an API key
/// or the parent's login never sees it), and only after an explicit POST.
pub async fn reveal_token(
    State(_state): State<ConsoleState>,
    Path(account): Path<String>,
    post: Post,
) -> PageResult {
    let ctx = &post.ctx;
    let principal = &ctx.session.principal;
    if account != principal.account.sid || principal.credential != Credential::AuthToken {
        return Err(page_error(
            Some(ctx),
            StatusCode::FORBIDDEN,
            "Only the account's own login may reveal its auth token.",
        ));
    }
    let body = html! {
        h1 { "Auth token" }
        p.warning { "Anyone with this token controls the account. Do not share it." }
        p { code.secret { (principal.account.auth_token) } }
        p { a href={ "/console/" (account) "/settings" } { "Hide it again" } }
    };
    Ok(layout("Auth token", Some(ctx), Some(&account), body).into_response())
}

/// Turns a subaccount's sandbox on or off (the service lets only its parent).
pub async fn set_sandbox(
    State(state): State<ConsoleState>,
    Path(account): Path<String>,
    post: Post,
) -> PageResult {
    let path = format!("/console/{account}/settings");
    let sandbox = post.fields.get("sandbox") == Some("true");
    state
        .app
        .set_sandbox(&post.ctx.session.principal, &account, sandbox, &path)
        .await
        .map_err(|err| service_error(&post.ctx, err))?;
    Ok(see_other(&path))
}

/// Shows the account's test auth token, under the same rule as its auth token.
pub async fn reveal_test_token(
    State(state): State<ConsoleState>,
    Path(account): Path<String>,
    post: Post,
) -> PageResult {
    let ctx = &post.ctx;
    let principal = &ctx.session.principal;
    if account != principal.account.sid || principal.credential != Credential::AuthToken {
        return Err(page_error(
            Some(ctx),
            StatusCode::FORBIDDEN,
            "Only the account's own login may reveal its test auth token.",
        ));
    }
    let path = format!("/console/{account}/settings");
    let test = state
        .app
        .test_credentials(principal, &account, &path)
        .await
        .map_err(|err| service_error(ctx, err))?;
    let body = html! {
        h1 { "Test auth token" }
        p { "Test account SID " code { (test.test_account_sid) } }
        p { code.secret { (test.test_auth_token) } }
        p { a href={ "/console/" (account) "/settings" } { "Hide it again" } }
    };
    Ok(layout("Test auth token", Some(ctx), Some(&account), body).into_response())
}
