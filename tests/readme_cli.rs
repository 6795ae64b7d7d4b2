//! The README's command-line walk-through, run as written: every `sopflow` command of the
//! section "Run an instance from the command line", in order, against a store in a temp
//! folder, each with the exit code and the first line its comment shows.

use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "support/readme.rs"]
mod readme;
use readme::commands;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn link(from: &Path, to: &Path) {
    #[cfg(unix)]
    std::os::unix::fs::symlink(from, to).expect("symlink");
}

#[test]
fn the_readme_command_line_walk_through_runs_as_written() {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README");
    let section = readme
        .split("## Run an instance from the command line")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("the section");
    let blocks: Vec<&str> = section
        .split("```sh\n")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .collect();
    assert_eq!(blocks.len(), 2, "the walk-through and the rejection");
    let dir = tempfile::tempdir().expect("temp dir");
    for folder in ["workflows", "rules", "calendars"] {
        link(&root().join(folder), &dir.path().join(folder));
    }
    let mut ran = 0;
    for said in blocks.iter().flat_map(|b| commands(b)) {
        let output = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "sopflow() {{ \"$SOPFLOW_BIN\" \"$@\"; }}\n{}",
                said.command
            ))
            .env("SOPFLOW_BIN", env!("CARGO_BIN_EXE_sopflow"))
            .env("NO_COLOR", "1")
            .env("SOPFLOW_LANG", "en")
            .current_dir(dir.path())
            .output()
            .expect("run sh");
        let out = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(
            output.status.code(),
            Some(said.exit),
            "{}\n{out}",
            said.command
        );
        if let Some(prints) = &said.prints {
            assert!(
                out.lines()
                    .next()
                    .is_some_and(|l| l.trim_end() == prints.trim_end()),
                "{}\nexpected first line: {prints}\ngot:\n{out}",
                said.command
            );
        }
        ran += 1;
    }
    assert!(ran >= 15, "{ran} commands");
    // People read times on the workflow's calendar (Beijing time), with the offset.
    let shown = Command::new(env!("CARGO_BIN_EXE_sopflow"))
        .args(["history", "hot_work_permit-1"])
        .current_dir(dir.path())
        .output()
        .expect("history");
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains(" +08:00") && !shown.contains(" UTC"),
        "{shown}"
    );
}

/// The README's embedding lines are lines of `examples/embed.rs` (which CI runs), in order.
#[test]
fn the_readme_embedding_lines_are_the_example() {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README");
    let block = readme
        .split("## Embedding")
        .nth(1)
        .and_then(|s| s.split("```rust\n").nth(1))
        .and_then(|s| s.split("```").next())
        .expect("the embedding block");
    let example = std::fs::read_to_string(root().join("examples/embed.rs")).expect("example");
    let mut lines = example.lines().map(str::trim);
    for wanted in block.lines().map(str::trim).filter(|l| !l.is_empty()) {
        assert!(
            lines.any(|l| l == wanted),
            "not in examples/embed.rs (in this order): {wanted}"
        );
    }
}
