//! `Point`: a position in the log as the `at=`, `from=`, `to=` and `since=` parameters name it.

use jiff::{Span, SpanRelativeTo, Timestamp};
use serde::{Serialize, Serializer};

/// A position in the graph's history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Point {
    /// Right after the change with this sequence number (`seq:N`; `seq:0` is the empty graph).
    Seq(u64),
    /// After the last change at or before this time, in milliseconds since the Unix epoch (an
    /// RFC 3339 time, or a relative one such as `-15m`, resolved against the caller's clock).
    Time(i64),
    /// The live graph (`now`).
    Now,
}

/// Why a point could not be read. The messages say what was expected: they are shown to API
/// clients as they are.
#[derive(Debug, thiserror::Error)]
pub enum PointError {
    /// Nothing was given.
    #[error(
        "empty point: expected seq:N, an RFC 3339 time (2026-12-04T10:00:00Z), a relative time (-15m) or now"
    )]
    Empty,
    /// `seq:` was not followed by a non-negative integer.
    #[error("invalid sequence {0:?}: expected seq:N with N a non-negative integer (seq:1200)")]
    Seq(String),
    /// Not an RFC 3339 time.
    #[error(
        "invalid time {text:?}: expected an RFC 3339 time with a zone (2026-12-04T10:00:00Z, 2026-12-04T11:00:00.250+01:00)"
    )]
    Time {
        /// The text given.
        text: String,
        /// What the time parser said.
        #[source]
        source: jiff::Error,
    },
    /// A relative time that is not a duration of hours, minutes, seconds or days.
    #[error(
        "invalid relative time {text:?}: expected a minus sign and a duration (-90s, -15m, -2h, -1d, -1h30m)"
    )]
    Relative {
        /// The text given.
        text: String,
        /// What the duration parser said.
        #[source]
        source: jiff::Error,
    },
    /// A relative time without its minus sign: relative points lie in the past.
    #[error("relative time {0:?} has no minus sign: a relative point lies in the past (-15m)")]
    RelativeFuture(String),
    /// Not a duration (a flag or a `bucket=`).
    #[error("invalid duration {text:?}: expected a duration such as 30s, 5m, 1h, 1d or 1h30m")]
    Duration {
        /// The text given.
        text: String,
        /// What the duration parser said.
        #[source]
        source: jiff::Error,
    },
    /// A time outside the range of millisecond timestamps.
    #[error("time {0:?} is out of range")]
    OutOfRange(String),
    /// None of the accepted forms.
    #[error(
        "invalid point {0:?}: expected seq:N, an RFC 3339 time (2026-12-04T10:00:00Z), a relative time (-15m) or now"
    )]
    Unrecognised(String),
}

impl Point {
    /// Reads a point: `seq:N`, an RFC 3339 time (offsets and fractions of a second accepted),
    /// a relative time in the past (`-15m`, `-90s`, `-2h`, `-1d`, `-1h30m`; a day is 24 hours)
    /// resolved against `now_ms`, or `now`. Surrounding whitespace is ignored.
    ///
    /// # Errors
    /// A [`PointError`] naming the form that was expected.
    pub fn parse(text: &str, now_ms: i64) -> Result<Point, PointError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(PointError::Empty);
        }
        if text.eq_ignore_ascii_case("now") {
            return Ok(Point::Now);
        }
        if let Some(n) = text.strip_prefix("seq:") {
            return n
                .parse::<u64>()
                .map(Point::Seq)
                .map_err(|_| PointError::Seq(text.to_owned()));
        }
        if let Some(duration) = text.strip_prefix('-') {
            let ms = relative_ms(duration).map_err(|source| PointError::Relative {
                text: text.to_owned(),
                source,
            })?;
            return now_ms
                .checked_sub(ms)
                .map(Point::Time)
                .ok_or_else(|| PointError::OutOfRange(text.to_owned()));
        }
        if text.starts_with('+') || text.parse::<Span>().is_ok() {
            return Err(PointError::RelativeFuture(text.to_owned()));
        }
        if !text.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(PointError::Unrecognised(text.to_owned()));
        }
        let ts: Timestamp = text.parse().map_err(|source| PointError::Time {
            text: text.to_owned(),
            source,
        })?;
        Ok(Point::Time(ts.as_millisecond()))
    }
}

/// A duration such as `30s`, `5m`, `1h`, `1d` or `1h30m` (a day is 24 hours) in milliseconds:
/// the form of the history flags and of `bucket=`.
///
/// # Errors
/// [`PointError::Duration`] when `text` is not one.
pub fn parse_duration_ms(text: &str) -> Result<i64, PointError> {
    let text = text.trim();
    relative_ms(text).map_err(|source| PointError::Duration {
        text: text.to_owned(),
        source,
    })
}

/// A duration (without its sign) in milliseconds, days counted as 24 hours.
fn relative_ms(duration: &str) -> Result<i64, jiff::Error> {
    let span: Span = duration.parse()?;
    let d = span.to_duration(SpanRelativeTo::days_are_24_hours())?;
    Ok(d.as_millis().clamp(0, i128::from(i64::MAX)) as i64)
}

/// A time in milliseconds since the Unix epoch as RFC 3339 in UTC (`2026-12-04T10:00:00.250Z`;
/// fractions only when not zero). Times beyond the representable range are clamped to it.
pub fn format_time(ms: i64) -> String {
    let ts = Timestamp::from_millisecond(ms).unwrap_or(if ms < 0 {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    });
    ts.to_string()
}

/// Serialises a millisecond timestamp as [`format_time`] writes it (for `#[serde(serialize_with)]`).
///
/// # Errors
/// Those of the serializer.
pub fn serialize_time<S: Serializer>(ms: &i64, serializer: S) -> Result<S::Ok, S::Error> {
    format_time(*ms).serialize(serializer)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use jiff::tz::Offset;
    use proptest::prelude::*;

    use super::*;

    const NOW: i64 = 1_796_378_400_000; // 2026-12-04T10:00:00Z

    fn p(text: &str) -> Point {
        Point::parse(text, NOW).unwrap()
    }

    #[test]
    fn sequences_and_now() {
        assert_eq!(p("seq:0"), Point::Seq(0));
        assert_eq!(p("seq:1200"), Point::Seq(1200));
        assert_eq!(p("now"), Point::Now);
        assert_eq!(p(" NOW "), Point::Now);
    }

    #[test]
    fn rfc3339_times_with_offsets_and_fractions() {
        assert_eq!(p("2026-12-04T10:00:00Z"), Point::Time(NOW));
        assert_eq!(p("2026-12-04T11:00:00+01:00"), Point::Time(NOW));
        assert_eq!(p("2026-12-04T05:30:00-04:30"), Point::Time(NOW));
        assert_eq!(p("2026-12-04T10:00:00.250Z"), Point::Time(NOW + 250));
        assert_eq!(p("2026-12-04T10:00:00.5+00:00"), Point::Time(NOW + 500));
    }

    #[test]
    fn relative_times_lie_before_now() {
        assert_eq!(p("-15m"), Point::Time(NOW - 15 * 60_000));
        assert_eq!(p("-90s"), Point::Time(NOW - 90_000));
        assert_eq!(p("-2h"), Point::Time(NOW - 2 * 3_600_000));
        assert_eq!(p("-1d"), Point::Time(NOW - 86_400_000));
        assert_eq!(p("-1h30m"), Point::Time(NOW - 90 * 60_000));
    }

    #[test]
    fn errors_say_what_was_expected() {
        let err = |text: &str| Point::parse(text, NOW).unwrap_err();
        assert!(matches!(err(""), PointError::Empty));
        assert!(matches!(err("seq:"), PointError::Seq(_)));
        assert!(matches!(err("seq:-3"), PointError::Seq(_)));
        assert!(matches!(err("seq:x"), PointError::Seq(_)));
        assert!(matches!(err("-15q"), PointError::Relative { .. }));
        assert!(matches!(err("-1mo"), PointError::Relative { .. }));
        assert!(matches!(err("15m"), PointError::RelativeFuture(_)));
        assert!(matches!(err("+15m"), PointError::RelativeFuture(_)));
        assert!(matches!(
            err("2026-12-04T10:00:00"),
            PointError::Time { .. }
        ));
        assert!(matches!(
            err("2026-13-04T10:00:00Z"),
            PointError::Time { .. }
        ));
        assert!(matches!(err("yesterday"), PointError::Unrecognised(_)));
        for e in [
            err(""),
            err("seq:x"),
            err("-15q"),
            err("2026-12-04"),
            err("x"),
        ] {
            assert!(e.to_string().contains("expected"), "{e}");
        }
    }

    #[test]
    fn formatted_times_are_utc_rfc3339() {
        assert_eq!(format_time(NOW), "2026-12-04T10:00:00Z");
        assert_eq!(format_time(NOW + 250), "2026-12-04T10:00:00.25Z");
        assert_eq!(format_time(i64::MAX), Timestamp::MAX.to_string());
    }

    proptest! {
        #[test]
        fn any_formatted_time_parses_back(
            // Years 1 to 9999 with a day's margin, so that every offset keeps a four-digit year.
            ms in -62_135_510_400_000i64..253_402_214_400_000,
            offset_min in -(18 * 60 - 1)..(18 * 60),
        ) {
            prop_assert_eq!(Point::parse(&format_time(ms), NOW).unwrap(), Point::Time(ms));
            let ts = Timestamp::from_millisecond(ms).unwrap();
            let offset = Offset::from_seconds(offset_min * 60).unwrap();
            let with_offset = ts.display_with_offset(offset).to_string();
            prop_assert_eq!(Point::parse(&with_offset, NOW).unwrap(), Point::Time(ms), "{}", with_offset);
        }
    }
}
