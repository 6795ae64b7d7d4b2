//! Property tests of the pure step (`sopflow::machine::step`) on random command sequences: the
//! shipped hot-work permit, and a small in-memory workflow with a countersign (`mode: all`)
//! and a quorum (2 of 3).
//!
//! Commands are random: events the current state handles, events of other states and unknown
//! ones; actors from a small pool holding random roles (often one the event needs); payloads
//! with well-typed, wrong-typed and unknown fields; comments present, empty, ill-typed or
//! absent; stale and current `expected_seq`. After every command:
//!
//! - a refused command changes nothing, and the same command gets the same answer again;
//! - the state is one the definition declares;
//! - an accepted entry verifies, links to the hash before it and has the next sequence number,
//!   and replaying the accepted entries gives the running snapshot;
//! - no scripts fail on converted payloads (guards and actions run only on checked values);
//! - a step writes from its payload only the fields its event may write, and never changes a
//!   fixed field that has a value (but for a resubmission that moves on);
//! - distinct-actor constraints hold over the whole history (four-eyes), approvals take each
//!   signer once and complete exactly when their mode is satisfied.

use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use serde_json::{Map, Value, json};
use sopflow::catalog::{self, Definition, Sources};
use sopflow::definition::model::{ApprovalMode, FieldType};
use sopflow::machine::{self, Actor, Command, Entry, EntryKind, Instance, Refusal, Start};
use sopflow::script::Sandbox;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, LazyLock};

/// A countersign by three parties, then a quorum of two of three centre staff; the clerk who
/// submits may not be one of the reviewers.
const JOINT_SIGN: &str = r##"id: joint_sign
title: 联合签字
roles:
  clerk: 客服
  owner: 业户
  contractor: 施工单位
  centre: 物业服务中心
fields:
  amount: {type: money, required_on: [submit]}
  note: {type: text, optional_on: [note]}
  signed_at: {type: datetime}
parameters:
  threshold: {type: money, default: 15000}
initial: drafted
states:
  drafted:
    on:
      submit:
        - {to: joint, roles: [clerk], guard: "payload.amount >= params.threshold"}
        - {to: review, roles: [clerk]}
      note: {to: drafted, roles: [clerk, owner], requires: [note]}
  joint:
    approval:
      mode: all
      signers:
        - {role: owner, title: 业户签名}
        - {role: contractor, title: 施工单位签名}
        - {role: centre, title: 物业服务中心签名}
      to: review
      on_reject: {to: drafted, requires: [comment]}
  review:
    approval:
      mode: quorum
      quorum: 2
      signers: [{role: centre}, {role: centre}, {role: centre}]
      to: signed
  signed:
    on:
      close: {to: closed, roles: [clerk], action: "#{ signed_at: now }"}
  closed: {final: true}
constraints:
  - title: 提交人不得复核
    distinct_actors: [drafted.submit, review.approve]
"##;

const ACTORS: [&str; 5] = ["wang", "li", "zhao", "chen", "sun"];
const UNKNOWN_EVENTS: [&str; 3] = ["frobnicate", "APPROVE", "approve "];
const UNKNOWN_FIELDS: [&str; 3] = ["amout", "Amount", "seal"];
/// A role no workflow here declares.
const STRANGER: &str = "visitor";

struct Fixture {
    def: Arc<Definition>,
    sandbox: Sandbox,
}

static HOT_WORK: LazyLock<Fixture> = LazyLock::new(|| {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let sandbox = Sandbox::default();
    let report = catalog::load(&[root.join("workflows"), root.join("rules")], &sandbox)
        .expect("shipped files read");
    assert!(!report.has_errors(), "{:?}", report.diagnostics);
    let def = report
        .catalog
        .get("hot_work_permit")
        .expect("hot-work permit builds")
        .clone();
    Fixture { def, sandbox }
});

static JOINT: LazyLock<Fixture> = LazyLock::new(|| {
    let sandbox = Sandbox::default();
    let report = catalog::build(
        Sources::from_texts(
            vec![(PathBuf::from("joint_sign.yaml"), JOINT_SIGN.to_string())],
            vec![],
        ),
        &sandbox,
    );
    assert!(report.diagnostics.is_empty(), "{:?}", report.diagnostics);
    let def = report
        .catalog
        .get("joint_sign")
        .expect("joint_sign builds")
        .clone();
    Fixture { def, sandbox }
});

/// One random command, as choices that are turned into a [`Command`] against the instance's
/// current state (so that it shrinks well and stays meaningful as the instance moves).
#[derive(Debug, Clone)]
struct Spec {
    /// 0..7: an event of the current state; 7, 8: any event of the workflow; 9: unknown.
    event_kind: u8,
    event: Index,
    actor: Index,
    /// Bit i: the actor holds role i (the workflow's roles, then a stranger role).
    roles: u8,
    /// Also hold a role that may fire the event here.
    add_fitting_role: bool,
    /// Supply well-typed values for every field the event requires.
    fill_required: bool,
    /// Random payload entries: key (one the event may write for < 8 of 10), whether the value
    /// is well-typed (7 and 9 of 10 are junk), which value.
    payload: Vec<(Index, u8, Index)>,
    /// None: no comment; 0: empty; 1, 2: a reason; 3: a number; 4: null.
    comment: Option<u8>,
    /// 0: a stale `expected_seq`; 1: the current one; otherwise none.
    expected: u8,
    minutes: u16,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        (0u8..10, any::<Index>(), any::<Index>(), any::<u8>()),
        (any::<bool>(), any::<bool>()),
        prop::collection::vec((any::<Index>(), 0u8..10, any::<Index>()), 0..4),
        prop::option::of(0u8..5),
        0u8..6,
        0u16..600,
    )
        .prop_map(
            |(
                (event_kind, event, actor, roles),
                (add_fitting_role, fill_required),
                payload,
                comment,
                expected,
                minutes,
            )| Spec {
                event_kind,
                event,
                actor,
                roles,
                add_fitting_role,
                fill_required,
                payload,
                comment,
                expected,
                minutes,
            },
        )
}

fn specs(max: usize) -> impl Strategy<Value = Vec<Spec>> {
    prop::collection::vec(spec(), 1..=max)
}

fn base_time() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-02T09:00:00+08:00")
        .expect("valid time")
        .with_timezone(&Utc)
}

/// Values of the declared type (the conversion may still refuse some, like a blank text for
/// a required field, which is what the refusal properties are about).
fn good_values(def: &Definition, field: &str) -> Vec<Value> {
    let Some(field) = def.workflow.fields.get(field) else {
        return vec![json!("x")];
    };
    let item = field.items.as_ref().map(|i| i.value);
    match field.kind.value {
        FieldType::String | FieldType::Text => {
            vec![
                json!("HW-2026-031"),
                json!("T-4411"),
                json!("已核对"),
                json!(4411),
            ]
        }
        FieldType::Integer => vec![json!(0), json!(12), json!("12")],
        FieldType::Number => vec![json!(1.5), json!("2.25"), json!(0)],
        FieldType::Money => vec![
            json!(18000),
            json!(14999.99),
            json!("15000"),
            json!(0),
            json!(199.5),
        ],
        FieldType::Bool => vec![json!(true), json!(true), json!(false), json!("true")],
        FieldType::Date => vec![json!("2026-03-01"), json!(" 2026-12-31 ")],
        FieldType::Datetime => vec![
            json!("2026-03-01T09:30:00+08:00"),
            json!("2026-03-01T01:30:00Z"),
        ],
        FieldType::Enum => field.values.iter().map(|v| json!(v.as_str())).collect(),
        FieldType::List => match item {
            Some(FieldType::Money) => vec![json!([]), json!([1, "2.5"])],
            _ => vec![json!([]), json!(["张三", "李四"])],
        },
    }
}

/// Values that fit few types, or none.
fn junk() -> Vec<Value> {
    vec![
        Value::Null,
        json!("15k"),
        json!(-5),
        json!(0.001),
        json!({"a": 1}),
        json!([1, "x", null]),
        json!("2026-02-30"),
        json!("yes"),
        json!(true),
        json!(""),
        json!("   "),
        json!(1e300),
    ]
}

/// Events the workflow handles anywhere.
fn all_events(def: &Definition) -> Vec<String> {
    let set: BTreeSet<&str> = def.workflow.events().collect();
    set.into_iter().map(str::to_string).collect()
}

/// Roles that may fire `event` in `state` (by transition or as a signer).
fn fitting_roles(def: &Definition, state: &str, event: &str) -> Vec<String> {
    let Some(state) = def.workflow.states.get(state) else {
        return Vec::new();
    };
    let mut roles = Vec::new();
    if let Some(branches) = state.on.get(event) {
        for branch in &branches.value.0 {
            roles.extend(branch.roles.iter().map(|r| r.value.clone()));
        }
    }
    if let Some(approval) = &state.approval {
        let approval = &approval.value;
        let rejects = approval
            .on_reject
            .as_ref()
            .is_some_and(|r| r.reject_event() == event);
        if approval.approve_event() == event || rejects {
            roles.extend(approval.signers.iter().map(|s| s.value.role.value.clone()));
        }
    }
    roles
}

fn command(def: &Definition, instance: &Instance, spec: &Spec, at: DateTime<Utc>) -> Command {
    let state = def.workflow.states.get(&instance.state);
    let here: Vec<&str> = state.map(|s| s.events().collect()).unwrap_or_default();
    let everywhere = all_events(def);
    let event = match spec.event_kind {
        0..7 if !here.is_empty() => here[spec.event.index(here.len())].to_string(),
        0..9 => everywhere[spec.event.index(everywhere.len())].clone(),
        _ => UNKNOWN_EVENTS[spec.event.index(UNKNOWN_EVENTS.len())].to_string(),
    };

    let mut pool: Vec<String> = def.workflow.roles.keys().map(str::to_string).collect();
    pool.push(STRANGER.to_string());
    let mut roles: Vec<String> = pool
        .iter()
        .enumerate()
        .filter(|(i, _)| spec.roles & (1 << (i % 8)) != 0)
        .map(|(_, r)| r.clone())
        .collect();
    let mut id = ACTORS[spec.actor.index(ACTORS.len())].to_string();
    if spec.add_fitting_role {
        let fitting = fitting_roles(def, &instance.state, &event);
        if !fitting.is_empty() {
            let role = &fitting[spec.actor.index(fitting.len())];
            if !roles.contains(role) {
                roles.push(role.clone());
            }
            // An own-scoped role is usually its holder acting on their own instance (otherwise
            // `not_a_party`, drawn when the fitting role is not added).
            if machine::access::is_own_role(&def.workflow, role)
                && let Some(starter) = &instance.started_by
            {
                id = starter.clone();
            }
        }
    }
    let actor = Actor::new(id, roles);

    let mut payload = Map::new();
    if spec.fill_required {
        for (name, field) in def.workflow.fields.iter() {
            if field.required_on.iter().any(|e| e.as_str() == event) {
                payload.insert(
                    name.value.clone(),
                    good_values(def, name.as_str())[0].clone(),
                );
            }
        }
    }
    let mut keys: Vec<String> = def.workflow.fields.keys().map(str::to_string).collect();
    keys.extend(UNKNOWN_FIELDS.iter().map(|s| s.to_string()));
    // Most keys are ones the event may write, so that steps get through; the rest are any
    // field (often one it may not write) or unknown.
    let writable = machine::writable_fields(&def.workflow, &event);
    for (key, typed, value) in &spec.payload {
        let pool = if *typed < 8 && !writable.is_empty() {
            &writable
        } else {
            &keys
        };
        let key = &pool[key.index(pool.len())];
        let candidates = if *typed < 7 || *typed == 8 {
            good_values(def, key)
        } else {
            junk()
        };
        payload.insert(
            key.clone(),
            candidates[value.index(candidates.len())].clone(),
        );
    }
    match spec.comment {
        None => {}
        Some(0) => {
            payload.insert("comment".into(), json!(""));
        }
        Some(1 | 2) => {
            payload.insert("comment".into(), json!("材料不全,请补正"));
        }
        Some(3) => {
            payload.insert("comment".into(), json!(42));
        }
        Some(_) => {
            payload.insert("comment".into(), Value::Null);
        }
    }
    let expected_seq = match spec.expected {
        0 => Some(instance.seq + 1 + u64::from(spec.minutes % 3)),
        1 => Some(instance.seq),
        _ => None,
    };
    Command {
        event,
        actor,
        payload,
        idempotency_key: None,
        at,
        expected_seq,
    }
}

/// An accepted step wrote from its payload only the fields its event may write, and changed
/// no fixed field that already had a value (unless its event must supply that field again).
fn check_writes(def: &Definition, before: &Instance, entry: &Entry) -> Result<(), TestCaseError> {
    for key in entry.payload.keys().filter(|k| k.as_str() != "comment") {
        let field = def.workflow.fields.get(key);
        prop_assert!(
            field.is_some_and(|f| f.is_writable_on(&entry.event)),
            "`{}` wrote `{}`, which it may not write",
            entry.event,
            key
        );
    }
    for (key, value) in &entry.changes {
        let Some(field) = def.workflow.fields.get(key) else {
            continue;
        };
        if field.fixed
            && !(entry.entered && field.is_required_on(&entry.event))
            && let Some(old) = before.data.get(key)
        {
            prop_assert_eq!(
                old,
                value,
                "`{}` changed the fixed field `{}`",
                entry.event,
                key
            );
        }
    }
    Ok(())
}

/// The steps (`state.event`) of a history's events, with who did them.
fn acts(history: &[Entry]) -> Vec<(String, String)> {
    history
        .iter()
        .filter(|e| e.kind == EntryKind::Event)
        .filter_map(|e| {
            Some((
                format!("{}.{}", e.from.as_ref()?, e.event),
                e.actor.to_string(),
            ))
        })
        .collect()
}

/// Every distinct-actors constraint of the definition holds over the history.
fn check_distinct_actors(def: &Definition, history: &[Entry]) -> Result<(), TestCaseError> {
    let acts = acts(history);
    for constraint in &def.workflow.constraints {
        let Some(steps) = &constraint.value.distinct_actors else {
            continue;
        };
        let steps: Vec<&str> = steps.iter().map(|s| s.as_str()).collect();
        let mut by_actor: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for (step, actor) in &acts {
            if steps.contains(&step.as_str()) {
                by_actor.entry(actor).or_default().insert(step);
            }
        }
        for (actor, done) in by_actor {
            prop_assert!(
                done.len() <= 1 || actor == "system",
                "`{actor}` did {done:?}, which {steps:?} keeps apart"
            );
        }
    }
    Ok(())
}

/// An approval step: one signature, by someone who has not signed this round, and the state
/// is left exactly when the approval's mode is satisfied.
fn check_approval(def: &Definition, before: &Instance, entry: &Entry) -> Result<(), TestCaseError> {
    let Some(state) = def.workflow.states.get(&before.state) else {
        return Ok(());
    };
    let Some(approval) = state.approval.as_ref().map(|a| &a.value) else {
        return Ok(());
    };
    if entry.event != approval.approve_event() {
        return Ok(());
    }
    let signature = entry.signature.as_ref();
    prop_assert!(
        signature.is_some(),
        "an approval step records its signature"
    );
    let progress = before.approval.as_ref();
    let signed: Vec<_> = progress.map(|p| p.signatures.clone()).unwrap_or_default();
    if approval.distinct_signers {
        prop_assert!(
            !signed.iter().any(|s| s.actor == entry.actor),
            "`{}` signed twice in one round",
            entry.actor
        );
    }
    prop_assert!(
        !signed
            .iter()
            .any(|s| Some(s.signer) == signature.map(|s| s.signer)),
        "a signer's place was signed twice"
    );
    let signers = progress
        .map(|p| p.signers.len())
        .unwrap_or(approval.signers.len());
    let needed = match approval.mode.value {
        ApprovalMode::All | ApprovalMode::Sequence => signers,
        ApprovalMode::Any => 1,
        ApprovalMode::Quorum => approval
            .quorum
            .as_ref()
            .map_or(signers, |q| (q.value as usize).min(signers)),
    };
    let complete = signed.len() + 1 >= needed;
    prop_assert_eq!(
        entry.entered,
        complete,
        "{} of {} signatures: the approval is complete exactly then",
        signed.len() + 1,
        needed
    );
    prop_assert_eq!(
        &entry.to,
        if complete {
            approval.to.as_str()
        } else {
            before.state.as_str()
        }
    );
    Ok(())
}

/// What a run did, for the coverage test.
#[derive(Default)]
struct Run {
    states: BTreeSet<String>,
    refusals: BTreeSet<&'static str>,
    accepted: usize,
}

/// Starts an instance and runs the commands through the pure step, checking every property
/// after every command.
fn run(fixture: &Fixture, starter: Actor, specs: &[Spec]) -> Result<Run, TestCaseError> {
    let Fixture { def, sandbox } = fixture;
    let def = def.as_ref();
    let mut at = base_time();
    let start = Start {
        id: format!("{}-1", def.id()),
        actor: starter,
        data: Map::new(),
        business_key: Some("B2-031".into()),
        parent: None,
        idempotency_key: None,
        at,
        number: None,
    };
    let first = machine::start(def, &start, sandbox).expect("the start is accepted");
    prop_assert!(first.verify());
    let mut instance = Instance::begin(&first).expect("a start begins an instance");
    let mut history = vec![first];
    let mut seen = Run::default();
    seen.states.insert(instance.state.to_string());

    for spec in specs {
        at += Duration::minutes(i64::from(spec.minutes));
        let command = command(def, &instance, spec, at);
        let before = instance.clone();
        let result = machine::step(def, &instance, &command, sandbox);
        // The step is a function of its inputs.
        prop_assert_eq!(
            &machine::step(def, &instance, &command, sandbox),
            &result,
            "the same command gave another answer"
        );
        match result {
            Err(refusal) => {
                prop_assert_eq!(&instance, &before, "a refusal changed the snapshot");
                prop_assert!(
                    !matches!(
                        refusal,
                        Refusal::GuardError { .. }
                            | Refusal::ScriptFailed { .. }
                            | Refusal::UnknownState { .. }
                    ),
                    "{:?} on {:?}",
                    refusal,
                    command
                );
                if before.finished {
                    prop_assert!(matches!(refusal, Refusal::Finished { .. }), "{:?}", refusal);
                }
                seen.refusals.insert(refusal.code());
            }
            Ok(entry) => {
                prop_assert!(!before.finished, "a finished instance took {:?}", command);
                prop_assert!(entry.verify(), "entry {} does not verify", entry.seq);
                prop_assert_eq!(entry.seq, before.seq + 1);
                prop_assert_eq!(&entry.prev_hash, &before.last_hash);
                prop_assert_eq!(entry.kind, EntryKind::Event);
                prop_assert_eq!(entry.from.as_deref(), Some(before.state.as_str()));
                prop_assert_eq!(&entry.actor, &command.actor.id);
                prop_assert!(
                    entry.role.as_ref().is_some_and(|r| command
                        .actor
                        .roles
                        .iter()
                        .any(|held| held == r)),
                    "acted in role {:?} without holding it",
                    entry.role
                );
                check_approval(def, &before, &entry)?;
                check_writes(def, &before, &entry)?;
                instance
                    .apply(&entry)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                history.push(entry);
                check_distinct_actors(def, &history)?;
                seen.accepted += 1;
            }
        }
        prop_assert!(
            def.workflow.states.get(&instance.state).is_some(),
            "state `{}` is not declared",
            instance.state
        );
        if let Some(progress) = &instance.approval {
            let actors: BTreeSet<&str> = progress
                .signatures
                .iter()
                .map(|s| s.actor.as_str())
                .collect();
            prop_assert_eq!(actors.len(), progress.signatures.len());
        }
        let replayed = Instance::replay(&history)
            .map_err(|e| TestCaseError::fail(e.to_string()))?
            .expect("a history with a start");
        prop_assert_eq!(&replayed, &instance, "replaying the history differs");
        seen.states.insert(instance.state.to_string());
    }

    // Four-eyes on the permit, spelled out: the three reviews are by three people.
    if def.id() == "hot_work_permit" {
        let reviews = [
            "security_review.approve",
            "cs_review.approve",
            "gm_review.approve",
        ];
        let done: Vec<_> = acts(&history)
            .into_iter()
            .filter(|(step, _)| reviews.contains(&step.as_str()))
            .collect();
        for (step, actor) in &done {
            for (other, other_actor) in &done {
                if step != other {
                    prop_assert_ne!(actor, other_actor, "{} and {}", step, other);
                }
            }
        }
    }
    Ok(seen)
}

fn contractor() -> Actor {
    Actor::new("wang", ["contractor"])
}

fn clerk() -> Actor {
    Actor::new("wang", ["clerk"])
}

proptest! {
    // Failures print the shrunk sequence; no regression files are written into tests/.
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn hot_work_permit_steps_keep_the_invariants(specs in specs(30)) {
        run(&HOT_WORK, contractor(), &specs)?;
    }

    #[test]
    fn countersign_and_quorum_steps_keep_the_invariants(specs in specs(30)) {
        run(&JOINT, clerk(), &specs)?;
    }
}

/// The generator is not vacuous: across many runs it reaches every state of both workflows
/// and draws the main kinds of refusal.
#[test]
fn random_commands_reach_every_state() {
    for (fixture, starter) in [(&*HOT_WORK, contractor()), (&*JOINT, clerk())] {
        let mut runner = TestRunner::deterministic();
        let strategy = specs(60);
        let mut states = BTreeSet::new();
        let mut refusals = BTreeSet::new();
        let mut accepted = 0;
        for _ in 0..300 {
            let specs = strategy.new_tree(&mut runner).expect("generates").current();
            let seen = run(fixture, starter.clone(), &specs).expect("the properties hold");
            states.extend(seen.states);
            refusals.extend(seen.refusals);
            accepted += seen.accepted;
        }
        let declared: BTreeSet<String> = fixture
            .def
            .workflow
            .states
            .keys()
            .map(str::to_string)
            .collect();
        assert_eq!(states, declared, "{}: states reached", fixture.def.id());
        for code in [
            "finished",
            "stale",
            "unknown_event",
            "role_not_allowed",
            "missing_field",
            "unknown_field",
            "field_not_writable",
            "ill_typed",
            "four_eyes",
        ] {
            assert!(
                refusals.contains(code),
                "{}: no `{code}` refusal drawn (got {refusals:?})",
                fixture.def.id()
            );
        }
        if fixture.def.id() == "hot_work_permit" {
            assert!(
                refusals.contains("not_a_party"),
                "{}: no `not_a_party` refusal drawn (got {refusals:?})",
                fixture.def.id()
            );
        }
        assert!(
            accepted > 300,
            "{}: only {accepted} steps accepted",
            fixture.def.id()
        );
        println!(
            "{}: {accepted} steps accepted, refusals {refusals:?}",
            fixture.def.id()
        );
    }
}

/// The checks above can fail: a permit driven to the end by three reviewers passes them, and
/// the same history with one reviewer's name on two reviews does not.
#[test]
fn the_four_eyes_check_catches_a_forged_history() {
    let Fixture { def, sandbox } = &*HOT_WORK;
    let mut at = base_time();
    let start = Start {
        id: "hot_work_permit-1".into(),
        actor: contractor(),
        data: Map::new(),
        business_key: None,
        parent: None,
        idempotency_key: None,
        at,
        number: None,
    };
    let first = machine::start(def, &start, sandbox).expect("starts");
    let mut instance = Instance::begin(&first).expect("begins");
    let mut history = vec![first];
    let documents = json!({
        "notification_letter": "HW-2026-031",
        "applicant_seal": true,
        "operator_certificate": "T-4411",
    });
    for (event, actor, role, payload) in [
        ("submit", "wang", "contractor", documents),
        ("approve", "li", "order_dept", json!({})),
        ("approve", "zhao", "cs_dept", json!({})),
        ("approve", "chen", "project_gm", json!({})),
        ("affix_seal", "sun", "admin_dept", json!({})),
        (
            "distribute",
            "zhao",
            "cs_dept",
            json!({"archive_reference": "A-17", "copy_to_applicant": true, "copy_to_order_dept": true}),
        ),
    ] {
        at += Duration::minutes(5);
        let command = Command {
            event: event.into(),
            actor: Actor::new(actor, [role]),
            payload: payload.as_object().cloned().unwrap_or_default(),
            idempotency_key: None,
            at,
            expected_seq: Some(instance.seq),
        };
        let entry = machine::step(def, &instance, &command, sandbox).expect("accepted");
        instance.apply(&entry).expect("applies");
        history.push(entry);
    }
    assert_eq!(instance.state, "distributed");
    assert!(instance.finished);
    check_distinct_actors(def, &history).expect("three reviewers");

    let mut forged = history.clone();
    forged[3].actor = "li".into();
    assert!(
        check_distinct_actors(def, &forged).is_err(),
        "li on two reviews must be caught"
    );
    assert!(
        !forged[3].verify(),
        "and the altered entry no longer verifies"
    );
}
