//! Alarms (a warbler extension; Twilio sets alarms in its console): a rule on delivery errors
//! over a sliding window, and when it crosses and clears. Pure rules: what a rule may say, and
//! what a window's counts mean for it.

/// Shortest and longest window (minutes): 5 minutes to a day.
pub const MIN_WINDOW_MINUTES: i64 = 5;
pub const MAX_WINDOW_MINUTES: i64 = 24 * 60;

/// E-mail addresses one alarm may notify.
pub const MAX_EMAILS: usize = 10;

/// The width of one outcome counter bucket (microseconds).
pub const BUCKET: i64 = 60_000_000;

/// The bucket (start of its minute) an outcome at `at` is counted in.
pub const fn bucket_of(at: i64) -> i64 {
    at - at.rem_euclid(BUCKET)
}

/// What the threshold counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThresholdType {
    /// Matching errors in the window.
    Count,
    /// Matching errors as a percentage of the messages that ended in the window.
    Percentage,
}

impl ThresholdType {
    pub fn parse(raw: &str) -> Option<ThresholdType> {
        match raw {
            "count" => Some(ThresholdType::Count),
            "percentage" => Some(ThresholdType::Percentage),
            _ => None,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            ThresholdType::Count => "count",
            ThresholdType::Percentage => "percentage",
        }
    }
}

/// Where an alarm stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlarmState {
    Ok,
    Firing,
}

impl AlarmState {
    pub fn parse(raw: &str) -> AlarmState {
        if raw == "firing" {
            AlarmState::Firing
        } else {
            AlarmState::Ok
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            AlarmState::Ok => "ok",
            AlarmState::Firing => "firing",
        }
    }
}

/// An alarm as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Alarm {
    pub sid: String,
    pub account_sid: String,
    pub friendly_name: Option<String>,
    /// `None`: any error.
    pub error_code: Option<i64>,
    pub scope_sid: String,
    pub threshold_type: ThresholdType,
    /// A whole count, or a percentage (0 < p ≤ 100).
    pub threshold: f64,
    pub window_minutes: i64,
    pub webhook_url: Option<String>,
    pub webhook_method: String,
    pub emails: Vec<String>,
    pub state: AlarmState,
    pub date_state_changed: Option<i64>,
    pub date_created: i64,
    pub date_updated: i64,
}

/// A window's counts for one alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WindowCounts {
    /// Messages that ended with a matching error.
    pub errors: i64,
    /// Messages that ended (with or without an error).
    pub messages: i64,
}

impl Alarm {
    /// The measured value: the error count, or their percentage of the messages.
    pub fn value(&self, counts: WindowCounts) -> f64 {
        match self.threshold_type {
            ThresholdType::Count => counts.errors as f64,
            ThresholdType::Percentage if counts.messages == 0 => 0.0,
            ThresholdType::Percentage => counts.errors as f64 * 100.0 / counts.messages as f64,
        }
    }

    /// The state the counts call for: firing from the threshold up (and at least one error).
    pub fn state_for(&self, counts: WindowCounts) -> AlarmState {
        if counts.errors > 0 && self.value(counts) >= self.threshold {
            AlarmState::Firing
        } else {
            AlarmState::Ok
        }
    }

    /// Whether an outcome with `error_code` (`0`: none) counts as one of its errors.
    pub fn matches(&self, error_code: i64) -> bool {
        match self.error_code {
            Some(code) => code == error_code,
            None => error_code != 0,
        }
    }
}

/// Checks a threshold of `kind`: a whole count of at least 1, or a percentage in (0, 100].
pub fn parse_threshold(kind: ThresholdType, raw: &str) -> Option<f64> {
    let value: f64 = raw.trim().parse().ok()?;
    let ok = match kind {
        ThresholdType::Count => value >= 1.0 && value.fract() == 0.0 && value <= 1e9,
        ThresholdType::Percentage => value > 0.0 && value <= 100.0,
    };
    ok.then_some(value)
}

/// A threshold as the API shows it (`3`, `12.5`).
pub fn format_threshold(value: f64) -> String {
    if value.fract() == 0.0 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

/// Checks an e-mail address loosely: one `@` with something on each side, no spaces or
/// commas (the list is stored comma-separated), at most 254 characters.
pub fn valid_email(address: &str) -> bool {
    let Some((local, domain)) = address.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && address.len() <= 254
        && !address
            .chars()
            .any(|c| c.is_whitespace() || c == ',' || c.is_control())
}

/// One crossing of an alarm's threshold, up (`firing`) or down (`cleared`).
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmFiring {
    pub sid: String,
    pub alarm_sid: String,
    pub account_sid: String,
    /// `firing` or `cleared`.
    pub state: String,
    pub counts: WindowCounts,
    /// The measured value as shown (`3`, `42.5`).
    pub value: String,
    /// `none`, `pending`, `sent` or `failed`.
    pub email_status: String,
    pub email_attempts: i64,
    pub email_error: Option<String>,
    pub date_created: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alarm(kind: ThresholdType, threshold: f64, code: Option<i64>) -> Alarm {
        Alarm {
            sid: "AL1".into(),
            account_sid: "AC1".into(),
            friendly_name: None,
            error_code: code,
            scope_sid: "AC1".into(),
            threshold_type: kind,
            threshold,
            window_minutes: 5,
            webhook_url: None,
            webhook_method: "POST".into(),
            emails: Vec::new(),
            state: AlarmState::Ok,
            date_state_changed: None,
            date_created: 0,
            date_updated: 0,
        }
    }

    #[test]
    fn a_count_fires_from_its_threshold_up() {
        let a = alarm(ThresholdType::Count, 3.0, Some(30003));
        let counts = |errors| WindowCounts {
            errors,
            messages: 10,
        };
        assert_eq!(a.state_for(counts(2)), AlarmState::Ok);
        assert_eq!(a.state_for(counts(3)), AlarmState::Firing);
        assert!(a.matches(30003));
        assert!(!a.matches(30005));
        assert!(!a.matches(0));
    }

    #[test]
    fn a_percentage_is_of_the_messages_that_ended() {
        let a = alarm(ThresholdType::Percentage, 25.0, None);
        let firing = WindowCounts {
            errors: 1,
            messages: 4,
        };
        assert_eq!(a.value(firing), 25.0);
        assert_eq!(a.state_for(firing), AlarmState::Firing);
        let quiet = WindowCounts {
            errors: 1,
            messages: 5,
        };
        assert_eq!(a.state_for(quiet), AlarmState::Ok);
        assert_eq!(a.state_for(WindowCounts::default()), AlarmState::Ok);
        assert!(a.matches(30008) && !a.matches(0));
    }

    #[test]
    fn thresholds_windows_and_addresses_are_checked() {
        assert_eq!(parse_threshold(ThresholdType::Count, "3"), Some(3.0));
        assert_eq!(parse_threshold(ThresholdType::Count, "0"), None);
        assert_eq!(parse_threshold(ThresholdType::Count, "2.5"), None);
        assert_eq!(
            parse_threshold(ThresholdType::Percentage, "12.5"),
            Some(12.5)
        );
        assert_eq!(parse_threshold(ThresholdType::Percentage, "101"), None);
        assert_eq!(parse_threshold(ThresholdType::Percentage, "x"), None);
        assert_eq!(format_threshold(3.0), "3");
        assert_eq!(format_threshold(12.5), "12.5");
        assert!(valid_email("ops@example.com"));
        assert!(!valid_email("ops@localhost"));
        assert!(!valid_email("a b@example.com"));
        assert!(!valid_email("a,b@example.com"));
        assert_eq!(bucket_of(BUCKET * 7 + 5), BUCKET * 7);
    }
}
