//! Durable timers fire exactly once, also across crashes: a process that fires timers is
//! killed with SIGKILL at random moments, the clock moves past due times while it is down, and
//! after every reopen no timer has fired twice and none is lost.
//!
//! The harness is tests/crash.rs's, smaller. The test binary is its own writer: the parent
//! re-executes it with `timer_crash_child` as the only test to run and the folder in
//! [`CHILD_DIR`]. The child opens an [`Engine`] on a [`VirtualClock`] set to the time saved in
//! `<folder>/clock` (so each child resumes the virtual time where the last one stopped), then
//! loops: it moves the clock 20-40 s on with [`Engine::advance_to`] (which fires due timers at
//! their due time, different instances in parallel) while, concurrently, it starts instances of
//! `tests/timer_crash/reminders.yaml` and fires `close` or `snooze` on random ones. It prints
//! `fired <instance> <timer> <seq>` (flushed) for every [`Fired::Timer`] returned. It saves
//! the time each advance heads for before it starts, so that virtual time never goes back and
//! a killed advance leaves its due timers to fire late, once, in the next child. Between
//! rounds the parent sometimes moves the saved clock on by minutes ("the clock moved while the
//! process was down"), so that the next child fires overdue timers late. After each kill the
//! parent reopens the store itself and checks, for every instance, that
//!
//! - no timer id is in more than one `Timer` entry of its history (the core invariant), and
//!   every firing fires a timer that an earlier step armed and no step cancelled, not before
//!   its due time, and removes it ([`timer_facts`]);
//! - every `fired` line a child printed is in the history at its seq, and no timer was
//!   acknowledged twice (by one child or by two);
//! - every entry an earlier check read is still there, unchanged: a firing that reached the
//!   log but not the snapshot, redone after the restart at the same seq, is a timer that fired
//!   twice although the child never acknowledged the first firing;
//! - the history's seqs run 0, 1, 2... and its hash chain verifies; the snapshot equals the
//!   replay of the history and holds exactly the timers armed and neither fired nor cancelled.
//!
//! At the end the store is opened once more with the clock a day later: one `run_due` fires
//! whatever is left, after which every instance is final and, in each, the timers armed and not
//! cancelled by a step that left (or re-entered) their state are exactly the timers fired, each
//! once; a second `run_due`, and a `run_due` after another reopen, fire nothing.
//!
//! `SOPFLOW_TIMER_CRASH_SEED` replays a round plan (the kill moments still depend on timing)
//! and `SOPFLOW_TIMER_CRASH_ROUNDS` overrides the number of rounds. Each round is logged (shown
//! when the test fails, or with `--nocapture`), and a failed test keeps its folder.
//!
//! `the_checker_flags_a_timer_fired_twice_or_after_its_cancellation` is the negative control of
//! [`timer_facts`]: histories with a forged second firing (hashes and chain valid, so only the
//! timer check can object) must be refused.

use chrono::{DateTime, Utc};
use sopflow::clock::{Clock, VirtualClock};
use sopflow::engine::{Config, Engine, EngineError, Fire, Fired, Outcome, StartRequest};
use sopflow::machine::{Actor, Entry, EntryKind, Instance};
use sopflow::store::{Query, StoreError};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

/// The folder holding `data/` and `clock`; set only for the child.
const CHILD_DIR: &str = "SOPFLOW_TIMER_CRASH_CHILD_DIR";
/// The child's random choices.
const CHILD_SEED: &str = "SOPFLOW_TIMER_CRASH_CHILD_SEED";
/// The child's `Config::checkpoint_every` (how often the timer queue is rewritten).
const CHILD_CHECKPOINT: &str = "SOPFLOW_TIMER_CRASH_CHILD_CHECKPOINT_EVERY";
const WORKFLOW: &str = "reminders";
/// The virtual time of the first child.
const EPOCH: &str = "2026-03-02T09:00:00+08:00";

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/timer_crash/reminders.yaml")
}

fn config(data: &Path, clock: &VirtualClock) -> Config {
    Config::new(data)
        .sources(vec![fixture()])
        .clock(Arc::new(clock.clone()))
}

fn clerk() -> Actor {
    Actor::new("li", ["clerk"])
}

/// The virtual time saved in `<dir>/clock`, or [`EPOCH`] before the first child.
fn read_clock(dir: &Path) -> DateTime<Utc> {
    let text = std::fs::read_to_string(dir.join("clock")).unwrap_or_else(|_| EPOCH.to_string());
    DateTime::parse_from_rfc3339(text.trim())
        .unwrap_or_else(|e| panic!("the saved clock {text:?} does not parse: {e}"))
        .with_timezone(&Utc)
}

/// Saves the virtual time, whole or not at all (a kill may land here). Not synced: SIGKILL
/// does not lose the page cache, and a clock that went back would only make timers due in
/// the past, which fire on the next run.
fn write_clock(dir: &Path, at: DateTime<Utc>) {
    let temp = dir.join("clock.new");
    std::fs::write(&temp, at.to_rfc3339()).expect("writes the clock");
    std::fs::rename(&temp, dir.join("clock")).expect("renames the clock");
}

/// [`Engine::open`], waiting while the folder is still locked by an engine the parent has
/// just dropped (sled lets go of its lock from a background thread).
async fn open(config: Config) -> Result<Engine, EngineError> {
    let patience = Instant::now() + Duration::from_secs(10);
    loop {
        match Engine::open(config.clone()).await {
            Err(EngineError::Store(StoreError::Locked { .. })) if Instant::now() < patience => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            other => return other,
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// splitmix64, as in tests/crash.rs: enough randomness, and no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// In `low..high`.
    fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low)
    }
}

// ---------------------------------------------------------------------------------------------
// The child: starts instances, closes some and moves the clock until it is killed.

#[test]
#[ignore = "the writer process of the timer crash test, which starts it itself"]
fn timer_crash_child() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    // Never outlive a parent that failed to kill us.
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_secs(120));
        std::process::exit(3);
    });
    let seed = std::env::var(CHILD_SEED)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let checkpoint_every = std::env::var(CHILD_CHECKPOINT)
        .ok()
        .and_then(|s| s.parse().ok());
    runtime().block_on(fire_forever(PathBuf::from(dir), seed, checkpoint_every));
}

/// Stops the child on anything unexpected; the parent reports the message.
fn die(what: &str, error: impl std::fmt::Display) -> ! {
    eprintln!("timer crash child: {what}: {error}");
    std::process::exit(4);
}

/// One line to the parent, flushed. The parent is gone if it cannot be written.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
        std::process::exit(0);
    }
}

/// What one of the child's concurrent tasks did.
enum Done {
    Advanced(Result<Vec<Fired>, EngineError>),
    Started(Result<Outcome, EngineError>),
    Fired(String, Result<Outcome, EngineError>),
}

async fn fire_forever(dir: PathBuf, seed: u64, checkpoint_every: Option<usize>) {
    let clock = VirtualClock::new(read_clock(&dir));
    let mut config = config(&dir.join("data"), &clock);
    if let Some(every) = checkpoint_every {
        config.checkpoint_every = every;
    }
    let engine = open(config).await.unwrap_or_else(|e| die("open", e));
    let query = Query {
        workflow: Some(WORKFLOW.into()),
        state: Some("waiting".into()),
        ..Query::default()
    };
    let found = engine.list(query).await.unwrap_or_else(|e| die("list", e));
    // Instances that may still be closed or snoozed.
    let mut open_ids: Vec<String> = found.into_iter().map(|i| i.id.to_string()).collect();
    // On a line of its own: the test harness has written `test timer_crash_child ... ` before.
    say(&format!("\nready {}", open_ids.len()));
    let mut rng = Rng(seed);
    loop {
        let until = clock.now() + chrono::Duration::seconds(rng.range(20, 41) as i64);
        // Saved before the advance rather than after it, so that the next child never resumes
        // at a time earlier than this one reached: a kill during the advance leaves timers due
        // before `until` unfired, to fire late, once, in the next child, as after a real outage.
        write_clock(&dir, until);
        let mut tasks = tokio::task::JoinSet::new();
        let advancing = engine.clone();
        tasks.spawn(async move { Done::Advanced(advancing.advance_to(until).await) });
        for _ in 0..rng.range(1, 4) {
            let engine = engine.clone();
            tasks.spawn(async move {
                Done::Started(engine.start(WORKFLOW, StartRequest::new(clerk())).await)
            });
        }
        for _ in 0..rng.range(0, 3) {
            if open_ids.is_empty() {
                break;
            }
            let id = open_ids[rng.range(0, open_ids.len() as u64) as usize].clone();
            let event = if rng.range(0, 3) == 0 {
                "snooze"
            } else {
                "close"
            };
            let engine = engine.clone();
            tasks.spawn(async move {
                let done = engine.fire(&id, Fire::new(event, clerk())).await;
                Done::Fired(id, done)
            });
        }
        let mut finished = BTreeSet::new();
        while let Some(done) = tasks.join_next().await {
            match done.unwrap_or_else(|e| die("task", e)) {
                Done::Advanced(fired) => {
                    for fired in fired.unwrap_or_else(|e| die("advance", e)) {
                        if let Fired::Timer {
                            instance,
                            timer,
                            seq,
                            event,
                            refused,
                            ..
                        } = fired
                        {
                            say(&format!("fired {instance} {timer} {seq}"));
                            if event == "expire" && refused.is_none() {
                                finished.insert(instance);
                            }
                        }
                    }
                }
                Done::Started(started) => {
                    let started = started.unwrap_or_else(|e| die("start", e));
                    say(&format!("started {}", started.instance.id));
                    open_ids.push(started.instance.id.to_string());
                }
                Done::Fired(id, Ok(done)) => {
                    if done.instance.finished {
                        finished.insert(id);
                    }
                }
                // Expired (or closed) meanwhile: its timer took the lock first.
                Done::Fired(id, Err(EngineError::Refused(_))) => {
                    finished.insert(id);
                }
                Done::Fired(id, Err(e)) => die(&format!("fire on {id}"), e),
            }
        }
        open_ids.retain(|id| !finished.contains(id));
    }
}

// ---------------------------------------------------------------------------------------------
// The invariant, as a function of one history.

/// What a history says about its timers.
#[derive(Debug, Default, PartialEq)]
struct TimerFacts {
    armed: BTreeSet<String>,
    /// Cancelled by a step that left or re-entered their state (not by their own firing).
    cancelled: BTreeSet<String>,
    /// Timer id -> the seq of the one entry that fired it.
    fired: BTreeMap<String, u64>,
    /// Armed, and neither fired nor cancelled: what the snapshot must hold.
    pending: BTreeSet<String>,
    /// Firings after their due time (the process was down, or killed mid-advance).
    late: usize,
    /// Firings whose event was refused: the timer lapsed.
    lapsed: usize,
}

/// Walks a history's timers. Refuses a history in which a timer fires twice, fires without
/// having been armed, fires after a step cancelled it or before its due time, or stays pending
/// after its firing.
fn timer_facts(history: &[Entry]) -> Result<TimerFacts, String> {
    let mut facts = TimerFacts::default();
    let mut due: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
    for entry in history {
        let seq = entry.seq;
        let firing = match (entry.kind, &entry.timer) {
            (EntryKind::Timer, Some(firing)) => Some(firing),
            (EntryKind::Timer, None) => return Err(format!("timer entry {seq} names no timer")),
            (_, Some(firing)) => {
                return Err(format!(
                    "entry {seq} is not a timer's but names {}",
                    firing.id
                ));
            }
            (_, None) => None,
        };
        if let Some(firing) = firing {
            let id = &firing.id;
            if let Some(first) = facts.fired.insert(id.clone(), seq) {
                return Err(format!("timer {id} fired twice: at seq {first} and {seq}"));
            }
            if !facts.armed.contains(id) {
                return Err(format!("timer {id} fired at seq {seq} but was never armed"));
            }
            if facts.cancelled.contains(id) || !facts.pending.contains(id) {
                return Err(format!(
                    "timer {id} fired at seq {seq} after a step cancelled it"
                ));
            }
            if due.get(id) != Some(&firing.due) {
                return Err(format!(
                    "timer {id} fired at seq {seq} as due {}, armed as due {:?}",
                    firing.due,
                    due.get(id)
                ));
            }
            if entry.at < firing.due {
                return Err(format!(
                    "timer {id} fired at seq {seq} at {}, before its due time {}",
                    entry.at, firing.due
                ));
            }
            if !entry.timers_cancelled.contains(id) {
                return Err(format!(
                    "timer {id} fired at seq {seq} but stays pending after it"
                ));
            }
            facts.late += usize::from(entry.at > firing.due);
            facts.lapsed += usize::from(firing.refused.is_some());
        }
        for id in &entry.timers_cancelled {
            if facts.pending.remove(id) && firing.is_none_or(|f| &f.id != id) {
                facts.cancelled.insert(id.clone());
            }
        }
        for armed in &entry.timers_armed {
            if !facts.armed.insert(armed.id.clone()) {
                return Err(format!(
                    "timer {} armed twice (again at seq {seq})",
                    armed.id
                ));
            }
            facts.pending.insert(armed.id.clone());
            due.insert(armed.id.clone(), armed.due);
        }
    }
    Ok(facts)
}

/// A history reads back whole: contiguous from 0, each entry's hash verifies and links.
fn check_chain(id: &str, history: &[Entry]) {
    let mut prev = "";
    for (at, entry) in history.iter().enumerate() {
        assert_eq!(entry.instance, id, "{id}: entry {at} belongs elsewhere");
        assert_eq!(entry.seq, at as u64, "{id}: seqs are not contiguous");
        assert!(entry.verify(), "{id}: entry {at} does not match its hash");
        assert_eq!(entry.prev_hash, prev, "{id}: entry {at} does not link");
        prev = &entry.hash;
    }
}

// ---------------------------------------------------------------------------------------------
// The parent: kills children, moves the clock and checks what survived.

/// Kills (SIGKILL on Unix) and reaps the child however the parent leaves.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// When to kill a child.
#[derive(Debug, Clone, Copy)]
enum Kill {
    /// This long after it was spawned: often while it opens and recovers.
    AfterSpawn(Duration),
    /// This long after it said it was ready, while it fires timers.
    AfterReady(Duration),
}

/// What one child acknowledged before it was killed.
#[derive(Default)]
struct Run {
    /// (instance, timer, seq).
    fired: Vec<(String, String, u64)>,
    started: Vec<String>,
    resumed: usize,
    lived: Duration,
}

/// How one child runs.
#[derive(Debug, Clone, Copy)]
struct Plan {
    seed: u64,
    checkpoint_every: usize,
    kill: Kill,
}

fn run_child(exe: &Path, dir: &Path, plan: Plan) -> Run {
    let kill = plan.kill;
    let spawned = Instant::now();
    let mut child = Killed(
        Command::new(exe)
            .args([
                "timer_crash_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR, dir)
            .env(CHILD_SEED, plan.seed.to_string())
            .env(CHILD_CHECKPOINT, plan.checkpoint_every.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawns the child"),
    );
    let stdout = child.0.stdout.take().expect("stdout");
    let mut stderr = child.0.stderr.take().expect("stderr");
    let (lines, received) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        // A line cut short by the kill is not counted.
        while stdout.read_line(&mut line).is_ok_and(|n| n > 0) && line.ends_with('\n') {
            if lines.send(line.trim_end().to_string()).is_err() {
                break;
            }
            line.clear();
        }
    });
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let take = |run: &mut Run, line: &str| {
        let words: Vec<&str> = line.split(' ').collect();
        match words.as_slice() {
            ["fired", instance, timer, seq] => {
                let seq = seq.parse().expect("a sequence number");
                run.fired
                    .push((instance.to_string(), timer.to_string(), seq));
            }
            ["started", instance] => run.started.push(instance.to_string()),
            ["ready", resumed] => run.resumed = resumed.parse().unwrap_or(0),
            _ => {} // the test harness's own lines
        }
    };
    let mut run = Run::default();
    let mut deadline = match kill {
        Kill::AfterSpawn(delay) => Some(spawned + delay),
        Kill::AfterReady(_) => None,
    };
    let patience = spawned + Duration::from_secs(60);
    loop {
        let now = Instant::now();
        let until = deadline.unwrap_or(patience);
        if until <= now {
            assert!(deadline.is_some(), "the child was not ready in 60 s");
            break;
        }
        match received.recv_timeout(until - now) {
            Ok(line) => {
                if let (Kill::AfterReady(delay), None) = (kill, deadline)
                    && line.starts_with("ready")
                {
                    deadline = Some(Instant::now() + delay);
                }
                take(&mut run, &line);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = child.0.wait().expect("waits");
                let errors = errors.join().unwrap_or_default();
                panic!("the child stopped by itself ({status}):\n{errors}");
            }
        }
    }
    run.lived = spawned.elapsed();
    drop(child);
    // Lines still in the pipe were acknowledged before the kill.
    for line in received.iter() {
        take(&mut run, &line);
    }
    reader.join().expect("reader");
    drop(errors);
    run
}

/// Totals over the whole test.
#[derive(Debug, Default)]
struct Totals {
    rounds: usize,
    clock_jumps: usize,
    fired_acks: usize,
    started_acks: usize,
    kill_ms: Vec<u128>,
    instances: usize,
    timer_entries: usize,
    fired_at_end: usize,
    cancelled: usize,
    late: usize,
    lapsed: usize,
}

struct Harness {
    dir: tempfile::TempDir,
    /// A link to (or copy of) this test binary, run as the child: a `cargo test` run beside
    /// this one may replace the binary itself.
    exe: PathBuf,
    rng: Rng,
    runtime: tokio::runtime::Runtime,
    /// Every acknowledged firing: (instance, timer) -> seq.
    acked: BTreeMap<(String, String), u64>,
    /// Every acknowledged start.
    started: BTreeSet<String>,
    /// Each instance's history as the last check read it: (hash, timer fired) per entry. A
    /// later check must find it unchanged: an entry rewritten after a restart (a step redone
    /// at the same seq) is a timer that fired twice although its first firing was never
    /// acknowledged.
    seen: BTreeMap<String, Vec<(String, Option<String>)>>,
    totals: Totals,
}

impl Harness {
    fn new(seed: u64) -> Harness {
        let dir = tempfile::tempdir().expect("temp dir");
        let exe = dir.path().join("timer-crash-child");
        let this = std::env::current_exe().expect("test binary");
        if std::fs::hard_link(&this, &exe).is_err() {
            std::fs::copy(&this, &exe).expect("copies the test binary");
        }
        Harness {
            dir,
            exe,
            rng: Rng(seed),
            runtime: runtime(),
            acked: BTreeMap::new(),
            seen: BTreeMap::new(),
            started: BTreeSet::new(),
            totals: Totals::default(),
        }
    }

    /// Fails the test with every problem a check found.
    fn found(&self, problems: Vec<String>, when: &str) {
        assert!(
            problems.is_empty(),
            "{when}: {} problem(s):\n{}",
            problems.len(),
            problems.join("\n")
        );
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// One round: maybe move the clock on while nothing runs, run a child until it is
    /// killed, then reopen and check.
    fn round(&mut self) {
        let number = self.totals.rounds + 1;
        let dir = self.dir.path().to_path_buf();
        let mut jumped = 0;
        if self.totals.rounds > 0 && self.rng.range(0, 3) == 0 {
            // The process was down for a while: timers fell due meanwhile.
            jumped = self.rng.range(30, 300);
            write_clock(
                &dir,
                read_clock(&dir) + chrono::Duration::seconds(jumped as i64),
            );
            self.totals.clock_jumps += 1;
        }
        let from = read_clock(&dir);
        let kill = if self.rng.range(0, 4) == 0 {
            Kill::AfterSpawn(Duration::from_millis(self.rng.range(0, 400)))
        } else {
            Kill::AfterReady(Duration::from_millis(self.rng.range(50, 400)))
        };
        let checkpoint_every = [2, 16, 4096][self.rng.range(0, 3) as usize];
        let plan = Plan {
            seed: self.rng.next(),
            checkpoint_every,
            kill,
        };
        let run = run_child(&self.exe, &dir, plan);
        let to = read_clock(&dir);
        eprintln!(
            "round {number}: clock moved on {jumped} s while down, child resumed {} open, \
             checkpoint_every {checkpoint_every}, {kill:?}, killed after {} ms, {} started, \
             {} timers fired, virtual time {} -> {} (+{} s)",
            run.resumed,
            run.lived.as_millis(),
            run.started.len(),
            run.fired.len(),
            from.to_rfc3339(),
            to.to_rfc3339(),
            (to - from).num_seconds(),
        );
        self.totals.rounds += 1;
        self.totals.kill_ms.push(run.lived.as_millis());
        self.totals.started_acks += run.started.len();
        self.totals.fired_acks += run.fired.len();
        self.started.extend(run.started);
        let when = format!("round {number}");
        let mut problems = self.acknowledge(run.fired);
        problems.extend(self.check(false));
        self.found(problems, &when);
    }

    /// Records acknowledged firings; the same timer acknowledged twice fired twice.
    fn acknowledge(&mut self, fired: Vec<(String, String, u64)>) -> Vec<String> {
        let mut problems = Vec::new();
        for (instance, timer, seq) in fired {
            if let Some(first) = self.acked.insert((instance.clone(), timer.clone()), seq) {
                problems.push(format!(
                    "timer {timer} of {instance} was acknowledged as fired twice, at seq \
                     {first} and at seq {seq}"
                ));
            }
        }
        problems
    }

    /// Opens the store as a restart does and checks every instance (see the module docs).
    /// With `at_end`, also that every instance is final and every timer armed and not
    /// cancelled has fired.
    fn check(&mut self, at_end: bool) -> Vec<String> {
        let dir = self.dir.path().to_path_buf();
        let clock = VirtualClock::new(read_clock(&dir));
        let data = self.data();
        let (acked, started, seen) = (&self.acked, &self.started, &mut self.seen);
        let mut problems = Vec::new();
        let found = &mut problems;
        let (instances, timer_entries, cancelled, late, lapsed) = self.runtime.block_on(async {
            let engine = open(config(&data, &clock))
                .await
                .unwrap_or_else(|e| panic!("the store does not open after the kill: {e}"));
            let listed = engine.list(Query::default()).await.expect("lists");
            let mut ids: BTreeSet<String> = listed.into_iter().map(|i| i.id.to_string()).collect();
            for lost in started.difference(&ids) {
                found.push(format!("the acknowledged start of {lost} is lost"));
            }
            ids.extend(acked.keys().map(|(id, _)| id.clone()));
            let (mut timer_entries, mut cancelled, mut late, mut lapsed) = (0, 0, 0, 0);
            for id in &ids {
                let history = match engine.history(id).await {
                    Ok(history) => history,
                    Err(EngineError::UnknownInstance { .. }) => {
                        found.push(format!("{id}, with acknowledged firings, is lost"));
                        continue;
                    }
                    Err(e) => panic!("the history of {id} does not read back: {e}"),
                };
                check_chain(id, &history);
                let read: Vec<(String, Option<String>)> = history
                    .iter()
                    .map(|e| (e.hash.clone(), e.timer.as_ref().map(|t| t.id.clone())))
                    .collect();
                let before = seen.insert(id.clone(), read.clone()).unwrap_or_default();
                for (seq, (hash, timer)) in before.iter().enumerate() {
                    match read.get(seq) {
                        Some((now, _)) if now == hash => {}
                        Some((_, again)) if timer.is_some() && again == timer => {
                            found.push(format!(
                                "{id}: timer {} fired twice: its firing at seq {seq}, read by \
                                 an earlier check, was replaced by another firing of it",
                                timer.as_deref().unwrap_or_default()
                            ));
                        }
                        now => found.push(format!(
                            "{id}: entry {seq} (firing timer {timer:?}) was read before and is \
                             now {} (firing {:?}): a step was redone",
                            if now.is_some() { "rewritten" } else { "gone" },
                            now.and_then(|(_, t)| t.as_ref()),
                        )),
                    }
                }
                let facts = match timer_facts(&history) {
                    Ok(facts) => facts,
                    Err(e) => {
                        found.push(format!("{id}: {e}\nits history: {history:#?}"));
                        continue;
                    }
                };
                let snapshot = engine.get(id).await.expect("a snapshot");
                let replayed = Instance::replay(&history)
                    .unwrap_or_else(|e| panic!("{id} does not replay: {e}"));
                if replayed.as_ref() != Some(&snapshot) {
                    found.push(format!(
                        "{id}: the snapshot is not the replay of the history\nsnapshot: \
                         {snapshot:#?}\nreplay: {replayed:#?}"
                    ));
                }
                let pending: BTreeSet<String> =
                    snapshot.timers.iter().map(|t| t.id.clone()).collect();
                if pending != facts.pending {
                    found.push(format!(
                        "{id}: the snapshot's timers {pending:?} are not the history's pending \
                         timers {:?}",
                        facts.pending
                    ));
                }
                let acks = acked.range((id.clone(), String::new())..);
                for ((_, timer), seq) in acks.take_while(|((i, _), _)| i == id) {
                    if facts.fired.get(timer) != Some(seq) {
                        found.push(format!(
                            "{id}: the acknowledged firing of timer {timer} at seq {seq} is \
                             not in the history (fired at {:?})",
                            facts.fired.get(timer)
                        ));
                    }
                }
                if at_end {
                    if !snapshot.finished {
                        found.push(format!("{id} is not final: {}", snapshot.state));
                    }
                    let due: BTreeSet<&String> = facts.armed.difference(&facts.cancelled).collect();
                    let fired: BTreeSet<&String> = facts.fired.keys().collect();
                    if due != fired {
                        found.push(format!(
                            "{id}: timers armed and not cancelled {due:?}, fired {fired:?}"
                        ));
                    }
                }
                timer_entries += facts.fired.len();
                cancelled += facts.cancelled.len();
                late += facts.late;
                lapsed += facts.lapsed;
            }
            (ids.len(), timer_entries, cancelled, late, lapsed)
        });
        self.totals.instances = instances;
        self.totals.timer_entries = timer_entries;
        self.totals.cancelled = cancelled;
        self.totals.late = late;
        self.totals.lapsed = lapsed;
        problems
    }

    /// The clock a day on: what is left fires once, and then nothing fires any more.
    fn finish(&mut self) {
        let dir = self.dir.path().to_path_buf();
        let later = read_clock(&dir) + chrono::Duration::days(1);
        write_clock(&dir, later);
        let clock = VirtualClock::new(later);
        let data = self.data();
        let fired = self.runtime.block_on(async {
            let engine = open(config(&data, &clock)).await.expect("opens");
            let fired = engine.run_due().await.expect("fires what is due");
            let again = engine.run_due().await.expect("runs");
            assert!(again.is_empty(), "a second run_due fired: {again:?}");
            fired
        });
        let fired: Vec<_> = fired
            .into_iter()
            .filter_map(|f| match f {
                Fired::Timer {
                    instance,
                    timer,
                    seq,
                    ..
                } => Some((instance, timer, seq)),
                Fired::Schedule { .. } => None,
            })
            .collect();
        self.totals.fired_at_end = fired.len();
        let problems = self.acknowledge(fired);
        self.found(problems, "the last run_due");
        let again = self.runtime.block_on(async {
            let engine = open(config(&data, &clock)).await.expect("opens again");
            engine.run_due().await.expect("runs")
        });
        assert!(again.is_empty(), "run_due after a reopen fired: {again:?}");
        let problems = self.check(true);
        self.found(problems, "the end");
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // Keep the evidence: the folder as the failed check found it.
            self.dir.disable_cleanup(true);
            eprintln!(
                "round {}: the folder is kept in {}",
                self.totals.rounds,
                self.dir.path().display()
            );
        }
    }
}

fn seed() -> u64 {
    std::env::var("SOPFLOW_TIMER_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        })
}

fn rounds() -> usize {
    std::env::var("SOPFLOW_TIMER_CRASH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20)
}

#[test]
fn timers_fire_exactly_once_across_sigkill() {
    let started = Instant::now();
    let seed = seed();
    eprintln!("seed {seed} (set SOPFLOW_TIMER_CRASH_SEED to replay the plan)");
    let mut harness = Harness::new(seed);
    for _ in 0..rounds() {
        harness.round();
    }
    harness.finish();
    let t = &harness.totals;
    let mut kills = t.kill_ms.clone();
    kills.sort_unstable();
    eprintln!(
        "seed {seed}: {} rounds, {} children killed {}-{} ms after spawn, {} clock jumps while \
         down; {} starts and {} firings acknowledged; {} more fired by the last run_due; at \
         the end {} instances, {} timer firings ({} late, {} lapsed), {} timers cancelled, \
         {:.1} s",
        t.rounds,
        kills.len(),
        kills.first().unwrap_or(&0),
        kills.last().unwrap_or(&0),
        t.clock_jumps,
        t.started_acks,
        t.fired_acks,
        t.fired_at_end,
        t.instances,
        t.timer_entries,
        t.late,
        t.lapsed,
        t.cancelled,
        started.elapsed().as_secs_f64(),
    );
    assert!(
        t.fired_acks >= t.rounds,
        "too few timers fired before a kill to test anything: {t:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// The negative control of the checker.

/// A copy of `entry` appended to `history` as its next step, sealed so that the chain and
/// every hash still verify: only the timer check can tell.
fn forge_next(history: &[Entry], entry: &Entry) -> Vec<Entry> {
    let last = history.last().expect("a history");
    let mut forged = entry.clone();
    forged.seq = last.seq + 1;
    forged.prev_hash = last.hash.clone();
    forged.at = last.at.max(forged.at);
    forged.seal();
    let mut out = history.to_vec();
    out.push(forged);
    out
}

#[test]
fn the_checker_flags_a_timer_fired_twice_or_after_its_cancellation() {
    let dir = tempfile::tempdir().expect("temp dir");
    let epoch = DateTime::parse_from_rfc3339(EPOCH)
        .expect("valid")
        .with_timezone(&Utc);
    let clock = VirtualClock::new(epoch);
    runtime().block_on(async {
        let engine = open(config(&dir.path().join("data"), &clock))
            .await
            .expect("opens");
        assert!(
            !engine.load_report().has_errors(),
            "the fixture loads: {:?}",
            engine.load_report().diagnostics
        );
        let start = || engine.start(WORKFLOW, StartRequest::new(clerk()));
        let reminded = start().await.expect("starts").instance.id;
        let closed = start().await.expect("starts").instance.id;
        let snoozed = start().await.expect("starts").instance.id;
        let fired = engine
            .advance_to(epoch + chrono::Duration::seconds(61))
            .await
            .expect("advances");
        assert_eq!(fired.len(), 3, "{fired:?}");
        engine
            .fire(&closed, Fire::new("close", clerk()))
            .await
            .expect("closes");
        engine
            .fire(&snoozed, Fire::new("snooze", clerk()))
            .await
            .expect("snoozes");
        // The snooze re-armed all three; the second reminder now lapses.
        engine
            .advance_to(epoch + chrono::Duration::seconds(61 + 180))
            .await
            .expect("advances");

        // Genuine histories pass.
        let history = engine.history(&reminded).await.expect("history");
        let facts = timer_facts(&history).expect("a genuine history passes");
        assert_eq!(facts.fired.len(), 3, "{facts:?}");
        assert!(facts.cancelled.is_empty() && facts.pending.is_empty());
        let closed_history = engine.history(&closed).await.expect("history");
        let facts = timer_facts(&closed_history).expect("a genuine history passes");
        assert_eq!((facts.fired.len(), facts.cancelled.len()), (1, 2));
        let snoozed_history = engine.history(&snoozed).await.expect("history");
        let facts = timer_facts(&snoozed_history).expect("a genuine history passes");
        assert_eq!((facts.fired.len(), facts.cancelled.len()), (4, 2));
        assert!(
            snoozed_history
                .iter()
                .any(|e| e.timer.as_ref().is_some_and(|t| t.refused.is_some())),
            "the second reminder lapsed after the snooze"
        );

        // The first reminder fired again, after the instance expired.
        let reminder = &history[1];
        assert_eq!(reminder.kind, EntryKind::Timer);
        let twice = forge_next(&history, reminder);
        check_chain(&reminded, &twice);
        let found = timer_facts(&twice).expect_err("a second firing is caught");
        assert!(found.contains("fired twice"), "{found}");

        // The first reminder fired again, right after itself: the snapshot no longer held it.
        let twice = forge_next(&history[..2], reminder);
        check_chain(&reminded, &twice);
        let found = timer_facts(&twice).expect_err("a second firing is caught");
        assert!(found.contains("fired twice"), "{found}");

        // The closed instance's deadline fired after `close` cancelled it.
        let cancelled_id = closed_history
            .last()
            .and_then(|e| e.timers_cancelled.last())
            .expect("close cancelled timers")
            .clone();
        let mut late = reminder.clone();
        late.instance = closed.as_str().into();
        late.timer.as_mut().expect("a firing").id = cancelled_id.clone();
        late.timers_cancelled = vec![cancelled_id];
        let late = forge_next(&closed_history, &late);
        check_chain(&closed, &late);
        let found = timer_facts(&late).expect_err("a cancelled timer's firing is caught");
        assert!(found.contains("cancelled"), "{found}");
    });
}
