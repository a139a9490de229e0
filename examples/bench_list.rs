//! Listing messages on a large table: inserts N messages (default 1,000,000) for one account
//! into a fresh SQLite file (or the PostgreSQL database given), then times `ListMessage`
//! pages through the real router: the first page, ten pages following `next_page_uri`
//! (keyset `PageToken`), a `To` filter, and a `DateSent` filter.
//!
//! ```sh
//! cargo run --release --example bench_list -- [N] [DATABASE_URL]
//! ```

#[path = "support/mod.rs"]
mod support;

use axum::body::Body;
use axum::http::Request;
use base64::Engine;
use http_body_util::BodyExt;
use std::time::Instant;
use tower::ServiceExt;

use support::{BENCH_SID as SID, BENCH_TOKEN as TOKEN};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let support::LargeTable { app, dir, .. } =
        support::large_table("list", 1_000_000, "bench").await?;

    let router = support::bench_router(app);
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{SID}:{TOKEN}"))
    );
    let get = |uri: String| {
        let router = router.clone();
        let auth = auth.clone();
        async move {
            let t = Instant::now();
            let response = router
                .oneshot(
                    Request::get(&uri)
                        .header("Authorization", auth)
                        .body(Body::empty())?,
                )
                .await?;
            let bytes = response.into_body().collect().await?.to_bytes();
            let body: serde_json::Value = serde_json::from_slice(&bytes)?;
            anyhow::Ok((t.elapsed(), body))
        }
    };
    let list = format!("/2010-04-01/Accounts/{SID}/Messages.json");
    let (first, body) = get(format!("{list}?PageSize=50")).await?;
    println!(
        "first page (50):          {:.2} ms",
        first.as_secs_f64() * 1000.0
    );
    let mut next = body["next_page_uri"].as_str().map(str::to_string);
    let t = Instant::now();
    for _ in 0..10 {
        let (_, body) = get(next.clone().expect("next page")).await?;
        next = body["next_page_uri"].as_str().map(str::to_string);
    }
    println!(
        "next 10 pages (PageToken): {:.2} ms each",
        t.elapsed().as_secs_f64() * 100.0
    );
    let (filtered, body) = get(format!("{list}?To=%2B12125550777&PageSize=50")).await?;
    println!(
        "To filter page ({} rows):  {:.2} ms",
        body["messages"].as_array().map(Vec::len).unwrap_or(0),
        filtered.as_secs_f64() * 1000.0
    );
    let today = time::OffsetDateTime::now_utc().date();
    let (by_day, body) = get(format!(
        "{list}?DateSent={:04}-{:02}-{:02}&PageSize=50",
        today.year(),
        u8::from(today.month()),
        today.day()
    ))
    .await?;
    println!(
        "DateSent page ({} rows):   {:.2} ms",
        body["messages"].as_array().map(Vec::len).unwrap_or(0),
        by_day.as_secs_f64() * 1000.0
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
