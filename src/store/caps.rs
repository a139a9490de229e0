//! Per-account caps (a warbler extension) and the monthly counters they are checked against.

use super::{int, opt_int, text, Sql, Store};
use crate::domain::usage::Money;
use crate::error::Result;
use std::collections::HashMap;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccountCaps {
    /// Segments per second across all the account's senders.
    pub max_sps: Option<f64>,
    pub monthly_messages: Option<i64>,
    pub monthly_spend: Option<Money>,
}

impl AccountCaps {
    pub fn is_empty(&self) -> bool {
        self.max_sps.is_none() && self.monthly_messages.is_none() && self.monthly_spend.is_none()
    }
}

fn decode(row: &impl super::Columns) -> Result<(String, AccountCaps)> {
    Ok((
        text(row, "account_sid")?,
        AccountCaps {
            max_sps: row.opt_float_column("max_sps")?,
            monthly_messages: opt_int(row, "monthly_messages")?,
            monthly_spend: opt_int(row, "monthly_spend")?,
        },
    ))
}

/// The caps of `accounts` (those that have any), read inside `tx` or the pool.
pub(crate) async fn caps_in<'e, E>(
    executor: E,
    accounts: &[&str],
) -> Result<HashMap<String, AccountCaps>>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let Some(sql) = caps_statement(accounts) else {
        return Ok(HashMap::new());
    };
    decode_caps(&sql.query().fetch_all(executor).await?)
}

/// The statement `caps_in` runs (none for no accounts).
pub(crate) fn caps_statement(accounts: &[&str]) -> Option<Sql> {
    if accounts.is_empty() {
        return None;
    }
    let mut sql = Sql::new(
        "SELECT account_sid, max_sps, monthly_messages, monthly_spend FROM account_caps WHERE account_sid IN ",
    );
    sql.text_set(accounts.iter().copied());
    Some(sql)
}

/// The rows of `caps_statement`, by account.
pub(crate) fn decode_caps(rows: &[impl super::Columns]) -> Result<HashMap<String, AccountCaps>> {
    rows.iter().map(decode).collect()
}

/// Messages accepted this `month` by `account_sid`, inside `tx`. The counter row is written
/// (unchanged) to read it, which locks it on PostgreSQL until the transaction ends: two nodes
/// checking the same account's cap take turns instead of both accepting past it.
/// Returns (messages, estimated outbound spend).
pub(crate) async fn month_count(
    tx: &mut super::durability::Exec<'_>,
    account_sid: &str,
    month: &str,
) -> Result<(i64, Money)> {
    let mut sql = Sql::new(
        "INSERT INTO account_month_counters (account_sid, month, messages, outbound_spend) VALUES (",
    );
    sql.text(account_sid).push(", ").text(month).push(
        ", 0, 0) ON CONFLICT (account_sid, month) DO UPDATE SET messages = \
             account_month_counters.messages RETURNING messages, outbound_spend",
    );
    let row = tx.fetch_one(sql).await?;
    Ok((int(&row, "messages")?, int(&row, "outbound_spend")?))
}

/// What `account_sid` spent in `month` (`YYYY-MM`) on everything but outbound messages
/// (received messages, rentals), from the usage rows, inside `tx`. Outbound messages are
/// counted when accepted, in the monthly counter.
pub(crate) async fn month_spend(
    tx: &mut super::durability::Exec<'_>,
    account_sid: &str,
    month: &str,
) -> Result<Money> {
    let mut sql = Sql::new(
        "SELECT CAST(SUM(price) AS BIGINT) AS spend FROM usage_daily WHERE account_sid = ",
    );
    sql.text(account_sid)
        .push(" AND day >= ")
        .text(format!("{month}-01"))
        .push(" AND day <= ")
        .text(format!("{month}-31"))
        .push(" AND category NOT LIKE 'sms-outbound%' AND category NOT LIKE 'mms-outbound%'");
    let row = tx.fetch_one(sql).await?;
    Ok(opt_int(&row, "spend")?.unwrap_or(0))
}

/// Upserts that add messages (and their estimated spend) to the monthly counters.
/// In key order (see `insert_new_messages_in`).
pub(crate) fn count_statements(
    counts: &std::collections::BTreeMap<(String, String), (i64, Money)>,
) -> Vec<Sql> {
    counts
        .iter()
        .map(|((account, month), (n, spend))| {
            let mut sql = Sql::new(
                "INSERT INTO account_month_counters (account_sid, month, messages, outbound_spend) VALUES (",
            );
            sql.text(account.clone())
                .push(", ")
                .text(month.clone())
                .push(", ")
                .int(*n)
                .push(", ")
                .int(*spend)
                .push(
                    ") ON CONFLICT (account_sid, month) DO UPDATE SET \
                     messages = account_month_counters.messages + excluded.messages, \
                     outbound_spend = account_month_counters.outbound_spend + excluded.outbound_spend",
                );
            sql
        })
        .collect()
}

impl Store {
    pub async fn account_caps(&self, accounts: &[&str]) -> Result<HashMap<String, AccountCaps>> {
        caps_in(self.pool(), accounts).await
    }

    /// Changes an account's caps with `change` in one write transaction, the row locked (on
    /// PostgreSQL; SQLite has one writer), and returns what is stored now: two concurrent
    /// updates of different caps never undo each other. Caps left all empty are removed.
    pub async fn update_account_caps(
        &self,
        account_sid: &str,
        change: impl FnOnce(&mut AccountCaps),
        now: i64,
    ) -> Result<AccountCaps> {
        let lock = match self.backend() {
            super::Backend::Postgres => " FOR UPDATE",
            super::Backend::Sqlite => "",
        };
        let mut tx = self.begin_write().await?;
        let mut caps = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT account_sid, max_sps, monthly_messages, monthly_spend FROM account_caps \
             WHERE account_sid = $1{lock}"
        )))
        .bind(account_sid.to_string())
        .fetch_optional(tx.conn()?)
        .await?
        .map(|row| decode(&row).map(|(_, caps)| caps))
        .transpose()?
        .unwrap_or_default();
        change(&mut caps);
        if caps.is_empty() {
            sqlx::query("DELETE FROM account_caps WHERE account_sid = $1")
                .bind(account_sid.to_string())
                .execute(tx.conn()?)
                .await?;
            tx.commit().await?;
            return Ok(caps);
        }
        // A missing rate is written as a typed NULL in the statement text, never bound: sqlx's
        // `Any` driver binds a NULL `f64` as a 4-byte float, and PostgreSQL keeps the type of
        // a connection's prepared statement, so a later 8-byte rate on that connection failed.
        let max_sps = match caps.max_sps {
            Some(_) => "$5",
            None => "CAST(NULL AS DOUBLE PRECISION)",
        };
        let statement = format!(
            "INSERT INTO account_caps (account_sid, max_sps, monthly_messages, monthly_spend, date_updated) \
             VALUES ($1, {max_sps}, $2, $3, $4) ON CONFLICT (account_sid) DO UPDATE SET \
             max_sps = excluded.max_sps, monthly_messages = excluded.monthly_messages, \
             monthly_spend = excluded.monthly_spend, date_updated = excluded.date_updated"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(statement))
            .bind(account_sid.to_string())
            .bind(caps.monthly_messages)
            .bind(caps.monthly_spend)
            .bind(now);
        if let Some(rate) = caps.max_sps {
            query = query.bind(rate);
        }
        query.execute(tx.conn()?).await?;
        tx.commit().await?;
        Ok(caps)
    }

    /// Messages accepted this month (`YYYY-MM`).
    pub async fn month_messages(&self, account_sid: &str, month: &str) -> Result<i64> {
        let row = sqlx::query(
            "SELECT messages FROM account_month_counters WHERE account_sid = $1 AND month = $2",
        )
        .bind(account_sid.to_string())
        .bind(month.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| int(&r, "messages"))
            .transpose()
            .map(|n| n.unwrap_or(0))
    }
}

/// Whether `account_sid` holds fewer than `cap` rows of `table` (keys, services), counted
/// with the account's row locked for the rest of `tx`: two creations at once are counted one
/// after the other, so together they cannot pass the cap.
pub(crate) async fn below_cap(
    tx: &mut super::Tx<'_>,
    account_sid: &str,
    table: &'static str,
    cap: u32,
) -> Result<bool> {
    sqlx::query("UPDATE accounts SET date_updated = date_updated WHERE sid = $1")
        .bind(account_sid.to_string())
        .execute(tx.conn()?)
        .await?;
    let count: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM {table} WHERE account_sid = $1"
    )))
    .bind(account_sid.to_string())
    .fetch_one(tx.conn()?)
    .await?;
    Ok(count < i64::from(cap))
}
