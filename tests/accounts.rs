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

/// The seeds' containment story: two subaccounts send through their own Messaging Services;
/// one is found non-compliant and its parent suspends it. Its queued messages fail with 30002
/// at dispatch and its new ones are refused, its numbers stay its own, and the sibling's
/// traffic goes on unchanged.
#[tokio::test]
async fn suspending_a_non_compliant_subaccount_contains_it_and_spares_its_sibling() {
    let server = spawn().await;
    server.stock().await;
    let mut tenants = Vec::new();
    for (name, number) in [("Falcon", "+14155550101"), ("Owl", "+14155550102")] {
        let (sid, token) = server.subaccount(name).await;
        let pn = server.buy(&sid, number, server.main_creds()).await;
        let service = server
            .post("/v1/Services", (&sid, &token), &[("FriendlyName", name)])
            .await;
        assert_eq!(service.status, StatusCode::CREATED, "{}", service.body);
        let service = service.body["sid"].as_str().unwrap().to_string();
        let added = server
            .post(
                &format!("/v1/Services/{service}/PhoneNumbers"),
                (&sid, &token),
                &[("PhoneNumberSid", pn.as_str())],
            )
            .await;
        assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
        tenants.push((sid, token, service, pn));
    }
    let send = |tenant: usize| {
        let (sid, token, service, _) = tenants[tenant].clone();
        let server = &server;
        async move {
            server
                .post(
                    &format!("/2010-04-01/Accounts/{sid}/Messages.json"),
                    (&sid, &token),
                    &[
                        ("To", "+14155550199"),
                        ("MessagingServiceSid", service.as_str()),
                        ("Body", "Your flight is on time"),
                    ],
                )
                .await
        }
    };
    let mut queued: Vec<Vec<String>> = vec![Vec::new(), Vec::new()];
    for tenant in [0, 1] {
        for _ in 0..5 {
            let reply = send(tenant).await;
            assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
            queued[tenant].push(reply.body["sid"].as_str().unwrap().to_string());
        }
    }
    // Falcon is found non-compliant: its parent suspends it before its queue is sent.
    let (falcon, _, _, falcon_number) = tenants[0].clone();
    let suspended = server
        .post(
            &format!("/2010-04-01/Accounts/{falcon}.json"),
            server.main_creds(),
            &[("Status", "suspended")],
        )
        .await;
    assert_eq!(suspended.status, StatusCode::OK, "{}", suspended.body);
    // A long code sends one segment a second: five rounds a second apart.
    let start = warbler::domain::time::now_micros();
    for second in 0..6 {
        server
            .app
            .dispatch_once(start + second * 1_000_000)
            .await
            .unwrap();
    }
    for (tenant, sids) in queued.iter().enumerate() {
        let account = &tenants[tenant].0;
        for sid in sids {
            let message = server
                .get(
                    &format!("/2010-04-01/Accounts/{account}/Messages/{sid}.json"),
                    server.main_creds(),
                )
                .await
                .body;
            if tenant == 0 {
                assert_eq!(message["status"], "failed", "{message}");
                assert_eq!(message["error_code"], 30002, "{message}");
            } else {
                assert_eq!(
                    message["status"], "sent",
                    "the sibling's queue goes on: {message}"
                );
            }
        }
    }
    // New sends: refused for Falcon (its own token, and the parent acting on it), fine for Owl.
    send(0).await.assert_error(401, 20003);
    let (_, _, falcon_service, _) = tenants[0].clone();
    server
        .post(
            &format!("/2010-04-01/Accounts/{falcon}/Messages.json"),
            server.main_creds(),
            &[
                ("To", "+14155550199"),
                ("MessagingServiceSid", falcon_service.as_str()),
                ("Body", "x"),
            ],
        )
        .await
        .assert_error(403, 20005);
    let owl = send(1).await;
    assert_eq!(owl.status, StatusCode::CREATED, "{}", owl.body);
    // Falcon's number is still Falcon's.
    let number = server
        .get(
            &format!("/2010-04-01/Accounts/{falcon}/IncomingPhoneNumbers/{falcon_number}.json"),
            server.main_creds(),
        )
        .await;
    assert_eq!(number.status, StatusCode::OK, "{}", number.body);
    assert_eq!(number.body["account_sid"], falcon.as_str());
}
