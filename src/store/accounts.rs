//! Account rows.

use super::{int, opt_text, text, Sql, Store};
use crate::domain::account::{Account, AccountStatus};
use crate::domain::messaging_service::MessagingService;
use crate::domain::paging::PageRequest;
use crate::error::{Error, Result};
use sqlx::any::AnyRow;

const COLUMNS: &str =
    "sid, owner_account_sid, friendly_name, status, auth_token, date_created, date_updated";
/// What reads select: `COLUMNS` and the flags new accounts take by default.
const READ_COLUMNS: &str =
    "sid, owner_account_sid, friendly_name, status, auth_token, date_created, date_updated, sandbox";

fn decode(row: &AnyRow) -> Result<Account> {
    let status = text(row, "status")?;
    Ok(Account {
        sid: text(row, "sid")?,
        owner_account_sid: opt_text(row, "owner_account_sid")?,
        friendly_name: text(row, "friendly_name")?,
        status: AccountStatus::parse(&status)
            .ok_or_else(|| Error::internal(format!("bad stored account status {status}")))?,
        auth_token: text(row, "auth_token")?,
        date_created: int(row, "date_created")?,
        date_updated: int(row, "date_updated")?,
        sandbox: int(row, "sandbox")? != 0,
    })
}

/// Filters of `ListAccount`.
#[derive(Debug, Default, Clone)]
pub struct AccountFilter {
    pub friendly_name: Option<String>,
    pub status: Option<AccountStatus>,
}

/// What stopped a subaccount from being created.
#[derive(Debug, PartialEq, Eq)]
pub enum CreateSubaccountOutcome {
    Created,
    CapReached,
    ParentMissing,
}

impl Store {
    /// Inserts the main account with its default Messaging Service.
    pub async fn insert_main_account(
        &self,
        account: &Account,
        default_service: &MessagingService,
    ) -> Result<()> {
        let mut sql = Sql::new(&format!(
            "INSERT INTO accounts ({COLUMNS}, account_type) VALUES ("
        ));
        sql.text(account.sid.clone())
            .push(", NULL, ")
            .text(account.friendly_name.clone())
            .push(", ")
            .text(account.status.as_str())
            .push(", ")
            .text(account.auth_token.clone())
            .push(", ")
            .int(account.date_created)
            .push(", ")
            .int(account.date_updated)
            .push(", 'Full')");
        let mut tx = self.begin_write().await?;
        sql.query().execute(tx.conn()?).await?;
        super::messaging::insert_service(&mut tx, default_service).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Inserts a subaccount unless its parent already has `cap` subaccounts. The parent row is
    /// written first so that concurrent creations for one parent serialize on it (a row lock on
    /// PostgreSQL, the write lock on SQLite) and the count cannot be overtaken.
    pub async fn create_subaccount(
        &self,
        account: &Account,
        default_service: &MessagingService,
        cap: u32,
    ) -> Result<CreateSubaccountOutcome> {
        let parent = account
            .owner_account_sid
            .clone()
            .ok_or_else(|| Error::internal("subaccount without owner"))?;
        let mut tx = self.begin_write().await?;
        let locked = sqlx::query("UPDATE accounts SET date_updated = date_updated WHERE sid = $1")
            .bind(parent.clone())
            .execute(tx.conn()?)
            .await?;
        if locked.rows_affected() == 0 {
            return Ok(CreateSubaccountOutcome::ParentMissing);
        }
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM accounts WHERE owner_account_sid = $1")
                .bind(parent.clone())
                .fetch_one(tx.conn()?)
                .await?;
        if count >= i64::from(cap) {
            return Ok(CreateSubaccountOutcome::CapReached);
        }
        let mut sql = Sql::new(&format!(
            "INSERT INTO accounts ({COLUMNS}, account_type) VALUES ("
        ));
        sql.text(account.sid.clone())
            .push(", ")
            .text(parent)
            .push(", ")
            .text(account.friendly_name.clone())
            .push(", ")
            .text(account.status.as_str())
            .push(", ")
            .text(account.auth_token.clone())
            .push(", ")
            .int(account.date_created)
            .push(", ")
            .int(account.date_updated)
            .push(", 'Full')");
        sql.query().execute(tx.conn()?).await?;
        super::messaging::insert_service(&mut tx, default_service).await?;
        tx.commit().await?;
        Ok(CreateSubaccountOutcome::Created)
    }

    /// Marks a subaccount sandbox or not; false if there is no such subaccount.
    pub async fn set_sandbox(&self, sid: &str, sandbox: bool, now: i64) -> Result<bool> {
        let done = self
            .write(
                sqlx::query(
                    "UPDATE accounts SET sandbox = $1, date_updated = $2 \
                     WHERE sid = $3 AND owner_account_sid IS NOT NULL",
                )
                .bind(i64::from(sandbox))
                .bind(now)
                .bind(sid.to_string()),
            )
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn account(&self, sid: &str) -> Result<Option<Account>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {READ_COLUMNS} FROM accounts WHERE sid = $1"
        )))
        .bind(sid.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(decode).transpose()
    }

    pub async fn main_account(&self) -> Result<Option<Account>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {READ_COLUMNS} FROM accounts WHERE owner_account_sid IS NULL ORDER BY date_created LIMIT 1"
        )))
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(decode).transpose()
    }

    /// The accounts `viewer` may see: itself and its subaccounts, filtered and paged.
    pub async fn list_accounts(
        &self,
        viewer: &str,
        filter: &AccountFilter,
        page: &PageRequest,
    ) -> Result<Vec<Account>> {
        let mut sql = Sql::new(&format!(
            "SELECT {READ_COLUMNS} FROM accounts WHERE (sid = "
        ));
        sql.text(viewer)
            .push(" OR owner_account_sid = ")
            .text(viewer)
            .push(")");
        if let Some(name) = &filter.friendly_name {
            sql.push(" AND friendly_name = ").text(name.clone());
        }
        if let Some(status) = filter.status {
            sql.push(" AND status = ").text(status.as_str());
        }
        sql.page(page);
        let rows = sql.query().fetch_all(self.pool()).await?;
        rows.iter().map(decode).collect()
    }

    /// Writes a new name and/or status; returns the updated row. Closing releases the
    /// account's phone numbers in the same transaction.
    pub async fn update_account(
        &self,
        sid: &str,
        friendly_name: Option<&str>,
        status: Option<AccountStatus>,
        now: i64,
    ) -> Result<Option<Account>> {
        let mut sql = Sql::new("UPDATE accounts SET date_updated = ");
        sql.int(now);
        if let Some(name) = friendly_name {
            sql.push(", friendly_name = ").text(name);
        }
        if let Some(status) = status {
            sql.push(", status = ").text(status.as_str());
        }
        sql.push(" WHERE sid = ").text(sid);
        let mut tx = self.begin_write().await?;
        sql.query().execute(tx.conn()?).await?;
        if status == Some(AccountStatus::Closed) {
            // A closed account's numbers go back to the inventory with the status change.
            super::numbers::release(&mut tx, None, sid).await?;
        }
        tx.commit().await?;
        self.account(sid).await
    }
}
