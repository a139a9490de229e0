//! Observability: request ids and JSON logs from the real binary, `/metrics` moving with a
//! send, and alarms on error rates.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Lines a child wrote to stderr, collected by a thread as they come.
fn collect_lines(stream: impl std::io::Read + Send + 'static) -> std::sync::Arc<std::sync::Mutex<Vec<String>>> {
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
    while !lines.lock().unwrap().iter().any(|l| l.contains(&request_id)) {
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
    assert!(line["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0), "{line}");
}
