//! Phone numbers: the account's numbers, a search of the inventory and buying, a number's
//! configuration, moving it to another account of the same main account, and releasing it.

use super::super::csrf::{self, Post};
use super::super::session::Ctx;
use super::super::{layout, see_other, service_error, when, ConsoleState, PageResult};
use crate::domain::number::{contains_to_like, IncomingNumber};
use crate::domain::paging::PageRequest;
use crate::service::numbers::Purchase;
use crate::store::numbers::{AvailableFilter, IncomingFilter};
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use maud::{html, Markup};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    country: String,
    #[serde(default)]
    area_code: String,
    #[serde(default)]
    contains: String,
    #[serde(default)]
    sms: String,
    #[serde(default)]
    mms: String,
    #[serde(default)]
    voice: String,
    #[serde(default)]
    search: String,
}

fn capabilities(sms: bool, mms: bool, voice: bool) -> Markup {
    html! {
        @if sms { span.tag { "SMS" } " " }
        @if mms { span.tag { "MMS" } " " }
        @if voice { span.tag { "Voice" } }
    }
}

pub async fn list(
    State(state): State<ConsoleState>,
    ctx: Ctx,
    Path(account): Path<String>,
    Query(query): Query<SearchQuery>,
) -> PageResult {
    let path = format!("/console/{account}/numbers");
    let principal = &ctx.session.principal;
    let fail = |err| service_error(&ctx, err);
    let page = PageRequest::parse(None, Some("1000"), None).map_err(fail)?;
    let owned = state
        .app
        .list_incoming(
            principal,
            &account,
            &IncomingFilter::default(),
            &page,
            &path,
        )
        .await
        .map_err(fail)?;
    let country = if query.country.trim().is_empty() {
        "US".to_string()
    } else {
        query.country.trim().to_ascii_uppercase()
    };
    let mut problem = None;
    let found = if query.search.is_empty() {
        None
    } else {
        let like = match query.contains.trim() {
            "" => None,
            raw => match contains_to_like(raw) {
                Ok(like) => Some(like),
                Err(err) => {
                    problem = Some(err.to_string());
                    None
                }
            },
        };
        let filter = AvailableFilter {
            iso_country: country.clone(),
            area_code: Some(query.area_code.trim().to_string()).filter(|a| !a.is_empty()),
            like,
            sms: (!query.sms.is_empty()).then_some(true),
            mms: (!query.mms.is_empty()).then_some(true),
            voice: (!query.voice.is_empty()).then_some(true),
            ..AvailableFilter::default()
        };
        let first = PageRequest::parse(None, Some("30"), None).map_err(fail)?;
        Some(
            state
                .app
                .search_available(principal, &account, filter, &first, &path)
                .await
                .map_err(fail)?,
        )
    };
    let body = html! {
        h1 { "Phone numbers" }
        table.grid {
            thead { tr { th { "Number" } th { "Name" } th { "Capabilities" } th { "SMS URL" } th { "Bought (UTC)" } } }
            tbody {
                @if owned.is_empty() { tr { td colspan="5" .muted { "This account has no numbers yet: search below to buy one." } } }
                @for n in &owned {
                    tr {
                        td { a href={ (path) "/" (n.sid) } { (n.inventory.phone_number) } }
                        td { (n.get("friendly_name").unwrap_or("")) }
                        td { (capabilities(n.inventory.capabilities.sms, n.inventory.capabilities.mms, n.inventory.capabilities.voice)) }
                        td.url { (n.get("sms_url").unwrap_or("—")) }
                        td.nowrap { (when(n.date_created)) }
                    }
                }
            }
        }
        form.card.filters method="get" action=(path) {
            h2 { "Buy a number" }
            input type="hidden" name="search" value="1";
            label { "Country" input type="text" name="country" value=(country) size="3" maxlength="2"; }
            label { "Area code" input type="text" name="area_code" value=(query.area_code) size="5" inputmode="numeric"; }
            label { "Contains" input type="text" name="contains" value=(query.contains) size="10" placeholder="e.g. 555"; }
            label.check { input type="checkbox" name="sms" value="1" checked[!query.sms.is_empty()]; "SMS" }
            label.check { input type="checkbox" name="mms" value="1" checked[!query.mms.is_empty()]; "MMS" }
            label.check { input type="checkbox" name="voice" value="1" checked[!query.voice.is_empty()]; "Voice" }
            button type="submit" { "Search" }
        }
        @if let Some(problem) = &problem { p.error { (problem) } }
        @if let Some(found) = &found {
            table.grid.available {
                thead { tr { th { "Available number" } th { "Type" } th { "Region" } th { "Capabilities" } th {} } }
                tbody {
                    @if found.is_empty() { tr { td colspan="5" .muted { "No numbers match this search." } } }
                    @for n in found {
                        tr {
                            td { (n.phone_number) }
                            td { (n.number_type.as_str()) }
                            td { (n.locality.as_deref().unwrap_or("")) " " (n.region.as_deref().unwrap_or("")) }
                            td { (capabilities(n.capabilities.sms, n.capabilities.mms, n.capabilities.voice)) }
                            td {
                                form.inline method="post" action={ (path) "/buy" } {
                                    (csrf::field(&ctx))
                                    input type="hidden" name="phone_number" value=(n.phone_number);
                                    button type="submit" { "Buy" }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout("Phone numbers", Some(&ctx), Some(&account), body).into_response())
}

pub async fn buy(
    State(state): State<ConsoleState>,
    Path(account): Path<String>,
    post: Post,
) -> PageResult {
    let path = format!("/console/{account}/numbers");
    let purchase = Purchase {
        required_type: None,
        phone_number: post.fields.get("phone_number"),
        area_code: None,
        settings: Vec::new(),
    };
    let number = state
        .app
        .purchase_number(&post.ctx.session.principal, &account, purchase, &path)
        .await
        .map_err(|err| service_error(&post.ctx, err))?;
    Ok(see_other(&format!("{path}/{}", number.sid)))
}

/// The configuration form's fields: (API parameter, stored column, label).
const URL_FIELDS: &[(&str, &str, &str)] = &[
    ("SmsUrl", "sms_url", "SMS URL (incoming messages)"),
    ("SmsFallbackUrl", "sms_fallback_url", "Fallback URL"),
    ("StatusCallback", "status_callback", "Status callback URL"),
];
const METHOD_FIELDS: &[(&str, &str, &str)] = &[
    ("SmsMethod", "sms_method", "SMS URL method"),
    (
        "SmsFallbackMethod",
        "sms_fallback_method",
        "Fallback method",
    ),
    (
        "StatusCallbackMethod",
        "status_callback_method",
        "Status callback method",
    ),
];

fn config_form(ctx: &Ctx, path: &str, n: &IncomingNumber) -> Markup {
    html! {
        form.card method="post" action=(path) {
            (csrf::field(ctx))
            h2 { "Configuration" }
            label { "Friendly name" input type="text" name="FriendlyName" value=(n.get("friendly_name").unwrap_or("")) maxlength="64"; }
            @for (param, column, label) in URL_FIELDS {
                label { (label) input type="url" name=(param) value=(n.get(column).unwrap_or("")) placeholder="https://…"; }
            }
            div.row {
                @for (param, column, label) in METHOD_FIELDS {
                    label { (label) select name=(param) {
                        @for method in ["POST", "GET"] {
                            option value=(method) selected[n.get(column).unwrap_or("POST").eq_ignore_ascii_case(method)] { (method) }
                        }
                    } }
                }
            }
            button type="submit" { "Save configuration" }
        }
    }
}

pub async fn detail(
    State(state): State<ConsoleState>,
    ctx: Ctx,
    Path((account, sid)): Path<(String, String)>,
) -> PageResult {
    let path = format!("/console/{account}/numbers/{sid}");
    let principal = &ctx.session.principal;
    let fail = |err| service_error(&ctx, err);
    let number = state
        .app
        .fetch_incoming(principal, &account, &sid, &path)
        .await
        .map_err(fail)?;
    let others: Vec<_> = state
        .app
        .console_accounts(principal)
        .await
        .map_err(fail)?
        .into_iter()
        .filter(|a| a.sid != account)
        .collect();
    let body = html! {
        h1 { (number.inventory.phone_number) span.sub { code { (number.sid) } } }
        p { (capabilities(number.inventory.capabilities.sms, number.inventory.capabilities.mms, number.inventory.capabilities.voice))
            " " (number.inventory.number_type.as_str()) " · " (number.inventory.iso_country) }
        (config_form(&ctx, &path, &number))
        @if !others.is_empty() {
            form.card method="post" action={ (path) "/move" } {
                (csrf::field(&ctx))
                h2 { "Move to another account" }
                label { "Account" select name="account_sid" {
                    @for a in &others { option value=(a.sid) { (a.friendly_name) " (" (a.sid) ")" } }
                } }
                button type="submit" { "Move number" }
            }
        }
        form.card method="post" action={ (path) "/release" } {
            (csrf::field(&ctx))
            h2 { "Release" }
            p.muted { "The number goes back to the inventory; messages to it are no longer received." }
            label.check { input type="checkbox" name="confirm" value="yes" required; "I want to release " (number.inventory.phone_number) }
            button.danger type="submit" { "Release number" }
        }
    };
    Ok(layout("Phone number", Some(&ctx), Some(&account), body).into_response())
}

pub async fn configure(
    State(state): State<ConsoleState>,
    Path((account, sid)): Path<(String, String)>,
    post: Post,
) -> PageResult {
    let path = format!("/console/{account}/numbers/{sid}");
    let names = URL_FIELDS
        .iter()
        .chain(METHOD_FIELDS)
        .map(|(param, _, _)| *param)
        .chain(["FriendlyName"]);
    // Blank values are sent as they are: they unset the setting, as in the API.
    let settings: Vec<(&str, &str)> = names
        .filter_map(|name| Some((name, post.fields.raw(name)?.trim())))
        .collect();
    state
        .app
        .update_incoming(
            &post.ctx.session.principal,
            &account,
            &sid,
            &settings,
            None,
            &path,
        )
        .await
        .map_err(|err| service_error(&post.ctx, err))?;
    Ok(see_other(&path))
}

pub async fn transfer(
    State(state): State<ConsoleState>,
    Path((account, sid)): Path<(String, String)>,
    post: Post,
) -> PageResult {
    let path = format!("/console/{account}/numbers/{sid}");
    let Some(target) = post.fields.get("account_sid") else {
        return Ok(see_other(&path));
    };
    let number = state
        .app
        .update_incoming(
            &post.ctx.session.principal,
            &account,
            &sid,
            &[],
            Some(target),
            &path,
        )
        .await
        .map_err(|err| service_error(&post.ctx, err))?;
    Ok(see_other(&format!(
        "/console/{}/numbers/{}",
        number.account_sid, number.sid
    )))
}

pub async fn release(
    State(state): State<ConsoleState>,
    Path((account, sid)): Path<(String, String)>,
    post: Post,
) -> PageResult {
    let path = format!("/console/{account}/numbers");
    if post.fields.get("confirm") != Some("yes") {
        return Ok(see_other(&format!("{path}/{sid}")));
    }
    state
        .app
        .release_incoming(
            &post.ctx.session.principal,
            &account,
            &sid,
            &format!("{path}/{sid}"),
        )
        .await
        .map_err(|err| service_error(&post.ctx, err))?;
    Ok(see_other(&path))
}
