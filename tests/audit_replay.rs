//! Audit replay, separation of duties and stored definitions, end to end: the shipped
//! workflows driven through their scenarios (timers, children, approvals) on real sled stores,
//! a store whose rule changed meaning under its hash, a constraint added in a later version,
//! and the `sopflow audit replay | sod | definition` commands.

mod support;

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sopflow::audit::replay::{Found, ReplayReport};
use sopflow::audit::sod::{RuleKind, RuleSource};
use sopflow::clock::VirtualClock;
use sopflow::definition::duration::Duration;
use sopflow::engine::{Engine, EngineError, Fire, StartRequest};
use sopflow::machine::{Actor, EntryKind, Refusal};
use sopflow::store::StoredDefinition;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn shipped() -> Vec<PathBuf> {
    vec![root().join("workflows"), root().join("rules")]
}

// ---------------------------------------------------------------------------------------------
// The shipped scenarios, driven on a store that is kept (the scenario runner throws its away).

#[derive(Debug, Deserialize)]
struct ScenarioFile {
    workflow: String,
    #[serde(default)]
    clock: Option<String>,
    scenarios: Vec<Scenario>,
}

#[derive(Debug, Deserialize)]
struct Scenario {
    name: String,
    #[serde(default)]
    clock: Option<String>,
    steps: Vec<Step>,
}

#[derive(Debug, Deserialize)]
struct Step {
    #[serde(default)]
    start: Option<StartStep>,
    #[serde(default)]
    fire: Option<FireStep>,
    #[serde(default)]
    advance: Option<String>,
    #[serde(default)]
    advance_to: Option<String>,
    #[serde(default)]
    refused: Option<String>,
}

#[derive(Debug, Deserialize)]
struct StartStep {
    actor: String,
    roles: Vec<String>,
    #[serde(default)]
    data: Map<String, Value>,
    #[serde(default)]
    business_key: Option<String>,
}

#[derive(Debug, Deserialize)]
struct FireStep {
    event: String,
    actor: String,
    roles: Vec<String>,
    #[serde(default)]
    payload: Map<String, Value>,
    #[serde(default)]
    comment: Option<String>,
}

/// RFC 3339, or a date meaning 09:00 China Standard Time (as scenarios write it).
fn time(text: &str) -> DateTime<Utc> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text.trim()) {
        return t.with_timezone(&Utc);
    }
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .expect("a date")
        .and_hms_opt(9, 0, 0)
        .expect("a time")
        .and_local_timezone(FixedOffset::east_opt(8 * 3600).expect("offset"))
        .single()
        .expect("one time")
        .with_timezone(&Utc)
}

fn read_scenarios(name: &str) -> ScenarioFile {
    let path = root().join("tests/scenarios").join(format!("{name}.yaml"));
    let text = std::fs::read_to_string(&path).expect("scenario file");
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs one scenario's commands (outcomes as the scenario expects them) on a fresh store in
/// `dir`, and returns the engine, still open.
async fn drive(dir: &Path, file: &ScenarioFile, scenario: &Scenario) -> Engine {
    let clock = scenario
        .clock
        .as_deref()
        .or(file.clock.as_deref())
        .unwrap_or("2026-03-02");
    let engine = Engine::open(
        support::store_config(&dir.join("data"))
            .sources(shipped())
            .clock(Arc::new(VirtualClock::new(time(clock)))),
    )
    .await
    .expect("opens");
    let mut current: Option<String> = None;
    let label = |i: usize| format!("{} / {} step {i}", file.workflow, scenario.name);
    for (i, step) in scenario.steps.iter().enumerate() {
        let result = if let Some(start) = &step.start {
            let mut request = StartRequest::new(Actor::new(&start.actor, &start.roles));
            request.data = start.data.clone();
            request.business_key = start.business_key.clone();
            let result = engine.start(&file.workflow, request).await;
            if let Ok(outcome) = &result {
                current = Some(outcome.instance.id.to_string());
            }
            Some(result)
        } else if let Some(fire) = &step.fire {
            let id = current.clone().expect("a start first");
            let mut request = Fire::new(&fire.event, Actor::new(&fire.actor, &fire.roles))
                .payload(Value::Object(fire.payload.clone()));
            if let Some(comment) = &fire.comment {
                request = request.comment(comment);
            }
            Some(engine.fire(&id, request).await)
        } else if let Some(text) = &step.advance {
            let duration: Duration = text.parse().expect("a duration");
            engine.advance(duration).await.expect("advances");
            None
        } else if let Some(text) = &step.advance_to {
            engine.advance_to(time(text)).await.expect("advances");
            None
        } else {
            None
        };
        match (result, &step.refused) {
            (None | Some(Ok(_)), None) => {}
            (Some(Err(EngineError::Refused(r))), Some(code)) if r.code() == code => {}
            (other, _) => panic!("{}: unexpected {:?}", label(i), other.map(|r| r.err())),
        }
    }
    engine
}

/// Replays every instance of a store and checks that nothing differs; returns the kinds of
/// steps replayed (to show what was covered).
async fn replays_cleanly(engine: &Engine, what: &str) -> Vec<(EntryKind, bool, bool)> {
    let mut reports: Vec<ReplayReport> = Vec::new();
    let summary = engine
        .replay_all(&mut |report: &ReplayReport| reports.push(report.clone()))
        .await
        .expect("replays");
    let differences: Vec<String> = reports
        .iter()
        .flat_map(|r| r.differences.iter().map(|d| d.message()))
        .collect();
    assert!(
        differences.is_empty(),
        "{what}: replay differs:\n{}",
        differences.join("\n")
    );
    assert_eq!(summary.differences, 0);
    assert_eq!(summary.instances, reports.len() as u64);
    assert!(
        summary.instances == 0 || summary.entries >= summary.instances,
        "{what}: {summary:?}"
    );
    // Each instance replays alone to the same answer.
    let mut kinds = Vec::new();
    for report in &reports {
        assert_eq!(report.instances, 1);
    }
    for instance in engine
        .list(sopflow::store::Query::default())
        .await
        .expect("lists")
    {
        let one = engine.replay(&instance.id).await.expect("replays");
        assert!(one.is_clean(), "{what}: {:?}", one.differences);
        for entry in engine.history(&instance.id).await.expect("history") {
            kinds.push((
                entry.kind,
                entry.parent.is_some(),
                entry.signature.is_some(),
            ));
        }
    }
    kinds
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_scenarios_replay_without_a_difference() {
    // Timers (lead intake, complaints, renovation), children (renovation starts pass cards
    // and a hot-work permit), approvals (renovation's three-party acceptance), four-eyes
    // (hot-work permit, cash handover).
    let files = [
        "lead_intake",
        "complaint_handling",
        "renovation_approval",
        "construction_pass",
        "hot_work_permit",
        "cash_handover",
    ];
    let mut kinds = Vec::new();
    for name in files {
        let file = read_scenarios(name);
        for scenario in &file.scenarios {
            let dir = tempfile::tempdir().expect("temp dir");
            let engine = drive(dir.path(), &file, scenario).await;
            kinds.extend(replays_cleanly(&engine, &format!("{name}: {}", scenario.name)).await);
        }
    }
    let has = |f: &dyn Fn(&(EntryKind, bool, bool)) -> bool| kinds.iter().any(f);
    assert!(has(&|k| k.0 == EntryKind::Timer), "timers were replayed");
    assert!(
        has(&|k| k.0 == EntryKind::Start && k.1),
        "children were replayed"
    );
    assert!(has(&|k| k.2), "signatures were replayed");
}

// Every shipped scenario ends with `audit verify` and `audit replay` on its store: `sopflow
// test` (src/scenario/run.rs) fails a scenario whose history does not replay to itself.

// ---------------------------------------------------------------------------------------------
// Children finishing, a parent moving on by itself, and every kind of approval.

fn runtime_workflows() -> PathBuf {
    root().join("tests/runtime")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_finishing_and_approvals_replay_without_a_difference() {
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = Engine::open(
        support::store_config(&dir.path().join("data")).sources(vec![runtime_workflows()]),
    )
    .await
    .expect("opens");
    let clerk = Actor::new("clerk-1", ["clerk"]);
    let id = engine
        .start(
            "acceptance",
            StartRequest::new(clerk.clone())
                .data(json!({"amount": "18000", "workers": ["张三", "李四"]})),
        )
        .await
        .expect("starts")
        .instance
        .id;
    engine
        .fire(&id, Fire::new("open", clerk.clone()))
        .await
        .expect("opens");
    for child in engine.get(&id).await.expect("exists").children {
        engine
            .fire(&child.id, Fire::new("return", clerk.clone()))
            .await
            .expect("returned");
    }
    let landlord = Actor::new("owner-corp", ["landlord"]);
    let centre = |n: u32| Actor::new(format!("centre-{n}"), ["centre"]);
    for (event, actor) in [
        ("approve", clerk.clone()),
        ("approve", landlord),
        ("approve", centre(1)),
        ("approve", Actor::new("liu", ["owner"])),
        ("approve", Actor::new("qian", ["contractor"])),
        ("approve", centre(1)),
        ("approve", centre(2)),
        ("approve", centre(3)),
    ] {
        engine
            .fire(&id, Fire::new(event, actor))
            .await
            .expect("signed");
    }
    assert_eq!(engine.get(&id).await.expect("exists").state, "done");
    let kinds = replays_cleanly(&engine, "acceptance").await;
    assert!(kinds.iter().any(|k| k.0 == EntryKind::ChildFinished));
    let history = engine.history(&id).await.expect("history");
    assert!(
        history
            .iter()
            .any(|e| e.kind == EntryKind::Event && e.actor == "system"),
        "the parent moved on by itself"
    );
    assert!(history.iter().any(|e| e.guards.iter().any(|g| g.passed)));
}

// ---------------------------------------------------------------------------------------------
// A rule that changed meaning under its version's hash.

const PAYOUT: &str = r#"
id: payout
title: 付款
roles:
  clerk: 经办
  manager: 经理
fields:
  amount: {type: money, optional_on: [start]}
initial: draft
states:
  draft:
    on:
      submit:
        - {to: manager_review, roles: [clerk], guard: payout::large}
        - {to: paid, roles: [clerk]}
  manager_review:
    on:
      approve: {to: paid, roles: [manager]}
  paid: {final: true}
"#;

const PAYOUT_RULES: &str = "fn large(data) {\n    data.amount > 1000\n}\n";

fn write_payout(dir: &Path) -> Vec<PathBuf> {
    let workflows = dir.join("workflows");
    let rules = dir.join("rules");
    std::fs::create_dir_all(&workflows).expect("folder");
    std::fs::create_dir_all(&rules).expect("folder");
    std::fs::write(workflows.join("payout.yaml"), PAYOUT).expect("writes");
    std::fs::write(rules.join("payout.rhai"), PAYOUT_RULES).expect("writes");
    vec![workflows, rules]
}

/// Rewrites the stored sources of `hash` with `change`, keeping the key, with the engine
/// closed.
fn tamper(data: &Path, hash: &str, change: impl FnOnce(&mut StoredDefinition)) {
    let db = support::raw_sled(data);
    let tree = db.open_tree("definitions").expect("tree");
    let bytes = tree.get(hash.as_bytes()).expect("reads").expect("stored");
    let mut stored: StoredDefinition = serde_json::from_slice(&bytes).expect("json");
    change(&mut stored);
    tree.insert(hash.as_bytes(), serde_json::to_vec(&stored).expect("json"))
        .expect("writes");
    db.flush().expect("flushes");
}

/// A payout store: one small payout that went straight to `paid` because `large` was false;
/// then the stored rule is altered to `> 100`. Returns (instance, version).
async fn altered_payout(dir: &Path) -> (String, String) {
    let sources = write_payout(dir);
    let engine = Engine::open(support::store_config(&dir.join("data")).sources(sources.clone()))
        .await
        .expect("opens");
    let clerk = Actor::new("li", ["clerk"]);
    let started = engine
        .start(
            "payout",
            StartRequest::new(clerk.clone()).data(json!({"amount": 500})),
        )
        .await
        .expect("starts");
    let id = started.instance.id.clone();
    let submitted = engine
        .fire(&id, Fire::new("submit", clerk))
        .await
        .expect("submitted");
    assert_eq!(submitted.instance.state, "paid");
    assert!(
        engine.replay(&id).await.expect("replays").is_clean(),
        "intact sources replay cleanly"
    );
    let version = started.instance.version.clone();
    drop(engine);
    tamper(&dir.join("data"), &version, |stored| {
        let text = stored.rules.get_mut("payout").expect("the rules file");
        *text = text.replace("> 1000", "> 100");
    });
    (id.to_string(), version)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_finds_a_rule_that_changed_meaning_under_its_hash() {
    if support::sled_only("replay_finds_a_rule_that_changed_meaning_under_its_hash") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let (id, version) = altered_payout(dir.path()).await;
    // Reopened on the same (unchanged) files: the store's copy is what replay runs.
    let engine = Engine::open(
        support::store_config(&dir.path().join("data")).sources(write_payout(dir.path())),
    )
    .await
    .expect("reopens");
    let report = engine.replay(&id).await.expect("replays");
    assert_eq!(report.entries, 2);
    assert_eq!(report.differences.len(), 1, "{:?}", report.differences);
    let difference = &report.differences[0];
    assert_eq!(
        (difference.instance.as_str(), difference.seq),
        (id.as_str(), 1)
    );
    let Found::Differs { parts } = &difference.found else {
        panic!("expected other parts, got {:?}", difference.found);
    };
    let names: Vec<&str> = parts.iter().map(|p| p.part.as_str()).collect();
    assert!(names.contains(&"to"), "{names:?}");
    assert!(names.contains(&"guards"), "{names:?}");
    let to = parts.iter().find(|p| p.part == "to").expect("to");
    assert_eq!(
        (to.recorded.clone(), to.replayed.clone()),
        (json!("paid"), json!("manager_review"))
    );
    assert!(difference.message().contains("guards and their results"));
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains(&version) && n.contains("changed after")),
        "{:?}",
        report.notes
    );
    let mut seen = 0;
    let summary = engine
        .replay_all(&mut |r: &ReplayReport| seen += r.differences.len())
        .await
        .expect("replays");
    assert_eq!((summary.instances, summary.differences, seen), (1, 1, 1));

    let found = engine.find_definition(&version[..10]).await.expect("found");
    assert!(!found.intact());
    assert_eq!(found.hash, version);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_refused_now_is_reported_with_its_refusal() {
    if support::sled_only("a_step_refused_now_is_reported_with_its_refusal") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let sources = write_payout(dir.path());
    let engine =
        Engine::open(support::store_config(&dir.path().join("data")).sources(sources.clone()))
            .await
            .expect("opens");
    let clerk = Actor::new("li", ["clerk"]);
    let started = engine
        .start(
            "payout",
            StartRequest::new(clerk.clone()).data(json!({"amount": 5000})),
        )
        .await
        .expect("starts");
    let id = started.instance.id;
    engine
        .fire(&id, Fire::new("submit", clerk))
        .await
        .expect("submitted");
    engine
        .fire(&id, Fire::new("approve", Actor::new("wang", ["manager"])))
        .await
        .expect("approved");
    let version = started.instance.version;
    drop(engine);
    // The stored YAML now gives `approve` to another role.
    tamper(&dir.path().join("data"), &version, |stored| {
        stored.yaml = stored.yaml.replace("roles: [manager]", "roles: [director]");
        stored.yaml = stored
            .yaml
            .replace("  manager: 经理", "  manager: 经理\n  director: 总监");
    });
    let engine = Engine::open(support::store_config(&dir.path().join("data")).sources(sources))
        .await
        .expect("reopens");
    let report = engine.replay(&id).await.expect("replays");
    assert_eq!(report.differences.len(), 1, "{:?}", report.differences);
    let difference = &report.differences[0];
    assert_eq!(difference.seq, 2);
    match &difference.found {
        Found::Refused { code, reason } => {
            assert_eq!(*code, "role_not_allowed");
            assert!(reason.contains("director"), "{reason}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(difference.message().contains("now refused"));
}

const DESK: &str = r#"
id: desk
title: 服务台
roles:
  clerk: 经办
  manager: 经理
fields:
  amount: {type: money, optional_on: [start]}
initial: open
states:
  open:
    on:
      close:
        - {to: escalated, roles: [manager], guard: "data.amount > 1000"}
        - {to: closed, roles: [clerk]}
  escalated: {final: true}
  closed: {final: true}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_actor_with_two_roles_replays_from_the_guards_recorded() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("desk.yaml");
    std::fs::write(&file, DESK).expect("writes");
    let engine = Engine::open(support::store_config(&dir.path().join("data")).sources(vec![file]))
        .await
        .expect("opens");
    let id = engine
        .start(
            "desk",
            StartRequest::new(Actor::new("li", ["clerk"])).data(json!({"amount": 500})),
        )
        .await
        .expect("starts")
        .instance
        .id;
    // li holds both roles: the manager's branch is tried (its guard is false), then the
    // clerk's is taken; the entry records the clerk's role and the manager's guard.
    let closed = engine
        .fire(
            &id,
            Fire::new("close", Actor::new("li", ["manager", "clerk"])),
        )
        .await
        .expect("closed");
    assert_eq!(closed.entry.role.as_deref(), Some("clerk"));
    assert_eq!(closed.entry.guards.len(), 1);
    let report = engine.replay(&id).await.expect("replays");
    assert!(report.is_clean(), "{:?}", report.differences);
}

// ---------------------------------------------------------------------------------------------
// Separation of duties.

const PETTY_CASH: &str = r#"
id: petty_cash
title: 备用金
roles:
  clerk: 经办
  cashier: 出纳
initial: requested
states:
  requested:
    on:
      approve: {to: approved, roles: [clerk, cashier]}
  approved:
    on:
      pay: {to: paid, roles: [clerk, cashier]}
  paid: {final: true}
"#;

const FOUR_EYES: &str = r#"
constraints:
  - title: 审批与付款由不同的人完成
    distinct_actors: [requested.approve, approved.pay]
"#;

async fn petty_cash(engine: &Engine, approver: &str, payer: &str) -> Result<String, EngineError> {
    let id = engine
        .start(
            "petty_cash",
            StartRequest::new(Actor::new("zhou", ["clerk"])),
        )
        .await?
        .instance
        .id;
    engine
        .fire(&id, Fire::new("approve", Actor::new(approver, ["clerk"])))
        .await?;
    engine
        .fire(&id, Fire::new("pay", Actor::new(payer, ["cashier"])))
        .await?;
    Ok(id.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_constraint_added_in_a_later_version_finds_the_steps_taken_before_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let workflows = dir.path().join("workflows");
    std::fs::create_dir_all(&workflows).expect("folder");
    let file = workflows.join("petty_cash.yaml");
    std::fs::write(&file, PETTY_CASH).expect("writes");
    let config =
        || support::store_config(&dir.path().join("data")).sources(vec![workflows.clone()]);

    let engine = Engine::open(config()).await.expect("opens");
    let one_person = petty_cash(&engine, "li", "li").await.expect("v1 allows it");
    let two_people = petty_cash(&engine, "li", "wang").await.expect("runs");
    let report = engine
        .separation_of_duties(None, &[])
        .await
        .expect("checks");
    assert!(report.is_clean(), "no rule yet: {:?}", report.findings);
    assert_eq!(report.instances, 2);
    let v1 = engine
        .definition_of("petty_cash")
        .expect("loaded")
        .hash
        .clone();
    drop(engine);

    std::fs::write(&file, format!("{PETTY_CASH}{FOUR_EYES}")).expect("writes");
    let engine = Engine::open(config()).await.expect("reopens");
    let v2 = engine
        .definition_of("petty_cash")
        .expect("loaded")
        .hash
        .clone();
    assert_ne!(v1, v2);
    // Under v2 the engine refuses it; the old instance slipped in before the rule.
    let refused = petty_cash(&engine, "sun", "sun").await;
    assert!(
        matches!(refused, Err(EngineError::Refused(Refusal::FourEyes { .. }))),
        "{refused:?}"
    );

    let report = engine
        .separation_of_duties(Some("petty_cash"), &[])
        .await
        .expect("checks");
    assert_eq!(report.instances, 3);
    assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
    let finding = &report.findings[0];
    assert_eq!(finding.instance, one_person);
    assert_eq!(finding.actor, "li");
    assert_eq!(finding.workflow, "petty_cash");
    let steps: Vec<(&str, u64)> = finding
        .steps
        .iter()
        .map(|s| (s.step.as_str(), s.seq))
        .collect();
    assert_eq!(steps, [("requested.approve", 1), ("approved.pay", 2)]);
    assert_eq!(finding.rule.kind, RuleKind::DistinctActors);
    assert_eq!(
        finding.rule.sources,
        [RuleSource::Current {
            version: v2.clone()
        }]
    );
    assert!(finding.rule.only_current());
    assert!(finding.rule.describe().contains("审批与付款由不同的人完成"));

    // An auditor's own rule, by event names, finds the same person; another workflow's
    // filter finds nothing.
    let extra = vec![vec!["approve".to_string(), "pay".to_string()]];
    let report = engine
        .separation_of_duties(None, &extra)
        .await
        .expect("checks");
    let separate: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.rule.kind == RuleKind::Separate)
        .collect();
    assert_eq!(separate.len(), 1);
    assert_eq!(separate[0].instance, one_person);
    assert_ne!(separate[0].instance, two_people);
    let report = engine
        .separation_of_duties(Some("hot_work_permit"), &extra)
        .await
        .expect("checks");
    assert_eq!((report.instances, report.findings.len()), (0, 0));
}

// ---------------------------------------------------------------------------------------------
// The commands.

fn sopflow(dir: &Path, workflows: &[PathBuf], args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sopflow"));
    command
        .args(args)
        .arg("--store")
        .arg(support::store_arg(&dir.join("data")))
        .current_dir(dir)
        .env("NO_COLOR", "1");
    if let [workflows, rules] = workflows {
        command
            .arg("--workflows")
            .arg(workflows)
            .arg("--rules")
            .arg(rules);
    }
    command.output().expect("runs sopflow")
}

fn out(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn err(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn expect_code(output: &Output, code: i32, what: &str) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "{what}\nstdout: {}\nstderr: {}",
        out(output),
        err(output)
    );
}

/// The README's hot-work permit, from application to distribution: zhao (cs_dept) reviews
/// and later distributes.
async fn readme_permit(dir: &Path) -> (String, String) {
    let engine = Engine::open(support::store_config(&dir.join("data")).sources(shipped()))
        .await
        .expect("opens");
    let contractor = Actor::new("wang.wei", ["contractor"]);
    let started = engine
        .start(
            "hot_work_permit",
            StartRequest::new(contractor.clone()).business_key("B2-031"),
        )
        .await
        .expect("starts");
    let id = started.instance.id.clone();
    let steps = [
        (
            "submit",
            contractor.clone(),
            json!({"notification_letter": "HW-2026-031", "applicant_seal": true, "operator_certificate": "T-4411"}),
        ),
        ("approve", Actor::new("li.na", ["order_dept"]), Value::Null),
        ("approve", Actor::new("zhao.min", ["cs_dept"]), Value::Null),
        (
            "approve",
            Actor::new("chen.gang", ["project_gm"]),
            Value::Null,
        ),
        (
            "affix_seal",
            Actor::new("sun.li", ["admin_dept"]),
            Value::Null,
        ),
        (
            "distribute",
            Actor::new("zhao.min", ["cs_dept"]),
            json!({"archive_reference": "CS-ARCH-088", "copy_to_applicant": true, "copy_to_order_dept": true}),
        ),
    ];
    for (event, actor, payload) in steps {
        engine
            .fire(&id, Fire::new(event, actor).payload(payload))
            .await
            .expect("fired");
    }
    (id.to_string(), started.instance.version)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_commands_replay_check_duties_and_print_definitions() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (id, version) = readme_permit(dir.path()).await;
    let shipped = shipped();

    let replay = sopflow(dir.path(), &shipped, &["audit", "replay", &id]);
    expect_code(&replay, 0, "replay one");
    assert!(
        out(&replay).contains("1 instance replayed, 7 entries, 0 differences"),
        "{}",
        out(&replay)
    );
    let all = sopflow(
        dir.path(),
        &shipped,
        &["audit", "replay", "--all", "--format", "json"],
    );
    expect_code(&all, 0, "replay all");
    let json: Value = serde_json::from_slice(&all.stdout).expect("json");
    assert_eq!(json["instances"], 1);
    assert_eq!(json["entries"], 7);
    assert_eq!(json["differences"], json!([]));
    let unknown = sopflow(dir.path(), &shipped, &["audit", "replay", "nothing-1"]);
    expect_code(&unknown, 1, "replay unknown");
    assert!(
        err(&unknown).contains("no instance `nothing-1`"),
        "{}",
        err(&unknown)
    );

    // Three different reviewers: clean. zhao reviewed and distributed: an auditor's rule
    // finds it.
    let sod = sopflow(dir.path(), &shipped, &["audit", "sod"]);
    expect_code(&sod, 0, "sod");
    assert!(
        out(&sod).contains("1 instance checked, 0 findings"),
        "{}",
        out(&sod)
    );
    let sod = sopflow(
        dir.path(),
        &shipped,
        &["audit", "sod", "--separate", "cs_review.approve,distribute"],
    );
    expect_code(&sod, 1, "sod --separate");
    let table = out(&sod);
    assert!(table.starts_with("INSTANCE"), "{table}");
    assert!(table.contains("zhao.min"), "{table}");
    assert!(table.contains("cs_review.approve #3"), "{table}");
    assert!(table.contains("effective.distribute #6"), "{table}");
    assert!(table.contains("--separate"), "{table}");
    assert!(table.contains("1 finding"), "{table}");
    let sod = sopflow(
        dir.path(),
        &shipped,
        &[
            "audit",
            "sod",
            "--separate",
            "distribute,distribute",
            "--format",
            "json",
        ],
    );
    expect_code(&sod, 0, "a step repeated is not two steps");
    let bad = sopflow(
        dir.path(),
        &shipped,
        &["audit", "sod", "--separate", "approve"],
    );
    expect_code(&bad, 2, "one step is not a rule");
    assert!(err(&bad).contains("at least two steps"), "{}", err(&bad));

    // The stored sources, by a prefix of the version.
    let definition = sopflow(
        dir.path(),
        &shipped,
        &["audit", "definition", &version[..8]],
    );
    expect_code(&definition, 0, "definition");
    let text = out(&definition);
    assert!(
        text.contains(&format!("definition version {version}")),
        "{text}"
    );
    assert!(text.contains("intact"), "{text}");
    assert!(text.contains("id: hot_work_permit"), "{text}");
    assert!(text.contains("==> rules: hot_work.rhai <=="), "{text}");
    assert!(text.contains("fn documents_complete(payload)"), "{text}");
    let definition = sopflow(
        dir.path(),
        &shipped,
        &["audit", "definition", &version, "--format", "json"],
    );
    expect_code(&definition, 0, "definition json");
    let json: Value = serde_json::from_slice(&definition.stdout).expect("json");
    assert_eq!(json["hash"], json!(version));
    assert_eq!(json["intact"], json!(true));
    assert_eq!(json["workflow"], json!("hot_work_permit"));
    assert!(json["rules"]["hot_work"].as_str().is_some());
    let unknown = sopflow(
        dir.path(),
        &shipped,
        &["audit", "definition", "deadbeefdeadbeef"],
    );
    expect_code(&unknown, 1, "unknown version");
    assert!(
        err(&unknown).contains("no definition version deadbeefdeadbeef in the store"),
        "{}",
        err(&unknown)
    );
    let short = sopflow(dir.path(), &shipped, &["audit", "definition", "abc"]);
    expect_code(&short, 1, "too short");
    assert!(
        err(&short).contains("at least 8 hex digits"),
        "{}",
        err(&short)
    );
    let json = sopflow(
        dir.path(),
        &shipped,
        &["audit", "definition", "zzzzzzzzzz", "--format", "json"],
    );
    expect_code(&json, 1, "not hex");
    let json: Value = serde_json::from_slice(&json.stdout).expect("json");
    assert_eq!(json["error"]["code"], json!("bad_input"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_commands_report_an_altered_rule() {
    if support::sled_only("the_commands_report_an_altered_rule") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let (id, version) = altered_payout(dir.path()).await;
    // Without the workflow files: everything comes from the store.
    let none: [PathBuf; 2] = [dir.path().join("nowhere"), dir.path().join("nowhere")];
    let replay = sopflow(dir.path(), &none, &["audit", "replay", "--all"]);
    expect_code(&replay, 1, "replay an altered rule");
    let text = out(&replay);
    assert!(
        text.contains(&format!("{id} #1 `submit` by li (clerk)")),
        "{text}"
    );
    assert!(text.contains("replays differently"), "{text}");
    assert!(
        text.contains("to state (to): recorded `paid`, replayed `manager_review`"),
        "{text}"
    );
    assert!(text.contains("changed after they were stored"), "{text}");
    assert!(
        text.contains("1 instance replayed, 2 entries, 1 difference"),
        "{text}"
    );

    let replay = sopflow(
        dir.path(),
        &none,
        &["audit", "replay", &id, "--format", "json"],
    );
    expect_code(&replay, 1, "replay json");
    let json: Value = serde_json::from_slice(&replay.stdout).expect("json");
    assert_eq!(json["differences"][0]["outcome"], json!("differs"));
    assert_eq!(json["differences"][0]["seq"], json!(1));

    let definition = sopflow(dir.path(), &none, &["audit", "definition", &version[..12]]);
    expect_code(&definition, 1, "an altered definition");
    let text = out(&definition);
    assert!(text.contains("ALTERED"), "{text}");
    assert!(text.contains("data.amount > 100\n"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_and_sod_need_only_the_store() {
    // A renovation that started pass cards and a hot-work permit, replayed without any
    // workflow file: every version is rebuilt from the store's copy.
    let dir = tempfile::tempdir().expect("temp dir");
    let file = read_scenarios("renovation_approval");
    let engine = drive(dir.path(), &file, &file.scenarios[0]).await;
    let children = engine
        .list(sopflow::store::Query::default())
        .await
        .expect("lists")
        .iter()
        .filter(|i| i.parent.is_some())
        .count();
    assert!(children >= 2, "pass cards were started");
    drop(engine);
    let none: [PathBuf; 2] = [dir.path().join("nowhere"), dir.path().join("nowhere")];
    let replay = sopflow(dir.path(), &none, &["audit", "replay", "--all"]);
    expect_code(&replay, 0, "replay from the store alone");
    assert!(out(&replay).contains(" 0 differences"), "{}", out(&replay));
    let sod = sopflow(dir.path(), &none, &["audit", "sod", "--format", "json"]);
    expect_code(&sod, 0, "sod from the store alone");
    let json: Value = serde_json::from_slice(&sod.stdout).expect("json");
    assert_eq!(json["findings"], json!([]));
    assert!(
        json["notes"].as_array().is_some_and(|n| n
            .iter()
            .any(|n| n.as_str().is_some_and(|n| n.contains("is not loaded")))),
        "{json}"
    );
}
