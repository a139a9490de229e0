//! The console's pages on a large table: inserts N messages (default 1,000,000, all of them
//! in the last 24 hours: the worst case for the overview's counts and charts) for one account
//! into a fresh SQLite file (or the PostgreSQL database given), counts them in the console's
//! hourly outcomes, then times console pages through the real router with a logged-in session.
//!
//! ```sh
//! cargo run --release --example bench_console -- [N] [DATABASE_URL]
//! ```

#[path = "support/mod.rs"]
mod support;

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use std::time::Instant;
use tower::ServiceExt;

use support::{BENCH_SID as SID, BENCH_TOKEN as TOKEN};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let support::LargeTable {
        store, app, dir, ..
    } = support::large_table("console", 1_000_000, "bench").await?;
    // The messages were written as delivered, not delivered by the pipeline: count them as
    // the migration counts messages already final, so the overview has a million to show.
    sqlx::query(
        "INSERT INTO console_outcomes (account_sid, hour, status, error_code, latency_bucket, count) \
         SELECT account_sid, (date_updated / 3600000000) * 3600000000, status, 0, 4, COUNT(*) \
         FROM messages GROUP BY account_sid, (date_updated / 3600000000) * 3600000000, status",
    )
    .execute(store.pool())
    .await?;
    let session = app.console_login(SID, TOKEN, None).await?;
    // An ISV's family: the main overview has a row per subaccount.
    let subaccounts: usize = std::env::var("SUBACCOUNTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200);
    for i in 0..subaccounts {
        app.create_subaccount(&session.session.principal, Some(&format!("customer {i}")))
            .await?;
    }
    println!("{subaccounts} subaccounts");
    let cookie = format!("warbler_session={}", session.token);
    let router = support::bench_router(app);
    let get = |uri: String| {
        let router = router.clone();
        let cookie = cookie.clone();
        async move {
            let t = Instant::now();
            let response = router
                .oneshot(
                    Request::get(&uri)
                        .header("Cookie", cookie)
                        .body(Body::empty())?,
                )
                .await?;
            let status = response.status();
            let bytes = response.into_body().collect().await?.to_bytes();
            anyhow::ensure!(status.is_success(), "{uri}: {status}");
            anyhow::Ok((t.elapsed(), String::from_utf8_lossy(&bytes).into_owned()))
        }
    };
    let base = format!("/console/{SID}");
    for (name, path) in [
        ("overview", base.clone()),
        ("messages, first page", format!("{base}/messages")),
        (
            "messages, To filter",
            format!("{base}/messages?to=%2B12125550777"),
        ),
        (
            "messages, status filter",
            format!("{base}/messages?status=delivered"),
        ),
        (
            "messages, rare status",
            format!("{base}/messages?status=failed"),
        ),
        (
            "messages, rare error code",
            format!("{base}/messages?error_code=30003"),
        ),
        ("usage", format!("{base}/usage")),
    ] {
        let (elapsed, _) = get(path).await?;
        println!("{name:28} {:8.1} ms", elapsed.as_secs_f64() * 1000.0);
    }
    // Ten pages deep by the "Older" link.
    let (_, mut page) = get(format!("{base}/messages")).await?;
    let t = Instant::now();
    for _ in 0..10 {
        let at = page.find("?after=").expect("an Older link");
        let end = at + page[at..].find('"').expect("link end");
        let next = page[at..end].replace("&amp;", "&");
        page = get(format!("{base}/messages{next}")).await?.1;
    }
    println!(
        "{:28} {:8.1} ms each",
        "messages, next 10 pages",
        t.elapsed().as_secs_f64() * 100.0
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
