//! The engine's hot reads and write transactions on a SQLite file, run on the calling thread
//! through connections the store owns (rusqlite), instead of through sqlx.
//!
//! sqlx's SQLite driver gives each connection a thread of its own: a query is handed to it,
//! and every row comes back across threads on its own, is converted to a driver-neutral row,
//! and wakes the waiting task. For the dispatcher's and the webhook sender's reads (a batch
//! of messages, outbox rows, callback subjects and targets) that hand-over, not SQLite, was
//! most of the cost. Here the statement runs where it is asked for and its rows come back as
//! one `Vec`. A read on a WAL database never waits for the writer, so it blocks its thread
//! only for as long as SQLite works. PostgreSQL and in-memory SQLite keep sqlx (see
//! `Store::read_rows`).
//!
//! The engine's write transactions (the API's group commits, the dispatcher's claims and
//! outcomes, receipts, the webhook sender's claims and settlements) go the same way through
//! `NativeWriter`'s one connection, each statement a call on the thread that owns the
//! transaction instead of a round trip to sqlx's write connection and back. SQLite has one
//! writer at a time: whoever writes holds `NativeWriter::lock` for as long as it writes, a
//! native transaction as well as a write that still goes through sqlx's write connection, so
//! they take turns, as all writes did before. The lock is warbler's own, not sqlx's write
//! connection: sqlx tests a connection given back to its pool with a round trip to the
//! connection's thread before another caller may take it, and a lock taken by every engine
//! transaction must not cost that.

use super::sql::Sql;
use super::Row;
use crate::error::{Error, Result};
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Connections kept for reuse; a burst past it opens more, closed when given back.
const IDLE_CONNECTIONS: usize = 8;
/// Prepared statements kept per connection (the hot reads are a few dozen texts).
const STATEMENT_CACHE: usize = 128;

/// Read connections to one SQLite file.
pub(crate) struct NativeReads {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl NativeReads {
    pub(crate) fn new(path: PathBuf) -> NativeReads {
        NativeReads {
            path,
            idle: Mutex::new(Vec::new()),
        }
    }

    fn open(&self) -> Result<Connection> {
        // Read-write flags so a WAL database whose `-shm` must be set up still opens;
        // `query_only` keeps it from ever writing.
        open_file(&self.path, "PRAGMA query_only=1; PRAGMA temp_store=MEMORY")
    }

    /// Runs one reading statement and returns its rows.
    pub(crate) fn fetch(&self, sql: &Sql) -> Result<Vec<NativeRow>> {
        let taken = self.idle.lock().map(|mut idle| idle.pop()).unwrap_or(None);
        let connection = match taken {
            Some(connection) => connection,
            None => self.open()?,
        };
        let rows = fetch_on(&connection, sql);
        // A connection whose statement failed is still sound (SQLite resets the statement):
        // it goes back too.
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < IDLE_CONNECTIONS {
                idle.push(connection);
            }
        }
        rows
    }
}

/// A connection to the SQLite file at `path` with `pragmas` applied, its statements cached.
fn open_file(path: &std::path::Path, pragmas: &str) -> Result<Connection> {
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    connection.busy_timeout(Duration::from_secs(5))?;
    connection.execute_batch(pragmas)?;
    connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(connection)
}

/// Runs one statement and returns its rows.
pub(crate) fn fetch_on(connection: &Connection, sql: &Sql) -> Result<Vec<NativeRow>> {
    let mut statement = connection.prepare_cached(&sql.statement_text())?;
    sql.bind_native(&mut statement)?;
    let names: Arc<[String]> = statement
        .column_names()
        .into_iter()
        .map(str::to_string)
        .collect();
    let width = names.len();
    let mut out = Vec::new();
    let mut rows = statement.raw_query();
    while let Some(row) = rows.next()? {
        let mut values = Vec::with_capacity(width);
        for i in 0..width {
            values.push(row.get::<_, Value>(i)?);
        }
        out.push(NativeRow {
            names: names.clone(),
            values,
        });
    }
    Ok(out)
}

/// Runs one statement, rows it returns (`RETURNING`) dropped, and tells how many rows it
/// changed.
pub(crate) fn execute_on(connection: &Connection, sql: &Sql) -> Result<u64> {
    let mut statement = connection.prepare_cached(&sql.statement_text())?;
    sql.bind_native(&mut statement)?;
    let mut rows = statement.raw_query();
    while rows.next()?.is_some() {}
    drop(rows);
    Ok(connection.changes())
}

/// A turn at writing to the SQLite file (see the module's documentation). Ending it (dropping
/// it) records its wait and how long it was held, by holder (`telemetry::WRITE_LOCK_WAIT`,
/// `WRITE_LOCK_HELD`), once the lock is free again: the metrics never lengthen a turn.
pub(crate) struct WriteLock {
    turn: Option<tokio::sync::OwnedMutexGuard<()>>,
    holder: LockHolder,
    waited: std::time::Duration,
    taken_at: std::time::Instant,
}

impl Drop for WriteLock {
    fn drop(&mut self) {
        let held = self.taken_at.elapsed();
        drop(self.turn.take());
        self.holder.record(self.waited, held);
    }
}

/// Who takes the write lock, as a metric label: the thread's role. Every writer of the file
/// waits for the one lock, so its waits and turns by holder show which stage the others wait
/// behind. `Smpp` is the SMPP sessions' thread (stored receipts and inbound messages);
/// `Other` the API's runtime (requests' own writes) and anything else.
#[derive(Debug, Clone, Copy)]
enum LockHolder {
    Messages,
    Dispatcher,
    Webhooks,
    Smpp,
    Other,
}

impl LockHolder {
    fn of_this_thread() -> LockHolder {
        match std::thread::current().name() {
            Some("message-writer") => LockHolder::Messages,
            Some("dispatcher") => LockHolder::Dispatcher,
            Some("webhooks") => LockHolder::Webhooks,
            Some("smpp") => LockHolder::Smpp,
            _ => LockHolder::Other,
        }
    }

    /// Constant labels, so that recording builds no key.
    fn record(self, waited: std::time::Duration, held: std::time::Duration) {
        use crate::telemetry::{WRITE_LOCK_HELD, WRITE_LOCK_WAIT};
        let (wait, turn) = match self {
            LockHolder::Messages => (
                metrics::histogram!(WRITE_LOCK_WAIT, "holder" => "messages"),
                metrics::histogram!(WRITE_LOCK_HELD, "holder" => "messages"),
            ),
            LockHolder::Dispatcher => (
                metrics::histogram!(WRITE_LOCK_WAIT, "holder" => "dispatcher"),
                metrics::histogram!(WRITE_LOCK_HELD, "holder" => "dispatcher"),
            ),
            LockHolder::Webhooks => (
                metrics::histogram!(WRITE_LOCK_WAIT, "holder" => "webhooks"),
                metrics::histogram!(WRITE_LOCK_HELD, "holder" => "webhooks"),
            ),
            LockHolder::Smpp => (
                metrics::histogram!(WRITE_LOCK_WAIT, "holder" => "smpp"),
                metrics::histogram!(WRITE_LOCK_HELD, "holder" => "smpp"),
            ),
            LockHolder::Other => (
                metrics::histogram!(WRITE_LOCK_WAIT, "holder" => "other"),
                metrics::histogram!(WRITE_LOCK_HELD, "holder" => "other"),
            ),
        };
        wait.record(waited.as_secs_f64());
        turn.record(held.as_secs_f64());
    }
}

/// The native twin of sqlx's write connection to a SQLite file: one connection, used only by
/// the holder of the write lock (`lock`), so never by two callers at once.
pub(crate) struct NativeWriter {
    path: PathBuf,
    idle: Mutex<Option<Connection>>,
    /// The file's write lock (see `lock`): first come, first served.
    turn: Arc<tokio::sync::Mutex<()>>,
    /// The fault-injection cap on the file's pages (`Store::fault_max_pages`), applied again to
    /// a connection opened after one was dropped.
    max_pages: Mutex<Option<u64>>,
}

impl NativeWriter {
    pub(crate) fn new(path: PathBuf) -> NativeWriter {
        NativeWriter {
            path,
            idle: Mutex::new(None),
            turn: Arc::new(tokio::sync::Mutex::new(())),
            max_pages: Mutex::new(None),
        }
    }

    /// Waits for this process's turn to write to the file. Every writer takes it: native
    /// transactions, and what goes through sqlx's write connection (`Store::begin_write`,
    /// `Store::write`, checkpoints there).
    pub(crate) async fn lock(&self) -> WriteLock {
        let holder = LockHolder::of_this_thread();
        let asked_at = std::time::Instant::now();
        let turn = self.turn.clone().lock_owned().await;
        let taken_at = std::time::Instant::now();
        WriteLock {
            turn: Some(turn),
            holder,
            waited: taken_at.duration_since(asked_at),
            taken_at,
        }
    }

    /// The settings of sqlx's write connection (`tune_sqlite_writer`, and sqlx's own foreign
    /// keys): commits that `WalSync` makes durable, no checkpoints inside commits, a page
    /// cache that holds the indexes written to.
    fn open(&self) -> Result<Connection> {
        let connection = open_file(
            &self.path,
            "PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY; PRAGMA wal_autocheckpoint=0; \
             PRAGMA synchronous=NORMAL; PRAGMA cache_size=-16384",
        )?;
        if let Some(pages) = self.max_pages.lock().ok().and_then(|cap| *cap) {
            connection.execute_batch(&format!("PRAGMA max_page_count = {pages}"))?;
        }
        Ok(connection)
    }

    /// The connection, taken until `give_back`.
    fn take(&self) -> Result<Connection> {
        let idle = self.idle.lock().map(|mut idle| idle.take()).unwrap_or(None);
        match idle {
            Some(connection) => Ok(connection),
            None => self.open(),
        }
    }

    fn give_back(&self, connection: Connection) {
        if let Ok(mut idle) = self.idle.lock() {
            *idle = Some(connection);
        }
    }

    /// Runs one statement outside a transaction (it commits by itself) and returns its rows.
    /// The caller holds the write lock (`lock`).
    pub(crate) fn fetch(&self, sql: &Sql) -> Result<Vec<Row>> {
        let connection = self.take()?;
        let rows = fetch_on(&connection, sql);
        self.give_back(connection);
        Ok(rows?.into_iter().map(Row::Native).collect())
    }

    /// `fetch` for a statement whose rows are not wanted: how many rows it changed.
    pub(crate) fn execute(&self, sql: &Sql) -> Result<u64> {
        let connection = self.take()?;
        let changed = execute_on(&connection, sql);
        self.give_back(connection);
        changed
    }

    /// Caps the file's pages (`None`: lifts the cap), on this connection as on sqlx's.
    pub(crate) fn set_max_pages(&self, pages: Option<u64>) -> Result<()> {
        if let Ok(mut cap) = self.max_pages.lock() {
            *cap = pages;
        }
        let connection = self.take()?;
        let limit = pages.unwrap_or(u64::from(u32::MAX) - 1);
        let set = connection.execute_batch(&format!("PRAGMA max_page_count = {limit}"));
        self.give_back(connection);
        Ok(set?)
    }
}

/// A write transaction on `NativeWriter`'s connection. Dropped without `commit`, it rolls
/// back; a connection that cannot roll back is closed instead of reused.
pub(crate) struct NativeTx {
    connection: Option<Connection>,
    writer: Arc<NativeWriter>,
    /// The write lock; `None` when the caller holds it (a `WriteSession`). Released after the
    /// connection is given back (fields drop after `Drop::drop`).
    _lock: Option<WriteLock>,
    /// The connection's count of changed rows when the transaction began.
    changes_at_begin: u64,
}

impl NativeTx {
    /// Begins a transaction that takes SQLite's write lock at once, as `BEGIN IMMEDIATE` does
    /// through sqlx.
    pub(crate) fn begin(writer: Arc<NativeWriter>, lock: Option<WriteLock>) -> Result<NativeTx> {
        let connection = writer.take()?;
        let changes_at_begin = connection.total_changes();
        let mut tx = NativeTx {
            connection: Some(connection),
            writer,
            _lock: lock,
            changes_at_begin,
        };
        tx.connection()?.execute_batch("BEGIN IMMEDIATE")?;
        Ok(tx)
    }

    pub(crate) fn connection(&mut self) -> Result<&mut Connection> {
        self.connection
            .as_mut()
            .ok_or_else(|| Error::internal("the native transaction has ended"))
    }

    /// Commits (visible to readers; durable once `WalSync` has synced, as for sqlx's write
    /// connection). A failed commit is rolled back on drop. Returns whether the transaction
    /// changed any row (only those need the sync; the native writer runs no schema changes).
    pub(crate) fn commit(mut self) -> Result<bool> {
        let changes_at_begin = self.changes_at_begin;
        let connection = self.connection()?;
        let changed = connection.total_changes() != changes_at_begin;
        connection.execute_batch("COMMIT")?;
        Ok(changed)
    }
}

impl Drop for NativeTx {
    fn drop(&mut self) {
        let Some(connection) = self.connection.take() else {
            return;
        };
        if !connection.is_autocommit() {
            let rolled_back = connection.execute_batch("ROLLBACK");
            if !connection.is_autocommit() {
                tracing::error!(
                    ?rolled_back,
                    "closing a native write connection that could not roll back"
                );
                return;
            }
        }
        self.writer.give_back(connection);
    }
}

/// One row of a native read: its values by position, and the statement's column names.
#[derive(Debug, Clone)]
pub struct NativeRow {
    names: Arc<[String]>,
    values: Vec<Value>,
}

impl NativeRow {
    fn value(&self, column: &str) -> Result<&Value> {
        self.names
            .iter()
            .position(|name| name == column)
            .map(|i| &self.values[i])
            .ok_or_else(|| Error::internal(format!("no column {column} in the row")))
    }

    pub(crate) fn opt_text(&self, column: &str) -> Result<Option<String>> {
        match self.value(column)? {
            Value::Null => Ok(None),
            Value::Text(text) => Ok(Some(text.clone())),
            other => Err(mismatch(column, "text", other)),
        }
    }

    pub(crate) fn opt_int(&self, column: &str) -> Result<Option<i64>> {
        match self.value(column)? {
            Value::Null => Ok(None),
            Value::Integer(int) => Ok(Some(*int)),
            other => Err(mismatch(column, "an integer", other)),
        }
    }

    /// A number as a float: SQLite keeps a whole number in a REAL column as an integer.
    pub(crate) fn opt_float(&self, column: &str) -> Result<Option<f64>> {
        match self.value(column)? {
            Value::Null => Ok(None),
            Value::Real(real) => Ok(Some(*real)),
            Value::Integer(int) => Ok(Some(*int as f64)),
            other => Err(mismatch(column, "a number", other)),
        }
    }
}

fn mismatch(column: &str, wanted: &str, found: &Value) -> Error {
    Error::internal(format!(
        "column {column} holds {:?}, not {wanted}",
        found.data_type()
    ))
}

#[cfg(test)]
mod tests {
    use super::super::{opt_int, opt_text, Row, Sql, Store};
    use std::time::Duration;

    async fn file_store(name: &str) -> (Store, std::path::PathBuf) {
        let path = std::env::temp_dir().join(format!(
            "warbler-native-{name}-{}.db",
            crate::domain::sid::random_hex32()
        ));
        let store = Store::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        (store, path)
    }

    fn remove(path: &std::path::Path) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }

    /// How many times a cached statement was prepared again over three runs, each with other
    /// values bound.
    fn reprepares(sqls: &[Sql]) -> i32 {
        let connection = rusqlite::Connection::open_in_memory().unwrap();
        connection
            .execute_batch(
                "CREATE TABLE t (due_at INTEGER); CREATE INDEX t_due ON t (due_at); \
                 INSERT INTO t VALUES (1), (2), (3), (4)",
            )
            .unwrap();
        for sql in sqls {
            assert_eq!(super::fetch_on(&connection, sql).unwrap().len(), 2);
        }
        let statement = connection
            .prepare_cached(&sqls[0].statement_text())
            .unwrap();
        statement.get_status(rusqlite::StatementStatus::RePrepare)
    }

    /// SQLite plans a bound `LIMIT` with its value, so binding another one throws the plan
    /// away: the engine's claims were prepared twice per round. A limit written into the text
    /// (`Sql::limit`) keeps the statement.
    #[test]
    fn a_limit_in_the_text_keeps_its_prepared_statement_where_a_bound_one_does_not() {
        let bound: Vec<Sql> = (0..3)
            .map(|round| {
                let mut sql = Sql::new("SELECT due_at FROM t WHERE due_at <= ");
                sql.int(4 + round).push(" ORDER BY due_at LIMIT ").int(2);
                sql
            })
            .collect();
        assert!(reprepares(&bound) > 0, "the hazard this guards against");
        let written: Vec<Sql> = (0..3)
            .map(|round| {
                let mut sql = Sql::new("SELECT due_at FROM t WHERE due_at <= ");
                sql.int(4 + round).push(" ORDER BY due_at").limit(2);
                sql
            })
            .collect();
        assert_eq!(reprepares(&written), 0);
    }

    /// The same statement read natively and through sqlx gives the same values, NULLs and
    /// all, and a native read sees what the write connection committed just before.
    #[tokio::test]
    async fn a_native_read_gives_what_sqlx_gives() {
        let (store, path) = file_store("parity").await;
        assert!(store.native.is_some(), "a SQLite file reads natively");
        for (address, next) in [("+14155550100", 5_i64), ("+14155550101", -7), ("é\"x", 0)] {
            store
                .write(
                    sqlx::query(
                        "INSERT INTO sender_pacing (address, next_free_at) VALUES ($1, $2)",
                    )
                    .bind(address)
                    .bind(next),
                )
                .await
                .unwrap();
        }
        let statement = || {
            let mut sql = Sql::new(
                "SELECT address, next_free_at, CAST(NULL AS TEXT) AS absent, \
                 CAST(NULL AS BIGINT) AS no_number FROM sender_pacing WHERE address IN ",
            );
            sql.text_set(["+14155550101", "é\"x", "+1999"])
                .push(" AND next_free_at <= ")
                .int(0)
                .push(" ORDER BY address");
            sql
        };
        let native = store.read_rows(statement()).await.unwrap();
        assert!(native.iter().all(|row| matches!(row, Row::Native(_))));
        let through_sqlx = statement().query().fetch_all(store.pool()).await.unwrap();
        assert_eq!(native.len(), 2);
        assert_eq!(native.len(), through_sqlx.len());
        for (a, b) in native.iter().zip(&through_sqlx) {
            for column in ["address", "absent"] {
                assert_eq!(opt_text(a, column).unwrap(), opt_text(b, column).unwrap());
            }
            for column in ["next_free_at", "no_number"] {
                assert_eq!(opt_int(a, column).unwrap(), opt_int(b, column).unwrap());
            }
        }
        assert_eq!(
            opt_text(&native[1], "address").unwrap().as_deref(),
            Some("é\"x")
        );
        assert_eq!(opt_int(&native[0], "next_free_at").unwrap(), Some(-7));
        remove(&path);
    }

    /// A column read as the wrong type, a column the statement lacks and a statement SQLite
    /// refuses are errors, never panics.
    #[tokio::test]
    async fn bad_reads_are_errors() {
        let (store, path) = file_store("errors").await;
        let rows = store
            .read_rows(Sql::new("SELECT 'text' AS t, 3 AS n, 1.5 AS r"))
            .await
            .unwrap();
        let row = &rows[0];
        assert!(opt_int(row, "t").is_err());
        assert!(opt_text(row, "n").is_err());
        assert!(opt_int(row, "r").is_err());
        assert!(opt_text(row, "missing").is_err());
        assert_eq!(opt_int(row, "n").unwrap(), Some(3));
        let refused = store.read_rows(Sql::new("SELEC nothing")).await;
        assert!(refused.is_err());
        // The connection that ran the refused statement is reused and still works.
        let again = store.read_rows(Sql::new("SELECT 1 AS one")).await.unwrap();
        assert_eq!(opt_int(&again[0], "one").unwrap(), Some(1));
        // Native connections never write.
        let write = store
            .read_rows(Sql::new(
                "INSERT INTO sender_pacing (address, next_free_at) VALUES ('x', 1) RETURNING address",
            ))
            .await;
        assert!(write.is_err(), "a native read wrote");
        remove(&path);
    }

    fn insert_pacing(address: &str, next: i64) -> Sql {
        let mut sql = Sql::new("INSERT INTO sender_pacing (address, next_free_at) VALUES (");
        sql.text(address).push(", ").int(next).push(")");
        sql
    }

    async fn pacing_count(store: &Store) -> i64 {
        let rows = store
            .read_rows(Sql::new("SELECT COUNT(*) AS n FROM sender_pacing"))
            .await
            .unwrap();
        opt_int(&rows[0], "n").unwrap().unwrap()
    }

    /// A native write transaction commits what it wrote, and one dropped or failed half-way
    /// leaves nothing behind; its connection is reused afterwards.
    #[tokio::test]
    async fn a_native_transaction_commits_all_or_nothing() {
        let (store, path) = file_store("native-tx").await;
        assert!(
            store.native_writer.is_some(),
            "a SQLite file writes natively"
        );
        let mut tx = store.begin_write_native().await.unwrap();
        tx.execute(insert_pacing("+1", 1)).await.unwrap();
        let returned = tx
            .fetch_all({
                let mut sql =
                    Sql::new("UPDATE sender_pacing SET next_free_at = 2 WHERE address = ");
                sql.text("+1").push(" RETURNING next_free_at");
                sql
            })
            .await
            .unwrap();
        assert_eq!(opt_int(&returned[0], "next_free_at").unwrap(), Some(2));
        // Not visible to readers before the commit.
        assert_eq!(pacing_count(&store).await, 0);
        tx.commit().await.unwrap();
        assert_eq!(pacing_count(&store).await, 1);

        let mut dropped = store.begin_write_native().await.unwrap();
        dropped.execute(insert_pacing("+2", 1)).await.unwrap();
        drop(dropped);
        assert_eq!(
            pacing_count(&store).await,
            1,
            "a dropped transaction rolled back"
        );

        let mut failed = store.begin_write_native().await.unwrap();
        failed.execute(insert_pacing("+3", 1)).await.unwrap();
        let duplicate = failed.execute(insert_pacing("+1", 9)).await;
        assert!(duplicate.is_err(), "a duplicate key is an error");
        drop(failed);
        assert_eq!(
            pacing_count(&store).await,
            1,
            "a failed transaction rolled back"
        );

        // sqlx statements have no place in a native transaction: an error, not a panic.
        let mut tx = store.begin_write_native().await.unwrap();
        assert!(tx.conn().is_err());
        tx.execute(insert_pacing("+4", 1)).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(pacing_count(&store).await, 2);
        remove(&path);
    }

    /// Every writer of a SQLite file takes the one write lock: a native transaction waits,
    /// seen as waiting, behind a write session (which holds the lock between its transactions,
    /// when SQLite itself holds nothing), and a sqlx write transaction waits behind it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writers_of_every_kind_wait_their_turn_at_the_write_lock() {
        let (store, path) = file_store("lock").await;
        let session = store.write_session().await.unwrap();
        let (began, mut native_began) = tokio::sync::oneshot::channel();
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let native = tokio::spawn({
            let store = store.clone();
            async move {
                let mut tx = store.begin_write_native().await.unwrap();
                let _ = began.send(());
                tx.execute(insert_pacing("+1", 1)).await.unwrap();
                let _ = released.await;
                tx.commit().await.unwrap();
            }
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !session.others_wait() {
            assert!(std::time::Instant::now() < deadline, "never seen waiting");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(native_began.try_recv().is_err(), "began beside the session");
        drop(session);
        tokio::time::timeout(Duration::from_secs(5), native_began)
            .await
            .expect("the native transaction began once the session ended")
            .unwrap();
        let sqlx_write = tokio::spawn({
            let store = store.clone();
            async move {
                let mut tx = store.begin_write().await.unwrap();
                tx.execute(insert_pacing("+2", 2)).await.unwrap();
                tx.commit().await.unwrap();
            }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            !sqlx_write.is_finished(),
            "wrote beside the native transaction"
        );
        release.send(()).unwrap();
        for task in [native, sqlx_write] {
            tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .expect("both writers finished in turn")
                .unwrap();
        }
        assert_eq!(pacing_count(&store).await, 2);
        remove(&path);
    }

    /// Native transactions and sqlx's write transactions take turns on the one write lock:
    /// increments from both, interleaved across tasks, are all counted, none lost to a race
    /// or refused as "database is locked".
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn native_and_sqlx_writes_take_turns() {
        let (store, path) = file_store("turns").await;
        store
            .write(sqlx::query(
                "INSERT INTO sender_pacing (address, next_free_at) VALUES ('counter', 0)",
            ))
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for task in 0..8 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..25 {
                    let mut tx = if task % 2 == 0 {
                        store.begin_write_native().await.unwrap()
                    } else {
                        store.begin_write().await.unwrap()
                    };
                    // Read, then write what was read plus one: lost updates would show.
                    let row = tx
                        .fetch_one(Sql::new(
                            "SELECT next_free_at FROM sender_pacing WHERE address = 'counter'",
                        ))
                        .await
                        .unwrap();
                    let next = opt_int(&row, "next_free_at").unwrap().unwrap() + 1;
                    tokio::task::yield_now().await;
                    let mut sql = Sql::new("UPDATE sender_pacing SET next_free_at = ");
                    sql.int(next).push(" WHERE address = 'counter'");
                    tx.execute(sql).await.unwrap();
                    tx.commit().await.unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let rows = store
            .read_rows(Sql::new(
                "SELECT next_free_at FROM sender_pacing WHERE address = 'counter'",
            ))
            .await
            .unwrap();
        assert_eq!(opt_int(&rows[0], "next_free_at").unwrap(), Some(200));
        remove(&path);
    }

    /// The disk-full fault reaches the native connection too: a native write past the cap is
    /// refused as unavailable (503), and lifting the cap lets it through.
    #[tokio::test]
    async fn a_full_disk_refuses_native_writes() {
        let (store, path) = file_store("full").await;
        store.fault_max_pages(Some(1)).await.unwrap();
        let mut tx = store.begin_write_native().await.unwrap();
        let mut refused = Ok(0);
        for i in 0..2000 {
            refused = tx.execute(insert_pacing(&format!("+{i:0>60}"), i)).await;
            if refused.is_err() {
                break;
            }
        }
        let err = refused.expect_err("the cap was reached");
        assert_eq!(err.http_status(), 503, "{err:?}");
        drop(tx);
        store.fault_max_pages(None).await.unwrap();
        let mut tx = store.begin_write_native().await.unwrap();
        for i in 0..2000 {
            tx.execute(insert_pacing(&format!("+{i:0>60}"), i))
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
        assert_eq!(pacing_count(&store).await, 2000);
        remove(&path);
    }
}
