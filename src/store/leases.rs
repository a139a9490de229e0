//! Leases on claimed rows (messages, webhooks, bind slots): fencing tokens and lease ends,
//! on the database's clock on PostgreSQL so that nodes agree.

use super::Sql;

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
