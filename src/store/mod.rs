//! Persistence: one `Store` over SQLite or PostgreSQL, chosen by the database URL's scheme.
//! Both run the same portable SQL through sqlx's `Any` driver; the few dialect differences
//! (how a write transaction starts, row locks) are decided by `Backend`.
//! Imports `domain` and `error`; knows nothing of HTTP.

pub mod accounts;
pub mod caps;
pub mod carrier;
pub mod inbound;
pub mod keys;
pub mod messages;
pub mod messaging;
pub mod numbers;
mod sql;
pub mod triggers;
pub mod usage;
pub mod webhooks;

pub use sql::Sql;

use crate::error::{Error, Result};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row, Transaction};
use std::str::FromStr;
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
                "unsupported database URL (expected sqlite:// or postgres://): {url}"
            )))
        }
    }
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The database handle every service uses.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

pub type Tx = Transaction<'static, sqlx::Any>;

impl Store {
    /// Connects, creating a SQLite file (and its folder) when missing, and runs migrations.
    pub async fn connect(url: &str) -> anyhow::Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        sql::note_backend(backend);
        let mut url = url.to_string();
        let mut max_connections = 16;
        if backend == Backend::Sqlite {
            if url.contains(":memory:") || url.contains("mode=memory") {
                // Each connection to an in-memory database would see its own empty database.
                max_connections = 1;
            } else {
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
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(30))
            .connect(&url)
            .await?;
        if backend == Backend::Sqlite && max_connections > 1 {
            // WAL lets readers proceed while one writer commits; the setting persists in the file.
            sqlx::query("PRAGMA journal_mode=WAL")
                .execute(&pool)
                .await?;
        }
        MIGRATOR.run(&pool).await?;
        Ok(Store { pool, backend })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A transaction that will write: on SQLite it takes the write lock up front, so two
    /// read-then-write transactions queue instead of failing with "database is locked".
    pub async fn begin_write(&self) -> Result<Tx> {
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(tx)
    }

    /// A quick liveness probe for `/healthz`.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

fn create_sqlite_parent_dir(url: &str) -> anyhow::Result<()> {
    let path = url
        .trim_start_matches("sqlite:")
        .trim_start_matches("//")
        .split('?')
        .next()
        .unwrap_or_default();
    if let Some(parent) = std::path::Path::new(path).parent() {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent)?;
        }
    }
    Ok(())
}

/// Reads an optional text column.
pub(crate) fn opt_text(row: &AnyRow, column: &str) -> Result<Option<String>> {
    Ok(row.try_get::<Option<String>, _>(column)?)
}

/// Reads a required text column.
pub(crate) fn text(row: &AnyRow, column: &str) -> Result<String> {
    Ok(row.try_get::<String, _>(column)?)
}

/// Reads a required integer column.
pub(crate) fn int(row: &AnyRow, column: &str) -> Result<i64> {
    Ok(row.try_get::<i64, _>(column)?)
}

// `FromStr` keeps `Backend` usable from config strings too.
impl FromStr for Backend {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Backend::from_url(s)
    }
}
