//! Handlers for US A2P 10DLC registration (messaging.twilio.com v1): Brand registrations
//! (`/v1/a2p/BrandRegistrations`) and a service's campaign (`/v1/Services/{Sid}/Compliance/
//! Usa2p`), plus warbler's own: the operator's review queue (`/warbler/v1/A2p/Reviews`) and an
//! account's event sink (`/warbler/v1/Accounts/{AccountSid}/A2pEventSink`).

use super::auth::Caller;
use super::params::{Form, Params, Path, Query};
use super::v1::V1Page;
use super::ApiState;
use crate::domain::a2p::{review_errors, Brand, BrandStatus, Campaign, CampaignDetails};
use crate::domain::number::validate_url;
use crate::domain::paging::{Cursor, PageRequest};
use crate::domain::time::iso8601;
use crate::error::{Error, Result};
use crate::service::a2p::{BrandRequest, CampaignRequest, Decision, Registration, ReviewRequest};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

fn brand_json(base: &str, b: &Brand) -> Value {
    let url = format!("{base}/v1/a2p/BrandRegistrations/{}", b.sid);
    let approved = matches!(b.status, BrandStatus::Approved | BrandStatus::Suspended);
    json!({
        "sid": b.sid,
        "account_sid": b.account_sid,
        "customer_profile_bundle_sid": b.customer_profile_bundle_sid,
        "a2p_profile_bundle_sid": b.a2p_profile_bundle_sid,
        "date_created": iso8601(b.date_created),
        "date_updated": iso8601(b.date_updated),
        "brand_type": b.brand_type,
        "status": b.status.as_str(),
        "tcr_id": b.tcr_id,
        "failure_reason": b.failure_reason,
        "errors": review_errors(b.failure_code, b.failure_reason.as_deref()),
        "url": url,
        "brand_score": null,
        "brand_feedback": null,
        "identity_status": if approved { "VERIFIED" } else { "UNVERIFIED" },
        "russell_3000": false,
        "government_entity": false,
        "tax_exempt_status": null,
        "skip_automatic_sec_vet": b.skip_automatic_sec_vet,
        "mock": b.mock,
        "links": {
            "brand_vettings": format!("{url}/Vettings"),
            "brand_registration_otps": format!("{url}/SmsOtp"),
        },
    })
}

fn campaign_json(base: &str, c: &Campaign) -> Value {
    let d = &c.details;
    json!({
        "sid": c.sid,
        "account_sid": c.account_sid,
        "brand_registration_sid": c.brand_registration_sid,
        "messaging_service_sid": c.messaging_service_sid,
        "description": d.description,
        "message_samples": d.message_samples,
        "us_app_to_person_usecase": c.usecase,
        "has_embedded_links": d.has_embedded_links,
        "has_embedded_phone": d.has_embedded_phone,
        "subscriber_opt_in": d.subscriber_opt_in.unwrap_or(false),
        "age_gated": d.age_gated,
        "direct_lending": d.direct_lending,
        "campaign_status": c.status.as_str(),
        "campaign_id": c.campaign_id,
        "is_externally_registered": false,
        "rate_limits": null,
        "message_flow": d.message_flow,
        "opt_in_message": d.opt_in_message,
        "opt_out_message": d.opt_out_message,
        "help_message": d.help_message,
        "opt_in_keywords": d.opt_in_keywords,
        "opt_out_keywords": d.opt_out_keywords,
        "help_keywords": d.help_keywords,
        "privacy_policy_url": d.privacy_policy_url,
        "terms_and_conditions_url": d.terms_and_conditions_url,
        "date_created": iso8601(c.date_created),
        "date_updated": iso8601(c.date_updated),
        "url": format!(
            "{base}/v1/Services/{}/Compliance/Usa2p/{}",
            c.messaging_service_sid, c.sid
        ),
        "mock": c.mock,
        "errors": review_errors(c.failure_code, c.failure_reason.as_deref()),
    })
}

fn page_of(params: &Params) -> Result<PageRequest> {
    PageRequest::parse(
        params.get("Page"),
        params.get("PageSize"),
        params.get("PageToken"),
    )
}

fn required_bool(params: &Params, name: &str) -> Result<bool> {
    params
        .bool(name)?
        .ok_or_else(|| Error::missing_parameter(name))
}

fn required_text(params: &Params, name: &str) -> Result<String> {
    params
        .get(name)
        .map(str::to_string)
        .ok_or_else(|| Error::missing_parameter(name))
}

fn optional_url(params: &Params, name: &str) -> Result<Option<String>> {
    Ok(params
        .get(name)
        .map(|raw| validate_url(name, raw))
        .transpose()?
        .flatten())
}

fn owned(values: Vec<&str>) -> Vec<String> {
    values.into_iter().map(str::to_string).collect()
}

/// The campaign text of `CreateUsAppToPerson` (`create`) or `UpdateUsAppToPerson`, whose
/// required parameters differ.
fn campaign_details(params: &Params, create: bool) -> Result<CampaignDetails> {
    let samples = params.all("MessageSamples");
    if samples.is_empty() {
        return Err(Error::missing_parameter("MessageSamples"));
    }
    Ok(CampaignDetails {
        description: required_text(params, "Description")?,
        message_flow: required_text(params, "MessageFlow")?,
        message_samples: owned(samples),
        has_embedded_links: required_bool(params, "HasEmbeddedLinks")?,
        has_embedded_phone: required_bool(params, "HasEmbeddedPhone")?,
        subscriber_opt_in: params.bool("SubscriberOptIn")?,
        age_gated: if create {
            params.bool("AgeGated")?.unwrap_or(false)
        } else {
            required_bool(params, "AgeGated")?
        },
        direct_lending: if create {
            params.bool("DirectLending")?.unwrap_or(false)
        } else {
            required_bool(params, "DirectLending")?
        },
        opt_in_message: params.get("OptInMessage").map(str::to_string),
        opt_out_message: params.get("OptOutMessage").map(str::to_string),
        help_message: params.get("HelpMessage").map(str::to_string),
        opt_in_keywords: owned(params.all("OptInKeywords")),
        opt_out_keywords: owned(params.all("OptOutKeywords")),
        help_keywords: owned(params.all("HelpKeywords")),
        privacy_policy_url: optional_url(params, "PrivacyPolicyUrl")?,
        terms_and_conditions_url: optional_url(params, "TermsAndConditionsUrl")?,
    })
}

pub async fn create_brand_registrations(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Form(params): Form,
) -> Result<(StatusCode, Json<Value>)> {
    let request = BrandRequest {
        customer_profile_bundle_sid: params.get("CustomerProfileBundleSid"),
        a2p_profile_bundle_sid: params.get("A2PProfileBundleSid"),
        brand_type: params.get("BrandType"),
        mock: params.bool("Mock")?,
        skip_automatic_sec_vet: params.bool("SkipAutomaticSecVet")?,
    };
    let brand = state.app.create_brand(&caller, request).await?;
    Ok((
        StatusCode::CREATED,
        Json(brand_json(&state.public_url, &brand)),
    ))
}

pub async fn list_brand_registrations(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Query(params): Query,
) -> Result<Json<Value>> {
    let page = page_of(&params)?;
    let rows = state.app.list_brands(&caller, &page).await?;
    let base = state.public_url.clone();
    let list = V1Page {
        url: format!("{base}/v1/a2p/BrandRegistrations"),
        key: "data",
        filters: Vec::new(),
        page: &page,
    };
    Ok(Json(list.render(
        rows,
        |b| Cursor {
            created: b.date_created,
            sid: b.sid.clone(),
        },
        |b| brand_json(&base, b),
    )))
}

pub async fn fetch_brand_registrations(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path(sid): axum::extract::Path<String>,
) -> Result<Json<Value>> {
    let brand = state.app.fetch_brand(&caller, &sid, &path).await?;
    Ok(Json(brand_json(&state.public_url, &brand)))
}

/// Twilio answers 202: the brand is submitted again.
pub async fn update_brand_registrations(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path(sid): axum::extract::Path<String>,
) -> Result<(StatusCode, Json<Value>)> {
    let brand = state.app.resubmit_brand(&caller, &sid, &path).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(brand_json(&state.public_url, &brand)),
    ))
}

pub async fn create_us_app_to_person(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path(service_sid): axum::extract::Path<String>,
    Form(params): Form,
) -> Result<(StatusCode, Json<Value>)> {
    let request = CampaignRequest {
        brand_registration_sid: params.get("BrandRegistrationSid"),
        usecase: params.get("UsAppToPersonUsecase"),
        details: campaign_details(&params, true)?,
    };
    let campaign = state
        .app
        .create_campaign(&caller, &service_sid, request, &path)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(campaign_json(&state.public_url, &campaign)),
    ))
}

pub async fn list_us_app_to_person(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path(service_sid): axum::extract::Path<String>,
    Query(params): Query,
) -> Result<Json<Value>> {
    let page = page_of(&params)?;
    let mut rows = state
        .app
        .list_campaigns(&caller, &service_sid, &path)
        .await?;
    // At most one campaign per service: only the first page holds it.
    if page.page > 0 || page.after.is_some() {
        rows.clear();
    }
    let base = state.public_url.clone();
    let list = V1Page {
        url: format!("{base}/v1/Services/{service_sid}/Compliance/Usa2p"),
        key: "compliance",
        filters: Vec::new(),
        page: &page,
    };
    Ok(Json(list.render(
        rows,
        |c| Cursor {
            created: c.date_created,
            sid: c.sid.clone(),
        },
        |c| campaign_json(&base, c),
    )))
}

pub async fn fetch_us_app_to_person(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path((service_sid, sid)): axum::extract::Path<(String, String)>,
) -> Result<Json<Value>> {
    let campaign = state
        .app
        .fetch_campaign(&caller, &service_sid, &sid, &path)
        .await?;
    Ok(Json(campaign_json(&state.public_url, &campaign)))
}

pub async fn update_us_app_to_person(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path((service_sid, sid)): axum::extract::Path<(String, String)>,
    Form(params): Form,
) -> Result<Json<Value>> {
    let details = campaign_details(&params, false)?;
    let campaign = state
        .app
        .update_campaign(&caller, &service_sid, &sid, details, &path)
        .await?;
    Ok(Json(campaign_json(&state.public_url, &campaign)))
}

pub async fn delete_us_app_to_person(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path((service_sid, sid)): axum::extract::Path<(String, String)>,
) -> Result<StatusCode> {
    state
        .app
        .delete_campaign(&caller, &service_sid, &sid, &path)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn fetch_us_app_to_person_usecase(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path(service_sid): axum::extract::Path<String>,
    Query(params): Query,
) -> Result<Json<Value>> {
    let usecases = state
        .app
        .campaign_usecases(
            &caller,
            &service_sid,
            params.get("BrandRegistrationSid"),
            &path,
        )
        .await?;
    let items: Vec<Value> = usecases
        .iter()
        .map(|u| {
            json!({
                "code": u.code,
                "name": u.name,
                "description": u.description,
                "post_approval_required": u.post_approval_required,
            })
        })
        .collect();
    Ok(Json(json!({ "us_app_to_person_usecases": items })))
}

fn sink_json(state: &ApiState, account_sid: &str, url: Option<String>) -> Value {
    json!({
        "account_sid": account_sid,
        "url": url,
        "format": "application/cloudevents+json (CloudEvents 1.0, one event per request)",
        "self": format!("{}/warbler/v1/Accounts/{account_sid}/A2pEventSink", state.public_url),
    })
}

/// `GET /warbler/v1/Accounts/{AccountSid}/A2pEventSink`.
pub async fn fetch_a2p_event_sink(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path(account_sid): axum::extract::Path<String>,
) -> Result<Json<Value>> {
    let url = state
        .app
        .a2p_event_sink(&caller, &account_sid, &path)
        .await?;
    Ok(Json(sink_json(&state, &account_sid, url)))
}

/// `POST /warbler/v1/Accounts/{AccountSid}/A2pEventSink` `Url=…` (empty: no events).
pub async fn update_a2p_event_sink(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path(account_sid): axum::extract::Path<String>,
    Form(params): Form,
) -> Result<Json<Value>> {
    let raw = params
        .get("Url")
        .ok_or_else(|| Error::missing_parameter("Url"))?;
    let url = validate_url("Url", raw)?;
    let url = state
        .app
        .set_a2p_event_sink(&caller, &account_sid, url, &path)
        .await?;
    Ok(Json(sink_json(&state, &account_sid, url)))
}

fn registration_json(base: &str, registration: &Registration) -> Value {
    match registration {
        Registration::Brand(b) => {
            let mut item = brand_json(base, b);
            item["type"] = "brand".into();
            item
        }
        Registration::Campaign(c) => {
            let mut item = campaign_json(base, c);
            item["type"] = "campaign".into();
            item
        }
    }
}

/// `GET /warbler/v1/A2p/Reviews`: brands and campaigns awaiting the operator, oldest first.
pub async fn list_a2p_registration_reviews(
    State(state): State<ApiState>,
    Caller(caller): Caller,
) -> Result<Json<Value>> {
    let pending = state.app.list_pending_registrations(&caller).await?;
    let items: Vec<Value> = pending
        .iter()
        .map(|p| registration_json(&state.public_url, p))
        .collect();
    Ok(Json(json!({ "reviews": items })))
}

/// `POST /warbler/v1/A2p/Reviews/{Sid}` `Decision=approve|reject|suspend`, `FailureReason`,
/// `ErrorCode`: the operator's decision on a brand (`BN…`) or campaign (`QE…`).
pub async fn review_a2p_registration(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path(sid): axum::extract::Path<String>,
    Form(params): Form,
) -> Result<Json<Value>> {
    let raw = params
        .get("Decision")
        .ok_or_else(|| Error::missing_parameter("Decision"))?;
    let decision = Decision::parse(raw).ok_or_else(|| Error::invalid_parameter("Decision", raw))?;
    let error_code = params.parsed("ErrorCode", |raw| raw.parse::<i64>().ok())?;
    let request = ReviewRequest {
        decision,
        reason: params.get("FailureReason"),
        error_code,
    };
    let reviewed = state
        .app
        .review_registration(&caller, &sid, &request, &path)
        .await?;
    Ok(Json(registration_json(&state.public_url, &reviewed)))
}
