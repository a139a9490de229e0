//! Several real `warbler serve` processes on one PostgreSQL database: the API spread over the
//! nodes, their dispatchers and webhook senders competing for the same rows. Each test checks
//! with numbers that every accepted message is stored, sent once, reaches one final status and
//! is reported once per status; that a node killed (`kill -9`) or frozen (`SIGSTOP`) while it
//! holds claims makes nothing go out twice and loses nothing; and that nodes started together on
//! an empty database agree on one main account.
//!
//! PostgreSQL only (`TEST_DATABASE_URL=postgres://…`): on SQLite each test prints that it is
//! skipped and returns. Every test is bounded in time and kills its child processes on every
//! exit path; the figures are printed (`cargo nextest run --test cluster --no-capture`).
//! `CLUSTER_TEST_MESSAGES=n` changes how many messages the two bulk tests send;
//! `CLUSTER_WARBLER_BIN=target/release/warbler` runs the nodes from another build, and
//! `CLUSTER_TEST_NODES=1` runs the bulk tests on one node instead of three (a comparison).
//!
//! The kill and stop tests need the fault-injection knobs `WARBLER_FAULT_HOLD_CLAIMS_MS` (and
//! `WARBLER_FAULT_HOLD_WEBHOOK_CLAIMS_MS` for webhook claims): after
//! each dispatcher claim that took at least one message, the node logs at WARN a line with
//! `fault injection: holding claims` and sleeps that long before submitting. Without it they
//! fail after 30 s waiting for that line.

mod common;

use common::receiver::Receiver;
use common::{MAIN_SID, MAIN_TOKEN};
use futures::StreamExt;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The line a node logs (at WARN) after a dispatcher claim when `WARBLER_FAULT_HOLD_CLAIMS_MS`
/// is set, before it sleeps that long and then submits what it claimed.
const HOLDING: &str = "fault injection: holding claims";
/// The knobs: the dispatcher's hold, and the webhook sender's.
const HOLD_CLAIMS: &str = "WARBLER_FAULT_HOLD_CLAIMS_MS";
const HOLD_WEBHOOK_CLAIMS: &str = "WARBLER_FAULT_HOLD_WEBHOOK_CLAIMS_MS";
/// What a node logs after claiming webhooks with `HOLD_WEBHOOK_CLAIMS`, before sending them.
const HOLDING_WEBHOOKS: &str = "fault injection: holding webhook claims";

/// Lines of a child's output kept for the report (the rest are only counted).
const KEPT_LINES: usize = 20_000;

// ---------------------------------------------------------------------------------------------
// Child processes

/// A child process (a warbler node or the SMSC simulator), killed and reaped when dropped, so
/// that a failed assertion, a panic or a timeout never leaves it running.
struct Proc {
    name: String,
    child: Child,
    stdout: Lines,
    stderr: Lines,
}

#[derive(Clone, Default)]
struct Lines {
    kept: Arc<Mutex<Vec<String>>>,
    total: Arc<Mutex<usize>>,
}

impl Lines {
    /// Reads `source` line by line on a thread of its own until the pipe closes.
    fn drain(source: impl std::io::Read + Send + 'static) -> Lines {
        let lines = Lines::default();
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(source).lines() {
                let Ok(line) = line else { break };
                *sink.total.lock().unwrap() += 1;
                let mut kept = sink.kept.lock().unwrap();
                if kept.len() < KEPT_LINES {
                    kept.push(line);
                }
            }
        });
        lines
    }

    fn snapshot(&self) -> Vec<String> {
        self.kept.lock().unwrap().clone()
    }

    fn total(&self) -> usize {
        *self.total.lock().unwrap()
    }

    fn contains(&self, needle: &str) -> bool {
        self.kept.lock().unwrap().iter().any(|l| l.contains(needle))
    }
}

impl Proc {
    fn spawn(name: &str, mut command: Command) -> Proc {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| panic!("{name}: cannot start: {err}"));
        let stdout = Lines::drain(child.stdout.take().unwrap());
        let stderr = Lines::drain(child.stderr.take().unwrap());
        Proc {
            name: name.to_string(),
            child,
            stdout,
            stderr,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Some(status)` once the process has exited.
    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// `kill -9`, and wait for it to be gone.
    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends a signal by name (`STOP`, `CONT`) with the `kill` command.
    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} {} failed", self.pid());
    }

    /// Its output lines (stderr holds the WARN/ERROR log), summarized for the report.
    fn report(&self) {
        let lines = self.stderr.snapshot();
        let with = |needle: &str| lines.iter().filter(|l| l.contains(needle)).count();
        println!(
            "  {}: {} stderr lines (WARN and above): {} ERROR, {} `deadlock detected`, {} `slow statement`{}",
            self.name,
            self.stderr.total(),
            with(" ERROR "),
            with("deadlock detected"),
            with("slow statement"),
            if lines.is_empty() { "" } else { "; first:" }
        );
        for line in lines.iter().take(5) {
            println!("    {}", truncate(line, 300));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // SIGKILL also ends a stopped (SIGSTOP) process.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn truncate(line: &str, max: usize) -> &str {
    match line.char_indices().nth(max) {
        Some((at, _)) => &line[..at],
        None => line,
    }
}

/// The `warbler` the nodes run: this build's, or `CLUSTER_WARBLER_BIN` (a release build, to
/// measure throughput).
fn warbler_binary() -> String {
    std::env::var("CLUSTER_WARBLER_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_warbler").into())
}

/// A working directory for the nodes, removed when dropped.
struct TempDir(PathBuf);

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_dir(tag: &str) -> TempDir {
    let dir = std::env::temp_dir().join(format!(
        "warbler-cluster-{tag}-{}",
        warbler::domain::sid::random_hex32()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

/// How a node is started.
#[derive(Clone)]
struct NodeSpec {
    database_url: String,
    dir: PathBuf,
    lease_ms: u64,
    /// `WARBLER_ACCOUNT_SID` / `WARBLER_AUTH_TOKEN`, or none: the node makes up its own.
    fixed_main: bool,
    /// A TOML file (`--config`), for SMPP routes.
    config: Option<PathBuf>,
    simulated_latency_ms: u64,
    /// `WARBLER_WEBHOOK_TIMEOUT_MS` (a webhook claim's lease is this plus 5 s).
    webhook_timeout_ms: u64,
}

impl NodeSpec {
    fn new(database_url: &str, dir: &Path, lease_ms: u64) -> NodeSpec {
        NodeSpec {
            database_url: database_url.to_string(),
            dir: dir.to_path_buf(),
            lease_ms,
            fixed_main: true,
            config: None,
            simulated_latency_ms: 100,
            webhook_timeout_ms: 15_000,
        }
    }
}

struct Node {
    proc: Proc,
    base: String,
}

/// Starts `warbler serve` on a free port (not waiting for it to be ready).
fn start_node(name: &str, spec: &NodeSpec, extra_env: &[(&str, &str)]) -> Node {
    let port = common::free_port();
    let mut command = Command::new(warbler_binary());
    if let Some(config) = &spec.config {
        command.arg("--config").arg(config);
    }
    command
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--database-url",
            &spec.database_url,
        ])
        .current_dir(&spec.dir)
        .env_remove("WARBLER_ACCOUNT_SID")
        .env_remove("WARBLER_AUTH_TOKEN")
        .env_remove("WARBLER_CONFIG")
        .env("WARBLER_RATE_LIMIT_PER_SECOND", "0")
        .env(
            "WARBLER_SIMULATED_LATENCY_MS",
            spec.simulated_latency_ms.to_string(),
        )
        .env("WARBLER_DISPATCH_LEASE_MS", spec.lease_ms.to_string())
        .env("WARBLER_PACING__LONG_CODE", "1000000")
        .env("WARBLER_WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")
        .env("WARBLER_WEBHOOK_RETRY_BASE_MS", "500")
        .env(
            "WARBLER_WEBHOOK_TIMEOUT_MS",
            spec.webhook_timeout_ms.to_string(),
        )
        .env("WARBLER_LOG", "warn");
    if spec.fixed_main {
        command
            .env("WARBLER_ACCOUNT_SID", MAIN_SID)
            .env("WARBLER_AUTH_TOKEN", MAIN_TOKEN);
    }
    for (key, value) in extra_env {
        command.env(key, value);
    }
    Node {
        proc: Proc::spawn(name, command),
        base: format!("http://127.0.0.1:{port}"),
    }
}

/// Waits until the node answers `GET /healthz` with 200; `Err` with its output when it exits
/// first or `limit` passes.
async fn wait_healthy(
    client: &reqwest::Client,
    node: &mut Node,
    limit: Duration,
) -> Result<Duration, String> {
    let started = Instant::now();
    loop {
        if let Ok(reply) = client.get(format!("{}/healthz", node.base)).send().await {
            if reply.status().is_success() {
                return Ok(started.elapsed());
            }
        }
        if let Some(status) = node.proc.exited() {
            // Let the reader threads catch the last lines.
            tokio::time::sleep(Duration::from_millis(200)).await;
            return Err(format!(
                "{} exited ({status}) before it was healthy; stderr: {:?}",
                node.proc.name,
                node.proc.stderr.snapshot()
            ));
        }
        if started.elapsed() > limit {
            return Err(format!(
                "{} not healthy after {limit:?}; stderr: {:?}",
                node.proc.name,
                node.proc.stderr.snapshot()
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn must_be_healthy(client: &reqwest::Client, node: &mut Node) {
    if let Err(err) = wait_healthy(client, node, Duration::from_secs(60)).await {
        panic!("{err}");
    }
}

/// `warbler smsc` with its HTTP control endpoint, ready.
struct Smsc {
    proc: Proc,
    smpp_port: u16,
    control: String,
}

async fn start_smsc(client: &reqwest::Client, receipt_delay_ms: u64) -> Smsc {
    let smpp_port = common::free_port();
    let control_port = common::free_port();
    let mut command = Command::new(warbler_binary());
    command
        .args([
            "smsc",
            "--smpp-listen",
            &format!("127.0.0.1:{smpp_port}"),
            "--system-id",
            "warbler",
            "--password",
            "secret",
            "--receipt-delay-ms",
            &receipt_delay_ms.to_string(),
            "--control",
            &format!("127.0.0.1:{control_port}"),
        ])
        .env("WARBLER_LOG", "warn");
    let mut smsc = Smsc {
        proc: Proc::spawn("smsc", command),
        smpp_port,
        control: format!("http://127.0.0.1:{control_port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(reply) = client.get(format!("{}/stats", smsc.control)).send().await {
            if reply.status().is_success() {
                return smsc;
            }
        }
        if let Some(status) = smsc.proc.exited() {
            panic!(
                "warbler smsc exited ({status}): {:?}",
                smsc.proc.stderr.snapshot()
            );
        }
        assert!(Instant::now() < deadline, "warbler smsc never answered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A TOML file with one SMPP route to the simulator for every `+1` destination (the demo
/// inventory's numbers carry the route `simulated`, which no SMPP route serves, so the
/// destination prefix decides).
fn smpp_config(dir: &Path, smpp_port: u16, binds: u32) -> PathBuf {
    let path = dir.join("warbler.toml");
    std::fs::write(
        &path,
        format!(
            r#"[[smpp_routes]]
name = "smsc"
host = "127.0.0.1"
port = {smpp_port}
system_id = "warbler"
password = "secret"
binds = {binds}
window = 64
destination_prefixes = ["+1"]
enquire_link_secs = 5
response_timeout_ms = 2000
throttle_pause_ms = 200
"#
        ),
    )
    .unwrap();
    path
}

#[derive(serde::Deserialize, Debug)]
struct Submit {
    destination: String,
    status: u32,
    body_hex: String,
}

async fn smsc_submits(client: &reqwest::Client, smsc: &Smsc) -> Vec<Submit> {
    client
        .get(format!("{}/submits", smsc.control))
        .send()
        .await
        .expect("GET /submits")
        .json()
        .await
        .expect("submits as JSON")
}

async fn smsc_stats(client: &reqwest::Client, smsc: &Smsc) -> serde_json::Value {
    client
        .get(format!("{}/stats", smsc.control))
        .send()
        .await
        .expect("GET /stats")
        .json()
        .await
        .expect("stats as JSON")
}

/// Submits the SMSC accepted (status 0) per (destination without `+`, body): how many pairs were
/// submitted once, more than once, and the total of accepted submits.
fn submits_per_message(submits: &[Submit]) -> HashMap<(String, String), usize> {
    let mut per: HashMap<(String, String), usize> = HashMap::new();
    for submit in submits.iter().filter(|s| s.status == 0) {
        let body = hex::decode(&submit.body_hex)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        *per.entry((submit.destination.clone(), body)).or_default() += 1;
    }
    per
}

// ---------------------------------------------------------------------------------------------
// The test harness

/// Whether `TEST_DATABASE_URL` is PostgreSQL; on SQLite, prints that the test is skipped.
fn postgres_or_skip(test: &str) -> bool {
    let url = std::env::var("TEST_DATABASE_URL").unwrap_or_default();
    if url.starts_with("postgres") {
        true
    } else {
        println!("{test}: skipped on SQLite (several nodes need PostgreSQL: set TEST_DATABASE_URL=postgres://…)");
        false
    }
}

/// Runs a test body with a time limit: past it the body is dropped (its guards kill the
/// children) and the test fails saying so. Either way, and when the body panics, the sessions
/// the killed nodes left on the test's database are ended: PostgreSQL runs a dead client's
/// statement to its end, and a claim `UPDATE` can run for minutes.
async fn bounded<F: std::future::Future<Output = ()>>(
    test: &str,
    limit: Duration,
    database_url: &str,
    body: F,
) {
    use futures::FutureExt;
    println!("{test}: load average {} at the start", load_average());
    let outcome =
        tokio::time::timeout(limit, std::panic::AssertUnwindSafe(body).catch_unwind()).await;
    end_sessions(database_url).await;
    println!("{test}: load average {} at the end", load_average());
    match outcome {
        Err(_) => panic!("{test}: did not finish within {limit:?} (its nodes were killed)"),
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Ok(Ok(())) => {}
    }
}

/// Ends every other session on the test's own database.
async fn end_sessions(database_url: &str) {
    let db = pool(database_url).await;
    let ended: Result<Vec<bool>, _> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_all(&db)
    .await;
    if let Ok(ended) = ended {
        if !ended.is_empty() {
            println!("ended {} database sessions the nodes left", ended.len());
        }
    }
    db.close().await;
}

/// The machine's load average (1, 5, 15 min), for the report: the figures depend on it.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn http_client() -> reqwest::Client {
    warbler::webhook::install_crypto_provider();
    reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

async fn pool(database_url: &str) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::pool::PoolOptions::<sqlx::Any>::new()
        .max_connections(2)
        .connect(database_url)
        .await
        .expect("connect to the test database")
}

/// Messages by status.
async fn status_counts(db: &sqlx::AnyPool) -> BTreeMap<String, i64> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, COUNT(*) FROM messages GROUP BY status")
            .fetch_all(db)
            .await
            .unwrap();
    rows.into_iter().collect()
}

async fn count(db: &sqlx::AnyPool, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(db).await.unwrap()
}

/// Polls until no message is outside a final status; `Err` with the counts past `limit`.
async fn wait_all_final(db: &sqlx::AnyPool, limit: Duration) -> Result<Duration, String> {
    let started = Instant::now();
    loop {
        let unfinished = count(
            db,
            "SELECT COUNT(*) FROM messages WHERE status NOT IN ('delivered', 'undelivered', 'failed')",
        )
        .await;
        if unfinished == 0 {
            return Ok(started.elapsed());
        }
        if started.elapsed() > limit {
            return Err(format!(
                "{unfinished} messages not final after {limit:?}: {:?}",
                status_counts(db).await
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls until the webhook outbox is empty (every callback delivered), then waits `settle` for
/// late duplicates; `Err` past `limit`.
async fn wait_outbox_empty(
    db: &sqlx::AnyPool,
    limit: Duration,
    settle: Duration,
) -> Result<Duration, String> {
    let started = Instant::now();
    loop {
        let left = count(db, "SELECT COUNT(*) FROM webhook_outbox").await;
        if left == 0 {
            let took = started.elapsed();
            tokio::time::sleep(settle).await;
            return Ok(took);
        }
        if started.elapsed() > limit {
            return Err(format!(
                "{left} callbacks still in the outbox after {limit:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// How many messages have 0, 1 and more than 1 events of `status`, over every stored message
/// (each message's `events` column: `status,at[,code];` per transition).
async fn events_tally(db: &sqlx::AnyPool, status: &str) -> (usize, usize, usize, i64) {
    let rows: Vec<(String, Option<String>)> = sqlx::query_as("SELECT sid, events FROM messages")
        .fetch_all(db)
        .await
        .unwrap();
    let (mut zero, mut one, mut more, mut extra) = (0, 0, 0, 0);
    for (_, events) in &rows {
        let n = events
            .as_deref()
            .unwrap_or("")
            .split(';')
            .filter(|entry| entry.split(',').next() == Some(status))
            .count() as i64;
        match n {
            0 => zero += 1,
            1 => one += 1,
            n => {
                more += 1;
                extra += n - 1;
            }
        }
    }
    (zero, one, more, extra)
}

/// An account that sends, with its number.
#[derive(Clone)]
struct Sender {
    sid: String,
    token: String,
    from: String,
}

/// The main account with `+14155550100`, and a subaccount with `+14155550101` (created and
/// bought through `node`).
async fn two_senders(client: &reqwest::Client, node: &str) -> Vec<Sender> {
    let buy = |sid: String, token: String, number: &'static str| {
        let client = client.clone();
        let url = format!("{node}/2010-04-01/Accounts/{sid}/IncomingPhoneNumbers.json");
        async move {
            let reply = client
                .post(url)
                .basic_auth(&sid, Some(&token))
                .form(&[("PhoneNumber", number)])
                .send()
                .await
                .unwrap();
            let status = reply.status();
            let text = reply.text().await.unwrap();
            assert_eq!(status, 201, "buying {number}: {text}");
            Sender {
                sid,
                token,
                from: number.to_string(),
            }
        }
    };
    let main = buy(MAIN_SID.into(), MAIN_TOKEN.into(), "+14155550100").await;
    let reply = client
        .post(format!("{node}/2010-04-01/Accounts.json"))
        .basic_auth(MAIN_SID, Some(MAIN_TOKEN))
        .form(&[("FriendlyName", "cluster subaccount")])
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 201, "creating the subaccount");
    let body: serde_json::Value = reply.json().await.unwrap();
    let sub = buy(
        body["sid"].as_str().unwrap().to_string(),
        body["auth_token"].as_str().unwrap().to_string(),
        "+14155550101",
    )
    .await;
    // Other nodes cache accounts, services and numbers for at most a second.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    vec![main, sub]
}

/// What sending many messages gave.
#[derive(Default)]
struct Sent {
    /// (message SID, destination, body) of every 201.
    accepted: Vec<(String, String, String)>,
    /// Every HTTP status answered, with how many times.
    statuses: BTreeMap<u16, usize>,
    transport_errors: usize,
    /// Requests never made: the sending phase ran out of time.
    not_sent: usize,
    /// Every answered request's latency, sorted.
    latencies: Vec<Duration>,
    /// The first few non-201 answers and transport errors.
    samples: Vec<String>,
    elapsed: Duration,
}

impl Sent {
    fn not_created(&self) -> usize {
        self.statuses
            .iter()
            .filter(|(status, _)| **status != 201)
            .map(|(_, n)| n)
            .sum::<usize>()
            + self.transport_errors
            + self.not_sent
    }

    /// Adds what `other` sent to this.
    fn absorb(&mut self, other: Sent) {
        self.accepted.extend(other.accepted);
        for (status, n) in other.statuses {
            *self.statuses.entry(status).or_default() += n;
        }
        self.transport_errors += other.transport_errors;
        self.not_sent += other.not_sent;
        self.latencies.extend(other.latencies);
        self.latencies.sort_unstable();
        self.samples.extend(other.samples);
        self.elapsed = self.elapsed.max(other.elapsed);
    }

    fn latency(&self, quantile: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let at = ((self.latencies.len() - 1) as f64 * quantile).round() as usize;
        self.latencies[at]
    }

    fn server_errors(&self) -> usize {
        self.statuses
            .iter()
            .filter(|(status, _)| **status >= 500)
            .map(|(_, n)| n)
            .sum()
    }

    fn print(&self, test: &str) {
        let total = self.accepted.len() + self.not_created();
        println!(
            "{test}: {total} messages, {} requests made in {:.2?}: {} accepted (201) = {:.0} accepted/s; answers by status {:?}; {} 5xx; {} transport errors; {} not sent (time ran out); latency p50 {:.1?} p99 {:.1?} max {:.1?}",
            total - self.not_sent,
            self.elapsed,
            self.accepted.len(),
            self.accepted.len() as f64 / self.elapsed.as_secs_f64(),
            self.statuses,
            self.server_errors(),
            self.transport_errors,
            self.not_sent,
            self.latency(0.5),
            self.latency(0.99),
            self.latency(1.0)
        );
        for sample in &self.samples {
            println!("  {}", truncate(sample, 400));
        }
    }
}

/// What became of one request.
enum Outcome {
    Answered(u16, String),
    Failed(String),
    /// Not sent: the sending phase's time ran out first.
    NotSent,
}

/// Sends `count` messages: message `i` through node `i % nodes`, from sender `i % senders`, to
/// `+1415556` + `i` (4 digits), body `"{tag} {i}"`, with `concurrency` requests in flight.
/// Requests not started within `budget` are not sent (and counted).
#[allow(clippy::too_many_arguments)]
async fn send_messages(
    client: &reqwest::Client,
    nodes: &[String],
    senders: &[Sender],
    count: usize,
    tag: &str,
    callback: Option<String>,
    concurrency: usize,
    budget: Duration,
) -> Sent {
    let started = Instant::now();
    let deadline = started + budget;
    let results: Vec<(Outcome, Duration, String, String)> = futures::stream::iter(0..count)
        .map(|i| {
            let client = client.clone();
            let node = nodes[i % nodes.len()].clone();
            let sender = senders[i % senders.len()].clone();
            let callback = callback.clone();
            let to = format!("+1415556{i:04}");
            let body = format!("{tag} {i}");
            async move {
                let began = Instant::now();
                if began > deadline {
                    return (Outcome::NotSent, Duration::ZERO, to, body);
                }
                let mut form = vec![
                    ("To", to.clone()),
                    ("From", sender.from.clone()),
                    ("Body", body.clone()),
                ];
                if let Some(url) = callback {
                    form.push(("StatusCallback", url));
                }
                let reply = client
                    .post(format!(
                        "{node}/2010-04-01/Accounts/{}/Messages.json",
                        sender.sid
                    ))
                    .basic_auth(&sender.sid, Some(&sender.token))
                    .form(&form)
                    .send()
                    .await;
                let outcome = match reply {
                    Ok(reply) => {
                        let status = reply.status().as_u16();
                        match reply.text().await {
                            Ok(text) => Outcome::Answered(status, text),
                            Err(err) => {
                                Outcome::Failed(format!("{node}: reading the answer: {err}"))
                            }
                        }
                    }
                    Err(err) => Outcome::Failed(format!("{node}: {err}")),
                };
                (outcome, began.elapsed(), to, body)
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let mut sent = Sent {
        elapsed: started.elapsed(),
        ..Sent::default()
    };
    for (outcome, latency, to, body) in results {
        match outcome {
            Outcome::Answered(status, text) => {
                *sent.statuses.entry(status).or_default() += 1;
                sent.latencies.push(latency);
                if status == 201 {
                    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
                    sent.accepted
                        .push((json["sid"].as_str().unwrap().to_string(), to, body));
                } else if sent.samples.len() < 5 {
                    sent.samples.push(format!("{status}: {text}"));
                }
            }
            Outcome::Failed(err) => {
                sent.transport_errors += 1;
                if sent.samples.len() < 5 {
                    sent.samples.push(err);
                }
            }
            Outcome::NotSent => sent.not_sent += 1,
        }
    }
    sent.latencies.sort();
    sent
}

/// Per (MessageSid, MessageStatus): how many callbacks arrived.
fn callbacks(receiver: &Receiver) -> HashMap<(String, String), usize> {
    let mut per: HashMap<(String, String), usize> = HashMap::new();
    for hit in receiver.hits("/status") {
        let sid = hit.get("MessageSid").unwrap_or("").to_string();
        let status = hit.get("MessageStatus").unwrap_or("").to_string();
        *per.entry((sid, status)).or_default() += 1;
    }
    per
}

/// Checks the callbacks: one per (message, status), `sent` and `delivered` for every accepted
/// message. Returns the problems found (printing the figures).
fn check_callbacks(
    test: &str,
    receiver: &Receiver,
    accepted: &[(String, String, String)],
) -> Vec<String> {
    let per = callbacks(receiver);
    let total: usize = per.values().sum();
    let duplicates: usize = per.values().map(|n| n - 1).sum();
    let duplicated_pairs = per.values().filter(|n| **n > 1).count();
    let mut by_status: BTreeMap<&str, usize> = BTreeMap::new();
    for ((_, status), n) in &per {
        *by_status.entry(status.as_str()).or_default() += n;
    }
    let missing = |status: &str| {
        accepted
            .iter()
            .filter(|(sid, _, _)| !per.contains_key(&(sid.clone(), status.to_string())))
            .count()
    };
    let (missing_sent, missing_delivered) = (missing("sent"), missing("delivered"));
    println!(
        "{test}: {total} callbacks received, by status {by_status:?}; {duplicates} duplicates over {duplicated_pairs} (MessageSid, MessageStatus) pairs; {missing_sent} messages without a `sent` callback, {missing_delivered} without a `delivered` one"
    );
    let mut problems = Vec::new();
    if duplicates > 0 {
        let example = per
            .iter()
            .find(|(_, n)| **n > 1)
            .map(|(k, n)| format!("{k:?} x{n}"));
        problems.push(format!(
            "{duplicates} duplicate callbacks over {duplicated_pairs} (MessageSid, MessageStatus) pairs, e.g. {}",
            example.unwrap_or_default()
        ));
    }
    if missing_sent > 0 || missing_delivered > 0 {
        problems.push(format!(
            "{missing_sent} messages lack a `sent` callback, {missing_delivered} a `delivered` one"
        ));
    }
    problems
}

/// Checks the database: every accepted message stored, every message delivered, one `sent`
/// (and one `delivered`) event each. Returns the problems found (printing the figures).
async fn check_database(
    test: &str,
    db: &sqlx::AnyPool,
    accepted: &[(String, String, String)],
) -> Vec<String> {
    let mut problems = Vec::new();
    let stored: HashSet<String> = sqlx::query_scalar("SELECT sid FROM messages")
        .fetch_all(db)
        .await
        .unwrap()
        .into_iter()
        .collect();
    let not_stored = accepted
        .iter()
        .filter(|(sid, _, _)| !stored.contains(sid))
        .count();
    let statuses = status_counts(db).await;
    let (sent_zero, sent_one, sent_more, sent_extra) = events_tally(db, "sent").await;
    let (del_zero, del_one, del_more, del_extra) = events_tally(db, "delivered").await;
    let simulated = count(db, "SELECT COUNT(*) FROM simulated_submissions").await;
    println!(
        "{test}: {} accepted, {} stored ({not_stored} accepted but not stored); statuses {statuses:?}",
        accepted.len(),
        stored.len()
    );
    println!(
        "{test}: `sent` events: {sent_one} messages with one, {sent_zero} with none, {sent_more} with more than one ({sent_extra} extra); `delivered` events: {del_one} with one, {del_zero} with none, {del_more} with more ({del_extra} extra); simulated-carrier submissions {simulated}"
    );
    if not_stored > 0 {
        problems.push(format!("{not_stored} accepted messages not stored"));
    }
    let delivered = statuses.get("delivered").copied().unwrap_or(0);
    if delivered != stored.len() as i64 {
        problems.push(format!("not every message delivered: {statuses:?}"));
    }
    if sent_zero > 0 || sent_more > 0 {
        problems.push(format!(
            "`sent` events: {sent_zero} messages with none, {sent_more} with more than one ({sent_extra} extra)"
        ));
    }
    if del_zero > 0 || del_more > 0 {
        problems.push(format!(
            "`delivered` events: {del_zero} messages with none, {del_more} with more than one ({del_extra} extra)"
        ));
    }
    problems
}

fn print_nodes(nodes: &[&Node]) {
    for node in nodes {
        node.proc.report();
    }
}

fn finish(test: &str, problems: Vec<String>) {
    if problems.is_empty() {
        println!("{test}: all checks passed");
    } else {
        panic!(
            "{test}: {} problems:\n  {}",
            problems.len(),
            problems.join("\n  ")
        );
    }
}

/// Starts `count` nodes: the first alone (it migrates and creates the main account), then the
/// others together; all healthy.
async fn start_cluster(client: &reqwest::Client, spec: &NodeSpec, count: usize) -> Vec<Node> {
    let mut nodes = vec![start_node("node0", spec, &[])];
    must_be_healthy(client, &mut nodes[0]).await;
    for i in 1..count {
        nodes.push(start_node(&format!("node{i}"), spec, &[]));
    }
    for node in nodes.iter_mut() {
        must_be_healthy(client, node).await;
    }
    nodes
}

// ---------------------------------------------------------------------------------------------
// 1. and 5.: many messages over three nodes

/// Sends `messages` round-robin over three nodes from two accounts, each with a status
/// callback, and checks every figure. With `smpp_binds`, through an SMPP route to
/// `warbler smsc` (that many binds across the cluster) instead of the simulated carrier.
async fn many_messages_over_three_nodes(
    test: &'static str,
    database_url: &str,
    messages: usize,
    smpp_binds: Option<u32>,
    budget: Duration,
) {
    let test_started = Instant::now();
    // Phases end in time for the report: sending gets at most half the budget, waiting for the
    // messages to be final what is left but 30 s, the callbacks at most 20 s of those.
    let reported_by = test_started + budget - Duration::from_secs(10);
    let messages = std::env::var("CLUSTER_TEST_MESSAGES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(messages);
    let client = http_client();
    let db = pool(database_url).await;
    let dir = temp_dir("many");
    let mut spec = NodeSpec::new(database_url, &dir, 5000);
    let smsc = match smpp_binds {
        Some(binds) => {
            let smsc = start_smsc(&client, 50).await;
            spec.config = Some(smpp_config(&dir, smsc.smpp_port, binds));
            Some(smsc)
        }
        None => None,
    };
    let receiver = Receiver::start().await;
    let started = Instant::now();
    // `CLUSTER_TEST_NODES=1` measures one node on the same load, for comparison.
    let node_count = std::env::var("CLUSTER_TEST_NODES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3);
    let nodes = start_cluster(&client, &spec, node_count).await;
    println!(
        "{test}: {node_count} nodes healthy after {:.2?} (lease {} ms{})",
        started.elapsed(),
        spec.lease_ms,
        match smpp_binds {
            Some(binds) => format!(", SMPP route with {binds} binds across the cluster"),
            None => ", simulated carrier".into(),
        }
    );
    if let Some(smsc) = &smsc {
        // A route's `binds` are the cluster's: the nodes share them out (leases) and bind
        // that many sessions in all. Wait until the shares have settled (held for 5 s).
        let want = u64::from(smpp_binds.unwrap());
        let deadline = Instant::now() + Duration::from_secs(40);
        let mut steady_since: Option<Instant> = None;
        loop {
            let bound = smsc_stats(&client, smsc).await["bound"]
                .as_u64()
                .unwrap_or(0);
            assert!(
                bound <= want,
                "{bound} sessions bound at the SMSC for a route with {want} binds"
            );
            if bound == want {
                let since = *steady_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= Duration::from_secs(5) {
                    break;
                }
            } else {
                steady_since = None;
            }
            assert!(
                Instant::now() < deadline,
                "{bound} of {want} SMPP binds after 40 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        println!("{test}: {want} sessions bound at the SMSC across the {node_count} nodes");
    }
    let senders = two_senders(&client, &nodes[0].base).await;
    let bases: Vec<String> = nodes.iter().map(|n| n.base.clone()).collect();

    let sent = send_messages(
        &client,
        &bases,
        &senders,
        messages,
        "cluster",
        Some(receiver.url("/status")),
        32,
        budget / 2,
    )
    .await;
    sent.print(test);
    let mut problems = Vec::new();
    if sent.not_created() > 0 {
        problems.push(format!(
            "{} messages not answered 201 ({} 5xx, {} transport errors, {} not sent in the sending phase's {:?}): {:?}",
            sent.not_created(),
            sent.server_errors(),
            sent.transport_errors,
            sent.not_sent,
            budget / 2,
            sent.statuses
        ));
    }

    let final_limit = reported_by
        .saturating_duration_since(Instant::now())
        .saturating_sub(Duration::from_secs(20));
    match wait_all_final(&db, final_limit).await {
        Ok(took) => println!(
            "{test}: all messages final {took:.2?} after the last request ({:.2?} after the first)",
            took + sent.elapsed
        ),
        Err(err) => {
            println!("{test}: {err}");
            problems.push(err);
        }
    }
    let outbox_limit = reported_by
        .saturating_duration_since(Instant::now())
        .saturating_sub(Duration::from_secs(3))
        .min(Duration::from_secs(20));
    match wait_outbox_empty(&db, outbox_limit, Duration::from_secs(2)).await {
        Ok(took) => println!("{test}: webhook outbox empty {took:.2?} after that wait"),
        Err(err) => {
            println!("{test}: {err}");
            problems.push(err);
        }
    }
    problems.extend(check_callbacks(test, &receiver, &sent.accepted));
    problems.extend(check_database(test, &db, &sent.accepted).await);
    if let Some(smsc) = &smsc {
        let submits = smsc_submits(&client, smsc).await;
        let per = submits_per_message(&submits);
        let twice = per.values().filter(|n| **n > 1).count();
        let extra: usize = per.values().map(|n| n - 1).sum();
        let accepted: HashSet<(String, String)> = sent
            .accepted
            .iter()
            .map(|(_, to, body)| (to.trim_start_matches('+').to_string(), body.clone()))
            .collect();
        let never = accepted.iter().filter(|k| !per.contains_key(*k)).count();
        println!(
            "{test}: SMSC saw {} submit_sm ({} accepted), {} distinct messages: {twice} submitted more than once ({extra} extra submits), {never} accepted messages never submitted; stats {}",
            submits.len(),
            submits.iter().filter(|s| s.status == 0).count(),
            per.len(),
            smsc_stats(&client, smsc).await
        );
        if twice > 0 {
            problems.push(format!(
                "{twice} messages submitted to the SMSC more than once ({extra} extra submits)"
            ));
        }
        if never > 0 {
            problems.push(format!("{never} accepted messages never reached the SMSC"));
        }
        let bound = smsc_stats(&client, smsc).await["bound"]
            .as_u64()
            .unwrap_or(0);
        if bound != u64::from(smpp_binds.unwrap_or(0)) {
            problems.push(format!(
                "{bound} sessions bound at the end for a route with {} binds across the cluster",
                smpp_binds.unwrap_or(0)
            ));
        }
    }
    print_nodes(&nodes.iter().collect::<Vec<_>>());
    println!("{test}: took {:.2?} in all", test_started.elapsed());
    drop(nodes);
    drop(smsc);
    finish(test, problems);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_send_ten_thousand_messages_from_two_accounts_each_once_with_one_callback_per_status(
) {
    const TEST: &str = "ten thousand over three nodes";
    if !postgres_or_skip(TEST) {
        return;
    }
    let database = common::fresh_database().await;
    let database_url = database.url.clone();
    bounded(
        TEST,
        Duration::from_secs(190),
        &database_url,
        many_messages_over_three_nodes(TEST, &database_url, 10_000, None, Duration::from_secs(170)),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_over_smpp_submit_each_message_once_and_apply_each_receipt_once() {
    const TEST: &str = "two thousand over SMPP";
    if !postgres_or_skip(TEST) {
        return;
    }
    let database = common::fresh_database().await;
    let database_url = database.url.clone();
    bounded(
        TEST,
        Duration::from_secs(170),
        &database_url,
        many_messages_over_three_nodes(
            TEST,
            &database_url,
            2_000,
            Some(2),
            Duration::from_secs(150),
        ),
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// 2. and 3.: a node that holds claims dies or freezes

/// Three nodes; node A holds its claims (`WARBLER_FAULT_HOLD_CLAIMS_MS`) and is sent no
/// requests (a frozen node would hang them), so it claims with an idle API; messages are sent
/// through B and C while the test waits for A's holding line.
struct Holding {
    a: Node,
    others: Vec<Node>,
    /// The requests to B and C, still running when A is seen holding claims.
    sending: Option<tokio::task::JoinHandle<Sent>>,
    sent: Sent,
}

/// What node A holds: the knob that sets it, for how long, and the line A logs then.
struct Hold {
    knob: &'static str,
    ms: u64,
    line: &'static str,
}

/// Three nodes, A holding each claim as `hold` says, and `messages` sent through B and C
/// (with `callback` as their StatusCallback); returns as soon as A logs `hold.line`.
async fn cluster_with_a_holding_node(
    test: &str,
    client: &reqwest::Client,
    spec: &NodeSpec,
    hold: Hold,
    messages: usize,
    callback: Option<String>,
) -> Holding {
    let Hold {
        knob,
        ms,
        line: holding,
    } = hold;
    let hold = ms.to_string();
    // B first (it migrates and creates the main account), then A and C.
    let mut b = start_node("nodeB", spec, &[]);
    must_be_healthy(client, &mut b).await;
    let mut a = start_node("nodeA", spec, &[(knob, &hold)]);
    let mut c = start_node("nodeC", spec, &[]);
    must_be_healthy(client, &mut a).await;
    must_be_healthy(client, &mut c).await;
    let senders = two_senders(client, &b.base).await;
    let senders_of_a = senders.clone();
    let callback_of_a = callback.clone();
    let bases = vec![b.base.clone(), c.base.clone()];
    let sending = {
        let client = client.clone();
        tokio::spawn(async move {
            send_messages(
                &client,
                &bases,
                &senders,
                messages,
                "hold",
                callback,
                16,
                Duration::from_secs(40),
            )
            .await
        })
    };
    // A node dispatches the messages it accepts itself (claimed as it writes them,
    // `service::handoff`), so some of the load goes to A too: a few at a time, each batch
    // answered before the next, so that no request to A is under way when it is killed or
    // stopped. As soon as A says it holds claims (it then sleeps `ms` before working on them).
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut to_a = Sent::default();
    let mut batch = 0;
    while !a.proc.stderr.contains(holding) {
        if let Some(status) = a.proc.exited() {
            panic!("{test}: node A exited ({status}) before holding claims");
        }
        if Instant::now() > deadline {
            sending.abort();
            panic!(
                "{test}: node A never logged `{holding}` within 30 s (does this build honour {knob}?); its stderr: {:?}",
                a.proc.stderr.snapshot()
            );
        }
        let tag = format!("hold-a{batch}");
        let sent = send_messages(
            client,
            std::slice::from_ref(&a.base),
            &senders_of_a,
            4,
            &tag,
            callback_of_a.clone(),
            4,
            Duration::from_secs(10),
        )
        .await;
        to_a.absorb(sent);
        batch += 1;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Holding {
        a,
        others: vec![b, c],
        sending: Some(sending),
        sent: to_a,
    }
}

impl Holding {
    /// Waits for the requests to B and C to end, keeps and prints what they gave; returns
    /// the problem if any was not answered 201.
    async fn finish_sending(&mut self, test: &str) -> Vec<String> {
        let task = self.sending.take().expect("a sending task");
        let to_a = std::mem::take(&mut self.sent);
        self.sent = task.await.expect("the sending task");
        to_a.print(&format!("{test} (to A, before it was touched)"));
        self.sent.print(&format!("{test} (to B and C)"));
        self.sent.absorb(to_a);
        let mut problems = Vec::new();
        if self.sent.not_created() > 0 {
            problems.push(format!(
                "{} requests to B and C not answered 201: {:?}",
                self.sent.not_created(),
                self.sent.statuses
            ));
        }
        problems
    }
}

impl Drop for Holding {
    fn drop(&mut self) {
        if let Some(task) = self.sending.take() {
            task.abort();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_while_holding_claims_loses_nothing_and_its_messages_are_sent_once_by_the_others(
) {
    const TEST: &str = "kill -9 of a node holding claims";
    if !postgres_or_skip(TEST) {
        return;
    }
    let database = common::fresh_database().await;
    let database_url = database.url.clone();
    bounded(TEST, Duration::from_secs(150), &database_url, async {
        let client = http_client();
        let db = pool(&database_url).await;
        let dir = temp_dir("kill");
        let spec = NodeSpec::new(&database_url, &dir, 2000);
        let started = Instant::now();
        let mut cluster = cluster_with_a_holding_node(TEST, &client, &spec, Hold { knob: HOLD_CLAIMS, ms: 1500, line: HOLDING }, 400, None).await;
        let holding_seen = started.elapsed();
        cluster.a.proc.kill9();
        let killed = Instant::now();
        let not_final_at_kill = count(
            &db,
            "SELECT COUNT(*) FROM messages WHERE status NOT IN ('delivered', 'undelivered', 'failed')",
        )
        .await;
        let leased_at_kill = count(
            &db,
            "SELECT COUNT(*) FROM messages WHERE lease_until IS NOT NULL",
        )
        .await;
        println!(
            "{TEST}: node A logged `{HOLDING}` {holding_seen:.2?} after start; killed (-9) it: {not_final_at_kill} messages not final, {leased_at_kill} under a lease"
        );
        let mut problems = cluster.finish_sending(TEST).await;
        let bound = Duration::from_millis(spec.lease_ms) + Duration::from_secs(8);
        match wait_all_final(&db, Duration::from_secs(60)).await {
            Ok(_) => {
                let after_kill = killed.elapsed();
                println!(
                    "{TEST}: all messages final {after_kill:.2?} after the kill (lease {} ms)",
                    spec.lease_ms
                );
                if after_kill > bound {
                    problems.push(format!(
                        "the survivors took {after_kill:.2?} after the kill to finish (bound {bound:?})"
                    ));
                }
            }
            Err(err) => problems.push(err),
        }
        problems.extend(check_database(TEST, &db, &cluster.sent.accepted).await);
        let simulated = count(&db, "SELECT COUNT(*) FROM simulated_submissions").await;
        let stored = count(&db, "SELECT COUNT(*) FROM messages").await;
        if simulated != stored {
            problems.push(format!(
                "{simulated} carrier submissions for {stored} messages"
            ));
        }
        print_nodes(&[&cluster.a, &cluster.others[0], &cluster.others[1]]);
        drop(cluster);
        finish(TEST, problems);
    })
    .await;
}

/// A webhook claim's lease is one request's timeout plus 5 s: the callbacks a dead node held
/// are sent by the others soon after it, each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_while_holding_callbacks_has_them_sent_once_by_the_others_after_its_lease() {
    const TEST: &str = "kill -9 of a node holding callbacks";
    if !postgres_or_skip(TEST) {
        return;
    }
    let database = common::fresh_database().await;
    let database_url = database.url.clone();
    bounded(TEST, Duration::from_secs(150), &database_url, async {
        let client = http_client();
        let db = pool(&database_url).await;
        let dir = temp_dir("kill-callbacks");
        let mut spec = NodeSpec::new(&database_url, &dir, 2000);
        spec.webhook_timeout_ms = 2000;
        let webhook_lease = Duration::from_millis(spec.webhook_timeout_ms + 5000);
        let receiver = Receiver::start().await;
        let mut cluster = cluster_with_a_holding_node(
            TEST,
            &client,
            &spec,
            Hold {
                knob: HOLD_WEBHOOK_CLAIMS,
                ms: 1500,
                line: HOLDING_WEBHOOKS,
            },
            400,
            Some(receiver.url("/status")),
        )
        .await;
        cluster.a.proc.kill9();
        let killed = Instant::now();
        let held = count(
            &db,
            "SELECT COUNT(*) FROM webhook_outbox WHERE lease_until IS NOT NULL",
        )
        .await;
        println!("{TEST}: node A logged `{HOLDING_WEBHOOKS}`; killed (-9) it with {held} callbacks under a lease");
        let mut problems = cluster.finish_sending(TEST).await;
        if let Err(err) = wait_all_final(&db, Duration::from_secs(60)).await {
            problems.push(err);
        }
        let bound = webhook_lease + Duration::from_secs(5);
        match wait_outbox_empty(&db, Duration::from_secs(60), Duration::from_secs(2)).await {
            Ok(_) => {
                let after_kill = killed.elapsed().saturating_sub(Duration::from_secs(2));
                println!(
                    "{TEST}: webhook outbox empty {after_kill:.2?} after the kill (webhook lease {webhook_lease:?})"
                );
                if after_kill > bound {
                    problems.push(format!(
                        "the callbacks A held took {after_kill:.2?} after the kill (bound {bound:?})"
                    ));
                }
            }
            Err(err) => problems.push(err),
        }
        problems.extend(check_callbacks(TEST, &receiver, &cluster.sent.accepted));
        problems.extend(check_database(TEST, &db, &cluster.sent.accepted).await);
        print_nodes(&[&cluster.a, &cluster.others[0], &cluster.others[1]]);
        drop(cluster);
        finish(TEST, problems);
    })
    .await;
}

/// Node A holds each claim 500 ms (a quarter of its 2 s lease) before submitting, so between
/// stops it submits like the others; it is frozen for 5 s right after a claim. Woken up past
/// its lease, it must submit nothing of what it held: the others have sent it by then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_stopped_while_holding_claims_submits_nothing_twice_over_smpp() {
    const TEST: &str = "SIGSTOP of a node holding claims";
    if !postgres_or_skip(TEST) {
        return;
    }
    let database = common::fresh_database().await;
    let database_url = database.url.clone();
    bounded(TEST, Duration::from_secs(150), &database_url, async {
        let client = http_client();
        let db = pool(&database_url).await;
        let dir = temp_dir("stop");
        let smsc = start_smsc(&client, 50).await;
        let mut spec = NodeSpec::new(&database_url, &dir, 2000);
        spec.config = Some(smpp_config(&dir, smsc.smpp_port, 3));
        let started = Instant::now();
        let mut cluster = cluster_with_a_holding_node(TEST, &client, &spec, Hold { knob: HOLD_CLAIMS, ms: 500, line: HOLDING }, 400, None).await;
        let holding_seen = started.elapsed();
        cluster.a.proc.signal("STOP");
        let stopped = Instant::now();
        println!("{TEST}: node A logged `{HOLDING}` {holding_seen:.2?} after start; stopped it (SIGSTOP) for 5 s");
        tokio::time::sleep(Duration::from_secs(5)).await;
        cluster.a.proc.signal("CONT");
        println!("{TEST}: node A continued (SIGCONT) {:.2?} after the stop", stopped.elapsed());
        let mut problems = cluster.finish_sending(TEST).await;
        match wait_all_final(&db, Duration::from_secs(60)).await {
            Ok(_) => println!(
                "{TEST}: all messages final {:.2?} after the stop",
                stopped.elapsed()
            ),
            Err(err) => problems.push(err),
        }
        // Whatever A still submits after it continues comes within a moment.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let submits = smsc_submits(&client, &smsc).await;
        let per = submits_per_message(&submits);
        let twice = per.values().filter(|n| **n > 1).count();
        let extra: usize = per.values().map(|n| n - 1).sum();
        println!(
            "{TEST}: SMSC saw {} submit_sm ({} accepted) for {} distinct messages: {twice} submitted more than once ({extra} extra); stats {}",
            submits.len(),
            submits.iter().filter(|s| s.status == 0).count(),
            per.len(),
            smsc_stats(&client, &smsc).await
        );
        if twice > 0 {
            problems.push(format!(
                "{twice} messages submitted to the SMSC more than once ({extra} extra submits)"
            ));
        }
        problems.extend(check_database(TEST, &db, &cluster.sent.accepted).await);
        print_nodes(&[&cluster.a, &cluster.others[0], &cluster.others[1]]);
        drop(cluster);
        drop(smsc);
        finish(TEST, problems);
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// 4.: nodes started together on an empty database

/// Starts three nodes at the same instant on an empty database; returns the problems.
async fn three_nodes_at_once(test: &str, database_url: &str, fixed_main: bool) -> Vec<String> {
    let client = http_client();
    let dir = temp_dir("start");
    let mut spec = NodeSpec::new(database_url, &dir, 5000);
    spec.fixed_main = fixed_main;
    let started = Instant::now();
    let mut nodes: Vec<Node> = (0..3)
        .map(|i| start_node(&format!("node{i}"), &spec, &[]))
        .collect();
    let mut problems = Vec::new();
    for node in nodes.iter_mut() {
        match wait_healthy(&client, node, Duration::from_secs(60)).await {
            Ok(_) => println!(
                "{test}: {} healthy {:.2?} after the start",
                node.proc.name,
                started.elapsed()
            ),
            Err(err) => {
                println!("{test}: {}", truncate(&err, 2000));
                problems.push(truncate(&err, 600).to_string());
            }
        }
    }
    // The banner is printed before the node serves: wait (a bounded while) until the reader
    // threads have seen it from every node still running.
    let banner_deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < banner_deadline
        && nodes.iter_mut().any(|node| {
            node.proc.exited().is_none() && !node.proc.stdout.contains("Main account SID: ")
        })
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let db = pool(database_url).await;
    // (When every node died before migrating, there is no table to read.)
    let mains: Vec<String> =
        sqlx::query_scalar("SELECT sid FROM accounts WHERE owner_account_sid IS NULL ORDER BY sid")
            .fetch_all(&db)
            .await
            .unwrap_or_else(|err| {
                problems.push(format!("reading the accounts: {err}"));
                Vec::new()
            });
    let banners: Vec<Option<String>> = nodes
        .iter()
        .map(|node| {
            node.proc.stdout.snapshot().iter().find_map(|line| {
                line.strip_prefix("Main account SID: ")
                    .map(|sid| sid.trim().to_string())
            })
        })
        .collect();
    let created_banners = nodes
        .iter()
        .filter(|node| node.proc.stdout.contains("shown once"))
        .count();
    println!(
        "{test}: {} main accounts in the database {mains:?}; banners name {banners:?}; {created_banners} nodes printed a new auth token",
        mains.len()
    );
    if mains.len() != 1 {
        problems.push(format!("{} main accounts: {mains:?}", mains.len()));
    }
    if let Some(main) = mains.first() {
        let agree = banners
            .iter()
            .filter(|b| b.as_deref() == Some(main))
            .count();
        if agree != 3 {
            problems.push(format!(
                "{agree} of 3 banners name the main account {main}: {banners:?}"
            ));
        }
        if fixed_main && main != MAIN_SID {
            problems.push(format!("the main account is {main}, not {MAIN_SID}"));
        }
    }
    if fixed_main {
        // Each node answers the main account's credentials.
        for node in nodes.iter_mut() {
            if node.proc.exited().is_some() {
                continue;
            }
            let reply = client
                .get(format!("{}/2010-04-01/Accounts/{MAIN_SID}.json", node.base))
                .basic_auth(MAIN_SID, Some(MAIN_TOKEN))
                .send()
                .await;
            match reply {
                Ok(reply) if reply.status() == 200 => {}
                Ok(reply) => problems.push(format!(
                    "{} answers the main account with {}",
                    node.proc.name,
                    reply.status()
                )),
                Err(err) => problems.push(format!("{}: {err}", node.proc.name)),
            }
        }
    }
    let demo: Result<i64, _> = sqlx::query_scalar("SELECT COUNT(*) FROM phone_numbers")
        .fetch_one(&db)
        .await;
    println!("{test}: inventory numbers after the start: {demo:?}");
    for node in nodes.iter_mut() {
        if let Some(status) = node.proc.exited() {
            problems.push(format!("{} exited: {status}", node.proc.name));
        }
    }
    print_nodes(&nodes.iter().collect::<Vec<_>>());
    drop(nodes);
    problems
}

/// The start is a race that one try may not lose: it is run this many times, each on an empty
/// database of its own.
const START_ROUNDS: usize = 5;

async fn starts_on_empty_databases(test: &str, fixed_main: bool) {
    let mut databases = Vec::new();
    for _ in 0..START_ROUNDS {
        databases.push(common::fresh_database().await);
    }
    let urls: Vec<String> = databases.iter().map(|d| d.url.clone()).collect();
    bounded(test, Duration::from_secs(150), &urls[0], async {
        let mut problems = Vec::new();
        let mut failed_rounds = 0;
        for (round, url) in urls.iter().enumerate() {
            let label = format!("{test}, round {}/{START_ROUNDS}", round + 1);
            let found = three_nodes_at_once(&label, url, fixed_main).await;
            end_sessions(url).await;
            if !found.is_empty() {
                failed_rounds += 1;
            }
            problems.extend(
                found
                    .into_iter()
                    .map(|p| format!("round {}: {p}", round + 1)),
            );
        }
        println!("{test}: {failed_rounds} of {START_ROUNDS} rounds went wrong");
        finish(test, problems);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_started_together_on_an_empty_database_create_one_main_account() {
    const TEST: &str = "three nodes at once, no fixed SID";
    if !postgres_or_skip(TEST) {
        return;
    }
    starts_on_empty_databases(TEST, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_started_together_with_a_fixed_main_account_all_come_up() {
    const TEST: &str = "three nodes at once, fixed SID";
    if !postgres_or_skip(TEST) {
        return;
    }
    starts_on_empty_databases(TEST, true).await;
}
