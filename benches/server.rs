//! One durable step through the HTTP API beside the same step through the engine in process,
//! at one client: what HTTP, JSON, authentication and the server's accounting add to a step.
//!
//! The steps are those of a hot-work permit taken to the end, again and again (start, submit,
//! three approvals, the seal, distribution: see `benches/workflows/permit_load.rs`), so a
//! figure is the mean over the mix. The server runs in this process on a loopback port over a
//! temporary store, with the shipped workflows and the demo users; the client keeps its
//! connection alive. `examples/server_load.rs` measures the same at 1, 16 and 64 clients, with
//! percentiles.
//!
//! `cargo bench --bench server`; `cargo bench --bench server -- --test` runs each benchmark
//! once (CI does).

#[path = "workflows/permit_load.rs"]
mod permit_load;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use permit_load::{EngineDriver, HttpDriver, Running};
use sopflow::engine::{Fire, StartRequest};
use sopflow::machine::Actor;
use sopflow::store::Query;
use std::time::{Duration, Instant};

fn bench_step(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let mut group = c.benchmark_group("server_step");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));

    let server = rt.block_on(Running::start());
    let mut http = HttpDriver::new(&server.base);
    group.bench_function("http", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let began = Instant::now();
                for _ in 0..iters {
                    http.step().await;
                }
                began.elapsed()
            })
        })
    });
    rt.block_on(server.stop());

    let dir = tempfile::tempdir().expect("a temporary folder");
    let engine = rt.block_on(permit_load::engine(dir.path()));
    let mut direct = EngineDriver::new(engine.clone(), &permit_load::users());
    group.bench_function("in_process", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let began = Instant::now();
                for _ in 0..iters {
                    direct.step().await;
                }
                began.elapsed()
            })
        })
    });
    group.finish();
    drop(direct);
    drop(engine);
}

/// A person's inbox in a store of 20,000 hot-work permits: 1% submitted (waiting for
/// 秩序维护部's li), the rest drafts (waiting for the contractor wang). The inbox reads only the
/// states where the person's roles act, so li's costs follow li's 200 tasks, not the store.
fn bench_inbox(c: &mut Criterion) {
    const PERMITS: usize = 20_000;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let dir = tempfile::tempdir().expect("a temporary folder");
    let engine = rt.block_on(permit_load::engine(dir.path()));
    let wang = Actor::new("wang", ["contractor"]);
    rt.block_on(async {
        let mut workers = Vec::new();
        for worker in 0..16 {
            let engine = engine.clone();
            let wang = wang.clone();
            workers.push(tokio::spawn(async move {
                for i in 0..PERMITS / 16 {
                    let started = engine
                        .start("hot_work_permit", StartRequest::new(wang.clone()))
                        .await
                        .expect("starts");
                    if (i * 16 + worker) % 100 == 0 {
                        let payload = serde_json::json!({"notification_letter": "HW-1",
                            "applicant_seal": true, "operator_certificate": "T-1"});
                        engine
                            .fire(
                                &started.instance.id,
                                Fire::new("submit", wang.clone()).payload(payload),
                            )
                            .await
                            .expect("submits");
                    }
                }
            }));
        }
        for worker in workers {
            worker.await.expect("a worker");
        }
        engine.checkpoint().await.expect("checkpoints");
    });
    let mut group = c.benchmark_group("inbox_of_20k_permits");
    group.sample_size(10);
    for (name, actor) in [
        ("li_200_tasks", Actor::new("li", ["order_dept"])),
        ("wang_19800_tasks", wang.clone()),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(engine.tasks(&actor, Query::default(), false))
                    .expect("tasks")
                    .len()
            })
        });
    }
    group.finish();
    drop(engine);
}

criterion_group!(benches, bench_step, bench_inbox);
criterion_main!(benches);
