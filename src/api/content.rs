//! Handlers for Content API templates (`/v1/Content` on content.twilio.com,
//! <https://www.twilio.com/docs/content/content-api-resources>): the caller's account's
//! `twilio/text` and `twilio/media` templates. Create takes a JSON body, as the SDKs send it;
//! dates are ISO 8601 and lists use the v1 `meta` envelope.

use super::auth::Caller;
use super::params::{JsonBody, Path, Query};
use super::v1::V1Page;
use super::ApiState;
use crate::domain::content::ContentTemplate;
use crate::domain::paging::{Cursor, PageRequest};
use crate::domain::time::iso8601;
use crate::error::{Error, Result};
use crate::service::content::NewContent;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

fn content_json(base: &str, c: &ContentTemplate) -> Value {
    let url = format!("{base}/v1/Content/{}", c.sid);
    json!({
        "sid": c.sid,
        "account_sid": c.account_sid,
        "friendly_name": c.friendly_name,
        "language": c.language,
        "variables": c.variables,
        "types": c.types.to_json(),
        "url": url,
        "date_created": iso8601(c.date_created),
        "date_updated": iso8601(c.date_updated),
        "links": {
            "approval_create": format!("{url}/ApprovalRequests/whatsapp"),
            "approval_fetch": format!("{url}/ApprovalRequests"),
        },
    })
}

/// A string member of the body, if present and not null.
fn text<'a>(body: &'a serde_json::Map<String, Value>, name: &str) -> Result<Option<&'a str>> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(Error::invalid_parameter(name, &other.to_string())),
    }
}

pub async fn create_content(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Value>)> {
    let request = NewContent {
        friendly_name: text(&body, "friendly_name")?,
        language: text(&body, "language")?,
        variables: body.get("variables"),
        types: body.get("types").filter(|t| !t.is_null()),
    };
    let template = state.app.create_content(&caller, request, &path).await?;
    Ok((
        StatusCode::CREATED,
        Json(content_json(&state.public_url, &template)),
    ))
}

pub async fn list_content(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    Query(params): Query,
) -> Result<Json<Value>> {
    let page = PageRequest::parse(
        params.get("Page"),
        params.get("PageSize"),
        params.get("PageToken"),
    )?;
    let rows = state.app.list_content(&caller, &page, &path).await?;
    let base = state.public_url.clone();
    let list = V1Page {
        url: format!("{base}/v1/Content"),
        key: "contents",
        filters: Vec::new(),
        page: &page,
    };
    Ok(Json(list.render(
        rows,
        |c| Cursor {
            created: c.date_created,
            sid: c.sid.clone(),
        },
        |c| content_json(&base, c),
    )))
}

pub async fn fetch_content(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path(sid): axum::extract::Path<String>,
) -> Result<Json<Value>> {
    let template = state.app.fetch_content(&caller, &sid, &path).await?;
    Ok(Json(content_json(&state.public_url, &template)))
}

pub async fn delete_content(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path(sid): axum::extract::Path<String>,
) -> Result<StatusCode> {
    state.app.delete_content(&caller, &sid, &path).await?;
    Ok(StatusCode::NO_CONTENT)
}
