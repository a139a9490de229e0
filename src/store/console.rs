//! What only the web console reads and writes: its sessions, the message counts behind its
//! overview and charts, and the message log with the console's filters. Every query names
//! the account it reads; the service decides which accounts a caller may name.

use super::rows::decode_message as decode;
use super::rows::{StatusChange, MESSAGE_COLUMNS as COLUMNS};
use super::{int, opt_int, opt_text, text, Kind, Rows, Sql, Store};
use crate::domain::message::{Message, MessageStatus};
use crate::error::Result;
use std::collections::BTreeMap;

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

/// One status callback attempt, as the console shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackAttempt {
    pub message_sid: String,
    pub account_sid: String,
    pub attempt: i64,
    pub reported_status: Option<String>,
    pub url: String,
    pub method: String,
    pub response_code: Option<i64>,
    pub error: Option<String>,
    /// Microseconds from sending the request to its answer (or failure).
    pub latency: i64,
    /// `delivered`, `retrying` or `given up`.
    pub outcome: String,
    pub at: i64,
}

/// How long status callback attempts are kept (microseconds): a week.
pub const CALLBACK_ATTEMPTS_KEPT: i64 = 7 * 24 * 3_600_000_000;

/// The inserts that record status callback attempts, run in the transaction that settles them.
pub(crate) fn callback_attempt_statements(attempts: &[&CallbackAttempt]) -> Vec<Sql> {
    let mut statements = Vec::new();
    for chunk in attempts.chunks(200) {
        let mut rows = Rows::with_capacity(
            chunk.len(),
            &[
                Kind::Text, // message_sid
                Kind::Text, // account_sid
                Kind::Int,  // attempt
                Kind::Text, // reported_status
                Kind::Text, // url
                Kind::Text, // method
                Kind::Int,  // response_code
                Kind::Text, // error
                Kind::Int,  // latency
                Kind::Text, // outcome
                Kind::Int,  // at
            ],
        );
        for a in chunk {
            rows.text(a.message_sid.clone())
                .text(a.account_sid.clone())
                .int(a.attempt)
                .opt_text(a.reported_status.clone())
                .text(a.url.clone())
                .text(a.method.clone())
                .opt_int(a.response_code)
                .opt_text(a.error.clone())
                .int(a.latency)
                .text(a.outcome.clone())
                .int(a.at);
        }
        let mut sql = Sql::new(
            "INSERT INTO console_callback_attempts (message_sid, account_sid, attempt, reported_status, url, method, response_code, error, latency, outcome, at) ",
        );
        sql.insert_rows(rows);
        statements.push(sql);
    }
    statements
}

/// Rows a log page filtered on an unindexed column examines at most (see `message_log`).
pub const LOG_SCAN_WINDOW: i64 = 20_000;

/// A page of the message log.
#[derive(Debug, Clone)]
pub struct LogPage {
    pub messages: Vec<Message>,
    /// Where the next page starts (date_created, sid); `None`: no older rows.
    pub next: Option<(i64, String)>,
    /// The page is short because it examined `LOG_SCAN_WINDOW` rows, not because the rows
    /// ran out: older ones may still match.
    pub window_ended: bool,
}

fn position(message: &Message) -> (i64, String) {
    (message.date_created, message.sid.clone())
}

/// Length of the charts' buckets: an hour, in microseconds.
pub const HOUR: i64 = 3_600_000_000;

/// Upper bounds (microseconds) of the accepted → delivered latency buckets; the last bucket
/// holds everything slower than the last bound.
pub const LATENCY_BUCKETS: &[i64] = &[
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_000_000,
    5_000_000,
    10_000_000,
    30_000_000,
    60_000_000,
    120_000_000,
    300_000_000,
    600_000_000,
    1_800_000_000,
    3_600_000_000,
];

/// The bucket of a latency: the index of the first bound above it.
pub fn latency_bucket(latency: i64) -> i64 {
    LATENCY_BUCKETS
        .iter()
        .position(|bound| latency < *bound)
        .unwrap_or(LATENCY_BUCKETS.len()) as i64
}

/// The upserts that add the final outcomes among `changes` to `console_outcomes`, run in the transaction that
/// records them. Upserts in key order, as `alarms::outcome_count_statements` does, so that concurrent
/// writers never wait on each other in a cycle.
pub(crate) fn console_outcome_statements(changes: &[StatusChange]) -> Vec<Sql> {
    let mut statements = Vec::new();
    let mut counts: BTreeMap<(&str, i64, &'static str, i64, i64), i64> = BTreeMap::new();
    for change in changes.iter().filter(|c| c.status.is_final()) {
        let bucket = if change.status == MessageStatus::Delivered {
            latency_bucket(change.at - change.accepted_at)
        } else {
            -1
        };
        let key = (
            change.account_sid.as_str(),
            change.at - change.at.rem_euclid(HOUR),
            change.status.as_str(),
            change.error_code.unwrap_or(0),
            bucket,
        );
        *counts.entry(key).or_default() += 1;
    }
    let counts: Vec<_> = counts.into_iter().collect();
    for chunk in counts.chunks(500) {
        let mut sql = Sql::new(
            "INSERT INTO console_outcomes (account_sid, hour, status, error_code, latency_bucket, count) VALUES ",
        );
        for (i, ((account, hour, status, code, bucket), n)) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.push("(")
                .text(*account)
                .push(", ")
                .int(*hour)
                .push(", ")
                .text(*status)
                .push(", ")
                .int(*code)
                .push(", ")
                .int(*bucket)
                .push(", ")
                .int(*n)
                .push(")");
        }
        sql.push(
            " ON CONFLICT (account_sid, hour, status, error_code, latency_bucket) \
             DO UPDATE SET count = console_outcomes.count + excluded.count",
        );
        statements.push(sql);
    }
    statements
}

impl Store {
    /// The status callback attempts of a message of `account_sid`, oldest first.
    pub async fn callback_attempts(
        &self,
        account_sid: &str,
        message_sid: &str,
    ) -> Result<Vec<CallbackAttempt>> {
        let mut sql = Sql::new(
            "SELECT message_sid, account_sid, attempt, reported_status, url, method, response_code, error, latency, outcome, at FROM console_callback_attempts WHERE message_sid = ",
        );
        sql.text(message_sid)
            .push(" AND account_sid = ")
            .text(account_sid)
            .push(" ORDER BY at, attempt");
        let rows = sql.query().fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| {
                Ok(CallbackAttempt {
                    message_sid: text(r, "message_sid")?,
                    account_sid: text(r, "account_sid")?,
                    attempt: int(r, "attempt")?,
                    reported_status: opt_text(r, "reported_status")?,
                    url: text(r, "url")?,
                    method: text(r, "method")?,
                    response_code: opt_int(r, "response_code")?,
                    error: opt_text(r, "error")?,
                    latency: int(r, "latency")?,
                    outcome: text(r, "outcome")?,
                    at: int(r, "at")?,
                })
            })
            .collect()
    }

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

    /// Forgets status callback attempts made before `before`.
    pub async fn expire_callback_attempts(&self, before: i64) -> Result<u64> {
        let mut sql = Sql::new("DELETE FROM console_callback_attempts WHERE at < ");
        sql.int(before);
        Ok(self.write(sql.query()).await?.rows_affected())
    }

    /// Forgets sessions that ended before `now`.
    pub async fn expire_console_sessions(&self, now: i64) -> Result<u64> {
        let mut sql = Sql::new("DELETE FROM console_sessions WHERE expires_at <= ");
        sql.int(now);
        Ok(self.write(sql.query()).await?.rows_affected())
    }

    /// Final outcomes of `accounts` reached since `since` (hour-aligned), by account, status
    /// and error code (0: none).
    pub async fn outcomes_since(
        &self,
        accounts: &[String],
        since: i64,
    ) -> Result<Vec<(String, String, i64, i64)>> {
        let mut sql = Sql::new(
            "SELECT account_sid, status, error_code, CAST(SUM(count) AS BIGINT) AS n FROM console_outcomes WHERE account_sid IN ",
        );
        sql.text_set(accounts.iter().map(String::as_str))
            .push(" AND hour >= ")
            .int(since)
            .push(" GROUP BY account_sid, status, error_code");
        let rows = sql.query().fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| {
                Ok((
                    text(r, "account_sid")?,
                    text(r, "status")?,
                    int(r, "error_code")?,
                    int(r, "n")?,
                ))
            })
            .collect()
    }

    /// Final outcomes of `accounts` since `since` by hour, status and error code.
    pub async fn hourly_outcomes(
        &self,
        accounts: &[String],
        since: i64,
    ) -> Result<Vec<(i64, String, i64, i64)>> {
        let mut sql = Sql::new(
            "SELECT hour, status, error_code, CAST(SUM(count) AS BIGINT) AS n FROM console_outcomes WHERE account_sid IN ",
        );
        sql.text_set(accounts.iter().map(String::as_str))
            .push(" AND hour >= ")
            .int(since)
            .push(" GROUP BY hour, status, error_code");
        let rows = sql.query().fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| {
                Ok((
                    int(r, "hour")?,
                    text(r, "status")?,
                    int(r, "error_code")?,
                    int(r, "n")?,
                ))
            })
            .collect()
    }

    /// Delivered messages of `accounts` since `since` by latency bucket (see
    /// `LATENCY_BUCKETS`).
    pub async fn latency_histogram(
        &self,
        accounts: &[String],
        since: i64,
    ) -> Result<Vec<(i64, i64)>> {
        let mut sql = Sql::new(
            "SELECT latency_bucket, CAST(SUM(count) AS BIGINT) AS n FROM console_outcomes WHERE account_sid IN ",
        );
        sql.text_set(accounts.iter().map(String::as_str))
            .push(" AND hour >= ")
            .int(since)
            .push(" AND status = 'delivered' AND latency_bucket >= 0 GROUP BY latency_bucket");
        let rows = sql.query().fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| Ok((int(r, "latency_bucket")?, int(r, "n")?)))
            .collect()
    }

    /// One page of the message log, newest first, after the keyset position `after`
    /// (date_created, sid): no OFFSET, so a deep page costs what the first one does. To, From
    /// and the dates have indexes; status, error code and service do not, so a page filtered
    /// on them examines at most `LOG_SCAN_WINDOW` rows and may come back short, with where to
    /// go on from.
    pub async fn message_log(
        &self,
        account_sid: &str,
        filter: &LogFilter,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> Result<LogPage> {
        // " WHERE …" and the order: the rows narrowed by what the indexes serve.
        let indexed = |sql: &mut Sql| {
            sql.push(" WHERE account_sid = ").text(account_sid);
            if let Some(to) = &filter.to {
                sql.push(" AND to_address = ").text(to.clone());
            }
            if let Some(from) = &filter.from {
                sql.push(" AND from_address = ").text(from.clone());
            }
            if let Some(t) = filter.created_from {
                sql.push(" AND date_created >= ").int(t);
            }
            if let Some(t) = filter.created_until {
                sql.push(" AND date_created <= ").int(t);
            }
            if let Some((created, sid)) = &after {
                sql.push(" AND (date_created < ")
                    .int(*created)
                    .push(" OR (date_created = ")
                    .int(*created)
                    .push(" AND sid < ")
                    .text(sid.clone())
                    .push("))");
            }
            sql.push(" ORDER BY date_created DESC, sid DESC");
        };
        let unindexed =
            filter.status.is_some() || filter.error_code.is_some() || filter.service_sid.is_some();
        if !unindexed {
            let mut sql = Sql::new(&format!("SELECT {COLUMNS} FROM messages"));
            indexed(&mut sql);
            sql.push(" LIMIT ").int(limit + 1);
            let rows = sql.query().fetch_all(self.pool()).await?;
            let mut messages = rows.iter().map(decode).collect::<Result<Vec<_>>>()?;
            let more = messages.len() as i64 > limit;
            messages.truncate(limit as usize);
            let next = more.then(|| messages.last()).flatten().map(position);
            return Ok(LogPage {
                messages,
                next,
                window_ended: false,
            });
        }
        let mut sql = Sql::new(&format!(
            "SELECT {COLUMNS} FROM messages WHERE sid IN (SELECT sid FROM messages"
        ));
        indexed(&mut sql);
        sql.push(" LIMIT ").int(LOG_SCAN_WINDOW).push(")");
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
        sql.push(" ORDER BY date_created DESC, sid DESC LIMIT ")
            .int(limit + 1);
        let rows = sql.query().fetch_all(self.pool()).await?;
        let mut messages = rows.iter().map(decode).collect::<Result<Vec<_>>>()?;
        if messages.len() as i64 > limit {
            messages.truncate(limit as usize);
            let next = messages.last().map(position);
            return Ok(LogPage {
                messages,
                next,
                window_ended: false,
            });
        }
        // Short: either the rows ran out, or the window did (then go on after its last row).
        let mut count = Sql::new("SELECT COUNT(*) AS n FROM (SELECT sid FROM messages");
        indexed(&mut count);
        count.push(" LIMIT ").int(LOG_SCAN_WINDOW).push(") w");
        let mut end =
            Sql::new("SELECT date_created, sid FROM (SELECT date_created, sid FROM messages");
        indexed(&mut end);
        end.push(" LIMIT ")
            .int(LOG_SCAN_WINDOW)
            .push(") w ORDER BY date_created, sid LIMIT 1");
        let examined = int(&count.query().fetch_one(self.pool()).await?, "n")?;
        let next = if examined < LOG_SCAN_WINDOW {
            None
        } else {
            end.query()
                .fetch_optional(self.pool())
                .await?
                .map(|row| {
                    Ok::<_, crate::error::Error>((int(&row, "date_created")?, text(&row, "sid")?))
                })
                .transpose()?
        };
        Ok(LogPage {
            messages,
            window_ended: next.is_some(),
            next,
        })
    }
}
