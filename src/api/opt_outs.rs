//! warbler's own endpoints for opt-outs (Twilio keeps them out of its REST API):
//! an account's list (JSON, or CSV for export), CSV import, lifting one recipient's
//! opt-outs, and a Messaging Service's Advanced Opt-Out settings.

use super::auth::Caller;
use super::params::{Form, Path, Query, RawBody};
use super::v1::V1Page;
use super::ApiState;
use crate::domain::opt_out::{
    OptOutSettings, DEFAULT_HELP_KEYWORDS, DEFAULT_START_KEYWORDS, DEFAULT_STOP_KEYWORDS,
};
use crate::domain::paging::{Cursor, PageRequest};
use crate::domain::time::iso8601;
use crate::error::{Error, Result};
use crate::store::inbound::OptOut;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

fn opt_out_json(o: &OptOut) -> Value {
    json!({
        "sid": o.sid,
        "account_sid": o.account_sid,
        "recipient": o.recipient,
        "scope": o.scope,
        "sender": o.sender,
        "keyword": o.keyword,
        "date_created": iso8601(o.date_created),
    })
}

pub async fn list_opt_out(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path(account_sid): axum::extract::Path<String>,
    Query(params): Query,
) -> Result<Json<Value>> {
    let page = PageRequest::parse(
        params.get("Page"),
        params.get("PageSize"),
        params.get("PageToken"),
    )?;
    let rows = state
        .app
        .list_opt_outs(&caller, &account_sid, &page, &path)
        .await?;
    let list = V1Page {
        url: format!(
            "{}/warbler/v1/Accounts/{account_sid}/OptOuts",
            state.public_url
        ),
        key: "opt_outs",
        filters: Vec::new(),
        page: &page,
    };
    Ok(Json(list.render(
        rows,
        |o| Cursor {
            created: o.date_created,
            sid: o.sid.clone(),
        },
        opt_out_json,
    )))
}

/// The whole list as CSV, in the import format, read from the database a page at a time.
pub async fn export_opt_out(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path(account_sid): axum::extract::Path<String>,
) -> Result<Response> {
    let mut out = csv::Writer::from_writer(Vec::new());
    let write_error = |err: csv::Error| Error::internal(format!("writing CSV: {err}"));
    out.write_record(["recipient", "scope", "sender", "keyword", "date_created"])
        .map_err(write_error)?;
    let mut page = PageRequest::parse(None, Some("1000"), None)?;
    loop {
        let mut rows = state
            .app
            .list_opt_outs(&caller, &account_sid, &page, &path)
            .await?;
        let more = rows.len() > page.page_size as usize;
        rows.truncate(page.page_size as usize);
        for o in &rows {
            out.write_record([
                o.recipient.as_str(),
                o.scope.as_str(),
                o.sender.as_deref().unwrap_or(""),
                o.keyword.as_str(),
                iso8601(o.date_created).as_str(),
            ])
            .map_err(write_error)?;
        }
        match (more, rows.last()) {
            (true, Some(last)) => {
                page.page += 1;
                page.after = Some(Cursor {
                    created: last.date_created,
                    sid: last.sid.clone(),
                });
            }
            _ => break,
        }
    }
    let body = out
        .into_inner()
        .map_err(|err| Error::internal(format!("writing CSV: {err}")))?;
    Ok(([("content-type", "text/csv; charset=utf-8")], body).into_response())
}

pub async fn import_opt_out(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path(account_sid): axum::extract::Path<String>,
    RawBody(body): RawBody,
) -> Result<(StatusCode, Json<Value>)> {
    let added = state
        .app
        .import_opt_outs(&caller, &account_sid, &body, &path)
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "imported": added }))))
}

pub async fn delete_opt_out(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path((account_sid, recipient)): axum::extract::Path<(String, String)>,
) -> Result<StatusCode> {
    state
        .app
        .delete_opt_out(&caller, &account_sid, &recipient, &path)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

fn settings_json(service_sid: &str, settings: &OptOutSettings, custom: bool) -> Value {
    use crate::domain::opt_out::KeywordKind::{Help, Start, Stop};
    let all = |defaults: &[&str], custom: &[String]| -> Vec<String> {
        defaults
            .iter()
            .map(|k| k.to_string())
            .chain(custom.iter().cloned())
            .collect()
    };
    json!({
        "service_sid": service_sid,
        "advanced_opt_out": custom,
        "opt_out_keywords": all(&DEFAULT_STOP_KEYWORDS, &settings.stop_keywords),
        "opt_in_keywords": all(&DEFAULT_START_KEYWORDS, &settings.start_keywords),
        "help_keywords": all(&DEFAULT_HELP_KEYWORDS, &settings.help_keywords),
        "opt_out_message": settings.reply(Stop),
        "opt_in_message": settings.reply(Start),
        "help_message": settings.reply(Help),
    })
}

pub async fn fetch_opt_out_settings(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path(service_sid): axum::extract::Path<String>,
) -> Result<Json<Value>> {
    let (settings, custom) = state
        .app
        .service_opt_out(&caller, &service_sid, &path)
        .await?;
    Ok(Json(settings_json(&service_sid, &settings, custom)))
}

pub async fn update_opt_out_settings(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path(service_sid): axum::extract::Path<String>,
    Form(params): Form,
) -> Result<Json<Value>> {
    let changes: Vec<(&str, &str)> = [
        "OptOutKeywords",
        "OptInKeywords",
        "HelpKeywords",
        "OptOutMessage",
        "OptInMessage",
        "HelpMessage",
    ]
    .into_iter()
    .filter_map(|name| params.get(name).map(|value| (name, value)))
    .collect();
    let settings = state
        .app
        .update_service_opt_out(&caller, &service_sid, &changes, &path)
        .await?;
    Ok(Json(settings_json(&service_sid, &settings, true)))
}
