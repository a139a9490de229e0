//! Opt-outs, Alerts (with the captured request and response), Usage (by category, and by
//! subaccount for a main account; this month and last) and usage triggers.

use super::super::csrf::{self, Post};
use super::super::session::Ctx;
use super::super::{layout, see_other, service_error, when, ConsoleState, PageResult};
use crate::domain::paging::PageRequest;
use crate::domain::usage::{Period, REPORTED};
use crate::service::triggers::TriggerRequest;
use crate::service::usage::{UsageQuery, UsageRecord};
use crate::service::Operation;
use crate::store::triggers::TriggerFilter;
use crate::store::webhooks::AlertFilter;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use maud::{html, Markup};

const ROWS: &str = "200";

pub async fn opt_outs(
    State(state): State<ConsoleState>,
    ctx: Ctx,
    Path(account): Path<String>,
) -> PageResult {
    let path = format!("/console/{account}/opt-outs");
    let fail = |err| service_error(&ctx, err);
    let page = PageRequest::parse(None, Some(ROWS), None).map_err(fail)?;
    let rows = state
        .app
        .list_opt_outs(&ctx.session.principal, &account, &page, &path)
        .await
        .map_err(fail)?;
    let body = html! {
        h1 { "Opt-outs" }
        p.muted { "Recipients who texted a STOP keyword: messages to them are refused (21610) until they text START." }
        table.grid {
            thead { tr { th { "Recipient" } th { "Blocks" } th { "Sender" } th { "Keyword" } th { "Since (UTC)" } } }
            tbody {
                @if rows.is_empty() { tr { td colspan="5" .muted { "Nobody has opted out." } } }
                @for o in &rows {
                    tr {
                        td { (o.recipient) }
                        td { @if o.scope == "account" { "every sender of the account" } @else { code { (o.scope) } } }
                        td { (o.sender.as_deref().unwrap_or("—")) }
                        td { (o.keyword) }
                        td.nowrap { (when(o.date_created)) }
                    }
                }
            }
        }
    };
    Ok(layout("Opt-outs", Some(&ctx), Some(&account), body).into_response())
}

pub async fn alerts(
    State(state): State<ConsoleState>,
    ctx: Ctx,
    Path(account): Path<String>,
) -> PageResult {
    let path = format!("/console/{account}/alerts");
    let fail = |err| service_error(&ctx, err);
    let acting = state
        .app
        .console_act_as(
            &ctx.session.principal,
            &account,
            Operation::ListAlert,
            &path,
        )
        .await
        .map_err(fail)?;
    let page = PageRequest::parse(None, Some(ROWS), None).map_err(fail)?;
    let rows = state
        .app
        .list_alerts(&acting, &AlertFilter::default(), &page)
        .await
        .map_err(fail)?;
    let body = html! {
        h1 { "Alerts" }
        table.grid {
            thead { tr { th { "When (UTC)" } th { "Level" } th { "Error" } th { "Account" } th { "Request" } th {} } }
            tbody {
                @if rows.is_empty() { tr { td colspan="6" .muted { "No alerts." } } }
                @for a in &rows {
                    tr {
                        td.nowrap { (when(a.date_created)) }
                        td { (a.log_level) }
                        td { code { (a.error_code) } }
                        td { code.small { (a.account_sid) } }
                        td.url { (a.request_method.as_deref().unwrap_or("")) " " (a.request_url.as_deref().unwrap_or("")) }
                        td { a href={ (path) "/" (a.sid) } { "Details" } }
                    }
                }
            }
        }
    };
    Ok(layout("Alerts", Some(&ctx), Some(&account), body).into_response())
}

pub async fn alert(
    State(state): State<ConsoleState>,
    ctx: Ctx,
    Path((account, sid)): Path<(String, String)>,
) -> PageResult {
    let path = format!("/console/{account}/alerts/{sid}");
    let fail = |err| service_error(&ctx, err);
    let acting = state
        .app
        .console_act_as(
            &ctx.session.principal,
            &account,
            Operation::FetchAlert,
            &path,
        )
        .await
        .map_err(fail)?;
    let a = state
        .app
        .fetch_alert(&acting, &sid, &path)
        .await
        .map_err(fail)?;
    let text = |value: &Option<String>| html! { pre.body { (value.as_deref().unwrap_or("—")) } };
    let body = html! {
        h1 { "Alert " code { (a.sid) } }
        dl.facts {
            dt { "When" } dd { (when(a.date_created)) " UTC" }
            dt { "Level" } dd { (a.log_level) }
            dt { "Error code" } dd { code { (a.error_code) } }
            dt { "Resource" } dd { (a.resource_sid.as_deref().unwrap_or("—")) }
            dt { "Service" } dd { (a.service_sid.as_deref().unwrap_or("—")) }
            dt { "Details" } dd { (a.alert_text) }
        }
        h2 { "Request" }
        p { code { (a.request_method.as_deref().unwrap_or("")) " " (a.request_url.as_deref().unwrap_or("")) } }
        h2 { "Request parameters" } (text(&a.request_variables))
        h2 { "Request headers" } (text(&a.request_headers))
        h2 { "Response headers" } (text(&a.response_headers))
        h2 { "Response body" } (text(&a.response_body))
    };
    Ok(layout("Alert", Some(&ctx), Some(&account), body).into_response())
}

fn usage_table(records: &[UsageRecord]) -> Markup {
    html! {
        table.grid {
            thead { tr { th { "Category" } th.num { "Count" } th.num { "Usage" } th.num { "Price" } } }
            tbody {
                @for r in records.iter().filter(|r| r.count != 0 || r.price != 0 || r.category == "totalprice") {
                    tr {
                        td { (r.description) }
                        td.num { (r.count) " " (r.count_unit) }
                        td.num { (r.usage_text()) " " (r.usage_unit) }
                        td.num { (crate::domain::usage::format_money(r.price)) }
                    }
                }
            }
        }
    }
}

pub async fn usage(
    State(state): State<ConsoleState>,
    ctx: Ctx,
    Path(account): Path<String>,
) -> PageResult {
    let path = format!("/console/{account}/usage");
    let fail = |err| service_error(&ctx, err);
    let principal = &ctx.session.principal;
    let app = &state.app;
    let query = UsageQuery {
        category: None,
        start_date: None,
        end_date: None,
        include_subaccounts: None,
    };
    let this_month = app
        .usage_records(principal, &account, Period::ThisMonth, &query, &path)
        .await
        .map_err(fail)?;
    let last_month = app
        .usage_records(principal, &account, Period::LastMonth, &query, &path)
        .await
        .map_err(fail)?;
    // A main account also sees what each account of its family spent.
    let mut by_account = Vec::new();
    if account == principal.account.sid && principal.account.is_main() {
        let total = UsageQuery {
            category: Some("totalprice"),
            include_subaccounts: Some(false),
            ..query
        };
        for a in app.console_accounts(principal).await.map_err(fail)? {
            let spent = |records: Vec<UsageRecord>| {
                records.first().map(|r| r.usage_text()).unwrap_or_default()
            };
            let now = app
                .usage_records(principal, &a.sid, Period::ThisMonth, &total, &path)
                .await
                .map_err(fail)?;
            let before = app
                .usage_records(principal, &a.sid, Period::LastMonth, &total, &path)
                .await
                .map_err(fail)?;
            by_account.push((a, spent(now), spent(before)));
        }
    }
    let triggers_path = format!("/console/{account}/usage/triggers");
    let page = PageRequest::parse(None, Some(ROWS), None).map_err(fail)?;
    let triggers = app
        .list_triggers(principal, &account, &TriggerFilter::default(), &page, &path)
        .await
        .map_err(fail)?;
    let body = html! {
        h1 { "Usage" }
        @if !by_account.is_empty() {
            h2 { "By account (total price)" }
            table.grid {
                thead { tr { th { "Account" } th.num { "This month" } th.num { "Last month" } } }
                tbody {
                    @for (a, now, before) in &by_account {
                        tr {
                            td { a href={ "/console/" (a.sid) "/usage" } { (a.friendly_name) } br; code.small { (a.sid) } }
                            td.num { (now) } td.num { (before) }
                        }
                    }
                }
            }
        }
        div.columns {
            div { h2 { "This month" } (usage_table(&this_month)) }
            div { h2 { "Last month" } (usage_table(&last_month)) }
        }
        h2 { "Usage triggers" }
        table.grid {
            thead { tr { th { "Name" } th { "Category" } th { "Trigger at" } th { "Recurring" } th { "Callback" } th { "Last fired (UTC)" } th {} } }
            tbody {
                @if triggers.is_empty() { tr { td colspan="7" .muted { "No usage triggers." } } }
                @for t in &triggers {
                    tr {
                        td { (t.friendly_name.as_deref().unwrap_or("—")) }
                        td { (t.usage_category) }
                        td { (t.trigger_value) " (" (t.trigger_by) ")" }
                        td { (t.recurring.as_deref().unwrap_or("no")) }
                        td.url { (t.callback_method) " " (t.callback_url) }
                        td.nowrap { @if let Some(at) = t.date_fired { (when(at)) } @else { "never" } }
                        td {
                            form.inline method="post" action={ (triggers_path) "/" (t.sid) "/delete" } {
                                (csrf::field(&ctx))
                                button.danger type="submit" { "Delete" }
                            }
                        }
                    }
                }
            }
        }
        form.card method="post" action=(triggers_path) {
            (csrf::field(&ctx))
            h2 { "Create a usage trigger" }
            div.row {
                label { "Friendly name" input type="text" name="friendly_name" maxlength="64"; }
                label { "Category" select name="usage_category" {
                    @for (category, description, _, _) in REPORTED { option value=(category) { (description) " (" (category) ")" } }
                } }
            }
            div.row {
                label { "Trigger value" input type="text" name="trigger_value" required placeholder="e.g. 100"; }
                label { "Trigger by" select name="trigger_by" {
                    @for by in ["usage", "count", "price"] { option value=(by) { (by) } }
                } }
                label { "Recurring" select name="recurring" {
                    option value="" { "no" }
                    @for r in ["daily", "monthly", "yearly", "alltime"] { option value=(r) { (r) } }
                } }
            }
            label { "Callback URL" input type="url" name="callback_url" required placeholder="https://…"; }
            button type="submit" { "Create trigger" }
        }
    };
    Ok(layout("Usage", Some(&ctx), Some(&account), body).into_response())
}

pub async fn create_trigger(
    State(state): State<ConsoleState>,
    Path(account): Path<String>,
    post: Post,
) -> PageResult {
    let path = format!("/console/{account}/usage");
    let fields = &post.fields;
    let request = TriggerRequest {
        callback_url: fields.get("callback_url"),
        callback_method: Some("POST"),
        trigger_value: fields.get("trigger_value"),
        usage_category: fields.get("usage_category"),
        friendly_name: fields.get("friendly_name"),
        recurring: fields.get("recurring"),
        trigger_by: fields.get("trigger_by"),
    };
    state
        .app
        .create_trigger(&post.ctx.session.principal, &account, request, &path)
        .await
        .map_err(|err| service_error(&post.ctx, err))?;
    Ok(see_other(&path))
}

pub async fn delete_trigger(
    State(state): State<ConsoleState>,
    Path((account, sid)): Path<(String, String)>,
    post: Post,
) -> PageResult {
    let path = format!("/console/{account}/usage");
    state
        .app
        .delete_trigger(&post.ctx.session.principal, &account, &sid, &path)
        .await
        .map_err(|err| service_error(&post.ctx, err))?;
    Ok(see_other(&path))
}
