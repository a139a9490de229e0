//! Content API templates over HTTP (`/v1/Content`), and sending with `ContentSid` +
//! `ContentVariables`: the body and media are rendered when the message is accepted.

mod common;

use axum::http::StatusCode;
use common::{spawn, TestServer, MAIN_SID};
use serde_json::{json, Value};

fn messages_path(account: &str) -> String {
    format!("/2010-04-01/Accounts/{account}/Messages.json")
}

async fn create(server: &TestServer, creds: (&str, &str), body: Value) -> Value {
    let reply = server.post_json("/v1/Content", creds, &body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body
}

#[tokio::test]
async fn templates_are_created_listed_fetched_and_deleted() {
    let server = spawn().await;
    let created = create(
        &server,
        server.main_creds(),
        json!({
            "friendly_name": "flight_update",
            "language": "en",
            "variables": {"1": "traveller"},
            "types": {"twilio/text": {"body": "Hi {{1}}, flight {{2}} boards at {{3}}."}, "twilio/media": null}
        }),
    )
    .await;
    let sid = created["sid"].as_str().unwrap().to_string();
    assert!(sid.starts_with("HX") && sid.len() == 34);
    assert_eq!(created["account_sid"], MAIN_SID);
    assert_eq!(created["variables"], json!({"1": "traveller"}));
    assert_eq!(
        created["types"],
        json!({"twilio/text": {"body": "Hi {{1}}, flight {{2}} boards at {{3}}."}})
    );
    assert_eq!(
        created["url"],
        format!("{}/v1/Content/{sid}", common::PUBLIC_URL)
    );
    assert!(created["date_created"].as_str().unwrap().ends_with('Z'));

    let listed = server
        .get("/v1/Content?PageSize=10", server.main_creds())
        .await;
    assert_eq!(listed.body["meta"]["key"], "contents");
    assert_eq!(listed.body["contents"][0]["sid"], sid.as_str());
    let one = format!("/v1/Content/{sid}");
    assert_eq!(
        server.get(&one, server.main_creds()).await.body["friendly_name"],
        "flight_update"
    );
    // Another account does not see it.
    let (sub, token) = server.subaccount("other").await;
    server
        .get(&one, (&sub, &token))
        .await
        .assert_error(404, 20404);
    assert_eq!(
        server.delete(&one, server.main_creds()).await.status,
        StatusCode::NO_CONTENT
    );
    server
        .get(&one, server.main_creds())
        .await
        .assert_error(404, 20404);
}

#[tokio::test]
async fn a_create_must_hold_a_language_and_an_sms_or_mms_type() {
    let server = spawn().await;
    let refused = [
        json!({"types": {"twilio/text": {"body": "x"}}}),
        json!({"language": "en"}),
        json!({"language": "en", "types": {"twilio/location": {"latitude": 1.0, "longitude": 2.0}}}),
        json!({"language": "en", "types": {"twilio/media": {"body": "no media"}}}),
        json!({"language": "en", "variables": ["x"], "types": {"twilio/text": {"body": "x"}}}),
        json!(["not an object"]),
    ];
    for body in refused {
        server
            .post_json("/v1/Content", server.main_creds(), &body)
            .await
            .assert_error(400, 20001);
    }
    // A form body (not what the SDKs send) is refused the same way.
    server
        .post("/v1/Content", server.main_creds(), &[("language", "en")])
        .await
        .assert_error(400, 20001);
}

#[tokio::test]
async fn a_send_with_content_sid_renders_body_and_media_at_accept_time() {
    let server = spawn().await;
    server.stock().await;
    server
        .buy(MAIN_SID, "+14155550100", server.main_creds())
        .await;
    let text = create(
        &server,
        server.main_creds(),
        json!({
            "language": "en",
            "variables": {"1": "traveller", "gate": "TBA"},
            "types": {"twilio/text": {"body": "Hi {{1}}, flight {{2}} boards at gate {{gate}}."}}
        }),
    )
    .await;
    let text_sid = text["sid"].as_str().unwrap();
    let sent = server
        .post(
            &messages_path(MAIN_SID),
            server.main_creds(),
            &[
                ("To", "+14155550199"),
                ("From", "+14155550100"),
                ("ContentSid", text_sid),
                ("ContentVariables", r#"{"1":"Ana","2":"FF 17"}"#),
                ("Body", "ignored: the template decides"),
            ],
        )
        .await;
    assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.body);
    assert_eq!(
        sent.body["body"],
        "Hi Ana, flight FF 17 boards at gate TBA."
    );
    assert_eq!(sent.body["num_media"], "0");

    let media = create(
        &server,
        server.main_creds(),
        json!({
            "language": "en",
            "types": {"twilio/media": {"body": "Boarding pass {{1}}", "media": ["https://x.example.com/pass/{{1}}.png"]}}
        }),
    )
    .await;
    let mms = server
        .post(
            &messages_path(MAIN_SID),
            server.main_creds(),
            &[
                ("To", "+14155550199"),
                ("From", "+14155550100"),
                ("ContentSid", media["sid"].as_str().unwrap()),
                ("ContentVariables", r#"{"1":"17A"}"#),
            ],
        )
        .await;
    assert_eq!(mms.status, StatusCode::CREATED, "{}", mms.body);
    assert!(mms.body["sid"].as_str().unwrap().starts_with("MM"));
    assert_eq!(mms.body["body"], "Boarding pass 17A");
    let listed = server
        .get(
            mms.body["subresource_uris"]["media"].as_str().unwrap(),
            server.main_creds(),
        )
        .await;
    assert_eq!(listed.body["media_list"].as_array().unwrap().len(), 1);
    let item = &listed.body["media_list"][0];
    let fetched = server
        .get(
            item["uri"].as_str().unwrap().trim_end_matches(".json"),
            server.main_creds(),
        )
        .await;
    assert_eq!(
        fetched.headers["location"],
        "https://x.example.com/pass/17A.png"
    );
}

#[tokio::test]
async fn content_errors_have_twilios_codes() {
    let server = spawn().await;
    server.stock().await;
    server
        .buy(MAIN_SID, "+14155550100", server.main_creds())
        .await;
    let template = create(
        &server,
        server.main_creds(),
        json!({"language": "en", "types": {"twilio/text": {"body": "Code {{1}}"}}}),
    )
    .await;
    let sid = template["sid"].as_str().unwrap().to_string();
    let send = |content_sid: String, variables: Option<&'static str>| {
        let server = &server;
        async move {
            let mut form = vec![
                ("To", "+14155550199"),
                ("From", "+14155550100"),
                ("ContentSid", content_sid.as_str()),
            ];
            if let Some(v) = variables {
                form.push(("ContentVariables", v));
            }
            server
                .post(&messages_path(MAIN_SID), server.main_creds(), &form)
                .await
        }
    };
    // Unknown, malformed, or another account's template: 21655.
    send(format!("HX{}", "0".repeat(32)), None)
        .await
        .assert_error(400, 21655);
    send("HXnope".into(), None).await.assert_error(400, 21655);
    let (sub, token) = server.subaccount("other").await;
    let theirs = create(
        &server,
        (&sub, &token),
        json!({"language": "en", "types": {"twilio/text": {"body": "theirs"}}}),
    )
    .await;
    send(theirs["sid"].as_str().unwrap().to_string(), None)
        .await
        .assert_error(400, 21655);
    // Variables that are not a JSON object of strings, or that leave a placeholder empty: 21656.
    send(sid.clone(), Some("not json"))
        .await
        .assert_error(400, 21656);
    send(sid.clone(), Some(r#"["1"]"#))
        .await
        .assert_error(400, 21656);
    send(sid.clone(), None).await.assert_error(400, 21656);
    send(sid.clone(), Some(r#"{"2":"x"}"#))
        .await
        .assert_error(400, 21656);
    assert_eq!(
        send(sid.clone(), Some(r#"{"1":"4921"}"#)).await.body["body"],
        "Code 4921"
    );
    // Once deleted, it cannot be sent.
    server
        .delete(&format!("/v1/Content/{sid}"), server.main_creds())
        .await;
    send(sid, Some(r#"{"1":"4921"}"#))
        .await
        .assert_error(400, 21655);
}
