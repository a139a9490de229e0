//! Interoperability with an SMPP implementation warbler did not write: the npm package `smpp`
//! (0.5.1, installed in `interop/` by the test command). Its server plays the carrier for
//! warbler's client; its client binds to `warbler smsc`.

mod common;

use axum::http::StatusCode;
use common::receiver::Receiver;
use common::smpp::{route, send, smsc_on, start, wait_for};
use common::MAIN_SID;
use serde_json::Value;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

fn interop_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("interop");
    assert!(
        dir.join("node_modules/smpp").exists(),
        "npm smpp is not installed: run `npm ci --prefix interop` (scripts/test.sh does)"
    );
    dir
}

/// npm smpp's server as an SMSC; returns the child and its SMPP and HTTP ports.
async fn node_smsc() -> (Child, u16, u16) {
    let dir = interop_dir();
    let mut child = Command::new("node")
        .arg(dir.join("smsc.js"))
        .env("PORT", "0")
        .env("HTTP_PORT", "0")
        .env("SMPP_USER", "warbler")
        .env("SMPP_PASS", "secret")
        .env("RECEIPT_DELAY_MS", "50")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("run node (Node.js must be installed)");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let ready = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("smsc.js ready in time")
        .expect("read smsc.js")
        .expect("a ready line");
    let ready: Value = serde_json::from_str(&ready).expect("JSON ready line");
    assert_eq!(ready["event"], "ready", "{ready}");
    // Keep draining its stdout so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (
        child,
        ready["port"].as_u64().unwrap() as u16,
        ready["http_port"].as_u64().unwrap() as u16,
    )
}

#[tokio::test]
async fn warbler_sends_and_receives_through_the_npm_smpp_server() {
    let (_child, port, http_port) = node_smsc().await;
    let running = start(vec![route(port)]).await;
    let server = &running.server;
    let carrier = server.app.carrier.smpp_route("smsc").unwrap();
    assert!(
        carrier.wait_bound(Duration::from_secs(10)).await,
        "bound to npm smpp"
    );

    let short = send(
        server,
        &[
            ("To", "+14155550199"),
            ("From", "+14155550100"),
            ("Body", "Hi there"),
        ],
    )
    .await;
    let long_body = format!("{} — ünïcode tail", "long message ".repeat(8));
    let long = send(
        server,
        &[
            ("To", "+14155550199"),
            ("From", "+14155550100"),
            ("Body", &long_body),
        ],
    )
    .await;
    let unreachable = send(
        server,
        &[
            ("To", "+14155550030"),
            ("From", "+14155550100"),
            ("Body", "nobody home"),
        ],
    )
    .await;
    wait_for(server, short["sid"].as_str().unwrap(), "delivered", 20).await;
    wait_for(server, long["sid"].as_str().unwrap(), "delivered", 20).await;
    let failed = wait_for(
        server,
        unreachable["sid"].as_str().unwrap(),
        "undelivered",
        20,
    )
    .await;
    assert_eq!(failed["error_code"], 30003);

    // What the npm server decoded is what was sent.
    let http = reqwest::Client::new();
    let submits: Vec<Value> = http
        .get(format!("http://127.0.0.1:{http_port}/submits"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let texts: Vec<&str> = submits.iter().filter_map(|s| s["text"].as_str()).collect();
    assert!(texts.contains(&"Hi there"), "{submits:?}");
    let long_parts: Vec<&Value> = submits.iter().filter(|s| s["udh"].is_string()).collect();
    assert_eq!(long_parts.len(), 2, "{submits:?}");
    let joined: String = long_parts
        .iter()
        .filter_map(|s| s["text"].as_str())
        .collect();
    assert_eq!(joined, long_body);
    assert!(long_parts.iter().all(|s| s["data_coding"] == 8));

    // A handset's reply arrives as an inbound message at the number's webhook.
    let hooks = Receiver::start().await;
    let numbers = server
        .get(
            &format!("/2010-04-01/Accounts/{MAIN_SID}/IncomingPhoneNumbers.json?PhoneNumber=%2B14155550100"),
            server.main_creds(),
        )
        .await;
    let number_sid = numbers.body["incoming_phone_numbers"][0]["sid"]
        .as_str()
        .unwrap()
        .to_string();
    let reply = server
        .post(
            &format!("/2010-04-01/Accounts/{MAIN_SID}/IncomingPhoneNumbers/{number_sid}.json"),
            server.main_creds(),
            &[("SmsUrl", &hooks.url("/sms"))],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let mo = http
        .post(format!("http://127.0.0.1:{http_port}/mo"))
        .json(
            &serde_json::json!({"from": "14155550199", "to": "14155550100", "text": "thanks @ 5$"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(mo.status(), 200, "{:?}", mo.text().await);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let hits = hooks.hits("/sms");
        if let Some(hit) = hits.first() {
            assert_eq!(hit.get("Body"), Some("thanks @ 5$"));
            assert_eq!(hit.get("From"), Some("+14155550199"));
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no inbound webhook");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_npm_smpp_client_works_against_warbler_smsc() {
    let dir = interop_dir();
    let smsc = smsc_on(0, false).await;
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        Command::new("node")
            .arg(dir.join("client.js"))
            .env(
                "SMPP_URL",
                format!("smpp://127.0.0.1:{}", smsc.local_addr.port()),
            )
            .env("SMPP_USER", "warbler")
            .env("SMPP_PASS", "secret")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("client.js finished in time")
    .expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "client.js failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let last: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["event"], "ok", "{stdout}");
    // The simulator saw the submits the client made: the plain one, the refused one, the two
    // parts of the long one.
    let submits = smsc.submits();
    assert_eq!(submits.len(), 4, "{submits:?}");
    assert_eq!(submits[1].status, 0x0B);
    assert_eq!(submits[2].concat.map(|c| (c.1, c.2)), Some((2, 1)));
    assert_eq!(submits[3].concat.map(|c| (c.1, c.2)), Some((2, 2)));
    // client.js itself checked the receipt of its first message.
    assert!(smsc.stats().receipts_sent >= 1);
}
