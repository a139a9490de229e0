//! The engine's hot reads on a SQLite file, run on the calling thread through connections the
//! store owns (rusqlite), instead of through sqlx.
//!
//! sqlx's SQLite driver gives each connection a thread of its own: a query is handed to it,
//! and every row comes back across threads on its own, is converted to a driver-neutral row,
//! and wakes the waiting task. For the dispatcher's and the webhook sender's reads (a batch
//! of messages, outbox rows, callback subjects and targets) that hand-over, not SQLite, was
//! most of the cost. Here the statement runs where it is asked for and its rows come back as
//! one `Vec`. A read on a WAL database never waits for the writer, so it blocks its thread
//! only for as long as SQLite works. PostgreSQL and in-memory SQLite keep sqlx (see
//! `Store::read_rows`).

use super::sql::Sql;
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
        let connection = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        connection.busy_timeout(Duration::from_secs(5))?;
        connection.execute_batch("PRAGMA query_only=1; PRAGMA temp_store=MEMORY")?;
        connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(connection)
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

fn fetch_on(connection: &Connection, sql: &Sql) -> Result<Vec<NativeRow>> {
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
}
