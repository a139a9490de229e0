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
    fn meridian_form_for_default_names() {
        assert_eq!(
            minute_with_meridian(JUL_30_2015_201231),
            "2015-07-30 08:12 PM"
        );
        assert_eq!(minute_with_meridian(0), "1970-01-01 12:00 AM");
    }
}
