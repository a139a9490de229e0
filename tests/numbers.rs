//! Phone numbers over HTTP: inventory import, search, purchase, configuration, transfer,
//! release; on the database `TEST_DATABASE_URL` names.

mod common;

use axum::http::StatusCode;
use common::{spawn, TestServer, CSV_HEADER, MAIN_SID};
use serde_json::Value;
use std::collections::HashSet;

fn numbers_path(account: &str) -> String {
    format!("/2010-04-01/Accounts/{account}/IncomingPhoneNumbers.json")
}

fn number_path(account: &str, sid: &str) -> String {
    format!("/2010-04-01/Accounts/{account}/IncomingPhoneNumbers/{sid}.json")
}

fn phone_numbers(list: &Value, key: &str) -> Vec<String> {
    list[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["phone_number"].as_str().unwrap().to_string())
        .collect()
}

async fn search(server: &TestServer, query: &str) -> Vec<String> {
    let reply = server
        .get(
            &format!("/2010-04-01/Accounts/{MAIN_SID}/AvailablePhoneNumbers/{query}"),
            server.main_creds(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    phone_numbers(&reply.body, "available_phone_numbers")
}

#[tokio::test]
async fn an_inventory_import_is_all_or_nothing_and_names_the_bad_line() {
    let server = spawn().await;
    let csv = format!(
        "{CSV_HEADER}+14155550100,US,local,true,true,true,San Francisco,CA,94105,sim\n+14155550101,US,local,true,true,true,,,,\n+1415555,US,local,true,true,true,,,,\n"
    );
    let reply = server.import(&csv, server.main_creds()).await;
    reply.assert_error(400, 20001);
    let message = reply.body["message"].as_str().unwrap();
    assert!(message.contains("line 4"), "{message}");
    // Found by the inventory_csv fuzz target: SQLite stored it, PostgreSQL answered 500.
    let nul = format!("{CSV_HEADER}+14155550100,US,local,true,true,true,Bou\0on,CA,94105,sim\n");
    server
        .import(&nul, server.main_creds())
        .await
        .assert_error(400, 20001);
    assert!(
        search(&server, "US/Local.json").await.is_empty(),
        "nothing half-imported"
    );

    let good =
        format!("{CSV_HEADER}+14155550100,US,local,true,true,true,San Francisco,CA,94105,sim\n");
    let reply = server.import(&good, server.main_creds()).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.body["imported"], 1);
    assert_eq!(search(&server, "US/Local.json").await, vec!["+14155550100"]);
    // Re-importing refreshes rather than duplicating.
    assert_eq!(
        server.import(&good, server.main_creds()).await.status,
        StatusCode::CREATED
    );
    assert_eq!(search(&server, "US/Local.json").await.len(), 1);

    // Only the main account's auth token administers the inventory.
    let (sub, token) = server.subaccount("FalconFlights").await;
    server
        .import(&good, (&sub, &token))
        .await
        .assert_error(403, 20403);
}

#[tokio::test]
async fn searches_filter_by_area_code_pattern_capability_and_place() {
    let server = spawn().await;
    server.stock().await;
    assert_eq!(search(&server, "US/Local.json?AreaCode=212").await.len(), 3);
    assert_eq!(
        search(&server, "US/Local.json?AreaCode=415&Contains=0103").await,
        vec!["+14155550103"]
    );
    // Letters map to keypad digits: J=5, K=5, L=5 → "555".
    assert_eq!(
        search(&server, "US/Local.json?Contains=JKL0100")
            .await
            .len(),
        2
    );
    assert_eq!(
        search(&server, "US/Local.json?Contains=%2B1212*")
            .await
            .len(),
        3
    );
    assert_eq!(
        search(&server, "US/Local.json?Contains=0104%24").await,
        vec!["+14155550104"]
    );
    assert_eq!(
        search(&server, "US/Local.json?MmsEnabled=true").await.len(),
        5
    );
    assert_eq!(
        search(&server, "US/Local.json?MmsEnabled=false&InRegion=NY")
            .await
            .len(),
        3
    );
    assert_eq!(
        search(&server, "US/Local.json?InLocality=san%20francisco")
            .await
            .len(),
        5
    );
    assert_eq!(
        search(&server, "US/Local.json?InPostalCode=10001")
            .await
            .len(),
        3
    );
    assert_eq!(
        search(&server, "US/TollFree.json").await,
        vec!["+18005550100"]
    );
    assert_eq!(
        search(&server, "GB/Mobile.json").await,
        vec!["+447700900100"]
    );
    assert!(search(&server, "FR/Local.json").await.is_empty());
    assert!(search(&server, "US/Voip.json").await.is_empty());

    let reply = server
        .get(
            &format!(
                "/2010-04-01/Accounts/{MAIN_SID}/AvailablePhoneNumbers/US/Local.json?Contains=5"
            ),
            server.main_creds(),
        )
        .await;
    reply.assert_error(400, 20001);
    let first = server
        .get(
            &format!(
                "/2010-04-01/Accounts/{MAIN_SID}/AvailablePhoneNumbers/US/Local.json?PageSize=3"
            ),
            server.main_creds(),
        )
        .await;
    let item = &first.body["available_phone_numbers"][0];
    assert_eq!(item["friendly_name"], "(212) 555-0100");
    assert_eq!(item["iso_country"], "US");
    assert_eq!(item["capabilities"]["voice"], true);
    let all = server
        .collect_pages(
            &format!(
                "/2010-04-01/Accounts/{MAIN_SID}/AvailablePhoneNumbers/US/Local.json?PageSize=3"
            ),
            "available_phone_numbers",
            server.main_creds(),
        )
        .await;
    assert_eq!(all.len(), 8);

    let countries = server
        .get(
            &format!("/2010-04-01/Accounts/{MAIN_SID}/AvailablePhoneNumbers.json"),
            server.main_creds(),
        )
        .await;
    let codes: Vec<&str> = countries.body["countries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["country_code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, vec!["GB", "US"]);
    let us = server
        .get(
            &format!("/2010-04-01/Accounts/{MAIN_SID}/AvailablePhoneNumbers/US.json"),
            server.main_creds(),
        )
        .await;
    assert_eq!(us.body["country"], "United States");
    assert!(us.body["subresource_uris"]["toll_free"]
        .as_str()
        .unwrap()
        .ends_with("/US/TollFree.json"));
}

#[tokio::test]
async fn buying_configures_and_refuses_what_cannot_be_bought() {
    let server = spawn().await;
    server.stock().await;
    let creds = server.main_creds();
    let bought = server
        .post(
            &numbers_path(MAIN_SID),
            creds,
            &[
                ("PhoneNumber", "+14155550100"),
                ("SmsUrl", "https://demo.twilio.com/welcome/sms/reply"),
                ("VoiceUrl", "https://demo.twilio.com/welcome/voice/"),
            ],
        )
        .await;
    assert_eq!(bought.status, StatusCode::CREATED, "{}", bought.body);
    let n = &bought.body;
    assert!(n["sid"].as_str().unwrap().starts_with("PN"));
    assert_eq!(n["account_sid"], MAIN_SID);
    assert_eq!(n["friendly_name"], "(415) 555-0100");
    assert_eq!(n["sms_url"], "https://demo.twilio.com/welcome/sms/reply");
    assert_eq!(n["sms_method"], "POST");
    assert_eq!(n["voice_url"], "https://demo.twilio.com/welcome/voice/");
    assert_eq!(n["capabilities"]["mms"], true);
    assert_eq!(n["origin"], "twilio");
    assert_eq!(n["type"], "local");

    // It left the available inventory.
    assert!(!search(&server, "US/Local.json?AreaCode=415")
        .await
        .contains(&"+14155550100".to_string()));
    server
        .post(
            &numbers_path(MAIN_SID),
            creds,
            &[("PhoneNumber", "+14155550100")],
        )
        .await
        .assert_error(400, 21422);
    server
        .post(
            &numbers_path(MAIN_SID),
            creds,
            &[("PhoneNumber", "+14155559999")],
        )
        .await
        .assert_error(400, 21422);
    server
        .post(
            &numbers_path(MAIN_SID),
            creds,
            &[("PhoneNumber", "415-555")],
        )
        .await
        .assert_error(400, 21421);
    server
        .post(&numbers_path(MAIN_SID), creds, &[("AreaCode", "533")])
        .await
        .assert_error(400, 21452);
    server
        .post(&numbers_path(MAIN_SID), creds, &[])
        .await
        .assert_error(400, 20001);
    server
        .post(
            &format!("/2010-04-01/Accounts/{MAIN_SID}/IncomingPhoneNumbers/TollFree.json"),
            creds,
            &[("PhoneNumber", "+14155550101")],
        )
        .await
        .assert_error(400, 21458);
    server
        .post(
            &numbers_path(MAIN_SID),
            creds,
            &[("PhoneNumber", "+14155550101"), ("SmsUrl", "not a url")],
        )
        .await
        .assert_error(400, 21402);

    let by_area = server
        .post(&numbers_path(MAIN_SID), creds, &[("AreaCode", "212")])
        .await;
    assert_eq!(by_area.status, StatusCode::CREATED);
    assert!(by_area.body["phone_number"]
        .as_str()
        .unwrap()
        .starts_with("+1212"));
    assert_eq!(by_area.body["friendly_name"].as_str().unwrap().len(), 14);
    let toll_free = server
        .post(
            &format!("/2010-04-01/Accounts/{MAIN_SID}/IncomingPhoneNumbers/TollFree.json"),
            creds,
            &[("PhoneNumber", "+18005550100")],
        )
        .await;
    // The typed sub-resources' schemas have no `type`; the main resource has it.
    assert_eq!(toll_free.status, StatusCode::CREATED);
    assert!(toll_free.body.get("type").is_none());
    let fetched = server
        .get(
            &number_path(MAIN_SID, toll_free.body["sid"].as_str().unwrap()),
            creds,
        )
        .await;
    assert_eq!(fetched.body["type"], "tollfree");

    let typed = server
        .get(
            &format!("/2010-04-01/Accounts/{MAIN_SID}/IncomingPhoneNumbers/TollFree.json"),
            creds,
        )
        .await;
    assert_eq!(
        phone_numbers(&typed.body, "incoming_phone_numbers"),
        vec!["+18005550100"]
    );
    let partial = server
        .get(
            &format!("{}?PhoneNumber=555010*", numbers_path(MAIN_SID)),
            creds,
        )
        .await;
    assert_eq!(
        partial.body["incoming_phone_numbers"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let named = server
        .get(
            &format!("{}?FriendlyName=(415)%20555-0100", numbers_path(MAIN_SID)),
            creds,
        )
        .await;
    assert_eq!(
        phone_numbers(&named.body, "incoming_phone_numbers"),
        vec!["+14155550100"]
    );
    let hosted = server
        .get(&format!("{}?Origin=hosted", numbers_path(MAIN_SID)), creds)
        .await;
    assert!(hosted.body["incoming_phone_numbers"]
        .as_array()
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn two_buyers_of_one_number_get_one_number() {
    let server = spawn().await;
    server.stock().await;
    let (a, a_token) = server.subaccount("A").await;
    let (b, b_token) = server.subaccount("B").await;
    let attempts = (0..8).map(|i| {
        let (account, token) = if i % 2 == 0 {
            (&a, &a_token)
        } else {
            (&b, &b_token)
        };
        let server = &server;
        async move {
            server
                .post(
                    &numbers_path(account),
                    (account, token),
                    &[("PhoneNumber", "+14155550102")],
                )
                .await
        }
    });
    let replies = futures::future::join_all(attempts).await;
    assert_eq!(
        replies
            .iter()
            .filter(|r| r.status == StatusCode::CREATED)
            .count(),
        1
    );
    for loser in replies.iter().filter(|r| r.status != StatusCode::CREATED) {
        loser.assert_error(400, 21422);
    }

    // Area-code buyers racing for three New York numbers get three distinct ones.
    let attempts = (0..6).map(|_| {
        let server = &server;
        let a = &a;
        let token = &a_token;
        async move {
            server
                .post(&numbers_path(a), (a, token), &[("AreaCode", "212")])
                .await
        }
    });
    let replies = futures::future::join_all(attempts).await;
    let won: HashSet<String> = replies
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .map(|r| r.body["phone_number"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(won.len(), 3);
    assert_eq!(
        replies
            .iter()
            .filter(|r| r.status == StatusCode::CREATED)
            .count(),
        3
    );
}

#[tokio::test]
async fn updating_configures_and_validates() {
    let server = spawn().await;
    server.stock().await;
    let sid = server
        .buy(MAIN_SID, "+14155550100", server.main_creds())
        .await;
    let path = number_path(MAIN_SID, &sid);
    let updated = server
        .post(
            &path,
            server.main_creds(),
            &[
                ("FriendlyName", "Falcon alerts"),
                ("SmsUrl", "https://falcon.example.com/sms"),
                ("SmsMethod", "GET"),
                ("StatusCallback", "https://falcon.example.com/status"),
                ("VoiceCallerIdLookup", "true"),
            ],
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(updated.body["friendly_name"], "Falcon alerts");
    assert_eq!(updated.body["sms_method"], "GET");
    assert_eq!(
        updated.body["status_callback"],
        "https://falcon.example.com/status"
    );
    assert_eq!(updated.body["voice_caller_id_lookup"], true);
    let fetched = server.get(&path, server.main_creds()).await;
    assert_eq!(fetched.body["sms_url"], "https://falcon.example.com/sms");

    // An empty value clears a URL.
    let cleared = server
        .post(&path, server.main_creds(), &[("SmsUrl", "")])
        .await;
    assert_eq!(cleared.body["sms_url"], "");
    server
        .post(&path, server.main_creds(), &[("SmsMethod", "PUT")])
        .await
        .assert_error(400, 20001);
    server
        .post(
            &path,
            server.main_creds(),
            &[("SmsFallbackUrl", "ftp://x/y")],
        )
        .await
        .assert_error(400, 21402);
    server
        .post(&path, server.main_creds(), &[("VoiceReceiveMode", "sms")])
        .await
        .assert_error(400, 20001);
    let missing = number_path(MAIN_SID, "PN00000000000000000000000000000000");
    server
        .post(&missing, server.main_creds(), &[("FriendlyName", "x")])
        .await
        .assert_error(404, 20404);
}

#[tokio::test]
async fn the_seeds_transfer_moves_a_number_and_keeps_its_urls() {
    let server = spawn().await;
    server.stock().await;
    let (sub, sub_token) = server.subaccount("FalconFlights").await;
    let sid = server
        .buy(MAIN_SID, "+14155550103", server.main_creds())
        .await;
    server
        .post(
            &number_path(MAIN_SID, &sid),
            server.main_creds(),
            &[
                ("SmsUrl", "https://demo.twilio.com/welcome/sms/reply"),
                ("VoiceUrl", "https://demo.twilio.com/welcome/voice/"),
            ],
        )
        .await;

    // The seeds' step: POST to the parent's path with AccountSid=<subaccount>.
    let moved = server
        .post(
            &number_path(MAIN_SID, &sid),
            server.main_creds(),
            &[("AccountSid", &sub)],
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
    assert_eq!(moved.body["account_sid"], sub.as_str());
    assert_eq!(moved.body["sid"], sid.as_str());
    assert_eq!(
        moved.body["sms_url"],
        "https://demo.twilio.com/welcome/sms/reply"
    );
    assert_eq!(
        moved.body["voice_url"],
        "https://demo.twilio.com/welcome/voice/"
    );
    assert_eq!(moved.body["uri"], number_path(&sub, &sid));

    let parent_list = server
        .get(&numbers_path(MAIN_SID), server.main_creds())
        .await;
    assert!(phone_numbers(&parent_list.body, "incoming_phone_numbers").is_empty());
    server
        .get(&number_path(MAIN_SID, &sid), server.main_creds())
        .await
        .assert_error(404, 20404);
    let sub_list = server.get(&numbers_path(&sub), (&sub, &sub_token)).await;
    assert_eq!(
        phone_numbers(&sub_list.body, "incoming_phone_numbers"),
        vec!["+14155550103"]
    );

    // The subaccount cannot move it anywhere itself.
    server
        .post(
            &number_path(&sub, &sid),
            (&sub, &sub_token),
            &[("AccountSid", MAIN_SID)],
        )
        .await
        .assert_error(400, 21474);
    // Not to an account outside the family, nor to a suspended one.
    server
        .post(
            &number_path(&sub, &sid),
            server.main_creds(),
            &[("AccountSid", "AC00000000000000000000000000000000")],
        )
        .await
        .assert_error(400, 21473);
    let (sibling, _) = server.subaccount("Sibling").await;
    server
        .post(
            &format!("/2010-04-01/Accounts/{sibling}.json"),
            server.main_creds(),
            &[("Status", "suspended")],
        )
        .await;
    server
        .post(
            &number_path(&sub, &sid),
            server.main_creds(),
            &[("AccountSid", &sibling)],
        )
        .await
        .assert_error(400, 21472);
    server
        .post(
            &format!("/2010-04-01/Accounts/{sibling}.json"),
            server.main_creds(),
            &[("Status", "active")],
        )
        .await;
    // Between siblings, by the parent.
    let to_sibling = server
        .post(
            &number_path(&sub, &sid),
            server.main_creds(),
            &[("AccountSid", &sibling)],
        )
        .await;
    assert_eq!(to_sibling.body["account_sid"], sibling.as_str());
    // And back to the parent.
    let back = server
        .post(
            &number_path(&sibling, &sid),
            server.main_creds(),
            &[("AccountSid", MAIN_SID)],
        )
        .await;
    assert_eq!(back.body["account_sid"], MAIN_SID);
    assert_eq!(
        back.body["sms_url"],
        "https://demo.twilio.com/welcome/sms/reply"
    );
}

#[tokio::test]
async fn releasing_returns_the_number_clean_and_closing_releases_all() {
    let server = spawn().await;
    server.stock().await;
    let sid = server
        .buy(MAIN_SID, "+14155550104", server.main_creds())
        .await;
    server
        .post(
            &number_path(MAIN_SID, &sid),
            server.main_creds(),
            &[("SmsUrl", "https://x.example.com/sms")],
        )
        .await;
    let released = server
        .delete(&number_path(MAIN_SID, &sid), server.main_creds())
        .await;
    assert_eq!(released.status, StatusCode::NO_CONTENT);
    server
        .get(&number_path(MAIN_SID, &sid), server.main_creds())
        .await
        .assert_error(404, 20404);
    server
        .delete(&number_path(MAIN_SID, &sid), server.main_creds())
        .await
        .assert_error(404, 20404);
    assert!(
        search(&server, "US/Local.json?Contains=0104%24")
            .await
            .len()
            == 1
    );
    let again = server
        .post(
            &numbers_path(MAIN_SID),
            server.main_creds(),
            &[("PhoneNumber", "+14155550104")],
        )
        .await;
    assert_ne!(again.body["sid"], sid.as_str());
    assert_eq!(again.body["sms_url"], "", "configuration was cleared");

    let (sub, _) = server.subaccount("ClosingSoon").await;
    let held = server.buy(&sub, "+14155550101", server.main_creds()).await;
    server
        .post(
            &format!("/2010-04-01/Accounts/{sub}.json"),
            server.main_creds(),
            &[("Status", "suspended")],
        )
        .await;
    assert_eq!(
        server
            .get(&number_path(&sub, &held), server.main_creds())
            .await
            .status,
        StatusCode::OK
    );
    server
        .post(
            &format!("/2010-04-01/Accounts/{sub}.json"),
            server.main_creds(),
            &[("Status", "closed")],
        )
        .await;
    server
        .get(&number_path(&sub, &held), server.main_creds())
        .await
        .assert_error(404, 20404);
    assert_eq!(
        search(&server, "US/Local.json?Contains=0101%24")
            .await
            .len(),
        2
    );
}

#[tokio::test]
async fn numbers_are_scoped_to_their_account() {
    let server = spawn().await;
    server.stock().await;
    let (a, a_token) = server.subaccount("A").await;
    let (b, b_token) = server.subaccount("B").await;
    let sid = server.buy(&a, "+14155550100", (&a, &a_token)).await;
    // B cannot see or touch A's number, through either account's path.
    server
        .get(&number_path(&a, &sid), (&b, &b_token))
        .await
        .assert_error(401, 20003);
    server
        .get(&number_path(&b, &sid), (&b, &b_token))
        .await
        .assert_error(404, 20404);
    server
        .delete(&number_path(&b, &sid), (&b, &b_token))
        .await
        .assert_error(404, 20404);
    server
        .post(
            &number_path(&b, &sid),
            (&b, &b_token),
            &[("SmsUrl", "https://evil.example.com")],
        )
        .await
        .assert_error(404, 20404);
    let b_list = server.get(&numbers_path(&b), (&b, &b_token)).await;
    assert!(phone_numbers(&b_list.body, "incoming_phone_numbers").is_empty());
    // The parent sees it under A.
    assert_eq!(
        server
            .get(&number_path(&a, &sid), server.main_creds())
            .await
            .status,
        StatusCode::OK
    );
    let main_list = server
        .get(&numbers_path(MAIN_SID), server.main_creds())
        .await;
    assert!(phone_numbers(&main_list.body, "incoming_phone_numbers").is_empty());
}

/// A send `From` a number is checked against the account's numbers through a short-lived
/// cache: releasing the number must take effect for the very next send on this node.
#[tokio::test]
async fn a_released_number_cannot_send_at_once() {
    let server = spawn().await;
    server.stock().await;
    let sid = server
        .buy(MAIN_SID, "+14155550103", server.main_creds())
        .await;
    let path = format!("/2010-04-01/Accounts/{MAIN_SID}/Messages.json");
    let form = [
        ("To", "+14155550199"),
        ("From", "+14155550103"),
        ("Body", "hi"),
    ];
    let sent = server.post(&path, server.main_creds(), &form).await;
    assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.body);
    let released = server
        .delete(&number_path(MAIN_SID, &sid), server.main_creds())
        .await;
    assert_eq!(released.status, StatusCode::NO_CONTENT);
    server
        .post(&path, server.main_creds(), &form)
        .await
        .assert_error(400, 21606);
    // Bought again, it sends at once (a sender not found is never remembered).
    server
        .buy(MAIN_SID, "+14155550103", server.main_creds())
        .await;
    let again = server.post(&path, server.main_creds(), &form).await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
}
