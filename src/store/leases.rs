//! Leases on claimed rows (messages, webhooks, bind slots): fencing tokens and lease ends,
//! on the database's clock on PostgreSQL so that nodes agree.

use super::queue::ROWS_PER_STATEMENT;
use super::{int, text, Backend, Sql, Tx};
use crate::error::Result;
use std::collections::HashSet;

/// A new fencing token for a claim: random, so nodes need not agree on a counter.
pub(crate) fn new_claim_token() -> i64 {
    rand::random::<i64>() & i64::MAX
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

/// Which of `ids` (values of `table`'s key column `key`) are still held under claim `token`
/// inside `tx`. On PostgreSQL they are read and locked until `tx` ends, in key order as every
/// writer of those rows locks them, so none waits in a cycle. On SQLite, whose write
/// transaction excludes every other writer, they are first counted: a count that finds them
/// all is one row back from the write connection instead of one per id, and only a claim that
/// lost some (its lease lapsed and a later round took them) reads which.
pub(crate) async fn held_claims(
    tx: &mut Tx<'_>,
    backend: Backend,
    table: &str,
    key: &str,
    ids: &[&str],
    token: i64,
) -> Result<HashSet<String>> {
    let mut held = HashSet::with_capacity(ids.len());
    for chunk in ids.chunks(ROWS_PER_STATEMENT) {
        if backend == Backend::Sqlite {
            let mut count = Sql::new(&format!(
                "SELECT COUNT(*) AS n FROM {table} WHERE claim_token = "
            ));
            count
                .int(token)
                .push(&format!(" AND {key} IN "))
                .text_set(chunk.iter().copied());
            let row = tx.fetch_one(count).await?;
            if usize::try_from(int(&row, "n")?) == Ok(chunk.len()) {
                held.extend(chunk.iter().map(|id| id.to_string()));
                continue;
            }
        }
        let mut sql = Sql::new(&format!("SELECT {key} FROM {table} WHERE claim_token = "));
        sql.int(token)
            .push(&format!(" AND {key} IN "))
            .text_set(chunk.iter().copied());
        if backend == Backend::Postgres {
            sql.push(&format!(" ORDER BY {key} FOR UPDATE"));
        }
        for row in tx.fetch_all(sql).await? {
            held.insert(text(&row, key)?);
        }
    }
    Ok(held)
}
