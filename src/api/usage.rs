//! Handlers for Usage Records (<https://www.twilio.com/docs/usage/api/usage-record>), the
//! account Balance, and the operator's balance credit.

use super::auth::Caller;
use super::params::{Form, Params, Path, Query};
use super::render::ListPage;
use super::ApiState;
use crate::domain::paging::{Cursor, PageRequest};
use crate::domain::time::rfc2822;
use crate::domain::usage::{day_string, format_measure, format_money, Period};
use crate::error::{Error, Result};
use crate::service::triggers::{usage_record_uri, TriggerRequest};
use crate::service::usage::{UsageQuery, UsageRecord};
use crate::store::triggers::{TriggerFilter, UsageTrigger};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use futures_util::StreamExt;
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

fn trigger_json(t: &UsageTrigger, current_value: &str) -> Value {
    json!({
        "account_sid": t.account_sid,
        "api_version": "2010-04-01",
        "callback_method": t.callback_method,
        "callback_url": t.callback_url,
        "current_value": current_value,
        "date_created": rfc2822(t.date_created),
        "date_fired": t.date_fired.map(rfc2822),
        "date_updated": rfc2822(t.date_updated),
        "friendly_name": t.friendly_name,
        "recurring": t.recurring,
        "sid": t.sid,
        "trigger_by": t.trigger_by,
        "trigger_value": t.trigger_value,
        "uri": format!("/2010-04-01/Accounts/{}/Usage/Triggers/{}.json", t.account_sid, t.sid),
        "usage_category": t.usage_category,
        "usage_record_uri": usage_record_uri(t),
    })
}

async fn current_value(state: &ApiState, t: &UsageTrigger) -> Result<String> {
    let value = state
        .app
        .trigger_current_value(t, crate::domain::time::now_micros())
        .await?;
    Ok(format_measure(&t.usage_category, &t.trigger_by, value))
}

fn trigger_request(params: &Params) -> TriggerRequest<'_> {
    TriggerRequest {
        callback_url: params.get("CallbackUrl"),
        callback_method: params.get("CallbackMethod"),
        trigger_value: params.get("TriggerValue"),
        usage_category: params.get("UsageCategory"),
        friendly_name: params.get("FriendlyName"),
        recurring: params.get("Recurring"),
        trigger_by: params.get("TriggerBy"),
    }
}

pub async fn create_usage_trigger(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path(account_sid): axum::extract::Path<String>,
    Form(params): Form,
) -> Result<(StatusCode, Json<Value>)> {
    let trigger = state
        .app
        .create_trigger(&caller, &account_sid, trigger_request(&params), &path)
        .await?;
    let current = current_value(&state, &trigger).await?;
    Ok((StatusCode::CREATED, Json(trigger_json(&trigger, &current))))
}

pub async fn list_usage_trigger(
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
    let filter = TriggerFilter {
        recurring: params
            .get("Recurring")
            .filter(|v| !v.is_empty())
            .map(str::to_string),
        trigger_by: params
            .get("TriggerBy")
            .filter(|v| !v.is_empty())
            .map(str::to_string),
        usage_category: params
            .get("UsageCategory")
            .filter(|v| !v.is_empty())
            .map(str::to_string),
    };
    let triggers = state
        .app
        .list_triggers(&caller, &account_sid, &filter, &page, &path)
        .await?;
    let mut currents = Vec::with_capacity(triggers.len());
    for t in &triggers {
        currents.push(current_value(&state, t).await?);
    }
    let rows: Vec<(UsageTrigger, String)> = triggers.into_iter().zip(currents).collect();
    let list_path = format!("/2010-04-01/Accounts/{account_sid}/Usage/Triggers.json");
    let mut filters: Vec<(&'static str, String)> = Vec::new();
    for name in ["Recurring", "TriggerBy", "UsageCategory"] {
        if let Some(value) = params.get(name) {
            filters.push((name, value.to_string()));
        }
    }
    let list = ListPage {
        path: &list_path,
        key: "usage_triggers",
        filters,
        page: &page,
    };
    Ok(Json(list.render(
        rows,
        |(t, _)| Cursor {
            created: t.date_created,
            sid: t.sid.clone(),
        },
        |(t, current)| trigger_json(t, current),
    )))
}

pub async fn fetch_usage_trigger(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path((account_sid, sid)): axum::extract::Path<(String, String)>,
) -> Result<Json<Value>> {
    let trigger = state
        .app
        .fetch_trigger(&caller, &account_sid, &sid, &path)
        .await?;
    let current = current_value(&state, &trigger).await?;
    Ok(Json(trigger_json(&trigger, &current)))
}

pub async fn update_usage_trigger(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path((account_sid, sid)): axum::extract::Path<(String, String)>,
    Form(params): Form,
) -> Result<Json<Value>> {
    let trigger = state
        .app
        .update_trigger(
            &caller,
            &account_sid,
            &sid,
            &trigger_request(&params),
            &path,
        )
        .await?;
    let current = current_value(&state, &trigger).await?;
    Ok(Json(trigger_json(&trigger, &current)))
}

pub async fn delete_usage_trigger(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path((account_sid, sid)): axum::extract::Path<(String, String)>,
) -> Result<StatusCode> {
    state
        .app
        .delete_trigger(&caller, &account_sid, &sid, &path)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /admin/export/messages` (`AccountSid`, `Since`, `Until`, `Format` csv|jsonl,
/// `IncludeSubaccounts`): the message log, streamed a page at a time. Main token only.
pub async fn export_messages(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Query(params): Query,
) -> Result<axum::response::Response> {
    use crate::service::export::{parse_bound, ExportFormat, ExportWriter};
    use axum::response::IntoResponse;
    let account = params
        .get("AccountSid")
        .ok_or_else(|| Error::missing_parameter("AccountSid"))?;
    let format = match params.get("Format") {
        Some(raw) => {
            ExportFormat::parse(raw).ok_or_else(|| Error::invalid_parameter("Format", raw))?
        }
        None => ExportFormat::Csv,
    };
    let since = params
        .get("Since")
        .map(|raw| parse_bound("Since", raw))
        .transpose()?
        .unwrap_or(0);
    let until = params
        .get("Until")
        .map(|raw| parse_bound("Until", raw))
        .transpose()?
        .unwrap_or(i64::MAX);
    let include = params.bool("IncludeSubaccounts")?.unwrap_or(true);
    let cursor = state
        .app
        .start_export_as(&caller, account, include, since, until)
        .await?;
    let writer = ExportWriter::new(format);
    let header = writer.header();
    let app = state.app.clone();
    // The header, then one chunk per page; an error ends the stream (the client sees a
    // truncated body rather than a false success).
    let pages = futures_util::stream::unfold(
        (app, cursor, writer, false),
        |(app, mut cursor, writer, done)| async move {
            if done {
                return None;
            }
            match app.export_next(&mut cursor).await {
                Ok(Some(page)) => {
                    let bytes = writer.rows(&page);
                    Some((Ok::<_, std::io::Error>(bytes), (app, cursor, writer, false)))
                }
                Ok(None) => None,
                Err(err) => Some((
                    Err(std::io::Error::other(err.to_string())),
                    (app, cursor, writer, true),
                )),
            }
        },
    );
    let body = futures_util::stream::iter([Ok::<_, std::io::Error>(header)]).chain(pages);
    Ok((
        [(axum::http::header::CONTENT_TYPE, format.content_type())],
        axum::body::Body::from_stream(body),
    )
        .into_response())
}

fn caps_json(
    account_sid: &str,
    caps: &crate::store::caps::AccountCaps,
    month_messages: i64,
) -> Value {
    json!({
        "account_sid": account_sid,
        "max_segments_per_second": caps.max_sps,
        "monthly_messages": caps.monthly_messages,
        "monthly_spend": caps.monthly_spend.map(format_money),
        "messages_this_month": month_messages,
    })
}

async fn this_month_messages(state: &ApiState, account_sid: &str) -> Result<i64> {
    let today = crate::domain::usage::day_of(crate::domain::time::now_micros());
    state
        .app
        .store
        .month_messages(account_sid, &day_string(today)[..7])
        .await
}

/// `GET /admin/accounts/{AccountSid}/Caps` (warbler extension, the parent's auth token).
pub async fn fetch_account_caps(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    axum::extract::Path(account_sid): axum::extract::Path<String>,
) -> Result<Json<Value>> {
    let caps = state.app.account_caps(&caller, &account_sid).await?;
    let used = this_month_messages(&state, &account_sid).await?;
    Ok(Json(caps_json(&account_sid, &caps, used)))
}

/// `POST /admin/accounts/{AccountSid}/Caps` with `MaxSegmentsPerSecond`, `MonthlyMessages`,
/// `MonthlySpend` (an empty value removes that cap).
pub async fn update_account_caps(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    axum::extract::Path(account_sid): axum::extract::Path<String>,
    Form(params): Form,
) -> Result<Json<Value>> {
    let request = crate::service::usage::CapsRequest {
        max_sps: params.get("MaxSegmentsPerSecond"),
        monthly_messages: params.get("MonthlyMessages"),
        monthly_spend: params.get("MonthlySpend"),
    };
    let caps = state
        .app
        .set_account_caps(&caller, &account_sid, &request)
        .await?;
    let used = this_month_messages(&state, &account_sid).await?;
    Ok(Json(caps_json(&account_sid, &caps, used)))
}
