//! Migrations that rebuild or move a table keep its rows (on the database `TEST_DATABASE_URL` names).

mod common;

use sqlx::any::AnyPoolOptions;
use sqlx::Row;
use warbler::domain::message::MessageStatus;

/// A fresh database (its guard, its URL and a one-connection pool on it, nothing migrated yet)
/// and the project's migrations.
async fn unmigrated_database() -> (
    common::TestDatabase,
    String,
    sqlx::AnyPool,
    sqlx::migrate::Migrator,
) {
    let database = common::fresh_database().await;
    let mut url = database.url.clone();
    if url.starts_with("sqlite") {
        url.push_str("?mode=rwc");
    }
    sqlx::any::install_default_drivers();
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .expect("connect");
    (database, url, pool, sqlx::migrate!("./migrations"))
}

/// Migration 0022 rebuilds `message_events` without its foreign key (SQLite cannot drop one):
/// the events recorded before it must come through, and the key must be gone.
#[tokio::test]
async fn message_events_keep_their_rows_when_their_key_is_dropped() {
    let (_database, url, pool, migrator) = unmigrated_database().await;
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

    migrator.run_to(22, &pool).await.expect("migrate to 0022");

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

    // The store opens the database, migrates it to the end (0023 moves the events into their
    // message's row) and reads them through its own query.
    let store = warbler::store::Store::connect(&url).await.expect("open");
    let seen = store
        .message_events("SM00000000000000000000000000000001")
        .await
        .expect("events");
    assert_eq!(
        seen,
        vec![
            (MessageStatus::Queued, None, 10),
            (MessageStatus::Sent, None, 20),
            (MessageStatus::Undelivered, Some(30005), 30),
        ]
    );
}

/// Migration 0023 moves each message's events from `message_events` into its own row
/// (`messages.events`), in the order the table gave them (time, then status), error codes
/// kept; a message with no event has none, and the table is gone.
#[tokio::test]
async fn message_events_move_into_their_message_row() {
    let (_database, url, pool, migrator) = unmigrated_database().await;
    migrator.run_to(22, &pool).await.expect("migrate to 0022");
    let message = |sid: &str| {
        format!(
            "INSERT INTO messages (sid, account_sid, direction, to_address, body, encoding, num_segments, \
             num_media, status, price_unit, validity_period, attempts, date_created, date_updated) \
             VALUES ('{sid}', 'AC00000000000000000000000000000001', 'outbound-api', '+15550002222', \
             'hello', 'GSM', 1, 0, 'failed', 'USD', 36000, 1, 10, 30)"
        )
    };
    for statement in [
        "INSERT INTO accounts (sid, friendly_name, status, auth_token, account_type, date_created, date_updated) \
         VALUES ('AC00000000000000000000000000000001', 'old', 'active', 'token', 'Full', 1, 1)"
            .to_string(),
        message("SM00000000000000000000000000000001"),
        message("SM00000000000000000000000000000002"),
        message("SM00000000000000000000000000000003"),
        // Inserted out of order: the table's order is (time, status).
        "INSERT INTO message_events (message_sid, status, error_code, at) VALUES \
         ('SM00000000000000000000000000000001', 'failed', 30007, 25), \
         ('SM00000000000000000000000000000001', 'sent', NULL, 20), \
         ('SM00000000000000000000000000000001', 'sending', NULL, 20), \
         ('SM00000000000000000000000000000001', 'queued', NULL, 10), \
         ('SM00000000000000000000000000000002', 'failed', 21610, 10)"
            .to_string(),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(statement.clone()))
            .execute(&pool)
            .await
            .expect(&statement);
    }
    migrator.run(&pool).await.expect("migrate to the end");
    assert!(
        sqlx::query("SELECT COUNT(*) FROM message_events")
            .execute(&pool)
            .await
            .is_err(),
        "message_events is gone after 0023"
    );
    pool.close().await;

    let store = warbler::store::Store::connect(&url).await.expect("open");
    let events = |sid: &'static str| {
        let store = store.clone();
        async move { store.message_events(sid).await.expect("events") }
    };
    assert_eq!(
        events("SM00000000000000000000000000000001").await,
        vec![
            (MessageStatus::Queued, None, 10),
            (MessageStatus::Sending, None, 20),
            (MessageStatus::Sent, None, 20),
            (MessageStatus::Failed, Some(30007), 25),
        ]
    );
    assert_eq!(
        events("SM00000000000000000000000000000002").await,
        vec![(MessageStatus::Failed, Some(21610), 10)]
    );
    assert_eq!(events("SM00000000000000000000000000000003").await, vec![]);
}

/// On PostgreSQL a store leaves room in `messages`' pages for the updates of a message's
/// status (its fill factor); a second store on the same database keeps it.
#[tokio::test]
async fn postgres_messages_pages_keep_room_for_status_updates() {
    let database = common::fresh_database().await;
    let url = database.url.clone();
    if !url.starts_with("postgres") {
        return;
    }
    let options = |store: &warbler::store::Store| {
        let pool = store.pool().clone();
        async move {
            let row = sqlx::query(
                "SELECT COALESCE(array_to_string(reloptions, ','), '') AS options \
                 FROM pg_class WHERE oid = 'messages'::regclass",
            )
            .fetch_one(&pool)
            .await
            .unwrap();
            row.try_get::<String, _>("options").unwrap()
        }
    };
    let first = warbler::store::Store::connect(&url).await.unwrap();
    assert_eq!(options(&first).await, "fillfactor=50");
    let second = warbler::store::Store::connect(&url).await.unwrap();
    assert_eq!(options(&second).await, "fillfactor=50");
}
