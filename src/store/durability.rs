//! When a commit is durable. PostgreSQL (and an in-memory SQLite database) decide it in the
//! commit itself. On a SQLite file, the write connection commits without syncing
//! (`synchronous=NORMAL` appends the transaction to the WAL and returns), and a thread of its
//! own syncs the WAL file: every commit that asked before a sync started is on disk when it
//! ends. A commit is still answered only once it is durable, as with `synchronous=FULL`, but
//! the single write connection goes on to the next transaction while the disk works, and
//! commits that wait together share one sync.

use crate::error::{Error, Result};
use sqlx::{AnyConnection, Transaction};
use std::ops::{Deref, DerefMut};
use std::path::PathBuf;
use std::sync::mpsc;
use tokio::sync::oneshot;

type Waiter = oneshot::Sender<std::result::Result<(), String>>;

/// Syncs a SQLite database's WAL file on request, one `fdatasync` for everyone waiting.
#[derive(Clone)]
pub struct WalSync {
    requests: mpsc::Sender<Waiter>,
}

impl WalSync {
    /// Starts the syncing thread for the database file at `database`.
    pub fn start(database: PathBuf) -> std::io::Result<WalSync> {
        let (requests, waiting) = mpsc::channel::<Waiter>();
        std::thread::Builder::new()
            .name("wal-sync".into())
            .spawn(move || {
                let mut wal = database.clone().into_os_string();
                wal.push("-wal");
                let wal = PathBuf::from(wal);
                while let Ok(first) = waiting.recv() {
                    let mut waiters = vec![first];
                    waiters.extend(waiting.try_iter());
                    let outcome = sync_file(&wal, &database).map_err(|err| err.to_string());
                    if let Err(err) = &outcome {
                        tracing::error!(%err, "syncing the SQLite WAL failed");
                    }
                    for waiter in waiters {
                        let _ = waiter.send(outcome.clone());
                    }
                }
            })?;
        Ok(WalSync { requests })
    }

    /// A handle that resolves once everything committed before this call is on disk.
    pub fn request(&self) -> Durable {
        let (done, wait) = oneshot::channel();
        match self.requests.send(done) {
            Ok(()) => Durable(Some(wait)),
            Err(_) => Durable::failed(),
        }
    }
}

/// Opens the WAL by path for each sync (SQLite may recreate it; an fsync through any handle
/// flushes the file's data). Without a WAL there is nothing unsynced in it: the database file
/// itself is synced instead.
fn sync_file(wal: &std::path::Path, database: &std::path::Path) -> std::io::Result<()> {
    let file = match std::fs::File::options().write(true).open(wal) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            std::fs::File::options().write(true).open(database)?
        }
        Err(err) => return Err(err),
    };
    file.sync_data()
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

/// `Tx::execute_all` on any connection.
pub(crate) async fn execute_all(
    connection: &mut AnyConnection,
    statements: Vec<super::Sql>,
) -> Result<()> {
    for statement in super::Sql::joined(statements) {
        statement.query().execute(&mut *connection).await?;
    }
    Ok(())
}

/// A write transaction. `commit` returns once the commit is durable; `commit_deferred` returns
/// as soon as it is visible, with a `Durable` to wait on before anyone is told.
pub struct Tx<'c> {
    inner: Transaction<'c, sqlx::Any>,
    sync: Option<WalSync>,
}

impl<'c> Tx<'c> {
    pub(crate) fn new(inner: Transaction<'c, sqlx::Any>, sync: Option<WalSync>) -> Tx<'c> {
        Tx { inner, sync }
    }

    pub async fn commit(self) -> Result<()> {
        self.commit_deferred().await?.wait().await
    }

    pub async fn commit_deferred(self) -> Result<Durable> {
        self.inner.commit().await?;
        Ok(match &self.sync {
            Some(sync) => sync.request(),
            None => Durable::now(),
        })
    }

    /// Runs writing statements, in order, in as few round trips as the database allows
    /// (`Sql::joined`).
    pub async fn execute_all(&mut self, statements: Vec<super::Sql>) -> Result<()> {
        execute_all(&mut self.inner, statements).await
    }

    pub async fn rollback(self) -> Result<()> {
        self.inner.rollback().await?;
        Ok(())
    }
}

impl Deref for Tx<'_> {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        &self.inner
    }
}

impl DerefMut for Tx<'_> {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.inner
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
        let sync = WalSync::start(database.clone()).unwrap();
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
}
