//! The webhook outbox (status callbacks, inbound-message webhooks) and monitor alerts.

use super::messages::{insert_new_messages_in, Admission, Event, Framing};
use super::{int, opt_int, opt_text, text, Backend, Sql, Store, Tx};
use crate::domain::alert::Alert;
use crate::domain::message::{Media, Message, MessageStatus};
use crate::domain::paging::PageRequest;
use crate::error::Result;
use sqlx::any::AnyRow;
use sqlx::Row;

/// Rows per multi-row statement (a dispatcher batch; far below the parameter limits).
const ROWS_PER_STATEMENT: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookKind {
    /// A message status callback.
    Status,
    /// An inbound message for the number's (or service's) webhook.
    Inbound,
    /// A Usage Trigger that fired.
    Trigger,
    /// An alarm that fired or cleared.
    Alarm,
    /// An A2P registration record changed status (a CloudEvents JSON body).
    A2pEvent,
}

impl WebhookKind {
    fn as_str(self) -> &'static str {
        match self {
            WebhookKind::Status => "status",
            WebhookKind::Inbound => "inbound",
            WebhookKind::Trigger => "trigger",
            WebhookKind::Alarm => "alarm",
            WebhookKind::A2pEvent => "a2p_event",
        }
    }
}

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

/// What one claim of webhooks took, and the token to settle them with.
#[derive(Debug)]
pub struct WebhookClaim {
    pub token: i64,
    pub webhooks: Vec<Webhook>,
    /// Webhooks whose previous claim had lapsed unfinished (a node died or paused).
    pub taken_over: usize,
}

/// The time now, in microseconds, for leases: the database's clock on PostgreSQL, read when
/// the statement gets there (never before `now`, which tests move ahead); this process's on
/// SQLite (one node).
pub(crate) fn push_lease_clock(sql: &mut Sql, postgres: bool, now: i64) {
    if postgres {
        sql.push("GREATEST(")
            .int(now)
            .push(", CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 AS BIGINT))");
    } else {
        sql.int(now.max(crate::domain::time::now_micros()));
    }
}

/// `, lease_until = ` the end of a lease of `lease` microseconds starting now (see
/// `push_lease_clock`).
pub(crate) fn push_lease_end(sql: &mut Sql, postgres: bool, now: i64, lease: i64) {
    sql.push(", lease_until = ");
    push_lease_clock(sql, postgres, now);
    sql.push(" + ").int(lease);
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

/// Order of statuses within one instant (several transitions share a timestamp).
fn rank(status: MessageStatus) -> i64 {
    match status {
        MessageStatus::Accepted => 0,
        MessageStatus::Scheduled => 1,
        MessageStatus::Queued => 2,
        MessageStatus::Sending => 3,
        MessageStatus::Sent => 4,
        MessageStatus::Delivered => 5,
        MessageStatus::Undelivered => 6,
        MessageStatus::Failed => 7,
        MessageStatus::Canceled => 8,
        MessageStatus::Receiving => 9,
        MessageStatus::Received => 10,
    }
}

fn new_id() -> String {
    crate::domain::sid::generate(crate::domain::sid::SidKind::Message)[2..].to_string()
}

/// Message SID → where its status callbacks go (account SID, URL), or `None` for a message
/// with no callback URL.
pub(crate) type CallbackTargets = std::collections::HashMap<String, Option<(String, String)>>;

/// The SQL that resolves each message's status callback URL: its own, else its service's,
/// else its sender number's. Each message comes with the sender it is being recorded with,
/// if any (its stored `from_address` otherwise).
pub(crate) const CALLBACK_URL: &str =
    "COALESCE(NULLIF(m.status_callback, ''), NULLIF(s.status_callback, ''), NULLIF(p.status_callback, ''))";

fn targets_query(chunk: &[(&str, Option<&str>)]) -> Sql {
    let mut sql = Sql::new(&format!(
        "SELECT m.sid, m.account_sid, {CALLBACK_URL} AS url FROM (VALUES "
    ));
    for (i, (sid, from)) in chunk.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.push("(").text(*sid).push(", ");
        match from {
            Some(from) => sql.text(*from),
            // A typed NULL keeps PostgreSQL's VALUES column a text column.
            None => sql.push("CAST(NULL AS TEXT)"),
        };
        sql.push(")");
    }
    sql.push(
        ") AS v JOIN messages m ON m.sid = v.column1 \
         LEFT JOIN messaging_services s ON s.sid = m.messaging_service_sid \
         LEFT JOIN phone_numbers p ON p.phone_number = COALESCE(v.column2, m.from_address) \
         AND p.account_sid = m.account_sid",
    );
    sql
}

fn add_targets(rows: &[AnyRow], targets: &mut CallbackTargets) -> Result<()> {
    for row in rows {
        let target = opt_text(row, "url")?
            .map(|url| Ok::<_, crate::error::Error>((text(row, "account_sid")?, url)))
            .transpose()?;
        targets.insert(text(row, "sid")?, target);
    }
    Ok(())
}

impl Store {
    /// Resolves status callback targets on a read connection, so that a write transaction
    /// need not (see `CallbackTargets`): `wanted` is (message SID, sender being recorded).
    pub(crate) async fn callback_targets(
        &self,
        wanted: &[(&str, Option<&str>)],
    ) -> Result<CallbackTargets> {
        let mut targets = CallbackTargets::new();
        for chunk in wanted.chunks(ROWS_PER_STATEMENT) {
            let rows = targets_query(chunk).query().fetch_all(self.pool()).await?;
            add_targets(&rows, &mut targets)?;
        }
        Ok(targets)
    }
}

/// Queues the status callbacks owed for `events`, inside `tx`: one row per reported transition
/// of a message that has a callback URL (its own `StatusCallback`, else its service's, else
/// its sending number's). `sending` is not reported: warbler passes through it in the same
/// instant as `sent`, and Twilio's recorded traffic goes queued → sent.
/// Targets already resolved (by `Store::callback_targets`) are used as they are; the others
/// are read in `tx`, which must then already hold the messages' new state.
pub(crate) async fn enqueue_status_callbacks(
    tx: &mut Tx<'_>,
    events: &[Event],
    resolved: Option<&CallbackTargets>,
) -> Result<()> {
    let reported: Vec<&Event> = events
        .iter()
        .filter(|e| e.notify && e.status != MessageStatus::Sending)
        .collect();
    let mut missing: Vec<&str> = reported
        .iter()
        .map(|e| e.sid.as_str())
        .filter(|sid| resolved.is_none_or(|known| !known.contains_key(*sid)))
        .collect();
    missing.sort_unstable();
    missing.dedup();
    let mut read = CallbackTargets::new();
    let wanted: Vec<(&str, Option<&str>)> = missing.iter().map(|sid| (*sid, None)).collect();
    for chunk in wanted.chunks(ROWS_PER_STATEMENT) {
        let rows = targets_query(chunk).query().fetch_all(&mut **tx).await?;
        add_targets(&rows, &mut read)?;
    }
    let target = |sid: &str| {
        resolved
            .and_then(|known| known.get(sid))
            .or_else(|| read.get(sid))
            .and_then(Option::as_ref)
    };
    let reported: Vec<(&Event, &(String, String))> = reported
        .into_iter()
        .filter_map(|e| target(&e.sid).map(|target| (e, target)))
        .collect();
    for chunk in reported.chunks(ROWS_PER_STATEMENT) {
        let mut sql = Sql::new(
            "INSERT INTO webhook_outbox (id, kind, account_sid, ordering_key, seq, url, method, \
             message_status, error_code, done_date, attempts, created_at, due_at) \
             SELECT v.column1, v.column2, v.column3, v.column4, v.column5, v.column6, v.column7, \
             v.column8, v.column9, v.column10, v.column11, v.column12, ",
        );
        sql.push(&not_before_pending("v.column4", "v.column13"))
            .push(" FROM (VALUES ");
        for (i, (e, (account_sid, url))) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.push("(")
                .text(new_id())
                .push(", 'status', ")
                .text(account_sid.clone())
                .push(", ")
                .text(e.sid.clone())
                .push(", ")
                .int(e.at * 16 + rank(e.status))
                .push(", ")
                .text(url.clone())
                .push(", 'POST', ")
                .text(e.status.as_str())
                .push(", ");
            match e.error_code {
                Some(code) => sql.int(code),
                None => sql.push("CAST(NULL AS BIGINT)"),
            };
            sql.push(", ");
            match &e.done_date {
                Some(date) => sql.text(date.clone()),
                None => sql.push("CAST(NULL AS TEXT)"),
            };
            sql.push(", 0, ").int(e.at).push(", ").int(e.at).push(")");
        }
        sql.push(") AS v");
        sql.query().execute(&mut **tx).await?;
    }
    Ok(())
}

/// The alert for a reply (TwiML `<Message>` or keyword auto-reply) the account may not send
/// (14101).
pub fn refused_reply_alert(reply: &Message, reason: &str, now: i64) -> Alert {
    let code = crate::domain::alert::INVALID_MESSAGE_VERB;
    Alert {
        sid: crate::domain::sid::generate(crate::domain::sid::SidKind::Alert),
        account_sid: reply.account_sid.clone(),
        error_code: code.to_string(),
        log_level: "error".into(),
        alert_text: crate::domain::alert::alert_text(reason, code, "", None),
        resource_sid: Some(reply.sid.clone()),
        service_sid: None,
        request_method: None,
        request_url: None,
        request_variables: None,
        request_headers: None,
        response_body: None,
        response_headers: None,
        date_created: now,
    }
}

/// A new webhook's due time: `due`, or later if a pending webhook of its ordering key (one it
/// waits for) is due later (in retry backoff). So along a key due times never go down, and the
/// claim, which walks the due index, meets each key's head before the rows waiting behind it
/// instead of scanning every waiting row on each round.
fn not_before_pending(ordering_key: &str, due: &str) -> String {
    format!(
        "COALESCE((SELECT MAX(p.due_at) FROM webhook_outbox p WHERE p.ordering_key = {ordering_key} \
         AND p.due_at > {due}), {due})"
    )
}

/// Queues an inbound-message webhook inside `tx`.
pub(crate) async fn enqueue_inbound(
    tx: &mut Tx<'_>,
    account_sid: &str,
    message_sid: &str,
    target: &super::inbound::InboundTarget,
    payload: &str,
    now: i64,
) -> Result<()> {
    enqueue_payload(
        tx,
        WebhookKind::Inbound,
        account_sid,
        message_sid,
        target,
        payload,
        now,
    )
    .await
}

/// Queues a webhook whose form is already built (`payload`, URL-encoded) inside `tx`.
/// `ordering_key` names what it is about (a message, a trigger).
pub(crate) async fn enqueue_payload(
    tx: &mut Tx<'_>,
    kind: WebhookKind,
    account_sid: &str,
    ordering_key: &str,
    target: &super::inbound::InboundTarget,
    payload: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO webhook_outbox (id, kind, account_sid, ordering_key, seq, url, method, \
         fallback_url, fallback_method, payload, attempts, created_at, due_at) \
         SELECT $1, $2, $3, $4, 0, $5, $6, $7, $8, $9, 0, $10, {}",
        not_before_pending("$4", "$10")
    )))
    .bind(new_id())
    .bind(kind.as_str())
    .bind(account_sid.to_string())
    .bind(ordering_key.to_string())
    .bind(target.url.clone())
    .bind(target.method.clone())
    .bind(target.fallback_url.clone())
    .bind(target.fallback_method.clone())
    .bind(payload.to_string())
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn decode_webhook(row: &AnyRow) -> Result<Webhook> {
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
        error_code: row.try_get::<Option<i64>, _>("error_code")?,
        done_date: opt_text(row, "done_date")?,
        payload: opt_text(row, "payload")?,
        attempts: int(row, "attempts")?,
        created_at: int(row, "created_at")?,
    })
}

const ALERT_COLUMNS: &str = "sid, account_sid, error_code, log_level, alert_text, resource_sid, \
    service_sid, request_method, request_url, request_variables, request_headers, response_body, \
    response_headers, date_created";

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
    /// (ordering_key, seq, id) index. The lease ends by the database's clock.
    pub async fn claim_webhooks(&self, now: i64, lease: i64, limit: i64) -> Result<WebhookClaim> {
        let token = super::messages::new_claim_token();
        let postgres = self.backend() == Backend::Postgres;
        let mut sql = Sql::new(
            "WITH picked AS (SELECT w.id, w.lease_until AS old_lease FROM webhook_outbox w WHERE w.due_at <= ",
        );
        sql.int(now)
            .push(" AND (w.lease_until IS NULL OR w.lease_until < ")
            .int(now)
            .push(
                ") AND NOT EXISTS (SELECT 1 FROM webhook_outbox e WHERE e.ordering_key = w.ordering_key \
                 AND (e.seq, e.id) < (w.seq, w.id)) ORDER BY w.due_at LIMIT ",
            )
            .int(limit);
        if postgres {
            sql.push(" FOR UPDATE OF w SKIP LOCKED");
        }
        sql.push(") UPDATE webhook_outbox SET claim_token = ")
            .int(token);
        push_lease_end(&mut sql, postgres, now, lease);
        sql.push(" FROM picked WHERE webhook_outbox.id = picked.id RETURNING ");
        // SQLite's RETURNING sees only the updated table (and one node, which never loses a
        // claim to another).
        sql.push(if postgres {
            "webhook_outbox.id, kind, account_sid, ordering_key, url, method, fallback_url, \
             fallback_method, message_status, error_code, done_date, payload, attempts, created_at, \
             picked.old_lease"
        } else {
            "id, kind, account_sid, ordering_key, url, method, fallback_url, fallback_method, \
             message_status, error_code, done_date, payload, attempts, created_at, \
             CAST(NULL AS BIGINT) AS old_lease"
        });
        // One statement: no transaction is held open around it.
        let rows = self.write_volatile(sql.query()).await?;
        let mut webhooks = Vec::with_capacity(rows.len());
        let mut taken_over = 0;
        for row in &rows {
            if opt_int(row, "old_lease")?.is_some() {
                taken_over += 1;
            }
            webhooks.push(decode_webhook(row)?);
        }
        // Delivered in due order, as before the claim returned them unordered.
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
        let postgres = self.backend() == Backend::Postgres;
        let mut renewed = 0;
        for chunk in ids.chunks(500) {
            let mut sql = Sql::new("UPDATE webhook_outbox SET claim_token = claim_token");
            push_lease_end(&mut sql, postgres, now, lease);
            sql.push(" WHERE claim_token = ")
                .int(token)
                .push(" AND id IN (")
                .text_list(chunk.iter().copied())
                .push(")");
            renewed += self.write_volatile_count(sql.query()).await?;
        }
        Ok(renewed)
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
        let mut tx = self.begin_write().await?;
        let mut held = std::collections::HashSet::new();
        for chunk in ids.chunks(500) {
            let mut sql = Sql::new("SELECT id FROM webhook_outbox WHERE claim_token = ");
            sql.int(token)
                .push(" AND id IN (")
                .text_list(chunk.iter().copied())
                .push(")");
            if self.backend() == Backend::Postgres {
                sql.push(" ORDER BY id FOR UPDATE");
            }
            for row in sql.query().fetch_all(&mut *tx).await? {
                held.insert(text(&row, "id")?);
            }
        }
        if held.len() < ids.len() {
            tracing::warn!(
                lost = ids.len() - held.len(),
                "webhook claims lost to another node before they were settled; not settled here"
            );
        }
        let mut alerts = Vec::new();
        let mut replies = Vec::new();
        let mut estimates = Vec::new();
        let mut done: Vec<&str> = Vec::new();
        for settlement in settlements {
            if !settlement.settled.iter().all(|s| held.contains(s.id())) {
                continue;
            }
            for settled in &settlement.settled {
                match settled {
                    // Deleted together below: one statement per round, not one per callback.
                    Settled::Done { id } => done.push(id),
                    Settled::Retry { id, due_at } => {
                        sqlx::query(
                            "UPDATE webhook_outbox SET attempts = attempts + 1, due_at = $1, \
                             lease_until = NULL, claim_token = NULL WHERE id = $2",
                        )
                        .bind(*due_at)
                        .bind(id.clone())
                        .execute(&mut *tx)
                        .await?;
                        // The rows waiting behind it wait that long too (see
                        // `not_before_pending`).
                        sqlx::query(
                            "UPDATE webhook_outbox SET due_at = $1 WHERE ordering_key = \
                             (SELECT ordering_key FROM webhook_outbox WHERE id = $2) \
                             AND id <> $2 AND due_at < $1",
                        )
                        .bind(*due_at)
                        .bind(id.clone())
                        .execute(&mut *tx)
                        .await?;
                    }
                    Settled::Fallback { id } => {
                        sqlx::query(
                            "UPDATE webhook_outbox SET attempts = attempts + 1, url = fallback_url, \
                             method = COALESCE(fallback_method, 'POST'), fallback_url = NULL, \
                             fallback_method = NULL, due_at = $1, lease_until = NULL, \
                             claim_token = NULL WHERE id = $2",
                        )
                        .bind(now)
                        .bind(id.clone())
                        .execute(&mut *tx)
                        .await?;
                    }
                }
            }
            alerts.extend(settlement.alerts.iter().cloned());
            replies.extend(settlement.replies.iter().cloned());
            estimates.extend(settlement.reply_estimates.iter().copied());
        }
        for chunk in done.chunks(500) {
            let mut sql = Sql::new("DELETE FROM webhook_outbox WHERE id IN ");
            sql.text_set(chunk.iter().copied());
            sql.query().execute(&mut *tx).await?;
        }
        if !replies.is_empty() {
            // Replies are the account's sends: counted against its monthly caps and checked
            // against opt-outs, as an API send is; one refused leaves an alert instead.
            let admissions = insert_new_messages_in(
                &mut tx,
                Framing::InTransaction,
                &replies,
                &estimates,
                &[],
                now,
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
        insert_alerts(&mut tx, &alerts).await?;
        tx.commit().await?;
        Ok(())
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

pub(crate) async fn insert_alerts(tx: &mut Tx<'_>, alerts: &[Alert]) -> Result<()> {
    for a in alerts {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO alerts ({ALERT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        )))
        .bind(a.sid.clone())
        .bind(a.account_sid.clone())
        .bind(a.error_code.clone())
        .bind(a.log_level.clone())
        .bind(a.alert_text.clone())
        .bind(a.resource_sid.clone())
        .bind(a.service_sid.clone())
        .bind(a.request_method.clone())
        .bind(a.request_url.clone())
        .bind(a.request_variables.clone())
        .bind(a.request_headers.clone())
        .bind(a.response_body.clone())
        .bind(a.response_headers.clone())
        .bind(a.date_created)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
