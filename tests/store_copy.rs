//! `sopflow store copy`: a sled store with real traffic (hot-work permits at every stage, a
//! bank reception that started a deposit as its child, timers armed, schedule marks, a console
//! session) copied into PostgreSQL has the same store digest, verifies clean there, and serves
//! the same instances; a second copy into the now non-empty database is refused.

mod support;

use serde_json::json;
use sopflow::engine::{Config, Engine, Fire, StartRequest};
use sopflow::machine::Actor;
use sopflow::store::{Options, StoreLocation, StoredSession};
use std::path::Path;
use std::process::Command;

fn sopflow(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_sopflow"))
        .args(args)
        .current_dir(support::project())
        .env_remove("SOPFLOW_STORE")
        .env("NO_COLOR", "1")
        .output()
        .expect("runs sopflow");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The shipped definitions and a lead that must be called back within 15 minutes (a timer).
fn sources() -> Vec<std::path::PathBuf> {
    let mut sources = support::shipped_sources();
    sources.push(support::project().join("tests/time/lead_callback.yaml"));
    sources
}

/// Permits at every stage, a reception that hands its customer to a deposit (a child), and a
/// lead waiting for its call back (a timer).
async fn traffic(data: &Path) -> Vec<String> {
    let engine = Engine::open(Config::new(data).sources(sources()))
        .await
        .expect("opens the sled store");
    let mut ids = Vec::new();
    let script: [(&str, &str, &str); 4] = [
        ("submit", "wang", "contractor"),
        ("approve", "zhao", "order_dept"),
        ("approve", "qian", "cs_dept"),
        ("approve", "sun", "project_gm"),
    ];
    for steps in [4, 2, 1, 0] {
        let started = engine
            .start(
                "hot_work_permit",
                StartRequest::new(Actor::new("wang", ["contractor"])),
            )
            .await
            .expect("starts");
        let id = started.instance.id.to_string();
        for (event, actor, role) in script.into_iter().take(steps) {
            let mut fire = Fire::new(event, Actor::new(actor, [role]));
            if event == "submit" {
                fire = fire.payload(json!({"notification_letter": "HW-2026-031", "applicant_seal": true, "operator_certificate": "T-4411"}));
            }
            engine.fire(&id, fire).await.expect("fires");
        }
        ids.push(id);
    }
    let staff = Actor::new("chen", ["reception_staff"]);
    let reception = engine
        .start("bank_reception", StartRequest::new(staff.clone()))
        .await
        .expect("starts a reception");
    let id = reception.instance.id.clone();
    engine
        .fire(
            &id,
            Fire::new("enquire", staff.clone())
                .payload(json!({"dress_and_badge_ok": true, "needs": "存款"})),
        )
        .await
        .expect("enquires");
    let handed = engine
        .fire(
            &id,
            Fire::new("guide_to_business_area", staff).payload(json!({"business_type": "deposit"})),
        )
        .await
        .expect("hands over to a deposit");
    ids.push(id.to_string());
    let children: Vec<String> = engine
        .list(sopflow::Query {
            workflow: Some("bank_deposit".into()),
            ..Default::default()
        })
        .await
        .expect("lists")
        .into_iter()
        .map(|i| i.id.to_string())
        .collect();
    assert_eq!(
        children.len(),
        1,
        "a deposit started as the child: {handed:?}"
    );
    ids.extend(children);
    let lead = engine
        .start(
            "lead_callback",
            StartRequest::new(Actor::new("zhao", ["cs"]))
                .data(json!({"salesperson": "li"}))
                .idempotency_key("lead-from-the-web-form-1"),
        )
        .await
        .expect("starts a lead");
    ids.push(lead.instance.id.to_string());
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sled_store_with_traffic_copies_into_postgres_with_the_same_digest_and_serves_there() {
    let Some(server) = support::postgres_or_skip("store copy") else {
        return;
    };
    let dir = tempfile::tempdir().expect("a temporary folder");
    let data = dir.path().join("data");
    let ids = traffic(&data).await;
    let session = StoredSession {
        user: "wang".into(),
        csrf: "sf_token".into(),
        created: chrono::Utc::now(),
        last_used: chrono::Utc::now(),
    };
    let sled = data.clone();
    let (timers, marks) = tokio::task::spawn_blocking(move || {
        let store =
            sopflow::store::open(&StoreLocation::Sled(sled), Options::default()).expect("opens");
        store
            .save_session("sha256:abc", &session)
            .expect("saves a session");
        let far = chrono::Utc::now() + chrono::Duration::days(3650);
        (
            store.due_timers(far, 10_000).expect("timers").len(),
            store.schedule_marks().expect("marks").len(),
        )
    })
    .await
    .expect("reads the sled store");
    assert!(timers > 0, "the traffic armed timers");
    assert!(marks > 0, "the schedules were marked");

    let url = support::postgres_database(&server, &dir.path().join("copy"));
    let from = data.display().to_string();
    let (code, out, err) = sopflow(&["store", "copy", "--from", &from, "--to", &url]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("copied {} instance(s)", ids.len())),
        "{out}"
    );
    assert!(out.contains("1 session(s)"), "{out}");
    let token = out
        .split("store digest ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the digest")
        .to_string();

    // Both sides give the digest the copy printed, and the copy verifies on its own.
    for store in [from.as_str(), url.as_str()] {
        let (code, out, err) = sopflow(&["audit", "verify", "--store", store, "--digest", &token]);
        assert_eq!(code, 0, "{store}: {out}{err}");
    }

    // Copying again into the database, which now holds the histories, is refused.
    let (code, out, err) = sopflow(&["store", "copy", "--from", &from, "--to", &url]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("already holds"), "{err}");

    // The copy serves the same instances, their timers and the session.
    let sled_engine = Engine::open(Config::new(&data).sources(sources()))
        .await
        .expect("opens sled");
    let mut before = Vec::new();
    for id in &ids {
        before.push(sled_engine.get(id).await.expect("on sled"));
    }
    drop(sled_engine);
    let pg = Engine::open(Config::at(StoreLocation::Postgres(url.clone())).sources(sources()))
        .await
        .expect("opens the copy");
    for instance in &before {
        let copied = pg.get(&instance.id).await.expect("in the copy");
        assert_eq!(
            serde_json::to_value(&copied).expect("json"),
            serde_json::to_value(instance).expect("json"),
            "{}",
            instance.id
        );
    }
    // The next step and the next number carry on in the copy.
    let fired = pg
        .fire(
            &ids[1],
            Fire::new("approve", Actor::new("qian", ["cs_dept"])),
        )
        .await
        .expect("the next review in the copy");
    assert_eq!(fired.entry.seq, before[1].seq + 1);
    let next = pg
        .start(
            "hot_work_permit",
            StartRequest::new(Actor::new("wang", ["contractor"])),
        )
        .await
        .expect("starts in the copy");
    assert_eq!(
        next.instance.id, "hot_work_permit-5",
        "numbers carried over"
    );
    let year = chrono::Datelike::year(&next.instance.created);
    assert_eq!(
        next.instance.number.as_deref(),
        Some(format!("DH-{year}-0005").as_str()),
        "readable numbers carried over"
    );
    let again = pg
        .start(
            "lead_callback",
            StartRequest::new(Actor::new("zhao", ["cs"]))
                .data(json!({"salesperson": "li"}))
                .idempotency_key("lead-from-the-web-form-1"),
        )
        .await
        .expect("the retried start");
    assert!(again.replayed, "the idempotency key carried over");
    drop(pg);
    let copy = url.clone();
    let (pg_timers, pg_session) = tokio::task::spawn_blocking(move || {
        let store = sopflow::store::open(&StoreLocation::Postgres(copy), Options::default())
            .expect("opens");
        let far = chrono::Utc::now() + chrono::Duration::days(3650);
        (
            store.due_timers(far, 10_000).expect("timers").len(),
            store.session("sha256:abc").expect("reads").map(|s| s.user),
        )
    })
    .await
    .expect("reads the copy");
    assert_eq!(pg_timers, timers, "the timers copied");
    assert_eq!(pg_session.as_deref(), Some("wang"));
}

#[path = "support/readme.rs"]
mod readme;

/// The README's copy block, run as written in a folder of its own holding the shipped
/// definitions, on a database of its own (the README's URL replaced by the test server's,
/// with the README's password, which `trust` ignores): each command prints what the README
/// shows, the password hidden.
#[test]
fn the_readme_copy_block_runs_as_written() {
    let Some(server) = support::postgres_or_skip("the_readme_copy_block_runs_as_written") else {
        return;
    };
    let readme = std::fs::read_to_string(support::project().join("README.md")).expect("README");
    let section = readme
        .split("## Running on PostgreSQL")
        .nth(1)
        .expect("the section");
    let block = section
        .split("```sh\n")
        .nth(4)
        .and_then(|rest| rest.split("```").next())
        .expect("the copy block, the section's third");
    let dir = tempfile::tempdir().expect("a temporary folder");
    support::copy_definitions(dir.path());
    let database = support::postgres_database(&server, &dir.path().join("readme"));
    let (scheme, rest) = database.split_once("://").expect("a URL");
    let (user, host) = rest.split_once('@').unwrap_or(("postgres", rest));
    let user = user.split(':').next().unwrap_or(user);
    let url = format!("{scheme}://{user}:secret@{host}");
    let shown = sopflow::store::location::redact_url(&url);
    let readme_url = "postgres://sopflow:secret@localhost:5432/sopflow";
    let mut ran = 0;
    for said in readme::commands(block) {
        let command = said.command.replace(readme_url, &url);
        let args: Vec<&str> = command
            .strip_prefix("sopflow ")
            .expect("a sopflow command")
            .split_whitespace()
            .collect();
        let output = Command::new(env!("CARGO_BIN_EXE_sopflow"))
            .args(&args)
            .current_dir(dir.path())
            .env_remove("SOPFLOW_STORE")
            .env("NO_COLOR", "1")
            .output()
            .expect("runs sopflow");
        let out = String::from_utf8_lossy(&output.stdout).into_owned();
        assert_eq!(
            output.status.code(),
            Some(said.exit),
            "`{}`: {out}{}",
            said.command,
            String::from_utf8_lossy(&output.stderr)
        );
        let expected = said
            .prints
            .clone()
            .expect("the README shows what it prints")
            .replace("postgres://sopflow:***@localhost:5432/sopflow", &shown);
        assert_eq!(
            out.lines().next().unwrap_or_default(),
            expected,
            "`{}`",
            said.command
        );
        assert!(!out.contains("secret"), "{out}");
        ran += 1;
    }
    assert_eq!(ran, 2, "start and copy");
}

/// A copy whose target ends up other than its source fails loudly: copied with
/// `--allow-non-empty` into a database that already held another store's histories, the
/// digests differ, and the copy says so and exits 1.
#[test]
fn a_copy_whose_digest_differs_from_its_source_fails() {
    let Some(server) = support::postgres_or_skip("a copy whose digest differs") else {
        return;
    };
    let dir = tempfile::tempdir().expect("a temporary folder");
    support::copy_definitions(dir.path());
    let run = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_sopflow"))
            .args(args)
            .current_dir(dir.path())
            .env_remove("SOPFLOW_STORE")
            .env("NO_COLOR", "1")
            .output()
            .expect("runs sopflow");
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (code, _, err) = run(&[
        "start",
        "hot_work_permit",
        "--actor",
        "wang",
        "--role",
        "contractor",
        "--data-dir",
        "./one",
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(&[
        "start",
        "bank_reception",
        "--actor",
        "chen",
        "--role",
        "reception_staff",
        "--data-dir",
        "./two",
    ]);
    assert_eq!(code, 0, "{err}");
    let url = support::postgres_database(&server, &dir.path().join("target"));
    let (code, out, err) = run(&["store", "copy", "--from", "./one", "--to", &url]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = run(&[
        "store",
        "copy",
        "--from",
        "./two",
        "--to",
        &url,
        "--allow-non-empty",
    ]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("does not match its source"), "{err}");
    assert!(err.contains("do not use the target"), "{err}");
}
