//! The console end to end in a real browser: headless Chromium driven over WebDriver
//! (chromedriver, from Debian's `chromium-driver`; scripts/test.sh installs it). A main
//! account creates a subaccount, buys a number and moves it there, sets up a Messaging
//! Service with it; a message sent through the API shows as delivered on the Messages page and
//! counted on the Overview; the subaccount cannot open a sibling's pages; a POST without the
//! CSRF token is refused. Screenshots of each page go to `target/console-screenshots/`.

mod common;

use common::{fresh_database, MAIN_SID, MAIN_TOKEN};
use fantoccini::{Client, ClientBuilder, Locator};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use warbler::api::{self, HttpSettings};
use warbler::service::{App, Settings};
use warbler::store::Store;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// chromedriver in a process group of its own, with the browsers it starts: the whole group
/// is killed when dropped, so a failed test leaves no Chromium behind.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let group = rustix::process::Pid::from_child(&self.0);
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_driver() -> (Driver, String) {
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let driver = Driver(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "chromedriver did not listen");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (driver, format!("http://127.0.0.1:{port}"))
}

async fn browser(webdriver: &str) -> Client {
    let profile = std::env::temp_dir().join(format!(
        "warbler-chromium-{}",
        warbler::domain::sid::random_hex32()
    ));
    let capabilities = serde_json::json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            // The machine's network is closed: no background connections, no first-run work.
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1440,1100",
                format!("--user-data-dir={}", profile.display()),
            ]
        }
    });
    let serde_json::Value::Object(capabilities) = capabilities else {
        unreachable!()
    };
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(webdriver)
        .await
        .expect("a Chromium session")
}

struct Shots {
    dir: PathBuf,
    count: usize,
}

impl Shots {
    fn new() -> Shots {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
        // Only this run's pages: numbering changes when pages are added.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Shots { dir, count: 0 }
    }

    async fn take(&mut self, client: &Client, name: &str) {
        self.count += 1;
        let png = client.screenshot().await.expect("screenshot");
        let path = self.dir.join(format!("{:02}-{name}.png", self.count));
        std::fs::write(&path, png).unwrap();
    }
}

async fn fill(client: &Client, css: &str, value: &str) {
    let field = client.find(Locator::Css(css)).await.expect(css);
    field.clear().await.unwrap();
    field.send_keys(value).await.unwrap();
}

/// Clicks a button that submits a form, and waits until the next page has loaded (the old
/// document's element goes stale).
async fn click(client: &Client, css: &str) {
    let old = client.find(Locator::Css("html")).await.unwrap();
    client
        .find(Locator::Css(css))
        .await
        .expect(css)
        .click()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while old.tag_name().await.is_ok() {
        assert!(Instant::now() < deadline, "{css}: no new page");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    client
        .wait()
        .for_element(Locator::Css("body"))
        .await
        .unwrap();
}

/// Goes to `url` and waits until the browser shows that page, fully loaded, with its content
/// (every console page has a `main`).
async fn open(client: &Client, url: &str) {
    client.goto(url).await.unwrap();
    let wanted = url::Url::parse(url).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let here = client.current_url().await.unwrap();
        let ready = client
            .execute("return document.readyState", Vec::new())
            .await
            .unwrap();
        let arrived = here.path() == wanted.path() && here.query() == wanted.query();
        if arrived && ready == "complete" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{url}: still on {here} ({ready})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    client
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Css("main"))
        .await
        .expect(url);
}

async fn source(client: &Client) -> String {
    client.source().await.unwrap()
}

async fn login(client: &Client, base: &str, username: &str, password: &str) {
    open(client, &format!("{base}/console/login")).await;
    fill(client, "input[name=username]", username).await;
    fill(client, "input[name=password]", password).await;
    click(client, "form button[type=submit]").await;
}

/// The path of the page the browser shows.
async fn path(client: &Client) -> String {
    client.current_url().await.unwrap().path().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_end_to_end_in_chromium() {
    if !std::path::Path::new(CHROMEDRIVER).exists() {
        if std::env::var_os("WARBLER_SKIP_BROWSER_TESTS").is_some() {
            eprintln!("skipped: {CHROMEDRIVER} is missing and WARBLER_SKIP_BROWSER_TESTS is set");
            return;
        }
        panic!(
            "{CHROMEDRIVER} is missing: install Debian's chromium and chromium-driver \
             (scripts/test.sh does), or set WARBLER_SKIP_BROWSER_TESTS=1 to skip this test"
        );
    }
    // The server, as `warbler serve` runs it, with its workers, on a local port (plain http:
    // the session cookie is then not `Secure`).
    let database = fresh_database().await;
    let store = Store::connect(&database.url).await.unwrap();
    let app = App::new(
        store,
        Settings {
            simulated_latency: 300_000,
            // The status callback receiver is on 127.0.0.1.
            webhooks: warbler::webhook::WebhookSettings {
                allow_private_targets: true,
                connect_timeout: Duration::from_secs(2),
                timeout: Duration::from_secs(5),
            },
            ..Settings::new(100, "test-pepper".into())
        },
    );
    app.ensure_main_account(Some(MAIN_SID), Some(MAIN_TOKEN), "Owlie Notifications")
        .await
        .unwrap();
    let (stop_workers, workers_stopped) = tokio::sync::watch::channel(false);
    let webhooks_stopped = workers_stopped.clone();
    let _workers = app.spawn_workers(workers_stopped).unwrap();
    let sender = app.clone();
    tokio::spawn(async move { sender.run_webhooks(webhooks_stopped).await });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = api::router(
        app.clone(),
        &HttpSettings {
            public_url: base.clone(),
            max_body_bytes: 64 * 1024,
            rate_limit_per_second: 0,
            rate_limit_burst: 0,
            failed_auth_limit: 10,
        },
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(api::server::serve(
        listener,
        router,
        api::server::ConnectionLimits::default(),
        async move {
            let _ = stopped.await;
        },
    ));
    let http = reqwest::Client::new();
    // The operator's inventory: a few San Francisco numbers.
    let mut csv = common::CSV_HEADER.to_string();
    for i in 0..4 {
        csv.push_str(&format!(
            "+1415555020{i},US,local,true,true,true,San Francisco,CA,94105,sim\n"
        ));
    }
    let imported = http
        .post(format!("{base}/admin/numbers/import"))
        .basic_auth(MAIN_SID, Some(MAIN_TOKEN))
        .header("Content-Type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert!(
        imported.status().is_success(),
        "{}",
        imported.text().await.unwrap()
    );

    let (_driver, webdriver) = start_driver().await;
    let client = browser(&webdriver).await;
    let mut shots = Shots::new();

    // Log in as the main account.
    open(&client, &format!("{base}/console/login")).await;
    shots.take(&client, "login").await;
    login(&client, &base, MAIN_SID, MAIN_TOKEN).await;
    assert_eq!(path(&client).await, format!("/console/{MAIN_SID}"));
    assert!(source(&client).await.contains("Owlie Notifications"));

    // Create a subaccount.
    open(&client, &format!("{base}/console/{MAIN_SID}/subaccounts")).await;
    fill(&client, "input[name=friendly_name]", "Acme Retail").await;
    click(&client, "form.card button[type=submit]").await;
    let page = source(&client).await;
    assert!(page.contains("Acme Retail"), "{page}");
    shots.take(&client, "subaccounts").await;
    let sub_link = client
        .find(Locator::LinkText("Acme Retail"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    let sub = sub_link.trim_start_matches("/console/").to_string();
    assert!(sub.starts_with("AC") && sub.len() == 34, "{sub}");

    // Buy a number for the main account and move it to the subaccount.
    open(
        &client,
        &format!("{base}/console/{MAIN_SID}/numbers?search=1&country=US&area_code=415&sms=1"),
    )
    .await;
    shots.take(&client, "numbers-search").await;
    click(&client, "table.available form button[type=submit]").await;
    assert!(
        path(&client).await.contains("/numbers/PN"),
        "{}",
        path(&client).await
    );
    let number = source(&client).await;
    assert!(number.contains("+14155550200"));
    fill(&client, "input[name=SmsUrl]", "https://example.com/sms").await;
    click(&client, "form.card button[type=submit]").await;
    assert!(source(&client).await.contains("https://example.com/sms"));
    let target = client
        .find(Locator::Css("select[name=account_sid]"))
        .await
        .unwrap();
    target.select_by_value(&sub).await.unwrap();
    shots.take(&client, "number").await;
    click(&client, "form[action$='/move'] button").await;
    assert!(path(&client)
        .await
        .starts_with(&format!("/console/{sub}/numbers/PN")));

    // A Messaging Service for the subaccount, with the number in its pool.
    open(&client, &format!("{base}/console/{sub}/services")).await;
    fill(&client, "input[name=FriendlyName]", "Acme Alerts").await;
    click(&client, "form.card button[type=submit]").await;
    let service_path = path(&client).await;
    let service = service_path.rsplit('/').next().unwrap().to_string();
    assert!(service.starts_with("MG"), "{service_path}");
    click(&client, "form[action$='/senders'] button").await;
    let page = source(&client).await;
    assert!(
        page.contains("+14155550200") && page.contains("Remove"),
        "{page}"
    );
    shots.take(&client, "service").await;

    // Send through the API with the subaccount's own credentials.
    let account: serde_json::Value = http
        .get(format!("{base}/2010-04-01/Accounts/{sub}.json"))
        .basic_auth(MAIN_SID, Some(MAIN_TOKEN))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sub_token = account["auth_token"].as_str().unwrap().to_string();
    // Its status callbacks: the first answer is a 500 (retried), the next ones 204.
    let receiver = common::receiver::Receiver::start().await;
    receiver.answer("/status", 500, "text/plain", "busy");
    let callback = receiver.url("/status");
    let sent = http
        .post(format!("{base}/2010-04-01/Accounts/{sub}/Messages.json"))
        .basic_auth(&sub, Some(&sub_token))
        .form(&[
            ("MessagingServiceSid", service.as_str()),
            ("To", "+14155550199"),
            ("Body", "Your order <#1042> has shipped"),
            ("StatusCallback", callback.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 201, "{}", sent.text().await.unwrap());

    // The Messages page shows it delivered (the simulated carrier answers within a second).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        open(&client, &format!("{base}/console/{sub}/messages")).await;
        let page = source(&client).await;
        if page.contains(r#"<span class="badge ok">delivered</span>"#) {
            assert!(
                page.contains("Your order &lt;#1042&gt; has shipped"),
                "{page}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "never delivered: {page}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    shots.take(&client, "messages").await;
    // Its page lists each status callback attempt (wait for the delivered one to be sent).
    let message_path = client
        .find(Locator::Css("table.messages td a"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(40);
    let page = loop {
        let hits = receiver.hits("/status");
        let reported_delivered = hits
            .iter()
            .any(|hit| hit.get("MessageStatus") == Some("delivered"));
        open(&client, &format!("{base}{message_path}")).await;
        let page = source(&client).await;
        let rows =
            page.matches("<td>delivered</td>").count() + page.matches("<td>retrying</td>").count();
        if reported_delivered && rows == hits.len() {
            break page;
        }
        assert!(
            Instant::now() < deadline,
            "callback attempts not all shown: {page}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    // The first attempt got a 500 and was retried; the retry and the later ones got 200.
    assert!(page.contains(&format!("POST {callback}")), "{page}");
    assert!(
        page.contains("<code>500</code>") && page.contains("<td>retrying</td>"),
        "{page}"
    );
    assert!(page.contains("<code>200</code>"), "{page}");
    assert!(
        page.contains("Status timeline") && page.contains(">sent<") && page.contains(">delivered<"),
        "{page}"
    );
    shots.take(&client, "message").await;

    // The overview counts it, in its row and on the latency chart.
    open(&client, &format!("{base}/console/{MAIN_SID}")).await;
    shots.take(&client, "overview-main").await;
    open(&client, &format!("{base}/console/{sub}")).await;
    let page = source(&client).await;
    assert!(page.contains("100.0 %"), "delivery rate: {page}");
    assert!(
        page.contains("(1 delivered messages)"),
        "latency chart: {page}"
    );
    shots.take(&client, "overview-subaccount").await;
    open(
        &client,
        &format!("{base}/console/{sub}/settings/status?to=closed"),
    )
    .await;
    let confirm = source(&client).await;
    assert!(
        confirm.contains("Close Acme Retail?") && confirm.contains("cannot be undone"),
        "{confirm}"
    );
    shots.take(&client, "close-confirmation").await;
    for page in ["usage", "keys", "settings"] {
        open(&client, &format!("{base}/console/{MAIN_SID}/{page}")).await;
        let text = source(&client).await;
        assert!(text.contains("<h1>"), "{page}: {text}");
        shots.take(&client, page).await;
    }

    // The subaccount logs in; a sibling's pages are not found, by URL too.
    let sibling: serde_json::Value = http
        .post(format!("{base}/2010-04-01/Accounts.json"))
        .basic_auth(MAIN_SID, Some(MAIN_TOKEN))
        .form(&[("FriendlyName", "Sibling Co")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sibling = sibling["sid"].as_str().unwrap().to_string();
    open(&client, &format!("{base}/console/{MAIN_SID}")).await;
    click(&client, "form.logout button").await;
    assert_eq!(path(&client).await, "/console/login");
    login(&client, &base, &sub, &sub_token).await;
    assert_eq!(path(&client).await, format!("/console/{sub}"));
    assert!(!source(&client).await.contains("Sibling Co"));
    for page in ["", "/messages", "/numbers", "/services"] {
        open(&client, &format!("{base}/console/{sibling}{page}")).await;
        let text = source(&client).await;
        assert!(
            text.contains("Not found.") && !text.contains("Sibling Co"),
            "{page}: {text}"
        );
    }
    shots.take(&client, "sibling-refused").await;

    // A POST without the CSRF token, with the browser's own session cookie, is refused.
    let cookie = client.get_named_cookie("warbler_session").await.unwrap();
    let forged = http
        .post(format!("{base}/console/{sub}/services"))
        .header("Cookie", format!("warbler_session={}", cookie.value()))
        .form(&[("FriendlyName", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let with_session = http
        .get(format!("{base}/console/{sub}/services"))
        .header("Cookie", format!("warbler_session={}", cookie.value()))
        .send()
        .await
        .unwrap();
    assert_eq!(with_session.status(), 200, "the cookie itself is valid");
    assert!(!with_session.text().await.unwrap().contains("forged"));

    client.close().await.unwrap();
    let _ = stop.send(());
    let _ = stop_workers.send(true);
}
