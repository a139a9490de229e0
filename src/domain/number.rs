//! Phone numbers: E.164 parsing (libphonenumber metadata through the `phonenumber` crate), the
//! operator's inventory entries and their CSV import format, Twilio's `Contains` search
//! patterns, and the rules for moving a number between accounts.

use crate::domain::account::{Account, AccountStatus};
use crate::error::{Error, Result};
use phonenumber::metadata::DATABASE;

/// A phone number in E.164 form (`+14155550100`), checked to be a possible number. Checking
/// needs only the calling code and the national length; libphonenumber's full parse (region
/// detection runs many regular expressions) waits until a country or national format is asked
/// for, which sending a message never does.
#[derive(Debug, Clone)]
pub struct E164 {
    e164: String,
    code: u16,
    parsed: std::sync::OnceLock<Option<phonenumber::PhoneNumber>>,
}

impl PartialEq for E164 {
    fn eq(&self, other: &Self) -> bool {
        self.e164 == other.e164
    }
}

impl Eq for E164 {}

impl std::hash::Hash for E164 {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.e164.hash(state);
    }
}

impl E164 {
    /// Parses strict E.164. A number that libphonenumber's (possibly stale) data does not
    /// know as valid is still accepted when its length is possible for its country code:
    /// operators hold new ranges before the metadata does.
    pub fn parse(value: &str) -> Option<E164> {
        let digits = value.strip_prefix('+')?;
        if !(8..=15).contains(&digits.len())
            || !digits.bytes().all(|b| b.is_ascii_digit())
            || digits.starts_with('0')
        {
            return None;
        }
        // Calling codes are prefix-free: at most one of the first 1, 2 or 3 digits is one.
        let (code, candidates, national_length) = (1..=3).find_map(|width| {
            let code: u16 = digits[..width].parse().ok()?;
            let candidates = DATABASE.by_code(&code)?;
            Some((code, candidates, (digits.len() - width) as u16))
        })?;
        let possible = candidates.iter().any(|meta| {
            let d = meta.descriptors();
            // The general descriptor's lengths are often empty; each type lists its own.
            [
                Some(d.general()),
                d.fixed_line(),
                d.mobile(),
                d.toll_free(),
                d.premium_rate(),
                d.shared_cost(),
                d.personal_number(),
                d.voip(),
                d.pager(),
                d.uan(),
            ]
            .into_iter()
            .flatten()
            .any(|descriptor| descriptor.possible_length().contains(&national_length))
        });
        if !possible {
            return None;
        }
        Some(E164 {
            e164: value.to_string(),
            code,
            parsed: std::sync::OnceLock::new(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.e164
    }

    fn parsed(&self) -> Option<&phonenumber::PhoneNumber> {
        self.parsed
            .get_or_init(|| phonenumber::parse(None, &self.e164).ok())
            .as_ref()
    }

    /// ISO 3166 alpha-2 country, e.g. `US` (the main country of its calling code when
    /// libphonenumber cannot place it).
    pub fn iso_country(&self) -> String {
        if let Some(id) = self.parsed().and_then(|number| number.country().id()) {
            return format!("{id:?}");
        }
        let candidates = DATABASE.by_code(&self.code).unwrap_or_default();
        candidates
            .iter()
            .find(|m| m.is_main_country_for_code())
            .or(candidates.first())
            .map(|m| m.id().to_string())
            .unwrap_or_default()
    }

    /// The national format Twilio uses as a default friendly name, e.g. `(415) 555-0100`
    /// (the national digits when libphonenumber cannot format it).
    pub fn national_format(&self) -> String {
        match self.parsed() {
            Some(number) => number
                .format()
                .mode(phonenumber::Mode::National)
                .to_string(),
            None => self.e164[1 + self.code.to_string().len()..].to_string(),
        }
    }

    /// The NANP area code (first three national digits) of a `+1` number.
    pub fn nanp_area_code(&self) -> Option<&str> {
        self.e164.strip_prefix("+1").and_then(|rest| rest.get(..3))
    }
}

/// Twilio's default friendly name for a number: its national format, e.g. `(415) 555-0100`
/// (a short code or unparsable value is returned as is).
pub fn display_name(phone_number: &str) -> String {
    E164::parse(phone_number)
        .map(|n| n.national_format())
        .unwrap_or_else(|| phone_number.to_string())
}

/// The kinds of numbers an operator holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberType {
    Local,
    Mobile,
    TollFree,
    ShortCode,
}

impl NumberType {
    /// Reads the inventory spelling (`toll-free`; `tollfree` is accepted too).
    pub fn parse(value: &str) -> Option<NumberType> {
        match value.trim().to_ascii_lowercase().as_str() {
            "local" => Some(Self::Local),
            "mobile" => Some(Self::Mobile),
            "toll-free" | "tollfree" => Some(Self::TollFree),
            "short-code" | "shortcode" => Some(Self::ShortCode),
            _ => None,
        }
    }

    /// Stored form, and the inventory CSV spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Mobile => "mobile",
            Self::TollFree => "toll-free",
            Self::ShortCode => "short-code",
        }
    }

    /// The `type` Twilio prints on an IncomingPhoneNumber.
    pub const fn twilio_name(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Mobile => "mobile",
            Self::TollFree => "tollfree",
            Self::ShortCode => "shortcode",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities {
    pub sms: bool,
    pub mms: bool,
    pub voice: bool,
}

/// One number of the operator's inventory (what its carriers lease to it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryNumber {
    /// E.164 for phone numbers; the digits for short codes.
    pub phone_number: String,
    pub iso_country: String,
    pub number_type: NumberType,
    pub capabilities: Capabilities,
    pub locality: Option<String>,
    pub region: Option<String>,
    pub postal_code: Option<String>,
    /// The carrier route that serves this number.
    pub route: Option<String>,
}

/// An inventory CSV row that could not be used, with its 1-based line number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportError {
    pub line: u64,
    pub message: String,
}

impl std::fmt::Display for ImportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// The inventory CSV header, in order.
pub const CSV_COLUMNS: [&str; 10] = [
    "phone_number",
    "country",
    "type",
    "sms",
    "mms",
    "voice",
    "locality",
    "region",
    "postal_code",
    "route",
];

/// Parses a whole inventory CSV (with the `CSV_COLUMNS` header). Any bad row rejects the file:
/// the caller imports all rows or none.
pub fn parse_inventory_csv(data: &[u8]) -> std::result::Result<Vec<InventoryNumber>, ImportError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(false)
        .from_reader(data);
    let headers = reader.headers().map_err(|e| ImportError {
        line: 1,
        message: format!("unreadable header: {e}"),
    })?;
    let found: Vec<String> = headers.iter().map(|h| h.to_ascii_lowercase()).collect();
    if found != CSV_COLUMNS {
        return Err(ImportError {
            line: 1,
            message: format!("the header must be {}", CSV_COLUMNS.join(",")),
        });
    }
    let mut numbers = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for record in reader.records() {
        let record = record.map_err(|e| ImportError {
            line: e.position().map(|p| p.line()).unwrap_or(0),
            message: e.to_string(),
        })?;
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let fail = |message: String| ImportError { line, message };
        // No field takes one, and PostgreSQL cannot store one (the import would fail with 500).
        if record.iter().any(|field| field.contains('\0')) {
            return Err(fail("a field holds a NUL character".into()));
        }
        let field = |i: usize| record.get(i).unwrap_or_default();
        let optional = |i: usize| Some(field(i).to_string()).filter(|v| !v.is_empty());
        let flag = |i: usize, name: &str| match field(i).to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" | "y" => Ok(true),
            "false" | "no" | "0" | "n" | "" => Ok(false),
            other => Err(fail(format!("{name} must be true or false, not {other:?}"))),
        };
        let number_type = NumberType::parse(field(2)).ok_or_else(|| {
            fail(format!(
                "type must be local, mobile, toll-free or short-code, not {:?}",
                field(2)
            ))
        })?;
        let country = field(1).to_ascii_uppercase();
        if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(fail(format!(
                "country must be an ISO 3166 alpha-2 code, not {:?}",
                field(1)
            )));
        }
        let phone_number = if number_type == NumberType::ShortCode {
            let code = field(0);
            if !(3..=8).contains(&code.len()) || !code.bytes().all(|b| b.is_ascii_digit()) {
                return Err(fail(format!(
                    "{code:?} is not a short code (3 to 8 digits)"
                )));
            }
            code.to_string()
        } else {
            let parsed = E164::parse(field(0)).ok_or_else(|| {
                fail(format!(
                    "{:?} is not a possible E.164 phone number",
                    field(0)
                ))
            })?;
            if parsed.iso_country() != country
                && !(parsed.as_str().starts_with("+1") && is_nanp_country(&country))
            {
                return Err(fail(format!(
                    "{} belongs to {}, not {country}",
                    parsed.as_str(),
                    parsed.iso_country()
                )));
            }
            parsed.as_str().to_string()
        };
        if !seen.insert(phone_number.clone()) {
            return Err(fail(format!("{phone_number} appears twice in the file")));
        }
        numbers.push(InventoryNumber {
            phone_number,
            iso_country: country,
            number_type,
            capabilities: Capabilities {
                sms: flag(3, "sms")?,
                mms: flag(4, "mms")?,
                voice: flag(5, "voice")?,
            },
            locality: optional(6),
            region: optional(7),
            postal_code: optional(8),
            route: optional(9),
        });
    }
    Ok(numbers)
}

/// Countries sharing country code 1, whose numbers libphonenumber may place in a neighbour.
fn is_nanp_country(country: &str) -> bool {
    matches!(
        country,
        "US" | "CA"
            | "PR"
            | "VI"
            | "GU"
            | "AS"
            | "MP"
            | "AG"
            | "AI"
            | "BB"
            | "BM"
            | "BS"
            | "DM"
            | "DO"
            | "GD"
            | "JM"
            | "KN"
            | "KY"
            | "LC"
            | "MS"
            | "SX"
            | "TC"
            | "TT"
            | "VC"
            | "VG"
    )
}

/// Maps a letter to its telephone keypad digit (`ABC` → 2 … `WXYZ` → 9).
fn keypad_digit(c: char) -> Option<char> {
    let digit = match c.to_ascii_uppercase() {
        'A'..='C' => '2',
        'D'..='F' => '3',
        'G'..='I' => '4',
        'J'..='L' => '5',
        'M'..='O' => '6',
        'P'..='S' => '7',
        'T'..='V' => '8',
        'W'..='Z' => '9',
        _ => return None,
    };
    Some(digit)
}

/// Translates Twilio's `Contains` pattern into a SQL `LIKE` pattern over the E.164 string.
/// Digits and letters (mapped to keypad digits) match themselves, `*` one digit, `%` any run;
/// a leading `+` anchors at the start of the number (country code included), a trailing `$`
/// at its end; otherwise the pattern matches anywhere.
pub fn contains_to_like(pattern: &str) -> Result<String> {
    let invalid = || {
        Error::invalid(
            20001,
            format!("Invalid Contains pattern {pattern:?}: use 2 to 16 digits, letters, '*' or '%', optionally starting with '+' or ending with '$'"),
        )
    };
    if !(2..=16).contains(&pattern.chars().count()) {
        return Err(invalid());
    }
    let (anchored_start, body) = match pattern.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, pattern),
    };
    let (anchored_end, body) = match body.strip_suffix('$') {
        Some(rest) => (true, rest),
        None => (false, body),
    };
    let mut like = String::from(if anchored_start { "+" } else { "%" });
    let mut literal_count = 0;
    let mut previous_meta = false;
    for c in body.chars() {
        let meta = matches!(c, '*' | '%');
        if meta && previous_meta {
            return Err(invalid());
        }
        previous_meta = meta;
        match c {
            '0'..='9' => {
                literal_count += 1;
                like.push(c)
            }
            '*' => like.push('_'),
            '%' => like.push('%'),
            c if c.is_ascii_alphabetic() => {
                literal_count += 1;
                like.push(keypad_digit(c).ok_or_else(invalid)?)
            }
            _ => return Err(invalid()),
        }
    }
    if literal_count < 2 {
        return Err(invalid());
    }
    if !anchored_end {
        like.push('%');
    }
    Ok(like)
}

/// Checks a number transfer (`AccountSid` on an IncomingPhoneNumber update) as Twilio does:
/// only a main account's own credentials move numbers, between itself and its subaccounts or
/// between two of its subaccounts, and only to an active account.
pub fn check_transfer(
    caller: &Account,
    caller_used_auth_token: bool,
    owner: &Account,
    target: &Account,
) -> Result<()> {
    if !caller.is_main() || !caller_used_auth_token {
        return Err(Error::invalid(
            21474,
            "Phone numbers can only be transferred with the main account's credentials",
        ));
    }
    if !caller.is_self_or_parent_of(owner) || !caller.is_self_or_parent_of(target) {
        return Err(Error::invalid(
            21473,
            "The AccountSid provided is not the parent or a subaccount of the number's account",
        ));
    }
    if target.status != AccountStatus::Active {
        return Err(Error::invalid(
            21472,
            "The AccountSid you specified is not an active account",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164_parsing_accepts_possible_numbers_and_finds_their_country() {
        let sf = E164::parse("+14155550100").unwrap();
        assert_eq!(sf.iso_country(), "US");
        assert_eq!(sf.national_format(), "(415) 555-0100");
        assert_eq!(sf.nanp_area_code(), Some("415"));
        assert_eq!(E164::parse("+16045550123").unwrap().iso_country(), "CA");
        // Ofcom's drama range is not "valid" in libphonenumber, but it is a possible GB mobile.
        let gb = E164::parse("+447700900123").unwrap();
        assert_eq!(gb.iso_country(), "GB");
        assert_eq!(gb.nanp_area_code(), None);
        assert_eq!(E164::parse("+33612345678").unwrap().iso_country(), "FR");
        // Two- and three-digit calling codes; Italy keeps its leading zero.
        let rome = E164::parse("+390612345678").unwrap();
        assert_eq!(rome.iso_country(), "IT");
        assert_eq!(rome.national_format(), "06 1234 5678");
        assert_eq!(E164::parse("+35312345678").unwrap().iso_country(), "IE");
        // A length possible for the code but not for any of its countries' number types.
        assert!(E164::parse("+44770090012345").is_none());
        assert!(E164::parse("+33612345").is_none());
    }

    #[test]
    fn e164_parsing_rejects_malformed_and_impossible_numbers() {
        for bad in [
            "4155550100",
            "+1415555",
            "+999123456789",
            "+1 415 555 0100",
            "+",
            "",
            "+0123456789",
            "+1415555010012345",
        ] {
            assert!(E164::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn contains_patterns_translate_to_like() {
        assert_eq!(contains_to_like("555").unwrap(), "%555%");
        assert_eq!(contains_to_like("STORM").unwrap(), "%78676%");
        assert_eq!(contains_to_like("+1415*").unwrap(), "+1415_%");
        assert_eq!(contains_to_like("0100$").unwrap(), "%0100");
        assert_eq!(contains_to_like("55%01").unwrap(), "%55%01%");
        assert_eq!(contains_to_like("+1415555010$").unwrap(), "+1415555010");
    }

    #[test]
    fn contains_patterns_are_validated() {
        for bad in ["5", "**", "5*%5", "+*$", "55-01", "12345678901234567"] {
            assert_eq!(contains_to_like(bad).unwrap_err().code(), 20001, "{bad}");
        }
    }

    const HEADER: &str =
        "phone_number,country,type,sms,mms,voice,locality,region,postal_code,route\n";

    #[test]
    fn a_good_inventory_file_parses() {
        let csv = format!(
            "{HEADER}+14155550100,US,local,true,true,true,San Francisco,CA,94105,sim\n+18005550100,US,toll-free,yes,no,yes,,,,\n55555,US,short-code,true,false,false,,,,smpp-a\n+447700900123,GB,mobile,1,0,0,London,,,\n"
        );
        let numbers = parse_inventory_csv(csv.as_bytes()).unwrap();
        assert_eq!(numbers.len(), 4);
        assert_eq!(numbers[0].locality.as_deref(), Some("San Francisco"));
        assert_eq!(numbers[0].route.as_deref(), Some("sim"));
        assert_eq!(numbers[1].number_type, NumberType::TollFree);
        assert_eq!(
            numbers[1].capabilities,
            Capabilities {
                sms: true,
                mms: false,
                voice: true
            }
        );
        assert_eq!(numbers[1].locality, None);
        assert_eq!(numbers[2].phone_number, "55555");
        assert_eq!(numbers[3].iso_country, "GB");
    }

    #[test]
    fn a_bad_row_names_its_line() {
        let cases = [
            ("+1415555,US,local,true,true,true,,,,\n", 2, "not a possible"),
            ("+14155550100,US,landline,true,true,true,,,,\n", 2, "type must be"),
            ("+14155550100,US,local,maybe,true,true,,,,\n", 2, "sms must be"),
            ("+14155550100,FR,local,true,true,true,,,,\n", 2, "belongs to US"),
            ("+14155550100,US,local,true,true,true,,,,\n+14155550100,US,local,true,true,true,,,,\n", 3, "twice"),
            ("+14155550100,US,local,true,true,true,,,,\n+14155550101,US,local\n", 3, ""),
            // Found by the inventory_csv fuzz target.
            ("+14155550100,US,local,true,true,true,Bou\0on,,,\n", 2, "NUL"),
        ];
        for (rows, line, needle) in cases {
            let err = parse_inventory_csv(format!("{HEADER}{rows}").as_bytes()).unwrap_err();
            assert_eq!(err.line, line, "{rows}: {err}");
            assert!(err.message.contains(needle), "{err}");
        }
        let err = parse_inventory_csv(b"number,country\n+14155550100,US\n").unwrap_err();
        assert_eq!(err.line, 1);
    }

    fn account(sid: &str, owner: Option<&str>, status: AccountStatus) -> Account {
        Account {
            sid: sid.into(),
            owner_account_sid: owner.map(str::to_string),
            friendly_name: sid.into(),
            status,
            auth_token: "t".into(),
            date_created: 0,
            date_updated: 0,
            sandbox: false,
        }
    }

    #[test]
    fn transfers_stay_inside_one_family_and_need_the_main_token() {
        use AccountStatus::*;
        let main = account("ACmain", None, Active);
        let a = account("ACa", Some("ACmain"), Active);
        let b = account("ACb", Some("ACmain"), Active);
        let suspended = account("ACs", Some("ACmain"), Suspended);
        let stranger = account("ACx", Some("ACother"), Active);
        assert!(check_transfer(&main, true, &main, &a).is_ok());
        assert!(check_transfer(&main, true, &a, &main).is_ok());
        assert!(check_transfer(&main, true, &a, &b).is_ok());
        assert_eq!(check_transfer(&a, true, &a, &b).unwrap_err().code(), 21474);
        assert_eq!(
            check_transfer(&main, false, &main, &a).unwrap_err().code(),
            21474
        );
        assert_eq!(
            check_transfer(&main, true, &main, &stranger)
                .unwrap_err()
                .code(),
            21473
        );
        assert_eq!(
            check_transfer(&main, true, &main, &suspended)
                .unwrap_err()
                .code(),
            21472
        );
    }
}

/// How a configurable IncomingPhoneNumber field is validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// Free text up to 64 characters.
    Name,
    /// An absolute http(s) URL, or empty to clear it.
    Url,
    /// `GET` or `POST`.
    Method,
    Bool,
    /// One of these exact values.
    OneOf(&'static [&'static str]),
    /// A SID with this two-letter prefix, or empty to clear it.
    Sid(&'static str),
    /// Free text (e.g. the API version).
    Text,
}

/// A field of an IncomingPhoneNumber the owner configures: its API parameter, its column
/// (also its JSON name), how it is validated, and its value at purchase.
#[derive(Debug, Clone, Copy)]
pub struct NumberField {
    pub param: &'static str,
    pub column: &'static str,
    pub kind: FieldKind,
    pub default: Option<&'static str>,
}

const fn field(
    param: &'static str,
    column: &'static str,
    kind: FieldKind,
    default: Option<&'static str>,
) -> NumberField {
    NumberField {
        param,
        column,
        kind,
        default,
    }
}

/// Every configurable field. `friendly_name` defaults to the national format at purchase.
pub const NUMBER_FIELDS: &[NumberField] = &[
    field("FriendlyName", "friendly_name", FieldKind::Name, None),
    field(
        "ApiVersion",
        "api_version",
        FieldKind::Text,
        Some("2010-04-01"),
    ),
    field("SmsUrl", "sms_url", FieldKind::Url, None),
    field("SmsMethod", "sms_method", FieldKind::Method, Some("POST")),
    field("SmsFallbackUrl", "sms_fallback_url", FieldKind::Url, None),
    field(
        "SmsFallbackMethod",
        "sms_fallback_method",
        FieldKind::Method,
        Some("POST"),
    ),
    field(
        "SmsApplicationSid",
        "sms_application_sid",
        FieldKind::Sid("AP"),
        None,
    ),
    field("StatusCallback", "status_callback", FieldKind::Url, None),
    field(
        "StatusCallbackMethod",
        "status_callback_method",
        FieldKind::Method,
        Some("POST"),
    ),
    field("VoiceUrl", "voice_url", FieldKind::Url, None),
    field(
        "VoiceMethod",
        "voice_method",
        FieldKind::Method,
        Some("POST"),
    ),
    field(
        "VoiceFallbackUrl",
        "voice_fallback_url",
        FieldKind::Url,
        None,
    ),
    field(
        "VoiceFallbackMethod",
        "voice_fallback_method",
        FieldKind::Method,
        Some("POST"),
    ),
    field(
        "VoiceCallerIdLookup",
        "voice_caller_id_lookup",
        FieldKind::Bool,
        Some("false"),
    ),
    field(
        "VoiceApplicationSid",
        "voice_application_sid",
        FieldKind::Sid("AP"),
        None,
    ),
    field(
        "VoiceReceiveMode",
        "voice_receive_mode",
        FieldKind::OneOf(&["voice", "fax"]),
        Some("voice"),
    ),
    field("TrunkSid", "trunk_sid", FieldKind::Sid("TK"), None),
    field(
        "EmergencyStatus",
        "emergency_status",
        FieldKind::OneOf(&["Active", "Inactive"]),
        Some("Inactive"),
    ),
    field(
        "EmergencyAddressSid",
        "emergency_address_sid",
        FieldKind::Sid("AD"),
        None,
    ),
    field("IdentitySid", "identity_sid", FieldKind::Sid("RI"), None),
    field("AddressSid", "address_sid", FieldKind::Sid("AD"), None),
    field("BundleSid", "bundle_sid", FieldKind::Sid("BU"), None),
];

/// Validates and normalises one field value. `None` means "clear it".
pub fn validate_field(field: &NumberField, raw: &str) -> Result<Option<String>> {
    let bad = |code: u32, what: &str| {
        Err(Error::invalid(
            code,
            format!("{} is not {what}: {raw:?}", field.param),
        ))
    };
    match field.kind {
        FieldKind::Name => {
            if raw.chars().count() > 64 {
                return Err(Error::invalid(
                    21658,
                    format!("{} must be at most 64 characters long", field.param),
                ));
            }
            Ok(Some(raw.to_string()).filter(|v| !v.is_empty()))
        }
        FieldKind::Text => Ok(Some(raw.to_string()).filter(|v| !v.is_empty())),
        FieldKind::Url => {
            if raw.is_empty() {
                return Ok(None);
            }
            match url::Url::parse(raw) {
                Ok(u)
                    if matches!(u.scheme(), "http" | "https")
                        && u.host_str().is_some()
                        && raw.len() <= 4000 =>
                {
                    Ok(Some(raw.to_string()))
                }
                _ => bad(21402, "a valid http(s) URL"),
            }
        }
        FieldKind::Method => match raw.to_ascii_uppercase().as_str() {
            m @ ("GET" | "POST") => Ok(Some(m.to_string())),
            _ => bad(20001, "GET or POST"),
        },
        FieldKind::Bool => match raw.to_ascii_lowercase().as_str() {
            b @ ("true" | "false") => Ok(Some(b.to_string())),
            _ => bad(20001, "true or false"),
        },
        FieldKind::OneOf(values) => match values.iter().find(|v| **v == raw) {
            Some(v) => Ok(Some(v.to_string())),
            None => bad(20001, &format!("one of {}", values.join(", "))),
        },
        FieldKind::Sid(prefix) => {
            if raw.is_empty() {
                return Ok(None);
            }
            let ok = raw.len() == 34
                && raw.starts_with(prefix)
                && raw[2..].bytes().all(|b| b.is_ascii_hexdigit());
            if ok {
                Ok(Some(raw.to_string()))
            } else {
                bad(20001, &format!("a {prefix} SID"))
            }
        }
    }
}

/// A webhook URL: absolute http(s) with a host, at most 4,000 characters (Twilio 21402);
/// empty clears it (`None`).
pub fn validate_url(param: &str, raw: &str) -> Result<Option<String>> {
    if raw.is_empty() {
        return Ok(None);
    }
    match url::Url::parse(raw) {
        Ok(u)
            if matches!(u.scheme(), "http" | "https")
                && u.host_str().is_some()
                && raw.len() <= 4000 =>
        {
            Ok(Some(raw.to_string()))
        }
        _ => Err(Error::invalid(
            21402,
            format!("{param} is not a valid http(s) URL: {raw:?}"),
        )),
    }
}

/// A webhook method: `GET` or `POST`, any case.
pub fn validate_method(param: &str, raw: &str) -> Result<String> {
    match raw.to_ascii_uppercase().as_str() {
        m @ ("GET" | "POST") => Ok(m.to_string()),
        _ => Err(Error::invalid_parameter(param, raw)),
    }
}

/// A number held by an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingNumber {
    pub sid: String,
    pub account_sid: String,
    pub inventory: InventoryNumber,
    /// Configured values by column name (absent = unset).
    pub config: std::collections::BTreeMap<&'static str, String>,
    pub date_created: i64,
    pub date_updated: i64,
}

impl IncomingNumber {
    pub fn get(&self, column: &str) -> Option<&str> {
        self.config.get(column).map(String::as_str)
    }
}

#[cfg(test)]
mod field_tests {
    use super::*;

    fn by_param(param: &str) -> &'static NumberField {
        NUMBER_FIELDS.iter().find(|f| f.param == param).unwrap()
    }

    #[test]
    fn urls_must_be_absolute_http() {
        let url = by_param("SmsUrl");
        assert_eq!(
            validate_field(url, "https://demo.twilio.com/welcome/sms/reply")
                .unwrap()
                .as_deref(),
            Some("https://demo.twilio.com/welcome/sms/reply")
        );
        assert_eq!(validate_field(url, "").unwrap(), None);
        for bad in ["ftp://x/y", "/relative", "not a url", "https://"] {
            assert_eq!(validate_field(url, bad).unwrap_err().code(), 21402, "{bad}");
        }
    }

    #[test]
    fn methods_booleans_enums_and_sids() {
        assert_eq!(
            validate_field(by_param("SmsMethod"), "get")
                .unwrap()
                .as_deref(),
            Some("GET")
        );
        assert!(validate_field(by_param("SmsMethod"), "PUT").is_err());
        assert_eq!(
            validate_field(by_param("VoiceCallerIdLookup"), "True")
                .unwrap()
                .as_deref(),
            Some("true")
        );
        assert!(validate_field(by_param("VoiceReceiveMode"), "sms").is_err());
        assert!(validate_field(by_param("TrunkSid"), "TK0123456789abcdef0123456789abcdef").is_ok());
        assert!(
            validate_field(by_param("TrunkSid"), "AP0123456789abcdef0123456789abcdef").is_err()
        );
        assert_eq!(
            validate_field(by_param("FriendlyName"), &"x".repeat(65))
                .unwrap_err()
                .code(),
            21658
        );
    }
}
