//! A2P 10DLC registration rows (brands, campaigns), the accounts' event sinks, and the check
//! the dispatcher makes: which US long codes sit in a service with a verified campaign.
//! A status change and the event it produces commit together.

use super::outbox::enqueue_payload;
use super::rows::InboundTarget;
use super::rows::WebhookKind;
use super::{int, opt_int, opt_text, text, Sql, Store, Tx};
use crate::domain::a2p::{Brand, BrandStatus, Campaign, CampaignDetails, CampaignStatus};
use crate::domain::paging::PageRequest;
use crate::error::{Error, Result};
use sqlx::any::AnyRow;
use std::collections::HashSet;

const BRAND_COLUMNS: &str = "sid, account_sid, customer_profile_bundle_sid, \
    a2p_profile_bundle_sid, brand_type, status, tcr_id, failure_reason, failure_code, mock, \
    skip_automatic_sec_vet, date_created, date_updated";

const CAMPAIGN_COLUMNS: &str = "sid, account_sid, messaging_service_sid, \
    brand_registration_sid, usecase, campaign_status, campaign_id, failure_reason, failure_code, \
    mock, details, date_created, date_updated";

fn decode_brand(row: &AnyRow) -> Result<Brand> {
    let status = text(row, "status")?;
    Ok(Brand {
        sid: text(row, "sid")?,
        account_sid: text(row, "account_sid")?,
        customer_profile_bundle_sid: text(row, "customer_profile_bundle_sid")?,
        a2p_profile_bundle_sid: text(row, "a2p_profile_bundle_sid")?,
        brand_type: text(row, "brand_type")?,
        status: BrandStatus::parse(&status)
            .ok_or_else(|| Error::internal(format!("bad stored brand status {status}")))?,
        tcr_id: opt_text(row, "tcr_id")?,
        failure_reason: opt_text(row, "failure_reason")?,
        failure_code: opt_int(row, "failure_code")?,
        mock: int(row, "mock")? != 0,
        skip_automatic_sec_vet: int(row, "skip_automatic_sec_vet")? != 0,
        date_created: int(row, "date_created")?,
        date_updated: int(row, "date_updated")?,
    })
}

fn decode_campaign(row: &AnyRow) -> Result<Campaign> {
    let status = text(row, "campaign_status")?;
    let details: CampaignDetails = serde_json::from_str(&text(row, "details")?)
        .map_err(|e| Error::internal(format!("a2p_campaigns.details: {e}")))?;
    Ok(Campaign {
        sid: text(row, "sid")?,
        account_sid: text(row, "account_sid")?,
        messaging_service_sid: text(row, "messaging_service_sid")?,
        brand_registration_sid: text(row, "brand_registration_sid")?,
        usecase: text(row, "usecase")?,
        status: CampaignStatus::parse(&status)
            .ok_or_else(|| Error::internal(format!("bad stored campaign status {status}")))?,
        campaign_id: opt_text(row, "campaign_id")?,
        failure_reason: opt_text(row, "failure_reason")?,
        failure_code: opt_int(row, "failure_code")?,
        mock: int(row, "mock")? != 0,
        details,
        date_created: int(row, "date_created")?,
        date_updated: int(row, "date_updated")?,
    })
}

fn details_json(details: &CampaignDetails) -> Result<String> {
    serde_json::to_string(details).map_err(|e| Error::internal(e.to_string()))
}

/// A registration record whose status the operator changes, with the event it produces.
pub struct Review<'a> {
    pub sid: &'a str,
    /// The status the record must still have (another reviewer may have moved it).
    pub from: &'a str,
    pub to: &'a str,
    /// The registry ID it gets (approval) or keeps.
    pub registry_id: Option<String>,
    pub failure_reason: Option<String>,
    pub failure_code: Option<i64>,
    pub now: i64,
}

impl Store {
    /// Inserts a brand unless its account holds `cap` already (false).
    pub async fn insert_brand_capped(&self, brand: &Brand, cap: u32) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        if !super::caps::below_cap(&mut tx, &brand.account_sid, "a2p_brands", cap).await? {
            return Ok(false);
        }
        let mut sql = Sql::new(&format!(
            "INSERT INTO a2p_brands ({BRAND_COLUMNS}) VALUES ("
        ));
        sql.text(brand.sid.clone())
            .push(", ")
            .text(brand.account_sid.clone())
            .push(", ")
            .text(brand.customer_profile_bundle_sid.clone())
            .push(", ")
            .text(brand.a2p_profile_bundle_sid.clone())
            .push(", ")
            .text(brand.brand_type.clone())
            .push(", ")
            .text(brand.status.as_str())
            .push(", ")
            .opt_text(brand.tcr_id.clone())
            .push(", ")
            .opt_text(brand.failure_reason.clone())
            .push(", ")
            .opt_int(brand.failure_code)
            .push(", ")
            .int(brand.mock as i64)
            .push(", ")
            .int(brand.skip_automatic_sec_vet as i64)
            .push(", ")
            .int(brand.date_created)
            .push(", ")
            .int(brand.date_updated)
            .push(")");
        sql.query().execute(tx.conn()?).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// A brand of `account_sid` (`None` for any account: the operator's reads).
    pub async fn brand(&self, account_sid: Option<&str>, sid: &str) -> Result<Option<Brand>> {
        let mut sql = Sql::new(&format!(
            "SELECT {BRAND_COLUMNS} FROM a2p_brands WHERE sid = "
        ));
        sql.text(sid);
        if let Some(account) = account_sid {
            sql.push(" AND account_sid = ").text(account);
        }
        let row = sql.query().fetch_optional(self.pool()).await?;
        row.as_ref().map(decode_brand).transpose()
    }

    pub async fn list_brands(&self, account_sid: &str, page: &PageRequest) -> Result<Vec<Brand>> {
        let mut sql = Sql::new(&format!(
            "SELECT {BRAND_COLUMNS} FROM a2p_brands WHERE account_sid = "
        ));
        sql.text(account_sid).page(page);
        let rows = sql.query().fetch_all(self.pool()).await?;
        rows.iter().map(decode_brand).collect()
    }

    /// A failed brand submitted again (`UpdateBrandRegistrations`): back to PENDING.
    pub async fn resubmit_brand(&self, account_sid: &str, sid: &str, now: i64) -> Result<bool> {
        let done = self
            .write(
                sqlx::query(
                    "UPDATE a2p_brands SET status = 'PENDING', failure_reason = NULL, \
                     failure_code = NULL, date_updated = $1 \
                     WHERE account_sid = $2 AND sid = $3 AND status = 'FAILED'",
                )
                .bind(now)
                .bind(account_sid.to_string())
                .bind(sid.to_string()),
            )
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Inserts a service's campaign unless it has one (false).
    pub async fn insert_campaign(&self, campaign: &Campaign) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let taken = sqlx::query("SELECT sid FROM a2p_campaigns WHERE messaging_service_sid = $1")
            .bind(campaign.messaging_service_sid.clone())
            .fetch_optional(tx.conn()?)
            .await?
            .is_some();
        if taken {
            tx.rollback().await?;
            return Ok(false);
        }
        let mut sql = Sql::new(&format!(
            "INSERT INTO a2p_campaigns ({CAMPAIGN_COLUMNS}) VALUES ("
        ));
        sql.text(campaign.sid.clone())
            .push(", ")
            .text(campaign.account_sid.clone())
            .push(", ")
            .text(campaign.messaging_service_sid.clone())
            .push(", ")
            .text(campaign.brand_registration_sid.clone())
            .push(", ")
            .text(campaign.usecase.clone())
            .push(", ")
            .text(campaign.status.as_str())
            .push(", ")
            .opt_text(campaign.campaign_id.clone())
            .push(", ")
            .opt_text(campaign.failure_reason.clone())
            .push(", ")
            .opt_int(campaign.failure_code)
            .push(", ")
            .int(campaign.mock as i64)
            .push(", ")
            .text(details_json(&campaign.details)?)
            .push(", ")
            .int(campaign.date_created)
            .push(", ")
            .int(campaign.date_updated)
            .push(")");
        sql.query().execute(tx.conn()?).await?;
        let event = crate::domain::a2p::campaign_event(
            campaign,
            &crate::domain::sid::generate(crate::domain::sid::SidKind::Alert),
            campaign.date_created,
        );
        enqueue_event(
            &mut tx,
            &campaign.account_sid,
            &campaign.sid,
            &event,
            campaign.date_created,
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// A campaign of `account_sid` (`None`: any account, for the operator), by SID.
    pub async fn campaign(&self, account_sid: Option<&str>, sid: &str) -> Result<Option<Campaign>> {
        let mut sql = Sql::new(&format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM a2p_campaigns WHERE sid = "
        ));
        sql.text(sid);
        if let Some(account) = account_sid {
            sql.push(" AND account_sid = ").text(account);
        }
        let row = sql.query().fetch_optional(self.pool()).await?;
        row.as_ref().map(decode_campaign).transpose()
    }

    /// The campaign of a service (at most one).
    pub async fn service_campaign(&self, service_sid: &str) -> Result<Option<Campaign>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM a2p_campaigns WHERE messaging_service_sid = $1"
        )))
        .bind(service_sid.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(decode_campaign).transpose()
    }

    pub async fn campaigns_of_brand(&self, brand_sid: &str) -> Result<Vec<Campaign>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM a2p_campaigns WHERE brand_registration_sid = $1"
        )))
        .bind(brand_sid.to_string())
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(decode_campaign).collect()
    }

    /// Which of `services` have a VERIFIED campaign.
    pub async fn registered_services(&self, services: &[&str]) -> Result<HashSet<String>> {
        if services.is_empty() {
            return Ok(HashSet::new());
        }
        let mut sql = Sql::new(
            "SELECT messaging_service_sid FROM a2p_campaigns \
             WHERE campaign_status = 'VERIFIED' AND messaging_service_sid IN ",
        );
        sql.text_set(services.iter().copied());
        let rows = sql.query().fetch_all(self.pool()).await?;
        rows.iter()
            .map(|row| text(row, "messaging_service_sid"))
            .collect()
    }

    /// Which of an account's `numbers` (E.164) sit in a service with a VERIFIED campaign.
    pub async fn registered_numbers(
        &self,
        account_sid: &str,
        numbers: &[&str],
    ) -> Result<HashSet<String>> {
        if numbers.is_empty() {
            return Ok(HashSet::new());
        }
        let mut sql = Sql::new(
            "SELECT p.phone_number FROM phone_numbers p JOIN a2p_campaigns c \
             ON c.messaging_service_sid = p.messaging_service_sid \
             WHERE c.campaign_status = 'VERIFIED' AND p.account_sid = ",
        );
        sql.text(account_sid).push(" AND p.phone_number IN ");
        sql.text_set(numbers.iter().copied());
        let rows = sql.query().fetch_all(self.pool()).await?;
        rows.iter().map(|row| text(row, "phone_number")).collect()
    }

    /// Changes a campaign's submitted text (status unchanged).
    pub async fn update_campaign_details(
        &self,
        account_sid: &str,
        service_sid: &str,
        sid: &str,
        details: &CampaignDetails,
        now: i64,
    ) -> Result<bool> {
        let done = self
            .write(
                sqlx::query(
                    "UPDATE a2p_campaigns SET details = $1, date_updated = $2 \
                     WHERE account_sid = $3 AND messaging_service_sid = $4 AND sid = $5",
                )
                .bind(details_json(details)?)
                .bind(now)
                .bind(account_sid.to_string())
                .bind(service_sid.to_string())
                .bind(sid.to_string()),
            )
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn delete_campaign(
        &self,
        account_sid: &str,
        service_sid: &str,
        sid: &str,
    ) -> Result<bool> {
        let done = self
            .write(
                sqlx::query(
                    "DELETE FROM a2p_campaigns \
                     WHERE account_sid = $1 AND messaging_service_sid = $2 AND sid = $3",
                )
                .bind(account_sid.to_string())
                .bind(service_sid.to_string())
                .bind(sid.to_string()),
            )
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Records awaiting review, oldest first: (brands, campaigns).
    pub async fn pending_registrations(&self, limit: i64) -> Result<(Vec<Brand>, Vec<Campaign>)> {
        let brands = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {BRAND_COLUMNS} FROM a2p_brands WHERE status = 'PENDING' \
             ORDER BY date_created, sid LIMIT $1"
        )))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        let campaigns = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM a2p_campaigns WHERE campaign_status = 'PENDING' \
             ORDER BY date_created, sid LIMIT $1"
        )))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok((
            brands.iter().map(decode_brand).collect::<Result<_>>()?,
            campaigns
                .iter()
                .map(decode_campaign)
                .collect::<Result<_>>()?,
        ))
    }

    /// Moves a brand from `review.from` to `review.to` and queues its event, in one
    /// transaction. `None` if the brand was not in `review.from` any more.
    pub async fn review_brand(&self, review: &Review<'_>) -> Result<Option<Brand>> {
        let mut tx = self.begin_write().await?;
        let Some(row) = apply_review(&mut tx, &BRANDS, review).await? else {
            tx.rollback().await?;
            return Ok(None);
        };
        let brand = decode_brand(&row)?;
        let event_id = crate::domain::sid::generate(crate::domain::sid::SidKind::Alert);
        if let Some(event) = crate::domain::a2p::brand_event(&brand, &event_id, review.now) {
            enqueue_event(&mut tx, &brand.account_sid, &brand.sid, &event, review.now).await?;
        }
        tx.commit().await?;
        Ok(Some(brand))
    }

    /// `review_brand` for a campaign.
    pub async fn review_campaign(&self, review: &Review<'_>) -> Result<Option<Campaign>> {
        let mut tx = self.begin_write().await?;
        let Some(row) = apply_review(&mut tx, &CAMPAIGNS, review).await? else {
            tx.rollback().await?;
            return Ok(None);
        };
        let campaign = decode_campaign(&row)?;
        let event_id = crate::domain::sid::generate(crate::domain::sid::SidKind::Alert);
        let event = crate::domain::a2p::campaign_event(&campaign, &event_id, review.now);
        enqueue_event(
            &mut tx,
            &campaign.account_sid,
            &campaign.sid,
            &event,
            review.now,
        )
        .await?;
        tx.commit().await?;
        Ok(Some(campaign))
    }

    /// Where an account's registration events go.
    pub async fn a2p_event_sink(&self, account_sid: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT url FROM a2p_event_sinks WHERE account_sid = $1")
            .bind(account_sid.to_string())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(|row| text(row, "url")).transpose()
    }

    /// Sets (or with `None` removes) an account's event sink.
    pub async fn set_a2p_event_sink(
        &self,
        account_sid: &str,
        url: Option<&str>,
        now: i64,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM a2p_event_sinks WHERE account_sid = $1")
            .bind(account_sid.to_string())
            .execute(tx.conn()?)
            .await?;
        if let Some(url) = url {
            sqlx::query(
                "INSERT INTO a2p_event_sinks (account_sid, url, date_created, date_updated) \
                 VALUES ($1, $2, $3, $3)",
            )
            .bind(account_sid.to_string())
            .bind(url.to_string())
            .bind(now)
            .execute(tx.conn()?)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// Where a kind of record the operator reviews keeps its status and its registry ID.
struct Reviewed {
    table: &'static str,
    status: &'static str,
    registry_id: &'static str,
    columns: &'static str,
}

const BRANDS: Reviewed = Reviewed {
    table: "a2p_brands",
    status: "status",
    registry_id: "tcr_id",
    columns: BRAND_COLUMNS,
};

const CAMPAIGNS: Reviewed = Reviewed {
    table: "a2p_campaigns",
    status: "campaign_status",
    registry_id: "campaign_id",
    columns: CAMPAIGN_COLUMNS,
};

/// Moves the record `review.sid` from `review.from` to `review.to` in `tx` and reads it back;
/// `None` (nothing written) when it is no longer in `review.from`.
async fn apply_review(
    tx: &mut Tx<'_>,
    kind: &Reviewed,
    review: &Review<'_>,
) -> Result<Option<AnyRow>> {
    let Reviewed {
        table,
        status,
        registry_id,
        columns,
    } = kind;
    let changed = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE {table} SET {status} = $1, {registry_id} = COALESCE($2, {registry_id}), \
         failure_reason = $3, failure_code = $4, date_updated = $5 \
         WHERE sid = $6 AND {status} = $7"
    )))
    .bind(review.to.to_string())
    .bind(review.registry_id.clone())
    .bind(review.failure_reason.clone())
    .bind(review.failure_code)
    .bind(review.now)
    .bind(review.sid.to_string())
    .bind(review.from.to_string())
    .execute(tx.conn()?)
    .await?
    .rows_affected();
    if changed == 0 {
        return Ok(None);
    }
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {columns} FROM {table} WHERE sid = $1"
    )))
    .bind(review.sid.to_string())
    .fetch_one(tx.conn()?)
    .await?;
    Ok(Some(row))
}

/// Queues `event` for the account's sink, if it has one, in the caller's transaction. Events
/// of one record keep their order (the record's SID orders them in the outbox).
async fn enqueue_event(
    tx: &mut Tx<'_>,
    account_sid: &str,
    record_sid: &str,
    event: &serde_json::Value,
    now: i64,
) -> Result<()> {
    let sink = sqlx::query("SELECT url FROM a2p_event_sinks WHERE account_sid = $1")
        .bind(account_sid.to_string())
        .fetch_optional(tx.conn()?)
        .await?;
    let Some(sink) = sink else {
        return Ok(());
    };
    let target = InboundTarget {
        url: text(&sink, "url")?,
        method: "POST".into(),
        fallback_url: None,
        fallback_method: None,
    };
    enqueue_payload(
        tx,
        WebhookKind::A2pEvent,
        account_sid,
        record_sid,
        &target,
        &event.to_string(),
        now,
    )
    .await
}
