//! The message log (filters, keyset paging) and a message's page (its timeline, redact,
//! cancel).

use super::super::csrf::{self, Post};
use super::super::session::Ctx;
use super::super::{
    layout, see_other, service_error, status_badge, when, ConsoleState, PageResult,
};
use crate::store::console::LogFilter;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use maud::html;
use serde::Deserialize;

const PAGE_ROWS: i64 = 50;

#[derive(Debug, Default, Deserialize)]
pub struct LogQuery {
    #[serde(default)]
    to: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    error_code: String,
    #[serde(default)]
    service: String,
    /// `YYYY-MM-DD`, UTC, inclusive.
    #[serde(default)]
    date_from: String,
    #[serde(default)]
    date_to: String,
    /// The keyset position to continue after: `<date_created>_<sid>`.
    #[serde(default)]
    after: String,
}

fn some(value: &str) -> Option<String> {
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_string())
}

/// Midnight UTC of `YYYY-MM-DD`, in microseconds.
fn day_start(value: &str) -> Option<i64> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(value.trim(), &format).ok()?;
    Some(date.midnight().assume_utc().unix_timestamp() * 1_000_000)
}

impl LogQuery {
    fn filter(&self) -> Result<LogFilter, String> {
        let error_code = match some(&self.error_code) {
            None => None,
            Some(raw) => Some(
                raw.parse::<i64>()
                    .map_err(|_| format!("The error code {raw:?} is not a number"))?,
            ),
        };
        let date = |raw: &str, name: &str| match some(raw) {
            None => Ok(None),
            Some(raw) => day_start(&raw)
                .map(Some)
                .ok_or_else(|| format!("The {name} date {raw:?} is not YYYY-MM-DD")),
        };
        Ok(LogFilter {
            to: some(&self.to),
            from: some(&self.from),
            status: some(&self.status),
            error_code,
            service_sid: some(&self.service),
            created_from: date(&self.date_from, "first")?,
            created_until: date(&self.date_to, "last")?.map(|t| t + 24 * 3600 * 1_000_000 - 1),
        })
    }

    fn after(&self) -> Option<(i64, String)> {
        let (created, sid) = self.after.split_once('_')?;
        let sid_ok = sid.len() == 34 && sid.bytes().all(|b| b.is_ascii_alphanumeric());
        sid_ok.then_some((created.parse().ok()?, sid.to_string()))
    }

    /// This query with another keyset position, for the "next page" link.
    fn with_after(&self, after: Option<&str>) -> String {
        let pairs = [
            ("to", &self.to),
            ("from", &self.from),
            ("status", &self.status),
            ("error_code", &self.error_code),
            ("service", &self.service),
            ("date_from", &self.date_from),
            ("date_to", &self.date_to),
        ];
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in pairs {
            if !value.trim().is_empty() {
                query.append_pair(name, value);
            }
        }
        if let Some(after) = after {
            query.append_pair("after", after);
        }
        query.finish()
    }
}

const STATUSES: &[&str] = &[
    "accepted",
    "scheduled",
    "queued",
    "sending",
    "sent",
    "delivered",
    "undelivered",
    "failed",
    "canceled",
    "receiving",
    "received",
    "read",
];

pub async fn list(
    State(state): State<ConsoleState>,
    ctx: Ctx,
    Path(account): Path<String>,
    Query(query): Query<LogQuery>,
) -> PageResult {
    let path = format!("/console/{account}/messages");
    let principal = &ctx.session.principal;
    let (filter, problem) = match query.filter() {
        Ok(filter) => (filter, None),
        Err(problem) => (LogFilter::default(), Some(problem)),
    };
    let page = state
        .app
        .console_messages(
            principal,
            &account,
            &filter,
            query.after(),
            PAGE_ROWS,
            &path,
        )
        .await
        .map_err(|err| service_error(&ctx, err))?;
    let rows = &page.messages;
    let next = page
        .next
        .as_ref()
        .map(|(created, sid)| query.with_after(Some(&format!("{created}_{sid}"))));
    let body = html! {
        h1 { "Messages" }
        form.filters method="get" action=(path) {
            label { "To" input type="text" name="to" value=(query.to) placeholder="+1…"; }
            label { "From" input type="text" name="from" value=(query.from); }
            label { "Status" select name="status" {
                option value="" { "any" }
                @for s in STATUSES { option value=(s) selected[query.status == *s] { (s) } }
            } }
            label { "Error code" input type="text" name="error_code" value=(query.error_code) size="6"; }
            label { "Service SID" input type="text" name="service" value=(query.service) placeholder="MG…"; }
            label { "From date" input type="date" name="date_from" value=(query.date_from); }
            label { "To date" input type="date" name="date_to" value=(query.date_to); }
            button type="submit" { "Filter" }
            a.button.secondary href=(path) { "Clear" }
        }
        @if let Some(problem) = &problem { p.error { (problem) } }
        table.grid.messages {
            thead { tr { th { "Created (UTC)" } th { "Direction" } th { "From" } th { "To" } th { "Body" } th { "Status" } th { "Error" } th { "SID" } } }
            tbody {
                @if rows.is_empty() { tr { td colspan="8" .muted { "No messages match." } } }
                @for m in rows {
                    tr {
                        td.nowrap { (when(m.date_created)) }
                        td { (m.direction.as_str()) }
                        td { (m.from.as_deref().unwrap_or("—")) }
                        td { (m.to) }
                        td.body { (m.body.chars().take(80).collect::<String>()) @if m.body.chars().count() > 80 { "…" } }
                        td { (status_badge(m.status.as_str())) }
                        td { @if let Some(code) = m.error_code { code { (code) } } }
                        td { a href={ (path) "/" (m.sid) } { code.small { (m.sid) } } }
                    }
                }
            }
        }
        @if page.window_ended {
            p.muted { "Looked through the " (crate::store::console::LOG_SCAN_WINDOW) " messages before this point: older ones may match too." }
        }
        p.paging {
            @if !query.after.is_empty() { a.button.secondary href={ (path) "?" (query.with_after(None)) } { "⇤ Newest" } " " }
            @if let Some(next) = &next { a.button href={ (path) "?" (next) } { "Older →" } }
        }
    };
    Ok(layout("Messages", Some(&ctx), Some(&account), body).into_response())
}

pub async fn detail(
    State(state): State<ConsoleState>,
    ctx: Ctx,
    Path((account, sid)): Path<(String, String)>,
) -> PageResult {
    let path = format!("/console/{account}/messages/{sid}");
    let crate::service::console::ConsoleMessage {
        message: m,
        events,
        callbacks,
    } = state
        .app
        .console_message(&ctx.session.principal, &account, &sid, &path)
        .await
        .map_err(|err| service_error(&ctx, err))?;
    let body = html! {
        h1 { "Message " code { (m.sid) } }
        div.columns {
            dl.facts {
                dt { "Status" } dd { (status_badge(m.status.as_str())) }
                @if let Some(code) = m.error_code {
                    dt { "Error" } dd { code { (code) } " " (m.error_message.as_deref().unwrap_or("")) }
                }
                dt { "Direction" } dd { (m.direction.as_str()) }
                dt { "From" } dd { (m.from.as_deref().unwrap_or("(chosen from the service's pool when sent)")) }
                dt { "To" } dd { (m.to) }
                dt { "Messaging Service" } dd { (m.messaging_service_sid.as_deref().unwrap_or("—")) }
                dt { "Segments" } dd { (m.num_segments) }
                dt { "Encoding" } dd { (m.encoding) }
                dt { "Media" } dd { (m.num_media) }
                dt { "Price" } dd { (m.price.as_deref().unwrap_or("—")) " " (m.price_unit) }
                dt { "Created" } dd { (when(m.date_created)) " UTC" }
                @if let Some(sent) = m.date_sent { dt { "Sent" } dd { (when(sent)) " UTC" } }
                dt { "Status callback" } dd { (m.status_callback.as_deref().unwrap_or("—")) }
            }
            div {
                h2 { "Body" }
                @if m.body.is_empty() { p.muted { "(empty or redacted)" } } @else { pre.body { (m.body) } }
                form.inline method="post" action={ (path) "/redact" } {
                    (csrf::field(&ctx))
                    button.secondary type="submit" disabled[!m.status.is_final() || m.body.is_empty()] { "Redact body" }
                }
                @if matches!(m.status.as_str(), "scheduled" | "accepted" | "queued") {
                    form.inline method="post" action={ (path) "/cancel" } {
                        (csrf::field(&ctx))
                        button.danger type="submit" { "Cancel" }
                    }
                }
            }
        }
        h2 { "Status timeline" }
        table.grid {
            thead { tr { th { "Time (UTC)" } th { "Status" } th { "Error code" } th { "Since created" } } }
            tbody {
                @for (status, code, at) in &events {
                    tr {
                        td.nowrap { (when(*at)) }
                        td { (status_badge(status.as_str())) }
                        td { @if let Some(code) = code { code { (code) } } }
                        td.num { (format!("{:.3} s", (*at - m.date_created) as f64 / 1e6)) }
                    }
                }
            }
        }
        h2 { "Status callback attempts" span.muted { " (kept for a week)" } }
        table.grid.callbacks {
            thead { tr { th { "Time (UTC)" } th { "Attempt" } th { "Reported status" } th { "Request" } th { "Response" } th.num { "Latency" } th { "Outcome" } } }
            tbody {
                @if callbacks.is_empty() {
                    tr { td colspan="7" .muted {
                        @if m.status_callback.is_some() || m.messaging_service_sid.is_some() { "No status callback has been attempted yet." }
                        @else { "This message has no status callback URL." }
                    } }
                }
                @for c in &callbacks {
                    tr {
                        td.nowrap { (when(c.at)) }
                        td.num { (c.attempt) }
                        td { @if let Some(s) = &c.reported_status { (status_badge(s)) } }
                        td.url { (c.method) " " (c.url) }
                        td {
                            @if let Some(code) = c.response_code { code { (code) } }
                            @if let Some(error) = &c.error { span.muted { (error) } }
                        }
                        td.num { (format!("{:.1} ms", c.latency as f64 / 1000.0)) }
                        td { (c.outcome) }
                    }
                }
            }
        }
    };
    Ok(layout("Message", Some(&ctx), Some(&account), body).into_response())
}

async fn change(
    state: ConsoleState,
    post: Post,
    account: String,
    sid: String,
    body: Option<&str>,
    status: Option<&str>,
) -> PageResult {
    let path = format!("/console/{account}/messages/{sid}");
    state
        .app
        .update_message(
            &post.ctx.session.principal,
            &account,
            &sid,
            body,
            status,
            &path,
        )
        .await
        .map_err(|err| service_error(&post.ctx, err))?;
    Ok(see_other(&path))
}

pub async fn redact(
    State(state): State<ConsoleState>,
    Path((account, sid)): Path<(String, String)>,
    post: Post,
) -> PageResult {
    change(state, post, account, sid, Some(""), None).await
}

pub async fn cancel(
    State(state): State<ConsoleState>,
    Path((account, sid)): Path<(String, String)>,
    post: Post,
) -> PageResult {
    change(state, post, account, sid, None, Some("canceled")).await
}
