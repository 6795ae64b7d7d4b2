//! The runtime: the pure step in memory, one guard, the four-step workload, and durable steps
//! per second through the engine at 1, 8 and 64 concurrent clients, beside raw sled with and
//! without batched flushes.
//!
//! Targets: `step/in_memory` under 1.5 µs, `guard/threshold` under 1 µs, `four_step/step` at
//! most 1.3 µs per step; durable steps at 64 clients at least half the raw batched sled rate
//! (`raw_sled/flush_per_64`) and at least 10x the single-client rate.
//!
//! `outbox/commit/*`: one durable step on sled without an outbox record, with the empty record
//! most steps write, and with one rendered notice (target: the record adds under 10%);
//! `outbox_postgres/commit/*` the same on PostgreSQL when `SOPFLOW_TEST_POSTGRES` is set.
//!
//! `cargo bench --bench runtime` (a few minutes); `cargo bench --bench runtime -- --test` runs
//! each benchmark once. `benches/compare-xstate.sh` runs `four_step` beside the same machine in
//! XState (node, `benches/xstate/`).

use chrono::{DateTime, Utc};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Map, Value, json};
use sopflow::catalog::{self, Definition, Sources};
use sopflow::engine::{Config, Engine, Fire, StartRequest};
use sopflow::machine::{self, Actor, Command, Instance, Start};
use sopflow::script::{Input, Sandbox};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "workflows/four_step.rs"]
mod four_step;
use four_step::FourStep;

/// An expense claim: routed to the landlord above a threshold (an inline guard) by a step whose
/// action records the routing, a rule from the rules file guarding the landlord's approval, and
/// a `note` self-loop that can repeat without finishing the instance.
const EXPENSE_YAML: &str = r##"id: expense
title: 费用报销
roles:
  clerk: 客服
  manager: 主管
  landlord: 业主方
fields:
  amount: {type: money, optional_on: [start], fixed: true}
  reference: {type: string, required_on: [submit]}
  note: {type: text, optional_on: [note, submit]}
  landlord_needed: {type: bool}
parameters:
  landlord_threshold: {type: money, default: 15000}
initial: open
states:
  open:
    on:
      note: {to: open, roles: [clerk], requires: [note]}
      submit:
        - {to: landlord_review, roles: [clerk], guard: "data.amount >= params.landlord_threshold", action: "#{ landlord_needed: data.amount >= params.landlord_threshold }"}
        - {to: manager_review, roles: [clerk]}
      withdraw: {to: withdrawn, roles: [clerk]}
  landlord_review:
    on:
      approve: {to: paid, roles: [landlord], guard: expense::needs_landlord, guard_message: 金额未达业主方审批标准}
      reject: {to: open, roles: [landlord], requires: [comment]}
  manager_review:
    on:
      approve: {to: paid, roles: [manager]}
      reject: {to: open, roles: [manager], requires: [comment]}
  paid: {final: true}
  withdrawn: {final: true}
"##;

const EXPENSE_RULES: &str = r#"// Rules for the benchmark's expense claim.

fn needs_landlord(data, params) {
    data.amount >= params.landlord_threshold
}
"#;

/// The guard as written in the YAML, which is also its key in `Definition::scripts`.
const THRESHOLD_GUARD: &str = "data.amount >= params.landlord_threshold";

/// Steps one durable instance takes (its start, then `note`s) before its client starts
/// another: instances of real procedures are short, and a snapshot grows with its history.
const STEPS_PER_INSTANCE: u64 = 16;

fn expense() -> (Arc<Definition>, Sandbox) {
    let sandbox = Sandbox::default();
    let report = catalog::build(
        Sources::from_texts(
            vec![(PathBuf::from("expense.yaml"), EXPENSE_YAML.to_string())],
            vec![(PathBuf::from("expense.rhai"), EXPENSE_RULES.to_string())],
        ),
        &sandbox,
    );
    assert!(
        report.diagnostics.is_empty(),
        "the benchmark's workflow must be clean: {:?}",
        report.diagnostics
    );
    let def = report
        .catalog
        .get("expense")
        .expect("expense builds")
        .clone();
    (def, sandbox)
}

fn at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-02T09:30:00+08:00")
        .expect("valid time")
        .with_timezone(&Utc)
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn clerk() -> Actor {
    Actor::new("clerk-1", ["clerk"])
}

/// An expense of 18,000 yuan, just started.
fn started(def: &Definition, sandbox: &Sandbox) -> Instance {
    let start = Start {
        id: "expense-1".into(),
        actor: clerk(),
        data: object(json!({"amount": 18000})),
        business_key: Some("B2-031".into()),
        parent: None,
        idempotency_key: None,
        at: at(),
        number: None,
    };
    let entry = machine::start(def, &start, sandbox).expect("starts");
    Instance::begin(&entry).expect("a start entry begins an instance")
}

fn bench_step(c: &mut Criterion) {
    let (def, sandbox) = expense();
    let instance = started(&def, &sandbox);
    let command = Command {
        event: "submit".into(),
        actor: clerk(),
        payload: object(json!({
            "reference": "EX-2026-0042",
            "note": "发票已核对",
            "comment": "请业主方审批",
        })),
        idempotency_key: Some("submit-expense-1".into()),
        at: at(),
        expected_seq: Some(0),
    };
    // The step measured is the one meant: one guard that passes, one action, a sealed entry.
    let entry = machine::step(&def, &instance, &command, &sandbox).expect("accepted");
    assert_eq!(entry.to, "landlord_review");
    assert_eq!(entry.guards.len(), 1);
    assert!(entry.guards[0].passed);
    assert_eq!(entry.changes.get("landlord_needed"), Some(&json!(true)));
    assert!(entry.verify());

    let mut group = c.benchmark_group("step");
    group.throughput(Throughput::Elements(1));
    group.bench_function("in_memory", |b| {
        b.iter(|| {
            black_box(machine::step(
                black_box(&def),
                black_box(&instance),
                black_box(&command),
                &sandbox,
            ))
        })
    });
    // The parts of a step, to see where its time goes.
    group.bench_function("seal_only", |b| {
        let mut entry = entry.clone();
        b.iter(|| {
            entry.seal();
            black_box(&entry.hash);
        })
    });
    let self_loop = Command {
        event: "note".into(),
        payload: object(json!({"note": "已电话联系"})),
        idempotency_key: None,
        expected_seq: None,
        ..command.clone()
    };
    group.bench_function("no_script", |b| {
        b.iter(|| {
            black_box(machine::step(
                black_box(&def),
                black_box(&instance),
                black_box(&self_loop),
                &sandbox,
            ))
        })
    });
    group.finish();
}

/// The four-step workload (`benches/workflows/four_step.rs`): criterion's time is per step,
/// over 10,000 instances in flight; `step` times `machine::step` alone, `step_apply` the step
/// and the snapshot it leads to (`Instance::apply`).
fn bench_four_step(c: &mut Criterion) {
    let mut workload = FourStep::new();
    workload.check();
    let mut group = c.benchmark_group("four_step");
    group.throughput(Throughput::Elements(1));
    group.bench_function("step", |b| {
        b.iter_custom(|iters| workload.run(iters, false))
    });
    group.bench_function("step_apply", |b| {
        b.iter_custom(|iters| workload.run(iters, true))
    });
    group.finish();
}

fn bench_guard(c: &mut Criterion) {
    let (def, sandbox) = expense();
    let inline = def.scripts.get(THRESHOLD_GUARD).expect("compiled guard");
    let mut data = rhai::Map::new();
    data.insert("amount".into(), rhai::Dynamic::from_float(18_000.0));
    data.insert("reference".into(), rhai::Dynamic::from("EX-2026-0042"));
    let mut params = rhai::Map::new();
    params.insert(
        "landlord_threshold".into(),
        rhai::Dynamic::from_float(15_000.0),
    );
    let input = Input::new(
        data,
        rhai::Map::new(),
        rhai::Map::new(),
        params.into(),
        rhai::Dynamic::UNIT,
        rhai::Dynamic::UNIT,
    );
    assert_eq!(
        sandbox.evaluate(inline, &input).expect("runs").as_bool(),
        Ok(true)
    );
    let mut group = c.benchmark_group("guard");
    group.bench_function("threshold", |b| {
        b.iter(|| black_box(sandbox.evaluate(black_box(inline), black_box(&input))))
    });
    // The same comparison as a rule function (`expense::needs_landlord`).
    let rules = sopflow::script::RulesFile::compile(&sandbox, "expense", EXPENSE_RULES)
        .expect("rules compile");
    let rule = rules.script(rules.function("needs_landlord").expect("declared"));
    assert_eq!(
        sandbox.evaluate(&rule, &input).expect("runs").as_bool(),
        Ok(true)
    );
    group.bench_function("threshold_rule", |b| {
        b.iter(|| black_box(sandbox.evaluate(black_box(&rule), black_box(&input))))
    });
    group.finish();
}

/// Writes the workflow and rules to `dir` (the engine reads files) and opens an engine there.
fn open_engine(rt: &tokio::runtime::Runtime, dir: &Path) -> Engine {
    let defs = dir.join("defs");
    std::fs::create_dir_all(&defs).expect("defs folder");
    std::fs::write(defs.join("expense.yaml"), EXPENSE_YAML).expect("writes yaml");
    std::fs::write(defs.join("expense.rhai"), EXPENSE_RULES).expect("writes rules");
    rt.block_on(Engine::open(
        Config::new(dir.join("data")).sources(vec![defs]),
    ))
    .expect("engine opens")
}

/// One client: `steps` durable steps, one after another, on instances of its own (a start,
/// then `note`s, then a new instance).
async fn client(engine: Engine, who: usize, steps: u64) {
    let actor = Actor::new(format!("clerk-{who}"), ["clerk"]);
    let mut id = String::new();
    for i in 0..steps {
        if i % STEPS_PER_INSTANCE == 0 {
            id = engine
                .start(
                    "expense",
                    StartRequest::new(actor.clone())
                        .data(json!({"amount": 18000}))
                        .business_key(format!("EX-{who}-{i}")),
                )
                .await
                .expect("starts")
                .instance
                .id
                .to_string();
        } else {
            engine
                .fire(
                    &id,
                    Fire::new("note", actor.clone()).payload(json!({"note": "已电话联系业户"})),
                )
                .await
                .expect("fires");
        }
    }
}

fn bench_durable(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut group = c.benchmark_group("durable");
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(8));
    for clients in [1usize, 8, 64] {
        let dir = tempfile::tempdir().expect("temp dir");
        let engine = open_engine(&rt, dir.path());
        group.bench_function(BenchmarkId::new("clients", clients), |b| {
            b.iter_custom(|iters| {
                let share = iters / clients as u64;
                let extra = iters % clients as u64;
                rt.block_on(async {
                    let began = Instant::now();
                    let tasks: Vec<_> = (0..clients)
                        .map(|who| {
                            let steps = share + u64::from((who as u64) < extra);
                            tokio::spawn(client(engine.clone(), who, steps))
                        })
                        .collect();
                    for task in tasks {
                        task.await.expect("client finishes");
                    }
                    began.elapsed()
                })
            })
        });
        drop(engine);
        drop(dir);
    }
    group.finish();
}

/// What one durable `note` step writes to `log`: its serialised entry.
fn entry_bytes() -> Vec<u8> {
    let (def, sandbox) = expense();
    let instance = started(&def, &sandbox);
    let command = Command {
        event: "note".into(),
        actor: clerk(),
        payload: object(json!({"note": "已电话联系业户"})),
        idempotency_key: None,
        at: at(),
        expected_seq: None,
    };
    let entry = machine::step(&def, &instance, &command, &sandbox).expect("accepted");
    serde_json::to_vec(&entry).expect("serialises")
}

/// The `log` key: instance id, NUL, big-endian sequence number.
fn log_key(instance: u64, seq: u64) -> Vec<u8> {
    let mut key = format!("expense-{instance}").into_bytes();
    key.push(0);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

fn bench_raw_sled(c: &mut Criterion) {
    let value = entry_bytes();
    let mut group = c.benchmark_group("raw_sled");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));

    let dir = tempfile::tempdir().expect("temp dir");
    let db = sled::Config::new()
        .path(dir.path())
        .open()
        .expect("sled opens");
    let log = db.open_tree("log").expect("tree");
    let mut seq = 0u64;
    group.throughput(Throughput::Elements(1));
    group.bench_function(BenchmarkId::new("insert_flush_each", value.len()), |b| {
        b.iter(|| {
            seq += 1;
            log.insert(log_key(seq % 64, seq), value.as_slice())
                .expect("insert");
            db.flush().expect("flush");
        })
    });
    group.throughput(Throughput::Elements(64));
    group.bench_function(BenchmarkId::new("flush_per_64", value.len()), |b| {
        b.iter(|| {
            for instance in 0..64 {
                seq += 1;
                log.insert(log_key(instance, seq), value.as_slice())
                    .expect("insert");
            }
            db.flush().expect("flush");
        })
    });
    group.finish();
    drop(log);
    drop(db);
}

/// What writing a step's outbox record adds to its commit: one durable step (a start entry,
/// committed alone) without a record (a copied history), with the record most steps write (no
/// notices: `[]`), and with one rendered notice. On sled always; on PostgreSQL too when
/// `SOPFLOW_TEST_POSTGRES` names a server (a database of its own, dropped afterwards).
fn bench_outbox(c: &mut Criterion) {
    use sopflow::store::{Committed, Options, SledStore, Store, StoreLocation};
    let (def, sandbox) = expense();
    let notice = serde_json::to_vec(&json!([{
        "key": "expense-1.3.0",
        "id": "escalated_to_supervisor",
        "cause": {"kind": "transition", "state": "handling", "event": "escalate"},
        "recipients": [{"kind": "role", "id": "cs_supervisor", "title": "客服主管"}],
        "title": "投诉TS-2026-0001已上报主管",
        "body": "客服前台超越自身权限无法处理,已上报。\n投诉人:刘女士;投诉内容:停车收费有误\n请查看并做好客诉记录:https://flow.example.cn/instances/complaint_handling-1",
        "link": "https://flow.example.cn/instances/complaint_handling-1",
    }]))
    .expect("encodes");
    let mut n = 0u64;
    let mut step = |outbox: Option<&[u8]>| {
        n += 1;
        let start = Start {
            id: format!("expense-{n}"),
            actor: clerk(),
            data: object(json!({"amount": 18000})),
            business_key: None,
            parent: None,
            idempotency_key: None,
            at: at(),
            number: None,
        };
        let entry = machine::start(&def, &start, &sandbox).expect("starts");
        let snapshot = Instance::begin(&entry).expect("begins");
        let mut step = Committed::new(entry, snapshot).expect("encodes");
        step.outbox = outbox.map(<[u8]>::to_vec);
        step
    };
    let variants = [
        ("none", None),
        ("empty", Some(b"[]".as_slice())),
        ("notice", Some(notice.as_slice())),
    ];
    let mut group = c.benchmark_group("outbox");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(1));
    for (name, outbox) in variants {
        // A store of its own for each, so that none runs on a store the others filled.
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SledStore::open(&dir.path().join("data"), Options::default()).expect("opens");
        group.bench_function(BenchmarkId::new("commit", name), |b| {
            b.iter(|| {
                let step = step(outbox);
                store.commit(std::slice::from_ref(&step)).expect("commits");
            })
        });
    }
    group.finish();
    let Some(server) = std::env::var("SOPFLOW_TEST_POSTGRES")
        .ok()
        .filter(|url| !url.is_empty())
    else {
        return;
    };
    let database = format!("sopflow_outbox_bench_{}", std::process::id());
    let admin = |sql: String| {
        let server = server.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                let (client, connection) = tokio_postgres::connect(&server, tokio_postgres::NoTls)
                    .await
                    .expect("connects to SOPFLOW_TEST_POSTGRES");
                tokio::spawn(connection);
                client.batch_execute(&sql).await.expect("runs");
            })
        })
        .join()
        .expect("the statement ran")
    };
    admin(format!("CREATE DATABASE {database}"));
    let start = server.find("://").map_or(0, |at| at + 3);
    let end = server[start..]
        .find(['/', '?'])
        .map_or(server.len(), |at| start + at);
    let url = format!("{}/{database}", &server[..end]);
    let store = sopflow::store::open(&StoreLocation::Postgres(url), Options::default())
        .expect("the database opens");
    let mut group = c.benchmark_group("outbox_postgres");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(1));
    for (name, outbox) in variants {
        group.bench_function(BenchmarkId::new("commit", name), |b| {
            b.iter(|| {
                let step = step(outbox);
                store.commit(std::slice::from_ref(&step)).expect("commits");
            })
        });
    }
    group.finish();
    drop(store);
    admin(format!("DROP DATABASE {database}"));
}

criterion_group!(
    benches,
    bench_outbox,
    bench_step,
    bench_four_step,
    bench_guard,
    bench_raw_sled,
    bench_durable
);
criterion_main!(benches);
