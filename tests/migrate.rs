//! Migrating running instances to a new version of their workflow, end to end on real stores
//! (sled, or PostgreSQL with `SOPFLOW_TEST_STORE=postgres`: see `support::store_location`):
//! the shipped renovation, expense and approval texts edited into a second version in a temp
//! folder and reloaded; plans, applies, the `migrate` entries, audit verify and replay after,
//! and the `sopflow migrate` command.

#[path = "support/readme.rs"]
mod readme;
mod support;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sopflow::clock::{Clock, VirtualClock};
use sopflow::engine::{
    Engine, EngineError, Fire, MigrationRequest, MigrationSummary, Moved, StartRequest,
};
use sopflow::machine::migrate::{FieldChange, Plan, TimerFate, TimerPolicy};
use sopflow::machine::{Actor, Entry, EntryKind};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("a time")
        .with_timezone(&Utc)
}

/// The shipped definitions copied into `dir/defs` (to be edited into a second version).
fn definitions(dir: &Path) -> Vec<PathBuf> {
    support::copy_definitions(&dir.join("defs"))
}

fn workflow_file(dir: &Path, workflow: &str) -> PathBuf {
    dir.join("defs/workflows").join(format!("{workflow}.yaml"))
}

/// Rewrites a copied workflow file.
fn edit(dir: &Path, workflow: &str, change: impl FnOnce(String) -> String) {
    let path = workflow_file(dir, workflow);
    let text = std::fs::read_to_string(&path).expect("reads the copy");
    let changed = change(text.clone());
    assert_ne!(text, changed, "the edit of {workflow} changed nothing");
    std::fs::write(&path, changed).expect("writes the copy");
}

/// `text` with `from` replaced once, which must be there.
fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "`{from}` is not in the text");
    text.replacen(from, to, 1)
}

async fn open(dir: &Path, sources: Vec<PathBuf>, clock: &VirtualClock) -> Engine {
    let config = support::store_config(&dir.join("data"))
        .sources(sources)
        .clock(Arc::new(clock.clone()));
    Engine::open(config).await.expect("the engine opens")
}

/// Reloads the edited files, which must be valid, and returns the new version's hash.
async fn reload(engine: &Engine, workflow: &str) -> String {
    let reloaded = engine.reload().await.expect("reloads");
    assert!(
        reloaded.applied,
        "the edited definitions have errors: {:?}",
        reloaded
            .report
            .diagnostics
            .iter()
            .filter(|d| d.severity == sopflow::diagnostic::Severity::Error)
            .map(|d| format!("{} {:?}", d.code.as_str(), d.message))
            .collect::<Vec<_>>()
    );
    let (_, _, new) = reloaded
        .changed
        .iter()
        .find(|(id, _, _)| id == workflow)
        .expect("the workflow has a new version");
    new.clone()
}

fn owner() -> Actor {
    Actor::new("boss", ["process_owner"])
}

fn request(workflow: &str) -> MigrationRequest {
    MigrationRequest::new(workflow, "current", owner())
}

async fn plans(engine: &Engine, request: MigrationRequest) -> (Vec<Plan>, MigrationSummary) {
    let found = Arc::new(Mutex::new(Vec::new()));
    let into = found.clone();
    let summary = engine
        .migration_plan(request, move |plan| into.lock().expect("lock").push(plan))
        .await
        .expect("plans");
    let mut plans = found.lock().expect("lock").clone();
    plans.sort_by(|a, b| a.instance.cmp(&b.instance));
    (plans, summary)
}

async fn apply(engine: &Engine, request: MigrationRequest) -> (Vec<Moved>, MigrationSummary) {
    let mut moved = Vec::new();
    let summary = engine
        .migrate(request, |m| moved.push(m))
        .await
        .expect("applies");
    (moved, summary)
}

fn migrated(moved: &[Moved]) -> Vec<&Entry> {
    moved
        .iter()
        .filter_map(|m| match m {
            Moved::Migrated { entry } => Some(entry.as_ref()),
            Moved::Blocked { .. } => None,
        })
        .collect()
}

fn codes(plan: &Plan) -> Vec<&'static str> {
    plan.blockers.iter().map(|b| b.code()).collect()
}

/// Every chain verifies and every history replays to itself.
async fn assert_audit_clean(engine: &Engine) {
    support::assert_verifies(engine).await;
    let mut differences = Vec::new();
    let summary = engine
        .replay_all(&mut |report| {
            if !report.differences.is_empty() {
                differences.push(format!("{:?}", report.differences));
            }
        })
        .await
        .expect("replays");
    assert_eq!(summary.differences, 0, "{differences:?}");
}

// ---- the renovation ----

fn application() -> Value {
    json!({
        "application_form": "ZX-2026-031",
        "renovation_plan": "施工装修方案-B2-031",
        "contractor": "qian",
        "contractor_unit": "shama精装",
        "owner_authorisation": true,
        "entry_notice_letter": true,
        "site_manager_letter": true,
        "business_licence_copy": true,
        "tax_registration_copy": true,
        "organisation_code_copy": true,
        "needs_gov_approval": false,
    })
}

fn liu() -> Actor {
    Actor::new("liu", ["owner_occupant"])
}

/// A renovation submitted for review (in `under_review`, its two timers armed).
async fn renovation_in_review(engine: &Engine, unit: &str) -> String {
    let started = engine
        .start(
            "renovation_approval",
            StartRequest::new(Actor::new("zhou", ["cs_dept"]))
                .data(json!({"unit": unit, "owner_occupant": "liu"})),
        )
        .await
        .expect("starts");
    let id = started.instance.id;
    let submitted = engine
        .fire(
            &id,
            Fire::new("submit_application", liu()).payload(application()),
        )
        .await
        .expect("submits");
    assert_eq!(submitted.instance.state, "under_review");
    id.to_string()
}

/// A renovation whose plan was approved, with the owner's signature on the undertaking (the
/// countersign of owner and contractor, in `approved`).
async fn renovation_half_signed(engine: &Engine, unit: &str) -> String {
    let id = renovation_in_review(engine, unit).await;
    let steps = [
        (
            "approve_plan",
            Actor::new("he", ["facilities_dept"]),
            json!({"review_opinion": "同意"}),
        ),
        ("notify_owner", Actor::new("zhou", ["cs_dept"]), json!({})),
        ("sign_undertaking", liu(), json!({})),
    ];
    for (event, actor, payload) in steps {
        engine
            .fire(&id, Fire::new(event, actor).payload(payload))
            .await
            .unwrap_or_else(|e| panic!("{event}: {e}"));
    }
    let instance = engine.get(&id).await.expect("exists");
    assert_eq!(instance.state, "approved");
    assert_eq!(
        instance.approval.as_ref().map(|a| a.signatures.len()),
        Some(1)
    );
    id
}

/// Version 2 of the renovation: a document check before the review, which is renamed
/// `technical_review` (same timers): `under_review` is gone.
fn extra_review_step(text: String) -> String {
    let text = text.replace("under_review", "technical_review");
    let text = replace_once(
        &text,
        "      submit_application:\n        to: technical_review",
        "      submit_application:\n        to: document_check",
    );
    replace_once(
        &text,
        "  technical_review:\n",
        "  document_check:\n    title: 服务中心资料初审\n    on:\n      documents_checked: {to: technical_review, title: 资料齐全转审核, roles: [property_centre]}\n\n  technical_review:\n",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renovation_in_review_moves_to_a_version_with_an_extra_review_step() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = VirtualClock::new(at("2026-03-02T09:30:00+08:00"));
    let engine = open(dir.path(), definitions(dir.path()), &clock).await;
    let id = renovation_in_review(&engine, "B2-031").await;
    let before = engine.get(&id).await.expect("exists");
    let due: Vec<(String, DateTime<Utc>)> = before
        .timers
        .iter()
        .map(|t| (t.event.clone(), t.due))
        .collect();
    assert_eq!(due.len(), 2, "the reminder and the overdue timer are armed");

    clock.set(at("2026-03-05T10:00:00+08:00"));
    edit(dir.path(), "renovation_approval", extra_review_step);
    let v2 = reload(&engine, "renovation_approval").await;

    // Without a mapping, the state it waits in is gone: blocked, with the code that says so.
    let (found, summary) = plans(&engine, request("renovation_approval")).await;
    assert_eq!(found.len(), 1);
    assert_eq!(codes(&found[0]), ["state_removed"]);
    assert_eq!(found[0].lands_in, None);
    assert_eq!(
        (summary.considered, summary.clean, summary.blocked),
        (1, 0, 1)
    );
    assert_eq!(summary.to_version, v2);
    let (moved, summary) = apply(&engine, request("renovation_approval")).await;
    assert!(migrated(&moved).is_empty());
    assert_eq!(summary.blocked, 1);
    let untouched = engine.get(&id).await.expect("exists");
    assert_eq!(untouched, before, "a blocked instance is left as it was");

    // Mapped: it lands in the renamed review, its timers kept with their due times.
    let mut mapped = request("renovation_approval");
    mapped
        .mapping
        .states
        .insert("under_review".into(), "technical_review".into());
    mapped.comment = Some("资料初审单列一步".into());
    let (found, summary) = plans(&engine, mapped.clone()).await;
    let plan = &found[0];
    assert!(plan.is_clean(), "{:?}", plan.blockers);
    assert_eq!(plan.lands_in.as_deref(), Some("technical_review"));
    assert!(plan.mapped);
    assert_eq!(plan.timers.len(), 2);
    assert!(
        plan.timers.iter().all(|t| t.fate == TimerFate::Kept),
        "{:?}",
        plan.timers
    );
    assert_eq!((summary.clean, summary.blocked), (1, 0));
    assert_eq!(
        engine.history(&id).await.expect("history").len(),
        2,
        "a plan writes nothing"
    );

    let (moved, summary) = apply(&engine, mapped.clone()).await;
    assert_eq!(
        (summary.considered, summary.clean, summary.blocked),
        (1, 1, 0)
    );
    let entries = migrated(&moved);
    assert_eq!(entries.len(), 1);
    let entry = entries[0];
    assert_eq!(entry.kind, EntryKind::Migrate);
    assert_eq!(entry.event, "migrate");
    assert_eq!(entry.actor, "boss");
    assert_eq!(entry.role.as_deref(), Some("process_owner"));
    assert_eq!(
        (entry.from.as_deref(), entry.to.as_str()),
        (Some("under_review"), "technical_review")
    );
    assert_eq!(entry.version, v2);
    assert!(entry.changes.is_empty(), "no recorded data changes");
    let migration = entry.migration.as_ref().expect("the migration is recorded");
    assert_eq!(migration.from_version, before.version);
    assert_eq!(migration.mapping, mapped.mapping);
    assert_eq!(migration.comment.as_deref(), Some("资料初审单列一步"));
    assert_eq!(migration.kept_timers.len(), 2);
    assert!(entry.timers_armed.is_empty() && entry.timers_cancelled.is_empty());

    let after = engine.get(&id).await.expect("exists");
    assert_eq!(after.state, "technical_review");
    assert_eq!(after.version, v2);
    assert_eq!(after.data, before.data);
    let due_after: Vec<(String, DateTime<Utc>)> = after
        .timers
        .iter()
        .map(|t| (t.event.clone(), t.due))
        .collect();
    assert_eq!(due_after, due, "the timers keep their due times");

    // The auditor's chain shows the move in business words: its kind, the version it left,
    // the state it left under that version's title, the process owner and the comment.
    let chain = engine.approval_chain(&id).await.expect("the chain");
    let link = chain.links.last().expect("the migration's link");
    assert_eq!(link.kind.name(), "migration");
    assert_eq!(link.kind.title(), "版本迁移");
    assert_eq!(link.from_version.as_deref(), Some(before.version.as_str()));
    assert_eq!(link.version, v2);
    assert_eq!(
        link.from_title.as_deref(),
        Some("设施设备维护部审核(周期一般为7-10个工作日)")
    );
    assert_eq!(link.role_title.as_deref(), Some("流程负责人"));
    assert_eq!(link.comment.as_deref(), Some("资料初审单列一步"));

    // Applied again: nothing left to move, nothing written.
    let (moved, summary) = apply(&engine, mapped).await;
    assert!(moved.is_empty());
    assert_eq!(
        (summary.considered, summary.clean, summary.current),
        (0, 0, 1)
    );
    assert_eq!(engine.history(&id).await.expect("history").len(), 3);

    // The kept reminder fires at its own due time, on the new version.
    engine.advance_to(due[0].1).await.expect("advances");
    let history = engine.history(&id).await.expect("history");
    let fired = history.last().expect("an entry");
    assert_eq!(
        (fired.event.as_str(), fired.at),
        ("review_reminder", due[0].1)
    );
    assert_eq!(fired.version, v2);
    let reminded = engine.get(&id).await.expect("exists");
    assert_eq!(reminded.state, "technical_review");
    assert!(reminded.data.contains_key("review_reminded_at"));

    // A new renovation starts on version 2 and takes the extra step.
    let fresh = renovation_in_review_v2(&engine).await;
    assert_eq!(fresh, "document_check");
    assert_audit_clean(&engine).await;
}

async fn renovation_in_review_v2(engine: &Engine) -> String {
    let started = engine
        .start(
            "renovation_approval",
            StartRequest::new(Actor::new("zhou", ["cs_dept"]))
                .data(json!({"unit": "C1-002", "owner_occupant": "liu"})),
        )
        .await
        .expect("starts");
    engine
        .fire(
            &started.instance.id,
            Fire::new("submit_application", liu()).payload(application()),
        )
        .await
        .expect("submits")
        .instance
        .state
        .to_string()
}

// ---- an approval with signatures in progress ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_countersign_in_progress_keeps_its_signature_and_is_evaluated_again() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = VirtualClock::new(at("2026-03-02T09:30:00+08:00"));
    let engine = open(dir.path(), definitions(dir.path()), &clock).await;
    let id = renovation_half_signed(&engine, "B2-031").await;
    let before = engine.get(&id).await.expect("exists");

    // Version 2: the property centre witnesses the undertaking too.
    edit(dir.path(), "renovation_approval", |text| {
        replace_once(
            &text,
            "        - {role: contractor, title: 装修施工单位负责人签署《装修承诺书》}\n",
            "        - {role: contractor, title: 装修施工单位负责人签署《装修承诺书》}\n        - {role: property_centre, title: 物业服务中心见证}\n",
        )
    });
    let v2 = reload(&engine, "renovation_approval").await;
    let (found, _) = plans(&engine, request("renovation_approval")).await;
    let plan = &found[0];
    assert!(plan.is_clean(), "{:?}", plan.blockers);
    let approval = plan.approval.as_ref().expect("the plan shows the approval");
    assert!(approval.signers_changed);
    assert_eq!(approval.signers.len(), 3);
    assert_eq!(approval.kept.len(), 1);
    assert_eq!(approval.kept[0].actor, "liu");
    assert!(approval.dropped.is_empty());

    let (moved, _) = apply(&engine, request("renovation_approval")).await;
    assert_eq!(migrated(&moved).len(), 1);
    let after = engine.get(&id).await.expect("exists");
    assert_eq!(after.version, v2);
    let progress = after.approval.as_ref().expect("the approval runs on");
    assert_eq!(progress.signers.len(), 3);
    assert_eq!(
        progress.signatures.len(),
        1,
        "the owner's signature is kept"
    );
    assert_eq!(progress.signatures[0].actor, "liu");
    assert_eq!(
        progress.signatures[0].at,
        before.approval.as_ref().unwrap().signatures[0].at
    );

    // Re-evaluated: the contractor's signature no longer completes it; the witness's does.
    let signed = engine
        .fire(
            &id,
            Fire::new("sign_undertaking", Actor::new("qian", ["contractor"])),
        )
        .await
        .expect("the contractor signs");
    assert_eq!(signed.instance.state, "approved");
    let done = engine
        .fire(
            &id,
            Fire::new("sign_undertaking", Actor::new("wu", ["property_centre"])),
        )
        .await
        .expect("the witness signs");
    assert_eq!(done.instance.state, "undertaking_signed");
    assert_audit_clean(&engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signature_without_a_signer_blocks_unless_the_mapping_drops_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = VirtualClock::new(at("2026-03-02T09:30:00+08:00"));
    let engine = open(dir.path(), definitions(dir.path()), &clock).await;
    let id = renovation_half_signed(&engine, "B2-031").await;

    // Version 2: the undertaking is the contractor's alone.
    edit(dir.path(), "renovation_approval", |text| {
        replace_once(
            &text,
            "        - {role: owner_occupant, title: 业户签署《装修承诺书》}\n",
            "",
        )
    });
    reload(&engine, "renovation_approval").await;
    let (found, _) = plans(&engine, request("renovation_approval")).await;
    assert_eq!(codes(&found[0]), ["signature_without_signer"]);
    let (moved, summary) = apply(&engine, request("renovation_approval")).await;
    assert!(migrated(&moved).is_empty());
    assert_eq!(summary.blocked, 1);
    assert_eq!(engine.history(&id).await.expect("history").len(), 5);

    let mut dropping = request("renovation_approval");
    dropping.mapping.drop_signatures = true;
    let (found, _) = plans(&engine, dropping.clone()).await;
    let approval = found[0].approval.as_ref().expect("the approval");
    assert!(found[0].is_clean(), "{:?}", found[0].blockers);
    assert_eq!(approval.dropped.len(), 1);
    assert_eq!(approval.dropped[0].actor, "liu");
    let (moved, _) = apply(&engine, dropping).await;
    let entry = migrated(&moved)[0];
    let migration = entry.migration.as_ref().expect("recorded");
    assert!(migration.mapping.drop_signatures);
    assert_eq!(
        migration.dropped_signatures.len(),
        1,
        "the entry says whose signature went"
    );
    let after = engine.get(&id).await.expect("exists");
    assert!(after.approval.as_ref().unwrap().signatures.is_empty());
    assert_audit_clean(&engine).await;
}

// ---- the expense approval's thresholds ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expense_mid_chain_moves_to_new_thresholds_and_its_route_is_recomputed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = VirtualClock::new(at("2026-03-02T09:30:00+08:00"));
    let engine = open(dir.path(), definitions(dir.path()), &clock).await;
    let applicant = Actor::new("xu", ["applicant"]);
    let started = engine
        .start("expense_approval", StartRequest::new(applicant.clone()))
        .await
        .expect("starts");
    let id = started.instance.id;
    let payload = json!({"department": "工程部", "expense_item": "水泵维修", "amount": 500, "budget_type": "in"});
    engine
        .fire(&id, Fire::new("submit", applicant).payload(payload))
        .await
        .expect("submits");
    engine
        .fire(&id, Fire::new("approve", Actor::new("dh", ["dept_head"])))
        .await
        .expect("the head approves");
    assert_eq!(engine.get(&id).await.unwrap().state, "finance_review");

    // Version 2: the property manager decides in-budget expenses up to 1000 yuan.
    edit(dir.path(), "expense_approval", |text| {
        replace_once(&text, "    default: 200\n", "    default: 1000\n")
    });
    reload(&engine, "expense_approval").await;
    let (found, _) = plans(&engine, request("expense_approval")).await;
    let plan = &found[0];
    assert!(plan.is_clean(), "{:?}", plan.blockers);
    let route = plan
        .route
        .as_ref()
        .expect("the plan says the route changes");
    assert_eq!(
        route.before,
        [
            "finance_review",
            "property_gm_review",
            "branch_finance_review",
            "branch_gm_review",
            "approved"
        ]
    );
    assert_eq!(
        route.after,
        ["finance_review", "property_gm_review", "approved"]
    );
    let words = {
        let old = engine.definition(&plan.from_version).expect("old");
        let new = engine.definition(&plan.to_version).expect("new");
        sopflow::i18n::plan_lines(sopflow::i18n::Lang::Zh, &old, &new, plan)
    };
    assert!(
        words
            .iter()
            .any(|l| l.contains("财务主管审核") && l.contains("→")),
        "{words:?}"
    );

    apply(&engine, request("expense_approval")).await;
    engine
        .fire(
            &id,
            Fire::new("approve", Actor::new("fs", ["finance_supervisor"])),
        )
        .await
        .expect("finance approves");
    let decided = engine
        .fire(&id, Fire::new("approve", Actor::new("gm", ["property_gm"])))
        .await
        .expect("the property manager decides");
    assert_eq!(
        decided.instance.state, "approved",
        "the new threshold applies"
    );
    // The recorded data was not touched: final_authority stays as computed at submission.
    assert_eq!(decided.instance.data["final_authority"], "branch_gm");
    assert_audit_clean(&engine).await;
}

// ---- refusals ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_process_owner_migrates_and_a_bad_mapping_is_refused_before_anything() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = VirtualClock::new(at("2026-03-02T09:30:00+08:00"));
    let engine = open(dir.path(), definitions(dir.path()), &clock).await;
    let id = renovation_in_review(&engine, "B2-031").await;
    edit(dir.path(), "renovation_approval", extra_review_step);
    reload(&engine, "renovation_approval").await;

    let mut someone = request("renovation_approval");
    someone.actor = Actor::new("zhou", ["cs_dept"]);
    let refused = engine.migrate(someone.clone(), |_| {}).await;
    assert!(
        matches!(refused, Err(EngineError::NotProcessOwner { .. })),
        "{refused:?}"
    );
    let refused = engine.migration_plan(someone, |_| {}).await;
    assert!(
        matches!(refused, Err(EngineError::NotProcessOwner { .. })),
        "{refused:?}"
    );

    let mut unknown_state = request("renovation_approval");
    unknown_state
        .mapping
        .states
        .insert("under_review".into(), "nowhere".into());
    let refused = engine.migrate(unknown_state, |_| {}).await;
    assert!(
        matches!(refused, Err(EngineError::BadMapping { .. })),
        "{refused:?}"
    );

    let mut to_final = request("renovation_approval");
    to_final
        .mapping
        .states
        .insert("under_review".into(), "closed".into());
    let refused = engine.migrate(to_final, |_| {}).await;
    assert!(
        matches!(refused, Err(EngineError::BadMapping { .. })),
        "{refused:?}"
    );

    let mut undeclared = request("renovation_approval");
    undeclared
        .mapping
        .set
        .insert("no_such_field".into(), json!(1));
    let refused = engine.migrate(undeclared, |_| {}).await;
    assert!(
        matches!(refused, Err(EngineError::BadMapping { .. })),
        "{refused:?}"
    );

    let mut ill_typed = request("renovation_approval");
    ill_typed
        .mapping
        .states
        .insert("under_review".into(), "technical_review".into());
    ill_typed
        .mapping
        .set
        .insert("amount_paid".into(), json!("lots"));
    let (found, _) = plans(&engine, ill_typed).await;
    assert_eq!(codes(&found[0]), ["bad_value"]);

    let mut unknown_version = request("renovation_approval");
    unknown_version.to = "abcdef0123".into();
    let refused = engine.migrate(unknown_version, |_| {}).await;
    assert!(
        matches!(refused, Err(EngineError::UnknownVersion { .. })),
        "{refused:?}"
    );

    assert_eq!(
        engine.history(&id).await.expect("history").len(),
        2,
        "nothing was written"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_choose_the_instances_and_rearm_cancels_every_timer() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = VirtualClock::new(at("2026-03-02T09:30:00+08:00"));
    let engine = open(dir.path(), definitions(dir.path()), &clock).await;
    let one = renovation_in_review(&engine, "B2-031").await;
    let two = renovation_in_review(&engine, "B2-032").await;
    let briefed = engine
        .start(
            "renovation_approval",
            StartRequest::new(Actor::new("zhou", ["cs_dept"]))
                .data(json!({"unit": "B2-033", "owner_occupant": "liu"})),
        )
        .await
        .expect("starts")
        .instance
        .id;
    clock.set(at("2026-03-04T09:30:00+08:00"));
    edit(dir.path(), "renovation_approval", extra_review_step);
    reload(&engine, "renovation_approval").await;

    let mut only_two = request("renovation_approval");
    only_two
        .mapping
        .states
        .insert("under_review".into(), "technical_review".into());
    only_two.mapping.timers = TimerPolicy::Rearm;
    only_two.only = vec![two.clone()];
    let (found, summary) = plans(&engine, only_two.clone()).await;
    assert_eq!(summary.considered, 1);
    assert_eq!(found[0].instance, two);
    let fates: Vec<TimerFate> = found[0].timers.iter().map(|t| t.fate).collect();
    assert_eq!(
        fates,
        [
            TimerFate::Cancelled,
            TimerFate::Cancelled,
            TimerFate::Armed,
            TimerFate::Armed
        ]
    );
    apply(&engine, only_two).await;
    let moved = engine.get(&two).await.expect("exists");
    assert!(
        moved
            .timers
            .iter()
            .all(|t| t.due > at("2026-03-10T00:00:00+08:00")),
        "re-armed from the move"
    );
    assert_eq!(engine.get(&one).await.unwrap().state, "under_review");

    let mut briefed_only = request("renovation_approval");
    briefed_only.state = Some("briefed".into());
    let (moved, summary) = apply(&engine, briefed_only).await;
    assert_eq!((summary.considered, summary.clean), (1, 1));
    assert_eq!(migrated(&moved)[0].instance, briefed);
    assert_ne!(
        engine.get(&one).await.unwrap().version,
        engine.get(&two).await.unwrap().version,
        "the one left out stays on version 1"
    );
    assert_audit_clean(&engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_field_the_new_version_requires_from_the_start_must_be_given() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = VirtualClock::new(at("2026-03-02T09:30:00+08:00"));
    let engine = open(dir.path(), definitions(dir.path()), &clock).await;
    let id = renovation_in_review(&engine, "B2-031").await;
    edit(dir.path(), "renovation_approval", |text| {
        replace_once(
            &text,
            "fields:\n  unit:\n",
            "fields:\n  building:\n    type: string\n    title: 楼栋\n    required_on: [start]\n  unit:\n",
        )
    });
    reload(&engine, "renovation_approval").await;
    let (found, _) = plans(&engine, request("renovation_approval")).await;
    assert_eq!(codes(&found[0]), ["field_missing"]);
    let mut given = request("renovation_approval");
    given.mapping.set.insert("building".into(), json!("B2"));
    let (found, _) = plans(&engine, given.clone()).await;
    assert!(found[0].is_clean(), "{:?}", found[0].blockers);
    assert!(matches!(
        found[0].fields[0].change,
        FieldChange::Set { before: None, .. }
    ));
    let (moved, _) = apply(&engine, given).await;
    assert_eq!(migrated(&moved)[0].changes["building"], "B2");
    assert_eq!(engine.get(&id).await.unwrap().data["building"], "B2");
    assert_audit_clean(&engine).await;
}

// ---- the command ----

/// `sopflow ARGS...` on the test's store and edited definitions.
fn sopflow(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sopflow"));
    let defs = dir.join("defs");
    command
        .args(args)
        .arg("--store")
        .arg(support::store_arg(&dir.join("data")))
        .args(["--workflows", &defs.join("workflows").display().to_string()])
        .args(["--rules", &defs.join("rules").display().to_string()])
        .args(["--calendars", &defs.join("calendars").display().to_string()])
        .env_remove("SOPFLOW_STORE")
        .env_remove("SOPFLOW_LANG");
    command
}

fn lines(output: &std::process::Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_migrate_command_plans_applies_and_exits_as_documented() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = VirtualClock::new(at("2026-03-02T09:30:00+08:00"));
    let sources = definitions(dir.path());
    let (one, two) = {
        let engine = open(dir.path(), sources, &clock).await;
        let one = renovation_in_review(&engine, "B2-031").await;
        let two = renovation_in_review(&engine, "B2-032").await;
        (one, two)
    };
    edit(dir.path(), "renovation_approval", extra_review_step);
    // The mapping kept next to the workflow is not taken for a workflow.
    let mapping = dir
        .path()
        .join("defs/workflows/renovation_approval.migration.yaml");
    std::fs::write(
        &mapping,
        "# yaml-language-server: $schema=../schemas/migration.schema.json\nstates:\n  under_review: technical_review\n",
    )
    .expect("writes the mapping");
    let owner = ["--actor", "boss", "--role", "process_owner"];

    // Without a mapping: the plan says why each is blocked, in Chinese, and exits 0; the
    // apply leaves them and exits 3.
    let plan = sopflow(
        dir.path(),
        &[
            "migrate",
            "plan",
            "renovation_approval",
            "--to",
            "current",
            "--lang",
            "zh",
        ],
    )
    .args(owner)
    .output()
    .expect("runs");
    let text = String::from_utf8_lossy(&plan.stdout);
    assert_eq!(
        plan.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&plan.stderr)
    );
    assert!(text.contains("新版本没有“设施设备维护部审核"), "{text}");
    assert!(text.contains("--map under_review=新环节"), "{text}");
    assert!(text.contains("未写入任何内容"), "{text}");

    let blocked = sopflow(
        dir.path(),
        &[
            "migrate",
            "apply",
            "renovation_approval",
            "--to",
            "current",
            "--format",
            "json",
        ],
    )
    .args(owner)
    .output()
    .expect("runs");
    assert_eq!(
        blocked.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&blocked.stderr)
    );
    let found = lines(&blocked);
    assert_eq!(found.len(), 3);
    assert_eq!(found[0]["outcome"], "blocked");
    assert_eq!(found[0]["plan"]["blockers"][0]["code"], "state_removed");
    assert_eq!(found[2]["summary"]["blocked"], 2);

    // With the mapping file, in JSON: one line per instance, then the summary.
    let plan = sopflow(
        dir.path(),
        &[
            "migrate",
            "plan",
            "renovation_approval",
            "--to",
            "current",
            "--format",
            "json",
        ],
    )
    .arg("--mapping")
    .arg(&mapping)
    .args(owner)
    .output()
    .expect("runs");
    assert_eq!(
        plan.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&plan.stderr)
    );
    let found = lines(&plan);
    assert_eq!(found.len(), 3);
    for line in &found[..2] {
        assert_eq!(line["verdict"], "clean", "{line}");
        assert_eq!(line["plan"]["lands_in"], "technical_review");
        assert_eq!(line["plan"]["timers"][0]["fate"], "kept");
    }
    assert_eq!(found[2]["summary"]["clean"], 2);

    // Not a process owner: refused, nothing written.
    let refused = sopflow(
        dir.path(),
        &[
            "migrate",
            "apply",
            "renovation_approval",
            "--to",
            "current",
            "--format",
            "json",
        ],
    )
    .args([
        "--map",
        "under_review=technical_review",
        "--actor",
        "zhou",
        "--role",
        "cs_dept",
    ])
    .output()
    .expect("runs");
    assert_eq!(refused.status.code(), Some(1));
    assert_eq!(lines(&refused)[0]["error"]["code"], "not_process_owner");

    // Applied to one only, then to the rest: each moved once.
    let applied = sopflow(
        dir.path(),
        &[
            "migrate",
            "apply",
            "renovation_approval",
            "--to",
            "current",
            "--lang",
            "en",
        ],
    )
    .args(["--map", "under_review=technical_review", "--only", &one])
    .args(["--comment", "document check split out"])
    .args(owner)
    .output()
    .expect("runs");
    let text = String::from_utf8_lossy(&applied.stdout);
    assert_eq!(
        applied.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    assert!(text.contains(&format!("{one}: migrated")), "{text}");
    assert!(!text.contains(&two), "{text}");
    for _ in 0..2 {
        let applied = sopflow(
            dir.path(),
            &[
                "migrate",
                "apply",
                "renovation_approval",
                "--to",
                "current",
                "--format",
                "json",
            ],
        )
        .arg("--mapping")
        .arg(&mapping)
        .args(owner)
        .output()
        .expect("runs");
        assert_eq!(
            applied.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&applied.stderr)
        );
    }
    let history = sopflow(dir.path(), &["history", &two, "--format", "json"])
        .output()
        .expect("runs");
    let entries: Vec<Value> = serde_json::from_slice(&history.stdout).expect("JSON");
    let migrations: Vec<&Value> = entries.iter().filter(|e| e["kind"] == "migrate").collect();
    assert_eq!(migrations.len(), 1, "moved once, though applied twice");

    let verify = sopflow(dir.path(), &["audit", "verify"])
        .output()
        .expect("runs");
    assert_eq!(
        verify.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    let replay = sopflow(dir.path(), &["audit", "replay", "--all"])
        .output()
        .expect("runs");
    assert_eq!(
        replay.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&replay.stdout)
    );
}

#[test]
fn the_checked_in_mapping_schema_is_current() {
    let path = support::project().join(sopflow::schema::MIGRATION_SCHEMA_PATH);
    let on_disk = std::fs::read_to_string(&path).expect("schemas/migration.schema.json exists");
    assert!(
        on_disk == sopflow::schema::migration_schema_json(),
        "{} is out of date: run `cargo run -- schema migration > {}`",
        path.display(),
        sopflow::schema::MIGRATION_SCHEMA_PATH
    );
}

/// `said` is what the README shows: `...` stands for any text (a version hash).
fn shows(said: &str, real: &str) -> bool {
    let parts: Vec<&str> = said.split("...").collect();
    let mut rest = real;
    for (i, part) in parts.iter().enumerate() {
        let found = if i == 0 {
            rest.starts_with(part).then_some(0)
        } else if i == parts.len() - 1 {
            rest.ends_with(part).then(|| rest.len() - part.len())
        } else {
            rest.find(part)
        };
        let Some(at) = found else { return false };
        rest = &rest[at + part.len()..];
    }
    parts.len() > 1 || rest.is_empty()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_migration_walk_through_runs_as_written() {
    let readme = std::fs::read_to_string(support::project().join("README.md")).expect("README");
    let section = readme
        .split("## Changing a process while it runs")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("the section");
    let block = |fence: &str| {
        section
            .split(fence)
            .nth(1)
            .and_then(|b| b.split("```").next())
            .expect("the block")
            .to_string()
    };
    let (commands, mapping) = (block("```sh\n"), block("```yaml\n"));
    assert!(mapping.starts_with("# workflows/renovation_approval.migration.yaml"));

    // The mapping file conforms to its schema and reads as a mapping.
    let schema: Value =
        serde_json::from_str(&sopflow::schema::migration_schema_json()).expect("JSON");
    let validator = jsonschema::validator_for(&schema).expect("a valid schema");
    let as_json: Value = serde_saphyr::from_str(&mapping).expect("YAML");
    assert!(validator.is_valid(&as_json), "{as_json}");
    let read: sopflow::machine::Mapping = serde_saphyr::from_str(&mapping).expect("a mapping");
    assert_eq!(read.states["under_review"], "technical_review");

    // A project whose renovation waits in review on the shipped version; then the edit.
    let dir = tempfile::tempdir().expect("temp dir");
    let sources = support::copy_definitions(dir.path());
    {
        let engine =
            Engine::open(sopflow::engine::Config::new(dir.path().join("data")).sources(sources))
                .await
                .expect("opens");
        assert_eq!(
            renovation_in_review(&engine, "B2-031").await,
            "renovation_approval-1"
        );
    }
    let file = dir.path().join("workflows/renovation_approval.yaml");
    let text = std::fs::read_to_string(&file).expect("reads");
    std::fs::write(&file, extra_review_step(text)).expect("writes");
    std::fs::write(
        dir.path()
            .join("workflows/renovation_approval.migration.yaml"),
        &mapping,
    )
    .expect("writes the mapping");

    let mut ran = 0;
    for said in readme::commands(&commands) {
        let output = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "sopflow() {{ \"$SOPFLOW_BIN\" \"$@\"; }}\n{}",
                said.command
            ))
            .env("SOPFLOW_BIN", env!("CARGO_BIN_EXE_sopflow"))
            .env("NO_COLOR", "1")
            .env("SOPFLOW_LANG", "en")
            .env_remove("SOPFLOW_STORE")
            .current_dir(dir.path())
            .output()
            .expect("runs sh");
        let out = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(
            output.status.code(),
            Some(said.exit),
            "{}\n{out}",
            said.command
        );
        if let Some(prints) = &said.prints {
            let first = out.lines().next().unwrap_or("").trim_end();
            assert!(
                shows(prints.trim_end(), first),
                "{}\nexpected first line: {prints}\ngot:\n{out}",
                said.command
            );
        }
        ran += 1;
    }
    assert_eq!(
        ran, 5,
        "the plan, the mapped plan, two applies and a refusal"
    );
}
