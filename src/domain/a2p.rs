//! US A2P 10DLC registration records (messaging v1 Compliance): a Brand registration and the
//! campaign (`Usa2p`) of a Messaging Service, their statuses, the checks Twilio documents for
//! a campaign's text, and the Event Streams events a status change produces.
//! <https://www.twilio.com/docs/messaging/api/brand-registration-resource>,
//! <https://www.twilio.com/docs/messaging/api/usapptoperson-resource>.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// A Brand registration's status (Twilio's `brand_registrations_enum_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrandStatus {
    Pending,
    Approved,
    Failed,
    Suspended,
}

impl BrandStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BrandStatus::Pending => "PENDING",
            BrandStatus::Approved => "APPROVED",
            BrandStatus::Failed => "FAILED",
            BrandStatus::Suspended => "SUSPENDED",
        }
    }

    pub fn parse(raw: &str) -> Option<BrandStatus> {
        Some(match raw.to_ascii_uppercase().as_str() {
            "PENDING" => BrandStatus::Pending,
            "APPROVED" => BrandStatus::Approved,
            "FAILED" => BrandStatus::Failed,
            "SUSPENDED" => BrandStatus::Suspended,
            _ => return None,
        })
    }

    /// What the operator's review may move a brand to from here.
    pub fn may_become(self, next: BrandStatus) -> bool {
        use BrandStatus::*;
        matches!(
            (self, next),
            (Pending, Approved | Failed) | (Approved, Suspended) | (Suspended, Approved)
        )
    }
}

/// A campaign's status (`campaign_status`: Twilio documents PENDING, IN_PROGRESS, VERIFIED,
/// FAILED; SUSPENDED when carriers stop a registered campaign).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CampaignStatus {
    Pending,
    Verified,
    Failed,
    Suspended,
}

impl CampaignStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignStatus::Pending => "PENDING",
            CampaignStatus::Verified => "VERIFIED",
            CampaignStatus::Failed => "FAILED",
            CampaignStatus::Suspended => "SUSPENDED",
        }
    }

    pub fn parse(raw: &str) -> Option<CampaignStatus> {
        Some(match raw.to_ascii_uppercase().as_str() {
            "PENDING" | "IN_PROGRESS" => CampaignStatus::Pending,
            "VERIFIED" | "APPROVED" => CampaignStatus::Verified,
            "FAILED" | "REJECTED" => CampaignStatus::Failed,
            "SUSPENDED" => CampaignStatus::Suspended,
            _ => return None,
        })
    }

    pub fn may_become(self, next: CampaignStatus) -> bool {
        use CampaignStatus::*;
        matches!(
            (self, next),
            (Pending, Verified | Failed) | (Verified, Suspended) | (Suspended, Verified)
        )
    }
}

/// `STANDARD` or `SOLE_PROPRIETOR` (`BrandType`).
pub fn validate_brand_type(raw: &str) -> Result<&'static str> {
    match raw.to_ascii_uppercase().as_str() {
        "STANDARD" => Ok("STANDARD"),
        "SOLE_PROPRIETOR" => Ok("SOLE_PROPRIETOR"),
        _ => Err(Error::invalid_parameter("BrandType", raw)),
    }
}

/// A Trust Hub bundle SID (`BU` + 32 hex). warbler has no Trust Hub: the SID is recorded as
/// given, after a format check.
pub fn validate_bundle_sid(name: &str, raw: &str) -> Result<String> {
    let ok =
        raw.len() == 34 && raw.starts_with("BU") && raw[2..].bytes().all(|b| b.is_ascii_hexdigit());
    if ok {
        Ok(raw.to_string())
    } else {
        Err(Error::invalid_parameter(name, raw))
    }
}

#[derive(Debug, Clone)]
pub struct Brand {
    pub sid: String,
    pub account_sid: String,
    pub customer_profile_bundle_sid: String,
    pub a2p_profile_bundle_sid: String,
    pub brand_type: String,
    pub status: BrandStatus,
    /// The registry's brand ID: assigned when the brand is approved.
    pub tcr_id: Option<String>,
    pub failure_reason: Option<String>,
    /// The error code the operator's rejection gave, if any.
    pub failure_code: Option<i64>,
    pub mock: bool,
    pub skip_automatic_sec_vet: bool,
    pub date_created: i64,
    pub date_updated: i64,
}

/// A use case Twilio's registry offers (`Usecases`).
pub struct Usecase {
    pub code: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub post_approval_required: bool,
}

const fn usecase(
    code: &'static str,
    name: &'static str,
    description: &'static str,
    post_approval_required: bool,
) -> Usecase {
    Usecase {
        code,
        name,
        description,
        post_approval_required,
    }
}

/// The standard campaign use cases (and the sole proprietor's), by registry code.
pub const USECASES: &[Usecase] = &[
    usecase(
        "2FA",
        "Two-Factor authentication (2FA)",
        "One-time passcodes and password resets.",
        false,
    ),
    usecase(
        "ACCOUNT_NOTIFICATION",
        "Account Notification",
        "Reminders, alerts and notices about a customer's account.",
        false,
    ),
    usecase(
        "AGENTS_FRANCHISES",
        "Agents and Franchises",
        "A brand whose agents or offices each need their own local number.",
        true,
    ),
    usecase(
        "CHARITY",
        "Charity",
        "Messages of a registered charity.",
        false,
    ),
    usecase(
        "CUSTOMER_CARE",
        "Customer Care",
        "Support and account management conversations.",
        false,
    ),
    usecase(
        "DELIVERY_NOTIFICATION",
        "Delivery Notification",
        "Where a product or service being delivered is.",
        false,
    ),
    usecase(
        "EMERGENCY",
        "Emergency",
        "Public safety and emergency notices.",
        true,
    ),
    usecase(
        "FRAUD_ALERT",
        "Fraud Alert Messaging",
        "Warnings about possibly fraudulent activity.",
        false,
    ),
    usecase(
        "HIGHER_EDUCATION",
        "Higher Education",
        "Messages of colleges and universities.",
        false,
    ),
    usecase(
        "K12_EDUCATION",
        "K-12 Education",
        "Messages of schools from kindergarten to grade 12.",
        true,
    ),
    usecase(
        "LOW_VOLUME",
        "Low Volume Mixed",
        "A few use cases at low volume.",
        false,
    ),
    usecase(
        "MARKETING",
        "Marketing",
        "Promotions and advertising.",
        false,
    ),
    usecase(
        "MIXED",
        "Mixed",
        "Several use cases on one campaign.",
        false,
    ),
    usecase(
        "POLITICAL",
        "Political",
        "Messages of registered political campaigns.",
        true,
    ),
    usecase(
        "POLLING_VOTING",
        "Polling and voting",
        "Surveys and polls that are not political.",
        false,
    ),
    usecase(
        "PROXY",
        "Proxy",
        "Peer-to-peer messaging through pooled numbers.",
        true,
    ),
    usecase(
        "PUBLIC_SERVICE_ANNOUNCEMENT",
        "Public Service Announcement",
        "Messages that raise awareness of a public matter.",
        false,
    ),
    usecase(
        "SECURITY_ALERT",
        "Security Alert",
        "Notices that a system or account may be compromised.",
        false,
    ),
    usecase(
        "SOCIAL",
        "Social",
        "Messages between a social platform's users.",
        true,
    ),
    usecase(
        "SOLE_PROPRIETOR",
        "Sole Proprietor",
        "A sole proprietor brand's one campaign.",
        false,
    ),
    usecase(
        "SWEEPSTAKE",
        "Sweepstake",
        "Sweepstakes and contests.",
        true,
    ),
    usecase(
        "UCAAS_HIGH",
        "UCaaS High Volume",
        "Communications platforms at high volume.",
        true,
    ),
    usecase(
        "UCAAS_LOW",
        "UCaaS Low Volume",
        "Communications platforms at low volume.",
        true,
    ),
];

/// The use cases a brand of `brand_type` may register.
pub fn usecases_for(brand_type: Option<&str>) -> Vec<&'static Usecase> {
    USECASES
        .iter()
        .filter(|u| match brand_type {
            Some("SOLE_PROPRIETOR") => u.code == "SOLE_PROPRIETOR",
            Some(_) => u.code != "SOLE_PROPRIETOR",
            None => true,
        })
        .collect()
}

/// The submitted text of a campaign (kept as JSON in the row).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CampaignDetails {
    pub description: String,
    pub message_flow: String,
    pub message_samples: Vec<String>,
    pub has_embedded_links: bool,
    pub has_embedded_phone: bool,
    pub subscriber_opt_in: Option<bool>,
    pub age_gated: bool,
    pub direct_lending: bool,
    pub opt_in_message: Option<String>,
    pub opt_out_message: Option<String>,
    pub help_message: Option<String>,
    pub opt_in_keywords: Vec<String>,
    pub opt_out_keywords: Vec<String>,
    pub help_keywords: Vec<String>,
    pub privacy_policy_url: Option<String>,
    pub terms_and_conditions_url: Option<String>,
}

impl CampaignDetails {
    /// The limits Twilio documents for each field.
    pub fn validate(&self) -> Result<()> {
        let length = |name: &str, value: &str, min: usize, max: usize| {
            let n = value.chars().count();
            if n < min || n > max {
                Err(Error::invalid(
                    20001,
                    format!("{name} must be {min} to {max} characters long (it has {n})"),
                ))
            } else {
                Ok(())
            }
        };
        length("Description", &self.description, 40, 4096)?;
        length("MessageFlow", &self.message_flow, 40, 2048)?;
        if !(2..=5).contains(&self.message_samples.len()) {
            return Err(Error::invalid(
                20001,
                format!(
                    "MessageSamples needs 2 to 5 samples (it has {})",
                    self.message_samples.len()
                ),
            ));
        }
        for sample in &self.message_samples {
            length("Each of MessageSamples", sample, 20, 1024)?;
        }
        for (name, message) in [
            ("OptInMessage", &self.opt_in_message),
            ("OptOutMessage", &self.opt_out_message),
            ("HelpMessage", &self.help_message),
        ] {
            if let Some(message) = message {
                length(name, message, 20, 320)?;
            }
        }
        for (name, keywords) in [
            ("OptInKeywords", &self.opt_in_keywords),
            ("OptOutKeywords", &self.opt_out_keywords),
            ("HelpKeywords", &self.help_keywords),
        ] {
            let bad = keywords.iter().find(|k| {
                k.is_empty() || k.chars().count() > 255 || k.chars().any(char::is_whitespace)
            });
            if let Some(bad) = bad {
                return Err(Error::invalid(
                    20001,
                    format!(
                        "{name}: {bad:?} is not a keyword (one word of at most 255 characters)"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// A use case code the registry knows.
pub fn validate_usecase(raw: &str) -> Result<&'static str> {
    USECASES
        .iter()
        .find(|u| u.code.eq_ignore_ascii_case(raw))
        .map(|u| u.code)
        .ok_or_else(|| Error::invalid_parameter("UsAppToPersonUsecase", raw))
}

#[derive(Debug, Clone)]
pub struct Campaign {
    pub sid: String,
    pub account_sid: String,
    pub messaging_service_sid: String,
    pub brand_registration_sid: String,
    pub usecase: String,
    pub status: CampaignStatus,
    /// The registry's campaign ID: assigned when the campaign is verified.
    pub campaign_id: Option<String>,
    pub failure_reason: Option<String>,
    pub failure_code: Option<i64>,
    pub mock: bool,
    pub details: CampaignDetails,
    pub date_created: i64,
    pub date_updated: i64,
}

/// A registry ID (`B…` for brands, `C…` for campaigns): the prefix and six characters of the
/// record's SID, upper-cased, as TCR IDs look.
pub fn registry_id(prefix: char, sid: &str) -> String {
    let tail: String = sid
        .chars()
        .rev()
        .take(6)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("{prefix}{}", tail.to_ascii_uppercase())
}

/// The `errors` of a record the operator rejected (`[]` otherwise).
pub fn review_errors(code: Option<i64>, reason: Option<&str>) -> Value {
    if code.is_none() && reason.is_none() {
        return json!([]);
    }
    json!([{
        "error_code": code,
        "description": reason,
        "url": code.map(|c| format!("https://www.twilio.com/docs/api/errors/{c}")),
        "fields": [],
    }])
}

/// The same, as Event Streams events carry them.
fn event_errors(code: Option<i64>, reason: Option<&str>) -> Value {
    json!([{
        "registrationerrorcode": code,
        "registrationerrordescription": reason,
        "registrationerrorurl": code.map(|c| format!("https://www.twilio.com/docs/api/errors/{c}")),
        "registrationerrorfields": [],
    }])
}

/// Twilio's delivery error for US long-code traffic without an approved campaign.
pub const UNREGISTERED_10DLC: (i64, &str) = (30034, "Message from an Unregistered Number");

/// One Event Streams event (CloudEvents 1.0, JSON) about a registration record.
pub fn event(
    kind: &str,
    schema: &str,
    id: &str,
    source: &str,
    at_micros: i64,
    data: Value,
) -> Value {
    json!({
        "specversion": "1.0",
        "type": format!("com.twilio.messaging.compliance.{kind}"),
        "source": source,
        "id": id,
        "dataschema": format!("https://events-schemas.twilio.com/{schema}"),
        "datacontenttype": "application/json",
        "time": crate::domain::time::iso8601(at_micros),
        "data": data,
    })
}

/// The event a brand's new status produces, if any.
pub fn brand_event(brand: &Brand, id: &str, now: i64) -> Option<Value> {
    let millis = |micros: i64| micros / 1000;
    let mut data = json!({
        "accountsid": brand.account_sid,
        "brandsid": brand.sid,
        "createddate": millis(brand.date_created),
        "updateddate": millis(brand.date_updated),
    });
    let (kind, schema) = match brand.status {
        BrandStatus::Approved => {
            data["brandstatus"] = "registered".into();
            data["externalbrandid"] = brand.tcr_id.clone().into();
            (
                "brand-registration.brand-registered",
                "A2P.BrandRegistered/2",
            )
        }
        BrandStatus::Failed => {
            data["brandstatus"] = "registration_failed".into();
            data["brandregistrationerrors"] =
                event_errors(brand.failure_code, brand.failure_reason.as_deref());
            (
                "brand-registration.brand-failure",
                "A2P.BrandRegistrationFailure/3",
            )
        }
        BrandStatus::Suspended => {
            data["brandstatus"] = "suspended".into();
            data["externalbrandid"] = brand.tcr_id.clone().into();
            ("brand-registration.brand-suspended", "A2P.BrandSuspended/1")
        }
        BrandStatus::Pending => return None,
    };
    Some(event(kind, schema, id, &brand.sid, now, data))
}

/// The event a campaign's new status produces.
pub fn campaign_event(campaign: &Campaign, id: &str, now: i64) -> Value {
    let millis = |micros: i64| micros / 1000;
    let (kind, schema, status) = match campaign.status {
        CampaignStatus::Pending => (
            "campaign-registration.campaign-submitted",
            "A2P.CampaignRegistrationSubmitted/2",
            "pending",
        ),
        CampaignStatus::Verified => (
            "campaign-registration.campaign-approved",
            "A2P.CampaignRegistrationApproved/2",
            "approved",
        ),
        CampaignStatus::Failed => (
            "campaign-registration.campaign-failure",
            "A2P.CampaignRegistrationFailure/2",
            "failed",
        ),
        CampaignStatus::Suspended => (
            "campaign-registration.campaign-suspended",
            "A2P.CampaignRegistrationSuspended/2",
            "suspended",
        ),
    };
    let mut data = json!({
        "accountsid": campaign.account_sid,
        "brandsid": campaign.brand_registration_sid,
        "campaignsid": campaign.sid,
        "messagingservicesid": campaign.messaging_service_sid,
        "externalcampaignid": campaign.campaign_id,
        "a2pusecase": campaign.usecase,
        "createddate": millis(campaign.date_created),
        "updateddate": millis(campaign.date_updated),
        "campaignregistrationstatus": status,
        "timestamp": millis(now),
    });
    if campaign.status == CampaignStatus::Failed {
        data["campaignregistrationerrors"] =
            event_errors(campaign.failure_code, campaign.failure_reason.as_deref());
    }
    event(kind, schema, id, &campaign.sid, now, data)
}

/// Whether A2P 10DLC rules govern a message: a US long code sending to a US number.
pub fn is_us_10dlc(
    sender_is_long_code: bool,
    sender_country: Option<&str>,
    to_country: &str,
) -> bool {
    sender_is_long_code && sender_country == Some("US") && to_country == "US"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn details() -> CampaignDetails {
        CampaignDetails {
            description: "Appointment reminders for the clinic's patients".into(),
            message_flow: "Patients opt in on the booking form by ticking a box".into(),
            message_samples: vec![
                "Your appointment is tomorrow at 10:00".into(),
                "Reply C to confirm your appointment".into(),
            ],
            ..CampaignDetails::default()
        }
    }

    #[test]
    fn a_campaign_needs_the_lengths_twilio_documents() {
        assert!(details().validate().is_ok());
        let mut short = details();
        short.description = "too short".into();
        assert_eq!(short.validate().unwrap_err().code(), 20001);
        let mut one_sample = details();
        one_sample.message_samples.truncate(1);
        assert!(one_sample.validate().is_err());
        let mut six = details();
        six.message_samples = vec!["a sample that is long enough".into(); 6];
        assert!(six.validate().is_err());
        let mut spaced = details();
        spaced.opt_out_keywords = vec!["STOP NOW".into()];
        assert!(spaced.validate().is_err());
    }

    #[test]
    fn reviews_move_statuses_only_forward_or_between_approved_and_suspended() {
        use CampaignStatus::*;
        assert!(Pending.may_become(Verified));
        assert!(Pending.may_become(Failed));
        assert!(Verified.may_become(Suspended));
        assert!(Suspended.may_become(Verified));
        assert!(!Failed.may_become(Verified));
        assert!(!Verified.may_become(Pending));
        assert!(BrandStatus::Pending.may_become(BrandStatus::Approved));
        assert!(!BrandStatus::Failed.may_become(BrandStatus::Approved));
    }

    #[test]
    fn sole_proprietor_brands_get_only_their_use_case() {
        let sole = usecases_for(Some("SOLE_PROPRIETOR"));
        assert_eq!(sole.len(), 1);
        assert_eq!(sole[0].code, "SOLE_PROPRIETOR");
        assert!(usecases_for(Some("STANDARD"))
            .iter()
            .all(|u| u.code != "SOLE_PROPRIETOR"));
        assert_eq!(validate_usecase("marketing").unwrap(), "MARKETING");
        assert!(validate_usecase("SPAM").is_err());
    }

    #[test]
    fn registry_ids_come_from_the_sid() {
        assert_eq!(
            registry_id('B', "BN0000000000000000000000000000abcdef"),
            "BABCDEF"
        );
    }

    #[test]
    fn only_us_long_codes_to_us_numbers_are_10dlc() {
        assert!(is_us_10dlc(true, Some("US"), "US"));
        assert!(!is_us_10dlc(true, Some("US"), "GB"));
        assert!(!is_us_10dlc(false, Some("US"), "US"));
        assert!(!is_us_10dlc(true, Some("CA"), "US"));
    }
}
