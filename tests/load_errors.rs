//! A workflow that fails to load: `Engine::open` says so, with the file and the finding,
//! unless the application opts in to run with the workflows that did load.

use sopflow::{Actor, Config, Engine, EngineError, StartRequest};
use std::path::Path;

const GOOD: &str = "id: permit\ntitle: 许可\nroles: {clerk: 职员}\ninitial: issued\nstates:\n  issued:\n    on:\n      end: {to: ended, roles: [clerk]}\n  ended: {final: true}\n";

/// A leave request whose approval goes to a state nobody declared (`aproved`).
const BROKEN: &str = "id: leave_request\ntitle: 请假\nroles: {staff: 员工}\ninitial: asked\nstates:\n  asked:\n    on:\n      approve: {to: aproved, roles: [staff]}\n  approved: {final: true}\n";

fn workflows(dir: &Path) -> std::path::PathBuf {
    let defs = dir.join("workflows");
    std::fs::create_dir_all(&defs).expect("creates");
    std::fs::write(defs.join("permit.yaml"), GOOD).expect("writes");
    std::fs::write(defs.join("leave_request.yaml"), BROKEN).expect("writes");
    defs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_fails_naming_the_file_and_the_finding() {
    let dir = tempfile::tempdir().expect("temp dir");
    let defs = workflows(dir.path());
    let data = dir.path().join("data");
    let err = Engine::open(Config::new(&data).sources(vec![defs]))
        .await
        .expect_err("a workflow with an error fails the open");
    assert_eq!(err.code(), "definitions_invalid");
    let message = err.to_string();
    for said in [
        "leave_request.yaml",
        "E101",
        "aproved",
        "sopflow validate",
        "allow_load_errors",
    ] {
        assert!(message.contains(said), "{said} in: {message}");
    }
    assert!(
        !message.contains("permit.yaml"),
        "only the failing file is named: {message}"
    );
    let EngineError::DefinitionsInvalid { report } = err else {
        panic!("a typed error")
    };
    assert_eq!(report.errors(), 1, "{:?}", report.diagnostics);
    assert!(
        report.catalog.get("permit").is_some(),
        "the report still holds what did load"
    );
    assert!(
        !data.exists(),
        "nothing is written when the definitions fail"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_application_may_opt_in_to_run_with_what_loaded() {
    let dir = tempfile::tempdir().expect("temp dir");
    let defs = workflows(dir.path());
    let engine = Engine::open(
        Config::new(dir.path().join("data"))
            .sources(vec![defs])
            .allow_load_errors(),
    )
    .await
    .expect("opens with what loaded");
    assert_eq!(engine.workflows(), ["permit"]);
    let report = engine.load_report();
    assert!(report.has_errors());
    assert!(
        report
            .diagnostics
            .iter()
            .any(|d| d.file.ends_with("leave_request.yaml") && d.is_error()),
        "{:?}",
        report.diagnostics
    );
    let clerk = Actor::new("he", ["clerk"]);
    engine
        .start("permit", StartRequest::new(clerk.clone()))
        .await
        .expect("the workflow that loaded runs");
    let refused = engine
        .start("leave_request", StartRequest::new(clerk))
        .await
        .expect_err("the one with an error is left out");
    assert_eq!(refused.code(), "unknown_workflow");
}
