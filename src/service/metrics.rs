//! What the services count for `/metrics`, and the gauges read from the database and the
//! carriers when it is scraped (so keeping them costs nothing between scrapes).

use super::{App, Operation, Principal};
use crate::domain::account::Account;
use crate::domain::message::MessageStatus;
use crate::error::Result;
use crate::store::rows::StatusChange;
use crate::telemetry;
use std::sync::atomic::Ordering::Relaxed;

/// Main accounts remembered at most (an account's parent never changes, so entries never go
/// stale; past this the map starts over).
const MAIN_ACCOUNTS_KEPT: usize = 100_000;

impl App {
    /// The `account` label of `account`'s message metrics: its main account, or itself with
    /// `metrics_per_subaccount` (the operator's choice of cardinality).
    pub(crate) fn metrics_label(&self, account: &Account) -> String {
        if self.settings.metrics_per_subaccount {
            return account.sid.clone();
        }
        account
            .owner_account_sid
            .clone()
            .unwrap_or_else(|| account.sid.clone())
    }

    /// `metrics_label` from an account SID: a read the first time an account is seen, then
    /// from memory. Only the workers ask, never the request path.
    async fn metrics_label_of(&self, account_sid: &str) -> String {
        if self.settings.metrics_per_subaccount {
            return account_sid.to_string();
        }
        if let Some(main) = self
            .main_accounts
            .lock()
            .ok()
            .and_then(|known| known.get(account_sid).cloned())
        {
            return main;
        }
        let main = match self.store.account(account_sid).await {
            Ok(Some(account)) => account.owner_account_sid.unwrap_or(account.sid),
            // Counted under its own SID rather than not at all.
            _ => return account_sid.to_string(),
        };
        if let Ok(mut known) = self.main_accounts.lock() {
            if known.len() >= MAIN_ACCOUNTS_KEPT {
                known.clear();
            }
            known.insert(account_sid.to_string(), main.clone());
        }
        main
    }

    /// Counts committed status changes: segments and time to `sent`, final statuses by error
    /// code, time to `delivered`. A batch's counts are added up first, so the registry is
    /// asked once per account, status and code rather than once per message.
    pub(crate) async fn observe_changes(&self, changes: &[StatusChange]) {
        use std::collections::HashMap;
        let mut segments: HashMap<&str, u64> = HashMap::new();
        let mut finals: HashMap<(&str, MessageStatus, i64), u64> = HashMap::new();
        let to_sent = metrics::histogram!(telemetry::ACCEPTED_TO_SENT);
        let to_delivered = metrics::histogram!(telemetry::ACCEPTED_TO_DELIVERED);
        for change in changes {
            let waited = telemetry::micros_to_seconds(change.accepted_at, change.at);
            match change.status {
                MessageStatus::Sent => {
                    *segments.entry(&change.account_sid).or_default() +=
                        change.segments.max(1) as u64;
                    to_sent.record(waited);
                }
                status if status.is_final() => {
                    if status == MessageStatus::Delivered {
                        to_delivered.record(waited);
                    }
                    let key = (
                        change.account_sid.as_str(),
                        status,
                        change.error_code.unwrap_or(0),
                    );
                    *finals.entry(key).or_default() += 1;
                }
                _ => {}
            }
        }
        for (account_sid, count) in segments {
            let account = self.metrics_label_of(account_sid).await;
            metrics::counter!(telemetry::SEGMENTS_SENT, "account" => account).increment(count);
        }
        for ((account_sid, status, code), count) in finals {
            let account = self.metrics_label_of(account_sid).await;
            metrics::counter!(
                telemetry::MESSAGES_FINAL,
                "account" => account,
                "status" => status.as_str(),
                "error_code" => code.to_string()
            )
            .increment(count);
        }
    }

    /// `/metrics` on the API port: the main account's auth token only.
    pub async fn metrics_for(&self, principal: &Principal) -> Result<String> {
        super::check_credential(principal, Operation::FetchMetrics)?;
        self.render_metrics().await
    }

    /// The Prometheus text, after reading the gauges that reflect the database and carriers.
    pub async fn render_metrics(&self) -> Result<String> {
        let handle = telemetry::prometheus();
        let (due, scheduled, pacing) = self
            .store
            .queue_depth(crate::domain::time::now_micros())
            .await?;
        for (state, count) in [("due", due), ("scheduled", scheduled), ("pacing", pacing)] {
            metrics::gauge!(telemetry::QUEUE_DEPTH, "state" => state).set(count as f64);
        }
        metrics::gauge!(telemetry::WEBHOOK_PENDING)
            .set(self.store.pending_webhooks().await? as f64);
        for (pool, busy, idle) in self.store.pool_usage() {
            metrics::gauge!(telemetry::DB_POOL, "pool" => pool, "state" => "in_use")
                .set(busy as f64);
            metrics::gauge!(telemetry::DB_POOL, "pool" => pool, "state" => "idle").set(idle as f64);
        }
        for (name, route) in self.carrier.smpp_routes() {
            let label = || ("route", name.clone());
            let stats = &route.stats;
            metrics::gauge!(telemetry::SMPP_SESSIONS_BOUND, &[label()]).set(route.bound() as f64);
            metrics::gauge!(telemetry::SMPP_WINDOW_IN_USE, &[label()])
                .set(route.in_flight() as f64);
            for (family, value) in [
                (telemetry::SMPP_SUBMITS, &stats.submits),
                (telemetry::SMPP_THROTTLED, &stats.throttled),
                // Never answered: timed out, or still waiting when the session closed.
                (telemetry::SMPP_UNANSWERED, &stats.timeouts),
                (telemetry::SMPP_REJECTED, &stats.rejected),
                (telemetry::SMPP_RECEIPTS, &stats.receipts),
                (telemetry::SMPP_RECONNECTS, &stats.reconnects),
            ] {
                let mut value = value.load(Relaxed);
                if family == telemetry::SMPP_UNANSWERED {
                    value += stats.unanswered_at_close.load(Relaxed);
                }
                metrics::counter!(family, &[label()]).absolute(value);
            }
        }
        Ok(handle.render())
    }
}
