//! Phone number rows: the inventory and the numbers accounts hold.

use super::{int, opt_text, text, Sql, Store, Tx};
use crate::domain::number::{
    Capabilities, IncomingNumber, InventoryNumber, NumberType, NUMBER_FIELDS,
};
use crate::domain::paging::PageRequest;
use crate::error::{Error, Result};
use sqlx::any::AnyRow;
use std::collections::BTreeMap;

const INVENTORY_COLUMNS: &str = "phone_number, iso_country, number_type, cap_sms, cap_mms, cap_voice, locality, region, postal_code, route";

fn config_columns() -> String {
    NUMBER_FIELDS
        .iter()
        .map(|f| f.column)
        .collect::<Vec<_>>()
        .join(", ")
}

fn decode_inventory(row: &AnyRow) -> Result<InventoryNumber> {
    let kind = text(row, "number_type")?;
    Ok(InventoryNumber {
        phone_number: text(row, "phone_number")?,
        iso_country: text(row, "iso_country")?,
        number_type: NumberType::parse(&kind)
            .ok_or_else(|| Error::internal(format!("bad stored number type {kind}")))?,
        capabilities: Capabilities {
            sms: int(row, "cap_sms")? != 0,
            mms: int(row, "cap_mms")? != 0,
            voice: int(row, "cap_voice")? != 0,
        },
        locality: opt_text(row, "locality")?,
        region: opt_text(row, "region")?,
        postal_code: opt_text(row, "postal_code")?,
        route: opt_text(row, "route")?,
    })
}

fn decode_incoming(row: &AnyRow) -> Result<IncomingNumber> {
    let mut config = BTreeMap::new();
    for field in NUMBER_FIELDS {
        if let Some(value) = opt_text(row, field.column)? {
            config.insert(field.column, value);
        }
    }
    Ok(IncomingNumber {
        sid: text(row, "sid")?,
        account_sid: text(row, "account_sid")?,
        inventory: decode_inventory(row)?,
        config,
        date_created: int(row, "date_created")?,
        date_updated: int(row, "date_updated")?,
    })
}

/// Search filters of AvailablePhoneNumbers.
#[derive(Debug, Default, Clone)]
pub struct AvailableFilter {
    pub iso_country: String,
    pub number_type: Option<NumberType>,
    pub area_code: Option<String>,
    /// A SQL LIKE pattern over the E.164 number (from `Contains`).
    pub like: Option<String>,
    pub sms: Option<bool>,
    pub mms: Option<bool>,
    pub voice: Option<bool>,
    pub region: Option<String>,
    pub postal_code: Option<String>,
    pub locality: Option<String>,
}

/// List filters of IncomingPhoneNumbers.
#[derive(Debug, Default, Clone)]
pub struct IncomingFilter {
    pub number_type: Option<NumberType>,
    /// A SQL LIKE pattern over the E.164 number.
    pub phone_number_like: Option<String>,
    pub friendly_name: Option<String>,
}

/// What to buy.
#[derive(Debug, Clone)]
pub enum PurchaseTarget {
    Number(String),
    AreaCode {
        area_code: String,
        number_type: Option<NumberType>,
    },
}

fn push_available_conditions(sql: &mut Sql, filter: &AvailableFilter) {
    sql.push(" WHERE account_sid IS NULL AND number_type <> 'short-code' AND iso_country = ")
        .text(filter.iso_country.clone());
    if let Some(kind) = filter.number_type {
        sql.push(" AND number_type = ").text(kind.as_str());
    }
    if let Some(area) = &filter.area_code {
        sql.push(" AND phone_number LIKE ")
            .text(format!("+1{area}%"));
    }
    if let Some(like) = &filter.like {
        sql.push(" AND phone_number LIKE ").text(like.clone());
    }
    for (flag, column) in [
        (filter.sms, "cap_sms"),
        (filter.mms, "cap_mms"),
        (filter.voice, "cap_voice"),
    ] {
        if let Some(flag) = flag {
            sql.push(&format!(" AND {column} = ")).int(i64::from(flag));
        }
    }
    for (value, column) in [
        (&filter.region, "region"),
        (&filter.postal_code, "postal_code"),
        (&filter.locality, "locality"),
    ] {
        if let Some(value) = value {
            sql.push(&format!(" AND LOWER({column}) = LOWER("))
                .text(value.clone())
                .push(")");
        }
    }
}

impl Store {
    /// Adds or refreshes inventory numbers in one transaction: all rows or none. A number an
    /// account holds keeps its owner and configuration; only its inventory attributes change.
    pub async fn upsert_inventory(&self, numbers: &[InventoryNumber], now: i64) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        for n in numbers {
            let mut sql = Sql::new(&format!(
                "INSERT INTO phone_numbers ({INVENTORY_COLUMNS}, imported_at) VALUES ("
            ));
            sql.text(n.phone_number.clone())
                .push(", ")
                .text(n.iso_country.clone())
                .push(", ")
                .text(n.number_type.as_str())
                .push(", ")
                .int(i64::from(n.capabilities.sms))
                .push(", ")
                .int(i64::from(n.capabilities.mms))
                .push(", ")
                .int(i64::from(n.capabilities.voice))
                .push(", ");
            for value in [&n.locality, &n.region, &n.postal_code, &n.route] {
                match value {
                    Some(v) => sql.text(v.clone()),
                    None => sql.push("NULL"),
                };
                sql.push(", ");
            }
            sql.int(now).push(
                ") ON CONFLICT (phone_number) DO UPDATE SET iso_country = excluded.iso_country, \
                 number_type = excluded.number_type, cap_sms = excluded.cap_sms, \
                 cap_mms = excluded.cap_mms, cap_voice = excluded.cap_voice, \
                 locality = excluded.locality, region = excluded.region, \
                 postal_code = excluded.postal_code, route = excluded.route",
            );
            sql.query().execute(tx.conn()?).await?;
        }
        tx.commit().await?;
        Ok(numbers.len() as u64)
    }

    pub async fn inventory_size(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM phone_numbers")
            .fetch_one(self.pool())
            .await?)
    }

    /// Countries with at least one available number, and the number types available there.
    pub async fn available_countries(&self) -> Result<Vec<(String, Vec<NumberType>)>> {
        let rows = sqlx::query(
            "SELECT DISTINCT iso_country, number_type FROM phone_numbers \
             WHERE account_sid IS NULL AND number_type <> 'short-code' ORDER BY iso_country, number_type",
        )
        .fetch_all(self.pool())
        .await?;
        let mut countries: Vec<(String, Vec<NumberType>)> = Vec::new();
        for row in &rows {
            let country = text(row, "iso_country")?;
            let kind = NumberType::parse(&text(row, "number_type")?);
            match countries.last_mut() {
                Some((c, kinds)) if *c == country => kinds.extend(kind),
                _ => countries.push((country, kind.into_iter().collect())),
            }
        }
        Ok(countries)
    }

    /// Available numbers matching `filter`, in number order.
    pub async fn search_available(
        &self,
        filter: &AvailableFilter,
        limit: u32,
        offset: u64,
    ) -> Result<Vec<InventoryNumber>> {
        let mut sql = Sql::new(&format!("SELECT {INVENTORY_COLUMNS} FROM phone_numbers"));
        push_available_conditions(&mut sql, filter);
        sql.push(" ORDER BY phone_number LIMIT ")
            .int(i64::from(limit))
            .push(" OFFSET ")
            .int(offset as i64);
        let rows = sql.query().fetch_all(self.pool()).await?;
        rows.iter().map(decode_inventory).collect()
    }

    /// Buys a number for `account_sid` with `config` (column → value). The claim is one
    /// conditional UPDATE (`account_sid IS NULL`), so of two concurrent buyers one wins.
    /// `None`: not in the inventory, already held, or none left for the area code.
    /// `default_name` names the number when `config` has no friendly name.
    // Each argument is one independent input of the purchase; a struct would only rename them.
    #[allow(clippy::too_many_arguments)]
    pub async fn purchase_number(
        &self,
        account_sid: &str,
        sid: &str,
        target: &PurchaseTarget,
        config: &BTreeMap<&'static str, String>,
        default_name: &(dyn Fn(&str) -> String + Sync),
        rental_prices: &crate::domain::usage::RentalPrices,
        now: i64,
    ) -> Result<Option<IncomingNumber>> {
        // An area-code purchase retries when another buyer takes the number it picked.
        for _ in 0..5 {
            let phone_number = match target {
                PurchaseTarget::Number(number) => {
                    let row = sqlx::query("SELECT number_type, account_sid FROM phone_numbers WHERE phone_number = $1")
                        .bind(number.clone())
                        .fetch_optional(self.pool())
                        .await?;
                    let Some(row) = row else {
                        return Ok(None);
                    };
                    if opt_text(&row, "account_sid")?.is_some() {
                        return Ok(None);
                    }
                    number.clone()
                }
                PurchaseTarget::AreaCode {
                    area_code,
                    number_type,
                } => {
                    let mut sql = Sql::new("SELECT phone_number FROM phone_numbers WHERE account_sid IS NULL AND number_type <> 'short-code'");
                    if let Some(kind) = number_type {
                        sql.push(" AND number_type = ").text(kind.as_str());
                    }
                    sql.push(" AND phone_number LIKE ")
                        .text(format!("+1{area_code}%"))
                        .push(" ORDER BY phone_number LIMIT 1");
                    match sql.query().fetch_optional(self.pool()).await? {
                        Some(row) => text(&row, "phone_number")?,
                        None => return Ok(None),
                    }
                }
            };
            let mut sql = Sql::new("UPDATE phone_numbers SET sid = ");
            sql.text(sid).push(", account_sid = ").text(account_sid);
            for field in NUMBER_FIELDS {
                sql.push(&format!(", {} = ", field.column));
                match config.get(field.column) {
                    Some(value) => sql.text(value.clone()),
                    None if field.column == "friendly_name" => {
                        sql.text(default_name(&phone_number))
                    }
                    None => sql.push("NULL"),
                };
            }
            sql.push(", date_created = ")
                .int(now)
                .push(", date_updated = ")
                .int(now)
                .push(" WHERE phone_number = ")
                .text(phone_number.clone())
                .push(" AND account_sid IS NULL AND number_type <> 'short-code'");
            let mut tx = self.begin_write().await?;
            if sql.query().execute(tx.conn()?).await?.rows_affected() == 1 {
                // The first month's rental is charged with the purchase.
                let number_type: String = sqlx::query_scalar(
                    "SELECT number_type FROM phone_numbers WHERE phone_number = $1",
                )
                .bind(phone_number.clone())
                .fetch_one(tx.conn()?)
                .await?;
                let (category, price) = rental_prices.for_type(&number_type);
                super::usage::start_rental(
                    &mut tx,
                    &phone_number,
                    account_sid,
                    category,
                    price,
                    now,
                )
                .await?;
                tx.commit().await?;
                let bought = self
                    .incoming_number(account_sid, sid)
                    .await?
                    .ok_or_else(|| Error::internal("bought number vanished"))?;
                return Ok(Some(bought));
            }
            tx.rollback().await?;
            if matches!(target, PurchaseTarget::Number(_)) {
                return Ok(None);
            }
        }
        Ok(None)
    }

    /// The type of an inventory number, if it exists (for Twilio's 21458 check).
    pub async fn inventory_type(&self, phone_number: &str) -> Result<Option<NumberType>> {
        let kind: Option<String> =
            sqlx::query_scalar("SELECT number_type FROM phone_numbers WHERE phone_number = $1")
                .bind(phone_number.to_string())
                .fetch_optional(self.pool())
                .await?;
        Ok(kind.as_deref().and_then(NumberType::parse))
    }

    pub async fn incoming_number(
        &self,
        account_sid: &str,
        sid: &str,
    ) -> Result<Option<IncomingNumber>> {
        let mut sql = Sql::new(&format!(
            "SELECT {INVENTORY_COLUMNS}, sid, account_sid, {}, date_created, date_updated FROM phone_numbers WHERE account_sid = ",
            config_columns()
        ));
        sql.text(account_sid)
            .push(" AND sid = ")
            .text(sid)
            .push(" AND number_type <> 'short-code'");
        let row = sql.query().fetch_optional(self.pool()).await?;
        row.as_ref().map(decode_incoming).transpose()
    }

    pub async fn list_incoming(
        &self,
        account_sid: &str,
        filter: &IncomingFilter,
        page: &PageRequest,
    ) -> Result<Vec<IncomingNumber>> {
        let mut sql = Sql::new(&format!(
            "SELECT {INVENTORY_COLUMNS}, sid, account_sid, {}, date_created, date_updated FROM phone_numbers WHERE account_sid = ",
            config_columns()
        ));
        sql.text(account_sid)
            .push(" AND number_type <> 'short-code'");
        if let Some(kind) = filter.number_type {
            sql.push(" AND number_type = ").text(kind.as_str());
        }
        if let Some(like) = &filter.phone_number_like {
            sql.push(" AND phone_number LIKE ").text(like.clone());
        }
        if let Some(name) = &filter.friendly_name {
            sql.push(" AND friendly_name = ").text(name.clone());
        }
        sql.page(page);
        let rows = sql.query().fetch_all(self.pool()).await?;
        rows.iter().map(decode_incoming).collect()
    }

    /// Applies configuration changes (column → new value, `None` clears) and, when
    /// `new_owner` is set, moves the number to that account keeping its configuration.
    pub async fn update_incoming(
        &self,
        account_sid: &str,
        sid: &str,
        changes: &[(&'static str, Option<String>)],
        new_owner: Option<&str>,
        carry_opt_outs: bool,
        now: i64,
    ) -> Result<Option<IncomingNumber>> {
        let mut tx = self.begin_write().await?;
        let mut sql = Sql::new("UPDATE phone_numbers SET date_updated = ");
        sql.int(now);
        for (column, value) in changes {
            sql.push(&format!(", {column} = "));
            match value {
                Some(v) => sql.text(v.clone()),
                None => sql.push("NULL"),
            };
        }
        if let Some(owner) = new_owner {
            // A moved number leaves its old account's Messaging Service.
            sql.push(", account_sid = ")
                .text(owner)
                .push(", ")
                .push(super::messaging::leave_service_sql());
        }
        sql.push(" WHERE account_sid = ")
            .text(account_sid)
            .push(" AND sid = ")
            .text(sid);
        if sql.query().execute(tx.conn()?).await?.rows_affected() == 0 {
            return Ok(None);
        }
        if let Some(owner) = new_owner {
            let row = sqlx::query("SELECT phone_number FROM phone_numbers WHERE sid = $1")
                .bind(sid.to_string())
                .fetch_one(tx.conn()?)
                .await?;
            let number = text(&row, "phone_number")?;
            super::usage::move_rental(&mut tx, &number, owner).await?;
            if carry_opt_outs {
                super::inbound::carry_opt_outs(&mut tx, &number, account_sid, owner).await?;
            }
        }
        tx.commit().await?;
        self.incoming_number(new_owner.unwrap_or(account_sid), sid)
            .await
    }

    /// Releases a number back to the inventory, clearing its configuration.
    pub async fn release_number(&self, account_sid: &str, sid: &str) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let released = release(&mut tx, Some(sid), account_sid).await?;
        tx.commit().await?;
        Ok(released > 0)
    }
}

/// Clears ownership and configuration of one number (`sid`) or of all an account holds.
pub(crate) async fn release(tx: &mut Tx<'_>, sid: Option<&str>, account_sid: &str) -> Result<u64> {
    // The rentals end with the numbers.
    let mut rentals = Sql::new(
        "DELETE FROM number_rentals WHERE phone_number IN (SELECT phone_number FROM phone_numbers WHERE account_sid = ",
    );
    rentals.text(account_sid);
    if let Some(sid) = sid {
        rentals.push(" AND sid = ").text(sid);
    }
    rentals.push(")");
    rentals.query().execute(tx.conn()?).await?;
    let mut sql = Sql::new("UPDATE phone_numbers SET sid = NULL, account_sid = NULL, date_created = NULL, date_updated = NULL, ");
    sql.push(super::messaging::leave_service_sql());
    for field in NUMBER_FIELDS {
        sql.push(&format!(", {} = NULL", field.column));
    }
    sql.push(" WHERE account_sid = ").text(account_sid);
    if let Some(sid) = sid {
        sql.push(" AND sid = ").text(sid);
    }
    Ok(sql.query().execute(tx.conn()?).await?.rows_affected())
}

impl Store {
    /// Gives an inventory short code to an account (the operator's act: Twilio provisions short
    /// codes through support, not the API). `None` when it is not an unassigned short code.
    pub async fn assign_short_code(
        &self,
        account_sid: &str,
        sid: &str,
        short_code: &str,
        rental_prices: &crate::domain::usage::RentalPrices,
        now: i64,
    ) -> Result<Option<String>> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE phone_numbers SET sid = $1, account_sid = $2, friendly_name = $3, \
             sms_method = 'POST', sms_fallback_method = 'POST', api_version = '2010-04-01', \
             date_created = $4, date_updated = $4 \
             WHERE phone_number = $3 AND number_type = 'short-code' AND account_sid IS NULL",
        )
        .bind(sid.to_string())
        .bind(account_sid.to_string())
        .bind(short_code.to_string())
        .bind(now)
        .execute(tx.conn()?)
        .await?;
        if done.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(None);
        }
        let (category, price) = rental_prices.for_type("short-code");
        super::usage::start_rental(&mut tx, short_code, account_sid, category, price, now).await?;
        tx.commit().await?;
        Ok(Some(sid.to_string()))
    }
}

impl Store {
    /// The account holding a number or short code, and the service it sits in.
    pub async fn number_holder(
        &self,
        phone_number: &str,
    ) -> Result<Option<(String, Option<String>)>> {
        let row = sqlx::query(
            "SELECT account_sid, messaging_service_sid FROM phone_numbers WHERE phone_number = $1 AND account_sid IS NOT NULL",
        )
        .bind(phone_number.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok((
                text(&r, "account_sid")?,
                opt_text(&r, "messaging_service_sid")?,
            ))
        })
        .transpose()
    }
}
