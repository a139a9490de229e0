//! What SMPP carriers send, stored as it arrives: delivery receipts go to the
//! `carrier_receipts` table (applied by the dispatcher's receipt round), mobile-originated messages through the
//! inbound path (parts of a concatenated message wait in `smpp_mo_parts` until complete or
//! expired). Each operation is answered only after its effect is committed; a storage failure
//! answers `ESME_RX_T_APPN` so the SMSC sends it again. Woken by the SMPP sessions' channel
//! (started by `App::new` with the carrier, which owns it); the expiry sweep runs from the
//! dispatcher loop.

use crate::carrier::smpp::deliver::{classify, Incoming, MoPart};
use crate::carrier::smpp::receipt::normalize_id;
use crate::carrier::smpp::session::{Delivery, Responder};
use crate::carrier::smpp::text::DefaultCoding;
use crate::domain::sid::ordered_hex32;
use crate::domain::time::now_micros;
use crate::error::Error;
use crate::service::inbound::Incoming as InboundMessage;
use crate::service::App;
use crate::store::carrier::MoParts;
use crate::store::rows::Receipt;
use rusmpp::CommandStatus;
use tokio::sync::mpsc;

/// Operations stored in one transaction at most.
const BATCH: usize = 500;
/// Overdue incomplete inbound sets delivered per sweep at most.
const EXPIRE_BATCH: i64 = 100;

impl App {
    /// Stores what the SMSCs send until every route's sessions are gone.
    pub async fn run_smpp_deliveries(self, mut deliveries: mpsc::Receiver<Delivery>) {
        while let Some(first) = deliveries.recv().await {
            let mut batch = vec![first];
            while batch.len() < BATCH {
                match deliveries.try_recv() {
                    Ok(delivery) => batch.push(delivery),
                    Err(_) => break,
                }
            }
            self.store_deliveries(batch).await;
        }
    }

    /// Stores a batch: receipts in one transaction, inbound messages one by one.
    pub async fn store_deliveries(&self, batch: Vec<Delivery>) {
        let now = now_micros();
        let mut receipts = Vec::new();
        let mut waiting: Vec<Responder> = Vec::new();
        for delivery in batch {
            let config = self
                .carrier
                .route_configs()
                .iter()
                .find(|c| *c.name == *delivery.route);
            let (format, packed) = config
                .map(|c| (c.dlr_id_format, c.data_coding == DefaultCoding::Gsm7Packed))
                .unwrap_or_default();
            match classify(&delivery.command, &delivery.skipped_tlvs, packed) {
                Incoming::Receipt(report) => {
                    if let Some(route) = self.carrier.smpp_route(&delivery.route) {
                        route
                            .stats
                            .receipts
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    let Some((status, error_code)) = report.state.outcome() else {
                        delivery.responder.respond(CommandStatus::EsmeRok).await;
                        continue;
                    };
                    let id = normalize_id(&report.id, format).unwrap_or(report.id);
                    receipts.push(Receipt {
                        id: ordered_hex32(),
                        carrier_message_id: format!("{}:{id}", delivery.route),
                        status,
                        error_code,
                        done_date: report.done_date,
                        due_at: now,
                    });
                    waiting.push(delivery.responder);
                }
                Incoming::Ignored => delivery.responder.respond(CommandStatus::EsmeRok).await,
                Incoming::Unreadable(reason) => {
                    tracing::warn!(route = %delivery.route, %reason, "smpp: unreadable deliver_sm acknowledged");
                    delivery.responder.respond(CommandStatus::EsmeRok).await;
                }
                Incoming::Mo(part) => {
                    let status = self.store_mo(&delivery.route, part, now).await;
                    delivery.responder.respond(status).await;
                }
            }
        }
        if receipts.is_empty() {
            return;
        }
        let status = match self.store.insert_receipts(&receipts).await {
            Ok(()) => {
                self.work.notify_one();
                CommandStatus::EsmeRok
            }
            Err(err) => {
                tracing::error!(%err, "smpp: storing receipts failed; the SMSC will resend");
                CommandStatus::EsmeRxTAppn
            }
        };
        for responder in waiting {
            responder.respond(status).await;
        }
    }

    /// Delivers the overdue incomplete inbound sets (see `expire_mo_parts`), at most once a
    /// second (more often when the expiry is shorter).
    pub async fn expire_mo_parts_if_due(&self, now: i64) {
        use std::sync::atomic::Ordering;
        if self.settings.smpp_routes.is_empty() {
            return;
        }
        let interval = (self.settings.smpp_mo_parts_expire / 4).clamp(1_000, 1_000_000);
        if now - self.mo_parts_swept_at.load(Ordering::Relaxed) < interval {
            return;
        }
        self.mo_parts_swept_at.store(now, Ordering::Relaxed);
        if let Err(err) = self.expire_mo_parts(now).await {
            tracing::error!(%err, "smpp: expiring incomplete inbound messages failed");
        }
    }

    /// Gives up waiting for the missing parts of concatenated inbound messages older than
    /// `smpp_mo_parts_expire` (or beyond `smpp_mo_parts_max_sets`): the parts received are
    /// delivered as one message, in part order. The handset's text, even with a gap, serves
    /// the account better than silence; a part that comes later arrives on its own. Returns
    /// how many sets were delivered.
    pub async fn expire_mo_parts(&self, now: i64) -> crate::error::Result<usize> {
        let cutoff = now - self.settings.smpp_mo_parts_expire;
        let overdue = self
            .store
            .overdue_mo_sets(cutoff, self.settings.smpp_mo_parts_max_sets, EXPIRE_BATCH)
            .await?;
        let mut delivered = 0;
        for (key, cutoff) in overdue {
            let Some(parts) = self.store.claim_mo_set(&key, cutoff, now).await? else {
                continue;
            };
            let numbers: Vec<i64> = parts.iter().map(|(part, _)| *part).collect();
            tracing::warn!(
                route = %key.route, from = %key.source, to = %key.destination,
                reference = key.reference, parts = ?numbers,
                "smpp: concatenated inbound message incomplete; delivering the parts received"
            );
            let incoming = InboundMessage {
                from: key.source.clone(),
                to: key.destination.clone(),
                body: parts.into_iter().map(|(_, body)| body).collect(),
                media: Vec::new(),
            };
            // Only the parts claimed: one that came since stays, to start a set of its own.
            let parts = MoParts { key, numbers };
            match self.receive_assembled(incoming, Some(&parts)).await {
                Ok(Some(_)) => delivered += 1,
                Ok(None) => {}
                Err(err @ Error::Invalid { .. }) => {
                    tracing::warn!(route = %parts.key.route, %err, "smpp: incomplete inbound message refused");
                    self.store.drop_mo_parts(&parts).await?;
                }
                // Kept: the claim made it overdue again one expiry from now.
                Err(err) => {
                    tracing::error!(%err, "smpp: storing an incomplete inbound message failed");
                }
            }
        }
        Ok(delivered)
    }

    /// One inbound message or part; the status to answer with.
    async fn store_mo(&self, route: &str, part: MoPart, now: i64) -> CommandStatus {
        let (body, assembled_from) = match part.concat {
            None => (part.text.clone(), None),
            Some(concat) => {
                match self
                    .store
                    .add_mo_part(
                        route,
                        &part.from,
                        &part.to,
                        concat.reference as i64,
                        concat.total as i64,
                        concat.part as i64,
                        &part.text,
                        now,
                    )
                    .await
                {
                    Ok(Some((whole, parts))) => (whole, Some(parts)),
                    Ok(None) => return CommandStatus::EsmeRok,
                    Err(err) => {
                        tracing::error!(%err, "smpp: storing an inbound part failed");
                        return CommandStatus::EsmeRxTAppn;
                    }
                }
            }
        };
        let incoming = InboundMessage {
            from: part.from.clone(),
            to: part.to.clone(),
            body,
            media: Vec::new(),
        };
        match self
            .receive_assembled(incoming, assembled_from.as_ref())
            .await
        {
            // `None`: its parts were delivered already (a part sent twice, on two binds).
            Ok(_) => CommandStatus::EsmeRok,
            // Nothing will make it acceptable later (no account holds the number, a bad
            // sender address): acknowledged, so the SMSC does not resend it forever.
            Err(err @ Error::Invalid { .. }) => {
                tracing::warn!(%route, from = %part.from, to = %part.to, %err, "smpp: inbound message refused");
                if let Some(parts) = &assembled_from {
                    if let Err(err) = self.store.drop_mo_parts(parts).await {
                        tracing::warn!(%err, "smpp: could not drop refused inbound parts");
                    }
                }
                CommandStatus::EsmeRok
            }
            Err(err) => {
                tracing::error!(%err, "smpp: storing an inbound message failed");
                CommandStatus::EsmeRxTAppn
            }
        }
    }
}
