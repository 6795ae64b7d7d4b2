//! Load on the durable timers: build a store holding N pending timers, then open it in a fresh
//! process and see what they cost at start-up and in memory.
//!
//! ```sh
//! cargo run --release --example timer_load -- build 1000000 /tmp/timers-1m
//! cargo run --release --example timer_load -- open /tmp/timers-1m
//! ```
//!
//! `build N DIR` writes the workflow to `DIR/defs/` and a store to `DIR/data/`: N instances of
//! `bench_timer`, each waiting in `waiting` with one 15-minute timer armed, all started at
//! the same virtual instant (so every timer is due at once, 15 minutes later). DIR must not
//! exist or be empty.
//!
//! `open DIR` opens that store on a virtual clock standing at the start instant (nothing is
//! due), runs the timer machinery once (`run_due`, which checks the queue and finds nothing
//! due, and `pending_timers(100)`), and prints how long each took and the process's resident
//! memory (VmRSS, and its peak VmHWM, from `/proc/self/status`) before and after.

#[path = "common/memory.rs"]
mod memory;
use anyhow::{Context, bail, ensure};
use chrono::{DateTime, Utc};
use memory::memory;
use sopflow::clock::VirtualClock;
use sopflow::engine::{Config, Engine, StartRequest};
use sopflow::machine::Actor;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// One state with a timer; `close` is the ordinary step the bench compares a timer's with.
const WORKFLOW: &str = include_str!("../benches/workflows/bench_timer.yaml");

/// Instances started at once while building.
const CLIENTS: usize = 64;

/// When every instance starts (its timer falls due 15 minutes later).
fn start_instant() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-02T09:00:00+08:00")
        .expect("a valid time")
        .with_timezone(&Utc)
}

fn config(dir: &Path, clock: &VirtualClock) -> Config {
    Config::new(dir.join("data"))
        .sources(vec![dir.join("defs").join("bench_timer.yaml")])
        .clock(Arc::new(clock.clone()))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn build(count: usize, dir: &Path) -> anyhow::Result<()> {
    let empty = !dir.exists()
        || std::fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .next()
            .is_none();
    ensure!(empty, "{} exists and is not empty", dir.display());
    let defs = dir.join("defs");
    std::fs::create_dir_all(&defs)?;
    std::fs::write(defs.join("bench_timer.yaml"), WORKFLOW)?;
    let clock = VirtualClock::new(start_instant());
    let engine = Engine::open(config(dir, &clock)).await?;
    ensure!(
        !engine.load_report().has_errors(),
        "the workflow does not load: {:?}",
        engine.load_report().diagnostics
    );
    for diagnostic in &engine.load_report().diagnostics {
        eprintln!("note: loading the workflow: {diagnostic:?}");
    }

    let began = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for who in 0..CLIENTS {
        let engine = engine.clone();
        let next = next.clone();
        tasks.spawn(async move {
            let actor = Actor::new(format!("clerk-{who}"), ["clerk"]);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return Ok::<_, anyhow::Error>(());
                }
                engine
                    .start("bench_timer", StartRequest::new(actor.clone()))
                    .await?;
                if (i + 1).is_multiple_of(100_000) {
                    let secs = began.elapsed().as_secs_f64();
                    eprintln!(
                        "  {:>9} started in {secs:6.1} s ({:.0}/s)",
                        i + 1,
                        (i + 1) as f64 / secs
                    );
                }
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let started = began.elapsed();
    let checkpointed = Instant::now();
    engine.checkpoint().await?;
    let checkpoint = checkpointed.elapsed();
    let first = engine.pending_timers(1).await?;
    ensure!(first.len() == 1, "no timer is pending after the build");
    drop(engine);
    println!(
        "built {count} pending timers in {}: starts {:.1} s ({:.0}/s), final checkpoint {:.0} ms; first due {}",
        dir.display(),
        started.as_secs_f64(),
        count as f64 / started.as_secs_f64(),
        ms(checkpoint),
        first[0].due
    );
    Ok(())
}

async fn open(dir: &Path) -> anyhow::Result<()> {
    ensure!(
        dir.join("data").is_dir(),
        "{} holds no store; run `build N {}` first",
        dir.display(),
        dir.display()
    );
    let (rss_before, _) = memory();
    let clock = VirtualClock::new(start_instant());
    let began = Instant::now();
    let engine = Engine::open(config(dir, &clock)).await?;
    let opened = began.elapsed();
    let (rss_open, hwm_open) = memory();

    let began = Instant::now();
    let fired = engine.run_due().await?;
    let run_due = began.elapsed();
    ensure!(
        fired.is_empty(),
        "nothing should be due, {} fired",
        fired.len()
    );

    let began = Instant::now();
    let pending = engine.pending_timers(100).await?;
    let listed = began.elapsed();
    let (rss, hwm) = memory();

    let began = Instant::now();
    drop(engine);
    let closed = began.elapsed();

    println!("store            {}", dir.join("data").display());
    println!(
        "pending_timers   {} listed (limit 100), first due {}",
        pending.len(),
        pending.first().map_or("-".into(), |t| t.due.to_string())
    );
    println!("Engine::open     {:9.1} ms", ms(opened));
    println!("run_due (none)   {:9.1} ms", ms(run_due));
    println!("pending_timers   {:9.1} ms", ms(listed));
    println!("drop (close)     {:9.1} ms", ms(closed));
    println!("VmRSS before     {rss_before:9.1} MiB");
    println!("VmRSS after open {rss_open:9.1} MiB (VmHWM {hwm_open:.1} MiB)");
    println!("VmRSS at end     {rss:9.1} MiB");
    println!("VmHWM at end     {hwm:9.1} MiB");
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["build", count, dir] => {
            let count: usize = count
                .replace('_', "")
                .parse()
                .with_context(|| format!("`{count}` is not a count"))?;
            build(count, &PathBuf::from(dir)).await
        }
        ["open", dir] => open(&PathBuf::from(dir)).await,
        _ => bail!("usage: timer_load build N DIR | timer_load open DIR"),
    }
}
