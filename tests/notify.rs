//! Notices computed from committed steps (`sopflow::notify::notices`): which notices a step
//! causes, in which order, to whom, rendered how; the same step always gives the same notices;
//! a template that fails on an instance's data still tells its recipients.

use chrono::{DateTime, Utc};
use serde_json::json;
use sopflow::clock::VirtualClock;
use sopflow::engine::{Config, Engine, Fire, StartRequest};
use sopflow::machine::{Actor, Instance};
use sopflow::notify::{self, Addressee, Cause, Notice, Settings};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("a valid time")
        .with_timezone(&Utc)
}

async fn open(dir: &Path, sources: Vec<PathBuf>) -> (Engine, VirtualClock) {
    // Monday 2 March 2026, a working day.
    let clock = VirtualClock::new(at("2026-03-02T09:00:00+08:00"));
    let config = Config::new(dir.join("data"))
        .sources(sources)
        .clock(Arc::new(clock.clone()));
    let engine = Engine::open(config).await.expect("opens");
    assert!(
        !engine.load_report().has_errors(),
        "{:?}",
        engine.load_report().diagnostics
    );
    (engine, clock)
}

/// Every entry of `id` with the notices it causes, computed from the history.
async fn notices_by_entry(engine: &Engine, id: &str, settings: &Settings) -> Vec<Vec<Notice>> {
    let history = engine.history(id).await.expect("history");
    let mut after: Option<Instance> = None;
    let mut out = Vec::new();
    for entry in &history {
        match after.as_mut() {
            None => after = Some(Instance::begin(entry).expect("a start")),
            Some(instance) => instance.apply(entry).expect("applies"),
        }
        let def = engine
            .definition_blocking(&entry.version)
            .await
            .expect("version");
        let instance = after.as_ref().expect("instance");
        let first = notify::notices(&def, entry, instance, settings);
        // Deterministic: the same step gives the same notices.
        assert_eq!(first, notify::notices(&def, entry, instance, settings));
        out.push(first);
    }
    out
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/base")
}

#[tokio::test]
async fn a_step_causes_its_transitions_then_its_states_notices_rendered_and_addressed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (engine, _) = open(dir.path(), vec![fixtures()]).await;
    let started = engine
        .start(
            "expense_claim",
            StartRequest::new(Actor::new("xiao", ["applicant"])),
        )
        .await
        .expect("starts");
    let id = started.instance.id.clone();
    engine
        .fire(
            &id,
            Fire::new("submit", Actor::new("xiao", ["applicant"])).payload(json!({
                "amount": 12500, "budget_type": "out", "receipts": ["R1", "R2"]
            })),
        )
        .await
        .expect("submits");
    engine
        .advance("1 hour".parse().expect("a duration"))
        .await
        .expect("advances");
    engine
        .fire(
            &id,
            Fire::new("reject", Actor::new("zhang", ["dept_head"])).comment("票据不全"),
        )
        .await
        .expect("rejects");
    let settings = Settings::new("https://flow.example.cn/");
    let all = notices_by_entry(&engine, &id, &settings).await;
    assert_eq!(all.len(), 3);
    assert!(
        all[0].is_empty(),
        "the start enters a state without notices"
    );

    let submit = &all[1];
    let keys: Vec<&str> = submit.iter().map(|n| n.key.as_str()).collect();
    assert_eq!(keys, [format!("{id}.1.0"), format!("{id}.1.1")]);
    assert_eq!(submit[0].id.as_deref(), Some("claim_submitted"));
    assert_eq!(
        submit[0].cause,
        Cause::Transition {
            state: "draft".into(),
            event: "submit".into()
        }
    );
    assert_eq!(
        submit[0].recipients,
        [Addressee::User { id: "xiao".into() }]
    );
    assert_eq!(submit[0].title, format!("报销单{id}已提交"));
    assert!(
        submit[0].body.contains("已提交2张票据"),
        "{}",
        submit[0].body
    );
    assert_eq!(
        submit[0].link,
        format!("https://flow.example.cn/instances/{id}")
    );
    assert_eq!(
        submit[1].cause,
        Cause::Entered {
            state: "dept_review".into()
        }
    );
    assert_eq!(
        submit[1].recipients,
        [Addressee::Role {
            id: "dept_head".into(),
            title: "部门主管".into()
        }]
    );
    assert_eq!(
        submit[1].body,
        "金额12,500.00元(预算外)。\n请于2026年3月3日 09:00前审核:https://flow.example.cn/instances/expense_claim-1"
    );
    assert!(submit.iter().all(|n| n.problem.is_none()));

    let reject = &all[2];
    assert_eq!(reject.len(), 1, "{reject:#?}");
    assert_eq!(
        reject[0].cause,
        Cause::Finished {
            state: "rejected".into()
        }
    );
    assert_eq!(
        reject[0].recipients,
        [
            Addressee::User { id: "xiao".into() },
            Addressee::Channel {
                name: "finance_group".into()
            }
        ]
    );
}

#[tokio::test]
async fn a_timers_notice_reads_its_timer_and_the_engine_is_nobody() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (engine, _) = open(dir.path(), vec![fixtures()]).await;
    let started = engine
        .start(
            "receipt_check",
            StartRequest::new(Actor::new("qian", ["finance_supervisor"])),
        )
        .await
        .expect("starts");
    let id = started.instance.id.clone();
    engine
        .advance("2 working days".parse().expect("a duration"))
        .await
        .expect("advances");
    let all = notices_by_entry(&engine, &id, &Settings::default()).await;
    assert_eq!(all.len(), 2, "the start, and the timer's step");
    let fired = &all[1];
    assert_eq!(fired.len(), 1);
    assert!(matches!(&fired[0].cause, Cause::Timer { event, .. } if event == "remind"));
    assert_eq!(
        fired[0].recipients,
        [Addressee::Role {
            id: "finance_supervisor".into(),
            title: "财务主管".into()
        }]
    );
    assert_eq!(fired[0].body, "remind已到(2026年3月4日 09:00),请尽快核对。");
    assert_eq!(fired[0].link, format!("/instances/{id}"));
}

#[tokio::test]
async fn a_template_that_fails_on_the_data_still_tells_with_plain_words() {
    let dir = tempfile::tempdir().expect("temp dir");
    let workflows = dir.path().join("workflows");
    std::fs::create_dir(&workflows).expect("mkdir");
    // Valid (the trial render has a deadline), but this state arms no timer, so at run time
    // `deadlines[0]` does not exist.
    std::fs::write(
        workflows.join("plain.yaml"),
        r#"id: plain
title: 通知
roles: {clerk: 经办人}
initial: open
states:
  open:
    title: 办理中
    notify:
      - to: [starter, actor, next_roles]
        title: "请于{{ deadlines[0].due }}前办理"
        message: "{{ link }}"
    on:
      done: {to: closed, roles: [clerk]}
  closed: {final: true}
"#,
    )
    .expect("write");
    let (engine, _) = open(dir.path(), vec![workflows]).await;
    let started = engine
        .start("plain", StartRequest::new(Actor::new("li", ["clerk"])))
        .await
        .expect("starts");
    let all = notices_by_entry(&engine, &started.instance.id, &Settings::default()).await;
    let notice = &all[0][0];
    assert_eq!(notice.title, "通知plain-1");
    assert_eq!(notice.body, "当前环节:办理中。详情:/instances/plain-1");
    assert!(notice.problem.is_some());
    // The starter and the actor are one person, told once, then the role.
    assert_eq!(
        notice.recipients,
        [
            Addressee::User { id: "li".into() },
            Addressee::Role {
                id: "clerk".into(),
                title: "经办人".into()
            }
        ]
    );
}
