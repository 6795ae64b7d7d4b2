//! Schedules: "the 16th of every month, rolled to the next working day", "every Monday at
//! 09:00", "the last working day of the month". The types are part of the workflow format, so
//! their doc comments are written for process owners (they become the JSON Schema's
//! descriptions); the arithmetic answers "when next" and "what was missed".
//!
//! Occurrences are computed per period (day, week or month), never by scanning time: each
//! period has one raw date, which `roll` may move to a working day. Rolled occurrences keep
//! their order (a later period never fires before an earlier one), and two periods rolled onto
//! the same instant fire once, so rolling neither skips nor repeats a firing.

use super::{Calendar, CalendarError, last_day_of_month};
use crate::definition::model::Schedule;
pub use crate::definition::schedule::{Every, MonthDay, NamedDay, Roll, Weekday};
use chrono::{DateTime, Datelike, Days, Months, NaiveDate, NaiveTime, TimeDelta, Utc};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde::de::{self, Deserializer};

/// When a schedule fires, in the calendar's local time: `{every: month, day: 16, at: "09:00",
/// roll: next_working_day}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Recurrence {
    /// How often: `day`, `working_day`, `week` or `month`.
    pub every: Every,
    /// For `every: month`: the day of the month (1-31, `last`, `first_working_day`,
    /// `last_working_day`).
    #[serde(default)]
    pub day: Option<MonthDay>,
    /// For `every: week`: the day of the week, for example `monday`.
    #[serde(default)]
    pub weekday: Option<Weekday>,
    /// The time of day, "HH:MM" in the calendar's time zone, for example "09:00".
    #[serde(deserialize_with = "time_of_day")]
    #[schemars(schema_with = "time_schema")]
    pub at: NaiveTime,
    /// When the day is not a working day: `none` (default), `next_working_day` or
    /// `previous_working_day`.
    #[serde(default)]
    pub roll: Roll,
}

/// Why a schedule cannot recur as written; its `Display` is the English sentence, with what to
/// write instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduleProblem {
    /// `at` is not `HH:MM`.
    BadTime(String),
    /// `every: month` without `day`.
    MonthlyWithoutDay,
    /// A day of the month outside 1-31.
    NotADayOfMonth(u32),
    /// `every: week` without `weekday`.
    WeeklyWithoutWeekday,
    /// `day` on a schedule that is not monthly.
    DayNotMonthly(Every),
    /// `weekday` on a schedule that is not weekly.
    WeekdayNotWeekly(Every),
}

impl ScheduleProblem {
    /// Whether the problem is the `at:` time (the rest are about `every` and its days).
    pub fn is_about_time(&self) -> bool {
        matches!(self, ScheduleProblem::BadTime(_))
    }

    /// The problem for a finding, in its reader's language.
    pub fn text(&self) -> crate::i18n::Text {
        use crate::i18n::text;
        let every = |every: &Every| match every {
            Every::Day => text!("diag-every-day"),
            Every::WorkingDay => text!("diag-every-working-day"),
            Every::Week => text!("diag-every-week"),
            Every::Month => text!("diag-every-month"),
        };
        match self {
            ScheduleProblem::BadTime(at) => text!("diag-schedule-bad-time", at = at),
            ScheduleProblem::MonthlyWithoutDay => text!("diag-schedule-monthly-without-day"),
            ScheduleProblem::NotADayOfMonth(n) => text!("diag-schedule-not-a-day", day = *n),
            ScheduleProblem::WeeklyWithoutWeekday => {
                text!("diag-schedule-weekly-without-weekday")
            }
            ScheduleProblem::DayNotMonthly(e) => {
                text!("diag-schedule-day-not-monthly", every = every(e))
            }
            ScheduleProblem::WeekdayNotWeekly(Every::Month) => {
                text!("diag-schedule-weekday-on-monthly")
            }
            ScheduleProblem::WeekdayNotWeekly(e) => {
                text!("diag-schedule-weekday-not-weekly", every = every(e))
            }
        }
    }
}

impl std::fmt::Display for ScheduleProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.text(), f)
    }
}

/// Most periods looked at for one answer; rolling moves an occurrence by days, not months.
const MAX_STEPS: usize = 1_000;

impl Recurrence {
    /// The recurrence a workflow's schedule describes, or why it cannot recur (with what to
    /// write instead).
    pub fn of(schedule: &Schedule) -> Result<Recurrence, ScheduleProblem> {
        let at = NaiveTime::parse_from_str(schedule.at.as_str().trim(), "%H:%M")
            .map_err(|_| ScheduleProblem::BadTime(schedule.at.value.clone()))?;
        let recurrence = Recurrence {
            every: schedule.every.value,
            day: schedule.day.as_ref().map(|d| d.value),
            weekday: schedule.weekday.as_ref().map(|w| w.value),
            at,
            roll: schedule.roll.as_ref().map_or(Roll::None, |r| r.value),
        };
        recurrence.check()?;
        Ok(recurrence)
    }

    /// Why this recurrence cannot work, if it cannot.
    pub fn check(&self) -> Result<(), ScheduleProblem> {
        match (self.every, self.day, self.weekday) {
            (Every::Month, None, _) => Err(ScheduleProblem::MonthlyWithoutDay),
            (Every::Month, _, Some(_)) => Err(ScheduleProblem::WeekdayNotWeekly(Every::Month)),
            (Every::Month, Some(MonthDay::Day(n)), _) if !(1..=31).contains(&n) => {
                Err(ScheduleProblem::NotADayOfMonth(n))
            }
            (Every::Week, _, None) => Err(ScheduleProblem::WeeklyWithoutWeekday),
            (Every::Week | Every::Day | Every::WorkingDay, Some(_), _) => {
                Err(ScheduleProblem::DayNotMonthly(self.every))
            }
            (Every::Day | Every::WorkingDay, _, Some(_)) => {
                Err(ScheduleProblem::WeekdayNotWeekly(self.every))
            }
            _ => Ok(()),
        }
    }

    /// The first occurrence strictly after `after`.
    pub fn next_after(
        &self,
        after: DateTime<Utc>,
        calendar: &Calendar,
    ) -> Result<DateTime<Utc>, CalendarError> {
        self.check()
            .map_err(|p| CalendarError::InvalidRecurrence(p.to_string()))?;
        let date = calendar.local_naive(after)?.date();
        if self.every == Every::WorkingDay {
            let mut day = calendar.next_working_day(date)?;
            if calendar.at(day, self.at) <= after {
                day = calendar.next_working_day(next_day(day)?)?;
            }
            return Ok(calendar.at(day, self.at));
        }
        let mut period = self.period_of(date);
        if self.roll == Roll::NextWorkingDay && self.fixed_day() {
            // An earlier period's day, rolled forward over a holiday, may still be ahead.
            for _ in 0..MAX_STEPS {
                let earlier = self.step(period, false)?;
                if !rolls_to_or_past(self.raw_day(earlier, calendar)?, date, calendar)?
                    || self.occurrence(earlier, calendar)? <= after
                {
                    break;
                }
                period = earlier;
            }
        }
        for _ in 0..MAX_STEPS {
            let t = self.occurrence(period, calendar)?;
            if t > after {
                return Ok(t);
            }
            period = self.step(period, true)?;
        }
        Err(CalendarError::OutOfRange)
    }

    /// The latest occurrence in (after, until], if any: after the engine was down, a schedule
    /// fires once, for this occurrence, however many it missed.
    pub fn latest_in(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        calendar: &Calendar,
    ) -> Result<Option<DateTime<Utc>>, CalendarError> {
        if until <= after {
            return Ok(None);
        }
        // Look back a little more than one period; if nothing fired there, look back further.
        let mut window = TimeDelta::days(match self.every {
            Every::Day => 3,
            Every::WorkingDay | Every::Week => 14,
            Every::Month => 40,
        });
        loop {
            let start = until
                .checked_sub_signed(window)
                .map_or(after, |s| s.max(after));
            let mut latest = None;
            let mut t = start;
            loop {
                let next = self.next_after(t, calendar)?;
                if next > until {
                    break;
                }
                latest = Some(next);
                t = next;
            }
            if latest.is_some() || start == after {
                return Ok(latest);
            }
            window = window.checked_mul(2).ok_or(CalendarError::OutOfRange)?;
        }
    }

    /// Whether the raw day of a period is fixed by the calendar's dates alone.
    fn fixed_day(&self) -> bool {
        !matches!(
            self.day,
            Some(MonthDay::Named(
                NamedDay::FirstWorkingDay | NamedDay::LastWorkingDay
            ))
        )
    }

    /// The first day of the period (day, week from Monday, month) holding `date`.
    fn period_of(&self, date: NaiveDate) -> NaiveDate {
        match self.every {
            Every::Day | Every::WorkingDay => date,
            // Only the first week chrono knows has no Monday before it.
            Every::Week => date
                .checked_sub_days(Days::new(u64::from(date.weekday().num_days_from_monday())))
                .unwrap_or(date),
            Every::Month => date.with_day(1).unwrap_or(date),
        }
    }

    fn step(&self, period: NaiveDate, forward: bool) -> Result<NaiveDate, CalendarError> {
        let next = match (self.every, forward) {
            (Every::Day | Every::WorkingDay, true) => period.checked_add_days(Days::new(1)),
            (Every::Day | Every::WorkingDay, false) => period.checked_sub_days(Days::new(1)),
            (Every::Week, true) => period.checked_add_days(Days::new(7)),
            (Every::Week, false) => period.checked_sub_days(Days::new(7)),
            (Every::Month, true) => period.checked_add_months(Months::new(1)),
            (Every::Month, false) => period.checked_sub_months(Months::new(1)),
        };
        next.ok_or(CalendarError::OutOfRange)
    }

    /// The period's day before rolling.
    fn raw_day(&self, period: NaiveDate, calendar: &Calendar) -> Result<NaiveDate, CalendarError> {
        let (y, m) = (period.year(), period.month());
        match (self.every, self.day, self.weekday) {
            (Every::Week, _, Some(w)) => period
                .checked_add_days(Days::new(u64::from(w.to_chrono().num_days_from_monday())))
                .ok_or(CalendarError::OutOfRange),
            (Every::Month, Some(MonthDay::Day(n)), _) => {
                let last = last_day_of_month(y, m).ok_or(CalendarError::OutOfRange)?;
                Ok(last.with_day(n.min(last.day())).unwrap_or(last))
            }
            (Every::Month, Some(MonthDay::Named(NamedDay::Last)), _) => {
                last_day_of_month(y, m).ok_or(CalendarError::OutOfRange)
            }
            (Every::Month, Some(MonthDay::Named(NamedDay::FirstWorkingDay)), _) => {
                calendar.first_working_day_of_month(y, m)
            }
            (Every::Month, Some(MonthDay::Named(NamedDay::LastWorkingDay)), _) => {
                calendar.last_working_day_of_month(y, m)
            }
            _ => Ok(period),
        }
    }

    fn occurrence(
        &self,
        period: NaiveDate,
        calendar: &Calendar,
    ) -> Result<DateTime<Utc>, CalendarError> {
        let day = self.raw_day(period, calendar)?;
        let day = match self.roll {
            Roll::None => day,
            Roll::NextWorkingDay => calendar.next_working_day(day)?,
            Roll::PreviousWorkingDay => calendar.previous_working_day(day)?,
        };
        Ok(calendar.at(day, self.at))
    }
}

/// Whether rolling `raw` forward to a working day can reach `date` (a later day): only if every
/// day from `raw` up to the day before `date` is a non-working day.
fn rolls_to_or_past(
    raw: NaiveDate,
    date: NaiveDate,
    calendar: &Calendar,
) -> Result<bool, CalendarError> {
    let mut day = date;
    while day > raw {
        day = day.pred_opt().ok_or(CalendarError::OutOfRange)?;
        if calendar.is_working_day(day)? {
            return Ok(false);
        }
    }
    Ok(true)
}

fn next_day(day: NaiveDate) -> Result<NaiveDate, CalendarError> {
    day.succ_opt().ok_or(CalendarError::OutOfRange)
}

/// Reads "HH:MM" (or "HH:MM:SS").
pub(crate) fn parse_time(text: &str) -> Option<NaiveTime> {
    let text = text.trim();
    NaiveTime::parse_from_str(text, "%H:%M")
        .or_else(|_| NaiveTime::parse_from_str(text, "%H:%M:%S"))
        .ok()
}

fn time_of_day<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveTime, D::Error> {
    let text = String::deserialize(d)?;
    parse_time(&text).ok_or_else(|| {
        de::Error::custom(format!(
            "`{text}` is not a time of day: write \"HH:MM\" in quotes, for example \"09:00\""
        ))
    })
}

fn time_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "pattern": "^([01]?[0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$",
        "examples": ["09:00"],
    })
}

#[cfg(test)]
#[path = "recurrence_tests.rs"]
mod tests;
