//! When a timer falls due: a duration as written (`15 minutes`, `7 working days`, `6 months`)
//! added to the time a state was entered.
//!
//! Calendar units follow the calendar (31 January + 1 month = 28 or 29 February). Working days
//! and hours are counted Monday to Friday, 09:00-18:00 China Standard Time (UTC+8); public
//! holidays and make-up working days (调休) come with the business calendar, which replaces
//! this function's weekday rule without changing its callers.

use crate::definition::duration::{Duration, Unit};
use chrono::{
    DateTime, Datelike, Duration as Span, FixedOffset, Months, NaiveTime, Timelike, Utc, Weekday,
};

const CST_SECONDS: i32 = 8 * 3600;
const OPENS: u32 = 9;
const CLOSES: u32 = 18;

/// `start` plus `duration`; `None` if the result is out of chrono's range.
pub fn add(start: DateTime<Utc>, duration: Duration) -> Option<DateTime<Utc>> {
    let amount = i64::from(duration.amount);
    match duration.unit {
        Unit::Minutes => start.checked_add_signed(Span::minutes(amount)),
        Unit::Hours => start.checked_add_signed(Span::hours(amount)),
        Unit::Days => start.checked_add_signed(Span::days(amount)),
        Unit::Weeks => start.checked_add_signed(Span::weeks(amount)),
        Unit::Months => local(start)
            .checked_add_months(Months::new(duration.amount))
            .map(utc),
        Unit::Years => local(start)
            .checked_add_months(Months::new(duration.amount.checked_mul(12)?))
            .map(utc),
        Unit::WorkingDays => {
            let mut at = local(start);
            let mut left = duration.amount;
            while left > 0 {
                at = at.checked_add_signed(Span::days(1))?;
                if is_working_day(at.weekday()) {
                    left -= 1;
                }
            }
            Some(utc(at))
        }
        Unit::WorkingHours => add_working_hours(local(start), amount).map(utc),
    }
}

fn is_working_day(day: Weekday) -> bool {
    !matches!(day, Weekday::Sat | Weekday::Sun)
}

fn add_working_hours(mut at: DateTime<FixedOffset>, hours: i64) -> Option<DateTime<FixedOffset>> {
    let mut left = Span::hours(hours);
    while left > Span::zero() {
        // Move to the next opening time if outside working hours.
        if !is_working_day(at.weekday()) || at.hour() >= CLOSES {
            at = next_opening(at)?;
            continue;
        }
        if at.hour() < OPENS {
            at = at
                .with_time(NaiveTime::from_hms_opt(OPENS, 0, 0)?)
                .single()?;
        }
        let close = at
            .with_time(NaiveTime::from_hms_opt(CLOSES, 0, 0)?)
            .single()?;
        let today = close - at;
        if today >= left {
            return at.checked_add_signed(left);
        }
        left -= today;
        at = close;
    }
    Some(at)
}

fn next_opening(at: DateTime<FixedOffset>) -> Option<DateTime<FixedOffset>> {
    let mut day = at.checked_add_signed(Span::days(1))?;
    while !is_working_day(day.weekday()) {
        day = day.checked_add_signed(Span::days(1))?;
    }
    day.with_time(NaiveTime::from_hms_opt(OPENS, 0, 0)?)
        .single()
}

fn local(at: DateTime<Utc>) -> DateTime<FixedOffset> {
    // UTC+8 is a valid offset; `east_opt` only fails beyond ±24 hours.
    let offset = FixedOffset::east_opt(CST_SECONDS)
        .unwrap_or_else(|| FixedOffset::east_opt(0).expect("zero offset"));
    at.with_timezone(&offset)
}

fn utc(at: DateTime<FixedOffset>) -> DateTime<Utc> {
    at.with_timezone(&Utc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("valid")
            .with_timezone(&Utc)
    }

    fn after(start: &str, duration: &str) -> String {
        let d: Duration = duration.parse().expect("duration");
        add(at(start), d)
            .expect("in range")
            .with_timezone(&FixedOffset::east_opt(CST_SECONDS).expect("offset"))
            .to_rfc3339()
    }

    #[test]
    fn calendar_months_are_end_of_month_safe() {
        assert_eq!(
            after("2026-01-31T10:00:00+08:00", "1 month"),
            "2026-02-28T10:00:00+08:00"
        );
        assert_eq!(
            after("2026-03-15T10:00:00+08:00", "6 months"),
            "2026-09-15T10:00:00+08:00"
        );
        assert_eq!(
            after("2028-02-29T10:00:00+08:00", "1 year"),
            "2029-02-28T10:00:00+08:00"
        );
    }

    #[test]
    fn working_days_skip_weekends() {
        // Friday 2026-11-27 + 1 working day = Monday 2026-11-30.
        assert_eq!(
            after("2026-11-27T10:00:00+08:00", "1 working day"),
            "2026-11-30T10:00:00+08:00"
        );
        assert_eq!(
            after("2026-11-27T10:00:00+08:00", "7 working days"),
            "2026-12-08T10:00:00+08:00"
        );
    }

    #[test]
    fn working_hours_count_opening_hours_only() {
        // Friday 17:00 + 2 working hours = Monday 10:00.
        assert_eq!(
            after("2026-11-27T17:00:00+08:00", "2 working hours"),
            "2026-11-30T10:00:00+08:00"
        );
        // Saturday + 1 working hour = Monday 10:00.
        assert_eq!(
            after("2026-11-28T12:00:00+08:00", "1 working hour"),
            "2026-11-30T10:00:00+08:00"
        );
        assert_eq!(
            after("2026-11-30T09:30:00+08:00", "15 minutes"),
            "2026-11-30T09:45:00+08:00"
        );
    }
}
