//! Adding a duration as written (`15 minutes`, `7 working days`, `6 months`) to an instant.
//!
//! Each unit means what the manuals mean by it: minutes to weeks are elapsed time, months and
//! years are calendar months in local time, working days skip holidays and count make-up days,
//! and working hours run only while the site is open. Long spans jump whole weeks where the
//! answer does not depend on holiday data, so no duration makes a script wait.

use super::{Calendar, CalendarError, add_days};
use crate::definition::duration::{Duration, Unit};
use chrono::{DateTime, Months, NaiveDateTime, NaiveTime, TimeDelta, Utc};

impl Calendar {
    /// `start` + `duration`.
    ///
    /// - Minutes, hours, days and weeks are elapsed time (a day is 24 hours).
    /// - Months and years are calendar months in local time, end-of-month safe: 31 January +
    ///   1 month = 28 (or 29) February, 29 February 2028 + 1 year = 28 February 2029.
    /// - Working days keep the local time of day and move the date N working days on. A start
    ///   on a non-working day counts as made on the next working day (as an application handed
    ///   in on a Saturday is received on Monday): Saturday + 1 working day = Tuesday, at the
    ///   Saturday's time of day.
    /// - Working hours are counted inside the opening intervals of working days only; time
    ///   outside them (lunch, nights, holidays) does not count. A count that ends exactly at a
    ///   closing time ends there, not at the next opening.
    pub fn add(
        &self,
        start: DateTime<Utc>,
        duration: Duration,
    ) -> Result<DateTime<Utc>, CalendarError> {
        let amount = i64::from(duration.amount);
        let elapsed = |delta: Option<TimeDelta>| {
            delta
                .and_then(|d| start.checked_add_signed(d))
                .ok_or(CalendarError::OutOfRange)
        };
        match duration.unit {
            Unit::Minutes => elapsed(TimeDelta::try_minutes(amount)),
            Unit::Hours => elapsed(TimeDelta::try_hours(amount)),
            Unit::Days => elapsed(TimeDelta::try_days(amount)),
            Unit::Weeks => elapsed(TimeDelta::try_weeks(amount)),
            Unit::Months => self.add_months(start, duration.amount),
            Unit::Years => self.add_months(
                start,
                duration
                    .amount
                    .checked_mul(12)
                    .ok_or(CalendarError::OutOfRange)?,
            ),
            Unit::WorkingDays => self.add_working_days(start, duration.amount),
            Unit::WorkingHours => self.add_working_minutes(start, amount * 60),
        }
    }

    fn utc_of_local(&self, local: NaiveDateTime) -> Result<DateTime<Utc>, CalendarError> {
        local
            .checked_sub_offset(self.offset)
            .map(|utc| utc.and_utc())
            .ok_or(CalendarError::OutOfRange)
    }

    fn add_months(
        &self,
        start: DateTime<Utc>,
        months: u32,
    ) -> Result<DateTime<Utc>, CalendarError> {
        // chrono clamps the day to the end of a shorter month.
        let local = self
            .local_naive(start)?
            .checked_add_months(Months::new(months))
            .ok_or(CalendarError::OutOfRange)?;
        self.utc_of_local(local)
    }

    fn add_working_days(
        &self,
        start: DateTime<Utc>,
        n: u32,
    ) -> Result<DateTime<Utc>, CalendarError> {
        let local = self.local_naive(start)?;
        let mut day = self.next_working_day(local.date())?;
        let mut left = n;
        if self.holidays.is_none() {
            // Seven days on from a working day is the same weekday, another working day, with
            // one week's worth of working days passed.
            let per_week = self.working_weekdays();
            let weeks = i64::from(left / per_week);
            day = add_days(day, weeks * 7)?;
            left %= per_week;
        }
        for _ in 0..left {
            day = self.next_working_day(add_days(day, 1)?)?;
        }
        self.utc_of_local(day.and_time(local.time()))
    }

    fn add_working_minutes(
        &self,
        start: DateTime<Utc>,
        minutes: i64,
    ) -> Result<DateTime<Utc>, CalendarError> {
        let local = self.local_naive(start)?;
        let mut day = local.date();
        // On the first day, time counts only from the start.
        let mut not_before = local.time().signed_duration_since(NaiveTime::MIN);
        let mut left = TimeDelta::try_minutes(minutes).ok_or(CalendarError::OutOfRange)?;
        loop {
            if self.is_working_day(day)? {
                for interval in &self.hours {
                    let opens = TimeDelta::minutes(i64::from(interval.from));
                    let closes = TimeDelta::minutes(i64::from(interval.to));
                    let begin = opens.max(not_before);
                    if begin >= closes {
                        continue;
                    }
                    if closes - begin >= left {
                        let end = day
                            .and_time(NaiveTime::MIN)
                            .checked_add_signed(begin + left)
                            .ok_or(CalendarError::OutOfRange)?;
                        return self.utc_of_local(end);
                    }
                    left -= closes - begin;
                }
            }
            day = add_days(day, 1)?;
            not_before = TimeDelta::zero();
            if self.holidays.is_none() {
                // At a midnight, whole weeks of opening hours can be skipped at once, leaving
                // some time for the loop so that the end falls inside an interval.
                let week = self.open_seconds_per_week().max(1);
                let weeks = (left.num_seconds() - 1) / week;
                if weeks > 0 {
                    day = add_days(day, weeks * 7)?;
                    left -=
                        TimeDelta::try_seconds(weeks * week).ok_or(CalendarError::OutOfRange)?;
                }
            }
        }
    }

    fn open_seconds_per_week(&self) -> i64 {
        let daily: u32 = self.hours.iter().map(|i| i.to - i.from).sum();
        i64::from(daily) * 60 * i64::from(self.working_weekdays())
    }
}
