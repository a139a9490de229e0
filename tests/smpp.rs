//! warbler's SMPP carrier against `warbler smsc` (in-process, on a loopback port), with the
//! dispatcher, receipts and webhooks running for real: REST → submit_sm → receipt → status
//! callback; multipart receipts; throttling; failure classes; an SMSC that dies mid-load and
//! comes back; mobile-originated messages to the inbound webhook.

mod common;

use axum::http::StatusCode;
use common::receiver::Receiver;
use common::smpp::{message, route, send, smsc_on, start, start_with, wait_for, Running};
use common::{MAIN_SID, MAIN_TOKEN};
use serde_json::Value;
use std::time::Duration;
use warbler::carrier::smpp::receipt::IdFormat;
use warbler::carrier::smpp::route::LongMessage;

async fn bound(running: &Running) {
    let route = running.server.app.carrier.smpp_route("smsc").unwrap();
    assert!(
        route.wait_bound(Duration::from_secs(10)).await,
        "route never bound"
    );
}

fn sid(body: &Value) -> String {
    body["sid"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_message_goes_out_over_smpp_and_its_receipt_fires_the_callback() {
    let smsc = smsc_on(0, false).await;
    let running = start(vec![route(smsc.local_addr.port())]).await;
    let server = &running.server;
    bound(&running).await;
    let hooks = Receiver::start().await;
    let body = send(
        server,
        &[
            ("To", "+14155550199"),
            ("From", "+14155550100"),
            ("Body", "Hi there"),
            ("StatusCallback", &hooks.url("/status")),
        ],
    )
    .await;
    let sid = sid(&body);
    let delivered = wait_for(server, &sid, "delivered", 15).await;
    assert_eq!(delivered["error_code"], Value::Null);
    assert_eq!(delivered["price"], "-0.00790");
    let submits = smsc.submits();
    assert_eq!(submits.len(), 1, "{submits:?}");
    assert_eq!(submits[0].source, "14155550100");
    assert_eq!(submits[0].destination, "14155550199");
    assert_eq!(submits[0].data_coding, 0);
    assert_eq!(submits[0].body_hex, hex::encode("Hi there"));
    // The callbacks: sent, then delivered (with the receipt's done date), signed.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let hits = loop {
        let hits = hooks.hits("/status");
        if hits
            .iter()
            .any(|h| h.get("MessageStatus") == Some("delivered"))
        {
            break hits;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no delivered callback: {hits:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let statuses: Vec<&str> = hits.iter().filter_map(|h| h.get("MessageStatus")).collect();
    assert_eq!(statuses, ["sent", "delivered"]);
    let raw = hits[1].get("RawDlrDoneDate").unwrap();
    assert_eq!(raw.len(), 10, "{raw}");
    hooks.assert_signed(MAIN_TOKEN);

    // On a SQLite file the sessions run on a thread of their own, which stored the receipt:
    // its turn at the file's write lock is counted under that thread's role.
    if server.database_url.starts_with("sqlite") {
        let metrics = server.get("/metrics", server.main_creds()).await;
        let text = metrics.body.as_str().unwrap();
        let turns = common::metric_sample(
            text,
            "warbler_db_write_lock_held_seconds_count",
            &[("holder", "smpp")],
        );
        assert!(turns >= 1.0, "no write turn on the smpp thread:\n{text}");
    }

    // The operator sees the route bound, with its counters; a subaccount does not.
    let carriers = server.get("/admin/carriers", server.main_creds()).await;
    assert_eq!(carriers.status, StatusCode::OK, "{}", carriers.body);
    let route = &carriers.body["routes"][0];
    assert_eq!(route["name"], "smsc");
    assert_eq!(route["bound"], 1);
    assert_eq!(route["submits"], 1);
    assert_eq!(route["sessions_opened"], 1);
    let (sub, token) = server.subaccount("falcon").await;
    server
        .get("/admin/carriers", (&sub, &token))
        .await
        .assert_error(403, 20403);
}

#[tokio::test]
async fn multipart_messages_are_delivered_when_every_part_is_and_throttling_keeps_part_order() {
    let smsc = smsc_on(0, false).await;
    let running = start(vec![route(smsc.local_addr.port())]).await;
    let server = &running.server;
    bound(&running).await;
    let long = "a".repeat(200);
    // Normal: two parts, each with its concatenation header, delivered when both are.
    let plain = sid(&send(
        server,
        &[
            ("To", "+14155550199"),
            ("From", "+14155550100"),
            ("Body", &long),
        ],
    )
    .await);
    let done = wait_for(server, &plain, "delivered", 15).await;
    assert_eq!(done["num_segments"], "2");
    // Throttled: each part is refused once, then accepted when offered again.
    let throttled = sid(&send(
        server,
        &[
            ("To", "+15005551002"),
            ("From", "+14155550100"),
            ("Body", &long),
        ],
    )
    .await);
    wait_for(server, &throttled, "delivered", 20).await;
    // One part undeliverable: the message is undelivered with the receipt's error.
    let failing = sid(&send(
        server,
        &[
            ("To", "+15005551006"),
            ("From", "+14155550100"),
            ("Body", &long),
        ],
    )
    .await);
    let undelivered = wait_for(server, &failing, "undelivered", 15).await;
    assert_eq!(undelivered["error_code"], 30003);

    let submits = smsc.submits();
    type Seen = Vec<(Option<(u16, u8, u8)>, u32)>;
    let to = |dest: &str| -> Seen {
        submits
            .iter()
            .filter(|s| s.destination == dest)
            .map(|s| (s.concat, s.status))
            .collect()
    };
    let parts = to("14155550199");
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0].0.map(|c| (c.1, c.2)), Some((2, 1)));
    assert_eq!(parts[1].0.map(|c| (c.1, c.2)), Some((2, 2)));
    assert_eq!(
        parts[0].0.unwrap().0,
        parts[1].0.unwrap().0,
        "one reference"
    );
    // Throttled: part 1 refused (0x58), part 1 accepted, part 2 refused, part 2 accepted:
    // never part 2 before part 1.
    let throttled_parts: Vec<(u8, u32)> = to("15005551002")
        .into_iter()
        .map(|(c, status)| (c.unwrap().2, status))
        .collect();
    assert_eq!(throttled_parts, [(1, 0x58), (1, 0), (2, 0x58), (2, 0)]);
    let stats = &running.server.app.carrier.smpp_route("smsc").unwrap().stats;
    assert_eq!(
        stats.throttled.load(std::sync::atomic::Ordering::Relaxed),
        2
    );
}

#[tokio::test]
async fn each_failure_class_maps_to_a_twilio_status() {
    let smsc = smsc_on(0, true).await;
    let mut config = route(smsc.local_addr.port());
    // The simulator writes receipt ids in decimal here; the route says so.
    config.dlr_id_format = IdFormat::DecimalOfHex;
    config.long_message = LongMessage::Sar;
    let running = start(vec![config]).await;
    let server = &running.server;
    bound(&running).await;
    let cases = [
        ("+14155550199", "delivered", None),
        // The receipt comes before the submit response: it waits for the submit's record.
        ("+15005551008", "delivered", None),
        ("+15005551004", "undelivered", Some(30007)),
        ("+15005551005", "failed", Some(30005)),
        ("+15005551006", "undelivered", Some(30003)),
        ("+15005551007", "undelivered", Some(30003)),
    ];
    let mut sids = Vec::new();
    for (to, _, _) in cases {
        sids.push(sid(&send(
            server,
            &[("To", to), ("From", "+14155550100"), ("Body", "ping")],
        )
        .await));
    }
    // No answer at all: retried until the validity period runs out.
    let silent = sid(&send(
        server,
        &[
            ("To", "+15005551001"),
            ("From", "+14155550100"),
            ("Body", "anyone?"),
            ("ValidityPeriod", "2"),
        ],
    )
    .await);
    for (sid, (to, status, code)) in sids.iter().zip(cases) {
        let body = wait_for(server, sid, status, 15).await;
        assert_eq!(body["error_code"].as_i64(), code, "{to}: {body}");
    }
    let body = wait_for(server, &silent, "failed", 15).await;
    assert_eq!(body["error_code"], 30036);
    let stats = &running.server.app.carrier.smpp_route("smsc").unwrap().stats;
    assert!(stats.timeouts.load(std::sync::atomic::Ordering::Relaxed) >= 1);
    // A long message with the SAR TLVs instead of a UDH.
    let long = sid(&send(
        server,
        &[
            ("To", "+14155550199"),
            ("From", "+14155550100"),
            ("Body", &"b".repeat(170)),
        ],
    )
    .await);
    wait_for(server, &long, "delivered", 15).await;
    let sar: Vec<_> = smsc
        .submits()
        .into_iter()
        .filter(|s| s.body_hex.starts_with("6262"))
        .map(|s| (s.esm_class, s.concat.map(|c| (c.1, c.2))))
        .collect();
    assert_eq!(sar, [(0, Some((2, 1))), (0, Some((2, 2)))]);
}

#[tokio::test]
async fn an_smsc_that_dies_mid_load_loses_no_message() {
    let smsc = smsc_on(0, false).await;
    let port = smsc.local_addr.port();
    let running = start(vec![route(port)]).await;
    let server = &running.server;
    bound(&running).await;
    let mut sids = Vec::new();
    for i in 0..60 {
        let body = format!("load {i}");
        sids.push(sid(&send(
            server,
            &[
                ("To", "+14155550199"),
                ("From", "+14155550100"),
                ("Body", &body),
            ],
        )
        .await));
        if i == 20 {
            smsc.stop();
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = smsc.submits().len();
    let second = smsc_on(port, false).await;
    let route = running.server.app.carrier.smpp_route("smsc").unwrap();
    for sid in &sids {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let status = message(server, sid).await["status"]
                .as_str()
                .unwrap()
                .to_string();
            if status == "sent" || status == "delivered" {
                break;
            }
            assert!(
                !["failed", "undelivered", "canceled"].contains(&status.as_str()),
                "{sid}: {status}"
            );
            assert!(
                tokio::time::Instant::now() < deadline,
                "{sid} stuck in {status}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // Every message reached one SMSC or the other; what the first did not take went to the
    // second, and was delivered.
    let resent = second.submits();
    assert!(
        !resent.is_empty(),
        "the second SMSC got nothing (first took {before})"
    );
    let mut seen: Vec<String> = smsc
        .submits()
        .into_iter()
        .chain(resent.clone())
        .map(|s| s.body_hex)
        .collect();
    seen.sort();
    let submitted_twice = seen.len() - {
        seen.dedup();
        seen.len()
    };
    for i in 0..sids.len() {
        assert!(
            seen.contains(&hex::encode(format!("load {i}"))),
            "load {i} never submitted"
        );
    }
    eprintln!(
        "first SMSC took {before}, the second {}, submitted twice {submitted_twice}",
        resent.len()
    );
    // What the second SMSC took gets its receipts: at least that many end delivered.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let mut delivered = 0;
        for sid in &sids {
            if message(server, sid).await["status"] == "delivered" {
                delivered += 1;
            }
        }
        if delivered >= resent.len() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "delivered {delivered}, resent {}",
            resent.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        route.stats.binds.load(std::sync::atomic::Ordering::Relaxed) >= 2,
        "reconnected"
    );
}

#[tokio::test]
async fn a_receipt_with_tlvs_that_do_not_decode_is_acknowledged_and_applied() {
    // An SMSC that never sends receipts of its own: the test sends the only one.
    let smsc = warbler::smsc::Smsc::start(warbler::smsc::SmscConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        receipt_delay: Duration::from_secs(3600),
        ..common::smpp::smsc_config(0, false)
    })
    .await
    .unwrap();
    let running = start(vec![route(smsc.local_addr.port())]).await;
    let server = &running.server;
    bound(&running).await;
    let body = send(
        server,
        &[
            ("To", "+14155550199"),
            ("From", "+14155550100"),
            ("Body", "Hi"),
        ],
    )
    .await;
    let sid = sid(&body);
    wait_for(server, &sid, "sent", 15).await;
    let id = smsc.submits()[0].message_id.clone().unwrap();
    // A receipt deliver_sm as a vendor got it wrong: `receipted_message_id` without its NUL,
    // then a vendor TLV whose length runs past the frame. The text still says DELIVRD.
    let text = format!("id:{id} sub:001 dlvrd:001 submit date:2611261000 done date:2611261001 stat:DELIVRD err:000 text:");
    let mut body = Vec::new();
    body.extend(b"\0\x01\x0114155550199\0\x01\x0114155550100\0");
    body.extend([0x04, 0, 0, 0, 0, 0, 0, 0, 0, text.len() as u8]);
    body.extend(text.as_bytes());
    body.extend([0x00, 0x1e, 0x00, id.len() as u8]);
    body.extend(id.as_bytes());
    body.extend([0x14, 0x01, 0x00, 0x07, 0xaa, 0xbb, 0xcc]);
    let mut frame = ((16 + body.len()) as u32).to_be_bytes().to_vec();
    frame.extend([0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0]);
    frame.extend(body);
    assert!(
        warbler::carrier::smpp::codec::decode_frame(&frame).is_err(),
        "the frame must not decode as a whole"
    );
    let sequence = smsc.inject_frame(frame).await.expect("a receiving session");
    let delivered = wait_for(server, &sid, "delivered", 10).await;
    assert_eq!(delivered["error_code"], Value::Null);
    // Answered once, with deliver_sm_resp ESME_ROK, and never with a generic_nack.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let answers = loop {
        let answers: Vec<_> = smsc
            .answers()
            .into_iter()
            .filter(|a| a.sequence_number == sequence && a.command_id != 0x8000_0015)
            .collect();
        if !answers.is_empty() || tokio::time::Instant::now() > deadline {
            break answers;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert_eq!(answers[0].command_id, 0x8000_0005, "{answers:?}");
    assert_eq!(answers[0].command_status, 0, "{answers:?}");
    assert!(
        smsc.answers().iter().all(|a| a.command_id != 0x8000_0000),
        "{:?}",
        smsc.answers()
    );

    // A deliver_sm whose mandatory fields are cut short gets a permanent error, once.
    let frame = hex::decode("00000014000000050000000000000000000101ff").unwrap();
    let sequence = smsc.inject_frame(frame).await.expect("a receiving session");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let answer = loop {
        let found = smsc
            .answers()
            .into_iter()
            .find(|a| a.sequence_number == sequence && a.command_id == 0x8000_0005);
        if let Some(answer) = found {
            break answer;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            smsc.answers()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(answer.command_status, 0x65, "ESME_RX_P_APPN");
}

#[tokio::test]
async fn an_smsc_process_killed_and_restarted_mid_load_leaves_each_message_in_one_final_state() {
    use common::smpp::ChildSmsc;
    use std::collections::HashMap;
    use std::sync::atomic::Ordering::Relaxed;
    const MESSAGES: usize = 300;
    let port = common::free_port();
    // The first SMSC's receipts would come after the test: what it took stays `sent`, so
    // the second's receipts can be told apart.
    // Each submit answered after 50 ms: with a window of 8, about 8 are always in flight
    // (160 a second), so the kill finds some unanswered.
    let mut first = ChildSmsc::start(port, 60_000, 50).await;
    let mut config = route(port);
    config.window = 8;
    let running = start_with(vec![config], |_| {}).await;
    let server = &running.server;
    bound(&running).await;
    let mut sids = Vec::new();
    for i in 0..MESSAGES {
        let body = format!("load {i}");
        sids.push(sid(&send(
            server,
            &[
                ("To", "+14155550199"),
                ("From", "+14155550100"),
                ("Body", &body),
            ],
        )
        .await));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while first.get("/stats").await["submits"].as_u64().unwrap() < MESSAGES as u64 / 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the load never started"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // What the first SMSC is known to have taken (it may take a few more before it dies).
    let bodies = |submits: Value| -> Vec<String> {
        submits
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["body_hex"].as_str().unwrap().to_string())
            .collect()
    };
    let before_kill = bodies(first.get("/submits").await);
    first.kill9();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = ChildSmsc::start(port, 20, 0).await;

    // Every message ends in one final state: sent (its receipt died with the first SMSC)
    // or delivered (by the second); none stays queued or sending, none fails.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    let statuses = loop {
        let mut statuses: HashMap<String, usize> = HashMap::new();
        let mut pending = 0;
        for sid in &sids {
            let status = message(server, sid).await["status"]
                .as_str()
                .unwrap()
                .to_string();
            if !["sent", "delivered", "undelivered", "failed"].contains(&status.as_str()) {
                pending += 1;
            }
            *statuses.entry(status).or_default() += 1;
        }
        if pending == 0 {
            break statuses;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still pending: {statuses:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        statuses.get("sent").copied().unwrap_or(0)
            + statuses.get("delivered").copied().unwrap_or(0),
        MESSAGES,
        "{statuses:?}"
    );
    let route = running.server.app.carrier.smpp_route("smsc").unwrap();
    assert!(route.stats.binds.load(Relaxed) >= 2, "the route rebound");

    // Submitted twice only when in flight without a response as the first SMSC died.
    let after_restart = bodies(second.get("/submits").await);
    let mut unique = after_restart.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        after_restart.len(),
        "the second SMSC got a message twice"
    );
    let twice = after_restart
        .iter()
        .filter(|body| before_kill.contains(body))
        .count();
    let in_flight = route.stats.unanswered_at_close.load(Relaxed);
    let timeouts = route.stats.timeouts.load(Relaxed);
    eprintln!(
        "{MESSAGES} messages: first SMSC took at least {}, the second {}; seen by both {twice}; \
         submits unanswered when the session closed {in_flight}, timed out {timeouts}; {statuses:?}",
        before_kill.len(),
        after_restart.len()
    );
    assert!(
        twice as u64 <= in_flight + timeouts,
        "{twice} submitted twice, only {in_flight} in flight and {timeouts} timed out"
    );
    // Exactly the messages the second SMSC took are delivered, by its receipts; no receipt
    // named a message the first SMSC took, which stay `sent`.
    for (i, sid) in sids.iter().enumerate() {
        if after_restart.contains(&hex::encode(format!("load {i}"))) {
            wait_for(server, sid, "delivered", 15).await;
        }
    }
    for (i, sid) in sids.iter().enumerate() {
        if !after_restart.contains(&hex::encode(format!("load {i}"))) {
            assert_eq!(message(server, sid).await["status"], "sent", "load {i}");
        }
    }
}

#[tokio::test]
async fn inbound_messages_reach_the_number_webhook_whole() {
    let smsc = smsc_on(0, false).await;
    let running = start(vec![route(smsc.local_addr.port())]).await;
    let server = &running.server;
    bound(&running).await;
    let hooks = Receiver::start().await;
    let number_sid = {
        let reply = server
            .get(
                &format!("/2010-04-01/Accounts/{MAIN_SID}/IncomingPhoneNumbers.json?PhoneNumber=%2B14155550100"),
                server.main_creds(),
            )
            .await;
        reply.body["incoming_phone_numbers"][0]["sid"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let reply = server
        .post(
            &format!("/2010-04-01/Accounts/{MAIN_SID}/IncomingPhoneNumbers/{number_sid}.json"),
            server.main_creds(),
            &[("SmsUrl", &hooks.url("/sms"))],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let long = format!("{} the end", "word ".repeat(40));
    assert!(
        smsc.inject_mo("+14155550199", "+14155550100", "hello from a handset")
            .await
    );
    assert!(smsc.inject_mo("+14155550199", "+14155550100", &long).await);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let hits = loop {
        let hits = hooks.hits("/sms");
        if hits.len() >= 2 {
            break hits;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "inbound webhooks: {hits:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Each inbound message is its own webhook, ordered only within itself: the short one
    // usually comes first, but two deliveries in flight at once may land either way round.
    let mut bodies: Vec<&str> = hits.iter().filter_map(|h| h.get("Body")).collect();
    bodies.sort_unstable();
    assert_eq!(bodies, ["hello from a handset", long.as_str()]);
    let whole = hits
        .iter()
        .find(|h| h.get("Body") == Some(long.as_str()))
        .unwrap();
    assert_eq!(whole.get("From"), Some("+14155550199"));
    assert_eq!(whole.get("NumSegments"), Some("2"));
    hooks.assert_signed(MAIN_TOKEN);
}

/// Points +14155550100's inbound webhook at `url`.
async fn number_webhook(server: &common::TestServer, url: &str) {
    let reply = server
        .get(
            &format!("/2010-04-01/Accounts/{MAIN_SID}/IncomingPhoneNumbers.json?PhoneNumber=%2B14155550100"),
            server.main_creds(),
        )
        .await;
    let number_sid = reply.body["incoming_phone_numbers"][0]["sid"]
        .as_str()
        .unwrap()
        .to_string();
    let reply = server
        .post(
            &format!("/2010-04-01/Accounts/{MAIN_SID}/IncomingPhoneNumbers/{number_sid}.json"),
            server.main_creds(),
            &[("SmsUrl", url)],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}

/// One part of a concatenated inbound message, with its UDH, as the SMSC sends it.
fn mo_part(reference: u8, total: u8, part: u8, text: &str) -> Vec<u8> {
    use rusmpp::pdus::DeliverSm;
    use rusmpp::types::{COctetString, OctetString};
    use rusmpp::values::{EsmClass, Npi, Ton};
    use std::str::FromStr;
    let mut short = vec![0x05, 0x00, 0x03, reference, total, part];
    short.extend(text.as_bytes());
    let pdu = DeliverSm::builder()
        .source_addr_ton(Ton::International)
        .source_addr_npi(Npi::Isdn)
        .source_addr(COctetString::from_str("14155550199").unwrap())
        .dest_addr_ton(Ton::International)
        .dest_addr_npi(Npi::Isdn)
        .destination_addr(COctetString::from_str("14155550100").unwrap())
        .esm_class(EsmClass::from(0x40u8))
        .short_message(OctetString::from_vec(short).unwrap())
        .build();
    warbler::carrier::smpp::codec::encode(&rusmpp::Command::new(
        rusmpp::CommandStatus::EsmeRok,
        1,
        pdu,
    ))
}

/// Incomplete inbound sets still held.
async fn held_sets(running: &Running) -> usize {
    running
        .server
        .app
        .store
        .overdue_mo_sets(i64::MAX, i64::MAX, 1000)
        .await
        .unwrap()
        .len()
}

/// Waits (at most `secs`) for `n` inbound webhooks; their bodies.
async fn inbound_bodies(hooks: &Receiver, n: usize, secs: u64) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let hits = hooks.hits("/sms");
        if hits.len() >= n || tokio::time::Instant::now() > deadline {
            return hits
                .iter()
                .filter_map(|h| h.get("Body").map(str::to_string))
                .collect();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_incomplete_inbound_message_is_delivered_as_received_once_it_expires() {
    let smsc = smsc_on(0, false).await;
    let running = start_with(vec![route(smsc.local_addr.port())], |settings| {
        settings.smpp_mo_parts_expire = 300_000;
    })
    .await;
    let server = &running.server;
    bound(&running).await;
    let hooks = Receiver::start().await;
    number_webhook(server, &hooks.url("/sms")).await;
    // Parts 1 and 3 of 3: part 2 never comes.
    smsc.inject_frame(mo_part(7, 3, 1, "first ")).await.unwrap();
    smsc.inject_frame(mo_part(7, 3, 3, "third")).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while held_sets(&running).await == 0 {
        assert!(tokio::time::Instant::now() < deadline, "parts never held");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(inbound_bodies(&hooks, 1, 10).await, ["first third"]);
    // Taken in the transaction that stored the message, before its webhook went out.
    assert_eq!(held_sets(&running).await, 0, "the expired parts are gone");
    // A whole set is still put together as before.
    smsc.inject_frame(mo_part(8, 2, 2, "two")).await.unwrap();
    smsc.inject_frame(mo_part(8, 2, 1, "one ")).await.unwrap();
    assert_eq!(
        inbound_bodies(&hooks, 2, 10).await,
        ["first third", "one two"]
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(hooks.hits("/sms").len(), 2, "each delivered once");
}

#[tokio::test]
async fn a_set_completed_twice_at_once_is_stored_once() {
    let smsc = smsc_on(0, false).await;
    let running = start(vec![route(smsc.local_addr.port())]).await;
    let app = &running.server.app;
    let add = |part: i64, text: &'static str| {
        app.store.add_mo_part(
            "smsc",
            "+14155550199",
            "+14155550100",
            42,
            2,
            part,
            text,
            warbler::domain::time::now_micros(),
        )
    };
    assert_eq!(add(1, "one ").await.unwrap(), None);
    // The last part twice (the SMSC sent it again on another bind): both see a whole set.
    let (whole, parts) = add(2, "two").await.unwrap().expect("complete");
    let (again, parts_again) = add(2, "two").await.unwrap().expect("complete again");
    assert_eq!(
        (whole.as_str(), parts.numbers.as_slice()),
        ("one two", &[1, 2][..])
    );
    assert_eq!(parts, parts_again);
    let incoming = |body: String| warbler::service::inbound::Incoming {
        from: "+14155550199".into(),
        to: "+14155550100".into(),
        body,
        media: Vec::new(),
    };
    let (first, second) = tokio::join!(
        app.receive_assembled(incoming(whole), Some(&parts)),
        app.receive_assembled(incoming(again), Some(&parts_again)),
    );
    let stored: Vec<_> = [first.unwrap(), second.unwrap()]
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(stored.len(), 1, "stored once: {stored:?}");
    let reply = running
        .server
        .get(
            &format!("/2010-04-01/Accounts/{MAIN_SID}/Messages.json?To=%2B14155550100"),
            running.server.main_creds(),
        )
        .await;
    let messages = reply.body["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "{}", reply.body);
    assert_eq!(messages[0]["body"], "one two");
    assert_eq!(messages[0]["sid"].as_str(), Some(stored[0].sid.as_str()));
    assert_eq!(held_sets(&running).await, 0);
}

#[tokio::test]
async fn incomplete_inbound_messages_beyond_the_bound_are_delivered_oldest_first() {
    let smsc = smsc_on(0, false).await;
    let running = start_with(vec![route(smsc.local_addr.port())], |settings| {
        settings.smpp_mo_parts_expire = 3600 * 1_000_000;
        settings.smpp_mo_parts_max_sets = 2;
    })
    .await;
    let server = &running.server;
    bound(&running).await;
    let hooks = Receiver::start().await;
    number_webhook(server, &hooks.url("/sms")).await;
    for reference in 1..=3u8 {
        let text = format!("set {reference} ");
        smsc.inject_frame(mo_part(reference, 2, 1, &text))
            .await
            .unwrap();
        // Distinct arrival times, so "oldest" is well defined.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Three held, two allowed: the oldest goes out as it is; the others wait.
    assert_eq!(inbound_bodies(&hooks, 1, 10).await, ["set 1 "]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(hooks.hits("/sms").len(), 1);
    assert_eq!(held_sets(&running).await, 2);
}

#[tokio::test]
async fn a_transmitter_and_receiver_pair_with_a_rate_limit_delivers() {
    let smsc = smsc_on(0, false).await;
    let mut config = route(smsc.local_addr.port());
    config.bind_mode = warbler::carrier::smpp::route::BindMode::TransmitterReceiver;
    config.binds = 2;
    config.max_submits_per_sec = 20;
    let running = start(vec![config]).await;
    let server = &running.server;
    bound(&running).await;
    let started = std::time::Instant::now();
    let mut sids = Vec::new();
    for i in 0..30 {
        let body = format!("paced {i}");
        sids.push(sid(&send(
            server,
            &[
                ("To", "+14155550199"),
                ("From", "+14155550100"),
                ("Body", &body),
            ],
        )
        .await));
    }
    for sid in &sids {
        wait_for(server, sid, "delivered", 20).await;
    }
    // 30 submits over two sessions of 20/s each take at least ~0.7 s (the first 20 ride the
    // limiters' initial bursts).
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "{:?}",
        started.elapsed()
    );
    // Two transmitters and two receivers bound.
    assert_eq!(smsc.stats().binds, 4);
}

#[tokio::test]
async fn shutting_down_unbinds_every_session() {
    let smsc = smsc_on(0, false).await;
    let mut config = route(smsc.local_addr.port());
    config.binds = 2;
    let running = start(vec![config]).await;
    bound(&running).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while smsc.bound_sessions() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "two sessions never bound"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    running.server.app.carrier.shutdown().await;
    assert_eq!(smsc.stats().unbinds, 2);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while smsc.bound_sessions() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "sessions left bound"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        running
            .server
            .app
            .carrier
            .smpp_route("smsc")
            .unwrap()
            .bound(),
        0
    );
}

/// A raw `bind_transceiver` as `warbler` / `password` (SMPP 3.4).
fn bind_frame(password: &str, sequence: u32) -> Vec<u8> {
    let mut body = Vec::new();
    for field in ["warbler", password, ""] {
        body.extend_from_slice(field.as_bytes());
        body.push(0);
    }
    body.extend_from_slice(&[0x34, 0, 0, 0]);
    let mut frame = Vec::new();
    frame.extend_from_slice(&(16 + body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&0x0000_0009u32.to_be_bytes());
    frame.extend_from_slice(&0u32.to_be_bytes());
    frame.extend_from_slice(&sequence.to_be_bytes());
    frame.extend(body);
    frame
}

const ESME_ROK: u32 = 0;
const ESME_RBINDFAIL: u32 = 0x0D;

/// Connects from `source` (any 127.x.y.z address works on Linux loopback).
async fn connect_from(source: &str, smsc: std::net::SocketAddr) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    socket.connect(smsc).await.unwrap()
}

/// Binds on a new connection from `source`; the response's status and how long it took.
async fn bind_from(
    source: &str,
    smsc: std::net::SocketAddr,
    password: &str,
) -> (u32, Duration, tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = connect_from(source, smsc).await;
    let started = std::time::Instant::now();
    stream.write_all(&bind_frame(password, 1)).await.unwrap();
    let mut header = [0u8; 16];
    tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut header))
        .await
        .expect("a bind response within 10 s")
        .expect("a bind response");
    let length = u32::from_be_bytes(header[0..4].try_into().unwrap()) as usize;
    let mut rest = vec![0u8; length - 16];
    stream.read_exact(&mut rest).await.unwrap();
    let status = u32::from_be_bytes(header[8..12].try_into().unwrap());
    (status, started.elapsed(), stream)
}

/// `true` when the SMSC closes the connection within `within`.
async fn closed_within(stream: &mut tokio::net::TcpStream, within: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 256];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test]
async fn the_smsc_closes_a_connection_that_does_not_bind_in_time() {
    use tokio::io::AsyncWriteExt;
    let mut config = common::smpp::smsc_config(0, false);
    config.bind_timeout = Duration::from_millis(400);
    let smsc = warbler::smsc::Smsc::start(config).await.unwrap();
    let addr = smsc.local_addr;

    let mut silent = connect_from("127.0.0.1", addr).await;
    // enquire_link is answered before a bind, but does not keep the connection open.
    let mut chatty = connect_from("127.0.0.1", addr).await;
    let opened = std::time::Instant::now();
    let enquire_links = async {
        for sequence in 1..100u32 {
            let mut frame = 16u32.to_be_bytes().to_vec();
            frame.extend_from_slice(&0x0000_0015u32.to_be_bytes());
            frame.extend_from_slice(&0u32.to_be_bytes());
            frame.extend_from_slice(&sequence.to_be_bytes());
            if chatty.write_all(&frame).await.is_err()
                || closed_within(&mut chatty, Duration::from_millis(100)).await
            {
                return opened.elapsed();
            }
        }
        panic!("a connection sending only enquire_link was never closed");
    };
    let (silent_closed, chatty_closed) = tokio::join!(
        closed_within(&mut silent, Duration::from_secs(5)),
        enquire_links
    );
    assert!(silent_closed, "a silent connection was never closed");
    assert!(opened.elapsed() >= Duration::from_millis(350));
    assert!(
        chatty_closed >= Duration::from_millis(350),
        "{chatty_closed:?}"
    );

    // A bound session outlives the bind timeout.
    let (status, _, mut bound) = bind_from("127.0.0.1", addr, "secret").await;
    assert_eq!(status, ESME_ROK);
    assert!(!closed_within(&mut bound, Duration::from_millis(900)).await);
    smsc.stop();
}

#[tokio::test]
async fn failed_binds_slow_down_their_address_and_leave_others_alone() {
    let mut config = common::smpp::smsc_config(0, false);
    config.bind_throttle = warbler::smsc::ThrottleSettings {
        failures_before_backoff: 1,
        backoff: Duration::from_millis(300),
    };
    let smsc = warbler::smsc::Smsc::start(config).await.unwrap();
    let addr = smsc.local_addr;

    // A good bind from a clean address is answered at once.
    let (status, _, _good) = bind_from("127.0.0.1", addr, "secret").await;
    assert_eq!(status, ESME_ROK);

    // The first failure is answered at once, the next only after 300 ms, then 600 ms...
    let (status, _, _) = bind_from("127.0.0.1", addr, "guess1").await;
    assert_eq!(status, ESME_RBINDFAIL);
    let (status, took, _) = bind_from("127.0.0.1", addr, "guess2").await;
    assert_eq!(status, ESME_RBINDFAIL);
    assert!(took >= Duration::from_millis(250), "{took:?}");

    // ...and guesses on parallel connections take turns: the second waits for the first's
    // 600 ms and then its own 1,200.
    let started = std::time::Instant::now();
    let (first, second) = tokio::join!(
        bind_from("127.0.0.1", addr, "guess3"),
        bind_from("127.0.0.1", addr, "guess4")
    );
    assert_eq!((first.0, second.0), (ESME_RBINDFAIL, ESME_RBINDFAIL));
    let last = started.elapsed();
    assert!(last >= Duration::from_millis(1700), "{last:?}");

    // Another address is not slowed by this one's failures (its next wait is 2.4 s).
    let (status, took, _other) = bind_from("127.0.0.2", addr, "secret").await;
    assert_eq!(status, ESME_ROK);
    assert!(took < Duration::from_millis(1500), "{took:?}");
    smsc.stop();
}

/// A sandbox subaccount (set by its parent) sends to the simulated carrier whatever the
/// routes, at no charge, with the simulator's magic destinations; its sibling's traffic still
/// goes over SMPP; the sandbox's own credentials cannot take it out.
#[tokio::test]
async fn a_sandbox_subaccounts_messages_go_to_the_simulator_free_whatever_the_routes() {
    let smsc = smsc_on(0, false).await;
    let running = start(vec![route(smsc.local_addr.port())]).await;
    let server = &running.server;
    bound(&running).await;
    let (staging, staging_token) = server.subaccount("Staging").await;
    let (live, live_token) = server.subaccount("Production").await;
    server
        .buy(&staging, "+14155550101", server.main_creds())
        .await;
    server.buy(&live, "+14155550102", server.main_creds()).await;
    let sandbox_path = format!("/warbler/v1/Accounts/{staging}/Sandbox");
    server
        .post(
            &sandbox_path,
            (&staging, &staging_token),
            &[("Sandbox", "true")],
        )
        .await
        .assert_error(403, 20403);
    let set = server
        .post(&sandbox_path, server.main_creds(), &[("Sandbox", "true")])
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert_eq!(set.body["sandbox"], true);
    let read = server.get(&sandbox_path, (&staging, &staging_token)).await;
    assert_eq!(read.body["sandbox"], true, "{}", read.body);

    let send_as = |account: String, token: String, from: &'static str, to: &'static str| async move {
        let reply = server
            .post(
                &format!("/2010-04-01/Accounts/{account}/Messages.json"),
                (&account, &token),
                &[("From", from), ("To", to), ("Body", "release check")],
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        sid(&reply.body)
    };
    let final_status = |account: String, sid: String, wanted: &'static str| async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let body = server
                .get(
                    &format!("/2010-04-01/Accounts/{account}/Messages/{sid}.json"),
                    server.main_creds(),
                )
                .await
                .body;
            if body["status"] == wanted {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{sid} never became {wanted}: {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let staged = send_as(
        staging.clone(),
        staging_token.clone(),
        "+14155550101",
        "+14155550199",
    )
    .await;
    let magic = send_as(
        staging.clone(),
        staging_token.clone(),
        "+14155550101",
        "+15005550030",
    )
    .await;
    let real = send_as(
        live.clone(),
        live_token.clone(),
        "+14155550102",
        "+14155550199",
    )
    .await;
    let delivered = final_status(staging.clone(), staged, "delivered").await;
    assert_eq!(delivered["price"], "0.00000", "free: {delivered}");
    let undelivered = final_status(staging.clone(), magic, "undelivered").await;
    assert_eq!(
        undelivered["error_code"], 30003,
        "the simulator's magic: {undelivered}"
    );
    let sent_live = final_status(live.clone(), real, "delivered").await;
    assert_eq!(sent_live["price"], "-0.00790");
    let submitted: Vec<String> = smsc.submits().iter().map(|s| s.source.clone()).collect();
    assert_eq!(
        submitted,
        ["14155550102"],
        "only the live account's message reached the SMSC"
    );

    // Back to live: its next message goes over SMPP.
    let unset = server
        .post(&sandbox_path, server.main_creds(), &[("Sandbox", "false")])
        .await;
    assert_eq!(unset.body["sandbox"], false, "{}", unset.body);
    let after = send_as(
        staging.clone(),
        staging_token.clone(),
        "+14155550101",
        "+14155550199",
    )
    .await;
    final_status(staging.clone(), after, "delivered").await;
    assert_eq!(smsc.submits().len(), 2);
    // The main account is never a sandbox.
    server
        .post(
            &format!("/warbler/v1/Accounts/{MAIN_SID}/Sandbox"),
            server.main_creds(),
            &[("Sandbox", "true")],
        )
        .await
        .assert_error(403, 20403);
}

/// A `submit_sm` for the unbinding test: `to` tells the two apart at the SMSC.
fn plain_submit(to: &str) -> rusmpp::Pdu {
    use std::str::FromStr;
    rusmpp::Pdu::SubmitSm(
        rusmpp::pdus::SubmitSm::builder()
            .source_addr(rusmpp::types::COctetString::from_str("15550001111").unwrap())
            .destination_addr(rusmpp::types::COctetString::from_str(to).unwrap())
            .short_message(rusmpp::types::OctetString::from_vec(b"hello".to_vec()).unwrap())
            .build(),
    )
}

/// A session that unbinds (its bind slot passed to another node, or shutdown) first lets the
/// submits it wrote get their answers and writes no new one: a submit whose answer the close
/// dropped is retried by the dispatcher, and would reach the SMSC twice.
#[tokio::test]
async fn unbinding_waits_for_the_answers_of_submits_in_flight_and_writes_no_new_one() {
    use warbler::carrier::smpp::session::{BindKind, RequestError, Session};
    let port = common::free_port();
    let mut config = common::smpp::smsc_config(port, false);
    config.response_delay = Duration::from_millis(300);
    let smsc = warbler::smsc::Smsc::start(config)
        .await
        .expect("start the SMSC");
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let (deliveries, _received) = tokio::sync::mpsc::channel(16);
    let session = Session::bind(stream, &route(port), BindKind::Transceiver, deliveries)
        .await
        .expect("bind");

    let writer = session.clone();
    let first = tokio::spawn(async move { writer.request(plain_submit("15550002001")).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let unbinder = session.clone();
    let unbinding = tokio::spawn(async move { unbinder.unbind().await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let late = session.request(plain_submit("15550002002")).await;
    assert!(
        matches!(late, Err(RequestError::Closed)),
        "a submit after the unbind began is refused unwritten: {late:?}"
    );
    let answer = first.await.expect("join");
    assert!(
        answer.is_ok(),
        "the submit written before the unbind gets its answer: {answer:?}"
    );
    unbinding.await.expect("join");
    assert!(session.is_closed());
    let seen: Vec<String> = smsc
        .submits()
        .iter()
        .map(|s| s.destination.clone())
        .collect();
    assert_eq!(
        seen,
        vec!["15550002001".to_string()],
        "what the SMSC received"
    );
}
