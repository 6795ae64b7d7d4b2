//! The business calendar: which days are working days, when a site is open, and what
//! "7 working days" or "the 16th, rolled to the next working day" mean for a given instant.
//!
//! Public holidays and make-up working days (调休) change every year by State Council notice,
//! so they are data (`calendars/*.yaml`, read by [`file`](mod@file)), not code: a new year is a new
//! section in a file. A calendar knows exactly which years it has data for, and any question
//! about a day outside them is an error ([`CalendarError::YearNotCovered`]) rather than a quiet
//! guess that every weekday works. [`Calendars`] is the registry of loaded calendars,
//! [`recurrence`] computes schedules and [`script`] exposes a calendar to rhai.
//!
//! A [`Calendar`] is immutable once built and shared as `Arc<Calendar>`. All instants are UTC
//! at the edges; days, times of day and months are the calendar's local (fixed-offset) ones.

mod arith;
pub mod file;
mod holidays;
pub mod recurrence;
mod registry;
pub mod script;
mod yaml;

pub use recurrence::{Every, MonthDay, NamedDay, Recurrence, Roll, Weekday};
pub use registry::Calendars;

use chrono::{
    DateTime, Datelike, Days, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Utc,
};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Why a calendar question has no answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CalendarError {
    /// The answer needs holiday data for a year the calendar does not have. `calendar` is the
    /// calendar that holds the holiday data (for a calendar that `extends` another, the one it
    /// inherits its holidays from): that is the file to extend.
    #[error(
        "calendar `{calendar}` has no holiday data for {year}: add a `{year}:` section under \
         `holidays` (from the State Council's notice on {year}'s holidays) and include {year} \
         in `years`, in the file of calendars/ that declares `id: {calendar}`"
    )]
    YearNotCovered {
        /// The calendar whose file holds the holiday data.
        calendar: String,
        /// The year asked about.
        year: i32,
    },
    /// A date or time beyond what can be represented (around the year 262,000), or a month
    /// that does not exist.
    #[error("the date or time is outside the range a calendar can compute")]
    OutOfRange,
    /// A month in which the calendar has no working day at all.
    #[error("calendar `{calendar}` has no working day in {year}-{month:02}")]
    NoWorkingDay {
        /// The calendar asked.
        calendar: String,
        /// The month's year.
        year: i32,
        /// The month, from 1.
        month: u32,
    },
    /// A recurrence that cannot work as written (see [`Recurrence::check`]).
    #[error("{0}")]
    InvalidRecurrence(String),
}

/// An opening interval: opens, closes (UTC instants).
pub type Opening = (DateTime<Utc>, DateTime<Utc>);

/// The longest span [`Calendar::working_minutes_between`] counts, in days.
pub const MAX_SPAN_DAYS: u32 = 800;

/// One year of holiday data and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarYear {
    /// The year the data is for.
    pub year: i32,
    /// The official notice is not yet published: only the statutory holidays are known, and
    /// deadlines in this year may move when the notice comes out.
    pub provisional: bool,
    /// The document the dates were copied from.
    pub source: String,
    /// Where the notice is published.
    pub url: Option<String>,
    /// What the file's author wants a reader to know about the year's data.
    pub note: Option<String>,
}

/// What a date is, beyond its weekday.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DayKind {
    /// A public holiday (its name, for example `春节`).
    Holiday(String),
    /// A make-up working day (调休) for the named holiday.
    MakeUp(String),
}

/// The holiday data of one calendar file, shared by the calendars that extend it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HolidayTable {
    /// The id of the calendar whose file holds this data.
    pub owner: String,
    /// Sorted by year, contiguous.
    pub years: Vec<CalendarYear>,
    pub days: BTreeMap<NaiveDate, DayKind>,
}

/// Opening hours of one day, in minutes from local midnight (`to` may be 1440, `24:00`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Interval {
    pub from: u32,
    pub to: u32,
}

/// A business calendar: time zone, working week, opening hours and public holidays.
#[derive(Debug, Clone)]
pub struct Calendar {
    id: String,
    title: String,
    offset: FixedOffset,
    /// Indexed by `Weekday::num_days_from_monday`; at least one is true.
    week: [bool; 7],
    /// Sorted, non-overlapping, non-empty.
    hours: Vec<Interval>,
    /// `None` for a calendar that does not observe public holidays.
    holidays: Option<Arc<HolidayTable>>,
}

impl Calendar {
    pub(crate) fn new(
        id: String,
        title: String,
        offset: FixedOffset,
        week: [bool; 7],
        hours: Vec<Interval>,
        holidays: Option<Arc<HolidayTable>>,
    ) -> Calendar {
        Calendar {
            id,
            title,
            offset,
            week,
            hours,
            holidays,
        }
    }

    /// The calendar's id, as workflows name it (`cn_mainland`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The calendar's title (`中国大陆工作日历`).
    pub fn title(&self) -> &str {
        &self.title
    }

    /// The calendar's time zone, a fixed offset from UTC (`+08:00`).
    pub fn offset(&self) -> FixedOffset {
        self.offset
    }

    /// `t` in the calendar's time zone.
    pub fn local(&self, t: DateTime<Utc>) -> DateTime<FixedOffset> {
        t.with_timezone(&self.offset)
    }

    /// `t` as a local date and time; `OutOfRange` only within hours of chrono's last instant.
    pub(crate) fn local_naive(&self, t: DateTime<Utc>) -> Result<NaiveDateTime, CalendarError> {
        t.naive_utc()
            .checked_add_offset(self.offset)
            .ok_or(CalendarError::OutOfRange)
    }

    /// Local date + local time -> UTC instant. A fixed offset has no gaps or repeats, so every
    /// local time names one instant (at the very ends of chrono's range, the local time is
    /// read as UTC rather than failing).
    pub fn at(&self, date: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
        let local = date.and_time(time);
        local
            .checked_sub_offset(self.offset)
            .unwrap_or(local)
            .and_utc()
    }

    /// Whether the calendar counts public holidays and make-up days (a supermarket open every
    /// day does not).
    pub fn observes_holidays(&self) -> bool {
        self.holidays.is_some()
    }

    /// The years with holiday data, each with its source and whether it is provisional.
    /// Empty for a calendar that does not observe holidays (it covers every year).
    pub fn years(&self) -> &[CalendarYear] {
        self.holidays.as_deref().map_or(&[], |h| &h.years)
    }

    /// Whether working-day questions about `year` can be answered.
    pub fn covers(&self, year: i32) -> bool {
        match &self.holidays {
            None => true,
            Some(table) => table.years.binary_search_by_key(&year, |y| y.year).is_ok(),
        }
    }

    /// The public holiday `date` falls in, by name (`春节`), if any.
    pub fn holiday(&self, date: NaiveDate) -> Result<Option<&str>, CalendarError> {
        self.check_year(date.year())?;
        Ok(match self.day_kind(date) {
            Some(DayKind::Holiday(name)) => Some(name),
            _ => None,
        })
    }

    /// Whether `date` is a working day: a day of the working week that is no public holiday,
    /// or a make-up working day.
    pub fn is_working_day(&self, date: NaiveDate) -> Result<bool, CalendarError> {
        self.check_year(date.year())?;
        Ok(match self.day_kind(date) {
            Some(DayKind::Holiday(_)) => false,
            Some(DayKind::MakeUp(_)) => true,
            None => self.week[date.weekday().num_days_from_monday() as usize],
        })
    }

    /// The first working day on or after `date`.
    pub fn next_working_day(&self, date: NaiveDate) -> Result<NaiveDate, CalendarError> {
        // Ends: every week has a working day, and uncovered years are errors.
        let mut day = date;
        while !self.is_working_day(day)? {
            day = day.succ_opt().ok_or(CalendarError::OutOfRange)?;
        }
        Ok(day)
    }

    /// The last working day on or before `date`.
    pub fn previous_working_day(&self, date: NaiveDate) -> Result<NaiveDate, CalendarError> {
        let mut day = date;
        while !self.is_working_day(day)? {
            day = day.pred_opt().ok_or(CalendarError::OutOfRange)?;
        }
        Ok(day)
    }

    /// The first working day of a month (`NoWorkingDay` if it has none).
    pub fn first_working_day_of_month(
        &self,
        year: i32,
        month: u32,
    ) -> Result<NaiveDate, CalendarError> {
        let first = NaiveDate::from_ymd_opt(year, month, 1).ok_or(CalendarError::OutOfRange)?;
        let day = self.next_working_day(first)?;
        self.in_month(day, year, month)
    }

    /// The last working day of a month (`NoWorkingDay` if it has none).
    pub fn last_working_day_of_month(
        &self,
        year: i32,
        month: u32,
    ) -> Result<NaiveDate, CalendarError> {
        let last = last_day_of_month(year, month).ok_or(CalendarError::OutOfRange)?;
        let day = self.previous_working_day(last)?;
        self.in_month(day, year, month)
    }

    /// Opening intervals of a date (empty when closed), as UTC instants.
    pub fn hours_on(&self, date: NaiveDate) -> Result<Vec<Opening>, CalendarError> {
        if !self.is_working_day(date)? {
            return Ok(Vec::new());
        }
        self.hours
            .iter()
            .map(|i| Ok((self.instant(date, i.from)?, self.instant(date, i.to)?)))
            .collect()
    }

    /// Working days strictly after `from` up to and including `to`. When `to` is before
    /// `from`, the same count for the other order, negated.
    pub fn working_days_between(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<i64, CalendarError> {
        if to < from {
            return self.working_days_between(to, from).map(|n| -n);
        }
        let days = to.signed_duration_since(from).num_days();
        let mut count = 0;
        let mut day = from;
        let mut left = days;
        if self.holidays.is_none() {
            // Whole weeks all count the same.
            let per_week = self.week.iter().filter(|w| **w).count() as i64;
            count = days / 7 * per_week;
            left = days % 7;
            day = add_days(day, days - left)?;
        }
        for _ in 0..left {
            day = add_days(day, 1)?;
            if self.is_working_day(day)? {
                count += 1;
            }
        }
        Ok(count)
    }

    /// The opening hours of a full working day, in minutes.
    pub fn working_minutes_per_day(&self) -> i64 {
        self.hours
            .iter()
            .map(|i| i64::from(i.to.saturating_sub(i.from)))
            .sum()
    }

    /// The working time from `from` to `to`, in minutes: the opening hours of the working days
    /// between them (negative when `to` is before `from`). At most [`MAX_SPAN_DAYS`] days are
    /// counted, enough for any deadline a person reads.
    pub fn working_minutes_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<i64, CalendarError> {
        if to < from {
            return self.working_minutes_between(to, from).map(|n| -n);
        }
        let mut day = self.local_naive(from)?.date();
        let last = self.local_naive(to)?.date();
        let mut total = 0;
        for _ in 0..=MAX_SPAN_DAYS {
            for (open, close) in self.hours_on(day)? {
                let start = open.max(from);
                let end = close.min(to);
                if end > start {
                    total += (end - start).num_minutes();
                }
            }
            if day >= last {
                break;
            }
            day = add_days(day, 1)?;
        }
        Ok(total)
    }

    /// The error for a year without holiday data, if `year` is one.
    fn check_year(&self, year: i32) -> Result<(), CalendarError> {
        match &self.holidays {
            Some(table) if !self.covers(year) => Err(CalendarError::YearNotCovered {
                calendar: table.owner.clone(),
                year,
            }),
            _ => Ok(()),
        }
    }

    fn day_kind(&self, date: NaiveDate) -> Option<&DayKind> {
        self.holidays.as_ref()?.days.get(&date)
    }

    fn in_month(&self, day: NaiveDate, year: i32, month: u32) -> Result<NaiveDate, CalendarError> {
        if day.year() == year && day.month() == month {
            Ok(day)
        } else {
            Err(CalendarError::NoWorkingDay {
                calendar: self.id.clone(),
                year,
                month,
            })
        }
    }

    /// Local `date` at `minutes` after midnight (1440 is the next midnight), as UTC.
    fn instant(&self, date: NaiveDate, minutes: u32) -> Result<DateTime<Utc>, CalendarError> {
        date.and_time(NaiveTime::MIN)
            .checked_add_signed(TimeDelta::minutes(i64::from(minutes)))
            .and_then(|local| local.checked_sub_offset(self.offset))
            .map(|utc| utc.and_utc())
            .ok_or(CalendarError::OutOfRange)
    }

    fn working_weekdays(&self) -> u32 {
        self.week.iter().filter(|w| **w).count() as u32
    }
}

/// The last day of a month, if the month exists.
pub(crate) fn last_day_of_month(year: i32, month: u32) -> Option<NaiveDate> {
    let (y, m) = if month == 12 {
        (year.checked_add(1)?, 1)
    } else {
        (year, month.checked_add(1)?)
    };
    NaiveDate::from_ymd_opt(year, month, 1)?;
    NaiveDate::from_ymd_opt(y, m, 1)?.pred_opt()
}

fn add_days(date: NaiveDate, days: i64) -> Result<NaiveDate, CalendarError> {
    let d = Days::new(days.unsigned_abs());
    if days >= 0 {
        date.checked_add_days(d)
    } else {
        date.checked_sub_days(d)
    }
    .ok_or(CalendarError::OutOfRange)
}

#[cfg(test)]
mod tests;
