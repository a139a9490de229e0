//! Persistence: one `Store` over SQLite or PostgreSQL, chosen by the database URL's scheme.
//! Both run the same portable SQL through sqlx's `Any` driver; the few dialect differences
//! (how a write transaction starts, row locks) are decided by `Backend`. On a SQLite file the
//! engine's hot reads run the same statements through rusqlite instead (`native`,
//! `Store::read_rows`).
//! Imports `domain` and `error`; knows nothing of HTTP. The table modules (`messages`,
//! `carrier`, `inbound`, `webhooks`…) share `rows` (row types), `outbox` (writes into the
//! webhook outbox and alerts), `queue` (writes of new messages) and `leases`, and never import
//! each other in a circle.

pub mod a2p;
pub mod accounts;
pub mod alarms;
pub mod caps;
pub mod carrier;
pub mod console;
pub mod content;
pub mod database_url;
mod durability;
pub mod inbound;
pub mod keys;
pub(crate) mod leases;
pub mod messages;
pub mod messaging;
mod native;
pub mod nodes;
pub mod numbers;
pub(crate) mod outbox;
pub mod queue;
pub mod rows;
mod sql;
pub mod test_credentials;
pub mod triggers;
pub mod usage;
mod walbuf;
pub mod webhooks;

pub use durability::{Durability, Durable, Tx};
pub use sql::{Kind, Rows, Sql};

use crate::error::{Error, Result};
use durability::WalSync;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row as _};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn from_url(url: &str) -> Result<Backend> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(Error::internal(format!(
                "unsupported database URL (expected sqlite:// or postgres://): {}",
                database_url::redact(url)
            )))
        }
    }
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The database handle every service uses.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    /// Where writes go. On SQLite, one connection of its own: SQLite has one writer at a
    /// time anyway, and a connection that only sees its own writes keeps its page cache (a
    /// connection drops its whole cache whenever another one wrote), so its inserts do not
    /// re-read every index page from the OS. On PostgreSQL, the same pool.
    writes: AnyPool,
    /// On a SQLite file, what makes commits durable (see `durability`); elsewhere the
    /// commit itself does.
    sync: Option<WalSync>,
    backend: Backend,
    /// On a SQLite file, the engine's hot reads (see `native`); elsewhere they go through
    /// `pool`.
    native: Option<Arc<native::NativeReads>>,
    /// On a SQLite file, the engine's write transactions (see `native`); elsewhere they go
    /// through `writes`.
    native_writer: Option<Arc<native::NativeWriter>>,
    /// Callers waiting for a write connection (see `WriteSession::others_wait`).
    writers_waiting: Arc<AtomicUsize>,
    /// On a SQLite file, the webhook outbox's claims (see `leases::MemoryLeases`); elsewhere
    /// they are written into its rows.
    webhook_leases: Option<Arc<leases::MemoryLeases>>,
}

/// A turn at writing held across several transactions: on a SQLite file the write lock (see
/// `native`), elsewhere a write connection. The API's group-commit writer keeps one while
/// groups keep coming, and gives it back as soon as anyone else wants to write. (Taking a
/// connection from sqlx's pool and giving it back cost more than a small transaction: the
/// pool tests a connection it gets back with a round trip to the database.)
pub struct WriteSession {
    /// `None` once the connection is known to be unusable (see `insert_new_messages`), and
    /// on a SQLite file, whose transactions here are native.
    connection: Option<sqlx::pool::PoolConnection<sqlx::Any>>,
    /// On a SQLite file, the write lock.
    _lock: Option<native::WriteLock>,
    store: Store,
}

impl WriteSession {
    fn connection(&mut self) -> Result<&mut sqlx::AnyConnection> {
        match &mut self.connection {
            Some(connection) => Ok(&mut **connection),
            None => Err(Error::internal(
                "the write connection was closed after an error",
            )),
        }
    }

    /// `Store::insert_new_messages_deferred` on this session's connection. On SQLite the
    /// transaction's `BEGIN` and `COMMIT` travel with its first and last statements
    /// (`Framing::BeginAndCommit`); if anything fails it is rolled back here, and if even that
    /// fails the connection is closed rather than given back with a transaction open.
    pub async fn insert_new_messages(
        &mut self,
        batch: &[(
            crate::domain::message::Message,
            Vec<crate::domain::message::Media>,
        )],
        estimates: &[crate::domain::usage::Money],
        terms: &[queue::Terms],
        due_now: i64,
        claim: Option<queue::BirthClaim>,
    ) -> Result<(Vec<rows::Admission>, Durable)> {
        if self.store.backend == Backend::Postgres || self.store.native_writer.is_some() {
            let mut tx = self.begin().await?;
            let admissions = queue::insert_new_messages_in(
                &mut tx.exec()?,
                queue::Framing::InTransaction,
                batch,
                estimates,
                terms,
                due_now,
                claim,
            )
            .await?;
            return Ok((admissions, tx.commit_deferred().await?));
        }
        let connection = self.connection()?;
        let written = queue::insert_new_messages_in(
            &mut durability::Exec::Sqlx(&mut *connection),
            queue::Framing::BeginAndCommit,
            batch,
            estimates,
            terms,
            due_now,
            claim,
        )
        .await;
        match written {
            Ok(admissions) => {
                let durable = match &self.store.sync {
                    Some(sync) => sync.request(),
                    None => Durable::now(),
                };
                Ok((admissions, durable))
            }
            Err(err) => {
                // No transaction may be open (BEGIN or COMMIT may be what failed): then
                // SQLite refuses the ROLLBACK, which is harmless.
                let rolled_back = sqlx::query("ROLLBACK").execute(&mut *connection).await;
                if let Err(rollback) = rolled_back {
                    if !rollback.to_string().contains("no transaction is active") {
                        tracing::error!(%rollback, "closing a write connection that could not roll back");
                        if let Some(connection) = self.connection.take() {
                            drop(connection.detach());
                        }
                    }
                }
                Err(err)
            }
        }
    }

    /// A write transaction on this session's connection, as `Store::begin_write_native`
    /// starts one: on a SQLite file it runs natively (the session holds the write lock).
    pub async fn begin(&mut self) -> Result<Tx<'_>> {
        let sqlite = self.store.backend == Backend::Sqlite;
        let sync = self.store.sync.clone();
        if let Some(writer) = self.store.native_writer.clone() {
            // The session holds the write lock the native transaction needs.
            return Ok(Tx::native(native::NativeTx::begin(writer, None)?, sync));
        }
        let connection = self.connection()?;
        let tx = if sqlite {
            sqlx::Connection::begin_with(connection, "BEGIN IMMEDIATE").await?
        } else {
            sqlx::Connection::begin(connection).await?
        };
        Ok(Tx::new(tx, sync, None))
    }

    /// Whether another caller waits for a turn at writing: then this session should end.
    pub fn others_wait(&self) -> bool {
        self.store.writers_waiting.load(Ordering::SeqCst) > 0
    }
}

/// The advisory lock key of start-up work ("warbler" in ASCII).
const STARTUP_LOCK_KEY: i64 = 0x0077_6172_626c_6572;

/// Held while a node does its start-up work (see `Store::startup_lock`).
pub struct StartupLock(Option<sqlx::pool::PoolConnection<sqlx::Any>>);

impl StartupLock {
    pub async fn release(mut self) -> Result<()> {
        if let Some(mut connection) = self.0.take() {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT pg_advisory_unlock({STARTUP_LOCK_KEY})"
            )))
            .execute(&mut *connection)
            .await?;
        }
        Ok(())
    }
}

impl Drop for StartupLock {
    /// Not released (start-up failed half-way): the connection is closed rather than given
    /// back to the pool still holding the lock, which ends the lock with the session.
    fn drop(&mut self) {
        if let Some(connection) = self.0.take() {
            drop(connection.detach());
        }
    }
}

/// Counts a caller as waiting for a write connection until dropped.
struct WaitingWriter<'a>(&'a AtomicUsize);

impl<'a> WaitingWriter<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        WaitingWriter(count)
    }
}

impl Drop for WaitingWriter<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The fill factor of `messages` on PostgreSQL: its pages are filled half full by inserts, so
/// that the versions a message's status updates write (sent, then its receipt) find room on
/// its own page. The receipt's update changes no indexed column, and with room on the page it
/// is a heap-only update: no new entry in any of the table's indexes (measured: 20,000 of
/// 22,000 receipts' updates, against 2,500 with full pages; 12 % less WAL). Set once (an
/// `ALTER TABLE` waits for other holders of its lock, autovacuum among them).
pub(crate) const MESSAGES_FILLFACTOR: i64 = 50;

async fn leave_room_for_updates(pool: &sqlx::AnyPool) -> Result<()> {
    let wanted = format!("fillfactor={MESSAGES_FILLFACTOR}");
    let row = sqlx::query(
        "SELECT COALESCE(array_to_string(reloptions, ','), '') AS options \
         FROM pg_class WHERE oid = 'messages'::regclass",
    )
    .fetch_one(pool)
    .await?;
    if text(&row, "options")?.split(',').any(|o| o == wanted) {
        return Ok(());
    }
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ALTER TABLE messages SET ({wanted})"
    )))
    .execute(pool)
    .await?;
    Ok(())
}

impl Store {
    /// Connects, creating a SQLite file (and its folder) when missing, and runs migrations.
    /// Opens the database and runs its migrations. Errors never show a password of `url`:
    /// sqlx's messages may quote the URL, and they end up printed at start-up.
    pub async fn connect(url: &str) -> anyhow::Result<Store> {
        Self::connect_with(url, Durability::Synced).await
    }

    /// `connect`, with writes done when `durability` says.
    pub async fn connect_with(url: &str, durability: Durability) -> anyhow::Result<Store> {
        Self::open(url, durability)
            .await
            .map_err(|err| anyhow::anyhow!(database_url::scrub(&format!("{err:#}"), url)))
    }

    async fn open(url: &str, durability: Durability) -> anyhow::Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url).map_err(|_| {
            anyhow::anyhow!("unsupported database URL (expected sqlite:// or postgres://)")
        })?;
        sql::note_backend(backend);
        let mut url = url.to_string();
        let mut max_connections = 16;
        if backend == Backend::Sqlite {
            if url.contains(":memory:") || url.contains("mode=memory") {
                // Each connection to an in-memory database would see its own empty database.
                max_connections = 1;
            } else {
                // Before the first connection: every SQLite connection of the process uses it.
                walbuf::register();
                create_sqlite_parent_dir(&url)?;
                if !url.contains("mode=") {
                    url.push_str(if url.contains('?') {
                        "&mode=rwc"
                    } else {
                        "?mode=rwc"
                    });
                }
            }
        }
        let pool = AnyPoolOptions::new()
            .after_connect(move |conn, _meta| Box::pin(tune_connection(conn, backend, durability)))
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(30))
            .connect(&url)
            .await
            .map_err(|err| match err {
                // sqlx retries a refused connection (a server still starting) until then.
                sqlx::Error::PoolTimedOut => anyhow::anyhow!(
                    "no connection within 30 s: the database server refused or did not answer"
                ),
                err => err.into(),
            })?;
        if backend == Backend::Sqlite && max_connections > 1 {
            // WAL lets readers proceed while one writer commits; the setting persists in the file.
            sqlx::query("PRAGMA journal_mode=WAL")
                .execute(&pool)
                .await?;
        }
        if backend == Backend::Sqlite && max_connections > 1 {
            // A file this user cannot change the mode of (another owner) still opens.
            if let Err(err) = restrict_sqlite_files(&url) {
                tracing::warn!(%err, "could not make the database files private (0600)");
            }
        }
        MIGRATOR.run(&pool).await?;
        if backend == Backend::Postgres {
            leave_room_for_updates(&pool).await?;
        }
        let sync = if backend == Backend::Sqlite && max_connections > 1 {
            Some(WalSync::start(sqlite_path(&url).into(), durability)?)
        } else {
            None
        };
        let writes = if backend == Backend::Sqlite && max_connections > 1 {
            AnyPoolOptions::new()
                .after_connect(move |conn, _meta| Box::pin(tune_sqlite_writer(conn)))
                .max_connections(1)
                .min_connections(1)
                // A ping before each use would cost a round trip per transaction; a broken
                // connection fails its statement and is replaced anyway.
                .test_before_acquire(false)
                .idle_timeout(None)
                .max_lifetime(None)
                .acquire_timeout(Duration::from_secs(30))
                .connect(&url)
                .await?
        } else {
            pool.clone()
        };
        let native = if backend == Backend::Sqlite && max_connections > 1 {
            Some(Arc::new(native::NativeReads::new(sqlite_path(&url).into())))
        } else {
            None
        };
        let native_writer = if backend == Backend::Sqlite && max_connections > 1 {
            Some(Arc::new(native::NativeWriter::new(
                sqlite_path(&url).into(),
            )))
        } else {
            None
        };
        let webhook_leases = if backend == Backend::Sqlite && max_connections > 1 {
            Some(Arc::new(leases::MemoryLeases::new(std::path::Path::new(
                sqlite_path(&url),
            ))))
        } else {
            None
        };
        Ok(Store {
            pool,
            writes,
            sync,
            backend,
            native,
            native_writer,
            writers_waiting: Arc::default(),
            webhook_leases,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Runs one reading statement for the engine's loops: on a SQLite file on this thread,
    /// natively (see `native`), else through `pool`. Only for statements that are quick
    /// whatever the data (claimed batches, keyed lookups): a native read holds its thread.
    pub(crate) async fn read_rows(&self, sql: Sql) -> Result<Vec<Row>> {
        self.read_rows_planned(sql, false).await
    }

    /// `read_rows` for a read over a queue table, planned afresh on every run on PostgreSQL
    /// (see `sql::one_shot_persistent`).
    pub(crate) async fn read_rows_planned_each_run(&self, sql: Sql) -> Result<Vec<Row>> {
        self.read_rows_planned(sql, true).await
    }

    async fn read_rows_planned(&self, sql: Sql, each_run: bool) -> Result<Vec<Row>> {
        if let Some(native) = &self.native {
            return Ok(native.fetch(&sql)?.into_iter().map(Row::Native).collect());
        }
        let query = if each_run {
            sql.one_shot_query()
        } else {
            sql.query()
        };
        Ok(query
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(Row::Any)
            .collect())
    }

    /// Connections of each pool: (pool, in use, idle). On PostgreSQL reads and writes share
    /// one pool, reported once.
    pub fn pool_usage(&self) -> Vec<(&'static str, usize, usize)> {
        let usage = |pool: &AnyPool| {
            let idle = pool.num_idle();
            ((pool.size() as usize).saturating_sub(idle), idle)
        };
        let (busy, idle) = usage(&self.pool);
        let mut pools = vec![("main", busy, idle)];
        if self.backend == Backend::Sqlite {
            let (busy, idle) = usage(&self.writes);
            pools.push(("writer", busy, idle));
        }
        pools
    }

    /// Runs one writing statement outside `begin_write`, on the write connection (see
    /// `Store::writes`), and returns once it is durable, as `Tx::commit` does.
    pub(crate) async fn write(
        &self,
        statement: sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> Result<sqlx::any::AnyQueryResult> {
        let done = {
            let _waiting = WaitingWriter::new(&self.writers_waiting);
            let _lock = self.write_lock().await;
            statement.execute(&self.writes).await?
        };
        if let Some(sync) = &self.sync {
            sync.request().wait().await?;
        }
        Ok(done)
    }

    /// Runs one statement on the write connection and returns its rows without waiting for
    /// the disk: only for writes a crash may lose harmlessly. A dispatcher's claim is one (a
    /// lost lease lets its messages be claimed again at once, as after any restart), and any
    /// later commit that waits for the disk covers it too, the WAL being written in order.
    /// On a SQLite file it runs natively, on this thread.
    pub(crate) async fn write_volatile(&self, sql: Sql) -> Result<Vec<Row>> {
        self.write_volatile_planned(sql, false).await
    }

    /// `write_volatile` for a claim over a queue table, planned afresh on every run on
    /// PostgreSQL (see `sql::one_shot_persistent`).
    pub(crate) async fn write_volatile_planned_each_run(&self, sql: Sql) -> Result<Vec<Row>> {
        self.write_volatile_planned(sql, true).await
    }

    async fn write_volatile_planned(&self, sql: Sql, each_run: bool) -> Result<Vec<Row>> {
        let _waiting = WaitingWriter::new(&self.writers_waiting);
        if let Some(writer) = &self.native_writer {
            let _lock = self.write_lock().await;
            return writer.fetch(&sql);
        }
        let query = if each_run {
            sql.one_shot_query()
        } else {
            sql.query()
        };
        Ok(query
            .fetch_all(&self.writes)
            .await?
            .into_iter()
            .map(Row::Any)
            .collect())
    }

    /// `write_volatile` for a statement whose rows are not wanted: how many it changed.
    pub(crate) async fn write_volatile_count(&self, sql: Sql) -> Result<u64> {
        let _waiting = WaitingWriter::new(&self.writers_waiting);
        if let Some(writer) = &self.native_writer {
            let _lock = self.write_lock().await;
            return writer.execute(&sql);
        }
        Ok(sql.query().execute(&self.writes).await?.rows_affected())
    }

    /// A transaction that will write: on SQLite it takes the write lock up front, so two
    /// read-then-write transactions queue instead of failing with "database is locked".
    pub async fn begin_write(&self) -> Result<Tx<'static>> {
        let _waiting = WaitingWriter::new(&self.writers_waiting);
        let lock = self.write_lock().await;
        let tx = match self.backend {
            Backend::Sqlite => self.writes.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.writes.begin().await?,
        };
        Ok(Tx::new(tx, self.sync.clone(), lock))
    }

    /// On a SQLite file, waits for the write lock (see `native`); elsewhere there is none to
    /// take.
    async fn write_lock(&self) -> Option<native::WriteLock> {
        Some(self.native_writer.as_ref()?.lock().await)
    }

    /// Whether the engine's writes run natively (a SQLite file, see `native`).
    pub(crate) fn writes_natively(&self) -> bool {
        self.native_writer.is_some()
    }

    /// `begin_write` for the engine's transactions, whose statements are all `Sql` (run with
    /// `Tx::execute`, `fetch_all`, `execute_all`…): on a SQLite file it runs natively on this
    /// thread (see `native`), holding the write lock.
    pub(crate) async fn begin_write_native(&self) -> Result<Tx<'static>> {
        let Some(writer) = &self.native_writer else {
            return self.begin_write().await;
        };
        let lock = {
            let _waiting = WaitingWriter::new(&self.writers_waiting);
            writer.lock().await
        };
        Ok(Tx::native(
            native::NativeTx::begin(writer.clone(), Some(lock))?,
            self.sync.clone(),
        ))
    }

    /// Takes a turn at writing to run several transactions in (`WriteSession`).
    pub async fn write_session(&self) -> Result<WriteSession> {
        let _waiting = WaitingWriter::new(&self.writers_waiting);
        if self.native_writer.is_some() {
            return Ok(WriteSession {
                connection: None,
                _lock: self.write_lock().await,
                store: self.clone(),
            });
        }
        Ok(WriteSession {
            connection: Some(self.writes.acquire().await?),
            _lock: None,
            store: self.clone(),
        })
    }

    /// Fault injection for the disk-full tests: caps a SQLite file at `pages` pages (SQLite
    /// keeps it at least its current size), so the next write needing more fails with
    /// SQLITE_FULL as on a full disk; `None` lifts the cap. On the write connections (sqlx's and
    /// the native one), the only ones that write. Nothing on PostgreSQL.
    pub async fn fault_max_pages(&self, pages: Option<u64>) -> Result<()> {
        let _lock = self.write_lock().await;
        if let Some(writer) = &self.native_writer {
            writer.set_max_pages(pages)?;
        }
        if self.backend == Backend::Sqlite {
            let pages = pages.unwrap_or(u64::from(u32::MAX) - 1);
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "PRAGMA max_page_count = {pages}"
            )))
            .execute(&self.writes)
            .await?;
        }
        Ok(())
    }

    /// What resolves once everything committed so far is durable.
    pub fn durable(&self) -> Durable {
        match &self.sync {
            Some(sync) => sync.request(),
            None => Durable::now(),
        }
    }

    /// Whether this store's commits go to a WAL that `checkpoint` must copy into the database
    /// file (a SQLite file; SQLite's own checkpoints inside commits are off, see
    /// `tune_connection`).
    pub fn has_wal(&self) -> bool {
        self.sync.is_some()
    }

    /// Copies what the WAL holds into the database file (a passive checkpoint: it never waits
    /// for readers or the writer). On a read connection it does not hold the write
    /// connection, but beside a busy writer it never finishes (new frames arrive while it
    /// copies), and only a finished one lets the next commit start the WAL over; so now and
    /// then it runs `on_writer`, between two writes, where it finishes and, having little left
    /// to copy, is short.
    pub async fn checkpoint(&self, on_writer: bool) -> Result<()> {
        if self.has_wal() {
            let (pool, _lock) = if on_writer {
                (&self.writes, self.write_lock().await)
            } else {
                (&self.pool, None)
            };
            sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(pool)
                .await?;
        }
        Ok(())
    }

    /// Serializes start-up work across the nodes of one PostgreSQL database (creating the
    /// main account, loading the demo inventory): a session advisory lock, held until
    /// `StartupLock::release` or until the connection goes (a node that dies while holding it
    /// lets the others go on). SQLite has one node: nothing to hold.
    pub async fn startup_lock(&self) -> Result<StartupLock> {
        if self.backend != Backend::Postgres {
            return Ok(StartupLock(None));
        }
        let mut connection = self.pool.acquire().await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT pg_advisory_lock({STARTUP_LOCK_KEY})"
        )))
        .execute(&mut *connection)
        .await?;
        Ok(StartupLock(Some(connection)))
    }

    /// A quick liveness probe for `/healthz`.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

/// Per-connection SQLite settings. Statement journals (the undo log of one multi-row
/// statement) stay in memory instead of temporary files. Checkpoints run in the background
/// (`Store::checkpoint`, called by the server's workers when the API pauses) rather than
/// inside whichever commit crosses the WAL threshold.
async fn tune_connection(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    durability: Durability,
) -> sqlx::Result<()> {
    match backend {
        Backend::Sqlite => {
            sqlx::Executor::execute(
                &mut *conn,
                "PRAGMA temp_store=MEMORY; PRAGMA wal_autocheckpoint=0",
            )
            .await?;
        }
        // Every statement here reads or writes a few hundred rows at most, and compiling one
        // costs 20 ms and more. PostgreSQL compiles any statement whose estimated cost passes
        // `jit_above_cost`, as claims over a queue do when statistics taken mid-burst call
        // the claimable rows few: every claim was compiled for as long as those statistics
        // lasted. (`jit` exists from PostgreSQL 11 on; older servers have none to turn off.)
        Backend::Postgres => {
            sqlx::Executor::execute(
                &mut *conn,
                "SELECT set_config('jit', 'off', false) FROM pg_settings WHERE name = 'jit'",
            )
            .await?;
            if durability == Durability::Written {
                // The commit returns once the server has it, before its WAL is flushed.
                sqlx::Executor::execute(&mut *conn, "SET synchronous_commit = off").await?;
            }
        }
    }
    Ok(())
}

/// The write connection of a SQLite file commits without syncing: `WalSync` syncs for it,
/// off the connection (see `durability`).
async fn tune_sqlite_writer(conn: &mut sqlx::AnyConnection) -> sqlx::Result<()> {
    // Durability does not change a SQLite connection: `WalSync` decides it.
    tune_connection(conn, Backend::Sqlite, Durability::Synced).await?;
    // Every API write and dispatcher round goes through this one connection: a page cache
    // of 16 MiB instead of SQLite's 2 MiB keeps the indexes it writes to in memory.
    sqlx::Executor::execute(
        &mut *conn,
        "PRAGMA synchronous=NORMAL; PRAGMA cache_size=-16384",
    )
    .await?;
    Ok(())
}

/// The file path in a `sqlite:` URL.
fn sqlite_path(url: &str) -> &str {
    url.trim_start_matches("sqlite:")
        .trim_start_matches("//")
        .split('?')
        .next()
        .unwrap_or_default()
}

/// Creates the database file's folder when missing, readable by this user only (the database
/// holds auth tokens); an existing folder is left as it is.
fn create_sqlite_parent_dir(url: &str) -> anyhow::Result<()> {
    let path = sqlite_path(url);
    if let Some(parent) = std::path::Path::new(path).parent() {
        if !parent.as_os_str().is_empty() && !parent.exists() {
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder.create(parent)?;
        }
    }
    Ok(())
}

/// Makes a SQLite database file (and its WAL and shared-memory files, which SQLite creates
/// with the database file's permissions) readable and writable by this user only.
fn restrict_sqlite_files(url: &str) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let path = sqlite_path(url);
        for suffix in ["", "-wal", "-shm"] {
            let file = format!("{path}{suffix}");
            if std::path::Path::new(&file).exists() {
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = url;
    Ok(())
}

/// A row as either way of reading gives it: sqlx's, or a native read's on a SQLite file
/// (see `Store::read_rows`).
pub enum Row {
    Any(AnyRow),
    Native(native::NativeRow),
}

/// Reading a row's columns by name, whichever way it was read.
pub(crate) trait Columns {
    fn opt_text_column(&self, column: &str) -> Result<Option<String>>;
    fn opt_int_column(&self, column: &str) -> Result<Option<i64>>;
    fn opt_float_column(&self, column: &str) -> Result<Option<f64>>;
}

impl Columns for AnyRow {
    fn opt_text_column(&self, column: &str) -> Result<Option<String>> {
        Ok(self.try_get::<Option<String>, _>(column)?)
    }
    fn opt_int_column(&self, column: &str) -> Result<Option<i64>> {
        Ok(self.try_get::<Option<i64>, _>(column)?)
    }
    fn opt_float_column(&self, column: &str) -> Result<Option<f64>> {
        Ok(self.try_get::<Option<f64>, _>(column)?)
    }
}

impl<T: Columns + ?Sized> Columns for &T {
    fn opt_text_column(&self, column: &str) -> Result<Option<String>> {
        (**self).opt_text_column(column)
    }
    fn opt_int_column(&self, column: &str) -> Result<Option<i64>> {
        (**self).opt_int_column(column)
    }
    fn opt_float_column(&self, column: &str) -> Result<Option<f64>> {
        (**self).opt_float_column(column)
    }
}

impl Columns for Row {
    fn opt_text_column(&self, column: &str) -> Result<Option<String>> {
        match self {
            Row::Any(row) => row.opt_text_column(column),
            Row::Native(row) => row.opt_text(column),
        }
    }
    fn opt_int_column(&self, column: &str) -> Result<Option<i64>> {
        match self {
            Row::Any(row) => row.opt_int_column(column),
            Row::Native(row) => row.opt_int(column),
        }
    }
    fn opt_float_column(&self, column: &str) -> Result<Option<f64>> {
        match self {
            Row::Any(row) => row.opt_float_column(column),
            Row::Native(row) => row.opt_float(column),
        }
    }
}

/// Reads an optional text column.
pub(crate) fn opt_text(row: &(impl Columns + ?Sized), column: &str) -> Result<Option<String>> {
    row.opt_text_column(column)
}

/// Runs `attempt` again (at most 5 times in all, after a short random pause) while it fails
/// with a conflict between concurrent transactions (PostgreSQL's deadlock or serialization
/// failure), which rolled it back whole.
pub(crate) async fn retry_transient<T, F, Fut>(mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut tries = 1u64;
    loop {
        match attempt().await {
            Err(err) if err.is_transient() && tries < 5 => {
                tracing::warn!(%err, tries, "transaction conflicted with another; trying again");
                let pause = rand::random::<u64>() % (5 * tries) + 1;
                tokio::time::sleep(Duration::from_millis(pause)).await;
                tries += 1;
            }
            done => return done,
        }
    }
}

/// Reads an optional integer column.
pub(crate) fn opt_int(row: &(impl Columns + ?Sized), column: &str) -> Result<Option<i64>> {
    row.opt_int_column(column)
}

/// Reads a required text column.
pub(crate) fn text(row: &(impl Columns + ?Sized), column: &str) -> Result<String> {
    row.opt_text_column(column)?
        .ok_or_else(|| Error::internal(format!("column {column} is NULL")))
}

/// Reads a required integer column.
pub(crate) fn int(row: &(impl Columns + ?Sized), column: &str) -> Result<i64> {
    row.opt_int_column(column)?
        .ok_or_else(|| Error::internal(format!("column {column} is NULL")))
}

// `FromStr` keeps `Backend` usable from config strings too.
impl FromStr for Backend {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Backend::from_url(s)
    }
}
