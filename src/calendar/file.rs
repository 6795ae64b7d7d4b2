//! The calendar data file (`calendars/*.yaml`): its serde format, and reading one file into a
//! checked `Draft` with a diagnostic, located at line and column, for every mistake.
//!
//! A file checks what it can on its own here: dates exist, periods lie in their year, no day
//! is both a holiday and a make-up day, hours do not overlap, every year in `years` has a
//! section. What needs other files (`extends`, duplicate ids, the working week a make-up day
//! is checked against) is the registry's job.
//!
//! ```yaml
//! id: cn_mainland
//! title: 中国大陆工作日历
//! timezone: "+08:00"
//! working_week: [monday, tuesday, wednesday, thursday, friday]
//! hours: [{from: "09:00", to: "18:00"}]
//! years: 2026..2026
//! holidays:
//!   2026:
//!     source: 国务院办公厅关于2026年部分节假日安排的通知
//!     periods:
//!       - {name: 春节, from: 2026-02-15, to: 2026-02-23, make_up: [2026-02-14, 2026-02-28]}
//! ```

use super::holidays::read_holidays;
use super::{HolidayTable, Interval, Weekday, yaml};
use crate::definition::located::{Entries, Located};
use crate::diagnostic::{Code, Diagnostic, Span};
use crate::i18n::{Text, text};
use chrono::{Datelike, FixedOffset, NaiveDate};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// A calendar file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CalendarFile {
    pub id: Located<String>,
    pub title: String,
    #[serde(default)]
    pub extends: Option<Located<String>>,
    #[serde(default)]
    pub timezone: Option<Located<String>>,
    #[serde(default)]
    pub working_week: Option<Located<Vec<Weekday>>>,
    #[serde(default)]
    pub hours: Option<Located<Vec<Located<HoursFile>>>>,
    #[serde(default)]
    pub observes_holidays: Option<bool>,
    #[serde(default)]
    pub years: Option<Located<String>>,
    #[serde(default)]
    pub holidays: Option<Located<Entries<YearFile>>>,
}

/// One opening interval, `{from: "09:00", to: "18:00"}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HoursFile {
    pub from: Located<String>,
    pub to: Located<String>,
}

/// One year's holidays and the notice they come from.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct YearFile {
    pub source: String,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub provisional: bool,
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default)]
    pub periods: Vec<Located<PeriodFile>>,
}

/// One holiday period: `{name: 春节, from: 2026-02-15, to: 2026-02-23, make_up: [..]}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PeriodFile {
    pub name: String,
    pub from: Located<String>,
    /// The last day off; a one-day holiday may leave it out.
    #[serde(default)]
    pub to: Option<Located<String>>,
    #[serde(default)]
    pub make_up: Vec<Located<String>>,
}

/// A file read and checked on its own; unset settings come from the calendar it extends.
#[derive(Debug, Clone)]
pub(crate) struct Draft {
    pub file: PathBuf,
    pub id: Located<String>,
    pub title: String,
    pub extends: Option<Located<String>>,
    pub offset: Option<FixedOffset>,
    pub week: Option<[bool; 7]>,
    pub hours: Option<Vec<Interval>>,
    pub observes_holidays: Option<bool>,
    pub holidays: Option<HolidayTable>,
    /// Make-up days and where they are written, for the working-week check.
    pub make_up_spans: Vec<(NaiveDate, Span)>,
}

/// Reads one calendar file. Errors and warnings (W405) come back together; the draft only
/// when there is no error.
pub(crate) fn read(file: &Path, text: &str) -> (Option<Draft>, Vec<Diagnostic>) {
    let raw: CalendarFile = match yaml::parse(file, text) {
        Ok(raw) => raw,
        Err(d) => return (None, vec![*d]),
    };
    let mut out = Out {
        file,
        found: Vec::new(),
    };
    let id = raw.id.clone();
    if !is_identifier(&id) {
        out.push(
            Code::BadIdentifier,
            id.span,
            text!("diag-calendar-id", id = id.as_str()),
            text!("hint-calendar-id"),
        );
    }
    let offset = raw.timezone.as_ref().and_then(|tz| {
        let parsed = tz.parse::<FixedOffset>().ok();
        if parsed.is_none() {
            out.push(
                Code::WrongType,
                tz.span,
                text!("diag-utc-offset", value = tz.as_str()),
                text!("hint-utc-offset"),
            );
        }
        parsed
    });
    let week = raw.working_week.as_ref().map(|days| {
        let mut week = [false; 7];
        for day in days.iter() {
            week[day.to_chrono().num_days_from_monday() as usize] = true;
        }
        if days.is_empty() {
            out.push(
                Code::InvalidValue,
                days.span,
                text!("diag-empty-working-week"),
                text!("hint-empty-working-week"),
            );
        }
        week
    });
    let hours = raw.hours.as_ref().map(|h| read_hours(h, &mut out));
    let mut make_up_spans = Vec::new();
    let holidays = read_holidays(&raw, &mut out, &mut make_up_spans);
    let failed = out.found.iter().any(Diagnostic::is_error);
    let draft = Draft {
        file: file.to_path_buf(),
        id,
        title: raw.title,
        extends: raw.extends,
        offset,
        week,
        hours,
        observes_holidays: raw.observes_holidays,
        holidays,
        make_up_spans,
    };
    (if failed { None } else { Some(draft) }, out.found)
}

/// Diagnostics found so far in one file.
pub(super) struct Out<'a> {
    file: &'a Path,
    found: Vec<Diagnostic>,
}

impl Out<'_> {
    pub(super) fn push(&mut self, code: Code, span: Span, message: Text, hint: Text) {
        let span = Span {
            len: span.len.max(1),
            ..span
        };
        self.found
            .push(Diagnostic::new(code, self.file, span, message, hint));
    }

    pub(super) fn date(&mut self, text: &Located<String>) -> Option<NaiveDate> {
        let date = NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").ok();
        if date.is_none() {
            self.push(
                Code::WrongType,
                text.span,
                match days_in_month(text.trim()) {
                    Some((month, days)) => text!(
                        "diag-not-a-date-month",
                        value = text.as_str(),
                        month = month,
                        days = days
                    ),
                    None => text!("diag-not-a-date", value = text.as_str()),
                },
                text!("hint-not-a-date"),
            );
        }
        date
    }

    fn time(&mut self, text: &Located<String>, end: bool) -> Option<u32> {
        let minutes = minutes_of(text.trim(), end);
        if minutes.is_none() {
            self.push(
                Code::WrongType,
                text.span,
                text!("diag-not-a-time", value = text.as_str()),
                text!("hint-not-a-time"),
            );
        }
        minutes
    }
}

fn read_hours(hours: &Located<Vec<Located<HoursFile>>>, out: &mut Out) -> Vec<Interval> {
    if hours.is_empty() {
        out.push(
            Code::InvalidValue,
            hours.span,
            text!("diag-no-opening-hours"),
            text!("hint-no-opening-hours"),
        );
    }
    let mut intervals: Vec<(Interval, Span)> = Vec::new();
    for h in hours.iter() {
        let (Some(from), Some(to)) = (out.time(&h.from, false), out.time(&h.to, true)) else {
            continue;
        };
        if to <= from {
            out.push(
                Code::InvalidValue,
                h.to.span,
                text!(
                    "diag-interval-backwards",
                    to = h.to.as_str(),
                    from = h.from.as_str()
                ),
                text!("hint-interval-backwards"),
            );
            continue;
        }
        intervals.push((Interval { from, to }, h.span));
    }
    intervals.sort_by_key(|(i, _)| i.from);
    for pair in intervals.windows(2) {
        if pair[1].0.from < pair[0].0.to {
            out.push(
                Code::InvalidValue,
                pair[1].1,
                text!("diag-hours-overlap"),
                text!("hint-hours-overlap"),
            );
        }
    }
    intervals.into_iter().map(|(i, _)| i).collect()
}

/// `HH:MM` as minutes after midnight; `24:00` only for the end of an interval.
fn minutes_of(text: &str, end: bool) -> Option<u32> {
    let (h, m) = text.split_once(':')?;
    let digits = |s: &str, max_len| {
        !s.is_empty() && s.len() <= max_len && s.bytes().all(|b| b.is_ascii_digit())
    };
    if !digits(h, 2) || !digits(m, 2) || m.len() != 2 {
        return None;
    }
    let (h, m) = (h.parse::<u32>().ok()?, m.parse::<u32>().ok()?);
    match (h, m) {
        (24, 0) if end => Some(24 * 60),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

/// ("2026-02", 28) for a day its month does not have.
fn days_in_month(text: &str) -> Option<(String, u32)> {
    let mut parts = text.split('-').map(|p| p.parse::<u32>().ok());
    if let (Some(Some(y)), Some(Some(m)), Some(Some(_)), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
        && let Some(last) = i32::try_from(y)
            .ok()
            .and_then(|y| super::last_day_of_month(y, m))
    {
        return Some((format!("{y}-{m:02}"), last.day()));
    }
    None
}

fn is_identifier(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
#[path = "file_tests.rs"]
mod tests;
