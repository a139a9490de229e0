//! Messaging Services: create, edit every setting, and the sender pool (add, remove).

use super::super::csrf::{self, Fields, Post};
use super::super::session::Ctx;
use super::super::{layout, see_other, service_error, when, ConsoleState, PageResult};
use crate::domain::messaging_service::{
    validate_scan_message_content, validate_usecase, validate_validity_period, MessagingService,
    ServiceChanges, SCAN_MESSAGE_CONTENT, USECASES,
};
use crate::domain::number::{validate_method, validate_url};
use crate::domain::paging::PageRequest;
use crate::error::Result;
use crate::service::messaging::PoolKind;
use crate::service::{Operation, Principal};
use crate::store::numbers::IncomingFilter;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use maud::{html, Markup};

/// Messaging Services belong to the account acting; a main account's login acts for the
/// subaccount it views, if the service layer lets it.
async fn acting(state: &ConsoleState, ctx: &Ctx, account: &str, path: &str) -> Result<Principal> {
    state
        .app
        .console_act_as(
            &ctx.session.principal,
            account,
            Operation::ListService,
            path,
        )
        .await
}

fn all() -> Result<PageRequest> {
    PageRequest::parse(None, Some("1000"), None)
}

pub async fn list(
    State(state): State<ConsoleState>,
    ctx: Ctx,
    Path(account): Path<String>,
) -> PageResult {
    let path = format!("/console/{account}/services");
    let fail = |err| service_error(&ctx, err);
    let principal = acting(&state, &ctx, &account, &path).await.map_err(fail)?;
    let services = state
        .app
        .list_services(&principal, &all().map_err(fail)?)
        .await
        .map_err(fail)?;
    let body = html! {
        h1 { "Messaging Services" }
        form.card method="post" action=(path) {
            (csrf::field(&ctx))
            h2 { "Create a Messaging Service" }
            label { "Friendly name" input type="text" name="FriendlyName" maxlength="64" required; }
            button type="submit" { "Create service" }
        }
        table.grid {
            thead { tr { th { "Name" } th { "SID" } th { "Use case" } th { "Status callback" } th { "Created (UTC)" } } }
            tbody {
                @for s in &services {
                    tr {
                        td { a href={ (path) "/" (s.sid) } { (s.friendly_name) } }
                        td { code { (s.sid) } }
                        td { (s.usecase) }
                        td.url { (s.status_callback.as_deref().unwrap_or("—")) }
                        td.nowrap { (when(s.date_created)) }
                    }
                }
            }
        }
    };
    Ok(layout("Messaging Services", Some(&ctx), Some(&account), body).into_response())
}

/// The settings form's values as `ServiceChanges` (every field is on the form).
fn changes(fields: &Fields) -> Result<ServiceChanges> {
    let url = |name: &str| validate_url(name, fields.raw(name).unwrap_or_default().trim());
    let method = |name: &str| validate_method(name, fields.get(name).unwrap_or("POST"));
    let flag = |name: &str| Some(fields.checked(name));
    Ok(ServiceChanges {
        friendly_name: fields.get("FriendlyName").map(str::to_string),
        inbound_request_url: Some(url("InboundRequestUrl")?),
        inbound_method: Some(method("InboundMethod")?),
        fallback_url: Some(url("FallbackUrl")?),
        fallback_method: Some(method("FallbackMethod")?),
        status_callback: Some(url("StatusCallback")?),
        sticky_sender: flag("StickySender"),
        mms_converter: flag("MmsConverter"),
        smart_encoding: flag("SmartEncoding"),
        scan_message_content: fields
            .get("ScanMessageContent")
            .map(validate_scan_message_content)
            .transpose()?,
        fallback_to_long_code: flag("FallbackToLongCode"),
        area_code_geomatch: flag("AreaCodeGeomatch"),
        validity_period: fields
            .get("ValidityPeriod")
            .map(validate_validity_period)
            .transpose()?,
        synchronous_validation: flag("SynchronousValidation"),
        usecase: fields.get("Usecase").map(validate_usecase).transpose()?,
        use_inbound_webhook_on_number: flag("UseInboundWebhookOnNumber"),
    })
}

pub async fn create(
    State(state): State<ConsoleState>,
    Path(account): Path<String>,
    post: Post,
) -> PageResult {
    let path = format!("/console/{account}/services");
    let fail = |err| service_error(&post.ctx, err);
    let principal = acting(&state, &post.ctx, &account, &path)
        .await
        .map_err(fail)?;
    let service = state
        .app
        .create_service(
            &principal,
            post.fields.get("FriendlyName"),
            ServiceChanges::default(),
        )
        .await
        .map_err(fail)?;
    Ok(see_other(&format!("{path}/{}", service.sid)))
}

fn settings_form(ctx: &Ctx, path: &str, s: &MessagingService) -> Markup {
    let url = |name: &str, label: &str, value: &Option<String>| {
        html! { label { (label) input type="url" name=(name) value=(value.as_deref().unwrap_or("")) placeholder="https://…"; } }
    };
    let method = |name: &str, label: &str, value: &str| {
        html! { label { (label) select name=(name) {
            @for m in ["POST", "GET"] { option value=(m) selected[value.eq_ignore_ascii_case(m)] { (m) } }
        } } }
    };
    let flag = |name: &str, label: &str, value: bool| {
        html! { label.check { input type="checkbox" name=(name) value="true" checked[value]; (label) } }
    };
    html! {
        form.card method="post" action=(path) {
            (csrf::field(ctx))
            h2 { "Settings" }
            label { "Friendly name" input type="text" name="FriendlyName" value=(s.friendly_name) maxlength="64" required; }
            div.row {
                (url("InboundRequestUrl", "Incoming message URL", &s.inbound_request_url))
                (method("InboundMethod", "Method", &s.inbound_method))
            }
            div.row {
                (url("FallbackUrl", "Fallback URL", &s.fallback_url))
                (method("FallbackMethod", "Method", &s.fallback_method))
            }
            (url("StatusCallback", "Status callback URL", &s.status_callback))
            div.row {
                label { "Validity period (seconds)" input type="number" name="ValidityPeriod" value=(s.validity_period) min="1" max="36000"; }
                label { "Use case" select name="Usecase" {
                    @for u in USECASES { option value=(u) selected[s.usecase == *u] { (u) } }
                } }
                label { "Scan message content" select name="ScanMessageContent" {
                    @for v in SCAN_MESSAGE_CONTENT { option value=(v) selected[s.scan_message_content == *v] { (v) } }
                } }
            }
            div.flags {
                (flag("StickySender", "Sticky sender", s.sticky_sender))
                (flag("SmartEncoding", "Smart encoding", s.smart_encoding))
                (flag("MmsConverter", "MMS converter", s.mms_converter))
                (flag("FallbackToLongCode", "Fall back to long code", s.fallback_to_long_code))
                (flag("AreaCodeGeomatch", "Area code geomatch", s.area_code_geomatch))
                (flag("SynchronousValidation", "Synchronous validation", s.synchronous_validation))
                (flag("UseInboundWebhookOnNumber", "Use the number's inbound webhook", s.use_inbound_webhook_on_number))
            }
            button type="submit" { "Save settings" }
        }
    }
}

pub async fn detail(
    State(state): State<ConsoleState>,
    ctx: Ctx,
    Path((account, sid)): Path<(String, String)>,
) -> PageResult {
    let path = format!("/console/{account}/services/{sid}");
    let fail = |err| service_error(&ctx, err);
    let principal = acting(&state, &ctx, &account, &path).await.map_err(fail)?;
    let app = &state.app;
    let service = app
        .fetch_service(&principal, &sid, &path)
        .await
        .map_err(fail)?;
    let page = all().map_err(fail)?;
    let pool = app
        .list_pool(&principal, &sid, PoolKind::PhoneNumber, &page, &path)
        .await
        .map_err(fail)?;
    let alpha = app
        .list_alpha_senders(&principal, &sid, &page, &path)
        .await
        .map_err(fail)?;
    let numbers = app
        .list_incoming(
            &principal,
            &account,
            &IncomingFilter::default(),
            &page,
            &path,
        )
        .await
        .map_err(fail)?;
    let addable: Vec<_> = numbers
        .iter()
        .filter(|n| !pool.iter().any(|p| p.sid == n.sid))
        .collect();
    let body = html! {
        h1 { (service.friendly_name) span.sub { code { (service.sid) } } }
        (settings_form(&ctx, &path, &service))
        div.card {
            h2 { "Sender pool" }
            table.grid {
                thead { tr { th { "Sender" } th { "Type" } th { "Added (UTC)" } th {} } }
                tbody {
                    @if pool.is_empty() && alpha.is_empty() { tr { td colspan="4" .muted { "No senders yet: add a number below." } } }
                    @for p in &pool {
                        tr {
                            td { (p.phone_number) }
                            td { (p.number_type) }
                            td.nowrap { (when(p.added)) }
                            td {
                                form.inline method="post" action={ (path) "/senders/" (p.sid) "/remove" } {
                                    (csrf::field(&ctx))
                                    button.danger type="submit" { "Remove" }
                                }
                            }
                        }
                    }
                    @for a in &alpha {
                        tr {
                            td { (a.alpha_sender) }
                            td { "alphanumeric" }
                            td.nowrap { (when(a.date_created)) }
                            td {
                                form.inline method="post" action={ (path) "/alpha-senders/" (a.sid) "/remove" } {
                                    (csrf::field(&ctx))
                                    button.danger type="submit" { "Remove" }
                                }
                            }
                        }
                    }
                }
            }
            @if addable.is_empty() {
                p.muted { "Every number of this account is in the pool (buy one under Phone numbers)." }
            } @else {
                form.inline method="post" action={ (path) "/senders" } {
                    (csrf::field(&ctx))
                    label { "Add a number " select name="number_sid" {
                        @for n in &addable { option value=(n.sid) { (n.inventory.phone_number) } }
                    } }
                    button type="submit" { "Add to pool" }
                }
            }
            form.inline method="post" action={ (path) "/alpha-senders" } {
                (csrf::field(&ctx))
                label { "Add an alphanumeric sender ID " input type="text" name="alpha_sender" maxlength="11" size="12" placeholder="e.g. AcmeAlerts"; }
                button.secondary type="submit" { "Add sender ID" }
            }
        }
    };
    Ok(layout("Messaging Service", Some(&ctx), Some(&account), body).into_response())
}

pub async fn update(
    State(state): State<ConsoleState>,
    Path((account, sid)): Path<(String, String)>,
    post: Post,
) -> PageResult {
    let path = format!("/console/{account}/services/{sid}");
    let fail = |err| service_error(&post.ctx, err);
    let principal = acting(&state, &post.ctx, &account, &path)
        .await
        .map_err(fail)?;
    let changes = changes(&post.fields).map_err(fail)?;
    state
        .app
        .update_service(&principal, &sid, changes, &path)
        .await
        .map_err(fail)?;
    Ok(see_other(&path))
}

pub async fn add_sender(
    State(state): State<ConsoleState>,
    Path((account, sid)): Path<(String, String)>,
    post: Post,
) -> PageResult {
    let path = format!("/console/{account}/services/{sid}");
    let fail = |err| service_error(&post.ctx, err);
    let principal = acting(&state, &post.ctx, &account, &path)
        .await
        .map_err(fail)?;
    state
        .app
        .add_to_pool(
            &principal,
            &sid,
            PoolKind::PhoneNumber,
            post.fields.get("number_sid"),
            &path,
        )
        .await
        .map_err(fail)?;
    Ok(see_other(&path))
}

pub async fn remove_sender(
    State(state): State<ConsoleState>,
    Path((account, sid, number)): Path<(String, String, String)>,
    post: Post,
) -> PageResult {
    let path = format!("/console/{account}/services/{sid}");
    let fail = |err| service_error(&post.ctx, err);
    let principal = acting(&state, &post.ctx, &account, &path)
        .await
        .map_err(fail)?;
    state
        .app
        .remove_from_pool(&principal, &sid, PoolKind::PhoneNumber, &number, &path)
        .await
        .map_err(fail)?;
    Ok(see_other(&path))
}

pub async fn add_alpha_sender(
    State(state): State<ConsoleState>,
    Path((account, sid)): Path<(String, String)>,
    post: Post,
) -> PageResult {
    let path = format!("/console/{account}/services/{sid}");
    let fail = |err| service_error(&post.ctx, err);
    let principal = acting(&state, &post.ctx, &account, &path)
        .await
        .map_err(fail)?;
    state
        .app
        .add_alpha_sender(&principal, &sid, post.fields.get("alpha_sender"), &path)
        .await
        .map_err(fail)?;
    Ok(see_other(&path))
}

pub async fn remove_alpha_sender(
    State(state): State<ConsoleState>,
    Path((account, sid, alpha)): Path<(String, String, String)>,
    post: Post,
) -> PageResult {
    let path = format!("/console/{account}/services/{sid}");
    let fail = |err| service_error(&post.ctx, err);
    let principal = acting(&state, &post.ctx, &account, &path)
        .await
        .map_err(fail)?;
    state
        .app
        .delete_alpha_sender(&principal, &sid, &alpha, &path)
        .await
        .map_err(fail)?;
    Ok(see_other(&path))
}
