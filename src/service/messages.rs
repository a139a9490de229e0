//! Sending messages at request time: validation at create time (with Twilio's codes), the
//! durable queue (messages are their own queue rows), reading, updating, redacting and
//! deleting them. What sends them afterwards is `engine::dispatcher`.

use super::writer::Written;
use super::{App, Operation, Principal};
use crate::domain::account::AccountStatus;
use crate::domain::encoding::{count_segments, encoding_of, smart_encode, Encoding};
use crate::domain::message::{
    check_content, check_schedule, media_content_type, message_cost, parse_send_at,
    parse_validity_period, Direction, IdempotencyKey, Media, Message, MessageStatus,
    MAX_VALIDITY_PERIOD,
};
use crate::domain::number::{validate_url, E164};
use crate::domain::paging::PageRequest;
use crate::domain::sid::{self, SidKind};
use crate::domain::time::now_micros;
use crate::error::{Error, Result};
use crate::store::messages::{MediaFilter, MessageFilter};

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
}
