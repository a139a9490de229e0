//! Test credentials, as Twilio has them: every account has a test account SID and test auth
//! token. Requests made with them never reach a carrier, never charge, and never store a
//! message or a number: creating a message and buying a number answer as Twilio's documented
//! magic numbers say, and every other operation is refused (20003).

use crate::error::{Error, Result};

/// An account's test credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestCredentials {
    /// The live account they belong to.
    pub account_sid: String,
    /// `AC` + 32 hex, distinct from every account SID.
    pub test_account_sid: String,
    /// 32 hex.
    pub test_auth_token: String,
    pub date_created: i64,
    pub date_updated: i64,
}

/// The `From` that test credentials may send from.
pub const VALID_FROM: &str = "+15005550006";

/// What Twilio answers a message created with test credentials, by its `From` and `To`
/// (checked after the usual parameter validation): `Ok` means it is accepted, not sent.
pub fn check_message(from: &str, to: &str) -> Result<()> {
    match from {
        VALID_FROM => {}
        "+15005550001" => {
            return Err(Error::invalid(
                21212,
                format!("The 'From' number {from} is not a valid phone number, shortcode, or alphanumeric sender ID."),
            ))
        }
        "+15005550008" => {
            return Err(Error::invalid(
                21611,
                "This 'From' number has exceeded the maximum number of queued messages",
            ))
        }
        // +15005550007 and any other number: not one of the (test) account's numbers.
        _ => {
            return Err(Error::invalid(
                21606,
                format!("The 'From' phone number provided ({from}) is not a valid message-capable Twilio phone number for this account."),
            ))
        }
    }
    match to {
        "+15005550001" => Err(Error::invalid(
            21211,
            format!("The 'To' number {to} is not a valid phone number."),
        )),
        "+15005550002" => Err(Error::invalid(
            21612,
            format!("The 'To' phone number: {to}, is not currently reachable using the 'From' phone number: {from} via SMS."),
        )),
        "+15005550003" => Err(Error::invalid(
            21408,
            format!("Permission to send an SMS has not been enabled for the region indicated by the 'To' number: {to}."),
        )),
        "+15005550004" => Err(Error::invalid(
            21610,
            "Attempt to send to unsubscribed recipient",
        )),
        "+15005550009" => Err(Error::invalid(
            21614,
            format!("'To' number {to} is not a valid mobile number"),
        )),
        _ => Ok(()),
    }
}

/// The number a purchase with test credentials gets, by its `PhoneNumber` or `AreaCode`
/// (Twilio's magic values); nothing else can be bought with them.
pub fn purchased_number(phone_number: Option<&str>, area_code: Option<&str>) -> Result<String> {
    match (phone_number, area_code) {
        (Some(VALID_FROM), _) | (None, Some("500")) => Ok(VALID_FROM.to_string()),
        (Some(number @ "+15005550001"), _) => Err(Error::invalid(
            21421,
            format!("PhoneNumber {number:?} is not a valid phone number"),
        )),
        (Some(number), _) => Err(Error::invalid(
            21422,
            format!("PhoneNumber {number} is not available"),
        )),
        (None, Some(area_code)) => Err(Error::invalid(
            21452,
            format!("No phone numbers found in area code {area_code}"),
        )),
        (None, None) => Err(Error::invalid(
            20001,
            "A 'PhoneNumber' or 'AreaCode' is required to purchase a number",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code<T>(result: Result<T>) -> Option<u32> {
        result.err().map(|err| err.code())
    }

    #[test]
    fn messages_answer_as_twilios_magic_numbers() {
        let to = "+14155550199";
        assert_eq!(code(check_message(VALID_FROM, to)), None);
        assert_eq!(code(check_message("+15005550001", to)), Some(21212));
        assert_eq!(code(check_message("+15005550007", to)), Some(21606));
        assert_eq!(code(check_message("+15005550008", to)), Some(21611));
        assert_eq!(code(check_message("+14155550100", to)), Some(21606));
        for (to, expected) in [
            ("+15005550001", 21211),
            ("+15005550002", 21612),
            ("+15005550003", 21408),
            ("+15005550004", 21610),
            ("+15005550009", 21614),
        ] {
            assert_eq!(code(check_message(VALID_FROM, to)), Some(expected), "{to}");
        }
    }

    #[test]
    fn purchases_answer_as_twilios_magic_numbers() {
        assert_eq!(
            purchased_number(Some(VALID_FROM), None).unwrap(),
            VALID_FROM
        );
        assert_eq!(purchased_number(None, Some("500")).unwrap(), VALID_FROM);
        assert_eq!(
            code(purchased_number(Some("+15005550000"), None)),
            Some(21422)
        );
        assert_eq!(
            code(purchased_number(Some("+15005550001"), None)),
            Some(21421)
        );
        assert_eq!(
            code(purchased_number(Some("+14155550100"), None)),
            Some(21422)
        );
        assert_eq!(code(purchased_number(None, Some("533"))), Some(21452));
        assert_eq!(code(purchased_number(None, None)), Some(20001));
    }
}
