//! Handlers for `/2010-04-01/Accounts` (<https://www.twilio.com/docs/iam/api/account>).

use super::auth::Caller;
use super::params::{Form, Path, Query};
use super::render::{self, ListPage};
use super::ApiState;
use crate::domain::account::AccountStatus;
use crate::domain::paging::{Cursor, PageRequest};
use crate::domain::test_credentials::TestCredentials;
use crate::domain::time::iso8601;
use crate::error::Result;
use crate::service::accounts::AccountUpdate;
use crate::store::accounts::AccountFilter;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

pub async fn create_account(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Form(params): Form,
) -> Result<(StatusCode, Json<Value>)> {
    let account = state
        .app
        .create_subaccount(&caller, params.get("FriendlyName"))
        .await?;
    Ok((StatusCode::CREATED, Json(render::account(&account))))
}

pub async fn list_account(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Query(params): Query,
) -> Result<Json<Value>> {
    let page = PageRequest::parse(
        params.get("Page"),
        params.get("PageSize"),
        params.get("PageToken"),
    )?;
    let filter = AccountFilter {
        friendly_name: params.get("FriendlyName").map(str::to_string),
        status: params.parsed("Status", AccountStatus::parse)?,
    };
    let rows = state.app.list_accounts(&caller, &filter, &page).await?;
    let mut filters = Vec::new();
    if let Some(name) = &filter.friendly_name {
        filters.push(("FriendlyName", name.clone()));
    }
    if let Some(status) = filter.status {
        filters.push(("Status", status.as_str().to_string()));
    }
    let list = ListPage {
        path: "/2010-04-01/Accounts.json",
        key: "accounts",
        filters,
        page: &page,
    };
    Ok(Json(list.render(
        rows,
        |a| Cursor {
            created: a.date_created,
            sid: a.sid.clone(),
        },
        render::account,
    )))
}

pub async fn fetch_account(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path(sid): axum::extract::Path<String>,
) -> Result<Json<Value>> {
    let account = state.app.fetch_account(&caller, &sid, &path).await?;
    Ok(Json(render::account(&account)))
}

pub async fn update_account(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path(sid): axum::extract::Path<String>,
    Form(params): Form,
) -> Result<Json<Value>> {
    let update = AccountUpdate {
        friendly_name: params.get("FriendlyName").map(str::to_string),
        status: params.parsed("Status", AccountStatus::parse)?,
    };
    let account = state
        .app
        .update_account(&caller, &sid, update, &path)
        .await?;
    Ok(Json(render::account(&account)))
}

/// An account's test credentials as `/warbler/v1/Accounts/{Sid}/TestCredentials` shows them.
fn test_credentials_json(state: &ApiState, test: &TestCredentials) -> Value {
    json!({
        "account_sid": test.account_sid,
        "test_account_sid": test.test_account_sid,
        "test_auth_token": test.test_auth_token,
        "date_created": iso8601(test.date_created),
        "date_updated": iso8601(test.date_updated),
        "url": format!(
            "{}/warbler/v1/Accounts/{}/TestCredentials",
            state.public_url, test.account_sid
        ),
    })
}

/// `GET /warbler/v1/Accounts/{AccountSid}/TestCredentials` (made when first read; Twilio
/// shows them in its console).
pub async fn fetch_test_credentials(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path(account_sid): axum::extract::Path<String>,
) -> Result<Json<Value>> {
    let test = state
        .app
        .test_credentials(&caller, &account_sid, &path)
        .await?;
    Ok(Json(test_credentials_json(&state, &test)))
}

/// `POST /warbler/v1/Accounts/{AccountSid}/TestCredentials`: a new test auth token.
pub async fn rotate_test_credentials(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path(account_sid): axum::extract::Path<String>,
) -> Result<Json<Value>> {
    let test = state
        .app
        .rotate_test_credentials(&caller, &account_sid, &path)
        .await?;
    Ok(Json(test_credentials_json(&state, &test)))
}

fn sandbox_json(state: &ApiState, account: &crate::domain::account::Account) -> Value {
    json!({
        "account_sid": account.sid,
        "sandbox": account.sandbox,
        "date_updated": iso8601(account.date_updated),
        "url": format!("{}/warbler/v1/Accounts/{}/Sandbox", state.public_url, account.sid),
    })
}

/// `GET /warbler/v1/Accounts/{AccountSid}/Sandbox`.
pub async fn fetch_sandbox(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path(account_sid): axum::extract::Path<String>,
) -> Result<Json<Value>> {
    let account = state.app.sandbox(&caller, &account_sid, &path).await?;
    Ok(Json(sandbox_json(&state, &account)))
}

/// `POST /warbler/v1/Accounts/{AccountSid}/Sandbox` `Sandbox=true|false` (the parent only).
pub async fn update_sandbox(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path(account_sid): axum::extract::Path<String>,
    Form(params): Form,
) -> Result<Json<Value>> {
    let sandbox = params
        .bool("Sandbox")?
        .ok_or_else(|| crate::error::Error::missing_parameter("Sandbox"))?;
    let account = state
        .app
        .set_sandbox(&caller, &account_sid, sandbox, &path)
        .await?;
    Ok(Json(sandbox_json(&state, &account)))
}
