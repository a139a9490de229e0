//! Request limits: an account's budget is charged only once its credential authenticated and is
//! shared by its keys; failed authentications back off per client address and per username
//! without locking the real owner out; unknown SIDs are remembered, not read again.

mod common;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use common::*;
use std::net::SocketAddr;
use warbler::error::Error;

const ATTACKER: &str = "203.0.113.66:40000";
const OWNER: &str = "198.51.100.7:50000";

fn account_path() -> String {
    format!("/2010-04-01/Accounts/{MAIN_SID}.json")
}

/// A GET from the client address `from`, as `into_make_service_with_connect_info` records it.
async fn get_from(server: &TestServer, from: &str, path: &str, creds: (&str, &str)) -> Reply {
    let from: SocketAddr = from.parse().unwrap();
    let request = Request::builder()
        .uri(path)
        .header("Authorization", basic(creds.0, creds.1))
        .extension(ConnectInfo(from))
        .body(Body::empty())
        .unwrap();
    server.raw(request).await
}

#[tokio::test]
async fn a_flood_of_wrong_tokens_does_not_spend_the_victims_budget() {
    let server = spawn_with(Options {
        rate_limit_per_second: 1,
        rate_limit_burst: 3,
        failed_auth_limit: 5,
        ..Options::default()
    })
    .await;
    for _ in 0..30 {
        let status = get_from(&server, ATTACKER, &account_path(), (MAIN_SID, "wrong"))
            .await
            .status
            .as_u16();
        assert!(status == 401 || status == 429, "{status}");
    }
    for _ in 0..3 {
        let reply = get_from(&server, OWNER, &account_path(), server.main_creds()).await;
        assert_eq!(
            reply.status.as_u16(),
            200,
            "the owner keeps its budget and is not locked out by failures on its SID: {}",
            reply.body
        );
    }
    // Then its own budget runs out (one request a second comes back).
    let mut over = Vec::new();
    for _ in 0..5 {
        over.push(get_from(&server, OWNER, &account_path(), server.main_creds()).await);
    }
    let refused = over.iter().find(|reply| reply.status.as_u16() != 200);
    refused
        .expect("the burst is spent")
        .assert_error(429, 20429);
}

#[tokio::test]
async fn an_accounts_auth_token_and_keys_share_one_budget() {
    let server = spawn_with(Options {
        rate_limit_per_second: 1,
        rate_limit_burst: 6,
        ..Options::default()
    })
    .await;
    // The main account's token pays for these four requests, not the subaccount.
    let (sub_sid, sub_token) = server.subaccount("FalconFlights").await;
    let mut creds = vec![(sub_sid.clone(), sub_token)];
    for name in ["a", "b", "c"] {
        let created = server
            .post(
                &format!("/2010-04-01/Accounts/{sub_sid}/Keys.json"),
                server.main_creds(),
                &[("FriendlyName", name)],
            )
            .await;
        assert_eq!(created.status.as_u16(), 201, "{}", created.body);
        creds.push((
            created.body["sid"].as_str().unwrap().to_string(),
            created.body["secret"].as_str().unwrap().to_string(),
        ));
    }
    let started = std::time::Instant::now();
    let mut allowed = 0;
    for round in 0..6 {
        for (user, pass) in &creds {
            let reply = server.get("/v1/Services", (user, pass)).await;
            match reply.status.as_u16() {
                200 => allowed += 1,
                429 => reply.assert_error(429, 20429),
                other => panic!("round {round}: {other} {}", reply.body),
            }
        }
    }
    // The burst, plus one a second for however long this took on a busy machine; a budget per
    // credential would have let all 24 through.
    let refill = started.elapsed().as_secs() as usize + 1;
    assert!(
        (6..=6 + refill).contains(&allowed),
        "{allowed} of 24 requests allowed"
    );
}

#[tokio::test]
async fn the_budget_is_split_over_the_live_nodes() {
    let server = spawn_with(Options {
        rate_limit_per_second: 1,
        rate_limit_burst: 4,
        ..Options::default()
    })
    .await;
    server
        .app
        .node
        .live_nodes
        .store(2, std::sync::atomic::Ordering::Relaxed);
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(
            server
                .get(&account_path(), server.main_creds())
                .await
                .status
                .as_u16(),
        );
    }
    assert_eq!(&statuses[..2], &[200, 200], "this node's half of the burst");
    // The whole burst would have let all four through.
    assert!(statuses[2..].contains(&429), "{statuses:?}");
}

#[tokio::test]
async fn a_flood_of_failed_authentications_blocks_only_its_address() {
    let server = spawn_with(Options {
        failed_auth_limit: 5,
        ..Options::default()
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..20 {
        let random_key = format!("SK{}", warbler::domain::sid::random_hex32());
        let reply = get_from(&server, ATTACKER, &account_path(), (&random_key, "x")).await;
        statuses.push(reply.status.as_u16());
    }
    assert_eq!(&statuses[..5], &[401; 5], "the allowed failures");
    // The sixth failure starts the backoff, and each request during it lengthens it (so a
    // stalled machine may see a 401 or two more, never at the end).
    assert!(statuses[15..].iter().all(|&s| s == 429), "{statuses:?}");
    // Blocked before its credentials are looked at: even right ones.
    get_from(&server, ATTACKER, &account_path(), server.main_creds())
        .await
        .assert_error(429, 20429);
    // Other addresses are untouched.
    let owner = get_from(&server, OWNER, &account_path(), server.main_creds()).await;
    assert_eq!(owner.status.as_u16(), 200, "{}", owner.body);
    get_from(&server, OWNER, &account_path(), (MAIN_SID, "wrong"))
        .await
        .assert_error(401, 20003);
}

#[tokio::test]
async fn failures_on_one_username_from_many_addresses_back_off_its_failures_only() {
    let server = spawn_with(Options {
        failed_auth_limit: 3,
        ..Options::default()
    })
    .await;
    let mut statuses = Vec::new();
    for i in 0..10 {
        let from = format!("203.0.113.{}:4000", i + 1);
        let reply = get_from(&server, &from, &account_path(), (MAIN_SID, "wrong")).await;
        statuses.push(reply.status.as_u16());
    }
    assert_eq!(&statuses[..4], &[401; 4], "{statuses:?}");
    // Failures during the backoff do not lengthen it: a machine stalled past a window gives
    // another 401 (and a window twice as long).
    assert!(statuses[4..].contains(&429), "{statuses:?}");
    // The right token still works, from an address never seen, and clears the backoff.
    let owner = get_from(&server, OWNER, &account_path(), server.main_creds()).await;
    assert_eq!(owner.status.as_u16(), 200, "{}", owner.body);
    get_from(
        &server,
        "203.0.113.99:4000",
        &account_path(),
        (MAIN_SID, "bad"),
    )
    .await
    .assert_error(401, 20003);
}

#[tokio::test]
async fn an_unknown_sid_is_remembered_and_not_read_again() {
    let server = spawn().await;
    let app = &server.app;
    let unknown_key = format!("SK{}", warbler::domain::sid::random_hex32());
    let unknown_account = format!("AC{}", warbler::domain::sid::random_hex32());
    for username in [&unknown_key, &unknown_account] {
        let refused = app.authenticate(username, "secret").await.unwrap_err();
        assert!(matches!(refused, Error::Unauthenticated), "{refused:?}");
    }
    // From now on any database read fails.
    app.store.pool().close().await;
    for username in [&unknown_key, &unknown_account] {
        let refused = app.authenticate(username, "another").await.unwrap_err();
        assert!(
            matches!(refused, Error::Unauthenticated),
            "{username} was read again: {refused:?}"
        );
    }
    let never_seen = format!("SK{}", warbler::domain::sid::random_hex32());
    let read = app.authenticate(&never_seen, "secret").await.unwrap_err();
    assert!(
        !matches!(read, Error::Unauthenticated),
        "a SID not seen before is read (and fails on the closed pool): {read:?}"
    );
}

#[tokio::test]
async fn an_account_created_after_its_sid_was_refused_authenticates_at_once() {
    let database = common::fresh_database().await;
    let store = warbler::store::Store::connect(&database.url).await.unwrap();
    let app = warbler::service::App::new(
        store,
        warbler::service::Settings::new(10, "test-pepper".into()),
    );
    let refused = app.authenticate(MAIN_SID, MAIN_TOKEN).await.unwrap_err();
    assert!(matches!(refused, Error::Unauthenticated), "{refused:?}");
    app.ensure_main_account(Some(MAIN_SID), Some(MAIN_TOKEN), "Main")
        .await
        .unwrap();
    let principal = app.authenticate(MAIN_SID, MAIN_TOKEN).await.unwrap();
    assert_eq!(principal.account.sid, MAIN_SID);
}
