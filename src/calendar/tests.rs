//! Unit tests of the calendar: day queries, arithmetic, and reading files.

use super::*;
use crate::diagnostic::Code;

fn builtin(id: &str) -> Arc<Calendar> {
    Calendars::builtin().get(id).expect("shipped calendar")
}

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("time")
        .with_timezone(&Utc)
}

fn add(cal: &Calendar, start: &str, duration: &str) -> String {
    let duration = duration.parse().expect("duration");
    let end = cal.add(t(start), duration).expect("computable");
    cal.local(end).to_rfc3339()
}

#[test]
fn the_shipped_files_load_without_errors() {
    let (calendars, warnings) = Calendars::from_texts(Vec::new()).expect("shipped files load");
    assert_eq!(
        calendars.ids().collect::<Vec<_>>(),
        ["cn_mainland", "finance_desk", "supermarket"]
    );
    // Only 2027 is provisional, and only cn_mainland declares it.
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].code, Code::ProvisionalCalendar);
    assert_eq!(calendars.default_calendar().id(), "cn_mainland");
    let years: Vec<_> = calendars
        .default_calendar()
        .years()
        .iter()
        .map(|y| (y.year, y.provisional))
        .collect();
    assert_eq!(years, [(2025, false), (2026, false), (2027, true)]);
}

#[test]
fn holidays_and_make_up_days() {
    let cal = builtin("cn_mainland");
    assert_eq!(cal.is_working_day(d("2026-02-14")), Ok(true)); // Saturday, make-up
    assert_eq!(cal.is_working_day(d("2026-02-16")), Ok(false)); // 春节
    assert_eq!(cal.is_working_day(d("2026-03-07")), Ok(false)); // Saturday
    assert_eq!(cal.is_working_day(d("2026-03-09")), Ok(true));
    assert_eq!(cal.holiday(d("2026-02-16")), Ok(Some("春节")));
    assert_eq!(cal.holiday(d("2026-02-14")), Ok(None));
    assert_eq!(cal.next_working_day(d("2026-02-16")), Ok(d("2026-02-24")));
    assert_eq!(
        cal.previous_working_day(d("2026-02-16")),
        Ok(d("2026-02-14"))
    );
    assert_eq!(
        cal.first_working_day_of_month(2026, 10),
        Ok(d("2026-10-08"))
    );
    assert_eq!(cal.last_working_day_of_month(2026, 2), Ok(d("2026-02-28")));
    assert_eq!(
        cal.first_working_day_of_month(2026, 13),
        Err(CalendarError::OutOfRange)
    );
}

#[test]
fn uncovered_years_are_errors_naming_the_year_and_the_data() {
    let cal = builtin("finance_desk");
    let err = cal
        .is_working_day(d("2028-03-01"))
        .expect_err("2028 not covered");
    assert_eq!(
        err,
        CalendarError::YearNotCovered {
            calendar: "cn_mainland".into(),
            year: 2028
        }
    );
    assert!(err.to_string().contains("id: cn_mainland"), "{err}");
    assert!(cal.is_working_day(d("2024-12-31")).is_err());
    // Elapsed time and calendar months need no holidays.
    assert_eq!(
        add(&cal, "2027-12-01T10:00:00+08:00", "3 months"),
        "2028-03-01T10:00:00+08:00"
    );
    assert_eq!(
        add(&cal, "2027-12-31T10:00:00+08:00", "2 days"),
        "2028-01-02T10:00:00+08:00"
    );
    // Working days into 2028 do.
    let late = cal.add(
        t("2027-12-30T10:00:00+08:00"),
        "3 working days".parse().expect("d"),
    );
    assert!(matches!(
        late,
        Err(CalendarError::YearNotCovered { year: 2028, .. })
    ));
}

#[test]
fn a_calendar_without_holidays_covers_every_year() {
    let cal = builtin("supermarket");
    assert!(!cal.observes_holidays());
    assert!(cal.years().is_empty());
    assert_eq!(cal.is_working_day(d("2026-10-01")), Ok(true));
    assert_eq!(cal.is_working_day(d("2099-01-01")), Ok(true));
    assert_eq!(
        cal.working_days_between(d("2026-01-01"), d("2126-01-01")),
        Ok(36524)
    );
    assert_eq!(
        add(&cal, "2026-10-01T09:00:00+08:00", "700 working days"),
        "2028-08-31T09:00:00+08:00"
    );
    // 13.5 opening hours a day: 27 hours later is two days on, same time.
    assert_eq!(
        add(&cal, "2026-10-01T09:00:00+08:00", "27 working hours"),
        "2026-10-03T09:00:00+08:00"
    );
    let far = cal.add(
        t("2026-10-01T09:00:00+08:00"),
        "4000000000 working hours".parse().expect("d"),
    );
    assert_eq!(far, Err(CalendarError::OutOfRange));
}

#[test]
fn working_days_from_a_non_working_day_count_from_the_next_working_day() {
    let cal = builtin("cn_mainland");
    // Saturday 2026-03-07 counts as received Monday the 9th: one working day later is Tuesday.
    assert_eq!(
        add(&cal, "2026-03-07T10:00:00+08:00", "1 working day"),
        "2026-03-10T10:00:00+08:00"
    );
    // Friday + 1 working day = Monday.
    assert_eq!(
        add(&cal, "2026-03-06T17:30:00+08:00", "1 working day"),
        "2026-03-09T17:30:00+08:00"
    );
    // The local date decides, not the UTC one: 2026-03-06T20:00Z is Saturday 04:00 in China.
    assert_eq!(
        add(&cal, "2026-03-06T20:00:00Z", "1 working day"),
        "2026-03-10T04:00:00+08:00"
    );
}

#[test]
fn working_hours_count_opening_hours_only() {
    let cal = builtin("cn_mainland");
    assert_eq!(
        add(&cal, "2026-03-06T17:00:00+08:00", "1 working hour"),
        "2026-03-06T18:00:00+08:00"
    );
    assert_eq!(
        add(&cal, "2026-03-06T17:00:00+08:00", "2 working hours"),
        "2026-03-09T10:00:00+08:00"
    );
    assert_eq!(
        add(&cal, "2026-03-07T12:00:00+08:00", "1 working hour"),
        "2026-03-09T10:00:00+08:00"
    );
    assert_eq!(
        add(&cal, "2026-03-09T07:00:00+08:00", "9 working hours"),
        "2026-03-09T18:00:00+08:00"
    );
    assert_eq!(
        add(&cal, "2026-03-09T09:15:30+08:00", "9 working hours"),
        "2026-03-10T09:15:30+08:00"
    );
    // Over 春节: Friday 2026-02-13 17:00 + 2 working hours = Saturday 14th (make-up) 10:00.
    assert_eq!(
        add(&cal, "2026-02-13T17:00:00+08:00", "2 working hours"),
        "2026-02-14T10:00:00+08:00"
    );
    let desk = builtin("finance_desk");
    assert_eq!(
        add(&desk, "2026-03-09T11:00:00+08:00", "1 working hour"),
        "2026-03-09T14:30:00+08:00"
    );
    assert_eq!(
        add(&desk, "2026-03-09T12:00:00+08:00", "1 working hour"),
        "2026-03-09T15:00:00+08:00"
    );
    assert_eq!(
        add(&desk, "2026-03-09T16:30:00+08:00", "5 working hours"),
        "2026-03-10T16:30:00+08:00"
    );
}

#[test]
fn hours_on_and_between() {
    let desk = builtin("finance_desk");
    let hours = desk.hours_on(d("2026-03-09")).expect("covered");
    assert_eq!(
        hours,
        [
            (
                t("2026-03-09T09:30:00+08:00"),
                t("2026-03-09T11:30:00+08:00")
            ),
            (
                t("2026-03-09T14:00:00+08:00"),
                t("2026-03-09T17:00:00+08:00")
            ),
        ]
    );
    assert_eq!(desk.hours_on(d("2026-02-16")), Ok(Vec::new()));
    let cal = builtin("cn_mainland");
    assert_eq!(
        cal.working_days_between(d("2026-02-12"), d("2026-02-28")),
        Ok(7)
    );
    assert_eq!(
        cal.working_days_between(d("2026-02-28"), d("2026-02-12")),
        Ok(-7)
    );
    assert_eq!(
        cal.working_days_between(d("2026-02-12"), d("2026-02-12")),
        Ok(0)
    );
    assert_eq!(
        cal.at(d("2026-03-09"), NaiveTime::MIN),
        t("2026-03-08T16:00:00Z")
    );
}

#[test]
fn month_arithmetic_is_end_of_month_safe() {
    let cal = builtin("cn_mainland");
    assert_eq!(
        add(&cal, "2026-01-31T10:00:00+08:00", "1 month"),
        "2026-02-28T10:00:00+08:00"
    );
    assert_eq!(
        add(&cal, "2028-02-29T10:00:00+08:00", "1 year"),
        "2029-02-28T10:00:00+08:00"
    );
    assert_eq!(
        add(&cal, "2026-08-31T10:00:00+08:00", "6 months"),
        "2027-02-28T10:00:00+08:00"
    );
    // Local months: 2026-01-31T20:00Z is already 1 February in China.
    assert_eq!(
        add(&cal, "2026-01-31T20:00:00Z", "1 month"),
        "2026-03-01T04:00:00+08:00"
    );
    assert_eq!(
        add(&cal, "2026-01-31T10:00:00+08:00", "15 minutes"),
        "2026-01-31T10:15:00+08:00"
    );
    assert_eq!(
        add(&cal, "2026-01-31T10:00:00+08:00", "2 weeks"),
        "2026-02-14T10:00:00+08:00"
    );
}

#[test]
fn the_ends_of_time_are_errors_not_panics() {
    use crate::calendar::Recurrence;
    let units = [
        "1 minute",
        "1 hour",
        "1 day",
        "1 week",
        "1 month",
        "1 year",
        "1 working day",
        "1 working hour",
        "4000000000 working days",
    ];
    let schedules = [
        "{every: day, at: \"23:59\", roll: next_working_day}",
        "{every: working_day, at: \"09:00\"}",
        "{every: week, weekday: sunday, at: \"09:00\", roll: previous_working_day}",
        "{every: month, day: 31, at: \"09:00\", roll: next_working_day}",
        "{every: month, day: last_working_day, at: \"09:00\"}",
    ];
    for id in ["cn_mainland", "supermarket"] {
        let cal = builtin(id);
        for end in [DateTime::<Utc>::MAX_UTC, DateTime::<Utc>::MIN_UTC] {
            for unit in units {
                let _ = cal.add(end, unit.parse().expect("duration"));
            }
            for s in schedules {
                let r: Recurrence = serde_saphyr::from_str(s).expect("recurrence");
                let _ = r.next_after(end, &cal);
                let _ = r.latest_in(DateTime::<Utc>::MIN_UTC, end, &cal);
            }
            let _ = cal.hours_on(end.date_naive());
            let _ = cal.working_days_between(NaiveDate::MIN, NaiveDate::MAX);
            let _ = cal.last_working_day_of_month(end.year(), 12);
        }
    }
}

#[test]
fn working_time_between_counts_opening_hours_only() {
    let cal = builtin("cn_mainland");
    for (start, duration, minutes) in [
        ("2026-03-06T16:00:00+08:00", "3 working hours", 180),
        (
            "2026-02-13T10:00:00+08:00",
            "2 working days",
            2 * cal.working_minutes_per_day(),
        ),
    ] {
        let from = t(start);
        let to = cal
            .add(from, duration.parse().expect("duration"))
            .expect("computable");
        assert_eq!(
            cal.working_minutes_between(from, to),
            Ok(minutes),
            "{start} + {duration}"
        );
        assert_eq!(cal.working_minutes_between(to, from), Ok(-minutes));
    }
    // A night and a weekend are no working time.
    assert_eq!(
        cal.working_minutes_between(
            t("2026-03-07T09:00:00+08:00"),
            t("2026-03-08T20:00:00+08:00")
        ),
        Ok(0)
    );
}
