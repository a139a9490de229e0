//! Writing into `webhook_outbox` and `alerts` inside a caller's transaction: the status
//! callbacks a status change owes (their targets resolved in SQL), inbound-message webhooks,
//! usage-trigger, alarm and A2P notifications, and the monitor alerts. The webhook sender that
//! delivers the outbox is `webhooks` (claims, settlement) with `engine::webhooks`.

use super::rows::{CallbackTargets, Event, WebhookKind, ALERT_COLUMNS};
use super::webhooks::CallbackBirthClaim;
use super::{opt_text, text, Kind, Rows, Sql, Store, Tx};
use crate::domain::alert::Alert;
use crate::domain::message::{Message, MessageStatus};
use crate::error::Result;

/// Rows per multi-row statement (far below the parameter limits).
const ROWS_PER_STATEMENT: usize = 500;

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

/// The SQL that resolves each message's status callback URL: its own, else its service's,
/// else its sender number's. Each message comes with the sender it is being recorded with,
/// if any (its stored `from_address` otherwise).
pub(crate) const CALLBACK_URL: &str =
    "COALESCE(NULLIF(m.status_callback, ''), NULLIF(s.status_callback, ''), NULLIF(p.status_callback, ''))";

fn targets_query(chunk: &[(&str, Option<&str>)]) -> Sql {
    let mut rows = Rows::new(&[Kind::Text, Kind::Text]);
    for (sid, from) in chunk {
        rows.text(*sid).opt_text(from.map(str::to_string));
    }
    let mut sql = Sql::new(&format!(
        "SELECT m.sid, m.account_sid, {CALLBACK_URL} AS url FROM "
    ));
    sql.rows_as(rows, "v").push(
        " JOIN messages m ON m.sid = v.column1 \
         LEFT JOIN messaging_services s ON s.sid = m.messaging_service_sid \
         LEFT JOIN phone_numbers p ON p.phone_number = COALESCE(v.column2, m.from_address) \
         AND p.account_sid = m.account_sid",
    );
    sql
}

fn add_targets(rows: &[impl super::Columns], targets: &mut CallbackTargets) -> Result<()> {
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
            let rows = self.read_rows(targets_query(chunk)).await?;
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
    let read = missing_targets(tx, events, resolved).await?;
    tx.execute_all(status_callback_statements(events, resolved, &read))
        .await
}

/// The events reported to status callbacks.
fn reported(events: &[Event]) -> impl Iterator<Item = &Event> {
    events
        .iter()
        .filter(|e| e.notify && e.status != MessageStatus::Sending)
}

/// The messages of `events` whose callback target `resolved` lacks.
pub(crate) fn missing_sids<'e>(
    events: &'e [Event],
    resolved: Option<&CallbackTargets>,
) -> Vec<&'e str> {
    let mut missing: Vec<&str> = reported(events)
        .map(|e| e.sid.as_str())
        .filter(|sid| resolved.is_none_or(|known| !known.contains_key(*sid)))
        .collect();
    missing.sort_unstable();
    missing.dedup();
    missing
}

/// The targets of `events`' callbacks that `resolved` lacks, read in `tx` (nothing to read
/// when `resolved` has them all).
pub(crate) async fn missing_targets(
    tx: &mut Tx<'_>,
    events: &[Event],
    resolved: Option<&CallbackTargets>,
) -> Result<CallbackTargets> {
    let missing = missing_sids(events, resolved);
    let mut read = CallbackTargets::new();
    let wanted: Vec<(&str, Option<&str>)> = missing.iter().map(|sid| (*sid, None)).collect();
    for chunk in wanted.chunks(ROWS_PER_STATEMENT) {
        let rows = tx.fetch_all(targets_query(chunk)).await?;
        add_targets(&rows, &mut read)?;
    }
    Ok(read)
}

/// The statements that queue status callbacks, split by how they run.
#[derive(Default)]
pub(crate) struct CallbackInserts {
    /// Run with the transaction's other writes.
    pub writes: Vec<Sql>,
    /// Insert and claim at once (`CallbackBirthClaim`): each returns the ids of the rows it
    /// claimed; run by `CallbackInserts::claim_in`.
    claiming: Vec<Sql>,
    /// The rows `claiming` may claim, by id, as the webhook sender will want them.
    candidates: std::collections::HashMap<String, super::webhooks::Webhook>,
}

impl CallbackInserts {
    /// Runs the claiming inserts in `tx` (after the transaction's other writes) and returns
    /// the webhooks they claimed, to hand over once `tx` is committed.
    pub(crate) async fn claim_in(
        mut self,
        tx: &mut Tx<'_>,
    ) -> Result<Vec<super::webhooks::Webhook>> {
        let mut claimed = Vec::new();
        for sql in std::mem::take(&mut self.claiming) {
            for row in tx.fetch_all(sql).await? {
                if let Some(webhook) = self.candidates.remove(&text(&row, "id")?) {
                    claimed.push(webhook);
                }
            }
        }
        Ok(claimed)
    }
}

/// The statements of `enqueue_status_callbacks`, with the targets `resolved` beforehand and
/// those `read` by `missing_targets`.
pub(crate) fn status_callback_statements(
    events: &[Event],
    resolved: Option<&CallbackTargets>,
    read: &CallbackTargets,
) -> Vec<Sql> {
    status_callback_inserts(events, resolved, read, None).writes
}

/// `status_callback_statements`, claiming as they are written under `claim` if any: a row is
/// claimed when it is its message's earliest in `events` and its message has no webhook
/// pending (a callback waits for the one before it, so only the head of a message's callbacks
/// may be sent).
pub(crate) fn status_callback_inserts(
    events: &[Event],
    resolved: Option<&CallbackTargets>,
    read: &CallbackTargets,
    claim: Option<CallbackBirthClaim>,
) -> CallbackInserts {
    let mut inserts = CallbackInserts::default();
    let target = |sid: &str| {
        resolved
            .and_then(|known| known.get(sid))
            .or_else(|| read.get(sid))
            .and_then(Option::as_ref)
    };
    let reported: Vec<(&Event, &(String, String))> = reported(events)
        .filter_map(|e| target(&e.sid).map(|target| (e, target)))
        .collect();
    let seq = |e: &Event| e.at * 16 + rank(e.status);
    // Each message's earliest event here: the one whose callback may go first.
    let mut heads: std::collections::HashMap<&str, i64> = std::collections::HashMap::new();
    if claim.is_some() {
        for (e, _) in &reported {
            let earliest = heads.entry(e.sid.as_str()).or_insert(seq(e));
            *earliest = (*earliest).min(seq(e));
        }
    }
    static COLUMNS: [Kind; 14] = [
        Kind::Text, // id
        Kind::Text, // kind
        Kind::Text, // account_sid
        Kind::Text, // ordering_key
        Kind::Int,  // seq
        Kind::Text, // url
        Kind::Text, // method
        Kind::Text, // message_status
        Kind::Int,  // error_code
        Kind::Text, // done_date
        Kind::Int,  // attempts
        Kind::Int,  // created_at
        Kind::Int,  // due at the earliest
        Kind::Int,  // under a claim only: 1 if it may be claimed as it is written
    ];
    // Without a claim the last column is not sent.
    let columns = if claim.is_some() {
        &COLUMNS[..]
    } else {
        &COLUMNS[..13]
    };
    for chunk in reported.chunks(ROWS_PER_STATEMENT) {
        let mut rows = Rows::with_capacity(chunk.len(), columns);
        for (e, (account_sid, url)) in chunk {
            let id = new_id();
            // Taken out once found: of two events of one instant and status, one is the head.
            let head = heads.get(e.sid.as_str()) == Some(&seq(e))
                && heads.remove(e.sid.as_str()).is_some();
            if head {
                inserts.candidates.insert(
                    id.clone(),
                    super::webhooks::Webhook {
                        id: id.clone(),
                        kind: WebhookKind::Status,
                        account_sid: account_sid.clone(),
                        message_sid: e.sid.clone(),
                        url: url.clone(),
                        method: "POST".into(),
                        fallback_url: None,
                        fallback_method: None,
                        message_status: Some(e.status.as_str().to_string()),
                        error_code: e.error_code,
                        done_date: e.done_date.clone(),
                        payload: None,
                        attempts: 0,
                        created_at: e.at,
                    },
                );
            }
            rows.text(id)
                .text("status")
                .text(account_sid.clone())
                .text(e.sid.clone())
                .int(seq(e))
                .text(url.clone())
                .text("POST")
                .text(e.status.as_str())
                .opt_int(e.error_code)
                .opt_text(e.done_date.clone())
                .int(0)
                .int(e.at)
                .int(e.at);
            if claim.is_some() {
                rows.int(i64::from(head));
            }
        }
        let insert =
            "INSERT INTO webhook_outbox (id, kind, account_sid, ordering_key, seq, url, method, \
             message_status, error_code, done_date, attempts, created_at, due_at";
        let values =
            "SELECT v.column1, v.column2, v.column3, v.column4, v.column5, v.column6, v.column7, \
             v.column8, v.column9, v.column10, v.column11, v.column12, ";
        match claim {
            None => {
                let mut sql = Sql::new(&format!("{insert}) {values}"));
                sql.push(&not_before_pending("v.column4", "v.column13"))
                    .push(" FROM ")
                    .rows_as(rows, "v");
                inserts.writes.push(sql);
            }
            Some(claim) => {
                // `born`: a head whose message has nothing pending, decided once per row; a
                // claimed row is due when its lease ends, out of the way of the database's
                // claims, which walk the due rows.
                let mut sql = Sql::new(&format!(
                    "WITH inserted AS ({insert}, claim_token, lease_until) {values}\
                     CASE WHEN b.born THEN b.lease_end ELSE {} END, \
                     CASE WHEN b.born THEN ",
                    not_before_pending("v.column4", "v.column13")
                ));
                sql.int(claim.token)
                    .push(" END, CASE WHEN b.born THEN b.lease_end END FROM ")
                    .rows_as(rows, "v")
                    .push(
                        " CROSS JOIN LATERAL (SELECT v.column14 = 1 AND NOT EXISTS \
                         (SELECT 1 FROM webhook_outbox p WHERE p.ordering_key = v.column4) AS born, ",
                    );
                super::leases::push_lease_clock(&mut sql, true, claim.now);
                sql.push(" + ").int(claim.lease).push(
                    " AS lease_end) b RETURNING id, claim_token) \
                         SELECT id FROM inserted WHERE claim_token IS NOT NULL",
                );
                inserts.claiming.push(sql);
            }
        }
    }
    inserts
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
///
/// `due_at + 0` keeps the due index out of it: offered `MAX(due_at)`, PostgreSQL planned from
/// the statistics of a quiet outbox may walk that index down from the latest due time,
/// through every row in retry backoff, for each new webhook, where the key's own few rows
/// (the `(ordering_key, seq, id)` index) are all it needs.
///
/// A row under a lease is left out: one claimed as it was written is due when its lease ends
/// only to keep it out of the claims' way (a retry pushes the rows behind it when it is
/// settled), and one claimed from the database was due already.
fn not_before_pending(ordering_key: &str, due: &str) -> String {
    format!(
        "COALESCE((SELECT MAX(p.due_at + 0) FROM webhook_outbox p WHERE p.ordering_key = {ordering_key} \
         AND p.due_at + 0 > {due} AND p.lease_until IS NULL), {due})"
    )
}

/// Queues an inbound-message webhook inside `tx`.
pub(crate) async fn enqueue_inbound(
    tx: &mut Tx<'_>,
    account_sid: &str,
    message_sid: &str,
    target: &super::rows::InboundTarget,
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
///
/// It goes after every webhook of its key still pending: its `seq` is one past theirs. Row ids
/// order only to the millisecond, so two events of one record written within one millisecond
/// (a campaign submitted, then rejected at once) would otherwise be ordered by the random
/// part of their ids. Every caller first writes the record's row in the same transaction, so
/// writers of one record take turns and each sees the other's committed webhooks (on
/// PostgreSQL each statement's snapshot is taken as it starts, after that row's lock).
pub(crate) async fn enqueue_payload(
    tx: &mut Tx<'_>,
    kind: WebhookKind,
    account_sid: &str,
    ordering_key: &str,
    target: &super::rows::InboundTarget,
    payload: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO webhook_outbox (id, kind, account_sid, ordering_key, seq, url, method, \
         fallback_url, fallback_method, payload, attempts, created_at, due_at) \
         SELECT $1, $2, $3, $4, COALESCE((SELECT MAX(p.seq) + 1 FROM webhook_outbox p \
         WHERE p.ordering_key = $4), 0), $5, $6, $7, $8, $9, 0, $10, {}",
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
    .execute(tx.conn()?)
    .await?;
    Ok(())
}

pub(crate) async fn insert_alerts(tx: &mut Tx<'_>, alerts: &[Alert]) -> Result<()> {
    for a in alerts {
        let mut sql = Sql::new(&format!("INSERT INTO alerts ({ALERT_COLUMNS}) VALUES ("));
        sql.text(a.sid.clone())
            .push(", ")
            .text(a.account_sid.clone())
            .push(", ")
            .text(a.error_code.clone())
            .push(", ")
            .text(a.log_level.clone())
            .push(", ")
            .text(a.alert_text.clone());
        for optional in [
            &a.resource_sid,
            &a.service_sid,
            &a.request_method,
            &a.request_url,
            &a.request_variables,
            &a.request_headers,
            &a.response_body,
            &a.response_headers,
        ] {
            sql.push(", ").opt_text(optional.clone());
        }
        sql.push(", ").int(a.date_created).push(")");
        tx.execute(sql).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_each_message_s_earliest_callback_may_be_claimed_as_it_is_written() {
        let target = Some(("AC1".to_string(), "http://127.0.0.1:9/s".to_string()));
        let known: CallbackTargets = [("SM1".to_string(), target.clone()), ("SM2".into(), target)]
            .into_iter()
            .collect();
        // Listed out of order: SM1's `queued` comes before its `sent` of the same instant.
        let events = [
            Event::change("SM1", MessageStatus::Sent, None, 10),
            Event::change("SM1", MessageStatus::Queued, None, 10),
            Event::change("SM2", MessageStatus::Delivered, None, 12),
            Event::change("SM2", MessageStatus::Delivered, None, 12),
        ];
        let claim = CallbackBirthClaim {
            token: 1,
            lease: 1_000_000,
            now: 10,
        };
        let inserts = status_callback_inserts(&events, Some(&known), &known, Some(claim));
        assert!(inserts.writes.is_empty());
        assert_eq!(inserts.claiming.len(), 1, "one statement for the batch");
        let mut heads: Vec<(&str, Option<&str>)> = inserts
            .candidates
            .values()
            .map(|w| (w.message_sid.as_str(), w.message_status.as_deref()))
            .collect();
        heads.sort_unstable();
        assert_eq!(heads, [("SM1", Some("queued")), ("SM2", Some("delivered"))]);

        let unclaimed = status_callback_inserts(&events, Some(&known), &known, None);
        assert_eq!(unclaimed.writes.len(), 1);
        assert!(unclaimed.candidates.is_empty() && unclaimed.claiming.is_empty());
    }
}
