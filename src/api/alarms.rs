//! Handlers for warbler's Alarms (`/warbler/v1/Alarms`): rules on an account's delivery
//! errors, and the list of their firings.

use super::auth::Caller;
use super::params::{Form, Params, Path, Query};
use super::v1::V1Page;
use super::ApiState;
use crate::domain::alarm::{format_threshold, Alarm, AlarmFiring};
use crate::domain::paging::{Cursor, PageRequest};
use crate::domain::time::iso8601;
use crate::error::Result;
use crate::service::alarms::AlarmRequest;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

fn alarm_json(base: &str, a: &Alarm) -> Value {
    let url = format!("{base}/warbler/v1/Alarms/{}", a.sid);
    json!({
        "sid": a.sid,
        "account_sid": a.account_sid,
        "friendly_name": a.friendly_name,
        "error_code": a.error_code.map(|c| c.to_string()).unwrap_or_else(|| "any".into()),
        "scope_sid": a.scope_sid,
        "threshold_type": a.threshold_type.as_str(),
        "threshold": format_threshold(a.threshold),
        "window_minutes": a.window_minutes,
        "webhook_url": a.webhook_url,
        "webhook_method": a.webhook_method,
        "emails": a.emails,
        "state": a.state.as_str(),
        "date_state_changed": a.date_state_changed.map(iso8601),
        "date_created": iso8601(a.date_created),
        "date_updated": iso8601(a.date_updated),
        "links": { "firings": format!("{url}/Firings") },
        "url": url,
    })
}

fn firing_json(f: &AlarmFiring) -> Value {
    json!({
        "sid": f.sid,
        "alarm_sid": f.alarm_sid,
        "account_sid": f.account_sid,
        "state": f.state,
        "value": f.value,
        "errors": f.counts.errors,
        "messages": f.counts.messages,
        "email_status": f.email_status,
        "email_error": f.email_error,
        "date_created": iso8601(f.date_created),
    })
}

fn alarm_request(params: &Params) -> AlarmRequest<'_> {
    AlarmRequest {
        friendly_name: params.get("FriendlyName"),
        error_code: params.get("ErrorCode"),
        scope_sid: params.get("ScopeSid"),
        threshold: params.get("Threshold"),
        threshold_type: params.get("ThresholdType"),
        window_minutes: params.get("WindowMinutes"),
        webhook_url: params.get("WebhookUrl"),
        webhook_method: params.get("WebhookMethod"),
        emails: params.get("Email").map(|_| params.all("Email")),
    }
}

fn page_of(params: &Params) -> Result<PageRequest> {
    PageRequest::parse(
        params.get("Page"),
        params.get("PageSize"),
        params.get("PageToken"),
    )
}

pub async fn create_alarm(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    Form(params): Form,
) -> Result<(StatusCode, Json<Value>)> {
    let alarm = state
        .app
        .create_alarm(&caller, &alarm_request(&params), &path)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(alarm_json(&state.public_url, &alarm)),
    ))
}

pub async fn list_alarm(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    Query(params): Query,
) -> Result<Json<Value>> {
    let page = page_of(&params)?;
    let alarms = state.app.list_alarms(&caller, &page, &path).await?;
    let base = state.public_url.clone();
    let list = V1Page {
        url: format!("{base}/warbler/v1/Alarms"),
        key: "alarms",
        filters: Vec::new(),
        page: &page,
    };
    Ok(Json(list.render(
        alarms,
        |a| Cursor {
            created: a.date_created,
            sid: a.sid.clone(),
        },
        |a| alarm_json(&base, a),
    )))
}

pub async fn fetch_alarm(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path(sid): axum::extract::Path<String>,
) -> Result<Json<Value>> {
    let alarm = state.app.fetch_alarm(&caller, &sid, &path).await?;
    Ok(Json(alarm_json(&state.public_url, &alarm)))
}

pub async fn update_alarm(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path(sid): axum::extract::Path<String>,
    Form(params): Form,
) -> Result<Json<Value>> {
    let alarm = state
        .app
        .update_alarm(&caller, &sid, &alarm_request(&params), &path)
        .await?;
    Ok(Json(alarm_json(&state.public_url, &alarm)))
}

pub async fn delete_alarm(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path(sid): axum::extract::Path<String>,
) -> Result<StatusCode> {
    state.app.delete_alarm(&caller, &sid, &path).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_alarm_firing(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path(sid): axum::extract::Path<String>,
    Query(params): Query,
) -> Result<Json<Value>> {
    let page = page_of(&params)?;
    let firings = state
        .app
        .list_alarm_firings(&caller, &sid, &page, &path)
        .await?;
    let list = V1Page {
        url: format!("{}/warbler/v1/Alarms/{sid}/Firings", state.public_url),
        key: "firings",
        filters: Vec::new(),
        page: &page,
    };
    Ok(Json(list.render(
        firings,
        |f| Cursor {
            created: f.date_created,
            sid: f.sid.clone(),
        },
        firing_json,
    )))
}
