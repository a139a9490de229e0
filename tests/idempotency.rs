//! A create that may have been committed is never answered in a way that invites a second
//! send: one bad message fails alone, not the requests grouped with it, and a retry with the
//! same idempotency key gets the first message back. On the database `TEST_DATABASE_URL` names.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{basic, queued_message, spawn, Reply, TestServer, MAIN_SID, MAIN_TOKEN};
use warbler::domain::time::now_micros;
use warbler::service::writer::Written;

fn messages_path(account: &str) -> String {
    format!("/2010-04-01/Accounts/{account}/Messages.json")
}

/// POST Messages.json as the main account, with `headers` added.
async fn create(server: &TestServer, headers: &[(&str, &str)], form: &[(&str, &str)]) -> Reply {
    let mut request = Request::builder()
        .method("POST")
        .uri(messages_path(MAIN_SID))
        .header("Authorization", basic(MAIN_SID, MAIN_TOKEN))
        .header("Content-Type", "application/x-www-form-urlencoded");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let body = serde_urlencoded::to_string(form).unwrap();
    server.raw(request.body(Body::from(body)).unwrap()).await
}

async fn message_count(server: &TestServer) -> usize {
    server
        .collect_pages(&messages_path(MAIN_SID), "messages", server.main_creds())
        .await
        .len()
}

async fn ready() -> TestServer {
    let server = spawn().await;
    server.stock().await;
    server
        .buy(MAIN_SID, "+14155550100", server.main_creds())
        .await;
    server
}

const HELLO: [(&str, &str); 3] = [
    ("To", "+14155550199"),
    ("From", "+14155550100"),
    ("Body", "Hello"),
];

#[tokio::test]
async fn one_bad_message_fails_alone_not_the_group_it_was_committed_with() {
    let server = spawn().await;
    let (tenant, _) = server.subaccount("Another tenant").await;
    let created = now_micros();
    let stored = queued_message(format!("SM{:032x}", 1), MAIN_SID, "stored", created);
    server
        .app
        .store
        .insert_messages(&[(stored.clone(), Vec::new())], created)
        .await
        .unwrap();
    // 60 sends of another tenant, handed to the writer at once so they are committed in a few
    // groups; one of them reuses a stored SID, so its insert breaks the primary key.
    const BAD: usize = 30;
    let writes = (0..60).map(|i| {
        let mut message = queued_message(format!("SM{:032x}", 100 + i), &tenant, "hi", created);
        if i == BAD {
            message.sid = stored.sid.clone();
        }
        server.app.writer.write(message, Vec::new(), 0, None)
    });
    let results = futures::future::join_all(writes).await;
    for (i, result) in results.iter().enumerate() {
        if i == BAD {
            assert!(result.is_err(), "the bad message fails: {result:?}");
        } else {
            assert_eq!(result.as_ref().ok(), Some(&Written::New), "message {i}");
        }
    }
    for i in (0..60).filter(|i| *i != BAD) {
        let sid = format!("SM{:032x}", 100 + i);
        assert!(
            server
                .app
                .store
                .message(&tenant, &sid)
                .await
                .unwrap()
                .is_some(),
            "{sid} was answered 201 and is stored"
        );
    }
    assert_eq!(
        server
            .app
            .store
            .message(MAIN_SID, &stored.sid)
            .await
            .unwrap()
            .map(|m| m.body),
        Some("stored".to_string()),
        "the stored message is untouched"
    );
}

#[tokio::test]
async fn a_retry_with_the_same_idempotency_key_returns_the_first_message() {
    let server = ready().await;
    for header in ["Idempotency-Key", "I-Twilio-Idempotency-Token"] {
        let key = format!("retry-{header}");
        let first = create(&server, &[(header, &key)], &HELLO).await;
        assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
        // The same parameters in another order are the same request.
        let mut reordered = HELLO;
        reordered.reverse();
        let again = create(&server, &[(header, &key)], &reordered).await;
        assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
        assert_eq!(again.body["sid"], first.body["sid"], "{header}");
    }
    assert_eq!(message_count(&server).await, 2, "one message per key");
    let without = create(&server, &[], &HELLO).await;
    let without_again = create(&server, &[], &HELLO).await;
    assert_ne!(without.body["sid"], without_again.body["sid"]);
    assert_eq!(message_count(&server).await, 4, "no key, no deduplication");
}

#[tokio::test]
async fn a_key_reused_for_another_request_is_refused_and_bad_keys_too() {
    let server = ready().await;
    let first = create(&server, &[("Idempotency-Key", "order-17")], &HELLO).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let other = [
        ("To", "+14155550199"),
        ("From", "+14155550100"),
        ("Body", "Something else"),
    ];
    let reused = create(&server, &[("Idempotency-Key", "order-17")], &other).await;
    reused.assert_error(400, 20001);
    let long = "k".repeat(256);
    for bad in [long.as_str(), ""] {
        create(&server, &[("Idempotency-Key", bad)], &HELLO)
            .await
            .assert_error(400, 20001);
    }
    assert_eq!(message_count(&server).await, 1);
    // Keys are per account: a subaccount's same key is its own.
    let (sub, sub_token) = server.subaccount("Tenant").await;
    let request = Request::builder()
        .method("POST")
        .uri(messages_path(&sub))
        .header("Authorization", basic(&sub, &sub_token))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Idempotency-Key", "order-17");
    let number = server.buy(&sub, "+14155550101", (&sub, &sub_token)).await;
    assert!(number.starts_with("PN"));
    let body = serde_urlencoded::to_string([
        ("To", "+14155550199"),
        ("From", "+14155550101"),
        ("Body", "Hello"),
    ])
    .unwrap();
    let sub_reply = server.raw(request.body(Body::from(body)).unwrap()).await;
    assert_eq!(sub_reply.status, StatusCode::CREATED, "{}", sub_reply.body);
    assert_ne!(sub_reply.body["sid"], first.body["sid"]);
}

#[tokio::test]
async fn concurrent_retries_with_one_key_send_once() {
    let server = ready().await;
    let tries = (0..12).map(|_| create(&server, &[("Idempotency-Key", "burst")], &HELLO));
    let replies = futures::future::join_all(tries).await;
    let first = &replies[0].body["sid"];
    for reply in &replies {
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        assert_eq!(&reply.body["sid"], first);
    }
    assert_eq!(message_count(&server).await, 1);
}

#[tokio::test]
async fn a_deleted_message_frees_its_key_and_old_keys_expire() {
    let server = ready().await;
    let first = create(&server, &[("Idempotency-Key", "k1")], &HELLO).await;
    let sid = first.body["sid"].as_str().unwrap().to_string();
    let deleted = server
        .app
        .store
        .delete_message(MAIN_SID, &sid)
        .await
        .unwrap();
    assert!(deleted);
    let again = create(&server, &[("Idempotency-Key", "k1")], &HELLO).await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
    assert_ne!(again.body["sid"], first.body["sid"]);

    let expired = server
        .app
        .store
        .expire_idempotency_keys(now_micros() + 1)
        .await
        .unwrap();
    assert_eq!(expired, 1);
    let after = create(&server, &[("Idempotency-Key", "k1")], &HELLO).await;
    assert_ne!(
        after.body["sid"], again.body["sid"],
        "an expired key is free"
    );
}
