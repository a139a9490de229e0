//! API keys: create (the secret shown once), rename, delete.

use super::super::csrf::{self, Post};
use super::super::session::Ctx;
use super::super::{layout, see_other, service_error, when, ConsoleState, PageResult};
use crate::domain::paging::PageRequest;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use maud::html;

pub async fn list(
    State(state): State<ConsoleState>,
    ctx: Ctx,
    Path(account): Path<String>,
) -> PageResult {
    let path = format!("/console/{account}/keys");
    let fail = |err| service_error(&ctx, err);
    let page = PageRequest::parse(None, Some("1000"), None).map_err(fail)?;
    let keys = state
        .app
        .list_keys(&ctx.session.principal, &account, &page, &path)
        .await
        .map_err(fail)?;
    let body = html! {
        h1 { "API keys" }
        form.card method="post" action=(path) {
            (csrf::field(&ctx))
            h2 { "Create an API key" }
            label { "Friendly name" input type="text" name="friendly_name" maxlength="64"; }
            button type="submit" { "Create key" }
        }
        table.grid {
            thead { tr { th { "Name" } th { "SID" } th { "Created (UTC)" } th { "Rename" } th {} } }
            tbody {
                @if keys.is_empty() { tr { td colspan="5" .muted { "No API keys." } } }
                @for key in &keys {
                    tr {
                        td { (key.friendly_name.as_deref().unwrap_or("—")) }
                        td { code { (key.sid) } }
                        td.nowrap { (when(key.date_created)) }
                        td {
                            form.inline method="post" action={ (path) "/" (key.sid) "/rename" } {
                                (csrf::field(&ctx))
                                input type="text" name="friendly_name" value=(key.friendly_name.as_deref().unwrap_or("")) maxlength="64" size="18";
                                button.secondary type="submit" { "Rename" }
                            }
                        }
                        td {
                            form.inline method="post" action={ (path) "/" (key.sid) "/delete" } {
                                (csrf::field(&ctx))
                                button.danger type="submit" { "Delete" }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout("API keys", Some(&ctx), Some(&account), body).into_response())
}

pub async fn create(
    State(state): State<ConsoleState>,
    Path(account): Path<String>,
    post: Post,
) -> PageResult {
    let path = format!("/console/{account}/keys");
    let ctx = &post.ctx;
    let (key, secret) = state
        .app
        .create_key(
            &ctx.session.principal,
            &account,
            post.fields.get("friendly_name"),
            &path,
        )
        .await
        .map_err(|err| service_error(ctx, err))?;
    let body = html! {
        h1 { "API key created" }
        p.warning { "Copy the secret now: it is shown this once and cannot be recovered." }
        dl.facts {
            dt { "Name" } dd { (key.friendly_name.as_deref().unwrap_or("—")) }
            dt { "SID" } dd { code { (key.sid) } }
            dt { "Secret" } dd { code.secret { (secret) } }
        }
        p { a.button href=(path) { "Done" } }
    };
    Ok(layout("API key created", Some(ctx), Some(&account), body).into_response())
}

pub async fn rename(
    State(state): State<ConsoleState>,
    Path((account, key)): Path<(String, String)>,
    post: Post,
) -> PageResult {
    let path = format!("/console/{account}/keys");
    state
        .app
        .rename_key(
            &post.ctx.session.principal,
            &account,
            &key,
            Some(post.fields.raw("friendly_name").unwrap_or_default().trim()),
            &path,
        )
        .await
        .map_err(|err| service_error(&post.ctx, err))?;
    Ok(see_other(&path))
}

pub async fn delete(
    State(state): State<ConsoleState>,
    Path((account, key)): Path<(String, String)>,
    post: Post,
) -> PageResult {
    let path = format!("/console/{account}/keys");
    state
        .app
        .delete_key(&post.ctx.session.principal, &account, &key, &path)
        .await
        .map_err(|err| service_error(&post.ctx, err))?;
    Ok(see_other(&path))
}
