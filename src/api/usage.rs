//! Handlers for Usage Records (<https://www.twilio.com/docs/usage/api/usage-record>), the
//! account Balance, and the operator's balance credit.

use super::auth::Caller;
use super::params::{Form, Params, Path, Query};
use super::render::ListPage;
use super::ApiState;
use crate::domain::paging::PageRequest;
use crate::domain::usage::{day_string, format_money, Period};
use crate::error::{Error, Result};
use crate::service::usage::{UsageQuery, UsageRecord};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

const SUBRESOURCES: &[(&str, &str)] = &[
    ("all_time", "AllTime"),
    ("daily", "Daily"),
    ("last_month", "LastMonth"),
    ("monthly", "Monthly"),
    ("this_month", "ThisMonth"),
    ("today", "Today"),
    ("yearly", "Yearly"),
    ("yesterday", "Yesterday"),
];

fn record_json(r: &UsageRecord, list_path: &str, price_unit: &str, as_of: &str) -> Value {
    let base = format!("/2010-04-01/Accounts/{}/Usage/Records", r.account_sid);
    let subresources: serde_json::Map<String, Value> = SUBRESOURCES
        .iter()
        .map(|(key, name)| {
            (
                key.to_string(),
                Value::String(format!("{base}/{name}.json?Category={}", r.category)),
            )
        })
        .collect();
    json!({
        "account_sid": r.account_sid,
        "api_version": "2010-04-01",
        "as_of": as_of,
        "category": r.category,
        "count": r.count.to_string(),
        "count_unit": r.count_unit,
        "description": r.description,
        "end_date": day_string(r.end_date),
        // A decimal string, as Twilio's own responses carry it (the spec says number; the
        // SDKs read either, and a string keeps the five decimals exact).
        "price": format_money(r.price),
        "price_unit": price_unit,
        "start_date": day_string(r.start_date),
        "subresource_uris": subresources,
        "uri": format!(
            "{list_path}?Category={}&StartDate={}&EndDate={}",
            r.category,
            day_string(r.start_date),
            day_string(r.end_date)
        ),
        "usage": r.usage_text(),
        "usage_unit": r.usage_unit,
    })
}

fn usage_query(params: &Params) -> Result<UsageQuery<'_>> {
    Ok(UsageQuery {
        category: params.get("Category"),
        start_date: params.get("StartDate"),
        end_date: params.get("EndDate"),
        include_subaccounts: params.bool("IncludeSubaccounts")?,
    })
}

async fn list(
    state: &ApiState,
    caller: &crate::service::Principal,
    path: &str,
    account_sid: &str,
    period: Period,
    list_path: String,
    params: &Params,
) -> Result<Json<Value>> {
    let page = PageRequest::parse(
        params.get("Page"),
        params.get("PageSize"),
        params.get("PageToken"),
    )?;
    let query = usage_query(params)?;
    let records = state
        .app
        .usage_records(caller, account_sid, period, &query, path)
        .await?;
    let offset = usize::try_from(page.offset())
        .unwrap_or(usize::MAX)
        .min(records.len());
    let rows: Vec<UsageRecord> = records
        .into_iter()
        .skip(offset)
        .take(page.fetch_limit() as usize)
        .collect();
    let price_unit = state.app.settings.price_unit.to_lowercase();
    let as_of = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let mut filters: Vec<(&'static str, String)> = Vec::new();
    for name in ["Category", "StartDate", "EndDate", "IncludeSubaccounts"] {
        if let Some(value) = params.get(name) {
            filters.push((name, value.to_string()));
        }
    }
    let list = ListPage {
        path: &list_path,
        key: "usage_records",
        filters,
        page: &page,
    };
    Ok(Json(list.render_by_index(rows, |r| {
        record_json(r, &list_path, &price_unit, &as_of)
    })))
}

pub async fn list_usage_record(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path(account_sid): axum::extract::Path<String>,
    Query(params): Query,
) -> Result<Json<Value>> {
    let list_path = format!("/2010-04-01/Accounts/{account_sid}/Usage/Records.json");
    list(
        &state,
        &caller,
        &path,
        &account_sid,
        Period::Range,
        list_path,
        &params,
    )
    .await
}

pub async fn list_usage_record_period(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path((account_sid, period)): axum::extract::Path<(String, String)>,
    Query(params): Query,
) -> Result<Json<Value>> {
    let kind = Period::parse(&period).ok_or_else(|| Error::not_found(path.clone()))?;
    let list_path = format!("/2010-04-01/Accounts/{account_sid}/Usage/Records/{period}.json");
    list(
        &state,
        &caller,
        &path,
        &account_sid,
        kind,
        list_path,
        &params,
    )
    .await
}

pub async fn fetch_balance(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path(account_sid): axum::extract::Path<String>,
) -> Result<Json<Value>> {
    let (sid, balance) = state.app.balance(&caller, &account_sid, &path).await?;
    Ok(Json(json!({
        "account_sid": sid,
        "balance": format_money(balance),
        "currency": state.app.settings.price_unit,
    })))
}

/// `POST /admin/billing/credit` (`AccountSid`, `Amount`, `Note`): the main token only.
pub async fn credit_balance(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Form(params): Form,
) -> Result<(StatusCode, Json<Value>)> {
    let balance = state
        .app
        .credit_balance(
            &caller,
            params.get("AccountSid"),
            params.get("Amount"),
            params.get("Note"),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "account_sid": params.get("AccountSid"),
            "balance": format_money(balance),
            "currency": state.app.settings.price_unit,
        })),
    ))
}
