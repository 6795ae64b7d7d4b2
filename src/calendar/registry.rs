//! The registry of calendars by id: the built-in files, a folder that overrides and extends
//! them, and the resolution of `extends`.
//!
//! The shipped `calendars/*.yaml` are embedded at compile time, so the library answers working
//! day questions without the folder; a folder read at run time replaces a built-in calendar of
//! the same id (a new year's holidays need no rebuild). A calendar that `extends` another takes
//! every setting it does not give itself from it, holidays included.

use super::file::{self, Draft};
use super::{Calendar, HolidayTable, Interval};
use crate::diagnostic::{Code, Diagnostic, Span, suggestion_text};
use crate::i18n::text;
use chrono::{FixedOffset, Offset, Utc};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// The shipped calendar files, as (path, text).
const BUILTIN: [(&str, &str); 3] = [
    (
        "calendars/cn_mainland.yaml",
        include_str!("../../calendars/cn_mainland.yaml"),
    ),
    (
        "calendars/finance_desk.yaml",
        include_str!("../../calendars/finance_desk.yaml"),
    ),
    (
        "calendars/supermarket.yaml",
        include_str!("../../calendars/supermarket.yaml"),
    ),
];

/// Calendars by id.
#[derive(Debug, Clone)]
pub struct Calendars {
    by_id: BTreeMap<String, Arc<Calendar>>,
    default: Arc<Calendar>,
}

/// The built-in calendars ([`Calendars::builtin`]), never an empty registry.
impl Default for Calendars {
    fn default() -> Self {
        Calendars::builtin()
    }
}

impl Calendars {
    /// The calendar used where a workflow names none.
    pub const DEFAULT: &'static str = "cn_mainland";

    /// The calendars shipped in `calendars/`, embedded at compile time. A test guarantees they
    /// load without error; were they ever not to, the registry holds a `cn_mainland` without
    /// holiday years, so that every working-day question fails with `YearNotCovered` rather
    /// than being answered wrongly.
    pub fn builtin() -> Calendars {
        static BUILT: OnceLock<Calendars> = OnceLock::new();
        BUILT
            .get_or_init(|| match Calendars::from_texts(Vec::new()) {
                Ok((calendars, _)) => calendars,
                Err(_) => Calendars::fallback(),
            })
            .clone()
    }

    /// The built-in calendars, overridden (by id) and extended by every `*.yaml` in `dir`.
    /// Err when any file has an error (the list then holds the warnings too); warnings such as
    /// W405 come back with Ok.
    pub fn load(dir: &Path) -> Result<(Calendars, Vec<Diagnostic>), Vec<Diagnostic>> {
        let unreadable = |path: &Path, e: std::io::Error| {
            Diagnostic::new(
                Code::Io,
                path,
                Span::START,
                text!("diag-cannot-read", detail = e.to_string()),
                text!("hint-cannot-read-calendar"),
            )
        };
        let entries = std::fs::read_dir(dir).map_err(|e| vec![unreadable(dir, e)])?;
        let mut paths = Vec::new();
        for entry in entries {
            let path = entry.map_err(|e| vec![unreadable(dir, e)])?.path();
            if path.extension().is_some_and(|x| x == "yaml") && path.is_file() {
                paths.push(path);
            }
        }
        paths.sort();
        let mut texts = Vec::new();
        let mut problems = Vec::new();
        for path in paths {
            match std::fs::metadata(&path) {
                Ok(m) if m.len() > crate::definition::MAX_FILE_BYTES => {
                    problems.push(Diagnostic::new(
                        Code::ResourceLimit,
                        &path,
                        Span::START,
                        text!("diag-calendar-too-large", size = m.len()),
                        text!("hint-calendar-too-large"),
                    ))
                }
                _ => match std::fs::read_to_string(&path) {
                    Ok(text) => texts.push((path, text)),
                    Err(e) => problems.push(unreadable(&path, e)),
                },
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Calendars::from_texts(texts)
    }

    /// As [`Calendars::load`], from (path, text) pairs: the built-in calendars overridden and
    /// extended by these files.
    pub fn from_texts(
        files: Vec<(PathBuf, String)>,
    ) -> Result<(Calendars, Vec<Diagnostic>), Vec<Diagnostic>> {
        let mut found = Vec::new();
        let mut given: Vec<Draft> = Vec::new();
        for (path, text) in &files {
            let (draft, diagnostics) = file::read(path, text);
            found.extend(diagnostics);
            given.extend(draft);
        }
        let mut by_id: BTreeMap<String, Draft> = BTreeMap::new();
        for draft in given {
            if let Some(first) = by_id.get(draft.id.as_str()) {
                found.push(Diagnostic::new(
                    Code::Duplicate,
                    &draft.file,
                    draft.id.span,
                    text!(
                        "diag-duplicate-calendar",
                        calendar = draft.id.as_str(),
                        file = first.file.display().to_string()
                    ),
                    text!("hint-duplicate-calendar"),
                ));
                continue;
            }
            by_id.insert(draft.id.value.clone(), draft);
        }
        for (path, text) in BUILTIN {
            let (draft, diagnostics) = file::read(Path::new(path), text);
            match draft {
                Some(d) if !by_id.contains_key(d.id.as_str()) => {
                    found.extend(diagnostics);
                    by_id.insert(d.id.value.clone(), d);
                }
                Some(_) => {}
                None => found.extend(diagnostics),
            }
        }
        let mut calendars = BTreeMap::new();
        for id in by_id.keys() {
            if let Some(calendar) = resolve(id, &by_id, &mut found) {
                calendars.insert(id.clone(), Arc::new(calendar));
            }
        }
        found.sort_by(|a, b| {
            (&a.file, a.span.line, a.span.column).cmp(&(&b.file, b.span.line, b.span.column))
        });
        found.dedup();
        if found.iter().any(Diagnostic::is_error) {
            return Err(found);
        }
        let default = match calendars.get(Calendars::DEFAULT) {
            Some(c) => Arc::clone(c),
            None => Calendars::fallback().default,
        };
        Ok((
            Calendars {
                by_id: calendars,
                default,
            },
            found,
        ))
    }

    /// The calendar with this id, if one is loaded.
    pub fn get(&self, id: &str) -> Option<Arc<Calendar>> {
        self.by_id.get(id).cloned()
    }

    /// The ids, in order.
    pub fn ids(&self) -> impl Iterator<Item = &str> + Clone {
        self.by_id.keys().map(String::as_str)
    }

    /// The `cn_mainland` calendar.
    pub fn default_calendar(&self) -> Arc<Calendar> {
        Arc::clone(&self.default)
    }

    /// A `cn_mainland` that knows no holiday year: every working-day question is an error.
    fn fallback() -> Calendars {
        let offset = FixedOffset::east_opt(8 * 3600).unwrap_or(Utc.fix());
        let calendar = Arc::new(Calendar::new(
            Calendars::DEFAULT.to_string(),
            "中国大陆工作日历".to_string(),
            offset,
            [true, true, true, true, true, false, false],
            vec![Interval {
                from: 9 * 60,
                to: 18 * 60,
            }],
            Some(Arc::new(HolidayTable {
                owner: Calendars::DEFAULT.to_string(),
                years: Vec::new(),
                days: BTreeMap::new(),
            })),
        ));
        Calendars {
            by_id: BTreeMap::from([(Calendars::DEFAULT.to_string(), Arc::clone(&calendar))]),
            default: calendar,
        }
    }
}

/// Builds calendar `id` from its draft and the chain of drafts it extends.
fn resolve(
    id: &str,
    drafts: &BTreeMap<String, Draft>,
    found: &mut Vec<Diagnostic>,
) -> Option<Calendar> {
    let own = drafts.get(id)?;
    // The chain: the draft itself, then what it extends, and so on.
    let mut chain = vec![own];
    while let Some(parent) = &chain[chain.len() - 1].extends {
        let child = chain[chain.len() - 1];
        let Some(next) = drafts.get(parent.as_str()) else {
            found.push(Diagnostic::new(
                Code::UnknownCalendar,
                &child.file,
                parent.span,
                text!(
                    "diag-extends-unknown",
                    calendar = child.id.as_str(),
                    parent = parent.as_str()
                ),
                suggestion_text(parent.as_str(), drafts.keys().map(String::as_str)),
            ));
            return None;
        };
        if chain.iter().any(|d| d.id.as_str() == next.id.as_str()) {
            found.push(Diagnostic::new(
                Code::InvalidValue,
                &child.file,
                parent.span,
                text!(
                    "diag-extends-cycle",
                    first = child.id.as_str(),
                    second = next.id.as_str()
                ),
                text!("hint-extends-cycle"),
            ));
            return None;
        }
        chain.push(next);
    }
    let missing = |key: &str, found: &mut Vec<Diagnostic>| {
        let (message, hint) = match key {
            "holidays" => (
                text!("diag-calendar-holidays-missing", calendar = id),
                text!("hint-calendar-holidays-missing"),
            ),
            key => (
                text!("diag-calendar-key-missing", calendar = id, key = key),
                text!("hint-calendar-key-missing", key = key),
            ),
        };
        found.push(Diagnostic::new(
            Code::MissingKey,
            &own.file,
            own.id.span,
            message,
            hint,
        ));
    };
    let offset = chain.iter().find_map(|d| d.offset);
    let week = chain.iter().find_map(|d| d.week);
    let hours: Option<Vec<Interval>> = chain.iter().find_map(|d| d.hours.clone());
    let observes = chain
        .iter()
        .find_map(|d| d.observes_holidays)
        .unwrap_or(true);
    let holidays = chain.iter().find(|d| d.holidays.is_some());
    let absent = [
        ("timezone", offset.is_none()),
        ("working_week", week.is_none()),
        ("hours", hours.is_none()),
    ];
    let (Some(offset), Some(week), Some(hours)) = (offset, week, hours) else {
        for (key, _) in absent.iter().filter(|(_, a)| *a) {
            missing(key, found);
        }
        return None;
    };
    let table = match (observes, holidays) {
        (false, _) => None,
        (true, None) => {
            missing("holidays", found);
            return None;
        }
        (true, Some(owner)) => {
            // Make-up days are checked in the file that lists them, against its working week.
            if std::ptr::eq(*owner, own) {
                check_make_up_days(own, &week, found);
            }
            owner.holidays.clone().map(Arc::new)
        }
    };
    Some(Calendar::new(
        id.to_string(),
        own.title.clone(),
        offset,
        week,
        hours,
        table,
    ))
}

/// A make-up working day on a day that is a working day anyway is a wrong date.
fn check_make_up_days(draft: &Draft, week: &[bool; 7], found: &mut Vec<Diagnostic>) {
    use chrono::Datelike;
    for (date, span) in &draft.make_up_spans {
        if week[date.weekday().num_days_from_monday() as usize] {
            found.push(Diagnostic::new(
                Code::InvalidValue,
                &draft.file,
                *span,
                text!(
                    "diag-make-up-on-working-day",
                    date = date.to_string(),
                    weekday = date.format("%A").to_string()
                ),
                text!("hint-make-up-on-working-day"),
            ));
        }
    }
}
