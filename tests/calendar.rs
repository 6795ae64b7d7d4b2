//! The business calendar through its public API, on the shipped `calendars/` files: the
//! official 2025-2026 holiday schedules, deadlines across them, schedules, and what a process
//! owner sees when a calendar file is wrong.

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use sopflow::Code;
use sopflow::calendar::{CalendarError, Calendars, Recurrence};
use std::path::{Path, PathBuf};

fn shipped() -> Calendars {
    let (calendars, warnings) =
        Calendars::load(Path::new("calendars")).expect("shipped calendars load");
    assert!(warnings.iter().all(|w| !w.is_error()));
    calendars
}

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("time")
        .with_timezone(&Utc)
}

fn cst(t: DateTime<Utc>) -> String {
    t.with_timezone(&FixedOffset::east_opt(8 * 3600).expect("offset"))
        .to_rfc3339()
}

fn add(id: &str, start: &str, duration: &str) -> String {
    let cal = shipped().get(id).expect("calendar");
    cst(cal
        .add(t(start), duration.parse().expect("duration"))
        .expect("computable"))
}

#[test]
fn the_official_2026_schedule() {
    for calendars in [shipped(), Calendars::builtin()] {
        let cal = calendars.default_calendar();
        let working = |s: &str| cal.is_working_day(d(s)).expect("2026 is covered");
        assert!(working("2026-01-04"), "元旦 make-up Sunday");
        assert!(!working("2026-01-01") && !working("2026-01-03"));
        assert!(
            working("2026-02-14") && working("2026-02-28"),
            "春节 make-up Saturdays"
        );
        for day in 15..=23 {
            assert!(!working(&format!("2026-02-{day}")), "春节 2026-02-{day}");
        }
        assert!(
            working("2026-09-20") && working("2026-10-10"),
            "国庆 make-up days"
        );
        for day in 1..=7 {
            assert!(!working(&format!("2026-10-0{day}")), "国庆 2026-10-0{day}");
        }
        assert!(!working("2026-05-05") && working("2026-05-09"));
        assert!(!working("2026-09-25"), "中秋节");
        assert_eq!(cal.next_working_day(d("2026-02-16")), Ok(d("2026-02-24")));
    }
}

#[test]
fn the_embedded_calendars_are_the_shipped_files() {
    let (files, builtin) = (shipped(), Calendars::builtin());
    assert_eq!(
        files.ids().collect::<Vec<_>>(),
        builtin.ids().collect::<Vec<_>>()
    );
    for id in builtin.ids() {
        let (a, b) = (files.get(id).expect("id"), builtin.get(id).expect("id"));
        assert_eq!(a.years(), b.years());
        for day in d("2025-01-01")
            .iter_days()
            .take_while(|x| *x <= d("2027-12-31"))
        {
            assert_eq!(a.hours_on(day), b.hours_on(day), "{id} {day}");
        }
    }
}

#[test]
fn working_day_deadlines_across_holidays() {
    // 7 working days from Thursday 2026-02-12 10:00: Fri 13 (1), Sat 14, a make-up working
    // day (2), then 15-23 are 春节, Tue 24 (3), Wed 25 (4), Thu 26 (5), Fri 27 (6), and Sat
    // 28, the second make-up working day (7).
    assert_eq!(
        add("cn_mainland", "2026-02-12T10:00:00+08:00", "7 working days"),
        "2026-02-28T10:00:00+08:00"
    );
    // The renovation review, "10 working days" from Thursday 2026-09-24: 25-27 are 中秋节,
    // Mon 28 (1), Tue 29 (2), Wed 30 (3), 10-01..07 are 国庆节, Thu 8 (4), Fri 9 (5), Sat 10 a
    // make-up working day (6), Mon 12 (7), Tue 13 (8), Wed 14 (9), Thu 15 (10).
    assert_eq!(
        add(
            "cn_mainland",
            "2026-09-24T10:00:00+08:00",
            "10 working days"
        ),
        "2026-10-15T10:00:00+08:00"
    );
    // A start on a non-working day counts from the next working day: submitted during 春节
    // (Monday 16th), received Tuesday 24th, one working day later is Wednesday 25th.
    assert_eq!(
        add("cn_mainland", "2026-02-16T15:00:00+08:00", "1 working day"),
        "2026-02-25T15:00:00+08:00"
    );
    let cal = shipped().default_calendar();
    assert_eq!(
        cal.working_days_between(d("2026-09-24"), d("2026-10-15")),
        Ok(10)
    );
}

#[test]
fn working_days_of_the_month() {
    let cal = shipped().default_calendar();
    assert_eq!(
        cal.last_working_day_of_month(2026, 2),
        Ok(d("2026-02-28")),
        "a make-up Saturday"
    );
    assert_eq!(cal.last_working_day_of_month(2026, 10), Ok(d("2026-10-30")));
    assert_eq!(cal.last_working_day_of_month(2026, 1), Ok(d("2026-01-30")));
    assert_eq!(
        cal.first_working_day_of_month(2026, 1),
        Ok(d("2026-01-04")),
        "a make-up Sunday"
    );
    // The 16th, rolled forward (国家法定节假日顺延至正常工作日).
    assert_eq!(cal.next_working_day(d("2026-02-16")), Ok(d("2026-02-24")));
    assert_eq!(cal.next_working_day(d("2026-05-16")), Ok(d("2026-05-18")));
}

#[test]
fn calendar_months_and_elapsed_time() {
    assert_eq!(
        add("cn_mainland", "2026-01-31T10:00:00+08:00", "1 month"),
        "2026-02-28T10:00:00+08:00"
    );
    assert_eq!(
        add("cn_mainland", "2028-02-29T10:00:00+08:00", "1 year"),
        "2029-02-28T10:00:00+08:00"
    );
    assert_eq!(
        add("cn_mainland", "2026-08-31T10:00:00+08:00", "6 months"),
        "2027-02-28T10:00:00+08:00"
    );
    assert_eq!(
        add("cn_mainland", "2026-10-01T10:00:00+08:00", "15 minutes"),
        "2026-10-01T10:15:00+08:00"
    );
}

#[test]
fn desk_hours_and_an_always_open_supermarket() {
    // 11:00-11:30, lunch, then 14:00-14:30.
    assert_eq!(
        add(
            "finance_desk",
            "2026-03-09T11:00:00+08:00",
            "1 working hour"
        ),
        "2026-03-09T14:30:00+08:00"
    );
    let calendars = shipped();
    let market = calendars.get("supermarket").expect("supermarket");
    assert_eq!(market.is_working_day(d("2026-10-01")), Ok(true));
    let hours = market
        .hours_on(d("2026-10-01"))
        .expect("every year is covered");
    assert_eq!(
        hours,
        [(
            t("2026-10-01T08:30:00+08:00"),
            t("2026-10-01T22:00:00+08:00")
        )]
    );
    assert_eq!(market.is_working_day(d("2031-02-01")), Ok(true));
}

#[test]
fn a_year_without_data_is_an_error_naming_it() {
    let cal = shipped().default_calendar();
    let err = cal
        .is_working_day(d("2028-05-01"))
        .expect_err("no 2028 data");
    assert_eq!(
        err,
        CalendarError::YearNotCovered {
            calendar: "cn_mainland".into(),
            year: 2028
        }
    );
    assert!(
        err.to_string().contains("2028") && err.to_string().contains("calendars/"),
        "{err}"
    );
    let late = cal.add(
        t("2027-12-28T10:00:00+08:00"),
        "5 working days".parse().expect("duration"),
    );
    assert!(
        matches!(late, Err(CalendarError::YearNotCovered { year: 2028, .. })),
        "{late:?}"
    );
    // 2027 is provisional, and says so.
    let (_, warnings) = Calendars::load(Path::new("calendars")).expect("loads");
    let w405 = warnings
        .iter()
        .find(|w| w.code == Code::ProvisionalCalendar)
        .expect("W405");
    assert!(w405.message.to_string().contains("2027"), "{w405}");
    assert!(w405.file.ends_with("cn_mainland.yaml"));
    assert!(cal.years().iter().any(|y| y.year == 2027 && y.provisional));
}

const GAP: &str = "id: gappy\ntitle: 缺年\ntimezone: \"+08:00\"\nworking_week: [monday, tuesday, wednesday, thursday, friday]\nhours: [{from: \"09:00\", to: \"18:00\"}]\nyears: 2025..2027\nholidays:\n  2025: {source: a, periods: [{name: 元旦, from: 2025-01-01}]}\n  2027: {source: b, periods: [{name: 元旦, from: 2027-01-01}]}\n";

#[test]
fn mistakes_in_a_calendar_folder() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("gappy.yaml"), GAP).expect("write");
    let found = Calendars::load(dir.path()).expect_err("gap year");
    let e012 = found
        .iter()
        .find(|f| f.code == Code::CalendarYearMissing)
        .expect("E012");
    assert!(e012.message.to_string().contains("2026"), "{e012}");
    assert_eq!((e012.span.line, e012.span.column), (6, 8));
    assert!(
        e012.to_string()
            .starts_with(&format!("{}:6:8:", dir.path().join("gappy.yaml").display()))
    );

    let unknown = Calendars::from_texts(vec![(
        PathBuf::from("calendars/night.yaml"),
        "id: night\ntitle: 夜班\nextends: finance_dsk\n".into(),
    )]);
    let e209 = unknown.expect_err("unknown extends");
    assert!(e209.iter().any(|f| f.code == Code::UnknownCalendar
        && f.span.line == 3
        && f.hint.to_string().contains("finance_desk")));

    let bad_date = GAP
        .replace("years: 2025..2027", "years: 2025..2025")
        .replace("2025-01-01", "2025-02-30");
    let bad_date = bad_date
        .lines()
        .filter(|l| !l.contains("2027"))
        .collect::<Vec<_>>()
        .join("\n");
    let found = Calendars::from_texts(vec![(PathBuf::from("calendars/gappy.yaml"), bad_date)])
        .expect_err("bad date");
    let e003 = found
        .iter()
        .find(|f| f.code == Code::WrongType)
        .expect("E003");
    assert_eq!((e003.span.line, e003.span.column), (8, 48));
    assert!(
        e003.message.to_string().contains("2025-02-30")
            && e003.message.to_string().contains("28 days"),
        "{e003}"
    );

    let missing = Calendars::load(&dir.path().join("nowhere")).expect_err("no folder");
    assert_eq!(missing[0].code, Code::Io);
}

#[test]
fn schedules() {
    let cal = shipped().default_calendar();
    let rec = |yaml: &str| serde_saphyr::from_str::<Recurrence>(yaml).expect("recurrence");
    let next = |r: &Recurrence, after: &str| cst(r.next_after(t(after), &cal).expect("covered"));

    let twentieth = rec("{every: month, day: 20, at: \"09:00\"}");
    assert_eq!(
        next(&twentieth, "2026-03-20T09:00:00+08:00"),
        "2026-04-20T09:00:00+08:00"
    );

    let sixteenth = rec("{every: month, day: 16, at: \"09:00\", roll: next_working_day}");
    assert_eq!(
        next(&sixteenth, "2026-01-16T09:00:00+08:00"),
        "2026-02-24T09:00:00+08:00"
    );
    assert_eq!(
        next(&sixteenth, "2026-04-16T09:00:00+08:00"),
        "2026-05-18T09:00:00+08:00"
    );

    let month_end = rec("{every: month, day: last_working_day, at: \"17:00\"}");
    assert_eq!(
        next(&month_end, "2026-02-01T00:00:00+08:00"),
        "2026-02-28T17:00:00+08:00"
    );
    assert_eq!(
        next(&month_end, "2026-10-01T00:00:00+08:00"),
        "2026-10-30T17:00:00+08:00"
    );

    let mondays = rec("{every: week, weekday: monday, at: \"09:00\"}");
    assert_eq!(
        next(&mondays, "2026-03-02T09:00:00+08:00"),
        "2026-03-09T09:00:00+08:00"
    );
    assert_eq!(
        next(&mondays, "2026-03-04T12:00:00+08:00"),
        "2026-03-09T09:00:00+08:00"
    );

    // Down from 2026-01-10 to 2026-04-10: three 16ths were missed; only the last one fires.
    let latest = sixteenth.latest_in(
        t("2026-01-10T00:00:00+08:00"),
        t("2026-04-10T00:00:00+08:00"),
        &cal,
    );
    assert_eq!(
        latest.map(|l| l.map(cst)),
        Ok(Some("2026-03-16T09:00:00+08:00".into()))
    );
}
