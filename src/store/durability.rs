//! When a commit is durable. PostgreSQL (and an in-memory SQLite database) decide it in the
//! commit itself. On a SQLite file, the write connection commits without syncing
//! (`synchronous=NORMAL` appends the transaction to the WAL and returns), and a thread of its
//! own syncs the WAL file: every commit that asked before a sync started is on disk when it
//! ends. A commit is still answered only once it is durable, as with `synchronous=FULL`, but
//! the single write connection goes on to the next transaction while the disk works, and
//! commits that wait together share one sync.
//!
//! With `Durability::Written` nothing waits for the disk: a commit counts once SQLite has
//! appended it to the WAL file (or PostgreSQL has it, `synchronous_commit=off`), which a
//! crash of warbler cannot undo but a crash of the machine (of the database server) can.

use super::{native, Row};
use crate::error::{Error, Result};
use sqlx::{AnyConnection, Transaction};
use std::path::PathBuf;
use std::sync::mpsc;
use tokio::sync::oneshot;

type Waiter = oneshot::Sender<std::result::Result<(), String>>;

/// When a write counts as done: when its answer (a 2xx, a status taken as reached) may go out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// On the disk: a power cut loses nothing answered. A SQLite file's WAL is synced
    /// (`fdatasync`) first; PostgreSQL commits as its server is set (`synchronous_commit`,
    /// on unless the operator turned it off).
    #[default]
    Synced,
    /// Handed over: SQLite has appended the commit to the WAL file (the kernel holds it),
    /// PostgreSQL has it in memory (`synchronous_commit=off` for warbler's sessions). A crash
    /// of warbler loses nothing answered; a crash of the machine, or of the PostgreSQL
    /// server, can lose the last moments of answered writes (on SQLite, what came after the
    /// last checkpoint, which syncs the WAL: at most `CHECKPOINT_AT_LEAST`, 10 s, under
    /// load). Kannel's `store-file` gives the same (it writes its store without syncing).
    Written,
}

/// Syncs a SQLite database's WAL file on request, one `fdatasync` for everyone waiting; with
/// `Durability::Written`, answers every request at once and syncs nothing.
#[derive(Clone)]
pub struct WalSync {
    requests: Option<mpsc::Sender<Waiter>>,
}

impl WalSync {
    /// Starts the syncing thread for the database file at `database` (none for
    /// `Durability::Written`).
    pub fn start(database: PathBuf, durability: Durability) -> std::io::Result<WalSync> {
        if durability == Durability::Written {
            return Ok(WalSync { requests: None });
        }
        let (requests, waiting) = mpsc::channel::<Waiter>();
        // Opened before the thread starts: `start` returns with the files held.
        let mut files = SyncedFiles::new(database);
        std::thread::Builder::new()
            .name("wal-sync".into())
            .spawn(move || {
                while let Ok(first) = waiting.recv() {
                    let mut waiters = vec![first];
                    waiters.extend(waiting.try_iter());
                    let outcome = files.sync().map_err(|err| err.to_string());
                    metrics::counter!(crate::telemetry::WAL_SYNCS).increment(1);
                    if let Err(err) = &outcome {
                        tracing::error!(%err, "syncing the SQLite WAL failed");
                    }
                    for waiter in waiters {
                        let _ = waiter.send(outcome.clone());
                    }
                }
            })?;
        Ok(WalSync {
            requests: Some(requests),
        })
    }

    /// A handle that resolves once everything committed before this call is as durable as
    /// asked: on disk, or (`Durability::Written`) at once.
    pub fn request(&self) -> Durable {
        let Some(requests) = &self.requests else {
            return Durable::now();
        };
        let (done, wait) = oneshot::channel();
        match requests.send(done) {
            Ok(()) => Durable(Some(wait)),
            Err(_) => Durable::failed(),
        }
    }
}

/// The files a sync flushes, kept open: a sync must not need a new file descriptor (out of
/// them, a commit would be answered 500 though it was written). A file is opened again only
/// when the one at its path is no longer the one held (SQLite deleted and recreated the WAL),
/// which a `stat` by path, needing no descriptor, tells.
struct SyncedFiles {
    wal_path: PathBuf,
    database_path: PathBuf,
    wal: Option<(std::fs::File, (u64, u64))>,
    database: Option<(std::fs::File, (u64, u64))>,
}

/// A file's identity: (device, inode).
fn identity(metadata: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (metadata.dev(), metadata.ino())
}

impl SyncedFiles {
    fn new(database_path: PathBuf) -> SyncedFiles {
        let mut wal_path = database_path.clone().into_os_string();
        wal_path.push("-wal");
        let mut files = SyncedFiles {
            wal_path: PathBuf::from(wal_path),
            database_path,
            wal: None,
            database: None,
        };
        // Opened now, while descriptors are plentiful; a failure here is retried at the sync.
        let _ = Self::current(&files.database_path, &mut files.database);
        let _ = Self::current(&files.wal_path, &mut files.wal);
        files
    }

    /// The open file at `path`, (re)opened if the held one is not the file there now;
    /// `None` if there is no file at `path`.
    fn current<'f>(
        path: &std::path::Path,
        held: &'f mut Option<(std::fs::File, (u64, u64))>,
    ) -> std::io::Result<Option<&'f std::fs::File>> {
        let now_there = match std::fs::metadata(path) {
            Ok(metadata) => identity(&metadata),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                *held = None;
                return Ok(None);
            }
            Err(err) => return Err(err),
        };
        if held.as_ref().is_none_or(|(_, id)| *id != now_there) {
            let file = std::fs::File::options().write(true).open(path)?;
            let id = identity(&file.metadata()?);
            *held = Some((file, id));
        }
        Ok(held.as_ref().map(|(file, _)| file))
    }

    /// Flushes the WAL (an fsync through any handle flushes the file's data). Without a WAL
    /// there is nothing unsynced in it: the database file itself is synced instead.
    fn sync(&mut self) -> std::io::Result<()> {
        if let Some(wal) = Self::current(&self.wal_path, &mut self.wal)? {
            return wal.sync_data();
        }
        match Self::current(&self.database_path, &mut self.database)? {
            Some(database) => database.sync_data(),
            None => Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{} is gone", self.database_path.display()),
            )),
        }
    }
}

/// Resolves when a commit is durable.
#[must_use = "a commit is durable only once this resolves"]
pub struct Durable(Option<oneshot::Receiver<std::result::Result<(), String>>>);

impl Durable {
    /// For a commit that was durable when it returned.
    pub fn now() -> Durable {
        Durable(None)
    }

    fn failed() -> Durable {
        let (done, wait) = oneshot::channel();
        let _ = done.send(Err("the WAL sync thread stopped".into()));
        Durable(Some(wait))
    }

    pub async fn wait(self) -> Result<()> {
        let Some(wait) = self.0 else {
            return Ok(());
        };
        match wait.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(Error::internal(format!(
                "the commit may not be durable: {err}"
            ))),
            Err(_) => Err(Error::internal("the WAL sync thread stopped")),
        }
    }
}

/// Runs reading statements (one statement each), in order, in as few round trips as the
/// database allows (`Sql::joined`: one on SQLite), and returns the rows of each. SQLite's
/// driver ends each statement of a joined query with its result, which is where one
/// statement's rows stop and the next one's start.
async fn fetch_each(
    connection: &mut AnyConnection,
    statements: Vec<super::Sql>,
) -> Result<Vec<Vec<Row>>> {
    use futures_util::TryStreamExt;
    let expected = statements.len();
    let mut results = Vec::with_capacity(expected);
    for query in super::Sql::joined(statements) {
        let mut rows = Vec::new();
        let mut stream = sqlx::Executor::fetch_many(&mut *connection, query.query());
        while let Some(item) = stream.try_next().await? {
            match item {
                sqlx::Either::Left(_) => results.push(std::mem::take(&mut rows)),
                sqlx::Either::Right(row) => rows.push(Row::Any(row)),
            }
        }
    }
    if results.len() != expected {
        return Err(Error::internal(format!(
            "{expected} statements gave {} results",
            results.len()
        )));
    }
    Ok(results)
}

/// Where the statements of a write run: a sqlx connection (PostgreSQL, in-memory SQLite, and
/// the writes that stay on sqlx), or the native write connection of a SQLite file (see
/// `native`), where each statement is a call on this thread.
pub(crate) enum Exec<'a> {
    Sqlx(&'a mut AnyConnection),
    Native(&'a mut rusqlite::Connection),
}

impl Exec<'_> {
    /// Runs one statement; returns how many rows it changed.
    pub(crate) async fn execute(&mut self, sql: super::Sql) -> Result<u64> {
        match self {
            Exec::Sqlx(connection) => Ok(sql
                .query()
                .execute(&mut **connection)
                .await?
                .rows_affected()),
            Exec::Native(connection) => native::execute_on(connection, &sql),
        }
    }

    /// Runs one statement and returns its rows.
    pub(crate) async fn fetch_all(&mut self, sql: super::Sql) -> Result<Vec<Row>> {
        match self {
            Exec::Sqlx(connection) => Ok(sql
                .query()
                .fetch_all(&mut **connection)
                .await?
                .into_iter()
                .map(Row::Any)
                .collect()),
            Exec::Native(connection) => Ok(native::fetch_on(connection, &sql)?
                .into_iter()
                .map(Row::Native)
                .collect()),
        }
    }

    /// `fetch_all` of a read over a queue table, planned afresh each run on PostgreSQL
    /// (`Sql::one_shot_query`).
    pub(crate) async fn fetch_all_planned_each_run(&mut self, sql: super::Sql) -> Result<Vec<Row>> {
        match self {
            Exec::Sqlx(connection) => Ok(sql
                .one_shot_query()
                .fetch_all(&mut **connection)
                .await?
                .into_iter()
                .map(Row::Any)
                .collect()),
            Exec::Native(_) => self.fetch_all(sql).await,
        }
    }

    /// `fetch_all` of a statement that returns exactly one row.
    pub(crate) async fn fetch_one(&mut self, sql: super::Sql) -> Result<Row> {
        self.fetch_all(sql)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::internal("a statement returned no row"))
    }

    /// Runs writing statements, in order, in as few round trips as the database allows
    /// (`Sql::joined`); natively there is no round trip to save.
    pub(crate) async fn execute_all(&mut self, statements: Vec<super::Sql>) -> Result<()> {
        match self {
            Exec::Sqlx(connection) => {
                for statement in super::Sql::joined(statements) {
                    statement.query().execute(&mut **connection).await?;
                }
            }
            Exec::Native(connection) => {
                for statement in &statements {
                    native::execute_on(connection, statement)?;
                }
            }
        }
        Ok(())
    }

    /// Runs reading statements in order and returns the rows of each (on sqlx, in one round
    /// trip on SQLite).
    pub(crate) async fn fetch_each(
        &mut self,
        statements: Vec<super::Sql>,
    ) -> Result<Vec<Vec<Row>>> {
        match self {
            Exec::Sqlx(connection) => fetch_each(connection, statements).await,
            Exec::Native(connection) => statements
                .iter()
                .map(|sql| {
                    Ok(native::fetch_on(connection, sql)?
                        .into_iter()
                        .map(Row::Native)
                        .collect())
                })
                .collect(),
        }
    }
}

/// A write transaction. `commit` returns once the commit is durable; `commit_deferred` returns
/// as soon as it is visible, with a `Durable` to wait on before anyone is told.
pub struct Tx<'c> {
    inner: Inner<'c>,
    sync: Option<WalSync>,
    /// On a SQLite file, the write lock a transaction through sqlx holds (a native one holds
    /// it in `NativeTx`). Declared last: released after the transaction has ended.
    _lock: Option<native::WriteLock>,
}

enum Inner<'c> {
    Sqlx(Transaction<'c, sqlx::Any>),
    Native(native::NativeTx),
}

impl<'c> Tx<'c> {
    pub(crate) fn new(
        inner: Transaction<'c, sqlx::Any>,
        sync: Option<WalSync>,
        lock: Option<native::WriteLock>,
    ) -> Tx<'c> {
        Tx {
            inner: Inner::Sqlx(inner),
            sync,
            _lock: lock,
        }
    }

    pub(crate) fn native(inner: native::NativeTx, sync: Option<WalSync>) -> Tx<'c> {
        Tx {
            inner: Inner::Native(inner),
            sync,
            _lock: None,
        }
    }

    pub async fn commit(self) -> Result<()> {
        self.commit_deferred().await?.wait().await
    }

    pub async fn commit_deferred(self) -> Result<Durable> {
        let changed = match self.inner {
            Inner::Sqlx(tx) => {
                tx.commit().await?;
                true
            }
            Inner::Native(tx) => tx.commit()?,
        };
        // A transaction that changed no row has nothing to make durable.
        Ok(match &self.sync {
            Some(sync) if changed => sync.request(),
            _ => Durable::now(),
        })
    }

    pub async fn rollback(self) -> Result<()> {
        match self.inner {
            Inner::Sqlx(tx) => tx.rollback().await?,
            // Rolled back as it drops.
            Inner::Native(tx) => drop(tx),
        }
        Ok(())
    }

    /// Where this transaction's statements run, for statements given as `Sql`.
    pub(crate) fn exec(&mut self) -> Result<Exec<'_>> {
        match &mut self.inner {
            Inner::Sqlx(tx) => Ok(Exec::Sqlx(tx)),
            Inner::Native(tx) => Ok(Exec::Native(tx.connection()?)),
        }
    }

    /// The sqlx connection, for statements built with sqlx. A native transaction
    /// (`Store::begin_write_native`) has none: only `Sql` statements run there.
    pub(crate) fn conn(&mut self) -> Result<&mut AnyConnection> {
        match &mut self.inner {
            Inner::Sqlx(tx) => Ok(&mut **tx),
            Inner::Native(_) => Err(Error::internal(
                "a sqlx statement in a native write transaction",
            )),
        }
    }

    /// Runs writing statements, in order, in as few round trips as the database allows
    /// (`Exec::execute_all`).
    pub async fn execute_all(&mut self, statements: Vec<super::Sql>) -> Result<()> {
        self.exec()?.execute_all(statements).await
    }

    /// `Exec::execute` in this transaction.
    pub(crate) async fn execute(&mut self, sql: super::Sql) -> Result<u64> {
        self.exec()?.execute(sql).await
    }

    /// `Exec::fetch_all` in this transaction.
    pub(crate) async fn fetch_all(&mut self, sql: super::Sql) -> Result<Vec<Row>> {
        self.exec()?.fetch_all(sql).await
    }

    /// `Exec::fetch_all_planned_each_run` in this transaction.
    pub(crate) async fn fetch_all_planned_each_run(&mut self, sql: super::Sql) -> Result<Vec<Row>> {
        self.exec()?.fetch_all_planned_each_run(sql).await
    }

    /// `Exec::fetch_one` in this transaction.
    pub(crate) async fn fetch_one(&mut self, sql: super::Sql) -> Result<Row> {
        self.exec()?.fetch_one(sql).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_sync_resolves_every_waiter_and_reports_a_missing_database() {
        let dir = std::env::temp_dir().join(format!("warbler-walsync-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let database = dir.join("test.db");
        std::fs::write(&database, b"").unwrap();
        let sync = WalSync::start(database.clone(), Durability::Synced).unwrap();
        // No WAL yet: the database file is synced instead.
        let waits: Vec<Durable> = (0..5).map(|_| sync.request()).collect();
        for wait in waits {
            wait.wait().await.unwrap();
        }
        std::fs::write(dir.join("test.db-wal"), b"frames").unwrap();
        sync.request().wait().await.unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let err = sync.request().wait().await.unwrap_err();
        assert!(format!("{err:?}").contains("may not be durable"), "{err:?}");
    }

    /// Runs in a child process of the test binary whose descriptor limit is 64 (a shell's
    /// `ulimit`): with every descriptor taken, a sync must still succeed (it used to open the
    /// WAL by path, fail with EMFILE, and so answer a committed message with 500).
    #[test]
    fn a_sync_needs_no_new_file_descriptor() {
        const CHILD: &str = "WARBLER_TEST_FD_EXHAUSTED_CHILD";
        if std::env::var_os(CHILD).is_none() {
            let test = "store::durability::tests::a_sync_needs_no_new_file_descriptor";
            let output = std::process::Command::new("sh")
                .arg("-c")
                .arg(r#"ulimit -n 64 && exec "$0" --exact "$1" --nocapture --test-threads=1"#)
                .arg(std::env::current_exe().unwrap())
                .arg(test)
                .env(CHILD, "1")
                .output()
                .unwrap();
            let printed = String::from_utf8_lossy(&output.stdout).to_string()
                + &String::from_utf8_lossy(&output.stderr);
            assert!(output.status.success(), "{printed}");
            assert!(
                printed.contains("1 passed"),
                "the child ran the test: {printed}"
            );
            return;
        }
        let dir = std::env::temp_dir().join(format!("warbler-walfd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let database = dir.join("test.db");
        std::fs::write(&database, b"").unwrap();
        std::fs::write(dir.join("test.db-wal"), b"frames").unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let sync = WalSync::start(database, Durability::Synced).unwrap();
        // Take every descriptor left.
        let mut hoard = Vec::new();
        loop {
            match std::fs::File::open("/dev/null") {
                Ok(file) => hoard.push(file),
                Err(err) => {
                    assert_eq!(err.raw_os_error(), Some(24), "EMFILE: {err}");
                    break;
                }
            }
        }
        assert!(hoard.len() < 64, "the limit applies");
        let synced = runtime.block_on(async {
            let first = sync.request().wait().await;
            std::fs::write(dir.join("test.db-wal"), b"more frames").unwrap_or(());
            let second = sync.request().wait().await;
            (first, second)
        });
        drop(hoard);
        std::fs::remove_dir_all(&dir).unwrap();
        synced.0.expect("a sync with no descriptor left");
        synced.1.expect("a second sync with no descriptor left");
    }
}
