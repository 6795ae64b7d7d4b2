//! The calendar methods through a real rhai engine, as scripts call them.

use super::*;
use crate::calendar::Calendars;
use rhai::Scope;

fn run<T: Clone + Send + Sync + 'static>(calendar: &str, script: &str) -> Result<T, String> {
    let mut engine = Engine::new();
    register(&mut engine);
    let mut scope = Scope::new();
    let cal = Calendars::builtin().get(calendar).expect("shipped");
    scope.push("calendar", CalendarHandle(cal));
    scope.push("now", "2026-03-02T01:30:00Z".to_string());
    engine
        .eval_with_scope::<T>(&mut scope, script)
        .map_err(|e| e.to_string())
}

fn text(script: &str) -> String {
    run::<String>("cn_mainland", script).expect(script)
}

#[test]
fn times_and_dates_in_and_out() {
    assert_eq!(
        text(r#"calendar.add(now, "7 working days")"#),
        "2026-03-11T09:30:00+08:00"
    );
    assert_eq!(
        text(r#"calendar.add("2026-02-12T10:00:00+08:00", "7个工作日")"#),
        "2026-02-28T10:00:00+08:00"
    );
    assert_eq!(
        text(r#"calendar.add("2026-01-31", "1 month")"#),
        "2026-02-28T00:00:00+08:00"
    );
    assert_eq!(
        text(r#"calendar.next_working_day("2026-02-16")"#),
        "2026-02-24"
    );
    assert_eq!(
        text(r#"calendar.previous_working_day("2026-02-16T12:00:00+08:00")"#),
        "2026-02-14"
    );
    assert_eq!(
        text(r#"calendar.last_working_day_of_month("2026-02-03")"#),
        "2026-02-28"
    );
    assert_eq!(
        text(r#"calendar.first_working_day_of_month("2026-10-20")"#),
        "2026-10-08"
    );
    assert_eq!(
        text(r#"calendar.at("2026-03-02", "09:30")"#),
        "2026-03-02T09:30:00+08:00"
    );
    assert_eq!(
        text(r#"calendar.date("2026-03-01T17:00:00Z")"#),
        "2026-03-02"
    );
    assert_eq!(text(r#"calendar.opens(now)"#), "2026-03-02T09:00:00+08:00");
    assert_eq!(text(r#"calendar.closes(now)"#), "2026-03-02T18:00:00+08:00");
    assert_eq!(text("calendar.id"), "cn_mainland");
    assert_eq!(
        run::<bool>("cn_mainland", r#"calendar.is_working_day("2026-02-14")"#),
        Ok(true)
    );
    assert_eq!(
        run::<bool>("cn_mainland", r#"calendar.opens("2026-10-01") == ()"#),
        Ok(true)
    );
    assert_eq!(
        run::<rhai::INT>(
            "cn_mainland",
            r#"calendar.working_days_between("2026-02-12", "2026-02-28")"#
        ),
        Ok(7)
    );
    assert_eq!(
        run::<String>(
            "finance_desk",
            r#"calendar.add("2026-03-09T03:00:00Z", "1 working hour")"#
        ),
        Ok("2026-03-09T14:30:00+08:00".into())
    );
    assert_eq!(
        run::<String>("supermarket", r#"calendar.opens("2026-10-01")"#),
        Ok("2026-10-01T08:30:00+08:00".into())
    );
    // 送宾前10分钟: ten minutes before the supermarket closes.
    assert_eq!(
        run::<String>(
            "supermarket",
            r#"calendar.before(calendar.closes("2026-10-01"), "10 minutes")"#
        ),
        Ok("2026-10-01T21:50:00+08:00".into())
    );
}

#[test]
fn bad_input_says_what_is_accepted() {
    let cases = [
        (r#"calendar.add(now, "7 workdays")"#, "working days"),
        (r#"calendar.add("yesterday", "1 day")"#, "RFC 3339"),
        (
            r#"calendar.add("2026-02-30", "1 day")"#,
            "not a time or a date",
        ),
        (r#"calendar.at("2026-03-02", "9h30")"#, "HH:MM"),
        (
            r#"calendar.before(now, "1 working day")"#,
            "minutes, hours, days or weeks",
        ),
        (
            r#"calendar.is_working_day("2028-01-03")"#,
            "no holiday data for 2028",
        ),
    ];
    for (script, expected) in cases {
        let err = run::<Dynamic>("cn_mainland", script).expect_err(script);
        assert!(err.contains(expected), "{script}: {err}");
    }
}
