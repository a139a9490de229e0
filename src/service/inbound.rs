//! Inbound messages from any carrier: stored as `received`, opt-out keywords applied with
//! their auto-replies, and the webhook queued, all in one transaction. Also the opt-out list
//! (warbler extension endpoints) and a service's Advanced Opt-Out settings.

use super::{App, Operation, Principal};
use crate::domain::account::AccountStatus;
use crate::domain::encoding::{count_segments, encoding_of, Encoding};
use crate::domain::message::{Direction, Media, Message, MessageStatus, MAX_VALIDITY_PERIOD};
use crate::domain::number::E164;
use crate::domain::opt_out::{
    blocks, check_reply, parse_keywords, scope_key, KeywordKind, OptOutSettings,
};
use crate::domain::paging::PageRequest;
use crate::domain::sid::{self, SidKind};
use crate::domain::time::now_micros;
use crate::error::{Error, Result};
use crate::store::carrier::MoParts;
use crate::store::inbound::{Arrival, OptOut, OptOutChange};

/// A message from a handset, as a carrier hands it over.
#[derive(Debug, Clone, Default)]
pub struct Incoming {
    pub from: String,
    pub to: String,
    pub body: String,
    /// Media URLs with their content types (MMS).
    pub media: Vec<(String, String)>,
}

fn encoding_name(body: &str) -> String {
    match encoding_of(body) {
        Encoding::Gsm7 => "GSM-7".into(),
        Encoding::Ucs2 => "UCS-2".into(),
    }
}

fn country_of(number: &str) -> String {
    E164::parse(number)
        .map(|n| n.iso_country().to_string())
        .unwrap_or_default()
}

/// The inbound webhook's form, in the order Twilio's recorded traffic shows.
pub fn inbound_form(
    message: &Message,
    media: &[Media],
    opt_out: Option<KeywordKind>,
) -> Vec<(String, String)> {
    let from = message.from.clone().unwrap_or_default();
    let mut form: Vec<(String, String)> = vec![
        ("ToCountry".into(), country_of(&message.to)),
        ("ToState".into(), String::new()),
        ("SmsMessageSid".into(), message.sid.clone()),
        ("NumMedia".into(), media.len().to_string()),
        ("ToCity".into(), String::new()),
        ("FromZip".into(), String::new()),
        ("SmsSid".into(), message.sid.clone()),
        ("FromState".into(), String::new()),
        ("SmsStatus".into(), "received".into()),
        ("FromCity".into(), String::new()),
        ("Body".into(), message.body.clone()),
        ("FromCountry".into(), country_of(&from)),
        ("To".into(), message.to.clone()),
        ("ToZip".into(), String::new()),
        ("NumSegments".into(), message.num_segments.to_string()),
    ];
    for (i, item) in media.iter().enumerate() {
        form.push((format!("MediaContentType{i}"), item.content_type.clone()));
        form.push((format!("MediaUrl{i}"), item.url.clone()));
    }
    if let Some(kind) = opt_out {
        form.push(("OptOutType".into(), kind.as_str().into()));
    }
    if let Some(service) = &message.messaging_service_sid {
        form.push(("MessagingServiceSid".into(), service.clone()));
    }
    form.push(("MessageSid".into(), message.sid.clone()));
    form.push(("AccountSid".into(), message.account_sid.clone()));
    form.push(("From".into(), from));
    form.push(("ApiVersion".into(), "2010-04-01".into()));
    form
}

impl App {
    /// A message arriving from a handset on one of the operator's numbers.
    pub async fn receive_inbound(&self, incoming: Incoming) -> Result<Message> {
        self.receive_assembled(incoming, None)
            .await?
            .ok_or_else(|| Error::internal("an inbound message without parts was not stored"))
    }

    /// The same for a message assembled from stored SMPP parts, which are taken in the
    /// transaction that stores it: `None` (nothing stored) when they are already gone, because
    /// another node or an earlier attempt delivered them.
    pub async fn receive_assembled(
        &self,
        incoming: Incoming,
        assembled_from: Option<&MoParts>,
    ) -> Result<Option<Message>> {
        let from = E164::parse(&incoming.from)
            .map(|n| n.as_str().to_string())
            .ok_or_else(|| {
                Error::invalid(
                    21211,
                    format!("From {} is not a valid phone number", incoming.from),
                )
            })?;
        let route = self
            .store
            .inbound_route(&incoming.to)
            .await?
            .ok_or_else(|| Error::invalid(21606, format!("No account holds {}", incoming.to)))?;
        if incoming.body.chars().count() > crate::domain::message::MAX_BODY_CHARS {
            return Err(Error::invalid(
                21617,
                "The message body exceeds the 1600 character limit",
            ));
        }
        if incoming.media.len() > crate::domain::message::MAX_MEDIA {
            return Err(Error::invalid(21623, "More than 10 media items"));
        }
        let now = now_micros();
        let message_sid = sid::generate(if incoming.media.is_empty() {
            SidKind::Message
        } else {
            SidKind::MmsMessage
        });
        let media: Vec<Media> = incoming
            .media
            .iter()
            .map(|(url, content_type)| Media {
                sid: sid::generate(SidKind::Media),
                message_sid: message_sid.clone(),
                account_sid: route.account_sid.clone(),
                url: url.clone(),
                content_type: content_type.clone(),
                date_created: now,
                date_updated: now,
            })
            .collect();
        let num_segments = count_segments(&incoming.body).max(1) as i64;
        let is_mms = !media.is_empty();
        let cost = crate::domain::message::inbound_cost(
            &self.settings.prices,
            &from,
            num_segments,
            is_mms,
        );
        let usage = crate::store::usage::UsageRow::at(
            &route.account_sid,
            now,
            &crate::domain::usage::message_category(
                is_mms,
                true,
                match route.number_type.as_str() {
                    "short-code" => "shortcode",
                    "toll-free" => "tollfree",
                    _ => "longcode",
                },
            ),
            if is_mms { 1 } else { num_segments },
            cost.unwrap_or(0),
        );
        let message = Message {
            sid: message_sid,
            account_sid: route.account_sid.clone(),
            messaging_service_sid: route.service_sid.clone(),
            direction: Direction::Inbound,
            from: Some(from.clone()),
            to: incoming.to.clone(),
            encoding: encoding_name(&incoming.body),
            num_segments,
            num_media: media.len() as i64,
            body: incoming.body.clone(),
            status: MessageStatus::Received,
            error_code: None,
            error_message: None,
            price: cost.map(|c| crate::domain::usage::format_money(-c)),
            price_unit: self.settings.price_unit.clone(),
            status_callback: None,
            validity_period: MAX_VALIDITY_PERIOD,
            send_at: None,
            date_created: now,
            date_updated: now,
            date_sent: Some(now),
        };
        // Short codes outside a Messaging Service get no keyword handling (as at Twilio).
        let keyword = if route.number_type == "short-code" && route.service_sid.is_none() {
            None
        } else {
            route.opt_out.classify(&incoming.body)
        };
        let opt_out = keyword
            .filter(|k| *k != KeywordKind::Help)
            .map(|kind| OptOutChange {
                kind,
                account_sid: route.account_sid.clone(),
                recipient: from.clone(),
                scope: scope_key(
                    self.settings.opt_out_scope,
                    &incoming.to,
                    route.service_sid.as_deref(),
                ),
                sender: incoming.to.clone(),
                keyword: incoming.body.trim().to_uppercase(),
            });
        // Auto-replies come from the number that received the keyword and are exempt from
        // the opt-out they confirm.
        let mut auto_reply = keyword.map(|kind| {
            let body = route.opt_out.reply(kind).to_string();
            Message {
                sid: sid::generate(SidKind::Message),
                messaging_service_sid: None,
                direction: Direction::OutboundReply,
                from: Some(incoming.to.clone()),
                to: from.clone(),
                encoding: encoding_name(&body),
                num_segments: count_segments(&body).max(1) as i64,
                num_media: 0,
                body,
                status: MessageStatus::Queued,
                price: None,
                date_sent: None,
                ..message.clone()
            }
        });
        // An auto-reply is a send of the account: not sent, as an API send is not, when the
        // account is not active or its family's balance is spent (its caps are checked where
        // it is stored). The opt-out it would confirm is recorded all the same.
        let mut alerts = Vec::new();
        if let Some(reply) = &auto_reply {
            let refused = match self.store.account(&route.account_sid).await? {
                None => Some("the account no longer exists".to_string()),
                Some(account) if account.status != AccountStatus::Active => {
                    Some("Account not active".to_string())
                }
                Some(account) => self
                    .check_funds(&account)
                    .await
                    .err()
                    .map(|e| e.to_string()),
            };
            if let Some(reason) = refused {
                alerts.push(crate::store::outbox::refused_reply_alert(
                    reply,
                    &format!("Auto-reply to {} not sent: {reason}", reply.to),
                    now,
                ));
                auto_reply = None;
            }
        }
        let auto_reply_estimate = auto_reply
            .as_ref()
            .and_then(|reply| {
                crate::domain::message::message_cost(
                    &self.settings.prices,
                    &reply.to,
                    reply.num_segments,
                    false,
                )
            })
            .unwrap_or(0);
        let payload_form = inbound_form(&message, &media, keyword);
        let webhook = route.target.clone().map(|target| {
            let payload = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(payload_form.iter())
                .finish();
            (target, payload)
        });
        let stored = self
            .store
            .receive(
                Arrival {
                    message: &message,
                    media: &media,
                    opt_out,
                    auto_reply,
                    auto_reply_estimate,
                    alerts,
                    webhook,
                    usage: Some(usage),
                    assembled_from,
                },
                now,
            )
            .await?;
        if !stored {
            return Ok(None);
        }
        self.work.notify_one();
        self.webhook_work.notify_one();
        Ok(Some(message))
    }

    /// Whether `to` has opted out of messages from `sender` (through `service_sid`).
    pub async fn is_opted_out(
        &self,
        account_sid: &str,
        to: &str,
        sender: Option<&str>,
        service_sid: Option<&str>,
    ) -> Result<bool> {
        let scopes = self.store.opt_outs_of(account_sid, &[to]).await?;
        Ok(scopes
            .iter()
            .any(|(_, scope, stopped)| blocks(scope, stopped.as_deref(), sender, service_sid)))
    }

    /// `ListOptOut` (warbler extension).
    pub async fn list_opt_outs(
        &self,
        principal: &Principal,
        account_sid: &str,
        page: &PageRequest,
        path: &str,
    ) -> Result<Vec<OptOut>> {
        let account = self
            .authorize(principal, account_sid, Operation::ListOptOut, path)
            .await?;
        self.store.list_opt_outs(&account.sid, page).await
    }

    /// `ImportOptOut` (warbler extension): CSV with a header naming `recipient` and
    /// optionally `scope` (default `account`), `sender`, `keyword`. All rows or none.
    pub async fn import_opt_outs(
        &self,
        principal: &Principal,
        account_sid: &str,
        csv_data: &[u8],
        path: &str,
    ) -> Result<u64> {
        let account = self
            .authorize(principal, account_sid, Operation::ImportOptOut, path)
            .await?;
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(csv_data);
        let headers = reader
            .headers()
            .map_err(|err| Error::invalid(20001, format!("Unreadable CSV header: {err}")))?
            .clone();
        let column = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
        let recipient_at = column("recipient")
            .ok_or_else(|| Error::invalid(20001, "The CSV needs a 'recipient' column"))?;
        let (scope_at, sender_at, keyword_at) =
            (column("scope"), column("sender"), column("keyword"));
        let now = now_micros();
        let mut rows = Vec::new();
        for (index, record) in reader.records().enumerate() {
            let line = index + 2;
            let record =
                record.map_err(|err| Error::invalid(20001, format!("Line {line}: {err}")))?;
            let get = |at: Option<usize>| at.and_then(|i| record.get(i)).filter(|v| !v.is_empty());
            let raw = record.get(recipient_at).unwrap_or("");
            let recipient = E164::parse(raw).ok_or_else(|| {
                Error::invalid(
                    21211,
                    format!("Line {line}: '{raw}' is not a valid phone number"),
                )
            })?;
            let scope = get(scope_at).unwrap_or("account").to_string();
            let scope_ok = scope == "account"
                || sid::is_valid(SidKind::MessagingService, &scope)
                || E164::parse(&scope).is_some();
            if !scope_ok {
                return Err(Error::invalid(
                    20001,
                    format!("Line {line}: scope must be 'account', a MG… SID or a number"),
                ));
            }
            rows.push(OptOut {
                sid: sid::generate(SidKind::OptOut),
                account_sid: account.sid.clone(),
                recipient: recipient.as_str().to_string(),
                scope,
                sender: get(sender_at).map(str::to_string),
                keyword: get(keyword_at).unwrap_or("IMPORT").to_uppercase(),
                date_created: now,
            });
        }
        self.store.import_opt_outs(&rows).await
    }

    /// `DeleteOptOut` (warbler extension): lifts every opt-out of one recipient.
    pub async fn delete_opt_out(
        &self,
        principal: &Principal,
        account_sid: &str,
        recipient: &str,
        path: &str,
    ) -> Result<()> {
        let account = self
            .authorize(principal, account_sid, Operation::DeleteOptOut, path)
            .await?;
        if self.store.delete_opt_out(&account.sid, recipient).await? == 0 {
            return Err(Error::not_found(path));
        }
        Ok(())
    }

    /// `FetchOptOutSettings` (warbler extension): a service's Advanced Opt-Out, or the
    /// defaults when it has none.
    pub async fn service_opt_out(
        &self,
        principal: &Principal,
        service_sid: &str,
        path: &str,
    ) -> Result<(OptOutSettings, bool)> {
        super::check_credential(principal, Operation::FetchOptOutSettings)?;
        self.store
            .service(&principal.account.sid, service_sid)
            .await?
            .ok_or_else(|| Error::not_found(path))?;
        Ok(match self.store.service_opt_out(service_sid).await? {
            Some(settings) => (settings, true),
            None => (OptOutSettings::default(), false),
        })
    }

    /// `UpdateOptOutSettings` (warbler extension): turns on Advanced Opt-Out for a service
    /// with extra keywords and custom replies (an empty reply restores Twilio's default).
    pub async fn update_service_opt_out(
        &self,
        principal: &Principal,
        service_sid: &str,
        changes: &[(&str, &str)],
        path: &str,
    ) -> Result<OptOutSettings> {
        let (mut settings, _) = self.service_opt_out(principal, service_sid, path).await?;
        super::check_credential(principal, Operation::UpdateOptOutSettings)?;
        for (name, value) in changes {
            match *name {
                "OptOutKeywords" => settings.stop_keywords = parse_keywords(name, value)?,
                "OptInKeywords" => settings.start_keywords = parse_keywords(name, value)?,
                "HelpKeywords" => settings.help_keywords = parse_keywords(name, value)?,
                "OptOutMessage" => settings.stop_reply = check_reply(name, value)?,
                "OptInMessage" => settings.start_reply = check_reply(name, value)?,
                "HelpMessage" => settings.help_reply = check_reply(name, value)?,
                _ => {}
            }
        }
        self.store
            .save_service_opt_out(service_sid, &settings, now_micros())
            .await?;
        Ok(settings)
    }
}
