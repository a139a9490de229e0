//! Inbound messages (where they go, and their effects committed in one transaction) and the
//! opt-out list they maintain.

use super::outbox::enqueue_inbound;
use super::queue::insert_messages_in;
use super::rows::InboundTarget;
use super::{opt_text, text, Sql, Store, Tx};
use crate::domain::message::{Media, Message};
use crate::domain::opt_out::{parse_keywords, KeywordKind, OptOutSettings};
use crate::domain::paging::PageRequest;
use crate::error::Result;
use sqlx::any::AnyRow;
use sqlx::Row;

/// What warbler knows about a number a message arrived on.
#[derive(Debug, Clone)]
pub struct InboundRoute {
    pub account_sid: String,
    pub service_sid: Option<String>,
    pub target: Option<InboundTarget>,
    /// The service's Advanced Opt-Out, or Twilio's defaults.
    pub opt_out: OptOutSettings,
    /// Whether the service has Advanced Opt-Out settings.
    pub advanced_opt_out: bool,
    /// The number's type (`local`, `mobile`, `toll-free`, `short-code`).
    pub number_type: String,
}

/// A change to the opt-out list that an inbound keyword makes.
#[derive(Debug, Clone)]
pub struct OptOutChange {
    pub kind: KeywordKind,
    pub account_sid: String,
    pub recipient: String,
    pub scope: String,
    pub sender: String,
    pub keyword: String,
}

/// One opted-out recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptOut {
    pub sid: String,
    pub account_sid: String,
    pub recipient: String,
    pub scope: String,
    pub sender: Option<String>,
    pub keyword: String,
    pub date_created: i64,
}

/// Everything an inbound message commits together.
#[derive(Debug)]
pub struct Arrival<'a> {
    pub message: &'a Message,
    pub media: &'a [Media],
    pub opt_out: Option<OptOutChange>,
    pub auto_reply: Option<Message>,
    /// What the auto-reply will cost (for the monthly spend cap).
    pub auto_reply_estimate: crate::domain::usage::Money,
    /// Alerts to record with it (an auto-reply the account may not send).
    pub alerts: Vec<crate::domain::alert::Alert>,
    pub webhook: Option<(InboundTarget, String)>,
    /// The usage (and cost) the message adds.
    pub usage: Option<super::usage::UsageRow>,
    /// The stored SMPP parts the message is assembled from, taken in its transaction.
    pub assembled_from: Option<&'a super::carrier::MoParts>,
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

fn decode_settings(row: &AnyRow) -> Result<Option<OptOutSettings>> {
    let Some(stop) = opt_text(row, "stop_keywords")? else {
        return Ok(None);
    };
    let list = |raw: String| parse_keywords("keywords", &raw).unwrap_or_default();
    Ok(Some(OptOutSettings {
        stop_keywords: list(stop),
        start_keywords: list(text(row, "start_keywords")?),
        help_keywords: list(text(row, "help_keywords")?),
        stop_reply: opt_text(row, "stop_reply")?,
        start_reply: opt_text(row, "start_reply")?,
        help_reply: opt_text(row, "help_reply")?,
    }))
}

const OPT_OUT_COLUMNS: &str = "sid, account_sid, recipient, scope, sender, keyword, date_created";

fn decode_opt_out(row: &AnyRow) -> Result<OptOut> {
    Ok(OptOut {
        sid: text(row, "sid")?,
        account_sid: text(row, "account_sid")?,
        recipient: text(row, "recipient")?,
        scope: text(row, "scope")?,
        sender: opt_text(row, "sender")?,
        keyword: text(row, "keyword")?,
        date_created: row.try_get::<i64, _>("date_created")?,
    })
}

async fn apply_opt_out(tx: &mut Tx<'_>, change: &OptOutChange, now: i64) -> Result<()> {
    match change.kind {
        KeywordKind::Stop => {
            sqlx::query(
                "INSERT INTO opt_outs (sid, account_sid, recipient, scope, sender, keyword, date_created) \
                 VALUES ($7, $1, $2, $3, $4, $5, $6) ON CONFLICT (account_sid, recipient, scope) DO NOTHING",
            )
            .bind(change.account_sid.clone())
            .bind(change.recipient.clone())
            .bind(change.scope.clone())
            .bind(change.sender.clone())
            .bind(change.keyword.clone())
            .bind(now)
            .bind(crate::domain::sid::generate(crate::domain::sid::SidKind::OptOut))
            .execute(tx.conn()?)
            .await?;
        }
        KeywordKind::Start => {
            // Opting back in lifts what the sender the recipient texted is blocked by.
            sqlx::query(
                "DELETE FROM opt_outs WHERE account_sid = $1 AND recipient = $2 \
                 AND (scope = $3 OR scope = 'account' OR scope = $4)",
            )
            .bind(change.account_sid.clone())
            .bind(change.recipient.clone())
            .bind(change.scope.clone())
            .bind(change.sender.clone())
            .execute(tx.conn()?)
            .await?;
        }
        KeywordKind::Help => {}
    }
    Ok(())
}

impl Store {
    /// The account holding `number` and where its inbound messages go.
    pub async fn inbound_route(&self, number: &str) -> Result<Option<InboundRoute>> {
        let row = sqlx::query(
            "SELECT p.account_sid, p.messaging_service_sid, p.number_type, p.sms_url, p.sms_method, \
             p.sms_fallback_url, p.sms_fallback_method, s.inbound_request_url, s.inbound_method, \
             s.fallback_url, s.fallback_method, s.use_inbound_webhook_on_number, \
             o.stop_keywords, o.start_keywords, o.help_keywords, o.stop_reply, o.start_reply, o.help_reply \
             FROM phone_numbers p LEFT JOIN messaging_services s ON s.sid = p.messaging_service_sid \
             LEFT JOIN service_opt_out_settings o ON o.service_sid = p.messaging_service_sid \
             WHERE p.phone_number = $1 AND p.account_sid IS NOT NULL",
        )
        .bind(number.to_string())
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let service_sid = opt_text(&row, "messaging_service_sid")?;
        let number_target = non_empty(opt_text(&row, "sms_url")?).map(|url| InboundTarget {
            url,
            method: opt_text(&row, "sms_method")
                .ok()
                .flatten()
                .unwrap_or_else(|| "POST".into()),
            fallback_url: non_empty(opt_text(&row, "sms_fallback_url").ok().flatten()),
            fallback_method: opt_text(&row, "sms_fallback_method").ok().flatten(),
        });
        let service_target = match &service_sid {
            Some(_) => {
                let use_number = row
                    .try_get::<Option<i64>, _>("use_inbound_webhook_on_number")?
                    .unwrap_or(0)
                    != 0;
                match non_empty(opt_text(&row, "inbound_request_url")?) {
                    Some(url) if !use_number => Some(InboundTarget {
                        url,
                        method: opt_text(&row, "inbound_method")?.unwrap_or_else(|| "POST".into()),
                        fallback_url: non_empty(opt_text(&row, "fallback_url")?),
                        fallback_method: opt_text(&row, "fallback_method")?,
                    }),
                    _ => None,
                }
            }
            None => None,
        };
        let settings = decode_settings(&row)?;
        Ok(Some(InboundRoute {
            account_sid: text(&row, "account_sid")?,
            service_sid,
            target: service_target.or(number_target),
            advanced_opt_out: settings.is_some(),
            number_type: text(&row, "number_type")?,
            opt_out: settings.unwrap_or_default(),
        }))
    }

    /// Commits an inbound message with its opt-out change, auto-reply and webhook. False, and
    /// nothing stored, when the parts it is assembled from are already gone (delivered).
    pub async fn receive(&self, arrival: Arrival<'_>, now: i64) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        // First, so that on PostgreSQL a node storing the same parts waits here for this
        // transaction and then finds them gone.
        if let Some(parts) = arrival.assembled_from {
            if !super::carrier::take_mo_parts(&mut tx, parts).await? {
                tx.rollback().await?;
                return Ok(false);
            }
        }
        let batch = [(arrival.message.clone(), arrival.media.to_vec())];
        insert_messages_in(&mut tx, &batch, now).await?;
        let mut alerts = arrival.alerts.clone();
        if let Some(reply) = &arrival.auto_reply {
            // A send of the account: counted against its monthly caps like an API send. It
            // confirms the opt-out it answers, which neither admission nor the dispatcher
            // holds against it.
            let admissions = super::queue::insert_new_messages_in(
                &mut tx.exec()?,
                super::queue::Framing::InTransaction,
                &[(reply.clone(), Vec::new())],
                &[arrival.auto_reply_estimate],
                &[super::queue::Terms {
                    opt_out_exempt: true,
                    ..Default::default()
                }],
                now,
                None,
            )
            .await?;
            if let Some(super::rows::Admission::OverCap(reason)) = admissions.first() {
                alerts.push(super::outbox::refused_reply_alert(
                    reply,
                    &format!("Auto-reply to {} not sent: {reason}", reply.to),
                    now,
                ));
            }
        }
        super::outbox::insert_alerts(&mut tx, &alerts).await?;
        if let Some(change) = &arrival.opt_out {
            apply_opt_out(&mut tx, change, now).await?;
        }
        if let Some(usage) = &arrival.usage {
            super::usage::add_usage(&mut tx, std::slice::from_ref(usage)).await?;
        }
        if let Some((target, payload)) = &arrival.webhook {
            enqueue_inbound(
                &mut tx,
                &arrival.message.account_sid,
                &arrival.message.sid,
                target,
                payload,
                now,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// The stored opt-outs of `recipients` in `account_sid`: (recipient, scope, sender).
    pub async fn opt_outs_of(
        &self,
        account_sid: &str,
        recipients: &[&str],
    ) -> Result<Vec<(String, String, Option<String>)>> {
        if recipients.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql =
            Sql::new("SELECT recipient, scope, sender FROM opt_outs WHERE account_sid = ");
        sql.text(account_sid)
            .push(" AND recipient IN ")
            .text_set(recipients.iter().copied());
        let rows = self.read_rows(sql).await?;
        rows.iter()
            .map(|r| {
                Ok((
                    text(r, "recipient")?,
                    text(r, "scope")?,
                    opt_text(r, "sender")?,
                ))
            })
            .collect()
    }

    /// One page of an account's opt-outs, oldest first.
    pub async fn list_opt_outs(
        &self,
        account_sid: &str,
        page: &PageRequest,
    ) -> Result<Vec<OptOut>> {
        let mut sql = Sql::new(&format!(
            "SELECT {OPT_OUT_COLUMNS} FROM opt_outs WHERE account_sid = "
        ));
        sql.text(account_sid).page(page);
        let rows = sql.query().fetch_all(self.pool()).await?;
        rows.iter().map(decode_opt_out).collect()
    }

    /// Adds opt-outs (an import), keeping ones already recorded. Returns how many were new.
    pub async fn import_opt_outs(&self, rows: &[OptOut]) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let mut added = 0;
        for o in rows {
            added += sqlx::query(
                "INSERT INTO opt_outs (sid, account_sid, recipient, scope, sender, keyword, date_created) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (account_sid, recipient, scope) DO NOTHING",
            )
            .bind(o.sid.clone())
            .bind(o.account_sid.clone())
            .bind(o.recipient.clone())
            .bind(o.scope.clone())
            .bind(o.sender.clone())
            .bind(o.keyword.clone())
            .bind(o.date_created)
            .execute(tx.conn()?)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(added)
    }

    /// Removes one opt-out (the operator or the account lifting it).
    pub async fn delete_opt_out(&self, account_sid: &str, recipient: &str) -> Result<u64> {
        let done = self
            .write(
                sqlx::query("DELETE FROM opt_outs WHERE account_sid = $1 AND recipient = $2")
                    .bind(account_sid.to_string())
                    .bind(recipient.to_string()),
            )
            .await?;
        Ok(done.rows_affected())
    }

    /// A service's Advanced Opt-Out settings, if set.
    pub async fn service_opt_out(&self, service_sid: &str) -> Result<Option<OptOutSettings>> {
        let row = sqlx::query(
            "SELECT stop_keywords, start_keywords, help_keywords, stop_reply, start_reply, help_reply \
             FROM service_opt_out_settings WHERE service_sid = $1",
        )
        .bind(service_sid.to_string())
        .fetch_optional(self.pool())
        .await?;
        match row {
            Some(row) => decode_settings(&row),
            None => Ok(None),
        }
    }

    /// Saves a service's Advanced Opt-Out settings.
    pub async fn save_service_opt_out(
        &self,
        service_sid: &str,
        settings: &OptOutSettings,
        now: i64,
    ) -> Result<()> {
        self.write(sqlx::query(
            "INSERT INTO service_opt_out_settings (service_sid, stop_keywords, start_keywords, \
             help_keywords, stop_reply, start_reply, help_reply, date_updated) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (service_sid) DO UPDATE SET \
             stop_keywords = excluded.stop_keywords, start_keywords = excluded.start_keywords, \
             help_keywords = excluded.help_keywords, stop_reply = excluded.stop_reply, \
             start_reply = excluded.start_reply, help_reply = excluded.help_reply, \
             date_updated = excluded.date_updated",
        )
        .bind(service_sid.to_string())
        .bind(settings.stop_keywords.join(","))
        .bind(settings.start_keywords.join(","))
        .bind(settings.help_keywords.join(","))
        .bind(settings.stop_reply.clone())
        .bind(settings.start_reply.clone())
        .bind(settings.help_reply.clone())
        .bind(now)
        )
        .await?;
        Ok(())
    }
}

/// Copies the opt-outs a number received in `from_account` to `to_account`, scoped to the
/// number itself there: the recipients asked this number to stop, wherever it now belongs.
pub(crate) async fn carry_opt_outs(
    tx: &mut Tx<'_>,
    number: &str,
    from_account: &str,
    to_account: &str,
) -> Result<()> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {OPT_OUT_COLUMNS} FROM opt_outs WHERE account_sid = $1 AND sender = $2"
    )))
    .bind(from_account.to_string())
    .bind(number.to_string())
    .fetch_all(tx.conn()?)
    .await?;
    for row in &rows {
        let o = decode_opt_out(row)?;
        sqlx::query(
            "INSERT INTO opt_outs (sid, account_sid, recipient, scope, sender, keyword, date_created) \
             VALUES ($1, $2, $3, $4, $4, $5, $6) ON CONFLICT (account_sid, recipient, scope) DO NOTHING",
        )
        .bind(crate::domain::sid::generate(crate::domain::sid::SidKind::OptOut))
        .bind(to_account.to_string())
        .bind(o.recipient)
        .bind(number.to_string())
        .bind(o.keyword)
        .bind(o.date_created)
        .execute(tx.conn()?)
        .await?;
    }
    Ok(())
}
