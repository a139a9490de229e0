//! Messages: statuses and their order, the create-time rules Twilio enforces (with its error
//! codes), scheduling windows, and pricing by destination prefix.

use crate::domain::usage::{format_money, parse_money, Money};
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageStatus {
    Accepted,
    Scheduled,
    Queued,
    Sending,
    Sent,
    Delivered,
    Undelivered,
    Failed,
    Canceled,
    Receiving,
    Received,
}

impl MessageStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Scheduled => "scheduled",
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Undelivered => "undelivered",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
            Self::Receiving => "receiving",
            Self::Received => "received",
        }
    }

    /// Every status.
    pub const ALL: [Self; 11] = [
        Self::Accepted,
        Self::Scheduled,
        Self::Queued,
        Self::Sending,
        Self::Sent,
        Self::Delivered,
        Self::Undelivered,
        Self::Failed,
        Self::Canceled,
        Self::Receiving,
        Self::Received,
    ];

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == value)
    }

    /// No further status change will come (the message may then be deleted).
    pub const fn is_final(self) -> bool {
        matches!(
            self,
            Self::Delivered | Self::Undelivered | Self::Failed | Self::Canceled | Self::Received
        )
    }
}

/// Bounds of a message.
pub const MAX_BODY_CHARS: usize = 1600;
pub const MAX_MEDIA: usize = 10;
pub const MAX_VALIDITY_PERIOD: i64 = 36000;
/// `SendAt` must be more than 5 minutes and at most 35 days ahead.
pub const MIN_SCHEDULE_AHEAD_SECS: i64 = 300;
pub const MAX_SCHEDULE_AHEAD_SECS: i64 = 35 * 24 * 3600;

/// Twilio's error for a message whose validity period ran out before it could be sent.
pub const EXPIRED_ERROR: (i64, &str) = (30036, "Validity Period Expired");

/// Checks `Body`/`MediaUrl` presence and size. `via_service` picks Twilio's code for "no
/// content" (21619 with a Messaging Service, 21602 without).
pub fn check_content(body: &str, media: &[&str], via_service: bool) -> Result<()> {
    if body.is_empty() && media.is_empty() {
        return Err(if via_service {
            Error::invalid(
                21619,
                "A text message Body, Media URL or Content SID is required",
            )
        } else {
            Error::invalid(21602, "Message body is required")
        });
    }
    if body.chars().count() > MAX_BODY_CHARS {
        return Err(Error::invalid(
            21617,
            "The concatenated message body exceeds the 1600 character limit",
        ));
    }
    if media.len() > MAX_MEDIA {
        return Err(Error::invalid(
            21623,
            format!("Too many media URLs: at most {MAX_MEDIA}"),
        ));
    }
    for url in media {
        if !is_media_url(url) {
            return Err(Error::invalid(21620, format!("Invalid media URL: {url:?}")));
        }
    }
    Ok(())
}

/// Whether `url` may be a message's media: an absolute http(s) URL with a host (no `file:`,
/// `gopher:`… which the Media resource would then redirect clients to).
pub fn is_media_url(url: &str) -> bool {
    url::Url::parse(url)
        .map(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        .unwrap_or(false)
}

/// `ValidityPeriod`: 1..=36000 seconds (Twilio 21624).
pub fn parse_validity_period(raw: &str) -> Result<i64> {
    match raw.parse::<i64>() {
        Ok(v) if (1..=MAX_VALIDITY_PERIOD).contains(&v) => Ok(v),
        _ => Err(Error::invalid(
            21624,
            format!(
                "ValidityPeriod must be an integer from 1 to {MAX_VALIDITY_PERIOD}, not {raw:?}"
            ),
        )),
    }
}

/// Checks a `SendAt` (seconds since the epoch) against the scheduling window.
pub fn check_schedule(send_at_secs: i64, now_secs: i64) -> Result<()> {
    let ahead = send_at_secs - now_secs;
    if ahead <= MIN_SCHEDULE_AHEAD_SECS || ahead > MAX_SCHEDULE_AHEAD_SECS {
        return Err(Error::invalid(
            35114,
            "SendAt must be more than 5 minutes and at most 35 days in the future",
        ));
    }
    Ok(())
}

/// Parses `SendAt`: ISO 8601 / RFC 3339 (`2030-01-02T03:04:05Z`, offsets allowed).
pub fn parse_send_at(raw: &str) -> Result<i64> {
    time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339)
        .map(|d| d.unix_timestamp())
        .map_err(|_| {
            Error::invalid(
                35114,
                format!("SendAt {raw:?} is not an ISO 8601 date-time"),
            )
        })
}

/// One row of the price table: a destination prefix and the price of one segment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Price {
    /// E.164 prefix, e.g. `+1` or `+4477`; `+` alone matches every destination.
    pub prefix: String,
    /// Price of one outbound SMS segment, a decimal string such as `0.0079`.
    pub sms: String,
    /// Price of one outbound MMS, a decimal string.
    pub mms: String,
    /// Price of one inbound SMS segment (none: inbound is free).
    #[serde(default)]
    pub sms_inbound: Option<String>,
    /// Price of one inbound MMS (none: free).
    #[serde(default)]
    pub mms_inbound: Option<String>,
}

/// Sending rates in segments per second, by sender type.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Pacing {
    pub long_code: f64,
    pub toll_free: f64,
    pub short_code: f64,
    pub alpha: f64,
}

impl Default for Pacing {
    fn default() -> Self {
        Pacing {
            long_code: 1.0,
            toll_free: 3.0,
            short_code: 100.0,
            alpha: 10.0,
        }
    }
}

/// A starting price table (USD per segment), to be replaced by the operator's own.
pub fn default_prices() -> Vec<Price> {
    [
        ("+", "0.0500", "0.1000", None, None),
        ("+1", "0.0079", "0.0200", Some("0.0079"), Some("0.0100")),
        ("+44", "0.0400", "0.1000", Some("0.0075"), None),
    ]
    .into_iter()
    .map(|(prefix, sms, mms, sms_inbound, mms_inbound)| Price {
        prefix: prefix.into(),
        sms: sms.into(),
        mms: mms.into(),
        sms_inbound: sms_inbound.map(Into::into),
        mms_inbound: mms_inbound.map(Into::into),
    })
    .collect()
}

/// The price Twilio prints for a sent message: minus segments × the price of the longest
/// matching prefix, with 5 decimals (`-0.01580`). `None` when no prefix matches.
/// The price-table row of `number`: its longest matching prefix.
fn price_row<'a>(table: &'a [Price], number: &str) -> Option<&'a Price> {
    table
        .iter()
        .filter(|p| number.starts_with(&p.prefix))
        .max_by_key(|p| p.prefix.len())
}

fn cost_of(unit: &str, segments: i64, is_mms: bool) -> Option<Money> {
    let count = if is_mms { 1 } else { segments.max(1) };
    parse_money(unit)?.checked_mul(count)
}

/// What sending a message to `to` costs: segments × the SMS price of the destination's
/// longest matching prefix, or one MMS price.
pub fn message_cost(table: &[Price], to: &str, segments: i64, is_mms: bool) -> Option<Money> {
    let row = price_row(table, to)?;
    cost_of(if is_mms { &row.mms } else { &row.sms }, segments, is_mms)
}

/// What receiving a message from `from` costs (by the sender's prefix), or `None` when
/// inbound messages of that kind are free.
pub fn inbound_cost(table: &[Price], from: &str, segments: i64, is_mms: bool) -> Option<Money> {
    let row = price_row(table, from)?;
    let unit = if is_mms {
        row.mms_inbound.as_deref()?
    } else {
        row.sms_inbound.as_deref()?
    };
    cost_of(unit, segments, is_mms)
}

/// `message_cost` as Twilio shows a price: negative, five decimals.
pub fn message_price(table: &[Price], to: &str, segments: i64, is_mms: bool) -> Option<String> {
    message_cost(table, to, segments, is_mms).map(|cost| format_money(-cost))
}

/// `inbound_cost` as Twilio shows a price.
pub fn inbound_price(table: &[Price], from: &str, segments: i64, is_mms: bool) -> Option<String> {
    inbound_cost(table, from, segments, is_mms).map(|cost| format_money(-cost))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_rules_and_codes() {
        assert_eq!(check_content("", &[], false).unwrap_err().code(), 21602);
        assert_eq!(check_content("", &[], true).unwrap_err().code(), 21619);
        assert!(check_content("", &["https://x.example.com/a.png"], false).is_ok());
        assert!(check_content(&"a".repeat(1600), &[], false).is_ok());
        assert_eq!(
            check_content(&"a".repeat(1601), &[], false)
                .unwrap_err()
                .code(),
            21617
        );
        let eleven: Vec<&str> = (0..11).map(|_| "https://x.example.com/a.png").collect();
        assert_eq!(
            check_content("hi", &eleven, false).unwrap_err().code(),
            21623
        );
        assert_eq!(
            check_content("hi", &["ftp://x/y"], false)
                .unwrap_err()
                .code(),
            21620
        );
    }

    #[test]
    fn validity_and_schedule_windows() {
        assert_eq!(parse_validity_period("600").unwrap(), 600);
        assert_eq!(parse_validity_period("0").unwrap_err().code(), 21624);
        assert_eq!(parse_validity_period("36001").unwrap_err().code(), 21624);
        let now = 1_000_000;
        assert!(check_schedule(now + 301, now).is_ok());
        assert!(check_schedule(now + 300, now).is_err());
        assert!(check_schedule(now + 35 * 86400, now).is_ok());
        assert!(check_schedule(now + 35 * 86400 + 1, now).is_err());
        assert_eq!(
            parse_send_at("2030-01-02T03:04:05Z").unwrap(),
            1_893_553_445
        );
        assert!(parse_send_at("tomorrow").is_err());
    }

    #[test]
    fn prices_use_the_longest_prefix() {
        let table = vec![
            Price {
                prefix: "+".into(),
                sms: "0.05".into(),
                mms: "0.1".into(),
                sms_inbound: None,
                mms_inbound: None,
            },
            Price {
                prefix: "+1".into(),
                sms: "0.0079".into(),
                mms: "0.02".into(),
                sms_inbound: Some("0.0079".into()),
                mms_inbound: None,
            },
            Price {
                prefix: "+44".into(),
                sms: "0.04".into(),
                mms: "0.1".into(),
                sms_inbound: None,
                mms_inbound: None,
            },
        ];
        assert_eq!(
            message_price(&table, "+14155550100", 2, false).as_deref(),
            Some("-0.01580")
        );
        assert_eq!(
            inbound_price(&table, "+14155550100", 3, false).as_deref(),
            Some("-0.02370")
        );
        assert_eq!(inbound_price(&table, "+447700900123", 1, false), None);
        assert_eq!(
            message_price(&table, "+447700900123", 1, false).as_deref(),
            Some("-0.04000")
        );
        assert_eq!(
            message_price(&table, "+33612345678", 3, false).as_deref(),
            Some("-0.15000")
        );
        assert_eq!(
            message_price(&table, "+14155550100", 3, true).as_deref(),
            Some("-0.02000")
        );
        assert_eq!(message_price(&[], "+14155550100", 1, false), None);
    }

    #[test]
    fn final_statuses() {
        assert!(MessageStatus::Delivered.is_final());
        assert!(MessageStatus::Canceled.is_final());
        assert!(!MessageStatus::Sent.is_final());
        assert!(!MessageStatus::Scheduled.is_final());
        assert_eq!(MessageStatus::parse("partially_delivered"), None);
        assert_eq!(MessageStatus::parse("sent"), Some(MessageStatus::Sent));
    }
}

/// Who sent a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    OutboundApi,
    OutboundReply,
    Inbound,
}

impl Direction {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::OutboundApi => "outbound-api",
            Self::OutboundReply => "outbound-reply",
            Self::Inbound => "inbound",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "outbound-api" => Some(Self::OutboundApi),
            "outbound-reply" => Some(Self::OutboundReply),
            "inbound" => Some(Self::Inbound),
            _ => None,
        }
    }
}

/// A message as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub sid: String,
    pub account_sid: String,
    pub messaging_service_sid: Option<String>,
    pub direction: Direction,
    /// `None` until the dispatcher picks a sender from the service's pool.
    pub from: Option<String>,
    pub to: String,
    pub body: String,
    pub encoding: String,
    pub num_segments: i64,
    pub num_media: i64,
    pub status: MessageStatus,
    pub error_code: Option<i64>,
    pub error_message: Option<String>,
    pub price: Option<String>,
    pub price_unit: String,
    pub status_callback: Option<String>,
    pub validity_period: i64,
    /// Microseconds since the epoch.
    pub send_at: Option<i64>,
    pub date_created: i64,
    pub date_updated: i64,
    pub date_sent: Option<i64>,
}

impl Message {
    /// When a message still waiting to be sent expires (its validity period runs from creation,
    /// or from `SendAt` for a scheduled message).
    pub fn expires_at(&self) -> i64 {
        self.send_at.unwrap_or(self.date_created) + self.validity_period * 1_000_000
    }
}

/// A client's idempotency key on a create (`Idempotency-Key` or `I-Twilio-Idempotency-Token`)
/// and the fingerprint of the request's parameters: a retry with the same key gets the first
/// message back; the same key with other parameters is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    pub key: String,
    pub fingerprint: String,
}

/// How long an idempotency key answers retries (microseconds): a day, as payment APIs keep
/// theirs; after that the same key sends anew.
pub const IDEMPOTENCY_KEYS_KEPT: i64 = 24 * 3600 * 1_000_000;

/// The longest idempotency key accepted.
pub const MAX_IDEMPOTENCY_KEY: usize = 255;

impl IdempotencyKey {
    /// A key as sent (printable ASCII, 1 to `MAX_IDEMPOTENCY_KEY` characters) with the
    /// fingerprint of `params` (name/value pairs, in any order: SDKs differ in order).
    pub fn new(key: &str, params: &[(String, String)]) -> Option<IdempotencyKey> {
        let printable = key.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
        if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY || !printable {
            return None;
        }
        use sha2::{Digest, Sha256};
        let mut pairs: Vec<&(String, String)> = params.iter().collect();
        pairs.sort();
        let mut hash = Sha256::new();
        for (name, value) in pairs {
            // Lengths first, so no two different lists hash the same bytes.
            hash.update((name.len() as u64).to_be_bytes());
            hash.update(name.as_bytes());
            hash.update((value.len() as u64).to_be_bytes());
            hash.update(value.as_bytes());
        }
        Some(IdempotencyKey {
            key: key.to_string(),
            fingerprint: hex::encode(hash.finalize()),
        })
    }
}

/// Media attached to a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    pub sid: String,
    pub message_sid: String,
    pub account_sid: String,
    pub url: String,
    pub content_type: String,
    pub date_created: i64,
    pub date_updated: i64,
}

/// The content type Twilio reports for a media URL, guessed from its extension.
pub fn media_content_type(url: &str) -> &'static str {
    let path = url
        .split(['?', '#'])
        .next()
        .unwrap_or(url)
        .to_ascii_lowercase();
    match path.rsplit('.').next() {
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("png") => "image/png",
        Some("gif") => "image/gif",
        Some("mp4") => "video/mp4",
        Some("mp3") => "audio/mpeg",
        Some("pdf") => "application/pdf",
        Some("vcf") => "text/vcard",
        _ => "application/octet-stream",
    }
}
