//! `PgStore` itself on a real PostgreSQL (`SOPFLOW_TEST_POSTGRES`): a commit read back by
//! every reader, a duplicate (instance, seq) refused with nothing half-written, scans in key
//! order, a long log streamed through the cursor, errors that name the store without its
//! password. Without a database each test prints a SKIPPED line and passes, unless
//! `SOPFLOW_REQUIRE_POSTGRES` is set (`.ci/run` sets it).
//!
//! A store's methods block on the store's own runtime, so these tests are plain `#[test]`s,
//! never on an async thread.

mod support;

use chrono::{DateTime, Duration, Utc};
use sopflow::catalog::{self, Sources};
use sopflow::definition::Definition;
use sopflow::machine::{self, Actor, Command, Instance, Start};
use sopflow::script::Sandbox;
use sopflow::store::postgres::PgStore;
use sopflow::store::{Committed, Options, Query, Store, StoreError};
use std::process::{Command as Process, Stdio};
use std::sync::Arc;

/// A workflow with a timer and a readable number: `issued` -> `end` -> `ended`.
const PERMIT: &str = "id: permit
title: 许可
roles: {clerk: 职员}
initial: issued
states:
  issued:
    timers:
      - {after: 2 days, fire: end}
    on:
      end: {to: ended, roles: [clerk]}
  ended: {final: true}
";

fn definition() -> Arc<Definition> {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("permit.yaml"), PERMIT).expect("writes");
    let sources = Sources::read(&[dir.path().to_path_buf()]).expect("reads");
    let report = catalog::build(sources, &Sandbox::default());
    assert!(!report.has_errors(), "{:?}", report.diagnostics);
    report.catalog.definitions["permit"].clone()
}

fn at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-02T09:00:00+08:00")
        .expect("a time")
        .with_timezone(&Utc)
}

fn clerk() -> Actor {
    Actor::new("li", ["clerk"])
}

/// The start of `id`, with a business key and an idempotency key.
fn start(definition: &Definition, id: &str) -> Committed {
    let command = Start {
        id: id.to_string(),
        actor: clerk(),
        data: Default::default(),
        business_key: Some(format!("B-{id}")),
        parent: None,
        idempotency_key: Some(format!("key-{id}")),
        at: at(),
        number: None,
    };
    let entry = machine::start(definition, &command, &Sandbox::default()).expect("starts");
    let snapshot = Instance::begin(&entry).expect("begins");
    Committed::new(entry, snapshot).expect("encodes")
}

/// The `end` step after `before`.
fn end(definition: &Definition, before: &Instance) -> Committed {
    let command = Command {
        event: "end".into(),
        actor: clerk(),
        payload: Default::default(),
        idempotency_key: None,
        at: at() + Duration::hours(1),
        expected_seq: None,
    };
    let entry = machine::step(definition, before, &command, &Sandbox::default()).expect("steps");
    let mut after = before.clone();
    after.apply(&entry).expect("applies");
    Committed::new(entry, after).expect("encodes")
}

/// A fresh store in a database of its own, or `None` (skipped).
fn fresh(test: &str) -> Option<(PgStore, tempfile::TempDir)> {
    let server = support::postgres_or_skip(test)?;
    let dir = tempfile::tempdir().expect("temp dir");
    let url = support::postgres_database(&server, &dir.path().join(test));
    Some((PgStore::open(&url, Options::default()).expect("opens"), dir))
}

#[test]
fn a_commit_is_read_back_by_every_reader() {
    let Some((store, _dir)) = fresh("a_commit_is_read_back_by_every_reader") else {
        return;
    };
    let definition = definition();
    let one = start(&definition, "permit-1");
    let two = start(&definition, "permit-2");
    let ended = end(&definition, &one.snapshot);
    store
        .commit(&[one.clone(), two.clone(), ended.clone()])
        .expect("commits");

    let snapshot = store.instance("permit-1").expect("reads").expect("there");
    assert_eq!(snapshot, ended.snapshot, "the batch's last snapshot wins");
    assert_eq!(
        store.history("permit-1").expect("reads"),
        vec![one.entry.clone(), ended.entry.clone()]
    );
    assert_eq!(
        store.entry("permit-2", 0).expect("reads"),
        Some(two.entry.clone())
    );
    assert_eq!(store.entry("permit-2", 1).expect("reads"), None);
    assert_eq!(
        store.idempotent("key-permit-2").expect("reads"),
        Some(("permit-2".to_string(), 0))
    );
    let by_state = store
        .find(&Query {
            workflow: Some("permit".into()),
            state: Some("issued".into()),
            ..Query::default()
        })
        .expect("finds");
    assert_eq!(by_state, vec![two.snapshot.clone()]);
    let by_key = store
        .find(&Query {
            business_key: Some("B-permit-1".into()),
            ..Query::default()
        })
        .expect("finds");
    assert_eq!(by_key.len(), 1);
    let limited = store
        .find(&Query {
            limit: Some(1),
            ..Query::default()
        })
        .expect("finds");
    assert_eq!(limited[0].id, "permit-1", "in id order");
    // The ended permit's timer is gone with its step; the other's is queued, due in 2 days.
    let due = store
        .due_timers(at() + Duration::days(3), 10)
        .expect("reads");
    assert_eq!(due.len(), 1, "{due:?}");
    assert_eq!(due[0].instance, "permit-2");
    assert!(
        store.due_timers(at(), 10).expect("reads").is_empty(),
        "not early"
    );

    // Counts, marks and definitions.
    assert_eq!(
        store.last_number("permit").expect("reads"),
        2,
        "from the log"
    );
    store.set_last_number("permit", 7).expect("sets");
    assert_eq!(store.last_number("permit").expect("reads"), 7);
    store.set_last_sequence("permit", "2026", 3).expect("sets");
    assert_eq!(store.last_sequence("permit", "2026").expect("reads"), 3);
    assert_eq!(store.last_sequence("permit", "").expect("reads"), 0);
    assert_eq!(store.schedule_mark("permit/daily").expect("reads"), None);
    store.set_schedule_mark("permit/daily", at()).expect("sets");
    assert_eq!(
        store.schedule_mark("permit/daily").expect("reads"),
        Some(at())
    );

    let mut problems = Vec::new();
    store
        .check_derived(&mut |p| problems.push(p))
        .expect("checks");
    assert!(problems.is_empty(), "{problems:?}");
    assert!(store.recovered().is_empty());
}

#[test]
fn a_duplicate_step_is_a_conflict_and_writes_nothing_of_its_batch() {
    let Some((store, _dir)) =
        fresh("a_duplicate_step_is_a_conflict_and_writes_nothing_of_its_batch")
    else {
        return;
    };
    let definition = definition();
    let one = start(&definition, "permit-1");
    store.commit(std::slice::from_ref(&one)).expect("commits");
    // A batch with a new instance and a second seq 0 of permit-1: refused whole.
    let three = start(&definition, "permit-3");
    let mut again = start(&definition, "permit-1");
    again.entry.idempotency_key = None;
    let err = store
        .commit(&[three.clone(), again])
        .expect_err("a second permit-1 #0 is refused");
    assert!(
        matches!(&err, StoreError::Conflict { instance, seq: 0 } if instance == "permit-1"),
        "{err}"
    );
    assert!(err.to_string().contains("retry"), "says what to do: {err}");
    assert_eq!(
        store.instance("permit-3").expect("reads"),
        None,
        "nothing half-written"
    );
    assert_eq!(store.history("permit-3").expect("reads"), vec![]);
    assert_eq!(store.idempotent("key-permit-3").expect("reads"), None);
    assert_eq!(store.history("permit-1").expect("reads"), vec![one.entry]);
    // And the store goes on.
    store.commit(&[three]).expect("commits after a conflict");
}

#[test]
fn scans_come_in_key_order_and_a_long_log_streams() {
    let Some((store, _dir)) = fresh("scans_come_in_key_order_and_a_long_log_streams") else {
        return;
    };
    let definition = definition();
    // Ids whose byte order differs from a natural or a locale's order.
    let ids = ["permit-10", "permit-9", "permit-1", "permit-B", "permit-a"];
    let batch: Vec<Committed> = ids.iter().map(|id| start(&definition, id)).collect();
    store.commit(&batch).expect("commits");
    let scanned: Vec<String> = store
        .scan_log()
        .map(|r| r.expect("reads").instance)
        .collect();
    let mut sorted: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    sorted.sort();
    assert_eq!(scanned, sorted, "byte order, as sled's keys");
    let snapshots: Vec<String> = store
        .scan_snapshots()
        .map(|r| r.expect("reads").id)
        .collect();
    assert_eq!(snapshots, sorted);

    // More entries than a few cursor pages, in batches as the committer makes them.
    let many: Vec<Committed> = (0..2500)
        .map(|n| start(&definition, &format!("bulk-{n:05}")))
        .collect();
    for chunk in many.chunks(500) {
        store.commit(chunk).expect("commits");
    }
    let mut count = 0;
    let mut last = String::new();
    for record in store.scan_log() {
        let record = record.expect("reads");
        assert!(record.entry.is_ok(), "decodes");
        assert!(record.instance > last, "in order");
        last = record.instance;
        count += 1;
    }
    assert_eq!(count, 2500 + ids.len());
    // A scan dropped half-way leaves the store usable.
    let first_few: Vec<_> = store.scan_log().take(3).collect();
    assert_eq!(first_few.len(), 3);
    assert!(store.instance("bulk-00000").expect("reads").is_some());
}

#[test]
fn errors_name_the_store_without_its_password() {
    let Some(server) = support::postgres_or_skip("errors_name_the_store_without_its_password")
    else {
        return;
    };
    // Nothing listens on port 1.
    let err = PgStore::open(
        "postgres://sop:s3cret@127.0.0.1:1/sopflow",
        Options::default(),
    )
    .expect_err("unreachable");
    assert!(matches!(err, StoreError::Unreachable { .. }), "{err}");
    assert!(!err.to_string().contains("s3cret"), "{err}");
    assert!(
        err.to_string().contains("postgres://sop:***@127.0.0.1:1"),
        "{err}"
    );
    // An empty database is not created by a command that only reads.
    let dir = tempfile::tempdir().expect("temp dir");
    let url = support::postgres_database(&server, dir.path());
    let err = PgStore::open(
        &url,
        Options {
            create: false,
            ..Options::default()
        },
    )
    .expect_err("missing");
    assert!(matches!(err, StoreError::Missing { .. }), "{err}");
}

#[path = "support/readme.rs"]
mod readme;

/// The README's PostgreSQL block, run as written on a database of its own (the URL's host,
/// port and database replaced by the test server's; its password kept, which `trust`
/// ignores): the start prints what the README shows, the verify is clean, and `serve` names
/// the store with its password hidden.
#[test]
fn the_readme_postgres_section_runs_as_written() {
    let Some(server) = support::postgres_or_skip("the_readme_postgres_section_runs_as_written")
    else {
        return;
    };
    let readme = std::fs::read_to_string(support::project().join("README.md")).expect("the README");
    let section = readme
        .split("## Running on PostgreSQL")
        .nth(1)
        .expect("the section");
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("its block");
    let dir = tempfile::tempdir().expect("temp dir");
    let database = support::postgres_database(&server, &dir.path().join("readme"));
    // The README's password, on the test server's user, host, port and database.
    let url = database.replacen("://postgres@", "://postgres:secret@", 1);
    assert!(url.contains(":secret@"), "{url}");
    let mut ran = 0;
    for said in readme::commands(block) {
        let command = said.command.trim();
        if !command.starts_with("sopflow ") {
            // `createdb` (the test made the database) and the `export` (given below).
            continue;
        }
        let args: Vec<&str> = command["sopflow ".len()..].split_whitespace().collect();
        let mut run = Process::new(env!("CARGO_BIN_EXE_sopflow"));
        run.args(&args)
            .current_dir(support::project())
            .env("SOPFLOW_STORE", &url)
            .env("NO_COLOR", "1");
        if args == ["serve"] {
            let banner = serve_banner(run);
            let shown = said.prints.clone().expect("the README shows the banner");
            assert!(shown.contains("data in postgres://sopflow:***@"), "{shown}");
            assert!(
                banner.contains("data in postgres://postgres:***@"),
                "{banner}"
            );
            assert!(!banner.contains("secret"), "{banner}");
        } else {
            let output = run.output().expect("runs sopflow");
            let out = String::from_utf8_lossy(&output.stdout).into_owned();
            assert_eq!(
                output.status.code(),
                Some(said.exit),
                "`{command}`: {out}{}",
                String::from_utf8_lossy(&output.stderr)
            );
            let first = out
                .lines()
                .next()
                .unwrap_or_default()
                .trim_end()
                .to_string();
            let shown = said.prints.clone().unwrap_or_default();
            if args[0] == "start" {
                assert_eq!(first, shown, "`{command}`");
            } else {
                assert!(
                    first.starts_with("checked 1 instances, 1 entries"),
                    "{first}"
                );
                assert!(
                    shown.ends_with("every chain intact") && first.ends_with("every chain intact")
                );
            }
        }
        ran += 1;
    }
    assert_eq!(ran, 3, "start, verify and serve");
}

/// The first line `sopflow serve` prints on a loopback port, then stops it.
fn serve_banner(mut command: Process) -> String {
    use std::io::{BufRead, BufReader};
    let mut child = command
        .args(["--addr", "127.0.0.1:0", "--no-watch"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve starts");
    let stdout = child.stdout.take().expect("stdout");
    let banner = BufReader::new(stdout)
        .lines()
        .next()
        .and_then(Result::ok)
        .unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    banner
}

/// Two stores on one database, as two nodes: both open; a number, an idempotency key and a
/// step are each taken by one commit, the other failing having written nothing; a due timer is
/// claimed by one store until its lease runs out; a schedule's mark moves forward only.
#[test]
fn two_stores_share_a_database_and_the_database_decides_between_them() {
    let test = "two_stores_share_a_database_and_the_database_decides_between_them";
    let Some((one, dir)) = fresh(test) else {
        return;
    };
    let server = support::test_postgres().expect("a server");
    let url = support::postgres_database(&server, &dir.path().join(test));
    let two = PgStore::open(&url, Options::default()).expect("a second node opens");
    assert!(one.numbers_in_commit());
    let definition = definition();

    // A number: both claim permit-1; the second commit is refused and writes nothing.
    let claim = |mut step: Committed, n: u64| {
        step.numbers = Some(sopflow::store::NumberClaim {
            workflow: "permit".into(),
            n,
            sequence: Some(("2026".into(), n)),
        });
        step
    };
    one.commit(&[claim(start(&definition, "permit-1"), 1)])
        .expect("the first takes 1");
    let mut again = start(&definition, "permit-1b");
    again.entry.idempotency_key = None;
    let err = two.commit(&[claim(again, 1)]).expect_err("1 is taken");
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    assert!(err.lost_race());
    assert!(two.history("permit-1b").expect("reads").is_empty());
    assert_eq!(two.last_number("permit").expect("reads"), 1);
    assert_eq!(two.last_sequence("permit", "2026").expect("reads"), 1);
    // Numbers are taken in order only: 3 before 2 is refused.
    let err = two
        .commit(&[claim(start(&definition, "permit-3"), 3)])
        .expect_err("2 first");
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    two.commit(&[claim(start(&definition, "permit-2"), 2)])
        .expect("2 is next");
    assert_eq!(one.last_number("permit").expect("reads"), 2);

    // An idempotency key used on the other node first.
    let mut reused = start(&definition, "permit-9");
    reused.entry.idempotency_key = Some("key-permit-1".into());
    let reused = Committed::new(reused.entry, reused.snapshot).expect("encodes");
    let err = two.commit(&[reused]).expect_err("the key is taken");
    assert!(
        matches!(&err, StoreError::KeyTaken { key } if key == "key-permit-1"),
        "{err}"
    );
    assert!(two.instance("permit-9").expect("reads").is_none());

    // One step: the node that commits seq 1 second loses.
    let before = one.instance("permit-2").expect("reads").expect("there");
    one.commit(&[end(&definition, &before)])
        .expect("one ends it");
    let err = two
        .commit(&[end(&definition, &before)])
        .expect_err("already ended");
    assert!(
        matches!(&err, StoreError::Conflict { instance, seq: 1 } if instance == "permit-2"),
        "{err}"
    );

    // A due timer (permit-1's, in two days) goes to one node for the lease.
    let later = at() + Duration::days(3);
    let lease = std::time::Duration::from_millis(400);
    let claimed = one.claim_due_timers(later, 10, lease).expect("claims");
    assert_eq!(
        claimed
            .iter()
            .map(|t| t.instance.as_str())
            .collect::<Vec<_>>(),
        ["permit-1"]
    );
    assert!(
        two.claim_due_timers(later, 10, lease)
            .expect("claims")
            .is_empty(),
        "held by the first node's lease"
    );
    assert!(
        two.claim_due_timers(at(), 10, lease)
            .expect("claims")
            .is_empty(),
        "never before it is due"
    );
    std::thread::sleep(lease + std::time::Duration::from_millis(200));
    assert_eq!(
        two.claim_due_timers(later, 10, lease)
            .expect("claims")
            .len(),
        1,
        "the lease ran out: the other node may take it"
    );
    assert_eq!(two.due_timers(later, 10).expect("reads").len(), 1);

    // A schedule's first mark is set once; it moves forward only, once per occurrence.
    assert_eq!(
        one.first_schedule_mark("permit/daily", at())
            .expect("marks"),
        at()
    );
    assert_eq!(
        two.first_schedule_mark("permit/daily", later)
            .expect("marks"),
        at(),
        "the first mark stays"
    );
    assert!(
        one.advance_schedule_mark("permit/daily", later)
            .expect("moves")
    );
    assert!(
        !two.advance_schedule_mark("permit/daily", later)
            .expect("moves")
    );
    assert!(
        !two.advance_schedule_mark("permit/daily", at())
            .expect("moves")
    );
    assert_eq!(
        two.schedule_mark("permit/daily").expect("reads"),
        Some(later)
    );
}
