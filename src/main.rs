//! The `warbler` command: `warbler serve` (the default) runs the API server.

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use warbler::api::{self, HttpSettings};
use warbler::config::{Config, LogFormat};
use warbler::service::{App, Settings};
use warbler::store::Store;

/// glibc's allocator cost about a fifth of the pipeline's CPU under load (arenas consolidated
/// and chunks unlinked as rows and requests move between threads); mimalloc's per-thread
/// free lists do not. With the crate's `override` feature, C code's `malloc` (SQLite's page
/// cache and statements) is mimalloc's too (`docs/performance.md`, stop 46).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Keeps the process's memory in 4 KiB pages. With transparent huge pages on (Debian's
/// default is `always`), every page mimalloc hands back and touches again faults in and zeroes
/// 2 MiB: under load that was ~7 % of the pipeline's profile samples (`docs/performance.md`,
/// stop 43). `MIMALLOC_ALLOW_THP=1` in the environment leaves them on.
fn keep_pages_small() {
    #[cfg(target_os = "linux")]
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        if let Err(error) = rustix::thread::disable_transparent_huge_pages(true) {
            eprintln!("warning: transparent huge pages stay on: {error}");
        }
    }
}

/// A self-hosted, Twilio-compatible programmable messaging server.
///
/// Configuration is read from defaults, then the TOML file given by --config, then WARBLER_*
/// environment variables (WARBLER_LISTEN, WARBLER_DATABASE_URL, WARBLER_DURABILITY,
/// WARBLER_PUBLIC_URL, WARBLER_ACCOUNT_SID, WARBLER_AUTH_TOKEN, WARBLER_MAIN_ACCOUNT_NAME,
/// WARBLER_MAX_SUBACCOUNTS, WARBLER_MAX_BODY_BYTES, WARBLER_RATE_LIMIT_PER_SECOND,
/// WARBLER_RATE_LIMIT_BURST, WARBLER_HEADER_READ_TIMEOUT_MS, WARBLER_KEEP_ALIVE_TIMEOUT_MS,
/// WARBLER_MAX_CONNECTIONS, WARBLER_FAILED_AUTH_LIMIT, WARBLER_KEY_PEPPER, WARBLER_DEMO_INVENTORY,
/// WARBLER_PRICE_UNIT, WARBLER_PACING__LONG_CODE (and __TOLL_FREE, __SHORT_CODE, __ALPHA),
/// WARBLER_SIMULATED_LATENCY_MS, WARBLER_DISPATCH_LEASE_MS, WARBLER_LOG, WARBLER_LOG_FORMAT,
/// WARBLER_METRICS_LISTEN, WARBLER_SMTP_URL, WARBLER_SMTP_FROM; prices only in the TOML file), then
/// the flags below.
#[derive(Parser, Debug)]
#[command(name = "warbler", version, about, long_about)]
struct Cli {
    /// TOML configuration file.
    #[arg(long, global = true, env = "WARBLER_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, global = true)]
    listen: Option<SocketAddr>,
    /// sqlite://path/file.db or postgres://user:pass@host/db [default: sqlite://warbler-data/warbler.db].
    #[arg(long, global = true)]
    database_url: Option<String>,
    /// Absolute base URL clients use to reach this server [default: http://<listen>].
    #[arg(long, global = true)]
    public_url: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the API (the default when no command is given).
    Serve,
    /// Manage the operator's phone number inventory.
    Numbers {
        #[command(subcommand)]
        command: NumbersCommand,
    },
    /// Drive the built-in simulated carrier.
    Simulate {
        #[command(subcommand)]
        command: SimulateCommand,
    },
    /// Export logs to your own storage.
    Export {
        #[command(subcommand)]
        command: ExportCommand,
    },
    /// Balances: credit a main account (its subaccounts share the balance).
    Billing {
        #[command(subcommand)]
        command: BillingCommand,
    },
    /// Run an SMSC simulator (SMPP 3.4) for development, tests and benchmarks.
    Smsc(SmscArgs),
    /// Caps on a subaccount (a warbler extension): sending rate, monthly messages and spend.
    Caps {
        #[command(subcommand)]
        command: CapsCommand,
    },
    /// US A2P 10DLC registrations: review brands and campaigns (in place of The Campaign
    /// Registry, which warbler cannot reach).
    A2p {
        #[command(subcommand)]
        command: A2pCommand,
    },
}

#[derive(Subcommand, Debug)]
enum A2pCommand {
    /// List the brands (BN…) and campaigns (QE…) awaiting review, oldest first.
    Pending,
    /// Approve a brand (APPROVED) or campaign (VERIFIED), or reinstate a suspended one.
    Approve { sid: String },
    /// Reject a pending brand or campaign (FAILED).
    Reject {
        sid: String,
        /// Why, shown to the account in the record's `errors` and in the event.
        #[arg(long)]
        reason: String,
        /// A Twilio error code to report with it (e.g. 30701).
        #[arg(long)]
        error_code: Option<i64>,
    },
    /// Suspend an approved brand (and its campaigns) or a verified campaign.
    Suspend {
        sid: String,
        #[arg(long)]
        reason: Option<String>,
        #[arg(long)]
        error_code: Option<i64>,
    },
}

#[derive(clap::Args, Debug)]
struct SmscArgs {
    /// SMPP address to listen on.
    #[arg(long = "smpp-listen", default_value = "127.0.0.1:2775")]
    smpp_listen: SocketAddr,
    /// The system_id ESMEs must bind with.
    #[arg(long, default_value = "warbler")]
    system_id: String,
    /// The password ESMEs must bind with.
    #[arg(long, default_value = "secret")]
    password: String,
    /// Milliseconds between a submit and its delivery receipt.
    #[arg(long, default_value_t = 100)]
    receipt_delay_ms: u64,
    /// Milliseconds before each submit is answered.
    #[arg(long, default_value_t = 0)]
    response_delay_ms: u64,
    /// Write receipt ids in decimal (submit responses give them in hex).
    #[arg(long)]
    decimal_receipt_ids: bool,
    /// HTTP control address (POST /mo, GET /submits, GET /stats); none when not given.
    #[arg(long)]
    control: Option<SocketAddr>,
    /// Milliseconds a connection has to bind before it is closed.
    #[arg(long, default_value_t = 10_000)]
    bind_timeout_ms: u64,
    /// Failed binds in a row from one address before its further binds are slowed.
    #[arg(long, default_value_t = 3)]
    bind_failures_before_backoff: u32,
    /// Milliseconds the first slowed bind waits; the wait doubles after each failure (at
    /// most 60 s) and a successful bind resets it.
    #[arg(long, default_value_t = 1_000)]
    bind_backoff_ms: u64,
}

#[derive(Subcommand, Debug)]
enum CapsCommand {
    /// Show a subaccount's caps.
    Show { account: String },
    /// Set (or with an empty value remove) a subaccount's caps.
    Set {
        account: String,
        /// Segments per second across all its senders.
        #[arg(long)]
        max_sps: Option<String>,
        /// Messages accepted per calendar month (UTC).
        #[arg(long)]
        monthly_messages: Option<String>,
        /// Spend per calendar month, in the price unit.
        #[arg(long)]
        monthly_spend: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum ExportCommand {
    /// Write an account's messages (a main account's with its subaccounts') to standard
    /// output, oldest first.
    Messages {
        /// The account SID.
        #[arg(long)]
        account: String,
        /// First creation time included: YYYY-MM-DD or RFC 3339.
        #[arg(long)]
        since: Option<String>,
        /// Creation time excluded from there on: YYYY-MM-DD or RFC 3339.
        #[arg(long)]
        until: Option<String>,
        /// csv or jsonl.
        #[arg(long, default_value = "csv")]
        format: String,
        /// Leave a main account's subaccounts out.
        #[arg(long)]
        no_subaccounts: bool,
    },
}

#[derive(Subcommand, Debug)]
enum BillingCommand {
    /// Add money to the balance of ACCOUNT's main account.
    Credit {
        /// A main account or subaccount SID (the family's balance is credited).
        account: String,
        /// The amount in the price unit, e.g. 25 or 12.50 (negative to debit).
        #[arg(allow_hyphen_values = true)]
        amount: String,
        #[arg(long, default_value = "")]
        note: String,
    },
}

#[derive(Subcommand, Debug)]
enum SimulateCommand {
    /// A handset sends a message to one of the accounts' numbers.
    Inbound {
        /// The handset's number (E.164).
        #[arg(long)]
        from: String,
        /// The account's number or short code.
        #[arg(long)]
        to: String,
        #[arg(long, default_value = "")]
        body: String,
    },
}

#[derive(Subcommand, Debug)]
enum NumbersCommand {
    /// Import (add or refresh) inventory numbers from a CSV file with the header
    /// phone_number,country,type,sms,mms,voice,locality,region,postal_code,route.
    /// A bad row rejects the whole file, naming its line.
    Import {
        /// The CSV file.
        file: PathBuf,
    },
}

/// `warbler a2p …`: the operator's review, straight on the database.
async fn a2p_command(config: Config, command: A2pCommand) -> anyhow::Result<()> {
    use warbler::service::a2p::{Decision, Registration, ReviewRequest};
    let app = open_app(&config).await?;
    let fail = |err: warbler::error::Error| anyhow::anyhow!("{}", err.body().message);
    let (sid, request) = match &command {
        A2pCommand::Pending => {
            let pending = app.pending_registrations(1000).await.map_err(fail)?;
            if pending.is_empty() {
                println!("nothing awaits review");
            }
            for item in pending {
                match item {
                    Registration::Brand(b) => println!(
                        "{}  brand     account {}  {}  {}",
                        b.sid,
                        b.account_sid,
                        b.brand_type,
                        warbler::domain::time::iso8601(b.date_created)
                    ),
                    Registration::Campaign(c) => println!(
                        "{}  campaign  account {}  service {}  {}  {}",
                        c.sid,
                        c.account_sid,
                        c.messaging_service_sid,
                        c.usecase,
                        warbler::domain::time::iso8601(c.date_created)
                    ),
                }
            }
            return Ok(());
        }
        A2pCommand::Approve { sid } => (
            sid,
            ReviewRequest {
                decision: Decision::Approve,
                reason: None,
                error_code: None,
            },
        ),
        A2pCommand::Reject {
            sid,
            reason,
            error_code,
        } => (
            sid,
            ReviewRequest {
                decision: Decision::Reject,
                reason: Some(reason),
                error_code: *error_code,
            },
        ),
        A2pCommand::Suspend {
            sid,
            reason,
            error_code,
        } => (
            sid,
            ReviewRequest {
                decision: Decision::Suspend,
                reason: reason.as_deref(),
                error_code: *error_code,
            },
        ),
    };
    if sid.starts_with("BN") {
        let brand = app.review_brand(sid, &request).await.map_err(fail)?;
        println!(
            "{}: {} (registry ID {})",
            brand.sid,
            brand.status.as_str(),
            brand.tcr_id.as_deref().unwrap_or("none")
        );
    } else if sid.starts_with("QE") {
        let campaign = app.review_campaign(sid, &request).await.map_err(fail)?;
        println!(
            "{}: {} (registry ID {})",
            campaign.sid,
            campaign.status.as_str(),
            campaign.campaign_id.as_deref().unwrap_or("none")
        );
    } else {
        anyhow::bail!("{sid} is neither a brand (BN…) nor a campaign (QE…)");
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    keep_pages_small();
    let cli = Cli::parse();
    let mut config = Config::load(cli.config.as_deref()).context("reading configuration")?;
    if let Some(listen) = cli.listen {
        config.listen = listen;
    }
    if let Some(url) = cli.database_url {
        config.database_url = url;
    }
    if let Some(url) = cli.public_url {
        config.public_url = Some(url);
    }
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    match config.log_format {
        LogFormat::Text => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        // Event fields at the top level, so a collector finds `request_id` where it looks.
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init(),
    }
    let runtime = tokio::runtime::Runtime::new()?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => runtime.block_on(serve(config)),
        Command::Smsc(args) => runtime.block_on(run_smsc(args)),
        Command::Numbers {
            command: NumbersCommand::Import { file },
        } => runtime.block_on(import_numbers(config, file)),
        Command::Export {
            command:
                ExportCommand::Messages {
                    account,
                    since,
                    until,
                    format,
                    no_subaccounts,
                },
        } => runtime.block_on(export_messages(
            config,
            account,
            since,
            until,
            format,
            !no_subaccounts,
        )),
        Command::Caps { command } => runtime.block_on(async {
            let app = open_app(&config).await?;
            let sid = match &command {
                CapsCommand::Show { account } | CapsCommand::Set { account, .. } => account.clone(),
            };
            let known = app
                .store
                .account(&sid)
                .await
                .map_err(|err| anyhow::anyhow!("{err}"))?;
            if known.is_none_or(|a| a.owner_account_sid.is_none()) {
                anyhow::bail!("{sid} is not a subaccount");
            }
            let (account, caps) = match command {
                CapsCommand::Show { account } => {
                    let caps = app
                        .caps_of(&account)
                        .await
                        .map_err(|err| anyhow::anyhow!("{err}"))?;
                    (account, caps)
                }
                CapsCommand::Set {
                    account,
                    max_sps,
                    monthly_messages,
                    monthly_spend,
                } => {
                    let request = warbler::service::usage::CapsRequest {
                        max_sps: max_sps.as_deref(),
                        monthly_messages: monthly_messages.as_deref(),
                        monthly_spend: monthly_spend.as_deref(),
                    };
                    let caps = app
                        .set_caps(&account, &request)
                        .await
                        .map_err(|err| anyhow::anyhow!("{err}"))?;
                    (account, caps)
                }
            };
            let show = |v: Option<String>| v.unwrap_or_else(|| "none".into());
            println!(
                "{account}: max {} segments/s, {} messages/month, {} spend/month",
                show(caps.max_sps.map(|v| v.to_string())),
                show(caps.monthly_messages.map(|v| v.to_string())),
                show(caps.monthly_spend.map(warbler::domain::usage::format_money)),
            );
            Ok(())
        }),
        Command::A2p { command } => runtime.block_on(a2p_command(config, command)),
        Command::Billing {
            command:
                BillingCommand::Credit {
                    account,
                    amount,
                    note,
                },
        } => runtime.block_on(async {
            let app = open_app(&config).await?;
            let holder = app
                .store
                .account(&account)
                .await
                .map_err(|err| anyhow::anyhow!("{err}"))?
                .ok_or_else(|| anyhow::anyhow!("no account {account}"))?;
            let balance = app
                .credit(&holder, Some(&amount), Some(&note))
                .await
                .map_err(|err| anyhow::anyhow!("{err}"))?;
            println!(
                "balance of {}: {} {}",
                holder.owner_account_sid.as_deref().unwrap_or(&holder.sid),
                warbler::domain::usage::format_money(balance),
                config.price_unit
            );
            Ok(())
        }),
        Command::Simulate {
            command: SimulateCommand::Inbound { from, to, body },
        } => runtime.block_on(async {
            let app = open_app(&config).await?;
            let message = app
                .receive_simulated(&from, &to, &body)
                .await
                .map_err(|err| anyhow::anyhow!("{err}"))?;
            println!(
                "{} received on {} for {}",
                message.sid, message.to, message.account_sid
            );
            Ok(())
        }),
    }
}

/// The application for one-shot commands: no carrier connections.
async fn open_app(config: &Config) -> anyhow::Result<App> {
    open_app_with(config, false).await
}

/// The application; with `carriers`, the SMPP routes start binding.
async fn open_app_with(config: &Config, carriers: bool) -> anyhow::Result<App> {
    let store = Store::connect_with(&config.database_url, config.durability)
        .await
        .with_context(|| {
            format!(
                "opening database {}",
                warbler::store::database_url::redact(&config.database_url)
            )
        })?;
    Ok(App::new(
        store,
        Settings {
            prices: config.prices.clone(),
            price_unit: config.price_unit.clone(),
            pacing: config.pacing,
            pacing_overrides: config.pacing_overrides.clone(),
            simulated_latency: config.simulated_latency_ms as i64 * 1000,
            dispatch_lease: config.dispatch_lease_ms as i64 * 1000,
            fault_hold_claims: std::time::Duration::from_millis(config.fault_hold_claims_ms),
            fault_hold_webhook_claims: std::time::Duration::from_millis(
                config.fault_hold_webhook_claims_ms,
            ),
            webhooks: warbler::webhook::WebhookSettings {
                connect_timeout: std::time::Duration::from_millis(
                    config.webhook_connect_timeout_ms,
                ),
                timeout: std::time::Duration::from_millis(config.webhook_timeout_ms),
                allow_private_targets: config.webhook_allow_private_targets,
            },
            webhook_retry_window: config.webhook_retry_window_secs as i64 * 1_000_000,
            webhook_retry_base: config.webhook_retry_base_ms as i64 * 1000,
            smpp_mo_parts_expire: i64::try_from(config.smpp_mo_parts_expire_secs)
                .unwrap_or(i64::MAX)
                .saturating_mul(1_000_000),
            smpp_mo_parts_max_sets: i64::try_from(config.smpp_mo_parts_max_sets)
                .unwrap_or(i64::MAX),
            max_keys_per_account: config.max_keys_per_account,
            max_services_per_account: config.max_services_per_account,
            metrics_per_subaccount: config.metrics_per_subaccount,
            mailer: match &config.smtp_url {
                Some(url) if !url.is_empty() => Some(
                    warbler::mail::Mailer::new(url, &config.smtp_from)
                        .map_err(|err| anyhow::anyhow!("configuration: {err}"))?,
                ),
                _ => None,
            },
            opt_out_scope: config.opt_out_scope,
            opt_outs_follow_number: config.opt_outs_follow_number,
            a2p_enforcement: config.a2p_enforcement,
            rental_prices: {
                config
                    .rental_prices
                    .validate()
                    .map_err(|err| anyhow::anyhow!(err))?;
                config.rental_prices.clone()
            },
            credit_limit: match &config.credit_limit {
                Some(raw) => Some(
                    warbler::domain::usage::parse_money(raw)
                        .ok_or_else(|| anyhow::anyhow!("credit_limit {raw:?} is not an amount"))?,
                ),
                None => None,
            },
            smpp_routes: if carriers {
                config.smpp_routes.clone()
            } else {
                Vec::new()
            },
            ..Settings::new(config.max_subaccounts, config.key_pepper.clone())
        },
    ))
}

async fn export_messages(
    config: Config,
    account: String,
    since: Option<String>,
    until: Option<String>,
    format: String,
    include_subaccounts: bool,
) -> anyhow::Result<()> {
    use std::io::Write;
    use warbler::service::export::{parse_bound, ExportFormat, ExportWriter};
    let format = ExportFormat::parse(&format)
        .ok_or_else(|| anyhow::anyhow!("--format must be csv or jsonl"))?;
    let bound = |name: &str, raw: &Option<String>, default: i64| -> anyhow::Result<i64> {
        match raw {
            Some(raw) => parse_bound(name, raw).map_err(|err| anyhow::anyhow!("{err}")),
            None => Ok(default),
        }
    };
    let since = bound("--since", &since, 0)?;
    let until = bound("--until", &until, i64::MAX)?;
    let app = open_app(&config).await?;
    let mut cursor = app
        .start_export(&account, include_subaccounts, since, until)
        .await
        .map_err(|err| anyhow::anyhow!("{err}"))?;
    let writer = ExportWriter::new(format);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    out.write_all(&writer.header())?;
    let mut count = 0usize;
    while let Some(page) = app
        .export_next(&mut cursor)
        .await
        .map_err(|err| anyhow::anyhow!("{err}"))?
    {
        count += page.len();
        out.write_all(&writer.rows(&page))?;
    }
    out.flush()?;
    eprintln!("exported {count} messages");
    Ok(())
}

async fn import_numbers(config: Config, file: PathBuf) -> anyhow::Result<()> {
    let app = open_app(&config).await?;
    let csv = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
    match app.import_inventory(&csv).await {
        Ok(count) => {
            println!("imported {count} numbers from {}", file.display());
            Ok(())
        }
        Err(err) => anyhow::bail!("{}: {err}", file.display()),
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    config
        .validate_routes()
        .map_err(|err| anyhow::anyhow!("configuration: {err}"))?;
    let configured_limits = config
        .connection_limits()
        .map_err(|err| anyhow::anyhow!("configuration: {err}"))?;
    let open_files = api::server::raise_open_file_limit();
    let limits = configured_limits.within_open_file_limit(open_files);
    if limits.max_connections < configured_limits.max_connections {
        tracing::warn!(
            max_connections = limits.max_connections,
            open_files,
            "max_connections lowered to fit the open file limit"
        );
    }
    let app = open_app_with(&config, true).await?;
    // Nodes starting together on one database take turns: one main account, ever.
    let startup = app.store.startup_lock().await?;
    let main = app
        .ensure_main_account(
            config.account_sid.as_deref(),
            config.auth_token.as_deref(),
            &config.main_account_name,
        )
        .await?;
    let rentals = app
        .store
        .backfill_rentals(
            &app.settings.rental_prices,
            warbler::domain::time::now_micros(),
        )
        .await?;
    if rentals > 0 {
        tracing::info!(rentals, "started rentals for numbers held before billing");
    }
    if config.demo_inventory {
        let seeded = app.seed_demo_inventory().await?;
        if seeded > 0 {
            tracing::info!(
                seeded,
                "loaded the demo number inventory (demo_inventory = false turns it off)"
            );
        }
    }
    startup.release().await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let base_url = config.public_base_url();
    print_banner(&base_url, &main);
    let router = api::router(
        app.clone(),
        &HttpSettings {
            public_url: base_url.clone(),
            max_body_bytes: config.max_body_bytes,
            rate_limit_per_second: config.rate_limit_per_second,
            rate_limit_burst: config.rate_limit_burst,
            failed_auth_limit: config.failed_auth_limit,
        },
    );
    if let Some(address) = config.metrics_listen {
        let metrics = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("listening on {address} (metrics_listen)"))?;
        tracing::info!(%address, "serving /metrics without credentials");
        let router = api::metrics_router(app.clone());
        tokio::spawn(async move { axum::serve(metrics, router).await });
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let engine = warbler::engine::start(&app, stopped)?;
    api::server::serve(listener, router, limits, shutdown_signal()).await?;
    let _ = stop.send(true);
    engine.stopped().await;
    app.carrier.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

async fn run_smsc(args: SmscArgs) -> anyhow::Result<()> {
    use warbler::smsc::{Smsc, SmscConfig};
    let smsc = Smsc::start(SmscConfig {
        listen: args.smpp_listen,
        system_id: args.system_id.clone(),
        password: args.password,
        receipt_delay: std::time::Duration::from_millis(args.receipt_delay_ms),
        response_delay: std::time::Duration::from_millis(args.response_delay_ms),
        decimal_receipt_ids: args.decimal_receipt_ids,
        bind_timeout: std::time::Duration::from_millis(args.bind_timeout_ms),
        bind_throttle: warbler::smsc::ThrottleSettings {
            failures_before_backoff: args.bind_failures_before_backoff,
            backoff: std::time::Duration::from_millis(args.bind_backoff_ms),
        },
    })
    .await
    .with_context(|| format!("listening on {}", args.smpp_listen))?;
    println!(
        "warbler smsc: SMPP on {} (system_id {})",
        smsc.local_addr, args.system_id
    );
    if let Some(address) = args.control {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("listening on {address}"))?;
        println!("control: http://{}", listener.local_addr()?);
        let router = warbler::smsc::control::router(smsc.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
    }
    shutdown_signal().await;
    smsc.stop();
    Ok(())
}

fn print_banner(base_url: &str, main: &warbler::service::accounts::MainAccount) {
    let sid = &main.account.sid;
    println!("warbler is serving the Twilio API at {base_url}");
    println!("Main account SID: {sid}");
    if main.created {
        let token = &main.account.auth_token;
        println!("Auth token:       {token}   (shown once: keep it safe)");
        println!();
        // The README shows the same snippets; conformance/test_readme.py and
        // conformance-node/test/readme.test.mjs check that they match and run.
        println!("Point twilio-python (9.x) at it (every *.twilio.com domain goes to warbler):");
        print_indented(&python_snippet(base_url, sid, token));
        println!();
        println!("Point twilio-node (6.x) at it (an ES module, .mjs):");
        print_indented(&node_snippet(base_url, sid, token));
    } else {
        println!("Auth token: as printed at first start (or WARBLER_AUTH_TOKEN)");
    }
}

fn print_indented(code: &str) {
    for line in code.lines() {
        if line.is_empty() {
            println!();
        } else {
            println!("    {line}");
        }
    }
}

fn python_snippet(base_url: &str, sid: &str, token: &str) -> String {
    format!(
        r#"import re
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

class Warbler(TwilioHttpClient):
    """Sends every request for https://*.twilio.com to warbler."""
    def request(self, method, url, *args, **kwargs):
        url = re.sub(r"^https://[^/]+\.twilio\.com", "{base_url}", url)
        return super().request(method, url, *args, **kwargs)

client = Client("{sid}", "{token}", http_client=Warbler())
print(client.api.v2010.accounts.create(friendly_name="FalconFlights").sid)
"#
    )
}

fn node_snippet(base_url: &str, sid: &str, token: &str) -> String {
    format!(
        r#"import twilio from "twilio";

// Sends every request for https://*.twilio.com to warbler.
class Warbler extends twilio.RequestClient {{
  request(opts) {{
    const uri = opts.uri.replace(/^https:\/\/[^/]+\.twilio\.com/, "{base_url}");
    return super.request({{ ...opts, uri }});
  }}
}}
// region and edge "" ignore TWILIO_REGION / TWILIO_EDGE from the environment.
const client = twilio("{sid}", "{token}", {{ httpClient: new Warbler(), region: "", edge: "" }});
console.log((await client.api.v2010.accounts.create({{ friendlyName: "FalconFlights" }})).sid);
"#
    )
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    fn transparent_huge_pages_enabled() -> bool {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("THP_enabled:"));
        // Kernels before 5.0 have no such line; the flag is read back through prctl then.
        match line {
            Some(line) => line.split_whitespace().nth(1) == Some("1"),
            None => !rustix::thread::transparent_huge_pages_are_disabled().unwrap(),
        }
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn the_process_keeps_its_memory_in_small_pages() {
        if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
            keep_pages_small();
            assert!(!transparent_huge_pages_enabled());
        }
    }
}
