//! Every diagnostic code has a fixture that triggers it and one that does not.
//!
//! `tests/fixtures/base/` is a small set of files (two workflows, one rules file) that uses
//! every part of the format and is clean. Each `tests/fixtures/<CODE>-<name>/bad/` replaces or
//! adds files on top of it to make one mistake; the line that must be reported carries a
//! `<- CODE` comment (or the file an `expect-anywhere: CODE` comment). A `good/` folder, where
//! present, is the near miss that must not trigger the code; otherwise the base is.

use sopflow::catalog::{self, LoadReport};
use sopflow::diagnostic::Code;
use sopflow::script::Sandbox;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Fixture folders, with the code their name starts with.
fn cases() -> Vec<(String, PathBuf)> {
    let mut cases: Vec<(String, PathBuf)> = std::fs::read_dir(fixtures())
        .expect("fixtures folder")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("bad").is_dir())
        .map(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (name.split('-').next().unwrap_or_default().to_string(), p)
        })
        .collect();
    cases.sort();
    cases
}

/// The base files with `layer`'s files on top, in a fresh folder.
fn overlay(layer: Option<&Path>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut sources = vec![fixtures().join("base")];
    sources.extend(layer.map(Path::to_path_buf));
    for source in sources {
        copy_tree(&source, dir.path());
    }
    dir
}

/// Copies a folder's files, and its subfolders (`calendars/`), into `to`.
fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("fixture folder").flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            std::fs::create_dir_all(&target).expect("create fixture folder");
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy fixture");
        }
    }
}

/// Every file under `dir`, subfolders included.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("fixture folder").flatten() {
        if entry.path().is_dir() {
            out.extend(files(&entry.path()));
        } else {
            out.push(entry.path());
        }
    }
    out
}

fn load(dir: &Path) -> LoadReport {
    catalog::load(&[dir.to_path_buf()], &Sandbox::default()).expect("fixture loads")
}

/// (file name, line or None for anywhere in the file) of the `<- CODE` marker.
fn marker(dir: &Path, code: &str) -> (String, Option<u32>) {
    for path in files(dir) {
        let bytes = std::fs::read(&path).expect("fixture file");
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
            let line = String::from_utf8_lossy(line);
            if line.contains(&format!("<- {code}")) {
                return (name, Some(i as u32 + 1));
            }
            if line.contains(&format!("expect-anywhere: {code}")) {
                return (name, None);
            }
        }
    }
    panic!("{} has no `<- {code}` marker", dir.display());
}

#[test]
fn the_base_fixture_is_clean() {
    let dir = overlay(None);
    let report = load(dir.path());
    assert!(report.diagnostics.is_empty(), "{:#?}", report.diagnostics);
    assert_eq!(report.catalog.definitions.len(), 2);
}

#[test]
fn every_code_has_a_triggering_fixture() {
    let covered: Vec<String> = cases().into_iter().map(|(code, _)| code).collect();
    for code in Code::ALL {
        assert!(
            covered.iter().any(|c| c == code.as_str()),
            "no fixture for {code}"
        );
    }
}

#[test]
fn bad_fixtures_report_their_code_at_the_marked_line() {
    for (code, case) in cases() {
        let bad = case.join("bad");
        let dir = overlay(Some(&bad));
        let report = load(dir.path());
        let (file, line) = marker(&bad, &code);
        let found = report.diagnostics.iter().any(|d| {
            d.code.as_str() == code
                && d.file
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy() == file)
                && line.is_none_or(|l| d.span.line == l)
        });
        assert!(
            found,
            "{}: expected {code} in {file} at line {line:?}, got:\n{}",
            case.display(),
            report
                .diagnostics
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        );
        let is_error = code.starts_with('E');
        assert_eq!(report.has_errors(), is_error, "{}", case.display());
    }
}

#[test]
fn good_fixtures_do_not_trigger_the_code() {
    for (_, case) in cases() {
        let good = case.join("good");
        let dir = overlay(good.is_dir().then_some(good.as_path()));
        let report = load(dir.path());
        assert!(
            report.diagnostics.is_empty(),
            "{}: the near miss should be clean, got {:#?}",
            case.display(),
            report.diagnostics
        );
    }
}

#[test]
fn the_cli_reports_each_bad_fixture_with_code_file_line_and_exit_status() {
    for (code, case) in cases() {
        let bad = case.join("bad");
        let dir = overlay(Some(&bad));
        let output = Command::new(env!("CARGO_BIN_EXE_sopflow"))
            .args(["validate", "--format", "json"])
            .arg(dir.path())
            .output()
            .expect("run sopflow");
        let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON output");
        let is_error = code.starts_with('E');
        assert_eq!(
            output.status.code(),
            Some(if is_error { 1 } else { 0 }),
            "{}",
            case.display()
        );
        assert_eq!(json["ok"], !is_error);
        let (file, line) = marker(&bad, &code);
        let diagnostics = json["diagnostics"].as_array().expect("diagnostics array");
        let hit = diagnostics.iter().find(|d| {
            d["code"] == code.as_str()
                && d["file"].as_str().is_some_and(|f| f.ends_with(&file))
                && line.is_none_or(|l| d["line"] == l)
        });
        let hit =
            hit.unwrap_or_else(|| panic!("{}: {code} missing in {diagnostics:#?}", case.display()));
        for key in ["severity", "column", "message", "hint"] {
            assert!(!hit[key].is_null(), "{key} missing");
        }
        assert!(!hit["hint"].as_str().unwrap_or_default().is_empty());
    }
}
