//! Scripts off the async threads, measured: `GET /api/health` while one client fires steps
//! whose guard costs about 100 ms (`benches/workflows/slow_guard/`) and four others fire cheap
//! steps, against a server in a child process.
//!
//! ```sh
//! cargo run --release --example costly_guard
//! cargo run --release --example costly_guard -- --seconds 5 --guard-ms 150
//! ```
//!
//! First the guard is calibrated: `rounds` is scaled until one `heavy` step takes about
//! `--guard-ms` (default 100). Then two phases of `--seconds` (default 10) each: the four
//! cheap clients alone, then with the heavy client beside them; in both, a poller asks for
//! `/api/health` every 10 ms. Printed: cheap steps' p50/p99 in each phase and their ratio,
//! and health p50/p99/max with the heavy client. Targets: health p99 under 20 ms, cheap steps
//! not slowed beyond 2x.

#[path = "common/child_server.rs"]
mod child_server;

use anyhow::Context;
use child_server::{ChildServer, percentile, poll_health};
use serde_json::{Value, json};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

const TOKEN: &str = "bench-clerk-token";

struct Options {
    seconds: u64,
    guard_ms: u64,
}

fn options() -> anyhow::Result<Options> {
    let mut options = Options {
        seconds: 10,
        guard_ms: 100,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => options.seconds = args.next().context("--seconds N")?.parse()?,
            "--guard-ms" => options.guard_ms = args.next().context("--guard-ms N")?.parse()?,
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    Ok(options)
}

/// A client of the server, as the bench's clerk.
struct Clerk {
    http: reqwest::Client,
    base: String,
}

impl Clerk {
    fn new(base: &str) -> anyhow::Result<Clerk> {
        Ok(Clerk {
            http: reqwest::Client::builder().build()?,
            base: base.to_string(),
        })
    }

    async fn start(&self) -> anyhow::Result<String> {
        let started: Value = self
            .http
            .post(format!("{}/api/instances", self.base))
            .bearer_auth(TOKEN)
            .json(&json!({"workflow": "slow_guard"}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(started["instance"]["id"]
            .as_str()
            .context("an id")?
            .to_string())
    }

    /// Fires `event` on `id`; how long it took.
    async fn fire(&self, id: &str, event: &str, body: Value) -> anyhow::Result<Duration> {
        let began = Instant::now();
        self.http
            .post(format!("{}/api/instances/{id}/events/{event}", self.base))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await?
            .error_for_status()?;
        Ok(began.elapsed())
    }
}

/// Fires `cheap` on an instance of its own until `until`; every step's latency.
async fn cheap(base: String, until: Instant) -> anyhow::Result<Vec<Duration>> {
    let clerk = Clerk::new(&base)?;
    let id = clerk.start().await?;
    let mut latencies = Vec::new();
    while Instant::now() < until {
        latencies.push(clerk.fire(&id, "cheap", json!({})).await?);
    }
    Ok(latencies)
}

/// Fires `heavy` (with `rounds`) on an instance of its own until `until`; how many.
async fn heavy(base: String, rounds: u64, until: Instant) -> anyhow::Result<usize> {
    let clerk = Clerk::new(&base)?;
    let id = clerk.start().await?;
    let mut steps = 0;
    while Instant::now() < until {
        clerk
            .fire(&id, "heavy", json!({"payload": {"rounds": rounds}}))
            .await?;
        steps += 1;
    }
    Ok(steps)
}

/// Four cheap clients (and, if `rounds`, a heavy one) for `seconds`, with health polled.
async fn phase(
    base: &str,
    seconds: u64,
    rounds: Option<u64>,
) -> anyhow::Result<(Vec<Duration>, Vec<Duration>, usize)> {
    let until = Instant::now() + Duration::from_secs(seconds);
    let mut cheap_clients = tokio::task::JoinSet::new();
    for _ in 0..4 {
        cheap_clients.spawn(cheap(base.to_string(), until));
    }
    let heavy_client = rounds.map(|rounds| tokio::spawn(heavy(base.to_string(), rounds, until)));
    let health = poll_health(
        base.to_string(),
        IpAddr::V4(Ipv4Addr::new(127, 0, 3, 1)),
        until,
    );
    let mut latencies = Vec::new();
    while let Some(done) = cheap_clients.join_next().await {
        latencies.extend(done.context("a cheap client")??);
    }
    latencies.sort_unstable();
    let health = health
        .join()
        .map_err(|_| anyhow::anyhow!("the health poller failed"))?;
    let heavy_steps = match heavy_client {
        Some(client) => client.await.context("the heavy client")??,
        None => 0,
    };
    Ok((latencies, health, heavy_steps))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() -> anyhow::Result<()> {
    child_server::serve_if_child();
    let options = options()?;
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir()?;
    let users = dir.path().join("users.yaml");
    std::fs::write(
        &users,
        format!(
            "users:\n  - id: clerk\n    roles: [clerk]\n    tokens: [\"{}\"]\n",
            sopflow::server::auth::token_hash(TOKEN)
        ),
    )?;
    let server = ChildServer::start(
        &dir.path().join("data"),
        &users,
        &[root.join("benches/workflows/slow_guard")],
    )?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        // Calibrate the guard to about `--guard-ms`.
        let clerk = Clerk::new(&server.base)?;
        let id = clerk.start().await?;
        let mut rounds = 50u64;
        let mut took = Duration::ZERO;
        for _ in 0..6 {
            took = clerk
                .fire(&id, "heavy", json!({"payload": {"rounds": rounds}}))
                .await?;
            let scale = options.guard_ms as f64 / ms(took).max(0.1);
            if (0.9..1.1).contains(&scale) {
                break;
            }
            rounds = ((rounds as f64 * scale) as u64).clamp(1, 1_000_000);
        }
        println!(
            "guard: {rounds} rounds, one heavy step {:.0} ms",
            ms(took)
        );
        let (alone, _, _) = phase(&server.base, options.seconds, None).await?;
        let (beside, health, heavy_steps) =
            phase(&server.base, options.seconds, Some(rounds)).await?;
        println!(
            "cheap steps alone: {} steps, p50 {:.2} ms, p99 {:.2} ms",
            alone.len(),
            ms(percentile(&alone, 50.0)),
            ms(percentile(&alone, 99.0))
        );
        println!(
            "cheap steps beside {heavy_steps} heavy steps: {} steps, p50 {:.2} ms, p99 {:.2} ms (p50 {:.2}x, p99 {:.2}x)",
            beside.len(),
            ms(percentile(&beside, 50.0)),
            ms(percentile(&beside, 99.0)),
            ms(percentile(&beside, 50.0)) / ms(percentile(&alone, 50.0)).max(0.001),
            ms(percentile(&beside, 99.0)) / ms(percentile(&alone, 99.0)).max(0.001)
        );
        println!(
            "/api/health beside them: {} answers, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            health.len(),
            ms(percentile(&health, 50.0)),
            ms(percentile(&health, 99.0)),
            ms(health.last().copied().unwrap_or_default())
        );
        anyhow::Ok(())
    })?;
    server.stop()?;
    Ok(())
}
