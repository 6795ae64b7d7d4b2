//! Load on migrations: plan and apply a migration of N running instances, each phase in a
//! fresh process, and see what they cost in time and in memory.
//!
//! ```sh
//! cargo run --release --example migrate_load -- 100000
//! cargo run --release --example migrate_load -- 100000 --cache-mib 16
//! ```
//!
//! The store holds N running instances of the shipped `expense_approval`, each started and
//! submitted (two entries; in `dept_head_review`, amounts and budgets in turn so that routes
//! differ), on version 1 (the shipped files). It is built once per size in
//! `target/migrate-load/<N>/` (`defs/` version 1, `defs2/` version 2, `data/` the store,
//! `complete` written last), through the real [`Engine`] from 64 concurrent clients.
//!
//! Version 2 raises the property manager's in-budget limit from 200 to 1000 yuan, so the plan
//! of every instance whose amount lies between says its route changes.
//!
//! Then this program runs itself once per phase, on an engine opened over `defs2/`:
//!
//! - `plan`: [`Engine::migration_plan`] of every instance to the current version, each plan
//!   written as a JSON line into a writer that counts the bytes and discards them;
//! - `apply`: [`Engine::migrate`] of every instance, on a copy of the store (`scratch/`), so
//!   that the built store stays on version 1.
//!
//! Each prints its time, its throughput and the process's VmRSS (at every tenth of the walk)
//! and peak VmHWM (from `/proc/self/status`). `--cache-mib M` sets sled's page cache
//! (`Config::cache_bytes`, 128 MiB by default) for the phases, to show which part of the
//! growth is that cache filling up.

#[path = "common/memory.rs"]
mod memory;
use anyhow::{Context, ensure};
use memory::memory;
use serde_json::json;
use sopflow::clock::{Clock, VirtualClock};
use sopflow::engine::{Config, Engine, Fire, MigrationRequest, StartRequest};
use sopflow::machine::Actor;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

const WORKFLOW: &str = include_str!("../workflows/expense_approval.yaml");
const RULES: &str = include_str!("../rules/expense.rhai");
const RECIPE: &str = "migrate-load 1: expense_approval started and submitted, 64 clients";
const CLIENTS: usize = 64;

fn start_time() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339("2026-03-02T09:00:00+08:00")
        .expect("a time")
        .with_timezone(&chrono::Utc)
}

/// The target folder (`target/`, or wherever `CARGO_TARGET_DIR` put this executable).
fn target_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.to_path_buf()))
        .filter(|dir| dir.join("CACHEDIR.TAG").exists())
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

fn write_defs(dir: &Path, workflow: &str) -> anyhow::Result<Vec<PathBuf>> {
    let workflows = dir.join("workflows");
    let rules = dir.join("rules");
    std::fs::create_dir_all(&workflows)?;
    std::fs::create_dir_all(&rules)?;
    std::fs::write(workflows.join("expense_approval.yaml"), workflow)?;
    std::fs::write(rules.join("expense.rhai"), RULES)?;
    Ok(vec![workflows, rules])
}

fn version_two() -> String {
    assert!(WORKFLOW.contains("    default: 200\n"));
    WORKFLOW.replacen("    default: 200\n", "    default: 1000\n", 1)
}

fn config(data: &Path, sources: Vec<PathBuf>, clock: &VirtualClock) -> Config {
    Config::new(data.to_path_buf())
        .sources(sources)
        .clock(Arc::new(clock.clone()))
}

/// Builds the store of `n` running instances in `dir`, unless it is there already.
fn build(rt: &tokio::runtime::Runtime, dir: &Path, n: u64) -> anyhow::Result<()> {
    let complete = dir.join("complete");
    if std::fs::read_to_string(&complete).is_ok_and(|r| r == RECIPE) {
        return Ok(());
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    let sources = write_defs(&dir.join("defs"), WORKFLOW)?;
    write_defs(&dir.join("defs2"), &version_two())?;
    let clock = VirtualClock::new(start_time());
    let began = Instant::now();
    let engine = rt.block_on(Engine::open(config(&dir.join("data"), sources, &clock)))?;
    let next = Arc::new(AtomicU64::new(0));
    rt.block_on(async {
        let mut clients = tokio::task::JoinSet::new();
        for _ in 0..CLIENTS {
            let (engine, next) = (engine.clone(), next.clone());
            clients.spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return Ok::<_, anyhow::Error>(());
                    }
                    let applicant = Actor::new(format!("applicant-{}", i % 500), ["applicant"]);
                    let started = engine
                        .start("expense_approval", StartRequest::new(applicant.clone()))
                        .await?;
                    let (budget, amount) = match i % 4 {
                        0 => ("in", 150),
                        1 => ("in", 600),
                        2 => ("in", 5000),
                        _ => ("out", 800),
                    };
                    let payload = json!({"department": "工程部", "expense_item": "维修", "amount": amount, "budget_type": budget});
                    engine
                        .fire(
                            &started.instance.id,
                            Fire::new("submit", applicant).payload(payload),
                        )
                        .await?;
                    if i % 10_000 == 0 && i > 0 {
                        eprintln!("  built {i} instances ({:.0} s)", began.elapsed().as_secs_f64());
                    }
                }
            });
        }
        while let Some(done) = clients.join_next().await {
            done??;
        }
        Ok::<_, anyhow::Error>(())
    })?;
    drop(engine);
    println!(
        "built {n} running instances (2 entries each) in {:.1} s",
        began.elapsed().as_secs_f64()
    );
    std::fs::write(complete, RECIPE)?;
    Ok(())
}

/// Counts what is written and keeps none of it.
#[derive(Default)]
struct Discard(u64);

impl Write for Discard {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// VmRSS at every tenth of `n`.
struct Samples {
    n: u64,
    done: u64,
    rss: Vec<String>,
}

impl Samples {
    fn tick(&mut self) {
        self.done += 1;
        if self.n >= 10 && self.done.is_multiple_of(self.n / 10) {
            self.rss
                .push(format!("{}%: {:.0}", self.done * 100 / self.n, memory().0));
        }
    }
}

fn phase(
    rt: &tokio::runtime::Runtime,
    dir: &Path,
    n: u64,
    phase: &str,
    cache_mib: Option<u64>,
) -> anyhow::Result<()> {
    let data = match phase {
        "plan" => dir.join("data"),
        _ => {
            let scratch = dir.join("scratch");
            if scratch.exists() {
                std::fs::remove_dir_all(&scratch)?;
            }
            copy_dir(&dir.join("data"), &scratch)?;
            scratch
        }
    };
    let sources = vec![dir.join("defs2/workflows"), dir.join("defs2/rules")];
    let clock = VirtualClock::new(start_time());
    clock.set(start_time() + chrono::Duration::days(1));
    let (rss_start, _) = memory();
    let began = Instant::now();
    let mut config = config(&data, sources, &clock);
    if let Some(mib) = cache_mib {
        config.cache_bytes = mib * 1024 * 1024;
    }
    let engine = rt.block_on(Engine::open(config))?;
    let (rss_open, hwm_open) = memory();
    println!(
        "{phase}: {n} running instances, sled cache {} MiB; Engine::open {:.1} s, VmRSS {rss_start:.0} MiB before, {rss_open:.0} MiB after (VmHWM {hwm_open:.0} MiB)",
        cache_mib.unwrap_or(128),
        began.elapsed().as_secs_f64()
    );
    let request = MigrationRequest::new(
        "expense_approval",
        "current",
        Actor::new("boss", ["process_owner"]),
    );
    let began = Instant::now();
    let samples = Arc::new(std::sync::Mutex::new(Samples {
        n,
        done: 0,
        rss: Vec::new(),
    }));
    let (summary, extra) = match phase {
        "plan" => {
            let (into, out) = (
                samples.clone(),
                Arc::new(std::sync::Mutex::new((Discard::default(), 0u64))),
            );
            let written = out.clone();
            let summary = rt.block_on(engine.migration_plan(request, move |plan| {
                let mut out = written.lock().expect("lock");
                let line =
                    json!({"verdict": if plan.is_clean() {"clean"} else {"blocked"}, "plan": plan});
                let _ = writeln!(out.0, "{line}");
                if plan.route.is_some() {
                    out.1 += 1;
                }
                into.lock().expect("lock").tick();
            }))?;
            let out = out.lock().expect("lock");
            (
                summary,
                format!(
                    "{} plans say the route changes; {:.0} MiB of JSON Lines (discarded)",
                    out.1,
                    out.0.0 as f64 / 1048576.0
                ),
            )
        }
        _ => {
            let into = samples.clone();
            let summary = rt.block_on(engine.migrate(request, move |_| {
                into.lock().expect("lock").tick();
            }))?;
            (summary, String::new())
        }
    };
    let took = began.elapsed();
    let (rss_end, hwm_end) = memory();
    ensure!(summary.considered == n, "{summary:?}");
    ensure!(summary.clean == n, "{summary:?}");
    println!(
        "  {phase:<5} {:8.2} s: {} instances, {:.0}/s; {extra}",
        took.as_secs_f64(),
        summary.considered,
        summary.considered as f64 / took.as_secs_f64()
    );
    println!(
        "  VmRSS during  {} MiB",
        samples.lock().expect("lock").rss.join(", ")
    );
    println!("  VmRSS at end  {rss_end:.0} MiB; VmHWM {hwm_end:.0} MiB");
    let closing = Instant::now();
    drop(engine);
    println!("  close         {:8.2} s", closing.elapsed().as_secs_f64());
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: u64 = args
        .first()
        .map(|a| a.parse())
        .transpose()
        .context("N: a number of instances")?
        .unwrap_or(100_000);
    let dir = target_dir().join("migrate-load").join(n.to_string());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let cache_mib: Option<u64> = match args.iter().position(|a| a == "--cache-mib") {
        Some(at) => Some(args.get(at + 1).context("--cache-mib M")?.parse()?),
        None => None,
    };
    if let Some(which) = args.iter().position(|a| a == "--phase") {
        let name = args.get(which + 1).context("--phase plan|apply")?;
        return phase(&rt, &dir, n, name, cache_mib);
    }
    build(&rt, &dir, n)?;
    drop(rt);
    for name in ["plan", "apply"] {
        let mut command = std::process::Command::new(std::env::current_exe()?);
        command.args([n.to_string(), "--phase".into(), name.into()]);
        if let Some(mib) = cache_mib {
            command.args(["--cache-mib".to_string(), mib.to_string()]);
        }
        let status = command.status()?;
        ensure!(status.success(), "the {name} phase failed");
    }
    Ok(())
}
