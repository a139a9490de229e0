//! Alarms, their firings, and the per-minute outcome counters they are evaluated from.

use super::outbox::enqueue_payload;
use super::rows::InboundTarget;
use super::rows::StatusChange;
use super::rows::WebhookKind;
use super::{int, opt_int, opt_text, text, Sql, Store};
use crate::domain::alarm::{
    bucket_of, Alarm, AlarmFiring, AlarmState, ThresholdType, WindowCounts,
};
use crate::domain::paging::PageRequest;
use crate::error::{Error, Result};
use sqlx::any::AnyRow;
use std::collections::BTreeMap;

const COLUMNS: &str = "sid, account_sid, friendly_name, error_code, scope_sid, threshold_type, \
    threshold, window_minutes, webhook_url, webhook_method, emails, state, date_state_changed, \
    date_created, date_updated";

const FIRING_COLUMNS: &str = "sid, alarm_sid, account_sid, state, errors, messages, value, \
    email_status, email_attempts, email_error, date_created";

/// Rows per multi-row statement.
const ROWS_PER_STATEMENT: usize = 500;

/// How long outcome counters are kept: the longest window, and an hour's margin.
pub const OUTCOME_COUNTS_KEPT: i64 = (crate::domain::alarm::MAX_WINDOW_MINUTES + 60) * 60_000_000;

fn decode(row: &AnyRow) -> Result<Alarm> {
    let threshold_type = text(row, "threshold_type")?;
    let threshold = text(row, "threshold")?;
    Ok(Alarm {
        sid: text(row, "sid")?,
        account_sid: text(row, "account_sid")?,
        friendly_name: opt_text(row, "friendly_name")?,
        error_code: opt_int(row, "error_code")?,
        scope_sid: text(row, "scope_sid")?,
        threshold_type: ThresholdType::parse(&threshold_type)
            .ok_or_else(|| Error::internal(format!("bad threshold type {threshold_type}")))?,
        threshold: threshold
            .parse()
            .map_err(|_| Error::internal(format!("bad threshold {threshold}")))?,
        window_minutes: int(row, "window_minutes")?,
        webhook_url: opt_text(row, "webhook_url")?,
        webhook_method: text(row, "webhook_method")?,
        emails: text(row, "emails")?
            .split(',')
            .filter(|e| !e.is_empty())
            .map(str::to_string)
            .collect(),
        state: AlarmState::parse(&text(row, "state")?),
        date_state_changed: opt_int(row, "date_state_changed")?,
        date_created: int(row, "date_created")?,
        date_updated: int(row, "date_updated")?,
    })
}

fn decode_firing(row: &AnyRow) -> Result<AlarmFiring> {
    Ok(AlarmFiring {
        sid: text(row, "sid")?,
        alarm_sid: text(row, "alarm_sid")?,
        account_sid: text(row, "account_sid")?,
        state: text(row, "state")?,
        counts: WindowCounts {
            errors: int(row, "errors")?,
            messages: int(row, "messages")?,
        },
        value: text(row, "value")?,
        email_status: text(row, "email_status")?,
        email_attempts: int(row, "email_attempts")?,
        email_error: opt_text(row, "email_error")?,
        date_created: int(row, "date_created")?,
    })
}

/// The upserts that add the final outcomes among `changes` to the per-minute counters, run in the transaction
/// that records them (so a counted outcome is a recorded one). Upserts in key order, as every
/// writer goes, so that concurrent ones never wait on each other in a cycle.
pub(crate) fn outcome_count_statements(changes: &[StatusChange]) -> Vec<Sql> {
    let mut statements = Vec::new();
    let mut counts: BTreeMap<(&str, i64, &str, i64), i64> = BTreeMap::new();
    for change in changes.iter().filter(|c| c.status.is_final()) {
        let key = (
            change.account_sid.as_str(),
            bucket_of(change.at),
            change.service_sid.as_deref().unwrap_or(""),
            change.error_code.unwrap_or(0),
        );
        *counts.entry(key).or_default() += 1;
    }
    let counts: Vec<_> = counts.into_iter().collect();
    for chunk in counts.chunks(ROWS_PER_STATEMENT) {
        let mut sql = Sql::new(
            "INSERT INTO outcome_counts (account_sid, minute, service_sid, error_code, count) VALUES ",
        );
        for (i, ((account, minute, service, code), n)) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.push("(")
                .text(*account)
                .push(", ")
                .int(*minute)
                .push(", ")
                .text(*service)
                .push(", ")
                .int(*code)
                .push(", ")
                .int(*n)
                .push(")");
        }
        sql.push(
            " ON CONFLICT (account_sid, minute, service_sid, error_code) \
             DO UPDATE SET count = outcome_counts.count + excluded.count",
        );
        statements.push(sql);
    }
    statements
}

/// What an alarm counts: some accounts' messages, or a Messaging Service's.
#[derive(Debug, Clone)]
pub enum CountScope {
    Accounts(Vec<String>),
    Service(String),
}

impl Store {
    /// The account a Messaging Service belongs to.
    pub async fn service_owner(&self, service_sid: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT account_sid FROM messaging_services WHERE sid = $1")
            .bind(service_sid.to_string())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(|r| text(r, "account_sid")).transpose()
    }

    pub async fn insert_alarm(&self, a: &Alarm) -> Result<()> {
        self.write(sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO alarms ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
        )))
        .bind(a.sid.clone())
        .bind(a.account_sid.clone())
        .bind(a.friendly_name.clone())
        .bind(a.error_code)
        .bind(a.scope_sid.clone())
        .bind(a.threshold_type.as_str())
        .bind(a.threshold.to_string())
        .bind(a.window_minutes)
        .bind(a.webhook_url.clone())
        .bind(a.webhook_method.clone())
        .bind(a.emails.join(","))
        .bind(a.state.as_str())
        .bind(a.date_state_changed)
        .bind(a.date_created)
        .bind(a.date_updated))
        .await?;
        Ok(())
    }

    pub async fn count_alarms(&self, account_sid: &str) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM alarms WHERE account_sid = $1")
            .bind(account_sid.to_string())
            .fetch_one(self.pool())
            .await?;
        int(&row, "n")
    }

    pub async fn alarm(&self, account_sid: &str, sid: &str) -> Result<Option<Alarm>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM alarms WHERE account_sid = $1 AND sid = $2"
        )))
        .bind(account_sid.to_string())
        .bind(sid.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(decode).transpose()
    }

    pub async fn list_alarms(&self, account_sid: &str, page: &PageRequest) -> Result<Vec<Alarm>> {
        let mut sql = Sql::new(&format!(
            "SELECT {COLUMNS} FROM alarms WHERE account_sid = "
        ));
        sql.text(account_sid);
        sql.page(page);
        let rows = sql.query().fetch_all(self.pool()).await?;
        rows.iter().map(decode).collect()
    }

    /// Every alarm (for evaluation), a page at a time after `after_sid`.
    pub async fn alarms_after(&self, after_sid: &str, limit: i64) -> Result<Vec<Alarm>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM alarms WHERE sid > $1 ORDER BY sid LIMIT $2"
        )))
        .bind(after_sid.to_string())
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(decode).collect()
    }

    /// Replaces an alarm's rule and targets (its state stays).
    pub async fn update_alarm(&self, a: &Alarm) -> Result<bool> {
        let done = self
            .write(
                sqlx::query(
                    "UPDATE alarms SET friendly_name = $1, error_code = $2, scope_sid = $3, \
                     threshold_type = $4, threshold = $5, window_minutes = $6, webhook_url = $7, \
                     webhook_method = $8, emails = $9, date_updated = $10 \
                     WHERE account_sid = $11 AND sid = $12",
                )
                .bind(a.friendly_name.clone())
                .bind(a.error_code)
                .bind(a.scope_sid.clone())
                .bind(a.threshold_type.as_str())
                .bind(a.threshold.to_string())
                .bind(a.window_minutes)
                .bind(a.webhook_url.clone())
                .bind(a.webhook_method.clone())
                .bind(a.emails.join(","))
                .bind(a.date_updated)
                .bind(a.account_sid.clone())
                .bind(a.sid.clone()),
            )
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Deletes an alarm with its firings.
    pub async fn delete_alarm(&self, account_sid: &str, sid: &str) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let deleted = sqlx::query("DELETE FROM alarms WHERE account_sid = $1 AND sid = $2")
            .bind(account_sid.to_string())
            .bind(sid.to_string())
            .execute(tx.conn()?)
            .await?
            .rows_affected()
            > 0;
        if deleted {
            sqlx::query("DELETE FROM alarm_firings WHERE alarm_sid = $1")
                .bind(sid.to_string())
                .execute(tx.conn()?)
                .await?;
        }
        tx.commit().await?;
        Ok(deleted)
    }

    /// Outcome counts by error code (`0`: none) since `since` (microseconds) in `scope`.
    pub async fn outcome_counts(&self, scope: &CountScope, since: i64) -> Result<Vec<(i64, i64)>> {
        let mut sql = Sql::new(
            "SELECT error_code, CAST(SUM(count) AS BIGINT) AS n FROM outcome_counts WHERE minute >= ",
        );
        sql.int(since);
        match scope {
            CountScope::Accounts(accounts) => {
                sql.push(" AND account_sid IN (")
                    .text_list(accounts.iter().cloned())
                    .push(")");
            }
            CountScope::Service(service) => {
                sql.push(" AND service_sid = ").text(service.clone());
            }
        }
        sql.push(" GROUP BY error_code");
        let rows = sql.query().fetch_all(self.pool()).await?;
        rows.iter()
            .map(|row| Ok((int(row, "error_code")?, int(row, "n")?)))
            .collect()
    }

    /// Forgets outcome counters older than `before` (microseconds).
    pub async fn expire_outcome_counts(&self, before: i64) -> Result<u64> {
        let done = self
            .write(sqlx::query("DELETE FROM outcome_counts WHERE minute < $1").bind(before))
            .await?;
        Ok(done.rows_affected())
    }

    /// Moves `alarm` from its stored state to `firing.state`, records the firing and queues
    /// its webhook (`payload`), in one transaction. A conditional update: when another node
    /// moved it first, nothing is written and the answer is false, so an alarm fires once.
    pub async fn change_alarm_state(
        &self,
        alarm: &Alarm,
        to: AlarmState,
        firing: &AlarmFiring,
        payload: &str,
        now: i64,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let won = sqlx::query(
            "UPDATE alarms SET state = $1, date_state_changed = $2 WHERE sid = $3 AND state = $4",
        )
        .bind(to.as_str())
        .bind(now)
        .bind(alarm.sid.clone())
        .bind(alarm.state.as_str())
        .execute(tx.conn()?)
        .await?
        .rows_affected()
            == 1;
        if won {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO alarm_firings ({FIRING_COLUMNS}, email_due_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
            )))
            .bind(firing.sid.clone())
            .bind(firing.alarm_sid.clone())
            .bind(firing.account_sid.clone())
            .bind(firing.state.clone())
            .bind(firing.counts.errors)
            .bind(firing.counts.messages)
            .bind(firing.value.clone())
            .bind(firing.email_status.clone())
            .bind(firing.email_attempts)
            .bind(firing.email_error.clone())
            .bind(firing.date_created)
            .bind((firing.email_status == "pending").then_some(now))
            .execute(tx.conn()?)
            .await?;
            if let Some(url) = &alarm.webhook_url {
                let target = InboundTarget {
                    url: url.clone(),
                    method: alarm.webhook_method.clone(),
                    fallback_url: None,
                    fallback_method: None,
                };
                enqueue_payload(
                    &mut tx,
                    WebhookKind::Alarm,
                    &alarm.account_sid,
                    &alarm.sid,
                    &target,
                    payload,
                    now,
                )
                .await?;
            }
        }
        tx.commit().await?;
        Ok(won)
    }

    /// An alarm's firings, oldest first.
    pub async fn list_alarm_firings(
        &self,
        alarm_sid: &str,
        page: &PageRequest,
    ) -> Result<Vec<AlarmFiring>> {
        let mut sql = Sql::new(&format!(
            "SELECT {FIRING_COLUMNS} FROM alarm_firings WHERE alarm_sid = "
        ));
        sql.text(alarm_sid);
        sql.page(page);
        let rows = sql.query().fetch_all(self.pool()).await?;
        rows.iter().map(decode_firing).collect()
    }

    /// Firings whose e-mail is due at `now`, each claimed for `lease` microseconds by a
    /// conditional update (so one node sends it), with the alarm it is about.
    pub async fn claim_alarm_emails(
        &self,
        now: i64,
        lease: i64,
        limit: i64,
    ) -> Result<Vec<(AlarmFiring, Alarm)>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {FIRING_COLUMNS} FROM alarm_firings \
             WHERE email_status = 'pending' AND email_due_at <= $1 ORDER BY email_due_at LIMIT $2"
        )))
        .bind(now)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        let mut claimed = Vec::new();
        for row in &rows {
            let firing = decode_firing(row)?;
            let won = self
                .write(
                    sqlx::query(
                        "UPDATE alarm_firings SET email_due_at = $1, email_attempts = email_attempts + 1 \
                         WHERE sid = $2 AND email_status = 'pending' AND email_due_at <= $3",
                    )
                    .bind(now + lease)
                    .bind(firing.sid.clone())
                    .bind(now),
                )
                .await?
                .rows_affected()
                == 1;
            if !won {
                continue;
            }
            if let Some(alarm) = self.alarm(&firing.account_sid, &firing.alarm_sid).await? {
                claimed.push((firing, alarm));
            }
        }
        Ok(claimed)
    }

    /// Records what became of a firing's e-mail: sent, failed for good, or to be tried again
    /// at `retry_at`.
    pub async fn settle_alarm_email(
        &self,
        firing_sid: &str,
        status: &str,
        error: Option<&str>,
        retry_at: Option<i64>,
    ) -> Result<()> {
        self.write(
            sqlx::query(
                "UPDATE alarm_firings SET email_status = $1, email_error = $2, email_due_at = $3 \
                 WHERE sid = $4",
            )
            .bind(status.to_string())
            .bind(error.map(str::to_string))
            .bind(retry_at)
            .bind(firing_sid.to_string()),
        )
        .await?;
        Ok(())
    }
}
