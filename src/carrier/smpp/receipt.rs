//! Delivery receipts as SMSCs send them in `deliver_sm` / `data_sm`: the `message_state`
//! TLV when present, else the de-facto text format of SMPP 3.4 Appendix B,
//! `id:IIIIIIIIII sub:SSS dlvrd:DDD submit date:YYMMDDhhmm done date:YYMMDDhhmm stat:DDDDDDD err:E text:…`.

use crate::domain::message::MessageStatus;

/// A message's state as a receipt reports it (SMPP 3.4 §5.2.28 values, and the text stats).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptState {
    Enroute,
    Delivered,
    Expired,
    Deleted,
    Undeliverable,
    Accepted,
    Unknown,
    Rejected,
}

impl ReceiptState {
    /// From the `message_state` TLV.
    pub fn from_tlv(value: u8) -> Option<ReceiptState> {
        Some(match value {
            1 => ReceiptState::Enroute,
            2 => ReceiptState::Delivered,
            3 => ReceiptState::Expired,
            4 => ReceiptState::Deleted,
            5 => ReceiptState::Undeliverable,
            6 => ReceiptState::Accepted,
            7 => ReceiptState::Unknown,
            8 => ReceiptState::Rejected,
            _ => return None,
        })
    }

    /// From the text's `stat:` field (any case; SMSCs also send the full words).
    pub fn from_stat(stat: &str) -> Option<ReceiptState> {
        Some(match stat.to_ascii_uppercase().as_str() {
            "ENROUTE" => ReceiptState::Enroute,
            "DELIVRD" | "DELIVERED" => ReceiptState::Delivered,
            "EXPIRED" => ReceiptState::Expired,
            "DELETED" => ReceiptState::Deleted,
            "UNDELIV" | "UNDELIVERABLE" => ReceiptState::Undeliverable,
            "ACCEPTD" | "ACCEPTED" => ReceiptState::Accepted,
            "UNKNOWN" => ReceiptState::Unknown,
            "REJECTD" | "REJECTED" => ReceiptState::Rejected,
            _ => return None,
        })
    }

    /// The Twilio status and error code a final state becomes; `None` for the intermediate
    /// ones (en route, accepted), which change nothing.
    pub fn outcome(self) -> Option<(MessageStatus, Option<i64>)> {
        match self {
            ReceiptState::Delivered => Some((MessageStatus::Delivered, None)),
            // The handset could not be reached before the carrier gave up.
            ReceiptState::Undeliverable | ReceiptState::Expired => {
                Some((MessageStatus::Undelivered, Some(30003)))
            }
            ReceiptState::Rejected => Some((MessageStatus::Undelivered, Some(30007))),
            ReceiptState::Deleted | ReceiptState::Unknown => {
                Some((MessageStatus::Undelivered, Some(30008)))
            }
            ReceiptState::Enroute | ReceiptState::Accepted => None,
        }
    }
}

/// A receipt's text, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptText {
    pub id: String,
    pub state: ReceiptState,
    /// `done date` as `YYMMDDhhmm` (seconds, when sent, are dropped): Twilio's
    /// `RawDlrDoneDate`.
    pub done_date: Option<String>,
    /// The `err:` field as sent (network-specific).
    pub error: Option<String>,
}

/// Parses the receipt text. Field names are matched without case; unknown fields and the
/// trailing `text:` are ignored. `None` when `id` or a known `stat` is missing.
pub fn parse_text(text: &str) -> Option<ReceiptText> {
    let lower = text.to_ascii_lowercase();
    let field = |name: &str| -> Option<String> {
        let at = find_field(&lower, name)?;
        let start = at + name.len();
        let rest = &text[start..];
        let end = rest.find(' ').unwrap_or(rest.len());
        Some(rest[..end].trim().to_string()).filter(|v| !v.is_empty())
    };
    let id = field("id:")?;
    let state = ReceiptState::from_stat(&field("stat:")?)?;
    let done_date = field("done date:")
        .filter(|d| d.len() >= 10 && d.bytes().all(|b| b.is_ascii_digit()))
        .map(|d| d[..10].to_string());
    Some(ReceiptText {
        id,
        state,
        done_date,
        error: field("err:"),
    })
}

/// The position of `name` as a field: at the start or after a space (so `id:` does not match
/// inside `sid:`).
fn find_field(haystack: &str, name: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(offset) = haystack[from..].find(name) {
        let at = from + offset;
        if at == 0 || haystack.as_bytes()[at - 1] == b' ' {
            return Some(at);
        }
        from = at + name.len();
    }
    None
}

/// How a route's SMSC writes message ids in receipts, relative to its `submit_sm_resp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdFormat {
    /// As in the submit response.
    #[default]
    Same,
    /// The submit response's id is hexadecimal; receipts give it in decimal.
    DecimalOfHex,
}

/// The key a submit response's id is stored under, so receipts find it: as given, or for
/// hexadecimal ids lower case without leading zeros (what [`normalize_id`] makes of the
/// decimal form).
pub fn submit_id_key(submit_id: &str, format: IdFormat) -> String {
    match format {
        IdFormat::Same => submit_id.to_string(),
        IdFormat::DecimalOfHex => u128::from_str_radix(submit_id, 16)
            .map(|value| format!("{value:x}"))
            .unwrap_or_else(|_| submit_id.to_ascii_lowercase()),
    }
}

/// The receipt's id written the way the submit response wrote it, so the two match.
pub fn normalize_id(receipt_id: &str, format: IdFormat) -> Option<String> {
    match format {
        IdFormat::Same => Some(receipt_id.to_string()),
        IdFormat::DecimalOfHex => receipt_id
            .parse::<u128>()
            .ok()
            .map(|value| format!("{value:x}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_appendix_b_text_is_read() {
        let receipt = parse_text(
            "id:0123456789 sub:001 dlvrd:001 submit date:2611261015 done date:261126101542 stat:DELIVRD err:000 text:Hi there",
        )
        .unwrap();
        assert_eq!(receipt.id, "0123456789");
        assert_eq!(receipt.state, ReceiptState::Delivered);
        assert_eq!(receipt.done_date.as_deref(), Some("2611261015"));
        assert_eq!(receipt.error.as_deref(), Some("000"));
    }

    #[test]
    fn case_field_order_and_odd_texts() {
        let receipt = parse_text("STAT:undeliv ERR:001 ID:a1b2c3 Done Date:2611261015").unwrap();
        assert_eq!(receipt.id, "a1b2c3");
        assert_eq!(receipt.state, ReceiptState::Undeliverable);
        assert_eq!(
            receipt.state.outcome(),
            Some((MessageStatus::Undelivered, Some(30003)))
        );
        // `id:` must be a field of its own, and the stat must be known.
        assert_eq!(parse_text("sid:1 stat:DELIVRD"), None);
        assert_eq!(parse_text("id:1 stat:MAYBE"), None);
        assert_eq!(parse_text(""), None);
        assert_eq!(
            parse_text("id:7 stat:DELIVRD done date:soon").map(|r| r.done_date),
            Some(None)
        );
    }

    #[test]
    fn states_map_to_twilio_outcomes() {
        assert_eq!(
            ReceiptState::from_tlv(2).and_then(ReceiptState::outcome),
            Some((MessageStatus::Delivered, None))
        );
        assert_eq!(
            ReceiptState::from_tlv(8).and_then(ReceiptState::outcome),
            Some((MessageStatus::Undelivered, Some(30007)))
        );
        assert_eq!(
            ReceiptState::from_tlv(6).and_then(ReceiptState::outcome),
            None
        );
        assert_eq!(ReceiptState::from_tlv(0), None);
        assert_eq!(ReceiptState::from_tlv(9), None);
    }

    #[test]
    fn decimal_receipt_ids_match_hex_submit_ids() {
        assert_eq!(
            normalize_id("3735928559", IdFormat::DecimalOfHex).as_deref(),
            Some("deadbeef")
        );
        assert_eq!(normalize_id("x1", IdFormat::DecimalOfHex), None);
        assert_eq!(normalize_id("AbC", IdFormat::Same).as_deref(), Some("AbC"));
    }

    proptest::proptest! {
        #[test]
        fn any_text_parses_without_panicking(text in "\\PC{0,200}") {
            let _ = parse_text(&text);
        }
    }
}
