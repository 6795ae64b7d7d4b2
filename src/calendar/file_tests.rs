//! Unit tests of reading calendar files: every mistake is a located diagnostic with a hint.

use crate::calendar::{Calendar, Calendars};
use crate::diagnostic::{Code, Diagnostic};
use chrono::{DateTime, NaiveDate, Utc};
use std::path::PathBuf;

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
}

fn add(cal: &Calendar, start: &str, duration: &str) -> String {
    let start = DateTime::parse_from_rfc3339(start)
        .expect("time")
        .with_timezone(&Utc);
    let end = cal
        .add(start, duration.parse().expect("duration"))
        .expect("computable");
    cal.local(end).to_rfc3339()
}

/// Loads the built-in calendars plus one file; the diagnostics if it fails.
fn with_file(text: &str) -> Result<(Calendars, Vec<Diagnostic>), Vec<Diagnostic>> {
    Calendars::from_texts(vec![(
        PathBuf::from("calendars/test.yaml"),
        text.to_string(),
    )])
}

fn errors_of(text: &str) -> Vec<Diagnostic> {
    with_file(text)
        .err()
        .unwrap_or_else(|| panic!("expected errors for:\n{text}"))
}

const BASE: &str = "id: test\ntitle: 测试\ntimezone: \"+08:00\"\nworking_week: [monday, tuesday, wednesday, thursday, friday]\nhours: [{from: \"09:00\", to: \"18:00\"}]\nyears: 2026..2026\nholidays:\n  2026:\n    source: test\n    periods:\n      - {name: 春节, from: 2026-02-15, to: 2026-02-23, make_up: [2026-02-14, 2026-02-28]}\n";

#[test]
fn a_child_calendar_inherits_what_it_does_not_set() {
    let (calendars, _) = with_file("id: night_desk\ntitle: 夜班\nextends: finance_desk\nhours: [{from: \"18:00\", to: \"24:00\"}]\n").expect("loads");
    let cal = calendars.get("night_desk").expect("declared");
    assert_eq!(cal.is_working_day(d("2026-02-14")), Ok(true));
    assert_eq!(
        add(&cal, "2026-03-09T23:00:00+08:00", "2 working hours"),
        "2026-03-10T19:00:00+08:00"
    );
}

#[test]
fn a_folder_file_overrides_a_builtin_one() {
    let text = BASE.replace("id: test", "id: cn_mainland");
    let (calendars, warnings) = with_file(&text).expect("loads");
    assert!(warnings.is_empty(), "{warnings:?}");
    // The finance desk now inherits the override's holidays: only 2026.
    let desk = calendars.get("finance_desk").expect("builtin");
    assert_eq!(desk.years().len(), 1);
}

#[test]
fn file_mistakes_are_located_diagnostics() {
    let cases: &[(&str, &str, Code, u32)] = &[
        ("from: 2026-02-15", "from: 2026-02-30", Code::WrongType, 11),
        ("to: 2026-02-23", "to: 2026-02-13", Code::InvalidValue, 11),
        ("to: 2026-02-23", "to: 2027-02-23", Code::InvalidValue, 11),
        (
            "make_up: [2026-02-14,",
            "make_up: [2026-02-16,",
            Code::InvalidValue,
            11,
        ),
        (
            "make_up: [2026-02-14,",
            "make_up: [2026-02-13,",
            Code::InvalidValue,
            11,
        ),
        (
            "make_up: [2026-02-14,",
            "make_up: [2026-06-13,",
            Code::InvalidValue,
            11,
        ),
        ("\"18:00\"", "\"8:0\"", Code::WrongType, 5),
        (
            "[{from: \"09:00\", to: \"18:00\"}]",
            "[{from: \"09:00\", to: \"12:00\"}, {from: \"11:00\", to: \"18:00\"}]",
            Code::InvalidValue,
            5,
        ),
        ("to: \"18:00\"", "to: \"08:00\"", Code::InvalidValue, 5),
        (
            "years: 2026..2026",
            "years: 2025..2026",
            Code::CalendarYearMissing,
            6,
        ),
        ("years: 2026..2026", "years: 2026-2027", Code::WrongType, 6),
        ("  2026:\n", "  2027:\n", Code::InvalidValue, 8),
        ("source: test", "sauce: test", Code::UnknownKey, 9),
        ("friday]", "fryday]", Code::WrongType, 4),
        ("\"+08:00\"", "\"China\"", Code::WrongType, 3),
        ("id: test", "id: Test", Code::BadIdentifier, 1),
        (
            "id: test",
            "id: test\nextends: cn_mainlnd",
            Code::UnknownCalendar,
            2,
        ),
        ("    periods:", "\tperiods:", Code::YamlSyntax, 9),
    ];
    for (from, to, code, line) in cases {
        let text = BASE.replacen(from, to, 1);
        let found = errors_of(&text);
        assert!(
            found
                .iter()
                .any(|f| f.code == *code && f.span.line == *line && !f.hint.to_string().is_empty()),
            "{from} -> {to}: expected {code} on line {line}, got {found:#?}"
        );
    }
}

#[test]
fn a_missing_year_is_named_at_the_years_line() {
    let text = BASE.replace("years: 2026..2026", "years: 2025..2026");
    let found = errors_of(&text);
    let e012 = found
        .iter()
        .find(|f| f.code == Code::CalendarYearMissing)
        .expect("E012");
    assert!(
        e012.message.to_string().contains("2025"),
        "{}",
        e012.message
    );
    assert_eq!((e012.span.line, e012.span.column), (6, 8));
}

#[test]
fn structural_mistakes() {
    // Two files, one id.
    let two = Calendars::from_texts(vec![
        (PathBuf::from("a.yaml"), BASE.to_string()),
        (PathBuf::from("b.yaml"), BASE.to_string()),
    ]);
    assert!(
        two.expect_err("duplicate")
            .iter()
            .any(|f| f.code == Code::Duplicate)
    );
    // A cycle of extends.
    let cycle = Calendars::from_texts(vec![
        (
            PathBuf::from("a.yaml"),
            "id: a\ntitle: 甲\nextends: b\n".to_string(),
        ),
        (
            PathBuf::from("b.yaml"),
            "id: b\ntitle: 乙\nextends: a\n".to_string(),
        ),
    ]);
    assert!(
        cycle
            .expect_err("cycle")
            .iter()
            .any(|f| f.code == Code::InvalidValue)
    );
    // Nothing to inherit from.
    let bare = errors_of("id: bare\ntitle: 空\n");
    assert!(
        bare.iter()
            .any(|f| f.code == Code::MissingKey && f.message.to_string().contains("timezone"))
    );
    // Holidays on a calendar that ignores them.
    let both = errors_of(&format!("{BASE}observes_holidays: false\n"));
    assert!(both.iter().any(|f| f.code == Code::InvalidValue));
    assert!(
        errors_of("# nothing\n")
            .iter()
            .any(|f| f.code == Code::EmptyFile)
    );
}
