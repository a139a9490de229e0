//! The overview: one row per account the user may see (a main account's subaccounts
//! included), the shared balance, and the charts of the account being viewed.

use super::super::session::Ctx;
use super::super::{charts, layout, service_error, status_badge, ConsoleState, PageResult};
use crate::service::console::AccountStats;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup, PreEscaped};

pub async fn home(ctx: Ctx) -> Response {
    Redirect::to(&format!("/console/{}", ctx.session.principal.account.sid)).into_response()
}

fn counts(counts: &[(String, i64)]) -> Markup {
    let total: i64 = counts.iter().map(|(_, n)| n).sum();
    let mut sorted = counts.to_vec();
    sorted.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    html! {
        strong { (total) }
        @if !sorted.is_empty() {
            ul.counts { @for (status, n) in &sorted { li { (status_badge(status)) " " (n) } } }
        }
    }
}

fn row(stats: &AccountStats, viewing: &str) -> Markup {
    let account = &stats.account;
    html! {
        tr.current[account.sid == viewing] {
            td {
                a href={ "/console/" (account.sid) } { (account.friendly_name) }
                br; code.small { (account.sid) }
                @if account.is_main() { " " span.tag { "main" } }
            }
            td { (status_badge(account.status.as_str())) }
            td { (counts(&stats.today)) }
            td { (counts(&stats.week)) }
            td {
                @match stats.delivery_rate() {
                    Some(rate) => { (format!("{:.1} %", rate * 100.0)) }
                    None => { span.muted { "—" } }
                }
            }
            td {
                @if stats.top_errors.is_empty() { span.muted { "none" } }
                @for (code, n) in &stats.top_errors { div { code { (code) } " × " (n) } }
            }
            td.num { (stats.spend_this_month) }
        }
    }
}

pub async fn overview(
    State(state): State<ConsoleState>,
    ctx: Ctx,
    Path(account): Path<String>,
) -> PageResult {
    let app = &state.app;
    let principal = &ctx.session.principal;
    let path = format!("/console/{account}");
    let fail = |err| service_error(&ctx, err);
    let (rows, data) = app
        .console_overview(principal, &account, 24, &path)
        .await
        .map_err(fail)?;
    // Subaccounts hold no balance information (the service refuses them): no line then.
    let balance = match app.balance(principal, &account, &path).await {
        Ok((_, money)) => Some(crate::domain::usage::format_money(money)),
        Err(crate::error::Error::Forbidden { .. }) => None,
        Err(err) => return Err(fail(err)),
    };
    let name = rows
        .iter()
        .find(|r| r.account.sid == account)
        .map(|r| r.account.friendly_name.clone())
        .unwrap_or_default();
    let body = html! {
        h1 { "Overview" span.sub { (name) } }
        @if let Some(balance) = &balance {
            p.balance { "Balance (shared by the main account and its subaccounts): "
                strong { (balance) " " (app.settings.price_unit) } }
        }
        table.grid {
            thead { tr {
                th { "Account" } th { "Status" } th { "Final statuses today (UTC)" } th { "Last 7 days" }
                th { "Delivery rate (7 days)" } th { "Top error codes" } th.num { "Spend this month" }
            } }
            tbody { @for stats in &rows { (row(stats, &account)) } }
        }
        h2 { "Last 24 hours" @if rows.len() > 1 { span.muted { " · all " (rows.len()) " accounts" } } }
        div.charts {
            figure.chart { (PreEscaped(charts::messages_per_hour(&data))) }
            figure.chart { (PreEscaped(charts::latency_percentiles(&data))) }
            figure.chart { (PreEscaped(charts::errors_per_hour(&data))) }
        }
    };
    Ok(layout("Overview", Some(&ctx), Some(&account), body).into_response())
}
