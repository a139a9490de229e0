//! Crash safety: `kill -9` the server while it is still accepting and dispatching messages,
//! restart it, and check that every accepted message (and any whose 201 was lost to the kill)
//! reaches exactly one final state. Submits repeated after the restart can only be those in
//! flight at the kill; the test counts and prints them. With `durability = "written"`
//! (nothing waits for the disk) a crash of warbler must lose nothing either.

mod common;

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use warbler::store::Store;

const MESSAGES: usize = 600;

fn start(database_url: &str, port: u16, dir: &std::path::Path, durability: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_warbler"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--database-url",
            database_url,
        ])
        .current_dir(dir)
        .env("WARBLER_ACCOUNT_SID", common::MAIN_SID)
        .env("WARBLER_AUTH_TOKEN", common::MAIN_TOKEN)
        .env("WARBLER_RATE_LIMIT_PER_SECOND", "0")
        .env("WARBLER_SIMULATED_LATENCY_MS", "20")
        .env("WARBLER_DISPATCH_LEASE_MS", "1000")
        .env("WARBLER_PACING__LONG_CODE", "1000000")
        .env("WARBLER_LOG", "warn")
        .env("WARBLER_DURABILITY", durability)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start warbler")
}

async fn wait_ready(client: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(r) = client.get(format!("{base}/healthz")).send().await {
            if r.status().is_success() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("warbler did not become ready");
}

/// `warbler_db_wal_syncs_total` as `/metrics` shows it (0 when not yet counted).
async fn wal_syncs(client: &reqwest::Client, base: &str) -> u64 {
    let text = client
        .get(format!("{base}/metrics"))
        .basic_auth(common::MAIN_SID, Some(common::MAIN_TOKEN))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix("warbler_db_wal_syncs_total "))
        .map(|value| value.trim().parse().unwrap())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_loses_nothing_and_resends_only_in_flight_messages() {
    kill_while_sending_then_restart("synced").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_writes_not_synced_a_killed_server_loses_nothing_either() {
    kill_while_sending_then_restart("written").await;
}

/// On PostgreSQL, `written` turns `synchronous_commit` off for warbler's sessions only; the
/// default leaves the server's setting alone.
#[tokio::test]
async fn written_sessions_on_postgresql_do_not_wait_for_the_servers_flush() {
    use warbler::store::Durability;
    let database = common::fresh_database().await;
    let database_url = database.url.clone();
    if !database_url.starts_with("postgres") {
        return;
    }
    let show = |store: Store| async move {
        let (now, server): (String, String) = sqlx::query_as(
            "SELECT current_setting('synchronous_commit'), reset_val FROM pg_settings \
             WHERE name = 'synchronous_commit'",
        )
        .fetch_one(store.pool())
        .await
        .unwrap();
        (now, server)
    };
    let written = Store::connect_with(&database_url, Durability::Written)
        .await
        .unwrap();
    assert_eq!(show(written).await.0, "off");
    let synced = Store::connect(&database_url).await.unwrap();
    let (now, server) = show(synced).await;
    assert_eq!(now, server, "the server's own setting");
}

async fn kill_while_sending_then_restart(durability: &str) {
    let database = common::fresh_database().await;
    let database_url = database.url.clone();
    let dir = std::env::temp_dir().join(format!(
        "warbler-crash-{}",
        warbler::domain::sid::random_hex32()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let port = common::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let accounts = format!("{base}/2010-04-01/Accounts/{}", common::MAIN_SID);
    warbler::webhook::install_crypto_provider();
    let client = reqwest::Client::new();
    let auth =
        |r: reqwest::RequestBuilder| r.basic_auth(common::MAIN_SID, Some(common::MAIN_TOKEN));

    let mut server = start(&database_url, port, &dir, durability);
    wait_ready(&client, &base).await;
    let bought = auth(client.post(format!("{accounts}/IncomingPhoneNumbers.json")))
        .form(&[("PhoneNumber", "+14155550100")])
        .send()
        .await
        .unwrap();
    assert_eq!(bought.status(), 201);

    let started = Instant::now();
    // Send with 16 concurrent requests; the dispatcher runs meanwhile.
    let accepted = std::sync::Arc::new(tokio::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for worker in 0..16 {
        let client = client.clone();
        let url = format!("{accounts}/Messages.json");
        let accepted = accepted.clone();
        tasks.push(tokio::spawn(async move {
            for i in (worker..MESSAGES).step_by(16) {
                let to = format!("+1415555{:04}", 2000 + i);
                let reply = client
                    .post(&url)
                    .basic_auth(common::MAIN_SID, Some(common::MAIN_TOKEN))
                    .form(&[
                        ("To", to.as_str()),
                        ("From", "+14155550100"),
                        ("Body", "crash test"),
                    ])
                    .send()
                    .await;
                // After the kill, requests fail: only 201s count as accepted.
                let Ok(reply) = reply else { break };
                if reply.status() != 201 {
                    break;
                }
                let Ok(text) = reply.text().await else { break };
                let body: serde_json::Value = serde_json::from_str(&text).unwrap();
                accepted
                    .lock()
                    .await
                    .push(body["sid"].as_str().unwrap().to_string());
            }
        }));
    }
    // kill -9 halfway: requests are still arriving and the dispatcher is working.
    while accepted.lock().await.len() < MESSAGES / 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let syncs = wal_syncs(&client, &base).await;
    server.kill().unwrap();
    server.wait().unwrap();
    if database_url.starts_with("sqlite") {
        // Synced, every answer waited for a sync of the WAL; written, none did.
        match durability {
            "written" => assert_eq!(syncs, 0, "no WAL sync when writes are not synced"),
            _ => assert!(syncs > 0, "the WAL was synced before answering"),
        }
    }
    eprintln!("crash test: killed after {:?}", started.elapsed());
    for task in tasks {
        task.await.unwrap();
    }

    let store = Store::connect(&database_url).await.unwrap();
    let pending_at_kill: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM messages WHERE status NOT IN ('delivered', 'undelivered', 'failed')",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();

    let mut server = start(&database_url, port, &dir, durability);
    wait_ready(&client, &base).await;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let unfinished: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM messages WHERE status NOT IN ('delivered', 'undelivered', 'failed')",
        )
        .fetch_one(store.pool())
        .await
        .unwrap();
        if unfinished == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{unfinished} messages never finished"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("crash test: all final after {:?}", started.elapsed());
    server.kill().unwrap();
    server.wait().unwrap();

    let accepted: HashSet<String> = accepted.lock().await.iter().cloned().collect();
    assert!(accepted.len() >= MESSAGES / 2);
    let rows: Vec<(String, String)> = sqlx::query_as("SELECT sid, status FROM messages")
        .fetch_all(store.pool())
        .await
        .unwrap();
    let stored: HashSet<String> = rows.iter().map(|(sid, _)| sid.clone()).collect();
    assert!(
        accepted.is_subset(&stored),
        "every accepted message is stored"
    );
    // Beyond those: requests committed whose 201 the kill cut off (at most one group commit).
    assert!(stored.len() - accepted.len() <= 512);
    assert!(
        rows.iter().all(|(_, status)| status == "delivered"),
        "one final state each"
    );
    // Each message's transitions are in its `events` column (`status,at[,code];` each).
    let histories: Vec<Option<String>> = sqlx::query_scalar("SELECT events FROM messages")
        .fetch_all(store.pool())
        .await
        .unwrap();
    let finals = histories
        .iter()
        .flat_map(|events| events.as_deref().unwrap_or("").split(';'))
        .filter(|entry| {
            matches!(
                entry.split(',').next(),
                Some("delivered" | "undelivered" | "failed")
            )
        })
        .count() as i64;
    assert_eq!(
        finals,
        stored.len() as i64,
        "exactly one final event per message"
    );
    let submits: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM simulated_submissions")
        .fetch_one(store.pool())
        .await
        .unwrap();
    let duplicates = submits - stored.len() as i64;
    eprintln!(
        "crash test: {} accepted, {} stored, {pending_at_kill} not final at the kill, {submits} carrier submits, {duplicates} repeated after restart",
        accepted.len(),
        stored.len()
    );
    // Only messages claimed but not yet recorded can be submitted again: at most one batch.
    assert!(
        (0..=500).contains(&duplicates),
        "{duplicates} repeated submits"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
