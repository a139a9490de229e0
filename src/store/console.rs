//! What only the web console reads and writes: its sessions, the message counts behind its
//! overview and charts, and the message log with the console's filters. Every query names
//! the account it reads; the service decides which accounts a caller may name.

use super::messages::{decode, COLUMNS};
use super::{int, opt_text, text, Sql, Store};
use crate::domain::message::Message;
use crate::error::Result;

/// A console session as stored.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub account_sid: String,
    pub key_sid: Option<String>,
    pub token_hash: String,
    pub csrf_token: String,
    pub expires_at: i64,
}

/// Filters of the console's message log. Bounds are microseconds, inclusive.
#[derive(Debug, Default, Clone)]
pub struct LogFilter {
    pub to: Option<String>,
    pub from: Option<String>,
    pub status: Option<String>,
    pub error_code: Option<i64>,
    pub service_sid: Option<String>,
    pub created_from: Option<i64>,
    pub created_until: Option<i64>,
}

/// Length of the charts' buckets: an hour, in microseconds.
pub const HOUR: i64 = 3_600_000_000;

impl Store {
    pub async fn insert_console_session(
        &self,
        id_hash: &str,
        row: &SessionRow,
        now: i64,
    ) -> Result<()> {
        let mut sql = Sql::new(
            "INSERT INTO console_sessions (id_hash, account_sid, key_sid, token_hash, csrf_token, created_at, expires_at) VALUES (",
        );
        sql.text(id_hash)
            .push(", ")
            .text(row.account_sid.clone())
            .push(", ")
            .opt_text(row.key_sid.clone())
            .push(", ")
            .text(row.token_hash.clone())
            .push(", ")
            .text(row.csrf_token.clone())
            .push(", ")
            .int(now)
            .push(", ")
            .int(row.expires_at)
            .push(")");
        self.write(sql.query()).await?;
        Ok(())
    }

    /// The unexpired session whose token hashes to `id_hash`.
    pub async fn console_session(&self, id_hash: &str, now: i64) -> Result<Option<SessionRow>> {
        let mut sql = Sql::new(
            "SELECT account_sid, key_sid, token_hash, csrf_token, expires_at FROM console_sessions WHERE id_hash = ",
        );
        sql.text(id_hash).push(" AND expires_at > ").int(now);
        let Some(row) = sql.query().fetch_optional(self.pool()).await? else {
            return Ok(None);
        };
        Ok(Some(SessionRow {
            account_sid: text(&row, "account_sid")?,
            key_sid: opt_text(&row, "key_sid")?,
            token_hash: text(&row, "token_hash")?,
            csrf_token: text(&row, "csrf_token")?,
            expires_at: int(&row, "expires_at")?,
        }))
    }

    pub async fn delete_console_session(&self, id_hash: &str) -> Result<()> {
        let mut sql = Sql::new("DELETE FROM console_sessions WHERE id_hash = ");
        sql.text(id_hash);
        self.write(sql.query()).await?;
        Ok(())
    }

    /// Forgets sessions that ended before `now`.
    pub async fn expire_console_sessions(&self, now: i64) -> Result<u64> {
        let mut sql = Sql::new("DELETE FROM console_sessions WHERE expires_at <= ");
        sql.int(now);
        Ok(self.write(sql.query()).await?.rows_affected())
    }

    /// Messages of `account_sid` created since `since`, counted by status.
    pub async fn count_by_status(
        &self,
        account_sid: &str,
        since: i64,
    ) -> Result<Vec<(String, i64)>> {
        let mut sql = Sql::new("SELECT status, COUNT(*) AS n FROM messages WHERE account_sid = ");
        sql.text(account_sid)
            .push(" AND date_created >= ")
            .int(since)
            .push(" GROUP BY status");
        let rows = sql.query().fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| Ok((text(r, "status")?, int(r, "n")?)))
            .collect()
    }

    /// The most frequent error codes of messages created since `since`.
    pub async fn top_error_codes(
        &self,
        account_sid: &str,
        since: i64,
        limit: i64,
    ) -> Result<Vec<(i64, i64)>> {
        let mut sql =
            Sql::new("SELECT error_code, COUNT(*) AS n FROM messages WHERE account_sid = ");
        sql.text(account_sid)
            .push(" AND date_created >= ")
            .int(since)
            .push(" AND error_code IS NOT NULL GROUP BY error_code ORDER BY n DESC, error_code LIMIT ")
            .int(limit);
        let rows = sql.query().fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| Ok((int(r, "error_code")?, int(r, "n")?)))
            .collect()
    }

    /// Messages created since `since` by hour (bucket start) and status.
    pub async fn hourly_by_status(
        &self,
        account_sid: &str,
        since: i64,
    ) -> Result<Vec<(i64, String, i64)>> {
        let mut sql = Sql::new(&format!(
            "SELECT date_created / {HOUR} AS hour, status, COUNT(*) AS n FROM messages WHERE account_sid = "
        ));
        sql.text(account_sid)
            .push(" AND date_created >= ")
            .int(since)
            .push(" GROUP BY hour, status");
        let rows = sql.query().fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| Ok((int(r, "hour")? * HOUR, text(r, "status")?, int(r, "n")?)))
            .collect()
    }

    /// Messages with an error created since `since` by hour (bucket start) and error code.
    pub async fn hourly_by_error(
        &self,
        account_sid: &str,
        since: i64,
    ) -> Result<Vec<(i64, i64, i64)>> {
        let mut sql = Sql::new(&format!(
            "SELECT date_created / {HOUR} AS hour, error_code, COUNT(*) AS n FROM messages WHERE account_sid = "
        ));
        sql.text(account_sid)
            .push(" AND date_created >= ")
            .int(since)
            .push(" AND error_code IS NOT NULL GROUP BY hour, error_code");
        let rows = sql.query().fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| Ok((int(r, "hour")? * HOUR, int(r, "error_code")?, int(r, "n")?)))
            .collect()
    }

    /// (created, delivered) times of the newest `limit` delivered messages created since
    /// `since`: a bounded sample for the latency percentiles.
    pub async fn delivery_latencies(
        &self,
        account_sid: &str,
        since: i64,
        limit: i64,
    ) -> Result<Vec<(i64, i64)>> {
        let mut sql = Sql::new(
            "SELECT m.date_created AS created, e.at AS delivered FROM messages m \
             JOIN message_events e ON e.message_sid = m.sid AND e.status = 'delivered' \
             WHERE m.account_sid = ",
        );
        sql.text(account_sid)
            .push(" AND m.date_created >= ")
            .int(since)
            .push(" ORDER BY m.date_created DESC LIMIT ")
            .int(limit);
        let rows = sql.query().fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| Ok((int(r, "created")?, int(r, "delivered")?)))
            .collect()
    }

    /// One page of the message log, newest first, after the keyset position `after`
    /// (date_created, sid): no OFFSET, so a deep page costs what the first one does.
    pub async fn message_log(
        &self,
        account_sid: &str,
        filter: &LogFilter,
        after: Option<(i64, String)>,
        limit: i64,
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
        if let Some(status) = &filter.status {
            sql.push(" AND status = ").text(status.clone());
        }
        if let Some(code) = filter.error_code {
            sql.push(" AND error_code = ").int(code);
        }
        if let Some(service) = &filter.service_sid {
            sql.push(" AND messaging_service_sid = ")
                .text(service.clone());
        }
        if let Some(t) = filter.created_from {
            sql.push(" AND date_created >= ").int(t);
        }
        if let Some(t) = filter.created_until {
            sql.push(" AND date_created <= ").int(t);
        }
        if let Some((created, sid)) = after {
            sql.push(" AND (date_created < ")
                .int(created)
                .push(" OR (date_created = ")
                .int(created)
                .push(" AND sid < ")
                .text(sid)
                .push("))");
        }
        sql.push(" ORDER BY date_created DESC, sid DESC LIMIT ")
            .int(limit);
        let rows = sql.query().fetch_all(self.pool()).await?;
        rows.iter().map(decode).collect()
    }
}
