//! Durations as process owners write them: `15 minutes`, `7 working days`, `6 months`.
//!
//! Units are kept as written (a month is not 30 days, a working day is not 24 hours): the
//! business calendar decides what they mean for a given start time.

use std::fmt;
use std::str::FromStr;

/// A unit of time, as the manuals count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    /// Elapsed minutes (`15 minutes`, `15分钟`): a counter's promise, kept day or night.
    Minutes,
    /// Elapsed hours (`2 hours`, `2小时`), holidays and nights included.
    Hours,
    /// Calendar days of 24 hours (`3 days`, `3天`, `自然日`), weekends and holidays included.
    Days,
    /// Working days of the calendar (`7 working days`, `7个工作日`): holidays are skipped,
    /// make-up working days (调休) count, and the time of day is kept.
    WorkingDays,
    /// Hours while the site is open (`4 working hours`, `4工作小时`): lunch, nights and
    /// holidays do not count.
    WorkingHours,
    /// Weeks of seven calendar days (`2 weeks`, `2周`).
    Weeks,
    /// Calendar months in local time (`6 months`, `6个月`), end-of-month safe: 31 January and
    /// a month is the last day of February.
    Months,
    /// Calendar years (`1 year`, `1年`): twelve months, so 29 February and a year is
    /// 28 February.
    Years,
}

impl Unit {
    fn name(self, plural: bool) -> &'static str {
        match (self, plural) {
            (Unit::Minutes, false) => "minute",
            (Unit::Minutes, true) => "minutes",
            (Unit::Hours, false) => "hour",
            (Unit::Hours, true) => "hours",
            (Unit::Days, false) => "day",
            (Unit::Days, true) => "days",
            (Unit::WorkingDays, false) => "working day",
            (Unit::WorkingDays, true) => "working days",
            (Unit::WorkingHours, false) => "working hour",
            (Unit::WorkingHours, true) => "working hours",
            (Unit::Weeks, false) => "week",
            (Unit::Weeks, true) => "weeks",
            (Unit::Months, false) => "month",
            (Unit::Months, true) => "months",
            (Unit::Years, false) => "year",
            (Unit::Years, true) => "years",
        }
    }

    fn parse(word: &str) -> Option<Unit> {
        let unit = match word {
            "minute" | "minutes" | "min" | "mins" | "分钟" | "分" => Unit::Minutes,
            "hour" | "hours" | "h" | "小时" | "个小时" => Unit::Hours,
            "day" | "days" | "d" | "天" | "日" | "自然日" => Unit::Days,
            "working day" | "working days" | "工作日" | "个工作日" => Unit::WorkingDays,
            "working hour" | "working hours" | "工作小时" | "个工作小时" => {
                Unit::WorkingHours
            }
            "week" | "weeks" | "周" | "星期" | "个星期" => Unit::Weeks,
            "month" | "months" | "月" | "个月" => Unit::Months,
            "year" | "years" | "年" => Unit::Years,
            _ => return None,
        };
        Some(unit)
    }
}

/// An amount of one unit of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Duration {
    /// How many of `unit`: a whole number above zero, as written (`7` in `7 working days`).
    pub amount: u32,
    /// What is counted; the calendar decides what it means from a given start.
    pub unit: Unit,
}

/// Why a duration could not be read; the message says what is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// The text does not start with a number (`soon`, or nothing at all).
    #[error("a duration is a number followed by a unit, for example `7 working days`")]
    MissingNumber,
    /// The number is not a whole number that fits (`1.5`, `99999999999`): amounts of time
    /// are counted in whole units.
    #[error("`{0}` is not a whole number")]
    BadNumber(String),
    /// The words after the number name no unit (`7 workdays`); they are kept for the message.
    #[error("`{0}` is not a unit of time")]
    UnknownUnit(String),
    /// `0 days`: a deadline that is already due is a mistake, not a timer.
    #[error("a duration must be longer than zero")]
    Zero,
}

impl DurationError {
    /// What is wrong, for a finding in its reader's language.
    pub fn text(&self) -> crate::i18n::Text {
        use crate::i18n::text;
        match self {
            DurationError::MissingNumber => text!("diag-duration-missing-number"),
            DurationError::BadNumber(number) => text!("diag-duration-bad-number", number = number),
            DurationError::UnknownUnit(unit) => text!("diag-duration-unknown-unit", unit = unit),
            DurationError::Zero => text!("diag-duration-zero"),
        }
    }
}

/// The units accepted, for hints.
pub const UNITS_HINT: &str = "write a whole number and one of: minutes, hours, days, working days, working hours, weeks, months, years (or 分钟, 小时, 天, 工作日, 周, 个月, 年)";

impl FromStr for Duration {
    type Err = DurationError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let digits_end = text
            .char_indices()
            .find(|(_, c)| !c.is_ascii_digit())
            .map_or(text.len(), |(i, _)| i);
        let (number, rest) = text.split_at(digits_end);
        if number.is_empty() {
            return Err(match text.split_whitespace().next() {
                Some(word) if word.chars().any(|c| c.is_ascii_digit()) => {
                    DurationError::BadNumber(word.to_string())
                }
                _ => DurationError::MissingNumber,
            });
        }
        let amount: u32 = number
            .parse()
            .map_err(|_| DurationError::BadNumber(number.to_string()))?;
        let words = rest.split_whitespace().collect::<Vec<_>>().join(" ");
        let unit = Unit::parse(&words.to_lowercase()).ok_or_else(|| {
            if words.starts_with('.') {
                DurationError::BadNumber(format!(
                    "{number}{}",
                    words.split(' ').next().unwrap_or("")
                ))
            } else {
                DurationError::UnknownUnit(words.clone())
            }
        })?;
        if amount == 0 {
            return Err(DurationError::Zero);
        }
        Ok(Duration { amount, unit })
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.unit.name(self.amount != 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_manuals_durations() {
        let cases = [
            ("15 minutes", 15, Unit::Minutes),
            ("5 minutes", 5, Unit::Minutes),
            ("7 working days", 7, Unit::WorkingDays),
            ("10  Working Days", 10, Unit::WorkingDays),
            ("6 months", 6, Unit::Months),
            ("1 year", 1, Unit::Years),
            ("3个月", 3, Unit::Months),
            ("7个工作日", 7, Unit::WorkingDays),
            ("15分钟", 15, Unit::Minutes),
            ("1 hour", 1, Unit::Hours),
        ];
        for (text, amount, unit) in cases {
            assert_eq!(
                text.parse::<Duration>(),
                Ok(Duration { amount, unit }),
                "{text}"
            );
        }
    }

    #[test]
    fn rejects_what_it_cannot_read() {
        assert_eq!(
            "7 workdays".parse::<Duration>(),
            Err(DurationError::UnknownUnit("workdays".into()))
        );
        assert_eq!(
            "soon".parse::<Duration>(),
            Err(DurationError::MissingNumber)
        );
        assert_eq!("0 days".parse::<Duration>(), Err(DurationError::Zero));
        assert!(matches!(
            "1.5 days".parse::<Duration>(),
            Err(DurationError::BadNumber(_))
        ));
        assert!(matches!(
            "99999999999 days".parse::<Duration>(),
            Err(DurationError::BadNumber(_))
        ));
        assert_eq!("".parse::<Duration>(), Err(DurationError::MissingNumber));
    }

    #[test]
    fn displays_as_written_in_english() {
        assert_eq!(
            "1 working day".parse::<Duration>().map(|d| d.to_string()),
            Ok("1 working day".into())
        );
        assert_eq!(
            "6个月".parse::<Duration>().map(|d| d.to_string()),
            Ok("6 months".into())
        );
    }
}
