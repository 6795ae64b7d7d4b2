//! Time end to end: durable timers, schedules and escalation on the 2026 business calendar,
//! under a virtual clock, on a real sled store in a temp dir.

mod support;

use chrono::{DateTime, FixedOffset, Utc};
use serde_json::json;
use sopflow::clock::{Clock, SystemClock, VirtualClock};
use sopflow::engine::{Config, Engine, EngineError, Fire, Fired, StartRequest};
use sopflow::machine::{Actor, EntryKind, Refusal};
use sopflow::store::Query;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("a valid time")
        .with_timezone(&Utc)
}

fn cst(t: DateTime<Utc>) -> String {
    t.with_timezone(&FixedOffset::east_opt(8 * 3600).expect("offset"))
        .to_rfc3339()
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/time")
}

/// An engine with one fixture workflow, so that no other workflow's schedule or timers
/// fire while a test moves time.
fn config(dir: &Path, workflow: &str, clock: Arc<dyn Clock>) -> Config {
    support::store_config(&dir.join("data"))
        .sources(vec![fixtures().join(format!("{workflow}.yaml"))])
        .clock(clock)
}

async fn open_at(dir: &Path, workflow: &str, start: &str) -> (Engine, VirtualClock) {
    let clock = VirtualClock::new(at(start));
    let engine = Engine::open(config(dir, workflow, Arc::new(clock.clone())))
        .await
        .expect("opens");
    assert!(
        !engine.load_report().has_errors(),
        "fixtures load: {:?}",
        engine.load_report().diagnostics
    );
    (engine, clock)
}

fn person(id: &str, role: &str) -> Actor {
    Actor::new(id, [role])
}

fn refusal<T: std::fmt::Debug>(result: Result<T, EngineError>) -> Refusal {
    match result {
        Err(EngineError::Refused(refusal)) => refusal,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn timers_fired(fired: &[Fired]) -> Vec<(String, String)> {
    fired
        .iter()
        .filter_map(|f| match f {
            Fired::Timer { event, due, .. } => Some((event.clone(), cst(*due))),
            Fired::Schedule { .. } => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_renovation_review_deadline_counts_2026_working_days() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Thursday 24 September 2026, the day before the Mid-Autumn holiday (25-27 September)
    // and a week before National Day (1-7 October, with Saturday 10 October worked).
    let (engine, _clock) =
        open_at(dir.path(), "renovation_review", "2026-09-24T10:00:00+08:00").await;
    let started = engine
        .start(
            "renovation_review",
            StartRequest::new(person("zhang", "applicant")),
        )
        .await
        .expect("starts");
    let id = started.instance.id;
    let due: Vec<String> = started.instance.timers.iter().map(|t| cst(t.due)).collect();
    // Working days after 24 Sep: 28, 29, 30 Sep; 8, 9, 10 (Sat, make-up), 12 Oct = 7th;
    // 13, 14, 15 Oct = 10th.
    assert_eq!(
        due,
        ["2026-10-12T10:00:00+08:00", "2026-10-15T10:00:00+08:00"]
    );

    // Eight days of holiday later nothing has fired.
    let fired = engine
        .advance_to(at("2026-10-09T18:00:00+08:00"))
        .await
        .expect("advances");
    assert!(fired.is_empty(), "{fired:?}");

    let fired = engine
        .advance_to(at("2026-10-16T09:00:00+08:00"))
        .await
        .expect("advances");
    assert_eq!(
        timers_fired(&fired),
        [
            (
                "review_overdue".to_string(),
                "2026-10-12T10:00:00+08:00".to_string()
            ),
            (
                "review_deadline".to_string(),
                "2026-10-15T10:00:00+08:00".to_string()
            ),
        ]
    );
    let instance = engine.get(&id).await.expect("exists");
    assert_eq!(instance.state, "escalated");
    assert_eq!(instance.data["review_reminded"], json!(true));
    assert!(instance.timers.is_empty());

    let history = engine.history(&id).await.expect("history");
    let steps: Vec<(EntryKind, &str, &str, String)> = history
        .iter()
        .map(|e| (e.kind, e.event.as_str(), e.actor.as_str(), cst(e.at)))
        .collect();
    assert_eq!(
        steps[1..],
        [
            (
                EntryKind::Timer,
                "review_overdue",
                "system",
                "2026-10-12T10:00:00+08:00".to_string()
            ),
            (
                EntryKind::Timer,
                "review_deadline",
                "system",
                "2026-10-15T10:00:00+08:00".to_string()
            ),
        ]
    );
    // The reminder stayed in the state: the 10-day deadline was not re-armed by it.
    assert!(!history[1].entered);
}

/// A timer's `when` decides on entering whether it is armed at all: a case the limit does
/// not cover has no pending timer, nothing fires for it, and the history shows the condition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timer_is_armed_only_for_the_cases_its_condition_names() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (engine, _clock) = open_at(dir.path(), "desk_limit", "2026-03-07T10:00:00+08:00").await;
    let start =
        |kind: &str| StartRequest::new(person("xiao", "desk")).data(json!({ "kind": kind }));
    let returned = engine
        .start("desk_limit", start("return"))
        .await
        .expect("starts");
    let difference = engine
        .start("desk_limit", start("price_difference"))
        .await
        .expect("starts");
    assert_eq!(
        cst(returned.instance.timers[0].due),
        "2026-03-07T10:05:00+08:00"
    );
    assert!(difference.instance.timers.is_empty());
    let history = engine
        .history(&difference.instance.id)
        .await
        .expect("history");
    assert!(
        history[0].guards.iter().any(|g| !g.passed),
        "{:?}",
        history[0].guards
    );
    let fired = engine
        .advance_to(at("2026-03-07T10:30:00+08:00"))
        .await
        .expect("advances");
    assert_eq!(
        timers_fired(&fired),
        vec![(
            "five_minutes_passed".to_string(),
            "2026-03-07T10:05:00+08:00".to_string()
        )]
    );
    let state = |id: String| {
        let engine = &engine;
        async move { engine.get(&id).await.expect("exists").state }
    };
    assert_eq!(state(returned.instance.id.to_string()).await, "late");
    assert_eq!(state(difference.instance.id.to_string()).await, "requested");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deposit_is_refunded_six_calendar_months_after_acceptance() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (engine, _clock) = open_at(dir.path(), "deposit_refund", "2026-08-31T15:00:00+08:00").await;
    let started = engine
        .start(
            "deposit_refund",
            StartRequest::new(person("qian", "finance")),
        )
        .await
        .expect("starts");
    // 31 August + 6 months: February has no 31st, so the last day of February.
    assert_eq!(
        cst(started.instance.timers[0].due),
        "2027-02-28T15:00:00+08:00"
    );
    let fired = engine
        .advance_to(at("2027-02-28T14:59:00+08:00"))
        .await
        .expect("advances");
    assert!(fired.is_empty());
    let fired = engine
        .advance_to(at("2027-03-01T00:00:00+08:00"))
        .await
        .expect("advances");
    assert_eq!(fired.len(), 1);
    let id = started.instance.id;
    assert_eq!(
        engine.get(&id).await.expect("exists").state,
        "refund_pending"
    );
    engine
        .fire(&id, Fire::new("refund", person("qian", "finance")))
        .await
        .expect("refunded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uncontacted_lead_may_be_reassigned_after_15_minutes_and_not_before() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (engine, _clock) = open_at(dir.path(), "lead_callback", "2026-03-02T10:00:00+08:00").await;
    let cs = person("zhao", "cs");
    let start = || StartRequest::new(cs.clone()).data(json!({"salesperson": "li"}));
    let lead = engine
        .start("lead_callback", start())
        .await
        .expect("starts")
        .instance
        .id;

    // At 14 minutes customer service may not take the lead away yet.
    engine
        .advance_to(at("2026-03-02T10:14:00+08:00"))
        .await
        .expect("advances");
    let early = refusal(
        engine
            .fire(
                &lead,
                Fire::new("reassign", cs.clone()).payload(json!({"salesperson": "sun"})),
            )
            .await,
    );
    assert_eq!(early.code(), "unknown_event", "{early}");

    let fired = engine
        .advance_to(at("2026-03-02T10:15:00+08:00"))
        .await
        .expect("advances");
    assert_eq!(
        timers_fired(&fired),
        [(
            "contact_overdue".to_string(),
            "2026-03-02T10:15:00+08:00".to_string()
        )]
    );
    let reassigned = engine
        .fire(
            &lead,
            Fire::new("reassign", cs.clone()).payload(json!({"salesperson": "sun"})),
        )
        .await
        .expect("reassigned");
    assert_eq!(reassigned.instance.state, "awaiting_contact");
    // The new salesperson has 15 minutes of their own.
    assert_eq!(
        cst(reassigned.instance.timers[0].due),
        "2026-03-02T10:30:00+08:00"
    );

    // A lead contacted in time: its timer is cancelled and never fires.
    let quick = engine
        .start("lead_callback", start())
        .await
        .expect("starts")
        .instance
        .id;
    engine
        .fire(&quick, Fire::new("contacted", person("li", "sales")))
        .await
        .expect("contacted");
    let fired = engine
        .advance_to(at("2026-03-02T12:00:00+08:00"))
        .await
        .expect("advances");
    assert!(
        fired
            .iter()
            .all(|f| !matches!(f, Fired::Timer { instance, .. } if *instance == quick)),
        "{fired:?}"
    );
    let history = engine.history(&quick).await.expect("history");
    assert!(history.iter().all(|e| e.kind != EntryKind::Timer));
    assert!(engine.pending_timers(10).await.expect("lists").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monthly_report_starts_on_the_last_working_day_and_falls_late_at_17_00() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (engine, _clock) = open_at(dir.path(), "monthly_report", "2026-02-01T08:00:00+08:00").await;
    let next = engine.schedules_blocking(3).await.expect("schedules");
    assert_eq!(next.len(), 1);
    // February 2026 ends on Saturday the 28th, a make-up working day of the Spring Festival;
    // March ends on a Tuesday; April 30th is a Thursday.
    assert_eq!(
        next[0].next.iter().map(|t| cst(*t)).collect::<Vec<_>>(),
        [
            "2026-02-28T09:00:00+08:00",
            "2026-03-31T09:00:00+08:00",
            "2026-04-30T09:00:00+08:00"
        ]
    );

    let fired = engine
        .advance_to(at("2026-03-01T00:00:00+08:00"))
        .await
        .expect("advances");
    let report = match &fired[..] {
        [
            Fired::Schedule {
                occurrence,
                instance,
                ..
            },
            Fired::Timer { event, due, .. },
        ] => {
            assert_eq!(cst(*occurrence), "2026-02-28T09:00:00+08:00");
            assert_eq!(event, "report_late");
            assert_eq!(cst(*due), "2026-02-28T17:00:00+08:00");
            instance.clone()
        }
        other => panic!("expected the schedule and its deadline, got {other:?}"),
    };
    let instance = engine.get(&report).await.expect("exists");
    assert_eq!(instance.state, "late");
    assert_eq!(
        instance.business_key.as_deref(),
        Some("monthly/2026-02-28T09:00")
    );
    drop(engine);

    // The engine is down from 1 March to 15 June: three reports were missed, one starts.
    let clock = VirtualClock::new(at("2026-06-15T10:00:00+08:00"));
    let engine = Engine::open(config(
        dir.path(),
        "monthly_report",
        Arc::new(clock.clone()),
    ))
    .await
    .expect("reopens");
    let fired = engine.run_due().await.expect("runs");
    let started: Vec<String> = fired
        .iter()
        .filter_map(|f| match f {
            Fired::Schedule { occurrence, .. } => Some(cst(*occurrence)),
            Fired::Timer { .. } => None,
        })
        .collect();
    // The last working day of May 2026 is Friday the 29th.
    assert_eq!(started, ["2026-05-29T09:00:00+08:00"]);
    assert!(engine.run_due().await.expect("runs").is_empty());
    let reports = engine
        .list(Query {
            workflow: Some("monthly_report".into()),
            ..Query::default()
        })
        .await
        .expect("lists");
    assert_eq!(reports.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_escalation_ladder_reminds_then_reassigns_then_escalates() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Friday 25 September 2026 is a holiday; Monday 28 September the first working day.
    let (engine, _clock) =
        open_at(dir.path(), "complaint_ladder", "2026-09-24T11:00:00+08:00").await;
    let id = engine
        .start(
            "complaint_ladder",
            StartRequest::new(person("wu", "handler")),
        )
        .await
        .expect("starts")
        .instance
        .id;
    // "advance 3 working days" on the calendar: to Wednesday 30 September, 11:00.
    let fired = engine
        .advance("3 working days".parse().expect("a duration"))
        .await
        .expect("advances");
    assert_eq!(cst(engine.now()), "2026-09-30T11:00:00+08:00");
    assert_eq!(
        timers_fired(&fired),
        [
            (
                "remind".to_string(),
                "2026-09-28T11:00:00+08:00".to_string()
            ),
            (
                "reassign".to_string(),
                "2026-09-29T11:00:00+08:00".to_string()
            ),
            (
                "escalate".to_string(),
                "2026-09-30T11:00:00+08:00".to_string()
            ),
        ]
    );
    let instance = engine.get(&id).await.expect("exists");
    assert_eq!(instance.state, "escalated");
    assert_eq!(instance.data["owner_role"], json!("supervisor"));
    let wrong = refusal(
        engine
            .fire(&id, Fire::new("resolve", person("wu", "handler")))
            .await,
    );
    assert_eq!(wrong.code(), "role_not_allowed");
    engine
        .fire(&id, Fire::new("resolve", person("chen", "manager")))
        .await
        .expect("the manager resolves it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timers_due_while_the_engine_was_down_fire_once_in_due_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (engine, _clock) = open_at(dir.path(), "lead_callback", "2026-03-02T10:00:00+08:00").await;
    let mut leads = Vec::new();
    for minute in 0..5 {
        engine
            .advance_to(at(&format!("2026-03-02T10:0{minute}:00+08:00")))
            .await
            .expect("advances");
        let lead = engine
            .start(
                "lead_callback",
                StartRequest::new(person("zhao", "cs")).data(json!({"salesperson": "li"})),
            )
            .await
            .expect("starts");
        leads.push(lead.instance.id);
    }
    drop(engine);

    // Down for an hour; every lead's 15 minutes ran out meanwhile.
    let clock = VirtualClock::new(at("2026-03-02T11:00:00+08:00"));
    let engine = Engine::open(config(dir.path(), "lead_callback", Arc::new(clock.clone())))
        .await
        .expect("reopens");
    let fired = engine.run_due().await.expect("runs");
    let order: Vec<String> = fired
        .iter()
        .filter_map(|f| match f {
            Fired::Timer { instance, .. } => Some(instance.clone()),
            Fired::Schedule { .. } => None,
        })
        .collect();
    assert_eq!(order, leads, "fired in due order");
    for lead in &leads {
        let history = engine.history(lead).await.expect("history");
        let last = history.last().expect("entries");
        assert_eq!(last.kind, EntryKind::Timer);
        // It fired late, when the engine came back, and records when it was due.
        assert_eq!(cst(last.at), "2026-03-02T11:00:00+08:00");
        assert!(last.timer.as_ref().is_some_and(|t| t.due < last.at));
    }
    assert!(engine.run_due().await.expect("runs").is_empty());
    drop(engine);
    let engine = Engine::open(config(dir.path(), "lead_callback", Arc::new(clock)))
        .await
        .expect("reopens");
    assert!(engine.run_due().await.expect("runs").is_empty());
    for lead in &leads {
        let timers = engine
            .history(lead)
            .await
            .expect("history")
            .iter()
            .filter(|e| e.kind == EntryKind::Timer)
            .count();
        assert_eq!(timers, 1, "{lead} fired exactly once");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_clock_timer_fires_after_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Arm a 15-minute timer whose due time is two seconds from now on the real clock.
    let armed_at = Utc::now() - chrono::Duration::minutes(15) + chrono::Duration::seconds(2);
    let clock = VirtualClock::new(armed_at);
    let engine = Engine::open(config(dir.path(), "lead_callback", Arc::new(clock)))
        .await
        .expect("opens");
    let lead = engine
        .start(
            "lead_callback",
            StartRequest::new(person("zhao", "cs")).data(json!({"salesperson": "li"})),
        )
        .await
        .expect("starts")
        .instance
        .id;
    drop(engine);

    let engine = Engine::open(config(dir.path(), "lead_callback", Arc::new(SystemClock)))
        .await
        .expect("reopens on the system clock");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let runner = engine.clone();
    let loop_task = tokio::spawn(async move {
        runner
            .run_timers(
                async {
                    let _ = stopped.await;
                },
                |_, _| {},
                |err| panic!("timer loop failed: {err}"),
            )
            .await;
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if engine.get(&lead).await.expect("exists").state == "overdue" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the timer did not fire within 20 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let _ = stop.send(());
    loop_task.await.expect("the loop stops");
    let history = engine.history(&lead).await.expect("history");
    assert_eq!(
        history
            .iter()
            .filter(|e| e.kind == EntryKind::Timer)
            .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_moves_only_on_a_virtual_clock() {
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = Engine::open(config(dir.path(), "lead_callback", Arc::new(SystemClock)))
        .await
        .expect("opens");
    let err = engine
        .advance_to(Utc::now() + chrono::Duration::days(1))
        .await
        .expect_err("refused");
    assert_eq!(err.code(), "real_clock");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_that_is_not_a_time_is_refused_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (engine, _clock) = open_at(dir.path(), "deadlines", "2026-03-02T10:00:00+08:00").await;
    let clerk = person("he", "clerk");
    let id = engine
        .start("deadlines", StartRequest::new(clerk.clone()))
        .await
        .expect("starts")
        .instance
        .id;
    let refused = refusal(
        engine
            .fire(
                &id,
                Fire::new("set_deadline", clerk.clone()).payload(json!({"due_at": "next Tuesday"})),
            )
            .await,
    );
    assert_eq!(refused.code(), "script_failed");
    assert!(refused.to_string().contains("next Tuesday"), "{refused}");
    let instance = engine.get(&id).await.expect("exists");
    assert_eq!((instance.state.as_str(), instance.seq), ("idle", 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_already_past_fires_at_once_and_the_history_says_so() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (engine, _clock) = open_at(dir.path(), "deadlines", "2026-03-02T10:00:00+08:00").await;
    let clerk = person("he", "clerk");
    let id = engine
        .start("deadlines", StartRequest::new(clerk.clone()))
        .await
        .expect("starts")
        .instance
        .id;
    let set = engine
        .fire(
            &id,
            Fire::new("set_deadline", clerk).payload(json!({"due_at": "2026-02-27"})),
        )
        .await
        .expect("armed");
    let armed = &set.entry.timers_armed[0];
    assert_eq!(cst(armed.due), "2026-03-02T10:00:00+08:00");
    let note = armed.note.as_deref().expect("a note");
    assert!(note.contains("2026-02-27T00:00:00+08:00"), "{note}");
    assert!(note.contains("fires at once"), "{note}");
    let fired = engine.run_due().await.expect("runs");
    assert_eq!(fired.len(), 1);
    assert_eq!(engine.get(&id).await.expect("exists").state, "done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn working_days_in_a_year_without_holiday_data_are_refused_naming_the_year() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (engine, _clock) = open_at(dir.path(), "deadlines", "2028-03-01T10:00:00+08:00").await;
    let clerk = person("he", "clerk");
    let id = engine
        .start("deadlines", StartRequest::new(clerk.clone()))
        .await
        .expect("starts")
        .instance
        .id;
    let refused = refusal(
        engine
            .fire(&id, Fire::new("count_working_days", clerk))
            .await,
    );
    assert_eq!(refused.code(), "calendar");
    assert!(refused.to_string().contains("2028"), "{refused}");
    assert_eq!(engine.get(&id).await.expect("exists").seq, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timer_whose_event_is_refused_lapses_once_and_leaves_the_instance_in_place() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (engine, _clock) = open_at(dir.path(), "deadlines", "2026-03-02T10:00:00+08:00").await;
    let clerk = person("he", "clerk");
    let id = engine
        .start("deadlines", StartRequest::new(clerk.clone()))
        .await
        .expect("starts")
        .instance
        .id;
    engine
        .fire(&id, Fire::new("count_working_days", clerk.clone()))
        .await
        .expect("counting");
    let fired = engine
        .advance_to(at("2026-03-31T00:00:00+08:00"))
        .await
        .expect("advances");
    match &fired[..] {
        [
            Fired::Timer {
                due,
                refused: Some(why),
                ..
            },
        ] => {
            assert_eq!(cst(*due), "2026-03-05T10:00:00+08:00");
            assert!(why.contains("guard_failed"), "{why}");
        }
        other => panic!("expected one lapsed timer, got {other:?}"),
    }
    let instance = engine.get(&id).await.expect("exists");
    assert_eq!(instance.state, "counting");
    assert!(instance.timers.is_empty());
    let last = engine
        .history(&id)
        .await
        .expect("history")
        .pop()
        .expect("entries");
    assert_eq!((last.kind, last.entered), (EntryKind::Timer, false));
    engine
        .fire(&id, Fire::new("cancel", clerk))
        .await
        .expect("the clerk can still close it");
}

#[test]
fn unknown_calendars_are_reported_where_they_are_named() {
    use sopflow::catalog::{self, Sources};
    let text = std::fs::read_to_string(fixtures().join("deadlines.yaml"))
        .expect("fixture")
        .replace(
            "{after: 3 working days, fire: elapsed, title: 三个工作日}",
            "{after: 3 working days, fire: elapsed, calendar: finance_dsk}",
        );
    let report = catalog::build(
        Sources::from_texts(vec![(PathBuf::from("deadlines.yaml"), text)], vec![]),
        &sopflow::script::Sandbox::default(),
    );
    let found: Vec<String> = report
        .diagnostics
        .iter()
        .map(|d| format!("{} {}:{} {}", d.code, d.span.line, d.span.column, d.hint))
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("E209 26:"), "{found:?}");
    assert!(
        found[0].contains("did you mean `finance_desk`?"),
        "{found:?}"
    );
}

/// The shipped daily cash handover (M11 L161 "客服人员每日下班前…日清日缴") opens one handover
/// every day, weekends included; a weekend's is due at the end of the next working day, when
/// finance is there to check it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cash_handover_opens_every_day_and_a_weekend_day_is_due_on_the_next_working_day() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let clock = VirtualClock::new(at("2026-03-06T08:00:00+08:00"));
    let engine = Engine::open(
        support::store_config(&dir.path().join("data"))
            .sources(vec![
                root.join("workflows/cash_handover.yaml"),
                root.join("rules"),
                root.join("calendars"),
            ])
            .clock(Arc::new(clock.clone())),
    )
    .await
    .expect("opens");
    assert!(
        !engine.load_report().has_errors(),
        "{:?}",
        engine.load_report().diagnostics
    );
    let fired = engine
        .advance_to(at("2026-03-09T10:00:00+08:00"))
        .await
        .expect("advances");
    let opened: Vec<(String, String)> = fired
        .iter()
        .filter_map(|f| match f {
            Fired::Schedule {
                occurrence,
                instance,
                ..
            } => Some((cst(*occurrence), instance.clone())),
            Fired::Timer { .. } => None,
        })
        .collect();
    let days: Vec<&str> = opened.iter().map(|(day, _)| day.as_str()).collect();
    assert_eq!(
        days,
        [
            "2026-03-06T09:00:00+08:00", // Friday
            "2026-03-07T09:00:00+08:00", // Saturday
            "2026-03-08T09:00:00+08:00", // Sunday
            "2026-03-09T09:00:00+08:00", // Monday
        ]
    );
    let saturday = engine.get(&opened[1].1).await.expect("exists");
    assert_eq!(saturday.state, "collecting");
    assert_eq!(
        cst(saturday.timers[0].due),
        "2026-03-09T18:00:00+08:00",
        "a day off hands over by the end of the next working day"
    );
}
