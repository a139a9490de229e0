//! API keys over HTTP: the secret once, hashed storage, use, rename, delete. Keys created
//! through the API are Twilio "standard" keys: they act for their account on its resources,
//! never on the Accounts and Keys resources.

mod common;

use axum::http::StatusCode;
use common::{spawn, MAIN_SID};

#[tokio::test]
async fn a_key_is_created_used_renamed_and_deleted() {
    let server = spawn().await;
    let keys = format!("/2010-04-01/Accounts/{MAIN_SID}/Keys.json");
    let created = server
        .post(
            &keys,
            server.main_creds(),
            &[("FriendlyName", "ci-deployer")],
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let key_sid = created.body["sid"].as_str().unwrap().to_string();
    let secret = created.body["secret"].as_str().unwrap().to_string();
    assert!(key_sid.starts_with("SK") && key_sid.len() == 34);
    assert_eq!(secret.len(), 32);
    assert_eq!(created.body["friendly_name"], "ci-deployer");

    // Only a hash is stored.
    let stored = server.app.store.key(&key_sid).await.unwrap().unwrap();
    assert_ne!(stored.secret_hash, secret);
    assert!(!stored.secret_hash.contains(&secret));

    // The key acts for its account on its resources (numbers, services)…
    let numbers = server
        .get(
            &format!("/2010-04-01/Accounts/{MAIN_SID}/IncomingPhoneNumbers.json"),
            (&key_sid, &secret),
        )
        .await;
    assert_eq!(numbers.status, StatusCode::OK);
    let services = server.get("/v1/Services", (&key_sid, &secret)).await;
    assert_eq!(services.body["services"][0]["account_sid"], MAIN_SID);
    // …but, as a standard key, not on the Accounts and Keys resources.
    server
        .get(
            &format!("/2010-04-01/Accounts/{MAIN_SID}.json"),
            (&key_sid, &secret),
        )
        .await
        .assert_error(401, 20003);
    server
        .get(&keys, (&key_sid, &secret))
        .await
        .assert_error(401, 20003);

    let listed = server.get(&keys, server.main_creds()).await;
    let items = listed.body["keys"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert!(items[0].get("secret").is_none(), "secrets are never listed");
    let key_path = format!("/2010-04-01/Accounts/{MAIN_SID}/Keys/{key_sid}.json");
    let fetched = server.get(&key_path, server.main_creds()).await;
    assert_eq!(fetched.body["friendly_name"], "ci-deployer");
    assert!(fetched.body.get("secret").is_none());
    let renamed = server
        .post(
            &key_path,
            server.main_creds(),
            &[("FriendlyName", "renamed")],
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK);
    assert_eq!(renamed.body["friendly_name"], "renamed");

    // A wrong secret is refused.
    server
        .get(
            "/v1/Services",
            (&key_sid, "wrongwrongwrongwrongwrongwrong12"),
        )
        .await
        .assert_error(401, 20003);

    let deleted = server.delete(&key_path, server.main_creds()).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert!(deleted.body.is_null());
    server
        .get("/v1/Services", (&key_sid, &secret))
        .await
        .assert_error(401, 20003);
    server
        .get(&key_path, server.main_creds())
        .await
        .assert_error(404, 20404);
    server
        .delete(&key_path, server.main_creds())
        .await
        .assert_error(404, 20404);
}

#[tokio::test]
async fn standard_keys_cannot_manage_keys_or_accounts() {
    let server = spawn().await;
    let keys = format!("/2010-04-01/Accounts/{MAIN_SID}/Keys.json");
    let created = server.post(&keys, server.main_creds(), &[]).await;
    let key = (
        created.body["sid"].as_str().unwrap().to_string(),
        created.body["secret"].as_str().unwrap().to_string(),
    );
    let creds = (key.0.as_str(), key.1.as_str());
    assert!(created.body["friendly_name"].is_null());
    server
        .post(&keys, creds, &[])
        .await
        .assert_error(401, 20003);
    server
        .delete(
            &format!("/2010-04-01/Accounts/{MAIN_SID}/Keys/{}.json", key.0),
            creds,
        )
        .await
        .assert_error(401, 20003);
    server
        .post("/2010-04-01/Accounts.json", creds, &[])
        .await
        .assert_error(401, 20003);
    server
        .get("/2010-04-01/Accounts.json", creds)
        .await
        .assert_error(401, 20003);
    server
        .post(
            &format!("/2010-04-01/Accounts/{MAIN_SID}.json"),
            creds,
            &[("FriendlyName", "x")],
        )
        .await
        .assert_error(401, 20003);
}

#[tokio::test]
async fn keys_are_scoped_to_their_account() {
    let server = spawn().await;
    let (sub_sid, sub_token) = server.subaccount("FalconFlights").await;
    let (other_sid, other_token) = server.subaccount("Sibling").await;
    // The parent creates a key under the subaccount; it acts for the subaccount only.
    let sub_keys = format!("/2010-04-01/Accounts/{sub_sid}/Keys.json");
    let created = server
        .post(
            &sub_keys,
            server.main_creds(),
            &[("FriendlyName", "falcon")],
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let key_sid = created.body["sid"].as_str().unwrap().to_string();
    let secret = created.body["secret"].as_str().unwrap().to_string();
    let sub_services = server.get("/v1/Services", (&key_sid, &secret)).await;
    assert_eq!(
        sub_services.body["services"][0]["account_sid"],
        sub_sid.as_str()
    );
    server
        .get(
            &format!("/2010-04-01/Accounts/{MAIN_SID}/IncomingPhoneNumbers.json"),
            (&key_sid, &secret),
        )
        .await
        .assert_error(401, 20003);

    // The subaccount lists its key; a sibling neither lists nor fetches it.
    let listed = server.get(&sub_keys, (&sub_sid, &sub_token)).await;
    assert_eq!(listed.body["keys"].as_array().unwrap().len(), 1);
    server
        .get(&sub_keys, (&other_sid, &other_token))
        .await
        .assert_error(401, 20003);
    let via_sibling_path = format!("/2010-04-01/Accounts/{other_sid}/Keys/{key_sid}.json");
    server
        .get(&via_sibling_path, (&other_sid, &other_token))
        .await
        .assert_error(404, 20404);

    // A main-account key cannot reach a subaccount's resources.
    let main_key = server
        .post(
            &format!("/2010-04-01/Accounts/{MAIN_SID}/Keys.json"),
            server.main_creds(),
            &[],
        )
        .await;
    let main_key = (
        main_key.body["sid"].as_str().unwrap().to_string(),
        main_key.body["secret"].as_str().unwrap().to_string(),
    );
    server
        .get(
            &format!("/2010-04-01/Accounts/{sub_sid}/IncomingPhoneNumbers.json"),
            (&main_key.0, &main_key.1),
        )
        .await
        .assert_error(401, 20003);
}

#[tokio::test]
async fn key_lists_page_and_names_are_limited() {
    let server = spawn().await;
    let keys = format!("/2010-04-01/Accounts/{MAIN_SID}/Keys.json");
    for i in 0..7 {
        let r = server
            .post(
                &keys,
                server.main_creds(),
                &[("FriendlyName", &format!("k{i}"))],
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    let all = server
        .collect_pages(&format!("{keys}?PageSize=3"), "keys", server.main_creds())
        .await;
    let mut names: Vec<&str> = all
        .iter()
        .map(|k| k["friendly_name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, vec!["k0", "k1", "k2", "k3", "k4", "k5", "k6"]);
    server
        .post(
            &keys,
            server.main_creds(),
            &[("FriendlyName", &"n".repeat(65))],
        )
        .await
        .assert_error(400, 21658);
}

#[tokio::test]
async fn a_suspended_subaccounts_keys_are_refused_too() {
    let server = spawn().await;
    let (sub_sid, _) = server.subaccount("FalconFlights").await;
    let created = server
        .post(
            &format!("/2010-04-01/Accounts/{sub_sid}/Keys.json"),
            server.main_creds(),
            &[],
        )
        .await;
    let creds = (
        created.body["sid"].as_str().unwrap().to_string(),
        created.body["secret"].as_str().unwrap().to_string(),
    );
    let numbers = format!("/2010-04-01/Accounts/{sub_sid}/IncomingPhoneNumbers.json");
    assert_eq!(
        server.get(&numbers, (&creds.0, &creds.1)).await.status,
        StatusCode::OK
    );
    server
        .post(
            &format!("/2010-04-01/Accounts/{sub_sid}.json"),
            server.main_creds(),
            &[("Status", "suspended")],
        )
        .await;
    server
        .get(&numbers, (&creds.0, &creds.1))
        .await
        .assert_error(401, 20003);
}

/// The embedded database holds auth tokens and key hashes: a folder warbler creates for it is
/// this user's only (0700), and the database files are readable by this user only (0600).
#[cfg(unix)]
#[tokio::test]
async fn the_sqlite_files_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let root = std::env::temp_dir().join(format!(
        "warbler-perms-{}",
        warbler::domain::sid::random_hex32()
    ));
    let database = root.join("data").join("warbler.db");
    let store = warbler::store::Store::connect(&format!("sqlite://{}", database.display()))
        .await
        .unwrap();
    store.ping().await.unwrap();
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&root.join("data")), 0o700);
    for suffix in ["", "-wal", "-shm"] {
        let file = std::path::PathBuf::from(format!("{}{suffix}", database.display()));
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    drop(store);
    let _ = std::fs::remove_dir_all(root);
}

/// Keys and Messaging Services per account are bounded (configurable), with a Twilio-shaped
/// 400; the bound is per account, and keys created at once cannot pass it.
#[tokio::test]
async fn keys_and_services_per_account_are_bounded() {
    use common::{TestServer, MAIN_TOKEN};
    let database = common::fresh_database().await;
    let store = warbler::store::Store::connect(&database.url).await.unwrap();
    let app = warbler::service::App::new(
        store,
        warbler::service::Settings {
            max_keys_per_account: 3,
            // The default service every account starts with counts.
            max_services_per_account: 2,
            ..warbler::service::Settings::new(1000, "pepper".into())
        },
    );
    app.ensure_main_account(Some(MAIN_SID), Some(MAIN_TOKEN), "Bounded")
        .await
        .unwrap();
    let server = TestServer::from_app(app).holding(database);
    let keys = format!("/2010-04-01/Accounts/{MAIN_SID}/Keys.json");
    let tries = (0..6).map(|_| server.post(&keys, server.main_creds(), &[]));
    let replies = futures::future::join_all(tries).await;
    let created = replies
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .count();
    assert_eq!(created, 3, "three of six concurrent creations");
    for reply in replies.iter().filter(|r| r.status != StatusCode::CREATED) {
        reply.assert_error(400, 20001);
        assert!(
            reply.body["message"].as_str().unwrap().contains("maximum"),
            "{}",
            reply.body
        );
    }
    // A subaccount has a bound of its own.
    let (sub, sub_token) = server.subaccount("Tenant").await;
    let sub_keys = format!("/2010-04-01/Accounts/{sub}/Keys.json");
    let sub_key = server.post(&sub_keys, (&sub, &sub_token), &[]).await;
    assert_eq!(sub_key.status, StatusCode::CREATED, "{}", sub_key.body);

    let server = &server;
    let services = |name: &'static str| async move {
        server
            .post(
                "/v1/Services",
                server.main_creds(),
                &[("FriendlyName", name)],
            )
            .await
    };
    let first = services("one").await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    services("two").await.assert_error(400, 20001);
    // Deleting one makes room again.
    let deleted = server
        .delete(
            &format!("/v1/Services/{}", first.body["sid"].as_str().unwrap()),
            server.main_creds(),
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let again = services("three").await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
}

/// IAM v1 (`iam.twilio.com/v1/Keys`, `client.iam.v1.newApiKey` in the current docs) serves the
/// same keys as the 2010 resource: named by `AccountSid` on create and list, by SID otherwise.
#[tokio::test]
async fn iam_v1_keys_are_the_2010_keys() {
    let server = spawn().await;
    let created = server
        .post(
            "/v1/Keys",
            server.main_creds(),
            &[("AccountSid", MAIN_SID), ("FriendlyName", "from-iam")],
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let sid = created.body["sid"].as_str().unwrap().to_string();
    let secret = created.body["secret"].as_str().unwrap().to_string();
    assert_eq!(created.body["policy"], serde_json::Value::Null);
    assert!(created.body["date_created"]
        .as_str()
        .unwrap()
        .ends_with("+0000"));
    // It authenticates, and the 2010 resource sees it.
    let services = server.get("/v1/Services", (&sid, &secret)).await;
    assert_eq!(services.status, StatusCode::OK);
    let v2010 = format!("/2010-04-01/Accounts/{MAIN_SID}/Keys/{sid}.json");
    assert_eq!(
        server.get(&v2010, server.main_creds()).await.body["friendly_name"],
        "from-iam"
    );

    // List: the v1 envelope, paging URLs keep the AccountSid filter.
    for name in ["second", "third"] {
        server
            .post(
                "/v1/Keys",
                server.main_creds(),
                &[("AccountSid", MAIN_SID), ("FriendlyName", name)],
            )
            .await;
    }
    let listed = server
        .get(
            &format!("/v1/Keys?AccountSid={MAIN_SID}&PageSize=2"),
            server.main_creds(),
        )
        .await;
    assert_eq!(listed.body["keys"].as_array().unwrap().len(), 2);
    assert_eq!(listed.body["keys"][0]["flags"], serde_json::json!([]));
    assert!(listed.body["keys"][0].get("secret").is_none());
    let next = listed.body["meta"]["next_page_url"].as_str().unwrap();
    assert!(next.contains(&format!("AccountSid={MAIN_SID}")), "{next}");
    let second_page = server
        .get(
            next.strip_prefix(common::PUBLIC_URL).unwrap(),
            server.main_creds(),
        )
        .await;
    assert_eq!(second_page.body["keys"].as_array().unwrap().len(), 1);
    assert_eq!(
        second_page.body["meta"]["next_page_url"],
        serde_json::Value::Null
    );

    // Fetch, rename, delete by SID alone.
    let one = format!("/v1/Keys/{sid}");
    assert_eq!(
        server.get(&one, server.main_creds()).await.body["friendly_name"],
        "from-iam"
    );
    let renamed = server
        .post(&one, server.main_creds(), &[("FriendlyName", "renamed")])
        .await;
    assert_eq!(renamed.body["friendly_name"], "renamed");
    assert_eq!(
        server.get(&v2010, server.main_creds()).await.body["friendly_name"],
        "renamed"
    );

    // A subaccount's key: its parent's auth token reaches it, another subaccount does not.
    let (sub, sub_token) = server.subaccount("falcon").await;
    let sub_key = server
        .post(
            "/v1/Keys",
            server.main_creds(),
            &[("AccountSid", sub.as_str())],
        )
        .await;
    assert_eq!(sub_key.status, StatusCode::CREATED, "{}", sub_key.body);
    let sub_key_path = format!("/v1/Keys/{}", sub_key.body["sid"].as_str().unwrap());
    assert_eq!(
        server.get(&sub_key_path, (&sub, &sub_token)).await.status,
        StatusCode::OK
    );
    let (other, other_token) = server.subaccount("other").await;
    server
        .get(&sub_key_path, (&other, &other_token))
        .await
        .assert_error(404, 20404);
    server
        .get(
            &format!("/v1/Keys?AccountSid={sub}"),
            (&other, &other_token),
        )
        .await
        .assert_error(401, 20003);

    // Errors: the account is required, restricted keys are refused, a key cannot manage keys.
    server
        .post("/v1/Keys", server.main_creds(), &[("FriendlyName", "x")])
        .await
        .assert_error(400, 20001);
    server
        .get("/v1/Keys", server.main_creds())
        .await
        .assert_error(400, 20001);
    server
        .post(
            "/v1/Keys",
            server.main_creds(),
            &[
                ("AccountSid", MAIN_SID),
                ("KeyType", "restricted"),
                ("Policy", r#"{"allow":["/twilio/messaging/messages/read"]}"#),
            ],
        )
        .await
        .assert_error(400, 20001);
    server
        .get(&one, (&sid, &secret))
        .await
        .assert_error(401, 20003);

    assert_eq!(
        server.delete(&one, server.main_creds()).await.status,
        StatusCode::NO_CONTENT
    );
    server
        .get(&one, server.main_creds())
        .await
        .assert_error(404, 20404);
    server
        .get("/v1/Services", (&sid, &secret))
        .await
        .assert_error(401, 20003);
}
