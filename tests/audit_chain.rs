//! `audit chain` and `audit export`: the approval chain of a hot-work permit through its four
//! departments and of an 18,000-yuan out-of-budget expense, signers explained on the runtime's
//! test workflow, a month of expense approvals exported to CSV, and the CLI on a store made
//! under a virtual clock.

mod support;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sopflow::audit::chain::{ApprovalChain, GuardPurpose, Link, LinkKind};
use sopflow::audit::export::{CsvRows, ExportQuery, ExportSummary, parse_bound};
use sopflow::clock::{Clock, VirtualClock};
use sopflow::engine::{Engine, Fire, StartRequest};
use sopflow::machine::Actor;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("a valid time")
        .with_timezone(&Utc)
}

/// An engine with the shipped workflows on a virtual clock showing `start`.
async fn open(data: &Path, start: &str) -> (Engine, VirtualClock) {
    let clock = VirtualClock::new(at(start));
    let engine = Engine::open(
        support::store_config(data)
            .sources(vec![root().join("workflows"), root().join("rules")])
            .clock(Arc::new(clock.clone())),
    )
    .await
    .expect("opens");
    (engine, clock)
}

fn person(id: &str, role: &str) -> Actor {
    Actor::new(id, [role])
}

/// Moves the clock on by `minutes`.
fn later(clock: &VirtualClock, minutes: i64) {
    clock.set(clock.now() + chrono::TimeDelta::minutes(minutes));
}

fn documents(certificate: &str) -> Value {
    json!({"notification_letter": "HW-2026-031", "applicant_seal": true, "operator_certificate": certificate})
}

/// A hot-work permit from application to distribution, started at the clock's time; the
/// order department first sends it back for an expired certificate.
async fn permit(engine: &Engine, clock: &VirtualClock) -> String {
    let contractor = person("wang.wei", "contractor");
    let id = engine
        .start(
            "hot_work_permit",
            StartRequest::new(contractor.clone()).business_key("B2-031"),
        )
        .await
        .expect("starts")
        .instance
        .id;
    let steps: Vec<(Fire, i64)> = vec![
        (
            Fire::new("submit", contractor.clone()).payload(documents("T-4411")),
            10,
        ),
        (
            Fire::new("reject", person("li.na", "order_dept")).comment("操作人合格证已过期"),
            45,
        ),
        (
            Fire::new("resubmit", contractor).payload(documents("T-5520")),
            60,
        ),
        (
            Fire::new("approve", person("li.na", "order_dept")).comment("同意,动火时现场配灭火器"),
            30,
        ),
        (
            Fire::new("approve", person("zhao.min", "cs_dept")).comment("复审通过"),
            90,
        ),
        (
            Fire::new("approve", person("chen.gang", "project_gm")).comment("同意动火"),
            120,
        ),
        (Fire::new("affix_seal", person("sun.li", "admin_dept")), 20),
        (
            Fire::new("distribute", person("zhao.min", "cs_dept"))
                .payload(json!({"archive_reference": "CS-ARCH-088", "copy_to_applicant": true, "copy_to_order_dept": true})),
            15,
        ),
    ];
    for (fire, minutes) in steps {
        later(clock, minutes);
        let event = fire.event.clone();
        engine
            .fire(&id, fire)
            .await
            .unwrap_or_else(|e| panic!("{event}: {e}"));
    }
    id.to_string()
}

/// Who approves an expense in each review state.
fn approver(state: &str) -> Actor {
    match state {
        "dept_head_review" => person("zhou.jie", "dept_head"),
        "finance_review" => person("qian.li", "finance_supervisor"),
        "property_gm_review" => person("sun.hao", "property_gm"),
        "branch_finance_review" => person("wu.fang", "branch_finance_head"),
        "branch_gm_review" => person("zheng.wei", "branch_gm"),
        "chairman_review" => person("wang.dong", "south_region_chairman"),
        "landlord_review" => person("feng.yu", "landlord"),
        other => panic!("no approver for {other}"),
    }
}

/// An expense submitted at the clock's time and approved by everyone its route needs, 40
/// minutes apart, each with a comment naming the approver's state. Returns its id.
async fn expense(
    engine: &Engine,
    clock: &VirtualClock,
    key: &str,
    amount: f64,
    budget: &str,
) -> String {
    let applicant = person("chen.xiao", "applicant");
    let id = engine
        .start(
            "expense_approval",
            StartRequest::new(applicant.clone()).business_key(key),
        )
        .await
        .expect("starts")
        .instance
        .id;
    later(clock, 5);
    let mut state = engine
        .fire(
            &id,
            Fire::new("submit", applicant).payload(json!({
                "department": "工程部",
                "expense_item": "消防设备维修",
                "amount": amount,
                "budget_type": budget,
            })),
        )
        .await
        .expect("submitted")
        .instance;
    while !state.finished {
        later(clock, 40);
        let comment = format!("{} 同意", state.state);
        state = engine
            .fire(
                &id,
                Fire::new("approve", approver(&state.state)).comment(comment),
            )
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", state.state))
            .instance;
    }
    assert_eq!(state.state, "approved");
    id.to_string()
}

fn by_actor<'a>(chain: &'a ApprovalChain, actor: &str) -> Vec<&'a Link> {
    chain.links.iter().filter(|l| l.actor == actor).collect()
}

fn stamp(link: &Link) -> (String, String) {
    (
        link.at_local.format("%Y-%m-%d %H:%M %:z").to_string(),
        link.at_utc.format("%Y-%m-%d %H:%M").to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hot_work_permit_names_each_department_its_time_and_comment() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (engine, clock) = open(&dir.path().join("data"), "2026-11-02T09:00:00+08:00").await;
    let id = permit(&engine, &clock).await;
    let chain = engine.approval_chain(&id).await.expect("a chain");
    let version = engine
        .definition_of("hot_work_permit")
        .expect("loaded")
        .hash
        .clone();

    assert_eq!(chain.workflow_title.as_deref(), Some("动火证审批"));
    assert_eq!(chain.business_key.as_deref(), Some("B2-031"));
    assert_eq!(
        (chain.state.as_str(), chain.finished),
        ("distributed", true)
    );
    assert_eq!(chain.version, version);
    assert_eq!(chain.timezone, "+08:00");
    assert_eq!(chain.links.len(), 9);
    assert!(chain.links.iter().all(|l| l.version == version));
    assert!(chain.notes.is_empty(), "{:?}", chain.notes);

    let kinds: Vec<LinkKind> = chain.links.iter().map(|l| l.kind).collect();
    use LinkKind::*;
    assert_eq!(
        kinds,
        [
            Start, Decision, Rejection, Decision, Approval, Approval, Approval, Decision, Decision
        ]
    );

    // The three reviews and the seal: who, in which role, when (local and UTC), and what they said.
    let expected = [
        (
            4,
            "li.na",
            "order_dept",
            "秩序维护部",
            "初审通过",
            "2026-11-02 11:25 +08:00",
            "2026-11-02 03:25",
            Some("同意,动火时现场配灭火器"),
        ),
        (
            5,
            "zhao.min",
            "cs_dept",
            "客户服务部",
            "复审通过",
            "2026-11-02 12:55 +08:00",
            "2026-11-02 04:55",
            Some("复审通过"),
        ),
        (
            6,
            "chen.gang",
            "project_gm",
            "项目总经理",
            "审定签字",
            "2026-11-02 14:55 +08:00",
            "2026-11-02 06:55",
            Some("同意动火"),
        ),
        (
            7,
            "sun.li",
            "admin_dept",
            "行政部",
            "加盖服务中心鲜章",
            "2026-11-02 15:15 +08:00",
            "2026-11-02 07:15",
            None,
        ),
    ];
    for (seq, actor, role, role_title, event_title, local, utc, comment) in expected {
        let link = &chain.links[seq];
        assert_eq!(link.seq, seq as u64);
        assert_eq!(link.actor, actor, "#{seq}");
        assert_eq!(link.role.as_deref(), Some(role), "#{seq}");
        assert_eq!(link.role_title.as_deref(), Some(role_title), "#{seq}");
        assert_eq!(link.event_title.as_deref(), Some(event_title), "#{seq}");
        assert_eq!(stamp(link), (local.to_string(), utc.to_string()), "#{seq}");
        assert_eq!(link.comment.as_deref(), comment, "#{seq}");
    }
    let rejection = &chain.links[2];
    assert_eq!(rejection.event_title.as_deref(), Some("初审退回"));
    assert_eq!(rejection.comment.as_deref(), Some("操作人合格证已过期"));
    assert_eq!(
        (
            rejection.from_title.as_deref(),
            rejection.to_title.as_deref()
        ),
        (Some("秩序维护部初审"), Some("已退回"))
    );
    // The submission's guard, with what it read.
    let submit = &chain.links[1];
    assert_eq!(submit.guards.len(), 1);
    let guard = &submit.guards[0];
    assert_eq!(guard.guard, "hot_work::documents_complete");
    assert!(guard.passed);
    assert!(
        guard
            .text
            .contains("payload.operator_certificate = \"T-4411\""),
        "{}",
        guard.text
    );
    assert!(guard.text.ends_with(": held"), "{}", guard.text);
    assert!(chain.links[8].finished);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_out_of_budget_expense_explains_its_routing_with_the_amount() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (engine, clock) = open(&dir.path().join("data"), "2026-11-10T09:00:00+08:00").await;
    let id = expense(&engine, &clock, "EXP-2026-118", 18000.0, "out").await;
    let chain = engine.approval_chain(&id).await.expect("a chain");
    let version = &engine
        .definition_of("expense_approval")
        .expect("loaded")
        .hash;
    assert_eq!(&chain.version, version);
    assert_eq!(chain.business_key.as_deref(), Some("EXP-2026-118"));

    // Out of budget and above 1000: every level, the chairman included, then the landlord.
    let approvers: Vec<(&str, &str)> = chain
        .links
        .iter()
        .filter(|l| l.kind == LinkKind::Approval)
        .map(|l| (l.actor.as_str(), l.role_title.as_deref().unwrap_or("")))
        .collect();
    assert_eq!(
        approvers,
        [
            ("zhou.jie", "部门主管"),
            ("qian.li", "财务主管"),
            ("sun.hao", "物业总经理"),
            ("wu.fang", "分公司财务负责人"),
            ("zheng.wei", "北京公司成都分公司总经理"),
            ("wang.dong", "南区董事长"),
            ("feng.yu", "业主方"),
        ]
    );

    // The submission set the amount and the route.
    let submit = &chain.links[1];
    assert_eq!(submit.kind, LinkKind::Decision);
    let set: Vec<(&str, &Value)> = submit
        .changes
        .iter()
        .map(|c| (c.field.as_str(), &c.value))
        .collect();
    assert!(set.contains(&("amount", &json!(18000.0))), "{set:?}");
    assert!(
        set.contains(&("final_authority", &json!("landlord"))),
        "{set:?}"
    );

    // The property GM is not final out of budget: the first branch's guard did not hold.
    let gm = by_actor(&chain, "sun.hao")[0];
    assert_eq!(gm.to, "branch_finance_review");
    assert_eq!(gm.event_title.as_deref(), Some("物业总经理初审通过"));
    assert_eq!(gm.guards.len(), 1);
    assert_eq!(
        gm.guards[0].text,
        "expense::property_gm_is_final (budget_type = \"out\", amount = 18000, params.in_budget_property_gm_limit = 200): did not hold"
    );

    // The branch GM sends it to the chairman: not final, then `needs_chairman` held.
    let branch = by_actor(&chain, "zheng.wei")[0];
    assert_eq!(branch.to, "chairman_review");
    assert_eq!(
        branch.event_title.as_deref(),
        Some("分公司总经理审核通过,报南区董事长(预算外1000元以上)")
    );
    let texts: Vec<&str> = branch.guards.iter().map(|g| g.text.as_str()).collect();
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(
        texts[0].starts_with("expense::branch_gm_is_final ("),
        "{texts:?}"
    );
    assert!(texts[0].ends_with("): did not hold"), "{texts:?}");
    assert_eq!(
        texts[1],
        "expense::needs_chairman (budget_type = \"out\", amount = 18000, params.out_budget_branch_gm_limit = 1000): held"
    );
    let routing = &branch.guards[1];
    assert!(routing.passed);
    assert_eq!(routing.purpose, GuardPurpose::Transition);
    let amount = routing
        .values
        .iter()
        .find(|v| v.field == "amount")
        .expect("reads the amount");
    assert_eq!(amount.value, json!(18000.0));
    assert_eq!(amount.title.as_deref(), Some("审批金额(元)"));

    // The landlord's final approval: time, comment, role.
    let landlord = by_actor(&chain, "feng.yu")[0];
    assert_eq!(landlord.comment.as_deref(), Some("landlord_review 同意"));
    assert_eq!(landlord.role.as_deref(), Some("landlord"));
    assert!(landlord.finished);
    // Submitted at 09:05, then seven approvals 40 minutes apart: the last at 13:45.
    assert_eq!(
        stamp(landlord),
        (
            "2026-11-10 13:45 +08:00".to_string(),
            "2026-11-10 05:45".to_string()
        )
    );
    assert!(chain.links.iter().all(|l| &l.version == version));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signers_are_explained_with_their_conditions_and_system_steps_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = VirtualClock::new(at("2026-11-16T10:00:00+08:00"));
    let engine = Engine::open(
        support::store_config(&dir.path().join("data"))
            .sources(vec![root().join("tests/runtime")])
            .clock(Arc::new(clock.clone())),
    )
    .await
    .expect("opens");
    let clerk = person("clerk-1", "clerk");
    let id = engine
        .start(
            "acceptance",
            StartRequest::new(clerk.clone()).data(json!({"amount": 18000, "workers": ["张三"]})),
        )
        .await
        .expect("starts")
        .instance
        .id;
    engine
        .fire(&id, Fire::new("open", clerk.clone()))
        .await
        .expect("opens");
    let card = engine.get(&id).await.expect("exists").children[0]
        .id
        .clone();
    later(&clock, 30);
    engine
        .fire(&card, Fire::new("return", clerk.clone()))
        .await
        .expect("returned");
    later(&clock, 30);
    engine
        .fire(&id, Fire::new("approve", clerk.clone()).comment("经办确认"))
        .await
        .expect("clerk signs");
    later(&clock, 30);
    engine
        .fire(
            &id,
            Fire::new("reject", person("landlord-1", "landlord")).comment("金额超出预算"),
        )
        .await
        .expect("landlord rejects");

    let chain = engine.approval_chain(&id).await.expect("a chain");
    let kinds: Vec<(&str, LinkKind)> = chain
        .links
        .iter()
        .map(|l| (l.event.as_str(), l.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            ("start", LinkKind::Start),
            ("open", LinkKind::Decision),
            ("child_finished", LinkKind::System),
            ("passes_done", LinkKind::System),
            ("approve", LinkKind::Approval),
            ("reject", LinkKind::Rejection),
        ]
    );
    assert!(
        chain.links[1]
            .notes
            .iter()
            .any(|n| n.contains("started child")),
        "{:?}",
        chain.links[1].notes
    );
    assert!(
        chain.links[2]
            .notes
            .iter()
            .any(|n| n.contains("finished in returned")),
        "{:?}",
        chain.links[2].notes
    );
    // Entering the approval evaluated the landlord's condition, on the data after the step.
    let entering = &chain.links[3];
    assert_eq!(entering.guards.len(), 1);
    assert_eq!(entering.guards[0].purpose, GuardPurpose::Signer);
    assert_eq!(
        entering.guards[0].text,
        "data.amount >= params.landlord_threshold (amount = 18000, params.landlord_threshold = 15000): held"
    );
    let signed = &chain.links[4];
    let signature = signed.signature.as_ref().expect("a signature");
    assert_eq!(signature.text, "signer 1 of 3: 经办 (clerk)");
    assert!(!signature.completed);
    assert_eq!(signed.event_title.as_deref(), Some("经办"));
    assert!(!signed.moved, "the approval is not complete yet");
    let signers: Vec<&str> = signed.signers.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(
        signers,
        [
            "经办 clerk: required (always)",
            "业主方 landlord: required, because data.amount >= params.landlord_threshold (amount = 18000, params.landlord_threshold = 15000)",
            "中心 centre: required (always)",
        ]
    );
    let rejected = &chain.links[5];
    assert_eq!(rejected.comment.as_deref(), Some("金额超出预算"));
    assert_eq!(rejected.to, "applied");

    // A small amount skips the landlord, and says why.
    let small = engine
        .start(
            "acceptance",
            StartRequest::new(clerk.clone()).data(json!({"amount": 800, "workers": ["李四"]})),
        )
        .await
        .expect("starts")
        .instance
        .id;
    engine
        .fire(&small, Fire::new("open", clerk.clone()))
        .await
        .expect("opens");
    let card = engine.get(&small).await.expect("exists").children[0]
        .id
        .clone();
    engine
        .fire(&card, Fire::new("return", clerk.clone()))
        .await
        .expect("returned");
    engine
        .fire(&small, Fire::new("approve", clerk))
        .await
        .expect("clerk signs");
    let chain = engine.approval_chain(&small).await.expect("a chain");
    let last = chain.links.last().expect("links");
    let skipped: Vec<&str> = last.signers.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(
        skipped[1],
        "业主方 landlord: skipped, because data.amount >= params.landlord_threshold (amount = 800, params.landlord_threshold = 15000) did not hold"
    );
    assert!(!last.signers[1].required);
}

/// A month of expense approvals: three in November 2026 (Beijing time), one in October, one
/// on 1 December 00:10 Beijing time (still 30 November in UTC), and a hot-work permit in
/// November. Returns the November expenses' ids.
async fn month_of_expenses(data: &Path) -> Vec<String> {
    let (engine, clock) = open(data, "2026-10-20T10:00:00+08:00").await;
    expense(&engine, &clock, "EXP-OCT-1", 5000.0, "in").await;
    clock.set(at("2026-11-03T09:00:00+08:00"));
    let mut november = vec![expense(&engine, &clock, "EXP-NOV-1", 18000.0, "out").await];
    clock.set(at("2026-11-16T14:00:00+08:00"));
    november.push(expense(&engine, &clock, "EXP-NOV-2", 150.0, "in").await);
    permit(&engine, &clock).await;
    clock.set(at("2026-11-30T16:00:00+08:00"));
    november.push(expense(&engine, &clock, "EXP-NOV-3", 800.0, "out").await);
    clock.set(at("2026-12-01T00:10:00+08:00"));
    expense(&engine, &clock, "EXP-DEC-1", 300.0, "in").await;
    drop(engine);
    november
}

fn november() -> ExportQuery {
    ExportQuery {
        workflow: Some("expense_approval".into()),
        from: Some(parse_bound("2026-11-01", false).expect("date")),
        to: Some(parse_bound("2026-11-30", true).expect("date")),
        actor: None,
    }
}

fn read_csv(bytes: &[u8]) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_reader(bytes);
    let header = reader
        .headers()
        .expect("a header")
        .iter()
        .map(str::to_string)
        .collect();
    let rows = reader
        .records()
        .map(|r| r.expect("a record").iter().map(str::to_string).collect())
        .collect();
    (header, rows)
}

fn column(header: &[String], name: &str) -> usize {
    header
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no column {name} in {header:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_month_of_expense_approvals_exports_to_csv() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let ids = month_of_expenses(&data).await;
    let (engine, _) = open(&data, "2026-12-02T09:00:00+08:00").await;

    let mut rows = CsvRows::new(Vec::new()).expect("header");
    let mut progress = Vec::new();
    // `export` walks the store, which blocks: off the async threads.
    let summary = tokio::task::block_in_place(|| {
        engine.export(&november(), &mut |n| progress.push(n), &mut |row| {
            rows.write(&row)
        })
    })
    .expect("exports");
    let bytes = rows.finish().expect("flushes");
    let (header, records) = read_csv(&bytes);
    let instance = column(&header, "instance");
    let key = column(&header, "business_key");
    let kind = column(&header, "kind");
    let actor = column(&header, "actor");
    let local = column(&header, "at_local");
    let guards = column(&header, "guards");
    let comment = column(&header, "comment");
    let version = column(&header, "version");

    // 18000 out of budget: start, submit, 7 approvals; 150 in budget: start, submit, 3
    // approvals (the property GM is final); 800 out of budget: start, submit, 6 approvals.
    assert_eq!(records.len(), 9 + 5 + 8, "{records:#?}");
    assert_eq!(summary.rows, records.len() as u64);
    assert_eq!(summary.skipped, 0);
    assert_eq!(progress.last(), Some(&summary.scanned));
    let mut seen: Vec<&str> = records.iter().map(|r| r[instance].as_str()).collect();
    seen.dedup();
    assert_eq!(seen, ids.iter().map(String::as_str).collect::<Vec<_>>());
    for record in &records {
        assert!(
            record[local].starts_with("2026-11-") && record[local].ends_with("+08:00"),
            "{record:?}"
        );
        assert!(record[key].starts_with("EXP-NOV-"), "{record:?}");
        assert_ne!(record[kind], "system");
        assert_eq!(
            record[version],
            engine
                .definition_of("expense_approval")
                .expect("loaded")
                .hash
        );
    }
    let kinds: Vec<&str> = records
        .iter()
        .filter(|r| r[instance] == ids[0])
        .map(|r| r[kind].as_str())
        .collect();
    assert_eq!(
        kinds,
        [
            "start", "decision", "approval", "approval", "approval", "approval", "approval",
            "approval", "approval"
        ]
    );
    let chairman_route = records
        .iter()
        .find(|r| r[instance] == ids[0] && r[actor] == "zheng.wei")
        .expect("the branch GM's row");
    assert!(
        chairman_route[guards].contains(
            "expense::needs_chairman (budget_type = \"out\", amount = 18000, params.out_budget_branch_gm_limit = 1000): held"
        ),
        "{}",
        chairman_route[guards]
    );
    assert_eq!(chairman_route[comment], "branch_gm_review 同意");

    // One actor only.
    let mut landlord_rows = 0;
    tokio::task::block_in_place(|| {
        engine.export(
            &ExportQuery {
                actor: Some("feng.yu".into()),
                ..november()
            },
            &mut |_| {},
            &mut |row| {
                assert_eq!(row.actor, "feng.yu");
                landlord_rows += 1;
                Ok::<(), std::io::Error>(())
            },
        )
    })
    .expect("exports");
    assert_eq!(landlord_rows, 2, "the 18000 and the 800 out of budget");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_record_is_skipped_and_counted() {
    if support::sled_only("an_unreadable_record_is_skipped_and_counted") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let ids = month_of_expenses(&data).await;
    {
        let db = support::raw_sled(&data);
        let log = db.open_tree("log").expect("log");
        let mut key = ids[1].as_bytes().to_vec();
        key.push(0);
        key.extend_from_slice(&2u64.to_be_bytes());
        log.insert(key, b"not an entry".to_vec()).expect("insert");
        db.flush().expect("flush");
    }
    let (engine, _) = open(&data, "2026-12-02T09:00:00+08:00").await;
    let mut count = 0;
    let summary: ExportSummary = engine
        .export(&november(), &mut |_| {}, &mut |_| {
            count += 1;
            Ok::<(), std::io::Error>(())
        })
        .expect("exports");
    assert_eq!(summary.skipped, 1);
    assert_eq!(count, 9 + 4 + 8, "every other row is still there");
}

// --- the command line ---------------------------------------------------------------------

fn sopflow(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sopflow"))
        .args(args)
        .arg("--store")
        .arg(support::store_arg(data))
        .arg("--workflows")
        .arg(root().join("workflows"))
        .arg("--rules")
        .arg(root().join("rules"))
        .env("NO_COLOR", "1")
        .output()
        .expect("runs sopflow")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn succeeded(output: &Output) -> String {
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        stdout(output),
        stderr(output)
    );
    stdout(output)
}

/// A store with one hot-work permit made on 2 November 2026, closed again.
async fn permit_store(data: &Path) -> String {
    let (engine, clock) = open(data, "2026-11-02T09:00:00+08:00").await;
    let id = permit(&engine, &clock).await;
    drop(engine);
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_prints_a_chain_for_people_programs_and_spreadsheets() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let id = permit_store(&data).await;

    let human = succeeded(&sopflow(&data, &["audit", "chain", &id]));
    for expected in [
        "hot_work_permit (动火证审批)",
        "B2-031",
        "distributed (已签发,原件存档), finished",
        "审批 approval",
        "approve (初审通过)",
        "li.na as order_dept (秩序维护部)",
        "2026-11-02 11:25:00 +08:00  (2026-11-02 03:25:00 UTC)",
        "security_review (秩序维护部初审) -> cs_review (客服部复审)",
        "同意,动火时现场配灭火器",
        "chen.gang as project_gm (项目总经理)",
        "退回 rejection",
        "操作人合格证已过期",
        "hot_work::documents_complete (",
        "payload.applicant_seal = true",
        "): held",
    ] {
        assert!(human.contains(expected), "missing {expected:?} in\n{human}");
    }

    let json: Value = serde_json::from_str(&succeeded(&sopflow(
        &data,
        &["audit", "chain", &id, "--format", "json"],
    )))
    .expect("JSON");
    assert_eq!(json["instance"], id.as_str());
    assert_eq!(json["links"][5]["actor"], "zhao.min");
    assert_eq!(json["links"][5]["role_title"], "客户服务部");
    assert_eq!(json["links"][5]["kind"], "approval");
    assert_eq!(json["links"][5]["comment"], "复审通过");
    assert_eq!(json["links"][5]["at_local"], "2026-11-02T12:55:00+08:00");
    assert_eq!(json["links"][5]["at_utc"], "2026-11-02T04:55:00Z");
    assert_eq!(json["version"], json["links"][5]["version"]);

    let csv_text = succeeded(&sopflow(&data, &["audit", "chain", &id, "--format", "csv"]));
    let (header, records) = read_csv(csv_text.as_bytes());
    assert_eq!(records.len(), 9);
    assert_eq!(records[6][column(&header, "actor")], "chen.gang");
    assert_eq!(records[6][column(&header, "event_title")], "审定签字");
    assert_eq!(
        records[6][column(&header, "at_local")],
        "2026-11-02T14:55:00+08:00"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_exports_november_to_csv_and_names_an_unknown_instance() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let ids = month_of_expenses(&data).await;

    let output = sopflow(
        &data,
        &[
            "audit",
            "export",
            "--format",
            "csv",
            "--workflow",
            "expense_approval",
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-30",
        ],
    );
    let (header, records) = read_csv(succeeded(&output).as_bytes());
    assert_eq!(records.len(), 9 + 5 + 8);
    let instance = column(&header, "instance");
    assert!(records.iter().all(|r| ids.contains(&r[instance])));
    assert!(
        stderr(&output).contains(&format!("exported {} row(s)", records.len())),
        "{}",
        stderr(&output)
    );

    // Without --workflow, the permit made in November is there too; into a file.
    let file = dir.path().join("november.csv");
    let output = sopflow(
        &data,
        &[
            "audit",
            "export",
            "--format",
            "csv",
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-30",
            "--output",
            file.to_str().expect("utf-8"),
        ],
    );
    succeeded(&output);
    let (_, all) = read_csv(&std::fs::read(&file).expect("written"));
    assert_eq!(all.len(), 9 + 5 + 8 + 9);

    // JSON: one array.
    let output = sopflow(
        &data,
        &[
            "audit",
            "export",
            "--format",
            "json",
            "--from",
            "2026-12-01",
            "--actor",
            "chen.xiao",
        ],
    );
    let rows: Value = serde_json::from_str(&succeeded(&output)).expect("a JSON array");
    let rows = rows.as_array().expect("an array");
    assert_eq!(rows.len(), 2, "the December expense's start and submission");
    assert_eq!(rows[0]["business_key"], "EXP-DEC-1");

    let bad = sopflow(
        &data,
        &["audit", "export", "--format", "csv", "--from", "November"],
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("--from"), "{}", stderr(&bad));

    let unknown = sopflow(&data, &["audit", "chain", "expense_approval-999"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        stderr(&unknown).contains("no instance `expense_approval-999`"),
        "{}",
        stderr(&unknown)
    );
    assert!(stdout(&unknown).is_empty());
    let unknown = sopflow(
        &data,
        &["audit", "chain", "expense_approval-999", "--format", "json"],
    );
    assert_eq!(unknown.status.code(), Some(1));
    let error: Value = serde_json::from_slice(&unknown.stdout).expect("JSON");
    assert_eq!(error["error"]["code"], "unknown_instance");
}
