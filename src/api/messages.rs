//! Handlers for `/2010-04-01/Accounts/{AccountSid}/Messages`
//! (<https://www.twilio.com/docs/messaging/api/message-resource>).

use super::auth::Caller;
use super::params::{Form, Params, Path, Query};
use super::render::ListPage;
use super::ApiState;
use crate::domain::message::{IdempotencyKey, Media, Message, MAX_IDEMPOTENCY_KEY};
use crate::domain::paging::{Cursor, PageRequest};
use crate::domain::time::rfc2822;
use crate::error::{Error, Result};
use crate::service::messages::SendRequest;
use crate::store::messages::{MediaFilter, MessageFilter};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

/// The request's idempotency key (`Idempotency-Key`, or Twilio's own
/// `I-Twilio-Idempotency-Token`), with the fingerprint of its parameters.
fn idempotency_key(
    headers: &axum::http::HeaderMap,
    params: &Params,
) -> Result<Option<IdempotencyKey>> {
    let Some(value) = headers
        .get("idempotency-key")
        .or_else(|| headers.get("i-twilio-idempotency-token"))
    else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|key| IdempotencyKey::new(key, params.pairs()))
        .map(Some)
        .ok_or_else(|| {
            Error::invalid(
                20001,
                format!(
                    "The idempotency key must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters"
                ),
            )
        })
}

/// A Message resource as Twilio prints it (keys in alphabetical order, as Twilio's are).
/// Serialized straight from this struct: sending answers one per request, and building a
/// `serde_json::Value` map first costs about as much again.
#[derive(serde::Serialize)]
pub struct MessageJson<'a> {
    account_sid: &'a str,
    api_version: &'static str,
    body: &'a str,
    date_created: String,
    date_sent: Option<String>,
    date_updated: String,
    direction: &'static str,
    error_code: Option<i64>,
    error_message: Option<&'a str>,
    from: Option<&'a str>,
    messaging_service_sid: Option<&'a str>,
    num_media: String,
    num_segments: String,
    price: Option<&'a str>,
    price_unit: &'a str,
    sid: &'a str,
    status: &'static str,
    subresource_uris: SubresourceUris,
    to: &'a str,
    uri: String,
}

#[derive(serde::Serialize)]
struct SubresourceUris {
    media: String,
    feedback: String,
}

impl<'a> MessageJson<'a> {
    pub fn of(m: &'a Message) -> MessageJson<'a> {
        let uri = format!("/2010-04-01/Accounts/{}/Messages/{}", m.account_sid, m.sid);
        MessageJson {
            account_sid: &m.account_sid,
            api_version: "2010-04-01",
            body: &m.body,
            date_created: rfc2822(m.date_created),
            date_sent: m.date_sent.map(rfc2822),
            date_updated: rfc2822(m.date_updated),
            direction: m.direction.as_str(),
            error_code: m.error_code,
            error_message: m.error_message.as_deref(),
            from: m.from.as_deref(),
            messaging_service_sid: m.messaging_service_sid.as_deref(),
            num_media: m.num_media.to_string(),
            num_segments: m.num_segments.to_string(),
            price: m.price.as_deref(),
            price_unit: &m.price_unit,
            sid: &m.sid,
            status: m.status.as_str(),
            subresource_uris: SubresourceUris {
                media: format!("{uri}/Media.json"),
                feedback: format!("{uri}/Feedback.json"),
            },
            to: &m.to,
            uri: format!("{uri}.json"),
        }
    }
}

/// The Message resource as a JSON value, for list pages.
pub fn message_json(m: &Message) -> Value {
    serde_json::to_value(MessageJson::of(m)).unwrap_or(Value::Null)
}

fn media_json(m: &Media) -> Value {
    json!({
        "account_sid": m.account_sid,
        "content_type": m.content_type,
        "date_created": rfc2822(m.date_created),
        "date_updated": rfc2822(m.date_updated),
        "parent_sid": m.message_sid,
        "sid": m.sid,
        "uri": format!("/2010-04-01/Accounts/{}/Messages/{}/Media/{}.json", m.account_sid, m.message_sid, m.sid),
    })
}

pub async fn create_message(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path(account_sid): axum::extract::Path<String>,
    headers: axum::http::HeaderMap,
    Form(params): Form,
) -> Result<axum::response::Response> {
    let idempotency = idempotency_key(&headers, &params)?;
    let request = SendRequest {
        to: params.get("To"),
        from: params.get("From"),
        messaging_service_sid: params.get("MessagingServiceSid"),
        body: params.get("Body"),
        media_urls: params.all("MediaUrl"),
        content_sid: params.get("ContentSid"),
        content_variables: params.get("ContentVariables"),
        status_callback: params.get("StatusCallback").filter(|v| !v.is_empty()),
        validity_period: params.get("ValidityPeriod"),
        smart_encoded: params.bool("SmartEncoded")?,
        send_at: params.get("SendAt").filter(|v| !v.is_empty()),
        schedule_type: params.get("ScheduleType").filter(|v| !v.is_empty()),
        idempotency,
    };
    // Accepted for compatibility; they change nothing here.
    params.bool("ProvideFeedback")?;
    if let Some(attempt) = params.get("Attempt") {
        attempt
            .parse::<u32>()
            .map_err(|_| Error::invalid_parameter("Attempt", attempt))?;
    }
    let message = state
        .app
        .create_message(&caller, &account_sid, request, &path)
        .await?;
    Ok((StatusCode::CREATED, Json(MessageJson::of(&message))).into_response())
}

pub async fn list_message(
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
    let mut filter = MessageFilter {
        to: params
            .get("To")
            .filter(|v| !v.is_empty())
            .map(str::to_string),
        from: params
            .get("From")
            .filter(|v| !v.is_empty())
            .map(str::to_string),
        ..MessageFilter::default()
    };
    if let Some((start, end)) = params.date_day("DateSent")? {
        filter.sent_from = Some(start);
        filter.sent_until = Some(end);
    }
    if let Some((start, _)) = params.date_span("DateSent>")? {
        filter.sent_from = Some(start);
    }
    if let Some((_, end)) = params.date_span("DateSent<")? {
        filter.sent_until = Some(end);
    }
    let rows = state
        .app
        .list_messages(&caller, &account_sid, &filter, &page, &path)
        .await?;
    let list_path = format!("/2010-04-01/Accounts/{account_sid}/Messages.json");
    let mut filters = Vec::new();
    for name in ["To", "From", "DateSent", "DateSent<", "DateSent>"] {
        if let Some(value) = params.get(name) {
            filters.push((name, value.to_string()));
        }
    }
    let list = ListPage {
        path: &list_path,
        key: "messages",
        filters,
        page: &page,
    };
    Ok(Json(list.render(
        rows,
        |m| Cursor {
            created: m.date_created,
            sid: m.sid.clone(),
        },
        message_json,
    )))
}

pub async fn fetch_message(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path((account_sid, sid)): axum::extract::Path<(String, String)>,
) -> Result<axum::response::Response> {
    let message = state
        .app
        .fetch_message(&caller, &account_sid, &sid, &path)
        .await?;
    Ok(Json(MessageJson::of(&message)).into_response())
}

pub async fn update_message(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path((account_sid, sid)): axum::extract::Path<(String, String)>,
    Form(params): Form,
) -> Result<Json<Value>> {
    let message = state
        .app
        .update_message(
            &caller,
            &account_sid,
            &sid,
            params.get("Body"),
            params.get("Status"),
            &path,
        )
        .await?;
    Ok(Json(message_json(&message)))
}

pub async fn delete_message(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path((account_sid, sid)): axum::extract::Path<(String, String)>,
) -> Result<StatusCode> {
    state
        .app
        .delete_message(&caller, &account_sid, &sid, &path)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_media(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path((account_sid, message_sid)): axum::extract::Path<(String, String)>,
    Query(params): Query,
) -> Result<Json<Value>> {
    let page = page_of(&params)?;
    let mut filter = MediaFilter::default();
    if let Some((start, end)) = params.date_day("DateCreated")? {
        filter.created_from = Some(start);
        filter.created_until = Some(end);
    }
    if let Some((start, _)) = params.date_span("DateCreated>")? {
        filter.created_from = Some(start);
    }
    if let Some((_, end)) = params.date_span("DateCreated<")? {
        filter.created_until = Some(end);
    }
    let rows = state
        .app
        .list_media(&caller, &account_sid, &message_sid, &filter, &page, &path)
        .await?;
    let list_path = format!("/2010-04-01/Accounts/{account_sid}/Messages/{message_sid}/Media.json");
    let list = ListPage {
        path: &list_path,
        key: "media_list",
        filters: ["DateCreated", "DateCreated<", "DateCreated>"]
            .into_iter()
            .filter_map(|name| params.get(name).map(|value| (name, value.to_string())))
            .collect(),
        page: &page,
    };
    Ok(Json(list.render(
        rows,
        |m| Cursor {
            created: m.date_created,
            sid: m.sid.clone(),
        },
        media_json,
    )))
}

fn page_of(params: &Params) -> Result<PageRequest> {
    PageRequest::parse(
        params.get("Page"),
        params.get("PageSize"),
        params.get("PageToken"),
    )
}

pub async fn fetch_media(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path((account_sid, message_sid, sid)): axum::extract::Path<(
        String,
        String,
        String,
    )>,
) -> Result<axum::response::Response> {
    let media = state
        .app
        .fetch_media(&caller, &account_sid, &message_sid, &sid, &path)
        .await?;
    // Without `.json` the URI names the media itself: like Twilio, answer with a redirect
    // to where the content is (warbler keeps the URL it was given, not the bytes).
    if !path.ends_with(".json") {
        return Ok((
            axum::http::StatusCode::FOUND,
            [(axum::http::header::LOCATION, media.url.clone())],
        )
            .into_response());
    }
    Ok(Json(media_json(&media)).into_response())
}

pub async fn create_message_feedback(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path((account_sid, message_sid)): axum::extract::Path<(String, String)>,
    Form(params): Form,
) -> Result<Json<Value>> {
    let (outcome, created, updated) = state
        .app
        .create_message_feedback(
            &caller,
            &account_sid,
            &message_sid,
            params.get("Outcome"),
            &path,
        )
        .await?;
    Ok(Json(json!({
        "account_sid": account_sid,
        "message_sid": message_sid,
        "outcome": outcome,
        "date_created": rfc2822(created),
        "date_updated": rfc2822(updated),
        "uri": format!("/2010-04-01/Accounts/{account_sid}/Messages/{message_sid}/Feedback.json"),
    })))
}

pub async fn delete_media(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path((account_sid, message_sid, sid)): axum::extract::Path<(
        String,
        String,
        String,
    )>,
) -> Result<StatusCode> {
    state
        .app
        .delete_media(&caller, &account_sid, &message_sid, &sid, &path)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /admin/simulate/inbound` (warbler's own): `From`, `To`, `Body`.
pub async fn simulate_inbound(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Form(params): Form,
) -> Result<(StatusCode, Json<Value>)> {
    let message = state
        .app
        .receive_simulated_as(
            &caller,
            params.get("From"),
            params.get("To"),
            params.get("Body"),
            &params.all("MediaUrl"),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(message_json(&message))))
}
