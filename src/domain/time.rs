//! Timestamps as warbler stores them (microseconds since the Unix epoch, UTC) and as Twilio
//! renders them: RFC 2822 for the 2010-04-01 API, ISO 8601 without fraction for the v1 APIs.

use time::format_description::well_known::Rfc2822;
use time::OffsetDateTime;

/// Microseconds since the Unix epoch: the stored form of every date.
pub type Micros = i64;

pub fn now_micros() -> Micros {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000) as Micros
}

fn to_datetime(micros: Micros) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(micros as i128 * 1_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// `Wed, 18 Aug 2010 20:01:40 +0000`, as the 2010-04-01 API prints dates.
pub fn rfc2822(micros: Micros) -> String {
    to_datetime(micros)
        .replace_nanosecond(0)
        .ok()
        .and_then(|d| d.format(&Rfc2822).ok())
        .unwrap_or_default()
}

/// `2015-07-30T20:12:31Z`, the only form twilio-python parses for v1 dates.
pub fn iso8601(micros: Micros) -> String {
    let d = to_datetime(micros);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        d.year(),
        u8::from(d.month()),
        d.day(),
        d.hour(),
        d.minute(),
        d.second()
    )
}

const SECOND: Micros = 1_000_000;

fn parse_day(raw: &str) -> Option<time::Date> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(raw, &format).ok()
}

fn parse_instant(raw: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339).ok()
}

fn whole_day(date: time::Date) -> (Micros, Micros) {
    let start = date.midnight().assume_utc().unix_timestamp() * SECOND;
    (start, start + 86_400 * SECOND - 1)
}

/// The span a date filter's bound (`DateSent<`, `StartDate`…) covers, in microseconds, both
/// ends inclusive: a bare date (`2026-12-01`) is that whole UTC day; a date-time
/// (`2026-12-01T21:24:33Z`, any RFC 3339 offset) is that one second, as Twilio renders dates
/// to the second. `None` if neither parses.
pub fn filter_span(raw: &str) -> Option<(Micros, Micros)> {
    if raw.len() == 10 {
        return parse_day(raw).map(whole_day);
    }
    let start = parse_instant(raw)?.unix_timestamp() * SECOND;
    Some((start, start + SECOND - 1))
}

/// The UTC day an equality date filter (`DateSent=`) selects, given as a date or a date-time:
/// Twilio documents these filters as days, and twilio-python sends a date object as
/// `YYYY-MM-DDT00:00:00Z`.
pub fn filter_day(raw: &str) -> Option<(Micros, Micros)> {
    if raw.len() == 10 {
        return parse_day(raw).map(whole_day);
    }
    // Checked: a time late on 9999-12-31 with a negative offset is past the last UTC day.
    Some(whole_day(
        parse_instant(raw)?
            .checked_to_offset(time::UtcOffset::UTC)?
            .date(),
    ))
}

/// `2021-02-17 03:12 PM`, used in the default name of a subaccount.
pub fn minute_with_meridian(micros: Micros) -> String {
    let d = to_datetime(micros);
    let (hour12, meridian) = match d.hour() {
        0 => (12, "AM"),
        h @ 1..=11 => (h, "AM"),
        12 => (12, "PM"),
        h => (h - 12, "PM"),
    };
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} {}",
        d.year(),
        u8::from(d.month()),
        d.day(),
        hour12,
        d.minute(),
        meridian
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const JUL_30_2015_201231: Micros = 1_438_287_151_250_000;

    #[test]
    fn rfc2822_matches_twilio_form() {
        assert_eq!(
            rfc2822(JUL_30_2015_201231),
            "Thu, 30 Jul 2015 20:12:31 +0000"
        );
    }

    #[test]
    fn iso8601_has_no_fraction_and_a_z() {
        assert_eq!(iso8601(JUL_30_2015_201231), "2015-07-30T20:12:31Z");
    }

    #[test]
    fn a_date_filter_covers_its_day_and_a_date_time_its_second() {
        let day_start = 1_438_214_400_000_000; // 2015-07-30T00:00:00Z
        assert_eq!(
            filter_span("2015-07-30"),
            Some((day_start, day_start + 86_400_000_000 - 1))
        );
        let second = 1_438_287_151_000_000;
        assert_eq!(
            filter_span("2015-07-30T20:12:31Z"),
            Some((second, second + 999_999))
        );
        assert_eq!(
            filter_span("2015-07-30T22:12:31+02:00"),
            Some((second, second + 999_999))
        );
        // A fraction does not widen or shift the second it falls in.
        assert_eq!(
            filter_span("2015-07-30T20:12:31.250Z"),
            Some((second, second + 999_999))
        );
        for bad in ["yesterday", "2015-13-01", "2015-07-30T20:12:31", ""] {
            assert_eq!(filter_span(bad), None, "{bad}");
            assert_eq!(filter_day(bad), None, "{bad}");
        }
        let whole_day = Some((day_start, day_start + 86_400_000_000 - 1));
        assert_eq!(filter_day("2015-07-30"), whole_day);
        assert_eq!(filter_day("2015-07-30T00:00:00Z"), whole_day);
        assert_eq!(filter_day("2015-07-30T20:12:31Z"), whole_day);
        assert_eq!(filter_day("2015-07-31T01:00:00+02:00"), whole_day);
        // Past the last representable UTC day: refused, not a panic.
        assert_eq!(filter_day("9999-12-31T23:59:59-01:00"), None);
        assert!(filter_span("9999-12-31T23:59:59-01:00").is_some());
    }

    #[test]
    fn meridian_form_for_default_names() {
        assert_eq!(
            minute_with_meridian(JUL_30_2015_201231),
            "2015-07-30 08:12 PM"
        );
        assert_eq!(minute_with_meridian(0), "1970-01-01 12:00 AM");
    }
}
