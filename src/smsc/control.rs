//! The simulator's HTTP control endpoint: inject inbound messages, read what was submitted.
//!
//! - `POST /mo` with form fields `From`, `To`, `Body`: 200 `{"sent":true}`, or 409 when no
//!   receiving session is bound;
//! - `POST /pdu` with form field `Hex`, a whole frame: sent as given to a receiving session
//!   (its sequence number replaced): 200 `{"sent":true,"sequence_number":n}`, or 409;
//! - `GET /submits`: every submit seen, as JSON;
//! - `GET /answers`: every response the ESMEs sent (id, status, sequence number);
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

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawPdu {
    hex: String,
}

async fn inject_pdu(
    State(smsc): State<Smsc>,
    Form(pdu): Form<RawPdu>,
) -> (StatusCode, Json<serde_json::Value>) {
    let Ok(frame) = hex::decode(pdu.hex.trim()) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({ "sent": false, "error": "Hex is not hexadecimal" })),
        );
    };
    match smsc.inject_frame(frame).await {
        Some(sequence_number) => (
            StatusCode::OK,
            Json(serde_json::json!({ "sent": true, "sequence_number": sequence_number })),
        ),
        None => (
            StatusCode::CONFLICT,
            Json(serde_json::json!({
                "sent": false,
                "error": "no receiving session is bound, or the frame is shorter than a header"
            })),
        ),
    }
}

pub fn router(smsc: Smsc) -> Router {
    Router::new()
        .route("/mo", post(inject))
        .route("/pdu", post(inject_pdu))
        .route(
            "/answers",
            get(|State(smsc): State<Smsc>| async move { Json(smsc.answers()) }),
        )
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
