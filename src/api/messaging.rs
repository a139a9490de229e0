//! Handlers for the Messaging v1 API: `/v1/Services` and its sender pools
//! (<https://www.twilio.com/docs/messaging/api/service-resource>).

use super::auth::Caller;
use super::params::{Form, Params, Path, Query};
use super::v1::{self, V1Page};
use super::ApiState;
use crate::domain::messaging_service::{
    validate_scan_message_content, validate_usecase, validate_validity_period, ServiceChanges,
};
use crate::domain::number::{validate_method, validate_url};
use crate::domain::paging::{Cursor, PageRequest};
use crate::error::{Error, Result};
use crate::service::messaging::PoolKind;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

fn page_of(params: &Params) -> Result<PageRequest> {
    PageRequest::parse(
        params.get("Page"),
        params.get("PageSize"),
        params.get("PageToken"),
    )
}

/// Reads the settings of `CreateService` / `UpdateService`.
fn service_changes(params: &Params) -> Result<ServiceChanges> {
    let url = |name: &str| {
        params
            .get(name)
            .map(|raw| validate_url(name, raw))
            .transpose()
    };
    let method = |name: &str| {
        params
            .get(name)
            .map(|raw| validate_method(name, raw))
            .transpose()
    };
    Ok(ServiceChanges {
        friendly_name: params.get("FriendlyName").map(str::to_string),
        inbound_request_url: url("InboundRequestUrl")?,
        inbound_method: method("InboundMethod")?,
        fallback_url: url("FallbackUrl")?,
        fallback_method: method("FallbackMethod")?,
        status_callback: url("StatusCallback")?,
        sticky_sender: params.bool("StickySender")?,
        mms_converter: params.bool("MmsConverter")?,
        smart_encoding: params.bool("SmartEncoding")?,
        scan_message_content: params
            .get("ScanMessageContent")
            .map(validate_scan_message_content)
            .transpose()?,
        fallback_to_long_code: params.bool("FallbackToLongCode")?,
        area_code_geomatch: params.bool("AreaCodeGeomatch")?,
        validity_period: params
            .get("ValidityPeriod")
            .map(validate_validity_period)
            .transpose()?,
        synchronous_validation: params.bool("SynchronousValidation")?,
        usecase: params.get("Usecase").map(validate_usecase).transpose()?,
        use_inbound_webhook_on_number: params.bool("UseInboundWebhookOnNumber")?,
    })
}

pub async fn create_service(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Form(params): Form,
) -> Result<(StatusCode, Json<Value>)> {
    let mut changes = service_changes(&params)?;
    let name = changes.friendly_name.take();
    let service = state
        .app
        .create_service(&caller, name.as_deref(), changes)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(v1::service(&state.public_url, &service, false)),
    ))
}

pub async fn list_service(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Query(params): Query,
) -> Result<Json<Value>> {
    let page = page_of(&params)?;
    let rows = state.app.list_services(&caller, &page).await?;
    let sids: Vec<&str> = rows.iter().map(|s| s.sid.as_str()).collect();
    let registered = state.app.registered_services(&sids).await?;
    let list = V1Page {
        url: format!("{}/v1/Services", state.public_url),
        key: "services",
        filters: Vec::new(),
        page: &page,
    };
    Ok(Json(list.render(
        rows,
        |s| Cursor {
            created: s.date_created,
            sid: s.sid.clone(),
        },
        |s| v1::service(&state.public_url, s, registered.contains(&s.sid)),
    )))
}

pub async fn fetch_service(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path(sid): axum::extract::Path<String>,
) -> Result<Json<Value>> {
    let service = state.app.fetch_service(&caller, &sid, &path).await?;
    let registered = state.app.service_registered(&service.sid).await?;
    Ok(Json(v1::service(&state.public_url, &service, registered)))
}

pub async fn update_service(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path(sid): axum::extract::Path<String>,
    Form(params): Form,
) -> Result<Json<Value>> {
    let changes = service_changes(&params)?;
    let service = state
        .app
        .update_service(&caller, &sid, changes, &path)
        .await?;
    let registered = state.app.service_registered(&service.sid).await?;
    Ok(Json(v1::service(&state.public_url, &service, registered)))
}

pub async fn delete_service(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path(sid): axum::extract::Path<String>,
) -> Result<StatusCode> {
    state.app.delete_service(&caller, &sid, &path).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The pools under a service, by their path segment.
enum Pool {
    Numbers(PoolKind),
    AlphaSenders,
}

fn pool_of(segment: &str, path: &str) -> Result<Pool> {
    match segment {
        "PhoneNumbers" => Ok(Pool::Numbers(PoolKind::PhoneNumber)),
        "ShortCodes" => Ok(Pool::Numbers(PoolKind::ShortCode)),
        "AlphaSenders" => Ok(Pool::AlphaSenders),
        _ => Err(Error::not_found(path)),
    }
}

pub async fn create_pool_member(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path((service_sid, segment)): axum::extract::Path<(String, String)>,
    Form(params): Form,
) -> Result<(StatusCode, Json<Value>)> {
    let body = match pool_of(&segment, &path)? {
        Pool::Numbers(kind) => {
            let param = match kind {
                PoolKind::PhoneNumber => "PhoneNumberSid",
                PoolKind::ShortCode => "ShortCodeSid",
            };
            let pooled = state
                .app
                .add_to_pool(&caller, &service_sid, kind, params.get(param), &path)
                .await?;
            v1::pooled_number(&state.public_url, &pooled, kind == PoolKind::ShortCode)
        }
        Pool::AlphaSenders => {
            let alpha = state
                .app
                .add_alpha_sender(&caller, &service_sid, params.get("AlphaSender"), &path)
                .await?;
            v1::alpha_sender(&state.public_url, &alpha)
        }
    };
    Ok((StatusCode::CREATED, Json(body)))
}

pub async fn list_pool(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path((service_sid, segment)): axum::extract::Path<(String, String)>,
    Query(params): Query,
) -> Result<Json<Value>> {
    let page = page_of(&params)?;
    let base = &state.public_url;
    let url = format!("{base}/v1/Services/{service_sid}/{segment}");
    match pool_of(&segment, &path)? {
        Pool::Numbers(kind) => {
            let rows = state
                .app
                .list_pool(&caller, &service_sid, kind, &page, &path)
                .await?;
            let short_code = kind == PoolKind::ShortCode;
            let list = V1Page {
                url,
                key: if short_code {
                    "short_codes"
                } else {
                    "phone_numbers"
                },
                filters: Vec::new(),
                page: &page,
            };
            Ok(Json(list.render(
                rows,
                |n| Cursor {
                    created: n.added,
                    sid: n.sid.clone(),
                },
                |n| v1::pooled_number(base, n, short_code),
            )))
        }
        Pool::AlphaSenders => {
            let rows = state
                .app
                .list_alpha_senders(&caller, &service_sid, &page, &path)
                .await?;
            let list = V1Page {
                url,
                key: "alpha_senders",
                filters: Vec::new(),
                page: &page,
            };
            Ok(Json(list.render(
                rows,
                |a| Cursor {
                    created: a.date_created,
                    sid: a.sid.clone(),
                },
                |a| v1::alpha_sender(base, a),
            )))
        }
    }
}

pub async fn fetch_pool_member(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path((service_sid, segment, sid)): axum::extract::Path<(String, String, String)>,
) -> Result<Json<Value>> {
    let body = match pool_of(&segment, &path)? {
        Pool::Numbers(kind) => {
            let pooled = state
                .app
                .fetch_pooled(&caller, &service_sid, kind, &sid, &path)
                .await?;
            v1::pooled_number(&state.public_url, &pooled, kind == PoolKind::ShortCode)
        }
        Pool::AlphaSenders => {
            let alpha = state
                .app
                .fetch_alpha_sender(&caller, &service_sid, &sid, &path)
                .await?;
            v1::alpha_sender(&state.public_url, &alpha)
        }
    };
    Ok(Json(body))
}

pub async fn delete_pool_member(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path((service_sid, segment, sid)): axum::extract::Path<(String, String, String)>,
) -> Result<StatusCode> {
    match pool_of(&segment, &path)? {
        Pool::Numbers(kind) => {
            state
                .app
                .remove_from_pool(&caller, &service_sid, kind, &sid, &path)
                .await?
        }
        Pool::AlphaSenders => {
            state
                .app
                .delete_alpha_sender(&caller, &service_sid, &sid, &path)
                .await?
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /admin/short-codes` (warbler's own): `ShortCode`, `AccountSid`.
pub async fn assign_short_code(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Form(params): Form,
) -> Result<(StatusCode, Json<Value>)> {
    let sid = state
        .app
        .assign_short_code(&caller, params.get("ShortCode"), params.get("AccountSid"))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(
            json!({ "sid": sid, "short_code": params.get("ShortCode"), "account_sid": params.get("AccountSid") }),
        ),
    ))
}
