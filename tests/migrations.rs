//! Migrations that rebuild a table keep its rows (on the database `TEST_DATABASE_URL` names).

mod common;

use sqlx::any::AnyPoolOptions;
use sqlx::Row;

/// Migration 0022 rebuilds `message_events` without its foreign key (SQLite cannot drop one):
/// the events recorded before it must come through, and the key must be gone.
#[tokio::test]
async fn message_events_keep_their_rows_when_their_key_is_dropped() {
    let mut url = common::fresh_database_url().await;
    if url.starts_with("sqlite") {
        url.push_str("?mode=rwc");
    }
    sqlx::any::install_default_drivers();
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .expect("connect");
    let migrator = sqlx::migrate!("./migrations");
    migrator.run_to(21, &pool).await.expect("migrate to 0021");

    for statement in [
        "INSERT INTO accounts (sid, friendly_name, status, auth_token, account_type, date_created, date_updated) \
         VALUES ('AC00000000000000000000000000000001', 'old', 'active', 'token', 'Full', 1, 1)",
        "INSERT INTO messages (sid, account_sid, direction, to_address, body, encoding, num_segments, num_media, \
         status, price_unit, validity_period, attempts, date_created, date_updated) \
         VALUES ('SM00000000000000000000000000000001', 'AC00000000000000000000000000000001', 'outbound-api', \
         '+15550002222', 'hello', 'GSM', 1, 0, 'delivered', 'USD', 36000, 1, 10, 30)",
        "INSERT INTO message_events (message_sid, status, error_code, at) VALUES \
         ('SM00000000000000000000000000000001', 'queued', NULL, 10), \
         ('SM00000000000000000000000000000001', 'sent', NULL, 20), \
         ('SM00000000000000000000000000000001', 'undelivered', 30005, 30)",
    ] {
        sqlx::query(statement).execute(&pool).await.expect(statement);
    }
    // Before 0022 the key holds: an event of no message is refused.
    let orphan = "INSERT INTO message_events (message_sid, status, error_code, at) \
                  VALUES ('SM0000000000000000000000000000dead', 'sent', NULL, 40)";
    assert!(
        sqlx::query(orphan).execute(&pool).await.is_err(),
        "the key should refuse an event of no message before 0022"
    );

    migrator.run(&pool).await.expect("migrate to the end");

    let rows = sqlx::query(
        "SELECT status, error_code, at FROM message_events \
         WHERE message_sid = 'SM00000000000000000000000000000001' ORDER BY at",
    )
    .fetch_all(&pool)
    .await
    .expect("read events");
    let events: Vec<(String, Option<i64>, i64)> = rows
        .iter()
        .map(|row| {
            (
                row.get::<String, _>("status"),
                row.get::<Option<i64>, _>("error_code"),
                row.get::<i64, _>("at"),
            )
        })
        .collect();
    assert_eq!(
        events,
        vec![
            ("queued".to_string(), None, 10),
            ("sent".to_string(), None, 20),
            ("undelivered".to_string(), Some(30005), 30),
        ]
    );
    // The key is gone (what it guarded, the order of writes keeps: see the migration).
    sqlx::query(orphan)
        .execute(&pool)
        .await
        .expect("no key on message_events after 0022");
    pool.close().await;

    // The store opens the migrated database and reads the events through its own query.
    let store = warbler::store::Store::connect(&url).await.expect("open");
    let seen = store
        .message_events("SM00000000000000000000000000000001")
        .await
        .expect("events");
    assert_eq!(seen.len(), 3);
}
