//! The HTTP API: Twilio's wire contract. Routing, credential extraction, parameter parsing and
//! rendering live here; every decision is the service's. Handlers are thin: parse, call the
//! service, render.

mod a2p;
mod accounts;
mod alarms;
mod auth;
mod content;
mod iam;
mod keys;
mod limits;
mod messages;
mod messaging;
mod monitor;
mod numbers;
mod observe;
pub mod openapi;
mod opt_outs;
pub mod params;
mod render;
pub mod server;
mod usage;
mod v1;

use crate::error::Error;
use crate::service::App;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use limits::{AccountBudget, FailedAuthLimits, Limits};
use std::sync::Arc;

/// Shared state of the HTTP layer. axum clones it for every request (the router and each
/// `State` extractor), so it is one `Arc`: a clone of `App` itself is some twenty counter
/// increments, and as many decrements when the request ends.
#[derive(Clone)]
pub struct ApiState(Arc<ApiShared>);

impl std::ops::Deref for ApiState {
    type Target = ApiShared;

    fn deref(&self) -> &ApiShared {
        &self.0
    }
}

pub struct ApiShared {
    pub app: App,
    limits: Arc<Limits>,
    max_body_bytes: usize,
    /// Absolute base URL (no trailing slash) for v1 `url`, `links` and `meta` URLs.
    public_url: Arc<str>,
}

/// HTTP-level settings.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Absolute base URL clients reach the server at, without a trailing slash.
    pub public_url: String,
    pub max_body_bytes: usize,
    pub rate_limit_per_second: u32,
    pub rate_limit_burst: u32,
    /// Failed authentications an address or a username may make before backoff; 0 = off.
    pub failed_auth_limit: u32,
}

/// The request path as the client sent it (before the `.json` suffix is removed for routing),
/// quoted in 20404 messages.
#[derive(Debug, Clone)]
pub struct RequestPath(pub String);

/// The complete API as one router: routes plus the `.json` normalisation in front of them.
pub fn router(app: App, http: &HttpSettings) -> Router {
    let limits = Arc::new(Limits {
        budget: (http.rate_limit_per_second > 0)
            .then(|| AccountBudget::new(http.rate_limit_per_second, http.rate_limit_burst)),
        failed_auth: (http.failed_auth_limit > 0)
            .then(|| FailedAuthLimits::new(http.failed_auth_limit)),
    });
    limits.spawn_cleanup();
    // The web console shares the server, and the failed-login backoff with the API.
    let console = crate::console::router(
        app.clone(),
        Some(Arc::new(auth::ConsoleLogins(limits.clone()))),
        http.public_url.starts_with("https://"),
    );
    let state = ApiState(Arc::new(ApiShared {
        app,
        limits,
        max_body_bytes: http.max_body_bytes,
        public_url: Arc::from(http.public_url.trim_end_matches('/')),
    }));
    // Installed before the first request, so the first scrape sees every count.
    crate::telemetry::prometheus();
    let inner = routes().nest_service("/console", console).with_state(state);
    // Routing happens inside `inner`, so the path rewrite must wrap it rather than be a layer.
    Router::new().fallback_service(
        tower::ServiceBuilder::new()
            .map_request(strip_json_suffix)
            .service(inner),
    )
}

/// The router of `metrics_listen`: `GET /metrics` only, no credentials asked.
pub fn metrics_router(app: App) -> Router {
    crate::telemetry::prometheus();
    Router::new()
        .route("/metrics", get(monitor::fetch_metrics_unauthenticated))
        .with_state(app)
}

fn routes() -> Router<ApiState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/openapi", get(openapi::fetch_open_api))
        .route("/metrics", get(monitor::fetch_metrics))
        .route(
            "/2010-04-01/Accounts",
            get(accounts::list_account).post(accounts::create_account),
        )
        .route(
            "/2010-04-01/Accounts/{AccountSid}",
            get(accounts::fetch_account).post(accounts::update_account),
        )
        .route(
            "/2010-04-01/Accounts/{AccountSid}/Keys",
            get(keys::list_key).post(keys::create_new_key),
        )
        .route(
            "/2010-04-01/Accounts/{AccountSid}/Keys/{Sid}",
            get(keys::fetch_key)
                .post(keys::update_key)
                .delete(keys::delete_key),
        )
        .route(
            "/2010-04-01/Accounts/{AccountSid}/AvailablePhoneNumbers",
            get(numbers::list_available_phone_number_country),
        )
        .route(
            "/2010-04-01/Accounts/{AccountSid}/AvailablePhoneNumbers/{CountryCode}",
            get(numbers::fetch_available_phone_number_country),
        )
        .route(
            "/2010-04-01/Accounts/{AccountSid}/AvailablePhoneNumbers/{CountryCode}/{Type}",
            get(numbers::list_available_phone_number),
        )
        .route(
            "/2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers",
            get(numbers::list_incoming_phone_number).post(numbers::create_incoming_phone_number),
        )
        // The second segment is either a number SID or one of Local / Mobile / TollFree.
        .route(
            "/2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers/{Sid}",
            get(numbers::fetch_or_list_typed_incoming_phone_number)
                .post(numbers::create_typed_or_update_incoming_phone_number)
                .delete(numbers::delete_incoming_phone_number),
        )
        .route(
            "/admin/numbers/import",
            post(numbers::import_number_inventory),
        )
        .route("/admin/short-codes", post(messaging::assign_short_code))
        .route("/admin/simulate/inbound", post(messages::simulate_inbound))
        .route(
            "/2010-04-01/Accounts/{AccountSid}/Messages",
            get(messages::list_message).post(messages::create_message),
        )
        .route(
            "/2010-04-01/Accounts/{AccountSid}/Messages/{Sid}",
            get(messages::fetch_message)
                .post(messages::update_message)
                .delete(messages::delete_message),
        )
        .route(
            "/2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}/Feedback",
            post(messages::create_message_feedback),
        )
        .route(
            "/2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}/Media",
            get(messages::list_media),
        )
        .route(
            "/2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}/Media/{Sid}",
            get(messages::fetch_media).delete(messages::delete_media),
        )
        .route(
            "/v1/Services",
            get(messaging::list_service).post(messaging::create_service),
        )
        .route(
            "/v1/Services/{Sid}",
            get(messaging::fetch_service)
                .post(messaging::update_service)
                .delete(messaging::delete_service),
        )
        .route(
            "/v1/Services/{ServiceSid}/Compliance/Usa2p",
            get(a2p::list_us_app_to_person).post(a2p::create_us_app_to_person),
        )
        .route(
            "/v1/Services/{ServiceSid}/Compliance/Usa2p/Usecases",
            get(a2p::fetch_us_app_to_person_usecase),
        )
        .route(
            "/v1/Services/{ServiceSid}/Compliance/Usa2p/{Sid}",
            get(a2p::fetch_us_app_to_person)
                .post(a2p::update_us_app_to_person)
                .delete(a2p::delete_us_app_to_person),
        )
        .route(
            "/v1/a2p/BrandRegistrations",
            get(a2p::list_brand_registrations).post(a2p::create_brand_registrations),
        )
        .route(
            "/v1/a2p/BrandRegistrations/{Sid}",
            get(a2p::fetch_brand_registrations).post(a2p::update_brand_registrations),
        )
        .route(
            "/v1/Services/{ServiceSid}/{Pool}",
            get(messaging::list_pool).post(messaging::create_pool_member),
        )
        .route(
            "/v1/Services/{ServiceSid}/{Pool}/{Sid}",
            get(messaging::fetch_pool_member).delete(messaging::delete_pool_member),
        )
        .route(
            "/2010-04-01/Accounts/{AccountSid}/Usage/Records",
            get(usage::list_usage_record),
        )
        .route(
            "/2010-04-01/Accounts/{AccountSid}/Usage/Records/{Period}",
            get(usage::list_usage_record_period),
        )
        .route(
            "/2010-04-01/Accounts/{AccountSid}/Usage/Triggers",
            get(usage::list_usage_trigger).post(usage::create_usage_trigger),
        )
        .route(
            "/2010-04-01/Accounts/{AccountSid}/Usage/Triggers/{Sid}",
            get(usage::fetch_usage_trigger)
                .post(usage::update_usage_trigger)
                .delete(usage::delete_usage_trigger),
        )
        .route(
            "/2010-04-01/Accounts/{AccountSid}/Balance",
            get(usage::fetch_balance),
        )
        .route("/admin/billing/credit", post(usage::credit_balance))
        .route("/admin/carriers", get(monitor::list_carrier_routes))
        .route("/admin/export/messages", get(usage::export_messages))
        .route(
            "/admin/accounts/{AccountSid}/Caps",
            get(usage::fetch_account_caps).post(usage::update_account_caps),
        )
        .route(
            "/v1/Keys",
            get(iam::list_get_keys).post(iam::create_new_key),
        )
        .route(
            "/v1/Keys/{Sid}",
            get(iam::fetch_key)
                .post(iam::update_key)
                .delete(iam::delete_key),
        )
        .route(
            "/v1/Content",
            get(content::list_content).post(content::create_content),
        )
        .route(
            "/v1/Content/{Sid}",
            get(content::fetch_content).delete(content::delete_content),
        )
        .route("/v1/Alerts", get(monitor::list_alert))
        .route("/v1/Alerts/{Sid}", get(monitor::fetch_alert))
        .route(
            "/warbler/v1/Accounts/{AccountSid}/OptOuts",
            get(opt_outs::list_opt_out).post(opt_outs::import_opt_out),
        )
        .route(
            "/warbler/v1/Accounts/{AccountSid}/OptOuts/Export",
            get(opt_outs::export_opt_out),
        )
        .route(
            "/warbler/v1/Accounts/{AccountSid}/OptOuts/{Recipient}",
            axum::routing::delete(opt_outs::delete_opt_out),
        )
        .route(
            "/warbler/v1/Accounts/{AccountSid}/Sandbox",
            get(accounts::fetch_sandbox).post(accounts::update_sandbox),
        )
        .route(
            "/warbler/v1/Accounts/{AccountSid}/TestCredentials",
            get(accounts::fetch_test_credentials).post(accounts::rotate_test_credentials),
        )
        .route(
            "/warbler/v1/Services/{Sid}/OptOutSettings",
            get(opt_outs::fetch_opt_out_settings).post(opt_outs::update_opt_out_settings),
        )
        .route(
            "/warbler/v1/Accounts/{AccountSid}/A2pEventSink",
            get(a2p::fetch_a2p_event_sink).post(a2p::update_a2p_event_sink),
        )
        .route(
            "/warbler/v1/A2p/Reviews",
            get(a2p::list_a2p_registration_reviews),
        )
        .route(
            "/warbler/v1/A2p/Reviews/{Sid}",
            post(a2p::review_a2p_registration),
        )
        .route(
            "/warbler/v1/Alarms",
            get(alarms::list_alarm).post(alarms::create_alarm),
        )
        .route(
            "/warbler/v1/Alarms/{Sid}",
            get(alarms::fetch_alarm)
                .post(alarms::update_alarm)
                .delete(alarms::delete_alarm),
        )
        .route(
            "/warbler/v1/Alarms/{Sid}/Firings",
            get(alarms::list_alarm_firing),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // A layer of the routes (not around them) sees the matched route template.
        .layer(axum::middleware::from_fn(observe::observe))
}

/// Twilio paths end in `.json` (the SDKs always send it) but it is optional: route on the path
/// without it, and keep the original for messages.
fn strip_json_suffix(mut request: Request) -> Request {
    let original = request.uri().path().to_string();
    if let Some(stripped) = original.strip_suffix(".json") {
        let mut rebuilt = stripped.to_string();
        if let Some(query) = request.uri().query() {
            rebuilt.push('?');
            rebuilt.push_str(query);
        }
        if let Ok(uri) = rebuilt.parse() {
            *request.uri_mut() = uri;
        }
    }
    request.extensions_mut().insert(RequestPath(original));
    request
}

async fn healthz(axum::extract::State(state): axum::extract::State<ApiState>) -> Response {
    match state.app.store.ping().await {
        Ok(()) => (axum::http::StatusCode::OK, "ok\n").into_response(),
        Err(err) => err.into_response(),
    }
}

async fn not_found(request: Request) -> Response {
    let path = request
        .extensions()
        .get::<RequestPath>()
        .map(|p| p.0.clone())
        .unwrap_or_else(|| request.uri().path().to_string());
    Error::not_found(path).into_response()
}

async fn method_not_allowed() -> Response {
    Error::MethodNotAllowed.into_response()
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        match &self {
            Error::Internal { detail, .. } => tracing::error!(%detail, "internal error"),
            Error::Unavailable { detail } => tracing::error!(%detail, "database unavailable"),
            _ => {}
        }
        let status = axum::http::StatusCode::from_u16(self.http_status())
            .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, axum::Json(self.body())).into_response();
        if matches!(self, Error::Unavailable { .. }) {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("5"),
            );
        }
        if matches!(self, Error::Unauthenticated) {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Basic realm=\"Twilio API\""),
            );
        }
        response
    }
}
