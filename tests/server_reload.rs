//! Hot reload: a process owner edits a workflow while the server runs. A valid edit becomes
//! the version new instances start on, running instances keep theirs; an edit with errors
//! changes nothing and the errors are kept for the console; never a half-loaded set.

mod support;

use serde_json::json;
use sopflow::engine::{Fire, StartRequest};
use sopflow::machine::Actor;
use sopflow::server::reload::Attempt;
use std::time::Duration;

/// Writes `text` to `file` and waits until the watcher has recorded an attempt after the
/// `count` earlier ones. The server starts its watcher in its own task, so the first write
/// may come before the watcher does: while no attempt comes, the same text is written again
/// every 2 s (a reload of unchanged files changes nothing, and the first attempt is the one
/// returned).
async fn edit_and_wait(
    server: &support::TestServer,
    count: usize,
    file: &std::path::Path,
    text: &str,
) -> Attempt {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut written = std::time::Instant::now();
    std::fs::write(file, text).expect("writes");
    loop {
        let attempts = server.state.reloads.all();
        if attempts.len() > count {
            return attempts[count].clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no reload within 20 s after the edit"
        );
        if written.elapsed() > Duration::from_secs(2) {
            std::fs::write(file, text).expect("writes");
            written = std::time::Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn contractor() -> Actor {
    Actor::new("wang", ["contractor"])
}

fn submitted() -> serde_json::Value {
    json!({"notification_letter": "HW-1", "applicant_seal": true, "operator_certificate": "T-1"})
}

#[tokio::test(flavor = "multi_thread")]
async fn an_edit_while_serving_changes_new_instances_and_leaves_running_ones_on_their_version() {
    let defs = tempfile::tempdir().expect("a temporary folder");
    let sources = support::copy_definitions(defs.path());
    let server = support::spawn_with(sources, true).await;
    let engine = server.state.engine.clone();
    let file = defs.path().join("workflows/hot_work_permit.yaml");

    let old = engine
        .start("hot_work_permit", StartRequest::new(contractor()))
        .await
        .expect("starts");
    let v1 = old.instance.version.clone();

    // A process owner renames the first review and adds a state: a valid edit.
    let text = std::fs::read_to_string(&file).expect("reads");
    let edited = text.replace("title: 秩序维护部初审\n", "title: 秩序维护部初审(新版)\n");
    assert_ne!(text, edited, "the edit applies to the shipped file");
    let before = server.state.reloads.all().len();
    let attempt = edit_and_wait(&server, before, &file, &edited).await;
    assert_eq!(attempt.result, "applied", "{attempt:?}");
    assert_eq!(attempt.changed.len(), 1, "only the edited workflow changed");
    assert_eq!(attempt.changed[0].0, "hot_work_permit");
    assert_eq!(attempt.changed[0].1.as_deref(), Some(v1.as_str()));
    let v2 = attempt.changed[0].2.clone();

    let new = engine
        .start("hot_work_permit", StartRequest::new(contractor()))
        .await
        .expect("starts on the new version");
    assert_eq!(new.instance.version, v2);
    let title = engine
        .definition(&v2)
        .expect("v2")
        .workflow
        .states
        .get("security_review")
        .and_then(|s| s.title.clone());
    assert_eq!(title.as_deref(), Some("秩序维护部初审(新版)"));

    // The running instance stays on its version and keeps working.
    let moved = engine
        .fire(
            &old.instance.id,
            Fire::new("submit", contractor()).payload(submitted()),
        )
        .await
        .expect("the old instance moves on");
    assert_eq!(moved.instance.version, v1);
    assert_eq!(moved.instance.state, "security_review");
    let li = Actor::new("li", ["order_dept"]);
    let tasks = engine
        .tasks(&li, sopflow::store::Query::default(), false)
        .await
        .expect("li's tasks");
    assert!(
        tasks.iter().any(|t| t.instance.id == old.instance.id),
        "an instance on the old version is still in the inbox"
    );

    // A broken edit: nothing changes, and the errors are kept.
    let before = server.state.reloads.all().len();
    let broken = edited.replace("initial: drafted", "initial: nowhere");
    let attempt = edit_and_wait(&server, before, &file, &broken).await;
    assert_eq!(attempt.result, "rejected", "{attempt:?}");
    assert!(attempt.errors > 0);
    assert!(
        attempt
            .diagnostics
            .iter()
            .any(|d| d.file.ends_with("hot_work_permit.yaml")),
        "the errors name the file: {:?}",
        attempt.diagnostics
    );
    assert_eq!(engine.latest_versions()["hot_work_permit"], v2);
    let still = engine
        .start("hot_work_permit", StartRequest::new(contractor()))
        .await
        .expect("still starts");
    assert_eq!(still.instance.version, v2, "the version in force stays");
    assert!(
        !engine.load_report().has_errors(),
        "the report in force is the valid one"
    );

    // Fixing the file puts the fixed version in force (the same as v2: same text).
    let before = server.state.reloads.all().len();
    let attempt = edit_and_wait(&server, before, &file, &edited).await;
    assert_eq!(attempt.result, "unchanged", "{attempt:?}");
    assert_eq!(engine.latest_versions()["hot_work_permit"], v2);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rule_edit_is_a_new_version_and_a_removed_workflow_cannot_be_started() {
    let defs = tempfile::tempdir().expect("a temporary folder");
    let sources = support::copy_definitions(defs.path());
    let server = support::spawn_with(sources, false).await;
    let engine = server.state.engine.clone();
    let before = engine.latest_versions();

    // Rules are part of a version: editing one makes new versions of the workflows using it.
    let rules = defs.path().join("rules/expense.rhai");
    let text = std::fs::read_to_string(&rules).expect("reads");
    std::fs::write(&rules, format!("{text}\n// reviewed\n")).expect("writes");
    let attempt = server.state.reload_now().await;
    assert_eq!(attempt.result, "applied", "{attempt:?}");
    assert!(
        attempt
            .changed
            .iter()
            .any(|(id, _, _)| id == "expense_approval"),
        "{:?}",
        attempt.changed
    );
    assert!(
        attempt
            .changed
            .iter()
            .all(|(id, _, _)| id != "hot_work_permit")
    );

    // A removed workflow: running instances go on, new ones cannot start.
    let running = engine
        .start("hot_work_permit", StartRequest::new(contractor()))
        .await
        .expect("starts");
    std::fs::remove_file(defs.path().join("workflows/hot_work_permit.yaml")).expect("removes");
    // renovation_approval starts hot-work permits as children: removing the file alone is an
    // error, so the whole set is refused and nothing changes.
    let attempt = server.state.reload_now().await;
    assert_eq!(attempt.result, "rejected", "{attempt:?}");
    assert_eq!(
        engine.latest_versions()["hot_work_permit"],
        before["hot_work_permit"]
    );
    engine
        .start("hot_work_permit", StartRequest::new(contractor()))
        .await
        .expect("still startable: the set with the removal was refused");
    let moved = engine
        .fire(
            &running.instance.id,
            Fire::new("submit", contractor()).payload(submitted()),
        )
        .await
        .expect("the running instance moves on");
    assert_eq!(moved.instance.state, "security_review");

    // A workflow nothing refers to can be removed: it cannot be started any more.
    std::fs::copy(
        support::project().join("workflows/hot_work_permit.yaml"),
        defs.path().join("workflows/hot_work_permit.yaml"),
    )
    .expect("puts the file back");
    std::fs::remove_file(defs.path().join("workflows/bank_reception.yaml")).expect("removes");
    let attempt = server.state.reload_now().await;
    assert_eq!(attempt.result, "applied", "{attempt:?}");
    assert_eq!(attempt.removed, ["bank_reception"]);
    let refused = engine
        .start(
            "bank_reception",
            StartRequest::new(Actor::new("x", ["reception_staff"])),
        )
        .await
        .expect_err("removed");
    assert_eq!(refused.code(), "unknown_workflow");
    server.stop().await;
}
