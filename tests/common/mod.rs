//! Test fixture: a warbler API on a fresh database, driven in-process through its tower service.
//! `TEST_DATABASE_URL` chooses the database: unset or `sqlite…` → a new SQLite file;
//! `postgres://…` → a new database created on that server for each test; either goes when the
//! test ends (`TestDatabase`).
#![allow(dead_code)]

pub mod receiver;
pub mod smpp;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use base64::Engine;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;
use warbler::api::{self, HttpSettings};
use warbler::service::{App, Settings};
use warbler::store::Store;

pub const MAIN_SID: &str = "AC0123456789abcdef0123456789abcdef";
pub const PUBLIC_URL: &str = "https://warbler.test:8443";
pub const MAIN_TOKEN: &str = "fedcba9876543210fedcba9876543210";

pub struct TestServer {
    pub app: App,
    /// The database the app was opened on (empty for an app built by the test).
    pub database_url: String,
    /// Declared after `app`, so it is dropped after the app lets go of it.
    database: Option<TestDatabase>,
    router: axum::Router,
    service: axum::routing::RouterIntoService<Body>,
    pub main: (String, String),
}

/// The API served on a local port by `api::server::serve`, as `warbler serve` serves it;
/// shut down when dropped.
pub struct Listening {
    pub addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Listening {
    /// Starts the graceful shutdown; the handle completes when the server has returned.
    pub fn shut_down(&mut self) -> tokio::task::JoinHandle<std::io::Result<()>> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.served.take().expect("shut down once")
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub struct Options {
    pub max_subaccounts: u32,
    pub rate_limit_per_second: u32,
    pub rate_limit_burst: u32,
    pub failed_auth_limit: u32,
    pub max_body_bytes: usize,
    pub a2p_enforcement: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_subaccounts: 1000,
            rate_limit_per_second: 0,
            rate_limit_burst: 0,
            failed_auth_limit: 0,
            max_body_bytes: 64 * 1024,
            a2p_enforcement: false,
        }
    }
}

/// A database no other test uses, dropped (PostgreSQL) or deleted (SQLite) with this guard:
/// a run creates over 400, and left behind they filled a small CI disk.
pub struct TestDatabase {
    pub url: String,
    /// The server's admin URL and the database's name, for a PostgreSQL database.
    postgres: Option<(String, String)>,
}

pub async fn fresh_database() -> TestDatabase {
    let base = std::env::var("TEST_DATABASE_URL").unwrap_or_default();
    let name = format!("warbler_test_{}", warbler::domain::sid::random_hex32());
    if base.starts_with("postgres") {
        sqlx::any::install_default_drivers();
        let admin = sqlx::AnyPool::connect(&base)
            .await
            .expect("connect to TEST_DATABASE_URL");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .expect("create test database");
        admin.close().await;
        let (server, _) = base
            .rsplit_once('/')
            .expect("postgres URL with a database name");
        TestDatabase {
            url: format!("{server}/{name}"),
            postgres: Some((base, name)),
        }
    } else {
        let path = std::env::temp_dir().join(format!("{name}.db"));
        TestDatabase {
            url: format!("sqlite://{}", path.display()),
            postgres: None,
        }
    }
}

/// Unlinking SQLite files still open is harmless on Unix: the app's last tasks finish on them.
/// A PostgreSQL database is dropped with `FORCE`, which ends the connections that pools (and
/// nodes a test started) still hold. Runs during a panic too, so it never panics itself.
impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((admin, name)) = self.postgres.take() else {
            if let Some(path) = self.url.strip_prefix("sqlite://") {
                // The database, its WAL, its shared memory and the webhook sender's lock.
                for suffix in ["", "-wal", "-shm", "-webhooks.lock"] {
                    let _ = std::fs::remove_file(format!("{path}{suffix}"));
                }
            }
            return;
        };
        // Drop may run inside the test's runtime, which must not block on itself: the drop
        // gets a thread and a runtime of its own.
        let dropped = std::thread::spawn(move || -> Result<(), String> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                use sqlx::Connection;
                let mut admin = sqlx::AnyConnection::connect(&admin)
                    .await
                    .map_err(|e| e.to_string())?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut admin)
                .await
                .map_err(|e| format!("{name}: {e}"))?;
                let _ = admin.close().await;
                Ok(())
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("test database left behind: {e}"),
            Err(_) => eprintln!("test database left behind: the drop panicked"),
        }
    }
}

pub async fn spawn() -> TestServer {
    spawn_with(Options::default()).await
}

pub async fn spawn_with(options: Options) -> TestServer {
    let database = fresh_database().await;
    let store = Store::connect(&database.url).await.expect("open store");
    let database_url = database.url.clone();
    let app = App::new(
        store,
        Settings {
            simulated_latency: 2_000_000,
            // Tests run their webhook receivers on 127.0.0.1.
            webhooks: warbler::webhook::WebhookSettings {
                allow_private_targets: true,
                connect_timeout: std::time::Duration::from_secs(2),
                timeout: std::time::Duration::from_secs(5),
            },
            a2p_enforcement: options.a2p_enforcement,
            ..Settings::new(options.max_subaccounts, "test-pepper".into())
        },
    );
    app.ensure_main_account(Some(MAIN_SID), Some(MAIN_TOKEN), "Owlie Notifications")
        .await
        .expect("main account");
    let router = api::router(
        app.clone(),
        &HttpSettings {
            public_url: PUBLIC_URL.to_string(),
            max_body_bytes: options.max_body_bytes,
            rate_limit_per_second: options.rate_limit_per_second,
            rate_limit_burst: options.rate_limit_burst,
            failed_auth_limit: options.failed_auth_limit,
        },
    );
    TestServer {
        app,
        database_url,
        database: Some(database),
        service: router.clone().into_service(),
        router,
        main: (MAIN_SID.to_string(), MAIN_TOKEN.to_string()),
    }
}

impl TestServer {
    /// This server keeps `database` (the one its app was opened on) until it is dropped.
    pub fn holding(mut self, database: TestDatabase) -> TestServer {
        self.database_url = database.url.clone();
        self.database = Some(database);
        self
    }

    /// A test server around an app built by the test (custom settings).
    pub fn from_app(app: App) -> TestServer {
        let router = api::router(
            app.clone(),
            &HttpSettings {
                public_url: PUBLIC_URL.to_string(),
                max_body_bytes: 64 * 1024,
                rate_limit_per_second: 0,
                rate_limit_burst: 0,
                failed_auth_limit: 0,
            },
        );
        TestServer {
            app,
            database_url: String::new(),
            database: None,
            service: router.clone().into_service(),
            router,
            main: (MAIN_SID.to_string(), MAIN_TOKEN.to_string()),
        }
    }
}

impl TestServer {
    /// Serves this API on a free local port with these connection limits.
    pub async fn listen(&self, limits: api::server::ConnectionLimits) -> Listening {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(api::server::serve(
            listener,
            self.router.clone(),
            limits,
            async move {
                let _ = stopped.await;
            },
        ));
        Listening {
            addr,
            stop: Some(stop),
            served: Some(served),
        }
    }
}

/// A response: status and JSON body (`Value::Null` when empty).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub headers: axum::http::HeaderMap,
}

impl Reply {
    /// Asserts a Twilio error body with this HTTP status and code.
    pub fn assert_error(&self, status: u16, code: u64) {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        assert_eq!(self.body["code"], code, "body: {}", self.body);
        assert_eq!(self.body["status"], status);
        assert_eq!(
            self.body["more_info"],
            format!("https://www.twilio.com/docs/errors/{code}")
        );
        assert!(self.body["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert_eq!(self.body.as_object().unwrap().len(), 4, "exactly four keys");
    }
}

pub fn basic(user: &str, pass: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

impl TestServer {
    pub async fn raw(&self, request: Request<Body>) -> Reply {
        let response = self.service.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Reply {
            status,
            body,
            headers,
        }
    }

    /// A request with Basic credentials; `form` goes in the body for POST, in the query otherwise.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        creds: (&str, &str),
        form: &[(&str, &str)],
    ) -> Reply {
        let encoded = serde_urlencoded::to_string(form).unwrap();
        let (uri, body) = if method == Method::POST {
            (path.to_string(), encoded)
        } else if encoded.is_empty() {
            (path.to_string(), String::new())
        } else {
            let sep = if path.contains('?') { '&' } else { '?' };
            (format!("{path}{sep}{encoded}"), String::new())
        };
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header("Authorization", basic(creds.0, creds.1))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap();
        self.raw(request).await
    }

    /// A POST with a JSON body (the Content API's create).
    pub async fn post_json(&self, path: &str, creds: (&str, &str), body: &Value) -> Reply {
        let request = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header("Authorization", basic(creds.0, creds.1))
            .header("Content-Type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        self.raw(request).await
    }

    pub fn main_creds(&self) -> (&str, &str) {
        (&self.main.0, &self.main.1)
    }

    pub async fn get(&self, path: &str, creds: (&str, &str)) -> Reply {
        self.call(Method::GET, path, creds, &[]).await
    }

    pub async fn post(&self, path: &str, creds: (&str, &str), form: &[(&str, &str)]) -> Reply {
        self.call(Method::POST, path, creds, form).await
    }

    pub async fn delete(&self, path: &str, creds: (&str, &str)) -> Reply {
        self.call(Method::DELETE, path, creds, &[]).await
    }

    /// Creates a subaccount with the main credentials; returns (sid, token).
    pub async fn subaccount(&self, name: &str) -> (String, String) {
        let reply = self
            .post(
                "/2010-04-01/Accounts.json",
                self.main_creds(),
                &[("FriendlyName", name)],
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        (
            reply.body["sid"].as_str().unwrap().to_string(),
            reply.body["auth_token"].as_str().unwrap().to_string(),
        )
    }

    /// Follows `next_page_uri` from `first` and returns every item under `key`.
    pub async fn collect_pages(&self, first: &str, key: &str, creds: (&str, &str)) -> Vec<Value> {
        let mut items = Vec::new();
        let mut next = Some(first.to_string());
        let mut pages = 0;
        while let Some(uri) = next {
            let reply = self.get(&uri, creds).await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
            items.extend(reply.body[key].as_array().unwrap().iter().cloned());
            next = reply.body["next_page_uri"].as_str().map(str::to_string);
            pages += 1;
            assert!(pages < 1000, "paging does not end");
        }
        items
    }
}

/// The inventory CSV header.
pub const CSV_HEADER: &str =
    "phone_number,country,type,sms,mms,voice,locality,region,postal_code,route\n";

impl TestServer {
    /// Posts an inventory CSV to the admin endpoint with `creds`.
    pub async fn import(&self, csv: &str, creds: (&str, &str)) -> Reply {
        let request = Request::builder()
            .method(Method::POST)
            .uri("/admin/numbers/import")
            .header("Authorization", basic(creds.0, creds.1))
            .header("Content-Type", "text/csv")
            .body(Body::from(csv.to_string()))
            .unwrap();
        self.raw(request).await
    }

    /// Imports a few San Francisco, New York and toll-free numbers.
    pub async fn stock(&self) {
        let mut csv = CSV_HEADER.to_string();
        for i in 0..5 {
            csv.push_str(&format!(
                "+1415555010{i},US,local,true,true,true,San Francisco,CA,94105,sim\n"
            ));
        }
        for i in 0..3 {
            csv.push_str(&format!(
                "+1212555010{i},US,local,true,false,true,New York,NY,10001,sim\n"
            ));
        }
        csv.push_str("+18005550100,US,toll-free,true,false,true,,,,sim\n");
        csv.push_str("+447700900100,GB,mobile,true,false,false,London,,,sim\n");
        let reply = self.import(&csv, self.main_creds()).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    }

    /// Buys `number` for `account` with `creds`; returns the PN SID.
    pub async fn buy(&self, account: &str, number: &str, creds: (&str, &str)) -> String {
        let reply = self
            .post(
                &format!("/2010-04-01/Accounts/{account}/IncomingPhoneNumbers.json"),
                creds,
                &[("PhoneNumber", number)],
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        reply.body["sid"].as_str().unwrap().to_string()
    }
}

/// A queued one-segment API message from +14155550100 to +14155550199, created at `created`.
pub fn queued_message(
    sid: String,
    account_sid: &str,
    body: &str,
    created: i64,
) -> warbler::domain::message::Message {
    warbler::domain::message::Message {
        sid,
        account_sid: account_sid.to_string(),
        messaging_service_sid: None,
        direction: warbler::domain::message::Direction::OutboundApi,
        from: Some("+14155550100".into()),
        to: "+14155550199".into(),
        body: body.into(),
        encoding: "GSM-7".into(),
        num_segments: 1,
        num_media: 0,
        status: warbler::domain::message::MessageStatus::Queued,
        error_code: None,
        error_message: None,
        price: None,
        price_unit: "USD".into(),
        status_callback: None,
        validity_period: 36000,
        send_at: None,
        date_created: created,
        date_updated: created,
        date_sent: None,
    }
}

/// A local TCP port free right now (for a server a test starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits out the last minute of a UTC day: a test that counts what it did "today" (or this
/// month) would otherwise read the next day's empty bucket when midnight falls inside it.
pub async fn clear_of_utc_midnight() {
    const MARGIN_SECS: u64 = 60;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970");
    let left = 86_400 - now.as_secs() % 86_400;
    if left <= MARGIN_SECS {
        tokio::time::sleep(std::time::Duration::from_secs(left + 1)).await;
    }
}

/// In Prometheus text (`/metrics`), the value of the sample of `family` whose labels include
/// `labels` (0 when absent: a counter not yet incremented is not rendered).
pub fn metric_sample(text: &str, family: &str, labels: &[(&str, &str)]) -> f64 {
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
