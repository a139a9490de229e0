//! Message rows, which double as the dispatch queue, plus their events, media, sticky senders,
//! pacing, and carrier receipts.

use super::carrier::insert_receipts;
use super::leases::new_claim_token;
use super::queue::{
    insert_events, insert_messages_in, insert_new_messages_in, Framing, ROWS_PER_STATEMENT,
};
use super::rows::{
    decode_events, decode_message as decode, event_entries, event_entry, push_event_entry,
    Admission, CallbackSubject, CallbackTargets, Event, Receipt, ReceiptUpdate, StatusChange,
    MESSAGE_COLUMNS as COLUMNS,
};
use super::webhooks::CallbackBirthClaim;
use super::{int, opt_int, opt_text, text, Kind, Rows, Sql, Store, Tx};
use crate::domain::message::{Media, Message, MessageStatus};
use crate::domain::paging::PageRequest;
use crate::error::{Error, Result};
use sqlx::any::AnyRow;
use std::collections::HashSet;

/// The longest a message can wait between creation and sending: 35 days of scheduling plus
/// 10 hours of validity, in microseconds (with a day's margin).
const MAX_SEND_DELAY: i64 = 36 * 24 * 3600 * 1_000_000 + 10 * 3600 * 1_000_000;

/// List filters of `ListMessage` (times in microseconds, bounds inclusive).
#[derive(Debug, Default, Clone)]
pub struct MessageFilter {
    pub to: Option<String>,
    pub from: Option<String>,
    pub sent_from: Option<i64>,
    pub sent_until: Option<i64>,
}

/// List filters of `ListMedia` (`DateCreated`, `<`, `>`; microseconds, bounds inclusive).
#[derive(Debug, Default, Clone)]
pub struct MediaFilter {
    pub created_from: Option<i64>,
    pub created_until: Option<i64>,
}

/// A message claimed by a dispatcher, with what it needs to send it.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub message: Message,
    pub attempts: i64,
    /// The send time pacing already reserved for this message, if it was deferred.
    pub pace_slot: Option<i64>,
    /// A keyword auto-reply, which goes out despite the opt-out it confirms.
    pub opt_out_exempt: bool,
}

/// What one claim took: its messages and the token its outcomes must be recorded with.
#[derive(Debug, Clone)]
pub struct Claim {
    pub token: i64,
    pub messages: Vec<Claimed>,
    /// Messages whose previous claim had lapsed unfinished (a node died or paused holding
    /// them): the one place a submit may repeat, so it is counted.
    pub taken_over: usize,
}

/// What the dispatcher decided for one claimed message.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Try again at this time (pacing, or a scheduled message not yet due); `from` records a
    /// sender already chosen.
    Later {
        due_at: i64,
        from: Option<String>,
        status: MessageStatus,
    },
    /// Handed to the carrier.
    Sent {
        from: String,
        route: String,
        carrier_message_id: String,
        /// What the send costs (none: no price for the destination).
        cost: Option<crate::domain::usage::Money>,
        /// The usage category the send is counted in (`sms-outbound-longcode`…).
        category: String,
        at: i64,
    },
    /// Final failure before reaching the carrier (or refused by it).
    Failed {
        from: Option<String>,
        error_code: i64,
        error_message: String,
        at: i64,
    },
}

/// What `record_outcomes` recorded: how many messages, and the status changes among them.
#[derive(Debug, Clone, Default)]
pub struct Recorded {
    pub count: usize,
    pub changes: Vec<StatusChange>,
    /// Status callbacks claimed as they were written (`webhooks::CallbackBirthClaim`).
    pub callbacks: Vec<super::webhooks::Webhook>,
}

/// What applying receipts changed, and the status callbacks it claimed as it wrote them.
pub struct ReceiptsApplied {
    pub changes: Vec<StatusChange>,
    pub callbacks: Vec<super::webhooks::Webhook>,
}

impl Store {
    /// Inserts messages (with their media and first event) in one transaction, with
    /// multi-row statements: the API's group commit writes many requests' messages at once.
    pub async fn insert_messages(
        &self,
        batch: &[(Message, Vec<Media>)],
        due_now: i64,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        insert_messages_in(&mut tx, batch, due_now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Inserts the API's new messages except those to recipients who opted out of their
    /// sender or service, and those over their account's monthly caps. Both are checked in
    /// the inserting transaction, so a STOP or a count committed before is always seen.
    /// Returns, per message, whether it was inserted or why not.
    /// `estimates` are what each message will cost (for the spend cap), in batch order.
    pub async fn insert_new_messages(
        &self,
        batch: &[(Message, Vec<Media>)],
        estimates: &[crate::domain::usage::Money],
        due_now: i64,
    ) -> Result<Vec<Admission>> {
        let (admissions, durable) = self
            .insert_new_messages_deferred(batch, estimates, due_now)
            .await?;
        durable.wait().await?;
        Ok(admissions)
    }

    /// `insert_new_messages`, returning as soon as the rows are committed, with what says
    /// when they are durable: nobody may hear of them before that resolves.
    pub async fn insert_new_messages_deferred(
        &self,
        batch: &[(Message, Vec<Media>)],
        estimates: &[crate::domain::usage::Money],
        due_now: i64,
    ) -> Result<(Vec<Admission>, super::Durable)> {
        let mut tx = self.begin_write().await?;
        let admissions = insert_new_messages_in(
            &mut tx.exec()?,
            Framing::InTransaction,
            batch,
            estimates,
            &[],
            due_now,
            None,
        )
        .await?;
        Ok((admissions, tx.commit_deferred().await?))
    }

    /// The message an idempotency key of `account_sid` created, with the fingerprint of the
    /// request that created it.
    pub async fn idempotent_message(
        &self,
        account_sid: &str,
        key: &str,
    ) -> Result<Option<(String, Message)>> {
        let row = sqlx::query(
            "SELECT fingerprint, message_sid FROM idempotency_keys WHERE account_sid = $1 AND idempotency_key = $2",
        )
        .bind(account_sid)
        .bind(key)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let fingerprint = text(&row, "fingerprint")?;
        let sid = text(&row, "message_sid")?;
        Ok(self
            .message(account_sid, &sid)
            .await?
            .map(|message| (fingerprint, message)))
    }

    /// Forgets idempotency keys older than `before` (their retries are then new requests).
    pub async fn expire_idempotency_keys(&self, before: i64) -> Result<u64> {
        let done = sqlx::query("DELETE FROM idempotency_keys WHERE date_created < $1")
            .bind(before)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }

    pub async fn message(&self, account_sid: &str, sid: &str) -> Result<Option<Message>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM messages WHERE account_sid = $1 AND sid = $2"
        )))
        .bind(account_sid.to_string())
        .bind(sid.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(decode).transpose()
    }

    /// What the status callbacks of several messages report of them, by SID, each only if it
    /// belongs to the account given with it. Only those columns: a webhook round reads one row
    /// per callback, and the whole message (its body among them) would be most of what it reads.
    pub async fn callback_subjects(&self, wanted: &[(&str, &str)]) -> Result<Vec<CallbackSubject>> {
        let wanted: HashSet<(&str, &str)> = wanted.iter().copied().collect();
        let sids: Vec<&str> = wanted.iter().map(|(_, sid)| *sid).collect();
        let mut found = Vec::with_capacity(sids.len());
        for chunk in sids.chunks(ROWS_PER_STATEMENT) {
            let mut sql = Sql::new(
                "SELECT sid, account_sid, messaging_service_sid, from_address, to_address, status \
                 FROM messages WHERE sid IN ",
            );
            sql.text_set(chunk.iter().copied());
            for row in self.read_rows(sql).await? {
                let subject = CallbackSubject {
                    sid: text(&row, "sid")?,
                    account_sid: text(&row, "account_sid")?,
                    messaging_service_sid: opt_text(&row, "messaging_service_sid")?,
                    from: opt_text(&row, "from_address")?,
                    to: text(&row, "to_address")?,
                    status: MessageStatus::parse(&text(&row, "status")?)
                        .ok_or_else(|| Error::internal("bad message status"))?,
                };
                if wanted.contains(&(subject.account_sid.as_str(), subject.sid.as_str())) {
                    found.push(subject);
                }
            }
        }
        Ok(found)
    }

    /// Rows of messages by SID, in due order, read on a read connection: the message columns
    /// (see `decode`), then `extra`.
    async fn message_rows(&self, sids: &[&str], extra: &str) -> Result<Vec<super::Row>> {
        let mut rows = Vec::with_capacity(sids.len());
        for chunk in sids.chunks(ROWS_PER_STATEMENT) {
            let mut sql = Sql::new("SELECT ");
            sql.push(COLUMNS)
                .push(extra)
                .push(" FROM messages WHERE sid IN ")
                .text_set(chunk.iter().copied())
                .push(" ORDER BY due_at, sid");
            rows.extend(self.read_rows(sql).await?);
        }
        Ok(rows)
    }

    /// The statuses a message went through, in the order they happened.
    pub async fn message_events(
        &self,
        sid: &str,
    ) -> Result<Vec<(MessageStatus, Option<i64>, i64)>> {
        let row = sqlx::query("SELECT events FROM messages WHERE sid = $1")
            .bind(sid.to_string())
            .fetch_optional(self.pool())
            .await?;
        match row {
            Some(row) => decode_events(opt_text(&row, "events")?.as_deref().unwrap_or("")),
            None => Ok(Vec::new()),
        }
    }

    /// Newest first, as Twilio lists messages; keyset paging on (date_created, sid) descending.
    pub async fn list_messages(
        &self,
        account_sid: &str,
        filter: &MessageFilter,
        page: &PageRequest,
    ) -> Result<Vec<Message>> {
        let mut sql = Sql::new(&format!(
            "SELECT {COLUMNS} FROM messages WHERE account_sid = "
        ));
        sql.text(account_sid);
        if let Some(to) = &filter.to {
            sql.push(" AND to_address = ").text(to.clone());
        }
        if let Some(from) = &filter.from {
            sql.push(" AND from_address = ").text(from.clone());
        }
        // A message is sent after it is created, and at most the scheduling window plus its
        // validity period later: these implied bounds on date_created let the newest-first
        // index serve DateSent filters without scanning the whole history.
        if let Some(t) = filter.sent_from {
            sql.push(" AND date_sent >= ").int(t);
            sql.push(" AND date_created >= ").int(t - MAX_SEND_DELAY);
        }
        if let Some(t) = filter.sent_until {
            sql.push(" AND date_sent <= ").int(t);
            sql.push(" AND date_created <= ").int(t);
        }
        if let Some(after) = &page.after {
            sql.push(" AND (date_created < ")
                .int(after.created)
                .push(" OR (date_created = ")
                .int(after.created)
                .push(" AND sid < ")
                .text(after.sid.clone())
                .push("))");
        }
        sql.push(" ORDER BY date_created DESC, sid DESC LIMIT ")
            .int(i64::from(page.fetch_limit()))
            .push(" OFFSET ")
            .int(page.offset() as i64);
        let rows = sql.query().fetch_all(self.pool()).await?;
        rows.iter().map(decode).collect()
    }

    /// One page of an account's messages created in `[since, until)`, oldest first, after
    /// the keyset position `after` (date_created, sid): the log export reads these.
    pub async fn export_page(
        &self,
        account_sid: &str,
        since: i64,
        until: i64,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> Result<Vec<Message>> {
        let mut sql = Sql::new(&format!(
            "SELECT {COLUMNS} FROM messages WHERE account_sid = "
        ));
        sql.text(account_sid)
            .push(" AND date_created >= ")
            .int(since)
            .push(" AND date_created < ")
            .int(until);
        if let Some((created, sid)) = after {
            sql.push(" AND (date_created > ")
                .int(created)
                .push(" OR (date_created = ")
                .int(created)
                .push(" AND sid > ")
                .text(sid)
                .push("))");
        }
        sql.push(" ORDER BY date_created, sid LIMIT ").int(limit);
        let rows = sql.query().fetch_all(self.pool()).await?;
        rows.iter().map(decode).collect()
    }

    /// Redacts a message body (`Body=""` on update).
    pub async fn redact_message(&self, account_sid: &str, sid: &str, now: i64) -> Result<bool> {
        let done = self.write(sqlx::query(
            "UPDATE messages SET body = '', date_updated = $1 WHERE account_sid = $2 AND sid = $3",
        )
        .bind(now)
        .bind(account_sid.to_string())
        .bind(sid.to_string())
        )
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Cancels a scheduled message; false when it is not (or no longer) scheduled.
    pub async fn cancel_message(&self, account_sid: &str, sid: &str, now: i64) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE messages SET status = 'canceled', due_at = NULL, date_updated = $1 \
             WHERE account_sid = $2 AND sid = $3 AND status = 'scheduled' AND lease_until IS NULL",
        )
        .bind(now)
        .bind(account_sid.to_string())
        .bind(sid.to_string())
        .execute(tx.conn()?)
        .await?
        .rows_affected();
        if done > 0 {
            insert_events(
                &mut tx,
                &[Event::change(sid, MessageStatus::Canceled, None, now)],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(done > 0)
    }

    /// Deletes a message in a final state with its media and events.
    pub async fn delete_message(&self, account_sid: &str, sid: &str) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        // Its idempotency key goes too: a retry of a deleted message's create sends anew.
        for table in [
            "message_media",
            "message_feedback",
            "idempotency_keys",
            "console_callback_attempts",
        ] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE message_sid IN (SELECT sid FROM messages WHERE account_sid = $1 AND sid = $2)"
            )))
            .bind(account_sid.to_string())
            .bind(sid.to_string())
            .execute(tx.conn()?)
            .await?;
        }
        let done = sqlx::query("DELETE FROM messages WHERE account_sid = $1 AND sid = $2")
            .bind(account_sid.to_string())
            .bind(sid.to_string())
            .execute(tx.conn()?)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(done > 0)
    }

    /// Records the feedback outcome of a message; returns (date_created, date_updated).
    pub async fn save_feedback(
        &self,
        account_sid: &str,
        message_sid: &str,
        outcome: &str,
        now: i64,
    ) -> Result<(i64, i64)> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO message_feedback (message_sid, account_sid, outcome, date_created, date_updated) \
             VALUES ($1, $2, $3, $4, $4) ON CONFLICT (message_sid) DO UPDATE SET \
             outcome = excluded.outcome, date_updated = excluded.date_updated",
        )
        .bind(message_sid.to_string())
        .bind(account_sid.to_string())
        .bind(outcome.to_string())
        .bind(now)
        .execute(tx.conn()?)
        .await?;
        let row = sqlx::query(
            "SELECT date_created, date_updated FROM message_feedback WHERE message_sid = $1",
        )
        .bind(message_sid.to_string())
        .fetch_one(tx.conn()?)
        .await?;
        tx.commit().await?;
        Ok((int(&row, "date_created")?, int(&row, "date_updated")?))
    }

    pub async fn list_media(
        &self,
        account_sid: &str,
        message_sid: &str,
        filter: &MediaFilter,
        page: &PageRequest,
    ) -> Result<Vec<Media>> {
        let mut sql = Sql::new("SELECT sid, message_sid, account_sid, url, content_type, date_created, date_updated FROM message_media WHERE account_sid = ");
        sql.text(account_sid)
            .push(" AND message_sid = ")
            .text(message_sid);
        if let Some(t) = filter.created_from {
            sql.push(" AND date_created >= ").int(t);
        }
        if let Some(t) = filter.created_until {
            sql.push(" AND date_created <= ").int(t);
        }
        sql.page(page);
        let rows = sql.query().fetch_all(self.pool()).await?;
        rows.iter().map(decode_media).collect()
    }

    pub async fn media(
        &self,
        account_sid: &str,
        message_sid: &str,
        sid: &str,
    ) -> Result<Option<Media>> {
        let row = sqlx::query(
            "SELECT sid, message_sid, account_sid, url, content_type, date_created, date_updated FROM message_media \
             WHERE account_sid = $1 AND message_sid = $2 AND sid = $3",
        )
        .bind(account_sid.to_string())
        .bind(message_sid.to_string())
        .bind(sid.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(decode_media).transpose()
    }

    pub async fn delete_media(
        &self,
        account_sid: &str,
        message_sid: &str,
        sid: &str,
    ) -> Result<bool> {
        let done = self.write(sqlx::query(
            "DELETE FROM message_media WHERE account_sid = $1 AND message_sid = $2 AND sid = $3",
        )
        .bind(account_sid.to_string())
        .bind(message_sid.to_string())
        .bind(sid.to_string())
        )
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Claims up to `limit` due messages for `lease` microseconds, under a new fencing token
    /// (`Claim::token`): the outcomes recorded with it are kept only while no other claim took
    /// the messages since. One statement whatever the backlog: on PostgreSQL each account's
    /// rows are picked by a lateral sub-select that locks with `SKIP LOCKED` before its
    /// `LIMIT` counts, inside a `WITH` (evaluated once), so rows another node holds hide
    /// nothing behind them; the lease ends by the database's clock, after the rows are locked.
    pub async fn claim_due(&self, now: i64, lease: i64, limit: i64) -> Result<Claim> {
        let token = new_claim_token();
        // Accounts take turns, so one account's backlog cannot starve the others: each round
        // takes the first few due messages of each account with due work. The cost follows
        // the claim, not the backlog: the accounts are found by skipping through the
        // (account, due) index, and each account's messages are one seek into it.
        // Found on a read connection: an account whose messages another claim takes in the
        // meantime only makes this claim smaller (the update checks each message again).
        let accounts = due_accounts(self, now).await?;
        if accounts.is_empty() {
            return Ok(Claim {
                token,
                messages: Vec::new(),
                taken_over: 0,
            });
        }
        let per_account = (limit + accounts.len() as i64 - 1) / accounts.len() as i64;
        let postgres = self.backend() == super::Backend::Postgres;
        let mut sql = Sql::new("WITH picked AS (");
        if postgres {
            sql.push("SELECT c.sid AS claimed_sid, c.lease_until AS old_lease, c.ctid AS row_ctid FROM (VALUES ");
            for (i, account) in accounts.iter().enumerate() {
                if i > 0 {
                    sql.push(", ");
                }
                sql.push("(").text(account.clone()).push(")");
            }
            sql.push(") AS a (account_sid) CROSS JOIN LATERAL (SELECT m.sid, m.lease_until, m.ctid FROM messages m WHERE m.account_sid = a.account_sid AND ");
            push_due_in(&mut sql, "m.", now);
            sql.push(" ORDER BY m.due_at")
                .limit(per_account)
                .push(" FOR UPDATE SKIP LOCKED) AS c");
        } else {
            // One writer at a time: nothing to skip, and no lateral joins.
            for (i, account) in accounts.iter().enumerate() {
                if i > 0 {
                    sql.push(" UNION ALL ");
                }
                sql.push("SELECT sid FROM (SELECT sid FROM messages WHERE ");
                push_due(&mut sql, now);
                sql.push(" AND account_sid = ")
                    .text(account.clone())
                    .push(" ORDER BY due_at")
                    .limit(per_account)
                    .push(&format!(") AS a{i}"));
            }
        }
        sql.push(") UPDATE messages SET claim_token = ").int(token);
        super::leases::push_lease_end(&mut sql, postgres, now, lease);
        sql.push(if postgres {
            // The picked rows by their place, whatever the statistics (see `claim_webhooks`).
            " FROM picked WHERE messages.ctid = picked.row_ctid"
        } else {
            " FROM picked WHERE messages.sid = picked.sid"
        });
        if postgres || self.writes_natively() {
            // The claim hands back whole rows, so they are not read again: PostgreSQL's
            // RETURNING sees the picked rows too (the lease each replaced says whether it was
            // taken over; only the picked columns are renamed, so `sid` is the message's);
            // SQLite's sees only the updated table, and one node takes over no other's claim.
            sql.push(" RETURNING ")
                .push(COLUMNS)
                .push(", attempts, pace_slot, opt_out_exempt, due_at, ")
                .push(if postgres {
                    "picked.old_lease"
                } else {
                    "CAST(NULL AS BIGINT) AS old_lease"
                });
            let rows = self.write_volatile_planned_each_run(sql).await?;
            let mut taken_over = 0;
            let mut messages = Vec::with_capacity(rows.len());
            for row in &rows {
                if opt_int(row, "old_lease")?.is_some() {
                    taken_over += 1;
                }
                let due = (opt_int(row, "due_at")?, text(row, "sid")?);
                messages.push((due, decode_claimed(row)?));
            }
            // In due order, as a read would give them.
            messages.sort_by(|a, b| a.0.cmp(&b.0));
            return Ok(Claim {
                token,
                messages: messages.into_iter().map(|(_, claimed)| claimed).collect(),
                taken_over,
            });
        }
        // SQLite's RETURNING sees only the updated table; one node, so no claim takes over
        // another's.
        sql.push(" RETURNING sid");
        // One statement, so no transaction is held open; and it need not wait for the disk.
        let rows = self.write_volatile_planned_each_run(sql).await?;
        let mut claimed = Vec::with_capacity(rows.len());
        for row in &rows {
            claimed.push(text(row, "sid")?);
        }
        // The messages are read on a read connection (the claim is committed, so visible):
        // the write connection, which every API write waits for, only did the update.
        let sids: Vec<&str> = claimed.iter().map(String::as_str).collect();
        let messages = self
            .message_rows(&sids, ", attempts, pace_slot, claim_token, opt_out_exempt")
            .await?
            .iter()
            // A row another claim took between the update and this read is not ours.
            .filter(|row| matches!(opt_int(row, "claim_token"), Ok(Some(t)) if t == token))
            .map(decode_claimed)
            .collect::<Result<_>>()?;
        Ok(Claim {
            token,
            messages,
            taken_over: 0,
        })
    }

    /// Ends the leases that claim `token` still holds on the messages `sids`, so that any
    /// dispatcher claims them at once: a node lets go of messages it will not dispatch (see
    /// `service::handoff`). A message another claim took since keeps that claim.
    pub async fn release_message_claims(&self, token: i64, sids: &[&str], now: i64) -> Result<u64> {
        let mut released = 0;
        for chunk in sids.chunks(ROWS_PER_STATEMENT) {
            // Due at once: a message claimed as it was written is due when its lease ends.
            let mut sql = Sql::new("UPDATE messages SET lease_until = NULL, due_at = ");
            sql.int(now)
                .push(" WHERE claim_token = ")
                .int(token)
                .push(" AND lease_until IS NOT NULL AND sid IN ")
                .text_set(chunk.iter().copied());
            // A release lost in a crash only leaves the lease to run out.
            released += self.write_volatile_count(sql).await?;
        }
        Ok(released)
    }

    /// On a SQLite file whose lock this process holds (`hold_webhook_outbox`: the file's one
    /// server), ends the message claims an earlier server left when it stopped without letting
    /// go of them (it crashed): its messages go out as soon as this server starts, not when
    /// their leases would have ended. Elsewhere, with no way to know that no other process
    /// holds them, it does nothing. Returns how many claims it ended.
    pub async fn end_claims_of_earlier_servers(&self, now: i64) -> Result<u64> {
        if !self
            .webhook_leases
            .as_ref()
            .is_some_and(|memory| memory.holds_process_lock())
        {
            return Ok(0);
        }
        // A claimed message is due by its claim's time, or (claimed as it was written) when
        // its lease ends: either way, due now.
        let mut sql = Sql::new("UPDATE messages SET lease_until = NULL, due_at = MIN(due_at, ");
        sql.int(now).push(") WHERE lease_until IS NOT NULL");
        self.write_volatile_count(sql).await
    }

    /// Records the dispatcher's decisions for a batch in one transaction (group commit), with
    /// one multi-row statement per kind of decision.
    ///
    /// Fenced: only the messages still held under `token` (no other claim took them since)
    /// are recorded, with their events, usage and callbacks; the others are left to the claim
    /// that holds them now. Returns how many were recorded.
    ///
    /// Retried when it conflicts with another node's transaction: an outcome not recorded
    /// would be submitted again once its lease ran out.
    pub async fn record_outcomes(
        &self,
        outcomes: &[(Message, Outcome)],
        pacing: &[(String, i64)],
        carrier: &super::carrier::CarrierRecords,
        now: i64,
        token: i64,
        callbacks: Option<CallbackBirthClaim>,
    ) -> Result<Recorded> {
        super::retry_transient(|| {
            self.record_outcomes_once(outcomes, pacing, carrier, now, token, callbacks)
        })
        .await
    }

    async fn record_outcomes_once(
        &self,
        outcomes: &[(Message, Outcome)],
        pacing: &[(String, i64)],
        carrier: &super::carrier::CarrierRecords,
        now: i64,
        token: i64,
        callbacks: Option<CallbackBirthClaim>,
    ) -> Result<Recorded> {
        // A message's own `StatusCallback` comes first (`outbox::CALLBACK_URL`), and the claim
        // handed it over: only the messages without one need their service's or sender's read,
        // before the write transaction, so that it holds the write connection less long.
        let mut own = super::rows::CallbackTargets::new();
        let reported: Vec<(&str, Option<&str>)> = outcomes
            .iter()
            .filter_map(|(m, outcome)| {
                let from = match outcome {
                    Outcome::Later { status, .. } if *status == m.status => return None,
                    Outcome::Later { from, .. } | Outcome::Failed { from, .. } => {
                        from.as_deref().or(m.from.as_deref())
                    }
                    Outcome::Sent { from, .. } => Some(from.as_str()),
                };
                if let Some(url) = m.status_callback.as_deref().filter(|url| !url.is_empty()) {
                    own.insert(
                        m.sid.clone(),
                        Some((m.account_sid.clone(), url.to_string())),
                    );
                    return None;
                }
                Some((m.sid.as_str(), from))
            })
            .collect();
        let mut targets = if reported.is_empty() {
            super::rows::CallbackTargets::new()
        } else {
            self.callback_targets(&reported).await?
        };
        targets.extend(own);
        let mut tx = self.begin_write_native().await?;
        let sids: Vec<&str> = outcomes.iter().map(|(m, _)| m.sid.as_str()).collect();
        let held =
            super::leases::held_claims(&mut tx, self.backend(), "messages", "sid", &sids, token)
                .await?;
        if held.len() < outcomes.len() {
            tracing::warn!(
                lost = outcomes.len() - held.len(),
                "claims lost to another node before their outcome was recorded; not recorded here"
            );
        }
        let outcomes: Vec<&(Message, Outcome)> = outcomes
            .iter()
            .filter(|(m, _)| held.contains(m.sid.as_str()))
            .collect();
        let carrier = carrier.of_messages(&held);
        let count = outcomes.len();
        let mut changes = Vec::new();
        let mut later = Vec::new();
        let mut sent = Vec::new();
        let mut usage = Vec::new();
        let mut failed = Vec::new();
        let mut events = Vec::new();
        let mut sticky: std::collections::HashMap<(String, String), (String, i64)> =
            std::collections::HashMap::new();
        for (m, outcome) in outcomes.iter().copied() {
            match outcome {
                Outcome::Later {
                    due_at,
                    from,
                    status,
                } => {
                    let mut entries = String::new();
                    if *status != m.status {
                        push_event_entry(&mut entries, *status, now, None);
                        events.push(Event::change(&m.sid, *status, None, now));
                    }
                    later.push((
                        m.sid.clone(),
                        *due_at,
                        from.clone().or_else(|| m.from.clone()),
                        *status,
                        entries,
                    ));
                }
                Outcome::Sent {
                    from,
                    route,
                    carrier_message_id,
                    cost,
                    category,
                    at,
                } => {
                    usage.push(super::usage::UsageRow::at(
                        &m.account_sid,
                        *at,
                        category,
                        if m.num_media > 0 {
                            1
                        } else {
                            m.num_segments.max(1)
                        },
                        cost.unwrap_or(0),
                    ));
                    let first = events.len();
                    if m.status != MessageStatus::Queued {
                        events.push(Event::change(&m.sid, MessageStatus::Queued, None, *at));
                    }
                    for status in [MessageStatus::Sending, MessageStatus::Sent] {
                        events.push(Event::change(&m.sid, status, None, *at));
                    }
                    sent.push((
                        m.sid.clone(),
                        from.clone(),
                        route.clone(),
                        carrier_message_id.clone(),
                        // Twilio shows the price negative (what the account pays).
                        cost.map(|c| crate::domain::usage::format_money(-c)),
                        *at,
                        m.num_segments,
                        event_entries(&events[first..]),
                    ));
                    if let Some(service) = &m.messaging_service_sid {
                        sticky.insert((service.clone(), m.to.clone()), (from.clone(), *at));
                    }
                    changes.push(StatusChange::of(m, MessageStatus::Sent, None, *at));
                }
                Outcome::Failed {
                    from,
                    error_code,
                    error_message,
                    at,
                } => {
                    failed.push((
                        m.sid.clone(),
                        from.clone().or_else(|| m.from.clone()),
                        *error_code,
                        error_message.clone(),
                        *at,
                        event_entry(MessageStatus::Failed, *at, Some(*error_code)),
                    ));
                    events.push(Event::change(
                        &m.sid,
                        MessageStatus::Failed,
                        Some(*error_code),
                        *at,
                    ));
                    changes.push(StatusChange::of(
                        m,
                        MessageStatus::Failed,
                        Some(*error_code),
                        *at,
                    ));
                }
            }
        }
        // Every write of the batch goes in one multi-statement query on SQLite
        // (`Tx::execute_all`): each round trip holds the write connection, which the API's
        // groups wait for, for a wake-up of this thread and of the connection's.
        let mut writes: Vec<Sql> = Vec::new();
        // `Sql::rows_as` names the columns column1, column2… on both databases.
        for chunk in later.chunks(ROWS_PER_STATEMENT) {
            let mut rows = Rows::with_capacity(
                chunk.len(),
                &[Kind::Text, Kind::Int, Kind::Text, Kind::Text, Kind::Text],
            );
            for (sid, due_at, from, status, entries) in chunk {
                rows.text(sid.clone())
                    .int(*due_at)
                    .opt_text(from.clone())
                    .text(status.as_str())
                    .text(entries.clone());
            }
            // Each message's transitions go into its own row with the update that makes them
            // (see `rows::push_event_entries`).
            let mut sql = Sql::new("UPDATE messages SET lease_until = NULL, due_at = v.column2, pace_slot = v.column2, from_address = v.column3, status = v.column4, events = COALESCE(messages.events, '') || v.column5, date_updated = ");
            sql.int(now)
                .push(" FROM ")
                .rows_as(rows, "v")
                .push(" WHERE messages.sid = v.column1");
            writes.push(sql);
        }
        for chunk in sent.chunks(ROWS_PER_STATEMENT) {
            let mut rows = Rows::with_capacity(
                chunk.len(),
                &[
                    Kind::Text,
                    Kind::Text,
                    Kind::Text,
                    Kind::Text,
                    Kind::Text,
                    Kind::Int,
                    Kind::Int,
                    Kind::Text,
                ],
            );
            for (sid, from, route, carrier_id, price, at, segments, entries) in chunk {
                rows.text(sid.clone())
                    .text(from.clone())
                    .text(route.clone())
                    .text(carrier_id.clone())
                    .opt_text(price.clone())
                    .int(*at)
                    .int(*segments)
                    .text(entries.clone());
            }
            let mut sql = Sql::new(
                "UPDATE messages SET lease_until = NULL, due_at = NULL, status = 'sent', attempts = attempts + 1, \
                 from_address = v.column2, route = v.column3, carrier_message_id = v.column4, price = v.column5, \
                 date_sent = v.column6, date_updated = v.column6, num_segments = v.column7, \
                 events = COALESCE(messages.events, '') || v.column8 FROM ",
            );
            sql.rows_as(rows, "v")
                .push(" WHERE messages.sid = v.column1");
            writes.push(sql);
        }
        for chunk in failed.chunks(ROWS_PER_STATEMENT) {
            let mut rows = Rows::with_capacity(
                chunk.len(),
                &[
                    Kind::Text,
                    Kind::Text,
                    Kind::Int,
                    Kind::Text,
                    Kind::Int,
                    Kind::Text,
                ],
            );
            for (sid, from, code, text_message, at, entries) in chunk {
                rows.text(sid.clone())
                    .opt_text(from.clone())
                    .int(*code)
                    .text(text_message.clone())
                    .int(*at)
                    .text(entries.clone());
            }
            let mut sql = Sql::new(
                "UPDATE messages SET lease_until = NULL, due_at = NULL, status = 'failed', from_address = v.column2, \
                 error_code = v.column3, error_message = v.column4, date_updated = v.column5, \
                 events = COALESCE(messages.events, '') || v.column6 FROM ",
            );
            sql.rows_as(rows, "v")
                .push(" WHERE messages.sid = v.column1");
            writes.push(sql);
        }
        if !super::outbox::missing_sids(&events, Some(&targets)).is_empty() {
            // Targets read in the transaction are read from the messages' new state.
            tx.execute_all(std::mem::take(&mut writes)).await?;
        }
        let read = super::outbox::missing_targets(&mut tx, &events, Some(&targets)).await?;
        let mut inserts =
            super::outbox::status_callback_inserts(&events, Some(&targets), &read, callbacks);
        writes.append(&mut inserts.writes);
        writes.extend(super::usage::usage_statements(&usage));
        // Upserts in key order, as every writer goes, so concurrent ones never deadlock.
        let mut sticky: Vec<((String, String), (String, i64))> = sticky.into_iter().collect();
        sticky.sort_unstable();
        let mut pacing = pacing.to_vec();
        pacing.sort_unstable();
        for chunk in sticky.chunks(ROWS_PER_STATEMENT) {
            let mut rows = Rows::with_capacity(
                chunk.len(),
                &[Kind::Text, Kind::Text, Kind::Text, Kind::Int],
            );
            for ((service, to), (from, at)) in chunk {
                rows.text(service.clone())
                    .text(to.clone())
                    .text(from.clone())
                    .int(*at);
            }
            let mut sql = Sql::new(
                "INSERT INTO sticky_senders (service_sid, to_address, from_address, updated_at) ",
            );
            sql.insert_rows(rows);
            sql.push(" ON CONFLICT (service_sid, to_address) DO UPDATE SET from_address = excluded.from_address, updated_at = excluded.updated_at");
            writes.push(sql);
        }
        // Pacing commits with the sends it accounts for.
        for chunk in pacing.chunks(ROWS_PER_STATEMENT) {
            let mut rows = Rows::with_capacity(chunk.len(), &[Kind::Text, Kind::Int]);
            for (address, next_free_at) in chunk {
                rows.text(address.clone()).int(*next_free_at);
            }
            let mut sql = Sql::new("INSERT INTO sender_pacing (address, next_free_at) ");
            sql.insert_rows(rows);
            sql.push(" ON CONFLICT (address) DO UPDATE SET next_free_at = excluded.next_free_at");
            writes.push(sql);
        }
        writes.extend(super::carrier::carrier_record_statements(&carrier));
        writes.extend(super::alarms::outcome_count_statements(&changes));
        writes.extend(super::console::console_outcome_statements(&changes));
        tx.execute_all(writes).await?;
        let callbacks = inserts.claim_in(&mut tx).await?;
        tx.commit().await?;
        Ok(Recorded {
            count,
            changes,
            callbacks,
        })
    }

    /// The sticky senders of a service for several recipients.
    pub async fn sticky_senders(
        &self,
        service_sid: &str,
        recipients: &[&str],
    ) -> Result<std::collections::HashMap<String, String>> {
        let mut found = std::collections::HashMap::new();
        for chunk in recipients.chunks(ROWS_PER_STATEMENT) {
            let mut sql = Sql::new(
                "SELECT to_address, from_address FROM sticky_senders WHERE service_sid = ",
            );
            sql.text(service_sid)
                .push(" AND to_address IN ")
                .text_set(chunk.iter().copied());
            for row in self.read_rows(sql).await? {
                found.insert(text(&row, "to_address")?, text(&row, "from_address")?);
            }
        }
        Ok(found)
    }

    /// When each of `addresses` may next send (absent: now).
    pub async fn pacing_many(
        &self,
        addresses: &[&str],
    ) -> Result<std::collections::HashMap<String, i64>> {
        let mut found = std::collections::HashMap::new();
        for chunk in addresses.chunks(ROWS_PER_STATEMENT) {
            let mut sql =
                Sql::new("SELECT address, next_free_at FROM sender_pacing WHERE address IN ");
            sql.text_set(chunk.iter().copied());
            for row in self.read_rows(sql).await? {
                found.insert(text(&row, "address")?, int(&row, "next_free_at")?);
            }
        }
        Ok(found)
    }

    /// Messages waiting at `now`: (due now, scheduled for later, held back by pacing). For
    /// `/metrics`, at scrape time: it reads the rows that have a send time, the backlog.
    pub async fn queue_depth(&self, now: i64) -> Result<(i64, i64, i64)> {
        let row = sqlx::query(
            // A message claimed as it was written is due when its lease ends, and waits to be
            // sent meanwhile (`store::queue::BirthClaim`).
            "SELECT COUNT(CASE WHEN due_at <= $1 OR lease_until IS NOT NULL THEN 1 END) AS due, \
             COUNT(CASE WHEN due_at > $1 AND lease_until IS NULL AND status = 'scheduled' THEN 1 END) AS scheduled, \
             COUNT(CASE WHEN due_at > $1 AND lease_until IS NULL AND status <> 'scheduled' THEN 1 END) AS pacing \
             FROM messages WHERE due_at IS NOT NULL",
        )
        .bind(now)
        .fetch_one(self.pool())
        .await?;
        Ok((
            int(&row, "due")?,
            int(&row, "scheduled")?,
            int(&row, "pacing")?,
        ))
    }

    /// Stores delivery receipts as a carrier reports them.
    pub async fn insert_receipts(&self, receipts: &[Receipt]) -> Result<()> {
        let mut tx = self.begin_write_native().await?;
        insert_receipts(&mut tx, receipts).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Applies due receipts to their messages. A receipt whose message does not carry its
    /// carrier id yet (the submit is still being recorded) waits for the next round. Returns
    /// the messages it changed.
    pub async fn apply_due_receipts(
        &self,
        now: i64,
        limit: i64,
        callbacks: Option<CallbackBirthClaim>,
    ) -> Result<ReceiptsApplied> {
        // Read on a read connection, with where each message's callbacks go, so that the write
        // transaction only writes.
        let mut sql = Sql::new(&format!(
            "SELECT r.id, r.status, r.error_code, r.done_date, m.sid, m.account_sid, \
             m.status AS message_status, {} AS url \
             FROM carrier_receipts r JOIN messages m ON m.carrier_message_id = r.carrier_message_id \
             LEFT JOIN messaging_services s ON s.sid = m.messaging_service_sid \
             LEFT JOIN phone_numbers p ON p.phone_number = m.from_address AND p.account_sid = m.account_sid \
             WHERE r.due_at <= ",
            super::outbox::CALLBACK_URL
        ));
        sql.int(now).push(" ORDER BY r.due_at").limit(limit);
        let rows = self.read_rows_planned_each_run(sql).await?;
        if rows.is_empty() {
            // No receipt due at all (an idle round, or the simulator's receipts not due yet):
            // the write lock, which the API's inserts wait for, is not taken.
            let mut any = Sql::new("SELECT id FROM carrier_receipts WHERE due_at <= ");
            any.int(now).push(" LIMIT 1");
            if self.read_rows(any).await?.is_empty() {
                return Ok(ReceiptsApplied {
                    changes: Vec::new(),
                    callbacks: Vec::new(),
                });
            }
        }
        let mut ids = Vec::with_capacity(rows.len());
        // receipt id → (message SID, status, error code, done date)
        let mut found: std::collections::HashMap<String, ReceiptUpdate> =
            std::collections::HashMap::new();
        let mut targets = CallbackTargets::new();
        for row in &rows {
            let id = text(row, "id")?;
            ids.push(id.clone());
            let status = MessageStatus::parse(&text(row, "status")?)
                .ok_or_else(|| Error::internal("bad receipt status"))?;
            let current = MessageStatus::parse(&text(row, "message_status")?)
                .ok_or_else(|| Error::internal("bad message status"))?;
            // A message already final (say, expired) keeps its state; the receipt is dropped.
            if !current.is_final() {
                let sid = text(row, "sid")?;
                let target = opt_text(row, "url")?
                    .map(|url| Ok::<_, Error>((text(row, "account_sid")?, url)))
                    .transpose()?;
                targets.insert(sid.clone(), target);
                found.insert(
                    id,
                    (
                        sid,
                        status,
                        opt_int(row, "error_code")?,
                        opt_text(row, "done_date")?,
                    ),
                );
            }
        }
        let mut tx = self.begin_write_native().await?;
        // A receipt counts only if this transaction consumes it: another node may have
        // applied it since the read.
        let mut updates: Vec<ReceiptUpdate> = consume_receipts(&mut tx, &ids)
            .await?
            .iter()
            .filter_map(|id| found.remove(id))
            .collect();
        let (part_ids, part_updates) =
            super::carrier::apply_part_receipts(&mut tx, now, limit).await?;
        tx.execute_all(orphan_receipt_statements(
            now,
            self.backend() == super::Backend::Postgres,
        ))
        .await?;
        updates.extend(part_updates);
        let mut writes = Vec::new();
        for chunk in part_ids.chunks(ROWS_PER_STATEMENT) {
            let mut sql = Sql::new("DELETE FROM carrier_receipts WHERE id IN ");
            sql.text_set(chunk.iter().map(String::as_str));
            writes.push(sql);
        }
        let applied =
            write_receipt_updates(&mut tx, updates, &targets, writes, now, callbacks).await?;
        tx.commit().await?;
        Ok(applied)
    }
}

/// Writes receipts' effects in `tx`, with `writes` of the caller's own: each message not yet in
/// a final state takes its receipt's state (a message already final keeps it: an expiry or an
/// earlier receipt came first), with its event, the status callbacks it queues and the alarms'
/// and console's counts. One update per message: a receipt sent twice changes it once.
/// Returns the changes.
async fn write_receipt_updates(
    tx: &mut Tx<'_>,
    mut updates: Vec<ReceiptUpdate>,
    targets: &CallbackTargets,
    mut writes: Vec<Sql>,
    now: i64,
    callbacks: Option<CallbackBirthClaim>,
) -> Result<ReceiptsApplied> {
    let mut seen = HashSet::with_capacity(updates.len());
    updates.retain(|(sid, ..)| seen.insert(sid.clone()));
    let mut changes = Vec::with_capacity(updates.len());
    let mut changed = HashSet::with_capacity(updates.len());
    for chunk in updates.chunks(ROWS_PER_STATEMENT) {
        let mut rows = Rows::with_capacity(
            chunk.len(),
            &[Kind::Text, Kind::Text, Kind::Int, Kind::Text, Kind::Text],
        );
        for (sid, status, code, _) in chunk {
            rows.text(sid.clone())
                .text(status.as_str())
                .opt_int(*code)
                .opt_text(code.map(|c| delivery_error_message(c).to_string()))
                .text(event_entry(*status, now, *code));
        }
        // The transition goes into the message's row with the update that makes it, so only
        // a message this update changes records it.
        let mut sql = Sql::new(
            "UPDATE messages SET status = v.column2, error_code = v.column3, \
             error_message = v.column4, events = COALESCE(messages.events, '') || v.column5, \
             date_updated = ",
        );
        sql.int(now).push(" FROM ").rows_as(rows, "v");
        sql.push(" WHERE messages.sid = v.column1 AND messages.status NOT IN ")
            .text_set(
                MessageStatus::ALL
                    .into_iter()
                    .filter(|s| s.is_final())
                    .map(MessageStatus::as_str),
            )
            .push(
                " RETURNING messages.sid, messages.account_sid, \
                 messages.messaging_service_sid, messages.status, messages.error_code, \
                 messages.date_created, messages.num_segments",
            );
        for row in tx.fetch_all(sql).await? {
            changed.insert(text(&row, "sid")?);
            changes.push(StatusChange {
                account_sid: text(&row, "account_sid")?,
                service_sid: opt_text(&row, "messaging_service_sid")?,
                status: MessageStatus::parse(&text(&row, "status")?)
                    .ok_or_else(|| Error::internal("bad message status"))?,
                error_code: opt_int(&row, "error_code")?,
                accepted_at: int(&row, "date_created")?,
                at: now,
                segments: int(&row, "num_segments")?,
            });
        }
    }
    let events: Vec<Event> = updates
        .iter()
        .filter(|(sid, ..)| changed.contains(sid))
        .map(|(sid, status, code, done_date)| Event {
            done_date: done_date.clone(),
            ..Event::change(sid, *status, *code, now)
        })
        .collect();
    // The rest in one round trip on SQLite (see `record_outcomes`). The messages carry
    // their new state already, as targets read in the transaction need.
    let read = super::outbox::missing_targets(tx, &events, Some(targets)).await?;
    let mut inserts =
        super::outbox::status_callback_inserts(&events, Some(targets), &read, callbacks);
    writes.append(&mut inserts.writes);
    writes.extend(super::alarms::outcome_count_statements(&changes));
    writes.extend(super::console::console_outcome_statements(&changes));
    tx.execute_all(writes).await?;
    let callbacks = inserts.claim_in(tx).await?;
    Ok(ReceiptsApplied { changes, callbacks })
}

/// A claimed message from a row of its columns with `attempts, pace_slot, opt_out_exempt`.
fn decode_claimed(row: &super::Row) -> Result<Claimed> {
    Ok(Claimed {
        message: decode(row)?,
        attempts: int(row, "attempts")?,
        pace_slot: opt_int(row, "pace_slot")?,
        opt_out_exempt: int(row, "opt_out_exempt")? != 0,
    })
}

/// Most accounts one claim takes messages from (SQLite allows 500 terms in a compound select).
const MAX_ACCOUNTS_PER_CLAIM: i64 = 100;

/// A message is due when its time has come and no live claim holds it.
fn push_due(sql: &mut Sql, now: i64) {
    push_due_in(sql, "", now);
}

/// `push_due` on the columns of `table` (`"m."`, or `""` for the statement's own table).
fn push_due_in(sql: &mut Sql, table: &str, now: i64) {
    sql.push(&format!("{table}due_at IS NOT NULL AND {table}due_at <= "))
        .int(now)
        .push(&format!(
            " AND ({table}lease_until IS NULL OR {table}lease_until < "
        ))
        .int(now)
        .push(")");
}

/// Accounts with due messages, at most `MAX_ACCOUNTS_PER_CLAIM`. The walk skips from one
/// account to the next through the (account, due) index, starting after a random SID and
/// wrapping around, so that with more accounts than one claim takes each gets its turn.
async fn due_accounts(store: &Store, now: i64) -> Result<Vec<String>> {
    let start = format!("AC{}", crate::domain::sid::random_hex32());
    let mut found = due_accounts_between(store, now, &start, None, MAX_ACCOUNTS_PER_CLAIM).await?;
    let missing = MAX_ACCOUNTS_PER_CLAIM - found.len() as i64;
    if missing > 0 {
        found.extend(due_accounts_between(store, now, "", Some(&start), missing).await?);
    }
    Ok(found)
}

/// Up to `max` accounts with due messages whose SIDs sort after `after` (and before
/// `before`), in SID order. The walk visits every account with queued messages, whatever
/// their due time, one index seek each, and keeps those with a message due now, one seek
/// into that account's own range. A walk that looked for due messages while it skipped
/// could only narrow its seek by account, and so read every queued entry of each account it
/// passed (scheduled messages, and the messages in flight, leased until later) on every
/// claim.
async fn due_accounts_between(
    store: &Store,
    now: i64,
    after: &str,
    before: Option<&str>,
    max: i64,
) -> Result<Vec<String>> {
    let mut sql = Sql::new(
        "WITH RECURSIVE walk (account_sid) AS (SELECT (SELECT account_sid FROM messages \
         WHERE due_at IS NOT NULL AND account_sid > ",
    );
    sql.text(after).push(
        " ORDER BY account_sid LIMIT 1) UNION ALL SELECT (SELECT m.account_sid FROM messages m \
         WHERE m.due_at IS NOT NULL AND m.account_sid > walk.account_sid \
         ORDER BY m.account_sid LIMIT 1) FROM walk WHERE walk.account_sid IS NOT NULL",
    );
    if let Some(before) = before {
        sql.push(" AND walk.account_sid < ").text(before);
    }
    sql.push(") SELECT account_sid FROM walk WHERE account_sid IS NOT NULL");
    if let Some(before) = before {
        sql.push(" AND account_sid < ").text(before);
    }
    sql.push(" AND EXISTS (SELECT 1 FROM messages d WHERE d.account_sid = walk.account_sid AND ");
    push_due_in(&mut sql, "d.", now);
    // The walk is evaluated only as far as this limit reads it (SQLite and PostgreSQL both).
    sql.push(")").limit(max);
    let rows = store.read_rows(sql).await?;
    rows.iter().map(|row| text(row, "account_sid")).collect()
}

/// Deletes receipts by id inside `tx`; returns the ids it deleted (not those another
/// transaction took first).
async fn consume_receipts(tx: &mut Tx<'_>, ids: &[String]) -> Result<Vec<String>> {
    let mut consumed = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(ROWS_PER_STATEMENT) {
        let mut sql = Sql::new("DELETE FROM carrier_receipts WHERE id IN ");
        sql.text_set(chunk.iter().map(String::as_str))
            .push(" RETURNING id");
        for row in tx.fetch_all(sql).await? {
            consumed.push(text(&row, "id")?);
        }
    }
    Ok(consumed)
}

/// How long a receipt may wait for its message (microseconds).
const ORPHAN_RECEIPT_AGE: i64 = 7 * 24 * 3600 * 1_000_000;
/// How long a receipt waits in every round for its message or part to be recorded: far longer
/// than recording a submit takes (microseconds).
const ORPHAN_GRACE: i64 = 60 * 1_000_000;
/// How often a receipt past its grace is looked at again (microseconds). Looked at again, it
/// waits its grace once more in every round: an hour keeps that to a sixtieth of the time.
const ORPHAN_RECHECK: i64 = 3600 * 1_000_000;
/// Most orphan receipts one round sets aside.
const ORPHANS_PER_ROUND: i64 = 1_000;

/// The statements that set aside the receipts no message or message part has claimed within
/// `ORPHAN_GRACE` (ids of another system, or of a submit whose record a crash lost): due
/// again only after `ORPHAN_RECHECK`, and dropped once `ORPHAN_RECEIPT_AGE` old. Left due,
/// every round's read of the due receipts walked past each of them. On PostgreSQL a receipt
/// another node's round has locked is left to it: two rounds never wait for each other's.
fn orphan_receipt_statements(now: i64, postgres: bool) -> Vec<Sql> {
    let lock = if postgres {
        " FOR UPDATE SKIP LOCKED"
    } else {
        ""
    };
    // Among the oldest `ORPHANS_PER_ROUND` receipts past their grace only: while the
    // dispatcher is behind for longer than the grace, receipts waiting for their round
    // (`engine::receipts`) are past it too, and each round walked every one of them.
    let candidates = |sql: &mut Sql| {
        sql.push(
            " WHERE id IN (SELECT r.id FROM carrier_receipts r WHERE r.id IN \
             (SELECT w.id FROM carrier_receipts w WHERE w.due_at <= ",
        )
        .int(now - ORPHAN_GRACE)
        .push(" ORDER BY w.due_at")
        .limit(ORPHANS_PER_ROUND)
        .push(
            ") AND NOT EXISTS (SELECT 1 FROM messages m \
             WHERE m.carrier_message_id = r.carrier_message_id) \
             AND NOT EXISTS (SELECT 1 FROM carrier_parts p \
             WHERE p.carrier_message_id = r.carrier_message_id)",
        );
    };
    let mut dropped = Sql::new("DELETE FROM carrier_receipts");
    candidates(&mut dropped);
    dropped
        .push(" AND COALESCE(r.received_at, r.due_at) < ")
        .int(now - ORPHAN_RECEIPT_AGE)
        .push(" ORDER BY r.due_at")
        .limit(ORPHANS_PER_ROUND)
        .push(lock)
        .push(")");
    let mut set_aside = Sql::new(
        "UPDATE carrier_receipts SET received_at = COALESCE(received_at, due_at), due_at = ",
    );
    set_aside.int(now + ORPHAN_RECHECK);
    candidates(&mut set_aside);
    set_aside
        .push(" ORDER BY r.due_at")
        .limit(ORPHANS_PER_ROUND)
        .push(lock)
        .push(")");
    vec![dropped, set_aside]
}

/// Twilio's titles for the delivery errors warbler reports.
pub fn delivery_error_message(code: i64) -> &'static str {
    match code {
        30003 => "Unreachable destination handset",
        30005 => "Unknown destination handset",
        30006 => "Landline or unreachable carrier",
        30007 => "Message filtered",
        30008 => "Unknown error",
        30036 => "Validity Period Expired",
        21704 => "The Messaging Service contains no phone numbers",
        21610 => "Attempt to send to unsubscribed recipient",
        30002 => "Account suspended",
        30034 => "Message from an Unregistered Number",
        _ => "Delivery failed",
    }
}

fn decode_media(row: &AnyRow) -> Result<Media> {
    Ok(Media {
        sid: text(row, "sid")?,
        message_sid: text(row, "message_sid")?,
        account_sid: text(row, "account_sid")?,
        url: text(row, "url")?,
        content_type: text(row, "content_type")?,
        date_created: int(row, "date_created")?,
        date_updated: int(row, "date_updated")?,
    })
}
