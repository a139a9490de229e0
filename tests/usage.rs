//! Usage Records, the shared balance and the credit limit, on the database
//! `TEST_DATABASE_URL` names. Prices are warbler's defaults: +1 SMS 0.0079 a segment each way,
//! MMS 0.0200 out and 0.0100 in, a local number 1.15 a month.

mod common;

use axum::http::StatusCode;
use common::{spawn, TestServer, MAIN_SID, MAIN_TOKEN};
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

    // The parent sums its subaccounts (IncludeSubaccounts defaults to true)...
    let main = server.main_creds();
    let all = one(&server, MAIN_SID, main, "Today.json?Category=totalprice").await;
    assert!(
        close(price(&all), 1.15 + 0.0158 + 0.02 + 1.15 + 0.0079),
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
    for (account, creds) in [(MAIN_SID, main), (a.as_str(), a_creds)] {
        let balance = server
            .get(
                &format!("/2010-04-01/Accounts/{account}/Balance.json"),
                creds,
            )
            .await;
        assert_eq!(balance.status, StatusCode::OK, "{}", balance.body);
        assert_eq!(balance.body["balance"], "7.65630");
        assert_eq!(balance.body["currency"], "USD");
        assert_eq!(balance.body["account_sid"], account);
    }
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
    let store = warbler::store::Store::connect(&common::fresh_database_url().await)
        .await
        .unwrap();
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
    let server = TestServer::from_app(app);
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
}
