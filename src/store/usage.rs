//! Usage rows (per account, day and category), balance credits and number rentals.

use super::{int, text, Sql, Store, Tx};
use crate::domain::usage::{day_of, day_string, Money, RENTAL_PERIOD_DAYS};
use crate::error::{Error, Result};

/// Rows of a main account (`$1`) and its subaccounts.
const FAMILY: &str =
    "account_sid = $1 OR account_sid IN (SELECT sid FROM accounts WHERE owner_account_sid = $1)";

/// One increment of usage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRow {
    pub account_sid: String,
    pub day: String,
    pub category: String,
    pub count: i64,
    pub units: i64,
    pub price: Money,
}

impl UsageRow {
    pub fn at(
        account_sid: &str,
        micros: i64,
        category: &str,
        units: i64,
        price: Money,
    ) -> UsageRow {
        UsageRow {
            account_sid: account_sid.to_string(),
            day: day_string(day_of(micros)),
            category: category.to_string(),
            count: 1,
            units,
            price,
        }
    }
}

/// Adds usage rows inside `tx` (rows of one key are summed first).
pub(crate) async fn add_usage(tx: &mut Tx<'_>, rows: &[UsageRow]) -> Result<()> {
    tx.execute_all(usage_statements(rows)).await
}

/// The statements of `add_usage`.
pub(crate) fn usage_statements(rows: &[UsageRow]) -> Vec<Sql> {
    let mut statements = Vec::new();
    let mut summed: std::collections::BTreeMap<(&str, &str, &str), (i64, i64, i64)> =
        std::collections::BTreeMap::new();
    for r in rows {
        let entry = summed
            .entry((&r.account_sid, &r.day, &r.category))
            .or_default();
        entry.0 += r.count;
        entry.1 += r.units;
        entry.2 += r.price;
    }
    let summed: Vec<_> = summed.into_iter().collect();
    for chunk in summed.chunks(100) {
        let mut sql = Sql::new(
            "INSERT INTO usage_daily (account_sid, day, category, count, units, price) VALUES ",
        );
        for (i, ((account, day, category), (count, units, price))) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.push("(")
                .text(*account)
                .push(", ")
                .text(*day)
                .push(", ")
                .text(*category)
                .push(", ")
                .int(*count)
                .push(", ")
                .int(*units)
                .push(", ")
                .int(*price)
                .push(")");
        }
        sql.push(
            " ON CONFLICT (account_sid, day, category) DO UPDATE SET \
             count = usage_daily.count + excluded.count, \
             units = usage_daily.units + excluded.units, \
             price = usage_daily.price + excluded.price",
        );
        statements.push(sql);
    }
    statements
}

/// Starts renting a number inside `tx`: the first month is charged now.
pub(crate) async fn start_rental(
    tx: &mut Tx<'_>,
    phone_number: &str,
    account_sid: &str,
    category: &str,
    monthly_price: Money,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO number_rentals (phone_number, account_sid, category, monthly_price, next_charge_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (phone_number) DO UPDATE SET \
         account_sid = excluded.account_sid, category = excluded.category, \
         monthly_price = excluded.monthly_price, next_charge_at = excluded.next_charge_at",
    )
    .bind(phone_number.to_string())
    .bind(account_sid.to_string())
    .bind(category.to_string())
    .bind(monthly_price)
    .bind(now + RENTAL_PERIOD_DAYS * 86_400_000_000)
    .execute(tx.conn()?)
    .await?;
    add_usage(
        tx,
        &[UsageRow::at(account_sid, now, category, 1, monthly_price)],
    )
    .await
}

/// Moves a rental to the number's new owner (who pays from the next charge on).
pub(crate) async fn move_rental(
    tx: &mut Tx<'_>,
    phone_number: &str,
    account_sid: &str,
) -> Result<()> {
    sqlx::query("UPDATE number_rentals SET account_sid = $1 WHERE phone_number = $2")
        .bind(account_sid.to_string())
        .bind(phone_number.to_string())
        .execute(tx.conn()?)
        .await?;
    Ok(())
}

/// What the operator credited to a main account in all, on `executor`.
async fn credited_in<'e>(
    executor: impl sqlx::Executor<'e, Database = sqlx::Any>,
    main_sid: &str,
) -> Result<Money> {
    let credited: Option<i64> = sqlx::query_scalar(
        "SELECT CAST(SUM(amount) AS BIGINT) FROM balance_credits WHERE account_sid = $1",
    )
    .bind(main_sid.to_string())
    .fetch_one(executor)
    .await?;
    Ok(credited.unwrap_or(0))
}

/// `credited` minus what was spent, checked: out of range is an error, never a wrap or panic.
fn balance_of(credited: Money, spent: &[Option<i64>]) -> Result<Money> {
    spent
        .iter()
        .try_fold(credited, |balance, spent| {
            balance.checked_sub(spent.unwrap_or(0))
        })
        .ok_or_else(|| Error::internal("the balance is out of range"))
}

impl Store {
    /// Usage rows (day, category, count, units, price) of `accounts` between two days
    /// (`YYYY-MM-DD`, inclusive).
    pub async fn usage_rows(
        &self,
        accounts: &[String],
        first_day: &str,
        last_day: &str,
    ) -> Result<Vec<(String, String, i64, i64, Money)>> {
        if accounts.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = Sql::new(
            "SELECT day, category, CAST(SUM(count) AS BIGINT) AS count, \
             CAST(SUM(units) AS BIGINT) AS units, CAST(SUM(price) AS BIGINT) AS price \
             FROM usage_daily WHERE account_sid IN (",
        );
        for (i, account) in accounts.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.text(account.clone());
        }
        sql.push(") AND day >= ")
            .text(first_day)
            .push(" AND day <= ")
            .text(last_day)
            .push(" GROUP BY day, category");
        let rows = sql.query().fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| {
                Ok((
                    text(r, "day")?,
                    text(r, "category")?,
                    int(r, "count")?,
                    int(r, "units")?,
                    int(r, "price")?,
                ))
            })
            .collect()
    }

    /// The SIDs of a main account's subaccounts.
    pub async fn subaccount_sids(&self, main_sid: &str) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT sid FROM accounts WHERE owner_account_sid = $1")
            .bind(main_sid.to_string())
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(|r| text(r, "sid")).collect()
    }

    /// A main account's balance: what was credited minus what it and its subaccounts used.
    pub async fn balance(&self, main_sid: &str) -> Result<Money> {
        let used: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT CAST(SUM(price) AS BIGINT) FROM usage_daily WHERE {FAMILY}"
        )))
        .bind(main_sid.to_string())
        .fetch_one(self.pool())
        .await?;
        balance_of(self.credited(main_sid).await?, &[used])
    }

    /// What the operator credited to a main account in all.
    async fn credited(&self, main_sid: &str) -> Result<Money> {
        credited_in(self.pool(), main_sid).await
    }

    /// A main account's balance with its accepted outbound messages counted at their estimated
    /// price (sent or not): what the credit limit is checked against.
    pub async fn reserved_balance(&self, main_sid: &str) -> Result<Money> {
        let other: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT CAST(SUM(price) AS BIGINT) FROM usage_daily WHERE ({FAMILY}) \
             AND category NOT LIKE 'sms-outbound%' AND category NOT LIKE 'mms-outbound%'"
        )))
        .bind(main_sid.to_string())
        .fetch_one(self.pool())
        .await?;
        let outbound: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT CAST(SUM(outbound_spend) AS BIGINT) FROM account_month_counters WHERE {FAMILY}"
        )))
        .bind(main_sid.to_string())
        .fetch_one(self.pool())
        .await?;
        balance_of(self.credited(main_sid).await?, &[other, outbound])
    }

    /// Credits a main account, unless its credits would total more than `MAX_CREDITED` either
    /// way (checked in the inserting transaction, so two credits at once cannot pass it).
    pub async fn credit(&self, main_sid: &str, amount: Money, note: &str, now: i64) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let total = credited_in(tx.conn()?, main_sid)
            .await?
            .checked_add(amount)
            .filter(|total| total.abs() <= crate::domain::usage::MAX_CREDITED);
        if total.is_none() {
            return Err(Error::invalid(
                20001,
                format!(
                    "This credit would take the account's credits past {} either way",
                    crate::domain::usage::format_money(crate::domain::usage::MAX_CREDITED)
                ),
            ));
        }
        sqlx::query(
            "INSERT INTO balance_credits (id, account_sid, amount, note, date_created) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(crate::domain::sid::random_hex32())
        .bind(main_sid.to_string())
        .bind(amount)
        .bind(note.to_string())
        .bind(now)
        .execute(tx.conn()?)
        .await?;
        tx.commit().await
    }

    /// Charges the monthly rentals due at `now` (each charge in one transaction with its
    /// usage). A charge is taken by a conditional update, so with several nodes each rental
    /// period is charged once. Returns how many were charged.
    pub async fn charge_due_rentals(&self, now: i64, limit: i64) -> Result<usize> {
        // A read first: most rounds find nothing due and should not take the write lock.
        let due = sqlx::query(
            "SELECT phone_number, account_sid, category, monthly_price, next_charge_at \
             FROM number_rentals WHERE next_charge_at <= $1 ORDER BY next_charge_at LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        if due.is_empty() {
            return Ok(0);
        }
        let mut tx = self.begin_write().await?;
        let mut usage = Vec::new();
        for row in &due {
            let number = text(row, "phone_number")?;
            let due_at = int(row, "next_charge_at")?;
            let taken = sqlx::query(
                "UPDATE number_rentals SET next_charge_at = $1 \
                 WHERE phone_number = $2 AND next_charge_at = $3",
            )
            .bind(due_at + RENTAL_PERIOD_DAYS * 86_400_000_000)
            .bind(number)
            .bind(due_at)
            .execute(tx.conn()?)
            .await?
            .rows_affected()
                == 1;
            if taken {
                usage.push(UsageRow::at(
                    &text(row, "account_sid")?,
                    due_at,
                    &text(row, "category")?,
                    1,
                    int(row, "monthly_price")?,
                ));
            }
        }
        let charged = usage.len();
        add_usage(&mut tx, &usage).await?;
        tx.commit().await?;
        Ok(charged)
    }

    /// Starts rentals for numbers held without one (bought before billing existed): their
    /// first charge is one period from now.
    pub async fn backfill_rentals(
        &self,
        prices: &crate::domain::usage::RentalPrices,
        now: i64,
    ) -> Result<u64> {
        let rows = sqlx::query(
            "SELECT phone_number, account_sid, number_type FROM phone_numbers \
             WHERE account_sid IS NOT NULL \
             AND phone_number NOT IN (SELECT phone_number FROM number_rentals)",
        )
        .fetch_all(self.pool())
        .await?;
        let mut added = 0;
        for row in &rows {
            let (category, price) = prices.for_type(&text(row, "number_type")?);
            added += self.write(sqlx::query(
                "INSERT INTO number_rentals (phone_number, account_sid, category, monthly_price, next_charge_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (phone_number) DO NOTHING",
            )
            .bind(text(row, "phone_number")?)
            .bind(text(row, "account_sid")?)
            .bind(category.to_string())
            .bind(price)
            .bind(now + RENTAL_PERIOD_DAYS * 86_400_000_000)
            )
            .await?
            .rows_affected();
        }
        Ok(added)
    }
}
