//! API key rows. Only the hash of a secret is stored.

use super::{int, opt_text, text, Sql, Store};
use crate::domain::credential::ApiKey;
use crate::domain::paging::PageRequest;
use crate::error::Result;
use sqlx::any::AnyRow;

const COLUMNS: &str = "sid, account_sid, friendly_name, secret_hash, date_created, date_updated";

fn decode(row: &AnyRow) -> Result<ApiKey> {
    Ok(ApiKey {
        sid: text(row, "sid")?,
        account_sid: text(row, "account_sid")?,
        friendly_name: opt_text(row, "friendly_name")?,
        secret_hash: text(row, "secret_hash")?,
        date_created: int(row, "date_created")?,
        date_updated: int(row, "date_updated")?,
    })
}

impl Store {
    /// Inserts a key unless its account holds `cap` keys already (false): counted with the
    /// account's row locked, so keys created at once cannot pass the cap.
    pub async fn insert_key_capped(&self, key: &ApiKey, cap: u32) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        if !super::caps::below_cap(&mut tx, &key.account_sid, "api_keys", cap).await? {
            return Ok(false);
        }
        key_insert(key).query().execute(tx.conn()?).await?;
        tx.commit().await?;
        Ok(true)
    }
}

/// The statement that inserts `key`.
fn key_insert(key: &ApiKey) -> Sql {
    let mut sql = Sql::new(&format!("INSERT INTO api_keys ({COLUMNS}) VALUES ("));
    sql.text(key.sid.clone())
        .push(", ")
        .text(key.account_sid.clone())
        .push(", ");
    match &key.friendly_name {
        Some(name) => sql.text(name.clone()),
        None => sql.push("NULL"),
    };
    sql.push(", ")
        .text(key.secret_hash.clone())
        .push(", ")
        .int(key.date_created)
        .push(", ")
        .int(key.date_updated)
        .push(")");
    sql
}

impl Store {
    /// A key by SID alone: authentication needs it before the account is known.
    pub async fn key(&self, sid: &str) -> Result<Option<ApiKey>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM api_keys WHERE sid = $1"
        )))
        .bind(sid.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(decode).transpose()
    }

    /// A key of one account: every other query path is scoped by account.
    pub async fn account_key(&self, account_sid: &str, sid: &str) -> Result<Option<ApiKey>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM api_keys WHERE account_sid = $1 AND sid = $2"
        )))
        .bind(account_sid.to_string())
        .bind(sid.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(decode).transpose()
    }

    pub async fn list_keys(&self, account_sid: &str, page: &PageRequest) -> Result<Vec<ApiKey>> {
        let mut sql = Sql::new(&format!(
            "SELECT {COLUMNS} FROM api_keys WHERE account_sid = "
        ));
        sql.text(account_sid).page(page);
        let rows = sql.query().fetch_all(self.pool()).await?;
        rows.iter().map(decode).collect()
    }

    pub async fn rename_key(
        &self,
        account_sid: &str,
        sid: &str,
        friendly_name: &str,
        now: i64,
    ) -> Result<Option<ApiKey>> {
        self.write(sqlx::query(
            "UPDATE api_keys SET friendly_name = $1, date_updated = $2 WHERE account_sid = $3 AND sid = $4",
        )
        .bind(friendly_name.to_string())
        .bind(now)
        .bind(account_sid.to_string())
        .bind(sid.to_string())
        )
        .await?;
        self.account_key(account_sid, sid).await
    }

    /// Deletes a key; returns whether it existed.
    pub async fn delete_key(&self, account_sid: &str, sid: &str) -> Result<bool> {
        let done = self
            .write(
                sqlx::query("DELETE FROM api_keys WHERE account_sid = $1 AND sid = $2")
                    .bind(account_sid.to_string())
                    .bind(sid.to_string()),
            )
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
