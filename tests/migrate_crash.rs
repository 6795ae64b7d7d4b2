//! A migration killed mid-way: `sopflow migrate apply` over a sled store of a few hundred
//! running instances is killed with SIGKILL at random moments and run again, until one run
//! finishes by itself. After every kill the parent opens the store and checks that each
//! instance was migrated once or not at all: at most one `migrate` entry, its version the new
//! one exactly when it has that entry, every instance the killed run reported migrated among
//! them, every chain intact and every snapshot its history's replay. At the end every instance
//! is on the new version with exactly one `migrate` entry, audit verify and replay are clean,
//! and one more apply moves nothing.
//!
//! `the_check_finds_an_instance_migrated_twice` is the negative control of the check: an
//! instance moved on to a third version has two `migrate` entries, which it must refuse.
//!
//! `SOPFLOW_MIGRATE_CRASH_ROUNDS` caps the killed runs (default 8); `SOPFLOW_MIGRATE_CRASH_SEED`
//! replays the kill delays (the moments still depend on timing).

mod support;

use serde_json::{Value, json};
use sopflow::engine::{Config, Engine, Fire, StartRequest};
use sopflow::machine::{Actor, EntryKind};
use sopflow::store::Query;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const INSTANCES: usize = 300;

fn defs(dir: &Path, version_two: bool) -> Vec<PathBuf> {
    defs_with(
        dir,
        if version_two {
            "    default: 1000\n"
        } else {
            "    default: 200\n"
        },
    )
}

/// The expense approval with the property manager's limit line replaced by `limit`.
fn defs_with(dir: &Path, limit: &str) -> Vec<PathBuf> {
    let root = support::project();
    let workflows = dir.join("defs/workflows");
    let rules = dir.join("defs/rules");
    std::fs::create_dir_all(&workflows).expect("a folder");
    std::fs::create_dir_all(&rules).expect("a folder");
    let mut text =
        std::fs::read_to_string(root.join("workflows/expense_approval.yaml")).expect("reads");
    assert!(text.contains("    default: 200\n"));
    text = text.replacen("    default: 200\n", limit, 1);
    std::fs::write(workflows.join("expense_approval.yaml"), text).expect("writes");
    std::fs::copy(root.join("rules/expense.rhai"), rules.join("expense.rhai")).expect("copies");
    vec![workflows, rules]
}

fn config(dir: &Path) -> Config {
    Config::new(dir.join("data")).sources(vec![dir.join("defs/workflows"), dir.join("defs/rules")])
}

/// When a run is killed.
#[derive(Debug, Clone, Copy)]
enum Kill {
    After(Duration),
    AfterReported(usize),
}

/// A small xorshift: the kill delays.
struct Random(u64);

impl Random {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// What the store says after a run: (migrated ids, instances still on version 1). Fails on
/// any instance migrated twice, on a version that does not match its history, on a broken
/// chain, or on a snapshot that is not its history's replay.
async fn check(dir: &Path, v2: &str, count: usize) -> (BTreeSet<String>, usize) {
    let engine = Engine::open(config(dir)).await.expect("the store opens");
    let instances = engine
        .list(Query {
            workflow: Some("expense_approval".into()),
            limit: Some(count + 10),
            ..Query::default()
        })
        .await
        .expect("lists");
    assert_eq!(instances.len(), count);
    let mut migrated = BTreeSet::new();
    let mut left = 0;
    for instance in &instances {
        let history = engine.history(&instance.id).await.expect("a history");
        let moves = history
            .iter()
            .filter(|e| e.kind == EntryKind::Migrate)
            .count();
        assert!(moves <= 1, "{} was migrated {moves} times", instance.id);
        assert_eq!(
            instance.version == v2,
            moves == 1,
            "{}: version {} with {moves} migrate entries",
            instance.id,
            instance.version
        );
        if moves == 1 {
            assert_eq!(history.last().map(|e| e.kind), Some(EntryKind::Migrate));
            migrated.insert(instance.id.to_string());
        } else {
            left += 1;
        }
    }
    support::assert_verifies(&engine).await;
    (migrated, left)
}

fn apply(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sopflow"));
    command
        .args(["migrate", "apply", "expense_approval", "--to", "current"])
        .args([
            "--actor",
            "boss",
            "--role",
            "process_owner",
            "--format",
            "json",
        ])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--workflows")
        .arg(dir.join("defs/workflows"))
        .arg("--rules")
        .arg(dir.join("defs/rules"))
        .arg("--calendars")
        .arg(dir.join("no-calendars"))
        .env_remove("SOPFLOW_STORE")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apply_killed_at_random_moments_migrates_each_instance_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    defs(dir.path(), false);
    {
        let engine = Engine::open(config(dir.path())).await.expect("opens");
        for i in 0..INSTANCES {
            let applicant = Actor::new(format!("applicant-{i}"), ["applicant"]);
            let id = engine
                .start("expense_approval", StartRequest::new(applicant.clone()))
                .await
                .expect("starts")
                .instance
                .id;
            let amount = [150, 600, 5000][i % 3];
            engine
                .fire(
                    &id,
                    Fire::new("submit", applicant).payload(json!({
                        "department": "工程部", "expense_item": "维修", "amount": amount, "budget_type": "in"
                    })),
                )
                .await
                .expect("submits");
        }
    }
    defs(dir.path(), true);
    let v2 = {
        let engine = Engine::open(config(dir.path())).await.expect("opens");
        engine.latest_versions()["expense_approval"].clone()
    };

    let rounds: usize = std::env::var("SOPFLOW_MIGRATE_CRASH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(8);
    let seed = std::env::var("SOPFLOW_MIGRATE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        });
    eprintln!("seed {seed} (SOPFLOW_MIGRATE_CRASH_SEED replays it)");
    let mut random = Random(seed);
    let mut partial = 0;
    let mut finished = false;
    for round in 0..=rounds {
        let mut child = apply(dir.path()).spawn().expect("spawns sopflow");
        let stdout = child.stdout.take().expect("stdout");
        // Lines are read on a thread, so that what the child acknowledged before the kill is
        // known (a line cut short by the kill is not counted).
        let (lines, acks) = std::sync::mpsc::channel::<()>();
        let reader = std::thread::spawn(move || {
            let mut acknowledged = Vec::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(value) = serde_json::from_str::<Value>(&line)
                    && value["outcome"] == "migrated"
                {
                    acknowledged.push(
                        value["entry"]["instance"]
                            .as_str()
                            .unwrap_or("")
                            .to_string(),
                    );
                    let _ = lines.send(());
                }
            }
            acknowledged
        });
        // Killed after a random delay, or (two rounds in three) once it has reported a random
        // number of instances migrated, so that most kills land in the middle of the moves.
        // The last round is never killed: it must finish what the others left.
        let kill = (round < rounds).then(|| {
            if random.below(3) == 0 {
                Kill::After(Duration::from_millis(20 + random.below(1200)))
            } else {
                Kill::AfterReported(1 + random.below(40) as usize)
            }
        });
        let began = Instant::now();
        let mut reported = 0;
        let exited = loop {
            if let Some(status) = child.try_wait().expect("waits") {
                break Some(status);
            }
            reported += acks.try_iter().count();
            let now = match kill {
                Some(Kill::After(delay)) => began.elapsed() >= delay,
                Some(Kill::AfterReported(n)) => reported >= n,
                None => false,
            };
            if now {
                child.kill().expect("kills");
                child.wait().expect("reaps");
                break None;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        let ran = began.elapsed();
        let acknowledged = reader.join().expect("reads");
        let (migrated, left) = check(dir.path(), &v2, INSTANCES).await;
        for id in &acknowledged {
            assert!(
                migrated.contains(id),
                "{id} was reported migrated, but is not"
            );
        }
        eprintln!(
            "round {round} ({kill:?}): {} after {:?}; {} reported migrated, {} migrated in all, {left} left",
            if exited.is_some() {
                "finished"
            } else {
                "killed"
            },
            ran,
            acknowledged.len(),
            migrated.len()
        );
        if left > 0 && !migrated.is_empty() {
            partial += 1;
        }
        if let Some(status) = exited {
            assert!(status.success(), "the apply failed: {status}");
            assert_eq!(left, 0, "a finished apply left instances");
            finished = true;
            break;
        }
    }
    assert!(finished, "no apply finished");
    eprintln!("{partial} run(s) were killed part-way");

    // Everything moved once; the audit is clean; applying again moves nothing.
    let engine = Engine::open(config(dir.path())).await.expect("opens");
    let mut differences = 0;
    let summary = engine
        .replay_all(&mut |report| differences += report.differences.len())
        .await
        .expect("replays");
    assert_eq!((summary.differences, differences), (0, 0));
    assert_eq!(summary.instances as usize, INSTANCES);
    drop(engine);
    let again = apply(dir.path()).output().expect("runs");
    assert!(again.status.success());
    let last: Value = String::from_utf8_lossy(&again.stdout)
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .expect("a summary line");
    assert_eq!(last["summary"]["considered"], 0, "{last}");
    assert_eq!(last["summary"]["current"], INSTANCES as u64, "{last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_check_finds_an_instance_migrated_twice() {
    let dir = tempfile::tempdir().expect("temp dir");
    defs(dir.path(), false);
    let owner = Actor::new("boss", ["process_owner"]);
    let engine = Engine::open(config(dir.path())).await.expect("opens");
    for _ in 0..3 {
        engine
            .start(
                "expense_approval",
                StartRequest::new(Actor::new("xu", ["applicant"])),
            )
            .await
            .expect("starts");
    }
    defs(dir.path(), true);
    engine.reload().await.expect("reloads");
    let v2 = engine.latest_versions()["expense_approval"].clone();
    let moved = engine
        .migrate(
            sopflow::engine::MigrationRequest::new("expense_approval", "current", owner.clone()),
            |_| {},
        )
        .await
        .expect("migrates");
    assert_eq!(moved.clean, 3);
    drop(engine);
    // Clean as it is.
    let (migrated, left) = check(dir.path(), &v2, 3).await;
    assert_eq!((migrated.len(), left), (3, 0));

    // One instance moved on to a third version: two `migrate` entries.
    defs_with(dir.path(), "    default: 300\n");
    {
        let engine = Engine::open(config(dir.path())).await.expect("opens");
        let mut one = sopflow::engine::MigrationRequest::new("expense_approval", "current", owner);
        one.only = vec!["expense_approval-2".into()];
        engine.migrate(one, |_| {}).await.expect("migrates");
    }
    let path = dir.path().to_path_buf();
    let checked = tokio::spawn(async move { check(&path, &v2, 3).await }).await;
    let panic = checked.expect_err("the check refuses the store");
    let message = panic.into_panic();
    let text = message
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(
        text.contains("expense_approval-2 was migrated 2 times"),
        "{text}"
    );
}
