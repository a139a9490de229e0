//! A small builder for queries whose WHERE clause depends on the request (list filters,
//! keyset cursors): it numbers `$n` placeholders and keeps the values to bind in order.

use crate::domain::paging::PageRequest;
use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, AssertSqlSafe};

#[derive(Debug, Clone)]
enum Arg {
    Text(String),
    Int(i64),
}

#[derive(Debug, Default)]
pub struct Sql {
    text: String,
    args: Vec<Arg>,
}

impl Sql {
    pub fn new(head: &str) -> Sql {
        Sql {
            text: head.to_string(),
            args: Vec::new(),
        }
    }

    pub fn push(&mut self, fragment: &str) -> &mut Self {
        self.text.push_str(fragment);
        self
    }

    /// Appends a placeholder bound to a text value.
    pub fn text(&mut self, value: impl Into<String>) -> &mut Self {
        self.args.push(Arg::Text(value.into()));
        let n = self.args.len();
        self.text.push_str(&format!("${n}"));
        self
    }

    /// Appends a placeholder bound to an integer value.
    pub fn int(&mut self, value: i64) -> &mut Self {
        self.args.push(Arg::Int(value));
        let n = self.args.len();
        self.text.push_str(&format!("${n}"));
        self
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

    pub fn query(&self) -> Query<'_, Any, AnyArguments> {
        let mut query = sqlx::query(AssertSqlSafe(self.text.clone()));
        for arg in &self.args {
            query = match arg {
                Arg::Text(v) => query.bind(v.clone()),
                Arg::Int(v) => query.bind(*v),
            };
        }
        query
    }
}
