//! Content template rows; `types` and `variables` are stored as JSON text.

use super::{int, text, Sql, Store};
use crate::domain::content::{parse_default_variables, ContentTemplate, ContentTypes};
use crate::domain::paging::PageRequest;
use crate::error::{Error, Result};
use sqlx::any::AnyRow;

const COLUMNS: &str =
    "sid, account_sid, friendly_name, language, variables, types, date_created, date_updated";

fn json_column(row: &AnyRow, column: &str) -> Result<serde_json::Value> {
    serde_json::from_str(&text(row, column)?)
        .map_err(|e| Error::internal(format!("content_templates.{column}: {e}")))
}

fn decode(row: &AnyRow) -> Result<ContentTemplate> {
    Ok(ContentTemplate {
        sid: text(row, "sid")?,
        account_sid: text(row, "account_sid")?,
        friendly_name: text(row, "friendly_name")?,
        language: text(row, "language")?,
        variables: parse_default_variables(Some(&json_column(row, "variables")?))?,
        types: ContentTypes::parse(&json_column(row, "types")?)?,
        date_created: int(row, "date_created")?,
        date_updated: int(row, "date_updated")?,
    })
}

impl Store {
    /// Inserts a template unless its account holds `cap` already (false), counted with the
    /// account's row locked.
    pub async fn insert_content_capped(
        &self,
        template: &ContentTemplate,
        cap: u32,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        if !super::caps::below_cap(&mut tx, &template.account_sid, "content_templates", cap).await?
        {
            return Ok(false);
        }
        let variables = serde_json::to_string(&template.variables)
            .map_err(|e| Error::internal(e.to_string()))?;
        let mut sql = Sql::new(&format!(
            "INSERT INTO content_templates ({COLUMNS}) VALUES ("
        ));
        sql.text(template.sid.clone())
            .push(", ")
            .text(template.account_sid.clone())
            .push(", ")
            .text(template.friendly_name.clone())
            .push(", ")
            .text(template.language.clone())
            .push(", ")
            .text(variables)
            .push(", ")
            .text(template.types.to_json().to_string())
            .push(", ")
            .int(template.date_created)
            .push(", ")
            .int(template.date_updated)
            .push(")");
        sql.query().execute(tx.conn()?).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn content(&self, account_sid: &str, sid: &str) -> Result<Option<ContentTemplate>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM content_templates WHERE account_sid = $1 AND sid = $2"
        )))
        .bind(account_sid.to_string())
        .bind(sid.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(decode).transpose()
    }

    pub async fn list_content(
        &self,
        account_sid: &str,
        page: &PageRequest,
    ) -> Result<Vec<ContentTemplate>> {
        let mut sql = Sql::new(&format!(
            "SELECT {COLUMNS} FROM content_templates WHERE account_sid = "
        ));
        sql.text(account_sid).page(page);
        let rows = sql.query().fetch_all(self.pool()).await?;
        rows.iter().map(decode).collect()
    }

    /// Deletes a template; returns whether it existed. Messages already sent keep their body.
    pub async fn delete_content(&self, account_sid: &str, sid: &str) -> Result<bool> {
        let done = self
            .write(
                sqlx::query("DELETE FROM content_templates WHERE account_sid = $1 AND sid = $2")
                    .bind(account_sid.to_string())
                    .bind(sid.to_string()),
            )
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
