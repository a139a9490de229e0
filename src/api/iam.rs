//! Handlers for IAM v1 API keys (`/v1/Keys` on iam.twilio.com,
//! <https://www.twilio.com/docs/iam/api-keys/keys-in-console>): the same keys as the 2010
//! `/Accounts/{AccountSid}/Keys` resource, named by `AccountSid` on create and list and by
//! their SID alone otherwise. Dates are RFC 2822 as in the spec; lists use the v1 `meta` envelope.

use super::auth::Caller;
use super::params::{Form, Params, Path, Query};
use super::v1::V1Page;
use super::ApiState;
use crate::domain::credential::ApiKey;
use crate::domain::paging::{Cursor, PageRequest};
use crate::domain::time::rfc2822;
use crate::error::{Error, Result};
use crate::service::Operation;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

type KeyPath = axum::extract::Path<String>;

/// `iam.v1.key`: no `account_sid`; `policy` is null for a standard key.
fn key_json(key: &ApiKey) -> Value {
    json!({
        "sid": key.sid,
        "friendly_name": key.friendly_name,
        "date_created": rfc2822(key.date_created),
        "date_updated": rfc2822(key.date_updated),
        "policy": null,
    })
}

/// `iam.v1.get_keys`, a list item.
fn listed_key_json(key: &ApiKey) -> Value {
    json!({
        "sid": key.sid,
        "friendly_name": key.friendly_name,
        "date_created": rfc2822(key.date_created),
        "date_updated": rfc2822(key.date_updated),
        "flags": [],
    })
}

/// Restricted keys would need warbler to enforce Twilio's permission policies: creating a key
/// with full access in their place would silently grant more than was asked, so they are refused.
fn refuse_restricted(params: &Params) -> Result<()> {
    match params.get("KeyType") {
        None | Some("") => {}
        Some("restricted") => return Err(restricted_unsupported()),
        Some(other) => return Err(Error::invalid_parameter("KeyType", other)),
    }
    if params.get("Policy").is_some_and(|p| !p.is_empty()) {
        return Err(restricted_unsupported());
    }
    Ok(())
}

fn restricted_unsupported() -> Error {
    Error::invalid(
        20001,
        "Restricted API keys (KeyType=restricted, Policy) are not supported by warbler",
    )
}

fn required<'a>(params: &'a Params, name: &str) -> Result<&'a str> {
    params
        .get(name)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Error::missing_parameter(name))
}

pub async fn create_new_key(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    Form(params): Form,
) -> Result<(StatusCode, Json<Value>)> {
    let account_sid = required(&params, "AccountSid")?;
    refuse_restricted(&params)?;
    let (key, secret) = state
        .app
        .create_key(&caller, account_sid, params.get("FriendlyName"), &path)
        .await?;
    let mut body = key_json(&key);
    body["secret"] = Value::String(secret);
    Ok((StatusCode::CREATED, Json(body)))
}

pub async fn list_get_keys(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    Query(params): Query,
) -> Result<Json<Value>> {
    let account_sid = params
        .get("AccountSid")
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Error::invalid(20001, "Missing required parameter AccountSid"))?;
    let page = PageRequest::parse(
        params.get("Page"),
        params.get("PageSize"),
        params.get("PageToken"),
    )?;
    let rows = state
        .app
        .list_keys(&caller, account_sid, &page, &path)
        .await?;
    let list = V1Page {
        url: format!("{}/v1/Keys", state.public_url),
        key: "keys",
        filters: vec![("AccountSid", account_sid.to_string())],
        page: &page,
    };
    Ok(Json(list.render(
        rows,
        |k| Cursor {
            created: k.date_created,
            sid: k.sid.clone(),
        },
        listed_key_json,
    )))
}

pub async fn fetch_key(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path(sid): KeyPath,
) -> Result<Json<Value>> {
    let account_sid = state
        .app
        .key_account(&caller, &sid, Operation::FetchKey, &path)
        .await?;
    let key = state
        .app
        .fetch_key(&caller, &account_sid, &sid, &path)
        .await?;
    Ok(Json(key_json(&key)))
}

pub async fn update_key(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path(sid): KeyPath,
    Form(params): Form,
) -> Result<Json<Value>> {
    let account_sid = state
        .app
        .key_account(&caller, &sid, Operation::UpdateKey, &path)
        .await?;
    if params.get("Policy").is_some_and(|p| !p.is_empty()) {
        return Err(restricted_unsupported());
    }
    let key = state
        .app
        .rename_key(
            &caller,
            &account_sid,
            &sid,
            params.get("FriendlyName"),
            &path,
        )
        .await?;
    Ok(Json(key_json(&key)))
}

pub async fn delete_key(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path(sid): KeyPath,
) -> Result<StatusCode> {
    let account_sid = state
        .app
        .key_account(&caller, &sid, Operation::DeleteKey, &path)
        .await?;
    state
        .app
        .delete_key(&caller, &account_sid, &sid, &path)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
