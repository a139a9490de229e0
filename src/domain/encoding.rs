//! SMS text encoding and segmentation, counted the way Twilio counts them.
//!
//! * A body made only of characters from the GSM 03.38 default alphabet (basic table plus the
//!   extension table) is sent as **GSM-7**: one septet per basic character, two (ESC + code)
//!   per extension character.
//! * Any other character makes the whole body **UCS-2**: it is counted in UTF-16 code units,
//!   so a character outside the Basic Multilingual Plane (most emoji) costs two.
//! * A body that fits one segment may use 160 septets / 70 units. Longer bodies are sent as a
//!   concatenated message whose segments each carry a 6-byte User Data Header, leaving 153
//!   septets / 67 units per segment.
//! * A character is never split across segments: neither an ESC pair nor a surrogate pair.
//!   Segments are filled greedily, so a two-unit character that does not fit moves whole to the
//!   next segment and the previous one is left one unit short.
//!
//! [`smart_encode`] emulates Twilio's "Smart Encoding": it replaces common Unicode look-alikes
//! (curly quotes, dashes, exotic spaces, full-width forms, ...) with GSM-7 equivalents so that
//! a body typed on a phone or pasted from a word processor does not silently become UCS-2.
//! [`segment`] and [`count_segments`] do not apply it themselves: callers that want Smart
//! Encoding apply [`smart_encode`] first and segment its output.
//!
//! Everything here is pure: no I/O and no imports from the rest of the crate.

use std::borrow::Cow;

/// The character set a body is sent in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// The GSM 03.38 7-bit default alphabet (with its extension table).
    Gsm7,
    /// UCS-2 (in practice UTF-16, surrogate pairs included).
    Ucs2,
}

/// Septets in a single, unconcatenated GSM-7 segment.
pub const GSM7_SINGLE_SEGMENT: usize = 160;
/// Septets per segment of a concatenated GSM-7 message (the UDH takes 7 septets).
pub const GSM7_MULTIPART_SEGMENT: usize = 153;
/// UTF-16 code units in a single, unconcatenated UCS-2 segment.
pub const UCS2_SINGLE_SEGMENT: usize = 70;
/// UTF-16 code units per segment of a concatenated UCS-2 message (the UDH takes 3 units).
pub const UCS2_MULTIPART_SEGMENT: usize = 67;

impl Encoding {
    /// The name Twilio and its segment calculator use: `GSM-7` or `UCS-2`.
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Gsm7 => "GSM-7",
            Encoding::Ucs2 => "UCS-2",
        }
    }

    /// Units (septets or UTF-16 code units) a message may use and still be one segment.
    pub fn single_segment_limit(self) -> usize {
        match self {
            Encoding::Gsm7 => GSM7_SINGLE_SEGMENT,
            Encoding::Ucs2 => UCS2_SINGLE_SEGMENT,
        }
    }

    /// Units (septets or UTF-16 code units) per segment of a concatenated message.
    pub fn multipart_segment_limit(self) -> usize {
        match self {
            Encoding::Gsm7 => GSM7_MULTIPART_SEGMENT,
            Encoding::Ucs2 => UCS2_MULTIPART_SEGMENT,
        }
    }
}

impl std::fmt::Display for Encoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The GSM 03.38 basic table, indexed by septet value. Index 0x1B is ESC, the escape to the
/// extension table, which is not a character of its own: a literal U+001B in a body is not GSM.
pub const GSM7_BASIC_TABLE: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\u{1b}ÆæßÉ \
                                    !\"#¤%&'()*+,-./0123456789:;<=>?\
                                    ¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§\
                                    ¿abcdefghijklmnopqrstuvwxyzäöñüà";

/// The characters of the GSM 03.38 extension table (each sent as ESC + code), in code order:
/// form feed (0x0A), `^` (0x14), `{` (0x28), `}` (0x29), `\` (0x2F), `[` (0x3C), `~` (0x3D),
/// `]` (0x3E), `|` (0x40), `€` (0x65).
pub const GSM7_EXTENSION_CHARS: &str = "\u{0c}^{}\\[~]|€";

/// Whether `c` is in the GSM 03.38 basic table (one septet). ESC is not counted as a character.
/// Note that the table has upper-case `Ç` but not lower-case `ç`.
pub fn is_gsm7_basic(c: char) -> bool {
    matches!(
        c,
        '\n' | '\r'
            | ' '..='#'
            | '$'
            | '%'..='?'
            | '@'
            | 'A'..='Z'
            | '_'
            | 'a'..='z'
            | '£'
            | '¥'
            | 'è'
            | 'é'
            | 'ù'
            | 'ì'
            | 'ò'
            | 'Ç'
            | 'Ø'
            | 'ø'
            | 'Å'
            | 'å'
            | 'Δ'
            | 'Φ'
            | 'Γ'
            | 'Λ'
            | 'Ω'
            | 'Π'
            | 'Ψ'
            | 'Σ'
            | 'Θ'
            | 'Ξ'
            | 'Æ'
            | 'æ'
            | 'ß'
            | 'É'
            | '¤'
            | '¡'
            | 'Ä'
            | 'Ö'
            | 'Ñ'
            | 'Ü'
            | '§'
            | '¿'
            | 'ä'
            | 'ö'
            | 'ñ'
            | 'ü'
            | 'à'
    )
}

/// Whether `c` is in the GSM 03.38 extension table (two septets: ESC + code).
pub fn is_gsm7_extension(c: char) -> bool {
    matches!(
        c,
        '\u{0c}' | '^' | '{' | '}' | '\\' | '[' | '~' | ']' | '|' | '€'
    )
}

/// Whether `c` can be sent in GSM-7, from the basic or the extension table.
pub fn is_gsm7_char(c: char) -> bool {
    is_gsm7_basic(c) || is_gsm7_extension(c)
}

/// Whether every character of `text` can be sent in GSM-7 (true for `""`).
pub fn is_gsm7(text: &str) -> bool {
    text.chars().all(is_gsm7_char)
}

/// The encoding `text` is sent in: GSM-7 if every character is GSM, UCS-2 otherwise.
/// `""` is GSM-7.
pub fn encoding_of(text: &str) -> Encoding {
    if is_gsm7(text) {
        Encoding::Gsm7
    } else {
        Encoding::Ucs2
    }
}

/// What `c` costs in `encoding`: septets for GSM-7 (1, or 2 for an extension character),
/// UTF-16 code units for UCS-2 (1, or 2 outside the BMP).
///
/// For `Gsm7`, `c` is assumed to be a GSM character (as it is in a body whose
/// [`encoding_of`] is `Gsm7`); any other character is counted as 1.
pub fn char_units(c: char, encoding: Encoding) -> usize {
    match encoding {
        Encoding::Gsm7 if is_gsm7_extension(c) => 2,
        Encoding::Gsm7 => 1,
        Encoding::Ucs2 => c.len_utf16(),
    }
}

/// Total units (septets or UTF-16 code units) of `text` in `encoding`.
pub fn text_units(text: &str, encoding: Encoding) -> usize {
    match encoding {
        Encoding::Gsm7 => text.chars().map(|c| char_units(c, encoding)).sum(),
        Encoding::Ucs2 => text.encode_utf16().count(),
    }
}

/// The characters of `text` that force UCS-2, in order of appearance, without duplicates.
pub fn non_gsm7_chars(text: &str) -> Vec<char> {
    let mut found = Vec::new();
    for c in text.chars().filter(|c| !is_gsm7_char(*c)) {
        if !found.contains(&c) {
            found.push(c);
        }
    }
    found
}

/// A body split into the segments it is sent as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segmentation {
    pub encoding: Encoding,
    /// The text of each segment, in order; their concatenation is the body. Empty for `""`.
    pub segments: Vec<String>,
    /// Septets (GSM-7) or UTF-16 code units (UCS-2) of the whole body, User Data Headers not
    /// included.
    pub units: usize,
}

/// Splits `text` into the segments it is sent as, in the encoding [`encoding_of`] picks.
///
/// The segments concatenate to `text`; each stays within the per-segment limit of its
/// encoding (160/70 for a lone segment, 153/67 for the parts of a concatenated message); no
/// character — hence no ESC pair and no surrogate pair — is split. `""` has no segments.
/// Smart Encoding is not applied here: see [`smart_encode`].
pub fn segment(text: &str) -> Segmentation {
    let encoding = encoding_of(text);
    let units = text_units(text, encoding);
    let mut segments = Vec::new();
    split(text, encoding, units, |part| segments.push(part.to_owned()));
    Segmentation {
        encoding,
        segments,
        units,
    }
}

/// The number of segments `text` is sent as: `segment(text).segments.len()`, computed without
/// allocating. `""` counts 0 (Twilio's own calculator reports 1 for an empty body, but an empty
/// body sends nothing; callers that bill a media-only message do so separately).
pub fn count_segments(text: &str) -> usize {
    let encoding = encoding_of(text);
    let units = text_units(text, encoding);
    let mut count = 0;
    split(text, encoding, units, |_| count += 1);
    count
}

/// Calls `emit` with each segment of `text`, which is `units` long in `encoding`.
fn split<'a>(text: &'a str, encoding: Encoding, units: usize, mut emit: impl FnMut(&'a str)) {
    if text.is_empty() {
        return;
    }
    if units <= encoding.single_segment_limit() {
        emit(text);
        return;
    }
    let limit = encoding.multipart_segment_limit();
    let mut start = 0;
    let mut used = 0;
    for (i, c) in text.char_indices() {
        let cost = char_units(c, encoding);
        if used + cost > limit {
            emit(&text[start..i]);
            start = i;
            used = 0;
        }
        used += cost;
    }
    emit(&text[start..]);
}

/// Printable ASCII, U+0021..=U+007E, for slicing the full-width forms' replacements out of.
const ASCII_PRINTABLE: &str =
    "!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~";

/// The Smart Encoding replacement for `c`, if it has one. Every replacement is made only of
/// GSM-7 characters (possibly none: invisible characters are removed), and no GSM-7 character
/// has a replacement, so [`smart_encode`] is idempotent.
///
/// | Input | Output |
/// |---|---|
/// | double quotes `“ ” „ ‟ « » ″ ‶ ʺ ˮ ❝ ❞ 〝 〞 〟` | `"` |
/// | single quotes and primes `‘ ’ ‚ ‛ ′ ‵ ʹ ʻ ʼ ʽ ˈ ˊ ˋ ´ ❛ ❜`, grave accent U+0060 | `'` |
/// | single angle quotes `‹ ›` | `<` `>` |
/// | hyphens, dashes, minus, bullets `‐ ‑ ‒ – — ― ⁃ − ﹘ ﹣ • ‣ ∙` | `-` |
/// | ellipsis `…`, two-dot leader `‥`, one-dot leader `․` | `...` `..` `.` |
/// | spaces U+00A0, U+2000–U+200A, U+202F, U+205F, U+3000, tab | space |
/// | line / paragraph separators U+2028, U+2029 | line feed |
/// | zero-width space U+200B, word joiner U+2060, BOM U+FEFF, soft hyphen U+00AD | removed |
/// | full-width ASCII U+FF01–U+FF5E | the ASCII character (full-width grave accent: `'`) |
/// | ideographic / half-width punctuation `、 。 ､ ｡` | `,` `.` |
/// | small form variants U+FE50–U+FE6B (`﹐ ﹒ ﹔ ﹕ ﹖ ﹗ ﹙ ﹚ ﹛ ﹜ ﹟ ﹠ ﹡ ﹢ ﹤ ﹥ ﹦ ﹨ ﹩ ﹪ ﹫`) | the ASCII character |
/// | `‼ ⁇ ⁈ ⁉` | `!!` `??` `?!` `!?` |
/// | fractions `¼ ½ ¾`, `÷ ⁄ ∕` | `1/4` `1/2` `3/4`, `/` |
/// | operators and modifiers `∗ ⁎ ˖ ∶ ꞉ ˸ ∣ ∼ ˜ ˆ ‸` | `* * + : : : \| ~ ~ ^ ^` |
/// | Greek look-alikes `∆` (increment), `Ω` (ohm) | `Δ` `Ω` |
///
/// Combining marks are deliberately left alone (replacing U+0303 with `~` would turn a
/// decomposed `ñ` into `n~`), and so are letters: `ç`, `á`, `ê` ... stay as they are.
pub fn smart_replacement(c: char) -> Option<&'static str> {
    let replacement = match c {
        // Double quotation marks.
        '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{201F}' | '\u{00AB}' | '\u{00BB}'
        | '\u{2033}' | '\u{2036}' | '\u{02BA}' | '\u{02EE}' | '\u{275D}' | '\u{275E}'
        | '\u{301D}' | '\u{301E}' | '\u{301F}' => "\"",
        // Single quotation marks, primes, apostrophe-like modifiers and accents.
        '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}' | '\u{2032}' | '\u{2035}'
        | '\u{02B9}' | '\u{02BB}' | '\u{02BC}' | '\u{02BD}' | '\u{02C8}' | '\u{02CA}'
        | '\u{02CB}' | '\u{00B4}' | '`' | '\u{275B}' | '\u{275C}' | '\u{FF40}' => "'",
        // Single angle quotation marks.
        '\u{2039}' => "<",
        '\u{203A}' => ">",
        // Hyphens, dashes, minus sign and bullets.
        '\u{2010}'..='\u{2015}'
        | '\u{2043}'
        | '\u{2212}'
        | '\u{FE58}'
        | '\u{FE63}'
        | '\u{2022}'
        | '\u{2023}'
        | '\u{2219}' => "-",
        // Leaders.
        '\u{2026}' => "...",
        '\u{2025}' => "..",
        '\u{2024}' => ".",
        // Spaces.
        '\t' | '\u{00A0}' | '\u{2000}'..='\u{200A}' | '\u{202F}' | '\u{205F}' | '\u{3000}' => " ",
        '\u{2028}' | '\u{2029}' => "\n",
        // Invisible characters.
        '\u{200B}' | '\u{2060}' | '\u{FEFF}' | '\u{00AD}' => "",
        // CJK and half-width punctuation.
        '\u{3001}' | '\u{FF64}' => ",",
        '\u{3002}' | '\u{FF61}' => ".",
        // Full-width ASCII (the grave accent is handled with the single quotes above).
        '\u{FF01}'..='\u{FF5E}' => {
            let i = c as usize - 0xFF01;
            &ASCII_PRINTABLE[i..i + 1]
        }
        // Small form variants.
        '\u{FE50}' | '\u{FE51}' => ",",
        '\u{FE52}' => ".",
        '\u{FE54}' => ";",
        '\u{FE55}' => ":",
        '\u{FE56}' => "?",
        '\u{FE57}' => "!",
        '\u{FE59}' => "(",
        '\u{FE5A}' => ")",
        '\u{FE5B}' => "{",
        '\u{FE5C}' => "}",
        '\u{FE5F}' => "#",
        '\u{FE60}' => "&",
        '\u{FE61}' => "*",
        '\u{FE62}' => "+",
        '\u{FE64}' => "<",
        '\u{FE65}' => ">",
        '\u{FE66}' => "=",
        '\u{FE68}' => "\\",
        '\u{FE69}' => "$",
        '\u{FE6A}' => "%",
        '\u{FE6B}' => "@",
        // Doubled punctuation.
        '\u{203C}' => "!!",
        '\u{2047}' => "??",
        '\u{2048}' => "?!",
        '\u{2049}' => "!?",
        // Fractions and slashes.
        '\u{00BC}' => "1/4",
        '\u{00BD}' => "1/2",
        '\u{00BE}' => "3/4",
        '\u{00F7}' | '\u{2044}' | '\u{2215}' => "/",
        // Operators and modifier letters.
        '\u{2217}' | '\u{204E}' => "*",
        '\u{02D6}' => "+",
        '\u{2236}' | '\u{A789}' | '\u{02F8}' => ":",
        '\u{2223}' => "|",
        '\u{223C}' | '\u{02DC}' => "~",
        '\u{02C6}' | '\u{2038}' => "^",
        // Greek look-alikes from the mathematical and letter-like blocks.
        '\u{2206}' => "Δ",
        '\u{2126}' => "Ω",
        _ => return None,
    };
    Some(replacement)
}

/// Applies Twilio-style Smart Encoding: every character with a [`smart_replacement`] is
/// replaced, whether or not the rest of the body is GSM (an emoji still makes the body UCS-2,
/// but its curly quotes become straight ones). Borrows `text` when nothing is replaced.
pub fn smart_encode(text: &str) -> Cow<'_, str> {
    let Some(first) = text.find(|c| smart_replacement(c).is_some()) else {
        return Cow::Borrowed(text);
    };
    let mut out = String::with_capacity(text.len());
    out.push_str(&text[..first]);
    for c in text[first..].chars() {
        match smart_replacement(c) {
            Some(replacement) => out.push_str(replacement),
            None => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn all_chars() -> impl Iterator<Item = char> {
        (0..=0x10FFFFu32).filter_map(char::from_u32)
    }

    /// Checks the invariants every segmentation must satisfy.
    fn check(text: &str, seg: &Segmentation) {
        assert_eq!(seg.segments.concat(), text);
        assert_eq!(seg.encoding, encoding_of(text));
        assert_eq!(seg.units, text_units(text, seg.encoding));
        assert_eq!(count_segments(text), seg.segments.len());
        if text.is_empty() {
            assert!(seg.segments.is_empty());
            return;
        }
        let limit = if seg.segments.len() == 1 {
            seg.encoding.single_segment_limit()
        } else {
            seg.encoding.multipart_segment_limit()
        };
        let mut total = 0;
        for (i, part) in seg.segments.iter().enumerate() {
            assert!(!part.is_empty());
            let units = text_units(part, seg.encoding);
            assert!(units <= limit, "segment {i} has {units} > {limit} units");
            // Greedy: the next segment's first character would not have fitted.
            if let Some(next) = seg.segments.get(i + 1) {
                let c = next.chars().next().unwrap();
                assert!(units + char_units(c, seg.encoding) > limit);
            }
            total += units;
        }
        assert_eq!(total, seg.units);
        if seg.units <= seg.encoding.single_segment_limit() {
            assert_eq!(seg.segments.len(), 1);
        }
    }

    fn lens(seg: &Segmentation) -> Vec<usize> {
        seg.segments
            .iter()
            .map(|s| text_units(s, seg.encoding))
            .collect()
    }

    #[test]
    fn tables_match_gsm_03_38() {
        let basic: Vec<char> = GSM7_BASIC_TABLE.chars().collect();
        assert_eq!(basic.len(), 128);
        assert_eq!(basic[0x00], '@');
        assert_eq!(basic[0x09], 'Ç');
        assert_eq!(basic[0x1B], '\u{1b}');
        assert_eq!(basic[0x24], '¤');
        assert_eq!(basic[0x40], '¡');
        assert_eq!(basic[0x60], '¿');
        assert_eq!(basic[0x7F], 'à');
        assert_eq!(GSM7_EXTENSION_CHARS.chars().count(), 10);
        for c in all_chars() {
            let in_basic = c != '\u{1b}' && basic.contains(&c);
            assert_eq!(is_gsm7_basic(c), in_basic, "{c:?}");
            assert_eq!(
                is_gsm7_extension(c),
                GSM7_EXTENSION_CHARS.contains(c),
                "{c:?}"
            );
            assert!(!(in_basic && is_gsm7_extension(c)));
        }
    }

    #[test]
    fn character_membership() {
        for c in "@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà\n\r Az09!\"#%&'()*+,-./:;<=>?".chars()
        {
            assert!(is_gsm7_basic(c), "{c:?}");
        }
        for c in "^{}\\[~]|€\u{0c}".chars() {
            assert!(is_gsm7_extension(c) && is_gsm7_char(c), "{c:?}");
            assert_eq!(char_units(c, Encoding::Gsm7), 2);
        }
        for c in "çáíóúêâ`\u{1b}\t😀中\u{0301}".chars() {
            assert!(!is_gsm7_char(c), "{c:?}");
        }
        assert_eq!(non_gsm7_chars("ça ç va 😀"), vec!['ç', '😀']);
    }

    #[test]
    fn short_ascii_is_one_gsm_segment() {
        let seg = segment("Hi there");
        assert_eq!(seg.encoding, Encoding::Gsm7);
        assert_eq!(seg.segments, vec!["Hi there"]);
        assert_eq!(seg.units, 8);
        assert_eq!(count_segments("Hi there"), 1);
    }

    #[test]
    fn empty_body_has_no_segments() {
        let seg = segment("");
        assert_eq!(seg.encoding, Encoding::Gsm7);
        assert!(seg.segments.is_empty());
        assert_eq!(seg.units, 0);
        assert_eq!(count_segments(""), 0);
    }

    #[test]
    fn gsm_single_segment_boundary() {
        let text = "a".repeat(160);
        assert_eq!(segment(&text).segments, vec![text.clone()]);
        let text = "a".repeat(161);
        let seg = segment(&text);
        assert_eq!(lens(&seg), vec![153, 8]);
        check(&text, &seg);
    }

    #[test]
    fn gsm_multipart_boundaries() {
        assert_eq!(count_segments(&"a".repeat(306)), 2);
        let seg = segment(&"a".repeat(307));
        assert_eq!(lens(&seg), vec![153, 153, 1]);
        assert_eq!(count_segments(&"a".repeat(459)), 3);
        assert_eq!(count_segments(&"a".repeat(460)), 4);
    }

    #[test]
    fn extension_chars_cost_two_septets() {
        let seg = segment("Price: 5€ {ok}");
        assert_eq!(seg.encoding, Encoding::Gsm7);
        assert_eq!(seg.units, 14 + 3);
        assert_eq!(count_segments(&"€".repeat(80)), 1);
        let seg = segment(&"€".repeat(81));
        assert_eq!(seg.units, 162);
        assert_eq!(lens(&seg), vec![152, 10]);
    }

    #[test]
    fn escape_pair_at_boundary_moves_to_next_segment() {
        // The € is the 153rd character: it would need septets 153 and 154 of the first part.
        let text = format!("{}€{}", "a".repeat(152), "b".repeat(10));
        let seg = segment(&text);
        assert_eq!(seg.encoding, Encoding::Gsm7);
        assert_eq!(seg.units, 164);
        assert_eq!(
            seg.segments,
            vec!["a".repeat(152), format!("€{}", "b".repeat(10))]
        );
        check(&text, &seg);
        // One character earlier it fits exactly.
        let text = format!("{}€{}", "a".repeat(151), "b".repeat(10));
        assert_eq!(lens(&segment(&text)), vec![153, 10]);
    }

    #[test]
    fn ucs2_boundaries() {
        let text = "ç".repeat(70);
        let seg = segment(&text);
        assert_eq!(seg.encoding, Encoding::Ucs2);
        assert_eq!(seg.segments.len(), 1);
        let text = "ç".repeat(71);
        let seg = segment(&text);
        assert_eq!(lens(&seg), vec![67, 4]);
        check(&text, &seg);
        assert_eq!(count_segments(&"中".repeat(134)), 2);
        assert_eq!(count_segments(&"中".repeat(135)), 3);
    }

    #[test]
    fn one_non_gsm_char_makes_the_whole_body_ucs2() {
        // Upper-case Ç is GSM, lower-case ç is not.
        assert_eq!(encoding_of("Ça va"), Encoding::Gsm7);
        assert_eq!(encoding_of("ça va"), Encoding::Ucs2);
        let text = format!("{}ç", "a".repeat(100));
        let seg = segment(&text);
        assert_eq!(seg.encoding, Encoding::Ucs2);
        assert_eq!(lens(&seg), vec![67, 34]);
        // In UCS-2, extension characters cost one unit like any BMP character.
        assert_eq!(segment("€ç").units, 2);
    }

    #[test]
    fn emoji_are_surrogate_pairs() {
        let seg = segment("Hi 👋");
        assert_eq!(seg.encoding, Encoding::Ucs2);
        assert_eq!(seg.units, 5);
        assert_eq!(count_segments(&"😀".repeat(35)), 1);
        assert_eq!(count_segments(&"😀".repeat(36)), 2);
    }

    #[test]
    fn surrogate_pair_at_boundary_moves_whole() {
        let text = format!("{}😀{}", "a".repeat(66), "b".repeat(10));
        let seg = segment(&text);
        assert_eq!(seg.units, 78);
        assert_eq!(
            seg.segments,
            vec!["a".repeat(66), format!("😀{}", "b".repeat(10))]
        );
        check(&text, &seg);
    }

    #[test]
    fn crlf_counts_two_septets() {
        assert_eq!(segment("a\r\nb").units, 4);
    }

    #[test]
    fn smart_encoding_replaces_lookalikes() {
        let text = "“Hello” — it’s… fine\u{00A0}‹ok› «x» ＨＩ！\u{200B}½ •";
        let out = smart_encode(text);
        assert_eq!(out, "\"Hello\" - it's... fine <ok> \"x\" HI!1/2 -");
        assert!(is_gsm7(&out));
        assert_eq!(count_segments(&out), 1);
        assert_eq!(segment(&out).encoding, Encoding::Gsm7);
        assert_eq!(smart_encode("\u{FEFF}a\u{2060}b\u{00AD}c"), "abc");
        assert_eq!(smart_encode("a\u{3000}b\u{2009}c\u{202F}d\te"), "a b c d e");
        assert_eq!(smart_encode("［ｘ］～＼｀"), "[x]~\\'");
    }

    #[test]
    fn smart_encoding_borrows_when_nothing_changes() {
        assert!(matches!(smart_encode("Plain text €"), Cow::Borrowed(_)));
        assert!(matches!(smart_encode("ça 😀"), Cow::Borrowed(_)));
        assert!(matches!(smart_encode(""), Cow::Borrowed(_)));
    }

    #[test]
    fn smart_encoding_keeps_other_unicode() {
        let out = smart_encode("It’s ça 😀");
        assert_eq!(out, "It's ça 😀");
        assert_eq!(encoding_of(&out), Encoding::Ucs2);
    }

    #[test]
    fn every_replacement_is_gsm_and_only_non_gsm_chars_are_replaced() {
        let mut replaced = 0;
        for c in all_chars() {
            if let Some(r) = smart_replacement(c) {
                replaced += 1;
                assert!(!is_gsm7_char(c), "{c:?} is GSM but has a replacement");
                assert!(is_gsm7(r), "{c:?} -> {r:?} is not GSM");
            }
        }
        assert!(replaced > 200);
    }

    fn body_char() -> impl Strategy<Value = char> {
        prop_oneof![
            4 => prop::char::range(' ', '~'),
            1 => prop::sample::select(GSM7_EXTENSION_CHARS.chars().collect::<Vec<_>>()),
            1 => prop::sample::select("\n\r@£ÇçáéêñÑüß€Δ".chars().collect::<Vec<_>>()),
            1 => prop::sample::select("😀👋🎉中文".chars().collect::<Vec<_>>()),
            1 => any::<char>(),
        ]
    }

    fn body() -> impl Strategy<Value = String> {
        prop::collection::vec(body_char(), 0..400).prop_map(|cs| cs.into_iter().collect())
    }

    fn gsm_body() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                3 => prop::char::range(' ', '~').prop_filter("GSM", |c| is_gsm7_char(*c)),
                1 => prop::sample::select(GSM7_EXTENSION_CHARS.chars().collect::<Vec<_>>()),
            ],
            0..500,
        )
        .prop_map(|cs| cs.into_iter().collect())
    }

    fn lookalike_body() -> impl Strategy<Value = String> {
        let lookalikes: Vec<char> = all_chars()
            .filter(|c| smart_replacement(*c).is_some())
            .collect();
        prop::collection::vec(
            prop_oneof![
                prop::sample::select(lookalikes),
                prop::sample::select(
                    GSM7_BASIC_TABLE
                        .chars()
                        .filter(|c| *c != '\u{1b}')
                        .collect::<Vec<_>>()
                ),
            ],
            0..300,
        )
        .prop_map(|cs| cs.into_iter().collect())
    }

    proptest! {
        #[test]
        fn segmentation_invariants(text in body()) {
            let seg = segment(&text);
            check(&text, &seg);
        }

        #[test]
        fn gsm_segmentation_invariants(text in gsm_body()) {
            let seg = segment(&text);
            prop_assert_eq!(seg.encoding, Encoding::Gsm7);
            check(&text, &seg);
        }

        #[test]
        fn arbitrary_strings_segment(text in any::<String>()) {
            check(&text, &segment(&text));
        }

        #[test]
        fn smart_encoding_of_lookalikes_is_gsm(text in lookalike_body()) {
            let out = smart_encode(&text);
            prop_assert!(is_gsm7(&out), "{:?} -> {:?}", text, out);
            prop_assert_eq!(smart_encode(&out), out.clone());
        }

        #[test]
        fn smart_encoding_is_idempotent_and_keeps_other_chars(text in body()) {
            let out = smart_encode(&text);
            // Idempotent, and characters without a replacement survive in order.
            prop_assert_eq!(smart_encode(&out), out.clone());
            let kept: String = text.chars().filter(|c| smart_replacement(*c).is_none()).collect();
            let survivors: String = out.chars().filter(|c| !is_gsm7_char(*c)).collect();
            let expected: String = kept.chars().filter(|c| !is_gsm7_char(*c)).collect();
            prop_assert_eq!(survivors, expected);
            check(&out, &segment(&out));
        }
    }
}
