//! `sopflow docs`: writes the process library's pages (`sopflow::library`) for every workflow,
//! plus their index, into one folder (default `docs/library/`), and removes the pages of
//! workflows that no longer exist. With `--check` it writes nothing and fails when any page is
//! missing, different from what the workflows give, or stale, so CI keeps the pages true.
//!
//! Only files that start with `library::GENERATED` are ever overwritten or removed: a
//! hand-written Markdown file in the folder is left alone (and never clobbered).

use super::render;
use anyhow::{Context, Result, bail};
use sopflow::catalog;
use sopflow::diagnostic::display_path;
use sopflow::library;
use sopflow::script::Sandbox;
use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct DocsArgs {
    /// The folder the pages are written to.
    #[arg(long, default_value = "docs/library")]
    out: PathBuf,
    /// Write nothing; exit 1 listing every page that is missing, different or stale.
    #[arg(long)]
    check: bool,
    /// The workflows to document.
    #[arg(long, default_value = "workflows")]
    workflows: PathBuf,
    /// The rules folder the workflows refer to.
    #[arg(long, default_value = "rules")]
    rules: PathBuf,
    /// The scenario files (`<id>.yaml`) the pages link to.
    #[arg(long, default_value = "tests/scenarios")]
    scenarios: PathBuf,
    /// Calendar files, loaded when the folder exists (the built-in calendars otherwise).
    #[arg(long, default_value = "calendars")]
    calendars: PathBuf,
}

pub fn run(args: &DocsArgs) -> ExitCode {
    if !args.workflows.is_dir() {
        eprintln!(
            "error: there is no {} folder: run from the project folder, or give --workflows",
            display_path(&args.workflows)
        );
        return ExitCode::from(2);
    }
    let mut paths = vec![args.workflows.clone()];
    paths.extend(
        [&args.rules, &args.calendars]
            .into_iter()
            .filter(|p| p.is_dir())
            .cloned(),
    );
    let report = match catalog::load(&paths, &Sandbox::default()) {
        Ok(report) => report,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    if report.has_errors() {
        let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        eprint!(
            "{}",
            render::human(
                &report.diagnostics,
                &report.texts,
                color,
                super::runtime::chosen_lang(None),
            )
        );
        eprintln!(
            "error: {} error(s) in the workflows; no page was {} (see `sopflow validate`)",
            report.errors(),
            if args.check { "checked" } else { "written" }
        );
        return ExitCode::from(1);
    }
    let workflows: Vec<&sopflow::definition::Workflow> = report
        .catalog
        .definitions
        .values()
        .map(|d| &d.workflow)
        .collect();
    let roles = report.catalog.roles.as_deref();
    let result = render_pages(&workflows, roles, args).and_then(|pages| {
        let plan = plan(&args.out, &pages)?;
        if args.check {
            Ok(check(&args.out, &plan, pages.len()))
        } else {
            write(&args.out, &plan, pages.len())
        }
    });
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}

/// Every page by file name: one per workflow and the index.
fn render_pages(
    workflows: &[&sopflow::definition::Workflow],
    roles: Option<&sopflow::definition::roles::RoleList>,
    args: &DocsArgs,
) -> Result<BTreeMap<String, String>> {
    let mut pages = BTreeMap::new();
    for workflow in workflows {
        let id = workflow.id.as_str();
        let name = library::page_file(id);
        if name.eq_ignore_ascii_case(library::INDEX) {
            bail!("the workflow id `{id}` would overwrite the library's index ({name}); rename it");
        }
        let scenario = args.scenarios.join(format!("{id}.yaml"));
        let link = if scenario.is_file() {
            Some(relative(&args.out, &scenario)?)
        } else {
            None
        };
        pages.insert(name, library::page(workflow, link.as_deref()));
    }
    pages.insert(library::INDEX.to_string(), library::index(workflows, roles));
    Ok(pages)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Missing,
    Different,
    /// A page of a workflow that no longer exists.
    Stale,
}

#[derive(Debug, Default)]
struct Plan {
    /// Pages to write or remove, by file name, with their new text (none for stale ones).
    changes: Vec<(String, Change, Option<String>)>,
    /// Files in the way that `sopflow docs` did not write: never overwritten.
    foreign: Vec<String>,
}

/// Compares the pages with the folder's files.
fn plan(out: &Path, pages: &BTreeMap<String, String>) -> Result<Plan> {
    let mut plan = Plan::default();
    for (name, text) in pages {
        let path = out.join(name);
        match std::fs::read(&path) {
            Ok(existing) if existing == text.as_bytes() => {}
            Ok(existing) => {
                if !existing.starts_with(library::GENERATED.as_bytes()) {
                    plan.foreign.push(name.clone());
                }
                plan.changes
                    .push((name.clone(), Change::Different, Some(text.clone())));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                plan.changes
                    .push((name.clone(), Change::Missing, Some(text.clone())));
            }
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read {}", display_path(&path)));
            }
        }
    }
    if out.is_dir() {
        let mut stale = BTreeSet::new();
        let entries = std::fs::read_dir(out)
            .with_context(|| format!("cannot list the folder {}", display_path(out)))?;
        for entry in entries {
            let entry =
                entry.with_context(|| format!("cannot list the folder {}", display_path(out)))?;
            let path = entry.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if !name.ends_with(".md") || pages.contains_key(name) || !path.is_file() {
                continue;
            }
            let text = std::fs::read(&path)
                .with_context(|| format!("cannot read {}", display_path(&path)))?;
            if text.starts_with(library::GENERATED.as_bytes()) {
                stale.insert(name.to_string());
            }
        }
        plan.changes
            .extend(stale.into_iter().map(|name| (name, Change::Stale, None)));
    }
    Ok(plan)
}

fn check(out: &Path, plan: &Plan, pages: usize) -> ExitCode {
    if plan.changes.is_empty() {
        println!(
            "ok: the process library in {} is up to date ({pages} page(s))",
            display_path(out)
        );
        return ExitCode::SUCCESS;
    }
    for (name, change, _) in &plan.changes {
        let path = display_path(&out.join(name));
        match change {
            Change::Missing => println!("{path}: missing"),
            Change::Different if plan.foreign.contains(name) => println!(
                "{path}: differs from the workflows, and was not written by `sopflow docs`"
            ),
            Change::Different => println!("{path}: differs from the workflows"),
            Change::Stale => println!(
                "{path}: stale (there is no workflow `{}`)",
                name.trim_end_matches(".md")
            ),
        }
    }
    eprintln!(
        "error: {} page(s) of the process library in {} are out of date; run `sopflow docs` \
         (with the same options) to update them",
        plan.changes.len(),
        display_path(out)
    );
    ExitCode::from(1)
}

fn write(out: &Path, plan: &Plan, pages: usize) -> Result<ExitCode> {
    if let Some(name) = plan.foreign.first() {
        bail!(
            "{} was not written by `sopflow docs` (it does not start with the generated marker); \
             refusing to overwrite it: move it away, or choose another --out",
            display_path(&out.join(name))
        );
    }
    std::fs::create_dir_all(out)
        .with_context(|| format!("cannot create the folder {}", display_path(out)))?;
    let (mut written, mut removed) = (0, 0);
    for (name, change, text) in &plan.changes {
        let path = out.join(name);
        match text {
            Some(text) => {
                std::fs::write(&path, text)
                    .with_context(|| format!("cannot write {}", display_path(&path)))?;
                written += 1;
                let what = if *change == Change::Missing {
                    "wrote"
                } else {
                    "updated"
                };
                println!("{what} {}", display_path(&path));
            }
            None => {
                std::fs::remove_file(&path)
                    .with_context(|| format!("cannot remove {}", display_path(&path)))?;
                removed += 1;
                println!("removed {}", display_path(&path));
            }
        }
    }
    println!(
        "ok: {pages} page(s) in {}: {written} written, {removed} stale removed, {} unchanged",
        display_path(out),
        pages - written
    );
    Ok(ExitCode::SUCCESS)
}

/// `to` as a link from a page in the folder `from_dir`, with `/` separators.
fn relative(from_dir: &Path, to: &Path) -> Result<String> {
    let from = absolute(from_dir)?;
    let to = absolute(to)?;
    let from: Vec<Component> = from.components().collect();
    let to: Vec<Component> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let name = |c: &Component| c.as_os_str().to_string_lossy().into_owned();
    if common == 0 {
        // Different roots (drives): no relative link exists.
        return Ok(to.iter().map(name).collect::<Vec<_>>().join("/"));
    }
    let mut parts: Vec<String> = vec!["..".to_string(); from.len() - common];
    parts.extend(to[common..].iter().map(name));
    Ok(parts.join("/"))
}

/// The path from the filesystem root, with `.` and `..` resolved by name (the folders need
/// not exist yet).
fn absolute(path: &Path) -> Result<PathBuf> {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .context("cannot read the current folder")?
            .join(path)
    };
    let mut out = PathBuf::new();
    for component in joined.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::relative;
    use std::path::Path;

    #[test]
    fn links_are_relative_to_the_page() {
        let link = |from: &str, to: &str| relative(Path::new(from), Path::new(to)).expect("link");
        assert_eq!(
            link("docs/library", "tests/scenarios/a.yaml"),
            "../../tests/scenarios/a.yaml"
        );
        assert_eq!(
            link("./docs/library/", "./tests/../tests/scenarios/a.yaml"),
            "../../tests/scenarios/a.yaml"
        );
        assert_eq!(link("/x/out", "/x/out/a.yaml"), "a.yaml");
        assert_eq!(link("/x/a/b", "/y/c.yaml"), "../../../y/c.yaml");
    }
}
