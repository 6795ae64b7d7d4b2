//! Load on the server: hot-work permits driven to the end over HTTP by 1, 16 and 64
//! concurrent clients, beside the same permits through the engine in the same process.
//!
//! ```sh
//! cargo run --release --example server_load
//! cargo run --release --example server_load -- --seconds 5 --steps 10000 --clients 1,8
//! ```
//!
//! For each number of clients, a server is started in this process on `127.0.0.1:0` over a
//! new temporary store, with the shipped workflows and the demo users (`config/users.yaml`).
//! Each client (its own `reqwest` client, one kept-alive connection) starts a permit and takes
//! it through its 7 steps (see `benches/workflows/permit_load.rs`), then starts the next, until
//! the level's step budget (`--steps`, default 100,000) or its time (`--seconds`, default 20) is
//! spent, whichever comes first. Every step is timed from the request to its parsed answer.
//! Then the same permits go through `Engine::start` / `Engine::fire` directly, with the same
//! number of concurrent tasks, the same budget, on a store of their own: the difference is
//! what HTTP, JSON, authentication and the server's accounting add to a step.
//!
//! Both ends share the machine (loopback only), so on few cores the clients take CPU from the
//! server; every step is durable (flushed) before it is answered, on both sides. The server
//! logs nothing here (no tracing subscriber is installed), as `sopflow serve` would at
//! `RUST_LOG=warn`.

#[path = "../benches/workflows/permit_load.rs"]
mod permit_load;

#[path = "common/load.rs"]
mod load;

use anyhow::Context;
use load::{Stepper, micros, run};
use permit_load::{EngineDriver, HttpDriver, Running};

impl Stepper for HttpDriver {
    fn step(&mut self) -> impl std::future::Future<Output = ()> + Send {
        HttpDriver::step(self)
    }
}

impl Stepper for EngineDriver {
    fn step(&mut self) -> impl std::future::Future<Output = ()> + Send {
        EngineDriver::step(self)
    }
}

fn main() -> anyhow::Result<()> {
    let (budget, clients) = load::parse_args(
        |_, _| Ok(false),
        "--steps N, --seconds S, --clients 1,16,64",
    )?;
    if cfg!(debug_assertions) {
        eprintln!("note: a debug build; run with --release for figures worth keeping");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("a tokio runtime")?;
    let users = permit_load::users();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    eprintln!(
        "{cores} core(s); per level at most {} steps or {:?}, whichever first",
        budget.steps, budget.time
    );
    let mut rows = Vec::new();
    for &n in &clients {
        let http = rt.block_on(async {
            let server = Running::start().await;
            let base = server.base.clone();
            let measured = run(n, budget, |_| HttpDriver::new(&base)).await;
            server.stop().await;
            measured
        });
        eprintln!(
            "{n:>3} client(s), HTTP:       {} steps in {:.1} s",
            http.steps,
            http.elapsed.as_secs_f64()
        );
        let direct = rt.block_on(async {
            let dir = tempfile::tempdir().expect("a temporary folder");
            let engine = permit_load::engine(dir.path()).await;
            let measured = run(n, budget, |_| EngineDriver::new(engine.clone(), &users)).await;
            drop(engine);
            measured
        });
        eprintln!(
            "{n:>3} client(s), in-process: {} steps in {:.1} s",
            direct.steps,
            direct.elapsed.as_secs_f64()
        );
        rows.push((n, http, direct));
    }
    println!(
        "| clients | HTTP steps/s | HTTP p50 | HTTP p99 | in-process steps/s | in-process p50 | in-process p99 | HTTP / in-process |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (n, http, direct) in &rows {
        println!(
            "| {n} | {:.0} | {} | {} | {:.0} | {} | {} | {:.0}% |",
            http.per_second(),
            micros(http.percentile(50.0)),
            micros(http.percentile(99.0)),
            direct.per_second(),
            micros(direct.percentile(50.0)),
            micros(direct.percentile(99.0)),
            100.0 * http.per_second() / direct.per_second()
        );
    }
    Ok(())
}
