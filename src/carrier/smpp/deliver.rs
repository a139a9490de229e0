//! What an SMSC's `deliver_sm` / `data_sm` says: a delivery receipt or a mobile-originated
//! message (or one part of one). Pure: the service layer stores what this returns.

use super::codec::SkippedTlv;
use super::receipt::{parse_text, ReceiptState};
use super::text::{decode, split_udh, Concat};
use rusmpp::tlvs::{Tlv, TlvValue};
use rusmpp::{Command, Pdu};

/// A delivery receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptReport {
    /// The id as the receipt gives it (see `receipt::normalize_id`).
    pub id: String,
    pub state: ReceiptState,
    pub done_date: Option<String>,
}

/// A mobile-originated message or one part of a concatenated one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoPart {
    /// E.164 when it is one (see `address`), else as sent.
    pub from: String,
    pub to: String,
    pub text: String,
    pub concat: Option<Concat>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    Receipt(ReceiptReport),
    /// An intermediate notification or a receipt without a final state: acknowledged only.
    Ignored,
    Mo(MoPart),
    /// Neither a receipt we can read nor a message: acknowledged and logged.
    Unreadable(String),
}

/// An address in E.164 when it is one: TON 1 (international), or TON 0 (unknown) with 10 or
/// more digits, which many SMSCs send for international numbers. Short codes and alphanumeric
/// senders stay as sent.
fn address(ton: u8, value: &str) -> String {
    let digits = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
    if digits && (ton == 1 || (ton == 0 && value.len() >= 10)) {
        format!("+{value}")
    } else {
        value.to_string()
    }
}

/// The `receipted_message_id` TLV's tag.
const RECEIPTED_MESSAGE_ID: u16 = 0x001E;

struct Fields<'a> {
    source_ton: u8,
    source: &'a str,
    dest_ton: u8,
    dest: &'a str,
    esm_class: u8,
    data_coding: u8,
    short_message: &'a [u8],
    tlvs: &'a [Tlv],
}

/// Reads a `deliver_sm` or `data_sm`, with the TLVs that did not decode (`skipped`). `packed_gsm`: the
/// route sends GSM-7 packed.
pub fn classify(command: &Command, skipped: &[SkippedTlv], packed_gsm: bool) -> Incoming {
    let fields = match command.pdu() {
        Some(Pdu::DeliverSm(d)) => Fields {
            source_ton: u8::from(d.source_addr_ton),
            source: d.source_addr.as_str(),
            dest_ton: u8::from(d.dest_addr_ton),
            dest: d.destination_addr.as_str(),
            esm_class: u8::from(d.esm_class),
            data_coding: u8::from(d.data_coding),
            short_message: d.short_message().as_ref(),
            tlvs: d.tlvs(),
        },
        Some(Pdu::DataSm(d)) => Fields {
            source_ton: u8::from(d.source_addr_ton),
            source: d.source_addr.as_str(),
            dest_ton: u8::from(d.dest_addr_ton),
            dest: d.destination_addr.as_str(),
            esm_class: u8::from(d.esm_class),
            data_coding: u8::from(d.data_coding),
            short_message: &[],
            tlvs: d.tlvs(),
        },
        _ => return Incoming::Unreadable("not a deliver_sm or data_sm".into()),
    };
    let mut receipted_id = None;
    let mut state = None;
    let mut payload: Option<&[u8]> = None;
    let (mut sar_ref, mut sar_total, mut sar_seq) = (None, None, None);
    for tlv in fields.tlvs {
        match tlv.value() {
            Some(TlvValue::ReceiptedMessageId(id)) => receipted_id = Some(id.as_str().to_string()),
            Some(TlvValue::MessageState(s)) => state = ReceiptState::from_tlv(u8::from(*s)),
            Some(TlvValue::MessagePayload(p)) => payload = Some(p.value.as_ref()),
            Some(TlvValue::SarMsgRefNum(n)) => sar_ref = Some(*n),
            Some(TlvValue::SarTotalSegments(n)) => sar_total = Some(*n),
            Some(TlvValue::SarSegmentSeqnum(n)) => sar_seq = Some(*n),
            _ => {}
        }
    }
    if receipted_id.is_none() {
        // A `receipted_message_id` that did not decode (most often: no closing NUL) still
        // names the message when its bytes are printable.
        receipted_id = skipped
            .iter()
            .find(|tlv| tlv.tag == Some(RECEIPTED_MESSAGE_ID))
            .map(|tlv| {
                String::from_utf8_lossy(&tlv.value)
                    .trim_end_matches('\0')
                    .to_string()
            })
            .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_graphic()));
    }
    let message_type = fields.esm_class & 0x3C;
    let bytes = payload.unwrap_or(fields.short_message);
    // 0x04 = SMSC delivery receipt; 0x08/0x10 = SME acknowledgements; 0x20 = intermediate.
    if message_type != 0 {
        if message_type == 0x20 {
            return Incoming::Ignored;
        }
        let text = String::from_utf8_lossy(bytes);
        let parsed = parse_text(&text);
        let id = receipted_id.or_else(|| parsed.as_ref().map(|p| p.id.clone()));
        let state = state.or_else(|| parsed.as_ref().map(|p| p.state));
        return match (id, state) {
            (Some(id), Some(state)) if state.outcome().is_some() => {
                Incoming::Receipt(ReceiptReport {
                    id,
                    state,
                    done_date: parsed.and_then(|p| p.done_date),
                })
            }
            (Some(_), Some(_)) => Incoming::Ignored,
            _ => Incoming::Unreadable(format!("receipt without id or state: {text:?}")),
        };
    }
    let (udh_concat, text_bytes) = if fields.esm_class & 0x40 != 0 {
        split_udh(bytes)
    } else {
        (None, bytes)
    };
    let concat = udh_concat.or(match (sar_ref, sar_total, sar_seq) {
        (Some(reference), Some(total), Some(part)) if total > 1 && part >= 1 && part <= total => {
            Some(Concat {
                reference,
                total,
                part,
            })
        }
        _ => None,
    });
    // Packed septets after a UDH start on a septet boundary: a 6-byte UDH needs 1 fill bit.
    let text = if packed_gsm && fields.data_coding == 0 && text_bytes.len() != bytes.len() {
        let udh_len = bytes.len() - text_bytes.len();
        super::text::decode_gsm7_packed(text_bytes, super::text::udh_fill_bits(udh_len))
    } else {
        decode(text_bytes, fields.data_coding, packed_gsm)
    };
    Incoming::Mo(MoPart {
        from: address(fields.source_ton, fields.source),
        to: address(fields.dest_ton, fields.dest),
        text,
        concat,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusmpp::pdus::DeliverSm;
    use rusmpp::tlvs::MessageDeliveryRequestTlvValue;
    use rusmpp::types::{COctetString, OctetString};
    use rusmpp::values::{EsmClass, MessageState, Npi, Ton};
    use rusmpp::CommandStatus;
    use std::str::FromStr;

    fn deliver(
        esm: u8,
        coding: u8,
        short: &[u8],
        tlvs: Vec<MessageDeliveryRequestTlvValue>,
    ) -> Command {
        let pdu = DeliverSm::builder()
            .source_addr_ton(Ton::International)
            .source_addr_npi(Npi::Isdn)
            .source_addr(COctetString::from_str("14155550199").unwrap())
            .dest_addr_ton(Ton::International)
            .destination_addr(COctetString::from_str("14155550100").unwrap())
            .esm_class(EsmClass::from(esm))
            .data_coding(rusmpp::values::DataCoding::from(coding))
            .short_message(OctetString::from_vec(short.to_vec()).unwrap())
            .tlvs(tlvs)
            .build();
        Command::new(CommandStatus::EsmeRok, 1, pdu)
    }

    #[test]
    fn receipt_from_tlvs_wins_over_text() {
        let text = b"id:999 sub:001 dlvrd:000 submit date:2611261000 done date:2611261005 stat:UNDELIV err:001 text:";
        let command = deliver(
            0x04,
            0,
            text,
            vec![
                MessageDeliveryRequestTlvValue::ReceiptedMessageId(
                    COctetString::from_str("3e7").unwrap(),
                ),
                MessageDeliveryRequestTlvValue::MessageState(MessageState::Delivered),
            ],
        );
        assert_eq!(
            classify(&command, &[], false),
            Incoming::Receipt(ReceiptReport {
                id: "3e7".into(),
                state: ReceiptState::Delivered,
                done_date: Some("2611261005".into())
            })
        );
    }

    #[test]
    fn receipt_from_text_alone() {
        let text = b"id:1a2b sub:001 dlvrd:000 submit date:2611261000 done date:2611261005 stat:EXPIRED err:000 text:hello";
        match classify(&deliver(0x04, 0, text, vec![]), &[], false) {
            Incoming::Receipt(r) => {
                assert_eq!(r.id, "1a2b");
                assert_eq!(r.state, ReceiptState::Expired);
            }
            other => panic!("{other:?}"),
        }
        // En route: nothing to apply.
        let text = b"id:1 sub:001 dlvrd:000 submit date:2611261000 done date:2611261005 stat:ENROUTE err:000";
        assert_eq!(
            classify(&deliver(0x04, 0, text, vec![]), &[], false),
            Incoming::Ignored
        );
        assert!(matches!(
            classify(&deliver(0x04, 0, b"garbage", vec![]), &[], false),
            Incoming::Unreadable(_)
        ));
    }

    #[test]
    fn receipt_id_from_a_receipted_message_id_that_did_not_decode() {
        let command = deliver(
            0x04,
            0,
            b"not a receipt text",
            vec![MessageDeliveryRequestTlvValue::MessageState(
                MessageState::Delivered,
            )],
        );
        let skipped = [SkippedTlv {
            tag: Some(RECEIPTED_MESSAGE_ID),
            value: b"3e7".to_vec(),
        }];
        assert_eq!(
            classify(&command, &skipped, false),
            Incoming::Receipt(ReceiptReport {
                id: "3e7".into(),
                state: ReceiptState::Delivered,
                done_date: None
            })
        );
        // Unprintable bytes name nothing.
        let skipped = [SkippedTlv {
            tag: Some(RECEIPTED_MESSAGE_ID),
            value: vec![0xff, 0x01],
        }];
        assert!(matches!(
            classify(&command, &skipped, false),
            Incoming::Unreadable(_)
        ));
    }

    #[test]
    fn mo_with_udh_and_ucs2() {
        let mut short = vec![0x05, 0x00, 0x03, 0x2A, 0x02, 0x01];
        short.extend([0x00, 0x48, 0x00, 0xE9]); // "Hé" in UCS-2
        match classify(&deliver(0x40, 0x08, &short, vec![]), &[], false) {
            Incoming::Mo(mo) => {
                assert_eq!(mo.from, "+14155550199");
                assert_eq!(mo.to, "+14155550100");
                assert_eq!(mo.text, "Hé");
                assert_eq!(
                    mo.concat,
                    Some(Concat {
                        reference: 0x2A,
                        total: 2,
                        part: 1
                    })
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn addresses_become_e164_when_they_are_international() {
        assert_eq!(address(1, "14155550199"), "+14155550199");
        assert_eq!(address(0, "447700900100"), "+447700900100");
        assert_eq!(address(0, "12345"), "12345");
        assert_eq!(address(5, "WARBLER"), "WARBLER");
        assert_eq!(address(1, "+14155550199"), "+14155550199");
    }

    #[test]
    fn mo_with_sar_tlvs() {
        let command = deliver(
            0,
            0,
            b"part two",
            vec![
                MessageDeliveryRequestTlvValue::SarMsgRefNum(0x1234),
                MessageDeliveryRequestTlvValue::SarTotalSegments(2),
                MessageDeliveryRequestTlvValue::SarSegmentSeqnum(2),
            ],
        );
        match classify(&command, &[], false) {
            Incoming::Mo(mo) => {
                assert_eq!(mo.text, "part two");
                assert_eq!(
                    mo.concat,
                    Some(Concat {
                        reference: 0x1234,
                        total: 2,
                        part: 2
                    })
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
