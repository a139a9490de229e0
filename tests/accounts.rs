//! Accounts and authentication over HTTP, on the database `TEST_DATABASE_URL` names.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::{spawn, spawn_with, Options, MAIN_SID};
use serde_json::Value;
use std::collections::HashSet;

#[tokio::test]
async fn creating_a_subaccount_returns_its_credentials_and_twilio_fields() {
    let server = spawn().await;
    let reply = server
        .post(
            "/2010-04-01/Accounts.json",
            server.main_creds(),
            &[("FriendlyName", "FalconFlights")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let sub = &reply.body;
    let sid = sub["sid"].as_str().unwrap();
    assert!(sid.starts_with("AC") && sid.len() == 34 && sid != MAIN_SID);
    assert_eq!(sub["auth_token"].as_str().unwrap().len(), 32);
    assert_eq!(sub["owner_account_sid"], MAIN_SID);
    assert_eq!(sub["friendly_name"], "FalconFlights");
    assert_eq!(sub["status"], "active");
    assert_eq!(sub["type"], "Full");
    assert_eq!(sub["uri"], format!("/2010-04-01/Accounts/{sid}.json"));
    assert_eq!(
        sub["subresource_uris"]["incoming_phone_numbers"],
        format!("/2010-04-01/Accounts/{sid}/IncomingPhoneNumbers.json")
    );
    let created = sub["date_created"].as_str().unwrap();
    assert!(
        created.ends_with(" +0000") && created.len() == 31,
        "{created}"
    );

    // The main account is its own owner.
    let main = server
        .get(
            &format!("/2010-04-01/Accounts/{MAIN_SID}.json"),
            server.main_creds(),
        )
        .await;
    assert_eq!(main.body["owner_account_sid"], MAIN_SID);
    assert_eq!(main.body["friendly_name"], "Owlie Notifications");
}

#[tokio::test]
async fn a_subaccount_without_a_name_gets_twilios_default_name() {
    let server = spawn().await;
    let reply = server
        .post("/2010-04-01/Accounts.json", server.main_creds(), &[])
        .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let name = reply.body["friendly_name"].as_str().unwrap();
    assert!(name.starts_with("SubAccount Created at "), "{name}");
    assert!(name.ends_with(" AM") || name.ends_with(" PM"), "{name}");
}

#[tokio::test]
async fn a_subaccount_cannot_create_subaccounts() {
    let server = spawn().await;
    let (sid, token) = server.subaccount("FalconFlights").await;
    server
        .post(
            "/2010-04-01/Accounts.json",
            (&sid, &token),
            &[("FriendlyName", "Nested")],
        )
        .await
        .assert_error(400, 21101);
}

#[tokio::test]
async fn the_subaccount_cap_holds_even_under_concurrent_creation() {
    let server = spawn_with(Options {
        max_subaccounts: 3,
        ..Options::default()
    })
    .await;
    let attempts = (0..10).map(|i| {
        let name = format!("racer-{i}");
        let server = &server;
        async move {
            server
                .post(
                    "/2010-04-01/Accounts.json",
                    server.main_creds(),
                    &[("FriendlyName", &name)],
                )
                .await
        }
    });
    let replies = futures::future::join_all(attempts).await;
    let created = replies
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .count();
    assert_eq!(created, 3);
    for reply in replies.iter().filter(|r| r.status != StatusCode::CREATED) {
        reply.assert_error(400, 21480);
    }
    let listed = server
        .collect_pages(
            "/2010-04-01/Accounts.json?PageSize=50",
            "accounts",
            server.main_creds(),
        )
        .await;
    assert_eq!(listed.len(), 4, "main + 3 subaccounts");
}

#[tokio::test]
async fn listing_filters_by_name_and_status_and_pages_every_account_once() {
    let server = spawn().await;
    let mut sids = HashSet::new();
    sids.insert(MAIN_SID.to_string());
    for i in 0..23 {
        sids.insert(server.subaccount(&format!("customer-{i}")).await.0);
    }
    let (dup_sid, _) = server.subaccount("FalconFlights").await;
    sids.insert(dup_sid.clone());

    let all = server
        .collect_pages(
            "/2010-04-01/Accounts.json?PageSize=4",
            "accounts",
            server.main_creds(),
        )
        .await;
    let seen: Vec<String> = all
        .iter()
        .map(|a| a["sid"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(seen.len(), sids.len(), "no duplicates, nothing missing");
    assert_eq!(seen.iter().cloned().collect::<HashSet<_>>(), sids);

    let named = server
        .collect_pages(
            "/2010-04-01/Accounts.json?FriendlyName=FalconFlights",
            "accounts",
            server.main_creds(),
        )
        .await;
    assert_eq!(named.len(), 1);
    assert_eq!(named[0]["sid"], dup_sid.as_str());

    server
        .post(
            &format!("/2010-04-01/Accounts/{dup_sid}.json"),
            server.main_creds(),
            &[("Status", "suspended")],
        )
        .await;
    let suspended = server
        .get(
            "/2010-04-01/Accounts.json?Status=suspended",
            server.main_creds(),
        )
        .await;
    let list = suspended.body["accounts"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["sid"], dup_sid.as_str());
    assert_eq!(
        suspended.body["first_page_uri"],
        "/2010-04-01/Accounts.json?Status=suspended&PageSize=50&Page=0"
    );
    // Exactly one key besides the paging metadata (the SDKs rely on it).
    assert_eq!(suspended.body.as_object().unwrap().len(), 9);

    server
        .get(
            "/2010-04-01/Accounts.json?Status=sleeping",
            server.main_creds(),
        )
        .await
        .assert_error(400, 20001);
    server
        .get(
            "/2010-04-01/Accounts.json?PageSize=abc",
            server.main_creds(),
        )
        .await
        .assert_error(400, 20001);
}

#[tokio::test]
async fn page_index_without_token_skips_whole_pages() {
    let server = spawn().await;
    for i in 0..5 {
        server.subaccount(&format!("c{i}")).await;
    }
    let first = server
        .get(
            "/2010-04-01/Accounts.json?PageSize=2&Page=0",
            server.main_creds(),
        )
        .await;
    let second = server
        .get(
            "/2010-04-01/Accounts.json?PageSize=2&Page=1",
            server.main_creds(),
        )
        .await;
    let via_token = server
        .get(
            first.body["next_page_uri"].as_str().unwrap(),
            server.main_creds(),
        )
        .await;
    assert_eq!(second.body["accounts"], via_token.body["accounts"]);
    assert_eq!(second.body["start"], 2);
    assert_eq!(second.body["end"], 3);
    assert_eq!(
        second.body["previous_page_uri"],
        "/2010-04-01/Accounts.json?PageSize=2&Page=0"
    );
}

#[tokio::test]
async fn a_subaccount_sees_only_itself() {
    let server = spawn().await;
    let (sid, token) = server.subaccount("FalconFlights").await;
    let (sibling, _) = server.subaccount("OtherCustomer").await;
    let list = server
        .get("/2010-04-01/Accounts.json", (&sid, &token))
        .await;
    let sids: Vec<&str> = list.body["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["sid"].as_str().unwrap())
        .collect();
    assert_eq!(sids, vec![sid.as_str()]);

    server
        .get(
            &format!("/2010-04-01/Accounts/{MAIN_SID}.json"),
            (&sid, &token),
        )
        .await
        .assert_error(401, 20003);
    server
        .get(
            &format!("/2010-04-01/Accounts/{sibling}.json"),
            (&sid, &token),
        )
        .await
        .assert_error(401, 20003);
    server
        .post(
            &format!("/2010-04-01/Accounts/{sibling}.json"),
            (&sid, &token),
            &[("FriendlyName", "mine")],
        )
        .await
        .assert_error(401, 20003);
    // The parent acts on the subaccount's path.
    let fetched = server
        .get(
            &format!("/2010-04-01/Accounts/{sid}.json"),
            server.main_creds(),
        )
        .await;
    assert_eq!(fetched.status, StatusCode::OK);
    assert_eq!(fetched.body["auth_token"], token.as_str());
}

#[tokio::test]
async fn suspending_refuses_the_subaccounts_own_credentials_until_reactivated() {
    let server = spawn().await;
    let (sid, token) = server.subaccount("FalconFlights").await;
    let path = format!("/2010-04-01/Accounts/{sid}.json");

    // A subaccount cannot change its own status.
    server
        .post(&path, (&sid, &token), &[("Status", "closed")])
        .await
        .assert_error(403, 20403);

    let suspended = server
        .post(&path, server.main_creds(), &[("Status", "suspended")])
        .await;
    assert_eq!(suspended.status, StatusCode::OK);
    assert_eq!(suspended.body["status"], "suspended");
    server
        .get(&path, (&sid, &token))
        .await
        .assert_error(401, 20003);
    assert_eq!(
        server.get(&path, server.main_creds()).await.body["status"],
        "suspended"
    );

    let active = server
        .post(&path, server.main_creds(), &[("Status", "active")])
        .await;
    assert_eq!(active.body["status"], "active");
    assert_eq!(
        server.get(&path, (&sid, &token)).await.status,
        StatusCode::OK
    );

    let renamed = server
        .post(
            &path,
            (&sid, &token),
            &[("FriendlyName", "Falcon Flights Inc")],
        )
        .await;
    assert_eq!(renamed.body["friendly_name"], "Falcon Flights Inc");
    assert_eq!(renamed.body["status"], "active");
}

#[tokio::test]
async fn closing_is_final() {
    let server = spawn().await;
    let (sid, token) = server.subaccount("FalconFlights").await;
    let path = format!("/2010-04-01/Accounts/{sid}.json");
    let closed = server
        .post(&path, server.main_creds(), &[("Status", "closed")])
        .await;
    assert_eq!(closed.body["status"], "closed");
    server
        .post(&path, server.main_creds(), &[("Status", "active")])
        .await
        .assert_error(400, 21479);
    server
        .post(&path, server.main_creds(), &[("Status", "suspended")])
        .await
        .assert_error(400, 21479);
    server
        .get(&path, (&sid, &token))
        .await
        .assert_error(401, 20003);
    assert_eq!(
        server.get(&path, server.main_creds()).await.body["status"],
        "closed"
    );
}

#[tokio::test]
async fn malformed_updates_are_refused_with_twilio_codes() {
    let server = spawn().await;
    let (sid, _) = server.subaccount("FalconFlights").await;
    let path = format!("/2010-04-01/Accounts/{sid}.json");
    server
        .post(&path, server.main_creds(), &[("Status", "paused")])
        .await
        .assert_error(400, 20001);
    let long = "x".repeat(65);
    server
        .post(&path, server.main_creds(), &[("FriendlyName", &long)])
        .await
        .assert_error(400, 21658);
    server
        .post(
            "/2010-04-01/Accounts.json",
            server.main_creds(),
            &[("FriendlyName", &long)],
        )
        .await
        .assert_error(400, 21658);
    // The main account's status is not the API's to change.
    server
        .post(
            &format!("/2010-04-01/Accounts/{MAIN_SID}.json"),
            server.main_creds(),
            &[("Status", "suspended")],
        )
        .await
        .assert_error(403, 20403);
    // Unknown parameters are ignored.
    let ok = server
        .post(
            &path,
            server.main_creds(),
            &[("Colour", "blue"), ("FriendlyName", "F2")],
        )
        .await;
    assert_eq!(ok.body["friendly_name"], "F2");
}

#[tokio::test]
async fn unknown_accounts_and_paths_are_404_in_twilio_shape() {
    let server = spawn().await;
    let missing = "/2010-04-01/Accounts/AC00000000000000000000000000000000.json";
    let reply = server.get(missing, server.main_creds()).await;
    reply.assert_error(404, 20404);
    assert_eq!(
        reply.body["message"],
        format!("The requested resource {missing} was not found")
    );
    server
        .get("/2010-04-01/Accounts/not-a-sid.json", server.main_creds())
        .await
        .assert_error(404, 20404);
    server
        .get("/2010-04-01/Nothing.json", server.main_creds())
        .await
        .assert_error(404, 20404);
    // The `.json` suffix is optional.
    let plain = server
        .get(
            &format!("/2010-04-01/Accounts/{MAIN_SID}"),
            server.main_creds(),
        )
        .await;
    assert_eq!(plain.status, StatusCode::OK);
    // A method the resource does not have.
    server
        .delete(
            &format!("/2010-04-01/Accounts/{MAIN_SID}.json"),
            server.main_creds(),
        )
        .await
        .assert_error(405, 20004);
}

#[tokio::test]
async fn bad_or_missing_credentials_get_20003_and_a_basic_challenge() {
    let server = spawn().await;
    let path = format!("/2010-04-01/Accounts/{MAIN_SID}.json");
    let wrong = server
        .get(&path, (MAIN_SID, "00000000000000000000000000000000"))
        .await;
    wrong.assert_error(401, 20003);
    assert_eq!(
        wrong.headers["www-authenticate"],
        "Basic realm=\"Twilio API\""
    );
    server
        .get(&path, ("nobody", "x"))
        .await
        .assert_error(401, 20003);
    server
        .get(&path, (MAIN_SID, ""))
        .await
        .assert_error(401, 20003);

    let no_header = server
        .raw(Request::builder().uri(&path).body(Body::empty()).unwrap())
        .await;
    no_header.assert_error(401, 20003);
    let garbage = server
        .raw(
            Request::builder()
                .uri(&path)
                .header("Authorization", "Basic !!!notbase64")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    garbage.assert_error(401, 20003);
}

#[tokio::test]
async fn requests_over_the_rate_limit_get_20429() {
    let server = spawn_with(Options {
        rate_limit_per_second: 1,
        rate_limit_burst: 3,
        ..Options::default()
    })
    .await;
    let path = format!("/2010-04-01/Accounts/{MAIN_SID}.json");
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(server.get(&path, server.main_creds()).await.status.as_u16());
    }
    assert_eq!(&statuses[..3], &[200, 200, 200]);
    assert!(statuses[3..].contains(&429), "{statuses:?}");
    server
        .get(&path, server.main_creds())
        .await
        .assert_error(429, 20429);
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let server = spawn_with(Options {
        max_body_bytes: 1024,
        ..Options::default()
    })
    .await;
    let huge = "a".repeat(4096);
    let reply = server
        .call(
            Method::POST,
            "/2010-04-01/Accounts.json",
            server.main_creds(),
            &[("FriendlyName", &huge)],
        )
        .await;
    assert_eq!(reply.status.as_u16(), 413);
    assert_eq!(reply.body["status"], 413);
    let listed = server
        .get("/2010-04-01/Accounts.json", server.main_creds())
        .await;
    assert_eq!(
        listed.body["accounts"].as_array().map(Vec::len),
        Some(1),
        "nothing was created"
    );
    let _: &Value = &listed.body;
}
