//! A full disk on SQLite (SQLITE_FULL, injected by capping the file's size with
//! `max_page_count`, which fails writes exactly as a full file system does): requests get a
//! Twilio-shaped 503, nothing answered 201 is lost, nothing answered 503 is stored, reads go
//! on, and writes succeed again once there is room.

mod common;

use axum::http::StatusCode;
use common::{spawn, MAIN_SID};
use warbler::store::Backend;

fn messages_path() -> String {
    format!("/2010-04-01/Accounts/{MAIN_SID}/Messages.json")
}

#[tokio::test]
async fn a_full_disk_answers_503_loses_nothing_and_recovers() {
    let server = spawn().await;
    if server.app.store.backend() != Backend::Sqlite {
        return; // PostgreSQL's disk is the database server's (its 53100 maps to 503 too).
    }
    server.stock().await;
    server
        .buy(MAIN_SID, "+14155550100", server.main_creds())
        .await;
    let body = "x".repeat(1500);
    let form = [
        ("To", "+14155550199"),
        ("From", "+14155550100"),
        ("Body", body.as_str()),
    ];
    let before = server
        .post(&messages_path(), server.main_creds(), &form)
        .await;
    assert_eq!(before.status, StatusCode::CREATED, "{}", before.body);

    server.app.store.fault_max_pages(Some(1)).await.unwrap();
    let mut accepted = vec![before.body["sid"].as_str().unwrap().to_string()];
    let mut refused = 0;
    let path = messages_path();
    for _ in 0..300 {
        let tries = (0..8).map(|_| server.post(&path, server.main_creds(), &form));
        for reply in futures::future::join_all(tries).await {
            match reply.status.as_u16() {
                201 => accepted.push(reply.body["sid"].as_str().unwrap().to_string()),
                503 => {
                    reply.assert_error(503, 20503);
                    assert_eq!(reply.headers["retry-after"], "5");
                    refused += 1;
                }
                other => panic!("a full disk answered {other}: {}", reply.body),
            }
        }
        if refused > 0 {
            break;
        }
    }
    assert!(refused > 0, "the capped file filled up");
    // Reads go on while the disk is full.
    let listed = server
        .collect_pages(&messages_path(), "messages", server.main_creds())
        .await;
    let mut listed: Vec<String> = listed
        .iter()
        .map(|m| m["sid"].as_str().unwrap().to_string())
        .collect();
    listed.sort();
    accepted.sort();
    assert_eq!(listed, accepted, "every 201 is stored, no 503 is");

    server.app.store.fault_max_pages(None).await.unwrap();
    let after = server
        .post(&messages_path(), server.main_creds(), &form)
        .await;
    assert_eq!(after.status, StatusCode::CREATED, "{}", after.body);
    let fetched = server
        .get(
            &format!(
                "/2010-04-01/Accounts/{MAIN_SID}/Messages/{}.json",
                after.body["sid"].as_str().unwrap()
            ),
            server.main_creds(),
        )
        .await;
    assert_eq!(fetched.status, StatusCode::OK);
}
