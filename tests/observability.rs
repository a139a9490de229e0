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
    let database = common::fresh_database().await;
    let database_url = database.url.clone();
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
    assert!(lines.len() >= 2, "start-up and request lines: {lines:?}");
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
    // Successful requests (the readiness checks) are logged only at `debug`.
    let request_lines = lines
        .iter()
        .filter(|l| l.contains("\"message\":\"request\""))
        .count();
    assert_eq!(request_lines, 1, "{lines:?}");
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

/// The metrics recorder is the process's, and every test server's main account has the same
/// SID: the tests that send (and read what sending moved) take turns.
static METRICS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

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
    let _serial = METRICS.lock().await;
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
        common::metric_sample(&after, family, labels)
            - common::metric_sample(&before, family, labels)
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
        common::metric_sample(&after, "warbler_queue_messages", &[("state", "due")]),
        0.0
    );
    assert!(after.contains("warbler_queue_messages{state=\"scheduled\"}"));
    assert!(after.contains("warbler_db_pool_connections{"));
    assert!(after.contains("warbler_db_write_group_size_count"));
    assert!(after.contains("warbler_db_commit_duration_seconds_count"));
    assert!(after.contains("warbler_webhook_pending"));
    // On a SQLite file every writer takes turns at one write lock: each turn is counted, by
    // the thread's role. The API's messages are written by the message writer's thread; the
    // dispatcher's and the receipts' transactions above ran on this test's thread ("other").
    if server.database_url.starts_with("sqlite") {
        let messages = [("holder", "messages")];
        assert!(moved("warbler_db_write_lock_held_seconds_count", &messages) >= 1.0);
        assert!(moved("warbler_db_write_lock_held_seconds_sum", &messages) > 0.0);
        assert!(moved("warbler_db_write_lock_wait_seconds_count", &messages) >= 1.0);
        let other = [("holder", "other")];
        assert!(moved("warbler_db_write_lock_held_seconds_count", &other) >= 2.0);
    }
}

#[tokio::test]
async fn metrics_need_the_main_auth_token_or_their_own_listener() {
    let _serial = METRICS.lock().await;
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

    // Unknown paths and invented methods share one series: a client cannot add series.
    for (method, path) in [
        ("BREW", "/coffee/1"),
        ("BREW", "/coffee/2"),
        ("GET", "/x/y"),
    ] {
        let reply = server
            .raw(
                axum::http::Request::builder()
                    .method(method)
                    .uri(path)
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(reply.status, 404);
    }
    let text = scrape(&server).await;
    assert_eq!(
        common::metric_sample(
            &text,
            "warbler_http_requests_total",
            &[
                ("group", "unmatched"),
                ("method", "other"),
                ("status", "404")
            ]
        ),
        2.0
    );
    assert!(!text.contains("BREW") && !text.contains("coffee"));

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
    let _serial = METRICS.lock().await;
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
        common::metric_sample(&after, family, labels)
            - common::metric_sample(&before, family, labels)
    };
    let smsc_route = [("route", "smsc")];
    assert_eq!(
        common::metric_sample(&after, "warbler_smpp_sessions_bound", &smsc_route),
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
        common::metric_sample(&after, "warbler_smpp_window_in_use", &smsc_route),
        0.0
    );
    // The webhook counters are the process's (other tests' servers may share it): at least ours.
    assert!(moved("warbler_webhook_attempts_total", &[]) >= 2.0);
    assert!(moved("warbler_webhook_duration_seconds_count", &[]) >= 2.0);
}

/// A mail as the sink received it: its recipients and its data (headers and body).
type Mail = (Vec<String>, String);

/// A tiny SMTP server that accepts every mail and keeps it.
#[derive(Clone, Default)]
struct SmtpSink {
    mails: std::sync::Arc<std::sync::Mutex<Vec<Mail>>>,
}

impl SmtpSink {
    async fn start() -> (SmtpSink, u16) {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let sink = SmtpSink::default();
        let mails = sink.mails.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    break;
                };
                let mails = mails.clone();
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut lines = tokio::io::BufReader::new(read).lines();
                    let _ = write.write_all(b"220 sink ESMTP\r\n").await;
                    let (mut to, mut data, mut in_data) = (Vec::new(), String::new(), false);
                    while let Ok(Some(line)) = lines.next_line().await {
                        if in_data {
                            if line == "." {
                                in_data = false;
                                let mail = (std::mem::take(&mut to), std::mem::take(&mut data));
                                mails.lock().unwrap().push(mail);
                                let _ = write.write_all(b"250 queued\r\n").await;
                            } else {
                                data.push_str(&line);
                                data.push('\n');
                            }
                            continue;
                        }
                        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                        let reply: &[u8] = match verb.as_str() {
                            "EHLO" | "HELO" => b"250 sink\r\n",
                            "RCPT" => {
                                to.push(line[line.find('<').unwrap_or(0)..].to_string());
                                b"250 ok\r\n"
                            }
                            "DATA" => {
                                in_data = true;
                                b"354 go on\r\n"
                            }
                            "QUIT" => {
                                let _ = write.write_all(b"221 bye\r\n").await;
                                break;
                            }
                            _ => b"250 ok\r\n",
                        };
                        let _ = write.write_all(reply).await;
                    }
                });
            }
        });
        (sink, port)
    }

    fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }
}

/// A server whose alarms can e-mail through `smtp_port`.
async fn spawn_with_mailer(smtp_port: u16) -> common::TestServer {
    let database = common::fresh_database().await;
    let store = warbler::store::Store::connect(&database.url).await.unwrap();
    let app = warbler::service::App::new(
        store,
        warbler::service::Settings {
            simulated_latency: 2_000_000,
            webhooks: warbler::webhook::WebhookSettings {
                allow_private_targets: true,
                connect_timeout: Duration::from_secs(2),
                timeout: Duration::from_secs(5),
            },
            mailer: Some(
                warbler::mail::Mailer::new(
                    &format!("smtp://127.0.0.1:{smtp_port}"),
                    "warbler <alarms@warbler.test>",
                )
                .unwrap(),
            ),
            ..warbler::service::Settings::new(1000, "test-pepper".into())
        },
    );
    app.ensure_main_account(Some(common::MAIN_SID), Some(common::MAIN_TOKEN), "Alarms")
        .await
        .unwrap();
    common::TestServer::from_app(app).holding(database)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_fires_once_on_the_third_undelivered_message_and_clears() {
    let _serial = METRICS.lock().await;
    let (sink, smtp_port) = SmtpSink::start().await;
    let server = spawn_with_mailer(smtp_port).await;
    let app = &server.app;
    server.stock().await;
    server
        .buy(common::MAIN_SID, "+14155550100", server.main_creds())
        .await;
    let hooks = common::receiver::Receiver::start().await;
    let created = server
        .post(
            "/warbler/v1/Alarms",
            server.main_creds(),
            &[
                ("FriendlyName", "Unreachable handsets"),
                ("ErrorCode", "30003"),
                ("Threshold", "3"),
                ("WindowMinutes", "5"),
                ("WebhookUrl", &hooks.url("/alarm")),
                ("Email", "ops@example.com"),
                ("Email", "oncall@example.com"),
            ],
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let alarm = created.body["sid"].as_str().unwrap().to_string();
    assert!(alarm.starts_with("AL"));
    assert_eq!(created.body["state"], "ok");
    assert_eq!(created.body["scope_sid"], common::MAIN_SID);

    // Each message to +15005550030 ends undelivered (30003) 2 s after its send.
    let messages = format!("/2010-04-01/Accounts/{}/Messages.json", common::MAIN_SID);
    let mut now = warbler::domain::time::now_micros();
    for sent in 1..=3 {
        let reply = server
            .post(
                &messages,
                server.main_creds(),
                &[
                    ("To", "+15005550030"),
                    ("From", "+14155550100"),
                    ("Body", "Hi"),
                ],
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        now += 1_000_000; // the sender's pacing slot
        assert_eq!(app.dispatch_once(now).await.unwrap(), 1);
        now += 2_000_000;
        assert_eq!(app.apply_receipts(now).await.unwrap(), 1);
        // Two evaluators at once (two nodes, say): the crossing is recorded once.
        let (a, b) = tokio::join!(app.evaluate_alarms(now), app.evaluate_alarms(now));
        let changed = a.unwrap() + b.unwrap();
        assert_eq!(changed, usize::from(sent == 3), "after message {sent}");
    }
    assert_eq!(app.evaluate_alarms(now).await.unwrap(), 0, "fires once");
    let fetched = server
        .get(&format!("/warbler/v1/Alarms/{alarm}"), server.main_creds())
        .await;
    assert_eq!(fetched.body["state"], "firing");

    // The webhook, signed, and the e-mail (queued at the evaluation's time).
    app.deliver_webhooks_once(now).await.unwrap();
    let hits = hooks.hits("/alarm");
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].get("State"), Some("firing"));
    assert_eq!(hits[0].get("AlarmSid"), Some(alarm.as_str()));
    assert_eq!(hits[0].get("ErrorCode"), Some("30003"));
    assert_eq!(hits[0].get("Value"), Some("3"));
    hooks.assert_signed(common::MAIN_TOKEN);
    assert_eq!(app.send_alarm_emails(now).await.unwrap(), 1);
    let mails = sink.mails();
    assert_eq!(mails.len(), 1);
    assert_eq!(
        mails[0].0,
        vec![
            "<ops@example.com>".to_string(),
            "<oncall@example.com>".to_string()
        ]
    );
    assert!(
        mails[0]
            .1
            .contains("Subject: [warbler] alarm Unreachable handsets firing"),
        "{}",
        mails[0].1
    );
    assert!(
        mails[0].1.contains("3 errors of 3 messages"),
        "{}",
        mails[0].1
    );
    assert_eq!(app.send_alarm_emails(now).await.unwrap(), 0, "sent once");

    // Five minutes later the errors have left the window: it clears, once.
    let later = now + 6 * 60_000_000;
    assert_eq!(app.evaluate_alarms(later).await.unwrap(), 1);
    assert_eq!(app.evaluate_alarms(later).await.unwrap(), 0);
    app.deliver_webhooks_once(later).await.unwrap();
    let hits = hooks.hits("/alarm");
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[1].get("State"), Some("cleared"));
    hooks.assert_signed(common::MAIN_TOKEN);
    assert_eq!(app.send_alarm_emails(later).await.unwrap(), 1);
    assert!(sink.mails()[1].1.contains("cleared"));

    let firings = server
        .get(
            &format!("/warbler/v1/Alarms/{alarm}/Firings"),
            server.main_creds(),
        )
        .await;
    assert_eq!(firings.status, 200, "{}", firings.body);
    let firings = firings.body["firings"].as_array().unwrap().clone();
    assert_eq!(firings.len(), 2);
    assert_eq!(firings[0]["state"], "firing");
    assert_eq!(firings[0]["errors"], 3);
    assert_eq!(firings[0]["email_status"], "sent");
    assert_eq!(firings[1]["state"], "cleared");
    let fetched = server
        .get(&format!("/warbler/v1/Alarms/{alarm}"), server.main_creds())
        .await;
    assert_eq!(fetched.body["state"], "ok");
}

#[tokio::test]
async fn alarms_are_checked_scoped_to_their_account_and_editable() {
    let _serial = METRICS.lock().await;
    let server = common::spawn().await;
    let main = server.main_creds();
    let (sub, sub_token) = server.subaccount("Tenant").await;
    let (other, other_token) = server.subaccount("Other tenant").await;
    let create = |form: Vec<(&'static str, String)>| {
        let server = &server;
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            server.post("/warbler/v1/Alarms", main, &form).await
        }
    };
    let base = || {
        vec![
            ("Threshold", "3".to_string()),
            ("WindowMinutes", "5".to_string()),
        ]
    };
    // The first value of a parameter counts: the extras go before the defaults.
    let with = |extra: &[(&'static str, &str)]| {
        let mut form: Vec<(&'static str, String)> =
            extra.iter().map(|(k, v)| (*k, v.to_string())).collect();
        form.extend(base());
        form
    };
    // Bad input: Twilio-shaped errors.
    create(vec![("WindowMinutes", "5".into())])
        .await
        .assert_error(400, 20001);
    create(with(&[("WindowMinutes", "4")]))
        .await
        .assert_error(400, 20001);
    create(with(&[("WindowMinutes", "1441")]))
        .await
        .assert_error(400, 20001);
    create(with(&[("ErrorCode", "abc")]))
        .await
        .assert_error(400, 20001);
    create(with(&[
        ("ThresholdType", "percentage"),
        ("Threshold", "101"),
    ]))
    .await
    .assert_error(400, 20001);
    create(with(&[("WebhookUrl", "ftp://example.com/x")]))
        .await
        .assert_error(400, 21402);
    create(with(&[("Email", "not an address")]))
        .await
        .assert_error(400, 20001);
    // No SMTP relay configured: e-mail targets are refused, not silently dropped.
    create(with(&[("Email", "ops@example.com")]))
        .await
        .assert_error(400, 20001);
    // A scope outside the account's family.
    let foreign = "AC00000000000000000000000000000000";
    create(with(&[("ScopeSid", foreign)]))
        .await
        .assert_error(400, 20001);

    // The parent sets one on its subaccount; a percentage of any error.
    let created = create(with(&[
        ("ScopeSid", &sub),
        ("ThresholdType", "percentage"),
        ("Threshold", "12.5"),
        ("ErrorCode", "any"),
    ]))
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let sid = created.body["sid"].as_str().unwrap().to_string();
    assert_eq!(created.body["scope_sid"], sub.as_str());
    assert_eq!(created.body["threshold"], "12.5");
    assert_eq!(created.body["error_code"], "any");
    assert_eq!(created.body["window_minutes"], 5);
    assert_eq!(
        created.body["links"]["firings"],
        format!("{}/warbler/v1/Alarms/{sid}/Firings", common::PUBLIC_URL)
    );
    let path = format!("/warbler/v1/Alarms/{sid}");

    // Subaccounts see only their own alarms.
    let listed = server.get("/warbler/v1/Alarms", (&sub, &sub_token)).await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.body["alarms"].as_array().unwrap().len(), 0);
    server
        .get(&path, (&other, &other_token))
        .await
        .assert_error(404, 20404);
    let listed = server.get("/warbler/v1/Alarms", main).await;
    assert_eq!(listed.body["alarms"][0]["sid"], sid.as_str());

    let updated = server
        .post(
            &path,
            main,
            &[("WindowMinutes", "60"), ("FriendlyName", "Tenant errors")],
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    assert_eq!(updated.body["window_minutes"], 60);
    assert_eq!(updated.body["friendly_name"], "Tenant errors");
    assert_eq!(updated.body["threshold"], "12.5");
    // Switching to a count keeps a threshold only if it is a whole count.
    server
        .post(&path, main, &[("ThresholdType", "count")])
        .await
        .assert_error(400, 20001);

    assert_eq!(server.delete(&path, main).await.status, 204);
    server.get(&path, main).await.assert_error(404, 20404);
    server
        .get(&format!("{path}/Firings"), main)
        .await
        .assert_error(404, 20404);
}
