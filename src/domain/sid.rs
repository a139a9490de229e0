//! Twilio resource identifiers: a two-letter type prefix followed by 32 lowercase hex digits.

use rand::RngCore;
use std::fmt;

/// The resource types warbler issues SIDs for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SidKind {
    Account,
    ApiKey,
    PhoneNumber,
    ShortCode,
    MessagingService,
    AlphaSender,
    Message,
    MmsMessage,
    Media,
    Alert,
    OptOut,
    UsageTrigger,
    Content,
    /// warbler's own: an alarm and its firings.
    Alarm,
    AlarmFiring,
    /// US A2P 10DLC: a Brand registration and a service's campaign.
    BrandRegistration,
    UsAppToPerson,
}

impl SidKind {
    pub const fn prefix(self) -> &'static str {
        match self {
            SidKind::Account => "AC",
            SidKind::ApiKey => "SK",
            SidKind::PhoneNumber => "PN",
            SidKind::ShortCode => "SC",
            SidKind::MessagingService => "MG",
            SidKind::AlphaSender => "AI",
            SidKind::Message => "SM",
            SidKind::MmsMessage => "MM",
            SidKind::Media => "ME",
            SidKind::Alert => "NO",
            SidKind::OptOut => "OO",
            SidKind::UsageTrigger => "UT",
            SidKind::Content => "HX",
            SidKind::Alarm => "AL",
            SidKind::AlarmFiring => "AF",
            SidKind::BrandRegistration => "BN",
            SidKind::UsAppToPerson => "QE",
        }
    }
}

/// A fresh SID of the given kind (see `ordered_hex32`).
pub fn generate(kind: SidKind) -> String {
    format!("{}{}", kind.prefix(), ordered_hex32())
}

/// 32 lowercase hex digits: the time in milliseconds (48 bits), then 80 random bits. Ids made
/// later sort after earlier ones, so new rows land at the end of every index keyed by them
/// instead of on a random page each: a batch of messages dirties a few pages, not one per
/// message, which is what the database writes (and syncs) at each commit. Clients still see
/// an opaque `XX` + 32 hex digits. Not for secrets: `random_hex32` is.
pub fn ordered_hex32() -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or(0);
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    rand::thread_rng().fill_bytes(&mut bytes[6..]);
    hex::encode(bytes)
}

/// 32 lowercase hex digits of OS randomness: SID bodies and auth tokens.
pub fn random_hex32() -> String {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// True when `value` is `prefix` followed by exactly 32 hex digits (either case, as the spec's
/// `^XX[0-9a-fA-F]{32}$` patterns allow).
pub fn is_valid(kind: SidKind, value: &str) -> bool {
    value.len() == 34
        && value.starts_with(kind.prefix())
        && value[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// A validated SID, for places that want the type to say so.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Sid(String);

impl Sid {
    pub fn parse(kind: SidKind, value: &str) -> Option<Sid> {
        is_valid(kind, value).then(|| Sid(value.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_sids_have_prefix_and_32_lowercase_hex() {
        let sid = generate(SidKind::Account);
        assert!(sid.starts_with("AC"));
        assert_eq!(sid.len(), 34);
        assert!(sid[2..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert!(is_valid(SidKind::Account, &sid));
        assert_ne!(sid, generate(SidKind::Account));
    }

    #[test]
    fn later_sids_sort_after_earlier_ones_and_keep_80_random_bits() {
        let first = generate(SidKind::Message);
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = generate(SidKind::Message);
        assert!(first < second, "{first} then {second}");
        // Made in the same millisecond, two SIDs share the time and differ in the rest.
        let (a, b) = (ordered_hex32(), ordered_hex32());
        assert_ne!(a[12..], b[12..]);
    }

    #[test]
    fn validation_rejects_wrong_prefix_length_and_digits() {
        let good = "SK0123456789abcdef0123456789ABCDEF";
        assert!(is_valid(SidKind::ApiKey, good));
        assert!(!is_valid(SidKind::Account, good));
        assert!(!is_valid(SidKind::ApiKey, &good[..33]));
        assert!(!is_valid(
            SidKind::ApiKey,
            "SK0123456789abcdef0123456789ABCDEG"
        ));
        assert!(!is_valid(
            SidKind::ApiKey,
            "SKé123456789abcdef0123456789ABCDE"
        ));
    }
}
