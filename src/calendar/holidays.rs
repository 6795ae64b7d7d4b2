//! The `years` and `holidays` of a calendar file: each year's section, each holiday period
//! and its make-up working days, checked into the [`HolidayTable`] that answers "is this a
//! working day". A year inside `years` without a section is an error (E012), never a year in
//! which every weekday silently works.

use super::file::{CalendarFile, Out, PeriodFile};
use super::{CalendarYear, DayKind, HolidayTable};
use crate::definition::located::Located;
use crate::diagnostic::{Code, Span};
use crate::i18n::text;
use chrono::{Datelike, NaiveDate};
use std::collections::BTreeMap;

/// Years a file may cover at most; a longer range is surely a typo (`2025..20270`).
const MAX_YEARS: i32 = 100;
/// How far a make-up day may lie from its holiday period, in days. A make-up day may fall in
/// the year before (元旦 2019 was made up on 2018-12-29), so it is not held to its section.
const MAKE_UP_REACH: i64 = 31;
/// The longest holiday period accepted, in days.
const MAX_PERIOD_DAYS: i64 = 31;

pub(super) fn read_holidays(
    raw: &CalendarFile,
    out: &mut Out,
    make_ups: &mut Vec<(NaiveDate, Span)>,
) -> Option<HolidayTable> {
    if raw.observes_holidays == Some(false) && (raw.holidays.is_some() || raw.years.is_some()) {
        let span = raw
            .holidays
            .as_ref()
            .map_or_else(|| raw.id.span, |h| h.span);
        out.push(
            Code::InvalidValue,
            span,
            text!("diag-holidays-not-observed"),
            text!("hint-holidays-not-observed"),
        );
        return None;
    }
    let sections = match (&raw.years, &raw.holidays) {
        (None, None) => return None,
        (Some(years), None) => (years, None),
        (Some(years), Some(h)) => (years, Some(h)),
        (None, Some(h)) => {
            out.push(
                Code::MissingKey,
                h.span,
                text!("diag-holidays-without-years"),
                text!("hint-holidays-without-years"),
            );
            return None;
        }
    };
    let (years_text, sections) = sections;
    let (first, last) = year_range(years_text, out)?;
    let mut table = HolidayTable {
        owner: raw.id.value.clone(),
        years: Vec::new(),
        days: BTreeMap::new(),
    };
    let mut seen = BTreeMap::new();
    for (key, section) in sections.iter().flat_map(|s| s.iter()) {
        let Ok(year) = key.trim().parse::<i32>() else {
            out.push(
                Code::WrongType,
                key.span,
                text!("diag-not-a-year", value = key.as_str()),
                text!("hint-not-a-year"),
            );
            continue;
        };
        if !(first..=last).contains(&year) {
            out.push(
                Code::InvalidValue,
                key.span,
                text!(
                    "diag-year-outside-range",
                    year = year,
                    years = years_text.as_str()
                ),
                text!("hint-year-outside-range", year = year),
            );
            continue;
        }
        seen.insert(year, ());
        if section.provisional {
            out.push(
                Code::ProvisionalCalendar,
                key.span,
                match &section.note {
                    Some(note) => text!(
                        "diag-provisional-year-note",
                        year = year,
                        calendar = raw.id.as_str(),
                        note = note
                    ),
                    None => text!(
                        "diag-provisional-year",
                        year = year,
                        calendar = raw.id.as_str()
                    ),
                },
                text!("hint-provisional-year", year = year),
            );
        }
        table.years.push(CalendarYear {
            year,
            provisional: section.provisional,
            source: section.source.clone(),
            url: section.url.clone(),
            note: section.note.clone(),
        });
        for period in &section.periods {
            read_period(year, period, &mut table.days, make_ups, out);
        }
    }
    for year in first..=last {
        if !seen.contains_key(&year) {
            out.push(
                Code::CalendarYearMissing,
                years_text.span,
                text!(
                    "diag-year-missing",
                    years = years_text.as_str(),
                    year = year
                ),
                text!("hint-year-missing", year = year),
            );
        }
    }
    table.years.sort_by_key(|y| y.year);
    Some(table)
}

fn year_range(text: &Located<String>, out: &mut Out) -> Option<(i32, i32)> {
    let value = text.trim();
    let (a, b) = value.split_once("..").unwrap_or((value, value));
    let range = a
        .trim()
        .parse::<i32>()
        .ok()
        .zip(b.trim().parse::<i32>().ok());
    match range {
        None => out.push(
            Code::WrongType,
            text.span,
            text!("diag-not-a-year-range", value = text.as_str()),
            text!("hint-not-a-year-range"),
        ),
        Some((a, b)) if b < a || b - a >= MAX_YEARS => out.push(
            Code::InvalidValue,
            text.span,
            text!("diag-bad-year-range", value = text.as_str()),
            text!("hint-bad-year-range", max = MAX_YEARS),
        ),
        Some(range) => return Some(range),
    }
    None
}

fn read_period(
    year: i32,
    period: &Located<PeriodFile>,
    days: &mut BTreeMap<NaiveDate, DayKind>,
    make_ups: &mut Vec<(NaiveDate, Span)>,
    out: &mut Out,
) {
    let from = out.date(&period.from);
    let to = match &period.to {
        Some(to) => out.date(to).map(|d| (d, to.span)),
        None => from.map(|d| (d, period.from.span)),
    };
    let (Some(from), Some((to, to_span))) = (from, to) else {
        return;
    };
    let name = &period.name;
    for (date, span) in [(from, period.from.span), (to, to_span)] {
        if date.year() != year {
            out.push(
                Code::InvalidValue,
                span,
                text!(
                    "diag-date-outside-section",
                    date = date.to_string(),
                    year = year
                ),
                text!("hint-date-outside-section", year = date.year()),
            );
            return;
        }
    }
    let length = to.signed_duration_since(from).num_days();
    if !(0..MAX_PERIOD_DAYS).contains(&length) {
        out.push(
            Code::InvalidValue,
            to_span,
            text!(
                "diag-period-backwards",
                name = name,
                from = from.to_string(),
                to = to.to_string()
            ),
            text!("hint-period-backwards", max = MAX_PERIOD_DAYS),
        );
        return;
    }
    for date in from.iter_days().take_while(|d| *d <= to) {
        if let Some(DayKind::Holiday(other) | DayKind::MakeUp(other)) =
            days.insert(date, DayKind::Holiday(name.clone()))
        {
            out.push(
                Code::InvalidValue,
                period.span,
                text!(
                    "diag-day-twice",
                    date = date.to_string(),
                    other = &other,
                    name = name
                ),
                text!("hint-day-twice"),
            );
        }
    }
    for make_up in &period.make_up {
        let Some(date) = out.date(make_up) else {
            continue;
        };
        let before = from.signed_duration_since(date).num_days();
        let after = date.signed_duration_since(to).num_days();
        if before > MAKE_UP_REACH || after > MAKE_UP_REACH {
            out.push(
                Code::InvalidValue,
                make_up.span,
                text!(
                    "diag-make-up-far",
                    date = date.to_string(),
                    name = name,
                    from = from.to_string(),
                    to = to.to_string()
                ),
                text!("hint-make-up-far", max = MAKE_UP_REACH),
            );
            continue;
        }
        if let Some(DayKind::Holiday(other) | DayKind::MakeUp(other)) =
            days.insert(date, DayKind::MakeUp(name.clone()))
        {
            out.push(
                Code::InvalidValue,
                make_up.span,
                text!(
                    "diag-make-up-on-holiday",
                    date = date.to_string(),
                    other = &other,
                    name = name
                ),
                text!("hint-make-up-on-holiday"),
            );
            continue;
        }
        make_ups.push((date, make_up.span));
    }
}
