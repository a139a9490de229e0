//! The message log export on a large table: inserts N messages (default 100,000) for one
//! account into a fresh SQLite file (or the PostgreSQL database given), then runs the release
//! `warbler export messages` on it, and prints rows per second and the exporter's peak RSS
//! (constant memory: the export reads a page at a time).
//!
//! ```sh
//! cargo build --release && cargo run --release --example bench_export -- [N] [DATABASE_URL]
//! ```

#[path = "support/mod.rs"]
mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::BENCH_SID as SID;

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let support::LargeTable {
        total,
        url,
        app,
        dir,
        ..
    } = support::large_table(
        "export",
        100_000,
        "Your flight FF123 boards at gate 7, at 10:45.",
    )
    .await?;
    drop(app);
    let binary = std::env::current_exe()?
        .parent()
        .and_then(|p| p.parent())
        .map(|p| p.join("warbler"))
        .expect("target dir");
    let started = Instant::now();
    let mut child = Command::new(&binary)
        .args(["export", "messages", "--account", SID, "--format", "csv"])
        .env("WARBLER_DATABASE_URL", &url)
        .env("WARBLER_DEMO_INVENTORY", "false")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let pid = child.id();
    let mut stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || -> std::io::Result<(u64, u64)> {
        use std::io::Read;
        let (mut bytes, mut lines) = (0u64, 0u64);
        let mut buffer = vec![0u8; 1 << 16];
        loop {
            let n = stdout.read(&mut buffer)?;
            if n == 0 {
                return Ok((bytes, lines));
            }
            bytes += n as u64;
            lines += buffer[..n].iter().filter(|b| **b == b'\n').count() as u64;
        }
    });
    let mut peak = 0;
    while child.try_wait()?.is_none() {
        peak = peak.max(peak_rss_kib(pid).unwrap_or(0));
        std::thread::sleep(Duration::from_millis(5));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (bytes, lines) = reader.join().expect("reader")?;
    println!("warbler export: {total} messages");
    println!(
        "  exported:  {} rows ({:.1} MiB) in {elapsed:.2} s, {:.0} rows/s",
        lines.saturating_sub(1),
        bytes as f64 / 1_048_576.0,
        lines.saturating_sub(1) as f64 / elapsed
    );
    println!("  peak RSS (exporter): {:.1} MiB", peak as f64 / 1024.0);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
