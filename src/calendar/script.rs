//! The calendar in rhai scripts: `calendar.add(now, "7 working days")`.
//!
//! Scripts see instants as RFC 3339 strings (`now` is `"2026-03-02T01:30:00Z"`) and dates as
//! `"YYYY-MM-DD"`. Every method accepts either (a date means local midnight) and answers in
//! the calendar's own offset (`"2026-03-11T09:30:00+08:00"`) or as a date. Bad input is a
//! runtime error that says what was wrong and what is accepted; nothing here reads the clock.

use super::{Calendar, CalendarError};
use crate::definition::duration::{Duration, UNITS_HINT, Unit};
use chrono::{DateTime, NaiveDate, NaiveTime, SecondsFormat, Utc};
use rhai::{Dynamic, Engine, EvalAltResult, INT, Position};
use std::sync::Arc;

/// A calendar as a rhai value (type name `Calendar`); cloning shares the calendar.
#[derive(Debug, Clone)]
pub struct CalendarHandle(pub Arc<Calendar>);

type Answer<T> = Result<T, Box<EvalAltResult>>;

/// Registers the `Calendar` type and its methods on `engine`.
pub fn register(engine: &mut Engine) {
    engine
        .register_type_with_name::<CalendarHandle>("Calendar")
        .register_get("id", |c: &mut CalendarHandle| c.0.id().to_string())
        .register_fn("to_string", |c: &mut CalendarHandle| {
            format!("Calendar({})", c.0.id())
        })
        .register_fn("to_debug", |c: &mut CalendarHandle| {
            format!("Calendar({})", c.0.id())
        })
        .register_fn(
            "add",
            |c: &mut CalendarHandle, t: &str, duration: &str| -> Answer<String> {
                let d: Duration = duration.parse().map_err(|e| {
                    error(format!(
                        "`{duration}` is not a duration ({e}): {UNITS_HINT}"
                    ))
                })?;
                let start = c.instant(t)?;
                c.show(c.0.add(start, d).map_err(failed)?)
            },
        )
        .register_fn(
            "before",
            |c: &mut CalendarHandle, t: &str, duration: &str| -> Answer<String> {
                // "10 minutes before closing" (送宾前10分钟): elapsed time only, since a
                // working day or a month back has no single meaning here.
                let d: Duration = duration.parse().map_err(|e| {
                    error(format!(
                        "`{duration}` is not a duration ({e}): {UNITS_HINT}"
                    ))
                })?;
                let minutes = match d.unit {
                    Unit::Minutes => i64::from(d.amount),
                    Unit::Hours => i64::from(d.amount) * 60,
                    Unit::Days => i64::from(d.amount) * 24 * 60,
                    Unit::Weeks => i64::from(d.amount) * 7 * 24 * 60,
                    _ => {
                        return Err(error(format!(
                            "`before` takes minutes, hours, days or weeks, not `{duration}`; count forward with `add`"
                        )));
                    }
                };
                let t = c.instant(t)?;
                let earlier = chrono::TimeDelta::try_minutes(minutes)
                    .and_then(|d| t.checked_sub_signed(d))
                    .ok_or_else(|| failed(CalendarError::OutOfRange))?;
                c.show(earlier)
            },
        )
        .register_fn(
            "is_working_day",
            |c: &mut CalendarHandle, t: &str| -> Answer<bool> {
                c.0.is_working_day(c.date(t)?).map_err(failed)
            },
        )
        .register_fn(
            "next_working_day",
            |c: &mut CalendarHandle, t: &str| -> Answer<String> {
                c.0.next_working_day(c.date(t)?)
                    .map(show_date)
                    .map_err(failed)
            },
        )
        .register_fn(
            "previous_working_day",
            |c: &mut CalendarHandle, t: &str| -> Answer<String> {
                c.0.previous_working_day(c.date(t)?)
                    .map(show_date)
                    .map_err(failed)
            },
        )
        .register_fn(
            "last_working_day_of_month",
            |c: &mut CalendarHandle, t: &str| -> Answer<String> {
                let (y, m) = year_month(c.date(t)?);
                c.0.last_working_day_of_month(y, m)
                    .map(show_date)
                    .map_err(failed)
            },
        )
        .register_fn(
            "first_working_day_of_month",
            |c: &mut CalendarHandle, t: &str| -> Answer<String> {
                let (y, m) = year_month(c.date(t)?);
                c.0.first_working_day_of_month(y, m)
                    .map(show_date)
                    .map_err(failed)
            },
        )
        .register_fn(
            "at",
            |c: &mut CalendarHandle, date: &str, time: &str| -> Answer<String> {
                let time = super::recurrence::parse_time(time).ok_or_else(|| {
                    error(format!(
                        "`{time}` is not a time of day: write \"HH:MM\", for example \"09:30\""
                    ))
                })?;
                c.show(c.0.at(c.date(date)?, time))
            },
        )
        .register_fn(
            "working_days_between",
            |c: &mut CalendarHandle, a: &str, b: &str| -> Answer<INT> {
                c.0.working_days_between(c.date(a)?, c.date(b)?)
                    .map_err(failed)
            },
        )
        .register_fn(
            "opens",
            |c: &mut CalendarHandle, t: &str| -> Answer<Dynamic> {
                let hours = c.0.hours_on(c.date(t)?).map_err(failed)?;
                match hours.first() {
                    Some((open, _)) => c.show(*open).map(Dynamic::from),
                    None => Ok(Dynamic::UNIT),
                }
            },
        )
        .register_fn(
            "closes",
            |c: &mut CalendarHandle, t: &str| -> Answer<Dynamic> {
                let hours = c.0.hours_on(c.date(t)?).map_err(failed)?;
                match hours.last() {
                    Some((_, close)) => c.show(*close).map(Dynamic::from),
                    None => Ok(Dynamic::UNIT),
                }
            },
        )
        .register_fn(
            "date",
            |c: &mut CalendarHandle, t: &str| -> Answer<String> { c.date(t).map(show_date) },
        );
}

impl CalendarHandle {
    /// An RFC 3339 time, or a date meaning its local midnight.
    fn instant(&self, text: &str) -> Answer<DateTime<Utc>> {
        let text = text.trim();
        if let Ok(t) = DateTime::parse_from_rfc3339(text) {
            return Ok(t.with_timezone(&Utc));
        }
        if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            return Ok(self.0.at(d, NaiveTime::MIN));
        }
        Err(error(format!(
            "`{text}` is not a time or a date: write an RFC 3339 time such as \"2026-03-02T09:30:00+08:00\" (or `now`), or a date such as \"2026-03-02\""
        )))
    }

    /// The local date of a time, or a date as given.
    fn date(&self, text: &str) -> Answer<NaiveDate> {
        if let Ok(d) = NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d") {
            return Ok(d);
        }
        let t = self.instant(text)?;
        self.0.local_naive(t).map(|l| l.date()).map_err(failed)
    }

    fn show(&self, t: DateTime<Utc>) -> Answer<String> {
        // Formatting reads the local time, which chrono cannot hold at its very last hours.
        self.0.local_naive(t).map_err(failed)?;
        Ok(self
            .0
            .local(t)
            .to_rfc3339_opts(SecondsFormat::AutoSi, false))
    }
}

fn show_date(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

fn year_month(d: NaiveDate) -> (i32, u32) {
    use chrono::Datelike;
    (d.year(), d.month())
}

fn error(message: String) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(message.into(), Position::NONE))
}

fn failed(e: CalendarError) -> Box<EvalAltResult> {
    error(e.to_string())
}

#[cfg(test)]
#[path = "script_tests.rs"]
mod tests;
