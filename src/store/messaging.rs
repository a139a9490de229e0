//! Messaging Service rows and their sender pools.

use super::{int, opt_text, text, Sql, Store, Tx};
use crate::domain::messaging_service::MessagingService;
use crate::domain::paging::PageRequest;
use crate::error::{Error, Result};
use sqlx::any::AnyRow;

const COLUMNS: &str = "sid, account_sid, friendly_name, inbound_request_url, inbound_method, \
    fallback_url, fallback_method, status_callback, sticky_sender, mms_converter, smart_encoding, \
    scan_message_content, fallback_to_long_code, area_code_geomatch, validity_period, \
    synchronous_validation, usecase, use_inbound_webhook_on_number, date_created, date_updated";

fn decode(row: &AnyRow) -> Result<MessagingService> {
    let flag = |column: &str| int(row, column).map(|v| v != 0);
    Ok(MessagingService {
        sid: text(row, "sid")?,
        account_sid: text(row, "account_sid")?,
        friendly_name: text(row, "friendly_name")?,
        inbound_request_url: opt_text(row, "inbound_request_url")?,
        inbound_method: text(row, "inbound_method")?,
        fallback_url: opt_text(row, "fallback_url")?,
        fallback_method: text(row, "fallback_method")?,
        status_callback: opt_text(row, "status_callback")?,
        sticky_sender: flag("sticky_sender")?,
        mms_converter: flag("mms_converter")?,
        smart_encoding: flag("smart_encoding")?,
        scan_message_content: text(row, "scan_message_content")?,
        fallback_to_long_code: flag("fallback_to_long_code")?,
        area_code_geomatch: flag("area_code_geomatch")?,
        validity_period: int(row, "validity_period")?,
        synchronous_validation: flag("synchronous_validation")?,
        usecase: text(row, "usecase")?,
        use_inbound_webhook_on_number: flag("use_inbound_webhook_on_number")?,
        date_created: int(row, "date_created")?,
        date_updated: int(row, "date_updated")?,
    })
}

fn push_opt(sql: &mut Sql, value: &Option<String>) {
    match value {
        Some(v) => sql.text(v.clone()),
        None => sql.push("NULL"),
    };
}

/// A number or short code in a service's pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PooledNumber {
    pub sid: String,
    pub account_sid: String,
    pub service_sid: String,
    pub phone_number: String,
    pub iso_country: String,
    pub number_type: String,
    pub sms: bool,
    pub mms: bool,
    pub voice: bool,
    pub added: i64,
    pub date_updated: i64,
}

fn decode_pooled(row: &AnyRow) -> Result<PooledNumber> {
    Ok(PooledNumber {
        sid: text(row, "sid")?,
        account_sid: text(row, "account_sid")?,
        service_sid: text(row, "messaging_service_sid")?,
        phone_number: text(row, "phone_number")?,
        iso_country: text(row, "iso_country")?,
        number_type: text(row, "number_type")?,
        sms: int(row, "cap_sms")? != 0,
        mms: int(row, "cap_mms")? != 0,
        voice: int(row, "cap_voice")? != 0,
        added: int(row, "service_added_at")?,
        date_updated: int(row, "date_updated")?,
    })
}

const POOLED_COLUMNS: &str = "sid, account_sid, messaging_service_sid, phone_number, iso_country, \
    number_type, cap_sms, cap_mms, cap_voice, service_added_at, date_updated";

/// An alphanumeric sender ID in a service's pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlphaSender {
    pub sid: String,
    pub account_sid: String,
    pub service_sid: String,
    pub alpha_sender: String,
    pub date_created: i64,
    pub date_updated: i64,
}

fn decode_alpha(row: &AnyRow) -> Result<AlphaSender> {
    Ok(AlphaSender {
        sid: text(row, "sid")?,
        account_sid: text(row, "account_sid")?,
        service_sid: text(row, "service_sid")?,
        alpha_sender: text(row, "alpha_sender")?,
        date_created: int(row, "date_created")?,
        date_updated: int(row, "date_updated")?,
    })
}

/// Why a number could not join a pool.
#[derive(Debug, PartialEq, Eq)]
pub enum JoinOutcome {
    Joined(PooledNumber),
    /// Not a number (or short code) this account holds.
    NotOwned,
    /// Already in a service: this one (`true`) or another.
    AlreadyPooled {
        same_service: bool,
    },
    PoolFull,
}

/// Inserts a service inside an open transaction (used for default services too).
pub(crate) async fn insert_service(tx: &mut Tx<'_>, s: &MessagingService) -> Result<()> {
    let mut sql = Sql::new(&format!(
        "INSERT INTO messaging_services ({COLUMNS}) VALUES ("
    ));
    sql.text(s.sid.clone())
        .push(", ")
        .text(s.account_sid.clone())
        .push(", ")
        .text(s.friendly_name.clone())
        .push(", ");
    push_opt(&mut sql, &s.inbound_request_url);
    sql.push(", ").text(s.inbound_method.clone()).push(", ");
    push_opt(&mut sql, &s.fallback_url);
    sql.push(", ").text(s.fallback_method.clone()).push(", ");
    push_opt(&mut sql, &s.status_callback);
    sql.push(", ")
        .int(i64::from(s.sticky_sender))
        .push(", ")
        .int(i64::from(s.mms_converter))
        .push(", ")
        .int(i64::from(s.smart_encoding))
        .push(", ")
        .text(s.scan_message_content.clone())
        .push(", ")
        .int(i64::from(s.fallback_to_long_code))
        .push(", ")
        .int(i64::from(s.area_code_geomatch))
        .push(", ")
        .int(s.validity_period)
        .push(", ")
        .int(i64::from(s.synchronous_validation))
        .push(", ")
        .text(s.usecase.clone())
        .push(", ")
        .int(i64::from(s.use_inbound_webhook_on_number))
        .push(", ")
        .int(s.date_created)
        .push(", ")
        .int(s.date_updated)
        .push(")");
    sql.query().execute(tx.conn()?).await?;
    Ok(())
}

/// Takes a number out of whatever service holds it (on transfer or release).
pub(crate) fn leave_service_sql() -> &'static str {
    "messaging_service_sid = NULL, service_added_at = NULL"
}

impl Store {
    /// Inserts a service unless its account holds `cap` services already (false), counted
    /// as `below_cap` does.
    pub async fn insert_service_capped(
        &self,
        service: &MessagingService,
        cap: u32,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        if !super::caps::below_cap(&mut tx, &service.account_sid, "messaging_services", cap).await?
        {
            return Ok(false);
        }
        insert_service(&mut tx, service).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn service(&self, account_sid: &str, sid: &str) -> Result<Option<MessagingService>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM messaging_services WHERE account_sid = $1 AND sid = $2"
        )))
        .bind(account_sid.to_string())
        .bind(sid.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(decode).transpose()
    }

    /// A service with the size of its sender pool, in one read (the send path needs both).
    pub async fn service_with_pool_size(
        &self,
        account_sid: &str,
        sid: &str,
    ) -> Result<Option<(MessagingService, i64)>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS}, \
             (SELECT COUNT(*) FROM phone_numbers WHERE messaging_service_sid = $2) \
             + (SELECT COUNT(*) FROM alpha_senders WHERE service_sid = $2) AS pool_size \
             FROM messaging_services WHERE account_sid = $1 AND sid = $2"
        )))
        .bind(account_sid.to_string())
        .bind(sid.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref()
            .map(|r| Ok((decode(r)?, super::int(r, "pool_size")?)))
            .transpose()
    }

    pub async fn list_services(
        &self,
        account_sid: &str,
        page: &PageRequest,
    ) -> Result<Vec<MessagingService>> {
        let mut sql = Sql::new(&format!(
            "SELECT {COLUMNS} FROM messaging_services WHERE account_sid = "
        ));
        sql.text(account_sid).page(page);
        let rows = sql.query().fetch_all(self.pool()).await?;
        rows.iter().map(decode).collect()
    }

    /// Writes every setting of `service` (already validated and merged).
    pub async fn save_service(&self, s: &MessagingService) -> Result<()> {
        let mut sql = Sql::new("UPDATE messaging_services SET friendly_name = ");
        sql.text(s.friendly_name.clone())
            .push(", inbound_request_url = ");
        push_opt(&mut sql, &s.inbound_request_url);
        sql.push(", inbound_method = ")
            .text(s.inbound_method.clone())
            .push(", fallback_url = ");
        push_opt(&mut sql, &s.fallback_url);
        sql.push(", fallback_method = ")
            .text(s.fallback_method.clone())
            .push(", status_callback = ");
        push_opt(&mut sql, &s.status_callback);
        sql.push(", sticky_sender = ")
            .int(i64::from(s.sticky_sender))
            .push(", mms_converter = ")
            .int(i64::from(s.mms_converter))
            .push(", smart_encoding = ")
            .int(i64::from(s.smart_encoding))
            .push(", scan_message_content = ")
            .text(s.scan_message_content.clone())
            .push(", fallback_to_long_code = ")
            .int(i64::from(s.fallback_to_long_code))
            .push(", area_code_geomatch = ")
            .int(i64::from(s.area_code_geomatch))
            .push(", validity_period = ")
            .int(s.validity_period)
            .push(", synchronous_validation = ")
            .int(i64::from(s.synchronous_validation))
            .push(", usecase = ")
            .text(s.usecase.clone())
            .push(", use_inbound_webhook_on_number = ")
            .int(i64::from(s.use_inbound_webhook_on_number))
            .push(", date_updated = ")
            .int(s.date_updated)
            .push(" WHERE account_sid = ")
            .text(s.account_sid.clone())
            .push(" AND sid = ")
            .text(s.sid.clone());
        self.write(sql.query()).await?;
        Ok(())
    }

    /// Deletes a service and frees its senders, in one transaction.
    pub async fn delete_service(&self, account_sid: &str, sid: &str) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        // Nothing of another account's service may be touched: check ownership first.
        let owned =
            sqlx::query("SELECT sid FROM messaging_services WHERE account_sid = $1 AND sid = $2")
                .bind(account_sid.to_string())
                .bind(sid.to_string())
                .fetch_optional(tx.conn()?)
                .await?
                .is_some();
        if !owned {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE phone_numbers SET {} WHERE messaging_service_sid = $1",
            leave_service_sql()
        )))
        .bind(sid.to_string())
        .execute(tx.conn()?)
        .await?;
        sqlx::query("DELETE FROM service_opt_out_settings WHERE service_sid = $1")
            .bind(sid.to_string())
            .execute(tx.conn()?)
            .await?;
        sqlx::query("DELETE FROM a2p_campaigns WHERE messaging_service_sid = $1")
            .bind(sid.to_string())
            .execute(tx.conn()?)
            .await?;
        sqlx::query("DELETE FROM alpha_senders WHERE service_sid = $1")
            .bind(sid.to_string())
            .execute(tx.conn()?)
            .await?;
        let deleted =
            sqlx::query("DELETE FROM messaging_services WHERE account_sid = $1 AND sid = $2")
                .bind(account_sid.to_string())
                .bind(sid.to_string())
                .execute(tx.conn()?)
                .await?
                .rows_affected();
        tx.commit().await?;
        Ok(deleted > 0)
    }

    /// Adds a number (`short_code` false) or short code the account holds to a service. The
    /// service row is written first so concurrent joins serialize and the pool limit holds.
    pub async fn join_pool(
        &self,
        account_sid: &str,
        service_sid: &str,
        number_sid: &str,
        short_code: bool,
        max_pool: i64,
        now: i64,
    ) -> Result<JoinOutcome> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE messaging_services SET date_updated = date_updated WHERE sid = $1")
            .bind(service_sid.to_string())
            .execute(tx.conn()?)
            .await?;
        let kind_condition = if short_code {
            "number_type = 'short-code'"
        } else {
            "number_type <> 'short-code'"
        };
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT messaging_service_sid FROM phone_numbers WHERE account_sid = $1 AND sid = $2 AND {kind_condition}"
        )))
        .bind(account_sid.to_string())
        .bind(number_sid.to_string())
        .fetch_optional(tx.conn()?)
        .await?;
        let Some(row) = row else {
            return Ok(JoinOutcome::NotOwned);
        };
        if let Some(current) = opt_text(&row, "messaging_service_sid")? {
            return Ok(JoinOutcome::AlreadyPooled {
                same_service: current == service_sid,
            });
        }
        let size: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM phone_numbers WHERE messaging_service_sid = $1",
        )
        .bind(service_sid.to_string())
        .fetch_one(tx.conn()?)
        .await?;
        if size >= max_pool {
            return Ok(JoinOutcome::PoolFull);
        }
        sqlx::query(
            "UPDATE phone_numbers SET messaging_service_sid = $1, service_added_at = $2 \
             WHERE account_sid = $3 AND sid = $4 AND messaging_service_sid IS NULL",
        )
        .bind(service_sid.to_string())
        .bind(now)
        .bind(account_sid.to_string())
        .bind(number_sid.to_string())
        .execute(tx.conn()?)
        .await?;
        tx.commit().await?;
        let pooled = self
            .pooled_number(account_sid, service_sid, number_sid, short_code)
            .await?
            .ok_or_else(|| Error::internal("pooled number vanished"))?;
        Ok(JoinOutcome::Joined(pooled))
    }

    /// A pool member by SID, or by its number (Twilio also accepts the E.164 form).
    pub async fn pooled_number(
        &self,
        account_sid: &str,
        service_sid: &str,
        sid_or_number: &str,
        short_code: bool,
    ) -> Result<Option<PooledNumber>> {
        let kind_condition = if short_code {
            "number_type = 'short-code'"
        } else {
            "number_type <> 'short-code'"
        };
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {POOLED_COLUMNS} FROM phone_numbers WHERE account_sid = $1 AND messaging_service_sid = $2 \
             AND (sid = $3 OR phone_number = $3) AND {kind_condition}"
        )))
        .bind(account_sid.to_string())
        .bind(service_sid.to_string())
        .bind(sid_or_number.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(decode_pooled).transpose()
    }

    pub async fn list_pooled_numbers(
        &self,
        service_sid: &str,
        short_code: bool,
        page: &PageRequest,
    ) -> Result<Vec<PooledNumber>> {
        // Pool members are ordered by when they joined the service.
        let mut sql = Sql::new(&format!(
            "SELECT {POOLED_COLUMNS} FROM phone_numbers WHERE messaging_service_sid = "
        ));
        sql.text(service_sid).push(if short_code {
            " AND number_type = 'short-code'"
        } else {
            " AND number_type <> 'short-code'"
        });
        sql.page_by(page, "service_added_at");
        let rows = sql.query().fetch_all(self.pool()).await?;
        rows.iter().map(decode_pooled).collect()
    }

    /// Takes a number or short code out of a service's pool.
    pub async fn leave_pool(
        &self,
        account_sid: &str,
        service_sid: &str,
        sid_or_number: &str,
        short_code: bool,
    ) -> Result<bool> {
        let kind_condition = if short_code {
            "number_type = 'short-code'"
        } else {
            "number_type <> 'short-code'"
        };
        let done = self
            .write(
                sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE phone_numbers SET {} WHERE account_sid = $1 AND messaging_service_sid = $2 \
             AND (sid = $3 OR phone_number = $3) AND {kind_condition}",
            leave_service_sql()
        )))
                .bind(account_sid.to_string())
                .bind(service_sid.to_string())
                .bind(sid_or_number.to_string()),
            )
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Adds an alphanumeric sender ID; `None` when the service already has it.
    pub async fn add_alpha_sender(&self, alpha: &AlphaSender) -> Result<Option<AlphaSender>> {
        let mut tx = self.begin_write().await?;
        let exists: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM alpha_senders WHERE service_sid = $1 AND alpha_sender = $2",
        )
        .bind(alpha.service_sid.clone())
        .bind(alpha.alpha_sender.clone())
        .fetch_one(tx.conn()?)
        .await?;
        if exists > 0 {
            return Ok(None);
        }
        sqlx::query(
            "INSERT INTO alpha_senders (sid, account_sid, service_sid, alpha_sender, date_created, date_updated) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(alpha.sid.clone())
        .bind(alpha.account_sid.clone())
        .bind(alpha.service_sid.clone())
        .bind(alpha.alpha_sender.clone())
        .bind(alpha.date_created)
        .bind(alpha.date_updated)
        .execute(tx.conn()?)
        .await?;
        tx.commit().await?;
        Ok(Some(alpha.clone()))
    }

    pub async fn alpha_sender(&self, service_sid: &str, sid: &str) -> Result<Option<AlphaSender>> {
        let row = sqlx::query(
            "SELECT sid, account_sid, service_sid, alpha_sender, date_created, date_updated \
             FROM alpha_senders WHERE service_sid = $1 AND sid = $2",
        )
        .bind(service_sid.to_string())
        .bind(sid.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(decode_alpha).transpose()
    }

    pub async fn list_alpha_senders(
        &self,
        service_sid: &str,
        page: &PageRequest,
    ) -> Result<Vec<AlphaSender>> {
        let mut sql = Sql::new(
            "SELECT sid, account_sid, service_sid, alpha_sender, date_created, date_updated FROM alpha_senders WHERE service_sid = ",
        );
        sql.text(service_sid).page(page);
        let rows = sql.query().fetch_all(self.pool()).await?;
        rows.iter().map(decode_alpha).collect()
    }

    pub async fn delete_alpha_sender(&self, service_sid: &str, sid: &str) -> Result<bool> {
        let done = self
            .write(
                sqlx::query("DELETE FROM alpha_senders WHERE service_sid = $1 AND sid = $2")
                    .bind(service_sid.to_string())
                    .bind(sid.to_string()),
            )
            .await?;
        Ok(done.rows_affected() > 0)
    }
}

impl Store {
    /// How many senders (numbers, short codes, alpha IDs) a service's pool holds.
    pub async fn pool_size(&self, service_sid: &str) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM phone_numbers WHERE messaging_service_sid = $1) \
             + (SELECT COUNT(*) FROM alpha_senders WHERE service_sid = $1)",
        )
        .bind(service_sid.to_string())
        .fetch_one(self.pool())
        .await?)
    }

    /// Every sender of a service's pool, for sender selection.
    pub async fn pool_senders(
        &self,
        service_sid: &str,
    ) -> Result<Vec<crate::domain::sender::Sender>> {
        use crate::domain::sender::{Sender, SenderKind};
        let rows = sqlx::query(
            "SELECT phone_number, iso_country, number_type, cap_sms, cap_mms FROM phone_numbers \
             WHERE messaging_service_sid = $1 ORDER BY service_added_at, sid",
        )
        .bind(service_sid.to_string())
        .fetch_all(self.pool())
        .await?;
        let mut senders = Vec::with_capacity(rows.len());
        for row in &rows {
            let kind = match text(row, "number_type")?.as_str() {
                "short-code" => SenderKind::ShortCode,
                "toll-free" => SenderKind::TollFree,
                _ => SenderKind::LongCode,
            };
            senders.push(Sender {
                address: text(row, "phone_number")?,
                kind,
                iso_country: Some(text(row, "iso_country")?),
                sms: int(row, "cap_sms")? != 0,
                mms: int(row, "cap_mms")? != 0,
            });
        }
        let alphas: Vec<String> = sqlx::query_scalar("SELECT alpha_sender FROM alpha_senders WHERE service_sid = $1 ORDER BY date_created, sid")
            .bind(service_sid.to_string())
            .fetch_all(self.pool())
            .await?;
        senders.extend(alphas.into_iter().map(|address| Sender {
            address,
            kind: SenderKind::Alpha,
            iso_country: None,
            sms: true,
            mms: false,
        }));
        Ok(senders)
    }

    /// The sender `address` if the account holds it: one of its numbers or short codes, or an
    /// alphanumeric ID in one of its services.
    pub async fn account_sender(
        &self,
        account_sid: &str,
        address: &str,
    ) -> Result<Option<crate::domain::sender::Sender>> {
        use crate::domain::sender::{Sender, SenderKind};
        let row = sqlx::query(
            "SELECT phone_number, iso_country, number_type, cap_sms, cap_mms FROM phone_numbers \
             WHERE account_sid = $1 AND phone_number = $2",
        )
        .bind(account_sid.to_string())
        .bind(address.to_string())
        .fetch_optional(self.pool())
        .await?;
        if let Some(row) = row {
            let kind = match text(&row, "number_type")?.as_str() {
                "short-code" => SenderKind::ShortCode,
                "toll-free" => SenderKind::TollFree,
                _ => SenderKind::LongCode,
            };
            return Ok(Some(Sender {
                address: address.to_string(),
                kind,
                iso_country: Some(text(&row, "iso_country")?),
                sms: int(&row, "cap_sms")? != 0,
                mms: int(&row, "cap_mms")? != 0,
            }));
        }
        let alpha: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM alpha_senders WHERE account_sid = $1 AND alpha_sender = $2",
        )
        .bind(account_sid.to_string())
        .bind(address.to_string())
        .fetch_one(self.pool())
        .await?;
        Ok((alpha > 0).then(|| Sender {
            address: address.to_string(),
            kind: SenderKind::Alpha,
            iso_country: None,
            sms: true,
            mms: false,
        }))
    }
}
