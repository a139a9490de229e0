//! Shared by the benchmarks: filling a table with delivered messages quickly, and a
//! Messaging Service with a pool of numbers. (Each benchmark uses part of it.)
#![allow(dead_code)]

use warbler::domain::message::{Direction, Message, MessageStatus};
use warbler::service::{App, Settings};
use warbler::store::Store;

/// The main account of the large-table benchmarks.
pub const BENCH_SID: &str = "AC0123456789abcdef0123456789abcdef";
pub const BENCH_TOKEN: &str = "fedcba9876543210fedcba9876543210";

/// The start of a large-table benchmark (`bench_list`, `bench_console`, `bench_export`):
/// reads `[N] [DATABASE_URL]` from the command line (N defaults to `default_total`; the
/// database to a fresh SQLite file named `name`), opens it, creates the main account and fills
/// it with N delivered messages saying `body`.
pub async fn large_table(
    name: &str,
    default_total: usize,
    body: &str,
) -> anyhow::Result<LargeTable> {
    let args: Vec<String> = std::env::args().collect();
    let total: usize = args
        .get(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(default_total);
    let dir = std::env::temp_dir().join(format!("warbler-bench-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let url = args
        .get(2)
        .cloned()
        .unwrap_or_else(|| format!("sqlite://{}/{name}.db", dir.display()));
    let store = Store::connect(&url).await?;
    let app = App::new(store.clone(), Settings::new(1000, String::new()));
    app.ensure_main_account(Some(BENCH_SID), Some(BENCH_TOKEN), "bench")
        .await?;
    let started = std::time::Instant::now();
    fill_messages(&store, BENCH_SID, total, body).await?;
    println!(
        "inserted {total} messages in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(LargeTable {
        total,
        url,
        store,
        app,
        dir,
    })
}

/// What `large_table` set up.
pub struct LargeTable {
    /// Messages inserted.
    pub total: usize,
    /// The database's URL (for a `warbler` process the benchmark starts on it).
    pub url: String,
    pub store: Store,
    pub app: App,
    /// A scratch folder (the SQLite file's, when no database URL was given): the benchmark
    /// removes it at the end.
    pub dir: std::path::PathBuf,
}

/// The API's router over `app`, without rate limits, for benchmarks that call it in-process.
pub fn bench_router(app: App) -> axum::Router {
    warbler::api::router(
        app,
        &warbler::api::HttpSettings {
            public_url: "http://127.0.0.1".into(),
            max_body_bytes: 1 << 20,
            rate_limit_per_second: 0,
            rate_limit_burst: 0,
            failed_auth_limit: 0,
        },
    )
}

/// Inserts `total` delivered messages of `account` (one a millisecond, ending now), to 1,000
/// recipients, in transactions of 1,000.
pub async fn fill_messages(
    store: &Store,
    account: &str,
    total: usize,
    body: &str,
) -> anyhow::Result<()> {
    let base = warbler::domain::time::now_micros() - total as i64 * 1_000;
    let mut batch = Vec::with_capacity(1000);
    for i in 0..total {
        let at = base + i as i64 * 1_000;
        batch.push((
            Message {
                sid: format!("SM{:032x}", i),
                account_sid: account.into(),
                messaging_service_sid: None,
                direction: Direction::OutboundApi,
                from: Some("+14155550100".into()),
                to: format!("+1212555{:04}", i % 1000),
                body: body.into(),
                encoding: "GSM-7".into(),
                num_segments: 1,
                num_media: 0,
                status: MessageStatus::Delivered,
                error_code: None,
                error_message: None,
                price: Some("-0.00790".into()),
                price_unit: "USD".into(),
                status_callback: None,
                validity_period: 36000,
                send_at: None,
                date_created: at,
                date_updated: at,
                date_sent: Some(at),
            },
            Vec::new(),
        ));
        if batch.len() == 1000 {
            store.insert_messages(&batch, at).await?;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        store.insert_messages(&batch, base).await?;
    }
    Ok(())
}

/// Imports 100 numbers of inventory route `route`, buys them as the main account (`sid`,
/// `token`), and pools them in one new Messaging Service; returns its SID.
pub async fn pooled_service(
    client: &reqwest::Client,
    base: &str,
    (sid, token): (&str, &str),
    route: &str,
) -> anyhow::Result<String> {
    let mut csv =
        String::from("phone_number,country,type,sms,mms,voice,locality,region,postal_code,route\n");
    for i in 0..100 {
        csv.push_str(&format!(
            "+1415555{:04},US,local,true,true,true,,,,{route}\n",
            2000 + i
        ));
    }
    let imported = client
        .post(format!("{base}/admin/numbers/import"))
        .basic_auth(sid, Some(token))
        .body(csv)
        .send()
        .await?;
    anyhow::ensure!(
        imported.status() == 201,
        "import failed: {} {}",
        imported.status(),
        imported.text().await.unwrap_or_default()
    );
    let service: serde_json::Value = client
        .post(format!("{base}/v1/Services"))
        .basic_auth(sid, Some(token))
        .form(&[("FriendlyName", "bench")])
        .send()
        .await?
        .json()
        .await?;
    let service_sid = service["sid"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("creating the service: {service}"))?
        .to_string();
    for i in 0..100 {
        let number = format!("+1415555{:04}", 2000 + i);
        let bought: serde_json::Value = client
            .post(format!(
                "{base}/2010-04-01/Accounts/{sid}/IncomingPhoneNumbers.json"
            ))
            .basic_auth(sid, Some(token))
            .form(&[("PhoneNumber", number.as_str())])
            .send()
            .await?
            .json()
            .await?;
        let pn = bought["sid"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("buying {number}: {bought}"))?;
        let pooled = client
            .post(format!("{base}/v1/Services/{service_sid}/PhoneNumbers"))
            .basic_auth(sid, Some(token))
            .form(&[("PhoneNumberSid", pn)])
            .send()
            .await?;
        anyhow::ensure!(
            pooled.status().is_success(),
            "pooling {number}: {}",
            pooled.status()
        );
    }
    Ok(service_sid)
}

/// Prints the accept phase's figures: messages accepted, throughput over `elapsed`, and the
/// p50/p99 of `latencies` (sorted).
pub fn print_accept_figures(
    latencies: &[std::time::Duration],
    failures: usize,
    elapsed: std::time::Duration,
) {
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
            .as_secs_f64()
            * 1000.0
    };
    println!(
        "  accepted:          {} ({failures} failed)",
        latencies.len()
    );
    println!(
        "  accept throughput: {:.0} msgs/s over {:.2} s",
        latencies.len() as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    println!(
        "  accept latency:    p50 {:.2} ms, p99 {:.2} ms",
        pct(0.50),
        pct(0.99)
    );
}

/// User plus system CPU time a process has used, from /proc (clock ticks of 10 ms).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}
