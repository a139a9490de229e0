//! Configuration: one struct, read from defaults, then a TOML file (`--config`), then
//! `WARBLER_*` environment variables (`__` separates nested keys), then command-line flags.

use crate::domain::message::{default_prices, Pacing, Price};
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::Path;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Config {
    /// Address the HTTP API listens on.
    pub listen: SocketAddr,
    /// `sqlite://path/file.db` (embedded, the default) or `postgres://user:pass@host/db`.
    pub database_url: String,
    /// When a write counts as done and is answered: `synced` (on the disk, the default) or
    /// `written` (handed to the OS or the database server: a crash of warbler loses
    /// nothing, a crash of the machine can lose the last moments). See `store::Durability`.
    pub durability: crate::store::Durability,
    /// Absolute base URL clients reach this server at (scheme://host:port). The v1 APIs put it
    /// in `meta` paging URLs, which the SDKs follow verbatim. Default: `http://` + `listen`.
    pub public_url: Option<String>,
    /// Fixes the main account's SID (`AC` + 32 hex) when it is first created.
    pub account_sid: Option<String>,
    /// Fixes the main account's auth token (32 hex) when it is first created.
    pub auth_token: Option<String>,
    /// Friendly name of the main account created at first start.
    pub main_account_name: String,
    /// Most subaccounts one main account may hold (Twilio: 1,000; over it, error 21480).
    pub max_subaccounts: u32,
    /// Most API keys one account may hold (over it, 400 / 20001).
    pub max_keys_per_account: u32,
    /// Most Messaging Services one account may hold (over it, 400 / 20001).
    pub max_services_per_account: u32,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Requests per second allowed per account (its auth token and keys together, charged
    /// once they authenticated); 0 turns the limit off.
    pub rate_limit_per_second: u32,
    /// Burst of requests allowed above the steady rate.
    pub rate_limit_burst: u32,
    /// Milliseconds a client has to send a request's whole header (from the connection's start,
    /// or from the first byte of a later request on a kept-alive connection); 0 = no limit.
    pub header_read_timeout_ms: u64,
    /// Milliseconds a kept-alive connection may wait for its next request; 0 = no limit.
    pub keep_alive_timeout_ms: u64,
    /// Most client connections open at once (lowered to fit the open file limit). Over it, the
    /// connection idle the longest is closed to make room; when all are busy, the new one is.
    pub max_connections: usize,
    /// Failed authentications a client address or a username may make before backoff
    /// (1 s, doubling up to 5 min; the count is forgotten after 15 quiet minutes); 0 = off.
    pub failed_auth_limit: u32,
    /// A server-wide secret mixed into API-key secret hashes. Changing it invalidates keys.
    pub key_pepper: String,
    /// Load a small demo number inventory (fictional US/CA/GB numbers) when the inventory is
    /// empty at start, so the seeds' walkthrough works on a fresh install.
    pub demo_inventory: bool,
    /// Outbound price table: `[[prices]] prefix = "+44", sms = "0.0400", mms = "0.1000"`;
    /// a message costs its segments × the SMS price of the longest matching prefix.
    pub prices: Vec<Price>,
    /// Currency of the prices (ISO 4217).
    pub price_unit: String,
    /// Sending rates in segments per second by sender type (`[pacing] long_code = 1.0`,
    /// `toll_free`, `short_code`, `alpha`).
    pub pacing: Pacing,
    /// Per-sender rates that override `pacing`: `[pacing_overrides] "+14155550100" = 5.0`
    /// (segments per second; short codes by their digits, alpha senders by their name).
    pub pacing_overrides: std::collections::HashMap<String, f64>,
    /// Milliseconds the simulated carrier waits before reporting delivery.
    pub simulated_latency_ms: u64,
    /// Milliseconds a dispatcher's claim on a message lasts; after a crash, claimed messages
    /// are taken again once it runs out.
    pub dispatch_lease_ms: u64,
    /// Fault injection, for the multi-node tests only: milliseconds the dispatcher holds each
    /// claim before submitting (it logs `fault injection: holding claims` first). Keep at 0.
    pub fault_hold_claims_ms: u64,
    /// The same for the webhook sender's claims (it logs `fault injection: holding webhook
    /// claims`). Keep at 0.
    pub fault_hold_webhook_claims_ms: u64,
    /// Milliseconds to wait for a webhook's TCP connection.
    pub webhook_connect_timeout_ms: u64,
    /// Milliseconds a webhook request may take in all (Twilio: 15 s).
    pub webhook_timeout_ms: u64,
    /// Let webhooks reach loopback and private networks (off: server-side request forgery
    /// protection; turn on for development or webhooks inside the operator's network).
    pub webhook_allow_private_targets: bool,
    /// How long a failing status callback keeps being retried, in seconds.
    pub webhook_retry_window_secs: u64,
    /// Wait before the first retry of a failed status callback, doubling after each.
    pub webhook_retry_base_ms: u64,
    /// Seconds the parts of a concatenated inbound SMPP message wait for the missing ones
    /// before the parts received are delivered as they are.
    pub smpp_mo_parts_expire_secs: u64,
    /// Incomplete concatenated inbound SMPP messages held at most (the oldest beyond it are
    /// delivered as they are).
    pub smpp_mo_parts_max_sets: u64,
    /// What an inbound STOP blocks: `account` (every sender of the account) or `service`
    /// (the Messaging Service pool that received it, or the number outside any service).
    pub opt_out_scope: crate::domain::opt_out::OptOutScope,
    /// When a number moves to another account, its opt-outs are copied there.
    pub opt_outs_follow_number: bool,
    /// US A2P 10DLC: a US long code sends to US numbers only from a Messaging Service with a
    /// VERIFIED campaign; other such messages fail with 30034.
    pub a2p_enforcement: bool,
    /// Monthly number rental prices (`[rental_prices] local = "1.15"`, `mobile`, `toll_free`,
    /// `short_code`), charged at purchase and every 30 days after.
    pub rental_prices: crate::domain::usage::RentalPrices,
    /// How far below zero a main account's shared balance may go (e.g. `"0"` for prepaid, or
    /// `"500"`); over it new sends are refused. Unset: balances are kept but never enforced.
    #[serde(deserialize_with = "amount_text")]
    pub credit_limit: Option<String>,
    /// SMPP connections to carriers (`[[smpp_routes]]` tables; see the README). Messages
    /// whose sender or destination no route claims go to the built-in simulator.
    pub smpp_routes: Vec<crate::carrier::smpp::route::SmppRouteConfig>,
    /// Log filter, in `tracing_subscriber::EnvFilter` syntax.
    pub log: String,
    /// `text` (for people) or `json` (one object per line, for log collectors).
    pub log_format: LogFormat,
    /// Address of a listener that serves `GET /metrics` without credentials (for Prometheus
    /// inside the operator's network). Unset: none; the API port serves `/metrics` to the
    /// main account's auth token either way.
    pub metrics_listen: Option<SocketAddr>,
    /// Label message metrics by subaccount, not by main account (more series).
    pub metrics_per_subaccount: bool,
    /// SMTP relay for alarm e-mails: `smtp://host:25`, `smtp://user:pass@host:587?tls=required`
    /// (STARTTLS) or `smtps://user:pass@host:465`. Unset: alarms notify by webhook only.
    pub smtp_url: Option<String>,
    /// The sender address of alarm e-mails.
    pub smtp_from: String,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// An amount as text, written as a string or a number (`WARBLER_CREDIT_LIMIT=0` reaches the
/// configuration as an integer, `"0"` in TOML as a string); it is parsed as money later.
fn amount_text<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Amount {
        Text(String),
        Integer(i64),
        Decimal(f64),
    }
    Ok(match Option::<Amount>::deserialize(deserializer)? {
        None => None,
        Some(Amount::Text(text)) => Some(text),
        Some(Amount::Integer(n)) => Some(n.to_string()),
        Some(Amount::Decimal(x)) => Some(x.to_string()),
    })
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: "sqlite://warbler-data/warbler.db".to_string(),
            durability: crate::store::Durability::Synced,
            public_url: None,
            account_sid: None,
            auth_token: None,
            main_account_name: "Main Account".to_string(),
            max_subaccounts: 1000,
            max_keys_per_account: 100,
            max_services_per_account: 500,
            max_body_bytes: 1024 * 1024,
            rate_limit_per_second: 100,
            rate_limit_burst: 200,
            header_read_timeout_ms: 10_000,
            keep_alive_timeout_ms: 75_000,
            max_connections: 1024,
            failed_auth_limit: 20,
            key_pepper: String::new(),
            demo_inventory: true,
            prices: default_prices(),
            price_unit: "USD".to_string(),
            pacing: Pacing::default(),
            pacing_overrides: std::collections::HashMap::new(),
            simulated_latency_ms: 1000,
            dispatch_lease_ms: 30_000,
            fault_hold_claims_ms: 0,
            fault_hold_webhook_claims_ms: 0,
            webhook_connect_timeout_ms: 5_000,
            webhook_timeout_ms: 15_000,
            webhook_allow_private_targets: false,
            webhook_retry_window_secs: 24 * 3600,
            webhook_retry_base_ms: 5_000,
            smpp_mo_parts_expire_secs: 600,
            smpp_mo_parts_max_sets: 10_000,
            opt_out_scope: crate::domain::opt_out::OptOutScope::Account,
            opt_outs_follow_number: true,
            a2p_enforcement: false,
            rental_prices: crate::domain::usage::RentalPrices::default(),
            credit_limit: None,
            smpp_routes: Vec::new(),
            log: "info".to_string(),
            log_format: LogFormat::Text,
            metrics_listen: None,
            metrics_per_subaccount: false,
            smtp_url: None,
            smtp_from: "warbler <warbler@localhost>".to_string(),
        }
    }
}

/// A typo in the config file should stop the server rather than be ignored. (Environment
/// variables are not checked this way: unrelated `WARBLER_*` variables are common.)
fn reject_unknown_keys(path: &Path) -> Result<(), Box<figment::Error>> {
    let known: figment::value::Dict = Figment::from(Serialized::defaults(Config::default()))
        .extract()
        .map_err(Box::new)?;
    let found: figment::value::Dict = Figment::from(Toml::file(path))
        .extract()
        .map_err(Box::new)?;
    match found.keys().find(|key| !known.contains_key(*key)) {
        Some(key) => Err(Box::new(figment::Error::from(format!(
            "unknown key `{key}` in {}",
            path.display()
        )))),
        None => Ok(()),
    }
}

impl Config {
    /// Defaults, then the TOML file if given, then `WARBLER_*` variables.
    pub fn load(file: Option<&Path>) -> Result<Config, Box<figment::Error>> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(Box::new(figment::Error::from(format!(
                    "config file {} does not exist",
                    path.display()
                ))));
            }
            reject_unknown_keys(path)?;
            figment = figment.merge(Toml::file(path));
        }
        figment
            .merge(Env::prefixed("WARBLER_").split("__").ignore(&["config"]))
            .extract()
            .map_err(Box::new)
    }

    /// Checks the SMPP routes: each one valid, names unique.
    pub fn validate_routes(&self) -> Result<(), String> {
        let mut names = std::collections::HashSet::new();
        for route in &self.smpp_routes {
            route.validate()?;
            if !names.insert(route.name.as_str()) {
                return Err(format!("two smpp routes are named `{}`", route.name));
            }
        }
        Ok(())
    }

    /// The limits on client connections, before the open file limit is applied.
    pub fn connection_limits(&self) -> Result<crate::api::server::ConnectionLimits, String> {
        if self.max_connections == 0 {
            return Err("max_connections must be at least 1".into());
        }
        let timeout = |ms: u64| (ms > 0).then(|| std::time::Duration::from_millis(ms));
        Ok(crate::api::server::ConnectionLimits {
            header_read_timeout: timeout(self.header_read_timeout_ms),
            keep_alive_timeout: timeout(self.keep_alive_timeout_ms),
            max_connections: self.max_connections,
        })
    }

    /// The absolute base URL, without a trailing slash.
    pub fn public_base_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("http://{}", self.listen),
        }
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment's Jail closures return its large error type
mod tests {
    use super::*;

    #[test]
    fn defaults_listen_on_loopback_8080_with_sqlite() {
        let config = Config::default();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert!(config.database_url.starts_with("sqlite://warbler-data/"));
        assert_eq!(config.public_base_url(), "http://127.0.0.1:8080");
        assert_eq!(config.max_subaccounts, 1000);
    }

    #[test]
    fn file_then_environment_override_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "warbler.toml",
                "listen = \"0.0.0.0:9000\"\nmax_subaccounts = 5\npublic_url = \"https://sms.example.com/\"\n",
            )?;
            jail.set_env("WARBLER_MAX_SUBACCOUNTS", "7");
            let config = Config::load(Some(Path::new("warbler.toml"))).map_err(|e| *e)?;
            assert_eq!(config.listen.to_string(), "0.0.0.0:9000");
            assert_eq!(config.max_subaccounts, 7);
            assert_eq!(config.public_base_url(), "https://sms.example.com");
            Ok(())
        });
    }

    #[test]
    fn a_credit_limit_may_be_written_as_a_number() {
        for (raw, expected) in [
            ("0", "0"),
            ("500", "500"),
            ("12.5", "12.5"),
            ("\"7.25\"", "7.25"),
        ] {
            figment::Jail::expect_with(|jail| {
                jail.set_env("WARBLER_CREDIT_LIMIT", raw);
                let config = Config::load(None).map_err(|e| *e)?;
                assert_eq!(config.credit_limit.as_deref(), Some(expected), "{raw}");
                Ok(())
            });
        }
        figment::Jail::expect_with(|jail| {
            jail.create_file("limit.toml", "credit_limit = \"0\"\n")?;
            let config = Config::load(Some(Path::new("limit.toml"))).map_err(|e| *e)?;
            assert_eq!(config.credit_limit.as_deref(), Some("0"));
            Ok(())
        });
    }

    #[test]
    fn writes_are_synced_unless_written_is_asked_for() {
        use crate::store::Durability;
        assert_eq!(Config::default().durability, Durability::Synced);
        figment::Jail::expect_with(|jail| {
            jail.create_file("warbler.toml", "durability = \"written\"")?;
            let path = std::path::Path::new("warbler.toml");
            assert_eq!(
                Config::load(Some(path)).map_err(|e| *e)?.durability,
                Durability::Written
            );
            jail.set_env("WARBLER_DURABILITY", "synced");
            assert_eq!(
                Config::load(Some(path)).map_err(|e| *e)?.durability,
                Durability::Synced
            );
            jail.set_env("WARBLER_DURABILITY", "fast");
            let err = Config::load(None).unwrap_err().to_string();
            assert!(
                err.contains("DURABILITY") && err.contains("written"),
                "{err}"
            );
            Ok(())
        });
    }

    #[test]
    fn the_log_format_is_text_unless_json_is_asked_for() {
        assert_eq!(Config::default().log_format, LogFormat::Text);
        figment::Jail::expect_with(|jail| {
            jail.set_env("WARBLER_LOG_FORMAT", "json");
            assert_eq!(
                Config::load(None).map_err(|e| *e)?.log_format,
                LogFormat::Json
            );
            jail.set_env("WARBLER_LOG_FORMAT", "xml");
            assert!(Config::load(None).is_err());
            Ok(())
        });
    }

    #[test]
    fn unrelated_environment_variables_are_ignored() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("WARBLER_BIN", "/usr/local/bin/warbler");
            jail.set_env("WARBLER_PACING__LONG_CODE", "5");
            let config = Config::load(None).map_err(|e| *e)?;
            assert_eq!(config.pacing.long_code, 5.0);
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_and_missing_files_are_errors() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("bad.toml", "listne = \"0.0.0.0:1\"\n")?;
            assert!(Config::load(Some(Path::new("bad.toml"))).is_err());
            assert!(Config::load(Some(Path::new("absent.toml"))).is_err());
            Ok(())
        });
    }
}
