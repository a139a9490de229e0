//! The message log export on a large table: inserts N messages (default 100,000) for one
//! account into a fresh SQLite file (or the PostgreSQL database given), then runs the release
//! `warbler export messages` on it, and prints rows per second and the exporter's peak RSS
//! (constant memory: the export reads a page at a time).
//!
//! ```sh
//! cargo build --release && cargo run --release --example bench_export -- [N] [DATABASE_URL]
//! ```

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use warbler::domain::message::{Direction, Message, MessageStatus};
use warbler::service::{App, Settings};
use warbler::store::Store;

const SID: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "fedcba9876543210fedcba9876543210";

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
        .unwrap_or(100_000);
    let dir = std::env::temp_dir().join(format!("warbler-bench-export-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let url = args
        .get(2)
        .cloned()
        .unwrap_or_else(|| format!("sqlite://{}/export.db", dir.display()));
    let store = Store::connect(&url).await?;
    let app = App::new(store.clone(), Settings::new(1000, String::new()));
    app.ensure_main_account(Some(SID), Some(TOKEN), "bench")
        .await?;
    let base = warbler::domain::time::now_micros() - total as i64 * 1_000;
    let mut batch = Vec::with_capacity(1000);
    for i in 0..total {
        let at = base + i as i64 * 1_000;
        batch.push((
            Message {
                sid: format!("SM{:032x}", i),
                account_sid: SID.into(),
                messaging_service_sid: None,
                direction: Direction::OutboundApi,
                from: Some("+14155550100".into()),
                to: format!("+1212555{:04}", i % 1000),
                body: "Your flight FF123 boards at gate 7, at 10:45.".into(),
                encoding: "GSM-7".into(),
                num_segments: 1,
                num_media: 0,
                status: MessageStatus::Delivered,
                error_code: None,
                error_message: None,
                price: Some("-0.00790".into()),
                price_unit: "USD".into(),
                status_callback: None,
                validity_period: 36000,
                send_at: None,
                date_created: at,
                date_updated: at,
                date_sent: Some(at),
            },
            Vec::new(),
        ));
        if batch.len() == 1000 {
            store.insert_messages(&batch, at).await?;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        store.insert_messages(&batch, base).await?;
    }
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
