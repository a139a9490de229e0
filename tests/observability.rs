//! Observability: request ids and JSON logs from the real binary, `/metrics` moving with a
//! send, and alarms on error rates.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Lines a child wrote to stderr, collected by a thread as they come.
fn collect_lines(
    stream: impl std::io::Read + Send + 'static,
) -> std::sync::Arc<std::sync::Mutex<Vec<String>>> {
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            sink.lock().unwrap().push(line);
        }
    });
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_per_line_and_carry_the_request_id() {
    let database_url = common::fresh_database_url().await;
    let dir = std::env::temp_dir().join(format!(
        "warbler-logs-{}",
        warbler::domain::sid::random_hex32()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let port = common::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_warbler"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--database-url",
            &database_url,
        ])
        .current_dir(&dir)
        .env_remove("WARBLER_CONFIG")
        .env("WARBLER_ACCOUNT_SID", common::MAIN_SID)
        .env("WARBLER_AUTH_TOKEN", common::MAIN_TOKEN)
        .env("WARBLER_LOG_FORMAT", "json")
        .env("WARBLER_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start warbler");
    let lines = collect_lines(child.stderr.take().unwrap());
    warbler::webhook::install_crypto_provider();
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = client.get(format!("{base}/healthz")).send().await {
            if r.status().is_success() {
                break;
            }
        }
        assert!(Instant::now() < deadline, "warbler did not become ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let reply = client
        .get(format!(
            "{base}/2010-04-01/Accounts/{}/Messages/SM00000000000000000000000000000000.json",
            common::MAIN_SID
        ))
        .basic_auth(common::MAIN_SID, Some(common::MAIN_TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 404);
    let request_id = reply
        .headers()
        .get("Twilio-Request-Id")
        .expect("a Twilio-Request-Id header")
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(request_id.len(), 34);
    assert!(request_id.starts_with("RQ"));
    assert!(request_id[2..].bytes().all(|b| b.is_ascii_hexdigit()));

    // The request's line is written once the response is; wait for it, then stop.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !lines
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains(&request_id))
    {
        assert!(Instant::now() < deadline, "no log line with {request_id}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);

    let lines = lines.lock().unwrap().clone();
    assert!(lines.len() >= 3, "start-up and request lines: {lines:?}");
    let mut found = None;
    for line in &lines {
        let object: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|err| panic!("not one JSON object per line ({err}): {line}"));
        for field in ["timestamp", "level", "target"] {
            assert!(object[field].is_string(), "{field} missing: {line}");
        }
        if object["request_id"] == request_id.as_str() {
            found = Some(object);
        }
    }
    let line = found.expect("the request's line");
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["message"], "request");
    assert_eq!(line["method"], "GET");
    assert_eq!(
        line["path"],
        format!(
            "/2010-04-01/Accounts/{}/Messages/SM00000000000000000000000000000000.json",
            common::MAIN_SID
        )
    );
    assert_eq!(line["status"], 404);
    assert_eq!(line["account_sid"], common::MAIN_SID);
    assert!(
        line["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0),
        "{line}"
    );
}

/// The value of the sample of `family` whose labels include `labels` (0 when absent: a
/// counter not yet incremented is not rendered).
fn sample(text: &str, family: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (name, rest) = match series.split_once('{') {
                Some((name, rest)) => (name, rest),
                None => (series, ""),
            };
            (name == family
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\""))))
            .then(|| value.parse::<f64>().unwrap())
        })
        .sum()
}

async fn scrape(server: &common::TestServer) -> String {
    let reply = server.get("/metrics", server.main_creds()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.headers["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    reply.body.as_str().unwrap().to_string()
}

#[tokio::test]
async fn metrics_count_a_send_by_account_status_and_error_code() {
    let server = common::spawn().await;
    server.stock().await;
    server
        .buy(common::MAIN_SID, "+14155550100", server.main_creds())
        .await;
    let before = scrape(&server).await;
    let messages = format!("/2010-04-01/Accounts/{}/Messages.json", common::MAIN_SID);
    for to in ["+14155550199", "+15005550030", "+15005550080"] {
        let reply = server
            .post(
                &messages,
                server.main_creds(),
                &[("To", to), ("From", "+14155550100"), ("Body", "Hi")],
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
    }
    // The sender paces its messages at one per second: rounds a second apart send them all.
    let t0 = warbler::domain::time::now_micros();
    for second in 0..4 {
        server
            .app
            .dispatch_once(t0 + second * 1_000_000)
            .await
            .unwrap();
    }
    // The simulated carrier reports 2 s after each send: delivered and undelivered (30003).
    assert_eq!(server.app.apply_receipts(t0 + 10_000_000).await.unwrap(), 2);
    let after = scrape(&server).await;

    let moved = |family: &str, labels: &[(&str, &str)]| {
        sample(&after, family, labels) - sample(&before, family, labels)
    };
    let main = ("account", common::MAIN_SID);
    assert_eq!(moved("warbler_messages_accepted_total", &[main]), 3.0);
    assert_eq!(
        moved("warbler_message_accept_duration_seconds_count", &[]),
        3.0
    );
    // The refused one (30008) never reached the carrier.
    assert_eq!(moved("warbler_segments_sent_total", &[main]), 2.0);
    assert_eq!(
        moved("warbler_message_accepted_to_sent_seconds_count", &[]),
        2.0
    );
    for (status, code) in [
        ("delivered", "0"),
        ("undelivered", "30003"),
        ("failed", "30008"),
    ] {
        assert_eq!(
            moved(
                "warbler_messages_final_total",
                &[main, ("status", status), ("error_code", code)]
            ),
            1.0,
            "{status} {code}"
        );
    }
    assert_eq!(
        moved("warbler_message_accepted_to_delivered_seconds_count", &[]),
        1.0
    );
    // HTTP requests by route template, not by raw path.
    assert_eq!(
        moved(
            "warbler_http_requests_total",
            &[
                ("group", "/2010-04-01/Accounts/{AccountSid}/Messages"),
                ("method", "POST"),
                ("status", "201")
            ]
        ),
        3.0
    );
    assert_eq!(
        sample(&after, "warbler_queue_messages", &[("state", "due")]),
        0.0
    );
    assert!(after.contains("warbler_queue_messages{state=\"scheduled\"}"));
    assert!(after.contains("warbler_db_pool_connections{"));
    assert!(after.contains("warbler_db_write_group_size_count"));
    assert!(after.contains("warbler_db_commit_duration_seconds_count"));
    assert!(after.contains("warbler_webhook_pending"));
}

#[tokio::test]
async fn metrics_need_the_main_auth_token_or_their_own_listener() {
    let server = common::spawn().await;
    let anonymous = server
        .raw(
            axum::http::Request::builder()
                .uri("/metrics")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    anonymous.assert_error(401, 20003);
    assert!(anonymous.headers.contains_key("twilio-request-id"));
    let (sub, token) = server.subaccount("Tenant").await;
    server
        .get("/metrics", (&sub, &token))
        .await
        .assert_error(403, 20403);
    assert_eq!(
        server.get("/metrics", server.main_creds()).await.status,
        200
    );

    // `metrics_listen`'s router asks for nothing.
    use tower::ServiceExt;
    let response = warbler::api::metrics_router(server.app.clone())
        .oneshot(
            axum::http::Request::builder()
                .uri("/metrics")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_an_smpp_route_and_its_webhooks() {
    use common::smpp::{route, smsc_on, start, wait_for};
    let smsc = smsc_on(0, false).await;
    let running = start(vec![route(smsc.local_addr.port())]).await;
    let server = &running.server;
    let smpp = server.app.carrier.smpp_route("smsc").unwrap();
    assert!(
        smpp.wait_bound(Duration::from_secs(10)).await,
        "never bound"
    );
    let hooks = common::receiver::Receiver::start().await;
    let before = scrape(server).await;
    let body = common::smpp::send(
        server,
        &[
            ("To", "+14155550199"),
            ("From", "+14155550100"),
            ("Body", "Hi there"),
            ("StatusCallback", &hooks.url("/status")),
        ],
    )
    .await;
    wait_for(server, body["sid"].as_str().unwrap(), "delivered", 15).await;
    // The callbacks for sent and delivered.
    let deadline = Instant::now() + Duration::from_secs(10);
    while hooks.hits("/status").len() < 2 {
        assert!(Instant::now() < deadline, "callbacks never came");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let after = scrape(server).await;
    let moved = |family: &str, labels: &[(&str, &str)]| {
        sample(&after, family, labels) - sample(&before, family, labels)
    };
    let smsc_route = [("route", "smsc")];
    assert_eq!(
        sample(&after, "warbler_smpp_sessions_bound", &smsc_route),
        1.0
    );
    assert_eq!(moved("warbler_smpp_submits_total", &smsc_route), 1.0);
    assert_eq!(moved("warbler_smpp_receipts_total", &smsc_route), 1.0);
    assert_eq!(
        moved("warbler_smpp_submit_response_seconds_count", &smsc_route),
        1.0
    );
    assert_eq!(moved("warbler_smpp_rejected_total", &smsc_route), 0.0);
    assert_eq!(
        sample(&after, "warbler_smpp_window_in_use", &smsc_route),
        0.0
    );
    // The webhook counters are the process's (other tests' servers may share it): at least ours.
    assert!(moved("warbler_webhook_attempts_total", &[]) >= 2.0);
    assert!(moved("warbler_webhook_duration_seconds_count", &[]) >= 2.0);
}
