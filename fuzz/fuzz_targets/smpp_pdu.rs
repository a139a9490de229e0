//! Fuzzes the SMPP PDU decoder and what reads its output.
//!
//! Properties, on any bytes:
//! - `codec::decode_frame` never panics, on the input as it is nor with its `command_length`
//!   set to the input's length (so that mutations reach the body decoders at once);
//! - a decoded command encodes to a frame whose `command_length` is its length, and which
//!   decodes to an equal command (round trip);
//! - `deliver::classify` never panics on a decoded command (GSM-7 packed or not), nor on what
//!   `codec::salvage_operation` makes of a frame that does not decode;
//! - `text::decode` (the first byte as `data_coding`) and `text::split_udh` never panic on
//!   the raw input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warbler::carrier::smpp::{codec, deliver, text};

fn check_frame(frame: &[u8]) {
    let Ok(command) = codec::decode_frame(frame) else {
        // What a session does with a frame that does not decode: salvage a deliver_sm or
        // data_sm (its mandatory body and the TLVs that decode) and read it.
        if let Ok(Some(salvaged)) = codec::salvage_operation(frame) {
            let _ = deliver::classify(&salvaged.command, &salvaged.skipped, false);
            let _ = deliver::classify(&salvaged.command, &salvaged.skipped, true);
        }
        return;
    };
    let encoded = codec::encode(&command);
    let length = encoded
        .get(..4)
        .map(|word| u32::from_be_bytes(word.try_into().unwrap()) as usize);
    assert_eq!(
        length,
        Some(encoded.len()),
        "command_length of the re-encoded frame\n input: {}\noutput: {}",
        hex(frame),
        hex(&encoded)
    );
    match codec::decode_frame(&encoded) {
        Ok(again) => assert_eq!(
            again,
            command,
            "round trip changed the command\n input: {}\noutput: {}",
            hex(frame),
            hex(&encoded)
        ),
        Err(err) => panic!(
            "re-encoded frame does not decode: {err}\n input: {}\noutput: {}",
            hex(frame),
            hex(&encoded)
        ),
    }
    let _ = deliver::classify(&command, &[], false);
    let _ = deliver::classify(&command, &[], true);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fuzz_target!(|data: &[u8]| {
    check_frame(data);
    if (codec::HEADER_LEN..=codec::MAX_PDU).contains(&data.len()) {
        let length = (data.len() as u32).to_be_bytes();
        if data[..4] != length {
            let mut fixed = data.to_vec();
            fixed[..4].copy_from_slice(&length);
            check_frame(&fixed);
        }
    }

    let data_coding = data.first().copied().unwrap_or(0);
    let _ = text::decode(data, data_coding, false);
    let _ = text::decode(data, data_coding, true);
    let _ = text::split_udh(data);
});
