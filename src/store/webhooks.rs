//! The webhook outbox's delivery side: claiming due rows under leases, renewing and settling
//! them (with the TwiML replies and alerts a round produces), and reading monitor alerts.
//! What goes into the outbox is written by `outbox`.

use super::leases::push_lease_end;
use super::outbox::{insert_alerts, refused_reply_alert};
use super::queue::{insert_new_messages_in, Framing};
use super::rows::{Admission, WebhookKind, ALERT_COLUMNS};
use super::{int, opt_int, opt_text, text, Backend, Sql, Store};
use crate::domain::alert::Alert;
use crate::domain::message::{Media, Message};
use crate::domain::paging::PageRequest;
use crate::error::Result;
use sqlx::any::AnyRow;

/// One outbox row.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub id: String,
    pub kind: WebhookKind,
    pub account_sid: String,
    /// The message the webhook is about.
    pub message_sid: String,
    pub url: String,
    pub method: String,
    pub fallback_url: Option<String>,
    pub fallback_method: Option<String>,
    pub message_status: Option<String>,
    pub error_code: Option<i64>,
    pub done_date: Option<String>,
    /// Inbound webhooks: the URL-encoded form.
    pub payload: Option<String>,
    pub attempts: i64,
    pub created_at: i64,
}

/// What became of a claimed webhook.
#[derive(Debug, Clone)]
pub enum Settled {
    /// Delivered, or given up on: the row goes.
    Done { id: String },
    /// Failed; try again at `due_at`.
    Retry { id: String, due_at: i64 },
    /// The primary URL failed; try the fallback URL now.
    Fallback { id: String },
}

impl Settled {
    pub fn id(&self) -> &str {
        match self {
            Settled::Done { id } | Settled::Retry { id, .. } | Settled::Fallback { id } => id,
        }
    }
}

/// A claim made as status callbacks are written (see `service::callback_handoff`): each row
/// that is the only pending webhook of its message when it is written is leased under `token`
/// for `lease` microseconds (the database's clock) and due when the lease ends, for this
/// node's webhook sender, which gets it in memory instead of claiming it from the database.
/// PostgreSQL only (the outbox's leases are in memory on a SQLite file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallbackBirthClaim {
    pub token: i64,
    pub lease: i64,
    /// The caller's time: the lease starts no earlier (`leases::push_lease_clock`).
    pub now: i64,
}

/// What one claim of webhooks took, and the token to settle them with.
#[derive(Debug)]
pub struct WebhookClaim {
    pub token: i64,
    pub webhooks: Vec<Webhook>,
    /// Webhooks whose previous claim had lapsed unfinished (a node died or paused).
    pub taken_over: usize,
}

/// What one webhook's delivery commits (a round commits many at once).
#[derive(Debug, Default)]
pub struct Settlement {
    pub settled: Vec<Settled>,
    pub alerts: Vec<Alert>,
    /// Messages created by TwiML replies.
    pub replies: Vec<(Message, Vec<Media>)>,
    /// What each reply will cost (for the account's spend cap), in `replies`' order.
    pub reply_estimates: Vec<crate::domain::usage::Money>,
    /// Status callback attempts, for the console's message page.
    pub attempts: Vec<super::console::CallbackAttempt>,
}

impl Settlement {
    /// Nothing to send after all (the account or message is gone): the row goes.
    pub fn done(id: String) -> Settlement {
        Settlement {
            settled: vec![Settled::Done { id }],
            ..Settlement::default()
        }
    }
}

/// The columns `decode_webhook` reads.
const WEBHOOK_COLUMNS: &str = "id, kind, account_sid, ordering_key, url, method, fallback_url, \
    fallback_method, message_status, error_code, done_date, payload, attempts, created_at";

fn decode_webhook(row: &impl super::Columns) -> Result<Webhook> {
    Ok(Webhook {
        id: text(row, "id")?,
        kind: match text(row, "kind")?.as_str() {
            "inbound" => WebhookKind::Inbound,
            "trigger" => WebhookKind::Trigger,
            "alarm" => WebhookKind::Alarm,
            "a2p_event" => WebhookKind::A2pEvent,
            _ => WebhookKind::Status,
        },
        account_sid: text(row, "account_sid")?,
        message_sid: text(row, "ordering_key")?,
        url: text(row, "url")?,
        method: text(row, "method")?,
        fallback_url: opt_text(row, "fallback_url")?,
        fallback_method: opt_text(row, "fallback_method")?,
        message_status: opt_text(row, "message_status")?,
        error_code: opt_int(row, "error_code")?,
        done_date: opt_text(row, "done_date")?,
        payload: opt_text(row, "payload")?,
        attempts: int(row, "attempts")?,
        created_at: int(row, "created_at")?,
    })
}

fn decode_alert(row: &AnyRow) -> Result<Alert> {
    Ok(Alert {
        sid: text(row, "sid")?,
        account_sid: text(row, "account_sid")?,
        error_code: text(row, "error_code")?,
        log_level: text(row, "log_level")?,
        alert_text: text(row, "alert_text")?,
        resource_sid: opt_text(row, "resource_sid")?,
        service_sid: opt_text(row, "service_sid")?,
        request_method: opt_text(row, "request_method")?,
        request_url: opt_text(row, "request_url")?,
        request_variables: opt_text(row, "request_variables")?,
        request_headers: opt_text(row, "request_headers")?,
        response_body: opt_text(row, "response_body")?,
        response_headers: opt_text(row, "response_headers")?,
        date_created: int(row, "date_created")?,
    })
}

/// Filters of `ListAlert` (times in microseconds, inclusive).
#[derive(Debug, Default, Clone)]
pub struct AlertFilter {
    pub log_level: Option<String>,
    pub start: Option<i64>,
    pub end: Option<i64>,
}

impl Store {
    /// Claims due webhooks under a new fencing token: for each message only its oldest
    /// pending one, so a message's callbacks go out in order, one at a time. One statement
    /// whatever the backlog: the rows are picked inside a `WITH` (evaluated once), locked with
    /// `SKIP LOCKED` on PostgreSQL, and "an earlier one is pending" is one probe of the
    /// (ordering_key, seq, id) index, planned on every run on PostgreSQL
    /// (`sql::one_shot_persistent`). The lease ends by the database's clock.
    pub async fn claim_webhooks(&self, now: i64, lease: i64, limit: i64) -> Result<WebhookClaim> {
        let token = super::leases::new_claim_token();
        if let Some(memory) = &self.webhook_leases {
            return self
                .claim_webhooks_in_memory(memory, token, now, lease, limit)
                .await;
        }
        let postgres = self.backend() == Backend::Postgres;
        let mut sql = Sql::new("WITH picked AS (SELECT w.id, w.lease_until AS old_lease");
        if postgres {
            sql.push(", w.ctid AS row_ctid");
        }
        sql.push(" FROM webhook_outbox w WHERE w.due_at <= ")
            .int(now)
            .push(" AND (w.lease_until IS NULL OR w.lease_until < ")
            .int(now)
            .push(
                ") AND NOT EXISTS (SELECT 1 FROM webhook_outbox e WHERE e.ordering_key = w.ordering_key \
                 AND (e.seq, e.id) < (w.seq, w.id)",
            );
        if postgres {
            // Kept a subquery (PostgreSQL does not turn a sub-select with an OFFSET into a
            // join): one index probe per candidate row, whatever the statistics say. Made an
            // anti-join, it was planned from statistics taken while the outbox was empty as a
            // scan of the whole outbox per candidate, quadratic in a burst's backlog.
            sql.push(" OFFSET 0");
        }
        sql.push(") ORDER BY w.due_at").limit(limit);
        if postgres {
            sql.push(" FOR UPDATE OF w SKIP LOCKED");
        }
        sql.push(") UPDATE webhook_outbox SET claim_token = ")
            .int(token);
        push_lease_end(&mut sql, postgres, now, lease);
        sql.push(if postgres {
            // The picked rows by their place (locked, they stay there until the statement
            // ends): one fetch each, whatever the planner believes of the outbox. Joined by
            // key, statistics taken just after a burst drained (many pages, one row) had the
            // update walk the whole outbox, or its key index, once per picked row (up to
            // 760 ms per claim).
            " FROM picked WHERE webhook_outbox.ctid = picked.row_ctid RETURNING "
        } else {
            " FROM picked WHERE webhook_outbox.id = picked.id RETURNING "
        });
        let mut webhooks = Vec::new();
        let mut taken_over = 0;
        if postgres {
            sql.push(&format!(
                "webhook_outbox.{WEBHOOK_COLUMNS}, picked.old_lease"
            ));
            // One statement: no transaction is held open around it.
            for row in &self.write_volatile_planned_each_run(sql).await? {
                if opt_int(row, "old_lease")?.is_some() {
                    taken_over += 1;
                }
                webhooks.push(decode_webhook(row)?);
            }
        } else if self.writes_natively() {
            // Natively the claim hands back whole rows at no extra cost. One node: a claim
            // never takes over another's.
            sql.push(WEBHOOK_COLUMNS);
            for row in &self.write_volatile_planned_each_run(sql).await? {
                webhooks.push(decode_webhook(row)?);
            }
        } else {
            // SQLite's driver hands each row over from the connection's thread on its own: the
            // one write connection, which every API write waits for, returns only the ids,
            // and the rows are read on a read connection (the claim is committed, so visible).
            // One node: a claim never takes over another's.
            sql.push("id");
            let claimed: Vec<String> = self
                .write_volatile_planned_each_run(sql)
                .await?
                .iter()
                .map(|row| text(row, "id"))
                .collect::<Result<_>>()?;
            for chunk in claimed.chunks(500) {
                let mut read = Sql::new(&format!(
                    "SELECT {WEBHOOK_COLUMNS} FROM webhook_outbox WHERE claim_token = "
                ));
                read.int(token)
                    .push(" AND id IN ")
                    .text_set(chunk.iter().map(String::as_str));
                for row in &self.read_rows(read).await? {
                    webhooks.push(decode_webhook(row)?);
                }
            }
        }
        // Delivered in due order, as before the claim returned them unordered.
        webhooks.sort_by_key(|w| w.created_at);
        Ok(WebhookClaim {
            token,
            webhooks,
            taken_over,
        })
    }

    /// `claim_webhooks` on a SQLite file (one node): the same choice of rows, read without
    /// writing them, held in this process's memory (`leases::MemoryLeases`). The rows still
    /// held are among the due ones it reads, so it reads that many more and skips them. Read
    /// on the write connection, whose page cache the outbox's writes keep warm (a read
    /// connection drops its cache at each of the writer's commits).
    async fn claim_webhooks_in_memory(
        &self,
        memory: &super::leases::MemoryLeases,
        token: i64,
        now: i64,
        lease: i64,
        limit: i64,
    ) -> Result<WebhookClaim> {
        let held = i64::try_from(memory.held_count(now)).unwrap_or(i64::MAX);
        let mut sql = Sql::new(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhook_outbox w WHERE w.due_at <= "
        ));
        // Leases written into rows (by a version that wrote them) are still honoured.
        sql.int(now)
            .push(" AND (w.lease_until IS NULL OR w.lease_until < ")
            .int(now)
            .push(
                ") AND NOT EXISTS (SELECT 1 FROM webhook_outbox e WHERE e.ordering_key = w.ordering_key \
                 AND (e.seq, e.id) < (w.seq, w.id)) ORDER BY w.due_at",
            )
            // Rounded up to a multiple of `limit`: the limit is in the text (`Sql::limit`),
            // and one text per count of held rows would fill the statement cache.
            .limit(
                u64::try_from(limit.saturating_add(held))
                    .unwrap_or(0)
                    .next_multiple_of(u64::try_from(limit.max(1)).unwrap_or(1))
                    .try_into()
                    .unwrap_or(i64::MAX),
            );
        let rows = self.write_volatile_planned_each_run(sql).await?;
        let ids: Vec<String> = rows
            .iter()
            .map(|row| text(row, "id"))
            .collect::<Result<_>>()?;
        let until = now.max(crate::domain::time::now_micros()) + lease;
        let (taken, taken_over) = memory.claim(
            ids.iter().map(String::as_str),
            token,
            now,
            until,
            usize::try_from(limit).unwrap_or(0),
        );
        let mut webhooks = Vec::with_capacity(taken.len());
        for position in taken {
            webhooks.push(decode_webhook(&rows[position])?);
        }
        webhooks.sort_by_key(|w| w.created_at);
        Ok(WebhookClaim {
            token,
            webhooks,
            taken_over,
        })
    }

    /// Extends the claim `token` on `ids` by `lease` from now (the database's clock): a slow
    /// receiver is still being waited on. Returns how many rows the claim still held.
    pub async fn renew_webhooks(
        &self,
        ids: &[&str],
        token: i64,
        now: i64,
        lease: i64,
    ) -> Result<u64> {
        if let Some(memory) = &self.webhook_leases {
            let until = now.max(crate::domain::time::now_micros()) + lease;
            return Ok(memory.renew(ids, token, until));
        }
        let postgres = self.backend() == Backend::Postgres;
        let mut renewed = 0;
        for chunk in ids.chunks(500) {
            let mut sql = Sql::new("UPDATE webhook_outbox SET claim_token = claim_token");
            push_lease_end(&mut sql, postgres, now, lease);
            sql.push(" WHERE claim_token = ")
                .int(token)
                .push(" AND id IN ")
                .text_set(chunk.iter().copied());
            renewed += self.write_volatile_count(sql).await?;
        }
        Ok(renewed)
    }

    /// Ends claim `token` on the webhooks `ids` now: they were claimed as they were written
    /// (`outbox::CallbackBirthClaim`) but this node will not send them (its sender stopped,
    /// or they waited too long). Due at once, for the next claim anywhere. Returns how many
    /// the claim still held.
    pub async fn release_webhook_claims(&self, token: i64, ids: &[&str], now: i64) -> Result<u64> {
        let mut released = 0;
        for chunk in ids.chunks(500) {
            let mut sql = Sql::new(
                "UPDATE webhook_outbox SET claim_token = NULL, lease_until = NULL, due_at = ",
            );
            sql.int(now)
                .push(" WHERE claim_token = ")
                .int(token)
                .push(" AND id IN ")
                .text_set(chunk.iter().copied());
            // A release lost in a crash only leaves the lease to run out.
            released += self.write_volatile_count(sql).await?;
        }
        Ok(released)
    }

    /// Commits one delivery round: rows delivered or retried, with their alerts and TwiML
    /// replies. Fenced: a webhook whose claim `token` was lost (another node took it after the
    /// lease lapsed) is settled by that node, so nothing of its is written here.
    pub async fn settle_webhooks(
        &self,
        settlements: &[Settlement],
        token: i64,
        now: i64,
    ) -> Result<()> {
        super::retry_transient(|| self.settle_webhooks_once(settlements, token, now)).await
    }

    async fn settle_webhooks_once(
        &self,
        settlements: &[Settlement],
        token: i64,
        now: i64,
    ) -> Result<()> {
        let ids: Vec<&str> = settlements
            .iter()
            .flat_map(|s| s.settled.iter().map(Settled::id))
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write_native().await?;
        let held = match &self.webhook_leases {
            Some(memory) => memory.held_by(&ids, token),
            None => {
                super::leases::held_claims(
                    &mut tx,
                    self.backend(),
                    "webhook_outbox",
                    "id",
                    &ids,
                    token,
                )
                .await?
            }
        };
        if held.len() < ids.len() {
            tracing::warn!(
                lost = ids.len() - held.len(),
                "webhook claims lost to another node before they were settled; not settled here"
            );
        }
        let mut alerts = Vec::new();
        let mut attempts = Vec::new();
        let mut replies = Vec::new();
        let mut estimates = Vec::new();
        let mut done: Vec<&str> = Vec::new();
        // The round's writes go in one multi-statement query on SQLite (`Tx::execute_all`).
        let mut writes: Vec<Sql> = Vec::new();
        // The rows this round settles: those of settlements whose rows the claim all holds.
        let mut settled_ids: Vec<&str> = Vec::with_capacity(ids.len());
        for settlement in settlements {
            if !settlement.settled.iter().all(|s| held.contains(s.id())) {
                continue;
            }
            settled_ids.extend(settlement.settled.iter().map(Settled::id));
            for settled in &settlement.settled {
                match settled {
                    // Deleted together below: one statement per round, not one per callback.
                    Settled::Done { id } => done.push(id),
                    Settled::Retry { id, due_at } => {
                        let mut retry = Sql::new(
                            "UPDATE webhook_outbox SET attempts = attempts + 1, due_at = ",
                        );
                        retry
                            .int(*due_at)
                            .push(", lease_until = NULL, claim_token = NULL WHERE id = ")
                            .text(id.clone());
                        writes.push(retry);
                        // The rows waiting behind it wait that long too (see
                        // `not_before_pending`).
                        let mut behind = Sql::new("UPDATE webhook_outbox SET due_at = ");
                        behind
                            .int(*due_at)
                            .push(" WHERE ordering_key = (SELECT ordering_key FROM webhook_outbox WHERE id = ")
                            .text(id.clone())
                            .push(") AND id <> ")
                            .text(id.clone())
                            .push(" AND due_at < ")
                            .int(*due_at);
                        writes.push(behind);
                    }
                    Settled::Fallback { id } => {
                        let mut fallback = Sql::new(
                            "UPDATE webhook_outbox SET attempts = attempts + 1, url = fallback_url, \
                             method = COALESCE(fallback_method, 'POST'), fallback_url = NULL, \
                             fallback_method = NULL, due_at = ",
                        );
                        fallback
                            .int(now)
                            .push(", lease_until = NULL, claim_token = NULL WHERE id = ")
                            .text(id.clone());
                        writes.push(fallback);
                    }
                }
            }
            alerts.extend(settlement.alerts.iter().cloned());
            attempts.extend(settlement.attempts.iter());
            replies.extend(settlement.replies.iter().cloned());
            estimates.extend(settlement.reply_estimates.iter().copied());
        }
        for chunk in done.chunks(500) {
            let mut sql = Sql::new("DELETE FROM webhook_outbox WHERE id IN ");
            sql.text_set(chunk.iter().copied());
            writes.push(sql);
        }
        if !replies.is_empty() {
            // Admission reads what the writes above changed.
            tx.execute_all(std::mem::take(&mut writes)).await?;
            // Replies are the account's sends: counted against its monthly caps and checked
            // against opt-outs, as an API send is; one refused leaves an alert instead.
            let admissions = insert_new_messages_in(
                &mut tx.exec()?,
                Framing::InTransaction,
                &replies,
                &estimates,
                &[],
                now,
                None,
            )
            .await?;
            for ((message, _), admission) in replies.iter().zip(admissions) {
                let reason = match admission {
                    // Replies carry no idempotency key.
                    Admission::Accepted | Admission::Duplicate { .. } => continue,
                    Admission::OptedOut => {
                        format!("<Message> to {}: the recipient opted out", message.to)
                    }
                    Admission::OverCap(reason) => format!("<Message> to {}: {reason}", message.to),
                };
                alerts.push(refused_reply_alert(message, &reason, now));
            }
        }
        writes.extend(super::console::callback_attempt_statements(&attempts));
        tx.execute_all(writes).await?;
        insert_alerts(&mut tx, &alerts).await?;
        tx.commit().await?;
        if let Some(memory) = &self.webhook_leases {
            // Settled and committed: their rows are gone or due again later. Rows held but
            // not settled (their settlement had one the claim lost) stay held until their
            // lease ends, as a lease written into them would.
            memory.release(&settled_ids, token);
        }
        Ok(())
    }

    /// On a SQLite file, makes this process the one that sends the database's webhooks (see
    /// `leases::MemoryLeases::hold_process_lock`); elsewhere there is nothing to hold.
    pub fn hold_webhook_outbox(&self) -> std::io::Result<()> {
        match &self.webhook_leases {
            Some(memory) => memory.hold_process_lock(),
            None => Ok(()),
        }
    }

    /// Pending webhooks (for tests and metrics).
    pub async fn pending_webhooks(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM webhook_outbox")
            .fetch_one(self.pool())
            .await?;
        int(&row, "n")
    }

    /// Alerts of `account_sid` and, for a main account, of its subaccounts.
    pub async fn list_alerts(
        &self,
        account_sid: &str,
        with_subaccounts: bool,
        filter: &AlertFilter,
        page: &PageRequest,
    ) -> Result<Vec<Alert>> {
        let mut sql = Sql::new(&format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE (account_sid = "
        ));
        sql.text(account_sid);
        if with_subaccounts {
            sql.push(" OR account_sid IN (SELECT sid FROM accounts WHERE owner_account_sid = ")
                .text(account_sid)
                .push(")");
        }
        sql.push(")");
        if let Some(level) = &filter.log_level {
            sql.push(" AND log_level = ").text(level.clone());
        }
        if let Some(start) = filter.start {
            sql.push(" AND date_created >= ").int(start);
        }
        if let Some(end) = filter.end {
            sql.push(" AND date_created <= ").int(end);
        }
        sql.page(page);
        let rows = sql.query().fetch_all(self.pool()).await?;
        rows.iter().map(decode_alert).collect()
    }

    /// One alert of `account_sid` or of one of its subaccounts.
    pub async fn alert(
        &self,
        account_sid: &str,
        with_subaccounts: bool,
        sid: &str,
    ) -> Result<Option<Alert>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE sid = $1 AND (account_sid = $2 OR \
             ($3 = 1 AND account_sid IN (SELECT sid FROM accounts WHERE owner_account_sid = $2)))"
        )))
        .bind(sid.to_string())
        .bind(account_sid.to_string())
        .bind(i64::from(with_subaccounts))
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(decode_alert).transpose()
    }
}
