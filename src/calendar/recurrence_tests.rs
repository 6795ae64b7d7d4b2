//! Unit tests of schedules against the shipped mainland calendar.

use super::*;
use crate::calendar::Calendars;
use std::sync::Arc;

fn cn() -> Arc<Calendar> {
    Calendars::builtin().default_calendar()
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("time")
        .with_timezone(&Utc)
}

fn rec(yaml: &str) -> Recurrence {
    serde_saphyr::from_str(yaml).expect("recurrence")
}

/// The next `n` occurrences after `after`, in local time.
fn next(r: &Recurrence, after: &str, n: usize) -> Vec<String> {
    let cal = cn();
    let mut at = t(after);
    let mut out = Vec::new();
    for _ in 0..n {
        at = r.next_after(at, &cal).expect("covered");
        out.push(cal.local(at).format("%Y-%m-%d %H:%M").to_string());
    }
    out
}

#[test]
fn reads_the_written_forms() {
    let r = rec("{every: month, day: 16, at: \"09:00\", roll: next_working_day}");
    assert_eq!(r.day, Some(MonthDay::Day(16)));
    assert_eq!(r.roll, Roll::NextWorkingDay);
    let r = rec("{every: month, day: last_working_day, at: 17:30}");
    assert_eq!(r.day, Some(MonthDay::Named(NamedDay::LastWorkingDay)));
    assert_eq!(r.at, NaiveTime::from_hms_opt(17, 30, 0).expect("time"));
    let e = serde_saphyr::from_str::<Recurrence>("{every: month, day: lats, at: \"09:00\"}")
        .expect_err("bad day");
    assert!(e.to_string().contains("not a day of the month"), "{e}");
    let e = serde_saphyr::from_str::<Recurrence>("{every: day, at: \"9h\"}").expect_err("bad time");
    assert!(e.to_string().contains("HH:MM"), "{e}");
    assert!(
        serde_saphyr::from_str::<Recurrence>("{every: day, at: \"09:00\", rol: none}").is_err()
    );
}

#[test]
fn check_explains_what_cannot_recur() {
    let bad = [
        ("{every: month, at: \"09:00\"}", "needs `day`"),
        ("{every: week, at: \"09:00\"}", "needs `weekday`"),
        ("{every: month, day: 32, at: \"09:00\"}", "32 is not a day"),
        ("{every: month, day: 0, at: \"09:00\"}", "0 is not a day"),
        (
            "{every: day, day: 3, at: \"09:00\"}",
            "`day` is for monthly",
        ),
        (
            "{every: week, weekday: monday, day: 3, at: \"09:00\"}",
            "`day` is for monthly",
        ),
        (
            "{every: working_day, weekday: monday, at: \"09:00\"}",
            "`weekday` is for weekly",
        ),
        (
            "{every: month, day: 3, weekday: monday, at: \"09:00\"}",
            "`weekday` is for weekly",
        ),
    ];
    for (yaml, expected) in bad {
        let message = rec(yaml).check().expect_err(yaml).to_string();
        assert!(message.contains(expected), "{yaml}: {message}");
        let err = rec(yaml).next_after(t("2026-03-01T00:00:00Z"), &cn());
        assert!(matches!(err, Err(CalendarError::InvalidRecurrence(_))));
    }
    assert_eq!(
        rec("{every: week, weekday: monday, at: \"09:00\"}").check(),
        Ok(())
    );
}

#[test]
fn monthly_on_a_day_and_end_of_month() {
    let r = rec("{every: month, day: 20, at: \"09:00\"}");
    assert_eq!(
        next(&r, "2026-03-20T09:00:00+08:00", 2),
        ["2026-04-20 09:00", "2026-05-20 09:00"]
    );
    assert_eq!(
        next(&r, "2026-03-20T08:59:00+08:00", 1),
        ["2026-03-20 09:00"]
    );
    // 31 in a short month is its last day.
    let r = rec("{every: month, day: 31, at: \"09:00\"}");
    assert_eq!(
        next(&r, "2026-01-31T10:00:00+08:00", 3),
        ["2026-02-28 09:00", "2026-03-31 09:00", "2026-04-30 09:00"]
    );
    let r = rec("{every: month, day: last, at: \"18:00\"}");
    assert_eq!(
        next(&r, "2026-02-01T00:00:00+08:00", 1),
        ["2026-02-28 18:00"]
    );
}

#[test]
fn the_16th_rolled_to_the_next_working_day() {
    let r = rec("{every: month, day: 16, at: \"09:00\", roll: next_working_day}");
    assert_eq!(
        next(&r, "2026-01-20T00:00:00+08:00", 4),
        [
            "2026-02-24 09:00",
            "2026-03-16 09:00",
            "2026-04-16 09:00",
            "2026-05-18 09:00"
        ]
    );
    // Asked during the holiday, after the 16th itself: February's rolled date is still ahead.
    assert_eq!(
        next(&r, "2026-02-20T12:00:00+08:00", 1),
        ["2026-02-24 09:00"]
    );
    assert_eq!(
        next(&r, "2026-02-24T09:00:00+08:00", 1),
        ["2026-03-16 09:00"]
    );
}

#[test]
fn rolled_weekly_occurrences_neither_skip_nor_repeat() {
    // Mondays 16 and 23 February 2026 are both in 春节; both roll to Tuesday the 24th, which
    // fires once.
    let r = rec("{every: week, weekday: monday, at: \"09:00\", roll: next_working_day}");
    assert_eq!(
        next(&r, "2026-02-10T00:00:00+08:00", 3),
        ["2026-02-24 09:00", "2026-03-02 09:00", "2026-03-09 09:00"]
    );
    assert_eq!(
        next(&r, "2026-02-23T10:00:00+08:00", 1),
        ["2026-02-24 09:00"]
    );
    let r = rec("{every: week, weekday: monday, at: \"09:00\", roll: previous_working_day}");
    assert_eq!(
        next(&r, "2026-02-10T00:00:00+08:00", 3),
        ["2026-02-14 09:00", "2026-03-02 09:00", "2026-03-09 09:00"]
    );
}

#[test]
fn working_days_and_named_days() {
    let r = rec("{every: working_day, at: \"08:50\"}");
    assert_eq!(
        next(&r, "2026-02-13T09:00:00+08:00", 3),
        ["2026-02-14 08:50", "2026-02-24 08:50", "2026-02-25 08:50"]
    );
    let r = rec("{every: month, day: last_working_day, at: \"17:00\"}");
    assert_eq!(
        next(&r, "2026-01-31T00:00:00+08:00", 2),
        ["2026-02-28 17:00", "2026-03-31 17:00"]
    );
    let r = rec("{every: month, day: first_working_day, at: \"09:00\"}");
    assert_eq!(
        next(&r, "2026-09-30T00:00:00+08:00", 1),
        ["2026-10-08 09:00"]
    );
    let r = rec("{every: day, at: \"00:00\"}");
    assert_eq!(
        next(&r, "2026-02-16T00:00:00+08:00", 1),
        ["2026-02-17 00:00"]
    );
}

#[test]
fn latest_in_returns_only_the_last_missed_occurrence() {
    let cal = cn();
    let r = rec("{every: month, day: 16, at: \"09:00\", roll: next_working_day}");
    let latest = r.latest_in(
        t("2026-01-01T00:00:00+08:00"),
        t("2026-03-31T00:00:00+08:00"),
        &cal,
    );
    assert_eq!(latest, Ok(Some(t("2026-03-16T09:00:00+08:00"))));
    // Until the holiday's end: February's occurrence is not yet due on the 23rd.
    let latest = r.latest_in(
        t("2026-01-20T00:00:00+08:00"),
        t("2026-02-23T23:00:00+08:00"),
        &cal,
    );
    assert_eq!(latest, Ok(None));
    let latest = r.latest_in(
        t("2026-01-01T00:00:00+08:00"),
        t("2026-01-16T09:00:00+08:00"),
        &cal,
    );
    assert_eq!(latest, Ok(Some(t("2026-01-16T09:00:00+08:00"))));
    // A long gap, with nothing in the last window: found by looking further back.
    let yearly_ish = rec("{every: month, day: 16, at: \"09:00\"}");
    let latest = yearly_ish.latest_in(
        t("2025-01-01T00:00:00+08:00"),
        t("2026-03-15T00:00:00+08:00"),
        &cal,
    );
    assert_eq!(latest, Ok(Some(t("2026-02-16T09:00:00+08:00"))));
    // Every day, rolled: 15 to 23 February all roll to the 24th, so on the 23rd the latest
    // occurrence is the 14th's, found beyond the first window.
    let rolled = rec("{every: day, at: \"09:00\", roll: next_working_day}");
    let latest = rolled.latest_in(
        t("2026-01-01T00:00:00+08:00"),
        t("2026-02-23T23:00:00+08:00"),
        &cal,
    );
    assert_eq!(latest, Ok(Some(t("2026-02-14T09:00:00+08:00"))));
    let daily = rec("{every: working_day, at: \"09:00\"}");
    let latest = daily.latest_in(
        t("2025-03-01T00:00:00+08:00"),
        t("2026-10-07T23:00:00+08:00"),
        &cal,
    );
    assert_eq!(latest, Ok(Some(t("2026-09-30T09:00:00+08:00"))));
    assert_eq!(
        daily.latest_in(
            t("2026-03-02T10:00:00+08:00"),
            t("2026-03-02T10:00:00+08:00"),
            &cal
        ),
        Ok(None)
    );
}

#[test]
fn uncovered_years_are_errors_not_guesses() {
    let r = rec("{every: working_day, at: \"09:00\"}");
    let err = r.next_after(t("2027-12-31T10:00:00+08:00"), &cn());
    assert!(
        matches!(err, Err(CalendarError::YearNotCovered { year: 2028, .. })),
        "{err:?}"
    );
    // Fixed days without rolling need no holiday data.
    let r = rec("{every: month, day: 20, at: \"09:00\"}");
    assert!(r.next_after(t("2030-01-01T00:00:00Z"), &cn()).is_ok());
}

#[test]
fn the_schema_describes_the_written_forms() {
    let schema = serde_json::to_value(schemars::schema_for!(Recurrence)).expect("json");
    let text = schema.to_string();
    let at = &schema["properties"]["at"];
    assert_eq!(at["type"], "string", "{text}");
    assert!(at["pattern"].is_string(), "{text}");
    assert!(
        at["description"]
            .as_str()
            .is_some_and(|d| d.contains("HH:MM")),
        "{text}"
    );
    for word in [
        "working_day",
        "last_working_day",
        "next_working_day",
        "monday",
    ] {
        assert!(text.contains(word), "{word}: {text}");
    }
}

#[test]
fn calendars_are_shared_across_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<Calendar>();
    shared::<Calendars>();
    shared::<crate::calendar::script::CalendarHandle>();
}
