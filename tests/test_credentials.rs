//! Test credentials: every account has a test account SID and auth token; with them,
//! creating a message and buying a number answer as Twilio's magic numbers and nothing is
//! sent, charged or stored; everything else is refused (20003). On the database
//! `TEST_DATABASE_URL` names.

mod common;

use axum::http::StatusCode;
use common::{spawn, TestServer, MAIN_SID};
use serde_json::Value;

async fn test_credentials(server: &TestServer, account: &str, creds: (&str, &str)) -> Value {
    let reply = server
        .get(
            &format!("/warbler/v1/Accounts/{account}/TestCredentials"),
            creds,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body
}

fn pair(body: &Value) -> (String, String) {
    (
        body["test_account_sid"].as_str().unwrap().to_string(),
        body["test_auth_token"].as_str().unwrap().to_string(),
    )
}

async fn send(server: &TestServer, test: (&str, &str), from: &str, to: &str) -> (u16, Value) {
    let reply = server
        .post(
            &format!("/2010-04-01/Accounts/{}/Messages.json", test.0),
            test,
            &[("From", from), ("To", to), ("Body", "test")],
        )
        .await;
    (reply.status.as_u16(), reply.body)
}

#[tokio::test]
async fn each_account_has_its_own_test_credentials_which_only_its_owner_reads() {
    let server = spawn().await;
    let main = test_credentials(&server, MAIN_SID, server.main_creds()).await;
    let (sid, token) = pair(&main);
    assert!(
        sid.starts_with("AC") && sid.len() == 34 && sid != MAIN_SID,
        "{sid}"
    );
    assert_eq!(token.len(), 32);
    assert_eq!(main["account_sid"], MAIN_SID);
    assert_eq!(
        test_credentials(&server, MAIN_SID, server.main_creds()).await,
        main,
        "made once, then the same"
    );
    let (sub, sub_token) = server.subaccount("Staging").await;
    let own = test_credentials(&server, &sub, (&sub, &sub_token)).await;
    assert_eq!(
        test_credentials(&server, &sub, server.main_creds()).await,
        own,
        "the parent reads its subaccount's"
    );
    assert_ne!(pair(&own).0, sid);
    server
        .get(
            &format!("/warbler/v1/Accounts/{MAIN_SID}/TestCredentials"),
            (&sub, &sub_token),
        )
        .await
        .assert_error(401, 20003);
    // Test credentials cannot read themselves, nor can an API key.
    server
        .get(
            &format!("/warbler/v1/Accounts/{sid}/TestCredentials"),
            (&sid, &token),
        )
        .await
        .assert_error(401, 20003);
    let key = server
        .post(
            &format!("/2010-04-01/Accounts/{MAIN_SID}/Keys.json"),
            server.main_creds(),
            &[],
        )
        .await;
    server
        .get(
            &format!("/warbler/v1/Accounts/{MAIN_SID}/TestCredentials"),
            (
                key.body["sid"].as_str().unwrap(),
                key.body["secret"].as_str().unwrap(),
            ),
        )
        .await
        .assert_error(401, 20003);
}

#[tokio::test]
async fn test_messages_answer_as_the_magic_numbers_and_nothing_is_stored_or_sent() {
    let server = spawn().await;
    server.stock().await;
    server
        .buy(MAIN_SID, "+14155550100", server.main_creds())
        .await;
    let (sid, token) = pair(&test_credentials(&server, MAIN_SID, server.main_creds()).await);
    let test = (sid.as_str(), token.as_str());
    let (status, body) = send(&server, test, "+15005550006", "+14155550199").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["status"], "queued");
    assert_eq!(body["account_sid"], sid.as_str());
    assert!(body["sid"].as_str().unwrap().starts_with("SM"));
    for (from, to, code) in [
        ("+15005550001", "+14155550199", 21212),
        ("+15005550007", "+14155550199", 21606),
        ("+15005550008", "+14155550199", 21611),
        // A live number of the account is not the test account's.
        ("+14155550100", "+14155550199", 21606),
        ("+15005550006", "+15005550001", 21211),
        ("+15005550006", "+15005550002", 21612),
        ("+15005550006", "+15005550003", 21408),
        ("+15005550006", "+15005550004", 21610),
        ("+15005550006", "+15005550009", 21614),
        ("+15005550006", "not a number", 21211),
    ] {
        let (status, body) = send(&server, test, from, to).await;
        assert_eq!(
            (status, body["code"].as_u64()),
            (400, Some(code)),
            "{from} → {to}: {body}"
        );
    }
    // Nothing was stored, nothing goes out, nothing is charged.
    let listed = server
        .get(
            &format!("/2010-04-01/Accounts/{MAIN_SID}/Messages.json"),
            server.main_creds(),
        )
        .await;
    assert_eq!(listed.body["messages"].as_array().unwrap().len(), 0);
    let claimed = server
        .app
        .dispatch_once(warbler::domain::time::now_micros() + 60_000_000)
        .await
        .unwrap();
    assert_eq!(claimed, 0, "nothing to dispatch");
    // The live account's path is a live resource.
    let live = server
        .post(
            &format!("/2010-04-01/Accounts/{MAIN_SID}/Messages.json"),
            test,
            &[
                ("From", "+15005550006"),
                ("To", "+14155550199"),
                ("Body", "x"),
            ],
        )
        .await;
    live.assert_error(401, 20003);
}

#[tokio::test]
async fn test_purchases_answer_as_the_magic_numbers_and_buy_nothing() {
    let server = spawn().await;
    let (sid, token) = pair(&test_credentials(&server, MAIN_SID, server.main_creds()).await);
    let test = (sid.as_str(), token.as_str());
    let buy = |param: &'static str, value: &'static str| {
        let path = format!("/2010-04-01/Accounts/{sid}/IncomingPhoneNumbers.json");
        let server = &server;
        async move { server.post(&path, test, &[(param, value)]).await }
    };
    let bought = buy("PhoneNumber", "+15005550006").await;
    assert_eq!(bought.status, StatusCode::CREATED, "{}", bought.body);
    assert_eq!(bought.body["phone_number"], "+15005550006");
    assert_eq!(bought.body["account_sid"], sid.as_str());
    let by_area = buy("AreaCode", "500").await;
    assert_eq!(by_area.status, StatusCode::CREATED, "{}", by_area.body);
    buy("PhoneNumber", "+15005550000")
        .await
        .assert_error(400, 21422);
    buy("PhoneNumber", "+15005550001")
        .await
        .assert_error(400, 21421);
    buy("AreaCode", "533").await.assert_error(400, 21452);
    let owned = server
        .get(
            &format!("/2010-04-01/Accounts/{MAIN_SID}/IncomingPhoneNumbers.json"),
            server.main_creds(),
        )
        .await;
    assert_eq!(
        owned.body["incoming_phone_numbers"]
            .as_array()
            .unwrap()
            .len(),
        0,
        "nothing was bought"
    );
}

#[tokio::test]
async fn test_credentials_reach_nothing_else_and_a_rotated_token_stops_working() {
    let server = spawn().await;
    let (sid, token) = pair(&test_credentials(&server, MAIN_SID, server.main_creds()).await);
    let test = (sid.as_str(), token.as_str());
    for path in [
        format!("/2010-04-01/Accounts/{sid}/Messages.json"),
        format!("/2010-04-01/Accounts/{sid}/IncomingPhoneNumbers.json"),
        format!("/2010-04-01/Accounts/{sid}.json"),
        "/2010-04-01/Accounts.json".to_string(),
        format!("/2010-04-01/Accounts/{MAIN_SID}/Messages.json"),
        "/v1/Services".to_string(),
        "/v1/Alerts".to_string(),
    ] {
        server.get(&path, test).await.assert_error(401, 20003);
    }
    server
        .post(&format!("/2010-04-01/Accounts/{sid}/Keys.json"), test, &[])
        .await
        .assert_error(401, 20003);
    server
        .get(
            &format!("/2010-04-01/Accounts/{sid}/Messages.json"),
            (&sid, "00000000000000000000000000000000"),
        )
        .await
        .assert_error(401, 20003);

    let rotated = server
        .post(
            &format!("/warbler/v1/Accounts/{MAIN_SID}/TestCredentials"),
            server.main_creds(),
            &[],
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    let (same_sid, new_token) = pair(&rotated.body);
    assert_eq!(same_sid, sid, "the test account SID stays");
    assert_ne!(new_token, token);
    let (status, _) = send(&server, test, "+15005550006", "+14155550199").await;
    assert_eq!(status, 401, "the old token");
    let (status, body) = send(&server, (&sid, &new_token), "+15005550006", "+14155550199").await;
    assert_eq!(status, 201, "{body}");
}
