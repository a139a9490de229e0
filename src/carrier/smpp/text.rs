//! Short-message bytes: encoding bodies into SMPP 3.4 data codings and back.
//!
//! Everything here is pure (no I/O) so that the connector, `warbler smsc` and the tests share
//! one definition of what goes on the wire.
//!
//! * The choice between GSM-7 and UCS-2 and the split into parts are those of
//!   [`crate::domain::encoding`], so a message is sent as the number of segments it is billed
//!   for. A route's [`DefaultCoding`] only says how a GSM-7 body is represented: SMSCs differ
//!   (unpacked septets, packed septets, Latin-1 or IA5 as their "default alphabet").
//! * A body that the route's coding cannot represent (a `€` on a Latin-1 route, an `é` on an
//!   IA5 route) falls back to UCS-2, which can carry anything.
//! * The parts carry no User Data Header; the caller prepends [`concat_udh`] to each part of a
//!   multipart message and sets the UDHI bit of `esm_class`.
//!
//! Packed GSM-7 has one ambiguity SMPP cannot resolve: `short_message` is counted in octets, so
//! when the septets leave 7 spare bits in the last octet a receiver cannot tell padding from a
//! final septet. Following 3GPP TS 23.038 §6.1.2.3.1, [`pack_septets`] pads that case with CR
//! rather than zero bits (which would read as `@`), and [`decode`] drops a trailing CR in
//! exactly that position. Hence a packed part whose septets fill its octets exactly and end in
//! CR decodes without that CR (an invisible loss); [`unpack_septets`] with the true septet count
//! is exact.

use std::sync::OnceLock;

use crate::domain::encoding::{
    encoding_of, is_gsm7_basic, segment, Encoding, GSM7_BASIC_TABLE, GSM7_EXTENSION_CHARS,
};

/// `data_coding` 0x00: the SMSC default alphabet, which for warbler's routes is GSM 03.38.
pub const DATA_CODING_DEFAULT: u8 = 0x00;
/// `data_coding` 0x01: IA5 (CCITT T.50), i.e. ASCII.
pub const DATA_CODING_IA5: u8 = 0x01;
/// `data_coding` 0x03: ISO-8859-1.
pub const DATA_CODING_LATIN1: u8 = 0x03;
/// `data_coding` 0x08: UCS-2, sent as UTF-16BE so that characters outside the BMP survive.
pub const DATA_CODING_UCS2: u8 = 0x08;

/// Octets of user data in one SMS, which bounds the byte-oriented codings.
const SINGLE_PART_OCTETS: usize = 140;
/// Octets left for text in each part of a concatenated SMS after the 6-byte [`concat_udh`].
const MULTIPART_OCTETS: usize = SINGLE_PART_OCTETS - 6;

/// The GSM 03.38 escape to the extension table.
const ESC: u8 = 0x1B;
/// Carriage return: the padding septet of TS 23.038 §6.1.2.3.1.
const CR: u8 = 0x0D;

/// Codes of the extension-table characters, in the order of [`GSM7_EXTENSION_CHARS`].
const EXTENSION_CODES: [u8; 10] = [0x0A, 0x14, 0x28, 0x29, 0x2F, 0x3C, 0x3D, 0x3E, 0x40, 0x65];

/// How a route sends bodies that fit the GSM 03.38 alphabet. SMSCs disagree on what
/// `data_coding` 0 means and on whether septets are packed, so this is configured per route
/// (config value `gsm7`, `gsm7_packed` (or `gsm7-packed`), `latin1`, `ia5`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DefaultCoding {
    /// `data_coding` 0x00, one septet per octet: what most SMSCs expect.
    #[default]
    Gsm7,
    /// `data_coding` 0x00, septets packed 8 into 7 octets as on the air interface.
    #[serde(alias = "gsm7-packed")]
    Gsm7Packed,
    /// `data_coding` 0x03, ISO-8859-1; bodies with `€` or Greek capitals fall back to UCS-2.
    Latin1,
    /// `data_coding` 0x01, ASCII; bodies with any non-ASCII character fall back to UCS-2.
    Ia5,
}

/// One body, ready for submit_sm: its data_coding byte and the bytes of each part (without any
/// UDH). A single-part body needs no UDH; each part of a multipart body gets a [`concat_udh`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedBody {
    pub data_coding: u8,
    pub parts: Vec<Vec<u8>>,
}

/// The concatenation information of a User Data Header, for reassembling multipart messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Concat {
    /// Identifies the message the part belongs to (8- or 16-bit on the wire).
    pub reference: u16,
    /// Number of parts of the message, at least 1.
    pub total: u8,
    /// This part's number, from 1 to `total`.
    pub part: u8,
}

/// What a body is actually sent as, once the route's coding and the body's characters are
/// both taken into account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    Gsm7 { packed: bool },
    Latin1,
    Ia5,
    Ucs2,
}

impl Plan {
    fn for_body(body: &str, coding: DefaultCoding) -> Plan {
        if encoding_of(body) == Encoding::Ucs2 {
            return Plan::Ucs2;
        }
        match coding {
            DefaultCoding::Gsm7 => Plan::Gsm7 { packed: false },
            DefaultCoding::Gsm7Packed => Plan::Gsm7 { packed: true },
            DefaultCoding::Latin1 if body.chars().all(|c| u32::from(c) <= 0xFF) => Plan::Latin1,
            DefaultCoding::Ia5 if body.is_ascii() => Plan::Ia5,
            DefaultCoding::Latin1 | DefaultCoding::Ia5 => Plan::Ucs2,
        }
    }

    fn data_coding(self) -> u8 {
        match self {
            Plan::Gsm7 { .. } => DATA_CODING_DEFAULT,
            Plan::Latin1 => DATA_CODING_LATIN1,
            Plan::Ia5 => DATA_CODING_IA5,
            Plan::Ucs2 => DATA_CODING_UCS2,
        }
    }

    /// The bytes of `text`; `fill_bits` only matters to packed GSM-7.
    fn encode(self, text: &str, fill_bits: u8) -> Vec<u8> {
        match self {
            Plan::Gsm7 { packed: false } => gsm7_septets(text),
            Plan::Gsm7 { packed: true } => pack_septets(&gsm7_septets(text), fill_bits),
            // Latin-1 and ASCII code points are their own byte values; the plan checked the range.
            Plan::Latin1 | Plan::Ia5 => text.chars().map(|c| c as u8).collect(),
            Plan::Ucs2 => text.encode_utf16().flat_map(u16::to_be_bytes).collect(),
        }
    }
}

/// Encode `body` for a route. Bodies with any non-GSM character (per [`encoding_of`]) go as
/// UCS-2 (UTF-16BE, parts from [`segment`], surrogate pairs kept together). Otherwise per
/// `coding`:
///
/// * `Gsm7`: data_coding 0x00, one octet per septet (escape characters as 0x1B + code), parts
///   from [`segment`] (160 septets alone, 153 per part).
/// * `Gsm7Packed`: data_coding 0x00, the same parts each packed with [`pack_septets`]; parts of
///   a multipart message start with 1 fill bit so that the septets are aligned after the
///   6-byte [`concat_udh`] (48 bits + 1 = 7 septets). A 16-bit concatenation UDH would need
///   other fill bits: see [`udh_fill_bits`].
/// * `Latin1` (data_coding 0x03) and `Ia5` (0x01): one octet per character when every
///   character fits, else UCS-2; at most 140 octets alone, 134 per part.
///
/// An empty body gives one empty part, since a submit_sm is still sent for it.
pub fn encode_body(body: &str, coding: DefaultCoding) -> EncodedBody {
    let plan = Plan::for_body(body, coding);
    let data_coding = plan.data_coding();
    if body.is_empty() {
        return EncodedBody {
            data_coding,
            parts: vec![Vec::new()],
        };
    }
    let texts: Vec<&str> = match plan {
        Plan::Gsm7 { .. } => segment_strs(body),
        Plan::Ucs2 if encoding_of(body) == Encoding::Ucs2 => segment_strs(body),
        // A GSM body falling back to UCS-2: `segment` would count it in septets.
        Plan::Ucs2 => split_octets(body, |c| 2 * c.len_utf16()),
        Plan::Latin1 | Plan::Ia5 => split_octets(body, |_| 1),
    };
    let fill_bits = if texts.len() > 1 { udh_fill_bits(6) } else { 0 };
    let parts = texts
        .iter()
        .map(|text| plan.encode(text, fill_bits))
        .collect();
    EncodedBody { data_coding, parts }
}

/// The same as [`encode_body`] without splitting, for the message_payload TLV, which carries
/// the whole body in one PDU (and no UDH, so packed septets have no fill bits).
pub fn encode_whole(body: &str, coding: DefaultCoding) -> (u8, Vec<u8>) {
    let plan = Plan::for_body(body, coding);
    (plan.data_coding(), plan.encode(body, 0))
}

/// The segments of a body whose [`encoding_of`] matches how it is sent.
fn segment_strs(body: &str) -> Vec<&str> {
    let segmentation = segment(body);
    let mut texts = Vec::with_capacity(segmentation.segments.len());
    let mut rest = body;
    // `segment` returns owned strings that concatenate to `body`; borrow them back from it.
    for part in &segmentation.segments {
        let (head, tail) = rest.split_at(part.len());
        texts.push(head);
        rest = tail;
    }
    texts
}

/// Splits `body` greedily into parts of at most 140 octets alone or 134 octets per part, where
/// `cost` is the octets of a character; a character is never split.
fn split_octets(body: &str, cost: impl Fn(char) -> usize) -> Vec<&str> {
    if body.chars().map(&cost).sum::<usize>() <= SINGLE_PART_OCTETS {
        return vec![body];
    }
    let mut parts = Vec::new();
    let mut start = 0;
    let mut used = 0;
    for (i, c) in body.char_indices() {
        let octets = cost(c);
        if used + octets > MULTIPART_OCTETS {
            parts.push(&body[start..i]);
            start = i;
            used = 0;
        }
        used += octets;
    }
    parts.push(&body[start..]);
    parts
}

/// The basic table indexed by septet, built once from [`GSM7_BASIC_TABLE`].
fn basic_table() -> &'static [char; 128] {
    static TABLE: OnceLock<[char; 128]> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = ['\u{FFFD}'; 128];
        for (slot, c) in table.iter_mut().zip(GSM7_BASIC_TABLE.chars()) {
            *slot = c;
        }
        table
    })
}

/// The septets of `text`, one per octet (ESC + code for extension characters). Characters
/// outside the GSM alphabet, which a caller should have routed to UCS-2, become `?`.
fn gsm7_septets(text: &str) -> Vec<u8> {
    let table = basic_table();
    let mut septets = Vec::with_capacity(text.len());
    for c in text.chars() {
        if is_gsm7_basic(c) {
            // Most ASCII characters sit at their own code; search the table for the rest.
            let code = match usize::try_from(u32::from(c)) {
                Ok(i) if i < 128 && table[i] == c => i,
                _ => table.iter().position(|&t| t == c).unwrap_or(0x3F),
            };
            septets.push(code as u8);
        } else if let Some(i) = GSM7_EXTENSION_CHARS.chars().position(|e| e == c) {
            septets.extend([ESC, EXTENSION_CODES[i]]);
        } else {
            septets.push(b'?');
        }
    }
    septets
}

/// The text of GSM-7 septets, one per octet. Decoding is lenient as TS 23.038 asks: ESC before
/// an unknown code shows the basic-table character, ESC ESC shows a space, and a trailing ESC
/// shows nothing. Octets above 0x7F are not septets and become U+FFFD.
fn gsm7_text(septets: &[u8]) -> String {
    let table = basic_table();
    let mut text = String::with_capacity(septets.len());
    let mut iter = septets.iter().copied();
    while let Some(s) = iter.next() {
        match s {
            ESC => match iter.next() {
                Some(ESC) => text.push(' '),
                Some(code) => match EXTENSION_CODES.iter().position(|&e| e == code) {
                    Some(i) => text.extend(GSM7_EXTENSION_CHARS.chars().nth(i)),
                    None => text.push(table.get(usize::from(code)).copied().unwrap_or('\u{FFFD}')),
                },
                None => {}
            },
            0..=0x7F => text.push(table[usize::from(s)]),
            _ => text.push('\u{FFFD}'),
        }
    }
    text
}

/// The fill bits that align septets after a UDH of `udh_len` octets (UDHL included), so that
/// the text starts on a septet boundary of the user data: 1 for the 6-octet 8-bit
/// concatenation UDH, 0 for the 7-octet 16-bit one.
pub fn udh_fill_bits(udh_len: usize) -> u8 {
    ((7 - (udh_len * 8) % 7) % 7) as u8
}

/// Packs septets 8 into 7 octets as GSM 03.38 does, least significant bit first, after
/// `fill_bits` zero bits (see [`udh_fill_bits`]). Only the low 7 bits of each septet are used.
/// When the last octet would have 7 spare bits, a CR septet fills them rather than zeros,
/// which a receiver counting septets from the octet length would read as `@`.
pub fn pack_septets(septets: &[u8], fill_bits: u8) -> Vec<u8> {
    let fill = usize::from(fill_bits);
    let bits = fill + 7 * septets.len();
    let pad = (8 - bits % 8) % 8 == 7;
    let mut out = vec![0u8; bits.div_ceil(8)];
    let padding = pad.then_some(CR);
    for (i, s) in septets.iter().copied().chain(padding).enumerate() {
        let pos = fill + 7 * i;
        let value = u16::from(s & 0x7F) << (pos % 8);
        let [low, high] = value.to_le_bytes();
        out[pos / 8] |= low;
        if high != 0 {
            out[pos / 8 + 1] |= high;
        }
    }
    out
}

/// Unpacks `count` septets (one per output octet) from packed `bytes` after `fill_bits` bits;
/// stops early, without panicking, if `bytes` holds fewer.
pub fn unpack_septets(bytes: &[u8], count: usize, fill_bits: u8) -> Vec<u8> {
    let fill = usize::from(fill_bits);
    let available = (bytes.len() * 8).saturating_sub(fill) / 7;
    (0..count.min(available))
        .map(|i| {
            let pos = fill + 7 * i;
            let low = bytes[pos / 8];
            let high = bytes.get(pos / 8 + 1).copied().unwrap_or(0);
            ((u16::from_le_bytes([low, high]) >> (pos % 8)) & 0x7F) as u8
        })
        .collect()
}

/// Decodes packed GSM-7 whose septet count is unknown, as in SMPP's octet-counted
/// `short_message`: as many septets as fit after `fill_bits`, less a trailing CR that only
/// fills 7 spare bits (see [`pack_septets`]).
pub fn decode_gsm7_packed(bytes: &[u8], fill_bits: u8) -> String {
    let bits = (bytes.len() * 8).saturating_sub(usize::from(fill_bits));
    let mut septets = unpack_septets(bytes, bits / 7, fill_bits);
    if bits % 7 == 0 && septets.last() == Some(&CR) {
        septets.pop();
    }
    gsm7_text(&septets)
}

/// The alphabet of a `data_coding` value.
enum Alphabet {
    Gsm7,
    Ia5,
    Latin1,
    Binary,
    Ucs2,
}

fn alphabet_of(data_coding: u8) -> Alphabet {
    match data_coding {
        0x00 => Alphabet::Gsm7,
        0x01 => Alphabet::Ia5,
        0x02 | 0x04 => Alphabet::Binary,
        0x08 => Alphabet::Ucs2,
        // GSM 03.38 coding groups that SMSCs use for flash / class messages: uncompressed
        // general group (bits 3..2 = alphabet), message waiting groups, and class group.
        0x10..=0x1F => match data_coding & 0x0C {
            0x00 => Alphabet::Gsm7,
            0x04 => Alphabet::Binary,
            0x08 => Alphabet::Ucs2,
            _ => Alphabet::Latin1,
        },
        0xC0..=0xDF => Alphabet::Gsm7,
        0xE0..=0xEF => Alphabet::Ucs2,
        0xF0..=0xFF if data_coding & 0x04 != 0 => Alphabet::Binary,
        0xF0..=0xFF => Alphabet::Gsm7,
        _ => Alphabet::Latin1,
    }
}

/// Decodes `short_message` bytes (UDH already removed) received with `data_coding`:
///
/// * 0x00: GSM-7, one septet per octet, or packed if `packed` (no fill bits: for packed text
///   after a UDH use [`decode_gsm7_packed`] with [`udh_fill_bits`]);
/// * 0x01: IA5/ASCII (octets above 0x7F become U+FFFD);
/// * 0x03: Latin-1;
/// * 0x08: UTF-16BE, unpaired surrogates and an odd last octet becoming U+FFFD;
/// * 0x02 and 0x04 (binary): lossy UTF-8;
/// * GSM 03.38 class and message-waiting groups (0x10–0x1F, 0xC0–0xFF): by their alphabet bits;
/// * anything else: Latin-1, which maps every octet to some character.
///
/// Never panics: received bytes are untrusted.
pub fn decode(bytes: &[u8], data_coding: u8, packed: bool) -> String {
    match alphabet_of(data_coding) {
        Alphabet::Gsm7 if packed => decode_gsm7_packed(bytes, 0),
        Alphabet::Gsm7 => gsm7_text(bytes),
        Alphabet::Ia5 => bytes
            .iter()
            .map(|&b| {
                if b.is_ascii() {
                    char::from(b)
                } else {
                    '\u{FFFD}'
                }
            })
            .collect(),
        Alphabet::Latin1 => bytes.iter().map(|&b| char::from(b)).collect(),
        Alphabet::Binary => String::from_utf8_lossy(bytes).into_owned(),
        Alphabet::Ucs2 => {
            let chunks = bytes.chunks_exact(2);
            let odd = !chunks.remainder().is_empty();
            let units = chunks.map(|pair| u16::from_be_bytes([pair[0], pair[1]]));
            let mut text: String = char::decode_utf16(units)
                .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
                .collect();
            if odd {
                text.push(char::REPLACEMENT_CHARACTER);
            }
            text
        }
    }
}

/// Splits off the User Data Header of a `short_message` received with the UDHI bit of
/// `esm_class` set: returns the concatenation information if the UDH has a valid IEI 0x00
/// (8-bit reference) or 0x08 (16-bit reference) element (the last one, as TS 23.040 says), and
/// the payload after the UDH.
///
/// Malformed input never panics: a UDH longer than the message gives `(None, short_message)`;
/// an element running past the UDH ends the parse; a concatenation element with the wrong
/// length, a total of 0 or a part number outside `1..=total` is ignored, as TS 23.040 asks.
pub fn split_udh(short_message: &[u8]) -> (Option<Concat>, &[u8]) {
    let Some((&udhl, rest)) = short_message.split_first() else {
        return (None, short_message);
    };
    if rest.len() < usize::from(udhl) {
        return (None, short_message);
    }
    let (mut udh, payload) = rest.split_at(usize::from(udhl));
    let mut concat = None;
    while let [iei, iel, tail @ ..] = udh {
        let Some((data, next)) = tail.split_at_checked(usize::from(*iel)) else {
            break;
        };
        let found = match (*iei, data) {
            (0x00, &[reference, total, part]) => Some(Concat {
                reference: u16::from(reference),
                total,
                part,
            }),
            (0x08, &[high, low, total, part]) => Some(Concat {
                reference: u16::from_be_bytes([high, low]),
                total,
                part,
            }),
            _ => None,
        };
        if let Some(c) = found.filter(|c| (1..=c.total).contains(&c.part)) {
            concat = Some(c);
        }
        udh = next;
    }
    (concat, payload)
}

/// The 6-byte 8-bit-reference concatenation UDH `05 00 03 ref total part`, which every handset
/// understands and which leaves the most room for text.
pub fn concat_udh(reference: u8, total: u8, part: u8) -> [u8; 6] {
    [0x05, 0x00, 0x03, reference, total, part]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::encoding::{count_segments, is_gsm7_char, is_gsm7_extension};
    use proptest::prelude::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02X}")).collect()
    }

    /// Decodes every part of `encoded` and concatenates the text, as a receiver would.
    fn decode_parts(encoded: &EncodedBody, coding: DefaultCoding) -> String {
        let packed = coding == DefaultCoding::Gsm7Packed && encoded.data_coding == 0;
        let fill = if encoded.parts.len() > 1 { 1 } else { 0 };
        encoded
            .parts
            .iter()
            .map(|part| {
                if packed {
                    decode_gsm7_packed(part, fill)
                } else {
                    decode(part, encoded.data_coding, false)
                }
            })
            .collect()
    }

    #[test]
    fn serde_names() {
        for (coding, name) in [
            (DefaultCoding::Gsm7, "gsm7"),
            (DefaultCoding::Gsm7Packed, "gsm7_packed"),
            (DefaultCoding::Latin1, "latin1"),
            (DefaultCoding::Ia5, "ia5"),
        ] {
            let json = format!("\"{name}\"");
            assert_eq!(serde_json::to_string(&coding).unwrap(), json);
            assert_eq!(
                serde_json::from_str::<DefaultCoding>(&json).unwrap(),
                coding
            );
        }
        assert_eq!(
            serde_json::from_str::<DefaultCoding>("\"gsm7-packed\"").unwrap(),
            DefaultCoding::Gsm7Packed
        );
        assert_eq!(DefaultCoding::default(), DefaultCoding::Gsm7);
    }

    #[test]
    fn gsm7_unpacked_vectors() {
        let enc = encode_body("€", DefaultCoding::Gsm7);
        assert_eq!(enc.data_coding, 0x00);
        assert_eq!(enc.parts, vec![vec![0x1B, 0x65]]);
        assert_eq!(
            encode_body("@", DefaultCoding::Gsm7).parts,
            vec![vec![0x00]]
        );
        assert_eq!(
            encode_whole("A$¤_{}\\[~]|^\u{0c}", DefaultCoding::Gsm7).1,
            vec![
                0x41, 0x02, 0x24, 0x11, 0x1B, 0x28, 0x1B, 0x29, 0x1B, 0x2F, 0x1B, 0x3C, 0x1B, 0x3D,
                0x1B, 0x3E, 0x1B, 0x40, 0x1B, 0x14, 0x1B, 0x0A
            ]
        );
        assert_eq!(
            encode_whole("ΔàÇ", DefaultCoding::Gsm7).1,
            vec![0x10, 0x7F, 0x09]
        );
    }

    #[test]
    fn every_gsm_char_round_trips() {
        let all: String = GSM7_BASIC_TABLE
            .chars()
            .filter(|&c| c != '\u{1b}')
            .chain(GSM7_EXTENSION_CHARS.chars())
            .collect();
        let (dc, bytes) = encode_whole(&all, DefaultCoding::Gsm7);
        assert_eq!(dc, 0);
        assert_eq!(bytes.len(), 127 + 2 * 10);
        assert!(bytes.iter().all(|&b| b < 0x80));
        assert_eq!(decode(&bytes, 0, false), all);
        let (_, packed) = encode_whole(&all, DefaultCoding::Gsm7Packed);
        assert_eq!(decode(&packed, 0, true), all);
    }

    #[test]
    fn gsm7_packed_known_vector() {
        let enc = encode_body("hellohello", DefaultCoding::Gsm7Packed);
        assert_eq!(enc.data_coding, 0x00);
        assert_eq!(hex(&enc.parts[0]), "E8329BFD4697D9EC37");
        assert_eq!(decode(&enc.parts[0], 0x00, true), "hellohello");
        assert_eq!(unpack_septets(&enc.parts[0], 10, 0), b"hellohello".to_vec());
    }

    #[test]
    fn packing_pads_seven_spare_bits_with_cr() {
        // 7 septets = 49 bits: the 7 spare bits of the 7th octet get CR, not `@`.
        let packed = pack_septets(b"1234567", 0);
        assert_eq!(packed.len(), 7);
        assert_eq!(packed[6] >> 1, 0x0D);
        assert_eq!(decode(&packed, 0, true), "1234567");
        assert_eq!(unpack_septets(&packed, 8, 0), b"1234567\r".to_vec());
        // A body that really ends in `@` keeps it.
        assert_eq!(decode(&pack_septets(b"123456\0", 0), 0, true), "123456@");
        // The one ambiguous case: 8 septets ending in CR fill 7 octets exactly.
        assert_eq!(decode(&pack_septets(b"1234567\r", 0), 0, true), "1234567");
        assert_eq!(pack_septets(&[], 0), Vec::<u8>::new());
    }

    #[test]
    fn fill_bits() {
        assert_eq!(udh_fill_bits(6), 1);
        assert_eq!(udh_fill_bits(7), 0);
        assert_eq!(udh_fill_bits(0), 0);
        assert_eq!(udh_fill_bits(1), 6);
        // `A` after one fill bit: 0x41 << 1.
        assert_eq!(pack_septets(b"A", 1), vec![0x82]);
        assert_eq!(decode_gsm7_packed(&[0x82], 1), "A");
        // With fill bits, 8 septets leave 7 spare bits.
        let packed = pack_septets(b"ABCDEFGH", 1);
        assert_eq!(packed.len(), 8);
        assert_eq!(decode_gsm7_packed(&packed, 1), "ABCDEFGH");
    }

    #[test]
    fn gsm_multipart_lengths() {
        let body = "a".repeat(161);
        let enc = encode_body(&body, DefaultCoding::Gsm7);
        assert_eq!(enc.data_coding, 0);
        let lens: Vec<usize> = enc.parts.iter().map(Vec::len).collect();
        assert_eq!(lens, vec![153, 8]);
        assert_eq!(decode_parts(&enc, DefaultCoding::Gsm7), body);

        let body = "a".repeat(160);
        assert_eq!(encode_body(&body, DefaultCoding::Gsm7).parts.len(), 1);
        let packed = encode_body(&body, DefaultCoding::Gsm7Packed);
        assert_eq!(packed.parts.len(), 1);
        assert_eq!(packed.parts[0].len(), 140);
        assert_eq!(decode(&packed.parts[0], 0, true), body);

        // Packed parts of a multipart message fit 140 octets with their UDH.
        let body = "b".repeat(400);
        let packed = encode_body(&body, DefaultCoding::Gsm7Packed);
        let lens: Vec<usize> = packed.parts.iter().map(Vec::len).collect();
        assert_eq!(lens, vec![134, 134, 83]);
        assert_eq!(decode_parts(&packed, DefaultCoding::Gsm7Packed), body);
    }

    #[test]
    fn escape_pairs_stay_in_one_part() {
        let body = format!("{}€{}", "a".repeat(152), "b".repeat(10));
        let enc = encode_body(&body, DefaultCoding::Gsm7);
        assert_eq!(enc.parts[0], vec![b'a'; 152]);
        assert_eq!(&enc.parts[1][..2], &[0x1B, 0x65]);
        assert_eq!(decode_parts(&enc, DefaultCoding::Gsm7), body);
    }

    #[test]
    fn ucs2_vectors_and_surrogates() {
        let enc = encode_body("ça 😀", DefaultCoding::Gsm7);
        assert_eq!(enc.data_coding, 0x08);
        assert_eq!(
            enc.parts[0],
            vec![0x00, 0xE7, 0x00, 0x61, 0x00, 0x20, 0xD8, 0x3D, 0xDE, 0x00]
        );
        assert_eq!(decode(&enc.parts[0], 0x08, false), "ça 😀");

        // The emoji would straddle units 67 and 68: it moves whole to the second part.
        let body = format!("{}😀{}", "ç".repeat(66), "x".repeat(10));
        let enc = encode_body(&body, DefaultCoding::Gsm7Packed);
        assert_eq!(enc.data_coding, 0x08);
        assert_eq!(enc.parts.len(), 2);
        assert_eq!(enc.parts[0].len(), 132);
        assert_eq!(&enc.parts[1][..4], &[0xD8, 0x3D, 0xDE, 0x00]);
        assert_eq!(decode(&enc.parts[0], 0x08, false), "ç".repeat(66));
        assert_eq!(decode_parts(&enc, DefaultCoding::Gsm7), body);
    }

    #[test]
    fn latin1_and_ia5() {
        let enc = encode_body("é", DefaultCoding::Latin1);
        assert_eq!(
            (enc.data_coding, enc.parts.clone()),
            (0x03, vec![vec![0xE9]])
        );
        assert_eq!(decode(&[0xE9], 0x03, false), "é");
        assert_eq!(
            encode_whole("Hi £5", DefaultCoding::Latin1),
            (0x03, b"Hi \xA35".to_vec())
        );
        // GSM characters outside Latin-1 fall back to UCS-2.
        assert_eq!(
            encode_whole("5€", DefaultCoding::Latin1),
            (0x08, vec![0, 0x35, 0x20, 0xAC])
        );
        assert_eq!(encode_whole("Ω", DefaultCoding::Latin1).0, 0x08);
        // A non-GSM Latin-1 character makes the body UCS-2 whatever the route's coding.
        assert_eq!(encode_whole("ça", DefaultCoding::Latin1).0, 0x08);

        assert_eq!(
            encode_whole("Hi {x}", DefaultCoding::Ia5),
            (0x01, b"Hi {x}".to_vec())
        );
        assert_eq!(encode_whole("é", DefaultCoding::Ia5).0, 0x08);
        assert_eq!(decode(b"Hi\x80", 0x01, false), "Hi\u{FFFD}");

        let lens = |body: &str, coding| -> Vec<usize> {
            encode_body(body, coding)
                .parts
                .iter()
                .map(Vec::len)
                .collect()
        };
        assert_eq!(lens(&"a".repeat(140), DefaultCoding::Latin1), vec![140]);
        assert_eq!(lens(&"a".repeat(141), DefaultCoding::Latin1), vec![134, 7]);
        assert_eq!(
            lens(&"a".repeat(300), DefaultCoding::Ia5),
            vec![134, 134, 32]
        );
        // A GSM body that falls back to UCS-2 is split in UTF-16 units, not septets.
        assert_eq!(lens(&"€".repeat(71), DefaultCoding::Latin1), vec![134, 8]);
    }

    #[test]
    fn empty_body_is_one_empty_part() {
        for (coding, dc) in [
            (DefaultCoding::Gsm7, 0x00),
            (DefaultCoding::Gsm7Packed, 0x00),
            (DefaultCoding::Latin1, 0x03),
            (DefaultCoding::Ia5, 0x01),
        ] {
            assert_eq!(
                encode_body("", coding),
                EncodedBody {
                    data_coding: dc,
                    parts: vec![Vec::new()]
                }
            );
            assert_eq!(encode_whole("", coding), (dc, Vec::new()));
        }
        assert_eq!(decode(&[], 0x00, true), "");
    }

    #[test]
    fn encode_whole_does_not_split() {
        let body = "x".repeat(500);
        let (dc, bytes) = encode_whole(&body, DefaultCoding::Gsm7);
        assert_eq!((dc, bytes.len()), (0, 500));
        let (_, packed) = encode_whole(&body, DefaultCoding::Gsm7Packed);
        assert_eq!(packed.len(), (500 * 7usize).div_ceil(8));
        assert_eq!(decode(&packed, 0, true), body);
        let (dc, bytes) = encode_whole(&"😀".repeat(100), DefaultCoding::Gsm7);
        assert_eq!((dc, bytes.len()), (8, 400));
    }

    #[test]
    fn decode_other_codings() {
        assert_eq!(decode(b"caf\xc3\xa9", 0x04, false), "café");
        assert_eq!(decode(b"\xff", 0x02, false), "\u{FFFD}");
        assert_eq!(decode(&[0xE9, 0x41], 0x07, false), "éA");
        // Unpaired surrogates and an odd last octet.
        assert_eq!(
            decode(&[0xD8, 0x3D, 0x00, 0x41, 0x00], 0x08, false),
            "\u{FFFD}A\u{FFFD}"
        );
        // GSM 03.38 class groups: flash GSM-7 and flash UCS-2.
        assert_eq!(decode(&[0x00, 0x1B, 0x65], 0x10, false), "@€");
        assert_eq!(decode(&[0x00, 0x41], 0x18, false), "A");
        assert_eq!(decode(b"hi", 0xF0, false), "hi");
        assert_eq!(decode(b"hi", 0xF4, false), "hi");
        // Lenient GSM: ESC + unknown code, ESC ESC, trailing ESC, non-septets.
        assert_eq!(
            decode(&[0x1B, 0x41, 0x1B, 0x1B, 0x42, 0x1B], 0, false),
            "A B"
        );
        assert_eq!(decode(&[0x80], 0, false), "\u{FFFD}");
    }

    #[test]
    fn split_udh_vectors() {
        let msg = [0x05, 0x00, 0x03, 0x2A, 0x02, 0x01, 0x41];
        assert_eq!(
            split_udh(&msg),
            (
                Some(Concat {
                    reference: 0x2A,
                    total: 2,
                    part: 1
                }),
                &[0x41][..]
            )
        );
        let msg = [0x06, 0x08, 0x04, 0x12, 0x34, 0x03, 0x02];
        assert_eq!(
            split_udh(&msg),
            (
                Some(Concat {
                    reference: 0x1234,
                    total: 3,
                    part: 2
                }),
                &[][..]
            )
        );
        // Another element before the concatenation one (a port-addressing IE).
        let msg = [
            0x0B, 0x05, 0x04, 0x0B, 0x84, 0x23, 0xF0, 0x00, 0x03, 0x07, 0x02, 0x02, b'x',
        ];
        assert_eq!(
            split_udh(&msg).0.map(|c| (c.reference, c.part)),
            Some((7, 2))
        );
        assert_eq!(split_udh(&msg).1, b"x");
        // Round trip with concat_udh.
        let mut msg = concat_udh(0xFE, 4, 4).to_vec();
        msg.extend(b"tail");
        assert_eq!(
            split_udh(&msg),
            (
                Some(Concat {
                    reference: 0xFE,
                    total: 4,
                    part: 4
                }),
                &b"tail"[..]
            )
        );
        assert_eq!(concat_udh(0x2A, 2, 1), [0x05, 0x00, 0x03, 0x2A, 0x02, 0x01]);
    }

    #[test]
    fn split_udh_malformed() {
        // Empty, UDHL past the end, element past the UDH, wrong lengths, invalid part numbers.
        assert_eq!(split_udh(&[]), (None, &[][..]));
        assert_eq!(split_udh(&[0x00, 0x41]), (None, &[0x41][..]));
        assert_eq!(
            split_udh(&[0x05, 0x00, 0x03]),
            (None, &[0x05, 0x00, 0x03][..])
        );
        assert_eq!(
            split_udh(&[0x03, 0x00, 0x03, 0x2A, 0x41]),
            (None, &[0x41][..])
        );
        assert_eq!(split_udh(&[0x01, 0x00]), (None, &[][..]));
        assert_eq!(split_udh(&[0x04, 0x00, 0x02, 0x2A, 0x02]), (None, &[][..]));
        assert_eq!(split_udh(&[0x05, 0x00, 0x03, 0x2A, 0x02, 0x00]).0, None);
        assert_eq!(split_udh(&[0x05, 0x00, 0x03, 0x2A, 0x02, 0x03]).0, None);
        assert_eq!(split_udh(&[0x05, 0x00, 0x03, 0x2A, 0x00, 0x00]).0, None);
        assert_eq!(split_udh(&[0x05, 0x08, 0x03, 0x2A, 0x02, 0x01]).0, None);
    }

    fn gsm_char() -> impl Strategy<Value = char> {
        let basic: Vec<char> = GSM7_BASIC_TABLE
            .chars()
            .filter(|&c| c != '\u{1b}')
            .collect();
        prop_oneof![
            4 => prop::sample::select(basic),
            1 => prop::sample::select(GSM7_EXTENSION_CHARS.chars().collect::<Vec<_>>()),
        ]
    }

    fn gsm_body() -> impl Strategy<Value = String> {
        prop::collection::vec(gsm_char(), 0..600).prop_map(|cs| cs.into_iter().collect())
    }

    fn any_body() -> impl Strategy<Value = String> {
        let ch = prop_oneof![
            3 => gsm_char(),
            1 => prop::sample::select("çáêñ😀👋中\u{0}\u{1b}\u{FFFF}".chars().collect::<Vec<_>>()),
            1 => any::<char>(),
        ];
        prop_oneof![
            prop::collection::vec(ch, 0..400).prop_map(|cs| cs.into_iter().collect()),
            any::<String>(),
        ]
    }

    fn coding() -> impl Strategy<Value = DefaultCoding> {
        prop::sample::select(vec![
            DefaultCoding::Gsm7,
            DefaultCoding::Gsm7Packed,
            DefaultCoding::Latin1,
            DefaultCoding::Ia5,
        ])
    }

    /// Checks the size limits of `encoded`, which carries text in its data coding.
    fn check_limits(encoded: &EncodedBody, coding: DefaultCoding) {
        let multipart = encoded.parts.len() > 1;
        for part in &encoded.parts {
            let limit = match (encoded.data_coding, coding, multipart) {
                (0x00, DefaultCoding::Gsm7, false) => 160,
                (0x00, DefaultCoding::Gsm7, true) => 153,
                (_, _, false) => 140,
                (_, _, true) => 134,
            };
            assert!(part.len() <= limit, "{} > {limit}", part.len());
            assert!(!multipart || !part.is_empty());
        }
    }

    proptest! {
        #[test]
        fn gsm_bodies_round_trip_unpacked(body in gsm_body()) {
            let enc = encode_body(&body, DefaultCoding::Gsm7);
            prop_assert_eq!(enc.data_coding, 0);
            prop_assert_eq!(enc.parts.len(), count_segments(&body).max(1));
            check_limits(&enc, DefaultCoding::Gsm7);
            prop_assert_eq!(decode(&enc.parts.concat(), 0, false), body.clone());
            prop_assert_eq!(decode_parts(&enc, DefaultCoding::Gsm7), body);
        }

        #[test]
        fn gsm_bodies_round_trip_packed(body in gsm_body()) {
            let enc = encode_body(&body, DefaultCoding::Gsm7Packed);
            prop_assert_eq!(enc.data_coding, 0);
            check_limits(&enc, DefaultCoding::Gsm7Packed);
            let texts = segment_strs(&body);
            let fill = if enc.parts.len() > 1 { 1 } else { 0 };
            if !body.is_empty() {
                prop_assert_eq!(texts.len(), enc.parts.len());
            }
            for (text, part) in texts.iter().zip(&enc.parts) {
                let septets = gsm7_septets(text);
                // Exact with the septet count, as after an SMS's TP-UDL.
                prop_assert_eq!(&unpack_septets(part, septets.len(), fill), &septets);
                // Without it, only a CR ending exactly on an octet boundary is lost.
                let decoded = decode_gsm7_packed(part, fill);
                let ambiguous = (usize::from(fill) + 7 * septets.len()).is_multiple_of(8)
                    && text.ends_with('\r');
                if ambiguous {
                    prop_assert_eq!(format!("{decoded}\r"), *text);
                } else {
                    prop_assert_eq!(&decoded, text);
                }
            }
        }

        #[test]
        fn any_body_round_trips(body in any_body(), coding in coding()) {
            let enc = encode_body(&body, coding);
            check_limits(&enc, coding);
            let ucs2 = encoding_of(&body) == Encoding::Ucs2;
            if ucs2 {
                prop_assert_eq!(enc.data_coding, 0x08);
                // Same parts as the segmentation the body is billed by.
                prop_assert_eq!(enc.parts.len(), count_segments(&body));
            }
            if enc.data_coding == 0x08 {
                // Every part is valid UTF-16 on its own: no surrogate pair is split.
                for part in &enc.parts {
                    let clean = !decode(part, 0x08, false).contains(char::REPLACEMENT_CHARACTER);
                    prop_assert!(clean || body.contains(char::REPLACEMENT_CHARACTER));
                }
            }
            let ambiguous_cr = coding == DefaultCoding::Gsm7Packed && body.contains('\r');
            if !ambiguous_cr {
                prop_assert_eq!(decode_parts(&enc, coding), body.clone());
                let (dc, whole) = encode_whole(&body, coding);
                prop_assert_eq!(dc, enc.data_coding);
                let packed = dc == 0 && coding == DefaultCoding::Gsm7Packed;
                prop_assert_eq!(decode(&whole, dc, packed), body);
            }
        }

        #[test]
        fn octet_split_matches_segment_for_ucs2(body in any_body()) {
            prop_assume!(encoding_of(&body) == Encoding::Ucs2);
            prop_assert_eq!(split_octets(&body, |c| 2 * c.len_utf16()), segment_strs(&body));
        }

        #[test]
        fn pack_unpack_round_trip(septets in prop::collection::vec(0u8..0x80, 0..300), fill in 0u8..7) {
            let packed = pack_septets(&septets, fill);
            prop_assert_eq!(packed.len(), (usize::from(fill) + 7 * septets.len()).div_ceil(8));
            prop_assert_eq!(unpack_septets(&packed, septets.len(), fill), septets.clone());
            let text = decode_gsm7_packed(&packed, fill);
            if septets.last() != Some(&CR) {
                prop_assert_eq!(text, gsm7_text(&septets));
            }
        }

        #[test]
        fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300), dc in any::<u8>(), packed in any::<bool>(), fill in any::<u8>(), count in 0usize..400) {
            let _ = decode(&bytes, dc, packed);
            let _ = decode_gsm7_packed(&bytes, fill);
            prop_assert!(unpack_septets(&bytes, count, fill).len() <= count);
            let _ = pack_septets(&bytes, fill);
        }

        #[test]
        fn split_udh_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let (concat, payload) = split_udh(&bytes);
            prop_assert!(bytes.ends_with(payload));
            if let Some(c) = concat {
                prop_assert!(c.part >= 1 && c.part <= c.total);
            }
        }
    }

    #[test]
    fn gsm_chars_are_is_gsm7_chars() {
        // The tables agree with the predicates this module relies on.
        for c in GSM7_EXTENSION_CHARS.chars() {
            assert!(is_gsm7_extension(c) && is_gsm7_char(c));
        }
        assert_eq!(gsm7_septets("ç"), vec![b'?']);
    }
}
