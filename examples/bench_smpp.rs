//! The SMPP end-to-end benchmark: spawns a release `warbler smsc` (the SMSC simulator, delivery
//! receipts 50 ms after each submit) and a release `warbler serve` on a temporary SQLite
//! database with one `[[smpp_routes]]` route to it, pools 100 numbers of that route in one
//! Messaging Service, sends N messages through the REST API with keep-alive connections, each
//! with a status callback to an in-process receiver, and prints accepted messages/s, p50/p99
//! accept latency, submits/s seen at the SMSC, the time until every `delivered` callback has
//! arrived (end-to-end messages/s), and the peak RSS of the server and of the SMSC.
//!
//! ```sh
//! cargo build --release --examples --bin warbler
//! cargo run --release --example bench_smpp -- [N] [CONNECTIONS] [BINDS] [WINDOW]
//! ```

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SID: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "fedcba9876543210fedcba9876543210";

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn print_rss(what: &str, kib: Option<u64>) {
    match kib {
        Some(kib) => println!("  peak RSS ({what}): {:.1} MiB", kib as f64 / 1024.0),
        None => println!("  peak RSS ({what}): unavailable"),
    }
}

/// Prints the last `lines` lines of a child's log file.
fn print_tail(name: &str, path: &Path, lines: usize) {
    match std::fs::read_to_string(path) {
        Ok(log) => {
            let all: Vec<&str> = log.lines().collect();
            let from = all.len().saturating_sub(lines);
            println!(
                "--- last {} lines of the {name} log ({}) ---",
                all.len() - from,
                path.display()
            );
            for line in &all[from..] {
                println!("{line}");
            }
            println!("--- end of the {name} log ---");
        }
        Err(err) => println!("(no {name} log at {}: {err})", path.display()),
    }
}

/// The children and the temporary directory, cleaned up however the benchmark ends.
struct Cleanup {
    dir: PathBuf,
    children: Vec<Child>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The status callback receiver's shared state.
struct Receiver {
    total: usize,
    delivered: AtomicUsize,
    requests: AtomicUsize,
    by_status: Mutex<std::collections::BTreeMap<String, usize>>,
    all_delivered_at: Mutex<Option<Instant>>,
    done: tokio::sync::Notify,
}

async fn status_callback(
    axum::extract::State(receiver): axum::extract::State<Arc<Receiver>>,
    axum::Form(form): axum::Form<std::collections::HashMap<String, String>>,
) -> axum::http::StatusCode {
    receiver.requests.fetch_add(1, Ordering::Relaxed);
    let status = form.get("MessageStatus").cloned().unwrap_or_default();
    *receiver
        .by_status
        .lock()
        .unwrap()
        .entry(status)
        .or_default() += 1;
    if form.get("MessageStatus").map(String::as_str) == Some("delivered") {
        let count = receiver.delivered.fetch_add(1, Ordering::AcqRel) + 1;
        if count == receiver.total {
            *receiver.all_delivered_at.lock().unwrap() = Some(Instant::now());
            receiver.done.notify_one();
        }
    }
    axum::http::StatusCode::OK
}

#[derive(Clone, Copy)]
struct Options {
    total: usize,
    connections: usize,
    binds: u32,
    window: u32,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize| args.get(i).map(|s| s.parse::<usize>()).transpose();
    let options = Options {
        total: arg(1)?.unwrap_or(50_000),
        connections: arg(2)?.unwrap_or(64),
        binds: arg(3)?.unwrap_or(4) as u32,
        window: arg(4)?.unwrap_or(256) as u32,
    };
    anyhow::ensure!(
        options.total > 0 && options.connections > 0,
        "N and CONNECTIONS must be positive"
    );
    let dir = std::env::temp_dir().join(format!("warbler-bench-smpp-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut cleanup = Cleanup {
        dir: dir.clone(),
        children: Vec::new(),
    };
    let server_log = dir.join("server.log");
    let smsc_log = dir.join("smsc.log");
    let result = run(options, &dir, &mut cleanup.children).await;
    if let Err(err) = &result {
        println!("bench_smpp failed: {err:#}");
        print_tail("server", &server_log, 30);
        print_tail("smsc", &smsc_log, 30);
    }
    drop(cleanup);
    result
}

async fn run(options: Options, dir: &Path, children: &mut Vec<Child>) -> anyhow::Result<()> {
    let Options {
        total,
        connections,
        binds,
        window,
    } = options;
    let database_url = format!("sqlite://{}/bench.db", dir.display());
    let server_log = dir.join("server.log");
    let smsc_log = dir.join("smsc.log");
    let binary = std::env::current_exe()?
        .parent()
        .and_then(|p| p.parent())
        .map(|p| p.join("warbler"))
        .expect("target dir");
    anyhow::ensure!(
        binary.exists(),
        "{} not found: cargo build --release --bin warbler",
        binary.display()
    );
    warbler::webhook::install_crypto_provider();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .build()?;

    // The SMSC simulator.
    let smpp_port = free_port()?;
    let control_port = free_port()?;
    let smsc = Command::new(&binary)
        .args([
            "smsc",
            "--smpp-listen",
            &format!("127.0.0.1:{smpp_port}"),
            "--system-id",
            "bench",
            "--password",
            "bench",
            "--receipt-delay-ms",
            "50",
            "--control",
            &format!("127.0.0.1:{control_port}"),
        ])
        .current_dir(dir)
        .env("WARBLER_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&smsc_log)?)
        .spawn()?;
    let smsc_pid = smsc.id();
    children.push(smsc);
    let stats_url = format!("http://127.0.0.1:{control_port}/stats");
    let stats = {
        let client = client.clone();
        let stats_url = stats_url.clone();
        move || {
            let client = client.clone();
            let stats_url = stats_url.clone();
            async move {
                let stats: serde_json::Value = client.get(&stats_url).send().await?.json().await?;
                anyhow::Ok(stats)
            }
        }
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while stats().await.is_err() {
        if let Some(status) = children[0].try_wait()? {
            anyhow::bail!("warbler smsc exited ({status})");
        }
        anyhow::ensure!(Instant::now() < deadline, "warbler smsc did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The server, with one SMPP route to the simulator.
    let config = dir.join("warbler.toml");
    std::fs::write(
        &config,
        format!(
            "[[smpp_routes]]\n\
             name = \"bench\"\n\
             host = \"127.0.0.1\"\n\
             port = {smpp_port}\n\
             system_id = \"bench\"\n\
             password = \"bench\"\n\
             binds = {binds}\n\
             window = {window}\n\
             number_routes = [\"smsc\"]\n"
        ),
    )?;
    let port = free_port()?;
    let server = Command::new(&binary)
        .args([
            "serve",
            "--config",
            &config.display().to_string(),
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--database-url",
            &database_url,
        ])
        .current_dir(dir)
        .env("WARBLER_ACCOUNT_SID", SID)
        .env("WARBLER_AUTH_TOKEN", TOKEN)
        .env("WARBLER_RATE_LIMIT_PER_SECOND", "0")
        .env("WARBLER_DEMO_INVENTORY", "false")
        .env("WARBLER_PACING__LONG_CODE", "100000")
        .env("WARBLER_WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")
        .env("WARBLER_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&server_log)?)
        .spawn()?;
    let server_pid = server.id();
    children.push(server);
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.get(format!("{base}/healthz")).send().await.is_err() {
        if let Some(status) = children[1].try_wait()? {
            anyhow::bail!("warbler serve exited ({status})");
        }
        anyhow::ensure!(Instant::now() < deadline, "warbler did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // 100 numbers of the `smsc` inventory route, bought, and pooled in one service.
    let service_sid = support::pooled_service(&client, &base, (SID, TOKEN), "smsc").await?;

    // The route is up once the simulator has seen every bind.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let bound = stats()
            .await
            .ok()
            .and_then(|s| s["binds"].as_u64())
            .unwrap_or(0);
        if bound >= binds as u64 {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the SMPP route bound {bound} of {binds} sessions within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The status callback receiver.
    let receiver = Arc::new(Receiver {
        total,
        delivered: AtomicUsize::new(0),
        requests: AtomicUsize::new(0),
        by_status: Mutex::new(Default::default()),
        all_delivered_at: Mutex::new(None),
        done: tokio::sync::Notify::new(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let callback = format!("http://{}/status", listener.local_addr()?);
    let router = axum::Router::new()
        .route("/status", axum::routing::post(status_callback))
        .with_state(receiver.clone());
    let receiver_task = tokio::spawn(async move { axum::serve(listener, router).await });

    // Sending, with the SMSC's submit counter sampled every 100 ms from the start.
    let url = Arc::new(format!("{base}/2010-04-01/Accounts/{SID}/Messages.json"));
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let cpu_before = support::cpu_seconds(server_pid);
    let (stop_sampling, mut sampling_stopped) = tokio::sync::watch::channel(false);
    let sampler = {
        let stats = stats.clone();
        tokio::spawn(async move {
            let mut samples: Vec<(Instant, u64)> = Vec::new();
            let mut receipts: Vec<(Instant, u64)> = Vec::new();
            let mut ticks = tokio::time::interval(Duration::from_millis(100));
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    _ = sampling_stopped.changed() => break,
                }
                if let Ok(stats) = stats().await {
                    let now = Instant::now();
                    if let Some(submits) = stats["submits"].as_u64() {
                        samples.push((now, submits));
                    }
                    if let Some(sent) = stats["receipts_sent"].as_u64() {
                        receipts.push((now, sent));
                    }
                }
            }
            (samples, receipts)
        })
    };
    let mut workers = Vec::new();
    for _ in 0..connections {
        let client = client.clone();
        let url = url.clone();
        let next = next.clone();
        let service_sid = service_sid.clone();
        let callback = callback.clone();
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0usize;
            let mut first_error = None;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let to = format!("+1212{:07}", 2_000_000 + i);
                let t = Instant::now();
                let reply = client
                    .post(url.as_str())
                    .basic_auth(SID, Some(TOKEN))
                    .form(&[
                        ("To", to.as_str()),
                        ("MessagingServiceSid", service_sid.as_str()),
                        ("Body", "benchmark message"),
                        ("StatusCallback", callback.as_str()),
                    ])
                    .send()
                    .await;
                match reply {
                    Ok(r) if r.status() == 201 => {
                        let _ = r.bytes().await;
                        latencies.push(t.elapsed());
                    }
                    Ok(r) => {
                        failures += 1;
                        if first_error.is_none() {
                            let status = r.status();
                            first_error =
                                Some(format!("{status} {}", r.text().await.unwrap_or_default()));
                        }
                    }
                    Err(err) => {
                        failures += 1;
                        first_error.get_or_insert_with(|| err.to_string());
                    }
                }
            }
            (latencies, failures, first_error)
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    let mut failures = 0;
    let mut first_error = None;
    for worker in workers {
        let (l, f, e) = worker.await?;
        latencies.extend(l);
        failures += f;
        if first_error.is_none() {
            first_error = e;
        }
    }
    let accept_time = started.elapsed();
    latencies.sort();

    // Every `delivered` callback, or the timeout.
    let timeout = Duration::from_secs(600);
    let _ = tokio::time::timeout(
        timeout.saturating_sub(started.elapsed()),
        receiver.done.notified(),
    )
    .await;
    // (`notify_one` keeps a permit when the count was reached before this wait began.)
    let all_delivered_at = *receiver.all_delivered_at.lock().unwrap();
    let waited = started.elapsed();
    // One more sample so the last increase is not missed.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let _ = stop_sampling.send(true);
    let (samples, receipts) = sampler.await?;
    // When the SMSC had sent its last receipt (the first sample showing the final count).
    let last_receipt = receipts.last().and_then(|(_, last)| {
        receipts
            .iter()
            .find(|(_, n)| n == last && *n > 0)
            .map(|(t, n)| (*n, (*t - started).as_secs_f64()))
    });
    let delivered = receiver.delivered.load(Ordering::Acquire);
    let callbacks = receiver.requests.load(Ordering::Relaxed);
    let server_rss = peak_rss_kib(server_pid);
    // The whole pipeline's CPU: accepting, submitting, receipts and every callback.
    let cpu_used = support::cpu_seconds(server_pid)
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    let smsc_rss = peak_rss_kib(smsc_pid);
    let final_stats = stats().await.ok();

    // Submits per second at the SMSC: from the first submit (bounded by the last sample that
    // still showed none) to the sample that first showed the final count.
    let submit_rate = {
        let before = samples.iter().rev().find(|(_, n)| *n == 0).map(|(t, _)| *t);
        let first = samples.iter().find(|(_, n)| *n > 0).map(|(t, _)| *t);
        let last_count = samples.last().map(|(_, n)| *n).unwrap_or(0);
        let last = samples
            .iter()
            .find(|(_, n)| *n == last_count)
            .map(|(t, _)| *t);
        match (before.or(first), last) {
            (Some(from), Some(to)) if last_count > 0 && to > from => {
                Some((last_count, (to - from).as_secs_f64()))
            }
            _ => None,
        }
    };

    println!(
        "warbler SMPP bench: {total} messages, {connections} connections, {binds} binds, \
         window {window}, SQLite, SMSC receipts after 50 ms"
    );
    support::print_accept_figures(&latencies, failures, accept_time);
    if let Some(err) = &first_error {
        println!("  first failure:     {err}");
    }
    match submit_rate {
        Some((submits, secs)) => println!(
            "  SMSC submits:      {submits} at {:.0} submits/s over {secs:.2} s",
            submits as f64 / secs
        ),
        None => println!("  SMSC submits:      none seen"),
    }
    if let Some((sent, secs)) = last_receipt {
        println!("  SMSC receipts:     {sent}, the last by {secs:.2} s after the first send");
    }
    if let Some(stats) = &final_stats {
        println!("  SMSC stats:        {stats}");
    }
    let complete = match all_delivered_at {
        Some(at) => {
            let secs = (at - started).as_secs_f64();
            println!("  all delivered:     {total} `delivered` callbacks after {secs:.2} s");
            println!("  end to end:        {:.0} msgs/s", total as f64 / secs);
            true
        }
        None => {
            println!(
                "  NOT all delivered: {delivered} of {total} `delivered` callbacks after {:.2} s",
                waited.as_secs_f64()
            );
            let store = warbler::store::Store::connect(&database_url).await?;
            let rows: Vec<(String, i64)> =
                sqlx::query_as("SELECT status, COUNT(*) FROM messages GROUP BY status")
                    .fetch_all(store.pool())
                    .await?;
            for (status, count) in rows {
                println!("    {status:<12} {count}");
            }
            false
        }
    };
    let by_status = receiver
        .by_status
        .lock()
        .unwrap()
        .iter()
        .map(|(status, n)| format!("{status} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    println!("  callbacks:         {callbacks} requests received in all ({by_status})");
    println!(
        "  callbacks/s:       {:.0} (all callbacks over the time until the last `delivered`)",
        callbacks as f64 / waited.as_secs_f64()
    );
    match cpu_used {
        Some(cpu) => println!(
            "  server CPU:        {cpu:.1} s from the first send to the last callback ({:.0} µs per message)",
            cpu / total as f64 * 1e6
        ),
        None => println!("  server CPU:        unavailable"),
    }
    print_rss("server", server_rss);
    print_rss("smsc", smsc_rss);
    receiver_task.abort();
    let log_lines = |path: &Path| {
        std::fs::read_to_string(path)
            .map(|log| log.lines().count())
            .unwrap_or(0)
    };
    println!(
        "  logs (warn level): server {} lines, smsc {} lines",
        log_lines(&server_log),
        log_lines(&smsc_log)
    );
    if !complete || failures > 0 {
        print_tail("server", &server_log, 30);
    }
    Ok(())
}
