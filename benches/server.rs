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

criterion_group!(benches, bench_step);
criterion_main!(benches);
