//! Handlers for phone numbers: `AvailablePhoneNumbers` (searching the operator's inventory),
//! `IncomingPhoneNumbers` (numbers an account holds), and the operator's inventory import.

use super::auth::Caller;
use super::params::{Form, Params, Path, Query, RawBody};
use super::render::{self, ListPage};
use super::ApiState;
use crate::domain::number::{contains_to_like, NumberType};
use crate::domain::paging::{Cursor, PageRequest};
use crate::error::{Error, Result};
use crate::service::numbers::Purchase;
use crate::store::numbers::{AvailableFilter, IncomingFilter};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

type AccountPath = axum::extract::Path<String>;
type AccountAndSid = axum::extract::Path<(String, String)>;

fn page_of(params: &Params) -> Result<PageRequest> {
    PageRequest::parse(
        params.get("Page"),
        params.get("PageSize"),
        params.get("PageToken"),
    )
}

/// The typed sub-resources (`Local`, `Mobile`, `TollFree`) and their number types.
fn typed_resource(name: &str) -> Option<NumberType> {
    match name {
        "Local" => Some(NumberType::Local),
        "Mobile" => Some(NumberType::Mobile),
        "TollFree" => Some(NumberType::TollFree),
        _ => None,
    }
}

/// Twilio's other search sub-resources: valid paths, but no such numbers in an inventory.
const UNSTOCKED_RESOURCES: &[&str] = &["National", "Voip", "SharedCost", "MachineToMachine"];

pub async fn list_available_phone_number_country(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path(account_sid): AccountPath,
) -> Result<Json<Value>> {
    let countries = state
        .app
        .available_countries(&caller, &account_sid, &path)
        .await?;
    let countries: Vec<Value> = countries
        .iter()
        .map(|(code, kinds)| render::available_country(&account_sid, code, kinds))
        .collect();
    Ok(Json(json!({
        "countries": countries,
        "uri": format!("/2010-04-01/Accounts/{account_sid}/AvailablePhoneNumbers.json"),
    })))
}

pub async fn fetch_available_phone_number_country(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path((account_sid, country)): AccountAndSid,
) -> Result<Json<Value>> {
    let (code, kinds) = state
        .app
        .available_country(&caller, &account_sid, &country.to_ascii_uppercase(), &path)
        .await?;
    Ok(Json(render::available_country(&account_sid, &code, &kinds)))
}

pub async fn list_available_phone_number(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path((account_sid, country, resource)): axum::extract::Path<(
        String,
        String,
        String,
    )>,
    Query(params): Query,
) -> Result<Json<Value>> {
    let page = page_of(&params)?;
    let number_type = match typed_resource(&resource) {
        Some(kind) => Some(kind),
        None if UNSTOCKED_RESOURCES.contains(&resource.as_str()) => None,
        None => return Err(Error::not_found(path)),
    };
    let area_code = params.get("AreaCode");
    if let Some(area) = area_code {
        if area.len() != 3 || !area.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::invalid_parameter("AreaCode", area));
        }
    }
    let filter = AvailableFilter {
        iso_country: country.to_ascii_uppercase(),
        number_type,
        area_code: area_code.map(str::to_string),
        like: params.get("Contains").map(contains_to_like).transpose()?,
        sms: params.bool("SmsEnabled")?,
        mms: params.bool("MmsEnabled")?,
        voice: params.bool("VoiceEnabled")?,
        region: params.get("InRegion").map(str::to_string),
        postal_code: params.get("InPostalCode").map(str::to_string),
        locality: params.get("InLocality").map(str::to_string),
    };
    let rows = match number_type {
        Some(_) => {
            state
                .app
                .search_available(&caller, &account_sid, filter, &page, &path)
                .await?
        }
        None => {
            state
                .app
                .available_countries(&caller, &account_sid, &path)
                .await?;
            Vec::new()
        }
    };
    let list_path = format!(
        "/2010-04-01/Accounts/{account_sid}/AvailablePhoneNumbers/{}/{resource}.json",
        country.to_ascii_uppercase()
    );
    let mut filters = Vec::new();
    for name in [
        "AreaCode",
        "Contains",
        "SmsEnabled",
        "MmsEnabled",
        "VoiceEnabled",
        "InRegion",
        "InPostalCode",
        "InLocality",
    ] {
        if let Some(value) = params.get(name) {
            filters.push((name, value.to_string()));
        }
    }
    let list = ListPage {
        path: &list_path,
        key: "available_phone_numbers",
        filters,
        page: &page,
    };
    // Searches page by index: the inventory has no creation order worth a cursor.
    Ok(Json(list.render_by_index(rows, render::available_number)))
}

fn settings(params: &Params) -> Vec<(&str, &str)> {
    params
        .pairs()
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

async fn purchase(
    state: ApiState,
    caller: crate::service::Principal,
    path: String,
    account_sid: String,
    required_type: Option<NumberType>,
    params: Params,
) -> Result<(StatusCode, Json<Value>)> {
    let request = Purchase {
        required_type,
        phone_number: params.get("PhoneNumber").filter(|v| !v.is_empty()),
        area_code: params.get("AreaCode").filter(|v| !v.is_empty()),
        settings: settings(&params),
    };
    if required_type.is_some() && request.phone_number.is_none() {
        return Err(Error::missing_parameter("PhoneNumber"));
    }
    let number = state
        .app
        .purchase_number(&caller, &account_sid, request, &path)
        .await?;
    let body = match required_type {
        Some(_) => render::typed_incoming_number(&number),
        None => render::incoming_number(&number),
    };
    Ok((StatusCode::CREATED, Json(body)))
}

pub async fn create_incoming_phone_number(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path(account_sid): AccountPath,
    Form(params): Form,
) -> Result<(StatusCode, Json<Value>)> {
    purchase(state, caller, path, account_sid, None, params).await
}

/// `POST …/IncomingPhoneNumbers/{Local|Mobile|TollFree}.json` buys, any other second segment
/// is a number SID and updates it.
pub async fn create_typed_or_update_incoming_phone_number(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path((account_sid, segment)): AccountAndSid,
    Form(params): Form,
) -> Result<(StatusCode, Json<Value>)> {
    if let Some(kind) = typed_resource(&segment) {
        return purchase(state, caller, path, account_sid, Some(kind), params).await;
    }
    let number = state
        .app
        .update_incoming(
            &caller,
            &account_sid,
            &segment,
            &settings(&params),
            params.get("AccountSid").filter(|v| !v.is_empty()),
            &path,
        )
        .await?;
    Ok((StatusCode::OK, Json(render::incoming_number(&number))))
}

/// `GET …/IncomingPhoneNumbers.json` and the typed lists; `GET …/IncomingPhoneNumbers/{PN}`.
pub async fn list_incoming_phone_number(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path(account_sid): AccountPath,
    Query(params): Query,
) -> Result<Json<Value>> {
    list_incoming(state, caller, path, account_sid, None, params).await
}

pub async fn fetch_or_list_typed_incoming_phone_number(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path((account_sid, segment)): AccountAndSid,
    Query(params): Query,
) -> Result<Json<Value>> {
    if let Some(kind) = typed_resource(&segment) {
        return list_incoming(
            state,
            caller,
            path,
            account_sid,
            Some((kind, segment)),
            params,
        )
        .await;
    }
    let number = state
        .app
        .fetch_incoming(&caller, &account_sid, &segment, &path)
        .await?;
    Ok(Json(render::incoming_number(&number)))
}

async fn list_incoming(
    state: ApiState,
    caller: crate::service::Principal,
    path: String,
    account_sid: String,
    typed: Option<(NumberType, String)>,
    params: Params,
) -> Result<Json<Value>> {
    let page = page_of(&params)?;
    let phone_number_like = params
        .get("PhoneNumber")
        .filter(|v| !v.is_empty())
        .map(phone_number_filter_to_like)
        .transpose()?;
    let origin = params.get("Origin");
    if let Some(origin) = origin {
        if origin != "twilio" && origin != "hosted" {
            return Err(Error::invalid_parameter("Origin", origin));
        }
    }
    let filter = IncomingFilter {
        number_type: typed.as_ref().map(|(kind, _)| *kind),
        phone_number_like,
        friendly_name: params.get("FriendlyName").map(str::to_string),
    };
    // Every warbler number comes from the operator's inventory: origin "twilio", never "hosted".
    let rows = if origin == Some("hosted") {
        state
            .app
            .authorize(
                &caller,
                &account_sid,
                crate::service::Operation::ListIncomingPhoneNumber,
                &path,
            )
            .await?;
        Vec::new()
    } else {
        state
            .app
            .list_incoming(&caller, &account_sid, &filter, &page, &path)
            .await?
    };
    let list_path = match &typed {
        Some((_, segment)) => {
            format!("/2010-04-01/Accounts/{account_sid}/IncomingPhoneNumbers/{segment}.json")
        }
        None => format!("/2010-04-01/Accounts/{account_sid}/IncomingPhoneNumbers.json"),
    };
    let mut filters = Vec::new();
    for name in ["FriendlyName", "PhoneNumber", "Origin"] {
        if let Some(value) = params.get(name) {
            filters.push((name, value.to_string()));
        }
    }
    let list = ListPage {
        path: &list_path,
        key: "incoming_phone_numbers",
        filters,
        page: &page,
    };
    Ok(Json(list.render(
        rows,
        |n| Cursor {
            created: n.date_created,
            sid: n.sid.clone(),
        },
        if typed.is_some() {
            render::typed_incoming_number
        } else {
            render::incoming_number
        },
    )))
}

/// Twilio's `PhoneNumber` list filter: a partial number where `*` stands for any digit.
fn phone_number_filter_to_like(value: &str) -> Result<String> {
    let mut like = String::from("%");
    for c in value.chars() {
        match c {
            '0'..='9' | '+' => like.push(c),
            '*' => like.push('_'),
            // Formatting people type: "(415) 555-0100".
            ' ' | '(' | ')' | '-' | '.' => {}
            _ => return Err(Error::invalid_parameter("PhoneNumber", value)),
        }
    }
    like.push('%');
    Ok(like)
}

pub async fn delete_incoming_phone_number(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(path): Path,
    axum::extract::Path((account_sid, sid)): AccountAndSid,
) -> Result<StatusCode> {
    state
        .app
        .release_incoming(&caller, &account_sid, &sid, &path)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /admin/numbers/import` (warbler's own): the body is an inventory CSV.
pub async fn import_number_inventory(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    RawBody(body): RawBody,
) -> Result<(StatusCode, Json<Value>)> {
    let imported = state.app.import_inventory_as(&caller, &body).await?;
    Ok((StatusCode::CREATED, Json(json!({ "imported": imported }))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_number_filters_allow_partial_numbers_and_wildcards() {
        assert_eq!(phone_number_filter_to_like("555").unwrap(), "%555%");
        assert_eq!(
            phone_number_filter_to_like("+1415*55").unwrap(),
            "%+1415_55%"
        );
        assert_eq!(
            phone_number_filter_to_like("(415) 555-0100").unwrap(),
            "%4155550100%"
        );
        assert!(phone_number_filter_to_like("abc").is_err());
    }
}
