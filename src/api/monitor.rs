//! Handlers for Monitor v1 Alerts (<https://www.twilio.com/docs/usage/monitor-alert>):
//! read-only, scoped to the caller's account (a main account also sees its subaccounts').

use super::auth::Caller;
use super::params::{Path, Query};
use super::v1::V1Page;
use super::ApiState;
use crate::domain::alert::Alert;
use crate::domain::paging::{Cursor, PageRequest};
use crate::domain::time::iso8601;
use crate::error::{Error, Result};
use crate::store::webhooks::AlertFilter;
use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

fn alert_json(base: &str, a: &Alert, full: bool) -> Value {
    let mut value = json!({
        "account_sid": a.account_sid,
        "alert_text": a.alert_text,
        "api_version": "2010-04-01",
        "date_created": iso8601(a.date_created),
        "date_generated": iso8601(a.date_created),
        "date_updated": iso8601(a.date_created),
        "error_code": a.error_code,
        "log_level": a.log_level,
        "more_info": format!("https://www.twilio.com/docs/errors/{}", a.error_code),
        "request_method": a.request_method,
        "request_url": a.request_url,
        "resource_sid": a.resource_sid,
        "sid": a.sid,
        "url": format!("{base}/v1/Alerts/{}", a.sid),
        "service_sid": a.service_sid,
    });
    if full {
        if let Some(object) = value.as_object_mut() {
            object.insert("request_variables".into(), json!(a.request_variables));
            object.insert("request_headers".into(), json!(a.request_headers));
            object.insert("response_body".into(), json!(a.response_body));
            object.insert("response_headers".into(), json!(a.response_headers));
        }
    }
    value
}

pub async fn list_alert(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Query(params): Query,
) -> Result<Json<Value>> {
    let page = PageRequest::parse(
        params.get("Page"),
        params.get("PageSize"),
        params.get("PageToken"),
    )?;
    let log_level = match params.get("LogLevel").filter(|v| !v.is_empty()) {
        Some(level @ ("error" | "warning" | "notice" | "debug")) => Some(level.to_string()),
        Some(other) => return Err(Error::invalid_parameter("LogLevel", other)),
        None => None,
    };
    let filter = AlertFilter {
        log_level,
        start: params.date_span("StartDate")?.map(|(start, _)| start),
        end: params.date_span("EndDate")?.map(|(_, end)| end),
    };
    let alerts = state.app.list_alerts(&caller, &filter, &page).await?;
    let base = state.public_url.clone();
    let list = V1Page {
        url: format!("{base}/v1/Alerts"),
        key: "alerts",
        filters: ["LogLevel", "StartDate", "EndDate"]
            .into_iter()
            .filter_map(|name| params.get(name).map(|value| (name, value.to_string())))
            .collect(),
        page: &page,
    };
    Ok(Json(list.render(
        alerts,
        |a| Cursor {
            created: a.date_created,
            sid: a.sid.clone(),
        },
        |a| alert_json(&base, a, false),
    )))
}

pub async fn fetch_alert(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path(sid): axum::extract::Path<String>,
) -> Result<Json<Value>> {
    let alert = state.app.fetch_alert(&caller, &sid, &path).await?;
    Ok(Json(alert_json(&state.public_url, &alert, true)))
}

/// `GET /admin/carriers` (warbler's own, main auth token): the SMPP routes, how many of their
/// sessions are bound, and their counters since start.
pub async fn list_carrier_routes(
    State(state): State<ApiState>,
    Caller(caller): Caller,
) -> Result<Json<Value>> {
    let routes = state.app.carrier_routes(&caller)?;
    Ok(Json(json!({ "routes": routes })))
}

/// Prometheus's text exposition format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

fn prometheus_text(body: String) -> axum::response::Response {
    use axum::response::IntoResponse;
    ([(axum::http::header::CONTENT_TYPE, PROMETHEUS_TEXT)], body).into_response()
}

/// `GET /metrics` on the API port (warbler's own, main auth token): Prometheus text.
pub async fn fetch_metrics(
    State(state): State<ApiState>,
    Caller(caller): Caller,
) -> Result<axum::response::Response> {
    Ok(prometheus_text(state.app.metrics_for(&caller).await?))
}

/// `GET /metrics` on `metrics_listen`: the same, without credentials (that address is the
/// operator's to protect).
pub async fn fetch_metrics_unauthenticated(
    State(app): State<crate::service::App>,
) -> Result<axum::response::Response> {
    Ok(prometheus_text(app.render_metrics().await?))
}
