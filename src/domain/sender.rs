//! Choosing the sender of a Messaging Service message: a pure function of the service's pool,
//! its settings, the destination and the sticky history. The dispatcher calls it when it sends.
//!
//! Rules, in order:
//! 1. **Sticky sender**: the sender last used for this recipient, while it is still in the pool
//!    and can still reach the recipient.
//! 2. **Short code** of the destination's country.
//! 3. **Alphanumeric sender ID**, where the destination country allows one (not NANP) and the
//!    message is not MMS.
//! 4. **Area-code geomatch** (North American destinations): a long code with the same area code.
//! 5. **Country match**: a long code or toll-free number of the destination's country.
//! 6. **Fallback to long code**: any long code or toll-free number of the pool.
//!
//! Among several candidates of one rule the choice is a stable hash of the recipient, so a
//! recipient keeps getting the same sender even before any history exists, and recipients
//! spread across the pool.

use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SenderKind {
    LongCode,
    TollFree,
    ShortCode,
    Alpha,
}

impl SenderKind {
    /// How usage categories name the kind (`sms-outbound-longcode`…).
    pub fn usage_name(self) -> &'static str {
        match self {
            SenderKind::LongCode => "longcode",
            SenderKind::TollFree => "tollfree",
            SenderKind::ShortCode => "shortcode",
            SenderKind::Alpha => "alphanumeric",
        }
    }
}

/// One sender of a pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender {
    /// The value that goes in `From`: E.164, short code digits, or the alphanumeric ID.
    pub address: String,
    pub kind: SenderKind,
    /// ISO country of a number or short code; `None` for alphanumeric IDs.
    pub iso_country: Option<String>,
    pub sms: bool,
    pub mms: bool,
}

impl Sender {
    fn nanp_area_code(&self) -> Option<&str> {
        match self.kind {
            SenderKind::LongCode | SenderKind::TollFree => self
                .address
                .strip_prefix("+1")
                .filter(|rest| rest.len() == 10)
                .and_then(|rest| rest.get(..3)),
            _ => None,
        }
    }
}

/// The service settings that matter for selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelectionSettings {
    pub sticky_sender: bool,
    pub area_code_geomatch: bool,
    pub mms_converter: bool,
}

/// The destination of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination<'a> {
    /// E.164.
    pub number: &'a str,
    /// ISO country of `number`, when the caller knows it.
    known_country: Option<&'a str>,
    /// ISO country of `number` as libphonenumber places it, on first use: the costliest step
    /// of a selection, which a sticky sender or an area-code match makes unneeded.
    looked_up: std::cell::OnceCell<String>,
}

impl<'a> Destination<'a> {
    /// A destination whose country is looked up if a rule needs it.
    pub const fn new(number: &'a str) -> Destination<'a> {
        Destination {
            number,
            known_country: None,
            looked_up: std::cell::OnceCell::new(),
        }
    }

    /// A destination in a known country.
    pub const fn in_country(number: &'a str, iso_country: &'a str) -> Destination<'a> {
        Destination {
            number,
            known_country: Some(iso_country),
            looked_up: std::cell::OnceCell::new(),
        }
    }

    /// ISO country of the number (empty when it is no number).
    pub fn iso_country(&self) -> &str {
        if let Some(country) = self.known_country {
            return country;
        }
        self.looked_up.get_or_init(|| {
            crate::domain::number::E164::parse(self.number)
                .map(|n| n.iso_country())
                .unwrap_or_default()
        })
    }
}

/// Which rule chose the sender (for logs and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    Sticky,
    ShortCode,
    Alpha,
    AreaCode,
    Country,
    Fallback,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection<'a> {
    pub sender: &'a Sender,
    pub rule: Rule,
    /// True when an MMS goes out as SMS because no MMS-capable sender fits (MMS converter).
    pub converted_to_sms: bool,
}

/// Countries (NANP) where alphanumeric sender IDs are not supported.
const NO_ALPHA_COUNTRIES: &[&str] = &["US", "CA", "PR", "VI", "GU", "AS", "MP"];

pub fn alpha_allowed(iso_country: &str) -> bool {
    !NO_ALPHA_COUNTRIES.contains(&iso_country)
}

/// Picks the sender for one message, or `None` when no sender of the pool can send it.
pub fn choose_sender<'a>(
    pool: &'a [Sender],
    settings: SelectionSettings,
    to: &Destination<'_>,
    sticky_address: Option<&str>,
    is_mms: bool,
) -> Option<Selection<'a>> {
    let pick = |need_mms: bool| -> Option<(&'a Sender, Rule)> {
        let usable = |s: &&'a Sender| s.sms && (!need_mms || s.mms) && can_reach(s, to);
        if settings.sticky_sender {
            if let Some(address) = sticky_address {
                if let Some(sender) = pool.iter().filter(usable).find(|s| s.address == address) {
                    return Some((sender, Rule::Sticky));
                }
            }
        }
        let in_country = |s: &&'a Sender| s.iso_country.as_deref() == Some(to.iso_country());
        let short_codes: Vec<&Sender> = pool
            .iter()
            .filter(usable)
            .filter(|s| s.kind == SenderKind::ShortCode)
            .filter(in_country)
            .collect();
        if let Some(s) = spread(&short_codes, to.number) {
            return Some((s, Rule::ShortCode));
        }
        let alphas: Vec<&Sender> = pool
            .iter()
            .filter(usable)
            .filter(|s| s.kind == SenderKind::Alpha)
            .collect();
        if let Some(s) = spread(&alphas, to.number) {
            return Some((s, Rule::Alpha));
        }
        let numbers: Vec<&Sender> = pool
            .iter()
            .filter(usable)
            .filter(|s| matches!(s.kind, SenderKind::LongCode | SenderKind::TollFree))
            .collect();
        if settings.area_code_geomatch {
            if let Some(area) = nanp_area_code(to.number) {
                let same_area: Vec<&Sender> = numbers
                    .iter()
                    .copied()
                    .filter(|s| s.kind == SenderKind::LongCode && s.nanp_area_code() == Some(area))
                    .collect();
                if let Some(s) = spread(&same_area, to.number) {
                    return Some((s, Rule::AreaCode));
                }
            }
        }
        let same_country: Vec<&Sender> = numbers.iter().copied().filter(in_country).collect();
        // Long codes before toll-free within the country.
        let long_codes: Vec<&Sender> = same_country
            .iter()
            .copied()
            .filter(|s| s.kind == SenderKind::LongCode)
            .collect();
        if let Some(s) = spread(&long_codes, to.number).or_else(|| spread(&same_country, to.number))
        {
            return Some((s, Rule::Country));
        }
        spread(&numbers, to.number).map(|s| (s, Rule::Fallback))
    };
    if let Some((sender, rule)) = pick(is_mms) {
        return Some(Selection {
            sender,
            rule,
            converted_to_sms: false,
        });
    }
    if is_mms && settings.mms_converter {
        return pick(false).map(|(sender, rule)| Selection {
            sender,
            rule,
            converted_to_sms: true,
        });
    }
    None
}

/// Whether a sender can reach the destination at all: short codes only reach their own
/// country; alphanumeric IDs only countries that allow them.
fn can_reach(sender: &Sender, to: &Destination<'_>) -> bool {
    match sender.kind {
        SenderKind::ShortCode => sender.iso_country.as_deref() == Some(to.iso_country()),
        SenderKind::Alpha => alpha_allowed(to.iso_country()),
        SenderKind::LongCode | SenderKind::TollFree => true,
    }
}

fn nanp_area_code(number: &str) -> Option<&str> {
    number
        .strip_prefix("+1")
        .filter(|rest| rest.len() == 10)
        // `get`, not indexing: a text that is not all digits must not panic here.
        .and_then(|rest| rest.get(..3))
}

/// A stable choice among candidates, keyed by the recipient.
fn spread<'a>(candidates: &[&'a Sender], recipient: &str) -> Option<&'a Sender> {
    if candidates.is_empty() {
        return None;
    }
    let digest = Sha256::digest(recipient.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let index = (u64::from_be_bytes(first) % candidates.len() as u64) as usize;
    Some(candidates[index])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_area_code_is_read_only_from_ten_digits_and_never_panics() {
        assert_eq!(nanp_area_code("+14155550100"), Some("415"));
        assert_eq!(nanp_area_code("+1415555010"), None);
        // Ten bytes with a two-byte character across the third: no area code, no panic.
        assert_eq!(nanp_area_code("+141\u{e9}555010"), None);
    }

    fn long(number: &str, country: &str) -> Sender {
        Sender {
            address: number.into(),
            kind: SenderKind::LongCode,
            iso_country: Some(country.into()),
            sms: true,
            mms: true,
        }
    }

    fn toll_free(number: &str) -> Sender {
        Sender {
            kind: SenderKind::TollFree,
            mms: false,
            ..long(number, "US")
        }
    }

    fn short(code: &str, country: &str) -> Sender {
        Sender {
            address: code.into(),
            kind: SenderKind::ShortCode,
            iso_country: Some(country.into()),
            sms: true,
            mms: false,
        }
    }

    fn alpha(name: &str) -> Sender {
        Sender {
            address: name.into(),
            kind: SenderKind::Alpha,
            iso_country: None,
            sms: true,
            mms: false,
        }
    }

    const ALL_ON: SelectionSettings = SelectionSettings {
        sticky_sender: true,
        area_code_geomatch: true,
        mms_converter: true,
    };

    fn us_415() -> Destination<'static> {
        Destination::in_country("+14155550199", "US")
    }

    fn uk() -> Destination<'static> {
        Destination::in_country("+447700900456", "GB")
    }

    fn choose<'a>(
        pool: &'a [Sender],
        to: &Destination<'_>,
        sticky: Option<&str>,
        mms: bool,
    ) -> Option<(&'a str, Rule, bool)> {
        choose_sender(pool, ALL_ON, to, sticky, mms)
            .map(|s| (s.sender.address.as_str(), s.rule, s.converted_to_sms))
    }

    #[test]
    fn sticky_sender_wins_while_it_can_still_send() {
        let pool = [
            long("+12125550100", "US"),
            long("+14155550100", "US"),
            short("55555", "US"),
        ];
        assert_eq!(
            choose(&pool, &us_415(), Some("+12125550100"), false),
            Some(("+12125550100", Rule::Sticky, false))
        );
        // A sticky sender no longer in the pool is ignored.
        assert_eq!(
            choose(&pool, &us_415(), Some("+13125550100"), false)
                .unwrap()
                .1,
            Rule::ShortCode
        );
        // Sticky sender off: the rules decide.
        let off = SelectionSettings {
            sticky_sender: false,
            ..ALL_ON
        };
        let chosen = choose_sender(&pool, off, &us_415(), Some("+12125550100"), false).unwrap();
        assert_eq!(chosen.rule, Rule::ShortCode);
    }

    #[test]
    fn a_short_code_of_the_destination_country_comes_first() {
        let pool = [
            long("+14155550100", "US"),
            short("55555", "US"),
            short("60001", "GB"),
        ];
        assert_eq!(
            choose(&pool, &us_415(), None, false),
            Some(("55555", Rule::ShortCode, false))
        );
        assert_eq!(
            choose(&pool, &uk(), None, false),
            Some(("60001", Rule::ShortCode, false))
        );
    }

    #[test]
    fn alphanumeric_ids_only_where_allowed_and_never_for_mms() {
        let pool = [alpha("FalconAir"), long("+14155550100", "US")];
        assert_eq!(
            choose(&pool, &uk(), None, false),
            Some(("FalconAir", Rule::Alpha, false))
        );
        assert_eq!(
            choose(&pool, &us_415(), None, false).unwrap().0,
            "+14155550100"
        );
        // MMS to the UK: the alpha ID cannot carry it, the US long code can.
        assert_eq!(
            choose(&pool, &uk(), None, true),
            Some(("+14155550100", Rule::Fallback, false))
        );
    }

    #[test]
    fn area_code_geomatch_prefers_the_recipients_area_code() {
        let pool = [
            long("+12125550100", "US"),
            long("+13125550100", "US"),
            long("+14155550100", "US"),
            long("+14155550101", "US"),
        ];
        let chosen = choose(&pool, &us_415(), None, false).unwrap();
        assert_eq!(chosen.1, Rule::AreaCode);
        assert!(chosen.0.starts_with("+1415"));
        // Turned off: any US long code, by country.
        let off = SelectionSettings {
            area_code_geomatch: false,
            ..ALL_ON
        };
        assert_eq!(
            choose_sender(&pool, off, &us_415(), None, false)
                .unwrap()
                .rule,
            Rule::Country
        );
        // No number in the area code: country match.
        let to_seattle = Destination::in_country("+12065550123", "US");
        assert_eq!(
            choose(&pool, &to_seattle, None, false).unwrap().1,
            Rule::Country
        );
    }

    #[test]
    fn country_match_then_fallback_to_any_long_code() {
        let pool = [
            long("+14155550100", "US"),
            long("+447700900100", "GB"),
            toll_free("+18005550100"),
        ];
        assert_eq!(
            choose(&pool, &uk(), None, false),
            Some(("+447700900100", Rule::Country, false))
        );
        let to_france = Destination::in_country("+33612345678", "FR");
        let chosen = choose(&pool, &to_france, None, false).unwrap();
        assert_eq!(chosen.1, Rule::Fallback);
        // Long codes before toll-free in the destination's country.
        let pool = [toll_free("+18005550100"), long("+12125550100", "US")];
        let to_seattle = Destination::in_country("+12065550123", "US");
        assert_eq!(
            choose(&pool, &to_seattle, None, false).unwrap().0,
            "+12125550100"
        );
        // Toll-free when it is the only US number.
        let pool = [toll_free("+18005550100")];
        assert_eq!(
            choose(&pool, &to_seattle, None, false),
            Some(("+18005550100", Rule::Country, false))
        );
    }

    #[test]
    fn mms_needs_an_mms_sender_or_the_converter() {
        let pool = [toll_free("+18005550100"), short("55555", "US")];
        // No MMS-capable sender: converted to SMS when the converter is on…
        assert_eq!(
            choose(&pool, &us_415(), None, true),
            Some(("55555", Rule::ShortCode, true))
        );
        // …and no sender at all when it is off.
        let off = SelectionSettings {
            mms_converter: false,
            ..ALL_ON
        };
        assert_eq!(choose_sender(&pool, off, &us_415(), None, true), None);
    }

    #[test]
    fn an_empty_or_unusable_pool_chooses_nothing() {
        assert_eq!(choose(&[], &us_415(), None, false), None);
        let pool = [short("60001", "GB"), alpha("FalconAir")];
        assert_eq!(choose(&pool, &us_415(), None, false), None);
        let no_sms = [Sender {
            sms: false,
            ..long("+14155550100", "US")
        }];
        assert_eq!(choose(&no_sms, &us_415(), None, false), None);
    }

    #[test]
    fn the_choice_is_stable_per_recipient_and_spreads_across_the_pool() {
        let pool: Vec<Sender> = (0..10)
            .map(|i| long(&format!("+1212555010{i}"), "US"))
            .collect();
        let to = Destination::in_country("+13125550123", "US");
        let first = choose(&pool, &to, None, false).unwrap().0;
        assert_eq!(choose(&pool, &to, None, false).unwrap().0, first);
        let used: std::collections::HashSet<&str> = (0..100)
            .map(|i| {
                let number = format!("+1312555{i:04}");
                let to = Destination::in_country(&number, "US");
                choose(&pool, &to, None, false).unwrap().0
            })
            .collect();
        assert!(
            used.len() >= 6,
            "recipients spread over the pool: {}",
            used.len()
        );
    }

    #[test]
    fn a_destination_looks_its_country_up_when_not_told() {
        assert_eq!(Destination::new("+447700900456").iso_country(), "GB");
        assert_eq!(Destination::new("+16045550123").iso_country(), "CA");
        assert_eq!(Destination::new("not a number").iso_country(), "");
        // Looked up, the country decides as a given one does: a GB short code reaches a UK
        // number and a US one does not.
        let pool = [short("60001", "GB")];
        let uk = Destination::new("+447700900456");
        assert_eq!(
            choose(&pool, &uk, None, false),
            Some(("60001", Rule::ShortCode, false))
        );
        assert_eq!(
            choose(&pool, &Destination::new("+14155550199"), None, false),
            None
        );
    }
}
