//! Durable timers under load: firing 100,000 due timers beside the same number of ordinary
//! steps fired by 64 clients, and opening a store that holds 1,000,000 pending timers.
//!
//! Targets: `timers/fire_due_100k` at most 1.5x `timers/ordinary_steps_100k` (the ratio is
//! printed once both have run); `Engine::open` with 1M pending timers under 2 s, both as a
//! restart usually finds the store (`open_with_1m_pending`) and as the first start after a
//! long run does (`open_with_1m_pending_no_snapshot`). Memory with 1M pending timers is
//! measured in a fresh process by `examples/timer_load.rs`.
//!
//! `cargo bench --bench timers` (about 6 minutes, 2 more the first time: see "Stores"
//! below); `cargo bench --bench timers -- --test` runs each benchmark once on stores of 1,000
//! timers (whatever the names say), in seconds.
//!
//! Stores. Every measurement starts from a store built by `Engine::start`: N instances of
//! `bench_timer`, each in `waiting` with one 15-minute timer armed, all started at the same
//! virtual instant, checkpointed so the timer queue holds all N. Building one costs about
//! 10k starts/s (1M: 1.5-2 minutes), so each size is built once and kept in
//! `target/timer-bench/pending-<N>/` (`defs/` the workflow, `data/` the store, `ids.txt` the
//! instance ids, `complete` written last, holding the workflow it was built with; the store
//! is reopened once after the build, so that sled has written its snapshot). A cache
//! whose `complete` differs from the workflow below is rebuilt; after a change to the store's
//! format, delete `target/timer-bench/` by hand. Measurements that consume a store (firing)
//! run on a fresh copy per iteration, copied and opened untimed; opening does not change what
//! a store holds, so `open_with_1m_pending` reopens the cached store itself.

use chrono::{DateTime, Utc};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use sopflow::clock::{Clock, VirtualClock};
use sopflow::engine::{Config, Engine, Fire, Fired, StartRequest};
use sopflow::machine::Actor;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The benchmark's workflow.
///
/// The ordinary step it is compared with is `close`, fired by a clerk: like the timer's
/// `expire`, it moves the instance from `waiting` to the final `expired`, which cancels the
/// timer, so the two steps do the same machine work and change the same derived records
/// (state index, timer queue). `ping` (a self-loop that leaves the timer running) would be
/// cheaper than a timer's step and flatter the baseline; it is there for manual comparisons.
const WORKFLOW: &str = include_str!("workflows/bench_timer.yaml");

/// Concurrent clients, for building stores and for the ordinary steps (as `benches/runtime.rs`
/// measures durable steps).
const CLIENTS: usize = 64;

/// When every instance starts.
fn start_instant() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-02T09:00:00+08:00")
        .expect("a valid time")
        .with_timezone(&Utc)
}

/// When every timer is due.
fn due_instant() -> DateTime<Utc> {
    start_instant() + chrono::Duration::minutes(15)
}

/// `cargo bench -- --test` (CI): small stores, each benchmark once.
fn test_mode() -> bool {
    std::env::args().any(|arg| arg == "--test")
}

/// The target folder (`target/`, or wherever `CARGO_TARGET_DIR` put this executable).
fn target_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.to_path_buf()))
        .filter(|dir| dir.join("CACHEDIR.TAG").exists())
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

fn cache_root() -> PathBuf {
    target_dir().join("timer-bench")
}

fn config(dir: &Path, clock: &VirtualClock) -> Config {
    Config::new(dir.join("data"))
        .sources(vec![dir.join("defs").join("bench_timer.yaml")])
        .clock(Arc::new(clock.clone()))
}

/// A built store: its folder and its instance ids.
struct Built {
    dir: PathBuf,
    ids: Vec<String>,
}

/// The store with `count` pending timers, from the cache or built now.
fn store(rt: &tokio::runtime::Runtime, count: usize) -> Built {
    let dir = cache_root().join(format!("pending-{count}"));
    let complete = dir.join("complete");
    if std::fs::read_to_string(&complete).is_ok_and(|text| text == WORKFLOW)
        && let Ok(ids) = std::fs::read_to_string(dir.join("ids.txt"))
    {
        let ids: Vec<String> = ids.lines().map(str::to_string).collect();
        if ids.len() == count {
            return Built { dir, ids };
        }
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir).expect("removes the stale cached store");
    }
    eprintln!(
        "building a store with {count} pending timers in {}",
        dir.display()
    );
    let ids = rt.block_on(build(count, &dir));
    // sled 0.34 writes its page-table snapshot only when it opens a store: one reopen now, so
    // that every open measured later starts from the same state.
    let clock = VirtualClock::new(start_instant());
    drop(
        rt.block_on(Engine::open(config(&dir, &clock)))
            .expect("the new store reopens"),
    );
    std::fs::write(dir.join("ids.txt"), ids.join("\n")).expect("writes ids");
    std::fs::write(&complete, WORKFLOW).expect("marks the store complete");
    Built { dir, ids }
}

/// Starts `count` instances from 64 clients and checkpoints, so that the queue holds them all.
async fn build(count: usize, dir: &Path) -> Vec<String> {
    let defs = dir.join("defs");
    std::fs::create_dir_all(&defs).expect("defs folder");
    std::fs::write(defs.join("bench_timer.yaml"), WORKFLOW).expect("writes the workflow");
    let clock = VirtualClock::new(start_instant());
    let engine = Engine::open(config(dir, &clock))
        .await
        .expect("engine opens");
    assert!(
        engine.load_report().diagnostics.is_empty(),
        "the benchmark's workflow must be clean: {:?}",
        engine.load_report().diagnostics
    );
    let began = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|who| {
            let engine = engine.clone();
            let next = next.clone();
            tokio::spawn(async move {
                let actor = Actor::new(format!("clerk-{who}"), ["clerk"]);
                let mut ids = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        return ids;
                    }
                    let started = engine
                        .start("bench_timer", StartRequest::new(actor.clone()))
                        .await
                        .expect("starts");
                    assert_eq!(started.instance.timers.len(), 1, "one timer armed");
                    ids.push(started.instance.id.to_string());
                    if (i + 1).is_multiple_of(100_000) {
                        eprintln!("  {} started in {:.1?}", i + 1, began.elapsed());
                    }
                }
            })
        })
        .collect();
    let mut ids = Vec::with_capacity(count);
    for task in tasks {
        ids.extend(task.await.expect("client finishes"));
    }
    engine.checkpoint().await.expect("checkpoints");
    let first = engine.pending_timers(1).await.expect("lists timers");
    assert_eq!(first.first().map(|t| t.due), Some(due_instant()));
    eprintln!("  built {count} in {:.1?}", began.elapsed());
    ids
}

/// Copies a folder (a closed store) file by file.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("creates the copy's folder");
    for entry in std::fs::read_dir(from).expect("reads the store's folder") {
        let entry = entry.expect("a folder entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("a file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copies a file");
        }
    }
}

/// A fresh copy of a built store, opened (untimed) on a clock at the start instant.
struct Fresh {
    _dir: tempfile::TempDir,
    engine: Engine,
    clock: VirtualClock,
}

fn fresh(rt: &tokio::runtime::Runtime, built: &Built) -> Fresh {
    let dir = tempfile::Builder::new()
        .prefix("copy-")
        .tempdir_in(cache_root())
        .expect("temp dir");
    copy_dir(&built.dir, dir.path());
    let clock = VirtualClock::new(start_instant());
    let engine = rt
        .block_on(Engine::open(config(dir.path(), &clock)))
        .expect(
            "the copy opens (after a change to the store's format, delete target/timer-bench/)",
        );
    Fresh {
        _dir: dir,
        engine,
        clock,
    }
}

/// Time spent and steps made, to compare the two firing benchmarks per step.
#[derive(Default, Clone, Copy)]
struct Tally {
    time: Duration,
    steps: u64,
}

impl Tally {
    fn add(&mut self, time: Duration, steps: usize) {
        self.time += time;
        self.steps += steps as u64;
    }
    fn per_step(&self) -> Option<Duration> {
        u32::try_from(self.steps)
            .ok()
            .filter(|n| *n > 0)
            .map(|n| self.time / n)
    }
}

fn bench_timers(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let (fires, pending) = if test_mode() {
        (1_000, 1_000)
    } else {
        (100_000, 1_000_000)
    };
    let mut group = c.benchmark_group("timers");
    group.sample_size(10);
    // One iteration a sample: each takes seconds, plus seconds of untimed setup.
    group.sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(20));

    let built = store(&rt, fires);
    group.throughput(Throughput::Elements(fires as u64));

    // Moves the clock to the due instant and fires every timer: batches of 1024 from the
    // queue, instances in parallel, each step group-committed, the queue checkpointed
    // between batches (the last checkpoint included).
    let mut fired_tally = Tally::default();
    group.bench_function("fire_due_100k", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                let fresh = fresh(&rt, &built);
                fresh.clock.set(due_instant());
                let began = Instant::now();
                let fired = rt.block_on(fresh.engine.run_due()).expect("fires");
                let took = began.elapsed();
                spent += took;
                fired_tally.add(took, fired.len());
                assert_eq!(fired.len(), fires, "every timer fires");
                assert!(fired.iter().all(|f| matches!(
                    f,
                    Fired::Timer { event, refused: None, .. } if event == "expire"
                )));
                let left = rt.block_on(fresh.engine.pending_timers(1)).expect("lists");
                assert!(left.is_empty(), "no timer is left: {left:?}");
            }
            spent
        })
    });

    // The same number of `close` steps on the same instances from 64 clients, then a
    // checkpoint: `run_due` ends with one (it checkpoints before every look at the queue), so
    // both measurements end with every derived record written. Without the checkpoint the
    // ordinary steps would leave up to 4096 snapshots for later; both times are printed.
    let mut ordinary_tally = Tally::default();
    let mut without_checkpoint = Duration::ZERO;
    group.bench_function("ordinary_steps_100k", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                let fresh = fresh(&rt, &built);
                let engine = &fresh.engine;
                let (took, steps) = rt.block_on(async {
                    let began = Instant::now();
                    let tasks: Vec<_> = (0..CLIENTS)
                        .map(|who| {
                            let engine = engine.clone();
                            let ids: Vec<String> = built
                                .ids
                                .iter()
                                .skip(who)
                                .step_by(CLIENTS)
                                .cloned()
                                .collect();
                            tokio::spawn(async move {
                                let actor = Actor::new(format!("clerk-{who}"), ["clerk"]);
                                for id in &ids {
                                    let outcome = engine
                                        .fire(id, Fire::new("close", actor.clone()))
                                        .await
                                        .expect("fires");
                                    assert_eq!(outcome.instance.state, "expired");
                                }
                                ids.len()
                            })
                        })
                        .collect();
                    let mut steps = 0;
                    for task in tasks {
                        steps += task.await.expect("client finishes");
                    }
                    without_checkpoint += began.elapsed();
                    engine.checkpoint().await.expect("checkpoints");
                    (began.elapsed(), steps)
                });
                assert_eq!(steps, fires);
                spent += took;
                ordinary_tally.add(took, steps);
                let left = rt.block_on(engine.pending_timers(1)).expect("lists");
                assert!(left.is_empty(), "every timer is cancelled: {left:?}");
            }
            spent
        })
    });

    if let (Some(fired), Some(ordinary)) = (fired_tally.per_step(), ordinary_tally.per_step()) {
        let ratio = fired.as_secs_f64() / ordinary.as_secs_f64();
        let bare = without_checkpoint.as_secs_f64() / ordinary_tally.steps as f64;
        eprintln!(
            "\ntimers: {fires} per iteration; fire_due {:.2} µs/timer ({:.0}/s), ordinary {:.2} µs/step ({:.0}/s; {:.2} µs/step without the final checkpoint)\n\
             timers: ratio fire_due / ordinary = {ratio:.2} (target <= 1.5: {})\n",
            fired.as_secs_f64() * 1e6,
            1.0 / fired.as_secs_f64(),
            ordinary.as_secs_f64() * 1e6,
            1.0 / ordinary.as_secs_f64(),
            bare * 1e6,
            if ratio <= 1.5 { "met" } else { "MISSED" },
        );
    }
    drop(built);

    // Opening (and closing) the engine on a store with 1M pending timers. sled 0.34 writes
    // its page-table snapshot only when it opens a store, so the cached store, once opened,
    // reopens from that snapshot; `open_with_1m_pending_no_snapshot` opens a copy without it,
    // as the first start after a long run does (sled then reads its whole log).
    let big = store(&rt, pending);
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(5));
    let mut open_only = Tally::default();
    let reopen = |dir: &Path, open_only: &mut Tally| {
        let clock = VirtualClock::new(start_instant());
        let began = Instant::now();
        let engine = rt
            .block_on(Engine::open(config(dir, &clock)))
            .expect("engine opens");
        open_only.add(began.elapsed(), 1);
        drop(engine);
        let took = began.elapsed();
        // sled lets go of its lock a moment after closing; not part of the next open.
        std::thread::sleep(Duration::from_millis(100));
        took
    };
    group.bench_function("open_with_1m_pending", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| reopen(&big.dir, &mut open_only)).sum())
    });
    if let Some(open) = open_only.per_step() {
        eprintln!(
            "\ntimers: Engine::open alone with {pending} pending, sled snapshot present: {open:.1?} (target < 2 s)\n"
        );
    }
    let mut cold = Tally::default();
    group.bench_function("open_with_1m_pending_no_snapshot", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                let copy = tempfile::Builder::new()
                    .prefix("copy-")
                    .tempdir_in(cache_root())
                    .expect("temp dir");
                copy_dir(&big.dir, copy.path());
                for entry in std::fs::read_dir(copy.path().join("data")).expect("reads") {
                    let path = entry.expect("entry").path();
                    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
                    if name.is_some_and(|n| n.starts_with("snap.")) {
                        std::fs::remove_file(&path).expect("removes sled's snapshot");
                    } else if path.is_file() {
                        // Written back before the clock starts, not while sled reads.
                        std::fs::File::open(&path)
                            .and_then(|f| f.sync_all())
                            .expect("syncs the copy");
                    }
                }
                spent += reopen(copy.path(), &mut cold);
            }
            spent
        })
    });
    if let Some(open) = cold.per_step() {
        eprintln!(
            "\ntimers: Engine::open alone with {pending} pending, no sled snapshot: {open:.1?} (target < 2 s)\n"
        );
    }
    group.finish();
}

criterion_group!(benches, bench_timers);
criterion_main!(benches);
