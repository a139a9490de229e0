//! The message log export over HTTP (the CLI shares its code), on the database
//! `TEST_DATABASE_URL` names.

mod common;

use axum::http::StatusCode;
use common::{spawn, MAIN_SID};

#[tokio::test]
async fn the_export_streams_a_family_or_one_account_in_csv_or_jsonl() {
    let server = spawn().await;
    server.stock().await;
    let (sub, sub_token) = server.subaccount("tenant").await;
    server
        .buy(MAIN_SID, "+14155550100", server.main_creds())
        .await;
    server.buy(&sub, "+14155550101", server.main_creds()).await;
    let send =
        |account: String, creds: (String, String), from: &'static str, body: &'static str| {
            let server = &server;
            async move {
                let reply = server
                    .post(
                        &format!("/2010-04-01/Accounts/{account}/Messages.json"),
                        (&creds.0, &creds.1),
                        &[("To", "+14155550199"), ("From", from), ("Body", body)],
                    )
                    .await;
                assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
            }
        };
    let main = (MAIN_SID.to_string(), server.main.1.clone());
    send(
        MAIN_SID.into(),
        main.clone(),
        "+14155550100",
        "from the parent",
    )
    .await;
    send(
        sub.clone(),
        (sub.clone(), sub_token.clone()),
        "+14155550101",
        "comma, \"quoted\"",
    )
    .await;

    let csv = server
        .get(
            &format!("/admin/export/messages?AccountSid={MAIN_SID}"),
            server.main_creds(),
        )
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert_eq!(csv.headers["content-type"], "text/csv; charset=utf-8");
    let text = csv.body.as_str().unwrap().to_string();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 2, "{text}");
    let bodies: Vec<&str> = rows.iter().map(|r| r.get(6).unwrap()).collect();
    assert!(bodies.contains(&"comma, \"quoted\""));
    assert!(bodies.contains(&"from the parent"));

    let only_parent = server
        .get(
            &format!("/admin/export/messages?AccountSid={MAIN_SID}&IncludeSubaccounts=false&Format=jsonl"),
            server.main_creds(),
        )
        .await;
    let lines: Vec<serde_json::Value> = only_parent
        .body
        .as_str()
        .map(|s| {
            s.lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        })
        .unwrap_or_else(|| vec![only_parent.body.clone()]);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["body"], "from the parent");
    assert_eq!(lines[0]["account_sid"], MAIN_SID);

    let sub_only = server
        .get(
            &format!("/admin/export/messages?AccountSid={sub}&Format=jsonl"),
            server.main_creds(),
        )
        .await;
    let text = match &sub_only.body {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains(&sub));

    // A range that ends before everything exports only the header.
    let empty = server
        .get(
            &format!("/admin/export/messages?AccountSid={MAIN_SID}&Until=2020-01-01"),
            server.main_creds(),
        )
        .await;
    assert_eq!(empty.body.as_str().unwrap().lines().count(), 1);
    server
        .get(
            &format!("/admin/export/messages?AccountSid={MAIN_SID}&Format=xml"),
            server.main_creds(),
        )
        .await
        .assert_error(400, 20001);
    // Only the operator exports.
    server
        .get(
            &format!("/admin/export/messages?AccountSid={sub}"),
            (&sub, &sub_token),
        )
        .await
        .assert_error(403, 20403);
}
