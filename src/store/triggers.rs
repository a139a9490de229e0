//! Usage Triggers and their firing (once per period, with the callback queued in the same
//! transaction).

use super::outbox::enqueue_payload;
use super::rows::InboundTarget;
use super::rows::WebhookKind;
use super::{int, opt_text, text, Sql, Store};
use crate::domain::paging::PageRequest;
use crate::error::Result;
use sqlx::any::AnyRow;
use sqlx::Row;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageTrigger {
    pub sid: String,
    pub account_sid: String,
    pub friendly_name: Option<String>,
    pub callback_url: String,
    pub callback_method: String,
    pub usage_category: String,
    pub trigger_by: String,
    pub trigger_value: String,
    pub recurring: Option<String>,
    pub fired_period: Option<String>,
    pub date_fired: Option<i64>,
    pub date_created: i64,
    pub date_updated: i64,
}

const COLUMNS: &str = "sid, account_sid, friendly_name, callback_url, callback_method, \
    usage_category, trigger_by, trigger_value, recurring, fired_period, date_fired, \
    date_created, date_updated";

fn decode(row: &AnyRow) -> Result<UsageTrigger> {
    Ok(UsageTrigger {
        sid: text(row, "sid")?,
        account_sid: text(row, "account_sid")?,
        friendly_name: opt_text(row, "friendly_name")?,
        callback_url: text(row, "callback_url")?,
        callback_method: text(row, "callback_method")?,
        usage_category: text(row, "usage_category")?,
        trigger_by: text(row, "trigger_by")?,
        trigger_value: text(row, "trigger_value")?,
        recurring: opt_text(row, "recurring")?,
        fired_period: opt_text(row, "fired_period")?,
        date_fired: row.try_get::<Option<i64>, _>("date_fired")?,
        date_created: int(row, "date_created")?,
        date_updated: int(row, "date_updated")?,
    })
}

/// Filters of `ListUsageTrigger`.
#[derive(Debug, Default, Clone)]
pub struct TriggerFilter {
    pub recurring: Option<String>,
    pub trigger_by: Option<String>,
    pub usage_category: Option<String>,
}

impl Store {
    pub async fn insert_trigger(&self, t: &UsageTrigger) -> Result<()> {
        self.write(sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO usage_triggers ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        )))
        .bind(t.sid.clone())
        .bind(t.account_sid.clone())
        .bind(t.friendly_name.clone())
        .bind(t.callback_url.clone())
        .bind(t.callback_method.clone())
        .bind(t.usage_category.clone())
        .bind(t.trigger_by.clone())
        .bind(t.trigger_value.clone())
        .bind(t.recurring.clone())
        .bind(t.fired_period.clone())
        .bind(t.date_fired)
        .bind(t.date_created)
        .bind(t.date_updated)
        )
        .await?;
        Ok(())
    }

    pub async fn count_triggers(&self, account_sid: &str) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM usage_triggers WHERE account_sid = $1")
            .bind(account_sid.to_string())
            .fetch_one(self.pool())
            .await?;
        int(&row, "n")
    }

    pub async fn trigger(&self, account_sid: &str, sid: &str) -> Result<Option<UsageTrigger>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM usage_triggers WHERE account_sid = $1 AND sid = $2"
        )))
        .bind(account_sid.to_string())
        .bind(sid.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(decode).transpose()
    }

    pub async fn list_triggers(
        &self,
        account_sid: &str,
        filter: &TriggerFilter,
        page: &PageRequest,
    ) -> Result<Vec<UsageTrigger>> {
        let mut sql = Sql::new(&format!(
            "SELECT {COLUMNS} FROM usage_triggers WHERE account_sid = "
        ));
        sql.text(account_sid);
        if let Some(v) = &filter.recurring {
            sql.push(" AND recurring = ").text(v.clone());
        }
        if let Some(v) = &filter.trigger_by {
            sql.push(" AND trigger_by = ").text(v.clone());
        }
        if let Some(v) = &filter.usage_category {
            sql.push(" AND usage_category = ").text(v.clone());
        }
        sql.page(page);
        let rows = sql.query().fetch_all(self.pool()).await?;
        rows.iter().map(decode).collect()
    }

    /// Every trigger (for evaluation), a page at a time after `after_sid`.
    pub async fn triggers_after(&self, after_sid: &str, limit: i64) -> Result<Vec<UsageTrigger>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM usage_triggers WHERE sid > $1 ORDER BY sid LIMIT $2"
        )))
        .bind(after_sid.to_string())
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(decode).collect()
    }

    pub async fn update_trigger(
        &self,
        account_sid: &str,
        sid: &str,
        friendly_name: Option<&str>,
        callback_url: Option<&str>,
        callback_method: Option<&str>,
        now: i64,
    ) -> Result<bool> {
        let mut sql = Sql::new("UPDATE usage_triggers SET date_updated = ");
        sql.int(now);
        if let Some(v) = friendly_name {
            sql.push(", friendly_name = ").text(v);
        }
        if let Some(v) = callback_url {
            sql.push(", callback_url = ").text(v);
        }
        if let Some(v) = callback_method {
            sql.push(", callback_method = ").text(v);
        }
        sql.push(" WHERE account_sid = ")
            .text(account_sid)
            .push(" AND sid = ")
            .text(sid);
        let done = self.write(sql.query()).await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn delete_trigger(&self, account_sid: &str, sid: &str) -> Result<bool> {
        let done = self
            .write(
                sqlx::query("DELETE FROM usage_triggers WHERE account_sid = $1 AND sid = $2")
                    .bind(account_sid.to_string())
                    .bind(sid.to_string()),
            )
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Marks a trigger fired for `period` and queues its callback, in one transaction. Does
    /// nothing (returns false) if it already fired in that period, so concurrent evaluators
    /// fire it once.
    pub async fn fire_trigger(
        &self,
        trigger: &UsageTrigger,
        period: &str,
        payload: &str,
        now: i64,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let won = sqlx::query(
            "UPDATE usage_triggers SET fired_period = $1, date_fired = $2 \
             WHERE sid = $3 AND (fired_period IS NULL OR fired_period <> $1)",
        )
        .bind(period.to_string())
        .bind(now)
        .bind(trigger.sid.clone())
        .execute(tx.conn()?)
        .await?
        .rows_affected()
            == 1;
        if won {
            let target = InboundTarget {
                url: trigger.callback_url.clone(),
                method: trigger.callback_method.clone(),
                fallback_url: None,
                fallback_method: None,
            };
            enqueue_payload(
                &mut tx,
                WebhookKind::Trigger,
                &trigger.account_sid,
                &trigger.sid,
                &target,
                payload,
                now,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(won)
    }
}
