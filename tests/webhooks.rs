//! Webhooks, inbound messages and opt-outs, against a real HTTP receiver on 127.0.0.1, on the
//! database `TEST_DATABASE_URL` names. Dispatch, receipts and webhook rounds are driven by
//! hand with chosen times (microseconds), except in the receiver-down test, which runs the
//! workers for real. (The official `RequestValidator` checks the same
//! requests in the conformance suite.)

mod common;

use axum::http::StatusCode;
use common::receiver::{Hit, Receiver};
use common::{spawn, TestServer, MAIN_SID, MAIN_TOKEN};
use serde_json::Value;
use warbler::domain::time::now_micros;
use warbler::webhook::signature::sign_form;

const SECOND: i64 = 1_000_000;
const HANDSET: &str = "+14155550199";

/// Runs webhook rounds at `now` until none is due.
async fn flush(server: &TestServer, now: i64) {
    for _ in 0..50 {
        if server.app.deliver_webhooks_once(now).await.unwrap() == 0 {
            return;
        }
    }
    panic!("webhooks keep coming");
}

async fn buy_configured(server: &TestServer, number: &str, config: &[(&str, &str)]) -> String {
    let sid = server.buy(MAIN_SID, number, server.main_creds()).await;
    if !config.is_empty() {
        let reply = server
            .post(
                &format!("/2010-04-01/Accounts/{MAIN_SID}/IncomingPhoneNumbers/{sid}.json"),
                server.main_creds(),
                config,
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }
    sid
}

async fn send(server: &TestServer, form: &[(&str, &str)]) -> Value {
    let reply = server
        .post(
            &format!("/2010-04-01/Accounts/{MAIN_SID}/Messages.json"),
            server.main_creds(),
            form,
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body
}

async fn create_service(server: &TestServer, settings: &[(&str, &str)]) -> String {
    let mut form = vec![("FriendlyName", "hooks")];
    form.extend_from_slice(settings);
    let reply = server
        .post("/v1/Services", server.main_creds(), &form)
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body["sid"].as_str().unwrap().to_string()
}

async fn add_to_service(server: &TestServer, service: &str, number_sid: &str) {
    let reply = server
        .post(
            &format!("/v1/Services/{service}/PhoneNumbers"),
            server.main_creds(),
            &[("PhoneNumberSid", number_sid)],
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
}

/// Sends "Hi there" to `HANDSET` through `service`, then dispatches it, applies its receipt
/// and delivers the callbacks it owes. Returns the message as created.
async fn send_through_service_until_delivered(server: &TestServer, service: &str) -> Value {
    send_through_service_until_delivered_with(server, service, &[]).await
}

/// `send_through_service_until_delivered` with more of the send's parameters.
async fn send_through_service_until_delivered_with(
    server: &TestServer,
    service: &str,
    more: &[(&str, &str)],
) -> Value {
    let mut form = vec![
        ("To", HANDSET),
        ("MessagingServiceSid", service),
        ("Body", "Hi there"),
    ];
    form.extend_from_slice(more);
    let message = send(server, &form).await;
    let t0 = now_micros();
    server.app.dispatch_once(t0).await.unwrap();
    server.app.apply_receipts(t0 + 5 * SECOND).await.unwrap();
    flush(server, t0 + 5 * SECOND).await;
    message
}

/// Sends `count` messages from the stocked number to `HANDSET` through the API, each with
/// `callback` as its `StatusCallback` (bodies `"{body} {i}"`). Returns their SIDs in order.
async fn send_with_callback(
    server: &TestServer,
    count: usize,
    body: &str,
    callback: &str,
) -> Vec<String> {
    let mut sids = Vec::with_capacity(count);
    for i in 0..count {
        let reply = common::smpp::send(
            server,
            &[
                ("To", HANDSET),
                ("From", "+14155550100"),
                ("Body", &format!("{body} {i}")),
                ("StatusCallback", callback),
            ],
        )
        .await;
        sids.push(reply["sid"].as_str().unwrap().to_string());
    }
    sids
}

fn statuses(hits: &[Hit], sid: &str) -> Vec<String> {
    hits.iter()
        .filter(|h| h.get("MessageSid") == Some(sid))
        .map(|h| h.get("MessageStatus").unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn status_callbacks_follow_each_lifecycle_in_order() {
    let server = spawn().await;
    let hook = Receiver::start().await;
    server.stock().await;
    // The number's own callback serves messages sent from it without one of their own.
    buy_configured(
        &server,
        "+14155550100",
        &[("StatusCallback", &hook.url("/number"))],
    )
    .await;
    let delivered = send(
        &server,
        &[("To", HANDSET), ("From", "+14155550100"), ("Body", "hi")],
    )
    .await;
    let undelivered = send(
        &server,
        &[
            ("To", "+15005550030"),
            ("From", "+14155550100"),
            ("Body", "hi"),
            ("StatusCallback", &hook.url("/message")),
        ],
    )
    .await;
    let failed = send(
        &server,
        &[
            ("To", "+15005550080"),
            ("From", "+14155550100"),
            ("Body", "hi"),
            ("StatusCallback", &hook.url("/message")),
        ],
    )
    .await;
    let t0 = now_micros();
    // Pacing sends one a second from a long code.
    for i in 0..4 {
        server.app.dispatch_once(t0 + i * SECOND).await.unwrap();
    }
    server.app.apply_receipts(t0 + 10 * SECOND).await.unwrap();
    flush(&server, t0 + 10 * SECOND).await;

    let number_hits = hook.hits("/number");
    let sid = delivered["sid"].as_str().unwrap();
    assert_eq!(statuses(&number_hits, sid), ["sent", "delivered"]);
    let last = number_hits.last().unwrap();
    assert_eq!(last.get("SmsStatus"), Some("delivered"));
    assert_eq!(last.get("SmsSid"), Some(sid));
    assert_eq!(last.get("AccountSid"), Some(MAIN_SID));
    assert_eq!(last.get("From"), Some("+14155550100"));
    assert_eq!(last.get("To"), Some(HANDSET));
    assert_eq!(last.get("ApiVersion"), Some("2010-04-01"));
    assert!(last.get("RawDlrDoneDate").is_some_and(|d| d.len() == 10));
    assert_eq!(last.get("ErrorCode"), None);

    let message_hits = hook.hits("/message");
    let sid = undelivered["sid"].as_str().unwrap();
    assert_eq!(statuses(&message_hits, sid), ["sent", "undelivered"]);
    let last = message_hits
        .iter()
        .rfind(|h| h.get("MessageSid") == Some(sid))
        .unwrap();
    assert_eq!(last.get("ErrorCode"), Some("30003"));
    let sid = failed["sid"].as_str().unwrap();
    assert_eq!(statuses(&message_hits, sid), ["failed"]);
    assert_eq!(
        message_hits
            .iter()
            .find(|h| h.get("MessageSid") == Some(sid))
            .unwrap()
            .get("ErrorCode"),
        Some("30008")
    );
    hook.assert_signed(MAIN_TOKEN);
    assert_eq!(server.app.store.pending_webhooks().await.unwrap(), 0);
}

#[tokio::test]
async fn service_callbacks_report_queued_and_carry_the_service() {
    let server = spawn().await;
    let hook = Receiver::start().await;
    server.stock().await;
    let number = buy_configured(&server, "+14155550100", &[]).await;
    let service = create_service(&server, &[("StatusCallback", &hook.url("/service"))]).await;
    add_to_service(&server, &service, &number).await;
    let message = send_through_service_until_delivered(&server, &service).await;
    assert_eq!(message["status"], "accepted");
    let hits = hook.hits("/service");
    let sid = message["sid"].as_str().unwrap();
    assert_eq!(statuses(&hits, sid), ["queued", "sent", "delivered"]);
    assert!(hits
        .iter()
        .all(|h| h.get("MessagingServiceSid") == Some(service.as_str())));
    hook.assert_signed(MAIN_TOKEN);
}

/// A message's own `StatusCallback` comes before its service's and its sender's: every one of
/// its callbacks goes there, none to the others.
#[tokio::test]
async fn a_message_s_own_callback_comes_before_its_service_s_and_its_number_s() {
    let server = spawn().await;
    let hook = Receiver::start().await;
    server.stock().await;
    let number = buy_configured(
        &server,
        "+14155550100",
        &[("StatusCallback", &hook.url("/number"))],
    )
    .await;
    let service = create_service(&server, &[("StatusCallback", &hook.url("/service"))]).await;
    add_to_service(&server, &service, &number).await;
    let own = hook.url("/own");
    let message =
        send_through_service_until_delivered_with(&server, &service, &[("StatusCallback", &own)])
            .await;
    let sid = message["sid"].as_str().unwrap();
    assert_eq!(
        statuses(&hook.hits("/own"), sid),
        ["queued", "sent", "delivered"]
    );
    assert!(statuses(&hook.hits("/service"), sid).is_empty());
    assert!(statuses(&hook.hits("/number"), sid).is_empty());
    hook.assert_signed(MAIN_TOKEN);
}

/// A service without a callback: its messages report to the callback of the pool number the
/// dispatcher chose, from the moment it is chosen (the number is resolved with the sender
/// being recorded, before the message row carries it).
#[tokio::test]
async fn service_messages_report_to_the_chosen_number_callback() {
    let server = spawn().await;
    let hook = Receiver::start().await;
    server.stock().await;
    let number = buy_configured(
        &server,
        "+14155550100",
        &[("StatusCallback", &hook.url("/number"))],
    )
    .await;
    let service = create_service(&server, &[]).await;
    add_to_service(&server, &service, &number).await;
    let message = send_through_service_until_delivered(&server, &service).await;
    let hits = hook.hits("/number");
    let sid = message["sid"].as_str().unwrap();
    assert_eq!(statuses(&hits, sid), ["queued", "sent", "delivered"]);
    assert!(hits.iter().all(|h| h.get("From") == Some("+14155550100")));
    hook.assert_signed(MAIN_TOKEN);
}

#[tokio::test]
async fn a_failing_receiver_gets_retries_in_order_and_leaves_alerts() {
    let server = spawn().await;
    let hook = Receiver::start().await;
    server.stock().await;
    let (sub, sub_token) = server.subaccount("tenant").await;
    let number = server
        .buy(MAIN_SID, "+14155550100", server.main_creds())
        .await;
    let moved = server
        .post(
            &format!("/2010-04-01/Accounts/{MAIN_SID}/IncomingPhoneNumbers/{number}.json"),
            server.main_creds(),
            &[("AccountSid", &sub)],
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
    let reply = server
        .post(
            &format!("/2010-04-01/Accounts/{sub}/Messages.json"),
            (&sub, &sub_token),
            &[
                ("To", HANDSET),
                ("From", "+14155550100"),
                ("Body", "retry me"),
                ("StatusCallback", &hook.url("/flaky")),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let sid = reply.body["sid"].as_str().unwrap().to_string();
    hook.answer("/flaky", 500, "text/plain", "down");
    hook.answer("/flaky", 503, "text/plain", "still down");
    let t0 = now_micros();
    server.app.dispatch_once(t0).await.unwrap();
    server.app.apply_receipts(t0 + 3 * SECOND).await.unwrap();
    // First attempt of `sent` fails; `delivered` waits behind it.
    assert_eq!(
        server
            .app
            .deliver_webhooks_once(t0 + 3 * SECOND)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        server
            .app
            .deliver_webhooks_once(t0 + 4 * SECOND)
            .await
            .unwrap(),
        0,
        "not due before its backoff"
    );
    // Second attempt (5 s later) fails, third (10 s after that) succeeds, then `delivered`.
    assert_eq!(
        server
            .app
            .deliver_webhooks_once(t0 + 9 * SECOND)
            .await
            .unwrap(),
        1
    );
    flush(&server, t0 + 20 * SECOND).await;
    let hits = hook.hits("/flaky");
    assert_eq!(statuses(&hits, &sid), ["sent", "sent", "sent", "delivered"]);
    hook.assert_signed(&sub_token);

    // Two alerts, visible to the subaccount and to its parent, with the exchange captured.
    for creds in [(sub.as_str(), sub_token.as_str()), server.main_creds()] {
        let alerts = server.get("/v1/Alerts", creds).await;
        assert_eq!(alerts.status, StatusCode::OK, "{}", alerts.body);
        let list = alerts.body["alerts"].as_array().unwrap();
        assert_eq!(list.len(), 2, "{}", alerts.body);
        assert!(list.iter().all(|a| a["error_code"] == "11200"
            && a["resource_sid"] == sid.as_str()
            && a["account_sid"] == sub.as_str()));
        assert_eq!(alerts.body["meta"]["key"], "alerts");
    }
    let alerts = server.get("/v1/Alerts", server.main_creds()).await;
    let first = alerts.body["alerts"][0]["sid"].as_str().unwrap();
    let alert = server
        .get(&format!("/v1/Alerts/{first}"), server.main_creds())
        .await;
    assert_eq!(alert.status, StatusCode::OK);
    assert!(alert.body["alert_text"]
        .as_str()
        .unwrap()
        .contains("httpResponse=50"));
    assert!(alert.body["request_variables"]
        .as_str()
        .unwrap()
        .contains("MessageStatus=sent"));
    assert!(alert.body["response_body"]
        .as_str()
        .unwrap()
        .contains("down"));
    // The headers sent (the signature the receiver checked, the delivery's idempotency token)
    // and the ones answered.
    let sent_headers = alert.body["request_headers"].as_str().unwrap();
    let signature = hook.hits("/flaky")[0].signature.clone();
    assert!(
        sent_headers.contains(&format!(
            "X-Twilio-Signature={}",
            form_urlencoded::byte_serialize(signature.as_bytes()).collect::<String>()
        )),
        "{sent_headers}"
    );
    assert!(
        sent_headers.contains("I-Twilio-Idempotency-Token="),
        "{sent_headers}"
    );
    assert!(
        alert.body["response_headers"]
            .as_str()
            .unwrap()
            .contains("content-type=text%2Fplain"),
        "{}",
        alert.body
    );
    // A sibling subaccount sees none of them.
    let (other, other_token) = server.subaccount("sibling").await;
    let theirs = server.get("/v1/Alerts", (&other, &other_token)).await;
    assert_eq!(theirs.body["alerts"].as_array().unwrap().len(), 0);
    let hidden = server
        .get(&format!("/v1/Alerts/{first}"), (&other, &other_token))
        .await;
    hidden.assert_error(404, 20404);
}

#[tokio::test]
async fn a_callback_is_given_up_after_the_retry_window() {
    let server = spawn().await;
    server.stock().await;
    server
        .buy(MAIN_SID, "+14155550100", server.main_creds())
        .await;
    // Nothing listens on port 9 (discard): every attempt fails to connect.
    send(
        &server,
        &[
            ("To", "+15005550080"),
            ("From", "+14155550100"),
            ("Body", "x"),
            ("StatusCallback", "http://127.0.0.1:9/gone"),
        ],
    )
    .await;
    let t0 = now_micros();
    server.app.dispatch_once(t0).await.unwrap();
    assert_eq!(server.app.deliver_webhooks_once(t0).await.unwrap(), 1);
    assert_eq!(server.app.store.pending_webhooks().await.unwrap(), 1);
    // A day later the window (24 h) is over: the next failure is the last.
    assert_eq!(
        server
            .app
            .deliver_webhooks_once(t0 + 25 * 3600 * SECOND)
            .await
            .unwrap(),
        1
    );
    assert_eq!(server.app.store.pending_webhooks().await.unwrap(), 0);
}

async fn inbound(server: &TestServer, from: &str, to: &str, body: &str) -> Value {
    let reply = server
        .post(
            "/admin/simulate/inbound",
            server.main_creds(),
            &[("From", from), ("To", to), ("Body", body)],
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body
}

#[tokio::test]
async fn inbound_goes_to_the_number_or_the_service_url() {
    let server = spawn().await;
    let hook = Receiver::start().await;
    server.stock().await;
    let number = buy_configured(
        &server,
        "+14155550100",
        &[("SmsUrl", &hook.url("/number-sms"))],
    )
    .await;
    let message = inbound(&server, HANDSET, "+14155550100", "hello there").await;
    assert_eq!(message["direction"], "inbound");
    assert_eq!(message["status"], "received");
    flush(&server, now_micros()).await;
    let hits = hook.hits("/number-sms");
    assert_eq!(hits.len(), 1);
    let hit = &hits[0];
    assert_eq!(hit.get("Body"), Some("hello there"));
    assert_eq!(hit.get("From"), Some(HANDSET));
    assert_eq!(hit.get("To"), Some("+14155550100"));
    assert_eq!(hit.get("SmsStatus"), Some("received"));
    assert_eq!(hit.get("NumMedia"), Some("0"));
    assert_eq!(hit.get("NumSegments"), Some("1"));
    assert_eq!(hit.get("FromCountry"), Some("US"));
    assert_eq!(hit.get("MessageSid"), message["sid"].as_str());
    assert_eq!(hit.get("SmsMessageSid"), message["sid"].as_str());
    assert_eq!(hit.get("MessagingServiceSid"), None);

    let service =
        create_service(&server, &[("InboundRequestUrl", &hook.url("/service-sms"))]).await;
    add_to_service(&server, &service, &number).await;
    inbound(&server, HANDSET, "+14155550100", "via service").await;
    flush(&server, now_micros()).await;
    let hits = hook.hits("/service-sms");
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].get("MessagingServiceSid"), Some(service.as_str()));

    let reply = server
        .post(
            &format!("/v1/Services/{service}"),
            server.main_creds(),
            &[("UseInboundWebhookOnNumber", "true")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    inbound(&server, HANDSET, "+14155550100", "number again").await;
    flush(&server, now_micros()).await;
    assert_eq!(hook.hits("/number-sms").len(), 2);
    assert_eq!(hook.hits("/service-sms").len(), 1);
    hook.assert_signed(MAIN_TOKEN);

    // SmsMethod=GET: the parameters ride in the query string, which is what gets signed.
    let get_hook = Receiver::start().await;
    let reply = server
        .post(
            &format!("/2010-04-01/Accounts/{MAIN_SID}/IncomingPhoneNumbers/{number}.json"),
            server.main_creds(),
            &[
                ("SmsUrl", &get_hook.url("/get?tenant=7")),
                ("SmsMethod", "GET"),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    inbound(&server, HANDSET, "+14155550100", "by GET").await;
    flush(&server, now_micros()).await;
    let hits = get_hook.hits("/get");
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].method, "GET");
    assert_eq!(hits[0].get("tenant"), Some("7"));
    assert_eq!(hits[0].get("Body"), Some("by GET"));
    let full_url = format!("{}/get?{}", get_hook.base, hits[0].query);
    assert_eq!(hits[0].signature, sign_form(MAIN_TOKEN, &full_url, &[]));
}

#[tokio::test]
async fn twiml_replies_are_sent_back_and_bad_twiml_falls_back_with_an_alert() {
    let server = spawn().await;
    let hook = Receiver::start().await;
    server.stock().await;
    buy_configured(
        &server,
        "+14155550100",
        &[
            ("SmsUrl", &hook.url("/sms")),
            ("SmsFallbackUrl", &hook.url("/fallback")),
        ],
    )
    .await;
    hook.answer(
        "/sms",
        200,
        "text/xml",
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Message>Thanks!</Message>\
         <Redirect>/more</Redirect></Response>",
    );
    hook.answer(
        "/more",
        200,
        "application/xml",
        "<Response><Message><Body>Second</Body><Media>https://example.com/a.png</Media></Message></Response>",
    );
    let first = inbound(&server, HANDSET, "+14155550100", "question").await;
    flush(&server, now_micros()).await;
    assert_eq!(hook.hits("/more").len(), 1, "the redirect was followed");
    let replies = server
        .get(
            &format!("/2010-04-01/Accounts/{MAIN_SID}/Messages.json?To=%2B14155550199"),
            server.main_creds(),
        )
        .await;
    let list = replies.body["messages"].as_array().unwrap();
    let mut bodies: Vec<&str> = list.iter().map(|m| m["body"].as_str().unwrap()).collect();
    bodies.sort();
    assert_eq!(bodies, ["Second", "Thanks!"]);
    assert!(list
        .iter()
        .all(|m| m["direction"] == "outbound-reply" && m["from"] == "+14155550100"));
    assert!(list.iter().any(|m| m["num_media"] == "1"));
    // The replies go out through the normal dispatch path.
    let t0 = now_micros();
    server.app.dispatch_once(t0 + 2 * SECOND).await.unwrap();
    server.app.dispatch_once(t0 + 4 * SECOND).await.unwrap();
    for m in list {
        let sid = m["sid"].as_str().unwrap();
        let fetched = server
            .get(
                &format!("/2010-04-01/Accounts/{MAIN_SID}/Messages/{sid}.json"),
                server.main_creds(),
            )
            .await;
        assert_eq!(fetched.body["status"], "sent", "{}", fetched.body);
    }
    assert_eq!(hook.hits("/fallback").len(), 0);

    // Malformed TwiML: an alert 12100, then the fallback URL, which answers plain text.
    hook.answer(
        "/sms",
        200,
        "text/xml",
        "<Response><Message>oops</Response>",
    );
    hook.answer("/fallback", 200, "text/plain", "From the fallback");
    inbound(&server, HANDSET, "+14155550100", "again").await;
    flush(&server, now_micros()).await;
    assert_eq!(hook.hits("/fallback").len(), 1);
    let alerts = server
        .get("/v1/Alerts?PageSize=50", server.main_creds())
        .await;
    let list = alerts.body["alerts"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{}", alerts.body);
    assert_eq!(list[0]["error_code"], "12100");
    let replies = server
        .get(
            &format!("/2010-04-01/Accounts/{MAIN_SID}/Messages.json?To=%2B14155550199"),
            server.main_creds(),
        )
        .await;
    assert!(replies.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["body"] == "From the fallback"));
    assert!(first["sid"].as_str().is_some());
    hook.assert_signed(MAIN_TOKEN);
}

async fn latest_reply_to(server: &TestServer, to: &str) -> String {
    let replies = server
        .get(
            &format!(
                "/2010-04-01/Accounts/{MAIN_SID}/Messages.json?To={}",
                to.replace('+', "%2B")
            ),
            server.main_creds(),
        )
        .await;
    replies.body["messages"][0]["body"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn stop_blocks_sending_until_start_and_help_answers() {
    let server = spawn().await;
    let hook = Receiver::start().await;
    server.stock().await;
    buy_configured(&server, "+14155550100", &[("SmsUrl", &hook.url("/sms"))]).await;
    buy_configured(&server, "+14155550101", &[]).await;
    // A message accepted before the STOP is stopped at dispatch.
    let early = send(
        &server,
        &[
            ("To", HANDSET),
            ("From", "+14155550101"),
            ("Body", "before"),
        ],
    )
    .await;
    inbound(&server, HANDSET, "+14155550100", " Stop ").await;
    assert!(latest_reply_to(&server, HANDSET)
        .await
        .starts_with("You have successfully been unsubscribed"));
    flush(&server, now_micros()).await;
    assert_eq!(hook.hits("/sms")[0].get("OptOutType"), Some("STOP"));
    // The default scope is the account: every sender of it is blocked.
    for from in ["+14155550100", "+14155550101"] {
        let refused = server
            .post(
                &format!("/2010-04-01/Accounts/{MAIN_SID}/Messages.json"),
                server.main_creds(),
                &[("To", HANDSET), ("From", from), ("Body", "promo")],
            )
            .await;
        refused.assert_error(400, 21610);
    }
    server.app.dispatch_once(now_micros()).await.unwrap();
    let fetched = server
        .get(
            &format!(
                "/2010-04-01/Accounts/{MAIN_SID}/Messages/{}.json",
                early["sid"].as_str().unwrap()
            ),
            server.main_creds(),
        )
        .await;
    assert_eq!(fetched.body["status"], "failed");
    assert_eq!(fetched.body["error_code"], 21610);
    // The STOP confirmation itself went out.
    let list = server
        .get(
            &format!("/2010-04-01/Accounts/{MAIN_SID}/Messages.json?To=%2B14155550199"),
            server.main_creds(),
        )
        .await;
    let confirmation = list.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["direction"] == "outbound-reply")
        .unwrap()
        .clone();
    assert_eq!(confirmation["status"], "sent", "{confirmation}");

    // The opt-out list shows it, exports it, and the sub-resources are scoped.
    let listed = server
        .get(
            &format!("/warbler/v1/Accounts/{MAIN_SID}/OptOuts"),
            server.main_creds(),
        )
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    assert_eq!(listed.body["opt_outs"][0]["recipient"], HANDSET);
    assert_eq!(listed.body["opt_outs"][0]["scope"], "account");
    assert_eq!(listed.body["opt_outs"][0]["keyword"], "STOP");
    let exported = server
        .get(
            &format!("/warbler/v1/Accounts/{MAIN_SID}/OptOuts/Export"),
            server.main_creds(),
        )
        .await;
    assert!(exported
        .body
        .as_str()
        .unwrap()
        .contains("+14155550199,account,+14155550100,STOP"));

    inbound(&server, HANDSET, "+14155550100", "help").await;
    assert_eq!(
        latest_reply_to(&server, HANDSET).await,
        warbler::domain::opt_out::DEFAULT_HELP_REPLY
    );
    inbound(&server, HANDSET, "+14155550100", "START").await;
    assert!(latest_reply_to(&server, HANDSET)
        .await
        .starts_with("You have successfully been re-subscribed"));
    send(
        &server,
        &[
            ("To", HANDSET),
            ("From", "+14155550101"),
            ("Body", "welcome back"),
        ],
    )
    .await;
    // "STOP PLEASE" is not a keyword.
    inbound(&server, HANDSET, "+14155550100", "STOP PLEASE").await;
    send(
        &server,
        &[
            ("To", HANDSET),
            ("From", "+14155550101"),
            ("Body", "still here"),
        ],
    )
    .await;
}

#[tokio::test]
async fn a_service_can_add_keywords_and_replies() {
    let server = spawn().await;
    server.stock().await;
    let number = buy_configured(&server, "+14155550100", &[]).await;
    let service = create_service(&server, &[]).await;
    add_to_service(&server, &service, &number).await;
    let path = format!("/warbler/v1/Services/{service}/OptOutSettings");
    let defaults = server.get(&path, server.main_creds()).await;
    assert_eq!(defaults.status, StatusCode::OK, "{}", defaults.body);
    assert_eq!(defaults.body["advanced_opt_out"], false);
    let bad = server
        .post(
            &path,
            server.main_creds(),
            &[("OptOutKeywords", "two words")],
        )
        .await;
    bad.assert_error(400, 20001);
    let updated = server
        .post(
            &path,
            server.main_creds(),
            &[
                ("OptOutKeywords", "arret,halt"),
                ("OptOutMessage", "Adieu from Owlie."),
            ],
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert!(updated.body["opt_out_keywords"]
        .as_array()
        .unwrap()
        .iter()
        .any(|k| k == "ARRET"));
    inbound(&server, HANDSET, "+14155550100", "Arret").await;
    assert_eq!(latest_reply_to(&server, HANDSET).await, "Adieu from Owlie.");
    let refused = server
        .post(
            &format!("/2010-04-01/Accounts/{MAIN_SID}/Messages.json"),
            server.main_creds(),
            &[
                ("To", HANDSET),
                ("MessagingServiceSid", &service),
                ("Body", "x"),
            ],
        )
        .await;
    refused.assert_error(400, 21610);
    // Another account's credentials cannot see the settings.
    let (sub, token) = server.subaccount("other").await;
    server
        .get(&path, (&sub, &token))
        .await
        .assert_error(404, 20404);
    // ...nor delete the service (or anything of it).
    server
        .delete(&format!("/v1/Services/{service}"), (&sub, &token))
        .await
        .assert_error(404, 20404);
    let kept = server.get(&path, server.main_creds()).await;
    assert_eq!(kept.body["advanced_opt_out"], true);
    assert_eq!(kept.body["opt_out_message"], "Adieu from Owlie.");
}

#[tokio::test]
async fn opt_outs_follow_a_number_moved_to_a_subaccount() {
    let server = spawn().await;
    server.stock().await;
    let number = buy_configured(&server, "+14155550100", &[]).await;
    inbound(&server, HANDSET, "+14155550100", "STOP").await;
    let (sub, token) = server.subaccount("tenant").await;
    let moved = server
        .post(
            &format!("/2010-04-01/Accounts/{MAIN_SID}/IncomingPhoneNumbers/{number}.json"),
            server.main_creds(),
            &[("AccountSid", &sub)],
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
    let refused = server
        .post(
            &format!("/2010-04-01/Accounts/{sub}/Messages.json"),
            (&sub, &token),
            &[("To", HANDSET), ("From", "+14155550100"), ("Body", "hi")],
        )
        .await;
    refused.assert_error(400, 21610);
    let listed = server
        .get(
            &format!("/warbler/v1/Accounts/{sub}/OptOuts"),
            (&sub, &token),
        )
        .await;
    assert_eq!(listed.body["opt_outs"][0]["scope"], "+14155550100");
    // The subaccount's other numbers may still text the recipient.
    server.buy(&sub, "+14155550101", (&sub, &token)).await;
    let allowed = server
        .post(
            &format!("/2010-04-01/Accounts/{sub}/Messages.json"),
            (&sub, &token),
            &[("To", HANDSET), ("From", "+14155550101"), ("Body", "hi")],
        )
        .await;
    assert_eq!(allowed.status, StatusCode::CREATED, "{}", allowed.body);
}

#[tokio::test]
async fn opt_out_lists_import_and_lift() {
    let server = spawn().await;
    server.stock().await;
    server
        .buy(MAIN_SID, "+14155550100", server.main_creds())
        .await;
    let path = format!("/warbler/v1/Accounts/{MAIN_SID}/OptOuts");
    let import = |csv: &'static str| {
        let server = &server;
        let path = path.clone();
        async move {
            let request = axum::http::Request::builder()
                .method("POST")
                .uri(path)
                .header("Authorization", common::basic(MAIN_SID, MAIN_TOKEN))
                .header("Content-Type", "text/csv")
                .body(axum::body::Body::from(csv))
                .unwrap();
            server.raw(request).await
        }
    };
    import("recipient,scope\n+14155550199,account\nnot-a-number,account\n")
        .await
        .assert_error(400, 21211);
    assert_eq!(
        server.get(&path, server.main_creds()).await.body["opt_outs"]
            .as_array()
            .unwrap()
            .len(),
        0,
        "a bad file imports nothing"
    );
    let done = import("recipient,keyword\n+14155550199,stop\n+14155550198,\n").await;
    assert_eq!(done.status, StatusCode::CREATED, "{}", done.body);
    assert_eq!(done.body["imported"], 2);
    server
        .post(
            &format!("/2010-04-01/Accounts/{MAIN_SID}/Messages.json"),
            server.main_creds(),
            &[
                ("To", "+14155550198"),
                ("From", "+14155550100"),
                ("Body", "x"),
            ],
        )
        .await
        .assert_error(400, 21610);
    let lifted = server
        .delete(&format!("{path}/%2B14155550198"), server.main_creds())
        .await;
    assert_eq!(lifted.status, StatusCode::NO_CONTENT, "{}", lifted.body);
    send(
        &server,
        &[
            ("To", "+14155550198"),
            ("From", "+14155550100"),
            ("Body", "x"),
        ],
    )
    .await;
    // Paging through PageToken.
    let page = server
        .get(&format!("{path}?PageSize=1"), server.main_creds())
        .await;
    assert_eq!(page.body["opt_outs"].as_array().unwrap().len(), 1);
    assert_eq!(page.body["meta"]["next_page_url"], Value::Null);
    // A subaccount cannot read its parent's list.
    let (sub, token) = server.subaccount("tenant").await;
    server
        .get(&path, (&sub, &token))
        .await
        .assert_error(401, 20003);
}

/// While a message's callback waits out its retry backoff, the callbacks queued behind it wait
/// at least as long (their due time never precedes it): a claim walking the due index then
/// meets each message's first pending callback before the ones blocked behind it, instead of
/// scanning every blocked row on every round. Order is kept when the receiver comes back.
#[tokio::test]
async fn callbacks_behind_one_in_backoff_are_due_no_earlier_than_it() {
    let server = spawn().await;
    server.stock().await;
    buy_configured(&server, "+14155550100", &[]).await;
    let hook = Receiver::start().await;
    hook.answer("/later", 503, "text/plain", "down");
    let sid = send(
        &server,
        &[
            ("To", HANDSET),
            ("From", "+14155550100"),
            ("Body", "wait for me"),
            ("StatusCallback", &hook.url("/later")),
        ],
    )
    .await["sid"]
        .as_str()
        .unwrap()
        .to_string();
    let t0 = now_micros();
    server.app.dispatch_once(t0).await.unwrap();
    assert_eq!(
        server.app.deliver_webhooks_once(t0).await.unwrap(),
        1,
        "`sent` fails"
    );
    // `delivered` is queued while `sent` waits for its retry.
    server.app.apply_receipts(t0 + 3 * SECOND).await.unwrap();
    let rows = sqlx::query("SELECT message_status, due_at FROM webhook_outbox ORDER BY seq")
        .fetch_all(server.app.store.pool())
        .await
        .unwrap();
    let due: Vec<(String, i64)> = rows
        .iter()
        .map(|row| {
            use sqlx::Row;
            (
                row.get::<String, _>("message_status"),
                row.get::<i64, _>("due_at"),
            )
        })
        .collect();
    assert_eq!(due.len(), 2, "{due:?}");
    assert_eq!(
        (due[0].0.as_str(), due[1].0.as_str()),
        ("sent", "delivered")
    );
    assert!(due[0].1 > t0 + 3 * SECOND, "`sent` is in backoff: {due:?}");
    assert!(
        due[1].1 >= due[0].1,
        "`delivered` is due no earlier than the `sent` it waits for: {due:?}"
    );
    flush(&server, t0 + 60 * SECOND).await;
    assert_eq!(
        statuses(&hook.hits("/later"), &sid),
        ["sent", "sent", "delivered"]
    );
}

/// TwiML replies queued before the recipient's STOP do not go out after it (21610 at
/// dispatch, as for API sends); the STOP confirmation itself does.
#[tokio::test]
async fn a_stop_stops_the_twiml_replies_already_queued() {
    let server = spawn().await;
    let hook = Receiver::start().await;
    server.stock().await;
    buy_configured(&server, "+14155550100", &[("SmsUrl", &hook.url("/sms"))]).await;
    hook.answer(
        "/sms",
        200,
        "text/xml",
        "<Response><Message>one</Message><Message>two</Message><Message>three</Message></Response>",
    );
    inbound(&server, HANDSET, "+14155550100", "question").await;
    flush(&server, now_micros()).await;
    // The three replies are queued, not yet dispatched, when the STOP arrives.
    inbound(&server, HANDSET, "+14155550100", "STOP").await;
    server
        .app
        .dispatch_once(now_micros() + 2 * SECOND)
        .await
        .unwrap();
    let list = server
        .get(
            &format!("/2010-04-01/Accounts/{MAIN_SID}/Messages.json?To=%2B14155550199"),
            server.main_creds(),
        )
        .await;
    let mut outcomes: Vec<(String, String, Option<i64>)> = list.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["body"].as_str().unwrap().to_string(),
                m["status"].as_str().unwrap().to_string(),
                m["error_code"].as_i64(),
            )
        })
        .collect();
    outcomes.sort();
    let confirmation = warbler::domain::opt_out::OptOutSettings::default()
        .reply(warbler::domain::opt_out::KeywordKind::Stop)
        .to_string();
    let mut expected = vec![
        ("one".to_string(), "failed".to_string(), Some(21610)),
        ("three".into(), "failed".into(), Some(21610)),
        ("two".into(), "failed".into(), Some(21610)),
        (confirmation, "sent".into(), None),
    ];
    expected.sort();
    assert_eq!(outcomes, expected);
}

/// One incoming message gets at most 10 TwiML replies (Twilio's limit), however many
/// `<Message>`s its answers hold (redirects included); the rest are dropped with a 14109
/// warning alert.
#[tokio::test]
async fn at_most_ten_twiml_replies_per_incoming_message() {
    let server = spawn().await;
    let hook = Receiver::start().await;
    server.stock().await;
    buy_configured(&server, "+14155550100", &[("SmsUrl", &hook.url("/sms"))]).await;
    let many: String = (0..8)
        .map(|i| format!("<Message>first {i}</Message>"))
        .collect();
    hook.answer(
        "/sms",
        200,
        "text/xml",
        &format!("<Response>{many}<Redirect>/more</Redirect></Response>"),
    );
    let more: String = (0..8)
        .map(|i| format!("<Message>more {i}</Message>"))
        .collect();
    hook.answer(
        "/more",
        200,
        "text/xml",
        &format!("<Response>{more}</Response>"),
    );
    inbound(&server, HANDSET, "+14155550100", "question").await;
    flush(&server, now_micros()).await;
    let replies = server
        .collect_pages(
            &format!("/2010-04-01/Accounts/{MAIN_SID}/Messages.json?To=%2B14155550199&PageSize=50"),
            "messages",
            server.main_creds(),
        )
        .await;
    assert_eq!(replies.len(), 10, "10 of 16 replies");
    let alerts = server.get("/v1/Alerts", server.main_creds()).await;
    let alerts = alerts.body["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["error_code"], "14109");
    assert_eq!(alerts[0]["log_level"], "warning");
    assert!(
        alerts[0]["alert_text"]
            .as_str()
            .unwrap()
            .contains("6+dropped"),
        "{}",
        alerts[0]["alert_text"]
    );
}

/// TwiML replies are the account's sends: counted against its monthly cap (one over it is not
/// sent, and leaves a 14101 alert), and none is sent while the account is suspended.
#[tokio::test]
async fn twiml_replies_count_against_the_monthly_cap_and_stop_with_the_account() {
    common::clear_of_utc_midnight().await;
    let server = spawn().await;
    let hook = Receiver::start().await;
    server.stock().await;
    let (sub, sub_token) = server.subaccount("replier").await;
    let number = server.buy(&sub, "+14155550100", server.main_creds()).await;
    let configured = server
        .post(
            &format!("/2010-04-01/Accounts/{sub}/IncomingPhoneNumbers/{number}.json"),
            (&sub, &sub_token),
            &[("SmsUrl", &hook.url("/sms"))],
        )
        .await;
    assert_eq!(configured.status, StatusCode::OK, "{}", configured.body);
    let caps = format!("/admin/accounts/{sub}/Caps");
    let capped = server
        .post(&caps, server.main_creds(), &[("MonthlyMessages", "2")])
        .await;
    assert_eq!(capped.status, StatusCode::OK, "{}", capped.body);
    hook.answer(
        "/sms",
        200,
        "text/xml",
        "<Response><Message>a</Message><Message>b</Message><Message>c</Message></Response>",
    );
    inbound(&server, HANDSET, "+14155550100", "question").await;
    flush(&server, now_micros()).await;
    let sent_to_handset = || {
        let sub = sub.clone();
        let server = &server;
        async move {
            let listed = server
                .get(
                    &format!("/2010-04-01/Accounts/{sub}/Messages.json?To=%2B14155550199"),
                    server.main_creds(),
                )
                .await;
            assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
            listed.body["messages"].as_array().unwrap().len()
        }
    };
    assert_eq!(sent_to_handset().await, 2, "the third is over the cap");
    let shown = server.get(&caps, server.main_creds()).await;
    assert_eq!(shown.body["messages_this_month"], 2, "{}", shown.body);
    let alerts = server.get("/v1/Alerts", (&sub, &sub_token)).await;
    let alerts = alerts.body["alerts"].as_array().unwrap().clone();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["error_code"], "14101");
    assert!(
        alerts[0]["alert_text"].as_str().unwrap().contains("cap"),
        "{}",
        alerts[0]["alert_text"]
    );

    // Suspended: the webhook still hears of inbound messages, but no reply goes out.
    let cleared = server
        .post(&caps, server.main_creds(), &[("MonthlyMessages", "")])
        .await;
    assert_eq!(cleared.status, StatusCode::OK, "{}", cleared.body);
    let suspended = server
        .post(
            &format!("/2010-04-01/Accounts/{sub}.json"),
            server.main_creds(),
            &[("Status", "suspended")],
        )
        .await;
    assert_eq!(suspended.status, StatusCode::OK, "{}", suspended.body);
    inbound(&server, HANDSET, "+14155550100", "again").await;
    flush(&server, now_micros()).await;
    assert_eq!(hook.hits("/sms").len(), 2, "the webhook was called");
    assert_eq!(sent_to_handset().await, 2, "no reply while suspended");
}

/// Keyword auto-replies are the account's sends too: counted against its monthly cap (one
/// over it is not sent and leaves a 14101 alert, while the opt-out is recorded all the same),
/// and none goes out while the account is suspended.
#[tokio::test]
async fn keyword_auto_replies_count_against_the_monthly_cap_and_stop_with_the_account() {
    common::clear_of_utc_midnight().await;
    let server = spawn().await;
    server.stock().await;
    let (sub, sub_token) = server.subaccount("keywords").await;
    server.buy(&sub, "+14155550100", server.main_creds()).await;
    let caps = format!("/admin/accounts/{sub}/Caps");
    let capped = server
        .post(&caps, server.main_creds(), &[("MonthlyMessages", "1")])
        .await;
    assert_eq!(capped.status, StatusCode::OK, "{}", capped.body);
    let replies_to = |handset: &'static str| {
        let sub = sub.clone();
        let server = &server;
        async move {
            let listed = server
                .get(
                    &format!(
                        "/2010-04-01/Accounts/{sub}/Messages.json?To={}",
                        handset.replace('+', "%2B")
                    ),
                    server.main_creds(),
                )
                .await;
            assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
            listed.body["messages"].as_array().unwrap().len()
        }
    };
    let opted_out = |handset: &'static str| {
        let sub = sub.clone();
        let server = &server;
        async move {
            server
                .app
                .store
                .opt_outs_of(&sub, &[handset])
                .await
                .unwrap()
                .len()
        }
    };
    inbound(&server, "+14155550181", "+14155550100", "STOP").await;
    assert_eq!(
        replies_to("+14155550181").await,
        1,
        "the first confirmation"
    );
    inbound(&server, "+14155550182", "+14155550100", "STOP").await;
    assert_eq!(replies_to("+14155550182").await, 0, "over the cap of 1");
    assert_eq!(opted_out("+14155550182").await, 1, "the STOP is recorded");
    let shown = server.get(&caps, server.main_creds()).await;
    assert_eq!(shown.body["messages_this_month"], 1, "{}", shown.body);
    let alerts = server.get("/v1/Alerts", (&sub, &sub_token)).await;
    let alerts = alerts.body["alerts"].as_array().unwrap().clone();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["error_code"], "14101");
    assert!(
        alerts[0]["alert_text"].as_str().unwrap().contains("cap"),
        "{}",
        alerts[0]["alert_text"]
    );

    let cleared = server
        .post(&caps, server.main_creds(), &[("MonthlyMessages", "")])
        .await;
    assert_eq!(cleared.status, StatusCode::OK, "{}", cleared.body);
    let suspended = server
        .post(
            &format!("/2010-04-01/Accounts/{sub}.json"),
            server.main_creds(),
            &[("Status", "suspended")],
        )
        .await;
    assert_eq!(suspended.status, StatusCode::OK, "{}", suspended.body);
    inbound(&server, "+14155550183", "+14155550100", "STOP").await;
    assert_eq!(
        replies_to("+14155550183").await,
        0,
        "no reply while suspended"
    );
    assert_eq!(opted_out("+14155550183").await, 1, "the STOP is recorded");
}

/// With the workers running for real (simulated carrier, 100 ms retry base): a status
/// callback receiver that refuses connections for two seconds, then comes back on the same
/// port, gets every callback, in order per message.
#[tokio::test]
async fn callbacks_refused_while_the_receiver_is_down_all_arrive_in_order_when_it_returns() {
    use std::collections::HashMap;
    use std::time::Duration;
    const MESSAGES: usize = 40;
    let running = common::smpp::start(Vec::new()).await;
    let server = &running.server;
    // Nothing listens on the port yet: connections are refused.
    let port = common::free_port();
    let url = format!("http://127.0.0.1:{port}/status");
    let sids = send_with_callback(server, MESSAGES, "while down", &url).await;
    // Every message is delivered while its callbacks fail.
    for sid in &sids {
        common::smpp::wait_for(server, sid, "delivered", 15).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let alerts = server.get("/v1/Alerts", server.main_creds()).await;
    let refused = alerts.body["alerts"].as_array().unwrap().len();
    assert!(refused > 0, "no failed attempt recorded");

    let hook = Receiver::start_on(port).await;
    let expected = ["sent", "delivered"];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let hits = hook.hits("/status");
        let mut per_message: HashMap<String, Vec<String>> = HashMap::new();
        for hit in &hits {
            per_message
                .entry(hit.get("MessageSid").unwrap().to_string())
                .or_default()
                .push(hit.get("MessageStatus").unwrap().to_string());
        }
        let complete = sids
            .iter()
            .filter(|sid| {
                per_message
                    .get(*sid)
                    .is_some_and(|s| s.iter().any(|status| status == "delivered"))
            })
            .count();
        if complete == MESSAGES {
            for sid in &sids {
                // At least once each, never out of order: repeats only of the same status.
                let mut seen = per_message[sid].clone();
                seen.dedup();
                assert_eq!(seen, expected, "{sid}: {:?}", per_message[sid]);
            }
            eprintln!(
                "{MESSAGES} messages, {} callbacks after the receiver came back, at least {refused} alerts (one page) while it was down",
                hits.len()
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{complete} of {MESSAGES} messages have both callbacks: {per_message:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    hook.assert_signed(MAIN_TOKEN);
}

/// With the workers running for real: on PostgreSQL the status writes claim each message's
/// callback for this node's sender as they write it and hand it over in memory (on a SQLite
/// file the sender's claims are in memory already, and nothing is handed over). Either way
/// every callback arrives exactly once, in order per message, and none is left pending.
#[tokio::test]
async fn with_the_workers_running_every_callback_arrives_once_in_order() {
    use std::collections::HashMap;
    use std::time::Duration;
    const MESSAGES: usize = 30;
    let running = common::smpp::start(Vec::new()).await;
    let server = &running.server;
    let hook = Receiver::start().await;
    let url = hook.url("/status");
    let sids = send_with_callback(server, MESSAGES, "handed", &url).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let per_message = loop {
        let mut per_message: HashMap<String, Vec<String>> = HashMap::new();
        for hit in hook.hits("/status") {
            per_message
                .entry(hit.get("MessageSid").unwrap().to_string())
                .or_default()
                .push(hit.get("MessageStatus").unwrap().to_string());
        }
        let complete = sids
            .iter()
            .filter(|sid| per_message.get(*sid).is_some_and(|s| s.len() >= 2))
            .count();
        if complete == MESSAGES && server.app.store.pending_webhooks().await.unwrap() == 0 {
            break per_message;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{complete} of {MESSAGES} messages have both callbacks: {per_message:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for sid in &sids {
        assert_eq!(per_message[sid], ["sent", "delivered"], "{sid}");
    }
    let handed = server.app.callback_handoff.handed();
    if server.app.store.backend() == warbler::store::Backend::Postgres {
        assert!(handed > 0, "no callback was claimed as it was written");
    } else {
        assert_eq!(handed, 0, "a SQLite file's sender claims in memory");
    }
    eprintln!(
        "{handed} of {} callbacks handed over as written",
        2 * MESSAGES
    );
    hook.assert_signed(MAIN_TOKEN);
}

/// A slow receiver holds up only its own callbacks: while one round waits on it, the next
/// round claims and sends what became due since. (One round at a time, a callback queued
/// behind a slow request waited for it: a round ends with its slowest request.)
#[tokio::test]
async fn a_slow_request_does_not_hold_up_callbacks_queued_after_it() {
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};
    let server = spawn().await;
    let arrivals: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let seen = arrivals.clone();
    let receiver = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let seen = seen.clone();
        async move {
            seen.lock()
                .unwrap()
                .push((uri.path().to_string(), Instant::now()));
            if uri.path() == "/slow" {
                tokio::time::sleep(Duration::from_secs(4)).await;
            }
            StatusCode::OK
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, receiver).await.unwrap() });
    let queue = |id: &'static str, path: &'static str| {
        let store = server.app.store.clone();
        let work = server.app.webhook_work.clone();
        let url = format!("{base}{path}");
        async move {
            let now = now_micros();
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO webhook_outbox (id, kind, account_sid, ordering_key, seq, url, method, \
                 payload, attempts, created_at, due_at) VALUES ('{id}', 'trigger', '{MAIN_SID}', \
                 '{id}', 0, '{url}', 'POST', 'Sent=1', 0, {now}, {now})"
            )))
            .execute(store.pool())
            .await
            .unwrap();
            work.notify_one();
        }
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let app = server.app.clone();
    let rounds = tokio::spawn(async move { app.run_webhooks(stopped).await });
    let arrived = |path: &'static str| {
        let arrivals = arrivals.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Some((_, at)) = arrivals.lock().unwrap().iter().find(|(p, _)| p == path) {
                    return *at;
                }
                assert!(Instant::now() < deadline, "no request to {path}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    queue("WHslow", "/slow").await;
    arrived("/slow").await;
    let queued = Instant::now();
    queue("WHquick", "/quick").await;
    let quick = arrived("/quick").await;
    assert!(
        quick.duration_since(queued) < Duration::from_secs(2),
        "a callback queued behind a slow request waited {:?}",
        quick.duration_since(queued)
    );
    stop.send(true).unwrap();
    rounds.await.unwrap();
}
