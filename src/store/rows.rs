//! Row types the store's modules share: a message's columns and status events, what the
//! group commit decided for a new message, carrier receipts, status changes, webhook kinds and
//! targets. Here, and not in any one of `messages`, `carrier`, `inbound` or `webhooks`, so
//! those import one place and never each other in a circle.

use super::{int, opt_int, opt_text, text};
use crate::domain::message::{Direction, Message, MessageStatus};
use crate::error::{Error, Result};

pub(crate) const MESSAGE_COLUMNS: &str =
    "sid, account_sid, messaging_service_sid, direction, from_address, \
    to_address, body, encoding, num_segments, num_media, status, error_code, error_message, price, \
    price_unit, status_callback, validity_period, send_at, date_created, date_updated, date_sent";

/// What a status callback reports of its message (see `Store::callback_subjects`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackSubject {
    pub sid: String,
    pub account_sid: String,
    pub messaging_service_sid: Option<String>,
    pub from: Option<String>,
    pub to: String,
    pub status: MessageStatus,
}

/// One status transition.
pub(crate) struct Event {
    pub sid: String,
    pub status: MessageStatus,
    pub error_code: Option<i64>,
    pub at: i64,
    /// The carrier's done date (`RawDlrDoneDate`, `YYMMDDhhmm`), for receipts that had one.
    pub done_date: Option<String>,
    /// Whether the transition is reported to the status callback (every one but the first).
    pub notify: bool,
}

impl Event {
    pub(crate) fn change(
        sid: &str,
        status: MessageStatus,
        error_code: Option<i64>,
        at: i64,
    ) -> Event {
        Event {
            sid: sid.to_string(),
            status,
            error_code,
            at,
            done_date: None,
            notify: true,
        }
    }
}

/// Appends one transition to `out` in the form of the `messages.events` column:
/// `status,at[,code];`.
pub(crate) fn push_event_entry(
    out: &mut String,
    status: MessageStatus,
    at: i64,
    error_code: Option<i64>,
) {
    use std::fmt::Write;
    let _ = write!(out, "{},{at}", status.as_str());
    if let Some(code) = error_code {
        let _ = write!(out, ",{code}");
    }
    out.push(';');
}

/// One transition as a `messages.events` fragment (see `push_event_entry`).
pub(crate) fn event_entry(status: MessageStatus, at: i64, error_code: Option<i64>) -> String {
    let mut out = String::new();
    push_event_entry(&mut out, status, at, error_code);
    out
}

/// Appends `events`' entries to `out` (see `push_event_entry`), in the order given, which is
/// the order they happened.
pub(crate) fn push_event_entries<'a>(
    out: &mut String,
    events: impl IntoIterator<Item = &'a Event>,
) {
    for event in events {
        push_event_entry(out, event.status, event.at, event.error_code);
    }
}

/// The entries of `events` as one `messages.events` fragment (see `push_event_entries`).
pub(crate) fn event_entries<'a>(events: impl IntoIterator<Item = &'a Event>) -> String {
    let mut out = String::new();
    push_event_entries(&mut out, events);
    out
}

/// The transitions recorded in a `messages.events` column, in order: (status, error code, at).
pub(crate) fn decode_events(column: &str) -> Result<Vec<(MessageStatus, Option<i64>, i64)>> {
    let bad = || Error::internal("bad message event");
    column
        .split(';')
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let mut fields = entry.split(',');
            let status = fields
                .next()
                .and_then(MessageStatus::parse)
                .ok_or_else(bad)?;
            let at = fields
                .next()
                .and_then(|at| at.parse::<i64>().ok())
                .ok_or_else(bad)?;
            let code = match fields.next() {
                Some(code) => Some(code.parse::<i64>().map_err(|_| bad())?),
                None => None,
            };
            if fields.next().is_some() {
                return Err(bad());
            }
            Ok((status, code, at))
        })
        .collect()
}

/// What the group commit did with one new message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    Accepted,
    /// The recipient opted out of its sender or service (21610).
    OptedOut,
    /// Over one of the account's monthly caps (the reason).
    OverCap(String),
    /// Its idempotency key was taken by an earlier message, `sid`: nothing new was written.
    /// `same_request`: the earlier create had the same parameters (a retry).
    Duplicate {
        sid: String,
        same_request: bool,
    },
}

/// A message's move to `sent` or to a final status, as metrics and alarms count it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    pub account_sid: String,
    pub service_sid: Option<String>,
    pub status: MessageStatus,
    pub error_code: Option<i64>,
    /// When the message was accepted (its `date_created`), microseconds.
    pub accepted_at: i64,
    /// When it changed, microseconds.
    pub at: i64,
    pub segments: i64,
}

impl StatusChange {
    pub(crate) fn of(
        m: &Message,
        status: MessageStatus,
        error_code: Option<i64>,
        at: i64,
    ) -> StatusChange {
        StatusChange {
            account_sid: m.account_sid.clone(),
            service_sid: m.messaging_service_sid.clone(),
            status,
            error_code,
            accepted_at: m.date_created,
            at,
            segments: m.num_segments.max(1),
        }
    }
}

/// What a receipt does to its message: (message SID, new status, error code, done date).
pub(crate) type ReceiptUpdate = (String, MessageStatus, Option<i64>, Option<String>);

/// A delivery receipt from a carrier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub id: String,
    pub carrier_message_id: String,
    pub status: MessageStatus,
    pub error_code: Option<i64>,
    pub done_date: Option<String>,
    pub due_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookKind {
    /// A message status callback.
    Status,
    /// An inbound message for the number's (or service's) webhook.
    Inbound,
    /// A Usage Trigger that fired.
    Trigger,
    /// An alarm that fired or cleared.
    Alarm,
    /// An A2P registration record changed status (a CloudEvents JSON body).
    A2pEvent,
}

impl WebhookKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            WebhookKind::Status => "status",
            WebhookKind::Inbound => "inbound",
            WebhookKind::Trigger => "trigger",
            WebhookKind::Alarm => "alarm",
            WebhookKind::A2pEvent => "a2p_event",
        }
    }
}

/// Where an inbound message's webhook goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundTarget {
    pub url: String,
    pub method: String,
    pub fallback_url: Option<String>,
    pub fallback_method: Option<String>,
}

/// Message SID → where its status callbacks go (account SID, URL), or `None` for a message
/// with no callback URL.
pub(crate) type CallbackTargets = std::collections::HashMap<String, Option<(String, String)>>;

pub(crate) const ALERT_COLUMNS: &str =
    "sid, account_sid, error_code, log_level, alert_text, resource_sid, \
    service_sid, request_method, request_url, request_variables, request_headers, response_body, \
    response_headers, date_created";

/// A `messages` row (its `MESSAGE_COLUMNS`) as a `Message`.
pub(crate) fn decode_message(row: &impl super::Columns) -> Result<Message> {
    let status = text(row, "status")?;
    let direction = text(row, "direction")?;
    Ok(Message {
        sid: text(row, "sid")?,
        account_sid: text(row, "account_sid")?,
        messaging_service_sid: opt_text(row, "messaging_service_sid")?,
        direction: Direction::parse(&direction)
            .ok_or_else(|| Error::internal(format!("bad stored direction {direction}")))?,
        from: opt_text(row, "from_address")?,
        to: text(row, "to_address")?,
        body: text(row, "body")?,
        encoding: text(row, "encoding")?,
        num_segments: int(row, "num_segments")?,
        num_media: int(row, "num_media")?,
        status: MessageStatus::parse(&status)
            .ok_or_else(|| Error::internal(format!("bad stored status {status}")))?,
        error_code: opt_int(row, "error_code")?,
        error_message: opt_text(row, "error_message")?,
        price: opt_text(row, "price")?,
        price_unit: text(row, "price_unit")?,
        status_callback: opt_text(row, "status_callback")?,
        validity_period: int(row, "validity_period")?,
        send_at: opt_int(row, "send_at")?,
        date_created: int(row, "date_created")?,
        date_updated: int(row, "date_updated")?,
        date_sent: opt_int(row, "date_sent")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_events_column_reads_back_what_was_appended_in_order() {
        let mut column = event_entries([&Event {
            notify: false,
            ..Event::change("SM1", MessageStatus::Queued, None, 10)
        }]);
        push_event_entries(
            &mut column,
            &[
                Event::change("SM1", MessageStatus::Sending, None, 20),
                Event::change("SM1", MessageStatus::Sent, None, 20),
            ],
        );
        column.push_str(&event_entries([&Event::change(
            "SM1",
            MessageStatus::Undelivered,
            Some(30003),
            15,
        )]));
        assert_eq!(column, "queued,10;sending,20;sent,20;undelivered,15,30003;");
        // The order appended, not the times': a later node's clock may lag an earlier one's.
        assert_eq!(
            decode_events(&column).unwrap(),
            vec![
                (MessageStatus::Queued, None, 10),
                (MessageStatus::Sending, None, 20),
                (MessageStatus::Sent, None, 20),
                (MessageStatus::Undelivered, Some(30003), 15),
            ]
        );
        assert_eq!(decode_events("").unwrap(), vec![]);
    }

    #[test]
    fn a_damaged_message_events_column_is_an_error_not_a_guess() {
        for bad in [
            "queued;",
            "nonsense,10;",
            "sent,ten;",
            "failed,10,code;",
            "failed,10,1,2;",
        ] {
            assert!(decode_events(bad).is_err(), "{bad}");
        }
    }
}
