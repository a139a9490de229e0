//! Test credential rows (see `domain::test_credentials`).

use super::{int, text, Store};
use crate::domain::test_credentials::TestCredentials;
use crate::error::Result;
use sqlx::any::AnyRow;

const COLUMNS: &str = "test_account_sid, account_sid, test_auth_token, date_created, date_updated";

fn decode(row: &AnyRow) -> Result<TestCredentials> {
    Ok(TestCredentials {
        test_account_sid: text(row, "test_account_sid")?,
        account_sid: text(row, "account_sid")?,
        test_auth_token: text(row, "test_auth_token")?,
        date_created: int(row, "date_created")?,
        date_updated: int(row, "date_updated")?,
    })
}

impl Store {
    /// The test credentials of `account_sid`, made from `fresh` if it has none yet (two nodes
    /// making them at once keep the first).
    pub async fn test_credentials(
        &self,
        account_sid: &str,
        fresh: &TestCredentials,
    ) -> Result<TestCredentials> {
        if let Some(existing) = self.test_credentials_of(account_sid).await? {
            return Ok(existing);
        }
        self.write(
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO test_credentials ({COLUMNS}) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (account_sid) DO NOTHING"
            )))
            .bind(fresh.test_account_sid.clone())
            .bind(account_sid.to_string())
            .bind(fresh.test_auth_token.clone())
            .bind(fresh.date_created)
            .bind(fresh.date_updated),
        )
        .await?;
        self.test_credentials_of(account_sid)
            .await?
            .ok_or_else(|| crate::error::Error::internal("test credentials were not stored"))
    }

    async fn test_credentials_of(&self, account_sid: &str) -> Result<Option<TestCredentials>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM test_credentials WHERE account_sid = $1"
        )))
        .bind(account_sid.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(decode).transpose()
    }

    /// The test credentials whose test account SID is `test_account_sid` (authentication).
    pub async fn test_credentials_by_sid(
        &self,
        test_account_sid: &str,
    ) -> Result<Option<TestCredentials>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM test_credentials WHERE test_account_sid = $1"
        )))
        .bind(test_account_sid.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(decode).transpose()
    }

    /// Gives `account_sid`'s test credentials a new token; false if it has none yet.
    pub async fn rotate_test_auth_token(
        &self,
        account_sid: &str,
        token: &str,
        now: i64,
    ) -> Result<bool> {
        let done = self
            .write(
                sqlx::query(
                    "UPDATE test_credentials SET test_auth_token = $1, date_updated = $2 WHERE account_sid = $3",
                )
                .bind(token.to_string())
                .bind(now)
                .bind(account_sid.to_string()),
            )
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
