//! The process library's pages (`sopflow docs`) and the README's table of the workflows.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn sopflow(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sopflow"))
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .expect("run sopflow")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn both(output: &Output) -> String {
    format!(
        "{}{}",
        stdout(output),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn utf8(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// The ids of the shipped workflows: their file names in `workflows/`.
fn workflow_ids() -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(root().join("workflows"))
        .expect("workflows folder")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .filter(|p| !sopflow::definition::roles::is_role_list(p))
        .filter_map(|p| Some(p.file_stem()?.to_str()?.to_string()))
        .collect();
    ids.sort();
    ids
}

#[test]
fn the_checked_in_pages_are_up_to_date() {
    let output = sopflow(&["docs", "--check"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "run `cargo run -- docs`: {}",
        both(&output)
    );
    assert!(stdout(&output).contains("up to date"), "{}", both(&output));
    for id in workflow_ids() {
        let page = root().join(format!("docs/library/{id}.md"));
        let text = std::fs::read_to_string(&page).expect("a page per workflow");
        assert!(text.contains(&format!("(`{id}`)")), "{}", page.display());
        assert!(text.contains("```mermaid\nstateDiagram-v2"), "{id}");
        assert!(
            text.contains(&format!("(../../tests/scenarios/{id}.yaml)")),
            "{id}: the page links its scenarios"
        );
    }
}

/// A copy of the workflows in a temp folder, with pages written for them there.
struct Library {
    _dir: tempfile::TempDir,
    workflows: PathBuf,
    out: PathBuf,
}

impl Library {
    fn new() -> Library {
        let dir = tempfile::tempdir().expect("temp dir");
        let workflows = dir.path().join("workflows");
        std::fs::create_dir(&workflows).expect("mkdir");
        for entry in std::fs::read_dir(root().join("workflows"))
            .expect("workflows")
            .flatten()
        {
            std::fs::copy(entry.path(), workflows.join(entry.file_name())).expect("copy");
        }
        let out = dir.path().join("docs");
        Library {
            _dir: dir,
            workflows,
            out,
        }
    }

    fn docs(&self, check: bool) -> Output {
        let rules = root().join("rules");
        let scenarios = root().join("tests/scenarios");
        let mut args = vec![
            "docs",
            "--workflows",
            utf8(&self.workflows),
            "--rules",
            utf8(&rules),
            "--scenarios",
            utf8(&scenarios),
            "--out",
            utf8(&self.out),
        ];
        if check {
            args.push("--check");
        }
        sopflow(&args)
    }
}

#[test]
fn check_names_the_pages_a_change_makes_stale_and_docs_fixes_them() {
    let library = Library::new();
    let first = library.docs(true);
    assert_eq!(first.status.code(), Some(1), "{}", both(&first));
    assert!(
        stdout(&first).contains("hot_work_permit.md: missing"),
        "{}",
        both(&first)
    );
    let written = library.docs(false);
    assert_eq!(written.status.code(), Some(0), "{}", both(&written));
    assert!(library.out.join("README.md").is_file());
    let ok = library.docs(true);
    assert_eq!(ok.status.code(), Some(0), "{}", both(&ok));

    // A title changes: its page and the index are out of date; nothing else.
    let file = library.workflows.join("hot_work_permit.yaml");
    let text = std::fs::read_to_string(&file).expect("read");
    assert!(text.contains("\ntitle: 动火证审批\n"));
    std::fs::write(
        &file,
        text.replace("\ntitle: 动火证审批\n", "\ntitle: 动火作业审批\n"),
    )
    .expect("write");
    // A page of a workflow that no longer exists, and a hand-written note.
    let stale = library.out.join("retired_procedure.md");
    std::fs::write(
        &stale,
        format!(
            "{} Source: the workflow `retired_procedure`. -->\n# old\n",
            sopflow::library::GENERATED
        ),
    )
    .expect("write");
    let note = library.out.join("notes.md");
    std::fs::write(&note, "# Notes kept by hand\n").expect("write");

    let check = library.docs(true);
    assert_eq!(check.status.code(), Some(1), "{}", both(&check));
    let out = stdout(&check);
    assert!(out.contains("hot_work_permit.md: differs"), "{out}");
    assert!(out.contains("README.md: differs"), "{out}");
    assert!(out.contains("retired_procedure.md: stale"), "{out}");
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(
        both(&check).contains("run `sopflow docs`"),
        "{}",
        both(&check)
    );
    assert!(stale.is_file(), "--check writes nothing");

    let fixed = library.docs(false);
    assert_eq!(fixed.status.code(), Some(0), "{}", both(&fixed));
    assert!(!stale.exists(), "the stale page is removed");
    assert!(note.is_file(), "a file sopflow did not write is left alone");
    let page = std::fs::read_to_string(library.out.join("hot_work_permit.md")).expect("page");
    assert!(
        page.contains("# 动火作业审批 (`hot_work_permit`)"),
        "{page}"
    );
    let again = library.docs(true);
    assert_eq!(again.status.code(), Some(0), "{}", both(&again));
}

#[test]
fn docs_refuses_workflows_with_errors_and_files_it_did_not_write() {
    let library = Library::new();
    let file = library.workflows.join("hot_work_permit.yaml");
    let text = std::fs::read_to_string(&file).expect("read");
    std::fs::write(
        &file,
        text.replace("approve: {to: cs_review,", "approve: {to: cs_reveiw,"),
    )
    .expect("write");
    let refused = library.docs(false);
    assert_eq!(refused.status.code(), Some(1), "{}", both(&refused));
    assert!(both(&refused).contains("E101"), "{}", both(&refused));
    assert!(!library.out.exists(), "nothing was written");
    std::fs::write(&file, text).expect("restore");

    std::fs::create_dir_all(&library.out).expect("mkdir");
    let readme = library.out.join("README.md");
    std::fs::write(&readme, "# A README written by hand\n").expect("write");
    let refused = library.docs(false);
    assert_eq!(refused.status.code(), Some(1), "{}", both(&refused));
    assert!(
        both(&refused).contains("was not written by `sopflow docs`"),
        "{}",
        both(&refused)
    );
    assert_eq!(
        std::fs::read_to_string(&readme).expect("read"),
        "# A README written by hand\n"
    );
    assert!(!library.out.join("hot_work_permit.md").exists());
}

#[test]
fn the_readme_lists_every_workflow_with_its_page_and_scenarios() {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let start = readme
        .find("\n## The process library\n")
        .expect("a section `## The process library`");
    let rest = &readme[start + 1..];
    let section = match rest[3..].find("\n## ") {
        Some(end) => &rest[..end + 3],
        None => rest,
    };
    let ids = workflow_ids();
    assert_eq!(ids.len(), 48, "{ids:?}");
    for id in &ids {
        let row = section
            .lines()
            .find(|l| l.starts_with('|') && l.contains(&format!("`{id}`")))
            .unwrap_or_else(|| panic!("no row for `{id}` in the README's process library"));
        for link in [
            format!("docs/library/{id}.md"),
            format!("tests/scenarios/{id}.yaml"),
        ] {
            assert!(row.contains(&format!("]({link})")), "{id}: {row}");
            assert!(root().join(&link).is_file(), "{link} does not exist");
        }
    }
}

/// Every role of every shipped workflow is held by a demo user, so that each workflow can be
/// run to its end in the console with the shipped users; the README's table of demo users is
/// the users file's.
#[test]
fn the_demo_users_hold_every_role_of_the_library_and_the_readme_lists_them() {
    let users: serde_json::Value = serde_saphyr::from_str(
        &std::fs::read_to_string(root().join("config/users.yaml")).expect("users file"),
    )
    .expect("users parse");
    let users = users["users"].as_array().expect("a list of users");
    let held: std::collections::BTreeSet<&str> = users
        .iter()
        .flat_map(|u| u["roles"].as_array().expect("roles"))
        .filter_map(|r| r.as_str())
        .collect();
    let mut missing = Vec::new();
    for id in workflow_ids() {
        let text =
            std::fs::read_to_string(root().join(format!("workflows/{id}.yaml"))).expect("workflow");
        let workflow: serde_json::Value = serde_saphyr::from_str(&text).expect("parses");
        for role in workflow["roles"].as_object().expect("roles").keys() {
            if !held.contains(role.as_str()) {
                missing.push(format!("{id}: {role}"));
            }
        }
    }
    assert!(missing.is_empty(), "no demo user holds {missing:?}");

    let readme = std::fs::read_to_string(root().join("README.md")).expect("README");
    let table: Vec<String> = readme
        .split("| user | name | roles |")
        .nth(1)
        .expect("the demo users table")
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(str::to_string)
        .collect();
    let expected: Vec<String> = users
        .iter()
        .map(|u| {
            let roles: Vec<&str> = u["roles"]
                .as_array()
                .expect("roles")
                .iter()
                .filter_map(|r| r.as_str())
                .collect();
            format!(
                "| `{}` | {} | {} |",
                u["id"].as_str().expect("id"),
                u["name"].as_str().expect("name"),
                roles.join(", ")
            )
        })
        .collect();
    assert_eq!(table, expected);
}
