//! The time commands as a user runs them: `schedule list`, `timers`, `tick`, on a data folder
//! in a temp dir with the time test workflows and the real clock.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    /// A site whose workflows folder holds the time test workflows (not their scenarios,
    /// which the engine would refuse to load as workflows).
    fn new() -> Site {
        let dir = tempfile::tempdir().expect("temp dir");
        let workflows = dir.path().join("workflows");
        std::fs::create_dir(&workflows).expect("workflows folder");
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/time");
        for entry in std::fs::read_dir(&root).expect("tests/time").flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "yaml") {
                std::fs::copy(&path, workflows.join(entry.file_name())).expect("copies");
            }
        }
        Site { dir }
    }

    fn run(&self, args: &[&str]) -> Output {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        Command::new(env!("CARGO_BIN_EXE_sopflow"))
            .args(args)
            .arg("--data-dir")
            .arg(self.dir.path().join("data"))
            .arg("--workflows")
            .arg(self.dir.path().join("workflows"))
            .arg("--rules")
            .arg(root.join("rules"))
            .arg("--calendars")
            .arg(root.join("calendars"))
            .current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            .output()
            .expect("run sopflow")
    }

    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert_eq!(
            output.status.code(),
            Some(0),
            "sopflow {args:?}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["--format", "json"]);
        serde_json::from_str(&self.ok(&all)).expect("JSON output")
    }
}

#[test]
fn schedule_list_shows_the_next_fire_times_on_the_calendar() {
    let site = Site::new();
    let human = site.ok(&["schedule", "list"]);
    assert!(
        human.contains("monthly_report/monthly  每月最后一个工作日  (calendar cn_mainland)"),
        "{human}"
    );
    assert_eq!(human.matches("  next: ").count(), 3, "{human}");
    let json = site.json(&["schedule", "list", "--next", "2"]);
    let next: Vec<&str> = json[0]["next"]
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(next.len(), 2, "{json}");
    // 09:00 China Standard Time is 01:00 UTC.
    assert!(next.iter().all(|t| t.contains("T01:00:00")), "{next:?}");
    assert!(next[0] < next[1]);
}

#[test]
fn tick_fires_what_is_due_once_and_timers_lists_what_is_pending() {
    let site = Site::new();
    let started = site.json(&["start", "deadlines", "--actor", "he", "--role", "clerk"]);
    let id = started["instance"]["id"]
        .as_str()
        .expect("an id")
        .to_string();
    site.ok(&[
        "fire",
        &id,
        "set_deadline",
        "--actor",
        "he",
        "--role",
        "clerk",
        "--payload",
        r#"{"due_at": "2026-01-05"}"#,
    ]);
    let pending = site.json(&["timers"]);
    assert_eq!(pending.as_array().map(Vec::len), Some(1), "{pending}");
    assert_eq!(pending[0]["event"], "deadline");
    assert_eq!(pending[0]["instance"], id.as_str());

    let fired = site.json(&["tick"]);
    assert_eq!(fired.as_array().map(Vec::len), Some(1), "{fired}");
    assert_eq!(fired[0]["event"], "deadline");
    assert!(fired[0]["refused"].is_null());
    assert_eq!(site.ok(&["tick"]).trim(), "nothing was due");
    assert_eq!(site.ok(&["timers"]).trim(), "no pending timers");

    let history = site.ok(&["history", &id]);
    assert!(history.contains("deadline (timer)"), "{history}");
    assert!(history.contains("fires at once"), "{history}");
    assert!(history.contains("by system"), "{history}");
}
