//! Usage and billing rules: the usage categories warbler records and reports, money in
//! hundred-thousandths of the price unit (Twilio prices have five decimals), number rental
//! prices, and the periods of the Usage Records API.

use crate::error::{Error, Result};
use time::{Date, Duration, Month};

/// A price in hundred-thousandths of the price unit (`0.00790` → 790).
pub type Money = i64;

/// Parses a decimal price such as `0.0079` or `-1.5` (at most five decimals).
pub fn parse_money(raw: &str) -> Option<Money> {
    let raw = raw.trim();
    let (negative, digits) = match raw.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, raw.strip_prefix('+').unwrap_or(raw)),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty()
        || fraction.len() > 5
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let value = whole
        .parse::<i64>()
        .ok()?
        .checked_mul(100_000)?
        .checked_add(format!("{fraction:0<5}").parse::<i64>().ok()?)?;
    Some(if negative { -value } else { value })
}

/// The largest amount one credit may add or take (a billion of the price unit).
pub const MAX_CREDIT: Money = 1_000_000_000 * 100_000;

/// The largest total a family's credits may reach, either way (a trillion of the price unit):
/// balances stay far inside `i64`, so no sum of them overflows.
pub const MAX_CREDITED: Money = 1_000_000_000_000 * 100_000;

/// Formats money with five decimals (`790` → `0.00790`).
pub fn format_money(value: Money) -> String {
    let sign = if value < 0 { "-" } else { "" };
    let abs = value.unsigned_abs();
    format!("{sign}{}.{:05}", abs / 100_000, abs % 100_000)
}

/// Monthly rental prices by number type, decimal strings in the price unit.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct RentalPrices {
    pub local: String,
    pub mobile: String,
    pub toll_free: String,
    pub short_code: String,
}

impl Default for RentalPrices {
    fn default() -> Self {
        RentalPrices {
            local: "1.15".into(),
            mobile: "1.15".into(),
            toll_free: "2.15".into(),
            short_code: "1000.00".into(),
        }
    }
}

impl RentalPrices {
    /// Checks every price parses (at start-up: a typo must not make numbers free).
    pub fn validate(&self) -> std::result::Result<(), String> {
        for (name, raw) in [
            ("local", &self.local),
            ("mobile", &self.mobile),
            ("toll_free", &self.toll_free),
            ("short_code", &self.short_code),
        ] {
            if parse_money(raw).is_none_or(|v| v < 0) {
                return Err(format!("rental_prices.{name} {raw:?} is not a price"));
            }
        }
        Ok(())
    }

    /// The usage category and monthly price of a number type (`local`, `mobile`,
    /// `toll-free`, `short-code`).
    pub fn for_type(&self, number_type: &str) -> (&'static str, Money) {
        let (category, raw) = match number_type {
            "mobile" => ("phonenumbers-mobile", &self.mobile),
            "toll-free" => ("phonenumbers-tollfree", &self.toll_free),
            "short-code" => ("shortcodes", &self.short_code),
            _ => ("phonenumbers-local", &self.local),
        };
        (category, parse_money(raw).unwrap_or(0))
    }
}

/// Days between a rental's monthly charges.
pub const RENTAL_PERIOD_DAYS: i64 = 30;

/// The recorded (finest) category of a message: `sms-outbound-longcode`, `mms-inbound-tollfree`…
/// `sender_kind` is `longcode`, `tollfree`, `shortcode` or `alphanumeric`.
pub fn message_category(is_mms: bool, inbound: bool, sender_kind: &str) -> String {
    format!(
        "{}-{}-{}",
        if is_mms { "mms" } else { "sms" },
        if inbound { "inbound" } else { "outbound" },
        sender_kind
    )
}

/// The categories the Usage Records API reports, with their descriptions and units
/// (count unit, usage unit).
pub const REPORTED: &[(&str, &str, &str, &str)] = &[
    ("totalprice", "Total Price", "", "usd"),
    ("sms", "SMS", "messages", "segments"),
    ("sms-inbound", "Inbound SMS", "messages", "segments"),
    (
        "sms-inbound-longcode",
        "Inbound Longcode SMS",
        "messages",
        "segments",
    ),
    (
        "sms-inbound-shortcode",
        "Short Code Inbound SMS",
        "messages",
        "segments",
    ),
    (
        "sms-inbound-tollfree",
        "Inbound Toll Free SMS",
        "messages",
        "segments",
    ),
    ("sms-outbound", "Outbound SMS", "messages", "segments"),
    (
        "sms-outbound-longcode",
        "Outbound Longcode SMS",
        "messages",
        "segments",
    ),
    (
        "sms-outbound-shortcode",
        "Short Code Outbound SMS",
        "messages",
        "segments",
    ),
    (
        "sms-outbound-tollfree",
        "Outbound Toll Free SMS",
        "messages",
        "segments",
    ),
    (
        "sms-outbound-alphanumeric",
        "Outbound Alphanumeric SMS",
        "messages",
        "segments",
    ),
    ("mms", "MMS", "messages", "messages"),
    ("mms-inbound", "Inbound MMS", "messages", "messages"),
    (
        "mms-inbound-longcode",
        "Inbound Longcode MMS",
        "messages",
        "messages",
    ),
    (
        "mms-inbound-shortcode",
        "Short Code Inbound MMS",
        "messages",
        "messages",
    ),
    (
        "mms-inbound-tollfree",
        "Inbound Toll Free MMS",
        "messages",
        "messages",
    ),
    ("mms-outbound", "Outbound MMS", "messages", "messages"),
    (
        "mms-outbound-longcode",
        "Outbound Longcode MMS",
        "messages",
        "messages",
    ),
    (
        "mms-outbound-shortcode",
        "Short Code Outbound MMS",
        "messages",
        "messages",
    ),
    (
        "mms-outbound-tollfree",
        "Outbound Toll Free MMS",
        "messages",
        "messages",
    ),
    ("phonenumbers", "Phone Numbers", "numbers", "numbers"),
    (
        "phonenumbers-local",
        "Local Phone Numbers",
        "numbers",
        "numbers",
    ),
    (
        "phonenumbers-mobile",
        "Mobile Phone Numbers",
        "numbers",
        "numbers",
    ),
    (
        "phonenumbers-tollfree",
        "Toll Free Phone Numbers",
        "numbers",
        "numbers",
    ),
    ("shortcodes", "Short Codes", "shortcodes", "shortcodes"),
];

/// Whether the reported category `reported` includes the recorded category `leaf`.
pub fn includes(reported: &str, leaf: &str) -> bool {
    match reported {
        "totalprice" => true,
        "sms" | "mms" | "phonenumbers" => leaf.starts_with(&format!("{reported}-")),
        "sms-inbound" | "sms-outbound" | "mms-inbound" | "mms-outbound" => {
            leaf.starts_with(&format!("{reported}-"))
        }
        _ => reported == leaf,
    }
}

/// The sub-resources of `/Usage/Records`, and the plain list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// `/Usage/Records`: one record per category over the whole range.
    Range,
    AllTime,
    Daily,
    Monthly,
    Yearly,
    Today,
    Yesterday,
    ThisMonth,
    LastMonth,
}

impl Period {
    pub fn parse(name: &str) -> Option<Period> {
        Some(match name {
            "AllTime" => Period::AllTime,
            "Daily" => Period::Daily,
            "Monthly" => Period::Monthly,
            "Yearly" => Period::Yearly,
            "Today" => Period::Today,
            "Yesterday" => Period::Yesterday,
            "ThisMonth" => Period::ThisMonth,
            "LastMonth" => Period::LastMonth,
            _ => return None,
        })
    }

    /// The fixed range of the single-period sub-resources, given today.
    pub fn fixed_range(self, today: Date) -> Option<(Date, Date)> {
        let month_start = today.replace_day(1).ok()?;
        Some(match self {
            Period::Today => (today, today),
            Period::Yesterday => {
                let day = today.previous_day()?;
                (day, day)
            }
            Period::ThisMonth => (month_start, today),
            Period::LastMonth => {
                let end = month_start.previous_day()?;
                (end.replace_day(1).ok()?, end)
            }
            _ => return None,
        })
    }

    /// Splits `[start, end]` into this period's buckets.
    pub fn buckets(self, start: Date, end: Date) -> Vec<(Date, Date)> {
        let mut out = Vec::new();
        let mut from = start;
        while from <= end && out.len() < 100_000 {
            let to = match self {
                Period::Daily => from,
                Period::Monthly => last_of_month(from),
                Period::Yearly => {
                    Date::from_calendar_date(from.year(), Month::December, 31).unwrap_or(end)
                }
                _ => end,
            }
            .min(end);
            out.push((from, to));
            match to.next_day() {
                Some(next) => from = next,
                None => break,
            }
        }
        out
    }
}

fn last_of_month(day: Date) -> Date {
    let first_next = match day.month() {
        Month::December => Date::from_calendar_date(day.year() + 1, Month::January, 1),
        month => Date::from_calendar_date(day.year(), month.next(), 1),
    };
    first_next
        .ok()
        .and_then(|d| d.previous_day())
        .unwrap_or(day)
}

/// Parses `StartDate` / `EndDate`: `YYYY-MM-DD`, or an offset from today such as `-30days`
/// or `+1days`. Records are daily sums, so a date-time (`2026-12-01T21:24:33Z`, as an SDK may
/// send a date object) selects the UTC day it falls in.
pub fn parse_usage_date(name: &str, raw: &str, today: Date) -> Result<Date> {
    let bad = || Error::invalid_parameter(name, raw);
    if let Some(days) = raw.strip_suffix("days") {
        let offset: i64 = days.parse().map_err(|_| bad())?;
        if offset.abs() > 36_500 {
            return Err(bad());
        }
        return today.checked_add(Duration::days(offset)).ok_or_else(bad);
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(instant) =
        time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339)
    {
        // Checked: late on 9999-12-31 with a negative offset is past the last UTC day.
        return instant
            .checked_to_offset(time::UtcOffset::UTC)
            .map(|utc| utc.date())
            .ok_or_else(bad);
    }
    Date::parse(raw, &format).map_err(|_| bad())
}

/// What a Usage Trigger compares: the record's `count`, `usage` or `price`.
pub fn parse_trigger_by(raw: &str) -> Option<&'static str> {
    ["count", "usage", "price"].into_iter().find(|v| *v == raw)
}

/// How often a trigger may fire: once per `daily`, `monthly`, `yearly` period, or once
/// ever (`alltime`, or no `Recurring`).
pub fn parse_recurring(raw: &str) -> Option<&'static str> {
    ["daily", "monthly", "yearly", "alltime"]
        .into_iter()
        .find(|v| *v == raw)
}

/// The period a trigger is evaluated over at `today`: its key (the trigger fires once per
/// key) and its first day.
pub fn trigger_period(recurring: Option<&str>, today: Date) -> (String, Option<Date>) {
    match recurring {
        Some("daily") => (day_string(today), Some(today)),
        Some("monthly") => (
            day_string(today)[..7].to_string(),
            today.replace_day(1).ok(),
        ),
        Some("yearly") => (
            today.year().to_string(),
            Date::from_calendar_date(today.year(), Month::January, 1).ok(),
        ),
        _ => ("alltime".to_string(), None),
    }
}

/// The value a trigger compares, in hundred-thousandths: `count` and `usage` are whole
/// numbers, `price` money.
pub fn trigger_measure(trigger_by: &str, count: i64, usage: i64, price: Money) -> Money {
    match trigger_by {
        "count" => count.saturating_mul(100_000),
        "usage" => usage.saturating_mul(100_000),
        _ => price,
    }
}

/// Prints a measure like Twilio's `current_value`: money for prices (and for the usage of
/// `totalprice`, which is money), whole numbers for counts and usage.
pub fn format_measure(category: &str, trigger_by: &str, value: Money) -> String {
    if trigger_by == "price" || (category == "totalprice" && trigger_by == "usage") {
        format_money(value)
    } else {
        (value / 100_000).to_string()
    }
}

/// `YYYY-MM-DD`.
pub fn day_string(day: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        day.year(),
        u8::from(day.month()),
        day.day()
    )
}

/// The UTC day of a time in microseconds.
pub fn day_of(micros: i64) -> Date {
    time::OffsetDateTime::from_unix_timestamp(micros.div_euclid(1_000_000))
        .map(|t| t.date())
        .unwrap_or(Date::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn money_round_trips_with_five_decimals() {
        assert_eq!(parse_money("0.0079"), Some(790));
        assert_eq!(parse_money("-0.00790"), Some(-790));
        assert_eq!(parse_money("12"), Some(1_200_000));
        assert_eq!(parse_money("1.123456"), None);
        assert_eq!(parse_money("abc"), None);
        assert_eq!(parse_money("1e5"), None);
        assert_eq!(format_money(790), "0.00790");
        assert_eq!(format_money(-1_200_000), "-12.00000");
    }

    #[test]
    fn reported_categories_include_their_leaves() {
        assert!(includes("sms", "sms-outbound-longcode"));
        assert!(includes("sms-inbound", "sms-inbound-tollfree"));
        assert!(!includes("sms-inbound", "sms-outbound-tollfree"));
        assert!(!includes("sms", "mms-outbound-longcode"));
        assert!(includes("totalprice", "phonenumbers-local"));
        assert!(includes("phonenumbers", "phonenumbers-tollfree"));
        assert!(!includes("phonenumbers", "shortcodes"));
        assert!(includes("shortcodes", "shortcodes"));
        assert_eq!(
            message_category(false, false, "longcode"),
            "sms-outbound-longcode"
        );
    }

    #[test]
    fn periods_split_ranges() {
        let monthly = Period::Monthly.buckets(date!(2026 - 01 - 15), date!(2026 - 03 - 02));
        assert_eq!(
            monthly,
            vec![
                (date!(2026 - 01 - 15), date!(2026 - 01 - 31)),
                (date!(2026 - 02 - 01), date!(2026 - 02 - 28)),
                (date!(2026 - 03 - 01), date!(2026 - 03 - 02)),
            ]
        );
        assert_eq!(
            Period::Daily
                .buckets(date!(2026 - 12 - 31), date!(2027 - 01 - 01))
                .len(),
            2
        );
        assert_eq!(
            Period::LastMonth.fixed_range(date!(2026 - 03 - 10)),
            Some((date!(2026 - 02 - 01), date!(2026 - 02 - 28)))
        );
        let today = date!(2026 - 11 - 26);
        assert_eq!(
            parse_usage_date("StartDate", "-30days", today).unwrap(),
            date!(2026 - 10 - 27)
        );
        assert!(parse_usage_date("StartDate", "yesterday", today).is_err());
        assert_eq!(
            parse_usage_date("EndDate", "2026-12-01T23:30:00-02:00", today).unwrap(),
            Date::from_calendar_date(2026, Month::December, 2).unwrap()
        );
        assert!(parse_usage_date("EndDate", "9999-12-31T23:59:59-01:00", today).is_err());
    }
}
