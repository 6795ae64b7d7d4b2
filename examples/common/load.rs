#![allow(dead_code)]
//! Closed-loop load for the load examples: N clients each take one step at a time, as fast as
//! their answers come back, until a shared budget of steps or time is spent; every step is
//! timed from the call to its answer. `server_load` and `store_load` include this file with
//! `#[path]`, so that both count and report alike.

use anyhow::{Context, bail};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How much one level may do.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub steps: u64,
    pub time: Duration,
}

/// What one run measured.
pub struct Measured {
    pub steps: u64,
    pub elapsed: Duration,
    /// Every step's latency, sorted.
    pub latencies: Vec<Duration>,
}

impl Measured {
    pub fn per_second(&self) -> f64 {
        self.steps as f64 / self.elapsed.as_secs_f64()
    }

    /// The nearest-rank percentile.
    pub fn percentile(&self, p: f64) -> Duration {
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

/// Something that takes one step per call.
pub trait Stepper {
    fn step(&mut self) -> impl std::future::Future<Output = ()> + Send;
}

/// Runs `clients` tasks, the i-th stepping the driver `make(i)` while the gate admits; returns
/// every step's latency.
pub async fn run<D: Stepper + Send + 'static>(
    clients: usize,
    budget: Budget,
    make: impl Fn(usize) -> D,
) -> Measured {
    let gate = Arc::new(Gate {
        issued: AtomicU64::new(0),
        budget,
        began: Instant::now(),
    });
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let gate = gate.clone();
            let mut driver = make(client);
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

/// A duration as people read it: µs below a millisecond, ms above.
pub fn micros(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us >= 10_000.0 {
        format!("{:.1} ms", us / 1000.0)
    } else if us >= 1000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{us:.0} µs")
    }
}

/// The flags every load example takes: `--steps N`, `--seconds S`, `--clients 1,16,64`; any
/// other flag (with its value) goes to `other`, which says whether it knew it.
pub fn parse_args(
    mut other: impl FnMut(&str, String) -> anyhow::Result<bool>,
    usage: &str,
) -> anyhow::Result<(Budget, Vec<usize>)> {
    let mut budget = Budget {
        steps: 100_000,
        time: Duration::from_secs(20),
    };
    let mut clients = vec![1, 16, 64];
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--steps" => budget.steps = value.parse().context("--steps: a number")?,
            "--seconds" => {
                budget.time = Duration::from_secs_f64(value.parse().context("--seconds: a number")?)
            }
            "--clients" => {
                clients = value
                    .split(',')
                    .map(|n| n.trim().parse::<usize>())
                    .collect::<Result<_, _>>()
                    .context("--clients: numbers separated by commas, such as 1,16,64")?;
                if clients.contains(&0) {
                    bail!("--clients: at least one client per level");
                }
            }
            _ => {
                if !other(&flag, value)? {
                    bail!("unknown flag {flag}; the flags are {usage}");
                }
            }
        }
    }
    Ok((budget, clients))
}
