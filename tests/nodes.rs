//! Several nodes on one PostgreSQL database: two engines, each with its own store, locks and
//! clock, sharing one database as two `serve` nodes do. The same approval fired on both at
//! once has one winner; starts on both take distinct numbers with no gaps, also when each node
//! has many starts of one workflow under way at once, and none loses a race for its number
//! (none is computed twice); a due timer fires
//! once; a schedule starts one instance per occurrence; an idempotency key used on both at
//! once makes one instance. Only on PostgreSQL (`SOPFLOW_TEST_POSTGRES`): without it each
//! test prints a SKIPPED line, and fails under `SOPFLOW_REQUIRE_POSTGRES`.

mod support;

use chrono::{DateTime, Utc};
use sopflow::EngineError;
use sopflow::clock::Clock;
use sopflow::engine::{Engine, Fire, Fired, StartRequest};
use sopflow::machine::{Actor, Refusal};
use sopflow::store::Query;
use std::collections::BTreeSet;
use std::path::PathBuf;
use support::Node;

/// A claim with a readable number, a manager's approval, a timer and a payment; and a daily
/// rota.
const CLAIM: &str = "id: claim
title: 报销
roles: {clerk: 职员, manager: 经理}
number: \"BX-{year}-{seq:04}\"
initial: submitted
states:
  submitted:
    title: 已提交
    timers:
      - {after: 2 days, fire: lapse}
    on:
      approve: {to: approved, roles: [manager]}
      lapse: {to: lapsed, roles: [clerk]}
  approved:
    title: 已批准
    on:
      pay: {to: paid, roles: [clerk]}
  paid: {title: 已付款, final: true}
  lapsed: {title: 已过期, final: true}
";

const ROTA: &str = "id: rota
title: 值班
roles: {guard: 保安}
initial: on_duty
schedules:
  daily:
    title: 每天九点
    every: day
    at: \"09:00\"
states:
  on_duty:
    title: 值班中
    on:
      hand_over: {to: done, roles: [guard]}
  done: {title: 已交班, final: true}
";

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("a time")
        .with_timezone(&Utc)
}

/// The workflows in a folder of their own (kept by the caller).
fn sources() -> (tempfile::TempDir, Vec<PathBuf>) {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("claim.yaml"), CLAIM).expect("writes");
    std::fs::write(dir.path().join("rota.yaml"), ROTA).expect("writes");
    let sources = vec![dir.path().to_path_buf()];
    (dir, sources)
}

async fn nodes(test: &str) -> Option<(Node, Node, tempfile::TempDir, tempfile::TempDir)> {
    let (definitions, sources) = sources();
    let (one, two, data) =
        support::two_nodes(test, sources, at("2026-03-02T10:00:00+08:00")).await?;
    Some((one, two, data, definitions))
}

fn clerk() -> Actor {
    Actor::new("li", ["clerk"])
}

fn manager() -> Actor {
    Actor::new("zhao", ["manager"])
}

async fn claim(engine: &Engine) -> String {
    engine
        .start("claim", StartRequest::new(clerk()))
        .await
        .expect("starts")
        .instance
        .id
        .to_string()
}

/// The same approval fired on both nodes at once, for 1,000 claims (ten at a time): exactly
/// one fire wins each time; the other is refused, as stale when it named the step it expected,
/// or because the claim is approved already. Every chain verifies afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_approval_fired_on_two_nodes_at_once_has_one_winner() {
    const CLAIMS: usize = 1000;
    let Some((one, two, _data, _defs)) =
        nodes("the_same_approval_fired_on_two_nodes_at_once_has_one_winner").await
    else {
        return;
    };
    let started = std::time::Instant::now();
    let mut stale = 0;
    for round in 0..CLAIMS / 10 {
        let mut tasks = tokio::task::JoinSet::new();
        for k in 0..10 {
            let (one, two) = (one.engine.clone(), two.engine.clone());
            // Half of the fires name the step they expect; half are not tied to one.
            let tied = (round + k) % 2 == 0;
            tasks.spawn(async move {
                let id = claim(&one).await;
                let fire = || {
                    let fire = Fire::new("approve", manager());
                    if tied { fire.expected_seq(0) } else { fire }
                };
                let (a, b) = tokio::join!(one.fire(&id, fire()), two.fire(&id, fire()));
                (id, tied, a, b)
            });
        }
        while let Some(done) = tasks.join_next().await {
            let (id, tied, a, b) = done.expect("joins");
            let (won, lost) = match (a, b) {
                (Ok(won), Err(lost)) | (Err(lost), Ok(won)) => (won, lost),
                (a, b) => panic!("{id}: one winner expected, got {a:?} and {b:?}"),
            };
            assert_eq!(won.entry.seq, 1, "{id}");
            assert_eq!(won.instance.state, "approved", "{id}");
            match lost {
                EngineError::Refused(Refusal::Stale { .. }) => stale += 1,
                EngineError::Refused(_) if !tied => {}
                other => panic!("{id}: the loser should be refused, got {other:?}"),
            }
        }
    }
    let took = started.elapsed();
    eprintln!(
        "{CLAIMS} contested approvals on two nodes in {took:?} ({stale} losers refused as stale)"
    );
    assert!(stale > 0, "the tied fires lose as stale");
    assert!(
        one.engine.lost_races() + two.engine.lost_races() > 0,
        "fires that met each other in the database are counted as lost races"
    );
    let approved = one
        .engine
        .list(Query {
            workflow: Some("claim".into()),
            state: Some("approved".into()),
            ..Query::default()
        })
        .await
        .expect("lists");
    assert_eq!(approved.len(), CLAIMS);
    for instance in &approved {
        assert_eq!(
            instance.seq, 1,
            "{}: one approval, no second step",
            instance.id
        );
    }
    support::assert_verifies(&two.engine).await;
}

/// Both nodes start claims at once, twenty at a time each: the ids are claim-1 to claim-200
/// and the readable numbers BX-2026-0001 to -0200, each once, with no gaps, whoever started
/// them; a refused start on either node takes no number.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn starts_on_two_nodes_take_distinct_numbers_with_no_gaps() {
    let Some((one, two, _data, _defs)) =
        nodes("starts_on_two_nodes_take_distinct_numbers_with_no_gaps").await
    else {
        return;
    };
    let mut tasks = tokio::task::JoinSet::new();
    for k in 0..200 {
        let engine = if k % 2 == 0 {
            one.engine.clone()
        } else {
            two.engine.clone()
        };
        tasks.spawn(async move {
            // A start the workflow refuses (a guard has no role to start it) takes nothing.
            if k % 10 == 0 {
                let refused = engine
                    .start("claim", StartRequest::new(Actor::new("x", ["guard"])))
                    .await;
                assert!(
                    matches!(refused, Err(EngineError::Refused(_))),
                    "{refused:?}"
                );
            }
            let outcome = engine
                .start("claim", StartRequest::new(clerk()))
                .await
                .expect("starts");
            (outcome.instance.id.to_string(), outcome.instance.number)
        });
    }
    let mut ids = BTreeSet::new();
    let mut numbers = BTreeSet::new();
    while let Some(done) = tasks.join_next().await {
        let (id, number) = done.expect("joins");
        assert!(ids.insert(id.clone()), "{id} given twice");
        let number = number.expect("a readable number");
        assert!(numbers.insert(number.clone()), "{number} given twice");
    }
    let expected_ids: BTreeSet<String> = (1..=200).map(|n| format!("claim-{n}")).collect();
    let expected_numbers: BTreeSet<String> = (1..=200).map(|n| format!("BX-2026-{n:04}")).collect();
    assert_eq!(ids, expected_ids);
    assert_eq!(numbers, expected_numbers);
    let next = claim(&two.engine).await;
    assert_eq!(next, "claim-201");
    support::assert_verifies(&one.engine).await;
}

/// Many starts of one workflow at once on both nodes, 32 tasks each starting 20 claims one
/// after another (with a refused start and an approval now and then): one node's starts do
/// not wait for each other's commits, and still the ids are claim-1 to claim-1280 and the
/// readable numbers BX-2026-0001 to -1280, each once, with no gaps, and every chain verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_concurrent_starts_of_one_workflow_on_two_nodes_take_every_number_once() {
    const TASKS: usize = 32;
    const STARTS: usize = 20;
    let Some((one, two, _data, _defs)) =
        nodes("many_concurrent_starts_of_one_workflow_on_two_nodes_take_every_number_once").await
    else {
        return;
    };
    let started = std::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for k in 0..2 * TASKS {
        let engine = if k % 2 == 0 {
            one.engine.clone()
        } else {
            two.engine.clone()
        };
        tasks.spawn(async move {
            let mut taken = Vec::new();
            for i in 0..STARTS {
                if (k + i) % 9 == 0 {
                    let refused = engine
                        .start("claim", StartRequest::new(Actor::new("x", ["guard"])))
                        .await;
                    assert!(
                        matches!(refused, Err(EngineError::Refused(_))),
                        "{refused:?}"
                    );
                }
                let outcome = engine
                    .start("claim", StartRequest::new(clerk()))
                    .await
                    .expect("starts");
                let id = outcome.instance.id.to_string();
                if (k + i) % 4 == 0 {
                    engine
                        .fire(&id, Fire::new("approve", manager()))
                        .await
                        .expect("approves");
                }
                taken.push((id, outcome.instance.number.expect("a readable number")));
            }
            taken
        });
    }
    let mut ids = BTreeSet::new();
    let mut numbers = BTreeSet::new();
    let mut by_id = std::collections::BTreeMap::new();
    while let Some(done) = tasks.join_next().await {
        for (id, number) in done.expect("joins") {
            assert!(ids.insert(id.clone()), "{id} given twice");
            assert!(numbers.insert(number.clone()), "{number} given twice");
            by_id.insert(id, number);
        }
    }
    let total = 2 * TASKS * STARTS;
    // Numbered under the database's lock of the counts, no start lost its number to the
    // other node and was computed again.
    assert_eq!(
        (one.engine.lost_races(), two.engine.lost_races()),
        (0, 0),
        "starts computed again after losing a race"
    );
    eprintln!(
        "{total} starts of one workflow, {TASKS} at a time on each of two nodes, in {:?}",
        started.elapsed()
    );
    let expected_ids: BTreeSet<String> = (1..=total).map(|n| format!("claim-{n}")).collect();
    let expected_numbers: BTreeSet<String> =
        (1..=total).map(|n| format!("BX-2026-{n:04}")).collect();
    assert_eq!(ids, expected_ids);
    assert_eq!(numbers, expected_numbers);
    // As stored: one instance per id, with the number its start answered with.
    let stored = one
        .engine
        .list(Query {
            workflow: Some("claim".into()),
            ..Query::default()
        })
        .await
        .expect("lists");
    assert_eq!(stored.len(), total);
    for instance in &stored {
        assert_eq!(
            by_id.get(instance.id.as_str()),
            instance.number.as_ref(),
            "{}",
            instance.id
        );
    }
    assert_eq!(claim(&one.engine).await, format!("claim-{}", total + 1));
    assert_eq!(claim(&two.engine).await, format!("claim-{}", total + 2));
    support::assert_verifies(&two.engine).await;
}

/// Twenty claims whose expiry timers fall due while both nodes look at the queue at once: each
/// timer fires once, on one node or the other, and never before it is due.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_due_timer_fires_once_whichever_node_takes_it() {
    let Some((one, two, _data, _defs)) =
        nodes("a_due_timer_fires_once_whichever_node_takes_it").await
    else {
        return;
    };
    let mut ids = Vec::new();
    for _ in 0..20 {
        ids.push(claim(&one.engine).await);
    }
    // A day later nothing is due on either node.
    for node in [&one, &two] {
        node.clock.set(at("2026-03-03T10:00:00+08:00"));
    }
    let (a, b) = tokio::join!(one.engine.run_due(), two.engine.run_due());
    let timers = |fired: &[Fired]| {
        fired
            .iter()
            .filter_map(|f| match f {
                Fired::Timer { instance, .. } => Some(instance.clone()),
                Fired::Schedule { .. } => None,
            })
            .collect::<Vec<_>>()
    };
    assert!(timers(&a.expect("runs")).is_empty(), "not due yet");
    assert!(timers(&b.expect("runs")).is_empty(), "not due yet");
    for node in [&one, &two] {
        node.clock.set(at("2026-03-04T10:00:01+08:00"));
    }
    let (a, b) = tokio::join!(one.engine.run_due(), two.engine.run_due());
    let mut fired = timers(&a.expect("runs"));
    fired.extend(timers(&b.expect("runs")));
    fired.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(fired, expected, "each timer once, on one node");
    for id in &ids {
        let history = two.engine.history(id).await.expect("reads");
        let lapses = history.iter().filter(|e| e.event == "lapse").count();
        assert_eq!(lapses, 1, "{id}");
        assert_eq!(history.len(), 2, "{id}");
    }
    // Nothing is left to fire on either node.
    let (a, b) = tokio::join!(one.engine.run_due(), two.engine.run_due());
    assert!(timers(&a.expect("runs")).is_empty());
    assert!(timers(&b.expect("runs")).is_empty());
    support::assert_verifies(&one.engine).await;
}

/// The daily rota's 09:00 occurrence, seen by both nodes at once, three days running: one
/// instance per occurrence, reported by one node.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_schedule_starts_one_instance_per_occurrence_on_two_nodes() {
    let Some((one, two, _data, _defs)) =
        nodes("a_schedule_starts_one_instance_per_occurrence_on_two_nodes").await
    else {
        return;
    };
    let schedules = |fired: &[Fired]| {
        fired
            .iter()
            .filter(|f| matches!(f, Fired::Schedule { .. }))
            .count()
    };
    for day in ["2026-03-03", "2026-03-04", "2026-03-05"] {
        for node in [&one, &two] {
            node.clock.set(at(&format!("{day}T09:00:30+08:00")));
        }
        let (a, b) = tokio::join!(one.engine.run_due(), two.engine.run_due());
        let reported = schedules(&a.expect("runs")) + schedules(&b.expect("runs"));
        assert_eq!(reported, 1, "{day}: one start reported");
    }
    let rotas = one
        .engine
        .list(Query {
            workflow: Some("rota".into()),
            ..Query::default()
        })
        .await
        .expect("lists");
    assert_eq!(
        rotas.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["rota-1", "rota-2", "rota-3"],
        "one instance per occurrence"
    );
    support::assert_verifies(&one.engine).await;
}

/// One idempotency key on both nodes at once, fifty times for a start and fifty for a fire:
/// one instance (one step), and both callers get its answer, the second as a replay.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_idempotency_key_used_on_two_nodes_at_once_makes_one_instance() {
    let Some((one, two, _data, _defs)) =
        nodes("an_idempotency_key_used_on_two_nodes_at_once_makes_one_instance").await
    else {
        return;
    };
    for n in 0..50 {
        let key = format!("form-{n}");
        let start = || StartRequest::new(clerk()).idempotency_key(key.clone());
        let (a, b) = tokio::join!(
            one.engine.start("claim", start()),
            two.engine.start("claim", start())
        );
        let (a, b) = (a.expect("starts"), b.expect("starts"));
        assert_eq!(a.instance.id, b.instance.id, "{key}: one instance");
        assert_eq!(
            [a.replayed, b.replayed].iter().filter(|r| **r).count(),
            1,
            "{key}: the second is a replay"
        );
        let id = a.instance.id;
        let key = format!("approval-{n}");
        let fire = || Fire::new("approve", manager()).idempotency_key(key.clone());
        let (a, b) = tokio::join!(one.engine.fire(&id, fire()), two.engine.fire(&id, fire()));
        let (a, b) = (a.expect("fires"), b.expect("fires"));
        assert_eq!((a.entry.seq, b.entry.seq), (1, 1), "{key}: one step");
        assert_eq!(
            [a.replayed, b.replayed].iter().filter(|r| **r).count(),
            1,
            "{key}: the second is a replay"
        );
    }
    let claims = two
        .engine
        .list(Query {
            workflow: Some("claim".into()),
            ..Query::default()
        })
        .await
        .expect("lists");
    assert_eq!(claims.len(), 50, "one instance per key");
    assert!(claims.iter().all(|c| c.seq == 1 && c.state == "approved"));
    support::assert_verifies(&one.engine).await;
}
