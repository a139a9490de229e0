//! Start-up failures of the real `warbler` binary: what it prints must say what went wrong
//! without giving away the database password.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A TCP server that is not a database: it accepts and hangs up at once, so a connection
/// attempt fails right away (a refused one would be retried for 30 s, as for a server still
/// starting).
fn hang_up_server() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            drop(stream);
        }
    });
    port
}

/// Runs `warbler serve` on `database_url`; returns its exit success, stdout and stderr.
fn serve_with(database_url: &str) -> (bool, String, String) {
    let dir = std::env::temp_dir().join(format!(
        "warbler-startup-{}",
        warbler::domain::sid::random_hex32()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_warbler"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            database_url,
        ])
        .current_dir(&dir)
        .env_remove("WARBLER_DATABASE_URL")
        .env_remove("WARBLER_CONFIG")
        .env("WARBLER_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start warbler");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("warbler neither failed nor started within 20 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (mut stdout, mut stderr) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    (status.success(), stdout, stderr)
}

#[test]
fn a_database_password_is_never_printed_when_start_up_fails() {
    let port = hang_up_server();
    for url in [
        format!("postgres://u:s3cret@127.0.0.1:{port}/db?password=s3cret2"),
        format!("postgres://u@127.0.0.1:{port}/db?sslmode=disable&password=s3cret2"),
        // Rejected before any connection, by warbler and by sqlx.
        format!("postgresx://u:s3cret@127.0.0.1:{port}/db?password=s3cret2"),
        format!("postgres://u:s3cret@127.0.0.1:{port}/db?password=s3cret2&port=abc"),
    ] {
        let (ok, stdout, stderr) = serve_with(&url);
        assert!(!ok, "{url} started");
        let output = format!("{stdout}{stderr}");
        assert!(
            !output.contains("s3cret"),
            "{url}: a password was printed:\n{output}"
        );
        // The error still names the database, as written minus its passwords.
        assert!(
            stderr.contains(&format!("opening database {}", redacted(&url))),
            "{url}: {stderr}"
        );
    }
}

fn redacted(url: &str) -> String {
    url.replace("u:s3cret@", "u:***@")
        .replace("password=s3cret2", "password=***")
}

#[test]
fn the_reason_a_database_cannot_be_opened_is_shown() {
    let port = hang_up_server();
    let (_, _, stderr) = serve_with(&format!("postgres://u:s3cret@127.0.0.1:{port}/db"));
    // sqlx's own words for a server that hangs up (they vary with the moment it does).
    let cause = stderr
        .split_once("Caused by:")
        .map(|(_, after)| after.trim_start().lines().next().unwrap_or_default())
        .unwrap_or_default();
    assert!(
        cause.contains("database") || cause.contains("SSLRequest"),
        "{stderr}"
    );
    let (_, _, stderr) = serve_with(&format!("mysql://u:s3cret@127.0.0.1:{port}/db"));
    assert!(
        stderr.contains("unsupported database URL (expected sqlite:// or postgres://)"),
        "{stderr}"
    );
}

/// Starts `warbler serve` on `url` in `dir` and reads its output until it says it is serving:
/// the child, whether it did, and its output (kept open, so that the server's later lines
/// still have a reader).
fn start_serving(
    url: &str,
    dir: &std::path::Path,
) -> (
    std::process::Child,
    bool,
    std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
) {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_warbler"))
        .args(["serve", "--listen", "127.0.0.1:0", "--database-url", url])
        .current_dir(dir)
        .env_remove("WARBLER_DATABASE_URL")
        .env_remove("WARBLER_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start warbler");
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let serving = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|line| line.contains("is serving the Twilio API"));
    (child, serving, lines)
}

/// A SQLite database has one server: its webhook sender keeps its claims in memory, so a
/// second server on the same file is refused (with the reason), and the first keeps serving.
#[test]
fn a_second_server_on_one_sqlite_file_is_refused() {
    let dir = std::env::temp_dir().join(format!(
        "warbler-one-server-{}",
        warbler::domain::sid::random_hex32()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}/warbler.db", dir.display());
    let (mut first, serving, _output) = start_serving(&url, &dir);
    assert!(serving, "the first server did not start");
    let (started, _, stderr) = serve_with(&url);
    assert!(!started);
    assert!(
        stderr.contains("another warbler server is already running on this SQLite database"),
        "{stderr}"
    );
    assert!(
        first.try_wait().unwrap().is_none(),
        "the first server stopped"
    );
    first.kill().unwrap();
    first.wait().unwrap();
    // Once it is gone, a server starts on the file again.
    let (mut again, serving, _output) = start_serving(&url, &dir);
    again.kill().unwrap();
    again.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(serving, "a server did not start once the first was gone");
}
