//! The web console over plain HTTP (no browser): logging in and out, the session cookie's
//! flags, CSRF refusals, account scoping by URL, escaping, and sessions shared by nodes.

mod common;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use common::{spawn, spawn_with, Options, TestServer, MAIN_SID, MAIN_TOKEN};

/// A browser's state for the console: its session cookie and the page's CSRF token.
struct Browser {
    cookie: String,
    csrf: String,
}

fn html(reply: &common::Reply) -> String {
    match &reply.body {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// The `value` of the hidden `csrf` field of a page.
fn csrf_of(page: &str) -> String {
    let at = page.find(r#"name="csrf" value=""#).expect("a csrf field") + 19;
    page[at..at + 64].to_string()
}

fn set_cookie(reply: &common::Reply, name: &str) -> Option<String> {
    reply
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_string)
}

async fn request(
    server: &TestServer,
    method: Method,
    path: &str,
    cookie: Option<&str>,
    form: &[(&str, &str)],
) -> common::Reply {
    let mut builder = Request::builder().method(method.clone()).uri(path);
    if let Some(cookie) = cookie {
        builder = builder.header(header::COOKIE, cookie);
    }
    let body = if method == Method::POST {
        builder = builder.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        serde_urlencoded::to_string(form).unwrap()
    } else {
        String::new()
    };
    server.raw(builder.body(Body::from(body)).unwrap()).await
}

/// Submits the login form as a browser does (its own CSRF cookie and field).
async fn try_login(server: &TestServer, username: &str, password: &str) -> common::Reply {
    let form = request(server, Method::GET, "/console/login", None, &[]).await;
    assert_eq!(form.status, StatusCode::OK);
    let login_cookie = set_cookie(&form, "warbler_login").expect("login cookie");
    let pair = login_cookie.split(';').next().unwrap().to_string();
    let csrf = csrf_of(&html(&form));
    request(
        server,
        Method::POST,
        "/console/login",
        Some(&pair),
        &[
            ("csrf", &csrf),
            ("username", username),
            ("password", password),
        ],
    )
    .await
}

async fn login(server: &TestServer, username: &str, password: &str) -> Browser {
    let reply = try_login(server, username, password).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", html(&reply));
    let cookie = set_cookie(&reply, "warbler_session").expect("session cookie");
    let cookie = cookie.split(';').next().unwrap().to_string();
    let location = reply.headers[header::LOCATION]
        .to_str()
        .unwrap()
        .to_string();
    let page = request(server, Method::GET, &location, Some(&cookie), &[]).await;
    assert_eq!(page.status, StatusCode::OK, "{}", html(&page));
    Browser {
        csrf: csrf_of(&html(&page)),
        cookie,
    }
}

impl Browser {
    async fn get(&self, server: &TestServer, path: &str) -> common::Reply {
        request(server, Method::GET, path, Some(&self.cookie), &[]).await
    }

    async fn post(&self, server: &TestServer, path: &str, form: &[(&str, &str)]) -> common::Reply {
        let mut form = form.to_vec();
        form.push(("csrf", &self.csrf));
        request(server, Method::POST, path, Some(&self.cookie), &form).await
    }
}

#[tokio::test]
async fn logging_in_sets_a_strict_http_only_cookie_and_pages_carry_security_headers() {
    let server = spawn().await;
    let reply = try_login(&server, MAIN_SID, MAIN_TOKEN).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(
        reply.headers[header::LOCATION],
        format!("/console/{MAIN_SID}")
    );
    let cookie = set_cookie(&reply, "warbler_session").unwrap();
    for flag in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/console",
        "Max-Age=28800",
    ] {
        assert!(cookie.contains(flag), "{cookie} lacks {flag}");
    }
    // The test server's public URL is https.
    assert!(cookie.contains("Secure"), "{cookie}");

    let browser = login(&server, MAIN_SID, MAIN_TOKEN).await;
    let page = browser.get(&server, &format!("/console/{MAIN_SID}")).await;
    assert_eq!(page.headers[header::X_FRAME_OPTIONS], "DENY");
    let csp = page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(
        csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(page.headers[header::CACHE_CONTROL], "no-store");
    let text = html(&page);
    assert!(text.contains("Owlie Notifications"), "{text}");
    assert!(
        text.contains("<svg"),
        "the overview draws its charts as SVG"
    );
    // The auth token never appears on a page unless revealed.
    assert!(!text.contains(MAIN_TOKEN));
    let settings = browser
        .get(&server, &format!("/console/{MAIN_SID}/settings"))
        .await;
    assert!(!html(&settings).contains(MAIN_TOKEN));
    let revealed = browser
        .post(
            &server,
            &format!("/console/{MAIN_SID}/settings/reveal"),
            &[],
        )
        .await;
    assert!(html(&revealed).contains(MAIN_TOKEN));
}

#[tokio::test]
async fn wrong_credentials_are_refused_and_repeated_failures_back_off() {
    let server = spawn_with(Options {
        failed_auth_limit: 2,
        ..Options::default()
    })
    .await;
    let wrong = try_login(&server, MAIN_SID, "00000000000000000000000000000000").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(set_cookie(&wrong, "warbler_session").is_none());
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(try_login(&server, MAIN_SID, "0000").await.status);
    }
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    // While backing off even the right token is turned away.
    let right = try_login(&server, MAIN_SID, MAIN_TOKEN).await;
    assert_eq!(right.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_login_form_or_a_post_without_its_csrf_token_is_refused() {
    let server = spawn().await;
    let no_cookie = request(
        &server,
        Method::POST,
        "/console/login",
        None,
        &[("username", MAIN_SID), ("password", MAIN_TOKEN)],
    )
    .await;
    assert_eq!(no_cookie.status, StatusCode::FORBIDDEN);
    assert!(set_cookie(&no_cookie, "warbler_session").is_none());

    let browser = login(&server, MAIN_SID, MAIN_TOKEN).await;
    let path = format!("/console/{MAIN_SID}/subaccounts");
    let without = request(
        &server,
        Method::POST,
        &path,
        Some(&browser.cookie),
        &[("friendly_name", "forged")],
    )
    .await;
    assert_eq!(without.status, StatusCode::FORBIDDEN);
    let wrong = request(
        &server,
        Method::POST,
        &path,
        Some(&browser.cookie),
        &[("friendly_name", "forged"), ("csrf", &"0".repeat(64))],
    )
    .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    let accounts = server
        .get("/2010-04-01/Accounts.json", server.main_creds())
        .await;
    assert_eq!(accounts.body["accounts"].as_array().unwrap().len(), 1);

    let with = browser
        .post(&server, &path, &[("friendly_name", "real")])
        .await;
    assert_eq!(with.status, StatusCode::SEE_OTHER);
    let accounts = server
        .get("/2010-04-01/Accounts.json", server.main_creds())
        .await;
    assert_eq!(accounts.body["accounts"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_subaccount_cannot_reach_a_siblings_pages_by_url() {
    let server = spawn().await;
    let (alpha, alpha_token) = server.subaccount("Alpha").await;
    let (beta, _) = server.subaccount("Beta").await;
    let browser = login(&server, &alpha, &alpha_token).await;
    assert_eq!(
        browser
            .get(&server, &format!("/console/{alpha}"))
            .await
            .status,
        StatusCode::OK
    );
    for page in [
        "",
        "/messages",
        "/numbers",
        "/services",
        "/keys",
        "/settings",
    ] {
        let reply = browser
            .get(&server, &format!("/console/{beta}{page}"))
            .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{beta}{page}");
        assert!(
            !html(&reply).contains("Beta"),
            "nothing of the sibling shows"
        );
    }
    for page in ["", "/messages"] {
        let reply = browser
            .get(&server, &format!("/console/{MAIN_SID}{page}"))
            .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "the parent's {page}");
    }
    let rename = browser
        .post(
            &server,
            &format!("/console/{beta}/settings/rename"),
            &[("friendly_name", "Pwned")],
        )
        .await;
    assert_eq!(rename.status, StatusCode::NOT_FOUND);
    let fetched = server
        .get(
            &format!("/2010-04-01/Accounts/{beta}.json"),
            server.main_creds(),
        )
        .await;
    assert_eq!(fetched.body["friendly_name"], "Beta");
    // The main account sees both.
    let main = login(&server, MAIN_SID, MAIN_TOKEN).await;
    let overview = html(&main.get(&server, &format!("/console/{MAIN_SID}")).await);
    assert!(overview.contains("Alpha") && overview.contains("Beta"));
    assert_eq!(
        main.get(&server, &format!("/console/{beta}/messages"))
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_main_account_api_key_sees_only_its_own_account() {
    let server = spawn().await;
    let (sub, _) = server.subaccount("Sub").await;
    let key = server
        .post(
            &format!("/2010-04-01/Accounts/{MAIN_SID}/Keys.json"),
            server.main_creds(),
            &[],
        )
        .await;
    let (key_sid, secret) = (
        key.body["sid"].as_str().unwrap().to_string(),
        key.body["secret"].as_str().unwrap().to_string(),
    );
    let browser = login(&server, &key_sid, &secret).await;
    assert_eq!(
        browser
            .get(&server, &format!("/console/{MAIN_SID}/messages"))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        browser
            .get(&server, &format!("/console/{sub}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // Keys and account settings are the auth token's.
    assert_ne!(
        browser
            .get(&server, &format!("/console/{MAIN_SID}/keys"))
            .await
            .status,
        StatusCode::OK
    );
    // Deleting the key ends its sessions.
    server
        .delete(
            &format!("/2010-04-01/Accounts/{MAIN_SID}/Keys/{key_sid}.json"),
            server.main_creds(),
        )
        .await;
    let after = browser.get(&server, &format!("/console/{MAIN_SID}")).await;
    assert_eq!(after.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn user_supplied_strings_are_escaped() {
    let server = spawn().await;
    server.stock().await;
    let evil = "<script>alert('x')</script>";
    let (sub, _) = server.subaccount(evil).await;
    let number = "+14155550100";
    server.buy(MAIN_SID, number, server.main_creds()).await;
    let sent = server
        .post(
            &format!("/2010-04-01/Accounts/{MAIN_SID}/Messages.json"),
            server.main_creds(),
            &[
                ("From", number),
                ("To", "+14155550199"),
                ("Body", "<img src=x onerror=alert(1)>"),
            ],
        )
        .await;
    assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.body);
    let browser = login(&server, MAIN_SID, MAIN_TOKEN).await;
    let overview = html(&browser.get(&server, &format!("/console/{MAIN_SID}")).await);
    assert!(!overview.contains(evil), "raw name on the page");
    assert!(
        overview.contains("&lt;script&gt;alert('x')&lt;/script&gt;")
            || overview.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;")
            || overview.contains("&lt;script&gt;"),
        "{overview}"
    );
    let log = html(
        &browser
            .get(&server, &format!("/console/{MAIN_SID}/messages"))
            .await,
    );
    assert!(!log.contains("<img src=x"), "raw body on the page");
    assert!(log.contains("&lt;img src=x onerror=alert(1)&gt;"));
    let settings = html(
        &browser
            .get(&server, &format!("/console/{sub}/settings"))
            .await,
    );
    assert!(!settings.contains(evil));
}

#[tokio::test]
async fn logging_out_ends_the_session_and_a_second_node_shares_sessions() {
    let server = spawn().await;
    let browser = login(&server, MAIN_SID, MAIN_TOKEN).await;
    // Another node on the same database knows the session.
    let store = warbler::store::Store::connect(&server.database_url)
        .await
        .unwrap();
    let other = TestServer::from_app(warbler::service::App::new(
        store,
        warbler::service::Settings::new(1000, "test-pepper".into()),
    ));
    let there = browser
        .get(&other, &format!("/console/{MAIN_SID}/messages"))
        .await;
    assert_eq!(there.status, StatusCode::OK);

    let out = browser.post(&server, "/console/logout", &[]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    let cleared = set_cookie(&out, "warbler_session").unwrap();
    assert!(cleared.contains("Max-Age=0"));
    // The old cookie no longer works, on either node.
    for node in [&server, &other] {
        let page = browser.get(node, &format!("/console/{MAIN_SID}")).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER);
        assert_eq!(page.headers[header::LOCATION], "/console/login");
    }
}

#[tokio::test]
async fn the_usage_page_creates_and_deletes_a_trigger_and_the_other_pages_open() {
    let server = spawn().await;
    let browser = login(&server, MAIN_SID, MAIN_TOKEN).await;
    for page in [
        "/opt-outs",
        "/alerts",
        "/usage",
        "/numbers",
        "/services",
        "/keys",
        "/subaccounts",
    ] {
        let reply = browser
            .get(&server, &format!("/console/{MAIN_SID}{page}"))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{page}: {}", html(&reply));
    }
    let created = browser
        .post(
            &server,
            &format!("/console/{MAIN_SID}/usage/triggers"),
            &[
                ("friendly_name", "Big month"),
                ("usage_category", "sms"),
                ("trigger_value", "1000"),
                ("trigger_by", "count"),
                ("recurring", "monthly"),
                ("callback_url", "https://example.com/usage"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", html(&created));
    let listed = server
        .get(
            &format!("/2010-04-01/Accounts/{MAIN_SID}/Usage/Triggers.json"),
            server.main_creds(),
        )
        .await;
    let triggers = listed.body["usage_triggers"].as_array().unwrap().clone();
    assert_eq!(triggers.len(), 1, "{}", listed.body);
    assert_eq!(triggers[0]["friendly_name"], "Big month");
    let sid = triggers[0]["sid"].as_str().unwrap();
    assert!(html(
        &browser
            .get(&server, &format!("/console/{MAIN_SID}/usage"))
            .await
    )
    .contains("Big month"));
    let deleted = browser
        .post(
            &server,
            &format!("/console/{MAIN_SID}/usage/triggers/{sid}/delete"),
            &[],
        )
        .await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER);
    let listed = server
        .get(
            &format!("/2010-04-01/Accounts/{MAIN_SID}/Usage/Triggers.json"),
            server.main_creds(),
        )
        .await;
    assert_eq!(listed.body["usage_triggers"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn the_message_log_pages_by_keyset_and_filters() {
    let server = spawn().await;
    let now = warbler::domain::time::now_micros();
    // 120 queued messages a millisecond apart, the newest last; every third to another number.
    let batch: Vec<_> = (0..120)
        .map(|i| {
            let mut m = common::queued_message(
                warbler::domain::sid::generate(warbler::domain::sid::SidKind::Message),
                MAIN_SID,
                &format!("message {i}"),
                now - (120 - i) * 1_000,
            );
            if i % 3 == 0 {
                m.to = "+14155550111".into();
            }
            (m, Vec::new())
        })
        .collect();
    server
        .app
        .store
        .insert_messages(&batch, now + 3_600_000_000)
        .await
        .unwrap();
    let browser = login(&server, MAIN_SID, MAIN_TOKEN).await;
    let base = format!("/console/{MAIN_SID}/messages");
    let mut seen = Vec::new();
    let mut next = Some(base.clone());
    while let Some(path) = next.take() {
        let page = html(&browser.get(&server, &path).await);
        let bodies: Vec<String> = page
            .match_indices("message ")
            .filter_map(|(at, _)| {
                let rest = &page[at + 8..];
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                (!digits.is_empty()).then_some(digits)
            })
            .collect();
        assert!(bodies.len() <= 50, "{} rows on a page", bodies.len());
        seen.extend(bodies);
        next = page.find("?after=").map(|at| {
            let end = at + page[at..].find('"').unwrap();
            format!("{base}{}", page[at..end].replace("&amp;", "&"))
        });
    }
    let expected: Vec<String> = (0..120).rev().map(|i| i.to_string()).collect();
    assert_eq!(seen, expected, "newest first, each once");

    let to = html(
        &browser
            .get(&server, &format!("{base}?to=%2B14155550111"))
            .await,
    );
    assert_eq!(to.matches("<td>+14155550111</td>").count(), 40);
    let queued = html(&browser.get(&server, &format!("{base}?status=queued")).await);
    assert_eq!(queued.matches(">queued</span>").count(), 50);
    let failed = html(&browser.get(&server, &format!("{base}?status=failed")).await);
    assert!(failed.contains("No messages match."));
    let bad = browser
        .get(&server, &format!("{base}?error_code=abc"))
        .await;
    assert_eq!(bad.status, StatusCode::OK);
    assert!(html(&bad).contains("is not a number"));
    let other = browser
        .get(
            &server,
            &format!("{base}?after=garbage&date_from=2026-13-45"),
        )
        .await;
    assert_eq!(
        other.status,
        StatusCode::OK,
        "nonsense parameters are no error page"
    );
}

#[tokio::test]
async fn suspending_an_account_ends_its_sessions_and_a_key_must_match_the_account_given() {
    let server = spawn().await;
    let (sub, token) = server.subaccount("Sub").await;
    let browser = login(&server, &sub, &token).await;
    let suspended = server
        .post(
            &format!("/2010-04-01/Accounts/{sub}.json"),
            server.main_creds(),
            &[("Status", "suspended")],
        )
        .await;
    assert_eq!(suspended.status, StatusCode::OK, "{}", suspended.body);
    let page = browser.get(&server, &format!("/console/{sub}")).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.headers[header::LOCATION], "/console/login");
    assert_eq!(
        try_login(&server, &sub, &token).await.status,
        StatusCode::UNAUTHORIZED
    );

    let key = server
        .post(
            &format!("/2010-04-01/Accounts/{MAIN_SID}/Keys.json"),
            server.main_creds(),
            &[],
        )
        .await;
    let (key_sid, secret) = (
        key.body["sid"].as_str().unwrap().to_string(),
        key.body["secret"].as_str().unwrap().to_string(),
    );
    let form = request(&server, Method::GET, "/console/login", None, &[]).await;
    let pair = set_cookie(&form, "warbler_login").unwrap();
    let pair = pair.split(';').next().unwrap().to_string();
    let csrf = csrf_of(&html(&form));
    let other_account = request(
        &server,
        Method::POST,
        "/console/login",
        Some(&pair),
        &[
            ("csrf", &csrf),
            ("username", &key_sid),
            ("password", &secret),
            ("account_sid", &sub),
        ],
    )
    .await;
    assert_eq!(other_account.status, StatusCode::UNAUTHORIZED);
    let own_account = request(
        &server,
        Method::POST,
        "/console/login",
        Some(&pair),
        &[
            ("csrf", &csrf),
            ("username", &key_sid),
            ("password", &secret),
            ("account_sid", MAIN_SID),
        ],
    )
    .await;
    assert_eq!(own_account.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_service_gets_and_loses_an_alphanumeric_sender() {
    let server = spawn().await;
    let browser = login(&server, MAIN_SID, MAIN_TOKEN).await;
    let created = browser
        .post(
            &server,
            &format!("/console/{MAIN_SID}/services"),
            &[("FriendlyName", "Alerts")],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", html(&created));
    let service_page = created.headers[header::LOCATION]
        .to_str()
        .unwrap()
        .to_string();
    let added = browser
        .post(
            &server,
            &format!("{service_page}/alpha-senders"),
            &[("alpha_sender", "AcmeAlerts")],
        )
        .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", html(&added));
    let page = html(&browser.get(&server, &service_page).await);
    assert!(page.contains("<td>AcmeAlerts</td>"), "{page}");
    let at = page.find("/alpha-senders/").unwrap() + 15;
    let sender = &page[at..at + 34];
    let removed = browser
        .post(
            &server,
            &format!("{service_page}/alpha-senders/{sender}/remove"),
            &[],
        )
        .await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER);
    assert!(!html(&browser.get(&server, &service_page).await).contains("<td>AcmeAlerts</td>"));
}

#[tokio::test]
async fn the_parent_suspends_reactivates_renames_and_closes_a_subaccount() {
    let server = spawn().await;
    let (sub, _) = server.subaccount("Sub").await;
    let browser = login(&server, MAIN_SID, MAIN_TOKEN).await;
    let settings = format!("/console/{sub}/settings");
    let status = || async {
        server
            .get(
                &format!("/2010-04-01/Accounts/{sub}.json"),
                server.main_creds(),
            )
            .await
            .body
    };
    for (to, expected) in [("suspended", "suspended"), ("active", "active")] {
        let reply = browser
            .post(&server, &format!("{settings}/status"), &[("status", to)])
            .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", html(&reply));
        assert_eq!(status().await["status"], expected);
    }
    let renamed = browser
        .post(
            &server,
            &format!("{settings}/rename"),
            &[("friendly_name", "Renamed")],
        )
        .await;
    assert_eq!(renamed.status, StatusCode::SEE_OTHER);
    assert_eq!(status().await["friendly_name"], "Renamed");
    let confirm = html(
        &browser
            .get(&server, &format!("{settings}/status?to=closed"))
            .await,
    );
    assert!(confirm.contains("cannot be undone"));
    browser
        .post(
            &server,
            &format!("{settings}/status"),
            &[("status", "closed")],
        )
        .await;
    assert_eq!(status().await["status"], "closed");
    // Closing is final: the service's rule, shown as the page's error.
    let again = browser
        .post(
            &server,
            &format!("{settings}/status"),
            &[("status", "active")],
        )
        .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert_eq!(status().await["status"], "closed");
}

/// Issue 22's settings in the console: the parent makes a subaccount a sandbox (and live
/// again); the subaccount sees its test credentials, reveals its test auth token, and cannot
/// leave the sandbox itself.
#[tokio::test]
async fn a_parent_toggles_a_sandbox_and_an_account_sees_its_test_credentials() {
    let server = spawn().await;
    let (sub, sub_token) = server.subaccount("Staging").await;
    let sandbox_of = || async {
        server
            .get(
                &format!("/warbler/v1/Accounts/{sub}/Sandbox"),
                server.main_creds(),
            )
            .await
            .body["sandbox"]
            .clone()
    };
    let parent = login(&server, MAIN_SID, MAIN_TOKEN).await;
    let settings = format!("/console/{sub}/settings");
    let page = html(&parent.get(&server, &settings).await);
    assert!(page.contains("Make it a sandbox"), "{page}");
    let reply = parent
        .post(
            &server,
            &format!("{settings}/sandbox"),
            &[("sandbox", "true")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", html(&reply));
    assert_eq!(sandbox_of().await, true);
    assert!(html(&parent.get(&server, &settings).await).contains("Make it live"));

    // The subaccount's own login: its test credentials, no sandbox switch.
    let own = login(&server, &sub, &sub_token).await;
    let page = html(&own.get(&server, &settings).await);
    let test = server
        .get(
            &format!("/warbler/v1/Accounts/{sub}/TestCredentials"),
            (&sub, &sub_token),
        )
        .await
        .body;
    let test_sid = test["test_account_sid"].as_str().unwrap();
    let test_token = test["test_auth_token"].as_str().unwrap();
    assert!(page.contains(test_sid), "{page}");
    assert!(
        !page.contains(test_token),
        "the test token is hidden until revealed"
    );
    assert!(!page.contains("Make it live"), "{page}");
    let revealed = own
        .post(&server, &format!("{settings}/reveal-test"), &[])
        .await;
    assert_eq!(revealed.status, StatusCode::OK);
    assert!(html(&revealed).contains(test_token));
    let refused = own
        .post(
            &server,
            &format!("{settings}/sandbox"),
            &[("sandbox", "false")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", html(&refused));
    assert_eq!(sandbox_of().await, true, "still a sandbox");
    // The parent cannot reveal the subaccount's test token.
    let parent_reveal = parent
        .post(&server, &format!("{settings}/reveal-test"), &[])
        .await;
    assert_eq!(parent_reveal.status, StatusCode::FORBIDDEN);
    assert!(!html(&parent_reveal).contains(test_token));
}
