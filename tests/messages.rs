//! Sending messages: validation, the lifecycle through the simulated carrier, sender choice,
//! pacing, expiry, scheduling, redaction, media; on the database `TEST_DATABASE_URL` names.
//! The dispatcher is driven by hand with chosen times (microseconds), not by sleeping.

mod common;

use axum::http::StatusCode;
use common::{spawn, TestServer, MAIN_SID};
use serde_json::Value;
use warbler::domain::message::MessageStatus;
use warbler::domain::time::now_micros;

const SECOND: i64 = 1_000_000;

fn messages_path(account: &str) -> String {
    format!("/2010-04-01/Accounts/{account}/Messages.json")
}

fn message_path(account: &str, sid: &str) -> String {
    format!("/2010-04-01/Accounts/{account}/Messages/{sid}.json")
}

async fn send(server: &TestServer, form: &[(&str, &str)]) -> Value {
    let reply = server
        .post(&messages_path(MAIN_SID), server.main_creds(), form)
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body
}

/// Sends `count` messages "x" from +14155550100 to `to`; returns their SIDs.
async fn send_from_the_bought_number(server: &TestServer, to: &str, count: usize) -> Vec<String> {
    let mut sids = Vec::with_capacity(count);
    for _ in 0..count {
        let created = send(
            server,
            &[("To", to), ("From", "+14155550100"), ("Body", "x")],
        )
        .await;
        sids.push(created["sid"].as_str().unwrap().to_string());
    }
    sids
}

async fn fetch(server: &TestServer, sid: &str) -> Value {
    server
        .get(&message_path(MAIN_SID, sid), server.main_creds())
        .await
        .body
}

/// Runs the dispatcher on a simulated clock from now for `span`, a round every `step`, and
/// returns when each message was sent, in seconds after the start, sorted.
async fn dispatch_and_time_sends(
    server: &TestServer,
    sids: &[String],
    span: i64,
    step: i64,
) -> Vec<f64> {
    let t0 = now_micros();
    let mut t = t0;
    while t <= t0 + span {
        server.app.dispatch_once(t).await.unwrap();
        t += step;
    }
    let mut sent_at = Vec::new();
    for sid in sids {
        let events = server.app.store.message_events(sid).await.unwrap();
        let (_, _, at) = events
            .into_iter()
            .find(|(s, _, _)| *s == MessageStatus::Sent)
            .expect("sent");
        sent_at.push((at - t0) as f64 / SECOND as f64);
    }
    sent_at.sort_by(|a, b| a.partial_cmp(b).unwrap());
    sent_at
}

/// Main account with +14155550100 and +12125550100 bought, both in a new service.
async fn with_service(server: &TestServer) -> String {
    server.stock().await;
    let a = server
        .buy(MAIN_SID, "+14155550100", server.main_creds())
        .await;
    let b = server
        .buy(MAIN_SID, "+12125550100", server.main_creds())
        .await;
    let service = server
        .post(
            "/v1/Services",
            server.main_creds(),
            &[("FriendlyName", "falcon")],
        )
        .await;
    let sid = service.body["sid"].as_str().unwrap().to_string();
    for pn in [a, b] {
        let added = server
            .post(
                &format!("/v1/Services/{sid}/PhoneNumbers"),
                server.main_creds(),
                &[("PhoneNumberSid", &pn)],
            )
            .await;
        assert_eq!(added.status, StatusCode::CREATED);
    }
    sid
}

#[tokio::test]
async fn every_validation_error_has_twilios_code() {
    let server = spawn().await;
    server.stock().await;
    server
        .buy(MAIN_SID, "+14155550100", server.main_creds())
        .await;
    let empty_service = server
        .post(
            "/v1/Services",
            server.main_creds(),
            &[("FriendlyName", "empty")],
        )
        .await;
    let empty = empty_service.body["sid"].as_str().unwrap().to_string();
    let path = messages_path(MAIN_SID);
    let c = server.main_creds();
    let from = ("From", "+14155550100");
    let to = ("To", "+14155550199");
    let body = ("Body", "hi");
    let too_long = "x".repeat(1601);
    let cases: Vec<(Vec<(&str, &str)>, u64)> = vec![
        (vec![from, body], 21604),
        (vec![("To", "+1415"), from, body], 21211),
        (vec![to, body], 21603),
        (vec![to, ("MessagingServiceSid", "MG123"), body], 21705),
        (
            vec![
                to,
                ("MessagingServiceSid", "MG00000000000000000000000000000000"),
                body,
            ],
            21701,
        ),
        (vec![to, from], 21602),
        (vec![to, ("MessagingServiceSid", &empty)], 21619),
        (vec![to, ("MessagingServiceSid", &empty), body], 21704),
        (vec![to, from, ("Body", &too_long)], 21617),
        (vec![to, from, body, ("ValidityPeriod", "36001")], 21624),
        (vec![to, ("From", "+14155550101"), body], 21606),
        (vec![to, ("From", "not a sender!"), body], 21212),
        (vec![to, from, body, ("StatusCallback", "nope")], 21609),
        (vec![to, from, ("MediaUrl", "ftp://x/y.png")], 21620),
        (
            vec![
                to,
                from,
                body,
                ("ScheduleType", "fixed"),
                ("SendAt", "2099-01-01T00:00:00Z"),
            ],
            35118,
        ),
        (
            vec![
                to,
                ("MessagingServiceSid", &empty),
                body,
                ("ScheduleType", "fixed"),
            ],
            35111,
        ),
        (vec![to, from, body, ("ScheduleType", "sometimes")], 35126),
        (vec![to, from, body, ("SmartEncoded", "perhaps")], 20001),
    ];
    for (form, code) in cases {
        server.post(&path, c, &form).await.assert_error(400, code);
    }
    let service = with_service_on(&server).await;
    let soon = time::OffsetDateTime::now_utc() + time::Duration::minutes(2);
    let soon = soon
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    server
        .post(
            &path,
            c,
            &[
                to,
                ("MessagingServiceSid", &service),
                body,
                ("ScheduleType", "fixed"),
                ("SendAt", &soon),
            ],
        )
        .await
        .assert_error(400, 35114);
    // Nothing was stored by any refused request.
    let listed = server.get(&path, c).await;
    assert!(listed.body["messages"].as_array().unwrap().is_empty());
}

async fn with_service_on(server: &TestServer) -> String {
    let pn = server
        .buy(MAIN_SID, "+12125550101", server.main_creds())
        .await;
    let service = server
        .post(
            "/v1/Services",
            server.main_creds(),
            &[("FriendlyName", "s")],
        )
        .await;
    let sid = service.body["sid"].as_str().unwrap().to_string();
    server
        .post(
            &format!("/v1/Services/{sid}/PhoneNumbers"),
            server.main_creds(),
            &[("PhoneNumberSid", &pn)],
        )
        .await;
    sid
}

#[tokio::test]
async fn a_message_goes_queued_sent_delivered_with_price_and_events() {
    let server = spawn().await;
    server.stock().await;
    server
        .buy(MAIN_SID, "+14155550100", server.main_creds())
        .await;
    let created = send(
        &server,
        &[
            ("To", "+14155550199"),
            ("From", "+14155550100"),
            ("Body", "Hi there"),
        ],
    )
    .await;
    let sid = created["sid"].as_str().unwrap().to_string();
    assert!(sid.starts_with("SM"));
    assert_eq!(created["status"], "queued");
    assert_eq!(created["num_segments"], "1");
    assert_eq!(created["num_media"], "0");
    assert_eq!(created["price"], Value::Null);
    assert_eq!(created["date_sent"], Value::Null);
    assert_eq!(created["direction"], "outbound-api");

    let t0 = now_micros();
    assert_eq!(server.app.dispatch_once(t0).await.unwrap(), 1);
    let sent = fetch(&server, &sid).await;
    assert_eq!(sent["status"], "sent");
    assert_eq!(sent["price"], "-0.00790");
    assert!(sent["date_sent"].is_string());
    // The simulated carrier reports after its latency (2 s in tests), not before.
    assert_eq!(server.app.apply_receipts(t0 + SECOND).await.unwrap(), 0);
    assert_eq!(server.app.apply_receipts(t0 + 3 * SECOND).await.unwrap(), 1);
    assert_eq!(fetch(&server, &sid).await["status"], "delivered");

    let statuses: Vec<MessageStatus> = server
        .app
        .store
        .message_events(&sid)
        .await
        .unwrap()
        .into_iter()
        .map(|(s, _, _)| s)
        .collect();
    assert_eq!(
        statuses,
        vec![
            MessageStatus::Queued,
            MessageStatus::Sending,
            MessageStatus::Sent,
            MessageStatus::Delivered
        ]
    );
}

/// Texts that need escaping (quotes, backslashes, control characters, non-BMP characters)
/// survive every batch statement a message passes through: its insert, the dispatcher's
/// outcome, the receipt, and the status callbacks queued with its callback URL.
#[tokio::test]
async fn texts_that_need_escaping_survive_every_batch_statement() {
    let server = spawn().await;
    server.stock().await;
    server
        .buy(MAIN_SID, "+14155550100", server.main_creds())
        .await;
    let body = "\"quoted\" 'single' back\\slash\nnew line\ttab \u{1}\u{1f} \u{7f} caf\u{e9} \u{1f600} {\"1\":null} $1 ?";
    let callback = "https://example.com/cb?a=\"x\"&b=\\y&c=%22\u{e9}";
    let created = send(
        &server,
        &[
            ("To", "+14155550199"),
            ("From", "+14155550100"),
            ("Body", body),
            ("StatusCallback", callback),
        ],
    )
    .await;
    let sid = created["sid"].as_str().unwrap().to_string();
    assert_eq!(created["body"], body);
    let t0 = now_micros();
    assert_eq!(server.app.dispatch_once(t0).await.unwrap(), 1);
    assert_eq!(server.app.apply_receipts(t0 + 3 * SECOND).await.unwrap(), 1);
    let fetched = fetch(&server, &sid).await;
    assert_eq!(fetched["body"], body);
    assert_eq!(fetched["status"], "delivered");
    assert_eq!(fetched["from"], "+14155550100");
    assert_eq!(fetched["error_code"], Value::Null);
    let rows =
        sqlx::query("SELECT url, message_status, error_code FROM webhook_outbox ORDER BY seq")
            .fetch_all(server.app.store.pool())
            .await
            .unwrap();
    let queued: Vec<(String, String, Option<i64>)> = rows
        .iter()
        .map(|row| {
            use sqlx::Row;
            (
                row.get("url"),
                row.get("message_status"),
                row.get("error_code"),
            )
        })
        .collect();
    assert_eq!(
        queued,
        vec![
            (callback.to_string(), "sent".to_string(), None),
            (callback.to_string(), "delivered".to_string(), None),
        ]
    );
}

#[tokio::test]
async fn service_messages_choose_a_sender_by_area_code_and_stick_to_it() {
    let server = spawn().await;
    let service = with_service(&server).await;
    let created = send(
        &server,
        &[
            ("To", "+14155550123"),
            ("MessagingServiceSid", &service),
            ("Body", "Hi there"),
        ],
    )
    .await;
    assert_eq!(created["status"], "accepted");
    assert_eq!(created["from"], Value::Null);
    assert_eq!(
        created["num_segments"], "0",
        "no segments until a sender is chosen"
    );
    assert_eq!(created["messaging_service_sid"], service.as_str());
    let sid = created["sid"].as_str().unwrap().to_string();
    server.app.dispatch_once(now_micros()).await.unwrap();
    assert_eq!(
        fetch(&server, &sid).await["from"],
        "+14155550100",
        "area-code geomatch"
    );

    // Sticky: the same recipient keeps its sender even when geomatch would differ.
    let to_ny = send(
        &server,
        &[
            ("To", "+12125550177"),
            ("MessagingServiceSid", &service),
            ("Body", "a"),
        ],
    )
    .await;
    server
        .app
        .dispatch_once(now_micros() + 5 * SECOND)
        .await
        .unwrap();
    let ny_sid = to_ny["sid"].as_str().unwrap();
    assert_eq!(fetch(&server, ny_sid).await["from"], "+12125550100");
    server
        .post(
            &format!("/v1/Services/{service}"),
            server.main_creds(),
            &[("AreaCodeGeomatch", "false")],
        )
        .await;
    let again = send(
        &server,
        &[
            ("To", "+14155550123"),
            ("MessagingServiceSid", &service),
            ("Body", "b"),
        ],
    )
    .await;
    server
        .app
        .dispatch_once(now_micros() + 10 * SECOND)
        .await
        .unwrap();
    assert_eq!(
        fetch(&server, again["sid"].as_str().unwrap()).await["from"],
        "+14155550100"
    );
}

#[tokio::test]
async fn magic_destinations_fail_in_each_way() {
    let server = spawn().await;
    server.stock().await;
    server
        .buy(MAIN_SID, "+14155550100", server.main_creds())
        .await;
    let mut sids = Vec::new();
    for to in [
        "+15005550030",
        "+15005550060",
        "+15005550080",
        "+15005550090",
    ] {
        let created = send(
            &server,
            &[("To", to), ("From", "+14155550100"), ("Body", "x")],
        )
        .await;
        sids.push(created["sid"].as_str().unwrap().to_string());
    }
    // The long code sends one segment per second: advance time so all four go.
    let t0 = now_micros();
    for i in 0..4 {
        server.app.dispatch_once(t0 + i * SECOND).await.unwrap();
    }
    server.app.apply_receipts(t0 + 10 * SECOND).await.unwrap();
    let unreachable = fetch(&server, &sids[0]).await;
    assert_eq!(
        (
            unreachable["status"].as_str(),
            unreachable["error_code"].as_i64()
        ),
        (Some("undelivered"), Some(30003))
    );
    assert_eq!(
        unreachable["error_message"],
        "Unreachable destination handset"
    );
    let landline = fetch(&server, &sids[1]).await;
    assert_eq!(
        (landline["status"].as_str(), landline["error_code"].as_i64()),
        (Some("undelivered"), Some(30006))
    );
    let refused = fetch(&server, &sids[2]).await;
    assert_eq!(
        (refused["status"].as_str(), refused["error_code"].as_i64()),
        (Some("failed"), Some(30008))
    );
    assert_eq!(
        fetch(&server, &sids[3]).await["status"],
        "sent",
        "never reports"
    );
}

#[tokio::test]
async fn a_long_code_sends_one_segment_per_second() {
    let server = spawn().await;
    server.stock().await;
    server
        .buy(MAIN_SID, "+14155550100", server.main_creds())
        .await;
    let two_segments = "x".repeat(200);
    let mut sids = Vec::new();
    for _ in 0..5 {
        let created = send(
            &server,
            &[
                ("To", "+14155550199"),
                ("From", "+14155550100"),
                ("Body", &two_segments),
            ],
        )
        .await;
        assert_eq!(created["num_segments"], "2");
        sids.push(created["sid"].as_str().unwrap().to_string());
    }
    // Step a simulated clock a quarter second at a time for 12 s.
    let sent_at = dispatch_and_time_sends(&server, &sids, 12 * SECOND, SECOND / 4).await;
    assert_eq!(
        sent_at,
        vec![0.0, 2.0, 4.0, 6.0, 8.0],
        "two segments each at 1 segment/s"
    );
}

#[tokio::test]
async fn messages_expire_after_their_validity_period() {
    let server = spawn().await;
    server.stock().await;
    server
        .buy(MAIN_SID, "+14155550100", server.main_creds())
        .await;
    let created = send(
        &server,
        &[
            ("To", "+14155550199"),
            ("From", "+14155550100"),
            ("Body", "x"),
            ("ValidityPeriod", "5"),
        ],
    )
    .await;
    let sid = created["sid"].as_str().unwrap();
    server
        .app
        .dispatch_once(now_micros() + 10 * SECOND)
        .await
        .unwrap();
    let expired = fetch(&server, sid).await;
    assert_eq!(expired["status"], "failed");
    assert_eq!(expired["error_code"], 30036);
}

#[tokio::test]
async fn scheduled_messages_wait_for_send_at_and_can_be_canceled() {
    let server = spawn().await;
    let service = with_service(&server).await;
    let at = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    let at_text = at
        .replace_nanosecond(0)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let form = [
        ("To", "+14155550199"),
        ("MessagingServiceSid", service.as_str()),
        ("Body", "later"),
        ("ScheduleType", "fixed"),
        ("SendAt", at_text.as_str()),
    ];
    let first = send(&server, &form).await;
    let second = send(&server, &form).await;
    assert_eq!(first["status"], "scheduled");
    let now = now_micros();
    assert_eq!(
        server.app.dispatch_once(now).await.unwrap(),
        0,
        "not due yet"
    );

    let canceled = server
        .post(
            &message_path(MAIN_SID, second["sid"].as_str().unwrap()),
            server.main_creds(),
            &[("Status", "canceled")],
        )
        .await;
    assert_eq!(canceled.body["status"], "canceled");
    let send_at = at.unix_timestamp() * SECOND;
    server.app.dispatch_once(send_at + SECOND).await.unwrap();
    assert_eq!(
        fetch(&server, first["sid"].as_str().unwrap()).await["status"],
        "sent"
    );
    assert_eq!(
        fetch(&server, second["sid"].as_str().unwrap()).await["status"],
        "canceled"
    );
    // Only scheduled messages can be canceled.
    server
        .post(
            &message_path(MAIN_SID, first["sid"].as_str().unwrap()),
            server.main_creds(),
            &[("Status", "canceled")],
        )
        .await
        .assert_error(400, 30409);
}

#[tokio::test]
async fn redaction_and_deletion_wait_for_a_final_state() {
    let server = spawn().await;
    server.stock().await;
    server
        .buy(MAIN_SID, "+14155550100", server.main_creds())
        .await;
    let created = send(
        &server,
        &[
            ("To", "+14155550199"),
            ("From", "+14155550100"),
            ("Body", "secret code 1234"),
        ],
    )
    .await;
    let sid = created["sid"].as_str().unwrap();
    let path = message_path(MAIN_SID, sid);
    server
        .post(&path, server.main_creds(), &[("Body", "")])
        .await
        .assert_error(400, 20009);
    server
        .delete(&path, server.main_creds())
        .await
        .assert_error(400, 20009);
    let t0 = now_micros();
    server.app.dispatch_once(t0).await.unwrap();
    server.app.apply_receipts(t0 + 5 * SECOND).await.unwrap();
    let redacted = server
        .post(&path, server.main_creds(), &[("Body", "")])
        .await;
    assert_eq!(redacted.status, StatusCode::OK);
    assert_eq!(redacted.body["body"], "");
    assert_eq!(redacted.body["status"], "delivered");
    assert_eq!(
        server.delete(&path, server.main_creds()).await.status,
        StatusCode::NO_CONTENT
    );
    server
        .get(&path, server.main_creds())
        .await
        .assert_error(404, 20404);
}

#[tokio::test]
async fn mms_media_are_listed_fetched_and_deleted() {
    let server = spawn().await;
    server.stock().await;
    server
        .buy(MAIN_SID, "+14155550100", server.main_creds())
        .await;
    let created = send(
        &server,
        &[
            ("To", "+14155550199"),
            ("From", "+14155550100"),
            ("MediaUrl", "https://x.example.com/a.jpg"),
            ("MediaUrl", "https://x.example.com/b.png"),
        ],
    )
    .await;
    let sid = created["sid"].as_str().unwrap();
    assert!(sid.starts_with("MM"));
    assert_eq!(created["num_media"], "2");
    let media_path = format!("/2010-04-01/Accounts/{MAIN_SID}/Messages/{sid}/Media.json");
    let listed = server.get(&media_path, server.main_creds()).await;
    let items = listed.body["media_list"].as_array().unwrap().clone();
    assert_eq!(items.len(), 2);
    let types: Vec<&str> = items
        .iter()
        .map(|m| m["content_type"].as_str().unwrap())
        .collect();
    assert!(types.contains(&"image/jpeg") && types.contains(&"image/png"));
    let me = items[0]["sid"].as_str().unwrap();
    let one = format!("/2010-04-01/Accounts/{MAIN_SID}/Messages/{sid}/Media/{me}.json");
    let fetched = server.get(&one, server.main_creds()).await;
    assert_eq!(fetched.body["parent_sid"], sid);
    // Without `.json`, the media itself: a redirect to where its content is.
    let content = server
        .get(one.trim_end_matches(".json"), server.main_creds())
        .await;
    assert_eq!(content.status, StatusCode::FOUND);
    let location = content.headers["location"].to_str().unwrap();
    assert!(location.starts_with("https://x.example.com/"), "{location}");
    let (sub, token) = server.subaccount("other").await;
    server
        .get(one.trim_end_matches(".json"), (&sub, &token))
        .await
        .assert_error(401, 20003);
    assert_eq!(
        server.delete(&one, server.main_creds()).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        server.get(&media_path, server.main_creds()).await.body["media_list"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn lists_filter_and_page_newest_first() {
    common::clear_of_utc_midnight().await;
    let server = spawn().await;
    server.stock().await;
    server
        .buy(MAIN_SID, "+14155550100", server.main_creds())
        .await;
    let mut sids = Vec::new();
    for i in 0..7 {
        let to = if i % 2 == 0 {
            "+14155550199"
        } else {
            "+14155550198"
        };
        let created = send(
            &server,
            &[
                ("To", to),
                ("From", "+14155550100"),
                ("Body", &format!("m{i}")),
            ],
        )
        .await;
        sids.push(created["sid"].as_str().unwrap().to_string());
    }
    let all = server
        .collect_pages(
            &format!("{}?PageSize=3", messages_path(MAIN_SID)),
            "messages",
            server.main_creds(),
        )
        .await;
    let listed: Vec<&str> = all.iter().map(|m| m["sid"].as_str().unwrap()).collect();
    let newest_first: Vec<&str> = sids.iter().rev().map(String::as_str).collect();
    assert_eq!(listed, newest_first);
    let to_filter = server
        .get(
            &format!("{}?To=%2B14155550198", messages_path(MAIN_SID)),
            server.main_creds(),
        )
        .await;
    assert_eq!(to_filter.body["messages"].as_array().unwrap().len(), 3);
    // Nothing is sent yet, so no DateSent matches; then dispatch and filter by today.
    let today = time::OffsetDateTime::now_utc().date();
    let today = format!(
        "{:04}-{:02}-{:02}",
        today.year(),
        u8::from(today.month()),
        today.day()
    );
    let sent_today = format!("{}?DateSent={today}", messages_path(MAIN_SID));
    assert!(
        server.get(&sent_today, server.main_creds()).await.body["messages"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    server.app.dispatch_once(now_micros()).await.unwrap();
    assert_eq!(
        server.get(&sent_today, server.main_creds()).await.body["messages"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    server
        .get(
            &format!("{}?DateSent=yesterday", messages_path(MAIN_SID)),
            server.main_creds(),
        )
        .await
        .assert_error(400, 20001);
    // In UTC this is past the last day `time` represents: the conversion to a day panicked.
    // As a day (`DateSent=`) it is refused; as a bound it is an instant like any other.
    let far = |name: &'static str| {
        let server = &server;
        async move {
            server
                .get(
                    &format!(
                        "{}?{name}=9999-12-31T23:59:59-01:00",
                        messages_path(MAIN_SID)
                    ),
                    server.main_creds(),
                )
                .await
        }
    };
    far("DateSent").await.assert_error(400, 20001);
    let after = far("DateSent%3E").await;
    assert_eq!(after.status, StatusCode::OK, "{}", after.body);
    assert_eq!(after.body["messages"].as_array().unwrap().len(), 0);
    let before = far("DateSent%3C").await;
    assert_eq!(before.status, StatusCode::OK, "{}", before.body);
}

#[tokio::test]
async fn a_receipt_that_arrives_before_its_submit_is_recorded_waits() {
    let server = spawn().await;
    server.stock().await;
    server
        .buy(MAIN_SID, "+14155550100", server.main_creds())
        .await;
    let created = send(
        &server,
        &[
            ("To", "+15005550090"),
            ("From", "+14155550100"),
            ("Body", "x"),
        ],
    )
    .await;
    let sid = created["sid"].as_str().unwrap();
    let now = now_micros();
    server
        .app
        .store
        .insert_receipts(&[warbler::store::rows::Receipt {
            id: "early".into(),
            carrier_message_id: "carrier-early".into(),
            status: MessageStatus::Delivered,
            error_code: None,
            done_date: None,
            due_at: now,
        }])
        .await
        .unwrap();
    assert_eq!(
        server.app.apply_receipts(now).await.unwrap(),
        0,
        "no message carries that id yet"
    );
    server.app.dispatch_once(now).await.unwrap();
    // The submit is recorded now; give the message the early receipt's carrier id.
    sqlx::query("UPDATE messages SET carrier_message_id = 'carrier-early' WHERE sid = $1")
        .bind(sid.to_string())
        .execute(server.app.store.pool())
        .await
        .unwrap();
    assert_eq!(server.app.apply_receipts(now + SECOND).await.unwrap(), 1);
    assert_eq!(fetch(&server, sid).await["status"], "delivered");
}

#[tokio::test]
async fn a_suspended_subaccount_cannot_send_even_through_its_parent() {
    let server = spawn().await;
    server.stock().await;
    let (sub, _) = server.subaccount("FalconFlights").await;
    server.buy(&sub, "+14155550100", server.main_creds()).await;
    server
        .post(
            &format!("/2010-04-01/Accounts/{sub}.json"),
            server.main_creds(),
            &[("Status", "suspended")],
        )
        .await;
    server
        .post(
            &messages_path(&sub),
            server.main_creds(),
            &[
                ("To", "+14155550199"),
                ("From", "+14155550100"),
                ("Body", "x"),
            ],
        )
        .await
        .assert_error(403, 20005);
}

#[tokio::test]
async fn a_per_number_rate_overrides_the_default_pacing() {
    let database = common::fresh_database().await;
    let url = database.url.clone();
    let store = warbler::store::Store::connect(&url).await.unwrap();
    let mut settings = warbler::service::Settings::new(1000, "pepper".into());
    settings.pacing_overrides.insert("+14155550100".into(), 4.0);
    let app = warbler::service::App::new(store, settings);
    app.ensure_main_account(Some(MAIN_SID), Some(common::MAIN_TOKEN), "main")
        .await
        .unwrap();
    app.seed_demo_inventory().await.unwrap();
    let server = common::TestServer::from_app(app).holding(database);
    server
        .buy(MAIN_SID, "+14155550100", server.main_creds())
        .await;
    let sids = send_from_the_bought_number(&server, "+14155550199", 4).await;
    let sent_at = dispatch_and_time_sends(&server, &sids, 2 * SECOND, SECOND / 8).await;
    assert_eq!(
        sent_at,
        vec![0.0, 0.25, 0.5, 0.75],
        "4 segments/s for this number"
    );
}

#[tokio::test]
async fn feedback_records_the_outcome() {
    let server = spawn().await;
    server.stock().await;
    server
        .buy(MAIN_SID, "+14155550100", server.main_creds())
        .await;
    let created = send(
        &server,
        &[
            ("To", "+14155550199"),
            ("From", "+14155550100"),
            ("Body", "your code is 123456"),
            ("ProvideFeedback", "true"),
        ],
    )
    .await;
    let sid = created["sid"].as_str().unwrap();
    let path = format!("/2010-04-01/Accounts/{MAIN_SID}/Messages/{sid}/Feedback.json");
    let first = server
        .post(&path, server.main_creds(), &[("Outcome", "unconfirmed")])
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(first.body["outcome"], "unconfirmed");
    assert_eq!(first.body["message_sid"], sid);
    let second = server.post(&path, server.main_creds(), &[]).await;
    assert_eq!(second.body["outcome"], "confirmed");
    assert_eq!(second.body["date_created"], first.body["date_created"]);
    server
        .post(&path, server.main_creds(), &[("Outcome", "maybe")])
        .await
        .assert_error(400, 20001);
    let missing = format!(
        "/2010-04-01/Accounts/{MAIN_SID}/Messages/SM00000000000000000000000000000000/Feedback.json"
    );
    server
        .post(&missing, server.main_creds(), &[])
        .await
        .assert_error(404, 20404);
}

#[tokio::test]
async fn a_held_write_session_sees_another_writer_waiting_and_lets_it_in_when_dropped() {
    let database = common::fresh_database().await;
    let store = warbler::store::Store::connect(&database.url).await.unwrap();
    let mut session = store.write_session().await.unwrap();
    assert!(!session.others_wait());
    // Two transactions in turn on the session's one connection.
    for _ in 0..2 {
        session.begin().await.unwrap().commit().await.unwrap();
    }
    let other = tokio::spawn({
        let store = store.clone();
        async move { store.begin_write().await.unwrap().commit().await.unwrap() }
    });
    if store.backend() == warbler::store::Backend::Sqlite {
        // A SQLite file has one write connection: the other writer waits for the session.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !session.others_wait() {
            assert!(std::time::Instant::now() < deadline, "never seen waiting");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert!(!other.is_finished());
    }
    drop(session);
    tokio::time::timeout(std::time::Duration::from_secs(5), other)
        .await
        .expect("the other writer got the connection")
        .unwrap();
}

/// A NUL character in a parameter (PostgreSQL cannot store one) is refused with 400 / 20001 on
/// both databases; the sends committed in the same moment by other requests are unharmed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nul_character_is_refused_and_fails_no_other_send() {
    let server = spawn().await;
    server.stock().await;
    server
        .buy(MAIN_SID, "+14155550100", server.main_creds())
        .await;
    let path = messages_path(MAIN_SID);
    let good = |i: usize| {
        let (server, path) = (&server, path.clone());
        async move {
            let body = format!("fine {i}");
            server
                .post(
                    &path,
                    server.main_creds(),
                    &[
                        ("To", "+14155550199"),
                        ("From", "+14155550100"),
                        ("Body", &body),
                    ],
                )
                .await
        }
    };
    let bad = server.post(
        &path,
        server.main_creds(),
        &[
            ("To", "+14155550199"),
            ("From", "+14155550100"),
            ("Body", "a\0b"),
        ],
    );
    let (bad, goods) = tokio::join!(bad, futures::future::join_all((0..20).map(good)));
    bad.assert_error(400, 20001);
    for reply in goods {
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    }
    server
        .post(
            "/2010-04-01/Accounts.json",
            server.main_creds(),
            &[("FriendlyName", "nul\0name")],
        )
        .await
        .assert_error(400, 20001);
}

/// The instant an RFC 2822 date (as the 2010 API renders them) names, shifted by `seconds`, as
/// an SDK sends a date-time filter (`2026-12-01T21:24:33Z`); and its day (`2026-12-01`).
fn filter_values(rendered: &Value, seconds: i64) -> (String, String) {
    let instant = time::OffsetDateTime::parse(
        rendered.as_str().unwrap(),
        &time::format_description::well_known::Rfc2822,
    )
    .unwrap()
        + time::Duration::seconds(seconds);
    let date_time = instant
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
        ))
        .unwrap();
    (date_time.clone(), date_time[..10].to_string())
}

#[tokio::test]
async fn date_filters_bound_a_date_time_to_its_second_and_a_date_to_its_day() {
    let server = spawn().await;
    server.stock().await;
    server
        .buy(MAIN_SID, "+14155550100", server.main_creds())
        .await;
    let created = send(
        &server,
        &[
            ("To", "+14155550199"),
            ("From", "+14155550100"),
            ("MediaUrl", "https://x.example.com/a.jpg"),
        ],
    )
    .await;
    let sid = created["sid"].as_str().unwrap().to_string();
    server.app.dispatch_once(now_micros()).await.unwrap();
    let sent = fetch(&server, &sid).await;
    let count = |query: String| {
        let server = &server;
        async move {
            let reply = server.get(&query, server.main_creds()).await;
            assert_eq!(reply.status, StatusCode::OK, "{query}: {}", reply.body);
            let list = reply.body["messages"]
                .as_array()
                .or_else(|| reply.body["media_list"].as_array())
                .unwrap()
                .len();
            list
        }
    };
    let messages = messages_path(MAIN_SID);
    let (at, day) = filter_values(&sent["date_sent"], 0);
    let (before, _) = filter_values(&sent["date_sent"], -1);
    let (after, _) = filter_values(&sent["date_sent"], 1);
    let (_, day_before) = filter_values(&sent["date_sent"], -86_400);
    for (filter, expected) in [
        // Equality selects a day, whether given as a date or a date-time.
        (format!("DateSent={at}"), 1),
        (format!("DateSent={day}"), 1),
        (format!("DateSent={day}T00:00:00Z"), 1),
        (format!("DateSent={day}T23:59:59Z"), 1),
        (format!("DateSent={day_before}T12:00:00Z"), 0),
        (format!("DateSent={day_before}"), 0),
        // Bounds honour the time of day, to the second.
        (format!("DateSent%3C={at}"), 1),
        (format!("DateSent%3C={before}"), 0),
        (format!("DateSent%3E={at}"), 1),
        (format!("DateSent%3E={after}"), 0),
        (format!("DateSent%3E={day}"), 1),
        (format!("DateSent%3E={before}&DateSent%3C={after}"), 1),
    ] {
        assert_eq!(
            count(format!("{messages}?{filter}")).await,
            expected,
            "{filter}"
        );
    }

    let media = format!("/2010-04-01/Accounts/{MAIN_SID}/Messages/{sid}/Media.json");
    let item = &server.get(&media, server.main_creds()).await.body["media_list"][0];
    let (at, day) = filter_values(&item["date_created"], 0);
    let (before, _) = filter_values(&item["date_created"], -1);
    let (after, _) = filter_values(&item["date_created"], 1);
    for (filter, expected) in [
        (format!("DateCreated={at}"), 1),
        (format!("DateCreated={day}"), 1),
        (format!("DateCreated%3C={before}"), 0),
        (format!("DateCreated%3C={at}"), 1),
        (format!("DateCreated%3E={after}"), 0),
        (format!("DateCreated%3E={day}"), 1),
    ] {
        assert_eq!(
            count(format!("{media}?{filter}")).await,
            expected,
            "{filter}"
        );
    }
    server
        .get(&format!("{media}?DateCreated%3E=soon"), server.main_creds())
        .await
        .assert_error(400, 20001);
}

/// Receipts no message claims (another system's ids, or a submit whose record a crash lost)
/// wait a minute in every round for their message, then are set aside and looked at again
/// every hour, and dropped once a week old. One that finds its message when looked at
/// again is applied then. A receipt whose message is recorded is applied however old.
#[tokio::test]
async fn receipts_no_message_claims_are_set_aside_and_dropped_after_a_week() {
    let server = spawn().await;
    server.stock().await;
    server
        .buy(MAIN_SID, "+14155550100", server.main_creds())
        .await;
    let sids = send_from_the_bought_number(&server, "+15005550090", 2).await;
    let now = now_micros();
    server.app.dispatch_once(now).await.unwrap();
    let store = &server.app.store;
    let pool = store.pool().clone();
    let pool = &pool;
    let set_carrier_id = |sid: String, carrier_id: &'static str| async move {
        sqlx::query("UPDATE messages SET carrier_message_id = $1 WHERE sid = $2")
            .bind(carrier_id)
            .bind(sid)
            .execute(pool)
            .await
            .unwrap();
    };
    set_carrier_id(sids[0].clone(), "carrier-known").await;
    let minute = 60 * SECOND;
    let receipt = |id: &str, carrier_id: &str, at: i64| warbler::store::rows::Receipt {
        id: id.into(),
        carrier_message_id: carrier_id.into(),
        status: MessageStatus::Delivered,
        error_code: None,
        done_date: None,
        due_at: at,
    };
    store
        .insert_receipts(&[
            receipt("known", "carrier-known", now - 2 * minute),
            receipt("later", "carrier-later", now - 2 * minute),
            receipt("stranger", "carrier-stranger", now - 2 * minute),
            receipt("young", "carrier-young", now - 10 * SECOND),
            receipt("ancient", "carrier-ancient", now - 8 * 24 * 60 * minute),
        ])
        .await
        .unwrap();
    let due_of = |id: &'static str| async move {
        sqlx::query_as::<_, (i64,)>("SELECT due_at FROM carrier_receipts WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await
            .unwrap()
            .map(|(due,)| due)
    };
    let hour = 60 * minute;
    assert_eq!(server.app.apply_receipts(now).await.unwrap(), 1);
    assert_eq!(fetch(&server, &sids[0]).await["status"], "delivered");
    assert_eq!(due_of("known").await, None, "applied");
    assert_eq!(due_of("ancient").await, None, "a week old: dropped");
    assert_eq!(due_of("later").await, Some(now + hour), "set aside");
    assert_eq!(due_of("stranger").await, Some(now + hour), "set aside");
    assert_eq!(
        due_of("young").await,
        Some(now - 10 * SECOND),
        "still waits for its message in every round"
    );
    // A minute on, the young one is set aside too.
    assert_eq!(server.app.apply_receipts(now + minute).await.unwrap(), 0);
    assert_eq!(due_of("young").await, Some(now + minute + hour));
    // The message of one turns up: applied when it is looked at again.
    set_carrier_id(sids[1].clone(), "carrier-later").await;
    assert_eq!(
        server.app.apply_receipts(now + 30 * minute).await.unwrap(),
        0
    );
    assert_ne!(fetch(&server, &sids[1]).await["status"], "delivered");
    assert_eq!(server.app.apply_receipts(now + hour).await.unwrap(), 1);
    assert_eq!(fetch(&server, &sids[1]).await["status"], "delivered");
    assert_eq!(due_of("later").await, None);
    // Looked at again, the stranger waits its minute in every round, then is set aside again.
    assert_eq!(due_of("stranger").await, Some(now + hour));
    server
        .app
        .apply_receipts(now + hour + minute)
        .await
        .unwrap();
    assert_eq!(due_of("stranger").await, Some(now + 2 * hour + minute));
    // Once a week old, the next look drops them.
    server
        .app
        .apply_receipts(now + 7 * 24 * hour)
        .await
        .unwrap();
    assert_eq!(due_of("stranger").await, None, "a week old: dropped");
    assert_eq!(due_of("young").await, None, "a week old: dropped");
}

#[tokio::test]
async fn a_receipt_sent_twice_or_for_a_final_message_changes_nothing_more() {
    let server = spawn().await;
    server.stock().await;
    server
        .buy(MAIN_SID, "+14155550100", server.main_creds())
        .await;
    let send_one = |callback: &'static str| {
        let server = &server;
        async move {
            let created = send(
                server,
                &[
                    ("To", "+15005550090"),
                    ("From", "+14155550100"),
                    ("Body", "x"),
                    ("StatusCallback", callback),
                ],
            )
            .await;
            created["sid"].as_str().unwrap().to_string()
        }
    };
    let sent = send_one("https://cb.example/sent").await;
    let done = send_one("https://cb.example/done").await;
    let now = now_micros();
    server.app.dispatch_once(now).await.unwrap();
    for (sid, carrier_id) in [(&sent, "carrier-sent"), (&done, "carrier-done")] {
        sqlx::query("UPDATE messages SET carrier_message_id = $1 WHERE sid = $2")
            .bind(carrier_id)
            .bind(sid.clone())
            .execute(server.app.store.pool())
            .await
            .unwrap();
    }
    sqlx::query("UPDATE messages SET status = 'undelivered' WHERE sid = $1")
        .bind(done.clone())
        .execute(server.app.store.pool())
        .await
        .unwrap();
    sqlx::query("DELETE FROM webhook_outbox")
        .execute(server.app.store.pool())
        .await
        .unwrap();
    let receipt = |id: &str, carrier_id: &str| warbler::store::rows::Receipt {
        id: id.into(),
        carrier_message_id: carrier_id.into(),
        status: MessageStatus::Delivered,
        error_code: None,
        done_date: Some("2612041200".into()),
        due_at: now,
    };
    server
        .app
        .store
        .insert_receipts(&[
            // The SMSC sent it twice (say, on two binds): one change, one event, one callback.
            receipt("r1", "carrier-sent"),
            receipt("r2", "carrier-sent"),
            // Final already: dropped.
            receipt("r3", "carrier-done"),
        ])
        .await
        .unwrap();
    assert_eq!(server.app.apply_receipts(now + SECOND).await.unwrap(), 1);
    assert_eq!(fetch(&server, &sent).await["status"], "delivered");
    assert_eq!(fetch(&server, &done).await["status"], "undelivered");
    let delivered_events = server
        .app
        .store
        .message_events(&sent)
        .await
        .unwrap()
        .into_iter()
        .filter(|(status, ..)| *status == MessageStatus::Delivered)
        .count();
    assert_eq!(delivered_events, 1);
    let callbacks: Vec<(String,)> =
        sqlx::query_as("SELECT url FROM webhook_outbox WHERE message_status = 'delivered'")
            .fetch_all(server.app.store.pool())
            .await
            .unwrap();
    assert_eq!(callbacks, vec![("https://cb.example/sent".to_string(),)]);
    let waiting: Vec<(String,)> = sqlx::query_as("SELECT id FROM carrier_receipts")
        .fetch_all(server.app.store.pool())
        .await
        .unwrap();
    assert!(waiting.is_empty(), "all three consumed: {waiting:?}");
}
