//! `sopflow test` as a process owner runs it: scenario files in YAML, pass or fail per
//! scenario with the first mismatch at its line, JSON, coverage and the exit status.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn sopflow(args: &[&str], workflows: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sopflow"))
        .arg("test")
        .args(args)
        .arg("--workflows")
        .arg(workflows)
        .current_dir(root())
        .output()
        .expect("run sopflow")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn the_shipped_scenarios_pass_and_cover_every_transition() {
    let output = sopflow(&["--coverage"], &root().join("workflows"));
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{out}");
    assert!(out.trim_end().ends_with(" passed, 0 failed"), "{out}");
    assert!(
        out.contains("hot_work_permit  transitions 12/12  timers 0/0  refusals 12/12"),
        "{out}"
    );
    assert!(!out.contains("untested"), "{out}");
}

#[test]
fn scenarios_move_the_virtual_clock_across_the_calendar() {
    let output = sopflow(&["tests/time/scenarios"], &root().join("tests/time"));
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{out}");
    assert!(out.contains("PASS "), "{out}");
    assert!(out.trim_end().ends_with("1 passed, 0 failed"), "{out}");
}

#[test]
fn a_failing_scenario_names_its_line_and_exits_1() {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = std::fs::read_to_string(root().join("tests/time/scenarios/lead_callback.yaml"))
        .expect("scenario")
        .replace("- advance: 1 minute", "- advance: 30 seconds");
    let file = dir.path().join("lead_callback.yaml");
    std::fs::write(&file, text).expect("writes");
    let path = file.to_str().expect("utf-8 path");
    let output = sopflow(&[path], &root().join("tests/time"));
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    // `30 seconds` is not a duration: the step on line 14 is where it stops.
    assert!(out.contains(&format!("FAIL {path}:14:9")), "{out}");
    assert!(out.contains("`advance: 30 seconds`"), "{out}");
    assert!(out.trim_end().ends_with("0 passed, 1 failed"), "{out}");

    let json = sopflow(&[path, "--format", "json"], &root().join("tests/time"));
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
    assert_eq!(value["failed"], 1);
    assert_eq!(value["scenarios"][0]["failure"]["line"], 14);
}

#[test]
fn a_wrong_expectation_is_shown_against_what_happened() {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = std::fs::read_to_string(root().join("tests/time/scenarios/lead_callback.yaml"))
        .expect("scenario")
        .replace("state: overdue, timers: []", "state: contacted, timers: []");
    let file = dir.path().join("lead_callback.yaml");
    std::fs::write(&file, text).expect("writes");
    let output = sopflow(
        &[file.to_str().expect("utf-8 path")],
        &root().join("tests/time"),
    );
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(
        out.contains("expected state `contacted`, found `overdue`"),
        "{out}"
    );
}

#[test]
fn a_malformed_scenario_file_is_reported_with_its_place() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("broken.yaml");
    std::fs::write(
        &file,
        "workflow: lead_callback\nscenarios:\n  - name: x\n    steps:\n      - strat: {actor: a, roles: [cs]}\n",
    )
    .expect("writes");
    let path = file.to_str().expect("utf-8 path");
    let output = sopflow(&[path], &root().join("tests/time"));
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(out.contains(&format!("FAIL {path}:5:")), "{out}");
    assert!(out.contains("unknown key `strat`"), "{out}");
    assert!(out.contains("did you mean `start`?"), "{out}");
}

#[test]
fn paths_cover_every_transition_and_their_skeleton_runs() {
    let output = Command::new(env!("CARGO_BIN_EXE_sopflow"))
        .args(["paths", "hot_work_permit", "--format", "json"])
        .current_dir(root())
        .output()
        .expect("run sopflow");
    assert_eq!(output.status.code(), Some(0));
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let mut taken: Vec<String> = value["covering"]
        .as_array()
        .expect("paths")
        .iter()
        .flat_map(|path| path.as_array().cloned().unwrap_or_default())
        .map(|edge| format!("{}.{}->{}", edge["from"], edge["event"], edge["to"]))
        .collect();
    taken.sort();
    taken.dedup();
    assert_eq!(taken.len(), 12, "{taken:?}");
    let shortest = value["shortest"].as_array().expect("states");
    assert_eq!(shortest.len(), 9, "every state is reachable");

    // The skeleton of a workflow without guards or payload placeholders runs as it is.
    let skeleton = Command::new(env!("CARGO_BIN_EXE_sopflow"))
        .args([
            "paths",
            "tests/time/lead_callback.yaml",
            "--format",
            "scenario",
        ])
        .current_dir(root())
        .output()
        .expect("run sopflow");
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("generated.yaml");
    std::fs::write(
        &file,
        String::from_utf8_lossy(&skeleton.stdout).replace("TODO", "li"),
    )
    .expect("writes");
    let output = sopflow(
        &[file.to_str().expect("utf-8 path"), "--coverage"],
        &root().join("tests/time"),
    );
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{out}");
    assert!(
        out.contains("lead_callback  transitions 4/4  timers 1/1"),
        "{out}"
    );
}

/// `params:` sets a workflow's parameters for a scenario: the rota a process owner sets decides
/// who may take the duty; a value that does not fit, or a parameter the workflow lacks, fails
/// the scenario at its `params:` line with the validator's code and the nearest name.
#[test]
fn params_set_parameters_and_a_bad_value_fails_at_its_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let scenario = |params: &str, who: &str, refused: &str| {
        format!(
            "workflow: duty_rota\nclock: \"2026-03-04T18:00:00+08:00\"\nscenarios:\n  - name: 周三\n    params: {params}\n    steps:\n      - start: {{actor: s, roles: [cs_supervisor], data: {{shift: weekday_after_hours}}}}\n      - fire: {{event: check_in, actor: {who}, roles: [cs_agent]}}\n{refused}"
        )
    };
    let run = |name: &str, text: String| {
        let file = dir.path().join(name);
        std::fs::write(&file, text).expect("writes");
        let path = file.to_str().expect("utf-8 path").to_string();
        let output = sopflow(&[&path], &root().join("workflows"));
        (path, output.status.code(), stdout(&output))
    };
    let rota = r#"{weekday_rota: "zhang, li, wang", rota_start: "2026-03-02"}"#;
    // Wednesday is wang's turn under the rota; with the defaults (no rota) anyone may come.
    let (_, code, out) = run("wang.yaml", scenario(rota, "wang", ""));
    assert_eq!(code, Some(0), "{out}");
    let (_, code, out) = run(
        "zhang.yaml",
        scenario(rota, "zhang", "        refused: guard_failed\n"),
    );
    assert_eq!(code, Some(0), "{out}");
    let (_, code, out) = run(
        "default.yaml",
        scenario("{}", "zhang", "        refused: guard_failed\n"),
    );
    assert_eq!(code, Some(1), "without the rota, zhang may come: {out}");

    let (path, code, out) = run("typo.yaml", scenario("{weekday_rotaa: x}", "wang", ""));
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains(&format!("FAIL {path}:5:13")), "{out}");
    assert!(
        out.contains("E203") && out.contains("did you mean `weekday_rota`?"),
        "{out}"
    );
    let (path, code, out) = run("type.yaml", scenario("{weekday_rota: 5}", "wang", ""));
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains(&format!("FAIL {path}:5:13")), "{out}");
    assert!(
        out.contains("E207") && out.contains("`weekday_rota`"),
        "{out}"
    );
}

/// The README's `params:` example is a scenario of the shipped file it names, which passes.
#[test]
fn the_readme_params_example_is_a_shipped_scenario() {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README");
    let shipped =
        std::fs::read_to_string(root().join("tests/scenarios/duty_rota.yaml")).expect("file");
    let example = readme
        .split("```yaml\n")
        .filter_map(|b| b.split("```").next())
        .find(|b| b.contains("params: {"))
        .expect("the README shows params");
    assert!(shipped.contains(example), "{example}");
    let output = sopflow(
        &["tests/scenarios/duty_rota.yaml"],
        &root().join("workflows"),
    );
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
}

/// The README's `reason:` example is a step of the shipped reimbursement scenarios, which pass
/// only while the guard's reason says what the example quotes.
#[test]
fn the_readme_reason_example_is_a_shipped_scenario() {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README");
    let shipped =
        std::fs::read_to_string(root().join("tests/scenarios/reimbursement.yaml")).expect("file");
    let example = readme
        .split("```yaml\n")
        .filter_map(|b| b.split("```").next())
        .find(|b| b.contains("reason: "))
        .expect("the README shows reason");
    assert!(shipped.contains(example), "{example}");
    let output = sopflow(
        &["tests/scenarios/reimbursement.yaml"],
        &root().join("workflows"),
    );
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
}

/// A refusal whose reason does not say what `reason:` names fails the scenario, at its step.
#[test]
fn a_refusal_with_another_reason_fails_the_scenario() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shipped =
        std::fs::read_to_string(root().join("tests/scenarios/reimbursement.yaml")).expect("file");
    let altered = shipped.replace(
        "reason: 2026-02 的费用报销已于 2026-03-16 17:00 截止",
        "reason: 2026-02 的费用报销已于 2026-03-17 17:00 截止",
    );
    assert_ne!(altered, shipped);
    let path = dir.path().join("reimbursement.yaml");
    std::fs::write(&path, altered).expect("write");
    let output = sopflow(&[path.to_str().expect("utf-8")], &root().join("workflows"));
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(out.contains("its reason does not say"), "{out}");
    assert!(out.contains("2026-03-16 17:00"), "{out}");
}

/// The README's table of refusal codes is the engine's, row for row; a scenario naming a code
/// that does not exist fails with a suggestion, and a file or folder with no scenarios fails.
#[test]
fn refusal_codes_are_documented_and_checked_in_scenarios() {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README");
    let section = readme
        .split("### Refusal codes")
        .nth(1)
        .and_then(|rest| rest.split("\n#").next())
        .expect("a refusal codes section");
    let rows: Vec<(String, String)> = section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split(" | ").collect();
            (
                cells[0].trim().trim_matches('`').to_string(),
                cells[1].trim().to_string(),
            )
        })
        .collect();
    let codes: Vec<(String, String)> = sopflow::machine::refusal::CODES
        .iter()
        .map(|(c, m)| (c.to_string(), m.to_string()))
        .collect();
    assert_eq!(rows, codes);

    let dir = tempfile::tempdir().expect("tempdir");
    let misspelt = dir.path().join("misspelt.yaml");
    std::fs::write(
        &misspelt,
        "workflow: hot_work_permit\nscenarios:\n  - name: x\n    steps:\n      - start: {actor: wang, roles: [contractor]}\n      - fire: {event: submit, actor: wang, roles: [contractor]}\n        refused: guard_faild\n",
    )
    .expect("write");
    let empty = dir.path().join("empty.yaml");
    std::fs::write(&empty, "workflow: hot_work_permit\nscenarios: []\n").expect("write");
    for (file, says) in [
        (&misspelt, "did you mean `guard_failed`?"),
        (&empty, "the file has no scenarios"),
    ] {
        let output = sopflow(&[file.to_str().expect("utf-8")], &root().join("workflows"));
        let out = stdout(&output);
        assert_eq!(output.status.code(), Some(1), "{out}");
        assert!(out.contains(says), "{out}");
    }
    // A folder with no scenario files ran nothing, and proves nothing.
    let nothing = dir.path().join("nothing");
    std::fs::create_dir(&nothing).expect("mkdir");
    let output = sopflow(
        &[nothing.to_str().expect("utf-8")],
        &root().join("workflows"),
    );
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("no scenario ran"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
