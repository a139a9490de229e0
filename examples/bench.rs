//! The sending benchmark: spawns a release `warbler` on a temporary SQLite database, sends N
//! messages through the REST API with 64 keep-alive connections via one Messaging Service with
//! a pool of 100 numbers on the simulated carrier (pacing set high), and prints accepted
//! messages/s, p50/p99 accept latency, the time until all are delivered, and peak RSS.
//!
//! ```sh
//! cargo build --release && cargo run --release --example bench -- [N] [CONNECTIONS] [DATABASE_URL]
//! ```
//! (DATABASE_URL defaults to a fresh SQLite file; a `postgres://…/db` URL benchmarks PostgreSQL.
//! `BENCH_SERVER_LOG` sets the server's log filter, e.g. `warn,sqlx::query=debug` to time every
//! statement on stderr.)

mod support;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SID: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "fedcba9876543210fedcba9876543210";

/// Sends one create-message form; true on a 201. By default over a bare hyper HTTP/1.1
/// connection (`LeanConnection`): the client shares the server's 2 cores, and reqwest's
/// per-request work (pool checkout, header building, body encoding) took about a fifth of them.
/// `BENCH_CLIENT=reqwest` uses reqwest instead.
struct Sender {
    lean: Option<LeanConnection>,
    client: reqwest::Client,
    url: String,
}

impl Sender {
    async fn send(&mut self, form: String) -> bool {
        match &mut self.lean {
            Some(connection) => connection.send(form).await,
            None => match self
                .client
                .post(self.url.as_str())
                .basic_auth(SID, Some(TOKEN))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form)
                .send()
                .await
            {
                Ok(r) if r.status() == 201 => r.bytes().await.is_ok(),
                _ => false,
            },
        }
    }
}

/// One keep-alive HTTP/1.1 connection, with the request line and headers built once.
struct LeanConnection {
    sender: hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>,
    uri: hyper::Uri,
    authorization: hyper::header::HeaderValue,
}

impl LeanConnection {
    async fn open(port: u16, path: &str) -> anyhow::Result<LeanConnection> {
        use base64::Engine;
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        let credentials =
            base64::engine::general_purpose::STANDARD.encode(format!("{SID}:{TOKEN}"));
        Ok(LeanConnection {
            sender,
            uri: path.parse()?,
            authorization: format!("Basic {credentials}").parse()?,
        })
    }

    async fn send(&mut self, form: String) -> bool {
        use http_body_util::BodyExt;
        let request = hyper::Request::post(self.uri.clone())
            .header(hyper::header::HOST, "127.0.0.1")
            .header(hyper::header::AUTHORIZATION, self.authorization.clone())
            .header(
                hyper::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(http_body_util::Full::new(bytes::Bytes::from(form)));
        let Ok(request) = request else {
            return false;
        };
        if self.sender.ready().await.is_err() {
            return false;
        }
        match self.sender.send_request(request).await {
            Ok(response) => {
                let created = response.status() == hyper::StatusCode::CREATED;
                response.into_body().collect().await.is_ok() && created
            }
            Err(_) => false,
        }
    }
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let total: usize = args
        .get(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(50_000);
    let connections: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(64);
    let dir = std::env::temp_dir().join(format!("warbler-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let database_url = args
        .get(3)
        .cloned()
        .unwrap_or_else(|| format!("sqlite://{}/bench.db", dir.display()));
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let binary = std::env::current_exe()?
        .parent()
        .and_then(|p| p.parent())
        .map(|p| p.join("warbler"))
        .expect("target dir");
    let mut server = Command::new(&binary)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--database-url",
            &database_url,
        ])
        .current_dir(&dir)
        .env("WARBLER_ACCOUNT_SID", SID)
        .env("WARBLER_AUTH_TOKEN", TOKEN)
        .env("WARBLER_RATE_LIMIT_PER_SECOND", "0")
        .env("WARBLER_DEMO_INVENTORY", "false")
        .env("WARBLER_PACING__LONG_CODE", "100000")
        .env("WARBLER_SIMULATED_LATENCY_MS", "200")
        .env(
            "WARBLER_LOG",
            std::env::var("BENCH_SERVER_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::null())
        .spawn()?;
    let base = format!("http://127.0.0.1:{port}");
    warbler::webhook::install_crypto_provider();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .build()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.get(format!("{base}/healthz")).send().await.is_err() {
        anyhow::ensure!(Instant::now() < deadline, "warbler did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // 100 numbers in the inventory, bought, and pooled in one service.
    let service_sid = support::pooled_service(&client, &base, (SID, TOKEN), "simulated").await?;

    let path = format!("/2010-04-01/Accounts/{SID}/Messages.json");
    let lean = std::env::var("BENCH_CLIENT").as_deref() != Ok("reqwest");
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let cpu_before = (
        support::cpu_seconds(server.id()),
        support::cpu_seconds(std::process::id()),
    );
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..connections {
        let sender = Sender {
            lean: if lean {
                Some(LeanConnection::open(port, &path).await?)
            } else {
                None
            },
            client: client.clone(),
            url: format!("{base}{path}"),
        };
        let next = next.clone();
        let service_sid = service_sid.clone();
        workers.push(tokio::spawn(async move {
            let mut sender = sender;
            let mut latencies = Vec::new();
            let mut failures = 0usize;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let to = format!("+1212{:07}", 2_000_000 + i);
                let form = serde_urlencoded::to_string([
                    ("To", to.as_str()),
                    ("MessagingServiceSid", service_sid.as_str()),
                    ("Body", "benchmark message"),
                ])
                .expect("form");
                let t = Instant::now();
                if sender.send(form).await {
                    latencies.push(t.elapsed());
                } else {
                    failures += 1;
                }
            }
            (latencies, failures)
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    let mut failures = 0;
    for worker in workers {
        let (l, f) = worker.await?;
        latencies.extend(l);
        failures += f;
    }
    let accept_time = started.elapsed();
    let cpu_after = (
        support::cpu_seconds(server.id()),
        support::cpu_seconds(std::process::id()),
    );
    latencies.sort();

    println!(
        "warbler bench: {total} messages, {connections} connections, {}",
        if database_url.starts_with("sqlite") {
            "SQLite"
        } else {
            "PostgreSQL"
        }
    );
    support::print_accept_figures(&latencies, failures, accept_time);
    if let ((Some(s0), Some(c0)), (Some(s1), Some(c1))) = (cpu_before, cpu_after) {
        println!(
            "  CPU while sending: server {:.2} s, bench client {:.2} s ({:.0} + {:.0} µs per message)",
            s1 - s0,
            c1 - c0,
            (s1 - s0) * 1e6 / total as f64,
            (c1 - c0) * 1e6 / total as f64
        );
    }
    let store = warbler::store::Store::connect(&database_url).await?;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let unfinished: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM messages WHERE status NOT IN ('delivered', 'undelivered', 'failed')",
        )
        .fetch_one(store.pool())
        .await?;
        if unfinished == 0 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let all_done = started.elapsed();
    let delivered: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM messages WHERE status = 'delivered'")
            .fetch_one(store.pool())
            .await?;
    let rss = peak_rss_kib(server.id());
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);

    println!(
        "  all delivered:     {delivered} after {:.2} s (simulated carrier latency 200 ms)",
        all_done.as_secs_f64()
    );
    match rss {
        Some(kib) => println!("  peak RSS (server): {:.1} MiB", kib as f64 / 1024.0),
        None => println!("  peak RSS (server): unavailable"),
    }
    Ok(())
}
