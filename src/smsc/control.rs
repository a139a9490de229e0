//! The simulator's HTTP control endpoint: inject inbound messages, read what was submitted.
//!
//! - `POST /mo` with form fields `From`, `To`, `Body`: 200 `{"sent":true}`, or 409 when no
//!   receiving session is bound;
//! - `GET /submits`: every submit seen, as JSON;
//! - `GET /stats`: counters.

use super::Smsc;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Mo {
    from: String,
    to: String,
    body: String,
}

async fn inject(
    State(smsc): State<Smsc>,
    Form(mo): Form<Mo>,
) -> (StatusCode, Json<serde_json::Value>) {
    if smsc.inject_mo(&mo.from, &mo.to, &mo.body).await {
        (StatusCode::OK, Json(serde_json::json!({ "sent": true })))
    } else {
        (
            StatusCode::CONFLICT,
            Json(serde_json::json!({ "sent": false, "error": "no receiving session is bound" })),
        )
    }
}

pub fn router(smsc: Smsc) -> Router {
    Router::new()
        .route("/mo", post(inject))
        .route(
            "/submits",
            get(|State(smsc): State<Smsc>| async move { Json(smsc.submits()) }),
        )
        .route(
            "/stats",
            get(|State(smsc): State<Smsc>| async move { Json(smsc.stats()) }),
        )
        .with_state(smsc)
}
