//! Sending messages: validation at create time (with Twilio's codes), the durable queue
//! (messages are their own queue rows), the dispatcher that chooses senders, paces them and
//! hands batches to the carrier, and delivery receipts.

use super::writer::Written;
use super::{App, Operation, Principal};
use crate::carrier::{Submit, SubmitOutcome};
use crate::domain::account::AccountStatus;
use crate::domain::encoding::{count_segments, encoding_of, smart_encode, Encoding};
use crate::domain::message::{
    check_content, check_schedule, media_content_type, message_cost, parse_send_at,
    parse_validity_period, Direction, IdempotencyKey, Media, Message, MessageStatus, EXPIRED_ERROR,
    MAX_VALIDITY_PERIOD,
};
use crate::domain::messaging_service::MessagingService;
use crate::domain::number::{validate_url, E164};
use crate::domain::paging::PageRequest;
use crate::domain::sender::{choose_sender, Destination, SelectionSettings, Sender, SenderKind};
use crate::domain::sid::{self, SidKind};
use crate::domain::time::now_micros;
use crate::error::{Error, Result};
use crate::store::carrier::CarrierRecords;
use crate::store::messages::{Claimed, MediaFilter, MessageFilter, Outcome};
use std::collections::HashMap;

/// A `CreateMessage` request as sent.
#[derive(Debug, Default)]
pub struct SendRequest<'a> {
    pub to: Option<&'a str>,
    pub from: Option<&'a str>,
    pub messaging_service_sid: Option<&'a str>,
    pub body: Option<&'a str>,
    pub media_urls: Vec<&'a str>,
    /// A Content template (`HX…`) whose rendering replaces `body` and `media_urls`.
    pub content_sid: Option<&'a str>,
    /// The template's placeholder values, a JSON object.
    pub content_variables: Option<&'a str>,
    pub status_callback: Option<&'a str>,
    pub validity_period: Option<&'a str>,
    pub smart_encoded: Option<bool>,
    pub send_at: Option<&'a str>,
    pub schedule_type: Option<&'a str>,
    /// The client's idempotency key, if it sent one.
    pub idempotency: Option<IdempotencyKey>,
}

/// The answer to a create whose idempotency key an earlier message has: that message, if the
/// same request made it.
fn idempotent_answer(first: Message, same_request: bool) -> Result<Message> {
    if same_request {
        Ok(first)
    } else {
        Err(Error::invalid(
            20001,
            format!(
                "The idempotency key was already used by a request with different parameters (it created {})",
                first.sid
            ),
        ))
    }
}

/// What a message waiting to be sent fails with when its account was suspended or closed
/// (Twilio's 30002).
const ACCOUNT_SUSPENDED: (i64, &str) = (30002, "Account suspended");

/// Messages (and receipts) a dispatcher round takes.
const BATCH: i64 = 500;

/// The longest a dispatcher round waits for the API's writes to pause (`MessageWriter::lull`).
const DISPATCH_YIELDS_AT_MOST: std::time::Duration = std::time::Duration::from_millis(20);

/// How often the WAL is checkpointed while the API is paused, the longest a checkpoint waits
/// for such a pause, and which of them run on the write connection (see `Store::checkpoint`).
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(250);
const CHECKPOINT_AT_LEAST: std::time::Duration = std::time::Duration::from_secs(10);
const WRITER_CHECKPOINT_EVERY: u64 = 16;

/// A round's batch when the API's writes did not pause: its transactions are shorter, so the
/// API requests that queue behind them wait less.
const BATCH_UNDER_LOAD: i64 = 100;

/// A sender may send a message this far ahead of its paced slot (one dispatcher tick), so a
/// fast sender sends many messages per round.
const PACING_HORIZON: i64 = 100_000;

fn is_short_code(value: &str) -> bool {
    (3..=8).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_digit())
}

fn is_alpha_sender(value: &str) -> bool {
    crate::domain::messaging_service::validate_alpha_sender(value).is_ok()
}

impl App {
    /// `CreateMessage`: validates, then commits the message (its queue entry) before answering.
    pub async fn create_message(
        &self,
        principal: &Principal,
        account_sid: &str,
        request: SendRequest<'_>,
        path: &str,
    ) -> Result<Message> {
        if let Some(test_sid) = principal.test_sid() {
            return self.create_test_message(test_sid, account_sid, &request);
        }
        let started = std::time::Instant::now();
        let account = self
            .authorize(principal, account_sid, Operation::CreateMessage, path)
            .await?;
        let metrics_label = self.metrics_label(&account);
        let idempotency = request.idempotency.clone();
        if let Some(key) = &idempotency {
            // A retry of a create that was committed gets its message, whatever changed since.
            if let Some((fingerprint, message)) = self
                .store
                .idempotent_message(&account.sid, &key.key)
                .await?
            {
                return idempotent_answer(message, fingerprint == key.fingerprint);
            }
        }
        if account.status != AccountStatus::Active {
            return Err(Error::forbidden(20005, "Account not active"));
        }
        self.check_funds(&account).await?;
        let sandbox = account.sandbox;
        let to_raw = request
            .to
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::invalid(21604, "A 'To' phone number is required."))?;
        let to = E164::parse(to_raw).ok_or_else(|| {
            Error::invalid(
                21211,
                format!("The 'To' number {to_raw} is not a valid phone number."),
            )
        })?;
        let service_sid = request.messaging_service_sid.filter(|s| !s.is_empty());
        let from = request.from.filter(|s| !s.is_empty());
        if service_sid.is_none() && from.is_none() {
            return Err(Error::invalid(
                21603,
                "A 'From' or 'MessagingServiceSid' parameter is required to send a message",
            ));
        }
        // With both, the service wins (as Twilio).
        let service = match service_sid {
            Some(sid_value) => {
                if !sid::is_valid(SidKind::MessagingService, sid_value) {
                    return Err(Error::invalid(
                        21705,
                        format!("The Messaging Service Sid {sid_value} is invalid"),
                    ));
                }
                Some(
                    self.cached_service(&account.sid, sid_value)
                        .await?
                        .ok_or_else(|| {
                            Error::invalid(
                                21701,
                                format!("The Messaging Service Sid {sid_value} does not exist"),
                            )
                        })?,
                )
            }
            None => None,
        };
        let (service, pool_size) = match service {
            Some((service, size)) => (Some(service), size),
            None => (None, 0),
        };
        // A template, rendered now, decides the content: Body and MediaUrl are then ignored.
        let rendered = match request.content_sid.filter(|s| !s.is_empty()) {
            Some(content_sid) => Some(
                self.render_content(&account.sid, content_sid, request.content_variables)
                    .await?,
            ),
            None => None,
        };
        let (body_raw, media_urls): (&str, Vec<&str>) = match &rendered {
            Some(r) => (&r.body, r.media.iter().map(String::as_str).collect()),
            None => (request.body.unwrap_or(""), request.media_urls.clone()),
        };
        check_content(body_raw, &media_urls, service.is_some())?;
        let validity_period = match request.validity_period {
            Some(raw) => parse_validity_period(raw)?,
            None => service
                .as_ref()
                .map(|s| s.validity_period)
                .unwrap_or(MAX_VALIDITY_PERIOD),
        };
        let status_callback = match request.status_callback {
            Some(raw) => validate_url("StatusCallback", raw).map_err(|_| {
                Error::invalid(21609, format!("The StatusCallback URL {raw} is not valid"))
            })?,
            None => None,
        };
        let now = now_micros();
        let send_at = match (request.schedule_type, request.send_at) {
            (Some(kind), _) if kind != "fixed" => {
                return Err(Error::invalid(35126, "ScheduleType must be 'fixed'"))
            }
            (Some(_), None) => {
                return Err(Error::invalid(
                    35111,
                    "SendAt is required with ScheduleType=fixed",
                ))
            }
            (Some(_), Some(raw)) => {
                if service.is_none() {
                    return Err(Error::invalid(
                        35118,
                        "Scheduling a message requires a MessagingServiceSid",
                    ));
                }
                let at = parse_send_at(raw)?;
                check_schedule(at, now / 1_000_000)?;
                Some(at * 1_000_000)
            }
            // SendAt without ScheduleType is ignored, as Twilio does.
            (None, _) => None,
        };
        let from = match (&service, from) {
            (Some(_), _) => {
                if pool_size == 0 {
                    return Err(Error::invalid(
                        21704,
                        "The Messaging Service contains no phone numbers",
                    ));
                }
                None
            }
            (None, Some(from)) => {
                if E164::parse(from).is_none() && !is_short_code(from) && !is_alpha_sender(from) {
                    return Err(Error::invalid(
                        21212,
                        format!("The 'From' number {from} is not a valid phone number, shortcode, or alphanumeric sender ID."),
                    ));
                }
                let sender = self
                    .cached_sender(&account.sid, from)
                    .await?
                    .filter(|s| s.sms || s.mms)
                    .ok_or_else(|| {
                        Error::invalid(
                            21606,
                            format!("The 'From' phone number provided ({from}) is not a valid message-capable phone number for this account."),
                        )
                    })?;
                Some(sender.address)
            }
            (None, None) => unreachable!("checked above"),
        };
        // The opt-out check (21610) runs in the group commit, inside the inserting transaction.
        let smart = request
            .smart_encoded
            .unwrap_or_else(|| service.as_ref().is_some_and(|s| s.smart_encoding));
        let body = if smart {
            smart_encode(body_raw).into_owned()
        } else {
            body_raw.to_string()
        };
        let status = match (&service, send_at) {
            (Some(_), Some(_)) => MessageStatus::Scheduled,
            (Some(_), None) => MessageStatus::Accepted,
            (None, _) => MessageStatus::Queued,
        };
        let is_mms = !media_urls.is_empty();
        let message_sid = sid::generate(if is_mms {
            SidKind::MmsMessage
        } else {
            SidKind::Message
        });
        let media: Vec<Media> = media_urls
            .iter()
            .map(|url| Media {
                sid: sid::generate(SidKind::Media),
                message_sid: message_sid.clone(),
                account_sid: account.sid.clone(),
                url: url.to_string(),
                content_type: media_content_type(url).to_string(),
                date_created: now,
                date_updated: now,
            })
            .collect();
        let encoding = encoding_of(&body);
        let messaging_service_sid = service.map(|s| s.sid);
        let message = Message {
            sid: message_sid,
            account_sid: account.sid,
            messaging_service_sid: messaging_service_sid.clone(),
            direction: Direction::OutboundApi,
            from,
            to: to.as_str().to_string(),
            // Twilio shows 0 segments until a service message has a sender.
            num_segments: match (&messaging_service_sid, is_mms) {
                (Some(_), _) => 0,
                (None, true) => 1,
                (None, false) => count_segments(&body).max(1) as i64,
            },
            num_media: media.len() as i64,
            encoding: match encoding {
                Encoding::Gsm7 => "GSM-7".into(),
                Encoding::Ucs2 => "UCS-2".into(),
            },
            body,
            status,
            error_code: None,
            error_message: None,
            price: None,
            price_unit: self.settings.price_unit.clone(),
            status_callback,
            validity_period,
            send_at,
            date_created: now,
            date_updated: now,
            date_sent: None,
        };
        // What it will cost, for the account's spend cap (service messages are priced on the
        // segments their body will have); a sandbox's sends are free.
        let estimate = if sandbox {
            0
        } else {
            message_cost(
                &self.settings.prices,
                &message.to,
                if message.num_segments > 0 {
                    message.num_segments
                } else {
                    count_segments(&message.body).max(1) as i64
                },
                is_mms,
            )
            .unwrap_or(0)
        };
        match self
            .writer
            .write(message.clone(), media, estimate, idempotency)
            .await?
        {
            Written::New => {
                self.work.notify_one();
                metrics::counter!(crate::telemetry::MESSAGES_ACCEPTED, "account" => metrics_label)
                    .increment(1);
                metrics::histogram!(crate::telemetry::ACCEPT_DURATION)
                    .record(started.elapsed().as_secs_f64());
                Ok(message)
            }
            // Another request with the same key was written first (a retry sent before the
            // first answer came).
            Written::Existing { sid, same_request } => {
                let first = self
                    .store
                    .message(&message.account_sid, &sid)
                    .await?
                    .ok_or_else(|| Error::internal("an idempotency key's message is gone"))?;
                idempotent_answer(first, same_request)
            }
        }
    }

    /// `FetchMessage`.
    pub async fn fetch_message(
        &self,
        principal: &Principal,
        account_sid: &str,
        sid: &str,
        path: &str,
    ) -> Result<Message> {
        let account = self
            .authorize(principal, account_sid, Operation::FetchMessage, path)
            .await?;
        self.store
            .message(&account.sid, sid)
            .await?
            .ok_or_else(|| Error::not_found(path))
    }

    /// `ListMessage`.
    pub async fn list_messages(
        &self,
        principal: &Principal,
        account_sid: &str,
        filter: &MessageFilter,
        page: &PageRequest,
        path: &str,
    ) -> Result<Vec<Message>> {
        let account = self
            .authorize(principal, account_sid, Operation::ListMessage, path)
            .await?;
        self.store.list_messages(&account.sid, filter, page).await
    }

    /// `UpdateMessage`: `Body=""` redacts; `Status=canceled` cancels a scheduled message.
    pub async fn update_message(
        &self,
        principal: &Principal,
        account_sid: &str,
        sid: &str,
        body: Option<&str>,
        status: Option<&str>,
        path: &str,
    ) -> Result<Message> {
        let account = self
            .authorize(principal, account_sid, Operation::UpdateMessage, path)
            .await?;
        let message = self
            .store
            .message(&account.sid, sid)
            .await?
            .ok_or_else(|| Error::not_found(path))?;
        let now = now_micros();
        if let Some(status) = status {
            if status != "canceled" {
                return Err(Error::invalid_parameter("Status", status));
            }
            if !self.store.cancel_message(&account.sid, sid, now).await? {
                return Err(Error::invalid(30409, "This message cannot be canceled"));
            }
        }
        match body {
            Some("") => {
                if !message.status.is_final() && status.is_none() {
                    return Err(Error::invalid(
                        20009,
                        "Cannot redact a message before it reaches a final state",
                    ));
                }
                self.store.redact_message(&account.sid, sid, now).await?;
            }
            Some(_) => {
                return Err(Error::invalid(
                    20001,
                    "Body can only be updated to an empty string (redaction)",
                ))
            }
            None => {}
        }
        self.store
            .message(&account.sid, sid)
            .await?
            .ok_or_else(|| Error::not_found(path))
    }

    /// `DeleteMessage`: only once the message is final.
    pub async fn delete_message(
        &self,
        principal: &Principal,
        account_sid: &str,
        sid: &str,
        path: &str,
    ) -> Result<()> {
        let account = self
            .authorize(principal, account_sid, Operation::DeleteMessage, path)
            .await?;
        let message = self
            .store
            .message(&account.sid, sid)
            .await?
            .ok_or_else(|| Error::not_found(path))?;
        if !message.status.is_final() {
            return Err(Error::invalid(
                20009,
                "Cannot delete this resource before it is complete",
            ));
        }
        self.store.delete_message(&account.sid, sid).await?;
        Ok(())
    }

    /// `CreateMessageFeedback`: `Outcome` is `confirmed` (the default) or `unconfirmed`.
    /// Returns the outcome with its (date_created, date_updated).
    pub async fn create_message_feedback(
        &self,
        principal: &Principal,
        account_sid: &str,
        message_sid: &str,
        outcome: Option<&str>,
        path: &str,
    ) -> Result<(String, i64, i64)> {
        let account = self
            .authorize(
                principal,
                account_sid,
                Operation::CreateMessageFeedback,
                path,
            )
            .await?;
        let outcome = match outcome.unwrap_or("confirmed") {
            value @ ("confirmed" | "unconfirmed") => value,
            other => return Err(Error::invalid_parameter("Outcome", other)),
        };
        self.store
            .message(&account.sid, message_sid)
            .await?
            .ok_or_else(|| Error::not_found(path))?;
        let (created, updated) = self
            .store
            .save_feedback(&account.sid, message_sid, outcome, now_micros())
            .await?;
        Ok((outcome.to_string(), created, updated))
    }

    /// `ListMedia`.
    pub async fn list_media(
        &self,
        principal: &Principal,
        account_sid: &str,
        message_sid: &str,
        filter: &MediaFilter,
        page: &PageRequest,
        path: &str,
    ) -> Result<Vec<Media>> {
        let account = self
            .authorize(principal, account_sid, Operation::ListMedia, path)
            .await?;
        self.store
            .message(&account.sid, message_sid)
            .await?
            .ok_or_else(|| Error::not_found(path))?;
        self.store
            .list_media(&account.sid, message_sid, filter, page)
            .await
    }

    /// `FetchMedia`.
    pub async fn fetch_media(
        &self,
        principal: &Principal,
        account_sid: &str,
        message_sid: &str,
        sid: &str,
        path: &str,
    ) -> Result<Media> {
        let account = self
            .authorize(principal, account_sid, Operation::FetchMedia, path)
            .await?;
        self.store
            .media(&account.sid, message_sid, sid)
            .await?
            .ok_or_else(|| Error::not_found(path))
    }

    /// `DeleteMedia`.
    pub async fn delete_media(
        &self,
        principal: &Principal,
        account_sid: &str,
        message_sid: &str,
        sid: &str,
        path: &str,
    ) -> Result<()> {
        let account = self
            .authorize(principal, account_sid, Operation::DeleteMedia, path)
            .await?;
        if self
            .store
            .delete_media(&account.sid, message_sid, sid)
            .await?
        {
            Ok(())
        } else {
            Err(Error::not_found(path))
        }
    }

    /// A message arriving from a handset through the simulated carrier (warbler's own
    /// `warbler simulate inbound` and `POST /admin/simulate/inbound`).
    pub async fn receive_simulated(&self, from: &str, to: &str, body: &str) -> Result<Message> {
        self.receive_simulated_with_media(from, to, body, &[]).await
    }

    /// The same with media (an MMS): each URL with the content type its extension suggests.
    pub async fn receive_simulated_with_media(
        &self,
        from: &str,
        to: &str,
        body: &str,
        media_urls: &[&str],
    ) -> Result<Message> {
        for url in media_urls {
            validate_url("MediaUrl", url)?;
        }
        self.receive_inbound(super::inbound::Incoming {
            from: from.to_string(),
            to: to.to_string(),
            body: body.to_string(),
            media: media_urls
                .iter()
                .map(|url| (url.to_string(), media_content_type(url).to_string()))
                .collect(),
        })
        .await
    }

    /// `SimulateInbound` over HTTP: the main account's auth token only.
    pub async fn receive_simulated_as(
        &self,
        principal: &Principal,
        from: Option<&str>,
        to: Option<&str>,
        body: Option<&str>,
        media_urls: &[&str],
    ) -> Result<Message> {
        super::check_credential(principal, Operation::SimulateInbound)?;
        let from = from.ok_or_else(|| Error::missing_parameter("From"))?;
        let to = to.ok_or_else(|| Error::missing_parameter("To"))?;
        // The operator acts within its own family only; checked before anything is stored.
        if let Some((holder_sid, _)) = self.store.number_holder(to).await? {
            let holder = self.store.account(&holder_sid).await?;
            if !holder.is_some_and(|a| principal.account.is_self_or_parent_of(&a)) {
                return Err(Error::forbidden(
                    20403,
                    "That number belongs to another main account",
                ));
            }
        }
        self.receive_simulated_with_media(from, to, body.unwrap_or(""), media_urls)
            .await
    }

    /// Segments per second for a sender.
    fn rate(&self, sender: &Sender) -> f64 {
        if let Some(rate) = self.settings.pacing_overrides.get(&sender.address) {
            return rate.max(0.001);
        }
        let pacing = self.settings.pacing;
        let rate = match sender.kind {
            SenderKind::LongCode => pacing.long_code,
            SenderKind::TollFree => pacing.toll_free,
            SenderKind::ShortCode => pacing.short_code,
            SenderKind::Alpha => pacing.alpha,
        };
        rate.max(0.001)
    }

    /// Submits one route's batch and turns the carrier's answers into outcomes (with the
    /// carrier's records, to commit with them).
    ///
    /// Nothing is handed to the carrier after `deadline` (the claim may have passed to another
    /// node by then): such messages get no outcome and wait for the next claim.
    async fn submit_batch(
        &self,
        route: &str,
        batch: Vec<(Message, Sender)>,
        sandboxes: &std::collections::HashSet<String>,
        now: i64,
        deadline: std::time::Instant,
    ) -> Result<(Vec<(Message, Outcome)>, CarrierRecords)> {
        let submits: Vec<Submit> = batch
            .iter()
            .map(|(m, s)| Submit {
                message_sid: m.sid.clone(),
                from: s.address.clone(),
                to: m.to.clone(),
                body: m.body.clone(),
                segments: m.num_segments,
                is_mms: m.num_media > 0,
            })
            .collect();
        let (outcomes, records) = self.carrier.submit(route, &submits, now, deadline).await?;
        let mut decided = Vec::with_capacity(batch.len());
        for ((message, sender), outcome) in batch.into_iter().zip(outcomes) {
            let outcome = match outcome {
                SubmitOutcome::Accepted { carrier_message_id } => Outcome::Sent {
                    // A sandbox's sends are free: they never left the building.
                    cost: if sandboxes.contains(&message.account_sid) {
                        Some(0)
                    } else {
                        message_cost(
                            &self.settings.prices,
                            &message.to,
                            message.num_segments,
                            message.num_media > 0,
                        )
                    },
                    category: crate::domain::usage::message_category(
                        message.num_media > 0,
                        false,
                        sender.kind.usage_name(),
                    ),
                    from: sender.address,
                    route: route.to_string(),
                    carrier_message_id,
                    at: now,
                },
                SubmitOutcome::Rejected {
                    error_code,
                    error_message,
                } => Outcome::Failed {
                    from: Some(sender.address),
                    error_code,
                    error_message,
                    at: now,
                },
                SubmitOutcome::Deferred { retry_at } => Outcome::Later {
                    due_at: retry_at,
                    from: Some(sender.address),
                    status: MessageStatus::Queued,
                },
                SubmitOutcome::Abandoned => continue,
            };
            decided.push((message, outcome));
        }
        Ok((decided, records))
    }

    /// One round of the dispatcher at time `now` (microseconds): claims due messages, decides
    /// each (expiry, sender choice, pacing), submits the ready ones to the carrier as one
    /// batch, and records every outcome in one transaction. Returns how many were claimed.
    pub async fn dispatch_once(&self, now: i64) -> Result<usize> {
        self.dispatch_round(now, BATCH).await
    }

    /// `dispatch_once` with at most `limit` messages.
    async fn dispatch_round(&self, now: i64, limit: i64) -> Result<usize> {
        // Taken before the claim, so the lease (which the database starts after it) outlasts
        // it. Submits start only in the lease's first half: the second covers the carrier's
        // answer and the record, so a claim that lapsed is never submitted under.
        let claimed_at = std::time::Instant::now();
        let claim = self
            .store
            .claim_due(now, self.settings.dispatch_lease, limit)
            .await?;
        let submit_deadline = claimed_at
            + std::time::Duration::from_micros(self.settings.dispatch_lease.max(0) as u64 / 2);
        let token = claim.token;
        let claimed = claim.messages;
        if claimed.is_empty() {
            return Ok(0);
        }
        if claim.taken_over > 0 {
            // Their previous holder stopped before recording them: any it had handed to the
            // carrier is submitted again now.
            self.counters.claims_taken_over.fetch_add(
                claim.taken_over as u64,
                std::sync::atomic::Ordering::Relaxed,
            );
            tracing::warn!(
                messages = claim.taken_over,
                "took over messages whose claim lapsed (a node died or paused holding them); those it had submitted may be submitted twice"
            );
        }
        self.fault_hold(
            self.settings.fault_hold_claims,
            "fault injection: holding claims",
            claimed.len(),
        )
        .await;
        let mut services: HashMap<String, (MessagingService, Vec<Sender>)> = HashMap::new();
        let mut senders: HashMap<(String, String), Option<Sender>> = HashMap::new();
        // Sticky senders of this batch's recipients, one query per service.
        let mut recipients: HashMap<&str, Vec<&str>> = HashMap::new();
        for c in &claimed {
            if let (None, Some(service)) = (&c.message.from, &c.message.messaging_service_sid) {
                recipients
                    .entry(service.as_str())
                    .or_default()
                    .push(c.message.to.as_str());
            }
        }
        let mut sticky_by_service: HashMap<String, HashMap<String, String>> = HashMap::new();
        for (service, tos) in recipients {
            sticky_by_service.insert(
                service.to_string(),
                self.store.sticky_senders(service, &tos).await?,
            );
        }
        // Opt-outs recorded since these messages were accepted, checked again here for every
        // outbound message (API sends and TwiML replies alike), but the keyword auto-replies.
        let mut recipients_by_account: HashMap<&str, Vec<&str>> = HashMap::new();
        for c in &claimed {
            if c.message.direction != Direction::Inbound && !c.opt_out_exempt {
                recipients_by_account
                    .entry(c.message.account_sid.as_str())
                    .or_default()
                    .push(c.message.to.as_str());
            }
        }
        let mut opted_out = crate::domain::opt_out::OptOutsByRecipient::default();
        for (account, tos) in recipients_by_account {
            for (recipient, scope, stopped) in self.store.opt_outs_of(account, &tos).await? {
                opted_out.add(account.to_string(), recipient, scope, stopped);
            }
        }
        // Rates the parents set on accounts (segments per second across their senders).
        let batch_accounts: Vec<&str> = {
            let mut accounts: Vec<&str> = claimed
                .iter()
                .map(|c| c.message.account_sid.as_str())
                .collect();
            accounts.sort_unstable();
            accounts.dedup();
            accounts
        };
        let account_rates: HashMap<String, f64> = self
            .store
            .account_caps(&batch_accounts)
            .await?
            .into_iter()
            .filter_map(|(account, caps)| caps.max_sps.map(|rate| (account, rate.max(0.001))))
            .collect();
        // Accounts suspended or closed (or under a parent that is) since their messages were
        // accepted: those messages stop here (30002), so one non-compliant tenant's queue is
        // contained while its siblings' goes on.
        let mut inactive = std::collections::HashSet::new();
        for account in &batch_accounts {
            let active = match self.cached_account(account).await? {
                Some(account) => self.ensure_active(&account).await.is_ok(),
                None => false,
            };
            if !active {
                inactive.insert(account.to_string());
            }
        }
        // With A2P enforcement: whether each US long code of the round is in a service with a
        // verified campaign, read once per sender.
        let mut registered: HashMap<(String, String), bool> = HashMap::new();
        let mut decided: Vec<(Message, Outcome)> = Vec::new();
        // Messages with a sender, waiting for their pacing slot.
        let mut paced: Vec<(Message, Sender, Option<i64>)> = Vec::new();
        let mut ready: Vec<(Message, Sender)> = Vec::new();
        for Claimed {
            message,
            pace_slot,
            opt_out_exempt,
            ..
        } in claimed
        {
            let mut message = message;
            if message.num_segments == 0 {
                message.num_segments = if message.num_media > 0 {
                    1
                } else {
                    count_segments(&message.body).max(1) as i64
                };
            }
            if message.status.is_final() || message.status == MessageStatus::Sent {
                continue;
            }
            if inactive.contains(&message.account_sid) {
                decided.push((
                    message,
                    Outcome::Failed {
                        from: None,
                        error_code: ACCOUNT_SUSPENDED.0,
                        error_message: ACCOUNT_SUSPENDED.1.into(),
                        at: now,
                    },
                ));
                continue;
            }
            if now > message.expires_at() {
                let (code, text) = EXPIRED_ERROR;
                decided.push((
                    message,
                    Outcome::Failed {
                        from: None,
                        error_code: code,
                        error_message: text.into(),
                        at: now,
                    },
                ));
                continue;
            }
            let sender = match (&message.from, &message.messaging_service_sid) {
                (Some(from), None) => {
                    // Read once per round for each sender (a batch is mostly a few senders'),
                    // exact as of this round.
                    let key = (message.account_sid.clone(), from.clone());
                    match senders.get(&key) {
                        Some(known) => known.clone(),
                        None => {
                            let found = self
                                .store
                                .account_sender(&message.account_sid, from)
                                .await?;
                            senders.insert(key, found.clone());
                            found
                        }
                    }
                }
                (_, Some(service_sid)) => {
                    if !services.contains_key(service_sid) {
                        let service = self
                            .store
                            .service(&message.account_sid, service_sid)
                            .await?;
                        let pool = self.store.pool_senders(service_sid).await?;
                        if let Some(service) = service {
                            services.insert(service_sid.clone(), (service, pool));
                        }
                    }
                    match services.get(service_sid) {
                        Some((service, pool)) => {
                            let sticky = match &message.from {
                                Some(from) => Some(from.clone()),
                                None if service.sticky_sender => sticky_by_service
                                    .get(service_sid)
                                    .and_then(|known| known.get(&message.to))
                                    .cloned(),
                                None => None,
                            };
                            let country = E164::parse(&message.to)
                                .map(|n| n.iso_country().to_string())
                                .unwrap_or_default();
                            let settings = SelectionSettings {
                                // An already chosen sender (deferred by pacing) stays.
                                sticky_sender: service.sticky_sender || message.from.is_some(),
                                area_code_geomatch: service.area_code_geomatch,
                                mms_converter: service.mms_converter,
                            };
                            let to = Destination {
                                number: &message.to,
                                iso_country: &country,
                            };
                            choose_sender(
                                pool,
                                settings,
                                &to,
                                sticky.as_deref(),
                                message.num_media > 0,
                            )
                            .map(|selection| selection.sender.clone())
                        }
                        None => None,
                    }
                }
                (None, None) => None,
            };
            let Some(sender) = sender else {
                decided.push((
                    message,
                    Outcome::Failed {
                        from: None,
                        error_code: 21704,
                        error_message: crate::store::messages::delivery_error_message(21704).into(),
                        at: now,
                    },
                ));
                continue;
            };
            let blocked = message.direction != Direction::Inbound
                && !opt_out_exempt
                && opted_out.blocks_message(
                    &message.account_sid,
                    &message.to,
                    Some(&sender.address),
                    message.messaging_service_sid.as_deref(),
                );
            if blocked {
                decided.push((
                    message,
                    Outcome::Failed {
                        from: Some(sender.address),
                        error_code: 21610,
                        error_message: crate::store::messages::delivery_error_message(21610).into(),
                        at: now,
                    },
                ));
                continue;
            }
            if self.settings.a2p_enforcement
                && message.direction != Direction::Inbound
                && crate::domain::a2p::is_us_10dlc(
                    sender.kind == SenderKind::LongCode,
                    sender.iso_country.as_deref(),
                    &E164::parse(&message.to)
                        .map(|n| n.iso_country())
                        .unwrap_or_default(),
                )
            {
                let key = (message.account_sid.clone(), sender.address.clone());
                let is_registered = match registered.get(&key) {
                    Some(known) => *known,
                    None => {
                        let found = self
                            .store
                            .registered_numbers(&message.account_sid, &[&sender.address])
                            .await?
                            .contains(&sender.address);
                        registered.insert(key, found);
                        found
                    }
                };
                if !is_registered {
                    let (code, text) = crate::domain::a2p::UNREGISTERED_10DLC;
                    decided.push((
                        message,
                        Outcome::Failed {
                            from: Some(sender.address),
                            error_code: code,
                            error_message: text.into(),
                            at: now,
                        },
                    ));
                    continue;
                }
            }
            paced.push((message, sender, pace_slot));
        }
        // Pacing state of every sender (and rate-capped account) this round needs, read at once.
        let mut keys: Vec<&str> = Vec::new();
        for (message, sender, pace_slot) in &paced {
            if pace_slot.is_some() && message.from.as_deref() == Some(sender.address.as_str()) {
                continue;
            }
            keys.push(sender.address.as_str());
            if account_rates.contains_key(&message.account_sid) {
                keys.push(message.account_sid.as_str());
            }
        }
        keys.sort_unstable();
        keys.dedup();
        let mut pacing: HashMap<String, i64> = if keys.is_empty() {
            HashMap::new()
        } else {
            let stored = self.store.pacing_many(&keys).await?;
            keys.iter()
                .map(|key| (key.to_string(), stored.get(*key).copied().unwrap_or(0)))
                .collect()
        };
        for (message, sender, pace_slot) in paced {
            // A message deferred by pacing already holds its slot; others take the next one
            // of their sender, so a sender's messages keep their order.
            let slot = match pace_slot {
                Some(slot) if message.from.as_deref() == Some(sender.address.as_str()) => slot,
                _ => {
                    // The account's own rate (a cap) paces it like a sender, under its SID.
                    let account_rate = account_rates.get(&message.account_sid).copied();
                    let mut slot = now.max(pacing.get(&sender.address).copied().unwrap_or(0));
                    if account_rate.is_some() {
                        slot = slot.max(pacing.get(&message.account_sid).copied().unwrap_or(0));
                    }
                    let segments = message.num_segments.max(1) as f64;
                    let cost = (segments / self.rate(&sender) * 1_000_000.0) as i64;
                    pacing.insert(sender.address.clone(), slot + cost.max(1));
                    if let Some(rate) = account_rate {
                        let cost = (segments / rate * 1_000_000.0) as i64;
                        pacing.insert(message.account_sid.clone(), slot + cost.max(1));
                    }
                    slot
                }
            };
            if slot > now + PACING_HORIZON {
                decided.push((
                    message,
                    Outcome::Later {
                        due_at: slot,
                        from: Some(sender.address),
                        status: MessageStatus::Queued,
                    },
                ));
                continue;
            }
            ready.push((message, sender));
        }
        let mut records = CarrierRecords::default();
        if !ready.is_empty() {
            // Each message's route: its sender's inventory route, else its destination.
            let inventory = if self.carrier.has_smpp() {
                let addresses: Vec<&str> = ready.iter().map(|(_, s)| s.address.as_str()).collect();
                self.store.inventory_routes(&addresses).await?
            } else {
                HashMap::new()
            };
            // Sandbox accounts' messages go to the simulator whatever the routes.
            let mut sandboxes = std::collections::HashSet::new();
            let mut accounts: Vec<&str> =
                ready.iter().map(|(m, _)| m.account_sid.as_str()).collect();
            accounts.sort_unstable();
            accounts.dedup();
            for account in accounts {
                if self
                    .cached_account(account)
                    .await?
                    .is_some_and(|a| a.sandbox)
                {
                    sandboxes.insert(account.to_string());
                }
            }
            let mut by_route: HashMap<String, Vec<(Message, Sender)>> = HashMap::new();
            for (message, sender) in ready {
                let route = if sandboxes.contains(&message.account_sid) {
                    crate::carrier::smpp::route::SIMULATED.to_string()
                } else {
                    self.carrier.route_for(
                        inventory.get(&sender.address).map(String::as_str),
                        &message.to,
                    )
                };
                by_route.entry(route).or_default().push((message, sender));
            }
            if !sandboxes.is_empty() {
                tracing::info!(accounts = ?sandboxes, "sandbox accounts' messages go to the simulated carrier, free");
            }
            let mut background = 0;
            for (route, batch) in by_route {
                if route == crate::carrier::smpp::route::SIMULATED {
                    let (outcomes, kept) = self
                        .submit_batch(&route, batch, &sandboxes, now, submit_deadline)
                        .await?;
                    decided.extend(outcomes);
                    records.extend(kept);
                    continue;
                }
                // SMPP batches wait on the network (a silent SMSC costs a whole response
                // timeout): they submit and record in the background, a bounded number at a
                // time, while this round goes on. The claim's lease covers them meanwhile.
                let permit = self.carrier.batch_permit().await;
                background += batch.len();
                let app = self.clone();
                // SMPP routes carry no sandbox's messages.
                let no_sandboxes = std::collections::HashSet::new();
                tokio::spawn(async move {
                    let _permit = permit;
                    let recorded = match app
                        .submit_batch(&route, batch, &no_sandboxes, now, submit_deadline)
                        .await
                    {
                        Ok((outcomes, kept)) => {
                            app.store
                                .record_outcomes(&outcomes, &[], &kept, now, token)
                                .await
                        }
                        Err(err) => Err(err),
                    };
                    match recorded {
                        Ok(recorded) => {
                            app.observe_changes(&recorded.changes).await;
                            app.webhook_work.notify_one()
                        }
                        Err(err) => {
                            tracing::error!(%err, %route, "recording an SMPP batch failed; its messages are retried after their lease")
                        }
                    }
                });
            }
            let count = decided.len() + background;
            let pacing: Vec<(String, i64)> = pacing.into_iter().collect();
            let recorded = self
                .store
                .record_outcomes(&decided, &pacing, &records, now, token)
                .await?;
            self.observe_changes(&recorded.changes).await;
            return Ok(count);
        }
        let count = decided.len();
        let pacing: Vec<(String, i64)> = pacing.into_iter().collect();
        let recorded = self
            .store
            .record_outcomes(&decided, &pacing, &records, now, token)
            .await?;
        self.observe_changes(&recorded.changes).await;
        Ok(count)
    }

    /// Applies the delivery receipts due at `now`. Returns how many changed a message.
    pub async fn apply_receipts(&self, now: i64) -> Result<usize> {
        self.apply_receipts_limited(now, BATCH).await
    }

    /// `apply_receipts`, at most `limit` of them.
    async fn apply_receipts_limited(&self, now: i64, limit: i64) -> Result<usize> {
        let changes = self.store.apply_due_receipts(now, limit).await?;
        self.observe_changes(&changes).await;
        Ok(changes.len())
    }

    /// Starts `run_workers`; the receiver resolves when they stop. On SQLite they get a thread
    /// of their own (`run_on_own_thread`), as the message writer does. On PostgreSQL they stay on the server's runtime, which owns the pool's
    /// connections.
    pub fn spawn_workers(
        &self,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> std::io::Result<tokio::sync::oneshot::Receiver<()>> {
        let (finished, stopped) = tokio::sync::oneshot::channel();
        let app = self.clone();
        let run = move || async move {
            tokio::join!(
                app.run_workers(shutdown.clone()),
                app.run_checkpoints(shutdown)
            );
            let _ = finished.send(());
        };
        if self.store.backend() == crate::store::Backend::Postgres {
            tokio::spawn(run());
            return Ok(stopped);
        }
        super::run_on_own_thread("dispatcher", run)?;
        Ok(stopped)
    }

    /// Checkpoints a SQLite file's WAL until `shutdown` fires: every `CHECKPOINT_EVERY` while
    /// the API is paused (`MessageWriter::lull`), and at least every `CHECKPOINT_AT_LEAST`
    /// under load. A checkpoint syncs the database file, and the disk then syncs the WAL for
    /// the API's commits more slowly: during a burst they would stretch the commits that meet
    /// them, while the WAL, growing for a few seconds, costs nothing.
    pub async fn run_checkpoints(&self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        if !self.store.has_wal() {
            return;
        }
        for round in 1u64.. {
            tokio::select! {
                _ = async {
                    tokio::time::sleep(CHECKPOINT_EVERY).await;
                    self.writer.lull(CHECKPOINT_AT_LEAST).await;
                } => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                break;
            }
            if let Err(err) = self
                .store
                .checkpoint(round % WRITER_CHECKPOINT_EVERY == 0)
                .await
            {
                tracing::warn!(%err, "WAL checkpoint failed");
            }
        }
    }

    /// Runs the dispatcher and receipts until `shutdown` fires: a round, then a wait for new
    /// work (or a short tick, for scheduled messages, pacing and receipts coming due).
    pub async fn run_workers(&self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                break;
            }
            let limit = if self.writer.lull(DISPATCH_YIELDS_AT_MOST).await {
                BATCH
            } else {
                BATCH_UNDER_LOAD
            };
            let now = now_micros();
            let round = std::time::Instant::now();
            let dispatched = self.dispatch_round(now, limit).await.unwrap_or_else(|err| {
                tracing::error!(%err, "dispatch round failed");
                0
            });
            if dispatched > 0 {
                metrics::histogram!(crate::telemetry::DISPATCH_ROUND)
                    .record(round.elapsed().as_secs_f64());
            }
            let delivered = self
                .apply_receipts_limited(now, limit)
                .await
                .unwrap_or_else(|err| {
                    tracing::error!(%err, "receipt round failed");
                    0
                });
            if let Err(err) = self.charge_rentals(now).await {
                tracing::error!(%err, "rental charges failed");
            }
            self.expire_mo_parts_if_due(now).await;
            if dispatched > 0 || delivered > 0 {
                // Status changes may have queued callbacks.
                self.webhook_work.notify_one();
            }
            if dispatched == 0 && delivered == 0 {
                tokio::select! {
                    _ = self.work.notified() => {}
                    _ = tokio::time::sleep(std::time::Duration::from_millis(100)) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
    }
}
