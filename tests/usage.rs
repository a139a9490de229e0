//! Usage Records, the shared balance and the credit limit, on the database
//! `TEST_DATABASE_URL` names. Prices are warbler's defaults: +1 SMS 0.0079 a segment each way,
//! MMS 0.0200 out and 0.0100 in, a local number 1.15 a month.

mod common;

use axum::http::StatusCode;
use common::{queued_message, spawn, TestServer, MAIN_SID, MAIN_TOKEN};
use serde_json::Value;
use warbler::domain::time::now_micros;

const SECOND: i64 = 1_000_000;

async fn records(
    server: &TestServer,
    account: &str,
    creds: (&str, &str),
    query: &str,
) -> Vec<Value> {
    let reply = server
        .get(
            &format!("/2010-04-01/Accounts/{account}/Usage/Records/{query}"),
            creds,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body["usage_records"].as_array().unwrap().clone()
}

async fn one(server: &TestServer, account: &str, creds: (&str, &str), query: &str) -> Value {
    let list = records(server, account, creds, query).await;
    assert_eq!(list.len(), 1, "{list:?}");
    list[0].clone()
}

fn price(record: &Value) -> f64 {
    record["price"].as_str().unwrap().parse().unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[tokio::test]
async fn usage_is_counted_per_category_and_subaccount() {
    common::clear_of_utc_midnight().await;
    let server = spawn().await;
    server.stock().await;
    let (a, a_token) = server.subaccount("alpha").await;
    let (b, b_token) = server.subaccount("beta").await;
    let a_creds = (a.as_str(), a_token.as_str());
    let b_creds = (b.as_str(), b_token.as_str());
    server.buy(&a, "+14155550100", server.main_creds()).await;
    server.buy(&b, "+14155550101", server.main_creds()).await;
    let send = |form: Vec<(&'static str, &'static str)>| {
        let server = &server;
        let a = a.clone();
        let a_token = a_token.clone();
        async move {
            let reply = server
                .post(
                    &format!("/2010-04-01/Accounts/{a}/Messages.json"),
                    (&a, &a_token),
                    &form,
                )
                .await;
            assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        }
    };
    for body in ["one", "two"] {
        send(vec![
            ("To", "+14155550199"),
            ("From", "+14155550100"),
            ("Body", body),
        ])
        .await;
    }
    send(vec![
        ("To", "+14155550199"),
        ("From", "+14155550100"),
        ("MediaUrl", "https://example.com/a.png"),
    ])
    .await;
    let t0 = now_micros();
    for i in 0..4 {
        server.app.dispatch_once(t0 + i * SECOND).await.unwrap();
    }
    let inbound = server
        .post(
            "/admin/simulate/inbound",
            server.main_creds(),
            &[
                ("From", "+14155550199"),
                ("To", "+14155550101"),
                ("Body", "hello"),
            ],
        )
        .await;
    assert_eq!(inbound.status, StatusCode::CREATED, "{}", inbound.body);
    assert_eq!(inbound.body["price"], "-0.00790");
    let picture = server
        .post(
            "/admin/simulate/inbound",
            server.main_creds(),
            &[
                ("From", "+14155550199"),
                ("To", "+14155550101"),
                ("MediaUrl", "https://example.com/photo.jpg"),
            ],
        )
        .await;
    assert_eq!(picture.status, StatusCode::CREATED, "{}", picture.body);
    assert_eq!(picture.body["num_media"], "1");
    assert_eq!(picture.body["price"], "-0.01000");

    let sms = one(&server, &a, a_creds, "Today.json?Category=sms").await;
    assert_eq!(sms["count"], "2");
    assert_eq!(sms["usage"], "2");
    assert!(close(price(&sms), 0.0158), "{sms}");
    assert_eq!(sms["price_unit"], "usd");
    assert_eq!(sms["account_sid"], a.as_str());
    let mms = one(&server, &a, a_creds, "Today.json?Category=mms-outbound").await;
    assert_eq!(mms["count"], "1");
    assert!(close(price(&mms), 0.02));
    let total = one(&server, &a, a_creds, "Today.json?Category=totalprice").await;
    assert!(close(price(&total), 1.15 + 0.0158 + 0.02), "{total}");
    let inbound_b = one(&server, &b, b_creds, "Today.json?Category=sms-inbound").await;
    assert_eq!(inbound_b["count"], "1");
    assert!(close(price(&inbound_b), 0.0079));
    let mms_b = one(&server, &b, b_creds, "Today.json?Category=mms-inbound").await;
    assert_eq!(mms_b["count"], "1");
    assert!(close(price(&mms_b), 0.01));

    // The parent sums its subaccounts (IncludeSubaccounts defaults to true)...
    let main = server.main_creds();
    let all = one(&server, MAIN_SID, main, "Today.json?Category=totalprice").await;
    assert!(
        close(price(&all), 1.15 + 0.0158 + 0.02 + 1.15 + 0.0079 + 0.01),
        "{all}"
    );
    let numbers = one(
        &server,
        MAIN_SID,
        main,
        "ThisMonth.json?Category=phonenumbers-local",
    )
    .await;
    assert_eq!(numbers["count"], "2");
    assert!(close(price(&numbers), 2.30));
    // ...and on its own has used nothing.
    let own = one(
        &server,
        MAIN_SID,
        main,
        "Today.json?Category=totalprice&IncludeSubaccounts=false",
    )
    .await;
    assert!(close(price(&own), 0.0));
    // It reads each subaccount's usage on the subaccount's path.
    let a_by_parent = one(&server, &a, main, "Today.json?Category=sms").await;
    assert_eq!(a_by_parent["count"], "2");

    // A subaccount never sees its sibling's (or its parent's) usage.
    server
        .get(
            &format!("/2010-04-01/Accounts/{b}/Usage/Records.json"),
            a_creds,
        )
        .await
        .assert_error(401, 20003);
    server
        .get(
            &format!("/2010-04-01/Accounts/{MAIN_SID}/Usage/Records/Today.json"),
            a_creds,
        )
        .await
        .assert_error(401, 20003);

    // Periods: daily buckets, yesterday empty, all time equal to today, bad input refused.
    let daily = records(
        &server,
        &a,
        a_creds,
        "Daily.json?Category=sms&StartDate=-2days",
    )
    .await;
    assert_eq!(daily.len(), 3);
    assert_eq!(daily[2]["count"], "2");
    assert_eq!(daily[0]["count"], "0");
    let yesterday = one(&server, &a, a_creds, "Yesterday.json?Category=sms").await;
    assert_eq!(yesterday["count"], "0");
    let all_time = one(&server, &a, a_creds, "AllTime.json?Category=sms").await;
    assert_eq!(all_time["count"], "2");
    assert!(all_time["subresource_uris"]["daily"]
        .as_str()
        .unwrap()
        .ends_with("/Usage/Records/Daily.json?Category=sms"));
    server
        .get(
            &format!(
                "/2010-04-01/Accounts/{a}/Usage/Records.json?Category=sms&StartDate=next-week"
            ),
            a_creds,
        )
        .await
        .assert_error(400, 20001);
    server
        .get(
            &format!("/2010-04-01/Accounts/{a}/Usage/Records/Hourly.json"),
            a_creds,
        )
        .await
        .assert_error(404, 20404);
    let everything = records(&server, &a, a_creds, "Today.json?PageSize=1000").await;
    assert!(
        everything.len() >= 20,
        "every reported category has a record"
    );

    // The balance is shared: credited on the parent, spent by the subaccounts.
    let credited = server
        .post(
            "/admin/billing/credit",
            main,
            &[("AccountSid", MAIN_SID), ("Amount", "10")],
        )
        .await;
    assert_eq!(credited.status, StatusCode::CREATED, "{}", credited.body);
    // The parent reads it on its own path and on a subaccount's; subaccounts hold no
    // balance information.
    for account in [MAIN_SID, a.as_str()] {
        let balance = server
            .get(
                &format!("/2010-04-01/Accounts/{account}/Balance.json"),
                main,
            )
            .await;
        assert_eq!(balance.status, StatusCode::OK, "{}", balance.body);
        assert_eq!(balance.body["balance"], "7.64630");
        assert_eq!(balance.body["currency"], "USD");
        assert_eq!(balance.body["account_sid"], account);
    }
    server
        .get(&format!("/2010-04-01/Accounts/{a}/Balance.json"), a_creds)
        .await
        .assert_error(403, 20403);
    let totals = one(&server, MAIN_SID, main, "Today.json?Category=totalprice").await;
    assert_eq!(totals["count"], "0", "a total of prices counts nothing");
    // Only the operator (the main account's auth token) credits.
    server
        .post(
            "/admin/billing/credit",
            a_creds,
            &[("AccountSid", a.as_str()), ("Amount", "10")],
        )
        .await
        .assert_error(403, 20403);
}

#[tokio::test]
async fn sends_stop_below_the_credit_limit_and_resume_after_a_credit() {
    let database = common::fresh_database().await;
    let store = warbler::store::Store::connect(&database.url).await.unwrap();
    let app = warbler::service::App::new(
        store,
        warbler::service::Settings {
            credit_limit: Some(0),
            ..warbler::service::Settings::new(1000, "pepper".into())
        },
    );
    app.ensure_main_account(Some(MAIN_SID), Some(MAIN_TOKEN), "Prepaid")
        .await
        .unwrap();
    let server = TestServer::from_app(app).holding(database);
    server.stock().await;
    server
        .buy(MAIN_SID, "+14155550100", server.main_creds())
        .await;
    let path = format!("/2010-04-01/Accounts/{MAIN_SID}/Messages.json");
    let form = [
        ("To", "+14155550199"),
        ("From", "+14155550100"),
        ("Body", "x"),
    ];
    // The rental made the balance negative: sends are refused, nothing is stored.
    server
        .post(&path, server.main_creds(), &form)
        .await
        .assert_error(403, 20005);
    let listed = server.get(&path, server.main_creds()).await;
    assert_eq!(listed.body["messages"].as_array().unwrap().len(), 0);
    let credited = server
        .post(
            "/admin/billing/credit",
            server.main_creds(),
            &[("AccountSid", MAIN_SID), ("Amount", "5.00")],
        )
        .await;
    assert_eq!(credited.body["balance"], "3.85000");
    let sent = server.post(&path, server.main_creds(), &form).await;
    assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.body);
    // Messages accepted but not sent yet count against the limit at their price (one is
    // waiting already): with 0.01 left, a first message (0.0079) is accepted, a second too
    // (0.0021 was left before it), and the third finds the reserved balance below zero.
    server
        .post(
            "/admin/billing/credit",
            server.main_creds(),
            &[("AccountSid", MAIN_SID), ("Amount", "-3.83210")],
        )
        .await;
    for expected in [201, 201, 403] {
        let reply = server.post(&path, server.main_creds(), &form).await;
        assert_eq!(reply.status.as_u16(), expected, "{}", reply.body);
    }
}

#[tokio::test]
async fn a_trigger_fires_once_per_period_through_the_outbox() {
    common::clear_of_utc_midnight().await;
    let server = spawn().await;
    server.stock().await;
    server
        .buy(MAIN_SID, "+14155550100", server.main_creds())
        .await;
    let hook = common::receiver::Receiver::start().await;
    let url = hook.url("/usage-alert");
    let triggers = format!("/2010-04-01/Accounts/{MAIN_SID}/Usage/Triggers.json");
    let created = server
        .post(
            &triggers,
            server.main_creds(),
            &[
                ("CallbackUrl", url.as_str()),
                ("TriggerValue", "2"),
                ("UsageCategory", "sms"),
                ("TriggerBy", "count"),
                ("Recurring", "daily"),
                ("FriendlyName", "two a day"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let sid = created.body["sid"].as_str().unwrap().to_string();
    assert!(sid.starts_with("UT"));
    assert_eq!(created.body["current_value"], "0");
    assert_eq!(created.body["trigger_value"], "2");
    assert_eq!(created.body["callback_method"], "POST");
    assert_eq!(created.body["date_fired"], Value::Null);
    // A relative value is taken from the current one; bad input is refused.
    let relative = server
        .post(
            &triggers,
            server.main_creds(),
            &[
                ("CallbackUrl", url.as_str()),
                ("TriggerValue", "+1.5"),
                ("UsageCategory", "totalprice"),
                ("TriggerBy", "price"),
            ],
        )
        .await;
    assert_eq!(
        relative.body["trigger_value"], "2.65000",
        "{}",
        relative.body
    );
    server
        .post(
            &triggers,
            server.main_creds(),
            &[
                ("CallbackUrl", url.as_str()),
                ("TriggerValue", "1"),
                ("UsageCategory", "sms"),
                ("TriggerBy", "seconds"),
            ],
        )
        .await
        .assert_error(400, 20001);
    server
        .post(
            &triggers,
            server.main_creds(),
            &[("TriggerValue", "1"), ("UsageCategory", "sms")],
        )
        .await
        .assert_error(400, 20001);

    let path = format!("/2010-04-01/Accounts/{MAIN_SID}/Messages.json");
    let t0 = now_micros();
    for (i, body) in ["a", "b", "c"].into_iter().enumerate() {
        server
            .post(
                &path,
                server.main_creds(),
                &[
                    ("To", "+14155550199"),
                    ("From", "+14155550100"),
                    ("Body", body),
                ],
            )
            .await;
        // Each message is dispatched once due (creation time) and its sender's pace allows.
        server
            .app
            .dispatch_once(now_micros() + i as i64 * SECOND)
            .await
            .unwrap();
        assert_eq!(
            server
                .app
                .evaluate_triggers(t0 + i as i64 * SECOND)
                .await
                .unwrap(),
            usize::from(i == 1)
        );
    }
    for _ in 0..5 {
        server
            .app
            .deliver_webhooks_once(now_micros() + 10 * SECOND)
            .await
            .unwrap();
    }
    let hits = hook.hits("/usage-alert");
    assert_eq!(hits.len(), 1, "fires once in the day: {hits:?}");
    hook.assert_signed(MAIN_TOKEN);
    let get = |name: &str| hits[0].get(name);
    assert_eq!(get("UsageTriggerSid"), Some(sid.as_str()));
    assert_eq!(get("AccountSid"), Some(MAIN_SID));
    assert_eq!(get("CurrentValue"), Some("2"));
    assert_eq!(get("TriggerValue"), Some("2"));
    assert_eq!(get("Recurring"), Some("daily"));
    assert!(get("UsageRecordUri")
        .unwrap()
        .ends_with("/Usage/Records/Today.json?Category=sms"));

    let one = format!("/2010-04-01/Accounts/{MAIN_SID}/Usage/Triggers/{sid}.json");
    let fetched = server.get(&one, server.main_creds()).await;
    assert_eq!(fetched.body["current_value"], "3");
    assert!(fetched.body["date_fired"].is_string());
    let updated = server
        .post(
            &one,
            server.main_creds(),
            &[("FriendlyName", "renamed"), ("CallbackMethod", "GET")],
        )
        .await;
    assert_eq!(updated.body["friendly_name"], "renamed");
    assert_eq!(updated.body["callback_method"], "GET");
    let listed = server
        .get(&format!("{triggers}?TriggerBy=count"), server.main_creds())
        .await;
    assert_eq!(listed.body["usage_triggers"].as_array().unwrap().len(), 1);
    let (sub, token) = server.subaccount("nosy").await;
    server
        .get(&one, (&sub, &token))
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
}

fn app_with(settings: impl FnOnce(&mut warbler::service::Settings)) -> warbler::service::Settings {
    let mut s = warbler::service::Settings::new(1000, "pepper".into());
    settings(&mut s);
    s
}

#[tokio::test]
async fn a_capped_subaccount_is_held_back_while_its_sibling_keeps_its_pace() {
    let database = common::fresh_database().await;
    let store = warbler::store::Store::connect(&database.url).await.unwrap();
    // Fast senders, so only the account cap limits the rate.
    let settings = app_with(|s| s.pacing.long_code = 100.0);
    let app = warbler::service::App::new(store, settings);
    app.ensure_main_account(Some(MAIN_SID), Some(MAIN_TOKEN), "Caps")
        .await
        .unwrap();
    let server = TestServer::from_app(app).holding(database);
    server.stock().await;
    let (noisy, noisy_token) = server.subaccount("noisy").await;
    let (calm, calm_token) = server.subaccount("calm").await;
    server
        .buy(&noisy, "+14155550100", server.main_creds())
        .await;
    server.buy(&calm, "+14155550101", server.main_creds()).await;

    let caps = format!("/admin/accounts/{noisy}/Caps");
    // Only the parent's auth token sets caps, and only on its subaccounts.
    server
        .post(&caps, (&noisy, &noisy_token), &[("MonthlyMessages", "1")])
        .await
        .assert_error(403, 20403);
    server
        .post(
            &format!("/admin/accounts/{MAIN_SID}/Caps"),
            server.main_creds(),
            &[("MonthlyMessages", "1")],
        )
        .await
        .assert_error(400, 21473);
    server
        .post(
            &caps,
            server.main_creds(),
            &[("MaxSegmentsPerSecond", "-1")],
        )
        .await
        .assert_error(400, 20001);
    let set = server
        .post(
            &caps,
            server.main_creds(),
            &[("MaxSegmentsPerSecond", "1"), ("MonthlyMessages", "5")],
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert_eq!(set.body["max_segments_per_second"], 1.0);
    assert_eq!(set.body["monthly_messages"], 5);

    let send = |account: &str, token: &str, from: &str| {
        let path = format!("/2010-04-01/Accounts/{account}/Messages.json");
        let (account, token, from) = (account.to_string(), token.to_string(), from.to_string());
        let server = &server;
        async move {
            server
                .post(
                    &path,
                    (&account, &token),
                    &[("To", "+14155550199"), ("From", &from), ("Body", "hi")],
                )
                .await
        }
    };
    let mut noisy_sids = Vec::new();
    for _ in 0..5 {
        let reply = send(&noisy, &noisy_token, "+14155550100").await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        noisy_sids.push(reply.body["sid"].as_str().unwrap().to_string());
    }
    // The sixth is over the monthly cap.
    send(&noisy, &noisy_token, "+14155550100")
        .await
        .assert_error(429, 20429);
    let mut calm_sids = Vec::new();
    for _ in 0..5 {
        let reply = send(&calm, &calm_token, "+14155550101").await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        calm_sids.push(reply.body["sid"].as_str().unwrap().to_string());
    }
    let shown = server.get(&caps, server.main_creds()).await;
    assert_eq!(shown.body["messages_this_month"], 5);

    let status = |account: String, token: String, sid: String| {
        let server = &server;
        async move {
            server
                .get(
                    &format!("/2010-04-01/Accounts/{account}/Messages/{sid}.json"),
                    (&account, &token),
                )
                .await
                .body["status"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let t0 = now_micros();
    server.app.dispatch_once(t0).await.unwrap();
    let mut calm_sent = 0;
    for sid in &calm_sids {
        calm_sent +=
            usize::from(status(calm.clone(), calm_token.clone(), sid.clone()).await == "sent");
    }
    let mut noisy_sent = 0;
    for sid in &noisy_sids {
        noisy_sent +=
            usize::from(status(noisy.clone(), noisy_token.clone(), sid.clone()).await == "sent");
    }
    assert_eq!(calm_sent, 5, "the sibling sends at its senders' pace");
    assert_eq!(
        noisy_sent, 1,
        "the capped account sends one segment a second"
    );
    // Four seconds later, all of the capped account's messages are out.
    for i in 1..=4 {
        server.app.dispatch_once(t0 + i * SECOND).await.unwrap();
    }
    for sid in &noisy_sids {
        assert_eq!(
            status(noisy.clone(), noisy_token.clone(), sid.clone()).await,
            "sent"
        );
    }
    // A spend cap counts messages when they are accepted, sent or not. This month the calm
    // account spent 1.15 on its number and 5 × 0.0079 on messages: a cap of 1.2053 leaves
    // room for exactly two more.
    let other_caps = format!("/admin/accounts/{calm}/Caps");
    let set = server
        .post(
            &other_caps,
            server.main_creds(),
            &[("MonthlySpend", "1.2053")],
        )
        .await;
    assert_eq!(set.body["monthly_spend"], "1.20530");
    for expected in [201, 201, 429] {
        let reply = send(&calm, &calm_token, "+14155550101").await;
        assert_eq!(reply.status.as_u16(), expected, "{}", reply.body);
    }
    // Removing the cap lets the account send again this month.
    let cleared = server
        .post(&caps, server.main_creds(), &[("MonthlyMessages", "")])
        .await;
    assert_eq!(cleared.status, StatusCode::OK, "{}", cleared.body);
    assert_eq!(cleared.body["monthly_messages"], Value::Null);
    assert_eq!(
        cleared.body["max_segments_per_second"], 1.0,
        "{}",
        cleared.body
    );
    // What is stored, not only what the update answered.
    let stored = server.get(&caps, server.main_creds()).await;
    assert_eq!(
        stored.body["monthly_messages"],
        Value::Null,
        "{}",
        stored.body
    );
    let again = send(&noisy, &noisy_token, "+14155550100").await;
    assert_eq!(
        again.status,
        StatusCode::CREATED,
        "{} (caps now: {})",
        again.body,
        server.get(&caps, server.main_creds()).await.body
    );
}

#[tokio::test]
async fn accounts_take_turns_when_one_has_a_backlog() {
    let server = spawn().await;
    server.stock().await;
    let (busy, _) = server.subaccount("busy").await;
    let (quiet, quiet_token) = server.subaccount("quiet").await;
    server.buy(&busy, "+14155550100", server.main_creds()).await;
    server
        .buy(&quiet, "+14155550101", server.main_creds())
        .await;
    // A backlog larger than one dispatch round, all due before the quiet account's message.
    let base = now_micros() - 60 * SECOND;
    let backlog: Vec<_> = (0..600)
        .map(|i| {
            (
                queued_message(format!("SM{:032x}", i), &busy, "backlog", base + i),
                Vec::new(),
            )
        })
        .collect();
    server
        .app
        .store
        .insert_messages(&backlog, base)
        .await
        .unwrap();
    let reply = server
        .post(
            &format!("/2010-04-01/Accounts/{quiet}/Messages.json"),
            (&quiet, &quiet_token),
            &[
                ("To", "+14155550199"),
                ("From", "+14155550101"),
                ("Body", "hello"),
            ],
        )
        .await;
    let sid = reply.body["sid"].as_str().unwrap().to_string();
    server.app.dispatch_once(now_micros()).await.unwrap();
    let fetched = server
        .get(
            &format!("/2010-04-01/Accounts/{quiet}/Messages/{sid}.json"),
            (&quiet, &quiet_token),
        )
        .await;
    assert_eq!(fetched.body["status"], "sent", "served in the first round");
}

/// More accounts with due messages than one claim takes from (100): the first claim serves
/// 100 of them, the next one the rest, and no message is claimed twice.
#[tokio::test]
async fn a_claim_serves_many_accounts_and_the_next_claim_the_rest() {
    let server = spawn().await;
    let base = now_micros() - 60 * SECOND;
    let mut backlog = Vec::new();
    for a in 0..130 {
        let (account, _) = server.subaccount(&format!("tenant {a}")).await;
        for i in 0..3 {
            backlog.push((
                queued_message(format!("SM{:030x}{i:02x}", a), &account, "due", base + i),
                Vec::new(),
            ));
        }
    }
    let store = &server.app.store;
    store.insert_messages(&backlog, base).await.unwrap();
    let now = now_micros();
    let lease = 60 * SECOND;
    let first = store.claim_due(now, lease, 500).await.unwrap().messages;
    let accounts = |claimed: &[warbler::store::messages::Claimed]| {
        claimed
            .iter()
            .map(|c| c.message.account_sid.clone())
            .collect::<std::collections::BTreeSet<_>>()
    };
    assert_eq!(
        accounts(&first).len(),
        100,
        "one claim takes from 100 accounts"
    );
    assert_eq!(
        first.len(),
        300,
        "all 3 due messages of each (500 / 100 = 5 each at most)"
    );
    let second = store.claim_due(now, lease, 500).await.unwrap().messages;
    assert_eq!(
        accounts(&second).len(),
        30,
        "the next claim serves the other accounts"
    );
    assert_eq!(second.len(), 90);
    let mut sids: Vec<&str> = first
        .iter()
        .chain(&second)
        .map(|c| c.message.sid.as_str())
        .collect();
    sids.sort_unstable();
    sids.dedup();
    assert_eq!(sids.len(), 390, "no message is claimed twice");
    assert!(store
        .claim_due(now, lease, 500)
        .await
        .unwrap()
        .messages
        .is_empty());
}

/// Accounts whose queued messages are all due later (scheduled) sit between the accounts
/// with due work: a claim passes over them without counting them among the 100 accounts it
/// serves, takes none of their messages, and takes them once they come due. Walking past an
/// account costs one index seek, however many messages it has queued.
#[tokio::test]
async fn a_claim_passes_over_accounts_whose_messages_are_due_later() {
    let server = spawn().await;
    let base = now_micros() - 60 * SECOND;
    let later = now_micros() + 3600 * SECOND;
    let mut backlog = Vec::new();
    let mut due_accounts = std::collections::BTreeSet::new();
    let mut later_accounts = std::collections::BTreeSet::new();
    for a in 0..140 {
        let (account, _) = server.subaccount(&format!("tenant {a}")).await;
        if a % 2 == 0 {
            for i in 0..2 {
                backlog.push((
                    queued_message(format!("SM{a:030x}{i:02x}"), &account, "due", base + i),
                    Vec::new(),
                ));
            }
            due_accounts.insert(account);
        } else {
            for i in 0..30 {
                let mut scheduled =
                    queued_message(format!("SM{a:030x}{i:02x}"), &account, "later", base + i);
                scheduled.status = warbler::domain::message::MessageStatus::Scheduled;
                scheduled.send_at = Some(later);
                backlog.push((scheduled, Vec::new()));
            }
            later_accounts.insert(account);
        }
    }
    let store = &server.app.store;
    store.insert_messages(&backlog, base).await.unwrap();
    let accounts = |claimed: &[warbler::store::messages::Claimed]| {
        claimed
            .iter()
            .map(|c| c.message.account_sid.clone())
            .collect::<std::collections::BTreeSet<_>>()
    };
    let now = now_micros();
    // Longer than the wait for the scheduled ones, so these stay claimed meanwhile.
    let lease = 2 * 3600 * SECOND;
    // Claims start after a random SID and wrap around: whatever the start, one claim serves
    // all 70 accounts with due messages and none of the others.
    let first = store.claim_due(now, lease, 1000).await.unwrap().messages;
    assert_eq!(accounts(&first), due_accounts);
    assert_eq!(first.len(), 140, "both due messages of each");
    assert!(store
        .claim_due(now, lease, 1000)
        .await
        .unwrap()
        .messages
        .is_empty());
    // An hour later the scheduled ones are due: 70 accounts, 15 each (1000 / 70, rounded up).
    let hour_later = store
        .claim_due(later + SECOND, lease, 1000)
        .await
        .unwrap()
        .messages;
    assert_eq!(accounts(&hour_later), later_accounts);
    assert_eq!(hour_later.len(), 70 * 15);
}

/// Caps with and without a rate, set in turns: every answer is 200 with what was set. (On
/// PostgreSQL a statement prepared with the rate missing once expected a 4-byte float
/// afterwards, so a later set with a rate failed with 500 on that connection.)
#[tokio::test]
async fn caps_with_and_without_a_rate_can_follow_each_other() {
    let server = spawn().await;
    let (sub, _) = server.subaccount("capped").await;
    let caps = format!("/admin/accounts/{sub}/Caps");
    for round in 0..40 {
        let form: &[(&str, &str)] = match round % 3 {
            0 => &[("MaxSegmentsPerSecond", ""), ("MonthlySpend", "2.5")],
            1 => &[("MaxSegmentsPerSecond", "2.5"), ("MonthlySpend", "")],
            _ => &[("MaxSegmentsPerSecond", "4"), ("MonthlyMessages", "7")],
        };
        let set = server.post(&caps, server.main_creds(), form).await;
        assert_eq!(set.status, StatusCode::OK, "round {round}: {}", set.body);
        match round % 3 {
            0 => {
                assert_eq!(set.body["max_segments_per_second"], Value::Null);
                assert_eq!(set.body["monthly_spend"], "2.50000");
            }
            1 => {
                assert_eq!(set.body["max_segments_per_second"], 2.5);
                assert_eq!(set.body["monthly_spend"], Value::Null);
            }
            _ => {
                assert_eq!(set.body["max_segments_per_second"], 4.0);
                assert_eq!(set.body["monthly_messages"], 7);
            }
        }
        let shown = server.get(&caps, server.main_creds()).await;
        assert_eq!(
            shown.body["max_segments_per_second"],
            set.body["max_segments_per_second"]
        );
    }
}

#[tokio::test]
async fn a_failed_group_leaves_nothing_behind_and_its_session_writes_the_next() {
    let server = spawn().await;
    let store = &server.app.store;
    let created = now_micros();
    let twice = queued_message(format!("SM{:032x}", 1), MAIN_SID, "twice", created);
    let once = queued_message(format!("SM{:032x}", 2), MAIN_SID, "once", created);
    let mut session = store.write_session().await.unwrap();
    // The second row breaks the primary key: the whole group fails, counters included.
    let failed = session
        .insert_new_messages(
            &[(twice.clone(), Vec::new()), (twice.clone(), Vec::new())],
            &[0, 0],
            &[],
            created,
            None,
        )
        .await;
    assert!(failed.is_err());
    let (admissions, durable) = session
        .insert_new_messages(&[(once.clone(), Vec::new())], &[0], &[], created, None)
        .await
        .expect("the session's connection is usable after a failed group");
    durable.wait().await.unwrap();
    assert_eq!(admissions.len(), 1);
    assert!(admissions[0] == warbler::store::rows::Admission::Accepted);
    drop(session);
    assert!(store.message(MAIN_SID, &twice.sid).await.unwrap().is_none());
    assert!(store.message(MAIN_SID, &once.sid).await.unwrap().is_some());
    let counted: i64 = sqlx::query_scalar(
        "SELECT CAST(SUM(messages) AS BIGINT) FROM account_month_counters WHERE account_sid = $1",
    )
    .bind(MAIN_SID)
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(counted, 1, "only the group that committed is counted");
    // Other writers get the connection back in a clean state.
    store.begin_write().await.unwrap().commit().await.unwrap();
}

/// The parent changes two different caps of a subaccount at the same moment (two requests in
/// flight): both changes land, neither is overwritten with what the other read before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_updates_of_different_caps_both_land() {
    let server = spawn().await;
    let (sub, _) = server.subaccount("twice updated").await;
    let caps = format!("/admin/accounts/{sub}/Caps");
    for round in 0..40 {
        let reset = server
            .post(
                &caps,
                server.main_creds(),
                &[("MaxSegmentsPerSecond", "1"), ("MonthlyMessages", "5")],
            )
            .await;
        assert_eq!(reset.status, StatusCode::OK, "{}", reset.body);
        let (cleared, faster) = tokio::join!(
            server.post(&caps, server.main_creds(), &[("MonthlyMessages", "")]),
            server.post(&caps, server.main_creds(), &[("MaxSegmentsPerSecond", "2")]),
        );
        assert_eq!(cleared.status, StatusCode::OK, "{}", cleared.body);
        assert_eq!(faster.status, StatusCode::OK, "{}", faster.body);
        let stored = server.get(&caps, server.main_creds()).await;
        assert_eq!(
            (
                stored.body["monthly_messages"].clone(),
                stored.body["max_segments_per_second"].clone()
            ),
            (Value::Null, serde_json::json!(2.0)),
            "round {round}: {}",
            stored.body
        );
    }
}

/// One credit is at most a billion of the price unit and a family's credits total at most a
/// trillion either way, so no sum of them overflows: two credits near `i64`'s limit used to
/// be accepted and then make Balance answer 500 for good.
#[tokio::test]
async fn credits_are_bounded_so_the_balance_never_overflows() {
    let server = spawn().await;
    let main = (MAIN_SID, common::MAIN_TOKEN);
    let server = &server;
    let credit = |amount: &'static str| async move {
        server
            .post(
                "/admin/billing/credit",
                (MAIN_SID, common::MAIN_TOKEN),
                &[("AccountSid", MAIN_SID), ("Amount", amount)],
            )
            .await
    };
    let balance = || async {
        let reply = server
            .get(
                &format!("/2010-04-01/Accounts/{MAIN_SID}/Balance.json"),
                main,
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply.body["balance"].as_str().unwrap().to_string()
    };
    for _ in 0..2 {
        credit("92233720368547.75807")
            .await
            .assert_error(400, 20001);
    }
    credit("1000000000.00001").await.assert_error(400, 20001);
    credit("-1000000000.00001").await.assert_error(400, 20001);
    for _ in 0..2 {
        let credited = credit("1000000000").await;
        assert_eq!(credited.status, StatusCode::CREATED, "{}", credited.body);
    }
    assert_eq!(balance().await, "2000000000.00000");
    // Up to the total's bound with rows put there directly (a thousand maximal credits).
    let near =
        warbler::domain::usage::MAX_CREDITED - 2 * warbler::domain::usage::MAX_CREDIT - 50_000;
    sqlx::query(
        "INSERT INTO balance_credits (id, account_sid, amount, note, date_created) VALUES ('x', $1, $2, '', 0)",
    )
    .bind(MAIN_SID)
    .bind(near)
    .execute(server.app.store.pool())
    .await
    .unwrap();
    credit("1").await.assert_error(400, 20001);
    let last = credit("0.5").await;
    assert_eq!(last.status, StatusCode::CREATED, "{}", last.body);
    assert_eq!(balance().await, "1000000000000.00000");
}
