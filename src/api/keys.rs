//! Handlers for `/2010-04-01/Accounts/{AccountSid}/Keys`
//! (<https://www.twilio.com/docs/iam/api-keys/key-resource-v2010>).

use super::auth::Caller;
use super::params::{Form, Path, Query};
use super::render::{self, ListPage};
use super::ApiState;
use crate::domain::paging::{Cursor, PageRequest};
use crate::error::Result;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::Value;

type AccountPath = axum::extract::Path<String>;
type KeyPath = axum::extract::Path<(String, String)>;

pub async fn create_new_key(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path(account_sid): AccountPath,
    Form(params): Form,
) -> Result<(StatusCode, Json<Value>)> {
    let (key, secret) = state
        .app
        .create_key(&caller, &account_sid, params.get("FriendlyName"), &path)
        .await?;
    Ok((StatusCode::CREATED, Json(render::new_key(&key, &secret))))
}

pub async fn list_key(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path(account_sid): AccountPath,
    Query(params): Query,
) -> Result<Json<Value>> {
    let page = PageRequest::parse(
        params.get("Page"),
        params.get("PageSize"),
        params.get("PageToken"),
    )?;
    let rows = state
        .app
        .list_keys(&caller, &account_sid, &page, &path)
        .await?;
    let list_path = format!("/2010-04-01/Accounts/{account_sid}/Keys.json");
    let list = ListPage {
        path: &list_path,
        key: "keys",
        filters: Vec::new(),
        page: &page,
    };
    Ok(Json(list.render(
        rows,
        |k| Cursor {
            created: k.date_created,
            sid: k.sid.clone(),
        },
        render::key,
    )))
}

pub async fn fetch_key(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path((account_sid, sid)): KeyPath,
) -> Result<Json<Value>> {
    let key = state
        .app
        .fetch_key(&caller, &account_sid, &sid, &path)
        .await?;
    Ok(Json(render::key(&key)))
}

pub async fn update_key(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path((account_sid, sid)): KeyPath,
    Form(params): Form,
) -> Result<Json<Value>> {
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
    Ok(Json(render::key(&key)))
}

pub async fn delete_key(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path((account_sid, sid)): KeyPath,
) -> Result<StatusCode> {
    state
        .app
        .delete_key(&caller, &account_sid, &sid, &path)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
