//! Framing and the PDU codec, shared by the ESME client and `warbler smsc`. The PDU types
//! and their encoding come from the `rusmpp` crate; the framing is ours because rusmpp's
//! stream decoder leaves the rest of a frame in the buffer when a body fails to decode, which
//! misaligns every later PDU. Here each frame is cut on its `command_length` first and decoded
//! alone, so one bad PDU costs one `generic_nack`, not the connection.

use bytes::BytesMut;
use rusmpp::command::CommandParts;
use rusmpp::tokio_codec::CommandCodec;
use rusmpp::{Command, CommandId, CommandStatus, Pdu};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::codec::{Decoder, Encoder};

/// The largest PDU either side accepts: a 1,600-character UCS-2 body in `message_payload`
/// plus headers fits; npm `smpp` uses the same cap.
pub const MAX_PDU: usize = 16_384;
/// `command_length` + `command_id` + `command_status` + `sequence_number`.
pub const HEADER_LEN: usize = 16;

/// Why a frame could not be read or decoded.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// `command_length` below 16 or above [`MAX_PDU`]: the stream cannot be resynchronised.
    #[error("bad command_length {0}")]
    Length(usize),
    /// The frame is whole but its body does not decode (or decodes short of its length).
    #[error("undecodable {command_id:#010x} PDU: {reason}")]
    Body {
        command_id: u32,
        sequence_number: u32,
        reason: String,
    },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The fixed header of a frame, readable even when its body is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub command_length: u32,
    pub command_id: u32,
    pub command_status: u32,
    pub sequence_number: u32,
}

/// Reads the header of a frame of at least 16 bytes.
pub fn header(frame: &[u8]) -> Option<Header> {
    let word = |at: usize| -> Option<u32> {
        Some(u32::from_be_bytes(frame.get(at..at + 4)?.try_into().ok()?))
    };
    Some(Header {
        command_length: word(0)?,
        command_id: word(4)?,
        command_status: word(8)?,
        sequence_number: word(12)?,
    })
}

/// Reads one whole frame (its length included). `Ok(None)` on a clean end of stream.
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
) -> Result<Option<Vec<u8>>, FrameError> {
    let mut length = [0u8; 4];
    match reader.read_exact(&mut length).await {
        Ok(_) => {}
        Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(err) => return Err(err.into()),
    }
    let n = u32::from_be_bytes(length) as usize;
    if !(HEADER_LEN..=MAX_PDU).contains(&n) {
        return Err(FrameError::Length(n));
    }
    let mut frame = vec![0u8; n];
    frame[..4].copy_from_slice(&length);
    reader.read_exact(&mut frame[4..]).await?;
    Ok(Some(frame))
}

/// Decodes one whole frame (as [`read_frame`] returns it, or any bytes: never panics).
pub fn decode_frame(frame: &[u8]) -> Result<Command, FrameError> {
    let head = header(frame).ok_or(FrameError::Length(frame.len()))?;
    let n = head.command_length as usize;
    if !(HEADER_LEN..=MAX_PDU).contains(&n) || n != frame.len() {
        return Err(FrameError::Length(n));
    }
    let body_error = |reason: String| FrameError::Body {
        command_id: head.command_id,
        sequence_number: head.sequence_number,
        reason,
    };
    let mut buffer = BytesMut::from(frame);
    let command = CommandCodec::new()
        .with_max_length(MAX_PDU)
        .decode(&mut buffer)
        .map_err(|err| body_error(err.to_string()))?
        .ok_or_else(|| body_error("truncated".to_string()))?;
    // Bytes left over mean a body rusmpp did not read (say, a body on a bodiless command).
    if !buffer.is_empty() {
        return Err(body_error(format!("{} bytes left over", buffer.len())));
    }
    Ok(command)
}

/// A TLV of a salvaged operation that did not decode, kept as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedTlv {
    /// `None` for bytes too short to hold a TLV header, or a TLV running past the frame.
    pub tag: Option<u16>,
    /// The value (or, without a tag, every byte left).
    pub value: Vec<u8>,
}

/// A `deliver_sm` or `data_sm` whose whole frame did not decode, read without its bad TLVs.
#[derive(Debug, Clone, PartialEq)]
pub struct Salvaged {
    /// The mandatory body and every TLV that decodes on its own.
    pub command: Command,
    pub skipped: Vec<SkippedTlv>,
}

/// Why an operation could not be salvaged either: its mandatory body is unreadable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsalvageable;

const DELIVER_SM: u32 = 0x0000_0005;
const DATA_SM: u32 = 0x0000_0103;

/// Where the mandatory fields of a `deliver_sm` / `data_sm` body end (SMPP 3.4 §4.6.1,
/// §4.7.1), so the TLV area after them can be read one TLV at a time.
fn mandatory_end(command_id: u32, body: &[u8]) -> Option<usize> {
    let c_string = |at: usize| -> Option<usize> {
        let nul = body.get(at..)?.iter().position(|b| *b == 0)?;
        Some(at + nul + 1)
    };
    let skip = |at: usize, n: usize| (at + n <= body.len()).then_some(at + n);
    // service_type, source (ton, npi, addr), destination (ton, npi, addr).
    let at = c_string(0)?;
    let at = c_string(skip(at, 2)?)?;
    let at = c_string(skip(at, 2)?)?;
    match command_id {
        // esm_class, registered_delivery, data_coding.
        DATA_SM => skip(at, 3),
        DELIVER_SM => {
            // esm_class, protocol_id, priority_flag, schedule and validity (empty strings),
            // registered_delivery, replace_if_present, data_coding, sm_default_msg_id.
            let at = c_string(skip(at, 3)?)?;
            let at = skip(c_string(at)?, 4)?;
            let length = *body.get(at)? as usize;
            skip(at + 1, length)
        }
        _ => None,
    }
}

/// Decodes an SMSC operation (`deliver_sm`, `data_sm`) whose frame as a whole did not:
/// the mandatory body with each TLV that decodes alone; the others are returned raw. SMSCs
/// resend an operation until it is acknowledged, so refusing one for a vendor's malformed
/// TLV (a `receipted_message_id` without its NUL, a TLV running past the frame) would loop
/// forever. `Ok(None)` for any other command.
pub fn salvage_operation(frame: &[u8]) -> Result<Option<Salvaged>, Unsalvageable> {
    let Some(head) = header(frame) else {
        return Ok(None);
    };
    if !matches!(head.command_id, DELIVER_SM | DATA_SM)
        || head.command_length as usize != frame.len()
    {
        return Ok(None);
    }
    let body = &frame[HEADER_LEN..];
    let end = mandatory_end(head.command_id, body).ok_or(Unsalvageable)?;
    let with_tlvs = |tlvs: &[u8]| -> Vec<u8> {
        let mut candidate = Vec::with_capacity(HEADER_LEN + end + tlvs.len());
        candidate.extend(((HEADER_LEN + end + tlvs.len()) as u32).to_be_bytes());
        candidate.extend(&frame[4..HEADER_LEN]);
        candidate.extend(&body[..end]);
        candidate.extend(tlvs);
        candidate
    };
    let bare = decode_frame(&with_tlvs(&[])).map_err(|_| Unsalvageable)?;
    let mut kept = Vec::new();
    let mut skipped = Vec::new();
    let mut rest = &body[end..];
    while !rest.is_empty() {
        let (Some(tag), Some(length)) = (rest.get(0..2), rest.get(2..4)) else {
            skipped.push(SkippedTlv {
                tag: None,
                value: rest.to_vec(),
            });
            break;
        };
        let length = u16::from_be_bytes([length[0], length[1]]) as usize;
        let Some(tlv) = rest.get(..4 + length) else {
            skipped.push(SkippedTlv {
                tag: None,
                value: rest.to_vec(),
            });
            break;
        };
        if decode_frame(&with_tlvs(tlv)).is_ok() {
            kept.extend(tlv);
        } else {
            skipped.push(SkippedTlv {
                tag: Some(u16::from_be_bytes([tag[0], tag[1]])),
                value: tlv[4..].to_vec(),
            });
        }
        rest = &rest[4 + length..];
    }
    // TLVs that decode alone decode together; should they not, the bare body still serves.
    let command = decode_frame(&with_tlvs(&kept)).unwrap_or(bare);
    Ok(Some(Salvaged { command, skipped }))
}

/// Encodes a command into its frame.
pub fn encode(command: &Command) -> Vec<u8> {
    let mut buffer = BytesMut::new();
    // Encoding into a BytesMut cannot fail (the error type only wraps I/O).
    let _ = CommandCodec::new().encode(command, &mut buffer);
    buffer.to_vec()
}

/// A response with a header only: what errors look like (and bodiless responses).
pub fn bare_response(id: CommandId, status: CommandStatus, sequence_number: u32) -> Command {
    Command::from_parts(CommandParts::new(id, status, sequence_number, None::<Pdu>))
}

/// A `generic_nack`, the answer to a PDU that cannot be read.
pub fn generic_nack(status: CommandStatus, sequence_number: u32) -> Command {
    Command::new(status, sequence_number, Pdu::GenericNack)
}

/// The response id of a request id (`submit_sm` → `submit_sm_resp`): SMPP sets bit 31.
pub fn response_id(request: u32) -> u32 {
    request | 0x8000_0000
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusmpp::pdus::{BindTransceiver, BindTransceiverResp, DeliverSm, SubmitSm, SubmitSmResp};
    use rusmpp::tlvs::MessageDeliveryRequestTlvValue;
    use rusmpp::types::{COctetString, OctetString};
    use rusmpp::values::{
        DataCoding, EsmClass, InterfaceVersion, MessageState, Npi, RegisteredDelivery, Ton,
    };
    use std::str::FromStr;

    fn c<const MIN: usize, const MAX: usize>(s: &str) -> COctetString<MIN, MAX> {
        COctetString::from_str(s).expect("valid C-octet string")
    }

    fn round_trip(command: Command) -> Vec<u8> {
        let frame = encode(&command);
        assert_eq!(
            u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize,
            frame.len()
        );
        assert_eq!(decode_frame(&frame).expect("decodes"), command);
        frame
    }

    #[test]
    fn enquire_link_matches_the_wire() {
        let frame = round_trip(Command::new(CommandStatus::EsmeRok, 7, Pdu::EnquireLink));
        assert_eq!(hex::encode(frame), "00000010000000150000000000000007");
        let frame = round_trip(Command::new(
            CommandStatus::EsmeRok,
            7,
            Pdu::EnquireLinkResp,
        ));
        assert_eq!(hex::encode(frame), "00000010800000150000000000000007");
        let frame = round_trip(Command::new(CommandStatus::EsmeRok, 2, Pdu::Unbind));
        assert_eq!(hex::encode(frame), "00000010000000060000000000000002");
        let frame = round_trip(Command::new(CommandStatus::EsmeRok, 2, Pdu::UnbindResp));
        assert_eq!(hex::encode(frame), "00000010800000060000000000000002");
        let frame = round_trip(generic_nack(CommandStatus::EsmeRinvcmdid, 5));
        assert_eq!(hex::encode(frame), "00000010800000000000000300000005");
        // deliver_sm_resp carries an empty message_id.
        let resp = Command::new(
            CommandStatus::EsmeRok,
            11,
            Pdu::DeliverSmResp(Default::default()),
        );
        let frame = round_trip(resp);
        assert_eq!(hex::encode(frame), "0000001180000005000000000000000b00");
    }

    #[test]
    fn bind_transceiver_matches_the_wire() {
        let bind = BindTransceiver::builder()
            .system_id(c("warbler"))
            .password(c("secret"))
            .system_type(c(""))
            .interface_version(InterfaceVersion::Smpp3_4)
            .addr_ton(Ton::Unknown)
            .addr_npi(Npi::Unknown)
            .address_range(c(""))
            .build();
        let frame = round_trip(Command::new(CommandStatus::EsmeRok, 1, bind));
        // length 36, id 9, status 0, seq 1, "warbler\0", "secret\0", "\0", 0x34, 0, 0, "\0"
        assert_eq!(
            hex::encode(frame),
            "00000024000000090000000000000001776172626c657200736563726574000034000000"
        );
        let resp = BindTransceiverResp::builder().system_id(c("smsc")).build();
        let frame = round_trip(Command::new(CommandStatus::EsmeRok, 1, resp));
        assert_eq!(
            hex::encode(frame),
            "00000015800000090000000000000001736d736300"
        );
    }

    #[test]
    fn submit_sm_matches_the_wire() {
        let submit = SubmitSm::builder()
            .source_addr_ton(Ton::International)
            .source_addr_npi(Npi::Isdn)
            .source_addr(c("14155550100"))
            .dest_addr_ton(Ton::International)
            .dest_addr_npi(Npi::Isdn)
            .destination_addr(c("14155550199"))
            .esm_class(EsmClass::from(0u8))
            .registered_delivery(RegisteredDelivery::from(1u8))
            .data_coding(DataCoding::McSpecific)
            .short_message(OctetString::from_str("Hi").unwrap())
            .build();
        let frame = round_trip(Command::new(CommandStatus::EsmeRok, 3, submit));
        assert_eq!(
            hex::encode(&frame),
            concat!(
                "00000039",
                "00000004",
                "00000000",
                "00000003",
                "00", // service_type ""
                "0101",
                "313431353535353031303000", // source
                "0101",
                "313431353535353031393900", // destination
                "00",
                "00",
                "00", // esm_class, protocol_id, priority
                "00",
                "00", // schedule, validity (empty)
                "01",
                "00",
                "00",
                "00", // registered_delivery, replace, coding, default id
                "02",
                "4869" // sm_length, "Hi"
            )
        );
        let resp = SubmitSmResp::builder().message_id(c("1a2b")).build();
        let frame = round_trip(Command::new(CommandStatus::EsmeRok, 3, resp));
        assert_eq!(
            hex::encode(frame),
            "000000158000000400000000000000033161326200"
        );
    }

    #[test]
    fn error_responses_have_no_body() {
        let resp = bare_response(CommandId::SubmitSmResp, CommandStatus::EsmeRthrottled, 9);
        let frame = encode(&resp);
        assert_eq!(hex::encode(&frame), "00000010800000040000005800000009");
        let back = decode_frame(&frame).unwrap();
        assert_eq!(back.status(), CommandStatus::EsmeRthrottled);
        assert_eq!(back.sequence_number(), 9);
    }

    #[test]
    fn deliver_sm_receipt_round_trips_with_tlvs() {
        let receipt = DeliverSm::builder()
            .source_addr(c("14155550199"))
            .destination_addr(c("14155550100"))
            .esm_class(EsmClass::from(0x04u8))
            .short_message(
                OctetString::from_str("id:1a2b sub:001 dlvrd:001 submit date:2611261000 done date:2611261001 stat:DELIVRD err:000 text:")
                    .unwrap(),
            )
            .tlvs(vec![
                MessageDeliveryRequestTlvValue::ReceiptedMessageId(c("1a2b")),
                MessageDeliveryRequestTlvValue::MessageState(MessageState::Delivered),
            ])
            .build();
        let frame = round_trip(Command::new(CommandStatus::EsmeRok, 11, receipt));
        // The two TLVs close the frame: 001e 0005 "1a2b\0", 0427 0001 02.
        assert!(hex::encode(&frame).ends_with("001e000531613262000427000102"));
    }

    /// A receipt `deliver_sm` whose TLV area is replaced by `tlvs` (hex).
    fn receipt_with_tlv_area(tlvs: &str) -> Vec<u8> {
        let receipt = DeliverSm::builder()
            .source_addr(c("14155550199"))
            .destination_addr(c("14155550100"))
            .esm_class(EsmClass::from(0x04u8))
            .short_message(OctetString::from_str("id:1a2b stat:DELIVRD").unwrap())
            .build();
        let mut frame = encode(&Command::new(CommandStatus::EsmeRok, 11, receipt));
        frame.extend(hex::decode(tlvs).unwrap());
        let length = (frame.len() as u32).to_be_bytes();
        frame[..4].copy_from_slice(&length);
        frame
    }

    #[test]
    fn a_deliver_sm_with_bad_tlvs_is_salvaged_with_the_good_ones() {
        // receipted_message_id "1a2b" without its NUL, then message_state DELIVERED.
        let frame = receipt_with_tlv_area("001e0004316132620427000102");
        assert!(matches!(decode_frame(&frame), Err(FrameError::Body { .. })));
        let salvaged = salvage_operation(&frame).unwrap().expect("a deliver_sm");
        assert_eq!(salvaged.command.sequence_number(), 11);
        let Some(Pdu::DeliverSm(deliver)) = salvaged.command.pdu() else {
            panic!("{:?}", salvaged.command);
        };
        assert_eq!(deliver.short_message().as_ref(), b"id:1a2b stat:DELIVRD");
        assert_eq!(deliver.tlvs().len(), 1, "message_state kept");
        assert_eq!(
            salvaged.skipped,
            [SkippedTlv {
                tag: Some(0x001e),
                value: b"1a2b".to_vec()
            }]
        );

        // A vendor TLV whose length runs past the frame, and an odd byte after it.
        for tail in ["14010005aabbcc", "0427000102ff"] {
            let frame = receipt_with_tlv_area(tail);
            assert!(decode_frame(&frame).is_err(), "{tail}");
            let salvaged = salvage_operation(&frame).unwrap().expect("a deliver_sm");
            assert_eq!(salvaged.skipped.len(), 1, "{tail}: {:?}", salvaged.skipped);
            assert_eq!(salvaged.skipped[0].tag, None);
        }
        // A whole vendor TLV of odd length decodes as it is.
        assert!(decode_frame(&receipt_with_tlv_area("14010003aabbcc")).is_ok());
    }

    #[test]
    fn salvage_leaves_other_commands_and_refuses_unreadable_bodies() {
        let submit = hex::decode("00000014000000040000000000000003000101ff").unwrap();
        assert_eq!(salvage_operation(&submit), Ok(None));
        // A deliver_sm cut short inside its mandatory fields.
        let deliver = hex::decode("00000014000000050000000000000003000101ff").unwrap();
        assert_eq!(salvage_operation(&deliver), Err(Unsalvageable));
        // sm_length past the end of the frame.
        let mut frame = receipt_with_tlv_area("");
        let at = frame.len() - b"id:1a2b stat:DELIVRD".len() - 1;
        frame[at] = 0xff;
        assert_eq!(salvage_operation(&frame), Err(Unsalvageable));
    }

    #[test]
    fn bad_frames_are_errors_not_panics() {
        assert!(matches!(decode_frame(&[]), Err(FrameError::Length(_))));
        assert!(matches!(
            decode_frame(&hex::decode("0000000f000000150000000000000001").unwrap()),
            Err(FrameError::Length(15))
        ));
        // An enquire_link that carries a body: the body is not silently ignored.
        let frame = hex::decode("000000120000001500000000000000070102").unwrap();
        assert!(matches!(
            decode_frame(&frame),
            Err(FrameError::Body {
                sequence_number: 7,
                ..
            })
        ));
        // A submit_sm cut short inside its mandatory fields.
        let frame = hex::decode("00000014000000040000000000000003000101ff").unwrap();
        assert!(matches!(decode_frame(&frame), Err(FrameError::Body { .. })));
    }

    #[tokio::test]
    async fn frames_are_read_whole_and_lengths_checked() {
        let mut two = encode(&Command::new(CommandStatus::EsmeRok, 1, Pdu::EnquireLink));
        two.extend(encode(&Command::new(
            CommandStatus::EsmeRok,
            2,
            Pdu::EnquireLinkResp,
        )));
        let mut reader = &two[..];
        let first = read_frame(&mut reader).await.unwrap().unwrap();
        let second = read_frame(&mut reader).await.unwrap().unwrap();
        assert_eq!(decode_frame(&first).unwrap().sequence_number(), 1);
        assert_eq!(
            decode_frame(&second).unwrap().id(),
            CommandId::EnquireLinkResp
        );
        assert!(read_frame(&mut reader).await.unwrap().is_none());
        let bytes = hex::decode("00ffffff000000040000000000000001").unwrap();
        let mut reader = &bytes[..];
        assert!(matches!(
            read_frame(&mut reader).await,
            Err(FrameError::Length(0x00ff_ffff))
        ));
    }

    proptest::proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = decode_frame(&bytes);
        }

        #[test]
        fn decode_never_panics_on_valid_headers(id in proptest::num::u32::ANY, seq in proptest::num::u32::ANY,
                body in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let mut frame = ((HEADER_LEN + body.len()) as u32).to_be_bytes().to_vec();
            frame.extend(id.to_be_bytes());
            frame.extend(0u32.to_be_bytes());
            frame.extend(seq.to_be_bytes());
            frame.extend(body);
            let _ = decode_frame(&frame);
        }
    }
}
