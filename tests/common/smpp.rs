//! SMPP test helpers: a warbler with SMPP routes and its background workers running, and
//! `warbler smsc` in-process.

use super::{fresh_database, TestServer, MAIN_SID, MAIN_TOKEN};
use axum::http::StatusCode;
use serde_json::Value;
use std::time::Duration;
use warbler::carrier::smpp::route::SmppRouteConfig;
use warbler::service::{App, Settings};
use warbler::smsc::{Smsc, SmscConfig, ThrottleSettings};
use warbler::store::Store;

pub struct Running {
    pub server: TestServer,
    stop: tokio::sync::watch::Sender<bool>,
}

impl Running {
    /// Stops the dispatcher and the webhook sender (the API keeps serving).
    pub fn stop_engine(&self) {
        let _ = self.stop.send(true);
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

pub async fn smsc_on(port: u16, decimal_receipt_ids: bool) -> Smsc {
    Smsc::start(smsc_config(port, decimal_receipt_ids))
        .await
        .expect("start the SMSC simulator")
}

/// The simulator's settings in these tests: `warbler`/`secret`, receipts after 50 ms.
pub fn smsc_config(port: u16, decimal_receipt_ids: bool) -> SmscConfig {
    SmscConfig {
        listen: format!("127.0.0.1:{port}").parse().unwrap(),
        system_id: "warbler".into(),
        password: "secret".into(),
        receipt_delay: Duration::from_millis(50),
        response_delay: Duration::ZERO,
        decimal_receipt_ids,
        bind_timeout: Duration::from_secs(10),
        bind_throttle: ThrottleSettings {
            failures_before_backoff: 3,
            backoff: Duration::from_secs(1),
        },
    }
}

pub fn route(port: u16) -> SmppRouteConfig {
    SmppRouteConfig {
        name: "smsc".into(),
        port,
        system_id: "warbler".into(),
        password: "secret".into(),
        // The fixture's stock numbers carry the inventory route `sim`.
        number_routes: vec!["sim".into()],
        response_timeout_ms: 500,
        throttle_pause_ms: 200,
        enquire_link_secs: 5,
        ..SmppRouteConfig::default()
    }
}

/// A warbler with these SMPP routes, its dispatcher and webhook sender running.
pub async fn start(routes: Vec<SmppRouteConfig>) -> Running {
    start_with(routes, |_| {}).await
}

/// `start`, with settings changed by `adjust` first.
pub async fn start_with(
    routes: Vec<SmppRouteConfig>,
    adjust: impl FnOnce(&mut Settings),
) -> Running {
    let database = fresh_database().await;
    let store = Store::connect(&database.url).await.expect("open store");
    let mut settings = Settings {
        simulated_latency: 50_000,
        webhooks: warbler::webhook::WebhookSettings {
            allow_private_targets: true,
            connect_timeout: Duration::from_secs(2),
            timeout: Duration::from_secs(5),
        },
        webhook_retry_base: 100_000,
        pacing: warbler::domain::message::Pacing {
            long_code: 1000.0,
            toll_free: 1000.0,
            short_code: 1000.0,
            alpha: 1000.0,
        },
        smpp_routes: routes,
        ..Settings::new(1000, "test-pepper".into())
    };
    adjust(&mut settings);
    let app = App::new(store, settings);
    app.ensure_main_account(Some(MAIN_SID), Some(MAIN_TOKEN), "SMPP tests")
        .await
        .expect("main account");
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn({
        let app = app.clone();
        let stopped = stopped.clone();
        async move { app.run_workers(stopped).await }
    });
    tokio::spawn({
        let app = app.clone();
        async move { app.run_webhooks(stopped).await }
    });
    let server = TestServer::from_app(app).holding(database);
    server.stock().await;
    server
        .buy(MAIN_SID, "+14155550100", server.main_creds())
        .await;
    Running { server, stop }
}

pub async fn send(server: &TestServer, form: &[(&str, &str)]) -> Value {
    let reply = server
        .post(
            &format!("/2010-04-01/Accounts/{MAIN_SID}/Messages.json"),
            server.main_creds(),
            form,
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body
}

pub async fn message(server: &TestServer, sid: &str) -> Value {
    let reply = server
        .get(
            &format!("/2010-04-01/Accounts/{MAIN_SID}/Messages/{sid}.json"),
            server.main_creds(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body
}

/// Waits until the message reaches `status` (panics with its last state after `secs`).
pub async fn wait_for(server: &TestServer, sid: &str, status: &str, secs: u64) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let body = message(server, sid).await;
        if body["status"] == status {
            return body;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("{sid} never became {status}: {body}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `warbler smsc` as a child process, killed when dropped (tests that kill -9 an SMSC).
pub struct ChildSmsc {
    child: std::process::Child,
    pub smpp_port: u16,
    pub control: String,
}

impl ChildSmsc {
    /// Starts it on `smpp_port` and waits (at most 20 s) until its control endpoint answers.
    pub async fn start(smpp_port: u16, receipt_delay_ms: u64, response_delay_ms: u64) -> ChildSmsc {
        let control_port = super::free_port();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_warbler"))
            .args([
                "smsc",
                "--smpp-listen",
                &format!("127.0.0.1:{smpp_port}"),
                "--receipt-delay-ms",
                &receipt_delay_ms.to_string(),
                "--response-delay-ms",
                &response_delay_ms.to_string(),
                "--control",
                &format!("127.0.0.1:{control_port}"),
            ])
            .env("WARBLER_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn warbler smsc");
        let mut smsc = ChildSmsc {
            child,
            smpp_port,
            control: format!("http://127.0.0.1:{control_port}"),
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while smsc.try_get("/stats").await.is_none() {
            if let Ok(Some(status)) = smsc.child.try_wait() {
                panic!("warbler smsc exited: {status}");
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "warbler smsc never answered"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        smsc
    }

    async fn try_get(&self, path: &str) -> Option<Value> {
        warbler::webhook::install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .ok()?;
        let reply = client
            .get(format!("{}{path}", self.control))
            .send()
            .await
            .ok()?;
        reply.json().await.ok()
    }

    /// A control endpoint's JSON (`/stats`, `/submits`).
    pub async fn get(&self, path: &str) -> Value {
        self.try_get(path)
            .await
            .expect("the SMSC's control endpoint")
    }

    /// SIGKILL: sessions drop without an unbind, nothing is flushed.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildSmsc {
    fn drop(&mut self) {
        self.kill9();
    }
}
