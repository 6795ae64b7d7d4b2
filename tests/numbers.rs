//! Numbers people can say: readable numbers (`DH-2026-0001`) sequential across restarts and
//! counted afresh each year, instances found by them, children numbered as their own
//! workflow's instances, children of older stores (`parent.seq.n`), and crash repair that never
//! starts a child twice. Real sled stores in temp dirs.

mod support;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;
use sopflow::clock::{Clock, VirtualClock};
use sopflow::engine::{Config, Engine, Fire, StartRequest};
use sopflow::machine::{self, Actor, Command, Instance, Start};
use sopflow::store::Options;
use sopflow::store::{Committed, Query, SledStore, Store};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn shipped(dir: &Path, clock: &VirtualClock) -> Config {
    support::store_config(&dir.join("data"))
        .sources(vec![
            root().join("workflows"),
            root().join("rules"),
            root().join("calendars"),
        ])
        .clock(Arc::new(clock.clone()))
}

/// Beijing time.
fn beijing(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    chrono::FixedOffset::east_opt(8 * 3600)
        .expect("offset")
        .with_ymd_and_hms(y, m, d, h, min, 0)
        .single()
        .expect("a time")
        .with_timezone(&Utc)
}

async fn permit(engine: &Engine) -> Instance {
    engine
        .start(
            "hot_work_permit",
            StartRequest::new(Actor::new("wang", ["contractor"])),
        )
        .await
        .expect("starts")
        .instance
}

/// 动火证 numbers run DH-2026-0001, -0002... across restarts, and start again at
/// DH-2027-0001 after New Year in Beijing (16:00 UTC on 31 December), while the ids run on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permit_numbers_run_on_across_restarts_and_restart_each_year() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = VirtualClock::new(beijing(2026, 12, 31, 23, 0));
    let mut seen = Vec::new();
    {
        let engine = Engine::open(shipped(dir.path(), &clock))
            .await
            .expect("opens");
        for _ in 0..2 {
            let p = permit(&engine).await;
            seen.push((p.id.to_string(), p.number));
        }
    }
    {
        let engine = Engine::open(shipped(dir.path(), &clock))
            .await
            .expect("reopens");
        let p = permit(&engine).await;
        seen.push((p.id.to_string(), p.number));
        clock.set(beijing(2027, 1, 1, 0, 30));
        let p = permit(&engine).await;
        seen.push((p.id.to_string(), p.number));
    }
    let engine = Engine::open(shipped(dir.path(), &clock))
        .await
        .expect("reopens");
    let p = permit(&engine).await;
    seen.push((p.id.to_string(), p.number));
    let expected: Vec<(String, Option<String>)> = [
        ("hot_work_permit-1", "DH-2026-0001"),
        ("hot_work_permit-2", "DH-2026-0002"),
        ("hot_work_permit-3", "DH-2026-0003"),
        ("hot_work_permit-4", "DH-2027-0001"),
        ("hot_work_permit-5", "DH-2027-0002"),
    ]
    .iter()
    .map(|(id, n)| (id.to_string(), Some(n.to_string())))
    .collect();
    assert_eq!(seen, expected);

    // The number is in the start entry (hash-chained) and the snapshot, and finds the
    // instance wherever an id does.
    let history = engine.history("DH-2026-0002").await.expect("by number");
    assert_eq!(history[0].instance, "hot_work_permit-2");
    assert_eq!(history[0].number.as_deref(), Some("DH-2026-0002"));
    assert!(history[0].verify());
    let found = engine.get("DH-2027-0001").await.expect("by number");
    assert_eq!(found.id, "hot_work_permit-4");
    let fired = engine
        .fire(
            "DH-2027-0001",
            Fire::new("submit", Actor::new("wang", ["contractor"])).payload(json!({
                "notification_letter": "HW-2027-001",
                "applicant_seal": true,
                "operator_certificate": "T-4411",
            })),
        )
        .await
        .expect("fired by number");
    assert_eq!(fired.instance.id, "hot_work_permit-4");
    assert_eq!(fired.instance.number.as_deref(), Some("DH-2027-0001"));
    assert!(engine.get("DH-2027-0009").await.is_err());
    // Ids keep working, and the index agrees with the snapshots after a checkpoint.
    assert_eq!(
        engine
            .get("hot_work_permit-1")
            .await
            .expect("by id")
            .number
            .as_deref(),
        Some("DH-2026-0001")
    );
    let workflows_without_format = engine
        .start(
            "lost_and_found",
            StartRequest::new(Actor::new("zhou", ["cs_dept"])),
        )
        .await
        .expect("starts")
        .instance;
    assert_eq!(workflows_without_format.number, None);
    drop(engine);
    // The store itself, on a blocking thread (a store's methods block).
    let location = support::store_location(&dir.path().join("data"));
    let (problems, found) = tokio::task::spawn_blocking(move || {
        let store = sopflow::store::open(&location, Options::default()).expect("opens");
        let mut problems = Vec::new();
        store
            .check_derived(&mut |p| problems.push(p))
            .expect("checks");
        (problems, store.find_number("DH-2026-0003").expect("finds"))
    })
    .await
    .expect("checked");
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(found, vec!["hot_work_permit-3".to_string()]);
}

/// The test workflows for children, with the pass card numbered `PC-{year}-{seq:03}`.
fn children_sources(dir: &Path) -> PathBuf {
    let sources = dir.join("workflows");
    std::fs::create_dir_all(&sources).expect("folder");
    std::fs::copy(
        root().join("tests/runtime/acceptance.yaml"),
        sources.join("acceptance.yaml"),
    )
    .expect("copies");
    let card = std::fs::read_to_string(root().join("tests/runtime/pass_card.yaml")).expect("reads");
    let card = card.replace(
        "initial: issued",
        "number: \"PC-{year}-{seq:03}\"\ninitial: issued",
    );
    std::fs::write(sources.join("pass_card.yaml"), card).expect("writes");
    sources
}

fn children_config(dir: &Path, clock: &VirtualClock) -> Config {
    support::store_config(&dir.join("data"))
        .sources(vec![children_sources(dir)])
        .clock(Arc::new(clock.clone()))
}

fn clerk() -> Actor {
    Actor::new("zhou", ["clerk"])
}

async fn open_acceptance(engine: &Engine, workers: &[&str]) -> Instance {
    let id = engine
        .start(
            "acceptance",
            StartRequest::new(clerk()).data(json!({"amount": 100.0, "workers": workers})),
        )
        .await
        .expect("starts")
        .instance
        .id;
    engine
        .fire(&id, Fire::new("open", clerk()))
        .await
        .expect("opens")
        .instance
}

/// A child is its own workflow's next instance, with its readable number; the parent's step
/// records both, and is told when the child finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_gets_its_own_workflows_number() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = VirtualClock::new(beijing(2026, 5, 6, 10, 0));
    let engine = Engine::open(children_config(dir.path(), &clock))
        .await
        .expect("opens");
    let first = open_acceptance(&engine, &["li", "wu"]).await;
    let children: Vec<(String, Option<String>)> = first
        .children
        .iter()
        .map(|c| (c.id.clone(), c.number.clone()))
        .collect();
    assert_eq!(
        children,
        vec![
            ("pass_card-1".to_string(), Some("PC-2026-001".to_string())),
            ("pass_card-2".to_string(), Some("PC-2026-002".to_string())),
        ]
    );
    let history = engine.history(&first.id).await.expect("history");
    let spawning = history
        .iter()
        .find(|e| !e.spawned.is_empty())
        .expect("spawned");
    assert!(spawning.verify(), "the renamed step is sealed again");
    assert_eq!(
        spawning.spawned[0].key.as_deref(),
        Some(format!("{}.1.1", first.id).as_str()),
        "the derived id stays as the child's key"
    );
    let card = engine.get("PC-2026-002").await.expect("by number");
    assert_eq!(card.id, "pass_card-2");
    assert_eq!(card.parent.as_deref(), Some(first.id.as_str()));
    // The next start, by a person or a parent, goes on from there.
    let second = open_acceptance(&engine, &["ma"]).await;
    assert_eq!(second.children[0].id, "pass_card-3");
    // A child finishing tells its parent, which moves on once all have.
    for card in ["pass_card-1", "PC-2026-002"] {
        engine
            .fire(card, Fire::new("return", clerk()))
            .await
            .expect("returned");
    }
    let parent = engine.get(&first.id).await.expect("parent");
    assert_eq!(parent.state, "expense", "{parent:?}");
    assert!(parent.children.iter().all(|c| c.finished_in.is_some()));
    // Audit replay reproduces the renamed step, and the children's numbered starts.
    for id in [first.id.as_str(), "pass_card-1", "pass_card-3"] {
        let replayed = engine.replay(id).await.expect("replays");
        assert!(replayed.is_clean(), "{id}: {:?}", replayed.differences);
    }
}

/// A store written before children were numbered: the parent's step spawned
/// `acceptance-1.1.1`, and that child runs, is read, and tells its parent when it finishes,
/// after the store is reopened by this engine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_style_child_id_still_works_after_reopening() {
    if support::sled_only("an_old_style_child_id_still_works_after_reopening") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = VirtualClock::new(beijing(2026, 5, 6, 10, 0));
    let config = children_config(dir.path(), &clock);
    let at = clock.now();
    // Written as the engine of before wrote it: the pure steps, the derived child id.
    {
        let engine = Engine::open(config.clone()).await.expect("opens");
        let parent = engine.definition_of("acceptance").expect("loaded");
        let card = engine.definition_of("pass_card").expect("loaded");
        drop(engine);
        let sandbox = sopflow::script::Sandbox::default();
        let store = SledStore::open(&dir.path().join("data"), Options::default()).expect("opens");
        let start = Start {
            id: "acceptance-1".into(),
            actor: clerk(),
            data: json!({"amount": 100.0, "workers": ["li"]})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            business_key: None,
            parent: None,
            idempotency_key: None,
            at,
            number: None,
        };
        let first = machine::start(&parent, &start, &sandbox).expect("starts");
        let mut snapshot = Instance::begin(&first).expect("begins");
        let command = Command {
            event: "open".into(),
            actor: clerk(),
            payload: Default::default(),
            idempotency_key: None,
            at,
            expected_seq: None,
        };
        let open = machine::step(&parent, &snapshot, &command, &sandbox).expect("opens");
        assert_eq!(open.spawned[0].id, "acceptance-1.1.1");
        let mut opened = snapshot.clone();
        opened.apply(&open).expect("applies");
        let child = Start {
            id: "acceptance-1.1.1".into(),
            actor: Actor::system(),
            data: Default::default(),
            business_key: None,
            parent: Some("acceptance-1".into()),
            idempotency_key: None,
            at,
            number: None,
        };
        let child = machine::start(&card, &child, &sandbox).expect("child starts");
        let child_snapshot = Instance::begin(&child).expect("begins");
        store
            .commit(&[
                Committed::new(first, snapshot.clone()).expect("encodes"),
                Committed::new(open, opened.clone()).expect("encodes"),
                Committed::new(child, child_snapshot).expect("encodes"),
            ])
            .expect("commits");
        store.set_last_number("acceptance", 1).expect("numbers");
        store.checkpoint().expect("checkpoints");
        snapshot = opened;
        assert_eq!(snapshot.children[0].id, "acceptance-1.1.1");
    }
    let engine = Engine::open(config.clone()).await.expect("reopens");
    let child = engine.get("acceptance-1.1.1").await.expect("the old child");
    assert_eq!(child.state, "issued");
    assert_eq!(child.number, None);
    engine
        .fire("acceptance-1.1.1", Fire::new("return", clerk()))
        .await
        .expect("returned");
    let parent = engine.get("acceptance-1").await.expect("parent");
    assert_eq!(
        parent.children[0].finished_in.as_deref(),
        Some("returned"),
        "the parent is told"
    );
    assert_eq!(parent.state, "expense");
    // New children are numbered; the old one did not use a number.
    let next = open_acceptance(&engine, &["wu"]).await;
    assert_eq!(next.id, "acceptance-2");
    assert_eq!(next.children[0].id, "pass_card-1");
    let replayed = engine.replay("acceptance-1").await.expect("replays");
    assert!(replayed.is_clean(), "{:?}", replayed.differences);
}

/// Marks an instance as changed since the last checkpoint, as a crash between its step and
/// the checkpoint leaves it: the next open replays it and re-runs its follow-ups.
fn mark_dirty(data: &Path, id: &str) {
    let db = support::raw_sled(data);
    db.open_tree("dirty")
        .expect("tree")
        .insert(id.as_bytes(), &[])
        .expect("marks");
    db.flush().expect("flushes");
}

/// Crash repair re-runs a parent's follow-ups: a child that was started is found under the id
/// the parent's step recorded and not started again; a child whose start was lost is started
/// under that id and number, and the numbers go on after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_repair_does_not_start_a_child_twice() {
    if support::sled_only("crash_repair_does_not_start_a_child_twice") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let clock = VirtualClock::new(beijing(2026, 5, 6, 10, 0));
    let config = children_config(dir.path(), &clock);
    let parent = {
        let engine = Engine::open(config.clone()).await.expect("opens");
        open_acceptance(&engine, &["li", "wu"]).await.id
    };
    let cards = |engine: &Engine| {
        let engine = engine.clone();
        async move {
            let mut ids: Vec<String> = engine
                .list(Query {
                    workflow: Some("pass_card".into()),
                    ..Query::default()
                })
                .await
                .expect("lists")
                .into_iter()
                .map(|i| i.id.to_string())
                .collect();
            ids.sort();
            ids
        }
    };
    // The parent's follow-ups run again; both children exist.
    mark_dirty(&data, &parent);
    {
        let engine = Engine::open(config.clone()).await.expect("reopens");
        assert_eq!(cards(&engine).await, vec!["pass_card-1", "pass_card-2"]);
    }
    // The second child's start was lost (its entries never reached the disk).
    {
        let db = support::raw_sled(&data);
        let log = db.open_tree("log").expect("log");
        let mut prefix = b"pass_card-2".to_vec();
        prefix.push(0);
        for key in log.scan_prefix(&prefix).keys() {
            log.remove(key.expect("key")).expect("removes");
        }
        db.open_tree("instances")
            .expect("instances")
            .remove("pass_card-2")
            .expect("removes");
        db.flush().expect("flushes");
    }
    mark_dirty(&data, &parent);
    let engine = Engine::open(config.clone()).await.expect("reopens");
    assert_eq!(cards(&engine).await, vec!["pass_card-1", "pass_card-2"]);
    let restarted = engine.get("PC-2026-002").await.expect("by its number");
    assert_eq!(restarted.id, "pass_card-2");
    assert_eq!(restarted.parent.as_deref(), Some(parent.as_str()));
    let next = open_acceptance(&engine, &["ma"]).await;
    assert_eq!(next.children[0].id, "pass_card-3");
    assert_eq!(next.children[0].number.as_deref(), Some("PC-2026-003"));
}

/// A readable number spelt like another workflow's instance id (`claim-1`, the first pass's
/// number) names its instance as long as no instance has that id; once `claim-1` exists, the
/// id wins. The engine tries a name spelt like an id as an id first, without resolving it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_spelt_like_another_workflows_id_names_its_instance_until_that_id_exists() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sources = dir.path().join("workflows");
    std::fs::create_dir_all(&sources).expect("folder");
    let workflow = |id: &str, number: &str| {
        format!(
            "id: {id}\ntitle: 通行证\nroles: {{clerk: 职员}}\n{number}initial: open\nstates:\n  \
             open:\n    title: 办理中\n    on:\n      close: {{to: closed, roles: [clerk]}}\n  \
             closed: {{title: 已办结, final: true}}\n"
        )
    };
    std::fs::write(
        sources.join("pass.yaml"),
        workflow("pass", "number: \"claim-{seq}\"\n"),
    )
    .expect("writes");
    std::fs::write(sources.join("claim.yaml"), workflow("claim", "")).expect("writes");
    let engine =
        Engine::open(support::store_config(&dir.path().join("data")).sources(vec![sources]))
            .await
            .expect("opens");
    let clerk = || Actor::new("li", ["clerk"]);
    let pass = engine
        .start("pass", StartRequest::new(clerk()))
        .await
        .expect("starts")
        .instance;
    assert_eq!(pass.number.as_deref(), Some("claim-1"));
    let fired = engine
        .fire("claim-1", Fire::new("close", clerk()))
        .await
        .expect("the number names the pass");
    assert_eq!(fired.instance.id, pass.id);
    assert_eq!(fired.instance.state, "closed");

    let claim = engine
        .start("claim", StartRequest::new(clerk()))
        .await
        .expect("starts")
        .instance;
    assert_eq!(claim.id, "claim-1");
    let fired = engine
        .fire("claim-1", Fire::new("close", clerk()))
        .await
        .expect("the id names the claim");
    assert_eq!(fired.instance.id, "claim-1");
    let unknown = engine.fire("claim-9", Fire::new("close", clerk())).await;
    assert!(
        matches!(unknown, Err(sopflow::EngineError::UnknownInstance { .. })),
        "{unknown:?}"
    );
}
