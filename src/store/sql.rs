//! A small builder for queries whose WHERE clause depends on the request (list filters,
//! keyset cursors): it numbers `$n` placeholders and keeps the values to bind in order.

use crate::domain::paging::PageRequest;
use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, AssertSqlSafe};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

/// Which placeholders built statements use. sqlx's SQLite driver looks up the name of every
/// numbered parameter, and SQLite finds a name by a linear scan: binding a multi-row insert
/// with `$n` placeholders costs O(parameters²). Anonymous `?` placeholders (bound in order of
/// appearance, which is how this builder numbers them) skip that. PostgreSQL needs `$n`, so
/// `?` is used only while every store this process opened is SQLite.
static PLACEHOLDERS: AtomicU8 = AtomicU8::new(UNDECIDED);
const UNDECIDED: u8 = 0;
const ANONYMOUS: u8 = 1;
const NUMBERED: u8 = 2;

/// Whether this process opened a SQLite store. Batches of rows travel as one
/// JSON parameter only while every store is PostgreSQL (see `Rows`): SQLite has no
/// `json_to_recordset`, and the plain lists work on both.
static SQLITE_OPENED: AtomicBool = AtomicBool::new(false);

/// Records the backend of a store being opened (see `PLACEHOLDERS`).
pub(crate) fn note_backend(backend: super::Backend) {
    match backend {
        super::Backend::Sqlite => {
            SQLITE_OPENED.store(true, Ordering::SeqCst);
            let _ = PLACEHOLDERS.compare_exchange(
                UNDECIDED,
                ANONYMOUS,
                Ordering::SeqCst,
                Ordering::SeqCst,
            );
        }
        super::Backend::Postgres => PLACEHOLDERS.store(NUMBERED, Ordering::SeqCst),
    }
}

/// How a batch of rows or a set of values reaches the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// One placeholder per value, `?` (SQLite only).
    Anonymous,
    /// One placeholder per value, `$n` (both databases).
    Numbered,
    /// One JSON text parameter for the whole batch (PostgreSQL only).
    PostgresJson,
}

fn form() -> Form {
    match PLACEHOLDERS.load(Ordering::Relaxed) {
        ANONYMOUS => Form::Anonymous,
        NUMBERED if !SQLITE_OPENED.load(Ordering::Relaxed) => Form::PostgresJson,
        _ => Form::Numbered,
    }
}

/// The SQL type of a column of `Rows`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Int,
}

impl Kind {
    fn sql_type(self) -> &'static str {
        match self {
            Kind::Text => "TEXT",
            Kind::Int => "BIGINT",
        }
    }
}

/// A batch of rows that one statement inserts or joins (`Sql::rows_as`, `Sql::insert_rows`),
/// filled value by value, row after row, in the order of `kinds`.
///
/// On PostgreSQL the whole batch is one JSON parameter unpacked by `json_to_recordset`, so the
/// statement's text is the same whatever the number of rows, and short: a `VALUES` list of 500
/// rows was a statement of thousands of placeholders, parsed, planned and set up again for
/// every new length. An insert from such a batch keeps its prepared statement and plan. A
/// statement that joins the batch to a table (`rows_as`) is planned again on every run
/// instead: its plan depends on the table's size (the function's rows are always estimated at
/// 100), and a plan kept from when the table was small scanned all of it for every batch once
/// it had grown (seen with `auto_explain`: a hash join over a sequential scan of `messages`).
///
/// On SQLite, which plans without statistics and has its own statement cache, a `VALUES` list.
#[derive(Debug)]
pub struct Rows {
    kinds: &'static [Kind],
    values: Vec<Arg>,
}

impl Rows {
    pub fn new(kinds: &'static [Kind]) -> Rows {
        Rows {
            kinds,
            values: Vec::new(),
        }
    }

    /// For `rows` rows: the values' vector is allocated once, at its size. Grown a value at a
    /// time, a batch's vector is copied a dozen times, into freshly mapped pages each time
    /// once it is large (the allocator returns freed pages at once, see `main.rs`).
    pub fn with_capacity(rows: usize, kinds: &'static [Kind]) -> Rows {
        Rows {
            kinds,
            values: Vec::with_capacity(rows * kinds.len()),
        }
    }

    pub fn text(&mut self, value: impl Into<String>) -> &mut Self {
        self.values.push(Arg::Text(value.into()));
        self
    }

    pub fn opt_text(&mut self, value: Option<String>) -> &mut Self {
        self.values.push(value.map_or(Arg::NullText, Arg::Text));
        self
    }

    pub fn int(&mut self, value: i64) -> &mut Self {
        self.values.push(Arg::Int(value));
        self
    }

    pub fn opt_int(&mut self, value: Option<i64>) -> &mut Self {
        self.values.push(value.map_or(Arg::NullInt, Arg::Int));
        self
    }

    fn width(&self) -> usize {
        self.kinds.len()
    }

    /// Whether the values fill whole rows, each of the kind its column declares (checked in
    /// debug builds, so every test run catches a builder that lost or swapped a value).
    fn well_formed(&self) -> bool {
        let width = self.width();
        width > 0
            && !self.values.is_empty()
            && self.values.len().is_multiple_of(width)
            && self.values.iter().enumerate().all(|(i, value)| {
                matches!(
                    (self.kinds[i % width], value),
                    (Kind::Text, Arg::Text(_) | Arg::NullText)
                        | (Kind::Int, Arg::Int(_) | Arg::NullInt)
                )
            })
    }

    /// The rows as a JSON array of objects keyed "1", "2"… (the columns' positions).
    fn json(&self) -> String {
        use std::io::Write;
        let mut out: Vec<u8> = Vec::with_capacity(self.values.len() * 16 + 2);
        out.push(b'[');
        for (i, row) in self.values.chunks(self.width()).enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.push(b'{');
            for (j, value) in row.iter().enumerate() {
                if j > 0 {
                    out.push(b',');
                }
                let _ = write!(out, "\"{}\":", j + 1);
                let _ = match value {
                    // serde_json escapes exactly what JSON requires.
                    Arg::Text(text) => serde_json::to_writer(&mut out, text).map_err(|_| ()),
                    Arg::Int(n) => write!(out, "{n}").map_err(|_| ()),
                    Arg::NullText | Arg::NullInt => out.write_all(b"null").map_err(|_| ()),
                };
            }
            out.push(b'}');
        }
        out.push(b']');
        // Only UTF-8 went in: the texts, escaped by serde_json, and ASCII.
        String::from_utf8(out).unwrap_or_default()
    }
}

#[derive(Debug, Clone)]
enum Arg {
    Text(String),
    Int(i64),
    NullText,
    NullInt,
}

#[derive(Debug, Default)]
pub struct Sql {
    text: String,
    args: Vec<Arg>,
    /// Byte ranges of the `$n` placeholders in `text`.
    placeholders: Vec<(usize, usize)>,
    /// Whether PostgreSQL must plan the statement again on every run (see `Rows`).
    planned_each_run: bool,
}

impl Sql {
    pub fn new(head: &str) -> Sql {
        Sql {
            text: head.to_string(),
            args: Vec::new(),
            placeholders: Vec::new(),
            planned_each_run: false,
        }
    }

    pub fn push(&mut self, fragment: &str) -> &mut Self {
        self.text.push_str(fragment);
        self
    }

    /// Appends ` LIMIT n` with `n` written into the text. SQLite plans a `LIMIT ?` with the
    /// value bound, so a prepared statement whose limit is bound again is prepared anew on
    /// its next run (the engine's claims and receipt reads were, every round); a limit in the
    /// text keeps the prepared statement for as long as the limit stays the same.
    pub fn limit(&mut self, n: i64) -> &mut Self {
        use std::fmt::Write;
        let _ = write!(self.text, " LIMIT {n}");
        self
    }

    /// Appends a placeholder bound to a text value.
    pub fn text(&mut self, value: impl Into<String>) -> &mut Self {
        self.args.push(Arg::Text(value.into()));
        self.placeholder()
    }

    /// Appends placeholders bound to text values, separated by commas (for `IN (…)`).
    pub fn text_list<T: Into<String>>(&mut self, values: impl IntoIterator<Item = T>) -> &mut Self {
        for (i, value) in values.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.text(value);
        }
        self
    }

    /// Appends the parenthesised operand of an `IN` over text values. On SQLite it is one JSON
    /// array behind one placeholder, unpacked by `json_each`: the statement's text is then the
    /// same whatever the count, and the driver's cache of prepared statements finds it again
    /// (SQLite still seeks an index once per value). PostgreSQL gets a plain list: planned for
    /// its values each time a new length comes, kept for a length seen before. One JSON
    /// parameter would give one text, but its plan would then be kept (hot look-ups such as
    /// opt-outs cannot afford planning on every run), and a kept plan made while the table was
    /// small goes on scanning all of it once it has grown (see `Rows`).
    pub fn text_set<'v>(&mut self, values: impl IntoIterator<Item = &'v str>) -> &mut Self {
        self.text_set_in(values, form())
    }

    fn text_set_in<'v>(
        &mut self,
        values: impl IntoIterator<Item = &'v str>,
        form: Form,
    ) -> &mut Self {
        if form != Form::Anonymous {
            return self.push("(").text_list(values).push(")");
        }
        let values: Vec<&str> = values.into_iter().collect();
        let array = serde_json::to_string(&values).unwrap_or_else(|_| "[]".into());
        self.push("(SELECT value FROM json_each(")
            .text(array)
            .push("))")
    }

    /// Appends `rows` as a row source called `alias`, its columns named column1, column2…
    /// (as `VALUES` names them on both databases). `rows` holds at least one row.
    pub fn rows_as(&mut self, rows: Rows, alias: &str) -> &mut Self {
        self.rows_as_in(rows, alias, form())
    }

    fn rows_as_in(&mut self, rows: Rows, alias: &str, form: Form) -> &mut Self {
        debug_assert!(rows.well_formed(), "{rows:?}");
        if form == Form::PostgresJson {
            self.planned_each_run = true;
            self.push("(SELECT ");
            self.push_json_columns(&rows, true);
            self.push(" FROM ");
            self.push_json_source(rows);
            return self.push(") AS ").push(alias);
        }
        self.push("(");
        self.push_values(rows, form);
        self.push(") AS ").push(alias)
    }

    /// Appends `rows` as the source of an `INSERT INTO t (columns) `: `VALUES …`, or on
    /// PostgreSQL a `SELECT` from the one JSON parameter (see `Rows`).
    pub fn insert_rows(&mut self, rows: Rows) -> &mut Self {
        self.insert_rows_in(rows, form())
    }

    fn insert_rows_in(&mut self, rows: Rows, form: Form) -> &mut Self {
        debug_assert!(rows.well_formed(), "{rows:?}");
        if form == Form::PostgresJson {
            self.push("SELECT ");
            self.push_json_columns(&rows, false);
            self.push(" FROM ");
            return self.push_json_source(rows);
        }
        self.push_values(rows, form)
    }

    fn push_values(&mut self, rows: Rows, form: Form) -> &mut Self {
        let width = rows.width();
        // Sized once (see `Rows::with_capacity`): a placeholder is at most 7 bytes of text
        // with its separator below 100,000 values.
        let count = rows.values.len();
        self.args.reserve(count);
        self.placeholders.reserve(count);
        self.text.reserve(8 * count + 16);
        self.push("VALUES ");
        for (i, value) in rows.values.into_iter().enumerate() {
            let (row, column) = (i / width, i % width);
            if column == 0 {
                self.push(if row == 0 { "(" } else { "), (" });
            } else {
                self.push(", ");
            }
            // The first row's casts give PostgreSQL the columns' types even when every value
            // of a column is NULL.
            let cast = form == Form::Numbered && row == 0;
            if cast {
                self.push("CAST(");
            }
            self.args.push(value);
            self.placeholder();
            if cast {
                self.push(" AS ")
                    .push(rows.kinds[column].sql_type())
                    .push(")");
            }
        }
        self.push(")")
    }

    fn push_json_columns(&mut self, rows: &Rows, named: bool) {
        for column in 1..=rows.width() {
            if column > 1 {
                self.push(", ");
            }
            self.push(&format!("j.\"{column}\""));
            if named {
                self.push(&format!(" AS column{column}"));
            }
        }
    }

    fn push_json_source(&mut self, rows: Rows) -> &mut Self {
        self.push("json_to_recordset(CAST(")
            .text(rows.json())
            .push(" AS json)) AS j(");
        for (i, kind) in rows.kinds.iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.push(&format!("\"{}\" {}", i + 1, kind.sql_type()));
        }
        self.push(")")
    }

    fn placeholder(&mut self) -> &mut Self {
        use std::fmt::Write;
        let n = self.args.len();
        let start = self.text.len();
        let _ = write!(self.text, "${n}");
        self.placeholders.push((start, self.text.len()));
        self
    }

    /// The statement text with the placeholders this process's databases want.
    fn statement(&self) -> String {
        if PLACEHOLDERS.load(Ordering::Relaxed) != ANONYMOUS {
            return self.text.clone();
        }
        let mut out = String::with_capacity(self.text.len());
        let mut from = 0;
        for &(start, end) in &self.placeholders {
            out.push_str(&self.text[from..start]);
            out.push('?');
            from = end;
        }
        out.push_str(&self.text[from..]);
        out
    }

    /// Appends a placeholder bound to a text value or NULL. A placeholder rather than a
    /// literal NULL keeps the statement's text the same whatever is missing, so the driver's
    /// cache of prepared statements finds it again.
    pub fn opt_text(&mut self, value: Option<String>) -> &mut Self {
        self.args.push(value.map_or(Arg::NullText, Arg::Text));
        self.placeholder()
    }

    /// Appends a placeholder bound to an integer value or NULL (see `opt_text`).
    pub fn opt_int(&mut self, value: Option<i64>) -> &mut Self {
        self.args.push(value.map_or(Arg::NullInt, Arg::Int));
        self.placeholder()
    }

    /// Appends a placeholder bound to an integer value.
    pub fn int(&mut self, value: i64) -> &mut Self {
        self.args.push(Arg::Int(value));
        self.placeholder()
    }

    /// Appends the keyset condition, order and limit of a page over (date_created, sid).
    pub fn page(&mut self, page: &PageRequest) -> &mut Self {
        self.page_by(page, "date_created")
    }

    /// Like `page`, ordered by another time column (then sid).
    pub fn page_by(&mut self, page: &PageRequest, time_column: &'static str) -> &mut Self {
        if let Some(after) = &page.after {
            self.push(&format!(" AND ({time_column} > "))
                .int(after.created)
                .push(&format!(" OR ({time_column} = "))
                .int(after.created)
                .push(" AND sid > ")
                .text(after.sid.clone())
                .push("))");
        }
        self.push(&format!(" ORDER BY {time_column}, sid LIMIT "))
            .int(i64::from(page.fetch_limit()))
            .push(" OFFSET ")
            .int(page.offset() as i64)
    }

    /// Appends `other` as a further statement of this one's text, its placeholders renumbered.
    fn append_statement(&mut self, other: Sql) {
        self.push(";\n");
        let mut from = 0;
        for (&(start, end), arg) in other.placeholders.iter().zip(other.args) {
            self.text.push_str(&other.text[from..start]);
            self.args.push(arg);
            self.placeholder();
            from = end;
        }
        self.text.push_str(&other.text[from..]);
    }

    /// Joins statements into as few queries as the databases allow: one on SQLite, whose
    /// driver runs a query's statements in turn and binds anonymous placeholders across them
    /// in order, so the write connection's worker thread is asked once instead of once each;
    /// unchanged on PostgreSQL, which takes one statement per query.
    pub fn joined(statements: Vec<Sql>) -> Vec<Sql> {
        if PLACEHOLDERS.load(Ordering::Relaxed) != ANONYMOUS {
            return statements;
        }
        let mut statements = statements.into_iter();
        let Some(mut joined) = statements.next() else {
            return Vec::new();
        };
        for statement in statements {
            joined.append_statement(statement);
        }
        vec![joined]
    }

    /// The statement with its values bound, moved in rather than copied (a group's inserts
    /// carry every message's body).
    pub fn query(mut self) -> Query<'static, Any, AnyArguments> {
        let statement = if PLACEHOLDERS.load(Ordering::Relaxed) == ANONYMOUS {
            self.statement()
        } else {
            std::mem::take(&mut self.text)
        };
        let planned_each_run = self.planned_each_run;
        let mut query = sqlx::query(AssertSqlSafe(statement));
        for arg in self.args {
            query = match arg {
                Arg::Text(v) => query.bind(v),
                Arg::Int(v) => query.bind(v),
                Arg::NullText => query.bind(None::<String>),
                Arg::NullInt => query.bind(None::<i64>),
            };
        }
        if planned_each_run {
            query = query.persistent(false);
        }
        query
    }

    /// The statement's text as `query` sends it (for `store::native`).
    pub(crate) fn statement_text(&self) -> String {
        self.statement()
    }

    /// Binds the values to a statement prepared from `statement_text`, in order.
    pub(crate) fn bind_native(
        &self,
        statement: &mut rusqlite::Statement<'_>,
    ) -> rusqlite::Result<()> {
        for (i, arg) in self.args.iter().enumerate() {
            match arg {
                Arg::Text(v) => statement.raw_bind_parameter(i + 1, v.as_str())?,
                Arg::Int(v) => statement.raw_bind_parameter(i + 1, *v)?,
                Arg::NullText | Arg::NullInt => {
                    statement.raw_bind_parameter(i + 1, rusqlite::types::Null)?
                }
            }
        }
        Ok(())
    }

    /// `query`, planned afresh on every run on PostgreSQL (see `one_shot_persistent`).
    pub fn one_shot_query(self) -> Query<'static, Any, AnyArguments> {
        self.query().persistent(one_shot_persistent())
    }
}

/// Claims over the queue tables (due messages, due receipts, the webhook outbox) are not kept
/// as prepared statements. sqlx prepares a statement once per connection, and after five runs
/// PostgreSQL may reuse a generic plan made from the statistics of that moment; these tables
/// swing from empty to tens of thousands of rows in a burst, and a webhook claim planned while
/// the outbox was nearly empty (sequential scans, a nested-loop anti-join) took minutes over a
/// 20,000-row backlog. A statement that is not kept is planned with its parameters and the
/// table's current size every time. The other statements keep their cached plans.
///
/// SQLite plans without the table's size (warbler never runs `ANALYZE`), so a kept statement's
/// plan is the one a fresh one would get: there they are kept, as parsing and planning them
/// again on every claim showed in the write connection's profile.
pub fn one_shot_persistent() -> bool {
    PLACEHOLDERS.load(Ordering::Relaxed) == ANONYMOUS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_appended_statement_keeps_its_values_in_order_and_is_renumbered() {
        let mut first = Sql::new("INSERT INTO a VALUES (");
        first.text("x").push(", ").int(1).push(")");
        let mut second = Sql::new("INSERT INTO b VALUES (");
        second
            .int(2)
            .push(", ")
            .text("y")
            .push(") ON CONFLICT DO NOTHING");
        first.append_statement(second);
        assert_eq!(
            first.text,
            "INSERT INTO a VALUES ($1, $2);\nINSERT INTO b VALUES ($3, $4) ON CONFLICT DO NOTHING"
        );
        let values: Vec<String> = first.args.iter().map(|a| format!("{a:?}")).collect();
        assert_eq!(values, ["Text(\"x\")", "Int(1)", "Int(2)", "Text(\"y\")"]);
        let spans: Vec<&str> = first
            .placeholders
            .iter()
            .map(|&(s, e)| &first.text[s..e])
            .collect();
        assert_eq!(spans, ["$1", "$2", "$3", "$4"]);
    }

    #[test]
    fn a_text_set_on_sqlite_is_one_json_array_whatever_its_size() {
        note_backend(crate::store::Backend::Sqlite);
        let texts: Vec<String> = [vec!["+14155550100"], vec!["+14155550100", "a\"b"]]
            .into_iter()
            .map(|values| {
                let mut sql = Sql::new("SELECT 1 WHERE x IN ");
                sql.text_set(values);
                assert_eq!(sql.args.len(), 1);
                sql.statement()
            })
            .collect();
        assert_eq!(
            texts[0],
            "SELECT 1 WHERE x IN (SELECT value FROM json_each(?))"
        );
        assert_eq!(texts[0], texts[1]);
        let mut sql = Sql::new("");
        sql.text_set(["+1", "a\"b"]);
        assert!(matches!(&sql.args[0], Arg::Text(json) if json == r#"["+1","a\"b"]"#));
    }

    fn two_columns(rows: &[(&str, Option<i64>)]) -> Rows {
        let mut batch = Rows::new(&[Kind::Text, Kind::Int]);
        for (text, int) in rows {
            batch.text(*text).opt_int(*int);
        }
        batch
    }

    #[test]
    fn on_postgresql_a_batch_is_one_json_parameter_and_the_text_never_changes() {
        let statements: Vec<Sql> = [vec![("a", Some(1))], vec![("a", Some(1)), ("b", None)]]
            .iter()
            .map(|rows| {
                let mut sql = Sql::new("UPDATE t SET n = v.column2 FROM ");
                sql.rows_as_in(two_columns(rows), "v", Form::PostgresJson)
                    .push(" WHERE t.k = v.column1");
                sql
            })
            .collect();
        assert_eq!(
            statements[0].text,
            "UPDATE t SET n = v.column2 FROM (SELECT j.\"1\" AS column1, j.\"2\" AS column2 \
             FROM json_to_recordset(CAST($1 AS json)) AS j(\"1\" TEXT, \"2\" BIGINT)) AS v \
             WHERE t.k = v.column1"
        );
        assert_eq!(statements[0].text, statements[1].text);
        // A join's plan depends on the table's size: planned on every run.
        assert!(statements.iter().all(|sql| sql.planned_each_run));
        assert!(
            matches!(&statements[1].args[..], [Arg::Text(json)] if json == r#"[{"1":"a","2":1},{"1":"b","2":null}]"#)
        );
        let mut insert = Sql::new("INSERT INTO t (k, n) ");
        insert.insert_rows_in(two_columns(&[("x", None)]), Form::PostgresJson);
        assert_eq!(
            insert.text,
            "INSERT INTO t (k, n) SELECT j.\"1\", j.\"2\" \
             FROM json_to_recordset(CAST($1 AS json)) AS j(\"1\" TEXT, \"2\" BIGINT)"
        );
        // A plain insert's plan is the same at any size: kept.
        assert!(!insert.planned_each_run);
    }

    #[test]
    fn a_batch_escapes_its_texts_as_json_requires() {
        let mut rows = Rows::new(&[Kind::Text]);
        rows.text("\"q\" back\\slash\nline\u{1} caf\u{e9} \u{1f600}");
        let json = rows.json();
        assert_eq!(json, r#"[{"1":"\"q\" back\\slash\nline\u0001 café 😀"}]"#);
        let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            parsed[0]["1"],
            "\"q\" back\\slash\nline\u{1} caf\u{e9} \u{1f600}"
        );
    }

    #[test]
    fn elsewhere_a_batch_is_a_values_list_typed_by_its_first_row() {
        let mut numbered = Sql::new("INSERT INTO t (k, n) ");
        numbered.insert_rows_in(two_columns(&[("a", None), ("b", Some(2))]), Form::Numbered);
        assert_eq!(
            numbered.text,
            "INSERT INTO t (k, n) VALUES (CAST($1 AS TEXT), CAST($2 AS BIGINT)), ($3, $4)"
        );
        assert_eq!(numbered.args.len(), 4);
        let mut anonymous = Sql::new("SELECT * FROM ");
        anonymous.rows_as_in(
            two_columns(&[("a", Some(1)), ("b", None)]),
            "v",
            Form::Anonymous,
        );
        assert_eq!(
            anonymous.text,
            "SELECT * FROM (VALUES ($1, $2), ($3, $4)) AS v"
        );
        let values: Vec<String> = anonymous.args.iter().map(|a| format!("{a:?}")).collect();
        assert_eq!(values, ["Text(\"a\")", "Int(1)", "Text(\"b\")", "NullInt"]);
    }

    #[test]
    fn a_batch_with_a_missing_or_misplaced_value_is_not_well_formed() {
        assert!(two_columns(&[("a", Some(1)), ("b", None)]).well_formed());
        let mut short = Rows::new(&[Kind::Text, Kind::Int]);
        short.text("a").int(1).text("b");
        assert!(!short.well_formed());
        let mut swapped = Rows::new(&[Kind::Text, Kind::Int]);
        swapped.int(1).text("a");
        assert!(!swapped.well_formed());
        assert!(!Rows::new(&[Kind::Text]).well_formed(), "no rows");
    }

    #[test]
    fn a_text_set_on_postgresql_is_a_plain_list() {
        let mut plain = Sql::new("SELECT 1 WHERE x IN ");
        plain.text_set_in(["a", "b"], Form::PostgresJson);
        assert_eq!(plain.text, "SELECT 1 WHERE x IN ($1, $2)");
        assert!(!plain.planned_each_run);
    }
}
