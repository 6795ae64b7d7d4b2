//! Approvals, children and versions at run time, on a real sled store in a temp dir, with
//! the test workflows in tests/runtime/.

mod support;

use serde_json::json;
use sopflow::engine::{Engine, EngineError, Fire, Outcome, StartRequest};
use sopflow::machine::{Actor, Refusal};
use std::path::{Path, PathBuf};

fn workflows() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/runtime")
}

async fn open(dir: &Path) -> Engine {
    Engine::open(support::store_config(&dir.join("data")).sources(vec![workflows()]))
        .await
        .expect("opens")
}

fn refusal(result: Result<Outcome, EngineError>) -> Refusal {
    match result {
        Err(EngineError::Refused(refusal)) => refusal,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn clerk() -> Actor {
    Actor::new("clerk-1", ["clerk"])
}

/// Starts an acceptance with two workers and returns its id, in state `passes`.
async fn with_passes(engine: &Engine, amount: serde_json::Value) -> String {
    let id = engine
        .start(
            "acceptance",
            StartRequest::new(clerk()).data(json!({"amount": amount, "workers": ["张三", "李四"]})),
        )
        .await
        .expect("starts")
        .instance
        .id;
    let opened = engine
        .fire(&id, Fire::new("open", clerk()))
        .await
        .expect("opens");
    assert_eq!(opened.entry.spawned.len(), 2, "one pass card per worker");
    assert_eq!(opened.instance.state, "passes");
    id.to_string()
}

async fn return_passes(engine: &Engine, id: &str) {
    let parent = engine.get(id).await.expect("exists");
    // One card per worker, in the order of the list, each its own workflow's instance.
    for (child, worker) in parent.children.iter().zip(["张三", "李四"]) {
        let card = engine.get(&child.id).await.expect("child started");
        assert_eq!(card.parent.as_deref(), Some(id));
        assert_eq!(card.workflow, child.workflow);
        assert!(
            child.id.starts_with(&format!("{}-", card.workflow)),
            "{}",
            child.id
        );
        assert_eq!(card.data["item"], json!(worker));
        engine
            .fire(&child.id, Fire::new("return", clerk()))
            .await
            .expect("returned");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parent_waits_for_its_children_then_moves_on_by_itself() {
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = open(dir.path()).await;
    let id = with_passes(&engine, json!(800)).await;
    let system_only = refusal(engine.fire(&id, Fire::new("passes_done", clerk())).await);
    assert!(
        matches!(system_only, Refusal::SystemOnly { .. }),
        "{system_only}"
    );
    return_passes(&engine, &id).await;
    let parent = engine.get(&id).await.expect("exists");
    assert_eq!(parent.state, "expense");
    assert!(
        parent
            .children
            .iter()
            .all(|c| c.finished_in.as_deref() == Some("returned"))
    );
    let history = engine.history(&id).await.expect("history");
    let last = history.last().expect("entries");
    assert_eq!(
        (last.event.as_str(), last.actor.as_str()),
        ("passes_done", "system")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_money_string_is_converted_before_the_routing_guard_runs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = open(dir.path()).await;
    // "18000" as text must route to the landlord exactly as the number would.
    let id = with_passes(&engine, json!("18000")).await;
    return_passes(&engine, &id).await;
    let parent = engine.get(&id).await.expect("exists");
    assert_eq!(parent.data["amount"], json!(18000.0));
    let signers = &parent.approval.as_ref().expect("approval").signers;
    assert!(signers[1].required, "18000 >= 15000: the landlord signs");

    let small = with_passes(&engine, json!(800)).await;
    return_passes(&engine, &small).await;
    let parent = engine.get(&small).await.expect("exists");
    assert!(!parent.approval.as_ref().expect("approval").signers[1].required);

    let bad = refusal(
        engine
            .start(
                "acceptance",
                StartRequest::new(clerk()).data(json!({"amount": "15k"})),
            )
            .await,
    );
    assert!(matches!(bad, Refusal::IllTyped { .. }), "{bad}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sequence_is_signed_in_order_and_a_countersign_needs_every_signer() {
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = open(dir.path()).await;
    let id = with_passes(&engine, json!(18000)).await;
    return_passes(&engine, &id).await;

    let centre = Actor::new("centre-1", ["centre"]);
    let early = refusal(engine.fire(&id, Fire::new("approve", centre.clone())).await);
    assert!(
        matches!(early, Refusal::NotYourTurn { ref waiting_for } if waiting_for == "clerk"),
        "{early}"
    );
    engine
        .fire(&id, Fire::new("approve", clerk()))
        .await
        .expect("clerk signs");
    let landlord = Actor::new("landlord-1", ["landlord"]);
    let partial = engine
        .fire(&id, Fire::new("approve", landlord))
        .await
        .expect("landlord signs");
    assert_eq!(
        partial.instance.state, "expense",
        "the centre has not signed yet"
    );
    assert_eq!(
        partial
            .instance
            .approval
            .as_ref()
            .expect("approval")
            .signatures
            .len(),
        2
    );
    let done = engine
        .fire(&id, Fire::new("approve", centre.clone()))
        .await
        .expect("centre signs");
    assert_eq!(done.instance.state, "joint");

    // Countersign (all): three signatures, each recorded, in any order.
    let owner = Actor::new("owner-1", ["owner"]);
    let first = engine
        .fire(&id, Fire::new("approve", owner.clone()))
        .await
        .expect("owner");
    assert_eq!(first.instance.state, "joint");
    let twice = refusal(engine.fire(&id, Fire::new("approve", owner)).await);
    assert!(matches!(twice, Refusal::AlreadySigned { .. }), "{twice}");
    engine
        .fire(&id, Fire::new("approve", centre.clone()))
        .await
        .expect("centre");
    let contractor = Actor::new("builder-1", ["contractor"]);
    let joint = engine
        .fire(&id, Fire::new("approve", contractor))
        .await
        .expect("contractor");
    assert_eq!(joint.instance.state, "review");

    // Quorum: 2 of 3 centre signatures, from two different people.
    let one = engine
        .fire(&id, Fire::new("approve", centre.clone()))
        .await
        .expect("first");
    assert_eq!(one.instance.state, "review");
    let same = refusal(engine.fire(&id, Fire::new("approve", centre)).await);
    assert!(matches!(same, Refusal::AlreadySigned { .. }), "{same}");
    let two = engine
        .fire(
            &id,
            Fire::new("approve", Actor::new("centre-2", ["centre"])),
        )
        .await
        .expect("second");
    assert_eq!(two.instance.state, "done");
    assert!(two.instance.finished);
    let finished = refusal(engine.fire(&id, Fire::new("approve", clerk())).await);
    assert!(matches!(finished, Refusal::Finished { .. }), "{finished}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejection_by_a_signer_needs_its_comment() {
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = open(dir.path()).await;
    let id = with_passes(&engine, json!(800)).await;
    return_passes(&engine, &id).await;
    let bare = refusal(engine.fire(&id, Fire::new("reject", clerk())).await);
    assert!(matches!(bare, Refusal::CommentRequired { .. }), "{bare}");
    let outsider = refusal(
        engine
            .fire(
                &id,
                Fire::new("reject", Actor::new("x", ["owner"])).comment("no"),
            )
            .await,
    );
    assert!(
        matches!(outsider, Refusal::RoleNotAllowed { .. }),
        "{outsider}"
    );
    let rejected = engine
        .fire(&id, Fire::new("reject", clerk()).comment("金额有误"))
        .await
        .expect("rejected");
    assert_eq!(rejected.instance.state, "applied");
    assert!(rejected.instance.approval.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_expected_seq_loses_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = open(dir.path()).await;
    let id = with_passes(&engine, json!(800)).await;
    return_passes(&engine, &id).await;
    let seen = engine.get(&id).await.expect("exists").seq;
    let first = engine
        .fire(&id, Fire::new("approve", clerk()).expected_seq(seen))
        .await
        .expect("first clerk wins");
    let second = refusal(
        engine
            .fire(
                &id,
                Fire::new("approve", Actor::new("clerk-2", ["clerk"])).expected_seq(seen),
            )
            .await,
    );
    assert!(matches!(second, Refusal::Stale { .. }), "{second}");
    assert_eq!(
        engine.get(&id).await.expect("exists").seq,
        first.instance.seq
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_instances_keep_their_version_when_the_yaml_changes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sources = dir.path().join("workflows");
    std::fs::create_dir_all(&sources).expect("folder");
    let yaml = std::fs::read_to_string(workflows().join("pass_card.yaml")).expect("reads");
    std::fs::write(sources.join("pass_card.yaml"), &yaml).expect("writes");
    let config = || support::store_config(&dir.path().join("data")).sources(vec![sources.clone()]);

    let (old_id, old_version) = {
        let engine = Engine::open(config()).await.expect("opens");
        let started = engine
            .start("pass_card", StartRequest::new(clerk()))
            .await
            .expect("starts");
        (started.instance.id, started.instance.version)
    };
    // The new version renames the final state.
    std::fs::write(
        sources.join("pass_card.yaml"),
        yaml.replace("returned", "handed_back"),
    )
    .expect("writes");
    let engine = Engine::open(config()).await.expect("reopens");
    let new = engine
        .start("pass_card", StartRequest::new(clerk()))
        .await
        .expect("starts");
    assert_ne!(new.instance.version, old_version);
    let old = engine
        .fire(&old_id, Fire::new("return", clerk()))
        .await
        .expect("old runs");
    assert_eq!(
        old.instance.state, "returned",
        "the old instance runs its own version"
    );
    assert_eq!(old.entry.version, old_version);
    let renamed = engine
        .fire(&new.instance.id, Fire::new("return", clerk()))
        .await
        .expect("new runs");
    assert_eq!(renamed.instance.state, "handed_back");
    let stored = engine
        .definition_sources(&old_version)
        .await
        .expect("stored");
    assert_eq!(stored.yaml, yaml);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runaway_guard_is_stopped_with_a_refusal() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sources = dir.path().join("src");
    std::fs::create_dir_all(&sources).expect("folder");
    std::fs::write(
        sources.join("spin.yaml"),
        "id: spin\ntitle: 测试\nroles: {clerk: 客服}\ninitial: a\nstates:\n  a:\n    on:\n      go: {to: b, roles: [clerk], guard: spin::forever}\n  b: {final: true}\n",
    )
    .expect("writes");
    std::fs::write(sources.join("spin.rhai"), "fn forever(data) { loop { } }\n").expect("writes");
    let engine =
        Engine::open(support::store_config(&dir.path().join("data")).sources(vec![sources]))
            .await
            .expect("opens");
    let id = engine
        .start("spin", StartRequest::new(clerk()))
        .await
        .expect("starts")
        .instance
        .id;
    let stopped = refusal(engine.fire(&id, Fire::new("go", clerk())).await);
    assert!(
        matches!(
            &stopped,
            Refusal::GuardError {
                error: sopflow::script::ScriptError::Limit(_),
                ..
            }
        ),
        "{stopped}"
    );
    assert_eq!(engine.get(&id).await.expect("exists").seq, 0);
}
