//! Leases on claimed rows (messages, webhooks, bind slots): fencing tokens and lease ends,
//! on the database's clock on PostgreSQL so that nodes agree.

use super::queue::ROWS_PER_STATEMENT;
use super::{int, text, Backend, Sql, Tx};
use crate::error::Result;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

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

/// Leases held in this process's memory, for the webhook outbox on a SQLite file: one node,
/// so a claim need not be written to be exclusive (it was an update of every claimed row and
/// a commit per round). Each id is held under a claim's token until a time, as the database's
/// leases are: a claim skips what is held and takes over what ran out, a renewal extends what
/// its token still holds, and a settlement settles only that. A row whose settlement failed,
/// or whose task was lost, stays held until its lease ends, then is claimed again.
pub(crate) struct MemoryLeases {
    /// id → (claim token, lease end in microseconds).
    held: Mutex<HashMap<String, (i64, i64)>>,
    /// The file whose lock says this process sends the database's webhooks, and the lock
    /// once taken (`hold_process_lock`).
    lock_path: std::path::PathBuf,
    lock: Mutex<Option<std::fs::File>>,
}

impl MemoryLeases {
    /// Leases for the SQLite database at `database`.
    pub(crate) fn new(database: &std::path::Path) -> MemoryLeases {
        let mut lock_path = database.as_os_str().to_owned();
        lock_path.push("-webhooks.lock");
        MemoryLeases {
            held: Mutex::default(),
            lock_path: lock_path.into(),
            lock: Mutex::default(),
        }
    }

    /// Takes, until this process ends, the lock that makes it the one sender of the
    /// database's webhooks: leases in memory are exact only within one process, and two
    /// servers on one SQLite file would otherwise both send each callback. A second server
    /// on the file is refused with an error saying so.
    pub(crate) fn hold_process_lock(&self) -> std::io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut lock = self
            .lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if lock.is_some() {
            return Ok(());
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&self.lock_path)?;
        match file.try_lock() {
            Ok(()) => {
                *lock = Some(file);
                Ok(())
            }
            Err(std::fs::TryLockError::WouldBlock) => Err(std::io::Error::other(format!(
                "another warbler server is already running on this SQLite database ({} is locked): \
                 a SQLite database has one server; several servers share a PostgreSQL database",
                self.lock_path.display()
            ))),
            Err(std::fs::TryLockError::Error(err)) => Err(err),
        }
    }

    /// Whether this process holds the lock (`hold_process_lock`).
    pub(crate) fn holds_process_lock(&self) -> bool {
        self.lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .is_some()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (i64, i64)>> {
        // A panic while holding it left a map that is still whole (each change is one call).
        self.held
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How many ids are held at `now` (a claim looks that many rows further).
    pub(crate) fn held_count(&self, now: i64) -> usize {
        self.lock()
            .values()
            .filter(|(_, until)| *until >= now)
            .count()
    }

    /// Takes, in order, up to `limit` of `candidates` that nothing holds at `now`, under
    /// `token` until `until`; returns their positions and how many of them were taken over
    /// from a lease that ran out.
    pub(crate) fn claim<'c>(
        &self,
        candidates: impl IntoIterator<Item = &'c str>,
        token: i64,
        now: i64,
        until: i64,
        limit: usize,
    ) -> (Vec<usize>, usize) {
        let mut held = self.lock();
        let mut taken = Vec::new();
        let mut taken_over = 0;
        for (position, id) in candidates.into_iter().enumerate() {
            if taken.len() == limit {
                break;
            }
            match held.get(id) {
                Some((_, lease_end)) if *lease_end >= now => continue,
                Some(_) => taken_over += 1,
                None => {}
            }
            held.insert(id.to_string(), (token, until));
            taken.push(position);
        }
        // Ids whose rows went away while held (deleted with their message) end here.
        held.retain(|_, (_, lease_end)| *lease_end >= now);
        (taken, taken_over)
    }

    /// Extends to `until` the leases `token` still holds among `ids`; returns how many.
    pub(crate) fn renew(&self, ids: &[&str], token: i64, until: i64) -> u64 {
        let mut held = self.lock();
        let mut renewed = 0;
        for id in ids {
            if let Some((holder, lease_end)) = held.get_mut(*id) {
                if *holder == token {
                    *lease_end = until;
                    renewed += 1;
                }
            }
        }
        renewed
    }

    /// Which of `ids` `token` still holds.
    pub(crate) fn held_by(&self, ids: &[&str], token: i64) -> HashSet<String> {
        let held = self.lock();
        ids.iter()
            .filter(|id| held.get(**id).is_some_and(|(holder, _)| *holder == token))
            .map(|id| id.to_string())
            .collect()
    }

    /// Lets go of the leases `token` holds among `ids` (their rows were settled).
    pub(crate) fn release(&self, ids: &[&str], token: i64) {
        let mut held = self.lock();
        for id in ids {
            if held.get(*id).is_some_and(|(holder, _)| *holder == token) {
                held.remove(*id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::MemoryLeases;

    fn leases() -> MemoryLeases {
        MemoryLeases::new(std::path::Path::new("/nonexistent/warbler.db"))
    }

    #[test]
    fn memory_leases_hold_renew_lapse_and_fence_as_written_ones() {
        let leases = leases();
        // A claim takes what nothing holds, in order, up to its limit.
        let (taken, over) = leases.claim(["a", "b", "c"], 1, 100, 200, 2);
        assert_eq!((taken, over), (vec![0, 1], 0));
        assert_eq!(leases.held_count(100), 2);
        // Another claim skips what the first holds.
        let (taken, _) = leases.claim(["a", "b", "c"], 2, 150, 250, 10);
        assert_eq!(taken, vec![2]);
        // A renewal extends only what its token holds.
        assert_eq!(leases.renew(&["a", "c"], 1, 400), 1);
        // Past `b`'s end (200), a claim takes it over; `a` (renewed to 400) stays held.
        let (taken, over) = leases.claim(["a", "b"], 3, 300, 500, 10);
        assert_eq!((taken, over), (vec![1], 1));
        // Settlement is fenced: token 1 still holds `a`, no longer `b`.
        let held = leases.held_by(&["a", "b"], 1);
        assert_eq!(held.len(), 1);
        assert!(held.contains("a"));
        // Releasing with a token that lost `b` leaves it to the one that holds it.
        leases.release(&["a", "b"], 1);
        assert!(leases.held_by(&["b"], 3).contains("b"));
        let (taken, _) = leases.claim(["a", "b"], 4, 300, 600, 10);
        assert_eq!(taken, vec![0]);
    }

    #[test]
    fn one_process_lock_per_database() {
        let dir = std::env::temp_dir().join(format!(
            "warbler-leases-{}",
            crate::domain::sid::random_hex32()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let database = dir.join("warbler.db");
        let first = MemoryLeases::new(&database);
        let second = MemoryLeases::new(&database);
        first.hold_process_lock().unwrap();
        // Taking it again is a no-op for its holder.
        first.hold_process_lock().unwrap();
        let refused = second.hold_process_lock().unwrap_err();
        assert!(
            refused.to_string().contains("another warbler server"),
            "{refused}"
        );
        drop(first);
        second.hold_process_lock().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
