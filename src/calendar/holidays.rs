//! The `years` and `holidays` of a calendar file: each year's section, each holiday period
//! and its make-up working days, checked into the [`HolidayTable`] that answers "is this a
//! working day". A year inside `years` without a section is an error (E012), never a year in
//! which every weekday silently works.

use super::file::{CalendarFile, Out, PeriodFile};
use super::{CalendarYear, DayKind, HolidayTable};
use crate::definition::located::Located;
use crate::diagnostic::{Code, Span};
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
            "holidays are given for a calendar that does not observe them",
            "remove `observes_holidays: false`, or remove `years` and `holidays`",
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
                "`holidays` without `years`",
                "add `years: FIRST..LAST` naming the years the holidays cover, for example `years: 2025..2027`",
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
                format!("`{}` is not a year", key.as_str()),
                "each section of `holidays` is a year, for example `2026:`",
            );
            continue;
        };
        if !(first..=last).contains(&year) {
            out.push(
                Code::InvalidValue,
                key.span,
                format!(
                    "the {year} section is outside `years: {}`",
                    years_text.as_str()
                ),
                format!("widen `years` to include {year}, or remove the section"),
            );
            continue;
        }
        seen.insert(year, ());
        if section.provisional {
            let note = section
                .note
                .as_deref()
                .map_or(String::new(), |n| format!(": {n}"));
            out.push(
                Code::ProvisionalCalendar,
                key.span,
                format!("the {year} holidays of calendar `{}` are provisional{note}", raw.id.as_str()),
                format!("replace them with the State Council's notice on {year}'s holidays when it is published, then remove `provisional: true`"),
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
                format!("`years: {}` includes {year}, but `holidays` has no {year} section", years_text.as_str()),
                format!("add a `{year}:` section from the State Council's notice on {year}'s holidays (if it is not yet published, the statutory holidays with `provisional: true`), or end `years` before {year}"),
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
            format!("`{}` is not a range of years", text.as_str()),
            "write the first and last year with `..` between them, for example `years: 2025..2027`, or one year",
        ),
        Some((a, b)) if b < a || b - a >= MAX_YEARS => out.push(
            Code::InvalidValue,
            text.span,
            format!("`{}` is not a usable range of years", text.as_str()),
            format!("write the earlier year first, and cover at most {MAX_YEARS} years"),
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
                format!("{date} is outside its section, {year}"),
                format!(
                    "move the period to the {} section, or correct the year",
                    date.year()
                ),
            );
            return;
        }
    }
    let length = to.signed_duration_since(from).num_days();
    if !(0..MAX_PERIOD_DAYS).contains(&length) {
        out.push(
            Code::InvalidValue,
            to_span,
            format!("{name} runs from {from} to {to}"),
            format!("`to` is the last day off, on or after `from` and within {MAX_PERIOD_DAYS} days of it"),
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
                format!("{date} is given twice: for {other} and for {name}"),
                "a day is either a holiday or a make-up working day, in one period only",
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
                format!("the make-up day {date} is far from {name} ({from} to {to})"),
                format!("a make-up working day lies within {MAKE_UP_REACH} days of its holiday; check the date"),
            );
            continue;
        }
        if let Some(DayKind::Holiday(other) | DayKind::MakeUp(other)) =
            days.insert(date, DayKind::MakeUp(name.clone()))
        {
            out.push(
                Code::InvalidValue,
                make_up.span,
                format!("{date} is both a day of {other} and a make-up working day for {name}"),
                "a day is either a holiday or a make-up working day; check the notice",
            );
            continue;
        }
        make_ups.push((date, make_up.span));
    }
}
