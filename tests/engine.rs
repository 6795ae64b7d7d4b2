//! The engine end to end on the shipped hot-work permit, on a real store in a temp dir (sled,
//! or PostgreSQL with `SOPFLOW_TEST_STORE=postgres`: see `support::store_location`).

mod support;

use serde_json::json;
use sopflow::engine::{Config, Engine, EngineError, Fire, StartRequest};
use sopflow::machine::{Actor, Refusal};
use sopflow::store::Query;
use std::path::{Path, PathBuf};

fn config(dir: &Path) -> Config {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    support::store_config(&dir.join("data"))
        .sources(vec![root.join("workflows"), root.join("rules")])
}

/// [`config`] on sled, for a test that rewrites sled's records directly.
fn sled_config(dir: &Path) -> Config {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    Config::new(dir.join("data")).sources(vec![root.join("workflows"), root.join("rules")])
}

fn documents() -> serde_json::Value {
    json!({
        "notification_letter": "HW-2026-031",
        "applicant_seal": true,
        "operator_certificate": "T-4411",
    })
}

fn refusal(result: Result<sopflow::engine::Outcome, EngineError>) -> Refusal {
    match result {
        Err(EngineError::Refused(refusal)) => refusal,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hot_work_permit_runs_from_application_to_distribution() {
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = Engine::open(config(dir.path())).await.expect("opens");
    let contractor = Actor::new("wang", ["contractor"]);
    let started = engine
        .start(
            "hot_work_permit",
            StartRequest::new(contractor.clone()).business_key("B2-031"),
        )
        .await
        .expect("starts");
    let id = started.instance.id.clone();
    assert_eq!(started.instance.state, "drafted");

    let submitted = engine
        .fire(
            &id,
            Fire::new("submit", contractor.clone()).payload(documents()),
        )
        .await
        .expect("submitted");
    assert_eq!(submitted.instance.state, "security_review");
    assert_eq!(submitted.entry.guards.len(), 1);
    assert!(submitted.entry.guards[0].passed);

    // The contractor may not approve their own permit.
    let wrong = refusal(
        engine
            .fire(&id, Fire::new("approve", contractor.clone()))
            .await,
    );
    assert!(matches!(wrong, Refusal::RoleNotAllowed { .. }), "{wrong}");
    assert_eq!(
        engine.get(&id).await.expect("exists").seq,
        1,
        "a refusal writes nothing"
    );

    let order = Actor::new("li", ["order_dept"]);
    engine
        .fire(&id, Fire::new("approve", order.clone()))
        .await
        .expect("first review");
    // Four-eyes: li (order_dept) also holds cs_dept, but may not do the second review.
    let li_cs = Actor::new("li", ["cs_dept"]);
    let four_eyes = refusal(engine.fire(&id, Fire::new("approve", li_cs)).await);
    assert!(matches!(four_eyes, Refusal::FourEyes { .. }), "{four_eyes}");
    engine
        .fire(&id, Fire::new("approve", Actor::new("zhao", ["cs_dept"])))
        .await
        .expect("second review");
    engine
        .fire(
            &id,
            Fire::new("approve", Actor::new("chen", ["project_gm"])),
        )
        .await
        .expect("final review");
    let sealed = engine
        .fire(
            &id,
            Fire::new("affix_seal", Actor::new("sun", ["admin_dept"])),
        )
        .await
        .expect("sealed");
    assert!(sealed.instance.data["sealed_at"].is_string());
    let missing = refusal(
        engine
            .fire(
                &id,
                Fire::new("distribute", Actor::new("zhao", ["cs_dept"])),
            )
            .await,
    );
    assert!(matches!(missing, Refusal::MissingField { .. }), "{missing}");
    let done = engine
        .fire(
            &id,
            Fire::new("distribute", Actor::new("zhao", ["cs_dept"]))
                .payload(json!({"archive_reference": "CS-ARCH-88", "copy_to_applicant": true, "copy_to_order_dept": true})),
        )
        .await
        .expect("distributed");
    assert_eq!(done.instance.state, "distributed");
    assert!(done.instance.finished);

    let history = engine.history(&id).await.expect("history");
    assert_eq!(history.len(), 7);
    for (i, entry) in history.iter().enumerate() {
        assert!(entry.verify(), "entry {i} hashes");
        if i > 0 {
            assert_eq!(entry.prev_hash, history[i - 1].hash, "entry {i} links");
        }
    }
    let listed = engine
        .list(Query {
            workflow: Some("hot_work_permit".into()),
            state: Some("distributed".into()),
            ..Query::default()
        })
        .await
        .expect("lists");
    assert_eq!(listed.len(), 1);
    let by_key = engine
        .list(Query {
            business_key: Some("B2-031".into()),
            ..Query::default()
        })
        .await
        .expect("lists");
    assert_eq!(by_key.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejection_needs_a_comment_and_the_permit_can_be_resubmitted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = Engine::open(config(dir.path())).await.expect("opens");
    let contractor = Actor::new("wang", ["contractor"]);
    let id = engine
        .start("hot_work_permit", StartRequest::new(contractor.clone()))
        .await
        .expect("starts")
        .instance
        .id;
    engine
        .fire(
            &id,
            Fire::new("submit", contractor.clone()).payload(documents()),
        )
        .await
        .expect("submitted");
    let order = Actor::new("li", ["order_dept"]);
    let bare = refusal(engine.fire(&id, Fire::new("reject", order.clone())).await);
    assert!(matches!(bare, Refusal::CommentRequired { .. }), "{bare}");
    let rejected = engine
        .fire(
            &id,
            Fire::new("reject", order).comment("操作人合格证已过期"),
        )
        .await
        .expect("rejected");
    assert_eq!(rejected.instance.state, "rejected");
    let resubmitted = engine
        .fire(&id, Fire::new("resubmit", contractor).payload(documents()))
        .await
        .expect("resubmitted");
    assert_eq!(resubmitted.instance.state, "security_review");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_survive_reopening_and_idempotency_keys_answer_twice_the_same() {
    let dir = tempfile::tempdir().expect("temp dir");
    let contractor = Actor::new("wang", ["contractor"]);
    let id = {
        let engine = Engine::open(config(dir.path())).await.expect("opens");
        let id = engine
            .start("hot_work_permit", StartRequest::new(contractor.clone()))
            .await
            .expect("starts")
            .instance
            .id;
        let first = engine
            .fire(
                &id,
                Fire::new("submit", contractor.clone())
                    .payload(documents())
                    .idempotency_key("k-1"),
            )
            .await
            .expect("submitted");
        let again = engine
            .fire(
                &id,
                Fire::new("submit", contractor.clone())
                    .payload(documents())
                    .idempotency_key("k-1"),
            )
            .await
            .expect("same answer");
        assert!(again.replayed);
        assert_eq!(again.entry, first.entry);
        id
    };
    let engine = Engine::open(config(dir.path())).await.expect("reopens");
    let instance = engine.get(&id).await.expect("still there");
    assert_eq!(instance.state, "security_review");
    assert_eq!(instance.seq, 1);
    let again = engine
        .fire(
            &id,
            Fire::new("submit", contractor)
                .payload(documents())
                .idempotency_key("k-1"),
        )
        .await
        .expect("same answer after reopening");
    assert!(again.replayed);
    assert_eq!(engine.history(&id).await.expect("history").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transition_that_stays_in_its_state_still_starts_its_children() {
    let dir = tempfile::tempdir().expect("temp dir");
    let defs = dir.path().join("defs");
    std::fs::create_dir_all(&defs).expect("folder");
    std::fs::write(
        defs.join("site.yaml"),
        "id: site\ntitle: 工地\nroles: {clerk: 职员}\ninitial: open\nstates:\n  open:\n    on:\n      add_permit: {to: open, roles: [clerk], spawn: [{workflow: permit}]}\n      close: {to: closed, roles: [clerk]}\n  closed: {final: true}\n",
    )
    .expect("writes");
    std::fs::write(
        defs.join("permit.yaml"),
        "id: permit\ntitle: 许可\nroles: {clerk: 职员}\ninitial: issued\nstates:\n  issued:\n    on:\n      end: {to: ended, roles: [clerk]}\n  ended: {final: true}\n",
    )
    .expect("writes");
    let engine = Engine::open(support::store_config(&dir.path().join("data")).sources(vec![defs]))
        .await
        .expect("opens");
    assert!(
        !engine.load_report().has_errors(),
        "{:?}",
        engine.load_report().diagnostics
    );
    let clerk = Actor::new("he", ["clerk"]);
    let site = engine
        .start("site", StartRequest::new(clerk.clone()))
        .await
        .expect("starts")
        .instance
        .id;
    let added = engine
        .fire(&site, Fire::new("add_permit", clerk.clone()))
        .await
        .expect("adds");
    assert!(!added.entry.entered);
    assert_eq!(added.instance.children.len(), 1);
    let child = engine
        .get(&added.instance.children[0].id)
        .await
        .expect("the child was started");
    assert_eq!(child.state, "issued");
}

/// Workflows that start one another in a loop: `looping` waits for its `instant` children and,
/// when they have all finished, starts another; an `instant` child finishes as it starts. One
/// `go` would cascade forever: the command fails, names the loop, and writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cascade_of_follow_ups_too_long_fails_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let defs = dir.path().join("defs");
    std::fs::create_dir_all(&defs).expect("folder");
    std::fs::write(
        defs.join("looping.yaml"),
        "id: looping\ntitle: 循环\nroles: {clerk: 职员}\ninitial: open\nstates:\n  open:\n    on:\n      go: {to: waiting, roles: [clerk], spawn: [{workflow: instant}]}\n  waiting:\n    await_children: {fire: again}\n    on:\n      again: {to: waiting, roles: [clerk], spawn: [{workflow: instant}]}\n      stop: {to: done, roles: [clerk]}\n  done: {final: true}\n",
    )
    .expect("writes");
    std::fs::write(
        defs.join("instant.yaml"),
        "id: instant\ntitle: 即办\nroles: {clerk: 职员}\ninitial: done\nstates:\n  done: {final: true}\n",
    )
    .expect("writes");
    let config = Config::new(dir.path().join("data")).sources(vec![defs]);
    let engine = Engine::open(config.clone()).await.expect("opens");
    let clerk = Actor::new("he", ["clerk"]);
    let id = engine
        .start("looping", StartRequest::new(clerk.clone()))
        .await
        .expect("starts")
        .instance
        .id;
    let failed = engine.fire(&id, Fire::new("go", clerk.clone())).await;
    match &failed {
        Err(EngineError::CascadeTooLong {
            instance,
            event,
            limit,
            workflows,
        }) => {
            assert_eq!((instance.as_str(), event.as_str()), (id.as_str(), "go"));
            assert_eq!(*limit, sopflow::engine::MAX_FOLLOW_UPS);
            assert_eq!(workflows, &["looping", "instant"]);
        }
        other => panic!("expected cascade_too_long, got {other:?}"),
    }
    let err = failed.expect_err("failed");
    assert_eq!(err.code(), "cascade_too_long");
    let message = err.to_string();
    assert!(
        message.contains("nothing was written") && message.contains("break the loop"),
        "{message}"
    );

    // Nothing of it was written, then or at the next open: no child, no step, no number.
    let check = |engine: Engine| {
        let id = id.clone();
        async move {
            let instance = engine.get(&id).await.expect("exists");
            assert_eq!((instance.seq, instance.state.as_str()), (0, "open"));
            assert!(instance.children.is_empty());
            assert_eq!(engine.history(&id).await.expect("history").len(), 1);
            let children = engine
                .list(Query {
                    workflow: Some("instant".into()),
                    ..Query::default()
                })
                .await
                .expect("lists");
            assert!(children.is_empty(), "{children:?}");
        }
    };
    check(engine.clone()).await;
    drop(engine);
    let engine = Engine::open(config).await.expect("reopens");
    check(engine.clone()).await;
    drop(engine);
    // The children's numbers were given back: the next `instant` would be the first.
    let store = sopflow::store::SledStore::open(&dir.path().join("data"), Default::default())
        .expect("the store opens");
    use sopflow::store::Store;
    assert_eq!(store.last_number("instant").expect("reads"), 0);
}

/// A step whose guard is costly runs on the blocking pool: on a current-thread runtime (one
/// thread for every task), a short sleep beside it ends long before the step does. Were the
/// guard evaluated on the async thread, the sleep could not end until the guard had finished.
#[tokio::test]
async fn a_costly_guard_leaves_the_async_thread_free() {
    costly_step_beside_a_sleep().await;
}

/// On a multi-threaded runtime a lone step runs in place (`block_in_place`, nothing else
/// being committed), and the worker's other tasks move to another thread: with one worker, a
/// task sleeping beside the costly step still wakes on time.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_costly_step_in_place_leaves_the_other_tasks_running() {
    costly_step_beside_a_sleep().await;
}

async fn costly_step_beside_a_sleep() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let engine = Engine::open(
        support::store_config(&dir.path().join("data"))
            .sources(vec![root.join("benches/workflows/slow_guard")]),
    )
    .await
    .expect("opens");
    let clerk = Actor::new("clerk-1", ["clerk"]);
    let id = engine
        .start("slow_guard", StartRequest::new(clerk.clone()))
        .await
        .expect("starts")
        .instance
        .id;
    let step = {
        let (engine, id, clerk) = (engine.clone(), id.clone(), clerk.clone());
        tokio::spawn(async move {
            let began = std::time::Instant::now();
            let fired = engine
                .fire(
                    &id,
                    Fire::new("heavy", clerk).payload(json!({"rounds": 100})),
                )
                .await;
            (fired, began.elapsed())
        })
    };
    // Timed from here, not from the task's first poll, which a held thread would delay.
    let began = std::time::Instant::now();
    let sleeper = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        began.elapsed()
    });
    let (fired, took) = step.await.expect("the step's task");
    let slept = sleeper.await.expect("the sleeping task");
    assert_eq!(fired.expect("the guard holds").entry.seq, 1);
    eprintln!("the costly step took {took:?}; a 10 ms sleep beside it took {slept:?}");
    assert!(
        took >= std::time::Duration::from_millis(100),
        "the guard is costly enough to tell ({took:?})"
    );
    assert!(
        slept < took / 2,
        "a 10 ms sleep took {slept:?} while the step took {took:?}: the step held the thread"
    );
}

/// Instance numbers are what a clerk reads as the permit's number: per workflow, 1, 2, 3...
/// with no gaps, across restarts; a refused start uses none; a store whose instances were
/// numbered before numbers were kept goes on after its highest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_numbers_run_on_per_workflow_across_restarts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let contractor = Actor::new("wang", ["contractor"]);
    let start = |engine: &Engine, workflow: &'static str, actor: Actor| {
        let engine = engine.clone();
        async move {
            engine
                .start(workflow, StartRequest::new(actor))
                .await
                .map(|o| o.instance.id)
        }
    };
    {
        let engine = Engine::open(sled_config(dir.path())).await.expect("opens");
        assert_eq!(
            start(&engine, "hot_work_permit", contractor.clone())
                .await
                .expect("starts"),
            "hot_work_permit-1"
        );
        // Refused (a clerk may not open a permit): no number is used.
        let refused = start(&engine, "hot_work_permit", Actor::new("li", ["order_dept"])).await;
        assert!(
            matches!(refused, Err(EngineError::Refused(_))),
            "{refused:?}"
        );
        assert_eq!(
            start(&engine, "hot_work_permit", contractor.clone())
                .await
                .expect("starts"),
            "hot_work_permit-2"
        );
    }
    for expected in ["hot_work_permit-3", "hot_work_permit-4"] {
        let engine = Engine::open(sled_config(dir.path()))
            .await
            .expect("reopens");
        assert_eq!(
            start(&engine, "hot_work_permit", contractor.clone())
                .await
                .expect("starts"),
            expected
        );
    }
    let engine = Engine::open(sled_config(dir.path()))
        .await
        .expect("reopens");
    let owner = Actor::new("zhou", ["cs_dept"]);
    let lost = engine
        .start("lost_and_found", StartRequest::new(owner.clone()))
        .await
        .expect("starts");
    assert_eq!(
        lost.instance.id, "lost_and_found-1",
        "each workflow counts its own"
    );
    drop(engine);

    // A store from before: no numbers kept, instances numbered by sled's id generator.
    {
        let db = support::raw_sled(&dir.path().join("data"));
        db.drop_tree("numbers").expect("drops");
        db.flush().expect("flushes");
    }
    let engine = Engine::open(sled_config(dir.path()))
        .await
        .expect("reopens");
    assert_eq!(
        start(&engine, "hot_work_permit", contractor.clone())
            .await
            .expect("starts"),
        "hot_work_permit-5"
    );
    assert_eq!(
        engine
            .get("hot_work_permit-1")
            .await
            .expect("still there")
            .state,
        "drafted"
    );
}

/// A step is offered under the title of the branch it will take on this instance's data: after
/// 设施设备维护部 asked for a revision, 客服部 is offered "通告业户:装修方案需修改", not the first
/// branch's "审核通过"; a branch whose guard reads the payload is offered as written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_are_offered_as_what_they_will_do() {
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = Engine::open(config(dir.path())).await.expect("opens");
    let zhou = Actor::new("zhou", ["cs_dept"]);
    let id = engine
        .start(
            "renovation_approval",
            StartRequest::new(zhou.clone())
                .data(json!({"unit": "B2-031", "owner_occupant": "sun"})),
        )
        .await
        .expect("starts")
        .instance
        .id;
    let sun = Actor::new("sun", ["owner_occupant"]);
    let submit = engine.available(&id, &sun).await.expect("available");
    assert_eq!(submit[0].event, "submit_application");
    engine
        .fire(
            &id,
            Fire::new("submit_application", sun).payload(json!({
                "application_form": "ZX-1", "renovation_plan": "方案", "contractor": "wang",
                "contractor_unit": "某公司", "owner_authorisation": true,
                "entry_notice_letter": true, "site_manager_letter": true,
                "business_licence_copy": true, "tax_registration_copy": true,
                "organisation_code_copy": true, "needs_gov_approval": false,
            })),
        )
        .await
        .expect("submitted");
    engine
        .fire(
            &id,
            Fire::new("require_revision", Actor::new("he", ["facilities_dept"]))
                .payload(json!({"review_opinion": "图纸不全"})),
        )
        .await
        .expect("opinion");
    let offered = engine.available(&id, &zhou).await.expect("available");
    let titles: Vec<(&str, Option<&str>)> = offered
        .iter()
        .map(|a| (a.event.as_str(), a.title.as_deref()))
        .collect();
    assert_eq!(titles, [("notify_owner", Some("通告业户:装修方案需修改"))]);
}
