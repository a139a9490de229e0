//! Messaging Services over HTTP (the v1 API): settings, the sender pools, the default service,
//! the one-service-per-number rule; on the database `TEST_DATABASE_URL` names.

mod common;

use axum::http::StatusCode;
use common::{spawn, CSV_HEADER, MAIN_SID, PUBLIC_URL};
use serde_json::Value;

async fn create_service(server: &common::TestServer, creds: (&str, &str), name: &str) -> Value {
    let reply = server
        .post("/v1/Services", creds, &[("FriendlyName", name)])
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body
}

#[tokio::test]
async fn the_seeds_create_a_messaging_service_with_twilios_fields() {
    let server = spawn().await;
    let service = create_service(&server, server.main_creds(), "falconFlightNotifications").await;
    let sid = service["sid"].as_str().unwrap();
    assert!(sid.starts_with("MG") && sid.len() == 34);
    assert_eq!(service["account_sid"], MAIN_SID);
    assert_eq!(service["friendly_name"], "falconFlightNotifications");
    assert_eq!(service["inbound_method"], "POST");
    assert_eq!(service["inbound_request_url"], Value::Null);
    assert_eq!(service["sticky_sender"], true);
    assert_eq!(service["area_code_geomatch"], true);
    assert_eq!(service["smart_encoding"], true);
    assert_eq!(service["validity_period"], 36000);
    assert_eq!(service["usecase"], "undeclared");
    assert_eq!(service["scan_message_content"], "inherit");
    assert_eq!(service["url"], format!("{PUBLIC_URL}/v1/Services/{sid}"));
    assert_eq!(
        service["links"]["phone_numbers"],
        format!("{PUBLIC_URL}/v1/Services/{sid}/PhoneNumbers")
    );
    let created = service["date_created"].as_str().unwrap();
    assert!(created.len() == 20 && created.ends_with('Z'), "{created}");

    let fetched = server
        .get(&format!("/v1/Services/{sid}"), server.main_creds())
        .await;
    assert_eq!(fetched.body, service);
}

#[tokio::test]
async fn settings_update_with_twilios_validation() {
    let server = spawn().await;
    let service = create_service(&server, server.main_creds(), "alerts").await;
    let path = format!("/v1/Services/{}", service["sid"].as_str().unwrap());
    let updated = server
        .post(
            &path,
            server.main_creds(),
            &[
                ("StatusCallback", "https://falcon.example.com/status"),
                ("InboundRequestUrl", "https://falcon.example.com/inbound"),
                ("InboundMethod", "get"),
                ("StickySender", "false"),
                ("ValidityPeriod", "600"),
                ("Usecase", "notifications"),
                ("UseInboundWebhookOnNumber", "true"),
            ],
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(
        updated.body["status_callback"],
        "https://falcon.example.com/status"
    );
    assert_eq!(updated.body["inbound_method"], "GET");
    assert_eq!(updated.body["sticky_sender"], false);
    assert_eq!(updated.body["validity_period"], 600);
    assert_eq!(updated.body["usecase"], "notifications");
    assert_eq!(updated.body["use_inbound_webhook_on_number"], true);
    assert_eq!(updated.body["friendly_name"], "alerts");

    let creds = server.main_creds();
    server
        .post(&path, creds, &[("ValidityPeriod", "0")])
        .await
        .assert_error(400, 90007);
    server
        .post(&path, creds, &[("ValidityPeriod", "36001")])
        .await
        .assert_error(400, 90007);
    server
        .post(&path, creds, &[("Usecase", "spam")])
        .await
        .assert_error(400, 21713);
    server
        .post(&path, creds, &[("StickySender", "maybe")])
        .await
        .assert_error(400, 20001);
    server
        .post(&path, creds, &[("StatusCallback", "nope")])
        .await
        .assert_error(400, 21402);
    server
        .post(&path, creds, &[("FriendlyName", &"x".repeat(65))])
        .await
        .assert_error(400, 21658);
    server
        .post("/v1/Services", creds, &[])
        .await
        .assert_error(400, 20001);
    // Clearing a URL.
    let cleared = server.post(&path, creds, &[("StatusCallback", "")]).await;
    assert_eq!(cleared.body["status_callback"], Value::Null);
}

#[tokio::test]
async fn every_account_gets_a_default_service_and_lists_page_with_absolute_urls() {
    let server = spawn().await;
    let list = server.get("/v1/Services", server.main_creds()).await;
    let services = list.body["services"].as_array().unwrap();
    assert_eq!(services.len(), 1);
    assert_eq!(services[0]["friendly_name"], "Default Messaging Service");
    assert_eq!(list.body["meta"]["key"], "services");
    assert_eq!(
        list.body["meta"]["first_page_url"],
        format!("{PUBLIC_URL}/v1/Services?PageSize=50&Page=0")
    );

    let (sub, token) = server.subaccount("FalconFlights").await;
    let sub_list = server.get("/v1/Services", (&sub, &token)).await;
    let sub_services = sub_list.body["services"].as_array().unwrap();
    assert_eq!(sub_services.len(), 1);
    assert_eq!(sub_services[0]["account_sid"], sub.as_str());

    for i in 0..6 {
        create_service(&server, server.main_creds(), &format!("svc-{i}")).await;
    }
    // Follow meta.next_page_url verbatim, as the SDKs do.
    let mut names = Vec::new();
    let mut next = Some(format!("{PUBLIC_URL}/v1/Services?PageSize=3"));
    while let Some(url) = next {
        let path = url
            .strip_prefix(PUBLIC_URL)
            .expect("absolute URL on our base");
        let page = server.get(path, server.main_creds()).await;
        for s in page.body["services"].as_array().unwrap() {
            names.push(s["friendly_name"].as_str().unwrap().to_string());
        }
        next = page.body["meta"]["next_page_url"]
            .as_str()
            .map(str::to_string);
    }
    assert_eq!(names.len(), 7);
    assert_eq!(
        names.iter().collect::<std::collections::HashSet<_>>().len(),
        7
    );
}

async fn stock_and_buy(
    server: &common::TestServer,
    account: &str,
    creds: (&str, &str),
    number: &str,
) -> String {
    server.buy(account, number, creds).await
}

#[tokio::test]
async fn a_number_joins_one_service_and_only_its_own_accounts() {
    let server = spawn().await;
    server.stock().await;
    let (sub, sub_token) = server.subaccount("FalconFlights").await;
    let sub_creds = (sub.as_str(), sub_token.as_str());
    let service = create_service(&server, sub_creds, "falconFlightNotifications").await;
    let service_sid = service["sid"].as_str().unwrap().to_string();
    let pn = stock_and_buy(&server, &sub, sub_creds, "+14155550100").await;
    let numbers = format!("/v1/Services/{service_sid}/PhoneNumbers");

    // The seeds' step: add the phone number to the Messaging Service.
    let added = server
        .post(&numbers, sub_creds, &[("PhoneNumberSid", &pn)])
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    assert_eq!(added.body["sid"], pn.as_str());
    assert_eq!(added.body["service_sid"], service_sid.as_str());
    assert_eq!(added.body["phone_number"], "+14155550100");
    assert_eq!(added.body["country_code"], "US");
    assert_eq!(
        added.body["capabilities"],
        serde_json::json!(["SMS", "MMS", "Voice"])
    );
    assert_eq!(
        added.body["url"],
        format!("{PUBLIC_URL}/v1/Services/{service_sid}/PhoneNumbers/{pn}")
    );

    server
        .post(&numbers, sub_creds, &[("PhoneNumberSid", &pn)])
        .await
        .assert_error(400, 80104);
    let other = create_service(&server, sub_creds, "second").await;
    server
        .post(
            &format!(
                "/v1/Services/{}/PhoneNumbers",
                other["sid"].as_str().unwrap()
            ),
            sub_creds,
            &[("PhoneNumberSid", &pn)],
        )
        .await
        .assert_error(400, 21712);

    // The parent's number cannot join the subaccount's service.
    let parent_pn = stock_and_buy(&server, MAIN_SID, server.main_creds(), "+14155550101").await;
    server
        .post(&numbers, sub_creds, &[("PhoneNumberSid", &parent_pn)])
        .await
        .assert_error(400, 21421);
    server
        .post(&numbers, sub_creds, &[("PhoneNumberSid", "not-a-sid")])
        .await
        .assert_error(400, 21421);
    server
        .post(&numbers, sub_creds, &[])
        .await
        .assert_error(400, 20001);
    // And another account cannot see this service at all.
    server
        .get(&format!("/v1/Services/{service_sid}"), server.main_creds())
        .await
        .assert_error(404, 20404);
    server
        .get(&numbers, server.main_creds())
        .await
        .assert_error(404, 20404);

    // Fetch by SID or by number; list; remove.
    let by_sid = server.get(&format!("{numbers}/{pn}"), sub_creds).await;
    assert_eq!(by_sid.body["phone_number"], "+14155550100");
    let by_number = server
        .get(&format!("{numbers}/%2B14155550100"), sub_creds)
        .await;
    assert_eq!(by_number.body["sid"], pn.as_str());
    let listed = server.get(&numbers, sub_creds).await;
    assert_eq!(listed.body["phone_numbers"].as_array().unwrap().len(), 1);
    assert_eq!(listed.body["meta"]["key"], "phone_numbers");
    assert_eq!(
        server
            .delete(&format!("{numbers}/{pn}"), sub_creds)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    server
        .get(&format!("{numbers}/{pn}"), sub_creds)
        .await
        .assert_error(404, 20404);
    // Once out of the first service, it may join the second.
    let joined = server
        .post(
            &format!(
                "/v1/Services/{}/PhoneNumbers",
                other["sid"].as_str().unwrap()
            ),
            sub_creds,
            &[("PhoneNumberSid", &pn)],
        )
        .await;
    assert_eq!(joined.status, StatusCode::CREATED);
}

#[tokio::test]
async fn deleting_a_service_transferring_or_releasing_frees_senders() {
    let server = spawn().await;
    server.stock().await;
    let creds = server.main_creds();
    let service = create_service(&server, creds, "s1").await;
    let sid = service["sid"].as_str().unwrap().to_string();
    let pn = server.buy(MAIN_SID, "+14155550100", creds).await;
    let numbers = format!("/v1/Services/{sid}/PhoneNumbers");
    server
        .post(&numbers, creds, &[("PhoneNumberSid", &pn)])
        .await;
    server
        .post(
            &format!("/v1/Services/{sid}/AlphaSenders"),
            creds,
            &[("AlphaSender", "FalconAir")],
        )
        .await;

    assert_eq!(
        server
            .delete(&format!("/v1/Services/{sid}"), creds)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    server
        .get(&format!("/v1/Services/{sid}"), creds)
        .await
        .assert_error(404, 20404);
    let second = create_service(&server, creds, "s2").await;
    let second_numbers = format!(
        "/v1/Services/{}/PhoneNumbers",
        second["sid"].as_str().unwrap()
    );
    assert_eq!(
        server
            .post(&second_numbers, creds, &[("PhoneNumberSid", &pn)])
            .await
            .status,
        StatusCode::CREATED,
        "the deleted service freed the number"
    );

    // A transfer takes the number out of its old account's service.
    let (sub, sub_token) = server.subaccount("FalconFlights").await;
    let moved = server
        .post(
            &format!("/2010-04-01/Accounts/{MAIN_SID}/IncomingPhoneNumbers/{pn}.json"),
            creds,
            &[("AccountSid", &sub)],
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK);
    let listed = server.get(&second_numbers, creds).await;
    assert!(listed.body["phone_numbers"].as_array().unwrap().is_empty());
    let sub_service = create_service(&server, (&sub, &sub_token), "falcon").await;
    let sub_numbers = format!(
        "/v1/Services/{}/PhoneNumbers",
        sub_service["sid"].as_str().unwrap()
    );
    assert_eq!(
        server
            .post(&sub_numbers, (&sub, &sub_token), &[("PhoneNumberSid", &pn)])
            .await
            .status,
        StatusCode::CREATED
    );

    // Releasing takes it out too.
    server
        .delete(
            &format!("/2010-04-01/Accounts/{sub}/IncomingPhoneNumbers/{pn}.json"),
            (&sub, &sub_token),
        )
        .await;
    let listed = server.get(&sub_numbers, (&sub, &sub_token)).await;
    assert!(listed.body["phone_numbers"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn alpha_senders_and_short_codes_join_pools() {
    let server = spawn().await;
    let creds = server.main_creds();
    let csv = format!("{CSV_HEADER}55555,US,short-code,true,true,false,,,,smpp\n+14155550100,US,local,false,false,true,,,,sim\n");
    assert_eq!(server.import(&csv, creds).await.status, StatusCode::CREATED);
    let service = create_service(&server, creds, "codes").await;
    let sid = service["sid"].as_str().unwrap();

    let alphas = format!("/v1/Services/{sid}/AlphaSenders");
    let alpha = server
        .post(&alphas, creds, &[("AlphaSender", "FalconAir")])
        .await;
    assert_eq!(alpha.status, StatusCode::CREATED, "{}", alpha.body);
    let alpha_sid = alpha.body["sid"].as_str().unwrap().to_string();
    assert!(alpha_sid.starts_with("AI"));
    assert_eq!(alpha.body["capabilities"], serde_json::json!(["SMS"]));
    server
        .post(&alphas, creds, &[("AlphaSender", "FalconAir")])
        .await
        .assert_error(400, 80104);
    server
        .post(&alphas, creds, &[("AlphaSender", "FalconAirlines")])
        .await
        .assert_error(400, 20001);
    server
        .post(&alphas, creds, &[("AlphaSender", "12345")])
        .await
        .assert_error(400, 20001);
    assert_eq!(
        server.get(&alphas, creds).await.body["alpha_senders"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        server
            .get(&format!("{alphas}/{alpha_sid}"), creds)
            .await
            .body["alpha_sender"],
        "FalconAir"
    );
    assert_eq!(
        server
            .delete(&format!("{alphas}/{alpha_sid}"), creds)
            .await
            .status,
        StatusCode::NO_CONTENT
    );

    // The operator assigns the short code; then it joins the pool.
    let assigned = server
        .post(
            "/admin/short-codes",
            creds,
            &[("ShortCode", "55555"), ("AccountSid", MAIN_SID)],
        )
        .await;
    assert_eq!(assigned.status, StatusCode::CREATED, "{}", assigned.body);
    let sc = assigned.body["sid"].as_str().unwrap().to_string();
    assert!(sc.starts_with("SC"));
    server
        .post(
            "/admin/short-codes",
            creds,
            &[("ShortCode", "55555"), ("AccountSid", MAIN_SID)],
        )
        .await
        .assert_error(400, 21422);
    let codes = format!("/v1/Services/{sid}/ShortCodes");
    let joined = server.post(&codes, creds, &[("ShortCodeSid", &sc)]).await;
    assert_eq!(joined.status, StatusCode::CREATED, "{}", joined.body);
    assert_eq!(joined.body["short_code"], "55555");
    assert_eq!(
        joined.body["capabilities"],
        serde_json::json!(["SMS", "MMS"])
    );
    assert_eq!(
        server.get(&codes, creds).await.body["short_codes"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // A short code is not an IncomingPhoneNumber.
    let incoming = server
        .get(
            &format!("/2010-04-01/Accounts/{MAIN_SID}/IncomingPhoneNumbers.json"),
            creds,
        )
        .await;
    assert!(incoming.body["incoming_phone_numbers"]
        .as_array()
        .unwrap()
        .is_empty());

    // A voice-only number cannot join.
    let voice_only = server.buy(MAIN_SID, "+14155550100", creds).await;
    server
        .post(
            &format!("/v1/Services/{sid}/PhoneNumbers"),
            creds,
            &[("PhoneNumberSid", &voice_only)],
        )
        .await
        .assert_error(400, 21715);
    server
        .get(&format!("/v1/Services/{sid}/Nothing"), creds)
        .await
        .assert_error(404, 20404);
}

/// Sends read the service from a short-lived cache: every change made through this node must
/// show on the very next send, well within the cache's lifetime.
#[tokio::test]
async fn a_service_change_shows_on_the_next_send() {
    let server = spawn().await;
    server.stock().await;
    let creds = server.main_creds();
    let service = create_service(&server, creds, "cached").await;
    let sid = service["sid"].as_str().unwrap().to_string();
    let messages = format!("/2010-04-01/Accounts/{MAIN_SID}/Messages.json");
    let send = |body: &'static str| {
        let server = &server;
        let messages = &messages;
        let sid = sid.clone();
        async move {
            server
                .post(
                    messages,
                    creds,
                    &[
                        ("To", "+14155550199"),
                        ("MessagingServiceSid", &sid),
                        ("Body", body),
                    ],
                )
                .await
        }
    };
    let empty = send("hi").await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST, "{}", empty.body);
    assert_eq!(empty.body["code"], 21704);

    // A number joins the pool: the next send finds it.
    let pn = server.buy(MAIN_SID, "+14155550100", creds).await;
    let pooled = format!("/v1/Services/{sid}/PhoneNumbers");
    let joined = server
        .post(&pooled, creds, &[("PhoneNumberSid", &pn)])
        .await;
    assert_eq!(joined.status, StatusCode::CREATED, "{}", joined.body);
    let sent = send("\u{201c}quoted\u{201d}").await;
    assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.body);
    assert_eq!(
        sent.body["body"], "\"quoted\"",
        "smart encoding is on by default"
    );

    // Smart encoding switched off: the next send keeps its body as written.
    let updated = server
        .post(
            &format!("/v1/Services/{sid}"),
            creds,
            &[("SmartEncoding", "false")],
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    let plain = send("\u{201c}quoted\u{201d}").await;
    assert_eq!(plain.status, StatusCode::CREATED, "{}", plain.body);
    assert_eq!(plain.body["body"], "\u{201c}quoted\u{201d}");

    // The number leaves the pool: the service has no sender again.
    let left = server.delete(&format!("{pooled}/{pn}"), creds).await;
    assert_eq!(left.status, StatusCode::NO_CONTENT);
    let emptied = send("hi").await;
    assert_eq!(emptied.body["code"], 21704, "{}", emptied.body);

    // A deleted service is unknown at once.
    let deleted = server.delete(&format!("/v1/Services/{sid}"), creds).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let gone = send("hi").await;
    assert_eq!(gone.body["code"], 21701, "{}", gone.body);
}
