//! What every request leaves behind: a `Twilio-Request-Id` header (`RQ` + 32 hex), one log
//! line (method, path, status, latency, account, request id; successes only at `debug`) and
//! the HTTP metrics, labelled by route template so that their number stays bounded whatever
//! paths clients send.

use crate::telemetry;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::{Arc, OnceLock};

/// The response header Twilio sets on every API response.
pub const REQUEST_ID_HEADER: &str = "twilio-request-id";

/// Where the `Caller` extractor leaves the authenticated account's SID for the log line.
#[derive(Clone, Default)]
pub struct RequestAccount(Arc<OnceLock<String>>);

impl RequestAccount {
    pub fn set(&self, sid: &str) {
        let _ = self.0.set(sid.to_string());
    }
}

/// A fresh request id: `RQ` + 32 hex digits.
pub fn new_request_id() -> String {
    format!("RQ{}", crate::domain::sid::ordered_hex32())
}

pub async fn observe(mut request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let request_id = new_request_id();
    let group = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = request.method().clone();
    let path = request
        .extensions()
        .get::<super::RequestPath>()
        .map(|p| p.0.clone())
        .unwrap_or_else(|| request.uri().path().to_string());
    let account = RequestAccount::default();
    request.extensions_mut().insert(account.clone());
    // No span around the handler: one per request costs more than the line it would tag.
    let mut response = next.run(request).await;
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    // Any token is a method to hyper: the label takes the API's few, so a client cannot
    // make new series by inventing methods.
    let method_label = match method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::DELETE => "DELETE",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    };
    metrics::counter!(
        telemetry::HTTP_REQUESTS,
        "group" => group.clone(),
        "method" => method_label,
        "status" => status.to_string()
    )
    .increment(1);
    metrics::histogram!(telemetry::HTTP_DURATION, "group" => group).record(elapsed.as_secs_f64());
    // Failures at `info` (server errors at `warn`), so an operator finds a customer's failing
    // request by its id; successes at `debug`, so that a busy server does not write a line
    // per accepted message unless asked (`log = "info,warbler::http=debug"`).
    let account_sid = account.0.get().map(String::as_str).unwrap_or("");
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    macro_rules! request_line {
        ($level:expr) => {
            tracing::event!(
                target: "warbler::http",
                $level,
                method = %method,
                path = %path,
                status,
                latency_ms,
                account_sid,
                request_id = %request_id,
                "request"
            )
        };
    }
    match status {
        500.. => request_line!(tracing::Level::WARN),
        400..=499 => request_line!(tracing::Level::INFO),
        _ => request_line!(tracing::Level::DEBUG),
    }
    response
}
