//! The outbox on a real store (sled in a temp dir, or PostgreSQL with
//! `SOPFLOW_TEST_STORE=postgres`): every committed step leaves a record in its own commit;
//! routing puts steps in the feed in order, with no gaps, and turns notices into deliveries
//! and inbox items; deliveries go out per (channel, instance) in order, are tried again, die
//! and are revived.

mod support;

use serde_json::json;
use sopflow::engine::{Config, Engine, Fire, Router, StartRequest};
use sopflow::machine::Actor;
use sopflow::store::{DeliveryKey, InboxItem, NewDelivery, Routed};
use std::sync::Arc;
use std::time::Duration;

const WORKFLOW: &str = r#"
id: outbox_demo
title: 投诉上报
roles:
  cs_receiver: {title: 客服前台}
  cs_supervisor: {title: 客服主管}
fields:
  content: {type: text, title: 投诉内容, required_on: [start]}
initial: handling
states:
  handling:
    title: 处理投诉
    on:
      escalate:
        to: escalated
        title: 上报主管
        roles: [cs_receiver]
        notify:
          - id: escalated_to_supervisor
            to: [{role: cs_supervisor}, {channel: cs_group}]
            title: "投诉{{ id }}已上报主管"
            message: "{{ data.content }}"
      resolve: {to: closed, title: 解决, roles: [cs_receiver]}
  escalated:
    title: 主管处理
    on:
      resolve: {to: closed, title: 解决, roles: [cs_supervisor]}
  closed: {title: 已结案, final: true}
on_finish:
  - to: [starter]
    title: "投诉{{ id }}已结案"
    message: "结果:{{ state.title }}"
"#;

fn config(dir: &std::path::Path) -> Config {
    let workflows = dir.join("workflows");
    std::fs::create_dir_all(&workflows).expect("a folder");
    std::fs::write(workflows.join("outbox_demo.yaml"), WORKFLOW).expect("writes");
    support::store_config(&dir.join("data"))
        .sources(vec![workflows])
        .link_base("https://flow.example.cn/")
}

fn actor(id: &str, role: &str) -> Actor {
    Actor::new(id, [role])
}

/// A router that sends every step to `steps` and every notice to its channels, and puts
/// notices for roles and people in their inboxes.
fn router() -> Router {
    Arc::new(|step, entry| {
        let notices: Vec<sopflow::notify::Notice> =
            serde_json::from_slice(&step.notices).expect("notices decode");
        let mut routed = Routed::default();
        routed.deliveries.push(NewDelivery {
            channel: "steps".into(),
            n: 0,
            payload: format!("{}:{}", entry.instance, entry.seq).into_bytes(),
        });
        for (i, notice) in notices.iter().enumerate() {
            for to in &notice.recipients {
                match to {
                    sopflow::notify::Addressee::Channel { name } => {
                        routed.deliveries.push(NewDelivery {
                            channel: name.clone(),
                            n: i as u32 + 1,
                            payload: notice.title.clone().into_bytes(),
                        })
                    }
                    sopflow::notify::Addressee::Role { id, .. } => routed.inbox.push(InboxItem {
                        recipient: sopflow::store::outbox::role_recipient(id),
                        key: notice.key.clone(),
                        at: entry.at,
                        notice: serde_json::to_vec(notice).expect("encodes"),
                    }),
                    sopflow::notify::Addressee::User { id } => routed.inbox.push(InboxItem {
                        recipient: sopflow::store::outbox::user_recipient(id),
                        key: notice.key.clone(),
                        at: entry.at,
                        notice: serde_json::to_vec(notice).expect("encodes"),
                    }),
                }
            }
        }
        routed
    })
}

async fn run_one(engine: &Engine, escalate: bool) -> String {
    let mut start = StartRequest::new(actor("zhou", "cs_receiver"));
    start.data = json!({"content": "空调不制冷"})
        .as_object()
        .cloned()
        .expect("an object");
    let id = engine
        .start("outbox_demo", start)
        .await
        .expect("starts")
        .instance
        .id;
    if escalate {
        engine
            .fire(&id, Fire::new("escalate", actor("zhou", "cs_receiver")))
            .await
            .expect("escalates");
        engine
            .fire(&id, Fire::new("resolve", actor("wu", "cs_supervisor")))
            .await
            .expect("resolves");
    } else {
        engine
            .fire(&id, Fire::new("resolve", actor("zhou", "cs_receiver")))
            .await
            .expect("resolves");
    }
    id.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_feeds_every_step_in_order_and_delivers_per_channel_and_instance() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let engine = Engine::open(config(dir.path())).await.expect("opens");
    let outbox = engine.outbox();
    let first = run_one(&engine, true).await;
    let second = run_one(&engine, false).await;
    assert_eq!(outbox.counts().await.expect("counts").unrouted, 5);

    // Routing in two rounds: positions run on without a gap, each instance's steps in order.
    assert_eq!(outbox.route(2, router()).await.expect("routes"), 2);
    assert_eq!(outbox.route(100, router()).await.expect("routes"), 3);
    assert_eq!(outbox.route(100, router()).await.expect("routes"), 0);
    let feed = outbox.feed(0, 100).await.expect("the feed");
    let positions: Vec<u64> = feed.iter().map(|f| f.position).collect();
    assert_eq!(positions, vec![1, 2, 3, 4, 5]);
    for id in [&first, &second] {
        let seqs: Vec<u64> = feed
            .iter()
            .filter(|f| &f.instance == id)
            .map(|f| f.seq)
            .collect();
        let mut sorted = seqs.clone();
        sorted.sort();
        assert_eq!(seqs, sorted, "{id}'s steps in order");
    }
    assert_eq!(outbox.feed(3, 100).await.expect("the feed").len(), 2);
    let counts = outbox.counts().await.expect("counts");
    assert_eq!((counts.unrouted, counts.feed_head), (0, 5));

    // Deliveries: one per step to `steps`, and the escalation to `cs_group`. Of each
    // (channel, instance), only the first is due, and none while it is claimed.
    let lease = Duration::from_secs(60);
    let due = outbox.due(100, lease).await.expect("due");
    let mut keys: Vec<String> = due.iter().map(|d| d.key.to_string()).collect();
    keys.sort();
    assert_eq!(
        keys,
        vec![
            format!("cs_group/{first}.1.1"),
            format!("steps/{first}.0.0"),
            format!("steps/{second}.0.0"),
        ]
    );
    assert!(outbox.due(100, lease).await.expect("due").is_empty());
    let head = |channel: &str, id: &str, seq: u64, n: u32| DeliveryKey {
        channel: channel.into(),
        instance: id.into(),
        seq,
        n,
    };
    outbox
        .done(head("steps", &first, 0, 0))
        .await
        .expect("done");
    let next = outbox.due(100, lease).await.expect("due");
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].key, head("steps", &first, 1, 0));
    assert_eq!(next[0].payload, format!("{first}:1").into_bytes());

    // A failure is tried again when it says; given up, it is a dead letter until revived.
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    outbox
        .failed(head("steps", &first, 1, 0), "HTTP 503".into(), Some(later))
        .await
        .expect("recorded");
    assert!(outbox.due(100, lease).await.expect("due").is_empty());
    outbox
        .failed(head("cs_group", &first, 1, 1), "HTTP 404".into(), None)
        .await
        .expect("recorded");
    let dead = outbox.dead_letters(10).await.expect("dead letters");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].attempts, 1);
    assert_eq!(dead[0].last_error.as_deref(), Some("HTTP 404"));
    assert_eq!(outbox.counts().await.expect("counts").dead, 1);
    assert_eq!(outbox.revive(None).await.expect("revived"), 1);
    assert!(
        outbox
            .dead_letters(10)
            .await
            .expect("dead letters")
            .is_empty()
    );
    let revived = outbox.due(100, lease).await.expect("due");
    assert_eq!(revived.len(), 1);
    assert_eq!(revived[0].key, head("cs_group", &first, 1, 1));
    assert_eq!(revived[0].attempts, 0);

    // Inboxes: the supervisors' role, and each starter's; newest first; read marks.
    let supervisors = outbox
        .notices(vec!["role:cs_supervisor".into()], 10)
        .await
        .expect("notices");
    assert_eq!(supervisors.len(), 1);
    assert_eq!(supervisors[0].key, format!("{first}.1.0"));
    let notice: sopflow::notify::Notice =
        serde_json::from_slice(&supervisors[0].notice).expect("a notice");
    assert_eq!(notice.body, "空调不制冷");
    assert_eq!(
        notice.link,
        format!("https://flow.example.cn/instances/{first}")
    );
    let zhou = outbox
        .notices(vec!["user:zhou".into(), "role:cs_receiver".into()], 10)
        .await
        .expect("notices");
    let zhou_keys: Vec<&str> = zhou.iter().map(|n| n.key.as_str()).collect();
    assert_eq!(zhou_keys.len(), 2, "{zhou_keys:?}");
    assert!(zhou[0].at >= zhou[1].at, "newest first");
    outbox
        .mark_read("zhou".into(), vec![zhou[0].key.clone()])
        .await
        .expect("marked");
    let read = outbox
        .read_marks("zhou".into(), zhou.iter().map(|n| n.key.clone()).collect())
        .await
        .expect("marks");
    assert_eq!(read, vec![zhou[0].key.clone()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_survives_a_reopen_and_routes_each_step_once() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let id = {
        let engine = Engine::open(config(dir.path())).await.expect("opens");
        run_one(&engine, true).await
    };
    let engine = Engine::open(config(dir.path())).await.expect("opens again");
    let outbox = engine.outbox();
    assert_eq!(outbox.route(100, router()).await.expect("routes"), 3);
    drop(outbox);
    drop(engine);
    let engine = Engine::open(config(dir.path())).await.expect("opens again");
    let outbox = engine.outbox();
    assert_eq!(outbox.route(100, router()).await.expect("routes"), 0);
    let feed = outbox.feed(0, 100).await.expect("the feed");
    assert_eq!(
        feed.iter()
            .map(|f| (f.instance.as_str(), f.seq))
            .collect::<Vec<_>>(),
        vec![(id.as_str(), 0), (id.as_str(), 1), (id.as_str(), 2)]
    );
    assert_eq!(outbox.counts().await.expect("counts").queued, 4);
}

/// Two nodes on one PostgreSQL database route and claim at the same time: every step gets
/// exactly one feed position, with no gap, each instance's in order, and a message claimed by
/// one node is not given to the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_route_and_claim_without_overlap() {
    let Some(server) = support::postgres_or_skip("two_nodes_route_and_claim_without_overlap")
    else {
        return;
    };
    let dir = tempfile::tempdir().expect("a temp dir");
    let url = support::postgres_database(&server, &dir.path().join("data"));
    let open = || {
        let workflows = dir.path().join("workflows");
        std::fs::create_dir_all(&workflows).expect("a folder");
        std::fs::write(workflows.join("outbox_demo.yaml"), WORKFLOW).expect("writes");
        Engine::open(
            Config::at(sopflow::store::StoreLocation::Postgres(url.clone()))
                .sources(vec![workflows]),
        )
    };
    let nodes = [open().await.expect("node 1"), open().await.expect("node 2")];
    let mut ids = Vec::new();
    for round in 0..20 {
        ids.push(run_one(&nodes[round % 2], round % 3 == 0).await);
    }
    let steps = nodes[0].outbox().counts().await.expect("counts").unrouted;
    let routing: Vec<_> = nodes
        .iter()
        .map(|node| {
            let outbox = node.outbox();
            tokio::spawn(async move {
                let mut routed = 0;
                loop {
                    let now = outbox.route(3, router()).await.expect("routes");
                    if now == 0 {
                        return routed;
                    }
                    routed += now;
                }
            })
        })
        .collect();
    let mut routed = 0;
    for node in routing {
        routed += node.await.expect("a node routes");
    }
    assert_eq!(routed as u64, steps, "each step routed once");
    let feed = nodes[1].outbox().feed(0, 1000).await.expect("the feed");
    let positions: Vec<u64> = feed.iter().map(|f| f.position).collect();
    assert_eq!(
        positions,
        (1..=steps).collect::<Vec<_>>(),
        "no gap, no repeat"
    );
    let mut seen = std::collections::BTreeSet::new();
    for item in &feed {
        assert!(
            seen.insert((item.instance.clone(), item.seq)),
            "{item:?} twice"
        );
        if item.seq > 0 {
            assert!(
                seen.contains(&(item.instance.clone(), item.seq - 1)),
                "{item:?} before the step it follows"
            );
        }
    }
    // Claims: both nodes at once; no message twice, one per (channel, instance).
    let lease = Duration::from_secs(60);
    let (first, second) = (nodes[0].outbox(), nodes[1].outbox());
    let (a, b) = tokio::join!(first.due(1000, lease), second.due(1000, lease));
    let claimed: Vec<_> = a.expect("due").into_iter().chain(b.expect("due")).collect();
    let keys: std::collections::BTreeSet<_> = claimed.iter().map(|d| d.key.clone()).collect();
    assert_eq!(keys.len(), claimed.len(), "a message claimed by both nodes");
    let heads: std::collections::BTreeSet<_> = claimed
        .iter()
        .map(|d| (d.key.channel.clone(), d.key.instance.clone()))
        .collect();
    assert_eq!(
        heads.len(),
        claimed.len(),
        "two messages of one instance at once"
    );
    assert_eq!(heads.len(), ids.len() + ids.len().div_ceil(3), "{heads:?}");
}

/// `sopflow deliveries dead` lists a dead letter for people and programs, and `retry` queues
/// it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_lists_dead_letters_and_sends_them_again() {
    let dir = tempfile::tempdir().expect("a temp dir");
    std::fs::create_dir_all(dir.path().join("rules")).expect("a folder");
    let id = {
        let engine = Engine::open(config(dir.path())).await.expect("opens");
        let id = run_one(&engine, true).await;
        let outbox = engine.outbox();
        outbox.route(100, router()).await.expect("routes");
        let key = DeliveryKey {
            channel: "cs_group".into(),
            instance: id.clone(),
            seq: 1,
            n: 1,
        };
        outbox.due(100, Duration::from_secs(60)).await.expect("due");
        outbox
            .failed(key, "HTTP 404 \u{1b}[31m from the robot".into(), None)
            .await
            .expect("recorded");
        id
    };
    let sopflow = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_sopflow"))
            .current_dir(dir.path())
            .args(args)
            .args(["--store", &support::store_arg(&dir.path().join("data"))])
            .env("SOPFLOW_LANG", "en")
            .output()
            .expect("runs")
    };
    let listed = sopflow(&["deliveries", "dead", "--format", "json"]);
    assert!(listed.status.success(), "{listed:?}");
    let letters: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("JSON");
    assert_eq!(letters[0]["key"], format!("cs_group/{id}.1.1"));
    assert_eq!(letters[0]["attempts"], 1);
    let human = sopflow(&["deliveries", "dead"]);
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(text.contains(&format!("cs_group/{id}.1.1")), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "a receiver's words are escaped: {text}"
    );
    let bad = sopflow(&["deliveries", "retry", "not-a-key"]);
    assert_eq!(bad.status.code(), Some(1), "{bad:?}");
    let retried = sopflow(&["deliveries", "retry", "--all", "--format", "json"]);
    assert!(retried.status.success(), "{retried:?}");
    let answer: serde_json::Value = serde_json::from_slice(&retried.stdout).expect("JSON");
    assert_eq!(answer["revived"], 1);
    let after = sopflow(&["deliveries", "dead", "--format", "json"]);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&after.stdout).expect("JSON"),
        serde_json::json!([])
    );
}

/// `Engine::subscribe`: committed steps in feed order, filtered, resumed from a position with
/// nothing missed or repeated, and woken when more are routed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_yields_steps_in_order_and_resumes_after_a_position() {
    use sopflow::engine::StepFilter;
    let dir = tempfile::tempdir().expect("a temp dir");
    let engine = Engine::open(config(dir.path())).await.expect("opens");
    let first = run_one(&engine, true).await;
    let second = run_one(&engine, false).await;
    engine.outbox().route(100, router()).await.expect("routes");
    let mut all = engine.subscribe(0, StepFilter::default());
    let mut seen = Vec::new();
    for _ in 0..5 {
        let step = all.next().await.expect("a step");
        seen.push((step.position, step.entry.instance.clone(), step.entry.seq));
    }
    assert_eq!(
        seen.iter().map(|s| s.0).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    // Resumed after the third: the fourth and fifth, no more, no fewer.
    let mut resumed = engine.subscribe(3, StepFilter::default());
    for expected in &seen[3..] {
        let step = resumed.next().await.expect("a step");
        assert_eq!(
            (step.position, step.entry.instance.clone(), step.entry.seq),
            *expected
        );
    }
    // One instance only.
    let mut only = engine.subscribe(
        0,
        StepFilter {
            instance: Some(second.clone()),
            ..StepFilter::default()
        },
    );
    for seq in 0..2 {
        let step = only.next().await.expect("a step");
        assert_eq!(
            (step.entry.instance.as_str(), step.entry.seq),
            (second.as_str(), seq)
        );
    }
    // Caught up, it waits; a new step routed wakes it.
    let waiting = tokio::spawn(async move { all.next().await.map(|s| s.entry.instance) });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!waiting.is_finished());
    let third = run_one(&engine, false).await;
    engine.outbox().route(100, router()).await.expect("routes");
    let woke = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("woken")
        .expect("joins")
        .expect("a step");
    assert_eq!(woke, third);
    assert_ne!(first, third);
}
