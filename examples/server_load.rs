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

use anyhow::{Context, bail};
use permit_load::{EngineDriver, HttpDriver, Running};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How much one level may do.
#[derive(Debug, Clone, Copy)]
struct Budget {
    steps: u64,
    time: Duration,
}

/// What one run measured.
struct Measured {
    steps: u64,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Measured {
    fn per_second(&self) -> f64 {
        self.steps as f64 / self.elapsed.as_secs_f64()
    }

    /// The nearest-rank percentile.
    fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * self.latencies.len() as f64).ceil() as usize;
        self.latencies[rank.clamp(1, self.latencies.len()) - 1]
    }
}

/// Shares the budget between clients: a step may be taken only if a ticket is left and time
/// remains.
struct Gate {
    issued: AtomicU64,
    budget: Budget,
    began: Instant,
}

impl Gate {
    fn admit(&self) -> bool {
        self.began.elapsed() < self.budget.time
            && self.issued.fetch_add(1, Ordering::Relaxed) < self.budget.steps
    }
}

/// Runs `clients` tasks, each making a driver with `make` and stepping it while the gate
/// admits; returns every step's latency.
async fn run<D: Stepper + Send + 'static>(
    clients: usize,
    budget: Budget,
    make: impl Fn() -> D,
) -> Measured {
    let gate = Arc::new(Gate {
        issued: AtomicU64::new(0),
        budget,
        began: Instant::now(),
    });
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let gate = gate.clone();
            let mut driver = make();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while gate.admit() {
                    let began = Instant::now();
                    driver.step().await;
                    latencies.push(began.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("a client finishes"));
    }
    let elapsed = gate.began.elapsed();
    latencies.sort_unstable();
    Measured {
        steps: latencies.len() as u64,
        elapsed,
        latencies,
    }
}

/// A driver of permits, over HTTP or in process.
trait Stepper {
    fn step(&mut self) -> impl std::future::Future<Output = ()> + Send;
}

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

fn micros(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us >= 10_000.0 {
        format!("{:.1} ms", us / 1000.0)
    } else if us >= 1000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{us:.0} µs")
    }
}

struct Args {
    budget: Budget,
    clients: Vec<usize>,
}

fn args() -> anyhow::Result<Args> {
    let mut parsed = Args {
        budget: Budget {
            steps: 100_000,
            time: Duration::from_secs(20),
        },
        clients: vec![1, 16, 64],
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--steps" => parsed.budget.steps = value.parse().context("--steps: a number")?,
            "--seconds" => {
                parsed.budget.time =
                    Duration::from_secs_f64(value.parse().context("--seconds: a number")?)
            }
            "--clients" => {
                parsed.clients = value
                    .split(',')
                    .map(|n| n.trim().parse::<usize>())
                    .collect::<Result<_, _>>()
                    .context("--clients: numbers separated by commas, such as 1,16,64")?;
                if parsed.clients.contains(&0) {
                    bail!("--clients: at least one client per level");
                }
            }
            other => bail!(
                "unknown flag {other}; the flags are --steps N, --seconds S, --clients 1,16,64"
            ),
        }
    }
    Ok(parsed)
}

fn main() -> anyhow::Result<()> {
    let Args { budget, clients } = args()?;
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
            let measured = run(n, budget, || HttpDriver::new(&base)).await;
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
            let measured = run(n, budget, || EngineDriver::new(engine.clone(), &users)).await;
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
