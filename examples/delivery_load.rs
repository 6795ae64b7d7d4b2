//! Notifications delivered per second to a webhook on this machine, and the delivery lag
//! (from a step's commit to its message's arrival) while clients take steps.
//!
//! ```sh
//! cargo run --release --example delivery_load                  # sled, 64 clients, 10 s
//! cargo run --release --example delivery_load -- --clients 1,64 --seconds 5
//! ```
//!
//! The engine runs the hot-work permit workload of `examples/store_load.rs` on a sled store in
//! a temp folder, with the delivery loop `sopflow serve` runs (`delivery::worker::Worker`) and
//! one channel following every workflow (`steps: ["*"]`): every step is one signed webhook
//! message to a receiver in this process, which answers 200 at once. For each level of clients
//! it prints the steps committed per second, the messages delivered per second (from the first
//! step until the last message arrived, the backlog drained), the rate at which a backlog left
//! when the clients stopped drained (when there was one: the delivery loop alone), and the
//! lag's p50 and p99.

#[path = "common/load.rs"]
mod load;
#[path = "../benches/workflows/permit_load.rs"]
mod permit_load;

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::State;
use load::{Stepper, micros, run};
use permit_load::EngineDriver;
use sopflow::delivery::Channels;
use sopflow::delivery::worker::Worker;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

impl Stepper for EngineDriver {
    fn step(&mut self) -> impl std::future::Future<Output = ()> + Send {
        EngineDriver::step(self)
    }
}

/// Arrivals: the lag of each message.
type Arrivals = Arc<Mutex<Vec<Duration>>>;

async fn receive(State(arrivals): State<Arrivals>, body: Bytes) -> &'static str {
    let now = chrono::Utc::now();
    if let Ok(message) = serde_json::from_slice::<serde_json::Value>(&body)
        && let Some(at) = message["at"]
            .as_str()
            .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
    {
        let lag = (now - at.with_timezone(&chrono::Utc))
            .to_std()
            .unwrap_or_default();
        if let Ok(mut arrivals) = arrivals.lock() {
            arrivals.push(lag);
        }
    }
    "ok"
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn main() -> anyhow::Result<()> {
    let (mut budget, mut clients) = load::parse_args(
        |_, _| Ok(false),
        "--steps N, --seconds S, --clients 1,16,64",
    )?;
    if std::env::args().all(|a| a != "--clients") {
        clients = vec![64];
    }
    if std::env::args().all(|a| a != "--seconds") {
        budget.time = Duration::from_secs(10);
    }
    if cfg!(debug_assertions) {
        eprintln!("note: a debug build; run with --release for figures worth keeping");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("a tokio runtime")?;
    let users = permit_load::users();
    println!("| clients | steps/s | delivered/s | draining/s | lag p50 | lag p99 | messages |");
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for &n in &clients {
        rt.block_on(async {
            let arrivals: Arrivals = Arc::default();
            let app = axum::Router::new()
                .route("/hook", axum::routing::post(receive))
                .with_state(arrivals.clone());
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .context("binds a port")?;
            let addr = listener.local_addr().context("an address")?;
            tokio::spawn(async move { axum::serve(listener, app).await });
            let url = format!("http://{addr}/hook");
            let channels = Channels::parse(
                "channels:\n  - {id: follower, kind: webhook, url_env: URL, secret_env: SECRET, steps: [\"*\"]}\n",
                &|name| match name {
                    "URL" => Some(url.clone()),
                    "SECRET" => Some("load-secret".into()),
                    _ => None,
                },
            )
            .map_err(anyhow::Error::msg)?;
            let dir = tempfile::tempdir().context("a temp dir")?;
            let engine = permit_load::engine(dir.path()).await;
            let worker = Worker::new(engine.outbox(), Arc::new(channels));
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let delivering = tokio::spawn(worker.run(async {
                let _ = stopped.await;
            }));
            let began = Instant::now();
            let measured = run(n, budget, |_| EngineDriver::new(engine.clone(), &users)).await;
            // The backlog drains.
            let load_ended = began.elapsed();
            let at_end = arrivals.lock().map_or(0, |a| a.len());
            let deadline = Instant::now() + Duration::from_secs(300);
            while arrivals.lock().map_or(0, |a| a.len() as u64) < measured.steps
                && Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let drained = began.elapsed();
            let drain = drained.saturating_sub(load_ended);
            let _ = stop.send(());
            let _ = delivering.await;
            let mut lags = arrivals.lock().map(|a| a.clone()).unwrap_or_default();
            lags.sort();
            let backlog = lags.len().saturating_sub(at_end);
            println!(
                "| {n} | {:.0} | {:.0} | {} | {} | {} | {} |",
                measured.per_second(),
                lags.len() as f64 / drained.as_secs_f64(),
                if backlog > 1000 {
                    format!("{:.0}", backlog as f64 / drain.as_secs_f64())
                } else {
                    "-".to_string()
                },
                micros(percentile(&lags, 50.0)),
                micros(percentile(&lags, 99.0)),
                lags.len()
            );
            anyhow::Ok(())
        })?;
    }
    Ok(())
}
