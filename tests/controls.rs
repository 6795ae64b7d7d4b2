//! The controls an auditor signs off on, in the pure step (`sopflow::machine`): which fields a
//! step may write, facts fixed once set, lengths, who may start, own-scoped roles and parties,
//! who may read, and the audit kind and branch each entry records.
//!
//! Every refusal is checked to change nothing: the step returns no entry, so the snapshot
//! folded from the history stays as it was.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value, json};
use sopflow::catalog::{self, Definition, Sources};
use sopflow::definition::model::AuditKind;
use sopflow::machine::{self, Actor, Command, Entry, Instance, Refusal, Start};
use sopflow::script::Sandbox;
use std::path::PathBuf;
use std::sync::Arc;

/// An expense request in miniature: the applicant (own-scoped) submits the amount, which is
/// fixed; a reviewer approves or sends it back; only a resubmission may change the amount.
/// The named payee (a party) may confirm payment.
const EXPENSE: &str = r##"id: expense
title: 费用审批
roles:
  applicant: {title: 申请人, scope: own}
  payee: {title: 收款人, scope: own}
  reviewer: 财务主管
  gm: 总经理
  archivist: 档案室
access:
  read: [archivist]
fields:
  amount: {type: money, title: 金额, required_on: [submit, resubmit], fixed: true}
  purpose: {type: string, title: 用途, required_on: [submit, resubmit], max_length: 10}
  note: {type: text, title: 审核意见, optional_on: [approve, send_back]}
  payee_id: {type: string, title: 收款人, optional_on: [start, submit], party: payee}
  route: {type: string, title: 路由}
  approved_at: {type: datetime, title: 批准时间, fixed: true}
  invoice_no: {type: string, title: 发票号, required_on: [attach_invoice], fixed: true}
initial: drafted
states:
  drafted:
    on:
      submit: {to: review, roles: [applicant], action: "#{ route: \"finance\" }"}
  review:
    on:
      approve:
        - {to: gm_review, roles: [reviewer], guard: "data.amount >= 1000"}
        - {to: approved, roles: [reviewer], action: "#{ approved_at: now }"}
      send_back: {to: returned, roles: [reviewer], requires: [comment]}
      restamp: {to: review, roles: [reviewer], action: "#{ approved_at: now }", audit: decision}
      attach_invoice: {to: review, roles: [applicant]}
  gm_review:
    on:
      pass: {to: approved, roles: [gm], audit: approval, action: "#{ approved_at: now }"}
  returned:
    on:
      resubmit: {to: review, roles: [applicant]}
  approved:
    on:
      confirm_paid: {to: paid, roles: [payee]}
  paid: {final: true}
"##;

fn definition() -> (Arc<Definition>, Sandbox) {
    let sandbox = Sandbox::default();
    let report = catalog::build(
        Sources::from_texts(
            vec![(PathBuf::from("expense.yaml"), EXPENSE.to_string())],
            vec![],
        ),
        &sandbox,
    );
    assert!(report.diagnostics.is_empty(), "{:?}", report.diagnostics);
    let def = report.catalog.get("expense").expect("builds").clone();
    (def, sandbox)
}

fn at(minutes: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-02T01:30:00Z")
        .expect("valid")
        .with_timezone(&Utc)
        + Duration::minutes(minutes)
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

struct Run {
    def: Arc<Definition>,
    sandbox: Sandbox,
    instance: Instance,
    history: Vec<Entry>,
}

impl Run {
    fn start(starter: Actor, data: Value) -> Result<Run, Refusal> {
        let (def, sandbox) = definition();
        let start = Start {
            id: "expense-1".into(),
            actor: starter,
            data: object(data),
            business_key: Some("EXP-001".into()),
            parent: None,
            idempotency_key: None,
            at: at(0),
            number: None,
        };
        let entry = machine::start(&def, &start, &sandbox)?;
        let instance = Instance::begin(&entry).expect("a start");
        Ok(Run {
            def,
            sandbox,
            instance,
            history: vec![entry],
        })
    }

    fn fire(&mut self, event: &str, actor: Actor, payload: Value) -> Result<&Entry, Refusal> {
        let command = Command {
            event: event.into(),
            actor,
            payload: object(payload),
            idempotency_key: None,
            at: at(self.history.len() as i64),
            expected_seq: None,
        };
        let before = self.instance.clone();
        match machine::step(&self.def, &self.instance, &command, &self.sandbox) {
            Ok(entry) => {
                self.instance.apply(&entry).expect("applies");
                self.history.push(entry);
                Ok(self.history.last().expect("just pushed"))
            }
            Err(refusal) => {
                assert_eq!(self.instance, before, "a refusal changed nothing");
                Err(refusal)
            }
        }
    }

    fn submitted() -> Run {
        let mut run = Run::start(xiao(), json!({})).expect("starts");
        run.fire(
            "submit",
            xiao(),
            json!({"amount": 50000, "purpose": "电梯大修", "payee_id": "liu"}),
        )
        .expect("submits");
        run
    }
}

fn xiao() -> Actor {
    Actor::new("xiao", ["applicant"])
}
fn qian() -> Actor {
    Actor::new("qian", ["reviewer"])
}

#[test]
fn an_approver_cannot_rewrite_the_amount_the_route_depends_on() {
    let mut run = Run::submitted();
    let refusal = run
        .fire("approve", qian(), json!({"amount": 100}))
        .expect_err("the reviewer may not write the amount");
    assert_eq!(refusal.code(), "field_not_writable");
    assert!(refusal.to_string().contains("`amount`"), "{refusal}");
    assert!(
        refusal.to_string().contains("`note`"),
        "names what it may write: {refusal}"
    );
    // Approving without rewriting goes on to the general manager: 50,000 is not 100.
    let entry = run
        .fire("approve", qian(), json!({"note": "同意"}))
        .expect("approves");
    assert_eq!(entry.to, "gm_review");
    assert_eq!(run.instance.data["amount"], json!(50000.0));
}

#[test]
fn start_data_may_carry_only_what_the_start_may_write() {
    let refused = Run::start(xiao(), json!({"approved_at": "2026-03-01T09:00:00+08:00"}))
        .err()
        .expect("the start may not write the approval time");
    assert_eq!(refused.code(), "field_not_writable");
    assert!(Run::start(xiao(), json!({"payee_id": "liu"})).is_ok());
}

#[test]
fn a_fixed_fact_changes_only_on_a_resubmission() {
    let mut run = Run::submitted();
    run.fire("send_back", qian(), json!({"comment": "金额有误"}))
        .expect("sent back");
    run.fire(
        "resubmit",
        xiao(),
        json!({"amount": 48000, "purpose": "电梯大修"}),
    )
    .expect("a resubmission supplies the amount again");
    assert_eq!(run.instance.data["amount"], json!(48000.0));
    run.fire("approve", qian(), json!({})).expect("approves");
    run.fire("pass", Actor::new("chen", ["gm"]), json!({}))
        .expect("the general manager passes it");
    assert!(run.instance.data.contains_key("approved_at"));
}

#[test]
fn an_action_cannot_change_a_fixed_fact_either() {
    let mut run = Run::start(xiao(), json!({})).expect("starts");
    run.fire(
        "submit",
        xiao(),
        json!({"amount": 500, "purpose": "办公用品"}),
    )
    .expect("submits");
    // The reviewer's `restamp` runs an action that sets `approved_at`: fine while it is empty.
    run.fire("restamp", qian(), json!({})).expect("first stamp");
    let refusal = run
        .fire("restamp", qian(), json!({}))
        .expect_err("a second stamp would move the approval time");
    assert_eq!(refusal.code(), "field_fixed");
}

#[test]
fn a_repeatable_step_cannot_rewrite_the_fact_it_records() {
    let mut run = Run::submitted();
    run.fire("attach_invoice", xiao(), json!({"invoice_no": "INV-1"}))
        .expect("records the invoice");
    run.fire("attach_invoice", xiao(), json!({"invoice_no": "INV-1"}))
        .expect("the same invoice again changes nothing");
    let refusal = run
        .fire("attach_invoice", xiao(), json!({"invoice_no": "INV-2"}))
        .expect_err("a step that stays in its state may not change a fixed fact");
    assert_eq!(refusal.code(), "field_fixed");
    assert!(refusal.to_string().contains("INV-1"), "{refusal}");
}

#[test]
fn texts_have_lengths_and_lines_and_so_has_the_business_key() {
    let mut run = Run::start(xiao(), json!({})).expect("starts");
    let long = run
        .fire(
            "submit",
            xiao(),
            json!({"amount": 1, "purpose": "这是一个超过十个字的用途说明文字"}),
        )
        .expect_err("over max_length");
    assert_eq!(long.code(), "too_long");
    let forged = run
        .fire(
            "submit",
            xiao(),
            json!({"amount": 1, "purpose": "用途\n伪造的一行"}),
        )
        .expect_err("a one-line text with a line break");
    assert_eq!(forged.code(), "ill_typed");

    let (def, sandbox) = definition();
    let start = |key: String| Start {
        id: "expense-2".into(),
        actor: xiao(),
        data: Map::new(),
        business_key: Some(key),
        parent: None,
        idempotency_key: None,
        at: at(0),
        number: None,
    };
    let refused = machine::start(&def, &start("B".repeat(1_000_000)), &sandbox)
        .expect_err("a million-character business key");
    assert_eq!(refused.code(), "too_long");
    let refused = machine::start(&def, &start("B2-031\u{0}".into()), &sandbox)
        .expect_err("a NUL in a business key");
    assert_eq!(refused.code(), "ill_typed");
    assert!(machine::start(&def, &start("B2-031".into()), &sandbox).is_ok());
}

#[test]
fn only_the_roles_of_the_first_step_may_start_by_default() {
    let (def, _) = definition();
    assert_eq!(machine::start_roles(&def.workflow), ["applicant"]);
    let refused = Run::start(qian(), json!({}))
        .err()
        .expect("a reviewer does not start requests");
    assert_eq!(refused.code(), "role_not_allowed");
}

#[test]
fn an_own_scoped_role_acts_only_on_its_own_instances() {
    let mut run = Run::start(xiao(), json!({})).expect("starts");
    let other = Actor::new("zhang", ["applicant"]);
    let refusal = run
        .fire("submit", other, json!({"amount": 1, "purpose": "办公用品"}))
        .expect_err("another applicant's request");
    assert_eq!(refusal.code(), "not_a_party");
    // Holding a department role too, they act in that one.
    let mut run = Run::submitted();
    run.fire(
        "approve",
        Actor::new("zhang", ["applicant", "reviewer"]),
        json!({}),
    )
    .expect("acts as the reviewer");
}

#[test]
fn a_party_named_in_the_instance_may_act_in_their_role() {
    let mut run = Run::submitted();
    let other_role = run
        .fire(
            "attach_invoice",
            Actor::new("liu", ["applicant"]),
            json!({"invoice_no": "INV-9"}),
        )
        .expect_err("named as the payee, not as the applicant");
    assert_eq!(other_role.code(), "not_a_party");
    run.fire("approve", qian(), json!({})).expect("approves");
    run.fire("pass", Actor::new("chen", ["gm"]), json!({}))
        .expect("passes");
    let stranger = run
        .fire("confirm_paid", Actor::new("zhou", ["payee"]), json!({}))
        .expect_err("a payee not named in it");
    assert_eq!(stranger.code(), "not_a_party");
    run.fire("confirm_paid", Actor::new("liu", ["payee"]), json!({}))
        .expect("the named payee");
    assert!(run.instance.finished);
}

#[test]
fn readers_are_the_people_taking_part_the_departments_at_work_and_the_declared_ones() {
    let mut run = Run::submitted();
    let def = run.def.clone();
    let reads =
        |instance: &Instance, actor: Actor| machine::may_read(&def.workflow, instance, &actor);
    assert!(reads(&run.instance, xiao()), "the applicant who started it");
    assert!(
        reads(&run.instance, Actor::new("liu", ["payee"])),
        "the named payee"
    );
    assert!(
        !reads(&run.instance, Actor::new("zhang", ["applicant"])),
        "another applicant"
    );
    assert!(
        reads(&run.instance, qian()),
        "the reviewers, whose turn it is"
    );
    assert!(
        !reads(&run.instance, Actor::new("chen", ["gm"])),
        "the general manager, before it reaches them"
    );
    assert!(
        reads(&run.instance, Actor::new("dang", ["archivist"])),
        "access.read"
    );
    assert!(
        reads(&run.instance, Actor::new("shen", ["auditor"])),
        "auditors"
    );
    assert!(!reads(
        &run.instance,
        Actor::new("nobody", Vec::<String>::new())
    ));
    run.fire("approve", qian(), json!({})).expect("approves");
    run.fire("pass", Actor::new("chen", ["gm"]), json!({}))
        .expect("passes");
    assert!(
        reads(&run.instance, Actor::new("other-reviewer", ["reviewer"])),
        "the department that acted on it keeps reading it"
    );
}

#[test]
fn each_step_records_its_audit_kind_and_branch() {
    let mut run = Run::submitted();
    let submitted = &run.history[1];
    assert_eq!(submitted.audit, Some(AuditKind::Decision));
    assert_eq!(submitted.branch, Some(0));
    let entry = run.fire("approve", qian(), json!({})).expect("approves");
    assert_eq!(
        (entry.audit, entry.branch),
        (Some(AuditKind::Approval), Some(0))
    );
    let entry = run
        .fire("pass", Actor::new("chen", ["gm"]), json!({}))
        .expect("passes");
    assert_eq!(
        entry.audit,
        Some(AuditKind::Approval),
        "`audit: approval` says so"
    );

    let mut small = Run::start(xiao(), json!({})).expect("starts");
    small
        .fire(
            "submit",
            xiao(),
            json!({"amount": 500, "purpose": "办公用品"}),
        )
        .expect("submits");
    let entry = small.fire("approve", qian(), json!({})).expect("approves");
    assert_eq!(entry.branch, Some(1), "the second branch: under 1,000");
    assert_eq!(entry.to, "approved");
    let mut back = Run::submitted();
    let entry = back
        .fire("send_back", qian(), json!({"comment": "缺发票"}))
        .expect("sent back");
    assert_eq!(entry.audit, Some(AuditKind::Rejection));
}

/// A guard may say why it does not hold, in the manual's words (`throw "..."`): the step is
/// refused as `guard_failed` with that reason, and nothing is written. A guard that fails for
/// any other reason is still `guard_error`.
#[test]
fn a_guard_that_throws_a_reason_refuses_with_it() {
    const CLAIM: &str = r##"id: claim
title: 报销
roles:
  applicant: {title: 申请人, scope: own}
fields:
  month: {type: string, title: 费用月份, required_on: [submit], optional_on: [crash]}
initial: drafted
states:
  drafted:
    on:
      submit:
        - {to: done, roles: [applicant], guard: claims::in_time}
      crash: {to: done, roles: [applicant], guard: claims::broken}
  done: {final: true}
"##;
    const RULES: &str = r#"
fn in_time(payload) {
    if payload.month < "2026-02" {
        throw `${payload.month} 的费用报销已于次月16日截止,此后不能再报销该月费用`;
    }
    true
}
fn broken(payload) { payload.month.no_such_method() }
"#;
    let sandbox = Sandbox::default();
    let report = catalog::build(
        Sources::from_texts(
            vec![(PathBuf::from("claim.yaml"), CLAIM.to_string())],
            vec![(PathBuf::from("claims.rhai"), RULES.to_string())],
        ),
        &sandbox,
    );
    assert!(!report.has_errors(), "{:?}", report.diagnostics);
    let def = report.catalog.get("claim").expect("builds").clone();
    let applicant = Actor::new("zhang", ["applicant"]);
    let start = Start {
        id: "claim-1".into(),
        actor: applicant.clone(),
        data: Map::new(),
        business_key: None,
        parent: None,
        idempotency_key: None,
        at: at(0),
        number: None,
    };
    let entry = machine::start(&def, &start, &sandbox).expect("starts");
    let instance = Instance::begin(&entry).expect("a start");
    let command = |event: &str, month: &str| Command {
        event: event.into(),
        actor: applicant.clone(),
        payload: object(json!({"month": month})),
        idempotency_key: None,
        at: at(1),
        expected_seq: None,
    };
    let refusal = machine::step(&def, &instance, &command("submit", "2026-01"), &sandbox)
        .expect_err("refused");
    assert_eq!(refusal.code(), "guard_failed");
    assert!(
        refusal.to_string() == "2026-01 的费用报销已于次月16日截止,此后不能再报销该月费用",
        "{refusal}"
    );
    let taken = machine::step(&def, &instance, &command("submit", "2026-02"), &sandbox);
    assert!(taken.is_ok(), "{taken:?}");
    let broken = machine::step(&def, &instance, &command("crash", "2026-02"), &sandbox)
        .expect_err("refused");
    assert_eq!(broken.code(), "guard_error", "{broken}");
}

/// An inline guard cannot throw; its transition says what the person refused reads
/// (`guard_message`), and a guard that throws its own reason is not overruled by it.
#[test]
fn a_guard_message_is_the_reason_of_a_silent_guard() {
    const PASS: &str = r##"id: pass
title: 出门条
roles:
  applicant: 申请单位
fields:
  sealed: {type: bool, title: 已盖公章, required_on: [submit]}
initial: drafted
states:
  drafted:
    on:
      submit:
        to: done
        roles: [applicant]
        guard: payload.sealed == true
        guard_message: 请在出门条上加盖申请单位公章
  done: {final: true}
"##;
    let sandbox = Sandbox::default();
    let report = catalog::build(
        Sources::from_texts(vec![(PathBuf::from("pass.yaml"), PASS.to_string())], vec![]),
        &sandbox,
    );
    assert!(!report.has_errors(), "{:?}", report.diagnostics);
    assert!(report.diagnostics.is_empty(), "{:?}", report.diagnostics);
    let def = report.catalog.get("pass").expect("builds").clone();
    let applicant = Actor::new("wang", ["applicant"]);
    let start = Start {
        id: "pass-1".into(),
        actor: applicant.clone(),
        data: Map::new(),
        business_key: None,
        number: None,
        parent: None,
        idempotency_key: None,
        at: at(0),
    };
    let entry = machine::start(&def, &start, &sandbox).expect("starts");
    let instance = Instance::begin(&entry).expect("a start");
    let submit = |sealed: bool| Command {
        event: "submit".into(),
        actor: applicant.clone(),
        payload: object(json!({"sealed": sealed})),
        idempotency_key: None,
        at: at(1),
        expected_seq: None,
    };
    let refusal = machine::step(&def, &instance, &submit(false), &sandbox).expect_err("refused");
    assert_eq!(refusal.code(), "guard_failed");
    assert_eq!(refusal.to_string(), "请在出门条上加盖申请单位公章");
    assert!(machine::step(&def, &instance, &submit(true), &sandbox).is_ok());
}
