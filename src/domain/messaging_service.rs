//! Messaging Services: a pool of senders with shared settings. Defaults and validation ranges
//! follow Twilio's spec and documentation.

use crate::error::{Error, Result};

pub const USECASES: &[&str] = &[
    "notifications",
    "marketing",
    "verification",
    "discussion",
    "poll",
    "undeclared",
];

pub const SCAN_MESSAGE_CONTENT: &[&str] = &["inherit", "enable", "disable"];

/// Most numbers and short codes one service may hold (Twilio's default limit, error 21714).
pub const MAX_POOL_SIZE: i64 = 400;

/// The name of the service every new account gets.
pub const DEFAULT_SERVICE_NAME: &str = "Default Messaging Service";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessagingService {
    pub sid: String,
    pub account_sid: String,
    pub friendly_name: String,
    pub inbound_request_url: Option<String>,
    pub inbound_method: String,
    pub fallback_url: Option<String>,
    pub fallback_method: String,
    pub status_callback: Option<String>,
    pub sticky_sender: bool,
    pub mms_converter: bool,
    pub smart_encoding: bool,
    pub scan_message_content: String,
    pub fallback_to_long_code: bool,
    pub area_code_geomatch: bool,
    pub validity_period: i64,
    pub synchronous_validation: bool,
    pub usecase: String,
    pub use_inbound_webhook_on_number: bool,
    pub date_created: i64,
    pub date_updated: i64,
}

impl MessagingService {
    /// A service with Twilio's defaults.
    pub fn new(sid: String, account_sid: String, friendly_name: String, now: i64) -> Self {
        MessagingService {
            sid,
            account_sid,
            friendly_name,
            inbound_request_url: None,
            inbound_method: "POST".into(),
            fallback_url: None,
            fallback_method: "POST".into(),
            status_callback: None,
            sticky_sender: true,
            mms_converter: true,
            smart_encoding: true,
            scan_message_content: "inherit".into(),
            fallback_to_long_code: false,
            area_code_geomatch: true,
            validity_period: 36000,
            synchronous_validation: true,
            usecase: "undeclared".into(),
            use_inbound_webhook_on_number: false,
            date_created: now,
            date_updated: now,
        }
    }
}

/// A validated change to a service's settings; `None` leaves a field as it is, and for the
/// URLs `Some(None)` clears it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ServiceChanges {
    pub friendly_name: Option<String>,
    pub inbound_request_url: Option<Option<String>>,
    pub inbound_method: Option<String>,
    pub fallback_url: Option<Option<String>>,
    pub fallback_method: Option<String>,
    pub status_callback: Option<Option<String>>,
    pub sticky_sender: Option<bool>,
    pub mms_converter: Option<bool>,
    pub smart_encoding: Option<bool>,
    pub scan_message_content: Option<String>,
    pub fallback_to_long_code: Option<bool>,
    pub area_code_geomatch: Option<bool>,
    pub validity_period: Option<i64>,
    pub synchronous_validation: Option<bool>,
    pub usecase: Option<String>,
    pub use_inbound_webhook_on_number: Option<bool>,
}

impl ServiceChanges {
    pub fn apply(self, service: &mut MessagingService) {
        macro_rules! set {
            ($($field:ident),*) => {
                $(if let Some(value) = self.$field { service.$field = value; })*
            };
        }
        set!(
            friendly_name,
            inbound_request_url,
            inbound_method,
            fallback_url,
            fallback_method,
            status_callback,
            sticky_sender,
            mms_converter,
            smart_encoding,
            scan_message_content,
            fallback_to_long_code,
            area_code_geomatch,
            validity_period,
            synchronous_validation,
            usecase,
            use_inbound_webhook_on_number
        );
    }
}

pub fn validate_service_name(name: &str) -> Result<String> {
    if name.is_empty() || name.chars().count() > 64 {
        return Err(Error::invalid(
            21658,
            "FriendlyName must be 1 to 64 characters long",
        ));
    }
    Ok(name.to_string())
}

/// `ValidityPeriod`: whole seconds from 1 to 36,000 (Twilio 90007 for a service).
pub fn validate_validity_period(raw: &str) -> Result<i64> {
    match raw.parse::<i64>() {
        Ok(v) if (1..=36000).contains(&v) => Ok(v),
        _ => Err(Error::invalid(
            90007,
            format!("ValidityPeriod must be an integer from 1 to 36000, not {raw:?}"),
        )),
    }
}

pub fn validate_usecase(raw: &str) -> Result<String> {
    if USECASES.contains(&raw) {
        Ok(raw.to_string())
    } else {
        Err(Error::invalid(
            21713,
            format!(
                "Usecase must be one of {}, not {raw:?}",
                USECASES.join(", ")
            ),
        ))
    }
}

pub fn validate_scan_message_content(raw: &str) -> Result<String> {
    if SCAN_MESSAGE_CONTENT.contains(&raw) {
        Ok(raw.to_string())
    } else {
        Err(Error::invalid_parameter("ScanMessageContent", raw))
    }
}

/// An alphanumeric sender ID: 1 to 11 of `A-Z a-z 0-9 space + - _ &`, not only digits.
pub fn validate_alpha_sender(raw: &str) -> Result<String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, ' ' | '+' | '-' | '_' | '&');
    let valid = (1..=11).contains(&raw.chars().count())
        && raw.chars().all(allowed)
        && raw.chars().any(|c| c.is_ascii_alphabetic());
    if valid {
        Ok(raw.to_string())
    } else {
        Err(Error::invalid(
            20001,
            format!("AlphaSender {raw:?} must be 1 to 11 letters, digits, spaces or + - _ &, with at least one letter"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_services_carry_twilios_defaults() {
        let s = MessagingService::new(
            "MG1".into(),
            "AC1".into(),
            "falconFlightNotifications".into(),
            7,
        );
        assert!(s.sticky_sender && s.mms_converter && s.smart_encoding && s.area_code_geomatch);
        assert!(!s.fallback_to_long_code && !s.use_inbound_webhook_on_number);
        assert_eq!(s.validity_period, 36000);
        assert_eq!(
            (s.inbound_method.as_str(), s.usecase.as_str()),
            ("POST", "undeclared")
        );
        assert_eq!(s.scan_message_content, "inherit");
    }

    #[test]
    fn changes_apply_only_what_was_given() {
        let mut s = MessagingService::new("MG1".into(), "AC1".into(), "a".into(), 7);
        ServiceChanges {
            sticky_sender: Some(false),
            status_callback: Some(Some("https://x.example.com/cb".into())),
            ..ServiceChanges::default()
        }
        .apply(&mut s);
        assert!(!s.sticky_sender);
        assert_eq!(
            s.status_callback.as_deref(),
            Some("https://x.example.com/cb")
        );
        assert_eq!(s.friendly_name, "a");
        ServiceChanges {
            status_callback: Some(None),
            ..ServiceChanges::default()
        }
        .apply(&mut s);
        assert_eq!(s.status_callback, None);
    }

    #[test]
    fn ranges_and_enumerations() {
        assert_eq!(validate_validity_period("1").unwrap(), 1);
        assert_eq!(validate_validity_period("36000").unwrap(), 36000);
        for bad in ["0", "36001", "-5", "ten", "1.5"] {
            assert_eq!(
                validate_validity_period(bad).unwrap_err().code(),
                90007,
                "{bad}"
            );
        }
        assert!(validate_usecase("marketing").is_ok());
        assert_eq!(validate_usecase("spam").unwrap_err().code(), 21713);
        assert!(validate_scan_message_content("enable").is_ok());
        assert!(validate_scan_message_content("maybe").is_err());
        assert!(validate_service_name("").is_err());
        assert!(validate_service_name(&"x".repeat(65)).is_err());
    }

    #[test]
    fn alpha_sender_ids() {
        for good in ["FalconAir", "Falcon Air", "F-1_&+", "A", "Falcon12345"] {
            assert!(validate_alpha_sender(good).is_ok(), "{good}");
        }
        for bad in ["", "FalconAirlines", "12345", "Falcon!", "Fälcon"] {
            assert!(validate_alpha_sender(bad).is_err(), "{bad}");
        }
    }
}
